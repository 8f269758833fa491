"""Entry functions of shape from image (ImplicitMeshNet).

So far: :func:`pretrain_representation`, the first training stage of the paper (Appendix B.1):
the mesh → SDF network g_φ learns, on randomly deformed icospheres, to turn any mesh with the
template's topology into its signed distance on a grid. The shape network f_θ, the joint
training and prediction build on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from AnatomyINRLib.core.config import SEED_MAX, check_seed
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.image_to_mesh.config import PretrainConfig, pretrain_preset


@dataclass
class RepresentationResult:
    """A pre-trained g_φ.

    Attributes:
        network: The mesh → SDF network (eval mode; input (B, V, 3) vertices in [-1, 1]³, output
            a list of SDF grids coarse → fine, normalised units, negative inside).
        tensors: Its weights (and template faces) for ``io.save_checkpoint``.
        metadata: Its configuration, template size and this report, for ``io.save_checkpoint``.
        report: Config, seed, timings, per-epoch loss, zero-level errors on held-out shapes.
    """

    network: torch.nn.Module
    tensors: dict
    metadata: dict
    report: dict


def pretrain_representation(*, config: Optional[PretrainConfig] = None, preset: str = "cpu", seed: int = 0,
                            device: str = "cpu", progress=None,
                            should_cancel: Optional[Callable[[], bool]] = None) -> RepresentationResult:
    """Pre-train g_φ on deformed icospheres against exact CPU signed distances (paper Appendix B.1).

    Args:
        config / preset: A :class:`PretrainConfig`, or a name from ``PRETRAIN_PRESETS`` ("test", "cpu").
        seed: Seeds the shapes (training shapes (seed, 0 … n−1), held-out (seed, n …)), the
            initial weights and the batch order.
        device: "cpu", "cuda", "mps" or "auto" (the exact SDFs are always computed on the CPU).
        progress / should_cancel: Progress callback or reporter (stages "shapes", "validation
            shapes", "pretrain", "evaluate"); cancel check at every progress event.

    Returns:
        :class:`RepresentationResult`.

    Raises:
        InputError: a bad config, preset, seed or device.
        Cancelled: when ``should_cancel`` returns True.
    """
    from AnatomyINRLib.core.device import resolve_device, restore_ieee_denormals
    from AnatomyINRLib.image_to_mesh import _pretrain
    from AnatomyINRLib.image_to_mesh._representation import MeshToSDF, representation_state
    from AnatomyINRLib.image_to_mesh._template import icosphere

    cfg = pretrain_preset(preset) if config is None else config
    if not isinstance(cfg, PretrainConfig):
        raise InputError(f"config: expected a PretrainConfig, got {type(cfg).__name__}")
    cfg.validate()
    seed = check_seed(seed)
    dev = resolve_device(device)
    reporter = ProgressReporter.wrap(progress, should_cancel)
    restore_ieee_denormals()  # the exact SDF uses scipy's KD-tree, which crashes under flush-to-zero
    t0 = time.perf_counter()
    template, faces = icosphere(cfg.template.subdivisions, cfg.template.radius)
    verts, sdfs = _pretrain.shape_set(template, faces, cfg, seed, 0, cfg.n_shapes, reporter, "shapes")
    val = _pretrain.shape_set(template, faces, cfg, seed, cfg.n_shapes, cfg.n_validation, reporter,
                              "validation shapes") if cfg.n_validation else None
    t_data = time.perf_counter() - t0
    # Seeded weights and dropout masks from explicit generators (torch's global RNG is never touched).
    model = MeshToSDF(cfg.representation, faces, generator=torch.Generator().manual_seed(seed)).to(dev)
    model.set_dropout_generator(torch.Generator(device=dev).manual_seed((seed + 1) % SEED_MAX))
    history = _pretrain.train(model, verts, sdfs, cfg, seed, dev, reporter)
    t_train = time.perf_counter() - t0 - t_data
    restore_ieee_denormals()
    errors = _pretrain.evaluate(model, *val, faces, dev) if val is not None else None
    reporter.report("evaluate", 1.0, "done")
    report = {"config": cfg.to_dict(), "seed": seed, "device": str(dev), "n_parameters": sum(p.numel() for p in model.parameters()),
              "seconds_data": round(t_data, 1), "seconds_train": round(t_train, 1),
              "seconds_total": round(time.perf_counter() - t0, 1), "epoch_loss": [round(x, 6) for x in history],
              "validation": errors}
    model = model.cpu()
    tensors, metadata = representation_state(model, report)
    return RepresentationResult(model, tensors, metadata, report)
