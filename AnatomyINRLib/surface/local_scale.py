"""Per-point scale of the local off-surface samples that follows thin structures.

IGR draws samples around surface point i from N(xᵢ, σᵢ²) with σᵢ the distance
to its k-th neighbour (``sampling.knn_sigma``). On a thin vessel the
neighbours line up along the centreline, so that distance grows with k and
exceeds the vessel radius several times: the samples then fall across the
whole tube and into its neighbours, and the eikonal term never sees the
narrow band that shapes the wall.

Here the neighbourhood's shape gives the scale: for the ``k_shape`` nearest
neighbours, the covariance eigenvalues λ₀ ≤ λ₁ ≤ λ₂ of a tube of radius r
are ≈ (r²/2, r²/2, ℓ²/3) while a nearly flat patch has λ₁ ≈ λ₂. The local
thickness t = √(2λ₁) (≈ r on a tube) replaces σᵢ only where the
neighbourhood is clearly tube-like, t < ``_THIN_RATIO`` · σᵢ; elsewhere σᵢ is
unchanged, so fits on broad surfaces are bit-identical.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

_K_SHAPE = 16  # neighbours whose spread measures the local thickness
_THIN_RATIO = 0.4  # a neighbourhood counts as a thin tube when t < this · σ


def thin_aware_sigma(points: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace σᵢ by the local thickness where the neighbourhood is a thin tube.

    Args:
        points: (N, 3) surface points (any unit, e.g. normalised).
        sigma: (N,) k-th neighbour distances (same unit).

    Returns:
        (N,) σ and (N,) bool mask of the points that were changed.
    """
    k = int(min(_K_SHAPE, len(points) - 1))
    if k < 4:
        return sigma, np.zeros(len(points), dtype=bool)
    _, idx = cKDTree(points).query(points, k=k + 1)
    nb = points[idx]  # (N, k+1, 3), includes the point itself
    centred = nb - nb.mean(axis=1, keepdims=True)
    cov = np.einsum("nki,nkj->nij", centred, centred) / (k + 1)
    lam = np.linalg.eigvalsh(cov)  # ascending
    thickness = np.sqrt(2.0 * np.maximum(lam[:, 1], 0.0))
    thin = thickness < _THIN_RATIO * sigma
    return np.where(thin, thickness, sigma), thin
