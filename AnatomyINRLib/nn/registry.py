"""Registry of network kinds so saved fields rebuild without pickling code.

An INR file stores ``kind`` and the kind's config dict; :func:`build_network`
rebuilds the module from those plain values and the weights are loaded as
tensors only (safetensors / ``weights_only=True``). Every network the library
saves lives in ``nn`` and is registered here, so loading a field never imports
a capability package. The kind names are part of the file format: never rename.
"""

from __future__ import annotations

from typing import Any, Callable

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.nn.mlp import MLP, MLPConfig
from AnatomyINRLib.nn.nested import NETWORK_KIND as NESTED_KIND
from AnatomyINRLib.nn.nested import build_nested_network
from AnatomyINRLib.nn.occupancy import NETWORK_KIND as OCCUPANCY_KIND
from AnatomyINRLib.nn.occupancy import build_occupancy_network

_BUILDERS: dict[str, Callable[[dict], Any]] = {
    "mlp": lambda cfg: MLP(MLPConfig.from_dict(cfg)),
    NESTED_KIND: build_nested_network,
    OCCUPANCY_KIND: build_occupancy_network,
}


def register_network(kind: str, builder: Callable[[dict], Any]) -> None:
    """Register ``builder(config_dict) -> nn.Module`` under ``kind`` (for networks outside the library)."""
    _BUILDERS[kind] = builder


def build_network(kind: str, config: dict):
    """Rebuild a registered network from its kind and plain config dict."""
    if kind not in _BUILDERS:
        raise InputError(f"network kind: unknown {kind!r}; known: {sorted(_BUILDERS)}")
    return _BUILDERS[kind](config)


def network_kind(module) -> str:
    """The registered kind of a module (its ``network_kind`` attribute, default "mlp")."""
    return getattr(module, "network_kind", "mlp")
