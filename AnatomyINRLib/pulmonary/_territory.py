"""Geodesic nearest-branch territories inside each lobe (Method A, step 1).

The lobes, labelled bronchi (and optional artery/vein masks) are brought onto a
coarser *work grid* (integer subsampling to about ``work_spacing_mm``). Inside
each lobe, the work voxels form a graph (26-neighbourhood, edge length = the
physical distance between voxel centres, times the mean of the two voxels'
costs: ``vein_cost`` inside veins, 1 elsewhere). A multi-source Dijkstra from
all labelled voxels gives every lobe voxel its geodesic-nearest labelled
branch (paths never leave the lobe, so territories respect fissures and wrap
around concave lobes). Voxels of a lobe part no source can reach take the
Euclidean-nearest source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from AnatomyINRLib.pulmonary.config import N_SEGMENTS, segment_lobe

_OFFSETS = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)
                     if (a, b, c) > (0, 0, 0)])


@dataclass
class WorkGrid:
    """Integer subsampling of an input grid: work voxel w sits at input index ``factor·w + offset``."""

    factor: np.ndarray
    offset: np.ndarray
    shape: tuple
    affine: np.ndarray

    @classmethod
    def from_input(cls, shape, ijk_to_ras: np.ndarray, work_spacing_mm: float) -> "WorkGrid":
        spacing = np.linalg.norm(ijk_to_ras[:3, :3], axis=0)
        factor = np.maximum(1, np.rint(work_spacing_mm / spacing)).astype(int)
        offset = factor // 2
        wshape = tuple(int(np.ceil((n - o) / f)) for n, o, f in zip(shape, offset, factor))
        sub = np.eye(4)
        sub[:3, :3] = np.diag(factor.astype(float))
        sub[:3, 3] = offset
        return cls(factor, offset, wshape, ijk_to_ras @ sub)

    def nearest(self, arr: np.ndarray) -> np.ndarray:
        """Input-grid array sampled at the work voxel centres."""
        f, o = self.factor, self.offset
        return arr[o[0]::f[0], o[1]::f[1], o[2]::f[2]]

    def work_index(self, ijk: np.ndarray) -> np.ndarray:
        """(N, 3) input indices → nearest work indices (clipped to the grid)."""
        w = np.rint((ijk - self.offset) / self.factor).astype(int)
        return np.clip(w, 0, np.asarray(self.shape) - 1)

    def any_of(self, mask: np.ndarray) -> np.ndarray:
        """Boolean work array: a work voxel is set when any input voxel rounding to it is set."""
        out = np.zeros(self.shape, dtype=bool)
        out[tuple(self.work_index(np.argwhere(mask)).T)] = True
        return out


def work_sources(labelled: np.ndarray, grid: WorkGrid, work_lobes: np.ndarray) -> np.ndarray:
    """uint8 work-grid seeds from a labelled input volume, kept inside their own lobe.

    A segment whose voxels all round to work voxels of another lobe (a thin bronchus near a
    fissure) gets one seed: the work voxel of its lobe nearest to its labelled voxels' centroid.
    """
    idx = np.argwhere(labelled > 0)
    labs = labelled[tuple(idx.T)]
    w = grid.work_index(idx)
    out = np.zeros(grid.shape, dtype=np.uint8)
    lobe_of = np.array([0] + [segment_lobe(v) for v in range(1, N_SEGMENTS + 1)], dtype=np.uint8)
    ok = work_lobes[tuple(w.T)] == lobe_of[labs]
    out[tuple(w[ok].T)] = labs[ok]
    for lab in np.setdiff1d(np.unique(labs), np.unique(out)):
        lobe_vox = np.argwhere(work_lobes == lobe_of[lab])
        target = w[labs == lab].mean(axis=0)
        out[tuple(lobe_vox[np.argmin(np.linalg.norm(lobe_vox - target, axis=1))])] = lab
    return out


def _graph(mask: np.ndarray, cost: np.ndarray, affine: np.ndarray):
    """Node indices and the symmetric weighted adjacency of a mask's voxels (26-neighbourhood)."""
    idx = np.argwhere(mask)
    node = np.full(np.asarray(mask.shape) + 2, -1, dtype=np.int64)
    node[tuple((idx + 1).T)] = np.arange(len(idx))
    node_cost = cost[tuple(idx.T)]
    rows, cols, weights = [], [], []
    for off in _OFFSETS:
        nb = node[tuple((idx + 1 + off).T)]
        ok = nb >= 0
        length = float(np.linalg.norm(affine[:3, :3] @ off))
        rows.append(np.nonzero(ok)[0])
        cols.append(nb[ok])
        weights.append(length * 0.5 * (node_cost[ok] + node_cost[nb[ok]]))
    r, c, w = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
    return idx, sparse.csr_matrix((w, (r, c)), shape=(len(idx), len(idx)))


def lobe_territories(work_lobes: np.ndarray, seeds: np.ndarray, cost: np.ndarray, affine: np.ndarray,
                     lobe: int) -> tuple[tuple, np.ndarray]:
    """Geodesic nearest-seed labels of one lobe.

    Args:
        work_lobes: uint8 lobes on the work grid.
        seeds: uint8 seed labels on the work grid (only this lobe's are used).
        cost: float32 per-voxel traversal cost on the work grid (≥ 1).
        affine: Work grid ijk→RAS (for edge lengths in mm).
        lobe: Lobe value 1-5.

    Returns:
        (box, labels): the lobe's bounding box (slices of the work grid) and a uint8 array over it
        with the territory label of each lobe voxel (0 outside the lobe).
    """
    box = ndimage.find_objects((work_lobes == lobe).astype(np.uint8))[0]
    mask = work_lobes[box] == lobe
    seed = np.where(mask, seeds[box], 0)
    idx, graph = _graph(mask, cost[box], affine)
    node_seed = seed[tuple(idx.T)]
    sources = np.nonzero(node_seed)[0]
    _, _, origin = csgraph.dijkstra(graph, directed=False, indices=sources, min_only=True,
                                    return_predecessors=True)
    labels = np.zeros(len(idx), dtype=np.uint8)
    reached = origin >= 0
    labels[reached] = node_seed[origin[reached]]
    if not reached.all():  # lobe pieces with no seed: Euclidean-nearest seed
        _, near = cKDTree(idx[sources] @ affine[:3, :3].T).query(idx[~reached] @ affine[:3, :3].T)
        labels[~reached] = node_seed[sources[near]]
    out = np.zeros(mask.shape, dtype=np.uint8)
    out[tuple(idx.T)] = labels
    return box, out
