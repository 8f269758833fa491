"""Nesting-violation rate for nested SDFs (lumen ⊂ inner wall ⊂ outer wall).

Alblas et al. ("Going off-grid", §3.2) state the nesting prior as
SDF_outer(x) ≤ SDF_inner(x) ≤ SDF_lumen(x) for all x. With channels ordered
innermost first, column j must be ≥ column j+1 everywhere.
"""

from __future__ import annotations

import numpy as np

from AnatomyINRLib.core.errors import InputError


def nesting_violation_rate(values, tolerance: float = 0.0) -> float:
    """Fraction of points where the nesting order of SDF values is broken.

    Args:
        values: (N, K) SDF values in mm at N points, K ≥ 2 surfaces ordered
            innermost first (e.g. lumen, inner wall, outer wall).
        tolerance: A pair counts as violated only if
            ``values[:, j+1] − values[:, j] > tolerance`` (mm); 0 is strict.

    Returns:
        Fraction in [0, 1] of the N points with at least one violated pair.

    Raises:
        InputError: wrong shape, non-finite values, or negative tolerance.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2 or arr.shape[0] == 0:
        raise InputError(f"values: expected an (N, K) array with N ≥ 1 and K ≥ 2, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError("values: contains NaN or infinity")
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise InputError(f"tolerance: expected a non-negative number of mm, got {tolerance!r}")
    violated = np.any(arr[:, 1:] - arr[:, :-1] > tolerance, axis=1)
    return float(np.mean(violated))
