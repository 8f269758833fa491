"""Read and write point sets: Slicer ``.mrk.json`` and ``.fcsv``, text ``.csv``/``.txt``, ``.npy``.

Frame conventions (the library works in RAS mm; files are converted on the way
in and out by negating x and y, since LPS = diag(−1, −1, 1) · RAS):

* ``.mrk.json``: per-markup ``coordinateSystem`` ("LPS" default, or "RAS") and
  ``coordinateUnits`` ("mm" default, or "um"), as Slicer's reader does. Only
  the first markup is read; control points whose ``positionStatus`` is
  "undefined" (placeholders with no position) are skipped. Written in LPS,
  like Slicer.
* ``.fcsv``: header ``# CoordinateSystem = LPS|RAS|0|1`` (0 = RAS, 1 = LPS,
  the integer form of Slicer < 4.11). A file without that line is RAS (legacy
  Slicer). Written in LPS.
* ``.csv``/``.txt``: RAS unless a comment line states otherwise, e.g.
  ``# CoordinateSystem = LPS`` (also ``# SPACE=LPS`` or ``# frame: LPS``).
  Columns are x y z, optionally nx ny nz (normals), separated by commas,
  semicolons, tabs or spaces; an optional header row names the columns
  (x, y, z, nx, ny, nz, label).
* ``.npy``: an (N, 3) or (N, 6) float array, always RAS (it has no header).

Normals are kept by the text and ``.npy`` formats only (rescaled to unit
length on reading; a zero normal is an error); Slicer markups have no
per-point normal, so writing normals there drops them. Count checks belong to
the fitter, not here.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
import os
import re
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import PointSet
from AnatomyINRLib.io.atomic import atomic_path
from AnatomyINRLib.io.formats import check_readable, format_of, strip_extension

MARKUPS_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
    "Resources/Schema/markups-schema-v1.0.3.json#"
)
_FLIP = np.array([-1.0, -1.0, 1.0])  # RAS <-> LPS, its own inverse
_UNITS_TO_MM = {"mm": 1.0, "um": 1e-3}
_FRAME_COMMENT = re.compile(r"(coordinate\s*system|space|frame)\s*[=:]\s*(lps|ras|0|1)\b", re.IGNORECASE)


def read_points(path: "str | os.PathLike", *, coordinate_system: str = "auto") -> PointSet:
    """Read a point set and return it in RAS mm.

    Args:
        path: ``.mrk.json``, ``.fcsv``, ``.csv``, ``.txt`` or ``.npy`` file.
        coordinate_system: "auto" (the file's own frame, see the module docstring),
            or "LPS"/"RAS" to override it.

    Returns:
        PointSet with (N, 3) RAS mm points, normals if the file has them,
        labels if the file has them (markups always have labels).

    Raises:
        InputError: missing/unreadable file, unknown extension, corrupt
            content, wrong shape, NaN/inf, or no points; the message names the path.
    """
    return read_points_with_frame(path, coordinate_system=coordinate_system)[0]


def read_points_with_frame(path: "str | os.PathLike", *, coordinate_system: str = "auto") -> tuple:
    """:func:`read_points`, also saying which frame the file was read in and why.

    Returns:
        (PointSet in RAS mm, frame "LPS" or "RAS", source) with source one of
        "file" (the file states its frame), "default" (it does not; the format's
        default was assumed) or "given" (``coordinate_system`` overrode it).
    """
    ext = format_of(path, "points")
    path = check_readable(path)
    want = _check_frame(None if coordinate_system == "auto" else coordinate_system, "auto")
    reader = {".npy": _read_npy, ".mrk.json": _read_markups_json, ".fcsv": _read_fcsv}.get(ext, _read_text_points)
    points, frame, stated = reader(path)
    if want == "auto":
        return points, frame, "file" if stated else "default"
    if want != frame:  # the file was converted from the wrong frame: LPS <-> RAS is its own inverse
        points = PointSet(points.points * _FLIP, None if points.normals is None else points.normals * _FLIP,
                          points.labels)
    return points, want, "given"


def write_points(points: PointSet, path: "str | os.PathLike", *, coordinate_system: Optional[str] = None) -> None:
    """Write a point set atomically.

    Args:
        points: Points in RAS mm.
        path: ``.mrk.json``, ``.fcsv``, ``.csv``, ``.txt`` or ``.npy``.
        coordinate_system: "LPS" or "RAS" frame of the file; None picks the
            format's default (LPS for Slicer markups, RAS for text and .npy).
            ``.npy`` can only be RAS.

    Raises:
        InputError: not a PointSet, or a bad coordinate_system.
        OutputError: unsupported extension or unwritable location.
    """
    if not isinstance(points, PointSet):
        raise InputError(f"points: expected a PointSet, got {type(points).__name__}")
    ext = format_of(path, "points", writing=True)
    slicer_format = ext in (".mrk.json", ".fcsv")
    frame = _check_frame(coordinate_system, "LPS" if slicer_format else "RAS")
    if ext == ".npy" and frame != "RAS":
        raise InputError("coordinate_system: .npy point files are always RAS (no header to record LPS)")
    xyz = points.points * _FLIP if frame == "LPS" else points.points
    normals = None if points.normals is None else (points.normals * _FLIP if frame == "LPS" else points.normals)
    with atomic_path(path) as tmp:
        if ext == ".npy":
            data = xyz if normals is None else np.hstack([xyz, normals])
            with open(tmp, "wb") as handle:
                np.save(handle, np.ascontiguousarray(data, dtype=np.float64), allow_pickle=False)
        elif ext == ".mrk.json":
            name = strip_extension(path).name
            tmp.write_text(_markups_json_text(xyz, points.labels, frame, name), encoding="utf-8")
        elif ext == ".fcsv":
            tmp.write_text(_fcsv_text(xyz, points.labels, frame), encoding="utf-8")
        else:
            sep = "," if ext == ".csv" else " "
            tmp.write_text(_text_table(xyz, normals, points.labels if sep == "," else None, frame, sep), encoding="utf-8")


# ----------------------------------------------------------------------------- helpers


def _check_frame(value: Optional[str], default: str) -> str:
    if value is None:
        return default
    frame = str(value).strip().upper()
    if frame not in ("LPS", "RAS"):
        raise InputError(f"coordinate_system: expected 'LPS' or 'RAS', got {value!r}")
    return frame


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"path {str(path)!r}: not a UTF-8 text file ({exc.reason})") from exc
    except OSError as exc:
        raise InputError(f"path {str(path)!r}: cannot be read ({exc.strerror or exc})") from exc


def _make_pointset(path: Path, xyz: np.ndarray, normals=None, labels=None) -> PointSet:
    """Build the PointSet; NaN/inf and shape problems are reported with the path."""
    if len(xyz) == 0:
        raise InputError(f"path {str(path)!r}: contains no points")
    bad = ~np.all(np.isfinite(xyz), axis=1)
    if normals is not None:
        bad |= ~np.all(np.isfinite(normals), axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise InputError(f"path {str(path)!r}: {int(bad.sum())} point(s) contain NaN or infinity (rows {rows}...)")
    if normals is not None:
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        if np.any(length < 1e-12):
            raise InputError(f"path {str(path)!r}: normals must be non-zero vectors; row {int(np.argmin(length))} is zero")
        normals = normals / length  # files often store unnormalised normals
    try:
        return PointSet(xyz, normals, labels)
    except InputError as exc:
        raise InputError(f"path {str(path)!r}: {exc}") from exc


def _read_npy(path: Path) -> PointSet:
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic != b"\x93NUMPY":
        # numpy would call any non-.npy bytes "pickled data", which misleads (a file of zeros is not a pickle).
        raise InputError(f"path {str(path)!r}: not a .npy file (no NumPy header); save points with numpy.save")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError... for corrupt files
        raise InputError(f"path {str(path)!r}: not a readable .npy array ({exc})") from exc
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[1] not in (3, 6):
        shape = getattr(arr, "shape", None)
        raise InputError(f"path {str(path)!r}: expected an (N, 3) or (N, 6) array (x y z [nx ny nz]), got shape {shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"path {str(path)!r}: expected a real numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    return _make_pointset(path, arr[:, :3], arr[:, 3:] if arr.shape[1] == 6 else None), "RAS", False


# ----------------------------------------------------------------------------- .mrk.json


def _read_markups_json(path: Path) -> PointSet:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"path {str(path)!r}: corrupt JSON ({exc.msg} at line {exc.lineno})") from exc
    markups = data.get("markups") if isinstance(data, dict) else None
    if not isinstance(markups, list) or not markups or not isinstance(markups[0], dict):
        raise InputError(f"path {str(path)!r}: not a Slicer markups file (expected a non-empty 'markups' list)")
    markup = markups[0]
    if len(markups) > 1:
        names = ", ".join(repr(m.get("name", f"#{i}")) if isinstance(m, dict) else f"#{i}" for i, m in enumerate(markups))
        warnings.warn(f"path {str(path)!r}: holds {len(markups)} markups ({names}); using only the first", stacklevel=3)
    stated = "coordinateSystem" in markup
    frame = str(markup.get("coordinateSystem", "LPS")).upper()
    if frame not in ("LPS", "RAS"):
        raise InputError(f"path {str(path)!r}: coordinateSystem must be LPS or RAS, got {markup.get('coordinateSystem')!r}")
    units = markup.get("coordinateUnits", "mm")
    units = units[0] if isinstance(units, list) and units else units
    if units not in _UNITS_TO_MM:
        raise InputError(f"path {str(path)!r}: coordinateUnits must be 'mm' or 'um', got {units!r}")
    control_points = markup.get("controlPoints", [])
    if not isinstance(control_points, list):
        raise InputError(f"path {str(path)!r}: 'controlPoints' must be a list")
    xyz, labels = [], []
    for index, cp in enumerate(control_points):
        if not isinstance(cp, dict):
            raise InputError(f"path {str(path)!r}: control point {index} is not an object")
        if str(cp.get("positionStatus", "defined")).lower() == "undefined":
            continue  # placeholder point the user has not placed yet
        xyz.append(_position(path, index, cp.get("position")))
        labels.append(str(cp.get("label", "")))
    xyz = np.array(xyz, dtype=np.float64).reshape(-1, 3) * _UNITS_TO_MM[units]
    if len(xyz) == 0:
        raise InputError(f"path {str(path)!r}: the first markup has no defined control points")
    if frame == "LPS":
        xyz = xyz * _FLIP
    return _make_pointset(path, xyz, None, labels), frame, stated


def _position(path: Path, index: int, value) -> list:
    try:
        pos = [float(v) for v in value]
    except (TypeError, ValueError):
        pos = []
    if len(pos) != 3:
        raise InputError(f"path {str(path)!r}: control point {index} needs a 'position' of 3 numbers, got {value!r}")
    return pos


def _markups_json_text(xyz: np.ndarray, labels, frame: str, name: str) -> str:
    # Identity orientation expressed in the file frame (Slicer writes it flipped in LPS).
    orient = [-1.0, -0.0, -0.0, -0.0, -1.0, -0.0, 0.0, 0.0, 1.0] if frame == "LPS" else [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    points = []
    for i, p in enumerate(xyz):
        points.append({
            "id": str(i + 1),
            "label": str(labels[i]) if labels is not None else f"{name}-{i + 1}",
            "description": "",
            "associatedNodeID": "",
            "position": [float(v) for v in p],
            "orientation": orient,
            "selected": True,
            "locked": False,
            "visibility": True,
            "positionStatus": "defined",
        })
    markup = {
        "type": "Fiducial",
        "coordinateSystem": frame,
        "coordinateUnits": "mm",
        "locked": False,
        "fixedNumberOfControlPoints": False,
        "labelFormat": "%N-%d",
        "lastUsedControlPointNumber": len(points),
        "controlPoints": points,
        "measurements": [],
    }
    return json.dumps({"@schema": MARKUPS_SCHEMA, "markups": [markup]}, indent=4) + "\n"


# ----------------------------------------------------------------------------- .fcsv


def _fcsv_frame(path: Path, value: str) -> str:
    token = value.strip().upper()
    if token in ("LPS", "1"):
        return "LPS"
    if token in ("RAS", "0"):
        return "RAS"
    raise InputError(f"path {str(path)!r}: CoordinateSystem must be LPS, RAS, 0 or 1, got {value.strip()!r}")


def _read_fcsv(path: Path) -> PointSet:
    frame, columns, versioned, rows, stated = "RAS", None, False, [], False
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            key = key.strip().lower()
            if key == "coordinatesystem":
                frame, stated = _fcsv_frame(path, value), True
            elif key == "columns":
                columns = [c.strip().lower() for c in value.split(",")]
            elif key.startswith("markups fiducial file version"):
                versioned = True
        elif line.strip():
            rows.append((lineno, next(csv.reader([line]))))
    if columns is not None:
        ix = [columns.index(c) if c in columns else -1 for c in ("x", "y", "z", "label")]
        if min(ix[:3]) < 0:
            raise InputError(f"path {str(path)!r}: '# columns' header lacks x, y or z")
    elif versioned:
        ix = [1, 2, 3, 11]  # id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,...
    else:
        ix = [1, 2, 3, 0]  # Slicer 3 fiducial list: label,x,y,z,sel,vis
    xyz, labels = _parse_rows(path, rows, ix[:3]), []
    for _, fields in rows:
        labels.append(fields[ix[3]] if 0 <= ix[3] < len(fields) else "")
    if frame == "LPS" and len(xyz):
        xyz = xyz * _FLIP
    return _make_pointset(path, xyz, None, labels), frame, stated


def _fcsv_text(xyz: np.ndarray, labels, frame: str) -> str:
    out = _stdio.StringIO()
    out.write("# Markups fiducial file version = 4.11\n")
    out.write(f"# CoordinateSystem = {frame}\n")
    out.write("# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n")
    writer = csv.writer(out, lineterminator="\n")
    for i, p in enumerate(xyz):
        label = str(labels[i]) if labels is not None else f"F-{i + 1}"
        writer.writerow([str(i + 1), *(repr(float(v)) for v in p), 0, 0, 0, 1, 1, 1, 0, label, "", ""])
    return out.getvalue()


# ----------------------------------------------------------------------------- .csv / .txt


def _split_fields(line: str) -> list:
    if "," in line:
        return [f.strip() for f in next(csv.reader([line]))]
    if ";" in line:
        return [f.strip() for f in line.split(";")]
    return line.split()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_rows(path: Path, rows: list, cols: list) -> np.ndarray:
    """Float matrix of the given columns of (line number, fields) rows."""
    out = np.empty((len(rows), len(cols)), dtype=np.float64)
    for r, (lineno, fields) in enumerate(rows):
        for c, col in enumerate(cols):
            if col >= len(fields):
                raise InputError(f"path {str(path)!r}: line {lineno} has {len(fields)} column(s), expected at least {col + 1}")
            try:
                out[r, c] = float(fields[col])
            except ValueError:
                raise InputError(f"path {str(path)!r}: line {lineno}, column {col + 1}: {fields[col]!r} is not a number") from None
    return out


def _read_text_points(path: Path) -> PointSet:
    frame, header, rows, stated = "RAS", None, [], False
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            match = _FRAME_COMMENT.search(text)
            if match:
                frame, stated = ("LPS" if match.group(2).upper() in ("LPS", "1") else "RAS"), True
            continue
        fields = _split_fields(text)
        if header is None and not rows and not all(_is_number(f) for f in fields):
            header = [f.lower() for f in fields]
            continue
        rows.append((lineno, fields))
    xyz_cols, normal_cols, label_col = _text_columns(path, header, rows)
    xyz = _parse_rows(path, rows, xyz_cols)
    normals = _parse_rows(path, rows, normal_cols) if normal_cols else None
    labels = [fields[label_col] if label_col < len(fields) else "" for _, fields in rows] if label_col is not None else None
    if frame == "LPS":
        xyz = xyz * _FLIP
        normals = None if normals is None else normals * _FLIP
    return _make_pointset(path, xyz, normals, labels), frame, stated


def _text_columns(path: Path, header, rows):
    """Column indices of xyz, normals (or None) and label (or None)."""
    if header is not None and all(c in header for c in ("x", "y", "z")):
        xyz = [header.index(c) for c in ("x", "y", "z")]
        normals = [header.index(c) for c in ("nx", "ny", "nz")] if all(c in header for c in ("nx", "ny", "nz")) else None
        label = header.index("label") if "label" in header else None
        return xyz, normals, label
    widths = {len(fields) for _, fields in rows}
    if len(widths) > 1:
        raise InputError(f"path {str(path)!r}: rows have different numbers of columns {sorted(widths)}")
    width = widths.pop() if widths else 3
    if width not in (3, 6):
        raise InputError(
            f"path {str(path)!r}: expected 3 columns (x y z) or 6 (x y z nx ny nz), got {width}; "
            "add a header row naming the columns x,y,z[,nx,ny,nz][,label] to use other layouts"
        )
    return [0, 1, 2], ([3, 4, 5] if width == 6 else None), None


def _text_table(xyz, normals, labels, frame: str, sep: str) -> str:
    out = _stdio.StringIO()
    out.write(f"# AnatomyINR points, units mm, CoordinateSystem = {frame}\n")
    names = ["x", "y", "z"] + (["nx", "ny", "nz"] if normals is not None else []) + (["label"] if labels is not None else [])
    data = xyz if normals is None else np.hstack([xyz, normals])
    if sep == ",":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        for i, row in enumerate(data):
            writer.writerow([repr(float(v)) for v in row] + ([str(labels[i])] if labels is not None else []))
    else:
        out.write(" ".join(names) + "\n")
        for row in data:
            out.write(" ".join(repr(float(v)) for v in row) + "\n")
    return out.getvalue()
