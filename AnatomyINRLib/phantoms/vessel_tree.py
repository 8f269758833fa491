"""Seeded thin branching vessel network: a union of capsules with an exact SDF.

A binary tree of wiggly branches grows from a root: every branch is a chain of
short straight capsules (``segment_mm`` long) whose direction turns by a small
random angle per segment and whose radius tapers linearly along the branch
(step-wise, one radius per capsule; the step between capsules is
< 0.05 mm with the defaults). Children start at their parent's end, split the
parent's radius by Murray's law (r³ = r₁³ + r₂³, asymmetric by
``asymmetry``), and leave at ``branch_angle_deg`` from the parent direction
in a plane of random azimuth. Radii never go below ``min_radius``.

As a union of capsules (``base.UnionPhantom``) the SDF is exact outside the
network, exact on the surface and exact in sign; inside it is a lower bound on
the depth. Surface samples are exactly on the zero set, uniform by area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from AnatomyINRLib.core.config import ConfigBase, check_int, check_positive
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.phantoms.base import UnionPhantom, check_points
from AnatomyINRLib.phantoms.primitives import perpendicular_basis
from AnatomyINRLib.phantoms.tubes import Capsule


_NEAREST = 24  # capsules evaluated per point before the exactness check
_CHUNK = 200_000


@dataclass
class VesselTreeParams(ConfigBase):
    """Geometry of :class:`VesselTreePhantom` (mm, degrees).

    Attributes:
        seed: Seed of every random choice (same seed, same network).
        generations: Branching levels below the root (branches: 2^(g+1) − 1).
        root_radius: Radius at the root's start.
        min_radius: Lower bound on every radius.
        taper: Radius at a branch's end / at its start.
        asymmetry: Share of r³ going to the first child (0.5 = symmetric).
        root_length: Length of the root branch.
        length_decay: Child length / parent length.
        segment_mm: Capsule length along a branch.
        branch_angle_deg: Angle between a child and its parent's end direction.
        wiggle_deg: Standard deviation of the per-segment turn.
        origin: Root start (RAS mm).
        direction: Root direction (RAS).
    """

    seed: int = 0
    generations: int = 4
    root_radius: float = 3.0
    min_radius: float = 1.0
    taper: float = 0.85
    asymmetry: float = 0.6
    root_length: float = 18.0
    length_decay: float = 0.8
    segment_mm: float = 2.0
    branch_angle_deg: float = 38.0
    wiggle_deg: float = 8.0
    origin: tuple = (0.0, 0.0, 0.0)
    direction: tuple = (0.0, 0.0, -1.0)

    def validate(self) -> None:
        """Check ranges."""
        check_int("generations", self.generations, minimum=0)
        for name in ("root_radius", "min_radius", "taper", "root_length", "length_decay", "segment_mm"):
            check_positive(name, getattr(self, name))
        if not 0 < self.asymmetry < 1:
            raise InputError(f"asymmetry: expected a share in (0, 1), got {self.asymmetry!r}")
        if self.min_radius > self.root_radius:
            raise InputError("min_radius: expected <= root_radius")
        if np.linalg.norm(np.asarray(self.direction, dtype=float)) < 1e-9:
            raise InputError("direction: expected a non-zero RAS vector")


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation of unit vector v about unit axis."""
    return v * np.cos(angle) + np.cross(axis, v) * np.sin(angle) + axis * (axis @ v) * (1 - np.cos(angle))


def _turn(d: np.ndarray, angle: float, rng: np.random.Generator) -> np.ndarray:
    """d turned by ``angle`` towards a random perpendicular direction."""
    e1, e2 = perpendicular_basis(d)
    phi = rng.uniform(0.0, 2 * np.pi)
    out = _rotate(d, np.cos(phi) * e1 + np.sin(phi) * e2, angle)
    return out / np.linalg.norm(out)


def _branch(start, d, length, r0, p: VesselTreeParams, rng) -> tuple[list, np.ndarray, np.ndarray, float]:
    """Capsules of one branch, its end point, end direction and end radius."""
    n = max(1, int(round(length / p.segment_mm)))
    r1 = max(p.min_radius, r0 * p.taper)
    caps, x = [], np.asarray(start, dtype=np.float64)
    for k in range(n):
        r = max(p.min_radius, r0 + (r1 - r0) * (k + 0.5) / n)
        y = x + d * (length / n)
        caps.append(Capsule(x, y, r))
        x = y
        d = _turn(d, abs(rng.normal(scale=np.radians(p.wiggle_deg))), rng)
    return caps, x, d, r1


def build_tree(p: VesselTreeParams) -> tuple[list, int]:
    """(capsules, number of branches) of the network described by ``p``."""
    p.validate()
    rng = np.random.default_rng(int(p.seed))
    d0 = np.asarray(p.direction, dtype=np.float64)
    stack = [(np.asarray(p.origin, dtype=np.float64), d0 / np.linalg.norm(d0), p.root_length, p.root_radius, 0)]
    capsules, n_branches = [], 0
    while stack:
        start, d, length, r0, gen = stack.pop()
        caps, end, d_end, r_end = _branch(start, d, length, r0, p, rng)
        capsules += caps
        n_branches += 1
        if gen >= p.generations:
            continue
        e1, e2 = perpendicular_basis(d_end)
        phi = rng.uniform(0.0, 2 * np.pi)
        axis = np.cos(phi) * e1 + np.sin(phi) * e2  # children turn about this axis, opposite ways
        angle = np.radians(p.branch_angle_deg)
        for share, sign in ((p.asymmetry, 1.0), (1.0 - p.asymmetry, -1.0)):
            r_child = max(p.min_radius, r_end * share ** (1.0 / 3.0))
            d_child = _rotate(d_end, axis, sign * angle * rng.uniform(0.8, 1.2))
            stack.append((end, d_child / np.linalg.norm(d_child), length * p.length_decay * rng.uniform(0.85, 1.15),
                          r_child, gen + 1))
    return capsules, n_branches


class CapsuleTreePhantom(UnionPhantom):
    """Union of many capsules with a fast exact SDF (a KD-tree over capsule midpoints).

    Shared by :class:`VesselTreePhantom` and the synthetic trees of ``tree_synth``.

    Args:
        capsules: ``tubes.Capsule`` list (at least one).
        name: Label of this surface.
    """

    def __init__(self, capsules: list, name: str) -> None:
        super().__init__(capsules, name)
        self._a = np.stack([c.a for c in capsules])
        self._b = np.stack([c.b for c in capsules])
        self._r = np.array([c.r for c in capsules])
        self._mid = (self._a + self._b) / 2.0
        self._reach = float(np.max(np.linalg.norm(self._b - self._a, axis=1) / 2.0 + self._r))
        self._tree = cKDTree(self._mid)

    def _capsule_sdf(self, p: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """(N, K) SDF of capsules idx (N, K) at points p (N, 3)."""
        a, b = self._a[idx], self._b[idx]
        ab = b - a
        t = np.clip(np.einsum("nkj,nkj->nk", p[:, None] - a, ab) / np.maximum(np.einsum("nkj,nkj->nk", ab, ab), 1e-24),
                    0.0, 1.0)
        return np.linalg.norm(p[:, None] - (a + t[..., None] * ab), axis=-1) - self._r[idx]

    def sdf(self, points) -> np.ndarray:
        """Exact union SDF (as ``UnionPhantom.sdf``), evaluating only capsules that can be nearest.

        The k capsules with the nearest midpoints give an upper bound U; a capsule
        whose midpoint is farther than U + reach (reach = max half length + radius)
        cannot beat it, so the result equals the brute-force min. Points where the
        k-th midpoint is not that far are evaluated against all capsules.
        """
        pts = check_points(points)
        out = np.empty(len(pts))
        k = min(_NEAREST, len(self._r))
        for s in range(0, len(pts), _CHUNK):
            p = pts[s:s + _CHUNK]
            dist, idx = self._tree.query(p, k=k)
            dist, idx = dist.reshape(len(p), k), idx.reshape(len(p), k)
            best = self._capsule_sdf(p, idx).min(axis=1)
            unsure = (dist[:, -1] - self._reach < best) & (k < len(self._r))
            if np.any(unsure):
                best[unsure] = UnionPhantom.sdf(self, p[unsure])
            out[s:s + len(p)] = best
        return out


class VesselTreePhantom(CapsuleTreePhantom):
    """Thin branching vessel network (module docstring); ``phantom(points)`` is its SDF in mm.

    Args:
        params: VesselTreeParams (default: 31 branches, radii 3 → 1 mm).
    """

    def __init__(self, params: VesselTreeParams | None = None) -> None:
        self.params = params or VesselTreeParams()
        capsules, self.n_branches = build_tree(self.params)
        super().__init__(capsules, "vessel-tree")
