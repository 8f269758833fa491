"""``anatomy-inr trees``: synthetic tree data sets and per-tree occupancy INRs (TrIND).

    anatomy-inr trees generate-dataset --count N --seed S --output-dir D
    anatomy-inr trees fit MESH_OR_DIR --output FILE_OR_DIR [--seed S] [--preset P] [--skip-bad]
    anatomy-inr trees train | sample | evaluate   (stage 2, :mod:`AnatomyINRLib.cli.trees_diffusion`)
    anatomy-inr trees compress MESH --output-inr INR --output MESH [--spacing MM]   (:mod:`AnatomyINRLib.cli.trees_compress`)

A data set folder holds ``meshes/tree_NNN.vtp`` (watertight surfaces, RAS mm),
``centerlines/tree_NNN.centerline.json`` (points, parent, radius),
``occupancy/tree_NNN.nrrd`` (uint8 volume, 1 inside) and ``dataset.json``
(generator parameters and tree statistics). ``trees fit`` writes one INR file
(``.safetensors`` + ``.json`` sidecar) per mesh; ``anatomy-inr extract`` meshes it.

Exit codes as every subcommand: 0 success, 2 bad input (an open or non-manifold mesh,
an empty folder, an unreadable file; nothing is written), 3 output not writable,
4 runtime failure, 130 cancelled.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from AnatomyINRLib.cli import trees_compress, trees_diffusion
from AnatomyINRLib.cli.common import (add_device_arg, check_outputs, make_output_folder, seed_arg, threads_arg,
                                     write_json)
from AnatomyINRLib.cli.trees_diffusion import MESH_TYPES  # one list of mesh types for both stages
from AnatomyINRLib.core.errors import InputError


def register(sub) -> None:
    """Add the ``trees`` group and its commands (stage 2 in cli.trees_diffusion)."""
    group = sub.add_parser("trees", help="tree synthesis: synthetic trees, per-tree INRs, diffusion",
                           description="TrIND (Sinha et al., MICCAI 2024): vessel trees as occupancy INRs.")
    cmds = group.add_subparsers(dest="trees_command", metavar="ACTION", parser_class=type(group))
    cmds.required = True
    _register_generate(cmds)
    _register_fit(cmds)
    trees_diffusion.register_commands(cmds)  # stage 2: train, sample, evaluate
    trees_compress.register_commands(cmds)  # one mesh: fit, re-extract, size and error


# ----------------------------------------------------------------------------- stage 1: data and per-tree INRs


def _register_generate(cmds) -> None:
    p = cmds.add_parser("generate-dataset", help="write N seeded synthetic vessel trees",
                        description="Grow N trees toward demand points (Murray radii, tortuosity) and write "
                                    "meshes/*.vtp, centerlines/*.centerline.json, occupancy/*.nrrd and dataset.json.")
    p.add_argument("--count", type=int, required=True, metavar="N", help="number of trees (> 0)")
    p.add_argument("--seed", type=seed_arg, default=0, help="random seed (default 0); tree i depends on (seed, i) only")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="folder to write into (created if missing)")
    p.add_argument("--min-bifurcations", type=int, default=1, help="fewest bifurcations per tree (default 1)")
    p.add_argument("--max-bifurcations", type=int, default=12, help="most bifurcations per tree (default 12)")
    p.add_argument("--mesh-spacing", type=float, default=0.3, metavar="MM", help="marching-cubes spacing (default 0.3)")
    p.add_argument("--volume-spacing", type=float, default=0.5, metavar="MM", help="occupancy voxel size (default 0.5)")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    p.set_defaults(func=run_generate)


def _register_fit(cmds) -> None:
    p = cmds.add_parser("fit", help="fit one occupancy INR per closed tree mesh",
                        description="MESH_OR_DIR: one closed mesh (.vtp .vtk .stl .ply .obj) or a folder of them. "
                                    "--output: an INR file (.safetensors/.pt) for one mesh, a folder for a folder "
                                    "(one <name>.safetensors per mesh, fit_report.json, trees_fit.config.json).")
    p.add_argument("input", metavar="MESH_OR_DIR", help="closed tree mesh or folder of meshes")
    p.add_argument("--output", required=True, metavar="FILE_OR_DIR", help="INR file, or folder for a folder input")
    p.add_argument("--preset", default="fast", choices=("paper", "fast", "shared", "tiny"),
                   help="stage-1 preset (default fast; shared: one decoder, per-tree biases)")
    p.add_argument("--config", metavar="JSON", help="full TreeFitConfig (overrides --preset)")
    p.add_argument("--frame", choices=("set", "tree"),
                   help="set: one frame for all the trees (the union of their boxes; for trees in one space, and "
                        "what stage 2 needs); tree: each tree in its own box (TrIND). Default: the --config's, "
                        "else the preset's (fast, shared: set; paper, tiny: tree)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable, open or non-manifold meshes (listed in the report) instead of stopping")
    p.add_argument("--seed", type=seed_arg, default=0, help="random seed (default 0)")
    add_device_arg(p)
    p.add_argument("--threads", type=threads_arg, default=None,
                   help="CPU threads (default: all cores, shared among torchrun's processes on this machine)")
    p.add_argument("--report", metavar="JSON", help="also write the fit report here")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    p.set_defaults(func=run_fit, paths=fit_paths)


@contextlib.contextmanager
def _output_dir(path: str, argument: str):
    """Yield the output folder, created if missing; a folder created here is removed again on failure."""
    out, created = make_output_folder(path, argument)
    try:
        yield out
    except BaseException:
        if created:
            for sub in sorted(out.rglob("*"), reverse=True):  # only empty folders remain after a rollback
                if sub.is_dir() and not any(sub.iterdir()):
                    sub.rmdir()
            if not any(out.iterdir()):
                out.rmdir()
        raise


def run_generate(args, progress) -> int:
    """Grow, mesh and rasterise every tree; write all files (one transaction)."""
    from AnatomyINRLib import io
    from AnatomyINRLib.phantoms.tree_synth import (dataset_params, grow_tree, tree_mesh, tree_occupancy,
                                                   tree_statistics)

    if args.count < 1:
        raise InputError(f"--count: expected a positive number of trees, got {args.count}")
    for name in ("mesh_spacing", "volume_spacing"):
        if not getattr(args, name) > 0:
            raise InputError(f"--{name.replace('_', '-')}: expected a positive number of mm, got {getattr(args, name)}")
    if not 0 <= args.min_bifurcations <= args.max_bifurcations:
        raise InputError(f"--min-bifurcations/--max-bifurcations: expected 0 <= min <= max, got "
                         f"{args.min_bifurcations} and {args.max_bifurcations}")
    params = dataset_params(args.count, args.seed, args.min_bifurcations, args.max_bifurcations)
    with _output_dir(args.output_dir, "--output-dir") as out:
        for sub in ("meshes", "centerlines", "occupancy"):
            (out / sub).mkdir(exist_ok=True)
        trees = []
        for i, p in enumerate(params):
            name = f"tree_{i:03d}"
            graph = grow_tree(p)
            stats = tree_statistics(graph)
            io.write_mesh(tree_mesh(graph, args.mesh_spacing), out / "meshes" / f"{name}.vtp")
            io.write_centerline(graph, out / "centerlines" / f"{name}.centerline.json",
                                info={"params": p.to_dict(), "statistics": stats})
            io.write_image(tree_occupancy(graph, args.volume_spacing), out / "occupancy" / f"{name}.nrrd")
            trees.append({"name": name, "params": p.to_dict(), "statistics": stats})
            progress.report("generate", (i + 1) / len(params), name)
        write_json(str(out / "dataset.json"), {
            "command": "trees generate-dataset", "count": args.count, "seed": args.seed,
            "min_bifurcations": args.min_bifurcations, "max_bifurcations": args.max_bifurcations,
            "mesh_spacing_mm": args.mesh_spacing, "volume_spacing_mm": args.volume_spacing,
            "files": {"mesh": "meshes/<name>.vtp (RAS mm, watertight)",
                      "centerline": "centerlines/<name>.centerline.json", "occupancy": "occupancy/<name>.nrrd (uint8)"},
            "trees": trees})
    return 0


def fit_paths(args) -> tuple[dict, dict]:
    """Inputs and outputs by argument name (a single-file fit: the INR, its sidecar, the report)."""
    from AnatomyINRLib.io.inr import sidecar_path

    single = not Path(args.input).is_dir()
    outputs = {"--report": args.report}
    if single:
        outputs.update({"--output": args.output, "sidecar of --output": sidecar_path(args.output)})
    return {"MESH_OR_DIR": args.input, "--config": args.config}, outputs


def _mesh_files(folder: Path) -> tuple[list, list]:
    """(mesh files, other visible files) of a folder, sorted by name."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    meshes = [p for p in files if any(p.name.lower().endswith(e) for e in MESH_TYPES)]
    return meshes, [p for p in files if p not in meshes]


def _read_meshes(paths: list, skip_bad: bool) -> tuple[list, list, dict]:
    from AnatomyINRLib import io

    meshes, names, bad = [], [], {}
    for path in paths:
        try:
            meshes.append(io.read_mesh(path))
            names.append(path.name)
        except InputError as exc:
            bad[path.name] = str(exc)
    if bad and not skip_bad:
        listed = "; ".join(f"{n}: {r}" for n, r in bad.items())
        raise InputError(f"MESH_OR_DIR: {len(bad)} unreadable mesh file(s) ({listed}); "
                         "fix or remove them, or pass --skip-bad to fit the others")
    return meshes, names, bad


def run_fit(args, progress) -> int:
    """Read the mesh(es), fit, write one INR file per tree plus config and report."""
    from AnatomyINRLib.core.device import configure_threads
    from AnatomyINRLib.io.configs import read_config
    from AnatomyINRLib.trees import TreeFitConfig
    from AnatomyINRLib.trees.config import fit_preset

    src = Path(args.input)
    if not src.exists():
        raise InputError(f"MESH_OR_DIR {str(src)!r}: does not exist")
    cfg = read_config(args.config, TreeFitConfig) if args.config else fit_preset(args.preset)
    if args.frame:
        cfg = cfg.replace(frame=args.frame)
    configure_threads(args.threads)
    if src.is_dir():
        paths, others = _mesh_files(src)
        if not paths:
            raise InputError(f"MESH_OR_DIR {str(src)!r}: no mesh files ({', '.join(MESH_TYPES)}) in the folder"
                             + (f" (found {len(others)} other file(s), e.g. {others[0].name!r})" if others else ""))
        meshes, names, bad = _read_meshes(paths, args.skip_bad)
        if not meshes:
            raise InputError(f"MESH_OR_DIR {str(src)!r}: none of the {len(paths)} mesh files could be read")
        # under torchrun every rank fits its share (trees.fit_trees) and only rank 0 creates and writes
        # the folder, so the output is still one transaction: any rank failing leaves nothing behind
        from AnatomyINRLib.nn.distributed import leave_group

        try:
            if not _rank0():
                _fit_and_write(meshes, [Path(n).stem for n in names], cfg, args, progress, None, bad, write=False)
                return 0
            with _output_dir(args.output, "--output") as out:
                _fit_and_write(meshes, [Path(n).stem for n in names], cfg, args, progress, out, bad)
            return 0
        finally:
            leave_group()  # every rank exits with its own code, none aborted by a peer's exit
    from AnatomyINRLib import io

    io.format_of(args.output, "inr", writing=True, argument="--output")
    check_outputs(args.output, args.report)
    _fit_and_write([io.read_mesh(src)], [src.stem], cfg, args, progress, None, {}, write=_rank0())
    return 0


def _rank0() -> bool:
    """True unless this process is a torchrun rank other than 0 (those fit but write nothing)."""
    import os

    return int(os.environ.get("RANK", "0")) == 0


def _fit_and_write(meshes, names, cfg, args, progress, out, bad, write: bool = True) -> None:
    from AnatomyINRLib import io
    from AnatomyINRLib.trees import fit_trees

    result = fit_trees(meshes, names=names, config=cfg, skip_bad=args.skip_bad, seed=args.seed, device=args.device,
                       progress=progress)
    if not write:
        return
    targets = [out / f"{n}.safetensors" for n in result.names] if out is not None else [Path(args.output)]
    for fld, meta, target in zip(result.fields, result.metadata, targets):
        io.save_inr(fld, target, metadata=meta)
    report = {"command": "trees fit", "input": str(args.input), "output": str(args.output),
              "unreadable": bad, **result.report}
    if out is not None:
        write_json(str(out / "fit_report.json"), report)
        write_json(str(out / "trees_fit.config.json"), {"command": "trees fit", "config": cfg.to_dict(),
                                                         "seed": args.seed})
    if args.report:
        write_json(args.report, report)

# ----------------------------------------------------------------------------- end of stage 1
