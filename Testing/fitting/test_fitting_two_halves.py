"""An iteration computed as two halves on two threads (fitting.loop on CPU with >= 2 threads).

The halves must give the one-pass gradient (same samples, same terms; only the order of
float32 sums differs), and a two-thread fit must be reproducible and leave the thread
count as it found it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from AnatomyINRLib.fitting import IGRObjective, LossConfig, OutsideConfig, SamplingConfig, outside_supervision
from AnatomyINRLib.nn import MLP, MLPConfig
from AnatomyINRLib.nn.field import Normalization
from AnatomyINRLib.surface import api
from AnatomyINRLib.surface.config import preset_config


def _sphere(n: int, radius: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.random.default_rng(seed).normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return radius * d, d


def _objective(points_mm: list, normals: list, normalization: Normalization) -> IGRObjective:
    """Two outputs (nested-style), normals on the second, the certified-outside term on top."""
    gen = torch.Generator().manual_seed(5)
    loss = LossConfig(eikonal_weight=0.1, offsurface_weight=0.1, normal_weight=1.0)
    obj = IGRObjective.from_points([normalization.to_normalized(p) for p in points_mm], normals,
                                   SamplingConfig(), loss, gen, torch.device("cpu"), weights=[1.0, 0.5])
    outside = outside_supervision(points_mm[0], OutsideConfig(samples=256), seed=3)
    obj.extra_terms.append(outside.bind(normalization, torch.device("cpu"), gen))
    return obj


def test_two_halves_give_the_one_pass_gradient():
    inner, _ = _sphere(150, 10.0, 0)
    outer, n_outer = _sphere(150, 14.0, 1)
    norm = Normalization.fit(outer)
    net = MLP(MLPConfig(width=32, depth=3, out_dim=2), generator=torch.Generator().manual_seed(2))
    params = list(net.parameters())
    one = _objective([inner, outer], [None, n_outer], norm)
    two = _objective([inner, outer], [None, n_outer], norm)
    for it in range(12):  # iteration 10 runs a new violation search in both
        net.zero_grad()
        step = one(net)
        step.total.backward()
        ref = [p.grad.clone() for p in params]
        with ThreadPoolExecutor(1) as pool:
            halves, grads = two.gradients(net, params, pool)
        assert abs(float(halves.total) - float(step.total.detach())) <= 1e-5 * abs(float(step.total.detach()))
        assert np.allclose(halves.eikonal, step.eikonal, rtol=1e-5)
        assert np.allclose(halves.surface, step.surface, rtol=1e-6)
        for r, g in zip(ref, grads):
            assert r.abs().max() > 0
            assert torch.allclose(r, g, rtol=1e-4, atol=1e-6 * float(r.abs().max()))


def test_two_thread_fit_is_reproducible_and_restores_the_thread_count():
    points, _ = _sphere(200, 12.0, 4)
    cfg = preset_config("default")
    cfg.optim.iterations, cfg.optim.min_iterations = 60, 60
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fits = [api.fit_points(points, config=cfg, seed=1, device="cpu") for _ in range(2)]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    probe = np.random.default_rng(0).uniform(-15, 15, size=(500, 3))
    a, b = (f.field(probe) for f in fits)
    assert np.array_equal(a, b)
    assert fits[0].report["outside"]["enabled"]
