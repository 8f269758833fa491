"""Swept-sphere tubes with exact SDFs: straight capsules and circular-arc tubes.

A swept sphere of radius r along a curve γ is {x : dist(x, γ) ≤ r}; its SDF
``dist(x, γ) − r`` is exact everywhere (inside too), and growing it by t is the
same tube with radius r + t. Both tubes end in hemispherical caps.
"""

from __future__ import annotations

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.phantoms.primitives import Primitive, _normalise_rows, perpendicular_basis, sphere_grid, unit_vectors


def _grid(n: int, length: float) -> tuple[np.ndarray, float]:
    """Midpoints of n equal cells on [0, length) and the cell size."""
    step = length / n
    return (np.arange(n) + 0.5) * step, step


class Capsule(Primitive):
    """Segment a→b swept by a sphere of radius r (a cylinder with hemispherical caps).

    Args:
        a, b: (3,) end points of the axis, RAS mm (may coincide: a sphere).
        radius: r > 0, mm.
    """

    def __init__(self, a, b, radius: float) -> None:
        self.a = np.asarray(a, dtype=np.float64).reshape(3)
        self.b = np.asarray(b, dtype=np.float64).reshape(3)
        self.r = float(radius)
        if not self.r > 0:
            raise InputError(f"radius: expected a positive capsule radius in mm, got {radius!r}")
        axis = self.b - self.a
        self.length = float(np.linalg.norm(axis))
        self.axis = axis / self.length if self.length > 0 else np.array([0.0, 0.0, 1.0])
        self.e1, self.e2 = perpendicular_basis(self.axis)

    def _axis_point(self, p: np.ndarray) -> np.ndarray:
        h = np.clip((np.asarray(p, dtype=np.float64) - self.a) @ self.axis, 0.0, self.length)
        return self.a + h[:, None] * self.axis

    def sdf(self, p: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(p, dtype=np.float64) - self._axis_point(p), axis=1) - self.r

    def _normal_at_closest(self, p: np.ndarray) -> np.ndarray:
        return _normalise_rows(p - self._axis_point(p), self.e1)

    def closest(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        return self._axis_point(p) + self.r * self._normal_at_closest(p)

    def area(self) -> float:
        return 2 * np.pi * self.r * self.length + 4 * np.pi * self.r**2

    def _caps(self, d: np.ndarray) -> np.ndarray:
        """Cap points for sphere directions d: the half facing away from b goes to a."""
        back = (d @ self.axis) < 0
        return np.where(back[:, None], self.a, self.b) + self.r * d

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Uniform by area: choose side ∝ area, uniform (h, α) on the side, uniform sphere on the caps."""
        on_side = rng.random(n) * self.area() < 2 * np.pi * self.r * self.length
        h, alpha = rng.random(n) * self.length, rng.random(n) * 2 * np.pi
        radial = np.cos(alpha)[:, None] * self.e1 + np.sin(alpha)[:, None] * self.e2
        d = unit_vectors(n, rng)
        side_pts = self.a + h[:, None] * self.axis + self.r * radial
        pts = np.where(on_side[:, None], side_pts, self._caps(d))
        return pts, np.where(on_side[:, None], radial, d)

    def quadrature(self, h: float):
        pts, nrm, w = [], [], []
        if self.length > 0:
            hs, dh = _grid(max(2, int(np.ceil(self.length / h))), self.length)
            al, da = _grid(max(8, int(np.ceil(2 * np.pi * self.r / h))), 2 * np.pi)
            hh, aa = (g.ravel() for g in np.meshgrid(hs, al, indexing="ij"))
            radial = np.cos(aa)[:, None] * self.e1 + np.sin(aa)[:, None] * self.e2
            pts.append(self.a + hh[:, None] * self.axis + self.r * radial)
            nrm.append(radial)
            w.append(np.full(len(hh), self.r * dh * da))
        d, dw = sphere_grid(h / self.r)
        pts.append(self._caps(d))
        nrm.append(d)
        w.append(dw * self.r**2)
        return np.concatenate(pts), np.concatenate(nrm), np.concatenate(w)

    def offset(self, t: float) -> "Capsule":
        return Capsule(self.a, self.b, self.r + float(t))

    def bounds(self) -> np.ndarray:
        return np.stack([np.minimum(self.a, self.b) - self.r, np.maximum(self.a, self.b) + self.r])


class ArcTube(Primitive):
    """A sphere of radius r swept along a circular arc (a torus section with round caps).

    The arc starts at ``start`` heading along ``tangent`` and bends towards
    ``bend_direction`` with centreline radius R through ``angle`` radians.

    Args:
        start: (3,) RAS mm.
        tangent: (3,) initial direction (normalised here).
        bend_direction: (3,) direction the arc turns towards; its component
            along ``tangent`` is removed.
        bend_radius: R, mm; must exceed the tube radius.
        angle: Sweep φ in (0, π] radians (arc length R·φ).
        radius: Tube radius r, 0 < r < R, mm.
    """

    def __init__(self, start, tangent, bend_direction, bend_radius: float, angle: float, radius: float) -> None:
        self.r, self.R, self.phi = float(radius), float(bend_radius), float(angle)
        if not 0 < self.r < self.R:
            raise InputError(f"radius: expected 0 < tube radius < bend radius ({self.R}), got {radius!r}")
        if not 0 < self.phi <= np.pi:
            raise InputError(f"angle: expected an arc sweep in (0, π] radians, got {angle!r}")
        start = np.asarray(start, dtype=np.float64).reshape(3)
        v = np.asarray(tangent, dtype=np.float64).reshape(3)
        v = v / np.linalg.norm(v)
        nb = np.asarray(bend_direction, dtype=np.float64).reshape(3)
        nb = nb - (nb @ v) * v
        if np.linalg.norm(nb) < 1e-9:
            raise InputError("bend_direction: must not be parallel to the tangent")
        nb /= np.linalg.norm(nb)
        self.u, self.v = -nb, v
        self.w = np.cross(self.u, self.v)
        self.center = start + self.R * nb

    def point_at(self, theta) -> np.ndarray:
        """(M, 3) centreline points at angles θ (radians from the start)."""
        th = np.atleast_1d(np.asarray(theta, dtype=np.float64))
        return self.center + self.R * (np.cos(th)[:, None] * self.u + np.sin(th)[:, None] * self.v)

    def tangent_at(self, theta) -> np.ndarray:
        """(M, 3) unit centreline tangents at angles θ."""
        th = np.atleast_1d(np.asarray(theta, dtype=np.float64))
        return -np.sin(th)[:, None] * self.u + np.cos(th)[:, None] * self.v

    def _axis_point(self, p: np.ndarray) -> np.ndarray:
        """Nearest centreline point: the radial projection if its angle is on the arc, else an end."""
        q = np.asarray(p, dtype=np.float64) - self.center
        theta = np.mod(np.arctan2(q @ self.v, q @ self.u), 2 * np.pi)
        on_arc = theta <= self.phi
        ends = self.point_at([0.0, self.phi])
        d0 = np.linalg.norm(p - ends[0], axis=1)
        d1 = np.linalg.norm(p - ends[1], axis=1)
        end = np.where((d0 <= d1)[:, None], ends[0], ends[1])
        return np.where(on_arc[:, None], self.point_at(np.where(on_arc, theta, 0.0)), end)

    def sdf(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        return np.linalg.norm(p - self._axis_point(p), axis=1) - self.r

    def _normal_at_closest(self, p: np.ndarray) -> np.ndarray:
        return _normalise_rows(p - self._axis_point(p), self.w)

    def closest(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        return self._axis_point(p) + self.r * self._normal_at_closest(p)

    def area(self) -> float:
        """Torus section 2πr·Rφ (Pappus) plus two hemispheres 4πr²."""
        return 2 * np.pi * self.r * self.R * self.phi + 4 * np.pi * self.r**2

    def _torus(self, theta: np.ndarray, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        radial = np.cos(theta)[:, None] * self.u + np.sin(theta)[:, None] * self.v
        nrm = np.cos(psi)[:, None] * radial + np.sin(psi)[:, None] * self.w
        return self.point_at(theta) + self.r * nrm, nrm

    def _caps(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sphere directions → caps: d·v < 0 stays at the start, the rest is rotated by φ to the end."""
        back = (d @ self.v) < 0
        du, dv, dw = d @ self.u, d @ self.v, d @ self.w
        c, s = np.cos(self.phi), np.sin(self.phi)
        rotated = (du * c - dv * s)[:, None] * self.u + (du * s + dv * c)[:, None] * self.v + dw[:, None] * self.w
        nrm = np.where(back[:, None], d, rotated)
        centre = np.where(back[:, None], self.point_at(0.0), self.point_at(self.phi))
        return centre + self.r * nrm, nrm

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Uniform by area; on the torus ψ is drawn ∝ (R + r cos ψ) by rejection."""
        on_torus = rng.random(n) * self.area() < 2 * np.pi * self.r * self.R * self.phi
        psi = np.empty(0)
        while len(psi) < n:
            cand = rng.random(2 * n + 16) * 2 * np.pi
            keep = rng.random(len(cand)) * (self.R + self.r) < self.R + self.r * np.cos(cand)
            psi = np.concatenate([psi, cand[keep]])
        t_pts, t_nrm = self._torus(rng.random(n) * self.phi, psi[:n])
        c_pts, c_nrm = self._caps(unit_vectors(n, rng))
        return np.where(on_torus[:, None], t_pts, c_pts), np.where(on_torus[:, None], t_nrm, c_nrm)

    def quadrature(self, h: float):
        th, dth = _grid(max(4, int(np.ceil((self.R + self.r) * self.phi / h))), self.phi)
        ps, dps = _grid(max(8, int(np.ceil(2 * np.pi * self.r / h))), 2 * np.pi)
        tt, pp = (g.ravel() for g in np.meshgrid(th, ps, indexing="ij"))
        t_pts, t_nrm = self._torus(tt, pp)
        t_w = self.r * (self.R + self.r * np.cos(pp)) * dth * dps
        d, dw = sphere_grid(h / self.r)
        c_pts, c_nrm = self._caps(d)
        return np.concatenate([t_pts, c_pts]), np.concatenate([t_nrm, c_nrm]), np.concatenate([t_w, dw * self.r**2])

    def offset(self, t: float) -> "ArcTube":
        start = self.point_at(0.0)[0]
        return ArcTube(start, self.v, -self.u, self.R, self.phi, self.r + float(t))

    def bounds(self) -> np.ndarray:
        m = 2049
        pts = self.point_at(np.linspace(0.0, self.phi, m))
        sagitta = self.R * (1 - np.cos(self.phi / (m - 1) / 2))  # keeps the box conservative
        pad = self.r + sagitta
        return np.stack([pts.min(axis=0) - pad, pts.max(axis=0) + pad])
