"""Joint fit of K nested surfaces with one network (Alblas et al. 2022, §2.4).

Loss: Σ_k w_k · L_IGR(f_k; X_k), the IGR loss (paper eq. 3) of output k on
point set X_k with its own off-surface samples (``fitting.IGRObjective``),
minimised by the shared loop (``fitting.optimise``: same schedule and stopping
rule as every other fit). The eikonal term is applied to every output even
though the inner outputs of the nested construction are not exact SDFs (see
``nn.nested``): it keeps them distance-like near their surfaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree

from AnatomyINRLib.core.device import resolve_device
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.seeding import make_generator
from AnatomyINRLib.fitting import FitHistory, IGRObjective, budget, optimise, prepare_points
from AnatomyINRLib.nested.config import DEFAULT_NAMES, NestedFitConfig
from AnatomyINRLib.nn.field import NeuralField, Normalization
from AnatomyINRLib.nn.nested import NestedNetworkConfig, NestedSDFNetwork

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
        history: Window trace (``surface_mm`` holds one value per surface).
    """

    field: NeuralField
    names: list
    min_thickness_mm: float
    iterations: int
    seconds: float
    final_loss: float
    converged: bool
    history: FitHistory = field(default_factory=FitHistory)


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
        InputError: wrong number of point sets, too few / flat points, bad names,
            ``iterations`` not a positive integer.
        FitError: the loss became NaN/inf.
        Cancelled: the caller cancelled (through ``progress``).
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
    total, lr = budget(config.optim, iterations)
    objective = IGRObjective.from_points(pts_n, [p.normals for p in prepared], config.sampling, config.loss,
                                         make_generator(seed, dev), dev, weights=config.weights(k))
    run = optimise(net, objective, config.optim, total=total, lr=lr, scale=normalization.scale, progress=progress)
    return NestedFit(NeuralField(net, normalization), names, float(config.min_thickness_mm), run.iterations,
                     run.seconds, run.final_loss, run.converged, run.history)
