"""ImPulSe+ §3.2 metrics on hand-built volumes whose answers are worked out by hand."""

import numpy as np
import pytest

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.metrics.segments import (
    dice_score,
    intrusion_branches,
    normalized_surface_dice,
    segment_metrics,
    surface_voxels,
)


def affine(spacing=(1.0, 1.0, 1.0)):
    return np.diag(list(spacing) + [1.0])


def cube(shape, lo, size):
    m = np.zeros(shape, dtype=bool)
    m[lo[0]:lo[0] + size, lo[1]:lo[1] + size, lo[2]:lo[2] + size] = True
    return m


def test_dice_of_shifted_cubes():
    a, b = cube((20, 20, 20), (2, 2, 2), 10), cube((20, 20, 20), (3, 2, 2), 10)
    assert dice_score(a, b) == pytest.approx(2 * 900 / 2000)
    assert dice_score(a, a) == 1.0
    assert dice_score(np.zeros_like(a), np.zeros_like(a)) is None


def test_surface_voxels_of_a_cube():
    assert len(surface_voxels(cube((20, 20, 20), (2, 2, 2), 10))) == 10**3 - 8**3
    # the image border counts as outside
    assert len(surface_voxels(np.ones((4, 4, 4), dtype=bool))) == 4**3 - 2**3


def test_nsd_of_cubes_shifted_by_one_voxel():
    a, b = cube((20, 20, 20), (2, 2, 2), 10), cube((20, 20, 20), (3, 2, 2), 10)
    # Each cube has 488 surface voxels. Shared surface voxels: the side rim at the 7 common
    # x-slices strictly inside both (7·36), the rim of a's second slice on b's x-min face (36)
    # and a's x-max face rim on b's rim (36): 324 on each side.
    assert normalized_surface_dice(a, b, affine(), 0.5) == pytest.approx(2 * 324 / (2 * 488))
    # every surface voxel is within 1 mm of the other surface: NSD = 1
    assert normalized_surface_dice(a, b, affine(), 1.0) == pytest.approx(1.0)
    # with 2 mm voxels along x, the x-faces are 2 mm apart: 1 mm is not enough, 2 mm is
    assert normalized_surface_dice(a, b, affine((2, 1, 1)), 1.0) < 0.99
    assert normalized_surface_dice(a, b, affine((2, 1, 1)), 2.0) == pytest.approx(1.0)


def two_segments(shape=(30, 12, 12)):
    """Segment 1 = x < 15, segment 2 = x ≥ 15 (inside a box)."""
    seg = np.zeros(shape, dtype=np.uint8)
    seg[1:15, 1:11, 1:11] = 1
    seg[15:29, 1:11, 1:11] = 2
    return seg


def test_intrusion_count_and_distance_with_anisotropic_voxels():
    seg = two_segments()
    tree = np.zeros_like(seg)
    tree[5:19, 6, 6] = 1  # runs 4 voxels past the boundary (x = 15..18) into segment 2
    tree[25, 3, 3] = 1  # an isolated branch 11 voxels deep into segment 2
    ids = intrusion_branches(tree == 1, seg == 1, affine((1.5, 1.0, 1.0)))
    # farthest voxel x = 18, nearest segment-1 (surface) voxel x = 14: 4 voxels of 1.5 mm
    assert sorted(ids) == pytest.approx([4 * 1.5, 11 * 1.5])
    assert intrusion_branches(tree == 1, np.ones_like(seg, dtype=bool), affine()) == []


def test_intrusion_grouping_follows_connectivity():
    seg = two_segments()
    tree = np.zeros_like(seg)
    tree[20, 5, 5] = tree[21, 6, 6] = 1  # touch by a corner only
    assert len(intrusion_branches(tree == 1, seg == 1, affine(), connectivity=26)) == 1
    assert len(intrusion_branches(tree == 1, seg == 1, affine(), connectivity=18)) == 2
    assert len(intrusion_branches(tree == 1, seg == 1, affine(), connectivity=6)) == 2
    with pytest.raises(InputError, match="connectivity"):
        intrusion_branches(tree == 1, seg == 1, affine(), connectivity=4)


def test_segment_metrics_overall_and_per_segment():
    ref = two_segments()
    pred = ref.copy()
    pred[15:17][ref[15:17] == 2] = 1  # segment 1 grows two slices into segment 2
    bronchi = np.zeros_like(ref)
    bronchi[10:20, 5, 5] = 2  # a segment-2 bronchus reaching into segment 1
    arteries = np.zeros_like(ref)
    arteries[3, 3, 3] = 1
    out = segment_metrics(pred, ref, affine(), bronchi=bronchi, arteries=arteries, labels=(1, 2),
                          names={1: "one", 2: "two"}, nsd_tolerance_mm=1.0)
    d1 = 2 * 1400 / (1400 + 1600)
    d2 = 2 * 1200 / (1400 + 1200)
    assert out["per_segment"]["one"]["dice"] == pytest.approx(d1)
    assert out["per_segment"]["two"]["dice"] == pytest.approx(d2)
    assert out["dice"] == pytest.approx((d1 + d2) / 2)
    # segment-2 bronchus voxels x = 10..16 lie outside predicted segment 2 (starts at x = 17)
    assert out["NIB"] == 1 and out["per_segment"]["two"]["NIB"] == 1
    assert out["IDB"] == pytest.approx(7.0)  # x = 10 → nearest segment-2 voxel at x = 17
    assert out["NIA"] == 0 and out["IDA"] == 0.0
    perfect = segment_metrics(ref, ref, affine(), bronchi=bronchi * (ref == 2), labels=(1, 2))
    assert perfect["dice"] == 1.0 and perfect["nsd"] == 1.0 and perfect["NIB"] == 0
    assert perfect["NIA"] is None and perfect["IDA"] is None


def test_empty_predicted_segment_counts_intrusions_but_no_distance():
    ref = two_segments()
    pred = np.where(ref == 2, 1, ref).astype(np.uint8)  # segment 2 missing
    bronchi = np.zeros_like(ref)
    bronchi[20:22, 5, 5] = 2
    out = segment_metrics(pred, ref, affine(), bronchi=bronchi, labels=(1, 2))
    assert out["NIB"] == 1 and out["IDB"] is None
    assert out["per_segment"]["2"]["dice"] == 0.0 and out["per_segment"]["2"]["nsd"] == 0.0


def test_metrics_refuse_mismatched_shapes():
    with pytest.raises(InputError, match="prediction"):
        segment_metrics(np.zeros((3, 3, 3), np.uint8), np.zeros((3, 3, 4), np.uint8), affine())
