"""The fake MRML scene and the node classes the AnatomyINR modules use (nodes in ``mrml_base``/``mrml_nodes``).

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

from fake_slicer.mrml_base import _ENUM, vtkMRMLNode, vtkMRMLScriptedModuleNode, vtkObject
from fake_slicer.mrml_nodes import (
    vtkMRMLDisplayNode,
    vtkMRMLModelDisplayNode,
    vtkMRMLMarkupsDisplayNode,
    vtkMRMLSegmentationDisplayNode,
    vtkMRMLStorableNode,
    vtkMRMLTransformableNode,
    vtkMRMLDisplayableNode,
    vtkMRMLModelNode,
    vtkMRMLMarkupsNode,
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLMarkupsCurveNode,
    vtkMRMLMarkupsLineNode,
    vtkMRMLVolumeNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLLabelMapVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
    vtkMRMLColorNode,
    vtkMRMLColorTableNode,
)
from fake_slicer.segmentations import vtkSegment, vtkSegmentation


# Every class of the fake MRML (the fake's slicer module exposes the vtkMRML* ones).
__all__ = [
    "vtkMRMLDisplayNode", "vtkMRMLModelDisplayNode", "vtkMRMLMarkupsDisplayNode", "vtkMRMLSegmentationDisplayNode",
    "vtkMRMLStorableNode", "vtkMRMLTransformableNode", "vtkMRMLDisplayableNode", "vtkMRMLModelNode",
    "vtkMRMLMarkupsNode", "vtkMRMLMarkupsFiducialNode", "vtkMRMLMarkupsCurveNode", "vtkMRMLMarkupsLineNode",
    "vtkMRMLVolumeNode", "vtkMRMLScalarVolumeNode", "vtkMRMLLabelMapVolumeNode", "vtkMRMLSegmentationNode",
    "vtkMRMLTableNode", "vtkMRMLColorNode", "vtkMRMLColorTableNode", "vtkObject", "vtkMRMLNode",
    "vtkMRMLScriptedModuleNode", "vtkSegment", "vtkSegmentation", "vtkMRMLAbstractLogic", "vtkSlicerModuleLogic", "vtkSlicerMarkupsLogic",
    "vtkMRMLScene", "NODE_CLASSES",
]


class vtkMRMLAbstractLogic(vtkObject):
    pass


class vtkSlicerModuleLogic(vtkMRMLAbstractLogic):
    pass


class vtkSlicerMarkupsLogic(vtkSlicerModuleLogic):
    """Records what the modules asked of it.

    ``jumps``: ``(node ID, index, centered)`` of each view jump; ``activeList``: the
    node passed to ``SetActiveList``; ``placeModes``: ``(persistent, interaction node)``
    of each ``StartPlaceMode`` (the fake has no views to place points in).
    """

    def __init__(self) -> None:
        super().__init__()
        self.jumps: list = []
        self.activeList = None
        self.placeModes: list = []

    def SetActiveList(self, markupsNode) -> None:
        self.activeList = markupsNode

    def StartPlaceMode(self, persistent: bool, interactionNode=None) -> bool:
        self.placeModes.append((bool(persistent), interactionNode))
        return True

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
