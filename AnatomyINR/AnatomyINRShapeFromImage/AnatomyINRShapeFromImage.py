"""AnatomyINR "Shape from image": watertight left atrium and left ventricle meshes from a CT volume.

Template-shaped scripted module (Module, ParameterNode, Widget, Logic, Test).
The prediction runs in a background process (the library's ``image-to-mesh
predict`` command through ``AnatomyINRSlicerLib.runner``); the computation
around it is ``AnatomyINRShapeFromImageLib.compute``, tested outside Slicer.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import slicer
from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLModelNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest

from AnatomyINRShapeFromImageLib import compute
from AnatomyINRSlicerLib import dependencies, mrml_convert
from AnatomyINRSlicerLib.module_base import WorkerModuleLogic, WorkerPanelWidget, describeModule
from AnatomyINRSlicerLib.progress import fillTable
from AnatomyINRSlicerLib.runner import BackgroundWorker
from AnatomyINRSlicerLib.worker_protocol import IMAGE_TO_MESH_PREDICT_STAGES

HELP_TEXT = """
Watertight, smooth meshes of the left atrium and the left ventricle straight from a CT volume: a
template sphere is deformed by a trained network, so each chamber is one closed surface with no
holes and no islands. Inputs: the CT volume and, optionally, a checkpoint file (empty: the model
shipped with the extension). Each mesh is then moved onto the image's blood-pool edge (at most 3 mm;
uncheck "Refine onto the image's edges" to keep the network's meshes). Outputs: one model per chamber and a segmentation with the segments
left_atrium and left_ventricle rasterised from the meshes on the volume's grid; the panel lists
each chamber's volume and mesh checks, and warns when the image is far from the training data.
<p>The shipped model is trained on synthetic phantoms only: it is a research tool, not a clinical
one. Inputs are never modified; a failed or cancelled run leaves the scene as it was. See the
<a href="https://github.com/AnatomyINR/SlicerAnatomyINR/blob/main/docs/modules/AnatomyINRShapeFromImage.md">user guide</a>.</p>
"""
ACKNOWLEDGEMENT_TEXT = """
Method: ImplicitMeshNet (Laves et al., MIDL 2025): template-mesh deformation by graph convolutions on
3D U-Net features, trained from voxel labels through a differentiable mesh-to-SDF network.
Implementation: AnatomyINR.
"""
MODEL_FIELDS = {"left_atrium": "leftAtriumModel", "left_ventricle": "leftVentricleModel"}
SEGMENT_ID_FIELDS = {"left_atrium": "leftAtriumSegmentId", "left_ventricle": "leftVentricleSegmentId"}


class AnatomyINRShapeFromImage(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describeModule(self.parent, _("Shape from image"), _(HELP_TEXT), _(ACKNOWLEDGEMENT_TEXT))


@parameterNodeWrapper
class AnatomyINRShapeFromImageParameterNode:
    """Inputs and outputs, saved with the scene (the segment IDs are those this module wrote)."""

    inputVolume: vtkMRMLScalarVolumeNode
    checkpointPath: str = ""
    refineToEdges: bool = True
    outputSegmentation: vtkMRMLSegmentationNode
    leftAtriumModel: vtkMRMLModelNode
    leftVentricleModel: vtkMRMLModelNode
    leftAtriumSegmentId: str = ""
    leftVentricleSegmentId: str = ""


class AnatomyINRShapeFromImageWidget(WorkerPanelWidget):
    """GUI: the structures table and summary; the rest is ``WorkerPanelWidget`` (no presets: a trained model)."""

    _parameterNode: Optional[AnatomyINRShapeFromImageParameterNode]

    def setup(self) -> None:
        self.logic = AnatomyINRShapeFromImageLogic()
        self.setupPanel("UI/AnatomyINRShapeFromImage.ui", _("Predict the chamber meshes in a background process."),
                        _("Failed to start the prediction."), _("Starting the prediction..."))
        self.initializeParameterNode()

    def showResults(self) -> None:
        result = self.logic.lastResult
        self.ui.summaryLabel.text = compute.summaryText(result) if result is not None else _("No meshes yet.")
        report = result.report if result is not None else None
        fillTable(self.ui.structuresTableWidget, compute.structureRows(report) if report else [],
                  highlighted=compute.problemRows(report) if report else (), sortable=False)


class AnatomyINRShapeFromImageLogic(WorkerModuleLogic):
    """Exports the volume, runs ``image-to-mesh predict`` in a background worker, loads models and segments.

    Usable without the GUI: ``runBlocking(parameters)`` in scripts and tests.
    The scene is modified only after a successful run; the input volume never.
    """

    lastResult: Optional[compute.ShapeResult]

    def getParameterNode(self) -> AnatomyINRShapeFromImageParameterNode:
        return AnatomyINRShapeFromImageParameterNode(super().getParameterNode())

    def inputNodes(self, parameters: AnatomyINRShapeFromImageParameterNode) -> list:
        return [parameters.inputVolume] if parameters.inputVolume is not None else []

    def cannotRunReason(self, parameters: Optional[AnatomyINRShapeFromImageParameterNode]) -> Optional[str]:
        """Why Apply is not possible yet (None: it is)."""
        if parameters is None or parameters.inputVolume is None:
            return _("Select the CT volume.")
        if vtkMRMLLabelMapVolumeNode.SafeDownCast(parameters.inputVolume) is not None:
            return _("{name} is a label map; select the CT volume itself.").format(name=parameters.inputVolume.GetName())
        if parameters.inputVolume.GetImageData() is None:
            return _("{name} holds no image.").format(name=parameters.inputVolume.GetName())
        return compute.checkpointProblem(parameters.checkpointPath)

    # ---- running ------------------------------------------------------------------------------------
    def start(self, parameters: AnatomyINRShapeFromImageParameterNode, onProgress: Callable,
              onFinished: Callable) -> BackgroundWorker:
        """Export the volume to a temporary folder and launch the worker; returns at once.

        ``onFinished(outcome, result)`` runs on the main thread after the models and
        segments are in the scene; ``result`` is None on failure or cancel.
        """
        self.checkCanStart(parameters, _("A prediction is already running."))
        volume = parameters.inputVolume
        image = mrml_convert.imageGridFromVolume(volume)  # world geometry (a linear parent transform applied)
        checkpoint, refine = parameters.checkpointPath.strip(), bool(parameters.refineToEdges)
        files = compute.WorkFiles(slicer.util.tempDirectory("AnatomyINR-shape"))
        return self.launch("image-to-mesh", IMAGE_TO_MESH_PREDICT_STAGES, files.folder,
                           lambda: compute.workerArguments(files, compute.writeWorkerInputs(files, image), checkpoint,
                                                           refine),
                           lambda: compute.readWorkerResult(files, image.shape),
                           lambda result: self.applyResult(parameters, volume, result), onProgress, onFinished)

    def applyResult(self, parameters: AnatomyINRShapeFromImageParameterNode, volume: vtkMRMLScalarVolumeNode,
                    result: compute.ShapeResult) -> None:
        """One model per structure and the named, coloured segments (created if needed).

        ``volume`` is the one the run started with. Everything that can refuse the result
        is checked before the scene changes: a malformed report, the volume deleted
        meanwhile, a chosen segmentation under another transform than the volume.
        """
        compute.checkReport(result.report)
        if volume.GetScene() is None:
            raise ValueError(_("the input volume was removed from the scene during the run"))
        segmentation = parameters.outputSegmentation
        if segmentation is not None and segmentation.GetTransformNodeID() != volume.GetTransformNodeID():
            raise ValueError(_("{segmentation}: must be under the same transform as {volume} (or harden both)").format(
                segmentation=segmentation.GetName(), volume=volume.GetName()))
        if segmentation is None:
            segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", _(compute.SEGMENTATION_NAME))
            if volume.GetTransformNodeID():  # the labels lie on the volume's own grid, so under its transform
                segmentation.SetAndObserveTransformNodeID(volume.GetTransformNodeID())
            parameters.outputSegmentation = segmentation
        segments = {value: (name, compute.STRUCTURE_COLORS[name]) for value, name in compute.STRUCTURES.items()}
        own = [getattr(parameters, SEGMENT_ID_FIELDS[name]) for name in compute.STRUCTURE_NAMES]
        ids = mrml_convert.writeLabelmapToSegmentation(result.labels, segmentation, volume, segments, ownSegmentIds=own)
        for name, segmentId in zip(compute.STRUCTURE_NAMES, ids):
            setattr(parameters, SEGMENT_ID_FIELDS[name], segmentId)
            self._showModel(parameters, name, result.meshes[name])
        self.lastResult = result

    @staticmethod
    def _showModel(parameters: AnatomyINRShapeFromImageParameterNode, name: str, mesh) -> None:
        """Write one structure's mesh (world RAS mm) into its model, created and coloured when missing."""
        model: Optional[vtkMRMLModelNode] = getattr(parameters, MODEL_FIELDS[name])
        if model is None:
            model = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", _(compute.STRUCTURE_TITLES[name]))
            mrml_convert.updateModelFromMesh(model, mesh)
            model.GetDisplayNode().SetColor(*compute.STRUCTURE_COLORS[name])
            setattr(parameters, MODEL_FIELDS[name], model)
        else:
            mrml_convert.updateModelFromMesh(model, mesh)


class AnatomyINRShapeFromImageTest(ScriptedLoadableModuleTest):
    """Whole-module tests inside Slicer on the library's cardiac phantom (slicer_add_python_unittest)."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        for test in (self.test_PhantomWithShippedModel, self.test_FailureLeavesSceneUnchanged):
            self.setUp()
            test()

    def _phantomScene(self) -> AnatomyINRShapeFromImageParameterNode:
        """A held-out cardiac phantom's CT as a scalar volume (its labels kept to compare with)."""
        from AnatomyINRLib.phantoms.cardiac import make_cardiac_phantom

        self.phantom = make_cardiac_phantom(1001, "small")
        self.logic = AnatomyINRShapeFromImageLogic()
        parameters = self.logic.getParameterNode()
        parameters.inputVolume = mrml_convert.addVolumeFromImageGrid(self.phantom.image, "cardiac CT")
        return parameters

    def test_PhantomWithShippedModel(self) -> None:
        dependencies.ensureDependencies(askConfirmation=False)
        parameters = self._phantomScene()
        outcome, result = self.logic.runBlocking(parameters)
        self.assertTrue(outcome.ok, outcome.message)
        segmentation = parameters.outputSegmentation
        ids = mrml_convert.segmentIdsAndNames(segmentation)
        self.assertEqual([name for _id, name in ids], list(compute.STRUCTURE_NAMES))
        # The model's accuracy is measured by benchmarks/image_to_mesh_train.py; here the segments must be
        # exactly the worker's label map on the volume's grid.
        labels = np.asarray(result.labels.array)
        for value, (segmentId, name) in zip(sorted(compute.STRUCTURES), ids):
            mask = mrml_convert.labelImageFromSegments(segmentation, {segmentId: 1}, parameters.inputVolume).array > 0
            self.assertTrue(np.array_equal(mask, labels == value), name)
            self.assertTrue(result.report["structures"][name]["watertight"])
            model = getattr(parameters, MODEL_FIELDS[name])
            self.assertEqual(model.GetPolyData().GetNumberOfPoints(), len(result.meshes[name].vertices))

    def test_FailureLeavesSceneUnchanged(self) -> None:
        import os

        dependencies.ensureDependencies(askConfirmation=False)
        parameters = self._phantomScene()
        folder = slicer.util.tempDirectory("AnatomyINR-shape-test")
        notAModel = os.path.join(folder, "not_a_model.safetensors")
        with open(notAModel, "wb") as stream:
            stream.write(b"not a checkpoint")
        parameters.checkpointPath = notAModel
        before = slicer.mrmlScene.GetNumberOfNodes()
        outcome, result = self.logic.runBlocking(parameters)
        self.assertTrue(not outcome.ok and result is None and outcome.returncode == 2, outcome.message)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)
