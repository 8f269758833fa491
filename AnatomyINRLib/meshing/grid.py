"""Sampling grids in RAS mm and chunked, cancellable field evaluation.

A grid here is an :class:`ImageGrid` whose nodes are the sample positions:
node (i, j, k) sits at ``ijk_to_ras @ (i, j, k, 1)``. Grids built for
meshing are axis-aligned; :mod:`labelmap` samples any (oblique) reference.
Geometry-only grids carry a zero-strided array, so they cost no memory.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.types import ImageGrid

# Working memory per grid node and field output: final float64 values, the
# coarse-to-fine upsampling temporaries and the marching cubes copy.
_BYTES_PER_NODE_OUTPUT = 16
# Per node regardless of outputs: band / exactness masks and flying-edges tables.
_BYTES_PER_NODE = 12


def check_bounds(bounds) -> np.ndarray:
    """Validate (2, 3) bounds [min corner, max corner] in RAS mm."""
    arr = np.asarray(bounds, dtype=np.float64)
    if arr.shape != (2, 3):
        raise InputError(f"bounds: expected a (2, 3) array [min corner, max corner] in mm, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError("bounds: contain NaN or infinity")
    if np.any(arr[1] < arr[0]):
        raise InputError(f"bounds: max corner {arr[1].tolist()} is below min corner {arr[0].tolist()} on some axis")
    return arr


def _node_counts(extent: np.ndarray, spacing: float) -> np.ndarray:
    # Small tolerance: an extent that is an exact multiple of the spacing must not gain a node.
    return np.maximum(np.ceil(extent / spacing - 1e-9).astype(np.int64) + 1, 2)


def grid_shape(bounds, spacing_mm: float, padding_mm: float = 0.0) -> tuple:
    """(I, J, K) node counts of :func:`make_grid` without building it."""
    b = check_bounds(bounds)
    return tuple(int(n) for n in _node_counts(b[1] - b[0] + 2 * padding_mm, spacing_mm))


def make_grid(bounds, spacing_mm: float, padding_mm: float = 0.0) -> ImageGrid:
    """Axis-aligned node grid covering ``bounds`` grown by ``padding_mm``.

    The node lattice is centred on the box, so rounding up to whole cells
    adds the same margin on both sides.

    Args:
        bounds: (2, 3) min and max corner in RAS mm.
        spacing_mm: Node spacing in mm.
        padding_mm: Margin added on every side in mm.

    Returns:
        Geometry-only ImageGrid (uint8 zero-strided array) of the node lattice.
    """
    b = check_bounds(bounds)
    if not (spacing_mm > 0 and math.isfinite(spacing_mm)):
        raise InputError(f"spacing_mm: expected a positive finite number, got {spacing_mm!r}")
    extent = b[1] - b[0] + 2 * padding_mm
    counts = _node_counts(extent, spacing_mm)
    slack = (counts - 1) * spacing_mm - extent
    origin = b[0] - padding_mm - slack / 2.0
    return geometry_grid(tuple(int(n) for n in counts), ImageGrid.make_affine(origin, [spacing_mm] * 3))


def geometry_grid(shape: tuple, ijk_to_ras: np.ndarray) -> ImageGrid:
    """An ImageGrid of ``shape`` without voxel storage (only its geometry is used)."""
    return ImageGrid(np.broadcast_to(np.zeros((), np.uint8), tuple(shape)), ijk_to_ras)


def estimate_memory_mb(shape: tuple, n_outputs: int = 1) -> float:
    """Working memory estimate of sampling and meshing a grid of ``shape`` nodes."""
    nodes = float(np.prod(np.asarray(shape, dtype=np.float64)))
    return nodes * (_BYTES_PER_NODE_OUTPUT * n_outputs + _BYTES_PER_NODE) / 2**20


def check_memory(bounds, spacing_mm: float, padding_mm: float, n_outputs: int, max_memory_mb: float) -> None:
    """Raise InputError, naming a spacing that would fit, if the grid is too large."""
    shape = grid_shape(bounds, spacing_mm, padding_mm)
    need = estimate_memory_mb(shape, n_outputs)
    if need <= max_memory_mb:
        return
    fit = spacing_mm * (need / max_memory_mb) ** (1.0 / 3.0)
    while estimate_memory_mb(grid_shape(bounds, fit, padding_mm), n_outputs) > max_memory_mb:
        fit *= 1.02
    fit = math.ceil(fit * 1000.0) / 1000.0
    raise InputError(
        f"spacing_mm: a {shape[0]}x{shape[1]}x{shape[2]} grid at {spacing_mm} mm needs about "
        f"{need:.0f} MB, above max_memory_mb={max_memory_mb:.0f}; use spacing_mm >= {fit} "
        f"or shrink the bounds or raise max_memory_mb"
    )


def check_planned_grid(bounds, spacing_mm: float, padding_mm: float, n_outputs: int = 1,
                       argument: str = "spacing_mm") -> None:
    """Before a fit: :func:`check_memory` with the extraction's limit (``MeshingConfig.max_memory_mb``,
    or less if the machine has less available); the message names ``argument``.

    Fitting takes minutes, extraction refuses a grid that cannot fit: checking
    the planned grid first makes a hopeless spacing fail in milliseconds.
    """
    from AnatomyINRLib.core.resources import available_memory_mb
    from AnatomyINRLib.meshing.config import MeshingConfig

    limit = MeshingConfig().max_memory_mb
    limit = min(limit, available_memory_mb() or limit)
    try:
        check_memory(bounds, spacing_mm, padding_mm, n_outputs, limit)
    except InputError as exc:
        raise InputError(str(exc).replace("spacing_mm", argument)) from None


def max_cell_diagonal(ijk_to_ras: np.ndarray) -> float:
    """Longest body diagonal of one grid cell in mm (oblique/sheared grids included)."""
    cols = np.asarray(ijk_to_ras, dtype=np.float64)[:3, :3]
    return max(
        float(np.linalg.norm(cols @ np.array(signs, dtype=np.float64)))
        for signs in itertools.product((1.0, -1.0), repeat=3)
    )


def node_positions(grid: ImageGrid, flat_index: np.ndarray) -> np.ndarray:
    """(N, 3) RAS mm of the nodes with C-order flat indices ``flat_index``."""
    ijk = np.stack(np.unravel_index(flat_index, grid.shape), axis=1).astype(np.float64)
    return grid.index_to_world(ijk)


class FieldEvaluator:
    """Calls a field in chunks, checks its output and counts evaluations.

    Args:
        field: Callable (N, 3) float64 RAS mm → (N,) or (N, K) float64 mm.
        chunk_size: Points per call.
        reporter: Progress and cancellation (polled after every chunk).
        expect_outputs: K the field must return (None: learnt from the first call).

    Attributes:
        n_evaluations: Points passed to the field so far.
        n_outputs: K, known after the first call.
    """

    def __init__(self, field: Callable, chunk_size: int = 65536, reporter: ProgressReporter | None = None,
                 expect_outputs: int | None = None) -> None:
        if not callable(field):
            raise InputError(f"field: expected a callable (N, 3) mm -> (N,) mm, got {type(field).__name__}")
        self.field = field
        self.chunk_size = int(chunk_size)
        self.reporter = reporter or ProgressReporter()
        self.n_evaluations = 0
        self.n_outputs: int | None = expect_outputs

    def _call(self, points: np.ndarray) -> np.ndarray:
        out = np.asarray(self.field(points), dtype=np.float64)
        if out.ndim == 1:
            out = out[:, None]
        if out.ndim != 2 or out.shape[0] != len(points):
            raise InputError(f"field: expected ({len(points)},) or ({len(points)}, K) values, got shape {out.shape}")
        if self.n_outputs is None:
            self.n_outputs = int(out.shape[1])
        elif out.shape[1] != self.n_outputs:
            raise InputError(
                f"field: returns {out.shape[1]} value(s) per point, expected {self.n_outputs} (for a K-output "
                f"field use extract_surfaces_multi, or select one output: lambda p: f(p)[:, k])"
            )
        bad = ~np.isfinite(out).all(axis=1)
        if np.any(bad):
            where = points[np.argmax(bad)].round(3).tolist()
            raise InputError(f"field: returned NaN or infinity at {int(bad.sum())} of {len(points)} points (first at RAS {where} mm)")
        self.n_evaluations += len(points)
        return out

    def at_nodes(self, grid: ImageGrid, flat_index: np.ndarray, span=(0.0, 1.0), stage: str = "extract") -> np.ndarray:
        """Evaluate at grid nodes given by C-order flat indices (positions built per chunk).

        Returns:
            (N, K) float64 values in mm.

        Raises:
            Cancelled: the caller asked to stop (checked after every chunk).
        """
        flat_index = np.asarray(flat_index, dtype=np.int64)
        return self._chunked(len(flat_index), lambda s, e: node_positions(grid, flat_index[s:e]), span, stage)

    def at_points(self, points: np.ndarray, span=(0.0, 1.0), stage: str = "extract") -> np.ndarray:
        """Evaluate at (N, 3) RAS mm points; returns (N, K) float64 mm."""
        pts = np.asarray(points, dtype=np.float64)
        return self._chunked(len(pts), lambda s, e: pts[s:e], span, stage)

    def _chunked(self, n: int, positions: Callable, span, stage: str) -> np.ndarray:
        parts = []
        for start in range(0, n, self.chunk_size):
            stop = min(n, start + self.chunk_size)
            parts.append(self._call(positions(start, stop)))
            self.reporter.report(stage, span[0] + (span[1] - span[0]) * stop / n,
                                 f"field evaluations: {self.n_evaluations}", evaluations=self.n_evaluations)
        if not parts:
            self.reporter.check_cancel()
            return np.zeros((0, self.n_outputs or 1))
        return np.concatenate(parts, axis=0)
