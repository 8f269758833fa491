"""More hostile and careless input (issue 11, second round): one stderr line, a documented exit
code, every pre-existing file untouched, no temporary left behind. Each test failed before its fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from AnatomyINRLib.cli import main

FAST = ["--iterations", "20", "--spacing", "2.0", "--threads", "1"]


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(capsys, *argv) -> tuple[int, list]:
    return _run_out(capsys, *argv)[:2]


def _run_out(capsys, *argv) -> tuple[int, list, str]:
    """Exit code, stderr lines and stdout of one CLI run."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()], captured.out


def test_identical_points_give_one_line_naming_the_duplicates(capsys, tmp_path):
    np.savetxt(tmp_path / "same.csv", np.tile([[1.0, 2.0, 3.0]], (300, 1)), delimiter=",")
    before = _snapshot(tmp_path)
    code, err = _run(capsys, "fit-points", tmp_path / "same.csv", "--output", tmp_path / "m.vtp", *FAST)
    assert code == 2 and len(err) == 1, err
    assert "at least 10 distinct points, got 1" in err[0] and "299 duplicate" in err[0]
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("seed", ["99999999999999999999", "-1", "9223372036854775808", "1.5"])
@pytest.mark.parametrize("command", ["fit-points", "demo", "fit-nested", "blend"])
def test_every_seed_follows_one_rule(capsys, tmp_path, points_csv, command, seed):
    # Cheap settings: on the unfixed code some of these seeds were accepted and the run went ahead.
    cheap = ["--iterations", "1", "--spacing", "4"]
    argv = {"fit-points": ["fit-points", points_csv, "--output", tmp_path / "m.vtp", *cheap],
            "demo": ["demo", "--output-dir", tmp_path / "demo", "--points", "10", *cheap],
            "fit-nested": ["fit-nested", "--points", points_csv, points_csv, "--output-prefix", tmp_path / "n", *cheap],
            "blend": ["blend", points_csv, "--output", tmp_path / "b.vtp", *cheap]}[command]
    before = _snapshot(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv] + ["--seed", seed])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exc.value.code == 2 and len(err) == 1, err
    assert "--seed" in err[0] and "[0, 9223372036854775807]" in err[0] and seed in err[0]
    assert _snapshot(tmp_path) == before


def test_the_largest_seed_is_usable_by_numpy_and_torch(capsys, tmp_path):
    code, _ = _run(capsys, "demo", "--output-dir", tmp_path / "demo", "--points", "0", "--seed", str(2**63 - 1))
    assert code == 2  # --points 0 is refused, but not the seed: the parser took it
    from AnatomyINRLib.core.seeding import make_generator, numpy_rng

    make_generator(2**63 - 1)
    numpy_rng(2**63 - 1)


def _sphere(radius: float, n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return radius * v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_failed_dmax_keeps_the_surfaces_and_warns(capsys, tmp_path):
    """Concentric spheres have no centreline, so Dmax cannot be measured: that must not cost the meshes."""
    import json

    from AnatomyINRLib.io import read_mesh

    np.savetxt(tmp_path / "inner.csv", _sphere(10.0, 150, 0), delimiter=",")
    np.savetxt(tmp_path / "outer.csv", _sphere(16.0, 150, 1), delimiter=",")
    code, err = _run(capsys, "fit-nested", "--points", tmp_path / "inner.csv", tmp_path / "outer.csv",
                     "--output-prefix", tmp_path / "sp", "--preset", "fast", "--iterations", "100",
                     "--spacing", "1.5", "--threads", "1", "--report", tmp_path / "r.json")
    assert code == 0, err
    assert len(err) == 1 and "warning" in err[0] and "Dmax" in err[0] and "centreline" in err[0]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["dmax"] is None and len(report["warnings"]) == 1 and "Dmax" in report["warnings"][0]
    volumes = [read_mesh(tmp_path / f"sp_{n}.vtp").signed_volume() for n in ("lumen", "outer")]
    exact = [4 / 3 * np.pi * r**3 for r in (10.0, 16.0)]
    assert all(abs(v - e) < 0.15 * e for v, e in zip(volumes, exact)), volumes


def test_a_nested_field_cannot_warm_start_and_the_report_agrees(capsys, tmp_path, points_csv):
    """The warning said "fitting from scratch" while the report said warm_started: both must tell the truth."""
    import json

    np.savetxt(tmp_path / "inner.csv", np.loadtxt(points_csv, delimiter=",") * 0.8, delimiter=",")
    code, err = _run(capsys, "fit-nested", "--points", tmp_path / "inner.csv", points_csv, "--output-prefix",
                     tmp_path / "n", "--save-inr", tmp_path / "n.safetensors", "--no-dmax", *FAST)
    assert code == 0, err
    code, err = _run(capsys, "fit-points", points_csv, "--output", tmp_path / "m.vtp", "--init-inr",
                     tmp_path / "n.safetensors", "--report", tmp_path / "r.json", *FAST)
    assert code == 0, err
    assert len(err) == 1 and "2 outputs" in err[0] and "nested" in err[0] and "from scratch" in err[0], err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["warm_started"] is False and report["iterations"] == 20
    assert "2 outputs" in report["warm_start_note"]


def _far_reference(path: Path) -> Path:
    """A 20 mm image 1 m away from the phantom."""
    from AnatomyINRLib.core.types import ImageGrid
    from AnatomyINRLib.io import write_image

    write_image(ImageGrid(np.zeros((10, 10, 10), np.uint8), ImageGrid.make_affine([1000.0] * 3, [2.0] * 3)), path)
    return path


def test_a_reference_that_misses_the_points_is_refused_before_fitting(capsys, tmp_path, points_csv):
    ref = _far_reference(tmp_path / "ref.nrrd")
    before = _snapshot(tmp_path)
    code, err = _run(capsys, "fit-points", points_csv, "--output", tmp_path / "m.vtp", "--reference", ref,
                     "--output-labelmap", tmp_path / "l.nrrd", *FAST)
    assert code == 2 and len(err) == 1, err
    assert "--reference" in err[0] and "do not overlap" in err[0] and "[999.0, 999.0, 999.0]" in err[0], err
    assert _snapshot(tmp_path) == before


def test_extract_with_a_reference_that_misses_the_object_is_refused(capsys, tmp_path, points_csv):
    code, err = _run(capsys, "fit-points", points_csv, "--output", tmp_path / "m.vtp",
                     "--save-inr", tmp_path / "f.safetensors", *FAST)
    assert code == 0, err
    ref = _far_reference(tmp_path / "ref.nrrd")
    before = _snapshot(tmp_path)
    code, err = _run(capsys, "extract", tmp_path / "f.safetensors", "--output", tmp_path / "e.vtp", "--spacing", "2",
                     "--reference", ref, "--output-labelmap", tmp_path / "l.nrrd")
    assert code == 2 and len(err) == 1, err
    assert "--reference" in err[0] and "do not overlap" in err[0] and "[999.0, 999.0, 999.0]" in err[0], err
    assert _snapshot(tmp_path) == before


def test_demo_refuses_more_points_than_memory_holds(capsys, tmp_path):
    code, err = _run(capsys, "demo", "--output-dir", tmp_path / "demo", "--points", "100000000")
    assert code == 2 and len(err) == 1, err
    assert "--points" in err[0] and "476,837 MB" in err[0] and "MB available" in err[0]
    assert not (tmp_path / "demo").exists()


def test_threads_beyond_the_cores_are_capped_with_a_warning():
    import os

    import torch

    from AnatomyINRLib.core.device import configure_threads

    before = torch.get_num_threads()
    try:
        with pytest.warns(UserWarning, match=rf"threads: 1000 requested but this machine has {os.cpu_count()} cores"):
            assert configure_threads(1000) == os.cpu_count()
        assert torch.get_num_threads() == os.cpu_count()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("local, interactive, expected", [(None, False, 4), (None, True, 3), ("2", False, 2),
                                                          ("2", True, 2), ("3", False, 1), ("8", False, 1),
                                                          ("x", False, 4)])
def test_default_threads_share_the_cores_among_torchrun_processes(monkeypatch, local, interactive, expected):
    """Without --threads, each of torchrun's LOCAL_WORLD_SIZE processes gets its share of the cores, not all."""
    import torch

    from AnatomyINRLib.core.device import configure_threads

    monkeypatch.setattr("os.cpu_count", lambda: 4)
    if local is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local)
    before = torch.get_num_threads()
    try:
        assert configure_threads(None, interactive=interactive) == expected
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("command", ["fit-points", "demo", "fit-nested", "blend"])
def test_iterations_are_bounded(capsys, tmp_path, points_csv, command):
    argv = {"fit-points": ["fit-points", points_csv, "--output", tmp_path / "m.vtp"],
            "demo": ["demo", "--output-dir", tmp_path / "demo"],
            "fit-nested": ["fit-nested", "--points", points_csv, points_csv, "--output-prefix", tmp_path / "n"],
            "blend": ["blend", points_csv, "--output", tmp_path / "b.vtp"]}[command]
    for bad in ("99999999999", "0"):
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in argv] + ["--iterations", bad])
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert exc.value.code == 2 and len(err) == 1 and "--iterations" in err[0] and "[1, 1000000]" in err[0], err


def _capsule(path: Path, axis, offset=(0.0, 0.0, 0.0), frame: str = "LPS") -> Path:
    import trimesh

    from AnatomyINRLib.core.types import TriangleMesh
    from AnatomyINRLib.io import write_mesh

    cap = trimesh.creation.capsule(height=24.0, radius=3.0, count=[20, 20])
    rot = trimesh.geometry.align_vectors([0, 0, 1.0], np.asarray(axis, float) / np.linalg.norm(axis))[:3, :3]
    write_mesh(TriangleMesh(cap.vertices @ rot.T + np.asarray(offset) + [10.0, -20.0, 5.0], cap.faces), path,
               coordinate_system=frame)
    return path


def test_blend_refuses_an_input_that_touches_no_other(capsys, tmp_path):
    a = _capsule(tmp_path / "a.vtp", [0, 0, 1])
    b = _capsule(tmp_path / "b.vtp", [1, 0, 0], offset=(0.0, 60.0, 0.0))
    before = _snapshot(tmp_path)
    code, err = _run(capsys, "blend", a, b, "--output", tmp_path / "out.vtp", "--spacing", "1.0",
                     "--report", tmp_path / "r.json")
    assert code == 2, err
    errors = [line for line in err if "error" in line]
    assert len(errors) == 1 and "2 separate pieces" in errors[0] and "--allow-disjoint" in errors[0], err
    assert "(a.vtp | b.vtp)" in errors[0] or "(b.vtp | a.vtp)" in errors[0]
    assert any("bounding boxes meet no other" in line for line in err)
    assert _snapshot(tmp_path) == before


def test_blend_allow_disjoint_keeps_every_piece_and_says_not_ok(capsys, tmp_path):
    import json

    from AnatomyINRLib.io import read_mesh

    a = _capsule(tmp_path / "a.vtp", [0, 0, 1])
    b = _capsule(tmp_path / "b.vtp", [1, 0, 0], offset=(0.0, 60.0, 0.0))
    code, err = _run(capsys, "blend", a, b, "--output", tmp_path / "out.vtp", "--spacing", "1.0",
                     "--report", tmp_path / "r.json", "--allow-disjoint")
    assert code == 0, err
    assert any("2 separate pieces" in line and "all kept" in line for line in err), err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["surface"]["ok"] is False and report["inputs_apart"] in (["a.vtp"], ["b.vtp"])
    assert report["surface"]["n_components"] == 2
    volume = read_mesh(tmp_path / "out.vtp").signed_volume()
    capsule = np.pi * 9.0 * 24.0 + 4 / 3 * np.pi * 27.0
    assert abs(volume - 2 * capsule) < 0.05 * 2 * capsule, volume


def test_blend_says_which_frame_each_input_was_read_in(capsys, tmp_path):
    """An untagged file (read as LPS) next to a RAS one: the pieces miss each other; --input-frame fixes it."""
    import json

    a = _capsule(tmp_path / "a.obj", [0, 0, 1], frame="RAS")
    lines = a.read_text().splitlines(keepends=True)
    assert "SPACE=RAS" in lines[0]
    a.write_text("".join(lines[1:]))  # as a tool that knows nothing of frames would write it
    b = _capsule(tmp_path / "b.vtp", [1, 0, 0], frame="RAS")
    code, err = _run(capsys, "blend", a, b, "--output", tmp_path / "out.vtp", "--spacing", "1.0")
    assert code == 2
    mixed = [line for line in err if "read in different frames" in line]
    assert len(mixed) == 1 and "a.obj LPS (no frame in the file: assumed)" in mixed[0]
    assert "b.vtp RAS (stated in the file)" in mixed[0] and "--input-frame" in mixed[0]
    code, err = _run(capsys, "blend", a, b, "--output", tmp_path / "out.vtp", "--spacing", "1.0",
                     "--input-frame", "0", "RAS", "--report", tmp_path / "r.json")
    assert code == 0 and err == [], err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["frames"] == [{"input": "a.obj", "frame": "RAS", "source": "given"},
                                {"input": "b.vtp", "frame": "RAS", "source": "file"}]
    assert report["surface"]["ok"] is True and report["inputs_apart"] == []


@pytest.mark.parametrize("corners", [[[1.0, 1.0, 1.0]] * 3, [[1.0, 1.0, 1.0], [1.5, 1.0, 1.0], [2.0, 1.0, 1.0]]],
                         ids=["one-point", "collinear"])
def test_blend_input_of_one_zero_area_triangle_is_one_line(capsys, tmp_path, corners):
    from AnatomyINRLib.core.types import TriangleMesh
    from AnatomyINRLib.io import write_mesh

    a = _capsule(tmp_path / "a.vtp", [0, 0, 1])
    write_mesh(TriangleMesh(np.array(corners) + [10.0, -20.0, 5.0], np.array([[0, 1, 2]])), tmp_path / "flat.vtp")
    before = _snapshot(tmp_path)
    code, err = _run(capsys, "blend", a, tmp_path / "flat.vtp", "--output", tmp_path / "out.vtp", "--spacing", "1.0",
                     "--iterations", "20")
    assert code == 2 and len(err) == 1, err
    assert "flat.vtp" in err[0] and "zero area" in err[0]
    assert _snapshot(tmp_path) == before


def test_blend_drops_zero_area_triangles_of_an_open_mesh_with_a_warning():
    from AnatomyINRLib.blend.sources import BlendInput
    from AnatomyINRLib.core.types import TriangleMesh

    vertices = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5], [6, 5, 5], [7, 5, 5]])
    with pytest.warns(UserWarning, match=r"open: dropped 1 zero-area triangle\(s\) of 2"):
        item = BlendInput(TriangleMesh(vertices, np.array([[0, 1, 2], [3, 4, 5]])), name="open")
    assert item.kind == "open_mesh" and item.data.n_faces == 1 and len(item.points()) == 3


def test_fit_nested_with_the_outer_wall_first_is_reordered_and_names_follow(capsys, tmp_path):
    """Given outer first, the joint fit squeezed every wall onto one surface with exit 0."""
    import json

    from AnatomyINRLib.io import read_mesh, write_points
    from AnatomyINRLib.phantoms.nested import NestedAAAPhantom

    files = []
    for name, ps in zip(("lumen", "inner", "outer"), NestedAAAPhantom().sample_surfaces(200, seed=5)):
        write_points(ps, tmp_path / f"{name}.csv")
        files.append(tmp_path / f"{name}.csv")
    code, err = _run(capsys, "fit-nested", "--points", *files[::-1], "--names", "wall", "thrombus", "blood",
                     "--output-prefix", tmp_path / "n", "--preset", "fast", "--iterations", "120", "--spacing", "1.5",
                     "--no-dmax", "--threads", "1", "--report", tmp_path / "r.json")
    assert code == 0, err
    assert len(err) == 1 and "not innermost first" in err[0] and "[2, 1, 0]" in err[0] and "names follow" in err[0]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["names"] == ["blood", "thrombus", "wall"] and report["input_order"] == [2, 1, 0]
    assert report["points_files"] == [str(f) for f in files]
    volumes = [read_mesh(tmp_path / f"n_{n}.vtp").signed_volume() for n in report["names"]]
    assert volumes[0] * 1.3 < volumes[1] and volumes[1] * 1.1 < volumes[2], volumes


def test_extract_meshes_the_stored_data_box_like_fit_points(capsys, tmp_path, points_csv):
    """extract meshed the whole normalisation cube, so it refused spacings fit-points could mesh."""
    import json

    from AnatomyINRLib.io import read_mesh

    code, err = _run(capsys, "fit-points", points_csv, "--output", tmp_path / "m.vtp",
                     "--save-inr", tmp_path / "f.safetensors", *FAST)
    assert code == 0, err
    meta = json.loads((tmp_path / "f.json").read_text())
    pts = np.loadtxt(points_csv, delimiter=",")
    assert np.allclose(meta["points_bounds_mm"], [pts.min(axis=0), pts.max(axis=0)])
    code, err = _run(capsys, "extract", tmp_path / "f.safetensors", "--output", tmp_path / "e.vtp", "--spacing", "2.0")
    assert code == 0 and err == [], err
    fitted, extracted = read_mesh(tmp_path / "m.vtp"), read_mesh(tmp_path / "e.vtp")
    assert extracted.n_faces == fitted.n_faces and np.allclose(extracted.vertices, fitted.vertices, atol=1e-9)


def test_extract_of_a_field_without_a_data_box_says_it_meshes_the_cube(capsys, tmp_path, points_csv):
    code, err = _run(capsys, "fit-points", points_csv, "--output", tmp_path / "m.vtp",
                     "--save-inr", tmp_path / "f.safetensors", *FAST)
    assert code == 0, err
    from AnatomyINRLib.io import load_inr, save_inr

    field, meta = load_inr(tmp_path / "f.safetensors")
    save_inr(field, tmp_path / "old.safetensors", {"config": meta["config"]})   # as older versions wrote it
    code, err = _run(capsys, "extract", tmp_path / "old.safetensors", "--output", tmp_path / "e.vtp", "--spacing", "2.0")
    assert code == 0 and len(err) == 1 and "no data box" in err[0] and "normalisation cube" in err[0], err


def test_fit_points_refuses_a_spacing_too_fine_for_memory_before_fitting(capsys, tmp_path, points_csv):
    before = _snapshot(tmp_path)
    code, err, out = _run_out(capsys, "fit-points", points_csv, "--output", tmp_path / "m.vtp", "--iterations", "20",
                              "--spacing", "0.02", "--threads", "1", "--json-progress")
    assert code == 2 and len(err) == 1 and err[0].startswith("anatomy-inr: error: --spacing: a "), err
    assert "MB" in err[0] and "use --spacing >= " in err[0]
    assert '"stage":"fit"' not in out  # refused before the fit
    assert _snapshot(tmp_path) == before


def test_readme_documents_every_exit_code_as_the_help_does():
    import re

    from AnatomyINRLib.cli import EXIT_CODES_HELP

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("| exit code | meaning |"):]
    section = section[:section.index("\n\n")]
    table = dict(re.findall(r"^\| (\d+) \| (.+) \|$", section, re.M))
    helped = dict(re.findall(r"^\s+(\d+)\s+(.+)$", EXIT_CODES_HELP, re.M))
    assert table == helped
    assert "All or nothing" in readme and "No collisions" in readme


@pytest.mark.parametrize("command", ["fit-nested", "blend"])
def test_a_spacing_too_fine_for_memory_is_refused_before_fitting(capsys, tmp_path, points_csv, command):
    inner = tmp_path / "inner.csv"
    np.savetxt(inner, np.loadtxt(points_csv, delimiter=",") * 0.8, delimiter=",")
    argv = {"fit-nested": ["fit-nested", "--points", inner, points_csv, "--output-prefix", tmp_path / "n"],
            "blend": ["blend", points_csv, "--output", tmp_path / "b.vtp"]}[command]
    before = _snapshot(tmp_path)
    code, err, out = _run_out(capsys, *argv, "--spacing", "0.02", "--iterations", "20", "--threads", "1",
                              "--json-progress")
    assert code == 2 and len(err) == 1 and "grid at 0.02 mm needs about" in err[0] and "MB" in err[0], err
    assert '"stage":"fit"' not in out  # refused before the fit
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("threads", ["0", "-2", "two"])
@pytest.mark.parametrize("argv", [["fit-points", "p.csv", "--output", "m.vtp"],
                                  ["trees", "train", "inrs", "--output", "c.safetensors"],
                                  ["pulmonary", "train", "data", "--output", "c.safetensors"],
                                  ["image-to-mesh", "train", "data", "--output", "c.safetensors"],
                                  ["serve"]])
def test_every_threads_option_refuses_fewer_than_one_thread(capsys, tmp_path, argv, threads):
    # Before, --threads 0 was silently ignored (torch's default used) and negative values reached torch.
    before = _snapshot(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / a) if "." in a or a in ("inrs", "data") else a for a in argv] + ["--threads", threads])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exc.value.code == 2 and len(err) == 1, err
    assert f"argument --threads: expected a whole number of CPU threads >= 1, got '{threads}'" in err[0]
    assert _snapshot(tmp_path) == before
