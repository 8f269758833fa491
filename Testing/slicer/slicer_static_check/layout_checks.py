"""Rules for the extension layout (facts README §a, §b, §e).

- top-level ``CMakeLists.txt``: ``project()`` equals the index JSON name, the
  name does not start with "Slicer", the extension metadata is set, Slicer's
  use-file / generate-config / CPack includes are there, files it points to
  exist, icon and screenshot URLs into this repository name existing files and
  the icon is a 128x128 PNG, ``EXTENSION_DEPENDS`` equals the index's
  ``build_dependencies``;
- the ExtensionsIndex JSON has only keys of catalog-entry schema v1.0.x, the
  required ones, and an accepted category;
- a ``LICENSE`` file sits at the root;
- each module folder: name starts with the extension prefix, holds
  ``<Module>.py`` with the classes ``<Module>``, ``<Module>Widget``,
  ``<Module>Logic``, ``<Module>Test``, no other top-level ``.py`` (Slicer would
  load it as a module), and per-module resource names.
"""

from __future__ import annotations

import ast
import json
import re
import struct
from pathlib import Path

from .cmake_checks import evaluate, parse_commands
from .findings import Finding

SCHEMA_KEYS = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
               "build_subdirectory", "enabled", "tier", "dicom_support_rule"}
REQUIRED_KEYS = {"$schema", "category", "scm_url"}
ACCEPTED_CATEGORIES = {"Segmentation", "Shape Analysis", "Surface Models", "Cardiac", "Quantification",
                       "Vascular Modeling Toolkit", "Utilities", "Examples"}
REQUIRED_METADATA = ("EXTENSION_HOMEPAGE", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL",
                     "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS")
REQUIRED_INCLUDES = ("${Slicer_USE_FILE}", "${Slicer_EXTENSION_GENERATE_CONFIG}", "${Slicer_EXTENSION_CPACK}")
RAW_URL = re.compile(r"https://raw\.githubusercontent\.com/[^/]+/[^/]+/[^/]+/(.+)")


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG header; (0, 0) if not a PNG."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return 0, 0
    return struct.unpack(">II", head[16:24])


def check_top_level(root: Path) -> list[Finding]:
    """Top-level CMakeLists.txt, LICENSE and the index JSON."""
    shown = "CMakeLists.txt"
    variables, calls = evaluate(root / shown)
    findings = []
    project = [a[0] for name, a, _ in calls if name == "project" and a]
    name = project[0] if project else ""
    index = root / f"{name}.json"
    if not index.is_file():
        findings.append(Finding(shown, 0, "index-json", f"no ExtensionsIndex entry {name}.json named after project()"))
    if name.startswith("Slicer"):
        findings.append(Finding(shown, 0, "extension-name", "the extension name must not start with 'Slicer'"))
    for key in REQUIRED_METADATA:
        if not variables.get(key):
            findings.append(Finding(shown, 0, "extension-metadata", f"{key} is not set"))
    includes = [a[0] for n, a, _ in calls if n == "include" and a]
    if [i for i in includes if i in REQUIRED_INCLUDES] != list(REQUIRED_INCLUDES):
        findings.append(Finding(shown, 0, "extension-metadata", f"expected include() of {', '.join(REQUIRED_INCLUDES)} in order"))
    if not any(n == "find_package" and a[:2] == ["Slicer", "REQUIRED"] for n, a, _ in calls):
        findings.append(Finding(shown, 0, "extension-metadata", "find_package(Slicer REQUIRED) missing"))
    findings += _check_referenced_files(root, variables, calls, shown)
    for n, a, line in calls:
        if n == "add_subdirectory" and not (root / a[0] / "CMakeLists.txt").is_file():
            findings.append(Finding(shown, line, "cmake-missing", f"add_subdirectory({a[0]}): no CMakeLists.txt there"))
    if not any((root / f).is_file() for f in ("LICENSE", "LICENSE.txt", "COPYING")):
        findings.append(Finding("LICENSE", 0, "license", "no LICENSE file at the repository root"))
    if index.is_file():
        findings += check_index_json(index, variables.get("EXTENSION_DEPENDS", []))
    return findings


def _check_referenced_files(root: Path, variables: dict, calls, shown: str) -> list[Finding]:
    findings = []
    guarded = {a[1] for n, a, _ in calls if n == "if" and len(a) == 2 and a[0] == "EXISTS"}
    for key in ("EXTENSION_LICENSE_FILE", "EXTENSION_README_FILE"):
        for value in variables.get(key, []):
            path = Path(value.replace("${CMAKE_CURRENT_SOURCE_DIR}", str(root)))
            if not path.is_file() and value not in guarded:
                findings.append(Finding(shown, 0, "extension-file", f"{key} points to missing {value} (packaging fails)"))
    for key in ("EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        for url in variables.get(key, []):
            match = RAW_URL.match(url)
            if match is None:
                continue
            local = root / match.group(1)
            if not local.is_file():
                findings.append(Finding(shown, 0, "extension-url", f"{key}: {match.group(1)} is not in the repository"))
            elif key == "EXTENSION_ICONURL" and png_size(local) != (128, 128):
                findings.append(Finding(shown, 0, "extension-url", f"{key}: the icon must be a 128x128 PNG"))
    return findings


def check_index_json(path: Path, depends: list) -> list[Finding]:
    """ExtensionsIndex entry: schema keys only, required keys, category, dependencies."""
    shown = path.name
    try:
        data = json.loads(path.read_text())
    except ValueError as error:
        return [Finding(shown, 0, "index-json", f"not valid JSON: {error}")]
    findings = []
    for key in sorted(set(data) - SCHEMA_KEYS):
        findings.append(Finding(shown, 0, "index-json", f"key {key!r} is not in the catalog-entry schema"))
    for key in sorted(REQUIRED_KEYS - set(data)):
        findings.append(Finding(shown, 0, "index-json", f"required key {key!r} missing"))
    if not re.search(r"slicer-extension-catalog-entry-schema-v1\.0\.\d+\.json#?$", str(data.get("$schema", ""))):
        findings.append(Finding(shown, 0, "index-json", "$schema is not the catalog-entry schema v1.0.x"))
    if data.get("category") not in ACCEPTED_CATEGORIES:
        findings.append(Finding(shown, 0, "index-json", f"category {data.get('category')!r} is not an accepted category"))
    tier = data.get("tier", 1)
    if not isinstance(tier, int) or not 1 <= tier <= 5:
        findings.append(Finding(shown, 0, "index-json", f"tier must be an integer 1..5, got {tier!r}"))
    deps = [d for d in depends if d != "NA"]
    if sorted(data.get("build_dependencies", [])) != sorted(deps):
        findings.append(Finding(shown, 0, "index-json", f"build_dependencies {data.get('build_dependencies', [])} "
                                f"differ from EXTENSION_DEPENDS {deps}"))
    return findings


def module_folders(modules_root: Path) -> list[Path]:
    """Folders of scripted modules: those holding ``<folder>.py``."""
    return sorted(p for p in modules_root.iterdir() if p.is_dir() and (p / f"{p.name}.py").is_file())


def check_modules_cmake(modules_root: Path, shown: str) -> list[Finding]:
    """``AnatomyINR/CMakeLists.txt`` adds every module and package folder, and only existing ones."""
    added = [a[0] for n, a, _ in parse_commands((modules_root / "CMakeLists.txt").read_text()) if n == "add_subdirectory"]
    findings = [Finding(shown, 0, "cmake-missing", f"add_subdirectory({d}): folder has no CMakeLists.txt")
                for d in added if not (modules_root / d / "CMakeLists.txt").is_file()]
    for folder in sorted(p for p in modules_root.iterdir() if (p / "CMakeLists.txt").is_file()):
        if folder.name not in added:
            findings.append(Finding(shown, 0, "cmake-unlisted", f"{folder.name} has a CMakeLists.txt but is not added"))
    return findings


def check_module_structure(folder: Path, prefix: str, shown: str, all_resource_names: dict) -> list[Finding]:
    """Naming and class rules of one scripted module folder."""
    name = folder.name
    findings = []
    if not name.startswith(prefix):
        findings.append(Finding(shown, 0, "module-name", f"module {name} does not start with {prefix}"))
    tree = ast.parse((folder / f"{name}.py").read_text())
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    for suffix in ("", "Widget", "Logic", "Test"):
        if name + suffix not in classes:
            findings.append(Finding(shown, 0, "module-class", f"class {name}{suffix} missing (Slicer looks it up by name)"))
    for py in sorted(folder.glob("*.py")):
        first = py.read_text().split("\n", 1)[0]
        if py.name != f"{name}.py" and not first.startswith("#!"):
            findings.append(Finding(shown, 0, "module-file", f"{py.name}: Slicer loads every top-level .py as a "
                                    "module; move helpers into a package folder"))
    for required in (f"Resources/Icons/{name}.png", f"Resources/UI/{name}.ui"):
        if not (folder / required).is_file():
            findings.append(Finding(shown, 0, "module-resource", f"{required} missing"))
    for sub in ("Icons", "UI"):
        for res in sorted((folder / "Resources" / sub).glob("*")):
            owner = all_resource_names.setdefault(f"{sub}/{res.name}", name)
            if name not in res.name or owner != name:
                findings.append(Finding(shown, 0, "module-resource", f"Resources/{sub}/{res.name}: resource names must "
                                        "carry the module name (all modules share one folder)"))
    return findings
