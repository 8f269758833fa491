"""AnatomyINR "Nested walls": lumen, thrombus and wall of an aneurysm from points, nested by construction.

Template-shaped scripted module (Module, ParameterNode, Widget, Logic, Test).
The joint fit runs in a background process (the library's ``fit-nested``
command through ``AnatomyINRSlicerLib.runner``); the computation around it is
``AnatomyINRNestedWallsLib.compute``, tested outside Slicer.
"""

from __future__ import annotations

from typing import Annotated, Callable, Optional

import numpy as np
import slicer
from slicer import (vtkMRMLColorTableNode, vtkMRMLMarkupsLineNode, vtkMRMLMarkupsNode, vtkMRMLModelNode,
                    vtkMRMLTableNode)
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest

from AnatomyINRNestedWallsLib import compute
from AnatomyINRSlicerLib import dependencies, mrml_convert
from AnatomyINRSlicerLib.module_base import WorkerModuleLogic, WorkerModuleWidget, describeModule
from AnatomyINRSlicerLib.progress import fillTable
from AnatomyINRSlicerLib.runner import BackgroundWorker
from AnatomyINRSlicerLib.sample_data import registerSampleData
from AnatomyINRSlicerLib.serve_protocol import DEVICES, default_threads
from AnatomyINRSlicerLib.vtk_convert import tableFromRows
from AnatomyINRSlicerLib.worker_protocol import FIT_NESTED_STAGES

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
        describeModule(self.parent, _("Nested walls"), _(HELP_TEXT), _(ACKNOWLEDGEMENT_TEXT))
        # SampleData exists once Slicer has started (the template's hook).
        slicer.app.connect("startupCompleted()", lambda: registerSampleData("AnatomyINRNestedWalls", __file__))


@parameterNodeWrapper
class AnatomyINRNestedWallsParameterNode:
    """Inputs, parameters and outputs, saved with the scene."""

    lumenPoints: vtkMRMLMarkupsNode
    innerPoints: vtkMRMLMarkupsNode
    outerPoints: vtkMRMLMarkupsNode
    minThicknessMm: Annotated[float, WithinRange(0.0, 10.0)] = 0.0
    preset: Annotated[str, Choice(list(compute.PRESETS))] = "default"
    spacingMm: Annotated[float, WithinRange(0.2, 5.0)] = 0.5
    device: Annotated[str, Choice(list(DEVICES))] = "auto"
    lumenModel: vtkMRMLModelNode
    innerModel: vtkMRMLModelNode
    outerModel: vtkMRMLModelNode
    measurementsTable: vtkMRMLTableNode
    dmaxLine: vtkMRMLMarkupsLineNode
    thicknessColors: vtkMRMLColorTableNode


class AnatomyINRNestedWallsWidget(WorkerModuleWidget):
    """GUI: the measurements and the thickness legend; the rest is ``WorkerModuleWidget``."""

    _parameterNode: Optional[AnatomyINRNestedWallsParameterNode]

    def setup(self) -> None:
        self.logic = AnatomyINRNestedWallsLogic()
        self.setupPanel("UI/AnatomyINRNestedWalls.ui", _("Fit the nested surfaces in a background process."),
                        _("Failed to start the nested fit."), _("Starting the fit..."), compute.PRESETS)
        self.initializeParameterNode()

    def showResults(self) -> None:
        result = self.logic.lastResult
        self.ui.summaryLabel.text = compute.summaryText(result) if result is not None else _("No fit yet.")
        self.ui.legendLabel.text = compute.legendHtml(compute.legendEntries(compute.thicknessRange(result.report))) \
            if result is not None else ""
        rows = compute.measurementRows(result.report) if result is not None else []
        fillTable(self.ui.measurementsTableWidget, rows, sortable=False)


class AnatomyINRNestedWallsLogic(WorkerModuleLogic):
    """Runs the nested fit in a background worker and writes models, table and Dmax line.

    Usable without the GUI: ``runBlocking(parameters)`` in scripts and tests.
    The scene is modified only after a successful run; inputs never.
    """

    lastResult: Optional[compute.NestedResult]

    def getParameterNode(self) -> AnatomyINRNestedWallsParameterNode:
        return AnatomyINRNestedWallsParameterNode(super().getParameterNode())

    @staticmethod
    def pointNodes(parameters: AnatomyINRNestedWallsParameterNode) -> list:
        """The selected point lists, innermost first (the inner wall is optional)."""
        nodes = [parameters.lumenPoints, parameters.innerPoints, parameters.outerPoints]
        return [node for node in nodes if node is not None]

    def inputNodes(self, parameters: AnatomyINRNestedWallsParameterNode) -> list:
        return self.pointNodes(parameters)

    def cannotRunReason(self, parameters: Optional[AnatomyINRNestedWallsParameterNode]) -> Optional[str]:
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

    def options(self, parameters: AnatomyINRNestedWallsParameterNode) -> compute.NestedOptions:
        chosen = {"preset": parameters.preset, "minThicknessMm": parameters.minThicknessMm,
                  "spacingMm": parameters.spacingMm}
        chosen["threads"] = default_threads()  # one core stays free for Slicer's GUI
        chosen["device"] = parameters.device
        return compute.NestedOptions(**{**chosen, **self.optionOverrides})

    def start(self, parameters: AnatomyINRNestedWallsParameterNode, onProgress: Callable, onFinished: Callable,
              options: Optional[compute.NestedOptions] = None) -> BackgroundWorker:
        """Write the point lists to a temporary folder and launch the worker; returns at once.

        ``onFinished(outcome, result)`` runs on the main thread after the outputs
        are in the scene; ``result`` is None on failure or cancel.
        """
        self.checkCanStart(parameters, _("A fit is already running."))
        pointSets = [mrml_convert.pointSetFromMarkups(node) for node in self.pointNodes(parameters)]
        names = compute.surfaceNames(len(pointSets))
        files = compute.WorkFiles(slicer.util.tempDirectory("AnatomyINR-nested"))
        return self.launch("fit-nested", FIT_NESTED_STAGES, files.folder,
                           lambda: compute.workerArguments(files, compute.writeWorkerInputs(files, pointSets),
                                                           options or self.options(parameters)),
                           lambda: compute.readWorkerResult(files, names),
                           lambda result: self.applyResult(parameters, result), onProgress, onFinished)

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
        worker = self.logic.start(parameters, lambda *unused: None, lambda *unused: None)
        worker.cancel()
        outcome = worker.waitForCompletion()
        self.assertTrue(outcome.cancelled)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)
