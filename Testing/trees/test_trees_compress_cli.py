"""`anatomy-inr trees compress`: bad arguments are refused before any work with one line and nothing written.

The full run (fit, re-extraction, sizes equal to the files', the library's surface distances, the
INR re-meshing to the same mesh with `extract`) is tested through the Slicer worker in
``Testing/slicer/test_slicer_trees_logic.py``.
"""

import pytest

from AnatomyINRLib import io
from AnatomyINRLib.cli import main
from AnatomyINRLib.phantoms.tree_synth import SynthTreeParams, grow_tree, tree_mesh


@pytest.fixture(scope="module")
def mesh_file(tmp_path_factory):
    g = grow_tree(SynthTreeParams(seed=1, bifurcations=1, terminal_radius=2.5, domain_radius=20.0, min_distance=6.0))
    path = tmp_path_factory.mktemp("mesh") / "small.vtp"
    io.write_mesh(tree_mesh(g, 0.8), path)
    return path


@pytest.mark.parametrize("extra,message", [
    (["--spacing", "0"], "--spacing: expected a positive number of mm, got 0.0"),
    (["--iterations", "0"], "--iterations: expected a positive number of iterations, got 0"),
    (["--output-inr", "{d}/c.vtp"], "--output-inr"),
    (["--output", "{d}/c.safetensors"], "--output"),
])
def test_bad_arguments_exit_2_with_nothing_written(tmp_path, mesh_file, capsys, extra, message):
    args = ["trees", "compress", str(mesh_file), "--output-inr", str(tmp_path / "c.safetensors"), "--output",
            str(tmp_path / "c.vtp"), "--report", str(tmp_path / "r.json")]
    for flag, value in zip(extra[::2], extra[1::2]):
        value = value.format(d=tmp_path)
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("anatomy-inr: error: ") and message in err[0]
    assert list(tmp_path.iterdir()) == []


def test_missing_mesh_and_colliding_outputs_are_refused(tmp_path, capsys):
    args = ["trees", "compress", str(tmp_path / "none.vtp"), "--output-inr", str(tmp_path / "c.safetensors"),
            "--output", str(tmp_path / "c.vtp")]
    assert main(args) == 2
    assert "MESH" in capsys.readouterr().err and list(tmp_path.iterdir()) == []
    same = ["trees", "compress", str(tmp_path / "none.vtp"), "--output-inr", str(tmp_path / "c.safetensors"),
            "--output", str(tmp_path / "c.vtp"), "--report", str(tmp_path / "c.json")]  # c.json = the INR's sidecar
    assert main(same) == 2
    assert "sidecar of --output-inr" in capsys.readouterr().err and list(tmp_path.iterdir()) == []
