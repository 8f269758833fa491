"""Rules for the CMake files, against Slicer's macros as documented in the facts README §a.

- ``slicerMacroBuildScriptedModule``: only the keywords NAME, SCRIPTS,
  RESOURCES, WITH_GENERIC_TESTS, WITH_SUBDIR, VERBOSE; every listed file exists
  (``X`` or ``X.py``); every ``.py`` of the module (outside ``Testing/``) and
  every file under ``Resources/`` is listed;
- ``slicer_add_python_unittest(SCRIPT x.py)``: the script exists, and every
  ``.py`` of ``Testing/Python`` is registered;
- ``ctkMacroCompilePythonScript`` packages (the SegmentStatisticsPlugins
  pattern): the explicit file lists equal the files on disk, and the package
  lands in ``qt-scripted-modules/<package>`` so ``import <package>`` works;
- ``add_subdirectory`` targets exist and hold a CMakeLists.txt.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Optional

from .findings import Finding

SCRIPTED_MODULE_KEYWORDS = {"NAME", "SCRIPTS", "RESOURCES", "WITH_GENERIC_TESTS", "WITH_SUBDIR", "VERBOSE"}
COMPILE_KEYWORDS = {"TARGET_NAME", "SCRIPTS", "RESOURCES", "SOURCE_DIR", "DESTINATION_DIR", "INSTALL_DIR",
                    "NO_INSTALL_SUBDIR", "GLOBAL_TARGET"}
OPTION_KEYWORDS = {"WITH_GENERIC_TESTS", "WITH_SUBDIR", "VERBOSE", "NO_INSTALL_SUBDIR", "GLOBAL_TARGET"}
IGNORED_FILES = {"CMakeLists.txt", ".gitignore"}
GENERATED_BEGIN = "# BEGIN GENERATED"
GENERATED_END = "# END GENERATED"


def parse_commands(text: str) -> list[tuple[str, list[str], int]]:
    """``[(command lower-case, arguments, line)]`` of a CMake file (comments dropped).

    Quoted arguments keep their content; ``"${X}"`` stays one argument.
    """
    commands = []
    clean = _strip_comments(text)
    for match in re.finditer(r"(\w+)\s*\(((?:[^()]|\([^()]*\))*)\)", clean):
        args = re.findall(r'"[^"]*"|[^\s"]+', match.group(2))
        args = [a[1:-1] if a.startswith('"') else a for a in args]
        line = clean.count("\n", 0, match.start()) + 1
        commands.append((match.group(1).lower(), args, line))
    return commands


def _strip_comments(text: str) -> str:
    """Drop ``# ...`` comments outside quoted strings (URLs may contain '#')."""
    out, quoted, skipping = [], False, False
    for ch in text:
        if skipping:
            if ch == "\n":
                skipping = False
                out.append(ch)
            continue
        if ch == '"':
            quoted = not quoted
        if ch == "#" and not quoted:
            skipping = True
            continue
        out.append(ch)
    return "".join(out)


def expand(args: list[str], variables: dict) -> list[str]:
    """Expand ``${VAR}`` (list variables splice in) in each argument."""
    out = []
    for arg in args:
        whole = re.fullmatch(r"\$\{(\w+)\}", arg)
        if whole and isinstance(variables.get(whole.group(1)), list):
            out += variables[whole.group(1)]
            continue
        value = re.sub(r"\$\{(\w+)\}", lambda m: " ".join(_as_list(variables.get(m.group(1), m.group(0)))), arg)
        out += value.split(";") if ";" in value else [value]
    return [a for a in out if a != ""]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def evaluate(path: Path) -> tuple[dict, list]:
    """Variables set by ``set()`` and the other commands with expanded arguments."""
    variables: dict = {}
    calls = []
    for name, args, line in parse_commands(path.read_text()):
        if name == "set" and args:
            variables[args[0]] = expand(args[1:], variables)
        else:
            calls.append((name, expand(args, variables), line))
    return variables, calls


def _split_keywords(args: list[str], keywords: set) -> dict:
    out, current = {}, None
    for arg in args:
        if arg in keywords:
            current = None if arg in OPTION_KEYWORDS else arg  # options take no values
            out.setdefault(arg, [])
        elif current is not None:
            out[current].append(arg)
        else:
            out.setdefault("", []).append(arg)
    return out


def files_on_disk(folder: Path, exclude_dirs: tuple = ()) -> set[str]:
    """Relative POSIX paths of the files under ``folder`` (caches and build files skipped)."""
    found = set()
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if (p.is_file() and "__pycache__" not in rel.parts and p.suffix != ".pyc" and p.name not in IGNORED_FILES
                and not (rel.parts and rel.parts[0] in exclude_dirs)):
            found.add(rel.as_posix())
    return found


def _listed(folder: Path, entries: list[str], shown: str, what: str, line: int) -> tuple[set, list]:
    findings, listed = [], set()
    for entry in entries:
        path = entry if (folder / entry).exists() else entry + ".py"
        if not (folder / path).is_file():
            findings.append(Finding(shown, line, "cmake-missing", f"{what} lists {entry!r}, which does not exist"))
        listed.add(path)
    return listed, findings


def check_scripted_module(folder: Path, shown: str) -> list[Finding]:
    """Rules for ``<module>/CMakeLists.txt`` and its Testing folders."""
    variables, calls = evaluate(folder / "CMakeLists.txt")
    findings = []
    macro = [(args, line) for name, args, line in calls if name == "slicermacrobuildscriptedmodule"]
    if len(macro) != 1:
        return [Finding(shown, 0, "cmake-module", "expected one slicerMacroBuildScriptedModule call")]
    args, line = macro[0]
    parts = _split_keywords(args, SCRIPTED_MODULE_KEYWORDS)
    if parts.get(""):
        findings.append(Finding(shown, line, "cmake-keyword", f"unknown arguments {parts['']} (FATAL_ERROR in Slicer)"))
    if parts.get("NAME") != [folder.name]:
        findings.append(Finding(shown, line, "cmake-module", f"NAME {parts.get('NAME')} differs from folder {folder.name}"))
    scripts, f1 = _listed(folder, parts.get("SCRIPTS", []), shown, "SCRIPTS", line)
    resources, f2 = _listed(folder, parts.get("RESOURCES", []), shown, "RESOURCES", line)
    findings += f1 + f2
    disk = files_on_disk(folder, exclude_dirs=("Testing",))
    for rel in sorted(disk - scripts - resources):
        kind = "SCRIPTS" if rel.endswith(".py") else "RESOURCES"
        findings.append(Finding(shown, line, "cmake-unlisted", f"{rel} is not in {kind}: it would not be installed"))
    unittests = [a for name, a, _ in calls if name == "slicer_add_python_unittest"]
    if [f"{folder.name}.py"] not in [a[1:2] for a in unittests if a[:1] == ["SCRIPT"]]:
        findings.append(Finding(shown, 0, "cmake-test", f"slicer_add_python_unittest(SCRIPT {folder.name}.py) missing"))
    findings += _check_subdirectories(folder, calls, shown)
    testing = folder / "Testing" / "Python"
    if testing.is_dir():
        findings += _check_testing(testing, f"{shown.rsplit('/', 1)[0]}/Testing/Python/CMakeLists.txt")
    return findings


def _check_testing(folder: Path, shown: str) -> list[Finding]:
    if not (folder / "CMakeLists.txt").is_file():
        return [Finding(shown, 0, "cmake-missing", "Testing/Python has no CMakeLists.txt")]
    _, calls = evaluate(folder / "CMakeLists.txt")
    findings, registered = [], set()
    for name, args, line in calls:
        if name == "slicer_add_python_unittest":
            script = args[args.index("SCRIPT") + 1] if "SCRIPT" in args else None
            registered.add(script)
            if script is None or not (folder / script).is_file():
                findings.append(Finding(shown, line, "cmake-missing", f"test script {script!r} does not exist"))
    for p in sorted(folder.glob("*.py")):
        if p.name not in registered:
            findings.append(Finding(shown, 0, "cmake-unlisted", f"{p.name} is not registered with slicer_add_python_unittest"))
    return findings


def _check_subdirectories(folder: Path, calls, shown: str) -> list[Finding]:
    findings = []
    for name, args, line in calls:
        if name == "add_subdirectory" and args:
            if not (folder / args[0] / "CMakeLists.txt").is_file():
                findings.append(Finding(shown, line, "cmake-missing", f"add_subdirectory({args[0]}): no CMakeLists.txt there"))
    return findings


def check_python_package(folder: Path, shown: str) -> list[Finding]:
    """Rules for a package installed with ``ctkMacroCompilePythonScript``."""
    _, calls = evaluate(folder / "CMakeLists.txt")
    macro = [(a, line) for name, a, line in calls if name == "ctkmacrocompilepythonscript"]
    if len(macro) != 1:
        return [Finding(shown, 0, "cmake-package", "expected one ctkMacroCompilePythonScript call")]
    args, line = macro[0]
    parts = _split_keywords(args, COMPILE_KEYWORDS)
    findings = []
    if parts.get(""):
        findings.append(Finding(shown, line, "cmake-keyword", f"unknown arguments {parts['']}"))
    expected_dest = f"${{CMAKE_BINARY_DIR}}/${{Slicer_QTSCRIPTEDMODULES_LIB_DIR}}/{folder.name}"
    expected_install = f"${{Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR}}/{folder.name}"
    if parts.get("DESTINATION_DIR") != [expected_dest] or parts.get("INSTALL_DIR") != [expected_install]:
        findings.append(Finding(shown, line, "cmake-package", f"install {folder.name} into {expected_dest} "
                                f"and {expected_install} so that `import {folder.name}` works in Slicer"))
    if "NO_INSTALL_SUBDIR" not in parts:
        findings.append(Finding(shown, line, "cmake-package", "NO_INSTALL_SUBDIR missing (package would nest twice)"))
    scripts, f1 = _listed(folder, parts.get("SCRIPTS", []), shown, "SCRIPTS", line)
    resources, f2 = _listed(folder, parts.get("RESOURCES", []), shown, "RESOURCES", line)
    findings += f1 + f2
    for rel in sorted(files_on_disk(folder) - scripts - resources):
        findings.append(Finding(shown, line, "cmake-unlisted", f"{rel} is not listed: it would not be installed "
                                "(regenerate with `python -m slicer_static_check --write-package-lists`)"))
    return findings


def tracked_files(folder: Path) -> set[str]:
    """Files of ``folder`` that git tracks (relative POSIX paths)."""
    out = subprocess.run(["git", "ls-files", "."], cwd=folder, capture_output=True, text=True, check=True).stdout
    return {line for line in out.splitlines() if line}


def render_package_lists(folder: Path, tracked_only: bool = False) -> Optional[str]:
    """The package CMakeLists.txt text with its generated file lists refreshed.

    Args:
        folder: The package folder.
        tracked_only: List only files git tracks (what a fresh clone builds), leaving
            out work in progress of others in a shared checkout.
    """
    text = (folder / "CMakeLists.txt").read_text()
    disk = files_on_disk(folder)
    disk = sorted(disk & tracked_files(folder) if tracked_only else disk)
    blocks = {"SCRIPTS": [f for f in disk if f.endswith(".py")], "RESOURCES": [f for f in disk if not f.endswith(".py")]}
    for kind, files in blocks.items():
        pattern = re.compile(rf"([ \t]*){re.escape(GENERATED_BEGIN)} {kind}\n.*?{re.escape(GENERATED_END)} {kind}", re.S)
        match = pattern.search(text)
        if match is None:
            return None
        indent = match.group(1)
        body = "".join(f"{indent}{f}\n" for f in files)
        text = text[:match.start()] + f"{indent}{GENERATED_BEGIN} {kind}\n{body}{indent}{GENERATED_END} {kind}" + text[match.end():]
    return text
