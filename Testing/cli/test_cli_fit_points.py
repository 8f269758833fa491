"""`anatomy-inr fit-points` / `extract` end to end, and every bad input of the issue.

Runs the real CLI in a subprocess (as Slicer's background worker does).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CENTER = np.array([-31.0, 12.0, 140.0])


def _sphere(n, r=15.0, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    return CENTER + r * v / np.linalg.norm(v, axis=1, keepdims=True)


def run_cli(*args, cwd=None):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "AnatomyINRLib", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def _write_csv(path, pts):
    np.savetxt(path, pts, delimiter=",", header="x,y,z", comments="")
    return path


def _reference(tmp_path):
    from AnatomyINRLib.core.types import ImageGrid
    from AnatomyINRLib.io import write_image

    rot = np.array([[0.96, -0.28, 0.0], [0.28, 0.96, 0.0], [0.0, 0.0, 1.0]])
    affine = ImageGrid.make_affine(CENTER - [22, 20, 20], [1.0, 1.2, 1.5], rot)
    path = tmp_path / "ref.nrrd"
    write_image(ImageGrid(np.zeros((44, 38, 28), np.int16), affine), path)
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fit")
    pts = _write_csv(tmp / "pts.csv", _sphere(120))
    ref = _reference(tmp)
    out = tmp / "surface.vtp"
    res = run_cli("fit-points", pts, "--output", out, "--reference", ref, "--output-labelmap", tmp / "label.nrrd",
                  "--output-sdf", tmp / "sdf.nii.gz", "--save-inr", tmp / "field.safetensors", "--preset", "fast",
                  "--iterations", "200", "--spacing", "1.0", "--report", tmp / "report.json", "--json-progress",
                  "--device", "cpu", "--threads", "1")
    return tmp, res


def test_fit_points_writes_every_output(fitted):
    tmp, res = fitted
    assert res.returncode == 0, res.stderr
    for name in ("surface.vtp", "label.nrrd", "sdf.nii.gz", "field.safetensors", "field.json", "report.json",
                 "surface.config.json"):
        assert (tmp / name).is_file(), name
    assert not list(tmp.glob(".*tmp*")), "temporary files left behind"


def test_fit_points_config_json_round_trips(fitted):
    from AnatomyINRLib.surface import SurfaceFitConfig
    from AnatomyINRLib.surface.config import preset_config

    tmp, _ = fitted
    data = json.loads((tmp / "surface.config.json").read_text())
    assert data["command"] == "fit-points" and data["seed"] == 0 and data["iterations"] == 200
    config = SurfaceFitConfig.from_dict(data["config"])
    assert config == preset_config("fast") and config.to_dict() == data["config"]


def test_json_progress_is_one_object_per_line(fitted):
    _, res = fitted
    events = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    stages = {e["stage"] for e in events}
    assert {"prepare", "fit", "extract"} <= stages
    assert all(0.0 <= e["fraction"] <= 1.0 for e in events)


def test_report_content(fitted):
    tmp, _ = fitted
    report = json.loads((tmp / "report.json").read_text())
    for key in ("iterations", "seconds", "device", "final_loss", "n_points", "config", "residual_mm",
                "residuals_mm", "outliers", "area_mm2", "volume_mm3"):
        assert key in report, key
    assert report["iterations"] == 200 and report["n_points"] == 120
    assert len(report["residuals_mm"]) == 120
    assert report["mesh"]["watertight"] and report["mesh"]["n_components"] == 1
    assert report["volume_mm3"] == pytest.approx(4 / 3 * np.pi * 15.0**3, rel=0.06)


def test_mesh_and_labelmap_land_in_the_right_place(fitted):
    from AnatomyINRLib.io import read_image, read_mesh

    tmp, _ = fitted
    mesh = read_mesh(tmp / "surface.vtp")
    assert np.linalg.norm(mesh.vertices.mean(axis=0) - CENTER) < 1.0
    label = read_image(tmp / "label.nrrd")
    ref = read_image(tmp / "ref.nrrd")
    np.testing.assert_allclose(label.ijk_to_ras, ref.ijk_to_ras, atol=1e-9)
    assert label.shape == ref.shape
    inside = label.voxel_centers()[label.array.reshape(-1) > 0]
    assert np.linalg.norm(inside - CENTER, axis=1).max() < 15.0 + 1.5
    assert len(inside) * np.prod(ref.spacing) == pytest.approx(4 / 3 * np.pi * 15.0**3, rel=0.1)
    sdf = read_image(tmp / "sdf.nii.gz")
    np.testing.assert_array_equal(sdf.array < 0, label.array > 0)


def test_extract_remeshes_the_saved_field(fitted):
    tmp, _ = fitted
    out = tmp / "remeshed.stl"
    res = run_cli("extract", tmp / "field.safetensors", "--output", out, "--spacing", "0.7", "--report",
                  tmp / "extract.json")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp / "extract.json").read_text())
    assert report["mesh"]["watertight"]
    assert report["volume_mm3"] == pytest.approx(4 / 3 * np.pi * 15.0**3, rel=0.06)
    from AnatomyINRLib.meshing import MeshingConfig

    data = json.loads((tmp / "remeshed.config.json").read_text())
    assert data["command"] == "extract" and data["inr"] == str(tmp / "field.safetensors")
    config = MeshingConfig.from_dict(data["config"])
    assert config == MeshingConfig(spacing_mm=0.7, largest_component=True)


def test_warm_start_from_saved_field(fitted, tmp_path):
    tmp, _ = fitted
    pts = _write_csv(tmp_path / "moved.csv", _sphere(120) + [0.5, 0, 0])
    res = run_cli("fit-points", pts, "--output", tmp_path / "m.ply", "--init-inr", tmp / "field.safetensors",
                  "--preset", "fast", "--report", tmp_path / "r.json", "--device", "cpu", "--spacing", "1.0")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    # A warm start runs warm_start_fraction (0.35) of the preset's 400 iterations.
    assert report["warm_started"] and report["iterations"] == 140


def _assert_fails(res, tmp_path, pattern, outputs=("out.vtp",), code=2):
    """Exit ``code`` (2 bad input, 3 output not writable: cli docstring), one stderr line, no outputs."""
    assert res.returncode == code, res.stderr
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert pattern.lower() in lines[0].lower(), lines[0]
    for name in outputs:
        assert not (tmp_path / name).exists()


def test_missing_points_file(tmp_path):
    res = run_cli("fit-points", tmp_path / "nope.csv", "--output", tmp_path / "out.vtp")
    _assert_fails(res, tmp_path, "does not exist")


def test_corrupt_markups_json(tmp_path):
    bad = tmp_path / "pts.mrk.json"
    bad.write_text('{"markups": [ {"controlPoints": [')
    res = run_cli("fit-points", bad, "--output", tmp_path / "out.vtp")
    _assert_fails(res, tmp_path, "json")


def test_unknown_extensions(tmp_path):
    pts = _write_csv(tmp_path / "pts.csv", _sphere(30))
    res = run_cli("fit-points", tmp_path / "pts.xyz", "--output", tmp_path / "out.vtp")
    _assert_fails(res, tmp_path, "unsupported")
    res = run_cli("fit-points", pts, "--output", tmp_path / "out.docx")
    _assert_fails(res, tmp_path, "unsupported", outputs=("out.docx",), code=2)


def test_too_few_points(tmp_path):
    pts = _write_csv(tmp_path / "pts.csv", _sphere(9))
    _assert_fails(run_cli("fit-points", pts, "--output", tmp_path / "out.vtp"), tmp_path, "at least 10")


def test_nan_coordinates(tmp_path):
    p = _sphere(30)
    p[4, 2] = np.nan
    pts = _write_csv(tmp_path / "pts.csv", p)
    _assert_fails(run_cli("fit-points", pts, "--output", tmp_path / "out.vtp"), tmp_path, "nan")


def test_coplanar_and_collinear_points(tmp_path):
    rng = np.random.default_rng(0)
    flat = np.column_stack([rng.uniform(0, 9, 40), rng.uniform(0, 9, 40), np.zeros(40)])
    pts = _write_csv(tmp_path / "flat.csv", flat)
    _assert_fails(run_cli("fit-points", pts, "--output", tmp_path / "out.vtp"), tmp_path, "plane")
    line = np.outer(np.linspace(0, 1, 40), [1.0, 2.0, 3.0])
    pts = _write_csv(tmp_path / "line.csv", line)
    _assert_fails(run_cli("fit-points", pts, "--output", tmp_path / "out.vtp"), tmp_path, "line")


def test_duplicates_warn_and_still_fit(tmp_path):
    p = _sphere(40)
    pts = _write_csv(tmp_path / "pts.csv", np.vstack([p, p[:6]]))
    res = run_cli("fit-points", pts, "--output", tmp_path / "out.vtp", "--preset", "fast", "--iterations", "20",
                  "--spacing", "1.5", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    assert "removed 6 duplicate" in res.stderr


def test_more_than_200k_points_are_subsampled_with_a_warning(tmp_path):
    pts = tmp_path / "many.npy"
    np.save(pts, _sphere(200_500, seed=5))
    res = run_cli("fit-points", pts, "--output", tmp_path / "out.vtp", "--preset", "fast", "--iterations", "5",
                  "--spacing", "2.0", "--device", "cpu", "--keep-all-components")
    assert "random subset" in res.stderr
    assert res.returncode == 0, res.stderr


def test_unwritable_output(tmp_path):
    pts = _write_csv(tmp_path / "pts.csv", _sphere(30))
    res = run_cli("fit-points", pts, "--output", tmp_path / "no" / "such" / "dir" / "out.vtp")
    assert res.returncode == 3 and "does not exist" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user that can write anywhere (root)")
        res = run_cli("fit-points", pts, "--output", locked / "out.vtp")
        assert res.returncode == 3 and "not writable" in res.stderr
    finally:
        locked.chmod(0o700)


def test_unreadable_reference_image(tmp_path):
    pts = _write_csv(tmp_path / "pts.csv", _sphere(30))
    ref = tmp_path / "ref.nrrd"
    ref.write_bytes(b"NRRD0004\nthis is not an image\n")
    res = run_cli("fit-points", pts, "--output", tmp_path / "out.vtp", "--reference", ref,
                  "--output-labelmap", tmp_path / "label.nrrd")
    _assert_fails(res, tmp_path, "ref.nrrd", outputs=("out.vtp", "label.nrrd"))


def test_labelmap_without_reference(tmp_path):
    pts = _write_csv(tmp_path / "pts.csv", _sphere(30))
    res = run_cli("fit-points", pts, "--output", tmp_path / "out.vtp", "--output-labelmap", tmp_path / "l.nrrd")
    _assert_fails(res, tmp_path, "--reference", outputs=("out.vtp", "l.nrrd"))


def test_existing_output_is_untouched_on_failure(tmp_path):
    out = tmp_path / "out.vtp"
    out.write_text("previous result")
    pts = _write_csv(tmp_path / "pts.csv", _sphere(9))
    res = run_cli("fit-points", pts, "--output", out)
    assert res.returncode == 2 and "at least 10" in res.stderr
    assert out.read_text() == "previous result"


def test_input_file_is_never_modified(tmp_path):
    pts = _write_csv(tmp_path / "pts.csv", _sphere(40))
    before = Path(pts).read_bytes()
    res = run_cli("fit-points", pts, "--output", tmp_path / "out.vtp", "--preset", "fast", "--iterations", "10",
                  "--spacing", "2", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    assert Path(pts).read_bytes() == before
