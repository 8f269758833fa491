"""Configuration of shape-from-image (ImplicitMeshNet, Laves et al. MIDL 2025) as data.

* :class:`TemplateConfig`: the icosphere template (radius 0.5, 4 subdivisions = 2562 vertices).
* :class:`RepresentationConfig`: the mesh → SDF network g_φ (paper Appendix B.1): graph-conv
  encoder, grid feature projection (B.3), 3-D conv decoder with upsampling and a prediction per level.
* :class:`PretrainConfig`: pre-training g_φ on randomly deformed icospheres against exact SDFs.
* :class:`RefineConfig`: prediction's refinement of each mesh onto the image's blood-pool edge.

Grid sizes are 2^m + 1 (17, 33, 65, 129) because grids are cell-centred on [-1, 1]³ with
``align_corners=True`` (see ``_grid``): halving (N − 1) nests every coarse voxel centre on a
fine one, so trilinear ×2 upsampling between decoder levels is exact on linear fields.
The paper's g_φ works at 128³ with 128 channels on a GPU; the CPU presets here keep 33³ and 32
channels (``REPRESENTATION_PRESETS``), see ``docs`` and the pre-training log for the budget.

Label values of the structures (phantom labels and the model's outputs) are in :data:`STRUCTURES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from AnatomyINRLib.core.config import ConfigBase, check_choice, check_int, check_positive
from AnatomyINRLib.core.errors import InputError

#: Label value → structure name (phantom label maps, MMWHS mapping, model outputs).
STRUCTURES: dict[int, str] = {1: "left_atrium", 2: "left_ventricle"}

LAPLACIANS = ("none", "sym", "uniform")
DISTANCES = ("learned", "mesh")


def _check_grid_size(name: str, n: int, levels: int) -> None:
    check_int(name, n, minimum=5, maximum=257)
    step = (n - 1) >> (levels - 1)
    if step < 2 or step << (levels - 1) != n - 1:
        raise InputError(f"{name}: expected N − 1 divisible by 2^(levels − 1) = {1 << (levels - 1)} with a "
                         f"coarsest grid of at least 3 voxels (e.g. 17, 33, 65, 129), got {n}")


@dataclass
class TemplateConfig(ConfigBase):
    """The template mesh (paper §3, B.2): an icosphere at the centre of the normalised cube."""

    subdivisions: int = 4
    radius: float = 0.5

    def validate(self) -> None:
        check_int("subdivisions", self.subdivisions, minimum=0, maximum=6)
        check_positive("radius", self.radius)
        if self.radius >= 1.0:
            raise InputError(f"radius: expected < 1 (inside the normalised cube [-1, 1]³), got {self.radius}")


@dataclass
class RepresentationConfig(ConfigBase):
    """g_φ: mesh (vertices on the template's topology) → SDF on an N³ grid over [-1, 1]³.

    Attributes:
        grid_size: N, the output grid (2^m + 1; the paper's 128³ is ~129 here).
        levels: Decoder levels (the paper's 4 stages): level l works on ((N−1)/2^(levels−1−l) + 1)³
            and receives the splatted features of encoder stage levels − l (deep features → coarse grid).
        encoder_channels: C of every graph-conv stage (paper 128).
        decoder_channels: Channels per decoder level, coarse → fine (paper 128 → 64 → 32 → 16).
        dropout: Between the two graph convolutions of an encoder block (paper 0.1).
        groups: GroupNorm groups of the decoder blocks (paper 16; capped by the channel count).
        density_channel: Also splat a constant 1 per vertex (vertex density on the grid), an
            addition to the paper that tells the decoder where the surface is independent of features.
    """

    grid_size: int = 33
    levels: int = 3
    encoder_channels: int = 32
    decoder_channels: tuple = (64, 32, 16)
    dropout: float = 0.1
    groups: int = 8
    density_channel: bool = True

    def validate(self) -> None:
        check_int("levels", self.levels, minimum=1, maximum=6)
        _check_grid_size("grid_size", self.grid_size, self.levels)
        check_int("encoder_channels", self.encoder_channels, minimum=1)
        check_int("groups", self.groups, minimum=1)
        if len(self.decoder_channels) != self.levels:
            raise InputError(f"decoder_channels: expected {self.levels} values (one per level), "
                             f"got {list(self.decoder_channels)}")
        for i, c in enumerate(self.decoder_channels):
            check_int(f"decoder_channels[{i}]", c, minimum=1)
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")


@dataclass
class DeformationConfig(ConfigBase):
    """Random shapes for pre-training g_φ (paper B.1 and the public code's augmentation)."""

    radius_range: tuple = (0.2, 0.8)
    affine_probability: float = 0.9
    rotation_rad: float = 0.2
    scale: float = 0.2
    shear: float = 0.1
    translation: float = 0.2
    elastic_probability: float = 0.9
    max_displacement: float = 0.2
    sinusoid_components: int = 16
    bspline_control_points: int = 4
    noise_probability: float = 0.1
    noise_sigma: float = 0.005
    max_extent: float = 0.9

    def validate(self) -> None:
        lo, hi = self.radius_range
        if not 0 < lo <= hi < 1:
            raise InputError(f"radius_range: expected 0 < low <= high < 1, got {list(self.radius_range)}")
        for name in ("affine_probability", "elastic_probability", "noise_probability"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name}: expected a probability in [0, 1], got {value!r}")
        for name in ("rotation_rad", "scale", "shear", "translation", "max_displacement", "noise_sigma"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_int("sinusoid_components", self.sinusoid_components)
        check_int("bspline_control_points", self.bspline_control_points, minimum=2, maximum=8)
        if not 0 < self.max_extent <= 1.0:
            raise InputError(f"max_extent: expected a number in (0, 1], got {self.max_extent!r}")


@dataclass
class PretrainConfig(ConfigBase):
    """Pre-training of g_φ on deformed icospheres (paper B.1).

    Attributes:
        n_shapes: Training shapes (each with its exact SDF, computed once on the CPU).
        n_validation: Held-out shapes (other seeds) for the zero-level error.
        exact_band: The targets are exact within this distance of the surface (normalised units; 0.3 is
            ~5 voxels at 33³), nearest-vertex distances beyond (see ``_pretrain``).
        epochs: Passes over the training shapes.
        batch_size: Shapes per step (paper 2).
        learning_rate, final_learning_rate, weight_decay: AdamW with cosine decay (paper 1e-4 → 1e-8, 1e-6).
        weight_max_distance: D in the public code's weight ((D − |d|)/D)² (√12, the cube's diagonal).
        near_boost, near_scale: Extra weight near_boost·exp(−|d|/near_scale) on top, so the zero
            level (what the soft label σ(−D/τ) of the joint training looks at) is fitted tightly;
            near_boost 0 is the paper's weighting.
        level_weights: "all" sums every decoder level's loss (deep supervision, paper), "final" only the last.
    """

    representation: RepresentationConfig = field(default_factory=RepresentationConfig)
    template: TemplateConfig = field(default_factory=TemplateConfig)
    deformation: DeformationConfig = field(default_factory=DeformationConfig)
    n_shapes: int = 256
    n_validation: int = 16
    exact_band: float = 0.3
    epochs: int = 20
    batch_size: int = 2
    learning_rate: float = 1e-3
    final_learning_rate: float = 1e-6
    weight_decay: float = 1e-6
    weight_max_distance: float = 3.4641016151377544
    near_boost: float = 4.0
    near_scale: float = 0.05
    level_weights: str = "all"

    def validate(self) -> None:
        super().validate()
        check_int("n_shapes", self.n_shapes)
        check_int("n_validation", self.n_validation, minimum=0)
        check_int("epochs", self.epochs)
        check_int("batch_size", self.batch_size)
        for name in ("learning_rate", "weight_max_distance", "near_scale", "exact_band"):
            check_positive(name, getattr(self, name))
        for name in ("final_learning_rate", "weight_decay", "near_boost"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_choice("level_weights", self.level_weights, ("all", "final"))


#: Named pre-training set-ups: "test" for unit tests (seconds), "cpu" the committed CPU run.
PRETRAIN_PRESETS: dict[str, dict] = {
    "test": {"representation": {"grid_size": 17, "levels": 2, "encoder_channels": 8, "decoder_channels": [16, 8]},
             "template": {"subdivisions": 2}, "n_shapes": 4, "n_validation": 2, "epochs": 2},
    "cpu": {"n_shapes": 128, "epochs": 10},
}


def pretrain_preset(name: str) -> PretrainConfig:
    """The :class:`PretrainConfig` of a preset in :data:`PRETRAIN_PRESETS`."""
    check_choice("preset", name, tuple(PRETRAIN_PRESETS))
    return PretrainConfig.from_dict(PRETRAIN_PRESETS[name])


@dataclass
class ShapeNetConfig(ConfigBase):
    """f_θ: image crop → template deformations, one decoder per structure (paper §2, B.2; Kong et al. 2021).

    Attributes:
        image_size: N of the input crop N³ (2^m + 1, on the grid convention of g_φ; paper 128³).
        unet_channels: Channels of the U-Net encoder levels 0 … L−1 (paper 16, 32, 64, 128); the
            bottleneck (level L) has twice the last.
        dropout: Dropout3d in every U-Net block (paper 0.1).
        n_structures: Templates deformed from one shared image encoder (the paper trains one network
            per structure: n_structures = 1 is that; 2 shares the U-Net between LA and LV).
        cheb_k: Chebyshev polynomials per graph convolution (public code 2).
        graph_channels: Hidden vertex features of the graph decoder.
        graph_blocks: Residual graph blocks per deformation stage (public code 3).
        stage_levels: U-Net levels sampled at the vertices in each deformation stage, deep → shallow
            (public code [3, 4], [1, 2], [0, 1]).
        amplification: v ← v + amplification · Δ per stage (public code's run configs 0.01).
        seg_placement: Place each structure's template per case at the centroid and equivalent-sphere
            radius of the voxels its auxiliary segmentation head gives probability > ½ (detached; the
            fixed ``placement`` when fewer than ``_shape_net.MIN_PLACEMENT_VOXELS`` voxels qualify). An
            addition to the paper for CPU-sized networks: with a fixed start the left atrium's centroid
            was 5–11 mm off on every held-out phantom, the deformation stages did not carry the whole
            mesh across the case's pose.
    """

    image_size: int = 65
    unet_channels: tuple = (8, 16, 32, 64)
    dropout: float = 0.1
    n_structures: int = 2
    cheb_k: int = 2
    graph_channels: int = 32
    graph_blocks: int = 3
    stage_levels: tuple = ((3, 4), (1, 2), (0, 1))
    amplification: float = 0.01
    seg_placement: bool = False

    def validate(self) -> None:
        levels = len(self.unet_channels)
        check_int("unet_channels (levels)", levels, minimum=1, maximum=6)
        _check_grid_size("image_size", self.image_size, levels + 1)
        for i, c in enumerate(self.unet_channels):
            check_int(f"unet_channels[{i}]", c)
        check_int("n_structures", self.n_structures, maximum=8)
        check_int("cheb_k", self.cheb_k, maximum=6)
        check_int("graph_channels", self.graph_channels)
        check_int("graph_blocks", self.graph_blocks, minimum=0)
        for s, stage in enumerate(self.stage_levels):
            if not stage or any(not isinstance(lv, int) or not 0 <= lv <= levels for lv in stage):
                raise InputError(f"stage_levels[{s}]: expected U-Net levels in [0, {levels}], got {list(stage)}")
        check_positive("amplification", self.amplification)
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")


@dataclass
class ShapeTrainConfig(ConfigBase):
    """Joint training of f_θ through the frozen g_φ (paper §2, eq. 1) and the image preprocessing.

    Loss (``_shape_loss``): α·BCE(σ(−D/τ), S_GT) + β(t)·Σ_stages mean‖L V‖² + γ·CE(U-Net head),
    D = g_φ(final mesh) per structure, β(t) cosine-annealed from ``beta_start`` to ``beta_end`` over
    all steps (public code: 1000 → 0.01).

    Attributes:
        network: f_θ (:class:`ShapeNetConfig`); template: the icosphere it deforms.
        crop_half_mm: Half edge (mm) of the cube [-1, 1]³ around the image centre that both networks
            see (paper: 128 voxels × 1.3 mm ≈ 166 mm edge).
        window_level, window_width: HU window mapped to [-1, 1] (paper 200 / 1000), clipped outside.
        epochs, steps_per_epoch, batch_size: Training length (a step is one batch per process).
        learning_rate, min_learning_rate, weight_decay: AdamW with cosine decay (paper 1e-4, wd 1e-6).
        alpha, gamma: Weights of the BCE and the auxiliary CE (public code 1 and 0.1).
        beta_start, beta_end: Laplacian weight anneal.
        tau: Temperature of the soft label σ(−D/τ) (normalised units; public code 0.01).
        laplacian: "uniform", "sym" or "none" (``_graph.graph_laplacian``).
        intensity_jitter: Random per-case shift and scale of the normalised image (augmentation).
        distance: The signed distance D of the BCE: "learned" is the frozen g_φ (the paper); "mesh" the
            tangent-plane distance of the nearest vertex computed from the mesh itself
            (``_mesh_distance``), exact near the surface, where g_φ at CPU size errs by millimetres.
        target_grid: N of the grid the BCE is evaluated on with ``distance`` "mesh" (any N ≥ 5: the
            mesh distance has no decoder levels to nest; with "learned" it is g_φ's grid).
        image_supersample: s: every input voxel of f_θ is the mean of s³ trilinear samples spread over
            the voxel (a box filter: partial volume instead of aliasing when the crop's voxels are
            larger than the image's); 1 samples the voxel centre only.
        data_placement: Start each structure's template at the training labels' mean centroid, scaled to
            their mean equivalent-sphere radius (``ShapeNet.placement``), instead of the image centre with
            radius 0.5 (the paper). An addition for short CPU budgets: the network then learns the shape
            and the case's offset instead of first having to move the sphere onto the chamber.
    """

    network: ShapeNetConfig = field(default_factory=ShapeNetConfig)
    template: TemplateConfig = field(default_factory=TemplateConfig)
    crop_half_mm: float = 80.0
    window_level: float = 200.0
    window_width: float = 1000.0
    epochs: int = 10
    steps_per_epoch: int = 20
    batch_size: int = 2
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-5
    weight_decay: float = 1e-6
    alpha: float = 1.0
    beta_start: float = 1000.0
    beta_end: float = 0.01
    gamma: float = 0.1
    tau: float = 0.01
    laplacian: str = "uniform"
    intensity_jitter: float = 0.05
    distance: str = "learned"
    target_grid: int = 33
    image_supersample: int = 1
    data_placement: bool = True

    def validate(self) -> None:
        super().validate()
        for name in ("crop_half_mm", "window_width", "learning_rate", "tau", "alpha"):
            check_positive(name, getattr(self, name))
        for name in ("min_learning_rate", "weight_decay", "beta_start", "beta_end", "gamma", "intensity_jitter"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_int("epochs", self.epochs)
        check_int("steps_per_epoch", self.steps_per_epoch)
        check_int("batch_size", self.batch_size)
        check_choice("laplacian", self.laplacian, LAPLACIANS)
        check_choice("distance", self.distance, DISTANCES)
        _check_grid_size("target_grid", self.target_grid, 1)
        check_int("image_supersample", self.image_supersample, maximum=4)


#: Named training set-ups: "test" (unit tests, seconds), "cpu" (the shipped model's run).
SHAPE_TRAIN_PRESETS: dict[str, dict] = {
    "test": {"network": {"image_size": 17, "unet_channels": [4, 8], "graph_channels": 8, "graph_blocks": 1,
                         "stage_levels": [[1, 2], [0, 1], [0]], "amplification": 0.1},
             "template": {"subdivisions": 2}, "epochs": 2, "steps_per_epoch": 2, "batch_size": 1},
    "cpu": {"network": {"image_size": 33, "unet_channels": [8, 16, 32], "graph_channels": 32, "graph_blocks": 2,
                        "stage_levels": [[2, 3], [1, 2], [0, 1]], "dropout": 0.0, "amplification": 0.1, "seg_placement": True},
            "epochs": 64, "steps_per_epoch": 25, "batch_size": 1, "learning_rate": 2e-3,
            # the distance from the mesh itself, not g_φ (``distance``); crop voxels average 2³ samples;
            # templates placed per case by the segmentation head (``seg_placement``). Held-out Dice LA / LV:
            # 0.68 / 0.81 without the placement (200 steps), 0.82 / 0.86 with it, 0.84 / 0.91 at 400 steps,
            # 0.86 / 0.94 at 800, 0.89 / 0.96 at 1600 (shipped); a 49³ crop at 400 steps gave 0.85 / 0.91 (the
            # network alone, seeds 5000-5007; refined onto the image's edges: 0.94 / 0.98 on seeds 5000-5047).
            "distance": "mesh", "image_supersample": 2},
}


def shape_train_preset(name: str) -> ShapeTrainConfig:
    """The :class:`ShapeTrainConfig` of a preset in :data:`SHAPE_TRAIN_PRESETS`."""
    check_choice("preset", name, tuple(SHAPE_TRAIN_PRESETS))
    return ShapeTrainConfig.from_dict(SHAPE_TRAIN_PRESETS[name])


@dataclass
class RefineConfig(ConfigBase):
    """Refinement of each predicted mesh onto the image's edge after f_θ (``_refine``; Ecabert et al. 2008).

    Attributes:
        enabled: Refine (False: the network's meshes as they are, the paper's output).
        search_mm: R: profiles span [−R, R] mm along each vertex normal.
        step_mm: Profile sample spacing (mm).
        iterations: Search-and-move rounds.
        rate: Fraction of the (ring-averaged) offset to the edge moved per round.
        max_step_mm: Largest move of a vertex per round (mm).
        smooth: Ring-averaging rounds of the offsets.
        normal_rings: Ring-averaging rounds of the vertex normals.
        min_contrast: Least intensity difference (image units, HU on CT) between a profile's two sides
            for its edge to count.
        sigma_mm: Gaussian smoothing of the image before sampling (noise).
    """

    enabled: bool = True
    search_mm: float = 3.0
    step_mm: float = 0.5
    iterations: int = 12
    rate: float = 0.5
    max_step_mm: float = 0.5
    smooth: int = 2
    normal_rings: int = 2
    min_contrast: float = 100.0
    sigma_mm: float = 1.0

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.enabled, bool):
            raise InputError(f"enabled: expected true or false, got {self.enabled!r}")
        for name in ("search_mm", "step_mm", "max_step_mm", "min_contrast"):
            check_positive(name, getattr(self, name))
        check_positive("sigma_mm", self.sigma_mm, allow_zero=True)
        if not 0.0 < self.rate <= 1.0:
            raise InputError(f"rate: expected a fraction in (0, 1], got {self.rate!r}")
        if self.search_mm > 20.0:
            raise InputError(f"search_mm: expected at most 20 mm (a local refinement), got {self.search_mm!r}")
        samples = self.search_mm / self.step_mm
        if not 2.0 <= samples <= 100.0 or abs(samples - round(samples)) > 1e-6:
            raise InputError(f"step_mm: expected search_mm / step_mm to be a whole number from 2 to 100 (profiles "
                             f"symmetric about the surface), got {self.search_mm!r} / {self.step_mm!r}")
        check_int("iterations", self.iterations, minimum=0, maximum=200)
        check_int("smooth", self.smooth, minimum=0, maximum=50)
        check_int("normal_rings", self.normal_rings, minimum=0, maximum=50)
