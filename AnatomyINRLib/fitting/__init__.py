"""Shared IGR fitting engine (shared ground of surface, nested and blend).

Points are validated (:func:`prepare_points`), normalised by the caller, and a
network is trained on :class:`IGRObjective` (IGR loss, Gropp et al. 2020 /
Alblas et al. 2022 eq. 3, plus normal and off-surface terms, one output per
point set) by :func:`optimise`: Adam with the :func:`learning_rate_at` schedule
and the one stopping rule of :class:`ConvergenceMonitor`, all driven by
:class:`OptimConfig`. Empty space certified from the points (:func:`certify_outside`)
supervises the sign of f where the unoriented loss cannot (``outside.py``).
"""

from AnatomyINRLib.fitting.config import LossConfig, OptimConfig, SamplingConfig
from AnatomyINRLib.fitting.loop import FitHistory, LoopResult, optimise
from AnatomyINRLib.fitting.loss import sample_terms, surface_terms, value_and_gradient
from AnatomyINRLib.fitting.monitor import ConvergenceMonitor
from AnatomyINRLib.fitting.objective import IGRObjective, StepLoss
from AnatomyINRLib.fitting.outside import OutsideConfig, OutsideRegion, certify_outside, outside_supervision
from AnatomyINRLib.fitting.points import PreparedPoints, as_point_set, prepare_points
from AnatomyINRLib.fitting.sampling import OffSurfaceSampler, knn_sigma
from AnatomyINRLib.fitting.schedule import budget, learning_rate_at, scaled_for_points

__all__ = [
    "ConvergenceMonitor",
    "FitHistory",
    "IGRObjective",
    "LoopResult",
    "LossConfig",
    "OffSurfaceSampler",
    "OptimConfig",
    "OutsideConfig",
    "OutsideRegion",
    "PreparedPoints",
    "SamplingConfig",
    "StepLoss",
    "as_point_set",
    "budget",
    "certify_outside",
    "knn_sigma",
    "learning_rate_at",
    "optimise",
    "outside_supervision",
    "prepare_points",
    "sample_terms",
    "scaled_for_points",
    "surface_terms",
    "value_and_gradient",
]
