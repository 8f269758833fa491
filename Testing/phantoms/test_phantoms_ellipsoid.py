"""Exact ellipsoid distance, area and volume; the oblique EllipsoidPhantom."""

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree
from scipy.stats import qmc

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.phantoms import EllipsoidParams, EllipsoidPhantom, get_phantom
from AnatomyINRLib.phantoms import ellipsoid_math as em

E = np.array([30.0, 20.0, 12.0])


def dense_surface(e, n=200_000, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, 3))
    return u / np.linalg.norm(u, axis=1, keepdims=True) * e


def test_closest_point_is_a_stationary_point_on_the_surface():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(20000, 3)) * 25
    sdf, x = em.signed_distance(y, E)
    assert np.abs(np.sum((x / E) ** 2, axis=1) - 1).max() < 1e-11
    n = em.surface_normal(x, E)
    # y − x is parallel to the normal (first-order optimality), sign as the inside test.
    assert np.linalg.norm(np.cross(y - x, n), axis=1).max() < 1e-9
    inside = np.sum((y / E) ** 2, axis=1) < 1
    assert np.array_equal(sdf < 0, inside)
    np.testing.assert_allclose(np.abs(sdf), np.linalg.norm(y - x, axis=1), atol=1e-12)


def test_distance_matches_brute_force_inside_and_outside():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(1500, 3)) * 20
    sdf, _ = em.signed_distance(y, E)
    brute, _ = cKDTree(dense_surface(E)).query(y)
    gap = brute - np.abs(sdf)
    assert gap.min() > -1e-9  # never farther than any true surface point
    assert np.percentile(gap, 99) < 0.05 and gap.max() < 0.15  # and as close as dense sampling resolves


def test_degenerate_plane_queries_match_brute_force():
    # Queries in the smallest-axis plane inside the focal region (Eberly's special case),
    # plus the centre and points on the other symmetry planes.
    y = np.array([[0, 0, 0.0], [5, 0, 0], [0, 3, 0], [10, 5, 0], [-12, 4, 0], [29, 0, 0], [0, 0, 5], [0, 15, 0.0]])
    sdf, x = em.signed_distance(y, E)
    brute, _ = cKDTree(dense_surface(E, 300_000)).query(y)
    np.testing.assert_allclose(np.abs(sdf), brute, atol=0.03)
    assert np.all(brute >= np.abs(sdf) - 1e-9)
    assert sdf[0] == pytest.approx(-12.0) and sdf[5] == pytest.approx(-1.0)
    assert np.abs(np.sum((x / E) ** 2, axis=1) - 1).max() < 1e-12


def test_equal_axes_and_sphere():
    y = np.random.default_rng(3).normal(size=(500, 3)) * 15
    sdf, _ = em.signed_distance(y, np.array([10.0, 10.0, 10.0]))
    np.testing.assert_allclose(sdf, np.linalg.norm(y, axis=1) - 10.0, atol=1e-10)
    spheroid = np.array([20.0, 10.0, 10.0])
    sdf2, x2 = em.signed_distance(np.array([[0, 0, 0.0], [3, 0, 0]]), spheroid)
    assert sdf2[0] == pytest.approx(-10.0)
    assert np.abs(np.sum((x2 / spheroid) ** 2, axis=1) - 1).max() < 1e-12


def test_area_exact_formula():
    assert em.area([10, 10, 10]) == pytest.approx(4 * np.pi * 100, rel=1e-14)
    ecc = np.sqrt(1 - 0.25)  # prolate spheroid 20, 10, 10: 2πb²(1 + a·arcsin(e)/(b·e))
    assert em.area([20, 10, 10]) == pytest.approx(2 * np.pi * 100 * (1 + 2 * np.arcsin(ecc) / ecc), rel=1e-12)
    exact = em.area(E)
    assert abs(em.area_thomsen(E) / exact - 1) < 0.01061
    ico = trimesh.creation.icosphere(subdivisions=6)
    mesh_area = trimesh.Trimesh(ico.vertices * E, ico.faces).area  # inscribed: slightly smaller
    assert mesh_area < exact and mesh_area == pytest.approx(exact, rel=3e-4)


def test_phantom_is_off_origin_and_oblique():
    ph = EllipsoidPhantom()
    rot = ph.params.rotation_matrix()
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.abs(rot - np.eye(3)).max() > 0.3
    b = ph.bounds()
    assert not np.all((b[0] <= 0) & (b[1] >= 0))  # origin not inside the box
    # The end of the longest axis is on the surface, the centre 12 mm deep.
    tip = np.array(ph.params.center) + 30.0 * rot[:, 0]
    assert ph.sdf(tip[None])[0] == pytest.approx(0.0, abs=1e-12)
    assert ph.sdf(np.array([ph.params.center]))[0] == pytest.approx(-12.0)


def test_phantom_sdf_vs_brute_force_world_frame():
    ph = EllipsoidPhantom()
    dense = ph.sample_surface(150_000, seed=5).points
    b = ph.bounds()
    rng = np.random.default_rng(6)
    q = b[0] - 10 + rng.random((1500, 3)) * (b[1] - b[0] + 20)
    sdf = ph.sdf(q)
    brute, _ = cKDTree(dense).query(q)
    gap = brute - np.abs(sdf)
    assert gap.min() > -1e-9 and np.percentile(gap, 99) < 0.1


def test_samples_on_zero_set_unit_outward_normals_seeded():
    ph = get_phantom("ellipsoid")
    s1 = ph.sample_surface(4000, seed=11)
    s2 = ph.sample_surface(4000, seed=11)
    np.testing.assert_array_equal(s1.points, s2.points)
    assert not np.array_equal(s1.points, ph.sample_surface(4000, seed=12).points)
    assert np.abs(ph.sdf(s1.points)).max() < 1e-9
    np.testing.assert_allclose(np.linalg.norm(s1.normals, axis=1), 1.0, atol=1e-12)
    eps = 1e-3
    np.testing.assert_allclose(ph.sdf(s1.points + eps * s1.normals), eps, atol=1e-8)
    np.testing.assert_allclose(ph.normal(s1.points), s1.normals, atol=1e-9)


def test_sampling_is_uniform_by_area():
    ph = EllipsoidPhantom()
    s = ph.sample_surface(40000, seed=3)
    # Divergence theorem with uniform samples: V = A/3 · E[(x − c)·n].
    flux = np.einsum("ij,ij->i", s.points - np.array(ph.params.center), s.normals)
    assert ph.area() / 3 * flux.mean() == pytest.approx(ph.volume(), rel=0.01)
    # Uniform by area ⇒ the share of samples with |local z| < 6 equals that band's area share.
    local = (s.points - np.array(ph.params.center)) @ ph.params.rotation_matrix()
    u = dense_surface(np.ones(3), 200_000, seed=9)
    w = np.prod(E) * np.linalg.norm(u / E, axis=1)  # area element per solid angle
    band_share = w[np.abs(u[:, 2] * E[2]) < 6].sum() / w.sum()
    assert np.mean(np.abs(local[:, 2]) < 6) == pytest.approx(band_share, abs=0.01)


def test_volume_exact_vs_quasi_monte_carlo():
    ph = EllipsoidPhantom()
    b = ph.bounds()
    pts = b[0] + qmc.Sobol(3, seed=0).random(2**17) * (b[1] - b[0])
    estimate = np.mean(ph.sdf(pts) < 0) * np.prod(b[1] - b[0])
    assert ph.volume() == pytest.approx(4 / 3 * np.pi * 30 * 20 * 12)
    assert estimate == pytest.approx(ph.volume(), rel=0.005)


def test_params_validation_and_json_round_trip():
    with pytest.raises(InputError, match="semi_axes"):
        EllipsoidPhantom(EllipsoidParams(semi_axes=(10.0, 0.0, 5.0)))
    p = EllipsoidParams(center=(1.0, 2.0, 3.0))
    q = EllipsoidParams.from_json(p.to_json())
    np.testing.assert_allclose(EllipsoidPhantom(q).sdf(np.array([[1.0, 2.0, 3.0]])), -12.0)
