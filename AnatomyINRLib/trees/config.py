"""Configuration of tree synthesis (TrIND): per-tree INR fitting (stage 1) and weight-space diffusion (stage 2)."""

from __future__ import annotations

from dataclasses import dataclass

from AnatomyINRLib.core.config import ConfigBase, check_choice, check_int, check_positive
from AnatomyINRLib.core.errors import InputError

# ============================================================================ stage 2: weight-space diffusion


@dataclass
class DiffusionConfig(ConfigBase):
    """Weight-space diffusion (TrIND §2 Stage 2 and §3 Implementation details).

    Paper values are noted per field; the public code's differences are in the docs of the fields.
    """

    token_size: int = 512
    """Values per token; each INR layer (state-dict tensor) is cut into ceil(size/token_size) tokens."""
    width: int = 128
    """Transformer width (paper: 128-D hidden size)."""
    depth: int = 4
    """Transformer blocks (paper: 4 layers)."""
    heads: int = 4
    """Attention heads (paper: 4)."""
    dropout: float = 0.0
    """Dropout in attention and MLP (public code: 0)."""
    diffusion_steps: int = 1000
    """T (paper: 1k time steps; public code default 500)."""
    beta_start: float = 1e-4
    """β_0 of the linear schedule (paper and code: 1e-4)."""
    beta_end: float = 2e-2
    """β_{T-1}: the public code's 2e-2 (the paper prints 1e-2, which leaves 8 % of the signal at t = T)."""
    prediction: str = "x0"
    """What the denoiser predicts: "x0" (paper eq. 2, public code) or "eps"."""
    x0_skip: bool = True
    """x̂_0 = √ᾱ·x_t + √(1−ᾱ)·F (not in the paper; the loss is still eq. 2). Without it a small
    denoiser collapses each mode of the weight distribution to a point (measured on a 2-mode toy set)."""
    epochs: int = 200
    """Passes over the data set (paper: 6000 on an A40 GPU, about 3 days)."""
    batch_size: int = 8
    """Networks per optimiser step, summed over all processes (paper: 8)."""
    learning_rate: float = 1e-3
    """AdamW learning rate (paper: 1e-3)."""
    weight_decay: float = 0.01
    """AdamW weight decay (the public code's flag is unused, so AdamW's default 0.01 applies)."""
    lr_decay: float = 0.9
    """Step decay factor of the learning rate (paper: 0.9)."""
    lr_decay_every: int = 200
    """Epochs between decays (paper: 200; public code: 100)."""
    grad_clip: float = 2.0
    """Gradient-norm clip (public code: 2.0); 0 disables it."""
    ema_decay: float = 0.999
    """Exponential moving average of the denoiser's weights (sampling uses the EMA weights)."""
    checkpoint_every: int = 1
    """Epochs between checkpoints (the last epoch is always written)."""
    sample_steps: int = 50
    """DDIM steps at sampling time (public code: all T)."""
    eta: float = 0.0
    """DDIM η (0 = deterministic given the initial noise; 1 ≈ DDPM)."""

    def validate(self) -> None:
        """Check every field; raise InputError naming the bad one."""
        for name in ("token_size", "width", "depth", "heads", "diffusion_steps", "epochs", "batch_size",
                     "lr_decay_every", "checkpoint_every", "sample_steps"):
            check_int(name, getattr(self, name))
        if self.width % self.heads:
            raise InputError(f"heads: must divide width ({self.width}), got {self.heads}")
        check_choice("prediction", self.prediction, ("x0", "eps"))
        for name in ("learning_rate", "lr_decay"):
            check_positive(name, getattr(self, name))
        for name in ("weight_decay", "grad_clip", "dropout"):
            check_positive(name, getattr(self, name), allow_zero=True)
        if not 0 < self.beta_start <= self.beta_end < 1:
            raise InputError(f"beta_start, beta_end: expected 0 < beta_start <= beta_end < 1, "
                             f"got {self.beta_start}, {self.beta_end}")
        if not 0 <= self.ema_decay < 1:
            raise InputError(f"ema_decay: expected a number in [0, 1), got {self.ema_decay!r}")
        if not 0 <= self.eta <= 1:
            raise InputError(f"eta: expected a number in [0, 1], got {self.eta!r}")
        if self.sample_steps > self.diffusion_steps:
            raise InputError(f"sample_steps: at most diffusion_steps ({self.diffusion_steps}), got {self.sample_steps}")
        if not self.dropout < 1:
            raise InputError(f"dropout: expected a number in [0, 1), got {self.dropout!r}")


#: Presets as data: name → field overrides of :class:`DiffusionConfig`.
DIFFUSION_PRESETS = {
    "tiny": {"token_size": 64, "width": 32, "depth": 2, "heads": 2, "epochs": 2, "sample_steps": 10},
    "cpu": {},
    "paper": {"epochs": 6000, "sample_steps": 1000},
}


def diffusion_preset(name: str = "cpu") -> DiffusionConfig:
    """A fresh :class:`DiffusionConfig` for preset ``name`` ("tiny" for tests, "cpu", "paper")."""
    check_choice("preset", name, tuple(DIFFUSION_PRESETS))
    return DiffusionConfig(**DIFFUSION_PRESETS[name])
