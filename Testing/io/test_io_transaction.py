"""All-or-nothing output sets (io.transaction) and output/input collision checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from AnatomyINRLib.core.errors import InputError, OutputError
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.io import atomic_path, check_distinct_paths, output_transaction, write_mesh
from AnatomyINRLib.io import transaction as txn_module

from child_signals import sigint_as_in_a_terminal

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _snapshot(folder: Path) -> dict:
    """Every file in folder (hidden ones too) → (bytes, inode)."""
    return {p.name: (p.read_bytes(), p.stat().st_ino) for p in sorted(folder.iterdir()) if p.is_file()}


def _tetra() -> TriangleMesh:
    v = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]], float)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int64)
    return TriangleMesh(v, f)


def test_outside_a_transaction_writes_at_once(tmp_path):
    _write(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "new"


def test_nothing_is_visible_until_the_run_succeeds(tmp_path):
    (tmp_path / "a.txt").write_text("old a")
    with output_transaction() as txn:
        _write(tmp_path / "a.txt", "new a")
        _write(tmp_path / "b.txt", "new b")
        assert (tmp_path / "a.txt").read_text() == "old a"
        assert not (tmp_path / "b.txt").exists()
        assert [p.name for p in txn.targets] == ["a.txt", "b.txt"]
    assert (tmp_path / "a.txt").read_text() == "new a"
    assert (tmp_path / "b.txt").read_text() == "new b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]  # no temporaries, no backups


@pytest.mark.parametrize("error", [RuntimeError("fit failed"), KeyboardInterrupt()])
def test_a_failed_run_leaves_every_file_as_it_was(tmp_path, error):
    (tmp_path / "m.vtp").write_text("user's mesh")
    (tmp_path / "r.json").write_text("user's report")
    before = _snapshot(tmp_path)
    with pytest.raises(type(error)):
        with output_transaction():
            write_mesh(_tetra(), tmp_path / "m.vtp")
            _write(tmp_path / "r.json", "{}")
            _write(tmp_path / "new.txt", "x")
            raise error
    assert _snapshot(tmp_path) == before


def test_a_rename_failing_mid_commit_restores_the_earlier_targets(tmp_path, monkeypatch):
    """Disk full / permission error on the 2nd rename: the 1st target gets its old bytes back."""
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(f"old {name}")
    before = _snapshot(tmp_path)
    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if Path(dst).name == "b.txt" and ".tmp" in Path(src).name:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    with pytest.raises(OutputError, match="b.txt.*No space left.*no output was changed"):
        with output_transaction():
            for name in ("a.txt", "b.txt", "c.txt"):
                _write(tmp_path / name, f"new {name}")
            monkeypatch.setattr(txn_module.os, "replace", failing_replace)
    monkeypatch.setattr(txn_module.os, "replace", real_replace)
    assert any(dst == "a.txt" and ".tmp" in src for src, dst in calls)  # a.txt had been replaced...
    assert _snapshot(tmp_path) == before  # ...and was restored (same inode), nothing left behind


def test_the_same_target_twice_is_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(OutputError, match="written twice"):
        with output_transaction():
            _write(tmp_path / "a.txt", "1")
            _write(tmp_path / "sub" / ".." / "a.txt", "2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def test_nested_transactions_join_the_outer_one(tmp_path):
    with output_transaction() as outer:
        with output_transaction() as inner:
            _write(tmp_path / "a.txt", "x")
        assert inner is outer and not (tmp_path / "a.txt").exists()
    assert (tmp_path / "a.txt").read_text() == "x"


def test_save_inr_and_its_sidecar_commit_together(tmp_path):
    import torch

    from AnatomyINRLib.io import save_inr
    from AnatomyINRLib.nn.field import NeuralField, Normalization
    from AnatomyINRLib.nn.mlp import MLP, MLPConfig

    torch.manual_seed(0)
    field = NeuralField(MLP(MLPConfig(width=8, depth=2)), Normalization(np.zeros(3), 10.0))
    with pytest.raises(RuntimeError):
        with output_transaction():
            save_inr(field, tmp_path / "f.safetensors")
            raise RuntimeError("later step failed")
    assert list(tmp_path.iterdir()) == []
    with output_transaction():
        save_inr(field, tmp_path / "f.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json", "f.safetensors"]


_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from AnatomyINRLib.io import atomic_path, output_transaction
    out = Path(sys.argv[1])
    try:
        with output_transaction():
            for name in ("m.vtp", "r.json"):
                with atomic_path(out / name) as tmp:
                    tmp.write_text("new " + name)
            print("written", flush=True)
            time.sleep(30)
    except KeyboardInterrupt:
        sys.exit(130)
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_running_leaves_every_file_as_it_was(tmp_path, sig):
    (tmp_path / "m.vtp").write_text("user's mesh")
    before = _snapshot(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env,
                             preexec_fn=sigint_as_in_a_terminal)
    assert child.stdout.readline().strip() == "written"
    assert len(list(tmp_path.iterdir())) == 3  # the two staged temporaries exist now...
    child.send_signal(sig)
    assert child.wait(timeout=30) == 130
    assert _snapshot(tmp_path) == before  # ...and are gone; the user's file is untouched


# ----------------------------------------------------------------------------- collisions
def test_distinct_paths_pass(tmp_path):
    (tmp_path / "p.csv").write_text("x")
    check_distinct_paths({"POINTS": tmp_path / "p.csv", "--reference": None},
                         {"--output": tmp_path / "m.vtp", "--report": tmp_path / "r.json", "--save-inr": None})


@pytest.mark.parametrize("spelling", ["p.csv", "sub/../p.csv", "./p.csv"])
def test_an_output_that_is_an_input_is_refused(tmp_path, spelling):
    (tmp_path / "sub").mkdir()
    (tmp_path / "p.csv").write_text("x")
    with pytest.raises(InputError, match=r"--report .* is the input POINTS"):
        check_distinct_paths({"POINTS": tmp_path / "p.csv"}, {"--output": tmp_path / "m.vtp",
                                                             "--report": tmp_path / spelling})


def test_symlinks_and_hard_links_are_the_same_file(tmp_path):
    (tmp_path / "p.csv").write_text("x")
    os.symlink(tmp_path / "p.csv", tmp_path / "link.csv")
    os.link(tmp_path / "p.csv", tmp_path / "hard.csv")
    for alias in ("link.csv", "hard.csv"):
        with pytest.raises(InputError, match="is the input POINTS"):
            check_distinct_paths({"POINTS": tmp_path / "p.csv"}, {"--output": tmp_path / alias})


def test_two_outputs_naming_one_file_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"--report .*r.json.* and --output .* name the same file"):
        check_distinct_paths({}, {"--output": tmp_path / "r.json", "--report": tmp_path / "." / "r.json"})


def test_case_only_differences_follow_the_file_system(tmp_path):
    """Linux file systems are case-sensitive: m.vtp and M.VTP are two files (the probe says so)."""
    assert txn_module._case_insensitive(tmp_path) is False
    check_distinct_paths({}, {"--output": tmp_path / "m.vtp", "--report": tmp_path / "M.VTP"})
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind
