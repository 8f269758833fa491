"""Configuration of the joint nested-surface fit.

The network and the shared engine settings (``fitting.config``: sampling,
loss, optimiser) start from the single-surface presets (``surface.config``):
each output gets the IGR loss of its own point set (Alblas et al. 2022, §2.4:
"Eq. (3) on each of its output channels"), summed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from AnatomyINRLib.core.config import ConfigBase, check_choice, check_positive
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.fitting.config import LossConfig, OptimConfig, SamplingConfig
from AnatomyINRLib.nn.mlp import MLPConfig
from AnatomyINRLib.surface.config import preset_config

DEFAULT_NAMES = ("lumen", "inner", "outer")
PRESETS = ("fast", "default", "accurate", "paper")


@dataclass
class NestedFitConfig(ConfigBase):
    """Everything that defines a nested fit (lengths in mm unless stated)."""

    preset: str = "default"
    """Name of the preset this config came from (informational)."""
    network: MLPConfig = field(default_factory=MLPConfig)
    """Trunk architecture; ``out_dim`` is set to the number of surfaces at fit time."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    extent: float = 0.7
    """The bounding box of all points is mapped into [−extent, extent]³."""
    nesting: bool = True
    """Nesting by construction (False = the paper's unconstrained joint network)."""
    construction: str = "smooth_max"
    """How inner fields are tied to outer ones: "smooth_max" or "offset" (``nn.nested``)."""
    sharpness_mm: float = 0.1
    """Width of the smooth max in mm (β = scale / sharpness_mm in normalised units). Measured on
    the nested AAA phantom (200 points/surface, 600 iterations): lumen Dice 0.932 at 1 mm,
    0.967 at 0.2 mm, 0.968 at 0.05 mm."""
    min_thickness_mm: float = 0.0
    """Minimum gap between consecutive surfaces in mm (converted to t_norm = t_mm / scale)."""
    gap_init_from_points: bool = True
    """Initialise each gap from the median distance between consecutive point sets."""
    surface_weights: tuple = ()
    """Weight of each surface's loss, innermost first; empty = all 1."""
    max_points: int = 200_000
    """More points per surface are randomly subsampled (with a warning)."""

    def validate(self) -> None:
        """Raise InputError naming the first invalid field."""
        super().validate()
        check_choice("preset", self.preset, PRESETS + ("custom",))
        check_positive("extent", self.extent)
        if self.extent >= self.sampling.box:
            raise InputError(f"extent: expected < sampling.box ({self.sampling.box}), got {self.extent}")
        check_positive("min_thickness_mm", self.min_thickness_mm, allow_zero=True)
        check_choice("construction", self.construction, ("smooth_max", "offset"))
        check_positive("sharpness_mm", self.sharpness_mm)
        for w in self.surface_weights:
            check_positive("surface_weights", w)
        for name in ("nesting", "gap_init_from_points"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name}: expected true or false, got {getattr(self, name)!r}")
        if not isinstance(self.max_points, int) or self.max_points < 10:
            raise InputError(f"max_points: expected an integer >= 10, got {self.max_points!r}")

    def weights(self, k: int) -> list[float]:
        """Per-surface loss weights for ``k`` surfaces."""
        if not self.surface_weights:
            return [1.0] * k
        if len(self.surface_weights) != k:
            raise InputError(f"surface_weights: expected {k} values, got {len(self.surface_weights)}")
        return [float(w) for w in self.surface_weights]


def nested_preset(name: str = "default", min_thickness_mm: float = 0.0) -> NestedFitConfig:
    """A fresh nested config built from the single-surface preset ``name``.

    Args:
        name: "fast", "default", "accurate" or "paper".
        min_thickness_mm: Minimum gap between consecutive surfaces (mm).
    """
    check_choice("preset", name, PRESETS)
    base = preset_config(name)
    return NestedFitConfig(
        preset=name,
        network=base.network,
        sampling=base.sampling,
        loss=base.loss,
        optim=base.optim,
        extent=base.extent,
        min_thickness_mm=float(min_thickness_mm),
    )
