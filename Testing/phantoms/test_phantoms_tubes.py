"""Swept-sphere primitives: exact SDFs, areas, uniform sampling, offsets."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.phantoms.primitives import Ellipsoid, cube_sphere_directions, sphere_grid
from AnatomyINRLib.phantoms.tubes import ArcTube, Capsule


def capsule():
    return Capsule([10.0, -20.0, 30.0], [40.0, 0.0, 10.0], 6.0)


def arc():
    return ArcTube([-12.0, 28.0, -95.0], [0, 0, -1.0], [0, 1.0, 0], 60.0, 1.5, 8.0)


@pytest.mark.parametrize("make", [capsule, arc])
def test_sdf_matches_brute_force(make):
    prim = make()
    rng = np.random.default_rng(0)
    dense, _ = prim.sample(150_000, rng)
    b = prim.bounds()
    q = b[0] - 8 + rng.random((1500, 3)) * (b[1] - b[0] + 16)
    sdf = prim.sdf(q)
    brute, _ = cKDTree(dense).query(q)
    gap = brute - np.abs(sdf)  # exact inside and outside for swept spheres
    assert gap.min() > -1e-9 and np.percentile(gap, 99) < 0.12
    # The closest point is on the surface at exactly |sdf|.
    c = prim.closest(q)
    np.testing.assert_allclose(np.linalg.norm(q - c, axis=1), np.abs(sdf), atol=1e-9)
    assert np.abs(prim.sdf(c)).max() < 1e-9


@pytest.mark.parametrize("make", [capsule, arc])
def test_samples_on_surface_with_outward_normals(make):
    prim = make()
    pts, nrm = prim.sample(5000, np.random.default_rng(1))
    assert np.abs(prim.sdf(pts)).max() < 1e-9
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(prim.sdf(pts + 1e-3 * nrm), 1e-3, atol=1e-9)
    np.testing.assert_allclose(prim.normal(pts), nrm, atol=1e-9)


@pytest.mark.parametrize("make", [capsule, arc])
def test_area_and_uniformity(make):
    prim = make()
    pts, nrm, w = prim.quadrature(0.2)
    assert w.sum() == pytest.approx(prim.area(), rel=1e-3)
    # Volume by the divergence theorem from the quadrature and from uniform samples.
    x0 = prim.bounds().mean(axis=0)
    v_quad = np.einsum("ij,ij->i", pts - x0, nrm) @ w / 3
    sp, sn = prim.sample(60000, np.random.default_rng(2))
    v_mc = prim.area() / 3 * np.einsum("ij,ij->i", sp - x0, sn).mean()
    assert v_mc == pytest.approx(v_quad, rel=0.01)


def test_known_volumes_and_areas():
    c = capsule()
    length = np.linalg.norm([30.0, 20.0, -20.0])
    assert c.area() == pytest.approx(2 * np.pi * 6 * length + 4 * np.pi * 36)
    pts, nrm, w = c.quadrature(0.1)
    v = np.einsum("ij,ij->i", pts - c.a, nrm) @ w / 3
    assert v == pytest.approx(np.pi * 36 * length + 4 / 3 * np.pi * 216, rel=1e-4)
    a = arc()  # Pappus: torus section πr²·Rφ plus one full ball from the two caps
    pts, nrm, w = a.quadrature(0.1)
    v = np.einsum("ij,ij->i", pts - a.center, nrm) @ w / 3
    assert v == pytest.approx(np.pi * 64 * 60 * 1.5 + 4 / 3 * np.pi * 512, rel=1e-4)


def test_arc_geometry_and_offsets():
    a = arc()
    np.testing.assert_allclose(a.point_at(0.0)[0], [-12.0, 28.0, -95.0])
    np.testing.assert_allclose(a.tangent_at(0.0)[0], [0, 0, -1.0], atol=1e-15)
    end = a.point_at(1.5)[0]
    assert end[1] > 28.0 and end[2] < -95.0  # bent towards +A while heading inferior
    rng = np.random.default_rng(4)
    q = a.center + rng.normal(size=(2000, 3)) * 40
    np.testing.assert_allclose(a.offset(2.0).sdf(q), a.sdf(q) - 2.0, atol=1e-12)
    c = capsule()
    np.testing.assert_allclose(c.offset(1.5).sdf(q), c.sdf(q) - 1.5, atol=1e-12)
    with pytest.raises(InputError, match="radius"):
        ArcTube([0, 0, 0], [0, 0, 1], [1, 0, 0], 5.0, 1.0, 6.0)
    with pytest.raises(InputError, match="bend_direction"):
        ArcTube([0, 0, 0], [0, 0, 1], [0, 0, 2], 50.0, 1.0, 6.0)


def test_grown_ellipsoid_sampling_area_and_inside_test():
    rot = np.linalg.qr(np.random.default_rng(5).normal(size=(3, 3)))[0]
    ell = Ellipsoid([5.0, -7.0, 60.0], [25.0, 15.0, 9.0], rot, grow=2.0)
    pts, nrm = ell.sample(5000, np.random.default_rng(6))
    assert np.abs(ell.sdf(pts)).max() < 1e-9
    np.testing.assert_allclose(ell.sdf(pts + 1e-3 * nrm), 1e-3, atol=1e-9)
    qp, qn, qw = ell.quadrature(0.15)
    assert qw.sum() == pytest.approx(ell.area(), rel=1e-4)  # Steiner area vs quadrature
    q = np.array(ell.center) + np.random.default_rng(7).normal(size=(20000, 3)) * 15
    np.testing.assert_array_equal(ell.contains_fast(q), ell.sdf(q) < 0)


def test_sphere_grids():
    d, w = sphere_grid(0.05)
    assert w.sum() == pytest.approx(4 * np.pi)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0)
    dirs, cover = cube_sphere_directions(20)
    probe = np.random.default_rng(8).normal(size=(20000, 3))
    probe /= np.linalg.norm(probe, axis=1, keepdims=True)
    assert cKDTree(dirs).query(probe)[0].max() <= cover
