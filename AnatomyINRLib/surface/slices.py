"""Points clicked on parallel slices: detection, contour ordering, in-plane normals.

Clinicians place points on the image slices they look at, so a click set is
often a stack of parallel planar contours rather than uniform surface samples.
This module recognises that structure from the coordinates alone:

1. :func:`detect_slices` finds a direction ``a`` along which the points
   collapse onto a few distinct levels (each with >= ``min_points_per_slice``
   points, level width <= ``tolerance_mm``); it does not trigger on uniform or
   random points (their projections chain into wide groups).
2. :func:`slice_contours` splits each level's points into separate contours
   (single-linkage clusters of the in-plane minimum spanning tree), orders every
   cluster into a closed polygon (angular order, then 2-opt), and orients the
   polygons: counter-clockwise for outer contours, clockwise for holes
   (containment parity).
3. The outward in-plane normal at each point bisects the unit normals of its
   two polygon edges. It equals the normalised projection of the surface normal
   onto the slice plane (the contour tangent lies in both the plane and the
   tangent plane), which is what the fit compares against (see slice_loss.py).

All coordinates are RAS mm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial.distance import pdist, squareform

from AnatomyINRLib.surface.config import SliceConfig

_N_DIRECTIONS = 6000  # coarse hemisphere search: ~1.8° between neighbouring directions
_N_CANDIDATES = 4  # best coarse directions refined
_REFINE_STEPS = 6
_MAX_SEARCH_POINTS = 600  # the coarse search uses a fixed random subset of larger clouds


@dataclass
class SliceLayout:
    """Parallel-slice structure of a point set.

    Attributes:
        axis: (3,) unit slice normal (RAS).
        basis: (2, 3) orthonormal in-plane axes (rows), right-handed with ``axis``.
        levels: (L,) slice positions along ``axis`` (mm, sorted).
        level_of_point: (N,) index into ``levels``, or −1 for points on no slice.
    """

    axis: np.ndarray
    basis: np.ndarray
    levels: np.ndarray
    level_of_point: np.ndarray

    def to_dict(self) -> dict:
        gaps = np.diff(self.levels)
        return {"axis": [round(float(v), 5) for v in self.axis], "n_slices": int(len(self.levels)),
                "median_spacing_mm": float(np.median(gaps)) if len(gaps) else None,
                "n_points_on_slices": int((self.level_of_point >= 0).sum())}


@dataclass
class Contour:
    """One closed polygon on a slice.

    Attributes:
        level: Index of the slice.
        index: (m,) point indices in polygon order (outer: counter-clockwise, hole: clockwise,
            seen from +axis with ``basis`` as (u, v)).
        polygon: (m, 2) in-plane coordinates in that order, mm.
        normals2d: (m, 2) outward unit in-plane normals.
        hole: True if nested inside an odd number of other contours of the slice.
    """

    level: int
    index: np.ndarray
    polygon: np.ndarray
    normals2d: np.ndarray
    hole: bool = False


@dataclass
class SliceContours:
    """All contours of a layout and per-point 3D in-plane normals."""

    layout: SliceLayout
    contours: list = field(default_factory=list)
    normals: Optional[np.ndarray] = None
    """(N, 3) outward in-plane unit normals; zero rows where unknown."""


def _hemisphere(n: int) -> np.ndarray:
    """(n, 3) Fibonacci directions on the upper hemisphere (z >= 0)."""
    i = np.arange(n) + 0.5
    z = i / n
    r = np.sqrt(1.0 - z**2)
    phi = i * np.pi * (3.0 - np.sqrt(5.0))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def _coincidence_scores(points: np.ndarray, dirs: np.ndarray, tol: float) -> np.ndarray:
    """Per direction: excess of near-coincident projections over a locally uniform spread.

    c(w) = number of ordered pairs i ≠ j with |tᵢ − tⱼ| < w. For locally uniform
    projections c(3·tol) ≈ 3·c(tol), so c(tol) − c(3·tol)/3 ≈ 0 (also along a thin
    direction, where raw counts are large); for slices spaced > 3·tol apart it is
    ≈ ⅔·c(tol) > 0.
    """
    out = np.empty(len(dirs))
    n = len(points)
    chunk = max(1, 4_000_000 // max(n, 1))
    for s in range(0, len(dirs), chunk):
        t = np.sort(points @ dirs[s:s + chunk].T, axis=0)  # (N, C)
        span = float(t.max() - t.min()) + 10.0 * tol + 1.0
        flat = (t + (t.min(axis=0) * -1.0 + np.arange(t.shape[1]) * span)).T.ravel()  # columns in disjoint ranges
        near, wide = (np.searchsorted(flat, flat + w, side="left") - np.searchsorted(flat, flat - w, side="right") - 1
                      for w in (tol, 3.0 * tol))
        out[s:s + chunk] = (near - wide / 3.0).reshape(t.shape[1], n).sum(axis=1)
    return out


def _groups(t: np.ndarray, tol: float) -> np.ndarray:
    """Group labels (in original order) splitting sorted values at gaps > ``tol``."""
    order = np.argsort(t)
    label_sorted = np.concatenate([[0], np.cumsum(np.diff(t[order]) > tol)])
    labels = np.empty(len(t), dtype=np.int64)
    labels[order] = label_sorted
    return labels


def _refine(points: np.ndarray, axis: np.ndarray, cfg: SliceConfig) -> np.ndarray:
    """Re-estimate the common normal: smallest principal axis of level-centred points."""
    for _ in range(_REFINE_STEPS):
        labels = _groups(points @ axis, cfg.tolerance_mm)
        counts = np.bincount(labels)
        keep = counts[labels] >= 3
        if keep.sum() < 6:
            return axis
        centred = points[keep] - (np.stack([np.bincount(labels, weights=points[:, k]) for k in range(3)], 1)
                                  / counts[:, None])[labels[keep]]
        new = np.linalg.svd(centred, full_matrices=False)[2][-1]
        new = new if new @ axis >= 0 else -new
        if np.linalg.norm(new - axis) < 1e-9:
            return new
        axis = new
    return axis


def _verify(points: np.ndarray, axis: np.ndarray, cfg: SliceConfig) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(levels, level_of_point) if ``axis`` really stacks the points on slices, else None."""
    t = points @ axis
    labels = _groups(t, cfg.tolerance_mm)
    counts = np.bincount(labels)
    widths = np.array([np.ptp(t[labels == g]) for g in range(len(counts))])
    good = (counts >= cfg.min_points_per_slice) & (widths <= 2.0 * cfg.tolerance_mm)  # ~±3σ of 0.3 mm noise
    n_on = int(counts[good].sum())
    if good.sum() < cfg.min_slices or n_on < cfg.min_fraction_on_slices * len(points):
        return None
    ids = np.flatnonzero(good)
    centres = np.array([np.median(t[labels == g]) for g in ids])
    if len(centres) > 1 and np.min(np.diff(centres)) < 3.0 * cfg.tolerance_mm:
        return None
    remap = -np.ones(len(counts), dtype=np.int64)
    remap[ids] = np.arange(len(ids))
    return centres, remap[labels]


def detect_slices(points: np.ndarray, cfg: Optional[SliceConfig] = None) -> Optional[SliceLayout]:
    """Find a common slice normal along which the points sit on a few distinct levels.

    Coarse search: over ~6000 hemisphere directions (plus the principal axes),
    count point pairs whose projections coincide within ``tolerance_mm``;
    slices give ~N·(points per slice) pairs, random points ~N²·tol/extent.
    The best few directions are refined (smallest principal axis of the
    level-centred points) and verified (see :class:`SliceConfig`).

    Args:
        points: (N, 3) RAS mm.
        cfg: Detection thresholds.

    Returns:
        SliceLayout, or None when the points are not on parallel slices.
    """
    cfg = cfg or SliceConfig()
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < cfg.min_slices * cfg.min_points_per_slice:
        return None
    pts = pts - pts.mean(axis=0)
    dirs = np.concatenate([_hemisphere(_N_DIRECTIONS), np.linalg.svd(pts, full_matrices=False)[2]])
    sub = pts if len(pts) <= _MAX_SEARCH_POINTS else pts[np.random.default_rng(0).choice(len(pts), _MAX_SEARCH_POINTS, replace=False)]
    scores = _coincidence_scores(sub, dirs, cfg.tolerance_mm)
    best: Optional[tuple] = None
    for k in np.argsort(-scores)[: _N_CANDIDATES]:
        axis = _refine(pts, dirs[k], cfg)
        found = _verify(pts, axis, cfg)
        if found is not None and (best is None or (found[1] >= 0).sum() > (best[2] >= 0).sum()):
            best = (axis, *found)
    if best is None:
        return None
    axis, levels, level_of_point = best
    levels = levels + float(np.asarray(points, dtype=np.float64).mean(axis=0) @ axis)
    helper = np.eye(3)[int(np.argmin(np.abs(axis)))]
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    return SliceLayout(axis, np.stack([u, np.cross(axis, u)]), levels, level_of_point)


def _tour_length(p: np.ndarray) -> float:
    return float(np.linalg.norm(p - np.roll(p, -1, axis=0), axis=1).sum())


def order_polygon(p: np.ndarray) -> np.ndarray:
    """Order 2D points into a short closed polygon: angular order, then 2-opt.

    Args:
        p: (m, 2) points of one contour, mm.

    Returns:
        (m,) permutation; the polygon p[order] has no removable crossing.
    """
    c = p.mean(axis=0)
    order = list(np.argsort(np.arctan2(p[:, 1] - c[1], p[:, 0] - c[0])))
    m = len(order)
    improved = True
    while improved and m >= 4:
        improved = False
        for i in range(m - 1):
            for j in range(i + 2, m if i > 0 else m - 1):
                a, b = p[order[i]], p[order[i + 1]]
                c1, d = p[order[j]], p[order[(j + 1) % m]]
                delta = (np.linalg.norm(a - c1) + np.linalg.norm(b - d)
                         - np.linalg.norm(a - b) - np.linalg.norm(c1 - d))
                if delta < -1e-9:
                    order[i + 1:j + 1] = order[i + 1:j + 1][::-1]
                    improved = True
    return np.asarray(order, dtype=np.int64)


def signed_area(poly: np.ndarray) -> float:
    """Shoelace area of a closed (m, 2) polygon, positive when counter-clockwise."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def points_in_polygon(q: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """(K,) bool: even-odd (crossing number) test of (K, 2) points against an (m, 2) polygon."""
    x, y = q[:, 0:1], q[:, 1:2]
    x0, y0 = poly[:, 0][None], poly[:, 1][None]
    x1, y1 = np.roll(poly[:, 0], -1)[None], np.roll(poly[:, 1], -1)[None]
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return (np.sum(crosses & (x < xi), axis=1) % 2) == 1


def distance_to_polygon(q: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """(K,) distance of (K, 2) points to the edges of a closed (m, 2) polygon."""
    a, b = poly[None], np.roll(poly, -1, axis=0)[None]
    ab = b - a
    t = np.clip(np.sum((q[:, None] - a) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-24), 0.0, 1.0)
    return np.linalg.norm(q[:, None] - (a + t[..., None] * ab), axis=-1).min(axis=1)


def vertex_normals(poly: np.ndarray) -> np.ndarray:
    """Outward unit normals of a counter-clockwise polygon: bisector of the two edge normals."""
    edge = np.roll(poly, -1, axis=0) - poly
    n_edge = np.stack([edge[:, 1], -edge[:, 0]], axis=1)  # right of the direction of travel = outside (CCW)
    n_edge /= np.maximum(np.linalg.norm(n_edge, axis=1, keepdims=True), 1e-12)
    n = n_edge + np.roll(n_edge, 1, axis=0)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def split_contours(p: np.ndarray, cut_factor: float = 2.0) -> list:
    """Separate contours on one slice: cut minimum-spanning-tree edges longer than
    ``cut_factor`` × the median tree edge (single-linkage clustering).

    Returns:
        List of index arrays, one per cluster.
    """
    if len(p) < 2:
        return [np.arange(len(p))]
    dist = squareform(pdist(p))
    mst = minimum_spanning_tree(dist).toarray()
    edges = mst[mst > 0]
    if len(edges) == 0:
        return [np.arange(len(p))]
    mst[mst > cut_factor * np.median(edges)] = 0.0
    n, labels = connected_components(mst, directed=False)
    return [np.flatnonzero(labels == k) for k in range(n)]


def _kmeans(p: np.ndarray, centres: np.ndarray, steps: int = 20) -> np.ndarray:
    """Lloyd iterations from given centres; returns labels (N,)."""
    for _ in range(steps):
        labels = np.argmin(np.linalg.norm(p[:, None] - centres[None], axis=-1), axis=1)
        new = np.array([p[labels == k].mean(0) if np.any(labels == k) else centres[k] for k in range(len(centres))])
        if np.allclose(new, centres):
            break
        centres = new
    return labels


def _plausible_split(p: np.ndarray, clusters: list, cut_factor: float) -> bool:
    """True if the parts look like separate contours.

    Every part needs >= 3 points, no polygon edge longer than ``cut_factor`` ×
    the median edge of all parts (cutting one contour in two leaves long closing
    chords), and no part's polygon may contain another part's points.
    """
    if any(len(c) < 3 for c in clusters):
        return False
    polys = [p[c][order_polygon(p[c])] for c in clusters]
    edges = [np.linalg.norm(np.roll(q, -1, axis=0) - q, axis=1) for q in polys]
    if max(e.max() for e in edges) > cut_factor * np.median(np.concatenate(edges)):
        return False
    return not any(points_in_polygon(p[clusters[j]], polys[i]).any()
                   for i in range(len(clusters)) for j in range(len(clusters)) if i != j)


def _propagate_splits(p2: list, clusters: list, cut_factor: float) -> list:
    """Split a slice's points into as many contours as a neighbouring slice has.

    Contours closer than the click spacing (vessels just past a bifurcation)
    merge under single linkage; a neighbour with more contours seeds k-means
    with its contour centroids; the split is kept if it is plausible
    (:func:`_plausible_split`).
    """
    for _ in range(len(p2)):
        changed = False
        for i in range(len(p2)):
            for j in (i - 1, i + 1):
                if not 0 <= j < len(p2) or len(clusters[j]) <= len(clusters[i]):
                    continue
                labels = _kmeans(p2[i], np.array([p2[j][c].mean(0) for c in clusters[j]]))
                parts = [np.flatnonzero(labels == k) for k in range(len(clusters[j]))]
                parts = [c for c in parts if len(c)]
                if len(parts) > len(clusters[i]) and _plausible_split(p2[i], parts, cut_factor):
                    clusters[i], changed = parts, True
        if not changed:
            break
    return clusters


def _slice_polygons(p2: np.ndarray, clusters: list) -> list:
    """(local index, polygon, hole) for every contour with >= 3 points on one slice."""
    found = []
    for idx in clusters:
        if len(idx) < 3:
            continue
        idx = idx[order_polygon(p2[idx])]
        poly = p2[idx]
        if signed_area(poly) < 0:
            idx, poly = idx[::-1], poly[::-1]
        found.append([idx, poly])
    out = []
    for k, (idx, poly) in enumerate(found):
        depth = sum(bool(points_in_polygon(poly[:1], other)[0]) for j, (_, other) in enumerate(found) if j != k)
        hole = depth % 2 == 1
        if hole:  # holes run clockwise so that "right of travel" still points out of the solid
            idx, poly = idx[::-1], poly[::-1]
        out.append((idx, poly, hole))
    return out


def slice_contours(points: np.ndarray, layout: SliceLayout, cfg: Optional[SliceConfig] = None) -> SliceContours:
    """Contours and outward in-plane normals of every slice.

    Args:
        points: (N, 3) RAS mm, the points ``layout`` was detected on.
        layout: From :func:`detect_slices`.
        cfg: Clustering settings.

    Returns:
        SliceContours; ``normals`` is (N, 3) with zero rows for points on no
        contour (off-slice points, or clusters of fewer than 3 points).
    """
    cfg = cfg or SliceConfig()
    pts = np.asarray(points, dtype=np.float64)
    normals = np.zeros_like(pts)
    result = SliceContours(layout)
    members = [np.flatnonzero(layout.level_of_point == lev) for lev in range(len(layout.levels))]
    p2 = [pts[m] @ layout.basis.T for m in members]
    clusters = _propagate_splits(p2, [split_contours(q, cfg.cut_factor) for q in p2], cfg.cut_factor)
    for lev in range(len(layout.levels)):
        for idx, poly, hole in _slice_polygons(p2[lev], clusters[lev]):
            n2 = vertex_normals(poly)
            result.contours.append(Contour(lev, members[lev][idx], poly, n2, hole))
            normals[members[lev][idx]] = n2 @ layout.basis
    result.normals = normals
    return result
