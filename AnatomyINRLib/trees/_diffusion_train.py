"""Training of the weight-space diffusion model (TrIND §2 Stage 2, eq. 2): resumable, EMA, DDP-ready.

Data: N weight vectors (N, P) float32 of one INR architecture plus its layout (``_diffusion_tokens``).
Loss (TrIND eq. 2): mean squared error between the denoiser's output and x_0 (or ε), over the real
token slots only (padding is ignored), at a timestep t ~ U{0..T−1} per network.

Optimiser: AdamW; the learning rate decays ×``lr_decay`` every ``lr_decay_every`` epochs (StepLR);
gradients clipped to ``grad_clip``; an exponential moving average (EMA) of the weights is kept and is
what sampling uses. One epoch = ceil(N / batch_size) steps; each step takes ``batch_size`` networks
from a permutation of the data set (wrapping around at its end).

Determinism and resume: the permutation, timesteps and noise of epoch e are drawn from generators
seeded by (seed, e) only, so a run resumed from its checkpoint of epoch e ends with the same weights
as an uninterrupted one. A checkpoint (weights, EMA, AdamW state, tokenizer statistics, epoch,
history) is written every ``checkpoint_every`` epochs and after the last one.

Distributed: under ``torchrun`` (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel (gloo
on CPU, NCCL on CUDA). Every rank holds the whole data set, draws the same global batch and takes the
rows ``rank::world`` of it, so the averaged gradient is that of the global batch. Ranks first compare
a SHA-256 of their data and layout and refuse to train when they differ. Only rank 0 writes.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.nn.distributed import ddp_model, dist_context, state_digest  # noqa: F401 (re-exported)
from AnatomyINRLib.trees._diffusion_net import WeightDenoiser
from AnatomyINRLib.trees._diffusion_schedule import DiffusionSchedule
from AnatomyINRLib.trees._diffusion_tokens import (WeightTokenizer, check_layout, check_weights, layout_from_json,
                                                   layout_to_json)
from AnatomyINRLib.trees.config import DiffusionConfig

CHECKPOINT_KIND = "trees-weight-diffusion"
# Fields that may change when a finished or interrupted run is resumed (training longer).
_RESUMABLE_CHANGES = ("epochs", "checkpoint_every", "sample_steps", "eta", "temperature")


def data_digest(weights: np.ndarray, layout) -> str:
    """SHA-256 (hex) of the layout and the float32 bytes of the data set: equal digests = same data."""
    h = hashlib.sha256(json.dumps(layout_to_json(layout)).encode())
    h.update(np.ascontiguousarray(weights, dtype=np.float32).tobytes())
    return h.hexdigest()


def check_ranks_agree(digest: str, world: int, device: torch.device) -> None:
    """Refuse (InputError on every rank) when the ranks' data digests differ."""
    if world <= 1:
        return
    import torch.distributed as dist

    mine = torch.tensor(list(bytes.fromhex(digest)), dtype=torch.int64, device=device)
    gathered = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(gathered, mine)
    digests = [bytes(g.cpu().tolist()).hex() for g in gathered]
    if len(set(digests)) > 1:
        listing = ", ".join(f"rank {r}: {d[:12]}" for r, d in enumerate(digests))
        raise InputError(f"torchrun ranks disagree on the training data (SHA-256 {listing}); "
                         "give every process the same INR folder")


class EMA:
    """Exponential moving average of a module's parameters, s ← d_n·s + (1 − d_n)·w; buffers are copied.

    d_n = min(decay, (1 + n)/(10 + n)) at the n-th update (n = 0, 1, ...): a warm-up, so that a short
    training's average is not dominated by the random initial weights (at decay 0.999 a plain EMA
    still holds 96 % of them after 40 steps).
    """

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}
        # buffers (the hull's training tokens) are copied, not averaged: averaging would round them
        self.trained = {name for name, _ in module.named_parameters()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        self.updates += 1
        for k, v in module.state_dict().items():
            if k in self.trained:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                self.shadow[k].copy_(v)


def build_denoiser(tokenizer: WeightTokenizer, cfg: DiffusionConfig, seed: int, hull=None) -> WeightDenoiser:
    """The denoiser with initial weights drawn from ``seed`` (identical on every rank).

    ``hull``: (N, K, S) training tokens when ``cfg.head`` is "hull" (the tokenizer's encoding of the
    training weights, or a checkpoint's stored copy).
    """
    if (cfg.head == "hull") != (hull is not None):
        raise InputError(f"head {cfg.head!r}: the training networks' tokens are given to the 'hull' head, "
                         "and only to it")
    return WeightDenoiser(tokenizer.layer_index, tokenizer.position_index, tokenizer.token_size, cfg.width,
                          cfg.depth, cfg.heads, cfg.dropout, generator=torch.Generator().manual_seed(int(seed)),
                          per_token=cfg.projection == "token", hull=hull)


def build_schedule(cfg: DiffusionConfig) -> DiffusionSchedule:
    return DiffusionSchedule(cfg.diffusion_steps, cfg.beta_start, cfg.beta_end, cfg.prediction, cfg.x0_skip)


def learning_rate(cfg: DiffusionConfig, epoch: int) -> float:
    """StepLR: ``learning_rate · lr_decay^(epoch // lr_decay_every)``."""
    return cfg.learning_rate * cfg.lr_decay ** (epoch // cfg.lr_decay_every)


def _epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.default_rng([seed, epoch, stream]).integers(2 ** 62)))


def train_epoch(model, net, ema, opt, tokens, mask, schedule, cfg, seed, epoch, rank, world, reporter) -> float:
    """One epoch (see module doc); returns the mean loss of this rank's rows."""
    n = tokens.shape[0]
    order = torch.randperm(n, generator=_epoch_generator(seed, epoch, 0))
    draws = _epoch_generator(seed, epoch, 1)
    steps = math.ceil(n / cfg.batch_size)
    for group in opt.param_groups:
        group["lr"] = learning_rate(cfg, epoch)
    model.train()
    total = 0.0
    # No dropout in the denoiser (DiffusionConfig refuses it): nothing here draws from the global RNG.
    for step in range(steps):
        # the global batch is drawn identically on every rank; each rank takes rows rank::world
        index = order[(step * cfg.batch_size + torch.arange(cfg.batch_size)) % n]
        t = torch.randint(0, schedule.steps, (cfg.batch_size,), generator=draws)
        noise = torch.randn((cfg.batch_size, *tokens.shape[1:]), generator=draws)
        index, t, noise = index[rank::world], t[rank::world], noise[rank::world].to(tokens.device)
        x0 = tokens[index]
        x_t = schedule.q_sample(x0, t, noise)
        out = model(x_t, t.to(tokens.device))
        err = schedule.training_error(out, x_t, t.to(tokens.device), x0, noise)
        loss = err.masked_select(mask.expand_as(err)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        ema.update(net)
        total += float(loss.detach())
        reporter.report("train", (epoch + (step + 1) / steps) / cfg.epochs,
                        f"epoch {epoch + 1}/{cfg.epochs} step {step + 1}/{steps}", loss=float(loss.detach()))
    return total / steps


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_tensors(net, ema: EMA, opt, tokenizer: WeightTokenizer) -> dict:
    """``model.*``, ``ema.*`` (+ ``ema_updates``), AdamW state ``optim.<index>.<key>``, ``tokenizer.mean/scale``.

    The hull head's training tokens are stored once, as ``ema.hull`` (the EMA copies buffers unchanged).
    """
    tensors = {f"model.{k}": v for k, v in net.state_dict().items() if k != "hull"}
    tensors.update({f"ema.{k}": v for k, v in ema.shadow.items()})
    for idx, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optim.{idx}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    tensors["ema_updates"] = torch.tensor(ema.updates, dtype=torch.int64)
    tensors["tokenizer.mean"] = torch.from_numpy(tokenizer.mean)
    tensors["tokenizer.scale"] = torch.from_numpy(tokenizer.scale)
    return tensors


def _restore(net, ema: EMA, opt, tensors: dict, device) -> None:
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    if "ema.hull" in tensors:
        weights["hull"] = tensors["ema.hull"]
    net.load_state_dict(weights, strict=True)
    ema.shadow = {k[4:]: v.to(device).clone() for k, v in tensors.items() if k.startswith("ema.")}
    ema.updates = int(tensors["ema_updates"])
    state: dict = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value.to(device) if key != "step" else value
    sd = opt.state_dict()
    sd["state"] = state
    opt.load_state_dict(sd)


def check_checkpoint_layout(meta: dict, layout, where: str) -> None:
    """InputError unless the checkpoint ``meta`` was trained on INRs of exactly ``layout``."""
    theirs = layout_from_json(meta.get("layout", []))
    mine = check_layout(layout)
    if theirs != mine:
        diff = next((f"{a} vs {b}" for a, b in zip(theirs, mine) if a != b),
                    f"{len(theirs)} vs {len(mine)} tensors")
        raise InputError(f"{where}: the checkpoint was trained on INRs of another weight layout "
                         f"({sum(math.prod(s) for _, s in theirs)} values in {len(theirs)} tensors; these INRs have "
                         f"{sum(math.prod(s) for _, s in mine)} in {len(mine)}; first difference: {diff})")


def _resume_point(path: Path, cfg: DiffusionConfig, seed: int, layout, digest: str):
    """(tensors, metadata) to resume from, None when ``path`` does not exist; InputError if incompatible."""
    from AnatomyINRLib.io.checkpoint import load_checkpoint

    if not path.exists():
        return None
    tensors, meta = load_checkpoint(path)
    if meta.get("kind") != CHECKPOINT_KIND:
        raise InputError(f"output {str(path)!r}: holds a checkpoint of another kind ({meta.get('kind')!r})")
    check_checkpoint_layout(meta, layout, f"output {str(path)!r}")
    fixed = {k: v for k, v in cfg.to_dict().items() if k not in _RESUMABLE_CHANGES}
    theirs = {k: v for k, v in meta.get("training", {}).items() if k not in _RESUMABLE_CHANGES}
    if theirs != fixed or meta.get("seed") != seed or meta.get("data_digest") != digest:
        raise InputError(f"output {str(path)!r}: holds a checkpoint of another configuration, seed or data set; "
                         "remove it or choose another --output to start a new training")
    return tensors, meta


def _start(weights, layout, cfg: DiffusionConfig, seed: int, device, path: Path, digest: str):
    """(tokenizer, denoiser, EMA, AdamW, first epoch, history): fresh, or restored from ``path``."""
    found = _resume_point(path, cfg, seed, layout, digest)
    tokenizer = (WeightTokenizer(layout, cfg.token_size, found[0]["tokenizer.mean"].numpy(),
                                 found[0]["tokenizer.scale"].numpy()) if found
                 else WeightTokenizer.fit(weights, layout, cfg.token_size, cfg.normalisation == "parameter"))
    hull = tokenizer.encode(weights).float() if cfg.head == "hull" else None
    net = build_denoiser(tokenizer, cfg, seed, hull).to(device)
    ema = EMA(net, cfg.ema_decay)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    if found is None:
        return tokenizer, net, ema, opt, 0, []
    _restore(net, ema, opt, found[0], device)
    return tokenizer, net, ema, opt, int(found[1]["epoch"]), list(found[1].get("history", []))


def run_training(weights, layout, cfg: DiffusionConfig, seed: int, device: torch.device, output,
                 reporter, inr_info: dict | None = None) -> dict:
    """Train (or resume training) into the checkpoint ``output`` (see module doc).

    Args:
        weights: (N, P) float32 weight vectors; layout: [(name, shape), ...] of the INR.
        inr_info: JSON-ready description of the INR architecture (e.g. the ``network`` entry of an
            INR file) stored in the checkpoint so samples can be written as INR files.

    Returns:
        dict: rank, world_size, networks, start_epoch, epochs, history, digest (final weights, equal on
        every rank), data_digest, resumed.
    """
    from AnatomyINRLib.io.checkpoint import save_checkpoint

    layout = check_layout(layout)
    weights = check_weights(weights, layout)
    path = Path(output)
    rank, world = dist_context(device)
    if cfg.batch_size % world:
        raise InputError(f"batch_size: {cfg.batch_size} networks cannot be split evenly over {world} processes")
    digest = data_digest(weights, layout)
    check_ranks_agree(digest, world, device)
    tokenizer, net, ema, opt, start, history = _start(weights, layout, cfg, seed, device, path, digest)
    # the denoiser's buffers (index tables; a hull head's training tokens, 17 MB for 100 trees) are
    # fixed at construction and the ranks agree on the data: no per-step broadcast of them
    model = ddp_model(net, world, device, constant_buffers=True)
    tokens = tokenizer.encode(weights).to(device, torch.float32)
    mask = tokenizer.padding_mask().to(device)
    schedule = build_schedule(cfg)
    meta = {"kind": CHECKPOINT_KIND, "layout": layout_to_json(layout), "token_size": cfg.token_size,
            "training": cfg.to_dict(), "seed": int(seed), "data_digest": digest, "networks": int(weights.shape[0]),
            "inr": inr_info or {}, "world_size": world}
    for epoch in range(start, cfg.epochs):
        loss = train_epoch(model, net, ema, opt, tokens, mask, schedule, cfg, seed, epoch, rank, world, reporter)
        history.append({"epoch": epoch + 1, "loss": round(loss, 6), "lr": learning_rate(cfg, epoch)})
        if rank == 0 and ((epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs):
            save_checkpoint(path, checkpoint_tensors(net, ema, opt, tokenizer),
                            dict(meta, epoch=epoch + 1, finished=epoch + 1 >= cfg.epochs, history=history))
        if world > 1:
            import torch.distributed as dist

            dist.barrier()
        reporter.report("epoch", (epoch + 1) / cfg.epochs, f"epoch {epoch + 1}/{cfg.epochs}", epoch=epoch + 1, loss=loss)
    final = state_digest(net)
    reporter.report("done", 1.0, f"rank {rank}: weights {final}", rank=rank, digest=final)
    return {"rank": rank, "world_size": world, "networks": int(weights.shape[0]), "start_epoch": start,
            "epochs": cfg.epochs, "history": history, "digest": final, "ema_digest": state_digest(ema.shadow),
            "data_digest": digest, "resumed": start > 0}

