"""MLP building blocks: geometric init gives a sphere, skips/Fourier keep it, registry rebuilds."""

import numpy as np
import pytest
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.nn import MLP, MLPConfig, NeuralField, Normalization, build_network


def _sphere_error(net, radius):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((2000, 3), generator=gen)
    x = x / x.norm(dim=1, keepdim=True) * torch.rand((2000, 1), generator=gen) * 0.9
    with torch.no_grad():
        f = net(x)[:, 0]
    return (f - (x.norm(dim=1) - radius)).abs().mean().item()


@pytest.mark.parametrize("cfg", [
    MLPConfig(width=256, depth=4),
    MLPConfig(width=256, depth=6, skip_layers=(3,)),
    MLPConfig(width=256, depth=4, activation="relu"),
    MLPConfig(width=256, depth=4, fourier_features=16, fourier_scale=2.0),
])
def test_geometric_init_starts_as_a_sphere(cfg):
    net = MLP(cfg, generator=torch.Generator().manual_seed(1))
    # SAL init approximates ‖x‖ − r; error is small compared with the radius.
    assert _sphere_error(net, cfg.init_radius) < 0.15
    assert _sphere_error(net, cfg.init_radius) < _sphere_error(MLP(cfg.replace(geometric_init=False)), cfg.init_radius)


def test_skip_layer_concatenates_the_input():
    net = MLP(MLPConfig(width=32, depth=4, skip_layers=(2,)))
    assert net.hidden[1].out_features == 32 - 3  # feeds [h, x] into layer 2
    assert net.hidden[2].in_features == 32
    assert net(torch.zeros(5, 3)).shape == (5, 1)


def test_multi_output_and_sine():
    net = MLP(MLPConfig(width=16, depth=2, out_dim=3, activation="sine"))
    assert net(torch.rand((7, 3), generator=torch.Generator().manual_seed(0))).shape == (7, 3)


@pytest.mark.parametrize("bad", [
    {"width": 0}, {"depth": -1}, {"activation": "tanh"}, {"skip_layers": (0,)}, {"skip_layers": (4,)},
    {"fourier_features": -2}, {"softplus_beta": 0.0},
])
def test_config_validation_names_the_field(bad):
    key = next(iter(bad))
    with pytest.raises(InputError, match=key):
        MLPConfig(depth=4).replace(**bad)


def test_registry_rebuilds_the_same_network():
    cfg = MLPConfig(width=24, depth=3, skip_layers=(1,), fourier_features=4)
    net = MLP(cfg)
    rebuilt = build_network("mlp", cfg.to_dict())
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    x = torch.rand((10, 3), generator=torch.Generator().manual_seed(0))
    assert torch.equal(net(x), rebuilt(x))
    with pytest.raises(InputError, match="unknown"):
        build_network("nope", {})


def test_neural_field_maps_world_mm_exactly():
    center, scale = np.array([100.0, -40.0, 250.0]), 30.0
    net = MLP(MLPConfig(width=256, depth=4, init_radius=0.5), generator=torch.Generator().manual_seed(0))
    field = NeuralField(net, Normalization(center, scale), device="cpu", chunk_size=7)
    pts = center + np.random.default_rng(0).normal(size=(50, 3)) * 5
    with torch.no_grad():
        expected = net(torch.tensor((pts - center) / scale, dtype=torch.float32))[:, 0].double().numpy() * scale
    np.testing.assert_allclose(field(pts), expected, rtol=1e-5, atol=1e-6)  # float32 batches
    g = field.gradient(pts)
    assert g.shape == (50, 3)


def test_normalization_fit_and_round_trip():
    pts = np.array([[0.0, 0, 0], [10, 4, 2], [5, -6, 8]])
    n = Normalization.fit(pts, extent=0.7)
    normed = n.to_normalized(pts)
    assert np.abs(normed).max() == pytest.approx(0.7)
    np.testing.assert_allclose(n.to_world(normed), pts)
    assert Normalization.from_dict(n.to_dict()).scale == n.scale


def _autograd_value_and_gradient(net, x, output):
    x = x.clone().requires_grad_(True)
    f = net(x)[:, output]
    (g,) = torch.autograd.grad(f, x, torch.ones_like(f), create_graph=True)
    return f, g


@pytest.mark.parametrize("cfg,output", [
    (MLPConfig(width=32, depth=4), 0),
    (MLPConfig(width=32, depth=5, skip_layers=(2, 4)), 0),
    (MLPConfig(width=32, depth=3, activation="relu"), 0),
    (MLPConfig(width=32, depth=3, activation="sine", geometric_init=False), 0),
    (MLPConfig(width=48, depth=4, skip_layers=(2,), fourier_features=8, fourier_scale=2.0), 0),
    (MLPConfig(width=32, depth=4, out_dim=3), 2),
])
def test_explicit_gradient_equals_double_backward(cfg, output):
    # The fits take ∇f from value_and_gradient instead of create_graph autograd: the value, the
    # gradient and the weights' gradient of an eikonal + surface loss must all be autograd's (float64).
    net = MLP(cfg, generator=torch.Generator().manual_seed(3)).double()
    x = torch.rand((300, 3), generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 2 - 1

    def loss_and_grads(fn):
        net.zero_grad()
        f, g = fn(net, x, output)
        loss = ((g.norm(dim=-1) - 1.0) ** 2).mean() + f.abs().mean()
        loss.backward()
        return f.detach(), g.detach(), [p.grad.clone() for p in net.parameters()]

    f_a, g_a, p_a = loss_and_grads(_autograd_value_and_gradient)
    f_e, g_e, p_e = loss_and_grads(lambda n, x, o: n.value_and_gradient(x, o))
    assert torch.equal(f_a, f_e)
    # torch's softplus is exactly linear where βz > 20; the explicit slope is sigmoid(20) there,
    # 2e-9 from 1 (float32 rounds it to 1), so float64 agrees to ~1e-9, not to rounding.
    tol = 1e-8 if cfg.activation == "softplus" else 1e-13
    assert (g_a - g_e).abs().max() < tol
    assert g_a.abs().max() > 0.1  # the comparison is not between zeros
    for a, e in zip(p_a, p_e):
        assert (a - e).abs().max() < tol
        assert a.abs().max() > 1e-3
