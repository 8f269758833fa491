"""Segmentectomy planning numbers from a segment labelmap.

* Volume of each segment in ml and in % of both lungs (the sum of all 18).
* For a nodule (RAS point or mask): the segment(s) containing it and the
  resection margin, the minimum distance from the nodule to the nearest
  boundary with a segment that would stay (any segment not containing the
  nodule). On voxels the boundary lies halfway between the centres of two
  neighbouring voxels, so the margin is the distance between the nodule's voxel
  centres (or the point) and the nearest centre of a staying segment's voxel,
  minus half a voxel along that direction, floored at 0.
* For a chosen set of segments: the remaining lung volume in %, the input of
  the predicted post-operative lung function (ppoFEV1 = FEV1 × remaining %).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy.spatial import cKDTree

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid, PointSet
from AnatomyINRLib.pulmonary.config import N_SEGMENTS, SEGMENTS, segment_label


def segment_volumes(labels: ImageGrid) -> dict:
    """{name: {label, ml, percent}} and the total (ml) of all 18 segments."""
    voxel_ml = float(abs(np.linalg.det(labels.ijk_to_ras[:3, :3]))) / 1000.0
    counts = np.bincount(np.asarray(labels.array).ravel().astype(np.int64), minlength=N_SEGMENTS + 1)
    total = float(counts[1:N_SEGMENTS + 1].sum()) * voxel_ml
    per = {SEGMENTS[v][0]: {"label": v, "ml": round(float(counts[v]) * voxel_ml, 3),
                            "percent": round(100.0 * counts[v] * voxel_ml / total, 3) if total else 0.0}
           for v in range(1, N_SEGMENTS + 1)}
    return {"segments": per, "total_ml": round(total, 3)}


def _nodule_voxels(labels: ImageGrid, nodule) -> tuple[np.ndarray, np.ndarray]:
    """(RAS points (N, 3) of the nodule, their segment labels (N,)); refuses nodules outside the lungs."""
    arr = np.asarray(labels.array)
    if isinstance(nodule, PointSet):
        pts = nodule.points
        labs = labels.nearest_values(pts).astype(np.int64)
    elif isinstance(nodule, ImageGrid):
        from AnatomyINRLib.core.types import geometry_difference

        diff = geometry_difference(nodule, labels)
        if diff:
            raise InputError(f"nodule and lobes are on different grids: nodule vs lobes {diff}")
        idx = np.argwhere(np.asarray(nodule.array) != 0)
        if not len(idx):
            raise InputError("nodule: the mask is empty")
        pts, labs = labels.index_to_world(idx), arr[tuple(idx.T)].astype(np.int64)
    else:
        raise InputError(f"nodule: expected a point set or a mask image, got {type(nodule).__name__}")
    if not np.any(labs > 0):
        raise InputError("nodule: it lies outside the lungs (no segment contains it)")
    return pts, labs


def nodule_report(labels: ImageGrid, nodule) -> dict:
    """Segments containing the nodule, share of its voxels in each, and the resection margin (mm)."""
    pts, labs = _nodule_voxels(labels, nodule)
    inside = labs > 0
    block = sorted(set(labs[inside].tolist()))
    arr = np.asarray(labels.array)
    staying = np.argwhere((arr > 0) & ~np.isin(arr, block))
    margin, nearest = None, None
    if len(staying):
        world = labels.index_to_world(staying)
        d, n = cKDTree(world).query(pts[inside])
        k = int(np.argmin(d))
        half = _half_voxel(labels, world[n[k]] - pts[inside][k]) if d[k] > 0 else 0.0
        margin = max(0.0, float(d[k]) - half)
        nearest = SEGMENTS[int(arr[tuple(staying[n[k]])])][0]
    share = {SEGMENTS[v][0]: round(float(np.mean(labs[inside] == v)), 4) for v in block}
    return {"segments": [SEGMENTS[v][0] for v in block], "share_of_nodule": share,
            "fraction_outside_lungs": round(float(np.mean(~inside)), 4),
            "margin_mm": None if margin is None else round(margin, 2), "nearest_remaining_segment": nearest}


def _half_voxel(labels: ImageGrid, delta: np.ndarray) -> float:
    """Distance from a voxel's centre to its face along the ray ``−delta`` (the boundary crossing)."""
    u = np.abs(labels.direction.T @ (delta / np.linalg.norm(delta)))
    return 0.5 * float(np.min(labels.spacing[u > 1e-9] / u[u > 1e-9]))


def _resect_labels(resect: Sequence) -> list:
    labs = []
    for item in resect:
        lab = segment_label(item, argument="resect")
        if lab in labs:
            raise InputError(f"resect: segment {SEGMENTS[lab][0]!r} is listed twice")
        labs.append(lab)
    if not labs:
        raise InputError("resect: expected at least one segment name")
    return labs


def check_plan_inputs(lobes: ImageGrid, nodule=None, resect: Optional[Sequence] = None) -> None:
    """Refuse, before any work, a nodule outside the lungs (or on another grid) and bad segment names."""
    if nodule is not None:
        _nodule_voxels(lobes, nodule)
    if resect is not None:
        _resect_labels(resect)


def resection_report(volumes: dict, resect: Sequence) -> dict:
    """Resected volume and the remaining lung volume (% of both lungs) for a set of segments."""
    labs = _resect_labels(resect)
    names = [SEGMENTS[v][0] for v in sorted(labs)]
    removed = sum(volumes["segments"][n]["ml"] for n in names)
    total = volumes["total_ml"]
    return {"segments": names, "resected_ml": round(removed, 3),
            "remaining_percent": round(100.0 * (total - removed) / total, 3) if total else 0.0}


def planning_report(labels: ImageGrid, nodule=None, resect: Optional[Sequence] = None) -> dict:
    """Volumes, and the nodule and resection sections when asked for."""
    volumes = segment_volumes(labels)
    out = {"volumes": volumes}
    if nodule is not None:
        out["nodule"] = nodule_report(labels, nodule)
    if resect is not None:
        out["resection"] = resection_report(volumes, resect)
    return out
