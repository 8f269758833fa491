"""Weight tokens, the DDPM schedule and both samplers (with oracle denoisers), the transformer's shapes."""

import math

import numpy as np
import pytest
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.trees._diffusion_net import WeightDenoiser, timestep_embedding
from AnatomyINRLib.trees._diffusion_schedule import DiffusionSchedule, ddim_sample, ddpm_sample
from AnatomyINRLib.trees._diffusion_tokens import (WeightTokenizer, flatten_state_dict, layout_of, layout_size,
                                                   unflatten_vector)

LAYOUT = [("lin_in.weight", (16, 3)), ("lin_in.bias", (16,)), ("block.fc.weight", (16, 16)),
          ("block.fc.bias", (16,)), ("lin_out.weight", (1, 16)), ("lin_out.bias", (1,))]


def _weights(n=7, seed=0):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(loc=0.3 * i, scale=10.0 ** (i - 3), size=(n, math.prod(s))) for i, (_, s) in enumerate(LAYOUT)]
    return np.concatenate(parts, axis=1).astype(np.float32)


def test_layout_of_state_dict_and_flatten_round_trip():
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    layout = layout_of(net.state_dict())
    assert layout == [("0.weight", (5, 3)), ("0.bias", (5,)), ("2.weight", (2, 5)), ("2.bias", (2,))]
    vec = flatten_state_dict(net.state_dict(), layout)
    assert vec.shape == (layout_size(layout),) == (32,)
    back = unflatten_vector(vec, layout)
    for k, v in net.state_dict().items():
        assert torch.equal(back[k], v)
    with pytest.raises(InputError, match="missing tensor '2.bias'"):
        flatten_state_dict({k: v for k, v in net.state_dict().items() if k != "2.bias"}, layout)


@pytest.mark.parametrize("token_size", [1, 5, 16, 64, 300])
def test_tokenize_detokenize_is_exact(token_size):
    w = _weights()
    tok = WeightTokenizer.fit(w, LAYOUT, token_size)
    tokens = tok.encode(w)
    expected_k = sum(-(-math.prod(s) // token_size) for _, s in LAYOUT)
    assert tokens.shape == (7, expected_k, token_size) and tok.n_tokens == expected_k
    np.testing.assert_array_equal(tok.decode(tokens), w)  # bit for bit
    # padding slots are zero and masked out; every real value sits in a real slot
    mask = tok.padding_mask()
    assert int(mask.sum()) == layout_size(LAYOUT)
    assert torch.all(tokens[:, ~mask] == 0)
    # every token belongs to one layer; positions count up from 0 inside each layer
    assert list(np.bincount(tok.layer_index)) == tok.tokens_per_layer
    assert all(tok.position_index[tok.layer_index == li].tolist() == list(range(k))
               for li, k in enumerate(tok.tokens_per_layer))


def test_per_layer_normalisation_statistics():
    w = _weights(n=200)
    tok = WeightTokenizer.fit(w, LAYOUT, 16)
    tokens = tok.encode(w)
    mask = tok.padding_mask()
    first = 0
    for li, k in enumerate(tok.tokens_per_layer):
        vals = tokens[:, first:first + k][:, mask[first:first + k]]
        first += k
        assert abs(float(vals.mean())) < 1e-6  # centred by the layer's own training mean
        # spread rounded to a power of two: the normalised std lies in [2^-0.5, 2^0.5]
        assert 2 ** -0.5 - 1e-6 <= float(vals.std(unbiased=False)) <= 2 ** 0.5 + 1e-6
        assert math.log2(tok.scale[li]) == round(math.log2(tok.scale[li]))
    # the layers' raw scales span 1e-3..1e2; normalised they are all O(1)
    assert tok.scale.min() < 1e-2 and tok.scale.max() > 50


def test_per_parameter_normalisation_centres_every_weight_and_round_trips():
    """One basin: trees = a shared network + small per-tree deviations. Per-parameter means remove the
    shared part, so the tokens carry the deviations at O(1); per-layer means leave the shared part in."""
    rng = np.random.default_rng(1)
    shared = _weights(n=1)[0]
    w = (shared + 1e-3 * rng.normal(size=(50, shared.size))).astype(np.float32)
    tok = WeightTokenizer.fit(w, LAYOUT, 16, per_parameter=True)
    assert tok.per_parameter and tok.mean.shape == (layout_size(LAYOUT),) and tok.scale.shape == (len(LAYOUT),)
    tokens = tok.encode(w)
    np.testing.assert_array_equal(tok.decode(tokens), w)  # bit for bit, as per layer
    mask = tok.padding_mask()
    real = tokens[:, mask]
    # every weight centred on its own mean (up to the float32 rounding of that mean; uncentred they would be ~1e3)
    np.testing.assert_allclose(real.mean(dim=0).numpy(), 0.0, atol=1e-2)
    assert 2 ** -0.5 - 1e-6 <= float(real.std(unbiased=False)) <= 2 ** 0.5 + 1e-6
    assert tok.scale.max() <= 2 ** -9  # the deviations' spread (1e-3), not the layers' spread of values
    layer = WeightTokenizer.fit(w, LAYOUT, 16)
    assert not layer.per_parameter and layer.scale.max() > 1  # a layer's spread of values, not the trees' deviations
    assert float(layer.encode(w)[:, mask].std(dim=0).median()) < 1e-2  # per layer, most weights barely differ
    # a checkpoint's statistics rebuild the same tokenizer; a wrong number of means is refused
    again = WeightTokenizer(LAYOUT, 16, tok.mean, tok.scale)
    assert again.per_parameter and torch.equal(again.encode(w), tokens)
    with pytest.raises(InputError, match="per-parameter means"):
        WeightTokenizer(LAYOUT, 16, tok.mean[:-1], tok.scale)


def test_layers_equal_in_every_network_are_not_diffused():
    """Networks with shared weight matrices and their own biases: only the biases become tokens."""
    rng = np.random.default_rng(2)
    w = np.repeat(_weights(n=1), 20, axis=0)
    biases = [i for i, (name, _) in enumerate(LAYOUT) if name.endswith("bias")]
    sizes = [math.prod(s) for _, s in LAYOUT]
    starts = np.cumsum([0] + sizes)
    for i in biases:
        w[:, starts[i]:starts[i + 1]] += rng.normal(size=(20, sizes[i])).astype(np.float32)
    tok = WeightTokenizer.fit(w, LAYOUT, 16, per_parameter=True)
    assert tok.tokens_per_layer == [0, 1, 0, 1, 0, 1] and tok.n_tokens == 3
    assert [float(x) for x in tok.scale[[0, 2, 4]]] == [0.0, 0.0, 0.0]
    tokens = tok.encode(w)
    assert tokens.shape == (20, 3, 16) and tok.padding_mask().sum() == 16 + 16 + 1
    np.testing.assert_array_equal(tok.decode(tokens), w)  # the shared layers come back exactly
    noisy = tok.decode(tokens + torch.randn(tokens.shape, dtype=torch.float64))  # noise moves only the biases
    shared = [j for i in range(len(LAYOUT)) if i not in biases for j in range(starts[i], starts[i + 1])]
    np.testing.assert_array_equal(noisy[:, shared], w[:, shared])
    assert np.all(noisy[:, starts[1]:starts[2]] != w[:, starts[1]:starts[2]])
    again = WeightTokenizer(LAYOUT, 16, tok.mean, tok.scale)  # rebuilt from a checkpoint's statistics
    assert again.tokens_per_layer == tok.tokens_per_layer and torch.equal(again.encode(w), tokens)
    # with nothing varying (one network), every layer is still diffused; per-layer means never drop one
    assert WeightTokenizer.fit(w[:1], LAYOUT, 16, per_parameter=True).n_tokens == 3 + 1 + 16 + 1 + 1 + 1
    assert 0 not in WeightTokenizer.fit(w, LAYOUT, 16).tokens_per_layer
    with pytest.raises(InputError, match="constant layer"):
        WeightTokenizer(LAYOUT, 16, np.zeros(len(LAYOUT), np.float32), tok.scale)


def test_tokenizer_refuses_wrong_width():
    tok = WeightTokenizer.fit(_weights(), LAYOUT, 16)
    with pytest.raises(InputError, match="expected shape"):
        tok.encode(np.zeros((2, 10), np.float32))
    with pytest.raises(InputError, match="layout needs"):
        WeightTokenizer.fit(np.zeros((2, 10), np.float32), LAYOUT, 16)


def test_schedule_values():
    s = DiffusionSchedule(1000, 1e-4, 2e-2)
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(2e-2)
    assert torch.all(torch.diff(s.betas) > 0)
    assert torch.all(torch.diff(s.alpha_bar) < 0)  # strictly decreasing
    assert s.alpha_bar[0].item() == pytest.approx(1 - 1e-4)
    # ᾱ_T = Π(1 − β_t) ≈ exp(−Σβ − Σβ²/2) = exp(−10.05 − 0.067): pure noise at t = T
    assert s.alpha_bar[-1].item() == pytest.approx(math.exp(-10.05 - 0.067), rel=0.01)
    assert s.alpha_bar[-1].item() == pytest.approx(np.prod(1 - np.linspace(1e-4, 2e-2, 1000)), rel=1e-12)
    assert s.alpha_bar[-1].item() < 1e-4
    assert s.alpha_bar_at(torch.tensor([-1])).item() == 1.0
    # the paper's printed [1e-4, 1e-2] leaves √ᾱ_T ≈ 0.08 of the signal
    assert DiffusionSchedule(1000, 1e-4, 1e-2).alpha_bar[-1].sqrt().item() == pytest.approx(0.08, abs=0.005)
    steps = s.ddim_timesteps(50)
    assert steps[0] == 999 and steps[-1] == 0 and len(steps) == 50 and steps == sorted(steps, reverse=True)


def _oracle(schedule, data, kind):
    """A perfect denoiser: returns the true x_0 (or the true ε = (x_t − √ᾱ x_0)/√(1 − ᾱ)) of ``data``."""
    calls = []

    def denoise(x_t, t):
        calls.append(int(t[0]))
        if kind == "x0":
            return data.clone()
        ab = schedule.alpha_bar_at(t).to(x_t.dtype).reshape(-1, 1, 1)
        return (x_t - ab.sqrt() * data) / (1 - ab).sqrt()

    return denoise, calls


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "ddim-eta"])
@pytest.mark.parametrize("kind", ["x0", "eps"])
def test_oracle_denoiser_returns_the_data(sampler, kind):
    schedule = DiffusionSchedule(1000, prediction=kind)
    data = torch.from_numpy(np.random.default_rng(3).normal(size=(4, 6, 8)))  # float64
    denoise, calls = _oracle(schedule, data, kind)
    g = torch.Generator().manual_seed(0)
    if sampler == "ddpm":
        out = ddpm_sample(denoise, schedule, data.shape, g, dtype=torch.float64)
        assert calls == list(range(999, -1, -1))
    else:
        out = ddim_sample(denoise, schedule, data.shape, g, sample_steps=25, eta=0.0 if sampler == "ddim" else 1.0,
                          dtype=torch.float64)
        assert len(calls) == 25 and calls[0] == 999 and calls[-1] == 0
    if kind == "x0":
        assert torch.equal(out, data)  # exactly the data
    else:  # ε → x̂_0 = (x_t − √(1−ᾱ) ε)/√ᾱ: exact up to float64 rounding
        torch.testing.assert_close(out, data, rtol=0, atol=1e-9)


def test_ddim_oracle_trajectory_stays_on_the_forward_marginal():
    """With the true x_0 and ε, DDIM η=0 keeps x_s = √ᾱ_s x_0 + √(1−ᾱ_s) ε at every step (Song eq. 12)."""
    schedule = DiffusionSchedule(1000)
    data = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x_T = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    eps0 = (x_T - schedule.alpha_bar[-1].sqrt() * data) / (1 - schedule.alpha_bar[-1]).sqrt()
    seen = []

    def denoise(x_t, t):
        ab = schedule.alpha_bar_at(t).reshape(-1, 1, 1)
        seen.append(float((x_t - ab.sqrt() * data - (1 - ab).sqrt() * eps0).abs().max()))
        return data

    ddim_sample(denoise, schedule, data.shape, torch.Generator(), sample_steps=10, dtype=torch.float64, x_T=x_T)
    assert max(seen) < 1e-12


def test_samplers_are_reproducible_with_a_generator():
    schedule = DiffusionSchedule(100)
    data = torch.zeros(2, 3, 4)

    def denoise(x_t, t):
        return 0.5 * x_t

    a = ddpm_sample(denoise, schedule, data.shape, torch.Generator().manual_seed(5))
    b = ddpm_sample(denoise, schedule, data.shape, torch.Generator().manual_seed(5))
    c = ddpm_sample(denoise, schedule, data.shape, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_denoiser_shapes_and_timestep_dependence():
    tok = WeightTokenizer.fit(_weights(), LAYOUT, 16)
    net = WeightDenoiser(tok.layer_index, tok.position_index, 16, width=32, depth=2, heads=4,
                         generator=torch.Generator().manual_seed(0))
    x = tok.encode(_weights(3)).float()
    out = net(x, torch.tensor([0, 500, 999]))
    assert out.shape == x.shape
    # the timestep token reaches every output token
    assert not torch.allclose(net(x, torch.tensor([0, 0, 0])), net(x, torch.tensor([999, 999, 999])))
    same = WeightDenoiser(tok.layer_index, tok.position_index, 16, width=32, depth=2, heads=4,
                          generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), same.state_dict().values()))


def test_per_token_projection_gives_each_token_its_own_linear_maps():
    """Token k enters through its own S → d map and leaves through its own d → S map (TrIND's code)."""
    tok = WeightTokenizer.fit(_weights(), LAYOUT, 16)
    net = WeightDenoiser(tok.layer_index, tok.position_index, 16, width=32, depth=2, heads=4,
                         generator=torch.Generator().manual_seed(0), per_token=True).double()
    k = tok.n_tokens
    assert net.token_in_weight.shape == (k, 16, 32) and net.token_out_weight.shape == (k, 32, 16)
    with torch.no_grad():
        net.token_in_bias.normal_(generator=torch.Generator().manual_seed(1))
        net.token_out_bias.normal_(generator=torch.Generator().manual_seed(2))
    x, t = tok.encode(_weights(3)), torch.tensor([0, 500, 999])
    # the same network written token by token
    h = torch.stack([x[:, i] @ net.token_in_weight[i] + net.token_in_bias[i] for i in range(k)], dim=1)
    h = h + net.layer_embed(net.layer_index) + net.position_embed(net.position_index)
    h = torch.cat([(net.time_mlp(timestep_embedding(t, 32).double()) + net.time_slot)[:, None], h], dim=1)
    for block in net.blocks:
        h = block(h)
    h = net.ln_out(h[:, 1:])
    expected = torch.stack([h[:, i] @ net.token_out_weight[i] + net.token_out_bias[i] for i in range(k)], dim=1)
    assert torch.allclose(net(x, t), expected, rtol=0, atol=1e-12)
    # two tokens with equal inputs and embeddings still map through different weights
    assert not torch.equal(net.token_out_weight[0], net.token_out_weight[1])


def test_hull_head_outputs_a_convex_combination_of_the_training_networks():
    """With hull tokens e_1 … e_N (unit vectors) the output's coordinates are the mixture weights."""
    k, size, n = 3, 4, 5
    hull = torch.zeros(n, k, size)
    for i in range(n):
        hull.view(n, -1)[i, i] = 1.0
    net = WeightDenoiser(np.zeros(k, dtype=int), np.arange(k), size, width=16, depth=1, heads=2,
                         generator=torch.Generator().manual_seed(0), hull=hull)
    with torch.no_grad():
        net.hull_logits.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(1))
    x = torch.randn(6, k, size, generator=torch.Generator().manual_seed(2))
    out = net(x, torch.tensor([0, 10, 100, 500, 900, 999]))
    w = out.reshape(6, -1)[:, :n]
    assert torch.all(w > 0) and torch.allclose(w.sum(dim=1), torch.ones(6), atol=1e-6)
    assert torch.all(out.reshape(6, -1)[:, n:] == 0)
    assert w.std(dim=0).max() > 1e-3  # the weights depend on the input
    # the training tokens travel with the weights (a checkpoint samples without the training set)
    assert torch.equal(net.state_dict()["hull"], hull)


@pytest.mark.parametrize("per_token", [False, True])
@pytest.mark.parametrize("hull", [False, True])
def test_every_parameter_reaches_the_output(per_token, hull):
    """DistributedDataParallel refuses parameters that get no gradient: every variant has none unused."""
    tok = WeightTokenizer.fit(_weights(), LAYOUT, 16)
    net = WeightDenoiser(tok.layer_index, tok.position_index, 16, width=32, depth=1, heads=4, per_token=per_token,
                         generator=torch.Generator().manual_seed(0),
                         hull=tok.encode(_weights(5)).float() if hull else None)
    net(tok.encode(_weights(2)).float(), torch.tensor([3, 700])).pow(2).sum().backward()
    assert [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0] == []


@pytest.mark.parametrize("x0_skip", [True, False])
def test_x0_skip_carries_noise_the_head_cannot_reach_into_the_sample(x0_skip):
    """A head whose output range misses some directions predicts 0 there (F = 0 below).

    Without the skip x̂_0 = F = 0, and DDIM (η = 0) shrinks those directions to exactly 0. With it
    x̂_0 = √ᾱ·x_t, and each step keeps x_t there up to cos(Δφ): 96 % of the initial noise reaches the
    sample. The denoiser's shared d → S head (d = 128 < S = 512 in the presets) misses S − d directions
    of every token, so with the skip its samples keep that noise (benchmarks/results/trees_diffusion_noskip_600.md
    measures the preset without it).
    """
    schedule = DiffusionSchedule(1000, prediction="x0", x0_skip=x0_skip)
    shape = (64, 4, 8)

    def unreachable(x_t, t):
        return torch.zeros_like(x_t)

    out = ddim_sample(unreachable, schedule, shape, torch.Generator().manual_seed(0), sample_steps=50, eta=0.0,
                      dtype=torch.float64)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    if x0_skip:  # the sample is the initial noise itself, scaled by 0.963 (measured)
        torch.testing.assert_close(out, 0.963 * noise, rtol=0, atol=2e-3 * float(noise.abs().max()))
    else:
        assert float(out.abs().max()) < 1e-6
