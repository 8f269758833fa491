"""The training objective: Σ_k w_k · L_IGR(f_k; X_k) over the outputs of one network.

One surface is the case K = 1, w = 1 (Alblas et al. 2022, eq. 3); K nested
surfaces apply eq. 3 to each output channel with its own point set and
off-surface samples and sum them (§2.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from AnatomyINRLib.fitting.config import LossConfig, SamplingConfig
from AnatomyINRLib.fitting.loss import igr_loss
from AnatomyINRLib.fitting.sampling import OffSurfaceSampler, knn_sigma


@dataclass
class StepLoss:
    """One iteration's objective.

    Attributes:
        total: Differentiable weighted sum (scalar tensor).
        surface: Per output, mean |f(xᵢ)| on its surface batch (normalised units).
        eikonal: Per output, mean (‖∇f‖ − 1)² on its samples.
    """

    total: torch.Tensor
    surface: list
    eikonal: list


class IGRObjective:
    """IGR loss of K point sets, set k constraining network output k.

    Args:
        samplers: One OffSurfaceSampler per output (they may share a generator;
            they are drawn from in output order every iteration).
        normals: Per output, (N_k, 3) unit normals on the device or None.
        loss: Term weights.
        weights: Per-output weight w_k (default all 1).

    ``extra_terms`` holds further loss terms ``term(network) -> scalar tensor``
    added to every iteration's total after the IGR terms (e.g. the slice-click
    supervision of ``surface/slice_loss.py``).
    """

    def __init__(self, samplers: Sequence[OffSurfaceSampler], normals: Sequence[Optional[torch.Tensor]],
                 loss: LossConfig, weights: Optional[Sequence[float]] = None) -> None:
        self.samplers = list(samplers)
        self.normals = list(normals)
        self.loss = loss
        self.weights = [1.0] * len(self.samplers) if weights is None else [float(w) for w in weights]
        self.extra_terms: list[Callable[[torch.nn.Module], torch.Tensor]] = []

    @classmethod
    def from_points(cls, points_norm: Sequence[np.ndarray], normals: Sequence[Optional[np.ndarray]],
                    sampling: SamplingConfig, loss: LossConfig, generator: torch.Generator, device,
                    weights: Optional[Sequence[float]] = None) -> "IGRObjective":
        """Build samplers (σᵢ from the k-th neighbour, ``sampling.knn``) for K point sets.

        Args:
            points_norm: K arrays (N_k, 3) of surface points in normalised units.
            normals: K arrays (N_k, 3) of unit normals or None each.
            sampling: Off-surface sampling settings.
            loss: Term weights.
            generator: Seeded torch generator on ``device``, shared by all samplers.
            device: torch device of the network.
            weights: Per-output weights (default all 1).
        """
        samplers, tensors = [], []
        for pts, nrm in zip(points_norm, normals):
            x = torch.tensor(pts, dtype=torch.float32, device=device)
            sigma = torch.tensor(knn_sigma(pts, sampling.knn), dtype=torch.float32, device=device)
            samplers.append(OffSurfaceSampler(x, sigma, sampling, generator))
            tensors.append(None if nrm is None else torch.tensor(nrm, dtype=torch.float32, device=device))
        return cls(samplers, tensors, loss, weights)

    def __call__(self, network: torch.nn.Module) -> StepLoss:
        """Draw this iteration's samples and evaluate the weighted loss."""
        total, surface, eikonal = None, [], []
        for k, (sampler, nrm) in enumerate(zip(self.samplers, self.normals)):
            idx, x = sampler.surface_batch()
            terms = igr_loss(network, x, sampler.local(idx), sampler.global_(), self.loss,
                             None if nrm is None else nrm[idx], output=k)
            # w = 1 multiplies exactly, so a single surface gets plain eq. 3.
            part = self.weights[k] * terms.total
            total = part if total is None else total + part
            surface.append(terms.surface)
            eikonal.append(terms.eikonal)
        for term in self.extra_terms:
            total = total + term(network)
        return StepLoss(total, surface, eikonal)
