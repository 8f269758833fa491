"""Exact signed distance to a closed triangle mesh (RAS mm, negative inside).

Method:

* Unsigned distance and closest point: VTK's ``vtkStaticCellLocator``
  (``FindClosestPoint``, exact point–triangle distance over a uniform bin
  structure, C++). Measured on the vmtk aorta (12,932 faces, 20k random
  points in the box): 0.44 s, identical distances to
  ``vtkImplicitPolyDataDistance``; our numpy ``metrics.proximity`` query was
  20–100× slower for points inside tubes, where many faces are almost
  equally close.
* Sign: angle-weighted pseudonormal at the closest feature (Bærentzen &
  Aanæs, "Signed distance computation using the angle weighted
  pseudonormal", IEEE TVCG 2005). The closest point is classified by its
  barycentric coordinates as lying inside a face (face normal), on an edge
  (sum of the two face normals) or at a vertex (Σ incident angle · face
  normal); sign((q − c) · n) is then exact for a closed, consistently
  oriented manifold mesh. The rare queries whose sign is undecided (closest
  point on a degenerate face) fall back to the generalised winding number.

Cost: about 5–25 µs per query near the surface, more far away. Hence the
optional truncation ``truncate_mm = T`` (a narrow band): points farther than
T from the surface are detected with one KD-tree ball query and get ±T, the
sign taken from a coarse grid whose far-from-surface nodes are flood-filled
into connected regions (each region lies wholly inside or outside; one
winding number per inner region decides it). The truncated field
sign·min(|d|, T) is still 1-Lipschitz and has the same zero set, which is
all a union with blend radius k < T needs (see ``blend.union``).

Used by blending (closed-mesh inputs) and nested walls (thickness maps,
violations), hence its home in ``meshing``.
"""

from __future__ import annotations

import numpy as np

from scipy import ndimage
from scipy.spatial import cKDTree

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.meshing.postprocess import clean_mesh, orient_outward, winding_number
from AnatomyINRLib.meshing.topology import edge_table
from AnatomyINRLib.meshing.vtk_bridge import polydata_from_mesh

_BARY_EPS = 1e-9  # barycentric coordinate below which the closest point is on an edge/vertex


def _unit_rows(v: np.ndarray) -> np.ndarray:
    length = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, length, out=np.zeros_like(v), where=length > 0)


def check_closed(mesh: TriangleMesh, name: str = "mesh", remedy: str = "") -> None:
    """Raise InputError unless every edge is shared by exactly two faces; ``remedy`` ends the message."""
    if mesh.n_faces == 0:
        raise InputError(f"{name}: expected a closed triangle mesh, got no faces")
    counts = edge_table(mesh.faces).counts
    open_edges = int(np.count_nonzero(counts == 1))
    nonmanifold = int(np.count_nonzero(counts > 2))
    if open_edges or nonmanifold:
        raise InputError(
            f"{name}: expected a closed (watertight, manifold) mesh, got {open_edges} boundary and "
            f"{nonmanifold} non-manifold edge(s)" + (f"; {remedy}" if remedy else "")
        )


class MeshSDF:
    """Callable exact (optionally truncated) signed distance field of a closed mesh.

    Args:
        mesh: Closed triangle mesh in RAS mm (any orientation: it is cleaned and
            oriented outward here, the caller's mesh is not modified).
        name: Used in error messages.
        truncate_mm: None for the exact distance everywhere; T > 0 returns
            sign · min(|d|, T) (exact within T of the surface, much faster far away).
        prepared: The mesh is already clean and outward-oriented (e.g. fresh from
            ``meshing.extract_surface``): skip clean-up and orientation (only closedness is checked).
        remedy: What the caller suggests for a mesh that is not closed (ends the error message).

    Raises:
        InputError: the mesh is not closed and manifold, or T is not positive.
    """

    def __init__(self, mesh: TriangleMesh, name: str = "mesh", truncate_mm: float | None = None,
                 prepared: bool = False, remedy: str = "") -> None:
        if truncate_mm is not None and not (np.isfinite(truncate_mm) and truncate_mm > 0):
            raise InputError(f"truncate_mm: expected a positive number of mm or None, got {truncate_mm!r}")
        if not prepared:
            mesh = clean_mesh(TriangleMesh(mesh.vertices, mesh.faces))
        check_closed(mesh, name, remedy)
        self.mesh = TriangleMesh(mesh.vertices, mesh.faces) if prepared else orient_outward(mesh)
        self.truncate_mm = None if truncate_mm is None else float(truncate_mm)
        self._locator = _vtk_locator(self.mesh)
        # The far test uses face centroids ± the largest face radius: split big faces so it stays tight.
        soup, _ = _split_large_faces(self.mesh.vertices[self.mesh.faces])
        centroids = soup.mean(axis=1)
        self._r_max = float(np.linalg.norm(soup - centroids[:, None, :], axis=2).max())
        self._centroid_tree = cKDTree(centroids)
        self._sign_grid = None
        self._pseudonormals()

    def _pseudonormals(self) -> None:
        """Face, edge and angle-weighted vertex pseudonormals (Bærentzen & Aanæs 2005)."""
        v, f = self.mesh.vertices, self.mesh.faces
        tri = v[f]
        self._face_n = _unit_rows(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]))
        vert_n = np.zeros_like(v)
        for corner in range(3):
            e1 = tri[:, (corner + 1) % 3] - tri[:, corner]
            e2 = tri[:, (corner + 2) % 3] - tri[:, corner]
            cos = np.einsum("ij,ij->i", _unit_rows(e1), _unit_rows(e2))
            angle = np.arccos(np.clip(cos, -1.0, 1.0))
            np.add.at(vert_n, f[:, corner], angle[:, None] * self._face_n)
        self._vert_n = vert_n
        table = edge_table(f)
        edge_n = np.zeros((len(table.edges), 3))
        for local in range(3):
            np.add.at(edge_n, table.face_edges[:, local], self._face_n)
        self._edge_n = edge_n
        self._face_edges = table.face_edges  # (F, 3): edges (v0,v1), (v1,v2), (v2,v0)

    def bounds(self) -> np.ndarray:
        """(2, 3) bounding box of the mesh in mm."""
        return self.mesh.bounds()

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Signed distance (mm, negative inside) at (N, 3) RAS mm points → (N,)."""
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise InputError(f"points: expected an (N, 3) array, got shape {pts.shape}")
        if self.truncate_mm is None:
            return self.exact(pts)
        t = self.truncate_mm
        out = np.empty(len(pts))
        far = self._far(pts, t)
        if np.any(far):
            out[far] = t * self._far_sign(pts[far])
        if not np.all(far):
            out[~far] = np.clip(self.exact(pts[~far]), -t, t)
        return out

    def exact(self, pts: np.ndarray) -> np.ndarray:
        """Untruncated signed distance (mm) at (N, 3) RAS mm points."""
        dist, closest, face = self._closest(pts)
        normal = self._feature_normals(closest, face)
        sign = np.sign(np.einsum("ij,ij->i", pts - closest, normal))
        undecided = (sign == 0) & (dist > 0)
        if np.any(undecided):
            inside = winding_number(self.mesh, pts[undecided]) > 0.5
            sign[undecided] = np.where(inside, -1.0, 1.0)
        return sign * dist

    def _closest(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact closest points: distance (N,), closest (N, 3) and face index (N,)."""
        import vtk

        n = len(pts)
        closest = np.empty((n, 3))
        face = np.empty(n, dtype=np.int64)
        point = [0.0, 0.0, 0.0]
        cell, sub, dist2 = vtk.reference(0), vtk.reference(0), vtk.reference(0.0)
        find = self._locator.FindClosestPoint
        for i, q in enumerate(pts.tolist()):
            find(q, point, cell, sub, dist2)
            closest[i] = point
            face[i] = cell.get()
        return np.linalg.norm(pts - closest, axis=1), closest, face

    def _far(self, pts: np.ndarray, radius: float) -> np.ndarray:
        """True where provably no surface point lies within ``radius`` mm (no centroid within radius + r_max)."""
        d, _ = self._centroid_tree.query(pts, k=1, distance_upper_bound=radius + self._r_max)
        return ~np.isfinite(d)

    def _far_sign(self, pts: np.ndarray) -> np.ndarray:
        """±1 for points farther than T from the surface, from the flood-filled coarse grid."""
        if self._sign_grid is None:
            self._sign_grid = _SignGrid(self, self.truncate_mm)
        return self._sign_grid.sign(pts)

    def _feature_normals(self, closest: np.ndarray, face: np.ndarray) -> np.ndarray:
        """Pseudonormal of the face, edge or vertex holding each closest point."""
        tri = self.mesh.vertices[self.mesh.faces[face]]
        bary = _barycentric(closest, tri[:, 0], tri[:, 1], tri[:, 2])
        zero = bary < _BARY_EPS
        n_zero = zero.sum(axis=1)
        out = self._face_n[face].copy()
        on_edge = n_zero == 1
        if np.any(on_edge):
            # Coordinate i vanishes on the edge opposite vertex i: local edge (i+1, i+2) = index (i+1) % 3.
            opposite = np.argmax(zero[on_edge], axis=1)
            edge_ids = self._face_edges[face[on_edge], (opposite + 1) % 3]
            out[on_edge] = self._edge_n[edge_ids]
        at_vertex = n_zero >= 2
        if np.any(at_vertex):
            corner = np.argmax(bary[at_vertex], axis=1)
            out[at_vertex] = self._vert_n[self.mesh.faces[face[at_vertex], corner]]
        return out


def _barycentric(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(N, 3) barycentric coordinates of points p in triangles (a, b, c); degenerate → NaN-free zeros."""
    v0, v1, v2 = b - a, c - a, p - a
    d00 = np.einsum("ij,ij->i", v0, v0)
    d01 = np.einsum("ij,ij->i", v0, v1)
    d11 = np.einsum("ij,ij->i", v1, v1)
    d20 = np.einsum("ij,ij->i", v2, v0)
    d21 = np.einsum("ij,ij->i", v2, v1)
    denom = d00 * d11 - d01 * d01
    safe = np.where(denom > 0, denom, 1.0)
    v = np.where(denom > 0, (d11 * d20 - d01 * d21) / safe, 0.0)
    w = np.where(denom > 0, (d00 * d21 - d01 * d20) / safe, 0.0)
    return np.stack([1.0 - v - w, v, w], axis=1)


def _vtk_locator(mesh: TriangleMesh):
    """A built vtkStaticCellLocator over the mesh triangles (cell id = face index)."""
    import vtk

    poly = polydata_from_mesh(mesh, point_data=False)
    locator = vtk.vtkStaticCellLocator()
    locator.SetDataSet(poly)
    locator.BuildLocator()
    locator._poly = poly  # keep the dataset alive as long as the locator
    return locator


def _split_large_faces(tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split big triangles 1→4 (midpoints) until none exceeds twice the median size.

    The proximity query's stopping rule uses the largest face radius, so a few
    long faces (capsule sides, fan caps) would make every query slow. The
    pieces lie in their parent's plane, so distances are unchanged; the sign
    is still taken on the parent face.

    Args:
        tri: (F, 3, 3) triangle corners in mm.

    Returns:
        ((F', 3, 3) triangle soup, (F',) parent face index).
    """
    parent = np.arange(len(tri))
    centroids = tri.mean(axis=1)
    radius = np.linalg.norm(tri - centroids[:, None, :], axis=2).max(axis=1)
    extent = float(np.ptp(tri.reshape(-1, 3), axis=0).max())
    limit = max(2.0 * float(np.median(radius)), 1e-3 * extent)
    for _ in range(12):
        big = radius > limit
        if not np.any(big):
            break
        t = tri[big]
        m01, m12, m20 = (t[:, 0] + t[:, 1]) / 2, (t[:, 1] + t[:, 2]) / 2, (t[:, 2] + t[:, 0]) / 2
        pieces = np.concatenate([np.stack(q, axis=1) for q in (
            (t[:, 0], m01, m20), (m01, t[:, 1], m12), (m20, m12, t[:, 2]), (m01, m12, m20))])
        tri = np.concatenate([tri[~big], pieces])
        parent = np.concatenate([parent[~big], np.tile(parent[big], 4)])
        centroids = tri.mean(axis=1)
        radius = np.linalg.norm(tri - centroids[:, None, :], axis=2).max(axis=1)
    return tri, parent


class _SignGrid:
    """Inside/outside of the points farther than T from a closed mesh.

    Nodes of a grid with spacing h = T/√3 are "far" when no surface point lies
    within T/2 of them. Adjacent far nodes are joined by segments that stay
    more than T/2 − h/2 > 0 from the surface, so each 6-connected far region
    is wholly inside or outside: regions touching the grid border (which is
    padded beyond the mesh) are outside, every other region is decided by the
    winding number at one of its nodes. A point farther than T from the
    surface has its nearest node within h√3/2 = T/2, hence that node is far
    (its distance to every centroid exceeds T/2 + r_max) and shares its side.
    """

    def __init__(self, sdf: MeshSDF, t: float) -> None:
        self.h = t / np.sqrt(3.0)
        lo, hi = sdf.bounds()
        self.origin = lo - 2.0 * self.h
        shape = np.ceil((hi + 2.0 * self.h - self.origin) / self.h).astype(int) + 1
        idx = np.indices(shape).reshape(3, -1).T
        nodes = self.origin + idx * self.h
        far = sdf._far(nodes, 0.5 * t).reshape(shape)
        labels, n = ndimage.label(far)
        inside = np.zeros(n + 1, dtype=bool)
        border = np.unique(np.concatenate([labels[[0, -1]].ravel(), labels[:, [0, -1]].ravel(),
                                           labels[:, :, [0, -1]].ravel()]))
        for region in range(1, n + 1):
            if region in border:
                continue
            probe = nodes[np.flatnonzero(labels.ravel() == region)[0]][None]
            inside[region] = winding_number(sdf.mesh, probe)[0] > 0.5
        self.shape = shape
        self.labels = labels
        self.inside = inside

    def sign(self, pts: np.ndarray) -> np.ndarray:
        """(N,) −1 inside, +1 outside, for points farther than T from the surface."""
        ijk = np.rint((pts - self.origin) / self.h).astype(np.int64)
        outside_box = np.any((ijk < 0) | (ijk >= self.shape), axis=1)
        ijk = np.clip(ijk, 0, self.shape - 1)
        region = self.labels[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
        inside = self.inside[region] & ~outside_box
        return np.where(inside, -1.0, 1.0)
