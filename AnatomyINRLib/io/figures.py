"""PNG figures of surfaces and points (matplotlib, offscreen)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from AnatomyINRLib.core.errors import DependencyError
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.io.atomic import atomic_path


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # optional dependency ("plot" extra)
        raise DependencyError("figures need matplotlib: pip install 'anatomy-inr[plot]'") from exc
    return plt


def _draw(ax, mesh: TriangleMesh, points: Optional[np.ndarray], colors: Optional[np.ndarray], view) -> None:
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    tri = mesh.vertices[mesh.faces]
    light = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    shade = 0.35 + 0.65 * np.clip(mesh.face_normals() @ light, 0, 1)
    face_colors = np.column_stack([0.85 * shade, 0.35 * shade, 0.3 * shade, np.full(len(shade), 0.9)])
    ax.add_collection3d(Poly3DCollection(tri, facecolors=face_colors, linewidths=0))
    if points is not None:
        ax.scatter(*points.T, s=6, c="k" if colors is None else colors, cmap="viridis", depthshade=False)
    lo, hi = mesh.bounds()
    mid, half = (lo + hi) / 2, float(np.max(hi - lo)) / 2
    for setter, m in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), mid):
        setter(m - half, m + half)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(*view)
    ax.set_xlabel("R (mm)")
    ax.set_ylabel("A (mm)")
    ax.set_zlabel("S (mm)")


def render_meshes_png(
    path,
    meshes: Sequence[TriangleMesh],
    titles: Sequence[str],
    points: Optional[np.ndarray] = None,
    point_colors: Optional[np.ndarray] = None,
    suptitle: str = "",
    view=(15, -60),
    dpi: int = 110,
) -> None:
    """Side-by-side shaded renderings of meshes (RAS mm axes), written atomically.

    Args:
        path: Output .png path.
        meshes: Meshes to draw, one panel each.
        titles: Panel titles.
        points: Optional (N, 3) points drawn on every panel.
        point_colors: Optional (N,) scalars colouring the points (e.g. residual mm).
        suptitle: Figure title.
        view: (elevation, azimuth) in degrees.
        dpi: Resolution (pixels per inch of a 5 × 5.5 inch panel; 60 for small page figures).
    """
    plt = _pyplot()
    fig = plt.figure(figsize=(5 * len(meshes), 5.5), dpi=dpi)
    for i, (mesh, title) in enumerate(zip(meshes, titles)):
        ax = fig.add_subplot(1, len(meshes), i + 1, projection="3d")
        _draw(ax, mesh, points, point_colors, view)
        ax.set_title(title, fontsize=10)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def render_histograms_png(path, panels: dict, suptitle: str = "") -> None:
    """One histogram panel per quantity, the sets overlaid with shared bins; written atomically.

    Args:
        path: Output .png path.
        panels: quantity label (e.g. "total length (mm)") → {set name → 1-D values (None/NaN are left out)}.
        suptitle: Figure title.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), dpi=110, squeeze=False)
    for ax, (label, sets) in zip(axes[0], panels.items()):
        values = [np.array([np.nan if x is None else x for x in v], dtype=np.float64) for v in sets.values()]
        finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.zeros(0)
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 16)
        for name, v in zip(sets, values):
            ax.hist(v[np.isfinite(v)], bins=bins, alpha=0.5, density=True, label=f"{name} (n={len(v)})")
        ax.set_xlabel(label)
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
