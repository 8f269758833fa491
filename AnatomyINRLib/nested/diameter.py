"""Maximum aneurysm diameter orthogonal to the centreline (Dmax).

Surgeons decide AAA repair on the maximum outer-wall diameter measured in
planes orthogonal to the vessel centreline (repair at ≥ 55 mm in men, ≥ 50 mm
in women; ESVS 2019 guidelines). Method:

1. Sample the outer-wall SDF on a grid (``meshing.sdf_volume``, narrow band:
   exact near the surface) and keep the largest inside component.
2. Centreline: 3-D skeleton of that mask (``skimage.morphology.skeletonize``,
   Lee et al. 1994) on a grid of ``skeleton_spacing_mm``; its longest geodesic
   path (two Dijkstra sweeps over the 26-connected skeleton voxels) runs from
   one vessel end to another (for a bifurcated AAA: aorta top to one iliac).
3. The path is resampled by arc length and Gaussian-smoothed (σ =
   ``smoothing_mm``) so its tangents do not follow voxel steps.
4. Every ``step_mm`` a plane orthogonal to the tangent is sampled from the SDF
   volume (trilinear); the inside region connected to the centreline point is
   contoured at 0 (sub-pixel, marching squares) and its maximum Feret
   diameter (largest distance between two boundary points, from the convex
   hull) is the section diameter. Dmax is the largest section diameter,
   reported with its centreline point, plane normal and the two end points.

Known limits: sections within ``end_margin_mm`` of the path ends are skipped
(skeleton ends are unreliable); at a bifurcation the orthogonal plane may cut
both branches, only the component holding the centreline point is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import ConvexHull, QhullError

from AnatomyINRLib.core.errors import FitError
from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.meshing.config import MeshingConfig
from AnatomyINRLib.meshing.grid import make_grid
from AnatomyINRLib.meshing.labelmap import sdf_volume


@dataclass
class DiameterResult:
    """Dmax and where it occurs (RAS mm).

    Attributes:
        dmax_mm: Maximum section diameter.
        center: (3,) centreline point of that section.
        normal: (3,) centreline tangent there (plane normal).
        endpoints: (2, 3) the two boundary points realising the diameter.
        arc_length_mm: Position of the section along the centreline from its start.
        centreline: (M, 3) smoothed centreline samples.
        diameters: (M,) section diameter at every sample (NaN where not measured).
    """

    dmax_mm: float
    center: np.ndarray
    normal: np.ndarray
    endpoints: np.ndarray
    arc_length_mm: float
    centreline: np.ndarray
    diameters: np.ndarray

    def to_dict(self) -> dict:
        """JSON-ready summary (without the per-sample arrays)."""
        return {"dmax_mm": self.dmax_mm, "center_mm": self.center.tolist(), "normal": self.normal.tolist(),
                "endpoints_mm": self.endpoints.tolist(), "arc_length_mm": self.arc_length_mm,
                "centreline_length_mm": float(np.linalg.norm(np.diff(self.centreline, axis=0), axis=1).sum())}


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n == 0:
        raise FitError("Dmax: the outer surface encloses no voxel on the sampling grid")
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (1 + int(np.argmax(sizes)))


def _longest_path(skeleton: np.ndarray) -> np.ndarray:
    """(P, 3) voxel indices of the longest geodesic path through 26-connected skeleton voxels."""
    idx = np.argwhere(skeleton)
    if len(idx) < 2:
        raise FitError("Dmax: the centreline skeleton is empty (vessel thinner than the skeleton grid?)")
    lookup = -np.ones(skeleton.shape, dtype=np.int64)
    lookup[tuple(idx.T)] = np.arange(len(idx))
    rows, cols, weights = [], [], []
    for off in np.array(np.meshgrid(*[[-1, 0, 1]] * 3, indexing="ij")).reshape(3, -1).T:
        if not off.any():
            continue
        nb = idx + off
        ok = np.all((nb >= 0) & (nb < skeleton.shape), axis=1)
        target = lookup[tuple(nb[ok].T)]
        keep = target >= 0
        rows.append(np.flatnonzero(ok)[keep])
        cols.append(target[keep])
        weights.append(np.full(int(keep.sum()), float(np.linalg.norm(off))))
    graph = coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(len(idx), len(idx))).tocsr()
    # The longest skeleton component first, then two sweeps give its geodesic diameter.
    dist = dijkstra(graph, indices=0)
    start = int(np.argmax(np.where(np.isfinite(dist), dist, -1)))
    dist, pred = dijkstra(graph, indices=start, return_predecessors=True)
    end = int(np.argmax(np.where(np.isfinite(dist), dist, -1)))
    path = [end]
    while path[-1] != start:
        path.append(int(pred[path[-1]]))
    return idx[np.asarray(path[::-1])]


def _smooth_curve(points: np.ndarray, step: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Resample a polyline every ``step`` mm, Gaussian-smooth it; return points and unit tangents."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] < 2 * step:
        raise FitError("Dmax: the centreline is too short to measure")
    t = np.arange(0.0, s[-1], step)
    curve = np.stack([np.interp(t, s, points[:, d]) for d in range(3)], axis=1)
    curve = ndimage.gaussian_filter1d(curve, sigma / step, axis=0, mode="nearest")
    tangent = np.gradient(curve, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-12)
    return curve, tangent


def centreline(inside: np.ndarray, grid: ImageGrid, skeleton_spacing_mm: float, step_mm: float,
               smoothing_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed centreline of the largest inside component of a mask.

    Args:
        inside: (I, J, K) bool mask on ``grid``.
        grid: Geometry of the mask (axis-aligned, isotropic spacing).
        skeleton_spacing_mm: The mask is subsampled to about this spacing before skeletonising.
        step_mm: Spacing of the returned samples.
        smoothing_mm: Gaussian σ along the curve.

    Returns:
        (points (M, 3) RAS mm, tangents (M, 3) unit vectors).
    """
    from skimage.morphology import skeletonize

    stride = max(1, int(round(skeleton_spacing_mm / float(grid.spacing[0]))))
    coarse = _largest_component(inside[::stride, ::stride, ::stride])
    path = _longest_path(skeletonize(np.pad(coarse, 1)) > 0) - 1
    return _smooth_curve(grid.index_to_world(path * stride), step_mm, smoothing_mm)


def _plane_frame(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(normal, u)


class _TooSmall(Exception):
    """The section window cut the region: retry with a larger one."""


def section_diameter(volume: ImageGrid, center: np.ndarray, normal: np.ndarray, half_size_mm: float,
                     pixel_mm: float) -> tuple[float, np.ndarray]:
    """Max Feret diameter (mm) of the SDF-volume section through ``center`` ⊥ ``normal``.

    Returns:
        (diameter, (2, 3) end points); (nan, nan array) when the centre lies outside.

    Raises:
        _TooSmall: the region reaches the window border (the caller enlarges it).
    """
    from skimage import measure

    u, v = _plane_frame(normal)
    n = int(np.ceil(2 * half_size_mm / pixel_mm)) + 1
    ax = (np.arange(n) - (n - 1) / 2) * pixel_mm
    pts = center + ax[:, None, None] * u + ax[None, :, None] * v
    ijk = volume.world_to_index(pts.reshape(-1, 3)).T
    values = ndimage.map_coordinates(volume.array, ijk, order=1, mode="nearest").reshape(n, n)
    labels, _ = ndimage.label(values < 0)
    mid = (n - 1) // 2
    if labels[mid, mid] == 0:
        return float("nan"), np.full((2, 3), np.nan)
    region = labels == labels[mid, mid]
    if region[[0, -1]].any() or region[:, [0, -1]].any():
        raise _TooSmall()
    # Only the region holding the centreline point: make every other pixel positive.
    masked = np.where(region, values, np.maximum(values, pixel_mm))
    contour = np.concatenate(measure.find_contours(np.pad(masked, 1, constant_values=pixel_mm), 0.0)) - 1
    xy = (contour - (n - 1) / 2) * pixel_mm
    try:
        hull = xy[ConvexHull(xy).vertices]
    except QhullError:
        return float("nan"), np.full((2, 3), np.nan)
    d = np.linalg.norm(hull[:, None] - hull[None], axis=2)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    ends = center + hull[[i, j], 0:1] * u + hull[[i, j], 1:2] * v
    return float(d[i, j]), ends


def max_diameter(field: Callable, bounds, *, spacing_mm: float = 0.5, skeleton_spacing_mm: float = 1.0,
                 step_mm: float = 1.0, smoothing_mm: float = 5.0, end_margin_mm: float = 10.0,
                 progress=None) -> DiameterResult:
    """Dmax of the solid {field < 0} orthogonal to its centreline (method in the module docstring).

    Args:
        field: Outer-wall SDF, callable (N, 3) RAS mm → (N,) mm (negative inside).
        bounds: (2, 3) box holding the solid, RAS mm (padded by 2 mm here).
        spacing_mm: SDF sampling grid (section accuracy ~ a tenth of it for smooth fields).
        skeleton_spacing_mm: Grid of the skeleton (coarser is faster).
        step_mm: Distance between measured sections.
        smoothing_mm: Gaussian σ of the centreline.
        end_margin_mm: Sections this close to either centreline end are not measured.
        progress: Reporter or callback (stage "sdf" while sampling).

    Raises:
        FitError: no inside region, no skeleton, or no measurable section.
    """
    grid = make_grid(np.asarray(bounds, dtype=np.float64), spacing_mm, 2.0)
    volume = sdf_volume(field, grid, progress, method="narrowband", config=MeshingConfig(spacing_mm=spacing_mm))
    inside = _largest_component(volume.array < 0)
    points, tangents = centreline(inside, volume, skeleton_spacing_mm, step_mm, smoothing_mm)
    arc = np.arange(len(points)) * step_mm
    limit = float(np.linalg.norm(np.ptp(volume.index_to_world(np.array([[0, 0, 0], volume.shape])), axis=0)))
    depth = -ndimage.map_coordinates(volume.array, volume.world_to_index(points).T, order=1, mode="nearest")
    diameters = np.full(len(points), np.nan)
    ends = np.full((len(points), 2, 3), np.nan)
    for m in np.flatnonzero((arc >= end_margin_mm) & (arc <= arc[-1] - end_margin_mm)):
        # Window: 3× the inscribed radius, doubled until the section region fits inside it.
        half = max(3.0 * float(depth[m]), 4.0 * spacing_mm)
        while True:
            try:
                diameters[m], ends[m] = section_diameter(volume, points[m], tangents[m], half, spacing_mm)
                break
            except _TooSmall:
                if half >= limit:
                    break
                half = min(2.0 * half, limit)
    if not np.any(np.isfinite(diameters)):
        raise FitError("Dmax: no cross-section could be measured along the centreline")
    best = int(np.nanargmax(diameters))
    return DiameterResult(float(diameters[best]), points[best], tangents[best], ends[best], float(arc[best]),
                          points, diameters)
