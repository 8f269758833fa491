"""Layer-wise tokenisation of flattened INR weights for the weight-space diffusion model (TrIND §2, Stage 2).

A data set of N networks of one architecture is a float32 array ``(N, P)`` plus its **layout**: the
ordered list of ``(parameter name, shape)`` of the network's ``state_dict``, so that row ``i`` is the
concatenation of every tensor of network ``i`` flattened in that order (:func:`flatten_state_dict`).

The paper decomposes each weight vector "layer by layer into k tokens" so every element keeps its
place across all trees. Here each parameter tensor (a "layer") is flattened and cut into tokens of a
fixed size ``token_size``; the last token of a layer is padded with zeros. Every token carries the
index of its layer and its position inside the layer (for the denoiser's learned embeddings).

Per-layer normalisation (the paper): before tokenising, layer ``l``'s values become ``(x − m_l) / s_l``
with ``m_l`` the mean of all of layer ``l``'s values in the training set and ``s_l`` their standard
deviation rounded to a power of two. Per-parameter normalisation (``DiffusionConfig.normalisation``
"parameter"): ``m`` is the training set's mean of each single weight (the mean network) and ``s_l`` the
spread of layer ``l``'s deviations from it. When the INRs share one basin (warm starts from one
template) the deviations are far smaller than the layer's spread of values, so the denoiser models
only what differs between trees and its residual error moves a sample less far from a valid network.
A layer that is the same in every training network (per-parameter normalisation, e.g. the weight
matrices of networks fitted with one shared decoder, ``TreeFitConfig.share`` "biases") has spread 0:
it gets scale 0 and no tokens, and decoding puts its one value back, so the denoiser sees only what
varies (for 64-wide networks with shared matrices: 12 tokens instead of 94). Both statistics are
float32 numbers and the arithmetic is done in float64, so the inverse restores the float32 weight
vector bit for bit (a power-of-two scale divides and multiplies exactly; ``x − m``
of two float32 numbers is exact in float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from AnatomyINRLib.core.errors import InputError

Layout = list  # [(name: str, shape: tuple[int, ...]), ...]


def layout_of(state_dict: dict) -> list:
    """The layout of a ``state_dict``: ``[(name, shape), ...]`` in its own order."""
    return [(str(k), tuple(int(s) for s in v.shape)) for k, v in state_dict.items()]


def layout_size(layout) -> int:
    """P: total number of values in a layout."""
    return int(sum(math.prod(shape) for _, shape in layout))


def layout_to_json(layout) -> list:
    """JSON-ready form ``[[name, [dims...]], ...]`` (stored in checkpoint metadata)."""
    return [[name, list(shape)] for name, shape in layout]


def layout_from_json(data) -> list:
    """Inverse of :func:`layout_to_json`."""
    try:
        return [(str(name), tuple(int(s) for s in shape)) for name, shape in data]
    except (TypeError, ValueError) as exc:
        raise InputError(f"layout: expected [[name, [dims...]], ...], got {data!r}") from exc


def check_layout(layout) -> list:
    """Validate a layout (non-empty, unique names, positive dims); returns it as a list of tuples."""
    layout = layout_from_json(layout)
    if not layout:
        raise InputError("layout: expected at least one (name, shape) entry")
    names = [n for n, _ in layout]
    if len(set(names)) != len(names):
        raise InputError(f"layout: parameter names must be unique, got {names}")
    for name, shape in layout:
        if any(s < 1 for s in shape):
            raise InputError(f"layout: parameter {name!r} has an empty shape {shape}")
    return layout


def flatten_state_dict(state_dict: dict, layout) -> np.ndarray:
    """(P,) float32 vector of a network's parameters in ``layout`` order.

    Raises:
        InputError: a name of the layout is missing, a shape differs, or there are extra tensors.
    """
    layout = check_layout(layout)
    extra = sorted(set(state_dict) - {n for n, _ in layout})
    if extra:
        raise InputError(f"state_dict: tensors {extra} are not in the layout")
    parts = []
    for name, shape in layout:
        if name not in state_dict:
            raise InputError(f"state_dict: missing tensor {name!r} of the layout")
        value = state_dict[name]
        value = value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
        if tuple(value.shape) != shape:
            raise InputError(f"state_dict: tensor {name!r} has shape {tuple(value.shape)}, layout says {shape}")
        parts.append(value.astype(np.float32).reshape(-1))
    return np.concatenate(parts)


def unflatten_vector(vector: np.ndarray, layout) -> dict:
    """Inverse of :func:`flatten_state_dict`: name → float32 torch tensor of its shape."""
    layout = check_layout(layout)
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    if vector.size != layout_size(layout):
        raise InputError(f"vector: has {vector.size} values, the layout needs {layout_size(layout)}")
    out, start = {}, 0
    for name, shape in layout:
        n = math.prod(shape)
        out[name] = torch.from_numpy(vector[start:start + n].reshape(shape).copy())
        start += n
    return out


def _power_of_two(value: float) -> float:
    """The power of two nearest to ``value`` in log scale (1 for a zero or non-finite spread)."""
    if not np.isfinite(value) or value <= 0:
        return 1.0
    return float(2.0 ** round(math.log2(value)))


@dataclass
class WeightTokenizer:
    """Tokens of size ``token_size`` per layer plus per-layer normalisation (see module doc).

    Attributes:
        layout: [(name, shape), ...] of the INR.
        token_size: values per token (S).
        mean: (L,) float32 per-layer mean m_l, or (P,) float32 per-parameter mean.
        scale: (L,) float32 per-layer power-of-two spread s_l; 0 for a layer constant over the training
            set (per-parameter means only), which then has no tokens.
    """

    layout: list
    token_size: int
    mean: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        self.layout = check_layout(self.layout)
        if int(self.token_size) != self.token_size or self.token_size < 1:
            raise InputError(f"token_size: expected a positive integer, got {self.token_size!r}")
        self.token_size = int(self.token_size)
        self.mean = np.asarray(self.mean, dtype=np.float32).reshape(-1)
        self.scale = np.asarray(self.scale, dtype=np.float32).reshape(-1)
        sizes = [math.prod(s) for _, s in self.layout]
        if self.mean.size not in (len(self.layout), sum(sizes)) or self.scale.size != len(self.layout):
            raise InputError(f"tokenizer statistics: expected {len(self.layout)} per-layer spreads and "
                             f"{len(self.layout)} per-layer or {sum(sizes)} per-parameter means")
        self.per_parameter = self.mean.size == sum(sizes) and sum(sizes) != len(self.layout)
        constant = self.scale == 0
        if (not np.all(np.isfinite(self.scale)) or np.any(self.scale < 0) or np.all(constant)
                or (np.any(constant) and not self.per_parameter)):
            raise InputError("tokenizer statistics: spreads must be finite and >= 0, and a spread of 0 (a constant "
                             "layer) needs per-parameter means and at least one layer that varies")
        self.tokens_per_layer = [0 if sc == 0 else -(-n // self.token_size) for n, sc in zip(sizes, self.scale)]
        self.sizes = sizes
        # layer index and position-in-layer of every token, (K,) int64 each
        self.layer_index = np.repeat(np.arange(len(sizes)), self.tokens_per_layer)
        self.position_index = np.concatenate([np.arange(k) for k in self.tokens_per_layer])

    @classmethod
    def fit(cls, weights: np.ndarray, layout, token_size: int, per_parameter: bool = False) -> "WeightTokenizer":
        """Statistics of a training set ``weights`` (N, P): per-layer means, or per-parameter ones."""
        layout = check_layout(layout)
        weights = check_weights(weights, layout)
        means, spreads, start = [], [], 0
        for _, shape in layout:
            block = weights[:, start:start + math.prod(shape)].astype(np.float64)
            start += math.prod(shape)
            mean = block.mean(axis=0).astype(np.float32) if per_parameter else np.float32(block.mean())
            means.append(np.atleast_1d(mean))
            spreads.append(float((block - mean.astype(np.float64)).std() if per_parameter else block.std()))
        # a layer equal in every network is not diffused, unless nothing varies (then all are, as before)
        drop = per_parameter and any(s > 0 for s in spreads)
        scales = [0.0 if drop and s == 0 else _power_of_two(s) for s in spreads]
        return cls(layout, token_size, np.concatenate(means), np.array(scales, np.float32))

    def _mean(self, li: int, start: int, n: int):
        """Layer ``li``'s mean: a float, or (n,) float64 per-parameter means starting at ``start``."""
        if self.per_parameter:
            return torch.from_numpy(self.mean[start:start + n].astype(np.float64))
        return float(self.mean[li])

    @property
    def n_tokens(self) -> int:
        """K: tokens per network."""
        return int(sum(self.tokens_per_layer))

    @property
    def n_layers(self) -> int:
        return len(self.layout)

    @property
    def max_tokens_per_layer(self) -> int:
        return int(max(self.tokens_per_layer))

    def encode(self, weights) -> torch.Tensor:
        """(N, P) weights (numpy or torch) → (N, K, S) float64 normalised, zero-padded tokens."""
        w = torch.as_tensor(np.asarray(weights) if not torch.is_tensor(weights) else weights).to(torch.float64)
        if w.ndim != 2 or w.shape[1] != sum(self.sizes):
            raise InputError(f"weights: expected shape (N, {sum(self.sizes)}), got {tuple(w.shape)}")
        pieces, start = [], 0
        for li, n in enumerate(self.sizes):
            if self.tokens_per_layer[li] == 0:  # constant over the training set: not diffused
                start += n
                continue
            block = (w[:, start:start + n] - self._mean(li, start, n)) / float(self.scale[li])
            start += n
            pad = self.tokens_per_layer[li] * self.token_size - n
            block = torch.nn.functional.pad(block, (0, pad))
            pieces.append(block.reshape(w.shape[0], self.tokens_per_layer[li], self.token_size))
        return torch.cat(pieces, dim=1)

    def decode(self, tokens: torch.Tensor) -> np.ndarray:
        """(N, K, S) tokens → (N, P) float32 weights; the padding is dropped."""
        t = torch.as_tensor(tokens).detach().cpu().to(torch.float64)
        if t.ndim != 3 or t.shape[1:] != (self.n_tokens, self.token_size):
            raise InputError(f"tokens: expected shape (N, {self.n_tokens}, {self.token_size}), got {tuple(t.shape)}")
        out, first, start = [], 0, 0
        for li, n in enumerate(self.sizes):
            k = self.tokens_per_layer[li]
            if k == 0:  # a constant layer: its training-set value
                out.append(self._mean(li, start, n)[None].expand(t.shape[0], n))
                start += n
                continue
            block = t[:, first:first + k].reshape(t.shape[0], -1)[:, :n]
            first += k
            out.append(block * float(self.scale[li]) + self._mean(li, start, n))
            start += n
        return torch.cat(out, dim=1).numpy().astype(np.float32)

    def padding_mask(self) -> torch.Tensor:
        """(K, S) bool: True where a token slot holds a real value (False = padding)."""
        mask = torch.zeros(self.n_tokens, self.token_size, dtype=torch.bool)
        first = 0
        for li, n in enumerate(self.sizes):
            k = self.tokens_per_layer[li]
            if k == 0:
                continue
            mask[first:first + k].view(-1)[:n] = True
            first += k
        return mask


def check_weights(weights, layout) -> np.ndarray:
    """``weights`` as a finite float32 (N, P) array matching ``layout``; InputError otherwise."""
    w = np.asarray(weights)
    if w.ndim != 2 or w.shape[0] < 1:
        raise InputError(f"weights: expected a (N, P) array with N >= 1, got shape {w.shape}")
    if w.shape[1] != layout_size(layout):
        raise InputError(f"weights: rows have {w.shape[1]} values, the layout needs {layout_size(layout)}")
    w = w.astype(np.float32, copy=False)
    if not np.all(np.isfinite(w)):
        raise InputError("weights: contains NaN or infinite values")
    return w
