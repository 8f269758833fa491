"""Fake segmentations: ``vtkSegment``, ``vtkSegmentation`` and the ``slicer.util`` functions that fill and read them.

A segment holds one binary mask (KJI array, as ``slicer.util`` arrays are) on the grid
of the volume it was written with (``ijkToRas``); reading it back on another grid is
not supported (Slicer would resample; the fake raises instead of guessing).
``.seg.nrrd`` files are read with SimpleITK and the library's image reader (LPS → RAS).
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from fake_slicer.mrml_base import vtkObject


class vtkSegment(vtkObject):
    def __init__(self) -> None:
        super().__init__()
        self._name, self._color, self._labelValue = "", (0.5, 0.5, 0.5), 1
        self._mask, self._ijkToRas = None, None  # KJI uint8 array and its 4x4 geometry

    def GetName(self) -> str:
        return self._name

    def SetName(self, name: str) -> None:
        self._name = str(name)
        self.Modified()

    def GetColor(self) -> tuple:
        return self._color

    def SetColor(self, r, g=None, b=None) -> None:
        self._color = tuple(float(c) for c in (r if g is None else (r, g, b)))
        self.Modified()

    def GetLabelValue(self) -> int:
        return self._labelValue

    def SetLabelValue(self, value: int) -> None:
        self._labelValue = int(value)


class vtkSegmentation(vtkObject):
    _ids = itertools.count(1)

    def __init__(self) -> None:
        super().__init__()
        self._segments: list = []  # [(ID, vtkSegment)] in order

    def GetNumberOfSegments(self) -> int:
        return len(self._segments)

    def GetNthSegment(self, index: int):
        return self._segments[index][1]

    def GetNthSegmentID(self, index: int) -> str:
        return self._segments[index][0]

    def GetSegment(self, segmentId: str):
        return next((s for i, s in self._segments if i == segmentId), None)

    def AddEmptySegment(self, segmentId: str = "", segmentName: str = "", color=None) -> str:
        segmentId = segmentId or f"Segment_{next(self._ids)}"
        segment = vtkSegment()
        segment.SetName(segmentName or segmentId)
        if color is not None:
            segment.SetColor(*color)
        self._segments.append((segmentId, segment))
        self.Modified()
        return segmentId

    def RemoveSegment(self, segmentId: str) -> None:
        self._segments = [(i, s) for i, s in self._segments if i != segmentId]
        self.Modified()

    def DeepCopy(self, other) -> None:
        self._segments = []
        for segmentId, source in other._segments:
            segment = vtkSegment()
            segment._name, segment._color, segment._labelValue = source._name, source._color, source._labelValue
            segment._mask = None if source._mask is None else source._mask.copy()
            segment._ijkToRas = None if source._ijkToRas is None else source._ijkToRas.copy()
            self._segments.append((segmentId, segment))
        self.Modified()


def geometryOf(volumeNode) -> np.ndarray:
    return np.array(volumeNode._ijkToRas, dtype=float)


def readSegmentationFile(path: str):
    """``[(name, (r, g, b), label value, KJI mask)]`` and the 4x4 ijk→RAS of a ``.seg.nrrd`` (one layer)."""
    import SimpleITK as sitk

    from AnatomyINRLib.io.images import read_image

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    keys = set(reader.GetMetaDataKeys())
    grid = read_image(path)
    kji = np.asarray(grid.array).transpose(2, 1, 0)
    segments, n = [], 0
    while f"Segment{n}_Name" in keys:
        value = int(reader.GetMetaData(f"Segment{n}_LabelValue"))
        color = tuple(float(c) for c in reader.GetMetaData(f"Segment{n}_Color").split())
        segments.append((reader.GetMetaData(f"Segment{n}_Name"), color, value, (kji == value).astype(np.uint8)))
        n += 1
    return segments, np.asarray(grid.ijk_to_ras, dtype=float), os.path.basename(str(path)).split(".")[0]
