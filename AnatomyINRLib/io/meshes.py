"""Read and write triangle meshes (``.vtp .vtk .stl .ply .obj``) with VTK.

Frame convention (the library works in RAS mm), following 3D Slicer's model
storage node (``Libs/MRML/Core/vtkMRMLModelStorageNode.cxx``):

* Slicer writes models in **LPS** and records the frame in the file: the
  ``.vtk`` header line and the ``.stl`` header contain ``SPACE=LPS`` (or
  ``SPACE=RAS``), ``.ply`` has a ``SPACE=…`` comment, ``.obj`` a leading
  comment line, and ``.vtp`` a field-data string array named ``SPACE``.
* Reading with ``coordinate_system="auto"`` honours that tag; a file without
  one is taken as **LPS**, which is what Slicer assumes for such files (its
  storage node defaults to LPS). So a mesh opened here and the same file
  opened in Slicer land at the same RAS position. Pass "RAS" or "LPS" to
  override the tag.
* Writing defaults to LPS with the tag, so Slicer loads the file correctly.

RAS ↔ LPS negates x and y (a rotation, determinant +1), so it never changes
the orientation of faces. Per-vertex direction arrays (the VTK normals/vectors
attributes, or an array named "Normals" on writing) are converted with the
points. Only ``.vtk`` and ``.vtp`` store point arrays; STL/PLY/OBJ keep geometry only.
"""

from __future__ import annotations

import contextlib
import io as _stdio
import os
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from AnatomyINRLib.core.errors import InputError, OutputError
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.io.atomic import atomic_path
from AnatomyINRLib.io.formats import check_readable, format_of

_FLIP = np.array([-1.0, -1.0, 1.0])
_TAG = "AnatomyINR output. SPACE={frame}"


def read_mesh(path: "str | os.PathLike", *, orient_closed: bool = True, coordinate_system: str = "auto") -> TriangleMesh:
    """Read a surface mesh into RAS mm.

    Polygons and strips are triangulated; lines and vertex cells are dropped,
    as are points no triangle uses. Numeric point arrays go to ``point_data``.

    Args:
        path: ``.vtp``, ``.vtk`` (polydata), ``.stl``, ``.ply`` or ``.obj`` file.
        orient_closed: If the mesh is closed (every edge shared by exactly two
            triangles) and its signed volume is negative, reverse every face so
            normals point outward (files such as the vmtk aorta face inward).
            Open meshes are never changed.
        coordinate_system: "auto" (the file's SPACE tag, else LPS), "LPS" or "RAS".

    Returns:
        TriangleMesh with vertices in RAS mm and int64 faces.

    Raises:
        InputError: missing/unreadable/corrupt file, unknown extension, no triangles.
    """
    return read_mesh_with_frame(path, orient_closed=orient_closed, coordinate_system=coordinate_system)[0]


def read_mesh_with_frame(path: "str | os.PathLike", *, orient_closed: bool = True,
                         coordinate_system: str = "auto") -> tuple:
    """:func:`read_mesh`, also saying which frame the file was read in and why.

    Returns:
        (TriangleMesh in RAS mm, frame "LPS" or "RAS", source) with source one of
        "file" (a SPACE tag), "default" (no tag: LPS assumed, as Slicer does) or
        "given" (``coordinate_system`` chose it).
    """
    ext = format_of(path, "mesh")
    path = check_readable(path)
    frame = _check_frame(coordinate_system, allow_auto=True)
    with _vtk_messages() as messages:
        poly, file_frame = _read_polydata(path, ext)
    if poly is None or poly.GetNumberOfPoints() == 0:
        detail = _first_error(messages) or "no points found"
        raise InputError(f"path {str(path)!r}: could not read a {ext} mesh ({detail})")
    source = "given"
    if frame == "auto":
        frame, source = (file_frame, "file") if file_frame else ("LPS", "default")
    vertices, faces, point_data = _polydata_to_arrays(path, poly, lps=(frame == "LPS"))
    mesh = TriangleMesh(vertices, faces, point_data)
    if orient_closed:
        mesh = orient_outward(mesh, _direction_names(poly))
    return mesh, frame, source


def write_mesh(mesh: TriangleMesh, path: "str | os.PathLike", *, coordinate_system: str = "LPS") -> None:
    """Write a mesh atomically, tagged with its frame the way Slicer does.

    Args:
        mesh: Mesh in RAS mm.
        path: ``.vtp``, ``.vtk``, ``.stl``, ``.ply`` or ``.obj``.
        coordinate_system: Frame of the file, "LPS" (Slicer's default) or "RAS".

    Raises:
        InputError: not a TriangleMesh, bad coordinate_system, or a point array
            that cannot be stored.
        OutputError: unsupported extension, unwritable location, or VTK failed.
    """
    if not isinstance(mesh, TriangleMesh):
        raise InputError(f"mesh: expected a TriangleMesh, got {type(mesh).__name__}")
    ext = format_of(path, "mesh", writing=True)
    frame = _check_frame(coordinate_system, allow_auto=False)
    with atomic_path(path) as tmp:
        if ext == ".obj":
            tmp.write_text(_obj_text(mesh, frame), encoding="utf-8")
            return
        poly = _arrays_to_polydata(mesh, frame, with_data=ext in (".vtk", ".vtp"))
        with _vtk_messages() as messages:
            ok = _write_polydata(poly, tmp, ext, frame)
        if not ok or _first_error(messages) or not tmp.exists() or tmp.stat().st_size == 0:
            raise OutputError(f"output {str(path)!r}: VTK failed to write the mesh ({_first_error(messages) or 'no file written'})")


def is_closed(faces: np.ndarray) -> bool:
    """True if every undirected edge of the (F, 3) faces is shared by exactly two faces."""
    faces = np.asarray(faces, dtype=np.int64)
    if faces.size == 0:
        return False
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    keys = edges[:, 0] * (int(faces.max()) + 1) + edges[:, 1]
    _, counts = np.unique(keys, return_counts=True)
    return bool(np.all(counts == 2))


def orient_outward(mesh: TriangleMesh, direction_arrays: tuple = ()) -> TriangleMesh:
    """Reverse all faces of a closed mesh whose signed volume is negative.

    The whole mesh is flipped at once (not per component), so a consistently
    wound shell with an inner cavity keeps its inward-facing cavity wall.

    Args:
        mesh: Mesh to check.
        direction_arrays: Names of per-vertex normal arrays to negate with the faces.

    Returns:
        ``mesh`` itself if nothing changes, else a new mesh.
    """
    if not is_closed(mesh.faces) or mesh.signed_volume() >= 0.0:
        return mesh
    data = dict(mesh.point_data)
    for name in direction_arrays:
        if name in data:
            data[name] = -data[name]
    return TriangleMesh(mesh.vertices, mesh.faces[:, [0, 2, 1]], data)


# ----------------------------------------------------------------------------- helpers


def _check_frame(value, allow_auto: bool) -> str:
    text = str(value).strip()
    if allow_auto and text.lower() == "auto":
        return "auto"
    if text.upper() not in ("LPS", "RAS"):
        choices = "'auto', 'LPS' or 'RAS'" if allow_auto else "'LPS' or 'RAS'"
        raise InputError(f"coordinate_system: expected {choices}, got {value!r}")
    return text.upper()


@contextlib.contextmanager
def _vtk_messages() -> Iterator:
    """Collect VTK error/warning text instead of printing it (restored afterwards)."""
    import vtk

    window = vtk.vtkStringOutputWindow()
    previous = vtk.vtkOutputWindow.GetInstance()
    cutoff = vtk.vtkLogger.GetCurrentVerbosityCutoff()
    vtk.vtkOutputWindow.SetInstance(window)
    vtk.vtkLogger.SetStderrVerbosity(vtk.vtkLogger.VERBOSITY_OFF)
    try:
        yield window
    finally:
        vtk.vtkOutputWindow.SetInstance(previous)
        vtk.vtkLogger.SetStderrVerbosity(cutoff)


def _first_error(window) -> str:
    lines = [ln.strip() for ln in window.GetOutput().splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("ERROR") and i + 1 < len(lines):
            text = lines[i + 1]
            return text.split("): ", 1)[-1] if "): " in text else text
    return ""


def _frame_from_text(text: Optional[str]) -> Optional[str]:
    if not text:
        return None
    if "SPACE=RAS" in text:
        return "RAS"
    if "SPACE=LPS" in text:
        return "LPS"
    return None


def _read_polydata(path: Path, ext: str):
    """(vtkPolyData or None, frame tag or None) for one file."""
    import vtk

    name = str(path)
    if ext == ".vtp":
        reader = vtk.vtkXMLPolyDataReader()
        reader.SetFileName(name)
        reader.Update()
        poly = reader.GetOutput()
        space = poly.GetFieldData().GetAbstractArray("SPACE") if poly is not None else None
        frame = None
        if space is not None and space.GetNumberOfValues() > 0:
            frame = _frame_from_text("SPACE=" + str(space.GetValue(0)).strip().upper())
        return poly, frame
    if ext == ".vtk":
        reader = vtk.vtkPolyDataReader()
        reader.SetFileName(name)
        if not reader.IsFilePolyData():
            raise InputError(f"path {name!r}: not a VTK polydata file (unstructured grids and images are not surfaces)")
        reader.ReadAllScalarsOn()
        reader.ReadAllVectorsOn()
        reader.ReadAllNormalsOn()
        reader.ReadAllFieldsOn()
        reader.Update()
        return reader.GetOutput(), _frame_from_text(reader.GetHeader())
    if ext == ".stl":
        reader = vtk.vtkSTLReader()
        reader.SetFileName(name)
        reader.Update()
        return reader.GetOutput(), _frame_from_text(reader.GetHeader())
    if ext == ".ply":
        reader = vtk.vtkPLYReader()
        reader.SetFileName(name)
        reader.Update()
        comments = reader.GetComments()
        text = " ".join(comments.GetValue(i) for i in range(comments.GetNumberOfValues()))
        return reader.GetOutput(), _frame_from_text(text)
    reader = vtk.vtkOBJReader()
    reader.SetFileName(name)
    reader.Update()
    return reader.GetOutput(), _frame_from_text(reader.GetComment())


def _direction_names(poly) -> tuple:
    pd = poly.GetPointData()
    return tuple(a.GetName() for a in (pd.GetNormals(), pd.GetVectors()) if a is not None and a.GetName())


def _polydata_to_arrays(path: Path, poly, lps: bool):
    """Triangulated (vertices RAS, faces, point_data) with unused points removed."""
    from AnatomyINRLib.meshing.vtk_bridge import mesh_from_polydata

    mesh = mesh_from_polydata(poly, name=f"path {str(path)!r}")
    vertices, data = mesh.vertices, dict(mesh.point_data)
    if lps:
        vertices = vertices * _FLIP
        for name in _direction_names(poly):
            if name in data and data[name].ndim == 2 and data[name].shape[1] == 3:
                data[name] = data[name] * _FLIP
    return vertices, mesh.faces, data


def _arrays_to_polydata(mesh: TriangleMesh, frame: str, with_data: bool):
    """vtkPolyData of the mesh in the file's frame (points and "normals" negated in x, y for LPS)."""
    from AnatomyINRLib.meshing.vtk_bridge import polydata_from_mesh

    flip = _FLIP if frame == "LPS" else np.ones(3)
    if not with_data:
        return polydata_from_mesh(mesh, point_data=False, vertices=mesh.vertices * flip)
    data = {}
    for name, values in mesh.point_data.items():
        arr = np.asarray(values)
        is_normals = str(name).lower() == "normals" and arr.ndim == 2 and arr.shape[1] == 3
        data[name] = arr * flip if is_normals and np.issubdtype(arr.dtype, np.number) else arr
    framed = TriangleMesh(mesh.vertices * flip, mesh.faces, data)
    return polydata_from_mesh(framed)


def _write_polydata(poly, tmp: Path, ext: str, frame: str) -> bool:
    import vtk

    tag = _TAG.format(frame=frame)
    if ext == ".vtp":
        space = vtk.vtkStringArray()
        space.SetName("SPACE")  # Slicer reads the frame from this field-data array
        space.InsertNextValue(frame)
        poly.GetFieldData().AddArray(space)
        writer = vtk.vtkXMLPolyDataWriter()
        writer.SetDataModeToAppended()
        writer.SetCompressorTypeToZLib()
    elif ext == ".vtk":
        writer = vtk.vtkPolyDataWriter()
        writer.SetFileVersion(42)  # legacy 4.2: readable by Slicer < 5 and most other tools
        writer.SetFileTypeToBinary()
        writer.SetHeader(tag)
    elif ext == ".stl":
        writer = vtk.vtkSTLWriter()
        writer.SetFileTypeToBinary()
        writer.SetHeader(tag)
    else:
        writer = vtk.vtkPLYWriter()
        writer.SetFileTypeToBinary()
        writer.AddComment(f"SPACE={frame}")
    writer.SetInputData(poly)
    writer.SetFileName(str(tmp))
    return bool(writer.Write())


def _obj_text(mesh: TriangleMesh, frame: str) -> str:
    """Wavefront OBJ with the frame comment first (vtkOBJWriter cannot write comments)."""
    flip = _FLIP if frame == "LPS" else np.ones(3)
    out = _stdio.StringIO()
    out.write(f"# {_TAG.format(frame=frame)}\n")
    np.savetxt(out, mesh.vertices * flip, fmt="v %.17g %.17g %.17g")
    np.savetxt(out, mesh.faces + 1, fmt="f %d %d %d")
    return out.getvalue()
