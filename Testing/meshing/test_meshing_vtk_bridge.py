"""TriangleMesh ⇄ vtkPolyData: exact round trip, triangulation, dropped points, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import vtk

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.meshing.vtk_bridge import mesh_from_polydata, polydata_from_mesh


def _tetra():
    v = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]], dtype=np.float64) + [5.0, -3.0, 2.0]
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return TriangleMesh(v, f, {"t": np.arange(4.0), "Normals": np.eye(4)[:, :3], "flag": np.array([1, 0, 1, 0], bool)})


def test_round_trip_is_exact_and_copies():
    mesh = _tetra()
    poly = polydata_from_mesh(mesh)
    assert poly.GetPointData().GetNormals().GetName() == "Normals"
    mesh.vertices[0, 0] = 1e6  # the polydata holds its own copy
    back = mesh_from_polydata(poly)
    np.testing.assert_array_equal(back.vertices, _tetra().vertices)
    np.testing.assert_array_equal(back.faces, _tetra().faces)
    np.testing.assert_array_equal(back.point_data["t"], np.arange(4.0))
    assert back.point_data["flag"].dtype == np.uint8 and back.point_data["flag"].tolist() == [1, 0, 1, 0]
    assert back.signed_volume() == pytest.approx(1000.0 / 6.0)


def test_other_coordinates_and_no_point_data():
    mesh = _tetra()
    poly = polydata_from_mesh(mesh, point_data=False, vertices=mesh.vertices * 2.0)
    assert poly.GetPointData().GetNumberOfArrays() == 0
    np.testing.assert_array_equal(mesh_from_polydata(poly).vertices, mesh.vertices * 2.0)


def test_quads_and_strips_are_triangulated_and_unused_points_dropped():
    cube = vtk.vtkCubeSource()
    cube.Update()
    poly = vtk.vtkPolyData()
    poly.DeepCopy(cube.GetOutput())
    points = poly.GetPoints()
    points.InsertNextPoint(100.0, 100.0, 100.0)  # used by a line cell only
    lines = vtk.vtkCellArray()
    lines.InsertNextCell(2, [0, points.GetNumberOfPoints() - 1])
    poly.SetLines(lines)
    poly.GetPointData().Initialize()
    mesh = mesh_from_polydata(poly)
    assert (mesh.n_faces, mesh.n_vertices) == (12, 24)
    assert mesh.vertices.max() == pytest.approx(0.5) and mesh.area() == pytest.approx(6.0)


def test_refusals_name_the_input():
    with pytest.raises(InputError, match="model: .*empty"):
        mesh_from_polydata(vtk.vtkPolyData(), name="model")
    only_points = vtk.vtkPolyData()
    pts = vtk.vtkPoints()
    pts.InsertNextPoint(0.0, 0.0, 0.0)
    only_points.SetPoints(pts)
    with pytest.raises(InputError, match="no surface triangles"):
        mesh_from_polydata(only_points)
    bad = TriangleMesh(_tetra().vertices, _tetra().faces, {"s": np.array(["a", "b", "c", "d"])})
    with pytest.raises(InputError, match=r"point_data\['s'\]"):
        polydata_from_mesh(bad)
