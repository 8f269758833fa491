"""Verification of the narrow band's gradient bound against exact field values.

The narrow band (:mod:`narrowband`) skips cells using a gradient bound L that
is only estimated. These helpers look for evidence that L was too small:
difference quotients |Δf|/length between exact values (each one is a lower
bound of the true Lipschitz constant, by the mean value theorem) and filled
(interpolated) values whose sign an exact evaluation contradicts. They also
remember every evaluated node so a restarted pass never evaluates one twice.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.meshing.grid import FieldEvaluator

_CORNERS = np.array([(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=np.int64)


# Unrefined coarse cells are checked if their centre's sign could be wrong for a
# true gradient bound up to this many times the band scale.
SUSPICION = 4.0


class KnownNodes:
    """Every field value evaluated so far, keyed by node of the final grid.

    Node m of the grid subsampled by 2**lev is node m·2**lev of the final
    grid (nodes of a coarse grid overhanging the final one are evaluated but
    not remembered).

    Args:
        evaluator: The chunked field caller that does the evaluations.
        grid: Final grid.
        grid_at: lev → the grid subsampled by 2**lev.
    """

    def __init__(self, evaluator: FieldEvaluator, grid: ImageGrid, grid_at: Callable[[int], ImageGrid]) -> None:
        self.evaluator, self.grid, self.grid_at = evaluator, grid, grid_at
        self._keys = np.zeros(0, dtype=np.int64)     # sorted final-grid flat indices
        self._values = None                          # (n, K) mm
        self._pending = []                           # (keys, values) not merged yet
        # One pass never asks for a node twice (each level evaluates only nodes
        # off the coarser lattice), so lookups are needed only once a pass restarts.
        self.reuse = False

    def _final_keys(self, lev: int, flat: np.ndarray) -> np.ndarray:
        ijk = np.stack(np.unravel_index(flat, self.grid_at(lev).shape), axis=1) * 2**lev
        inside = np.all(ijk < np.asarray(self.grid.shape), axis=1)
        keys = np.full(len(flat), -1, dtype=np.int64)
        keys[inside] = np.ravel_multi_index(tuple(ijk[inside].T), self.grid.shape)
        return keys

    def remember(self, lev: int, flat: np.ndarray, values: np.ndarray) -> None:
        """Store (n, K) exact values of nodes ``flat`` of level ``lev``."""
        keys = self._final_keys(lev, np.asarray(flat, dtype=np.int64))
        keep = keys >= 0
        self._pending.append((keys[keep], np.asarray(values)[keep]))

    def _merge(self) -> None:
        if not self._pending:
            return
        parts = ([self._keys] if self._values is not None else []) + [k for k, _ in self._pending]
        vals = ([self._values] if self._values is not None else []) + [v for _, v in self._pending]
        merged = np.concatenate(parts)
        order = np.argsort(merged, kind="stable")
        self._keys, first = np.unique(merged[order], return_index=True)
        self._values = np.concatenate(vals)[order][first]
        self._pending = []

    @property
    def keys(self) -> np.ndarray:
        """Sorted final-grid flat indices of every known node."""
        self._merge()
        return self._keys

    @property
    def values(self) -> np.ndarray:
        """(n, K) values of :attr:`keys`, mm."""
        self._merge()
        return self._values

    def at_level(self, lev: int, flat: np.ndarray, span) -> np.ndarray:
        """(n, K) exact values at nodes ``flat`` of level ``lev``, evaluating only unknown ones."""
        flat = np.asarray(flat, dtype=np.int64)
        if not self.reuse:
            new = self.evaluator.at_nodes(self.grid_at(lev), flat, span)
            self.remember(lev, flat, new)
            return new
        keys, values = self.keys, self.values
        wanted = self._final_keys(lev, flat)
        pos = np.clip(np.searchsorted(keys, wanted), 0, max(len(keys) - 1, 0))
        found = (wanted >= 0) & (keys[pos] == wanted) if len(keys) else np.zeros(len(flat), dtype=bool)
        new = self.evaluator.at_nodes(self.grid_at(lev), flat[~found], span)
        out = np.empty((len(flat), new.shape[1]))
        out[~found] = new
        out[found] = values[pos[found]]
        self.remember(lev, flat[~found], new)
        return out


def observed_bound(values: np.ndarray, shape: tuple, cells: np.ndarray, ijk_to_ras: np.ndarray,
                   level: float, near: float) -> float:
    """Largest |Δf|/length over edges of ``cells`` (all corners exact) with an end within ``near`` mm of the level.

    The three edges leaving each cell's lowest corner are used: together they
    cover every edge inside the refined region once (4× cheaper than all 12).

    Args:
        values: (K, *shape) node values; the corners of ``cells`` are exact.
        shape: Node counts of the grid.
        cells: Flat cell indices (C order over ``shape − 1``).
        ijk_to_ras: 4×4 node index → RAS mm.
        level: Iso-value in mm.
        near: Only edges with an end this close to the level count (mm).
    """
    if len(cells) == 0:
        return 0.0
    lengths = np.linalg.norm(np.asarray(ijk_to_ras, dtype=np.float64)[:3, :3], axis=0)
    base = np.ravel_multi_index(np.unravel_index(cells, tuple(n - 1 for n in shape)), shape)
    flat = values.reshape(values.shape[0], -1)
    a = flat[:, base] - level                                                  # (K, n)
    strides = (shape[1] * shape[2], shape[2], 1)
    best = 0.0
    for axis in range(3):
        b = flat[:, base + strides[axis]] - level
        close = np.minimum(np.abs(a), np.abs(b)) < near
        if np.any(close):
            best = max(best, float(np.max(np.abs(a - b)[close])) / lengths[axis])
    return best


def check_centres(known: KnownNodes, values: np.ndarray, lev: int, coarse_values: np.ndarray,
                  refined: np.ndarray, level: float, lipschitz: float, span) -> tuple[int, float]:
    """Check the filled sign at the centres of the coarsest cells left unrefined.

    The filled centre value is the mean of the cell's 8 corners. An exact value
    of the other sign needs a level crossing between the centre and every
    corner j, i.e. a true gradient bound ≥ max_j |f_j − level| / |c − c_j|.
    Centres where that is ≤ SUSPICION · ``lipschitz`` are evaluated (written
    into ``values``) and compared; a cell whose corners already differ in sign
    counts as wrong without evaluation (it holds a crossing the band skipped).

    Args:
        known: Evaluation cache.
        values: (K, *fine shape) values of level ``lev`` (one below the
            coarsest) after filling; modified in place.
        lev: Level of ``values``; the centre of coarse cell m is its node 2m + 1.
        coarse_values: (K, *coarse shape) exact values of the coarsest grid.
        refined: Flat indices of the level-``lev`` cells that were refined.
        level: Iso-value in mm.
        lipschitz: Band scale used (band_factor · L).
        span: Progress fraction range.

    Returns:
        (number of wrong signs found, largest centre-to-corner difference
        quotient: a lower bound of the true gradient bound).
    """
    fine_shape = values.shape[1:]
    coarse_shape = coarse_values.shape[1:]
    coarse_cells = tuple(n - 1 for n in coarse_shape)
    keep = np.ones(int(np.prod(coarse_cells)), dtype=bool)
    parents = np.stack(np.unravel_index(refined, tuple(n - 1 for n in fine_shape)), axis=1) // 2
    keep[np.ravel_multi_index(tuple(parents.T), coarse_cells)] = False
    ijk = np.stack(np.unravel_index(np.flatnonzero(keep), coarse_cells), axis=1)
    ijk = ijk[np.all(2 * ijk + 1 < np.asarray(fine_shape), axis=1)]
    corners = np.ravel_multi_index(tuple((ijk[:, None, :] + _CORNERS[None]).transpose(2, 0, 1)), coarse_shape)
    corner_values = coarse_values.reshape(coarse_values.shape[0], -1)[:, corners] - level    # (K, n, 8)
    cols = np.asarray(known.grid_at(lev).ijk_to_ras, dtype=np.float64)[:3, :3]
    reach = np.linalg.norm((2 * _CORNERS - 1) @ cols.T, axis=1)                            # centre → corner j, mm
    inside = corner_values < 0
    mixed = int(np.count_nonzero(inside.any(axis=2) & ~inside.all(axis=2)))
    suspect = (np.abs(corner_values) / reach).max(axis=2).min(axis=0) <= SUSPICION * lipschitz
    ijk, corner_values = ijk[suspect], corner_values[:, suspect]
    if len(ijk) == 0:
        return mixed, 0.0
    flat = values.reshape(values.shape[0], -1)
    centre_idx = np.ravel_multi_index(tuple((2 * ijk + 1).T), fine_shape)
    exact = known.at_level(lev, centre_idx, span).T - level                                # (K, n)
    wrong = mixed + int(np.count_nonzero((exact < 0) != (flat[:, centre_idx] < level)))
    flat[:, centre_idx] = exact + level
    return wrong, float((np.abs(corner_values - exact[:, :, None]) / reach).max())
