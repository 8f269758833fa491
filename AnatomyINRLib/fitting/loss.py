"""IGR loss (Gropp et al. 2020, eq. 2; Alblas et al. 2022, eq. 3).

    L(θ) = mean_i |f(xᵢ)| + λ · E_y (‖∇f(y)‖ − 1)²  [+ τ · mean_i ‖∇f(xᵢ) − nᵢ‖]
           [+ μ · E_u exp(−α |f(u)|)]

The last term (SIREN, Sitzmann et al. 2020, eq. 6) is optional: it pushes the
zero level set away from empty space so sparse points grow no ghost sheets.
:func:`surface_terms` gives the x terms, :func:`sample_terms` the y and u terms of a
block of samples; ``objective.IGRObjective`` adds them up per output.
"""

from __future__ import annotations

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


def surface_terms(network: torch.nn.Module, surface: torch.Tensor, config: LossConfig,
                  normals: Optional[torch.Tensor] = None, output: int = 0) -> tuple[torch.Tensor, float]:
    """mean_i |f(xᵢ)| [+ τ · mean_i ‖∇f(xᵢ) − nᵢ‖] on a surface batch.

    Args:
        network: Maps (N, 3) normalised coordinates to (N, K).
        surface: (S, 3) surface points (normalised).
        config: Term weights.
        normals: (S, 3) unit normals or None.
        output: Which network output the terms constrain.

    Returns:
        The differentiable weighted sum, and the surface term as a float.
    """
    need_surface_grad = normals is not None and config.normal_weight > 0
    if need_surface_grad:
        f_surf, g_surf = value_and_gradient(network, surface, output)
    else:
        f_surf = network(surface)[:, output]
    loss_surface = f_surf.abs().mean()
    total = loss_surface
    if need_surface_grad:
        total = total + config.normal_weight * (g_surf - normals).norm(dim=-1).mean()
    return total, float(loss_surface.detach())


def sample_terms(network: torch.nn.Module, rows: torch.Tensor, config: LossConfig, *, n_rows: int,
                 uniform_from: int, n_uniform: int, output: int = 0) -> tuple[torch.Tensor, float]:
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
        The differentiable weighted share, and the block's eikonal share as a float.
    """
    f, g = value_and_gradient(network, rows, output)
    eik = ((g.norm(dim=-1) - 1.0) ** 2).sum() / n_rows
    total = config.eikonal_weight * eik
    f_uni = f[max(uniform_from, 0):]
    if config.offsurface_weight > 0 and len(f_uni) > 0:
        total = total + config.offsurface_weight * torch.exp(-config.offsurface_alpha * f_uni.abs()).sum() / n_uniform
    return total, float(eik.detach())
