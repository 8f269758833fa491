"""Python dependencies of the extension, installed when Apply is first pressed.

- torch comes from the SlicerPyTorch extension (``PyTorchUtilsLogic``), which
  picks the CUDA build matching the NVIDIA driver, or the CPU build;
- everything else is listed once in ``requirements.txt`` beside this file and
  installed with ``slicer.packaging.pip_ensure`` on Slicer >= 5.12, or
  ``slicer.util.pip_install`` (one string argument) on 5.10;
- packages Slicer bundles are never reinstalled (replacing Slicer's numpy, vtk
  or SimpleITK breaks Slicer: the SlicerTotalSegmentator lesson): they are skipped,
  and pip gets a constraints file pinning the versions installed now
  (:data:`PINNED_BUNDLED`), so no dependency of a requirement can upgrade them
  either — on 5.10 (``-c`` in ``pip_install``'s string) and 5.12 (``constraints=``);
- torch's version is read from package metadata (never imported into Slicer's
  process); below :data:`TORCH_REQUIREMENT` an upgrade through PyTorchUtils is offered.

Nothing is imported or installed when the module loads; ``slicer`` is imported
inside the functions that need it, so the pure helpers are testable outside Slicer.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
from pathlib import Path
from typing import Optional, Sequence

REQUIREMENTS_FILE = Path(__file__).resolve().parent / "requirements.txt"
# Needed by the Slicer side only (not by the library): psutil finds the worker's child
# process (PythonSlicer is a launcher) so Cancel stops the computation itself.
SLICER_SIDE_REQUIREMENTS = ("psutil>=5.9",)
# Distributions Slicer ships (or SlicerPyTorch manages): pip must leave them alone.
SLICER_BUNDLED = ("numpy", "vtk", "SimpleITK", "torch", "torchvision", "requests", "packaging")
# Packages Slicer ships whose installed versions pip must keep (constraints file).
PINNED_BUNDLED = ("numpy", "scipy", "Pillow", "SimpleITK", "vtk")
TORCH_REQUIREMENT = ">=2.1"  # the library's range (pyproject.toml: torch>=2.1,<3)

TORCH_UPGRADE = (
    "AnatomyINR needs PyTorch {requirement}, but PyTorch {installed} is installed.\n\n"
    "The PyTorch extension will now install a newer version (the same CPU or CUDA kind). "
    "Other extensions that use PyTorch may need to be checked afterwards.\n\nUpgrade now?"
)

TORCH_EXPLANATION = (
    "AnatomyINR fits its surfaces with PyTorch, which is not installed yet.\n\n"
    "The PyTorch extension will now download it (about 200 MB for the CPU build, "
    "2-3 GB for a CUDA build). It installs the CUDA build when it finds an NVIDIA GPU "
    "with a recent driver (fits then take seconds) and the CPU build otherwise "
    "(fits take tens of seconds; everything still works).\n\n"
    "The following packages will be installed as well: {packages}.\n\nInstall now?"
)


class InstallError(RuntimeError):
    """A dependency is missing and could not (or may not) be installed."""


def readRequirements(path: Path = REQUIREMENTS_FILE) -> list[str]:
    """Requirement lines of ``requirements.txt`` (comments and blanks dropped)."""
    lines = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def requirementName(requirement: str) -> str:
    """Distribution name of a requirement line, e.g. ``scikit-image>=0.21`` → ``scikit-image``."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"requirement: cannot read a package name from {requirement!r}")
    return match.group(1)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def missingRequirements(requirements: Sequence[str]) -> list[str]:
    """The requirements not satisfied by what is installed (bundled ones never count).

    A version specifier is checked with ``packaging`` when it is importable
    (Slicer bundles it); otherwise only presence is checked.
    """
    bundled = {_normalized(n) for n in SLICER_BUNDLED}
    missing = []
    for requirement in requirements:
        name = requirementName(requirement)
        if _normalized(name) in bundled:
            continue
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
            continue
        if not _versionSatisfies(requirement, installed):
            missing.append(requirement)
    return missing


def _versionSatisfies(requirement: str, installed: str) -> bool:
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return True
    return Requirement(requirement).specifier.contains(installed, prereleases=True)


def installedVersion(name: str) -> Optional[str]:
    """Installed version of a distribution from its metadata (nothing is imported), or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def torchUpgradeNeeded(installed: Optional[str], requirement: str = TORCH_REQUIREMENT) -> bool:
    """True when an installed torch version does not satisfy ``requirement`` (False when absent)."""
    return installed is not None and not _versionSatisfies(f"torch{requirement}", installed)


def constraintLines(names: Sequence[str] = PINNED_BUNDLED) -> list[str]:
    """``name==version`` of each installed distribution in ``names`` (absent ones skipped)."""
    return [f"{name}=={version}" for name in names if (version := installedVersion(name)) is not None]


def writeConstraints(folder: str) -> str:
    """Write :func:`constraintLines` to ``folder/constraints.txt``; returns its path."""
    path = Path(folder) / "constraints.txt"
    path.write_text("\n".join(constraintLines()) + "\n", encoding="utf-8")
    return str(path)


def legacyPipArguments(requirements: Sequence[str], constraintsPath: str) -> str:
    """The single string Slicer 5.10's ``pip_install`` splits on spaces: ``-c FILE req...``.

    A path with whitespace cannot pass through that split, so then the pins go in
    as requirements themselves (``numpy==1.26.4`` keeps numpy exactly where it is).
    """
    if any(c.isspace() for c in constraintsPath):
        return " ".join([*requirements, *constraintLines()])
    return " ".join(["-c", constraintsPath, *requirements])


def hasSlicerPackaging() -> bool:
    """True on Slicer >= 5.12, which has ``slicer.packaging`` (pip_ensure)."""
    return importlib.util.find_spec("slicer.packaging") is not None


def _pyTorchLogic() -> "PyTorchUtils.PyTorchUtilsLogic":  # noqa: F821 - imported below, in Slicer only
    try:
        import PyTorchUtils
    except ImportError as error:
        raise InstallError(
            "AnatomyINR needs the 'PyTorch' extension. Install it from the Extensions Manager, "
            "restart Slicer, then press Apply again.") from error
    return PyTorchUtils.PyTorchUtilsLogic()


def ensureDependencies(askConfirmation: bool = True) -> None:
    """Make torch and the requirements importable, asking the user once.

    One dialog explains what will be installed (CPU or CUDA torch and the
    other packages); nothing is installed if the user declines.

    Raises:
        InstallError: the PyTorch extension is absent, the user declined, or
            the installed torch is too old.
    """
    import slicer

    torchLogic = _pyTorchLogic()
    torchVersion = installedVersion("torch")
    needTorch = torchVersion is None or not torchLogic.torchInstalled()
    if not needTorch and torchUpgradeNeeded(torchVersion):
        if askConfirmation and not slicer.util.confirmOkCancelDisplay(
                TORCH_UPGRADE.format(requirement=TORCH_REQUIREMENT, installed=torchVersion),
                windowTitle="AnatomyINR: upgrade PyTorch"):
            raise InstallError(f"PyTorch {torchVersion} is too old (AnatomyINR needs {TORCH_REQUIREMENT}).")
        if torchLogic.installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT) is None:
            raise InstallError("PyTorch was not upgraded; the fit cannot run with the installed version.")
    missing = missingRequirements(readRequirements())
    if not needTorch and not missing:
        return
    if askConfirmation:
        names = ", ".join(requirementName(r) for r in missing) or "none"
        if not slicer.util.confirmOkCancelDisplay(TORCH_EXPLANATION.format(packages=names) if needTorch
                                                  else f"AnatomyINR needs these Python packages: {names}. Install now?",
                                                  windowTitle="AnatomyINR: install dependencies"):
            raise InstallError("Python packages were not installed; the fit cannot run without them.")
    if needTorch:
        torch = torchLogic.installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT)
        if torch is None:
            raise InstallError("PyTorch was not installed; the fit cannot run without it.")
    if missing:
        installRequirements(missing)


def installRequirements(requirements: Sequence[str]) -> None:
    """pip-install ``requirements`` without touching Slicer's bundled packages (skipped and pinned)."""
    import slicer

    folder = slicer.util.tempDirectory("AnatomyINR-pip")
    constraints = writeConstraints(folder)
    try:
        if hasSlicerPackaging():
            import slicer.packaging

            # The user already agreed in ensureDependencies; the module's self-test needs the
            # packages too, so do not skip in testing mode.
            slicer.packaging.pip_ensure(list(requirements), constraints=constraints, skip_packages=list(SLICER_BUNDLED),
                                        prompt_install=False, requester="AnatomyINR", skip_in_testing=False)
        else:
            # Slicer 5.10: pip_install(requirements) takes one string, split on spaces into pip's arguments.
            slicer.util.pip_install(legacyPipArguments(requirements, constraints))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def torchDeviceDescription(reportDevice: Optional[str]) -> str:
    """Human-readable device from the worker's report (``"cuda:0"`` → ``"GPU (cuda:0)"``)."""
    if not reportDevice:
        return "unknown device"
    text = str(reportDevice)
    return f"GPU ({text})" if text.startswith("cuda") or text == "mps" else "CPU"
