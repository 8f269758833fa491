"""Benchmark: TrIND stage 2 on CPU: train the weight-space diffusion on fitted tree INRs, sample, evaluate.

Pipeline (the library's entry points; sampling runs the ``anatomy-inr trees sample`` command itself):

1. read the training INR files (``--inr-dir``, from ``anatomy-inr trees fit``) and train the diffusion
   model for ``--epochs`` into ``<work-dir>/diffusion.safetensors``; a run of the same settings found
   there is resumed (an interrupted benchmark loses no finished epoch). Every epoch's loss and the
   CPU seconds spent go to ``results/<name>.log.jsonl``;
2. sample ``--count`` trees (default 1.1 × the reference set, PointFlow/TrIND protocol) by DDIM into
   ``<work-dir>/samples`` (INR files + meshes at ``--spacing`` mm);
3. MMD, COV, 1-NNA (Chamfer on 2048 surface points: unsquared mm, and the squared PointFlow variant)
   of the samples against held-out reference meshes (``--reference-meshes``), and two controls on the
   same references: the training INRs themselves re-meshed like the samples (what a diffusion model
   that reproduced its training set exactly would score: the ceiling set by stage 1) and the
   ground-truth training meshes (trees of the same generator: 1-NNA should be near 50 %), and a null
   model: networks drawn from the Gaussian with the training networks' mean and covariance
   (:func:`gaussian_control`), which a diffusion model has to beat to have learned anything more;
4. the memorisation check (each sample's nearest training tree vs the training set's own spacing, in
   the INR representation: samples against the re-meshed training INRs) and the tree statistics of
   generated vs training vs reference meshes.

Writes benchmarks/results/<name>.{json,md}, <name>_histograms.png and <name>.log.jsonl; with
``--figures DIR`` also renderings of sampled trees (trees_samples*.png) and the statistics plot
(trees_stats.png). The paper's Table 3 (VascuSynth, A40 GPU, 6000 epochs, ~3 days): MMD 13.36 (scale
unstated), COV 0.46, 1-NNA 87.5 %.

    anatomy-inr trees generate-dataset --count 100 --seed 0 --output-dir TRAIN
    anatomy-inr trees generate-dataset --count 48 --seed 1 --output-dir HELD_OUT
    anatomy-inr trees fit TRAIN/meshes --output INRS --preset fast --seed 0
    python benchmarks/trees_diffusion.py --inr-dir INRS --train-meshes TRAIN/meshes \
        --reference-meshes HELD_OUT/meshes --work-dir SCRATCH --epochs 600 --threads 1 [--x0-skip off]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results"
from trees_diffusion_controls import (  # noqa: E402  (the sibling module, importable once HERE is on sys.path)
    SET_TITLES, gaussian_control, gaussian_lines, pieces_summary, remesh_training_inrs, statistics)
PAPER = {"mmd": 13.36, "cov": 0.46, "one_nna": 0.875}


def _meshes(folder) -> list:
    from AnatomyINRLib import io
    from AnatomyINRLib.cli.trees_diffusion import MESH_TYPES, _files

    return [io.read_mesh(p) for p in _files(str(folder), MESH_TYPES, "meshes")]


def _epoch_logger(path: Path, resumed_from: int):
    """A progress callback appending one JSON line per finished epoch: loss, session wall and CPU seconds."""
    t0, c0 = time.perf_counter(), time.process_time()

    def log(event) -> None:
        if event.stage != "epoch":
            return
        line = {"epoch": event.metrics["epoch"], "loss": round(float(event.metrics["loss"]), 6),
                "session_start_epoch": resumed_from, "wall_s": round(time.perf_counter() - t0, 2),
                "cpu_s": round(time.process_time() - c0, 2)}
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
    return log


def _training_cpu_seconds(log: Path, epochs: int) -> tuple[float, float]:
    """(CPU s, wall s) of all sessions that trained epochs 1..epochs (the last line of each session)."""
    sessions: dict = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        row = json.loads(line)
        if row["epoch"] <= epochs:
            sessions[row["session_start_epoch"]] = row
    return (round(sum(r["cpu_s"] for r in sessions.values()), 1), round(sum(r["wall_s"] for r in sessions.values()), 1))


def train(args, work: Path) -> dict:
    """Train (or resume) into ``work/diffusion.safetensors``; returns the training summary."""
    import torch

    from AnatomyINRLib.cli.trees_diffusion import read_inr_folder
    from AnatomyINRLib.io.checkpoint import load_checkpoint
    from AnatomyINRLib.trees import diffusion_preset, train_model
    from AnatomyINRLib.trees._inr_sets import stack_fields

    torch.set_num_threads(args.threads)
    fields, names, metas = read_inr_folder(args.inr_dir)
    weights, layout, info = stack_fields(fields, names, metas)
    cfg = diffusion_preset(args.preset).replace(checkpoint_every=args.checkpoint_every)
    overrides = {"epochs": args.epochs, "normalisation": args.normalisation, "prediction": args.prediction, "projection": args.projection,
                 "head": args.head, "x0_skip": None if args.x0_skip is None else args.x0_skip == "on"}
    cfg = cfg.replace(**{k: v for k, v in overrides.items() if v is not None})  # validated together

    ckpt = work / "diffusion.safetensors"
    start = load_checkpoint(ckpt)[1]["epoch"] if ckpt.exists() else 0
    log = RESULTS / f"{args.name}.log.jsonl"
    if start == 0 and log.exists():
        log.unlink()  # a fresh training: the log of an older run does not belong to it
    trained = train_model(weights, layout, ckpt, inr_info=info, config=cfg, seed=args.seed,
                          progress=_epoch_logger(log, start))
    cpu, wall = _training_cpu_seconds(log, cfg.epochs)
    return {"config": cfg.to_dict(), "training_inrs": len(fields), "parameters_per_inr": int(weights.shape[1]),
            "tokens_per_inr": _tokens(weights, layout, cfg), "train_cpu_seconds": cpu,
            "train_wall_seconds": wall, "resumed_from_epoch": start,
            "final_loss": trained.report["history"][-1]["loss"], "checkpoint": ckpt.name}


def _tokens(weights, layout, cfg) -> int:
    """Tokens per network the denoiser sees (layers equal in every training network have none)."""
    from AnatomyINRLib.trees._diffusion_tokens import WeightTokenizer

    return WeightTokenizer.fit(weights, layout, cfg.token_size, cfg.normalisation == "parameter").n_tokens


def sample(args, work: Path, count: int) -> dict:
    """``anatomy-inr trees sample`` into ``work/samples`` (INR files + meshes); returns its report."""
    from AnatomyINRLib.cli import main as cli

    out = work / "samples"
    if out.exists():
        shutil.rmtree(out)  # the benchmark's own scratch folder: a rerun samples the current checkpoint again
    report = work / "sample_report.json"
    c0, t0 = time.process_time(), time.perf_counter()
    extra = [] if args.temperature is None else ["--temperature", str(args.temperature)]
    code = cli(["trees", "sample", "--checkpoint", str(work / "diffusion.safetensors"), "--count", str(count),
                "--output-dir", str(out), "--spacing", str(args.spacing), "--seed", str(args.seed + 1),
                "--report", str(report), *extra])
    if code != 0:
        raise SystemExit(f"trees sample failed with exit code {code}")
    rep = json.loads(report.read_text())
    mix = {k: rep[k] for k in ("head", "temperature", "blended_networks") if k in rep}
    return {"sampled": count, "empty_samples": rep["empty"], "sample_steps": rep["sample_steps"], **mix,
            "sample_pieces": pieces_summary([m for m in rep["meshes"] if m is not None]),
            "sample_cpu_seconds": round(time.process_time() - c0, 1),
            "sample_wall_seconds": round(time.perf_counter() - t0, 1)}


def evaluate(generated, references, train_gt, train_inr, seed: int, gaussian=None) -> dict:
    """Metrics of the samples, of the controls, memorisation and tree statistics (see module doc)."""
    from AnatomyINRLib.core.seeding import numpy_rng
    from AnatomyINRLib.metrics.generative import evaluate_mesh_sets, generation_metrics_both
    from AnatomyINRLib.metrics.surface import sample_surface

    out = {"samples": evaluate_mesh_sets(generated, references, train_gt, seed=seed)}
    n = len(generated)
    rng = numpy_rng(seed + 7)
    sets = {"generated": generated, "reference": references, "train_inr": train_inr, "train_gt": train_gt}
    if gaussian is not None:
        sets["gaussian"] = gaussian  # last: the other sets' surface points stay those of earlier runs
    clouds = {k: [sample_surface(m, 2048, rng)[0] for m in v] for k, v in sets.items()}
    keep = ("mmd", "cov", "one_nna", "one_nna_samples", "one_nna_references")
    # both Chamfer variants from one pass each: the training-set matrices are quadratic in its size
    rows = {"samples": generation_metrics_both(clouds["generated"], clouds["reference"], clouds["train_inr"]),
            "training_inrs_remeshed": generation_metrics_both(clouds["train_inr"][:n], clouds["reference"]),
            "training_ground_truth": generation_metrics_both(clouds["train_gt"][:n], clouds["reference"])}
    if gaussian is not None:
        rows["gaussian_control"] = generation_metrics_both(clouds["gaussian"], clouds["reference"], clouds["train_inr"])
    for key in ("unsquared", "squared"):
        out[key] = {k: {m: v[key][m] for m in keep} for k, v in rows.items()}
        for row in [r for r in ("samples", "gaussian_control") if r in rows]:
            out[key][row]["memorisation_inr_space"] = {
                m: rows[row][key]["memorisation"][m] for m in ("median_sample_to_train", "median_train_spacing",
                                                                "ratio", "copies", "sample_to_train")}
    out["nearest_training_index"] = rows["samples"]["unsquared"]["memorisation"]["nearest_train_index"]
    return out


def _row(label: str, m: dict, s: dict) -> str:
    return (f"| {label} | {m['mmd']:.3f} | {m['cov']:.2f} | {100 * m['one_nna']:.1f} % | "
            f"{s['mmd']:.2f} | {s['cov']:.2f} | {100 * s['one_nna']:.1f} % |")


def _chance_one_nna(n_samples: int, n_references: int) -> float:
    """Expected leave-one-out 1-NN accuracy when samples and references are indistinguishable.

    An item's nearest neighbour is then a uniformly random other item: a sample is right with
    probability (n_s − 1)/(n − 1), a reference with (n_r − 1)/(n − 1).
    """
    n = n_samples + n_references
    return (n_samples * (n_samples - 1) + n_references * (n_references - 1)) / (n * (n - 1))


def _hull_lines(r: dict) -> list:
    """A paragraph on the "hull" head's sampling (temperature, how many training trees a sample blends)."""
    if r.get("head") != "hull":
        return []
    blend = sorted(r["blended_networks"])
    return [f"Denoiser head \"hull\": x̂₀ is a convex combination of the {r['training_inrs']} training networks; "
            f"sampling temperature {r['temperature']:g}. Training networks blended per sample (1/Σw² of the last "
            f"step's weights): median {blend[len(blend) // 2]:.1f}, range {blend[0]:.1f}–{blend[-1]:.1f}.", ""]


def _pieces_lines(r: dict) -> list:
    """Surfaces in pieces: only the largest piece of each is evaluated (older results lack the counts)."""
    if "sample_pieces" not in r or "training_inr_pieces" not in r or not r["sample_pieces"]["meshes"]:
        return []
    s, t = r["sample_pieces"], r["training_inr_pieces"]
    return [f"Surfaces in pieces (metrics and statistics use the largest piece of each): samples {s['in_pieces']} of "
            f"{s['meshes']}, {s['largest_under_90_percent']} with under 90 % of their surface in the largest piece "
            f"(median share {100 * s['median_largest_area_fraction']:.1f} %); training INRs re-meshed "
            f"{t['in_pieces']} of {t['meshes']}, {t['largest_under_90_percent']} under 90 % (median "
            f"{100 * t['median_largest_area_fraction']:.1f} %).", ""]


def _statistics_table(r: dict) -> list:
    """Markdown rows of the tree statistics (mean ± sd) of every set the result has, in SET_TITLES order."""
    summary = {**r["samples_report"]["tree_summary"]}
    if "gaussian_statistics" in r:
        summary["gaussian"] = r["gaussian_statistics"]
    if "training_inr_statistics" in r:  # what the samples can at best track: the networks they learned from
        summary["training_inrs"] = r["training_inr_statistics"]
    sets = [k for k in SET_TITLES if k in summary]
    lines = ["| tree statistic | " + " | ".join(f"{SET_TITLES[k]} mean ± sd" for k in sets) + " |",
             "|---" * (len(sets) + 1) + "|"]
    for stat in summary["generated"]:
        cells = [f"{summary[k][stat]['mean']:.2f} ± {summary[k][stat]['std']:.2f}"
                 if summary[k][stat]["mean"] is not None else "—" for k in sets]
        lines.append(f"| {stat} | {' | '.join(cells)} |")
    return lines


def _markdown(r: dict) -> str:
    u, q, ev = r["unsquared"], r["squared"], r["samples_report"]
    mem, cfg = u["samples"]["memorisation_inr_space"], r["config"]
    lines = [
        "# TrIND stage 2 on CPU: weight-space diffusion of tree INRs",
        "",
        f"Generated by `benchmarks/trees_diffusion.py`. {r['training_inrs']} training INRs "
        f"({r['parameters_per_inr']} parameters each, {r['tokens_per_inr']} tokens), denoiser "
        f"{cfg['width']}-d × {cfg['depth']} layers × {cfg['heads']} heads, {cfg['epochs']} epochs of batch "
        f"{cfg['batch_size']} in **{r['train_cpu_seconds'] / 60:.1f} CPU-min** ({r['train_wall_seconds'] / 60:.1f} "
        f"min wall, {r['threads']} thread{'s' if r['threads'] > 1 else ''}, machine shared with other jobs); final loss {r['final_loss']}. "
        f"{r['sampled']} trees sampled by DDIM ({r['sample_steps']} steps) and meshed at {r['spacing_mm']} mm in "
        f"{r['sample_cpu_seconds']:.0f} CPU-s; {r['empty_samples']} without a surface"
        + (f" (the metrics use the {r['evaluated_samples']} with one). " if "evaluated_samples" in r else ". ")
        + f"References: {r['references']} held-out trees of the same generator (ground-truth meshes)."
        + (f" Data: {r['data']}." if r.get("data") else ""),
        "",
        *_hull_lines(r),
        "Chamfer on 2048 area-uniform surface points per tree: unsquared = (mean a→b + mean b→a)/2 in mm; "
        "squared = mean a→b² + mean b→a² in mm² (PointFlow/TrIND code). 1-NNA is leave-one-out 1-NN accuracy "
        "of samples ∪ references (50 % ideal, 100 % = fully separable"
        + (f"; with {r['evaluated_samples']} samples and {r['references']} references a classifier that cannot "
           f"tell them apart scores {100 * _chance_one_nna(r['evaluated_samples'], r['references']):.1f} %)."
           if "evaluated_samples" in r else ")."),
        "",
        "| set vs held-out references | MMD ↓ (mm) | COV ↑ | 1-NNA | MMD² ↓ (mm²) | COV² ↑ | 1-NNA² |",
        "|---|---|---|---|---|---|---|",
        _row("**diffusion samples**", u["samples"], q["samples"]),
        _row("control: training INRs re-meshed (stage-1 ceiling)", u["training_inrs_remeshed"],
             q["training_inrs_remeshed"]),
        _row("control: training ground-truth meshes", u["training_ground_truth"], q["training_ground_truth"]),
        *([_row(f"control: Gaussian over the training networks' weights ({r['gaussian_pieces']['meshes']} with a "
                f"surface)", u["gaussian_control"], q["gaussian_control"])] if "gaussian_control" in u else []),
        f"| TrIND Table 3 (VascuSynth, A40, 6000 epochs) | {PAPER['mmd']} (scale unstated) | {PAPER['cov']} | "
        f"87.5 % | | | |",
        "",
        f"Memorisation (INR space: samples against the {r['training_inrs']} training INRs re-meshed the same "
        f"way): median distance of a sample to its nearest training tree {mem['median_sample_to_train']:.3f} mm, "
        f"median spacing of the training trees {mem['median_train_spacing']:.3f} mm, ratio **{mem['ratio']:.2f}** "
        f"(≈ 1: new trees as far from the training set as its trees are from each other; → 0: copies); "
        f"samples nearer to a training tree than the closest training pair: {100 * mem['copies']:.0f} %. "
        f"Against the ground-truth training meshes: ratio {ev['memorisation']['ratio']:.2f}.",
        "",
    ]
    lines += _statistics_table(r)
    lines += ["", *_pieces_lines(r), *gaussian_lines(r), f"Tree statistics from a skeleton of each voxelised mesh (voxel {ev['voxel_mm']:.2f} mm); "
              f"histograms: `{r['name']}_histograms.png`; training log: `{r['name']}.log.jsonl`."]
    return "\n".join(lines) + "\n"


def figures(folder: Path, work: Path, result: dict, histograms: Path, spacing: float) -> list:
    """Renderings of sampled trees for the user page (small PNGs) and the statistics plot."""
    import numpy as np

    from AnatomyINRLib import io
    from AnatomyINRLib.cli.trees_diffusion import read_inr_folder
    from AnatomyINRLib.io.figures import render_meshes_png
    from AnatomyINRLib.meshing import MeshingConfig
    from AnatomyINRLib.surface.api import extract_mesh

    folder.mkdir(parents=True, exist_ok=True)
    samples = sorted((work / "samples").glob("tree_*.vtp"))[:4]
    meshes = [io.read_mesh(p) for p in samples]
    render_meshes_png(folder / "trees_samples.png", meshes, [p.stem for p in samples],
                      suptitle="trees sampled from the diffusion model", dpi=60)
    nearest = result["nearest_training_index"]
    train_inr = sorted((work / f"training_inr_meshes_{spacing:g}mm").glob("*.vtp"))
    pairs = []
    for i, p in enumerate(samples[:2]):  # nearest[i]: the i-th generated mesh, in the order evaluated
        near = train_inr[nearest[i]]
        pairs += [(meshes[i], f"sample {p.stem}"), (io.read_mesh(near), f"nearest training tree: {near.stem}")]
    render_meshes_png(folder / "trees_samples_nearest.png", [m for m, _ in pairs], [t for _, t in pairs],
                      suptitle="memorisation check: samples next to their nearest training tree", dpi=60)
    fields, _, metas = read_inr_folder(str(work / "samples"))
    box = np.asarray(metas[0]["points_bounds_mm"], dtype=float)
    spacings = (1.0, 0.5)  # a finer level renders too slowly with matplotlib for a page figure
    levels = [extract_mesh(fields[0], config=MeshingConfig(spacing_mm=s), points=box) for s in spacings]
    render_meshes_png(folder / "trees_samples_resolution.png", levels,
                      [f"{s} mm: {m.n_faces} faces" for s, m in zip(spacings, levels)],
                      suptitle="one sampled tree INR meshed at two spacings", dpi=60)
    shutil.copyfile(histograms, folder / "trees_stats.png")
    return ["trees_samples.png", "trees_samples_nearest.png", "trees_samples_resolution.png", "trees_stats.png"]


def run(args) -> dict:
    """Train, sample, evaluate; returns the results dict."""
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    references = _meshes(args.reference_meshes)
    count = args.count or math.ceil(1.1 * len(references))
    result = {"name": args.name, "seed": args.seed, "threads": args.threads, "machine": platform.processor(),
              "spacing_mm": args.spacing, "references": len(references), "paper_table3": PAPER}
    result.update(train(args, work))
    result.update(sample(args, work, count))
    generated = _meshes(work / "samples")
    result["evaluated_samples"] = len(generated)  # samples without a surface have no mesh to compare
    if args.data_note:
        result["data"] = args.data_note
    remeshed, result["training_inr_pieces"] = remesh_training_inrs(args, work)
    gaussian, result["gaussian_pieces"] = gaussian_control(args, count)
    metrics = evaluate(generated, references, _meshes(args.train_meshes), remeshed, args.seed, gaussian or None)
    result["samples_report"] = metrics.pop("samples")
    result.update(metrics)
    result["gaussian_statistics"] = statistics(gaussian, result["samples_report"]["voxel_mm"])
    result["training_inr_statistics"] = statistics(remeshed, result["samples_report"]["voxel_mm"])
    return result


def main() -> int:
    from AnatomyINRLib.trees.config import DIFFUSION_PRESETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inr-dir", required=True, help="training INR files")
    parser.add_argument("--train-meshes", required=True, help="ground-truth meshes of the training trees (same order)")
    parser.add_argument("--reference-meshes", required=True, help="held-out reference meshes")
    parser.add_argument("--work-dir", required=True, help="checkpoint, samples and re-meshed INRs (resumable)")
    parser.add_argument("--preset", default="cpu", choices=tuple(DIFFUSION_PRESETS))
    parser.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    parser.add_argument("--normalisation", choices=("layer", "parameter"), help="weight normalisation (default: the preset's)")
    parser.add_argument("--prediction", choices=("x0", "eps"), help="what the denoiser predicts (default: the preset's)")
    parser.add_argument("--projection", choices=("shared", "token"), help="token projections (default: the preset's)")
    parser.add_argument("--head", choices=("tokens", "hull"), help="denoiser head (default: the preset's)")
    parser.add_argument("--temperature", type=float, help="sampling temperature of a 'hull' head")
    parser.add_argument("--x0-skip", choices=("on", "off"), help="x0_skip of the config (default: the preset's)")
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--count", type=int, help="trees to sample (default 1.1 x references)")
    parser.add_argument("--data-note", default="", help="how the data sets were made (recorded in the results)")
    parser.add_argument("--spacing", type=float, default=0.5, help="meshing spacing of the samples (mm)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="trees_diffusion", help="results file stem")
    parser.add_argument("--figures", help="also write the user page's figures into this folder")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    result = run(args)
    from AnatomyINRLib.io.figures import render_histograms_png
    from AnatomyINRLib.metrics.generative import TREE_STATISTIC_LABELS

    stats = result["samples_report"]["tree_statistics"]
    histograms = RESULTS / f"{args.name}_histograms.png"
    render_histograms_png(histograms, {TREE_STATISTIC_LABELS[s]: {k: v[s] for k, v in stats.items()}
                                       for s in stats["generated"]}, "tree statistics: generated vs training vs reference")
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"{args.name}.md").write_text(_markdown(result))
    print(_markdown(result))
    if args.figures:  # after the results: slow matplotlib renderings must not hold them back
        result["figures"] = figures(Path(args.figures), Path(args.work_dir), result, histograms, args.spacing)
        (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
