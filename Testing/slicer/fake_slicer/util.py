"""Fake ``slicer.util``: the functions the modules call, with Slicer's signatures.

Every public function here exists in ``slicer_util_functions.json`` with a signature
that accepts the same parameters in 5.10.0 and 5.12.3 (``test_slicer_fake_facts.py``).
Dialogs do not block: they are recorded in :data:`dialogs` (``(kind, text)``) and
confirmations answer :data:`answers["confirm"]`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
import traceback

import numpy as np
import vtk
from vtk.util import numpy_support

from fake_slicer import qtui

dialogs: list = []
answers = {"confirm": True}
pipRequests: list = []
pipConstraints: list = []  # the text of the file a ``-c FILE`` request named, read when it was made
_tempRoot = {"path": None}


def _scene():
    import slicer

    return slicer.mrmlScene


def loadUI(path):
    return qtui.loadUI(path)


def childWidgetVariables(widget):
    return qtui.childWidgetVariables(widget)


def errorDisplay(text, windowTitle=None, parent=None, standardButtons=None, **kwargs):
    dialogs.append(("error", str(text)))
    logging.error(text)


def warningDisplay(text, windowTitle=None, parent=None, standardButtons=None, **kwargs):
    dialogs.append(("warning", str(text)))


def infoDisplay(text, windowTitle=None, parent=None, standardButtons=None, **kwargs):
    dialogs.append(("info", str(text)))


def confirmOkCancelDisplay(text, windowTitle=None, parent=None, **kwargs):
    dialogs.append(("confirm", str(text)))
    return answers["confirm"]


def confirmYesNoDisplay(text, windowTitle=None, parent=None, **kwargs):
    dialogs.append(("confirm", str(text)))
    return answers["confirm"]


def showStatusMessage(message, duration=0):
    dialogs.append(("status", str(message)))


@contextlib.contextmanager
def tryWithErrorDisplay(message=None, show=True, waitCursor=False):
    """Like Slicer's: an exception in the block is logged and shown (``message`` + the error), not raised."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - what the real one does
        text = f"{message}\n\n{error}" if message else str(error)
        logging.error(text + "\n" + traceback.format_exc())
        if show:
            errorDisplay(text)


def tempDirectory(key="__SlicerTemp__", tempDir=None, includeDateTime=True):
    if _tempRoot["path"] is None:
        _tempRoot["path"] = tempfile.mkdtemp(prefix="fake-slicer-")
    return tempfile.mkdtemp(prefix=f"{key}-", dir=tempDir or _tempRoot["path"])


def startupEnvironment():
    """The environment Slicer was started with (here: this process's)."""
    return dict(os.environ)


def launchConsoleProcess(args, useStartupEnvironment=True, updateEnvironment=None, cwd=None):
    """As in Slicer 5.10: text-mode ``Popen`` (locale encoding, no error handler), stderr into stdout."""
    environment = os.environ.copy()
    environment.update(updateEnvironment or {})
    return subprocess.Popen(args, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, cwd=cwd)


def pip_install(requirements):
    """Records the request (and its constraints file's text); the fake never installs anything."""
    pipRequests.append(requirements)
    words = requirements.split(" ")
    if "-c" in words:
        with open(words[words.index("-c") + 1], encoding="utf-8") as stream:
            pipConstraints.append(stream.read())


def arrayFromMarkupsControlPoints(markupsNode, world=False):
    count = markupsNode.GetNumberOfControlPoints()
    return np.array([markupsNode.GetNthControlPointPosition(i) for i in range(count)], dtype=float).reshape(-1, 3)


def updateMarkupsControlPointsFromArray(markupsNode, narray, world=False):
    """Update existing points in place, add or remove the rest (one Modified at the end)."""
    narray = np.asarray(narray, dtype=float).reshape(-1, 3)
    wasModifying = markupsNode.StartModify()
    try:
        old = markupsNode.GetNumberOfControlPoints()
        for index in range(min(old, len(narray))):
            markupsNode.SetNthControlPointPosition(index, *narray[index])
        for index in range(old, len(narray)):
            markupsNode.AddControlPoint(vtk.vtkVector3d(*narray[index]))
        for index in range(old - 1, len(narray) - 1, -1):
            markupsNode.RemoveNthControlPoint(index)
    finally:
        markupsNode.EndModify(wasModifying)


def vtkMatrixFromArray(narray):
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(narray[r][c]))
    return matrix


def arrayFromVTKMatrix(vmatrix):
    return np.array([[vmatrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def addVolumeFromArray(narray, ijkToRAS=None, name=None, nodeClassName=None):
    node = _scene().AddNewNodeByClass(nodeClassName or "vtkMRMLScalarVolumeNode", name or "")
    image = vtk.vtkImageData()
    k, j, i = narray.shape
    image.SetDimensions(i, j, k)
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ascontiguousarray(narray).ravel(), deep=True))
    node.SetAndObserveImageData(image)
    if ijkToRAS is not None:
        node.SetIJKToRASMatrix(ijkToRAS if isinstance(ijkToRAS, vtk.vtkMatrix4x4) else vtkMatrixFromArray(ijkToRAS))
    return node


def arrayFromVolume(volumeNode):
    image = volumeNode.GetImageData()
    i, j, k = image.GetDimensions()
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(k, j, i)


def arrayFromModelPoints(modelNode):
    return numpy_support.vtk_to_numpy(modelNode.GetPolyData().GetPoints().GetData())


def arrayFromModelPointData(modelNode, arrayName):
    return numpy_support.vtk_to_numpy(modelNode.GetPolyData().GetPointData().GetArray(arrayName))


def _segmentReference(segmentationNode, referenceVolumeNode):
    reference = referenceVolumeNode or segmentationNode.GetNodeReference(
        segmentationNode.GetReferenceImageGeometryReferenceRole())
    if reference is None:
        raise RuntimeError("No reference volume is found in the input segmentationNode, therefore a valid "
                           "referenceVolumeNode input is required.")
    return reference


def updateSegmentBinaryLabelmapFromArray(narray, segmentationNode, segmentId, referenceVolumeNode=None):
    from fake_slicer.segmentations import geometryOf

    reference = _segmentReference(segmentationNode, referenceVolumeNode)
    segment = segmentationNode.GetSegmentation().GetSegment(segmentId)
    segment._mask, segment._ijkToRas = (np.asarray(narray) != 0).astype(np.uint8), geometryOf(reference)
    segmentationNode.Modified()


def arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, referenceVolumeNode=None):
    """A copy of the segment's mask; the fake cannot resample, so the grids must match."""
    from fake_slicer.segmentations import geometryOf

    reference = _segmentReference(segmentationNode, referenceVolumeNode)
    segment = segmentationNode.GetSegmentation().GetSegment(segmentId)
    shape = arrayFromVolume(reference).shape
    if segment._mask is None:
        return np.zeros(shape, dtype=np.uint8)
    if segment._mask.shape != shape or not np.allclose(segment._ijkToRas, geometryOf(reference)):
        raise RuntimeError("fake slicer: the segment lies on another grid than the reference volume (no resampling)")
    return segment._mask.copy()


def loadSegmentation(filename, properties={}, returnNode=False):
    """A new segmentation node holding the file's segments (names, colours, masks)."""
    from fake_slicer.segmentations import readSegmentationFile

    segments, ijkToRas, name = readSegmentationFile(filename)
    node = _scene().AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    segmentation = node.GetSegmentation()
    for segmentName, color, value, mask in segments:
        segment = segmentation.GetSegment(segmentation.AddEmptySegment("", segmentName, color))
        segment.SetLabelValue(value)
        segment._mask, segment._ijkToRas = mask, ijkToRas
    node.CreateDefaultDisplayNodes()
    return node


def getNode(pattern="*", index=0, scene=None):
    node = (scene or _scene()).GetFirstNodeByName(pattern)
    if node is None:
        raise MRMLNodeNotFoundException(f"could not find nodes in the scene by name or id '{pattern}'")
    return node


class MRMLNodeNotFoundException(Exception):
    pass


class VTKObservationMixin:
    """``addObserver``/``removeObserver`` keyed by (object, event, method), as in Slicer."""

    def __init__(self):
        super().__init__()
        self._observations = []

    @property
    def Observations(self):
        return self._observations

    def removeObservers(self, method=None):
        for obj, event, callback, priority, tag in list(self.Observations):
            if method is None or method == callback:
                obj.RemoveObserver(tag)
                self.Observations.remove([obj, event, callback, priority, tag])

    def addObserver(self, obj, event, method, group="none", priority=0.0):
        if self.hasObserver(obj, event, method):
            return
        tag = obj.AddObserver(event, method, priority)
        self.Observations.append([obj, event, method, priority, tag])

    def removeObserver(self, obj, event, method):
        for observation in list(self.Observations):
            if observation[0] is obj and observation[1] == event and observation[2] == method:
                obj.RemoveObserver(observation[4])
                self.Observations.remove(observation)

    def hasObserver(self, obj, event, method):
        return any(o[0] is obj and o[1] == event and o[2] == method for o in self.Observations)

    def observer(self, event, method, default=None):
        return next((o[0] for o in self.Observations if o[1] == event and o[2] == method), default)
