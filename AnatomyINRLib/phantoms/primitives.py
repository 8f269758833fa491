"""Primitive solids with exact signed distance functions (RAS mm, negative inside).

Each primitive provides:

* ``sdf(p) -> (N,)`` exact signed distance, and ``closest(p) -> (N, 3)``
  nearest surface point, so the outward normal at the nearest point is
  available everywhere as ``normal(p)``;
* ``area()`` exact surface area (mm²);
* ``sample(n, rng) -> (points, normals)`` exactly uniform-by-area samples on
  the surface with outward unit normals;
* ``quadrature(h) -> (points, normals, weights)`` a deterministic midpoint
  rule over the surface with node spacing about ``h`` mm (weights in mm²);
* ``offset(t)`` the solid grown by t mm (its SDF is ``sdf − t``);
* ``bounds()`` a (2, 3) box containing the solid.

Swept spheres (:class:`Capsule`, :class:`ArcTube` in ``tubes.py``) and the
ellipsoid (this module) cover what the AAA phantoms need.
"""

from __future__ import annotations

import numpy as np

from AnatomyINRLib.phantoms import ellipsoid_math as em


def unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) directions uniform on the unit sphere (normalised Gaussians)."""
    v = rng.normal(size=(int(n), 3))
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    bad = norm[:, 0] < 1e-12  # measure-zero but keeps the division safe
    v[bad] = [0.0, 0.0, 1.0]
    norm[bad] = 1.0
    return v / norm


def sphere_grid(h_angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Equal-area midpoint grid on the unit sphere.

    Nodes are midpoints in (z, φ) with z = cos θ uniform, so every cell has
    the same solid angle dz·dφ (Archimedes).

    Args:
        h_angle: Target angular spacing in radians.

    Returns:
        directions (M, 3) and solid-angle weights (M,) summing to 4π.
    """
    nz = max(4, int(np.ceil(2.0 / h_angle)))
    nphi = max(8, int(np.ceil(2 * np.pi / h_angle)))
    z = -1.0 + (np.arange(nz) + 0.5) * (2.0 / nz)
    phi = (np.arange(nphi) + 0.5) * (2 * np.pi / nphi)
    zz, pp = np.meshgrid(z, phi, indexing="ij")
    s = np.sqrt(1.0 - zz**2)
    dirs = np.stack([s * np.cos(pp), s * np.sin(pp), zz], axis=-1).reshape(-1, 3)
    weights = np.full(len(dirs), (2.0 / nz) * (2 * np.pi / nphi))
    return dirs, weights


def cube_sphere_directions(m: int) -> tuple[np.ndarray, float]:
    """Unit directions from an m×m midpoint grid on each face of the cube [−1, 1]³.

    Every point of the cube surface lies within a cell half-diagonal √2/m of
    a node, and radial projection onto the unit sphere is 1-Lipschitz outside
    the unit ball, so every unit vector is within chord distance √2/m of a
    direction returned here (a proven covering radius, unlike a (z, φ) grid,
    whose cells stretch near the poles).

    Returns:
        directions (6m², 3) and the covering radius √2/m.
    """
    g = -1.0 + (np.arange(m) + 0.5) * (2.0 / m)
    a, b = (x.ravel() for x in np.meshgrid(g, g, indexing="ij"))
    one = np.ones_like(a)
    faces = []
    for sign in (1.0, -1.0):
        faces += [np.stack([sign * one, a, b], 1), np.stack([a, sign * one, b], 1), np.stack([a, b, sign * one], 1)]
    d = np.concatenate(faces)
    return d / np.linalg.norm(d, axis=1, keepdims=True), float(np.sqrt(2.0) / m)


def perpendicular_basis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors completing ``axis`` (unit) to a right-handed frame."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(axis, e1)


def _normalise_rows(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    out = np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)
    out[norm[:, 0] == 0] = fallback
    return out


class Primitive:
    """Common behaviour: normals from closest points and the sign of ``sdf``."""

    def sdf(self, p: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def closest(self, p: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def normal(self, p: np.ndarray) -> np.ndarray:
        """(N, 3) outward unit normal of the surface at the point nearest to each p.

        Equals ∇sdf wherever the gradient exists (off the medial axis).
        """
        return self._normal_at_closest(np.asarray(p, dtype=np.float64))

    def _normal_at_closest(self, p: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def contains_fast(self, p: np.ndarray) -> np.ndarray:
        """(N,) bool, exactly ``sdf(p) < 0``; subclasses may skip work."""
        return self.sdf(p) < 0.0


class Ellipsoid(Primitive):
    """Oblique ellipsoid, optionally offset outward by ``grow`` mm.

    Args:
        center: (3,) RAS mm.
        semi_axes: (3,) mm, along the columns of ``rotation``.
        rotation: (3, 3) orthonormal, columns are the local axes in RAS.
        grow: Outward offset t ≥ 0 (mm). The grown solid is the set within t
            of the ellipsoid; its SDF ``sdf_ellipsoid − t`` is exact outside
            the grown solid and a lower bound on depth inside.
    """

    def __init__(self, center, semi_axes, rotation=None, grow: float = 0.0) -> None:
        self.center = np.asarray(center, dtype=np.float64).reshape(3)
        self.e = np.asarray(semi_axes, dtype=np.float64).reshape(3)
        self.rotation = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
        self.grow = float(grow)

    def _local(self, p: np.ndarray) -> np.ndarray:
        # einsum, not @: OpenBLAS gemm on (N, 3)×(3, 3) is ~15× slower here.
        return np.einsum("ij,jk->ik", np.asarray(p, dtype=np.float64) - self.center, self.rotation)

    def _world(self, y: np.ndarray) -> np.ndarray:
        return np.einsum("ij,kj->ik", y, self.rotation) + self.center

    def sdf(self, p: np.ndarray) -> np.ndarray:
        return em.signed_distance(self._local(p), self.e)[0] - self.grow

    def closest(self, p: np.ndarray) -> np.ndarray:
        y = self._local(p)
        x = em.closest_point(y, self.e)
        return self._world(x + self.grow * em.surface_normal(x, self.e))

    def _normal_at_closest(self, p: np.ndarray) -> np.ndarray:
        x = em.closest_point(self._local(p), self.e)
        return np.einsum("ij,kj->ik", em.surface_normal(x, self.e), self.rotation)

    def contains_fast(self, p: np.ndarray) -> np.ndarray:
        """Exact inside test ``sdf < 0`` that solves for the distance only in a thin shell.

        The grown solid E ⊕ B_t contains the ellipsoid with semi-axes e + t
        (support functions: |(e + t)·n| ≤ |e·n| + t) and lies inside E scaled
        by 1 + t/e_min (E contains the ball of radius e_min), so only points
        between those two ellipsoids need the root solve.
        """
        y = self._local(p)
        if self.grow == 0.0:
            return np.sum((y / self.e) ** 2, axis=1) < 1.0
        inner = np.sum((y / (self.e + self.grow)) ** 2, axis=1) < 1.0
        outer = np.sum((y / (self.e * (1.0 + self.grow / self.e.min()))) ** 2, axis=1) < 1.0
        out = inner.copy()
        shell = outer & ~inner
        if np.any(shell):
            out[shell] = em.signed_distance(y[shell], self.e)[0] < self.grow
        return out

    def _area_factor(self, u: np.ndarray) -> np.ndarray:
        """Area element per unit solid angle of the (grown) surface at unit-sphere points u.

        Base: |(e1e2 u0, e0e2 u1, e0e1 u2)| = P·|u/e|; growth multiplies by the
        Steiner factor 1 + 2Ht + Kt².
        """
        base = float(np.prod(self.e)) * np.linalg.norm(u / self.e, axis=1)
        if self.grow == 0.0:
            return base
        hm, k = em.curvatures(u * self.e, self.e)
        return base * (1.0 + 2.0 * hm * self.grow + k * self.grow**2)

    def _max_area_factor(self) -> float:
        kappa = self.e.max() / self.e.min() ** 2  # largest principal curvature
        return float(np.prod(self.e) / self.e.min() * (1.0 + kappa * self.grow) ** 2)

    def _surface_from_sphere(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = u * self.e
        n_local = em.surface_normal(x, self.e)
        return self._world(x + self.grow * n_local), np.einsum("ij,kj->ik", n_local, self.rotation)

    def area(self) -> float:
        if self.grow == 0.0:
            return em.area(self.e)
        # Steiner: A(t) = A + 2t∫H dA + 4πt²; ∫H dA by a fine sphere quadrature.
        u, w = sphere_grid(0.01)  # smooth integrand: midpoint error ~1e-5 relative
        base = float(np.prod(self.e)) * np.linalg.norm(u / self.e, axis=1)
        hm, _ = em.curvatures(u * self.e, self.e)
        return em.area(self.e) + 2 * self.grow * float(np.sum(hm * base * w)) + 4 * np.pi * self.grow**2

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Uniform by area: map sphere directions and accept ∝ area factor (rejection)."""
        bound = self._max_area_factor()
        kept: list[np.ndarray] = []
        count = 0
        while count < n:
            u = unit_vectors(max(64, 2 * (n - count)), rng)
            accept = rng.random(len(u)) * bound < self._area_factor(u)
            kept.append(u[accept])
            count += int(accept.sum())
        u = np.concatenate(kept)[:n]
        return self._surface_from_sphere(u)

    def quadrature(self, h: float):
        u, w = sphere_grid(h / self.e.max())
        pts, nrm = self._surface_from_sphere(u)
        return pts, nrm, w * self._area_factor(u)

    def offset(self, t: float) -> "Ellipsoid":
        return Ellipsoid(self.center, self.e, self.rotation, self.grow + float(t))

    def bounds(self) -> np.ndarray:
        # Half-extent of an oblique ellipsoid along world axis k: sqrt(Σ_j (R_kj e_j)²).
        half = np.sqrt(((self.rotation * self.e[None, :]) ** 2).sum(axis=1)) + self.grow
        return np.stack([self.center - half, self.center + half])
