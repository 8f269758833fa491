"""Evaluation metrics: voxel overlap, surface distances, nesting violations.

Definitions of ASD, HD, HD95 and both Chamfer variants are in
:mod:`AnatomyINRLib.metrics.surface`.
"""

from AnatomyINRLib.metrics.nesting import nesting_violation_rate
from AnatomyINRLib.metrics.overlap import dice, jaccard, volume_difference
from AnatomyINRLib.metrics.proximity import MeshProximity, closest_point_on_mesh, points_to_mesh_distance
from AnatomyINRLib.metrics.surface import (
    point_set_distances,
    points_to_field_distance,
    sample_surface,
    surface_distances,
)

__all__ = [
    "MeshProximity",
    "closest_point_on_mesh",
    "dice",
    "jaccard",
    "nesting_violation_rate",
    "point_set_distances",
    "points_to_field_distance",
    "points_to_mesh_distance",
    "sample_surface",
    "surface_distances",
    "volume_difference",
]
