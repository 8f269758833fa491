"""Stage 1 optimisation: one occupancy INR per tree (TrIND eq. 1), one at a time or stacked.

Loss (paper eq. 1): mean (sigmoid(logit(x)) − o(x))² over the batch, o ∈ {0, 1}
the mesh occupancy; ``loss="bce"`` uses binary cross-entropy on the logits.
Stopping is the library's one plateau rule (``fitting.monitor.ConvergenceMonitor``)
on window means of the training loss; the learning rate follows
``fitting.schedule.learning_rate_at``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from AnatomyINRLib.core.device import restore_ieee_denormals
from AnatomyINRLib.core.errors import FitError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.fitting.monitor import ConvergenceMonitor
from AnatomyINRLib.fitting.schedule import learning_rate_at
from AnatomyINRLib.nn.field import NeuralField
from AnatomyINRLib.nn.occupancy import OccupancyResNet
from AnatomyINRLib.trees._sampling import TreeSampler
from AnatomyINRLib.trees.config import TreeFitConfig


@dataclass
class OneFit:
    """What fitting one tree produced (internal; the API turns it into a report)."""

    field: NeuralField
    iterations: int
    converged: bool
    seconds: float
    final_loss: float
    iou: Optional[float]
    loss_history: list
    collapsed: bool = False
    """No training point is predicted inside: the fit fell into the empty field (saturated logits)."""
    cpu_seconds: Optional[float] = None
    """Process CPU time of the fit (labelling, steps, held-out IoU); None for a stacked fit."""


def point_loss(logits: torch.Tensor, occ: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-point loss (same shape as ``logits``): squared sigmoid error (paper eq. 1) or BCE."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, occ, reduction="none")
    return (torch.sigmoid(logits) - occ) ** 2


def iou(pred_inside: np.ndarray, true_inside: np.ndarray) -> Optional[float]:
    """|P ∩ T| / |P ∪ T| of two boolean arrays (None when both are empty)."""
    union = np.count_nonzero(pred_inside | true_inside)
    return None if union == 0 else float(np.count_nonzero(pred_inside & true_inside) / union)


class _Pool:
    """The current labelled points of one tree on the device, refreshed every ``resample_every``."""

    def __init__(self, sampler: TreeSampler, rng: np.random.Generator, device: torch.device) -> None:
        self.sampler, self.rng, self.device = sampler, rng, device
        self.refresh()

    def refresh(self) -> None:
        # The inside test uses scipy's cKDTree, which can crash with flush-to-zero on (core.device).
        restore_ieee_denormals()
        pts, occ = self.sampler.pool(self.rng)
        self.x = torch.from_numpy(pts).to(self.device)
        self.y = torch.from_numpy(occ).to(self.device)

    def batch(self, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if size <= 0 or size >= len(self.x):
            return self.x, self.y
        idx = torch.randint(len(self.x), (size,), generator=gen).to(self.device)
        return self.x[idx], self.y[idx]


def budget_of(cfg: TreeFitConfig, warm: bool) -> int:
    """Iterations for one tree: the full budget, or the warm-start share of it."""
    total = cfg.optim.iterations
    return max(cfg.optim.check_every, int(round(total * cfg.warm_iterations_factor))) if warm else total


def fit_one(sampler: TreeSampler, cfg: TreeFitConfig, *, seed: int, device: torch.device,
            init_state: Optional[dict], progress: ProgressReporter, label: str) -> OneFit:
    """Fit one tree's INR (module docstring); ``init_state`` warm-starts from a template's weights."""
    cpu_start = time.process_time()
    gen = torch.Generator().manual_seed(int(seed))
    rng = np.random.default_rng([int(seed), 1])
    net = OccupancyResNet(cfg.network, generator=gen).to(device)
    if init_state is not None:
        net.load_state_dict(init_state)
    pool = _Pool(sampler, rng, device)
    total = budget_of(cfg, init_state is not None)
    # fused Adam: one kernel for all 24 tensors instead of a Python loop over them (~15 % of a CPU step)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.optim.lr, fused=device.type in ("cpu", "cuda"))
    monitor, window, history = ConvergenceMonitor(cfg.optim), [], []
    converged, it, start = False, 0, time.perf_counter()
    net.train()
    for it in range(total):
        progress.check_cancel()
        if cfg.sampling.resample_every and it and it % cfg.sampling.resample_every == 0:
            pool.refresh()
        for group in opt.param_groups:
            group["lr"] = learning_rate_at(it, total, cfg.optim.lr, cfg.optim)
        x, y = pool.batch(cfg.sampling.batch_size, gen)
        loss = point_loss(net.logits(x), y, cfg.loss).mean()
        if not torch.isfinite(loss):
            raise FitError(f"{label}: fit diverged at iteration {it} (loss is not finite); try a lower learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        window.append(float(loss.detach()))
        if (it + 1) % cfg.optim.check_every == 0 or it + 1 == total:
            mean, window = float(np.mean(window)), []
            history.append([it + 1, mean])
            progress.report("fit", (it + 1) / total, f"{label}: iteration {it + 1}/{total}", iteration=it + 1, loss=mean)
            if monitor.update(mean, it + 1):
                converged = True
                break
    net.eval()
    field = NeuralField(net, sampler.normalization, device=device)
    heldout, empty = held_out_iou(net, sampler, rng, device), is_empty(net, pool)
    return OneFit(field, it + 1, converged, time.perf_counter() - start, history[-1][1], heldout, history, empty,
                  time.process_time() - cpu_start)


@torch.no_grad()
def is_empty(net: torch.nn.Module, pool: "_Pool") -> bool:
    """True if the pool has inside points but the network calls none of them inside."""
    inside = pool.y > 0.5
    return bool(inside.any()) and not bool((net.logits(pool.x[inside]) > 0).any())


@torch.no_grad()
def held_out_iou(net: torch.nn.Module, sampler: TreeSampler, rng: np.random.Generator, device) -> Optional[float]:
    """Volumetric IoU of the INR's inside (logit > 0) on held-out uniform points in [−1, 1]³."""
    if sampler.cfg.eval_points == 0:
        return None
    pts, occ = sampler.evaluation(rng)
    return iou_of(net, pts, occ > 0.5, device)


@torch.no_grad()
def iou_of(net: torch.nn.Module, pts: np.ndarray, true_inside: np.ndarray, device) -> Optional[float]:
    """IoU of the INR's inside (logit > 0) at (N, 3) float32 normalised ``pts`` against (N,) bool ``true_inside``."""
    logits = torch.cat([net.logits(torch.from_numpy(c).to(device)) for c in np.array_split(pts, max(1, len(pts) // 65536))])
    return iou(logits.cpu().numpy() > 0, true_inside)
