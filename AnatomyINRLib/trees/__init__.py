"""Tree synthesis (TrIND): per-tree occupancy INRs (stage 1) and weight-space diffusion (stage 2).

Entry functions (``trees.api``): :func:`fit_trees` (stage 1: one occupancy INR per tree mesh),
:func:`train_model` (stage 2: a transformer denoiser over the flattened weights of N INRs of one
architecture) and :func:`sample_trees` (new INRs, and meshes, by DDIM).
Presets are data (``trees.config.FIT_PRESETS``, ``trees.config.DIFFUSION_PRESETS``).
"""

# --- stage 1: per-tree INR fitting
from AnatomyINRLib.trees.api import TreeFitResult, fit_trees
from AnatomyINRLib.trees.config import JointFitConfig, TreeFitConfig, TreeSamplingConfig

# --- stage 2: weight-space diffusion
from AnatomyINRLib.trees.api import DiffusionTrainResult, SampledTrees, sample_trees, train_model
from AnatomyINRLib.trees.config import DIFFUSION_PRESETS, DiffusionConfig, diffusion_preset

__all__ = [
    # --- stage 1
    "JointFitConfig",
    "TreeFitConfig",
    "TreeFitResult",
    "TreeSamplingConfig",
    "fit_trees",
    # --- stage 2
    "DIFFUSION_PRESETS",
    "DiffusionConfig",
    "DiffusionTrainResult",
    "SampledTrees",
    "diffusion_preset",
    "sample_trees",
    "train_model",
]
