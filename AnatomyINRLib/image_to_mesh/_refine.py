"""Refinement of a predicted chamber mesh onto the image's blood-pool edge (boundary search along normals).

f_θ sees the image through a coarse crop (33³ voxels over 160 mm: ~5 mm) and places a chamber's
surface to about a voxel of the input image (2 mm on the phantoms: median error of the wrong voxels).
The contrast-filled chambers have a visible edge to the myocardium and fat around them, so the mesh
is moved onto it, as model-based cardiac segmentation does after its shape model (Weese et al. 2001,
"Shape constrained deformable models"; Ecabert et al. 2008, IEEE TMI 27(9), §II-C: a boundary search
along each triangle's normal, then a smoothness-regularised update):

1. At every vertex v with unit outward normal n (averaged over ``normal_rings`` rings: the predicted
   mesh has creases where raw vertex normals diverge and a move along them flips thin triangles), the
   profile p(s) = I(v + s n), s ∈ [−R, R] in ``step_mm`` steps (trilinear on the image smoothed by a
   Gaussian of ``sigma_mm``), is searched for its falling crossings of its own midpoint
   T_v = (median p(s ≤ −R/2) + median p(s ≥ R/2)) / 2 (the labels' half-fraction boundary lies at
   the local midpoint whatever tissue is outside: myocardium, fat or lung; the threshold is the
   profile's own, only the least contrast ``min_contrast`` is in image units, HU on CT).
   The crossing nearest s = 0, linearly interpolated, is the vertex's target offset d_v. A profile
   with less than ``min_contrast`` between its two sides (a chamber opening into a vein or the aorta:
   blood on both sides; or darker inside than outside) gives no target.
2. The targets are averaged over each vertex's ring (``smooth`` rounds; vertices without a target
   take their neighbours'), v ← v + clip(``rate`` · d̄_v, ±``max_step_mm``) · n, then one Taubin step
   (λ 0.5, μ −0.53, shrink-free) keeps the triangles regular. Repeated ``iterations`` times; the
   topology never changes, and an update never adds self-intersecting face pairs: where it would,
   the vertices around the crossing faces keep their place (up to three tries), else the refinement
   stops at the last simple iterate.

Measured on 48 held-out phantoms with the shipped model (``benchmarks/results/image_to_mesh_train.md``):
mean Dice LA 0.895 → 0.942, LV 0.953 → 0.983.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from AnatomyINRLib.core.types import ImageGrid, TriangleMesh
from AnatomyINRLib.image_to_mesh._template import mesh_edges
from AnatomyINRLib.meshing.postprocess import vertex_normals
from AnatomyINRLib.meshing.self_intersection import count_self_intersections, self_intersecting_pairs


def ring_matrix(faces: np.ndarray, n_vertices: int):
    """(V, V) sparse 0/1 adjacency of the mesh's edges (scipy CSR)."""
    from scipy import sparse

    e = mesh_edges(faces)
    rows, cols = np.concatenate([e[:, 0], e[:, 1]]), np.concatenate([e[:, 1], e[:, 0]])
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_vertices, n_vertices))


class ImageSampler:
    """Trilinear samples of a Gaussian-smoothed image at RAS mm points (outside the image: nearest edge)."""

    def __init__(self, image: ImageGrid, sigma_mm: float):
        sigma = sigma_mm / np.asarray(image.spacing, float)
        self.grid = ImageGrid(ndimage.gaussian_filter(image.array.astype(np.float32), sigma), image.ijk_to_ras)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        ijk = self.grid.world_to_index(points.reshape(-1, 3)).T
        return ndimage.map_coordinates(self.grid.array, ijk, order=1, mode="nearest").reshape(points.shape[:-1])


def edge_offsets(profiles: np.ndarray, offsets: np.ndarray, min_contrast: float) -> tuple[np.ndarray, np.ndarray]:
    """(d (V,), found (V,) bool) of profiles (V, S) sampled at ``offsets`` (S,) mm (step 1 of the docstring).

    Each profile's threshold is its own midpoint T_v = (inside + outside) / 2, inside / outside the
    median of its samples at s ≤ −R/2 / s ≥ R/2: the labels' half-fraction boundary lies at the local
    midpoint whatever tissue is outside (myocardium, fat, lung). A profile with less than
    ``min_contrast`` between the two (blood on both sides) has no target.
    """
    r = offsets[-1]
    inside = np.median(profiles[:, offsets <= -0.5 * r], axis=1)
    outside = np.median(profiles[:, offsets >= 0.5 * r], axis=1)
    t = 0.5 * (inside + outside)[:, None]
    above = profiles >= t
    falling = above[:, :-1] & ~above[:, 1:]  # (V, S−1): between samples j and j + 1
    p0, p1 = profiles[:, :-1], profiles[:, 1:]
    frac = (p0 - t) / np.where(p0 - p1 == 0, 1.0, p0 - p1)
    where = offsets[:-1] + frac * (offsets[1] - offsets[0])
    dist = np.where(falling, np.abs(where), np.inf)
    j = dist.argmin(axis=1)
    rows = np.arange(len(j))
    found = np.isfinite(dist[rows, j]) & (inside - outside >= min_contrast)
    return np.where(found, where[rows, j], 0.0), found


def smooth_normals(ring, normals: np.ndarray, rounds: int) -> np.ndarray:
    """Unit normals averaged over each vertex and its ring ``rounds`` times: at a crease of the predicted
    mesh the vertex normals diverge, and moving neighbours along them by a fraction of an edge flips
    the thin triangles between them (measured: 7 crossing pairs after a 0.5 mm move; none after one round)."""
    for _ in range(rounds):
        normals = ring @ normals + normals
        normals = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return normals


def _smooth_targets(ring, d: np.ndarray, w: np.ndarray, rounds: int) -> np.ndarray:
    """Ring-averaged targets: Σ w d / Σ w over each vertex and its ring, ``rounds`` times."""
    for _ in range(rounds):
        num, den = ring @ (w * d) + w * d, ring @ w + w
        d = np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)
        w = (den > 0).astype(float)
    return d


def taubin(ring, v: np.ndarray, steps: int = 1) -> np.ndarray:
    """``steps`` Taubin pairs (λ 0.5, μ −0.53: smoothing without shrinkage) of (V, 3) vertices on ``ring``."""
    degree = np.asarray(ring.sum(axis=1)).ravel()[:, None]
    for _ in range(steps):
        for factor in (0.5, -0.53):
            v = v + factor * (ring @ v / degree - v)
    return v


def _simple_move(v: np.ndarray, faces: np.ndarray, ring, move: np.ndarray, allowed: int):
    """v + move then a Taubin step that adds no self-intersecting face pairs beyond ``allowed``, or None.

    Where a candidate's faces cross, the vertices of those faces and their rings keep their place
    (move 0) and the rest moves; tried up to three times (two sheets of the predicted mesh close to
    each other must not be pushed through one another, the rest of the surface still refines).
    """
    move = move.copy()
    for _ in range(3):
        candidate = taubin(ring, v + move)
        pairs = self_intersecting_pairs(TriangleMesh(candidate, faces))
        if len(pairs) <= allowed:
            return candidate
        frozen = np.zeros(len(v), bool)
        frozen[np.unique(faces[pairs.ravel()])] = True
        frozen |= (ring @ frozen.astype(float)) > 0
        move[frozen] = 0.0
    return None


def refine_to_edges(mesh: TriangleMesh, sampler: ImageSampler, cfg) -> tuple[TriangleMesh, dict]:
    """The refined mesh (same faces) and a report {"iterations", "edge_found_fraction", "mean_shift_mm"}.

    Args:
        mesh: Closed chamber mesh in RAS mm with outward (counter-clockwise) faces.
        sampler: :class:`ImageSampler` of the CT volume.
        cfg: ``config.RefineConfig``.
    """
    v0 = mesh.vertices.astype(float)
    v, faces = v0.copy(), mesh.faces
    ring = ring_matrix(faces, len(v))
    start_count = count_self_intersections(mesh)
    offsets = np.arange(-cfg.search_mm, cfg.search_mm + 1e-9, cfg.step_mm)
    found, done = np.zeros(len(v), bool), 0
    for _ in range(cfg.iterations):
        n = smooth_normals(ring, vertex_normals(TriangleMesh(v, faces)), cfg.normal_rings)
        profiles = sampler(v[:, None, :] + offsets[None, :, None] * n[:, None, :])
        d, found = edge_offsets(profiles, offsets, cfg.min_contrast)
        if not found.any():
            break  # no edge in reach (e.g. no contrast): the mesh stays as it is
        step = np.clip(cfg.rate * _smooth_targets(ring, d, found.astype(float), cfg.smooth), -cfg.max_step_mm, cfg.max_step_mm)
        candidate = _simple_move(v, faces, ring, step[:, None] * n, start_count)
        if candidate is None:
            break  # still crossing after freezing three times: keep the last simple iterate
        v, done = candidate, done + 1
    report = {"iterations": done, "edge_found_fraction": round(float(found.mean()), 3),
              "mean_shift_mm": round(float(np.linalg.norm(v - v0, axis=1).mean()), 3)}
    return TriangleMesh(v, faces), report
