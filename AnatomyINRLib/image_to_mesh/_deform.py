"""Random smooth deformations of the template for pre-training g_φ (paper Appendix B.1).

A shape is the template sphere scaled to a random radius, then (each with its probability)
an affine map (rotation, per-axis scale, shear, translation), an elastic displacement field
(either a sum of random sinusoids or a cubic B-spline over a coarse control lattice) and
per-vertex noise, finally shrunk about its centre if it leaves the box |x| ≤ max_extent.

Both elastic fields are scaled so their Lipschitz bound stays below 1: x ↦ x + u(x) is then
injective, so a closed template never folds into a self-intersecting mesh (which would make
its "exact" SDF ill-defined).
"""

from __future__ import annotations

import numpy as np

from AnatomyINRLib.core.seeding import numpy_rng
from AnatomyINRLib.image_to_mesh.config import DeformationConfig

_LIPSCHITZ = 0.8  # bound on |∇u| of the elastic fields (< 1 keeps the map injective)


def _rotation(angles: np.ndarray) -> np.ndarray:
    """Rotation matrix Rz·Ry·Rx of three angles (rad)."""
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_affine(v: np.ndarray, cfg: DeformationConfig, rng: np.random.Generator) -> np.ndarray:
    """Rotate (±rotation_rad per axis), scale (1 ± scale per axis), shear (± shear), translate (± translation)."""
    rot = _rotation(rng.uniform(-cfg.rotation_rad, cfg.rotation_rad, 3))
    scale = np.diag(1.0 + rng.uniform(-cfg.scale, cfg.scale, 3))
    shear = np.eye(3)
    shear[np.triu_indices(3, 1)] = rng.uniform(-cfg.shear, cfg.shear, 3)
    mat = rot @ shear @ scale
    return v @ mat.T + rng.uniform(-cfg.translation, cfg.translation, 3)


def sinusoid_displacement(v: np.ndarray, cfg: DeformationConfig, rng: np.random.Generator) -> np.ndarray:
    """u(x) = Σ_j a_j sin(ω_j·x + φ_j): random wave vectors |ω| ∈ [1, 4], random directions a_j.

    Amplitudes are scaled so that max |u| ≤ max_displacement and Σ|a_j||ω_j| ≤ 0.8 (Lipschitz bound).
    """
    k = cfg.sinusoid_components
    omega = rng.normal(size=(k, 3))
    omega *= (rng.uniform(1.0, 4.0, k) / np.linalg.norm(omega, axis=1))[:, None]
    amp = rng.normal(size=(k, 3))
    phase = rng.uniform(0.0, 2 * np.pi, k)
    u = np.sin(v @ omega.T + phase) @ amp
    lip = float(np.sum(np.linalg.norm(amp, axis=1) * np.linalg.norm(omega, axis=1)))
    peak = float(np.abs(u).max()) or 1.0
    factor = rng.uniform(0.3, 1.0) * min(cfg.max_displacement / peak, _LIPSCHITZ / lip)
    return u * factor


def _bernstein(t: np.ndarray, n: int) -> np.ndarray:
    """(N, n) cubic B-spline basis of a clamped uniform knot vector with n control points on t ∈ [0, 1].

    For n = 4 these are the cubic Bernstein polynomials (a Bézier segment); other n use de Boor's
    recursion on the clamped knots.
    """
    degree = min(3, n - 1)
    knots = np.concatenate([np.zeros(degree), np.linspace(0.0, 1.0, n - degree + 1), np.ones(degree)])
    t = np.clip(t, 0.0, 1.0 - 1e-12)
    basis = np.stack([(knots[i] <= t) & (t < knots[i + 1]) for i in range(len(knots) - 1)], axis=1).astype(float)
    for p in range(1, degree + 1):
        nxt = np.zeros((len(t), len(knots) - 1 - p))
        for i in range(len(knots) - 1 - p):
            left = knots[i + p] - knots[i]
            right = knots[i + p + 1] - knots[i + 1]
            if left > 0:
                nxt[:, i] += (t - knots[i]) / left * basis[:, i]
            if right > 0:
                nxt[:, i] += (knots[i + p + 1] - t) / right * basis[:, i + 1]
        basis = nxt
    return basis


def bspline_displacement(v: np.ndarray, cfg: DeformationConfig, rng: np.random.Generator) -> np.ndarray:
    """u(x) = Σ_ijk c_ijk B_i(x) B_j(y) B_k(z) over an n³ control lattice spanning [-1, 1]³.

    Control displacements are uniform in ±1 then scaled so that max |c| ≤ max_displacement and the
    derivative bound degree·(n − degree)·2·max|c| / 2 stays ≤ 0.8.
    """
    n = cfg.bspline_control_points
    ctrl = rng.uniform(-1.0, 1.0, (n, n, n, 3))
    t = (v + 1.0) / 2.0
    bx, by, bz = (_bernstein(t[:, a], n) for a in range(3))
    u = np.einsum("vi,vj,vk,ijkc->vc", bx, by, bz, ctrl)
    degree = min(3, n - 1)
    lip = degree * (n - degree) * 2.0 / 2.0 * np.sqrt(3.0)  # per unit max|c|, over the 3 axes
    factor = rng.uniform(0.3, 1.0) * min(cfg.max_displacement, _LIPSCHITZ / lip)
    return u * factor


def random_shape(template: np.ndarray, cfg: DeformationConfig, seed) -> np.ndarray:
    """One random deformation of the unit-radius-free template (V, 3) → (V, 3), seeded.

    The template is rescaled to a radius drawn from radius_range (its own radius is its mean
    vertex norm), then deformed as described in the module docstring.
    """
    rng = numpy_rng(seed)
    v = template / np.linalg.norm(template, axis=1).mean() * rng.uniform(*cfg.radius_range)
    if rng.random() < cfg.affine_probability:
        v = random_affine(v, cfg, rng)
    if rng.random() < cfg.elastic_probability:
        field = sinusoid_displacement if rng.random() < 0.5 else bspline_displacement
        v = v + field(v, cfg, rng)
    if rng.random() < cfg.noise_probability:
        v = v + rng.normal(0.0, cfg.noise_sigma, v.shape)
    reach = float(np.abs(v).max())
    if reach > cfg.max_extent:  # scale it back inside the box |x| <= max_extent (a similarity: no fold)
        v = v * (cfg.max_extent / reach)
    return v
