"""Small typed containers passed between algorithms.

All coordinates are world RAS millimetres. Containers validate shapes and
finiteness on construction so algorithms can trust them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from AnatomyINRLib.core.errors import InputError


def _as_points(name: str, value, allow_empty: bool = False) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"{name}: expected an (N, 3) array of coordinates, got shape {arr.shape}")
    if not allow_empty and arr.shape[0] == 0:
        raise InputError(f"{name}: expected at least one point, got none")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.all(np.isfinite(arr), axis=1)))
        raise InputError(f"{name}: {bad} coordinate row(s) contain NaN or infinity")
    return np.ascontiguousarray(arr)


@dataclass
class PointSet:
    """Points in world RAS mm, optionally with unit normals and per-point labels.

    Attributes:
        points: (N, 3) float64 RAS mm.
        normals: (N, 3) float64 outward unit normals, or None (clicked points have none).
        labels: Optional (N,) names or ids per point (e.g. Markups labels).
    """

    points: np.ndarray
    normals: Optional[np.ndarray] = None
    labels: Optional[list] = None

    def __post_init__(self) -> None:
        self.points = _as_points("points", self.points)
        if self.normals is not None:
            self.normals = _as_points("normals", self.normals)
            if self.normals.shape != self.points.shape:
                raise InputError(
                    f"normals: expected shape {self.points.shape} like points, got {self.normals.shape}"
                )
        if self.labels is not None and len(self.labels) != len(self.points):
            raise InputError(f"labels: expected {len(self.points)} labels, got {len(self.labels)}")

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def subset(self, index: np.ndarray) -> "PointSet":
        """The points selected by a boolean mask or integer index."""
        normals = None if self.normals is None else self.normals[index]
        labels = None
        if self.labels is not None:
            labels = list(np.asarray(self.labels, dtype=object)[index])
        return PointSet(self.points[index], normals, labels)


@dataclass
class TriangleMesh:
    """A triangle surface in world RAS mm.

    Attributes:
        vertices: (V, 3) float64 RAS mm.
        faces: (F, 3) int64 vertex indices, counter-clockwise seen from outside
            (so face normals point outward for closed surfaces).
        point_data: Per-vertex arrays, each (V,) or (V, C), e.g. thickness in mm.
    """

    vertices: np.ndarray
    faces: np.ndarray
    point_data: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vertices = _as_points("vertices", self.vertices, allow_empty=True)
        faces = np.asarray(self.faces)
        if faces.size == 0:
            faces = faces.reshape(0, 3)
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise InputError(f"faces: expected an (F, 3) integer array, got shape {faces.shape}")
        if faces.size and not np.issubdtype(faces.dtype, np.integer):
            if not np.all(faces == np.round(faces)):
                raise InputError("faces: expected integer vertex indices")
        faces = faces.astype(np.int64)
        if faces.size and (faces.min() < 0 or faces.max() >= len(self.vertices)):
            raise InputError(
                f"faces: indices must lie in [0, {len(self.vertices) - 1}], "
                f"got [{faces.min()}, {faces.max()}]"
            )
        self.faces = np.ascontiguousarray(faces)
        for key, value in list(self.point_data.items()):
            arr = np.asarray(value)
            if arr.shape[0] != len(self.vertices):
                raise InputError(
                    f"point_data[{key!r}]: expected {len(self.vertices)} rows, got {arr.shape[0]}"
                )
            self.point_data[key] = arr

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])

    def face_normals(self) -> np.ndarray:
        """(F, 3) unit face normals (zero for degenerate faces)."""
        tri = self.vertices[self.faces]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        length = np.linalg.norm(n, axis=1, keepdims=True)
        return np.divide(n, length, out=np.zeros_like(n), where=length > 0)

    def area(self) -> float:
        """Surface area in mm²."""
        tri = self.vertices[self.faces]
        return float(0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum())

    def signed_volume(self) -> float:
        """Enclosed volume in mm³ by the divergence theorem; negative if faces point inward."""
        tri = self.vertices[self.faces]
        return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)

    def bounds(self) -> np.ndarray:
        """(2, 3) array: min corner and max corner in mm."""
        if self.n_vertices == 0:
            raise InputError("mesh: empty mesh has no bounds")
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])


@dataclass
class ImageGrid:
    """A 3-D image on a regular grid with an arbitrary (oblique) ijk→RAS transform.

    Attributes:
        array: (I, J, K) voxel values indexed [i, j, k] (not Slicer's KJI order).
        ijk_to_ras: (4, 4) affine mapping voxel index (i, j, k, 1) to RAS mm.
    """

    array: np.ndarray
    ijk_to_ras: np.ndarray

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim != 3:
            raise InputError(f"image: expected a 3-D array, got shape {arr.shape}")
        mat = np.asarray(self.ijk_to_ras, dtype=np.float64)
        if mat.shape != (4, 4) or not np.all(np.isfinite(mat)):
            raise InputError(f"ijk_to_ras: expected a finite 4x4 matrix, got shape {mat.shape}")
        if abs(np.linalg.det(mat[:3, :3])) < 1e-12:
            raise InputError("ijk_to_ras: matrix is singular (zero spacing?)")
        self.array = arr
        self.ijk_to_ras = mat

    @property
    def shape(self) -> tuple:
        return tuple(int(s) for s in self.array.shape)

    @property
    def spacing(self) -> np.ndarray:
        """(3,) voxel size in mm along i, j, k."""
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)

    @property
    def origin(self) -> np.ndarray:
        """(3,) RAS mm of voxel (0, 0, 0)'s centre."""
        return self.ijk_to_ras[:3, 3].copy()

    @property
    def direction(self) -> np.ndarray:
        """(3, 3) unit column directions of the i, j, k axes in RAS."""
        return self.ijk_to_ras[:3, :3] / self.spacing

    @staticmethod
    def make_affine(origin, spacing, direction=None) -> np.ndarray:
        """Build a 4×4 ijk→RAS from origin (mm), spacing (mm) and direction columns."""
        direction = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64)
        mat = np.eye(4)
        mat[:3, :3] = direction * np.asarray(spacing, dtype=np.float64)[None, :]
        mat[:3, 3] = np.asarray(origin, dtype=np.float64)
        return mat

    def index_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """(N, 3) continuous indices → (N, 3) RAS mm."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.ijk_to_ras[:3, :3].T + self.ijk_to_ras[:3, 3]

    def world_to_index(self, ras: np.ndarray) -> np.ndarray:
        """(N, 3) RAS mm → (N, 3) continuous indices."""
        inv = np.linalg.inv(self.ijk_to_ras)
        ras = np.asarray(ras, dtype=np.float64)
        return ras @ inv[:3, :3].T + inv[:3, 3]

    def nearest_values(self, ras: np.ndarray, fill=0) -> np.ndarray:
        """(N,) value of the voxel nearest each of (N, 3) RAS mm points; ``fill`` outside the grid."""
        ijk = np.rint(self.world_to_index(np.atleast_2d(ras))).astype(np.int64)
        inside = np.all((ijk >= 0) & (ijk < np.asarray(self.shape)), axis=1)
        out = np.full(len(ijk), fill, dtype=self.array.dtype)
        out[inside] = self.array[tuple(ijk[inside].T)]
        return out

    def voxel_centers(self) -> np.ndarray:
        """(I*J*K, 3) RAS mm of every voxel centre, in C order of ``array``."""
        idx = np.indices(self.shape, dtype=np.float64).reshape(3, -1).T
        return self.index_to_world(idx)

    def with_array(self, array: np.ndarray) -> "ImageGrid":
        """Same geometry, different voxel values."""
        return ImageGrid(array, self.ijk_to_ras.copy())


# ----------------------------------------------------------------------------- grid comparison
_SPACING_TOL = 1e-4  # relative
_ORIGIN_TOL = 1e-3  # mm
_DIRECTION_TOL = 1e-5


def _fmt(v) -> str:
    return "(" + ", ".join(f"{float(x):.6g}" for x in np.ravel(v)) + ")"


def geometry_difference(a: ImageGrid, b: ImageGrid) -> Optional[str]:
    """What differs between two grids ("size (..) vs (..)", "spacing", "origin", "direction"), or None."""
    if a.shape != b.shape:
        return f"size {a.shape} vs {b.shape}"
    if not np.allclose(a.spacing, b.spacing, rtol=_SPACING_TOL, atol=0.0):
        return f"spacing {_fmt(a.spacing)} vs {_fmt(b.spacing)} mm"
    if not np.allclose(a.origin, b.origin, atol=_ORIGIN_TOL):
        return f"origin {_fmt(a.origin)} vs {_fmt(b.origin)} mm (RAS)"
    if not np.allclose(a.direction, b.direction, atol=_DIRECTION_TOL):
        return f"direction {_fmt(a.direction)} vs {_fmt(b.direction)}"
    return None


def check_same_geometry(images: dict) -> None:
    """All given images on the first one's grid.

    Raises:
        InputError: names both images and what differs (size, spacing, origin or direction).
    """
    items = [(k, v) for k, v in images.items() if v is not None]
    for name, img in items:
        if not isinstance(img, ImageGrid):
            raise InputError(f"{name}: expected an ImageGrid, got {type(img).__name__}")
    first_name, first = items[0]
    for name, img in items[1:]:
        diff = geometry_difference(img, first)
        if diff:
            raise InputError(f"{name} and {first_name} are on different grids: {name} vs {first_name} {diff}; "
                             "resample them onto one geometry first")


@dataclass
class CenterlineGraph:
    """A rooted tree of centreline nodes in RAS mm (vessel or airway centrelines).

    Node k ≠ root is joined to ``parent[k]`` by a straight tube of radius
    ``radius[k]``: a node's radius is that of the segment that ends at it
    (the root's is the inlet radius), so Murray's law at a bifurcation node b
    with children c reads radius[b]^γ = Σ radius[c]^γ.

    Attributes:
        points: (M, 3) float64 RAS mm.
        parent: (M,) int64 parent index, −1 for the single root (node 0).
        radius: (M,) float64 mm, > 0.
    """

    points: np.ndarray
    parent: np.ndarray
    radius: np.ndarray

    def __post_init__(self) -> None:
        self.points = _as_points("points", self.points)
        m = len(self.points)
        parent = np.asarray(self.parent)
        radius = np.asarray(self.radius, dtype=np.float64)
        if parent.shape != (m,) or radius.shape != (m,):
            raise InputError(f"parent, radius: expected ({m},) arrays, got {parent.shape} and {radius.shape}")
        if parent.size and not np.all(parent == np.round(parent)):
            raise InputError("parent: expected integer node indices")
        parent = parent.astype(np.int64)
        if parent[0] != -1 or np.any(parent[1:] < 0) or np.any(parent[1:] >= np.arange(1, m)):
            raise InputError("parent: expected node 0 as the only root (−1) and every parent listed before its child")
        if not np.all(np.isfinite(radius)) or np.any(radius <= 0):
            raise InputError("radius: expected positive finite radii in mm")
        self.parent, self.radius = parent, radius

    def children(self) -> list:
        """Per node, the list of its child indices."""
        out: list = [[] for _ in range(len(self.parent))]
        for k, p in enumerate(self.parent[1:], start=1):
            out[p].append(k)
        return out

    def bifurcations(self) -> np.ndarray:
        """Indices of nodes with two or more children."""
        return np.array([k for k, c in enumerate(self.children()) if len(c) >= 2], dtype=np.int64)
