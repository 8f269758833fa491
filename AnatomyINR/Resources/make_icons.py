"""Draw the extension and module icons (128x128 PNG) with matplotlib.

Run from the repository root after changing a design:
    python AnatomyINR/Resources/make_icons.py
The PNGs are committed; Slicer and the Extensions Manager only read the files.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SIZE_PX = 128


def _canvas():
    fig = plt.figure(figsize=(1, 1), dpi=SIZE_PX)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _blob(theta: np.ndarray) -> np.ndarray:
    """Radius of a concave, vessel-like outline (a bulge with a waist)."""
    return 0.62 + 0.16 * np.cos(2 * theta) - 0.1 * np.cos(3 * theta + 0.6)


def _shaded_blob(ax, colormap: str) -> None:
    """Filled outline shaded like a lit surface, from an implicit (signed distance-like) field."""
    x, y = np.meshgrid(np.linspace(-1, 1, 256), np.linspace(-1, 1, 256))
    radius, theta = np.hypot(x, y), np.arctan2(y, x)
    sdf = radius - _blob(theta)
    shade = np.clip(0.55 + 0.45 * (-(x + y) / 1.6) - 0.6 * np.clip(sdf + 0.25, 0, None), 0, 1)
    image = np.ma.masked_where(sdf > 0, shade)
    ax.imshow(image, extent=(-1, 1, -1, 1), origin="lower", cmap=colormap, vmin=-0.3, vmax=1.2)
    t = np.linspace(0, 2 * np.pi, 400)
    ax.plot(_blob(t) * np.cos(t), _blob(t) * np.sin(t), color="#1b2a3a", lw=1.6)


def _points(ax, count: int, color: str) -> None:
    """Clicked surface points sitting on the outline."""
    t = np.linspace(0, 2 * np.pi, count, endpoint=False) + 0.2
    ax.scatter(_blob(t) * np.cos(t), _blob(t) * np.sin(t), s=30, c=color, edgecolors="white", linewidths=1.0, zorder=3)


def extension_icon(path: Path) -> None:
    fig, ax = _canvas()
    _shaded_blob(ax, "Reds")
    ax.text(0, -0.02, "INR", ha="center", va="center", fontsize=19, fontweight="bold", color="white")
    fig.savefig(path, dpi=SIZE_PX, transparent=True)
    plt.close(fig)


def surface_from_points_icon(path: Path) -> None:
    fig, ax = _canvas()
    _shaded_blob(ax, "Blues")
    _points(ax, 9, "#f2a900")
    fig.savefig(path, dpi=SIZE_PX, transparent=True)
    plt.close(fig)


def main() -> None:
    targets = {
        ROOT / "AnatomyINR/Resources/Icons/AnatomyINR.png": extension_icon,
        ROOT / "AnatomyINR/AnatomyINRSurfaceFromPoints/Resources/Icons/AnatomyINRSurfaceFromPoints.png":
            surface_from_points_icon,
    }
    for path, draw in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(path)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
