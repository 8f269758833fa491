"""Coarse-to-fine sampling of a signed distance field near its level set.

Why the result equals dense sampling where it matters: if f is L-Lipschitz
(|∇f| ≤ L; L = 1 for a true signed distance, the eikonal property
|∇f| = 1), a cell of body diagonal d can hold a point of the level set only
if all its corners satisfy |f − level| ≤ L·d and one of them satisfies
|f − level| ≤ L·d/2. Starting from a dense coarse grid, only cells passing
this test are split; the field is evaluated at their children's new nodes
and every other node gets the trilinear interpolation of the coarser grid.
Every final cell that the surface crosses descends from split cells, so all
its corners carry the field's own values; every interpolated node lies in a
cell with no surface, so its sign (the sign of that cell's corners) is right.
Marching cubes therefore sees exactly the values dense sampling gives in
every cell that produces triangles: the mesh is identical.

Without the eikonal property (occupancy, badly trained networks) L can be
large; ``adapt`` estimates it on the coarsest grid, ``band_factor`` adds a
margin, and ``method="dense"`` is always available.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.meshing.grid import FieldEvaluator, geometry_grid, max_cell_diagonal


@dataclass
class SampledField:
    """Field values on every node of a grid.

    Attributes:
        values: (K, I, J, Kz) float64 mm, C order, one volume per field output.
        grid: Geometry of the nodes.
        n_evaluations: Points the field was evaluated at.
        levels: Coarse-to-fine refinements used (0 = dense).
        gradient_bound: L used to scale the band (1 for dense sampling).
    """

    values: np.ndarray
    grid: ImageGrid
    n_evaluations: int
    levels: int
    gradient_bound: float = 1.0


def level_shape(shape: tuple, level: int) -> tuple:
    """Node counts of the grid subsampled by 2**level (covering the full grid)."""
    step = 2**level
    return tuple(int(-(-(n - 1) // step)) + 1 for n in shape)


def choose_levels(shape: tuple, coarse_cells: int, max_levels: int) -> int:
    """Largest L ≤ max_levels whose coarsest grid keeps ≥ coarse_cells cells on the longest axis."""
    cells = max(shape) - 1
    levels = 0
    while levels < max_levels and cells / 2 ** (levels + 1) >= coarse_cells:
        levels += 1
    return levels


def _coarse_grid(grid: ImageGrid, level: int) -> ImageGrid:
    mat = grid.ijk_to_ras.copy()
    mat[:3, :3] *= 2**level
    return geometry_grid(level_shape(grid.shape, level), mat)


def _upsample(values: np.ndarray, shape: tuple) -> np.ndarray:
    """Trilinear ×2 upsampling of (K, a, b, c) node values onto (K, *shape) nodes.

    Fine node 2m coincides with coarse node m; fine node 2m+1 is the mean of
    coarse nodes m and m+1. Applied axis by axis (separable = trilinear).
    """
    out = values
    for axis, n_out in enumerate(shape, start=1):
        n_even, n_odd = (n_out + 1) // 2, n_out // 2
        new_shape = list(out.shape)
        new_shape[axis] = n_out
        up = np.empty(new_shape, dtype=out.dtype)

        def sl(s, _axis=axis):
            return (slice(None),) * _axis + (s,)

        up[sl(slice(0, None, 2))] = out[sl(slice(0, n_even))]
        odd = up[sl(slice(1, None, 2))]
        np.add(out[sl(slice(0, n_odd))], out[sl(slice(1, n_odd + 1))], out=odd)
        odd *= 0.5
        out = up
    return out


def _gradient_bound(values: np.ndarray, grid: ImageGrid, level: float, near: float) -> float:
    """Largest directional derivative |Δf|/edge length over coarse edges near the surface.

    By the mean value theorem it never exceeds the true Lipschitz constant,
    so an exact SDF gives ≤ 1; only edges with an end within ``near`` mm of
    the level set count (far-field behaviour does not matter for the band).
    """
    lengths = np.linalg.norm(grid.ijk_to_ras[:3, :3], axis=0)
    best = 0.0
    for axis in range(3):
        a = np.take(values, np.arange(values.shape[axis + 1] - 1), axis=axis + 1)
        b = np.take(values, np.arange(1, values.shape[axis + 1]), axis=axis + 1)
        close = np.minimum(np.abs(a - level), np.abs(b - level)) < near
        if np.any(close):
            best = max(best, float(np.max(np.abs(a - b)[close])) / lengths[axis])
    return best


def dense_sample(evaluator: FieldEvaluator, grid: ImageGrid, span=(0.0, 1.0)) -> SampledField:
    """Evaluate the field at every node of ``grid``, chunk by chunk into one preallocated array."""
    n = int(np.prod(grid.shape))
    before = evaluator.n_evaluations
    values = None
    step = evaluator.chunk_size
    for start in range(0, n, step):
        stop = min(n, start + step)
        sub = (span[0] + (span[1] - span[0]) * start / n, span[0] + (span[1] - span[0]) * stop / n)
        vals = evaluator.at_nodes(grid, np.arange(start, stop, dtype=np.int64), sub)
        if values is None:
            values = np.empty((vals.shape[1], n), dtype=np.float64)
        values[:, start:stop] = vals.T
    return SampledField(values.reshape((values.shape[0],) + grid.shape), grid, evaluator.n_evaluations - before, 0)


_CORNERS = np.array([(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=np.int64)


def _reach_table(ijk_to_ras: np.ndarray) -> np.ndarray:
    """(8, 8) mm: farthest distance from corner j of a cell to its child (octant) a.

    Along an axis the child spans half the cell: the farthest point is half a
    cell away from the corner it shares with the child, a whole cell from the
    other. Sheared grids: maximum over the four body-diagonal sign patterns.
    """
    cols = np.asarray(ijk_to_ras, dtype=np.float64)[:3, :3]
    signs = np.array([(1, 1, 1), (1, 1, -1), (1, -1, 1), (-1, 1, 1)], dtype=np.float64)
    table = np.empty((8, 8))
    for a, child in enumerate(_CORNERS):
        for j, corner in enumerate(_CORNERS):
            w = np.where(child == corner, 0.5, 1.0)
            table[a, j] = np.max(np.linalg.norm((signs * w) @ cols.T, axis=1))
    return table


def _refine(values: np.ndarray, shape: tuple, cells: np.ndarray, level: float, lipschitz: float,
            ijk_to_ras: np.ndarray, fine_shape: tuple, chunk: int = 1 << 19) -> np.ndarray:
    """Children of ``cells`` that may contain the level set, as flat fine-cell indices.

    If f is L-Lipschitz and a child holds a point p of the level set, every
    corner c_j of the parent satisfies |f(c_j) − level| ≤ L·|c_j − p| ≤ L·D[a, j]
    (D from :func:`_reach_table`). Children failing any corner test hold no
    surface. ``lipschitz`` = band_factor · L; all corners of ``cells`` must be exact.
    """
    # The relative margin keeps exact ties (a corner exactly L·D from a surface
    # point, common for analytic fields on aligned grids) on the safe side of rounding.
    table = lipschitz * (1.0 + 1e-6) * _reach_table(ijk_to_ras)
    cell_shape = tuple(n - 1 for n in shape)
    flat_values = values.reshape(values.shape[0], -1)
    kids = []
    for start in range(0, len(cells), chunk):
        ijk = np.stack(np.unravel_index(cells[start:start + chunk], cell_shape), axis=1)
        corner_idx = np.ravel_multi_index(tuple((ijk[:, None, :] + _CORNERS[None]).transpose(2, 0, 1)), shape)
        dist = np.abs(flat_values[:, corner_idx] - level)                       # (K, n, 8)
        ok = np.all(dist[:, :, None, :] <= table[None, None], axis=3).any(axis=0)  # (n, 8 children)
        parent, child = np.nonzero(ok)
        kids.append(2 * ijk[parent] + _CORNERS[child])
    kids = np.concatenate(kids) if kids else np.zeros((0, 3), np.int64)
    # The coarse grid may overhang the fine one by one node; drop children outside.
    fine_cells = np.asarray([n - 1 for n in fine_shape])
    kids = kids[np.all(kids < fine_cells, axis=1)]
    return np.ravel_multi_index(tuple(kids.T), tuple(fine_cells))


def _new_nodes(cells: np.ndarray, shape: tuple) -> np.ndarray:
    """Sorted flat node indices of the corners of ``cells``, except nodes on the coarse lattice.

    Nodes with all-even indices coincide with coarse nodes, which are exact
    already (they are corners of refined, hence exact, coarse cells).
    """
    mask = np.zeros(shape, dtype=bool)
    ijk = np.stack(np.unravel_index(cells, tuple(n - 1 for n in shape)), axis=1)
    for corner in _CORNERS:
        mask[tuple((ijk + corner).T)] = True
    mask[::2, ::2, ::2] = False
    return np.flatnonzero(mask)


def narrowband_sample(
    evaluator: FieldEvaluator,
    grid: ImageGrid,
    level: float = 0.0,
    band_factor: float = 1.0,
    coarse_cells: int = 16,
    max_levels: int = 8,
    adapt: bool = True,
    span=(0.0, 1.0),
) -> SampledField:
    """Coarse-to-fine sampling: exact values in cells near the level set, trilinear elsewhere.

    Level by level, only cells that may contain the level set (see
    :func:`_refine`) are split, and the field is evaluated at the new
    nodes of their children; all other nodes take the trilinear value of the
    coarser grid.

    Args:
        evaluator: Chunked field caller (counts evaluations, polls cancel).
        grid: Final node grid (axis-aligned or oblique).
        level: Iso-value in mm.
        band_factor: Safety factor (≥ 1 keeps the exactness guarantee) on the Lipschitz reach.
        coarse_cells: Cells on the longest axis of the coarsest grid.
        max_levels: Most refinements.
        adapt: Scale the reach by the gradient bound estimated on the coarsest grid (if > 1).
        span: Progress fraction range to report in.

    Returns:
        SampledField with the final grid's values.
    """
    levels = choose_levels(grid.shape, coarse_cells, max_levels)
    if levels == 0:
        return dense_sample(evaluator, grid, span)
    before = evaluator.n_evaluations
    steps = np.linspace(span[0], span[1], levels + 2)
    coarse = dense_sample(evaluator, _coarse_grid(grid, levels), (steps[0], steps[1]))
    values, shape = coarse.values, coarse.grid.shape
    bound = 1.0
    if adapt:
        near = 2.0 * max_cell_diagonal(coarse.grid.ijk_to_ras)
        bound = max(1.0, _gradient_bound(values, coarse.grid, level, near))
    cells = np.arange(int(np.prod([n - 1 for n in shape])), dtype=np.int64)
    coarse_affine = coarse.grid.ijk_to_ras
    for lev in range(levels - 1, -1, -1):
        fine_grid = grid if lev == 0 else _coarse_grid(grid, lev)
        cells = _refine(values, shape, cells, level, band_factor * bound, coarse_affine, fine_grid.shape)
        values = _upsample(values, fine_grid.shape)
        todo = _new_nodes(cells, fine_grid.shape)
        step = levels - lev
        new = evaluator.at_nodes(fine_grid, todo, (steps[step], steps[step + 1]))
        values.reshape(values.shape[0], -1)[:, todo] = new.T
        shape, coarse_affine = fine_grid.shape, fine_grid.ijk_to_ras
    return SampledField(values, grid, evaluator.n_evaluations - before, levels, float(bound))
