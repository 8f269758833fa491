"""Which requirement an ImportError is about, as the one line the CLI prints (exit 5).

Standard library only: this must work when numpy or torch themselves are the
missing package, before anything else of the library can be imported.
"""

from __future__ import annotations

from typing import Optional

# Import name -> pip distribution name, where they differ (for the install hint).
DISTRIBUTION_OF_MODULE = {"skimage": "scikit-image", "vtkmodules": "vtk", "mpl_toolkits": "matplotlib"}
_NOT_A_PACKAGE = ("AnatomyINRLib", "importlib", "__main__", "runpy")


def missing_package(exc: ImportError) -> Optional[str]:
    """Top-level name of the third-party package whose import failed, or None.

    ``ModuleNotFoundError`` names it (``exc.name``); a package that is present
    but broken (its own ``__init__`` raised ImportError) is found as the first
    traceback frame that runs outside this library and the import machinery.
    None when the failing module is part of AnatomyINRLib itself (a bug, not a
    missing requirement).
    """
    names = [exc.name] if exc.name else []
    tb = exc.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_globals.get("__name__") or "")
        tb = tb.tb_next
    for name in names:
        top = name.split(".", 1)[0]
        if top and top not in _NOT_A_PACKAGE:
            return top
    return None


def missing_package_message(exc: ImportError) -> Optional[str]:
    """One line naming the package and what to install; None if ``exc`` is not about a requirement."""
    package = missing_package(exc)
    if package is None:
        return None
    reason = " ".join(str(exc).split())[:200]  # one line, however long the original
    return (f"Python package {package!r} is missing or cannot be imported ({reason}); "
            f"install the requirements (pip install {DISTRIBUTION_OF_MODULE.get(package, package)})")
