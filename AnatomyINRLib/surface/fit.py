"""Fit a signed-distance network to surface points (IGR; Alblas et al. 2022 §2.3).

Coordinates are normalised into [−extent, extent]³ with an isotropic scale
(``nn.field.Normalization``) so distances stay distances; the fitted field is
returned as a :class:`NeuralField` in RAS mm.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from AnatomyINRLib.core.device import resolve_device
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.seeding import make_generator
from AnatomyINRLib.core.types import PointSet
from AnatomyINRLib.fitting import FitHistory, IGRObjective, budget, optimise
from AnatomyINRLib.nn.field import NeuralField, Normalization
from AnatomyINRLib.nn.mlp import MLP
from AnatomyINRLib.surface.config import SurfaceFitConfig

# Beyond this normalised radius a warm-start frame no longer holds the points with margin.
_WARM_START_MAX_EXTENT = 0.9


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
    net = MLP(config.network, generator=torch.Generator().manual_seed(int(seed)))
    return net.to(device)



def fit_sdf(
    points: PointSet,
    config: SurfaceFitConfig,
    *,
    init_field: Optional[NeuralField] = None,
    seed: int = 0,
    device: str = "auto",
    iterations: Optional[int] = None,
    progress: "ProgressReporter | Callable | None" = None,
) -> SDFFit:
    """Optimise an SDF network so its zero level set passes through ``points``.

    Args:
        points: Cleaned surface points (RAS mm), optional unit normals.
        config: Fit configuration.
        init_field: Previous fit to warm-start from (same architecture).
        seed: Seed of initialisation and sampling.
        device: "auto", "cpu", "cuda" or "mps".
        iterations: Override of ``config.optim.iterations``.
        progress: Reporter or callback for "fit" events (may cancel).

    Returns:
        SDFFit with the field in RAS mm.

    Raises:
        FitError: the loss became NaN/inf.
        Cancelled: the caller cancelled.
    """
    config.validate()
    progress = ProgressReporter.wrap(progress)
    dev = resolve_device(device)
    normalization, reuse = _frame(points.points, config, init_field)
    net = _build_network(config, init_field, reuse, seed, dev)
    total, lr = budget(config.optim, iterations, warm_start=reuse)
    objective = IGRObjective.from_points([normalization.to_normalized(points.points)], [points.normals],
                                         config.sampling, config.loss, make_generator(seed, dev), dev)
    run = optimise(net, objective, config.optim, total=total, lr=lr, scale=normalization.scale, progress=progress)
    fitted = NeuralField(net, normalization)
    return SDFFit(fitted, run.iterations, run.seconds, run.final_loss, run.converged, reuse, run.history)
