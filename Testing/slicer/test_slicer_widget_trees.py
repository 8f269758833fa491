"""Tree synthesis, as a user drives it: the widget executed against the fake Slicer.

Sample: the checkpoint picked in the file picker, two trees, a seed → Apply builds the
``trees sample`` command → the real worker → one model per tree with a surface, named by
its index. Compress: a model picked as the tree → Apply writes it and builds ``trees
compress`` → the real worker → the re-extracted model, the size and error table, the INR
file saved where asked; the input model is untouched. A cancelled run and a missing
checkpoint leave the scene as it was; a segmentation lists its segments for the choice.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from trees_fixtures import treeMesh
from widget_harness import errors, waitForRun


@pytest.fixture(autouse=True)
def oneThread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _recordCommands(monkeypatch):
    import slicer

    commands = []
    launch = slicer.util.launchConsoleProcess
    monkeypatch.setattr(slicer.util, "launchConsoleProcess",
                        lambda args, *rest, **options: commands.append(list(args)) or launch(args, *rest, **options))
    return commands


def _parsed(command):
    from AnatomyINRLib.cli import build_parser

    assert command[1:4] == ["-m", "AnatomyINRLib", "trees"]
    return build_parser().parse_args(command[3:])


def _widget():
    import AnatomyINRTreeSynthesis as module

    widget = module.AnatomyINRTreeSynthesisWidget()
    widget.setup()
    return widget


def test_sample_two_trees_from_the_picked_checkpoint(fakeSlicer, treeCheckpoint, monkeypatch):
    slicer = fakeSlicer
    from AnatomyINRLib.trees import sample_trees
    from AnatomyINRTreeSynthesisLib import compute

    widget = _widget()
    ui = widget.ui
    assert [ui.taskComboBox.itemData(i) for i in range(ui.taskComboBox.count)] == list(compute.TASKS)
    assert [ui.presetComboBox.itemText(i) for i in range(ui.presetComboBox.count)] == [
        compute.PRESET_TITLES[p] for p in compute.PRESETS]
    assert ui.sampleCollapsibleButton.enabled and not ui.compressCollapsibleButton.enabled
    assert not ui.applyButton.enabled and ui.applyButton.toolTip.startswith("Choose a checkpoint")
    assert ui.summaryLabel.text == "No trees yet."
    ui.checkpointPathLineEdit.currentPath = treeCheckpoint.checkpoint
    assert widget._parameterNode.checkpointPath == treeCheckpoint.checkpoint and ui.applyButton.enabled
    ui.countSpinBox.value = 2
    ui.seedSpinBox.value = 7
    ui.sampleSpacingSpinBox.value = 1.0
    parameters = widget._parameterNode
    assert (parameters.count, parameters.seed, parameters.sampleSpacingMm) == (2, 7, 1.0)

    commands = _recordCommands(monkeypatch)
    before = slicer.mrmlScene.GetNumberOfNodes()
    ui.applyButton.click()
    assert not errors(), errors()
    parsed = _parsed(commands[0])
    assert (parsed.trees_command, parsed.checkpoint, parsed.count, parsed.seed, parsed.spacing) == (
        "sample", treeCheckpoint.checkpoint, 2, 7, 1.0)
    assert ui.temperatureSpinBox.value == 0.0 and parsed.temperature is None  # "checkpoint's own"
    assert not ui.keepAllPiecesCheckBox.checked and not parsed.keep_all_components  # the largest piece by default
    waitForRun(widget)
    assert ui.statusLabel.text == "Finished.", (ui.statusLabel.text, ui.logTextEdit.toPlainText())
    expected = sample_trees(treeCheckpoint.checkpoint, 2, spacing_mm=1.0, seed=7)
    names = [compute.sampleName(i) for i, mesh in enumerate(expected.meshes) if mesh is not None]
    models = [slicer.util.getNode(name) for name in names]
    assert slicer.mrmlScene.GetNumberOfNodes() == before + 2 * len(names)  # a model and its display node each
    for model, mesh in zip(models, [m for m in expected.meshes if m is not None]):
        np.testing.assert_allclose(slicer.util.arrayFromModelPoints(model), mesh.vertices, atol=1e-4)
        assert model.GetDisplayNode().GetColor() == pytest.approx(compute.SAMPLE_COLOR)
    assert ui.summaryLabel.text.startswith(f"{len(names)} trees sampled (seed 7, ")


def test_compress_a_model_saves_the_inr_and_fills_the_table(fakeSlicer, treeCheckpoint, tmp_path, monkeypatch):
    slicer = fakeSlicer
    from AnatomyINRLib import io
    from AnatomyINRSlicerLib import mrml_convert
    from AnatomyINRTreeSynthesisLib import compute

    widget = _widget()
    ui = widget.ui
    ui.taskComboBox.setCurrentIndex(1)
    assert widget._parameterNode.task == "compress" and ui.compressCollapsibleButton.enabled
    assert ui.applyButton.toolTip.startswith("Select the tree to compress")
    tree = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", "my tree")
    source = treeMesh(seed=2)
    mrml_convert.updateModelFromMesh(tree, source)
    ui.sourceSelector.setCurrentNode(tree)
    assert ui.applyButton.enabled and not ui.segmentComboBox.enabled
    ui.compressSpacingSpinBox.value = 1.0
    ui.saveInrPathLineEdit.currentPath = str(tmp_path / "tree.safetensors")
    widget.logic.optionOverrides = {"configFile": treeCheckpoint.fitConfig, "device": "cpu"}
    commands = _recordCommands(monkeypatch)
    treeTime = tree.GetMTime()
    ui.applyButton.click()
    assert not errors(), errors()
    parsed = _parsed(commands[0])
    assert (parsed.trees_command, parsed.spacing, parsed.config, parsed.preset) == (
        "compress", 1.0, treeCheckpoint.fitConfig, "fast")
    sent = io.read_mesh(parsed.input)
    np.testing.assert_allclose(sent.vertices, source.vertices, atol=1e-5)
    waitForRun(widget)
    assert ui.statusLabel.text == "Finished.", (ui.statusLabel.text, ui.logTextEdit.toPlainText())
    assert tree.GetMTime() == treeTime
    output = widget._parameterNode.outputModel
    assert output.GetName() == "Compressed tree"
    report = widget.logic.lastResult.report
    np.testing.assert_allclose(slicer.util.arrayFromModelPoints(output), widget.logic.lastResult.mesh.vertices,
                               atol=1e-4)
    assert ui.resultsTableWidget.rowCount == 11
    assert ui.resultsTableWidget.item(5, 0).text() == "ASD to the source"
    assert float(ui.resultsTableWidget.item(5, 1).data(0)) == round(report["error"]["asd_mm"], 2)
    assert "smaller" in ui.summaryLabel.text and "ASD" in ui.summaryLabel.text
    kept = tmp_path / "tree.safetensors"
    assert os.path.getsize(kept) + os.path.getsize(tmp_path / "tree.json") == report["size"]["inr_bytes"]

    # a cancelled run changes nothing: the output model keeps its surface, no node is added
    count, points = slicer.mrmlScene.GetNumberOfNodes(), slicer.util.arrayFromModelPoints(output).copy()
    widget.logic.optionOverrides = {"preset": "fast", "device": "cpu"}
    ui.applyButton.click()
    assert ui.cancelButton.enabled
    ui.cancelButton.click()
    waitForRun(widget)
    assert ui.statusLabel.text.startswith("Cancelled"), ui.statusLabel.text
    assert slicer.mrmlScene.GetNumberOfNodes() == count
    np.testing.assert_array_equal(slicer.util.arrayFromModelPoints(output), points)


def test_missing_checkpoint_is_reported_and_segments_are_listed(fakeSlicer, tmp_path):
    slicer = fakeSlicer
    widget = _widget()
    ui = widget.ui
    ui.checkpointPathLineEdit.currentPath = str(tmp_path / "gone.safetensors")
    before = slicer.mrmlScene.GetNumberOfNodes()
    ui.applyButton.click()
    assert errors() and "gone.safetensors' does not exist" in errors()[0]
    assert slicer.mrmlScene.GetNumberOfNodes() == before and not widget.logic.isRunning()

    ui.taskComboBox.setCurrentIndex(1)
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "trees")
    first = segmentation.GetSegmentation().AddEmptySegment("", "arteries", (1.0, 0.0, 0.0))
    second = segmentation.GetSegmentation().AddEmptySegment("", "veins", (0.0, 0.0, 1.0))
    ui.sourceSelector.setCurrentNode(segmentation)
    assert ui.segmentComboBox.enabled and ui.segmentComboBox.count == 2
    assert ui.segmentComboBox.currentText == "arteries" and widget._parameterNode.sourceSegmentId == first
    ui.segmentComboBox.setCurrentIndex(1)
    assert widget._parameterNode.sourceSegmentId == second and ui.applyButton.enabled
    segmentation.GetSegmentation().RemoveSegment(second)
    assert widget.logic.cannotRunReason(widget._parameterNode) == "Choose the segment to compress."


def test_temperature_reaches_the_worker_which_refuses_it_for_a_tokens_checkpoint(fakeSlicer, treeCheckpoint,
                                                                                  monkeypatch):
    """The panel's temperature is passed as ``--temperature``; the test checkpoint has no hull head, so the
    worker refuses it in one line, shown in the status, and the scene is left as it was."""
    slicer = fakeSlicer
    widget = _widget()
    ui = widget.ui
    ui.checkpointPathLineEdit.currentPath = treeCheckpoint.checkpoint
    ui.temperatureSpinBox.value = 1.5
    assert widget._parameterNode.temperature == 1.5
    assert widget.logic.sampleOptions(widget._parameterNode).temperature == 1.5
    commands = _recordCommands(monkeypatch)
    before = slicer.mrmlScene.GetNumberOfNodes()
    ui.applyButton.click()
    assert _parsed(commands[0]).temperature == 1.5
    waitForRun(widget)
    assert "temperature" in ui.statusLabel.text and "hull" in ui.statusLabel.text, ui.statusLabel.text
    assert slicer.mrmlScene.GetNumberOfNodes() == before
    ui.temperatureSpinBox.value = 0.0
    assert widget.logic.sampleOptions(widget._parameterNode).temperature is None


def test_keep_every_piece_reaches_the_worker_and_the_models(fakeSlicer, treeCheckpoint, monkeypatch):
    """Checked, the box sends ``--keep-all-components``; the worker reports that every piece was kept and
    the models are the library's all-pieces meshes."""
    slicer = fakeSlicer
    from AnatomyINRLib.trees import sample_trees
    from AnatomyINRTreeSynthesisLib import compute

    widget = _widget()
    ui = widget.ui
    ui.checkpointPathLineEdit.currentPath = treeCheckpoint.checkpoint
    ui.countSpinBox.value = 2
    ui.seedSpinBox.value = 5
    ui.sampleSpacingSpinBox.value = 1.0
    ui.keepAllPiecesCheckBox.checked = True
    assert widget._parameterNode.keepAllPieces and widget.logic.sampleOptions(widget._parameterNode).keepAllPieces
    commands = _recordCommands(monkeypatch)
    ui.applyButton.click()
    assert not errors(), errors()
    assert _parsed(commands[0]).keep_all_components
    waitForRun(widget)
    assert ui.statusLabel.text == "Finished.", (ui.statusLabel.text, ui.logTextEdit.toPlainText())
    report = widget.logic.lastResult.report
    assert report["components"] == "all"
    assert report["in_pieces"] >= 1  # seed 5: a tree in two pieces, so the models below differ from the largest piece
    assert "every piece kept" in ui.summaryLabel.text
    expected = sample_trees(treeCheckpoint.checkpoint, 2, spacing_mm=1.0, seed=5, keep_all_components=True)
    for index, mesh in enumerate(expected.meshes):
        if mesh is not None:
            model = slicer.util.getNode(compute.sampleName(index))
            np.testing.assert_allclose(slicer.util.arrayFromModelPoints(model), mesh.vertices, atol=1e-4)
