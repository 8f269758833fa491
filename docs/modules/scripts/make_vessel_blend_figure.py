"""Render the figure of docs/modules/AnatomyINRVesselBlend.md from real runs.

Inputs as the module gets them from the scene: two closed tube models (an
aorta-sized and a renal-sized cylinder crossing at right angles) and a point
list closing the aorta's top. The module's own computation
(``AnatomyINRVesselBlendLib.compute``) drives the real ``blend`` worker twice,
plain union (k = 0) and fillet k = 3 mm, on one CPU thread; matplotlib renders
offscreen. The quality numbers quoted in the user page are written next to the
PNG as JSON.

Run from the repository root (about half a minute on one CPU core):
    python docs/modules/scripts/make_vessel_blend_figure.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import vtk  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "AnatomyINR"), str(ROOT / "AnatomyINR" / "AnatomyINRVesselBlend"), str(Path(__file__).parent)]

from AnatomyINRLib.core.types import PointSet  # noqa: E402
from AnatomyINRSlicerLib.vtk_convert import meshFromPolyData  # noqa: E402
from AnatomyINRSlicerLib.worker_protocol import (BLEND_STAGES, StagePlan, library_search_dir, run_blocking,  # noqa: E402
                                                 worker_command)
from AnatomyINRVesselBlendLib import compute  # noqa: E402
from make_surface_from_points_figure import frame, shaded  # noqa: E402

OUT = ROOT / "docs" / "modules" / "images"
SPACING_MM = 0.5


def tube(radius: float, height: float, horizontal: bool):
    """A closed cylinder model along A (or R), as a TriangleMesh in RAS mm."""
    source = vtk.vtkCylinderSource()
    source.SetRadius(radius)
    source.SetHeight(height)
    source.SetResolution(48)
    transform = vtk.vtkTransform()
    if horizontal:
        transform.RotateZ(90.0)
    moved = vtk.vtkTransformFilter()
    moved.SetTransform(transform)
    moved.SetInputConnection(source.GetOutputPort())
    closed = vtk.vtkCleanPolyData()
    closed.SetInputConnection(moved.GetOutputPort())
    closed.Update()
    return meshFromPolyData(closed.GetOutput())


def cap_points(count: int = 150) -> PointSet:
    """Points on a 6 mm hemisphere-topped bulb around the aorta's top end (a clicked point list)."""
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return PointSet(np.array([0.0, 22.0, 0.0]) + 6.0 * directions)


def blend(sources, radius: float) -> tuple:
    options = compute.BlendOptions(radiusMm=radius, spacingMm=SPACING_MM, preset="fast", iterations=300,
                                   device="cpu", threads=1)
    with tempfile.TemporaryDirectory() as folder:
        files = compute.WorkFiles(folder)
        command = worker_command(sys.executable, "blend",
                                 compute.workerArguments(files, compute.writeWorkerInputs(files, sources), options))
        start = time.perf_counter()
        outcome = run_blocking(command, StagePlan(BLEND_STAGES), cwd=library_search_dir())
        if not outcome.ok:
            raise SystemExit(outcome.message + "\n" + "\n".join(outcome.log_tail))
        return compute.readWorkerResult(files, [s.name for s in sources]), time.perf_counter() - start


def main() -> None:
    sources = [compute.BlendSource("aorta (model)", tube(5.0, 40.0, False)),
               compute.BlendSource("renal (model)", tube(3.0, 40.0, True)),
               compute.BlendSource("bulb (point list)", cap_points())]
    runs = {radius: blend(sources, radius) for radius in (0.0, 3.0)}
    numbers = {}
    for radius, (result, seconds) in runs.items():
        q = compute.qualitySummary(result.report)
        numbers[f"k={radius:g}mm"] = {
            "seconds_one_cpu_thread": round(seconds, 1), "ok": q.ok, "watertight": q.watertight,
            "manifold": q.manifold, "components": q.components, "self_intersections": q.selfIntersections,
            "volume_mm3": round(q.volumeMm3, 1), "area_mm2": round(q.areaMm2, 1),
            "distance_to_inputs_away_from_junctions_mm": [
                {"input": row[0], "points_used": row[2], "mean": None if row[3] is None else round(row[3], 3),
                 "p95": None if row[4] is None else round(row[4], 3)} for row in compute.fidelityRows(result)]}
    bounds = np.array([[-21.0, -21.0, -6.0], [21.0, 29.0, 6.0]])
    view = dict(elev=35, azim=-60)
    fig = plt.figure(figsize=(12, 4.6), dpi=110)
    ax = fig.add_subplot(1, 3, 1, projection="3d")
    for source, color in zip(sources[:2], ((0.7, 0.7, 0.75), (0.6, 0.7, 0.85))):
        shaded(ax, source.data, np.array(color), alpha=0.6)
    ax.scatter(*sources[2].data.points.T, s=5, c="#f2a900", depthshade=False)
    frame(ax, bounds, "Inputs: 2 tube models + a point list")
    ax.view_init(**view)
    for panel, radius in enumerate((0.0, 3.0), start=2):
        ax = fig.add_subplot(1, 3, panel, projection="3d")
        shaded(ax, runs[radius][0].mesh, np.array([0.85, 0.37, 0.32]))
        label = "plain union (k = 0)" if radius == 0 else f"fillet k = {radius:g} mm"
        frame(ax, bounds, f"Blended, {label}")
        ax.view_init(**view)
    fig.subplots_adjust(left=0.0, right=1.0, bottom=0.0, top=0.92, wspace=0.0)
    OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT / "AnatomyINRVesselBlend.png")
    (OUT / "AnatomyINRVesselBlend.json").write_text(json.dumps(numbers, indent=2) + "\n")
    print(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
