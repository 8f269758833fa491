"""AnatomyINR "Nested walls": lumen, thrombus and wall of an aneurysm from points, nested by construction.

Template-shaped scripted module (Module, ParameterNode, Widget, Logic, Test).
The joint fit runs in a background process (the library's ``fit-nested``
command through ``AnatomyINRSlicerLib.runner``); the computation around it is
``AnatomyINRNestedWallsLib.compute``, tested outside Slicer.
"""

from __future__ import annotations

import shutil
from typing import Annotated, Callable, Optional

import numpy as np
import slicer
import vtk
from slicer import (vtkMRMLColorTableNode, vtkMRMLMarkupsLineNode, vtkMRMLMarkupsNode, vtkMRMLModelNode,
                    vtkMRMLTableNode)
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from AnatomyINRNestedWallsLib import compute
from AnatomyINRSlicerLib import dependencies, mrml_convert
from AnatomyINRSlicerLib.progress import ProgressPresenter, fillTable
from AnatomyINRSlicerLib.runner import BackgroundWorker, startWorkerJob
from AnatomyINRSlicerLib.vtk_convert import tableFromRows
from AnatomyINRSlicerLib.worker_protocol import FIT_NESTED_STAGES, WorkerOutcome

HELP_TEXT = """
Fits the lumen, the inner wall (thrombus surface) and the outer wall of an aneurysm together, from
one point list each, with a single implicit neural network whose surfaces are nested by construction:
the lumen can never leave the thrombus, nor the thrombus the wall, anywhere in space.
<p>Place at least 10 points on each boundary (more where it bends); the inner wall is optional (two
surfaces: lumen and outer wall). Outputs: one model per surface coloured by thickness (distance to the
next surface, mm; legend in the panel), a table with the volumes of lumen, thrombus and wall and the
maximum diameter Dmax orthogonal to the centreline, and a line at Dmax. Inputs are never modified;
the first Apply installs PyTorch. See the
<a href="https://github.com/AnatomyINR/SlicerAnatomyINR/blob/main/docs/modules/AnatomyINRNestedWalls.md">user guide</a>.</p>
"""
ACKNOWLEDGEMENT_TEXT = """
Method: D. Alblas, C. Brune, K.K. Yeung, J.M. Wolterink. "Going off-grid: continuous implicit
neural representations for 3D vascular modeling." STACOM 2022 (MICCAI workshop), LNCS 13593
(joint multi-surface fitting of the AAA lumen, thrombus and wall). Nesting by construction,
thickness maps and Dmax are AnatomyINR additions.
"""
ROLES = ("lumen", "inner", "outer")


class AnatomyINRNestedWalls(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Nested walls")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Surface Models")]
        self.parent.dependencies = []
        self.parent.contributors = ["AnatomyINR developers"]
        self.parent.helpText = _(HELP_TEXT)
        self.parent.acknowledgementText = _(ACKNOWLEDGEMENT_TEXT)


@parameterNodeWrapper
class AnatomyINRNestedWallsParameterNode:
    """Inputs, parameters and outputs, saved with the scene."""

    lumenPoints: vtkMRMLMarkupsNode
    innerPoints: vtkMRMLMarkupsNode
    outerPoints: vtkMRMLMarkupsNode
    minThicknessMm: Annotated[float, WithinRange(0.0, 10.0)] = 0.0
    preset: Annotated[str, Choice(list(compute.PRESETS))] = "default"
    spacingMm: Annotated[float, WithinRange(0.2, 5.0)] = 0.5
    lumenModel: vtkMRMLModelNode
    innerModel: vtkMRMLModelNode
    outerModel: vtkMRMLModelNode
    measurementsTable: vtkMRMLTableNode
    dmaxLine: vtkMRMLMarkupsLineNode
    thicknessColors: vtkMRMLColorTableNode


class AnatomyINRNestedWallsWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """GUI: binds widgets to the parameter node and forwards actions to the Logic."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/AnatomyINRNestedWalls.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = AnatomyINRNestedWallsLogic()
        self.progress = ProgressPresenter(self.ui.progressBar, self.ui.statusLabel)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        if self.logic is not None:
            self.logic.cancel()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event) -> None:
        self.logic.cancel()
        self.logic.lastResult = None
        self.setParameterNode(None)
        self.showResults()

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode: Optional[AnatomyINRNestedWallsParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self.onParameterNodeModified()

    def onParameterNodeModified(self, caller=None, event=None) -> None:
        reason = self.logic.cannotFitReason(self._parameterNode)
        running = self.logic.isRunning()
        self.ui.applyButton.enabled = reason is None and not running
        self.ui.applyButton.toolTip = reason or _("Fit the nested surfaces in a background process.")
        self.ui.cancelButton.enabled = running

    def onApplyButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to start the nested fit."), waitCursor=True):
            dependencies.ensureDependencies()
            self.logic.startFit(self._parameterNode, self.progress.update, self.onFitFinished)
            self.progress.started(_("Starting the fit..."))
            self.onParameterNodeModified()

    def onCancelButton(self) -> None:
        self.logic.cancel()

    def onFitFinished(self, outcome: WorkerOutcome, result: Optional[compute.NestedResult]) -> None:
        self.progress.finished(outcome)
        if outcome.ok:
            self.showResults()
        self.onParameterNodeModified()

    def showResults(self) -> None:
        result = self.logic.lastResult
        self.ui.summaryLabel.text = compute.summaryText(result) if result is not None else _("No fit yet.")
        self.ui.legendLabel.text = compute.legendHtml(compute.legendEntries(compute.thicknessRange(result.report))) \
            if result is not None else ""
        rows = compute.measurementRows(result.report) if result is not None else []
        fillTable(self.ui.measurementsTableWidget, rows, sortable=False)


class AnatomyINRNestedWallsLogic(ScriptedLoadableModuleLogic):
    """Runs the nested fit in a background worker and writes models, table and Dmax line.

    Usable without the GUI: ``runBlocking(parameters)`` in scripts and tests.
    The scene is modified only after a successful run; inputs never.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.worker: Optional[BackgroundWorker] = None
        self.lastResult: Optional[compute.NestedResult] = None

    def getParameterNode(self) -> AnatomyINRNestedWallsParameterNode:
        return AnatomyINRNestedWallsParameterNode(super().getParameterNode())

    def isRunning(self) -> bool:
        return self.worker is not None and self.worker.isRunning

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    @staticmethod
    def pointNodes(parameters: AnatomyINRNestedWallsParameterNode) -> list:
        """The selected point lists, innermost first (the inner wall is optional)."""
        nodes = [parameters.lumenPoints, parameters.innerPoints, parameters.outerPoints]
        return [node for node in nodes if node is not None]

    def cannotFitReason(self, parameters: Optional[AnatomyINRNestedWallsParameterNode]) -> Optional[str]:
        """Why Apply is not possible yet (None: it is)."""
        if parameters is None or parameters.lumenPoints is None or parameters.outerPoints is None:
            return _("Select the lumen and outer wall points (inner wall optional).")
        nodes = self.pointNodes(parameters)
        if len({node.GetID() for node in nodes}) != len(nodes):
            return _("Each surface needs its own point list.")
        for node in nodes:
            markups: vtkMRMLMarkupsNode = node
            placed = markups.GetNumberOfDefinedControlPoints()
            if placed < compute.MIN_POINTS:
                return _("{name}: place at least {count} points ({placed} so far).").format(
                    name=markups.GetName(), count=compute.MIN_POINTS, placed=placed)
        return None

    @staticmethod
    def options(parameters: AnatomyINRNestedWallsParameterNode) -> compute.NestedOptions:
        return compute.NestedOptions(preset=parameters.preset, minThicknessMm=parameters.minThicknessMm,
                                     spacingMm=parameters.spacingMm)

    def startFit(self, parameters: AnatomyINRNestedWallsParameterNode, onProgress: Callable, onFinished: Callable,
                 options: Optional[compute.NestedOptions] = None) -> BackgroundWorker:
        """Write the point lists to a temporary folder and launch the worker; returns at once.

        ``onFinished(outcome, result)`` runs on the main thread after the outputs
        are in the scene; ``result`` is None on failure or cancel.
        """
        reason = self.cannotFitReason(parameters)
        if reason is not None:
            raise ValueError(reason)
        if self.isRunning():
            raise RuntimeError(_("A fit is already running."))
        pointSets = [mrml_convert.pointSetFromMarkups(node) for node in self.pointNodes(parameters)]
        names = compute.surfaceNames(len(pointSets))
        files = compute.WorkFiles(slicer.util.tempDirectory("AnatomyINR-nested"))
        try:
            arguments = compute.workerArguments(files, compute.writeWorkerInputs(files, pointSets),
                                                options or self.options(parameters))
            self.worker = startWorkerJob("fit-nested", arguments, FIT_NESTED_STAGES, files.folder,
                                         lambda: compute.readWorkerResult(files, names),
                                         lambda result: self.applyResult(parameters, result), onProgress, onFinished)
        except Exception:
            shutil.rmtree(files.folder, ignore_errors=True)
            raise
        return self.worker

    def runBlocking(self, parameters: AnatomyINRNestedWallsParameterNode,
                    options: Optional[compute.NestedOptions] = None) -> tuple:
        """Run and wait; returns ``(outcome, result)``. For scripts and tests."""
        finished = []
        worker = self.startFit(parameters, lambda *unused: None, lambda *args: finished.append(args), options)
        worker.waitForCompletion()
        return finished[0]

    def applyResult(self, parameters: AnatomyINRNestedWallsParameterNode, result: compute.NestedResult) -> None:
        """Models coloured by thickness, the measurements table and the Dmax line (created if needed)."""
        colors = self._colorTable(parameters)
        scalarRange = compute.thicknessRange(result.report)
        for name, mesh in zip(result.names, result.meshes):
            self._showSurface(parameters, name, mesh, colors, scalarRange)
        table = parameters.measurementsTable
        if table is None:
            table = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", _("Nested walls measurements"))
            parameters.measurementsTable = table
        table.SetAndObserveTable(tableFromRows((("Measure", "string"), ("Value", "double"), ("Unit", "string")),
                                               compute.measurementRows(result.report)))
        table.SetUseColumnTitleAsColumnHeader(True)
        ends = compute.dmaxEndpoints(result.report)
        if ends is not None:
            line = parameters.dmaxLine
            if line is None:
                line = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", "Dmax")
                parameters.dmaxLine = line
            slicer.util.updateMarkupsControlPointsFromArray(line, ends, world=True)
        self.lastResult = result

    def _colorTable(self, parameters: AnatomyINRNestedWallsParameterNode) -> vtkMRMLColorTableNode:
        """The thickness colour scale (one per parameter node, created on the first result)."""
        colors = parameters.thicknessColors
        if colors is None:
            colors = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLColorTableNode", _("Wall thickness"))
            ramp = compute.thicknessColors(256)
            colors.SetTypeToUser()
            colors.SetNumberOfColors(len(ramp))
            for index, (r, g, b) in enumerate(ramp):
                colors.SetColor(index, float(r), float(g), float(b), 1.0)
            parameters.thicknessColors = colors
        return colors

    def _showSurface(self, parameters: AnatomyINRNestedWallsParameterNode, name: str, mesh,
                     colors: vtkMRMLColorTableNode, scalarRange: tuple) -> None:
        """Write one surface into its model and colour it by thickness over the shared range."""
        model: Optional[vtkMRMLModelNode] = getattr(parameters, f"{name}Model")
        if model is None:
            model = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", compute.SURFACE_TITLES[name])
            setattr(parameters, f"{name}Model", model)
        mrml_convert.updateModelFromMesh(model, mesh)
        display = model.GetDisplayNode()
        display.SetColor(*compute.SURFACE_COLORS[name])
        display.SetOpacity(compute.SURFACE_OPACITY[name])
        display.SetActiveScalarName(compute.THICKNESS_ARRAY)
        display.SetAndObserveColorNodeID(colors.GetID())
        display.SetScalarRangeFlag(slicer.vtkMRMLDisplayNode.UseManualScalarRange)
        display.SetScalarRange(*scalarRange)
        display.SetScalarVisibility(True)


class AnatomyINRNestedWallsTest(ScriptedLoadableModuleTest):
    """Whole-module tests inside Slicer with synthetic data (registered with slicer_add_python_unittest)."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        for test in (self.test_ThreeNestedCapsules, self.test_FailureLeavesSceneUnchanged, self.test_Cancel):
            self.setUp()
            test()

    def _capsulePoints(self, name: str, radius: float, count: int = 150) -> vtkMRMLMarkupsNode:
        """Points on a capsule (axis S, 40 mm long, centred at (5, -10, 20)) of the given radius."""
        rng = np.random.default_rng(len(name))
        angle = rng.uniform(0.0, 2.0 * np.pi, count)
        side = np.column_stack([radius * np.cos(angle), radius * np.sin(angle), rng.uniform(-20.0, 20.0, count)])
        cap = rng.normal(size=(count // 3, 3))
        cap = radius * cap / np.linalg.norm(cap, axis=1, keepdims=True)
        cap[:, 2] = np.abs(cap[:, 2])  # a hemisphere closing the top end; mirrored for the bottom
        top, bottom = cap + [0.0, 0.0, 20.0], cap * [1.0, 1.0, -1.0] - [0.0, 0.0, 20.0]
        points = np.array([5.0, -10.0, 20.0]) + np.vstack([side, top, bottom])
        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
        slicer.util.updateMarkupsControlPointsFromArray(node, points)
        return node

    def _scene(self) -> AnatomyINRNestedWallsParameterNode:
        self.logic = AnatomyINRNestedWallsLogic()
        parameters = self.logic.getParameterNode()
        parameters.lumenPoints = self._capsulePoints("lumen", 7.0)
        parameters.innerPoints = self._capsulePoints("inner", 10.0)
        parameters.outerPoints = self._capsulePoints("outer", 12.0)
        return parameters

    def test_ThreeNestedCapsules(self) -> None:
        dependencies.ensureDependencies(askConfirmation=False)
        parameters = self._scene()
        inputs = [parameters.lumenPoints, parameters.innerPoints, parameters.outerPoints]
        times = [node.GetMTime() for node in inputs]
        options = compute.NestedOptions(preset="fast", spacingMm=1.5, iterations=150)
        outcome, result = self.logic.runBlocking(parameters, options)
        self.assertTrue(outcome.ok, outcome.message)
        self.assertEqual([node.GetMTime() for node in inputs], times)
        volume = 1e-3 * (np.pi * 12.0**2 * 40.0 + 4.0 / 3.0 * np.pi * 12.0**3)  # mL inside the outer capsule
        self.assertAlmostEqual(result.report["volumes"]["outer_mm3"] / 1000.0 / volume, 1.0, delta=0.06)
        self.assertEqual(parameters.measurementsTable.GetNumberOfRows(), len(compute.measurementRows(result.report)))
        self.assertAlmostEqual(parameters.dmaxLine.GetLineLengthWorld(), result.report["dmax"]["dmax_mm"], places=3)
        display = parameters.lumenModel.GetDisplayNode()
        self.assertEqual(display.GetActiveScalarName(), compute.THICKNESS_ARRAY)
        self.assertEqual(display.GetColorNodeID(), parameters.thicknessColors.GetID())
        thickness = slicer.util.arrayFromModelPointData(parameters.lumenModel, compute.THICKNESS_ARRAY)
        self.assertAlmostEqual(float(np.median(thickness)), 3.0, delta=0.75)

    def test_FailureLeavesSceneUnchanged(self) -> None:
        dependencies.ensureDependencies(askConfirmation=False)
        parameters = self._scene()
        slicer.util.updateMarkupsControlPointsFromArray(parameters.innerPoints,
                                                        np.outer(np.linspace(0.0, 50.0, 20), [1.0, 0.0, 0.0]))
        before = slicer.mrmlScene.GetNumberOfNodes()
        outcome, result = self.logic.runBlocking(parameters, compute.NestedOptions(preset="fast", iterations=20))
        self.assertTrue(not outcome.ok and result is None, outcome.message)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)

    def test_Cancel(self) -> None:
        parameters = self._scene()
        parameters.preset = "accurate"
        before = slicer.mrmlScene.GetNumberOfNodes()
        worker = self.logic.startFit(parameters, lambda *unused: None, lambda *unused: None)
        worker.cancel()
        outcome = worker.waitForCompletion()
        self.assertTrue(outcome.cancelled)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)
