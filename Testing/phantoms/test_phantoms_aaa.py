"""AAA and nested-AAA phantoms: exactness outside, sampling, volumes, nesting, registry."""

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.stats import qmc

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.phantoms import (
    AAAParams,
    AAAPhantom,
    NestedAAAParams,
    NestedAAAPhantom,
    get_phantom,
    phantom_names,
)
from AnatomyINRLib.phantoms.aaa import aaa_primitives


@pytest.fixture(scope="module")
def aaa():
    return AAAPhantom()


@pytest.fixture(scope="module")
def nested():
    return NestedAAAPhantom()


def qmc_volume(sdf, bounds, m=17, seed=0):
    pts = bounds[0] + qmc.Sobol(3, seed=seed).random(2**m) * (bounds[1] - bounds[0])
    return np.mean(sdf(pts) < 0) * np.prod(bounds[1] - bounds[0])


def test_dimensions_and_off_origin(aaa):
    parts = aaa_primitives(aaa.params)
    top = np.array(aaa.params.top)
    assert aaa.sdf(top[None])[0] == pytest.approx(-10.0)  # 20 mm aorta
    b = aaa.bounds()
    assert not np.all((b[0] <= 0) & (b[1] >= 0))
    assert np.linalg.norm(parts["aorta"].point_at(parts["aorta"].phi)[0] - top) > 100  # ~120 mm long, bent
    mid, tangent, off, third = parts["sac_frame"]
    # Sac is ~50 mm across: along its offset axis the surface is 25 mm from its centre.
    centre = mid + aaa.params.sac_offset * off
    assert aaa.sdf((centre + 25.0 * off)[None])[0] == pytest.approx(0.0, abs=1e-9)
    assert aaa.sdf(mid[None])[0] < -10.0  # centreline inside the sac is deeper than the tube alone
    for cap in parts["iliacs"]:  # 12 mm iliacs, distal tips on the surface
        assert cap.r == 6.0 and aaa.sdf((cap.b + 6.0 * cap.axis)[None])[0] == pytest.approx(0.0, abs=1e-9)


def test_exact_outside_vs_brute_force(aaa):
    dense = aaa.sample_surface(120_000, seed=1).points
    tree = cKDTree(dense)
    b = aaa.bounds()
    rng = np.random.default_rng(2)
    q = b[0] - 10 + rng.random((3000, 3)) * (b[1] - b[0] + 20)
    sdf = aaa.sdf(q)
    brute, _ = tree.query(q)
    out = sdf > 0
    gap = brute[out] - sdf[out]
    assert out.sum() > 1500
    assert gap.min() > -1e-9 and np.percentile(gap, 99) < 0.15  # exact outside
    inside = ~out
    assert np.all(-sdf[inside] <= brute[inside] + 1e-9)  # inside: only a bound on the depth


def test_samples_on_zero_set_with_outward_normals(aaa):
    s = aaa.sample_surface(5000, seed=3)
    assert np.abs(aaa.sdf(s.points)).max() < 1e-9
    np.testing.assert_allclose(np.linalg.norm(s.normals, axis=1), 1.0, atol=1e-12)
    eps = 1e-4
    up, down = aaa.sdf(s.points + eps * s.normals), aaa.sdf(s.points - eps * s.normals)
    assert np.all(down < 0)
    assert np.mean(np.abs(up - eps) < 1e-9) > 0.999  # all but points within ~eps of a crease
    agree = np.einsum("ij,ij->i", aaa.normal(s.points), s.normals)
    assert np.mean(agree > 1 - 1e-9) > 0.999


def test_sampling_seeded_and_uniform(aaa):
    s1, s2 = aaa.sample_surface(3000, seed=4), aaa.sample_surface(3000, seed=4)
    np.testing.assert_array_equal(s1.points, s2.points)
    np.testing.assert_array_equal(s1.normals, s2.normals)
    assert not np.array_equal(s1.points, aaa.sample_surface(3000, seed=5).points)
    # Uniform by area ⇒ the divergence-theorem volume from samples matches.
    s = aaa.sample_surface(40000, seed=6)
    x0 = aaa.bounds().mean(axis=0)
    v = aaa.area() / 3 * np.einsum("ij,ij->i", s.points - x0, s.normals).mean()
    assert v == pytest.approx(aaa.volume(), rel=0.01)


def test_volume_vs_quasi_monte_carlo(aaa):
    assert 0.9e5 < aaa.volume() < 1.4e5
    assert aaa.volume(spacing=0.5) == pytest.approx(aaa.volume(), rel=5e-4)  # quadrature converged
    assert qmc_volume(aaa.sdf, aaa.bounds()) == pytest.approx(aaa.volume(), rel=0.01)


def test_nested_order_names_and_exact_offset(nested):
    lumen, inner, outer = nested.surfaces()
    assert [s.name for s in (lumen, inner, outer)] == ["lumen", "inner", "outer"]
    b = nested.bounds()
    q = b[0] + np.random.default_rng(7).random((50000, 3)) * (b[1] - b[0])
    s = nested.sdf_all(q)
    gap, wall = nested.params.min_gap, nested.params.wall_thickness
    assert np.all(s[:, 0] >= s[:, 1] + gap - 1e-9)  # lumen ⊂ inner with the minimum gap
    np.testing.assert_allclose(s[:, 2], s[:, 1] - wall, atol=1e-12)
    assert np.all((s[:, 0] < 0) <= (s[:, 1] < 0)) and np.all((s[:, 1] < 0) <= (s[:, 2] < 0))
    np.testing.assert_allclose(inner.sdf(q), AAAPhantom().sdf(q), atol=0)


def test_nested_surfaces_samples_and_volumes(nested):
    lumen, inner, outer = nested.surfaces()
    samples = nested.sample_surfaces(3000, seed=8)
    for surf, pts in zip((lumen, inner, outer), samples):
        assert np.abs(surf.sdf(pts.points)).max() < 1e-9
    assert inner.sdf(samples[0].points).max() <= -nested.params.min_gap + 1e-9
    assert outer.sdf(samples[1].points).max() <= -nested.params.wall_thickness + 1e-9
    vols = [s.volume(spacing=0.5) for s in (lumen, inner, outer)]  # coarse rule keeps the test fast
    assert vols[0] < vols[1] < vols[2]
    for surf, vol in zip((lumen, outer), (vols[0], vols[2])):
        assert qmc_volume(surf.sdf, surf.bounds(), m=16) == pytest.approx(vol, rel=0.015)
    # Lumen is eccentric in the sac: thrombus thicker on the sac's offset side.
    mid, tangent, off, third = aaa_primitives(nested.params.inner)["sac_frame"]
    ray = mid + np.linspace(-30, 40, 7001)[:, None] * off
    li, ii = lumen.sdf(ray) < 0, inner.sdf(ray) < 0
    t = np.linspace(-30, 40, 7001)
    assert (t[ii].max() - t[li].max()) > 2 * (t[li].min() - t[ii].min())


def test_nested_rejects_bulge_outside_sac():
    with pytest.raises(InputError, match="lumen_bulge"):
        NestedAAAPhantom(NestedAAAParams(lumen_bulge_semi_axes=(34.0, 13.0, 12.0)))
    with pytest.raises(InputError, match="min_gap"):
        NestedAAAPhantom(NestedAAAParams(min_gap=6.5))


def test_registry_and_params():
    assert phantom_names() == ["aaa", "ellipsoid", "nested-aaa"]
    assert isinstance(get_phantom("AAA"), AAAPhantom)
    assert isinstance(get_phantom("nested-aaa"), NestedAAAPhantom)
    with pytest.raises(InputError, match="unknown phantom"):
        get_phantom("heart")
    p = AAAParams.from_json(AAAParams(aorta_radius=9.0).to_json())
    assert AAAPhantom(p).sdf(np.array([p.top]))[0] == pytest.approx(-9.0)
    n = NestedAAAParams.from_json(NestedAAAParams(wall_thickness=3.0).to_json())
    assert n.wall_thickness == 3.0 and isinstance(n.inner, AAAParams)
    with pytest.raises(InputError, match="bend_radius"):
        AAAPhantom(AAAParams(bend_radius=8.0))
    phantom = get_phantom("aaa")
    np.testing.assert_array_equal(phantom(np.array([p.top])), phantom.sdf(np.array([p.top])))
