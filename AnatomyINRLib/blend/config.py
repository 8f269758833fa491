"""Configuration of vessel blending (lengths in mm)."""

from __future__ import annotations

from dataclasses import dataclass

from AnatomyINRLib.core.config import ConfigBase, check_choice, check_positive
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.surface.config import PRESETS, SurfaceFitConfig, preset_config


@dataclass
class BlendConfig(ConfigBase):
    """How inputs become SDFs, how they are united and how the result is meshed."""

    radius_mm: float = 2.0
    """Fillet radius k of the smooth union (Quílez smin), default for every input; 0 = plain min."""
    spacing_mm: float = 0.5
    """Grid spacing of the output surface extraction."""
    fit_preset: str = "default"
    """Single-surface preset used to fit INRs to point sets and open meshes."""
    fit_iterations: int = 400
    """Iterations per INR fit (0 = the preset's own budget)."""
    fit_surface_batch: int = 512
    """Surface points per iteration of each fit (dense meshes are subsampled per step)."""
    fit_local_per_point: int = 4
    """Gaussian off-surface samples per surface point per iteration."""
    use_mesh_normals: bool = True
    """Fit open meshes with their (outward-oriented) vertex normals (IGR normal term)."""
    clip_free_ends: bool = True
    """Cut open-mesh INRs flat at boundary loops that do not join another input."""
    clip_shared_ends: bool = True
    """Also cut open-mesh INRs at loops that join another input (junction ends), with the
    plane moved beyond the loop's farthest point so nothing of the vessel is lost; this
    removes the dome an INR extrapolates past an open end (it would fill a bifurcation's
    carina). Measured on the vmtk aorta: Dice 0.960 without, 0.990 with."""
    shared_end_tol_mm: float = 1.0
    """A loop is a junction when its points lie within this of another input's surface (or inside it)."""
    mesh_truncate_mm: float = 0.0
    """Closed meshes: exact SDF within this band, ±band beyond (0 = auto: max(4k, 8·spacing, 1 mm); must exceed the 3k junction test of the report)."""
    remesh_edge_mm: float = 0.0
    """Target mean edge length of the output (0 = keep the extraction's): re-extracts at a matched spacing."""
    padding_mm: float = 3.0
    """Margin around the union of the input bounds."""

    def validate(self) -> None:
        """Raise InputError naming the first invalid field."""
        check_positive("radius_mm", self.radius_mm, allow_zero=True)
        check_positive("spacing_mm", self.spacing_mm)
        check_choice("fit_preset", self.fit_preset, tuple(PRESETS))
        for name, low in (("fit_iterations", 0), ("fit_surface_batch", 16), ("fit_local_per_point", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise InputError(f"{name}: expected an integer >= {low}, got {v!r}")
        for name in ("use_mesh_normals", "clip_free_ends", "clip_shared_ends"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name}: expected true or false, got {getattr(self, name)!r}")
        check_positive("shared_end_tol_mm", self.shared_end_tol_mm, allow_zero=True)
        check_positive("mesh_truncate_mm", self.mesh_truncate_mm, allow_zero=True)
        check_positive("remesh_edge_mm", self.remesh_edge_mm, allow_zero=True)
        check_positive("padding_mm", self.padding_mm, allow_zero=True)

    def fit_config(self) -> SurfaceFitConfig:
        """The single-surface fit configuration for point sets and open meshes."""
        cfg = preset_config(self.fit_preset)
        cfg.sampling.max_surface_batch = self.fit_surface_batch
        cfg.sampling.local_per_point = self.fit_local_per_point
        if self.fit_iterations:
            cfg.optim.iterations = self.fit_iterations
            cfg.optim.min_iterations = min(cfg.optim.min_iterations, self.fit_iterations)
        cfg.validate()
        return cfg

    def truncation(self, radius_mm: float) -> float:
        """Band of the closed-mesh SDFs: wide enough that truncation never changes the union's zero set."""
        if self.mesh_truncate_mm > 0:
            return float(self.mesh_truncate_mm)
        return float(max(4.0 * radius_mm, 8.0 * self.spacing_mm, 1.0))
