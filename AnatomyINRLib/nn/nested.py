"""One network, K nested signed distance fields, nesting guaranteed by construction.

Alblas et al. ("Going off-grid", STACOM 2022, §2.4, §3.2) fit lumen, inner
wall and outer wall with one K-output MLP and observe that the outputs stay
mostly nested, while noting that this "is not a topological guarantee". Here
the guarantee holds at every point of space. With SDFs negative inside and
outputs ordered innermost first (f₀ = lumen … f_{K−1} = outer wall), the MLP's
raw outputs r₀ (outermost) … r_{K−1} are turned into

    f_{K−1}(x) = r₀(x)
    f_j(x)     = f_{j+1}(x) + t + G(r_{K−1−j}(x), f_{j+1}(x) + t)     (j = K−2 … 0)

with G ≥ 0, so f_j(x) − f_{j+1}(x) ≥ t ≥ 0 for every x: wherever an inner
field is ≤ 0 the next outer one is ≤ −t, hence every inner solid lies inside
its outer solid. Two choices of G (``construction``):

* "smooth_max" (default): G = softplus_β(r − (f_{j+1} + t)), i.e.
  f_j = smoothmax_β(r, f_{j+1} + t) → max(r, f_{j+1} + t) as β → ∞: the CSG
  intersection of the head's own solid with the outer solid eroded by t.
  Where the constraint is inactive f_j = r (an independent SDF head).
* "offset": G = softplus(r), the gap itself is the head (f_j = f_{j+1} + t +
  softplus(r), the form suggested in the issue). Measured worse: the lumen
  loss then moves the outer field more than the gap (d softplus/dr ≈ gap is
  small for thin gaps); lumen Dice 0.88 vs 0.97 (smooth_max) on the nested AAA phantom
  (200 points per surface, 600 iterations of the default preset).

Floating point keeps f_j ≥ f_{j+1} exactly (adding a non-negative number is
monotone under IEEE rounding); the margin t holds up to one rounding error.
If the outer field is 1-Lipschitz (|∇f| ≤ 1, which the eikonal term drives
towards), the inner surface is at least t away from the outer one, i.e. t is
a geometric minimum thickness.

Consequence (documented, by design): inner outputs are not exact distance
functions where the constraint acts (|∇f_j| ≠ 1 along the smooth-max crease
or wherever the offset gap varies). The eikonal term is still applied to
every output (it keeps them distance-like near their surfaces).

``nesting=False`` gives the paper's unconstrained joint network (plain K
outputs), kept as the benchmark baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from AnatomyINRLib.core.config import ConfigBase, check_choice, check_positive
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.nn.mlp import MLP, MLPConfig

NETWORK_KIND = "nested"
"""Registry kind of :class:`NestedSDFNetwork` (stored in saved field files; never rename)."""


@dataclass
class NestedNetworkConfig(ConfigBase):
    """Architecture of a nested K-output SDF network (normalised units)."""

    mlp: MLPConfig = field(default_factory=lambda: MLPConfig(out_dim=3))
    """Trunk; ``out_dim`` must equal ``n_surfaces``."""
    n_surfaces: int = 3
    """K, the number of nested surfaces (2 or 3), innermost first."""
    nesting: bool = True
    """True: nested by construction; False: plain joint outputs (paper baseline)."""
    min_thickness: float = 0.0
    """t, minimum gap between consecutive fields in normalised units (t_mm / scale)."""
    gap_init: tuple = ()
    """Initial gap (normalised units) above ``min_thickness`` per consecutive pair,
    outer pair first; empty = 0.02 each."""
    construction: str = "smooth_max"
    """"smooth_max" or "offset" (see the module docstring)."""
    sharpness: float = 100.0
    """β of the smooth max, in 1/normalised units (larger = closer to a hard max)."""

    def validate(self) -> None:
        """Raise InputError naming the first invalid field."""
        super().validate()
        if not isinstance(self.n_surfaces, int) or not 2 <= self.n_surfaces <= 3:
            raise InputError(f"n_surfaces: expected 2 or 3, got {self.n_surfaces!r}")
        if self.mlp.out_dim != self.n_surfaces or self.mlp.in_dim != 3:
            raise InputError(
                f"mlp: expected in_dim=3 and out_dim={self.n_surfaces}, got {self.mlp.in_dim} and {self.mlp.out_dim}"
            )
        if not isinstance(self.nesting, bool):
            raise InputError(f"nesting: expected true or false, got {self.nesting!r}")
        check_positive("min_thickness", self.min_thickness, allow_zero=True)
        check_choice("construction", self.construction, ("smooth_max", "offset"))
        check_positive("sharpness", self.sharpness)
        if self.gap_init and len(self.gap_init) != self.n_surfaces - 1:
            raise InputError(f"gap_init: expected {self.n_surfaces - 1} values, got {len(self.gap_init)}")
        for g in self.gap_init:
            check_positive("gap_init", g)

    def gaps(self) -> list[float]:
        """Initial gap per pair (outer pair first)."""
        return list(self.gap_init) if self.gap_init else [0.02] * (self.n_surfaces - 1)


def _inverse_softplus(y: float) -> float:
    """z with softplus(z) = y (y > 0), stable for small and large y."""
    return y + math.log(-math.expm1(-y))


class NestedSDFNetwork(nn.Module):
    """(N, 3) normalised coordinates → (N, K) SDFs, innermost first.

    Args:
        config: Architecture; see :class:`NestedNetworkConfig`.
        generator: CPU ``torch.Generator`` drawing the initial weights (see ``nn.MLP``).
    """

    network_kind = NETWORK_KIND

    def __init__(self, config: NestedNetworkConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.out_dim = config.n_surfaces
        self.trunk = MLP(config.mlp, generator=generator)
        if config.nesting:
            self._init_gap_heads()

    @torch.no_grad()
    def _init_gap_heads(self) -> None:
        """Start the inner surfaces as offsets of the outer one by the initial gaps.

        smooth_max: every head keeps the geometric (sphere) init with its radius
        reduced by the cumulative gap, so r − (f_{j+1} + t) = gap > 0 and the
        constraint starts inactive. offset: the gap heads start constant.
        """
        head = self.trunk.head
        cumulative = 0.0
        for j, gap in enumerate(self.config.gaps(), start=1):
            if self.config.construction == "offset":
                head.weight[j].zero_()
                head.bias[j] = _inverse_softplus(gap)
            else:
                cumulative += gap + self.config.min_thickness
                head.weight[j] = head.weight[0]
                head.bias[j] = head.bias[0] + cumulative

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate all K fields.

        Args:
            x: (N, 3) normalised coordinates.

        Returns:
            (N, K) SDF values in normalised units, column 0 innermost.
        """
        raw = self.trunk(x)
        if not self.config.nesting:
            return raw.flip(-1)
        t = self.config.min_thickness
        beta = self.config.sharpness
        outs = [raw[:, 0]]
        for j in range(1, self.out_dim):
            floor = outs[-1] + t
            if self.config.construction == "offset":
                gap = F.softplus(raw[:, j])
            else:
                gap = F.softplus(raw[:, j] - floor, beta=beta, threshold=20.0)
            outs.append(floor + gap)
        return torch.stack(outs[::-1], dim=-1)

    def gaps(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K−1) gaps f_j − f_{j+1} ≥ t (normalised units), innermost pair first."""
        f = self.forward(x)
        return f[:, :-1] - f[:, 1:]


def build_nested_network(config: dict) -> NestedSDFNetwork:
    """Registry builder: plain config dict → module (used when a saved field is reloaded)."""
    return NestedSDFNetwork(NestedNetworkConfig.from_dict(config))
