"""Benchmark: live refit after a moved point, cold CLI per edit vs the warm ``serve`` worker.

What a Slicer user does with auto-update on: place points, get a surface, then
drag one point at a time. Each edit needs a *preview* (warm-started short fit,
coarse mesh) at once, and the full-quality surface when edits pause.

Protocol (vmtk aorta, points sampled uniformly on its surface):

1. a full-quality fit of the initial points (``default`` preset, 0.5 mm);
2. for each edit: one point moves ``--move`` mm along its outward normal;
   - the preview request runs through a warm ``anatomy-inr serve`` (timed from
     request to ``done``, as the Slicer module sees it) and, for comparison,
     the same arguments through a fresh ``python -m AnatomyINRLib`` process
     (timed from spawn to exit);
   - the full-quality fit of the edited points (warm-started from the preview)
     is the "final" surface the preview is compared with (Dice on 0.5 mm voxels,
     ASD).
Everything goes through the same stdin/stdout protocol the Slicer module uses.

    python benchmarks/live_refit.py [--edits 10] [--threads 2]

Writes benchmarks/results/live_refit.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
AORTA = REPO / "Testing" / "Data" / "vmtk" / "aorta-surface.stl"
RESULTS = HERE / "results"


class Worker:
    """``python -m AnatomyINRLib serve`` with blocking request/response helpers."""

    def __init__(self, threads: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "AnatomyINRLib", "serve", "--threads", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.events: "queue.Queue[dict]" = queue.Queue()
        threading.Thread(target=lambda: [self.events.put(json.loads(x)) for x in self.proc.stdout], daemon=True).start()
        assert self.events.get(timeout=300)["event"] == "ready"
        self._next_id = 0

    def run(self, argv: list) -> float:
        """Send one request; seconds until its ``done`` event (raises on a non-zero exit)."""
        self._next_id += 1
        t0 = time.perf_counter()
        self.proc.stdin.write(json.dumps({"id": self._next_id, "argv": argv}) + "\n")
        self.proc.stdin.flush()
        while True:
            event = self.events.get(timeout=600)
            if event.get("event") == "done" and event["id"] == self._next_id:
                if event["exit"] != 0:
                    raise RuntimeError(f"request failed: {event['error']}")
                return time.perf_counter() - t0

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def cold_run(argv: list) -> float:
    """The same request as a fresh process (what every edit cost before the server)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "AnatomyINRLib", *argv], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _points(n: int, seed: int):
    from AnatomyINRLib.io import read_mesh
    from AnatomyINRLib.metrics.surface import sample_surface

    ref = read_mesh(AORTA, coordinate_system="RAS")
    return sample_surface(ref, n, seed=seed)


def _compare(preview: Path, final: Path) -> dict:
    from AnatomyINRLib.io import read_mesh
    from AnatomyINRLib.metrics.evaluate import score_surface

    scores = score_surface(read_mesh(preview), read_mesh(final), spacing_mm=0.5, n_samples=5000)
    return {"dice": scores["dice"], "asd_mm": scores["asd"], "hd95_mm": scores["hd95"]}


def run(args) -> dict:
    rng = np.random.default_rng(args.seed)
    points, normals = _points(args.points, args.seed)
    work = Path(tempfile.mkdtemp(prefix="live-refit-"))
    worker = Worker(args.threads)
    common = ["--threads", str(args.threads), "--seed", str(args.seed)]
    np.savetxt(work / "p0.csv", points, delimiter=",")
    worker.run(["fit-points", str(work / "p0.csv"), "--output", str(work / "final0.vtp"), "--preset", "default",
                "--spacing", "0.5", "--save-inr", str(work / "final0.safetensors"), *common])
    rows = []
    for k in range(1, args.edits + 1):
        i = int(rng.integers(len(points)))
        points[i] += args.move * normals[i]
        np.savetxt(work / f"p{k}.csv", points, delimiter=",")
        preview = ["fit-points", str(work / f"p{k}.csv"), "--output", str(work / f"preview{k}.vtp"),
                   "--init-inr", str(work / f"final{k - 1}.safetensors"), "--preset", args.preview_preset,
                   "--iterations", str(args.preview_iterations), "--spacing", str(args.preview_spacing),
                   "--save-inr", str(work / f"preview{k}.safetensors"), *common]
        warm = worker.run(preview)
        cold = cold_run(preview)
        final = ["fit-points", str(work / f"p{k}.csv"), "--output", str(work / f"final{k}.vtp"),
                 "--init-inr", str(work / f"preview{k}.safetensors"), "--preset", "default", "--spacing", "0.5",
                 "--save-inr", str(work / f"final{k}.safetensors"), *common]
        final_seconds = worker.run(final)
        rows.append({"edit": k, "point": i, "warm_preview_s": round(warm, 3), "cold_preview_s": round(cold, 3),
                     "final_s": round(final_seconds, 3), **_compare(work / f"preview{k}.vtp", work / f"final{k}.vtp")})
    worker.close()
    med = {key: statistics.median(r[key] for r in rows)
           for key in ("warm_preview_s", "cold_preview_s", "final_s", "dice", "asd_mm", "hd95_mm")}
    med["speedup_cold_over_warm"] = med["cold_preview_s"] / med["warm_preview_s"]
    return {"settings": vars(args), "cpu_count": os.cpu_count(), "rows": rows, "median": med}


def write(result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "live_refit.json").write_text(json.dumps(result, indent=2) + "\n")
    s, m = result["settings"], result["median"]
    lines = ["# Live refit: cold CLI per edit vs warm `serve` worker", "",
             f"vmtk aorta, {s['points']} uniform points, {s['edits']} edits (one point moved {s['move']} mm along its "
             f"normal each time), {s['threads']} torch threads, {result['cpu_count']} CPU cores. Preview = "
             f"`{s['preview_preset']}` preset, {s['preview_iterations']} iterations warm-started from the last "
             f"full-quality field, mesh at {s['preview_spacing']} mm; final = `default` preset at 0.5 mm warm-started "
             "from the preview. Times from request to `done` (warm) or from spawn to exit (cold).", "",
             "| edit | warm preview s | cold preview s | final s | preview Dice vs final | ASD mm | HD95 mm |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['edit']} | {r['warm_preview_s']:.2f} | {r['cold_preview_s']:.2f} | {r['final_s']:.1f} | "
                     f"{r['dice']:.4f} | {r['asd_mm']:.3f} | {r['hd95_mm']:.3f} |")
    lines += ["", f"**Median:** warm preview {m['warm_preview_s']:.2f} s, cold preview {m['cold_preview_s']:.2f} s "
              f"({m['speedup_cold_over_warm']:.1f}x), final {m['final_s']:.1f} s, preview Dice vs final "
              f"{m['dice']:.4f} (ASD {m['asd_mm']:.3f} mm).", ""]
    (RESULTS / "live_refit.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--move", type=float, default=1.5, help="mm a point moves along its normal per edit")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preview-preset", default="fast")
    parser.add_argument("--preview-iterations", type=int, default=40)
    parser.add_argument("--preview-spacing", type=float, default=1.5)
    result = run(parser.parse_args())
    write(result)
    print(json.dumps(result["median"], indent=2))


if __name__ == "__main__":
    main()
