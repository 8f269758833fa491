"""Benchmark: narrow band vs dense field sampling for surface extraction.

For an analytic SDF and a small fitted network field, extract the zero level
set at 0.5 and 0.25 mm with dense sampling and with the coarse-to-fine
narrow band, and report field evaluations, seconds and whether the two meshes
are identical (same vertex coordinates and faces, bit for bit). A band-factor
sweep on the analytic field shows where exactness breaks.

Run (about a minute on one core):
    python benchmarks/narrowband_meshing.py
Writes benchmarks/results/narrowband_meshing.json and .md.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from AnatomyINRLib.core.device import configure_threads
from AnatomyINRLib.io.atomic import atomic_path
from AnatomyINRLib.meshing import MeshingConfig, extract_surface, mesh_quality
from AnatomyINRLib.nn import MLP, MLPConfig, NeuralField, Normalization

RESULTS = Path(__file__).resolve().parent / "results"
CENTER = np.array([12.5, -31.0, 47.0])


def analytic_sdf(points: np.ndarray) -> np.ndarray:
    """Exact SDF of a sphere of radius 20 mm (off-origin)."""
    return np.linalg.norm(points - CENTER, axis=1) - 20.0


def peanut_sdf(points: np.ndarray) -> np.ndarray:
    """Union of two spheres (exact distance outside, 1-Lipschitz inside): the network's target."""
    a = np.linalg.norm(points - CENTER, axis=1) - 12.0
    b = np.linalg.norm(points - (CENTER + [10.0, 0.0, 0.0]), axis=1) - 8.0
    return np.minimum(a, b)


def fit_network(steps: int = 200, seed: int = 0) -> NeuralField:
    """Briefly fit a 128×4 softplus MLP (IGR geometric init) to the peanut SDF.

    Loss: |f − sdf| on points near the surface and in the box, plus the
    eikonal term 0.1·(|∇f| − 1)² (IGR, Gropp et al. 2020, eq. 2).
    """
    rng = np.random.default_rng(seed)
    norm = Normalization(center=CENTER + [5.0, 0.0, 0.0], scale=30.0)
    net = MLP(MLPConfig(), generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(steps):
        box = rng.uniform(-0.8, 0.8, size=(512, 3))
        shell = norm.to_normalized(_surface_samples(rng, 1024))
        x = torch.tensor(np.concatenate([box, shell]), dtype=torch.float32, requires_grad=True)
        target = torch.tensor(peanut_sdf(norm.to_world(x.detach().numpy())) / norm.scale, dtype=torch.float32)
        y = net(x)[:, 0]
        (grad,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        loss = (y - target).abs().mean() + 0.1 * ((grad.norm(dim=1) - 1.0) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return NeuralField(net.eval(), norm, device="cpu")


def _surface_samples(rng: np.random.Generator, n: int) -> np.ndarray:
    """Points near the peanut surface (uniform in a shell of ±2 mm, roughly)."""
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    big = rng.random(n) < 0.7
    pts = np.where(big[:, None], CENTER + 12.0 * d, CENTER + [10.0, 0.0, 0.0] + 8.0 * d)
    return pts + rng.normal(scale=1.0, size=(n, 1)) * d


def compare(field, bounds, spacing: float, **options) -> dict:
    """Dense vs narrow band at one spacing."""
    runs = {}
    for method in ("dense", "narrowband"):
        cfg = MeshingConfig(spacing_mm=spacing, method=method, **options)
        runs[method] = extract_surface(field, bounds, cfg)
    dense, narrow = runs["dense"], runs["narrowband"]
    identical = (np.array_equal(dense.mesh.vertices, narrow.mesh.vertices)
                 and np.array_equal(dense.mesh.faces, narrow.mesh.faces))
    row = {
        "spacing_mm": spacing,
        "grid_shape": list(dense.grid_shape),
        "dense_evaluations": int(dense.n_evaluations),
        "narrowband_evaluations": int(narrow.n_evaluations),
        "evaluation_ratio": dense.n_evaluations / narrow.n_evaluations,
        "dense_seconds": dense.seconds,
        "narrowband_seconds": narrow.seconds,
        "speedup": dense.seconds / narrow.seconds,
        "levels": narrow.levels,
        "gradient_bound": narrow.gradient_bound,
        "identical_mesh": bool(identical),
        "n_faces": narrow.mesh.n_faces,
        "watertight": mesh_quality(narrow.mesh, check_manifold3d=False)["watertight"],
    }
    if not identical and dense.mesh.vertices.shape == narrow.mesh.vertices.shape:
        diff = np.abs(dense.mesh.vertices - narrow.mesh.vertices).max(axis=1)
        row["differing_vertices"] = int(np.count_nonzero(diff))
        row["max_vertex_difference_mm"] = float(diff.max())
    return row


def band_sweep(bounds, spacing: float, factors=(0.5, 0.75, 1.0, 1.25, 1.5)) -> list:
    """Evaluations and exactness of the analytic mesh against the band safety factor."""
    dense = extract_surface(analytic_sdf, bounds, MeshingConfig(spacing_mm=spacing, method="dense")).mesh
    rows = []
    for factor in factors:
        res = extract_surface(analytic_sdf, bounds, MeshingConfig(spacing_mm=spacing, band_factor=factor))
        same = np.array_equal(res.mesh.vertices, dense.vertices) and np.array_equal(res.mesh.faces, dense.faces)
        rows.append({"band_factor": factor, "evaluations": int(res.n_evaluations),
                     "fraction_of_dense": res.n_evaluations / res.dense_evaluations, "identical_mesh": bool(same)})
    return rows


def to_markdown(report: dict) -> str:
    lines = [
        "# Narrow band vs dense sampling for mesh extraction",
        "",
        f"Machine: {report['machine']}; torch threads: {report['torch_threads']}; total {report['total_seconds']:.0f} s.",
        "Identical = same vertex coordinates and faces, bit for bit (VTK flying edges).",
        "",
        "| field | spacing mm | grid | dense evals | narrow evals | ratio | dense s | narrow s | speed-up | L | identical | watertight |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in report["fields"].items():
        for r in rows:
            lines.append(
                f"| {name} | {r['spacing_mm']} | {'×'.join(map(str, r['grid_shape']))} | {r['dense_evaluations']:,} | "
                f"{r['narrowband_evaluations']:,} | {r['evaluation_ratio']:.1f}× | {r['dense_seconds']:.2f} | "
                f"{r['narrowband_seconds']:.2f} | {r['speedup']:.1f}× | {r['gradient_bound']:.2f} | "
                f"{'yes' if r['identical_mesh'] else 'NO'} | {'yes' if r['watertight'] else 'no'} |"
            )
    lines += ["", "L = gradient bound used as band scale: the coarsest-grid estimate, raised when exact values",
              "showed a steeper slope (1 for an exact SDF).", "",
              f"## Band safety factor (analytic sphere, {report['sweep_spacing_mm']} mm)", "",
              "| band_factor | evaluations | fraction of dense | identical |", "|---|---|---|---|"]
    for r in report["band_sweep"]:
        lines.append(f"| {r['band_factor']} | {r['evaluations']:,} | {100 * r['fraction_of_dense']:.1f} % | "
                     f"{'yes' if r['identical_mesh'] else 'NO'} |")
    lines += ["", "Network: 128×4 softplus MLP, geometric init, "
              f"{report['network_fit_steps']} Adam steps on a two-sphere SDF ({report['network_fit_seconds']:.1f} s)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    start = time.perf_counter()
    threads = configure_threads(1)
    report = {"machine": f"{platform.processor() or platform.machine()}, python {platform.python_version()}",
              "torch_threads": threads, "fields": {}}
    sphere_box = np.stack([CENTER - 20.0, CENTER + 20.0])
    extract_surface(analytic_sdf, sphere_box, MeshingConfig(spacing_mm=2.0))   # warm-up: imports VTK
    report["fields"]["analytic sphere SDF (r = 20 mm)"] = [compare(analytic_sdf, sphere_box, s) for s in (0.5, 0.25)]
    report["sweep_spacing_mm"] = 0.25
    report["band_sweep"] = band_sweep(sphere_box, 0.25)
    fit_start = time.perf_counter()
    steps = 200
    field = fit_network(steps)
    report["network_fit_steps"], report["network_fit_seconds"] = steps, time.perf_counter() - fit_start
    net_box = np.stack([CENTER - 13.0, CENTER + [19.0, 13.0, 13.0]])
    report["fields"]["fitted MLP field"] = [compare(field, net_box, s) for s in (0.5, 0.25)]
    report["total_seconds"] = time.perf_counter() - start
    RESULTS.mkdir(parents=True, exist_ok=True)
    with atomic_path(RESULTS / "narrowband_meshing.json") as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2))
    with atomic_path(RESULTS / "narrowband_meshing.md") as tmp:
        Path(tmp).write_text(to_markdown(report))
    sys.stdout.write(to_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
