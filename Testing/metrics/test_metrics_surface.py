"""Known-answer tests for surface distances, exact mesh proximity and sampling."""

import numpy as np
import pytest
import trimesh

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import PointSet, TriangleMesh
from AnatomyINRLib.metrics import (
    closest_point_on_mesh,
    point_set_distances,
    points_to_field_distance,
    sample_surface,
    surface_distances,
)
from AnatomyINRLib.metrics.proximity import closest_point_on_triangles

CENTER = np.array([-20.0, 35.0, -140.0])  # off-origin so frame bugs show up


def sphere_mesh(radius, subdivisions=4, center=CENTER):
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return TriangleMesh(np.asarray(s.vertices) + center, np.asarray(s.faces))


# An icosphere of subdivision 4 deviates from its sphere by at most this (chord sagitta).
SAGITTA = 0.0115 * 12 / 10


def test_point_triangle_known_regions():
    a, b, c = np.array([[0.0, 0, 0]]), np.array([[4.0, 0, 0]]), np.array([[0.0, 3, 0]])
    cases = {
        (1.0, 1.0, 2.0): (1.0, 1.0, 0.0),  # above the interior: foot of perpendicular
        (-1.0, -2.0, 0.5): (0.0, 0.0, 0.0),  # vertex a region
        (6.0, -1.0, 0.0): (4.0, 0.0, 0.0),  # vertex b region
        (2.0, -5.0, 1.0): (2.0, 0.0, 0.0),  # edge ab region
        (-3.0, 1.5, 0.0): (0.0, 1.5, 0.0),  # edge ac region
    }
    for p, expected in cases.items():
        q = closest_point_on_triangles(np.array([p]), a, b, c)
        np.testing.assert_allclose(q[0], expected, atol=1e-12)
    # Edge bc: the foot of the perpendicular from (4, 3, 0) onto bc.
    q = closest_point_on_triangles(np.array([[4.0, 3.0, 0.0]]), a, b, c)
    np.testing.assert_allclose(q[0], [4 - 4 * 0.36, 3 * 0.36, 0.0], atol=1e-12)


def test_point_triangle_beats_dense_sampling():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 300, 3))
    p = rng.normal(size=(300, 3)) * 2
    q = closest_point_on_triangles(p, a, b, c)
    d = np.linalg.norm(p - q, axis=1)
    uv = rng.random((4000, 2))
    flip = uv.sum(1) > 1
    uv[flip] = 1 - uv[flip]
    pts = a[:, None] + (b - a)[:, None] * uv[None, :, :1] + (c - a)[:, None] * uv[None, :, 1:]
    brute = np.linalg.norm(pts - p[:, None], axis=2).min(axis=1)
    assert np.all(d <= brute + 1e-12)  # never worse than any point of the triangle
    assert np.all(brute - d < 0.05)  # and close to the dense optimum


def test_mesh_proximity_matches_all_faces_brute_force():
    mesh = sphere_mesh(10.0, subdivisions=2)
    rng = np.random.default_rng(1)
    pts = CENTER + rng.normal(size=(150, 3)) * 9.0  # inside, outside and far
    dist, closest, face = closest_point_on_mesh(pts, mesh)
    tri = mesh.vertices[mesh.faces]
    for i in range(len(pts)):
        rep = np.repeat(pts[i : i + 1], len(tri), axis=0)
        q = closest_point_on_triangles(rep, tri[:, 0], tri[:, 1], tri[:, 2])
        assert dist[i] == pytest.approx(np.linalg.norm(rep - q, axis=1).min(), abs=1e-12)
    np.testing.assert_allclose(np.linalg.norm(pts - closest, axis=1), dist, atol=1e-12)
    # The closest point lies on the reported face.
    q = closest_point_on_triangles(closest, tri[face, 0], tri[face, 1], tri[face, 2])
    np.testing.assert_allclose(q, closest, atol=1e-9)


def test_sample_surface_area_weighted_and_seeded():
    verts = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [10, 0, 0], [13, 0, 0], [10, 2, 0]])
    mesh = TriangleMesh(verts, np.array([[0, 1, 2], [3, 4, 5]]))  # areas 0.5 and 3
    p1, n1 = sample_surface(mesh, 20000, seed=7)
    p2, n2 = sample_surface(mesh, 20000, seed=7)
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, sample_surface(mesh, 20000, seed=8)[0])
    frac_small = np.mean(p1[:, 0] < 5)
    assert frac_small == pytest.approx(0.5 / 3.5, abs=0.01)
    np.testing.assert_allclose(n1, np.tile([0, 0, 1.0], (20000, 1)))
    # Uniform inside the big triangle: mean of its samples is its centroid.
    np.testing.assert_allclose(p1[p1[:, 0] >= 5].mean(axis=0), [11, 2 / 3, 0], atol=0.03)


def test_mesh_vs_itself_is_zero():
    mesh = sphere_mesh(10.0)
    out = surface_distances(mesh, mesh, n_samples=4000, seed=0)
    for key in ("asd", "hd", "hd95", "chamfer_l2", "chamfer_squared"):
        assert out[key] < 1e-9, key
    assert out["normal_consistency"] > 1 - 1e-6


def test_concentric_spheres_distance_is_radius_gap():
    out = surface_distances(sphere_mesh(12.0), sphere_mesh(10.0), n_samples=4000, seed=1)
    for key in ("asd", "hd", "hd95", "chamfer_l2"):
        assert out[key] == pytest.approx(2.0, abs=SAGITTA + 0.005), key
    assert out["chamfer_squared"] == pytest.approx(2 * 4.0, abs=0.1)
    assert out["normal_consistency"] > 0.999


def test_translated_sphere_known_answer():
    shift = 0.8
    ref = sphere_mesh(10.0, subdivisions=5)
    pred = TriangleMesh(ref.vertices + [0.0, shift, 0.0], ref.faces)
    out = surface_distances(pred, ref, n_samples=6000, seed=2)
    # Exact for spheres: a point at polar angle θ (about the shift axis) is at
    # | sqrt(r² − 2 r s cosθ + s²) − r | from the shifted sphere; cosθ is uniform.
    ct = np.linspace(-1, 1, 200001)
    expected_mean = np.mean(np.abs(np.sqrt(100 - 20 * shift * ct + shift**2) - 10))
    assert out["asd"] == pytest.approx(expected_mean, abs=0.01)
    assert out["hd"] == pytest.approx(shift, abs=0.01)
    assert out["mean_pred_to_ref"] == pytest.approx(out["mean_ref_to_pred"], abs=0.01)


def test_normal_consistency_detects_wrong_shape():
    box = trimesh.creation.box(extents=(17.0, 17.0, 17.0))
    cube = TriangleMesh(np.asarray(box.vertices) + CENTER, np.asarray(box.faces))
    out = surface_distances(cube, sphere_mesh(10.0), n_samples=3000, seed=0)
    assert out["normal_consistency"] < 0.95
    assert out["hd"] > 2.0


def test_point_set_percentile_convention():
    ref = np.zeros((100, 3))
    ref[:, 0] = np.arange(100.0)
    pred = ref.copy()
    pred[::10, 2] = 5.0  # 10 points lifted by 5 mm
    out = point_set_distances(pred, ref)
    # pooled: 180 zeros, 10 ones (ref→pred), 10 fives (pred→ref)
    assert out["hd"] == pytest.approx(5.0)
    assert out["hd95"] == pytest.approx(1.2)  # pooled 95th percentile, not max of directed ones (5)
    assert out["asd"] == pytest.approx(0.3)
    assert out["chamfer_l2"] == pytest.approx(0.3)
    assert out["chamfer_squared"] == pytest.approx(2.6)


def test_point_set_normal_consistency_needs_normals():
    pts = np.random.default_rng(0).normal(size=(50, 3))
    normals = pts / np.linalg.norm(pts, axis=1, keepdims=True)
    assert "normal_consistency" not in point_set_distances(pts, pts)
    out = point_set_distances(PointSet(pts, normals), PointSet(pts, -normals))
    assert out["normal_consistency"] == pytest.approx(1.0)


def test_points_to_field_distance_exact_sdf():
    field = lambda x: np.linalg.norm(x - CENTER, axis=1) - 10.0  # noqa: E731
    pts = CENTER + np.array([[0, 0, 13.0], [4.0, 0, 0], [0, -10.0, 0]])
    np.testing.assert_allclose(points_to_field_distance(pts, field), [3.0, 6.0, 0.0], atol=1e-12)
    with pytest.raises(InputError, match="field"):
        points_to_field_distance(pts, lambda x: np.zeros((len(x), 2)))


def test_bad_inputs_named():
    mesh = sphere_mesh(10.0, subdivisions=1)
    with pytest.raises(InputError, match="n"):
        sample_surface(mesh, 0)
    with pytest.raises(InputError, match="mesh"):
        surface_distances(TriangleMesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)), mesh)
