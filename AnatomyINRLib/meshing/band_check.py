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
# The 12 edges of a cell as pairs of indices into _CORNERS (corners differing along one axis).
_EDGES = np.array([(a, b) for a in range(8) for b in range(a + 1, 8)
                   if np.count_nonzero(_CORNERS[a] != _CORNERS[b]) == 1], dtype=np.int64)


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
        self.keys = np.zeros(0, dtype=np.int64)      # sorted final-grid flat indices
        self.values = None                           # (n, K) mm

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
        keys, values = keys[keep], values[keep]
        if self.values is None:
            self.values = np.zeros((0, values.shape[1]))
        merged = np.concatenate([self.keys, keys])
        order = np.argsort(merged, kind="stable")
        merged_values = np.concatenate([self.values, values])[order]
        self.keys, first = np.unique(merged[order], return_index=True)
        self.values = merged_values[first]

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, positions into ``self.values``) for final-grid keys (−1 = never found)."""
        pos = np.clip(np.searchsorted(self.keys, keys), 0, max(len(self.keys) - 1, 0))
        found = (keys >= 0) & (len(self.keys) > 0)
        if len(self.keys):
            found &= self.keys[pos] == keys
        return found, pos

    def at_level(self, lev: int, flat: np.ndarray, span) -> np.ndarray:
        """(n, K) exact values at nodes ``flat`` of level ``lev``, evaluating only unknown ones."""
        flat = np.asarray(flat, dtype=np.int64)
        found, pos = self.lookup(self._final_keys(lev, flat))
        missing = ~found
        if not missing.any() and self.values is not None:
            return self.values[pos]
        new = self.evaluator.at_nodes(self.grid_at(lev), flat[missing], span)
        out = np.empty((len(flat), new.shape[1]))
        out[missing] = new
        if found.any():
            out[found] = self.values[pos[found]]
        self.remember(lev, flat[missing], new)  # after the lookup above: it replaces the arrays
        return out


def observed_bound(values: np.ndarray, shape: tuple, cells: np.ndarray, ijk_to_ras: np.ndarray,
                   level: float, near: float) -> float:
    """Largest |Δf|/length over the edges of ``cells`` (all corners exact) with an end within ``near`` mm of the level.

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
    cols = np.asarray(ijk_to_ras, dtype=np.float64)[:3, :3]
    lengths = np.linalg.norm((_CORNERS[_EDGES[:, 1]] - _CORNERS[_EDGES[:, 0]]) @ cols.T, axis=1)   # (12,)
    ijk = np.stack(np.unravel_index(cells, tuple(n - 1 for n in shape)), axis=1)
    corner_idx = np.ravel_multi_index(tuple((ijk[:, None, :] + _CORNERS[None]).transpose(2, 0, 1)), shape)
    corner_vals = values.reshape(values.shape[0], -1)[:, corner_idx]                  # (K, n, 8)
    a, b = corner_vals[:, :, _EDGES[:, 0]], corner_vals[:, :, _EDGES[:, 1]]          # (K, n, 12)
    close = np.minimum(np.abs(a - level), np.abs(b - level)) < near
    if not np.any(close):
        return 0.0
    return float(np.max((np.abs(a - b) / lengths)[close]))


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
