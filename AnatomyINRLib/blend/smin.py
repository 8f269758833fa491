"""Smooth union and clipping of signed distance fields (values in mm).

Smooth minimum: the standard polynomial ("quadratic") smooth min of Íñigo
Quílez, "smooth minimum" (iquilezles.org/articles/smin, 2013; also Quílez,
"Distance functions" article):

    smin(a, b, k) = min(a, b) − max(k − |a − b|, 0)² / (4k)

Alblas et al. ("Going off-grid", STACOM 2022, eq. 5) print the correction as
0.25 · k · max(k − |a − b|, 0)²; that is dimensionally inconsistent (mm³ in an
SDF) and is not Quílez's formula, so we implement the standard one.

Properties (tested): smin = min where |a − b| ≥ k; smin ≤ min; symmetric;
C¹ (the correction and its derivative vanish at |a − b| = k); the largest
correction is k/4 at a = b; ∂smin/∂a + ∂smin/∂b = 1 with both in [0, 1], so
smin of 1-Lipschitz fields is 1-Lipschitz (a valid bound for narrow-band meshing).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from AnatomyINRLib.core.errors import InputError


def smooth_min(a, b, k: float) -> np.ndarray:
    """Quílez's polynomial smooth minimum of two SDFs (mm).

    Args:
        a, b: Arrays of SDF values (mm), broadcastable.
        k: Blend radius in mm (> 0); 0 gives the plain minimum.

    Returns:
        Array of smin(a, b, k) in mm.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if not np.isfinite(k) or k < 0:
        raise InputError(f"radius: expected a finite number of mm >= 0, got {k!r}")
    if k == 0:
        return np.minimum(a, b)
    h = np.maximum(k - np.abs(a - b), 0.0)
    return np.minimum(a, b) - h * h / (4.0 * k)


def smooth_union(values: Sequence[np.ndarray], radii: Sequence[float]) -> np.ndarray:
    """Fold :func:`smooth_min` over several SDFs in the given order.

    Input i (i ≥ 1) is blended into the union of inputs 0 … i−1 with radius
    ``radii[i]``, so a per-input radius is the fillet where that input joins
    the ones listed before it (``radii[0]`` is unused).

    Args:
        values: K arrays (N,) of SDF values in mm.
        radii: K blend radii in mm.

    Returns:
        (N,) blended SDF in mm.
    """
    if len(values) == 0:
        raise InputError("inputs: expected at least one field to blend")
    if len(radii) != len(values):
        raise InputError(f"radii: expected {len(values)} values, got {len(radii)}")
    out = np.asarray(values[0], dtype=np.float64)
    for v, k in zip(values[1:], radii[1:]):
        out = smooth_min(out, v, float(k))
    return out


def plane_distance(points: np.ndarray, origin: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Signed distance (mm) to a plane, positive on the side ``normal`` points to.

    Args:
        points: (N, 3) RAS mm.
        origin: (3,) a point of the plane, RAS mm.
        normal: (3,) direction of the removed half-space (normalised here).
    """
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    return (np.asarray(points, dtype=np.float64) - np.asarray(origin, dtype=np.float64)) @ n


def clip(values: np.ndarray, points: np.ndarray, planes: Sequence) -> np.ndarray:
    """Intersect a solid with half-spaces: max(f, d_plane) for every plane (CSG intersection).

    Args:
        values: (N,) SDF in mm at ``points``.
        points: (N, 3) RAS mm.
        planes: Objects with ``origin`` and ``normal`` (normal points to the part cut away).

    Returns:
        (N,) SDF of the clipped solid (exact outside a convex corner, a bound elsewhere).
    """
    out = np.asarray(values, dtype=np.float64)
    for plane in planes:
        out = np.maximum(out, plane_distance(points, plane.origin, plane.normal))
    return out
