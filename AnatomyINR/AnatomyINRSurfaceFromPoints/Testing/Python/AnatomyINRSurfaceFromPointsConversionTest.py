"""MRML ⇄ AnatomyINRLib conversions (AnatomyINRSlicerLib.mrml_convert), inside Slicer.

Run by ctest through ``slicer_add_python_unittest``. Checks world coordinates
under a linear transform, KJI ⇄ IJK with an oblique ijk→RAS, model round trips,
named coloured segments on a reference grid, and that inputs are never modified.
"""

import unittest

import numpy as np
import slicer
import vtk

from AnatomyINRLib.core.types import ImageGrid, TriangleMesh
from AnatomyINRSlicerLib import mrml_convert
from AnatomyINRSlicerLib.vtk_convert import matrixFromArray


def _obliqueMatrix() -> np.ndarray:
    angle = np.radians(20.0)
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    matrix = np.eye(4)
    matrix[:3, :3] = rotation @ np.diag([0.8, 1.0, 2.5])
    matrix[:3, 3] = [-12.0, 30.0, 4.0]
    return matrix


class AnatomyINRSurfaceFromPointsConversionTest(unittest.TestCase):
    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def test_PointsAreWorldRasAndInputUntouched(self) -> None:
        points = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [-7.0, 8.0, -9.0]])
        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "points")
        slicer.util.updateMarkupsControlPointsFromArray(node, points)
        transform = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
        shift = np.eye(4)
        shift[:3, 3] = [10.0, 0.0, -5.0]
        transform.SetMatrixTransformToParent(matrixFromArray(shift))
        node.SetAndObserveTransformNodeID(transform.GetID())
        before = node.GetMTime()
        pointSet = mrml_convert.pointSetFromMarkups(node)
        np.testing.assert_allclose(pointSet.points, points + shift[:3, 3])
        self.assertEqual(len(pointSet.labels), 3)
        self.assertEqual(node.GetMTime(), before)

    def test_VolumeIsIjkWithObliqueGeometry(self) -> None:
        kji = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
        volume = slicer.util.addVolumeFromArray(kji, ijkToRAS=matrixFromArray(_obliqueMatrix()), name="oblique")
        grid = mrml_convert.imageGridFromVolume(volume)
        self.assertEqual(grid.shape, (6, 5, 4))
        self.assertEqual(grid.array[5, 4, 3], kji[3, 4, 5])
        np.testing.assert_allclose(grid.ijk_to_ras, _obliqueMatrix(), atol=1e-9)
        copy = mrml_convert.addVolumeFromImageGrid(grid, "copy", labelmap=True)
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(copy), kji)

    def test_ModelRoundTrip(self) -> None:
        sphere = vtk.vtkSphereSource()
        sphere.SetRadius(7.0)
        sphere.Update()
        model = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", "sphere")
        model.SetAndObserveMesh(sphere.GetOutput())
        mesh = mrml_convert.meshFromModel(model)
        self.assertIsInstance(mesh, TriangleMesh)
        output = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLModelNode", "copy")
        mrml_convert.updateModelFromMesh(output, mesh)
        np.testing.assert_allclose(slicer.util.arrayFromModelPoints(output), mesh.vertices)
        self.assertIsNotNone(output.GetDisplayNode())

    def test_LabelmapToNamedSegments(self) -> None:
        reference = slicer.util.addVolumeFromArray(np.zeros((8, 9, 10), dtype=np.int16),
                                                   ijkToRAS=matrixFromArray(_obliqueMatrix()), name="reference")
        labels = np.zeros((10, 9, 8), dtype=np.uint8)
        labels[2:5, 2:6, 1:4] = 1
        labels[6:9, 1:3, 5:7] = 2
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "segments")
        ids = mrml_convert.writeLabelmapToSegmentation(
            ImageGrid(labels, _obliqueMatrix()), segmentation, reference,
            {1: ("wall", (1.0, 0.0, 0.0)), 2: ("lumen", (0.0, 0.0, 1.0))})
        self.assertEqual(len(ids), 2)
        for segmentId, value in zip(ids, (1, 2)):
            mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentId, reference)
            np.testing.assert_array_equal(mask, (labels == value).transpose(2, 1, 0).astype(mask.dtype))
        self.assertEqual(segmentation.GetSegmentation().GetSegmentIdBySegmentName("lumen"), ids[1])
        # Writing again updates the same named segments instead of adding new ones.
        mrml_convert.writeLabelmapToSegmentation(ImageGrid(labels, _obliqueMatrix()), segmentation, reference,
                                                 {1: ("wall", (1.0, 0.0, 0.0))})
        self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 2)
