"""MRML nodes ⇄ AnatomyINRLib core types.

Rules every function here keeps:

- inputs are read, never modified: arrays are copies, no storage node, display
  node, selection or attribute of an input node is touched;
- coordinates leave as world RAS millimetres (linear parent transforms are
  applied; non-linear ones are refused with a message saying to harden them);
- voxel arrays cross as ``ImageGrid`` ([i, j, k] order plus a 4x4 ijk→RAS),
  never as Slicer's KJI arrays.

The VTK/numpy halves live in ``vtk_convert.py`` and are tested outside Slicer.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import slicer
import vtk

from AnatomyINRLib.core.types import ImageGrid, PointSet, TriangleMesh
from AnatomyINRSlicerLib.vtk_convert import (
    arrayFromMatrix,
    ijkFromKji,
    kjiFromIjk,
    matrixFromArray,
    meshFromPolyData,
    polyDataFromMesh,
    transformPoints,
)


def definedControlPoints(markupsNode: slicer.vtkMRMLMarkupsNode) -> np.ndarray:
    """(N,) bool: which control points are placed (not preview/undefined/missing)."""
    count = markupsNode.GetNumberOfControlPoints()
    defined = slicer.vtkMRMLMarkupsNode.PositionDefined
    return np.array([markupsNode.GetNthControlPointPositionStatus(i) == defined for i in range(count)], dtype=bool)


def pointsFromMarkups(markupsNode: slicer.vtkMRMLMarkupsNode) -> np.ndarray:
    """(N, 3) float64 world RAS mm of the placed control points.

    Works for point lists, curves and closed curves (their *control* points,
    not the interpolated curve). Parent transforms are applied.
    """
    positions = slicer.util.arrayFromMarkupsControlPoints(markupsNode, world=True)
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    return positions[definedControlPoints(markupsNode)].copy()


def pointSetFromMarkups(markupsNode: slicer.vtkMRMLMarkupsNode) -> PointSet:
    """The placed control points as a ``PointSet`` with their labels."""
    mask = definedControlPoints(markupsNode)
    labels = [markupsNode.GetNthControlPointLabel(i) for i in range(len(mask)) if mask[i]]
    return PointSet(pointsFromMarkups(markupsNode), labels=labels)


def matrixToWorld(node: slicer.vtkMRMLTransformableNode) -> np.ndarray:
    """(4, 4) node-to-world matrix (identity without a parent transform).

    Raises:
        ValueError: the parent transform is not linear.
    """
    parent = node.GetParentTransformNode()
    if parent is None:
        return np.eye(4)
    if not parent.IsTransformToWorldLinear():
        raise ValueError(f"{node.GetName()}: is under a non-linear transform; harden it first "
                         "(Data module, right-click the transform, 'Harden transform').")
    matrix = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(matrix)
    return arrayFromMatrix(matrix)


def meshFromModel(modelNode: slicer.vtkMRMLModelNode) -> TriangleMesh:
    """A copy of a model's surface as a ``TriangleMesh`` in world RAS mm."""
    mesh = meshFromPolyData(modelNode.GetPolyData())
    toWorld = matrixToWorld(modelNode)
    if not np.allclose(toWorld, np.eye(4)):
        mesh = TriangleMesh(transformPoints(mesh.vertices, toWorld), mesh.faces, mesh.point_data)
    return mesh


CLOSED_SURFACE = "Closed surface"  # segmentation representation name (facts README §g)


def meshFromSegment(segmentationNode: slicer.vtkMRMLSegmentationNode, segmentId: str) -> TriangleMesh:
    """A copy of one segment's closed surface as a ``TriangleMesh`` in world RAS mm.

    The segment is copied into a temporary ``vtkSegmentation`` (with the node's
    conversion parameters, e.g. smoothing) and converted there, so the input
    segmentation never gains a representation it did not have.

    Raises:
        ValueError: no such segment, or it is empty.
    """
    source = segmentationNode.GetSegmentation()
    if source.GetSegment(segmentId) is None:
        raise ValueError(f"{segmentationNode.GetName()}: has no segment with ID {segmentId!r}")
    name = source.GetSegment(segmentId).GetName()
    temporary = slicer.vtkSegmentation()
    temporary.SetSourceRepresentationName(source.GetSourceRepresentationName())
    temporary.CopyConversionParameters(source)
    temporary.CopySegmentFromSegmentation(source, segmentId, False)
    temporary.CreateRepresentation(CLOSED_SURFACE)
    surface = vtk.vtkPolyData.SafeDownCast(temporary.GetSegmentRepresentation(segmentId, CLOSED_SURFACE))
    if surface is None or surface.GetNumberOfPoints() == 0:
        raise ValueError(f"{segmentationNode.GetName()}: segment {name!r} is empty")
    triangles = vtk.vtkTriangleFilter()  # strips and polygons become triangles
    triangles.SetInputData(surface)
    triangles.Update()
    mesh = meshFromPolyData(triangles.GetOutput())
    toWorld = matrixToWorld(segmentationNode)
    if not np.allclose(toWorld, np.eye(4)):
        mesh = TriangleMesh(transformPoints(mesh.vertices, toWorld), mesh.faces, mesh.point_data)
    return mesh


def updateModelFromMesh(modelNode: slicer.vtkMRMLModelNode, mesh: TriangleMesh) -> None:
    """Replace an *output* model's surface by ``mesh`` (world RAS mm).

    A model under a transform would show the mesh moved, so the mesh is
    mapped through the inverse of the model's node-to-world matrix first.
    """
    toWorld = matrixToWorld(modelNode)
    if not np.allclose(toWorld, np.eye(4)):
        local = transformPoints(mesh.vertices, np.linalg.inv(toWorld))
        mesh = TriangleMesh(local, mesh.faces, mesh.point_data)
    modelNode.SetAndObserveMesh(polyDataFromMesh(mesh))
    if modelNode.GetDisplayNode() is None:
        modelNode.CreateDefaultDisplayNodes()


def ijkToRasFromVolume(volumeNode: slicer.vtkMRMLVolumeNode) -> np.ndarray:
    """(4, 4) voxel index → world RAS mm, including a linear parent transform."""
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return matrixToWorld(volumeNode) @ arrayFromMatrix(matrix)


def imageGridFromVolume(volumeNode: slicer.vtkMRMLVolumeNode, copyVoxels: bool = True) -> ImageGrid:
    """A volume (scalar or labelmap) as an ``ImageGrid`` in [i, j, k] order.

    Args:
        volumeNode: The volume; its voxels are copied, never viewed.
        copyVoxels: False gives a zero uint8 array of the same shape (geometry only).
    """
    kji = slicer.util.arrayFromVolume(volumeNode)
    if copyVoxels:
        array = ijkFromKji(kji)
    else:
        array = np.zeros(tuple(reversed(kji.shape)), dtype=np.uint8)
    return ImageGrid(array, ijkToRasFromVolume(volumeNode))


def addVolumeFromImageGrid(grid: ImageGrid, name: str, labelmap: bool = False) -> slicer.vtkMRMLVolumeNode:
    """A new scalar or labelmap volume node holding ``grid`` (world geometry)."""
    className = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    return slicer.util.addVolumeFromArray(kjiFromIjk(grid.array), ijkToRAS=matrixFromArray(grid.ijk_to_ras),
                                          name=name, nodeClassName=className)


def uniqueName(name: str, taken: Sequence[str]) -> str:
    """``name``, or ``"name 2"``, ``"name 3"``... whichever is not in ``taken``."""
    candidate, number = name, 1
    while candidate in set(taken):
        number += 1
        candidate = f"{name} {number}"
    return candidate


def writeLabelmapToSegmentation(
    labels: ImageGrid,
    segmentationNode: slicer.vtkMRMLSegmentationNode,
    referenceVolumeNode: slicer.vtkMRMLScalarVolumeNode,
    segments: Mapping[int, tuple[str, Sequence[float]]],
    ownSegmentIds: Sequence[str] = (),
) -> list[str]:
    """Write labels of an image on the reference geometry into named, coloured segments.

    Only segments this module wrote before (``ownSegmentIds``, e.g. kept in the
    parameter node) are updated in place; anything else gets a new segment, named
    ``"name 2"``... when the name is taken, so a user's segment is never overwritten.
    The reference geometry is set only on a segmentation that has no segments yet.

    Args:
        labels: Label image on exactly the reference volume's grid ([i, j, k]).
        segmentationNode: Output segmentation.
        referenceVolumeNode: The volume whose grid ``labels`` uses.
        segments: ``{label value: (segment name, (r, g, b) in 0..1)}``.

    Returns:
        Segment IDs, in the order of ``segments``.

    Raises:
        ValueError: shapes differ, or the two nodes sit under different transforms.
    """
    expected = tuple(reversed(slicer.util.arrayFromVolume(referenceVolumeNode).shape))
    if tuple(labels.shape) != expected:
        raise ValueError(f"labelmap: expected the reference grid {expected}, got {tuple(labels.shape)}")
    if segmentationNode.GetTransformNodeID() != referenceVolumeNode.GetTransformNodeID():
        raise ValueError(f"{segmentationNode.GetName()}: must be under the same transform as "
                         f"{referenceVolumeNode.GetName()} (or harden both transforms).")
    segmentation = segmentationNode.GetSegmentation()
    if segmentation.GetNumberOfSegments() == 0:
        segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(referenceVolumeNode)
    ids = []
    own = [i for i in ownSegmentIds if i and segmentation.GetSegment(i) is not None]
    for value, (name, color) in segments.items():
        segmentId = own.pop(0) if own else ""
        if not segmentId:
            taken = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
            segmentId = segmentation.AddEmptySegment("", uniqueName(name, taken), [float(c) for c in color])
        mask = kjiFromIjk((np.asarray(labels.array) == value).astype(np.uint8))
        slicer.util.updateSegmentBinaryLabelmapFromArray(mask, segmentationNode, segmentId, referenceVolumeNode)
        ids.append(segmentId)
    if segmentationNode.GetDisplayNode() is None:
        segmentationNode.CreateDefaultDisplayNodes()
    return ids


def segmentIdsAndNames(segmentationNode: slicer.vtkMRMLSegmentationNode) -> list[tuple[str, str]]:
    """``[(segment ID, name)]`` of a segmentation, in its order."""
    segmentation = segmentationNode.GetSegmentation()
    return [(segmentation.GetNthSegmentID(i), segmentation.GetNthSegment(i).GetName())
            for i in range(segmentation.GetNumberOfSegments())]


def labelImageFromSegments(segmentationNode: slicer.vtkMRMLSegmentationNode, segmentValues: Mapping[str, int],
                           referenceVolumeNode: slicer.vtkMRMLScalarVolumeNode) -> ImageGrid:
    """A uint8 label image on the reference volume's grid: each segment's voxels take its value.

    Args:
        segmentationNode: The segmentation (read, never modified).
        segmentValues: ``{segment ID: label value 1-255}``; a later segment wins where two overlap.
        referenceVolumeNode: The volume whose grid (world geometry) the image uses.

    Raises:
        ValueError: no segments given, or a value out of range.
    """
    if not segmentValues:
        raise ValueError(f"{segmentationNode.GetName()}: no segment to export")
    grid = imageGridFromVolume(referenceVolumeNode, copyVoxels=False)
    labels = np.zeros(grid.shape, dtype=np.uint8)
    for segmentId, value in segmentValues.items():
        if not 1 <= int(value) <= 255:
            raise ValueError(f"{segmentationNode.GetName()}: label value {value} of {segmentId!r} is outside 1-255")
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, referenceVolumeNode)
        labels[ijkFromKji(np.asarray(mask)) != 0] = int(value)
    return ImageGrid(labels, grid.ijk_to_ras)


def imageGridOnReference(volumeNode: slicer.vtkMRMLVolumeNode, referenceVolumeNode: slicer.vtkMRMLVolumeNode,
                         role: str) -> ImageGrid:
    """A volume's voxels as an ``ImageGrid``, refused unless it lies on the reference volume's grid.

    Raises:
        ValueError: another shape or geometry (the message names ``role`` and both volumes).
    """
    grid = imageGridFromVolume(volumeNode)
    reference = imageGridFromVolume(referenceVolumeNode, copyVoxels=False)
    if grid.shape != reference.shape or not np.allclose(grid.ijk_to_ras, reference.ijk_to_ras, atol=1e-4):
        raise ValueError(f"{role} ({volumeNode.GetName()}): is not on the grid of {referenceVolumeNode.GetName()} "
                         f"(shape {grid.shape} vs {reference.shape}); resample it onto that volume or give a "
                         "segmentation instead")
    return grid
