"""Implicit soft partition of the lungs into segments (Method A, step 2).

For each lobe L with segments {l}, the territory indicator ``1[T = l]`` on the
work grid is smoothed with a Gaussian of σ = ``smoothing_mm`` and normalised by
the smoothed lobe indicator:

    p_l(x) = (G_σ * 1[T = l])(x) / (G_σ * 1[lobe = L])(x),    Σ_l p_l = 1 inside L,

a partition of unity that is C∞ on the work grid and continuous under the
trilinear interpolation used to evaluate it anywhere (RAS mm). The segment at
x is ``argmax_l p_l(x)`` among the segments of the lobe containing x, so the
boundaries are smooth level sets ``p_a = p_b`` that can be sampled onto any
grid. Labelled bronchi are a hard constraint of the field: at a point inside a
labelled bronchus voxel of segment l (and of l's lobe) the label is l, so a
labelled bronchus can never intrude into a neighbouring segment.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.pulmonary.config import N_SEGMENTS, lobe_segments, segment_lobe


class SegmentField:
    """The fitted soft partition; call :meth:`labels_at` on RAS points or :meth:`sample` onto a grid.

    Args:
        work_affine: ijk→RAS of the work grid the probabilities live on.
        lobes: Lobe labelmap (ImageGrid) deciding which lobe a point belongs to (nearest voxel).
        bronchi: Labelled bronchi (ImageGrid on the lobes grid) enforced as hard constraints.
        parts: lobe → (box start (3,) work index, labels (K,), probabilities (K, ...) float32).
    """

    def __init__(self, work_affine: np.ndarray, lobes: ImageGrid, bronchi: ImageGrid, parts: dict) -> None:
        self.work_affine = np.asarray(work_affine, dtype=np.float64)
        self.lobes = lobes
        self.bronchi = bronchi
        self.parts = parts
        self._lobe_of = np.array([0] + [segment_lobe(v) for v in range(1, N_SEGMENTS + 1)], dtype=np.uint8)

    @classmethod
    def fit(cls, territories: dict, work_lobes: np.ndarray, work_affine: np.ndarray, smoothing_mm: float,
            lobes: ImageGrid, bronchi: ImageGrid) -> "SegmentField":
        """Smooth each lobe's territory labels into a partition of unity (see the module docstring)."""
        spacing = np.linalg.norm(work_affine[:3, :3], axis=0)
        sigma = smoothing_mm / spacing
        parts = {}
        for lobe, (box, labels) in territories.items():
            pad = np.ceil(3 * sigma).astype(int) + 1
            lo = np.maximum([s.start for s in box] - pad, 0)
            hi = np.minimum([s.stop for s in box] + pad, work_lobes.shape)
            big = tuple(slice(a, b) for a, b in zip(lo, hi))
            inner = tuple(slice(s.start - a, s.stop - a) for s, a in zip(box, lo))
            terr = np.zeros(tuple(hi - lo), dtype=np.uint8)
            terr[inner] = labels
            mask = (work_lobes[big] == lobe).astype(np.float32)
            norm = ndimage.gaussian_filter(mask, sigma) if smoothing_mm > 0 else mask
            labs = np.array(lobe_segments(lobe), dtype=np.uint8)
            probs = np.empty((len(labs),) + terr.shape, dtype=np.float32)
            for k, lab in enumerate(labs):
                ind = (terr == lab).astype(np.float32)
                probs[k] = ndimage.gaussian_filter(ind, sigma) if smoothing_mm > 0 else ind
            probs /= np.maximum(norm, 1e-6)[None]
            parts[lobe] = (lo, labs, probs)
        return cls(work_affine, lobes, bronchi, parts)

    def _nearest(self, image: ImageGrid, points: np.ndarray) -> np.ndarray:
        return image.nearest_values(points).astype(np.uint8, copy=False)

    def probabilities(self, points: np.ndarray, lobe: int) -> tuple[np.ndarray, np.ndarray]:
        """(labels (K,), p (K, N)): the lobe's segment probabilities at (N, 3) RAS points."""
        return self._probabilities(_apply(np.linalg.inv(self.work_affine), points), lobe)

    def _probabilities(self, work_ijk: np.ndarray, lobe: int):
        lo, labs, probs = self.parts[int(lobe)]
        coords = (work_ijk - lo).T
        p = np.stack([ndimage.map_coordinates(probs[k], coords, order=1, mode="nearest") for k in range(len(labs))])
        return labs, p

    def _classify(self, work_ijk: np.ndarray, lobe: np.ndarray, bron: np.ndarray) -> np.ndarray:
        """Argmax of the lobe's probabilities, then the labelled-bronchus constraint."""
        out = np.zeros(len(lobe), dtype=np.uint8)
        for lb in self.parts:
            sel = np.nonzero(lobe == lb)[0]
            if len(sel):
                labs, p = self._probabilities(work_ijk[sel], lb)
                out[sel] = labs[np.argmax(p, axis=0)]
        forced = (bron > 0) & (self._lobe_of[bron] == lobe)
        out[forced] = bron[forced]
        return out

    def labels_at(self, points) -> np.ndarray:
        """(N,) uint8 segment label (0 outside the lobes) at (N, 3) RAS mm points."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        lobe = self._nearest(self.lobes, points)
        bron = self._nearest(self.bronchi, points)
        return self._classify(_apply(np.linalg.inv(self.work_affine), points), lobe, bron)

    def sample(self, reference: ImageGrid, chunk_voxels: int = 2_000_000, progress=None) -> ImageGrid:
        """uint8 segment labelmap on any reference grid (slabs of ≤ ``chunk_voxels`` voxels).

        On the lobes' own grid the lobe and bronchus of each voxel are read directly;
        elsewhere they are the nearest voxel's.
        """
        shape = reference.shape
        out = np.zeros(shape, dtype=np.uint8)
        same = reference.shape == self.lobes.shape and np.allclose(reference.ijk_to_ras, self.lobes.ijk_to_ras)
        to_work = np.linalg.inv(self.work_affine) @ reference.ijk_to_ras
        step = max(1, chunk_voxels // (shape[1] * shape[2]))
        for i0 in range(0, shape[0], step):
            i1 = min(shape[0], i0 + step)
            if same:
                lobe_slab = self.lobes.array[i0:i1]
                idx = np.argwhere(lobe_slab > 0)
                lobe, bron = lobe_slab[tuple(idx.T)], self.bronchi.array[i0:i1][tuple(idx.T)]
                idx[:, 0] += i0
                out[tuple(idx.T)] = self._classify(_apply(to_work, idx), lobe, bron)
            else:
                idx = np.indices((i1 - i0,) + shape[1:]).reshape(3, -1).T
                idx[:, 0] += i0
                out[tuple(idx.T)] = self.labels_at(_apply(reference.ijk_to_ras, idx))
            if progress is not None:
                progress.report("sample", i1 / shape[0], f"sampled {i1}/{shape[0]} slices")
        return reference.with_array(out)


def _apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3) points through a 4×4 affine (column by column: faster than a thin matmul)."""
    pts = np.asarray(points, dtype=np.float64)
    out = np.empty((len(pts), 3), dtype=np.float64)
    for r in range(3):
        out[:, r] = pts[:, 0] * affine[r, 0] + pts[:, 1] * affine[r, 1] + pts[:, 2] * affine[r, 2] + affine[r, 3]
    return out
