"""Every random thing takes a generator: nothing reads or writes a global RNG."""

import ast
from pathlib import Path

import pytest
import torch

import AnatomyINRLib
import AnatomyINRLib.core as core
from AnatomyINRLib.nn import NestedNetworkConfig, NestedSDFNetwork
from AnatomyINRLib.nn import MLP, MLPConfig

LIBRARY = Path(AnatomyINRLib.__file__).resolve().parent
# Calls that seed (or draw from) a process-wide RNG.
_GLOBAL_SEEDING = {"manual_seed", "seed", "fork_rng", "set_rng_state", "initial_seed"}
_GLOBAL_RNG_OWNERS = ("torch", "torch.random", "torch.cuda", "np.random", "numpy.random", "random")


def _global_seeding_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        base = ast.unparse(node.func.value)
        # torch.manual_seed(...), torch.random.fork_rng(...), np.random.seed(...), random.seed(...)
        if node.func.attr in _GLOBAL_SEEDING and base in _GLOBAL_RNG_OWNERS:
            found.append(f"{path.relative_to(LIBRARY)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_library_never_seeds_a_global_rng():
    calls = [c for p in sorted(LIBRARY.rglob("*.py")) for c in _global_seeding_calls(p)]
    assert calls == []


def test_core_exports_no_global_seeding_helper():
    assert not any("seed_everything" in name or name.startswith("seed") for name in core.__all__)
    assert "make_generator" in core.__all__


@pytest.mark.parametrize("build", [
    lambda gen: MLP(MLPConfig(width=16, depth=3, skip_layers=(2,)), generator=gen),
    lambda gen: MLP(MLPConfig(width=16, depth=3, activation="sine"), generator=gen),
    lambda gen: MLP(MLPConfig(width=16, depth=2, activation="relu", geometric_init=False), generator=gen),
    lambda gen: NestedSDFNetwork(NestedNetworkConfig(mlp=MLPConfig(out_dim=3, width=16, depth=2)), generator=gen),
])
def test_network_weights_come_from_the_generator_only(build):
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = build(torch.Generator().manual_seed(4)).state_dict()
    assert torch.equal(torch.random.get_rng_state(), before)  # global RNG untouched
    torch.manual_seed(999)                                     # a different global state...
    b = build(torch.Generator().manual_seed(4)).state_dict()
    c = build(torch.Generator().manual_seed(5)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)            # ...same weights
    assert not all(torch.equal(a[k], c[k]) for k in a if a[k].numel() > 1)
