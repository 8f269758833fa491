"""Benchmark: surface from points clicked where users click.

Protocols (medians over seeds, Dice on 0.5 mm voxels unless noted, ASD/HD95 in mm):

* ``slices`` — vmtk aorta, points on parallel planes across the long axis every
  5 mm, ~12 per slice spread along the slice's contour(s), 0.3 mm in-plane noise.
  Methods: ``default`` (slice supervision detected automatically),
  ``default_noslices`` (slice detection off = the plain IGR fit),
  ``contour_interp`` (shape-based interpolation of the *true* cross-sections of
  the same slices: 2D signed distance per slice, linear between slices, what
  "fill between slices" does), and ablations (``normals_only``, ``inside_only``).
* ``uniform`` — vmtk aorta, 200 points uniform by area (regression check).
* ``thin`` — seeded thin branching vessel network (phantoms/vessel_tree.py),
  1000 uniform points; meshing and Dice at 0.25 mm.

    python benchmarks/points_to_surface_slices.py --protocol slices --name points_to_surface_slices
    python benchmarks/points_to_surface_slices.py --protocol thin --name points_to_surface_thin
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
AORTA = HERE.parent / "Testing" / "Data" / "vmtk" / "aorta-surface.stl"
RESULTS = HERE / "results"

# Config overrides per method: dotted path -> value.
VARIANTS = {
    "default": {},
    "default_noslices": {"slices.enabled": False},
    "normals_only": {"slices.inside_weight": 0.0},
    "inside_only": {"slices.normal_weight": 0.0},
    "no_end_planes": {"slices.end_gap": 0.0},
    "wide": {"network.width": 128, "network.depth": 6},
    "wide_long": {"network.width": 128, "network.depth": 6, "optim.iterations": 1600, "optim.min_iterations": 1200},
    "long": {"optim.iterations": 1600, "optim.min_iterations": 1200},
    "no_outside": {"outside.enabled": False},
    "knn5": {"sampling.knn": 5},
}


def _config(method: str, preset: str):
    from AnatomyINRLib.surface.config import preset_config

    cfg = preset_config(preset)
    for key, value in VARIANTS[method].items():
        obj = cfg
        *path, last = key.split(".")
        for part in path:
            obj = getattr(obj, part)
        setattr(obj, last, value)
    return cfg


class ContourInterpolation:
    """Shape-based interpolation of true cross-sections: SDF (N, 3) RAS mm → (N,) mm.

    Each slice's exact section (plane ∩ reference mesh) is rasterised at ``h`` mm,
    turned into a 2D signed distance (Euclidean distance transforms), and values
    are interpolated linearly between neighbouring slices; beyond the first/last
    slice the field is positive.
    """

    def __init__(self, mesh, axis, levels, h: float = 0.25) -> None:
        from scipy import ndimage

        from AnatomyINRLib.phantoms.slice_clicks import mesh_sections
        from AnatomyINRLib.surface.slices import points_in_polygon

        self.axis = np.asarray(axis, dtype=np.float64)
        helper = np.eye(3)[int(np.argmin(np.abs(self.axis)))]
        u = np.cross(self.axis, helper)
        u /= np.linalg.norm(u)
        self.basis = np.stack([u, np.cross(self.axis, u)])
        sections = [[lp @ self.basis.T for lp in mesh_sections(mesh, self.axis, lv)] for lv in levels]
        allp = np.concatenate([np.concatenate(s) for s in sections if s])
        self.lo = allp.min(axis=0) - 10.0
        shape = np.ceil((allp.max(axis=0) + 10.0 - self.lo) / h).astype(int) + 1
        gu, gv = np.meshgrid(*(self.lo[k] + h * np.arange(shape[k]) for k in range(2)), indexing="ij")
        q = np.stack([gu.ravel(), gv.ravel()], 1)
        stack = []
        for loops in sections:
            inside = np.zeros(len(q), dtype=bool)
            for lp in loops:
                inside ^= points_in_polygon(q, lp)
            inside = inside.reshape(shape)
            sd = (ndimage.distance_transform_edt(~inside) - ndimage.distance_transform_edt(inside)) * h
            stack.append(sd if inside.any() else np.full(shape, 10.0))
        self.stack, self.levels, self.h = np.stack(stack), np.asarray(levels, dtype=np.float64), h

    def __call__(self, points: np.ndarray) -> np.ndarray:
        from scipy import ndimage

        p = np.asarray(points, dtype=np.float64)
        t = p @ self.axis
        uv = (p @ self.basis.T - self.lo) / self.h
        fi = np.interp(t, self.levels, np.arange(len(self.levels)))
        val = ndimage.map_coordinates(self.stack, [fi, uv[:, 0], uv[:, 1]], order=1, mode="nearest")
        beyond = np.maximum(self.levels[0] - t, t - self.levels[-1])
        return np.maximum(val, beyond)


def _reference(protocol: str):
    from AnatomyINRLib.io import read_mesh
    from AnatomyINRLib.meshing import mesh_from_field

    if protocol == "thin":
        from AnatomyINRLib.phantoms.vessel_tree import VesselTreePhantom

        phantom = VesselTreePhantom()
        return mesh_from_field(phantom, phantom.bounds(), 0.2), phantom
    mesh = read_mesh(AORTA, coordinate_system="RAS")
    return mesh, mesh


def run_case(case: dict) -> dict:
    """One (protocol, method, seed) row."""
    import torch

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    from AnatomyINRLib.metrics.evaluate import score_surface
    from AnatomyINRLib.metrics.surface import sample_surface
    from AnatomyINRLib.phantoms.slice_clicks import slice_click_points
    from AnatomyINRLib.surface import api

    ref, ref_inside = _reference(case["protocol"])
    seed, spacing = case["seed"], case["spacing_mm"]
    row = dict(case)
    t0 = time.perf_counter()
    if case["protocol"] == "slices":
        points, axis, levels = slice_click_points(ref, 5.0, 12, 0.3, seed=seed, return_slices=True)
    elif case["protocol"] == "thin":
        points = ref_inside.sample_surface(case["n"], seed=seed).points
    else:
        points = sample_surface(ref, case["n"], seed=seed)[0]
    row["n_points"] = int(len(points))
    if case["method"] == "contour_interp":
        field = ContourInterpolation(ref, axis, levels)
        lo, hi = points.min(axis=0) - 5.0, points.max(axis=0) + 5.0
        mesh = api.extract_mesh(field, spacing, bounds=np.stack([lo, hi]))
    else:
        fit = api.fit_points(points, config=_config(case["method"], case["preset"]), seed=seed, device="cpu")
        mesh = api.extract_mesh(fit.field, spacing, points=points)
        row.update(iterations=fit.report["iterations"], slices_detected=fit.report["slices"]["detected"])
    row["seconds"] = round(time.perf_counter() - t0, 2)
    scores = score_surface(mesh, ref, ref_inside=ref_inside, spacing_mm=spacing, n_samples=20000)
    row.update({k: round(float(scores[k]), 5) for k in ("dice", "asd", "hd95")})
    return row


def _summarise(rows: list) -> list:
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["protocol"], r["method"], r["n"]), []).append(r)
    out = []
    for (protocol, method, n), rs in sorted(groups.items()):
        med = (lambda k: float(np.median([r[k] for r in rs])))
        out.append({"protocol": protocol, "method": method, "n": n, "runs": len(rs),
                    "n_points_median": med("n_points"), "dice_median": med("dice"),
                    "dice_min": float(min(r["dice"] for r in rs)), "asd_median": med("asd"),
                    "hd95_median": med("hd95"), "seconds_median": med("seconds"),
                    "slices_detected": sorted({str(r.get("slices_detected", "-")) for r in rs})})
    return out


def _markdown(summary: list, meta: dict) -> str:
    lines = [f"# Points → surface where users click ({meta['date']})", "",
             f"Machine: {meta['machine']}; 1 torch thread per worker, {meta['workers']} workers; preset "
             f"{meta['args']['preset']}; {meta['args']['seeds']} seeds; Dice voxels and meshing at "
             f"{meta['spacing_mm']} mm; ASD/HD95 mm (20k samples per surface). Medians over seeds.", "",
             "| protocol | method | N (points) | runs | Dice median | Dice min | ASD mm | HD95 mm | seconds | slices detected |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['protocol']} | {s['method']} | {s['n_points_median']:.0f} | {s['runs']} | "
                     f"{s['dice_median']:.4f} | {s['dice_min']:.4f} | {s['asd_median']:.3f} | "
                     f"{s['hd95_median']:.2f} | {s['seconds_median']:.1f} | {', '.join(s['slices_detected'])} |")
    lines += ["", "Methods: " + "; ".join(f"`{k}`: {v}" for k, v in _METHOD_NOTES.items()
                                          if any(s["method"] == k for s in summary)) + ".",
              "Seconds were measured on a shared, heavily loaded machine (compare within a row only)."]
    return "\n".join(lines) + "\n"


_METHOD_NOTES = {
    "default": "default preset; slice structure detected automatically (in-plane normals, on-slice signs, end planes); "
               "unstructured points: empty space certified by a flood fill supervises the sign (fitting/outside.py)",
    "default_noslices": "default preset with slice detection off (the plain IGR fit, as before)",
    "no_outside": "default preset without the certified-outside term (the fit before it)",
    "knn5": "default preset with the local sampling scale σᵢ from the 5th instead of the 10th neighbour",
    "inside_only": "slice supervision without the in-plane normal term (signs and end planes only)",
    "normals_only": "slice supervision with the in-plane normal term only",
    "contour_interp": "shape-based interpolation of the true cross-sections of the same slices (2D signed "
                      "distance per slice, linear between slices; Slicer's fill between slices)",
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", nargs="+", default=["slices"], choices=["slices", "uniform", "thin"])
    p.add_argument("--methods", nargs="+", default=["default", "default_noslices", "contour_interp"])
    p.add_argument("--preset", default="default")
    p.add_argument("--n", type=int, default=None, help="points for uniform/thin (default 200 / 1000)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--name", default="points_to_surface_slices")
    p.add_argument("--rewrite-md", action="store_true", help="only rewrite the markdown from the JSON of --name")
    args = p.parse_args(argv)
    if args.rewrite_md:
        data = json.loads((RESULTS / f"{args.name}.json").read_text())
        (RESULTS / f"{args.name}.md").write_text(_markdown(data["summary"], data["meta"]))
        return 0
    cases = []
    for protocol in args.protocol:
        n = args.n or {"slices": 0, "uniform": 200, "thin": 1000}[protocol]
        spacing = 0.25 if protocol == "thin" else 0.5
        methods = [m for m in args.methods if protocol == "slices" or m != "contour_interp"]
        cases += [{"protocol": protocol, "method": m, "n": n, "seed": s, "preset": args.preset, "spacing_mm": spacing}
                  for m in methods for s in range(args.seeds)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(run_case, cases))
    summary = _summarise(rows)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} CPU cores, no GPU", "workers": args.workers,
            "spacing_mm": sorted({c["spacing_mm"] for c in cases}), "wall_seconds": round(time.perf_counter() - t0, 1),
            "args": vars(args)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=1))
    (RESULTS / f"{args.name}.md").write_text(_markdown(summary, meta))
    print(_markdown(summary, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
