"""``anatomy-inr trees compress``: one tree mesh → its occupancy INR, re-meshed and compared with the mesh.

Registered into the ``trees`` group by :mod:`AnatomyINRLib.cli.trees`. One run does what
``trees fit MESH --output INR`` then ``extract INR --spacing MM`` do, and adds the numbers a
user needs to judge the compression (the Slicer module "Tree synthesis" runs it):

* size: the INR file pair (``.safetensors`` + ``.json`` sidecar) against the source mesh as a
  ``.vtp`` file and as raw float32 vertices + int32 triangles (the benchmark's definitions,
  ``benchmarks/trees_stage1.py``) and against the input file as given;
* error: symmetric surface distances of the re-extracted mesh to the source mesh
  (``metrics.surface.surface_distances``: ASD, HD95, Chamfer; mm, 20k samples per surface).

Exit codes as every subcommand: 0 success, 2 bad input (an open or non-manifold mesh: nothing is
written), 3 output not writable, 4 runtime failure, 130 cancelled.
"""

from __future__ import annotations

import contextvars
import tempfile
from pathlib import Path

from AnatomyINRLib.cli.common import (add_device_arg, check_outputs, config_path, seed_arg, threads_arg, write_config,
                                     write_json)
from AnatomyINRLib.core.errors import InputError

SURFACE_SAMPLES = 20_000  # per surface, as benchmarks/trees_stage1.py (sampling error of ASD ~ 1 %)


def register_commands(cmds) -> None:
    """Add ``compress`` to the ``trees`` group (``cli.trees.register``)."""
    p = cmds.add_parser("compress", help="fit one tree mesh, re-mesh the INR and report size and error",
                        description="Fit an occupancy INR to one closed mesh (as 'trees fit'), write it, mesh it "
                                    "again at --spacing (as 'extract') and report INR bytes against the mesh's "
                                    "bytes and the surface distance (ASD, HD95) of the new mesh to the source.")
    p.add_argument("input", metavar="MESH", help="closed tree mesh (.vtp .vtk .stl .ply .obj), RAS mm")
    p.add_argument("--output-inr", required=True, metavar="INR", help="INR file (.safetensors/.pt) + .json sidecar")
    p.add_argument("--output", required=True, metavar="MESH", help="the re-extracted mesh (.vtp .vtk .stl .ply .obj)")
    p.add_argument("--spacing", type=float, default=0.3, metavar="MM", help="re-extraction spacing in mm (default 0.3)")
    p.add_argument("--preset", default="fast", choices=("paper", "fast", "tiny"), help="stage-1 preset (default fast)")
    p.add_argument("--config", metavar="JSON", help="full TreeFitConfig (overrides --preset)")
    p.add_argument("--iterations", type=int, metavar="N", help="cap the fit at N iterations (quick previews, tests)")
    p.add_argument("--seed", type=seed_arg, default=0,
                   help="random seed of the fit and the distance samples (default 0)")
    add_device_arg(p)
    p.add_argument("--threads", type=threads_arg, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--report", metavar="JSON", help="write the size and error report here")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    p.set_defaults(func=run_compress, paths=compress_paths)


def compress_paths(args) -> tuple[dict, dict]:
    """Inputs and outputs by argument name (main() refuses an output that is an input or another output)."""
    from AnatomyINRLib.io.inr import sidecar_path

    return ({"MESH": args.input, "--config": args.config},
            {"--output-inr": args.output_inr, "sidecar of --output-inr": sidecar_path(args.output_inr),
             "--output": args.output, "config file of --output": config_path(args.output), "--report": args.report})


def _config(args):
    """The fit configuration: --config, else --preset; --iterations caps the budget (and the minimum)."""
    from AnatomyINRLib.io.configs import read_config
    from AnatomyINRLib.trees import TreeFitConfig
    from AnatomyINRLib.trees.config import fit_preset

    cfg = read_config(args.config, TreeFitConfig) if args.config else fit_preset(args.preset)
    if args.iterations is not None:
        if args.iterations < 1:
            raise InputError(f"--iterations: expected a positive number of iterations, got {args.iterations}")
        cfg.optim.iterations = args.iterations
        cfg.optim.min_iterations = min(cfg.optim.min_iterations, args.iterations)
        cfg.optim.warmup = min(cfg.optim.warmup, args.iterations)
    cfg.validate()
    return cfg


def file_bytes(write, suffix: str) -> int:
    """Bytes of every file ``write(path)`` writes for ``<scratch>/file<suffix>`` (its sidecars included).

    Written into a scratch folder in a fresh context, that is outside the run's output
    transaction (which would only stage them), so the files exist to be measured.
    """
    with tempfile.TemporaryDirectory() as tmp:
        contextvars.Context().run(write, Path(tmp) / f"file{suffix}")
        return sum(p.stat().st_size for p in Path(tmp).iterdir())


def run_compress(args, progress) -> int:
    """Fit, write the INR, re-extract, compare, write the mesh, its config and the report (all or nothing)."""
    import numpy as np

    from AnatomyINRLib import io
    from AnatomyINRLib.core.device import configure_threads
    from AnatomyINRLib.meshing import MeshingConfig
    from AnatomyINRLib.surface.api import extract_mesh
    from AnatomyINRLib.trees import fit_trees

    if not args.spacing > 0:
        raise InputError(f"--spacing: expected a positive number of mm, got {args.spacing}")
    io.format_of(args.output_inr, "inr", writing=True, argument="--output-inr")
    io.format_of(args.output, "mesh", writing=True, argument="--output")
    check_outputs(args.output_inr, args.output, args.report)
    source_path = Path(args.input)
    if not source_path.is_file():
        raise InputError(f"MESH {args.input!r}: does not exist or is not a file")
    cfg = _config(args)
    configure_threads(args.threads)
    source = io.read_mesh(source_path)
    fit = fit_trees([source], names=[source_path.stem], config=cfg, seed=args.seed, device=args.device,
                    progress=progress)
    field, meta = fit.fields[0], fit.metadata[0]
    io.save_inr(field, args.output_inr, metadata=meta)
    meshing = MeshingConfig(spacing_mm=float(args.spacing))  # what 'anatomy-inr extract' meshes the file with
    mesh = extract_mesh(field, config=meshing, points=np.asarray(meta["points_bounds_mm"], dtype=np.float64),
                        progress=progress)
    progress.report("compare", 0.0, "surface distances to the source mesh")
    report = compression_report(args, field, meta, source, mesh, fit.report)
    progress.report("compare", 1.0, f"ASD {report['error']['asd_mm']:.3f} mm, "
                                    f"INR {report['size']['compression_vs_vtp']:.1f}x smaller than the mesh")
    io.write_mesh(mesh, args.output)
    write_config(config_path(args.output), "trees compress", meshing, inr=str(args.output_inr),
                 fit=cfg.to_dict(), seed=args.seed)
    if args.report:
        write_json(args.report, report)
    return 0


def compression_report(args, field, meta: dict, source, mesh, fit_report: dict) -> dict:
    """Sizes (bytes) and surface error (mm) of the compressed tree against its source mesh."""
    from AnatomyINRLib import io
    from AnatomyINRLib.core.device import restore_ieee_denormals
    from AnatomyINRLib.metrics.surface import surface_distances

    restore_ieee_denormals()  # the distance queries use scipy's cKDTree (see core.device)
    distances = surface_distances(mesh, source, n_samples=SURFACE_SAMPLES, seed=args.seed)
    inr_bytes = file_bytes(lambda p: io.save_inr(field, p, metadata=meta), ".safetensors")
    vtp_bytes = file_bytes(lambda p: io.write_mesh(source, p), ".vtp")
    raw_bytes = int(source.n_vertices * 3 * 4 + source.n_faces * 3 * 4)
    size = {"inr_bytes": inr_bytes, "source_file_bytes": Path(args.input).stat().st_size,
            "source_vtp_bytes": vtp_bytes, "source_raw_bytes": raw_bytes,
            "compression_vs_vtp": vtp_bytes / inr_bytes, "compression_vs_raw": raw_bytes / inr_bytes,
            "parameters": fit_report["parameters"]}
    error = {"asd_mm": distances["asd"], "hd95_mm": distances["hd95"], "hd_mm": distances["hd"],
             "chamfer_l2_mm": distances["chamfer_l2"], "samples_per_surface": SURFACE_SAMPLES}
    per_tree = fit_report["per_tree"][0]
    return {"command": "trees compress", "input": str(args.input), "output_inr": str(args.output_inr),
            "output": str(args.output), "spacing_mm": float(args.spacing), "size": size, "error": error,
            "source_mesh": {"vertices": source.n_vertices, "faces": source.n_faces},
            "mesh": {"vertices": mesh.n_vertices, "faces": mesh.n_faces},
            "fit": {"iterations": per_tree["iterations"], "converged": per_tree["converged"],
                    "seconds": per_tree["seconds"], "heldout_iou": per_tree["heldout_iou"],
                    "final_loss": per_tree["final_loss"], "seed": args.seed, "device": fit_report["device"],
                    "config": fit_report["config"]}}
