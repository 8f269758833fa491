"""`anatomy-inr trees generate-dataset` / `trees fit` end to end, the extract round trip and bad inputs.

Runs the real CLI in a subprocess; exit codes as documented (2 bad input, 3 output not writable).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from AnatomyINRLib import io
from AnatomyINRLib.fitting.config import OptimConfig
from AnatomyINRLib.nn.occupancy import OccupancyNetworkConfig
from AnatomyINRLib.phantoms.tree_synth import SynthTreeParams, grow_tree, tree_mesh
from AnatomyINRLib.trees import TreeFitConfig, TreeSamplingConfig

DATA = Path(__file__).resolve().parents[1] / "Data" / "vmtk"


def run_cli(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "AnatomyINRLib", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def quick_config(tmp_path_factory):
    cfg = TreeFitConfig(network=OccupancyNetworkConfig(width=32, blocks=1),
                        sampling=TreeSamplingConfig(points_per_draw=1000, resample_every=0, batch_size=512,
                                                    eval_points=1000),
                        optim=OptimConfig(iterations=40, lr=5e-3, min_iterations=40, check_every=20, rel_tol=0.0))
    path = tmp_path_factory.mktemp("cfg") / "fit.json"
    path.write_text(cfg.to_json())
    return path


@pytest.fixture(scope="module")
def mesh_file(tmp_path_factory):
    g = grow_tree(SynthTreeParams(seed=1, bifurcations=1, terminal_radius=2.5, domain_radius=20.0, min_distance=6.0))
    path = tmp_path_factory.mktemp("mesh") / "small.vtp"
    io.write_mesh(tree_mesh(g, 0.6), path)
    return path


def test_generate_dataset(tmp_path):
    out = tmp_path / "ds"
    r = run_cli("trees", "generate-dataset", "--count", 2, "--seed", 4, "--output-dir", out,
                "--max-bifurcations", 3, "--mesh-spacing", 0.5)
    assert r.returncode == 0, r.stderr
    info = json.loads((out / "dataset.json").read_text())
    assert [t["name"] for t in info["trees"]] == ["tree_000", "tree_001"]
    for t in info["trees"]:
        mesh = io.read_mesh(out / "meshes" / f"{t['name']}.vtp")
        graph, meta = io.read_centerline(out / "centerlines" / f"{t['name']}.centerline.json")
        occ = io.read_image(out / "occupancy" / f"{t['name']}.nrrd")
        assert 1 <= len(graph.bifurcations()) == t["statistics"]["bifurcations"] <= 3
        assert meta["params"] == t["params"] and mesh.signed_volume() > 0
        assert set(np.unique(occ.array)) == {0, 1}
    again = tmp_path / "ds2"
    assert run_cli("trees", "generate-dataset", "--count", 1, "--seed", 4, "--output-dir", again,
                   "--max-bifurcations", 3, "--mesh-spacing", 0.5).returncode == 0
    assert (again / "centerlines" / "tree_000.centerline.json").read_bytes() == \
        (out / "centerlines" / "tree_000.centerline.json").read_bytes()  # tree i depends on (seed, i) only


@pytest.mark.parametrize("args, message", [
    (["--count", "0"], "--count"),
    (["--count", "1", "--mesh-spacing", "0"], "--mesh-spacing"),
    (["--count", "1", "--min-bifurcations", "5", "--max-bifurcations", "2"], "--min-bifurcations"),
])
def test_generate_bad_arguments_write_nothing(tmp_path, args, message):
    out = tmp_path / "ds"
    r = run_cli("trees", "generate-dataset", "--output-dir", out, *args)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_generate_into_a_missing_parent_is_exit_3(tmp_path):
    r = run_cli("trees", "generate-dataset", "--count", 1, "--output-dir", tmp_path / "no" / "ds")
    assert r.returncode == 3 and "does not exist" in r.stderr


def test_fit_one_mesh_then_extract(tmp_path, mesh_file, quick_config):
    inr = tmp_path / "tree.safetensors"
    r = run_cli("trees", "fit", mesh_file, "--output", inr, "--config", quick_config, "--seed", 2,
                "--report", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "tree.json").read_text())
    assert meta["field_kind"] == "occupancy-logit" and meta["fit"]["seed"] == 2
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["trees"] == 1 and report["per_tree"][0]["iterations"] == 40
    volumes = []
    for spacing in (1.0, 0.7):  # any spacing: the same field meshed finer
        out = tmp_path / f"x{spacing}.vtp"
        r = run_cli("extract", inr, "--output", out, "--spacing", spacing)
        assert r.returncode == 0, r.stderr
        volumes.append(io.read_mesh(out).signed_volume())
    assert volumes[0] > 0 and volumes[1] == pytest.approx(volumes[0], rel=0.1)


def test_fit_a_folder_with_a_bad_file(tmp_path, mesh_file, quick_config):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.vtp").write_bytes(mesh_file.read_bytes())
    (src / "broken.stl").write_bytes(b"\x00garbage")
    (src / "notes.txt").write_text("not a mesh")
    out = tmp_path / "out"
    r = run_cli("trees", "fit", src, "--output", out, "--config", quick_config)
    assert r.returncode == 2 and "broken.stl" in r.stderr and "--skip-bad" in r.stderr
    assert not out.exists()
    r = run_cli("trees", "fit", src, "--output", out, "--config", quick_config, "--skip-bad")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.safetensors", "fit_report.json",
                                                     "trees_fit.config.json"]
    report = json.loads((out / "fit_report.json").read_text())
    assert list(report["unreadable"]) == ["broken.stl"] and report["trees"] == 1


@pytest.mark.parametrize("frame", ["set", "tree"])
def test_fit_a_folder_in_one_frame_or_one_per_tree(tmp_path, mesh_file, quick_config, frame):
    """--frame overrides the config's: "set" writes every INR with the folder's one normalisation."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.vtp").write_bytes(mesh_file.read_bytes())
    g = grow_tree(SynthTreeParams(seed=3, bifurcations=1, terminal_radius=2.5, domain_radius=15.0, min_distance=6.0))
    io.write_mesh(tree_mesh(g, 0.6), src / "b.vtp")
    other = TreeFitConfig.from_json(quick_config.read_text()).replace(frame="tree" if frame == "set" else "set")
    config = tmp_path / "fit.json"
    config.write_text(other.to_json())  # --frame must override the config's frame
    r = run_cli("trees", "fit", src, "--output", tmp_path / "out", "--config", config, "--frame", frame)
    assert r.returncode == 0, r.stderr
    norms = [io.load_inr(tmp_path / "out" / f"{n}.safetensors")[0].normalization for n in "ab"]
    same = np.allclose(norms[0].center, norms[1].center) and norms[0].scale == norms[1].scale
    assert same == (frame == "set")
    saved = json.loads((tmp_path / "out" / "trees_fit.config.json").read_text())
    assert saved["config"]["frame"] == frame


def test_fit_open_mesh_is_refused(tmp_path, quick_config):
    inr = tmp_path / "o.safetensors"
    r = run_cli("trees", "fit", DATA / "aorta-surface-branch-split.vtp", "--output", inr, "--config", quick_config)
    assert r.returncode == 2
    assert "boundary" in r.stderr and "open or non-manifold mesh cannot be fitted" in r.stderr
    assert "fitted as INRs instead" not in r.stderr
    assert not inr.exists() and not (tmp_path / "o.json").exists()


def test_fit_empty_folder_and_missing_input(tmp_path):
    (tmp_path / "empty").mkdir()
    r = run_cli("trees", "fit", tmp_path / "empty", "--output", tmp_path / "out")
    assert r.returncode == 2 and "no mesh files" in r.stderr and not (tmp_path / "out").exists()
    r = run_cli("trees", "fit", tmp_path / "nothing.vtp", "--output", tmp_path / "x.safetensors")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_fit_refuses_to_overwrite_its_input(tmp_path, mesh_file):
    r = run_cli("trees", "fit", mesh_file, "--output", mesh_file)
    assert r.returncode == 2 and "refusing to overwrite an input" in r.stderr
