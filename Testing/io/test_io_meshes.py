"""Mesh files: VTK formats, Slicer's SPACE tag, outward orientation, vendored vmtk data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
import vtk
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy

from AnatomyINRLib.core.errors import InputError, OutputError
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.io import read_mesh, write_mesh
from AnatomyINRLib.io.meshes import is_closed

# Vendored real data (see Testing/Data/README.md); a missing file fails the test, never skips it.
DATA = Path(__file__).resolve().parents[1] / "Data" / "vmtk"


def _sphere(offset=(10.0, -20.0, 30.0)) -> TriangleMesh:
    ico = trimesh.creation.icosphere(subdivisions=2, radius=5.0)
    return TriangleMesh(np.asarray(ico.vertices) + offset, np.asarray(ico.faces))


def _raw_vtp_points(path) -> np.ndarray:
    reader = vtk.vtkXMLPolyDataReader()
    reader.SetFileName(str(path))
    reader.Update()
    return vtk_to_numpy(reader.GetOutput().GetPoints().GetData())


# ----------------------------------------------------------------------------- shared data


def test_aorta_stl_is_oriented_outward():
    raw = read_mesh(DATA / "aorta-surface.stl", orient_closed=False)
    mesh = read_mesh(DATA / "aorta-surface.stl")
    assert mesh.n_vertices == 6468 and is_closed(mesh.faces)
    assert raw.signed_volume() == pytest.approx(-13184, rel=1e-3)
    assert mesh.signed_volume() == pytest.approx(13184, rel=1e-3)
    np.testing.assert_array_equal(mesh.faces, raw.faces[:, [0, 2, 1]])


def test_branch_split_vtp_keeps_group_ids_and_stays_open():
    mesh = read_mesh(DATA / "aorta-surface-branch-split.vtp")
    assert not is_closed(mesh.faces)
    groups = mesh.point_data["GroupIds"]
    assert groups.shape == (mesh.n_vertices,) and np.issubdtype(groups.dtype, np.integer)
    assert set(np.unique(groups).tolist()) == {0, 2, 3}
    unoriented = read_mesh(DATA / "aorta-surface-branch-split.vtp", orient_closed=False)
    np.testing.assert_array_equal(mesh.faces, unoriented.faces)  # open meshes are never flipped


def test_untagged_file_is_lps_like_slicer():
    auto = read_mesh(DATA / "aorta-surface.stl")
    ras = read_mesh(DATA / "aorta-surface.stl", coordinate_system="RAS")
    np.testing.assert_array_equal(auto.vertices, ras.vertices * [-1, -1, 1])


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", [".vtp", ".vtk", ".ply", ".obj"])
@pytest.mark.parametrize("frame", ["LPS", "RAS"])
def test_round_trip_exact(tmp_path, ext, frame):
    mesh = _sphere()
    path = tmp_path / f"m{ext}"
    write_mesh(mesh, path, coordinate_system=frame)
    back = read_mesh(path)  # the SPACE tag tells the reader the frame
    atol = 0.0 if ext != ".ply" else 1e-5  # PLY stores float32
    np.testing.assert_allclose(back.vertices, mesh.vertices, atol=atol, rtol=0)
    np.testing.assert_array_equal(back.faces, mesh.faces)
    flipped = read_mesh(path, coordinate_system="RAS" if frame == "LPS" else "LPS")
    np.testing.assert_allclose(flipped.vertices, mesh.vertices * [-1, -1, 1], atol=atol, rtol=0)


def test_stl_round_trip_float32(tmp_path):
    mesh = _sphere()
    write_mesh(mesh, tmp_path / "m.stl")
    back = read_mesh(tmp_path / "m.stl")
    assert back.n_faces == mesh.n_faces and back.n_vertices == mesh.n_vertices
    key = lambda v: v[np.lexsort(v.T)]  # noqa: E731 - the STL reader renumbers merged points
    np.testing.assert_allclose(key(back.vertices), key(mesh.vertices), atol=1e-5)
    assert back.signed_volume() == pytest.approx(mesh.signed_volume(), rel=1e-5)


@pytest.mark.parametrize("ext, tag", [(".vtk", b"SPACE=LPS"), (".stl", b"SPACE=LPS"), (".ply", b"SPACE=LPS"), (".obj", b"SPACE=LPS")])
def test_files_carry_slicer_space_tag(tmp_path, ext, tag):
    path = tmp_path / f"m{ext}"
    write_mesh(_sphere(), path)
    assert tag in path.read_bytes()[:400]


def test_vtp_space_field_data_and_lps_coordinates(tmp_path):
    mesh = _sphere()
    path = tmp_path / "m.vtp"
    write_mesh(mesh, path)
    reader = vtk.vtkXMLPolyDataReader()
    reader.SetFileName(str(path))
    reader.Update()
    space = reader.GetOutput().GetFieldData().GetAbstractArray("SPACE")
    assert space is not None and space.GetValue(0) == "LPS"
    np.testing.assert_array_equal(_raw_vtp_points(path), mesh.vertices * [-1, -1, 1])


def test_slicer_style_ras_vtp_read_as_ras(tmp_path):
    # A file tagged SPACE=RAS by Slicer (field-data array) keeps its coordinates.
    mesh = _sphere()
    poly = vtk.vtkPolyData()
    pts = vtk.vtkPoints()
    pts.SetData(numpy_to_vtk(mesh.vertices, deep=True))
    poly.SetPoints(pts)
    cells = vtk.vtkCellArray()
    for f in mesh.faces:
        cells.InsertNextCell(3, [int(i) for i in f])
    poly.SetPolys(cells)
    space = vtk.vtkStringArray()
    space.SetName("SPACE")
    space.InsertNextValue("RAS")
    poly.GetFieldData().AddArray(space)
    writer = vtk.vtkXMLPolyDataWriter()
    writer.SetInputData(poly)
    writer.SetFileName(str(tmp_path / "s.vtp"))
    writer.Write()
    np.testing.assert_array_equal(read_mesh(tmp_path / "s.vtp").vertices, mesh.vertices)


def test_point_data_and_normals_follow_frame_and_orientation(tmp_path):
    mesh = _sphere(offset=(0.0, 0.0, 0.0))
    outward = mesh.vertices / np.linalg.norm(mesh.vertices, axis=1, keepdims=True)
    inward = TriangleMesh(mesh.vertices, mesh.faces[:, ::-1], {"Normals": -outward, "thickness": np.arange(mesh.n_vertices) * 0.5})
    path = tmp_path / "m.vtp"
    write_mesh(inward, path)  # LPS on disk: stored normals have x and y negated
    back = read_mesh(path)
    assert back.signed_volume() > 0
    np.testing.assert_allclose(back.point_data["Normals"], outward)  # flipped with the faces
    np.testing.assert_array_equal(back.point_data["thickness"], inward.point_data["thickness"])
    kept = read_mesh(path, orient_closed=False)
    np.testing.assert_allclose(kept.point_data["Normals"], -outward)


def test_orientation_flips_inward_closed_mesh_only(tmp_path):
    mesh = _sphere()
    inward = TriangleMesh(mesh.vertices, mesh.faces[:, [0, 2, 1]])
    write_mesh(inward, tmp_path / "in.ply")
    assert read_mesh(tmp_path / "in.ply").signed_volume() == pytest.approx(mesh.signed_volume(), rel=1e-5)
    opened = TriangleMesh(inward.vertices, inward.faces[1:])
    write_mesh(opened, tmp_path / "open.vtk")
    np.testing.assert_array_equal(read_mesh(tmp_path / "open.vtk").faces, opened.faces)


def test_polygons_triangulated_lines_and_unused_points_dropped(tmp_path):
    poly = vtk.vtkPolyData()
    pts = vtk.vtkPoints()
    for p in [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (5, 5, 5), (6, 6, 6)]:
        pts.InsertNextPoint(p)
    poly.SetPoints(pts)
    quads = vtk.vtkCellArray()
    quads.InsertNextCell(4, [0, 1, 2, 3])
    poly.SetPolys(quads)
    lines = vtk.vtkCellArray()
    lines.InsertNextCell(2, [4, 5])
    poly.SetLines(lines)
    scalars = numpy_to_vtk(np.arange(6, dtype=np.float64), deep=True)
    scalars.SetName("value")
    poly.GetPointData().AddArray(scalars)
    writer = vtk.vtkXMLPolyDataWriter()
    writer.SetInputData(poly)
    writer.SetFileName(str(tmp_path / "quad.vtp"))
    writer.Write()
    mesh = read_mesh(tmp_path / "quad.vtp", coordinate_system="RAS")
    assert mesh.n_faces == 2 and mesh.n_vertices == 4
    np.testing.assert_array_equal(mesh.point_data["value"], [0, 1, 2, 3])
    assert mesh.area() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("ext, content", [
    (".stl", b"garbage" * 5),
    (".vtp", b"<VTKFile broken"),
    (".vtk", b"not a vtk file\n"),
    (".ply", b"ply\nformat nonsense\n"),
    (".obj", b"hello world\n"),
])
def test_corrupt_files_raise_input_error(tmp_path, ext, content):
    path = tmp_path / f"bad{ext}"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_mesh(path)
    assert f"bad{ext}" in str(info.value)


def test_lines_only_file_has_no_surface(tmp_path):
    (tmp_path / "l.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nl 1 2\nl 2 3\n")
    with pytest.raises(InputError, match="no surface triangles"):
        read_mesh(tmp_path / "l.obj")


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_mesh(tmp_path / "none.vtp")
    (tmp_path / "m.off").write_text("OFF\n")
    with pytest.raises(InputError, match="unsupported mesh"):
        read_mesh(tmp_path / "m.off")
    with pytest.raises(InputError, match="coordinate_system"):
        write_mesh(_sphere(), tmp_path / "m.vtp", coordinate_system="auto")
    with pytest.raises(InputError, match="unsupported mesh"):
        write_mesh(_sphere(), tmp_path / "m.off")
    with pytest.raises(InputError, match="TriangleMesh"):
        write_mesh(np.zeros((3, 3)), tmp_path / "m.vtp")


def test_read_rejects_bad_coordinate_system(tmp_path):
    write_mesh(_sphere(), tmp_path / "m.vtp")
    with pytest.raises(InputError, match="'auto', 'LPS' or 'RAS'"):
        read_mesh(tmp_path / "m.vtp", coordinate_system="IJK")
