"""The one in-memory bridge between ``TriangleMesh`` and ``vtkPolyData``.

Every place that hands a mesh to a VTK filter (file writers in ``io``, the
cell locator of ``meshing.mesh_sdf``, the stencil of ``meshing.labelmap``,
the Slicer layer's model nodes) or reads one back goes through these two
functions, so index types, triangulation and point arrays are handled once.

It lives in ``meshing/`` (not ``io/``, which owns file formats, nor ``core/``,
which must not need VTK): it is an in-memory conversion used by the meshing
algorithms themselves, and ``meshing`` already depends on VTK.

Coordinates are copied as they are (no RAS/LPS change: frames are a file
concern, handled in ``io.meshes``).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import TriangleMesh


def polydata_from_mesh(mesh: TriangleMesh, *, point_data: bool = True, vertices: Optional[np.ndarray] = None):
    """A new ``vtkPolyData`` holding the mesh's triangles (deep copies, no shared memory).

    Args:
        mesh: Triangle mesh; faces keep their order and winding.
        point_data: Also copy ``mesh.point_data``: arrays of shape (V,) or (V, C)
            become VTK arrays of the same name (bool → uint8); a 3-component array
            named "normals" (any case) also becomes the active normals.
        vertices: Optional (V, 3) coordinates used instead of ``mesh.vertices``
            (e.g. the same mesh in LPS or in voxel indices).

    Returns:
        vtkPolyData with V points and F triangle cells (cell id = face index).

    Raises:
        InputError: a point array that VTK cannot hold (non-numeric, complex, > 2-D).
    """
    import vtk
    from vtk.util import numpy_support

    id_dtype = numpy_support.get_vtk_to_numpy_typemap()[vtk.VTK_ID_TYPE]
    coords = mesh.vertices if vertices is None else np.asarray(vertices, dtype=np.float64)
    points = vtk.vtkPoints()
    points.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(coords, dtype=np.float64), deep=True))
    offsets = np.arange(0, 3 * mesh.n_faces + 1, 3).astype(id_dtype)
    connectivity = np.ascontiguousarray(mesh.faces.reshape(-1)).astype(id_dtype)
    cells = vtk.vtkCellArray()
    cells.SetData(numpy_support.numpy_to_vtkIdTypeArray(offsets, deep=True),
                  numpy_support.numpy_to_vtkIdTypeArray(connectivity, deep=True))
    poly = vtk.vtkPolyData()
    poly.SetPoints(points)
    poly.SetPolys(cells)
    if point_data:
        for name, values in mesh.point_data.items():
            _add_point_array(poly, str(name), np.asarray(values))
    return poly


def _add_point_array(poly, name: str, arr: np.ndarray) -> None:
    from vtk.util import numpy_support

    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr) or arr.ndim > 2:
        raise InputError(f"point_data[{name!r}]: cannot store dtype {arr.dtype} with shape {arr.shape} in VTK")
    array = numpy_support.numpy_to_vtk(np.ascontiguousarray(arr), deep=True)
    array.SetName(name)
    poly.GetPointData().AddArray(array)
    if name.lower() == "normals" and arr.ndim == 2 and arr.shape[1] == 3:
        poly.GetPointData().SetNormals(array)


def mesh_from_polydata(poly, *, name: str = "mesh", point_data: bool = True) -> TriangleMesh:
    """A ``TriangleMesh`` copy of a polydata's surface cells.

    Polygons and triangle strips are triangulated; vertex and line cells are
    ignored, and points no triangle uses are dropped (with their point data),
    so the mesh holds exactly the surface.

    Args:
        poly: vtkPolyData.
        name: Names the input in error messages.
        point_data: Also copy named numeric point arrays (string arrays are skipped).

    Returns:
        TriangleMesh (float64 vertices, int64 faces) in the polydata's coordinates.

    Raises:
        InputError: no points ("empty"), or points but no surface triangles.
    """
    import vtk
    from vtk.util import numpy_support

    if poly is None or poly.GetNumberOfPoints() == 0:
        raise InputError(f"{name}: expected a surface with points, got an empty mesh")
    triangles = poly
    if not _only_triangles(poly):
        filt = vtk.vtkTriangleFilter()
        filt.SetInputData(poly)
        filt.PassVertsOff()
        filt.PassLinesOff()
        filt.Update()
        triangles = filt.GetOutput()
    polys = triangles.GetPolys()
    if polys is None or polys.GetNumberOfCells() == 0:
        raise InputError(f"{name}: has no surface triangles (only points or lines?)")
    faces = numpy_support.vtk_to_numpy(polys.GetConnectivityArray()).astype(np.int64).reshape(-1, 3)
    vertices = numpy_support.vtk_to_numpy(triangles.GetPoints().GetData()).astype(np.float64)
    data = {}
    if point_data:
        pd = triangles.GetPointData()
        for i in range(pd.GetNumberOfArrays()):
            arr = pd.GetArray(i)  # None for string arrays, which have no numeric meaning here
            if arr is not None and arr.GetName():
                data[arr.GetName()] = np.array(numpy_support.vtk_to_numpy(arr))
    used = np.unique(faces)
    if len(used) < len(vertices):
        remap = np.full(len(vertices), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        faces, vertices = remap[faces], vertices[used]
        data = {k: v[used] for k, v in data.items()}
    return TriangleMesh(np.array(vertices), faces, data)


def _only_triangles(poly) -> bool:
    """True if every cell is a triangle polygon (no strips, verts or lines to convert or drop)."""
    from vtk.util import numpy_support

    if poly.GetNumberOfStrips() or poly.GetNumberOfVerts() or poly.GetNumberOfLines():
        return False
    polys = poly.GetPolys()
    if polys is None or polys.GetNumberOfCells() == 0:
        return False
    offsets = numpy_support.vtk_to_numpy(polys.GetOffsetsArray())
    return bool(np.all(np.diff(offsets) == 3))
