"""Clinical and consistency measures on nested surface meshes (RAS mm).

* Thickness maps: for every vertex of surface k, the exact distance to the
  next surface (k+1, the outer neighbour; the outermost surface measures to
  its inner neighbour), stored as point scalars ``thickness_mm``. Lumen:
  thrombus thickness; inner wall and outer wall: wall thickness.
* Volumes: enclosed volume of every surface (divergence theorem) and of the
  shells between consecutive surfaces (thrombus = inner − lumen, wall =
  outer − inner), valid because the surfaces are nested.
* Violations, measured on the meshes themselves: the share of an inner
  mesh's vertices lying outside its outer neighbour (signed distance > 0 to
  that closed mesh), and the violation volume |inside(inner) \\ inside(outer)|
  from both meshes voxelised on one fine grid.
"""

from __future__ import annotations

import numpy as np

from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.meshing.mesh_sdf import MeshSDF
from AnatomyINRLib.meshing.grid import make_grid
from AnatomyINRLib.meshing.labelmap import voxelize_mesh

THICKNESS = "thickness_mm"
# Distance below which an inner vertex counts as on (not outside) the outer surface:
# marching cubes on one grid can put both surfaces' vertices on the same edge point.
_ON_SURFACE_MM = 1e-6


def shell_names(names: list) -> list:
    """Names of the shells between consecutive surfaces (clinical names for the defaults)."""
    clinical = {("lumen", "inner"): "thrombus", ("inner", "outer"): "wall", ("lumen", "outer"): "thrombus_and_wall"}
    return [clinical.get((a, b), f"{a}_to_{b}") for a, b in zip(names[:-1], names[1:])]


def neighbour_distances(meshes: list, sdfs: list | None = None) -> list:
    """Signed distance (mm) from every vertex of surface k to its neighbour's closed mesh.

    The neighbour is k+1 (the next outer surface); for the outermost surface
    it is k−1. Negative = inside the neighbour.

    Args:
        meshes: K closed meshes, innermost first.
        sdfs: Optional K ``MeshSDF`` of the same meshes (reused if already built).

    Returns:
        K arrays (V_k,) in mm.
    """
    sdfs = sdfs or [MeshSDF(m, f"surface {k}") for k, m in enumerate(meshes)]
    return [sdfs[k + 1 if k + 1 < len(meshes) else k - 1].exact(m.vertices) for k, m in enumerate(meshes)]


def add_thickness_maps(meshes: list, signed: list) -> list:
    """Copies of the meshes with ``thickness_mm`` = |distance to the neighbouring surface| per vertex.

    Args:
        meshes: K meshes, innermost first.
        signed: Output of :func:`neighbour_distances`.

    Returns:
        K new TriangleMeshes with point_data[THICKNESS] (V,) float64 mm.
    """
    out = []
    for mesh, d in zip(meshes, signed):
        data = dict(mesh.point_data)
        data[THICKNESS] = np.abs(np.asarray(d, dtype=np.float64))
        out.append(TriangleMesh(mesh.vertices, mesh.faces, data))
    return out


def thickness_stats(meshes: list, names: list) -> dict:
    """Mean / median / p5 / p95 / min / max of every mesh's ``thickness_mm`` (mm)."""
    stats = {}
    for mesh, name in zip(meshes, names):
        t = np.asarray(mesh.point_data[THICKNESS], dtype=np.float64)
        stats[name] = {"mean": float(t.mean()), "median": float(np.median(t)), "p5": float(np.percentile(t, 5)),
                       "p95": float(np.percentile(t, 95)), "min": float(t.min()), "max": float(t.max())}
    return stats


def volumes(meshes: list, names: list) -> dict:
    """Enclosed volume of every surface and of every shell between neighbours (mm³ and mL)."""
    enclosed = [float(m.signed_volume()) for m in meshes]
    out = {f"{n}_mm3": v for n, v in zip(names, enclosed)}
    for shell, (a, b) in zip(shell_names(names), zip(enclosed[:-1], enclosed[1:])):
        out[f"{shell}_mm3"] = b - a
    out.update({k.replace("_mm3", "_ml"): v / 1000.0 for k, v in list(out.items())})
    return out


def mesh_violations(meshes: list, names: list, spacing_mm: float, signed: list | None = None) -> list:
    """Nesting violations measured on the meshes, for every consecutive pair.

    Args:
        meshes: K closed meshes, innermost first.
        names: Their names.
        spacing_mm: Voxel size of the violation-volume grid.
        signed: Optional output of :func:`neighbour_distances` (computed if None).

    Returns:
        One dict per pair: inner, outer, vertices_outside (count), vertex_share
        (fraction of inner vertices outside the outer mesh), max_outside_mm,
        volume_mm3 (inner solid outside the outer solid), grid_spacing_mm.
    """
    signed = signed if signed is not None else neighbour_distances(meshes)
    out = []
    for k in range(len(meshes) - 1):
        inner, outer = meshes[k], meshes[k + 1]
        outside = signed[k] > _ON_SURFACE_MM
        lo = np.minimum(inner.bounds()[0], outer.bounds()[0])
        hi = np.maximum(inner.bounds()[1], outer.bounds()[1])
        grid = make_grid(np.stack([lo, hi]), spacing_mm, spacing_mm)
        a = voxelize_mesh(inner, grid).array > 0
        b = voxelize_mesh(outer, grid).array > 0
        out.append({"inner": names[k], "outer": names[k + 1], "vertices_outside": int(outside.sum()),
                    "vertex_share": float(outside.mean()), "max_outside_mm": float(max(signed[k].max(), 0.0)),
                    "volume_mm3": float(np.count_nonzero(a & ~b) * spacing_mm ** 3), "grid_spacing_mm": spacing_mm})
    return out
