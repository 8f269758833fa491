"""A trained weight-space diffusion model read back from its checkpoint, and sampling new weight vectors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.trees._diffusion_net import WeightDenoiser
from AnatomyINRLib.trees._diffusion_schedule import DiffusionSchedule, ddim_sample, ddpm_sample
from AnatomyINRLib.trees._diffusion_tokens import WeightTokenizer, layout_from_json
from AnatomyINRLib.trees._diffusion_train import (CHECKPOINT_KIND, build_denoiser, build_schedule,
                                                  check_checkpoint_layout)
from AnatomyINRLib.trees.config import DiffusionConfig


@dataclass
class DiffusionModel:
    """Denoiser (EMA weights, eval mode), tokenizer, schedule, training config and checkpoint metadata."""

    denoiser: WeightDenoiser
    tokenizer: WeightTokenizer
    schedule: DiffusionSchedule
    config: DiffusionConfig
    meta: dict
    mixture: np.ndarray | None = None
    """After :meth:`sample` with a "hull" head: (count, N) mixture weights of each sample's last step."""

    @property
    def layout(self) -> list:
        return self.tokenizer.layout

    @classmethod
    def from_checkpoint(cls, path, device: torch.device, layout=None) -> "DiffusionModel":
        """Read ``path``; with ``layout`` given, refuse a checkpoint trained on another INR layout.

        Raises:
            InputError: not a diffusion checkpoint, or trained on another layout.
        """
        from AnatomyINRLib.io.checkpoint import load_checkpoint

        tensors, meta = load_checkpoint(path)
        if meta.get("kind") != CHECKPOINT_KIND:
            raise InputError(f"checkpoint {str(path)!r}: not a tree-diffusion checkpoint (kind {meta.get('kind')!r})")
        if layout is not None:
            check_checkpoint_layout(meta, layout, f"checkpoint {str(path)!r}")
        cfg = DiffusionConfig.from_dict(meta["training"])
        tokenizer = WeightTokenizer(layout_from_json(meta["layout"]), cfg.token_size,
                                    tensors["tokenizer.mean"].numpy(), tensors["tokenizer.scale"].numpy())
        hull = tensors.get("ema.hull") if cfg.head == "hull" else None
        if cfg.head == "hull" and hull is None:
            raise InputError(f"checkpoint {str(path)!r}: its head is 'hull' but it holds no training networks")
        net = build_denoiser(tokenizer, cfg, 0, hull)
        try:
            net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}, strict=True)
        except RuntimeError as exc:
            raise InputError(f"checkpoint {str(path)!r}: weights do not match its configuration "
                             f"({str(exc).splitlines()[0]})") from exc
        net.to(device).eval()
        return cls(net, tokenizer, build_schedule(cfg), cfg, meta)

    def sample(self, count: int, generator: torch.Generator, *, sample_steps: int | None = None,
               eta: float | None = None, sampler: str = "ddim", batch_size: int = 16,
               on_step=None, temperature: float | None = None, guide=None) -> np.ndarray:
        """``count`` new weight vectors (count, P) float32, drawn with ``generator``.

        ``sampler`` "ddim" (``sample_steps`` steps, η ``eta``; defaults from the config) or "ddpm" (all T).
        ``temperature``: of the "hull" head (default: the config's). With that head, ``self.mixture``
        holds afterwards the (count, N) mixture weights of each sample's last step.
        ``guide(vectors, t)``: DDIM only; corrects each step's x̂_0 as (B, P) float64 weight vectors
        (None: unchanged), e.g. ``trees._centerline_guidance.keep_apart_guide``.
        """
        if int(count) != count or count < 1:
            raise InputError(f"count: expected a positive integer, got {count!r}")
        device = next(self.denoiser.parameters()).device
        temperature = self.sampling_temperature(temperature)
        steps = self.config.sample_steps if sample_steps is None else sample_steps
        eta = self.config.eta if eta is None else eta
        out, mixes, last = [], [], {}
        if guide is not None and sampler != "ddim":
            raise InputError(f"guide: only with the 'ddim' sampler, got {sampler!r}")
        token_guide = None if guide is None else self._token_guide(guide)

        def denoise(x_t, t):  # keeps the hull head's mixture of the latest step (the sample's own)
            x0, last["mix"] = self.denoiser(x_t, t, temperature=temperature, return_mixture=True)
            return x0

        for first in range(0, int(count), batch_size):
            shape = (min(batch_size, int(count) - first), self.tokenizer.n_tokens, self.tokenizer.token_size)
            if sampler == "ddim":
                x = ddim_sample(denoise, self.schedule, shape, generator, sample_steps=steps, eta=eta,
                                device=device, on_step=on_step, guide=token_guide)
            elif sampler == "ddpm":
                x = ddpm_sample(denoise, self.schedule, shape, generator, device=device, on_step=on_step)
            else:
                raise InputError(f"sampler: expected 'ddim' or 'ddpm', got {sampler!r}")
            out.append(self.tokenizer.decode(x))
            if last.get("mix") is not None:
                mixes.append(last["mix"].detach().cpu().numpy())
        self.mixture = np.concatenate(mixes) if mixes else None
        return np.concatenate(out)

    def _token_guide(self, guide):
        """``guide`` on weight vectors → a guide on the sampler's tokens (through the tokenizer)."""
        def on_tokens(x0: torch.Tensor, t: int):
            vectors = guide(torch.from_numpy(self.tokenizer.decode(x0).astype(np.float64)), t)
            return None if vectors is None else self.tokenizer.encode(vectors).to(x0.device, x0.dtype)
        return on_tokens

    def sampling_temperature(self, temperature: float | None = None) -> float:
        """The hull head's sampling temperature: ``temperature``, or the config's when None.

        Raises:
            InputError: not a positive finite number, or a temperature given to another head.
        """
        temperature = self.config.temperature if temperature is None else temperature
        return float(self.config.replace(temperature=temperature).temperature)  # validates it against the head


def load_model(path: "str | Path", device="cpu", layout=None) -> DiffusionModel:
    """Shorthand for :meth:`DiffusionModel.from_checkpoint`."""
    return DiffusionModel.from_checkpoint(path, torch.device(device), layout)
