"""The diffusion training under torchrun: 2 CPU processes (gloo) end with identical weights (through the
library and through ``anatomy-inr trees train``); ranks with different data refuse to train."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.io.checkpoint import load_checkpoint
from AnatomyINRLib.trees._diffusion_train import run_training, state_digest
from AnatomyINRLib.trees.config import DiffusionConfig

from test_trees_diffusion_cli import _write_inrs
from trees_toy_weights import TOY_LAYOUT, draw_mixture

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("trees_ddp_worker.py")


def _torchrun(tmp_path, *extra):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
           str(tmp_path / "data.npy"), str(tmp_path / "ddp.safetensors"), *extra]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    lines = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("rank*.json"))]
    return run, {line["rank"]: line for line in lines}


@pytest.mark.parametrize("hull", [False, True])
def test_two_processes_train_identical_weights(tmp_path, hull):
    _, weights = draw_mixture(24, np.random.default_rng(5))
    np.save(tmp_path / "data.npy", weights)
    run, ranks = _torchrun(tmp_path, *(["--hull"] if hull else []))
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(ranks) == [0, 1]
    assert ranks[0]["digest"] == ranks[1]["digest"] and ranks[0]["ema_digest"] == ranks[1]["ema_digest"]
    assert ranks[0]["world_size"] == 2
    tensors, meta = load_checkpoint(tmp_path / "ddp.safetensors")
    assert meta["world_size"] == 2 and meta["epoch"] == 2
    saved = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    if hull:  # stored once, with the EMA weights
        saved["hull"] = tensors["ema.hull"]
    assert state_digest(saved) == ranks[0]["digest"]
    # each rank takes half of every global batch: one process on the whole batch follows the same path
    cfg = DiffusionConfig(token_size=8, width=32, depth=1, heads=2, diffusion_steps=100, batch_size=8, epochs=2)
    if hull:
        cfg = cfg.replace(head="hull", x0_skip=False)
    single = run_training(weights, TOY_LAYOUT, cfg, 3, torch.device("cpu"), tmp_path / "one.safetensors",
                          ProgressReporter())
    one = {k[6:]: v for k, v in load_checkpoint(tmp_path / "one.safetensors")[0].items() if k.startswith("model.")}
    two = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-5  # only the summation order differs
    assert [h["loss"] for h in single["history"]] != []


def test_ranks_with_different_data_refuse(tmp_path):
    _, weights = draw_mixture(24, np.random.default_rng(5))
    np.save(tmp_path / "data.npy", weights)
    run, ranks = _torchrun(tmp_path, "--perturb-rank", "1")
    assert run.returncode != 0
    assert sorted(ranks) == [0, 1]
    for line in ranks.values():
        assert "ranks disagree on the training data" in line["error"] and "rank 0:" in line["error"]
    assert not (tmp_path / "ddp.safetensors").exists()


def test_cli_train_under_torchrun(tmp_path):
    inrs = _write_inrs(tmp_path / "inrs", n=4)
    ckpt = tmp_path / "ddp.safetensors"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "AnatomyINRLib", "trees", "train", str(inrs), "--output", str(ckpt), "--preset", "tiny",
           "--threads", "1", "--json-progress", "--report", str(tmp_path / "report.json")]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    events = []
    for line in run.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # two ranks share stdout: a line may interleave
    done = {e["metrics"]["rank"]: e["metrics"]["digest"] for e in events if e.get("stage") == "done"}
    assert sorted(done) == [0, 1] and done[0] == done[1]
    tensors, meta = load_checkpoint(ckpt)
    assert meta["world_size"] == 2 and meta["epoch"] == 2 and meta["inr"]["names"] == [f"inr_{i}.safetensors" for i in range(4)]
    assert state_digest({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}) == done[0]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["world_size"] == 2 and report["digest"] == done[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.json", "ddp.safetensors", "inrs", "report.json"]
