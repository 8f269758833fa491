"""Validation and clean-up of surface points before a fit (every fit of the library)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import PointSet

MIN_POINTS = 10


@dataclass
class PreparedPoints:
    """Points ready for fitting and what was done to them.

    Attributes:
        points: The cleaned PointSet (RAS mm).
        source_index: (M,) index of each kept point in the caller's input.
        n_input: Number of points the caller gave.
        n_duplicates: Points dropped as exact duplicates.
        n_subsampled_away: Points dropped to respect ``max_points``.
    """

    points: PointSet
    source_index: np.ndarray
    n_input: int
    n_duplicates: int
    n_subsampled_away: int


def as_point_set(points, name: str = "points") -> PointSet:
    """Accept a PointSet or an (N, 3) array; reject NaN/inf with a clear message."""
    if isinstance(points, PointSet):
        return points
    arr = np.asarray(points, dtype=np.float64) if not isinstance(points, np.ndarray) else points
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"{name}: expected an (N, 3) array of RAS mm coordinates, got shape {arr.shape}")
    return PointSet(arr)


def prepare_points(points, max_points: int = 200_000, seed: int = 0) -> PreparedPoints:
    """Validate points for a closed-surface fit.

    Removes exact duplicates (warning), subsamples above ``max_points``
    (warning), and refuses inputs from which no closed surface can be fitted.

    Args:
        points: PointSet or (N, 3) RAS mm.
        max_points: Cap on the number of points kept.
        seed: Seed of the subsampling.

    Raises:
        InputError: fewer than 10 distinct points, NaN/inf, or all points on a
            plane or a line.
    """
    ps = as_point_set(points)
    n_input = len(ps)
    _, first = np.unique(np.round(ps.points, 9), axis=0, return_index=True)
    keep = np.sort(first)
    n_dup = n_input - len(keep)
    if len(keep) < MIN_POINTS:
        # One message: the duplicate count belongs to the error, not to a warning before it.
        dups = f" ({n_dup} duplicate point(s) of {n_input} removed)" if n_dup else ""
        raise InputError(f"points: expected at least {MIN_POINTS} distinct points, got {len(keep)}{dups}")
    if n_dup:
        warnings.warn(f"points: removed {n_dup} duplicate point(s)", stacklevel=2)
    n_sub = 0
    if len(keep) > max_points:
        rng = np.random.default_rng(seed)
        n_sub = len(keep) - max_points
        keep = np.sort(rng.choice(keep, size=max_points, replace=False))
        warnings.warn(f"points: {len(keep) + n_sub} points is more than {max_points}; using a random subset", stacklevel=2)
    _check_not_flat(ps.points[keep])
    return PreparedPoints(ps.subset(keep), keep, n_input, n_dup, n_sub)


def _check_not_flat(pts: np.ndarray) -> None:
    """Refuse collinear or coplanar clouds: they bound no volume."""
    centred = pts - pts.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    if sv[0] <= 0:
        raise InputError("points: all points are identical")
    ratio = sv / sv[0]
    if ratio[1] < 1e-6:
        raise InputError("points: all points lie on a line; no closed surface can be fitted")
    if ratio[2] < 1e-3:
        raise InputError("points: all points lie on a plane; no closed surface can be fitted")
