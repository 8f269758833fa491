"""Nested walls: lumen ⊂ inner wall ⊂ outer wall from one network, nested by construction.

Entry function (``nested.api``): :func:`reconstruct_nested` (point sets in → meshes with
thickness maps, volumes, Dmax and measured violations out). Presets:
``nested.config.nested_preset(name)`` (the single-surface presets, ``surface.config.PRESETS``).
"""

from AnatomyINRLib.nested.api import NestedResult, reconstruct_nested
from AnatomyINRLib.nested.config import NestedFitConfig
from AnatomyINRLib.nested.diameter import DiameterResult
from AnatomyINRLib.nested.fit import NestedFit

__all__ = [
    "DiameterResult",
    "NestedFit",
    "NestedFitConfig",
    "NestedResult",
    "reconstruct_nested",
]
