"""Rules for the Python files of the extension (the stand-in for running Slicer).

Each rule names the JSON fact it relies on. Version rule: a call is checked
against both supported releases (5.10.0 and 5.12.3) unless it sits in the
body of ``if hasSlicerPackaging():`` (or ``slicerVersionAtLeast(...)``), where
only 5.12.3 applies, or in that ``if``'s ``else`` branch, where only 5.10.0
applies. ``slicer.packaging`` exists only in 5.12 and must be guarded so.
"""

from __future__ import annotations

import ast
import unittest
from typing import Optional

from .facts import VERSIONS, Params, SlicerFacts, params_from_python_signature
from .findings import Finding
from .import_checks import check_imports
from .typeinfer import EXTERNAL_CLASSES, NODE_FACTORIES, Inferencer, T, dotted

GUARD_FUNCTIONS = ("hasSlicerPackaging", "slicerVersionAtLeast")
V512_ONLY = frozenset({"v5.12.3"})
V510_ONLY = frozenset({"v5.10.0"})
PYTHON_API_MODULES = ("slicer.cli", "slicer.packaging", "slicer.testing")
SLICER_BASES = ("ScriptedLoadableModule", "ScriptedLoadableModuleWidget", "ScriptedLoadableModuleLogic",
                "ScriptedLoadableModuleTest")
# Methods and attributes every @parameterNodeWrapper instance gets
# (Slicer/Slicer: Base/Python/slicer/parameterNodeWrapper/wrapper.py, _processClass).
WRAPPER_API = {"parameterNode", "allParameters", "default", "isCached", "dataType", "getValue", "setValue",
               "connectGui", "connectParametersToGui", "disconnectGui", "StartModify", "EndModify",
               "AddObserver", "RemoveObserver", "Modified"}
# slicer.modules.<name> used by the extension; core module names (lower-cased module class names).
KNOWN_MODULES = {"segmentations", "models", "markups", "volumes", "data", "segmenteditor", "pytorchutils"}
MRML_CLASS_ARGUMENTS = ("getNodesByClass", "GetNodesByClass", "GetFirstNodeByClass", "getFirstNodeByClassByName")


class PythonFileChecker:
    """Check one Python file.

    Args:
        facts: The Slicer API facts.
        path: Shown in findings.
        source: File contents.
        ui_names: objectNames of the module's ``.ui`` (None: ``self.ui`` not checked).
        own_modules: Lower-cased names of the extension's own modules.
        resolver: A ``resolver.ModuleResolver`` for the extension's own imports (None: not followed).
    """

    def __init__(self, facts: SlicerFacts, path: str, source: str, ui_names: Optional[set] = None,
                 own_modules: tuple = (), resolver=None) -> None:
        self.facts = facts
        self.path = path
        self.source = source
        self.ui_names = ui_names
        self.own_modules = set(own_modules)
        self.resolver = resolver
        self.context: Optional[str] = None  # the subclass whose inherited methods are being checked
        self.findings: set[Finding] = set()
        self.uses: set[tuple] = set()  # (API, where it is documented) of everything resolved
        self.report = False

    def use(self, api: str, source: str) -> None:
        if self.report:
            self.uses.add((api, source))

    def add(self, node: ast.AST, rule: str, message: str) -> None:
        if self.report:
            self.findings.add(Finding(self.path, getattr(node, "lineno", 0), rule, message))

    def run(self) -> list[Finding]:
        try:
            tree = ast.parse(self.source, filename=self.path)
        except SyntaxError as error:
            return [Finding(self.path, error.lineno or 0, "syntax", f"does not parse: {error.msg}")]
        self.inf = Inferencer(self.facts, tree, self.path, self.resolver)
        for _ in range(2):  # silent passes settle self.attr types that depend on each other
            self._visit_module(tree)
        self.report = True
        check_imports(self, tree)
        self._visit_module(tree)
        return sorted(self.findings)

    # ---- traversal -----------------------------------------------------------------------
    def _visit_module(self, tree: ast.Module) -> None:
        module_env: dict = {}
        for stmt in tree.body:
            if isinstance(stmt, ast.ClassDef) and self.inf.local.get(stmt.name) is not None:
                for method in self.inf.local[stmt.name].methods.values():
                    self._visit_function(method, module_env, stmt.name)
                for sub in stmt.body:
                    if not isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self._visit_stmt(sub, module_env, frozenset(VERSIONS), None)
                self._visit_inherited(stmt.name)
            else:
                self._visit_stmt(stmt, module_env, frozenset(VERSIONS), None)

    def _visit_inherited(self, cls: str) -> None:
        """The methods ``cls`` inherits from known bases, checked with ``self`` a ``cls``.

        Shared base-class code is thereby checked against each subclass's ``.ui``,
        parameter node wrapper and Logic; its names resolve in its own file, and its
        findings carry that file's path.
        """
        inf, path = self.inf, self.path
        try:
            for owner in inf.lineage(cls)[1:]:
                info = inf.classes[owner]
                self.inf, self.path, self.context = info.inf, info.path or path, cls
                for method in info.methods.values():
                    self._visit_function(method, {}, cls, owner)
        finally:
            self.inf, self.path, self.context = inf, path, None

    def _visit_function(self, func, outer_env: dict, cls: Optional[str], owner: Optional[str] = None) -> None:
        """Visit a function; for a method, ``cls`` is the type of ``self`` and ``owner`` the class defining it."""
        env = dict(outer_env)
        if cls is not None:
            env["__class__"] = T("owner", owner or cls)
        args = func.args.posonlyargs + func.args.args + func.args.kwonlyargs
        for i, arg in enumerate(args):
            if i == 0 and cls is not None and arg.arg == "self":
                info = self.inf.classes[cls]
                env["self"] = T("wrapper" if info.wrapper else "user", cls)
            else:
                env[arg.arg] = self.inf.annotation_type(arg.annotation)
        for default in func.args.defaults + [d for d in func.args.kw_defaults if d is not None]:
            self._check_expr(default, outer_env, frozenset(VERSIONS), cls)
        for stmt in func.body:
            self._visit_stmt(stmt, env, frozenset(VERSIONS), cls)

    def _visit_stmt(self, stmt: ast.stmt, env: dict, versions: frozenset, cls: Optional[str]) -> None:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._visit_function(stmt, env, None)
            return
        if isinstance(stmt, ast.ClassDef):
            return  # nested classes are not checked
        if isinstance(stmt, ast.If):
            self._check_expr(stmt.test, env, versions, cls)
            body_v, else_v = self._guard_versions(stmt.test, versions)
            for sub in stmt.body:
                self._visit_stmt(sub, env, body_v, cls)
            for sub in stmt.orelse:
                self._visit_stmt(sub, env, else_v, cls)
            return
        for _, value in ast.iter_fields(stmt):
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, ast.stmt):
                    self._visit_stmt(item, env, versions, cls)
                elif isinstance(item, ast.excepthandler):
                    for sub in item.body:
                        self._visit_stmt(sub, env, versions, cls)
                elif isinstance(item, ast.AST):
                    self._check_expr(item, env, versions, cls)
        self._assign(stmt, env, cls)

    def _guard_versions(self, test: ast.AST, versions: frozenset) -> tuple:
        negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
        inner = test.operand if negated else test
        if isinstance(inner, ast.Call) and (dotted(inner.func) or "").split(".")[-1] in GUARD_FUNCTIONS:
            body, other = V512_ONLY & versions, V510_ONLY & versions
            return (other, body) if negated else (body, other)
        return versions, versions

    def _assign(self, stmt: ast.stmt, env: dict, cls: Optional[str]) -> None:
        if isinstance(stmt, ast.AnnAssign):
            value_type = self.inf.annotation_type(stmt.annotation)
            if value_type is None and stmt.value is not None:
                value_type = self.inf.infer(stmt.value, env)
            targets = [stmt.target]
        elif isinstance(stmt, ast.Assign):
            value_type, targets = self.inf.infer(stmt.value, env), stmt.targets
        else:
            return
        for target in targets:
            if isinstance(target, ast.Name):
                env[target.id] = value_type
            elif (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                  and target.value.id == "self" and cls is not None and value_type is not None):
                self.inf.classes[cls].attr_types.setdefault(target.attr, value_type)

    # ---- rules -----------------------------------------------------------------------------
    def _check_expr(self, expr: ast.AST, env: dict, versions: frozenset, cls: Optional[str]) -> None:
        if not self.report:
            return
        for node in ast.walk(expr):
            if isinstance(node, ast.Attribute):
                self._check_attribute(node, env)
            elif isinstance(node, ast.Call):
                self._check_call(node, env, versions, cls)

    def _check_attribute(self, node: ast.Attribute, env: dict) -> None:
        q = self.inf.qualify(node)
        if q is not None:
            self._check_qualified(node, q)
        elif (self.ui_names is not None and isinstance(node.value, ast.Attribute) and node.value.attr == "ui"
              and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"
              and node.attr not in self.ui_names):
            inherited = f" (code inherited by {self.context})" if self.context else ""
            self.add(node, "ui-object", f"self.ui.{node.attr}: no widget with this objectName in the module's .ui"
                     + inherited)
        base = self.inf.infer(node.value, env)
        if base is None:
            return
        if base.kind in ("instance", "class") and node.attr[:1].isupper():
            self._check_member(node, base.name, node.attr)
        elif base.kind == "external":
            if node.attr not in EXTERNAL_CLASSES[base.name]:
                self.add(node, "api-missing", f"{base.name}.{node.attr}: not in the facts (README §c)")
            else:
                self.use(f"{base.name}.{node.attr}", "README.md §c (PyTorchUtilsLogic API)")
        elif base.kind == "wrapper":
            info = self.inf.classes[base.name]
            if node.attr not in info.fields and node.attr not in WRAPPER_API and not node.attr.startswith("_"):
                self.add(node, "wrapper-field", f"{base.name}.{node.attr}: not a parameter of the wrapper "
                         f"(fields: {', '.join(sorted(info.fields))})")
            elif node.attr in WRAPPER_API:
                self.use(f"parameterNodeWrapper.{node.attr}", "README.md §b (GUI binding); Slicer/Slicer: "
                         "Base/Python/slicer/parameterNodeWrapper/wrapper.py _processClass")

    def _check_qualified(self, node: ast.Attribute, q: str) -> None:
        parts = q.split(".")
        if parts[:2] == ["slicer", "util"] and len(parts) == 3:
            name = parts[2]
            if name not in self.facts.util_functions and name not in self.facts.util_classes:
                self.add(node, "util-missing", f"slicer.util.{name}: not in slicer_util_functions.json")
            elif name.startswith("_"):
                self.add(node, "util-private", f"slicer.util.{name}: private helper, may change without notice")
            else:
                where = "functions" if name in self.facts.util_functions else "classes"
                self.use(f"slicer.util.{name}", f"slicer_util_functions.json: {where}[name={name}]")
        elif len(parts) == 4 and ".".join(parts[:2]) in ("slicer.util", "slicer.ScriptedLoadableModule"):
            self._check_class_member(node, ".".join(parts[:2]), parts[2], parts[3])
        elif q == "slicer.mrmlScene":
            self.use("slicer.mrmlScene", "mrml_classes.json: classes.vtkMRMLScene")
        elif len(parts) == 2 and parts[0] == "slicer" and parts[1].startswith("vtk"):
            if not self.facts.is_mrml_class(parts[1]):
                self.add(node, "mrml-class", f"slicer.{parts[1]}: not a class in mrml_classes.json")
            else:
                self.use(f"slicer.{parts[1]}", f"mrml_classes.json: classes.{parts[1]}")
        elif len(parts) == 2 and parts[0] == "vtk" and parts[1].startswith("vtk"):
            if self.facts.vtk_class(parts[1]) is None:
                self.add(node, "vtk-class", f"vtk.{parts[1]}: no such VTK class")
        elif parts[:2] == ["slicer", "modules"] and len(parts) == 3:
            if parts[2] not in KNOWN_MODULES | self.own_modules:
                self.add(node, "slicer-module", f"slicer.modules.{parts[2]}: unknown module name")

    def _check_class_member(self, node: ast.AST, module: str, cls: str, method: str) -> None:
        """``slicer.util.Class.method`` / ``slicer.ScriptedLoadableModule.Class.method`` references."""
        if module == "slicer.util":
            entry, source = self.facts.util_classes.get(cls), "slicer_util_functions.json: classes"
        else:
            entry, source = self.facts.module_class(module, cls), f"slicer_python_api.json: modules[{module}].classes"
        if entry is None or not any(m["name"] == method for m in entry["methods"]):
            self.add(node, "api-missing", f"{module}.{cls}.{method}: not in the API facts")
        else:
            self.use(f"{cls}.{method}", f"{source}[name={cls}].methods[{method}]")

    def _check_member(self, node: ast.AST, cls: str, attr: str) -> None:
        info = self.facts.member(cls, attr)
        if info is None:
            self.add(node, "mrml-method" if self.facts.is_mrml_class(cls) else "vtk-method",
                     f"{cls}.{attr}: not a method or constant of {cls} or its superclasses "
                     "(mrml_classes.json, then VTK)")
        elif info["kind"] == "method" and not info["entry"].get("wrapped", True):
            self.add(node, "mrml-unwrapped", f"{cls}.{attr}: declared outside Python wrapping ({info['owner']})")
        elif info["kind"] == "method" and info["entry"].get("deprecated"):
            self.add(node, "mrml-deprecated", f"{cls}.{attr}: deprecated in {info['owner']}")
        elif info["kind"] == "vtk":
            self.use(f"{cls}.{attr}", f"VTK Python class vtk.{info['owner']} (mrml_classes.json ends at {cls})"
                     if self.facts.is_mrml_class(cls) else f"VTK Python class vtk.{info['owner']}")
        else:
            section = "methods" if info["kind"] == "method" else "enums" if info["kind"] == "enum" else "nested_types"
            self.use(f"{cls}.{attr}", f"mrml_classes.json: classes.{info['owner']}.{section}.{attr}")

    def _check_call(self, call: ast.Call, env: dict, versions: frozenset, cls: Optional[str]) -> None:
        keywords = [k.arg for k in call.keywords if k.arg is not None]
        starred = any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords)
        q = self.inf.qualify(call.func)
        if q is not None:
            self._check_qualified_call(call, q, keywords, starred, versions)
        if isinstance(call.func, ast.Attribute):
            self._check_method_call(call, env, keywords, starred, cls)
        for kw in call.keywords:
            if kw.arg == "nodeClassName":
                self._check_class_literal(kw.value)
        name = (dotted(call.func) or "").split(".")[-1]
        if (name in NODE_FACTORIES or name in MRML_CLASS_ARGUMENTS) and call.args:
            self._check_class_literal(call.args[0])

    def _check_class_literal(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if not self.facts.is_mrml_class(node.value):
                self.add(node, "mrml-class", f"{node.value!r}: not a class in mrml_classes.json")
            else:
                self.use(f'"{node.value}" (node class)', f"mrml_classes.json: classes.{node.value}")

    def _check_qualified_call(self, call, q: str, keywords, starred, versions) -> None:
        parts = q.split(".")
        if parts[:2] == ["slicer", "util"] and len(parts) == 3 and parts[2] in self.facts.util_functions:
            for version in sorted(versions):
                params = self.facts.util_params(parts[2], version)
                if params is None:
                    self.add(call, "util-version", f"slicer.util.{parts[2]}: absent in Slicer {version}")
                elif not starred:
                    for problem in params.check(len(call.args), keywords):
                        self.add(call, "util-args", f"slicer.util.{parts[2]} {problem} in Slicer {version}")
        elif parts[:2] == ["slicer", "util"] and len(parts) == 3 and parts[2] in self.facts.util_classes:
            self._check_params(call, self._method_params(self.facts.util_classes[parts[2]], "__init__"),
                               f"slicer.util.{parts[2]}()", keywords, starred)
        elif ".".join(parts[:2]) in PYTHON_API_MODULES and len(parts) == 3:
            module = ".".join(parts[:2])
            entry = self.facts.module_function(module, parts[2])
            if entry is None:
                self.add(call, "api-missing", f"{q}: not in slicer_python_api.json")
                return
            self.use(q, f"slicer_python_api.json: modules[{module}].functions[name={parts[2]}]")
            if module == "slicer.packaging" and "v5.10.0" in versions:
                self.add(call, "util-version", f"{q}: slicer.packaging exists only from Slicer 5.12; "
                         "call it under `if hasSlicerPackaging():` with a 5.10 fallback")
            self._check_params(call, params_from_python_signature(entry["signature"]), q, keywords, starred)

    def _check_params(self, call, params: Optional[Params], what: str, keywords, starred) -> None:
        if params is None or starred:
            return
        for problem in params.check(len(call.args), keywords):
            self.add(call, "call-args", f"{what} {problem}")

    @staticmethod
    def _method_params(class_entry: dict, method: str) -> Optional[Params]:
        for m in class_entry["methods"]:
            if m["name"] == method:
                return params_from_python_signature(m["signature"])
        return None

    def _check_method_call(self, call: ast.Call, env, keywords, starred, cls) -> None:
        func = call.func
        base = self.inf.infer(func.value, env)
        if base is not None and base.kind in ("instance", "class") and func.attr[:1].isupper():
            if keywords:
                self.add(call, "vtk-kwargs", f"{base.name}.{func.attr}: wrapped C++ methods take no keyword arguments")
            elif not starred:
                problem = self.facts.arity_problems(base.name, func.attr, len(call.args))
                if problem:
                    self.add(call, "mrml-args", f"{base.name}.{func.attr} {problem}")
        elif base is not None and base.kind in ("user", "super"):
            self._check_user_method(call, base.name, func.attr, keywords, starred, base.kind == "super")
        elif base is not None and base.kind == "external" and EXTERNAL_CLASSES[base.name].get(func.attr):
            params = params_from_python_signature(EXTERNAL_CLASSES[base.name][func.attr])
            self._check_params(call, params, f"{base.name}.{func.attr}", keywords, starred)

    def _check_user_method(self, call, cls: str, name: str, keywords, starred, viaSuper: bool = False) -> None:
        """``obj.name(...)`` on an instance of ``cls`` (``viaSuper``: ``super().name(...)`` in a method of ``cls``)."""
        if not viaSuper and self.inf.is_assigned(cls, name):
            return  # a callable stored on the instance (callback), not a method
        what = f"super() in {cls}: {name}" if viaSuper else f"{cls}.{name}"
        _owner, method = self.inf.method_owner(cls, name, skip_first=viaSuper)
        if method is not None:
            self._check_params(call, _params_of_def(method), what, keywords, starred)
            return
        params, allBasesKnown = self._inherited(cls, name)
        if params is not None:
            self._check_params(call, params, what, keywords, starred)
        elif allBasesKnown and not hasattr(object, name):  # every class has __init__, __eq__...
            self.add(call, "self-method", f"{what}: not defined in the class nor its bases (the extension's or Slicer's)")

    def _inherited(self, cls: str, name: str) -> tuple:
        """(Params of a method inherited from a Slicer base or None, whether every such base is known)."""
        all_known = True
        for short in self.inf.other_bases(cls):
            entry = (self.facts.module_class("slicer.ScriptedLoadableModule", short) if short in SLICER_BASES
                     else self.facts.util_classes.get(short) if short == "VTKObservationMixin" else None)
            if entry is None:
                all_known = False
                continue
            params = self._method_params(entry, name)
            if params is not None:
                source = ("slicer_python_api.json: modules[slicer.ScriptedLoadableModule].classes" if short in SLICER_BASES
                          else "slicer_util_functions.json: classes")
                self.use(f"{short}.{name}", f"{source}[name={short}].methods[{name}]")
                return params, True
            if short == "ScriptedLoadableModuleTest" and hasattr(unittest.TestCase, name):
                return Params((), 99, 0, True, True), True
        return None, all_known


def _params_of_def(func) -> Params:
    args = func.args
    static = any((dotted(d) or "") == "staticmethod" for d in func.decorator_list)
    positional = [a.arg for a in args.posonlyargs + args.args][0 if static else 1:]  # drop self/cls
    required = len(positional) - min(len(args.defaults), len(positional))
    names = tuple(positional + [a.arg for a in args.kwonlyargs])
    return Params(names, len(positional), required, args.vararg is not None, args.kwarg is not None)
