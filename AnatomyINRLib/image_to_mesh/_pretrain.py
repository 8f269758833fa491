"""Pre-training of g_φ on deformed icospheres against exact SDFs (paper Appendix B.1), and its check.

Data: shape s is ``random_shape(template, deformation, seed=(seed, s))``; its target is the
exact signed distance (``meshing.mesh_sdf.MeshSDF``: closest triangle, angle-weighted
pseudonormal sign; negative inside) at every voxel centre of the N³ grid over [-1, 1]³,
computed once on the CPU (about 1 s per shape at 33³). Validation shapes use other seeds.

Loss (per decoder level l, on that level's voxel centres, where the exact SDF is the fine
target subsampled, since the grids are nested):
    L = Σ_l mean( w(d) · (D_l − d)² ),  w(d) = ((D_max − |d|)/D_max)² · (1 + b·exp(−|d|/s))
The first factor is the public code's weight (D_max = √12, the cube's diagonal); the second
(b = near_boost, s = near_scale) stresses the zero level. AdamW, cosine decay per step.

Check: the zero level of the prediction against the exact mesh, both ways, in normalised
units (``zero_level_errors``), next to the same numbers for the exact SDF sampled on the same
grid (the floor that any N³ grid has).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.image_to_mesh._deform import random_shape
from AnatomyINRLib.image_to_mesh._grid import grid_coordinates, sample
from AnatomyINRLib.image_to_mesh._representation import MeshToSDF
from AnatomyINRLib.image_to_mesh.config import PretrainConfig
from AnatomyINRLib.meshing.mesh_sdf import MeshSDF


def shape_set(template: np.ndarray, faces: np.ndarray, cfg: PretrainConfig, seed: int, start: int, count: int,
              reporter: ProgressReporter, stage: str) -> tuple[np.ndarray, np.ndarray]:
    """``count`` shapes with seeds (seed, start … start + count − 1): ((S, V, 3) float32, (S, N, N, N) float32 SDFs)."""
    n = cfg.representation.grid_size
    coords = grid_coordinates(n, torch.float64).reshape(-1, 3).numpy()
    verts = np.empty((count, len(template), 3), np.float32)
    sdfs = np.empty((count, n, n, n), np.float32)
    for i in range(count):
        v = random_shape(template, cfg.deformation, np.random.default_rng([seed, start + i]))
        verts[i] = v
        sdfs[i] = MeshSDF(TriangleMesh(v, faces), prepared=True)(coords).reshape(n, n, n)
        reporter.report(stage, (i + 1) / count, f"exact SDF of shape {i + 1}/{count}")
    return verts, sdfs


def sdf_loss(outputs: list, target: torch.Tensor, cfg: PretrainConfig) -> torch.Tensor:
    """Weighted MSE summed over levels (module docstring); target (B, N, N, N)."""
    levels = outputs if cfg.level_weights == "all" else outputs[-1:]
    total = target.new_zeros(())
    n = target.shape[-1]
    for out in levels:
        step = (n - 1) // (out.shape[-1] - 1)
        d = target[:, ::step, ::step, ::step]
        w = ((cfg.weight_max_distance - d.abs()) / cfg.weight_max_distance).clamp(min=0).pow(2)
        w = w * (1.0 + cfg.near_boost * torch.exp(-d.abs() / cfg.near_scale))
        total = total + (w * (out[:, 0] - d).pow(2)).mean()
    return total


def train(model: MeshToSDF, verts: np.ndarray, sdfs: np.ndarray, cfg: PretrainConfig, seed: int,
          device: torch.device, reporter: ProgressReporter) -> list[float]:
    """AdamW with cosine decay over epochs × batches; returns the mean loss of every epoch."""
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    n_batches = math.ceil(len(verts) / cfg.batch_size)
    total = cfg.epochs * n_batches
    v_all, d_all = torch.from_numpy(verts), torch.from_numpy(sdfs)
    history, step = [], 0
    model.train()
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(verts), generator=gen)
        running = 0.0
        for b in range(n_batches):
            lr = cfg.final_learning_rate + 0.5 * (cfg.learning_rate - cfg.final_learning_rate) * (1 + math.cos(math.pi * step / total))
            for group in opt.param_groups:
                group["lr"] = lr
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            loss = sdf_loss(model(v_all[idx].to(device)), d_all[idx].to(device), cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            running += float(loss.detach()) * len(idx)
            step += 1
            if step % 10 == 0 or step == total:
                reporter.report("pretrain", step / total, f"epoch {epoch + 1}/{cfg.epochs}", loss=float(loss.detach()), lr=lr)
        history.append(running / len(verts))
    model.eval()
    return history


def _marching_cubes(grid: np.ndarray) -> np.ndarray:
    """Vertices (normalised units) of the zero level of an (N, N, N) grid on [-1, 1]³ (empty if none)."""
    from skimage.measure import marching_cubes

    if not (grid.min() < 0 < grid.max()):
        return np.zeros((0, 3))
    n = grid.shape[0]
    verts, _, _, _ = marching_cubes(grid, 0.0, spacing=(2.0 / (n - 1),) * 3)
    return verts - 1.0


def zero_level_errors(pred: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> dict:
    """How far a grid's zero level lies from an exact mesh (normalised units; see module docstring).

    * ``to_exact``: |exact SDF| at the marching-cubes vertices of the grid's zero level;
    * ``from_exact``: |grid| trilinearly interpolated at the mesh vertices (a distance, because the
      grid approximates an SDF);
    * ``dice``: overlap of the grid's inside (< 0) with the exact inside on the same voxels.
    """
    mesh_sdf = MeshSDF(TriangleMesh(vertices, faces), prepared=True)
    mc = _marching_cubes(pred)
    to_exact = np.abs(mesh_sdf(mc)) if len(mc) else np.array([np.inf])
    g = torch.from_numpy(np.ascontiguousarray(pred, dtype=np.float32))[None, None]
    from_exact = np.abs(sample(g, torch.from_numpy(vertices.astype(np.float32))[None])[0, :, 0].numpy())
    n = pred.shape[0]
    exact = mesh_sdf(grid_coordinates(n, torch.float64).reshape(-1, 3).numpy()).reshape(pred.shape)
    a, b = pred < 0, exact < 0
    dice = 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))
    return {"to_exact_mean": float(to_exact.mean()), "to_exact_p95": float(np.percentile(to_exact, 95)),
            "from_exact_mean": float(from_exact.mean()), "from_exact_p95": float(np.percentile(from_exact, 95)),
            "dice": float(dice)}


def evaluate(model: MeshToSDF, verts: np.ndarray, sdfs: np.ndarray, faces: np.ndarray, device) -> dict:
    """Zero-level errors of g_φ on held-out shapes, and of the exact SDF grid (the grid's floor), averaged."""
    rows, floor = [], []
    with torch.no_grad():
        for v, d in zip(verts, sdfs):
            pred = model.sdf(torch.from_numpy(v)[None].to(device))[0].cpu().numpy()
            rows.append(zero_level_errors(pred, v.astype(np.float64), faces))
            floor.append(zero_level_errors(d, v.astype(np.float64), faces))
    mean = lambda table: {k: float(np.mean([r[k] for r in table])) for k in table[0]}  # noqa: E731
    worst = {k: float(max(r[k] for r in rows)) for k in rows[0] if k != "dice"}
    worst["dice"] = float(min(r["dice"] for r in rows))
    return {"network": mean(rows), "network_worst": worst, "exact_grid": mean(floor), "n_shapes": len(rows)}
