"""AnatomyINR "Surface from points": a smooth, closed surface through clicked points.

Template-shaped scripted module (Module, ParameterNode, Widget, Logic, Test).
The fit runs in a background process (``AnatomyINRSlicerLib.runner``) so Slicer
stays responsive; the computation itself is
``AnatomyINRSurfaceFromPointsLib.compute``, tested outside Slicer.
"""

from __future__ import annotations

import shutil
from typing import Annotated, Callable, Optional

import numpy as np
import qt
import slicer
from slicer import (vtkMRMLMarkupsFiducialNode, vtkMRMLMarkupsNode, vtkMRMLModelNode, vtkMRMLScalarVolumeNode,
                    vtkMRMLSegmentationNode)
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest

from AnatomyINRSlicerLib import dependencies, mrml_convert
from AnatomyINRSlicerLib.live import PersistentWorker
from AnatomyINRSlicerLib.module_base import LiveRefitModuleWidget, WorkerModuleLogic, describeModule
from AnatomyINRSlicerLib.panel import jumpToControlPoint, showOutlierPoints, startPlacingPoints
from AnatomyINRSlicerLib.progress import fillDistanceTable
from AnatomyINRSlicerLib.sample_data import registerSampleData
from AnatomyINRSlicerLib.serve_protocol import DEVICES, default_threads
from AnatomyINRSlicerLib.worker_protocol import FIT_POINTS_STAGES
from AnatomyINRSurfaceFromPointsLib import compute

HELP_TEXT = """
Fits a smooth, watertight surface through points placed on the boundary of a structure (for
example an aortic aneurysm wall) with an implicit neural representation, so concave shapes are kept.
<p>Place at least 10 points (a point list, or a curve's control points) spread over the
<i>whole</i> surface, denser where it bends. Outputs: a model, optionally a segment on the
reference volume's grid, and each point's distance to the surface (outliers highlighted).
Auto-update re-fits from the previous surface while you edit points. One closed surface per
point list; the first Apply installs PyTorch. See the
<a href="https://github.com/AnatomyINR/SlicerAnatomyINR/blob/main/docs/modules/AnatomyINRSurfaceFromPoints.md">user guide</a>.</p>
"""
ACKNOWLEDGEMENT_TEXT = """
Method: D. Alblas, C. Brune, K.K. Yeung, J.M. Wolterink. "Going off-grid: continuous implicit
neural representations for 3D vascular modeling." STACOM 2022 (MICCAI workshop), LNCS 13593.
It builds on A. Gropp, L. Yariv, N. Haim, M. Atzmon, Y. Lipman. "Implicit Geometric
Regularization for Learning Shapes" (IGR), ICML 2020.
"""


class AnatomyINRSurfaceFromPoints(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describeModule(self.parent, _("Surface from points"), _(HELP_TEXT), _(ACKNOWLEDGEMENT_TEXT))
        # SampleData exists once Slicer has started (the template's hook).
        slicer.app.connect("startupCompleted()", lambda: registerSampleData("AnatomyINRSurfaceFromPoints", __file__))


@parameterNodeWrapper
class AnatomyINRSurfaceFromPointsParameterNode:
    """Inputs, parameters and outputs, saved with the scene."""

    inputPoints: vtkMRMLMarkupsNode
    referenceVolume: vtkMRMLScalarVolumeNode
    preset: Annotated[str, Choice(list(compute.PRESETS))] = "default"
    smoothness: Annotated[float, WithinRange(0.0, 1.0)] = 0.5
    spacingMm: Annotated[float, WithinRange(0.1, 5.0)] = 0.5
    outlierThresholdMm: Annotated[float, WithinRange(0.01, 50.0)] = 1.0
    autoUpdate: bool = False
    device: Annotated[str, Choice(list(DEVICES))] = "auto"
    outputModel: vtkMRMLModelNode
    outputSegmentation: vtkMRMLSegmentationNode
    outlierPoints: vtkMRMLMarkupsFiducialNode
    resultRecord: str = ""  # the last fit's table and summary (compute.resultRecord), restored with the scene
    outputSegmentId: str = ""  # the segment this module wrote (updated by the next fit; others never overwritten)


class AnatomyINRSurfaceFromPointsWidget(LiveRefitModuleWidget):
    """GUI: live refit while points are edited, the distance table; the rest is ``LiveRefitModuleWidget``.

    Auto-update runs in a persistent worker (``anatomy-inr serve``, started on demand and
    stopped when auto-update is switched off or the scene closes): a preview (short
    warm-started fit, coarse mesh) right after an edit, the full-quality fit once edits pause.
    """

    _parameterNode: Optional[AnatomyINRSurfaceFromPointsParameterNode]

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._autoUpdating = False

    def setup(self) -> None:
        self.logic = AnatomyINRSurfaceFromPointsLogic()
        self.setupPanel("UI/AnatomyINRSurfaceFromPoints.ui", _("Fit the surface in a background process."),
                        _("Failed to start the surface fit."), _("Starting the fit..."), compute.PRESETS)
        self.setupLiveRefit(_("Preview shown; the full-quality surface follows when you pause."))
        self.ui.outlierThresholdSpinBox.connect("valueChanged(double)", self.showResults)
        self.ui.residualsTable.connect("cellClicked(int,int)", self.onResidualClicked)
        self.ui.placePointsButton.connect("clicked(bool)", self.onPlacePoints)
        self.initializeParameterNode()

    def onParameterNodeModified(self, caller=None, event=None) -> None:
        autoUpdate = bool(self._parameterNode is not None and self._parameterNode.autoUpdate)
        if autoUpdate != self._autoUpdating:
            self._autoUpdating = autoUpdate
            if autoUpdate:
                self.liveRefit.edited()  # switching auto-update on fits the current points at once
            else:
                self.stopLiveRefit()
        super().onParameterNodeModified(caller, event)

    def initializeParameterNode(self) -> None:
        """As the template does, plus a new point list to place points in when the scene has none."""
        super().initializeParameterNode()
        parameters = self._parameterNode
        if parameters is not None and parameters.inputPoints is None and \
                slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLMarkupsFiducialNode") is None:
            parameters.inputPoints = self._newPointList()

    def _newPointList(self) -> vtkMRMLMarkupsFiducialNode:
        return slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", _("Surface points"))

    def onPlacePoints(self, checked: bool = False) -> None:
        """Click points in the views into the selected point list (a new one when none is selected)."""
        if self._parameterNode is None:
            return
        if self._parameterNode.inputPoints is None:
            self._parameterNode.inputPoints = self._newPointList()
        startPlacingPoints(self._parameterNode.inputPoints)

    def setParameterNode(self, inputParameterNode) -> None:
        super().setParameterNode(inputParameterNode)
        if inputParameterNode is not None and self.logic.restoreResult(inputParameterNode):
            self.showResults()  # a scene saved with a fit: its table and summary come back

    def onInputEdited(self, caller, event) -> None:
        super().onInputEdited(caller, event)
        if self._autoUpdating:
            self.liveRefit.edited()

    def onSceneStartClose(self, caller, event) -> None:
        self.stopLiveRefit()
        super().onSceneStartClose(caller, event)

    def cleanup(self) -> None:
        self.stopLiveRefit()
        super().cleanup()

    def showResults(self, threshold: Optional[float] = None) -> None:
        """Summary, distance table and outlier points of the last fit (``threshold``: from the spin box)."""
        if threshold is None:
            threshold = self._parameterNode.outlierThresholdMm if self._parameterNode else 1.0
        rows = self.logic.residualRows(threshold)
        self.ui.summaryLabel.text = self.logic.summary(threshold) if rows else _("No fit yet.")
        fillDistanceTable(self.ui.residualsTable, rows, _("outlier"), keys=self.logic.lastIndices)
        if rows and self._parameterNode is not None:
            self.logic.showOutliers(self._parameterNode, threshold)

    def onResidualClicked(self, row: int, column: int) -> None:
        """Centre the views on the clicked row's control point."""
        item = self.ui.residualsTable.item(row, 0)
        if item is not None and self._parameterNode is not None and item.data(qt.Qt.UserRole) is not None:
            jumpToControlPoint(self._parameterNode.inputPoints, int(item.data(qt.Qt.UserRole)))


class AnatomyINRSurfaceFromPointsLogic(WorkerModuleLogic):
    """Runs the fit in a background worker and writes results into MRML nodes.

    Usable without the GUI: ``runBlocking(parameters)`` in scripts and tests.
    The scene is modified only after a successful run.
    """

    lastResult: Optional[compute.SurfaceResult]

    def __init__(self) -> None:
        super().__init__()
        self.lastLabels: list = []
        self.lastIndices: list = []  # control point index of each fitted point (its residual row)
        self.lastPoints = np.zeros((0, 3))  # (N, 3) RAS mm of the fitted points
        self._pointsName = ""
        self._fieldFiles: dict = {}  # points node ID -> field file of its last fit (warm start)
        self._fieldFolder: Optional[str] = None

    def getParameterNode(self) -> AnatomyINRSurfaceFromPointsParameterNode:
        return AnatomyINRSurfaceFromPointsParameterNode(super().getParameterNode())

    def cannotRunReason(self, parameters: Optional[AnatomyINRSurfaceFromPointsParameterNode]) -> Optional[str]:
        """Why Apply is not possible yet (None: it is)."""
        if parameters is None or parameters.inputPoints is None:
            return _("Select the surface points.")
        placed = parameters.inputPoints.GetNumberOfDefinedControlPoints()
        if placed < compute.MIN_POINTS:
            return _("Place at least {count} points ({placed} so far).").format(count=compute.MIN_POINTS, placed=placed)
        if parameters.outputSegmentation is not None and parameters.referenceVolume is None:
            return _("A segmentation output needs a reference volume.")
        return None

    def inputNodes(self, parameters: AnatomyINRSurfaceFromPointsParameterNode) -> list:
        return [parameters.inputPoints] if parameters.inputPoints is not None else []

    def options(self, parameters: AnatomyINRSurfaceFromPointsParameterNode) -> compute.SurfaceOptions:
        chosen = {"preset": parameters.preset, "smoothness": parameters.smoothness, "spacingMm": parameters.spacingMm,
                  "device": parameters.device, "threads": default_threads()}
        return compute.SurfaceOptions(**{**chosen, **self.optionOverrides})

    def start(self, parameters: AnatomyINRSurfaceFromPointsParameterNode, onProgress: Callable,
              onFinished: Callable, warmStart: bool = False, quality: str = "full",
              server: Optional[PersistentWorker] = None):
        """Write the inputs to a temporary folder and launch the worker; returns at once.

        ``onFinished(outcome, result)`` runs on the main thread after the
        results (if any) are in the scene; ``result`` is None on failure or cancel.
        ``warmStart`` starts from the last field fitted to the same point list;
        ``quality="preview"`` fits briefly on a coarse mesh (no segment); ``server``
        runs it in that persistent worker instead of a new process.
        """
        self.checkCanStart(parameters, _("A fit is already running."))
        pointsNode = parameters.inputPoints
        pointSet = mrml_convert.pointSetFromMarkups(pointsNode)
        indices = [int(i) for i in np.flatnonzero(mrml_convert.definedControlPoints(pointsNode))]
        options = self.options(parameters)
        if quality == "preview":
            options = compute.previewOptions(options)
        # Captured now: the user may delete or change these nodes while the worker runs.
        target = compute.OutputTarget(pointsNode.GetName(), parameters.outputSegmentation, parameters.referenceVolume)
        withLabelmap = quality == "full" and target.segmentation is not None
        reference = mrml_convert.imageGridFromVolume(target.reference, copyVoxels=False) if withLabelmap else None
        initField = self._fieldFiles.get(pointsNode.GetID()) if warmStart else None
        files = compute.WorkFiles(slicer.util.tempDirectory("AnatomyINR"))

        def writeInputs() -> list:
            compute.writeWorkerInputs(files, pointSet.points, options, pointSet.labels, reference)
            return compute.workerArguments(files, options, withLabelmap, initField)

        def keepFieldAndApply(result: compute.SurfaceResult) -> None:
            self._keepField(pointsNode.GetID(), files.inr)
            self.applyResult(parameters, result, pointSet.labels, target)
            self.lastIndices, self.lastPoints = indices, pointSet.points
            parameters.resultRecord = compute.resultRecord(result, pointSet.labels, indices, pointSet.points)

        return self.launch("fit-points", FIT_POINTS_STAGES, files.folder, writeInputs,
                           lambda: compute.readWorkerResult(files, withLabelmap), keepFieldAndApply, onProgress,
                           onFinished, server)

    def resetSession(self) -> None:
        """Forget results and delete the warm-start fields (the scene they belong to is closing)."""
        self.lastResult, self.lastLabels, self._fieldFiles, self.lastIndices = None, [], {}, []
        if self._fieldFolder is not None:
            shutil.rmtree(self._fieldFolder, ignore_errors=True)
            self._fieldFolder = None

    def _keepField(self, key: str, fieldFile: str) -> None:
        """Move the fitted field out of the run folder for the next warm start."""
        if self._fieldFolder is None:
            self._fieldFolder = slicer.util.tempDirectory("AnatomyINR-fields")
        target = f"{self._fieldFolder}/{key}.safetensors"
        shutil.copyfile(fieldFile, target)
        self._fieldFiles[key] = target

    def applyResult(self, parameters: AnatomyINRSurfaceFromPointsParameterNode, result: compute.SurfaceResult,
                    labels: list, target: compute.OutputTarget) -> None:
        """Write a successful result into the output nodes (creating the model if needed).

        ``target`` holds what the run started with (point list name, segmentation,
        reference): inputs deleted meanwhile do not matter; a segmentation or reference
        deleted meanwhile means no segment is written.
        """
        model = parameters.outputModel
        if model is None:
            model = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", f"{target.pointsName} surface")
            mrml_convert.updateModelFromMesh(model, result.mesh)
            model.GetDisplayNode().SetColor(*compute.SEGMENT_COLOR)
            parameters.outputModel = model
        else:
            mrml_convert.updateModelFromMesh(model, result.mesh)
        if result.labelmap is not None and target.inScene():
            name = f"{target.pointsName} {compute.SEGMENT_NAME_SUFFIX}"
            segmentIds = mrml_convert.writeLabelmapToSegmentation(
                result.labelmap, target.segmentation, target.reference, {1: (name, compute.SEGMENT_COLOR)},
                ownSegmentIds=[parameters.outputSegmentId])
            parameters.outputSegmentId = segmentIds[0]
        self.lastResult, self.lastLabels, self._pointsName = result, list(labels or []), target.pointsName

    def residualRows(self, thresholdMm: float) -> list:
        """``[(point label, distance mm, is outlier)]`` of the last fit."""
        return compute.residualRows(self.lastResult, self.lastLabels, thresholdMm) if self.lastResult else []

    def restoreResult(self, parameters: AnatomyINRSurfaceFromPointsParameterNode) -> bool:
        """Take the last fit back from the parameter node and output model (no fit in memory); True if done."""
        if self.lastResult is not None or not parameters.resultRecord or parameters.outputModel is None:
            return False
        mesh = mrml_convert.meshFromModel(parameters.outputModel)
        self.lastResult, self.lastLabels, self.lastIndices, self.lastPoints = compute.resultFromRecord(
            parameters.resultRecord, mesh)
        self._pointsName = parameters.inputPoints.GetName() if parameters.inputPoints is not None else _("points")
        return True

    def showOutliers(self, parameters: AnatomyINRSurfaceFromPointsParameterNode, thresholdMm: float) -> None:
        """The last fit's outliers as their own locked red point list (the input list is not touched)."""
        mask = compute.outlierMask(self.lastResult.residualsMm, thresholdMm)
        if len(mask) != len(self.lastPoints):
            return
        labels = [label for label, outlier in zip(self.lastLabels, mask) if outlier]
        parameters.outlierPoints = showOutlierPoints(parameters.outlierPoints, f"{self._pointsName} outliers",
                                                     self.lastPoints[mask], labels)

    def summary(self, thresholdMm: float) -> str:
        return compute.summaryText(self.lastResult, thresholdMm) if self.lastResult is not None else ""


class AnatomyINRSurfaceFromPointsTest(ScriptedLoadableModuleTest):
    """Whole-module tests inside Slicer with synthetic data (registered with slicer_add_python_unittest)."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        for test in (self.test_SphereWithSegment, self.test_FailedFitLeavesSceneUnchanged, self.test_Cancel):
            self.setUp()
            test()

    def _sphereScene(self, count: int = 150):
        rng = np.random.default_rng(0)
        directions = rng.normal(size=(count, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        self.center, self.radius = np.array([10.0, -20.0, 30.0]), 15.0
        pointsNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "sphere")
        slicer.util.updateMarkupsControlPointsFromArray(pointsNode, self.center + self.radius * directions)
        cos, sin = np.cos(np.radians(30.0)), np.sin(np.radians(30.0))  # oblique grid: 1.5 mm voxels rotated about S
        ijkToRas = np.eye(4)
        ijkToRas[:3, :3] = 1.5 * np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
        ijkToRas[:3, 3] = self.center - ijkToRas[:3, :3] @ np.array([20.0, 20.0, 20.0])
        reference = slicer.util.addVolumeFromArray(np.zeros((41, 41, 41), dtype=np.int16),
                                                   ijkToRAS=slicer.util.vtkMatrixFromArray(ijkToRas), name="reference")
        logic = AnatomyINRSurfaceFromPointsLogic()
        parameters = logic.getParameterNode()
        parameters.inputPoints, parameters.referenceVolume, parameters.preset = pointsNode, reference, "fast"
        return logic, parameters

    def test_SphereWithSegment(self) -> None:
        dependencies.ensureDependencies(askConfirmation=False)
        logic, parameters = self._sphereScene()
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "segmentation")
        parameters.outputSegmentation = segmentation
        outcome, result = logic.runBlocking(parameters)
        self.assertTrue(outcome.ok, outcome.message)
        self.assertIsNotNone(parameters.outputModel)
        self.assertAlmostEqual(result.areaMm2 / (4 * np.pi * self.radius**2), 1.0, delta=0.05)
        self.assertLess(float(np.median(result.residualsMm)), 0.5)
        segmentId = segmentation.GetSegmentation().GetSegmentIdBySegmentName("sphere surface")
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentId, parameters.referenceVolume)
        self.assertAlmostEqual(mask.sum() * 1.5**3 / (4 / 3 * np.pi * self.radius**3), 1.0, delta=0.1)
        outcome, _result = logic.runBlocking(parameters, warmStart=True)
        self.assertTrue(outcome.ok, outcome.message)

    def test_FailedFitLeavesSceneUnchanged(self) -> None:
        dependencies.ensureDependencies(askConfirmation=False)
        logic, parameters = self._sphereScene()
        line = np.outer(np.linspace(0.0, 50.0, 20), [1.0, 0.0, 0.0])  # collinear: no closed surface exists
        slicer.util.updateMarkupsControlPointsFromArray(parameters.inputPoints, line)
        before = slicer.mrmlScene.GetNumberOfNodes()
        outcome, result = logic.runBlocking(parameters)
        self.assertTrue(not outcome.ok and result is None and "rejected" in outcome.message, outcome.message)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)

    def test_Cancel(self) -> None:
        logic, parameters = self._sphereScene()
        parameters.preset = "accurate"
        before = slicer.mrmlScene.GetNumberOfNodes()
        worker = logic.start(parameters, lambda *unused: None, lambda *unused: None)
        worker.cancel()
        outcome = worker.waitForCompletion()
        self.assertTrue(outcome.cancelled)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)
