"""Training the weight-space diffusion model: learning a toy distribution, EMA, resume, refusing other layouts."""

import json

import numpy as np
import pytest
import torch

from AnatomyINRLib.core.errors import Cancelled, InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.io.checkpoint import load_checkpoint
from AnatomyINRLib.trees._diffusion_model import load_model
from AnatomyINRLib.trees._diffusion_train import EMA, run_training, state_digest
from AnatomyINRLib.trees.config import DiffusionConfig, diffusion_preset

from trees_toy_weights import MODE_STD, MODES, TOY_LAYOUT, draw_mixture, mixture_embedding

CPU = torch.device("cpu")
SMALL = dict(token_size=8, width=32, depth=1, heads=2, diffusion_steps=100, batch_size=8, sample_steps=10)


def _mixture_statistics(weights):
    """Plane coordinates of samples, their distance off the plane, and per-mode statistics."""
    a, c = mixture_embedding()
    z = (weights - c) @ np.linalg.pinv(a).T
    off_plane = np.linalg.norm(weights - (z @ a.T + c), axis=1)
    d = np.linalg.norm(z[:, None] - MODES[None], axis=2)
    near, which = d.min(axis=1) < 3 * MODE_STD, d.argmin(axis=1)
    modes = [(z[near & (which == k)].mean(axis=0), z[near & (which == k)].std(axis=0))
             if np.count_nonzero(near & (which == k)) > 1 else (np.full(2, np.nan), np.full(2, np.nan)) for k in range(2)]
    return {"near": near.mean(), "balance": (which[near] == 0).mean(), "off_plane": np.median(off_plane),
            "modes": modes}


def test_learns_a_two_mode_mixture(tmp_path, quiet):
    torch.set_num_threads(1)
    _, train = draw_mixture(256, np.random.default_rng(0))
    spread = np.median(np.linalg.norm(train - train.mean(axis=0), axis=1))
    cfg = DiffusionConfig(token_size=8, width=64, depth=2, heads=4, epochs=150, batch_size=64, learning_rate=5e-3,
                          lr_decay=1.0, ema_decay=0.98, checkpoint_every=150, sample_steps=50)
    run_training(train, TOY_LAYOUT, cfg, 0, CPU, tmp_path / "toy.safetensors", quiet)
    model = load_model(tmp_path / "toy.safetensors")
    stats = _mixture_statistics(model.sample(400, torch.Generator().manual_seed(1), batch_size=400))
    # measured: near 0.97, balance 0.47, modes at (-2.08, -0.03), (2.08, -0.05) with std ≈ (0.28, 0.22),
    # off-plane 0.30 of the data's spread (pure noise decoded: > 1)
    assert stats["near"] >= 0.9
    assert 0.4 <= stats["balance"] <= 0.6
    for k, (mean, std) in enumerate(stats["modes"]):
        assert np.linalg.norm(mean - MODES[k]) < 0.25
        assert np.all((0.5 * MODE_STD < std) & (std < 1.6 * MODE_STD))  # neither collapsed nor smeared
    assert stats["off_plane"] < 0.4 * spread
    # the same statistics on the untrained model's samples fail: the test measures learning
    untrained = _mixture_statistics(model.tokenizer.decode(torch.randn(400, model.tokenizer.n_tokens, 8,
                                                                       generator=torch.Generator().manual_seed(2))))
    assert untrained["near"] < 0.3 and untrained["off_plane"] > 0.8 * spread


def test_ema_update_rule():
    lin = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema = EMA(lin, 0.3)
    for value in (2.0, 4.0, 8.0):
        with torch.no_grad():
            lin.weight.fill_(value)
        ema.update(lin)
    # warm-up d_n = min(0.3, (1+n)/(10+n)): 0.1, 2/11, 0.25; s = 1 → 1.9 → (2/11)·1.9 + (9/11)·4 → ·0.25 + 0.75·8
    s1 = 0.1 * 1.0 + 0.9 * 2.0
    s2 = 2 / 11 * s1 + 9 / 11 * 4.0
    assert ema.shadow["weight"].item() == pytest.approx(0.25 * s2 + 0.75 * 8.0, abs=1e-5)
    assert ema.updates == 3
    for _ in range(20):  # past the warm-up the decay is the configured one
        ema.update(lin)
    before = ema.shadow["weight"].item()
    with torch.no_grad():
        lin.weight.fill_(0.0)
    ema.update(lin)
    assert ema.shadow["weight"].item() == pytest.approx(0.3 * before, abs=1e-5)


@pytest.mark.parametrize("variant", [{}, {"projection": "token"}, {"head": "hull", "x0_skip": False},
                                     {"projection": "token", "head": "hull", "x0_skip": False}])
def test_checkpoint_holds_weights_ema_and_layout_and_sampling_uses_ema(tmp_path, quiet, variant):
    _, w = draw_mixture(16, np.random.default_rng(1))
    cfg = DiffusionConfig(**SMALL, epochs=3, ema_decay=0.5, **variant)
    out = run_training(w, TOY_LAYOUT, cfg, 4, CPU, tmp_path / "c.safetensors", quiet, inr_info={"kind": "toy"})
    tensors, meta = load_checkpoint(tmp_path / "c.safetensors")
    assert meta["kind"] == "trees-weight-diffusion" and meta["epoch"] == 3 and meta["finished"]
    assert meta["layout"] == [["a.weight", [4, 2]], ["a.bias", [4]], ["b.weight", [1, 4]], ["b.bias", [1]]]
    assert meta["inr"] == {"kind": "toy"} and meta["networks"] == 16 and len(meta["history"]) == 3
    sidecar = json.loads((tmp_path / "c.json").read_text())
    assert sidecar["training"] == cfg.to_dict()
    model = load_model(tmp_path / "c.safetensors")
    ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    raw = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    loaded = model.denoiser.state_dict()
    assert all(torch.equal(loaded[k], ema[k]) for k in loaded)
    assert any(not torch.equal(ema[k], raw[k]) for k in raw)
    assert state_digest(model.denoiser) == out["ema_digest"]
    # samples are reproducible with a seeded generator and have the layout's width
    s1 = model.sample(3, torch.Generator().manual_seed(9))
    s2 = model.sample(3, torch.Generator().manual_seed(9))
    assert s1.shape == (3, 17) and s1.dtype == np.float32 and np.array_equal(s1, s2)


@pytest.mark.parametrize("variant", [{}, {"head": "hull", "x0_skip": False}])
def test_resume_equals_uninterrupted_training(tmp_path, quiet, variant):
    _, w = draw_mixture(20, np.random.default_rng(2))
    cfg = DiffusionConfig(**SMALL, epochs=4, **variant)
    straight = run_training(w, TOY_LAYOUT, cfg, 7, CPU, tmp_path / "a.safetensors", quiet)

    def stop_after_two(event):
        if event.stage == "epoch" and event.metrics["epoch"] == 2:
            raise Cancelled("interrupted")

    with pytest.raises(Cancelled):
        run_training(w, TOY_LAYOUT, cfg, 7, CPU, tmp_path / "b.safetensors", ProgressReporter(stop_after_two))
    assert load_checkpoint(tmp_path / "b.safetensors")[1]["epoch"] == 2
    resumed = run_training(w, TOY_LAYOUT, cfg, 7, CPU, tmp_path / "b.safetensors", quiet)
    assert resumed["resumed"] and resumed["start_epoch"] == 2
    assert resumed["digest"] == straight["digest"] and resumed["ema_digest"] == straight["ema_digest"]
    assert resumed["history"] == straight["history"]
    # a finished run asked for more epochs continues; another seed or other data is refused
    longer = run_training(w, TOY_LAYOUT, cfg.replace(epochs=5), 7, CPU, tmp_path / "b.safetensors", quiet)
    assert longer["start_epoch"] == 4 and len(longer["history"]) == 5
    with pytest.raises(InputError, match="another configuration, seed or data set"):
        run_training(w, TOY_LAYOUT, cfg, 8, CPU, tmp_path / "b.safetensors", quiet)
    with pytest.raises(InputError, match="another configuration, seed or data set"):
        run_training(w + 1, TOY_LAYOUT, cfg, 7, CPU, tmp_path / "b.safetensors", quiet)


def test_hull_head_needs_x0_prediction_without_the_skip():
    for bad in ({"x0_skip": True}, {"prediction": "eps", "x0_skip": False}):
        with pytest.raises(InputError, match="head 'hull'"):
            DiffusionConfig(head="hull", **bad).validate()
    DiffusionConfig(head="hull", x0_skip=False).validate()


def test_hull_temperature_blends_training_networks(tmp_path, quiet):
    """τ → ∞ gives equal weights: the sample is the training set's mean network, whatever the noise."""
    _, w = draw_mixture(16, np.random.default_rng(1))
    cfg = DiffusionConfig(**SMALL, epochs=2, head="hull", x0_skip=False)
    run_training(w, TOY_LAYOUT, cfg, 4, CPU, tmp_path / "c.safetensors", quiet)
    model = load_model(tmp_path / "c.safetensors")
    probe = (torch.randn(2, model.tokenizer.n_tokens, model.tokenizer.token_size, generator=torch.Generator()),
             torch.tensor([5, 50]))
    with torch.no_grad():
        before = model.denoiser(*probe)
    sharp = model.sample(4, torch.Generator().manual_seed(9), temperature=1e-6)
    assert model.mixture.shape == (4, 16) and np.allclose(model.mixture.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(model.mixture.max(axis=1) > 0.99)  # a near-zero temperature picks one network
    nearest = np.abs(sharp[:, None, :] - w[None]).max(axis=2).min(axis=1)
    assert np.all(nearest < 0.02 * np.abs(w).max())  # … and returns it
    flat = model.sample(4, torch.Generator().manual_seed(9), temperature=1e6)
    assert np.allclose(model.mixture, 1 / 16, atol=1e-5)
    assert np.allclose(flat, w.astype(np.float64).mean(axis=0), atol=1e-5)
    with torch.no_grad():
        assert torch.equal(model.denoiser(*probe), before)  # sampling does not change the model
    with pytest.raises(InputError, match="temperature"):
        model.sample(1, torch.Generator(), temperature=0.0)


def test_temperature_of_a_tokens_head_is_refused():
    with pytest.raises(InputError, match="temperature: applies to the 'hull' head only"):
        DiffusionConfig(temperature=2.0).validate()


def test_dropout_is_refused():
    """Attention dropout would draw from torch's global RNG: a run would not follow from its seed."""
    with pytest.raises(InputError, match="dropout: expected 0"):
        DiffusionConfig(**SMALL, dropout=0.1).validate()


def test_checkpoint_of_another_layout_is_refused(tmp_path, quiet):
    _, w = draw_mixture(8, np.random.default_rng(3))
    cfg = DiffusionConfig(**SMALL, epochs=1)
    run_training(w, TOY_LAYOUT, cfg, 0, CPU, tmp_path / "c.safetensors", quiet)
    other = [("a.weight", (4, 2)), ("a.bias", (4,)), ("b.weight", (2, 4)), ("b.bias", (2,))]
    with pytest.raises(InputError, match=r"another weight layout .*17 values in 4 tensors; these INRs have 22 in 4; "
                                         r"first difference: \('b.weight', \(1, 4\)\) vs \('b.weight', \(2, 4\)\)"):
        load_model(tmp_path / "c.safetensors", layout=other)
    renamed = [("x" + n, s) for n, s in TOY_LAYOUT]
    with pytest.raises(InputError, match="another weight layout"):
        load_model(tmp_path / "c.safetensors", layout=renamed)
    with pytest.raises(InputError, match="another weight layout"):
        run_training(np.zeros((8, 22), np.float32), other, cfg, 0, CPU, tmp_path / "c.safetensors", quiet)
    assert load_model(tmp_path / "c.safetensors", layout=TOY_LAYOUT).layout == TOY_LAYOUT


def test_bad_training_input(tmp_path, quiet):
    cfg = diffusion_preset("tiny")
    with pytest.raises(InputError, match="layout needs 17"):
        run_training(np.zeros((4, 16), np.float32), TOY_LAYOUT, cfg, 0, CPU, tmp_path / "x.safetensors", quiet)
    with pytest.raises(InputError, match="NaN"):
        run_training(np.full((4, 17), np.nan, np.float32), TOY_LAYOUT, cfg, 0, CPU, tmp_path / "x.safetensors", quiet)
    with pytest.raises(InputError, match="heads: must divide width"):
        DiffusionConfig(width=30, heads=4).validate()
    assert not (tmp_path / "x.safetensors").exists()
