"""Fit a signed-distance network to surface points (IGR; Alblas et al. 2022 §2.3).

Coordinates are normalised into [−extent, extent]³ with an isotropic scale
(``nn.field.Normalization``) so distances stay distances; the fitted field is
returned as a :class:`NeuralField` in RAS mm.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from AnatomyINRLib.core.device import resolve_device
from AnatomyINRLib.core.errors import FitError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.seeding import make_generator
from AnatomyINRLib.core.types import PointSet
from AnatomyINRLib.nn.field import NeuralField, Normalization
from AnatomyINRLib.nn.mlp import MLP
from AnatomyINRLib.surface.config import SurfaceFitConfig
from AnatomyINRLib.surface.loss import igr_loss
from AnatomyINRLib.surface.sampling import OffSurfaceSampler, knn_sigma

# Beyond this normalised radius a warm-start frame no longer holds the points with margin.
_WARM_START_MAX_EXTENT = 0.9


@dataclass
class FitHistory:
    """Loss trace recorded every ``check_every`` iterations."""

    iterations: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    surface_mm: list = field(default_factory=list)
    eikonal: list = field(default_factory=list)


@dataclass
class SDFFit:
    """Result of :func:`fit_sdf`.

    Attributes:
        field: The fitted SDF in RAS mm (negative inside).
        iterations: Iterations run.
        seconds: Wall time of the optimisation.
        final_loss: Mean loss over the last window.
        converged: True if stopped by the convergence test.
        warm_started: True if initialised from a previous field.
        history: Loss trace.
    """

    field: NeuralField
    iterations: int
    seconds: float
    final_loss: float
    converged: bool
    warm_started: bool
    history: FitHistory


def _frame(points: np.ndarray, config: SurfaceFitConfig, init: Optional[NeuralField]) -> tuple[Normalization, bool]:
    """Normalisation to use, and whether the warm-start network can be reused in it."""
    if init is not None:
        norm_pts = init.normalization.to_normalized(points)
        if np.abs(norm_pts).max() <= _WARM_START_MAX_EXTENT:
            return init.normalization, True
        warnings.warn("init field: points moved outside its frame; fitting from scratch", stacklevel=3)
    return Normalization.fit(points, config.extent), False


def _build_network(config: SurfaceFitConfig, init: Optional[NeuralField], reuse: bool, seed: int, device) -> MLP:
    if reuse and isinstance(init.network, MLP) and init.network.config.to_dict() == config.network.to_dict():
        net = copy.deepcopy(init.network)
        return net.to(device)
    if reuse:
        warnings.warn("init field: architecture differs from the preset; fitting from scratch", stacklevel=3)
    # nn.init draws from torch's global RNG: fork it so the fit is seeded without side effects.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = MLP(config.network)
    return net.to(device)


def learning_rate_at(it: int, total: int, base: float, cfg) -> float:
    """Learning rate at iteration ``it`` of ``total``: linear warm-up, then cosine or constant (OptimConfig)."""
    if cfg.warmup and it < cfg.warmup:
        return base * (it + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return base
    t = min(1.0, (it - cfg.warmup) / max(1, total - cfg.warmup))
    low = base * cfg.lr_final_factor
    return low + 0.5 * (base - low) * (1.0 + math.cos(math.pi * t))


def fit_sdf(
    points: PointSet,
    config: SurfaceFitConfig,
    *,
    init_field: Optional[NeuralField] = None,
    seed: int = 0,
    device: str = "auto",
    iterations: Optional[int] = None,
    progress: Optional[ProgressReporter] = None,
    extra_loss=None,
) -> SDFFit:
    """Optimise an SDF network so its zero level set passes through ``points``.

    Args:
        points: Cleaned surface points (RAS mm), optional unit normals.
        config: Fit configuration.
        init_field: Previous fit to warm-start from (same architecture).
        seed: Seed of initialisation and sampling.
        device: "auto", "cpu", "cuda" or "mps".
        iterations: Override of ``config.optim.iterations``.
        progress: Reporter for "fit" events (may cancel).
        extra_loss: Optional object with ``bind(normalization, device, generator)``
            returning ``loss(network) -> tensor`` added to every iteration's loss
            (slice-click supervision, surface/slice_loss.py).

    Returns:
        SDFFit with the field in RAS mm.

    Raises:
        FitError: the loss became NaN/inf.
        Cancelled: the caller cancelled.
    """
    config.validate()
    progress = progress or ProgressReporter()
    dev = resolve_device(device)
    normalization, reuse = _frame(points.points, config, init_field)
    net = _build_network(config, init_field, reuse, seed, dev)
    opt_cfg = config.optim
    total = int(iterations or opt_cfg.iterations)
    lr = opt_cfg.lr
    if reuse and iterations is None:
        total = max(opt_cfg.check_every, int(round(total * opt_cfg.warm_start_fraction)))
        lr = lr * opt_cfg.warm_start_lr_factor
    gen = make_generator(seed, dev)
    pts_n = normalization.to_normalized(points.points)
    sigma = knn_sigma(pts_n, config.sampling.knn)
    x = torch.tensor(pts_n, dtype=torch.float32, device=dev)
    normals = None if points.normals is None else torch.tensor(points.normals, dtype=torch.float32, device=dev)
    sampler = OffSurfaceSampler(x, torch.tensor(sigma, dtype=torch.float32, device=dev), config.sampling, gen)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    extra = None if extra_loss is None else extra_loss.bind(normalization, dev, gen)  # slice clicks
    return _optimise(net, sampler, normals, optimizer, config, total, lr, normalization, reuse, progress, extra)


def _optimise(net, sampler, normals, optimizer, config, total, lr, normalization, reuse, progress, extra=None) -> SDFFit:
    opt_cfg = config.optim
    history = FitHistory()
    window, best, stale, converged = [], float("inf"), 0, False
    start = time.perf_counter()
    net.train()
    it = 0
    for it in range(total):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(it, total, lr, opt_cfg)
        idx, surf = sampler.surface_batch()
        terms = igr_loss(net, surf, sampler.local(idx), sampler.global_(), config.loss,
                         None if normals is None else normals[idx])
        if extra is not None:  # slice-click supervision (surface/slice_loss.py)
            terms.total = terms.total + extra(net)
        if not torch.isfinite(terms.total):
            raise FitError(f"fit diverged at iteration {it} (loss is not finite); try a lower learning rate")
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()
        window.append(float(terms.total.detach()))
        if (it + 1) % opt_cfg.check_every == 0 or it + 1 == total:
            mean = float(np.mean(window))
            history.iterations.append(it + 1)
            history.loss.append(mean)
            history.surface_mm.append(terms.surface * normalization.scale)
            history.eikonal.append(terms.eikonal)
            progress.report("fit", (it + 1) / total, f"iteration {it + 1}/{total}",
                            iteration=it + 1, loss=mean, surface_mm=terms.surface * normalization.scale)
            # Convergence: no window beat the best by rel_tol for `patience` windows in a row.
            stale = 0 if mean < best * (1.0 - opt_cfg.rel_tol) else stale + 1
            best, window = min(best, mean), []
            if opt_cfg.rel_tol > 0 and stale >= opt_cfg.patience and it + 1 >= opt_cfg.min_iterations:
                converged = True
                break
    net.eval()
    seconds = time.perf_counter() - start
    fitted = NeuralField(net, normalization)
    return SDFFit(fitted, it + 1, seconds, history.loss[-1], converged, reuse, history)
