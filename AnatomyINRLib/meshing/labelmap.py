"""Volumes on a reference grid: inside masks and signed distances from fields, masks from meshes.

Values are taken at the reference's voxel centres (``ijk_to_ras`` applied to
integer indices), so outputs share the reference's shape and geometry
exactly, oblique directions and anisotropic spacing included.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.types import ImageGrid, TriangleMesh
from AnatomyINRLib.meshing.config import MeshingConfig
from AnatomyINRLib.meshing.grid import FieldEvaluator, estimate_memory_mb, geometry_grid
from AnatomyINRLib.meshing.narrowband import SampledField, dense_sample, narrowband_sample
from AnatomyINRLib.meshing.topology import edge_table
from AnatomyINRLib.meshing.vtk_bridge import polydata_from_mesh


def _check_reference(reference, name: str = "reference") -> ImageGrid:
    if not isinstance(reference, ImageGrid):
        raise InputError(f"{name}: expected an ImageGrid (voxel array + ijk_to_ras), got {type(reference).__name__}")
    return reference


def _sample_on(field: Callable, reference: ImageGrid, config: MeshingConfig, method: str, progress,
               should_cancel, stage: str) -> SampledField:
    """Field values at every voxel centre of ``reference`` (narrow band or dense)."""
    config.validate()
    need = estimate_memory_mb(reference.shape, 1)
    if need > config.max_memory_mb:
        raise InputError(
            f"reference: {reference.shape} voxels need about {need:.0f} MB, above "
            f"max_memory_mb={config.max_memory_mb:.0f}; resample the reference or raise max_memory_mb"
        )
    reporter = ProgressReporter.wrap(progress, should_cancel)
    evaluator = FieldEvaluator(field, config.chunk_size, reporter, expect_outputs=1)
    grid = geometry_grid(reference.shape, reference.ijk_to_ras)
    if method == "dense":
        sampled = dense_sample(evaluator, grid, (0.0, 1.0))
    else:
        sampled = narrowband_sample(evaluator, grid, config.level, config.band_factor, config.coarse_cells,
                                    config.max_levels, config.adapt_band_to_gradient, (0.0, 1.0))
    reporter.report(stage, 1.0, f"{evaluator.n_evaluations} field evaluations", evaluations=evaluator.n_evaluations)
    return sampled


def labelmap_from_field(field: Callable, reference: ImageGrid, label: int = 1, progress=None, *,
                        config: Optional[MeshingConfig] = None,
                        should_cancel: Optional[Callable[[], bool]] = None) -> ImageGrid:
    """Inside mask (f < level) of a field at the voxel centres of a reference grid.

    With config.method "narrowband" (default) the field is evaluated only in
    cells that may contain the surface (exact signs for a field with
    |∇f| ≤ 1, see :mod:`narrowband`); "dense" evaluates every voxel.

    Args:
        field: Callable (N, 3) RAS mm → (N,) mm, negative inside.
        reference: Grid whose shape and ijk_to_ras the output copies (its voxels are ignored).
        label: Value (1–255) written inside; 0 outside.
        progress: ProgressReporter, callback or None (stage "labelmap").
        config: Uses method, level, band_factor, coarse_cells, max_levels,
            adapt_band_to_gradient, chunk_size, max_memory_mb.
        should_cancel: Polled after every field chunk; True raises Cancelled.

    Returns:
        ImageGrid with a uint8 (I, J, K) array on the reference geometry.
    """
    reference = _check_reference(reference)
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 1 <= int(label) <= 255:
        raise InputError(f"label: expected an integer in [1, 255], got {label!r}")
    config = MeshingConfig() if config is None else config
    sampled = _sample_on(field, reference, config, config.method, progress, should_cancel, "labelmap")
    mask = (sampled.values[0] < config.level).astype(np.uint8) * np.uint8(label)
    return ImageGrid(mask, reference.ijk_to_ras.copy())


def sdf_volume(field: Callable, reference_or_grid: ImageGrid, progress=None, *, method: str = "dense",
               config: Optional[MeshingConfig] = None,
               should_cancel: Optional[Callable[[], bool]] = None) -> ImageGrid:
    """Field values (mm) at the voxel centres of a grid, as float32.

    Args:
        field: Callable (N, 3) RAS mm → (N,) mm.
        reference_or_grid: A reference image or a geometry grid from
            :func:`AnatomyINRLib.meshing.grid.make_grid`.
        method: "dense" (exact everywhere) or "narrowband" (exact near the
            surface, trilinear interpolation of coarser samples elsewhere:
            right sign, approximate magnitude).
        config: Uses chunk_size, max_memory_mb and the narrow band settings.

    Returns:
        ImageGrid with a float32 (I, J, K) array in mm on the same geometry.
    """
    reference = _check_reference(reference_or_grid, "reference_or_grid")
    config = MeshingConfig() if config is None else config
    if method not in ("dense", "narrowband"):
        raise InputError(f"method: expected 'dense' or 'narrowband', got {method!r}")
    sampled = _sample_on(field, reference, config, method, progress, should_cancel, "sdf")
    return ImageGrid(sampled.values[0].astype(np.float32), reference.ijk_to_ras.copy())


def voxelize_mesh(mesh: TriangleMesh, reference: ImageGrid, label: int = 1) -> ImageGrid:
    """Inside mask of a closed mesh at the voxel centres of a reference grid.

    The mesh is mapped into the reference's continuous index space (so
    oblique and anisotropic grids need no resampling) and filled slice by
    slice with VTK's ``vtkPolyDataToImageStencil`` (even-odd rule on the
    contour of each slice). Winding does not matter; the mesh must be closed.

    Returns:
        ImageGrid with a uint8 (I, J, K) array: ``label`` inside, 0 outside.
    """
    import vtk
    from vtk.util import numpy_support

    reference = _check_reference(reference)
    if not isinstance(mesh, TriangleMesh) or mesh.n_faces == 0:
        raise InputError("mesh: expected a TriangleMesh with at least one face")
    open_edges = int(np.count_nonzero(edge_table(mesh.faces).counts == 1))
    if open_edges:
        raise InputError(f"mesh: not closed ({open_edges} boundary edges); voxelize_mesh needs a closed surface")
    # The stencil works in voxel index space: the same triangles with (i, j, k) coordinates.
    poly = polydata_from_mesh(mesh, point_data=False, vertices=reference.world_to_index(mesh.vertices))
    ni, nj, nk = reference.shape
    stencil = vtk.vtkPolyDataToImageStencil()
    stencil.SetInputData(poly)
    stencil.SetOutputOrigin(0.0, 0.0, 0.0)
    stencil.SetOutputSpacing(1.0, 1.0, 1.0)
    stencil.SetOutputWholeExtent(0, ni - 1, 0, nj - 1, 0, nk - 1)
    to_image = vtk.vtkImageStencilToImage()
    to_image.SetInputConnection(stencil.GetOutputPort())
    to_image.SetInsideValue(int(label))
    to_image.SetOutsideValue(0)
    to_image.SetOutputScalarTypeToUnsignedChar()
    to_image.Update()
    flat = numpy_support.vtk_to_numpy(to_image.GetOutput().GetPointData().GetScalars())
    # VTK stores x (= i here) fastest: reshape as (k, j, i) and transpose to [i, j, k].
    mask = np.ascontiguousarray(flat.reshape(nk, nj, ni).transpose(2, 1, 0)).astype(np.uint8)
    return ImageGrid(mask, reference.ijk_to_ras.copy())
