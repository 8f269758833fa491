"""Vertices ↔ voxel grids in the normalised cube [-1, 1]³: trilinear splatting and sampling.

Grid convention (used by g_φ, its training targets and f_θ alike): a grid tensor
(B, C, N, N, N) is indexed [b, c, i, j, k] and voxel (i, j, k) has its centre at
x = −1 + 2·(i, j, k)/(N − 1) (corner voxels centred on the cube's faces, i.e. PyTorch's
``align_corners=True``). A point's coordinate component 0 runs along i, 1 along j, 2 along k.

* :func:`splat` is the grid feature projection of ImplicitMeshNet (Appendix B.3, eq. 2):
  F(p) = Σ_v f_v · w(p, x_v) with the trilinear weights w of the 8 voxels around x_v, so the
  total feature mass Σ_p F(p) = Σ_v f_v for vertices inside the cube. It is linear in the
  features and piecewise linear (differentiable almost everywhere) in the positions.
* :func:`sample` is trilinear interpolation at the points (the vertex feature sampling of the
  shape network); it is the adjoint of :func:`splat`: ⟨splat(x, f), G⟩ = ⟨f, sample(G, x)⟩.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def grid_coordinates(n: int, dtype=torch.float32) -> torch.Tensor:
    """(N, N, N, 3) coordinates of the voxel centres of an N³ grid in [-1, 1]³ (axis order i, j, k)."""
    axis = torch.linspace(-1.0, 1.0, n, dtype=dtype)
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)


def splat(points: torch.Tensor, features: torch.Tensor, n: int) -> torch.Tensor:
    """Trilinear splatting of per-vertex features onto an N³ grid (Appendix B.3, eq. 2).

    Args:
        points: (B, V, 3) vertex positions in [-1, 1]³ (outside the cube they lose the
            weights of their out-of-grid corners).
        features: (B, V, C) per-vertex features.
        n: Grid size N (≥ 2).

    Returns:
        (B, C, N, N, N) grid of accumulated features.
    """
    b, v, c = features.shape
    u = (points + 1.0) * (0.5 * (n - 1))  # continuous voxel index
    base = torch.floor(u.detach())
    frac = u - base  # carries the gradient w.r.t. the positions
    base = base.long()
    out = features.new_zeros(b, n * n * n, c)
    for corner in range(8):
        offs = torch.tensor([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1], device=points.device)
        idx = base + offs
        w = torch.where(offs.bool(), frac, 1.0 - frac).prod(dim=-1)  # (B, V)
        valid = ((idx >= 0) & (idx < n)).all(dim=-1)
        w = w * valid
        flat = (idx.clamp(0, n - 1) * torch.tensor([n * n, n, 1], device=points.device)).sum(dim=-1)
        out = out.scatter_add(1, flat.unsqueeze(-1).expand(b, v, c), features * w.unsqueeze(-1))
    return out.permute(0, 2, 1).reshape(b, c, n, n, n)


def sample(grid: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Trilinear interpolation of a (B, C, N, N, N) grid at (B, V, 3) points → (B, V, C).

    Zero outside the cube (the adjoint of :func:`splat`'s dropped out-of-grid weights).
    """
    # grid_sample's last grid dimension is (x, y, z) = (k, j, i) of the volume's last three axes.
    loc = points.flip(-1).unsqueeze(2).unsqueeze(2)  # (B, V, 1, 1, 3)
    out = F.grid_sample(grid, loc, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.squeeze(-1).squeeze(-1).permute(0, 2, 1)
