"""Tree synthesis (TrIND): per-tree occupancy INRs and weight-space diffusion over their weights.

Stage 2 (weight-space diffusion): :func:`train_model` trains a transformer denoiser on the flattened
weights of N INRs of one architecture; :func:`sample_trees` draws new INRs (and meshes) by DDIM.
"""

# ---------------------------------------------------------------------------- stage 2: weight-space diffusion
from AnatomyINRLib.trees.api import DiffusionTrainResult, SampledTrees, sample_trees, train_model
from AnatomyINRLib.trees.config import DIFFUSION_PRESETS, DiffusionConfig, diffusion_preset

__all__ = [
    # stage 2: weight-space diffusion
    "DIFFUSION_PRESETS",
    "DiffusionConfig",
    "DiffusionTrainResult",
    "SampledTrees",
    "diffusion_preset",
    "sample_trees",
    "train_model",
]
