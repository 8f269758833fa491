"""Rules on a file's imports: names imported from Slicer exist, heavy packages are not imported at load time.

Part of the Python rules (``python_checks.py``): ``from slicer.util import X``,
``from slicer.parameterNodeWrapper import X``, ``from slicer.ScriptedLoadableModule
import X`` and ``from slicer import vtkMRMLX`` name things in the facts
[util-missing, api-missing, mrml-class]; no module-level import of torch or of the
library's heavy parts [import-time].
"""

from __future__ import annotations

import ast

# Importing these at module level would need them installed before Slicer loads the module.
HEAVY_IMPORTS = ("torch", "skimage", "scipy", "trimesh", "safetensors")


def check_imports(checker, tree: ast.Module) -> None:
    """The import rules of one file; ``checker`` is its ``PythonFileChecker`` (facts, ``add``, ``use``)."""
    exports = checker.facts.parameter_node_wrapper_exports()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "slicer.parameterNodeWrapper":
            for alias in node.names:
                if alias.name not in exports:
                    checker.add(node, "api-missing", f"slicer.parameterNodeWrapper.{alias.name}: not exported")
                else:
                    checker.use(f"slicer.parameterNodeWrapper.{alias.name}",
                                "slicer_python_api.json: modules[slicer.parameterNodeWrapper].files[*].__all__")
        if isinstance(node, ast.ImportFrom) and node.module == "slicer.util":
            for alias in node.names:
                if alias.name not in checker.facts.util_functions and alias.name not in checker.facts.util_classes:
                    checker.add(node, "util-missing", f"slicer.util.{alias.name}: not in slicer_util_functions.json")
                else:
                    where = "functions" if alias.name in checker.facts.util_functions else "classes"
                    checker.use(f"slicer.util.{alias.name}", f"slicer_util_functions.json: {where}[name={alias.name}]")
        if isinstance(node, ast.ImportFrom) and node.module == "slicer.ScriptedLoadableModule":
            for alias in node.names:
                if alias.name != "*" and checker.facts.module_class(node.module, alias.name) is None:
                    checker.add(node, "api-missing", f"slicer.ScriptedLoadableModule.{alias.name}: not in the facts")
        if isinstance(node, ast.ImportFrom) and node.module == "slicer":
            for alias in node.names:
                if alias.name.startswith("vtk") and not checker.facts.is_mrml_class(alias.name):
                    checker.add(node, "mrml-class", f"slicer.{alias.name}: not a class in mrml_classes.json")
    for node in tree.body:
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for name in names:
            top = name.split(".")[0]
            deep_library = top == "AnatomyINRLib" and name.split(".")[1:2] not in ([], ["core"])
            if top in HEAVY_IMPORTS or deep_library:
                checker.add(node, "import-time", f"module-level import of {name}: dependencies are installed at "
                            "Apply time, import them inside the function that needs them")
