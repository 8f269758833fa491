"""AnatomyINRLib must import and run without Slicer: no slicer/qt/ctk imports anywhere in it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "AnatomyINRLib"
FORBIDDEN = {"slicer", "qt", "ctk", "vtkSlicer", "PythonQt", "mrml"}


def _imported_roots(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0], node.lineno
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            yield str(node.args[0].value).split(".")[0], node.lineno


def test_no_source_file_imports_slicer_qt_or_ctk():
    files = sorted(LIB.rglob("*.py"))
    assert len(files) > 20
    bad = [f"{f.relative_to(LIB.parent)}:{line} imports {root}"
           for f in files for root, line in _imported_roots(f) if root in FORBIDDEN]
    assert not bad, "\n".join(bad)


def test_the_checker_catches_a_planted_import(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("import os\nfrom slicer.util import arrayFromVolume\nimport qt\n")
    roots = {root for root, _ in _imported_roots(planted)}
    assert {"slicer", "qt"} <= roots


def test_importing_every_module_loads_no_slicer_module():
    code = (
        "import importlib, pkgutil, sys, AnatomyINRLib\n"
        "for m in pkgutil.walk_packages(AnatomyINRLib.__path__, 'AnatomyINRLib.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('slicer', 'qt', 'ctk')]\n"
        "print(','.join(bad))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        pytest.fail(res.stderr)
    assert res.stdout.strip() == ""
