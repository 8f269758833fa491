"""Image files: LPS↔RAS geometry, [i,j,k] order, exact oblique round trips, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from AnatomyINRLib.core.errors import InputError, OutputError
from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.io import read_image, write_image


def _rotation(ax, ay, az) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _oblique_image() -> ImageGrid:
    affine = ImageGrid.make_affine([12.5, -40.25, 7.0], [0.6, 1.1, 2.5], _rotation(0.3, -0.5, 0.9))
    array = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7) * 0.5 - 20
    return ImageGrid(array, affine)


@pytest.mark.parametrize("ext", [".nrrd", ".nhdr", ".mha", ".mhd"])
def test_oblique_round_trip_exact(tmp_path, ext):
    image = _oblique_image()
    path = tmp_path / f"img{ext}"
    write_image(image, path)
    back = read_image(path)
    assert back.shape == image.shape and back.array.dtype == np.float32
    np.testing.assert_array_equal(back.array, image.array)
    np.testing.assert_allclose(back.ijk_to_ras, image.ijk_to_ras, atol=1e-12, rtol=0)
    np.testing.assert_allclose(back.voxel_centers(), image.voxel_centers(), atol=1e-9, rtol=0)


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_oblique_round_trip_nifti_float32_geometry(tmp_path, ext):
    image = _oblique_image()
    write_image(image, tmp_path / f"img{ext}")
    back = read_image(tmp_path / f"img{ext}")
    np.testing.assert_array_equal(back.array, image.array)
    np.testing.assert_allclose(back.ijk_to_ras, image.ijk_to_ras, atol=1e-5)  # sform is float32


def test_detached_header_writes_only_final_names(tmp_path):
    write_image(_oblique_image(), tmp_path / "vol.nhdr")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == "vol.nhdr" and len(names) == 2 and names[1].startswith("vol.")
    assert "data file: " + names[1] in (tmp_path / "vol.nhdr").read_text()


def test_known_voxel_lands_at_hand_computed_ras(tmp_path):
    # ITK image (LPS): origin (10, 20, 30), spacing (1, 2, 3), i axis along +P, j along +L, k along +S.
    itk = sitk.Image([4, 5, 6], sitk.sitkInt16)
    itk.SetOrigin((10.0, 20.0, 30.0))
    itk.SetSpacing((1.0, 2.0, 3.0))
    itk.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, -1))  # columns: i→(0,1,0), j→(1,0,0), k→(0,0,-1) in LPS
    itk.SetPixel((3, 1, 2), 77)  # ITK index order is (i, j, k)
    sitk.WriteImage(itk, str(tmp_path / "k.nrrd"))
    image = read_image(tmp_path / "k.nrrd")
    assert image.shape == (4, 5, 6) and image.array[3, 1, 2] == 77 and image.array.sum() == 77
    # LPS of voxel (3,1,2) = (10,20,30) + 3*1*(0,1,0) + 1*2*(1,0,0) + 2*3*(0,0,-1) = (12, 23, 24)
    # RAS = (-12, -23, 24)
    np.testing.assert_allclose(image.index_to_world(np.array([[3, 1, 2]])), [[-12.0, -23.0, 24.0]])
    lps = itk.TransformIndexToPhysicalPoint((3, 1, 2))
    np.testing.assert_allclose(image.index_to_world(np.array([[3, 1, 2]]))[0], [-lps[0], -lps[1], lps[2]])


def test_nrrd_in_ras_space_is_read_correctly(tmp_path):
    # NRRD written in RAS space (allowed by the format; Slicer reads both) with identity axes.
    header = (
        "NRRD0004\ntype: uint8\ndimension: 3\nspace: right-anterior-superior\nsizes: 2 3 4\n"
        "space directions: (1,0,0) (0,1,0) (0,0,1)\nkinds: domain domain domain\nencoding: raw\n"
        "space origin: (1,2,3)\n\n"
    )
    data = np.zeros((4, 3, 2), dtype=np.uint8)  # file order: i fastest
    data[3, 2, 1] = 9  # voxel i=1, j=2, k=3
    (tmp_path / "ras.nrrd").write_bytes(header.encode() + data.tobytes())
    image = read_image(tmp_path / "ras.nrrd")
    assert image.shape == (2, 3, 4) and image.array[1, 2, 3] == 9
    np.testing.assert_allclose(image.ijk_to_ras, ImageGrid.make_affine([1, 2, 3], [1, 1, 1]), atol=1e-12)


def test_bool_array_written_as_uint8(tmp_path):
    mask = np.zeros((3, 4, 5), dtype=bool)
    mask[1, 2, 3] = True
    write_image(ImageGrid(mask, np.eye(4)), tmp_path / "m.nrrd")
    back = read_image(tmp_path / "m.nrrd")
    assert back.array.dtype == np.uint8 and back.array[1, 2, 3] == 1 and back.array.sum() == 1


def test_two_d_image_refused(tmp_path):
    sitk.WriteImage(sitk.Image([4, 5], sitk.sitkUInt8), str(tmp_path / "flat.nrrd"))
    with pytest.raises(InputError, match="3-D"):
        read_image(tmp_path / "flat.nrrd")


def test_four_d_image_refused(tmp_path):
    sitk.WriteImage(sitk.Image([2, 2, 2, 3], sitk.sitkUInt8), str(tmp_path / "layers.seg.nrrd"))
    with pytest.raises(InputError, match="4-D"):
        read_image(tmp_path / "layers.seg.nrrd")


def test_multi_component_image_refused(tmp_path):
    sitk.WriteImage(sitk.Image([3, 3, 3], sitk.sitkVectorFloat32, 3), str(tmp_path / "vec.mha"))
    with pytest.raises(InputError, match="3 components"):
        read_image(tmp_path / "vec.mha")


def test_corrupt_missing_and_unknown(tmp_path):
    (tmp_path / "bad.nrrd").write_bytes(b"NRRD0004\ntype: nonsense\n\n")
    with pytest.raises(InputError, match="could not read the image") as info:
        read_image(tmp_path / "bad.nrrd")
    assert "bad.nrrd" in str(info.value)
    with pytest.raises(InputError, match="does not exist"):
        read_image(tmp_path / "none.nii.gz")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(InputError, match="unsupported image"):
        read_image(tmp_path / "x.png")


def test_write_refusals(tmp_path):
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    with pytest.raises(InputError, match="sheared"):
        write_image(ImageGrid(np.zeros((2, 2, 2)), sheared), tmp_path / "s.nrrd")
    with pytest.raises(InputError, match="supported"):
        write_image(_oblique_image(), tmp_path / "s.seg.nrrd")
    with pytest.raises(InputError, match="ImageGrid"):
        write_image(np.zeros((2, 2, 2)), tmp_path / "s.nrrd")
    assert list(tmp_path.iterdir()) == []
