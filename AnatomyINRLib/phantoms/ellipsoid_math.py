"""Exact geometry of an axis-aligned ellipsoid centred at the origin.

Everything here is in the ellipsoid's local frame (mm); callers rotate and
translate. Semi-axes ``e = (e0, e1, e2)`` need not be sorted.

Closest point (Eberly, "Distance from a Point to an Ellipse, an Ellipsoid, or
a Hyperellipsoid", 2013): for a query y in the first octant the closest
surface point is ``x_i = e_i² y_i / (t + e_i²)`` where t is the unique root on
``(−e_min², ∞)`` of

    F(t) = Σ_i (e_i y_i / (t + e_i²))² − 1,

or, when every y_i on the smallest axis is 0 and F(−e_min²) < 0, the
"degenerate" solution t = −e_min² with the smallest-axis coordinate taken from
the ellipsoid equation. F is convex and decreasing on the interval, so Newton's
method started left of the root (where F ≥ 0) increases monotonically to it
without overshoot; we iterate until the step is below 1e-13 of the scale,
giving distances accurate to about 1e-12 mm for shapes of tens of mm.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ellipeinc, ellipkinc

_MAX_NEWTON = 200


def closest_point(y: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Closest point on the ellipsoid Σ(x_i/e_i)² = 1 to each query.

    Args:
        y: (N, 3) query points, local frame, mm.
        e: (3,) positive semi-axes, mm.

    Returns:
        (N, 3) closest surface points, local frame, mm.
    """
    e = np.asarray(e, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    sign = np.where(y < 0, -1.0, 1.0)
    ya = np.abs(y)
    e2 = e**2
    m2 = e2.min()
    pole = e2 == m2  # axes whose denominator vanishes at t = −e_min²
    tiny = 1e-12 * float(e.max())
    flat = np.all(ya[:, pole] <= tiny, axis=1)  # query (numerically) in the pole plane
    # F(−e_min²) restricted to the non-pole axes; decides the degenerate case.
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.sum(np.where(pole, 0.0, (e * ya / (e2 - m2)) ** 2), axis=1) - 1.0
    degenerate = flat & (g < 0)
    # Regular queries in the pole plane start at t = −e_min² where a pole term
    # would be 0/0; their pole coordinates (≤ 1e-12·e_max) are set to zero.
    ya[np.ix_(flat & ~degenerate, pole)] = 0.0
    x = np.empty_like(ya)
    if np.any(degenerate):
        x[degenerate] = _degenerate(ya[degenerate], e, pole, g[degenerate])
    regular = ~degenerate
    if np.any(regular):
        t = _newton_root(ya[regular], e)
        x[regular] = e2 * ya[regular] / (t[:, None] + e2)
    return sign * x


def _degenerate(ya: np.ndarray, e: np.ndarray, pole: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Closest points for queries in the smallest-axis plane inside the focal region."""
    e2 = e**2
    m2 = e2.min()
    x = np.zeros_like(ya)
    free = ~pole
    x[:, free] = e2[free] * ya[:, free] / (e2[free] - m2)
    first_pole = int(np.flatnonzero(pole)[0])
    x[:, first_pole] = np.sqrt(m2) * np.sqrt(np.maximum(-g, 0.0))
    return x


def _newton_root(ya: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Root of F(t) on (−e_min², ∞) by monotone Newton from a left start (F ≥ 0)."""
    e2 = e**2
    ey = e * ya
    # Each single term equals 1 at t = −e_i² + e_i y_i, so F ≥ 0 there; the
    # largest such t (clipped to the domain) is the tightest safe start.
    t = np.max(-e2 + ey, axis=1)
    t = np.maximum(t, -e2.min())
    scale = float(e2.max())
    active = np.arange(len(t))
    for _ in range(_MAX_NEWTON):
        if active.size == 0:
            break
        ta = t[active]
        num = ey[active]
        den = ta[:, None] + e2
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(num == 0, 0.0, num / den)
            f = np.sum(r**2, axis=1) - 1.0
            df = -2.0 * np.sum(np.where(num == 0, 0.0, r**2 / den), axis=1)
            step = np.where(df < 0, -f / df, 0.0)
        step = np.where(np.isfinite(step), step, 0.0)
        t[active] = ta + step
        active = active[np.abs(step) > 1e-13 * (scale + np.abs(ta))]
    return t


def signed_distance(y: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact signed distance to the ellipsoid (negative inside) and closest points.

    Args:
        y: (N, 3) local-frame points, mm.
        e: (3,) semi-axes, mm.

    Returns:
        sdf (N,) mm and closest (N, 3) local-frame points.
    """
    x = closest_point(y, e)
    dist = np.linalg.norm(y - x, axis=1)
    inside = np.sum((y / e) ** 2, axis=1) < 1.0
    return np.where(inside, -dist, dist), x


def surface_normal(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Outward unit normal ∝ (x_i / e_i²) at surface points x (N, 3)."""
    n = x / np.asarray(e, dtype=np.float64) ** 2
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def curvatures(x: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean curvature H and Gaussian curvature K at surface points.

    With h = |x / e²| and P = e0·e1·e2: K = 1 / (P² h⁴) and
    H = (e0² + e1² + e2² − |x|²) / (2 P² h³) (convex, so H, K > 0 with the
    outward normal).

    Args:
        x: (N, 3) points on the ellipsoid, local frame, mm.
        e: (3,) semi-axes, mm.

    Returns:
        H (N,) 1/mm and K (N,) 1/mm².
    """
    e = np.asarray(e, dtype=np.float64)
    h = np.linalg.norm(x / e**2, axis=1)
    p2 = float(np.prod(e)) ** 2
    k = 1.0 / (p2 * h**4)
    hm = (np.sum(e**2) - np.sum(x**2, axis=1)) / (2.0 * p2 * h**3)
    return hm, k


def area(e) -> float:
    """Exact surface area (mm²) via Legendre's incomplete elliptic integrals.

    For a ≥ b ≥ c: A = 2πc² + 2πab/sin φ · (E(φ, m) sin²φ + F(φ, m) cos²φ),
    cos φ = c/a, m = a²(b² − c²) / (b²(a² − c²)). Accurate to rounding
    (~1e-15 relative); spheres are handled separately.
    """
    a, b, c = sorted((float(v) for v in e), reverse=True)
    if a == c:
        return 4.0 * np.pi * a * a
    phi = np.arccos(c / a)
    m = a * a * (b * b - c * c) / (b * b * (a * a - c * c))
    s, co = np.sin(phi), np.cos(phi)
    return float(2 * np.pi * c * c + 2 * np.pi * a * b / s * (ellipeinc(phi, m) * s * s + ellipkinc(phi, m) * co * co))


def area_thomsen(e) -> float:
    """Knud Thomsen's approximation (p = 1.6075), relative error ≤ 1.061 %; for reference."""
    a, b, c = (float(v) for v in e)
    p = 1.6075
    return float(4 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3.0) ** (1.0 / p))


def volume(e) -> float:
    """Exact volume 4/3·π·abc in mm³."""
    return float(4.0 / 3.0 * np.pi * np.prod(np.asarray(e, dtype=np.float64)))
