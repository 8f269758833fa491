"""Tree statistics from the skeleton of an occupancy: tubes, a Y, a tree with two bifurcations, a mesh."""

import numpy as np
import pytest

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.metrics.tree_stats import tree_statistics, tree_statistics_from_mask

H = 0.5  # mm per voxel


def _grid(lo=-12.0, hi=12.0):
    # offset 0.1 mm: no voxel plane on a symmetry plane of the shapes (a perfectly symmetric even-width
    # digital cylinder makes scikit-image's thinning delete the whole object)
    g = np.arange(lo, hi, H) + 0.1
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), -1)


def _capsule(p, a, b, r):
    a, b = np.asarray(a, float), np.asarray(b, float)
    t = np.clip(((p - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
    return np.linalg.norm(p - (a + t[..., None] * (b - a)), axis=-1) <= r


def test_straight_capsule():
    s = tree_statistics_from_mask(_capsule(_grid(), (-7, 0, 0), (7, 0, 0), 2.0), (H,) * 3)
    # the thinning stops short of the caps' tips, within two voxels of the segment's ends
    assert 14.0 - 4 * H <= s["total_length"] <= 14.0
    assert s["tortuosity"] == pytest.approx(1.0, abs=1e-9)
    assert s["mean_radius"] == pytest.approx(2.0, abs=H / 2)
    assert s["bifurcations"] == 0 and s["branches"] == 1 and s["endpoints"] == 2


def test_open_tube_through_the_volume():
    p = _grid(-10, 10)
    tube = np.linalg.norm(p[..., 1:], axis=-1) <= 1.5  # a cylinder cut by the 20 mm box
    s = tree_statistics_from_mask(tube, (H,) * 3)
    # a flat end is medial-axis-wise a cone: the thinning stops up to a radius short of each cut end
    assert 20.0 - 1.5 - H <= s["total_length"] <= 20.0
    assert s["tortuosity"] == pytest.approx(1.0, abs=1e-9)
    assert s["bifurcations"] == 0 and s["branches"] == 1


def test_oblique_capsule():
    a, b = np.array([-7.0, -3, -2]), np.array([7.0, 3, 2])
    s = tree_statistics_from_mask(_capsule(_grid(), a, b, 2.0), (H,) * 3)
    # the thinning stops about a radius short of the caps' tips, near the segment's ends
    assert np.linalg.norm(b - a) - 4 * H <= s["total_length"] <= np.linalg.norm(b - a) + 2 * H
    assert s["tortuosity"] == pytest.approx(1.0, abs=0.02)  # a digital oblique line, smoothed
    assert s["mean_radius"] == pytest.approx(2.0, abs=H / 2)
    assert s["bifurcations"] == 0


def test_y_has_one_bifurcation_and_a_curved_tube_is_tortuous():
    p = _grid()
    y = (_capsule(p, (0, -8, 0), (0, 0, 0), 2.0) | _capsule(p, (0, 0, 0), (6, 7, 1), 1.5)
         | _capsule(p, (0, 0, 0), (-6, 7, -1), 1.5))
    s = tree_statistics_from_mask(y, (H,) * 3)
    assert s["bifurcations"] == 1 and s["branches"] == 3 and s["endpoints"] == 3
    centreline = 8 + 2 * np.linalg.norm([6, 7, 1])
    assert centreline - 3.0 <= s["total_length"] <= centreline  # three shortened tips (≈ 1 mm each)
    assert s["tortuosity"] == pytest.approx(1.0, abs=0.03)
    # a second branch on one arm: two bifurcations
    tree = y | _capsule(p, (3, 3.5, 0.5), (9, 2, 3), 1.2)
    t = tree_statistics_from_mask(tree, (H,) * 3)
    assert t["bifurcations"] == 2 and t["endpoints"] == 4 and t["total_length"] > s["total_length"] + 5
    # a half circle of radius 8: length π·8 along a chord of 16 → tortuosity π/2
    theta = np.linspace(0, np.pi, 60)
    arc = np.stack([8 * np.cos(theta), 8 * np.sin(theta) - 4, np.zeros_like(theta)], 1)
    bent = np.zeros(p.shape[:3], bool)
    for q0, q1 in zip(arc[:-1], arc[1:]):
        bent |= _capsule(p, q0, q1, 1.5)
    b = tree_statistics_from_mask(bent, (H,) * 3)
    assert b["bifurcations"] == 0 and b["branches"] == 1
    # the tips lose ≈ 1 mm each: the ratio stays close to π/2 = 1.571
    assert b["tortuosity"] == pytest.approx(np.pi / 2, abs=0.08)


def test_mesh_entry_matches_the_mask_entry():
    from skimage.measure import marching_cubes

    from AnatomyINRLib.core.types import TriangleMesh

    p = _grid(-6, 6)
    mask = _capsule(p, (-3, -1, 0.3), (3, 1, -0.3), 1.5)
    verts, faces, _, _ = marching_cubes(np.pad(mask, 1).astype(np.float32), 0.5, spacing=(H,) * 3)
    mesh = TriangleMesh(verts + p[0, 0, 0] - H, faces[:, ::-1].astype(np.int64))
    s = tree_statistics(mesh, voxel_mm=0.25)
    assert s["bifurcations"] == 0 and s["branches"] == 1
    assert s["total_length"] == pytest.approx(np.linalg.norm([6, 2, 0.6]), abs=1.5)
    with pytest.raises(InputError, match="voxel_mm"):
        tree_statistics(mesh, voxel_mm=0)
    with pytest.raises(InputError, match="non-empty 3-D occupancy"):
        tree_statistics_from_mask(np.zeros((4, 4, 4), bool))
