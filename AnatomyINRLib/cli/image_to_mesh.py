"""``anatomy-inr image-to-mesh``: shape from image (ImplicitMeshNet).

* ``phantom`` — write a seeded cardiac CT-like phantom: ``image.nrrd`` (int16 HU),
  ``labels.nrrd`` (1 = left-atrium-like, 2 = left-ventricle-like) and ``phantom.config.json``
  (seed, size, pose, intensities, label volumes).
* ``train DATA_DIR --output CKPT`` — train the shape network f_θ (phantom case folders or
  MMWHS-style NIfTI pairs); resumes an unfinished checkpoint; runs under ``torchrun`` unchanged.
* ``predict IMAGE [--checkpoint CKPT] [--no-refine] --output-prefix P`` — writes ``P_<structure>.vtp``
  per structure (:data:`STRUCTURES` names), ``P_labels.nrrd`` (1 = LA, 2 = LV, rasterised from the
  meshes on the image's geometry), ``P_report.json`` ("structures": {name: {"label", "volume_ml",
  "watertight", "components", "self_intersections", "repaired", "refine"}}, "warnings",
  "checkpoint", "seconds") and ``P_config.json`` (the model's configuration and the refinement's
  settings); without ``--checkpoint`` the shipped model. Each mesh is refined onto the image's
  edge unless ``--no-refine`` (``image_to_mesh.RefineConfig``). Input warnings (spacing or intensities far from the training data) go to
  stderr and into the report.

Exit codes as every subcommand: 0 success, 2 bad input, 3 output not writable, 4 runtime
failure, 130 cancelled. Nothing is written when anything fails (one output transaction).
"""

from __future__ import annotations

import json
from pathlib import Path

from AnatomyINRLib.cli.common import (check_outputs, device_arg, make_output_folder, seed_arg, threads_arg,
                                     training_setup, write_json)

PHANTOM_FILES = ("image.nrrd", "labels.nrrd", "phantom.config.json")


def register(sub) -> None:
    """Add the ``image-to-mesh`` group and its commands."""
    group = sub.add_parser("image-to-mesh", help="shape from image (ImplicitMeshNet): phantom, train, predict",
                           description="Watertight chamber meshes from CT (ImplicitMeshNet). Labels: "
                                       "1 = left atrium (like), 2 = left ventricle (like).")
    cmds = group.add_subparsers(dest="image_to_mesh_command", metavar="ACTION", parser_class=type(group))
    cmds.required = True
    p = cmds.add_parser("phantom", help="write a seeded cardiac CT-like phantom",
                        description="Write image.nrrd (int16 HU), labels.nrrd (1 = LA-like, 2 = LV-like) and "
                                    "phantom.config.json into a folder (created if missing).")
    p.add_argument("--seed", type=seed_arg, default=0, help="random seed (default 0)")
    p.add_argument("--size", choices=("small", "full"), default="small",
                   help="small: 2 mm, 80×80×72 (default); full: 1.25 mm, 128×128×115")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="folder to write into (created if missing)")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    p.set_defaults(func=run_phantom, paths=phantom_paths)
    _register_train(cmds)
    _register_predict(cmds)


def _register_train(cmds) -> None:
    p = cmds.add_parser("train", help="train the shape network f_θ into a checkpoint",
                        description="DATA_DIR holds case folders with image.nrrd + labels.nrrd (the phantom "
                                    "command's output) or MMWHS-style <id>_image / <id>_label pairs (.nii.gz, "
                                    ".nii, .nrrd, .mha; 420 → left atrium, 500 → left ventricle). An unfinished "
                                    "checkpoint at --output with the same config, seed and g_φ is resumed. Under "
                                    "torchrun every process trains on its share of the cases; rank 0 writes.")
    p.add_argument("data_dir", metavar="DATA_DIR", help="folder of cases")
    p.add_argument("--output", required=True, metavar="CKPT", help="checkpoint .safetensors (+ .json sidecar)")
    p.add_argument("--preset", default="cpu", choices=("test", "cpu"), help="training preset (default cpu)")
    p.add_argument("--config", metavar="JSON", help="full training configuration (overrides --preset)")
    p.add_argument("--epochs", type=int, help="override the preset's number of epochs")
    p.add_argument("--representation", metavar="CKPT", help="mesh → SDF network g_φ (default: the shipped one)")
    p.add_argument("--seed", type=seed_arg, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", type=device_arg, help="cpu, cuda, cuda:N, mps, auto (default cpu)")
    p.add_argument("--threads", type=threads_arg, help="CPU threads per process (default: torch's)")
    p.add_argument("--report", metavar="JSON", help="write the training report (rank 0)")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    # Not one output transaction: the checkpoint is rewritten after every epoch and must become visible
    # each time, so an interrupted run resumes from its last epoch (each write is still atomic).
    p.set_defaults(func=run_train, transactional=False,
                   paths=lambda a: ({"DATA_DIR": a.data_dir, "--representation": a.representation},
                                    {"--output": a.output, "--report": a.report}))


def _register_predict(cmds) -> None:
    p = cmds.add_parser("predict", help="chamber meshes and label map from a CT volume",
                        description="Deform the template sphere per structure (left_atrium, left_ventricle) with a "
                                    "trained shape network and write P_<structure>.vtp, P_labels.nrrd (1 = LA, "
                                    "2 = LV), P_report.json and P_config.json; all or nothing.")
    p.add_argument("image", metavar="IMAGE", help="3-D CT volume in HU (.nrrd, .nii.gz, .nii, .mha)")
    p.add_argument("--checkpoint", metavar="CKPT", help="shape model .safetensors (default: the shipped model)")
    p.add_argument("--output-prefix", required=True, metavar="P", help="output path prefix (P_left_atrium.vtp ...)")
    p.add_argument("--no-refine", action="store_true",
                   help="keep the network's meshes as they are (default: refine each onto the image's edge)")
    p.add_argument("--device", default="cpu", type=device_arg, help="cpu, cuda, cuda:N, mps, auto (default cpu)")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    p.set_defaults(func=run_predict, paths=predict_paths)


def predict_outputs(prefix: str) -> dict:
    """Output files of ``predict`` by role: one mesh per structure, labels, report, config."""
    from AnatomyINRLib.image_to_mesh import STRUCTURES

    out = {f"{name} mesh": f"{prefix}_{name}.vtp" for name in STRUCTURES.values()}
    out.update({"labels": f"{prefix}_labels.nrrd", "report": f"{prefix}_report.json", "config": f"{prefix}_config.json"})
    return out


def predict_paths(args) -> tuple[dict, dict]:
    """Inputs and outputs by argument name: main() refuses any output that is an input or another output."""
    outs = {f"--output-prefix ({k})": v for k, v in predict_outputs(args.output_prefix).items()}
    return {"IMAGE": args.image, "--checkpoint": args.checkpoint}, outs


def run_train(args, progress) -> int:
    """Read the config, train (resuming when possible), write the report on rank 0."""
    from AnatomyINRLib.image_to_mesh import ShapeTrainConfig, shape_train_preset, train_shape_model

    cfg, rank0 = training_setup(args, ShapeTrainConfig, shape_train_preset)
    result = train_shape_model(args.data_dir, args.output, representation=args.representation, config=cfg,
                               seed=args.seed, device=args.device, progress=progress)
    if args.report and rank0:
        write_json(args.report, {"command": "image-to-mesh train", "checkpoint": args.output, **result.report})
    return 0


def run_predict(args, progress) -> int:
    """Read the image, predict, write meshes, label map, report and config in one transaction."""
    import sys

    from AnatomyINRLib import io
    from AnatomyINRLib.image_to_mesh import RefineConfig, predict_meshes

    outs = predict_outputs(args.output_prefix)
    check_outputs(*outs.values())
    image = io.read_image(args.image)
    result = predict_meshes(image, checkpoint=args.checkpoint, refine=RefineConfig(enabled=not args.no_refine),
                            device=args.device, progress=progress)
    for name, mesh in result.meshes.items():
        io.write_mesh(mesh, outs[f"{name} mesh"])
    io.write_image(result.labels, outs["labels"])
    report = {"structures": result.structures, "warnings": result.warnings, "checkpoint": result.report["checkpoint"],
              "seconds": result.report["seconds"], "overlap_voxels": result.report["overlap_voxels"],
              "image": args.image}
    write_json(outs["report"], report)
    from AnatomyINRLib.io.checkpoint import checkpoint_sidecar

    meta = json.loads(checkpoint_sidecar(result.report["checkpoint"]).read_text(encoding="utf-8"))
    write_json(outs["config"], {"command": "image-to-mesh predict", "checkpoint": result.report["checkpoint"],
                                "network": meta.get("network"), "template": meta.get("template"),
                                "preprocessing": meta.get("preprocessing"), "structures": meta.get("structures"),
                                "refine": result.report["refine"]})
    for line in result.warnings:
        print(f"anatomy-inr: warning: {line}", file=sys.stderr)
    return 0


def phantom_paths(args) -> tuple[dict, dict]:
    """Inputs and outputs by argument name: main() refuses any output that is an input or another output."""
    out = Path(args.output_dir)
    return {}, {f"{name} in --output-dir": out / name for name in PHANTOM_FILES}


def run_phantom(args, progress) -> int:
    """Build the phantom and write its files (all checked writable first)."""
    from AnatomyINRLib import io
    from AnatomyINRLib.phantoms.cardiac import make_cardiac_phantom

    out, _ = make_output_folder(args.output_dir)
    check_outputs(*(str(out / name) for name in PHANTOM_FILES))
    progress.report("phantom", 0.0, f"building the {args.size} cardiac phantom (seed {args.seed})")
    ph = make_cardiac_phantom(args.seed, args.size)
    io.write_image(ph.image, out / "image.nrrd")
    progress.report("write", 0.5, "image.nrrd")
    io.write_image(ph.labels, out / "labels.nrrd")
    write_json(str(out / "phantom.config.json"), {"command": "image-to-mesh phantom", **ph.info})
    progress.report("write", 1.0, "done")
    return 0
