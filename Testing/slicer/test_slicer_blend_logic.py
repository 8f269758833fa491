"""The Logic of AnatomyINRVesselBlend outside Slicer.

Inputs as library containers (what the Logic gets from models, segments and
point lists) → worker files and arguments → the real ``blend`` worker
(``python -m AnatomyINRLib blend``) driven by the same protocol code the Slicer
Logic uses → mesh, quality summary and per-input distance rows. Closed meshes
need no fit, so most runs take a few seconds; the one point-set input is fitted
with a small iteration budget on one thread.
"""

import sys
import time

import numpy as np
import pytest
import vtk

from AnatomyINRLib.core.types import PointSet
from AnatomyINRLib.io.points import read_points
from AnatomyINRSlicerLib.vtk_convert import meshFromPolyData
from AnatomyINRSlicerLib.worker_protocol import (BLEND_STAGES, StagePlan, WorkerOutcome, cli_arguments, complete_run,
                                                 library_search_dir, run_blocking, worker_command)
from AnatomyINRVesselBlendLib import compute

SPACING = 1.0


def tube(radius, height, axis):
    """Closed cylinder (RAS mm) along ``axis`` ("A" or "R") through the origin, as the Logic gets it from a model."""
    source = vtk.vtkCylinderSource()  # along y (A)
    source.SetRadius(radius)
    source.SetHeight(height)
    source.SetResolution(32)
    transform = vtk.vtkTransform()
    if axis == "R":
        transform.RotateZ(90.0)
    moved = vtk.vtkTransformFilter()
    moved.SetTransform(transform)
    moved.SetInputConnection(source.GetOutputPort())
    merged = vtk.vtkCleanPolyData()  # the source duplicates the rim points of its caps
    merged.SetInputConnection(moved.GetOutputPort())
    merged.Update()
    return meshFromPolyData(merged.GetOutput())


def ball_points(center, radius, count=150, seed=0):
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return PointSet(np.asarray(center) + radius * directions)


@pytest.fixture(scope="module")
def tubes():
    return [compute.BlendSource("aorta", tube(5.0, 40.0, "A")), compute.BlendSource("renal", tube(3.0, 40.0, "R"))]


def run(folder, sources, options, events=None, should_cancel=None):
    folder.mkdir(exist_ok=True)
    files = compute.WorkFiles(str(folder))
    paths = compute.writeWorkerInputs(files, sources)
    command = worker_command(sys.executable, "blend", compute.workerArguments(files, paths, options))
    outcome = run_blocking(command, StagePlan(BLEND_STAGES), cwd=library_search_dir(), should_cancel=should_cancel,
                           on_event=(lambda e, overall: events.append((e.stage, overall))) if events is not None else None)
    return files, outcome


def test_presets_match_the_library():
    from AnatomyINRLib.surface.config import PRESETS

    assert tuple(PRESETS) == compute.PRESETS
    assert compute.PRESET_CHOICES == ("auto",) + compute.PRESETS


@pytest.mark.parametrize("options, count, message", [
    (compute.BlendOptions(preset="quick"), 2, "preset"),
    (compute.BlendOptions(radiusMm=-1.0), 2, "radiusMm"),
    (compute.BlendOptions(radiusMm=float("nan")), 2, "radiusMm"),
    (compute.BlendOptions(spacingMm=0.0), 2, "spacingMm"),
    (compute.BlendOptions(radiiMm=[1.0]), 2, "one radius per input"),
    (compute.BlendOptions(radiiMm=[1.0, 25.0]), 2, r"radiiMm\[1\]"),
    (compute.BlendOptions(iterations=0), 2, "iterations"),
])
def test_invalid_options_are_refused(options, count, message):
    with pytest.raises(ValueError, match=message):
        options.validate(count)


def test_too_few_inputs_or_points_are_refused_before_any_work(tmp_path, tubes):
    files = compute.WorkFiles(str(tmp_path))
    with pytest.raises(ValueError, match="at least 2 inputs"):
        compute.writeWorkerInputs(files, tubes[:1])
    with pytest.raises(ValueError, match="at least 10 points"):
        compute.writeWorkerInputs(files, [tubes[0], compute.BlendSource("few", ball_points((0, 0, 0), 3.0, count=9))])
    assert not list(tmp_path.iterdir())


def test_generic_argument_builder():
    args = cli_arguments(["a.vtp", 2.5], [("--flag", True), ("--off", False), ("--none", None), ("--radii", [1, 0.25]),
                                          ("--spacing", np.float64(0.5)), ("--seed", 3)])
    assert args == ["a.vtp", "2.5", "--flag", "--radii", "1", "0.25", "--spacing", "0.5", "--seed", "3"]
    with pytest.raises(ValueError, match="--radii"):
        cli_arguments([], [("--radii", [])])


def test_worker_arguments_are_what_the_cli_parses(tmp_path):
    from AnatomyINRLib.cli import build_parser

    files = compute.WorkFiles(str(tmp_path))
    options = compute.BlendOptions(radiusMm=1.5, spacingMm=0.75, preset="fast", clipOpenEnds=False,
                                   radiiMm=[0.0, 3.0, 1.25], iterations=40, threads=1, device="cpu")
    arguments = compute.workerArguments(files, ["a.vtp", "b.mrk.json", "c.vtp"], options)
    parsed = build_parser().parse_args(worker_command("python", "blend", arguments)[3:])
    assert parsed.inputs == ["a.vtp", "b.mrk.json", "c.vtp"] and parsed.output == files.mesh
    assert (parsed.radius, parsed.radii, parsed.spacing, parsed.preset) == (1.5, [0.0, 3.0, 1.25], 0.75, "fast")
    assert parsed.no_clip_ends and parsed.iterations == 40 and parsed.report == files.report and parsed.json_progress
    default = build_parser().parse_args(worker_command("python", "blend", compute.workerArguments(
        files, ["a.vtp", "b.vtp"], compute.BlendOptions()))[3:])
    assert default.radii is None and not default.no_clip_ends
    assert compute.BlendOptions().preset == compute.AUTO_PRESET and default.preset is None  # blend's own fit settings


def test_complete_run_reads_only_after_success_and_always_cleans_up():
    calls = []
    ok = WorkerOutcome(True, False, 0, "Finished.")
    outcome, result = complete_run(ok, lambda: "mesh", calls.append, lambda: calls.append("cleanup"))
    assert outcome.ok and result == "mesh" and calls == ["mesh", "cleanup"]
    calls.clear()
    failed = WorkerOutcome(False, False, 2, "The input was rejected: x")
    assert complete_run(failed, lambda: calls.append("read"), calls.append, lambda: calls.append("cleanup")) == (failed, None)
    assert calls == ["cleanup"]

    def unreadable():
        raise OSError("blended.vtp: no such file")
    outcome, result = complete_run(ok, unreadable, calls.append, lambda: None)
    assert not outcome.ok and result is None and "blended.vtp" in outcome.message


def test_smooth_union_of_two_tubes_is_watertight_and_keeps_the_inputs(tmp_path, tubes):
    events = []
    options = compute.BlendOptions(radiusMm=0.0, spacingMm=SPACING, device="cpu", threads=1)
    files, outcome = run(tmp_path / "plain", tubes, options)
    assert outcome.ok, outcome.message + "\n".join(outcome.log_tail)
    plain = compute.readWorkerResult(files, ["aorta", "renal"])
    options = compute.BlendOptions(radiusMm=3.0, spacingMm=SPACING, device="cpu", threads=1)
    files, outcome = run(tmp_path / "fillet", tubes, options, events)
    assert outcome.ok, outcome.message
    assert {"extract", "check"} <= {stage for stage, _ in events}
    overall = [value for _, value in events]
    assert overall == sorted(overall) and overall[-1] == pytest.approx(1.0)
    result = compute.readWorkerResult(files, ["aorta", "renal"])
    summary = compute.qualitySummary(result.report)
    assert summary.ok and summary.watertight and summary.manifold and summary.components == 1
    assert summary.selfIntersections == 0
    # The fillet adds material only around the junction: a little more volume than the plain union.
    plain_volume = compute.qualitySummary(plain.report).volumeMm3
    z = np.linspace(-3.0, 3.0, 20001)  # the renal tube's part inside the aorta: ∫ (2√(9−z²))(2√(25−z²)) dz
    overlap = np.trapezoid(4.0 * np.sqrt(9.0 - z**2) * np.sqrt(25.0 - z**2), z)
    assert plain_volume == pytest.approx(np.pi * 25 * 40 + np.pi * 9 * 40 - overlap, rel=0.03)
    assert plain_volume < summary.volumeMm3 < 1.05 * plain_volume
    assert abs(result.mesh.signed_volume()) == pytest.approx(summary.volumeMm3, rel=1e-6)
    rows = compute.fidelityRows(result)
    assert [row[0] for row in rows] == ["aorta", "renal"]
    assert all(row[1] == "closed mesh, mesh (exact distance)" and row[2] > 100 for row in rows)
    assert all(row[3] < 0.3 * SPACING and row[4] <= SPACING for row in rows)  # on the inputs within the grid
    assert compute.flaggedRows(rows, SPACING) == [] and compute.flaggedRows(rows, 0.0) == [0, 1]
    text = compute.summaryText(result)
    assert text.startswith("Surface OK: watertight yes, manifold yes, 1 component, 0 self-intersections")
    assert "Blended 2 inputs" in text


def test_points_input_with_per_input_radius(tmp_path, tubes):
    cap = compute.BlendSource("cap points", ball_points((0.0, 22.0, 0.0), 6.0))
    options = compute.BlendOptions(radiusMm=2.0, radiiMm=[0.0, 2.0, 4.0], spacingMm=SPACING, preset="fast",
                                   iterations=80, device="cpu", threads=1)
    files, outcome = run(tmp_path / "run", tubes + [cap], options)
    assert outcome.ok, outcome.message + "\n".join(outcome.log_tail)
    np.testing.assert_allclose(read_points(files.input(2, cap)).points, cap.data.points)  # written in RAS
    result = compute.readWorkerResult(files, ["aorta", "renal", "cap points"])
    assert [entry["radius_mm"] for entry in result.report["inputs"]] == [0.0, 2.0, 4.0]
    assert compute.fidelityRows(result)[2][1] == "points, fitted INR"
    assert compute.qualitySummary(result.report).components == 1
    top = result.mesh.vertices[:, 1].max()
    assert 26.0 < top < 29.5  # the fitted cap (radius 6 around y = 22) closes the aorta's top


def test_failure_writes_no_output_and_says_why(tmp_path, tubes):
    line = compute.BlendSource("line", PointSet(np.outer(np.linspace(0.0, 50.0, 20), [1.0, 0.0, 0.0])))
    files, outcome = run(tmp_path / "run", [tubes[0], line], compute.BlendOptions(preset="fast", iterations=20, threads=1))
    assert not outcome.ok and not outcome.cancelled and outcome.returncode == 2
    assert outcome.message.startswith("The input was rejected:")
    assert not (tmp_path / "run" / "blended.vtp").exists()


def test_cancel_stops_the_worker(tmp_path, tubes):
    cap = compute.BlendSource("cap points", ball_points((0.0, 22.0, 0.0), 6.0))
    seen = []
    start = time.perf_counter()
    files, outcome = run(tmp_path / "run", tubes + [cap], compute.BlendOptions(preset="accurate", threads=1), events=seen,
                         should_cancel=lambda: any(stage == "fit" for stage, _ in seen))
    assert outcome.cancelled and not outcome.ok
    assert time.perf_counter() - start < 30
    time.sleep(0.2)
    assert not (tmp_path / "run" / "blended.vtp").exists()
