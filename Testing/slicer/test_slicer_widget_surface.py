"""Surface from points, as a clinician drives it: the widget executed against the fake Slicer.

setup → select the point list and a reference volume → place points → Apply (the real
worker, ``python -m AnatomyINRLib fit-points``, one thread, few iterations) → the
model, segment and residual table → scene close. The panel state (Apply, Cancel,
progress, status, summary, table) is asserted at each step.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from widget_harness import errors, placePoints, spherePoints, waitForRun

CENTER, RADIUS = np.array([10.0, -20.0, 30.0]), 12.0


@pytest.fixture(autouse=True)
def oneThread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _referenceVolume(slicer):
    """A 1.5 mm grid around the sphere (axis aligned), as a scalar volume."""
    ijkToRas = np.diag([1.5, 1.5, 1.5, 1.0])
    ijkToRas[:3, 3] = CENTER - 1.5 * 12
    return slicer.util.addVolumeFromArray(np.zeros((25, 25, 25), dtype=np.int16), ijkToRAS=ijkToRas, name="CT")


def _setUpPanel(fakeSlicer):
    import AnatomyINRSurfaceFromPoints as module

    widget = module.AnatomyINRSurfaceFromPointsWidget()
    widget.setup()
    widget.logic.optionOverrides = {"iterations": 50}
    return widget


def test_surface_widget_setup_apply_results_and_scene_close(fakeSlicer):
    slicer = fakeSlicer
    widget = _setUpPanel(slicer)
    ui = widget.ui
    assert ui.summaryLabel.text == "No fit yet." and ui.residualsTable.rowCount == 0
    titles = [ui.presetComboBox.itemText(i) for i in range(ui.presetComboBox.count)]
    assert titles == ["Fast preview", "Standard", "Accurate", "Paper reproduction"]
    assert ui.presetComboBox.currentText == "Standard"  # the parameter's default, "default", under its title
    assert not ui.applyButton.enabled and not ui.cancelButton.enabled

    points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "sac")
    reference = _referenceVolume(slicer)
    ui.inputPointsSelector.setCurrentNode(points)
    ui.referenceVolumeSelector.setCurrentNode(reference)
    ui.presetComboBox.setCurrentText("Fast preview")
    ui.spacingSpinBox.value = 1.5
    parameters = widget._parameterNode
    assert (parameters.inputPoints, parameters.referenceVolume, parameters.preset, parameters.spacingMm) == (
        points, reference, "fast", 1.5)
    placePoints(points, spherePoints(80, CENTER, RADIUS))
    placePoints(points, spherePoints(80, CENTER, RADIUS)[5:6])  # a duplicate: the library drops it from the fit
    assert ui.applyButton.enabled, ui.applyButton.toolTip

    nodesBefore = slicer.mrmlScene.GetNumberOfNodes()
    ui.applyButton.click()
    assert not errors(), errors()
    assert widget.logic.isRunning() and ui.cancelButton.enabled and not ui.applyButton.enabled
    assert ui.progressBar.visible
    folder = widget.logic.worker.command[widget.logic.worker.command.index("--output") + 1]
    waitForRun(widget)

    warning = "points: removed 1 duplicate point(s)"
    assert ui.statusLabel.text == f"Finished.\nWarning: {warning}" and not ui.progressBar.visible, ui.statusLabel.text
    assert f"anatomy-inr: warning: {warning}" in ui.logTextEdit.toPlainText()
    assert ui.applyButton.enabled and not ui.cancelButton.enabled
    model = parameters.outputModel
    assert model is not None and slicer.mrmlScene.GetNumberOfNodes() == nodesBefore + 4  # model, outliers, displays
    vertices = slicer.util.arrayFromModelPoints(model)
    distances = np.linalg.norm(vertices - CENTER, axis=1)
    assert len(vertices) > 500 and np.abs(distances - RADIUS).mean() < 0.5  # RAS, on the sphere
    assert ui.outputModelSelector.currentNode() is model
    assert ui.residualsTable.rowCount == 81  # one row per control point, labels in step with the points
    assert [ui.residualsTable.item(r, 0).text() for r in (0, 80)] == ["sac-1", "sac-81"]
    assert float(ui.residualsTable.item(80, 1).data(0)) == float(ui.residualsTable.item(5, 1).data(0))
    assert "of 81 farther than 1 mm" in ui.summaryLabel.text and "50 iterations" in ui.summaryLabel.text
    assert not os.path.exists(os.path.dirname(folder)), "the run's temporary folder was left behind"
    ui.residualsTable.clickCell(80, 0)  # a row click centres the views on that control point
    assert slicer.modules.markups.logic().jumps[-1] == (points.GetID(), 80, True)
    ui.outlierThresholdSpinBox.value = 0.01  # nearly every point is an outlier now: shown as their own red list
    outliers = parameters.outlierPoints
    # Count from the exact residuals: the table shows them rounded to 0.01 mm, the threshold's own resolution.
    expected = sum(1 for r in widget.logic.lastResult.residualsMm if float(r) > 0.01)
    assert outliers.GetNumberOfControlPoints() == expected > 0
    assert sum(1 for r in range(81) if ui.residualsTable.item(r, 2).text()) == expected  # the table flags the same rows
    assert outliers.GetLocked() and points.GetNumberOfControlPoints() == 81
    assert points.GetNumberOfControlPoints() == 81  # inputs untouched

    slicer.mrmlScene.Clear(0)
    assert slicer.mrmlScene.GetNumberOfNodes() == 2  # the (reset) parameter node and a new, empty point list
    fresh = widget._parameterNode.inputPoints
    assert fresh is not points and fresh.GetName() == "Surface points" and fresh.GetNumberOfControlPoints() == 0
    assert ui.summaryLabel.text == "No fit yet." and ui.residualsTable.rowCount == 0
    assert not ui.applyButton.enabled and ui.inputPointsSelector.currentNode() is fresh


def test_surface_widget_failed_run_shows_the_reason_and_keeps_the_log(fakeSlicer):
    slicer = fakeSlicer
    widget = _setUpPanel(slicer)
    ui = widget.ui
    points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "line")
    ui.inputPointsSelector.setCurrentNode(points)
    placePoints(points, np.outer(np.linspace(0.0, 50.0, 20), [1.0, 0.0, 0.0]))  # collinear: no closed surface
    nodesBefore = slicer.mrmlScene.GetNumberOfNodes()
    ui.applyButton.click()
    waitForRun(widget)
    reason = "The input was rejected: points: all points lie on a line; no closed surface can be fitted"
    assert ui.statusLabel.text == reason
    assert len(errors()) == 1 and errors()[0].startswith(reason + "\n\n") and "Details" in errors()[0]
    assert "anatomy-inr: error: points: all points lie on a line" in ui.logTextEdit.toPlainText()
    assert slicer.mrmlScene.GetNumberOfNodes() == nodesBefore and ui.summaryLabel.text == "No fit yet."
    assert ui.applyButton.enabled and not ui.cancelButton.enabled


def test_surface_results_come_back_with_a_scene_that_kept_them(fakeSlicer):
    """A reloaded scene has the model and the parameter node's record, not the Logic's memory."""
    slicer = fakeSlicer
    import vtk

    from AnatomyINRSlicerLib import mrml_convert
    from AnatomyINRSurfaceFromPointsLib import compute

    sphere = vtk.vtkSphereSource()
    sphere.SetRadius(RADIUS)
    sphere.SetCenter(*CENTER)
    sphere.Update()
    model = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", "sac surface")
    model.SetAndObserveMesh(sphere.GetOutput())
    points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "sac")
    placePoints(points, spherePoints(12, CENTER, RADIUS))
    residuals = np.linspace(0.0, 2.2, 12)
    saved = compute.SurfaceResult(mrml_convert.meshFromModel(model), residuals, None,
                                  {"seconds": 3.0, "iterations": 40, "device": "cpu"})
    import AnatomyINRSurfaceFromPoints as module

    parameters = module.AnatomyINRSurfaceFromPointsLogic().getParameterNode()
    parameters.inputPoints, parameters.outputModel = points, model
    parameters.resultRecord = compute.resultRecord(saved, [f"sac-{i + 1}" for i in range(12)], list(range(12)),
                                                   slicer.util.arrayFromMarkupsControlPoints(points))
    widget = _setUpPanel(slicer)  # a new session on that scene: nothing in memory
    ui = widget.ui
    assert ui.residualsTable.rowCount == 12 and ui.residualsTable.item(11, 0).text() == "sac-12"
    assert float(ui.residualsTable.item(11, 1).data(0)) == 2.2
    assert "6 of 12 farther than 1 mm" in ui.summaryLabel.text and "40 iterations" in ui.summaryLabel.text
    outliers = widget._parameterNode.outlierPoints
    assert outliers.GetNumberOfControlPoints() == int((residuals > 1.0).sum()) == 6


def test_surface_widget_cuda_without_a_gpu_says_so(fakeSlicer):
    slicer = fakeSlicer
    widget = _setUpPanel(slicer)
    ui = widget.ui
    points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "sac")
    ui.inputPointsSelector.setCurrentNode(points)
    placePoints(points, spherePoints(20, CENTER, RADIUS))
    ui.deviceComboBox.setCurrentText("cuda")
    ui.applyButton.click()
    waitForRun(widget)
    import torch

    if torch.cuda.is_available():  # the machine has a GPU: then the fit simply runs on it
        assert ui.statusLabel.text.startswith("Finished."), ui.statusLabel.text
        return
    reason = "The input was rejected: argument --device: 'cuda' is not available on this machine; available: auto, cpu"
    assert ui.statusLabel.text == reason and errors()[0].startswith(reason)


def test_surface_widget_place_points_button_starts_persistent_placing(fakeSlicer):
    """"Place points" makes the selected list active (a new one when none) and keeps place mode on."""
    slicer = fakeSlicer
    widget = _setUpPanel(slicer)
    ui, markupsLogic = widget.ui, slicer.modules.markups.logic()
    started = widget._parameterNode.inputPoints  # the empty list set up for a scene without one
    slicer.mrmlScene.RemoveNode(started)  # the user deleted it: no list is selected now
    assert widget._parameterNode.inputPoints is None and markupsLogic.placeModes == []
    nodesBefore = slicer.mrmlScene.GetNumberOfNodes()

    ui.placePointsButton.click()
    created = widget._parameterNode.inputPoints
    assert created is not None and created is not started and created.GetName() == "Surface points"
    assert created.IsA("vtkMRMLMarkupsFiducialNode") and slicer.mrmlScene.GetNodeByID(created.GetID()) is created
    assert slicer.mrmlScene.GetNumberOfNodes() == nodesBefore + 1
    assert ui.inputPointsSelector.currentNode() is created
    assert markupsLogic.activeList is created and markupsLogic.placeModes == [(True, None)]

    curve = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsCurveNode", "neck")
    ui.inputPointsSelector.setCurrentNode(curve)
    nodesBefore = slicer.mrmlScene.GetNumberOfNodes()
    ui.placePointsButton.click()  # a selected list is used as it is: no new node
    assert slicer.mrmlScene.GetNumberOfNodes() == nodesBefore and widget._parameterNode.inputPoints is curve
    assert markupsLogic.activeList is curve and markupsLogic.placeModes == [(True, None), (True, None)]
    placePoints(curve, spherePoints(3, CENTER, RADIUS))  # what the views' clicks add reaches the panel
    assert "3 so far" in ui.applyButton.toolTip, ui.applyButton.toolTip
