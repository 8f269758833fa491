"""Blend vessels into one surface: the Logic-ready entry point.

``blend_surfaces(inputs, config)`` takes meshes / point sets (containers, no
files), builds one SDF per input, unites them with the smooth minimum,
extracts one surface on a grid, keeps the largest component and reports
whether the promise holds (watertight, manifold, one component, no
self-intersections) together with the distance from every input to the result
away from junctions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from AnatomyINRLib.core.errors import FitError, InputError
from AnatomyINRLib.core.progress import Progress, ProgressReporter
from AnatomyINRLib.blend.checks import surface_report
from AnatomyINRLib.blend.config import BlendConfig
from AnatomyINRLib.blend.mesh_sdf import MeshSDF
from AnatomyINRLib.blend.openmesh import ClipPlane, shared_loops
from AnatomyINRLib.blend.smin import plane_distance
from AnatomyINRLib.blend.sources import BlendInput, make_source
from AnatomyINRLib.blend.union import BlendedField
from AnatomyINRLib.meshing.config import MeshingConfig
from AnatomyINRLib.meshing.extract import extract_surface
from AnatomyINRLib.meshing.postprocess import largest_component
from AnatomyINRLib.meshing.topology import edge_table, face_components
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.metrics.proximity import MeshProximity
from AnatomyINRLib.metrics.surface import sample_surface


@dataclass
class BlendResult:
    """Output of :func:`blend_surfaces`.

    Attributes:
        mesh: The blended surface (RAS mm, outward faces), largest component.
        field: The blended SDF (callable, RAS mm).
        report: JSON-ready dict: quality flags, per-input details, timings.
    """

    mesh: object
    field: BlendedField
    report: dict = field(default_factory=dict)


def _as_inputs(inputs: Sequence) -> list:
    items = []
    for i, item in enumerate(inputs):
        items.append(item if isinstance(item, BlendInput) else BlendInput(item, name=f"input{i}"))
    if not items:
        raise InputError("inputs: expected at least one mesh or point set to blend")
    return items


def _sub_progress(reporter: ProgressReporter, stage: str, lo: float, hi: float, label: str):
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


def _end_planes(items, sources, config: BlendConfig) -> list:
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


def _extract(blended: BlendedField, bounds: np.ndarray, spacing: float, config: BlendConfig, progress,
             max_grow: int = 2):
    """Mesh the blended field; grow the box where the surface leaves it (a fitted INR may bulge
    past its points), then keep the largest component."""
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
    return largest_component(result.mesh), n_before, result


def _mean_edge(mesh) -> float:
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


@dataclass
class PreparedInputs:
    """Inputs turned into fields (the slow part), ready to be blended with any settings.

    Attributes:
        items: The BlendInputs.
        sources: One SourceField per input.
        seconds: Time spent building the fields.
    """

    items: list
    sources: list
    seconds: float


def prepare_inputs(inputs: Sequence, config: Optional[BlendConfig] = None, *, seed: int = 0,
                   device: str = "auto", progress=None) -> PreparedInputs:
    """Build every input's SDF (exact for closed meshes, a fitted INR otherwise).

    Keep the result to re-blend with another radius or other planes without refitting
    (:func:`blend_prepared`).

    Args:
        inputs: BlendInput, TriangleMesh (closed or open) or PointSet / (N, 3) arrays, RAS mm.
        config: Fit settings (default BlendConfig()).
        seed: Seed of every INR fit.
        device: Torch device for the fits.
        progress: ProgressReporter or callback (stage "fit").
    """
    config = config or BlendConfig()
    config.validate()
    reporter = ProgressReporter.wrap(progress)
    items = _as_inputs(inputs)
    start = time.perf_counter()
    sources = []
    for i, item in enumerate(items):
        radius = config.radius_mm if item.radius_mm is None else float(item.radius_mm)
        sub = _sub_progress(reporter, "fit", i / len(items), (i + 1) / len(items), item.name)
        sources.append(make_source(item, config, radius, seed, device, sub))
    return PreparedInputs(items, sources, time.perf_counter() - start)


def _widen_bands(prepared: PreparedInputs, radii: list, config: BlendConfig) -> None:
    """Closed-mesh SDFs truncated for a smaller radius get the band this blend needs."""
    for item, src, r in zip(prepared.items, prepared.sources, radii):
        band = config.truncation(r)
        if isinstance(src.field, MeshSDF) and src.field.truncate_mm is not None and src.field.truncate_mm < band:
            src.field = MeshSDF(src.field.mesh, item.name, truncate_mm=band, prepared=True)
            src.info["truncate_mm"] = band


def blend_prepared(prepared: PreparedInputs, config: Optional[BlendConfig] = None, *,
                   global_planes: Sequence = (), progress=None) -> BlendResult:
    """Unite prepared fields, extract one surface and check it (see :func:`blend_surfaces`)."""
    config = config or BlendConfig()
    config.validate()
    reporter = ProgressReporter.wrap(progress)
    items, sources = prepared.items, prepared.sources
    start = time.perf_counter()
    radii = [config.radius_mm if it.radius_mm is None else float(it.radius_mm) for it in items]
    _widen_bands(prepared, radii, config)
    planes = [p if isinstance(p, ClipPlane) else ClipPlane(**p) for p in global_planes]
    blended = BlendedField([s.field for s in sources], radii, _end_planes(items, sources, config), planes)
    bounds = np.stack([np.min([it.bounds()[0] for it in items], axis=0), np.max([it.bounds()[1] for it in items], axis=0)])
    mesh, n_before, result = _extract(blended, bounds, config.spacing_mm, config, reporter)
    if config.remesh_edge_mm > 0:
        spacing = config.spacing_mm * config.remesh_edge_mm / _mean_edge(mesh)
        mesh, n_before, result = _extract(blended, bounds, spacing, config, reporter)
    t_extract = time.perf_counter() - start
    if mesh.n_faces == 0:
        raise FitError("blend produced an empty surface")
    reporter.report("check", 0.0, "checking the surface")
    quality = surface_report(mesh, n_before)
    report = {
        "surface": quality,
        "inputs": [{"name": it.name, "kind": it.kind, "radius_mm": r, "method": s.method,
                    "seconds": s.seconds, **s.info} for it, s, r in zip(items, sources, radii)],
        "fidelity_away_from_junctions": input_fidelity(items, blended, mesh),
        "global_planes": [p.to_dict() for p in planes],
        "spacing_mm": float(result.grid.spacing[0]) if result.grid is not None else config.spacing_mm,
        "mean_edge_mm": _mean_edge(mesh),
        "extraction": result.summary(),
        "seconds": {"fields": prepared.seconds, "extract": t_extract,
                    "total": prepared.seconds + time.perf_counter() - start},
        "config": config.to_dict(),
    }
    reporter.report("check", 1.0, "surface ok" if quality["ok"] else "surface check FAILED")
    return BlendResult(mesh, blended, report)


def blend_surfaces(
    inputs: Sequence,
    config: Optional[BlendConfig] = None,
    *,
    global_planes: Sequence = (),
    seed: int = 0,
    device: str = "auto",
    progress=None,
) -> BlendResult:
    """Blend meshes and point sets into one closed surface.

    Args:
        inputs: BlendInput, TriangleMesh (closed or open) or PointSet / (N, 3) arrays, RAS mm.
        config: Blend settings (default BlendConfig()).
        global_planes: ClipPlanes (or dicts origin/normal) cut from the union (flat CFD ends).
        seed: Seed of every INR fit.
        device: Torch device for the fits.
        progress: ProgressReporter or callback; stages "fit", "extract", "check".

    Returns:
        BlendResult; ``report["surface"]["ok"]`` tells whether the surface is
        watertight, manifold, one component and self-intersection free.

    Raises:
        InputError: bad inputs or config, or no surface inside the box.
        FitError: an INR fit diverged.
    """
    prepared = prepare_inputs(inputs, config, seed=seed, device=device, progress=progress)
    return blend_prepared(prepared, config, global_planes=global_planes, progress=progress)
