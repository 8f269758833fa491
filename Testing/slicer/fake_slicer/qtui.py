"""Fake Qt/CTK/MRML widgets built from a Designer ``.ui`` file (tables, text, collapsible, node selectors).

See ``qtfake.py`` for the signal and property conventions; :func:`loadUI` is what
``slicer.util.loadUI`` returns here.
"""

from __future__ import annotations

import types
import xml.etree.ElementTree as ET
from typing import Optional

from fake_slicer import qtfake
from fake_slicer.qtfake import QAbstractButton, Qt, QWidget, _ValueWidget


class QTableWidgetItem:
    def __init__(self, text: str = "") -> None:
        self._data = {Qt.DisplayRole: text}
        self._background = None

    def setText(self, text: str) -> None:
        self._data[Qt.DisplayRole] = text

    def text(self) -> str:
        value = self._data.get(Qt.DisplayRole)
        return "" if value is None else str(value)

    def setData(self, role: int, value) -> None:
        self._data[role] = value

    def data(self, role: int):
        return self._data.get(role)

    def setBackground(self, brush) -> None:
        self._background = brush

    def background(self):
        return self._background

    def setToolTip(self, text: str) -> None:
        self._data[Qt.ToolTipRole] = text


class _ModelIndex:
    def __init__(self, row: int, column: int) -> None:
        self._row, self._column = row, column

    def row(self) -> int:
        return self._row

    def column(self) -> int:
        return self._column


class QTableWidget(QWidget):
    def __init__(self, *args) -> None:
        super().__init__()
        self._rows, self.columnCount, self.sortingEnabled = 0, 0, False
        self._cells: dict = {}
        self._selected: set = set()

    @property
    def rowCount(self) -> int:
        return self._rows

    @rowCount.setter
    def rowCount(self, rows: int) -> None:
        self._rows = int(rows)
        self._cells = {key: value for key, value in self._cells.items() if key[0] < self._rows}
        self._selected = {r for r in self._selected if r < self._rows}

    def setRowCount(self, rows: int) -> None:
        self.rowCount = rows

    def setItem(self, row: int, column: int, item) -> None:
        self._cells[(row, column)] = item

    def item(self, row: int, column: int):
        cell = self._cells.get((row, column))
        return cell if isinstance(cell, QTableWidgetItem) else None

    def setCellWidget(self, row: int, column: int, widget) -> None:
        self._cells[(row, column)] = widget

    def cellWidget(self, row: int, column: int):
        cell = self._cells.get((row, column))
        return None if isinstance(cell, QTableWidgetItem) else cell

    def selectRow(self, row: int) -> None:
        self._selected = {row}
        self.emit("itemSelectionChanged")

    def clearSelection(self) -> None:
        self._selected = set()

    def selectedIndexes(self) -> list:
        return [_ModelIndex(r, c) for r in sorted(self._selected) for c in range(max(1, self.columnCount))]

    def clickCell(self, row: int, column: int) -> None:
        """Test helper: a user click on a cell."""
        self.selectRow(row)
        self.emit("cellClicked", row, column)


class QPlainTextEdit(QWidget):
    def __init__(self, *args) -> None:
        super().__init__()
        self.readOnly = False
        self._text = ""

    def appendPlainText(self, text: str) -> None:
        self._text = f"{self._text}\n{text}" if self._text else text

    def setPlainText(self, text: str) -> None:
        self._text = text

    def clear(self) -> None:
        self._text = ""

    def toPlainText(self) -> str:
        return self._text


class ctkCollapsibleButton(QAbstractButton):
    def __init__(self, *args) -> None:
        super().__init__()
        self.collapsed = False


class ctkSliderWidget(_ValueWidget):
    pass


class ctkPathLineEdit(QWidget):
    """A file path entry with a browse button: setting ``currentPath`` emits ``currentPathChanged(QString)``."""

    def __init__(self, *args) -> None:
        super().__init__()
        self._path, self.filters, self.nameFilters = "", "", []

    @property
    def currentPath(self) -> str:
        return self._path

    @currentPath.setter
    def currentPath(self, value: str) -> None:
        if str(value) != self._path:
            self._path = str(value)
            self.emit("currentPathChanged", self._path)

    def setCurrentPath(self, value: str) -> None:
        self.currentPath = value


class qMRMLWidget(QWidget):
    def __init__(self, *args) -> None:
        super().__init__()
        self._scene = None

    def setMRMLScene(self, scene) -> None:
        self._scene = scene
        self.emit("mrmlSceneChanged", scene)

    def mrmlScene(self):
        return self._scene


class qMRMLNodeComboBox(qMRMLWidget):
    """Node selector: ``setCurrentNode`` emits ``currentNodeChanged(vtkMRMLNode*)`` (nodes of ``nodeTypes`` only)."""

    def __init__(self, *args) -> None:
        super().__init__()
        self.nodeTypes, self.noneEnabled, self.addEnabled, self.removeEnabled = [], False, True, True
        self.selectNodeUponCreation, self.renameEnabled, self.showChildNodeTypes = True, False, True
        self._node = None

    def currentNode(self):
        node = self._node
        return node if node is not None and node.GetScene() is not None else None

    def setCurrentNode(self, node) -> None:
        if node is not None and not any(node.IsA(t) for t in self.nodeTypes):
            raise TypeError(f"{self.objectName}: {node.GetClassName()} is not one of {self.nodeTypes}")
        if node is not self._node:
            self._node = node
            self.emit("currentNodeChanged", node)

    def currentNodeID(self) -> Optional[str]:
        node = self.currentNode()
        return node.GetID() if node is not None else None


class qMRMLMarkupsPlaceWidget(qMRMLWidget):
    def __init__(self, *args) -> None:
        super().__init__()
        self._node = None
        self.buttonsVisible, self.placeMultipleMarkups, self.placeModeEnabled = True, 0, False

    def setCurrentNode(self, node) -> None:
        self._node = node

    def currentNode(self):
        return self._node


WIDGET_CLASSES = {cls.__name__: cls for cls in (
    QWidget, qtfake.QLabel, qtfake.QPushButton, qtfake.QCheckBox, qtfake.QProgressBar, qtfake.QDoubleSpinBox,
    qtfake.QComboBox, qtfake.QLineEdit, QTableWidget,
    qtfake.QSpinBox, QPlainTextEdit, ctkCollapsibleButton, ctkSliderWidget, ctkPathLineEdit, qMRMLWidget,
    qMRMLNodeComboBox,
    qMRMLMarkupsPlaceWidget)}


def _propertyValue(element):
    """The Python value of a Designer ``<property>`` element."""
    child = next(iter(element), None)
    if child is None:
        return None
    if child.tag == "bool":
        return child.text == "true"
    if child.tag in ("double", "number"):
        return float(child.text) if child.tag == "double" else int(child.text)
    if child.tag == "stringlist":
        return [s.text or "" for s in child.findall("string")]
    if child.tag in ("string", "cstring", "enum", "set"):
        return child.text or ""
    return None


def loadUI(path: str):
    """The root widget of a ``.ui`` file, with every named child in ``root.children``."""
    tree = ET.parse(path)
    byName: dict = {}

    def build(element):
        className = element.get("class")
        if className not in WIDGET_CLASSES:
            raise TypeError(f"{path}: widget class {className} is not in the fake Qt")
        widget = WIDGET_CLASSES[className]()
        widget.objectName = element.get("name")
        byName[widget.objectName] = widget
        for prop in element.findall("property"):
            value = _propertyValue(prop)
            if value is not None and prop.get("name") not in ("geometry", "sizePolicy"):
                widget.setProperty(prop.get("name"), value)
        if isinstance(widget, QTableWidget):
            widget.columnCount = len(element.findall("column"))
        for child in element.iter("widget"):
            if child is not element and child.get("name") not in byName:
                widget.children.append(build(child))
        return widget

    root = build(tree.getroot().find("widget"))
    root.children = [w for w in byName.values() if w is not root]
    for connection in tree.getroot().iter("connection"):
        sender, receiver = byName[connection.findtext("sender")], byName[connection.findtext("receiver")]
        slotName = connection.findtext("slot").split("(")[0]
        sender.connect(connection.findtext("signal"), getattr(receiver, slotName))
    return root


def childWidgetVariables(widget):
    """A namespace with one attribute per named child widget (``slicer.util.childWidgetVariables``)."""
    return types.SimpleNamespace(**{w.objectName: w for w in widget.children if w.objectName})


def makeQtModule() -> types.ModuleType:
    module = types.ModuleType("qt")
    for name, value in {**vars(qtfake), **globals()}.items():
        if name.startswith("Q") or name == "Qt":
            setattr(module, name, value)
    return module


def makeCtkModule() -> types.ModuleType:
    module = types.ModuleType("ctk")
    module.ctkCollapsibleButton, module.ctkSliderWidget = ctkCollapsibleButton, ctkSliderWidget
    module.ctkPathLineEdit = ctkPathLineEdit
    return module
