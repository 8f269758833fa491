"""Implicit solids of the cardiac phantom: level functions (negative inside) on (N, 3) RAS mm points.

None of these is a distance; only the sign is used, to get the inside fraction of every voxel
by supersampling. Each solid first keeps the points inside a bounding sphere (the others are
outside: level +1), which made the phantom several times faster. Shapes vary by low-order "harmonic" bumps of
their radii: r(θ, t) = r · (1 + Σ_k a_k cos(k θ + φ_k) · (1 + b_k t)), with θ the angle around the
local w axis and t the normalised position along it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def frame_from_axis(w: np.ndarray, roll: float) -> np.ndarray:
    """(3, 3) orthonormal columns (u, v, w) with w along ``w`` and u rotated by ``roll`` rad about it."""
    w = np.asarray(w, dtype=np.float64) / np.linalg.norm(w)
    helper = np.array([0.0, 0.0, 1.0]) if abs(w[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(helper, w)
    u /= np.linalg.norm(u)
    v = np.cross(w, u)
    c, s = np.cos(roll), np.sin(roll)
    return np.stack([c * u + s * v, -s * u + c * v, w], axis=1)


def _culled(p: np.ndarray, centre: np.ndarray, radius: float, level) -> np.ndarray:
    """``level`` evaluated only at the points within ``radius`` of ``centre``; +1 (outside) elsewhere."""
    d = p - centre
    near = np.flatnonzero(np.einsum("ij,ij->i", d, d) < radius * radius)
    out = np.ones(len(p))
    if len(near):
        out[near] = level(p[near])
    return out


@dataclass
class Bumps:
    """Radial modulation 1 + Σ_k a_k cos(k θ + φ_k)(1 + b_k t), k = 1 … K."""

    amplitude: np.ndarray
    phase: np.ndarray
    slope: np.ndarray

    @staticmethod
    def draw(rng: np.random.Generator, k: int = 3, strength: float = 0.1) -> "Bumps":
        return Bumps(rng.uniform(-strength, strength, k) / np.arange(1, k + 1),
                     rng.uniform(0, 2 * np.pi, k), rng.uniform(-0.8, 0.8, k))

    def peak(self) -> float:
        """An upper bound of the modulation over θ and t ∈ [−1, 1]."""
        return 1.0 + float(np.sum(np.abs(self.amplitude) * (1.0 + np.abs(self.slope))))

    def __call__(self, theta: np.ndarray, t: np.ndarray) -> np.ndarray:
        out = np.ones_like(theta)
        for k, (a, p, b) in enumerate(zip(self.amplitude, self.phase, self.slope), start=1):
            out = out + a * np.cos(k * theta + p) * (1.0 + b * t)
        return out


@dataclass
class Bullet:
    """The LV-like cavity: a half-ellipsoid from the base plane (t = 0) to the apex (t = length).

    Local coordinates q = frameᵀ(p − base); inside where (q_u/r_u)² + (q_v/r_v)² + (q_w/L)² < 1
    (radii modulated by ``bumps``) and q_w > −cap (the base is rounded off a little above the plane).
    ``grow`` adds the same thickness (mm) to every semi-axis (the myocardium around the cavity).
    """

    base: np.ndarray
    frame: np.ndarray
    r_u: float
    r_v: float
    length: float
    cap: float
    bumps: Bumps

    def level(self, p: np.ndarray, grow: float = 0.0) -> np.ndarray:
        reach = max(self.r_u, self.r_v) * self.bumps.peak() + grow
        radius = float(np.hypot(0.5 * self.length + grow + self.cap, reach))
        centre = self.base + self.frame[:, 2] * (0.5 * (self.length + grow - self.cap))
        return _culled(p, centre, radius + 1e-6, lambda x: self._level(x, grow))

    def _level(self, p: np.ndarray, grow: float) -> np.ndarray:
        q = (p - self.base) @ self.frame
        t = np.clip(q[:, 2] / self.length, 0.0, 1.0)
        m = self.bumps(np.arctan2(q[:, 1], q[:, 0]), t)
        ell = (q[:, 0] / (m * self.r_u + grow)) ** 2 + (q[:, 1] / (m * self.r_v + grow)) ** 2 \
            + (np.maximum(q[:, 2], 0.0) / (self.length + grow)) ** 2 + (np.minimum(q[:, 2], 0.0) / (self.cap + 1e-9)) ** 8
        return ell - 1.0


@dataclass
class Blob:
    """A modulated ellipsoid (LA-, RA-, RV-like chambers): centre, frame, semi-axes (mm), bumps."""

    centre: np.ndarray
    frame: np.ndarray
    semi: np.ndarray
    bumps: Bumps

    def level(self, p: np.ndarray) -> np.ndarray:
        return _culled(p, self.centre, float(self.semi.max() * self.bumps.peak()) + 1e-6, self._level)

    def _level(self, p: np.ndarray) -> np.ndarray:
        q = (p - self.centre) @ self.frame
        m = self.bumps(np.arctan2(q[:, 1], q[:, 0]), np.clip(q[:, 2] / self.semi[2], -1.0, 1.0))
        return (q[:, 0] / (m * self.semi[0])) ** 2 + (q[:, 1] / (m * self.semi[1])) ** 2 + (q[:, 2] / self.semi[2]) ** 2 - 1.0


@dataclass
class Tube:
    """A chain of capsules through ``points`` (M, 3) with radii (M,) linearly varying (aorta, veins)."""

    points: np.ndarray
    radii: np.ndarray

    def level(self, p: np.ndarray) -> np.ndarray:
        out = np.ones(len(p))
        for a, b, ra, rb in zip(self.points[:-1], self.points[1:], self.radii[:-1], self.radii[1:]):
            ab = b - a

            def capsule(x, a=a, ab=ab, ra=ra, rb=rb):
                t = np.clip(((x - a) @ ab) / float(ab @ ab), 0.0, 1.0)
                return np.linalg.norm(x - (a + t[:, None] * ab), axis=1) - (ra + t * (rb - ra))

            reach = 0.5 * float(np.linalg.norm(ab)) + max(ra, rb) + 1e-6
            out = np.minimum(out, _culled(p, a + 0.5 * ab, reach, capsule))
        return out


@dataclass
class ZCylinder:
    """An elliptic cylinder along the z axis (body outline, vertebral column, sternum)."""

    centre_xy: np.ndarray
    semi_xy: np.ndarray

    def level(self, p: np.ndarray) -> np.ndarray:
        q = (p[:, :2] - self.centre_xy) / self.semi_xy
        return (q**2).sum(axis=1) - 1.0
