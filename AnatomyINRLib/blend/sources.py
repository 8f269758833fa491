"""Blend inputs and their signed distance fields in the common RAS mm frame.

* closed mesh → exact signed distance (``meshing.mesh_sdf.MeshSDF``, truncated
  to a band wider than the blend radius);
* open mesh (a vessel with open ends) → an INR fitted to its vertices, with
  outward normals from the capped winding (``blend.openmesh``);
* point set → an INR fitted to the points (``surface.api.fit_points``).

Each INR is fitted in its own normalised frame (as in Alblas et al. 2022 §3.3)
and ``NeuralField`` maps it back to mm, so every field speaks mm in RAS.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import PointSet, TriangleMesh
from AnatomyINRLib.blend.config import BlendConfig
from AnatomyINRLib.meshing.mesh_sdf import MeshSDF
from AnatomyINRLib.blend.openmesh import BoundaryLoop, ClipPlane, boundary_loops, outward_normals
from AnatomyINRLib.meshing.postprocess import clean_mesh
from AnatomyINRLib.meshing.topology import edge_table
from AnatomyINRLib.surface.api import fit_points

KINDS = ("auto", "closed_mesh", "open_mesh", "points")


@dataclass
class BlendInput:
    """One thing to blend.

    Attributes:
        data: TriangleMesh (closed or open) or PointSet / (N, 3) array, RAS mm.
        name: Label used in reports and errors.
        radius_mm: Fillet radius where this input joins the inputs listed before it (None = default).
        clip_planes: ClipPlanes (or dicts origin/normal) cut from this input before the union.
        kind: "auto" (closed/open decided from the edges), "closed_mesh", "open_mesh" or "points".
    """

    data: "TriangleMesh | PointSet | np.ndarray"
    name: str = "input"
    radius_mm: Optional[float] = None
    clip_planes: list[ClipPlane] = field(default_factory=list)
    kind: str = "auto"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"{self.name}: kind expected one of {list(KINDS)}, got {self.kind!r}")
        if isinstance(self.data, TriangleMesh):
            if self.data.n_faces == 0:
                raise InputError(f"{self.name}: mesh has no triangles")
            self.data = _without_zero_area(self.data, self.name, self.kind)
            if self.kind == "auto":
                counts = edge_table(self.data.faces).counts
                self.kind = "closed_mesh" if np.all(counts == 2) else "open_mesh"
            elif self.kind == "points":
                self.data = PointSet(self.data.vertices)
        else:
            if self.kind not in ("auto", "points"):
                raise InputError(f"{self.name}: kind {self.kind!r} needs a TriangleMesh, got points")
            self.data = self.data if isinstance(self.data, PointSet) else PointSet(np.asarray(self.data))
            self.kind = "points"
        if self.radius_mm is not None and not (np.isfinite(self.radius_mm) and self.radius_mm >= 0):
            raise InputError(f"{self.name}: radius_mm expected a finite number >= 0, got {self.radius_mm!r}")
        self.clip_planes = [p if isinstance(p, ClipPlane) else ClipPlane(**p) for p in self.clip_planes]

    def points(self) -> np.ndarray:
        """(N, 3) RAS mm points of the input (mesh vertices or the point set)."""
        return self.data.vertices if isinstance(self.data, TriangleMesh) else self.data.points

    def bounds(self) -> np.ndarray:
        """(2, 3) bounding box in mm."""
        pts = self.points()
        return np.stack([pts.min(axis=0), pts.max(axis=0)])


def _without_zero_area(mesh: TriangleMesh, name: str, kind: str) -> TriangleMesh:
    """The mesh without zero-area triangles (warning), or InputError if every triangle has zero area.

    A closed mesh keeps them: its exact SDF ignores them, and dropping them
    would open it (turning it into a slower, less exact INR input).
    """
    tri = mesh.vertices[mesh.faces]
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    extent = float(np.ptp(mesh.vertices, axis=0).max())
    flat = area2 <= 1e-12 * max(extent, 1e-12) ** 2   # relative: the mesh's own scale
    if flat.all():
        raise InputError(f"{name}: every triangle ({mesh.n_faces}) has zero area; there is no surface to blend")
    if not flat.any() or kind == "closed_mesh" or (kind == "auto" and np.all(edge_table(mesh.faces).counts == 2)):
        return mesh
    warnings.warn(f"{name}: dropped {int(flat.sum())} zero-area triangle(s) of {mesh.n_faces}", stacklevel=4)
    used, inverse = np.unique(mesh.faces[~flat], return_inverse=True)
    data = {k: np.asarray(v)[used] for k, v in mesh.point_data.items()}
    return TriangleMesh(mesh.vertices[used], inverse.reshape(-1, 3), data)


@dataclass
class SourceField:
    """An input turned into a field.

    Attributes:
        field: Callable (N, 3) RAS mm → (N,) mm, negative inside.
        method: "exact_mesh_sdf" or "inr".
        seconds: Time to build (fit) it.
        loops: Boundary loops (open meshes only), indexing ``mesh``.
        mesh: The cleaned open mesh the loops refer to (open meshes only).
        info: Fit or construction details for the report.
    """

    field: Callable
    method: str
    seconds: float
    loops: list[BoundaryLoop] = field(default_factory=list)
    mesh: Optional[TriangleMesh] = None
    info: dict = field(default_factory=dict)


def make_source(item: BlendInput, config: BlendConfig, radius: float, seed: int, device: str,
                progress=None) -> SourceField:
    """Turn one input into a field in RAS mm (exact SDF or fitted INR)."""
    start = time.perf_counter()
    if item.kind == "closed_mesh":
        band = config.truncation(radius)
        sdf = MeshSDF(item.data, item.name, truncate_mm=band, remedy="open meshes are fitted as INRs instead")
        return SourceField(sdf, "exact_mesh_sdf", time.perf_counter() - start,
                           info={"truncate_mm": band, "n_faces": sdf.mesh.n_faces})
    loops, mesh = [], None
    if item.kind == "open_mesh":
        mesh = clean_mesh(TriangleMesh(item.data.vertices, item.data.faces))
        loops = boundary_loops(mesh)
        normals = outward_normals(mesh) if config.use_mesh_normals else None
        points = PointSet(mesh.vertices, normals)
    else:
        points = item.data
    fit = fit_points(points, config=config.fit_config(), seed=seed, device=device, progress=progress)
    report = fit.report
    info = {"iterations": report["iterations"], "final_loss": report["final_loss"],
            "n_points": report["n_points_used"], "normals": points.normals is not None,
            "fit_seconds": report["fit_seconds"]}
    return SourceField(fit.field, "inr", time.perf_counter() - start, loops, mesh, info)


def split_by_label(mesh: TriangleMesh, array: str) -> list:
    """Split a mesh into one mesh per integer label of a point array (e.g. vmtk ``GroupIds``).

    A face goes to the label of its first vertex; faces whose vertices carry
    different labels keep that rule (vmtk branch splits have none).

    Returns:
        List of (label, TriangleMesh) pairs, labels ascending, unused vertices dropped.

    Raises:
        InputError: the array is missing or not one value per vertex.
    """
    if array not in mesh.point_data:
        raise InputError(f"--split-by: point array {array!r} not found; available: {sorted(mesh.point_data)}")
    labels = np.asarray(mesh.point_data[array])
    if labels.ndim != 1:
        raise InputError(f"--split-by: point array {array!r} must have one value per vertex, got shape {labels.shape}")
    face_label = labels[mesh.faces[:, 0]]
    out = []
    for lab in np.unique(face_label):
        faces = mesh.faces[face_label == lab]
        used, inverse = np.unique(faces, return_inverse=True)
        out.append((lab.item(), TriangleMesh(mesh.vertices[used], inverse.reshape(-1, 3))))
    return out
