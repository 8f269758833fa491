"""Fake MRML: observers (``vtkObject``), ``vtkMRMLNode`` and the scripted module node (see ``mrml.py``)."""

from __future__ import annotations

import itertools
from typing import Optional

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
