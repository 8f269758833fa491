"""Public API of "surface from points": clicked points → SDF → mesh / labelmap.

    fit = fit_points(points, preset="default", seed=0)
    mesh = extract_mesh(fit.field, spacing_mm=0.5)
    mask = labelmap(fit.field, reference_image)

Entry functions: :func:`fit_points`, :func:`extract_mesh`, :func:`labelmap`
(:func:`sdf_image` is the labelmap's float sibling, used by the CLI's ``--output-sdf``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from AnatomyINRLib import __version__
from AnatomyINRLib.core.config import check_int, check_positive, check_seed
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.types import ImageGrid, PointSet, TriangleMesh
from AnatomyINRLib.meshing.config import MeshingConfig
from AnatomyINRLib.fitting.outside import outside_supervision
from AnatomyINRLib.fitting.points import as_point_set, prepare_points
from AnatomyINRLib.nn.field import NeuralField, Normalization
from AnatomyINRLib.surface.config import PRESETS, SurfaceFitConfig, preset_config
from AnatomyINRLib.surface.fit import SDFFit, fit_sdf
from AnatomyINRLib.surface.slice_loss import slice_supervision

# Extraction box = point bounding box grown by this share of its largest side (and
# at least _MIN_PAD_MM): IGR surfaces bulge a little past the outermost points.
_PAD_FRACTION = 0.15
_MIN_PAD_MM = 3.0


@dataclass
class SurfaceFit:
    """Result of :func:`fit_points`.

    Attributes:
        field: Fitted SDF, callable (N, 3) RAS mm → (N,) mm, negative inside.
        points: The caller's points (RAS mm), in the caller's order.
        residuals_mm: (N,) |f(xᵢ)| in mm for every input point.
        outliers: (N,) True where the residual exceeds the config threshold.
        config: The configuration used.
        report: JSON-ready summary (iterations, seconds, device, loss, residual statistics...).
    """

    field: NeuralField
    points: PointSet
    residuals_mm: np.ndarray
    outliers: np.ndarray
    config: SurfaceFitConfig
    report: dict


def resolve_config(preset: str = "default", config: Optional[SurfaceFitConfig] = None) -> SurfaceFitConfig:
    """An explicit config wins; otherwise the named preset's."""
    if config is not None:
        if not isinstance(config, SurfaceFitConfig):
            raise InputError(f"config: expected a SurfaceFitConfig, got {type(config).__name__}")
        config.validate()
        return config
    if preset not in PRESETS:
        raise InputError(f"preset: expected one of {sorted(PRESETS)}, got {preset!r}")
    return preset_config(preset)


def fit_points(
    points,
    *,
    preset: str = "default",
    config: Optional[SurfaceFitConfig] = None,
    init_field: Optional[NeuralField] = None,
    iterations: Optional[int] = None,
    seed: int = 0,
    device: str = "auto",
    progress: "ProgressReporter | Callable | None" = None,
    should_cancel: Optional[Callable[[], bool]] = None,
) -> SurfaceFit:
    """Fit a smooth closed surface through sparse, unoriented surface points.

    Implements IGR (Gropp et al. 2020) as used by Alblas et al. 2022 (eq. 3).

    Args:
        points: (N, 3) RAS mm or a PointSet (normals, if present, add IGR's normal term).
        preset: "fast", "default", "accurate" or "paper"; ignored if ``config`` is given.
        config: Full configuration.
        init_field: Previous fit to warm-start from (live re-fitting when points move).
        seed: Seed of initialisation and sampling (same seed, same result on one device).
        device: "auto", "cpu", "cuda" or "mps".
        iterations: Override the iteration budget (None = the config's; 0 is rejected).
        progress: ProgressReporter or callback receiving Progress events.
        should_cancel: Polled at every progress event; True raises Cancelled.

    Returns:
        SurfaceFit.

    Raises:
        InputError: bad points (fewer than 10, NaN, flat), preset, config or iterations.
        FitError: the optimisation diverged.
        Cancelled: cancelled by the caller.
    """
    reporter = ProgressReporter.wrap(progress, should_cancel)
    seed = check_seed(seed)
    cfg = resolve_config(preset, config)
    if iterations is not None:
        check_int("iterations", iterations)
    if init_field is not None and not isinstance(init_field, NeuralField):
        raise InputError(f"init_field: expected a NeuralField, got {type(init_field).__name__}")
    original = as_point_set(points)
    prepared = prepare_points(original, cfg.max_points, seed)
    reporter.report("prepare", 1.0, f"{len(prepared.points)} points ready")
    # Points clicked on parallel slices (detected from the coordinates) add in-plane
    # normal and on-slice sign terms; given normals take precedence.
    slices = None if prepared.points.normals is not None else slice_supervision(prepared.points.points, cfg.slices, seed)
    # Unstructured points: empty space certified from the cloud supervises the sign of f
    # (a thin network otherwise keeps the initial blob between its branches).
    outside = None if slices is not None else outside_supervision(prepared.points.points, cfg.outside, seed)
    extras = [term for term in (slices, outside) if term is not None]
    fit = fit_sdf(prepared.points, cfg, init_field=init_field, seed=seed, device=device,
                  iterations=iterations, progress=reporter, extra_loss=extras)
    residuals = np.abs(fit.field(original.points))
    outliers = residuals > cfg.outlier_threshold_mm
    report = _report(fit, prepared, cfg, residuals, outliers, seed)
    report["slices"] = slices.summary() if slices is not None else {"detected": False}
    report["outside"] = outside.summary() if outside is not None else _outside_off(cfg, slices)
    return SurfaceFit(fit.field, original, residuals, outliers, cfg, report)


def _outside_off(cfg: SurfaceFitConfig, slices) -> dict[str, Any]:
    """Report entry of a fit without the certified-outside term, saying why."""
    if slices is not None:
        return {"enabled": False, "reason": "slice clicks are supervised by their slices"}
    if not cfg.outside.enabled or cfg.outside.weight <= 0:
        return {"enabled": False, "reason": "off in the config"}
    return {"enabled": False, "reason": "no free space reached the grid border"}


def _report(fit: SDFFit, prepared, cfg: SurfaceFitConfig, residuals, outliers, seed: int) -> dict[str, Any]:
    return {
        "library_version": __version__,
        "preset": cfg.preset,
        "seed": int(seed),
        "device": str(fit.field.device),
        "iterations": int(fit.iterations),
        "converged": bool(fit.converged),
        "warm_started": bool(fit.warm_started),
        "warm_start_note": fit.warm_start_note,
        "fit_seconds": round(fit.seconds, 3),
        "final_loss": float(fit.final_loss),
        "n_points_input": int(prepared.n_input),
        "n_points_used": int(len(prepared.points)),
        "n_duplicates_removed": int(prepared.n_duplicates),
        "n_points_subsampled_away": int(prepared.n_subsampled_away),
        "residual_mm": {
            "mean": float(residuals.mean()),
            "median": float(np.median(residuals)),
            "p95": float(np.percentile(residuals, 95)),
            "max": float(residuals.max()),
        },
        "outlier_threshold_mm": float(cfg.outlier_threshold_mm),
        "n_outliers": int(outliers.sum()),
        "normalization": fit.field.normalization.to_dict(),
        "config": cfg.to_dict(),
        "loss_history": {"iterations": fit.history.iterations, "loss": fit.history.loss},
    }


def extraction_bounds(field: "NeuralField | Normalization", points: Optional[np.ndarray] = None) -> np.ndarray:
    """(2, 3) RAS mm box to mesh in: the points' box padded, clipped to the field's frame.

    ``field`` may be the field's Normalization (to plan the box before fitting);
    ``points`` may be just the two corners of the points' box (what a saved field stores).
    """
    norm = getattr(field, "normalization", field)
    frame = np.stack([norm.center - norm.scale, norm.center + norm.scale])
    if points is None:
        return frame
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = max(_MIN_PAD_MM, _PAD_FRACTION * float(np.max(hi - lo)))
    return np.stack([np.maximum(lo - pad, frame[0]), np.minimum(hi + pad, frame[1])])


class BoxClippedField:
    """max(f, box SDF): the zero set of f closed off by an axis-aligned box.

    A sparse-point fit may grow a sheet that leaves the meshing box; intersecting
    with the box caps it flat, so the mesh is always watertight. The max of two
    1-Lipschitz fields is 1-Lipschitz, so narrow-band meshing stays exact.

    Args:
        field: SDF callable (N, 3) RAS mm → (N,) mm.
        bounds: (2, 3) box in RAS mm.
    """

    def __init__(self, field: Callable, bounds) -> None:
        self.field = field
        b = np.asarray(bounds, dtype=np.float64)
        self.center, self.half = (b[0] + b[1]) / 2.0, (b[1] - b[0]) / 2.0

    def __call__(self, points: np.ndarray) -> np.ndarray:
        q = np.abs(np.asarray(points, dtype=np.float64) - self.center) - self.half
        box = np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)
        return np.maximum(self.field(points), box)


def extract_mesh(
    field: Callable,
    spacing_mm: float = 0.5,
    bounds=None,
    *,
    points: Optional[np.ndarray] = None,
    largest_component: bool = True,
    config: "MeshingConfig | None" = None,
    progress: "ProgressReporter | Callable | None" = None,
    should_cancel: Optional[Callable[[], bool]] = None,
    pieces: Optional[list] = None,
) -> TriangleMesh:
    """Mesh the zero level set of a fitted field (narrow-band marching cubes).

    The field is intersected with the box (:class:`BoxClippedField`) so the
    output is always closed. If the surface reaches the box, the box grows to
    the field's whole frame once and extraction is repeated.

    Args:
        field: NeuralField (or any SDF callable when ``bounds`` is given).
        spacing_mm: Grid spacing in mm.
        bounds: (2, 3) RAS mm box; default: from ``points`` or the field frame.
        points: Points whose box (padded) bounds the extraction.
        largest_component: Keep only the largest connected piece.
        config: Full meshing configuration; when given, ``spacing_mm`` and
            ``largest_component`` are taken from it.
        progress: Reporter or callback ("extract" events).
        should_cancel: Cancel check.
        pieces: A list to which the areas (mm², largest first) of every connected piece of the
            surface are appended, counted before ``largest_component`` keeps one.

    Returns:
        Outward-oriented, watertight TriangleMesh in RAS mm.
    """
    from AnatomyINRLib.meshing import extract_surface

    if config is not None:
        if not isinstance(config, MeshingConfig):
            raise InputError(f"config: expected a MeshingConfig, got {type(config).__name__}")
        config.validate()
        spacing_mm, cfg = config.spacing_mm, config
    else:
        check_positive("spacing_mm", spacing_mm)
        cfg = MeshingConfig(spacing_mm=float(spacing_mm), largest_component=largest_component)
    reporter = ProgressReporter.wrap(progress, should_cancel)
    if bounds is None:
        if not isinstance(field, NeuralField):
            raise InputError("bounds: required when field is not a NeuralField")
        bounds = extraction_bounds(field, points)
    bounds = np.asarray(bounds, dtype=np.float64)
    t0 = time.perf_counter()
    result = extract_surface(BoxClippedField(field, bounds), bounds, cfg, reporter)
    if _touches_box(result.mesh, bounds, spacing_mm) and isinstance(field, NeuralField) and points is not None:
        frame = extraction_bounds(field, None)
        result = extract_surface(BoxClippedField(field, frame), frame, cfg, reporter)
    reporter.report("extract", 1.0, f"{result.mesh.n_faces} faces in {time.perf_counter() - t0:.1f} s",
                    evaluations=int(result.n_evaluations))
    if pieces is not None:
        pieces.extend(float(a) for a in result.piece_areas)
    return result.mesh


def _touches_box(mesh: TriangleMesh, bounds: np.ndarray, spacing_mm: float) -> bool:
    """True if the mesh reaches the clipping box (the surface was capped there)."""
    if mesh.n_vertices == 0:
        return False
    tol = 1.01 * spacing_mm
    return bool(np.any(mesh.vertices <= bounds[0] + tol) or np.any(mesh.vertices >= bounds[1] - tol))


def check_extraction_memory(points: np.ndarray, spacing_mm: float, config: Optional[SurfaceFitConfig] = None,
                            argument: str = "spacing_mm") -> None:
    """Before fitting: InputError if meshing the fitted surface at ``spacing_mm`` cannot fit in memory.

    Plans the box :func:`extract_mesh` will use (the points' box padded, in the
    frame the fit will choose) and applies the extraction's own memory rule
    (``MeshingConfig.max_memory_mb``, or less if the machine has less available),
    so a hopeless spacing fails in milliseconds instead of after the fit.
    """
    from AnatomyINRLib.meshing.grid import check_planned_grid

    cfg = config if config is not None else SurfaceFitConfig()
    pts = np.asarray(points, dtype=np.float64)
    bounds = extraction_bounds(Normalization.fit(pts, cfg.extent), pts)
    check_planned_grid(bounds, float(spacing_mm), MeshingConfig().padding_mm, 1, argument)


def keep_largest_region(mask: np.ndarray) -> np.ndarray:
    """Largest 26-connected foreground region of a boolean (I, J, K) mask."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def labelmap(
    field: Callable,
    reference: ImageGrid,
    *,
    label: int = 1,
    largest_component: bool = True,
    progress: "ProgressReporter | Callable | None" = None,
    should_cancel: Optional[Callable[[], bool]] = None,
) -> ImageGrid:
    """Inside mask of the field on the reference image geometry (uint8, exactly its grid).

    With ``largest_component`` (default, as for meshes) only the largest
    connected region is kept, so the labelmap and the mesh describe one object.
    """
    from AnatomyINRLib.meshing import labelmap_from_field

    reporter = ProgressReporter.wrap(progress, should_cancel)
    image = labelmap_from_field(field, reference, label=label, progress=reporter)
    if largest_component:
        keep = keep_largest_region(image.array > 0)
        image = image.with_array(np.where(keep, image.array, 0).astype(np.uint8))
    if not np.any(image.array):
        import itertools
        import warnings

        corners = reference.index_to_world(np.array(list(itertools.product(*[(-0.5, n - 0.5) for n in reference.shape]))))
        warnings.warn(f"labelmap: no voxel of the reference (RAS {corners.min(axis=0).round(1).tolist()} to "
                      f"{corners.max(axis=0).round(1).tolist()} mm) is inside the surface; the labelmap is empty",
                      stacklevel=2)
    return image


def sdf_image(field: Callable, reference: ImageGrid, *, progress=None, should_cancel=None) -> ImageGrid:
    """Signed distance (mm, float32) sampled at the reference image's voxel centres."""
    from AnatomyINRLib.meshing import sdf_volume

    reporter = ProgressReporter.wrap(progress, should_cancel)
    return sdf_volume(field, reference, progress=reporter)
