"""Pulmonary segments: the Logic-ready entry points.

* :func:`segment_lungs` — Method A (training-free): lobes + airways (+ arteries,
  veins) + segmental identity (a labelled airway mask or one point per segmental
  bronchus) → the 18 segments as a labelmap and an implicit soft partition.
* :func:`plan_segments` — volumes, nodule location and margin, remaining lung.
* :func:`train_segments_model` — Method B (learned, ImPulSe+): train on case folders into a
  checkpoint; ``segment_lungs(..., checkpoint=...)`` then runs Method B.

Inputs are containers (ImageGrid, PointSet) in RAS mm; only Method B reads files (its
training cases and checkpoint, through ``io``). Method A is deterministic and runs on the CPU with numpy/scipy; ``seed`` and
``device`` are accepted for the shared capability signature and recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from AnatomyINRLib.core.device import restore_ieee_denormals
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.types import ImageGrid, PointSet
from AnatomyINRLib.pulmonary import _inputs
from AnatomyINRLib.pulmonary._field import SegmentField
from AnatomyINRLib.pulmonary._planning import check_plan_inputs, planning_report
from AnatomyINRLib.pulmonary._skeleton import propagate_point_labels
from AnatomyINRLib.pulmonary._territory import WorkGrid, lobe_territories, work_sources
from AnatomyINRLib.pulmonary.config import SEGMENTS, TerritoryConfig, preset_config


@dataclass
class SegmentsResult:
    """Output of :func:`segment_lungs`.

    Attributes:
        labels: uint8 labelmap (0, 1-18 in the fixed order) on the lobes' grid.
        field: The soft partition; ``field.labels_at(points)`` / ``field.sample(grid)`` at any resolution.
        airways_labeled: The labelled bronchi used (given, or propagated from the points).
        report: JSON-ready dict (method, config, timings, volumes, warnings).
    """

    labels: ImageGrid
    field: SegmentField
    airways_labeled: ImageGrid
    report: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    """Output of :func:`train_segments_model`.

    Attributes:
        checkpoint: Path of the checkpoint (written by rank 0 after every epoch).
        report: JSON-ready dict (config, per-epoch losses, template losses, rank, world size, weight digest,
            whether the run resumed, time).
    """

    checkpoint: str
    report: dict = field(default_factory=dict)


@dataclass
class PlanResult:
    """Output of :func:`plan_segments`: ``report`` holds volumes, nodule and resection sections."""

    report: dict = field(default_factory=dict)


def _resolve_config(config: Optional[TerritoryConfig], preset: str) -> TerritoryConfig:
    if config is None:
        return preset_config(preset)
    if not isinstance(config, TerritoryConfig):
        raise InputError(f"config: expected a TerritoryConfig, got {type(config).__name__}")
    config.validate()
    return config


def _identity(lobes, lobe_arr, airway_mask, segmental_labels, segment_points, config, progress):
    """Labelled bronchi (uint8) from either identity input, plus the propagation info."""
    if (segmental_labels is None) == (segment_points is None):
        raise InputError("segmental identity: give exactly one of segmental_labels or segment_points")
    if segmental_labels is not None:
        return _inputs.check_segmental_labels(segmental_labels, lobe_arr), {"source": "segmental_labels"}
    found = _inputs.parse_segment_points(segment_points)
    _inputs.check_points_in_lobes(found, lobes, lobe_arr)
    progress.report("propagate", 0.0, "skeletonising the airways")
    labelled, info = propagate_point_labels(airway_mask, lobes, lobe_arr, found, config.point_max_distance_mm,
                                            progress)
    progress.report("propagate", 1.0, f"labels propagated over {info['skeleton_voxels']} skeleton voxels")
    return labelled, {"source": "segment_points", **info}


def _artery_seeds(arteries: np.ndarray, bronchi: np.ndarray, lobe_arr: np.ndarray, grid: ImageGrid,
                  max_mm: float) -> np.ndarray:
    """Artery voxels labelled with the nearest labelled bronchus of their lobe (within ``max_mm``)."""
    from scipy.spatial import cKDTree

    out = np.zeros(bronchi.shape, dtype=np.uint8)
    for lobe in range(1, 6):
        b = np.argwhere((bronchi > 0) & (lobe_arr == lobe))
        a = np.argwhere(arteries & (lobe_arr == lobe) & (bronchi == 0))
        if not len(b) or not len(a):
            continue
        d, n = cKDTree(grid.index_to_world(b)).query(grid.index_to_world(a), distance_upper_bound=max_mm, workers=2)
        ok = np.isfinite(d)
        out[tuple(a[ok].T)] = bronchi[tuple(b[n[ok]].T)]
    return out


def segment_lungs(lobes: ImageGrid, airways: ImageGrid, *, segmental_labels: Optional[ImageGrid] = None,
                  segment_points: Optional[PointSet] = None, arteries: Optional[ImageGrid] = None,
                  veins: Optional[ImageGrid] = None, ct: Optional[ImageGrid] = None,
                  nodule: "PointSet | ImageGrid | None" = None, resect: Optional[Sequence] = None,
                  config: Optional[TerritoryConfig] = None, preset: str = "default", seed: int = 0,
                  device: str = "cpu", progress=None, should_cancel: Optional[Callable[[], bool]] = None,
                  checkpoint=None) -> SegmentsResult:
    """The 18 pulmonary segments: Method A (geodesic territories, smoothed) or, with ``checkpoint``, Method B.

    Args:
        lobes: Lobe labelmap (1 RUL, 2 RML, 3 RLL, 4 LUL, 5 LLL; 0 elsewhere).
        airways: Binary airway mask on the same grid.
        segmental_labels: Airway mask with the segmental subtrees labelled 1-18 (0 elsewhere), or
        segment_points: One RAS point per segmental bronchus, labelled with the segment name.
        arteries, veins: Optional binary masks (arteries become extra seeds, veins raise the path cost).
        ct: Optional CT; only its geometry is checked (Method A does not use intensities).
        nodule, resect: Optional planning inputs (see :func:`plan_segments`), checked before any
            work; the report then has a ``planning`` section.
        config / preset: :class:`TerritoryConfig` or a preset name ("fast", "default", "fine").
        seed, device: Recorded only (Method A is deterministic, CPU).
        progress / should_cancel: Progress callback or reporter; cancel check.
        checkpoint: Method B instead: a checkpoint path from :func:`train_segments_model`. It needs the
            lobes and the volumes the checkpoint was trained on (CT, arteries, veins...), no segmental
            identity, and labels every voxel of the input grid; ``config``/``preset`` are unused.

    Returns:
        SegmentsResult (labels on the lobes grid, the field, the labelled bronchi, the report).

    Raises:
        InputError: grids differ, bad lobe values or an empty lobe, bad or missing segment identity.
        Cancelled: when ``should_cancel`` returns True.
    """
    if checkpoint is not None:
        return _segment_learned(checkpoint, {"lobes": lobes, "airways": airways, "arteries": arteries,
                                             "veins": veins, "ct": ct}, segmental_labels, segment_points,
                                nodule, resect, seed, device, ProgressReporter.wrap(progress, should_cancel))
    cfg = _resolve_config(config, preset)
    restore_ieee_denormals()  # scipy's KD-tree crashes under flush-to-zero
    reporter = ProgressReporter.wrap(progress, should_cancel)
    t0, times = time.perf_counter(), {}
    _inputs.check_geometry({"lobes": lobes, "airways": airways, "segmental_labels": segmental_labels,
                            "arteries": arteries, "veins": veins, "ct": ct})
    lobe_arr = _inputs.check_lobes(lobes)
    check_plan_inputs(lobes, nodule, resect)
    airway_mask = _inputs.binary("airways", airways)
    bronchi, identity = _identity(lobes, lobe_arr, airway_mask, segmental_labels, segment_points, cfg, reporter)
    times["identity_s"] = time.perf_counter() - t0
    reporter.report("territories", 0.0, "geodesic territories per lobe")
    work = WorkGrid.from_input(lobes.shape, lobes.ijk_to_ras, cfg.work_spacing_mm)
    work_lobes = np.ascontiguousarray(work.nearest(lobe_arr))
    seeds = work_sources(bronchi, work, work_lobes)
    n_artery = 0
    if arteries is not None and cfg.use_arteries:
        art = _artery_seeds(_inputs.binary("arteries", arteries), bronchi, lobe_arr, lobes, cfg.artery_max_distance_mm)
        n_artery = int(np.count_nonzero(art))
        art_seeds = work_sources(art, work, work_lobes) if n_artery else np.zeros_like(seeds)
        seeds = np.where(seeds > 0, seeds, art_seeds)
    cost = np.ones(work.shape, dtype=np.float32)
    if veins is not None and cfg.vein_cost > 1.0:
        cost[work.any_of(_inputs.binary("veins", veins))] = cfg.vein_cost
    territories = {}
    for lobe in range(1, 6):
        territories[lobe] = lobe_territories(work_lobes, seeds, cost, work.affine, lobe)
        reporter.report("territories", lobe / 5.0, f"lobe {lobe}/5 done")
    times["territories_s"] = time.perf_counter() - t0 - sum(times.values())
    bronchi_img = lobes.with_array(bronchi)
    fld = SegmentField.fit(territories, work_lobes, work.affine, cfg.smoothing_mm, lobes, bronchi_img)
    reporter.report("field", 1.0, "soft partition fitted")
    labels = fld.sample(lobes, cfg.chunk_voxels, progress=reporter)
    times["field_and_sampling_s"] = time.perf_counter() - t0 - sum(times.values())
    report = _report(cfg, lobes, work, identity, n_artery, veins is not None, labels, seed, device, times)
    if nodule is not None or resect is not None:
        report["planning"] = planning_report(labels, nodule, resect)
    return SegmentsResult(labels, fld, bronchi_img, report)


def _report(cfg, lobes, work, identity, n_artery, used_veins, labels, seed, device, times) -> dict:
    from AnatomyINRLib.pulmonary._planning import segment_volumes

    return {"method": "A (geodesic territories + implicit soft partition)", "config": cfg.to_dict(),
            "seed": int(seed), "device": str(device), "grid": {"shape": list(lobes.shape),
            "spacing_mm": [round(float(s), 6) for s in lobes.spacing]},
            "work_grid": {"shape": list(work.shape), "factor": work.factor.tolist()},
            "identity": identity, "artery_seed_voxels": n_artery, "veins_used": bool(used_veins and cfg.vein_cost > 1),
            "labels": {str(v): SEGMENTS[v][0] for v in SEGMENTS},
            "volumes": segment_volumes(labels), "timings_s": {k: round(v, 3) for k, v in times.items()}}


def _segment_learned(checkpoint, images, segmental_labels, segment_points, nodule, resect, seed, device,
                     reporter) -> SegmentsResult:
    """Method B inference (see :func:`segment_lungs`)."""
    import torch

    from AnatomyINRLib.core.device import resolve_device
    from AnatomyINRLib.pulmonary._learned_data import inference_images_check
    from AnatomyINRLib.pulmonary._learned_infer import LearnedField, LearnedModel

    if segmental_labels is not None or segment_points is not None:
        raise InputError("segmental identity: Method B (checkpoint) takes no segmental_labels or segment_points")
    t0 = time.perf_counter()
    _inputs.check_geometry(images)
    _inputs.check_lobes(images["lobes"])
    check_plan_inputs(images["lobes"], nodule, resect)
    dev = resolve_device(device)
    model = LearnedModel.from_checkpoint(checkpoint, dev)
    inference_images_check(images, tuple(model.config.network.channels))
    reporter.report("encode", 0.0, "encoding the lung box")
    with torch.no_grad():
        fld = LearnedField(model, images, dev)
        labels = fld.sample(images["lobes"], progress=reporter)
    seconds = time.perf_counter() - t0
    restore_ieee_denormals()
    from AnatomyINRLib.pulmonary._planning import segment_volumes

    airway = _inputs.binary("airways", images["airways"])
    bronchi = images["lobes"].with_array(np.where(airway, labels.array, 0).astype(np.uint8))
    report = {"method": "B (learned: ImPulSe+ template deformation + correction)", "checkpoint": str(checkpoint),
              "config": model.config.to_dict(), "trained_epochs": model.metadata.get("epoch"),
              "seed": int(seed), "device": str(dev), "grid": {"shape": list(labels.shape)},
              "labels": {str(v): SEGMENTS[v][0] for v in SEGMENTS}, "volumes": segment_volumes(labels),
              "timings_s": {"inference_s": round(seconds, 3)}}
    if nodule is not None or resect is not None:
        report["planning"] = planning_report(labels, nodule, resect)
    return SegmentsResult(labels, fld, bronchi, report)


def train_segments_model(data_dir, output, *, config=None, preset: str = "small", seed: int = 0,
                         device: str = "cpu", progress=None,
                         should_cancel: Optional[Callable[[], bool]] = None) -> TrainResult:
    """Method B (ImPulSe+ §4.5): pre-train the template, then train encoder + deformation + correction.

    Args:
        data_dir: Folder of case folders (layout in :mod:`AnatomyINRLib.pulmonary._learned_data`: the
            phantom's file names, or Lung3D's ``lungsegment/lobe/airway/artery/vein.nii.gz``).
        output: ``.safetensors`` checkpoint (+ ``.json`` sidecar); an unfinished checkpoint of the same
            config and seed there is resumed.
        config / preset: :class:`LearnedTrainConfig` or a preset name ("tiny", "small", "paper").
        seed: Seeds the initial weights and every sampled point.
        device: "cpu", "cuda", "auto"...; under ``torchrun`` each process trains on its share of the
            cases (DistributedDataParallel) and only rank 0 writes.
        progress / should_cancel: Progress callback or reporter; cancel check (between steps; the last
            epoch's checkpoint stays and is resumed next time).

    Raises:
        InputError: bad config, data folder, or an output holding another training's checkpoint.
        OutputError: the checkpoint cannot be written.
        Cancelled: when ``should_cancel`` returns True.
    """
    from AnatomyINRLib.core.device import resolve_device
    from AnatomyINRLib.io.formats import file_extension
    from AnatomyINRLib.pulmonary._learned_train import run_training
    from AnatomyINRLib.pulmonary.config import LearnedTrainConfig, learned_preset

    cfg = learned_preset(preset) if config is None else config
    if not isinstance(cfg, LearnedTrainConfig):
        raise InputError(f"config: expected a LearnedTrainConfig, got {type(cfg).__name__}")
    cfg.validate()
    if file_extension(output) != ".safetensors":
        from AnatomyINRLib.core.errors import OutputError

        raise OutputError(f"output {str(output)!r}: expected a .safetensors checkpoint")
    reporter = ProgressReporter.wrap(progress, should_cancel)
    t0 = time.perf_counter()
    info = run_training(data_dir, cfg, int(seed), resolve_device(device), output, reporter)
    report = {"method": "B (learned: ImPulSe+)", "config": cfg.to_dict(), "seed": int(seed), "device": str(device),
              **info, "seconds": round(time.perf_counter() - t0, 2)}
    return TrainResult(str(output), report)


def plan_segments(segments: ImageGrid, *, nodule: "PointSet | ImageGrid | None" = None,
                  resect: Optional[Sequence] = None, progress=None,
                  should_cancel: Optional[Callable[[], bool]] = None) -> PlanResult:
    """Planning numbers: per-segment volumes, the nodule's segment(s) and margin, remaining lung.

    Args:
        segments: Segment labelmap (1-18).
        nodule: RAS point(s) (PointSet) or a mask on the segments' grid.
        resect: Segment names (or label numbers) to remove.

    Raises:
        InputError: a nodule outside the lungs, unknown or repeated segment names.
    """
    reporter = ProgressReporter.wrap(progress, should_cancel)
    restore_ieee_denormals()
    if not isinstance(segments, ImageGrid):
        raise InputError(f"segments: expected an ImageGrid, got {type(segments).__name__}")
    report = planning_report(segments, nodule, resect)
    reporter.report("plan", 1.0, "planning numbers computed")
    return PlanResult(report)
