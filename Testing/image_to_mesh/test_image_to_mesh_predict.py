"""predict_meshes and ``image-to-mesh predict``: template topology, label map vs an independent
rasterisation, report layout, warnings, and every bad input's exit code (nothing written)."""

import json

import numpy as np
import pytest
import torch

from AnatomyINRLib import io
from AnatomyINRLib.cli import main
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.image_to_mesh import STRUCTURES, predict_meshes
from AnatomyINRLib.image_to_mesh._template import icosphere
from AnatomyINRLib.io.checkpoint import load_checkpoint, save_checkpoint

from i2m_cases import blob_case


def _winding_inside(mesh, points: np.ndarray) -> np.ndarray:
    """Inside test by the generalised winding number (sum of signed solid angles, Van Oosterom & Strackee)."""
    tri = mesh.vertices[mesh.faces]
    total = np.zeros(len(points))
    for start in range(0, len(points), 4096):
        p = points[start:start + 4096, None, None, :]
        a, b, c = (tri[None, :, i, :] - p[:, :, 0, :] for i in range(3))
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        det = np.einsum("ijk,ijk->ij", a, np.cross(b, c))
        den = la * lb * lc + np.einsum("ijk,ijk->ij", a, b) * lc + np.einsum("ijk,ijk->ij", b, c) * la \
            + np.einsum("ijk,ijk->ij", c, a) * lb
        total[start:start + 4096] = 2 * np.arctan2(det, den).sum(axis=1) / (4 * np.pi)
    return total > 0.5


@pytest.fixture(scope="module")
def prediction(tiny_model):
    image, _ = blob_case(7)
    return image, predict_meshes(image, checkpoint=tiny_model)


def test_meshes_have_the_template_topology_and_pass_the_checks(prediction):
    _, result = prediction
    verts, faces = icosphere(2)
    assert sorted(result.meshes) == sorted(STRUCTURES.values())
    for name, mesh in result.meshes.items():
        assert mesh.vertices.shape == verts.shape
        np.testing.assert_array_equal(mesh.faces, faces)  # the image's ijk → RAS is no reflection here
        s = result.structures[name]
        assert s["label"] == {v: k for k, v in STRUCTURES.items()}[name]
        assert s["watertight"] is True and s["components"] == 1
        assert s["volume_ml"] == pytest.approx(mesh.signed_volume() / 1000.0, rel=1e-3) and s["volume_ml"] > 0
        assert s["self_intersections"] == 0


def test_label_map_matches_an_independent_rasterisation(prediction):
    image, result = prediction
    assert result.labels.array.dtype == np.uint8 and result.labels.shape == image.shape
    np.testing.assert_allclose(result.labels.ijk_to_ras, image.ijk_to_ras)
    centres = image.voxel_centers().reshape(-1, 3)
    expected = np.zeros(len(centres), np.uint8)
    for name in ("left_atrium", "left_ventricle"):  # the larger label wins where both are inside
        expected[_winding_inside(result.meshes[name], centres)] = result.structures[name]["label"]
    got = result.labels.array.reshape(-1)
    inside = np.count_nonzero(expected)
    assert inside > 100
    # Voxel centres within rounding of a triangle may go either way: at most 0.5 % of the inside voxels.
    assert np.count_nonzero(got != expected) <= 0.005 * inside


def test_reflected_geometry_keeps_outward_normals(tiny_model):
    image, _ = blob_case(7)
    flipped = image.ijk_to_ras @ np.diag([-1.0, 1.0, 1.0, 1.0])
    result = predict_meshes(ImageGrid(image.array, flipped), checkpoint=tiny_model)
    for mesh in result.meshes.values():
        assert mesh.signed_volume() > 0


def test_far_from_training_warns_with_the_numbers(tiny_model):
    image, _ = blob_case(7)
    mri_like = ImageGrid(image.array * 0.01 + 5.0, image.ijk_to_ras * np.diag([0.2, 0.2, 0.2, 1.0]))
    result = predict_meshes(mri_like, checkpoint=tiny_model)
    text = " ".join(result.warnings)
    assert "spacing 1, 1, 1 mm is far from the training spacing [5, 5] mm" in text
    assert "intensity 99th percentile" in text and "far from the training range" in text
    plain = predict_meshes(image, checkpoint=tiny_model).warnings
    assert not any("far from the training" in w for w in plain)  # the training data's own kind: no range warning


def test_bad_images_raise_input_error(tiny_model):
    image, _ = blob_case(7)
    with pytest.raises(InputError, match="empty"):
        predict_meshes(image.with_array(np.zeros(image.shape, np.float32)), checkpoint=tiny_model)
    with pytest.raises(InputError, match="NaN"):
        predict_meshes(image.with_array(np.full(image.shape, np.nan, np.float32)), checkpoint=tiny_model)
    with pytest.raises(InputError, match="ImageGrid"):
        predict_meshes(np.zeros((8, 8, 8)), checkpoint=tiny_model)


# ----------------------------------------------------------------------------- CLI


@pytest.fixture()
def image_file(tmp_path):
    image, _ = blob_case(7)
    path = tmp_path / "ct.nrrd"
    io.write_image(image, path)
    return path


def test_predict_cli_writes_the_contract(tiny_model, image_file, tmp_path, capsys):
    prefix = tmp_path / "out" / "case"
    (tmp_path / "out").mkdir()
    code = main(["image-to-mesh", "predict", str(image_file), "--checkpoint", str(tiny_model),
                 "--output-prefix", str(prefix), "--json-progress"])
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["case_config.json", "case_labels.nrrd", "case_left_atrium.vtp", "case_left_ventricle.vtp",
                     "case_report.json"]
    report = json.loads((tmp_path / "out" / "case_report.json").read_text())
    assert set(report) >= {"structures", "warnings", "checkpoint", "seconds"}
    assert set(report["structures"]) == {"left_atrium", "left_ventricle"}
    for s in report["structures"].values():
        assert set(s) == {"label", "volume_ml", "watertight", "components", "self_intersections", "repaired", "refine"}
        assert set(s["refine"]) == {"iterations", "edge_found_fraction", "mean_shift_mm"}
    assert json.loads((tmp_path / "out" / "case_config.json").read_text())["refine"]["enabled"] is True
    mesh = io.read_mesh(tmp_path / "out" / "case_left_ventricle.vtp")
    assert mesh.n_faces == 320 and mesh.n_vertices == 162
    labels = io.read_image(tmp_path / "out" / "case_labels.nrrd")
    assert set(np.unique(labels.array)) <= {0, 1, 2}
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert {"load", "network", "check", "rasterise"} <= {e["stage"] for e in events}


def _write_raw(path, array, spacing):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(array, isVector=False)
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))


@pytest.fixture()
def other_checkpoints(tiny_model, g_phi_path, tmp_path):
    tensors, meta = load_checkpoint(tiny_model)
    moved = dict(tensors)
    moved["model.template"] = tensors["model.template"] * 1.1  # a sphere of radius 0.55, not the template
    save_checkpoint(tmp_path / "template.safetensors", moved, meta)
    wider = dict(meta, network=dict(meta["network"], graph_channels=meta["network"]["graph_channels"] * 2))
    save_checkpoint(tmp_path / "arch.safetensors", tensors, wider)
    return {"template": tmp_path / "template.safetensors", "arch": tmp_path / "arch.safetensors", "g_phi": g_phi_path}


@pytest.mark.parametrize("case, code, message", [
    ("2d", 2, "expected a 3-D image, got 2-D"),
    ("4d", 2, "expected a 3-D image, got 4-D"),
    ("empty", 2, "is empty"),
    ("g_phi", 2, "expected an image-to-mesh shape model"),
    ("arch", 2, "weights of another architecture"),
    ("template", 2, "is not the icosphere"),
    ("collide", 2, ""),
    ("missing", 2, ""),
])
def test_predict_cli_bad_input(case, code, message, tiny_model, other_checkpoints, image_file, tmp_path, capsys):
    image, ckpt = image_file, tiny_model
    prefix = tmp_path / "res"
    if case == "2d":
        image = tmp_path / "flat.nrrd"
        _write_raw(image, np.ones((8, 8), np.int16), (1.0, 1.0))
    elif case == "4d":
        image = tmp_path / "time.nrrd"
        _write_raw(image, np.arange(4 * 5 * 6 * 7, dtype=np.int16).reshape(4, 5, 6, 7), (1.0, 1.0, 1.0, 1.0))
    elif case == "empty":
        image = tmp_path / "empty.nrrd"
        io.write_image(ImageGrid(np.zeros((8, 8, 8), np.int16), np.eye(4)), image)
    elif case in other_checkpoints:
        ckpt = other_checkpoints[case]
    elif case == "collide":
        prefix = tmp_path / "ct"  # the label map output ct_labels.nrrd would overwrite the input image
        image = tmp_path / "ct_labels.nrrd"
        io.write_image(blob_case(7)[0], image)
    elif case == "missing":
        image = tmp_path / "nothing.nrrd"
    before = sorted(p.name for p in tmp_path.iterdir())
    stamp = image.read_bytes() if image.exists() else None
    got = main(["image-to-mesh", "predict", str(image), "--checkpoint", str(ckpt), "--output-prefix", str(prefix)])
    err = capsys.readouterr().err
    assert got == code and err.startswith("anatomy-inr: error:") and message in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    if stamp is not None:
        assert image.read_bytes() == stamp  # inputs untouched


def test_predict_cli_far_input_warns_and_succeeds(tiny_model, tmp_path, capsys):
    image, _ = blob_case(7)
    path = tmp_path / "mr.nrrd"
    io.write_image(ImageGrid((image.array * 0.01 + 5).astype(np.float32), image.ijk_to_ras), path)
    assert main(["image-to-mesh", "predict", str(path), "--checkpoint", str(tiny_model),
                 "--output-prefix", str(tmp_path / "mr")]) == 0
    err = capsys.readouterr().err
    assert "anatomy-inr: warning: intensity 99th percentile 8.5" in err and "training range [35" in err
    report = json.loads((tmp_path / "mr_report.json").read_text())
    assert any("far from the training range" in w for w in report["warnings"])
