"""Empty space certified from the point cloud itself, and a hinge loss on it.

Unoriented IGR only pins the zero set to the points; which side is inside is
left to the initialisation and the eikonal term. A sphere initialisation's
inside is never carved out between the branches of a thin network, so the fit
keeps a blob around the tree. Semi-signed supervision (SSP, arXiv 2206.06715)
fixes this with space that is *obviously* outside; here it is certified by a
flood fill:

1. every point xᵢ gets a radius rᵢ = ``dilation`` × (distance to its k-th
   neighbour), its local spacing scale. If every surface point lies within rᵢ
   of a sample (the samples cover the surface at their own spacing), the union
   of the balls B(xᵢ, rᵢ) separates the inside from the outside;
2. on a grid of cell h, cells whose centre is within rᵢ + h/2 of some xᵢ are
   blocked (a segment between two 6-adjacent centres that enters a ball has an
   end within rᵢ + h/2 of its centre, so a 6-connected path of free cells
   never crosses the union of balls);
3. free cells 6-connected to the grid's border (which lies outside every ball)
   are certified outside.

Limits: the certificate holds when the points sample the whole closed surface
at their own spacing. A surface sampled only in part (an open mesh, clicks on
one side of an organ) leaves holes wider than rᵢ that the fill enters, so such
inputs must switch this off (``OutsideConfig.enabled``; blend does). Points on
parallel slices leave 5 mm gaps between slices and get the slice supervision
instead (``surface/slice_loss.py``). Measured: on the vmtk aorta (50–1600
uniform points, 5 seeds each) and the AAA phantom no certified cell was inside.

The true distance of a certified point y to the surface is at least
d(y) − r(y) (d: distance to the nearest sample xⱼ, r = rⱼ), so the loss is
the hinge mean relu(d(y) − r(y) − f(y)) over certified points: f is pushed
positive, and at least as large as that lower bound.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree

from AnatomyINRLib.core.config import ConfigBase, check_int, check_positive
from AnatomyINRLib.fitting.mining import ViolationMiner
from AnatomyINRLib.fitting.sampling import knn_sigma

_POOL_MAX = 400_000  # certified cells kept as the sample pool
_STAMP_CHUNK = 2_000_000  # (point, offset) pairs per rasterisation chunk


@dataclass
class OutsideConfig(ConfigBase):
    """Outside supervision of empty space certified by a flood fill (module docstring)."""

    enabled: bool = True
    """Certify empty space and add the hinge term (False: plain IGR)."""
    knn: int = 10
    """rᵢ is ``dilation`` × the distance to the k-th neighbour."""
    dilation: float = 1.0
    """Multiplier on the k-th-neighbour distance (larger = more conservative)."""
    cell_fraction: float = 0.35
    """Grid cell = this × the median rᵢ (grown if the grid would exceed ``max_cells``)."""
    max_cells: int = 3_000_000
    """Upper bound on the flood-fill grid size."""
    weight: float = 1.0
    """Weight of mean relu(d − r − f) (normalised units)."""
    samples: int = 1024
    """Certified points per iteration (half random, half the worst violations)."""

    def validate(self) -> None:
        """Check ranges."""
        check_int("outside.knn", self.knn)
        check_positive("outside.dilation", self.dilation)
        check_positive("outside.cell_fraction", self.cell_fraction)
        check_int("outside.max_cells", self.max_cells, minimum=1000)
        check_positive("outside.weight", self.weight, allow_zero=True)
        check_int("outside.samples", self.samples)


@dataclass
class OutsideRegion:
    """Certified-outside points (RAS mm or whatever unit the points had).

    Attributes:
        points: (K, 3) centres of certified cells.
        lower: (K,) lower bound d − r on their distance to the surface.
        cell: Grid cell size.
        n_cells: Cells of the grid.
        n_blocked: Cells within a ball.
        n_enclosed: Free cells not reached from the border (inside, or shadowed).
    """

    points: np.ndarray
    lower: np.ndarray
    cell: float
    n_cells: int
    n_blocked: int
    n_enclosed: int

    def summary(self) -> dict:
        """JSON-ready description for fit reports."""
        return {"certified": int(len(self.points)), "cell": float(self.cell), "n_cells": int(self.n_cells),
                "n_blocked": int(self.n_blocked), "n_enclosed": int(self.n_enclosed)}


def _grid(points: np.ndarray, radii: np.ndarray, cfg: OutsideConfig) -> tuple[np.ndarray, float, tuple]:
    """Origin, cell and shape of a grid whose border cells are outside every ball."""
    h = cfg.cell_fraction * float(np.median(radii))
    pad = float(radii.max())
    lo, hi = points.min(axis=0) - pad, points.max(axis=0) + pad
    while True:
        shape = tuple(int(s) for s in np.ceil((hi - lo) / h).astype(int) + 4)
        if np.prod(shape) <= cfg.max_cells:
            break
        h *= 1.25
    return lo - 1.5 * h, h, shape  # border centres lie ≥ h/2 + pad beyond every point


def _blocked(points: np.ndarray, radii: np.ndarray, origin: np.ndarray, h: float, shape: tuple) -> np.ndarray:
    """Boolean grid: cell centre within rᵢ + h/2 of some point (exact distances)."""
    blocked = np.zeros(shape, dtype=bool)
    reach = radii + 0.5 * h
    cells = np.ceil(reach / h).astype(int) + 1
    for c in np.unique(cells):
        sel = np.flatnonzero(cells == c)
        ax = np.arange(-c, c + 1)
        off = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), axis=-1).reshape(-1, 3)
        step = max(1, _STAMP_CHUNK // len(off))
        for s in range(0, len(sel), step):
            i = sel[s:s + step]
            base = np.floor((points[i] - origin) / h).astype(int)
            idx = base[:, None, :] + off[None]  # (n, m, 3)
            centre = origin + idx * h
            hit = np.linalg.norm(centre - points[i][:, None, :], axis=-1) <= reach[i][:, None]
            idx = np.clip(idx[hit], 0, np.asarray(shape) - 1)
            blocked[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return blocked


def certify_outside(points: np.ndarray, cfg: Optional[OutsideConfig] = None) -> OutsideRegion:
    """Certify empty space around surface points by a flood fill (module docstring).

    Args:
        points: (N, 3) surface points (any isotropic unit; results in that unit).
        cfg: Radius and grid settings.

    Returns:
        OutsideRegion; its points are farther than rᵢ + h/2 from every point xᵢ and
        connected to the grid border without crossing any ball.
    """
    cfg = cfg or OutsideConfig()
    pts = np.asarray(points, dtype=np.float64)
    radii = cfg.dilation * knn_sigma(pts, cfg.knn)
    origin, h, shape = _grid(pts, radii, cfg)
    blocked = _blocked(pts, radii, origin, h, shape)
    labels, _ = ndimage.label(~blocked)  # 6-connectivity: the separation argument's paths
    border = np.unique(np.concatenate([labels[[0, -1]].ravel(), labels[:, [0, -1]].ravel(),
                                       labels[:, :, [0, -1]].ravel()]))
    outside = np.isin(labels, border[border > 0])
    idx = np.argwhere(outside)
    centres = origin + idx * h
    dist, near = cKDTree(pts).query(centres)
    lower = np.maximum(dist - radii[near], 0.0)
    free = int((~blocked).sum())
    return OutsideRegion(centres, lower, h, int(blocked.size), int(blocked.sum()), free - len(idx))


@dataclass
class OutsideSupervision:
    """Certified empty space in RAS mm; :meth:`bind` turns it into a loss callable."""

    region: OutsideRegion
    config: OutsideConfig
    seed: int

    def summary(self) -> dict:
        """JSON-ready description for fit reports."""
        return {"enabled": True, **self.region.summary()}

    def bind(self, normalization, device, generator: torch.Generator) -> "OutsideLoss":
        """The loss in the fit's normalised frame on ``device``.

        ``generator`` is not drawn from: the term has its own, seeded from
        ``seed``, so the IGR samples of a fit are the same with and without it.
        """
        del generator
        rng = np.random.default_rng(self.seed)
        keep = np.arange(len(self.region.points))
        if len(keep) > _POOL_MAX:
            keep = np.sort(rng.choice(keep, _POOL_MAX, replace=False))
        y = torch.tensor(normalization.to_normalized(self.region.points[keep]), dtype=torch.float32, device=device)
        lb = torch.tensor(self.region.lower[keep] / normalization.scale, dtype=torch.float32, device=device)
        gen = torch.Generator(device=device).manual_seed(int(self.seed) + 7919)
        return OutsideLoss(y, lb, self.config, gen)


class OutsideLoss:
    """Callable ``loss(network) -> scalar``: weight · mean relu(lb(y) − f(y)) on certified points.

    Half of each batch is drawn at random from the pool, half are the worst
    violations among a random share of it, refreshed every ``fitting.mining.MINE_EVERY``
    calls (a blob between two branches is a small share of the empty space).
    """

    def __init__(self, y: torch.Tensor, lb: torch.Tensor, cfg: OutsideConfig, generator: torch.Generator) -> None:
        self.y, self.lb, self.cfg = y, lb, cfg
        self.miner = ViolationMiner(len(y), generator, y.device)

    def _violation(self, network: torch.nn.Module, output: int):
        return lambda c: self.lb[c] - network(self.y[c])[:, output]

    def _batch(self, network: torch.nn.Module, output: int) -> torch.Tensor:
        return self.miner.batch(min(self.cfg.samples, len(self.y)), self._violation(network, output))

    def prepare(self, network: torch.nn.Module, pool: Executor, output: int = 0) -> None:
        """Run this call's violation search now, shared with ``pool`` (before an iteration's halves)."""
        if self.cfg.weight > 0 and len(self.y) and self.miner.due:
            self.miner.search(min(self.cfg.samples, len(self.y)), self._violation(network, output), pool)

    def __call__(self, network: torch.nn.Module, output: int = 0) -> torch.Tensor:
        if self.cfg.weight <= 0 or len(self.y) == 0:
            return torch.zeros((), device=self.y.device)
        idx = self._batch(network, output)
        f = network(self.y[idx])[:, output]
        return self.cfg.weight * torch.relu(self.lb[idx] - f).mean()


def outside_supervision(points: np.ndarray, cfg: OutsideConfig, seed: int = 0) -> Optional[OutsideSupervision]:
    """Certify empty space around ``points`` (RAS mm); None if disabled or nothing is certified."""
    if not cfg.enabled or cfg.weight <= 0:
        return None
    region = certify_outside(points, cfg)
    if len(region.points) == 0:
        return None
    return OutsideSupervision(region, cfg, seed)
