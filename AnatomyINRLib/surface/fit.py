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
from AnatomyINRLib.fitting import FitHistory, IGRObjective, budget, optimise, scaled_for_points
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
        warm_start_note: Why a given init field was not used (None if it was, or none was given).
    """

    field: NeuralField
    iterations: int
    seconds: float
    final_loss: float
    converged: bool
    warm_started: bool
    history: FitHistory
    warm_start_note: Optional[str] = None


def _warm_start(points: np.ndarray, config: SurfaceFitConfig, init: Optional[NeuralField], seed: int,
                device) -> tuple[Normalization, MLP, Optional[str]]:
    """Frame and network to fit; the third item says why ``init`` was not used (None: warm start).

    A warm start needs a single-output MLP of the config's architecture whose
    frame still holds the points. Otherwise the fit starts from scratch in a
    frame of its own and with the full budget, and the returned note (also
    warned) is what the report carries, so message and report agree.
    """
    note = None
    if init is not None:
        note = _unusable(points, config, init)
        if note is None:
            return init.normalization, copy.deepcopy(init.network).to(device), None
        warnings.warn(note, stacklevel=3)
    net = MLP(config.network, generator=torch.Generator().manual_seed(int(seed))).to(device)
    return Normalization.fit(points, config.extent), net, note


def _unusable(points: np.ndarray, config: SurfaceFitConfig, init: NeuralField) -> Optional[str]:
    if init.out_dim != 1:
        return (f"init field: it has {init.out_dim} outputs (a nested field); a single surface cannot warm-start "
                "from a multi-output network; fitting from scratch")
    if not isinstance(init.network, MLP) or init.network.config.to_dict() != config.network.to_dict():
        return "init field: architecture differs from the preset; fitting from scratch"
    if np.abs(init.normalization.to_normalized(points)).max() > _WARM_START_MAX_EXTENT:
        return "init field: points moved outside its frame; fitting from scratch"
    return None


def fit_sdf(
    points: PointSet,
    config: SurfaceFitConfig,
    *,
    init_field: Optional[NeuralField] = None,
    seed: int = 0,
    device: str = "auto",
    iterations: Optional[int] = None,
    progress: "ProgressReporter | Callable | None" = None,
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
        progress: Reporter or callback for "fit" events (may cancel).
        extra_loss: Optional object, or list of objects, with ``bind(normalization, device,
            generator)`` returning ``loss(network) -> tensor`` added to every iteration's
            loss (slice-click supervision, surface/slice_loss.py; certified empty space,
            fitting/outside.py).

    Returns:
        SDFFit with the field in RAS mm.

    Raises:
        FitError: the loss became NaN/inf.
        Cancelled: the caller cancelled.
    """
    config.validate()
    progress = ProgressReporter.wrap(progress)
    dev = resolve_device(device)
    normalization, net, note = _warm_start(points.points, config, init_field, seed, dev)
    reuse = init_field is not None and note is None
    # A cold fit without an explicit count gets a budget that grows with the points; warm refits keep theirs.
    optim = config.optim if (reuse or iterations is not None) else scaled_for_points(config.optim, len(points.points))
    total, lr = budget(optim, iterations, warm_start=reuse)
    gen = make_generator(seed, dev)
    objective = IGRObjective.from_points([normalization.to_normalized(points.points)], [points.normals],
                                         config.sampling, config.loss, gen, dev)
    extras = [] if extra_loss is None else list(extra_loss) if isinstance(extra_loss, (list, tuple)) else [extra_loss]
    for extra in extras:  # e.g. slice clicks: drawn after the IGR samples, from the same generator
        objective.extra_terms.append(extra.bind(normalization, dev, gen))
    run = optimise(net, objective, optim, total=total, lr=lr, scale=normalization.scale, progress=progress)
    fitted = NeuralField(net, normalization)
    return SDFFit(fitted, run.iterations, run.seconds, run.final_loss, run.converged, reuse, run.history, note)
