"""Controls of ``trees_diffusion.py``: the training INRs re-meshed as the samples are, and a Gaussian null model.

Both are meshed the way ``anatomy-inr trees sample`` meshes its samples (spacing, largest piece kept,
pieces counted; the Gaussian draws in the training trees' joint box, as the samples, the training
networks each in its own file's box), so that their metrics, statistics and piece counts compare
with the samples' one for one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path


def pieces_summary(entries: list) -> dict:
    """How many surfaces came out in more than one piece, from ``trees sample`` report entries
    (``pieces``, ``largest_area_fraction``); the median share of the surface in the largest piece."""
    import numpy as np

    share = np.array([e["largest_area_fraction"] for e in entries], float)
    return {"meshes": len(entries), "in_pieces": sum(e["pieces"] > 1 for e in entries),
            "largest_under_90_percent": int(np.sum(share < 0.9)),
            "median_largest_area_fraction": round(float(np.median(share)), 3) if len(share) else None}


def remesh_training_inrs(args, work: Path) -> tuple[list, dict]:
    """(meshes, :func:`pieces_summary`) of the training INRs meshed as samples are (spacing, the file's own
    box, largest piece kept; ``pieces.json`` records the pieces). Cached; a cache without the record is
    re-meshed once (500 networks: about 15 min on one core)."""
    import numpy as np

    from AnatomyINRLib import io
    from AnatomyINRLib.cli.trees_diffusion import read_inr_folder
    from AnatomyINRLib.meshing import MeshingConfig
    from AnatomyINRLib.surface.api import extract_mesh
    from AnatomyINRLib.trees.api import piece_share

    cache = work / f"training_inr_meshes_{args.spacing:g}mm"
    cache.mkdir(exist_ok=True)
    record = cache / "pieces.json"
    pieces = json.loads(record.read_text()) if record.exists() else {}
    fields, names, metas = read_inr_folder(args.inr_dir)
    meshes = []
    for field, name, meta in zip(fields, names, metas):
        path = cache / (Path(name).stem + ".vtp")
        if not path.exists() or path.name not in pieces:
            areas: list = []
            mesh = extract_mesh(field, config=MeshingConfig(spacing_mm=args.spacing), pieces=areas,
                                points=np.asarray(meta["points_bounds_mm"], dtype=float))
            pieces[path.name] = {"pieces": len(areas), "largest_area_fraction": piece_share(areas)}
            io.write_mesh(mesh, path)
            partial = record.with_suffix(".part")
            partial.write_text(json.dumps(pieces, indent=1))
            partial.replace(record)  # a run stopped mid-write leaves the last complete record
        meshes.append(io.read_mesh(path))
    return meshes, pieces_summary([pieces[Path(n).stem + ".vtp"] for n in names])


def gaussian_control(args, count: int) -> tuple[list, dict]:
    """(meshes, :func:`pieces_summary`) of the null model a weight-space generator has to beat: ``count``
    networks drawn from the Gaussian with the training networks' mean and covariance, meshed as the samples
    are (spacing, the training box, largest piece).

    A draw is w = w̄ + Σ_i z_i (w_i − w̄) / √(N − 1), z ~ N(0, I_N) (seed ``args.seed + 2``): exactly that
    Gaussian, in the N − 1 dimensions the training networks span. The denoiser's normalisation is affine
    per parameter, so this is the same Gaussian in its token space. Draws without a surface are left out
    (counted in the summary's ``empty``).
    """
    import numpy as np

    from AnatomyINRLib.cli.trees_diffusion import read_inr_folder
    from AnatomyINRLib.core.progress import ProgressReporter
    from AnatomyINRLib.core.seeding import numpy_rng
    from AnatomyINRLib.trees._inr_sets import field_from_vector, stack_fields
    from AnatomyINRLib.trees.api import _mesh_samples  # how trees sample meshes: the control must match it

    weights, layout, info = stack_fields(*read_inr_folder(args.inr_dir))
    weights = weights.astype(np.float64)
    mean = weights.mean(axis=0)
    deviations = weights - mean
    bounds = info.get("points_bounds_mm")  # absent: the network's whole frame, as trees sample meshes then
    rng, box = numpy_rng(args.seed + 2), None if bounds is None else np.asarray(bounds, dtype=float)
    draws = [mean + rng.standard_normal(len(weights)) / math.sqrt(len(weights) - 1) @ deviations for _ in range(count)]
    fields = [field_from_vector(w.astype(np.float32), layout, info) for w in draws]
    meshes, entries = _mesh_samples(fields, args.spacing, box, False, ProgressReporter.wrap(None))
    kept = [m for m in meshes if m is not None]
    return kept, {**pieces_summary([e for e in entries if e is not None]), "empty": len(meshes) - len(kept)}


def statistics(meshes: list, voxel_mm: float) -> dict:
    """{statistic: {mean, std}} of the tree statistics of ``meshes`` (as ``evaluate_mesh_sets`` summarises),
    and ``unmeasured``: how many could not be measured (not closed)."""
    from AnatomyINRLib.metrics.generative import summarise_tree_statistics, tree_statistics_of

    values = tree_statistics_of(meshes, voxel_mm)
    return {"unmeasured": sum(x is None for x in values["total_length"]), **summarise_tree_statistics(values)}


SET_TITLES = {"generated": "generated", "gaussian": "Gaussian control", "training_inrs": "training INRs re-meshed",
              "training": "training", "reference": "reference"}


def gaussian_lines(r: dict) -> list:
    """What the Gaussian control is, its pieces and memorisation (older results lack it)."""
    if "gaussian_pieces" not in r:
        return []
    g = r["gaussian_pieces"]
    if not g["meshes"]:
        return [f"Gaussian control: none of the {g['empty']} networks drawn from the Gaussian with the training "
                f"networks' mean and covariance has a surface.", ""]
    mem = r["unsquared"]["gaussian_control"]["memorisation_inr_space"]
    return [f"Gaussian control: {g['meshes'] + g['empty']} networks drawn from the Gaussian with the training networks' "
            f"mean and covariance (in the {r['training_inrs'] - 1} dimensions they span), meshed as the samples; "
            f"{g['empty']} without a surface, {g['in_pieces']} of {g['meshes']} in pieces, {g['largest_under_90_percent']} "
            f"with under 90 % of the surface in the largest piece (median share "
            f"{100 * g['median_largest_area_fraction']:.1f} %); memorisation ratio {mem['ratio']:.2f}. Only a diffusion "
            f"model that clearly beats it has learned more than the mean and covariance of the weights that differ.", ""]
