"""Vessel blending: any mix of closed meshes, open vessel meshes and point sets → one surface.

Each input becomes an SDF in RAS mm (exact for closed meshes, a fitted INR
otherwise), the SDFs are united with Quílez's polynomial smooth minimum and
optionally clipped by planes; one watertight surface is extracted and checked.

Entry functions (``blend.api``): :func:`blend_surfaces`, or :func:`prepare_inputs`
once then :func:`blend_prepared` for every new radius / plane set.
"""

from AnatomyINRLib.blend.api import BlendResult, PreparedInputs, blend_prepared, blend_surfaces, prepare_inputs
from AnatomyINRLib.blend.config import BlendConfig
from AnatomyINRLib.blend.openmesh import ClipPlane
from AnatomyINRLib.blend.sources import BlendInput

__all__ = [
    "BlendConfig",
    "BlendInput",
    "BlendResult",
    "ClipPlane",
    "PreparedInputs",
    "blend_prepared",
    "blend_surfaces",
    "prepare_inputs",
]
