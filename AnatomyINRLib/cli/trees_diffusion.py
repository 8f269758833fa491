"""``anatomy-inr trees train | sample | evaluate``: stage 2 of tree synthesis (TrIND), weight-space diffusion.

Registered into the ``trees`` group by :mod:`AnatomyINRLib.cli.trees`.

* ``train``    — train the diffusion model on a folder of INR files of one architecture into a
  safetensors checkpoint; resumes an interrupted run; runs unchanged under ``torchrun`` (rank 0
  writes). Not transactional: the checkpoint is written atomically after every epoch, so that an
  interrupted run keeps its finished epochs.
* ``train --centerlines`` — the centreline model instead: a diffusion model over the trees' branches
  (``trees._centerline_tokens``), trained on a folder of ``*.centerline.json`` trees.
* ``sample``   — draw N trees from a checkpoint: ``tree_NNN.safetensors`` INR files (mesh them again at
  any spacing with ``anatomy-inr extract``), or ``tree_NNN.centerline.json`` from a centreline model
  (whose branches ``--keep-apart`` guidance keeps from running into each other), and, with
  ``--spacing``, ``tree_NNN.vtp`` meshes.
* ``evaluate`` — MMD, COV, 1-NNA (Chamfer on 2048 surface points), memorisation against a training
  folder, tree statistics and their histograms (PNG) of generated vs reference meshes.

Exit codes as every subcommand: 0 success, 2 bad input, 3 output not writable, 4 runtime failure,
5 missing package, 130 cancelled.
"""

from __future__ import annotations

import math
from pathlib import Path

from AnatomyINRLib.cli.common import check_outputs, device_arg, seed_arg, threads_arg, training_setup, write_json
from AnatomyINRLib.core.errors import InputError

INR_TYPES = (".safetensors", ".pt", ".pth")
MESH_TYPES = (".vtp", ".vtk", ".stl", ".ply", ".obj")


def register_commands(cmds) -> None:
    """Add ``train``, ``sample`` and ``evaluate`` to the ``trees`` group (``cli.trees.register``)."""
    _register_train(cmds)
    _register_sample(cmds)
    _register_evaluate(cmds)


# ============================================================================ stage 2: weight-space diffusion


def _files(folder: str, types: tuple, argument: str) -> list:
    path = Path(folder)
    if not path.is_dir():
        raise InputError(f"{argument} {folder!r}: not a folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and any(p.name.lower().endswith(t) for t in types))
    if not files:
        raise InputError(f"{argument} {folder!r}: holds no {'/'.join(types)} files")
    return files


def _register_train(cmds) -> None:
    p = cmds.add_parser("train", help="train the weight-space diffusion model on a folder of INR files "
                                      "(or, with --centerlines, the centreline model on centreline files)",
                        description="INR_DIR holds INR files (.safetensors/.pt/.pth, e.g. from 'trees fit') of one "
                                    "network architecture. A checkpoint at --output of the same config, seed and "
                                    "data is resumed (a larger --epochs continues a finished one). Under torchrun "
                                    "every process takes its share of each batch; rank 0 writes. The checkpoint is "
                                    "written after every epoch (not held back to the end, unlike other commands).")
    p.add_argument("inr_dir", metavar="INR_DIR", help="folder of INR files (with --centerlines: of centreline files)")
    p.add_argument("--centerlines", action="store_true",
                   help="train the centreline model instead: INR_DIR holds *.centerline.json trees (e.g. the "
                        "centerlines/ folder of 'trees generate-dataset'); default preset centerline")
    p.add_argument("--max-bifurcations", type=int, metavar="B",
                   help="with --centerlines: most bifurcations a tree may have (default 12)")
    p.add_argument("--output", required=True, metavar="CKPT", help="checkpoint .safetensors (+ .json sidecar)")
    p.add_argument("--preset", choices=("tiny", "cpu", "hull", "shared", "paper", "centerline"),
                   help="diffusion preset (default cpu, or centerline with --centerlines; shared: for the networks "
                        "of 'trees fit --preset shared')")
    p.add_argument("--config", metavar="JSON", help="full DiffusionConfig JSON (overrides --preset)")
    p.add_argument("--epochs", type=int, help="override the number of epochs")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="leave out unreadable INR (or centreline) files (named on stderr)")
    p.add_argument("--seed", type=seed_arg, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", type=device_arg, help="cpu, cuda, cuda:N, mps, auto (default cpu; "
                   "with torchrun and 'cuda' each rank takes cuda:LOCAL_RANK)")
    p.add_argument("--threads", type=threads_arg, help="CPU threads per process (default: torch's)")
    p.add_argument("--report", metavar="JSON", help="write the training report (rank 0)")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    p.set_defaults(func=run_train, paths=_train_paths, transactional=False)


def _train_paths(args):
    from AnatomyINRLib.io.checkpoint import checkpoint_sidecar

    return ({"INR_DIR": args.inr_dir, "--config": args.config},
            {"--output": args.output, "sidecar of --output": checkpoint_sidecar(args.output), "--report": args.report})


def _read_folder(folder: str, types: tuple, argument: str, reader, skip_unreadable: bool, rest: str) -> tuple:
    """(items, names, skipped names) read by ``reader`` from every file of ``folder``.

    Every file is tried; unreadable ones are named together in one InputError (``rest`` says what
    ``--skip-unreadable`` would do), or with ``skip_unreadable`` named on stderr and left out. A folder
    with nothing readable is an error either way.
    """
    import sys

    items, names, bad = [], [], []
    for path in _files(folder, types, argument):
        try:
            items.append(reader(path))
            names.append(path.name)
        except InputError as exc:
            bad.append((path.name, str(exc)))
    if bad and (not skip_unreadable or not items):
        hint = f"; --skip-unreadable {rest}" if items else ""
        raise InputError(f"{argument}: {len(bad)} unreadable file(s): {', '.join(n for n, _ in bad)} "
                         f"(first: {bad[0][1]}){hint}")
    for name, reason in bad:
        print(f"anatomy-inr: warning: skipped {name}: {reason}", file=sys.stderr)
    return items, names, [name for name, _ in bad]


def read_inr_folder(folder: str, skip_unreadable: bool = False):
    """(fields, names, metadata) of the INR files of ``folder``; InputError naming unreadable files unless skipped."""
    from AnatomyINRLib import io

    pairs, names, _ = _read_folder(folder, INR_TYPES, "INR_DIR", io.load_inr, skip_unreadable, "trains on the rest")
    return [f for f, _ in pairs], names, [m for _, m in pairs]


def read_centerline_set(args, cfg):
    """(weights, layout, info) of the ``*.centerline.json`` trees of ``args.inr_dir`` (the centreline model)."""
    from AnatomyINRLib import io
    from AnatomyINRLib.trees._centerline_tokens import centerline_training_set

    pairs, names, _ = _read_folder(args.inr_dir, (".centerline.json",), "INR_DIR", io.read_centerline,
                                   args.skip_unreadable, "trains on the rest")
    bifurcations = {} if args.max_bifurcations is None else {"max_bifurcations": args.max_bifurcations}
    return centerline_training_set([g for g, _ in pairs], names, cfg.token_size, **bifurcations)


def run_train(args, progress) -> int:
    """Read the INR folder and config, train (resuming when possible), write the report on rank 0."""
    from AnatomyINRLib.trees import DiffusionConfig, diffusion_preset, train_model
    from AnatomyINRLib.trees._inr_sets import stack_fields

    if args.preset is None:
        args.preset = "centerline" if args.centerlines else "cpu"
    if args.max_bifurcations is not None and not args.centerlines:
        raise InputError("--max-bifurcations: applies to --centerlines only")
    cfg, rank0 = training_setup(args, DiffusionConfig, diffusion_preset)
    if args.centerlines:
        weights, layout, info = read_centerline_set(args, cfg)
    else:
        fields, names, metas = read_inr_folder(args.inr_dir, args.skip_unreadable)
        weights, layout, info = stack_fields(fields, names, metas)
    result = train_model(weights, layout, args.output, inr_info=info, config=cfg, seed=args.seed, device=args.device,
                         progress=progress)
    if args.report and rank0:
        write_json(args.report, {"command": "trees train", "inr_dir": args.inr_dir, "checkpoint": args.output,
                                 **result.report})
    return 0


def _register_sample(cmds) -> None:
    p = cmds.add_parser("sample", help="sample trees from a diffusion checkpoint",
                        description="Writes tree_NNN.safetensors INR files (+ .json sidecars; from a centreline "
                                    "model: tree_NNN.centerline.json) and, with --spacing, tree_NNN.vtp meshes "
                                    "into --output-dir, and sample.config.json.")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint from 'trees train'")
    p.add_argument("--count", required=True, type=int, metavar="N", help="number of trees (> 0)")
    p.add_argument("--output-dir", required=True, metavar="D", help="folder to write into (created if missing)")
    p.add_argument("--spacing", type=float, metavar="MM", help="also mesh every tree at this spacing in mm")
    p.add_argument("--sample-steps", type=int, metavar="K", help="DDIM steps (default: the checkpoint's config)")
    p.add_argument("--eta", type=float, help="DDIM eta in [0, 1] (default: the checkpoint's config)")
    p.add_argument("--temperature", type=float, help="softmax temperature of a 'hull' head checkpoint "
                   "(default: the checkpoint's config)")
    p.add_argument("--keep-apart", type=float, metavar="S",
                   help="centreline models: strength of the guidance that keeps a tree's branches from running "
                        "through each other (default 4; 0 turns it off)")
    p.add_argument("--keep-all-components", action="store_true",
                   help="with --spacing: keep every connected piece of a sampled surface (default: the largest; "
                        "the report gives each mesh's pieces and the share of its area in the largest)")
    p.add_argument("--seed", type=seed_arg, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", type=device_arg, help="cpu, cuda, cuda:N, mps, auto (default cpu)")
    p.add_argument("--report", metavar="JSON", help="write the sampling report")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    p.set_defaults(func=run_sample, paths=_sample_paths)


def _sample_paths(args):
    from AnatomyINRLib.io.checkpoint import checkpoint_sidecar

    return ({"--checkpoint": args.checkpoint, "sidecar of --checkpoint": checkpoint_sidecar(args.checkpoint)},
            {"--output-dir": args.output_dir, "--report": args.report})


def run_sample(args, progress) -> int:
    """Sample, then write INR files, meshes, the config and the report (all or nothing)."""
    from AnatomyINRLib import io
    from AnatomyINRLib.trees import sample_trees

    if args.count is None or args.count < 1:
        raise InputError(f"--count: expected a positive number of trees, got {args.count}")
    if args.spacing is not None and not args.spacing > 0:
        raise InputError(f"--spacing: expected a positive number of mm, got {args.spacing}")
    if args.keep_all_components and args.spacing is None:
        raise InputError("--keep-all-components: needs --spacing (without it no tree is meshed)")
    if args.keep_apart is not None and not (math.isfinite(args.keep_apart) and args.keep_apart >= 0):
        raise InputError(f"--keep-apart: expected a strength >= 0 (0 turns it off), got {args.keep_apart}")
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output-dir {args.output_dir!r}: exists and is not a folder")
    if not out.exists() and not out.parent.is_dir():
        raise InputError(f"--output-dir {args.output_dir!r}: its parent folder does not exist")
    check_outputs(str(out / "sample.config.json") if out.exists() else None, args.report)
    result = sample_trees(args.checkpoint, args.count, spacing_mm=args.spacing, sample_steps=args.sample_steps,
                          eta=args.eta, temperature=args.temperature, seed=args.seed, device=args.device,
                          keep_all_components=args.keep_all_components, keep_apart=args.keep_apart,
                          progress=progress)
    if not result.fields and not result.graphs:
        raise InputError(f"--checkpoint {args.checkpoint!r}: trained on bare weight arrays, holds no INR architecture")
    out.mkdir(parents=True, exist_ok=True)
    for i, graph in enumerate(result.graphs):
        io.write_centerline(graph, out / f"tree_{i:03d}.centerline.json",
                            {"sampled_from": str(args.checkpoint), "seed": args.seed, "index": i})
    inr = result.report["inr"]  # the training INRs' field kind and box: 'extract' meshes samples the same way
    extra = {k: inr[k] for k in ("field_kind", "points_bounds_mm") if k in inr}
    for i, field in enumerate(result.fields):
        io.save_inr(field, out / f"tree_{i:03d}.safetensors", {"sampled_from": str(args.checkpoint),
                                                               "seed": args.seed, "index": i, **extra})
    for i, mesh in enumerate(result.meshes):
        if mesh is not None:
            io.write_mesh(mesh, out / f"tree_{i:03d}.vtp")
    write_json(str(out / "sample.config.json"), {"command": "trees sample", "checkpoint": args.checkpoint,
                                                 "count": args.count, "seed": args.seed, "spacing_mm": args.spacing,
                                                 "sample_steps": args.sample_steps, "eta": args.eta,
                                                 "temperature": args.temperature,
                                                 "keep_all_components": args.keep_all_components,
                                                 "keep_apart": result.report["keep_apart"]})
    if args.report:
        write_json(args.report, {"command": "trees sample", **result.report})
    return 0


def _register_evaluate(cmds) -> None:
    p = cmds.add_parser("evaluate", help="MMD, COV, 1-NNA, memorisation and tree statistics of generated trees",
                        description="Chamfer distance on surface points (unsquared, half the sum of both means, mm; "
                                    "--squared: the PointFlow/TrIND sum of squared means, mm^2). 1-NNA is unfolded "
                                    "(50 %% ideal). Tree statistics from a skeleton of each voxelised mesh.")
    p.add_argument("--generated", required=True, metavar="D1", help="folder of generated meshes")
    p.add_argument("--reference", required=True, metavar="D2", help="folder of reference meshes")
    p.add_argument("--training", metavar="D3", help="folder of training meshes (memorisation check)")
    p.add_argument("--report", required=True, metavar="JSON", help="write the metrics here")
    p.add_argument("--histograms", metavar="PNG", help="write histograms of the tree statistics here")
    p.add_argument("--points", type=int, default=2048, help="surface points per mesh (default 2048)")
    p.add_argument("--squared", action="store_true", help="squared Chamfer distance")
    p.add_argument("--voxel", type=float, metavar="MM", help="voxel size for the skeletons (default: extent / 96)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the surface samples (default 0)")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="leave out unreadable mesh files (named on stderr; the report lists them)")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    p.set_defaults(func=run_evaluate, paths=_evaluate_paths)


def _evaluate_paths(args):
    return ({"--generated": args.generated, "--reference": args.reference, "--training": args.training},
            {"--report": args.report, "--histograms": args.histograms})


def run_evaluate(args, progress) -> int:
    """Read the mesh folders, compute the metrics, write the report (and histograms)."""
    from AnatomyINRLib import io
    from AnatomyINRLib.io.figures import render_histograms_png
    from AnatomyINRLib.metrics.generative import evaluate_mesh_sets

    if args.points < 1:
        raise InputError(f"--points: expected a positive number of points, got {args.points}")
    if args.voxel is not None and not args.voxel > 0:
        raise InputError(f"--voxel: expected a positive number of mm, got {args.voxel}")
    check_outputs(args.report, args.histograms)
    folders = {"--generated": args.generated, "--reference": args.reference, "--training": args.training}
    meshes, skipped = {}, {}
    for key, folder in folders.items():
        if folder:
            meshes[key], _, skipped[key] = _read_folder(folder, MESH_TYPES, key, io.read_mesh, args.skip_unreadable,
                                                        "evaluates the rest")
    progress.report("read", 0.1, f"read {sum(len(v) for v in meshes.values())} meshes")
    report = evaluate_mesh_sets(meshes["--generated"], meshes["--reference"], meshes.get("--training"),
                                points=args.points, squared=args.squared, seed=args.seed, voxel_mm=args.voxel)
    progress.report("metrics", 1.0, f"1-NNA {100 * report['one_nna']:.1f} %, COV {report['cov']:.2f}")
    write_json(args.report, {"command": "trees evaluate", "generated": args.generated, "reference": args.reference,
                             "training": args.training, "skipped_unreadable": skipped, **report})
    if args.histograms:
        from AnatomyINRLib.metrics.generative import TREE_STATISTIC_LABELS as labels

        panels = {labels[s]: {k: v[s] for k, v in report["tree_statistics"].items()} for s in labels}
        render_histograms_png(args.histograms, panels, "tree statistics")
    return 0
