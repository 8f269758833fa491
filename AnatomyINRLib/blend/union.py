"""The blended field: smooth union of clipped input SDFs, clipped again globally.

    F(x) = clip_global( smin_fold( clip_1(f_1)(x), …, clip_n(f_n)(x); k_2 … k_n ) )

with smin the polynomial smooth minimum (``blend.smin``) and clip the CSG
intersection with half-spaces. Every step is 1-Lipschitz, so F is a valid
distance bound for narrow-band meshing; F equals the plain union wherever no
two inputs come within k of each other (smin = min there).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.blend.smin import clip, smooth_union


class BlendedField:
    """Callable union field (N, 3) RAS mm → (N,) mm.

    Args:
        fields: n callables (N, 3) mm → (N,) mm (negative inside).
        radii: n fillet radii in mm (input i joins inputs 0 … i−1 with radii[i]).
        input_planes: n lists of ClipPlane applied to each input before the union.
        global_planes: ClipPlanes applied to the union.
    """

    def __init__(self, fields: Sequence, radii: Sequence[float], input_planes: Sequence | None = None,
                 global_planes: Sequence | None = None) -> None:
        if len(fields) == 0:
            raise InputError("inputs: expected at least one input to blend")
        if len(radii) != len(fields):
            raise InputError(f"radii: expected {len(fields)} values, got {len(radii)}")
        self.fields = list(fields)
        self.radii = [float(r) for r in radii]
        self.input_planes = [list(p) for p in (input_planes or [[] for _ in fields])]
        self.global_planes = list(global_planes or [])

    def input_values(self, points: np.ndarray) -> list:
        """Clipped SDF of every input at (N, 3) mm points (list of (N,) arrays)."""
        pts = np.asarray(points, dtype=np.float64)
        return [clip(np.asarray(f(pts), dtype=np.float64), pts, planes)
                for f, planes in zip(self.fields, self.input_planes)]

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Blended SDF (mm) at (N, 3) RAS mm points."""
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise InputError(f"points: expected an (N, 3) array, got shape {pts.shape}")
        union = smooth_union(self.input_values(pts), self.radii)
        return clip(union, pts, self.global_planes)

    def plain_min(self, points: np.ndarray) -> np.ndarray:
        """Hard union min_i f_i with the same clipping (the baseline, eq. 4 of the paper)."""
        pts = np.asarray(points, dtype=np.float64)
        return clip(np.min(np.stack(self.input_values(pts)), axis=0), pts, self.global_planes)
