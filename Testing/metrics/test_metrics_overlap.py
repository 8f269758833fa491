"""Known-answer tests for voxel overlap metrics and the nesting-violation rate."""

import numpy as np
import pytest

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.metrics import dice, jaccard, nesting_violation_rate, volume_difference


def _boxes():
    a = np.zeros((20, 20, 20), dtype=bool)
    b = np.zeros_like(a)
    a[0:10, 0:10, 0:10] = True  # 1000 voxels
    b[5:15, 0:10, 0:10] = True  # 1000 voxels, 500 shared
    return a, b


def test_dice_jaccard_known_overlap():
    a, b = _boxes()
    assert dice(a, b) == pytest.approx(0.5)
    assert jaccard(a, b) == pytest.approx(1.0 / 3.0)
    assert dice(a, a) == 1.0
    assert jaccard(a, ~a) == 0.0


def test_dice_is_symmetric_and_matches_jaccard_identity():
    rng = np.random.default_rng(3)
    a = rng.random((8, 9, 10)) > 0.6
    b = rng.random((8, 9, 10)) > 0.4
    d, j = dice(a, b), jaccard(a, b)
    assert d == dice(b, a)
    assert j == pytest.approx(d / (2.0 - d))


def test_empty_conventions():
    empty = np.zeros((4, 4, 4), dtype=bool)
    full = np.ones((4, 4, 4), dtype=bool)
    assert dice(empty, empty) == 1.0
    assert jaccard(empty, empty) == 1.0
    assert dice(empty, full) == 0.0


def test_integer_masks_accepted_probabilities_refused():
    a, b = _boxes()
    assert dice(a.astype(np.uint8), b.astype(np.int64)) == pytest.approx(0.5)
    with pytest.raises(InputError, match="pred"):
        dice(a * 0.5, b)
    with pytest.raises(InputError, match="same shape"):
        dice(a, b[:10])


def test_volume_difference():
    a, b = _boxes()
    b[15:, :, :] = True  # adds 5*20*20 = 2000 voxels → |B| = 3000
    assert volume_difference(a, b, voxel_volume=0.5) == pytest.approx((1000 - 3000) * 0.5)
    assert volume_difference(a, b, relative=True) == pytest.approx(-2.0 / 3.0)
    with pytest.raises(InputError, match="ref"):
        volume_difference(a, np.zeros_like(a), relative=True)
    with pytest.raises(InputError, match="voxel_volume"):
        volume_difference(a, b, voxel_volume=0.0)


def test_nesting_violation_rate():
    ok = np.array([[3.0, 1.0, -1.0], [0.0, 0.0, -2.0]])
    assert nesting_violation_rate(ok) == 0.0
    bad = np.array([[1.0, 2.0, 0.0], [3.0, 1.0, -1.0], [0.0, -1.0, 0.5], [2.0, 1.0, 0.0]])
    assert nesting_violation_rate(bad) == pytest.approx(0.5)
    assert nesting_violation_rate(bad, tolerance=1.0) == pytest.approx(0.25)
    with pytest.raises(InputError, match="values"):
        nesting_violation_rate(np.zeros(5))
