"""``anatomy-inr trees train`` interrupted for real (Ctrl-C, or the process killed outright) keeps its finished
epochs in the checkpoint, and the same command line resumes from there to the weights of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from AnatomyINRLib.cli import main
from AnatomyINRLib.io.checkpoint import load_checkpoint

from child_signals import sigint_as_in_a_terminal
from test_trees_diffusion_cli import _write_inrs

REPO = Path(__file__).resolve().parents[2]


def _train_args(inrs, ckpt, epochs, report):
    return ["trees", "train", str(inrs), "--output", str(ckpt), "--preset", "tiny", "--epochs", str(epochs),
            "--threads", "1", "--seed", "3", "--report", str(report)]


def _interrupt(args, sig, after_epoch):
    """Run the CLI in a child process; send ``sig`` once it reports epoch ``after_epoch``; returns the exit code."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-m", "AnatomyINRLib", *args, "--json-progress"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=sigint_as_in_a_terminal)
    try:
        for line in child.stdout:
            event = json.loads(line)
            if event["stage"] == "epoch" and event["metrics"]["epoch"] >= after_epoch:
                child.send_signal(sig)
                break
        child.stdout.read()
        return child.wait(timeout=120), child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)])
def test_interrupted_training_resumes_without_losing_epochs(tmp_path, sig, code):
    inrs = _write_inrs(tmp_path / "inrs", n=8)
    ckpt = tmp_path / "run.safetensors"
    # far more epochs than can run before the signal arrives: the run is always cut short
    exit_code, stderr = _interrupt(_train_args(inrs, ckpt, 5000, tmp_path / "cut_report.json"), sig, after_epoch=3)
    assert exit_code == code, stderr[-2000:]
    _, meta = load_checkpoint(ckpt)
    done = meta["epoch"]
    assert 3 <= done < 5000 and not meta["finished"]
    assert [h["epoch"] for h in meta["history"]] == list(range(1, done + 1))
    assert not (tmp_path / "cut_report.json").exists()  # the report belongs to a finished run only
    # the same command (training to done + 2 epochs) starts at the checkpoint's epoch...
    assert main(_train_args(inrs, ckpt, done + 2, tmp_path / "resumed_report.json")) == 0
    resumed = json.loads((tmp_path / "resumed_report.json").read_text())
    assert resumed["resumed"] and resumed["start_epoch"] == done
    # ...and ends where an uninterrupted run of done + 2 epochs ends, epoch by epoch
    assert main(_train_args(inrs, tmp_path / "straight.safetensors", done + 2, tmp_path / "straight_report.json")) == 0
    straight = json.loads((tmp_path / "straight_report.json").read_text())
    assert not straight["resumed"] and straight["start_epoch"] == 0
    assert resumed["history"] == straight["history"] and len(straight["history"]) == done + 2
    assert resumed["digest"] == straight["digest"] and resumed["ema_digest"] == straight["ema_digest"]
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert leftovers == [] or sig == signal.SIGKILL  # a kill mid-write may leave a temporary, never a torn checkpoint
