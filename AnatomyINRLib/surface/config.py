"""Configuration of the points-to-surface fit (IGR, Gropp et al. 2020).

Presets were chosen by ``benchmarks/points_to_surface.py`` for the best
quality per second on CPU; ``paper`` reproduces Alblas et al. (STACOM 2022,
§3: 6×256 ReLU, skip into layer 3, Adam 1e-4, 25k iterations).

Measured on the vmtk aorta (200 points, 5 seeds, median Dice): 64-wide nets beat
128-wide ones (fewer ghost sheets), eikonal weight 0.03 beat IGR's 0.1, and the
off-surface term (weight 0.1) lifted Dice 0.947 → 0.955 and ASD 0.36 → 0.27 mm.

Unstructured points also get the certified-outside term (``outside``,
``fitting/outside.py``): empty space reached by a flood fill past balls of the
local point spacing must have f > 0. Thin branching networks needed it (the
fit kept a blob between the branches); ``paper`` keeps the paper's plain IGR.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from AnatomyINRLib.core.config import ConfigBase, check_choice, check_int, check_positive
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.fitting.config import LossConfig, OptimConfig, SamplingConfig
from AnatomyINRLib.fitting.outside import OutsideConfig
from AnatomyINRLib.nn.mlp import MLPConfig


@dataclass
# --- slice clicks (surface/slices.py, surface/slice_loss.py) ---
@dataclass
class SliceConfig(ConfigBase):
    """Points clicked on parallel image slices: detection thresholds and extra loss terms.

    When detected, each slice's points are ordered into contours whose outward
    in-plane normals supervise the in-plane direction of ∇f, and points of the
    slice plane inside/outside the contour polygons supervise the sign of f.
    """

    enabled: bool = True
    """Detect slices automatically (False: treat all points as unstructured)."""
    tolerance_mm: float = 1.0
    """Points within this distance along the slice normal belong to one slice (level width)."""
    min_points_per_slice: int = 5
    """A level needs this many points to count as a slice."""
    min_slices: int = 3
    """Fewer slices than this is not a slice stack."""
    min_fraction_on_slices: float = 0.8
    """Share of all points that must lie on slices."""
    cut_factor: float = 2.0
    """Contours on a slice are split at spanning-tree edges longer than this × the median edge."""
    normal_weight: float = 1.0
    """Weight of mean (1 − cos(P∇f, nᵢ)), P = projection onto the slice plane (0 disables)."""
    inside_weight: float = 1.0
    """Weight of the on-slice sign term mean relu(−sⱼ f(yⱼ)), f in normalised units (0 disables)."""
    inside_margin: float = 0.25
    """Plane samples closer than this × the mean polygon edge to a polygon are not labelled."""
    plane_samples: int = 512
    """Labelled slice-plane samples per iteration."""
    end_gap: float = 0.5
    """Planes this fraction of the slice spacing beyond the first/last slice are outside (0 disables)."""

    def validate(self) -> None:
        """Check ranges."""
        check_positive("slices.tolerance_mm", self.tolerance_mm)
        check_int("slices.min_points_per_slice", self.min_points_per_slice, minimum=3)
        check_int("slices.min_slices", self.min_slices, minimum=2)
        check_positive("slices.min_fraction_on_slices", self.min_fraction_on_slices)
        check_positive("slices.cut_factor", self.cut_factor)
        check_positive("slices.normal_weight", self.normal_weight, allow_zero=True)
        check_positive("slices.inside_weight", self.inside_weight, allow_zero=True)
        check_positive("slices.inside_margin", self.inside_margin, allow_zero=True)
        check_int("slices.plane_samples", self.plane_samples)
        check_positive("slices.end_gap", self.end_gap, allow_zero=True)
# --- end slice clicks ---


@dataclass
class SurfaceFitConfig(ConfigBase):
    """Everything that defines a points-to-surface fit."""

    preset: str = "default"
    """Name of the preset this config came from (informational)."""
    network: MLPConfig = field(default_factory=MLPConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    slices: SliceConfig = field(default_factory=SliceConfig)  # slice-click supervision (slices.py)
    outside: OutsideConfig = field(default_factory=OutsideConfig)  # certified empty space (fitting/outside.py)
    extent: float = 0.7
    """Point bounding box is mapped into [−extent, extent]³ (aspect kept)."""
    outlier_threshold_mm: float = 1.0
    """Points whose residual |f(xᵢ)| exceeds this are flagged as outliers."""
    max_points: int = 200_000
    """More input points are randomly subsampled (with a warning)."""

    def validate(self) -> None:
        """Check ranges and nested configs."""
        super().validate()
        if self.network.in_dim != 3 or self.network.out_dim != 1:
            raise InputError("network: a surface fit needs in_dim=3 and out_dim=1")
        check_positive("extent", self.extent)
        if self.extent >= self.sampling.box:
            raise InputError(f"extent: expected < sampling.box ({self.sampling.box}), got {self.extent}")
        check_positive("outlier_threshold_mm", self.outlier_threshold_mm)
        check_int("max_points", self.max_points, minimum=10)


# Presets as data: each entry lists only what differs from the dataclass defaults
# (same nested layout as the config's JSON). The shared choices: 64×4 nets (128-wide
# ones grew ghost sheets below 400 points), eikonal 0.03 and the off-surface term.
_TUNED_LOSS = {"eikonal_weight": 0.03, "offsurface_weight": 0.1}
PRESETS: dict[str, dict] = {
    "fast": {
        "network": {"width": 64, "depth": 4},
        "sampling": {"knn": 20, "local_per_point": 4},
        "loss": _TUNED_LOSS,
        "optim": {"iterations": 400, "lr": 5e-3, "min_iterations": 300},
        # Plain IGR: in 400 iterations the certified-outside term cost more than it gave (AAA
        # phantom, 100/200 points, 2 seeds: min Dice 0.931 -> 0.921 and 0.959 -> 0.955).
        "outside": {"enabled": False},
    },
    "default": {
        "network": {"width": 64, "depth": 4},
        "loss": _TUNED_LOSS,
        # 800 iterations up to 400 points, then 4 per point beyond 200, up to 4× (1000 points on a thin
        # 31-branch tree: Dice 0.80 at 800 iterations, 0.94 at 3200). At 400 points 1280 iterations
        # (3.2 per point) gave the aorta 0.003 Dice for 1.6× the time. Below 100 points the budget
        # shrinks with N, to 400 at 50 (OptimConfig.sparse_points: a long fit of few points overfits).
        "optim": {"iterations": 800, "lr": 5e-3, "min_iterations": 600, "iterations_per_point": 4.0,
                  "base_points": 200, "sparse_points": 100},
    },
    # Twice the default budget and denser local samples: aorta, 200 points, 5 seeds:
    # median Dice 0.956 (min 0.951) vs default's 0.955 (min 0.942).
    "accurate": {
        "network": {"width": 64, "depth": 4},
        "sampling": {"local_per_point": 12},
        "loss": _TUNED_LOSS,
        "optim": {"iterations": 1600, "lr": 5e-3, "min_iterations": 1200},
    },
    # Alblas et al. 2022 §3 / IGR: 6×256 ReLU, skip into the 3rd hidden layer (index 2),
    # Adam 1e-4 without decay, 25k iterations, λ = 0.1, σ from the 50th neighbour.
    "paper": {
        "network": {"width": 256, "depth": 6, "skip_layers": [2], "activation": "relu", "init_radius": 0.5},
        "sampling": {"knn": 50, "local_per_point": 1, "n_global": 128, "box": 1.2},
        "loss": {"eikonal_weight": 0.1},
        "optim": {"iterations": 25_000, "lr": 1e-4, "schedule": "constant", "min_iterations": 25_000,
                  "rel_tol": 0.0},
        "extent": 0.9,
        "outside": {"enabled": False},  # the paper's plain IGR
    },
}


def preset_config(name: str) -> SurfaceFitConfig:
    """A fresh config for preset ``name`` (fast, default, accurate, paper): its ``PRESETS`` entry
    over the dataclass defaults."""
    check_choice("preset", name, tuple(PRESETS))
    return SurfaceFitConfig.from_dict({"preset": name, **copy.deepcopy(PRESETS[name])})
