"""Self-intersection test of a triangle mesh.

Candidate triangle pairs are those whose bounding spheres (centroid, max
vertex distance) overlap (KD-tree pair query). Two non-coplanar triangles
intersect iff an edge of one crosses the other, so each candidate pair runs
six segment–triangle tests (Möller & Trumbore 1997) with *strict*
inequalities, skipping edges that end at a vertex of the other triangle:
contact at a shared vertex or edge (neighbouring triangles) is not an
intersection. Not detected: coplanar overlaps and crossings exactly through
an edge of both triangles (measure zero; marching cubes output has neither
unless faces are degenerate, which ``mesh_quality`` counts separately).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from AnatomyINRLib.core.types import TriangleMesh

_EPS = 1e-9          # relative tolerance on barycentric and segment parameters
_PAIR_CHUNK = 200_000


def _segment_crosses(p0: np.ndarray, p1: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(M,) bool: open segment p0p1 crosses the open triangle abc (row by row, Möller–Trumbore)."""
    e1, e2, d = b - a, c - a, p1 - p0
    h = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, h)
    scale = np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1) * np.linalg.norm(d, axis=1)
    ok = np.abs(det) > _EPS * np.maximum(scale, 1e-300)   # parallel / coplanar: not counted
    inv = np.divide(1.0, det, out=np.zeros_like(det), where=ok)
    s = p0 - a
    u = inv * np.einsum("ij,ij->i", s, h)
    q = np.cross(s, e1)
    v = inv * np.einsum("ij,ij->i", d, q)
    t = inv * np.einsum("ij,ij->i", e2, q)
    return ok & (u > _EPS) & (v > _EPS) & (u + v < 1 - _EPS) & (t > _EPS) & (t < 1 - _EPS)


def _pairs_intersect(tri: np.ndarray, faces: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """(M,) bool for triangle pairs (i, j): any edge of one crosses the other.

    An edge with an endpoint that is a vertex of the other triangle can only
    meet that triangle at the shared vertex (unless coplanar), so it is skipped:
    testing it numerically gives false hits when the faces are nearly parallel.
    """
    hit = np.zeros(len(i), dtype=bool)
    for s, o in ((i, j), (j, i)):
        for k in range(3):
            a, b = faces[s, k], faces[s, (k + 1) % 3]
            touches = np.any(faces[o] == a[:, None], axis=1) | np.any(faces[o] == b[:, None], axis=1)
            p0, p1 = tri[s, k], tri[s, (k + 1) % 3]
            hit |= ~touches & _segment_crosses(p0, p1, tri[o, 0], tri[o, 1], tri[o, 2])
    return hit


def self_intersecting_pairs(mesh: TriangleMesh) -> np.ndarray:
    """(M, 2) int64 indices of the intersecting triangle pairs (empty for a self-intersection-free surface).

    Args:
        mesh: Triangle mesh in RAS mm.
    """
    out = [np.zeros((0, 2), np.int64)]
    if mesh.n_faces < 2:
        return out[0]
    tri = mesh.vertices[mesh.faces]
    centroids = tri.mean(axis=1)
    radius = np.linalg.norm(tri - centroids[:, None, :], axis=2).max(axis=1)
    pairs = cKDTree(centroids).query_pairs(2.0 * float(radius.max()), output_type="ndarray")
    for start in range(0, len(pairs), _PAIR_CHUNK):
        i, j = pairs[start:start + _PAIR_CHUNK].T
        close = np.linalg.norm(centroids[i] - centroids[j], axis=1) <= radius[i] + radius[j]
        i, j = i[close], j[close]
        hit = _pairs_intersect(tri, mesh.faces, i, j)
        out.append(np.stack([i[hit], j[hit]], axis=1).astype(np.int64))
    return np.concatenate(out)


def count_self_intersections(mesh: TriangleMesh) -> int:
    """Number of intersecting triangle pairs (0 for a self-intersection-free surface).

    Args:
        mesh: Triangle mesh in RAS mm.

    Returns:
        Count of triangle pairs whose interiors cross.
    """
    return len(self_intersecting_pairs(mesh))
