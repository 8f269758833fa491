"""The training loss of f_θ (ImplicitMeshNet eq. 1) through the frozen mesh → SDF network g_φ.

    L = α · (1/K) Σ_k BCE(σ(−D_k/τ), S_k)  +  β(t) · (1/K) Σ_k Σ_{s≥1} mean_i ‖(L V_{k,s})_i‖²  +  γ · CE(U, y)

* D_k = g_φ(V_k) (finest level, (B, G, G, G), normalised units, negative inside) of structure k's
  final mesh V_k; σ(−D/τ) is the soft inside of the mesh and S_k the label's inside fraction on
  the same grid. The BCE is computed on the logits −D/τ (``binary_cross_entropy_with_logits``),
  numerically the same as on σ(−D/τ) but without overflow for |D| ≫ τ.
* The Laplacian term sums the stage meshes s = 1 … S of each structure (the public code sums its
  three stage meshes); L is ``_graph.graph_laplacian(kind)``.
* β(t) = β_end + ½ (β_start − β_end)(1 + cos(π t / T)) over the T training steps (public code:
  1000 → 0.01), :func:`laplacian_weight`.
* CE of the U-Net's auxiliary logits U (B, K + 1, N, N, N) against the label map y (B, N, N, N).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from AnatomyINRLib.image_to_mesh._graph import laplacian_loss


def laplacian_weight(step: int, total: int, start: float, end: float) -> float:
    """β at ``step`` of ``total``: cosine from ``start`` (step 0) to ``end`` (step ≥ total)."""
    t = min(max(step, 0), total) / max(total, 1)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * t))


def shape_loss(meshes: list, logits: torch.Tensor, representation, soft: torch.Tensor, labels: torch.Tensor,
               laplacian: torch.Tensor, *, alpha: float, beta: float, gamma: float, tau: float) -> tuple:
    """Eq. 1 (module docstring).

    Args:
        meshes: ``meshes[k][s]`` (B, V, 3), stage 0 = template (as ``ShapeNet.forward`` returns).
        logits: (B, K + 1, N, N, N) auxiliary segmentation logits.
        representation: Frozen g_φ (``MeshToSDF``, eval mode); gradients flow through it to the vertices.
        soft: (B, K, G, G, G) soft targets S_k in [0, 1] on g_φ's grid.
        labels: (B, N, N, N) int64 label map 0 … K.
        laplacian: (V, V) sparse Laplacian of the template.
        alpha, beta, gamma, tau: Weights and temperature.

    Returns:
        (scalar loss, {"bce", "laplacian", "ce", "beta"} as floats).
    """
    k_count = len(meshes)
    bce = logits.new_zeros(())
    smooth = logits.new_zeros(())
    for k, stages in enumerate(meshes):
        d = representation(stages[-1])[-1][:, 0]
        bce = bce + F.binary_cross_entropy_with_logits(-d / tau, soft[:, k])
        for v in stages[1:]:
            smooth = smooth + laplacian_loss(v, laplacian.to(v.device, v.dtype))
    bce, smooth = bce / k_count, smooth / k_count
    ce = F.cross_entropy(logits, labels)
    loss = alpha * bce + beta * smooth + gamma * ce
    return loss, {"bce": float(bce.detach()), "laplacian": float(smooth.detach()), "ce": float(ce.detach()),
                  "beta": float(beta)}
