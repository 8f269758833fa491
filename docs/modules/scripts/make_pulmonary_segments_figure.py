"""Render the figure of docs/modules/AnatomyINRPulmonarySegments.md from a real run.

The library's lung phantom (``full``: 1 mm, 300×250×250; seed 30, not a training
seed) gives the CT, lobes, airways and one labelled point per segmental bronchus;
the module's own computation (``AnatomyINRPulmonarySegmentsLib.compute``: worker
files, arguments, report reading, table rows) drives the real ``pulmonary
segments`` worker (Method A, points mode, with a nodule and a resection set);
matplotlib renders an axial and a coronal slice through the nodule with the 18
segment colours over the CT, and the legend with each segment's volume. The
numbers quoted in the user page (Dice against the phantom's segments, time,
planning rows) are written next to the PNG as JSON.

Run from the repository root (about a minute on one CPU core):
    python docs/modules/scripts/make_pulmonary_segments_figure.py
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT), str(ROOT / "AnatomyINR"), str(ROOT / "AnatomyINR" / "AnatomyINRPulmonarySegments")]

from AnatomyINRLib.core.types import PointSet  # noqa: E402
from AnatomyINRPulmonarySegmentsLib import compute  # noqa: E402
from AnatomyINRSlicerLib.worker_protocol import (PULMONARY_SEGMENTS_STAGES, StagePlan,  # noqa: E402
                                                 library_search_dir, run_blocking, worker_command)

OUT = ROOT / "docs" / "modules" / "images"
SEED, SIZE = 30, "full"
NODULE_SEGMENT, RESECT = "LUL S3", ["LUL S3"]
OPTIONS = compute.SegmentsOptions(preset="default")


def interior_point(segments, label: int) -> np.ndarray:
    """(1, 3) RAS mm of the ground-truth voxel of ``label`` deepest inside it (a nodule there)."""
    from scipy import ndimage

    mask = np.asarray(segments.array) == label
    depth = ndimage.distance_transform_edt(mask)
    return segments.index_to_world(np.array([np.unravel_index(np.argmax(depth), mask.shape)]))


def run_worker(folder: Path, inputs: compute.SegmentsInputs):
    files = compute.WorkFiles(str(folder))
    written = compute.writeWorkerInputs(files, inputs)
    command = worker_command(sys.executable, "pulmonary", compute.workerArguments(files, written, inputs.resect, OPTIONS))
    start = time.perf_counter()
    outcome = run_blocking(command, StagePlan(PULMONARY_SEGMENTS_STAGES), cwd=library_search_dir(),
                           env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    if not outcome.ok:
        raise SystemExit(outcome.message + "\n" + "\n".join(outcome.log_tail))
    return compute.readWorkerResult(files), time.perf_counter() - start


def axis_of(grid, ras_axis: int) -> int:
    """The voxel axis (0-2) running along RAS axis ``ras_axis`` (the phantom's grid is axis-aligned)."""
    return int(np.argmax(np.abs(grid.ijk_to_ras[ras_axis, :3])))


def oriented_slice(grid, array: np.ndarray, fixed_ras: int, index: int) -> np.ndarray:
    """A 2-D slice with patient right on the viewer's left and superior/anterior up (radiological view)."""
    fixed = axis_of(grid, fixed_ras)
    plane = np.take(array, index, axis=fixed)
    rows_ras = 2 if fixed_ras != 2 else 1  # coronal: superior up; axial: anterior up
    remaining = [a for a in range(3) if a != fixed]
    row_axis = remaining.index(axis_of(grid, rows_ras))
    col_axis = remaining.index(axis_of(grid, 0))
    plane = np.transpose(plane, (row_axis, col_axis))
    if grid.ijk_to_ras[rows_ras, axis_of(grid, rows_ras)] > 0:
        plane = plane[::-1]  # increasing S (or A) upwards
    if grid.ijk_to_ras[0, axis_of(grid, 0)] > 0:
        plane = plane[:, ::-1]  # increasing R (patient left) to the right of the viewer
    return plane


def overlay(ax, grid, ct, labels, fixed_ras: int, index: int, colors: np.ndarray, title: str) -> None:
    shown = oriented_slice(grid, np.asarray(ct.array, dtype=float), fixed_ras, index)
    ax.imshow(shown, cmap="gray", vmin=-1000, vmax=300, interpolation="nearest")
    seg = oriented_slice(grid, np.asarray(labels.array), fixed_ras, index)
    rgba = np.zeros(seg.shape + (4,))
    rgba[seg > 0, :3] = colors[seg[seg > 0]]
    rgba[seg > 0, 3] = 0.7
    ax.imshow(rgba, interpolation="nearest")
    ax.contour(seg, levels=np.arange(0.5, 19), colors="white", linewidths=0.3)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def main() -> None:
    from AnatomyINRLib import io as lio
    from AnatomyINRLib.metrics.segments import evaluate_labelmaps
    from AnatomyINRLib.phantoms.lung import make_lung_phantom
    from AnatomyINRLib.pulmonary import SEGMENT_COLORS, SEGMENT_NAMES

    phantom = make_lung_phantom(SEED, SIZE)
    nodule = interior_point(phantom.segments, compute.segmentValue(NODULE_SEGMENT))
    inputs = compute.SegmentsInputs(phantom.lobes, phantom.airways, ct=phantom.ct, segmentPoints=phantom.segment_points,
                                    nodule=PointSet(nodule), resect=list(RESECT))
    with tempfile.TemporaryDirectory() as folder:
        result, seconds = run_worker(Path(folder), inputs)
        labels = lio.read_image(result.segmentationFile)
    metrics = evaluate_labelmaps(labels, phantom.segments, names=SEGMENT_NAMES)
    rows = compute.tableRows(result.report)
    numbers = {"phantom": {"seed": SEED, "size": SIZE, "spacing_mm": 1.0, "shape": list(phantom.lobes.shape)},
               "method": "A, one point per segmental bronchus", "preset": OPTIONS.preset,
               "seconds_worker_one_thread": round(seconds, 1), "timings_s": result.report["timings_s"],
               "mean_dice_vs_phantom": round(float(metrics["dice"]), 4),
               "min_segment_dice": round(min(float(s["dice"]) for s in metrics["per_segment"].values()), 4),
               "table": [[r[0], None if r[1] is None else round(r[1], 2), None if r[2] is None else round(r[2], 2), r[3]]
                         for r in rows]}
    colors = np.zeros((19, 3))
    for value, color in SEGMENT_COLORS.items():
        colors[value] = color
    ijk = np.rint(labels.world_to_index(nodule)[0]).astype(int)
    fig = plt.figure(figsize=(11.5, 4.4), dpi=90)
    grid = labels
    overlay(fig.add_subplot(1, 3, 1), grid, phantom.ct, labels, 2, int(ijk[axis_of(grid, 2)]), colors,
            "Axial slice through the nodule (+)")
    overlay(fig.add_subplot(1, 3, 2), grid, phantom.ct, labels, 1, int(ijk[axis_of(grid, 1)]), colors,
            "Coronal slice through the nodule (+)")
    for index, ras in enumerate((2, 1)):
        ax = fig.axes[index]
        fixed = axis_of(grid, ras)
        marker = np.zeros(grid.shape, bool)
        marker[tuple(ijk)] = True
        where = np.argwhere(oriented_slice(grid, marker, ras, int(ijk[fixed])))[0]
        ax.plot(where[1], where[0], marker="+", color="black", markersize=14, mew=2.5)
        ax.plot(where[1], where[0], marker="+", color="white", markersize=11, mew=1.2)
    legend = fig.add_subplot(1, 3, 3)
    legend.axis("off")
    handles = [Patch(facecolor=colors[v], edgecolor="none", label=f"{name}  {row[1]:.0f} ml ({row[2]:.1f} %)")
               for v, (name, row) in enumerate(zip(compute.SEGMENT_NAMES, rows[:18]), start=1)]
    legend.legend(handles=handles, loc="center left", ncol=1, fontsize=7.5, frameon=False,
                  title="Segment  volume (% of both lungs)", title_fontsize=8)
    nodule_row = next(r for r in rows if r[0] == "Nodule")
    remaining = next(r for r in rows if r[0] == "Remaining lung")
    fig.suptitle(f"Method A from one point per segmental bronchus (lung phantom, 1 mm): mean Dice {metrics['dice']:.3f} "
                 f"against the phantom's segments\nNodule {nodule_row[3]}; resecting {', '.join(RESECT)} leaves "
                 f"{remaining[2]:.1f} % of both lungs", fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.86, wspace=0.04)
    OUT.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    from PIL import Image

    Image.open(buffer).convert("RGB").quantize(colors=128).save(OUT / "AnatomyINRPulmonarySegments.png", optimize=True)
    (OUT / "AnatomyINRPulmonarySegments.json").write_text(json.dumps(numbers, indent=2) + "\n")
    print(json.dumps({k: v for k, v in numbers.items() if k != "table"}, indent=2))


if __name__ == "__main__":
    main()
