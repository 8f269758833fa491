"""Validation of Method A's inputs: one message naming the argument and what is wrong."""

from __future__ import annotations

from typing import Optional

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid, PointSet, check_same_geometry
from AnatomyINRLib.pulmonary.config import LOBE_NAMES, N_SEGMENTS, SEGMENTS, segment_label, segment_lobe

check_geometry = check_same_geometry  # the name the pulmonary steps use


def _fmt(v) -> str:
    return "(" + ", ".join(f"{float(x):.6g}" for x in np.ravel(v)) + ")"


def _integer_values(name: str, arr: np.ndarray) -> np.ndarray:
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        return arr
    if not np.all(np.isfinite(arr)) or not np.all(np.mod(arr, 1) == 0):
        raise InputError(f"{name}: expected integer label values, got non-integer values")
    return arr.astype(np.int32)


def check_lobes(lobes: ImageGrid) -> np.ndarray:
    """uint8 lobe array; every lobe 1-5 present, no other values.

    Raises:
        InputError: values outside 0-5, or an empty (missing) lobe.
    """
    arr = _integer_values("lobes", np.asarray(lobes.array))
    values = np.unique(arr)
    bad = [int(v) for v in values if v < 0 or v > 5]
    if bad:
        raise InputError(f"lobes: label values must be 1-5 (1 RUL, 2 RML, 3 RLL, 4 LUL, 5 LLL) and 0 outside; "
                         f"found {bad[:10]}")
    missing = [f"{v} ({LOBE_NAMES[v]})" for v in range(1, 6) if v not in values]
    if missing:
        raise InputError(f"lobes: lobe {', '.join(missing)} is empty or missing; all five lobes are needed")
    return arr.astype(np.uint8, copy=False)


def binary(name: str, img: Optional[ImageGrid]) -> Optional[np.ndarray]:
    """Boolean mask (non-zero voxels) of an optional image; an all-zero airway mask is refused."""
    if img is None:
        return None
    arr = np.asarray(img.array)
    mask = arr != 0
    if name == "airways" and not mask.any():
        raise InputError("airways: the mask is empty")
    return mask


def check_segmental_labels(labels: ImageGrid, lobes: np.ndarray) -> np.ndarray:
    """uint8 labelled airways keeping only voxels inside their own lobe.

    Raises:
        InputError: values outside 0-18, or segments with no labelled voxel in their lobe.
    """
    arr = _integer_values("segmental_labels", np.asarray(labels.array))
    values = np.unique(arr)
    bad = [int(v) for v in values if v < 0 or v > N_SEGMENTS]
    if bad:
        raise InputError(f"segmental_labels: label values must be 1-18 (0 elsewhere); found {bad[:10]}")
    arr = arr.astype(np.uint8, copy=False)
    lobe_of = np.array([0] + [segment_lobe(v) for v in range(1, N_SEGMENTS + 1)], dtype=np.uint8)
    kept = np.where(lobe_of[arr] == lobes, arr, 0).astype(np.uint8)
    present = set(np.unique(kept).tolist())
    missing = [f"{v} ({SEGMENTS[v][0]})" for v in range(1, N_SEGMENTS + 1) if v not in present]
    if missing:
        raise InputError("segmental_labels: no labelled bronchus inside its lobe for " + ", ".join(missing)
                         + "; these segments cannot be produced")
    return kept


def parse_segment_points(points: PointSet) -> dict[int, np.ndarray]:
    """Segment label → (3,) RAS point from a labelled point set (one point per segment name).

    Raises:
        InputError: no labels, unknown, duplicate or missing names (naming the segments that
            cannot be produced).
    """
    if not isinstance(points, PointSet):
        raise InputError(f"segment_points: expected a PointSet, got {type(points).__name__}")
    if points.labels is None:
        raise InputError("segment_points: the points have no labels; label each point with its segment name")
    found: dict[int, np.ndarray] = {}
    for name, p in zip(points.labels, points.points):
        lab = segment_label(name, argument="segment_points")
        if lab in found:
            raise InputError(f"segment_points: segment {SEGMENTS[lab][0]!r} is given more than once")
        found[lab] = np.asarray(p, dtype=np.float64)
    missing = [SEGMENTS[v][0] for v in range(1, N_SEGMENTS + 1) if v not in found]
    if missing:
        raise InputError("segment_points: no point for " + ", ".join(missing) + "; these segments cannot be produced")
    return found


def lobe_at_points(lobes: ImageGrid, lobe_arr: np.ndarray, points: np.ndarray, radius_mm: float = 3.0) -> np.ndarray:
    """(N,) lobe value at each RAS point: its voxel, else the most common lobe within ``radius_mm`` (0 = none)."""
    ijk = np.rint(lobes.world_to_index(np.atleast_2d(points))).astype(int)
    out = np.zeros(len(ijk), dtype=int)
    reach = np.ceil(radius_mm / lobes.spacing).astype(int)
    for n, c in enumerate(ijk):
        if np.all(c >= 0) and np.all(c < lobe_arr.shape) and lobe_arr[tuple(c)]:
            out[n] = int(lobe_arr[tuple(c)])
            continue
        lo, hi = np.maximum(c - reach, 0), np.minimum(c + reach + 1, lobe_arr.shape)
        if np.any(hi <= lo):
            continue
        vals = lobe_arr[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        vals = vals[vals > 0]
        if vals.size:
            out[n] = int(np.bincount(vals).argmax())
    return out


def check_points_in_lobes(found: dict, lobes: ImageGrid, lobe_arr: np.ndarray) -> None:
    """Each segment point inside the lungs and in its segment's lobe.

    Raises:
        InputError: a point outside the lungs, or in the wrong lobe for its name.
    """
    labs = sorted(found)
    where = lobe_at_points(lobes, lobe_arr, np.array([found[v] for v in labs]))
    for lab, lobe in zip(labs, where):
        name, want = SEGMENTS[lab][0], segment_lobe(lab)
        p = _fmt(found[lab])
        if lobe == 0:
            raise InputError(f"segment_points: point {name!r} at RAS {p} mm is outside the lungs")
        if lobe != want:
            raise InputError(f"segment_points: point {name!r} at RAS {p} mm lies in lobe {LOBE_NAMES[lobe]}, "
                             f"but {name} belongs to {LOBE_NAMES[want]}")
