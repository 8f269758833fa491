"""No output may be an input or another output: refused before any work (exit 2), nothing touched.

Every case here exited 0 before, overwriting a user's file.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from AnatomyINRLib.cli import main
from AnatomyINRLib.core.types import ImageGrid, TriangleMesh
from AnatomyINRLib.io import save_inr, write_image, write_mesh
from AnatomyINRLib.nn.field import NeuralField, Normalization
from AnatomyINRLib.nn.mlp import MLP, MLPConfig
from AnatomyINRLib.phantoms import get_phantom


@pytest.fixture()
def files(tmp_path):
    np.savetxt(tmp_path / "P.csv", get_phantom("aaa").sample_surface(50, seed=0).points, delimiter=",")
    torch.manual_seed(0)
    save_inr(NeuralField(MLP(MLPConfig(width=8, depth=2)), Normalization(np.zeros(3), 50.0)), tmp_path / "F.safetensors")
    write_image(ImageGrid(np.zeros((4, 4, 4), np.int16), np.eye(4)), tmp_path / "R.nrrd")
    v = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]], float)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int64)
    write_mesh(TriangleMesh(v, f), tmp_path / "A.vtp")
    write_mesh(TriangleMesh(v + 5.0, f), tmp_path / "B.vtp")
    (tmp_path / "m.vtp").write_text("the user's earlier mesh")
    return tmp_path


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


CASES = [
    (["fit-points", "P.csv", "--output", "m.vtp", "--report", "P.csv"], "--report 'P.csv' is the input POINTS"),
    (["fit-points", "P.csv", "--output", "m.vtp", "--report", "m.vtp"], "--report 'm.vtp' and --output 'm.vtp'"),
    (["fit-points", "P.csv", "--output", "m.vtp", "--report", "m.config.json"], "config file of --output"),
    (["fit-points", "P.csv", "--output", "m.vtp", "--save-inr", "g.safetensors", "--report", "g.json"],
     "sidecar of --save-inr"),
    (["fit-points", "P.csv", "--output", "m.vtp", "--init-inr", "F.safetensors", "--save-inr", "F.safetensors"],
     "--save-inr 'F.safetensors' is the input --init-inr"),
    (["fit-points", "P.csv", "--output", "sub/../P.csv"], "is the input POINTS"),
    (["extract", "F.safetensors", "--output", "m.vtp", "--reference", "R.nrrd", "--output-labelmap", "R.nrrd"],
     "--output-labelmap 'R.nrrd' is the input --reference"),
    (["extract", "F.safetensors", "--output", "m.vtp", "--report", "F.safetensors"], "is the input INR"),
    (["extract", "F.safetensors", "--output", "m.vtp", "--report", "F.json"], "is the input sidecar of INR"),
    (["blend", "A.vtp", "B.vtp", "--output", "A.vtp"], "--output 'A.vtp' is the input INPUT[0]"),
    (["fit-nested", "--points", "P.csv", "P.csv", "--output-prefix", "w", "--report", "w_outer.vtp"],
     "name the same file"),
    (["fit-nested", "--points", "P.csv", "P.csv", "--output-prefix", "w", "--report", "P.csv"], "is the input --points"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in CASES])
def test_colliding_paths_are_refused_before_any_work(files, capsys, monkeypatch, argv, message):
    (files / "sub").mkdir()
    monkeypatch.chdir(files)
    before = _snapshot(files)
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and message in err[0], err
    assert _snapshot(files) == before


def test_a_symlink_to_an_input_is_the_input(files, capsys):
    os.symlink(files / "P.csv", files / "alias.csv")
    assert main(["fit-points", str(files / "P.csv"), "--output", str(files / "m2.vtp"),
                 "--report", str(files / "alias.csv")]) == 2
    assert "is the input POINTS" in capsys.readouterr().err
