"""Residual occupancy MLP of TrIND (Sinha et al., MICCAI 2024, §2.1) with a negative-inside output.

Architecture (the DVR/PixelNeRF "ResnetFC" the paper uses): Linear 3→D, then
``blocks`` residual blocks h ← h + W₂ relu(W₁ relu(h)), then relu → Linear D→1.
At D = 128 and 5 blocks: 165,761 parameters in 24 tensors (paper Table 1: 0.17 M).

Initialisation as in the paper's code: Kaiming-normal (fan-in) on the input
layer, the output layer and every block's first layer, **zero** on every
block's second layer (each block starts as the identity), zero biases.

The network is trained so that sigmoid(logit) is the occupancy (paper eq. 1),
but ``forward`` returns **−logit**: negative inside, positive outside, zero on
the 0.5 level set. That is the library's SDF sign convention, so a saved
occupancy field meshes with every SDF tool (``anatomy-inr extract``) at
level 0; it is *not* a distance (see :data:`FIELD_KIND`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from AnatomyINRLib.core.config import ConfigBase, check_int

NETWORK_KIND = "occupancy-resnet"
#: Saved with the field (metadata ``field_kind``): level 0 is the surface, values are −logits, not mm.
FIELD_KIND = "occupancy-logit"


@dataclass
class OccupancyNetworkConfig(ConfigBase):
    """Architecture of :class:`OccupancyResNet`."""

    in_dim: int = 3
    """Input dimension (3 for xyz, normalised to about [−1, 1])."""
    width: int = 128
    """Hidden width D (paper: 128)."""
    blocks: int = 5
    """Residual blocks (paper: 5)."""

    @property
    def out_dim(self) -> int:
        return 1

    def validate(self) -> None:
        """Check every field; raise InputError naming the bad one."""
        check_int("in_dim", self.in_dim)
        check_int("width", self.width, maximum=4096)
        check_int("blocks", self.blocks, minimum=0, maximum=64)


class OccupancyResNet(nn.Module):
    """(N, 3) normalised coordinates → (N, 1) negative logit of occupancy.

    Args:
        config: Architecture.
        generator: CPU ``torch.Generator`` for the initial weights (default: seeded with 0);
            torch's global RNG is never used.
    """

    network_kind = NETWORK_KIND

    def __init__(self, config: OccupancyNetworkConfig | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        config = config or OccupancyNetworkConfig()
        config.validate()
        self.config = config
        self.out_dim = 1
        d = config.width
        skip = torch.nn.utils.skip_init
        self.lin_in = skip(nn.Linear, config.in_dim, d)
        self.fc_0 = nn.ModuleList([skip(nn.Linear, d, d) for _ in range(config.blocks)])
        self.fc_1 = nn.ModuleList([skip(nn.Linear, d, d) for _ in range(config.blocks)])
        self.lin_out = skip(nn.Linear, d, 1)
        self._initialise(generator if generator is not None else torch.Generator().manual_seed(0))

    @torch.no_grad()
    def _initialise(self, gen: torch.Generator) -> None:
        for lin in [self.lin_in, *self.fc_0, self.lin_out]:
            nn.init.kaiming_normal_(lin.weight, a=0.0, mode="fan_in", generator=gen)
        for lin in self.fc_1:
            nn.init.zeros_(lin.weight)
        for lin in [self.lin_in, *self.fc_0, *self.fc_1, self.lin_out]:
            nn.init.zeros_(lin.bias)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3) → (N,) occupancy logits (positive inside)."""
        h = self.lin_in(x)
        for f0, f1 in zip(self.fc_0, self.fc_1):
            h = h + f1(torch.relu(f0(torch.relu(h))))
        return self.lin_out(torch.relu(h))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3) normalised coordinates → (N, 1) −logit (negative inside, 0 on the surface)."""
        return -self.logits(x)[:, None]


def build_occupancy_network(config: dict) -> OccupancyResNet:
    """Registry builder: plain config dict → module (used when a saved field is reloaded)."""
    return OccupancyResNet(OccupancyNetworkConfig.from_dict(config))
