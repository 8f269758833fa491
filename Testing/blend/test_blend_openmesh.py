"""Open vessel meshes: boundary loops and outward normals."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from AnatomyINRLib.blend.openmesh import boundary_loops, outward_normals
from AnatomyINRLib.core.types import TriangleMesh


def test_open_tube_loops_and_outward_normals():
    cyl = trimesh.creation.cylinder(radius=4.0, height=20.0, sections=48)
    walls = np.abs(cyl.face_normals[:, 2]) < 0.5                  # drop both caps: an open tube along z
    tube = TriangleMesh(cyl.vertices, cyl.faces[walls][:, ::-1])  # reversed: normals start inward
    loops = boundary_loops(tube)
    assert len(loops) == 2
    for loop in loops:
        assert loop.radius == pytest.approx(4.0, rel=1e-6)
        assert abs(loop.normal[2]) == pytest.approx(1.0) and np.sign(loop.normal[2]) == np.sign(loop.centroid[2])
    normals = outward_normals(tube)
    used = np.unique(tube.faces)
    radial = tube.vertices[used, :2] / np.linalg.norm(tube.vertices[used, :2], axis=1, keepdims=True)
    assert np.all(np.einsum("ij,ij->i", normals[used, :2], radial) > 0.5)
