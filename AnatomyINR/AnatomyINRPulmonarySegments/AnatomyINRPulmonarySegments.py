"""AnatomyINR "Pulmonary segments": the 18 lung segments from lobes and airways, with planning numbers.

Template-shaped scripted module (Module, ParameterNode, Widget, Logic, Test).
The segmentation runs in a background process (the library's ``pulmonary
segments`` command through ``AnatomyINRSlicerLib.runner``); the computation
around it is ``AnatomyINRPulmonarySegmentsLib.compute``, tested outside Slicer.
"""

from __future__ import annotations

from typing import Annotated, Callable, Optional, Union

import numpy as np
import slicer
from slicer import (vtkMRMLLabelMapVolumeNode, vtkMRMLMarkupsFiducialNode, vtkMRMLScalarVolumeNode,
                    vtkMRMLSegmentationNode, vtkMRMLTableNode)
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest

from AnatomyINRPulmonarySegmentsLib import compute
from AnatomyINRSlicerLib import dependencies, mrml_convert
from AnatomyINRSlicerLib.module_base import WorkerModuleLogic, WorkerModuleWidget, describeModule
from AnatomyINRSlicerLib.panel import ChoiceComboBox, startPlacingPoints
from AnatomyINRSlicerLib.progress import fillTable
from AnatomyINRSlicerLib.runner import BackgroundWorker
from AnatomyINRSlicerLib.serve_protocol import DEVICES
from AnatomyINRSlicerLib.vtk_convert import tableFromRows
from AnatomyINRSlicerLib.worker_protocol import PULMONARY_SEGMENTS_STAGES

HELP_TEXT = """
Divides the lungs into the 18 pulmonary segments (RUL S1-S3, RML S4-S5, RLL S6-S10, LUL S1+2-S5,
LLL S6-S10) for segmentectomy planning. Inputs: the five lobes and the airways (e.g. from
TotalSegmentator) and, for Method A, the segmental identity: one point per segmental bronchus
labelled with its segment name (the panel proposes the next name), or an airway labelmap with the
segmental subtrees labelled 1-18. Method B uses a trained checkpoint instead.
<p>Outputs: a segmentation with the 18 named, coloured segments and a table with each segment's
volume (ml, % of both lungs), the remaining lung after resecting the chosen segments, and the
nodule's segment and resection margin. Inputs are never modified; a failed or cancelled run leaves
the scene as it was. See the
<a href="https://github.com/AnatomyINR/SlicerAnatomyINR/blob/main/docs/modules/AnatomyINRPulmonarySegments.md">user guide</a>.</p>
"""
ACKNOWLEDGEMENT_TEXT = """
Method A: geodesic territories of the labelled segmental bronchi inside each lobe, smoothed by an
implicit soft partition (AnatomyINR). Method B and the evaluation metrics follow ImPulSe+ (Xie et al.,
Medical Image Analysis 2025: learned template deformation and correction).
"""
METHOD_TITLES = {"points": "Method A: one point per segmental bronchus", "labels": "Method A: labelled airways",
                 "checkpoint": "Method B: trained checkpoint"}


class AnatomyINRPulmonarySegments(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describeModule(self.parent, _("Pulmonary segments"), _(HELP_TEXT), _(ACKNOWLEDGEMENT_TEXT))


@parameterNodeWrapper
class AnatomyINRPulmonarySegmentsParameterNode:
    """Inputs, parameters and outputs, saved with the scene (a tree is a segmentation or a labelmap)."""

    lobes: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode]
    airways: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode]
    arteries: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode]
    veins: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode]
    ctVolume: vtkMRMLScalarVolumeNode
    method: Annotated[str, Choice(list(compute.METHODS))] = "points"
    segmentPoints: vtkMRMLMarkupsFiducialNode
    segmentalLabels: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode]
    checkpointPath: str = ""
    nodule: Union[vtkMRMLMarkupsFiducialNode, vtkMRMLSegmentationNode]
    resectSegments: str = ""
    preset: Annotated[str, Choice(list(compute.PRESETS))] = "default"
    device: Annotated[str, Choice(list(DEVICES))] = "auto"
    outputSegmentation: vtkMRMLSegmentationNode
    planningTable: vtkMRMLTableNode


class AnatomyINRPulmonarySegmentsWidget(WorkerModuleWidget):
    """GUI: the method, the segment names for the points, the planning table; the rest is ``WorkerModuleWidget``."""

    _parameterNode: Optional[AnatomyINRPulmonarySegmentsParameterNode]

    def setup(self) -> None:
        self.logic = AnatomyINRPulmonarySegmentsLogic()
        self.setupPanel("UI/AnatomyINRPulmonarySegments.ui", _("Compute the 18 segments in a background process."),
                        _("Failed to start the segmentation."), _("Starting the segmentation..."), compute.PRESETS)
        self.methodChoice = ChoiceComboBox(self.ui.methodComboBox, compute.METHODS, METHOD_TITLES,
                                           lambda: self._parameterNode.method if self._parameterNode else None,
                                           lambda value: setattr(self._parameterNode, "method", value))
        for name in compute.SEGMENT_NAMES:
            self.ui.nextSegmentComboBox.addItem(name)
        self.ui.placePointsButton.connect("clicked(bool)", self.onPlacePoints)
        self.initializeParameterNode()

    def onParameterNodeModified(self, caller=None, event=None) -> None:
        self.methodChoice.update()
        method = self._parameterNode.method if self._parameterNode else "points"
        for widget, used in ((self.ui.segmentPointsSelector, method == "points"),
                             (self.ui.placePointsButton, method == "points"),
                             (self.ui.nextSegmentComboBox, method == "points"),
                             (self.ui.segmentalLabelsSelector, method == "labels"),
                             (self.ui.checkpointLineEdit, method == "checkpoint")):
            widget.enabled = used
        super().onParameterNodeModified(caller, event)
        self._showPointsStatus()

    def onPlacePoints(self, checked: bool = False) -> None:
        """Place points in the selected list (a new one when none is selected), each labelled with the next name."""
        if self._parameterNode is None:
            return
        if self._parameterNode.segmentPoints is None:
            points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", _("Segment points"))
            points.CreateDefaultDisplayNodes()
            self._parameterNode.segmentPoints = points
        startPlacingPoints(self._parameterNode.segmentPoints)

    def onInputEdited(self, caller, event) -> None:
        """A point placed in the segment list takes the proposed name; the next missing name is proposed."""
        points = self._parameterNode.segmentPoints if self._parameterNode else None
        if points is not None and caller is points:
            self.logic.labelNewPoint(points, self.ui.nextSegmentComboBox.currentText)
            self._showPointsStatus()
        super().onInputEdited(caller, event)

    def _showPointsStatus(self) -> None:
        """The count of named points and the next missing name (also selected in the names list)."""
        points = self._parameterNode.segmentPoints if self._parameterNode else None
        labels = self.logic.pointLabels(points) if points is not None else []
        missing = compute.nextMissingName(labels)
        if missing is not None:
            self.ui.nextSegmentComboBox.setCurrentText(missing)
        problem = compute.pointLabelProblem(labels)
        self.ui.pointsStatusLabel.text = problem or _("All 18 segmental bronchi have a point.")

    def showResults(self) -> None:
        result = self.logic.lastResult
        self.ui.summaryLabel.text = compute.summaryText(result) if result is not None else _("No segments yet.")
        fillTable(self.ui.planningTableWidget, compute.tableRows(result.report) if result is not None else [],
                  sortable=False)


class AnatomyINRPulmonarySegmentsLogic(WorkerModuleLogic):
    """Exports the inputs, runs ``pulmonary segments`` in a background worker, loads segments and table.

    Usable without the GUI: ``runBlocking(parameters)`` in scripts and tests.
    The scene is modified only after a successful run; inputs never (except that a
    point placed in the segment list is labelled with the proposed name).
    """

    lastResult: Optional[compute.SegmentsResult]

    def getParameterNode(self) -> AnatomyINRPulmonarySegmentsParameterNode:
        return AnatomyINRPulmonarySegmentsParameterNode(super().getParameterNode())

    # ---- segment points --------------------------------------------------------------------------
    @staticmethod
    def pointLabels(points: vtkMRMLMarkupsFiducialNode) -> list:
        """Labels of the placed points, in order."""
        defined = mrml_convert.definedControlPoints(points)
        return [points.GetNthControlPointLabel(i) for i in range(len(defined)) if defined[i]]

    @staticmethod
    def labelNewPoint(points: vtkMRMLMarkupsFiducialNode, proposed: str) -> None:
        """Give the last point ``proposed`` (or the next missing name) when its label is not a segment name."""
        count = points.GetNumberOfControlPoints()
        if count == 0 or compute.segmentValue(points.GetNthControlPointLabel(count - 1)) is not None:
            return
        others = [points.GetNthControlPointLabel(i) for i in range(count - 1)]
        taken = {compute.segmentValue(label) for label in others}
        name = proposed if compute.segmentValue(proposed) not in taken else compute.nextMissingName(others)
        if name is not None:
            points.SetNthControlPointLabel(count - 1, name)

    # ---- inputs ----------------------------------------------------------------------------------
    def inputNodes(self, parameters: AnatomyINRPulmonarySegmentsParameterNode) -> list:
        nodes = [parameters.lobes, parameters.airways, parameters.arteries, parameters.veins, parameters.ctVolume,
                 parameters.segmentPoints, parameters.segmentalLabels, parameters.nodule]
        return [node for node in nodes if node is not None]

    def cannotRunReason(self, parameters: Optional[AnatomyINRPulmonarySegmentsParameterNode]) -> Optional[str]:
        """Why Apply is not possible yet (None: it is)."""
        if parameters is None or parameters.lobes is None or parameters.airways is None:
            return _("Select the lobes and the airways (segmentations, e.g. from TotalSegmentator, or labelmaps).")
        if parameters.method == "points":
            if parameters.segmentPoints is None:
                return _("Select or create the segment point list (one point per segmental bronchus).")
            problem = compute.pointLabelProblem(self.pointLabels(parameters.segmentPoints))
            if problem is not None:
                return _("Segment points: {problem}.").format(problem=problem)
        elif parameters.method == "labels" and parameters.segmentalLabels is None:
            return _("Select the labelled airways (segmental subtrees labelled 1-18 or named by segment).")
        elif parameters.method == "checkpoint" and not parameters.checkpointPath.strip():
            return _("Give the Method B checkpoint file (.safetensors from 'anatomy-inr pulmonary train').")
        try:
            compute.parseResect(parameters.resectSegments)
        except ValueError as error:
            return str(error)
        return None

    @staticmethod
    def referenceVolume(parameters: AnatomyINRPulmonarySegmentsParameterNode) -> vtkMRMLScalarVolumeNode:
        """The volume whose grid every input is exported on: a lobe labelmap, else the CT, else the
        lobe segmentation's reference volume.

        Raises:
            ValueError: none of them exists.
        """
        labelmap = vtkMRMLLabelMapVolumeNode.SafeDownCast(parameters.lobes)
        if labelmap is not None:
            return labelmap
        if parameters.ctVolume is not None:
            return parameters.ctVolume
        segmentation: vtkMRMLSegmentationNode = parameters.lobes
        reference = segmentation.GetNodeReference(vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole())
        volume = vtkMRMLScalarVolumeNode.SafeDownCast(reference)
        if volume is None:
            raise ValueError(_("lobes: the segmentation has no reference volume; select the CT it was made from."))
        return volume

    def image(self, node, role: str, reference: vtkMRMLScalarVolumeNode):
        """One input as an ``ImageGrid`` on the reference grid (``role`` picks the segments, see ``compute``)."""
        segmentation = vtkMRMLSegmentationNode.SafeDownCast(node)
        if segmentation is None:
            return mrml_convert.imageGridOnReference(node, reference, role)
        idsAndNames = mrml_convert.segmentIdsAndNames(segmentation)
        names = [name for _id, name in idsAndNames]
        if role == "lobes":
            values = compute.lobeValues(names)
        elif role == "segmental labels":
            values = compute.labelSegmentValues(names)
        else:
            chosen = compute.treeSegmentNames(names, role)
            values = [1 if name in chosen else None for name in names]
        segmentValues = {segmentId: value for (segmentId, _name), value in zip(idsAndNames, values) if value}
        return mrml_convert.labelImageFromSegments(segmentation, segmentValues, reference)

    def gatherInputs(self, parameters: AnatomyINRPulmonarySegmentsParameterNode) -> compute.SegmentsInputs:
        """Every input as a library container on the reference grid (copies; inputs untouched)."""
        reference = self.referenceVolume(parameters)
        inputs = compute.SegmentsInputs(self.image(parameters.lobes, "lobes", reference),
                                        self.image(parameters.airways, "airways", reference))
        for role, node in (("arteries", parameters.arteries), ("veins", parameters.veins)):
            if node is not None:
                setattr(inputs, role, self.image(node, role, reference))
        if parameters.ctVolume is not None:
            inputs.ct = mrml_convert.imageGridOnReference(parameters.ctVolume, reference, "CT")
        if parameters.method == "points":
            inputs.segmentPoints = mrml_convert.pointSetFromMarkups(parameters.segmentPoints)
        elif parameters.method == "labels":
            inputs.segmentalLabels = self.image(parameters.segmentalLabels, "segmental labels", reference)
        else:
            inputs.checkpoint = parameters.checkpointPath.strip()
        nodulePoints = vtkMRMLMarkupsFiducialNode.SafeDownCast(parameters.nodule)
        if nodulePoints is not None:
            inputs.nodule = mrml_convert.pointSetFromMarkups(nodulePoints)
        elif parameters.nodule is not None:
            inputs.nodule = self.image(parameters.nodule, "nodule", reference)
        inputs.resect = compute.parseResect(parameters.resectSegments)
        return inputs

    def options(self, parameters: AnatomyINRPulmonarySegmentsParameterNode) -> compute.SegmentsOptions:
        chosen = {"preset": parameters.preset, "device": parameters.device}
        return compute.SegmentsOptions(**{**chosen, **self.optionOverrides})

    # ---- running ------------------------------------------------------------------------------------
    def start(self, parameters: AnatomyINRPulmonarySegmentsParameterNode, onProgress: Callable, onFinished: Callable,
              options: Optional[compute.SegmentsOptions] = None) -> BackgroundWorker:
        """Export the inputs to a temporary folder and launch the worker; returns at once.

        ``onFinished(outcome, result)`` runs on the main thread after the segmentation
        and table are in the scene; ``result`` is None on failure or cancel.
        """
        self.checkCanStart(parameters, _("A segmentation is already running."))
        inputs = self.gatherInputs(parameters)
        options = options or self.options(parameters)
        files = compute.WorkFiles(slicer.util.tempDirectory("AnatomyINR-pulmonary"))
        return self.launch("pulmonary", PULMONARY_SEGMENTS_STAGES, files.folder,
                           lambda: compute.workerArguments(files, compute.writeWorkerInputs(files, inputs),
                                                           inputs.resect, options),
                           lambda: compute.readWorkerResult(files),
                           lambda result: self.applyResult(parameters, result), onProgress, onFinished)

    def applyResult(self, parameters: AnatomyINRPulmonarySegmentsParameterNode, result: compute.SegmentsResult) -> None:
        """Load the 18 segments into the output segmentation and the planning numbers into the table."""
        rows = compute.tableRows(result.report)  # a malformed report fails here, before the scene changes
        loaded = slicer.util.loadSegmentation(result.segmentationFile)
        if loaded is None:
            raise ValueError(f"{result.segmentationFile}: could not be loaded as a segmentation")
        storage = loaded.GetStorageNode()
        if storage is not None:  # its file is in the run folder, deleted next: saved anew, as a node made in Slicer
            slicer.mrmlScene.RemoveNode(storage)
        output = parameters.outputSegmentation
        if output is None:
            loaded.SetName(_(compute.OUTPUT_NAME))
            parameters.outputSegmentation = loaded
        else:
            output.GetSegmentation().DeepCopy(loaded.GetSegmentation())
            if output.GetDisplayNode() is None:
                output.CreateDefaultDisplayNodes()
            if loaded.GetDisplayNode() is not None:  # the loaded node leaves nothing behind
                slicer.mrmlScene.RemoveNode(loaded.GetDisplayNode())
            slicer.mrmlScene.RemoveNode(loaded)
        table = parameters.planningTable
        if table is None:
            table = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", _(compute.TABLE_NAME))
            parameters.planningTable = table
        table.SetAndObserveTable(tableFromRows(compute.TABLE_COLUMNS, rows))
        table.SetUseColumnTitleAsColumnHeader(True)
        self.lastResult = result


class AnatomyINRPulmonarySegmentsTest(ScriptedLoadableModuleTest):
    """Whole-module tests inside Slicer on the library's small lung phantom (slicer_add_python_unittest)."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        for test in (self.test_PhantomLabelsWithPlanning, self.test_FailureLeavesSceneUnchanged):
            self.setUp()
            test()

    def _phantomScene(self) -> AnatomyINRPulmonarySegmentsParameterNode:
        """The small phantom's lobes, airways and labelled airways as labelmap volumes."""
        from AnatomyINRLib.phantoms.lung import make_lung_phantom

        phantom = make_lung_phantom(1, "small")
        self.logic = AnatomyINRPulmonarySegmentsLogic()
        parameters = self.logic.getParameterNode()
        parameters.lobes = mrml_convert.addVolumeFromImageGrid(phantom.lobes, "lobes", labelmap=True)
        parameters.airways = mrml_convert.addVolumeFromImageGrid(phantom.airways, "airways", labelmap=True)
        parameters.segmentalLabels = mrml_convert.addVolumeFromImageGrid(phantom.airways_labeled, "labelled", True)
        parameters.method, parameters.preset = "labels", "fast"
        self.lungMl = float(np.count_nonzero(np.asarray(phantom.lobes.array))) * float(np.prod(phantom.lobes.spacing)) / 1000
        return parameters

    def test_PhantomLabelsWithPlanning(self) -> None:
        dependencies.ensureDependencies(askConfirmation=False)
        parameters = self._phantomScene()
        parameters.resectSegments = "RUL S1, RUL S2"
        outcome, result = self.logic.runBlocking(parameters)
        self.assertTrue(outcome.ok, outcome.message)
        segmentation = parameters.outputSegmentation.GetSegmentation()
        names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
        self.assertEqual(names, list(compute.SEGMENT_NAMES))
        self.assertEqual(parameters.planningTable.GetNumberOfRows(), len(compute.tableRows(result.report)))
        self.assertAlmostEqual(result.report["planning"]["volumes"]["total_ml"] / self.lungMl, 1.0, delta=0.01)

    def test_FailureLeavesSceneUnchanged(self) -> None:
        dependencies.ensureDependencies(askConfirmation=False)
        parameters = self._phantomScene()
        parameters.resectSegments = "RUL S1"
        lobes = mrml_convert.imageGridFromVolume(parameters.lobes)
        parameters.airways = mrml_convert.addVolumeFromImageGrid(lobes.with_array(np.zeros(lobes.shape, np.uint8)),
                                                                 "no airways", labelmap=True)
        before = slicer.mrmlScene.GetNumberOfNodes()
        outcome, result = self.logic.runBlocking(parameters)
        self.assertTrue(not outcome.ok and result is None, outcome.message)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)
