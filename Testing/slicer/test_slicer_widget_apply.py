"""Apply follows the inputs in every module's panel (executed against the fake Slicer).

The bug this guards: the parameter-node wrapper stores node references but does
not observe them, so placing points in the selected list never refreshed Apply
(Surface from points observed the points only with auto-update on; Nested walls and
Vessel blend never did). A clinician selected a list, placed points, and Apply
stayed disabled.
"""

from __future__ import annotations

import importlib

import numpy as np

from widget_harness import placePoints, spherePoints


def _widget(moduleName: str):
    module = importlib.import_module(moduleName)
    widget = getattr(module, f"{moduleName}Widget")()
    widget.setup()
    return widget


def test_surface_apply_enables_as_points_are_placed_with_auto_update_off(fakeSlicer):
    widget = _widget("AnatomyINRSurfaceFromPoints")
    ui = widget.ui
    created = ui.inputPointsSelector.currentNode()  # the scene had no point list: one is ready to place points in
    assert created is not None and created.GetName() == "Surface points"
    assert not ui.applyButton.enabled and "(0 so far)" in ui.applyButton.toolTip
    points = fakeSlicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "wall")
    ui.inputPointsSelector.setCurrentNode(points)
    assert widget._parameterNode.inputPoints is points and not widget._parameterNode.autoUpdate
    assert not ui.applyButton.enabled and "(0 so far)" in ui.applyButton.toolTip
    placePoints(points, spherePoints(9))
    assert not ui.applyButton.enabled and "(9 so far)" in ui.applyButton.toolTip
    placePoints(points, spherePoints(1, seed=1))
    assert ui.applyButton.enabled, ui.applyButton.toolTip
    points.RemoveNthControlPoint(0)
    assert not ui.applyButton.enabled and "(9 so far)" in ui.applyButton.toolTip


def test_surface_apply_follows_a_deleted_input(fakeSlicer):
    widget = _widget("AnatomyINRSurfaceFromPoints")
    points = fakeSlicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "wall")
    widget.ui.inputPointsSelector.setCurrentNode(points)
    placePoints(points, spherePoints(12))
    assert widget.ui.applyButton.enabled
    fakeSlicer.mrmlScene.RemoveNode(points)
    assert widget._parameterNode.inputPoints is None
    assert not widget.ui.applyButton.enabled and widget.ui.applyButton.toolTip == "Select the surface points."


def test_nested_apply_enables_as_points_are_placed_in_each_list(fakeSlicer):
    widget = _widget("AnatomyINRNestedWalls")
    ui = widget.ui
    lumen = fakeSlicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "lumen")
    outer = fakeSlicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "outer")
    ui.lumenPointsSelector.setCurrentNode(lumen)
    ui.outerPointsSelector.setCurrentNode(outer)
    assert not ui.applyButton.enabled and ui.applyButton.toolTip.startswith("lumen:")
    placePoints(lumen, spherePoints(10, radius=7.0))
    assert not ui.applyButton.enabled and ui.applyButton.toolTip.startswith("outer:"), ui.applyButton.toolTip
    placePoints(outer, spherePoints(10, radius=12.0))
    assert ui.applyButton.enabled, ui.applyButton.toolTip
    outer.RemoveNthControlPoint(3)
    assert not ui.applyButton.enabled and ui.applyButton.toolTip.startswith("outer:")


def test_blend_apply_enables_when_a_point_input_gets_its_points(fakeSlicer):
    widget = _widget("AnatomyINRVesselBlend")
    ui = widget.ui
    first = fakeSlicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "first")
    second = fakeSlicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "second")
    for node in (first, second):
        ui.inputSelector.setCurrentNode(node)
        ui.addInputButton.click()
    assert ui.inputsTable.rowCount == 2
    assert not ui.applyButton.enabled and ui.applyButton.toolTip.startswith("first:")
    placePoints(first, spherePoints(10))
    placePoints(second, spherePoints(10, center=(0.0, 0.0, 0.0)))
    assert ui.applyButton.enabled, ui.applyButton.toolTip
    second.SetNthControlPointPosition(0, *np.zeros(3))  # a moved point keeps Apply enabled
    assert ui.applyButton.enabled


def test_auto_update_checks_dependencies_before_any_worker_starts(fakeSlicer, monkeypatch):
    """Torch missing: switching auto-update on asks to install first (declined: the panel says why)."""
    import PyTorchUtils
    from fake_slicer import util

    monkeypatch.setattr(PyTorchUtils.PyTorchUtilsLogic, "torchInstalled", lambda self: False)
    widget = _widget("AnatomyINRSurfaceFromPoints")
    points = fakeSlicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "wall")
    widget.ui.inputPointsSelector.setCurrentNode(points)
    placePoints(points, spherePoints(12))
    util.answers["confirm"] = False
    widget.ui.autoUpdateCheckBox.checked = True
    from fake_slicer import eventloop

    assert eventloop.pumpUntil(lambda: bool(util.dialogs), timeout=5)
    assert util.dialogs[0][0] == "confirm" and "PyTorch" in util.dialogs[0][1]
    assert widget.server is None and not widget.logic.isRunning()
    assert widget.ui.statusLabel.text == "Python packages were not installed; the fit cannot run without them."


def test_device_selector_and_threads_reach_every_modules_options(fakeSlicer):
    from AnatomyINRSlicerLib.serve_protocol import default_threads

    for moduleName in ("AnatomyINRSurfaceFromPoints", "AnatomyINRNestedWalls", "AnatomyINRVesselBlend"):
        widget = _widget(moduleName)
        ui = widget.ui
        assert [ui.deviceComboBox.itemText(i) for i in range(ui.deviceComboBox.count)] == ["auto", "cpu", "cuda"]
        assert ui.deviceComboBox.currentText == "auto"
        ui.deviceComboBox.setCurrentText("cpu")
        options = widget.logic.options(widget._parameterNode)
        assert (widget._parameterNode.device, options.device, options.threads) == ("cpu", "cpu", default_threads())
        widget.cleanup()
        fakeSlicer.mrmlScene.Clear(0)
