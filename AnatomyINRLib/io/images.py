"""Read and write 3-D scalar images with SimpleITK (``.nrrd .nhdr .nii .nii.gz .mha .mhd``).

Geometry convention: ITK's physical space is LPS, the library's is RAS, so

    ijk_to_lps = [[D · diag(spacing), origin], [0, 0, 0, 1]]   (ITK)
    ijk_to_ras = diag(−1, −1, 1, 1) · ijk_to_lps                (ours)

i.e. the first two rows are negated. Voxel arrays are indexed [i, j, k]
(i fastest along the file's first axis), the transpose of SimpleITK's
``GetArrayFromImage`` [k, j, i] order. Oblique directions are kept exactly
(NRRD/MetaImage store doubles; NIfTI stores its sform in float32, so it is
only accurate to ~1e-7 relative).

A ``.seg.nrrd`` with a single 3-D layer reads as its label image; segment names
and overlapping layers are not interpreted (4-D files are refused).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from AnatomyINRLib.core.errors import InputError, OutputError
from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.io.atomic import atomic_path, check_writable
from AnatomyINRLib.io.formats import check_readable, format_of

_RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # its own inverse
_DETACHED = (".nhdr", ".mhd")  # header + separate pixel file


def read_image(path: "str | os.PathLike") -> ImageGrid:
    """Read a 3-D single-component image.

    Args:
        path: ``.nrrd``, ``.nhdr``, ``.nii``, ``.nii.gz``, ``.mha``, ``.mhd`` or ``.seg.nrrd``.

    Returns:
        ImageGrid with ``array`` [i, j, k] in the file's pixel type and ``ijk_to_ras``.

    Raises:
        InputError: missing/unreadable/corrupt file, unknown extension, a 2-D
            or 4-D image, or a multi-component (vector/RGB) image.
    """
    import SimpleITK as sitk

    format_of(path, "image")
    path = check_readable(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(f"path {str(path)!r}: could not read the image ({_itk_reason(exc)})") from exc
    if image.GetDimension() != 3:
        raise InputError(f"path {str(path)!r}: expected a 3-D image, got {image.GetDimension()}-D (size {image.GetSize()})")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"path {str(path)!r}: expected one value per voxel, got {image.GetNumberOfComponentsPerPixel()} "
            "components (vector/RGB images are not supported; split the channels first)"
        )
    array = np.ascontiguousarray(sitk.GetArrayFromImage(image).transpose(2, 1, 0))
    return ImageGrid(array, ijk_to_ras_from_itk(image.GetOrigin(), image.GetSpacing(), image.GetDirection()))


def write_image(image: ImageGrid, path: "str | os.PathLike", *, compress: bool = True) -> None:
    """Write an image atomically (header and pixel file together for ``.nhdr``/``.mhd``).

    Args:
        image: ImageGrid with an orthogonal ijk→RAS (any rotation, no shear).
        path: ``.nrrd``, ``.nhdr``, ``.nii``, ``.nii.gz``, ``.mha`` or ``.mhd``.
        compress: Compress pixel data where the format allows it.

    Raises:
        InputError: not an ImageGrid, sheared axes, or an unsupported voxel type.
        OutputError: unsupported extension or the file could not be written.
    """
    import SimpleITK as sitk

    if not isinstance(image, ImageGrid):
        raise InputError(f"image: expected an ImageGrid, got {type(image).__name__}")
    ext = format_of(path, "image", writing=True)
    origin, spacing, direction = itk_geometry_from_ijk_to_ras(image.ijk_to_ras)
    array = image.array.astype(np.uint8) if image.array.dtype == bool else image.array
    try:
        itk_image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"image: voxel type {array.dtype} cannot be written ({_itk_reason(exc)})") from exc
    itk_image.SetOrigin(origin)
    itk_image.SetSpacing(spacing)
    itk_image.SetDirection(direction)
    if ext in _DETACHED:
        _write_detached(itk_image, Path(path), compress)
        return
    with atomic_path(path) as tmp:
        _sitk_write(itk_image, tmp, compress, str(path))


def ijk_to_ras_from_itk(origin, spacing, direction) -> np.ndarray:
    """4×4 ijk→RAS from ITK's LPS origin (3,), spacing (3,) and row-major direction (9,)."""
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(direction, dtype=np.float64).reshape(3, 3) * np.asarray(spacing, dtype=np.float64)[None, :]
    lps[:3, 3] = np.asarray(origin, dtype=np.float64)
    return _RAS_FROM_LPS @ lps


def itk_geometry_from_ijk_to_ras(ijk_to_ras: np.ndarray):
    """(origin, spacing, direction) tuples in ITK's LPS convention from a 4×4 ijk→RAS.

    Raises:
        InputError: the matrix has a projective row or non-orthogonal (sheared) axes,
            which ITK images cannot represent.
    """
    mat = np.asarray(ijk_to_ras, dtype=np.float64)
    if not np.allclose(mat[3], [0.0, 0.0, 0.0, 1.0]):
        raise InputError(f"ijk_to_ras: last row must be [0, 0, 0, 1], got {mat[3].tolist()}")
    lps = _RAS_FROM_LPS @ mat
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / spacing[None, :]
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-6):
        raise InputError("ijk_to_ras: voxel axes are not orthogonal (sheared grid); image files cannot store that")
    return tuple(lps[:3, 3].tolist()), tuple(spacing.tolist()), tuple(direction.reshape(-1).tolist())


# ----------------------------------------------------------------------------- helpers


def _itk_reason(exc: Exception) -> str:
    """The useful last line of an ITK exception message."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _sitk_write(itk_image, target: Path, compress: bool, shown: str) -> None:
    import SimpleITK as sitk

    try:
        sitk.WriteImage(itk_image, str(target), useCompression=compress)
    except RuntimeError as exc:
        raise OutputError(f"output {shown!r}: could not write the image ({_itk_reason(exc)})") from exc


def _write_detached(itk_image, path: Path, compress: bool) -> None:
    """Write header + pixel file in a private folder, then move pixel file(s) and header into place.

    The header names its pixel file, so both must keep their final names;
    the pixel file is moved first so the header never points at a missing file.
    """
    path = check_writable(path)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=str(path.parent)))
    try:
        staged = staging / path.name
        _sitk_write(itk_image, staged, compress, str(path))
        others = [p for p in staging.iterdir() if p.name != path.name]
        for item in others:
            os.replace(item, path.parent / item.name)
        os.replace(staged, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
