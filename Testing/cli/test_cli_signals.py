"""Ctrl-C and SIGTERM at several moments of a real run: exit 130, every pre-existing file byte-identical,
no temporary file left (the run's outputs are one transaction)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from AnatomyINRLib.phantoms import get_phantom

from child_signals import sigint_as_in_a_terminal

REPO = Path(__file__).resolve().parents[2]


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _interrupt_at(argv: list, cwd: Path, stage: str, sig: int) -> int:
    """Run the CLI with --json-progress, send ``sig`` at the first event of ``stage``; its exit code."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "AnatomyINRLib", *argv, "--json-progress"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_in_a_terminal)
    for line in proc.stdout:
        if json.loads(line)["stage"] == stage:
            proc.send_signal(sig)
            break
    else:
        pytest.fail(f"no {stage!r} event: {proc.stderr.read()}")
    code = proc.wait(timeout=120)
    assert proc.stderr.read().strip().splitlines()[-1] == "anatomy-inr: cancelled"
    return code


@pytest.fixture()
def workdir(tmp_path):
    np.savetxt(tmp_path / "p.csv", get_phantom("aaa").sample_surface(120, seed=0).points, delimiter=",")
    (tmp_path / "m.vtp").write_text("the user's earlier mesh")
    (tmp_path / "m.config.json").write_text("the user's earlier config")
    return tmp_path


FIT = ["fit-points", "p.csv", "--output", "m.vtp", "--save-inr", "f.safetensors", "--report", "r.json",
       "--threads", "1", "--spacing", "1.0"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("stage", ["fit", "extract"])
def test_fit_points_interrupted(workdir, stage, sig):
    before = _snapshot(workdir)
    argv = FIT + (["--iterations", "100000"] if stage == "fit" else ["--iterations", "30"])
    assert _interrupt_at(argv, workdir, stage, sig) == 130
    assert _snapshot(workdir) == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_files_already_staged_when_interrupted_are_rolled_back(tmp_path, sig):
    """pulmonary phantom writes nine files, reporting after each: interrupt after the first is staged."""
    out = tmp_path / "phantom"
    out.mkdir()
    (out / "ct.nrrd").write_text("the user's earlier CT")
    before = _snapshot(tmp_path)
    argv = ["pulmonary", "phantom", "--seed", "0", "--size", "small", "--output-dir", str(out)]
    assert _interrupt_at(argv, tmp_path, "write", sig) == 130
    assert _snapshot(tmp_path) == before
