"""The declared requirements are exactly what the library imports (AST scan of AnatomyINRLib).

- every third-party module imported unconditionally is a ``[project] dependencies`` entry;
- every such entry is imported somewhere (no dead runtime requirement);
- optional imports (inside ``try: ... except ImportError``, or in a file that guards
  the same package) belong to a library extra (``plot``, ``validate``).
"""

import ast
import re
import sys
from pathlib import Path

from AnatomyINRLib.cli.dependencies import DISTRIBUTION_OF_MODULE

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "AnatomyINRLib"
LIBRARY_EXTRAS = ("plot", "validate")  # extras of the library itself ("test", "bench" are not)


def _name(requirement: str) -> str:
    return re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1).lower().replace("_", "-")


def _pyproject() -> tuple[set, dict]:
    text = (REPO / "pyproject.toml").read_text()
    runtime = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    section = re.search(r"^\[project\.optional-dependencies\]\n(.*?)(?=^\[)", text, re.S | re.M).group(1)
    extras = {key: {_name(r) for r in re.findall(r'"([^"]+)"', value)}
              for key, value in re.findall(r"^(\w+) = \[(.*?)\]", section, re.M)}
    return {_name(r) for r in re.findall(r'"([^"]+)"', runtime)}, extras


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = [] if handler.type is None else [ast.unparse(t) for t in getattr(handler.type, "elts", [handler.type])]
    return any(n in ("ImportError", "ModuleNotFoundError") for n in names)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(distribution, guarded) for each third-party import of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded_nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            guarded_nodes |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module]
        else:
            continue
        for module in modules:
            top = module.split(".", 1)[0]
            if top in sys.stdlib_module_names or top == "AnatomyINRLib":
                continue
            found.append((DISTRIBUTION_OF_MODULE.get(top, top).lower(), id(node) in guarded_nodes))
    # A package guarded anywhere in a file is optional in the whole file (helpers called after the guard).
    optional = {dist for dist, guarded in found if guarded}
    return [(dist, guarded or dist in optional) for dist, guarded in found]


def _scan() -> tuple[set, set]:
    required, optional = set(), set()
    for path in sorted(LIBRARY.rglob("*.py")):
        for dist, guarded in _imports(path):
            (optional if guarded else required).add(dist)
    return required, optional


def test_every_unconditional_import_is_a_runtime_requirement():
    runtime, _ = _pyproject()
    required, _ = _scan()
    assert sorted(required - runtime) == []


def test_every_runtime_requirement_is_imported_by_the_library():
    runtime, _ = _pyproject()
    required, _ = _scan()
    assert sorted(runtime - required) == []


def test_optional_imports_belong_to_a_library_extra():
    runtime, extras = _pyproject()
    _, optional = _scan()
    offered = set().union(*(extras[name] for name in LIBRARY_EXTRAS))
    assert sorted(optional - runtime - offered) == []
    assert sorted(offered - optional) == []  # and every library extra is used
