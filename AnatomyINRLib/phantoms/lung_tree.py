"""Bronchial and arterial trees of the lung phantom, and capsule rasterisation.

A segment's tree grows by recursive bisection of its territory (a space-filling
construction in the spirit of Kitaoka et al. 1999): a branch starts at its
parent's end and heads for the centroid of its region, stopping at a fraction
of the way; the region is split at a random quantile of its principal axis and
each half gets a child. Radii follow Murray's law by supplied volume,
``r_child = r_parent · (n_child / n_parent)^(1/3)``. Leaves end at their
region's centroid. Each bronchus has an artery running beside it (offset
perpendicular to the branch by ``1.9·r + 1`` mm, radius ``0.9·r``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Branch:
    """One straight tube (RAS mm) with its accompanying artery centreline."""

    start: np.ndarray
    end: np.ndarray
    radius: float
    label: int
    """Segment label 1-18, or 0 for trachea, main, intermediate and lobar bronchi."""
    generation: int
    """0 for the segmental bronchus, 1, 2... below it; -1 for proximal airways."""
    art_start: np.ndarray
    art_end: np.ndarray
    parent: int = -1
    """Index of the parent branch in its segment's list; -1 for the segmental bronchus."""


def _offset_direction(direction: np.ndarray, angle: float) -> np.ndarray:
    """Unit vector ⟂ ``direction``, rotated by ``angle`` about it from the horizontal choice."""
    d = direction / max(np.linalg.norm(direction), 1e-9)
    ref = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(d, ref)
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    return np.cos(angle) * u + np.sin(angle) * v


def grow_segment(label: int, start: np.ndarray, art_start: np.ndarray, region: np.ndarray,
                 radius: float, max_generation: int, rng: np.random.Generator,
                 min_points: int = 6) -> list[Branch]:
    """The bronchial tree of one segment.

    Args:
        label: Segment label (1-18).
        start: (3,) origin of the segmental bronchus (end of its lobar bronchus), RAS mm.
        art_start: (3,) where its artery starts.
        region: (N, 3) points sampling the segment's target territory.
        radius: Radius of the segmental bronchus (mm).
        max_generation: Generations below the segmental bronchus (leaves are at most this deep).
        rng: Random generator (split quantiles, artery side).
        min_points: Regions with fewer points end in a leaf.

    Returns:
        Branches in depth-first order, the segmental bronchus first.
    """
    angle = float(rng.uniform(0, 2 * np.pi))
    branches: list[Branch] = []
    stack = [(np.asarray(start, float), np.asarray(art_start, float), region, float(radius), 0, -1)]
    while stack:
        p0, a0, pts, r, gen, parent = stack.pop()
        c = pts.mean(axis=0)
        leaf = gen >= max_generation or len(pts) < 2 * min_points
        frac = 1.0 if leaf else (0.35 if gen == 0 else 0.45)
        end = p0 + frac * (c - p0)
        direction = end - p0
        if np.linalg.norm(direction) < 1e-6:
            direction = c - p0 + 1e-3
        a1 = end + _offset_direction(direction, angle) * (1.9 * r + 1.0)
        branches.append(Branch(p0, end, r, label, gen, a0, a1, parent))
        if leaf:
            continue
        centred = pts - c
        axis = np.linalg.svd(centred[:: max(1, len(pts) // 2000)], full_matrices=False)[2][0]
        t = centred @ axis
        cut = np.quantile(t, rng.uniform(0.4, 0.6))
        for part in (pts[t <= cut], pts[t > cut]):
            if len(part):
                stack.append((end, a1, part, r * (len(part) / len(pts)) ** (1.0 / 3.0), gen + 1,
                              len(branches) - 1))
    return branches


def centreline_samples(branches: list[Branch], step: float, artery: bool = False):
    """Points every ``step`` mm along the branches (or their arteries) and each point's label.

    Returns:
        (M, 3) RAS mm points and (M,) int labels.
    """
    pts, labels = [], []
    for b in branches:
        s, e = (b.art_start, b.art_end) if artery else (b.start, b.end)
        n = max(2, int(np.ceil(np.linalg.norm(e - s) / step)) + 1)
        t = np.linspace(0.0, 1.0, n)[:, None]
        pts.append(s + t * (e - s))
        labels.append(np.full(n, b.label, dtype=np.int16))
    return np.concatenate(pts), np.concatenate(labels)


def rasterize_capsules(shape, ijk_to_ras: np.ndarray, starts, ends, radii, labels,
                       best: "np.ndarray | None" = None, out: "np.ndarray | None" = None):
    """Paint capsules (tubes with round ends) into a label volume.

    A voxel takes the label of the capsule whose surface it is deepest inside
    (smallest ``distance to axis − radius``), so touching tubes split cleanly.

    Args:
        shape: (3,) volume shape.
        ijk_to_ras: (4, 4) voxel → RAS mm.
        starts, ends: (N, 3) axis end points (RAS mm); radii: (N,) mm; labels: (N,) ints ≥ 1.
        best, out: Running float32 depth and uint8 label volumes to update (new ones if None).

    Returns:
        (out, best): uint8 labels (0 = no capsule) and float32 signed depth (inf where none).
    """
    if best is None:
        best = np.full(shape, np.inf, dtype=np.float32)
    if out is None:
        out = np.zeros(shape, dtype=np.uint8)
    for box, depth, lab in capsule_depths(shape, ijk_to_ras, starts, ends, radii, labels):
        view_best, view_out = best[box], out[box]
        win = (depth < 0) & (depth < view_best)
        view_best[win] = depth[win]
        view_out[win] = lab
    return out, best


def capsule_depths(shape, ijk_to_ras: np.ndarray, starts, ends, radii, labels, pad_mm: float = 0.0):
    """Per capsule: (box slices, float32 ``distance to axis − radius`` (mm) on the box's voxels, label).

    The box covers the capsule grown by one voxel and ``pad_mm``, clipped to the volume;
    capsules wholly outside the volume are skipped.
    """
    inv = np.linalg.inv(ijk_to_ras)
    grow = float(np.linalg.norm(ijk_to_ras[:3, :3], axis=0).max()) + pad_mm
    for s, e, r, lab in zip(np.asarray(starts, float), np.asarray(ends, float), radii, labels):
        lo_w, hi_w = np.minimum(s, e) - r - grow, np.maximum(s, e) + r + grow
        corners = np.array([[x, y, z, 1.0] for x in (lo_w[0], hi_w[0]) for y in (lo_w[1], hi_w[1])
                            for z in (lo_w[2], hi_w[2])]) @ inv.T
        lo = np.maximum(np.floor(corners[:, :3].min(axis=0)).astype(int), 0)
        hi = np.minimum(np.ceil(corners[:, :3].max(axis=0)).astype(int) + 1, np.asarray(shape))
        if np.any(hi <= lo):
            continue
        ii, jj, kk = np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi)), indexing="ij")
        world = np.stack([ii, jj, kk], axis=-1) @ ijk_to_ras[:3, :3].T + ijk_to_ras[:3, 3]
        seg = e - s
        t = np.clip(((world - s) @ seg) / max(float(seg @ seg), 1e-12), 0.0, 1.0)
        depth = (np.linalg.norm(world - (s + t[..., None] * seg), axis=-1) - r).astype(np.float32)
        yield tuple(slice(a, b) for a, b in zip(lo, hi)), depth, lab
