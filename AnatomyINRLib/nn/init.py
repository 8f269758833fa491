"""Seeded initialisation of torch layers without the global RNG."""

from __future__ import annotations

import math

import torch
from torch import nn


def default_init_(module: nn.Module, gen: torch.Generator) -> None:
    """Re-draw every Linear/Conv3d weight and bias of ``module`` from ``gen``, as torch's default init does.

    Weights: Kaiming-uniform with a = √5 (bound 1/√fan_in); biases: U(−1/√fan_in, 1/√fan_in).
    The layers' own constructors draw from torch's global RNG; this replaces those draws with the
    run's seeded generator, so the initial weights follow from the seed alone.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Conv3d, nn.Linear)):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=gen)
            if layer.bias is not None:
                fan_in = layer.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(layer.bias, -bound, bound, generator=gen)
