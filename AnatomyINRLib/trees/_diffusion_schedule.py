"""DDPM noise schedule and the DDPM / DDIM samplers (Ho et al. 2020; Song et al. 2021), used by TrIND §2.

Notation (Ho et al.): β_t for t = 0..T−1 (linear), α_t = 1 − β_t, ᾱ_t = ∏_{s≤t} α_s, and ᾱ_{−1} = 1.

* forward process (Ho eq. 4): x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε,  ε ~ N(0, I);
* the denoiser predicts x_0 (TrIND eq. 2 and its public code) or ε; either is converted to the other
  with that same equation. With ``x0_skip`` the x_0 prediction is parametrised as
  x̂_0 = √ᾱ_t · x_t + √(1 − ᾱ_t) · F(x_t, t) (the best linear estimate of unit-variance data plus a
  learned correction, as in Karras et al. 2022's c_skip/c_out; F is then −v of Salimans & Ho 2022).
  The loss stays TrIND's ‖x̂_0 − x_0‖²; without the skip a small network has to rebuild x_t from
  scratch at low noise and collapses each mode of the data to a point;
* DDPM step (Ho eq. 6-7): x_{t−1} = μ̃_t(x_t, x̂_0) + σ_t z with
  μ̃_t = √ᾱ_{t−1} β_t / (1 − ᾱ_t) · x̂_0 + √α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · x_t and σ_t² = β_t ("large",
  the TrIND code's FIXED_LARGE) or β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t ("small");
* DDIM step (Song eq. 12) from t to an earlier s:
  x_s = √ᾱ_s · x̂_0 + √(1 − ᾱ_s − σ²) · ε̂ + σ z, σ = η √((1 − ᾱ_s)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_s).

Both samplers return the denoiser's x̂_0 of their final step (ᾱ_{−1} = 1), so a perfect x_0 prediction
gives the data back exactly. Every random draw takes a ``torch.Generator``.
"""

from __future__ import annotations

from typing import Callable

import torch

from AnatomyINRLib.core.config import check_choice, check_int
from AnatomyINRLib.core.errors import InputError

# denoise(x_t (B, ...), t (B,) int64) → model output (x̂_0 or ε̂, same shape as x_t)
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class DiffusionSchedule:
    """Linear β schedule and the quantities every step needs, as float64 tensors of length T.

    Args:
        steps: T, the number of diffusion steps (TrIND: 1000).
        beta_start, beta_end: β_0 and β_{T−1}. The TrIND code uses (1000/T)·[1e-4, 2e-2]; the paper
            prints [1e-4, 1e-2], which leaves √ᾱ_T ≈ 0.08 of the signal at t = T (not pure noise).
        prediction: "x0" (TrIND) or "eps": what the denoiser outputs.
        x0_skip: parametrise the x_0 prediction with the skip above (prediction "x0" only).
    """

    def __init__(self, steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 2e-2,
                 prediction: str = "x0", x0_skip: bool = False) -> None:
        check_int("steps", steps, minimum=2)
        if not 0 < beta_start <= beta_end < 1:
            raise InputError(f"beta_start, beta_end: expected 0 < start <= end < 1, got {beta_start}, {beta_end}")
        check_choice("prediction", prediction, ("x0", "eps"))
        self.steps = int(steps)
        self.prediction = prediction
        self.x0_skip = bool(x0_skip)
        self.betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
        self.alphas = 1.0 - self.betas
        self.alpha_bar = torch.cumprod(self.alphas, dim=0)

    def alpha_bar_at(self, t: torch.Tensor) -> torch.Tensor:
        """ᾱ_t for integer t (any shape); t = −1 gives 1."""
        t = torch.as_tensor(t, dtype=torch.int64)
        padded = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar])
        return padded[t + 1]

    def _expand(self, values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.to(like.device, like.dtype).reshape(-1, *([1] * (like.ndim - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε (Ho eq. 4); ``t`` (B,) int64."""
        ab = self._expand(self.alpha_bar_at(t), x0)
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise

    def to_x0_eps(self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
        """(x̂_0, ε̂) from the denoiser's output, whichever of the two it predicts."""
        ab = self._expand(self.alpha_bar_at(t), x_t)
        if self.prediction == "x0":
            x0 = ab.sqrt() * x_t + (1.0 - ab).sqrt() * output if self.x0_skip else output
            eps = (x_t - ab.sqrt() * x0) / (1.0 - ab).sqrt()
        else:
            eps = output
            x0 = (x_t - (1.0 - ab).sqrt() * eps) / ab.sqrt()
        return x0, eps

    def training_error(self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor,
                       noise: torch.Tensor) -> torch.Tensor:
        """Squared error per value: ‖x̂_0 − x_0‖² (TrIND eq. 2) or ‖ε̂ − ε‖² (Ho eq. 14)."""
        if self.prediction == "eps":
            return (output - noise) ** 2
        return (self.to_x0_eps(output, x_t, t)[0] - x0) ** 2

    def ddim_timesteps(self, sample_steps: int) -> list:
        """``sample_steps`` timesteps from T−1 down to 0, evenly spaced (Song §4.2 'linear' selection)."""
        check_int("sample_steps", sample_steps, minimum=1, maximum=self.steps)
        ts = torch.linspace(self.steps - 1, 0, sample_steps, dtype=torch.float64).round().long()
        return sorted(set(int(t) for t in ts), reverse=True)


def _prior(shape, generator: torch.Generator, device, dtype) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=dtype, device="cpu").to(device)


def _noise_like(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # drawn on the CPU so that the same generator gives the same samples on every device
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)


@torch.no_grad()
def ddpm_sample(denoise: Denoiser, schedule: DiffusionSchedule, shape, generator: torch.Generator, *,
                variance: str = "large", device="cpu", dtype=torch.float32, x_T=None,
                on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Ancestral sampling through all T steps (Ho Algorithm 2); returns x̂_0 of the last step."""
    check_choice("variance", variance, ("large", "small"))
    x = _prior(shape, generator, device, dtype) if x_T is None else x_T.to(device, dtype)
    x0 = x
    for i, t in enumerate(range(schedule.steps - 1, -1, -1)):
        tt = torch.full((shape[0],), t, dtype=torch.int64, device=x.device)
        x0, _ = schedule.to_x0_eps(denoise(x, tt), x, tt)
        if t == 0:
            break
        ab, ab_prev = float(schedule.alpha_bar[t]), float(schedule.alpha_bar[t - 1])
        beta, alpha = float(schedule.betas[t]), float(schedule.alphas[t])
        mean = (ab_prev ** 0.5 * beta / (1 - ab)) * x0 + (alpha ** 0.5 * (1 - ab_prev) / (1 - ab)) * x
        var = beta if variance == "large" else beta * (1 - ab_prev) / (1 - ab)
        x = mean + var ** 0.5 * _noise_like(x, generator)
        if on_step is not None:
            on_step(i + 1, schedule.steps)
    return x0


@torch.no_grad()
def ddim_sample(denoise: Denoiser, schedule: DiffusionSchedule, shape, generator: torch.Generator, *,
                sample_steps: int = 50, eta: float = 0.0, device="cpu", dtype=torch.float32, x_T=None,
                on_step: Callable[[int, int], None] | None = None, guide=None) -> torch.Tensor:
    """DDIM (Song eq. 12) over ``sample_steps`` of the T steps; η = 0 is deterministic given x_T.

    ``guide(x̂_0, t)``: an optional correction of each step's x̂_0 (None: no change at that step); ε̂ is
    recomputed from the corrected x̂_0 and x_t (Ho eq. 4), so the step moves toward the corrected x̂_0.
    """
    if not 0.0 <= float(eta) <= 1.0:
        raise InputError(f"eta: expected a number in [0, 1], got {eta!r}")
    steps = schedule.ddim_timesteps(sample_steps)
    x = _prior(shape, generator, device, dtype) if x_T is None else x_T.to(device, dtype)
    x0 = x
    for i, t in enumerate(steps):
        s = steps[i + 1] if i + 1 < len(steps) else -1
        tt = torch.full((shape[0],), t, dtype=torch.int64, device=x.device)
        x0, eps = schedule.to_x0_eps(denoise(x, tt), x, tt)
        ab_t = float(schedule.alpha_bar[t])
        guided = None if guide is None else guide(x0, t)
        if guided is not None:
            x0 = guided.to(x.dtype)
            eps = (x - ab_t ** 0.5 * x0) / (1 - ab_t) ** 0.5
        if s < 0:
            break
        ab_s = float(schedule.alpha_bar[s])
        sigma = float(eta) * ((1 - ab_s) / (1 - ab_t)) ** 0.5 * (1 - ab_t / ab_s) ** 0.5
        x = ab_s ** 0.5 * x0 + max(1 - ab_s - sigma ** 2, 0.0) ** 0.5 * eps
        if sigma > 0:
            x = x + sigma * _noise_like(x, generator)
        if on_step is not None:
            on_step(i + 1, len(steps))
    return x0
