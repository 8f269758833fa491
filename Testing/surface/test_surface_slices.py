"""Slice-click structure: detection, contour splitting/ordering, outward in-plane normals, loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from AnatomyINRLib.phantoms import get_phantom
from AnatomyINRLib.surface.config import SliceConfig
from AnatomyINRLib.surface.slice_loss import SliceLoss
from AnatomyINRLib.surface.slices import (
    SliceLayout,
    detect_slices,
    order_polygon,
    slice_contours,
    split_contours,
)


def _rotation(seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q


def _ellipse_stack(rot, n_slices=12, per_slice=12, spacing=5.0, noise=0.3, out_of_plane=0.0, seed=0):
    """Clicks on slices z = k·spacing of an elliptic cylinder with varying semi-axes, rotated by rot."""
    rng = np.random.default_rng(seed)
    pts = []
    for k in range(n_slices):
        a, b = 15.0 + 3 * np.sin(k / 3), 9.0 + 2 * np.cos(k / 4)
        th = rng.uniform(0, 2 * np.pi) + np.arange(per_slice) * 2 * np.pi / per_slice
        p = np.stack([a * np.cos(th), b * np.sin(th), np.full(per_slice, k * spacing)], 1)
        p[:, :2] += rng.normal(scale=noise, size=(per_slice, 2))
        p[:, 2] += rng.normal(scale=out_of_plane, size=per_slice) if out_of_plane else 0.0
        pts.append(p)
    return np.concatenate(pts) @ rot.T + np.array([30.0, -12.0, 140.0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detects_oblique_slice_stack_and_its_axis(seed):
    rot = _rotation(seed)
    pts = _ellipse_stack(rot, seed=seed)
    layout = detect_slices(pts)
    assert layout is not None
    assert abs(abs(layout.axis @ rot[:, 2]) - 1.0) < 1e-4  # within ~0.8°
    assert len(layout.levels) == 12
    assert np.allclose(np.diff(layout.levels) * np.sign(layout.axis @ rot[:, 2]), 5.0, atol=0.05)
    assert np.all(layout.level_of_point >= 0)


def test_detection_tolerates_out_of_plane_noise():
    pts = _ellipse_stack(_rotation(5), out_of_plane=0.3, seed=5)
    layout = detect_slices(pts)
    assert layout is not None and len(layout.levels) == 12


@pytest.mark.parametrize("n", [30, 200, 1000])
@pytest.mark.parametrize("shape", ["aaa", "ellipsoid"])
def test_no_detection_on_uniform_points(shape, n):
    phantom = get_phantom(shape)
    for seed in range(2):
        assert detect_slices(phantom.sample_surface(n, seed=seed).points) is None


def test_no_detection_on_random_cloud():
    pts = np.random.default_rng(3).uniform(-40, 40, size=(300, 3))
    assert detect_slices(pts) is None


def _cyclic_equal(order, expected):
    """order equals expected up to rotation and reversal."""
    order, expected = list(order), list(expected)
    k = order.index(expected[0])
    rolled = order[k:] + order[:k]
    return rolled == expected or [rolled[0]] + rolled[1:][::-1] == expected


def _ellipse(cx, cy, a, b, m, phase=0.3):
    th = phase + np.arange(m) * 2 * np.pi / m
    p = np.stack([cx + a * np.cos(th), cy + b * np.sin(th)], 1)
    n = np.stack([b * np.cos(th), a * np.sin(th)], 1)  # outward normal of the ellipse
    return p, n / np.linalg.norm(n, axis=1, keepdims=True)


def _layout_for(p2_levels):
    """3D points on planes z = 0, 5, ... from per-level 2D points, with an explicit layout."""
    pts, lev = [], []
    for k, p2 in enumerate(p2_levels):
        pts.append(np.column_stack([p2, np.full(len(p2), 5.0 * k)]))
        lev.append(np.full(len(p2), k))
    layout = SliceLayout(np.array([0.0, 0.0, 1.0]), np.array([[1.0, 0, 0], [0, 1.0, 0]]),
                         5.0 * np.arange(len(p2_levels)), np.concatenate(lev))
    return np.concatenate(pts), layout


def test_two_separate_ellipses_on_one_slice():
    p1, n1 = _ellipse(-14, 2, 8, 5, 7)
    p2, n2 = _ellipse(12, -3, 6, 9, 7, phase=1.1)
    perm = np.random.default_rng(0).permutation(14)
    pts2, nrm2 = np.concatenate([p1, p2])[perm], np.concatenate([n1, n2])[perm]
    pts, layout = _layout_for([pts2])
    result = slice_contours(pts, layout)
    assert len(result.contours) == 2
    for c, first in zip(sorted(result.contours, key=lambda c: c.polygon[:, 0].mean()), (0, 7)):
        assert not c.hole
        assert _cyclic_equal(perm[c.index], list(range(first, first + 7)))
    cos = np.sum(result.normals[:, :2] * nrm2, axis=1)
    assert np.all(result.normals[:, 2] == 0)
    assert cos.min() > 0.9


def test_l_shaped_concave_contour_order_and_outward_normals():
    corners = np.array([[0, 0], [30, 0], [30, 10], [10, 10], [10, 30], [0, 30]], dtype=float)
    boundary, normals = [], []
    for i in range(6):
        a, b = corners[i], corners[(i + 1) % 6]
        e = (b - a) / np.linalg.norm(b - a)
        steps = int(round(np.linalg.norm(b - a) / 5.0))
        for t in range(steps):
            boundary.append(a + (b - a) * (t + 0.5) / steps)  # edge midpoints: the normal is the edge's
            normals.append([e[1], -e[0]])
    boundary, normals = np.array(boundary), np.array(normals)
    perm = np.random.default_rng(1).permutation(len(boundary))
    order = order_polygon(boundary[perm])
    assert _cyclic_equal(perm[order], list(range(len(boundary))))
    pts, layout = _layout_for([boundary[perm]])
    result = slice_contours(pts, layout)
    assert len(result.contours) == 1
    cos = np.sum(result.normals[:, :2] * normals[perm], axis=1)
    # Points whose neighbours lie on their own edge get the edge normal exactly; next to
    # a corner the bisector turns by 22.5°; at the concave corner it must not flip inwards.
    assert cos.min() > np.cos(np.radians(22.6))
    assert np.sum(cos > 0.9999) >= 10


def test_nested_contour_is_a_hole_with_normals_towards_the_centre():
    outer, n_out = _ellipse(0, 0, 28, 28, 22)
    inner, n_in = _ellipse(0, 0, 8, 8, 10)
    pts, layout = _layout_for([np.concatenate([outer, inner])])
    result = slice_contours(pts, layout)
    assert sorted(c.hole for c in result.contours) == [False, True]
    assert np.min(np.sum(result.normals[:22, :2] * n_out, 1)) > 0.95
    assert np.min(np.sum(result.normals[22:, :2] * -n_in, 1)) > 0.95  # out of the solid = into the hole


def test_split_contours_keeps_one_contour_whole():
    p, _ = _ellipse(0, 0, 15, 9, 12)
    assert len(split_contours(p)) == 1


class _ConeSDF(torch.nn.Module):
    """Exact SDF of the cone x² + y² = (z·tan α)² away from its apex (a surface oblique to z-slices)."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.c, self.s = np.cos(alpha), np.sin(alpha)

    def forward(self, x):
        rho = torch.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2)
        return (self.c * rho - self.s * x[:, 2])[:, None]


def test_in_plane_normal_term_is_zero_for_the_true_oblique_surface():
    alpha = np.radians(30)
    z = np.repeat([1.0, 2.0, 3.0], 8)
    th = np.tile(np.arange(8) * np.pi / 4, 3)
    rho = z * np.tan(alpha)
    x = np.stack([rho * np.cos(th), rho * np.sin(th), z], 1)
    n_in_plane = np.stack([np.cos(th), np.sin(th), 0 * th], 1)
    t = (lambda a: torch.tensor(a, dtype=torch.float32))
    cfg = SliceConfig(inside_weight=0.0)
    loss = SliceLoss(t(x), t(n_in_plane), t([0.0, 0.0, 1.0]), t(np.zeros((0, 3))), t(np.zeros(0)), cfg,
                     torch.Generator().manual_seed(0))
    net = _ConeSDF(alpha)
    assert float(loss(net).detach()) < 1e-6
    # The 3D comparison of IGR's normal term would wrongly penalise the true surface.
    xt = t(x).requires_grad_(True)
    (g,) = torch.autograd.grad(net(xt).sum(), xt)
    assert float((g - t(n_in_plane)).norm(dim=1).mean()) > 0.5


def test_unstructured_points_fit_exactly_as_without_slice_support():
    from AnatomyINRLib.surface import api
    from AnatomyINRLib.surface.config import preset_config

    torch.set_num_threads(1)
    pts = get_phantom("aaa").sample_surface(200, seed=4).points
    on = api.fit_points(pts, preset="fast", seed=0, device="cpu", iterations=30)
    cfg = preset_config("fast")
    cfg.slices.enabled = False
    off = api.fit_points(pts, config=cfg, seed=0, device="cpu", iterations=30)
    assert on.report["slices"] == {"detected": False}
    probe = np.random.default_rng(0).uniform(pts.min(0), pts.max(0), size=(500, 3))
    assert np.array_equal(on.field(probe), off.field(probe))
