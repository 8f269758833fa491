"""``anatomy-inr extract``: re-mesh a saved field at any spacing (and labelmap)."""

from __future__ import annotations

from AnatomyINRLib.cli.common import check_outputs, check_reference_overlap, config_path, write_config, write_json
from AnatomyINRLib.core.errors import InputError


def register(sub) -> None:
    """Add the ``extract`` parser."""
    p = sub.add_parser("extract", help="extract a mesh (and labelmap) from a saved field",
                       description="Mesh the zero level set of a saved INR file at any spacing.")
    p.add_argument("inr", metavar="INR", help="saved field (.safetensors or .pt)")
    p.add_argument("--output", required=True, metavar="MESH", help="output mesh: .vtp .vtk .stl .ply .obj")
    p.add_argument("--spacing", type=float, default=0.5, metavar="MM", help="grid spacing in mm (default 0.5)")
    p.add_argument("--reference", metavar="IMAGE", help="reference image for --output-labelmap")
    p.add_argument("--output-labelmap", metavar="LABELMAP", help="labelmap on the reference geometry")
    p.add_argument("--output-index", type=int, default=None, metavar="K",
                   help="for multi-output fields: which output to mesh (0 = innermost)")
    p.add_argument("--keep-all-components", action="store_true", help="keep every connected piece")
    p.add_argument("--report", metavar="JSON", help="write a JSON report here")
    p.add_argument("--json-progress", action="store_true", help="one JSON progress event per line on stdout")
    p.set_defaults(func=run, paths=paths)


class _Output:
    """View one output of a K-output field as a scalar field."""

    def __init__(self, field, index: int) -> None:
        self.field, self.index = field, index
        self.normalization = field.normalization

    def __call__(self, points):
        return self.field(points)[:, self.index]


def paths(args) -> tuple[dict, dict]:
    """Inputs and outputs by argument name: main() refuses any output that is an input or another output."""
    from AnatomyINRLib.io.inr import sidecar_path

    inputs = {"INR": args.inr, "sidecar of INR": sidecar_path(args.inr), "--reference": args.reference}
    outputs = {"--output": args.output, "config file of --output": config_path(args.output),
               "--output-labelmap": args.output_labelmap, "--report": args.report}
    return inputs, outputs


def run(args, progress) -> int:
    """Load the field, mesh it, write outputs."""
    from AnatomyINRLib import io
    from AnatomyINRLib.meshing import MeshingConfig, mesh_quality
    from AnatomyINRLib.surface import api

    if not args.spacing > 0:
        raise InputError(f"--spacing: expected a positive number of mm, got {args.spacing}")
    if args.output_labelmap and not args.reference:
        raise InputError("--reference: required with --output-labelmap")
    io.format_of(args.output, "mesh", writing=True, argument="--output")
    if args.output_labelmap:
        io.format_of(args.output_labelmap, "image", writing=True, argument="--output-labelmap")
    check_outputs(args.output, args.output_labelmap, args.report, str(config_path(args.output)))
    config = MeshingConfig(spacing_mm=float(args.spacing), largest_component=not args.keep_all_components)
    config.validate()
    field, meta = io.load_inr(args.inr)
    reference = io.read_image(args.reference) if args.reference else None
    scalar = _select_output(field, args.output_index)
    mesh = _extract(field, scalar, meta, config, progress)
    if reference is not None:
        check_reference_overlap(reference, *mesh.bounds(), "the surface")
    labels = api.labelmap(scalar, reference, progress=progress) if reference is not None else None
    io.write_mesh(mesh, args.output)
    if labels is not None:
        io.write_image(labels, args.output_labelmap)
    if args.report:
        quality = {k: (v.item() if hasattr(v, "item") else v) for k, v in mesh_quality(mesh).items()}
        write_json(args.report, {"command": "extract", "inr": args.inr, "spacing_mm": args.spacing,
                                 "area_mm2": mesh.area(), "volume_mm3": mesh.signed_volume(),
                                 "mesh": {"vertices": mesh.n_vertices, "faces": mesh.n_faces, **quality},
                                 "field_metadata": meta})
    write_config(config_path(args.output), "extract", config, inr=str(args.inr), output_index=args.output_index)
    return 0


def _extract(field, scalar, meta: dict, config, progress):
    """Mesh the box the fit meshed (the stored points' box, padded); older files without it: the cube."""
    import warnings

    import numpy as np

    from AnatomyINRLib.surface import api

    corners = meta.get("points_bounds_mm")
    if corners is None:
        warnings.warn("INR: no data box stored (a file from an older version): meshing the field's whole "
                      "normalisation cube, which needs more memory than the fit's own mesh", stacklevel=2)
        return api.extract_mesh(scalar, bounds=api.extraction_bounds(field, None), config=config, progress=progress)
    corners = np.asarray(corners, dtype=np.float64)
    if corners.shape != (2, 3) or not np.all(np.isfinite(corners)):
        raise InputError(f"INR: metadata points_bounds_mm: expected 2 corners of 3 numbers, got {meta['points_bounds_mm']!r}")
    if scalar is field:   # a single-output field: exactly fit-points' extraction (box, growth)
        return api.extract_mesh(field, config=config, points=corners, progress=progress)
    return api.extract_mesh(scalar, bounds=api.extraction_bounds(field, corners), config=config, progress=progress)


def _select_output(field, index):
    k = field.out_dim
    if k == 1:
        if index not in (None, 0):
            raise InputError(f"--output-index: the field has one output, got {index}")
        return field
    if index is None:
        raise InputError(f"--output-index: the field has {k} outputs; choose one in [0, {k - 1}]")
    if not 0 <= index < k:
        raise InputError(f"--output-index: expected an integer in [0, {k - 1}], got {index}")
    return _Output(field, index)
