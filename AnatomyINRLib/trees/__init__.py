"""Tree synthesis (TrIND): per-tree occupancy INRs (stage 1) and weight-space diffusion (stage 2).

Entry functions (``trees.api``): :func:`fit_trees` (stage 1); stage 2 adds its own.
Presets are data (``trees.config.FIT_PRESETS``); ``trees.config.fit_preset(name)`` builds one.
"""

# --- stage 1: per-tree INR fitting
from AnatomyINRLib.trees.api import TreeFitResult, fit_trees
from AnatomyINRLib.trees.config import TreeFitConfig, TreeSamplingConfig

__all__ = [
    # --- stage 1
    "TreeFitConfig",
    "TreeFitResult",
    "TreeSamplingConfig",
    "fit_trees",
]
