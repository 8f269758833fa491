"""Rules for Qt Designer ``.ui`` files and their binding to a parameter-node wrapper.

- the file is well-formed XML with a ``<ui>`` root and one top-level widget;
- objectNames are unique; CTK/MRML/Slicer widgets are declared in ``<customwidgets>``;
- connections name existing widgets, and every MRML widget receives
  ``setMRMLScene(vtkMRMLScene*)`` from the top-level ``qMRMLWidget`` (the
  template's wiring; without it a node selector stays empty);
- ``nodeTypes`` are classes of mrml_classes.json;
- each ``SlicerParameterName`` dynamic property names a field of the module's
  ``@parameterNodeWrapper`` class, through a widget able to show that type
  (``guiConnectors.py`` table in the facts README §b).
"""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional

from .facts import SlicerFacts
from .findings import Finding
from .typeinfer import annotation_names

# Widget class → the value types its parameterNodeWrapper connector accepts.
WIDGET_TYPES = {
    **dict.fromkeys(("QCheckBox", "ctkCheckBox", "QPushButton", "ctkCheckablePushButton"), {"bool"}),
    **dict.fromkeys(("QSlider", "QSpinBox"), {"int"}),
    **dict.fromkeys(("QDoubleSpinBox", "ctkSliderWidget", "qMRMLSliderWidget", "ctkDoubleSlider", "ctkDoubleSpinBox",
                     "qMRMLSpinBox"), {"float", "int"}),
    **dict.fromkeys(("QComboBox", "ctkComboBox"), {"int", "float", "str", "bool", "enum"}),
    **dict.fromkeys(("QLineEdit", "QLabel", "QTextEdit"), {"str"}),
    **dict.fromkeys(("ctkRangeWidget", "ctkDoubleRangeSlider", "qMRMLRangeWidget"), {"FloatRange"}),
    **dict.fromkeys(("ctkPathLineEdit", "ctkDirectoryButton"), {"Path", "pathlib.Path"}),
    "qMRMLNodeComboBox": {"node"},
    "ctkColorPickerButton": {"QColor", "qt.QColor"},
}
PARAMETER_PROPERTY = "SlicerParameterName"


def _widgets(root: ET.Element):
    return [w for w in root.iter("widget") if w.get("name")]


def ui_object_names(path: Path) -> set[str]:
    """objectNames of every widget, layout and action in a ``.ui`` file."""
    root = ET.parse(path).getroot()
    return {e.get("name") for tag in ("widget", "layout", "action") for e in root.iter(tag) if e.get("name")}


def _property_text(widget: ET.Element, name: str) -> Optional[str]:
    for prop in widget.findall("property"):
        if prop.get("name") == name:
            string = prop.find("string")
            return string.text if string is not None else None
    return None


def field_kind(annotation: ast.AST, facts: SlicerFacts) -> tuple[str, Optional[str]]:
    """("node", class) | (type name, None) for a wrapper field annotation."""
    node = annotation
    if isinstance(node, ast.Subscript) and (ast.unparse(node.value).split(".")[-1] == "Annotated"):
        node = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) else node.slice
    for name in annotation_names(node):
        short = name.split(".")[-1]
        if facts.is_mrml_class(short):
            return "node", short
        return name, None
    return "unknown", None


def node_classes(annotation: ast.AST, facts: SlicerFacts) -> list[str]:
    """The MRML classes a wrapper field annotation names (several for a ``Union`` of nodes)."""
    node = annotation
    if isinstance(node, ast.Subscript) and (ast.unparse(node.value).split(".")[-1] == "Annotated"):
        node = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) else node.slice
    return [n.split(".")[-1] for n in annotation_names(node) if facts.is_mrml_class(n.split(".")[-1])]


def check_ui(path: Path, facts: SlicerFacts, shown: str, fields: Optional[dict] = None) -> list[Finding]:
    """All ``.ui`` rules for one file.

    Args:
        path: The ``.ui`` file.
        facts: API facts (for nodeTypes).
        shown: Path shown in findings.
        fields: ``{name: annotation AST}`` of the module's wrapper class, or None.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        return [Finding(shown, error.position[0], "ui-xml", f"not well-formed XML: {error}")]
    findings = []
    if root.tag != "ui" or root.find("widget") is None:
        return [Finding(shown, 0, "ui-xml", "expected a <ui> root holding one top-level <widget>")]
    widgets = _widgets(root)
    names = [w.get("name") for w in widgets]
    for name in sorted({n for n in names if names.count(n) > 1}):
        findings.append(Finding(shown, 0, "ui-duplicate", f"objectName {name!r} is used more than once"))
    declared = {c.findtext("class") for c in root.iter("customwidget")}
    for w in widgets:
        cls = w.get("class", "")
        if not cls.startswith("Q") and cls not in declared:
            findings.append(Finding(shown, 0, "ui-customwidget", f"{w.get('name')}: class {cls} not in <customwidgets>"))
    findings += _check_connections(root, shown)
    findings += _check_node_types(widgets, facts, shown)
    if fields is not None:
        findings += _check_parameters(widgets, fields, facts, shown)
    return findings


def _check_connections(root: ET.Element, shown: str) -> list[Finding]:
    findings = []
    names = {w.get("name") for w in _widgets(root)}
    top = root.find("widget").get("name")
    scene_receivers = set()
    for c in root.iter("connection"):
        sender, receiver = c.findtext("sender"), c.findtext("receiver")
        for end in (sender, receiver):
            if end not in names:
                findings.append(Finding(shown, 0, "ui-connection", f"connection names unknown widget {end!r}"))
        if sender == top and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)":
            scene_receivers.add(receiver)
    for w in _widgets(root):
        if w.get("class", "").startswith("qMRML") and w.get("name") != top and w.get("name") not in scene_receivers:
            findings.append(Finding(shown, 0, "ui-scene", f"{w.get('name')}: no mrmlSceneChanged → setMRMLScene "
                                    "connection from the top-level widget (it would list no nodes)"))
    return findings


def _check_node_types(widgets, facts: SlicerFacts, shown: str) -> list[Finding]:
    findings = []
    for w in widgets:
        for prop in w.findall("property"):
            if prop.get("name") == "nodeTypes":
                for s in prop.iter("string"):
                    if not facts.is_mrml_class(s.text or ""):
                        findings.append(Finding(shown, 0, "mrml-class",
                                                f"{w.get('name')}: nodeType {s.text!r} not in mrml_classes.json"))
    return findings


def _check_parameters(widgets, fields: dict, facts: SlicerFacts, shown: str) -> list[Finding]:
    findings = []
    for w in widgets:
        param = _property_text(w, PARAMETER_PROPERTY)
        if param is None:
            continue
        name, cls = w.get("name"), w.get("class")
        if param not in fields:
            findings.append(Finding(shown, 0, "ui-parameter", f"{name}: SlicerParameterName {param!r} is not a "
                                    f"field of the parameter node (fields: {', '.join(sorted(fields))})"))
            continue
        kind, node_class = field_kind(fields[param], facts)
        accepted = WIDGET_TYPES.get(cls)
        if accepted is not None and kind not in accepted and kind != "unknown":
            findings.append(Finding(shown, 0, "ui-parameter", f"{name}: a {cls} cannot show {param} of type {kind}"))
        if kind == "node":
            classes = node_classes(fields[param], facts)  # a Union of node classes accepts each of them
            for prop in w.findall("property"):
                if prop.get("name") == "nodeTypes":
                    for s in prop.iter("string"):
                        if facts.is_mrml_class(s.text or "") and not any(facts.is_subclass(s.text, c) for c in classes):
                            findings.append(Finding(shown, 0, "ui-parameter", f"{name}: nodeType {s.text} is not a "
                                                    f"{' or '.join(classes)}, the type of {param}"))
    return findings
