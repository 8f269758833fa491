"""Readers say which frame they read a file in, and a caller can override it."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import PointSet, TriangleMesh
from AnatomyINRLib.io import read_mesh_with_frame, read_points, read_points_with_frame, write_mesh, write_points

XYZ = np.array([[10.0, -20.0, 5.0], [11.0, -19.0, 6.5], [9.0, -21.0, 4.0]])
FLIP = np.array([-1.0, -1.0, 1.0])


def test_points_frame_stated_assumed_or_given(tmp_path):
    write_points(PointSet(XYZ), tmp_path / "a.mrk.json")              # states LPS
    np.savetxt(tmp_path / "b.csv", XYZ, delimiter=",")                 # states nothing: RAS
    ps, frame, source = read_points_with_frame(tmp_path / "a.mrk.json")
    assert (frame, source) == ("LPS", "file") and np.allclose(ps.points, XYZ)
    ps, frame, source = read_points_with_frame(tmp_path / "b.csv")
    assert (frame, source) == ("RAS", "default") and np.allclose(ps.points, XYZ)
    ps, frame, source = read_points_with_frame(tmp_path / "b.csv", coordinate_system="lps")
    assert (frame, source) == ("LPS", "given") and np.allclose(ps.points, XYZ * FLIP)
    assert np.allclose(read_points(tmp_path / "a.mrk.json", coordinate_system="RAS").points, XYZ * FLIP)
    with pytest.raises(InputError, match="coordinate_system"):
        read_points(tmp_path / "b.csv", coordinate_system="XYZ")


def test_mesh_frame_stated_assumed_or_given(tmp_path):
    mesh = TriangleMesh(XYZ, np.array([[0, 1, 2]]))
    write_mesh(mesh, tmp_path / "m.obj", coordinate_system="RAS")
    got, frame, source = read_mesh_with_frame(tmp_path / "m.obj")
    assert (frame, source) == ("RAS", "file") and np.allclose(got.vertices, XYZ)
    text = (tmp_path / "m.obj").read_text().splitlines(keepends=True)
    (tmp_path / "m.obj").write_text("".join(text[1:]))                 # drop the SPACE comment
    got, frame, source = read_mesh_with_frame(tmp_path / "m.obj")
    assert (frame, source) == ("LPS", "default") and np.allclose(got.vertices, XYZ * FLIP)
    got, frame, source = read_mesh_with_frame(tmp_path / "m.obj", coordinate_system="RAS")
    assert (frame, source) == ("RAS", "given") and np.allclose(got.vertices, XYZ)
