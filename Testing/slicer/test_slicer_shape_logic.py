"""The Logic of AnatomyINRShapeFromImage outside Slicer.

Structure names as the library spells them, the checkpoint check, worker files and
arguments, reading a run's files (written here with the library's ``io`` from a
held-out cardiac phantom: meshes back in RAS mm, labels on the volume's grid, a
malformed report or label map refused), the panel's rows and text. Then the real
worker (``python -m AnatomyINRLib image-to-mesh predict``) driven by the protocol
code the Slicer Logic uses: the shipped model on the phantom (two watertight
one-piece meshes whose rasterised labels match the phantom), a checkpoint that is
not a model (exit 2, nothing written) and a cancelled run.
"""

import json
import sys

import numpy as np
import pytest

from AnatomyINRShapeFromImageLib import compute
from AnatomyINRSlicerLib.worker_protocol import (IMAGE_TO_MESH_PREDICT_STAGES, StagePlan, library_search_dir,
                                                 run_blocking, worker_command)
from shape_harness import makePhantom, report, writeOutputs


@pytest.fixture(scope="module")
def phantom():
    return makePhantom()


def test_structures_match_the_library():
    from AnatomyINRLib.image_to_mesh.config import STRUCTURES

    assert compute.STRUCTURES == dict(STRUCTURES)
    assert compute.STRUCTURE_NAMES == ("left_atrium", "left_ventricle")
    assert set(compute.STRUCTURE_TITLES) == set(compute.STRUCTURE_COLORS) == set(compute.STRUCTURE_NAMES)
    colors = np.array([compute.STRUCTURE_COLORS[name] for name in compute.STRUCTURE_NAMES])
    assert colors.min() >= 0.0 and colors.max() <= 1.0 and np.abs(colors[0] - colors[1]).max() > 0.3


def test_checkpoint_empty_means_the_shipped_model_else_an_existing_safetensors_file(tmp_path):
    assert compute.checkpointProblem("") is None and compute.checkpointProblem("   ") is None
    assert "no file" in compute.checkpointProblem(str(tmp_path / "missing.safetensors"))
    other = tmp_path / "model.pt"
    other.write_bytes(b"x")
    assert "expected a .safetensors file" in compute.checkpointProblem(str(other))
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"x")
    assert compute.checkpointProblem(f" {model} ") is None


def test_worker_files_and_arguments(tmp_path, phantom):
    from AnatomyINRLib.io import read_image

    files = compute.WorkFiles(str(tmp_path))
    path = compute.writeWorkerInputs(files, phantom.image)
    back = read_image(path)
    np.testing.assert_array_equal(back.array, phantom.image.array)
    np.testing.assert_allclose(back.ijk_to_ras, phantom.image.ijk_to_ras, atol=1e-9)
    prefix = str(tmp_path / "shape")
    assert compute.workerArguments(files, path) == ["predict", path, "--output-prefix", prefix]
    assert compute.workerArguments(files, path, " m.safetensors ") == ["predict", path, "--checkpoint", "m.safetensors",
                                                                       "--output-prefix", prefix]
    assert compute.workerArguments(files, path, "", False) == ["predict", path, "--no-refine", "--output-prefix", prefix]
    assert (files.mesh("left_atrium"), files.labels, files.report) == (
        prefix + "_left_atrium.vtp", prefix + "_labels.nrrd", prefix + "_report.json")


def test_read_result_meshes_in_ras_labels_on_the_grid(tmp_path, phantom):
    files = compute.WorkFiles(str(tmp_path))
    written = writeOutputs(files, phantom.labels)
    result = compute.readWorkerResult(files, phantom.image.shape)
    for name in compute.STRUCTURE_NAMES:
        np.testing.assert_allclose(result.meshes[name].vertices, written[name].vertices, atol=1e-4)
        np.testing.assert_array_equal(result.meshes[name].faces, written[name].faces)
    np.testing.assert_array_equal(result.labels.array, phantom.labels.array)
    # The meshes lie on the labels: the atrium's vertices are inside the atrium's voxel bounding box (RAS).
    la = np.argwhere(np.asarray(phantom.labels.array) == 1)
    corners = np.array([la.min(0) - 0.5, la.max(0) + 0.5]) @ phantom.labels.ijk_to_ras[:3, :3].T
    corners += phantom.labels.ijk_to_ras[:3, 3]
    low, high = corners.min(0), corners.max(0)
    vertices = result.meshes["left_atrium"].vertices
    assert np.all(vertices >= low - 1e-6) and np.all(vertices <= high + 1e-6)
    volumeMl = np.count_nonzero(np.asarray(phantom.labels.array) == 2) * 8.0 / 1000.0
    assert result.report["structures"]["left_ventricle"]["volume_ml"] == pytest.approx(volumeMl)


@pytest.mark.parametrize("damage,message", [
    (lambda files, labels: json.dump({"structures": {"left_atrium": {}}}, open(files.report, "w")),
     "does not list the structures left_atrium, left_ventricle"),
    (lambda files, labels: json.dump(report(labels, left_ventricle={"label": 1}), open(files.report, "w")),
     "gives left_ventricle label 1, expected 2"),
    (lambda files, labels: json.dump({**report(labels), "structures": {
        **report(labels)["structures"], "left_atrium": {"label": 1, "volume_ml": 1.0}}}, open(files.report, "w")),
     "no watertight, components, self_intersections, repaired for left_atrium"),
    (lambda files, labels: __import__("os").remove(files.mesh("left_ventricle")),
     "did not write shape_left_ventricle.vtp"),
    (lambda files, labels: __import__("AnatomyINRLib.io", fromlist=["write_image"]).write_image(
        labels.with_array(np.asarray(labels.array)[:, :, :-1]), files.labels), "label map has shape (80, 80, 71)"),
    (lambda files, labels: __import__("AnatomyINRLib.io", fromlist=["write_image"]).write_image(
        labels.with_array(np.asarray(labels.array) * 2), files.labels), "holds values [4] besides 0 and [1, 2]"),
])
def test_a_result_that_does_not_match_the_contract_is_refused(tmp_path, phantom, damage, message):
    files = compute.WorkFiles(str(tmp_path))
    writeOutputs(files, phantom.labels)
    damage(files, phantom.labels)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        compute.readWorkerResult(files, phantom.image.shape)


def test_rows_problems_and_summary(phantom):
    rep = report(phantom.labels, left_ventricle={"components": 2, "repaired": True})
    rows = compute.structureRows(rep)
    la = rep["structures"]["left_atrium"]["volume_ml"]
    lv = rep["structures"]["left_ventricle"]["volume_ml"]
    assert rows == [("Left atrium", la, "yes", 1, 0, "no"), ("Left ventricle", lv, "yes", 2, 0, "yes")]
    assert compute.problemRows(rep) == [1]
    assert compute.problemRows(report(phantom.labels, left_atrium={"self_intersections": 3})) == [0]
    assert compute.problemRows(report(phantom.labels, left_atrium={"watertight": False})) == [0]
    rep["warnings"] = ["far from the training spacing", "far from the training spacing", "dark image"]
    rep["checkpoint"] = "/models/mine.safetensors"
    text = compute.summaryText(compute.ShapeResult({}, None, rep))
    assert text.splitlines() == [f"Left atrium {la:.1f} ml, left ventricle {lv:.1f} ml",
                                 "Model: mine.safetensors; computed in 4.2 s",
                                 "Warning: far from the training spacing", "Warning: dark image"]
    rep.update(checkpoint="", seconds=None)
    assert compute.summaryText(compute.ShapeResult({}, None, rep)).splitlines()[1] == "Model: the shipped model"


# ---- the real worker (needs `image-to-mesh predict` and the shipped model) -----------------------------------

def run(folder, image, checkpoint="", events=None, should_cancel=None):
    folder.mkdir(exist_ok=True)
    files = compute.WorkFiles(str(folder))
    command = worker_command(sys.executable, "image-to-mesh",
                             compute.workerArguments(files, compute.writeWorkerInputs(files, image), checkpoint))
    outcome = run_blocking(command, StagePlan(IMAGE_TO_MESH_PREDICT_STAGES), cwd=library_search_dir(),
                           should_cancel=should_cancel,
                           on_event=(lambda e, overall: events.append((e.stage, overall))) if events is not None else None)
    return files, outcome


def test_arguments_are_what_the_predict_parser_accepts(tmp_path):
    from AnatomyINRLib.cli import build_parser

    files = compute.WorkFiles(str(tmp_path))
    command = worker_command("python", "image-to-mesh", compute.workerArguments(files, "ct.nrrd", "m.safetensors"))
    parsed = build_parser().parse_args(command[3:])
    assert (parsed.image_to_mesh_command, parsed.image, parsed.checkpoint) == ("predict", "ct.nrrd", "m.safetensors")
    assert parsed.output_prefix == files.prefix and parsed.json_progress
    assert build_parser().parse_args(worker_command("python", "image-to-mesh", compute.workerArguments(
        files, "ct.nrrd"))[3:]).checkpoint is None
    assert not parsed.no_refine
    assert build_parser().parse_args(worker_command("python", "image-to-mesh", compute.workerArguments(
        files, "ct.nrrd", "", False))[3:]).no_refine


def test_shipped_model_on_a_held_out_phantom(tmp_path, phantom, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    events = []
    files, outcome = run(tmp_path / "run", phantom.image, events=events)
    assert outcome.ok, (outcome.message, outcome.log_tail)
    overall = [fraction for _stage, fraction in events]
    assert overall == sorted(overall) and overall[-1] > 0.9, events  # every stage is one the plan knows
    result = compute.readWorkerResult(files, phantom.image.shape)
    # The shipped model's accuracy is the benchmark's (benchmarks/image_to_mesh_train.py); here the
    # module must hand over exactly what the library predicts in process for the same volume.
    import torch
    from AnatomyINRLib.image_to_mesh import predict_meshes

    torch.set_num_threads(1)
    expected = predict_meshes(phantom.image)
    np.testing.assert_array_equal(np.asarray(result.labels.array), np.asarray(expected.labels.array))
    for value, name in compute.STRUCTURES.items():
        entry = result.report["structures"][name]
        assert entry["watertight"] and entry["components"] == 1 and entry["self_intersections"] == 0, entry
        assert entry["label"] == value and entry["volume_ml"] == pytest.approx(expected.volumes_ml[name], rel=1e-6)
        mesh = result.meshes[name]
        assert len(mesh.vertices) == 2562  # the template's fixed topology
        np.testing.assert_allclose(mesh.vertices, expected.meshes[name].vertices, atol=1e-4)
        np.testing.assert_array_equal(mesh.faces, expected.meshes[name].faces)


def test_a_checkpoint_that_is_not_a_model_is_rejected_and_nothing_is_written(tmp_path, phantom):
    bad = tmp_path / "not_a_model.safetensors"
    bad.write_bytes(b"not a checkpoint")
    files, outcome = run(tmp_path / "run", phantom.image, checkpoint=str(bad))
    assert not outcome.ok and outcome.returncode == 2 and "checkpoint" in outcome.message, outcome.message
    assert not any((tmp_path / "run").glob("shape_*"))


def test_cancel(tmp_path, phantom):
    polls = []
    files, outcome = run(tmp_path / "run", phantom.image, should_cancel=lambda: polls.append(1) or len(polls) > 20)
    assert outcome.cancelled and not outcome.ok
    assert not any((tmp_path / "run").glob("shape_*"))
