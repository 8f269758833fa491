"""Render the figure of docs/modules/AnatomyINRSurfaceFromPoints.md from a real run.

200 points are sampled on the vmtk abdominal aorta (``Testing/Data/vmtk``,
a patient-derived surface) as a user would click them; the module's own
computation (``AnatomyINRSurfaceFromPointsLib.compute.fitSurface``, the same
options as the worker) fits the surface; matplotlib renders it offscreen.
The numbers quoted in the user page are written next to the PNG as JSON.

Run from the repository root (about a minute on one CPU core):
    python docs/modules/scripts/make_surface_from_points_figure.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "AnatomyINR"), str(ROOT / "AnatomyINR" / "AnatomyINRSurfaceFromPoints")]

from AnatomyINRLib.io.meshes import read_mesh  # noqa: E402
from AnatomyINRLib.metrics import sample_surface, surface_distances  # noqa: E402
from AnatomyINRSurfaceFromPointsLib import compute  # noqa: E402

AORTA = Path(__file__).resolve().parents[3] / "Testing" / "Data" / "vmtk" / "aorta-surface.stl"
OUT = ROOT / "docs" / "modules" / "images"
N_POINTS, SEED, THRESHOLD_MM = 200, 0, 1.0
VIEW = dict(elev=25, azim=-35)


def shaded(ax, mesh, color, alpha=1.0) -> None:
    """Flat-shaded triangles lit from the viewer's upper left."""
    triangles = mesh.vertices[mesh.faces]
    light = np.array([-0.4, -0.8, 0.5])
    light /= np.linalg.norm(light)
    intensity = 0.35 + 0.65 * np.clip(mesh.face_normals() @ light, 0, 1)
    colors = np.clip(np.asarray(color)[None, :] * intensity[:, None], 0, 1)
    ax.add_collection3d(Poly3DCollection(triangles, facecolors=np.c_[colors, np.full(len(colors), alpha)],
                                         edgecolors="none"))


def frame(ax, bounds, title: str) -> None:
    """Tight, equally scaled orthographic view of the box."""
    pad = 2.0
    for setter, lo, hi in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), bounds[0] - pad, bounds[1] + pad):
        setter(lo, hi)
    ax.set_box_aspect(tuple(bounds[1] - bounds[0] + 2 * pad), zoom=1.0)
    ax.set_proj_type("ortho")
    ax.view_init(**VIEW)
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)


def main() -> None:
    import torch

    torch.set_num_threads(1)
    truth = read_mesh(AORTA)  # oriented outward on reading
    points, _ = sample_surface(truth, N_POINTS, seed=SEED)
    options = compute.SurfaceOptions(preset="default", smoothness=0.5, spacingMm=0.5, seed=SEED, device="cpu")
    start = time.perf_counter()
    result = compute.fitSurface(points, options)
    seconds = time.perf_counter() - start
    distances = surface_distances(result.mesh, truth, n_samples=20000, seed=SEED)
    numbers = {
        "points": N_POINTS, "preset": options.preset, "spacing_mm": options.spacingMm,
        "seconds_one_cpu_thread": round(seconds, 1), "iterations": result.report.get("iterations"),
        "area_mm2": round(result.areaMm2, 1), "volume_mm3": round(result.volumeMm3, 1),
        "true_area_mm2": round(truth.area(), 1), "true_volume_mm3": round(abs(truth.signed_volume()), 1),
        "residual_median_mm": round(float(np.median(result.residualsMm)), 3),
        "residual_max_mm": round(float(result.residualsMm.max()), 3),
        "outliers_over_1mm": int(compute.outlierMask(result.residualsMm, THRESHOLD_MM).sum()),
        "asd_to_true_surface_mm": round(distances["asd"], 3), "hd95_to_true_surface_mm": round(distances["hd95"], 3),
    }
    both = np.concatenate([truth.vertices, result.mesh.vertices])
    bounds = np.stack([both.min(axis=0), both.max(axis=0)])
    fig = plt.figure(figsize=(12, 4.2), dpi=110)
    ax = fig.add_subplot(1, 3, 1, projection="3d")
    shaded(ax, truth, np.array([0.75, 0.75, 0.78]), alpha=0.2)
    ax.scatter(*points.T, s=7, c="#f2a900", depthshade=False)
    frame(ax, bounds, f"{N_POINTS} points on the aorta (true surface faint)")
    ax = fig.add_subplot(1, 3, 2, projection="3d")
    shaded(ax, result.mesh, np.array([0.89, 0.42, 0.33]))
    frame(ax, bounds, f"Fitted surface ({options.preset}, {seconds:.0f} s on 1 CPU core)")
    ax = fig.add_subplot(1, 3, 3, projection="3d")
    shaded(ax, truth, np.array([0.75, 0.75, 0.78]), alpha=0.35)
    scatter = ax.scatter(*points.T, s=9, c=result.residualsMm, cmap="viridis", vmin=0, vmax=THRESHOLD_MM,
                         depthshade=False)
    frame(ax, bounds, f"Point distance to fit (ASD to true surface {distances['asd']:.2f} mm)")
    fig.colorbar(scatter, ax=ax, shrink=0.55, pad=0.0, label="distance to fitted surface (mm)")
    fig.subplots_adjust(left=0.0, right=0.97, bottom=0.0, top=0.92, wspace=0.0)
    OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT / "AnatomyINRSurfaceFromPoints.png")
    (OUT / "AnatomyINRSurfaceFromPoints.json").write_text(json.dumps(numbers, indent=2) + "\n")
    print(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
