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
    need_surface_grad = normals is not None and config.normal_weight > 0
    if need_surface_grad:
        f_surf, g_surf = value_and_gradient(network, surface, output)
    else:
        f_surf = network(surface)[:, output]
    loss_surface = f_surf.abs().mean()
    total = loss_surface
    normal_val = 0.0
    if need_surface_grad:
        loss_normal = (g_surf - normals).norm(dim=-1).mean()
        total = total + config.normal_weight * loss_normal
        normal_val = float(loss_normal.detach())
    f_samples, g = value_and_gradient(network, torch.cat([off_surface, uniform], dim=0), output)
    loss_eik = ((g.norm(dim=-1) - 1.0) ** 2).mean()
    total = total + config.eikonal_weight * loss_eik
    off_val = 0.0
    if config.offsurface_weight > 0 and len(uniform) > 0:
        f_uni = f_samples[len(off_surface):]
        loss_off = torch.exp(-config.offsurface_alpha * f_uni.abs()).mean()
        total = total + config.offsurface_weight * loss_off
        off_val = float(loss_off.detach())
    return LossTerms(total, float(loss_surface.detach()), float(loss_eik.detach()), normal_val, off_val)
