"""The signed distance of a deformed template on a grid, computed from the mesh itself (no network).

An alternative to the learned g_φ for the BCE of f_θ's loss (eq. 1, ``_shape_loss``): at every
voxel centre x of the target grid

    D(x) = (x − v_j) · n_j,   j = argmin_i ‖x − v_i‖,

the distance of x to the tangent plane of its nearest vertex v_j, with n_j the unit area-weighted
normal of the faces around v_j (outward for the template's counter-clockwise faces), so D < 0 inside.
It is differentiable in the vertex positions (through v_j and n_j; the nearest-vertex choice is
piecewise constant). Near a smooth mesh it equals the signed distance up to the mesh's sag between
vertices (edge² / (8 · radius of curvature): ~0.01 mm for a 25 mm chamber on the 2562-vertex
template), which is where σ(−D/τ) is not saturated; farther out only its sign matters, and that is
the sign of the true signed distance for every point whose closest surface point lies near a vertex
with a consistent normal (every point, for star-shaped meshes without folds).

Why it exists: g_φ at a CPU-sized 33³ grid has a mean zero-level error of 3–5 mm at the chambers'
scale (``benchmarks/results/image_to_mesh_gphi_spheres.md``), and f_θ trained through it learns
g_φ's error (chambers 2–2.5× too large). This distance is exact where the loss looks, at ~0.1 s per
structure and 33³ grid on one CPU thread. ``ShapeTrainConfig.distance`` chooses between the two.
"""

from __future__ import annotations

import numpy as np
import torch

from AnatomyINRLib.image_to_mesh._grid import grid_coordinates

_CHUNK = 8192  # grid points per nearest-vertex block: (chunk × V) squared distances in memory


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) unit area-weighted vertex normals of (B, V, 3) vertices on (F, 3) faces (differentiable)."""
    a, b, c = (vertices[:, faces[:, i]] for i in range(3))
    face_n = torch.cross(b - a, c - a, dim=-1)  # length = 2 · area: area weighting for free
    normals = torch.zeros_like(vertices)
    for i in range(3):
        normals = normals.index_add(1, faces[:, i], face_n)
    return normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def nearest_vertex(points: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """(B, P) index of the nearest of (B, V, 3) vertices for every one of (P, 3) points (no gradient).

    A k-d tree on the CPU (milliseconds for a 65³ grid), blocks of ``torch.cdist`` on other devices.
    """
    if vertices.device.type == "cpu":
        from scipy.spatial import cKDTree

        query = points.detach().double().numpy()
        rows = [cKDTree(v.detach().double().numpy()).query(query)[1] for v in vertices]
        return torch.from_numpy(np.stack(rows)).long()
    out = []
    with torch.no_grad():
        for start in range(0, points.shape[0], _CHUNK):
            block = points[start:start + _CHUNK]
            out.append(torch.cdist(block.unsqueeze(0).expand(vertices.shape[0], -1, -1), vertices).argmin(dim=-1))
    return torch.cat(out, dim=1)


class MeshGridDistance(torch.nn.Module):
    """vertices (B, V, 3) in [-1, 1]³ → [D (B, 1, N, N, N)] on the ``_grid`` voxel centres (module docstring).

    The output is a one-level list like g_φ's (``MeshToSDF``: one (B, 1, N, N, N) grid per decoder
    level), so the loss takes either.

    Args:
        faces: (F, 3) int64 faces of the template (counter-clockwise seen from outside).
        grid_size: N of the target grid.
    """

    def __init__(self, faces: torch.Tensor, grid_size: int):
        super().__init__()
        self.grid_size = int(grid_size)
        self.n_vertices = int(torch.as_tensor(faces).max()) + 1
        self.register_buffer("faces", torch.as_tensor(faces, dtype=torch.long), persistent=False)
        self.register_buffer("points", grid_coordinates(self.grid_size).reshape(-1, 3), persistent=False)

    def forward(self, vertices: torch.Tensor) -> list:
        pts = self.points.to(vertices.dtype)
        idx = nearest_vertex(pts, vertices.detach())  # (B, P)
        normals = vertex_normals(vertices, self.faces)
        gather = idx.unsqueeze(-1).expand(-1, -1, 3)
        v = torch.gather(vertices, 1, gather)
        n = torch.gather(normals, 1, gather)
        d = ((pts.unsqueeze(0) - v) * n).sum(dim=-1)
        n_grid = self.grid_size
        return [d.reshape(vertices.shape[0], 1, n_grid, n_grid, n_grid)]
