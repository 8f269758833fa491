"""A fitted neural field in world millimetres.

Networks work in a normalised cube; :class:`NeuralField` owns the exact
world ↔ normalised mapping so every caller sees RAS mm in and mm out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from AnatomyINRLib.core.errors import InputError


@dataclass
class Normalization:
    """x_norm = (x_mm − center) / scale ; SDF_mm = SDF_norm · scale.

    Attributes:
        center: (3,) RAS mm mapped to the origin.
        scale: mm per normalised unit (isotropic, so distances stay distances).
    """

    center: np.ndarray
    scale: float

    def __post_init__(self) -> None:
        self.center = np.asarray(self.center, dtype=np.float64).reshape(3)
        self.scale = float(self.scale)
        if not np.isfinite(self.scale) or self.scale <= 0:
            raise InputError(f"scale: expected a positive finite number, got {self.scale}")

    @classmethod
    def fit(cls, points: np.ndarray, extent: float = 0.7) -> "Normalization":
        """Map the bounding box of ``points`` into [−extent, extent]³ (centred, aspect kept).

        A margin below 1 leaves room for the off-surface samples and the
        meshing box around the surface.
        """
        lo, hi = points.min(axis=0), points.max(axis=0)
        half = float(np.max(hi - lo)) / 2.0
        return cls(center=(lo + hi) / 2.0, scale=max(half, 1e-6) / extent)

    def to_normalized(self, points_mm: np.ndarray) -> np.ndarray:
        return (np.asarray(points_mm, dtype=np.float64) - self.center) / self.scale

    def to_world(self, points_norm: np.ndarray) -> np.ndarray:
        return np.asarray(points_norm, dtype=np.float64) * self.scale + self.center

    def to_dict(self) -> dict:
        return {"center_mm": self.center.tolist(), "scale_mm": self.scale}

    @classmethod
    def from_dict(cls, data: dict) -> "Normalization":
        try:
            return cls(center=data["center_mm"], scale=data["scale_mm"])
        except (KeyError, TypeError) as exc:
            raise InputError(f"normalization: expected center_mm and scale_mm, got {data!r}") from exc


def to_numpy64(tensor: torch.Tensor) -> np.ndarray:
    """A device tensor as a float64 numpy array: copy to the CPU first, then widen.

    The order matters: Apple MPS has no float64, so widening on the device
    fails there; the CPU copy is made in the tensor's own dtype.
    """
    return tensor.detach().cpu().numpy().astype(np.float64, copy=False)


class NeuralField:
    """Callable world-space field backed by a network.

    ``field(points)`` maps (N, 3) RAS mm to (N,) signed distances in mm (or
    (N, K) for K-output networks), evaluated in chunks without gradients.

    Args:
        network: torch module mapping (N, 3) normalised coords to (N, K).
        normalization: World ↔ network frame.
        device: Device the network lives on.
        chunk_size: Points per forward pass (bounds memory).
    """

    def __init__(self, network: torch.nn.Module, normalization: Normalization, device=None, chunk_size: int = 65536) -> None:
        self.network = network
        self.normalization = normalization
        self.device = torch.device(device) if device is not None else next(network.parameters()).device
        self.chunk_size = int(chunk_size)
        self.network.to(self.device)

    @property
    def out_dim(self) -> int:
        return int(getattr(self.network, "out_dim", None) or self.network.config.out_dim)

    def __call__(self, points_mm: np.ndarray) -> np.ndarray:
        """Evaluate at (N, 3) RAS mm → (N,) mm for one output, else (N, K) mm."""
        pts = np.asarray(points_mm, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise InputError(f"points: expected (N, 3), got shape {pts.shape}")
        norm = self.normalization.to_normalized(pts).astype(np.float32)
        out = np.empty((len(pts), self.out_dim), dtype=np.float64)
        was_training = self.network.training
        self.network.eval()
        with torch.no_grad():
            for start in range(0, len(pts), self.chunk_size):
                chunk = torch.from_numpy(norm[start:start + self.chunk_size]).to(self.device)
                out[start:start + len(chunk)] = to_numpy64(self.network(chunk))
        self.network.train(was_training)
        out *= self.normalization.scale
        return out[:, 0] if out.shape[1] == 1 else out

    def gradient(self, points_mm: np.ndarray, output: int = 0) -> np.ndarray:
        """(N, 3) spatial gradient of output ``output`` at RAS mm points (unitless for an SDF)."""
        pts = np.asarray(points_mm, dtype=np.float64)
        norm = self.normalization.to_normalized(pts).astype(np.float32)
        grads = np.empty((len(pts), 3), dtype=np.float64)
        for start in range(0, len(pts), self.chunk_size):
            x = torch.from_numpy(norm[start:start + self.chunk_size]).to(self.device).requires_grad_(True)
            y = self.network(x)[:, output]
            (g,) = torch.autograd.grad(y.sum(), x)
            grads[start:start + len(x)] = to_numpy64(g)
        return grads
