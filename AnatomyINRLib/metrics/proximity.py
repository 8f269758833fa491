"""Exact point-to-triangle-mesh distance (closest point on the true surface).

Method (chosen because trimesh's ``proximity.closest_point`` needs ``rtree``,
which is not a dependency):

1. Per face: centroid ``c_f`` and bounding radius ``r_f = max |v − c_f|`` over
   its three vertices, so every point of face f lies within ``r_f`` of ``c_f``.
   ``r_max = max_f r_f``.
2. For each query q, take the k faces with the nearest centroids (KD-tree),
   compute the exact point-triangle distance to each (Ericson, *Real-Time
   Collision Detection*, §5.1.5) and keep the best, ``U``.
3. Every face not examined has ``|q − c_f| ≥ d_k`` (the k-th centroid
   distance), hence distance ``≥ d_k − r_max``. If ``d_k − r_max ≥ U`` no
   unexamined face can be closer and ``U`` is the exact answer; otherwise k
   doubles for that query (up to all faces).

Accuracy: exact up to floating-point rounding (about 1e-12 relative), the
stopping rule is a proof, not a heuristic. Speed: for queries within a few
edge lengths of a mesh with roughly uniform triangles, k = 8–32 suffices
(about 1 s per 10⁵ queries on one core); queries far from the surface or
meshes with a few huge triangles need larger k and are slower, never wrong.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import TriangleMesh

_PAIR_BUDGET = 400_000  # query-face pairs evaluated per block (bounds memory at ~100 MB)


def closest_point_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point on triangle (a, b, c) to p, row by row.

    Voronoi-region test of Ericson §5.1.5, vectorised. Degenerate triangles
    (zero area) are handled by falling back to the closest of their edges.

    Args:
        p, a, b, c: (M, 3) query points and triangle vertices (mm).

    Returns:
        (M, 3) closest points (mm).
    """
    ab, ac, ap = b - a, c - a, p - a
    bp, cp = p - b, p - c
    dot = lambda u, v: np.einsum("ij,ij->i", u, v)  # noqa: E731 - local shorthand
    d1, d2 = dot(ab, ap), dot(ac, ap)
    d3, d4 = dot(ab, bp), dot(ac, bp)
    d5, d6 = dot(ab, cp), dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        interior = a + ab * (vb / denom)[:, None] + ac * (vc / denom)[:, None]
        e_ab = a + ab * (d1 / (d1 - d3))[:, None]
        e_ac = a + ac * (d2 / (d2 - d6))[:, None]
        w_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        e_bc = b + (c - b) * w_bc[:, None]
    # Ericson returns at the first matching region; assigning in reverse order
    # with np.where gives the same priority.
    out = interior
    out = np.where(((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0))[:, None], e_bc, out)
    out = np.where(((vb <= 0) & (d2 >= 0) & (d6 <= 0))[:, None], e_ac, out)
    out = np.where(((d6 >= 0) & (d5 <= d6))[:, None], c, out)
    out = np.where(((vc <= 0) & (d1 >= 0) & (d3 <= 0))[:, None], e_ab, out)
    out = np.where(((d3 >= 0) & (d4 <= d3))[:, None], b, out)
    out = np.where(((d1 <= 0) & (d2 <= 0))[:, None], a, out)
    bad = ~np.all(np.isfinite(out), axis=1)
    if np.any(bad):
        out[bad] = _closest_on_edges(p[bad], a[bad], b[bad], c[bad])
    return out


def _closest_on_edges(p, a, b, c) -> np.ndarray:
    """Closest point on the three edges (used for degenerate triangles only)."""
    best, best_d = None, None
    for s, e in ((a, b), (b, c), (c, a)):
        seg = e - s
        len2 = np.einsum("ij,ij->i", seg, seg)
        t = np.divide(np.einsum("ij,ij->i", p - s, seg), len2, out=np.zeros_like(len2), where=len2 > 0)
        q = s + seg * np.clip(t, 0.0, 1.0)[:, None]
        d = np.einsum("ij,ij->i", p - q, p - q)
        if best is None:
            best, best_d = q, d
        else:
            closer = d < best_d
            best = np.where(closer[:, None], q, best)
            best_d = np.where(closer, d, best_d)
    return best


class MeshProximity:
    """Reusable exact closest-point queries against one triangle mesh.

    Args:
        mesh: The surface (RAS mm); needs at least one face.

    Raises:
        InputError: the mesh has no faces.
    """

    def __init__(self, mesh: TriangleMesh) -> None:
        if mesh.n_faces == 0:
            raise InputError("mesh: expected a triangle mesh with at least one face, got none")
        self._tri = mesh.vertices[mesh.faces]  # (F, 3, 3)
        centroids = self._tri.mean(axis=1)
        self._r_max = float(np.linalg.norm(self._tri - centroids[:, None, :], axis=2).max())
        self._tree = cKDTree(centroids)
        self._n_faces = mesh.n_faces

    def query(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact closest points on the mesh surface.

        Args:
            points: (N, 3) query points, RAS mm.

        Returns:
            distance (N,) mm, closest (N, 3) RAS mm, face (N,) int64 index of
            the face holding the closest point (ties: any of them).
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise InputError(f"points: expected an (N, 3) array, got shape {pts.shape}")
        n = len(pts)
        dist = np.full(n, np.inf)
        closest = np.zeros((n, 3))
        face = np.zeros(n, dtype=np.int64)
        todo = np.arange(n)
        k = min(8, self._n_faces)
        while todo.size:
            unresolved = []
            block = max(1, _PAIR_BUDGET // k)
            for start in range(0, todo.size, block):
                idx = todo[start : start + block]
                done = self._query_block(pts[idx], k, idx, dist, closest, face)
                unresolved.append(idx[~done])
            todo = np.concatenate(unresolved) if unresolved else todo[:0]
            k = min(2 * k, self._n_faces)
        return dist, closest, face

    def _query_block(self, pts, k, idx, dist, closest, face) -> np.ndarray:
        """Evaluate k candidate faces for a block; return which queries are proven exact."""
        cdist, cand = self._tree.query(pts, k=k)
        cdist = cdist.reshape(len(pts), k)
        cand = cand.reshape(len(pts), k)
        rep = np.repeat(pts, k, axis=0)
        tri = self._tri[cand.ravel()]
        q = closest_point_on_triangles(rep, tri[:, 0], tri[:, 1], tri[:, 2])
        d = np.linalg.norm(rep - q, axis=1).reshape(len(pts), k)
        j = np.argmin(d, axis=1)
        rows = np.arange(len(pts))
        dist[idx] = d[rows, j]
        closest[idx] = q.reshape(len(pts), k, 3)[rows, j]
        face[idx] = cand[rows, j]
        if k >= self._n_faces:
            return np.ones(len(pts), dtype=bool)
        return cdist[:, -1] - self._r_max >= dist[idx]


def closest_point_on_mesh(points: np.ndarray, mesh: TriangleMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact closest points on a triangle mesh (see module docstring for the method).

    Args:
        points: (N, 3) RAS mm.
        mesh: Triangle surface in RAS mm.

    Returns:
        distance (N,) mm, closest (N, 3) RAS mm, face (N,) int64.
    """
    return MeshProximity(mesh).query(points)


def points_to_mesh_distance(points: np.ndarray, mesh: TriangleMesh) -> np.ndarray:
    """Unsigned exact distance (mm) from each point to the mesh surface, shape (N,)."""
    return MeshProximity(mesh).query(points)[0]
