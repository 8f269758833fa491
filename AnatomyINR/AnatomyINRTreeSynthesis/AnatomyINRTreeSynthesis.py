"""AnatomyINR "Tree synthesis": sample new vessel trees from a diffusion checkpoint, or compress a tree into an INR.

Template-shaped scripted module (Module, ParameterNode, Widget, Logic, Test).
Both tasks run in a background process (the library's ``trees sample`` and
``trees compress`` commands through ``AnatomyINRSlicerLib.runner``); the computation
around them is ``AnatomyINRTreeSynthesisLib.compute``, tested outside Slicer.
"""

from __future__ import annotations

from typing import Annotated, Callable, Optional, Union

import slicer
from slicer import vtkMRMLModelNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest

from AnatomyINRSlicerLib import dependencies, mrml_convert
from AnatomyINRSlicerLib.module_base import WorkerModuleLogic, WorkerModuleWidget, describeModule
from AnatomyINRSlicerLib.panel import ChoiceComboBox
from AnatomyINRSlicerLib.progress import fillTable
from AnatomyINRSlicerLib.runner import BackgroundWorker
from AnatomyINRSlicerLib.worker_protocol import TREES_COMPRESS_STAGES, TREES_SAMPLE_STAGES
from AnatomyINRTreeSynthesisLib import compute

HELP_TEXT = """
Vessel and airway trees as small neural fields (implicit neural representations, INRs).
<p><b>Sample</b>: choose a checkpoint trained with <code>anatomy-inr trees train</code> and draw N new
trees (seeded: the same seed gives the same trees); each becomes a model, meshed at the chosen spacing.
A sampled surface can come out in pieces: the model keeps its largest piece (the panel lists the
trees in pieces and that piece's share) unless <b>Keep every piece of a sampled tree</b> is checked.</p>
<p>A checkpoint trained with the <code>hull</code> preset blends training trees; its <b>temperature</b>
sets how much (1.25, measured, and below: near-copies of training trees; 2, the preset's: blends of about two, most still
close to one training tree, and thicker; 3: more, thicker still). Other checkpoints take no
temperature.</p>
<p><b>Compress</b>: choose a tree (a closed model or a segment); it is fitted with an occupancy INR,
meshed again at the chosen spacing, and the panel reports the INR's size against the mesh and the
surface error (ASD, HD95) against the source. Optionally the INR file is saved; it meshes again at
any spacing with <code>anatomy-inr extract</code>.</p>
<p>Inputs are never modified; a failed or cancelled run leaves the scene as it was. See the
<a href="https://github.com/AnatomyINR/SlicerAnatomyINR/blob/main/docs/modules/AnatomyINRTreeSynthesis.md">user guide</a>.</p>
"""
ACKNOWLEDGEMENT_TEXT = """
Method: TrIND, tree diffusion of INRs (Sinha et al., MICCAI 2024): per-tree occupancy MLPs and a
transformer denoiser over their weights (DDPM training, DDIM sampling).
"""
SEED_MAX = 2**31 - 1  # the largest value a QSpinBox holds


class AnatomyINRTreeSynthesis(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describeModule(self.parent, _("Tree synthesis"), _(HELP_TEXT), _(ACKNOWLEDGEMENT_TEXT))


@parameterNodeWrapper
class AnatomyINRTreeSynthesisParameterNode:
    """The task, its inputs and parameters, and the compressed output (saved with the scene)."""

    task: Annotated[str, Choice(list(compute.TASKS))] = "sample"
    checkpointPath: str = ""
    count: Annotated[int, WithinRange(1, compute.MAX_COUNT)] = 4
    seed: Annotated[int, WithinRange(0, SEED_MAX)] = 0
    sampleSpacingMm: Annotated[float, WithinRange(0.1, 5.0)] = 0.5
    temperature: Annotated[float, WithinRange(0.0, compute.MAX_TEMPERATURE)] = 0.0  # 0: the checkpoint's own
    keepAllPieces: bool = False
    source: Union[vtkMRMLModelNode, vtkMRMLSegmentationNode]
    sourceSegmentId: str = ""
    compressSpacingMm: Annotated[float, WithinRange(0.05, 5.0)] = 0.3
    preset: Annotated[str, Choice(list(compute.PRESETS))] = "fast"
    device: Annotated[str, Choice(list(compute.DEVICES))] = "auto"
    saveInrPath: str = ""
    outputModel: vtkMRMLModelNode


class AnatomyINRTreeSynthesisWidget(WorkerModuleWidget):
    """GUI: the task, the two file pickers, the segment list, the results; the rest is ``WorkerModuleWidget``."""

    _parameterNode: Optional[AnatomyINRTreeSynthesisParameterNode]

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._listedSegments = None

    def setup(self) -> None:
        self.logic = AnatomyINRTreeSynthesisLogic()
        self.setupPanel("UI/AnatomyINRTreeSynthesis.ui", _("Run the chosen task in a background process."),
                        _("Failed to start the tree synthesis run."), _("Starting..."), compute.PRESETS,
                        compute.PRESET_TITLES)
        self.taskChoice = ChoiceComboBox(self.ui.taskComboBox, compute.TASKS, compute.TASK_TITLES,
                                         lambda: self._parameterNode.task if self._parameterNode else None,
                                         lambda value: setattr(self._parameterNode, "task", value))
        self.ui.checkpointPathLineEdit.connect("currentPathChanged(QString)",
                                               lambda path: self._setParameter("checkpointPath", path))
        self.ui.saveInrPathLineEdit.connect("currentPathChanged(QString)",
                                            lambda path: self._setParameter("saveInrPath", path))
        self.ui.segmentComboBox.connect("currentIndexChanged(int)", self.onSegmentChosen)
        self.initializeParameterNode()

    def setParameterNode(self, inputParameterNode: Optional[AnatomyINRTreeSynthesisParameterNode]) -> None:
        self._listedSegments = None  # another node (or none): list the segments again
        super().setParameterNode(inputParameterNode)

    def _setParameter(self, name: str, value: str) -> None:
        if self._parameterNode is not None and getattr(self._parameterNode, name) != value:
            setattr(self._parameterNode, name, value)

    def onParameterNodeModified(self, caller=None, event=None) -> None:
        self.taskChoice.update()
        parameters = self._parameterNode
        task = parameters.task if parameters else "sample"
        self.ui.sampleCollapsibleButton.enabled = task == "sample"
        self.ui.compressCollapsibleButton.enabled = task == "compress"
        for widget, name in ((self.ui.checkpointPathLineEdit, "checkpointPath"),
                             (self.ui.saveInrPathLineEdit, "saveInrPath")):
            value = getattr(parameters, name) if parameters else ""
            if widget.currentPath != value:
                blocked = widget.blockSignals(True)
                widget.currentPath = value
                widget.blockSignals(blocked)
        self._listSegments()
        super().onParameterNodeModified(caller, event)

    def _listSegments(self) -> None:
        """List the source segmentation's segments (disabled for a model) and show the chosen one."""
        parameters = self._parameterNode
        segmentation = vtkMRMLSegmentationNode.SafeDownCast(parameters.source) if parameters else None
        entries = mrml_convert.segmentIdsAndNames(segmentation) if segmentation is not None else []
        combo = self.ui.segmentComboBox
        blocked = combo.blockSignals(True)
        if entries != self._listedSegments:
            self._listedSegments = entries
            combo.clear()
            for segmentId, name in entries:
                combo.addItem(name, segmentId)
        index = combo.findData(parameters.sourceSegmentId) if parameters and entries else -1
        combo.setCurrentIndex(index)
        combo.blockSignals(blocked)
        combo.enabled = bool(entries)
        if entries and index < 0:  # a segmentation was chosen: take its first segment
            self._setParameter("sourceSegmentId", entries[0][0])

    def onSegmentChosen(self, index: int) -> None:
        segmentId = self.ui.segmentComboBox.itemData(index)
        if segmentId is not None:
            self._setParameter("sourceSegmentId", segmentId)

    def showResults(self) -> None:
        result = self.logic.lastResult
        if isinstance(result, compute.CompressResult):
            self.ui.summaryLabel.text = compute.compressSummary(result)
            fillTable(self.ui.resultsTableWidget, compute.compressRows(result.report), sortable=False)
            return
        self.ui.summaryLabel.text = compute.sampleSummary(result) if result is not None else _("No trees yet.")
        fillTable(self.ui.resultsTableWidget, [], sortable=False)


class AnatomyINRTreeSynthesisLogic(WorkerModuleLogic):
    """Runs ``trees sample`` or ``trees compress`` in a background worker and loads the result.

    Usable without the GUI: ``runBlocking(parameters)`` in scripts and tests.
    The scene is modified only after a successful run; inputs never.
    """

    lastResult: Optional[Union[compute.SampleResult, compute.CompressResult]]

    def getParameterNode(self) -> AnatomyINRTreeSynthesisParameterNode:
        return AnatomyINRTreeSynthesisParameterNode(super().getParameterNode())

    # ---- inputs ----------------------------------------------------------------------------------
    def inputNodes(self, parameters: AnatomyINRTreeSynthesisParameterNode) -> list:
        return [parameters.source] if parameters.task == "compress" and parameters.source is not None else []

    def cannotRunReason(self, parameters: Optional[AnatomyINRTreeSynthesisParameterNode]) -> Optional[str]:
        """Why Apply is not possible yet (None: it is)."""
        if parameters is None:
            return _("Choose a task.")
        if parameters.task == "sample":
            if not parameters.checkpointPath.strip():
                return _("Choose a checkpoint (.safetensors from 'anatomy-inr trees train').")
            return None
        if parameters.source is None:
            return _("Select the tree to compress (a closed model or a segment).")
        segmentation = vtkMRMLSegmentationNode.SafeDownCast(parameters.source)
        if segmentation is not None and segmentation.GetSegmentation().GetSegment(parameters.sourceSegmentId) is None:
            return _("Choose the segment to compress.")
        return None

    def sourceMesh(self, parameters: AnatomyINRTreeSynthesisParameterNode):
        """The tree to compress as a ``TriangleMesh`` in world RAS mm (a copy; the node is untouched)."""
        segmentation = vtkMRMLSegmentationNode.SafeDownCast(parameters.source)
        if segmentation is not None:
            return mrml_convert.meshFromSegment(segmentation, parameters.sourceSegmentId)
        return mrml_convert.meshFromModel(vtkMRMLModelNode.SafeDownCast(parameters.source))

    def _chosen(self, optionsClass, chosen: dict):
        """``optionsClass`` from the panel's values, with the overrides that are its fields."""
        fields = optionsClass.__dataclass_fields__
        return optionsClass(**{**chosen, **{k: v for k, v in self.optionOverrides.items() if k in fields}})

    def sampleOptions(self, parameters: AnatomyINRTreeSynthesisParameterNode) -> compute.SampleOptions:
        return self._chosen(compute.SampleOptions, {
            "checkpoint": parameters.checkpointPath.strip(), "count": int(parameters.count),
            "seed": int(parameters.seed), "spacingMm": parameters.sampleSpacingMm, "device": parameters.device,
            "temperature": compute.chosenTemperature(parameters.temperature),
            "keepAllPieces": bool(parameters.keepAllPieces)})

    def compressOptions(self, parameters: AnatomyINRTreeSynthesisParameterNode) -> compute.CompressOptions:
        return self._chosen(compute.CompressOptions, {
            "spacingMm": parameters.compressSpacingMm, "preset": parameters.preset, "seed": int(parameters.seed),
            "device": parameters.device})

    # ---- running ------------------------------------------------------------------------------------
    def start(self, parameters: AnatomyINRTreeSynthesisParameterNode, onProgress: Callable, onFinished: Callable,
              options=None) -> BackgroundWorker:
        """Write the inputs to a temporary folder and launch the worker; returns at once.

        ``onFinished(outcome, result)`` runs on the main thread after the models are in
        the scene; ``result`` is None on failure or cancel. ``options`` (a
        ``compute.SampleOptions`` or ``CompressOptions``) replaces the panel's values.
        """
        self.checkCanStart(parameters, _("A tree synthesis run is already going."))
        if parameters.task == "sample":
            options = options or self.sampleOptions(parameters)
            options.validate()  # a missing checkpoint file is reported before a worker starts
            files = compute.WorkFiles(slicer.util.tempDirectory("AnatomyINR-trees"))
            return self.launch("trees", TREES_SAMPLE_STAGES, files.folder,
                               lambda: compute.sampleArguments(files, options),
                               lambda: compute.readSampleResult(files),
                               lambda result: self.applySampleResult(result), onProgress, onFinished)
        mesh = self.sourceMesh(parameters)
        options = options or self.compressOptions(parameters)
        options.validate()
        files = compute.WorkFiles(slicer.util.tempDirectory("AnatomyINR-trees"))
        return self.launch("trees", TREES_COMPRESS_STAGES, files.folder,
                           lambda: compute.writeCompressInputs(files, mesh, options),
                           lambda: compute.readCompressResult(files),
                           lambda result: self.applyCompressResult(parameters, result), onProgress, onFinished)

    def applySampleResult(self, result: compute.SampleResult) -> None:
        """One new model per sampled tree that has a surface, named by its index."""
        for index, mesh in result.trees:
            if mesh is None:
                continue
            model = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", compute.sampleName(index))
            mrml_convert.updateModelFromMesh(model, mesh)
            model.GetDisplayNode().SetColor(*compute.SAMPLE_COLOR)
        self.lastResult = result

    def applyCompressResult(self, parameters: AnatomyINRTreeSynthesisParameterNode,
                            result: compute.CompressResult) -> None:
        """Save the INR file if asked, then put the re-extracted tree into the output model (created if needed)."""
        compute.compressRows(result.report)  # a malformed report fails here, before anything changes
        savePath = parameters.saveInrPath.strip()
        if savePath:
            compute.saveInr(result, savePath)
        model = parameters.outputModel
        if model is None:
            model = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", _(compute.OUTPUT_NAME))
            mrml_convert.updateModelFromMesh(model, result.mesh)
            model.GetDisplayNode().SetColor(*compute.OUTPUT_COLOR)
            parameters.outputModel = model
        else:
            mrml_convert.updateModelFromMesh(model, result.mesh)
        self.lastResult = result


class AnatomyINRTreeSynthesisTest(ScriptedLoadableModuleTest):
    """Whole-module tests inside Slicer on small synthetic trees (slicer_add_python_unittest)."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        for test in (self.test_CompressModelAndSegment, self.test_SampleFromCheckpoint,
                     self.test_FailureLeavesSceneUnchanged):
            self.setUp()
            test()

    def _tree(self):
        """A one-bifurcation synthetic tree (about 30 x 20 x 25 mm) as a closed mesh."""
        from AnatomyINRLib.phantoms.tree_synth import SynthTreeParams, grow_tree, tree_mesh

        graph = grow_tree(SynthTreeParams(seed=1, bifurcations=1, terminal_radius=2.5, domain_radius=20.0,
                                          min_distance=6.0))
        return tree_mesh(graph, 0.6)

    def test_CompressModelAndSegment(self) -> None:
        dependencies.ensureDependencies(askConfirmation=False)
        self.logic = AnatomyINRTreeSynthesisLogic()
        parameters = self.logic.getParameterNode()
        parameters.task, parameters.preset, parameters.compressSpacingMm = "compress", "tiny", 0.5
        self.logic.optionOverrides = {"iterations": 300}
        model = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", "tree")
        mrml_convert.updateModelFromMesh(model, self._tree())
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "tree segmentation")
        segmentation.AddSegmentFromClosedSurfaceRepresentation(model.GetPolyData(), "tree")
        for source in (model, segmentation):
            parameters.source = source
            parameters.sourceSegmentId = segmentation.GetSegmentation().GetNthSegmentID(0)
            outcome, result = self.logic.runBlocking(parameters)
            self.assertTrue(outcome.ok, outcome.message)
            self.assertLess(result.report["error"]["asd_mm"], 1.0)
            self.assertGreater(result.report["size"]["compression_vs_vtp"], 1.0)
            self.assertGreater(parameters.outputModel.GetPolyData().GetNumberOfPoints(), 1000)

    def test_SampleFromCheckpoint(self) -> None:
        """Fit three tiny INRs and train a tiny checkpoint with the library's CLI, then sample two trees."""
        import os

        from AnatomyINRLib import io
        from AnatomyINRLib.cli import main

        dependencies.ensureDependencies(askConfirmation=False)
        folder = slicer.util.tempDirectory("AnatomyINR-trees-test")
        meshes, inrs = os.path.join(folder, "meshes"), os.path.join(folder, "inrs")
        os.makedirs(meshes)
        for index in range(3):
            io.write_mesh(self._tree(), os.path.join(meshes, f"tree_{index}.vtp"))
        checkpoint = os.path.join(folder, "diffusion.safetensors")
        self.assertEqual(main(["trees", "fit", meshes, "--output", inrs, "--preset", "tiny"]), 0)
        train = ["trees", "train", inrs, "--output", checkpoint, "--preset", "tiny", "--epochs", "40"]
        self.assertEqual(main(train), 0)
        self.logic = AnatomyINRTreeSynthesisLogic()
        parameters = self.logic.getParameterNode()
        parameters.task, parameters.checkpointPath, parameters.count, parameters.seed = "sample", checkpoint, 2, 3
        before = slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLModelNode")
        outcome, result = self.logic.runBlocking(parameters)
        self.assertTrue(outcome.ok, outcome.message)
        added = slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLModelNode") - before
        self.assertEqual(added, len(result.meshes))

    def test_FailureLeavesSceneUnchanged(self) -> None:
        import os

        dependencies.ensureDependencies(askConfirmation=False)
        self.logic = AnatomyINRTreeSynthesisLogic()
        parameters = self.logic.getParameterNode()
        notACheckpoint = os.path.join(slicer.util.tempDirectory("AnatomyINR-trees-test"), "weights.safetensors")
        with open(notACheckpoint, "wb") as file:
            file.write(b"not a checkpoint")
        parameters.task, parameters.checkpointPath = "sample", notACheckpoint
        before = slicer.mrmlScene.GetNumberOfNodes()
        outcome, result = self.logic.runBlocking(parameters)
        self.assertTrue(not outcome.ok and result is None, outcome.message)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)
