"""Smooth minimum (Quílez polynomial smin) and clipping: properties with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyINRLib.blend.openmesh import ClipPlane
from AnatomyINRLib.blend.smin import clip, plane_distance, smooth_min, smooth_union
from AnatomyINRLib.core.errors import InputError

RNG = np.random.default_rng(7)


def test_equals_min_when_far_apart():
    a = RNG.uniform(-10, 10, 1000)
    b = a + RNG.choice([-1, 1], 1000) * RNG.uniform(2.0, 5.0, 1000)   # |a − b| ≥ k = 2
    assert np.array_equal(smooth_min(a, b, 2.0), np.minimum(a, b))


def test_symmetric_and_below_min_by_at_most_k_over_4():
    a, b = RNG.uniform(-5, 5, (2, 5000))
    k = 1.5
    s = smooth_min(a, b, k)
    assert np.array_equal(s, smooth_min(b, a, k))
    assert np.all(s <= np.minimum(a, b))
    assert np.all(np.minimum(a, b) - s <= k / 4 + 1e-12)
    assert smooth_min(3.0, 3.0, k) == pytest.approx(3.0 - k / 4)


def test_c1_continuity_at_the_blend_boundary():
    # d/da smin(a, b) on both sides of |a − b| = k must agree (C¹), and the value too (C⁰).
    k, b, h = 2.0, 0.0, 1e-6
    for edge in (-k, k):
        left = (smooth_min(edge - h, b, k) - smooth_min(edge - 2 * h, b, k)) / h
        right = (smooth_min(edge + 2 * h, b, k) - smooth_min(edge + h, b, k)) / h
        assert left == pytest.approx(right, abs=1e-5)
        assert smooth_min(edge - 1e-12, b, k) == pytest.approx(smooth_min(edge + 1e-12, b, k), abs=1e-9)


def test_gradient_weights_sum_to_one_so_union_stays_1_lipschitz():
    a, b = RNG.uniform(-3, 3, (2, 2000))
    k, h = 2.0, 1e-6
    da = (smooth_min(a + h, b, k) - smooth_min(a - h, b, k)) / (2 * h)
    db = (smooth_min(a, b + h, k) - smooth_min(a, b - h, k)) / (2 * h)
    assert np.allclose(da + db, 1.0, atol=1e-6)
    assert np.all((da >= -1e-6) & (da <= 1 + 1e-6))


def test_zero_radius_is_plain_min_and_bad_radius_rejected():
    a, b = RNG.uniform(-1, 1, (2, 100))
    assert np.array_equal(smooth_min(a, b, 0.0), np.minimum(a, b))
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="radius"):
            smooth_min(a, b, bad)


def test_fold_uses_each_inputs_radius():
    a, b, c = np.zeros(1), np.zeros(1), np.zeros(1)
    # c joins with radius 4: its correction (1.0) is applied on top of a/b's (k=2 → 0.5).
    out = smooth_union([a, b, c], [99.0, 2.0, 4.0])
    expected = smooth_min(smooth_min(a, b, 2.0), c, 4.0)
    assert np.array_equal(out, expected)
    with pytest.raises(InputError, match="radii"):
        smooth_union([a, b], [1.0])
    with pytest.raises(InputError, match="at least one"):
        smooth_union([], [])


def test_clip_is_intersection_with_half_space():
    pts = RNG.uniform(-5, 5, (500, 3))
    sphere = np.linalg.norm(pts, axis=1) - 3.0
    plane = ClipPlane(origin=[0, 0, 1.0], normal=[0, 0, 2.0])   # normal normalised on construction
    out = clip(sphere, pts, [plane])
    assert np.allclose(plane.normal, [0, 0, 1])
    assert np.array_equal(out, np.maximum(sphere, pts[:, 2] - 1.0))
    assert np.all(out[pts[:, 2] > 1.0] > 0)                    # nothing survives beyond the plane
    assert np.allclose(plane_distance(pts, [0, 0, 1.0], [0, 0, 1]), pts[:, 2] - 1.0)
    with pytest.raises(InputError, match="normal"):
        ClipPlane([0, 0, 0], [0, 0, 0])
