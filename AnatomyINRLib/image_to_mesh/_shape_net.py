"""f_θ, the shape estimation network of ImplicitMeshNet: image → deformed templates (paper §2, B.2).

    image crop (B, 1, N, N, N) on the grid convention of ``_grid`` (cube [-1, 1]³)
      → 3-D U-Net encoder: levels 0 … L−1 (residual blocks, max-pool 3³ stride 2), bottleneck level L
      → U-Net decoder (trilinear ×2 + 1³ conv, concat skip, residual blocks) → auxiliary segmentation logits
        (background + one class per structure; the γ·CE term of eq. 1)
    per structure, from its template icosphere V_0 (radius 0.5), three deformation stages s:
      x_s = concat(ChebConv(h_{s−1} or V_{s−1}), encoder features sampled trilinearly at V_{s−1})
      h_s = ChebConv(x_s) → graph_blocks × residual [ChebConv, ReLU, ChebConv] → ReLU
      V_s = V_{s−1} + amplification · ChebConv(h_s → 3)
U-Net blocks: 3 convolutions with affine InstanceNorm, LeakyReLU 0.01 and Dropout3d (the public
code's UNet3D). Every level keeps the grid convention of ``_grid`` (level l has (N−1)/2^l + 1
voxels, voxel i centred at −1 + 2i/(n_l − 1)): the 3³ stride-2 pooling with padding 1 centres
coarse voxel i on fine voxel 2i and the upsampling uses ``align_corners=True``, so sampling any
level at a vertex reads the same place in the image. The graph convolutions use the template's L̃ (``_graph.chebyshev_operator``).
Returns every stage's vertices so the losses (BCE through g_φ, Laplacian) can use them all.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from AnatomyINRLib.image_to_mesh._graph import ChebConv, chebyshev_operator
from AnatomyINRLib.image_to_mesh._grid import grid_coordinates, sample
from AnatomyINRLib.image_to_mesh.config import ShapeNetConfig


class _Dropout3d(nn.Module):
    """Channel dropout (as ``nn.Dropout3d``: whole feature maps, scaled by 1/(1 − p)) whose masks come
    from ``self.generator``, never from torch's global RNG (no global seeding anywhere in the library)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        self.generator: Optional[torch.Generator] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0:
            return x
        keep = torch.rand(x.shape[:2] + (1,) * (x.dim() - 2), generator=self.generator, device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1.0 - self.p)


class _ResBlock3d(nn.Module):
    """Three 3³ convolutions (InstanceNorm, LeakyReLU 0.01, Dropout3d) with a residual connection."""

    def __init__(self, c_in: int, c_out: int, dropout: float) -> None:
        super().__init__()
        layers = []
        for i in range(3):
            layers += [nn.Conv3d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.InstanceNorm3d(c_out, affine=True),
                       nn.LeakyReLU(0.01), _Dropout3d(dropout)]
        self.body = nn.Sequential(*layers)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv3d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class UNet3D(nn.Module):
    """Encoder levels (returned for vertex sampling) and a decoder with a segmentation head."""

    def __init__(self, channels: tuple, n_classes: int, dropout: float) -> None:
        super().__init__()
        chans = list(channels) + [2 * channels[-1]]  # the bottleneck doubles the last level
        self.down = nn.ModuleList(_ResBlock3d(1 if i == 0 else chans[i - 1], c, dropout) for i, c in enumerate(chans))
        self.up = nn.ModuleList(nn.Conv3d(chans[i + 1], chans[i], 1) for i in range(len(channels)))
        self.merge = nn.ModuleList(_ResBlock3d(2 * chans[i], chans[i], dropout) for i in range(len(channels)))
        self.head = nn.Conv3d(chans[0], n_classes, 1)

    def forward(self, image: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(B, 1, N, N, N) → (encoder features per level 0 … L, segmentation logits (B, K, N, N, N))."""
        feats, x = [], image
        for i, block in enumerate(self.down):
            if i > 0:
                x = F.max_pool3d(x, 3, stride=2, padding=1)  # (n − 1)/2 + 1 voxels, nested centres
            x = block(x)
            feats.append(x)
        for i in reversed(range(len(self.up))):
            up = self.up[i](F.interpolate(x, size=feats[i].shape[-3:], mode="trilinear", align_corners=True))
            x = self.merge[i](torch.cat([up, feats[i]], dim=1))
        return feats, self.head(x)


class _GraphStage(nn.Module):
    """One deformation stage: features in, hidden vertex features and Δ positions out."""

    def __init__(self, c_prev: int, c_image: int, c: int, k: int, blocks: int) -> None:
        super().__init__()
        self.prev = ChebConv(c_prev, c, k)
        self.inp = ChebConv(c + c_image, c, k)
        self.blocks = nn.ModuleList(nn.ModuleList([ChebConv(c, c, k), ChebConv(c, c, k)]) for _ in range(blocks))
        self.out = ChebConv(c, 3, k)

    def forward(self, prev: torch.Tensor, image_feats: torch.Tensor, op: torch.Tensor):
        h = F.relu(self.inp(torch.cat([F.relu(self.prev(prev, op)), image_feats], dim=-1), op))
        for a, b in self.blocks:
            h = F.relu(h + b(F.relu(a(h, op)), op))
        return h, self.out(h, op)


#: Fewer voxels above probability ½ than this: keep the fixed placement (the head found nothing).
MIN_PLACEMENT_VOXELS = 8


class ShapeNet(nn.Module):
    """f_θ for ``n_structures`` templates sharing one U-Net (module docstring).

    Args:
        cfg: Network configuration.
        template: (V, 3) template vertices in the cube (the icosphere of radius 0.5).
        faces: (F, 3) template faces (fixed topology of every output mesh).
    """

    def __init__(self, cfg: ShapeNetConfig, template: np.ndarray, faces: np.ndarray) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.register_buffer("template", torch.as_tensor(np.asarray(template), dtype=torch.float32))
        self.register_buffer("faces", torch.as_tensor(np.asarray(faces, dtype=np.int64)))
        # Per structure (centre x, y, z, scale): stage 0 is template · scale + centre. Identity by default;
        # training may set it to the training labels' mean placement (``ShapeTrainConfig.data_placement``).
        self.register_buffer("placement", torch.tensor([[0.0, 0.0, 0.0, 1.0]] * cfg.n_structures))
        self._op = chebyshev_operator(np.asarray(faces), len(template))
        self.unet = UNet3D(tuple(cfg.unet_channels), cfg.n_structures + 1, cfg.dropout)
        chans = list(cfg.unet_channels) + [2 * cfg.unet_channels[-1]]
        c = cfg.graph_channels
        self.decoders = nn.ModuleList(
            nn.ModuleList(_GraphStage(3 if s == 0 else c, sum(chans[lv] for lv in levels), c, cfg.cheb_k, cfg.graph_blocks)
                          for s, levels in enumerate(cfg.stage_levels))
            for _ in range(cfg.n_structures))

    def set_dropout_generator(self, gen: torch.Generator) -> None:
        """The generator every U-Net dropout mask is drawn from (seeded by the trainer)."""
        for module in self.modules():
            if isinstance(module, _Dropout3d):
                module.generator = gen

    def case_placement(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, K, 4) per-case (centre, scale) of every template: ``placement``, or with
        ``cfg.seg_placement`` the segmentation head's estimate (``ShapeNetConfig.seg_placement``).

        Centre = mean of the voxel centres (cube units) where the structure's softmax probability
        exceeds ½, weighted by it; scale = (3V / 4π)^(1/3) / template radius, V = their count × the
        voxel volume (2 / (N − 1))³. No gradient flows through it (the CE term trains the head).
        """
        fixed = self.placement.to(logits.dtype).unsqueeze(0).expand(logits.shape[0], -1, -1)
        if not self.cfg.seg_placement:
            return fixed
        with torch.no_grad():
            n = logits.shape[-1]
            prob = torch.softmax(logits, dim=1)[:, 1:]  # (B, K, N, N, N)
            w = torch.where(prob > 0.5, prob, torch.zeros_like(prob)).flatten(2)  # (B, K, N³)
            count = (w > 0).sum(-1).to(logits.dtype)  # (B, K)
            xyz = grid_coordinates(n, logits.dtype).to(logits.device).reshape(-1, 3)
            centre = (w @ xyz) / w.sum(-1, keepdim=True).clamp_min(1e-12)
            radius = (3.0 * count * (2.0 / (n - 1)) ** 3 / (4.0 * torch.pi)) ** (1.0 / 3.0)
            radius0 = self.template.norm(dim=-1).mean()
            est = torch.cat([centre, (radius / radius0).unsqueeze(-1)], dim=-1)
            ok = (count >= MIN_PLACEMENT_VOXELS).unsqueeze(-1)
            return torch.where(ok, est, fixed)

    def forward(self, image: torch.Tensor) -> tuple[list[list[torch.Tensor]], torch.Tensor]:
        """(B, 1, N, N, N) → (vertices[structure][stage] (B, V, 3) in the cube, segmentation logits).

        Stage 0 of each structure's list is its placed template (:meth:`case_placement`: the template
        itself unless ``placement`` or ``cfg.seg_placement`` is set); the last is the output mesh.
        """
        feats, logits = self.unet(image)
        op = self._op.to(image.device, image.dtype)
        places = self.case_placement(logits)
        meshes = []
        for k, decoder in enumerate(self.decoders):
            place = places[:, k].unsqueeze(1)  # (B, 1, 4)
            v = self.template.to(image.dtype).unsqueeze(0) * place[..., 3:] + place[..., :3]
            stages, h = [v], v
            for stage, levels in zip(decoder, self.cfg.stage_levels):
                sampled = torch.cat([sample(feats[lv], v) for lv in levels], dim=-1)
                h, delta = stage(h, sampled, op)
                v = v + self.cfg.amplification * delta
                stages.append(v)
            meshes.append(stages)
        return meshes, logits
