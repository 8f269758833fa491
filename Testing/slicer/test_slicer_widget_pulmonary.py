"""Pulmonary segments, as a clinician drives it: the widget executed against the fake Slicer.

TotalSegmentator-style inputs (one segmentation holding the five named lobes among other
organs, another holding ``lung_trachea_bronchia`` and ``lung_vessels``, on the CT's grid)
from the library's small lung phantom → points placed one per segmental bronchus, each
named by the panel → Apply builds the ``pulmonary segments`` command → the real worker
→ 18 named, coloured segments and the planning table. Labelmap inputs: a rejected
nodule and a cancelled run leave the scene as it was; a run into an existing
segmentation replaces its content.
"""

from __future__ import annotations

import numpy as np
import pytest

from widget_harness import errors, waitForRun


@pytest.fixture(autouse=True)
def oneThread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def phantom():
    from AnatomyINRLib.phantoms.lung import make_lung_phantom

    return make_lung_phantom(1, "small")


def _segmentation(slicer, name, reference, masks):
    """A segmentation on ``reference``'s grid with ``{segment name: (i, j, k) mask}`` in order."""
    from AnatomyINRSlicerLib.vtk_convert import kjiFromIjk

    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    for segmentName, mask in masks.items():
        segmentId = node.GetSegmentation().AddEmptySegment("", segmentName, (0.5, 0.5, 0.5))
        slicer.util.updateSegmentBinaryLabelmapFromArray(kjiFromIjk(mask.astype(np.uint8)), node, segmentId, reference)
    return node


def _totalSegmentatorScene(slicer, phantom):
    from AnatomyINRSlicerLib import mrml_convert

    ct = mrml_convert.addVolumeFromImageGrid(phantom.ct, "chest CT")
    lobes = np.asarray(phantom.lobes.array)
    names = ("lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right", "lung_upper_lobe_left",
             "lung_lower_lobe_left")
    organs = {"liver": np.zeros(lobes.shape, bool)}
    organs.update({name: lobes == value for value, name in reversed(list(enumerate(names, start=1)))})
    total = _segmentation(slicer, "TotalSegmentator", ct, organs)
    vessels = np.asarray(phantom.arteries.array) | np.asarray(phantom.veins.array)
    trees = _segmentation(slicer, "lung vessels", ct, {"lung_vessels": vessels,
                                                       "lung_trachea_bronchia": np.asarray(phantom.airways.array) > 0})
    return total, trees


def _recordCommands(monkeypatch):
    import slicer

    commands = []
    launch = slicer.util.launchConsoleProcess
    monkeypatch.setattr(slicer.util, "launchConsoleProcess",
                        lambda args, *rest, **options: commands.append(list(args)) or launch(args, *rest, **options))
    return commands


def _parsed(command):
    from AnatomyINRLib.cli import build_parser

    assert command[1:4] == ["-m", "AnatomyINRLib", "pulmonary"]
    return build_parser().parse_args(command[3:])


def test_points_named_in_order_apply_command_and_outputs(fakeSlicer, phantom, monkeypatch):
    slicer = fakeSlicer
    import AnatomyINRPulmonarySegments as module
    from AnatomyINRLib.io.points import read_points
    from AnatomyINRLib.pulmonary import SEGMENT_COLORS
    from AnatomyINRPulmonarySegmentsLib import compute

    widget = module.AnatomyINRPulmonarySegmentsWidget()
    widget.setup()
    ui = widget.ui
    names = [ui.nextSegmentComboBox.itemText(i) for i in range(ui.nextSegmentComboBox.count)]
    assert names == list(compute.SEGMENT_NAMES) and ui.nextSegmentComboBox.currentText == "RUL S1"
    assert [ui.methodComboBox.itemData(i) for i in range(ui.methodComboBox.count)] == list(compute.METHODS)
    assert ui.summaryLabel.text == "No segments yet." and not ui.applyButton.enabled
    assert ui.applyButton.toolTip.startswith("Select the lobes and the airways")
    total, trees = _totalSegmentatorScene(slicer, phantom)
    ui.lobesSelector.setCurrentNode(total)
    ui.airwaysSelector.setCurrentNode(trees)
    assert ui.applyButton.toolTip.startswith("Select or create the segment point list")

    ui.placePointsButton.click()
    points = widget._parameterNode.segmentPoints
    assert points is not None and slicer.modules.markups.logic().activeList is points
    truth = dict(zip(phantom.segment_points.labels, phantom.segment_points.points))
    for name in compute.SEGMENT_NAMES[:3]:
        points.AddControlPoint(*truth[name])  # a click: the default label, renamed by the panel
    assert [points.GetNthControlPointLabel(i) for i in range(3)] == ["RUL S1", "RUL S2", "RUL S3"]
    assert ui.nextSegmentComboBox.currentText == "RML S4" and ui.pointsStatusLabel.text.endswith("next: RML S4")
    ui.nextSegmentComboBox.setCurrentText("RML S5")  # out of order: the user picks the name
    points.AddControlPoint(*truth["RML S5"])
    assert points.GetNthControlPointLabel(3) == "RML S5" and ui.nextSegmentComboBox.currentText == "RML S4"
    for name in [n for n in compute.SEGMENT_NAMES if n not in ("RUL S1", "RUL S2", "RUL S3", "RML S5")][:-1]:
        points.AddControlPoint(*truth[name])
    assert not ui.applyButton.enabled and ui.applyButton.toolTip == "Segment points: 17 of 18 points placed; next: LLL S10."
    points.AddControlPoint(*truth["LLL S10"])
    assert ui.applyButton.enabled, ui.applyButton.toolTip
    assert ui.pointsStatusLabel.text == "All 18 segmental bronchi have a point."
    ui.resectLineEdit.text = "RUL S1, RUL S9"
    assert not ui.applyButton.enabled and "'RUL S9' is not a segment name" in ui.applyButton.toolTip
    ui.resectLineEdit.text = "rul s2, RUL S1"
    assert widget._parameterNode.resectSegments == "rul s2, RUL S1" and ui.applyButton.enabled

    commands = _recordCommands(monkeypatch)
    times = [node.GetMTime() for node in (total, trees, points)]
    ui.applyButton.click()
    assert not errors(), errors()
    parsed = _parsed(commands[0])
    assert parsed.pulmonary_command == "segments" and parsed.segmental_labels is None and parsed.checkpoint is None
    assert (parsed.arteries, parsed.veins, parsed.nodule, parsed.resect) == (None, None, None, ["RUL S1", "RUL S2"])
    sent = read_points(parsed.segment_points)
    assert sorted(sent.labels) == sorted(compute.SEGMENT_NAMES)
    np.testing.assert_allclose(sent.points, [truth[label] for label in sent.labels])
    waitForRun(widget)
    assert ui.statusLabel.text == "Finished.", (ui.statusLabel.text, ui.logTextEdit.toPlainText())
    assert [node.GetMTime() for node in (total, trees, points)] == times

    segmentation = widget._parameterNode.outputSegmentation.GetSegmentation()
    segments = [segmentation.GetNthSegment(i) for i in range(segmentation.GetNumberOfSegments())]
    assert [s.GetName() for s in segments] == list(compute.SEGMENT_NAMES)
    np.testing.assert_allclose([s.GetColor() for s in segments], [SEGMENT_COLORS[v] for v in range(1, 19)], atol=1e-6)
    lungMl = np.count_nonzero(np.asarray(phantom.lobes.array)) * 8.0 / 1000.0  # 2 mm voxels
    masks = [slicer.util.arrayFromSegmentBinaryLabelmap(widget._parameterNode.outputSegmentation,
                                                        segmentation.GetNthSegmentID(i), slicer.util.getNode("chest CT"))
             for i in range(18)]
    table = widget._parameterNode.planningTable.GetTable()
    volumes = [table.GetValue(row, 1).ToDouble() for row in range(18)]
    assert volumes == pytest.approx([m.sum() * 8.0 / 1000.0 for m in masks], abs=0.001)
    assert sum(volumes) == pytest.approx(lungMl, abs=0.01)
    assert table.GetValue(18, 0).ToString() == "Both lungs" and table.GetValue(20, 0).ToString() == "Remaining lung"
    assert ui.planningTableWidget.rowCount == table.GetNumberOfRows() == 21
    assert "Resecting RUL S1, RUL S2" in ui.summaryLabel.text and "remaining lung" in ui.summaryLabel.text


def _labelmapScene(slicer, phantom, widget):
    from AnatomyINRSlicerLib import mrml_convert

    parameters = widget._parameterNode
    parameters.lobes = mrml_convert.addVolumeFromImageGrid(phantom.lobes, "lobes", labelmap=True)
    parameters.airways = mrml_convert.addVolumeFromImageGrid(phantom.airways, "airways", labelmap=True)
    parameters.segmentalLabels = mrml_convert.addVolumeFromImageGrid(phantom.airways_labeled, "labelled", labelmap=True)
    widget.ui.methodComboBox.setCurrentIndex(1)
    widget.ui.presetComboBox.setCurrentText("Fast preview")
    assert (parameters.method, parameters.preset) == ("labels", "fast")
    assert widget.ui.segmentalLabelsSelector.enabled and not widget.ui.segmentPointsSelector.enabled


def test_rejected_and_cancelled_runs_leave_the_scene_then_a_run_fills_the_chosen_output(fakeSlicer, phantom):
    slicer = fakeSlicer
    import AnatomyINRPulmonarySegments as module
    from fake_slicer import eventloop

    widget = module.AnatomyINRPulmonarySegmentsWidget()
    widget.setup()
    ui = widget.ui
    _labelmapScene(slicer, phantom, widget)
    nodule = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "nodule")
    nodule.AddControlPoint(500.0, 500.0, 500.0)
    ui.noduleSelector.setCurrentNode(nodule)
    assert ui.applyButton.enabled, ui.applyButton.toolTip
    before = slicer.mrmlScene.GetNumberOfNodes()
    ui.applyButton.click()
    waitForRun(widget)
    assert errors() and "nodule: it lies outside the lungs" in errors()[0]
    assert slicer.mrmlScene.GetNumberOfNodes() == before and widget.logic.lastResult is None

    ui.noduleSelector.setCurrentNode(None)
    ui.applyButton.click()
    assert ui.cancelButton.enabled
    ui.cancelButton.click()
    waitForRun(widget)
    assert ui.statusLabel.text.startswith("Cancelled"), ui.statusLabel.text
    assert slicer.mrmlScene.GetNumberOfNodes() == before and ui.summaryLabel.text == "No segments yet."

    chosen = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my segments")
    chosen.CreateDefaultDisplayNodes()
    chosen.GetSegmentation().AddEmptySegment("", "old", (1.0, 0.0, 0.0))
    ui.outputSegmentationSelector.setCurrentNode(chosen)
    ui.resectLineEdit.text = "LLL S10"
    count = slicer.mrmlScene.GetNumberOfNodes()
    ui.applyButton.click()
    waitForRun(widget)
    eventloop.processEvents()
    assert ui.statusLabel.text == "Finished.", ui.logTextEdit.toPlainText()
    assert widget._parameterNode.outputSegmentation is chosen and chosen.GetSegmentation().GetNumberOfSegments() == 18
    assert slicer.mrmlScene.GetNumberOfNodes() == count + 1  # the table; the loaded file went into the chosen node
    rows = {ui.planningTableWidget.item(r, 0).text(): r for r in range(ui.planningTableWidget.rowCount)}
    assert ui.planningTableWidget.item(rows["LLL S10"], 3).text() == "resect" and "Remaining lung" in rows


def test_device_and_preset_reach_the_options_device_only_for_method_b(fakeSlicer, tmp_path):
    import AnatomyINRPulmonarySegments as module
    from AnatomyINRPulmonarySegmentsLib import compute

    widget = module.AnatomyINRPulmonarySegmentsWidget()
    widget.setup()
    ui = widget.ui
    assert [ui.deviceComboBox.itemText(i) for i in range(ui.deviceComboBox.count)] == ["auto", "cpu", "cuda"]
    assert [ui.presetComboBox.itemData(i) for i in range(ui.presetComboBox.count)] == list(compute.PRESETS)
    ui.deviceComboBox.setCurrentText("cpu")
    ui.presetComboBox.setCurrentText("Fast preview")
    options = widget.logic.options(widget._parameterNode)
    assert (options.device, options.preset) == ("cpu", "fast")
    files = compute.WorkFiles(str(tmp_path))
    methodA = compute.workerArguments(files, {"--segment-points": "p.mrk.json"}, [], options)
    methodB = compute.workerArguments(files, {"--checkpoint": "m.safetensors"}, [], options)
    assert "--device" not in methodA and methodB[methodB.index("--device") + 1] == "cpu"
    ui.methodComboBox.setCurrentIndex(2)
    assert widget._parameterNode.method == "checkpoint" and ui.checkpointLineEdit.enabled
    assert ui.applyButton.toolTip.startswith("Select the lobes")
