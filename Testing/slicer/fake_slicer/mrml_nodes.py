"""Fake MRML node classes: display, model, markups, volume, segmentation, table, colour (see ``mrml.py``)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import vtk

from fake_slicer.mrml_base import _ENUM, vtkMRMLNode


class vtkMRMLDisplayNode(vtkMRMLNode):
    UseManualScalarRange = 0

    def __init__(self) -> None:
        super().__init__()
        self._color, self._opacity, self._visibility = (0.5, 0.5, 0.5), 1.0, 1
        self._scalarName, self._colorNodeId, self._scalarVisibility = None, None, 0
        self._scalarRangeFlag, self._scalarRange = None, (0.0, 1.0)

    def SetColor(self, r, g=None, b=None) -> None:
        self._color = tuple(float(c) for c in (r if g is None else (r, g, b)))
        self.Modified()

    def GetColor(self) -> tuple:
        return self._color

    def SetSelectedColor(self, r, g=None, b=None) -> None:
        self._selectedColor = tuple(float(c) for c in (r if g is None else (r, g, b)))
        self.Modified()

    def GetSelectedColor(self) -> tuple:
        return getattr(self, "_selectedColor", (1.0, 0.5, 0.5))

    def SetOpacity(self, opacity: float) -> None:
        self._opacity = float(opacity)
        self.Modified()

    def GetOpacity(self) -> float:
        return self._opacity

    def SetVisibility(self, visible: int) -> None:
        self._visibility = int(visible)
        self.Modified()

    def GetVisibility(self) -> int:
        return self._visibility

    def SetActiveScalarName(self, name: str) -> None:
        self._scalarName = name
        self.Modified()

    def GetActiveScalarName(self) -> Optional[str]:
        return self._scalarName

    def SetAndObserveColorNodeID(self, nodeId: str) -> None:
        self._colorNodeId = nodeId
        self.Modified()

    def GetColorNodeID(self) -> Optional[str]:
        return self._colorNodeId

    def SetScalarRangeFlag(self, flag: int) -> None:
        self._scalarRangeFlag = flag

    def SetScalarRange(self, low: float, high: float) -> None:
        self._scalarRange = (float(low), float(high))

    def GetScalarRange(self) -> tuple:
        return self._scalarRange

    def SetScalarVisibility(self, visible) -> None:
        self._scalarVisibility = int(visible)

    def GetScalarVisibility(self) -> int:
        return self._scalarVisibility


class vtkMRMLModelDisplayNode(vtkMRMLDisplayNode):
    pass


class vtkMRMLMarkupsDisplayNode(vtkMRMLDisplayNode):
    pass


class vtkMRMLSegmentationDisplayNode(vtkMRMLDisplayNode):
    pass


class vtkMRMLStorableNode(vtkMRMLNode):
    def GetStorageNode(self):
        return self.GetNodeReference("storage")  # the fake keeps no files: None


class vtkMRMLTransformableNode(vtkMRMLStorableNode):
    def GetParentTransformNode(self):
        return None  # the fake has no transforms

    def GetTransformNodeID(self) -> Optional[str]:
        return None


class vtkMRMLDisplayableNode(vtkMRMLTransformableNode):
    _displayClass = vtkMRMLDisplayNode

    def GetDisplayNode(self):
        return self.GetNodeReference("display")

    def CreateDefaultDisplayNodes(self) -> None:
        if self.GetDisplayNode() is None and self._scene is not None:
            display = self._scene.AddNewNodeByClass(self._displayClass.__name__)
            self.SetNodeReferenceID("display", display.GetID())


class vtkMRMLModelNode(vtkMRMLDisplayableNode):
    _displayClass = vtkMRMLModelDisplayNode

    def __init__(self) -> None:
        super().__init__()
        self._mesh = None

    def SetAndObserveMesh(self, mesh) -> None:
        self._mesh = mesh
        self.Modified()

    def GetMesh(self):
        return self._mesh

    def GetPolyData(self):
        return vtk.vtkPolyData.SafeDownCast(self._mesh)

    def CreateDefaultDisplayNodes(self) -> None:
        super().CreateDefaultDisplayNodes()


class vtkMRMLMarkupsNode(vtkMRMLDisplayableNode):
    """Control points with labels and position status; point events fire immediately."""

    _displayClass = vtkMRMLMarkupsDisplayNode
    PointAddedEvent = next(_ENUM)
    PointModifiedEvent = next(_ENUM)
    PointRemovedEvent = next(_ENUM)
    PositionUndefined, PositionPreview, PositionDefined, PositionMissing = 0, 1, 2, 3

    def __init__(self) -> None:
        super().__init__()
        self._points: list = []
        self._lastNumber = 0
        self._locked = 0

    def SetLocked(self, locked) -> None:
        self._locked = int(locked)
        self.Modified()

    def GetLocked(self) -> int:
        return self._locked

    def _pointEvent(self, event, index: int) -> None:
        self.InvokeEvent(event, index)
        self.Modified()

    def AddControlPoint(self, *point, label: str = "") -> int:
        if len(point) == 2 and isinstance(point[1], str):
            point, label = point[:1], point[1]
        position = np.array(point if len(point) == 3 else [point[0][i] for i in range(3)], dtype=float)
        self._lastNumber += 1
        self._points.append({"position": position, "label": label or f"{self._name}-{self._lastNumber}",
                             "status": self.PositionDefined, "selected": True})
        self._pointEvent(self.PointAddedEvent, len(self._points) - 1)
        return len(self._points) - 1

    def AddControlPointWorld(self, *point, label: str = "") -> int:
        return self.AddControlPoint(*point, label=label)

    def SetNthControlPointPosition(self, index: int, *position) -> None:
        self._points[index]["position"] = np.array(position if len(position) == 3 else position[0], dtype=float)
        self._points[index]["status"] = self.PositionDefined
        self._pointEvent(self.PointModifiedEvent, index)

    def SetNthControlPointPositionWorld(self, index: int, *position) -> None:
        self.SetNthControlPointPosition(index, *position)

    def RemoveNthControlPoint(self, index: int) -> None:
        del self._points[index]
        self._pointEvent(self.PointRemovedEvent, index)

    def RemoveAllControlPoints(self) -> None:
        while self._points:
            self.RemoveNthControlPoint(len(self._points) - 1)

    def GetNumberOfControlPoints(self) -> int:
        return len(self._points)

    def GetNumberOfDefinedControlPoints(self, includePreview: bool = False) -> int:
        wanted = (self.PositionDefined, self.PositionPreview) if includePreview else (self.PositionDefined,)
        return sum(1 for p in self._points if p["status"] in wanted)

    def GetNthControlPointPositionStatus(self, index: int) -> int:
        return self._points[index]["status"]

    def GetNthControlPointLabel(self, index: int) -> str:
        return self._points[index]["label"]

    def SetNthControlPointLabel(self, index: int, label: str) -> None:
        self._points[index]["label"] = label
        self._pointEvent(self.PointModifiedEvent, index)

    def GetNthControlPointPosition(self, index: int, position=None):
        if position is not None:
            position[:3] = self._points[index]["position"]
        return tuple(self._points[index]["position"])

    def GetNthControlPointPositionWorld(self, index: int, position=None):
        return self.GetNthControlPointPosition(index, position)

    def SetNthControlPointSelected(self, index: int, selected: bool) -> None:
        self._points[index]["selected"] = bool(selected)
        self._pointEvent(self.PointModifiedEvent, index)

    def GetNthControlPointSelected(self, index: int) -> bool:
        return self._points[index]["selected"]


class vtkMRMLMarkupsFiducialNode(vtkMRMLMarkupsNode):
    pass


class vtkMRMLMarkupsCurveNode(vtkMRMLMarkupsNode):
    pass


class vtkMRMLMarkupsLineNode(vtkMRMLMarkupsNode):
    def GetLineLengthWorld(self) -> float:
        if len(self._points) < 2:
            return 0.0
        return float(np.linalg.norm(self._points[1]["position"] - self._points[0]["position"]))


class vtkMRMLVolumeNode(vtkMRMLDisplayableNode):
    def __init__(self) -> None:
        super().__init__()
        self._imageData = None
        self._ijkToRas = np.eye(4)

    def SetIJKToRASMatrix(self, matrix) -> None:
        self._ijkToRas = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
        self.Modified()

    def GetIJKToRASMatrix(self, matrix) -> None:
        for r in range(4):
            for c in range(4):
                matrix.SetElement(r, c, float(self._ijkToRas[r, c]))

    def SetAndObserveImageData(self, imageData) -> None:
        self._imageData = imageData
        self.Modified()

    def GetImageData(self):
        return self._imageData


class vtkMRMLScalarVolumeNode(vtkMRMLVolumeNode):
    pass


class vtkMRMLLabelMapVolumeNode(vtkMRMLScalarVolumeNode):
    pass


class vtkMRMLSegmentationNode(vtkMRMLDisplayableNode):
    _displayClass = vtkMRMLSegmentationDisplayNode

    def __init__(self) -> None:
        super().__init__()
        from fake_slicer.segmentations import vtkSegmentation

        self._segmentation = vtkSegmentation()

    def GetSegmentation(self):
        return self._segmentation

    @staticmethod
    def GetReferenceImageGeometryReferenceRole() -> str:
        return "referenceImageGeometryRef"

    def SetReferenceImageGeometryParameterFromVolumeNode(self, volumeNode) -> None:
        self.SetNodeReferenceID(self.GetReferenceImageGeometryReferenceRole(), volumeNode.GetID())


class vtkMRMLTableNode(vtkMRMLStorableNode):
    def __init__(self) -> None:
        super().__init__()
        self._table = vtk.vtkTable()
        self._titlesAsHeader = False

    def SetAndObserveTable(self, table) -> None:
        self._table = table
        self.Modified()

    def GetTable(self):
        return self._table

    def SetUseColumnTitleAsColumnHeader(self, use: bool) -> None:
        self._titlesAsHeader = bool(use)

    def GetNumberOfRows(self) -> int:
        return self._table.GetNumberOfRows()


class vtkMRMLColorNode(vtkMRMLStorableNode):
    def SetTypeToUser(self) -> None:
        pass


class vtkMRMLColorTableNode(vtkMRMLColorNode):
    def __init__(self) -> None:
        super().__init__()
        self._colors: list = []

    def SetNumberOfColors(self, count: int) -> None:
        self._colors = [(0.0, 0.0, 0.0, 0.0)] * int(count)

    def GetNumberOfColors(self) -> int:
        return len(self._colors)

    def SetColor(self, index: int, r: float, g: float, b: float, a: float = 1.0) -> int:
        self._colors[index] = (r, g, b, a)
        return 1
