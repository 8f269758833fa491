"""Exact mesh SDF (analytic box and sphere, orientation, truncation, open meshes refused) and self-intersections."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.meshing import mesh_quality
from AnatomyINRLib.meshing.mesh_sdf import MeshSDF
from AnatomyINRLib.meshing.self_intersection import count_self_intersections

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


def test_self_intersections_found_only_when_present():
    ico = trimesh.creation.icosphere(subdivisions=3, radius=5.0)
    single = TriangleMesh(ico.vertices, ico.faces)
    assert count_self_intersections(single) == 0
    rot = Rotation.random(random_state=1).as_matrix()
    both = TriangleMesh(np.vstack([ico.vertices, ico.vertices @ rot.T + [3.0, 0, 0]]),
                        np.vstack([ico.faces, ico.faces + len(ico.vertices)]))
    assert count_self_intersections(both) > 0
    assert mesh_quality(single, check_self_intersections=True)["self_intersections"] == 0
    assert mesh_quality(both, check_self_intersections=True)["self_intersections"] == count_self_intersections(both)
    assert mesh_quality(both)["self_intersections"] is None  # off by default (slow on big meshes)
