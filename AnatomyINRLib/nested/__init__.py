"""Nested walls: lumen ⊂ inner wall ⊂ outer wall from one network, nested by construction.

Logic-ready entry point: :func:`reconstruct_nested` (point sets in → meshes with
thickness maps, volumes, Dmax and measured violations out).
"""

from AnatomyINRLib.nested.analysis import add_thickness_maps, mesh_violations, neighbour_distances, volumes
from AnatomyINRLib.nested.config import DEFAULT_NAMES, NestedFitConfig, nested_preset
from AnatomyINRLib.nested.diameter import DiameterResult, max_diameter
from AnatomyINRLib.nested.fit import NestedFit, fit_nested
from AnatomyINRLib.nested.pipeline import NestedResult, reconstruct_nested

__all__ = [
    "DEFAULT_NAMES",
    "DiameterResult",
    "NestedFit",
    "NestedFitConfig",
    "NestedResult",
    "add_thickness_maps",
    "fit_nested",
    "max_diameter",
    "mesh_violations",
    "neighbour_distances",
    "nested_preset",
    "reconstruct_nested",
    "volumes",
]
