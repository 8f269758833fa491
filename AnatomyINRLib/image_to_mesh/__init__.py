"""Shape from image (ImplicitMeshNet, Laves et al. MIDL 2025): watertight chamber meshes from CT.

A template icosphere (radius 0.5, 2562 vertices) is deformed by a shape network f_θ on image
features; a mesh → SDF network g_φ turns the mesh into a signed distance grid so the whole
chain trains from voxel labels alone. Entry functions (``image_to_mesh.api``):
:func:`pretrain_representation` (g_φ on deformed icospheres). Configs and presets are data
(``image_to_mesh.config``); label values 1 = left atrium, 2 = left ventricle (:data:`STRUCTURES`).
"""

from AnatomyINRLib.image_to_mesh.api import RepresentationResult, pretrain_representation
from AnatomyINRLib.image_to_mesh.config import (
    PRETRAIN_PRESETS,
    STRUCTURES,
    DeformationConfig,
    PretrainConfig,
    RepresentationConfig,
    ShapeNetConfig,
    TemplateConfig,
    pretrain_preset,
)

__all__ = [
    "DeformationConfig",
    "PRETRAIN_PRESETS",
    "PretrainConfig",
    "RepresentationConfig",
    "RepresentationResult",
    "ShapeNetConfig",
    "STRUCTURES",
    "TemplateConfig",
    "pretrain_preset",
    "pretrain_representation",
]
