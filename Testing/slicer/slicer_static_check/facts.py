"""Machine-readable Slicer API facts (``Testing/Data/slicer_api``) plus VTK introspection.

Sources, all extracted from Slicer's public source (nothing of Slicer is run):

- ``slicer_util_functions.json``: every ``slicer.util`` function with its
  signature at main and at v5.8.1 / v5.10.0 / v5.12.3 (``compat``);
- ``mrml_classes.json``: public methods, enums and superclass of 55 MRML,
  segmentation and logic classes;
- ``slicer_python_api.json``: ``slicer.cli``, ``slicer.packaging``,
  ``slicer.ScriptedLoadableModule``, ``slicer.testing``, ``SampleData`` and
  the exports of ``slicer.parameterNodeWrapper``.

Classes that leave the JSON (``vtkImageData``, ``vtkPoints``...) and the
hand-listed ``vtkObject`` subset are completed with the real VTK Python
classes (``import vtk`` works outside Slicer).
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import vtk

def _default_api_dir() -> Path:
    """``$SLICER_API_DIR`` (to check against newer facts), else the vendored ``Testing/Data/slicer_api``."""
    if os.environ.get("SLICER_API_DIR"):
        return Path(os.environ["SLICER_API_DIR"])
    return Path(__file__).resolve().parents[2] / "Data" / "slicer_api"


DEFAULT_API_DIR = _default_api_dir()
VERSIONS = ("v5.10.0", "v5.12.3")  # the releases we support (Slicer >= 5.10)


@dataclass(frozen=True)
class Params:
    """A Python signature reduced to what call checks need."""

    names: tuple  # positional-or-keyword and keyword-only names, in order (self dropped)
    positional: int  # how many may be given positionally
    required: int  # how many positional ones have no default
    var_positional: bool
    var_keyword: bool

    def check(self, n_positional: int, keywords: list[str]) -> list[str]:
        """Problems of a call with this many positional args and these keyword names."""
        problems = []
        if not self.var_positional and n_positional > self.positional:
            problems.append(f"takes at most {self.positional} positional argument(s), got {n_positional}")
        for kw in keywords:
            if kw not in self.names and not self.var_keyword:
                problems.append(f"has no parameter {kw!r}")
        return problems


def params_from_python_signature(signature: str) -> Params:
    """Parse ``"name(a, b=1, *c, d=2, **e)"`` into :class:`Params`."""
    tree = ast.parse(f"def {signature.strip()}: pass")
    args = tree.body[0].args
    positional = [a.arg for a in args.posonlyargs + args.args if a.arg not in ("self", "cls")]
    n_defaults = len(args.defaults)
    required = len(positional) - min(n_defaults, len(positional))
    names = tuple(positional + [a.arg for a in args.kwonlyargs])
    return Params(names, len(positional), required, args.vararg is not None, args.kwarg is not None)


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "(<[{":
            depth += 1
        elif ch in ")>]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def cpp_arity(signature: str, method: str) -> Optional[tuple[int, int]]:
    """(min, max) argument count of one C++ declaration, or None if unparseable."""
    start = signature.find(method + "(")
    if start < 0:
        return None
    depth, i = 0, start + len(method)
    for j in range(i, len(signature)):
        depth += signature[j] == "("
        depth -= signature[j] == ")"
        if depth == 0:
            inner = signature[i + 1:j]
            break
    else:
        return None
    args = [a for a in _split_top_level(inner) if a != "void"]
    return len([a for a in args if "=" not in a]), len(args)


def cpp_return_class(signature: str, method: str) -> Optional[str]:
    """Class name a C++ declaration returns (``vtkX*``), or None."""
    macro = re.match(r"vtkGetObjectMacro\(\s*\w+\s*,\s*(\w+)\s*\)", signature)
    if macro:
        return macro.group(1)
    head = signature.split(method + "(", 1)[0]
    tokens = re.findall(r"[A-Za-z_]\w*", head)
    tokens = [t for t in tokens if t not in ("virtual", "static", "const", "inline", "std", "VTK_NEWINSTANCE")]
    return tokens[-1] if tokens and tokens[-1].startswith("vtk") else None


class SlicerFacts:
    """Lookups over the JSON facts and VTK.

    Args:
        api_dir: Folder holding the three JSON files.
    """

    def __init__(self, api_dir: Path = DEFAULT_API_DIR) -> None:
        api_dir = Path(api_dir)
        util = json.loads((api_dir / "slicer_util_functions.json").read_text())
        self.util_functions = {f["name"]: f for f in util["functions"]}
        self.util_classes = {c["name"]: c for c in util["classes"]}
        self.mrml = json.loads((api_dir / "mrml_classes.json").read_text())["classes"]
        self.python_api = json.loads((api_dir / "slicer_python_api.json").read_text())["modules"]

    # ---- slicer.util -------------------------------------------------------------
    def util_params(self, name: str, version: str) -> Optional[Params]:
        """Signature of ``slicer.util.name`` in a release; None if absent there."""
        entry = self.util_functions[name]
        compat = entry.get("compat", {}).get(version, "same")
        if compat is None:
            return None
        return params_from_python_signature(entry["signature"] if compat == "same" else compat)

    # ---- other slicer Python modules ----------------------------------------------
    def module_function(self, module: str, name: str) -> Optional[dict]:
        """Entry of a function of ``slicer.cli``/``slicer.packaging``/... or None."""
        for f in self.python_api.get(module, {}).get("functions", []):
            if f["name"] == name:
                return f
        return None

    def module_class(self, module: str, name: str) -> Optional[dict]:
        """Entry of a class of one of the python-API modules, or None."""
        for c in self.python_api.get(module, {}).get("classes", []):
            if c["name"] == name:
                return c
        return None

    def parameter_node_wrapper_exports(self) -> set[str]:
        """Names importable from ``slicer.parameterNodeWrapper`` (union of ``__all__``)."""
        files = self.python_api["slicer.parameterNodeWrapper"]["files"]
        return {name for f in files.values() for name in (f.get("__all__") or [])}

    # ---- MRML / VTK classes ---------------------------------------------------------
    def is_mrml_class(self, name: str) -> bool:
        """True for classes described in mrml_classes.json."""
        return name in self.mrml

    @staticmethod
    def vtk_class(name: str):
        """The VTK Python class ``vtk.<name>``, or None."""
        return getattr(vtk, name, None) if name.startswith("vtk") else None

    def is_known_class(self, name: str) -> bool:
        """An MRML class from the JSON or a VTK Python class."""
        return self.is_mrml_class(name) or self.vtk_class(name) is not None

    def chain(self, name: str) -> list[str]:
        """``name`` and its superclasses found in the JSON, most derived first."""
        out = []
        while name in self.mrml and name not in out:
            out.append(name)
            name = self.mrml[name]["superclass"]
        return out

    def _vtk_base(self, name: str):
        """First ancestor outside the JSON as a VTK class (vtkObject for hand-listed ones)."""
        chain = self.chain(name)
        if not chain:
            return self.vtk_class(name)
        last = self.mrml[chain[-1]]
        if last.get("external"):
            return vtk.vtkObject
        return self.vtk_class(last["superclass"] or "") or vtk.vtkObject

    def member(self, cls: str, attr: str) -> Optional[dict]:
        """Describe ``cls.attr``: ``{"kind": "method"|"enum"|"type"|"vtk", "owner", "entry"}``."""
        for owner in self.chain(cls):
            entry = self.mrml[owner]
            if attr in entry["methods"]:
                return {"kind": "method", "owner": owner, "entry": entry["methods"][attr]}
            if any(attr in values for values in entry["enums"].values()) or attr in entry["enums"]:
                return {"kind": "enum", "owner": owner, "entry": None}
            if attr in entry.get("nested_types", []):
                return {"kind": "type", "owner": owner, "entry": None}
        base = self._vtk_base(cls)
        if base is not None and hasattr(base, attr):
            return {"kind": "vtk", "owner": base.__name__, "entry": None}
        return None

    def return_class(self, cls: str, method: str) -> Optional[str]:
        """Class returned by ``cls.method(...)`` when every declaration agrees."""
        info = self.member(cls, method)
        if info is None:
            return None
        if info["kind"] == "method":
            found = {cpp_return_class(s, method) for s in info["entry"]["signatures"]}
        elif info["kind"] == "vtk":
            doc = getattr(getattr(vtk, info["owner"]), method).__doc__ or ""
            found = set(re.findall(rf"^{method}\(.*?\)\s*->\s*(\w+)", doc, flags=re.M)) or {None}
        else:
            return None
        if len(found) != 1:
            return None
        name = found.pop()
        return name if name and self.is_known_class(name) else None

    def arity_problems(self, cls: str, method: str, n_args: int) -> Optional[str]:
        """Message if no declaration of an MRML method accepts ``n_args`` arguments."""
        info = self.member(cls, method)
        if info is None or info["kind"] != "method" or info["entry"].get("from_macro"):
            return None
        arities = [cpp_arity(s, method) for s in info["entry"]["signatures"]]
        if not arities or any(a is None for a in arities):
            return None
        if any(lo <= n_args <= hi for lo, hi in arities):
            return None
        accepted = sorted({f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in arities})
        return f"takes {' or '.join(accepted)} argument(s), got {n_args} ({info['owner']})"

    def is_subclass(self, cls: str, base: str) -> bool:
        """True if ``base`` is ``cls`` or one of its JSON superclasses."""
        return base in self.chain(cls)
