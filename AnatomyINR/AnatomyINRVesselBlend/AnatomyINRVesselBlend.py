"""AnatomyINR "Vessel blend": join vessels (models, segments, point lists) into one smooth surface.

Template-shaped scripted module (Module, ParameterNode, Widget, Logic, Test).
The blend runs in a background process (the library's ``blend`` command through
``AnatomyINRSlicerLib.runner``); the computation around it is
``AnatomyINRVesselBlendLib.compute``, tested outside Slicer.
"""

from __future__ import annotations

from typing import Annotated, Callable, Optional

import numpy as np
import qt
import slicer
import vtk
from slicer import vtkMRMLDisplayableNode, vtkMRMLMarkupsNode, vtkMRMLModelNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest

from AnatomyINRSlicerLib import dependencies, mrml_convert
from AnatomyINRSlicerLib.module_base import WorkerModuleLogic, WorkerModuleWidget, describeModule
from AnatomyINRSlicerLib.progress import fillTable
from AnatomyINRSlicerLib.runner import BackgroundWorker
from AnatomyINRSlicerLib.sample_data import registerSampleData
from AnatomyINRSlicerLib.serve_protocol import DEVICES, default_threads
from AnatomyINRSlicerLib.worker_protocol import BLEND_STAGES
from AnatomyINRVesselBlendLib import compute

HELP_TEXT = """
Joins vessels into one smooth, watertight surface with rounded junctions (fillets), without
mesh booleans. Inputs may be closed models, open vessel models (open ends), segments and point
lists (at least 10 points on the vessel wall); each becomes a signed distance field and they are
united with a smooth minimum of radius <i>k</i> (the fillet radius, mm).
<p>Far from junctions the result lies on closed-model inputs within the grid spacing. Every run
checks the output (watertight, manifold, one component, no self-intersections) and lists how
far each input lies from it. Per-input radii (Advanced) set the fillet where an input joins the
inputs listed above it. Inputs are never modified; the first Apply installs PyTorch. See the
<a href="https://github.com/AnatomyINR/SlicerAnatomyINR/blob/main/docs/modules/AnatomyINRVesselBlend.md">user guide</a>.</p>
"""
ACKNOWLEDGEMENT_TEXT = """
Method: D. Alblas, C. Brune, K.K. Yeung, J.M. Wolterink. "Going off-grid: continuous implicit
neural representations for 3D vascular modeling." STACOM 2022 (MICCAI workshop), LNCS 13593.
Smooth union: the polynomial smooth minimum of I. Quílez, "Smooth minimum"
(iquilezles.org/articles/smin, 2013).
"""
INPUT_CLASSES = (vtkMRMLModelNode, vtkMRMLSegmentationNode, vtkMRMLMarkupsNode)


class AnatomyINRVesselBlend(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describeModule(self.parent, _("Vessel blend"), _(HELP_TEXT), _(ACKNOWLEDGEMENT_TEXT))
        # SampleData exists once Slicer has started (the template's hook).
        slicer.app.connect("startupCompleted()", lambda: registerSampleData("AnatomyINRVesselBlend", __file__))


@parameterNodeWrapper
class AnatomyINRVesselBlendParameterNode:
    """Inputs ``(node, segment ID or "", own fillet radius mm)``, parameters and output."""

    inputs: list[tuple[vtkMRMLDisplayableNode, str, float]]
    radiusMm: Annotated[float, WithinRange(0.0, compute.MAX_RADIUS_MM)] = 2.0
    spacingMm: Annotated[float, WithinRange(0.1, 5.0)] = 0.5
    perInputRadii: bool = False
    preset: Annotated[str, Choice(list(compute.PRESET_CHOICES))] = compute.AUTO_PRESET
    clipOpenEnds: bool = True
    device: Annotated[str, Choice(list(DEVICES))] = "auto"
    outputModel: vtkMRMLModelNode


class AnatomyINRVesselBlendWidget(WorkerModuleWidget):
    """GUI: the input list and its radii, the quality table; the rest is ``WorkerModuleWidget``."""

    _parameterNode: Optional[AnatomyINRVesselBlendParameterNode]

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._shownInputs = None

    def setup(self) -> None:
        self.logic = AnatomyINRVesselBlendLogic()
        self.setupPanel("UI/AnatomyINRVesselBlend.ui", _("Blend the inputs in a background process."),
                        _("Failed to start the blend."), _("Starting the blend..."), compute.PRESET_CHOICES)
        self.ui.addInputButton.connect("clicked(bool)", self.onAddInput)
        self.ui.removeInputButton.connect("clicked(bool)", self.onRemoveInput)
        self.initializeParameterNode()

    def setParameterNode(self, inputParameterNode: Optional[AnatomyINRVesselBlendParameterNode]) -> None:
        self._shownInputs = None  # another node (or none): refill the input tables
        super().setParameterNode(inputParameterNode)

    def onParameterNodeModified(self, caller=None, event=None) -> None:
        self._showInputs()
        super().onParameterNodeModified(caller, event)
        self.ui.radiiTable.enabled = bool(self._parameterNode and self._parameterNode.perInputRadii)

    def _showInputs(self) -> None:
        """Refill both input tables when the inputs changed (not while a radius is being edited)."""
        entries = self.logic.inputEntries(self._parameterNode) if self._parameterNode else []
        key = [(node.GetID(), segmentId, radius) for node, segmentId, radius in entries]
        if key == self._shownInputs:
            return
        self._shownInputs = key
        fillTable(self.ui.inputsTable, [(self.logic.inputName(n, s), self.logic.inputKind(n)) for n, s, _r in entries],
                  sortable=False)
        self.ui.radiiTable.rowCount = len(entries)
        for row, (node, segmentId, radius) in enumerate(entries):
            self.ui.radiiTable.setItem(row, 0, qt.QTableWidgetItem(self.logic.inputName(node, segmentId)))
            spinBox = qt.QDoubleSpinBox()
            spinBox.setRange(0.0, compute.MAX_RADIUS_MM)
            spinBox.setSingleStep(0.5)
            spinBox.suffix = " mm"
            spinBox.value = radius
            spinBox.connect("valueChanged(double)", lambda value, row=row: self.onRadiusChanged(row, value))
            self.ui.radiiTable.setCellWidget(row, 1, spinBox)

    def onRadiusChanged(self, row: int, value: float) -> None:
        entries = self.logic.inputEntries(self._parameterNode)
        if row >= len(entries):
            return
        node, segmentId, _old = entries[row]
        entries[row] = (node, segmentId, float(value))
        if self._shownInputs is not None and row < len(self._shownInputs):
            self._shownInputs[row] = (node.GetID(), segmentId, float(value))  # its spin box already shows it
        self.logic.storeInputs(self._parameterNode, entries)

    def onAddInput(self) -> None:
        node = self.ui.inputSelector.currentNode()
        if node is not None and self._parameterNode is not None:
            self.logic.addInput(self._parameterNode, node)

    def onRemoveInput(self) -> None:
        rows = sorted({index.row() for index in self.ui.inputsTable.selectedIndexes()}, reverse=True)
        for row in rows:
            self.logic.removeInput(self._parameterNode, row)

    def showResults(self) -> None:
        result = self.logic.lastResult
        self.ui.summaryLabel.text = compute.summaryText(result) if result is not None else _("No blend yet.")
        rows = compute.fidelityRows(result) if result is not None else []
        tolerance = float(result.report.get("spacing_mm", 0.5)) if result is not None else 0.0
        fillTable(self.ui.qualityTable, rows, compute.flaggedRows(rows, tolerance))


class AnatomyINRVesselBlendLogic(WorkerModuleLogic):
    """Manages the input list, runs the blend in a background worker, writes the output model.

    Usable without the GUI: ``runBlocking(parameters)`` in scripts and tests.
    The scene is modified only after a successful run; inputs never.
    """

    lastResult: Optional[compute.BlendResult]

    def getParameterNode(self) -> AnatomyINRVesselBlendParameterNode:
        return AnatomyINRVesselBlendParameterNode(super().getParameterNode())

    # ---- the input list ------------------------------------------------------------------------
    @staticmethod
    def inputEntries(parameters: AnatomyINRVesselBlendParameterNode) -> list:
        """``[(node, segment ID or "", own radius mm)]`` of the inputs still in the scene (a copy)."""
        return [(node, str(segmentId), float(radius)) for node, segmentId, radius in parameters.inputs
                if node is not None and node.GetScene() is not None]

    @staticmethod
    def storeInputs(parameters: AnatomyINRVesselBlendParameterNode, entries: list) -> None:
        parameters.inputs = [(node, segmentId, float(radius)) for node, segmentId, radius in entries]

    def addInput(self, parameters: AnatomyINRVesselBlendParameterNode, node: vtkMRMLDisplayableNode) -> None:
        """Add a model or point list, or every segment of a segmentation (duplicates skipped)."""
        if not isinstance(node, INPUT_CLASSES):
            raise ValueError(_("{name}: expected a model, segmentation or point list").format(name=node.GetName()))
        entries = self.inputEntries(parameters)
        present = {(n.GetID(), s) for n, s, _r in entries}
        segmentIds = [""]
        segmentationNode = vtkMRMLSegmentationNode.SafeDownCast(node)
        if segmentationNode is not None:
            segmentation = segmentationNode.GetSegmentation()
            segmentIds = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
        for segmentId in segmentIds:
            if (node.GetID(), segmentId) not in present:
                entries.append((node, segmentId, float(parameters.radiusMm)))
        self.storeInputs(parameters, entries)

    def removeInput(self, parameters: AnatomyINRVesselBlendParameterNode, index: int) -> None:
        entries = self.inputEntries(parameters)
        if 0 <= index < len(entries):
            del entries[index]
            self.storeInputs(parameters, entries)

    @staticmethod
    def inputName(node: vtkMRMLDisplayableNode, segmentId: str) -> str:
        """``"Segmentation: segment"`` for a segment, the node name otherwise."""
        segmentationNode = vtkMRMLSegmentationNode.SafeDownCast(node)
        if segmentId and segmentationNode is not None:
            segment = segmentationNode.GetSegmentation().GetSegment(segmentId)
            return f"{node.GetName()}: {segment.GetName() if segment is not None else segmentId}"
        return node.GetName()

    @staticmethod
    def inputKind(node: vtkMRMLDisplayableNode) -> str:
        if vtkMRMLSegmentationNode.SafeDownCast(node) is not None:
            return _("segment")
        return _("points") if vtkMRMLMarkupsNode.SafeDownCast(node) is not None else _("model")

    def inputNodes(self, parameters: AnatomyINRVesselBlendParameterNode) -> list:
        return [node for node, _segmentId, _radius in self.inputEntries(parameters)]

    def cannotRunReason(self, parameters: Optional[AnatomyINRVesselBlendParameterNode]) -> Optional[str]:
        """Why Apply is not possible yet (None: it is)."""
        entries = self.inputEntries(parameters) if parameters is not None else []
        if len(entries) < compute.MIN_INPUTS:
            return _("Add at least {count} inputs.").format(count=compute.MIN_INPUTS)
        for node, _segmentId, _radius in entries:
            markups = vtkMRMLMarkupsNode.SafeDownCast(node)
            if markups is not None and markups.GetNumberOfDefinedControlPoints() < compute.MIN_POINTS:
                return _("{name}: place at least {count} points.").format(name=markups.GetName(), count=compute.MIN_POINTS)
        return None

    def sources(self, parameters: AnatomyINRVesselBlendParameterNode) -> list:
        """The inputs as library containers in world RAS mm (copies)."""
        out = []
        for node, segmentId, _radius in self.inputEntries(parameters):
            segmentationNode = vtkMRMLSegmentationNode.SafeDownCast(node)
            markups = vtkMRMLMarkupsNode.SafeDownCast(node)
            if segmentationNode is not None:
                data = mrml_convert.meshFromSegment(segmentationNode, segmentId)
            elif markups is not None:
                data = mrml_convert.pointSetFromMarkups(markups)
            else:
                data = mrml_convert.meshFromModel(vtkMRMLModelNode.SafeDownCast(node))
            out.append(compute.BlendSource(self.inputName(node, segmentId), data))
        return out

    def options(self, parameters: AnatomyINRVesselBlendParameterNode) -> compute.BlendOptions:
        radii = [r for _n, _s, r in self.inputEntries(parameters)] if parameters.perInputRadii else None
        chosen = {"radiusMm": parameters.radiusMm, "spacingMm": parameters.spacingMm, "preset": parameters.preset,
                  "clipOpenEnds": parameters.clipOpenEnds, "radiiMm": radii}
        chosen["threads"] = default_threads()  # one core stays free for Slicer's GUI
        chosen["device"] = parameters.device
        return compute.BlendOptions(**{**chosen, **self.optionOverrides})

    # ---- running ------------------------------------------------------------------------------
    def start(self, parameters: AnatomyINRVesselBlendParameterNode, onProgress: Callable, onFinished: Callable,
              options: Optional[compute.BlendOptions] = None) -> BackgroundWorker:
        """Write the inputs to a temporary folder and launch the worker; returns at once.

        ``onFinished(outcome, result)`` runs on the main thread after the output
        model is updated; ``result`` is None on failure or cancel.
        """
        self.checkCanStart(parameters, _("A blend is already running."))
        sources = self.sources(parameters)
        options = options or self.options(parameters)
        files = compute.WorkFiles(slicer.util.tempDirectory("AnatomyINR-blend"))
        names = [source.name for source in sources]
        return self.launch("blend", BLEND_STAGES, files.folder,
                           lambda: compute.workerArguments(files, compute.writeWorkerInputs(files, sources), options),
                           lambda: compute.readWorkerResult(files, names),
                           lambda result: self.applyResult(parameters, result), onProgress, onFinished)

    def applyResult(self, parameters: AnatomyINRVesselBlendParameterNode, result: compute.BlendResult) -> None:
        """Put the blended surface into the output model (created if needed)."""
        model = parameters.outputModel
        if model is None:
            model = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", _("Blended vessels"))
            mrml_convert.updateModelFromMesh(model, result.mesh)
            model.GetDisplayNode().SetColor(*compute.OUTPUT_COLOR)
            parameters.outputModel = model
        else:
            mrml_convert.updateModelFromMesh(model, result.mesh)
        self.lastResult = result


class AnatomyINRVesselBlendTest(ScriptedLoadableModuleTest):
    """Whole-module tests inside Slicer with synthetic data (registered with slicer_add_python_unittest)."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        for test in (self.test_ModelsSegmentAndPoints, self.test_FailureLeavesSceneUnchanged, self.test_Cancel):
            self.setUp()
            test()

    def _tubeModel(self, name: str, radius: float, horizontal: bool) -> vtkMRMLModelNode:
        source = vtk.vtkCylinderSource()
        source.SetRadius(radius)
        source.SetHeight(40.0)
        source.SetResolution(32)
        transform = vtk.vtkTransform()
        if horizontal:
            transform.RotateZ(90.0)
        moved = vtk.vtkTransformFilter()
        moved.SetTransform(transform)
        moved.SetInputConnection(source.GetOutputPort())
        closed = vtk.vtkCleanPolyData()  # merge the caps' duplicated rim points: a closed surface
        closed.SetInputConnection(moved.GetOutputPort())
        closed.Update()
        model = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", name)
        model.SetAndObserveMesh(closed.GetOutput())
        return model

    def _scene(self) -> AnatomyINRVesselBlendParameterNode:
        self.logic = AnatomyINRVesselBlendLogic()
        parameters = self.logic.getParameterNode()
        self.inputs = [self._tubeModel("vertical", 5.0, False), self._tubeModel("horizontal", 3.0, True)]
        for node in self.inputs:
            self.logic.addInput(parameters, node)
        parameters.spacingMm, parameters.preset, parameters.radiusMm = 1.0, "fast", 2.0
        return parameters

    def test_ModelsSegmentAndPoints(self) -> None:
        dependencies.ensureDependencies(askConfirmation=False)
        parameters = self._scene()
        sphere = vtk.vtkSphereSource()
        sphere.SetRadius(6.0)
        sphere.SetCenter(0.0, 22.0, 0.0)  # caps the top end of the vertical tube
        sphere.Update()
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "cap")
        segmentation.AddSegmentFromClosedSurfaceRepresentation(sphere.GetOutput(), "sphere")
        rng = np.random.default_rng(0)
        directions = rng.normal(size=(120, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "blob")
        slicer.util.updateMarkupsControlPointsFromArray(points, np.array([0.0, -22.0, 0.0]) + 5.0 * directions)
        for node in (segmentation, points):
            self.logic.addInput(parameters, node)
        times = [node.GetMTime() for node in self.inputs + [segmentation, points]]
        outcome, result = self.logic.runBlocking(parameters, compute.BlendOptions(radiusMm=2.0, spacingMm=1.0, preset="fast",
                                                                             iterations=150))
        self.assertTrue(outcome.ok, outcome.message)
        summary = compute.qualitySummary(result.report)
        self.assertTrue(summary.ok and summary.components == 1, compute.summaryText(result))
        self.assertEqual(len(compute.fidelityRows(result)), 4)
        self.assertIsNotNone(parameters.outputModel)
        self.assertEqual([node.GetMTime() for node in self.inputs + [segmentation, points]], times)

    def test_FailureLeavesSceneUnchanged(self) -> None:
        dependencies.ensureDependencies(askConfirmation=False)
        parameters = self._scene()
        line = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "collinear")
        slicer.util.updateMarkupsControlPointsFromArray(line, np.outer(np.linspace(0.0, 50.0, 20), [1.0, 0.0, 0.0]))
        self.logic.addInput(parameters, line)
        before = slicer.mrmlScene.GetNumberOfNodes()
        outcome, result = self.logic.runBlocking(parameters)
        self.assertTrue(not outcome.ok and result is None, outcome.message)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)

    def test_Cancel(self) -> None:
        parameters = self._scene()
        parameters.spacingMm = 0.2
        before = slicer.mrmlScene.GetNumberOfNodes()
        worker = self.logic.start(parameters, lambda *unused: None, lambda *unused: None)
        worker.cancel()
        outcome = worker.waitForCompletion()
        self.assertTrue(outcome.cancelled)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)
