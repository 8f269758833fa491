"""``anatomy-inr blend``: round trip through files and every kind of bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from AnatomyINRLib.blend import BlendConfig
from AnatomyINRLib.cli import main
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.io import read_mesh, write_mesh


def _capsule_file(path, axis, offset=(0.0, 0.0, 0.0)):
    cap = trimesh.creation.capsule(height=24.0, radius=3.0, count=[20, 20])
    rot = trimesh.geometry.align_vectors([0, 0, 1.0], np.asarray(axis, float) / np.linalg.norm(axis))[:3, :3]
    write_mesh(TriangleMesh(cap.vertices @ rot.T + np.asarray(offset) + [10.0, -20.0, 5.0], cap.faces), path)
    return str(path)


def test_blend_round_trip_writes_mesh_and_report(tmp_path, capsys):
    a = _capsule_file(tmp_path / "a.stl", [0, 0, 1])
    b = _capsule_file(tmp_path / "b.vtp", [1, 0, 0])
    out, rep = tmp_path / "out.vtp", tmp_path / "report.json"
    code = main(["blend", a, b, "--output", str(out), "--radius", "1.5", "--spacing", "0.6",
                 "--report", str(rep), "--json-progress"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {e["stage"] for e in lines} >= {"extract", "check"}
    report = json.loads(rep.read_text())
    assert report["command"] == "blend" and report["surface"]["ok"] is True
    assert report["surface"]["n_components"] == 1 and report["surface"]["self_intersections"] == 0
    mesh = read_mesh(out)
    assert mesh.n_faces == report["surface"]["n_faces"]
    assert mesh.signed_volume() == pytest.approx(report["surface"]["volume_mm3"], rel=1e-3)
    data = json.loads((tmp_path / "out.config.json").read_text())
    assert data["command"] == "blend" and data["inputs"] == [a, b] and data["seed"] == 0
    config = BlendConfig.from_dict(data["config"])
    assert config == BlendConfig(radius_mm=1.5, spacing_mm=0.6) and config.to_dict() == report["config"]
    assert config.fit_preset is None   # no --preset: blend's own fit settings


def test_blend_clip_plane_and_per_input_radii(tmp_path):
    a = _capsule_file(tmp_path / "a.stl", [0, 0, 1])
    b = _capsule_file(tmp_path / "b.stl", [1, 0, 0])
    out = tmp_path / "out.stl"
    code = main(["blend", a, b, "--output", str(out), "--radii", "0", "0.5", "--spacing", "0.6",
                 "--clip-plane", "10", "-20", "10", "0", "0", "1"])
    assert code == 0
    assert read_mesh(out).vertices[:, 2].max() == pytest.approx(10.0, abs=0.35)
    data = json.loads((tmp_path / "out.config.json").read_text())
    assert data["radii"] == [0.0, 0.5] and data["global_planes"] == [{"origin_mm": [10.0, -20.0, 10.0], "normal": [0.0, 0.0, 1.0]}]


@pytest.mark.parametrize("extra, message", [
    (["--radius", "-1"], "--radius"),
    (["--spacing", "0"], "--spacing"),
    (["--radii", "1", "2", "3"], "--radii"),
])
def test_bad_arguments_fail_with_one_line_and_no_output(tmp_path, capsys, extra, message):
    a = _capsule_file(tmp_path / "a.stl", [0, 0, 1])
    b = _capsule_file(tmp_path / "b.stl", [1, 0, 0])
    out = tmp_path / "out.vtp"
    code = main(["blend", a, b, "--output", str(out), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert not out.exists()


def test_bad_files_fail_cleanly(tmp_path, capsys):
    a = _capsule_file(tmp_path / "a.stl", [0, 0, 1])
    (tmp_path / "notes.docx").write_text("x")
    cases = [
        ([str(tmp_path / "missing.stl")], 2),
        ([a, str(tmp_path / "notes.docx")], 2),
    ]
    for inputs, expected in cases:
        out = tmp_path / "out.vtp"
        assert main(["blend", *inputs, "--output", str(out)]) == expected
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
        assert not out.exists()
    assert main(["blend", a, "--output", str(tmp_path / "nodir" / "out.vtp")]) == 3
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["blend", a, "--output", str(tmp_path / "out.xyz")]) == 2      # unsupported output type: a bad argument
    assert "unsupported" in capsys.readouterr().err
    assert not (tmp_path / "out.xyz").exists()
