"""Labelled training points of one tree mesh (TrIND's sampling, see ``TreeSamplingConfig``)."""

from __future__ import annotations

import numpy as np

from AnatomyINRLib.core.device import restore_ieee_denormals
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.meshing.mesh_sdf import MeshSDF, check_closed
from AnatomyINRLib.meshing.postprocess import clean_mesh, orient_outward
from AnatomyINRLib.metrics.surface import sample_surface
from AnatomyINRLib.nn.field import Normalization
from AnatomyINRLib.trees.config import TreeSamplingConfig

# Beyond this normalised distance the inside test takes the cheap truncated path
# (> 3 σ_max of the paper's jitter, so near-surface labels are exact).
_TRUNCATE = 0.12


def closed_mesh(mesh: TriangleMesh, name: str = "mesh") -> TriangleMesh:
    """``mesh`` cleaned (``clean_mesh``) and checked closed: what occupancy fitting needs.

    Raises:
        InputError: not a TriangleMesh, or the mesh is open or non-manifold, or has no faces (the
            message names ``name``).
    """
    if not isinstance(mesh, TriangleMesh):
        raise InputError(f"{name}: expected a TriangleMesh, got {type(mesh).__name__}")
    cleaned = clean_mesh(TriangleMesh(mesh.vertices, mesh.faces))
    check_closed(cleaned, name, remedy="occupancy needs an inside, so an open or non-manifold mesh "
                 "cannot be fitted (close it first, e.g. cap its openings)")
    return cleaned


class TreeSampler:
    """Inside/outside-labelled points of one closed mesh in the network's normalised frame.

    Args:
        mesh: :func:`closed_mesh`'s output (cleaned, closed), RAS mm.
        cfg: Sampling settings.
        name: Used in error messages (the file name).
        normalization: The frame of the network (e.g. one shared by a set of trees); default: the
            mesh's own bounding box mapped into [−extent, extent]³.

    Raises:
        InputError: the mesh is not closed (it was not :func:`closed_mesh`'s output).
    """

    def __init__(self, mesh: TriangleMesh, cfg: TreeSamplingConfig, name: str = "mesh",
                 normalization: Normalization | None = None) -> None:
        restore_ieee_denormals()  # MeshSDF builds a cKDTree, which can crash with flush-to-zero on (core.device)
        self.cfg = cfg
        self.normalization = (normalization if normalization is not None
                              else Normalization.fit(mesh.vertices, extent=cfg.extent))
        self.mesh = TriangleMesh(self.normalization.to_normalized(mesh.vertices), mesh.faces)
        self.bounds_mm = np.stack([mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)])
        # already cleaned and checked closed (closed_mesh): only orient it, do not clean it a second time
        self._sdf = MeshSDF(orient_outward(self.mesh), name=name, truncate_mm=_TRUNCATE, prepared=True)

    def inside(self, points: np.ndarray) -> np.ndarray:
        """(N,) float32 occupancy (1 inside) of normalised points."""
        restore_ieee_denormals()  # scipy's cKDTree inside MeshSDF can crash with flush-to-zero on (core.device)
        return (self._sdf(points) < 0).astype(np.float32)

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One balanced draw: (N, 3) float32 points, (N,) float32 occupancy."""
        n = self.cfg.points_per_draw
        surf, _ = sample_surface(self.mesh, 4 * n, rng)
        sigma = np.asarray(self.cfg.sigmas, dtype=np.float64)[rng.integers(0, len(self.cfg.sigmas), 4 * n)]
        near = surf + rng.normal(size=surf.shape) * sigma[:, None]
        uniform = rng.uniform(-1.0, 1.0, (max(1, int(round(4 * n / self.cfg.near_to_uniform))), 3))
        pts = np.concatenate([near, uniform])
        occ = self.inside(pts)
        inside, outside = np.flatnonzero(occ > 0.5), np.flatnonzero(occ <= 0.5)
        k_in = min(len(inside), n // 2)
        keep = np.concatenate([rng.choice(inside, k_in, replace=False),
                               rng.choice(outside, min(len(outside), n - k_in), replace=False)])
        keep = rng.permutation(keep)
        return pts[keep].astype(np.float32), occ[keep]

    def pool(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``pool_draws`` draws concatenated."""
        parts = [self.draw(rng) for _ in range(self.cfg.pool_draws)]
        return np.concatenate([p for p, _ in parts]), np.concatenate([o for _, o in parts])

    def evaluation(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Held-out uniform points in [−1, 1]³ and their occupancy (volumetric IoU)."""
        pts = rng.uniform(-1.0, 1.0, (self.cfg.eval_points, 3)).astype(np.float32)
        return pts, self.inside(pts.astype(np.float64))
