"""The fake MRML scene and the node classes the AnatomyINR modules use.

Every public CamelCase method and constant defined here exists on the class of
the same name (or a superclass) in ``Testing/Data/slicer_api/mrml_classes.json``;
``test_slicer_fake_facts.py`` checks it, so the fake cannot grow a method Slicer
does not have. Behaviour follows Slicer where the modules depend on it:

- observers: ``AddObserver(event, callback, priority)`` returns a tag, callbacks get
  ``(caller, event)``; ``Modified()`` fires ``vtkCommand.ModifiedEvent`` unless inside
  ``StartModify``/``EndModify`` (then once at the end, if anything changed);
- markups fire ``PointAddedEvent``/``PointModifiedEvent``/``PointRemovedEvent`` at once
  (not deferred by ``StartModify``), labels follow the default ``%N-%d`` format;
- node references go by ID and resolve through the scene, so a removed node reads as
  None, and removing a node drops the references to it (the referencing node is modified);
- ``Clear(0)`` fires ``StartCloseEvent``, removes every node but singletons (which are
  reset), then fires ``EndCloseEvent``;
- the parameter-node wrapper's node references are *not* observed: editing a selected
  point list does not modify the parameter node (as in Slicer).
"""

from __future__ import annotations

import itertools
from typing import Optional

import numpy as np
import vtk

_ENUM = itertools.count(20000)


class vtkObject:
    """Observers, modified time and ``Modified`` (VTK's ``vtkObject``)."""

    _mtime = itertools.count(1)

    def __init__(self) -> None:
        self._observers: dict = {}
        self._tags = itertools.count(1)
        self._modifyDepth = 0
        self._modifiedWhileBlocked = False
        self._time = next(self._mtime)

    def AddObserver(self, event, callback, priority: float = 0.0) -> int:
        tag = next(self._tags)
        self._observers[tag] = (_eventId(event), callback, float(priority))
        return tag

    def RemoveObserver(self, tag: int) -> None:
        self._observers.pop(tag, None)

    def HasObserver(self, event) -> int:
        return int(any(e == _eventId(event) for e, _c, _p in self._observers.values()))

    def InvokeEvent(self, event, callData=None) -> int:
        eventId = _eventId(event)
        matching = [(p, t, c) for t, (e, c, p) in self._observers.items() if e == eventId]
        for _priority, tag, callback in sorted(matching, key=lambda m: (-m[0], m[1])):
            if tag in self._observers:  # an earlier callback may have removed it
                callback(self, _eventName(eventId))
        return 0

    def Modified(self) -> None:
        self._time = next(self._mtime)
        if self._modifyDepth:
            self._modifiedWhileBlocked = True
            return
        self.InvokeEvent(vtk.vtkCommand.ModifiedEvent)

    def GetMTime(self) -> int:
        return self._time

    def GetClassName(self) -> str:
        return type(self).__name__

    def IsA(self, className: str) -> int:
        return int(any(cls.__name__ == className for cls in type(self).__mro__))


def _eventId(event) -> int:
    if isinstance(event, str):
        return vtk.vtkCommand.GetEventIdFromString(event)
    return int(event)


def _eventName(eventId: int):
    """What VTK passes to a Python callback: the event's name for VTK events, the number otherwise."""
    return vtk.vtkCommand.GetStringFromEventId(eventId) if eventId < vtk.vtkCommand.UserEvent else eventId


class vtkMRMLNode(vtkObject):
    ReferenceRemovedEvent = next(_ENUM)

    @classmethod
    def SafeDownCast(cls, obj):
        return obj if isinstance(obj, cls) else None

    def __init__(self) -> None:
        super().__init__()
        self._scene = None
        self._id = None
        self._name = ""
        self._attributes: dict = {}
        self._references: dict = {}
        self._singletonTag = None

    def GetID(self) -> Optional[str]:
        return self._id

    def GetName(self) -> str:
        return self._name

    def SetName(self, name: str) -> None:
        if name != self._name:
            self._name = name
            self.Modified()

    def GetScene(self):
        return self._scene

    def SetAttribute(self, name: str, value: str) -> None:
        self._attributes[name] = value
        self.Modified()

    def GetAttribute(self, name: str) -> Optional[str]:
        return self._attributes.get(name)

    def SetSingletonTag(self, tag: str) -> None:
        self._singletonTag = tag

    def GetSingletonTag(self) -> Optional[str]:
        return self._singletonTag

    def StartModify(self) -> int:
        self._modifyDepth += 1
        return int(self._modifyDepth > 1)

    def EndModify(self, previous: int) -> int:
        self._modifyDepth = max(0, self._modifyDepth - 1)
        if self._modifyDepth == 0 and self._modifiedWhileBlocked:
            self._modifiedWhileBlocked = False
            self.Modified()
        return self._modifyDepth

    def SetNodeReferenceID(self, role: str, nodeId: Optional[str]):
        if self._references.get(role) != nodeId:
            if nodeId:
                self._references[role] = nodeId
            else:
                self._references.pop(role, None)
            self.Modified()
        return self.GetNodeReference(role)

    def GetNodeReferenceID(self, role: str) -> Optional[str]:
        return self._references.get(role)

    def GetNodeReference(self, role: str):
        nodeId = self._references.get(role)
        return self._scene.GetNodeByID(nodeId) if nodeId and self._scene is not None else None

    def Reset(self, defaultNode=None) -> None:
        self._attributes = {key: value for key, value in self._attributes.items() if key == "ModuleName"}
        self._references.clear()
        self.Modified()


class vtkMRMLScriptedModuleNode(vtkMRMLNode):
    def __init__(self) -> None:
        super().__init__()
        self._parameters: dict = {}

    def SetParameter(self, name: str, value: str) -> None:
        if self._parameters.get(name) != value:
            self._parameters[name] = value
            self.Modified()

    def GetParameter(self, name: str) -> str:
        return self._parameters.get(name, "")

    def GetParameterNames(self) -> list:
        return list(self._parameters)

    def UnsetParameter(self, name: str) -> None:
        if self._parameters.pop(name, None) is not None:
            self.Modified()

    def Reset(self, defaultNode=None) -> None:
        self._parameters.clear()
        super().Reset(defaultNode)


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
    pass


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


class vtkMRMLAbstractLogic(vtkObject):
    pass


class vtkSlicerModuleLogic(vtkMRMLAbstractLogic):
    pass


class vtkSlicerMarkupsLogic(vtkSlicerModuleLogic):
    """Records where the views were asked to jump (``jumps``: ``(node ID, index, centered)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.jumps: list = []

    def JumpSlicesToNthPointInMarkup(self, id: str, n: int, centered: bool = False, viewGroup: int = -1,
                                     exclude=None) -> None:
        self.jumps.append((id, int(n), bool(centered)))


NODE_CLASSES = {cls.__name__: cls for cls in (
    vtkMRMLScriptedModuleNode, vtkMRMLModelNode, vtkMRMLModelDisplayNode, vtkMRMLMarkupsDisplayNode,
    vtkMRMLSegmentationDisplayNode, vtkMRMLMarkupsFiducialNode, vtkMRMLMarkupsCurveNode, vtkMRMLMarkupsLineNode,
    vtkMRMLScalarVolumeNode, vtkMRMLLabelMapVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode,
    vtkMRMLColorTableNode)}


class vtkMRMLScene(vtkObject):
    """Nodes by ID, singleton lookup, node and close events."""

    NodeAddedEvent = next(_ENUM)
    NodeAboutToBeRemovedEvent = next(_ENUM)
    NodeRemovedEvent = next(_ENUM)
    StartCloseEvent = next(_ENUM)
    EndCloseEvent = next(_ENUM)

    def __init__(self) -> None:
        super().__init__()
        self._nodes: dict = {}
        self._ids = itertools.count(1)
        self._closing = False

    def CreateNodeByClass(self, className: str):
        return NODE_CLASSES[className]()

    def AddNode(self, node):
        node._scene = node._scene or self
        node._id = node._id or f"{type(node).__name__}{next(self._ids)}"
        self._nodes[node._id] = node
        self.InvokeEvent(self.NodeAddedEvent, node)
        return node

    def AddNewNodeByClass(self, className: str, nodeBaseName: str = "", nodeID: str = ""):
        node = self.CreateNodeByClass(className)
        node._name = nodeBaseName or className.replace("vtkMRML", "").replace("Node", "")
        if nodeID:
            node._id = nodeID
        return self.AddNode(node)

    def RemoveNode(self, node) -> None:
        if node is None or node.GetID() not in self._nodes:
            return
        self.InvokeEvent(self.NodeAboutToBeRemovedEvent, node)
        del self._nodes[node.GetID()]
        for other in list(self._nodes.values()):
            for role, nodeId in list(other._references.items()):
                if nodeId == node.GetID():
                    other.SetNodeReferenceID(role, None)
        node._scene = None
        self.InvokeEvent(self.NodeRemovedEvent, node)

    def GetNodeByID(self, nodeId: str):
        return self._nodes.get(nodeId)

    def GetFirstNodeByClass(self, className: str):
        return next((n for n in self._nodes.values() if n.IsA(className)), None)

    def GetFirstNodeByName(self, name: str):
        return next((n for n in self._nodes.values() if n.GetName() == name), None)

    def GetNumberOfNodes(self) -> int:
        return len(self._nodes)

    def GetNumberOfNodesByClass(self, className: str) -> int:
        return sum(1 for n in self._nodes.values() if n.IsA(className))

    def GetSingletonNode(self, singletonTag: str, className: str):
        return next((n for n in self._nodes.values()
                     if n.GetSingletonTag() == singletonTag and n.IsA(className)), None)

    def IsClosing(self) -> bool:
        return self._closing

    def Clear(self, removeSingletons: int = 0) -> None:
        self._closing = True
        self.InvokeEvent(self.StartCloseEvent)
        for node in list(self._nodes.values()):
            if node.GetSingletonTag() and not removeSingletons:
                continue
            self.RemoveNode(node)
        for node in self._nodes.values():
            node.Reset(None)
        self._closing = False
        self.InvokeEvent(self.EndCloseEvent)

    def nodesByClass(self, className: str) -> list:
        """Test helper (not a Slicer method): the nodes of a class, in insertion order."""
        return [n for n in self._nodes.values() if n.IsA(className)]
