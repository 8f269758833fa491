"""Intersegmental veins of the lung phantom: tubes drawn along segment boundaries.

For every pair of neighbouring segments of one lobe, the boundary voxels (a
voxel of one segment face-adjacent to the other) are ordered along their
principal axis; one point per 12 mm bin (the boundary voxel nearest to the
bin's centroid) becomes a vertex of a polyline of capsules. The vein therefore
lies on the intersegmental plane, as real intersegmental veins do.
"""

from __future__ import annotations

import numpy as np

from AnatomyINRLib.phantoms.lung_tree import rasterize_capsules
from AnatomyINRLib.pulmonary.config import segment_lobe


def boundary_voxels(segments: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """(a, b) with a < b, same lobe → (N, 3) int indices of voxels of ``a`` or ``b`` touching the other."""
    lobe_of = np.array([0] + [segment_lobe(lab) for lab in range(1, 19)], dtype=np.int16)
    found: dict[tuple[int, int], list] = {}
    for axis in range(3):
        n = segments.shape[axis]
        a = np.take(segments, np.arange(n - 1), axis=axis)
        b = np.take(segments, np.arange(1, n), axis=axis)
        touch = (a != b) & (a > 0) & (b > 0)
        touch &= lobe_of[a] == lobe_of[b]
        idx = np.argwhere(touch)
        if not len(idx):
            continue
        va, vb = a[touch].astype(int), b[touch].astype(int)
        key = np.minimum(va, vb) * 32 + np.maximum(va, vb)
        for k in np.unique(key):
            found.setdefault((int(k) // 32, int(k) % 32), []).append(idx[key == k])
    return {k: np.concatenate(v) for k, v in found.items()}


def intersegmental_veins(segments: np.ndarray, affine: np.ndarray, radius: float,
                         bin_mm: float = 12.0, min_area_mm2: float = 150.0) -> np.ndarray:
    """uint8 vein mask (0/1) of tubes of ``radius`` mm along each intersegmental boundary."""
    spacing = float(np.linalg.norm(affine[:3, 0]))
    starts, ends = [], []
    for idx in boundary_voxels(segments).values():
        if len(idx) * spacing**2 < min_area_mm2:
            continue
        pts = idx.astype(np.float64) @ affine[:3, :3].T + affine[:3, 3]
        c = pts.mean(axis=0)
        axis = np.linalg.svd((pts - c)[:: max(1, len(pts) // 5000)], full_matrices=False)[2][0]
        t = (pts - c) @ axis
        edges = np.arange(t.min(), t.max() + bin_mm, bin_mm)
        path = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = pts[(t >= lo) & (t < hi)]
            if len(sel):
                path.append(sel[np.argmin(np.linalg.norm(sel - sel.mean(axis=0), axis=1))])
        for p, q in zip(path[:-1], path[1:]):
            starts.append(p)
            ends.append(q)
    veins = np.zeros(segments.shape, dtype=np.uint8)
    if starts:
        veins, _ = rasterize_capsules(segments.shape, affine, np.array(starts), np.array(ends),
                                      np.full(len(starts), radius), np.ones(len(starts), dtype=np.uint8))
    return veins
