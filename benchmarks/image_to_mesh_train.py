"""Train the shipped shape network f_θ of ImplicitMeshNet on cardiac phantoms (CPU) and evaluate it.

Phases (``--phase``):
* ``data``: write training phantoms (seeds 1000 …) and held-out phantoms (new seeds 5000 …) with the
  library's generator (``phantoms.cardiac``, size "small": 2 mm, 80×80×72) into ``--work-dir``;
* ``train``: ``image_to_mesh.train_shape_model`` on the training folders (preset "cpu") through the
  shipped g_φ, resumable (rerun the same command after an interruption), progress log as JSON lines;
* ``eval``: ``image_to_mesh.predict_meshes`` on every held-out phantom: Dice per structure of the
  label map rasterised from the predicted meshes against the phantom's labels, watertightness,
  components, self-intersections, volumes, seconds per volume; writes
  benchmarks/results/image_to_mesh_train.{json,md}.

CPU budget: one process, one thread (``torch.set_num_threads(1)``) on a 2-core
machine shared with other jobs, at most ~50 minutes of training; the measured times are in the results.

    python benchmarks/image_to_mesh_train.py --phase all --work-dir WORK \\
        --output AnatomyINRLib/image_to_mesh/models/image_to_mesh_shape.safetensors
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
TRAIN_SEEDS = range(1000, 1024)
HELD_OUT_SEEDS = range(5000, 5048)


def write_phantoms(work: Path) -> None:
    from AnatomyINRLib import io
    from AnatomyINRLib.phantoms.cardiac import make_cardiac_phantom

    for split, seeds in (("train", TRAIN_SEEDS), ("held_out", HELD_OUT_SEEDS)):
        for seed in seeds:
            folder = work / split / f"seed_{seed}"
            if (folder / "labels.nrrd").is_file():
                continue
            folder.mkdir(parents=True, exist_ok=True)
            ph = make_cardiac_phantom(seed, "small")
            io.write_image(ph.image, folder / "image.nrrd")
            io.write_image(ph.labels, folder / "labels.nrrd")
            print(f"phantom {split} {seed}", flush=True)


def train(work: Path, output: Path, log: Path, preset: str, seed: int, epochs=None, steps=None, n_cases=None) -> dict:
    from AnatomyINRLib.image_to_mesh import shape_train_preset, train_shape_model

    cfg = shape_train_preset(preset)
    cfg = cfg.replace(epochs=epochs or cfg.epochs, steps_per_epoch=steps or cfg.steps_per_epoch)

    t0 = time.perf_counter()
    with log.open("a", encoding="utf-8") as fh:
        def progress(event):
            fh.write(json.dumps({"t": round(time.perf_counter() - t0, 1), "stage": event.stage,
                                 "fraction": round(event.fraction, 5), "message": event.message,
                                 **event.metrics}) + "\n")
            fh.flush()
        data = work / "train"
        if n_cases:  # the first n training phantoms only
            from AnatomyINRLib import io

            data = [tuple(io.read_image(f / n) for n in ("image.nrrd", "labels.nrrd"))
                    for f in sorted((work / "train").iterdir())[:n_cases]]
        result = train_shape_model(data, output, config=cfg, seed=seed, progress=progress)
    return result.report


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=("data", "train", "eval", "all"), default="all")
    parser.add_argument("--work-dir", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="override the preset's epochs (a shorter run on a loaded machine)")
    parser.add_argument("--steps-per-epoch", type=int, help="override the preset's steps per epoch")
    parser.add_argument("--train-cases", type=int, help="train on the first N training phantoms only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / "image_to_mesh_train.log.jsonl"
    if args.phase in ("data", "all"):
        write_phantoms(args.work_dir)
    if args.phase in ("train", "all"):
        report = train(args.work_dir, args.output, log, args.preset, args.seed, args.epochs, args.steps_per_epoch,
                       args.train_cases)
        report.update(threads=torch.get_num_threads(), machine=platform.machine())
        (RESULTS / "image_to_mesh_train.train.json").write_text(json.dumps(report, indent=2))
    if args.phase in ("eval", "all"):
        from benchmarks.image_to_mesh_eval import evaluate_and_write

        evaluate_and_write(args.work_dir / "held_out", args.output, RESULTS)


if __name__ == "__main__":
    main()
