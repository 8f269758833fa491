"""The Logic of AnatomyINRNestedWalls outside Slicer.

Point sets in (what the Logic reads from point lists) → worker files and
arguments → the real ``fit-nested`` worker (``python -m AnatomyINRLib
fit-nested``) driven by the same protocol code the Slicer Logic uses → meshes
with thickness, the table rows, the Dmax line end points and the colour legend.
Synthetic data: three concentric capsules (radii 7, 10, 12 mm; 40 mm long), so
volumes, thicknesses and Dmax are known. One thread and a small iteration
budget keep the fit to about ten seconds.
"""

import sys
import time

import numpy as np
import pytest

from AnatomyINRLib.core.types import PointSet
from AnatomyINRLib.io.points import read_points
from AnatomyINRLib.phantoms.base import UnionPhantom
from AnatomyINRLib.phantoms.tubes import Capsule
from AnatomyINRNestedWallsLib import compute
from AnatomyINRSlicerLib.vtk_convert import tableFromRows
from AnatomyINRSlicerLib.worker_protocol import (FIT_NESTED_STAGES, StagePlan, library_search_dir, run_blocking,
                                                 worker_command)

CENTER = np.array([5.0, -10.0, 20.0])
RADII = {"lumen": 7.0, "inner": 10.0, "outer": 12.0}
HALF_LENGTH = 20.0


def capsule(radius):
    return UnionPhantom([Capsule(CENTER - [0, 0, HALF_LENGTH], CENTER + [0, 0, HALF_LENGTH], radius)], "capsule")


def capsule_volume(radius):
    return np.pi * radius**2 * 2 * HALF_LENGTH + 4.0 / 3.0 * np.pi * radius**3


def point_sets(names=("lumen", "inner", "outer"), count=150):
    return [capsule(RADII[name]).sample_surface(count, seed=1) for name in names]


def run(folder, sets, options, events=None, should_cancel=None):
    folder.mkdir(exist_ok=True)
    files = compute.WorkFiles(str(folder))
    paths = compute.writeWorkerInputs(files, sets)
    command = worker_command(sys.executable, "fit-nested", compute.workerArguments(files, paths, options))
    outcome = run_blocking(command, StagePlan(FIT_NESTED_STAGES), cwd=library_search_dir(), should_cancel=should_cancel,
                           on_event=(lambda e, overall: events.append((e.stage, overall))) if events is not None else None)
    return files, outcome


def test_constants_match_the_library():
    from AnatomyINRLib.nested.analysis import THICKNESS
    from AnatomyINRLib.nested.config import DEFAULT_NAMES, PRESETS
    from AnatomyINRLib.nested.fit import check_names

    assert compute.PRESETS == tuple(PRESETS) and compute.NAMES == tuple(DEFAULT_NAMES)
    assert compute.THICKNESS_ARRAY == THICKNESS
    assert compute.surfaceNames(2) == check_names(None, 2) and compute.surfaceNames(3) == check_names(None, 3)


@pytest.mark.parametrize("options, message", [
    (compute.NestedOptions(preset="quick"), "preset"),
    (compute.NestedOptions(minThicknessMm=-0.5), "minThicknessMm"),
    (compute.NestedOptions(spacingMm=0.0), "spacingMm"),
    (compute.NestedOptions(spacingMm=float("inf")), "spacingMm"),
    (compute.NestedOptions(iterations=0), "iterations"),
])
def test_invalid_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        options.validate()


def test_bad_point_sets_are_refused_before_any_work(tmp_path):
    files = compute.WorkFiles(str(tmp_path))
    with pytest.raises(ValueError, match="2 or 3"):
        compute.writeWorkerInputs(files, point_sets(("lumen",)))
    with pytest.raises(ValueError, match="inner points: at least 10"):
        compute.writeWorkerInputs(files, point_sets()[:1] + [PointSet(np.zeros((9, 3)) + np.arange(9)[:, None])]
                                  + point_sets()[2:])
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("count", [2, 3])
def test_worker_arguments_are_what_the_cli_parses(tmp_path, count):
    from AnatomyINRLib.cli import build_parser

    files = compute.WorkFiles(str(tmp_path))
    paths = [f"p{i}.mrk.json" for i in range(count)]
    options = compute.NestedOptions(preset="fast", minThicknessMm=0.75, spacingMm=1.25, seed=4, iterations=30, threads=1)
    parsed = build_parser().parse_args(worker_command("python", "fit-nested",
                                                      compute.workerArguments(files, paths, options))[3:])
    assert parsed.points == paths and parsed.names == compute.surfaceNames(count)
    assert (parsed.min_thickness, parsed.spacing, parsed.preset, parsed.seed) == (0.75, 1.25, "fast", 4)
    assert parsed.output_prefix == files.prefix and parsed.report == files.report and parsed.json_progress
    from AnatomyINRLib.cli.fit_nested import output_paths

    assert output_paths(parsed.output_prefix, parsed.names) == [files.mesh(n) for n in parsed.names]


def test_table_from_rows_keeps_numbers_numeric():
    table = tableFromRows((("Measure", "string"), ("Value", "double"), ("Unit", "string")),
                          [("Lumen volume", 7.5, "mL"), ("Dmax", None, "mm")])
    assert table.GetNumberOfRows() == 2 and table.GetNumberOfColumns() == 3
    assert table.GetColumnByName("Value").GetDataTypeAsString() == "double"
    assert table.GetValue(0, 1).ToDouble() == 7.5 and np.isnan(table.GetValue(1, 1).ToDouble())
    assert table.GetValue(1, 0).ToString() == "Dmax"
    with pytest.raises(ValueError, match="row 0"):
        tableFromRows((("A", "string"),), [("x", 1.0)])
    with pytest.raises(ValueError, match="kind"):
        tableFromRows((("A", "int"),), [])


def test_colour_scale_and_legend():
    colors = compute.thicknessColors(256)
    assert colors.shape == (256, 3) and colors.min() >= 0 and colors.max() <= 1
    brightness = colors @ [0.299, 0.587, 0.114]
    assert np.all(np.diff(brightness) > 0)  # thicker is always brighter: readable in grey too
    entries = compute.legendEntries((0.0, 5.0), count=6)
    assert [value for value, _ in entries] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert entries[0][1] == tuple(colors[0]) and entries[-1][1] == tuple(colors[-1])
    html = compute.legendHtml(entries)
    assert html.count("background-color:#") == 6 and "#450054" in html and "Thickness (mm)" in html
    report = {"thickness": {"lumen": {"p95": 3.6}, "outer": {"p95": 2.4}}}
    assert compute.thicknessRange(report) == (0.0, 4.0)
    assert compute.thicknessRange({"thickness": {"a": {"p95": 0.0}}}) == (0.0, 1.0)
    assert compute.thicknessRange({"thickness": {"a": {"p95": 12.0}}}) == (0.0, 15.0)


def test_three_capsules_through_the_worker(tmp_path):
    events = []
    sets = point_sets()
    options = compute.NestedOptions(preset="fast", spacingMm=1.5, iterations=100, device="cpu", threads=1)
    files, outcome = run(tmp_path / "run", sets, options, events)
    assert outcome.ok, outcome.message + "\n".join(outcome.log_tail)
    np.testing.assert_allclose(read_points(files.points("inner")).points, sets[1].points)  # written in RAS
    assert {"fit", "extract", "measure"} <= {stage for stage, _ in events}
    overall = [value for _, value in events]
    assert overall == sorted(overall) and overall[-1] == pytest.approx(1.0)
    result = compute.readWorkerResult(files, ["lumen", "inner", "outer"])
    report = result.report
    for name, mesh in zip(result.names, result.meshes):
        assert abs(mesh.signed_volume()) == pytest.approx(capsule_volume(RADII[name]), rel=0.05)
    medians = {name: float(np.median(m.point_data[compute.THICKNESS_ARRAY])) for name, m in zip(result.names, result.meshes)}
    assert medians["lumen"] == pytest.approx(3.0, abs=0.6) and medians["inner"] == pytest.approx(2.0, abs=0.6)
    rows = {measure: (value, unit) for measure, value, unit in compute.measurementRows(report)}
    assert list(rows)[:4] == ["Lumen volume", "Thrombus volume", "Wall volume", "Total volume (inside the outer wall)"]
    thrombus = (capsule_volume(RADII["inner"]) - capsule_volume(RADII["lumen"])) / 1000.0
    assert rows["Thrombus volume"] == (pytest.approx(thrombus, rel=0.12), "mL")
    assert rows["Maximum diameter (Dmax)"][0] == pytest.approx(2 * RADII["outer"], abs=1.5)
    assert rows["Nesting violation volume"][0] == 0.0 and rows["Vertices outside their outer surface"][0] == 0.0
    ends = compute.dmaxEndpoints(report)
    assert np.linalg.norm(ends[1] - ends[0]) == pytest.approx(report["dmax"]["dmax_mm"], rel=1e-6)
    radial = np.linalg.norm((ends - CENTER)[:, :2], axis=1)
    assert np.all(np.abs(radial - RADII["outer"]) < 1.5)  # both ends on the outer wall
    text = compute.summaryText(result)
    assert "Dmax: " in text and "Nesting: no violation" in text and "thrombus" in text


def test_two_surfaces_table_rows_from_the_library_measures():
    """Two surfaces (no inner wall): lumen and 'thrombus and wall', from analytic capsules measured in process."""
    from AnatomyINRLib.nested.analysis import add_thickness_maps, mesh_violations, neighbour_distances, volumes
    from AnatomyINRLib.nested.analysis import thickness_stats
    from AnatomyINRLib.nested.pipeline import extract_nested

    names = ["lumen", "outer"]
    capsules = [capsule(RADII[n]) for n in names]
    bounds = np.stack([CENTER - [15, 15, 35], CENTER + [15, 15, 35]])
    extraction, _ = extract_nested(lambda p: np.stack([c.sdf(p) for c in capsules], axis=1), bounds, 1.5)
    signed = neighbour_distances(extraction.meshes)
    meshes = add_thickness_maps(extraction.meshes, signed)
    report = {"names": names, "volumes": volumes(meshes, names), "thickness": thickness_stats(meshes, names),
              "dmax": None, "violations": {"meshes": mesh_violations(extraction.meshes, names, 1.5, signed)}}
    rows = {measure: value for measure, value, _unit in compute.measurementRows(report)}
    shell = (capsule_volume(RADII["outer"]) - capsule_volume(RADII["lumen"])) / 1000.0
    assert rows["Thrombus and wall volume"] == pytest.approx(shell, rel=0.05)
    assert rows["Maximum diameter (Dmax)"] is None and "Dmax position along the centreline" not in rows
    assert rows["Lumen: median thickness"] == pytest.approx(5.0, abs=0.3)
    assert compute.dmaxEndpoints(report) is None
    assert compute.summaryText(compute.NestedResult(meshes, names, report)).splitlines()[1] == "Dmax: not measured"


def test_failure_writes_no_output_and_says_why(tmp_path):
    sets = point_sets()
    sets[1] = PointSet(np.outer(np.linspace(0.0, 50.0, 20), [1.0, 0.0, 0.0]))
    files, outcome = run(tmp_path / "run", sets, compute.NestedOptions(preset="fast", iterations=20, threads=1))
    assert not outcome.ok and not outcome.cancelled and outcome.returncode == 2
    assert outcome.message.startswith("The input was rejected:")
    assert not list((tmp_path / "run").glob("walls_*.vtp"))


def test_cancel_stops_the_worker(tmp_path):
    seen = []
    start = time.perf_counter()
    files, outcome = run(tmp_path / "run", point_sets(), compute.NestedOptions(preset="accurate", threads=1), seen,
                         should_cancel=lambda: any(stage == "fit" for stage, _ in seen))
    assert outcome.cancelled and not outcome.ok
    assert time.perf_counter() - start < 30
    time.sleep(0.2)
    assert not list((tmp_path / "run").glob("walls_*.vtp"))
