"""Registry of network kinds so saved fields rebuild without pickling code.

An INR file stores ``kind`` and the kind's config dict; :func:`build_network`
rebuilds the module from those plain values and the weights are loaded as
tensors only (safetensors / ``weights_only=True``).
"""

from __future__ import annotations

from typing import Any, Callable

from AnatomyINRLib.core.errors import InputError

_BUILDERS: dict[str, Callable[[dict], Any]] = {}
# Modules that register further kinds when imported (capability packages).
_PLUGIN_MODULES = ("AnatomyINRLib.nested.network",)


def register_network(kind: str, builder: Callable[[dict], Any]) -> None:
    """Register ``builder(config_dict) -> nn.Module`` under ``kind``."""
    _BUILDERS[kind] = builder


def build_network(kind: str, config: dict):
    """Rebuild a registered network from its kind and plain config dict."""
    _ensure_builtin()
    if kind not in _BUILDERS:
        raise InputError(f"network kind: unknown {kind!r}; known: {sorted(_BUILDERS)}")
    return _BUILDERS[kind](config)


def network_kind(module) -> str:
    """The registered kind of a module (its ``network_kind`` attribute, default "mlp")."""
    return getattr(module, "network_kind", "mlp")


def _ensure_builtin() -> None:
    if "mlp" not in _BUILDERS:
        from AnatomyINRLib.nn.mlp import MLP, MLPConfig

        register_network("mlp", lambda cfg: MLP(MLPConfig.from_dict(cfg)))
    # Capability packages register their own kinds on import.
    import importlib
    import importlib.util

    for mod in _PLUGIN_MODULES:
        if importlib.util.find_spec(mod.rsplit(".", 1)[0]) is not None:
            importlib.import_module(mod)
