"""A requirement that cannot be imported in the worker: exit 5 and one line naming it.

Real child processes run the CLI as Slicer's worker does, with a package made
unimportable by a folder put first on PYTHONPATH: a ``SimpleITK.py`` that raises
ImportError as a broken binary install does, or a ``vtk.py`` that raises
ModuleNotFoundError as an absent one does.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BROKEN = 'raise ImportError("libSimpleITKIO.so.1: cannot open shared object file: No such file or directory")\n'
ABSENT = 'raise ModuleNotFoundError("No module named {0!r}", name={0!r})\n'


def _env(shim: Path) -> dict:
    path = os.pathsep.join([str(shim), str(REPO), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")


def _shim(tmp_path: Path, module: str, source: str) -> Path:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / f"{module}.py").write_text(source)
    return shim


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    pts = tmp_path / "pts.csv"
    rng = np.random.default_rng(0)
    v = rng.normal(size=(60, 3))
    np.savetxt(pts, 10 * v / np.linalg.norm(v, axis=1, keepdims=True), delimiter=",", header="x,y,z", comments="")
    ref = tmp_path / "ref.nrrd"
    ref.write_bytes(b"NRRD0004\n")  # never parsed: the reader's import fails first
    return pts, ref


def _cli(tmp_path, shim, *args):
    return subprocess.run([sys.executable, "-m", "AnatomyINRLib", *map(str, args)], capture_output=True, text=True,
                          cwd=tmp_path, env=_env(shim), timeout=300)


def test_broken_simpleitk_during_fit_points(tmp_path):
    pts, ref = _inputs(tmp_path)
    shim = _shim(tmp_path, "SimpleITK", BROKEN)
    res = _cli(tmp_path, shim, "fit-points", pts, "--output", tmp_path / "s.vtp", "--reference", ref,
               "--output-labelmap", tmp_path / "l.nrrd", "--device", "cpu", "--threads", "1")
    assert res.returncode == 5
    assert res.stderr.splitlines() == [
        "anatomy-inr: error: Python package 'SimpleITK' is missing or cannot be imported "
        "(libSimpleITKIO.so.1: cannot open shared object file: No such file or directory); "
        "install the requirements (pip install SimpleITK)"]
    assert not (tmp_path / "s.vtp").exists()


def test_absent_vtk_during_blend(tmp_path):
    mesh = tmp_path / "a.vtp"
    mesh.write_text("<VTKFile/>")  # never parsed: the reader's import fails first
    shim = _shim(tmp_path, "vtk", ABSENT.format("vtk"))
    res = _cli(tmp_path, shim, "blend", mesh, "--output", tmp_path / "out.vtp", "--device", "cpu")
    assert res.returncode == 5
    assert res.stderr.splitlines() == [
        "anatomy-inr: error: Python package 'vtk' is missing or cannot be imported (No module named 'vtk'); "
        "install the requirements (pip install vtk)"]


def test_absent_package_while_building_the_parser(tmp_path):
    # numpy is imported by the subcommand modules themselves (via io): the failure comes
    # before argument parsing, and still maps to exit 5.
    shim = _shim(tmp_path, "numpy", ABSENT.format("numpy"))
    res = _cli(tmp_path, shim, "fit-points", "pts.csv", "--output", "o.vtp")
    assert res.returncode == 5
    assert res.stderr.splitlines() == [
        "anatomy-inr: error: Python package 'numpy' is missing or cannot be imported (No module named 'numpy'); "
        "install the requirements (pip install numpy)"]


@pytest.mark.parametrize("exc,expected", [
    (ModuleNotFoundError("No module named 'skimage'", name="skimage"), ("skimage", "pip install scikit-image")),
    (ModuleNotFoundError("No module named 'scipy.spatial'", name="scipy.spatial"), ("scipy", "pip install scipy")),
    (ModuleNotFoundError("No module named 'AnatomyINRLib.nope'", name="AnatomyINRLib.nope"), None),
])
def test_message_names_the_package_and_its_distribution(exc, expected):
    from AnatomyINRLib.cli.dependencies import missing_package, missing_package_message

    message = missing_package_message(exc)
    if expected is None:  # a module of the library itself: a bug, not a requirement
        assert message is None and missing_package(exc) is None
        return
    package, hint = expected
    assert missing_package(exc) == package
    assert message.startswith(f"Python package {package!r} is missing") and message.endswith(f"({hint})")
