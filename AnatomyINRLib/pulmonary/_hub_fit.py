"""Joint fit of the segmental tubes leaving one branching to the airway mask around it (point mode, step 4).

The tubes of :mod:`AnatomyINRLib.pulmonary._airway_tubes` are fitted one by one to
each bronchus' clean stretch and extended back to the branching; near the
branching, where sibling bronchi overlap, their axes and radii are off by
tenths of a millimetre, and there a tenth decides which sibling a wall voxel
is deepest in. Here the tubes leaving one branching (all of a lobe's, or one
group of them where the lobe branches in steps), plus the bronchus that feeds
them, are fitted together as one union of capsules to the mask in a ball around
the branching (the lobe's other tubes join the union unchanged): a voxel is
airway exactly when its centre lies inside some capsule
(``min_k (distance to axis_k − r_k) < 0``), so the capsules are moved until the
union reproduces the mask's voxels there. The tubes share one start point (the
branching) and each keeps its label; the feeding bronchus only explains the
voxels above the branching and is dropped afterwards.

Loss: binary cross-entropy between the mask and σ(−d(x)/τ), d the union's
signed depth (mm, the soft minimum of the capsules' depths), τ a fraction of a
voxel, over the ball's voxels; voxels of the mask that no capsule is near (the
bronchi's own branches) are left out, as nothing here models them.
"""

from __future__ import annotations

import numpy as np

from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.pulmonary._airway_tubes import Tube


def _capsule_depth(x, start, end, radius):
    """(M, K) torch ``distance to segment start_k → end_k − radius_k`` (mm) of (M, 3) points.

    ``start`` is (K, 3) or one shared (3,) point, ``end`` (K, 3), ``radius`` (K,).
    """
    import torch

    seg = end - start
    rel = x[:, None, :] - start
    t = ((rel * seg).sum(-1) / (seg * seg).sum(-1).clamp_min(1e-9)).clamp(0.0, 1.0)
    return torch.linalg.norm(rel - t[..., None] * seg, dim=-1) - radius


def _ball_voxels(mask: np.ndarray, grid: ImageGrid, offset: np.ndarray, centre: np.ndarray, radius_mm: float,
                 max_voxels: int = 12_000):
    """World points (M, 3) and mask values (M,) of the voxels within ``radius_mm`` of ``centre`` (RAS mm).

    ``mask`` is the cropped airway mask whose voxel (0, 0, 0) is voxel ``offset`` of ``grid``; at most
    ``max_voxels`` of them (evenly spread over the ball) are returned.
    """
    c = grid.world_to_index(centre[None])[0] - offset
    half = np.ceil(radius_mm / np.min(grid.spacing)) + 1
    lo = np.maximum(np.floor(c - half).astype(int), 0)
    hi = np.minimum(np.ceil(c + half).astype(int) + 1, mask.shape)
    ijk = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 3)
    world = grid.index_to_world(ijk + offset)
    keep = np.flatnonzero(np.linalg.norm(world - centre, axis=1) <= radius_mm)
    if len(keep) > max_voxels:  # fine grids: an even subsample (a few thousand voxels pin a capsule down)
        keep = keep[np.linspace(0, len(keep) - 1, max_voxels).astype(np.int64)]
    return world[keep], mask[tuple(ijk[keep].T)].astype(bool)


def fit_lobe_tubes(tubes: list, hub: np.ndarray, feed_end: np.ndarray, feed_radius: float, mask: np.ndarray,
                   grid: ImageGrid, offset: np.ndarray, ball_mm: float = 10.0, steps: int = 100,
                   tau_mm: float = 0.2, trims_mm: tuple = (1.5, 0.5), fixed: tuple = ()) -> "list | None":
    """Tubes leaving one branching, fitted jointly to the mask around it (module doc).

    Args:
        tubes: The :class:`Tube` s (at least two) leaving the branching, as fitted one by one.
        hub: (3,) RAS mm first guess of the branching: the common start of the fitted tubes and
            the centre of the ball.
        feed_end: (3,) RAS mm of a point up the feeding (lobar) bronchus; feed_radius: its radius (mm).
        mask, grid, offset: Cropped airway mask, its grid and the crop's index offset.
        ball_mm: Radius of the fitted ball around the branching.
        steps: Adam steps per round.
        tau_mm: Width of the soft inside/outside step (mm).
        trims_mm: One round per value: mask voxels farther outside every capsule than this
            are left out of the round (a wide margin around the first guess, then a narrow
            one around the first round's fit).
        fixed: Other tubes of the lobe (e.g. S6 beside a basal branching): part of the union, not fitted.

    Returns:
        New tubes (same labels and order): common start, fitted ends and radii; or None when the
        fit explains the ball's voxels no better than ``tubes`` (with their own starts) do.
    """
    import torch  # here, not at import: labelled-airway runs never need it

    x_np, y_np = _ball_voxels(mask, grid, offset, hub, ball_mm)
    x = torch.as_tensor(x_np, dtype=torch.float64)
    y = torch.as_tensor(y_np, dtype=torch.float64)
    start = torch.tensor(hub, dtype=torch.float64, requires_grad=True)
    ends = torch.tensor(np.stack([t.end for t in tubes] + [feed_end]), dtype=torch.float64, requires_grad=True)
    log_r = torch.tensor(np.log([t.radius for t in tubes] + [feed_radius]), dtype=torch.float64,
                         requires_grad=True)

    given = torch.tensor(np.stack([t.start for t in tubes] + [hub]), dtype=torch.float64)
    others = _capsule_depth(x, torch.tensor(np.stack([t.start for t in fixed])),
                            torch.tensor(np.stack([t.end for t in fixed])),
                            torch.tensor([t.radius for t in fixed])) if fixed else x[:, :0]

    def union(starts):
        return torch.cat([_capsule_depth(x, start if starts is None else starts, ends, log_r.exp()), others], dim=1)

    def loss_of(weight, starts=None):
        depth = -tau_mm * torch.logsumexp(-union(starts) / tau_mm, dim=1)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(-depth / tau_mm, y, reduction="none")
        return (bce * weight).sum() / weight.sum()

    def kept(trim, starts=None):
        """1 for every voxel but the mask voxels farther than ``trim`` outside every capsule."""
        with torch.no_grad():
            near = union(starts).min(dim=1).values < trim
        return torch.where(y.bool() & ~near, 0.0, 1.0)

    first = kept(trims_mm[0], given)
    with torch.no_grad():
        before = float(loss_of(first, given))  # the tubes as given, each from its own start
    for k, trim in enumerate(trims_mm):
        weight = first if k == 0 else kept(trim)
        opt = torch.optim.Adam([start, ends, log_r], lr=0.05 if k == 0 else 0.02)  # mm (log for radii)
        for _ in range(steps):
            opt.zero_grad()
            loss_of(weight).backward()
            opt.step()
    with torch.no_grad():
        after = float(loss_of(first))
    if not after < before:  # also when the ball holds no voxel (both losses NaN)
        return None
    s, e, r = start.detach().numpy(), ends.detach().numpy(), log_r.detach().exp().numpy()
    return [Tube(t.label, s.copy(), e[k].copy(), float(r[k]), t.clean) for k, t in enumerate(tubes)]
