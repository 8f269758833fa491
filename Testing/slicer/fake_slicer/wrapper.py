"""Fake ``slicer.parameterNodeWrapper`` and ``slicer.ScriptedLoadableModule``.

The wrapper behaves as Slicer's does where the modules depend on it:

- fields come from the class annotations (``Annotated[T, WithinRange/Choice]``, MRML
  node classes or a ``Union`` of them, ``bool``/``float``/``str``, lists of tuples) with the class defaults,
  written to the parameter node when it has none;
- a node field is a node reference by ID (resolves to None once the node is removed);
  other values are serialized into parameters; every change modifies the parameter
  node (``vtkCommand.ModifiedEvent``), an unchanged value does not;
- the referenced nodes are not observed: editing a selected point list does not
  modify the parameter node;
- ``connectGui(ui)`` binds each widget whose ``SlicerParameterName`` names a field, both
  ways (combo boxes get the ``Choice`` values, spin boxes the ``WithinRange`` bounds (``QSpinBox`` an ``int``),
  line edits a ``str``);
  ``disconnectGui(tag)`` undoes it.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import types
import typing
import unittest

import vtk

from fake_slicer import qtfake, qtui
from fake_slicer.mrml import vtkMRMLNode


class WithinRange:
    def __init__(self, minimum, maximum) -> None:
        self.minimum, self.maximum = minimum, maximum

    def validate(self, value) -> None:
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"Value must be within range [{self.minimum}, {self.maximum}], is {value}")


class Choice:
    def __init__(self, choices) -> None:
        self.choices = tuple(choices)

    def validate(self, value) -> None:
        if value not in self.choices:
            raise ValueError(f"Value must be one of {self.choices}, is {value!r}")


class _Field:
    def __init__(self, name: str, hint, default) -> None:
        self.name = name
        self.validators = []
        if typing.get_origin(hint) is typing.Annotated:
            hint, *extras = typing.get_args(hint)
            self.validators = [e for e in extras if hasattr(e, "validate")]
        self.type = hint
        if typing.get_origin(hint) is typing.Union:  # a Union of node classes: any of them (Slicer accepts it)
            members = typing.get_args(hint)
            if all(isinstance(m, type) and issubclass(m, vtkMRMLNode) for m in members):
                self.type = members
        self.isNode = isinstance(self.type, tuple) or (isinstance(hint, type) and issubclass(hint, vtkMRMLNode))
        self.default = default if default is not _MISSING else ([] if typing.get_origin(hint) is list else None)

    def choices(self):
        return next((v.choices for v in self.validators if isinstance(v, Choice)), None)

    def bounds(self):
        return next(((v.minimum, v.maximum) for v in self.validators if isinstance(v, WithinRange)), None)


_MISSING = object()
_guiTags = itertools.count(1)


def _encode(value):
    if isinstance(value, vtkMRMLNode):
        return {"node": value.GetID()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value, scene):
    if isinstance(value, dict) and "node" in value:
        return scene.GetNodeByID(value["node"]) if scene is not None else None
    if isinstance(value, list):
        return [_decode(v, scene) for v in value]
    return value


def _fieldProperty(field: _Field) -> property:
    def getter(self):
        node = self.parameterNode
        if field.isNode:
            return node.GetNodeReference(field.name)
        text = node.GetParameter(field.name)
        if not text:
            return field.default
        value = _decode(json.loads(text), node.GetScene())
        if typing.get_origin(field.type) is list:
            return [tuple(v) if isinstance(v, list) else v for v in value]
        return value

    def setter(self, value):
        node = self.parameterNode
        if field.isNode:
            if value is not None and not isinstance(value, field.type):
                expected = " or ".join(t.__name__ for t in (field.type if isinstance(field.type, tuple) else (field.type,)))
                raise ValueError(f"{field.name}: expected {expected}, got {value.GetClassName()}")
            node.SetNodeReferenceID(field.name, value.GetID() if value is not None else None)
            return
        if field.type is float:
            value = float(value)
        elif field.type is int:
            if float(value) != int(value):
                raise ValueError(f"{field.name}: expected an integer, got {value!r}")
            value = int(value)
        elif field.type is bool:
            value = bool(value)
        for validator in field.validators:
            validator.validate(value)
        node.SetParameter(field.name, json.dumps(_encode(value)))

    return property(getter, setter)


def parameterNodeWrapper(classtype=None):
    """Class decorator: typed properties over a ``vtkMRMLScriptedModuleNode``."""
    hints = typing.get_type_hints(classtype, vars(sys.modules[classtype.__module__]), include_extras=True)
    fields = {name: _Field(name, hint, classtype.__dict__.get(name, _MISSING)) for name, hint in hints.items()}

    def __init__(self, parameterNode):
        self.parameterNode = parameterNode
        self._guis = {}
        for field in fields.values():
            if not field.isNode and not parameterNode.GetParameter(field.name):
                setattr(self, field.name, field.default)

    namespace = {name: _fieldProperty(field) for name, field in fields.items()}
    namespace.update(__init__=__init__, _fields=fields, __doc__=classtype.__doc__, __module__=classtype.__module__,
                     AddObserver=lambda self, event, callback, priority=0.0: self.parameterNode.AddObserver(
                         event, callback, priority),
                     RemoveObserver=lambda self, tag: self.parameterNode.RemoveObserver(tag),
                     StartModify=lambda self: self.parameterNode.StartModify(),
                     EndModify=lambda self, wasModifying: self.parameterNode.EndModify(wasModifying),
                     default=lambda self, name: fields[name].default,
                     connectGui=_connectGui, disconnectGui=_disconnectGui)
    return type(classtype.__name__, (), namespace)


def _connectGui(self, gui) -> int:
    widgets = gui.children if hasattr(gui, "children") and isinstance(gui.children, list) else vars(gui).values()
    bindings = []
    for widget in widgets:
        name = widget.property("SlicerParameterName") if isinstance(widget, qtfake.QObject) else None
        if not name:
            continue
        field = self._fields[name]  # a name that is not a field fails, as in Slicer
        bindings.append(_bind(self, field, widget))
    observer = self.parameterNode.AddObserver(vtk.vtkCommand.ModifiedEvent, lambda *a: _writeAll(self, bindings))
    _writeAll(self, bindings)
    tag = next(_guiTags)
    self._guis[tag] = (bindings, observer)
    return tag


def _bind(wrapper, field: _Field, widget):
    def fromGui(*args):
        setattr(wrapper, field.name, read())

    if isinstance(widget, qtui.qMRMLNodeComboBox):
        signal, read = "currentNodeChanged(vtkMRMLNode*)", widget.currentNode
        write = widget.setCurrentNode
    elif isinstance(widget, qtfake.QComboBox):
        for choice in field.choices() or ():
            widget.addItem(str(choice))
        signal, read = "currentIndexChanged(int)", lambda: widget.currentText
        write = widget.setCurrentText
    elif isinstance(widget, qtfake.QLineEdit):
        signal, read, write = "textChanged(QString)", lambda: widget.text, widget.setText
    elif isinstance(widget, qtfake._ValueWidget):
        if field.bounds():
            widget.setRange(*field.bounds())
        signal = "valueChanged(int)" if isinstance(widget, qtfake.QSpinBox) else "valueChanged(double)"
        read, write = lambda: widget.value, widget.setValue
    elif isinstance(widget, qtfake.QAbstractButton):
        signal, read, write = "toggled(bool)", lambda: widget.checked, widget.setChecked
    else:
        raise TypeError(f"{widget.objectName}: no connector for {type(widget).__name__}")
    widget.connect(signal, fromGui)
    return widget, signal, fromGui, lambda: write(getattr(wrapper, field.name))


def _writeAll(wrapper, bindings) -> None:
    for widget, _signal, _slot, write in bindings:
        blocked = widget.blockSignals(True)
        try:
            write()
        finally:
            widget.blockSignals(blocked)


def _disconnectGui(self, tag: int) -> None:
    bindings, observer = self._guis.pop(tag)
    self.parameterNode.RemoveObserver(observer)
    for widget, signal, slot, _write in bindings:
        widget.disconnect(signal, slot)


class ScriptedLoadableModule:
    def __init__(self, parent) -> None:
        self.parent = parent
        self.moduleName = type(self).__name__

    def resourcePath(self, filename):
        return os.path.join(os.path.dirname(sys.modules[type(self).__module__].__file__), "Resources", filename)


class ScriptedLoadableModuleWidget:
    def __init__(self, parent=None) -> None:
        self.parent = parent or types.SimpleNamespace(isEntered=True)
        self.layout = qtfake.QVBoxLayout()
        self.moduleName = type(self).__name__[:-len("Widget")]
        self.developerMode = False

    def resourcePath(self, filename):
        return os.path.join(os.path.dirname(sys.modules[type(self).__module__].__file__), "Resources", filename)

    def setup(self) -> None:
        pass

    def cleanup(self) -> None:
        pass


class ScriptedLoadableModuleLogic:
    def __init__(self, parent=None) -> None:
        name = type(self).__name__
        self.moduleName = name[:-len("Logic")] if name.endswith("Logic") else name

    def getParameterNode(self):
        import slicer

        node = slicer.mrmlScene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
        return node if node is not None else slicer.mrmlScene.AddNode(self.createParameterNode())

    def createParameterNode(self):
        import slicer

        node = slicer.mrmlScene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
        node.SetSingletonTag(self.moduleName)
        node.SetAttribute("ModuleName", self.moduleName)
        return node


class ScriptedLoadableModuleTest(unittest.TestCase):
    def delayDisplay(self, message, requestedDelay=None, msec=None) -> None:
        pass
