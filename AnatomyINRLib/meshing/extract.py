"""Triangle surfaces from fields: grid sampling, marching cubes, clean-up.

``extract_surface`` samples a field on an axis-aligned RAS grid (narrow band
or dense, see :mod:`narrowband`), runs marching cubes (Lorensen & Cline 1987;
VTK's flying edges, Schroeder et al. 2015, or scikit-image), maps vertices
from grid index to RAS mm with the grid's affine, winds faces so their
normals point towards increasing field values (outward for an SDF that is
negative inside) and merges vertices duplicated where the field is exactly at
the level on a node.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field as dc_field
from typing import Callable, Optional

import numpy as np
from scipy import ndimage

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.types import ImageGrid, TriangleMesh
from AnatomyINRLib.meshing.config import MeshingConfig
from AnatomyINRLib.meshing.grid import FieldEvaluator, check_bounds, check_memory, make_grid, max_cell_diagonal
from AnatomyINRLib.meshing.narrowband import SampledField, dense_sample, narrowband_sample
from AnatomyINRLib.meshing.postprocess import clean_mesh, component_areas, largest_component, vertex_normals


@dataclass
class ExtractionResult:
    """One extracted surface and what it cost.

    Attributes:
        mesh: TriangleMesh in RAS mm, outward CCW faces, point_data["Normals"] (V, 3)
            unless config.normals == "none".
        n_evaluations: Points the field was evaluated at (grid + normals).
        grid_shape: (I, J, K) nodes of the final grid.
        dense_evaluations: Nodes of the final grid (what dense sampling costs).
        seconds: Wall time of the whole extraction.
        grid: Geometry of the final grid (ImageGrid with no voxel storage).
        levels: Coarse-to-fine refinements (0 = dense).
        gradient_bound: Band scale L finally used (coarse estimate, raised when exact values
            showed a steeper slope; 1 for an exact SDF).
        piece_areas: (n,) float64 area in mm² of every connected piece of the surface, largest
            first, counted before ``config.largest_component`` kept one.
    """

    mesh: TriangleMesh
    n_evaluations: int
    grid_shape: tuple
    dense_evaluations: int
    seconds: float
    grid: Optional[ImageGrid] = None
    levels: int = 0
    gradient_bound: float = 1.0
    piece_areas: np.ndarray = dc_field(default_factory=lambda: np.zeros(0))

    def summary(self) -> dict:
        """JSON-ready numbers (no arrays)."""
        return {
            "n_vertices": self.mesh.n_vertices,
            "n_faces": self.mesh.n_faces,
            "n_evaluations": int(self.n_evaluations),
            "dense_evaluations": int(self.dense_evaluations),
            "grid_shape": list(self.grid_shape),
            "levels": int(self.levels),
            "gradient_bound": float(self.gradient_bound),
            "seconds": float(self.seconds),
        }


@dataclass
class MultiExtractionResult:
    """Surfaces of every output of a K-output field, sampled on one shared grid.

    Attributes:
        meshes: K TriangleMeshes (index = field output), RAS mm.
        other attributes as in :class:`ExtractionResult` (one field call yields all K outputs).
    """

    meshes: list = dc_field(default_factory=list)
    n_evaluations: int = 0
    grid_shape: tuple = ()
    dense_evaluations: int = 0
    seconds: float = 0.0
    grid: Optional[ImageGrid] = None
    levels: int = 0
    gradient_bound: float = 1.0


def _sample(evaluator: FieldEvaluator, grid: ImageGrid, config: MeshingConfig) -> SampledField:
    if config.method == "dense":
        return dense_sample(evaluator, grid, (0.0, 0.9))
    return narrowband_sample(
        evaluator, grid, config.level, config.band_factor, config.coarse_cells,
        config.max_levels, config.adapt_band_to_gradient, (0.0, 0.9),
    )


def _check_crossing(volume: np.ndarray, level: float, grid: ImageGrid, what: str) -> None:
    lo, hi = float(volume.min()), float(volume.max())
    box = f"box {grid.index_to_world(np.zeros((1, 3)))[0].round(2).tolist()} to " \
          f"{grid.index_to_world(np.array([grid.shape]) - 1.0)[0].round(2).tolist()} mm"
    if lo >= level:
        cell = max_cell_diagonal(grid.ijk_to_ras)
        if lo - level < cell:
            # The zero set passes between grid nodes: the object is thinner than one cell.
            raise InputError(
                f"no surface found at this spacing: {what} comes within {lo - level:.3g} mm of the surface but no "
                f"grid node (cell diagonal {cell:.3g} mm) falls inside: the object is smaller than a voxel; use a "
                f"smaller spacing (or check the points' units: millimetres are expected)"
            )
        raise InputError(
            f"no surface found: {what} is positive everywhere in the {box} (min {lo:.4g} mm >= level {level}); "
            f"check the bounds cover the object"
        )
    if hi <= level:
        raise InputError(
            f"no surface found: {what} is negative everywhere in the {box} (max {hi:.4g} mm <= level {level}); "
            f"the bounds lie inside the object: enlarge them"
        )


def marching_cubes(volume: np.ndarray, level: float, backend: str = "vtk") -> tuple[np.ndarray, np.ndarray]:
    """Iso-surface of a (I, J, K) node volume in index coordinates.

    Returns:
        (verts (V, 3) float64 continuous (i, j, k) indices, faces (F, 3) int64)
        with arbitrary (backend-specific) winding.
    """
    volume = np.ascontiguousarray(volume, dtype=np.float64)
    if backend == "skimage":
        from skimage import measure

        verts, faces, _, _ = measure.marching_cubes(volume, level=level, method="lewiner")
        return verts.astype(np.float64), faces.astype(np.int64)
    import vtk
    from vtk.util import numpy_support

    image = vtk.vtkImageData()
    # C order [i, j, k] has k fastest; VTK's x is fastest, so VTK sees (x, y, z) = (k, j, i).
    image.SetDimensions(volume.shape[2], volume.shape[1], volume.shape[0])
    scalars = numpy_support.numpy_to_vtk(volume.reshape(-1), deep=False)
    image.GetPointData().SetScalars(scalars)
    flying = vtk.vtkFlyingEdges3D()
    flying.SetInputData(image)
    flying.SetValue(0, float(level))
    for off in (flying.ComputeNormalsOff, flying.ComputeGradientsOff, flying.ComputeScalarsOff):
        off()
    flying.Update()
    out = flying.GetOutput()
    if out.GetNumberOfPoints() == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    from AnatomyINRLib.meshing.vtk_bridge import mesh_from_polydata

    mesh = mesh_from_polydata(out, name="marching cubes output", point_data=False)
    return np.ascontiguousarray(mesh.vertices[:, ::-1]), mesh.faces


def _sample_volume(volume: np.ndarray, grid: ImageGrid, points: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of node values at (N, 3) RAS mm points."""
    ijk = grid.world_to_index(points)
    return ndimage.map_coordinates(volume, ijk.T, order=1, mode="nearest")


def _orient_along_gradient(mesh: TriangleMesh, volume: np.ndarray, grid: ImageGrid) -> TriangleMesh:
    """Wind faces so normals point to increasing field values (majority vote).

    Marching cubes winds all faces with one convention, so one global vote
    over probes at centroid ± spacing/4 · normal settles it, even for open or
    multi-component surfaces.
    """
    if mesh.n_faces == 0:
        return mesh
    pick = np.linspace(0, mesh.n_faces - 1, min(mesh.n_faces, 20000)).astype(np.int64)
    normals = mesh.face_normals()[pick]
    centroids = mesh.vertices[mesh.faces[pick]].mean(axis=1)
    step = 0.25 * float(np.min(grid.spacing))
    rise = _sample_volume(volume, grid, centroids + step * normals) - _sample_volume(volume, grid, centroids - step * normals)
    if np.count_nonzero(rise < 0) > np.count_nonzero(rise > 0):
        return TriangleMesh(mesh.vertices, mesh.faces[:, ::-1].copy(), dict(mesh.point_data))
    return mesh


def _grid_gradient_normals(volume: np.ndarray, grid: ImageGrid, vertices: np.ndarray) -> np.ndarray:
    """Unit ∇f at vertices from central differences (±½ node) of the sampled volume."""
    ijk = grid.world_to_index(vertices)
    grad_idx = np.empty_like(ijk)
    for axis in range(3):
        offset = np.zeros(3)
        offset[axis] = 0.5
        plus = ndimage.map_coordinates(volume, (ijk + offset).T, order=1, mode="nearest")
        minus = ndimage.map_coordinates(volume, (ijk - offset).T, order=1, mode="nearest")
        grad_idx[:, axis] = plus - minus
    # Index-space derivatives → world: ∇_x f = A^{-T} ∇_ijk f.
    grad = grad_idx @ np.linalg.inv(grid.ijk_to_ras[:3, :3])
    return _unit(grad)


def _unit(v: np.ndarray) -> np.ndarray:
    length = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, length, out=np.zeros_like(v), where=length > 0)


def _field_normals(field: Callable, evaluator: FieldEvaluator, vertices: np.ndarray, output: int, spacing: float) -> np.ndarray:
    """Unit ∇f at vertices: field.gradient when available, else central differences (h = spacing/10)."""
    gradient = getattr(field, "gradient", None)
    if callable(gradient):
        evaluator.n_evaluations += len(vertices)       # one forward + backward pass per vertex
        grad = gradient(vertices, output=output) if output else gradient(vertices)
        return _unit(np.asarray(grad, dtype=np.float64))
    h = 0.1 * spacing
    grad = np.empty_like(vertices)
    for axis in range(3):
        offset = np.zeros(3)
        offset[axis] = h
        both = evaluator.at_points(np.concatenate([vertices + offset, vertices - offset]), (0.95, 0.99), "normals")
        grad[:, axis] = (both[: len(vertices), output] - both[len(vertices):, output]) / (2 * h)
    return _unit(grad)


def _build_mesh(volume: np.ndarray, grid: ImageGrid, config: MeshingConfig, field: Callable,
                evaluator: FieldEvaluator, output: int) -> tuple[TriangleMesh, np.ndarray]:
    """(mesh, (n,) areas in mm² of all its pieces before ``config.largest_component``, largest first)."""
    verts, faces = marching_cubes(volume, config.level, config.backend)
    mesh = clean_mesh(TriangleMesh(grid.index_to_world(verts), faces))
    mesh = _orient_along_gradient(mesh, volume, grid)
    components = component_areas(mesh)
    if config.largest_component:
        mesh = largest_component(mesh, components)
    if config.normals == "grid":
        mesh.point_data["Normals"] = _grid_gradient_normals(volume, grid, mesh.vertices)
    elif config.normals == "field":
        mesh.point_data["Normals"] = _field_normals(field, evaluator, mesh.vertices, output, config.spacing_mm)
    elif config.normals == "mesh":
        mesh.point_data["Normals"] = vertex_normals(mesh)
    return mesh, np.sort(components[1])[::-1]


def _prepare(field, bounds, config, progress, should_cancel, n_outputs):
    config = MeshingConfig() if config is None else config
    if not isinstance(config, MeshingConfig):
        raise InputError(f"config: expected a MeshingConfig, got {type(config).__name__}")
    config.validate()
    bounds = check_bounds(bounds)
    check_memory(bounds, config.spacing_mm, config.padding_mm, n_outputs, config.max_memory_mb)
    reporter = ProgressReporter.wrap(progress, should_cancel)
    evaluator = FieldEvaluator(field, config.chunk_size, reporter, expect_outputs=n_outputs)
    grid = make_grid(bounds, config.spacing_mm, config.padding_mm)
    return config, reporter, evaluator, grid


def extract_surface(field: Callable, bounds, config: MeshingConfig | None = None, progress=None,
                    should_cancel: Callable[[], bool] | None = None) -> ExtractionResult:
    """Extract the level set of a field as a triangle mesh in RAS mm.

    Args:
        field: Callable (N, 3) float64 RAS mm → (N,) float64 mm, negative inside.
        bounds: (2, 3) min and max corner in RAS mm (grown by config.padding_mm).
        config: Sampling and meshing settings (default MeshingConfig()).
        progress: ProgressReporter, callback(Progress) or None; stage "extract".
        should_cancel: Polled after every field chunk; True raises Cancelled.

    Returns:
        ExtractionResult. The mesh is closed (watertight, manifold) when the
        surface lies inside the box; where it leaves the box it is cut open.

    Raises:
        InputError: bad bounds/config, field output not (N,), grid over
            config.max_memory_mb (the message names a spacing that fits), or no
            level crossing in the box.
        Cancelled: should_cancel returned True or the callback raised it.
    """
    start = time.perf_counter()
    config, reporter, evaluator, grid = _prepare(field, bounds, config, progress, should_cancel, 1)
    sampled = _sample(evaluator, grid, config)
    _check_crossing(sampled.values[0], config.level, grid, "the field")
    reporter.report("extract", 0.9, "marching cubes")
    mesh, areas = _build_mesh(sampled.values[0], grid, config, field, evaluator, 0)
    reporter.report("extract", 1.0, f"{mesh.n_faces} faces", evaluations=evaluator.n_evaluations)
    return ExtractionResult(mesh, evaluator.n_evaluations, grid.shape, int(np.prod(grid.shape)),
                            time.perf_counter() - start, grid, sampled.levels, sampled.gradient_bound, areas)


def extract_surfaces_multi(field_k: Callable, bounds, config: MeshingConfig | None = None, progress=None,
                           should_cancel: Callable[[], bool] | None = None,
                           n_outputs: int | None = None) -> MultiExtractionResult:
    """Extract the level set of every output of a K-output field on one shared grid.

    Surfaces of nested fields (f_outer ≤ f_inner everywhere) stay nested
    because every output is sampled at the same nodes. With the narrow band,
    a node is evaluated when it is near any of the K surfaces.

    Args:
        field_k: Callable (N, 3) RAS mm → (N, K) mm.
        n_outputs: K if known (for the memory check); default field_k.out_dim or
            one probe evaluation at the box centre.
        Others as in :func:`extract_surface`.

    Returns:
        MultiExtractionResult with K meshes in output order.
    """
    start = time.perf_counter()
    if n_outputs is None:
        n_outputs = getattr(field_k, "out_dim", None)
    probed = n_outputs is None
    if probed:
        centre = check_bounds(bounds).mean(axis=0, keepdims=True)
        probe = np.asarray(field_k(centre))
        n_outputs = 1 if probe.ndim == 1 else int(probe.shape[1])
    config, reporter, evaluator, grid = _prepare(field_k, bounds, config, progress, should_cancel, int(n_outputs))
    evaluator.n_evaluations += int(probed)
    sampled = _sample(evaluator, grid, config)
    meshes = []
    n_out = sampled.values.shape[0]
    for k in range(n_out):
        _check_crossing(sampled.values[k], config.level, grid, f"output {k} of the field")
    for k in range(n_out):
        reporter.report("extract", 0.9 + 0.1 * k / n_out, f"marching cubes, output {k}")
        meshes.append(_build_mesh(sampled.values[k], grid, config, field_k, evaluator, k)[0])
    reporter.report("extract", 1.0, f"{n_out} surfaces", evaluations=evaluator.n_evaluations)
    return MultiExtractionResult(meshes, evaluator.n_evaluations, grid.shape, int(np.prod(grid.shape)),
                                 time.perf_counter() - start, grid, sampled.levels, sampled.gradient_bound)
