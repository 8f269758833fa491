"""Tree synthesis entry points (TrIND): fit per-tree INRs, train the weight-space diffusion, sample trees."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from AnatomyINRLib.core.errors import InputError, OutputError
from AnatomyINRLib.core.progress import ProgressReporter

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
        fields: N NeuralFields (RAS mm, negative inside), or [] for a checkpoint of bare arrays.
        meshes: N TriangleMeshes (None where a sample has no surface), or [] without ``spacing_mm``.
        report: checkpoint, seed, sampler settings, per-sample mesh sizes, seconds.
    """

    weights: np.ndarray
    fields: list
    meshes: list
    report: dict


def train_model(weights, layout, output, *, inr_info: Optional[dict] = None, config=None, preset: str = "cpu",
                seed: int = 0, device: str = "cpu", progress=None,
                should_cancel: Optional[Callable[[], bool]] = None) -> DiffusionTrainResult:
    """Train the weight-space diffusion model (TrIND §2 Stage 2) on N INRs of one architecture.

    Args:
        weights: (N, P) float32, row i = INR i's ``state_dict`` flattened in ``layout`` order.
        layout: [(parameter name, shape), ...] of the INR's state dict.
        output: ``.safetensors`` checkpoint (+ ``.json`` sidecar), written after every
            ``checkpoint_every`` epochs; a checkpoint of the same config, seed and data there is resumed.
        inr_info: the INR architecture and normalisation (``trees._inr_sets.stack_fields``), kept in the
            checkpoint so samples become fields.
        config / preset: :class:`DiffusionConfig` or a preset name ("tiny", "cpu", "paper").
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
    reporter = ProgressReporter.wrap(progress, should_cancel)
    t0 = time.perf_counter()
    info = run_training(weights, layout, cfg, int(seed), dev, output, reporter, inr_info)
    report = {"config": cfg.to_dict(), "seed": int(seed), "device": str(dev), **info,
              "seconds": round(time.perf_counter() - t0, 2)}
    return DiffusionTrainResult(str(output), report)


def sample_trees(checkpoint, count: int, *, spacing_mm: Optional[float] = None, sample_steps: Optional[int] = None,
                 eta: Optional[float] = None, seed: int = 0, device: str = "cpu", progress=None,
                 should_cancel: Optional[Callable[[], bool]] = None) -> SampledTrees:
    """Sample ``count`` new INRs by DDIM from a checkpoint of :func:`train_model`, and mesh them.

    Args:
        checkpoint: ``.safetensors`` diffusion checkpoint.
        count: number of trees (> 0).
        spacing_mm: marching-cubes spacing in mm for the meshes (None: no meshes).
        sample_steps / eta: DDIM steps and η (default: the checkpoint's config).
        seed: the initial noise (and η > 0 noise); the same seed gives the same trees.

    Raises:
        InputError: count or spacing ≤ 0, not a diffusion checkpoint.
    """
    import torch

    from AnatomyINRLib.core.device import resolve_device
    from AnatomyINRLib.meshing import MeshingConfig
    from AnatomyINRLib.surface.api import extract_mesh  # what 'anatomy-inr extract' meshes an INR file with
    from AnatomyINRLib.trees._diffusion_model import load_model
    from AnatomyINRLib.trees._inr_sets import field_from_vector

    if isinstance(count, bool) or int(count) != count or count < 1:
        raise InputError(f"count: expected a positive number of trees, got {count!r}")
    if spacing_mm is not None and not (np.isfinite(spacing_mm) and spacing_mm > 0):
        raise InputError(f"spacing_mm: expected a positive number of mm, got {spacing_mm!r}")
    reporter = ProgressReporter.wrap(progress, should_cancel)
    t0 = time.perf_counter()
    dev = resolve_device(device)
    model = load_model(checkpoint, dev)
    gen = torch.Generator().manual_seed(int(seed))
    weights = model.sample(int(count), gen, sample_steps=sample_steps, eta=eta,
                           on_step=lambda i, n: reporter.report("sample", i / n, f"denoising step {i}/{n}"))
    inr = model.meta.get("inr") or {}
    fields = [field_from_vector(w, model.layout, inr, device=dev) for w in weights] if "network" in inr else []
    meshes, sizes = [], []
    # the box the training trees occupy (their files' points_bounds_mm), else the network's whole frame;
    # the surface is closed off by that box, so every mesh is watertight
    box = np.asarray(inr["points_bounds_mm"], dtype=np.float64) if "points_bounds_mm" in inr else None
    for i, field in enumerate(fields if spacing_mm is not None else []):
        try:
            mesh = extract_mesh(field, config=MeshingConfig(spacing_mm=float(spacing_mm)), points=box)
        except InputError:  # no surface in the box: an empty sample is a result, not an error
            mesh = None
        meshes.append(mesh)
        sizes.append(None if mesh is None else {"vertices": mesh.n_vertices, "faces": mesh.n_faces})
        reporter.report("mesh", (i + 1) / len(fields), f"meshed tree {i + 1}/{len(fields)}")
    report = {"checkpoint": str(checkpoint), "count": int(count), "seed": int(seed), "device": str(dev),
              "sampler": "ddim", "sample_steps": sample_steps or model.config.sample_steps,
              "eta": model.config.eta if eta is None else float(eta), "trained_epochs": model.meta.get("epoch"),
              "inr": {k: v for k, v in inr.items() if k != "names"},
              "spacing_mm": spacing_mm, "meshes": sizes, "empty": sum(m is None for m in meshes),
              "seconds": round(time.perf_counter() - t0, 2)}
    return SampledTrees(weights, fields, meshes, report)

