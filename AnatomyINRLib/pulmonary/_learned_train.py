"""Method B training (ImPulSe+ §4.5): template pre-training, then the end-to-end stage, resumable, DDP-ready.

Run by one process, or by ``torchrun`` (the env vars WORLD_SIZE/RANK): each rank takes the cases
``cases[rank::world]``, gradients are averaged (DistributedDataParallel; gloo on CPU, NCCL on CUDA),
only rank 0 writes the checkpoint. A checkpoint is written after every epoch; when the output file
already holds an unfinished checkpoint of the same configuration and seed, training resumes from it
(weights, AdamW state and epoch counter). Every random draw of epoch e is seeded by (seed, e, rank),
so an interrupted and resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.nn.distributed import average_grads as _average_grads, ddp_model, dist_context, run_epochs, state_digest  # noqa: F401 (re-exported)
from AnatomyINRLib.pulmonary._learned_data import sample_points
from AnatomyINRLib.pulmonary._learned_net import ImPulSeNet, segment_loss
from AnatomyINRLib.pulmonary.config import SEGMENTS, LearnedTrainConfig

CHECKPOINT_KIND = "pulmonary-segments-impulse+"
TEMPLATE_LR = 1e-2  # the template is a small decoder fitted to a few label maps: a larger step is safe


def label_table() -> dict:
    """The label set a checkpoint is tied to: value → segment name."""
    return {str(v): SEGMENTS[v][0] for v in SEGMENTS}


def pretrain_template(net: ImPulSeNet, cases: list, cfg: LearnedTrainConfig, seed: int, world: int,
                      reporter) -> list:
    """Stage 1: fit T(v) to random training label maps with α·CE + β·Dice (§4.5); returns the losses."""
    params = list(net.template.parameters())
    opt = torch.optim.Adam(params, lr=TEMPLATE_LR)
    rng = np.random.default_rng([seed, 7919])
    losses = []
    for step in range(cfg.pretrain_template_steps):
        target = torch.from_numpy(cases[int(rng.integers(len(cases)))].template_target)
        logits = net.template()[0].permute(1, 2, 3, 0)
        loss, _ = segment_loss(logits, target, None, cfg.ce_weight, cfg.dice_weight, 0.0)
        opt.zero_grad()
        loss.backward()
        if world > 1:
            _average_grads(params, world)
        opt.step()
        losses.append(float(loss.detach()))
        reporter.report("template", (step + 1) / cfg.pretrain_template_steps,
                        f"template step {step + 1}/{cfg.pretrain_template_steps}", loss=float(loss.detach()))
    return losses


def learning_rate(cfg: LearnedTrainConfig, step: int) -> float:
    """Cosine decay from ``learning_rate`` to ``min_learning_rate`` over all end-to-end steps."""
    total = cfg.epochs * cfg.steps_per_epoch
    return cfg.min_learning_rate + 0.5 * (cfg.learning_rate - cfg.min_learning_rate) * (1 + math.cos(math.pi * step / total))


def _batch(cases, order, step, cfg, rng, device):
    picked = [cases[order[(step * cfg.batch_size + b) % len(order)]] for b in range(cfg.batch_size)]
    fractions = {"airways": cfg.bronchus_fraction, "arteries": cfg.artery_fraction, "veins": cfg.vein_fraction}
    pts, labs = zip(*(sample_points(c, cfg.points_per_case, fractions, rng) for c in picked))
    vol = torch.from_numpy(np.stack([c.volume for c in picked])).to(device)
    return vol, torch.from_numpy(np.stack(pts)).to(device), torch.from_numpy(np.stack(labs)).to(device)


def train_epoch(model, net, opt, cases, cfg, seed, epoch, rank, device, reporter) -> dict:
    """One epoch of the end-to-end stage (``steps_per_epoch`` AdamW steps); returns mean loss terms."""
    net.set_dropout_generator(torch.Generator(device=device).manual_seed(
        int(np.random.default_rng([seed, epoch, rank]).integers(2 ** 62))))
    rng = np.random.default_rng([seed, epoch, rank, 1])
    order = rng.permutation(len(cases))
    model.train()
    sums = {"loss": 0.0, "ce": 0.0, "dice": 0.0, "deformation": 0.0}
    for step in range(cfg.steps_per_epoch):
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, epoch * cfg.steps_per_epoch + step)
        vol, pts, labs = _batch(cases, order, step, cfg, rng, device)
        logits, delta = model(vol, pts)
        loss, terms = segment_loss(logits, labs, delta, cfg.ce_weight, cfg.dice_weight, cfg.deformation_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sums["loss"] += float(loss.detach())
        for k, v in terms.items():
            sums[k] += v
        reporter.report("train", (epoch + (step + 1) / cfg.steps_per_epoch) / cfg.epochs,
                        f"epoch {epoch + 1}/{cfg.epochs} step {step + 1}/{cfg.steps_per_epoch}", loss=float(loss.detach()))
    return {k: v / cfg.steps_per_epoch for k, v in sums.items()}


def make_optimizer(net: ImPulSeNet, cfg: LearnedTrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable weights (the template's only when ``freeze_template`` is off)."""
    for p in net.template.parameters():
        p.requires_grad_(not cfg.freeze_template)
    params = [p for p in net.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_tensors(net: ImPulSeNet, opt: torch.optim.Optimizer) -> dict:
    """Weights as ``model.<name>``, AdamW moments and step counters as ``optim.<index>.<key>``."""
    tensors = {f"model.{k}": v for k, v in net.state_dict().items()}
    for idx, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optim.{idx}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors


def checkpoint_metadata(cfg: LearnedTrainConfig, seed: int, epoch: int, history: list, extra: dict) -> dict:
    return {"kind": CHECKPOINT_KIND, "labels": label_table(), "network": cfg.network.to_dict(),
            "training": cfg.to_dict(), "seed": int(seed), "epoch": int(epoch),
            "finished": epoch >= cfg.epochs, "history": history, **extra}


def restore(net: ImPulSeNet, opt: torch.optim.Optimizer, tensors: dict) -> None:
    """Load weights and AdamW state written by :func:`checkpoint_tensors`."""
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    state: dict = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    sd = opt.state_dict()
    sd["state"] = state
    opt.load_state_dict(sd)


def resume_point(path: Path, cfg: LearnedTrainConfig, seed: int):
    """(tensors, metadata) of an existing checkpoint to resume from, or None when ``path`` does not exist.

    Raises:
        InputError: the file is a checkpoint of another configuration, seed or kind.
    """
    from AnatomyINRLib.io.checkpoint import load_checkpoint

    if not path.exists():
        return None
    tensors, meta = load_checkpoint(path)
    if meta.get("kind") != CHECKPOINT_KIND or meta.get("training") != cfg.to_dict() or meta.get("seed") != seed:
        raise InputError(f"output {str(path)!r}: holds a checkpoint of another configuration or seed; "
                         "remove it or choose another --output to start a new training")
    return tensors, meta


def _start(net, cfg, path, seed, shard, world, dev, reporter):
    """Resume from ``path`` or pre-train the template; returns (optimizer, first epoch, history, template losses)."""
    found = resume_point(path, cfg, seed)
    if found is not None:
        opt = make_optimizer(net, cfg)
        restore(net, opt, {k: v.to(dev) for k, v in found[0].items()})
        return opt, int(found[1]["epoch"]), list(found[1].get("history", [])), found[1].get("template_losses", [])
    losses = pretrain_template(net, shard, cfg, seed, world, reporter) if cfg.pretrain_template_steps else []
    return make_optimizer(net, cfg), 0, [], losses


def run_training(data_dir, cfg: LearnedTrainConfig, seed: int, device, output: "str | Path", reporter) -> dict:
    """Train Method B on the case folders of ``data_dir`` into the checkpoint ``output`` (see module doc).

    Returns:
        dict: rank, world_size, cases, start_epoch, epochs, history (per-epoch mean loss terms),
        template_losses, digest (of the final weights; equal on every rank), resumed.
    """
    from AnatomyINRLib.io.checkpoint import save_checkpoint
    from AnatomyINRLib.pulmonary._learned_data import case_folders, load_cases

    path = Path(output)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))  # one GPU per torchrun process
        torch.cuda.set_device(device)
    rank, world = dist_context(device)
    folders = case_folders(data_dir)
    if len(folders) < world:
        raise InputError(f"data_dir: {len(folders)} case(s) cannot be shared by {world} processes; "
                         "give at least one case per process")
    reporter.report("load", 0.0, f"rank {rank}: reading {len(folders[rank::world])} of {len(folders)} cases")
    shard = load_cases(data_dir, cfg, names=[f.name for f in folders[rank::world]])
    # Identical initial weights on every rank: drawn from a generator seeded by the run's seed.
    net = ImPulSeNet(cfg.network, generator=torch.Generator().manual_seed(int(seed))).to(device)
    opt, start, history, template_losses = _start(net, cfg, path, seed, shard, world, device, reporter)
    model = ddp_model(net, world, device)
    extra = {"template_losses": template_losses, "cases": [f.name for f in folders], "world_size": world}
    run_epochs(lambda epoch: train_epoch(model, net, opt, shard, cfg, seed, epoch, rank, device, reporter),
               lambda done_epochs, last: save_checkpoint(path, checkpoint_tensors(net, opt), checkpoint_metadata(
                   cfg, seed, done_epochs, history, extra)),
               start=start, epochs=cfg.epochs, history=history, rank=rank, world=world, reporter=reporter)
    digest = state_digest(net)
    reporter.report("done", 1.0, f"rank {rank}: weights {digest}", rank=rank, digest=digest)
    return {"rank": rank, "world_size": world, "cases": len(folders), "start_epoch": start, "epochs": cfg.epochs,
            "history": history, "template_losses": template_losses, "digest": digest, "resumed": start > 0}
