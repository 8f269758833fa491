"""Transformer denoiser over weight tokens (TrIND §2 Stage 2, after G.pt / HyperDiffusion).

Input: noisy tokens x_t (B, K, S) from :class:`~AnatomyINRLib.trees._diffusion_tokens.WeightTokenizer`
and the timestep t (B,). Each token is projected S → d by one shared linear layer; a learned embedding
of its layer index and one of its position inside the layer are added (so tokens of different layers
are told apart although they share the projection). The sinusoidal embedding of t (Vaswani et al. 2017
§3.5, as in the paper: "the sinusoidal embedding of t ... fed to a linear projection layer") passes
through a small MLP and is prepended as one extra token. Pre-LayerNorm transformer encoder blocks
(self-attention without a mask, MLP ×4 with GELU), a final LayerNorm and a linear d → S head.

Output: the prediction for every token (B, K, S); TrIND predicts **x_0** (its eq. 2 and its public
code's START_X; the caption of its Fig. 2 says "noise"), which is the default here ("eps" is an option
of the schedule, the network is the same).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) timesteps → (B, dim) [cos(t ω_i), sin(t ω_i)], ω_i = max_period^(−i/(dim/2)) (Vaswani §3.5)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.to(torch.float32)[:, None] * freqs[None]
    emb = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
    return torch.nn.functional.pad(emb, (0, dim - 2 * half))


class _Block(nn.Module):
    """Pre-LN transformer block: x + Attn(LN(x)); x + MLP(LN(x))."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class WeightDenoiser(nn.Module):
    """The denoiser D(φ) (see module doc). ``width`` 128, ``depth`` 4, ``heads`` 4 in TrIND.

    Args:
        layer_index, position_index: (K,) layer of each token and its position inside the layer
            (``WeightTokenizer.layer_index`` / ``position_index``).
        token_size: S, values per token.
        width, depth, heads, dropout: transformer sizes.
        generator: draws the initial weights (identical on every rank for the same seed).
    """

    def __init__(self, layer_index, position_index, token_size: int, width: int = 128, depth: int = 4,
                 heads: int = 4, dropout: float = 0.0, generator: torch.Generator | None = None) -> None:
        super().__init__()
        layer_index = torch.as_tensor(layer_index, dtype=torch.int64)
        position_index = torch.as_tensor(position_index, dtype=torch.int64)
        self.width = width
        self.token_in = nn.Linear(token_size, width)
        self.layer_embed = nn.Embedding(int(layer_index.max()) + 1, width)
        self.position_embed = nn.Embedding(int(position_index.max()) + 1, width)
        self.time_mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.time_slot = nn.Parameter(torch.zeros(width))  # position embedding of the timestep token
        self.blocks = nn.ModuleList([_Block(width, heads, dropout) for _ in range(depth)])
        self.ln_out = nn.LayerNorm(width)
        self.token_out = nn.Linear(width, token_size)
        # fixed by the tokenizer, rebuilt from the layout on load: not saved with the weights
        self.register_buffer("layer_index", layer_index.clone(), persistent=False)
        self.register_buffer("position_index", position_index.clone(), persistent=False)
        self._init(generator)

    @torch.no_grad()
    def _init(self, generator: torch.Generator | None) -> None:
        """GPT-2 style: N(0, 0.02) for linear weights and embeddings, zero biases, LN = identity."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.weight.normal_(0.0, 0.02, generator=generator)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.MultiheadAttention):
                module.in_proj_weight.normal_(0.0, 0.02, generator=generator)
                module.in_proj_bias.zero_()
                module.out_proj.bias.zero_()
            elif isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
        self.time_slot.normal_(0.0, 0.02, generator=generator)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t (B, K, S), t (B,) int64 → prediction (B, K, S)."""
        h = self.token_in(x_t) + self.layer_embed(self.layer_index) + self.position_embed(self.position_index)
        temb = self.time_mlp(timestep_embedding(t, self.width)) + self.time_slot
        h = torch.cat([temb[:, None], h], dim=1)
        for block in self.blocks:
            h = block(h)
        return self.token_out(self.ln_out(h[:, 1:]))
