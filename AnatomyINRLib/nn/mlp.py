"""Coordinate MLP for implicit fields with IGR/SAL geometric initialisation.

Architecture of IGR (Gropp et al., ICML 2020) and the vascular paper (Alblas et
al., STACOM 2022, §2.3): ``depth`` hidden fully connected layers of ``width``
units, the input re-injected (concatenated, scaled by 1/√2) before the listed
skip layers, one linear output per field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from AnatomyINRLib.core.config import ConfigBase, check_choice, check_int, check_positive
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.nn.encoding import FourierFeatures

# Largest networks accepted (the paper's IGR net is 512 x 8; a 4096-wide layer is 16.8M weights).
MAX_WIDTH = 4096
MAX_DEPTH = 64


@dataclass
class MLPConfig(ConfigBase):
    """Architecture of a coordinate MLP."""

    in_dim: int = 3
    """Input dimension (3 for xyz)."""
    out_dim: int = 1
    """Number of output fields."""
    width: int = 128
    """Units per hidden layer."""
    depth: int = 4
    """Number of hidden layers."""
    skip_layers: tuple = ()
    """Hidden-layer indices (0-based) whose input is [h, x]/√2 (IGR skip connection)."""
    activation: str = "softplus"
    """"softplus" (β below), "relu" or "sine" (SIREN, ω₀ = 30)."""
    softplus_beta: float = 100.0
    """β of softplus(βx)/β; 100 as in IGR approximates ReLU but stays smooth."""
    geometric_init: bool = True
    """SAL/IGR init so the untrained field is the SDF of a sphere (softplus/relu only)."""
    init_radius: float = 0.5
    """Radius of that sphere in normalised units."""
    fourier_features: int = 0
    """Number of random Fourier frequencies (0 = raw coordinates)."""
    fourier_scale: float = 1.0
    """Standard deviation of the Fourier frequencies."""
    fourier_seed: int = 0
    """Seed of the Fourier matrix (part of the architecture, saved with it)."""

    def validate(self) -> None:
        """Check every field; raise InputError naming the bad one."""
        for name in ("in_dim", "out_dim", "width", "depth"):
            check_int(name, getattr(self, name))
        # Beyond these a fit needs tens of GB and hours per step on the machines this runs on:
        # refuse before allocating instead of thrashing (width 100000 tried to allocate 80 GB).
        check_int("width", self.width, maximum=MAX_WIDTH)
        check_int("depth", self.depth, maximum=MAX_DEPTH)
        check_int("fourier_features", self.fourier_features, minimum=0, maximum=MAX_WIDTH)
        check_choice("activation", self.activation, ("softplus", "relu", "sine"))
        check_positive("softplus_beta", self.softplus_beta)
        check_positive("init_radius", self.init_radius)
        check_positive("fourier_scale", self.fourier_scale)
        check_int("fourier_features", self.fourier_features, minimum=0)
        bad = [s for s in self.skip_layers if not isinstance(s, int) or not 1 <= s < self.depth]
        if bad:
            raise InputError(f"skip_layers: expected indices in [1, {self.depth - 1}], got {list(self.skip_layers)}")


class _Sine(nn.Module):
    def __init__(self, omega: float = 30.0) -> None:
        super().__init__()
        self.omega = omega

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega * x)


def _uninitialised_linear(in_features: int, out_features: int) -> nn.Linear:
    """nn.Linear whose construction draws nothing from torch's global RNG."""
    return torch.nn.utils.skip_init(nn.Linear, in_features, out_features)


class MLP(nn.Module):
    """Coordinate MLP: (N, in_dim) → (N, out_dim).

    Args:
        config: Architecture; see :class:`MLPConfig`.
        generator: CPU ``torch.Generator`` drawing every initial weight; None
            means one seeded with 0. Torch's global RNG is never used, so
            building a network has no side effect and is reproducible.
    """

    def __init__(self, config: MLPConfig,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.encoding = None
        enc_dim = config.in_dim
        if config.fourier_features > 0:
            self.encoding = FourierFeatures(config.in_dim, config.fourier_features, config.fourier_scale, config.fourier_seed)
            enc_dim = self.encoding.out_dim
        self.enc_dim = enc_dim
        self.skips = set(config.skip_layers)
        layers = []
        in_features = enc_dim
        for i in range(config.depth):
            # A layer feeding a skip layer shrinks so that [h, x] is `width` wide.
            out_features = config.width - enc_dim if (i + 1) in self.skips else config.width
            layers.append(_uninitialised_linear(in_features, out_features))
            in_features = config.width
        self.hidden = nn.ModuleList(layers)
        self.head = _uninitialised_linear(config.width, config.out_dim)
        if config.activation == "softplus":
            self.act = nn.Softplus(beta=config.softplus_beta)
        elif config.activation == "relu":
            self.act = nn.ReLU()
        else:
            self.act = _Sine()
        self._initialise(generator if generator is not None else torch.Generator().manual_seed(0))

    @torch.no_grad()
    def _initialise(self, gen: torch.Generator) -> None:
        # torch's default Linear init first, in construction order, then the
        # chosen scheme on top: the same draws torch.manual_seed(s) + nn.Linear
        # would make, taken from ``gen`` instead of the global RNG.
        for lin in [*self.hidden, self.head]:
            nn.init.kaiming_uniform_(lin.weight, a=math.sqrt(5), generator=gen)
            bound = 1.0 / math.sqrt(lin.in_features)
            nn.init.uniform_(lin.bias, -bound, bound, generator=gen)
        cfg = self.config
        if cfg.activation == "sine":
            self._siren_init(gen)
        elif cfg.geometric_init:
            self._geometric_init(gen)

    @torch.no_grad()
    def _geometric_init(self, gen: torch.Generator) -> None:
        """SAL (Atzmon & Lipman 2020, Thm 1) init: f(x) ≈ ‖x‖ − r at start."""
        cfg = self.config
        for i, lin in enumerate(self.hidden):
            nn.init.normal_(lin.weight, 0.0, math.sqrt(2.0) / math.sqrt(lin.out_features), generator=gen)
            nn.init.zeros_(lin.bias)
            if self.encoding is not None:
                # Fourier columns start at zero so the sphere init still holds (IDR's trick).
                if i == 0:
                    lin.weight[:, cfg.in_dim:] = 0.0
                elif i in self.skips:
                    lin.weight[:, -(self.enc_dim - cfg.in_dim):] = 0.0
        mean = math.sqrt(math.pi) / math.sqrt(self.head.in_features)
        nn.init.normal_(self.head.weight, mean, 1e-5, generator=gen)
        nn.init.constant_(self.head.bias, -cfg.init_radius)

    @torch.no_grad()
    def _siren_init(self, gen: torch.Generator) -> None:
        """SIREN init (Sitzmann et al. 2020, §3.2); the field does not start as a sphere."""
        for i, lin in enumerate([*self.hidden, self.head]):
            bound = 1.0 / lin.in_features if i == 0 else math.sqrt(6.0 / lin.in_features) / 30.0
            nn.init.uniform_(lin.weight, -bound, bound, generator=gen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the field.

        Args:
            x: (N, in_dim) normalised coordinates.

        Returns:
            (N, out_dim) field values in normalised units.
        """
        inp = self.encoding(x) if self.encoding is not None else x
        h = inp
        for i, lin in enumerate(self.hidden):
            if i in self.skips:
                h = torch.cat([h, inp], dim=-1) / math.sqrt(2.0)
            h = self.act(lin(h))
        return self.head(h)

    def _slope(self, z: torch.Tensor) -> torch.Tensor:
        """Derivative of the activation at pre-activations ``z`` (same shape)."""
        if self.config.activation == "softplus":
            # d/dz softplus(βz)/β = sigmoid(βz); torch's softplus is linear beyond βz > 20,
            # where sigmoid is 1 to float32 precision.
            return torch.sigmoid(self.config.softplus_beta * z)
        if self.config.activation == "relu":
            return (z > 0).to(z.dtype)
        return self.act.omega * torch.cos(self.act.omega * z)

    def value_and_gradient(self, x: torch.Tensor, output: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Field output ``output`` and its gradient in x, both differentiable in the weights.

        The gradient is the chain rule written out layer by layer (reverse order,
        ∂f/∂h_{l−1} = (∂f/∂h_l ⊙ act'(z_l)) W_l, the skip's x columns added to ∂f/∂x)
        instead of autograd's create_graph backward: a later ``backward`` then
        differentiates plain products and matmuls once, where double backward through
        softplus composes a dozen elementwise kernels per layer (eikonal fits ~17 %
        faster on CPU, same values to float32 rounding).

        Args:
            x: (N, in_dim) normalised coordinates.
            output: Which output field.

        Returns:
            f (N,) and ∇ₓf (N, in_dim).
        """
        inp = self.encoding(x) if self.encoding is not None else x
        h, slopes = inp, []
        for i, lin in enumerate(self.hidden):
            if i in self.skips:
                h = torch.cat([h, inp], dim=-1) / math.sqrt(2.0)
            z = lin(h)
            h = self.act(z)
            slopes.append(self._slope(z))
        f = self.head(h)[:, output]
        g = self.head.weight[output:output + 1]  # (1, width): ∂f/∂h_L
        g_inp = None
        for i in range(len(self.hidden) - 1, -1, -1):
            g = (g * slopes[i]) @ self.hidden[i].weight  # ∂f/∂(input of layer i)
            if i in self.skips:
                d = self.enc_dim
                part = g[:, -d:] / math.sqrt(2.0)
                g_inp = part if g_inp is None else g_inp + part
                g = g[:, :-d] / math.sqrt(2.0)
        g_inp = g if g_inp is None else g_inp + g
        if self.encoding is not None:
            g_inp = self.encoding.pullback(x, g_inp)
        return f, g_inp
