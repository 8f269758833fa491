"""Vessel blend inputs inside Slicer: the input list and segment → mesh without touching the input.

Run by ctest through ``slicer_add_python_unittest``.
"""

import unittest

import numpy as np
import slicer
import vtk

from AnatomyINRSlicerLib import mrml_convert
from AnatomyINRVesselBlend import AnatomyINRVesselBlendLogic


def _sphere(radius: float, center) -> vtk.vtkPolyData:
    source = vtk.vtkSphereSource()
    source.SetRadius(radius)
    source.SetCenter(*center)
    source.SetThetaResolution(48)
    source.SetPhiResolution(48)
    source.Update()
    return source.GetOutput()


class AnatomyINRVesselBlendInputsTest(unittest.TestCase):
    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def test_SegmentToMeshLeavesSegmentationUnchanged(self) -> None:
        segmentationNode: slicer.vtkMRMLSegmentationNode = slicer.mrmlScene.AddNewNodeByClass(
            "vtkMRMLSegmentationNode", "segments")
        segmentId = segmentationNode.AddSegmentFromClosedSurfaceRepresentation(_sphere(10.0, (5.0, 0.0, -3.0)), "ball")
        segmentationNode.CreateBinaryLabelmapRepresentation()
        segmentationNode.SetSourceRepresentationToBinaryLabelmap()
        segmentationNode.RemoveClosedSurfaceRepresentation()
        segmentation = segmentationNode.GetSegmentation()
        before = segmentationNode.GetMTime()
        mesh = mrml_convert.meshFromSegment(segmentationNode, segmentId)
        self.assertAlmostEqual(abs(mesh.signed_volume()) / (4 / 3 * np.pi * 10.0**3), 1.0, delta=0.12)
        np.testing.assert_allclose(mesh.vertices.mean(axis=0), [5.0, 0.0, -3.0], atol=0.5)
        self.assertFalse(segmentation.ContainsRepresentation(mrml_convert.CLOSED_SURFACE))
        self.assertEqual(segmentationNode.GetMTime(), before)
        with self.assertRaises(ValueError):
            mrml_convert.meshFromSegment(segmentationNode, "no such segment")

    def test_InputListAddsEverySegmentOnceAndRemoves(self) -> None:
        logic = AnatomyINRVesselBlendLogic()
        parameters = logic.getParameterNode()
        segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "segments")
        for name, center in (("left", (-20.0, 0.0, 0.0)), ("right", (20.0, 0.0, 0.0))):
            segmentationNode.AddSegmentFromClosedSurfaceRepresentation(_sphere(5.0, center), name)
        model = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", "tube")
        model.SetAndObserveMesh(_sphere(3.0, (0.0, 0.0, 0.0)))
        for node in (segmentationNode, model, segmentationNode):
            logic.addInput(parameters, node)
        entries = logic.inputEntries(parameters)
        self.assertEqual([logic.inputName(n, s) for n, s, _r in entries], ["segments: left", "segments: right", "tube"])
        self.assertEqual([r for _n, _s, r in entries], [parameters.radiusMm] * 3)
        self.assertIsNone(logic.cannotRunReason(parameters))
        sources = logic.sources(parameters)
        self.assertTrue(all(source.isMesh for source in sources))
        logic.removeInput(parameters, 0)
        logic.removeInput(parameters, 0)
        self.assertEqual(len(logic.inputEntries(parameters)), 1)
        self.assertIsNotNone(logic.cannotRunReason(parameters))
        slicer.mrmlScene.RemoveNode(model)
        self.assertEqual(logic.inputEntries(parameters), [])
