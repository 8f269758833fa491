"""Stage 1 with one shared decoder (``TreeFitConfig.share`` "biases"): shared weight matrices, per-tree biases.

Every tree t gets the network of :class:`~AnatomyINRLib.nn.occupancy.OccupancyResNet` with the shared
weight matrices W and its own biases b_t = b + δ_t (functa's shift modulations, Dupont et al. 2022;
fitted by auto-decoding, as DeepSDF fits its per-shape codes, Park et al. 2019). The loss of one step
over a set B of trees and their points X_t (``JointFitConfig``):

    L = mean_{t ∈ B, x ∈ X_t} BCE(logit(x; b + δ_t + σ ε_t), o_t(x)) + λ · mean_{t ∈ B} ‖δ_t‖²,  ε_t ~ N(0, I)

(TrIND eq. 1 with BCE, plus a Gaussian prior on the offsets; σ = ``code_noise``, 0 by default, a fresh
ε_t every step, as a VAE samples its posterior with a fixed variance: the decoder learns to give a tree
for every offset near its own, so that stage 2's samples, which land near but never on the training
networks, hold together). W and b start from the first tree's
own fit (the template of the warm-started protocol) and δ from 0. Why: networks that differ only in
their biases differ in 705 values (width 64) instead of 21 k, so the weight-space diffusion of stage 2
learns a far smaller space in which the trees' differences are all there is.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from AnatomyINRLib.core.errors import FitError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.nn.field import NeuralField
from AnatomyINRLib.nn.occupancy import OccupancyResNet
from AnatomyINRLib.trees._fit import OneFit, _Pool, iou_of, is_empty
from AnatomyINRLib.trees.config import TreeFitConfig


def bias_names(blocks: int) -> list:
    """The state-dict names of an OccupancyResNet's biases, in the order of its layers."""
    inner = [f"fc_{j}.{k}.bias" for k in range(blocks) for j in (0, 1)]
    return ["lin_in.bias", *inner, "lin_out.bias"]


def batched_logits(x: torch.Tensor, weights: dict, biases: list) -> torch.Tensor:
    """OccupancyResNet.logits of B networks that share ``weights`` and differ in ``biases``.

    Args:
        x: (B, M, 3) normalised points, M per network.
        weights: {name: tensor} of the shared ``*.weight`` tensors.
        biases: per layer (in :func:`bias_names` order) a (B, width) or (B, 1) tensor.

    Returns:
        (B, M) logits (positive inside).
    """
    h = x @ weights["lin_in.weight"].T + biases[0][:, None]
    blocks = (len(biases) - 2) // 2
    for k in range(blocks):
        a = torch.relu(torch.relu(h) @ weights[f"fc_0.{k}.weight"].T + biases[1 + 2 * k][:, None])
        h = h + a @ weights[f"fc_1.{k}.weight"].T + biases[2 + 2 * k][:, None]
    return (torch.relu(h) @ weights["lin_out.weight"].T)[..., 0] + biases[-1]


@dataclass
class _Tree:
    """One tree's labelled points (on the device) and its held-out points."""

    x: torch.Tensor
    y: torch.Tensor
    eval_x: np.ndarray
    eval_y: np.ndarray
    bounds_mm: np.ndarray


def label_tree(sampler, seed: int, dev) -> _Tree:
    """The tree's pool (``sampling.pool_draws`` draws, as ``fit_one`` labels it) and held-out points,
    drawn with ``seed``."""
    rng = np.random.default_rng([int(seed), 1])
    pool = _Pool(sampler, rng, dev)
    ex, ey = sampler.evaluation(rng) if sampler.cfg.eval_points else (np.zeros((0, 3), np.float32), np.zeros(0))
    return _Tree(pool.x, pool.y, ex, ey > 0.5, sampler.bounds_mm)


def fit_jointly(trees: list, names: list, template: dict, cfg: TreeFitConfig, seed: int, dev,
                reporter: ProgressReporter, frame) -> list:
    """Shared matrices + per-tree biases for ``trees`` (:class:`_Tree`), from ``template``; one OneFit each.

    One Adam holds all the trees' offsets (as in the measured runs): a tree that is not in a step
    still moves on its momentum, and the decay term acts on the trees of the step. Each OneFit's
    ``iterations`` is the joint fit's number of steps, its seconds the joint fit's time over the trees.

    Raises:
        FitError: the loss stopped being finite, or a tree's field came out empty.
        Cancelled: by the reporter's cancel check (polled every step).
    """
    j, start, cpu = cfg.joint, time.perf_counter(), time.process_time()
    names_b = bias_names(cfg.network.blocks)
    weights = {k: v.detach().clone().to(dev).requires_grad_(True) for k, v in template.items() if k.endswith("weight")}
    base = [template[k].detach().clone().to(dev).requires_grad_(True) for k in names_b]
    sizes = [b.numel() for b in base]
    delta = torch.zeros(len(trees), sum(sizes), device=dev, requires_grad=True)
    opt = torch.optim.Adam([{"params": [*weights.values(), *base], "lr": j.lr}, {"params": [delta], "lr": j.bias_lr}])
    per_step = min(j.trees_per_step, len(trees))
    total = math.ceil(j.steps_per_tree * len(trees) / per_step)  # every tree in about steps_per_tree steps
    gen = torch.Generator().manual_seed(int(seed))
    history, window = [], []
    for it in range(total):
        reporter.check_cancel()
        scale = j.lr_final_factor + (1 - j.lr_final_factor) * 0.5 * (1 + math.cos(math.pi * it / total))
        opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = j.lr * scale, j.bias_lr * scale
        idx = torch.randperm(len(trees), generator=gen)[:per_step]
        x, y = _batch(trees, idx, j.points_per_tree, gen)
        d = delta[idx.to(dev)]
        noisy = d + j.code_noise * torch.randn(d.shape, generator=gen).to(dev) if j.code_noise else d
        offsets = torch.split(noisy, sizes, dim=1)
        logits = batched_logits(x, weights, [b[None] + o for b, o in zip(base, offsets)])
        loss = F.binary_cross_entropy_with_logits(logits, y) + j.bias_decay * d.pow(2).sum(dim=1).mean()
        if not torch.isfinite(loss):
            raise FitError(f"joint fit diverged at step {it} (loss is not finite); try a lower joint.lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        window.append(float(loss.detach()))
        if (it + 1) % j.check_every == 0 or it + 1 == total:
            mean, window = float(np.mean(window)), []
            history.append([it + 1, mean])
            reporter.report("fit", (it + 1) / total, f"joint fit of {len(trees)} trees: step {it + 1}/{total}",
                            iteration=it + 1, loss=mean)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return [_one(t, names[i], weights, base, delta[i], cfg, frame, dev, history, total, seconds / len(trees),
                 cpu / len(trees)) for i, t in enumerate(trees)]


def _batch(trees: list, idx: torch.Tensor, points: int, gen: torch.Generator) -> tuple:
    """(B, M, 3) points and (B, M) labels: ``points`` drawn at random from each chosen tree's pool."""
    xs, ys = [], []
    for t in idx.tolist():
        pick = torch.randint(len(trees[t].x), (points,), generator=gen).to(trees[t].x.device)
        xs.append(trees[t].x[pick])
        ys.append(trees[t].y[pick])
    return torch.stack(xs), torch.stack(ys)


@torch.no_grad()
def _one(tree: _Tree, name: str, weights: dict, base: list, delta: torch.Tensor, cfg: TreeFitConfig, frame, dev,
         history: list, total: int, seconds: float, cpu: float) -> OneFit:
    """Tree ``name``'s own OccupancyResNet (shared matrices, its biases), its loss and held-out IoU."""
    net = OccupancyResNet(cfg.network).to(dev)
    state = {k: v.detach().clone() for k, v in weights.items()}
    for key, b, o in zip(bias_names(cfg.network.blocks), base, torch.split(delta, [b.numel() for b in base])):
        state[key] = (b + o).detach().clone()
    net.load_state_dict(state)
    net.eval()
    if is_empty(net, tree):  # the tree's pool: x, y as a _Pool's
        raise FitError(f"{name}: the joint fit left this tree's field empty (no training point inside)")
    loss = float(F.binary_cross_entropy_with_logits(net.logits(tree.x), tree.y))
    heldout = iou_of(net, tree.eval_x, tree.eval_y, dev) if len(tree.eval_x) else None
    return OneFit(NeuralField(net, frame, device=dev), total, False, seconds, loss, heldout, history, False, cpu)
