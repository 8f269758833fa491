"""Steps of blending behind ``blend.api``: inputs, automatic end planes, extraction, fidelity.

The extraction grows its box where the surface leaves it and keeps the largest
component; :func:`input_fidelity` measures the distance from every input to the
result away from junctions (the report's honesty check).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.progress import Progress, ProgressReporter
from AnatomyINRLib.blend.config import BlendConfig
from AnatomyINRLib.meshing.mesh_sdf import MeshSDF
from AnatomyINRLib.blend.openmesh import shared_loops
from AnatomyINRLib.blend.smin import plane_distance
from AnatomyINRLib.blend.sources import BlendInput
from AnatomyINRLib.blend.union import BlendedField
from AnatomyINRLib.meshing.config import MeshingConfig
from AnatomyINRLib.meshing.extract import extract_surface
from AnatomyINRLib.meshing.postprocess import component_areas
from AnatomyINRLib.meshing.topology import edge_table, face_components
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.metrics.proximity import MeshProximity
from AnatomyINRLib.metrics.surface import sample_surface


def as_inputs(inputs: Sequence) -> list:
    """BlendInputs from BlendInputs, meshes or point sets (named input0, input1... by position)."""
    items = []
    for i, item in enumerate(inputs):
        items.append(item if isinstance(item, BlendInput) else BlendInput(item, name=f"input{i}"))
    if not items:
        raise InputError("inputs: expected at least one mesh or point set to blend")
    return items


def sub_progress(reporter: ProgressReporter, stage: str, lo: float, hi: float, label: str):
    """Callback mapping a sub-task's ``stage`` events into [lo, hi] of ``stage``.

    Events of the sub-task's other stages (e.g. the fit's "prepare") only poll
    cancellation, so the fraction of ``stage`` never jumps back.
    """
    def emit(event: Progress) -> None:
        if event.stage != stage:
            reporter.check_cancel()
            return
        reporter.report(stage, lo + (hi - lo) * event.fraction, f"{label}: {event.message}", **event.metrics)
    return ProgressReporter(emit)


def end_planes(items, sources, config: BlendConfig) -> list:
    """Per input: user planes plus automatic planes at open ends (free and, optionally, shared)."""
    planes = [list(item.clip_planes) for item in items]
    for i, src in enumerate(sources):
        if not src.loops:
            continue
        others = [s.field for j, s in enumerate(sources) if j != i]
        shared = shared_loops(src.loops, src.mesh, others, config.shared_end_tol_mm)
        src.info["loops"] = []
        for loop, is_shared in zip(src.loops, shared):
            cut = config.clip_shared_ends if is_shared else config.clip_free_ends
            plane = loop.plane(beyond_loop=bool(is_shared))
            if cut:
                planes[i].append(plane)
            src.info["loops"].append({"shared": bool(is_shared), "clipped": bool(cut),
                                      "radius_mm": loop.radius, **plane.to_dict()})
    return planes


def extract(blended: BlendedField, bounds: np.ndarray, spacing: float, config: BlendConfig, progress,
             max_grow: int = 2):
    """Mesh the blended field; grow the box where the surface leaves it (a fitted INR may bulge
    past its points). Every component is returned (the caller decides, see :func:`separate_inputs`)."""
    cfg = MeshingConfig(spacing_mm=spacing, largest_component=False, padding_mm=config.padding_mm)
    bounds = np.asarray(bounds, dtype=np.float64).copy()
    for attempt in range(max_grow + 1):
        result = extract_surface(blended, bounds, cfg, progress=progress)
        table = edge_table(result.mesh.faces)
        open_pts = result.mesh.vertices[np.unique(table.edges[table.counts == 1])]
        lo, hi = bounds[0] - config.padding_mm + spacing, bounds[1] + config.padding_mm - spacing
        grow = np.stack([open_pts.min(axis=0) < lo, open_pts.max(axis=0) > hi]) if len(open_pts) else None
        if grow is None or not grow.any() or attempt == max_grow:
            break
        step = 0.25 * (bounds[1] - bounds[0])
        bounds += np.where(grow, 1.0, 0.0) * np.stack([-step, step])
    n_before, _ = face_components(result.mesh.faces, result.mesh.n_vertices)
    return result.mesh, n_before, result


def input_pieces(items, mesh: TriangleMesh) -> list:
    """Names of the inputs on each separate piece of the extracted union, the largest piece first.

    Each input belongs to the piece nearest to the majority of its points (mesh
    inputs: vertices; point sets: points); the pieces are the face-connected
    components of ``mesh``, ordered by area as ``largest_component`` does.
    Pieces that hold no input (specks) are not listed.
    """
    from scipy.spatial import cKDTree

    labels, areas = component_areas(mesh)
    n = len(areas)
    if n <= 1:
        return [[it.name for it in items]]
    rank = np.argsort(-areas)
    vertex_piece = np.empty(mesh.n_vertices, dtype=np.int64)
    vertex_piece[mesh.faces.ravel()] = np.repeat(labels, 3)
    used = np.unique(mesh.faces)
    tree = cKDTree(mesh.vertices[used])
    groups: dict = {}
    for item in items:
        piece = int(np.bincount(vertex_piece[used[tree.query(item.points())[1]]], minlength=n).argmax())
        groups.setdefault(piece, []).append(item.name)
    return [groups[int(p)] for p in rank if int(p) in groups]


def bounding_boxes_apart(items, margin_mm: float) -> list:
    """Names of the inputs whose box (grown by ``margin_mm``) meets no other input's box."""
    boxes = [it.bounds() for it in items]
    apart = []
    for i, (lo, hi) in enumerate(boxes):
        others = [b for j, b in enumerate(boxes) if j != i]
        if others and not any(np.all(lo - margin_mm <= b[1]) and np.all(b[0] <= hi + margin_mm) for b in others):
            apart.append(items[i].name)
    return apart


def mean_edge(mesh) -> float:
    e = edge_table(mesh.faces).edges
    return float(np.linalg.norm(mesh.vertices[e[:, 0]] - mesh.vertices[e[:, 1]], axis=1).mean())


def input_fidelity(items, blended: BlendedField, mesh, junction_factor: float = 3.0, n_samples: int = 5000) -> list:
    """Distance (mm) from every input's points to the output, away from junctions and cut ends.

    Mesh inputs are represented by ``n_samples`` area-uniform surface samples,
    point sets by their points.

    A point is used when every other input's clipped SDF there exceeds
    ``junction_factor`` × the largest blend radius (so smin = min nearby) and
    no clipping plane of its own input removed it.
    """
    proximity = MeshProximity(mesh)
    k = max(blended.radii[1:] or [0.0])
    out = []
    for i, item in enumerate(items):
        if isinstance(item.data, TriangleMesh):
            pts = sample_surface(item.data, n_samples, seed=0)[0]   # vertices can be sparse
        else:
            pts = item.points()
        values = blended.input_values(pts)
        far = np.ones(len(pts), dtype=bool)
        for j, v in enumerate(values):
            if j != i:
                far &= v > junction_factor * max(k, 1e-9)
        for plane in blended.input_planes[i] + blended.global_planes:
            far &= plane_distance(pts, plane.origin, plane.normal) < 0
        entry = {"name": item.name, "kind": item.kind, "n_points_used": int(far.sum())}
        if far.any():
            d = proximity.query(pts[far])[0]
            entry.update(mean_mm=float(d.mean()), p95_mm=float(np.percentile(d, 95)), max_mm=float(d.max()))
        out.append(entry)
    return out


def widen_bands(prepared, radii: list, config: BlendConfig) -> None:
    """Closed-mesh SDFs truncated for a smaller radius get the band this blend needs."""
    for item, src, r in zip(prepared.items, prepared.sources, radii):
        band = config.truncation(r)
        if isinstance(src.field, MeshSDF) and src.field.truncate_mm is not None and src.field.truncate_mm < band:
            src.field = MeshSDF(src.field.mesh, item.name, truncate_mm=band, prepared=True)
            src.info["truncate_mm"] = band


