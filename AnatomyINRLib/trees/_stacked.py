"""Stage 1 for many trees in one step: ``torch.func`` stacked weights + ``vmap`` (for GPUs).

On a GPU one small MLP cannot fill the device, so K trees are trained in one
vmapped forward/backward. The stacked parameters have a leading K axis and a
single Adam optimises them; Adam is element-wise, so this equals K separate
Adam optimisers (same learning rate schedule, same budget). The loss is the
sum of the K per-tree means, so each tree's gradient is its own. On CPU this
gains nothing (measured: 60–80 ms per shape-step however grouped).
"""

from __future__ import annotations

import copy
import time
from typing import Optional

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap

from AnatomyINRLib.core.errors import FitError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.fitting.monitor import ConvergenceMonitor
from AnatomyINRLib.fitting.schedule import learning_rate_at
from AnatomyINRLib.nn.field import NeuralField
from AnatomyINRLib.nn.occupancy import OccupancyResNet
from AnatomyINRLib.trees._fit import OneFit, _Pool, budget_of, held_out_iou, point_loss
from AnatomyINRLib.trees.config import TreeFitConfig


def _stack(samplers, cfg: TreeFitConfig, seeds, device, init_state):
    """Networks, per-tree generators and pools, stacked parameters and the vmapped logit function."""
    nets, gens = [], [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    for gen in gens:  # each tree keeps its generator for its minibatches, exactly as fit_one does
        net = OccupancyResNet(cfg.network, generator=gen).to(device)
        if init_state is not None:
            net.load_state_dict(init_state)
        nets.append(net)
    rngs = [np.random.default_rng([int(s), 1]) for s in seeds]
    pools = [_Pool(s, r, device) for s, r in zip(samplers, rngs)]
    params, buffers = stack_module_state(nets)
    params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    base = copy.deepcopy(nets[0]).to("meta")

    def logits_of(p, b, x):  # forward() is the negative logit (negative inside)
        return -functional_call(base, (p, b), (x,))[:, 0]

    return nets, gens, rngs, pools, params, buffers, vmap(logits_of)


def fit_stacked(samplers: list, cfg: TreeFitConfig, *, seeds: list, device: torch.device,
                init_state: Optional[dict], progress: ProgressReporter, labels: list) -> list:
    """Fit K trees together; returns one :class:`OneFit` per tree (``seconds`` is the shared time / K).

    Every tree draws its own points and initial weights from its own seed, as
    :func:`_fit.fit_one` does; all trees run the same number of iterations
    (the stack stops when every tree's plateau rule says stop).
    """
    nets, gens, rngs, pools, params, buffers, batched = _stack(samplers, cfg, seeds, device, init_state)
    total = budget_of(cfg, init_state is not None)
    opt = torch.optim.Adam(params.values(), lr=cfg.optim.lr, fused=device.type in ("cpu", "cuda"))  # as fit_one
    monitors = [ConvergenceMonitor(cfg.optim) for _ in nets]
    stop = [False] * len(nets)
    windows, histories = [[] for _ in nets], [[] for _ in nets]
    start, it = time.perf_counter(), 0
    for it in range(total):
        progress.check_cancel()
        if cfg.sampling.resample_every and it and it % cfg.sampling.resample_every == 0:
            for pool in pools:
                pool.refresh()
        for group in opt.param_groups:
            group["lr"] = learning_rate_at(it, total, cfg.optim.lr, cfg.optim)
        xs, ys = zip(*[pool.batch(cfg.sampling.batch_size, gen) for pool, gen in zip(pools, gens)])
        per_tree = point_loss(batched(params, buffers, torch.stack(xs)), torch.stack(ys), cfg.loss).mean(dim=1)
        if not torch.all(torch.isfinite(per_tree)):
            raise FitError(f"stacked fit diverged at iteration {it} (loss is not finite); try a lower learning rate")
        opt.zero_grad(set_to_none=True)
        per_tree.sum().backward()
        opt.step()
        for k, value in enumerate(per_tree.detach().cpu().tolist()):
            windows[k].append(value)
        if (it + 1) % cfg.optim.check_every == 0 or it + 1 == total:
            for k in range(len(nets)):
                mean, windows[k] = float(np.mean(windows[k])), []
                histories[k].append([it + 1, mean])
                stop[k] = monitors[k].update(mean, it + 1) or stop[k]
            progress.report("fit", (it + 1) / total, f"{labels[0]}..{labels[-1]}: iteration {it + 1}/{total}",
                            iteration=it + 1, loss=float(np.mean([h[-1][1] for h in histories])))
            if all(stop):
                break
    seconds = (time.perf_counter() - start) / len(nets)
    out = []
    for k, net in enumerate(nets):
        net.load_state_dict({name: params[name][k].detach().clone() for name in params}, strict=False)
        net.eval()
        out.append(OneFit(NeuralField(net, samplers[k].normalization, device=device), it + 1, all(stop), seconds,
                          histories[k][-1][1], held_out_iou(net, samplers[k], rngs[k], device), histories[k]))
    return out
