"""The demo (the main job) runs end to end and writes every promised output."""

import json
import os
import subprocess
import sys


def test_demo_smoke(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "AnatomyINRLib", "demo", "--output-dir", tmp_path / "d",
                          "--preset", "fast", "--iterations", "150", "--points", "150", "--spacing", "1.5",
                          "--device", "cpu"], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "d"
    for name in ("aaa_surface.vtp", "aaa_labelmap.nrrd", "aaa_metrics.json", "aaa_demo.png", "aaa_points.mrk.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "aaa_metrics.json").read_text())
    assert metrics["mesh_quality"]["watertight"] and metrics["mesh_quality"]["n_components"] == 1
    # Even a short fit recovers the phantom well; a broken frame or sign would give Dice near 0.
    assert metrics["scores"]["dice"] > 0.85
    assert "Dice" in res.stdout
    from AnatomyINRLib.surface import SurfaceFitConfig
    from AnatomyINRLib.surface.config import preset_config

    data = json.loads((out / "aaa_surface.config.json").read_text())
    assert data["command"] == "demo" and (data["points"], data["iterations"], data["seed"]) == (150, 150, 0)
    config = SurfaceFitConfig.from_dict(data["config"])
    assert config == preset_config("fast") and data["config"] == metrics["config"]


def test_demo_rejects_bad_arguments(tmp_path):
    res = subprocess.run([sys.executable, "-m", "AnatomyINRLib", "demo", "--output-dir", tmp_path / "d",
                          "--points", "5"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--points" in res.stderr
    assert not (tmp_path / "d").exists()
