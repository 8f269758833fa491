"""Classical surface-from-points baselines for the benchmark (not part of the library).

Clicked points carry no normals, so every normal-based baseline gets normals
estimated the classical way: PCA over k neighbours, oriented consistently by
propagation along a minimum spanning tree of the k-NN graph (Hoppe et al.,
SIGGRAPH 1992), flipped globally so most point away from the centroid.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree
from scipy.spatial import ConvexHull, cKDTree

from AnatomyINRLib.core.types import TriangleMesh


def convex_hull_mesh(points: np.ndarray) -> TriangleMesh:
    """Convex hull (what a convex-biased tool returns), faces outward."""
    hull = ConvexHull(points)
    faces = hull.simplices.copy()
    centre = points[hull.vertices].mean(axis=0)
    tri = points[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flip = np.einsum("ij,ij->i", normal, tri[:, 0] - centre) < 0
    faces[flip] = faces[flip][:, ::-1]
    return TriangleMesh(points, faces)


def estimate_normals(points: np.ndarray, k: int = 10) -> np.ndarray:
    """(N, 3) unit normals: PCA per point, MST-propagated orientation (Hoppe 1992)."""
    k = min(k, len(points) - 1)
    tree = cKDTree(points)
    dist, idx = tree.query(points, k=k + 1)
    normals = np.empty_like(points)
    for i in range(len(points)):
        nb = points[idx[i]] - points[idx[i]].mean(axis=0)
        normals[i] = np.linalg.svd(nb, full_matrices=False)[2][-1]
    rows = np.repeat(np.arange(len(points)), k)
    cols = idx[:, 1:].reshape(-1)
    # Edge weight 1 − |n_i·n_j| (+ε) prefers propagating across parallel normals.
    w = 1.0 - np.abs(np.einsum("ij,ij->i", normals[rows], normals[cols])) + 1e-6
    graph = coo_matrix((w, (rows, cols)), shape=(len(points),) * 2)
    mst = minimum_spanning_tree(graph + graph.T)
    mst = mst + mst.T
    seen = np.zeros(len(points), bool)
    for root in range(len(points)):
        if seen[root]:
            continue
        order, pred = breadth_first_order(mst, root, directed=False)
        seen[order] = True
        for node in order[1:]:
            if normals[node] @ normals[pred[node]] < 0:
                normals[node] = -normals[node]
    outward = np.einsum("ij,ij->i", normals, points - points.mean(axis=0))
    if np.sum(outward > 0) < len(points) / 2:
        normals = -normals
    return normals


class RBFImplicit:
    """Thin-plate RBF implicit surface (Carr et al., SIGGRAPH 2001) from unoriented points.

    Constraints: f = 0 at the points, f = ±ε at points offset by ±ε along the
    estimated normals. Evaluated as a field (N, 3) → (N,), negative inside.
    """

    def __init__(self, points: np.ndarray, epsilon_fraction: float = 0.01) -> None:
        from scipy.interpolate import RBFInterpolator

        normals = estimate_normals(points)
        eps = epsilon_fraction * float(np.max(np.ptp(points, axis=0)))
        centres = np.vstack([points, points + eps * normals, points - eps * normals])
        values = np.concatenate([np.zeros(len(points)), np.full(len(points), eps), np.full(len(points), -eps)])
        self.rbf = RBFInterpolator(centres, values, kernel="thin_plate_spline")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.empty(len(x))
        for s in range(0, len(x), 20000):
            out[s:s + 20000] = self.rbf(x[s:s + 20000])
        return out


def screened_poisson_mesh(points: np.ndarray, depth: int = 8) -> TriangleMesh | None:
    """Screened Poisson (Kazhdan & Hoppe 2013) via pymeshlab with estimated normals; None if absent."""
    try:
        import pymeshlab
    except ImportError:
        return None
    normals = estimate_normals(points)
    ms = pymeshlab.MeshSet()
    ms.add_mesh(pymeshlab.Mesh(vertex_matrix=points, v_normals_matrix=normals))
    ms.generate_surface_reconstruction_screened_poisson(depth=depth, preclean=True)
    m = ms.current_mesh()
    return TriangleMesh(m.vertex_matrix(), m.face_matrix())
