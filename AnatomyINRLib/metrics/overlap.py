"""Voxel overlap metrics on binary masks (Dice, Jaccard, volume difference).

Masks are compared voxel by voxel, so both must already live on the same grid
(same shape, same ijk→RAS); resampling is the caller's job. The paper's DSC
(Alblas et al., "Going off-grid", §3.1) is :func:`dice`.
"""

from __future__ import annotations

import numpy as np

from AnatomyINRLib.core.errors import InputError


def _as_mask(name: str, value) -> np.ndarray:
    """A boolean array from a bool array or an integer/float array holding only 0 and 1.

    Probabilities (0.3, 0.7...) are refused rather than silently thresholded,
    because a threshold is a modelling choice the caller must make.
    """
    arr = np.asarray(value)
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"{name}: expected a boolean mask, got dtype {arr.dtype}")
    if arr.size and not np.all((arr == 0) | (arr == 1)):
        raise InputError(f"{name}: expected a boolean mask (values 0/1 only); threshold it first")
    return arr.astype(bool)


def _pair(pred, ref) -> tuple[np.ndarray, np.ndarray]:
    a = _as_mask("pred", pred)
    b = _as_mask("ref", ref)
    if a.shape != b.shape:
        raise InputError(f"pred, ref: expected masks of the same shape, got {a.shape} and {b.shape}")
    return a, b


def dice(pred, ref) -> float:
    """Dice similarity coefficient DSC = 2|A∩B| / (|A| + |B|).

    Args:
        pred: Boolean mask (any shape; 0/1 integer arrays accepted).
        ref: Boolean mask of the same shape.

    Returns:
        DSC in [0, 1]. Convention: both masks empty → 1.0 (two empty
        segmentations agree perfectly); exactly one empty → 0.0.

    Raises:
        InputError: shapes differ or a mask holds values other than 0/1.
    """
    a, b = _pair(pred, ref)
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(a & b)) / total


def jaccard(pred, ref) -> float:
    """Jaccard index (IoU) J = |A∩B| / |A∪B| = DSC / (2 − DSC).

    Args:
        pred: Boolean mask.
        ref: Boolean mask of the same shape.

    Returns:
        J in [0, 1]; both empty → 1.0 (same convention as :func:`dice`).

    Raises:
        InputError: shapes differ or a mask holds values other than 0/1.
    """
    a, b = _pair(pred, ref)
    union = int(np.count_nonzero(a | b))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(a & b)) / union


def volume_difference(pred, ref, voxel_volume: float = 1.0, relative: bool = False) -> float:
    """Signed volume difference V(pred) − V(ref).

    Args:
        pred: Boolean mask.
        ref: Boolean mask of the same shape.
        voxel_volume: Volume of one voxel in mm³ (product of the spacings).
        relative: If True return (V(pred) − V(ref)) / V(ref) (dimensionless)
            instead of mm³.

    Returns:
        Difference in mm³ (or relative). Positive means pred is larger.

    Raises:
        InputError: shapes differ, bad voxel_volume, or ``relative`` with an
            empty reference (division by zero).
    """
    a, b = _pair(pred, ref)
    if not (np.isfinite(voxel_volume) and voxel_volume > 0):
        raise InputError(f"voxel_volume: expected a positive volume in mm³, got {voxel_volume!r}")
    va = int(np.count_nonzero(a)) * float(voxel_volume)
    vb = int(np.count_nonzero(b)) * float(voxel_volume)
    if not relative:
        return va - vb
    if vb == 0:
        raise InputError("ref: relative volume difference needs a non-empty reference mask")
    return (va - vb) / vb
