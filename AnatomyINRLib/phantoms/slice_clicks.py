"""Simulated clinician clicks: points on parallel slices through a reference surface.

A user segmenting by clicking looks at image slices and places points on the
boundary seen in each slice. :func:`slice_click_points` reproduces that on a
closed triangle mesh: planes every ``spacing_mm`` across the shape's long
axis, about ``per_slice`` points per plane spread along the plane's
cross-section contour(s) by arc length, with Gaussian in-plane noise.

:func:`mesh_sections` gives the exact cross-section polygons (plane ∩ mesh),
also used by the "interpolate the true contours" baseline.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.seeding import numpy_rng
from AnatomyINRLib.core.types import TriangleMesh

_MIN_CONTOUR_MM = 3.0  # cross-sections shorter than this are too small to click on


def long_axis(mesh: TriangleMesh) -> np.ndarray:
    """(3,) unit principal axis of the mesh vertices with the largest spread."""
    v = mesh.vertices - mesh.vertices.mean(axis=0)
    return np.linalg.svd(v, full_matrices=False)[2][0]


def _chain(segments: np.ndarray, keys: np.ndarray) -> list:
    """Chain plane/triangle segments into loops; keys (S, 2) name each end by its mesh edge."""
    ends: dict = {}
    for s, (k0, k1) in enumerate(keys):
        ends.setdefault(k0, []).append((s, 0))
        ends.setdefault(k1, []).append((s, 1))
    used = np.zeros(len(segments), dtype=bool)
    loops = []
    for start in range(len(segments)):
        if used[start]:
            continue
        used[start] = True
        loop, key = [segments[start, 0]], keys[start, 1]
        point = segments[start, 1]
        while True:
            nxt = [(s, e) for s, e in ends.get(key, []) if not used[s]]
            if not nxt:
                break
            s, e = nxt[0]
            used[s] = True
            loop.append(point)
            point, key = segments[s, 1 - e], keys[s, 1 - e]
        loop.append(point)
        if len(loop) >= 3:
            loops.append(np.asarray(loop))
    return loops


def mesh_sections(mesh: TriangleMesh, axis, level: float) -> list:
    """Closed cross-section polygons of a mesh with the plane {x : x·axis = level}.

    Args:
        mesh: Closed triangle mesh, RAS mm.
        axis: (3,) unit plane normal.
        level: Plane position along ``axis``, mm.

    Returns:
        List of (m, 3) polygons (RAS mm, on the plane), one per contour.
    """
    a = np.asarray(axis, dtype=np.float64)
    d = mesh.vertices @ a - level
    d = np.where(np.abs(d) < 1e-9, 1e-9, d)  # no vertex exactly on the plane
    f = mesh.faces
    side = d[f] > 0
    cut = side.any(axis=1) & ~side.all(axis=1)
    segs, keys = [], []
    for tri in f[cut]:
        pts, ks = [], []
        for i, j in ((0, 1), (1, 2), (2, 0)):
            vi, vj = tri[i], tri[j]
            if (d[vi] > 0) != (d[vj] > 0):
                t = d[vi] / (d[vi] - d[vj])
                pts.append(mesh.vertices[vi] + t * (mesh.vertices[vj] - mesh.vertices[vi]))
                ks.append((min(vi, vj), max(vi, vj)))
        segs.append(pts)
        keys.append(ks)
    if not segs:
        return []
    keys_arr = np.empty((len(keys), 2), dtype=object)
    for s, (k0, k1) in enumerate(keys):
        keys_arr[s, 0], keys_arr[s, 1] = k0, k1
    return _chain(np.asarray(segs), keys_arr)


def _arc_sample(loop: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k points spread along a closed polyline by arc length (random phase, ±20 % jitter)."""
    closed = np.vstack([loop, loop[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    step = cum[-1] / k
    s = (rng.random() + np.arange(k) + rng.uniform(-0.2, 0.2, size=k)) * step % cum[-1]
    i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    t = (s - cum[i]) / np.maximum(seg[i], 1e-12)
    return closed[i] + t[:, None] * (closed[i + 1] - closed[i])


def slice_levels(mesh: TriangleMesh, axis, spacing_mm: float, offset: float) -> np.ndarray:
    """Plane positions every ``spacing_mm`` strictly inside the mesh's extent along ``axis``."""
    t = mesh.vertices @ np.asarray(axis, dtype=np.float64)
    return np.arange(t.min() + max(offset, 1e-3) * spacing_mm, t.max(), spacing_mm)


def slice_click_points(
    mesh: TriangleMesh,
    spacing_mm: float = 5.0,
    per_slice: int = 12,
    noise_mm: float = 0.3,
    seed=0,
    axis: Optional[np.ndarray] = None,
    return_slices: bool = False,
):
    """Points a user would click on parallel slices of a reference surface.

    Slices are planes normal to ``axis`` (default: the long axis) every
    ``spacing_mm``, starting at a seeded random offset. Each slice gets about
    ``per_slice`` points, shared among its contours in proportion to their
    lengths (at least 3 per contour), evenly spread by arc length with random
    phase and jitter, then moved by N(0, noise_mm²) along each in-plane
    direction (the points stay exactly on the slice plane).

    Args:
        mesh: Closed reference surface, RAS mm.
        spacing_mm: Distance between slices.
        per_slice: Points per slice (approximately, see above).
        noise_mm: In-plane noise standard deviation per axis.
        seed: Seed (slice offset, arc phases, noise).
        axis: (3,) slice normal; default :func:`long_axis`.
        return_slices: Also return the slice normal and the plane positions.

    Returns:
        (N, 3) RAS mm; with ``return_slices`` also the (3,) axis and (L,) levels (mm).
    """
    if not spacing_mm > 0 or int(per_slice) < 3:
        raise InputError("spacing_mm/per_slice: expected spacing > 0 mm and at least 3 points per slice")
    rng = numpy_rng(seed)
    a = long_axis(mesh) if axis is None else np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    helper = np.eye(3)[int(np.argmin(np.abs(a)))]
    u = np.cross(a, helper)
    u /= np.linalg.norm(u)
    v = np.cross(a, u)
    out = []
    levels = slice_levels(mesh, a, spacing_mm, float(rng.random()))
    for level in levels:
        loops = [lp for lp in mesh_sections(mesh, a, level)
                 if np.linalg.norm(np.diff(np.vstack([lp, lp[:1]]), axis=0), axis=1).sum() >= _MIN_CONTOUR_MM]
        if not loops:
            continue
        lengths = np.array([np.linalg.norm(np.diff(np.vstack([lp, lp[:1]]), axis=0), axis=1).sum() for lp in loops])
        counts = np.maximum(3, np.round(per_slice * lengths / lengths.sum()).astype(int))
        for lp, k in zip(loops, counts):
            p = _arc_sample(lp, int(k), rng)
            noise = rng.normal(scale=noise_mm, size=(len(p), 2))
            out.append(p + noise[:, :1] * u + noise[:, 1:] * v)
    points = np.concatenate(out)
    return (points, a, levels) if return_slices else points
