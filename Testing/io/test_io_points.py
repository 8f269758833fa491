"""Point-set files: Slicer markups (LPS/RAS), fcsv, text, npy, and every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import PointSet
from AnatomyINRLib.io import read_points, write_points
from AnatomyINRLib.io.points import MARKUPS_SCHEMA


def _markups(points, **markup):
    cps = []
    for i, p in enumerate(points):
        cp = {"id": str(i + 1), "label": f"F-{i + 1}", "position": list(p), "positionStatus": "defined"}
        cps.append(cp)
    return {"@schema": MARKUPS_SCHEMA, "markups": [{"type": "Fiducial", **markup, "controlPoints": cps}]}


def _write_json(path, data):
    path.write_text(json.dumps(data))
    return path


# ----------------------------------------------------------------------------- .mrk.json


def test_markups_lps_point_becomes_ras(tmp_path):
    # What Slicer writes for a point at RAS (-1, -2, 3): LPS (1, 2, 3).
    path = _write_json(tmp_path / "p.mrk.json", _markups([[1.0, 2.0, 3.0]], coordinateSystem="LPS"))
    ps = read_points(path)
    np.testing.assert_array_equal(ps.points, [[-1.0, -2.0, 3.0]])
    assert ps.labels == ["F-1"] and ps.normals is None


def test_markups_default_frame_is_lps_and_ras_is_honoured(tmp_path):
    no_frame = _write_json(tmp_path / "a.mrk.json", _markups([[1.0, 2.0, 3.0]]))
    ras = _write_json(tmp_path / "b.mrk.json", _markups([[1.0, 2.0, 3.0]], coordinateSystem="RAS"))
    np.testing.assert_array_equal(read_points(no_frame).points, [[-1.0, -2.0, 3.0]])
    np.testing.assert_array_equal(read_points(ras).points, [[1.0, 2.0, 3.0]])


def test_markups_curve_skips_undefined_and_reads_first_markup_only(tmp_path):
    data = _markups([[0, 0, 0], [1, 1, 1], [2, 2, 2]], type="Curve", coordinateSystem="RAS")
    data["markups"][0]["type"] = "ClosedCurve"
    data["markups"][0]["controlPoints"][1] = {"id": "2", "label": "gap", "positionStatus": "undefined"}
    data["markups"].append(_markups([[9, 9, 9]])["markups"][0])
    with pytest.warns(UserWarning, match="holds 2 markups .*using only the first"):
        ps = read_points(_write_json(tmp_path / "c.mrk.json", data))
    np.testing.assert_array_equal(ps.points, [[0, 0, 0], [2, 2, 2]])
    assert ps.labels == ["F-1", "F-3"]


def test_markups_micrometre_units(tmp_path):
    path = _write_json(tmp_path / "u.mrk.json", _markups([[1000.0, 0, 500.0]], coordinateSystem="RAS", coordinateUnits="um"))
    np.testing.assert_allclose(read_points(path).points, [[1.0, 0.0, 0.5]])


def test_markups_written_like_slicer(tmp_path):
    ps = PointSet(np.array([[-1.0, -2.0, 3.0], [4.5, 5.5, -6.5]]), labels=["a", "b"])
    path = tmp_path / "out.mrk.json"
    write_points(ps, path)
    data = json.loads(path.read_text())
    assert data["@schema"] == MARKUPS_SCHEMA
    markup = data["markups"][0]
    assert markup["type"] == "Fiducial" and markup["coordinateSystem"] == "LPS"
    assert markup["controlPoints"][0]["position"] == [1.0, 2.0, 3.0]
    assert all(cp["positionStatus"] == "defined" for cp in markup["controlPoints"])
    back = read_points(path)
    np.testing.assert_array_equal(back.points, ps.points)
    assert back.labels == ["a", "b"]


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "corrupt JSON"),
        ('{"@schema": "x", "markups": []}', "markups"),
        ('[1, 2]', "markups"),
        (json.dumps(_markups([[1, 2]])), "position"),
        (json.dumps(_markups([[1, 2, 3]], coordinateSystem="XYZ")), "coordinateSystem"),
        (json.dumps(_markups([[1, 2, 3]], coordinateUnits="cm")), "coordinateUnits"),
        (json.dumps(_markups([])), "no defined control points"),
        ('{"markups": [{"type": "Fiducial", "controlPoints": [{"position": [NaN, 0, 0]}]}]}', "NaN"),
    ],
)
def test_markups_bad_content(tmp_path, content, match):
    path = tmp_path / "bad.mrk.json"
    path.write_text(content)
    with pytest.raises(InputError, match=match) as info:
        read_points(path)
    assert "bad.mrk.json" in str(info.value)


# ----------------------------------------------------------------------------- .fcsv

_FCSV_HEADER = "# Markups fiducial file version = 5.6\n# CoordinateSystem = {cs}\n# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n"


@pytest.mark.parametrize("cs, sign", [("LPS", -1.0), ("1", -1.0), ("RAS", 1.0), ("0", 1.0)])
def test_fcsv_coordinate_system_header(tmp_path, cs, sign):
    path = tmp_path / "f.fcsv"
    path.write_text(_FCSV_HEADER.format(cs=cs) + "vtkMRMLMarkupsFiducialNode_0,1,2,3,0,0,0,1,1,1,0,tip,,\n")
    ps = read_points(path)
    np.testing.assert_array_equal(ps.points, [[sign * 1.0, sign * 2.0, 3.0]])
    assert ps.labels == ["tip"]


def test_fcsv_without_coordinate_line_is_ras_and_quoted_labels(tmp_path):
    path = tmp_path / "old.fcsv"
    path.write_text(
        "# Markups fiducial file version = 4.6\n"
        "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n"
        '1,1.5,-2,3,0,0,0,1,1,1,0,"left, upper",,\n'
    )
    ps = read_points(path)
    np.testing.assert_array_equal(ps.points, [[1.5, -2.0, 3.0]])
    assert ps.labels == ["left, upper"]


def test_fcsv_round_trip_is_lps_on_disk(tmp_path):
    ps = PointSet(np.array([[-1.0, -2.0, 3.0], [0.1, 0.2, 0.3]]), labels=["a,b", 'q"x'])
    path = tmp_path / "o.fcsv"
    write_points(ps, path)
    text = path.read_text()
    assert "# CoordinateSystem = LPS" in text and "\n1,1.0,2.0,3.0," in text
    back = read_points(path)
    np.testing.assert_array_equal(back.points, ps.points)
    assert back.labels == ["a,b", 'q"x']


def test_fcsv_non_numeric_coordinate(tmp_path):
    path = tmp_path / "bad.fcsv"
    path.write_text(_FCSV_HEADER.format(cs="LPS") + "1,one,2,3,0,0,0,1,1,1,0,a,,\n")
    with pytest.raises(InputError, match=r"line 4.*not a number"):
        read_points(path)


def test_fcsv_bad_coordinate_system(tmp_path):
    path = tmp_path / "bad.fcsv"
    path.write_text(_FCSV_HEADER.format(cs="IJK") + "1,1,2,3\n")
    with pytest.raises(InputError, match="CoordinateSystem"):
        read_points(path)


# ----------------------------------------------------------------------------- text and npy


@pytest.mark.parametrize("sep", [",", " ", "\t", ";", "  \t "])
def test_text_separators(tmp_path, sep):
    path = tmp_path / "p.txt"
    path.write_text(f"1{sep}2{sep}3\n4.5{sep}-5{sep}6e1\n")
    np.testing.assert_array_equal(read_points(path).points, [[1, 2, 3], [4.5, -5, 60]])


def test_text_header_normals_and_lps_comment(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("# exported, CoordinateSystem = LPS\nX,Y,Z,NX,NY,NZ\n1,2,3,0,0,2\n\n4,5,6,3,0,0\n")
    ps = read_points(path)
    np.testing.assert_array_equal(ps.points, [[-1, -2, 3], [-4, -5, 6]])
    np.testing.assert_allclose(ps.normals, [[0, 0, 1], [-1, 0, 0]])  # normalised and flipped


def test_text_header_selects_named_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("label,z,y,x,score\ntip,3,2,1,0.5\n")
    ps = read_points(path)
    np.testing.assert_array_equal(ps.points, [[1, 2, 3]])
    assert ps.labels == ["tip"] and ps.normals is None


@pytest.mark.parametrize(
    "content, match",
    [
        ("1,2\n3,4\n", "expected 3 columns"),
        ("1,2,3\n4,5,6,7\n", "different numbers of columns"),
        ("1,2,3\n4,five,6\n", r"line 2.*'five' is not a number"),
        ("1,2,3\nnan,5,6\n", "NaN or infinity"),
        ("1,2,3\n4,inf,6\n", "NaN or infinity"),
        ("", "no points"),
        ("# only a comment\nx,y,z\n", "no points"),
        ("1,2,3,0,0,0\n", "non-zero"),
    ],
)
def test_text_bad_content(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=match) as info:
        read_points(path)
    assert "bad.csv" in str(info.value)


def test_text_not_utf8(tmp_path):
    path = tmp_path / "bin.txt"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(InputError, match="UTF-8"):
        read_points(path)


@pytest.mark.parametrize("ext", [".csv", ".txt", ".npy"])
def test_text_and_npy_round_trip_with_normals(tmp_path, ext):
    rng = np.random.default_rng(3)
    normals = rng.normal(size=(20, 3))
    ps = PointSet(rng.normal(size=(20, 3)) * 50, normals / np.linalg.norm(normals, axis=1, keepdims=True))
    path = tmp_path / f"p{ext}"
    write_points(ps, path)
    back = read_points(path)
    np.testing.assert_array_equal(back.points, ps.points)
    np.testing.assert_allclose(back.normals, ps.normals, atol=1e-15)


def test_text_written_in_lps_reads_back_in_ras(tmp_path):
    ps = PointSet(np.array([[1.0, 2.0, 3.0]]))
    path = tmp_path / "p.csv"
    write_points(ps, path, coordinate_system="LPS")
    assert "-1.0,-2.0,3.0" in path.read_text()
    np.testing.assert_array_equal(read_points(path).points, ps.points)


def test_npy_cannot_be_lps(tmp_path):
    with pytest.raises(InputError, match="RAS"):
        write_points(PointSet(np.zeros((1, 3))), tmp_path / "p.npy", coordinate_system="LPS")
    with pytest.raises(InputError, match="coordinate_system"):
        write_points(PointSet(np.zeros((1, 3))), tmp_path / "p.csv", coordinate_system="IJK")


@pytest.mark.parametrize(
    "array, match",
    [
        (np.zeros((4, 4)), r"\(N, 3\) or \(N, 6\)"),
        (np.zeros(3), r"\(N, 3\) or \(N, 6\)"),
        (np.zeros((0, 3)), "no points"),
        (np.array([[1.0, np.nan, 2.0]]), "NaN"),
        (np.array([["a", "b", "c"]]), "numeric"),
    ],
)
def test_npy_bad_arrays(tmp_path, array, match):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(InputError, match=match):
        read_points(path)


def test_npy_pickled_objects_refused(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="obj.npy"):
        read_points(path)


def test_npy_corrupt(tmp_path):
    path = tmp_path / "c.npy"
    path.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="not a readable .npy"):
        read_points(path)


# ----------------------------------------------------------------------------- files


def test_missing_file_folder_and_unknown_extension(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_points(tmp_path / "missing.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(InputError, match="folder"):
        read_points(tmp_path / "dir.csv")
    (tmp_path / "p.xyz").write_text("1 2 3\n")
    with pytest.raises(InputError, match=r"unsupported points file type \(\.xyz\)"):
        read_points(tmp_path / "p.xyz")


def test_write_requires_pointset(tmp_path):
    with pytest.raises(InputError, match="PointSet"):
        write_points(np.zeros((2, 3)), tmp_path / "p.csv")
