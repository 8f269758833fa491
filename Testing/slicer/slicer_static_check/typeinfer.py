"""The light type inference behind the Python checks.

What it can infer (flow-insensitive, statement order within a function):

- ``slicer.mrmlScene`` → vtkMRMLScene; ``slicer.modules.<m>.logic()`` for
  segmentations, models, markups and volumes;
- class objects: ``slicer.vtkMRMLX``, ``vtk.vtkX`` and names imported with
  ``from slicer import vtkMRMLX``; calling one gives an instance;
- ``scene.AddNewNodeByClass("vtkMRMLX", ...)`` / ``CreateNodeByClass("vtkMRMLX")``
  (string literal) → vtkMRMLX; ``X.SafeDownCast(...)`` → X;
- return types of MRML methods parsed from their C++ declarations
  (``vtkMRMLDisplayNode* GetDisplayNode()``, ``vtkGetObjectMacro(.., vtkSegmentation)``)
  and of VTK methods from their docstrings (``GetPoints(self) -> vtkPoints``);
- a few ``slicer.util`` loaders whose node class is fixed (``UTIL_RETURNS``);
- annotations of parameters, variables, ``self`` attributes, method and
  module-level function returns (``X``, ``slicer.X``, ``"X"``, ``X | None``, ``Optional[X]``);
- ``PyTorchUtils.PyTorchUtilsLogic`` (the one class of another extension we call;
  its API from the facts README §c);
- ``self.attr`` assigned in any method of the class, when all non-None
  assignments agree; instances of the module's own classes and of
  ``@parameterNodeWrapper`` classes (their fields keep their annotated types).

What it cannot infer (such expressions are simply not checked): values from
containers, loops or ``with`` targets, ``isinstance`` narrowing, ``getattr``,
results of Qt/CTK calls, values passed between functions without annotations,
and anything typed only at run time.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Optional

# slicer.util functions whose returned node class is fixed (Base/Python/slicer/util.py docstrings).
UTIL_RETURNS = {
    "loadModel": "vtkMRMLModelNode",
    "loadLabelVolume": "vtkMRMLLabelMapVolumeNode",
    "loadVolume": "vtkMRMLScalarVolumeNode",
    "loadSegmentation": "vtkMRMLSegmentationNode",
    "loadMarkups": "vtkMRMLMarkupsNode",
    "getNode": "vtkMRMLNode",
    "getFirstNodeByName": "vtkMRMLNode",
    "vtkMatrixFromArray": "vtkMatrix4x4",
}
MODULE_LOGICS = {
    "segmentations": "vtkSlicerSegmentationsModuleLogic",
    "models": "vtkSlicerModelsLogic",
    "markups": "vtkSlicerMarkupsLogic",
    "volumes": "vtkSlicerVolumesLogic",
}
NODE_FACTORIES = ("AddNewNodeByClass", "CreateNodeByClass", "AddNewNodeByClassWithID")
# Python classes of other extensions, from the facts README (not in the JSON files):
# §c, fepegar/SlicerPyTorch PyTorchUtils/PyTorchUtils.py (public methods and properties).
EXTERNAL_CLASSES = {
    "PyTorchUtils.PyTorchUtilsLogic": {
        "torchInstalled": "torchInstalled()",
        "torchvisionInstalled": "torchvisionInstalled()",
        "importTorch": "importTorch()",
        "installTorch": "installTorch(askConfirmation=False, forceComputationBackend=None, "
                        "torchVersionRequirement=None, torchvisionVersionRequirement=None)",
        "uninstallTorch": "uninstallTorch()",
        "getCompatibleComputationBackends": "getCompatibleComputationBackends(forceComputationBackend=None, "
                                            "torchVersionRequirement=None)",
        "getDevice": "getDevice()",
        "getPyTorchHubModel": None,  # signature not recorded in the facts
        "torch": None, "cuda": None, "nvidiaDriverVersionInformation": None, "torchVersionInformation": None,
    },
}


@dataclass(frozen=True)
class T:
    """An inferred type.

    kind: "instance" (of an MRML/VTK class), "class" (the class object),
    "user" (instance of a class defined in the checked file), "wrapper"
    (instance of a @parameterNodeWrapper class), "module" (a module alias:
    name is "slicer", "slicer.util", "vtk", ...).
    """

    kind: str
    name: str


def inst(name: str) -> T:
    return T("instance", name)


def dotted(node: ast.AST) -> Optional[str]:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def annotation_names(node: Optional[ast.AST]) -> list[str]:
    """Candidate type names in an annotation (``X | None`` → ["X"])."""
    if node is None:
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return annotation_names(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return []
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return annotation_names(node.left) + annotation_names(node.right)
    if isinstance(node, ast.Subscript):
        head = dotted(node.value) or ""
        if head.split(".")[-1] in ("Optional", "Union"):
            inner = node.slice
            items = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            return [n for item in items for n in annotation_names(item)]
        return []
    name = dotted(node)
    if name is None or name == "None":
        return []
    return [name]


@dataclass
class ClassInfo:
    """A class defined in the checked file."""

    name: str
    node: ast.ClassDef
    bases: list
    methods: dict
    wrapper: bool
    fields: dict
    attr_types: dict
    assigned: set


def _self_attributes(node: ast.ClassDef) -> set:
    """Names assigned as ``self.X`` anywhere in the class (instance attributes)."""
    names = set()
    for sub in ast.walk(node):
        targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target] if isinstance(
            sub, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            for t in ast.walk(target):
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                    names.add(t.attr)
    return names


def _collect_classes(tree: ast.Module) -> dict:
    classes = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        decorators = {(dotted(d.func if isinstance(d, ast.Call) else d) or "").split(".")[-1] for d in node.decorator_list}
        fields = {s.target.id: s.annotation for s in node.body
                  if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
        methods = {s.name: s for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
        classes[node.name] = ClassInfo(node.name, node, [dotted(b) or "?" for b in node.bases], methods,
                                       "parameterNodeWrapper" in decorators, fields, {}, _self_attributes(node))
    return classes


class Inferencer:
    """Names, imports and expression types of one file (see the module docstring)."""

    def __init__(self, facts, tree: ast.Module) -> None:
        self.facts = facts
        self.tree = tree
        self.aliases: dict[str, str] = {}
        self.classes = _collect_classes(tree)
        self.functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    if a.name != "*":
                        self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    def qualify(self, expr: ast.AST) -> Optional[str]:
        """Fully qualified dotted name of an import-rooted expression, else None."""
        name = dotted(expr)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        if head not in self.aliases:
            return None
        return self.aliases[head] + ("." + rest if rest else "")

    def type_of_qualified(self, q: str) -> Optional[T]:
        if q in EXTERNAL_CLASSES:
            return T("externalclass", q)
        if q == "slicer.mrmlScene":
            return inst("vtkMRMLScene")
        if q.count(".") == 1 and q.startswith(("slicer.vtk", "vtk.vtk")):
            cls = q.split(".")[1]
            if self.facts.is_mrml_class(cls) or (q.startswith("vtk.") and self.facts.vtk_class(cls)):
                return T("class", cls)
        if q in ("slicer", "vtk") or q.startswith("slicer.") and q.split(".")[1] in ("util", "packaging", "cli", "testing"):
            return T("module", q) if q.count(".") <= 1 else None
        return None

    def named_type(self, name: str) -> Optional[T]:
        """Instance type for an annotation/class name, resolving imports."""
        head = name.split(".")[0]
        q = (self.aliases[head] + name[len(head):]) if head in self.aliases else name
        if q in EXTERNAL_CLASSES:
            return T("external", q)
        for candidate in (q, q.split(".")[-1]):
            if candidate in self.classes:
                return T("wrapper" if self.classes[candidate].wrapper else "user", candidate)
        last = q.split(".")[-1]
        if self.facts.is_mrml_class(last) or (q.startswith("vtk.") and self.facts.vtk_class(last)):
            return inst(last)
        return None

    def annotation_type(self, node: Optional[ast.AST]) -> Optional[T]:
        for name in annotation_names(node):
            found = self.named_type(name)
            if found is not None:
                return found
        return None

    def infer(self, expr: ast.AST, env: dict) -> Optional[T]:
        """Type of an expression, or None when unknown."""
        if isinstance(expr, ast.Name):
            if expr.id in env:
                return env[expr.id]
            if expr.id in self.classes:
                return T("userclass", expr.id)
            q = self.qualify(expr)
            return self.type_of_qualified(q) if q else None
        if isinstance(expr, ast.Attribute):
            q = self.qualify(expr)
            if q is not None:
                return self.type_of_qualified(q)
            base = self.infer(expr.value, env)
            if base is not None and base.kind == "user":
                return self.classes[base.name].attr_types.get(expr.attr)
            if base is not None and base.kind == "wrapper":
                return self.annotation_type(self.classes[base.name].fields.get(expr.attr))
            return None
        if isinstance(expr, ast.Call):
            return self._infer_call(expr, env)
        return None

    def _infer_call(self, call: ast.Call, env: dict) -> Optional[T]:
        q = self.qualify(call.func)
        if q and q.startswith("slicer.util."):
            name = q.split(".")[-1]
            if name == "addVolumeFromArray":
                cls = _literal_kwarg(call, "nodeClassName") or "vtkMRMLScalarVolumeNode"
                return inst(cls) if self.facts.is_mrml_class(cls) else None
            return inst(UTIL_RETURNS[name]) if name in UTIL_RETURNS else None
        if q and q.startswith("slicer.modules.") and q.endswith(".logic") and q.count(".") == 3:
            logic = MODULE_LOGICS.get(q.split(".")[2])
            return inst(logic) if logic else None
        if q is not None:
            func_type = self.type_of_qualified(q)
        elif not isinstance(call.func, ast.Attribute):
            func_type = self.infer(call.func, env)
        else:
            func_type = None
        if func_type is not None and func_type.kind == "class":
            return inst(func_type.name)
        if func_type is not None and func_type.kind == "externalclass":
            return T("external", func_type.name)
        if func_type is not None and func_type.kind == "userclass":
            return T("wrapper" if self.classes[func_type.name].wrapper else "user", func_type.name)
        if isinstance(call.func, ast.Name) and call.func.id in self.functions and call.func.id not in env:
            return self.annotation_type(self.functions[call.func.id].returns)
        if not isinstance(call.func, ast.Attribute):
            return None
        attr = call.func.attr
        base = self.infer(call.func.value, env)
        if base is None:
            return None
        if base.kind == "class" and attr == "SafeDownCast":
            return inst(base.name)
        if base.kind == "class" and attr == "__call__":
            return inst(base.name)
        if base.kind in ("instance", "class"):
            if attr in NODE_FACTORIES and call.args and isinstance(call.args[0], ast.Constant):
                cls = call.args[0].value
                return inst(cls) if isinstance(cls, str) and self.facts.is_mrml_class(cls) else None
            found = self.facts.return_class(base.name, attr)
            return inst(found) if found else None
        if base.kind == "user":
            method = self.find_method(base.name, attr)
            return self.annotation_type(method.returns) if method is not None else None
        return None

    def find_method(self, cls: str, name: str):
        """A method defined in ``cls`` or one of its bases defined in this file."""
        seen = set()
        while cls in self.classes and cls not in seen:
            seen.add(cls)
            info = self.classes[cls]
            if name in info.methods:
                return info.methods[name]
            local_bases = [b for b in info.bases if b in self.classes]
            if not local_bases:
                return None
            cls = local_bases[0]
        return None


def _literal_kwarg(call: ast.Call, name: str) -> Optional[str]:
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
            return kw.value.value
    return None
