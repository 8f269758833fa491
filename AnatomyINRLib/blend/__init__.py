"""Vessel blending: any mix of closed meshes, open vessel meshes and point sets → one surface.

Each input becomes an SDF in RAS mm (exact for closed meshes, a fitted INR
otherwise), the SDFs are united with Quílez's polynomial smooth minimum and
optionally clipped by planes; one watertight surface is extracted and checked.
Logic-ready entry point: :func:`blend_surfaces`.
"""

from AnatomyINRLib.blend.config import BlendConfig
from AnatomyINRLib.meshing.mesh_sdf import MeshSDF
from AnatomyINRLib.blend.openmesh import ClipPlane, boundary_loops
from AnatomyINRLib.blend.pipeline import BlendResult, PreparedInputs, blend_prepared, blend_surfaces, prepare_inputs
from AnatomyINRLib.blend.smin import clip, smooth_min, smooth_union
from AnatomyINRLib.blend.sources import BlendInput
from AnatomyINRLib.blend.union import BlendedField

__all__ = [
    "BlendConfig",
    "BlendInput",
    "BlendResult",
    "BlendedField",
    "PreparedInputs",
    "ClipPlane",
    "MeshSDF",
    "blend_prepared",
    "blend_surfaces",
    "boundary_loops",
    "clip",
    "prepare_inputs",
    "smooth_min",
    "smooth_union",
]
