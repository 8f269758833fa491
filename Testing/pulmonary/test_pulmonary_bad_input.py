"""Bad input to Method A: one clear message naming what is wrong, raised before any work."""

import numpy as np
import pytest

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid, PointSet
from AnatomyINRLib.pulmonary import segment_lungs


def run(ph, **kw):
    args = {"segmental_labels": ph.airways_labeled}
    args.update(kw)
    lobes, airways = args.pop("lobes", ph.lobes), args.pop("airways", ph.airways)
    return segment_lungs(lobes, airways, **args)


@pytest.mark.parametrize("change, what", [
    (lambda a: ImageGrid(a.array[:-1], a.ijk_to_ras), "size"),
    (lambda a: ImageGrid(a.array, a.ijk_to_ras @ np.diag([1.0, 1.0, 1.5, 1.0])), "spacing"),
    (lambda a: ImageGrid(a.array, a.ijk_to_ras + np.array([[0, 0, 0, 2.0]] + [[0, 0, 0, 0]] * 3)), "origin"),
    (lambda a: ImageGrid(a.array, a.ijk_to_ras @ np.diag([1.0, -1.0, -1.0, 1.0])), "direction"),
])
def test_geometry_mismatch_names_both_and_what_differs(phantom, change, what):
    with pytest.raises(InputError, match=f"airways and lobes are on different grids: airways vs lobes {what}"):
        run(phantom, airways=change(phantom.airways))
    with pytest.raises(InputError, match=f"ct and lobes .* {what}"):
        run(phantom, ct=change(phantom.ct))


def test_lobe_values(phantom):
    arr = phantom.lobes.array.copy()
    arr[arr == 2] = 0
    with pytest.raises(InputError, match=r"lobe 2 \(RML\) is empty or missing"):
        run(phantom, lobes=phantom.lobes.with_array(arr))
    arr = phantom.lobes.array.copy()
    arr[0, 0, 0] = 7
    with pytest.raises(InputError, match=r"label values must be 1-5 .* found \[7\]"):
        run(phantom, lobes=phantom.lobes.with_array(arr))


def test_segmental_labels_missing_or_out_of_range(phantom):
    arr = phantom.airways_labeled.array.copy()
    arr[(arr == 7) | (arr == 12)] = 0
    with pytest.raises(InputError, match=r"7 \(RLL S7\), 12 \(LUL S3\); these segments cannot be produced"):
        run(phantom, segmental_labels=phantom.airways_labeled.with_array(arr))
    arr[0, 0, 0] = 19
    with pytest.raises(InputError, match=r"must be 1-18"):
        run(phantom, segmental_labels=phantom.airways_labeled.with_array(arr))


def points_with(ph, index=None, point=None, label=None, drop=None, extra=None):
    pts, names = ph.segment_points.points.copy(), list(ph.segment_points.labels)
    if index is not None and point is not None:
        pts[index] = point
    if index is not None and label is not None:
        names[index] = label
    if drop is not None:
        keep = [i for i in range(len(names)) if i not in drop]
        pts, names = pts[keep], [names[i] for i in keep]
    if extra is not None:
        pts, names = np.vstack([pts, extra[0]]), names + [extra[1]]
    return PointSet(pts, None, names)


def test_segment_point_errors(phantom):
    kw = {"segmental_labels": None}
    with pytest.raises(InputError, match=r"point 'RUL S1' at RAS .* is outside the lungs"):
        run(phantom, segment_points=points_with(phantom, 0, point=[0.0, 0.0, -120.0]), **kw)
    left = phantom.segment_points.points[12]  # a LUL point given the name RUL S1
    with pytest.raises(InputError, match=r"point 'RUL S1' .* lies in lobe LUL, but RUL S1 belongs to RUL"):
        run(phantom, segment_points=points_with(phantom, 0, point=left), **kw)
    with pytest.raises(InputError, match=r"unknown segment name 'RUL S11'"):
        run(phantom, segment_points=points_with(phantom, 0, label="RUL S11"), **kw)
    with pytest.raises(InputError, match=r"'RUL S2' is given more than once"):
        run(phantom, segment_points=points_with(phantom, 0, label="rul_s2"), **kw)
    with pytest.raises(InputError, match=r"no point for RML S5, LLL S10; these segments cannot be produced"):
        run(phantom, segment_points=points_with(phantom, drop=[4, 17]), **kw)


def test_exactly_one_identity(phantom):
    with pytest.raises(InputError, match="exactly one of segmental_labels or segment_points"):
        run(phantom, segment_points=phantom.segment_points)
    with pytest.raises(InputError, match="exactly one"):
        run(phantom, segmental_labels=None)


def test_inputs_untouched(phantom):
    before = phantom.lobes.array.copy(), phantom.airways_labeled.array.copy()
    run(phantom, config=None, preset="fast")
    assert np.array_equal(phantom.lobes.array, before[0])
    assert np.array_equal(phantom.airways_labeled.array, before[1])


def test_nodule_and_resection_checked_before_any_work(phantom):
    calls = []
    outside = PointSet(np.array([[0.0, 0.0, -120.0]]), None, None)
    with pytest.raises(InputError, match="nodule: it lies outside the lungs"):
        run(phantom, nodule=outside, progress=calls.append)
    with pytest.raises(InputError, match="resect: unknown segment name 'LUL S9'"):
        run(phantom, resect=["LUL S9"], progress=calls.append)
    assert calls == []  # refused before the first progress event
