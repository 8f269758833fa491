"""Graph operators on the template mesh in plain torch (sparse matrices, no graph library).

With A the (V, V) binary adjacency of the mesh edges and D = diag(degree):

* ``"none"``: L = D − A (the unnormalised Laplacian; ImplicitMeshNet's public code uses it
  for its smoothing loss);
* ``"sym"``: L = I − D^{-1/2} A D^{-1/2} (symmetric normalised; the paper's §2 wording);
  its null vector is D^{1/2}·1, so it does **not** vanish on a constant field when degrees
  differ (the icosphere has degrees 5 and 6);
* ``"uniform"``: L = I − D^{-1} A (random walk / umbrella operator): (LV)_i = v_i − mean of its
  neighbours, zero on constants and translation-invariant: the "deviation from the average of
  the neighbours" that the paper's smoothing loss describes.

Chebyshev convolution (Defferrard et al. 2016, as in Kong et al. 2021's decoder):
    y = Σ_{k<K} T_k(L̃) x W_k + b,  T_0 = I, T_1 = L̃, T_k = 2 L̃ T_{k−1} − T_{k−2},
with L̃ = 2 L_sym / λ_max − I and λ_max = 2 (the usual approximation), i.e.
L̃ = −D^{-1/2} A D^{-1/2}. K counts the polynomials (K = 1 is a per-vertex linear layer, K = 2
uses one-ring neighbours; the public code's K = 2).

Graph convolution of Kipf & Welling (2016), used by the mesh encoder of g_φ:
    y = Â x W + b,  Â = D̃^{-1/2} (A + I) D̃^{-1/2},  D̃ = D + I.

Features are (B, V, C) or (V, C) tensors; the sparse (V, V) operator is shared over the batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.image_to_mesh._template import mesh_edges

LAPLACIAN_KINDS = ("none", "sym", "uniform")


def _adjacency(faces: np.ndarray, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every mesh edge: (2, 2E) int64 index array and the (V,) degrees."""
    e = mesh_edges(faces)
    idx = np.concatenate([e, e[:, ::-1]]).T
    deg = np.bincount(idx[0], minlength=n_vertices).astype(np.float64)
    if np.any(deg == 0):
        raise InputError(f"faces: {int(np.count_nonzero(deg == 0))} vertex(es) belong to no face")
    return idx, deg


def _sparse(rows, cols, vals, n: int) -> torch.Tensor:
    index = torch.as_tensor(np.stack([rows, cols]), dtype=torch.int64)
    return torch.sparse_coo_tensor(index, torch.as_tensor(vals, dtype=torch.float32), (n, n),
                                   check_invariants=True).coalesce()


def graph_laplacian(faces: np.ndarray, n_vertices: int, kind: str = "uniform") -> torch.Tensor:
    """The (V, V) sparse float32 Laplacian of a mesh's edge graph ("none", "sym" or "uniform", see above)."""
    if kind not in LAPLACIAN_KINDS:
        raise InputError(f"kind: expected one of {list(LAPLACIAN_KINDS)}, got {kind!r}")
    idx, deg = _adjacency(faces, n_vertices)
    if kind == "none":
        off = -np.ones(idx.shape[1])
        diag = deg
    elif kind == "sym":
        off = -1.0 / np.sqrt(deg[idx[0]] * deg[idx[1]])
        diag = np.ones(n_vertices)
    else:
        off = -1.0 / deg[idx[0]]
        diag = np.ones(n_vertices)
    ar = np.arange(n_vertices)
    return _sparse(np.concatenate([idx[0], ar]), np.concatenate([idx[1], ar]), np.concatenate([off, diag]), n_vertices)


def chebyshev_operator(faces: np.ndarray, n_vertices: int) -> torch.Tensor:
    """L̃ = 2 L_sym / 2 − I = −D^{-1/2} A D^{-1/2}: (V, V) sparse, spectrum in [−1, 1]."""
    idx, deg = _adjacency(faces, n_vertices)
    return _sparse(idx[0], idx[1], -1.0 / np.sqrt(deg[idx[0]] * deg[idx[1]]), n_vertices)


def gcn_operator(faces: np.ndarray, n_vertices: int) -> torch.Tensor:
    """Â = D̃^{-1/2} (A + I) D̃^{-1/2} of Kipf & Welling: (V, V) sparse."""
    idx, deg = _adjacency(faces, n_vertices)
    d = deg + 1.0
    ar = np.arange(n_vertices)
    rows, cols = np.concatenate([idx[0], ar]), np.concatenate([idx[1], ar])
    return _sparse(rows, cols, 1.0 / np.sqrt(d[rows] * d[cols]), n_vertices)


def apply_sparse(op: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """op @ x for x of shape (V, C) or (B, V, C); differentiable w.r.t. x."""
    if x.dim() == 2:
        return torch.sparse.mm(op, x)
    b, v, c = x.shape
    y = torch.sparse.mm(op, x.permute(1, 0, 2).reshape(v, b * c))
    return y.reshape(v, b, c).permute(1, 0, 2)


class ChebConv(nn.Module):
    """Chebyshev graph convolution with K polynomials (module docstring); operator given per call.

    Args:
        c_in, c_out: Feature channels.
        k: Number of Chebyshev polynomials (≥ 1).
    """

    def __init__(self, c_in: int, c_out: int, k: int = 2) -> None:
        super().__init__()
        if k < 1:
            raise InputError(f"k: expected at least one Chebyshev polynomial, got {k}")
        self.k = int(k)
        self.weight = nn.Parameter(torch.empty(self.k, c_in, c_out))
        self.bias = nn.Parameter(torch.zeros(c_out))
        bound = 1.0 / math.sqrt(c_in * self.k)
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor, op: torch.Tensor) -> torch.Tensor:
        """x (B, V, C_in) or (V, C_in), op = L̃ (V, V) sparse → (…, V, C_out)."""
        t_prev, t_cur = None, x
        out = t_cur @ self.weight[0]
        for k in range(1, self.k):
            t_next = apply_sparse(op, t_cur) if k == 1 else 2.0 * apply_sparse(op, t_cur) - t_prev
            t_prev, t_cur = t_cur, t_next
            out = out + t_cur @ self.weight[k]
        return out + self.bias


class GCNConv(nn.Module):
    """Kipf & Welling graph convolution y = Â x W + b (module docstring); operator Â given per call."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(c_in, c_out)

    def forward(self, x: torch.Tensor, op: torch.Tensor) -> torch.Tensor:
        """x (B, V, C_in) or (V, C_in), op = Â (V, V) sparse → (…, V, C_out)."""
        return apply_sparse(op, x @ self.linear.weight.T) + self.linear.bias


def laplacian_loss(vertices: torch.Tensor, laplacian: torch.Tensor) -> torch.Tensor:
    """Smoothing loss ‖L V‖²_F / V (paper §2, averaged over vertices and the batch).

    Args:
        vertices: (V, 3) or (B, V, 3) positions (normalised units).
        laplacian: (V, V) sparse, from :func:`graph_laplacian`.

    Returns:
        Scalar: mean over batch and vertices of the squared norm of (L V)_i.
    """
    lv = apply_sparse(laplacian, vertices)
    return lv.pow(2).sum(dim=-1).mean()
