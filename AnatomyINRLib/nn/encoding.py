"""Random Fourier feature encoding (Tancik et al., NeurIPS 2020)."""

from __future__ import annotations

import math

import torch
from torch import nn


class FourierFeatures(nn.Module):
    """x ↦ [x, sin(2π B x), cos(2π B x)] with a fixed Gaussian matrix B.

    Args:
        in_dim: Input dimension (3 for coordinates).
        n_features: Number of frequencies (rows of B); output dim is in_dim + 2·n_features.
        scale: Standard deviation of B's entries, in cycles per normalised unit.
        seed: Seed for B, so a saved field rebuilds the same encoding.
    """

    def __init__(self, in_dim: int, n_features: int, scale: float, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(int(seed))
        self.register_buffer("B", torch.randn(n_features, in_dim, generator=gen) * scale)
        self.in_dim = in_dim
        self.out_dim = in_dim + 2 * n_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_dim) → (N, in_dim + 2·n_features)."""
        proj = 2.0 * math.pi * (x @ self.B.T)
        return torch.cat([x, torch.sin(proj), torch.cos(proj)], dim=-1)

    def pullback(self, x: torch.Tensor, g_enc: torch.Tensor) -> torch.Tensor:
        """Chain rule through the encoding: (N, out_dim) ∂f/∂enc at ``x`` → (N, in_dim) ∂f/∂x.

        d sin(p)/dx = 2π cos(p) B and d cos(p)/dx = −2π sin(p) B, with p = 2π B x.
        """
        proj = 2.0 * math.pi * (x @ self.B.T)
        n = self.B.shape[0]
        g_sin, g_cos = g_enc[:, self.in_dim:self.in_dim + n], g_enc[:, self.in_dim + n:]
        mixed = g_sin * torch.cos(proj) - g_cos * torch.sin(proj)
        return g_enc[:, :self.in_dim] + (2.0 * math.pi) * (mixed @ self.B)
