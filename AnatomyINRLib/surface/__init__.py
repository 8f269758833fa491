"""Surface from points: sparse unoriented surface points → signed distance field → mesh / labelmap.

Entry functions (``surface.api``): :func:`fit_points`, :func:`extract_mesh`, :func:`labelmap`.
Presets are data (``surface.config.PRESETS``); ``surface.config.preset_config(name)`` builds one.
"""

from AnatomyINRLib.surface.api import SurfaceFit, extract_mesh, fit_points, labelmap
from AnatomyINRLib.surface.config import LossConfig, OptimConfig, SamplingConfig, SurfaceFitConfig

__all__ = [
    "LossConfig",
    "OptimConfig",
    "SamplingConfig",
    "SurfaceFit",
    "SurfaceFitConfig",
    "extract_mesh",
    "fit_points",
    "labelmap",
]
