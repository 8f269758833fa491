"""Extra IGR loss terms for points clicked on parallel slices (see slices.py).

With P = I − a aᵀ the projection onto the slice plane (a: slice normal):

* in-plane normal term: mean_i (1 − ⟨P∇f(xᵢ), nᵢ⟩ / ‖P∇f(xᵢ)‖), nᵢ the outward
  in-plane contour normal. The contour tangent lies in the slice plane and in
  the surface's tangent plane, so the normalised projection of the true surface
  normal equals nᵢ wherever the surface crosses the slice (the 3D comparison
  ‖∇f − nᵢ‖ of IGR eq. 2 is only right where the surface is perpendicular to it);
* on-slice sign term: mean_j relu(−sⱼ f(yⱼ)) over points yⱼ of the slice planes
  labelled sⱼ = −1 inside / +1 outside the contour polygons (farther than a
  margin from every polygon edge; the true contour is only known at the clicks).
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from AnatomyINRLib.fitting.loss import value_and_gradient
from AnatomyINRLib.fitting.mining import ViolationMiner
from AnatomyINRLib.surface.config import SliceConfig
from AnatomyINRLib.surface.slices import SliceContours, detect_slices, distance_to_polygon, points_in_polygon, slice_contours

_POOL_PER_SLICE = 6000  # labelled plane samples drawn once per slice
_PAD_FRACTION = 0.5  # plane samples cover the slice's contours' box grown by this share (and >= 5 mm)
_MIN_PAD_MM = 5.0


def _box(polys: list) -> tuple[np.ndarray, np.ndarray]:
    allp = np.concatenate(polys)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    pad = max(_MIN_PAD_MM, _PAD_FRACTION * float(np.max(hi - lo)))
    return lo - pad, hi + pad


def _plane_samples(contours: SliceContours, polys: list, rng: np.random.Generator) -> np.ndarray:
    """(K, 2) in-plane samples: half in the box of this slice's polygons, half in the box of all slices'.

    The wide share reaches where a neighbouring slice's contour was and this
    slice has none (a branch that ended between the slices).
    """
    local, wide = _box(polys), _box([c.polygon for c in contours.contours])
    n_local = _POOL_PER_SLICE // 2
    return np.concatenate([rng.uniform(*local, size=(n_local, 2)),
                           rng.uniform(*wide, size=(_POOL_PER_SLICE - n_local, 2))])


def _plane_pool(contours: SliceContours, cfg: SliceConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(K, 3) RAS mm points on the slice planes and (K,) signs (−1 inside, +1 outside)."""
    layout = contours.layout
    pts, signs = [], []
    for lev, level in enumerate(layout.levels):
        polys = [c.polygon for c in contours.contours if c.level == lev]
        if not polys:
            continue
        q = _plane_samples(contours, polys, rng)
        inside = np.zeros(len(q), dtype=bool)
        dist = np.full(len(q), np.inf)
        for poly in polys:
            inside ^= points_in_polygon(q, poly)
            dist = np.minimum(dist, distance_to_polygon(q, poly))
        edge = np.mean(np.concatenate([np.linalg.norm(np.roll(p, -1, 0) - p, axis=1) for p in polys]))
        keep = dist > cfg.inside_margin * edge
        q, inside = q[keep], inside[keep]
        pts.append(q @ layout.basis + level * layout.axis)
        signs.append(np.where(inside, -1.0, 1.0))
    if not pts:
        return np.zeros((0, 3)), np.zeros(0)
    end_pts = _end_planes(contours, cfg, rng)
    return np.concatenate(pts + [end_pts]), np.concatenate(signs + [np.ones(len(end_pts))])


def _end_planes(contours: SliceContours, cfg: SliceConfig, rng: np.random.Generator) -> np.ndarray:
    """(K, 3) points that must be outside: planes ``end_gap`` × spacing beyond the first and last slice.

    Nothing was clicked past the end slices, so the object ends before the
    next slice a user would have looked at; without this the fit closes each
    end with a free round cap that bulges far past the last contour.
    """
    layout = contours.layout
    if cfg.end_gap <= 0 or len(layout.levels) < 2:
        return np.zeros((0, 3))
    gap = cfg.end_gap * float(np.median(np.diff(layout.levels)))
    out = []
    for lev, sign in ((0, -1.0), (len(layout.levels) - 1, 1.0)):
        polys = [c.polygon for c in contours.contours if c.level == lev]
        if not polys:
            continue
        q = _plane_samples(contours, polys, rng)
        out.append(q @ layout.basis + (layout.levels[lev] + sign * gap) * layout.axis)
    return np.concatenate(out) if out else np.zeros((0, 3))


@dataclass
class SliceSupervision:
    """Slice-derived supervision in RAS mm; :meth:`bind` turns it into a loss callable.

    Attributes:
        contours: Detected slices and contours.
        points: (M, 3) RAS mm points carrying an in-plane normal.
        normals: (M, 3) their outward in-plane unit normals.
        plane_points: (K, 3) RAS mm labelled points on the slice planes.
        plane_signs: (K,) −1 inside / +1 outside.
        config: Weights.
    """

    contours: SliceContours
    points: np.ndarray
    normals: np.ndarray
    plane_points: np.ndarray
    plane_signs: np.ndarray
    config: SliceConfig

    def summary(self) -> dict:
        """JSON-ready description for fit reports."""
        out = {"detected": True, **self.contours.layout.to_dict()}
        out.update(n_contours=len(self.contours.contours), n_points_with_normals=int(len(self.points)),
                   n_plane_samples=int(len(self.plane_signs)),
                   n_plane_inside=int((self.plane_signs < 0).sum()))
        return out

    def bind(self, normalization, device, generator: torch.Generator) -> "SliceLoss":
        """The loss in the fit's normalised frame on ``device``."""
        def tensor(a):
            return torch.tensor(a, dtype=torch.float32, device=device)

        return SliceLoss(tensor(normalization.to_normalized(self.points)), tensor(self.normals),
                         tensor(self.contours.layout.axis), tensor(normalization.to_normalized(self.plane_points)),
                         tensor(self.plane_signs), self.config, generator)


class SliceLoss:
    """Callable ``loss(network) -> scalar tensor`` (normalised frame; module docstring).

    Half of each iteration's plane samples are drawn at random from the
    labelled pool, half are the worst sign violations among a random share of
    the pool, refreshed every ``fitting.mining.MINE_EVERY`` calls: a surface poking through a slice plane outside the
    contours covers a tiny share of the plane and random draws alone miss it.
    """

    def __init__(self, x, n, axis, y, s, cfg: SliceConfig, generator: torch.Generator) -> None:
        self.x, self.n, self.axis, self.y, self.s = x, n, axis, y, s
        self.cfg = cfg
        self.miner = ViolationMiner(len(y), generator, y.device)

    def _violation(self, network: torch.nn.Module, output: int):
        return lambda c: -self.s[c] * network(self.y[c])[:, output]

    def _plane_batch(self, network: torch.nn.Module, output: int) -> torch.Tensor:
        return self.miner.batch(min(self.cfg.plane_samples, len(self.y)), self._violation(network, output))

    def prepare(self, network: torch.nn.Module, pool: Executor, output: int = 0) -> None:
        """Run this call's violation search now, shared with ``pool`` (before an iteration's halves)."""
        if self.cfg.inside_weight > 0 and len(self.y) and self.miner.due:
            self.miner.search(min(self.cfg.plane_samples, len(self.y)), self._violation(network, output), pool)

    def __call__(self, network: torch.nn.Module, output: int = 0) -> torch.Tensor:
        total = torch.zeros((), device=self.x.device)
        if self.cfg.normal_weight > 0 and len(self.x):
            _, g = value_and_gradient(network, self.x, output)
            gp = g - (g @ self.axis)[:, None] * self.axis
            cos = (gp * self.n).sum(-1) / (gp.norm(dim=-1) + 1e-8)
            total = total + self.cfg.normal_weight * (1.0 - cos).mean()
        if self.cfg.inside_weight > 0 and len(self.y):
            idx = self._plane_batch(network, output)
            f = network(self.y[idx])[:, output]
            total = total + self.cfg.inside_weight * torch.relu(-self.s[idx] * f).mean()
        return total


def slice_supervision(points: np.ndarray, cfg: SliceConfig, seed: int = 0) -> Optional[SliceSupervision]:
    """Detect slices in ``points`` (RAS mm) and build their supervision; None if not on slices."""
    if not cfg.enabled:
        return None
    layout = detect_slices(points, cfg)
    if layout is None:
        return None
    contours = slice_contours(points, layout, cfg)
    has = np.linalg.norm(contours.normals, axis=1) > 0
    plane_pts, plane_signs = _plane_pool(contours, cfg, np.random.default_rng(seed))
    return SliceSupervision(contours, np.asarray(points)[has], contours.normals[has], plane_pts, plane_signs, cfg)
