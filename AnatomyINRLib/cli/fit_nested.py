"""``anatomy-inr fit-nested``: 2–3 point sets → nested surfaces (lumen ⊂ inner ⊂ outer wall)."""

from __future__ import annotations


from AnatomyINRLib.cli.common import add_common_run_args, check_outputs, write_config, write_json
from AnatomyINRLib.core.errors import InputError


def register(sub) -> None:
    """Add the ``fit-nested`` parser."""
    p = sub.add_parser(
        "fit-nested", help="fit nested walls (lumen, inner, outer) jointly; nesting guaranteed",
        description="Fit 2 or 3 nested surfaces with one network (nesting holds at every point by "
                    "construction), extract them on one grid and report volumes, Dmax, thickness and "
                    "measured nesting violations. Writes PREFIX_<name>.vtp per surface, innermost first, and PREFIX.config.json.")
    p.add_argument("--points", nargs="+", required=True, metavar="P",
                   help="2 or 3 point files, innermost first (.mrk.json .fcsv .csv .txt .npy); in another order "
                        "they are reordered by the volume of their convex hulls, with a warning (given --names "
                        "follow their files)")
    p.add_argument("--names", nargs="+", default=None, metavar="N",
                   help="surface names, innermost first (default lumen inner outer; lumen outer for two)")
    p.add_argument("--output-prefix", required=True, metavar="PREFIX", help="outputs are PREFIX_<name>.vtp")
    p.add_argument("--min-thickness", type=float, default=0.0, metavar="MM",
                   help="minimum distance between consecutive surfaces in mm (default 0)")
    p.add_argument("--preset", default="default", choices=("fast", "default", "accurate", "paper"))
    p.add_argument("--spacing", type=float, default=0.5, metavar="MM", help="mesh grid spacing in mm (default 0.5)")
    p.add_argument("--save-inr", metavar="FILE", help="also save the fitted K-output field (.safetensors or .pt)")
    p.add_argument("--no-dmax", action="store_true", help="skip the maximum-diameter measurement")
    add_common_run_args(p)
    p.set_defaults(func=run, paths=paths)


def output_paths(prefix: str, names: list) -> list:
    """PREFIX_<name>.vtp for every surface."""
    return [f"{prefix}_{name}.vtp" for name in names]


def config_file(prefix: str) -> str:
    """PREFIX.config.json: the fit configuration shared by all surfaces."""
    return f"{prefix}.config.json"


def paths(args) -> tuple[dict, dict]:
    """Inputs and outputs by argument name: main() refuses any output that is an input or another output."""
    from AnatomyINRLib.io.inr import sidecar_path
    from AnatomyINRLib.nested.fit import check_names

    names = check_names(args.names, len(args.points))
    inputs = {f"--points[{i}]": p for i, p in enumerate(args.points)}
    outputs = {f"surface {name!r} of --output-prefix": path for name, path in zip(names, output_paths(args.output_prefix, names))}
    outputs.update({"config file of --output-prefix": config_file(args.output_prefix), "--save-inr": args.save_inr,
                    "sidecar of --save-inr": args.save_inr and sidecar_path(args.save_inr), "--report": args.report})
    return inputs, outputs


def _validate(args) -> list:
    from AnatomyINRLib.io import format_of
    from AnatomyINRLib.nested.fit import check_names

    if not 2 <= len(args.points) <= 3:
        raise InputError(f"--points: expected 2 or 3 point files (innermost first), got {len(args.points)}")
    names = check_names(args.names, len(args.points))
    if not (args.min_thickness == args.min_thickness and args.min_thickness >= 0):
        raise InputError(f"--min-thickness: expected a number of mm >= 0, got {args.min_thickness}")
    if not (args.spacing == args.spacing and args.spacing > 0):
        raise InputError(f"--spacing: expected a positive number of mm, got {args.spacing}")
    if args.iterations is not None and args.iterations < 1:
        raise InputError(f"--iterations: expected a positive integer, got {args.iterations}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads: expected >= 1, got {args.threads}")
    if args.save_inr:
        format_of(args.save_inr, "inr", writing=True, argument="--save-inr")
    check_outputs(*output_paths(args.output_prefix, names), args.report, args.save_inr, config_file(args.output_prefix))
    return names


def run(args, progress) -> int:
    """Read the point sets, reconstruct, write one mesh per surface and the report."""
    import numpy as np

    from AnatomyINRLib import io
    from AnatomyINRLib.core.device import configure_threads
    from AnatomyINRLib.nested.api import reconstruct_nested, resolve_config

    names = _validate(args)
    config = resolve_config(args.preset, None, args.min_thickness)
    point_sets = [io.read_points(p) for p in args.points]
    configure_threads(args.threads)
    result = reconstruct_nested(point_sets, names=names, config=config, spacing_mm=args.spacing, seed=args.seed,
                                device=args.device, iterations=args.iterations, measure_dmax=not args.no_dmax,
                                progress=progress)
    names = result.names   # reordered with their point sets if the files were not innermost first
    paths = output_paths(args.output_prefix, names)
    # main() runs this inside one output transaction: on any failure nothing here becomes visible.
    for mesh, path in zip(result.meshes, paths):
        io.write_mesh(mesh, path)
    if args.save_inr:
        pts = np.concatenate([p.points for p in point_sets])   # lets `extract` mesh the data, not the cube
        io.save_inr(result.fit.field, args.save_inr, {"names": names, "min_thickness_mm": args.min_thickness,
                                                       "points_bounds_mm": [pts.min(axis=0), pts.max(axis=0)],
                                                       "config": result.report["config"]})
    report = {"command": "fit-nested", "points_files": [str(args.points[i]) for i in result.report["input_order"]],
              "outputs": paths,
              "seed": args.seed, "preset": args.preset, **result.report}
    if args.report:
        write_json(args.report, report)
    write_config(config_file(args.output_prefix), "fit-nested", result.config, names=names, seed=args.seed,
                 spacing_mm=args.spacing, iterations=args.iterations, outputs=paths)
    return 0
