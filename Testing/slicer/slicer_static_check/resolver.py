"""Finding the extension's own Python files behind ``from X.Y import Name``.

In Slicer every scripted module and the packages beside it sit in one
``qt-scripted-modules`` folder on ``sys.path``: the module files, their
``<Module>Lib`` packages and the shared ``AnatomyINRSlicerLib``. The checker
mirrors that with import roots (the ``AnatomyINR`` folder and each module
folder), so a class imported from a shared file — a base class above all — is
read from its source and its methods are known to the file that uses it.
Imports that resolve to no file under the roots (Slicer, VTK, Qt, the library)
are left to the facts as before.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Optional, Sequence


class ModuleResolver:
    """Dotted module names → parsed files under the import roots.

    Args:
        roots: Folders searched in order (``<root>/a/b.py``, then ``<root>/a/b/__init__.py``).
        display_root: Findings in resolved files show their path relative to this
            folder (the extension root); absolute when None or outside it.
    """

    def __init__(self, roots: Sequence[Path], display_root: Optional[Path] = None) -> None:
        self.roots = [Path(r) for r in roots]
        self.display_root = Path(display_root) if display_root is not None else None

    def find(self, module: str) -> Optional[Path]:
        """The file of ``module`` (a ``.py`` or a package's ``__init__.py``), or None."""
        parts = module.split(".")
        for root in self.roots:
            for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
                if candidate.is_file():
                    return candidate
        return None

    def display(self, path: Path) -> str:
        if self.display_root is not None:
            try:
                return path.resolve().relative_to(self.display_root.resolve()).as_posix()
            except ValueError:
                pass
        return str(path)

    def parse(self, path: Path) -> Optional[ast.Module]:
        """The file's syntax tree, or None when it does not parse (its own check reports that)."""
        try:
            return ast.parse(path.read_text(), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, OSError):
            return None


def module_import_roots(modules_root: Path) -> list[Path]:
    """The roots Slicer puts on ``sys.path`` for an extension's modules folder.

    ``modules_root`` itself (shared packages) and every module folder (its
    ``<Module>.py`` and ``<Module>Lib``), as the build copies them all into
    ``qt-scripted-modules``.
    """
    modules_root = Path(modules_root)
    folders = sorted(p for p in modules_root.iterdir() if p.is_dir() and (p / f"{p.name}.py").is_file())
    return [modules_root, *folders]


def default_import_roots(path: Optional[str], modules_dir: str) -> list[Path]:
    """Import roots for one checked file: those of the nearest ancestor folder named ``modules_dir``."""
    if not path:
        return []
    file = Path(path)
    if not file.is_file():
        return []
    for ancestor in file.resolve().parents:
        if ancestor.name == modules_dir:
            return module_import_roots(ancestor)
    return [file.resolve().parent]
