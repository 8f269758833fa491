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

L is not known for a learned field, and an estimate can be too small (a
floater or a steep fold between coarse nodes). With ``adapt``:

1. L is estimated from the coarsest grid's edges near the level set (plus a
   5 % margin when above 1);
2. every pass is then checked against exact values (:mod:`band_check`):
   each edge of each refined cell at every level gives a difference quotient
   |Δf|/length ≤ true L, and the centre of each coarsest cell left unrefined
   whose filled sign could flip under a true bound ≤ 4× the band scale is
   evaluated and its sign compared;
3. any quotient above the band scale (2 % tolerance) or any contradicted sign
   proves the band too thin: L is raised to what was seen and the pass is
   redone (evaluated nodes are reused); after 4 such restarts the remaining
   nodes are evaluated densely.

What is then guaranteed: the returned values are exact at every evaluated
node, no exact value seen contradicts the L used, and every checked centre
has its true sign. The mesh equals the dense one whenever |∇f| ≤
band_factor · L holds near the level set (an assumption about f that no
finite sampling can prove); a feature the checks never touch (a surface
component inside one coarse cell, away from its centre, in a region where
f changes faster than 4× the band scale) can still be missed, as it can by
any sampling coarser than the feature. ``method="dense"`` evaluates every
node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.meshing.band_check import (
    _CORNERS,
    KnownNodes,
    check_centres,
    observed_bound,
)
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


# Passes before giving up on the band and sampling densely (a field steep enough
# to need more is better served by dense sampling; known values are reused).
_MAX_RESTARTS = 4
# A difference quotient up to 2 % above the band scale is accepted: the coarse
# estimate of an exactly L-Lipschitz field is a hair below L (secants are
# shorter than tangents), and a restart for that would double the cost.
_TOLERANCE = 1.02
# Margin over the largest quotient seen when L is raised, and the least raise
# after a wrong sign (whose quotient can be far below the true bound).
_GROWTH, _SIGN_GROWTH = 1.05, 4.0


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

    With ``adapt`` the gradient bound L is estimated on the coarsest grid and
    then checked against exact values: the centres of the coarse cells left
    unrefined whose filled sign a bound up to 4× the band scale could flip are
    evaluated, and the edges of the refined cells give difference quotients.
    A wrong sign or a quotient above the band scale proves L too small: L is
    raised to what was seen and sampling restarts (after 4 restarts: dense
    sampling). What is then guaranteed is stated in the module docstring.

    Args:
        evaluator: Chunked field caller (counts evaluations, polls cancel).
        grid: Final node grid (axis-aligned or oblique).
        level: Iso-value in mm.
        band_factor: Safety factor (≥ 1 keeps the exactness guarantee) on the Lipschitz reach.
        coarse_cells: Cells on the longest axis of the coarsest grid.
        max_levels: Most refinements.
        adapt: Estimate and verify the gradient bound (else L = 1 is assumed, as for an exact SDF).
        span: Progress fraction range to report in.

    Returns:
        SampledField with the final grid's values; ``gradient_bound`` is the L finally used.
    """
    levels = choose_levels(grid.shape, coarse_cells, max_levels)
    if levels == 0:
        return dense_sample(evaluator, grid, span)
    before = evaluator.n_evaluations
    steps = np.linspace(span[0], span[1], levels + 2)
    known = KnownNodes(evaluator, grid, lambda lev: grid if lev == 0 else _coarse_grid(grid, lev))
    coarse = dense_sample(evaluator, known.grid_at(levels), (steps[0], steps[1]))
    flat_coarse = coarse.values.reshape(coarse.values.shape[0], -1)
    known.remember(levels, np.arange(flat_coarse.shape[1]), flat_coarse.T)
    bound = 1.0
    if adapt:
        near = 2.0 * max_cell_diagonal(coarse.grid.ijk_to_ras)
        estimate = _gradient_bound(coarse.values, coarse.grid, level, near)
        # Coarse secants under-estimate the steepest slope: above 1 (not an exact
        # SDF), start with the margin a restart would add anyway.
        bound = _GROWTH * estimate if estimate > 1.0 else 1.0
    for attempt in range(_MAX_RESTARTS + 1):
        # A restarted pass reports at the end of the range (progress never goes back).
        pass_steps = steps if attempt == 0 else np.full_like(steps, steps[-1])
        values, wrong_signs, seen = _pyramid(known, coarse, levels, level, band_factor * bound, adapt, pass_steps)
        if not wrong_signs and seen <= _TOLERANCE * band_factor * bound:
            return SampledField(values, grid, evaluator.n_evaluations - before, levels, float(bound))
        known.reuse = True
        # Evidence that L was too small: raise it to what was seen, with a margin.
        # Known values are reused, so a restart costs only the nodes the wider band adds.
        bound = _GROWTH * max(seen / band_factor, (_SIGN_GROWTH if wrong_signs else 1.0) * bound)
    return SampledField(_dense_from(known, grid, (steps[-2], steps[-1])), grid,
                        evaluator.n_evaluations - before, 0, float(bound))


def _dense_from(known: KnownNodes, grid: ImageGrid, span) -> np.ndarray:
    """(K, *grid.shape) exact values at every node, evaluating only the nodes not known yet."""
    n = int(np.prod(grid.shape))
    values = np.empty((known.values.shape[1], n))
    missing = np.ones(n, dtype=bool)
    missing[known.keys] = False
    values[:, known.keys] = known.values.T
    todo = np.flatnonzero(missing)
    values[:, todo] = known.evaluator.at_nodes(grid, todo, span).T
    return values.reshape((values.shape[0],) + grid.shape)


def _pyramid(known: KnownNodes, coarse: SampledField, levels: int, level: float, lipschitz: float,
             verify: bool, steps) -> tuple[np.ndarray, int, float]:
    """One coarse-to-fine pass with band scale ``lipschitz`` (= band_factor · L).

    Returns:
        (values on the final grid, number of checked nodes whose filled sign
        was wrong, largest difference quotient of exact values seen; both 0
        without ``verify``).
    """
    values, shape, coarse_affine = coarse.values.copy(), coarse.grid.shape, coarse.grid.ijk_to_ras
    cells = np.arange(int(np.prod([n - 1 for n in shape])), dtype=np.int64)
    seen = 0.0
    for lev in range(levels - 1, -1, -1):
        fine_grid = known.grid_at(lev)
        cells = _refine(values, shape, cells, level, lipschitz, coarse_affine, fine_grid.shape)
        values = _upsample(values, fine_grid.shape)
        todo = _new_nodes(cells, fine_grid.shape)
        step_span = (steps[levels - lev], steps[levels - lev + 1])
        values.reshape(values.shape[0], -1)[:, todo] = known.at_level(lev, todo, step_span).T
        shape, coarse_affine = fine_grid.shape, fine_grid.ijk_to_ras
        if not verify:
            continue
        if lev == levels - 1:
            wrong, quotient = check_centres(known, values, lev, coarse.values, cells, level, lipschitz,
                                            (step_span[1], step_span[1]))
            if wrong:
                return values, wrong, quotient
            seen = max(seen, quotient)
        near = 2.0 * max_cell_diagonal(fine_grid.ijk_to_ras)
        seen = max(seen, observed_bound(values, shape, cells, fine_grid.ijk_to_ras, level, near))
    return values, 0, seen
