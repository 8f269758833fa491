"""Transformer denoiser over weight tokens (TrIND §2 Stage 2, after G.pt / HyperDiffusion).

Input: noisy tokens x_t (B, K, S) from :class:`~AnatomyINRLib.trees._diffusion_tokens.WeightTokenizer`
and the timestep t (B,). Each token is projected S → d, either by its own linear layer (``per_token``,
as TrIND's public code does: one Linear in and one out per token) or by one linear layer all tokens
share; a learned embedding of its layer index and one of its position inside the layer are added.
The sinusoidal embedding of t (Vaswani et al. 2017 §3.5, as in the paper: "the sinusoidal embedding
of t ... fed to a linear projection layer") passes through a small MLP and is prepended as one extra
token. Pre-LayerNorm transformer encoder blocks
(self-attention without a mask, MLP ×4 with GELU), a final LayerNorm and a linear d → S head (per
token, or shared).

Why per token: a shared d → S head with d < S puts every token's output in one d-dimensional
subspace of R^S, the same for all K tokens, while the training trees' tokens differ in a different
subspace at every position; a head per token can hold each position's own (with N training trees,
at most N − 1 dimensions, so d = 128 holds all of them for N ≤ 129). Measured on 100 trees it halves
the loss but does not make the samples tree-like (docs/tree-synthesis-stage2-record.md).

With ``hull`` the output is not per token: x̂_0 is a convex combination of the training networks'
tokens, weighted by a softmax over a linear map of the mean output token.

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
        per_token: one S → d and one d → S linear layer per token instead of one shared pair.
        hull: optional (N, K, S) tokens of the N training networks: the output is then x̂_0 itself,
            ``softmax(A · mean_k h_k) · hull``, a convex combination of the training networks
            (see :class:`~AnatomyINRLib.trees.config.DiffusionConfig` ``head``).
        generator: draws the initial weights (identical on every rank for the same seed).
    """

    def __init__(self, layer_index, position_index, token_size: int, width: int = 128, depth: int = 4,
                 heads: int = 4, dropout: float = 0.0, generator: torch.Generator | None = None,
                 per_token: bool = False, hull: torch.Tensor | None = None) -> None:
        super().__init__()
        layer_index = torch.as_tensor(layer_index, dtype=torch.int64)
        position_index = torch.as_tensor(position_index, dtype=torch.int64)
        self.width, self.per_token = width, bool(per_token)
        k = len(layer_index)
        if self.per_token:  # (K, S, d) and (K, d, S): token k's own linear maps
            self.token_in_weight = nn.Parameter(torch.empty(k, token_size, width))
            self.token_in_bias = nn.Parameter(torch.zeros(k, width))
            if hull is None:  # a hull head has no per-token output (DDP refuses unused parameters)
                self.token_out_weight = nn.Parameter(torch.empty(k, width, token_size))
                self.token_out_bias = nn.Parameter(torch.zeros(k, token_size))
        else:
            self.token_in = nn.Linear(token_size, width)
        self.layer_embed = nn.Embedding(int(layer_index.max()) + 1, width)
        self.position_embed = nn.Embedding(int(position_index.max()) + 1, width)
        self.time_mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.time_slot = nn.Parameter(torch.zeros(width))  # position embedding of the timestep token
        self.blocks = nn.ModuleList([_Block(width, heads, dropout) for _ in range(depth)])
        self.ln_out = nn.LayerNorm(width)
        if hull is not None:  # saved with the weights: a checkpoint samples without the training set
            self.register_buffer("hull", torch.as_tensor(hull, dtype=torch.float32).clone())
            self.hull_logits = nn.Linear(width, self.hull.shape[0])
        elif not self.per_token:
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
        if self.per_token:
            self.token_in_weight.normal_(0.0, 0.02, generator=generator)
            if hasattr(self, "token_out_weight"):
                self.token_out_weight.normal_(0.0, 0.02, generator=generator)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, temperature: float = 1.0,
                return_mixture: bool = False):
        """x_t (B, K, S), t (B,) int64 → prediction (B, K, S).

        ``temperature`` divides the hull head's logits (sampling only; other heads ignore it).
        ``return_mixture``: return ``(prediction, mixture)``, the hull head's (B, N) convex weights
        over the training networks (None for the other heads): how many networks a sample blends.
        """
        if self.per_token:
            h = torch.einsum("bks,ksd->bkd", x_t, self.token_in_weight) + self.token_in_bias
        else:
            h = self.token_in(x_t)
        h = h + self.layer_embed(self.layer_index) + self.position_embed(self.position_index)
        temb = self.time_mlp(timestep_embedding(t, self.width).to(h.dtype)) + self.time_slot
        h = torch.cat([temb[:, None], h], dim=1)
        for block in self.blocks:
            h = block(h)
        h = self.ln_out(h[:, 1:])
        mix = None
        if hasattr(self, "hull"):
            mix = torch.softmax(self.hull_logits(h.mean(dim=1)) / temperature, dim=1)  # (B, N)
            out = torch.einsum("bn,nks->bks", mix, self.hull.to(h.dtype))
        elif self.per_token:
            out = torch.einsum("bkd,kds->bks", h, self.token_out_weight) + self.token_out_bias
        else:
            out = self.token_out(h)
        return (out, mix) if return_mixture else out
