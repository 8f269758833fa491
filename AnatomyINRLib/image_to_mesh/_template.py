"""The template mesh of ImplicitMeshNet: an icosphere of radius 0.5 in the normalised cube [-1, 1]³.

Subdividing the icosahedron (12 vertices, 20 faces) n times, each face split 1→4 at its edge
midpoints and every new vertex pushed onto the sphere, gives V = 10·4ⁿ + 2 vertices and
F = 20·4ⁿ faces; n = 4 is the paper's template (2562 vertices, 5120 faces; Appendix B.2).
Faces are counter-clockwise seen from outside (outward normals), like ``core.TriangleMesh``.
The fixed topology is what the shape network deforms: only vertex positions change.
"""

from __future__ import annotations

import numpy as np

from AnatomyINRLib.core.errors import InputError

TEMPLATE_RADIUS = 0.5  # in the normalised cube [-1, 1]³ (paper §3: a sphere at the image centre)
TEMPLATE_SUBDIVISIONS = 4  # 2562 vertices, 5120 faces


def _icosahedron() -> tuple[np.ndarray, np.ndarray]:
    """Unit icosahedron: (12, 3) vertices and (20, 3) outward-oriented faces."""
    t = (1.0 + np.sqrt(5.0)) / 2.0
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0],
                  [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
                  [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], dtype=np.float64)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
                  [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
                  [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
                  [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]], dtype=np.int64)
    return v / np.linalg.norm(v, axis=1, keepdims=True), f


def _subdivide(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One 1→4 split; each edge's midpoint is created once (shared by its two faces) and projected."""
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    unique, inverse = np.unique(edges, axis=0, return_inverse=True)
    mid = v[unique].mean(axis=1)
    mid /= np.linalg.norm(mid, axis=1, keepdims=True)
    m = inverse.reshape(3, -1).T + len(v)  # (F, 3): midpoint ids of edges (0,1), (1,2), (2,0)
    a, b, c = f[:, 0], f[:, 1], f[:, 2]
    ab, bc, ca = m[:, 0], m[:, 1], m[:, 2]
    faces = np.concatenate([np.stack(t, axis=1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
    return np.concatenate([v, mid]), faces


def icosphere(subdivisions: int = TEMPLATE_SUBDIVISIONS, radius: float = TEMPLATE_RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """Icosphere vertices and faces.

    Args:
        subdivisions: n ≥ 0 (V = 10·4ⁿ + 2, F = 20·4ⁿ).
        radius: Sphere radius (normalised units; 0.5 for the template).

    Returns:
        ((V, 3) float64 vertices on the sphere, (F, 3) int64 outward-oriented faces).
    """
    if isinstance(subdivisions, bool) or not isinstance(subdivisions, (int, np.integer)) or not 0 <= subdivisions <= 7:
        raise InputError(f"subdivisions: expected an integer in [0, 7], got {subdivisions!r}")
    if not (np.isfinite(radius) and radius > 0):
        raise InputError(f"radius: expected a positive number, got {radius!r}")
    v, f = _icosahedron()
    for _ in range(int(subdivisions)):
        v, f = _subdivide(v, f)
    return v * float(radius), f


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """(E, 2) undirected edges (smaller index first) of a triangle mesh, each once."""
    f = np.asarray(faces, dtype=np.int64)
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    return np.unique(e, axis=0)
