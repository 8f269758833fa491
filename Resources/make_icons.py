"""Draw the extension and module icons (128x128 PNG) with matplotlib.

Run from the repository root after changing a design:
    python Resources/make_icons.py
The PNGs are committed; Slicer and the Extensions Manager only read the files.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
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


def _smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Quílez's polynomial smooth minimum (the blend module's union)."""
    return np.minimum(a, b) - np.maximum(k - np.abs(a - b), 0.0) ** 2 / (4.0 * k)


def _segment_sdf(x: np.ndarray, y: np.ndarray, a, b, radius: float) -> np.ndarray:
    """2-D signed distance to a capsule (a vessel segment) from a to b."""
    p, d = np.stack([x - a[0], y - a[1]]), np.array([b[0] - a[0], b[1] - a[1]])
    t = np.clip((p[0] * d[0] + p[1] * d[1]) / (d @ d), 0.0, 1.0)
    return np.hypot(p[0] - t * d[0], p[1] - t * d[1]) - radius


def vessel_blend_icon(path: Path) -> None:
    """A bifurcation whose branches are joined by a rounded fillet (smooth union)."""
    fig, ax = _canvas()
    x, y = np.meshgrid(np.linspace(-1, 1, 256), np.linspace(-1, 1, 256))
    trunk = _segment_sdf(x, y, (0.0, 0.95), (0.0, 0.0), 0.24)
    left = _segment_sdf(x, y, (0.0, 0.0), (-0.7, -0.9), 0.17)
    right = _segment_sdf(x, y, (0.0, 0.0), (0.7, -0.9), 0.17)
    sdf = _smooth_min(_smooth_min(trunk, left, 0.25), right, 0.25)
    shade = np.clip(0.6 - 0.5 * x - 1.2 * np.clip(sdf + 0.2, 0, None), 0, 1)
    ax.imshow(np.ma.masked_where(sdf > 0, shade), extent=(-1, 1, -1, 1), origin="lower", cmap="Reds",
              vmin=-0.3, vmax=1.2)
    ax.contour(x, y, sdf, levels=[0.0], colors="#1b2a3a", linewidths=1.6)
    fig.savefig(path, dpi=SIZE_PX, transparent=True)
    plt.close(fig)


def nested_walls_icon(path: Path) -> None:
    """Lumen inside thrombus inside wall, the wall coloured by thickness."""
    fig, ax = _canvas()
    t = np.linspace(0, 2 * np.pi, 400)
    outer = 0.98 * _blob(t)
    inner = outer - 0.1 - 0.05 * np.cos(t)
    lumen = 0.45 * _blob(t + 0.5)
    for radius, color in ((outer, "#f2c14e"), (inner, "#f7e7c6"), (lumen, "#c0392b")):
        ax.fill(radius * np.cos(t), radius * np.sin(t), color=color, lw=0)
    ax.scatter(outer * np.cos(t), outer * np.sin(t), c=outer - inner, cmap="viridis", s=10, lw=0)
    ends = 0.98 * _blob(np.array([np.pi, 0.0]))
    ax.plot([-ends[0], ends[1]], [0.0, 0.0], color="#1b2a3a", lw=2.0)  # the Dmax line
    fig.savefig(path, dpi=SIZE_PX, transparent=True)
    plt.close(fig)


def pulmonary_segments_icon(path: Path) -> None:
    """Two lungs cut into coloured sectors around each hilum (the segments, in the library's colours) and the airways."""
    import sys

    sys.path.insert(0, str(ROOT))
    from AnatomyINRLib.pulmonary.config import SEGMENT_COLORS

    fig, ax = _canvas()
    x, y = np.meshgrid(np.linspace(-1, 1, 256), np.linspace(-1, 1, 256))
    image = np.zeros(x.shape + (4,))
    for side, labels in ((-1.0, range(1, 11)), (1.0, range(11, 19))):  # image left = patient right
        cx = side * 0.47
        inside = ((x - cx) / 0.42) ** 2 + ((y + 0.05) / 0.86) ** 2 < 1.0
        inside &= ~((side * (x - side * 0.05) < 0.22) & (y < -0.25))  # the heart's notch on the medial side
        angle = np.mod(np.arctan2(y - 0.15, side * (x - side * 0.12)) + np.pi, 2 * np.pi)
        labels = list(labels)
        sector = np.minimum((angle / (2 * np.pi) * len(labels)).astype(int), len(labels) - 1)
        colors = np.array([SEGMENT_COLORS[v] + (1.0,) for v in labels])
        image[inside] = colors[sector[inside]]
    ax.imshow(image, extent=(-1, 1, -1, 1), origin="lower")
    ax.plot([0.0, 0.0], [0.98, 0.35], color="#f4f1ea", lw=5.0, solid_capstyle="round")  # trachea
    for side in (-1.0, 1.0):
        ax.plot([0.0, side * 0.25, side * 0.36], [0.35, 0.15, -0.2], color="#f4f1ea", lw=3.2, solid_capstyle="round")
    fig.savefig(path, dpi=SIZE_PX, transparent=True)
    plt.close(fig)


def tree_synthesis_icon(path: Path) -> None:
    """A branching vessel tree (capsules of Murray-like radii, smoothly united) over a faint noise field."""
    fig, ax = _canvas()
    x, y = np.meshgrid(np.linspace(-1, 1, 256), np.linspace(-1, 1, 256))
    noise = np.random.default_rng(0).random((16, 16))  # the diffusion's noise, drawn as a faint grid
    ax.imshow(noise, extent=(-1, 1, -1, 1), origin="lower", cmap="Greys", vmin=0.0, vmax=5.0)
    branches = (((0.0, -0.95), (0.0, -0.25), 0.16), ((0.0, -0.25), (-0.5, 0.3), 0.12),
                ((0.0, -0.25), (0.45, 0.2), 0.12), ((-0.5, 0.3), (-0.75, 0.9), 0.08), ((-0.5, 0.3), (-0.1, 0.85), 0.08),
                ((0.45, 0.2), (0.85, 0.65), 0.08), ((0.45, 0.2), (0.35, 0.9), 0.08))
    sdf = None
    for a, b, radius in branches:
        part = _segment_sdf(x, y, a, b, radius)
        sdf = part if sdf is None else _smooth_min(sdf, part, 0.08)
    shade = np.clip(0.6 - 0.5 * x - 1.2 * np.clip(sdf + 0.2, 0, None), 0, 1)
    ax.imshow(np.ma.masked_where(sdf > 0, shade), extent=(-1, 1, -1, 1), origin="lower", cmap="Reds",
              vmin=-0.3, vmax=1.2)
    ax.contour(x, y, sdf, levels=[0.0], colors="#1b2a3a", linewidths=1.4)
    fig.savefig(path, dpi=SIZE_PX, transparent=True)
    plt.close(fig)


def shape_from_image_icon(path: Path) -> None:
    """A CT slice (grey, noisy) with the two chamber meshes on it: left ventricle and left atrium as smooth,
    shaded outlines with a few template-mesh edges, in the module's segment colours."""
    fig, ax = _canvas()
    rng = np.random.default_rng(12)
    x, y = np.meshgrid(np.linspace(-1, 1, 64), np.linspace(-1, 1, 64))
    slice_ = 0.35 + 0.25 * np.exp(-((x + 0.1) ** 2 + (y + 0.05) ** 2) / 0.35) + 0.06 * rng.normal(size=x.shape)
    square = np.hypot(np.maximum(np.abs(x) - 0.78, 0), np.maximum(np.abs(y) - 0.78, 0)) < 0.14
    ax.imshow(np.ma.masked_where(~square, slice_), extent=(-1, 1, -1, 1), origin="lower", cmap="gray",
              vmin=0, vmax=1)
    t = np.linspace(0, 2 * np.pi, 200)
    for (cx, cy, rx, ry, tilt, color) in ((-0.18, -0.22, 0.46, 0.34, -0.5, (0.75, 0.16, 0.18)),  # left ventricle
                                          (0.32, 0.36, 0.3, 0.24, 0.3, (0.96, 0.58, 0.45))):  # left atrium
        wobble = 1.0 + 0.06 * np.cos(3 * t + cx)
        px = cx + wobble * (rx * np.cos(t) * np.cos(tilt) - ry * np.sin(t) * np.sin(tilt))
        py = cy + wobble * (rx * np.cos(t) * np.sin(tilt) + ry * np.sin(t) * np.cos(tilt))
        ax.fill(px, py, color=color, lw=0, alpha=0.95)
        for k in range(0, 200, 25):  # template edges from the centre: a deformed sphere's mesh lines
            ax.plot([cx, px[k]], [cy, py[k]], color="white", lw=0.6, alpha=0.55)
        ax.plot(px, py, color="#1b2a3a", lw=1.6)
    fig.savefig(path, dpi=SIZE_PX, transparent=True)
    plt.close(fig)


def main() -> None:
    targets = {
        ROOT / "Resources/Icons/AnatomyINR.png": extension_icon,
        ROOT / "AnatomyINR/AnatomyINRSurfaceFromPoints/Resources/Icons/AnatomyINRSurfaceFromPoints.png":
            surface_from_points_icon,
        ROOT / "AnatomyINR/AnatomyINRVesselBlend/Resources/Icons/AnatomyINRVesselBlend.png": vessel_blend_icon,
        ROOT / "AnatomyINR/AnatomyINRNestedWalls/Resources/Icons/AnatomyINRNestedWalls.png": nested_walls_icon,
        ROOT / "AnatomyINR/AnatomyINRPulmonarySegments/Resources/Icons/AnatomyINRPulmonarySegments.png":
            pulmonary_segments_icon,
        ROOT / "AnatomyINR/AnatomyINRTreeSynthesis/Resources/Icons/AnatomyINRTreeSynthesis.png": tree_synthesis_icon,
        ROOT / "AnatomyINR/AnatomyINRShapeFromImage/Resources/Icons/AnatomyINRShapeFromImage.png": shape_from_image_icon,
    }
    for path, draw in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(path)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
