"""Render the figure of docs/modules/AnatomyINRNestedWalls.md from a real run.

200 points per surface are sampled on the library's nested AAA phantom (bent
aneurysm: eccentric lumen inside thrombus inside wall, known geometry); the
module's own computation (``AnatomyINRNestedWallsLib.compute``: worker files,
arguments, result reading, table rows, colour scale) drives the real
``fit-nested`` worker on one CPU thread; matplotlib renders offscreen. The
numbers quoted in the user page are written next to the PNG as JSON.

Run from the repository root (about a minute on one CPU core):
    python docs/modules/scripts/make_nested_walls_figure.py
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
from matplotlib.colors import ListedColormap  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "AnatomyINR"), str(ROOT / "AnatomyINR" / "AnatomyINRNestedWalls"), str(Path(__file__).parent)]

from AnatomyINRLib.phantoms.nested import NestedAAAPhantom  # noqa: E402
from AnatomyINRNestedWallsLib import compute  # noqa: E402
from AnatomyINRSlicerLib.worker_protocol import (FIT_NESTED_STAGES, StagePlan, library_search_dir,  # noqa: E402
                                                 run_blocking, worker_command)
from make_surface_from_points_figure import frame, shaded  # noqa: E402

OUT = ROOT / "docs" / "modules" / "images"
N_POINTS, SEED = 200, 0
OPTIONS = compute.NestedOptions(preset="default", minThicknessMm=0.5, spacingMm=1.0, seed=SEED, device="cpu", threads=1)


def thickness_colored(ax, mesh, value_range, alpha) -> None:
    """Triangles coloured by the mean thickness of their vertices on the module's colour scale."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    colors = compute.thicknessColors(256)
    t = mesh.point_data[compute.THICKNESS_ARRAY][mesh.faces].mean(axis=1)
    index = np.clip(np.round((t - value_range[0]) / (value_range[1] - value_range[0]) * 255), 0, 255).astype(int)
    ax.add_collection3d(Poly3DCollection(mesh.vertices[mesh.faces], facecolors=np.c_[colors[index], np.full(len(t), alpha)],
                                         edgecolors="none"))


def run_worker(folder: Path, point_sets) -> tuple:
    files = compute.WorkFiles(str(folder))
    paths = compute.writeWorkerInputs(files, point_sets)
    command = worker_command(sys.executable, "fit-nested", compute.workerArguments(files, paths, OPTIONS))
    start = time.perf_counter()
    outcome = run_blocking(command, StagePlan(FIT_NESTED_STAGES), cwd=library_search_dir())
    if not outcome.ok:
        raise SystemExit(outcome.message + "\n" + "\n".join(outcome.log_tail))
    return compute.readWorkerResult(files, compute.surfaceNames(len(point_sets))), time.perf_counter() - start


def main() -> None:
    phantom = NestedAAAPhantom()
    point_sets = phantom.sample_surfaces(N_POINTS, seed=SEED)
    with tempfile.TemporaryDirectory() as folder:
        result, seconds = run_worker(Path(folder), point_sets)
    report = result.report
    rows = compute.measurementRows(report)
    value_range = compute.thicknessRange(report)
    ends = compute.dmaxEndpoints(report)
    numbers = {"points_per_surface": N_POINTS, "preset": OPTIONS.preset, "min_thickness_mm": OPTIONS.minThicknessMm,
               "spacing_mm": OPTIONS.spacingMm, "seconds_one_cpu_thread": round(seconds, 1),
               "iterations": report["fit"]["iterations"],
               "table": [[measure, None if value is None else round(value, 3), unit] for measure, value, unit in rows],
               "field_violation_rate": report["violations"]["field"]["rate"],
               "phantom_volumes_mm3": {name: round(float(surface.volume()), 1)
                                       for name, surface in zip(result.names, phantom.surfaces())}}
    lumen, outer = result.meshes[0], result.meshes[-1]
    bounds = np.stack([outer.vertices.min(axis=0), outer.vertices.max(axis=0)])
    fig = plt.figure(figsize=(12, 4.6), dpi=110)
    ax = fig.add_subplot(1, 3, 1, projection="3d")
    for points, color in zip(point_sets, ("#c0392b", "#e1a340", "#5b6b7a")):
        ax.scatter(*points.points.T, s=4, c=color, depthshade=False)
    frame(ax, bounds, f"{N_POINTS} points per surface (lumen, inner, outer)")
    ax = fig.add_subplot(1, 3, 2, projection="3d")
    shaded(ax, lumen, np.array([0.80, 0.20, 0.18]))
    shaded(ax, outer, np.array([0.95, 0.76, 0.31]), alpha=0.25)
    ax.plot(*ends.T, color="black", lw=2.5)
    dmax = report["dmax"]["dmax_mm"]
    frame(ax, bounds, f"Lumen inside the outer wall; Dmax line {dmax:.1f} mm")
    ax = fig.add_subplot(1, 3, 3, projection="3d")
    thickness_colored(ax, lumen, value_range, alpha=1.0)
    frame(ax, bounds, "Lumen coloured by thrombus thickness")
    mappable = plt.cm.ScalarMappable(cmap=ListedColormap(compute.thicknessColors(256)),
                                     norm=plt.Normalize(*value_range))
    fig.colorbar(mappable, ax=ax, shrink=0.55, pad=0.0, label="thickness (mm)")
    fig.subplots_adjust(left=0.0, right=0.97, bottom=0.0, top=0.92, wspace=0.0)
    OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT / "AnatomyINRNestedWalls.png")
    (OUT / "AnatomyINRNestedWalls.json").write_text(json.dumps(numbers, indent=2) + "\n")
    print(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
