"""Cardiac phantom (seeded, labelled, partial volume), its CLI, and the MMWHS-style loader's refusals."""

import hashlib
import json

import numpy as np
import pytest

from AnatomyINRLib import io
from AnatomyINRLib.cli import main
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.io.mmwhs import MMWHS_LABELS, find_mmwhs_cases, read_mmwhs_pair
from AnatomyINRLib.phantoms.cardiac import CARDIAC_LABELS, cardiac_grid, make_cardiac_phantom


@pytest.fixture(scope="module")
def phantoms():
    return {seed: make_cardiac_phantom(seed) for seed in (0, 1)}


def test_phantom_is_reproducible_by_seed(phantoms):
    again = make_cardiac_phantom(0)
    assert np.array_equal(again.image.array, phantoms[0].image.array)
    assert np.array_equal(again.labels.array, phantoms[0].labels.array)
    assert not np.array_equal(phantoms[1].labels.array, phantoms[0].labels.array)
    assert phantoms[0].info["pose"] != phantoms[1].info["pose"]


def test_phantom_geometry_and_types(phantoms):
    ph = phantoms[0]
    shape, affine = cardiac_grid("small")
    assert ph.image.shape == ph.labels.shape == shape == (80, 80, 72)
    assert ph.image.array.dtype == np.int16 and ph.labels.array.dtype == np.uint8
    np.testing.assert_allclose(ph.image.spacing, 2.0)
    np.testing.assert_allclose(ph.image.direction, np.diag([-1.0, -1.0, 1.0]))
    np.testing.assert_allclose(ph.image.ijk_to_ras, affine)
    # The grid is centred on RAS (0, 0, 0).
    np.testing.assert_allclose(ph.image.index_to_world((np.array(shape) - 1)[None] / 2.0)[0], 0.0, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_labels_present_with_sensible_volumes(phantoms, seed):
    ph = phantoms[seed]
    assert set(np.unique(ph.labels.array)) == {0, 1, 2}
    vol = ph.info["volumes_ml"]
    assert 25 < vol["left_atrium"] < 120 and 40 < vol["left_ventricle"] < 220
    assert vol["left_ventricle"] > vol["left_atrium"]
    # Counting voxels with visible fraction >= 1/2 agrees with the summed partial-volume fractions.
    for name in CARDIAC_LABELS.values():
        assert abs(vol[name] - ph.info["partial_volumes_ml"][name]) < 0.05 * vol[name]
    voxels = {lab: int(np.count_nonzero(ph.labels.array == lab)) for lab in CARDIAC_LABELS}
    assert vol["left_atrium"] == pytest.approx(voxels[1] * 0.008, abs=0.01)
    assert vol["left_ventricle"] == pytest.approx(voxels[2] * 0.008, abs=0.01)


def test_labelled_chambers_are_bright_and_single_pieces(phantoms):
    from scipy import ndimage

    ph = phantoms[0]
    hu = ph.info["intensities_hu"]
    for lab, key in ((1, "la"), (2, "lv")):
        mask = ph.labels.array == lab
        assert ndimage.label(mask)[1] == 1
        core = ndimage.binary_erosion(mask, iterations=2)
        # Away from the boundary the mean is the chamber's HU within the noise's standard error.
        assert abs(ph.image.array[core].mean() - hu[key]) < 5.0
    # The myocardium around the LV cavity is darker than the contrast-filled blood.
    ring = ndimage.binary_dilation(ph.labels.array == 2, iterations=2) & (ph.labels.array == 0)
    assert np.median(ph.image.array[ring]) < hu["lv"] - 100


def test_phantom_partial_volume_at_the_boundary(phantoms):
    from scipy import ndimage

    ph = phantoms[0]
    mask = ph.labels.array == 2
    edge = mask & ~ndimage.binary_erosion(mask)
    core = ndimage.binary_erosion(mask, iterations=3)
    # Boundary voxels mix blood with the wall: between the wall's and the blood's mean.
    assert ph.image.array[edge].mean() < ph.image.array[core].mean() - 30


def test_cli_phantom_writes_the_files_and_is_reproducible(tmp_path, phantoms):
    out = tmp_path / "ph"
    assert main(["image-to-mesh", "phantom", "--seed", "1", "--output-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["image.nrrd", "labels.nrrd", "phantom.config.json"]
    image, labels = io.read_image(out / "image.nrrd"), io.read_image(out / "labels.nrrd")
    assert np.array_equal(image.array, phantoms[1].image.array) and np.array_equal(labels.array, phantoms[1].labels.array)
    np.testing.assert_allclose(image.ijk_to_ras, phantoms[1].image.ijk_to_ras, atol=1e-9)
    info = json.loads((out / "phantom.config.json").read_text())
    assert info["seed"] == 1 and info["volumes_ml"] == phantoms[1].info["volumes_ml"]
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}
    out2 = tmp_path / "ph2"
    assert main(["image-to-mesh", "phantom", "--seed", "1", "--output-dir", str(out2)]) == 0
    assert digest == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out2.iterdir()}


def test_cli_phantom_refusals(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["image-to-mesh", "phantom", "--output-dir", str(blocker)]) == 3
    assert "is a file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse refuses a bad seed with exit 2
        main(["image-to-mesh", "phantom", "--seed", "-1", "--output-dir", str(tmp_path / "a")])
    assert exc.value.code == 2 and "--seed: expected an integer" in capsys.readouterr().err
    assert main(["image-to-mesh", "phantom", "--output-dir", str(tmp_path / "missing" / "a")]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# ----------------------------------------------------------------------------- MMWHS loader

def _pair(tmp_path, case="ct_train_1001", ext=".nii.gz", labels=None, image=None, affine=None):
    affine = ImageGrid.make_affine((10.0, -20.0, 5.0), (0.8, 0.8, 1.0)) if affine is None else affine
    rng = np.random.default_rng(0)
    img = rng.normal(0, 100, (12, 10, 8)).astype(np.int16) if image is None else image
    if labels is None:
        labels = np.zeros((12, 10, 8), np.int16)
        labels[2:6, 2:6, 2:5] = 420
        labels[6:10, 3:8, 2:6] = 500
        labels[1, 1, 1] = 205
        labels[10, 8, 6] = 850
    io.write_image(ImageGrid(img, affine), tmp_path / f"{case}_image{ext}")
    io.write_image(ImageGrid(labels, affine), tmp_path / f"{case}_label{ext}")
    return tmp_path / f"{case}_image{ext}", tmp_path / f"{case}_label{ext}"


def test_mmwhs_pair_is_mapped_to_la_and_lv(tmp_path):
    image_path, label_path = _pair(tmp_path)
    _pair(tmp_path, case="ct_train_1002", ext=".nrrd")
    (tmp_path / "notes.txt").write_text("not a case")
    cases = find_mmwhs_cases(tmp_path)
    assert [c[0] for c in cases] == ["ct_train_1001", "ct_train_1002"]
    image, labels = read_mmwhs_pair(*cases[0][1:])
    assert image.array.dtype == np.float32 and labels.array.dtype == np.uint8
    assert np.count_nonzero(labels.array == 1) == 4 * 4 * 3 and np.count_nonzero(labels.array == 2) == 4 * 5 * 4
    assert set(np.unique(labels.array)) == {0, 1, 2}
    np.testing.assert_allclose(labels.ijk_to_ras, image.ijk_to_ras)
    np.testing.assert_allclose(image.spacing, (0.8, 0.8, 1.0), rtol=1e-6)
    assert MMWHS_LABELS[420] == "left_atrium" and MMWHS_LABELS[500] == "left_ventricle"


def test_mmwhs_refuses_2d_and_4d_images(tmp_path):
    import SimpleITK as sitk

    image_path, label_path = _pair(tmp_path)
    flat = tmp_path / "flat_image.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((10, 12), np.int16)), str(flat))
    with pytest.raises(InputError, match="expected a 3-D image, got 2-D"):
        read_mmwhs_pair(flat, label_path)
    four = tmp_path / "four_image.nii.gz"
    sitk.WriteImage(sitk.JoinSeries([sitk.GetImageFromArray(np.ones((8, 10, 12), np.int16))] * 3), str(four))
    with pytest.raises(InputError, match="expected a 3-D image, got 4-D"):
        read_mmwhs_pair(image_path, four)


def test_mmwhs_refuses_empty_images_and_bad_labels(tmp_path):
    image_path, label_path = _pair(tmp_path, image=np.full((12, 10, 8), -1000, np.int16))
    with pytest.raises(InputError, match=r"is empty \(every voxel is -1000\)"):
        read_mmwhs_pair(image_path, label_path)
    labels = np.zeros((12, 10, 8), np.int16)
    labels[3, 3, 3] = 7
    image_path, label_path = _pair(tmp_path / "..", case="b", labels=labels)
    with pytest.raises(InputError, match=r"values \[7\] are not MMWHS labels"):
        read_mmwhs_pair(image_path, label_path)
    labels[3, 3, 3] = 600
    image_path, label_path = _pair(tmp_path, case="c", labels=labels)
    with pytest.raises(InputError, match=r"neither the left atrium \(420\) nor the left ventricle \(500\)"):
        read_mmwhs_pair(image_path, label_path)


def test_mmwhs_refuses_mismatched_geometry(tmp_path):
    image_path, _ = _pair(tmp_path)
    labels = np.zeros((12, 10, 8), np.int16)
    labels[2:4, 2:4, 2:4] = 500
    io.write_image(ImageGrid(labels, ImageGrid.make_affine((10.0, -20.0, 5.0), (0.8, 0.8, 1.25))),
                   tmp_path / "other_label.nii.gz")
    with pytest.raises(InputError, match=r"different grids: spacing"):
        read_mmwhs_pair(image_path, tmp_path / "other_label.nii.gz")


def test_mmwhs_folder_refusals(tmp_path):
    with pytest.raises(InputError, match="not an existing folder"):
        find_mmwhs_cases(tmp_path / "nope")
    with pytest.raises(InputError, match="no MMWHS-style cases"):
        find_mmwhs_cases(tmp_path)
    image_path, label_path = _pair(tmp_path)
    label_path.unlink()
    with pytest.raises(InputError, match="has no label file 'ct_train_1001_label.nii.gz'"):
        find_mmwhs_cases(tmp_path)


def test_image_supersample_is_a_box_filter_over_each_crop_voxel():
    """s³ trilinear samples per crop voxel: a linear ramp keeps its centre values, a step becomes the
    fraction of each voxel on its bright side (partial volume), point sampling (s = 1) stays binary."""
    from AnatomyINRLib.image_to_mesh import shape_train_preset
    from AnatomyINRLib.image_to_mesh._shape_data import image_tensor

    shape, spacing = (81, 81, 81), 1.0
    affine = ImageGrid.make_affine((-40.0, -40.0, -40.0), (spacing,) * 3)
    x = np.arange(81, dtype=np.float64)[:, None, None] - 40.0  # RAS x in mm along i
    cfg = shape_train_preset("test").replace(crop_half_mm=40.0, window_level=0.0, window_width=400.0)
    n = cfg.network.image_size  # 17: 5 mm crop voxels
    ramp = ImageGrid(np.broadcast_to(x, shape).astype(np.float32), affine)
    for s in (1, 2, 3):
        got, _ = image_tensor(ramp, cfg.replace(image_supersample=s))
        centres = (-40.0 + 80.0 * np.arange(n) / (n - 1)) / 200.0
        interior = slice(1, n - 1)  # the border voxels' samples are clamped at the image's edge
        assert np.allclose(got[interior, 5, 5], centres[interior], atol=1e-6)
    # A step at x = 1 mm: the crop voxel centred at 0 mm spans [−2.5, 2.5] mm, 1.5 mm of it bright.
    step = ImageGrid(np.broadcast_to(np.where(x >= 1.0, 200.0, -200.0), shape).astype(np.float32), affine)
    point, _ = image_tensor(step, cfg.replace(image_supersample=1))
    box, _ = image_tensor(step, cfg.replace(image_supersample=4))
    mid = (n - 1) // 2
    assert point[mid, 5, 5] == pytest.approx(-1.0)
    # 4 samples at −1.875, −0.625, 0.625, 1.875 mm: trilinear between the ±200 voxels at 0 and 1 mm
    # gives −200, −200, 50 (0.625 of the way), 200 → mean −37.5 HU → −0.1875 after the window.
    assert box[mid, 5, 5] == pytest.approx(-0.1875, abs=1e-6)
