"""Benchmark: sparse surface points → closed surface, on the AAA phantom and the real vmtk aorta.

For N points × seeds × methods it records Dice (0.5 mm voxels), ASD, HD95
(mm) and seconds (fit + extraction at 0.5 mm, one CPU thread per worker),
for every preset and for classical baselines on the same points: convex hull,
a thin-plate RBF implicit surface and screened Poisson (pymeshlab, if
installed), the last two with estimated normals (clicked points have none).

Writes benchmarks/results/points_to_surface.{json,md} and a Dice-vs-N plot.

    python benchmarks/points_to_surface.py                # full grid (long)
    python benchmarks/points_to_surface.py --quick        # a smoke run
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
sys.path.insert(0, str(HERE))
AORTA = HERE.parent / "Testing" / "Data" / "vmtk" / "aorta-surface.stl"
RESULTS = HERE / "results"
_CACHE: dict = {}


def _shape(name: str):
    """(reference mesh, reference inside-definition, surface sampler) for a shape name."""
    if name in _CACHE:
        return _CACHE[name]
    from AnatomyINRLib.io import read_mesh
    from AnatomyINRLib.meshing import mesh_from_field
    from AnatomyINRLib.metrics.surface import sample_surface
    from AnatomyINRLib.phantoms import get_phantom

    if name == "aorta":
        ref = read_mesh(AORTA, coordinate_system="RAS")  # oriented outward on reading
        value = (ref, ref, lambda n, seed: sample_surface(ref, n, seed=seed)[0])
    else:
        phantom = get_phantom("aaa")
        ref = mesh_from_field(phantom, phantom.bounds(), 0.25)
        value = (ref, phantom, lambda n, seed: phantom.sample_surface(n, seed=seed).points)
    _CACHE[name] = value
    return value


def _run_inr(points, preset, seed):
    from AnatomyINRLib.surface import api

    fit = api.fit_points(points, preset=preset, seed=seed, device="cpu")
    mesh = api.extract_mesh(fit.field, 0.5, points=points)
    # Dice is scored on the delivered mesh (what the labelmap with largest_component holds too).
    return mesh, None, {"iterations": fit.report["iterations"]}


def _run_baseline(points, method):
    import baselines
    from AnatomyINRLib.surface import api

    if method == "convex_hull":
        return baselines.convex_hull_mesh(points), None, {}
    if method == "rbf_tps":
        field = baselines.RBFImplicit(points)
        lo, hi = points.min(axis=0), points.max(axis=0)
        pad = 0.15 * float(np.max(hi - lo))
        mesh = api.extract_mesh(field, 0.5, bounds=np.stack([lo - pad, hi + pad]))
        return mesh, field, {}
    if method == "screened_poisson":
        mesh = baselines.screened_poisson_mesh(points)
        if mesh is None:
            return None, None, {"skipped": "pymeshlab not installed"}
        return mesh, None, {}
    raise ValueError(method)


def run_case(case: dict) -> dict:
    """One (shape, N, seed, method) row."""
    import torch

    torch.set_num_threads(case.get("threads", 1))
    torch.set_flush_denormal(True)
    from AnatomyINRLib.meshing import mesh_quality
    from AnatomyINRLib.metrics.evaluate import score_surface

    ref, ref_inside, sampler = _shape(case["shape"])
    points = sampler(case["n"], case["seed"])
    row = dict(case)
    t0 = time.perf_counter()
    try:
        if case["method"] in ("fast", "default", "accurate", "paper"):
            mesh, field, extra = _run_inr(points, case["method"], case["seed"])
        else:
            mesh, field, extra = _run_baseline(points, case["method"])
    except Exception as exc:  # a failing baseline is a result, not a crash
        row.update(error=f"{type(exc).__name__}: {exc}")
        return row
    row["seconds"] = round(time.perf_counter() - t0, 3)
    row.update(extra)
    if mesh is None:
        return row
    quality = mesh_quality(mesh, check_manifold3d=False)
    row.update(watertight=bool(quality["watertight"]), components=int(quality["n_components"]))
    if not quality["watertight"] and field is None:
        row["error"] = "output not watertight: Dice undefined"
        return row
    if not quality["watertight"]:
        row["error"] = "output not watertight (Dice from the field's sign)"
    scores = score_surface(mesh, ref, pred_inside=field, ref_inside=ref_inside, spacing_mm=0.5, n_samples=20000)
    row.update({k: round(float(scores[k]), 5) for k in ("dice", "asd", "hd95", "chamfer_l2")})
    return row


def _summarise(rows: list) -> list:
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["shape"], r["method"], r["n"]), []).append(r)
    out = []
    for (shape, method, n), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        ok = [r for r in rs if "dice" in r]
        med = (lambda k: float(np.median([r[k] for r in ok])) if ok else None)
        out.append({"shape": shape, "method": method, "n": n, "runs": len(rs), "ok": len(ok),
                    "dice_median": med("dice"), "dice_min": min((r["dice"] for r in ok), default=None),
                    "asd_median": med("asd"), "hd95_median": med("hd95"),
                    "seconds_median": float(np.median([r["seconds"] for r in rs if "seconds" in r]))
                    if any("seconds" in r for r in rs) else None,
                    "watertight_all": all(r.get("watertight", False) for r in rs),
                    "errors": sorted({r["error"] for r in rs if "error" in r})})
    return out


def _markdown(summary: list, meta: dict) -> str:
    fmt = (lambda v, p=3: "—" if v is None else f"{v:.{p}f}")
    lines = [f"# Points → surface benchmark ({meta['date']})", "",
             f"Machine: {meta['machine']}; {meta['args']['threads']} torch thread(s) per worker, {meta['workers']} workers. "
             "Dice on 0.5 mm voxels; ASD/HD95 in mm (20k samples per surface, exact point-to-triangle); "
             "seconds = fit + mesh extraction at 0.5 mm. Medians over seeds.", "",
             "| shape | method | N | runs | Dice median | Dice min | ASD mm | HD95 mm | seconds | watertight | notes |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['shape']} | {s['method']} | {s['n']} | {s['ok']}/{s['runs']} | {fmt(s['dice_median'], 4)} | "
                     f"{fmt(s['dice_min'], 4)} | {fmt(s['asd_median'])} | {fmt(s['hd95_median'])} | "
                     f"{fmt(s['seconds_median'], 1)} | {'yes' if s['watertight_all'] else 'no'} | "
                     f"{'; '.join(s['errors'])} |")
    return "\n".join(lines) + "\n"


def _plot(summary: list, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    shapes = sorted({s["shape"] for s in summary})
    fig, axes = plt.subplots(1, len(shapes), figsize=(6 * len(shapes), 4.5), dpi=100, squeeze=False)
    for ax, shape in zip(axes[0], shapes):
        for method in sorted({s["method"] for s in summary if s["shape"] == shape}):
            pts = [(s["n"], s["dice_median"]) for s in summary
                   if s["shape"] == shape and s["method"] == method and s["dice_median"] is not None]
            if pts:
                ax.plot(*zip(*sorted(pts)), marker="o", label=method)
        ax.set_xscale("log")
        ax.set_xlabel("number of surface points")
        ax.set_ylabel("median Dice")
        ax.set_title(shape)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=["aorta", "aaa"])
    p.add_argument("--methods", nargs="+",
                   default=["fast", "default", "accurate", "convex_hull", "rbf_tps", "screened_poisson"])
    p.add_argument("--n", nargs="+", type=int, default=[50, 100, 200, 400, 800])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1)))
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (timing runs: 1 worker x 2 threads)")
    p.add_argument("--quick", action="store_true", help="2 seeds, N=100,200, aorta only")
    p.add_argument("--name", default="points_to_surface")
    p.add_argument("--append", action="store_true", help="add rows to an existing result of the same name")
    args = p.parse_args(argv)
    if args.quick:
        args.shapes, args.n, args.seeds = ["aorta"], [100, 200], 2
    cases = [{"shape": s, "n": n, "seed": seed, "method": m, "threads": args.threads}
             for s in args.shapes for n in args.n for seed in range(args.seeds) for m in args.methods]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(run_case, cases))
    previous = RESULTS / f"{args.name}.json"
    if args.append and previous.exists():
        rows = json.loads(previous.read_text())["rows"] + rows
    summary = _summarise(rows)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} CPU cores, no GPU",
            "workers": args.workers, "wall_seconds": round(time.perf_counter() - t0, 1), "args": vars(args)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=1))
    (RESULTS / f"{args.name}.md").write_text(_markdown(summary, meta))
    _plot(summary, RESULTS / f"{args.name}_dice.png")
    print(_markdown(summary, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
