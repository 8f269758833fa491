"""Shared set-up of the per-module static tests: a module's files, its findings, a planted mistake.

Each ``test_slicer_<module>_static.py`` checks that the module's files are clean and
that mistakes planted in them add a finding of the expected rule; this holds what
those tests share.
"""

from __future__ import annotations

from pathlib import Path

from slicer_static_check import check_python_source, default_facts, wrapper_fields
from slicer_static_check.ui_checks import check_ui, ui_object_names

REPO = Path(__file__).resolve().parents[2]
MRML_CONVERT = REPO / "AnatomyINR/AnatomyINRSlicerLib/mrml_convert.py"


class ModuleFiles:
    """The files of module ``name`` (``AnatomyINR/<name>``) as the static checker sees them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.folder = REPO / "AnatomyINR" / name
        self.moduleFile = self.folder / f"{name}.py"
        self.uiFile = self.folder / "Resources" / "UI" / f"{name}.ui"
        self.computeFile = self.folder / f"{name}Lib" / "compute.py"

    def findings(self, path: Path, source: str) -> set:
        """Rules of the findings in ``source`` checked as ``path`` (the module file against its ``.ui``)."""
        names = ui_object_names(self.uiFile) if path == self.moduleFile else None
        return {f.rule for f in check_python_source(source, str(path), ui_names=names,
                                                    own_modules=(self.name.lower(),))}

    def uiFindings(self, uiFile: Path = None) -> list:
        """Findings of the ``.ui`` (or a planted copy) against the module's parameter node fields."""
        uiFile = uiFile or self.uiFile
        return check_ui(uiFile, default_facts(), uiFile.name, wrapper_fields(self.moduleFile))

    def assertMistakeCaught(self, path: Path, old: str, new: str, rule: str) -> None:
        """``old`` is in ``path`` and clean; replacing it by ``new`` adds a ``rule`` finding."""
        source = path.read_text()
        assert old in source, f"{old!r} no longer in {path.name}: update this test"
        assert rule not in self.findings(path, source)
        assert rule in self.findings(path, source.replace(old, new, 1))
