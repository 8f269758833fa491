"""Shape from image, as a clinician drives it: the widget executed against the fake Slicer.

A held-out cardiac phantom's CT as a scalar volume → Apply's conditions (no volume, a
label map, a missing or foreign checkpoint) → Apply exports the volume and builds the
``image-to-mesh predict`` command, Cancel leaves the scene as it was → a run's files
(written here with the library's ``io``) become two coloured models and the segments
left_atrium / left_ventricle on the volume's grid, the panel's table and summary; a
second run updates the same nodes and keeps a user's segment; a result that breaks
the contract changes nothing. Last, the whole cycle through the real worker and the
shipped model, and a rejected checkpoint.
"""

from __future__ import annotations

import numpy as np
import pytest

from shape_harness import makePhantom, report, writeOutputs
from widget_harness import errors, waitForRun


@pytest.fixture(autouse=True)
def oneThread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def phantom():
    return makePhantom()


def _widget(slicer, phantom):
    import AnatomyINRShapeFromImage as module
    from AnatomyINRSlicerLib import mrml_convert

    widget = module.AnatomyINRShapeFromImageWidget()
    widget.setup()
    volume = mrml_convert.addVolumeFromImageGrid(phantom.image, "cardiac CT")
    return widget, volume


def _segmentMasks(slicer, segmentation, volume) -> dict:
    """``{segment name: (i, j, k) bool mask on the volume's grid}``."""
    from AnatomyINRSlicerLib import mrml_convert

    return {name: mrml_convert.labelImageFromSegments(segmentation, {segmentId: 1}, volume).array > 0
            for segmentId, name in mrml_convert.segmentIdsAndNames(segmentation)}


def test_apply_conditions_command_and_cancel(fakeSlicer, phantom, tmp_path, monkeypatch):
    slicer = fakeSlicer
    from AnatomyINRLib.io import read_image
    from AnatomyINRSlicerLib import mrml_convert

    widget, volume = _widget(slicer, phantom)
    ui = widget.ui
    assert not hasattr(widget, "presetChoice")  # a trained model: nothing to tune
    assert ui.summaryLabel.text == "No meshes yet." and ui.structuresTableWidget.rowCount == 0
    assert not ui.applyButton.enabled and ui.applyButton.toolTip == "Select the CT volume."
    labels = mrml_convert.addVolumeFromImageGrid(phantom.labels, "labels", labelmap=True)
    widget._parameterNode.inputVolume = labels
    assert not ui.applyButton.enabled and ui.applyButton.toolTip == "labels is a label map; select the CT volume itself."
    ui.inputVolumeSelector.setCurrentNode(volume)
    assert widget._parameterNode.inputVolume is volume and ui.applyButton.enabled, ui.applyButton.toolTip
    ui.checkpointLineEdit.text = str(tmp_path / "missing.safetensors")
    assert not ui.applyButton.enabled and ui.applyButton.toolTip.startswith("Checkpoint: no file")
    (tmp_path / "model.ckpt").write_bytes(b"x")
    ui.checkpointLineEdit.text = str(tmp_path / "model.ckpt")
    assert not ui.applyButton.enabled and "expected a .safetensors file" in ui.applyButton.toolTip
    ui.checkpointLineEdit.text = ""
    assert widget._parameterNode.checkpointPath == "" and ui.applyButton.enabled

    sent = []
    launch = slicer.util.launchConsoleProcess

    def record(args, *rest, **options):  # the exported volume, read while the run's folder exists
        sent.append((list(args), read_image(args[5])))
        return launch(args, *rest, **options)

    monkeypatch.setattr(slicer.util, "launchConsoleProcess", record)
    before, volumeTime = slicer.mrmlScene.GetNumberOfNodes(), volume.GetMTime()
    ui.applyButton.click()
    assert not errors(), errors()
    (command, image), = sent
    prefix = command[command.index("--output-prefix") + 1]
    assert command[1:] == ["-m", "AnatomyINRLib", "image-to-mesh", "predict", command[5], "--output-prefix", prefix,
                           "--json-progress"]
    assert command[5].endswith("image.nrrd") and prefix.endswith("shape")
    np.testing.assert_array_equal(image.array, phantom.image.array)
    np.testing.assert_allclose(image.ijk_to_ras, phantom.image.ijk_to_ras, atol=1e-9)
    assert ui.cancelButton.enabled and not ui.applyButton.enabled
    ui.cancelButton.click()
    waitForRun(widget)
    assert ui.statusLabel.text.startswith("Cancelled"), ui.statusLabel.text
    assert not errors() and slicer.mrmlScene.GetNumberOfNodes() == before and volume.GetMTime() == volumeTime
    assert widget.logic.lastResult is None and ui.summaryLabel.text == "No meshes yet."
    assert ui.applyButton.enabled and not ui.cancelButton.enabled


def test_a_run_becomes_models_and_segments_then_a_second_run_updates_them(fakeSlicer, phantom, tmp_path):
    slicer = fakeSlicer
    from AnatomyINRShapeFromImageLib import compute

    widget, volume = _widget(slicer, phantom)
    parameters = widget._parameterNode
    widget.ui.inputVolumeSelector.setCurrentNode(volume)
    files = compute.WorkFiles(str(tmp_path))
    meshes = writeOutputs(files, phantom.labels, report(phantom.labels, left_ventricle={"self_intersections": 2}))
    before, volumeTime = slicer.mrmlScene.GetNumberOfNodes(), volume.GetMTime()
    widget.logic.applyResult(parameters, volume, compute.readWorkerResult(files, phantom.image.shape))
    widget.showResults()

    segmentation = parameters.outputSegmentation
    assert segmentation.GetName() == "Shape from image" and volume.GetMTime() == volumeTime
    segments = segmentation.GetSegmentation()
    assert [segments.GetNthSegment(i).GetName() for i in range(2)] == ["left_atrium", "left_ventricle"]
    np.testing.assert_allclose([segments.GetNthSegment(i).GetColor() for i in range(2)],
                               [compute.STRUCTURE_COLORS["left_atrium"], compute.STRUCTURE_COLORS["left_ventricle"]])
    masks = _segmentMasks(slicer, segmentation, volume)
    truth = np.asarray(phantom.labels.array)
    for value, name in compute.STRUCTURES.items():
        np.testing.assert_array_equal(masks[name], truth == value)
    for name, model in (("left_atrium", parameters.leftAtriumModel), ("left_ventricle", parameters.leftVentricleModel)):
        assert model.GetName() == compute.STRUCTURE_TITLES[name]
        np.testing.assert_allclose(slicer.util.arrayFromModelPoints(model), meshes[name].vertices, atol=1e-4)
        np.testing.assert_allclose(model.GetDisplayNode().GetColor(), compute.STRUCTURE_COLORS[name])
    assert slicer.mrmlScene.GetNumberOfNodes() == before + 6  # two models, the segmentation, their display nodes

    table = widget.ui.structuresTableWidget
    assert table.rowCount == 2 and [table.item(r, 0).text() for r in range(2)] == ["Left atrium", "Left ventricle"]
    assert float(table.item(1, 4).text()) == 2.0 and float(table.item(0, 4).text()) == 0.0
    summary = widget.ui.summaryLabel.text.splitlines()
    la, lv = (np.count_nonzero(truth == v) * 8.0 / 1000.0 for v in (1, 2))
    assert summary[0] == f"Left atrium {la:.1f} ml, left ventricle {lv:.1f} ml"
    assert summary[1:] == ["Model: the shipped model; computed in 4.2 s",
                           "Warning: intensity: median 812 HU inside the heart, the training phantoms 150-450 HU"]

    # A second run (eroded labels) updates the same nodes; a segment the user added is kept.
    ids = [parameters.leftAtriumSegmentId, parameters.leftVentricleSegmentId]
    models = [parameters.leftAtriumModel, parameters.leftVentricleModel]
    mine = segments.AddEmptySegment("", "my notes", (0.1, 0.9, 0.1))
    smaller = phantom.labels.with_array(np.where(np.pad(truth, 1)[2:, 1:-1, 1:-1] == truth, truth, 0).astype(np.uint8))
    count = slicer.mrmlScene.GetNumberOfNodes()
    writeOutputs(files, smaller)
    widget.logic.applyResult(parameters, volume, compute.readWorkerResult(files, phantom.image.shape))
    assert slicer.mrmlScene.GetNumberOfNodes() == count
    assert [parameters.leftAtriumSegmentId, parameters.leftVentricleSegmentId] == ids
    assert [parameters.leftAtriumModel, parameters.leftVentricleModel] == models
    masks = _segmentMasks(slicer, segmentation, volume)
    assert sorted(masks) == ["left_atrium", "left_ventricle", "my notes"] and segments.GetSegment(mine) is not None
    np.testing.assert_array_equal(masks["left_ventricle"], np.asarray(smaller.array) == 2)
    assert masks["left_ventricle"].sum() < (truth == 2).sum()


def test_a_result_breaking_the_contract_or_a_deleted_volume_changes_nothing(fakeSlicer, phantom, tmp_path):
    slicer = fakeSlicer
    import json

    from AnatomyINRShapeFromImageLib import compute
    from AnatomyINRSlicerLib.worker_protocol import WorkerOutcome, complete_run

    widget, volume = _widget(slicer, phantom)
    parameters = widget._parameterNode
    parameters.inputVolume = volume
    files = compute.WorkFiles(str(tmp_path))
    writeOutputs(files, phantom.labels)
    broken = report(phantom.labels)
    del broken["structures"]["left_ventricle"]["watertight"]
    with open(files.report, "w", encoding="utf-8") as stream:
        json.dump(broken, stream)
    before = slicer.mrmlScene.GetNumberOfNodes()
    cleaned = []
    outcome, result = complete_run(WorkerOutcome(True, False, 0, "Finished."),
                                   lambda: compute.readWorkerResult(files, phantom.image.shape),
                                   lambda result: widget.logic.applyResult(parameters, volume, result),
                                   lambda: cleaned.append(True))
    assert not outcome.ok and result is None and cleaned
    assert outcome.message == "Reading the result failed: the worker's report has no watertight for left_ventricle"
    assert slicer.mrmlScene.GetNumberOfNodes() == before and parameters.outputSegmentation is None

    writeOutputs(files, phantom.labels)
    slicer.mrmlScene.RemoveNode(volume)  # deleted while the worker ran
    before = slicer.mrmlScene.GetNumberOfNodes()
    with pytest.raises(ValueError, match="removed from the scene during the run"):
        widget.logic.applyResult(parameters, volume, compute.readWorkerResult(files, phantom.image.shape))
    assert slicer.mrmlScene.GetNumberOfNodes() == before


# ---- through the real worker (needs `image-to-mesh predict` and the shipped model) ---------------------------

def test_apply_with_the_shipped_model_then_a_rejected_checkpoint(fakeSlicer, phantom, tmp_path):
    slicer = fakeSlicer
    from AnatomyINRShapeFromImageLib import compute

    widget, volume = _widget(slicer, phantom)
    ui = widget.ui
    ui.inputVolumeSelector.setCurrentNode(volume)
    ui.applyButton.click()
    waitForRun(widget)
    assert ui.statusLabel.text.startswith("Finished."), (ui.statusLabel.text, ui.logTextEdit.toPlainText())
    parameters = widget._parameterNode
    masks = _segmentMasks(slicer, parameters.outputSegmentation, volume)
    import torch
    from AnatomyINRLib.image_to_mesh import predict_meshes

    torch.set_num_threads(1)
    expected = np.asarray(predict_meshes(phantom.image).labels.array)  # accuracy: the benchmark's job
    for value, name in compute.STRUCTURES.items():
        np.testing.assert_array_equal(masks[name], expected == value, err_msg=name)
    assert parameters.leftAtriumModel.GetPolyData().GetNumberOfPoints() == 2562
    assert ui.structuresTableWidget.rowCount == 2 and ui.summaryLabel.text.startswith("Left atrium")

    bad = tmp_path / "not_a_model.safetensors"
    bad.write_bytes(b"not a checkpoint")
    ui.checkpointLineEdit.text = str(bad)
    before = slicer.mrmlScene.GetNumberOfNodes()
    ui.applyButton.click()
    waitForRun(widget)
    assert errors() and errors()[0].startswith("The input was rejected"), errors()
    assert slicer.mrmlScene.GetNumberOfNodes() == before
