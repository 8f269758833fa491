"""Phantom interface and the union-of-primitives phantom.

A phantom is a shape with a known SDF in world RAS mm (negative inside) that is
also a *field*: calling it on (N, 3) points returns (N,) distances.

Union by ``min`` (Alblas et al., eq. 4) of exact primitive SDFs is:

* **exact outside** the union (distance to a union = min of the distances);
* **exact on the surface** (zero set) and in sign everywhere;
* **only a bound inside**: ``|min_i sdf_i|`` never exceeds the true depth, so
  it is conservative (safe for sphere tracing) but not a distance.

Surface normals at surface samples are exact (normal of the primitive the
point lies on), except on the measure-zero crease curves where primitives
meet, where the surface has no unique normal.
"""

from __future__ import annotations

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.seeding import numpy_rng
from AnatomyINRLib.core.types import PointSet

_KEEP_TOL = 1e-9  # mm; |union sdf| below this counts as on the union surface
_VOLUME_H = 0.2  # mm; quadrature node spacing for numeric volumes (see UnionPhantom.volume)


def check_points(points) -> np.ndarray:
    """Validate and return an (N, 3) float64 array of RAS mm."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"points: expected an (N, 3) array of RAS mm, got shape {arr.shape}")
    return arr


class Phantom:
    """Base class: a named solid with an SDF, bounds, surface sampling and volume."""

    name: str = "phantom"

    def sdf(self, points) -> np.ndarray:  # pragma: no cover - abstract
        """(N,) signed distance in mm, negative inside, for (N, 3) RAS mm points."""
        raise NotImplementedError

    def normal(self, points) -> np.ndarray:  # pragma: no cover - abstract
        """(N, 3) outward unit normal of the surface point nearest to each point."""
        raise NotImplementedError

    def bounds(self) -> np.ndarray:  # pragma: no cover - abstract
        """(2, 3) min and max corners (RAS mm) of a box containing the solid."""
        raise NotImplementedError

    def sample_surface(self, n: int, seed=0) -> PointSet:  # pragma: no cover - abstract
        """n points on the zero set, uniform by area, with outward unit normals."""
        raise NotImplementedError

    def volume(self) -> float:  # pragma: no cover - abstract
        """Enclosed volume in mm³."""
        raise NotImplementedError

    def __call__(self, points) -> np.ndarray:
        return self.sdf(points)


def _check_n(n) -> int:
    if int(n) != n or n < 1:
        raise InputError(f"n: expected a positive number of surface samples, got {n!r}")
    return int(n)


class UnionPhantom(Phantom):
    """Union of exact-SDF primitives (see the module docstring for exactness).

    Args:
        primitives: Objects from ``primitives.py`` / ``tubes.py``.
        name: Label of this surface.
    """

    def __init__(self, primitives: list, name: str) -> None:
        if not primitives:
            raise InputError("primitives: expected at least one primitive")
        self.primitives = list(primitives)
        self.name = name
        self._cache: dict[float, tuple[float, float]] = {}

    def _all_sdf(self, points: np.ndarray) -> np.ndarray:
        return np.stack([prim.sdf(points) for prim in self.primitives], axis=1)

    def sdf(self, points) -> np.ndarray:
        """min_i sdf_i(points), (N,) mm: exact outside and on the surface, a bound inside."""
        return self._all_sdf(check_points(points)).min(axis=1)

    def normal(self, points) -> np.ndarray:
        """Normal of the active primitive (argmin); equals ∇sdf wherever that exists."""
        pts = check_points(points)
        active = np.argmin(self._all_sdf(pts), axis=1)
        out = np.zeros_like(pts)
        for i, prim in enumerate(self.primitives):
            sel = active == i
            if np.any(sel):
                out[sel] = prim.normal(pts[sel])
        return out

    def bounds(self) -> np.ndarray:
        boxes = np.stack([prim.bounds() for prim in self.primitives])
        return np.stack([boxes[:, 0].min(axis=0), boxes[:, 1].max(axis=0)])

    def _exposed(self, points: np.ndarray, owner: int, fast: bool = False) -> np.ndarray:
        """True where a point of primitive ``owner``'s surface is not inside another primitive.

        ``fast`` uses the primitives' exact inside tests (sdf < 0) instead of
        ``sdf > −1e-9``; the two differ only within 1e-9 mm of a crease.
        """
        keep = np.ones(len(points), dtype=bool)
        for j, prim in enumerate(self.primitives):
            if j == owner:
                continue
            box = prim.bounds()
            near = keep & np.all((points >= box[0]) & (points <= box[1]), axis=1)
            if np.any(near):
                sub = points[near]
                keep[near] = ~prim.contains_fast(sub) if fast else prim.sdf(sub) > -_KEEP_TOL
        return keep

    def sample_surface(self, n: int, seed=0) -> PointSet:
        """Uniform-by-area samples on the union surface (exactly on the zero set).

        Each primitive's surface is sampled uniformly, the primitive chosen with
        probability ∝ its area, and points strictly inside another primitive
        (union sdf < −1e-9 mm) are rejected; the survivors are i.i.d. uniform on
        the union surface. Normals are the owning primitive's exact normals.

        Args:
            n: Number of points.
            seed: int, None or numpy Generator.

        Returns:
            PointSet with n points (RAS mm) and outward unit normals.
        """
        n = _check_n(n)
        rng = numpy_rng(seed)
        areas = np.array([prim.area() for prim in self.primitives])
        pts_out, nrm_out, have = [], [], 0
        while have < n:
            batch = max(256, 2 * (n - have))
            counts = rng.multinomial(batch, areas / areas.sum())
            pts_b, nrm_b = [], []
            for i, (prim, k) in enumerate(zip(self.primitives, counts)):
                if k == 0:
                    continue
                p, q = prim.sample(int(k), rng)
                keep = self._exposed(p, i)
                pts_b.append(p[keep])
                nrm_b.append(q[keep])
            order = rng.permutation(sum(len(p) for p in pts_b))
            pts_out.append(np.concatenate(pts_b)[order])
            nrm_out.append(np.concatenate(nrm_b)[order])
            have += len(order)
        return PointSet(np.concatenate(pts_out)[:n], np.concatenate(nrm_out)[:n])

    def _surface_integrals(self, h: float) -> tuple[float, float]:
        """(area, volume) by midpoint quadrature over the exposed primitive surfaces."""
        x0 = self.bounds().mean(axis=0)  # reduces cancellation in (x − x0)·n
        total_area = total_flux = 0.0
        for i, prim in enumerate(self.primitives):
            pts, nrm, w = prim.quadrature(h)
            keep = self._exposed(pts, i, fast=True)
            total_area += float(w[keep].sum())
            total_flux += float(np.einsum("ij,ij->i", pts[keep] - x0, nrm[keep]) @ w[keep])
        return total_area, total_flux / 3.0

    def volume(self, spacing: float = _VOLUME_H) -> float:
        """Enclosed volume (mm³) by the divergence theorem V = ⅓∮(x − x₀)·n dA.

        The integral runs over each primitive's exposed surface with a midpoint
        rule of node spacing ``spacing`` mm. The integrand is smooth except
        where the exposure indicator jumps along crease curves, so the error
        is dominated by the cells cut by those curves and behaves like noise
        rather than decaying monotonically. For the default AAA phantom,
        relative differences to a 0.06 mm rule are: volume 2e-4 at 0.3–0.4 mm,
        1.3e-5 at 0.2 mm (default), 6e-6 at 0.15 mm; area about 1e-4. A
        4M-point Sobol estimate of the volume agrees to 5e-5. Cached per spacing.

        Args:
            spacing: Quadrature node spacing in mm (default 0.2; well under 1 s).
        """
        return self._integrals(spacing)[1]

    def area(self, spacing: float = _VOLUME_H) -> float:
        """Surface area (mm²) of the union by the same quadrature (about 1e-4 relative at 0.2 mm)."""
        return self._integrals(spacing)[0]

    def _integrals(self, spacing: float) -> tuple[float, float]:
        if not (np.isfinite(spacing) and spacing > 0):
            raise InputError(f"spacing: expected a positive quadrature spacing in mm, got {spacing!r}")
        key = float(spacing)
        if key not in self._cache:
            self._cache[key] = self._surface_integrals(key)
        return self._cache[key]

    def offset(self, t: float, name: str) -> "UnionPhantom":
        """The union grown by t mm; its SDF is exactly ``self.sdf − t``."""
        return UnionPhantom([prim.offset(t) for prim in self.primitives], name)
