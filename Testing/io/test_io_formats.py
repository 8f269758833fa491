"""Extension mapping and the atomic-write guarantee of the io writers."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyINRLib.core.errors import InputError, OutputError
from AnatomyINRLib.core.types import PointSet, TriangleMesh
from AnatomyINRLib.io import SUPPORTED, file_extension, format_of, write_mesh, write_points
from AnatomyINRLib.io.formats import strip_extension


@pytest.mark.parametrize(
    "name, ext",
    [
        ("a/b/brain.NII.GZ", ".nii.gz"),
        ("pts.mrk.json", ".mrk.json"),
        ("liver.seg.nrrd", ".seg.nrrd"),
        ("vol.nrrd", ".nrrd"),
        ("x.y.vtp", ".vtp"),
        ("noext", ""),
        (".nii.gz", ".gz"),
    ],
)
def test_file_extension_handles_compound_suffixes(name, ext):
    assert file_extension(name) == ext


def test_strip_extension_removes_compound_suffix():
    assert strip_extension("/d/fit.v2.mrk.json").name == "fit.v2"
    assert strip_extension("/d/img.nii.gz").name == "img"


def test_unknown_extension_lists_supported_ones():
    with pytest.raises(InputError) as info:
        format_of("cloud.xyz", "points")
    message = str(info.value)
    assert "cloud.xyz" in message and ".xyz" in message
    for ext in SUPPORTED["points"]:
        assert ext in message


def test_writing_unknown_or_read_only_extension_is_output_error():
    with pytest.raises(InputError, match="supported"):
        format_of("out.xyz", "mesh", writing=True)
    with pytest.raises(InputError, match=r"\.nrrd"):
        format_of("seg.seg.nrrd", "image", writing=True)
    assert format_of("seg.seg.nrrd", "image") == ".seg.nrrd"


def test_supported_kinds():
    assert set(SUPPORTED) == {"points", "mesh", "image", "inr"}
    assert ".nii.gz" in SUPPORTED["image"] and ".mrk.json" in SUPPORTED["points"]


def test_failing_writer_leaves_no_file_and_keeps_old_content(tmp_path):
    mesh = TriangleMesh(np.eye(3), [[0, 1, 2]], {"bad": np.array(["a", "b", "c"], dtype=object)})
    target = tmp_path / "out.vtp"
    # Fails inside the atomic block (object array cannot go into a VTK file).
    with pytest.raises(InputError, match="bad"):
        write_mesh(mesh, target)
    assert list(tmp_path.iterdir()) == []
    target.write_text("previous result")
    with pytest.raises(InputError):
        write_mesh(mesh, target)
    assert target.read_text() == "previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.vtp"]


def test_writer_into_missing_folder_is_output_error(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        write_points(PointSet(np.zeros((1, 3))), tmp_path / "nope" / "p.csv")
