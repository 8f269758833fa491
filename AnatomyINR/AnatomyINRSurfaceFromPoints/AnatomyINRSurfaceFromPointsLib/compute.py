"""The computation behind "Surface from points", with no Slicer and no Qt.

Points (N, 3) RAS mm in → triangle mesh (RAS mm), per-point residuals, area,
volume and optionally a labelmap on a reference grid out. Two ways to run it,
sharing the same options and result type:

- :func:`fitSurface`: in this process, through ``AnatomyINRLib.surface.api``
  (tests, scripts);
- the background worker: :func:`writeWorkerInputs` + :func:`workerArguments`
  build what ``python -m AnatomyINRLib fit-points`` needs, and
  :func:`readWorkerResult` reads its files back. The Slicer Logic uses this
  path so the GUI never blocks and a failed run changes nothing.

The library (and torch) is imported inside the functions: this file is
imported when Slicer loads the module, before dependencies are installed.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Sequence

import numpy as np

from AnatomyINRLib.core.types import ImageGrid, PointSet, TriangleMesh

PRESETS = ("fast", "default", "accurate", "paper")
MIN_POINTS = 10
SEGMENT_NAME_SUFFIX = "surface"
SEGMENT_COLOR = (0.89, 0.42, 0.33)
# Smoothness s in [0, 1] moves the paper's eikonal weight λ (eq. 3) by a decade either
# side of its default 0.1, and, for softplus networks, the activation sharpness β
# (IGR's 100 at s = 0.5, 10 at s = 1). Measured on a noisy sphere (σ = 0.8 mm, "fast"):
# larger λ or smaller β trade a larger point residual for a smoother, less bumpy surface.
_DEFAULT_SMOOTHNESS = 0.5


@dataclass
class SurfaceOptions:
    """What the user chooses; everything else comes from the preset.

    Attributes:
        preset: "fast", "default", "accurate" or "paper" (library presets).
        smoothness: 0 (follow points closely) .. 1 (smoothest).
        spacingMm: Grid spacing of the surface extraction, mm.
        seed: Random seed of the fit.
        device: "auto", "cpu" or "cuda".
        iterations: Optional override of the preset's iteration budget.
        threads: CPU threads of the worker (None: the library's default).
    """

    preset: str = "default"
    smoothness: float = _DEFAULT_SMOOTHNESS
    spacingMm: float = 0.5
    seed: int = 0
    device: str = "auto"
    iterations: Optional[int] = None
    threads: Optional[int] = None

    def validate(self) -> None:
        """Raise ValueError naming the first invalid option."""
        if self.preset not in PRESETS:
            raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {self.preset!r}")
        if not 0.0 <= float(self.smoothness) <= 1.0:
            raise ValueError(f"smoothness: expected a value in [0, 1], got {self.smoothness}")
        if not math.isfinite(self.spacingMm) or self.spacingMm <= 0:
            raise ValueError(f"spacingMm: expected a positive spacing in mm, got {self.spacingMm}")
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(f"iterations: expected a positive count, got {self.iterations}")


# Live refit's preview: a short warm-started fit meshed coarsely (the settings benchmarks/live_refit.py
# measures against the full-quality surface: Dice >= 0.97 is the target).
PREVIEW_PRESET, PREVIEW_ITERATIONS, PREVIEW_SPACING_MM = "fast", 40, 1.5


def previewOptions(options: SurfaceOptions) -> SurfaceOptions:
    """The preview version of ``options``: fast preset, at most 40 iterations, mesh spacing >= 1.5 mm."""
    iterations = min(options.iterations or PREVIEW_ITERATIONS, PREVIEW_ITERATIONS)
    return replace(options, preset=PREVIEW_PRESET, iterations=iterations,
                   spacingMm=max(float(options.spacingMm), PREVIEW_SPACING_MM))


@dataclass(frozen=True)
class OutputTarget:
    """Where a run's result goes, captured when it starts (nodes may be deleted while it runs).

    Attributes:
        pointsName: Name of the point list (names the new model and segment).
        segmentation: Output segmentation node, or None.
        reference: Reference volume node (the segment's grid), or None.
    """

    pointsName: str
    segmentation: object = None
    reference: object = None

    def inScene(self) -> bool:
        """True when the segmentation and its reference are both still in a scene."""
        return all(node is not None and node.GetScene() is not None for node in (self.segmentation, self.reference))


def libraryConfig(options: SurfaceOptions):
    """The library's ``SurfaceFitConfig`` for the options (preset + smoothness)."""
    from AnatomyINRLib.surface.config import preset_config

    options.validate()
    config = preset_config(options.preset)
    shift = float(options.smoothness) - _DEFAULT_SMOOTHNESS
    config.loss.eikonal_weight = config.loss.eikonal_weight * 10.0 ** (2.0 * shift)
    if config.network.activation == "softplus":
        config.network.softplus_beta = config.network.softplus_beta * 10.0 ** (-2.0 * shift)
    if options.iterations is not None:
        config.optim.iterations = int(options.iterations)
        config.optim.min_iterations = min(config.optim.min_iterations, int(options.iterations))
    config.validate()
    return config


@dataclass
class SurfaceResult:
    """A fitted surface and its quality numbers.

    Attributes:
        mesh: Closed surface, RAS mm, outward faces.
        residualsMm: (N,) distance |f(xᵢ)| of each input point to the surface, mm.
        labelmap: Enclosed region on the reference grid (uint8, 1 inside), or None.
        report: The library's fit report (``seconds``, ``device``, ``iterations``...).
    """

    mesh: TriangleMesh
    residualsMm: np.ndarray
    labelmap: Optional[ImageGrid] = None
    report: dict = field(default_factory=dict)

    @property
    def areaMm2(self) -> float:
        """Surface area, mm²."""
        return float(self.report.get("area_mm2", self.mesh.area()))

    @property
    def volumeMm3(self) -> float:
        """Enclosed volume, mm³."""
        return abs(float(self.report.get("volume_mm3", self.mesh.signed_volume())))


def checkPoints(points) -> np.ndarray:
    """(N, 3) float64 copy; ValueError if fewer than ``MIN_POINTS`` finite points."""
    array = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(array) < MIN_POINTS:
        raise ValueError(f"points: at least {MIN_POINTS} placed points are needed, got {len(array)}")
    if not np.all(np.isfinite(array)):
        raise ValueError("points: some coordinates are not finite")
    return array.copy()


def fitSurface(points, options: SurfaceOptions, reference: Optional[ImageGrid] = None,
               initInr: Optional[str] = None, saveInr: Optional[str] = None,
               progress: Optional[Callable] = None, shouldCancel: Optional[Callable[[], bool]] = None) -> SurfaceResult:
    """Fit, mesh and (optionally) voxelize in this process.

    Args:
        points: (N, 3) RAS mm surface points.
        options: Preset, smoothness, spacing...
        reference: Grid for the labelmap output (None: no labelmap).
        initInr: Field file of a previous fit to warm-start from.
        saveInr: Where to save the fitted field (for the next warm start).
        progress: Receives library ``Progress`` events.
        shouldCancel: Returns True to stop (raises ``Cancelled``).
    """
    from AnatomyINRLib.io.inr import load_inr, save_inr
    from AnatomyINRLib.surface import api

    config = libraryConfig(options)
    array = checkPoints(points)
    init = load_inr(initInr)[0] if initInr else None
    start = time.perf_counter()
    fit = api.fit_points(array, config=config, init_field=init, seed=options.seed, device=options.device,
                         progress=progress, should_cancel=shouldCancel)
    # Same extraction box as the worker (`fit-points`): the points' box, padded.
    mesh = api.extract_mesh(fit.field, options.spacingMm, points=array, progress=progress, should_cancel=shouldCancel)
    labels = (api.labelmap(fit.field, reference, progress=progress, should_cancel=shouldCancel)
              if reference is not None else None)
    if saveInr:
        save_inr(fit.field, saveInr, {"config": config.to_dict()})
    report = dict(fit.report, area_mm2=mesh.area(), volume_mm3=abs(mesh.signed_volume()),
                  seconds=time.perf_counter() - start)
    return SurfaceResult(mesh, np.asarray(fit.residuals_mm, dtype=np.float64), labels, report)


def outlierMask(residualsMm, thresholdMm: float) -> np.ndarray:
    """(N,) bool: points farther than ``thresholdMm`` from the surface."""
    return np.asarray(residualsMm, dtype=np.float64) > float(thresholdMm)


def residualRows(result: SurfaceResult, labels: Sequence[str], thresholdMm: float) -> list[tuple[str, float, bool]]:
    """``(label, distance mm, is outlier)`` per input point; numbered labels if they do not match."""
    residuals = [float(r) for r in result.residualsMm]
    flags = outlierMask(residuals, thresholdMm)
    names = list(labels) if labels is not None and len(labels) == len(residuals) else [str(i + 1) for i in range(len(residuals))]
    return [(names[i], residuals[i], bool(flags[i])) for i in range(len(residuals))]


def summaryText(result: SurfaceResult, thresholdMm: float) -> str:
    """Area, volume, residual statistics and outlier count, for the module panel."""
    residuals = np.asarray(result.residualsMm, dtype=np.float64)
    outliers = int(outlierMask(residuals, thresholdMm).sum())
    lines = [
        f"Surface area: {result.areaMm2 / 100.0:.2f} cm²   Enclosed volume: {result.volumeMm3 / 1000.0:.2f} mL",
        f"Point distances: median {np.median(residuals):.2f} mm, max {residuals.max():.2f} mm; "
        f"{outliers} of {len(residuals)} farther than {thresholdMm:g} mm",
    ]
    if result.report.get("seconds") is not None:
        from AnatomyINRSlicerLib.dependencies import torchDeviceDescription

        lines.append(f"Fit: {result.report.get('iterations', '?')} iterations in {float(result.report['seconds']):.1f} s "
                     f"on {torchDeviceDescription(result.report.get('device'))}")
    return "\n".join(lines)


@dataclass(frozen=True)
class WorkFiles:
    """Files one worker run reads and writes, all in one temporary folder."""

    folder: str

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    @property
    def points(self) -> str:
        return self.path("points.mrk.json")

    @property
    def config(self) -> str:
        return self.path("config.json")

    @property
    def reference(self) -> str:
        return self.path("reference.nrrd")

    @property
    def mesh(self) -> str:
        return self.path("surface.vtp")

    @property
    def labelmap(self) -> str:
        return self.path("labelmap.nrrd")

    @property
    def report(self) -> str:
        return self.path("report.json")

    @property
    def inr(self) -> str:
        return self.path("field.safetensors")


def writeWorkerInputs(files: WorkFiles, points, options: SurfaceOptions, labels: Optional[Sequence[str]] = None,
                      reference: Optional[ImageGrid] = None) -> None:
    """Write the points (RAS .mrk.json), the fit config and the reference grid for the worker."""
    from AnatomyINRLib.io.images import write_image
    from AnatomyINRLib.io.points import write_points

    write_points(PointSet(checkPoints(points), labels=list(labels) if labels is not None else None), files.points,
                 coordinate_system="RAS")
    with open(files.config, "w", encoding="utf-8") as stream:
        stream.write(libraryConfig(options).to_json())
    if reference is not None:
        # Only the geometry matters: zeros compress to almost nothing.
        write_image(reference.with_array(np.zeros(reference.shape, dtype=np.uint8)), files.reference)


def workerArguments(files: WorkFiles, options: SurfaceOptions, withLabelmap: bool,
                    initInr: Optional[str] = None) -> list[str]:
    """Arguments of ``fit-points`` for these files (see ``worker_protocol.fit_points_arguments``)."""
    from AnatomyINRSlicerLib.worker_protocol import fit_points_arguments

    arguments = fit_points_arguments(
        files.points, files.mesh,
        reference=files.reference if withLabelmap else None,
        output_labelmap=files.labelmap if withLabelmap else None,
        save_inr=files.inr, init_inr=initInr, spacing_mm=options.spacingMm, seed=options.seed,
        device=options.device, threads=options.threads, report=files.report,
    )
    # The config file carries preset, smoothness and iteration budget (it overrides --preset);
    # --iterations is not passed because it would disable the library's shorter warm-start schedule.
    return arguments + ["--config", files.config]


def readWorkerResult(files: WorkFiles, withLabelmap: bool) -> SurfaceResult:
    """Read what a successful worker run wrote (mesh, report, labelmap)."""
    from AnatomyINRLib.io.images import read_image
    from AnatomyINRLib.io.meshes import read_mesh
    from AnatomyINRSlicerLib.worker_protocol import read_report

    mesh = read_mesh(files.mesh)
    report = read_report(files.report)
    residuals = np.asarray(report.get("residuals_mm", []), dtype=np.float64)
    labels = read_image(files.labelmap) if withLabelmap else None
    return SurfaceResult(mesh, residuals, labels, report)


_RECORD_REPORT_KEYS = ("area_mm2", "volume_mm3", "seconds", "iterations", "device", "preset")


def resultRecord(result: SurfaceResult, labels: Sequence[str], indices: Sequence[int], points) -> str:
    """A fit's table and summary as compact JSON, kept in the parameter node (saved with the scene).

    The mesh is not in it: it is the output model, saved with the scene anyway.
    """
    import json

    report = {key: result.report[key] for key in _RECORD_REPORT_KEYS if key in result.report}
    report.setdefault("area_mm2", result.areaMm2)
    report.setdefault("volume_mm3", result.volumeMm3)
    return json.dumps({"residuals_mm": [round(float(r), 4) for r in result.residualsMm], "labels": list(labels),
                       "indices": [int(i) for i in indices], "points": np.round(np.asarray(points), 4).tolist(),
                       "report": report}, separators=(",", ":"))


def resultFromRecord(text: str, mesh: TriangleMesh) -> tuple:
    """``(SurfaceResult, labels, indices, (N, 3) points)`` back from :func:`resultRecord` and the model's mesh."""
    import json

    data = json.loads(text)
    result = SurfaceResult(mesh, np.asarray(data["residuals_mm"], dtype=np.float64), None, dict(data["report"]))
    return result, list(data["labels"]), list(data["indices"]), np.asarray(data["points"], dtype=np.float64).reshape(-1, 3)
