"""Pre-training of g_φ on deformed icospheres against exact SDFs (paper Appendix B.1), and its check.

Data: shape s is ``random_shape(template, deformation, seed=(seed, s))``; its target is its
signed distance (negative inside) at every voxel centre of the N³ grid over [-1, 1]³, computed
once on the CPU: exact within ``exact_band`` of the surface (``meshing.mesh_sdf.MeshSDF`` with
that truncation: closest triangle, angle-weighted pseudonormal sign), and beyond it the sign
times the distance to the nearest vertex (at least the band), which exceeds the exact distance
by less than the largest vertex spacing (~0.03 for the 2562-vertex template). The band holds the
zero level and everything the soft label σ(−D/τ) of the joint training sees; truncating made the
targets 10× cheaper (1 s instead of 10 s per 33³ shape on a loaded 2-core machine).
Validation shapes use other seeds.

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
        sdfs[i] = banded_sdf(v, faces, coords, cfg.exact_band).reshape(n, n, n)
        reporter.report(stage, (i + 1) / count, f"exact SDF of shape {i + 1}/{count}")
    return verts, sdfs


def banded_sdf(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, band: float) -> np.ndarray:
    """Signed distance: exact where |d| < band, else sign · max(band, distance to the nearest vertex)."""
    from scipy.spatial import cKDTree

    d = MeshSDF(TriangleMesh(vertices, faces), prepared=True, truncate_mm=band)(points)
    far = np.abs(d) >= band
    if np.any(far):
        d_vertex, _ = cKDTree(vertices).query(points[far])
        d[far] = np.sign(d[far]) * np.maximum(band, d_vertex)
    return d


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


def zero_level_errors(pred: np.ndarray, exact: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> dict:
    """How far a grid's zero level lies from an exact mesh (normalised units; see module docstring).

    Args:
        pred: (N, N, N) predicted SDF grid; exact: the mesh's SDF on the same grid (for the inside test).

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
            rows.append(zero_level_errors(pred, d, v.astype(np.float64), faces))
            floor.append(zero_level_errors(d, d, v.astype(np.float64), faces))
    mean = lambda table: {k: float(np.mean([r[k] for r in table])) for k in table[0]}  # noqa: E731
    worst = {k: float(max(r[k] for r in rows)) for k in rows[0] if k != "dice"}
    worst["dice"] = float(min(r["dice"] for r in rows))
    return {"network": mean(rows), "network_worst": worst, "exact_grid": mean(floor), "n_shapes": len(rows)}
