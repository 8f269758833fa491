"""Public API of nested walls: 2-3 point sets → nested meshes with thickness maps and measures.

    result = reconstruct_nested([lumen_pts, inner_pts, outer_pts], preset="default", seed=0)
    result.meshes            # lumen ⊂ inner ⊂ outer, RAS mm, point_data["thickness_mm"]
    result.report["volumes"], result.report["dmax"], result.report["violations"]

Containers in, containers and a JSON-ready report out; no files.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from AnatomyINRLib.core.config import check_int, check_positive, check_seed
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.nested.config import NestedFitConfig, nested_preset
from AnatomyINRLib.nested.diameter import DiameterResult
from AnatomyINRLib.nested.fit import NestedFit, fit_nested
from AnatomyINRLib.fitting.points import as_point_set
from AnatomyINRLib.meshing.config import MeshingConfig
from AnatomyINRLib.meshing.grid import check_planned_grid
from AnatomyINRLib.nested.order import innermost_first
from AnatomyINRLib.nested.pipeline import check_closed, extract_nested, measure, residuals, surface_bounds
from AnatomyINRLib.nn.field import NeuralField


@dataclass
class NestedResult:
    """Output of :func:`reconstruct_nested`.

    Attributes:
        meshes: K closed meshes (RAS mm, innermost first) with point_data["thickness_mm"].
        names: K surface names, innermost first.
        fit: The joint fit; ``fit.field`` maps (N, 3) RAS mm → (N, K) mm.
        diameter: Dmax of the outermost surface, or None if not measured.
        config: The configuration used.
        report: JSON-ready dict (volumes, thickness, Dmax, violations, timings, config...).
    """

    meshes: list[TriangleMesh]
    names: list[str]
    fit: NestedFit
    diameter: Optional[DiameterResult]
    config: NestedFitConfig
    report: dict

    @property
    def field(self) -> NeuralField:
        """The fitted K-output field (N, 3) RAS mm → (N, K) mm, innermost first."""
        return self.fit.field


def resolve_config(preset: str = "default", config: Optional[NestedFitConfig] = None,
                   min_thickness_mm: float = 0.0) -> NestedFitConfig:
    """An explicit config wins; otherwise the named preset's with ``min_thickness_mm``."""
    if config is not None:
        if not isinstance(config, NestedFitConfig):
            raise InputError(f"config: expected a NestedFitConfig, got {type(config).__name__}")
        config.validate()
        return config
    check_positive("min_thickness_mm", min_thickness_mm, allow_zero=True)
    return nested_preset(preset, min_thickness_mm)


def _innermost_first(point_sets: list, names) -> tuple[list, Optional[list], list]:
    """Point sets (and given names, which follow their point sets) innermost first, with a warning if
    they were not; default names stay positional (the innermost is the lumen)."""
    order, note = innermost_first(point_sets)
    if note is None:
        return point_sets, names, order
    warnings.warn(note + ("; the names follow their point sets" if names is not None else ""), stacklevel=3)
    names = None if names is None else [list(names)[i] for i in order]
    return [point_sets[i] for i in order], names, order


def reconstruct_nested(
    point_sets: Sequence,
    *,
    names: Optional[Sequence[str]] = None,
    preset: str = "default",
    config: Optional[NestedFitConfig] = None,
    min_thickness_mm: float = 0.0,
    spacing_mm: float = 0.5,
    iterations: Optional[int] = None,
    measure_dmax: bool = True,
    seed: int = 0,
    device: str = "auto",
    progress: "ProgressReporter | Callable | None" = None,
    should_cancel: Optional[Callable[[], bool]] = None,
) -> NestedResult:
    """Fit, mesh and measure 2 or 3 nested surfaces from one point set each.

    Nesting holds by construction (Alblas et al. 2022 §2.4, one network with K
    outputs; see ``nested.config`` for the construction).

    Args:
        point_sets: PointSets or (N, 3) arrays in RAS mm, innermost first. Given in another
            order (told apart by the volumes of their convex hulls) they are reordered with a
            warning; ``report["input_order"]`` lists the input indices innermost first and
            given ``names`` follow their point sets.
        names: Surface names (default lumen, inner, outer; lumen, outer for two).
        preset: "fast", "default", "accurate" or "paper" (ignored with ``config``).
        config: Full fit config; default ``nested_preset(preset, min_thickness_mm)``.
        min_thickness_mm: Minimum gap between consecutive surfaces (ignored with ``config``).
        spacing_mm: Mesh grid spacing (all surfaces on one grid).
        iterations: Iteration budget; None = the config's (0 or negative is rejected).
        measure_dmax: Measure the maximum diameter of the outer surface (a failed measurement,
            e.g. a shape without a centreline, is a warning in ``report["warnings"]``, not an error).
        seed: Seed of initialisation and sampling.
        device: "auto", "cpu", "cuda" or "mps".
        progress: ProgressReporter or callback ("fit", "extract", "measure").
        should_cancel: Polled at every progress event; True raises Cancelled.

    Returns:
        NestedResult.

    Raises:
        InputError: bad point sets, names, preset, config, spacing or iterations.
        FitError: the fit diverged or a surface is not closed.
        Cancelled: cancelled by the caller.
    """
    reporter = ProgressReporter.wrap(progress, should_cancel)
    seed = check_seed(seed)
    cfg = resolve_config(preset, config, min_thickness_mm)
    if iterations is not None:
        check_int("iterations", iterations)   # 0 must not silently mean "the full budget"
    check_positive("spacing_mm", spacing_mm)
    point_sets = [as_point_set(p, f"point_sets[{i}]") for i, p in enumerate(point_sets)]
    if not 2 <= len(point_sets) <= 3:
        raise InputError(f"points: expected 2 or 3 point sets (innermost first), got {len(point_sets)}")
    point_sets, names, order = _innermost_first(point_sets, names)
    # The surfaces' grid must fit in memory: know it before the fit, not after.
    check_planned_grid(surface_bounds(point_sets), spacing_mm, MeshingConfig().padding_mm, len(point_sets))
    t0 = time.perf_counter()
    fit = fit_nested(point_sets, cfg, names=names, seed=seed, device=device, iterations=iterations,
                     progress=reporter)
    t1 = time.perf_counter()
    extraction, bounds = extract_nested(fit.field, surface_bounds(point_sets), spacing_mm, reporter)
    quality = check_closed(extraction.meshes, fit.names, bounds)
    t2 = time.perf_counter()
    meshes, report, diameter = measure(fit, extraction.meshes, bounds, spacing_mm, measure_dmax, seed, reporter)
    report.update({
        "names": fit.names,
        "input_order": order,
        "n_points": [len(getattr(p, "points", p)) for p in point_sets],
        "min_thickness_mm": fit.min_thickness_mm,
        "nesting_by_construction": bool(cfg.nesting),
        "fit": {"iterations": fit.iterations, "seconds": fit.seconds, "final_loss": fit.final_loss,
                "converged": fit.converged, "residuals": residuals(fit.field, point_sets, fit.names)},
        "surfaces": {n: {k: q[k] for k in ("n_vertices", "n_faces", "watertight", "manifold", "n_components")}
                     for n, q in zip(fit.names, quality)},
        "spacing_mm": spacing_mm,
        "bounds_mm": bounds.tolist(),
        "seconds": {"fit": t1 - t0, "extract": t2 - t1, "measure": time.perf_counter() - t2,
                    "total": time.perf_counter() - t0},
        "config": cfg.to_dict(),
    })
    reporter.report("measure", 1.0, "done")
    return NestedResult(meshes, list(fit.names), fit, diameter, cfg, report)
