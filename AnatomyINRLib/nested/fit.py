"""Joint fit of K nested surfaces with one network (Alblas et al. 2022, §2.4).

Loss: Σ_k w_k · L_IGR(f_k; X_k), the IGR loss (paper eq. 3) of output k on
point set X_k with its own off-surface samples (``surface.loss.igr_loss``
with ``output=k``). The eikonal term is applied to every output even though
the inner outputs of the nested construction are not exact SDFs (see
``nested.network``): it keeps them distance-like near their surfaces.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree

from AnatomyINRLib.core.device import resolve_device
from AnatomyINRLib.core.errors import FitError, InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.seeding import make_generator
from AnatomyINRLib.core.types import PointSet
from AnatomyINRLib.nested.config import DEFAULT_NAMES, NestedFitConfig
from AnatomyINRLib.nested.network import NestedNetworkConfig, NestedSDFNetwork
from AnatomyINRLib.nn.field import NeuralField, Normalization
from AnatomyINRLib.surface.fit import learning_rate_at
from AnatomyINRLib.surface.loss import igr_loss
from AnatomyINRLib.surface.points import prepare_points
from AnatomyINRLib.surface.sampling import OffSurfaceSampler, knn_sigma

_MIN_GAP_NORM = 1e-3  # smallest initial gap (normalised units), keeps softplus⁻¹ finite


@dataclass
class NestedFit:
    """Result of :func:`fit_nested`.

    Attributes:
        field: K-output field in RAS mm, column 0 innermost (negative inside).
        names: Surface names, innermost first.
        min_thickness_mm: Gap guaranteed between consecutive fields (mm).
        iterations: Iterations run.
        seconds: Wall time of the optimisation.
        final_loss: Mean total loss over the last window.
        converged: True if stopped by the convergence test.
        history: {"iterations": [...], "loss": [...], "surface_mm": [[per surface]...]}.
    """

    field: NeuralField
    names: list
    min_thickness_mm: float
    iterations: int
    seconds: float
    final_loss: float
    converged: bool
    history: dict = field(default_factory=dict)


def check_names(names: Optional[Sequence[str]], k: int) -> list:
    """Default or validate the surface names (innermost first, unique, file-name safe)."""
    if names is None:
        # Two surfaces are usually lumen and outer wall (thrombus and wall together).
        return list(DEFAULT_NAMES) if k == 3 else [DEFAULT_NAMES[0], DEFAULT_NAMES[-1]][:k]
    names = [str(n) for n in names]
    if len(names) != k:
        raise InputError(f"names: expected {k} names (one per point set), got {len(names)}")
    if len(set(names)) != k:
        raise InputError(f"names: expected distinct names, got {names}")
    bad = [n for n in names if not n or any(c in n for c in "/\\:*?\"<>| ")]
    if bad:
        raise InputError(f"names: expected non-empty names without path or space characters, got {bad}")
    return names


def initial_gaps(points_norm: list, t_norm: float) -> list:
    """Median point-to-plane distance between consecutive point sets, outer pair first.

    For every point of surface j, a plane is fitted (SVD) to its 6 nearest
    points of surface j+1 and the distance to it taken; the median over
    points, minus t, starts the gap between f_j and f_{j+1}. Point-to-point
    distances would overestimate thin walls when the points are sparse.

    Args:
        points_norm: K arrays (N_k, 3), normalised units, innermost first.
        t_norm: Minimum thickness in normalised units.
    """
    gaps = []
    for j in range(len(points_norm) - 2, -1, -1):
        inner, outer = points_norm[j], points_norm[j + 1]
        k = min(6, len(outer))
        _, idx = cKDTree(outer).query(inner, k=k)
        nb = outer[idx]                                   # (N, k, 3)
        centred = nb - nb.mean(axis=1, keepdims=True)
        normal = np.linalg.svd(centred)[2][:, -1]          # (N, 3) least-variance direction
        dist = np.abs(np.einsum("ij,ij->i", inner - nb.mean(axis=1), normal))
        gaps.append(max(float(np.median(dist)) - t_norm, _MIN_GAP_NORM))
    return gaps


def _build(config: NestedFitConfig, k: int, scale: float, gaps: list, seed: int, device) -> NestedSDFNetwork:
    mlp = config.network.replace(out_dim=k)
    net_cfg = NestedNetworkConfig(mlp=mlp, n_surfaces=k, nesting=config.nesting,
                                  min_thickness=float(config.min_thickness_mm / scale), gap_init=tuple(gaps),
                                  construction=config.construction, sharpness=float(scale / config.sharpness_mm))
    net = NestedSDFNetwork(net_cfg, generator=torch.Generator().manual_seed(int(seed)))
    return net.to(device)


def fit_nested(
    point_sets: Sequence,
    config: NestedFitConfig,
    *,
    names: Optional[Sequence[str]] = None,
    seed: int = 0,
    device: str = "auto",
    iterations: Optional[int] = None,
    progress=None,
) -> NestedFit:
    """Fit K nested SDFs jointly, one point set per surface.

    Args:
        point_sets: 2 or 3 PointSets or (N, 3) arrays in RAS mm, innermost first.
        config: Fit configuration (see :func:`nested.config.nested_preset`).
        names: Surface names, innermost first (default lumen, inner, outer).
        seed: Seed of initialisation and sampling.
        device: "auto", "cpu", "cuda" or "mps".
        iterations: Override of ``config.optim.iterations``.
        progress: ProgressReporter or callback ("fit" events; may cancel).

    Returns:
        NestedFit whose field maps (N, 3) mm → (N, K) mm.

    Raises:
        InputError: wrong number of point sets, too few / flat points, bad names.
        FitError: the loss became NaN/inf.
    """
    config.validate()
    k = len(point_sets)
    if not 2 <= k <= 3:
        raise InputError(f"points: expected 2 or 3 point sets (innermost first), got {k}")
    names = check_names(names, k)
    progress = ProgressReporter.wrap(progress)
    prepared = [prepare_points(p, config.max_points, seed).points for p in point_sets]
    dev = resolve_device(device)
    normalization = Normalization.fit(np.concatenate([p.points for p in prepared]), config.extent)
    t_norm = config.min_thickness_mm / normalization.scale
    pts_n = [normalization.to_normalized(p.points) for p in prepared]
    gaps = initial_gaps(pts_n, t_norm) if config.gap_init_from_points else []
    net = _build(config, k, normalization.scale, gaps, seed, dev)
    samplers, normals = _samplers(prepared, pts_n, config, make_generator(seed, dev), dev)
    total = int(iterations or config.optim.iterations)
    if total < 1:
        raise InputError(f"iterations: expected a positive integer, got {total}")
    loop = _Loop(net, samplers, normals, config, normalization.scale, progress)
    it, converged, seconds = loop.run(total)
    net.eval()
    return NestedFit(NeuralField(net, normalization), names, float(config.min_thickness_mm), it, seconds,
                     loop.history["loss"][-1], converged, loop.history)


def _samplers(prepared: list, pts_n: list, config: NestedFitConfig, gen, dev) -> tuple[list, list]:
    """One off-surface sampler (sharing one generator) and optional normals per surface."""
    samplers, normals = [], []
    for p, pn in zip(prepared, pts_n):
        x = torch.tensor(pn, dtype=torch.float32, device=dev)
        sigma = torch.tensor(knn_sigma(pn, config.sampling.knn), dtype=torch.float32, device=dev)
        samplers.append(OffSurfaceSampler(x, sigma, config.sampling, gen))
        normals.append(None if p.normals is None else torch.tensor(p.normals, dtype=torch.float32, device=dev))
    return samplers, normals


class _Loop:
    """The optimisation loop (Adam, cosine schedule, windowed convergence test)."""

    def __init__(self, net, samplers, normals, config: NestedFitConfig, scale: float, progress) -> None:
        self.net, self.samplers, self.normals = net, samplers, normals
        self.config, self.scale, self.progress = config, scale, progress
        self.weights = config.weights(len(samplers))
        self.optimizer = torch.optim.Adam(net.parameters(), lr=config.optim.lr)
        self.history = {"iterations": [], "loss": [], "surface_mm": []}

    def step(self) -> tuple[float, list]:
        """One iteration over all surfaces; returns total loss and per-surface mean |f| (norm. units)."""
        total, surf = 0.0, []
        for k, (sampler, nrm) in enumerate(zip(self.samplers, self.normals)):
            idx, x = sampler.surface_batch()
            terms = igr_loss(self.net, x, sampler.local(idx), sampler.global_(), self.config.loss,
                             None if nrm is None else nrm[idx], output=k)
            total = total + self.weights[k] * terms.total
            surf.append(terms.surface)
        if not torch.isfinite(total):
            raise FitError("nested fit diverged (loss is not finite); try a lower learning rate")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        return float(total.detach()), surf

    def run(self, total: int) -> tuple[int, bool, float]:
        opt = self.config.optim
        window, prev, converged, it = [], None, False, 0
        start = time.perf_counter()
        self.net.train()
        for it in range(total):
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate_at(it, total, opt.lr, opt)
            loss, surf = self.step()
            window.append(loss)
            if (it + 1) % opt.check_every == 0 or it + 1 == total:
                mean = float(np.mean(window))
                surf_mm = [s * self.scale for s in surf]
                self.history["iterations"].append(it + 1)
                self.history["loss"].append(mean)
                self.history["surface_mm"].append(surf_mm)
                self.progress.report("fit", (it + 1) / total, f"iteration {it + 1}/{total}",
                                     iteration=it + 1, loss=mean, surface_mm=max(surf_mm))
                stop = (opt.rel_tol > 0 and prev is not None and it + 1 >= opt.min_iterations
                        and prev - mean < opt.rel_tol * abs(prev))
                prev, window = mean, []
                if stop:
                    converged = True
                    break
        return it + 1, converged, time.perf_counter() - start
