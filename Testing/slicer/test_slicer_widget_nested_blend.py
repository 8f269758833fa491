"""Nested walls and Vessel blend, as a clinician drives them: widgets executed against the fake Slicer.

Each: setup → select inputs → place points (or add models) → Apply through the real
worker (one thread, few iterations) → outputs in the scene and results in the panel
→ scene close, with the panel state asserted at each step.
"""

from __future__ import annotations

import numpy as np
import pytest
import vtk

from widget_harness import errors, placePoints, waitForRun


@pytest.fixture(autouse=True)
def oneThread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def capsulePoints(radius: float, count: int = 90, seed: int = 0) -> np.ndarray:
    """Points on a capsule (axis S, 30 mm long between the cap centres) of the given radius, mm."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, 2.0 * np.pi, count)
    side = np.column_stack([radius * np.cos(angle), radius * np.sin(angle), rng.uniform(-15.0, 15.0, count)])
    cap = rng.normal(size=(count // 3, 3))
    cap = radius * cap / np.linalg.norm(cap, axis=1, keepdims=True)
    cap[:, 2] = np.abs(cap[:, 2])
    return np.vstack([side, cap + [0.0, 0.0, 15.0], cap * [1.0, 1.0, -1.0] - [0.0, 0.0, 15.0]])


def test_nested_widget_two_surfaces_apply_results_and_scene_close(fakeSlicer):
    slicer = fakeSlicer
    import AnatomyINRNestedWalls as module

    widget = module.AnatomyINRNestedWallsWidget()
    widget.setup()
    widget.logic.optionOverrides = {"iterations": 40}
    ui = widget.ui
    assert ui.summaryLabel.text == "No fit yet." and not ui.applyButton.enabled
    lumen = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "lumen")
    outer = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "outer")
    ui.lumenPointsSelector.setCurrentNode(lumen)
    ui.outerPointsSelector.setCurrentNode(outer)
    ui.presetComboBox.setCurrentText("Fast preview")
    ui.spacingSpinBox.value = 2.0
    placePoints(lumen, capsulePoints(6.0))
    placePoints(outer, capsulePoints(10.0, seed=1))
    assert ui.applyButton.enabled, ui.applyButton.toolTip

    ui.applyButton.click()
    assert not errors(), errors()
    assert ui.cancelButton.enabled and not ui.applyButton.enabled and ui.progressBar.visible
    waitForRun(widget)
    assert ui.statusLabel.text == "Finished.", ui.statusLabel.text
    parameters = widget._parameterNode
    assert parameters.lumenModel is not None and parameters.outerModel is not None and parameters.innerModel is None
    for model, radius in ((parameters.lumenModel, 6.0), (parameters.outerModel, 10.0)):
        vertices = slicer.util.arrayFromModelPoints(model)
        middle = np.abs(vertices[:, 2]) < 10.0  # the cylindrical part: distance to the S axis is the radius
        distances = np.linalg.norm(vertices[middle, :2], axis=1)
        assert abs(np.median(distances) - radius) < 1.0, (model.GetName(), np.median(distances))
        display = model.GetDisplayNode()
        assert display.GetActiveScalarName() == "thickness_mm" and display.GetColorNodeID() == parameters.thicknessColors.GetID()
    table = parameters.measurementsTable
    assert table is not None and table.GetNumberOfRows() == ui.measurementsTableWidget.rowCount > 0
    assert "mm" in ui.legendLabel.text and ui.summaryLabel.text != "No fit yet."
    assert ui.applyButton.enabled and not ui.cancelButton.enabled and not ui.progressBar.visible

    slicer.mrmlScene.Clear(0)
    assert slicer.mrmlScene.GetNumberOfNodes() == 1
    assert ui.summaryLabel.text == "No fit yet." and ui.measurementsTableWidget.rowCount == 0 and ui.legendLabel.text == ""
    assert not ui.applyButton.enabled


def _tube(slicer, name, radius, horizontal):
    source = vtk.vtkCylinderSource()
    source.SetRadius(radius)
    source.SetHeight(30.0)
    source.SetResolution(24)
    transform = vtk.vtkTransform()
    if horizontal:
        transform.RotateZ(90.0)
    moved = vtk.vtkTransformFilter()
    moved.SetTransform(transform)
    moved.SetInputConnection(source.GetOutputPort())
    closed = vtk.vtkCleanPolyData()
    closed.SetInputConnection(moved.GetOutputPort())
    triangles = vtk.vtkTriangleFilter()
    triangles.SetInputConnection(closed.GetOutputPort())
    triangles.Update()
    model = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", name)
    model.SetAndObserveMesh(triangles.GetOutput())
    return model


def test_blend_widget_two_tubes_apply_results_and_scene_close(fakeSlicer):
    slicer = fakeSlicer
    import AnatomyINRVesselBlend as module

    widget = module.AnatomyINRVesselBlendWidget()
    widget.setup()
    ui = widget.ui
    assert ui.summaryLabel.text == "No blend yet." and not ui.applyButton.enabled
    tubes = [_tube(slicer, "vertical", 4.0, False), _tube(slicer, "horizontal", 3.0, True)]
    for tube in tubes:
        ui.inputSelector.setCurrentNode(tube)
        ui.addInputButton.click()
    assert ui.inputsTable.rowCount == 2 and ui.inputsTable.item(1, 0).text() == "horizontal"
    ui.spacingSpinBox.value = 1.0
    ui.presetComboBox.setCurrentText("Fast preview")
    assert ui.applyButton.enabled, ui.applyButton.toolTip
    meshTimes = [tube.GetMTime() for tube in tubes]

    ui.applyButton.click()
    assert not errors(), errors()
    waitForRun(widget)
    assert ui.statusLabel.text == "Finished.", ui.statusLabel.text
    output = widget._parameterNode.outputModel
    assert output is not None and output.GetPolyData().GetNumberOfPoints() > 500
    bounds = output.GetPolyData().GetBounds()
    assert bounds[1] - bounds[0] == pytest.approx(30.0, abs=2.5) and bounds[3] - bounds[2] == pytest.approx(30.0, abs=2.5)
    assert ui.qualityTable.rowCount == 2 and [tube.GetMTime() for tube in tubes] == meshTimes
    assert ui.applyButton.enabled and not ui.cancelButton.enabled

    slicer.mrmlScene.Clear(0)
    assert ui.summaryLabel.text == "No blend yet." and ui.inputsTable.rowCount == 0 and ui.qualityTable.rowCount == 0
    assert not ui.applyButton.enabled
