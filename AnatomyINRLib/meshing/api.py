"""Small public entry points: one call from a field to a mesh or a mask.

Everything here is a thin composition of :mod:`extract` and :mod:`labelmap`;
use those directly for costs, timings and multi-output fields.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid, PointSet, TriangleMesh
from AnatomyINRLib.meshing.config import MeshingConfig
from AnatomyINRLib.meshing.extract import extract_surface


def bounds_of(obj, margin_mm: float = 0.0) -> np.ndarray:
    """(2, 3) RAS mm box [min corner, max corner] of a geometric object, grown by ``margin_mm``.

    Args:
        obj: PointSet, TriangleMesh, ImageGrid (its voxel centres), a
            NeuralField (its network's normalised cube [−1, 1]³ in mm), or an
            (N, 3) array of points.
        margin_mm: Added on every side.
    """
    if isinstance(obj, PointSet):
        pts = obj.points
    elif isinstance(obj, TriangleMesh):
        pts = obj.vertices
    elif isinstance(obj, ImageGrid):
        corners = np.array([[i, j, k] for i in (0, obj.shape[0] - 1) for j in (0, obj.shape[1] - 1)
                            for k in (0, obj.shape[2] - 1)], dtype=np.float64)
        pts = obj.index_to_world(corners)
    elif hasattr(obj, "normalization"):
        norm = obj.normalization
        pts = np.stack([norm.center - norm.scale, norm.center + norm.scale])
    else:
        pts = np.asarray(obj, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
            raise InputError(f"obj: expected points (N, 3), a PointSet, TriangleMesh, ImageGrid or NeuralField, got {type(obj).__name__}")
    if not np.all(np.isfinite(pts)):
        raise InputError("obj: coordinates contain NaN or infinity")
    margin = float(margin_mm)
    return np.stack([pts.min(axis=0) - margin, pts.max(axis=0) + margin])


def mesh_from_field(field: Callable, bounds, spacing_mm: float = 0.5, progress=None,
                    should_cancel: Optional[Callable[[], bool]] = None, **options) -> TriangleMesh:
    """Surface (level set) of a field as an outward-oriented mesh in RAS mm.

    Args:
        field: Callable (N, 3) RAS mm → (N,) mm, negative inside.
        bounds: (2, 3) box in mm, or anything :func:`bounds_of` accepts.
        spacing_mm: Grid spacing in mm.
        progress, should_cancel: As in :func:`extract_surface`.
        **options: Any other :class:`MeshingConfig` field (method="dense", level=1.0, ...).

    Raises:
        InputError: unknown option or invalid value (named), no surface in the box, grid too large.
    """
    config = MeshingConfig.from_dict({"spacing_mm": spacing_mm, **options})
    box = np.asarray(bounds, dtype=np.float64) if _is_box(bounds) else bounds_of(bounds)
    return extract_surface(field, box, config, progress, should_cancel).mesh


def _is_box(value) -> bool:
    try:
        return np.asarray(value, dtype=np.float64).shape == (2, 3)
    except (TypeError, ValueError):
        return False
