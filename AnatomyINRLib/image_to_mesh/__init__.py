"""Shape from image (ImplicitMeshNet, Laves et al. MIDL 2025): watertight chamber meshes from CT.

A template icosphere (radius 0.5, 2562 vertices) is deformed by a shape network f_θ on image
features; a mesh → SDF network g_φ turns the mesh into a signed distance grid so the whole
chain trains from voxel labels alone. Entry functions (``image_to_mesh.api``):
:func:`pretrain_representation` (g_φ on deformed icospheres), :func:`train_shape_model` (f_θ
through the frozen g_φ), :func:`predict_meshes` (meshes refined onto the image's edges, label map, checks from a CT volume). Configs and presets are data
(``image_to_mesh.config``); label values 1 = left atrium, 2 = left ventricle (:data:`STRUCTURES`).
"""

from AnatomyINRLib.image_to_mesh.api import (
    RepresentationResult,
    ShapePrediction,
    ShapeTrainResult,
    predict_meshes,
    pretrain_representation,
    train_shape_model,
)
from AnatomyINRLib.image_to_mesh.config import (
    PRETRAIN_PRESETS,
    STRUCTURES,
    DeformationConfig,
    PretrainConfig,
    RefineConfig,
    RepresentationConfig,
    SHAPE_TRAIN_PRESETS,
    ShapeNetConfig,
    ShapeTrainConfig,
    TemplateConfig,
    pretrain_preset,
    shape_train_preset,
)

__all__ = [
    "DeformationConfig",
    "PRETRAIN_PRESETS",
    "PretrainConfig",
    "RefineConfig",
    "RepresentationConfig",
    "RepresentationResult",
    "SHAPE_TRAIN_PRESETS",
    "ShapeNetConfig",
    "ShapePrediction",
    "ShapeTrainConfig",
    "ShapeTrainResult",
    "STRUCTURES",
    "TemplateConfig",
    "predict_meshes",
    "pretrain_preset",
    "pretrain_representation",
    "shape_train_preset",
    "train_shape_model",
]
