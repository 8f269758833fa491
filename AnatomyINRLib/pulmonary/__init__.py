"""Pulmonary segments for segmentectomy planning.

Method A (training-free): every lobe voxel takes the label of its geodesic-nearest
labelled segmental bronchus inside its lobe; an implicit soft partition smooths
the boundaries into surfaces that can be sampled at any resolution, and labelled
bronchi always stay in their own segment. Also planning numbers (volumes, nodule
margin, remaining lung) and the ImPulSe+ metrics. Labels 1-18 in the fixed
order of :data:`SEGMENTS`.
"""

from AnatomyINRLib.pulmonary.api import (
    PlanResult,
    SegmentsResult,
    evaluate_segments,
    plan_segments,
    segment_lungs,
)
from AnatomyINRLib.pulmonary.config import (
    LOBE_NAMES,
    PRESETS,
    SEGMENT_COLORS,
    SEGMENTS,
    TerritoryConfig,
    preset_config,
)

__all__ = [
    "LOBE_NAMES",
    "PRESETS",
    "PlanResult",
    "SEGMENTS",
    "SEGMENT_COLORS",
    "SegmentsResult",
    "TerritoryConfig",
    "evaluate_segments",
    "plan_segments",
    "preset_config",
    "segment_lungs",
]
