"""Sample point lists in the SampleData module, so anyone can try a module in one click.

Each module ships its samples as ``.mrk.json`` files in ``Resources/SampleData`` (made
from the library's phantoms and the vendored vmtk aorta, whole and split into branches,
by ``makeSamplePoints``, with a
test that the shipped files are exactly what it makes) and registers them when Slicer
has started (``slicer.app.connect("startupCompleted()", ...)``, the template's hook).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

SAMPLE_CATEGORY = "AnatomyINR"
BRANCH_GROUPS = (0, 2, 3)  # GroupIds of the vmtk aorta split into branches (Testing/Data/README.md)
# Module -> [(sample name, [file names], [node names])].
SAMPLES = {
    "AnatomyINRSurfaceFromPoints": [
        ("AnatomyINR AAA phantom points", ["AAAPhantomPoints.mrk.json"], ["AAA phantom points"]),
        ("AnatomyINR vmtk aorta points", ["AortaPoints.mrk.json"], ["Aorta points"]),
    ],
    "AnatomyINRNestedWalls": [
        ("AnatomyINR nested AAA phantom points",
         ["NestedAAALumenPoints.mrk.json", "NestedAAAInnerWallPoints.mrk.json", "NestedAAAOuterWallPoints.mrk.json"],
         ["Lumen points", "Inner wall points", "Outer wall points"]),
    ],
    "AnatomyINRVesselBlend": [
        ("AnatomyINR vmtk aorta branch points", [f"AortaBranch{g}Points.mrk.json" for g in BRANCH_GROUPS],
         [f"Aorta branch {g} points" for g in BRANCH_GROUPS]),
    ],
}


def sampleFolder(moduleFile: str) -> Path:
    """``Resources/SampleData`` beside a module file."""
    return Path(moduleFile).resolve().parent / "Resources" / "SampleData"


def registerSampleData(moduleName: str, moduleFile: str) -> None:
    """Register the module's samples with SampleData (local files, loaded by their extension)."""
    import SampleData

    folder = sampleFolder(moduleFile)
    for sampleName, fileNames, nodeNames in SAMPLES.get(moduleName, []):
        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category=SAMPLE_CATEGORY, sampleName=sampleName, uris=[(folder / f).as_uri() for f in fileNames],
            fileNames=list(fileNames), nodeNames=list(nodeNames))


def _surfacePoints(vertices, faces, count: int, seed: int):
    """``count`` points uniform over the area of a triangle mesh, (count, 3)."""
    import numpy as np

    triangles = vertices[faces]
    areas = 0.5 * np.linalg.norm(np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    corners = triangles[rng.choice(len(areas), size=count, p=areas / areas.sum())]
    u, v = rng.random((2, count))
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    return corners[:, 0] + u[:, None] * (corners[:, 1] - corners[:, 0]) + v[:, None] * (corners[:, 2] - corners[:, 0])


def makeSamplePoints(aortaMeshFile: str, aortaBranchesFile: str) -> dict:
    """``{file name: PointSet}`` of every sample (deterministic: fixed counts and seeds)."""
    import numpy as np

    from AnatomyINRLib.core.types import PointSet
    from AnatomyINRLib.io.meshes import read_mesh
    from AnatomyINRLib.phantoms import get_phantom

    samples = {"AAAPhantomPoints.mrk.json": get_phantom("aaa").sample_surface(300, 0)}
    names = ("NestedAAALumenPoints.mrk.json", "NestedAAAInnerWallPoints.mrk.json", "NestedAAAOuterWallPoints.mrk.json")
    samples.update(zip(names, get_phantom("nested-aaa").sample_surfaces(200, 0)))
    mesh = read_mesh(aortaMeshFile)
    samples["AortaPoints.mrk.json"] = PointSet(_surfacePoints(mesh.vertices, mesh.faces, 400, 0))
    branches = read_mesh(aortaBranchesFile, orient_closed=False)
    groups = np.asarray(branches.point_data["GroupIds"]).astype(int)
    for group in BRANCH_GROUPS:
        faces = branches.faces[np.all(groups[branches.faces] == group, axis=1)]
        samples[f"AortaBranch{group}Points.mrk.json"] = PointSet(_surfacePoints(branches.vertices, faces, 200, group))
    return {name: PointSet(np.round(np.asarray(ps.points), 3)) for name, ps in samples.items()}


def writeSamplePoints(repositoryModules: str, aortaMeshFile: str, aortaBranchesFile: str,
                      modules: Sequence[str] = tuple(SAMPLES)) -> None:
    """Write every sample into ``<module>/Resources/SampleData`` under ``repositoryModules`` (the AnatomyINR folder)."""
    from AnatomyINRLib.io.points import write_points

    made = makeSamplePoints(aortaMeshFile, aortaBranchesFile)
    for module in modules:
        folder = Path(repositoryModules) / module / "Resources" / "SampleData"
        folder.mkdir(parents=True, exist_ok=True)
        for _sample, fileNames, _nodes in SAMPLES[module]:
            for fileName in fileNames:
                write_points(made[fileName], folder / fileName)
