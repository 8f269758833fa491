"""Entry functions of shape from image (ImplicitMeshNet).

* :func:`pretrain_representation`: the first training stage of the paper (Appendix B.1): the
  mesh → SDF network g_φ learns, on randomly deformed icospheres, to turn any mesh with the
  template's topology into its signed distance on a grid.
* :func:`train_shape_model`: the shape network f_θ trained from voxel labels through the frozen
  g_φ (eq. 1), resumable, under ``torchrun`` as well.
* :func:`predict_meshes`: one watertight mesh per structure from a CT volume, the label map
  rasterised from it, volumes, self-intersection checks and input warnings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from AnatomyINRLib.core.config import SEED_MAX, check_seed
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.image_to_mesh.config import (PretrainConfig, RefineConfig, ShapeTrainConfig, pretrain_preset,
                                              shape_train_preset)


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


@dataclass
class ShapeTrainResult:
    """A trained f_θ checkpoint.

    Attributes:
        checkpoint: Path of the ``.safetensors`` file (its ``.json`` sidecar beside it).
        report: Config, seed, device, rank / world size, per-epoch loss terms, training data range,
            weight digest, whether it resumed, seconds.
    """

    checkpoint: str
    report: dict


def _representation(representation):
    """(g_φ module, digest) from None (the shipped one), a checkpoint path or a MeshToSDF."""
    from AnatomyINRLib.image_to_mesh._models import REPRESENTATION_MODEL, shipped_model
    from AnatomyINRLib.image_to_mesh._representation import MeshToSDF, representation_from_state
    from AnatomyINRLib.image_to_mesh._shape_train import state_digest
    from AnatomyINRLib.io.checkpoint import load_checkpoint

    if representation is None:
        representation = shipped_model(REPRESENTATION_MODEL)
        if representation is None:
            raise InputError("representation: no g_φ checkpoint given and none shipped; run pretrain_representation")
    if not isinstance(representation, MeshToSDF):
        representation = representation_from_state(*load_checkpoint(representation), argument="representation")
    return representation, state_digest(representation)


def train_shape_model(data, output, *, representation=None, config: Optional[ShapeTrainConfig] = None,
                      preset: str = "cpu", seed: int = 0, device: str = "cpu", progress=None,
                      should_cancel: Optional[Callable[[], bool]] = None) -> ShapeTrainResult:
    """Train f_θ from voxel labels through the frozen g_φ (paper eq. 1; ``_shape_loss``, ``_shape_train``).

    Args:
        data: A data folder (phantom case folders with ``image.nrrd`` + ``labels.nrrd``, or MMWHS-style
            ``<id>_image`` / ``<id>_label`` pairs) or a sequence of (image, labels) ImageGrid pairs
            (labels 0, 1 = left atrium, 2 = left ventricle, on the image's grid).
        output: ``.safetensors`` checkpoint (+ ``.json`` sidecar); an unfinished checkpoint of the same
            config, seed and g_φ there is resumed.
        representation: g_φ: None (the shipped one), a checkpoint path, or a ``MeshToSDF``; frozen.
            Only with ``config.distance`` "learned"; "mesh" computes the distance from the mesh.
        config / preset: :class:`ShapeTrainConfig` or a name in ``SHAPE_TRAIN_PRESETS`` ("test", "cpu").
        seed: Seeds the initial weights, the batch order and the augmentation.
        device: "cpu", "cuda", "auto"...; under ``torchrun`` each process trains on its share of the
            cases (DistributedDataParallel) and only rank 0 writes.
        progress / should_cancel: Progress callback or reporter; cancel check at every step (the last
            epoch's checkpoint stays and is resumed next time).

    Raises:
        InputError: bad config, data, g_φ, or an output holding another training's checkpoint.
        OutputError: the checkpoint cannot be written.
        Cancelled: when ``should_cancel`` returns True.
    """
    from AnatomyINRLib.core.device import resolve_device
    from AnatomyINRLib.core.errors import OutputError
    from AnatomyINRLib.image_to_mesh._shape_train import run_training
    from AnatomyINRLib.io.formats import file_extension

    cfg = shape_train_preset(preset) if config is None else config
    if not isinstance(cfg, ShapeTrainConfig):
        raise InputError(f"config: expected a ShapeTrainConfig, got {type(cfg).__name__}")
    cfg.validate()
    seed = check_seed(seed)
    if file_extension(output) != ".safetensors":
        raise OutputError(f"output {str(output)!r}: expected a .safetensors checkpoint")
    reporter = ProgressReporter.wrap(progress, should_cancel)
    if cfg.distance == "mesh":  # the loss's distance comes from the mesh itself; g_φ is not used
        if representation is not None:
            raise InputError("representation: not used with config.distance 'mesh'; leave it out or choose 'learned'")
        g_phi, digest = None, "none (distance: mesh)"
    else:
        g_phi, digest = _representation(representation)
    t0 = time.perf_counter()
    info = run_training(data, cfg, g_phi, digest, seed, resolve_device(device), output, reporter)
    report = {"config": cfg.to_dict(), "seed": seed, "device": str(device), "representation_digest": digest,
              **info, "seconds": round(time.perf_counter() - t0, 2)}
    return ShapeTrainResult(str(output), report)


@dataclass
class ShapePrediction:
    """Chamber meshes predicted from an image.

    Attributes:
        meshes: structure name → watertight TriangleMesh in RAS mm with the template's topology.
        labels: uint8 label map on the input's geometry rasterised from the meshes (``STRUCTURES``
            values: 1 = left atrium, 2 = left ventricle; the larger label where meshes overlap).
        volumes_ml: structure name → enclosed volume of its mesh (ml).
        structures: structure name → {"label", "volume_ml", "watertight", "components",
            "self_intersections" (intersecting non-adjacent face pairs of the returned mesh),
            "repaired" (a Taubin repair was applied), "refine" (None when off, else {"iterations",
            "edge_found_fraction" (vertices whose profile crossed an edge), "mean_shift_mm"})}.
        warnings: Input far from the training data, meshes overlapping, failed repairs (with the numbers).
        report: checkpoint, structures, warnings, overlap voxels, seconds.
    """

    meshes: dict
    labels: ImageGrid
    volumes_ml: dict
    structures: dict
    warnings: list
    report: dict


def predict_meshes(image: ImageGrid, *, checkpoint=None, refine: Optional[RefineConfig] = None, device: str = "cpu",
                   progress=None, should_cancel: Optional[Callable[[], bool]] = None) -> ShapePrediction:
    """One watertight mesh per structure from a CT volume with a trained f_θ (``_predict``).

    Args:
        image: 3-D CT volume (HU) with its geometry (``core.ImageGrid``, RAS mm).
        checkpoint: A ``.safetensors`` f_θ checkpoint; None uses the shipped model.
        refine: Refinement of each mesh onto the image's edge (:class:`RefineConfig`; None: its
            defaults, on; ``RefineConfig(enabled=False)``: the network's meshes as they are).
        device: "cpu", "cuda", "auto"...
        progress / should_cancel: Progress callback or reporter (stages "load", "network", "check",
            "rasterise"); cancel check at every event.

    Raises:
        InputError: not a 3-D image, an empty image, a checkpoint of another kind, architecture or
            template, or no shipped model.
        Cancelled: when ``should_cancel`` returns True.
    """
    from AnatomyINRLib.core.device import resolve_device
    from AnatomyINRLib.image_to_mesh._models import SHAPE_MODEL, shipped_model
    from AnatomyINRLib.image_to_mesh._predict import input_warnings, load_shape_model, structure_meshes
    from AnatomyINRLib.image_to_mesh._raster import rasterize_meshes
    from AnatomyINRLib.image_to_mesh._shape_data import check_image
    from AnatomyINRLib.image_to_mesh.config import STRUCTURES
    from AnatomyINRLib.meshing.topology import mesh_quality

    check_image(image)
    refine = RefineConfig() if refine is None else refine
    if not isinstance(refine, RefineConfig):
        raise InputError(f"refine: expected a RefineConfig, got {type(refine).__name__}")
    refine.validate()
    reporter = ProgressReporter.wrap(progress, should_cancel)
    t0 = time.perf_counter()
    if checkpoint is None:
        checkpoint = shipped_model(SHAPE_MODEL)
        if checkpoint is None:
            raise InputError(f"checkpoint: none given and the shipped model {SHAPE_MODEL} is not installed")
    reporter.report("load", 0.0, "reading the shape model")
    net, cfg, meta = load_shape_model(checkpoint)
    warnings = input_warnings(image, meta, cfg.window_width)
    reporter.report("network", 0.0, "deforming the templates" + (", refining onto the image's edges" if refine.enabled else ""))
    meshes, checks = structure_meshes(net, cfg, image, resolve_device(device), refine)
    reporter.report("check", 0.0, "checking the meshes")
    structures, named, volumes = {}, {}, {}
    for label, mesh in meshes.items():
        name = STRUCTURES[label]
        q = mesh_quality(mesh, check_manifold3d=False)
        volumes[name] = round(float(q["volume_mm3"]) / 1000.0, 4)
        structures[name] = {"label": label, "volume_ml": volumes[name], "watertight": bool(q["watertight"]),
                            "components": int(q["n_components"]), **checks[label]}
        named[name] = mesh
        if checks[label]["self_intersections"]:
            warnings.append(f"{name}: {checks[label]['self_intersections']} self-intersecting face pairs remain after "
                            "the repair (flagged)")
    reporter.report("rasterise", 0.0, "label map from the meshes")
    labels, overlap = rasterize_meshes(meshes, image)
    if overlap:
        warnings.append(f"{overlap} voxels lie inside more than one mesh (the larger label is kept)")
    reporter.report("rasterise", 1.0, "done")
    report = {"checkpoint": str(checkpoint), "refine": refine.to_dict(), "structures": structures, "warnings": warnings,
              "overlap_voxels": overlap, "seconds": round(time.perf_counter() - t0, 3)}
    return ShapePrediction(named, labels, volumes, structures, warnings, report)
