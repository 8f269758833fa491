"""Dependencies that never break Slicer: torch checked from metadata, pip pinned by constraints.

Pure helpers run as they are; ``ensureDependencies`` runs against the fake Slicer
(its ``pip_install`` records what it was asked, and the fake PyTorchUtils records
install requests).
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
from pathlib import Path

import pytest

from AnatomyINRSlicerLib import dependencies

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("installed,needed", [("2.0.1", True), ("1.13.0+cpu", True), ("2.1.0", False),
                                              ("2.13.0+cu126", False), (None, False)])
def test_torch_upgrade_needed_reads_the_version_string(installed, needed):
    assert dependencies.torchUpgradeNeeded(installed) is needed


def test_torch_version_comes_from_metadata_without_importing_torch():
    torchLoaded = "torch" in sys.modules
    assert dependencies.installedVersion("torch") == importlib.metadata.version("torch")
    assert ("torch" in sys.modules) == torchLoaded and dependencies.installedVersion("surely-not-installed") is None


def test_constraints_pin_every_installed_bundled_package():
    lines = dependencies.constraintLines()
    expected = [f"{n}=={importlib.metadata.version(n)}" for n in ("numpy", "scipy", "Pillow", "SimpleITK", "vtk")
                if dependencies.installedVersion(n) is not None]
    assert lines == expected and any(line.startswith("numpy==") for line in lines)


def test_legacy_pip_string_passes_the_constraints_file():
    assert dependencies.legacyPipArguments(["psutil>=5.9"], "/tmp/x/constraints.txt") == (
        "-c /tmp/x/constraints.txt psutil>=5.9")
    withSpace = dependencies.legacyPipArguments(["psutil>=5.9"], "C:/Users/A B/constraints.txt").split(" ")
    assert withSpace[0] == "psutil>=5.9" and withSpace[1:] == dependencies.constraintLines()


def _importedNames(nodes) -> set:
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _guardsImportError(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(k, ast.Name) and k.id in ("ImportError", "ModuleNotFoundError") for k in kinds)


def _libraryImports() -> set:
    """``(all, optional)`` top-level names the library imports; optional: inside ``try: ... except ImportError``."""
    required, optional = set(), set()
    for path in (REPO / "AnatomyINRLib").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        required |= _importedNames(ast.walk(tree))
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(_guardsImportError(h) for h in node.handlers):
                optional |= _importedNames(n for statement in node.body for n in ast.walk(statement))
    return required, optional


def test_requirements_are_exactly_what_the_library_imports_beyond_slicer():
    distributions = importlib.metadata.packages_distributions()
    required, optional = _libraryImports()
    optionalDists = {dist for name in optional for dist in distributions.get(name, [name])}  # e.g. matplotlib
    imported = {dist for name in required - set(sys.stdlib_module_names) - {"AnatomyINRLib"}
                for dist in distributions.get(name, [name])} - optionalDists
    bundled = {n.lower() for n in dependencies.SLICER_BUNDLED}
    required = {dependencies.requirementName(r) for r in dependencies.readRequirements()}
    sideOnly = {dependencies.requirementName(r) for r in dependencies.SLICER_SIDE_REQUIREMENTS}
    assert required - sideOnly == {d for d in imported if d.lower() not in bundled}, (required, imported)


def test_install_asks_once_and_pins_slicer_packages(fakeSlicer, monkeypatch):
    from fake_slicer import util

    monkeypatch.setattr(dependencies, "missingRequirements", lambda requirements: ["psutil>=5.9"])
    dependencies.ensureDependencies()
    assert [kind for kind, _text in util.dialogs] == ["confirm"] and "psutil" in util.dialogs[0][1]
    flag, path, *requirements = util.pipRequests[0].split(" ")
    assert flag == "-c" and requirements == ["psutil>=5.9"]
    assert util.pipConstraints[0].split() == dependencies.constraintLines()
    assert not Path(path).exists()  # deleted after the install


def test_old_torch_is_upgraded_through_pytorch_utils_after_asking(fakeSlicer, monkeypatch):
    import PyTorchUtils
    from fake_slicer import util

    real = dependencies.installedVersion
    monkeypatch.setattr(dependencies, "installedVersion", lambda name: "2.0.0" if name == "torch" else real(name))
    with pytest.raises(dependencies.InstallError, match="not upgraded"):
        dependencies.ensureDependencies()  # the fake PyTorchUtils installs nothing (returns None)
    assert "PyTorch 2.0.0 is installed" in util.dialogs[0][1]
    assert PyTorchUtils.PyTorchUtilsLogic.installRequests[-1] == dependencies.TORCH_REQUIREMENT
    util.answers["confirm"] = False
    with pytest.raises(dependencies.InstallError, match="too old"):
        dependencies.ensureDependencies()
