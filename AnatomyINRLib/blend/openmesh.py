"""Open vessel meshes: boundary loops, outward orientation, end planes.

An open vessel mesh (a tube cut at its inlet/outlets) has no inside, so it is
fitted as an INR from its vertices. Its face winding gives normals up to one
global sign; capping every boundary loop with a fan around the loop centroid
makes a closed surface whose signed volume fixes that sign. The loops also
give clipping planes that cut the fitted field flat at the vessel ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.meshing.postprocess import vertex_normals
from AnatomyINRLib.meshing.topology import edge_table


@dataclass
class ClipPlane:
    """A half-space removed from a solid (CSG intersection with its complement).

    Attributes:
        origin: (3,) a point of the plane, RAS mm.
        normal: (3,) unit vector pointing into the part that is cut away.
    """

    origin: np.ndarray
    normal: np.ndarray

    def __post_init__(self) -> None:
        self.origin = np.asarray(self.origin, dtype=np.float64).reshape(-1)
        n = np.asarray(self.normal, dtype=np.float64).reshape(-1)
        if self.origin.shape != (3,) or n.shape != (3,) or not np.all(np.isfinite(np.r_[self.origin, n])):
            raise InputError("clip plane: expected a finite origin (3 mm) and normal (3)")
        length = float(np.linalg.norm(n))
        if length < 1e-12:
            raise InputError("clip plane: normal must not be zero")
        self.normal = n / length

    def to_dict(self) -> dict:
        return {"origin_mm": self.origin.tolist(), "normal": self.normal.tolist()}


@dataclass
class BoundaryLoop:
    """One boundary loop of an open mesh.

    Attributes:
        vertices: (L,) vertex indices along the loop.
        centroid: (3,) mean of the loop points, RAS mm.
        normal: (3,) unit normal of the best-fit plane, pointing out of the vessel.
        radius: Mean distance of the loop points to the centroid (mm).
    """

    vertices: np.ndarray
    centroid: np.ndarray
    normal: np.ndarray
    radius: float

    extent: float = 0.0
    """Largest distance of a loop point beyond the best-fit plane (mm, ≥ 0; saddle-shaped
    junction loops have several mm)."""

    def plane(self, beyond_loop: bool = False) -> ClipPlane:
        """The clipping plane cutting away what lies beyond the end.

        Args:
            beyond_loop: False: through the loop centroid (a flat end at the loop).
                True: shifted along the normal to the loop's farthest point, so no
                part of the loop (nor of the vessel spanned by it) is cut; used at
                junctions, where a cut through a saddle-shaped loop would open a
                gap between the neighbouring inputs.
        """
        shift = self.extent if beyond_loop else 0.0
        return ClipPlane(self.centroid + shift * self.normal, self.normal)


def boundary_loops(mesh: TriangleMesh) -> list:
    """Boundary loops of a mesh with their best-fit planes (normals pointing out of the tube).

    The plane normal is the least-variance direction of the loop points; its
    sign is chosen so that the faces along the loop lie behind it (their
    vertex opposite the boundary edge is on the mesh side).

    Returns:
        List of :class:`BoundaryLoop` (empty for a closed mesh).
    """
    table = edge_table(mesh.faces)
    is_boundary = table.counts == 1
    boundary = table.edges[is_boundary]
    if len(boundary) == 0:
        return []
    n = mesh.n_vertices
    graph = sparse.coo_matrix((np.ones(len(boundary)), (boundary[:, 0], boundary[:, 1])), shape=(n, n))
    _, labels = csgraph.connected_components(graph, directed=False)
    # Vertex opposite every boundary half-edge: local edge e of a face joins corners e and e+1.
    face_idx, local = np.nonzero(is_boundary[table.face_edges])
    opposite = mesh.faces[face_idx, (local + 2) % 3]
    edge_start = mesh.faces[face_idx, local]
    loops = []
    for lab in np.unique(labels[boundary[:, 0]]):
        verts = np.unique(boundary[labels[boundary[:, 0]] == lab])
        pts = mesh.vertices[verts]
        centroid = pts.mean(axis=0)
        normal = np.linalg.svd(pts - centroid)[2][-1]
        mine = labels[edge_start] == lab
        behind = (mesh.vertices[opposite[mine]] - mesh.vertices[edge_start[mine]]).mean(axis=0)
        if float(behind @ normal) > 0:
            normal = -normal
        radius = float(np.linalg.norm(pts - centroid, axis=1).mean())
        extent = float(max(0.0, np.max((pts - centroid) @ normal)))
        loops.append(BoundaryLoop(verts, centroid, normal, radius, extent))
    return loops


def cap_loops(mesh: TriangleMesh, loops: list) -> TriangleMesh:
    """Close every boundary loop with a fan around its centroid (winding follows the mesh)."""
    table = edge_table(mesh.faces)
    open_half = np.flatnonzero(table.counts[table.face_edges.reshape(-1)] == 1)
    directed = table.directed[open_half]                  # boundary half-edges as the faces traverse them
    vertices = [mesh.vertices]
    faces = [mesh.faces]
    next_index = mesh.n_vertices
    for loop in loops:
        mine = np.isin(directed[:, 0], loop.vertices)
        # Reverse the boundary half-edge so the cap face winds consistently with its neighbour.
        e = directed[mine]
        faces.append(np.stack([e[:, 1], e[:, 0], np.full(len(e), next_index)], axis=1))
        vertices.append(loop.centroid[None])
        next_index += 1
    return TriangleMesh(np.concatenate(vertices), np.concatenate(faces))


def outward_normals(mesh: TriangleMesh) -> np.ndarray:
    """(V, 3) vertex normals of an open (tube-like) mesh, oriented outward.

    The winding is taken as given (assumed consistent); its global sign is
    fixed by the signed volume of the mesh with every loop capped.

    Raises:
        InputError: the capped volume is ~0 (the mesh encloses nothing, e.g. a flat patch).
    """
    loops = boundary_loops(mesh)
    capped = cap_loops(mesh, loops) if loops else mesh
    volume = capped.signed_volume()
    scale = float(np.ptp(mesh.vertices, axis=0).max()) ** 3
    if abs(volume) < 1e-6 * scale:
        raise InputError("open mesh: it encloses no volume even with its ends capped (a flat patch?)")
    normals = vertex_normals(mesh)
    return normals if volume > 0 else -normals


def shared_loops(loops: list, mesh: TriangleMesh, other_fields: list, tol_mm: float) -> np.ndarray:
    """(L,) bool: loops lying on or inside another input (a junction, not a free end).

    A loop is shared when the median over its points of min_i f_i (the other
    inputs' SDFs, mm) is at most ``tol_mm``: the vessel continues into another
    input there, so its end must not be cut flat.

    Args:
        loops: Loops of ``mesh``.
        mesh: The open mesh.
        other_fields: Callables (N, 3) mm → (N,) mm of the other inputs.
        tol_mm: Tolerance for "on the other surface" (fit error, mm).
    """
    out = []
    for loop in loops:
        pts = mesh.vertices[loop.vertices]
        if not other_fields:
            out.append(False)
            continue
        nearest = np.min(np.stack([np.asarray(f(pts), dtype=np.float64) for f in other_fields]), axis=0)
        out.append(float(np.median(nearest)) <= tol_mm)
    return np.asarray(out, dtype=bool)
