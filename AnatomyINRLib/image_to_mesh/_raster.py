"""Meshes ↔ the image: the normalised crop frame and label maps rasterised from watertight meshes.

Crop frame: the networks see a cube [-1, 1]³ that maps to an axis-aligned (in the image's voxel
axes) box of the image: x_world = ijk_to_ras · (centre_ijk + x · half_size_ijk). Mesh vertices
predicted in the cube are mapped to RAS mm by :meth:`CropFrame.to_world` and back by
:meth:`CropFrame.to_normalised`; oblique and anisotropic images need no resampling for this map.

Rasterisation: ``meshing.voxelize_mesh`` (VTK's polygon-to-stencil even-odd fill in the image's
continuous index space) gives each watertight mesh's inside at the voxel centres; the label map
puts label k where mesh k is inside. Where meshes overlap, the larger label value wins and the
overlap is counted, so a caller can report it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid, TriangleMesh
from AnatomyINRLib.meshing.labelmap import voxelize_mesh


@dataclass
class CropFrame:
    """The map between the normalised cube [-1, 1]³ and an image's RAS mm (module docstring).

    Attributes:
        ijk_to_ras: (4, 4) the image's voxel → RAS affine.
        centre_ijk: (3,) continuous voxel index of the cube's centre.
        half_size_ijk: (3,) half the cube's edge along i, j, k, in voxels.
    """

    ijk_to_ras: np.ndarray
    centre_ijk: np.ndarray
    half_size_ijk: np.ndarray

    @staticmethod
    def centred(image: ImageGrid, half_size_mm: float) -> "CropFrame":
        """The cube of half edge ``half_size_mm`` (mm) around the image's centre."""
        if not (np.isfinite(half_size_mm) and half_size_mm > 0):
            raise InputError(f"half_size_mm: expected a positive number of mm, got {half_size_mm!r}")
        centre = (np.asarray(image.shape, dtype=np.float64) - 1.0) / 2.0
        return CropFrame(image.ijk_to_ras.copy(), centre, half_size_mm / image.spacing)

    def to_world(self, x: np.ndarray) -> np.ndarray:
        """(N, 3) normalised → (N, 3) RAS mm."""
        ijk = self.centre_ijk + np.asarray(x, dtype=np.float64) * self.half_size_ijk
        return ijk @ self.ijk_to_ras[:3, :3].T + self.ijk_to_ras[:3, 3]

    def to_normalised(self, ras: np.ndarray) -> np.ndarray:
        """(N, 3) RAS mm → (N, 3) normalised."""
        inv = np.linalg.inv(self.ijk_to_ras)
        ijk = np.asarray(ras, dtype=np.float64) @ inv[:3, :3].T + inv[:3, 3]
        return (ijk - self.centre_ijk) / self.half_size_ijk


def rasterize_meshes(meshes: dict, reference: ImageGrid) -> tuple[ImageGrid, int]:
    """Label map of watertight meshes at the voxel centres of a reference image.

    Args:
        meshes: label value (1-255) → closed TriangleMesh in RAS mm.
        reference: The geometry to rasterise onto (its voxel values are ignored).

    Returns:
        (uint8 label map on the reference geometry, number of voxels inside more than one mesh).

    Raises:
        InputError: a label outside 1-255, or a mesh that is not closed.
    """
    if not isinstance(reference, ImageGrid):
        raise InputError(f"reference: expected an ImageGrid, got {type(reference).__name__}")
    out = np.zeros(reference.shape, np.uint8)
    covered = np.zeros(reference.shape, np.uint8)
    for label in sorted(meshes):
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 1 <= int(label) <= 255:
            raise InputError(f"meshes: label keys must be integers in [1, 255], got {label!r}")
        mesh = meshes[label]
        if not isinstance(mesh, TriangleMesh):
            raise InputError(f"meshes[{label}]: expected a TriangleMesh, got {type(mesh).__name__}")
        inside = voxelize_mesh(mesh, reference).array > 0
        covered += inside
        out[inside] = int(label)
    return ImageGrid(out, reference.ijk_to_ras.copy()), int(np.count_nonzero(covered > 1))
