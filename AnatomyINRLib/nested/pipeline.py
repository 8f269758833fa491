"""Steps of the nested reconstruction behind ``nested.api.reconstruct_nested``.

Extraction of all surfaces on one shared grid (growing the box where a surface
leaves it), closedness check, thickness maps, volumes, Dmax and nesting
violations (on the field and on the meshes).
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence

import numpy as np

from AnatomyINRLib.core.errors import FitError
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
from AnatomyINRLib.nested.diameter import DiameterResult, max_diameter
from AnatomyINRLib.nested.fit import NestedFit


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


def residuals(field_k, point_sets, names) -> dict:
    out = {}
    for k, (p, name) in enumerate(zip(point_sets, names)):
        r = np.abs(np.asarray(field_k(getattr(p, "points", p)))[:, k])
        out[name] = {"mean_mm": float(r.mean()), "max_mm": float(r.max())}
    return out


def check_closed(meshes: list, names: list, bounds: np.ndarray) -> list:
    """Mesh quality of every surface; FitError if one is still cut open by the box."""
    quality = [mesh_quality(m, check_manifold3d=False) for m in meshes]
    open_surfaces = [n for n, q in zip(names, quality) if not q["watertight"]]
    if open_surfaces:
        raise FitError(f"surfaces {open_surfaces} are not closed even in the enlarged box {bounds.round(1).tolist()} mm; "
                       f"the fit grew a surface far from its points: try more iterations or another seed")
    return quality


def measure(fit: NestedFit, meshes: list, bounds: np.ndarray, spacing_mm: float, measure_dmax: bool,
             seed: int, reporter) -> tuple[list, dict, Optional[DiameterResult]]:
    """Thickness maps, volumes, violations (meshes and field) and Dmax."""
    names = fit.names
    reporter.report("measure", 0.0, "thickness and violations")
    sdfs = [MeshSDF(m, f"{n} mesh", prepared=True) for m, n in zip(meshes, names)]
    signed = neighbour_distances(meshes, sdfs)
    thick = add_thickness_maps(meshes, signed)
    violations = mesh_violations(meshes, names, spacing_mm, signed)
    reporter.report("measure", 0.5, "maximum diameter")
    diameter, notes = _dmax(fit, bounds, spacing_mm) if measure_dmax else (None, [])
    return thick, {
        "warnings": notes,
        "volumes": volumes(thick, names),
        "thickness": thickness_stats(thick, names),
        "dmax": None if diameter is None else diameter.to_dict(),
        "violations": {"meshes": violations, "field": field_violation_rate(fit.field, bounds, seed=seed)},
    }, diameter


def _dmax(fit: NestedFit, bounds: np.ndarray, spacing_mm: float) -> tuple[Optional[DiameterResult], list]:
    """Dmax of the outermost surface, or (None, [warning]) when it cannot be measured.

    A measurement is an extra: a shape without a centreline (a sphere, a blob)
    must not throw away the fitted surfaces, so the failure becomes a warning.
    """
    try:
        return max_diameter(lambda p: fit.field(p)[:, -1], bounds, spacing_mm=spacing_mm), []
    except FitError as exc:
        note = f"{exc}; the surfaces are kept and Dmax is not reported"
        warnings.warn(note, stacklevel=2)
        return None, [note]
