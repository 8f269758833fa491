"""Thin branching vessel network phantom: structure, exact SDF at known points, sampling."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.phantoms.base import UnionPhantom
from AnatomyINRLib.phantoms.vessel_tree import VesselTreeParams, VesselTreePhantom


@pytest.fixture(scope="module")
def tree():
    return VesselTreePhantom()


def test_structure_and_seeding(tree):
    assert tree.n_branches == 31
    radii = np.array([c.r for c in tree.primitives])
    assert radii.min() == pytest.approx(1.0) and 2.9 < radii.max() <= 3.0
    again = VesselTreePhantom(VesselTreeParams(seed=0))
    other = VesselTreePhantom(VesselTreeParams(seed=1))
    assert np.array_equal(again._a, tree._a)
    assert not np.allclose(other._a[-1], tree._a[-1])


def test_sdf_equals_brute_force_union(tree):
    box = tree.bounds()
    q = np.random.default_rng(0).uniform(box[0] - 5, box[1] + 5, size=(20000, 3))
    near = tree.sample_surface(2000, seed=1).points + np.random.default_rng(2).normal(scale=1.0, size=(2000, 3))
    for pts in (q, near):
        assert np.allclose(tree.sdf(pts), UnionPhantom.sdf(tree, pts), rtol=0.0, atol=1e-12)


def test_sdf_at_known_points(tree):
    first = tree.primitives[0]  # root's first capsule, starting at the origin heading −z
    assert np.allclose(first.a, 0.0) and np.allclose(first.axis, [0.0, 0.0, -1.0])
    mid = (first.a + first.b) / 2
    # On the root axis: depth is exactly the local radius.
    assert tree.sdf(mid[None])[0] == pytest.approx(-first.r, abs=1e-12)
    # Behind the root start (its hemispherical cap): distance 5 − r exactly.
    assert tree.sdf(np.array([[0.0, 0.0, 5.0]]))[0] == pytest.approx(5.0 - first.r, abs=1e-12)
    # Beside the first capsule, 2 mm out of the wall (no other branch nearby).
    side = mid + (first.r + 2.0) * first.e1
    assert tree.sdf(side[None])[0] == pytest.approx(2.0, abs=1e-12)
    # Far away: at least the distance to the bounding box.
    far = tree.bounds()[1] + 50.0
    assert tree.sdf(far[None])[0] > 50.0


def test_surface_samples_lie_on_the_zero_set(tree):
    ps = tree.sample_surface(1000, seed=0)
    assert np.abs(tree.sdf(ps.points)).max() < 1e-9
    # Normals point out: a small step along them leaves the network (except next to
    # the creases where capsules meet, where the step can end in the neighbour).
    assert np.mean(tree.sdf(ps.points + 0.05 * ps.normals) > 0.0499) > 0.99


def test_invalid_params():
    with pytest.raises(InputError):
        VesselTreePhantom(VesselTreeParams(asymmetry=1.0))
    with pytest.raises(InputError):
        VesselTreePhantom(VesselTreeParams(min_radius=4.0))
