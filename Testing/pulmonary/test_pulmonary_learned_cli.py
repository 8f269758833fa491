"""``anatomy-inr pulmonary train`` under torchrun (2 CPU processes, gloo) and ``segments --checkpoint``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from AnatomyINRLib import io
from AnatomyINRLib.cli import main
from AnatomyINRLib.io.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def two_cases(tmp_path_factory, phantom, unseen_phantom):
    root = tmp_path_factory.mktemp("ddp") / "cases"
    for name, ph in (("a", phantom), ("b", unseen_phantom)):
        (root / name).mkdir(parents=True)
        for key in ("ct", "lobes", "airways", "arteries", "veins", "segments"):
            io.write_image(getattr(ph, key), root / name / f"{key}.nrrd")
    return root


def test_torchrun_two_processes_agree(two_cases, tmp_path):
    ckpt = tmp_path / "ddp.safetensors"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "AnatomyINRLib", "pulmonary", "train", str(two_cases), "--output", str(ckpt), "--preset", "tiny",
           "--threads", "1", "--json-progress", "--report", str(tmp_path / "report.json")]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    done = {e["metrics"]["rank"]: e["metrics"]["digest"] for e in events if e["stage"] == "done"}
    assert sorted(done) == [0, 1] and done[0] == done[1]  # both ranks hold the same weights
    tensors, meta = load_checkpoint(ckpt)
    assert meta["world_size"] == 2 and meta["epoch"] == 1 and meta["cases"] == ["a", "b"]
    from AnatomyINRLib.pulmonary._learned_infer import LearnedModel
    from AnatomyINRLib.pulmonary._learned_train import state_digest

    import torch

    assert state_digest(LearnedModel.from_checkpoint(ckpt, torch.device("cpu")).net) == done[0]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["world_size"] == 2 and report["digest"] == done[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.json", "ddp.safetensors", "report.json"]


def test_segments_cli_with_checkpoint(two_cases, tmp_path, capsys):
    ckpt = tmp_path / "m.safetensors"
    assert main(["pulmonary", "train", str(two_cases), "--output", str(ckpt), "--preset", "tiny", "--threads", "1"]) == 0
    d = two_cases / "b"
    base = ["pulmonary", "segments", "--lobes", str(d / "lobes.nrrd"), "--airways", str(d / "airways.nrrd"),
            "--ct", str(d / "ct.nrrd"), "--arteries", str(d / "arteries.nrrd"), "--veins", str(d / "veins.nrrd")]
    out = tmp_path / "seg.nrrd"
    assert main(base + ["--checkpoint", str(ckpt), "--output", str(out), "--report", str(tmp_path / "r.json")]) == 0
    lab, lobes = io.read_image(out).array, io.read_image(d / "lobes.nrrd").array
    assert np.all((lab > 0) == (lobes > 0))
    assert json.loads((tmp_path / "r.json").read_text())["method"].startswith("B ")
    # another label set: one stderr line, exit 2, nothing written
    tensors, meta = load_checkpoint(ckpt)
    from AnatomyINRLib.io.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "other.safetensors", tensors, dict(meta, labels={"1": "RUL"}))
    code = main(base + ["--checkpoint", str(tmp_path / "other.safetensors"), "--output", str(tmp_path / "x.nrrd")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "trained for another label set" in err
    assert not (tmp_path / "x.nrrd").exists()
    code = main(base + ["--checkpoint", str(ckpt), "--segment-points", str(d / "lobes.nrrd"),
                        "--output", str(tmp_path / "y.nrrd")])
    assert code == 2 and "takes no --segmental-labels" in capsys.readouterr().err


def test_train_cli_several_epochs(two_cases, tmp_path):
    """The checkpoint is rewritten after every epoch: more than one epoch must not trip the CLI's output
    transaction (it refused the second write of the same file), and the report is written at the end."""
    ckpt = tmp_path / "e2.safetensors"
    args = ["pulmonary", "train", str(two_cases), "--output", str(ckpt), "--preset", "tiny", "--epochs", "2",
            "--threads", "1", "--report", str(tmp_path / "e2_report.json")]
    assert main(args) == 0
    _, meta = load_checkpoint(ckpt)
    assert meta["epoch"] == 2
    assert json.loads((tmp_path / "e2_report.json").read_text())["epochs"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e2.json", "e2.safetensors", "e2_report.json"]
