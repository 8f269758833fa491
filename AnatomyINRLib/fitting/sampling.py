"""Off-surface samples for the IGR loss (Gropp et al. 2020, §4 "sampling").

Per iteration: a Gaussian cloud around every surface point, σᵢ = distance
to its k-th nearest neighbour (adapts to the local point density), plus
uniform samples in the box. The eikonal term is evaluated on both.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from AnatomyINRLib.fitting.config import SamplingConfig


def knn_sigma(points: np.ndarray, k: int) -> np.ndarray:
    """Distance of every point to its k-th nearest neighbour.

    Args:
        points: (N, 3) coordinates (any unit).
        k: Neighbour rank; clipped to N − 1.

    Returns:
        (N,) distances in the unit of ``points``.
    """
    k = int(min(k, len(points) - 1))
    dist, _ = cKDTree(points).query(points, k=k + 1)
    return np.asarray(dist[:, -1], dtype=np.float64)


class OffSurfaceSampler:
    """Draws local + global samples as torch tensors on a device.

    Args:
        points: (N, 3) normalised surface points (torch, on the device).
        sigma: (N,) per-point σ (torch, same device).
        config: Sampling configuration.
        generator: Seeded torch generator on the same device.
    """

    def __init__(self, points: torch.Tensor, sigma: torch.Tensor, config: SamplingConfig, generator: torch.Generator) -> None:
        self.points = points
        self.sigma = (sigma * config.sigma_scale).unsqueeze(1)
        self.config = config
        self.gen = generator

    def surface_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices and coordinates of this iteration's surface points."""
        n = len(self.points)
        if n <= self.config.max_surface_batch:
            idx = torch.arange(n, device=self.points.device)
        else:
            idx = torch.randperm(n, generator=self.gen, device=self.points.device)[: self.config.max_surface_batch]
        return idx, self.points[idx]

    def local(self, idx: torch.Tensor) -> torch.Tensor:
        """(len(idx)·local_per_point, 3) Gaussian samples around the chosen points."""
        reps = self.config.local_per_point
        centers = self.points[idx].repeat(reps, 1)
        sig = self.sigma[idx].repeat(reps, 1)
        noise = torch.randn(centers.shape, generator=self.gen, device=centers.device, dtype=centers.dtype)
        return centers + noise * sig

    def global_(self) -> torch.Tensor:
        """(n_global, 3) uniform samples in [−box, box]³."""
        n = self.config.n_global
        u = torch.rand((n, 3), generator=self.gen, device=self.points.device, dtype=self.points.dtype)
        return (2.0 * u - 1.0) * self.config.box
