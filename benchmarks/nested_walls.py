"""Benchmark: nested AAA walls from 200 points per surface (Alblas et al. 2022, §3.2).

On the nested AAA phantom (bent aorta, eccentric lumen inside the thrombus
surface inside a 2 mm wall, iliac bifurcation), for several seeds, compares

* ``separate``: three independent single-surface INRs (``surface.api.fit_points``);
* ``joint``: one 3-output network without constraint (the paper's method);
* ``nested``: ours, nested by construction (smooth max, t_min = 0);

all with the same preset and iteration budget, every surface extracted on one
shared 0.75 mm grid. Per surface: Dice (voxelised mesh vs the exact phantom
SDF on a 0.75 mm grid), ASD and HD95 (mm, vs a 0.4 mm reference mesh of the
phantom). Nesting: share of inner-mesh vertices outside the outer mesh,
violation volume (mm³, voxels at 0.75 mm) and the violation rate of the field
on random points (box and 10× beyond). Writes
benchmarks/results/nested_walls.{json,md}.

    python benchmarks/nested_walls.py                 # 3 seeds, ≈ 5 min on one core
    python benchmarks/nested_walls.py --seeds 1 --iterations 200   # smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
RESULTS = HERE / "results"
SPACING = 0.75
NAMES = ["lumen", "inner", "outer"]


class _Stacked:
    """Three single-output fields viewed as one (N, 3) field (for the shared-grid extraction)."""

    out_dim = 3

    def __init__(self, fields) -> None:
        self.fields = fields

    def __call__(self, points):
        return np.stack([f(points) for f in self.fields], axis=1)


def _fit(method: str, points, preset: str, iterations: int, seed: int):
    from AnatomyINRLib.nested.config import nested_preset
    from AnatomyINRLib.nested.fit import fit_nested
    from AnatomyINRLib.surface.api import fit_points

    if method == "separate":
        fits = [fit_points(p, preset=preset, seed=seed, device="cpu", iterations=iterations) for p in points]
        return _Stacked([f.field for f in fits])
    cfg = nested_preset(preset).replace(nesting=(method == "nested"))
    return fit_nested(points, cfg, seed=seed, device="cpu", iterations=iterations).field


def _evaluate(field, phantom, refs, truth, grid, seed: int) -> dict:
    from AnatomyINRLib.meshing import voxelize_mesh
    from AnatomyINRLib.meshing.topology import mesh_quality
    from AnatomyINRLib.metrics import dice, surface_distances
    from AnatomyINRLib.meshing.mesh_sdf import MeshSDF
    from AnatomyINRLib.nested.analysis import mesh_violations, neighbour_distances
    from AnatomyINRLib.nested.pipeline import extract_nested, field_violation_rate, surface_bounds

    bounds = surface_bounds([phantom.bounds()])
    extraction, _ = extract_nested(field, bounds, SPACING)
    meshes = extraction.meshes
    out = {"surfaces": {}, "violations": {}}
    for k, (mesh, name) in enumerate(zip(meshes, NAMES)):
        q = mesh_quality(mesh, check_manifold3d=False)
        entry = {"watertight": q["watertight"], "components": q["n_components"]}
        if q["watertight"]:
            entry["dice"] = dice(voxelize_mesh(mesh, grid).array > 0, truth[k])
        d = surface_distances(mesh, refs[k], n_samples=5000, seed=seed)
        entry.update(asd_mm=d["asd"], hd95_mm=d["hd95"])
        out["surfaces"][name] = entry
    if all(s["watertight"] for s in out["surfaces"].values()):
        sdfs = [MeshSDF(m, prepared=True) for m in meshes]
        out["violations"]["meshes"] = mesh_violations(meshes, NAMES, SPACING, neighbour_distances(meshes, sdfs))
    out["violations"]["field"] = field_violation_rate(field, bounds, seed=seed)
    return out


def run(seeds: list, preset: str, iterations: int, n_points: int) -> dict:
    import torch

    from AnatomyINRLib.meshing import make_grid, mesh_from_field
    from AnatomyINRLib.phantoms.nested import NestedAAAPhantom

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    phantom = NestedAAAPhantom()
    refs = [mesh_from_field(s.sdf, s.bounds(), 0.4) for s in phantom.surfaces()]
    grid = make_grid(phantom.bounds(), SPACING, 3.0)
    sdf = phantom.sdf_all(grid.voxel_centers())
    truth = [(sdf[:, k] < 0).reshape(grid.shape) for k in range(3)]
    rows = []
    for seed in seeds:
        points = phantom.sample_surfaces(n_points, seed=100 + seed)
        for method in ("separate", "joint", "nested"):
            t0 = time.perf_counter()
            field = _fit(method, points, preset, iterations, seed)
            seconds = time.perf_counter() - t0
            row = {"seed": seed, "method": method, "fit_seconds": seconds,
                   **_evaluate(field, phantom, refs, truth, grid, seed)}
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("seed", "method", "fit_seconds")}), flush=True)
    return {"preset": preset, "iterations": iterations, "points_per_surface": n_points, "seeds": seeds,
            "spacing_mm": SPACING, "rows": rows, "summary": _summary(rows)}


def _summary(rows: list) -> dict:
    out = {}
    for method in ("separate", "joint", "nested"):
        mine = [r for r in rows if r["method"] == method]
        entry = {"fit_seconds": float(np.mean([r["fit_seconds"] for r in mine]))}
        for name in NAMES:
            for key in ("dice", "asd_mm", "hd95_mm"):
                vals = [r["surfaces"][name].get(key) for r in mine if r["surfaces"][name].get(key) is not None]
                entry[f"{name}_{key}"] = [float(np.mean(vals)), float(np.min(vals)), float(np.max(vals))] if vals else None
        pairs = [r["violations"].get("meshes") for r in mine if r["violations"].get("meshes")]
        entry["violation_vertex_share"] = [max(v["vertex_share"] for v in p) for p in pairs]
        entry["violation_volume_mm3"] = [sum(v["volume_mm3"] for v in p) for p in pairs]
        entry["field_violation_rate"] = [r["violations"]["field"]["rate"] for r in mine]
        out[method] = entry
    return out


def _markdown(result: dict) -> str:
    fmt = lambda v: "n/a" if v is None else f"{v[0]:.3f} ({v[1]:.3f}–{v[2]:.3f})"  # noqa: E731
    lines = [
        "# Nested walls benchmark", "",
        f"Nested AAA phantom, {result['points_per_surface']} points per surface, seeds {result['seeds']}, "
        f"preset `{result['preset']}`, {result['iterations']} iterations, one CPU thread, meshes on one "
        f"{result['spacing_mm']} mm grid. Mean (min–max) over seeds. Produced by `benchmarks/nested_walls.py`.", "",
        "| method | surface | Dice | ASD mm | HD95 mm |", "|---|---|---|---|---|",
    ]
    for method, s in result["summary"].items():
        for name in NAMES:
            lines.append(f"| {method} | {name} | {fmt(s[f'{name}_dice'])} | {fmt(s[f'{name}_asd_mm'])} | "
                         f"{fmt(s[f'{name}_hd95_mm'])} |")
    lines += ["", "| method | fit s | max vertex share outside (per seed) | violation volume mm³ (per seed) | "
              "field violation rate (per seed) |", "|---|---|---|---|---|"]
    for method, s in result["summary"].items():
        lines.append(f"| {method} | {s['fit_seconds']:.1f} | {', '.join(f'{v:.4f}' for v in s['violation_vertex_share'])} | "
                     f"{', '.join(f'{v:.1f}' for v in s['violation_volume_mm3'])} | "
                     f"{', '.join(f'{v:.5f}' for v in s['field_violation_rate'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--points", type=int, default=200)
    args = parser.parse_args()
    start = time.perf_counter()
    result = run(list(range(args.seeds)), args.preset, args.iterations, args.points)
    result["total_seconds"] = time.perf_counter() - start
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "nested_walls.json").write_text(json.dumps(result, indent=2))
    (RESULTS / "nested_walls.md").write_text(_markdown(result))
    print(_markdown(result))


if __name__ == "__main__":
    main()
