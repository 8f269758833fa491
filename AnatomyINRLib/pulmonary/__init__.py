"""Pulmonary segments for segmentectomy planning.

Method A (training-free): every lobe voxel takes the label of its geodesic-nearest
labelled segmental bronchus inside its lobe; an implicit soft partition smooths
the boundaries into surfaces that can be sampled at any resolution, and labelled
bronchi always stay in their own segment. Method B (learned, ImPulSe+): a template deformed
and corrected by implicit heads on CT/tree features, trained by :func:`train_segments_model`. Also planning numbers (volumes, nodule
margin, remaining lung) and the ImPulSe+ metrics. Labels 1-18 in the fixed
order of :data:`SEGMENTS`.
"""

from AnatomyINRLib.pulmonary.api import (
    PlanResult,
    SegmentsResult,
    TrainResult,
    plan_segments,
    segment_lungs,
    train_segments_model,
)
from AnatomyINRLib.pulmonary.config import (
    LEARNED_PRESETS,
    LOBE_NAMES,
    PRESETS,
    SEGMENT_COLORS,
    SEGMENT_NAMES,
    SEGMENTS,
    LearnedNetworkConfig,
    LearnedTrainConfig,
    TerritoryConfig,
    learned_preset,
    preset_config,
)

__all__ = [
    "LEARNED_PRESETS",
    "LOBE_NAMES",
    "LearnedNetworkConfig",
    "LearnedTrainConfig",
    "PRESETS",
    "PlanResult",
    "SEGMENTS",
    "SEGMENT_COLORS",
    "SEGMENT_NAMES",
    "SegmentsResult",
    "TerritoryConfig",
    "TrainResult",
    "learned_preset",
    "plan_segments",
    "preset_config",
    "segment_lungs",
    "train_segments_model",
]
