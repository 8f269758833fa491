"""The Logic of AnatomyINRSurfaceFromPoints outside Slicer.

Points array in → mesh arrays, residuals and a labelmap on an oblique
reference grid out, both in this process (``compute.fitSurface``) and through
the real background worker (``python -m AnatomyINRLib fit-points``) driven by
the same protocol code the Slicer Logic uses. Small iteration counts and one
thread keep each fit to a few seconds.
"""

import sys

import numpy as np
import pytest

from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.io.points import read_points
from AnatomyINRSlicerLib.worker_protocol import (
    FIT_POINTS_STAGES,
    StagePlan,
    library_search_dir,
    run_blocking,
    worker_command,
)
from AnatomyINRSurfaceFromPointsLib import compute

CENTER, RADIUS = np.array([10.0, -20.0, 30.0]), 12.0
SPACING = (1.5, 1.5, 2.0)


def sphere_points(count=100, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return CENTER + RADIUS * directions + rng.normal(scale=noise, size=(count, 3))


def oblique_reference():
    """25 x 25 x 19 grid, anisotropic voxels, rotated 30° about S, centred on the sphere."""
    angle = np.radians(30.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    matrix = np.eye(4)
    matrix[:3, :3] = rotation @ np.diag(SPACING)
    matrix[:3, 3] = CENTER - matrix[:3, :3] @ np.array([12.0, 12.0, 9.0])
    return ImageGrid(np.zeros((25, 25, 19), dtype=np.int16), matrix)


def assert_sphere(result, reference):
    sphere_area, sphere_volume = 4 * np.pi * RADIUS**2, 4 / 3 * np.pi * RADIUS**3
    assert result.areaMm2 == pytest.approx(sphere_area, rel=0.04)
    assert result.volumeMm3 == pytest.approx(sphere_volume, rel=0.04)
    distances = np.linalg.norm(result.mesh.vertices - CENTER, axis=1)
    # mm: the mesh lies on the sphere, in RAS (an LPS mix-up would be off by ~45 mm)
    assert np.abs(distances - RADIUS).mean() < 0.3 and np.abs(distances - RADIUS).max() < 1.5
    assert result.mesh.signed_volume() > 0  # faces point outward
    assert np.median(result.residualsMm) < 0.2
    labels = result.labelmap
    assert labels.shape == reference.shape
    np.testing.assert_allclose(labels.ijk_to_ras, reference.ijk_to_ras, atol=1e-6)
    assert labels.array.sum() * np.prod(SPACING) == pytest.approx(sphere_volume, rel=0.06)
    inside = labels.index_to_world(np.argwhere(labels.array > 0))
    assert np.linalg.norm(inside - CENTER, axis=1).max() < RADIUS + 1.5


OPTIONS = compute.SurfaceOptions(preset="fast", iterations=120, spacingMm=1.5, device="cpu")


def test_library_config_maps_smoothness_to_eikonal_weight_and_softplus_beta():
    from AnatomyINRLib.surface.config import preset_config

    base = preset_config("fast")
    middle = compute.libraryConfig(compute.SurfaceOptions(preset="fast"))
    assert middle.to_dict() == base.to_dict()
    smooth = compute.libraryConfig(compute.SurfaceOptions(preset="fast", smoothness=1.0))
    sharp = compute.libraryConfig(compute.SurfaceOptions(preset="fast", smoothness=0.0))
    assert smooth.loss.eikonal_weight == pytest.approx(10 * base.loss.eikonal_weight)
    assert sharp.loss.eikonal_weight == pytest.approx(base.loss.eikonal_weight / 10)
    assert smooth.network.softplus_beta == pytest.approx(base.network.softplus_beta / 10)
    paper = compute.libraryConfig(compute.SurfaceOptions(preset="paper", smoothness=1.0))
    assert paper.network.activation == "relu" and paper.network.softplus_beta == preset_config("paper").network.softplus_beta
    assert compute.libraryConfig(OPTIONS).optim.iterations == 120


@pytest.mark.parametrize("options", [compute.SurfaceOptions(preset="quick"), compute.SurfaceOptions(smoothness=1.5),
                                     compute.SurfaceOptions(spacingMm=0.0), compute.SurfaceOptions(iterations=0)])
def test_invalid_options_are_refused(options):
    with pytest.raises(ValueError):
        options.validate()


def test_too_few_points_are_refused_before_any_work():
    with pytest.raises(ValueError, match="at least 10"):
        compute.checkPoints(sphere_points(9))


def test_fit_in_process_gives_sphere_mesh_residuals_and_labelmap():
    reference = oblique_reference()
    result = compute.fitSurface(sphere_points(), OPTIONS, reference=reference)
    assert_sphere(result, reference)
    assert len(result.residualsMm) == 100
    assert compute.outlierMask(result.residualsMm, 0.5).sum() == 0
    assert "Enclosed volume" in compute.summaryText(result, 1.0)
    assert compute.summaryText(result, 1.0).endswith("on CPU")


def test_outliers_are_flagged_by_distance():
    points = sphere_points()
    points[7] = CENTER + (RADIUS + 6.0) * (points[7] - CENTER) / RADIUS  # 6 mm off the surface
    result = compute.fitSurface(points, OPTIONS)
    flags = compute.outlierMask(result.residualsMm, 1.0)
    assert flags[7] and flags.sum() <= 3
    assert "of 100 farther than 1 mm" in compute.summaryText(result, 1.0)
    rows = compute.residualRows(result, [f"P-{i}" for i in range(100)], 1.0)
    assert rows[7][0] == "P-7" and rows[7][2] and rows[7][1] == pytest.approx(result.residualsMm[7])
    assert compute.residualRows(result, ["only one label"], 1.0)[0][0] == "1"


def test_smoothness_trades_point_distance_for_a_smoother_surface():
    points = sphere_points(count=80, noise=0.8, seed=1)
    options = dict(preset="fast", iterations=120, spacingMm=1.5, device="cpu")
    sharp = compute.fitSurface(points, compute.SurfaceOptions(smoothness=0.0, **options))
    smooth = compute.fitSurface(points, compute.SurfaceOptions(smoothness=1.0, **options))
    assert np.median(smooth.residualsMm) > np.median(sharp.residualsMm)
    roughness = [np.std(np.linalg.norm(r.mesh.vertices - CENTER, axis=1)) for r in (sharp, smooth)]
    assert roughness[1] < roughness[0]


def run_worker(files, options, with_labelmap, init=None, events=None):
    arguments = compute.workerArguments(files, options, with_labelmap, init) + ["--threads", "1"]
    command = worker_command(sys.executable, "fit-points", arguments)
    return run_blocking(command, StagePlan(FIT_POINTS_STAGES), cwd=library_search_dir(),
                        on_event=(lambda e, overall: events.append((e.stage, overall))) if events is not None else None)


def test_worker_round_trip_matches_the_slicer_logic_path(tmp_path):
    reference = oblique_reference()
    points = sphere_points()
    labels = [f"P-{i}" for i in range(len(points))]
    files = compute.WorkFiles(str(tmp_path))
    compute.writeWorkerInputs(files, points, OPTIONS, labels, reference)
    np.testing.assert_allclose(read_points(files.points).points, points)  # written in RAS, no flip
    events = []
    outcome = run_worker(files, OPTIONS, True, events=events)
    assert outcome.ok, outcome.message + "\n" + "\n".join(outcome.log_tail)
    assert {"prepare", "fit", "extract", "labelmap"} <= {stage for stage, _ in events}
    overall = [value for _, value in events]
    assert overall == sorted(overall) and overall[-1] > 0.95
    result = compute.readWorkerResult(files, True)
    assert_sphere(result, reference)
    assert len(result.residualsMm) == len(points)
    assert result.report["device"] == "cpu"

    warm = compute.WorkFiles(str(tmp_path / "warm"))
    (tmp_path / "warm").mkdir()
    moved = points.copy()
    moved[0] += (moved[0] - CENTER) * 0.05
    compute.writeWorkerInputs(warm, moved, compute.SurfaceOptions(**{**OPTIONS.__dict__, "iterations": None}))
    outcome = run_worker(warm, compute.SurfaceOptions(preset="fast", spacingMm=1.5, device="cpu"), False, init=files.inr)
    assert outcome.ok, outcome.message
    report = compute.readWorkerResult(warm, False).report
    assert report["warm_started"] is True
    assert report["iterations"] < 400  # the warm start ran the library's shorter schedule


def test_worker_failure_writes_nothing_and_says_why(tmp_path):
    files = compute.WorkFiles(str(tmp_path))
    line = np.outer(np.linspace(0.0, 50.0, 20), [1.0, 0.0, 0.0])
    compute.writeWorkerInputs(files, line, OPTIONS)
    outcome = run_worker(files, OPTIONS, False)
    assert not outcome.ok and not outcome.cancelled
    assert outcome.returncode == 2
    assert outcome.message.startswith("The input was rejected:")
    assert not (tmp_path / "surface.vtp").exists()


def test_worker_cancel(tmp_path):
    import time

    files = compute.WorkFiles(str(tmp_path))
    options = compute.SurfaceOptions(preset="accurate", spacingMm=1.0, device="cpu")
    compute.writeWorkerInputs(files, sphere_points(), options)
    command = worker_command(sys.executable, "fit-points", compute.workerArguments(files, options, False) + ["--threads", "1"])
    seen = []
    outcome = run_blocking(command, StagePlan(FIT_POINTS_STAGES), cwd=library_search_dir(),
                           on_event=lambda e, overall: seen.append(e.stage), should_cancel=lambda: "fit" in seen)
    assert outcome.cancelled
    time.sleep(0.2)
    assert not (tmp_path / "surface.vtp").exists()
