"""Evaluate a shape model (f_θ) on held-out cardiac phantoms; used by ``image_to_mesh_train.py --phase eval``.

For every held-out case folder (``image.nrrd`` + ``labels.nrrd``): ``image_to_mesh.predict_meshes``
(meshes refined onto the image's edge, the default), then per structure the Dice of the label map
rasterised from its mesh against the phantom's label, the mesh checks (watertight, components,
self-intersections, repaired), predicted and true volumes, and the seconds per volume; and the Dice of
the network's meshes alone (``RefineConfig(enabled=False)``, the paper's output) for comparison.
Writes ``image_to_mesh_train.{json,md}`` into the results folder, keeping the "variants" table
(training runs of other settings, recorded by hand from their own runs) of an existing JSON.

    python benchmarks/image_to_mesh_eval.py --cases WORK/held_out --checkpoint CKPT
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b)))


def evaluate(cases: Path, checkpoint: Path) -> dict:
    import torch

    from AnatomyINRLib import io
    from AnatomyINRLib.image_to_mesh import STRUCTURES, RefineConfig, predict_meshes

    rows = []
    for folder in sorted(p for p in cases.iterdir() if (p / "image.nrrd").is_file()):
        image, truth = io.read_image(folder / "image.nrrd"), io.read_image(folder / "labels.nrrd")
        t0 = time.perf_counter()
        result = predict_meshes(image, checkpoint=checkpoint)
        seconds = time.perf_counter() - t0
        network = predict_meshes(image, checkpoint=checkpoint, refine=RefineConfig(enabled=False))
        voxel_ml = float(np.prod(image.spacing)) / 1000.0
        row = {"case": folder.name, "seconds": round(seconds, 2), "warnings": result.warnings}
        for label, name in STRUCTURES.items():
            s = result.structures[name]
            gt = truth.array == label
            row[name] = {"dice": round(dice(result.labels.array == label, gt), 4),
                         "dice_network": round(dice(network.labels.array == label, gt), 4), **s,
                         "true_volume_ml": round(float(np.count_nonzero(gt)) * voxel_ml, 3)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {}
    for name in STRUCTURES.values():
        d = [r[name]["dice"] for r in rows]
        summary[name] = {"dice_mean": round(float(np.mean(d)), 4), "dice_min": round(float(np.min(d)), 4),
                         "dice_max": round(float(np.max(d)), 4),
                         "dice_network_mean": round(float(np.mean([r[name]["dice_network"] for r in rows])), 4),
                         "dice_network_min": round(float(np.min([r[name]["dice_network"] for r in rows])), 4),
                         "all_watertight": all(r[name]["watertight"] for r in rows),
                         "all_one_component": all(r[name]["components"] == 1 for r in rows),
                         "self_intersecting_meshes": sum(r[name]["self_intersections"] > 0 for r in rows),
                         "repaired_meshes": sum(r[name]["repaired"] for r in rows)}
    secs = [r["seconds"] for r in rows]
    return {"checkpoint": checkpoint.name, "n_cases": len(rows), "cases": rows, "summary": summary,
            "seconds_per_volume_mean": round(float(np.mean(secs)), 2), "seconds_per_volume_max": round(float(max(secs)), 2),
            "threads": torch.get_num_threads(), "machine": platform.machine()}


def _markdown(ev: dict, train: dict, variants: dict) -> str:
    lines = ["# Shape from image (ImplicitMeshNet): the shipped f_θ on held-out cardiac phantoms", ""]
    if train:
        cfg = train["config"]
        net = cfg["network"]
        steps = cfg["epochs"] * cfg["steps_per_epoch"]
        lines += [
            f"Training: {train['cases']} phantoms (seeds 1000-{999 + train['cases']}, size small: 2 mm), preset \"cpu\": "
            f"{cfg['epochs']} epochs × {cfg['steps_per_epoch']} steps × batch {cfg['batch_size']} = {steps} AdamW steps "
            f"(lr {cfg['learning_rate']} cosine → {cfg['min_learning_rate']}), image crop {net['image_size']}³ over "
            f"{2 * cfg['crop_half_mm']:.0f} mm, U-Net {net['unet_channels']}, graph {net['graph_channels']} channels, "
            f"step amplification {net['amplification']}, loss α {cfg['alpha']}, β {cfg['beta_start']} → {cfg['beta_end']}, "
            f"γ {cfg['gamma']}, τ {cfg['tau']}; distance of the BCE: {cfg.get('distance', 'learned')} "
            f"(g_φ digest: {train['representation_digest']}), crop voxels averaged over {cfg.get('image_supersample', 1)}³ "
            f"samples, seed {train['seed']}.",
            f"CPU budget: one process, {train.get('threads', 1)} thread, on a 2-core machine whose other core ran a "
            f"benchmark: {train['seconds']:.0f} s wall time including reading and preparing the cases.",
            "", "| epoch | loss | BCE | Laplacian | CE | β |", "|---|---|---|---|---|---|"]
        for h in train["history"]:
            lines.append(f"| {h['epoch']} | {h['loss']:.4f} | {h['bce']:.4f} | {h['laplacian']:.2e} | {h['ce']:.4f} | {h['beta']:.3g} |")
        lines.append("")
    lines += [f"Held-out phantoms: {ev['n_cases']} (new seeds 5000-{4999 + ev['n_cases']}). Dice of the label map "
              "rasterised from each predicted mesh on the image's grid against the phantom's label.", "",
              "Meshes refined onto the image's edge (the default, `image_to_mesh.RefineConfig`); the network's "
              "meshes alone (the paper's output) in the last two columns.", "",
              "| structure | Dice mean | min | max | watertight | one component | self-intersecting | repaired "
              "| network alone: Dice mean | min |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in ev["summary"].items():
        lines.append(f"| {name} | {s['dice_mean']:.4f} | {s['dice_min']:.4f} | {s['dice_max']:.4f} | {s['all_watertight']} | "
                     f"{s['all_one_component']} | {s['self_intersecting_meshes']} | {s['repaired_meshes']} | "
                     f"{s['dice_network_mean']:.4f} | {s['dice_network_min']:.4f} |")
    lines += ["", f"Prediction: {ev['seconds_per_volume_mean']} s per volume on average, {ev['seconds_per_volume_max']} s "
              f"at most ({ev['threads']} thread(s) on a 2-core machine; network, refinement, checks and rasterisation).", "",
              "| case | LA Dice (network alone) | LV Dice (network alone) | LA ml (true) | LV ml (true) | s |",
              "|---|---|---|---|---|---|"]
    for r in ev["cases"]:
        la, lv = r["left_atrium"], r["left_ventricle"]
        lines.append(f"| {r['case']} | {la['dice']:.4f} ({la['dice_network']:.4f}) | {lv['dice']:.4f} ({lv['dice_network']:.4f}) | "
                     f"{la['volume_ml']:.1f} ({la['true_volume_ml']:.1f}) | {lv['volume_ml']:.1f} ({lv['true_volume_ml']:.1f}) | {r['seconds']} |")
    lines += ["", "Context (not comparable: real CT, GPU training for days, 128³ crops): the paper reports Dice 0.924 "
              "(LA) and 0.921 (LV) on MMWHS CT (Table 1).", ""]
    return "\n".join(lines + _variants_markdown(variants))


def _variants_markdown(variants: dict) -> list:
    if not variants:
        return []
    lines = [f"## Variants ({variants['date']})", "", variants["note"][0].upper() + variants["note"][1:] + ".", "",
             "| variant | steps | train s | LA Dice mean (min) | LV Dice mean (min) |", "|---|---|---|---|---|"]
    for v in variants["rows"]:
        secs = "—" if v["train_seconds"] is None else f"{v['train_seconds']:.0f}"
        lines.append(f"| {v['variant']} | {v['steps']} | {secs} | {v['la_dice_mean']:.3f} ({v['la_dice_min']:.3f}) | "
                     f"{v['lv_dice_mean']:.3f} ({v['lv_dice_min']:.3f}) |")
    if variants.get("generalisation"):
        lines += ["", "Generalisation: " + variants["generalisation"] + "."]
    return lines + [""]


def evaluate_and_write(cases: Path, checkpoint: Path, results: Path) -> dict:
    ev = evaluate(cases, checkpoint)
    train_path = results / "image_to_mesh_train.train.json"
    train = json.loads(train_path.read_text()) if train_path.is_file() else {}
    out = results / "image_to_mesh_train.json"
    variants = json.loads(out.read_text()).get("variants", {}) if out.is_file() else {}
    out.write_text(json.dumps({"training": train, "evaluation": ev, "variants": variants}, indent=2))
    (results / "image_to_mesh_train.md").write_text(_markdown(ev, train, variants))
    return ev


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", required=True, type=Path)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    evaluate_and_write(args.cases, args.checkpoint, ROOT / "benchmarks" / "results")


if __name__ == "__main__":
    main()
