"""Pulmonary segments: the label table (data) and the configuration of Method A.

Label values 1-18 follow one fixed order everywhere (inputs, outputs, reports):
RUL S1, S2, S3; RML S4, S5; RLL S6, S7, S8, S9, S10; LUL S1+2, S3, S4, S5;
LLL S6, S7+8, S9, S10. Lobe values: 1 RUL, 2 RML, 3 RLL, 4 LUL, 5 LLL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from AnatomyINRLib.core.config import ConfigBase, check_choice, check_int, check_positive
from AnatomyINRLib.core.errors import InputError

#: Lobe label value → name.
LOBE_NAMES: dict[int, str] = {1: "RUL", 2: "RML", 3: "RLL", 4: "LUL", 5: "LLL"}

#: Segment label value (1-18) → (name, lobe value), in the fixed output order.
SEGMENTS: dict[int, tuple[str, int]] = {
    1: ("RUL S1", 1), 2: ("RUL S2", 1), 3: ("RUL S3", 1),
    4: ("RML S4", 2), 5: ("RML S5", 2),
    6: ("RLL S6", 3), 7: ("RLL S7", 3), 8: ("RLL S8", 3), 9: ("RLL S9", 3), 10: ("RLL S10", 3),
    11: ("LUL S1+2", 4), 12: ("LUL S3", 4), 13: ("LUL S4", 4), 14: ("LUL S5", 4),
    15: ("LLL S6", 5), 16: ("LLL S7+8", 5), 17: ("LLL S9", 5), 18: ("LLL S10", 5),
}

#: Display colours (RGB in [0, 1]) of the 18 segments, distinct between neighbours of a lobe.
SEGMENT_COLORS: dict[int, tuple[float, float, float]] = {
    1: (0.90, 0.30, 0.24), 2: (0.95, 0.61, 0.07), 3: (0.98, 0.86, 0.30),
    4: (0.18, 0.80, 0.44), 5: (0.10, 0.52, 0.30),
    6: (0.20, 0.60, 0.86), 7: (0.56, 0.27, 0.68), 8: (0.40, 0.80, 0.85), 9: (0.16, 0.31, 0.62),
    10: (0.91, 0.47, 0.72),
    11: (0.75, 0.22, 0.17), 12: (0.83, 0.68, 0.21), 13: (0.47, 0.73, 0.20), 14: (0.08, 0.63, 0.52),
    15: (0.36, 0.68, 0.89), 16: (0.61, 0.35, 0.71), 17: (0.20, 0.29, 0.37), 18: (0.93, 0.55, 0.62),
}

N_SEGMENTS = 18


SEGMENT_NAMES: dict[int, str] = {label: name for label, (name, _) in SEGMENTS.items()}
"""Label → segment name, e.g. for ``metrics.segments.evaluate_labelmaps(..., names=SEGMENT_NAMES)``."""


def segment_name(label: int) -> str:
    """Name of segment ``label`` (1-18)."""
    return SEGMENTS[int(label)][0]


def segment_lobe(label: int) -> int:
    """Lobe value (1-5) holding segment ``label``."""
    return SEGMENTS[int(label)][1]


def lobe_segments(lobe: int) -> list[int]:
    """Segment labels of lobe ``lobe`` in label order."""
    return [lab for lab, (_, lb) in SEGMENTS.items() if lb == int(lobe)]


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(text)).upper()


_BY_KEY = {_key(name): lab for lab, (name, _) in SEGMENTS.items()}


def segment_label(name: "str | int", argument: str = "segment") -> int:
    """Label value of a segment given by name ("RUL S1", "rul_s1", "LLL S7+8") or number ("7").

    Raises:
        InputError: unknown name (the message lists the known names).
    """
    text = str(name).strip()
    if text.isdigit() and 1 <= int(text) <= N_SEGMENTS:
        return int(text)
    lab = _BY_KEY.get(_key(text))
    if lab is None:
        known = ", ".join(n for n, _ in SEGMENTS.values())
        raise InputError(f"{argument}: unknown segment name {text!r}; expected one of: {known}")
    return lab


@dataclass
class TerritoryConfig(ConfigBase):
    """Method A: geodesic territories of the labelled bronchi, smoothed by an implicit soft partition."""

    work_spacing_mm: float = 2.0
    """Isotropic spacing of the grid the geodesic territories and the fields live on (never finer
    than the input; the fields are then sampled trilinearly at any resolution)."""
    smoothing_mm: float = 3.0
    """Gaussian σ of each segment's soft indicator field (the boundary smoothness scale)."""
    vein_cost: float = 1.0
    """Geodesic cost multiplier inside vein voxels (1 = veins unused). Meant to make intersegmental
    veins soft barriers, but veins are tubes, not surfaces: the fronts pass around them. Measured on
    the phantom: 3 changed mean Dice by < 0.001 and 5 did not move boundaries onto the veins."""
    use_arteries: bool = False
    """Label artery voxels by the nearest labelled bronchus of their lobe and use them as extra sources.
    Off by default: on the phantom it lowered mean Dice (0.919 → 0.914, seed 1, small) and did not
    reduce artery intrusions, which sit where a lobe's segmental arteries meet."""
    artery_max_distance_mm: float = 8.0
    """Arteries farther than this from any labelled bronchus stay unlabelled."""
    point_max_distance_mm: float = 10.0
    """A segment point must lie within this of the airway skeleton."""
    chunk_voxels: int = 2_000_000
    """Voxels sampled per chunk when the fields are evaluated on the output grid (memory bound)."""

    def validate(self) -> None:
        """Raise InputError naming the first invalid field."""
        check_positive("work_spacing_mm", self.work_spacing_mm)
        check_positive("smoothing_mm", self.smoothing_mm, allow_zero=True)
        check_positive("vein_cost", self.vein_cost)
        if self.vein_cost < 1.0:
            raise InputError(f"vein_cost: expected a number >= 1, got {self.vein_cost!r}")
        if not isinstance(self.use_arteries, bool):
            raise InputError(f"use_arteries: expected true or false, got {self.use_arteries!r}")
        check_positive("artery_max_distance_mm", self.artery_max_distance_mm)
        check_positive("point_max_distance_mm", self.point_max_distance_mm)
        check_int("chunk_voxels", self.chunk_voxels, minimum=10_000)


#: Presets as data: name → field overrides of :class:`TerritoryConfig`.
PRESETS: dict[str, dict] = {
    "fast": {"work_spacing_mm": 3.0, "smoothing_mm": 3.0},
    "default": {},
    "fine": {"work_spacing_mm": 1.5, "smoothing_mm": 2.0},
}


def preset_config(name: str = "default") -> TerritoryConfig:
    """A fresh :class:`TerritoryConfig` for preset ``name`` ("fast", "default", "fine")."""
    check_choice("preset", name, tuple(PRESETS))
    cfg = TerritoryConfig(**PRESETS[name])
    cfg.validate()
    return cfg


# ----------------------------------------------------------------------------- Method B (learned, ImPulSe+)

#: Input channels Method B may use, in channel order: CT intensity, binary trees, lobe one-hot (6 channels).
LEARNED_CHANNELS = ("ct", "airways", "arteries", "veins", "lobes")


@dataclass
class LearnedNetworkConfig(ConfigBase):
    """Method B's network (ImPulSe+ §4.2-4.4): 3D ResNet-18 pyramid encoder, template, two implicit heads.

    A checkpoint stores this config; a checkpoint is refused when it differs from what the code builds.
    """

    channels: tuple = ("ct", "airways", "arteries", "veins", "lobes")
    """Volumes fed to the encoder (a subset of LEARNED_CHANNELS, in that order); the paper's IBAV input is
    CT + bronchi + arteries + veins; its LBAV input adds the 6-channel lobe one-hot."""
    input_size: int = 32
    """Edge of the cube the lung box is resampled to for the encoder (paper 128)."""
    encoder_width: int = 8
    """Channels of the first ResNet-18 stage (paper 64); stages have width, 2·, 4·, 8·width."""
    head_width: int = 64
    """Hidden width of the deformation and correction MLPs (paper 64)."""
    head_dropout: float = 0.1
    """Dropout inside the heads (paper code 0.3)."""
    template_latent: int = 64
    """Size of the template's latent vector v (paper 1024)."""
    template_channels: tuple = (64, 32, 16)
    """Channels of the template decoder's upsampling blocks; the template edge is 2·2^len (paper: 6 blocks,
    128³)."""

    def validate(self) -> None:
        """Raise InputError naming the first invalid field."""
        chans = tuple(self.channels)
        if not chans or any(c not in LEARNED_CHANNELS for c in chans) or len(set(chans)) != len(chans):
            raise InputError(f"channels: expected distinct names from {list(LEARNED_CHANNELS)}, got {list(chans)!r}")
        if list(chans) != [c for c in LEARNED_CHANNELS if c in chans]:
            raise InputError(f"channels: expected the order {list(LEARNED_CHANNELS)}, got {list(chans)!r}")
        check_int("input_size", self.input_size, minimum=16)
        if self.input_size % 8:
            raise InputError(f"input_size: expected a multiple of 8 (three stride-2 stages), got {self.input_size}")
        check_int("encoder_width", self.encoder_width, minimum=4)
        check_int("head_width", self.head_width, minimum=8)
        if not (isinstance(self.head_dropout, (int, float)) and 0.0 <= self.head_dropout < 1.0):
            raise InputError(f"head_dropout: expected a number in [0, 1), got {self.head_dropout!r}")
        check_int("template_latent", self.template_latent, minimum=4)
        if not self.template_channels or not all(isinstance(c, int) and c >= 4 for c in self.template_channels):
            raise InputError(f"template_channels: expected integers >= 4, got {self.template_channels!r}")

    @property
    def n_input_channels(self) -> int:
        return sum(6 if c == "lobes" else 1 for c in self.channels)

    @property
    def template_size(self) -> int:
        return 2 * 2 ** len(self.template_channels)


@dataclass
class LearnedTrainConfig(ConfigBase):
    """Method B's training (ImPulSe+ §4.5): template pre-training, then the end-to-end stage."""

    network: LearnedNetworkConfig = None  # type: ignore[assignment]
    epochs: int = 20
    """Epochs of the end-to-end stage; one epoch = ``steps_per_epoch`` optimiser steps."""
    steps_per_epoch: int = 8
    batch_size: int = 2
    """Cases per step on each process (cycled through the process's shard of the cases)."""
    points_per_case: int = 4096
    """Query points per case per step (paper 16³ = 4096)."""
    bronchus_fraction: float = 0.15
    """Fraction of the points drawn on airway voxels (jittered within the voxel); same for the two below."""
    artery_fraction: float = 0.15
    vein_fraction: float = 0.1
    learning_rate: float = 1e-3
    """AdamW, cosine decay to ``min_learning_rate`` over all steps (paper 1e-3 → 1e-6)."""
    min_learning_rate: float = 1e-6
    weight_decay: float = 1e-2
    ce_weight: float = 0.5
    """α of L = α·CE + β·Dice + γ·‖Δ‖₂ (paper Eq. 10-11: 0.5, 1, 1e-3)."""
    dice_weight: float = 1.0
    deformation_weight: float = 1e-3
    pretrain_template_steps: int = 200
    """Steps of the template pre-training stage (0 = none: the template starts random)."""
    freeze_template: bool = True
    """Keep the pre-trained template fixed in the end-to-end stage (the paper's choice)."""
    restrict_to_lobes: bool = True
    """At inference, a lobe voxel takes the best segment of its own lobe and voxels outside the lobes are 0
    (needs the lobes; not in the paper, whose 19-class argmax may put segments outside their lobe)."""
    chunk_points: int = 262_144
    """Points per chunk at inference (memory bound)."""

    def __post_init__(self) -> None:
        if self.network is None:
            self.network = LearnedNetworkConfig()

    def validate(self) -> None:
        """Raise InputError naming the first invalid field."""
        if not isinstance(self.network, LearnedNetworkConfig):
            raise InputError(f"network: expected a LearnedNetworkConfig, got {type(self.network).__name__}")
        self.network.validate()
        for name in ("epochs", "steps_per_epoch", "batch_size", "points_per_case"):
            check_int(name, getattr(self, name))
        check_int("pretrain_template_steps", self.pretrain_template_steps, minimum=0)
        check_int("chunk_points", self.chunk_points, minimum=1024)
        fr = (self.bronchus_fraction, self.artery_fraction, self.vein_fraction)
        for name, v in zip(("bronchus_fraction", "artery_fraction", "vein_fraction"), fr):
            check_positive(name, v, allow_zero=True)
        if sum(fr) > 1.0:
            raise InputError(f"bronchus_fraction + artery_fraction + vein_fraction: expected <= 1, got {sum(fr)}")
        for name in ("learning_rate", "min_learning_rate"):
            check_positive(name, getattr(self, name))
        for name in ("weight_decay", "ce_weight", "dice_weight", "deformation_weight"):
            check_positive(name, getattr(self, name), allow_zero=True)
        for name in ("freeze_template", "restrict_to_lobes"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name}: expected true or false, got {getattr(self, name)!r}")


#: Method B presets as data: name → (network overrides, training overrides).
LEARNED_PRESETS: dict[str, tuple[dict, dict]] = {
    "tiny": ({"input_size": 16, "encoder_width": 4, "head_width": 16, "template_latent": 8,
              "template_channels": (8, 8)},
             {"epochs": 1, "steps_per_epoch": 2, "batch_size": 1, "points_per_case": 512,
              "pretrain_template_steps": 5}),
    "small": ({}, {}),
    "paper": ({"input_size": 128, "encoder_width": 64, "head_width": 64, "head_dropout": 0.3,
               "template_latent": 1024, "template_channels": (1024, 512, 256, 128, 64, 32)},
              {"epochs": 100, "steps_per_epoch": 140, "batch_size": 4, "pretrain_template_steps": 2000}),
}


def learned_preset(name: str = "small") -> LearnedTrainConfig:
    """A fresh :class:`LearnedTrainConfig` for preset ``name`` ("tiny" for tests, "small" for CPU, "paper")."""
    check_choice("preset", name, tuple(LEARNED_PRESETS))
    net, train = LEARNED_PRESETS[name]
    cfg = LearnedTrainConfig(network=LearnedNetworkConfig(**net), **train)
    cfg.validate()
    return cfg
