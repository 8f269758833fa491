"""train_shape_model / ``image-to-mesh train``: checkpoint contents, resume after interruption,
two CPU processes under torchrun, and bad training input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from AnatomyINRLib.cli import main
from AnatomyINRLib.core.errors import Cancelled, InputError
from AnatomyINRLib.image_to_mesh import ShapeTrainConfig, shape_train_preset, train_shape_model
from AnatomyINRLib.image_to_mesh._predict import load_shape_model
from AnatomyINRLib.image_to_mesh._shape_train import state_digest
from AnatomyINRLib.image_to_mesh._template import icosphere
from AnatomyINRLib.io.checkpoint import load_checkpoint

from i2m_cases import blob_case

REPO = Path(__file__).resolve().parents[2]


def test_checkpoint_holds_config_template_structures_and_data_range(tiny_model):
    tensors, meta = load_checkpoint(tiny_model)
    verts, faces = icosphere(2)
    np.testing.assert_array_equal(tensors["model.faces"].numpy(), faces)
    np.testing.assert_allclose(tensors["model.template"].numpy(), verts, atol=1e-6)
    assert not any(k.startswith("optim.") for k in tensors)  # finished: no optimiser state shipped
    assert meta["kind"] == "image-to-mesh-shape" and meta["finished"] and meta["epoch"] == 2
    assert meta["structures"] == {"1": "left_atrium", "2": "left_ventricle"}
    assert meta["template"] == {"subdivisions": 2, "radius": 0.5}
    assert ShapeTrainConfig.from_dict(meta["training"]) == shape_train_preset("test")
    r = meta["data_range"]
    assert r["spacing_mm_min"] == pytest.approx(5.0) and r["spacing_mm_max"] == pytest.approx(5.0)
    assert r["n_cases"] == 2 and -200 < r["intensity_p1_min"] <= r["intensity_p1_max"] < -100
    assert 350 < r["intensity_p99_min"] <= r["intensity_p99_max"] < 450
    assert [h["epoch"] for h in meta["history"]] == [1, 2]
    assert meta["history"][0]["beta"] > meta["history"][1]["beta"]
    assert Path(str(tiny_model).replace(".safetensors", ".json")).is_file()  # the config next to the weights


def test_resume_after_interruption_ends_with_the_same_weights(blob_dir, g_phi_path, tiny_model, tmp_path):
    full = state_digest(load_shape_model(tiny_model)[0])
    path = tmp_path / "resumed.safetensors"
    events = []

    def stop_in_epoch_two(event):
        events.append(event)
        if event.stage == "train" and event.message.startswith("epoch 2/2"):
            raise Cancelled("interrupted")

    with pytest.raises(Cancelled):
        train_shape_model(blob_dir, path, representation=g_phi_path, preset="test", seed=0, progress=stop_in_epoch_two)
    tensors, meta = load_checkpoint(path)
    assert meta["epoch"] == 1 and not meta["finished"] and any(k.startswith("optim.") for k in tensors)
    result = train_shape_model(blob_dir, path, representation=g_phi_path, preset="test", seed=0)
    assert result.report["resumed"] and result.report["start_epoch"] == 1
    assert result.report["digest"] == full  # same weights as the uninterrupted run
    with pytest.raises(InputError, match="another configuration, seed or g_φ"):
        train_shape_model(blob_dir, path, representation=g_phi_path, preset="test", seed=1)


def test_torchrun_two_processes_agree(blob_dir, g_phi_path, tmp_path):
    ckpt = tmp_path / "ddp.safetensors"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "AnatomyINRLib", "image-to-mesh", "train", str(blob_dir), "--output", str(ckpt), "--preset", "test",
           "--representation", str(g_phi_path), "--threads", "1", "--json-progress", "--report", str(tmp_path / "report.json")]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    done = {e["metrics"]["rank"]: e["metrics"]["digest"] for e in events if e["stage"] == "done"}
    assert sorted(done) == [0, 1] and done[0] == done[1]  # both ranks hold the same weights
    _, meta = load_checkpoint(ckpt)
    assert meta["world_size"] == 2 and meta["epoch"] == 2 and meta["cases"] == ["a", "b"]
    assert meta["data_range"]["n_cases"] == 2  # gathered over both ranks' shards
    assert state_digest(load_shape_model(ckpt)[0]) == done[0]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["world_size"] == 2 and report["digest"] == done[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.json", "ddp.safetensors", "report.json"]


def test_train_takes_image_label_pairs_and_rejects_bad_ones(g_phi_path, tmp_path):
    image, labels = blob_case(3)
    cfg = shape_train_preset("test").replace(epochs=1, steps_per_epoch=1)
    out = train_shape_model([(image, labels)], tmp_path / "pairs.safetensors", representation=g_phi_path, config=cfg)
    assert out.report["cases"] == 1 and out.report["history"][0]["epoch"] == 1
    moved = labels.with_array(labels.array[:-1])
    with pytest.raises(InputError, match="case_0.*not on the image's grid"):
        train_shape_model([(image, moved)], tmp_path / "bad.safetensors", representation=g_phi_path, config=cfg)


@pytest.mark.parametrize("case, message", [
    ("no_cases", "no cases"),
    ("bad_labels", "are not in {0, 1, 2}"),
    ("g_phi_template", "made for 2562 vertices, the template has 162"),
    ("output_is_input", "--output"),
])
def test_train_cli_bad_input(case, message, blob_dir, g_phi_path, tmp_path, capsys):
    from AnatomyINRLib import io

    data, g_phi, output = blob_dir, str(g_phi_path), tmp_path / "m.safetensors"
    if case == "no_cases":
        data = tmp_path / "empty"
        data.mkdir()
    elif case == "bad_labels":
        data = tmp_path / "bad"
        (data / "x").mkdir(parents=True)
        image, labels = blob_case(4)
        io.write_image(image, data / "x" / "image.nrrd")
        io.write_image(labels.with_array(labels.array * 3), data / "x" / "labels.nrrd")
    elif case == "g_phi_template":
        g_phi = str(REPO / "Resources" / "Models" / "image_to_mesh_representation.safetensors")
    elif case == "output_is_input":
        output = Path(g_phi)
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["image-to-mesh", "train", str(data), "--output", str(output), "--preset", "test",
                 "--representation", g_phi])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("anatomy-inr: error:") and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_mesh_distance_training_learns_without_g_phi(blob_dir, tmp_path):
    """distance "mesh": no g_φ is loaded or accepted, the checkpoint says so, and the BCE falls."""
    from AnatomyINRLib.io.checkpoint import load_checkpoint

    # β from 10, not 1000: with 18 steps the Laplacian term would otherwise hold the template still.
    cfg = shape_train_preset("test").replace(distance="mesh", target_grid=17, epochs=3, steps_per_epoch=6,
                                             learning_rate=3e-3, beta_start=10.0)
    out = train_shape_model(blob_dir, tmp_path / "m.safetensors", config=cfg, seed=0)
    _, meta = load_checkpoint(out.checkpoint)
    assert meta["representation_digest"] == "none (distance: mesh)"
    assert ShapeTrainConfig.from_dict(meta["training"]).distance == "mesh"
    bce = [h["bce"] for h in meta["history"]]
    assert len(bce) == 3 and bce[-1] < 0.7 * bce[0]  # measured 0.0217 → 0.0137
    with pytest.raises(InputError, match="representation: not used with config.distance 'mesh'"):
        train_shape_model(blob_dir, tmp_path / "n.safetensors", representation="g.safetensors", config=cfg)


@pytest.mark.parametrize("field, value, message", [("distance", "exact", "distance"),
                                                    ("target_grid", 3, "target_grid"),
                                                    ("image_supersample", 0, "image_supersample")])
def test_shape_config_refuses_bad_distance_settings(field, value, message):
    with pytest.raises(InputError, match=message):
        shape_train_preset("test").replace(**{field: value}).validate()
