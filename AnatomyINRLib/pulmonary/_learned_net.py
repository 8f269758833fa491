"""Method B network (ImPulSe+, Eq. 6-9): encoder pyramid, template, deformation and correction heads.

H(X, p, v) = T(v)(p + D(f(X), p)) + C(f(X), p)            (Eq. 9)

* f: a 3D ResNet-18 (BasicBlock ×2 per stage, stride-1 stem as in the public code) giving a
  4-level feature pyramid; GroupNorm instead of BatchNorm, because CPU training uses 1-2 cases
  per process and DDP ranks would otherwise keep different running statistics.
* F(p): the pyramid sampled trilinearly at p, concatenated with p (§4.2).
* T(v): a learnable latent vector decoded by upsampling conv blocks into 19-class template
  logits on a coarse cube (§4.3); sampled trilinearly at the deformed point.
* D, C: MLP heads on F(p) (§4.4); D's output layer starts at zero, so training starts from
  the plain template.

Coordinates: points are (N, 3) in the normalised lung box [-1, 1]³, ordered like the volume
axes (i, j, k); ``grid_sample`` wants (x, y, z) = (k, j, i), so they are flipped before sampling.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from AnatomyINRLib.nn.init import default_init_
from AnatomyINRLib.pulmonary.config import N_SEGMENTS, LearnedNetworkConfig

N_CLASSES = N_SEGMENTS + 1  # background + 18 segments


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class BasicBlock3d(nn.Module):
    """ResNet BasicBlock: two 3³ convolutions with a residual (1³ projection when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(c_in, c_out, 3, stride, 1, bias=False)
        self.n1 = _norm(c_out)
        self.conv2 = nn.Conv3d(c_out, c_out, 3, 1, 1, bias=False)
        self.n2 = _norm(c_out)
        self.skip = None
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(nn.Conv3d(c_in, c_out, 1, stride, bias=False), _norm(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.n1(self.conv1(x)))
        y = self.n2(self.conv2(y))
        return F.relu(y + (x if self.skip is None else self.skip(x)))


class ResNet18Pyramid(nn.Module):
    """(B, C_in, S, S, S) → [(B, w, S³), (B, 2w, (S/2)³), (B, 4w, (S/4)³), (B, 8w, (S/8)³)]."""

    def __init__(self, c_in: int, width: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(c_in, width, 3, 1, 1, bias=False), _norm(width), nn.ReLU())
        widths = [width, 2 * width, 4 * width, 8 * width]
        stages, prev = [], width
        for n, w in enumerate(widths):
            stages.append(nn.Sequential(BasicBlock3d(prev, w, 1 if n == 0 else 2), BasicBlock3d(w, w, 1)))
            prev = w
        self.stages = nn.ModuleList(stages)
        self.out_channels = sum(widths)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


class TemplateNet(nn.Module):
    """Latent v (1, L, 1, 1, 1) → template logits (1, 19, T, T, T), T = 2·2^len(channels) (Eq. 6)."""

    def __init__(self, latent: int, channels: tuple) -> None:
        super().__init__()
        self.latent = nn.Parameter(torch.rand(1, latent, 1, 1, 1))
        blocks, prev = [], latent
        for c in channels:
            blocks += [nn.Conv3d(prev, c, 3, 1, 1), _norm(c), nn.LeakyReLU(0.2),
                       nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)]
            prev = c
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Conv3d(prev, N_CLASSES, 1)

    def forward(self) -> torch.Tensor:
        x = F.interpolate(self.latent, scale_factor=2, mode="nearest")
        return self.out(self.blocks(x))


class ImplicitHead(nn.Module):
    """(…, C_f) point encoding → (…, C_out): two LayerNorm/LeakyReLU layers with a residual projection."""

    def __init__(self, c_in: int, width: int, c_out: int, dropout: float, zero_out: bool) -> None:
        super().__init__()
        self.fc1, self.ln1 = nn.Linear(c_in, width), nn.LayerNorm(width)
        self.fc2, self.ln2 = nn.Linear(width, width), nn.LayerNorm(width)
        self.proj = nn.Linear(c_in, width)
        self.dropout = float(dropout)
        self.generator: Optional[torch.Generator] = None  # draws the dropout masks (set by the trainer)
        self.out = nn.Linear(width, c_out)
        self.zero_out = zero_out
        self.zero_output_layer()

    def zero_output_layer(self) -> None:
        """The deformation head starts at zero: training starts from the template itself."""
        if self.zero_out:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def drop(self, h: torch.Tensor) -> torch.Tensor:
        """Inverted dropout whose mask comes from ``self.generator`` (never torch's global RNG)."""
        if not self.training or self.dropout <= 0.0:
            return h
        if self.generator is None or self.generator.device != h.device:
            self.generator = torch.Generator(device=h.device).manual_seed(0)
        keep = torch.rand(h.shape, generator=self.generator, device=h.device) >= self.dropout
        return h * keep.to(h.dtype) / (1.0 - self.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.leaky_relu(self.ln1(self.fc1(x)), 0.2))
        h = F.leaky_relu(self.ln2(self.fc2(h)), 0.2) + self.proj(x)
        return self.out(self.drop(h))


def sample_volume(volume: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Trilinear samples (B, N, C) of (B, C, I, J, K) at (B, N, 3) normalised (i, j, k) points."""
    grid = points.flip(-1)[:, None, None]  # (B, 1, 1, N, 3) as (k, j, i)
    out = F.grid_sample(volume, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[:, :, 0, 0].transpose(1, 2)


class ImPulSeNet(nn.Module):
    """The whole Method B network; ``forward(volume, points) -> (logits (B, N, 19), deformation (B, N, 3))``."""

    def __init__(self, config: LearnedNetworkConfig, generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.encoder = ResNet18Pyramid(config.n_input_channels, config.encoder_width)
        self.template = TemplateNet(config.template_latent, tuple(config.template_channels))
        c_f = self.encoder.out_channels + 3
        self.deformation = ImplicitHead(c_f, config.head_width, 3, config.head_dropout, zero_out=True)
        self.correction = ImplicitHead(c_f, config.head_width, N_CLASSES, config.head_dropout, zero_out=False)
        self._initialise(generator if generator is not None else torch.Generator().manual_seed(0))

    def _initialise(self, gen: torch.Generator) -> None:
        """Every initial weight from ``gen`` (torch's default layer init, drawn without the global RNG)."""
        default_init_(self, gen)
        nn.init.uniform_(self.template.latent, 0.0, 1.0, generator=gen)
        self.deformation.zero_output_layer()

    def set_dropout_generator(self, gen: torch.Generator) -> None:
        """The generator the heads' dropout masks are drawn from (one per epoch and rank)."""
        self.deformation.generator = gen
        self.correction.generator = gen

    def encode(self, volume: torch.Tensor) -> list[torch.Tensor]:
        """Feature pyramid f(X) of (B, C_in, S, S, S) inputs."""
        return self.encoder(volume)

    def decode(self, pyramid: list[torch.Tensor], points: torch.Tensor, template: torch.Tensor = None):
        """Eq. 9 at (B, N, 3) points given the pyramid (and optionally a precomputed template)."""
        feats = torch.cat([sample_volume(f, points) for f in pyramid] + [points], dim=-1)
        delta = self.deformation(feats)
        tmpl = self.template() if template is None else template
        raw = sample_volume(tmpl.expand(points.shape[0], -1, -1, -1, -1), points + delta)
        return raw + self.correction(feats), delta

    def forward(self, volume: torch.Tensor, points: torch.Tensor):
        return self.decode(self.encode(volume), points)


def segment_loss(logits: torch.Tensor, labels: torch.Tensor, delta: torch.Tensor, ce_weight: float,
                 dice_weight: float, deformation_weight: float) -> tuple[torch.Tensor, dict]:
    """L = α·CE + β·Dice + γ·‖Δ‖₂ (ImPulSe+ Eq. 10-11).

    Args:
        logits: (…, 19) class logits; labels: (…) int64 in 0-18; delta: (…, 3) deformation.

    Dice is one soft Dice over all foreground classes together (as the public code):
    1 − 2 Σ p·y / (Σ p + Σ y) over points and classes 1-18 of the softmax p and one-hot y.
    ‖Δ‖₂ is the Frobenius norm of the whole deformation tensor.
    """
    flat, y = logits.reshape(-1, N_CLASSES), labels.reshape(-1)
    ce = F.cross_entropy(flat, y)
    prob = torch.softmax(flat, dim=-1)[:, 1:]
    onehot = F.one_hot(y, N_CLASSES)[:, 1:].to(prob.dtype)
    dice = 1.0 - 2.0 * (prob * onehot).sum() / (prob.sum() + onehot.sum()).clamp_min(1e-6)
    reg = torch.linalg.vector_norm(delta) if delta is not None else logits.new_zeros(())
    total = ce_weight * ce + dice_weight * dice + deformation_weight * reg
    return total, {"ce": float(ce.detach()), "dice": float(dice.detach()), "deformation": float(reg.detach())}
