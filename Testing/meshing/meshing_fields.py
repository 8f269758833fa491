"""Analytic fields with known surfaces for the meshing tests (RAS mm)."""

from __future__ import annotations

import numpy as np
from scipy.special import ellipeinc, ellipkinc
from scipy.spatial.transform import Rotation


class Counted:
    """Wraps a field and counts the points it is evaluated at."""

    def __init__(self, field):
        self.field = field
        self.n = 0

    def __call__(self, points):
        self.n += len(points)
        return self.field(points)


def sphere(center, radius):
    """Exact SDF of a sphere."""
    center = np.asarray(center, dtype=np.float64)
    return lambda p: np.linalg.norm(p - center, axis=1) - radius


def torus(center, major, minor):
    """Exact SDF of a torus around the S axis (genus 1)."""
    center = np.asarray(center, dtype=np.float64)

    def f(p):
        q = p - center
        ring = np.sqrt(q[:, 0] ** 2 + q[:, 1] ** 2) - major
        return np.sqrt(ring**2 + q[:, 2] ** 2) - minor

    return f


def rotation(angles_deg=(30.0, 20.0, 50.0)):
    return Rotation.from_euler("xyz", angles_deg, degrees=True).as_matrix()


def ellipsoid(center, axes, rot):
    """1-Lipschitz implicit of an oblique ellipsoid: min(axes)·(‖D⁻¹Rᵀ(x−c)‖ − 1).

    Not a distance, but |∇f| ≤ 1 (the narrow band guarantee needs only that)
    and its zero set is exactly the ellipsoid.
    """
    center = np.asarray(center, dtype=np.float64)
    axes = np.asarray(axes, dtype=np.float64)
    return lambda p: axes.min() * (np.linalg.norm(((p - center) @ rot) / axes, axis=1) - 1.0)


def ellipsoid_area(a, b, c):
    """Exact surface area (Legendre's elliptic-integral form), a ≥ b ≥ c."""
    a, b, c = sorted((a, b, c), reverse=True)
    phi = np.arccos(c / a)
    m = a**2 * (b**2 - c**2) / (b**2 * (a**2 - c**2))
    s = np.sin(phi)
    return 2 * np.pi * c**2 + 2 * np.pi * a * b / s * (ellipeinc(phi, m) * s**2 + ellipkinc(phi, m) * np.cos(phi) ** 2)


def union(*fields):
    """min of fields: 1-Lipschitz if each is."""
    return lambda p: np.min(np.stack([f(p) for f in fields]), axis=0)


def box_faces():
    """Unit cube [0,1]³: 8 vertices, 12 outward CCW triangles."""
    v = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float64)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = []
    for a, b, c, d in quads:
        faces += [(a, b, c), (a, c, d)]
    return v, np.array(faces, dtype=np.int64)
