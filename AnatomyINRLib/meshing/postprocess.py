"""Mesh clean-up: duplicate vertices, components, orientation, normals.

All functions take and return :class:`TriangleMesh` in RAS mm and never
modify their input.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.meshing.topology import edge_table, face_components, mesh_quality

__all__ = [
    "clean_mesh",
    "component_areas",
    "largest_component",
    "mesh_quality",
    "orient_outward",
    "vertex_normals",
    "winding_number",
]


def _subset(mesh: TriangleMesh, keep_faces: np.ndarray, faces: np.ndarray | None = None) -> TriangleMesh:
    """Keep the selected faces and only the vertices they use (point_data follows)."""
    faces = (mesh.faces if faces is None else faces)[keep_faces]
    used, inverse = np.unique(faces, return_inverse=True)
    data = {k: np.asarray(v)[used] for k, v in mesh.point_data.items()}
    return TriangleMesh(mesh.vertices[used], inverse.reshape(-1, 3), data)


def clean_mesh(mesh: TriangleMesh) -> TriangleMesh:
    """Merge vertices at identical positions, drop degenerate and repeated faces.

    Marching cubes emits several vertices at one grid node when the field is
    exactly zero there; merging them (exact float equality, no tolerance) and
    dropping the collapsed triangles restores a shared-vertex mesh. Faces
    using the same three vertices twice are kept once (with opposite windings
    both are dropped: such a pair encloses nothing).

    Returns:
        A new mesh; point_data keeps the first merged vertex's values.
    """
    if mesh.n_faces == 0:
        return TriangleMesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64))
    _, first, remap = np.unique(mesh.vertices, axis=0, return_index=True, return_inverse=True)
    faces = first[remap.reshape(-1)][mesh.faces]
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    candidates = np.flatnonzero(keep)
    _, first_face, group, counts = np.unique(
        np.sort(faces[candidates], axis=1), axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    group = group.reshape(-1)
    parity = _winding_parity(faces[candidates])
    mixed = np.zeros(len(counts), bool)
    np.logical_or.at(mixed, group, parity != parity[first_face][group])
    is_first = np.zeros(len(candidates), bool)
    is_first[first_face] = True
    keep[:] = False
    keep[candidates[is_first & ~mixed[group]]] = True
    return _subset(mesh, keep, faces)


def _winding_parity(faces: np.ndarray) -> np.ndarray:
    """(F,) bool: parity of the permutation that sorts each face's indices."""
    order = np.argsort(faces, axis=1)
    # A cyclic shift of (0,1,2) is even; the three transposition orders are odd.
    even = {(0, 1, 2), (1, 2, 0), (2, 0, 1)}
    codes = order[:, 0] * 9 + order[:, 1] * 3 + order[:, 2]
    even_codes = np.array([a * 9 + b * 3 + c for a, b, c in even])
    return ~np.isin(codes, even_codes)


def component_areas(mesh: TriangleMesh) -> tuple[np.ndarray, np.ndarray]:
    """Connected components (faces sharing vertices) and their areas.

    Returns:
        (F,) int component label of every face and (n,) float64 area of each component in mm²
        (mesh units squared); n = 0 for a mesh without faces.
    """
    n, labels = face_components(mesh.faces, mesh.n_vertices)
    tri = mesh.vertices[mesh.faces]
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    return labels, np.bincount(labels, weights=areas, minlength=n)


def largest_component(mesh: TriangleMesh, components: tuple | None = None) -> TriangleMesh:
    """The connected component (faces sharing vertices) with the largest area.

    ``components``: :func:`component_areas` of ``mesh`` when already computed.
    """
    labels, areas = component_areas(mesh) if components is None else components
    if len(areas) <= 1:
        return mesh
    return _subset(mesh, labels == int(np.argmax(areas)))


def winding_number(mesh: TriangleMesh, points: np.ndarray) -> np.ndarray:
    """Generalised winding number of closed-surface ``mesh`` at (N, 3) RAS mm points.

    Sum of signed solid angles / 4π (Van Oosterom & Strackee 1983:
    tan(Ω/2) = a·(b×c) / (|a||b||c| + (a·b)|c| + (b·c)|a| + (c·a)|b|)).
    ≈ 1 inside an outward-oriented closed mesh, 0 outside, −1 inside an
    inward one. Cost O(N·F): meant for a few query points, not grids.

    Returns:
        (N,) float64.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    tri = mesh.vertices[mesh.faces]
    out = np.empty(len(pts))
    for i, p in enumerate(pts):
        a, b, c = tri[:, 0] - p, tri[:, 1] - p, tri[:, 2] - p
        la, lb, lc = (np.linalg.norm(v, axis=1) for v in (a, b, c))
        num = np.einsum("ij,ij->i", a, np.cross(b, c))
        den = (la * lb * lc + np.einsum("ij,ij->i", a, b) * lc
               + np.einsum("ij,ij->i", b, c) * la + np.einsum("ij,ij->i", c, a) * lb)
        out[i] = 2.0 * np.arctan2(num, den).sum() / (4.0 * np.pi)
    return out


def _consistent_winding(faces: np.ndarray) -> np.ndarray:
    """Flip faces so neighbours across every 2-face edge wind oppositely.

    Breadth-first over the face adjacency graph; each component keeps the
    winding held by most of its faces.
    """
    table = edge_table(faces)
    half = table.face_edges.reshape(-1)
    order = np.argsort(half, kind="stable")
    same = half[order][1:] == half[order][:-1]
    a, b = order[:-1][same], order[1:][same]
    # Neighbours agree when they traverse the shared edge in opposite directions.
    agree = table.directed[a, 0] != table.directed[b, 0]
    n = len(faces)
    graph = sparse.coo_matrix((np.ones(len(a), np.int8), (a // 3, b // 3)), shape=(n, n)).tocsr()
    # Sorted keys of (face, neighbour) pairs → whether that pair needs opposite flips.
    keys = np.concatenate([(a // 3) * n + b // 3, (b // 3) * n + a // 3])
    disagree = np.concatenate([~agree, ~agree])
    key_order = np.argsort(keys)
    keys, disagree = keys[key_order], disagree[key_order]
    n_comp, comp = csgraph.connected_components(graph, directed=False)
    flags = [False] * n
    _, roots = np.unique(comp, return_index=True)
    for root in roots.tolist():
        nodes, pred = csgraph.breadth_first_order(graph, root, directed=False, return_predecessors=True)
        child = nodes[1:]
        step = disagree[np.searchsorted(keys, pred[child] * n + child)]
        for node, parent, s in zip(child.tolist(), pred[child].tolist(), step.tolist()):
            flags[node] = flags[parent] ^ s
    flip = np.asarray(flags, bool)
    majority_flipped = np.bincount(comp, weights=flip, minlength=n_comp) * 2 > np.bincount(comp, minlength=n_comp)
    flip ^= majority_flipped[comp]
    out = faces.copy()
    out[flip] = out[flip][:, ::-1]
    return out


def orient_outward(mesh: TriangleMesh) -> TriangleMesh:
    """Wind every closed component so its faces point out of the enclosed solid.

    Windings are first made consistent. A closed component nested inside an
    odd number of other closed components bounds a cavity, so it faces
    inward (towards the cavity, i.e. out of the solid); all others get
    positive signed volume. Open components keep their majority winding.
    """
    if mesh.n_faces == 0:
        return mesh
    faces = _consistent_winding(mesh.faces)
    n, labels = face_components(faces, mesh.n_vertices)
    parts = [TriangleMesh(mesh.vertices, faces[labels == c]) for c in range(n)]
    closed = [mesh_quality(p, check_manifold3d=False)["watertight"] for p in parts]
    for c, part in enumerate(parts):
        if not closed[c]:
            continue
        probe = mesh.vertices[part.faces[0, 0]][None]
        depth = sum(
            abs(winding_number(other, probe)[0]) > 0.5
            for o, other in enumerate(parts) if o != c and closed[o]
        )
        want_positive = depth % 2 == 0
        if (part.signed_volume() > 0) != want_positive:
            faces[labels == c] = faces[labels == c][:, ::-1]
    return TriangleMesh(mesh.vertices.copy(), faces, dict(mesh.point_data))


def vertex_normals(mesh: TriangleMesh) -> np.ndarray:
    """(V, 3) area-weighted unit vertex normals from the face winding (zero for unused vertices)."""
    if mesh.n_faces == 0:
        raise InputError("mesh: no faces, normals are undefined")
    tri = mesh.vertices[mesh.faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])   # length = 2·area
    normals = np.zeros_like(mesh.vertices)
    for k in range(3):
        np.add.at(normals, mesh.faces[:, k], face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)
