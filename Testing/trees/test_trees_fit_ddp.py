"""Stage 1 under torchrun: 2 CPU processes shard a folder of trees (rank r fits trees r, r + 2, ...),
all warm-started from rank 0's first tree and in the frame of the whole folder (not of a rank's
share), merge into the result one process gives for the whole folder, refuse when the ranks disagree on the data, and through ``anatomy-inr trees fit`` write one folder or nothing at all."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from AnatomyINRLib import io
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.fitting.config import OptimConfig
from AnatomyINRLib.nn.occupancy import OccupancyNetworkConfig
from AnatomyINRLib.phantoms.tree_synth import SynthTreeParams, grow_tree, tree_mesh
from AnatomyINRLib.trees import TreeFitConfig, TreeSamplingConfig, fit_trees

from trees_fit_ddp_worker import digest

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("trees_fit_ddp_worker.py")
CONFIG = TreeFitConfig(network=OccupancyNetworkConfig(width=32, blocks=1),
                       sampling=TreeSamplingConfig(points_per_draw=1000, resample_every=0, batch_size=256,
                                                   eval_points=1000),
                       optim=OptimConfig(iterations=30, lr=5e-3, min_iterations=30, check_every=10, rel_tol=0.0),
                       warm_start=True, frame="set")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three small closed trees as .vtp files, and the config file."""
    root = tmp_path_factory.mktemp("ddp")
    (root / "meshes").mkdir()
    for i in range(3):
        g = grow_tree(SynthTreeParams(seed=10 + i, bifurcations=1, terminal_radius=2.5, domain_radius=20.0,
                                      min_distance=6.0))
        io.write_mesh(tree_mesh(g, 0.8), root / "meshes" / f"t{i}.vtp")
    (root / "fit.json").write_text(CONFIG.to_json())
    return root


def _torchrun(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=cwd)


def _ranks(path):
    return {d["rank"]: d for d in (json.loads(p.read_text()) for p in sorted(path.glob("rank*.json")))}


def test_two_ranks_shard_and_merge(folder, tmp_path):
    run = _torchrun([WORKER, folder / "meshes", folder / "fit.json", tmp_path], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    ranks = _ranks(tmp_path)
    assert sorted(ranks) == [0, 1]
    assert ranks[0]["names"] == ranks[1]["names"] == ["t0", "t1", "t2"]
    assert ranks[0]["digests"] == ranks[1]["digests"]  # every rank holds the whole merged result
    assert ranks[0]["seeds"] == [7, 8, 9]  # seed + input index, whichever rank fitted it
    assert ranks[0]["report"]["world_size"] == 2 and len(ranks[0]["report"]["rank_seconds"]) == 2
    # rank 0 fitted t0, sent it as the template, then t2; rank 1 fitted t1 from that template: one
    # process fitting all three (t1 and t2 warm-started from t0) gives bit-identical weights
    torch.set_num_threads(1)
    meshes = [io.read_mesh(folder / "meshes" / f"t{i}.vtp") for i in range(3)]
    alone = fit_trees(meshes, config=CONFIG, seed=7, device="cpu").fields
    assert [digest(f) for f in alone] == ranks[0]["digests"]
    assert len(set(ranks[0]["digests"])) == 3
    # without the shared template rank 1 would have fitted t1 cold: other weights
    cold = fit_trees([meshes[1]], config=CONFIG, seed=8, device="cpu").fields[0]
    assert digest(cold) != ranks[0]["digests"][1]


def test_ranks_with_different_meshes_refuse(folder, tmp_path):
    run = _torchrun([WORKER, folder / "meshes", folder / "fit.json", tmp_path, "--perturb-rank", "1"], tmp_path)
    assert run.returncode != 0
    ranks = _ranks(tmp_path)
    assert sorted(ranks) == [0, 1]
    for line in ranks.values():
        assert line["error"].startswith("InputError: torchrun ranks disagree on the trees to fit")
        assert "rank 0: 3 meshes" in line["error"] and "rank 1: 3 meshes" in line["error"]


def test_cli_writes_one_folder_under_torchrun(folder, tmp_path):
    out = tmp_path / "inrs"
    run = _torchrun(["-m", "AnatomyINRLib", "trees", "fit", folder / "meshes", "--output", out,
                     "--config", folder / "fit.json", "--seed", 7, "--threads", 1], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["fit_report.json", "trees_fit.config.json"] + [f"t{i}.{e}" for i in range(3) for e in ("json", "safetensors")])
    report = json.loads((out / "fit_report.json").read_text())
    assert report["world_size"] == 2 and [r["name"] for r in report["per_tree"]] == ["t0", "t1", "t2"]
    torch.set_num_threads(1)
    meshes = [io.read_mesh(folder / "meshes" / f"t{i}.vtp") for i in range(3)]
    alone = fit_trees(meshes, config=CONFIG, seed=7, device="cpu").fields[1]
    saved, _ = io.load_inr(out / "t1.safetensors")
    pts = np.random.default_rng(0).uniform(-15, 15, (2000, 3))
    np.testing.assert_allclose(saved(pts), alone(pts), rtol=0, atol=1e-5)  # logits of order 10: the same weights


@pytest.mark.parametrize("broken", [1, 0])
def test_cli_failure_on_one_rank_writes_nothing(folder, tmp_path, broken):
    """An open mesh in rank 1's share, or rank 0's template tree: both ranks exit 2 (no rank waits
    forever for the template) and the output folder is never left behind."""
    bad = tmp_path / "meshes"
    bad.mkdir()
    for i in range(3):
        mesh = io.read_mesh(folder / "meshes" / f"t{i}.vtp")
        if i == broken:
            mesh = TriangleMesh(mesh.vertices, mesh.faces[:-4])
        io.write_mesh(mesh, bad / f"t{i}.vtp")
    out = tmp_path / "inrs"
    run = _torchrun(["-m", "AnatomyINRLib", "trees", "fit", bad, "--output", out, "--config", folder / "fit.json",
                     "--threads", 1], tmp_path)
    assert run.returncode != 0 and "exitcode: 2" in run.stderr, run.stderr[-2000:]  # the ranks' InputError
    assert f"t{broken}: expected a closed" in run.stderr
    assert ("torchrun rank 1 failed" if broken == 1 else "torchrun rank 0 failed before sharing") in run.stderr
    assert not out.exists()


def test_a_rank_left_with_nothing_to_fit_still_takes_part(folder, tmp_path):
    """--skip-bad drops rank 1's only tree: rank 1 still joins the template broadcast and the exchange
    (or both ranks would hang), and the folder holds rank 0's tree and names the skipped one."""
    src = tmp_path / "meshes"
    src.mkdir()
    good = io.read_mesh(folder / "meshes" / "t0.vtp")
    io.write_mesh(good, src / "t0.vtp")
    io.write_mesh(TriangleMesh(good.vertices, good.faces[:-4]), src / "t1.vtp")  # open: rank 1's share
    out = tmp_path / "inrs"
    run = _torchrun(["-m", "AnatomyINRLib", "trees", "fit", src, "--output", out, "--config", folder / "fit.json",
                     "--threads", 1, "--skip-bad"], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((out / "fit_report.json").read_text())
    assert report["world_size"] == 2 and [r["name"] for r in report["per_tree"]] == ["t0"]
    assert list(report["skipped"]) == ["t1"] and "expected a closed" in report["skipped"]["t1"]


def test_when_rank_0_has_nothing_to_fit_rank_1_makes_its_own_template(folder, tmp_path):
    """Rank 0's trees (t0, t2) are open and skipped: rank 1 fits t1 cold and warm-starts t3 from it, as
    one process does with the same --skip-bad input (its first kept tree is the template)."""
    src = tmp_path / "meshes"
    src.mkdir()
    good = [io.read_mesh(folder / "meshes" / f"t{i}.vtp") for i in range(3)]
    meshes = [TriangleMesh(good[0].vertices, good[0].faces[:-4]), good[1],
              TriangleMesh(good[2].vertices, good[2].faces[:-4]), good[2]]
    for i, mesh in enumerate(meshes):
        io.write_mesh(mesh, src / f"t{i}.vtp")
    out = tmp_path / "inrs"
    run = _torchrun(["-m", "AnatomyINRLib", "trees", "fit", src, "--output", out, "--config", folder / "fit.json",
                     "--seed", 7, "--threads", 1, "--skip-bad"], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    torch.set_num_threads(1)
    alone = fit_trees([io.read_mesh(src / f"t{i}.vtp") for i in range(4)], names=[f"t{i}" for i in range(4)],
                      config=CONFIG, skip_bad=True, seed=7, device="cpu")
    assert alone.names == ["t1", "t3"] and list(alone.skipped) == ["t0", "t2"]
    pts = np.random.default_rng(0).uniform(-15, 15, (2000, 3))
    for name, field in zip(alone.names, alone.fields):
        saved, _ = io.load_inr(out / f"{name}.safetensors")
        np.testing.assert_allclose(saved(pts), field(pts), rtol=0, atol=1e-5)
