"""Public API of tree synthesis (TrIND, Sinha et al., MICCAI 2024).

    fits = fit_trees(meshes, preset="fast", seed=0)       # stage 1: one occupancy INR per tree
    # stage 2 (weight-space diffusion): train_model, sample_trees (separate block below)

Stage 1 works in each tree's own normalised frame (bounding box centred and
scaled into [−0.9, 0.9]³); every field maps RAS mm in and returns −logit
(negative inside, 0 on the occupancy-0.5 surface), so ``anatomy-inr extract``
meshes a saved tree INR like any SDF.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Callable, Optional, Sequence

import numpy as np

from AnatomyINRLib.core.config import check_seed
from AnatomyINRLib.core.errors import InputError, OutputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.types import CenterlineGraph, TriangleMesh
from AnatomyINRLib.nn.distributed import dist_context
from AnatomyINRLib.nn.field import NeuralField
from AnatomyINRLib.trees.config import FIT_PRESETS, TreeFitConfig, fit_preset

# ----------------------------------------------------------------------------- stage 1: per-tree INR fitting


@dataclass
class TreeFitResult:
    """Result of :func:`fit_trees`.

    Attributes:
        fields: One fitted field per fitted tree (RAS mm → −logit, negative inside).
        names: The name of each fitted tree (same order as ``fields``).
        metadata: Per fitted tree, what to store in its INR file (``io.save_inr``):
            ``field_kind``, ``points_bounds_mm`` (the mesh box: what extract meshes), fit numbers.
        skipped: Name → reason for every input that could not be fitted (only with ``skip_bad``).
        config: The configuration used.
        report: JSON-ready summary: per-tree iterations, seconds, loss, held-out IoU; totals; trees/minute.
    """

    fields: list[NeuralField]
    names: list[str]
    metadata: list[dict]
    skipped: dict[str, str]
    config: TreeFitConfig
    report: dict


def _resolve(preset: str, config: Optional[TreeFitConfig]) -> TreeFitConfig:
    if config is not None:
        if not isinstance(config, TreeFitConfig):
            raise InputError(f"config: expected a TreeFitConfig, got {type(config).__name__}")
        config.validate()
        return config
    if preset not in FIT_PRESETS:
        raise InputError(f"preset: expected one of {sorted(FIT_PRESETS)}, got {preset!r}")
    return fit_preset(preset)


def fit_trees(
    meshes: Sequence[TriangleMesh],
    *,
    names: Optional[Sequence[str]] = None,
    preset: str = "fast",
    config: Optional[TreeFitConfig] = None,
    skip_bad: bool = False,
    seed: int = 0,
    device: str = "auto",
    progress: "ProgressReporter | Callable | None" = None,
    should_cancel: Optional[Callable[[], bool]] = None,
) -> TreeFitResult:
    """Fit one occupancy INR per closed tree mesh (TrIND stage 1, eq. 1).

    Under ``torchrun`` (WORLD_SIZE > 1) every process is given the same meshes; rank r fits
    meshes r, r + W, …, all warm-started from rank 0's first fit (one template, so one basin for the
    whole data set, and each tree gets the weights a single process gives it), and every rank returns
    the same merged result in input order (``trees._shard``). Ranks given different meshes all refuse.
    With ``frame`` "set" (the fast preset) every tree is fitted in one frame, the union of all the
    given meshes' boxes (on every rank the whole call's, not its share's), so that stage 2 can map
    every network, and every sample, back to mm the same way. With ``share`` "biases" (the shared
    preset) the trees share one set of weight matrices and are fitted jointly in one process.
    A script should call ``AnatomyINRLib.nn.distributed.leave_group()`` before its processes exit (the
    CLI does): a rank leaving while a peer is still in the last exchange can make gloo abort that peer.

    Args:
        meshes: Closed (watertight, manifold) triangle meshes in RAS mm.
        names: One name per mesh for reports and messages (default "tree-000", ...).
        preset: "paper" (10k points, 6000 full-batch steps), "fast" (CPU: minibatches,
            plateau stop, warm start from the first tree) or "tiny"; ignored if ``config`` is given.
        config: Full configuration.
        skip_bad: Skip meshes that cannot be fitted (open, non-manifold) and list them in
            ``skipped`` instead of raising.
        seed: Mesh i uses seed + i for its initial weights and points (same seed, same result on one device
            whatever the torchrun world size, with ``stack`` 1).
        device: "auto", "cpu", "cuda", "cuda:N" or "mps" (under torchrun, "cuda" is cuda:LOCAL_RANK).
        progress: ProgressReporter or callback receiving Progress events.
        should_cancel: Polled every iteration; True raises Cancelled.

    Returns:
        TreeFitResult (``report["world_size"]``: number of processes that fitted).

    Raises:
        InputError: no meshes, names of the wrong length, a mesh that is not closed
            (unless ``skip_bad``; then only when none is left), bad preset or config, torchrun
            ranks given different meshes, share "biases" under torchrun.
        FitError: an optimisation diverged, or collapsed to an empty field even from a cold start
            (under torchrun: on any rank).
        Cancelled: cancelled by the caller.
    """
    from AnatomyINRLib.trees import _fit_set, _shard

    reporter = ProgressReporter.wrap(progress, should_cancel)
    seed = check_seed(seed)
    cfg = _resolve(preset, config)
    meshes = list(meshes)
    if not meshes:
        raise InputError("meshes: expected at least one tree mesh, got none")
    names = [f"tree-{i:03d}" for i in range(len(meshes))] if names is None else [str(n) for n in names]
    if len(names) != len(meshes):
        raise InputError(f"names: expected {len(meshes)} names, got {len(names)}")
    dev = _device(device)
    rank, size = dist_context(dev)
    start = time.perf_counter()
    if size > 1 and cfg.share == "biases":
        raise InputError(f"share 'biases': the joint fit runs in one process, got a torchrun world of {size}; "
                         "run it without torchrun (or use share 'none')")
    if size > 1:
        _shard.check_inputs_agree(meshes, names)

    share = _shard.TemplateShare(rank) if size > 1 and cfg.warm_start else None

    def fit_shard(indices: list) -> dict:
        return _fit_set.fit_shard(meshes, names, indices, cfg, seed, skip_bad, dev, reporter, share)

    parts = _shard.run_sharded(fit_shard, len(meshes), rank, size) if size > 1 else [fit_shard(list(range(len(meshes))))]
    merged = sorted((row for part in parts for row in part["trees"]), key=lambda row: row["index"])
    skipped = {name: why for part in parts for name, why in part["skipped"].items()}
    if not merged:
        raise InputError("meshes: none could be fitted" + (f" ({'; '.join(skipped.values())})" if skipped else ""))
    total = time.perf_counter() - start
    report = _report(merged, skipped, cfg, seed, str(dev), parts, total, size)
    return TreeFitResult([r["field"] for r in merged], [r["name"] for r in merged], [r["metadata"] for r in merged],
                         skipped, cfg, report)


def _device(device: str):
    """The torch device; under torchrun a bare "cuda" means this process's GPU (cuda:LOCAL_RANK)."""
    import os

    import torch

    from AnatomyINRLib.core.device import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return dev


def _report(merged, skipped, cfg: TreeFitConfig, seed: int, device: str, parts, total: float, size: int) -> dict:
    ious = [r["row"]["heldout_iou"] for r in merged if r["row"]["heldout_iou"] is not None]
    return {"trees": len(merged), "skipped": dict(skipped), "seed": seed, "device": device, "world_size": size,
            "parameters": int(sum(p.numel() for p in merged[0]["field"].network.parameters())),
            "prepare_seconds": round(max(p["prepare_seconds"] for p in parts), 3),
            "rank_seconds": [round(p["seconds"], 3) for p in parts], "total_seconds": round(total, 3),
            "trees_per_minute": round(60.0 * len(merged) / max(total, 1e-9), 3),
            "heldout_iou_median": float(np.median(ious)) if ious else None,
            "heldout_iou_min": float(np.min(ious)) if ious else None,
            "per_tree": [r["row"] for r in merged], "config": cfg.to_dict()}

# ----------------------------------------------------------------------------- end of stage 1


# ============================================================================ stage 2: weight-space diffusion


@dataclass
class DiffusionTrainResult:
    """A trained (or resumed) diffusion checkpoint.

    Attributes:
        checkpoint: path of the ``.safetensors`` checkpoint (+ ``.json`` sidecar).
        report: config, seed, device, networks, epochs, per-epoch losses, weight digests, seconds.
    """

    checkpoint: str
    report: dict


@dataclass
class SampledTrees:
    """Trees sampled from a diffusion checkpoint.

    Attributes:
        weights: (N, P) float32 sampled weight vectors in the checkpoint's layout.
        fields: N NeuralFields (RAS mm, negative inside), or [] for a checkpoint of bare arrays or of
            the centreline model.
        meshes: N TriangleMeshes (None where a sample has no surface), or [] without ``spacing_mm``.
        report: checkpoint, seed, sampler settings, per-sample mesh sizes, seconds.
        graphs: N CenterlineGraphs (RAS mm) from a centreline-model checkpoint, else [].
    """

    weights: np.ndarray
    fields: list
    meshes: list
    report: dict
    graphs: list = dataclass_field(default_factory=list)


def train_model(weights, layout, output, *, inr_info: Optional[dict] = None, config=None, preset: str = "cpu",
                seed: int = 0, device: str = "cpu", progress=None,
                should_cancel: Optional[Callable[[], bool]] = None) -> DiffusionTrainResult:
    """Train the weight-space diffusion model (TrIND §2 Stage 2) on N INRs of one architecture.

    Or the centreline model: given N trees' centrelines (``weights`` a list of
    :class:`~AnatomyINRLib.core.types.CenterlineGraph`, ``layout`` None), one token per branch
    (``trees._centerline_tokens``, up to 12 bifurcations; use ``preset="centerline"``).

    Args:
        weights: (N, P) float32, row i = INR i's ``state_dict`` flattened in ``layout`` order; or N
            CenterlineGraphs (RAS mm).
        layout: [(parameter name, shape), ...] of the INR's state dict; None for centrelines.
        output: ``.safetensors`` checkpoint (+ ``.json`` sidecar), written after every
            ``checkpoint_every`` epochs; a checkpoint of the same config, seed and data there is resumed.
        inr_info: the INR architecture and normalisation (``trees._inr_sets.stack_fields``), kept in the
            checkpoint so samples become fields.
        config / preset: :class:`DiffusionConfig` or a preset name ("tiny", "cpu", "hull", "shared", "paper";
            "centerline" for centrelines, which need its token size).
        seed: initial weights, batch order, timesteps and noise.
        device: "cpu", "cuda", "auto"...; under ``torchrun`` every process trains on its share of each
            batch (DistributedDataParallel) and only rank 0 writes.
        progress / should_cancel: reporter or callback; cancel check (after every step).

    Raises:
        InputError: bad weights, layout or config; a checkpoint of another layout, config, seed or data
            at ``output``; torchrun ranks holding different data.
        OutputError: ``output`` is not a ``.safetensors`` path or cannot be written.
    """
    from AnatomyINRLib.core.device import resolve_device
    from AnatomyINRLib.io.formats import file_extension
    from AnatomyINRLib.trees._diffusion_train import run_training
    from AnatomyINRLib.trees.config import DiffusionConfig, diffusion_preset

    cfg = diffusion_preset(preset) if config is None else config
    if not isinstance(cfg, DiffusionConfig):
        raise InputError(f"config: expected a DiffusionConfig, got {type(cfg).__name__}")
    cfg.validate()
    if file_extension(output) != ".safetensors":
        raise OutputError(f"output {str(output)!r}: expected a .safetensors checkpoint")
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:
        import os

        import torch

        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))  # one GPU per torchrun process
    if layout is None:  # centrelines: the branch tokens and their normalisation are the INR info
        from AnatomyINRLib.trees._centerline_tokens import centerline_training_set

        graphs = list(weights)
        if not graphs or not all(isinstance(g, CenterlineGraph) for g in graphs):
            raise InputError("weights: with layout None, expected a non-empty list of CenterlineGraph trees")
        weights, layout, inr_info = centerline_training_set(graphs, [f"tree {i}" for i in range(len(graphs))],
                                                            cfg.token_size)
    reporter = ProgressReporter.wrap(progress, should_cancel)
    t0 = time.perf_counter()
    info = run_training(weights, layout, cfg, int(seed), dev, output, reporter, inr_info)
    report = {"config": cfg.to_dict(), "seed": int(seed), "device": str(dev), **info,
              "seconds": round(time.perf_counter() - t0, 2)}
    return DiffusionTrainResult(str(output), report)


def _mixture_report(model, temperature: float) -> dict:
    """Head, temperature and, for the "hull" head, how many training networks each sample blends."""
    if model.mixture is None:
        return {"head": model.config.head}
    effective = 1.0 / np.sum(model.mixture.astype(np.float64) ** 2, axis=1)  # 1 = one training network
    return {"head": "hull", "temperature": temperature,
            "blended_networks": [round(float(e), 2) for e in effective],
            "largest_weight": [round(float(w), 3) for w in model.mixture.max(axis=1)]}


def piece_share(areas: list) -> float:
    """The largest piece's share of the surface area, from ``extract_mesh(pieces=)``'s areas (mm²,
    largest first), rounded down to 1e-4 and below 1 whenever there is more than one piece."""
    total = float(sum(areas))
    if total <= 0:
        return 1.0 if len(areas) <= 1 else 0.9999
    share = math.floor(1e4 * areas[0] / total) / 1e4
    return min(share, 0.9999) if len(areas) > 1 else share


def mesh_entry(mesh, areas: list) -> dict:
    """One sampled mesh's entry in ``sample_trees``' report: its size and its pieces (areas, mm²)."""
    return {"vertices": mesh.n_vertices, "faces": mesh.n_faces, "pieces": len(areas),
            "largest_area_fraction": piece_share(areas)}


def _mesh_samples(fields: list, spacing_mm: float, box, keep_all: bool, reporter) -> tuple:
    """(meshes, report entries) of sampled fields, meshed as ``anatomy-inr extract`` meshes an INR file.

    A sampled surface's pieces are counted before any is dropped, so a tree that came out in pieces
    says so: ``pieces`` and ``largest_area_fraction`` (:func:`piece_share`). ``box``: (2, 3) RAS mm
    or None (the network's frame); ``spacing_mm``: marching-cubes spacing in mm.
    """
    from AnatomyINRLib.meshing import MeshingConfig
    from AnatomyINRLib.surface.api import extract_mesh  # what 'anatomy-inr extract' meshes an INR file with

    config = MeshingConfig(spacing_mm=float(spacing_mm), largest_component=not keep_all)
    meshes, entries = [], []
    for i, field in enumerate(fields):
        areas: list = []
        try:
            mesh = extract_mesh(field, config=config, points=box, pieces=areas)
        except InputError:  # no surface in the box: an empty sample is a result, not an error
            mesh = None
        meshes.append(mesh)
        entries.append(None if mesh is None else mesh_entry(mesh, areas))
        reporter.report("mesh", (i + 1) / len(fields), f"meshed tree {i + 1}/{len(fields)}")
    return meshes, entries


def _check_sample_arguments(count, spacing_mm, keep_all_components, keep_apart) -> None:
    """InputError naming the first of :func:`sample_trees`' arguments that is not what it expects."""
    if isinstance(count, bool) or int(count) != count or count < 1:
        raise InputError(f"count: expected a positive number of trees, got {count!r}")
    if spacing_mm is not None and not (np.isfinite(spacing_mm) and spacing_mm > 0):
        raise InputError(f"spacing_mm: expected a positive number of mm, got {spacing_mm!r}")
    if not isinstance(keep_all_components, bool):
        raise InputError(f"keep_all_components: expected True or False, got {keep_all_components!r}")
    if keep_all_components and spacing_mm is None:
        raise InputError("keep_all_components: needs spacing_mm (without it no tree is meshed)")
    if keep_apart is not None and (isinstance(keep_apart, bool) or not np.isfinite(keep_apart) or keep_apart < 0):
        raise InputError(f"keep_apart: expected a strength >= 0 (0 turns the guidance off), got {keep_apart!r}")


def sample_trees(checkpoint, count: int, *, spacing_mm: Optional[float] = None, sample_steps: Optional[int] = None,
                 eta: Optional[float] = None, temperature: Optional[float] = None, seed: int = 0, device: str = "cpu",
                 keep_all_components: bool = False, keep_apart: Optional[float] = None, progress=None,
                 should_cancel: Optional[Callable[[], bool]] = None) -> SampledTrees:
    """Sample ``count`` new INRs by DDIM from a checkpoint of :func:`train_model`, and mesh them.

    A checkpoint of the centreline model (trained on ``trees._centerline_tokens.centerline_training_set``)
    gives centrelines instead (``graphs``; no fields), each one connected tree, meshed as the exact
    union of capsules around it.

    Args:
        checkpoint: ``.safetensors`` diffusion checkpoint.
        count: number of trees (> 0).
        spacing_mm: marching-cubes spacing in mm for the meshes (None: no meshes).
        sample_steps / eta: DDIM steps and η (default: the checkpoint's config).
        temperature: of a "hull" head checkpoint (default: its config's; see ``DiffusionConfig``).
        seed: the initial noise (and η > 0 noise); the same seed gives the same trees.
        keep_all_components: keep every connected piece of a sampled surface; by default only the
            largest (by area) is kept. Either way the report gives, per mesh, its ``pieces`` and the
            ``largest_area_fraction`` of its surface, and ``in_pieces`` counts the meshes of more than one.
        keep_apart: centreline checkpoints only: strength of the guidance that keeps a tree's branches
            from running through each other (``trees._centerline_guidance``; default 4, 0 off). The
            report gives ``overlapping_branch_pairs`` per tree.

    Raises:
        InputError: count or spacing ≤ 0, not a diffusion checkpoint, or one whose weight layout is not
            its INR architecture's (checked before sampling).
    """
    import torch

    from AnatomyINRLib.core.device import resolve_device
    from AnatomyINRLib.trees._diffusion_model import load_model
    from AnatomyINRLib.trees._centerline_guidance import KEEP_APART, keep_apart_guide, overlapping_branch_pairs
    from AnatomyINRLib.trees._centerline_tokens import (REPRESENTATION, centerline_meshes, check_centerline_info,
                                                         decode_tokens)
    from AnatomyINRLib.trees._inr_sets import check_inr_layout, field_from_vector

    _check_sample_arguments(count, spacing_mm, keep_all_components, keep_apart)
    reporter = ProgressReporter.wrap(progress, should_cancel)
    t0 = time.perf_counter()
    dev = resolve_device(device)
    model = load_model(checkpoint, dev)
    inr = model.meta.get("inr") or {}
    centerline = inr.get("representation") == REPRESENTATION
    if centerline:
        check_centerline_info(inr, model.layout, f"checkpoint {str(checkpoint)!r}")
    elif "network" in inr:
        check_inr_layout(model.layout, inr, f"checkpoint {str(checkpoint)!r}")
    if keep_apart and not centerline:
        raise InputError(f"keep_apart: applies to centreline-model checkpoints only, {str(checkpoint)!r} is not one")
    keep_apart = (KEEP_APART if keep_apart is None else float(keep_apart)) if centerline else None
    temperature = model.sampling_temperature(temperature)
    gen = torch.Generator().manual_seed(int(seed))
    weights = model.sample(int(count), gen, sample_steps=sample_steps, eta=eta, temperature=temperature,
                           on_step=lambda i, n: reporter.report("sample", i / n, f"denoising step {i}/{n}"),
                           guide=keep_apart_guide(inr, keep_apart) if keep_apart else None)
    overlaps = None
    if centerline:  # connected by construction; the exact capsule union is meshed
        graphs, fields = [decode_tokens(w, inr) for w in weights], []
        overlaps = [overlapping_branch_pairs(g) for g in graphs]
        meshes, sizes = centerline_meshes(graphs, spacing_mm, reporter) if spacing_mm else ([], [])
        keep_all_components = True  # nothing is dropped from a capsule union: the report says "all"
    else:
        graphs = []
        fields = [field_from_vector(w, model.layout, inr, device=dev) for w in weights] if "network" in inr else []
        # the box the training trees occupy (their files' points_bounds_mm), else the network's whole frame; the
        # surface is closed off by that box (or by the frame, when it reaches the box), so every mesh is watertight
        box = np.asarray(inr["points_bounds_mm"], dtype=np.float64) if "points_bounds_mm" in inr else None
        meshes, sizes = (_mesh_samples(fields, spacing_mm, box, keep_all_components, reporter) if spacing_mm
                         else ([], []))
    report = {"checkpoint": str(checkpoint), "count": int(count), "seed": int(seed), "device": str(dev),
              "sampler": "ddim", "sample_steps": sample_steps or model.config.sample_steps,
              "eta": model.config.eta if eta is None else float(eta), "trained_epochs": model.meta.get("epoch"),
              **_mixture_report(model, temperature), "keep_apart": keep_apart,
              "overlapping_branch_pairs": overlaps,
              "inr": {k: v for k, v in inr.items() if k != "names"},
              "spacing_mm": spacing_mm, "meshes": sizes, "empty": sum(m is None for m in meshes),
              "components": None if spacing_mm is None else "all" if keep_all_components else "largest",
              "in_pieces": None if spacing_mm is None else sum(1 for z in sizes if z is not None and z["pieces"] > 1),
              "seconds": round(time.perf_counter() - t0, 2)}
    return SampledTrees(weights, fields, meshes, report, graphs)

