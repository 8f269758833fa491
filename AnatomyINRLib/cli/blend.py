"""``anatomy-inr blend``: meshes and point sets → one smooth watertight surface."""

from __future__ import annotations

from pathlib import Path

from AnatomyINRLib.cli.common import add_common_run_args, check_outputs, config_path, write_config, write_json
from AnatomyINRLib.core.errors import InputError


def register(sub) -> None:
    """Add the ``blend`` parser."""
    p = sub.add_parser(
        "blend", help="blend vessels (closed/open meshes, point sets) into one watertight surface",
        description="Turn every input into a signed distance field (exact for closed meshes, a fitted INR for "
                    "open meshes and point sets), unite them with a smooth minimum of radius --radius and "
                    "extract one surface. Inputs are recognised by extension: meshes .vtp .vtk .stl .ply .obj, "
                    "points .mrk.json .fcsv .csv .txt .npy.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="meshes and/or point files")
    p.add_argument("--output", required=True, metavar="MESH", help="output mesh: .vtp .vtk .stl .ply .obj")
    p.add_argument("--radius", type=float, default=2.0, metavar="MM", help="fillet radius k in mm (default 2; 0 = plain union)")
    p.add_argument("--radii", type=float, nargs="+", default=None, metavar="MM",
                   help="per-input fillet radius (one per input after --split-by): where that input joins the ones before it")
    p.add_argument("--spacing", type=float, default=0.5, metavar="MM", help="output grid spacing in mm (default 0.5)")
    p.add_argument("--clip-plane", type=float, nargs=6, action="append", default=[],
                   metavar=("OX", "OY", "OZ", "NX", "NY", "NZ"),
                   help="cut the result flat: plane point (RAS mm) and normal pointing to the removed side; repeatable")
    p.add_argument("--split-by", metavar="ARRAY", help="split mesh inputs into branches by this integer point array (e.g. GroupIds)")
    p.add_argument("--no-clip-ends", action="store_true", help="do not cut open-mesh INRs at their open ends")
    p.add_argument("--remesh-edge", type=float, default=0.0, metavar="MM", help="target mean edge length (re-extracts; 0 = off)")
    p.add_argument("--preset", default=None, choices=("fast", "default", "accurate", "paper"),
                   help="INR fit preset for open meshes and point sets, used as defined (default: blend's own "
                        "settings, the default preset with 400 iterations and lighter sampling)")
    p.add_argument("--input-frame", nargs=2, action="append", default=[], metavar=("INDEX", "FRAME"),
                   help="read INPUT number INDEX (0 = first) in FRAME, LPS or RAS, whatever the file says; "
                        "repeatable. Files without a frame tag are read as LPS (meshes, like Slicer) or RAS "
                        "(.csv .txt .npy); the report says which frame each input was read in")
    p.add_argument("--allow-disjoint", action="store_true",
                   help="keep inputs that touch no other input as separate pieces (the report then says ok: false); "
                        "by default such inputs are refused with exit 2, naming them")
    add_common_run_args(p)
    p.set_defaults(func=run, paths=paths)


def paths(args) -> tuple[dict, dict]:
    """Inputs and outputs by argument name: main() refuses any output that is an input or another output."""
    inputs = {f"INPUT[{i}]": p for i, p in enumerate(args.inputs)}
    outputs = {"--output": args.output, "config file of --output": config_path(args.output), "--report": args.report}
    return inputs, outputs


def _validate(args) -> None:
    for name in ("radius", "spacing", "remesh_edge"):
        value = getattr(args, name)
        if not (value == value and value >= 0) or (name == "spacing" and value <= 0):
            raise InputError(f"--{name.replace('_', '-')}: expected a {'positive' if name == 'spacing' else 'non-negative'} number of mm, got {value}")
    if args.radii is not None and any(not (r == r and r >= 0) for r in args.radii):
        raise InputError(f"--radii: expected non-negative numbers of mm, got {args.radii}")
    if args.iterations is not None and args.iterations < 1:
        raise InputError(f"--iterations: expected a positive integer, got {args.iterations}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads: expected >= 1, got {args.threads}")
    from AnatomyINRLib.io import format_of

    format_of(args.output, "mesh", writing=True, argument="--output")
    check_outputs(args.output, args.report, str(config_path(args.output)))


def input_frames(pairs, n_inputs: int) -> dict:
    """--input-frame INDEX FRAME pairs → {index: "LPS"|"RAS"}."""
    frames = {}
    for index, frame in pairs:
        if not index.isdigit() or int(index) >= n_inputs:
            raise InputError(f"--input-frame: INDEX expected an integer in [0, {n_inputs - 1}], got {index!r}")
        if frame.upper() not in ("LPS", "RAS"):
            raise InputError(f"--input-frame: FRAME expected LPS or RAS, got {frame!r}")
        frames[int(index)] = frame.upper()
    return frames


def read_inputs(paths, split_by=None, frames=None, read_in=None) -> list:
    """BlendInputs from files (kind by extension); mesh files optionally split into branches.

    ``frames`` maps an input index to the frame to read it in (default: the file's);
    ``read_in``, if given, receives one {"input", "frame", "source"} per file.
    """
    from AnatomyINRLib import io
    from AnatomyINRLib.blend.sources import BlendInput, split_by_label

    items, frames = [], frames or {}
    for index, path in enumerate(paths):
        ext = io.file_extension(path)
        name = Path(path).name
        system = frames.get(index, "auto")
        if ext in io.SUPPORTED["mesh"]:
            mesh, frame, source = io.read_mesh_with_frame(path, coordinate_system=system)
            if split_by:
                items += [BlendInput(part, name=f"{name}[{split_by}={lab}]") for lab, part in split_by_label(mesh, split_by)]
            else:
                items.append(BlendInput(mesh, name=name))
        elif ext in io.SUPPORTED["points"]:
            points, frame, source = io.read_points_with_frame(path, coordinate_system=system)
            items.append(BlendInput(points, name=name))
        else:
            known = ", ".join(io.SUPPORTED["mesh"] + io.SUPPORTED["points"])
            raise InputError(f"INPUT {path!r}: unknown extension {ext or '(none)'!r}; expected one of {known}")
        if read_in is not None:
            read_in.append({"input": name, "frame": frame, "source": source})
    return items


_SOURCE = {"file": "stated in the file", "default": "no frame in the file: assumed", "given": "--input-frame"}


def _warn_mixed_frames(read_in: list) -> None:
    """Inputs read in different frames are the usual cause of pieces that miss each other: say so."""
    import warnings

    if len({r["frame"] for r in read_in}) > 1:
        listed = ", ".join(f"{r['input']} {r['frame']} ({_SOURCE[r['source']]})" for r in read_in)
        warnings.warn(f"inputs read in different frames: {listed}; if one is wrong use --input-frame INDEX LPS|RAS",
                      stacklevel=2)


def run(args, progress) -> int:
    """Read inputs, blend, write the mesh and the report (quality is always reported)."""
    from AnatomyINRLib import io
    from AnatomyINRLib.blend import BlendConfig, ClipPlane, blend_surfaces
    from AnatomyINRLib.core.device import configure_threads

    _validate(args)
    config = BlendConfig(radius_mm=args.radius, spacing_mm=args.spacing, fit_preset=args.preset,
                         clip_free_ends=not args.no_clip_ends, clip_shared_ends=not args.no_clip_ends,
                         remesh_edge_mm=args.remesh_edge, fit_iterations=args.iterations,
                         allow_disjoint=args.allow_disjoint)
    config.validate()
    planes = [ClipPlane(p[:3], p[3:]) for p in args.clip_plane]
    read_in: list = []
    items = read_inputs(args.inputs, args.split_by, input_frames(args.input_frame, len(args.inputs)), read_in)
    _warn_mixed_frames(read_in)
    if args.radii is not None:
        if len(args.radii) != len(items):
            raise InputError(f"--radii: expected {len(items)} values (one per input), got {len(args.radii)}")
        for item, r in zip(items, args.radii):
            item.radius_mm = r
    configure_threads(args.threads)
    result = blend_surfaces(items, config=config, global_planes=planes, seed=args.seed, device=args.device, progress=progress)
    io.write_mesh(result.mesh, args.output)
    report = {"command": "blend", "inputs": list(map(str, args.inputs)), "output": str(args.output),
              "seed": args.seed, "frames": read_in, **result.report}
    if args.report:
        write_json(args.report, report)
    write_config(config_path(args.output), "blend", config, inputs=list(map(str, args.inputs)), seed=args.seed,
                 split_by=args.split_by, radii=args.radii, global_planes=[p.to_dict() for p in planes])
    if not result.report["surface"]["ok"]:
        import sys

        q = result.report["surface"]
        print(f"anatomy-inr: warning: surface check failed (watertight={q['watertight']}, manifold={q['manifold']}, "
              f"components={q['n_components_before_selection']}→{q['n_components']}, "
              f"self-intersections={q['self_intersections']})", file=sys.stderr)
    return 0
