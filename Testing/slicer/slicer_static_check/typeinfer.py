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
  assignments agree, or declared by a class-level annotation (which wins:
  a subclass narrows ``_parameterNode: Optional[<Module>ParameterNode]``);
  instances of the module's own classes and of ``@parameterNodeWrapper``
  classes (their fields keep their annotated types);
- classes imported by name from the extension's own files (``from
  AnatomyINRSlicerLib.module_base import WorkerModuleWidget``; see
  ``resolver.py``): their methods, attributes and bases count as if the class
  were in the checked file. ``self.X`` is looked up through all bases
  (methods, assigned attributes, annotations), ``super().X()`` through the
  bases of the class whose method calls it, and the methods a class inherits
  from such a base are checked again with ``self`` being the subclass (its
  ``.ui``, its parameter node wrapper, its Logic).

What it cannot infer (such expressions are simply not checked): values from
containers, loops or ``with`` targets, ``isinstance`` narrowing, ``getattr``,
results of Qt/CTK calls, values passed between functions without annotations,
classes reached as ``module.Class`` (only ``from module import Class`` is
followed, and only into the extension's own files), and anything typed only
at run time.
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
    name is "slicer", "slicer.util", "vtk", ...), "super" (``super()`` in a
    method of the class ``name``), "owner" (kept in a method's environment as
    ``__class__``: the class that defines the method).
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
    """A class defined in the checked file or in a file it imports from (``inf`` reads that file)."""

    name: str
    node: ast.ClassDef
    bases: list
    methods: dict
    wrapper: bool
    fields: dict
    attr_types: dict
    assigned: set
    inf: Optional["Inferencer"] = None
    path: str = ""


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
    """Names, imports and expression types of one file (see the module docstring).

    Args:
        facts: The Slicer API facts.
        tree: The file's syntax tree.
        path: Shown in findings about this file.
        resolver: Finds the extension's own files behind imports (None: imports are not followed).
        registry: Classes by name, shared with the inferencers of the files this one
            imports from (created here for the checked file).
        loaded: Files already read in this check (shared likewise).
    """

    def __init__(self, facts, tree: ast.Module, path: str = "", resolver=None, registry: Optional[dict] = None,
                 loaded: Optional[dict] = None) -> None:
        self.facts = facts
        self.tree = tree
        self.path = path
        self.aliases: dict[str, str] = {}
        self.classes: dict = registry if registry is not None else {}
        self.local = _collect_classes(tree)
        for info in self.local.values():
            info.inf, info.path = self, path
            self.classes.setdefault(info.name, info)
        self.functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        imported = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.append(node.module)
                for a in node.names:
                    if a.name != "*":
                        self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        if resolver is not None:
            loaded = loaded if loaded is not None else {}
            for module in imported:
                self._load(module, resolver, loaded)
        for info in self.local.values():
            if not info.wrapper:  # class-level annotations declare the type of self.<name>
                for name, annotation in info.fields.items():
                    found = self.annotation_type(annotation)
                    if found is not None:
                        info.attr_types[name] = found

    def _load(self, module: str, resolver, loaded: dict) -> None:
        """Read the extension's own file behind ``from module import ...`` (once per check)."""
        path = resolver.find(module)
        if path is None or path in loaded:
            return
        loaded[path] = None  # in progress: import cycles stop here
        tree = resolver.parse(path)
        if tree is not None:
            loaded[path] = Inferencer(self.facts, tree, resolver.display(path), resolver, self.classes, loaded)

    # ---- classes and their bases -----------------------------------------------------------
    def lineage(self, cls: str) -> list:
        """``cls`` and every base class known here (local or imported), nearest first, each once."""
        order, stack = [], [cls]
        while stack:
            name = stack.pop(0)
            if name in self.classes and name not in order:
                order.append(name)
                stack.extend(b.split(".")[-1] for b in self.classes[name].bases)
        return order

    def other_bases(self, cls: str) -> list:
        """Short names of the bases of ``cls``'s lineage that are not known classes (Slicer's, unittest's...)."""
        out = []
        for name in self.lineage(cls):
            out += [b.split(".")[-1] for b in self.classes[name].bases if b.split(".")[-1] not in self.classes]
        return out

    def attr_type(self, cls: str, attr: str) -> Optional[T]:
        """Type of ``self.<attr>`` for an instance of ``cls`` (the nearest class that knows it)."""
        for name in self.lineage(cls):
            found = self.classes[name].attr_types.get(attr)
            if found is not None:
                return found
        return None

    def is_assigned(self, cls: str, attr: str) -> bool:
        return any(attr in self.classes[name].assigned for name in self.lineage(cls))

    def method_owner(self, cls: str, name: str, skip_first: bool = False):
        """``(ClassInfo, def)`` of the method ``name`` found first in ``cls``'s lineage, or (None, None)."""
        for owner in self.lineage(cls)[1 if skip_first else 0:]:
            info = self.classes[owner]
            if name in info.methods:
                return info, info.methods[name]
        return None, None

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
                return self.attr_type(base.name, expr.attr)
            if base is not None and base.kind == "wrapper":
                return self.annotation_type(self.classes[base.name].fields.get(expr.attr))
            return None
        if isinstance(expr, ast.Call):
            return self._infer_call(expr, env)
        return None

    def _infer_call(self, call: ast.Call, env: dict) -> Optional[T]:
        if (isinstance(call.func, ast.Name) and call.func.id == "super" and not call.args
                and "__class__" in env and "super" not in env):
            return T("super", env["__class__"].name)  # zero-argument super(): the bases of the defining class
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
            if func_type is None and isinstance(call.func, ast.Name):
                func_type = self.infer(call.func, env)  # a class imported from the extension's own files
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
        if base.kind in ("user", "super"):
            owner, method = self.method_owner(base.name, attr, skip_first=base.kind == "super")
            return owner.inf.annotation_type(method.returns) if method is not None else None
        return None

    def find_method(self, cls: str, name: str):
        """A method defined in ``cls`` or one of its known bases."""
        return self.method_owner(cls, name)[1]


def _literal_kwarg(call: ast.Call, name: str) -> Optional[str]:
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
            return kw.value.value
    return None
