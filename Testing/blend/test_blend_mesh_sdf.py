"""Exact mesh SDF: analytic box and sphere, orientation, truncation, open meshes, self-intersections."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from AnatomyINRLib.blend.checks import count_self_intersections
from AnatomyINRLib.blend.mesh_sdf import MeshSDF
from AnatomyINRLib.blend.openmesh import boundary_loops, outward_normals
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import TriangleMesh

CENTER = np.array([30.0, -12.0, 7.5])


def _box_mesh(half):
    box = trimesh.creation.box(extents=2 * np.asarray(half))
    return TriangleMesh(box.vertices + CENTER, box.faces)


def _box_sdf(p, half):
    q = np.abs(p - CENTER) - half
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)


def test_box_distance_is_exact_everywhere():
    half = np.array([4.0, 2.5, 6.0])
    rng = np.random.default_rng(0)
    p = CENTER + rng.uniform(-12, 12, (3000, 3))
    got = MeshSDF(_box_mesh(half))(p)
    assert np.allclose(got, _box_sdf(p, half), atol=1e-9)


def test_sphere_sign_and_distance_vs_analytic_and_inward_input():
    r = 10.0
    ico = trimesh.creation.icosphere(subdivisions=4, radius=r)
    inward = TriangleMesh(ico.vertices + CENTER, ico.faces[:, ::-1])     # faces point inward on purpose
    sdf = MeshSDF(inward)
    rng = np.random.default_rng(1)
    p = CENTER + rng.uniform(-14, 14, (4000, 3))
    exact = np.linalg.norm(p - CENTER, axis=1) - r
    got = sdf(p)
    sagitta = r * (1 - np.cos(np.max(np.linalg.norm(ico.vertices[ico.edges[:, 0]] - ico.vertices[ico.edges[:, 1]], axis=1)) / r))
    assert np.max(np.abs(got - exact)) <= sagitta + 1e-9
    clear = np.abs(exact) > sagitta
    assert np.array_equal(np.sign(got[clear]), np.sign(exact[clear]))
    assert sdf.mesh.signed_volume() > 0


def test_truncated_field_matches_clipped_exact_and_far_sign():
    half = np.array([10.0, 8.0, 12.0])
    sdf = MeshSDF(_box_mesh(half), truncate_mm=1.5)
    rng = np.random.default_rng(2)
    p = CENTER + rng.uniform(-20, 20, (3000, 3))
    exact = _box_sdf(p, half)
    assert np.allclose(sdf(p), np.clip(exact, -1.5, 1.5), atol=1e-9)
    deep = np.array([CENTER, CENTER + [100.0, 0, 0]])
    assert np.array_equal(sdf(deep), [-1.5, 1.5])


def test_open_mesh_is_refused_and_bad_truncation():
    ico = trimesh.creation.icosphere(subdivisions=2, radius=5.0)
    holed = TriangleMesh(ico.vertices, ico.faces[1:])
    with pytest.raises(InputError, match="closed"):
        MeshSDF(holed, "vessel")
    with pytest.raises(InputError, match="truncate_mm"):
        MeshSDF(TriangleMesh(ico.vertices, ico.faces), truncate_mm=-1.0)


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


def test_self_intersections_found_only_when_present():
    ico = trimesh.creation.icosphere(subdivisions=3, radius=5.0)
    single = TriangleMesh(ico.vertices, ico.faces)
    assert count_self_intersections(single) == 0
    rot = Rotation.random(random_state=1).as_matrix()
    both = TriangleMesh(np.vstack([ico.vertices, ico.vertices @ rot.T + [3.0, 0, 0]]),
                        np.vstack([ico.faces, ico.faces + len(ico.vertices)]))
    assert count_self_intersections(both) > 0
