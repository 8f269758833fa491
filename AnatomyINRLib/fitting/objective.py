"""The training objective: Σ_k w_k · L_IGR(f_k; X_k) over the outputs of one network.

One surface is the case K = 1, w = 1 (Alblas et al. 2022, eq. 3); K nested
surfaces apply eq. 3 to each output channel with its own point set and
off-surface samples and sum them (§2.4).
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from AnatomyINRLib.fitting.config import LossConfig, SamplingConfig
from AnatomyINRLib.fitting.loss import sample_terms, surface_terms
from AnatomyINRLib.fitting.sampling import OffSurfaceSampler, knn_sigma

# Share of the sample rows differentiated on the calling thread when an iteration runs in two halves;
# the other thread also has the surface batch, the extra terms and their violation searches
# (balanced on the default surface fit: 4224 sample rows, 400 surface, 1024 certified-outside;
# violation searches run before the halves, on both threads).
FIRST_SHARE = 0.6


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
    supervision of ``surface/slice_loss.py``). A term that searches a pool for
    violations may also offer ``prepare(network, pool)``: :meth:`gradients` calls
    it before the two halves so a due search is shared by both threads.
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

    def _draw(self) -> list:
        """This iteration's samples per output, drawn in output order (surface batch, local, uniform)."""
        draws = []
        for sampler, nrm in zip(self.samplers, self.normals):
            idx, x = sampler.surface_batch()
            local, uniform = sampler.local(idx), sampler.global_()
            draws.append((x, None if nrm is None else nrm[idx], torch.cat([local, uniform]), len(local)))
        return draws

    def _terms(self, network: torch.nn.Module, draws: list, block: Callable[[int], slice], with_rest: bool):
        """Weighted loss of the sample rows ``block(n)`` of every output, plus (``with_rest``) the
        surface terms and the extra terms; with per-output surface and eikonal floats."""
        total, surface, eikonal = None, [], []
        for k, (x, nrm, samples, n_local) in enumerate(draws):
            rows = block(len(samples))
            part, eik = sample_terms(network, samples[rows], self.loss, n_rows=len(samples),
                                        uniform_from=n_local - rows.start, n_uniform=len(samples) - n_local, output=k)
            surf = 0.0
            if with_rest:
                s_part, surf = surface_terms(network, x, self.loss, nrm, output=k)
                part = s_part + part
            # w = 1 multiplies exactly, so a single surface gets plain eq. 3.
            part = self.weights[k] * part
            total = part if total is None else total + part
            surface.append(surf)
            eikonal.append(eik)
        if with_rest:
            for term in self.extra_terms:
                total = total + term(network)
        return total, surface, eikonal

    def __call__(self, network: torch.nn.Module) -> StepLoss:
        """Draw this iteration's samples and evaluate the weighted loss."""
        total, surface, eikonal = self._terms(network, self._draw(), lambda n: slice(0, n), True)
        return StepLoss(total, surface, eikonal)

    def gradients(self, network: torch.nn.Module, params: Sequence[torch.Tensor],
                  pool: Executor) -> tuple[StepLoss, list]:
        """One iteration's loss and its gradient in ``params``, computed in two halves at once.

        The samples are drawn here first, in the order ``__call__`` draws them; the
        first ``FIRST_SHARE`` of every output's sample rows are differentiated on the
        calling thread while ``pool`` does the rest with the surface and extra terms
        (which draw from their own generators there, in their usual order). The two
        gradients are added in a fixed order, so a fit stays reproducible.

        Returns:
            StepLoss (``total`` detached) and one gradient tensor per parameter.
        """
        draws = self._draw()
        for term in self.extra_terms:  # a violation search due now runs on both threads first
            if hasattr(term, "prepare"):
                term.prepare(network, pool)

        def run(first: bool):
            block = (lambda n: slice(0, int(FIRST_SHARE * n))) if first else (lambda n: slice(int(FIRST_SHARE * n), n))
            total, surface, eikonal = self._terms(network, draws, block, not first)
            grads = torch.autograd.grad(total, params, allow_unused=True)
            return total.detach(), grads, surface, eikonal

        rest = pool.submit(run, False)
        t0, g0, _, e0 = run(True)
        t1, g1, surface, e1 = rest.result()
        grads = [(torch.zeros_like(p) if a is None else a) + (0.0 if b is None else b)
                 for p, a, b in zip(params, g0, g1)]
        return StepLoss(t0 + t1, surface, [a + b for a, b in zip(e0, e1)]), grads
