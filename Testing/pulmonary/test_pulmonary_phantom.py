"""Lung phantom: anatomy, label conventions and self-consistency of the ground truth."""

import numpy as np
from scipy import ndimage

from AnatomyINRLib.metrics.segments import segment_metrics
from AnatomyINRLib.phantoms.lung import lung_grid, make_lung_phantom
from AnatomyINRLib.pulmonary.config import SEGMENTS, segment_lobe


def test_grids_and_sizes(phantom):
    shape, affine = lung_grid("full")
    assert shape == (300, 250, 250) and np.allclose(np.diag(affine)[:3], [-1, -1, 1])
    for name in ("ct", "lobes", "airways", "arteries", "veins", "airways_labeled", "arteries_labeled", "segments"):
        img = getattr(phantom, name)
        assert img.shape == (150, 125, 125)
        assert np.array_equal(img.ijk_to_ras, phantom.ct.ijk_to_ras)


def test_five_lobes_separated_by_fissures(phantom):
    lobes = phantom.lobes.array
    assert set(np.unique(lobes)) == {0, 1, 2, 3, 4, 5}
    for axis in range(3):  # no two lobes share a face: a fissure gap lies between them
        a, b = np.take(lobes, range(lobes.shape[axis] - 1), axis), np.take(lobes, range(1, lobes.shape[axis]), axis)
        assert not np.any((a > 0) & (b > 0) & (a != b))
    vol = np.bincount(lobes.ravel())[1:] * 8e-3  # ml
    share = vol / vol.sum()
    assert 3000 < vol.sum() < 5000
    assert 0.04 < share[1] < 0.12  # the middle lobe is the smallest
    assert share[1] == share.min()


def test_segments_fill_their_lobes_with_plausible_sizes(phantom):
    seg, lobes = phantom.segments.array, phantom.lobes.array
    assert np.array_equal(seg > 0, lobes > 0)
    lobe_of = np.array([0] + [segment_lobe(v) for v in range(1, 19)])
    assert np.array_equal(lobe_of[seg], lobes)
    vol = np.bincount(seg.ravel(), minlength=19)[1:]
    share = vol / vol.sum()
    assert share.min() > 0.015 and share.max() < 0.13
    for v in range(1, 19):  # each segment is essentially one piece
        comp, n = ndimage.label(seg == v)
        sizes = np.bincount(comp.ravel())[1:]
        assert sizes.max() > 0.95 * sizes.sum(), SEGMENTS[v][0]


def test_ground_truth_contains_its_own_trees(phantom):
    bron, art = phantom.airways_labeled.array, phantom.arteries_labeled.array
    assert set(np.unique(bron)) == set(range(19)) and set(np.unique(art)) == set(range(19))
    assert np.all(phantom.airways.array[bron > 0] == 1) and np.all(phantom.arteries.array[art > 0] == 1)
    m = segment_metrics(phantom.segments.array, phantom.segments.array, phantom.segments.ijk_to_ras,
                        bronchi=bron, arteries=art)
    assert m["NIB"] == 0 and m["NIA"] == 0 and m["dice"] == 1.0
    assert not np.any((phantom.airways.array > 0) & (phantom.arteries.array > 0))


def test_veins_run_on_segment_boundaries(phantom):
    seg, veins = phantom.segments.array, phantom.veins.array > 0
    assert veins.sum() > 500
    # a vein voxel is on a boundary when two segments meet within 2 voxels of it
    lo = ndimage.minimum_filter(np.where(seg > 0, seg, 99), size=5)
    hi = ndimage.maximum_filter(seg, size=5)
    assert np.mean((lo != hi)[veins & (seg > 0)]) > 0.9


def test_segment_points_name_and_sit_on_their_bronchus(phantom):
    pts = phantom.segment_points
    assert pts.labels == [SEGMENTS[v][0] for v in range(1, 19)]
    ijk = np.rint(phantom.lobes.world_to_index(pts.points)).astype(int)
    assert np.all(phantom.airways.array[tuple(ijk.T)] == 1)
    assert [int(v) for v in phantom.lobes.array[tuple(ijk.T)]] == [segment_lobe(v) for v in range(1, 19)]


def test_ct_intensities(phantom):
    ct, lobes = phantom.ct.array, phantom.lobes.array
    assert ct.dtype == np.int16
    assert -900 < ct[lobes > 0].mean() < -780
    assert abs(ct[phantom.veins.array > 0].mean() - 40) < 10
    trachea = ct[73:77, 55:60, 110:120]  # lumen at the top of the trachea
    assert trachea.mean() < -900


def test_seeded():
    a, b, c = (make_lung_phantom(s, "small") for s in (2, 2, 4))
    assert np.array_equal(a.segments.array, b.segments.array) and np.array_equal(a.ct.array, b.ct.array)
    assert not np.array_equal(a.segments.array, c.segments.array)
