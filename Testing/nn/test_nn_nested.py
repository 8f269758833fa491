"""Nesting by construction: holds at every point, far away too, for any weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.nn.nested import NestedNetworkConfig, NestedSDFNetwork
from AnatomyINRLib.nn.field import NeuralField, Normalization
from AnatomyINRLib.nn.mlp import MLPConfig
from AnatomyINRLib.nn.registry import build_network


def _scrambled(config: NestedNetworkConfig, seed: int) -> NestedSDFNetwork:
    """A network with large random weights: anything training could produce, and worse."""
    gen = torch.Generator().manual_seed(seed)
    net = NestedSDFNetwork(config, generator=gen)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 2.0)
    return net


def _points(seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    near = torch.rand((20000, 3), generator=gen) * 2 - 1                 # the training cube
    far = (torch.rand((20000, 3), generator=gen) * 2 - 1) * 100.0        # 100× farther out
    return torch.cat([near, far])


@pytest.mark.parametrize("construction", ["smooth_max", "offset"])
@pytest.mark.parametrize("k", [2, 3])
def test_nested_everywhere_for_random_weights(construction, k):
    cfg = NestedNetworkConfig(mlp=MLPConfig(out_dim=k, width=32, depth=3), n_surfaces=k, construction=construction)
    for seed in range(3):
        f = _scrambled(cfg, seed)(_points(seed)).detach()
        assert torch.all(f[:, :-1] >= f[:, 1:]), "an inner field went below its outer field"


@pytest.mark.parametrize("construction", ["smooth_max", "offset"])
def test_min_thickness_is_honoured_on_the_field(construction):
    t = 0.03
    cfg = NestedNetworkConfig(mlp=MLPConfig(out_dim=3, width=32, depth=3), min_thickness=t, construction=construction)
    net = _scrambled(cfg, 4)
    x = _points(5)
    gaps = net.gaps(x).detach()
    # t holds up to one float32 rounding of |f| (≈ 6e-8 · |f|).
    slack = 1e-6 * (1 + net(x).detach().abs().max(dim=1).values)
    assert torch.all(gaps >= t - slack[:, None])


def test_unconstrained_joint_network_can_violate():
    # The baseline (the paper's joint network) has no guarantee: the same check fails for it.
    cfg = NestedNetworkConfig(mlp=MLPConfig(out_dim=3, width=32, depth=3), nesting=False)
    f = _scrambled(cfg, 0)(_points(0)).detach()
    assert torch.any(f[:, :-1] < f[:, 1:])


def test_initial_field_is_three_nested_spheres():
    cfg = NestedNetworkConfig(mlp=MLPConfig(out_dim=3, width=64, depth=3, init_radius=0.5), gap_init=(0.05, 0.1))
    net = NestedSDFNetwork(cfg, generator=torch.Generator().manual_seed(0))
    x = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.0, 0.0, 0.9]])
    f = net(x).detach()
    # Outer first gap 0.05, inner gap 0.1: zero crossings near radii 0.5, 0.45, 0.35.
    gaps = (f[:, :-1] - f[:, 1:]).numpy()
    assert np.allclose(gaps[:, 1], 0.05, atol=0.01) and np.allclose(gaps[:, 0], 0.1, atol=0.01)


def test_rebuild_from_registry_and_world_field_keeps_order():
    cfg = NestedNetworkConfig(mlp=MLPConfig(out_dim=3, width=16, depth=2), min_thickness=0.01)
    net = _scrambled(cfg, 1)
    clone = build_network("nested", cfg.to_dict())
    clone.load_state_dict(net.state_dict())
    x = _points(2)
    assert torch.equal(net(x), clone(x))
    field = NeuralField(clone, Normalization(center=[10.0, -5.0, 30.0], scale=40.0))
    mm = field(np.random.default_rng(0).uniform(-4000, 4000, (5000, 3)))
    assert mm.shape == (5000, 3) and np.all(mm[:, :-1] >= mm[:, 1:])


def test_config_validation():
    with pytest.raises(InputError, match="n_surfaces"):
        NestedNetworkConfig(mlp=MLPConfig(out_dim=4), n_surfaces=4).validate()
    with pytest.raises(InputError, match="out_dim"):
        NestedNetworkConfig(mlp=MLPConfig(out_dim=1), n_surfaces=2).validate()
    with pytest.raises(InputError, match="construction"):
        NestedNetworkConfig(construction="hard").validate()
    with pytest.raises(InputError, match="gap_init"):
        NestedNetworkConfig(gap_init=(0.1,)).validate()


_LOAD_WITHOUT_CAPABILITIES = """
import sys
import numpy as np
for name in ("surface", "nested", "blend", "cli"):
    sys.modules["AnatomyINRLib." + name] = None  # any import of a capability package now fails
from AnatomyINRLib.io.inr import load_inr
field, meta = load_inr(sys.argv[1])
np.save(sys.argv[2], field(np.load(sys.argv[3])))
print(meta["network"]["kind"], type(field.network).__module__)
"""


def test_saved_nested_field_loads_without_importing_a_capability_package(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from AnatomyINRLib.io.inr import save_inr

    cfg = NestedNetworkConfig(mlp=MLPConfig(out_dim=2, width=16, depth=2), n_surfaces=2, min_thickness=0.02)
    field = NeuralField(_scrambled(cfg, 3), Normalization(center=[5.0, 1.0, -2.0], scale=20.0), device="cpu")
    probe = np.random.default_rng(0).uniform(-30, 30, (200, 3))
    np.save(tmp_path / "probe.npy", probe)
    save_inr(field, tmp_path / "walls.safetensors")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", _LOAD_WITHOUT_CAPABILITIES, str(tmp_path / "walls.safetensors"),
                           str(tmp_path / "out.npy"), str(tmp_path / "probe.npy")],
                          capture_output=True, text=True, cwd=root, env={"PYTHONPATH": str(root)}, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["nested", "AnatomyINRLib.nn.nested"]  # kind name unchanged: old files load
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), field(probe))
