"""Planning numbers on a hand-built labelmap with known volumes and distances."""

import numpy as np
import pytest

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid, PointSet
from AnatomyINRLib.pulmonary import plan_segments


@pytest.fixture
def labels():
    """2 × 1 × 1 mm voxels; RUL S1 (label 1) at i < 10, RUL S2 (2) at 10 ≤ i < 15, RML S4 (4) at i ≥ 15."""
    arr = np.zeros((20, 10, 10), dtype=np.uint8)
    arr[:10] = 1
    arr[10:15] = 2
    arr[15:] = 4
    return ImageGrid(arr, ImageGrid.make_affine((0.0, 0.0, 0.0), (2.0, 1.0, 1.0)))


def test_volumes(labels):
    vol = plan_segments(labels).report["volumes"]
    assert vol["total_ml"] == pytest.approx(4.0)  # 2000 voxels of 2 mm³
    assert vol["segments"]["RUL S1"] == {"label": 1, "ml": 2.0, "percent": 50.0}
    assert vol["segments"]["RUL S2"]["percent"] == 25.0 and vol["segments"]["RUL S3"]["ml"] == 0.0


def test_nodule_point_margin(labels):
    # RAS x = 6 mm is voxel i = 3 (segment 1); the boundary with segment 2 is at x = 19 mm (between i 9 and 10)
    rep = plan_segments(labels, nodule=PointSet(np.array([[6.0, 4.0, 4.0]]), None, None)).report["nodule"]
    assert rep["segments"] == ["RUL S1"]
    assert rep["margin_mm"] == pytest.approx(13.0)
    assert rep["nearest_remaining_segment"] == "RUL S2"


def test_nodule_mask_spanning_two_segments(labels):
    mask = np.zeros(labels.shape, dtype=np.uint8)
    mask[8:12, 4:6, 4:6] = 1  # 2 voxels in S1, 2 in S2 along i
    rep = plan_segments(labels, nodule=labels.with_array(mask)).report["nodule"]
    assert rep["segments"] == ["RUL S1", "RUL S2"]
    assert rep["share_of_nodule"] == {"RUL S1": 0.5, "RUL S2": 0.5}
    # resecting S1 + S2 leaves RML S4 (from i = 15): nodule voxel i = 11 → boundary at x = 29 mm
    assert rep["margin_mm"] == pytest.approx(29.0 - 22.0)
    assert rep["nearest_remaining_segment"] == "RML S4"


def test_remaining_volume(labels):
    rep = plan_segments(labels, resect=["rul s1", "RML_S4"]).report["resection"]
    assert rep["segments"] == ["RUL S1", "RML S4"]
    assert rep["resected_ml"] == pytest.approx(3.0) and rep["remaining_percent"] == pytest.approx(25.0)


def test_bad_planning_inputs(labels):
    with pytest.raises(InputError, match="outside the lungs"):
        plan_segments(labels, nodule=PointSet(np.array([[-50.0, 4.0, 4.0]]), None, None))
    with pytest.raises(InputError, match="unknown segment name 'RUL S9'"):
        plan_segments(labels, resect=["RUL S9"])
    with pytest.raises(InputError, match="listed twice"):
        plan_segments(labels, resect=["RUL S1", "1"])
