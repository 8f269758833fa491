"""g_φ, the deep representation network of ImplicitMeshNet: mesh → SDF on a grid (paper §2, App. B.1, B.3).

    vertices (B, V, 3) in [-1, 1]³
      → GCNConv 3 → C, ReLU                               (Kipf & Welling)
      → S residual blocks [GCNConv, ReLU, Dropout, GCNConv] + skip, ReLU      features h_1 … h_S
    decoder level l = 0 … S−1 on grids n_l = (N−1)/2^(S−1−l) + 1 (coarse → fine):
      x_0 = ResBlock(Conv(splat(h_S)))
      x_l = ResBlock(Conv(concat(upsample(x_{l−1}), splat(h_{S−l}))))
      D_l = Conv1³(x_l)                                   one SDF prediction per level
ResBlocks: GroupNorm, SiLU, 3³ conv, twice, plus the input. ``splat`` is the grid feature
projection (``_grid.splat``, eq. 2). Deep encoder features go to the coarse grid, early ones to the
fine grid. Every operation is differentiable in the vertex positions (through the splatting
weights and the graph convolutions on the coordinates), which is what the joint training
of the shape network needs. The output is in normalised units (negative inside), on the
grid convention of ``_grid`` (voxel centres at −1 + 2i/(N − 1)).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from AnatomyINRLib.image_to_mesh._graph import GCNConv, gcn_operator
from AnatomyINRLib.image_to_mesh._grid import splat
from AnatomyINRLib.image_to_mesh.config import RepresentationConfig
from AnatomyINRLib.nn.init import default_init_


def level_sizes(cfg: RepresentationConfig) -> list[int]:
    """Grid size of each decoder level, coarse → fine (the last is cfg.grid_size)."""
    return [(cfg.grid_size - 1) // (1 << (cfg.levels - 1 - lv)) + 1 for lv in range(cfg.levels)]


class _GraphBlock(nn.Module):
    """Residual block of two graph convolutions with ReLU and dropout between them (App. B.1)."""

    def __init__(self, c: int, dropout: float) -> None:
        super().__init__()
        self.conv1, self.conv2 = GCNConv(c, c), GCNConv(c, c)
        self.dropout = float(dropout)
        self.generator: Optional[torch.Generator] = None  # draws the dropout masks (never torch's global RNG)

    def forward(self, x: torch.Tensor, op: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x, op))
        if self.training and self.dropout > 0:  # inverted dropout, mask from self.generator
            if self.generator is None or self.generator.device != h.device:
                self.generator = torch.Generator(device=h.device).manual_seed(0)
            keep = torch.rand(h.shape, generator=self.generator, device=h.device) >= self.dropout
            h = h * keep / (1.0 - self.dropout)
        return F.relu(x + self.conv2(h, op))


class _VoxelBlock(nn.Module):
    """Residual 3-D conv block: [GroupNorm, SiLU, Conv3³] × 2 plus a (projected) skip."""

    def __init__(self, c_in: int, c_out: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(groups, c_in), c_in)
        self.conv1 = nn.Conv3d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(groups, c_out), c_out)
        self.conv2 = nn.Conv3d(c_out, c_out, 3, padding=1)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv3d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


def _groups(groups: int, channels: int) -> int:
    """The largest divisor of ``channels`` not above ``groups``."""
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return g


class MeshToSDF(nn.Module):
    """g_φ for meshes on one fixed topology (the template's faces).

    Args:
        cfg: Network configuration.
        faces: (F, 3) int faces of the template; stored as a buffer so a checkpoint names its template.
    """

    def __init__(self, cfg: RepresentationConfig, faces: np.ndarray, generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        faces = np.asarray(faces, dtype=np.int64)
        self.register_buffer("faces", torch.as_tensor(faces))
        self.n_vertices = int(faces.max()) + 1
        self._op = gcn_operator(faces, self.n_vertices)
        c = cfg.encoder_channels
        self.stem = GCNConv(3, c)
        self.blocks = nn.ModuleList(_GraphBlock(c, cfg.dropout) for _ in range(cfg.levels))
        extra = 1 if cfg.density_channel else 0
        self.sizes = level_sizes(cfg)
        ins, prev = [], 0
        for ch in cfg.decoder_channels:
            ins.append(prev + c + extra)
            prev = ch
        self.entry = nn.ModuleList(nn.Conv3d(i, o, 1) for i, o in zip(ins, cfg.decoder_channels))
        self.decode = nn.ModuleList(_VoxelBlock(o, o, cfg.groups) for o in cfg.decoder_channels)
        self.heads = nn.ModuleList(nn.Conv3d(o, 1, 1) for o in cfg.decoder_channels)
        self._initialise(generator if generator is not None else torch.Generator().manual_seed(0))

    def _initialise(self, gen: torch.Generator) -> None:
        """Every initial weight from ``gen``: torch's default Linear/Conv init, drawn without the global RNG."""
        default_init_(self, gen)

    def set_dropout_generator(self, gen: torch.Generator) -> None:
        """The generator every graph block's dropout masks are drawn from."""
        for block in self.blocks:
            block.generator = gen

    def _project(self, vertices: torch.Tensor, h: torch.Tensor, n: int) -> torch.Tensor:
        if self.cfg.density_channel:
            h = torch.cat([h, torch.ones_like(h[..., :1])], dim=-1)
        return splat(vertices, h, n)

    def forward(self, vertices: torch.Tensor) -> list[torch.Tensor]:
        """(B, V, 3) or (V, 3) vertices in [-1, 1]³ → SDF grids [(B, 1, n_l, n_l, n_l)] coarse → fine."""
        if vertices.dim() == 2:
            vertices = vertices.unsqueeze(0)
        if vertices.shape[1] != self.n_vertices or vertices.shape[2] != 3:
            raise ValueError(f"vertices: expected (B, {self.n_vertices}, 3), got {tuple(vertices.shape)}")
        op = self._op.to(vertices.device, vertices.dtype)
        h = F.relu(self.stem(vertices, op))
        feats = []
        for block in self.blocks:
            h = block(h, op)
            feats.append(h)
        outputs, x = [], None
        for lv, n in enumerate(self.sizes):
            proj = self._project(vertices, feats[len(feats) - 1 - lv], n)
            if x is not None:
                x = F.interpolate(x, size=(n, n, n), mode="trilinear", align_corners=True)
                proj = torch.cat([x, proj], dim=1)
            x = self.decode[lv](self.entry[lv](proj))
            outputs.append(self.heads[lv](x))
        return outputs

    def sdf(self, vertices: torch.Tensor) -> torch.Tensor:
        """The finest prediction only: (B, V, 3) → (B, N, N, N) (what the joint training and inference use)."""
        return self.forward(vertices)[-1][:, 0]


CHECKPOINT_KIND = "image-to-mesh-representation"


def representation_state(model: MeshToSDF, report: dict) -> tuple[dict, dict]:
    """(tensors, metadata) of a g_φ for ``io.save_checkpoint``: weights, config, template size, report."""
    tensors = {k: v for k, v in model.state_dict().items()}
    metadata = {"kind": CHECKPOINT_KIND, "config": model.cfg.to_dict(), "n_vertices": model.n_vertices,
                "n_faces": int(model.faces.shape[0]), "report": report}
    return tensors, metadata


def representation_from_state(tensors: dict, metadata: dict, argument: str = "checkpoint") -> MeshToSDF:
    """Rebuild a g_φ from :func:`representation_state` output (or a loaded checkpoint).

    Raises:
        InputError: another kind of checkpoint, or weights that do not fit the stored configuration.
    """
    from AnatomyINRLib.core.errors import InputError

    if metadata.get("kind") != CHECKPOINT_KIND:
        raise InputError(f"{argument}: expected a mesh→SDF ({CHECKPOINT_KIND}) checkpoint, got kind "
                         f"{metadata.get('kind')!r}")
    cfg = RepresentationConfig.from_dict(metadata["config"], _where=f"{argument} config")
    if "faces" not in tensors:
        raise InputError(f"{argument}: no template faces stored")
    model = MeshToSDF(cfg, tensors["faces"].numpy())
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise InputError(f"{argument}: weights do not match its configuration ({str(exc).splitlines()[0]})") from exc
    return model.eval()
