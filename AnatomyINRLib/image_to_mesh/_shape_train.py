"""Training of f_θ through the frozen g_φ (eq. 1, ``_shape_loss``): resumable, DDP-ready, seeded.

Run by one process, or by ``torchrun`` (WORLD_SIZE / RANK): every rank prepares the cases
``cases[rank::world]``, gradients are averaged by DistributedDataParallel (gloo on CPU, NCCL on
CUDA), only rank 0 writes. The checkpoint is written after every epoch with the AdamW state; when the
output already holds an unfinished checkpoint of the same configuration, seed and g_φ, training
resumes from it. The random draws of epoch e on rank r are seeded by (seed, e, r), so an
interrupted and resumed run ends with the same weights as an uninterrupted one.

Checkpoint (``io.save_checkpoint``): weights ``model.*`` (the ShapeNet state, with the template's
vertices and faces) and, while unfinished, ``optim.*``; metadata kind :data:`CHECKPOINT_KIND`,
``network`` (ShapeNetConfig), ``template`` (TemplateConfig), ``structures``, ``preprocessing`` (crop,
window), ``data_range`` (training spacing and intensity range), ``training`` (ShapeTrainConfig),
seed, epoch, finished, history, the g_φ digest.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.image_to_mesh._graph import graph_laplacian
from AnatomyINRLib.image_to_mesh._shape_loss import laplacian_weight, shape_loss
from AnatomyINRLib.image_to_mesh._shape_net import ShapeNet
from AnatomyINRLib.image_to_mesh._template import icosphere
from AnatomyINRLib.image_to_mesh.config import STRUCTURES, ShapeTrainConfig
from AnatomyINRLib.nn.distributed import ddp_model, dist_context, run_epochs, state_digest  # noqa: F401 (re-exported)

CHECKPOINT_KIND = "image-to-mesh-shape"


def build_network(cfg: ShapeTrainConfig, seed: int) -> ShapeNet:
    """f_θ on the configured template, every initial weight drawn from a generator seeded by ``seed``."""
    from AnatomyINRLib.nn.init import default_init_

    template, faces = icosphere(cfg.template.subdivisions, cfg.template.radius)
    net = ShapeNet(cfg.network, template, faces)
    gen = torch.Generator().manual_seed(int(seed))
    default_init_(net, gen)
    with torch.no_grad():
        for name, p in sorted(net.named_parameters()):
            if name.endswith(".weight") and p.dim() == 3:  # ChebConv (K, C_in, C_out): its own uniform bound
                bound = 1.0 / math.sqrt(p.shape[0] * p.shape[1])
                p.uniform_(-bound, bound, generator=gen)
    return net


def _batch(cases, order, step, cfg, rng, device):
    picked = [cases[order[(step * cfg.batch_size + b) % len(order)]] for b in range(cfg.batch_size)]
    images = []
    for c in picked:  # intensity augmentation: x ← a·x + b
        a = 1.0 + rng.uniform(-cfg.intensity_jitter, cfg.intensity_jitter)
        b = rng.uniform(-cfg.intensity_jitter, cfg.intensity_jitter)
        images.append(a * c.image + b)
    img = torch.from_numpy(np.stack(images).astype(np.float32))[:, None].to(device)
    soft = torch.from_numpy(np.stack([c.soft for c in picked])).to(device)
    labels = torch.from_numpy(np.stack([c.labels for c in picked])).to(device)
    return img, soft, labels


def learning_rate(cfg: ShapeTrainConfig, step: int) -> float:
    """Cosine decay from ``learning_rate`` to ``min_learning_rate`` over all steps."""
    total = cfg.epochs * cfg.steps_per_epoch
    return cfg.min_learning_rate + 0.5 * (cfg.learning_rate - cfg.min_learning_rate) * (1 + math.cos(math.pi * step / total))


def train_epoch(model, opt, representation, laplacian, cases, cfg, seed, epoch, rank, device, reporter) -> dict:
    """One epoch (``steps_per_epoch`` AdamW steps); returns the mean loss terms."""
    rng = np.random.default_rng([seed, epoch, rank])
    torch_gen = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
    order = rng.permutation(len(cases))
    getattr(model, "module", model).set_dropout_generator(torch_gen)  # U-Net dropout masks: seeded per epoch and rank
    model.train()
    total = cfg.epochs * cfg.steps_per_epoch
    sums: dict = {}
    for step in range(cfg.steps_per_epoch):
        t = epoch * cfg.steps_per_epoch + step
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, t)
        img, soft, labels = _batch(cases, order, step, cfg, rng, device)
        meshes, logits = model(img)
        loss, terms = shape_loss(meshes, logits, representation, soft, labels, laplacian, alpha=cfg.alpha,
                                 beta=laplacian_weight(t, total, cfg.beta_start, cfg.beta_end), gamma=cfg.gamma, tau=cfg.tau)
        opt.zero_grad()
        loss.backward()
        opt.step()
        terms["loss"] = float(loss.detach())
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value
        reporter.report("train", (t + 1) / total, f"epoch {epoch + 1}/{cfg.epochs} step {step + 1}/{cfg.steps_per_epoch}",
                        loss=terms["loss"], bce=terms["bce"])
    return {k: v / cfg.steps_per_epoch for k, v in sums.items()}


def checkpoint_tensors(net: ShapeNet, opt) -> dict:
    """Weights as ``model.<name>``; AdamW moments and step counters as ``optim.<index>.<key>`` (if given)."""
    tensors = {f"model.{k}": v for k, v in net.state_dict().items()}
    if opt is not None:
        for idx, state in opt.state_dict()["state"].items():
            for key, value in state.items():
                tensors[f"optim.{idx}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors


def checkpoint_metadata(cfg: ShapeTrainConfig, seed: int, epoch: int, history: list, extra: dict) -> dict:
    return {"kind": CHECKPOINT_KIND, "network": cfg.network.to_dict(), "template": cfg.template.to_dict(),
            "structures": {str(k): v for k, v in STRUCTURES.items() if k <= cfg.network.n_structures},
            "preprocessing": {"crop_half_mm": cfg.crop_half_mm, "window_level": cfg.window_level,
                              "window_width": cfg.window_width},
            "training": cfg.to_dict(), "seed": int(seed), "epoch": int(epoch), "finished": epoch >= cfg.epochs,
            "history": history, **extra}


def restore(net: ShapeNet, opt, tensors: dict) -> None:
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


def resume_point(path: Path, cfg: ShapeTrainConfig, seed: int, g_digest: str):
    """(tensors, metadata) of an unfinished checkpoint at ``path`` to resume, or None when there is none.

    Raises:
        InputError: the file is a checkpoint of another kind, configuration, seed or g_φ.
    """
    from AnatomyINRLib.io.checkpoint import load_checkpoint

    if not path.exists():
        return None
    tensors, meta = load_checkpoint(path)
    same = (meta.get("kind") == CHECKPOINT_KIND and meta.get("training") == cfg.to_dict()
            and meta.get("seed") == seed and meta.get("representation_digest") == g_digest)
    if not same:
        raise InputError(f"output {str(path)!r}: holds a checkpoint of another configuration, seed or g_φ; "
                         "remove it or choose another --output to start a new training")
    return tensors, meta


def label_placement(cases: list, world: int, template_radius: float) -> torch.Tensor:
    """(K, 4) mean (centroid, radius / template radius) of every structure's soft target over all ranks' cases.

    Centroid and volume are taken on g_φ's grid over [-1, 1]³ (normalised units); the radius is the
    equivalent sphere's, (3V / 4π)^(1/3).
    """
    from AnatomyINRLib.image_to_mesh._shape_data import cube_points

    g = cases[0].soft.shape[-1]
    pts = cube_points(g)
    cell = (2.0 / (g - 1)) ** 3
    sums = np.zeros((cases[0].soft.shape[0], 5))  # Σ centroid (3), Σ radius, count
    for c in cases:
        for k, s in enumerate(c.soft):
            w = s.reshape(-1).astype(np.float64)
            if w.sum() > 0:
                sums[k, :3] += (pts * w[:, None]).sum(axis=0) / w.sum()
                sums[k, 3] += (3.0 * w.sum() * cell / (4.0 * math.pi)) ** (1.0 / 3.0)
                sums[k, 4] += 1
    if world > 1:
        import torch.distributed as dist

        t = torch.from_numpy(sums)
        dist.all_reduce(t)
        sums = t.numpy()
    out = np.tile([0.0, 0.0, 0.0, 1.0], (len(sums), 1))
    seen = sums[:, 4] > 0
    out[seen, :3] = sums[seen, :3] / sums[seen, 4:5]
    out[seen, 3] = sums[seen, 3] / sums[seen, 4] / template_radius
    return torch.tensor(out, dtype=torch.float32)


def gather_range(shard_range: dict, world: int) -> dict:
    """The data range over every rank's shard (min of minima, max of maxima, sum of counts)."""
    if world <= 1:
        return shard_range
    import torch.distributed as dist

    parts: list = [None] * world
    dist.all_gather_object(parts, shard_range)
    out = {}
    for key in parts[0]:
        values = [p[key] for p in parts]
        out[key] = sum(values) if key == "n_cases" else (min(values) if key.endswith("_min") else max(values))
    return out


def _load_shard(data, cfg: ShapeTrainConfig, grid_size: int, rank: int, world: int, reporter) -> tuple[list, list]:
    """(names of all cases, this rank's prepared cases) from a data folder or a list of (image, labels) pairs."""
    from AnatomyINRLib.image_to_mesh._shape_data import find_cases, prepare_case, read_case

    if isinstance(data, (str, os.PathLike)):
        found = find_cases(data)
        names = [f[0] for f in found]
        load = lambda i: read_case(*found[i][1:])  # noqa: E731
    else:
        pairs = list(data)
        names = [f"case_{i}" for i in range(len(pairs))]
        load = lambda i: pairs[i]  # noqa: E731
    if len(names) < world:
        raise InputError(f"data: {len(names)} case(s) cannot be shared by {world} processes; give at least one per process")
    mine = list(range(len(names)))[rank::world]
    cases = []
    for j, i in enumerate(mine):
        image, labels = load(i)
        try:
            cases.append(prepare_case(image, labels, cfg, grid_size))
        except InputError as exc:
            raise InputError(f"data case {names[i]!r}: {exc}") from None
        reporter.report("load", (j + 1) / len(mine), f"rank {rank}: case {j + 1}/{len(mine)}")
    return names, cases


def run_training(data, cfg: ShapeTrainConfig, representation, g_digest: str, seed: int, device: torch.device,
                 output: "str | Path", reporter) -> dict:
    """Train f_θ on ``data`` into the checkpoint ``output`` (module docstring).

    Returns:
        dict: rank, world_size, cases, start_epoch, epochs, history, data_range, digest, resumed.
    """
    from AnatomyINRLib.image_to_mesh._shape_data import data_range
    from AnatomyINRLib.io.checkpoint import save_checkpoint

    path = Path(output)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    rank, world = dist_context(device)
    if cfg.distance == "mesh":  # D from the mesh itself (_mesh_distance); no g_φ involved
        from AnatomyINRLib.image_to_mesh._mesh_distance import MeshGridDistance

        _, faces = icosphere(cfg.template.subdivisions, cfg.template.radius)
        representation, grid_size = MeshGridDistance(torch.as_tensor(faces), cfg.target_grid), cfg.target_grid
    else:
        grid_size = representation.cfg.grid_size
    representation = representation.to(device).eval()
    for p in representation.parameters():
        p.requires_grad_(False)
    if representation.n_vertices != 10 * 4 ** cfg.template.subdivisions + 2:
        raise InputError(f"representation: made for {representation.n_vertices} vertices, the template has "
                         f"{10 * 4 ** cfg.template.subdivisions + 2}")
    names, shard = _load_shard(data, cfg, grid_size, rank, world, reporter)
    drange = gather_range(data_range(shard), world)
    net = build_network(cfg, seed).to(device)
    if cfg.data_placement:  # identical on every rank (all-reduced); restored from the checkpoint when resuming
        net.placement.copy_(label_placement(shard, world, cfg.template.radius))
    laplacian = graph_laplacian(net.faces.cpu().numpy(), net.template.shape[0], cfg.laplacian).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    found = resume_point(path, cfg, seed, g_digest)
    start, history = 0, []
    if found is not None:
        restore(net, opt, {k: v.to(device) for k, v in found[0].items()})
        start, history = int(found[1]["epoch"]), list(found[1].get("history", []))
    model = ddp_model(net, world, device)
    extra = {"cases": names, "world_size": world, "data_range": drange, "representation_digest": g_digest}

    def save(done_epochs: int, last: bool) -> None:  # the finished checkpoint carries no optimiser state (smaller)
        save_checkpoint(path, checkpoint_tensors(net, None if last else opt),
                        checkpoint_metadata(cfg, seed, done_epochs, history, extra))

    run_epochs(lambda epoch: train_epoch(model, opt, representation, laplacian, shard, cfg, seed, epoch, rank, device,
                                         reporter),
               save, start=start, epochs=cfg.epochs, history=history, rank=rank, world=world, reporter=reporter)
    digest = state_digest(net)
    reporter.report("done", 1.0, f"rank {rank}: weights {digest}", rank=rank, digest=digest)
    return {"rank": rank, "world_size": world, "cases": len(names), "start_epoch": start, "epochs": cfg.epochs,
            "history": history, "data_range": drange, "digest": digest, "resumed": start > 0}
