"""Benchmark: the centreline model of tree synthesis on CPU: train on generated trees, sample, evaluate.

Pipeline (the library's entry points; sampling runs the ``anatomy-inr trees sample`` command itself):

1. grow ``--train-count`` trees of the synthetic generator (``trees generate-dataset``'s trees: same
   seeds, same parameters) and train the centreline model (``--preset centerline``, one token per
   branch) for ``--epochs`` into ``<work-dir>/centerline.safetensors`` (a run of the same settings
   found there is resumed);
2. sample ``--count`` trees (default 1.1 × the references, PointFlow/TrIND protocol) into
   ``<work-dir>/samples`` (centreline files + meshes at ``--spacing`` mm);
3. MMD, COV, 1-NNA (Chamfer on 2048 surface points, unsquared mm) of the samples against
   ``--reference-count`` held-out trees of another seed, with the memorisation check against the
   first ``--memorisation-count`` training trees, and the same metrics for a control: that many
   training trees themselves (trees of the same generator: 1-NNA near 50 %);
4. tree statistics (total length, bifurcations, mean radius, tortuosity) of samples, training trees and
   references, twice: from the centrelines themselves, and from the meshes' skeletons (as
   ``trees evaluate`` measures any mesh); and the share of trees with branches whose tubes overlap
   (neither parent and child nor siblings; sampling keeps branches apart by ``--keep-apart``).

Writes benchmarks/results/<name>.{json,md}; with ``--figures DIR`` also four sampled trees rendered
(trees_centerline_samples.png) and histograms of the centreline statistics (trees_centerline_stats.png).
The paper's Table 3 (VascuSynth, A40 GPU, 6000 epochs, ~3 days): MMD 13.36 (scale unstated),
COV 0.46, 1-NNA 87.5 %.

    python benchmarks/trees_centerline.py --work-dir SCRATCH --train-count 10000 --epochs 50 --threads 2 \
        --figures docs/modules/images
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
RESULTS = HERE / "results"
PAPER = {"mmd": 13.36, "cov": 0.46, "one_nna": 0.875}
STATS = (("total_length_mm", "total_length", "length mm"), ("bifurcations", "bifurcations", "bifurcations"),
         ("mean_radius_mm", "mean_radius", "radius mm"), ("tortuosity", "tortuosity", "tortuosity"))


def grow(count: int, seed: int) -> list:
    """The first ``count`` trees of ``trees generate-dataset --seed seed`` (1–12 bifurcations)."""
    from AnatomyINRLib.phantoms.tree_synth import dataset_params, grow_tree

    return [grow_tree(p) for p in dataset_params(count, seed)]


def train(args, work: Path, graphs: list) -> dict:
    """Train (or resume) into ``work/centerline.safetensors``; returns the training summary."""
    import torch

    from AnatomyINRLib.trees import diffusion_preset, train_model
    from AnatomyINRLib.trees._centerline_tokens import centerline_training_set

    torch.set_num_threads(args.threads)
    cfg = diffusion_preset("centerline").replace(epochs=args.epochs)
    weights, layout, info = centerline_training_set(graphs, [f"tree_{i:04d}" for i in range(len(graphs))],
                                                    cfg.token_size)
    # the time of earlier sessions of this checkpoint (a resumed or finished run): kept beside it
    times = work / "training_time.json"
    before = json.loads(times.read_text()) if times.exists() else {"cpu_s": 0.0, "wall_s": 0.0}
    c0, t0 = time.process_time(), time.perf_counter()
    result = train_model(weights, layout, work / "centerline.safetensors", inr_info=info, config=cfg, seed=args.seed)
    spent = {"cpu_s": before["cpu_s"] + time.process_time() - c0, "wall_s": before["wall_s"] + time.perf_counter() - t0}
    times.write_text(json.dumps(spent))
    return {"config": cfg.to_dict(), "training_trees": len(graphs), "tokens_per_tree": layout[0][1][0],
            "values_per_token": layout[0][1][1], "optimiser_steps": cfg.epochs * -(-len(graphs) // cfg.batch_size),
            "train_cpu_seconds": round(spent["cpu_s"], 1), "train_wall_seconds": round(spent["wall_s"], 1),
            "resumed": result.report["resumed"], "final_loss": result.report["history"][-1]["loss"]}


def sample(args, work: Path, count: int) -> tuple:
    """``anatomy-inr trees sample`` into ``work/samples``; returns (meshes, graphs, summary)."""
    from AnatomyINRLib import io
    from AnatomyINRLib.cli import main as cli

    out = work / "samples"
    if out.exists():
        shutil.rmtree(out)  # the benchmark's own scratch folder: a rerun samples the current checkpoint again
    report = work / "sample_report.json"
    t0 = time.perf_counter()
    code = cli(["trees", "sample", "--checkpoint", str(work / "centerline.safetensors"), "--count", str(count),
                "--output-dir", str(out), "--spacing", str(args.spacing), "--seed", str(args.seed + 1),
                "--report", str(report), *([] if args.keep_apart is None else ["--keep-apart", str(args.keep_apart)])])
    if code != 0:
        raise SystemExit(f"trees sample failed with exit code {code}")
    rep = json.loads(report.read_text())
    meshes = [io.read_mesh(out / f"tree_{i:03d}.vtp") for i in range(count)]
    graphs = [io.read_centerline(out / f"tree_{i:03d}.centerline.json")[0] for i in range(count)]
    return meshes, graphs, {"sampled": count, "sample_steps": rep["sample_steps"], "keep_apart": rep["keep_apart"],
                            "meshes_in_pieces": rep["in_pieces"], "sample_wall_seconds": round(time.perf_counter() - t0, 1)}


def graph_statistics(per: list, graphs: list) -> dict:
    """{statistic: {mean, std}} of per-tree ``phantoms.tree_synth.tree_statistics`` dicts, and how many
    trees have branches whose tubes overlap (``overlapping_branch_pairs``: not parent and child, nor siblings)."""
    import numpy as np

    from AnatomyINRLib.trees._centerline_guidance import overlapping_branch_pairs

    out = {key: {"mean": float(np.mean([p[key] for p in per])), "std": float(np.std([p[key] for p in per]))}
           for key, _, _ in STATS}
    pairs = np.array([overlapping_branch_pairs(g) for g in graphs])
    out["overlapping"] = {"trees_fraction": float(np.mean(pairs > 0)), "pairs_per_tree": float(pairs.mean())}
    return out


def centerline_points(graph, count: int = 256):
    """(count, 3) points spread evenly over a tree's total centreline length (mm)."""
    import numpy as np

    a, b = graph.points[graph.parent[1:]], graph.points[1:]
    length = np.linalg.norm(b - a, axis=1)
    ends = np.cumsum(length)
    s = (np.arange(count) + 0.5) * ends[-1] / count
    i = np.minimum(np.searchsorted(ends, s), len(a) - 1)
    f = ((s - (ends[i] - length[i])) / np.maximum(length[i], 1e-12))[:, None]
    return a[i] + f * (b[i] - a[i])


def centerline_memorisation(samples: list, training: list, probes: int, points: int = 256) -> dict:
    """Memorisation against every training tree, in centreline space (no meshes needed).

    Distance = symmetric Chamfer (unsquared, mm; ``metrics.generative.chamfer_matrix``) between
    ``points`` points spread evenly along each tree's centreline. Each sample's nearest training tree,
    against the first ``probes`` training trees' nearest other training tree; near-copies are samples
    nearer to a training tree than the closest of those probes is to any other.
    """
    import numpy as np

    from AnatomyINRLib.metrics.generative import chamfer_matrix

    bank = [centerline_points(g, points) for g in training]
    to_train = chamfer_matrix([centerline_points(g, points) for g in samples], bank).min(axis=1)
    d_probe = chamfer_matrix(bank[:probes], bank)
    d_probe[np.arange(probes), np.arange(probes)] = np.inf  # a probe's own entry in the bank
    spacing = d_probe.min(axis=1)
    return {"training_trees": len(training), "probes": probes, "points": int(points),
            "median_sample_to_train": float(np.median(to_train)), "median_train_spacing": float(np.median(spacing)),
            "ratio": float(np.median(to_train) / np.median(spacing)), "copies": float(np.mean(to_train < spacing.min())),
            "closest_probe_mm": float(spacing.min())}


def evaluate(generated, references, training, control, seed: int) -> dict:
    """Metrics and mesh statistics of the samples and of the training-tree control, against the references."""
    from AnatomyINRLib.metrics.generative import evaluate_mesh_sets

    keep = ("mmd", "cov", "one_nna", "one_nna_samples", "one_nna_references", "memorisation", "tree_summary",
            "voxel_mm")
    samples = evaluate_mesh_sets(generated, references, training, seed=seed, voxel_mm=0.5)
    ctrl = evaluate_mesh_sets(control, references, seed=seed, voxel_mm=0.5)
    mem = samples["memorisation"]
    samples["memorisation"] = {k: mem[k] for k in ("median_sample_to_train", "median_train_spacing", "ratio", "copies")}
    return {"samples": {k: samples[k] for k in keep if k in samples},
            "training_control": {k: ctrl[k] for k in keep if k in ctrl and k != "memorisation"}}


def markdown(r: dict) -> str:
    s, c, t = r["evaluation"]["samples"], r["evaluation"]["training_control"], r["training"]
    m = r["centerline_memorisation"]
    lines = [f"# Tree synthesis, centreline model ({r['name']})", "",
             f"{t['training_trees']} generated training trees (`trees generate-dataset --seed {r['train_seed']}`'s first), "
             f"`--preset centerline` ({t['tokens_per_tree']} branch tokens of {t['values_per_token']} values), "
             f"{t['config']['epochs']} epochs = {t['optimiser_steps']} steps of batch {t['config']['batch_size']}: "
             f"{t['train_wall_seconds'] / 60:.1f} min wall, {t['train_cpu_seconds'] / 60:.1f} CPU-min "
             f"({r['machine']['threads']} threads, {r['machine']['processor']}); final loss {t['final_loss']:.3f}. "
             f"{r['sampling']['sampled']} samples (seed {r['sample_seed']}, DDIM {r['sampling']['sample_steps']}) "
             f"meshed at {r['spacing_mm']} mm, branches kept apart with strength {r['sampling']['keep_apart']} "
             f"(`trees sample --keep-apart`); {r['sampling']['meshes_in_pieces']} of them in pieces. "
             f"References: {r['reference_count']} trees of seed {r['reference_seed']}.", "",
             "| set vs references | MMD ↓ (mm) | COV ↑ | 1-NNA (50 % ideal) |", "|---|---|---|---|",
             f"| **centreline model samples** | {s['mmd']:.2f} | {s['cov']:.2f} | {100 * s['one_nna']:.1f} % |",
             f"| control: {len(r['control_names'])} training trees | {c['mmd']:.2f} | {c['cov']:.2f} | {100 * c['one_nna']:.1f} % |",
             f"| TrIND Table 3 (VascuSynth, A40 GPU, 6000 epochs, ~3 days) | {PAPER['mmd']} (scale unstated) | "
             f"{PAPER['cov']} | {100 * PAPER['one_nna']:.1f} % |", "",
             f"Memorisation (against the first {r['memorisation_count']} training trees): median distance to the "
             f"nearest training tree {s['memorisation']['median_sample_to_train']:.2f} mm, the training trees' own "
             f"spacing {s['memorisation']['median_train_spacing']:.2f} mm (ratio {s['memorisation']['ratio']:.2f}; "
             f"near-copies {100 * s['memorisation']['copies']:.0f} %). Against all {m['training_trees']} training "
             f"trees, by their centrelines (Chamfer on 256 points along each): a sample's nearest training tree "
             f"median {m['median_sample_to_train']:.2f} mm, a training tree's nearest other one median "
             f"{m['median_train_spacing']:.2f} mm ({m['probes']} probes; ratio {m['ratio']:.2f}); "
             f"{100 * m['copies']:.0f} % of the samples lie nearer to a training tree than the closest probe "
             f"({m['closest_probe_mm']:.2f} mm).", "",
             "Tree statistics, mean ± std (centrelines; in brackets the meshes' skeletons at 0.5 mm):", "",
             "| set | " + " | ".join(label for _, _, label in STATS) + " | trees with overlapping branches "
             "(pairs per tree) |", "|---|---|---|---|---|---|"]
    mesh = {"samples": s["tree_summary"]["generated"], "training trees": c["tree_summary"]["generated"],
            "references": s["tree_summary"]["reference"]}
    for label, key in (("samples", "samples"), ("training trees", "training"), ("references", "reference")):
        g = r["centerline_statistics"][key]
        cells = [f"{g[a]['mean']:.2f} ± {g[a]['std']:.2f} ({mesh[label][b]['mean']:.2f})" for a, b, _ in STATS]
        o = g["overlapping"]
        cells.append(f"{100 * o['trees_fraction']:.0f} % ({o['pairs_per_tree']:.2f})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figures(folder: Path, work: Path, per: dict) -> list:
    """Four sampled trees rendered, and histograms of the centreline statistics (``per``: set name →
    per-tree statistics) of every set (PNG)."""
    from AnatomyINRLib import io
    from AnatomyINRLib.io.figures import render_histograms_png, render_meshes_png

    folder.mkdir(parents=True, exist_ok=True)
    samples = sorted((work / "samples").glob("tree_*.vtp"))[:4]
    render_meshes_png(folder / "trees_centerline_samples.png", [io.read_mesh(p) for p in samples],
                      [p.stem for p in samples], suptitle="trees sampled from the centreline model", dpi=60)
    render_histograms_png(folder / "trees_centerline_stats.png",
                          {label: {name: [t[key] for t in stats] for name, stats in per.items()}
                           for key, _, label in STATS}, "centreline statistics: samples vs training vs references")
    return ["trees_centerline_samples.png", "trees_centerline_stats.png"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work-dir", required=True, type=Path)
    ap.add_argument("--name", default="trees_centerline")
    ap.add_argument("--train-count", type=int, default=10000)
    ap.add_argument("--train-seed", type=int, default=2)
    ap.add_argument("--reference-count", type=int, default=48)
    ap.add_argument("--reference-seed", type=int, default=1)
    ap.add_argument("--memorisation-count", type=int, default=100)
    ap.add_argument("--count", type=int, help="samples (default 1.1 × references)")
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--spacing", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep-apart", type=float, help="trees sample --keep-apart (default: its default)")
    ap.add_argument("--figures", type=Path, help="also write the user page's figures into this folder")
    args = ap.parse_args(argv)
    from AnatomyINRLib.phantoms.tree_synth import tree_mesh, tree_statistics

    args.work_dir.mkdir(parents=True, exist_ok=True)
    count = args.count or round(1.1 * args.reference_count)
    train_graphs, ref_graphs = grow(args.train_count, args.train_seed), grow(args.reference_count, args.reference_seed)
    training = train(args, args.work_dir, train_graphs)
    generated, sampled_graphs, sampling = sample(args, args.work_dir, count)
    references = [tree_mesh(g, args.spacing) for g in ref_graphs]
    memo = [tree_mesh(g, args.spacing) for g in train_graphs[:args.memorisation_count]]
    per = {name: [tree_statistics(g) for g in gs]  # once, for the summary and the histograms
           for name, gs in (("samples", sampled_graphs), ("training", train_graphs), ("references", ref_graphs))}
    result = {"name": args.name, "train_seed": args.train_seed, "reference_seed": args.reference_seed,
              "reference_count": args.reference_count, "memorisation_count": args.memorisation_count,
              "sample_seed": args.seed + 1, "spacing_mm": args.spacing, "training": training, "sampling": sampling,
              "control_names": [f"tree_{i:04d}" for i in range(count)],
              "machine": {"threads": args.threads, "processor": platform.processor() or platform.machine()},
              "evaluation": evaluate(generated, references, memo, memo[:count], args.seed),
              "centerline_memorisation": centerline_memorisation(sampled_graphs, train_graphs, count),
              "centerline_statistics": {"samples": graph_statistics(per["samples"], sampled_graphs),
                                        "training": graph_statistics(per["training"], train_graphs),
                                        "reference": graph_statistics(per["references"], ref_graphs)}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(result))
    if args.figures:
        figures(args.figures, args.work_dir, per)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
