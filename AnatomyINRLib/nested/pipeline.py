"""Nested walls from point sets: the Logic-ready entry point.

``reconstruct_nested(point_sets)`` fits one nested network, extracts every
surface on one shared grid, adds thickness maps, and measures volumes, Dmax
and nesting violations (on the field and on the meshes). Containers in,
containers and a JSON-ready report out; no files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from AnatomyINRLib.core.errors import FitError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.seeding import numpy_rng
from AnatomyINRLib.meshing.mesh_sdf import MeshSDF
from AnatomyINRLib.meshing.config import MeshingConfig
from AnatomyINRLib.meshing.extract import extract_surfaces_multi
from AnatomyINRLib.meshing.topology import edge_table, mesh_quality
from AnatomyINRLib.metrics.nesting import nesting_violation_rate
from AnatomyINRLib.nested.analysis import (
    add_thickness_maps,
    mesh_violations,
    neighbour_distances,
    thickness_stats,
    volumes,
)
from AnatomyINRLib.nested.config import NestedFitConfig, nested_preset
from AnatomyINRLib.nested.diameter import DiameterResult, max_diameter
from AnatomyINRLib.nested.fit import NestedFit, fit_nested


@dataclass
class NestedResult:
    """Output of :func:`reconstruct_nested`.

    Attributes:
        meshes: K closed meshes (RAS mm, innermost first) with point_data["thickness_mm"].
        names: K surface names.
        fit: The NestedFit (its ``field`` maps (N, 3) mm → (N, K) mm).
        diameter: Dmax of the outermost surface, or None if not measured.
        report: JSON-ready dict (volumes, thickness, Dmax, violations, timings...).
    """

    meshes: list
    names: list
    fit: NestedFit
    diameter: Optional[DiameterResult]
    report: dict = field(default_factory=dict)


def surface_bounds(point_sets: Sequence, margin_fraction: float = 0.08, min_margin_mm: float = 4.0) -> np.ndarray:
    """(2, 3) box around every point set, grown so fitted surfaces slightly beyond the points stay inside."""
    pts = np.concatenate([getattr(p, "points", p) for p in point_sets])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    margin = max(min_margin_mm, margin_fraction * float(np.max(hi - lo)))
    return np.stack([lo - margin, hi + margin])


def field_violation_rate(field_k, bounds: np.ndarray, n: int = 50_000, seed: int = 0) -> dict:
    """Share of random points (in the box and up to 10× farther out) where the field order breaks."""
    rng = numpy_rng(seed)
    centre, half = bounds.mean(axis=0), (bounds[1] - bounds[0]) / 2
    near = centre + rng.uniform(-1, 1, (n, 3)) * half
    far = centre + rng.uniform(-10, 10, (n // 5, 3)) * half
    values = np.asarray(field_k(np.concatenate([near, far])), dtype=np.float64)
    return {"n_points": int(len(values)), "rate": nesting_violation_rate(values)}


def extract_nested(field_k, bounds: np.ndarray, spacing_mm: float, progress=None, max_grow: int = 3):
    """All K surfaces on one grid; the box grows where a surface leaves it (up to ``max_grow`` times).

    A fitted surface may bulge a few mm beyond its points (e.g. round vessel
    ends); a surface cut by the box would not be closed, so every side that
    boundary edges touch is pushed out by 25 % of the box size and the
    extraction repeated.

    Returns:
        (MultiExtractionResult, final bounds).
    """
    bounds = np.asarray(bounds, dtype=np.float64).copy()
    config = MeshingConfig(spacing_mm=spacing_mm)
    for attempt in range(max_grow + 1):
        result = extract_surfaces_multi(field_k, bounds, config, progress=progress)
        grow = np.zeros((2, 3), dtype=bool)
        for mesh in result.meshes:
            table = edge_table(mesh.faces)
            open_pts = mesh.vertices[np.unique(table.edges[table.counts == 1])]
            if len(open_pts):
                grow[0] |= open_pts.min(axis=0) < bounds[0] + spacing_mm
                grow[1] |= open_pts.max(axis=0) > bounds[1] - spacing_mm
        if not grow.any() or attempt == max_grow:
            return result, bounds
        step = 0.25 * (bounds[1] - bounds[0])
        bounds = bounds + np.where(grow, 1.0, 0.0) * np.stack([-step, step])
    return result, bounds


def _residuals(field_k, point_sets, names) -> dict:
    out = {}
    for k, (p, name) in enumerate(zip(point_sets, names)):
        r = np.abs(np.asarray(field_k(getattr(p, "points", p)))[:, k])
        out[name] = {"mean_mm": float(r.mean()), "max_mm": float(r.max())}
    return out


def reconstruct_nested(
    point_sets: Sequence,
    names: Optional[Sequence[str]] = None,
    *,
    config: Optional[NestedFitConfig] = None,
    preset: str = "default",
    min_thickness_mm: float = 0.0,
    spacing_mm: float = 0.5,
    seed: int = 0,
    device: str = "auto",
    iterations: Optional[int] = None,
    measure_dmax: bool = True,
    progress=None,
) -> NestedResult:
    """Fit, mesh and measure 2 or 3 nested surfaces from one point set each.

    Args:
        point_sets: PointSets or (N, 3) arrays in RAS mm, innermost first.
        names: Surface names (default lumen, inner, outer; lumen, outer for two).
        config: Full fit config; default ``nested_preset(preset, min_thickness_mm)``.
        preset: "fast", "default", "accurate" or "paper" (ignored with ``config``).
        min_thickness_mm: Minimum gap between consecutive surfaces (ignored with ``config``).
        spacing_mm: Mesh grid spacing (all surfaces on one grid).
        seed, device, iterations: As in :func:`nested.fit.fit_nested`.
        measure_dmax: Measure the maximum diameter of the outer surface.
        progress: ProgressReporter or callback ("fit", "extract", "measure").

    Returns:
        NestedResult.
    """
    reporter = ProgressReporter.wrap(progress)
    config = config or nested_preset(preset, min_thickness_mm)
    t0 = time.perf_counter()
    fit = fit_nested(point_sets, config, names=names, seed=seed, device=device, iterations=iterations,
                     progress=reporter)
    t1 = time.perf_counter()
    extraction, bounds = extract_nested(fit.field, surface_bounds(point_sets), spacing_mm, reporter)
    quality = _check_closed(extraction.meshes, fit.names, bounds)
    t2 = time.perf_counter()
    meshes, report, diameter = _measure(fit, extraction.meshes, bounds, spacing_mm, measure_dmax, seed, reporter)
    report.update({
        "names": fit.names,
        "n_points": [len(getattr(p, "points", p)) for p in point_sets],
        "min_thickness_mm": fit.min_thickness_mm,
        "nesting_by_construction": bool(config.nesting),
        "fit": {"iterations": fit.iterations, "seconds": fit.seconds, "final_loss": fit.final_loss,
                "converged": fit.converged, "residuals": _residuals(fit.field, point_sets, fit.names)},
        "surfaces": {n: {k: q[k] for k in ("n_vertices", "n_faces", "watertight", "manifold", "n_components")}
                     for n, q in zip(fit.names, quality)},
        "spacing_mm": spacing_mm,
        "bounds_mm": bounds.tolist(),
        "seconds": {"fit": t1 - t0, "extract": t2 - t1, "measure": time.perf_counter() - t2,
                    "total": time.perf_counter() - t0},
        "config": config.to_dict(),
    })
    reporter.report("measure", 1.0, "done")
    return NestedResult(meshes, fit.names, fit, diameter, report)


def _check_closed(meshes: list, names: list, bounds: np.ndarray) -> list:
    """Mesh quality of every surface; FitError if one is still cut open by the box."""
    quality = [mesh_quality(m, check_manifold3d=False) for m in meshes]
    open_surfaces = [n for n, q in zip(names, quality) if not q["watertight"]]
    if open_surfaces:
        raise FitError(f"surfaces {open_surfaces} are not closed even in the enlarged box {bounds.round(1).tolist()} mm; "
                       f"the fit grew a surface far from its points: try more iterations or another seed")
    return quality


def _measure(fit: NestedFit, meshes: list, bounds: np.ndarray, spacing_mm: float, measure_dmax: bool,
             seed: int, reporter) -> tuple[list, dict, Optional[DiameterResult]]:
    """Thickness maps, volumes, violations (meshes and field) and Dmax."""
    names = fit.names
    reporter.report("measure", 0.0, "thickness and violations")
    sdfs = [MeshSDF(m, f"{n} mesh", prepared=True) for m, n in zip(meshes, names)]
    signed = neighbour_distances(meshes, sdfs)
    thick = add_thickness_maps(meshes, signed)
    violations = mesh_violations(meshes, names, spacing_mm, signed)
    reporter.report("measure", 0.5, "maximum diameter")
    diameter = max_diameter(lambda p: fit.field(p)[:, -1], bounds, spacing_mm=spacing_mm) if measure_dmax else None
    return thick, {
        "volumes": volumes(thick, names),
        "thickness": thickness_stats(thick, names),
        "dmax": None if diameter is None else diameter.to_dict(),
        "violations": {"meshes": violations, "field": field_violation_rate(fit.field, bounds, seed=seed)},
    }, diameter
