"""Static checks that stand in for running Slicer (it cannot run on the development machines).

Entry points:

- :func:`check_extension`: every rule over a whole extension tree;
- :func:`check_python_source`: the Python rules on one source text (used to
  prove that planted mistakes are caught);
- ``python -m slicer_static_check [ROOT] [--write-package-lists]`` from
  ``Testing/slicer``: print findings (exit 1 if any), or refresh the explicit
  file lists of the ``ctkMacroCompilePythonScript`` packages.

The facts come from ``Testing/Data/slicer_api`` (override with
``SLICER_API_DIR``); what the type inference can and cannot see is described
in :mod:`slicer_static_check.typeinfer`; the rules are listed in the module
docstrings of ``python_checks``, ``ui_checks``, ``cmake_checks`` and
``layout_checks``.
"""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional

from .cmake_checks import check_python_package, check_scripted_module, render_package_lists
from .facts import SlicerFacts
from .findings import Finding
from .layout_checks import check_module_structure, check_modules_cmake, check_top_level, module_folders
from .python_checks import PythonFileChecker
from .resolver import ModuleResolver, default_import_roots, module_import_roots
from .ui_checks import check_ui, ui_object_names

MODULES_DIR = "AnatomyINR"
MODULE_PREFIX = "AnatomyINR"
PYTHON_PACKAGES = ("AnatomyINRLib", "AnatomyINR/AnatomyINRSlicerLib")

__all__ = ["Finding", "SlicerFacts", "api_inventory", "check_extension", "check_python_source", "wrapper_fields",
           "write_package_lists"]

_FACTS: Optional[SlicerFacts] = None


def default_facts() -> SlicerFacts:
    """The API facts, loaded once."""
    global _FACTS
    if _FACTS is None:
        _FACTS = SlicerFacts()
    return _FACTS


def check_python_source(source: str, path: str = "<source>", ui_names: Optional[set] = None,
                        facts: Optional[SlicerFacts] = None, own_modules: tuple = (),
                        import_roots: Optional[list] = None) -> list[Finding]:
    """The Python rules applied to one source text.

    Imports of the extension's own files are followed from ``import_roots``; by
    default those of the ``AnatomyINR`` folder above ``path`` when ``path`` is a
    real file (so ``source`` may be an edited copy of it), else none.
    """
    roots = default_import_roots(path, MODULES_DIR) if import_roots is None else import_roots
    return PythonFileChecker(facts or default_facts(), path, source, ui_names, own_modules,
                             ModuleResolver(roots) if roots else None).run()


def wrapper_fields(module_file: Path) -> Optional[dict]:
    """``{field: annotation AST}`` of the @parameterNodeWrapper class in a module file."""
    tree = ast.parse(module_file.read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any("parameterNodeWrapper" in ast.unparse(d) for d in node.decorator_list):
            return {s.target.id: s.annotation for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
    return None


def _ui_names_or_none(ui_file: Optional[Path]) -> Optional[set]:
    """objectNames of a .ui, or None when absent or malformed (check_ui reports that)."""
    if ui_file is None or not ui_file.is_file():
        return None
    try:
        return ui_object_names(ui_file)
    except ET.ParseError:
        return None


def check_extension(root: Path, facts: Optional[SlicerFacts] = None) -> list[Finding]:
    """Every rule over the extension rooted at ``root``."""
    root = Path(root)
    facts = facts or default_facts()
    modules_root = root / MODULES_DIR
    modules = module_folders(modules_root)
    own = tuple(m.name.lower() for m in modules)
    findings = check_top_level(root) + check_modules_cmake(modules_root, f"{MODULES_DIR}/CMakeLists.txt")
    module_by_file = {m / f"{m.name}.py": m for m in modules}
    resolver = ModuleResolver(module_import_roots(modules_root), root)
    for py in sorted(modules_root.rglob("*.py")):
        rel = py.relative_to(root).as_posix()
        module = module_by_file.get(py)
        ui_file = module / "Resources" / "UI" / f"{module.name}.ui" if module else None
        ui_names = _ui_names_or_none(ui_file)
        findings += PythonFileChecker(facts, rel, py.read_text(), ui_names, own, resolver).run()
    resource_names: dict = {}
    for module in modules:
        rel = module.relative_to(root).as_posix()
        findings += check_module_structure(module, MODULE_PREFIX, f"{rel}/{module.name}.py", resource_names)
        if (module / "CMakeLists.txt").is_file():
            findings += check_scripted_module(module, f"{rel}/CMakeLists.txt")
        else:
            findings.append(Finding(f"{rel}/CMakeLists.txt", 0, "cmake-missing", "module has no CMakeLists.txt"))
        ui_file = module / "Resources" / "UI" / f"{module.name}.ui"
        if ui_file.is_file():
            findings += check_ui(ui_file, facts, ui_file.relative_to(root).as_posix(),
                                 wrapper_fields(module / f"{module.name}.py"))
    for package in PYTHON_PACKAGES:
        folder = root / package
        findings += check_python_package(folder, f"{package}/CMakeLists.txt")
    return sorted(set(findings))


def write_package_lists(root: Path, tracked_only: bool = False) -> list[str]:
    """Refresh the generated file lists of the package CMakeLists; returns changed files."""
    changed = []
    for package in PYTHON_PACKAGES:
        folder = Path(root) / package
        text = render_package_lists(folder, tracked_only)
        if text is None:
            raise ValueError(f"{package}/CMakeLists.txt has no '# BEGIN GENERATED SCRIPTS/RESOURCES' blocks")
        if text != (folder / "CMakeLists.txt").read_text():
            (folder / "CMakeLists.txt").write_text(text)
            changed.append(f"{package}/CMakeLists.txt")
    return changed


def api_inventory(root: Path, files: list[Path], facts: Optional[SlicerFacts] = None) -> list[tuple]:
    """Every Slicer/MRML/VTK API the given files use, with where it is documented.

    Returns sorted ``(api, source)`` pairs; ``source`` names the JSON file and
    key in Testing/Data/slicer_api (or the VTK class) the check relied on.
    """
    facts = facts or default_facts()
    uses: set = set()
    for path in files:
        roots = default_import_roots(str(path), MODULES_DIR)
        checker = PythonFileChecker(facts, str(path), Path(path).read_text(),
                                    resolver=ModuleResolver(roots, root) if roots else None)
        checker.run()
        uses |= checker.uses
    return sorted(uses)
