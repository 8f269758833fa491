"""IGR loss (Gropp et al. 2020, eq. 2; Alblas et al. 2022, eq. 3).

    L(θ) = mean_i |f(xᵢ)| + λ · E_y (‖∇f(y)‖ − 1)²  [+ τ · mean_i ‖∇f(xᵢ) − nᵢ‖]
           [+ μ · E_u exp(−α |f(u)|)]

The last term (SIREN, Sitzmann et al. 2020, eq. 6) is optional: it pushes the
zero level set away from empty space so sparse points grow no ghost sheets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from AnatomyINRLib.fitting.config import LossConfig


def gradient(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """∇ₓ y for per-row scalars y (N,) at x (N, 3), differentiable (double backward)."""
    (g,) = torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y), create_graph=True)
    return g


def value_and_gradient(network: torch.nn.Module, x: torch.Tensor, output: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """f (N,) = network(x)[:, output] and ∇ₓf (N, 3), both differentiable in the weights.

    Uses the network's own ``value_and_gradient`` when it has one (the MLP writes
    the chain rule out, cheaper than double backward); otherwise autograd.
    """
    explicit = getattr(network, "value_and_gradient", None)
    if explicit is not None:
        return explicit(x, output)
    x = x.detach().requires_grad_(True)  # a new leaf: the caller's tensor is left as it was
    f = network(x)[:, output]
    return f, gradient(f, x)


@dataclass
class LossTerms:
    """Loss value and its parts (floats, for reports and progress)."""

    total: torch.Tensor
    surface: float
    eikonal: float
    normal: float
    offsurface: float


def surface_terms(network: torch.nn.Module, surface: torch.Tensor, config: LossConfig,
                  normals: Optional[torch.Tensor] = None, output: int = 0) -> tuple[torch.Tensor, float, float]:
    """mean_i |f(xᵢ)| [+ τ · mean_i ‖∇f(xᵢ) − nᵢ‖] on a surface batch.

    Args:
        network: Maps (N, 3) normalised coordinates to (N, K).
        surface: (S, 3) surface points (normalised).
        config: Term weights.
        normals: (S, 3) unit normals or None.
        output: Which network output the terms constrain.

    Returns:
        The differentiable weighted sum, and the surface and normal terms as floats.
    """
    need_surface_grad = normals is not None and config.normal_weight > 0
    if need_surface_grad:
        f_surf, g_surf = value_and_gradient(network, surface, output)
    else:
        f_surf = network(surface)[:, output]
    loss_surface = f_surf.abs().mean()
    total, normal_val = loss_surface, 0.0
    if need_surface_grad:
        loss_normal = (g_surf - normals).norm(dim=-1).mean()
        total = total + config.normal_weight * loss_normal
        normal_val = float(loss_normal.detach())
    return total, float(loss_surface.detach()), normal_val


def sample_terms(network: torch.nn.Module, rows: torch.Tensor, config: LossConfig, *, n_rows: int,
                 uniform_from: int, n_uniform: int, output: int = 0) -> tuple[torch.Tensor, float, float]:
    """The eikonal and off-surface terms' share from a block of the iteration's samples.

    The samples are the local ones followed by the uniform ones (``n_rows`` in all,
    the last ``n_uniform`` uniform); a block contributes its sums divided by those
    totals, so the blocks of one iteration add up to λ·E(‖∇f‖ − 1)² + μ·E_u exp(−α|f|).

    Args:
        network: Maps (N, 3) normalised coordinates to (N, K).
        rows: (B, 3) a contiguous block of the samples.
        config: Term weights.
        n_rows: Samples in the whole iteration.
        uniform_from: Index in ``rows`` where uniform samples start (≤ 0: all uniform; ≥ B: none).
        n_uniform: Uniform samples in the whole iteration.
        output: Which network output the terms constrain.

    Returns:
        The differentiable weighted share, and the block's eikonal and off-surface shares as floats.
    """
    f, g = value_and_gradient(network, rows, output)
    eik = ((g.norm(dim=-1) - 1.0) ** 2).sum() / n_rows
    total, off_val = config.eikonal_weight * eik, 0.0
    f_uni = f[max(uniform_from, 0):]
    if config.offsurface_weight > 0 and len(f_uni) > 0:
        off = torch.exp(-config.offsurface_alpha * f_uni.abs()).sum() / n_uniform
        total = total + config.offsurface_weight * off
        off_val = float(off.detach())
    return total, float(eik.detach()), off_val


def igr_loss(
    network: torch.nn.Module,
    surface: torch.Tensor,
    off_surface: torch.Tensor,
    uniform: torch.Tensor,
    config: LossConfig,
    normals: Optional[torch.Tensor] = None,
    output: int = 0,
) -> LossTerms:
    """Evaluate the IGR loss for one output of a network.

    Args:
        network: Maps (N, 3) normalised coordinates to (N, K).
        surface: (S, 3) surface points (normalised).
        off_surface: (M, 3) local samples around the surface points.
        uniform: (U, 3) uniform samples in the box (used by the eikonal and off-surface terms).
        config: Term weights.
        normals: (S, 3) unit normals or None.
        output: Which network output this loss constrains.

    Returns:
        LossTerms with a differentiable ``total``.
    """
    total, surf_val, normal_val = surface_terms(network, surface, config, normals, output)
    samples = torch.cat([off_surface, uniform], dim=0)
    part, eik_val, off_val = sample_terms(network, samples, config, n_rows=len(samples),
                                          uniform_from=len(off_surface), n_uniform=len(uniform), output=output)
    return LossTerms(total + part, surf_val, eik_val, normal_val, off_val)
