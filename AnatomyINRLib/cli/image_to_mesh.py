"""``anatomy-inr image-to-mesh phantom``: shape from image (ImplicitMeshNet) data.

* ``phantom`` — write a seeded cardiac CT-like phantom: ``image.nrrd`` (int16 HU),
  ``labels.nrrd`` (1 = left-atrium-like, 2 = left-ventricle-like) and ``phantom.config.json``
  (seed, size, pose, intensities, label volumes).

Exit codes as every subcommand: 0 success, 2 bad input, 3 output not writable, 4 runtime
failure, 130 cancelled. Nothing is written when anything fails (one output transaction).
"""

from __future__ import annotations

from pathlib import Path

from AnatomyINRLib.cli.common import check_outputs, make_output_folder, seed_arg, write_json

PHANTOM_FILES = ("image.nrrd", "labels.nrrd", "phantom.config.json")


def register(sub) -> None:
    """Add the ``image-to-mesh`` group and its commands."""
    group = sub.add_parser("image-to-mesh", help="shape from image (ImplicitMeshNet): phantom data",
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
