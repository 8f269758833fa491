"""VTK objects and Slicer array layouts ⇄ AnatomyINRLib core types (no Slicer needed).

Everything here needs only ``vtk`` and ``numpy``, so it is tested outside Slicer;
``mrml_convert.py`` adds the few MRML-node calls on top.

Index order: Slicer's ``arrayFromVolume`` returns voxels indexed ``[k, j, i]``
(KJI); the library's ``ImageGrid.array`` is ``[i, j, k]``. :func:`ijkFromKji`
and :func:`kjiFromIjk` are the only places that swap them.
"""

from __future__ import annotations

import numpy as np
import vtk

from AnatomyINRLib.core.types import TriangleMesh


def ijkFromKji(array: np.ndarray) -> np.ndarray:
    """(K, J, I) Slicer voxel array → contiguous (I, J, K) copy."""
    return np.ascontiguousarray(np.transpose(np.asarray(array), (2, 1, 0)))


def kjiFromIjk(array: np.ndarray) -> np.ndarray:
    """(I, J, K) library voxel array → contiguous (K, J, I) copy for Slicer."""
    return np.ascontiguousarray(np.transpose(np.asarray(array), (2, 1, 0)))


def arrayFromMatrix(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    """(4, 4) float64 copy of a ``vtkMatrix4x4``."""
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)], dtype=np.float64)


def matrixFromArray(array: np.ndarray) -> vtk.vtkMatrix4x4:
    """New ``vtkMatrix4x4`` holding a (4, 4) array."""
    values = np.asarray(array, dtype=np.float64)
    if values.shape != (4, 4):
        raise ValueError(f"matrix: expected a 4x4 array, got shape {values.shape}")
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(values[r, c]))
    return matrix


def polyDataFromMesh(mesh: TriangleMesh) -> vtk.vtkPolyData:
    """A new ``vtkPolyData`` with the mesh's triangles (RAS mm) and point data.

    Point-data arrays of shape (V,) or (V, C) become VTK arrays of the same name.
    Faces keep their order (counter-clockwise seen from outside). The conversion
    itself is the library's (``AnatomyINRLib.meshing.vtk_bridge``).
    """
    from AnatomyINRLib.meshing.vtk_bridge import polydata_from_mesh

    return polydata_from_mesh(mesh)


def meshFromPolyData(polyData: vtk.vtkPolyData) -> TriangleMesh:
    """A ``TriangleMesh`` copy of a polydata's polygons (triangulated if needed).

    Raises:
        ValueError: the polydata has no points or no surface triangles.
    """
    from AnatomyINRLib.meshing.vtk_bridge import mesh_from_polydata

    return mesh_from_polydata(polyData, name="model")


def transformPoints(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(N, 3) points mapped by a (4, 4) homogeneous matrix (affine part only)."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:3, :3].T + matrix[:3, 3]


def tableFromRows(columns, rows) -> vtk.vtkTable:
    """A new ``vtkTable`` (for ``vtkMRMLTableNode.SetAndObserveTable``) from Python rows.

    Args:
        columns: ``(name, kind)`` per column; kind ``"string"`` or ``"double"``
            (numeric columns stay numbers, so Slicer's table view sorts and plots them).
        rows: Sequences with one value per column; ``None`` in a double column is NaN.

    Raises:
        ValueError: an unknown kind, or a row of the wrong length.
    """
    table = vtk.vtkTable()
    arrays = []
    for name, kind in columns:
        if kind not in ("string", "double"):
            raise ValueError(f"column {name!r}: kind expected 'string' or 'double', got {kind!r}")
        array = vtk.vtkStringArray() if kind == "string" else vtk.vtkDoubleArray()
        array.SetName(str(name))
        arrays.append((array, kind))
    for index, row in enumerate(rows):
        if len(row) != len(arrays):
            raise ValueError(f"row {index}: expected {len(arrays)} values, got {len(row)}")
        for (array, kind), value in zip(arrays, row):
            if kind == "string":
                array.InsertNextValue("" if value is None else str(value))
            else:
                array.InsertNextValue(float("nan") if value is None else float(value))
    for array, _ in arrays:
        table.AddColumn(array)
    return table
