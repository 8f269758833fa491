"""Hostile and careless input: one stderr line, a documented exit code, every pre-existing file untouched.

Each case here was found by trying the CLI as a careless or hostile user would;
each test failed before its fix.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from AnatomyINRLib.cli import main
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.io import read_points, write_points
from AnatomyINRLib.nn.mlp import MLPConfig
from AnatomyINRLib.phantoms import get_phantom

REPO = Path(__file__).resolve().parents[2]
FAST = ["--iterations", "20", "--spacing", "2.0", "--threads", "1"]


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _run(capsys, *argv) -> tuple[int, list]:
    code = main([str(a) for a in argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, err


def test_help_documents_every_exit_code():
    out = subprocess.run([sys.executable, "-m", "AnatomyINRLib", "fit-points", "--help"], capture_output=True,
                         text=True, cwd=REPO, check=True).stdout
    for code in ("0", "2", "3", "4", "5", "130"):
        assert re.search(rf"^\s+{code}\s+\S", out, re.M), f"exit code {code} not documented in --help"


def test_unsupported_output_extension_is_an_input_error(capsys, tmp_path, points_csv):
    before = _snapshot(tmp_path)
    code, err = _run(capsys, "fit-points", points_csv, "--output", tmp_path / "m.xyz", *FAST)
    assert code == 2 and len(err) == 1 and "unsupported mesh file type (.xyz)" in err[0]
    assert _snapshot(tmp_path) == before


def test_a_network_too_large_for_any_machine_is_refused_before_allocating(capsys, tmp_path, points_csv):
    from AnatomyINRLib.surface.config import SurfaceFitConfig

    cfg = SurfaceFitConfig().to_dict()
    cfg["network"]["width"] = 100000
    (tmp_path / "big.json").write_text(json.dumps(cfg))
    before = _snapshot(tmp_path)
    code, err = _run(capsys, "fit-points", points_csv, "--output", tmp_path / "m.vtp", "--config", tmp_path / "big.json")
    assert code == 2 and len(err) == 1 and "width: expected an integer in [1, 4096], got 100000" in err[0]
    assert _snapshot(tmp_path) == before
    with pytest.raises(InputError, match="depth"):
        MLPConfig(depth=1000).validate()


def test_points_in_metres_say_the_object_is_smaller_than_a_voxel(capsys, tmp_path, points_csv):
    np.savetxt(tmp_path / "metres.csv", np.loadtxt(points_csv, delimiter=",") / 1000.0, delimiter=",")
    code, err = _run(capsys, "fit-points", tmp_path / "metres.csv", "--output", tmp_path / "m.vtp", *FAST)
    assert code == 2 and len(err) == 1
    assert "smaller than a voxel" in err[0] and "millimetres" in err[0] and "bounds cover" not in err[0]
    assert not (tmp_path / "m.vtp").exists()


def test_a_file_of_zero_bytes_named_npy_is_not_called_pickled(capsys, tmp_path):
    (tmp_path / "zeros.npy").write_bytes(bytes(4096))
    code, err = _run(capsys, "fit-points", tmp_path / "zeros.npy", "--output", tmp_path / "m.vtp")
    assert code == 2 and len(err) == 1
    assert "not a .npy file" in err[0] and "pickle" not in err[0]


def test_a_markups_file_with_two_lists_warns_that_only_the_first_is_used(tmp_path):
    pts = get_phantom("aaa").sample_surface(20, seed=0)
    write_points(pts, tmp_path / "one.mrk.json")
    data = json.loads((tmp_path / "one.mrk.json").read_text())
    second = json.loads(json.dumps(data["markups"][0]))
    data["markups"][0]["name"], second["name"] = "lumen", "wall"
    data["markups"].append(second)
    (tmp_path / "two.mrk.json").write_text(json.dumps(data))
    with pytest.warns(UserWarning, match=r"holds 2 markups \('lumen', 'wall'\); using only the first"):
        got = read_points(tmp_path / "two.mrk.json")
    assert len(got) == 20


def test_disk_full_while_writing_the_field_is_one_line_and_keeps_the_old_files(capsys, tmp_path, points_csv,
                                                                              monkeypatch):
    """safetensors raises a bare error on a full disk: one line, exit 3, the old mesh kept."""
    import safetensors.torch

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    (tmp_path / "m.vtp").write_text("the user's mesh")
    before = _snapshot(tmp_path)
    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    code, err = _run(capsys, "fit-points", points_csv, "--output", tmp_path / "m.vtp",
                     "--save-inr", tmp_path / "f.safetensors", *FAST)
    assert code == 3 and len(err) == 1 and "f.safetensors" in err[0] and "No space left" in err[0]
    assert _snapshot(tmp_path) == before  # the mesh written before the field was rolled back


def test_a_failure_after_the_mesh_is_written_keeps_the_old_mesh(capsys, tmp_path, points_csv, monkeypatch):
    """Existing m.vtp, the report cannot be produced after the mesh was written: m.vtp must survive."""
    from AnatomyINRLib.cli import common

    def broken_json(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C right after the mesh was written

    (tmp_path / "m.vtp").write_text("the user's mesh")
    (tmp_path / "r.json").write_text("the user's report")
    before = _snapshot(tmp_path)
    monkeypatch.setattr(common, "write_json", broken_json)
    import AnatomyINRLib.cli.fit_points as fit_points

    monkeypatch.setattr(fit_points, "write_json", broken_json)
    code, err = _run(capsys, "fit-points", points_csv, "--output", tmp_path / "m.vtp", "--report", tmp_path / "r.json",
                     *FAST)
    assert code == 130 and err == ["anatomy-inr: cancelled"]
    assert _snapshot(tmp_path) == before
