"""Render the figure of docs/modules/AnatomyINRShapeFromImage.md from a real run.

The library's cardiac phantom (``small``: 2 mm, 80×80×72; seed 5100, neither a training nor an evaluation
seed) gives the CT and the true labels; the module's own computation
(``AnatomyINRShapeFromImageLib.compute``: worker files, arguments, result reading)
drives the real ``image-to-mesh predict`` worker with the shipped model; matplotlib
renders an axial and a coronal slice through the two chambers with the predicted
chambers (filled, in the segment colours) and the phantom's true outlines (white),
and a 3-D view of the two meshes. The numbers quoted in the user page (Dice of the
rasterised meshes against the phantom's labels, volumes, mesh checks, time) are
written next to the PNG as JSON.

Run from the repository root (under a minute on one CPU core):
    python docs/modules/scripts/make_shape_from_image_figure.py
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT), str(ROOT / "AnatomyINR"), str(ROOT / "AnatomyINR" / "AnatomyINRShapeFromImage")]

from AnatomyINRShapeFromImageLib import compute  # noqa: E402
from AnatomyINRSlicerLib.worker_protocol import (IMAGE_TO_MESH_PREDICT_STAGES, StagePlan,  # noqa: E402
                                                 library_search_dir, run_blocking, worker_command)

OUT = ROOT / "docs" / "modules" / "images"
SEED, SIZE = 5100, "small"  # outside the training (1000-1023) and evaluation (5000-5007) seeds


def run_worker(folder: Path, image):
    """The shipped model on ``image`` through the worker, one thread; (result, wall seconds)."""
    files = compute.WorkFiles(str(folder))
    command = worker_command(sys.executable, "image-to-mesh",
                             compute.workerArguments(files, compute.writeWorkerInputs(files, image)))
    start = time.perf_counter()
    outcome = run_blocking(command, StagePlan(IMAGE_TO_MESH_PREDICT_STAGES), cwd=library_search_dir(),
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    if not outcome.ok:
        raise SystemExit(outcome.message + "\n" + "\n".join(outcome.log_tail))
    return compute.readWorkerResult(files, image.shape), time.perf_counter() - start


def axis_of(grid, ras_axis: int) -> int:
    """The voxel axis (0-2) running along RAS axis ``ras_axis`` (the phantom's grid is axis-aligned)."""
    return int(np.argmax(np.abs(grid.ijk_to_ras[ras_axis, :3])))


def oriented_slice(grid, array: np.ndarray, fixed_ras: int, index: int) -> np.ndarray:
    """A 2-D slice with patient right on the viewer's left and superior/anterior up (radiological view)."""
    fixed = axis_of(grid, fixed_ras)
    plane = np.take(array, index, axis=fixed)
    rows_ras = 2 if fixed_ras != 2 else 1  # coronal: superior up; axial: anterior up
    remaining = [a for a in range(3) if a != fixed]
    plane = np.transpose(plane, (remaining.index(axis_of(grid, rows_ras)), remaining.index(axis_of(grid, 0))))
    if grid.ijk_to_ras[rows_ras, axis_of(grid, rows_ras)] > 0:
        plane = plane[::-1]
    if grid.ijk_to_ras[0, axis_of(grid, 0)] > 0:
        plane = plane[:, ::-1]
    return plane


def overlay(ax, phantom, predicted, fixed_ras: int, index: int, title: str) -> None:
    """CT slice, predicted chambers filled in their colours, the phantom's true outlines in white."""
    grid = phantom.image
    ax.imshow(oriented_slice(grid, np.asarray(grid.array, float), fixed_ras, index), cmap="gray", vmin=-300,
              vmax=600, interpolation="nearest")
    shown = oriented_slice(grid, np.asarray(predicted.array), fixed_ras, index)
    rgba = np.zeros(shown.shape + (4,))
    for value, name in compute.STRUCTURES.items():
        rgba[shown == value, :3] = compute.STRUCTURE_COLORS[name]
        rgba[shown == value, 3] = 0.55
    ax.imshow(rgba, interpolation="nearest")
    truth = oriented_slice(grid, np.asarray(phantom.labels.array), fixed_ras, index)
    for value in compute.STRUCTURES:
        if np.any(truth == value):
            ax.contour((truth == value).astype(float), levels=[0.5], colors="white", linewidths=0.9)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def meshes_3d(ax, meshes: dict) -> None:
    """The two meshes, flat-shaded in their colours."""
    light = np.array([0.4, -0.5, 0.75]) / np.linalg.norm([0.4, -0.5, 0.75])
    corners = []
    for name, mesh in meshes.items():
        triangles = mesh.vertices[mesh.faces]
        normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        shade = 0.45 + 0.55 * np.clip(normals @ light, 0, 1)
        colors = np.clip(np.outer(shade, compute.STRUCTURE_COLORS[name]), 0, 1)
        ax.add_collection3d(Poly3DCollection(triangles, facecolors=colors, edgecolors="none"))
        corners += [mesh.vertices.min(0), mesh.vertices.max(0)]
    low, high = np.min(corners, 0), np.max(corners, 0)
    centre, half = (low + high) / 2, (high - low).max() / 2
    for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre):
        setter(c - half, c + half)
    ax.view_init(elev=15, azim=-60)
    ax.set_axis_off()
    counts = " and ".join(str(len(mesh.vertices)) for mesh in meshes.values())
    ax.set_title(f"The two meshes ({counts} vertices)", fontsize=9)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


def render(phantom, result, seconds: float) -> dict:
    """Write the PNG and JSON; returns the numbers."""
    truth, predicted = np.asarray(phantom.labels.array), np.asarray(result.labels.array)
    voxel_ml = abs(float(np.linalg.det(phantom.labels.ijk_to_ras[:3, :3]))) / 1000.0
    numbers = {"phantom": {"seed": SEED, "size": SIZE, "shape": list(phantom.image.shape)},
               "checkpoint": Path(result.report.get("checkpoint") or "shipped model").name,  # a file name, no machine path
               "seconds_worker_one_thread": round(seconds, 1), "seconds_report": result.report.get("seconds"),
               "structures": {name: {**result.report["structures"][name],
                                     "dice_vs_phantom": round(dice(predicted == value, truth == value), 4),
                                     "true_volume_ml": round(float(np.count_nonzero(truth == value) * voxel_ml), 2)}
                              for value, name in compute.STRUCTURES.items()},
               "warnings": compute.warningLines(result.report)}
    centre = np.rint(np.argwhere(truth > 0).mean(0)).astype(int)  # between the two chambers: both in view
    fig = plt.figure(figsize=(11.5, 4.2), dpi=90)
    grid = phantom.image
    overlay(fig.add_subplot(1, 3, 1), phantom, result.labels, 2, int(centre[axis_of(grid, 2)]), "Axial slice")
    overlay(fig.add_subplot(1, 3, 2), phantom, result.labels, 1, int(centre[axis_of(grid, 1)]), "Coronal slice")
    meshes_3d(fig.add_subplot(1, 3, 3, projection="3d"), result.meshes)
    la, lv = (numbers["structures"][name] for name in compute.STRUCTURE_NAMES)
    fig.suptitle(f"Shipped model on a held-out cardiac phantom (2 mm): Dice left atrium {la['dice_vs_phantom']:.3f}, "
                 f"left ventricle {lv['dice_vs_phantom']:.3f}\nfilled: predicted (rasterised meshes); white: the "
                 "phantom's true outlines", fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.86, wspace=0.04)
    OUT.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    from PIL import Image

    Image.open(buffer).convert("RGB").quantize(colors=128).save(OUT / "AnatomyINRShapeFromImage.png", optimize=True)
    (OUT / "AnatomyINRShapeFromImage.json").write_text(json.dumps(numbers, indent=2) + "\n")
    return numbers


def main() -> None:
    from AnatomyINRLib.phantoms.cardiac import make_cardiac_phantom

    phantom = make_cardiac_phantom(SEED, SIZE)
    with tempfile.TemporaryDirectory() as folder:
        result, seconds = run_worker(Path(folder), phantom.image)
    print(json.dumps(render(phantom, result, seconds), indent=2))


if __name__ == "__main__":
    main()
