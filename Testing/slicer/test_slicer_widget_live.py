"""Auto-update in Surface from points: live refit through the persistent worker (``anatomy-inr serve``).

Executed against the fake Slicer with the real server: switching auto-update on
fits at once (preview, then full quality when edits pause), one server process
serves every run, an edit cancels the run it supersedes, switching auto-update off
stops the server. Also: deleting the point list during a run, and the segment
name rule, through the real code.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from fake_slicer import eventloop
from widget_harness import errors, placePoints, spherePoints, waitForRun

CENTER, RADIUS = np.array([10.0, -20.0, 30.0]), 12.0


@pytest.fixture(autouse=True)
def oneThread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _panel(slicer, count=60):
    import AnatomyINRSurfaceFromPoints as module

    widget = module.AnatomyINRSurfaceFromPointsWidget()
    widget.setup()
    widget.logic.optionOverrides = {"iterations": 20}
    points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "sac")
    widget.ui.inputPointsSelector.setCurrentNode(points)
    widget.ui.presetComboBox.setCurrentText("Fast preview")
    widget.ui.spacingSpinBox.value = 1.0
    placePoints(points, spherePoints(count, CENTER, RADIUS))
    return widget, points


def _statusBecomes(widget, text, timeout=240.0):
    assert eventloop.pumpUntil(lambda: widget.ui.statusLabel.text.startswith(text), timeout=timeout), (
        widget.ui.statusLabel.text)


def test_auto_update_previews_then_refines_in_one_server_and_cancels_superseded_runs(fakeSlicer):
    widget, points = _panel(fakeSlicer)
    ui = widget.ui
    assert widget.server is None  # nothing runs while auto-update is off
    ui.autoUpdateCheckBox.checked = True
    _statusBecomes(widget, "Preview shown")
    parameters = widget._parameterNode
    preview = widget.logic.lastResult
    assert parameters.outputModel is not None and preview.report["iterations"] <= 20
    pid = widget.server._proc.pid
    _statusBecomes(widget, "Finished.")  # the full-quality fit follows once edits pause
    full = widget.logic.lastResult
    assert full is not preview and len(full.mesh.vertices) > len(preview.mesh.vertices)  # 1.0 mm mesh vs 1.5 mm
    assert ui.residualsTable.rowCount == 60 and not errors()

    points.SetNthControlPointPosition(0, *(CENTER + [RADIUS + 1.0, 0.0, 0.0]))  # an edit: preview soon
    assert eventloop.pumpUntil(lambda: widget.logic.isRunning(), timeout=30)
    superseded = widget.logic.worker
    points.SetNthControlPointPosition(1, *(CENTER + [0.0, RADIUS + 1.0, 0.0]))  # a newer edit cancels it
    assert eventloop.pumpUntil(lambda: not superseded.isRunning, timeout=120)
    assert superseded.outcome.cancelled
    _statusBecomes(widget, "Preview shown")
    assert widget.server._proc.pid == pid  # every live run in the same server process

    server = widget.server
    ui.autoUpdateCheckBox.checked = False
    assert widget.server is None and not server.isAlive
    fieldFolder = widget.logic._fieldFolder
    assert os.path.isdir(fieldFolder)  # warm-start fields kept between runs...
    fakeSlicer.mrmlScene.Clear(0)
    assert ui.summaryLabel.text == "No fit yet." and not os.path.exists(fieldFolder)  # ...deleted with the scene


def test_deleting_the_point_list_during_a_run_still_gives_the_surface(fakeSlicer):
    widget, points = _panel(fakeSlicer, count=40)
    widget.ui.applyButton.click()
    assert widget.logic.isRunning()
    fakeSlicer.mrmlScene.RemoveNode(points)
    waitForRun(widget)
    assert widget.ui.statusLabel.text == "Finished.", widget.ui.statusLabel.text
    assert not errors() and widget._parameterNode.outputModel.GetName() == "sac surface"


def test_segment_names_never_overwrite_a_users_segment(fakeSlicer):
    from AnatomyINRSlicerLib.mrml_convert import uniqueName

    assert uniqueName("sac surface", []) == "sac surface"
    assert uniqueName("sac surface", ["sac surface", "sac surface 2", "other"]) == "sac surface 3"
