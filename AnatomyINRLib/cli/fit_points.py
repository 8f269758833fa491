"""``anatomy-inr fit-points``: clicked points → watertight surface (+ labelmap, SDF, INR)."""

from __future__ import annotations

import time

from AnatomyINRLib.cli.common import (add_common_run_args, check_outputs, check_reference_overlap, config_path,
                                      write_config, write_json)
from AnatomyINRLib.core.errors import InputError


def register(sub) -> None:
    """Add the ``fit-points`` parser."""
    p = sub.add_parser("fit-points", help="fit a smooth closed surface through surface points (IGR)",
                       description="Fit a signed-distance network to surface points and extract a watertight mesh.")
    p.add_argument("points", metavar="POINTS", help="points file: .mrk.json .fcsv .csv .txt .npy")
    p.add_argument("--output", required=True, metavar="MESH", help="output mesh: .vtp .vtk .stl .ply .obj")
    p.add_argument("--reference", metavar="IMAGE", help="reference image whose geometry the labelmap/SDF use")
    p.add_argument("--output-labelmap", metavar="LABELMAP", help="labelmap on the reference geometry (.nrrd .nii.gz .mha)")
    p.add_argument("--output-sdf", metavar="IMAGE", help="signed distance image (mm) on the reference geometry")
    p.add_argument("--save-inr", metavar="FILE", help="save the fitted field (.safetensors or .pt, plus .json)")
    p.add_argument("--init-inr", metavar="FILE", help="warm start from a previously saved field")
    p.add_argument("--spacing", type=float, default=0.5, metavar="MM", help="mesh grid spacing in mm (default 0.5)")
    p.add_argument("--preset", default="default", choices=("fast", "default", "accurate", "paper"))
    p.add_argument("--config", metavar="JSON", help="full fit configuration (overrides --preset)")
    p.add_argument("--eikonal-weight", type=float, default=None, metavar="W",
                   help="smoothness: weight of the eikonal term (preset default if omitted)")
    p.add_argument("--outlier-threshold", type=float, default=None, metavar="MM",
                   help="flag points farther than this from the surface (mm)")
    p.add_argument("--keep-all-components", action="store_true", help="keep every connected piece of the mesh")
    add_common_run_args(p)
    p.set_defaults(func=run, paths=paths)


def paths(args) -> tuple[dict, dict]:
    """Inputs and outputs by argument name: main() refuses any output that is an input or another output."""
    from AnatomyINRLib.io.inr import sidecar_path

    inputs = {"POINTS": args.points, "--reference": args.reference, "--config": args.config,
              "--init-inr": args.init_inr, "sidecar of --init-inr": args.init_inr and sidecar_path(args.init_inr)}
    outputs = {"--output": args.output, "config file of --output": config_path(args.output),
               "--output-labelmap": args.output_labelmap, "--output-sdf": args.output_sdf,
               "--save-inr": args.save_inr, "sidecar of --save-inr": args.save_inr and sidecar_path(args.save_inr),
               "--report": args.report}
    return inputs, outputs


def _validate_args(args) -> None:
    if args.spacing is None or not args.spacing > 0:
        raise InputError(f"--spacing: expected a positive number of mm, got {args.spacing}")
    if args.iterations is not None and args.iterations < 1:
        raise InputError(f"--iterations: expected a positive integer, got {args.iterations}")
    if (args.output_labelmap or args.output_sdf) and not args.reference:
        raise InputError("--reference: required with --output-labelmap or --output-sdf (it defines the grid)")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads: expected >= 1, got {args.threads}")


def _check_output_types(args) -> None:
    from AnatomyINRLib.io import format_of

    format_of(args.output, "mesh", writing=True, argument="--output")
    for path, name in ((args.output_labelmap, "--output-labelmap"), (args.output_sdf, "--output-sdf")):
        if path:
            format_of(path, "image", writing=True, argument=name)
    if args.save_inr:
        format_of(args.save_inr, "inr", writing=True, argument="--save-inr")
    if args.report:
        check_outputs(args.report)
    check_outputs(args.output, args.output_labelmap, args.output_sdf, args.save_inr, str(config_path(args.output)))


def load_config(args):
    """The fit configuration from --config / --preset plus the small overrides."""
    from AnatomyINRLib.io.configs import read_config
    from AnatomyINRLib.surface.api import resolve_config
    from AnatomyINRLib.surface.config import SurfaceFitConfig

    cfg = read_config(args.config, SurfaceFitConfig) if args.config else resolve_config(args.preset)
    if args.eikonal_weight is not None:
        cfg.loss = cfg.loss.replace(eikonal_weight=args.eikonal_weight)
    if args.outlier_threshold is not None:
        cfg = cfg.replace(outlier_threshold_mm=args.outlier_threshold)
    cfg.validate()
    return cfg


def run(args, progress) -> int:
    """Read, fit, extract, write; every input is checked before the fit starts."""
    from AnatomyINRLib import io
    from AnatomyINRLib.core.device import configure_threads
    from AnatomyINRLib.surface import api

    _validate_args(args)
    _check_output_types(args)
    cfg = load_config(args)
    points = io.read_points(args.points)
    reference = io.read_image(args.reference) if args.reference else None
    if reference is not None:
        check_reference_overlap(reference, points.points.min(axis=0), points.points.max(axis=0), "the points")
    init = io.load_inr(args.init_inr)[0] if args.init_inr else None
    # The mesh's grid must fit in memory: know it now, not after minutes of fitting.
    api.check_extraction_memory(points.points, args.spacing, cfg, argument="--spacing")
    configure_threads(args.threads)
    t0 = time.perf_counter()
    fit = api.fit_points(points, config=cfg, init_field=init, seed=args.seed, device=args.device,
                         iterations=args.iterations, progress=progress)
    mesh = api.extract_mesh(fit.field, args.spacing, points=points.points,
                            largest_component=not args.keep_all_components, progress=progress)
    outputs = _write_outputs(args, fit, mesh, reference, progress)
    report = _final_report(fit, mesh, args, time.perf_counter() - t0, outputs)
    if args.report:
        write_json(args.report, report)
    write_config(config_path(args.output), "fit-points", cfg, seed=args.seed, spacing_mm=args.spacing,
                 iterations=args.iterations)
    return 0


def _write_outputs(args, fit, mesh, reference, progress) -> dict:
    """Compute every output first, then write them."""
    from AnatomyINRLib import io
    from AnatomyINRLib.surface import api

    images = {}
    if args.output_labelmap:
        images[args.output_labelmap] = api.labelmap(fit.field, reference, progress=progress)
    if args.output_sdf:
        images[args.output_sdf] = api.sdf_image(fit.field, reference, progress=progress)
    # main() runs this inside one output transaction: on any failure nothing here becomes visible.
    written: list[str] = []
    io.write_mesh(mesh, args.output)
    written.append(args.output)
    for path, image in images.items():
        io.write_image(image, path)
        written.append(path)
    if args.save_inr:
        # The points' box lets `extract` mesh the same box as here (not the whole normalisation cube).
        pts = fit.points.points
        io.save_inr(fit.field, args.save_inr, {"config": fit.config.to_dict(), "fit_report": _short(fit.report),
                                               "points_bounds_mm": [pts.min(axis=0), pts.max(axis=0)]})
        written.append(args.save_inr)
    names = {args.output: "mesh", args.output_labelmap: "labelmap", args.output_sdf: "sdf", args.save_inr: "inr"}
    return {names[p]: p for p in written}


def _short(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("config", "loss_history")}


def _final_report(fit, mesh, args, seconds: float, outputs: dict) -> dict:
    from AnatomyINRLib.meshing import mesh_quality

    quality = mesh_quality(mesh)
    report = dict(fit.report)
    report.update({
        "command": "fit-points",
        "points_file": str(args.points),
        "n_points": int(len(fit.points)),
        "seconds": round(seconds, 3),
        "spacing_mm": float(args.spacing),
        "area_mm2": float(mesh.area()),
        "volume_mm3": float(mesh.signed_volume()),
        "mesh": {"vertices": mesh.n_vertices, "faces": mesh.n_faces, **_plain_quality(quality)},
        "residuals_mm": [round(float(r), 4) for r in fit.residuals_mm],
        "outliers": [bool(o) for o in fit.outliers],
        "outputs": outputs,
    })
    return report


def _plain_quality(quality: dict) -> dict:
    import numpy as np

    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in quality.items()}
