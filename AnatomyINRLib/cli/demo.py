"""``anatomy-inr demo``: the main job on the built-in AAA phantom, scored against its exact surface."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from AnatomyINRLib.cli.common import add_device_arg, config_path, iterations_arg, seed_arg, write_config, write_json
from AnatomyINRLib.core.errors import InputError, OutputError

DEMO_POINTS = 300
DEMO_SEED = 0
# Peak memory per demo point, measured at 10^6 points: writing the .mrk.json (one JSON
# object per point) costs ~4.5 KB per point, sampling ~0.3 KB; rounded up.
_BYTES_PER_POINT = 5000


def register(sub) -> None:
    """Add the ``demo`` parser."""
    p = sub.add_parser("demo", help="fit the built-in AAA phantom from clicked-like points and score it",
                       description="Sample points on the AAA phantom, fit, extract, score, write outputs and a figure.")
    p.add_argument("--output-dir", default="demo-output", metavar="DIR", help="folder for the outputs (created)")
    p.add_argument("--points", type=int, default=DEMO_POINTS, help=f"number of surface points (default {DEMO_POINTS})")
    p.add_argument("--preset", default="default", choices=("fast", "default", "accurate", "paper"))
    p.add_argument("--spacing", type=float, default=0.5, metavar="MM", help="mesh spacing in mm (default 0.5)")
    p.add_argument("--seed", type=seed_arg, default=DEMO_SEED, help="random seed")
    p.add_argument("--iterations", type=iterations_arg, default=None, help="override the preset's iteration budget")
    add_device_arg(p)
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    p.set_defaults(func=run)


def _prepare_dir(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"--output-dir {path!r}: cannot create folder ({exc.strerror})") from exc
    return out


def run(args, progress) -> int:
    """Phantom → points → fit → mesh + labelmap → scores → files + summary."""
    from AnatomyINRLib import io
    from AnatomyINRLib.core.device import configure_threads
    from AnatomyINRLib.meshing import make_grid, mesh_from_field, mesh_quality
    from AnatomyINRLib.metrics.evaluate import score_surface
    from AnatomyINRLib.phantoms import get_phantom
    from AnatomyINRLib.surface import api

    if not args.spacing > 0:
        raise InputError(f"--spacing: expected a positive number of mm, got {args.spacing}")
    if args.points < 10:
        raise InputError(f"--points: expected at least 10, got {args.points}")
    from AnatomyINRLib.core.resources import check_fits_in_memory

    check_fits_in_memory("--points", args.points * _BYTES_PER_POINT / 2**20,
                         f"sampling, saving and fitting {args.points} points")
    out = _prepare_dir(args.output_dir)
    configure_threads()
    t0 = time.perf_counter()
    phantom = get_phantom("aaa")
    points = phantom.sample_surface(args.points, seed=args.seed)
    io.write_points(points, out / "aaa_points.mrk.json")
    fit = api.fit_points(points.points, preset=args.preset, seed=args.seed, device=args.device,
                         iterations=args.iterations, progress=progress)
    mesh = api.extract_mesh(fit.field, args.spacing, points=points.points, progress=progress)
    fit_seconds = time.perf_counter() - t0
    reference = make_grid(phantom.bounds(), 1.0, padding_mm=2.0)
    labels = api.labelmap(fit.field, reference, progress=progress)
    score_spacing = max(0.5, args.spacing)
    ref_mesh = mesh_from_field(phantom, phantom.bounds(), score_spacing)
    scores = score_surface(mesh, ref_mesh, pred_inside=fit.field, ref_inside=phantom, spacing_mm=score_spacing)
    quality = {k: (v.item() if hasattr(v, "item") else v) for k, v in mesh_quality(mesh).items()}
    io.write_mesh(mesh, out / "aaa_surface.vtp")
    io.write_image(labels, out / "aaa_labelmap.nrrd")
    metrics = {"phantom": "aaa", "n_points": args.points, "preset": args.preset, "seed": args.seed,
               "fit_and_extract_seconds": round(fit_seconds, 2), "total_seconds": None,
               "scores": scores, "mesh_quality": quality, "fit_report": {k: v for k, v in fit.report.items()
                                                                         if k not in ("config",)},
               "config": fit.config.to_dict()}
    # The figure uses 1.5 mm meshes: matplotlib is slow with 200k triangles and the eye cannot tell.
    _figure(out / "aaa_demo.png", api.extract_mesh(fit.field, 1.5, points=points.points),
            mesh_from_field(phantom, phantom.bounds(), 1.5), points.points, fit.residuals_mm, scores)
    metrics["total_seconds"] = round(time.perf_counter() - t0, 2)
    write_json(str(out / "aaa_metrics.json"), metrics)
    write_config(config_path(out / "aaa_surface.vtp"), "demo", fit.config, phantom="aaa", points=args.points,
                 seed=args.seed, spacing_mm=args.spacing, iterations=args.iterations)
    _summary(out, args, scores, quality, fit_seconds, metrics["total_seconds"])
    return 0


def _figure(path, mesh, ref_mesh, points, residuals, scores) -> None:
    import warnings

    from AnatomyINRLib.core.errors import DependencyError
    from AnatomyINRLib.io.figures import render_meshes_png

    title = (f"AAA phantom from {len(points)} points: Dice {scores['dice']:.3f}, "
             f"ASD {scores['asd']:.2f} mm, HD95 {scores['hd95']:.2f} mm")
    try:
        render_meshes_png(path, [ref_mesh, mesh], ["exact phantom surface", "fitted INR surface (points: residual)"],
                          points=points, point_colors=residuals, suptitle=title)
    except DependencyError as exc:
        warnings.warn(f"figure skipped: {exc}", stacklevel=2)


def _summary(out, args, scores, quality, fit_seconds, total) -> None:
    lines = [
        f"AnatomyINR demo: AAA phantom, {args.points} surface points, preset {args.preset}",
        f"  fit + extraction : {fit_seconds:.1f} s (total {total:.1f} s)",
        f"  Dice             : {scores['dice']:.4f}",
        f"  ASD / HD95       : {scores['asd']:.3f} / {scores['hd95']:.3f} mm",
        f"  volume           : {scores['volume_pred_mm3']:.0f} mm3 (exact {scores['volume_ref_mm3']:.0f} mm3)",
        f"  watertight       : {quality.get('watertight')}, manifold: {quality.get('manifold')}, "
        f"components: {quality.get('n_components')}",
        f"  outputs in       : {out}/ (aaa_surface.vtp, aaa_labelmap.nrrd, aaa_metrics.json, aaa_surface.config.json, aaa_demo.png)",
    ]
    stream = sys.stderr if args.json_progress else sys.stdout
    print("\n".join(lines), file=stream)
