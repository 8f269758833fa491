"""``anatomy-inr pulmonary phantom|evaluate|segments``: the 18 pulmonary segments.

* ``phantom``  — write a seeded lung phantom (CT, lobes, trees, ground-truth segments, points).
* ``evaluate`` — Dice, NSD, NIB, IDB, NIA, IDA of a segment labelmap against a reference.
* ``segments`` — Method A from lobes + airways + segmental identity, with planning numbers; or
  Method B (learned) with ``--checkpoint`` from lobes + the volumes the checkpoint was trained on.
* ``train``    — train Method B (ImPulSe+) on a folder of cases into a safetensors checkpoint;
  resumes an interrupted run; runs unchanged under ``torchrun`` (only rank 0 writes).

Exit codes as every subcommand: 0 success, 2 bad input, 3 output not writable or of an
unknown type, 4 runtime failure, 130 cancelled. Nothing is written when an input is bad.
"""

from __future__ import annotations

import sys
from pathlib import Path

from AnatomyINRLib.cli.common import (check_outputs, device_arg, make_output_folder, threads_arg, training_setup,
                                     write_json)
from AnatomyINRLib.core.errors import InputError, OutputError

PHANTOM_FILES = ("ct", "lobes", "airways", "arteries", "veins", "airways_labeled", "arteries_labeled", "segments")
LABELMAP_TYPES = (".nrrd", ".nii.gz", ".nii", ".mha", ".seg.nrrd")


def register(sub) -> None:
    """Add the ``pulmonary`` group and its three commands."""
    group = sub.add_parser("pulmonary", help="pulmonary segments: phantom, evaluation, Method A",
                           description="The 18 pulmonary segments (labels 1-18: RUL S1 S2 S3, RML S4 S5, "
                                       "RLL S6-S10, LUL S1+2 S3 S4 S5, LLL S6 S7+8 S9 S10).")
    cmds = group.add_subparsers(dest="pulmonary_command", metavar="ACTION", parser_class=type(group))
    cmds.required = True
    _register_phantom(cmds)
    _register_evaluate(cmds)
    _register_segments(cmds)
    _register_train(cmds)


def _register_phantom(cmds) -> None:
    p = cmds.add_parser("phantom", help="write a seeded lung phantom",
                        description="Write ct.nrrd, lobes.nrrd, airways.nrrd, arteries.nrrd, veins.nrrd, "
                                    "airways_labeled.nrrd, arteries_labeled.nrrd, segments.nrrd, "
                                    "segment_points.mrk.json and phantom.config.json into a folder.")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", choices=("small", "full"), default="small", help="small: 2 mm; full: 1 mm, 300×250×250")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="folder to write into (created if missing)")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    p.set_defaults(func=run_phantom)


def _register_evaluate(cmds) -> None:
    p = cmds.add_parser("evaluate", help="Dice, NSD and intrusion metrics of a segment labelmap",
                        description="ImPulSe+ §3.2 metrics; the report's top level holds dice, nsd, NIB, IDB, NIA, "
                                    "IDA (distances in mm) and per_segment.")
    p.add_argument("--prediction", required=True, metavar="P", help="predicted segments (labelmap or .seg.nrrd)")
    p.add_argument("--reference", required=True, metavar="R", help="reference segments on the same grid")
    p.add_argument("--bronchi", metavar="B", help="reference bronchi labelled 1-18 (for NIB, IDB)")
    p.add_argument("--arteries", metavar="A", help="reference arteries labelled 1-18 (for NIA, IDA)")
    p.add_argument("--nsd-tolerance", type=float, default=1.0, metavar="MM", help="NSD tolerance in mm (default 1)")
    p.add_argument("--connectivity", type=int, default=26, choices=(6, 18, 26), help="intrusion grouping (default 26)")
    p.add_argument("--report", required=True, metavar="JSON", help="write the metrics here")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    p.set_defaults(func=run_evaluate, paths=lambda a: (
        {"--prediction": a.prediction, "--reference": a.reference, "--bronchi": a.bronchi, "--arteries": a.arteries},
        {"--report": a.report}))


def _register_segments(cmds) -> None:
    p = cmds.add_parser("segments", help="Method A: segments from lobes, airways and segmental identity",
                        description="Each lobe voxel takes the label of its geodesic-nearest labelled segmental "
                                    "bronchus inside its lobe; boundaries are smoothed by an implicit soft partition. "
                                    "Output by extension: .nrrd/.nii.gz/.nii/.mha labelmap or .seg.nrrd segmentation.")
    p.add_argument("--lobes", required=True, metavar="L", help="lobe labelmap (1 RUL, 2 RML, 3 RLL, 4 LUL, 5 LLL)")
    p.add_argument("--airways", required=True, metavar="A", help="binary airway mask")
    p.add_argument("--arteries", metavar="R", help="binary artery mask (used when the config's use_arteries is on)")
    p.add_argument("--veins", metavar="V", help="binary vein mask (used when the config's vein_cost > 1)")
    p.add_argument("--ct", metavar="CT", help="CT volume (Method A checks its geometry; Method B may use it)")
    p.add_argument("--checkpoint", metavar="CKPT", help="Method B: a checkpoint from 'pulmonary train' "
                   "(then no segmental identity; give the volumes it was trained on)")
    p.add_argument("--device", default="cpu", type=device_arg,
                   help="Method B compute device: cpu, cuda, cuda:N, mps, auto (default cpu)")
    ident = p.add_mutually_exclusive_group()
    ident.add_argument("--segmental-labels", metavar="SL", help="airway mask with segmental subtrees labelled 1-18")
    ident.add_argument("--segment-points", metavar="P", help="one point per segmental bronchus, labelled by name")
    p.add_argument("--output", required=True, metavar="OUT", help="segments: " + " ".join(LABELMAP_TYPES))
    p.add_argument("--bronchi-output", metavar="B", help="also write the labelled bronchi the segments grew from "
                   "(airway voxels labelled 1-18: given, propagated from --segment-points, or Method B's), same "
                   "grid and types as --output")
    p.add_argument("--nodule", metavar="N", help="nodule as point(s) (.mrk.json .fcsv .csv ...) or a mask image")
    p.add_argument("--resect", nargs="+", metavar="NAME", help="segments to resect, e.g. 'RUL S1' RUL_S2 or 1 2")
    p.add_argument("--preset", default="default", choices=("fast", "default", "fine"), help="Method A preset")
    p.add_argument("--config", metavar="JSON", help="full Method A configuration (overrides --preset)")
    p.add_argument("--seed", type=int, default=0, help="recorded (Method A is deterministic)")
    p.add_argument("--report", metavar="JSON", help="write the report (volumes, nodule, resection, timings)")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    p.set_defaults(func=run_segments, paths=_segments_paths)


def _register_train(cmds) -> None:
    p = cmds.add_parser("train", help="train Method B (learned, ImPulSe+) into a checkpoint",
                        description="DATA_DIR holds one folder per case with segments (segments|lungsegment), "
                                    "lobes (lobes|lobe, else derived from the segments), airways|airway, "
                                    "arteries|artery, veins|vein and, for the ct channel, ct; each as .nrrd, "
                                    ".nii.gz, .nii or .mha (the phantom's and Lung3D's names). An unfinished "
                                    "checkpoint at --output with the same config and seed is resumed. Under "
                                    "torchrun every process trains on its share of the cases; rank 0 writes.")
    p.add_argument("data_dir", metavar="DATA_DIR", help="folder of case folders")
    p.add_argument("--output", required=True, metavar="CKPT", help="checkpoint .safetensors (+ .json sidecar)")
    p.add_argument("--preset", default="small", choices=("tiny", "small", "paper"), help="Method B preset")
    p.add_argument("--config", metavar="JSON", help="full training configuration (overrides --preset)")
    p.add_argument("--epochs", type=int, help="override the preset's number of epochs")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", type=device_arg, help="cpu, cuda, cuda:N, mps, auto (default cpu; "
                   "with torchrun and 'cuda' each rank takes cuda:LOCAL_RANK)")
    p.add_argument("--threads", type=threads_arg, help="CPU threads per process (default: torch's)")
    p.add_argument("--report", metavar="JSON", help="write the training report (rank 0)")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    # Not one output transaction: the checkpoint is rewritten after every epoch and must become visible
    # each time, so an interrupted run resumes from its last epoch (each write is still atomic).
    p.set_defaults(func=run_train, transactional=False, paths=_train_paths)


def _segments_paths(args) -> tuple[dict, dict]:
    """Inputs and outputs by argument name: no output may be an input or another output."""
    names = ("lobes", "airways", "arteries", "veins", "ct", "segmental_labels", "segment_points", "nodule",
             "checkpoint", "config")
    inputs = {"--" + n.replace("_", "-"): getattr(args, n) for n in names}
    return inputs, {"--output": args.output, "config file of --output": _config_path(args.output),
                    "--bronchi-output": args.bronchi_output, "--report": args.report}


def _train_paths(args) -> tuple[dict, dict]:
    from AnatomyINRLib.io.checkpoint import checkpoint_sidecar

    outputs = {"--output": args.output, "sidecar of --output": checkpoint_sidecar(args.output), "--report": args.report}
    return {"DATA_DIR": args.data_dir, "--config": args.config}, outputs


def run_train(args, progress) -> int:
    """Read the config, train (resuming when possible), write the report on rank 0."""
    from AnatomyINRLib.pulmonary import LearnedTrainConfig, learned_preset, train_segments_model

    cfg, rank0 = training_setup(args, LearnedTrainConfig, learned_preset)
    result = train_segments_model(args.data_dir, args.output, config=cfg, seed=args.seed, device=args.device,
                                  progress=progress)
    if args.report and rank0:
        write_json(args.report, {"command": "pulmonary train", "checkpoint": args.output, **result.report})
    return 0


def _config_path(output: str) -> Path:
    from AnatomyINRLib.io.formats import strip_extension

    return Path(str(strip_extension(output)) + ".config.json")


def run_phantom(args, progress) -> int:
    """Build the phantom and write its files (all checked writable first)."""
    from AnatomyINRLib import io
    from AnatomyINRLib.phantoms.lung import make_lung_phantom

    out, _ = make_output_folder(args.output_dir)
    paths = [out / f"{n}.nrrd" for n in PHANTOM_FILES] + [out / "segment_points.mrk.json", out / "phantom.config.json"]
    check_outputs(*map(str, paths))
    progress.report("phantom", 0.0, f"building the {args.size} phantom")
    ph = make_lung_phantom(args.seed, args.size)
    for n, name in enumerate(PHANTOM_FILES):
        io.write_image(getattr(ph, name), out / f"{name}.nrrd")
        progress.report("write", (n + 1) / (len(PHANTOM_FILES) + 1), f"{name}.nrrd")
    io.write_points(ph.segment_points, out / "segment_points.mrk.json")
    write_json(str(out / "phantom.config.json"), {"command": "pulmonary phantom", **ph.info})
    progress.report("write", 1.0, "done")
    return 0


def run_evaluate(args, progress) -> int:
    """Read the volumes, compute the metrics, write the report."""
    from AnatomyINRLib import io
    from AnatomyINRLib.metrics.segments import evaluate_labelmaps
    from AnatomyINRLib.pulmonary import SEGMENT_NAMES

    check_outputs(args.report)
    images = {k: io.read_image(getattr(args, k)) if getattr(args, k) else None
              for k in ("prediction", "reference", "bronchi", "arteries")}
    progress.report("evaluate", 0.0, "computing metrics")
    metrics = evaluate_labelmaps(images["prediction"], images["reference"], names=SEGMENT_NAMES, bronchi=images["bronchi"],
                                arteries=images["arteries"], nsd_tolerance_mm=args.nsd_tolerance,
                                connectivity=args.connectivity)
    write_json(args.report, {"command": "pulmonary evaluate", "prediction": args.prediction,
                             "reference": args.reference, **metrics})
    progress.report("evaluate", 1.0, "done")
    if not args.json_progress:
        shown = {k: metrics[k] for k in ("dice", "nsd", "NIB", "IDB", "NIA", "IDA") if metrics[k] is not None}
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()))
    return 0


def _validate_segments(args) -> None:
    from AnatomyINRLib.io.formats import file_extension

    for name, path in (("--output", args.output), ("--bronchi-output", args.bronchi_output)):
        ext = file_extension(path) if path else None
        if path and ext not in LABELMAP_TYPES:
            raise OutputError(f"{name} {path!r}: unknown output type {ext or '(none)'}; "
                              f"expected one of {', '.join(LABELMAP_TYPES)}")
    check_outputs(args.output, args.report, str(_config_path(args.output)), args.bronchi_output)


def _read_nodule(path: str):
    from AnatomyINRLib import io

    ext = io.file_extension(path)
    if ext in io.SUPPORTED["points"]:
        return io.read_points(path)
    if ext in io.SUPPORTED["image"]:
        return io.read_image(path)
    known = ", ".join(io.SUPPORTED["points"] + io.SUPPORTED["image"])
    raise InputError(f"--nodule {path!r}: unknown file type {ext or '(none)'}; expected one of {known}")


def run_segments(args, progress) -> int:
    """Read inputs, run Method A, plan, write the labelmap, config and report."""
    from AnatomyINRLib import io
    from AnatomyINRLib.io.configs import read_config
    from AnatomyINRLib.io.segmentation import write_segmentation
    from AnatomyINRLib.pulmonary import SEGMENT_COLORS, SEGMENTS, TerritoryConfig, plan_segments, preset_config
    from AnatomyINRLib.pulmonary import segment_lungs

    _validate_segments(args)
    if args.checkpoint and (args.segmental_labels or args.segment_points):
        raise InputError("--checkpoint (Method B) takes no --segmental-labels or --segment-points")
    if not args.checkpoint and not (args.segmental_labels or args.segment_points):
        raise InputError("segmental identity: Method A needs --segmental-labels or --segment-points "
                         "(or give --checkpoint for Method B)")
    cfg = read_config(args.config, TerritoryConfig) if args.config else preset_config(args.preset)
    images = {k: io.read_image(getattr(args, k)) if getattr(args, k) else None
              for k in ("lobes", "airways", "arteries", "veins", "ct", "segmental_labels")}
    points = io.read_points(args.segment_points) if args.segment_points else None
    nodule = _read_nodule(args.nodule) if args.nodule else None
    result = segment_lungs(images["lobes"], images["airways"], segmental_labels=images["segmental_labels"],
                           segment_points=points, arteries=images["arteries"], veins=images["veins"],
                           ct=images["ct"], nodule=nodule, resect=args.resect, config=cfg, seed=args.seed,
                           device=args.device, progress=progress, checkpoint=args.checkpoint)
    plan = result.report.pop("planning", None) or plan_segments(result.labels).report
    names = {v: (SEGMENTS[v][0], SEGMENT_COLORS[v]) for v in SEGMENTS}
    for labels, path in ((result.labels, args.output), (result.airways_labeled, args.bronchi_output)):
        if path and io.file_extension(path) == ".seg.nrrd":
            write_segmentation(labels, path, names)
        elif path:
            io.write_image(labels, path)
    used = result.report["config"] if args.checkpoint else cfg.to_dict()
    write_json(str(_config_path(args.output)), {"command": "pulmonary segments", "config": used,
                                                "checkpoint": args.checkpoint})
    report = {"command": "pulmonary segments", "output": args.output, **result.report, "planning": plan}
    if args.report:
        write_json(args.report, report)
    if not args.json_progress and "nodule" in plan:
        n = plan["nodule"]
        print(f"nodule in {', '.join(n['segments'])}; margin {n['margin_mm']} mm", file=sys.stdout)
    return 0
