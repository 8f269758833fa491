"""What the Shape from image tests share: a held-out cardiac phantom and a run's output files written in the test.

:func:`writeOutputs` writes what ``image-to-mesh predict --output-prefix P`` writes
(``P_<structure>.vtp``, ``P_labels.nrrd``, ``P_report.json``) with the library's
``io`` functions, from the phantom's own labels: each mesh is the marching-cubes
surface of one label (RAS mm), the labels are the phantom's, the volumes counted
voxels. So the import into Slicer is tested against known content without the
worker; the tests through the real worker are in ``test_slicer_shape_logic.py``
and ``test_slicer_widget_shape.py``.
"""

from __future__ import annotations

import json

import numpy as np

PHANTOM_SEED = 1001  # a seed the shipped model was not trained on (held out)


def makePhantom():
    from AnatomyINRLib.phantoms.cardiac import make_cardiac_phantom

    return make_cardiac_phantom(PHANTOM_SEED, "small")


def labelMesh(labels, value: int):
    """Marching-cubes surface (RAS mm, outward) of ``labels == value``."""
    from AnatomyINRLib.core.types import TriangleMesh
    from AnatomyINRLib.io.meshes import orient_outward
    from AnatomyINRLib.meshing.extract import marching_cubes

    mask = np.pad(np.asarray(labels.array) == value, 1).astype(np.float64)
    ijk, faces = marching_cubes(mask, 0.5)
    ijk -= 1.0  # the padding
    ras = ijk @ labels.ijk_to_ras[:3, :3].T + labels.ijk_to_ras[:3, 3]
    return orient_outward(TriangleMesh(ras, faces))


def report(labels, **changes) -> dict:
    """The report ``predict`` writes for these labels (volumes of counted voxels); ``changes`` per structure."""
    from AnatomyINRShapeFromImageLib import compute

    voxelMl = abs(float(np.linalg.det(labels.ijk_to_ras[:3, :3]))) / 1000.0
    structures = {}
    for value, name in compute.STRUCTURES.items():
        entry = {"label": value, "volume_ml": float(np.count_nonzero(np.asarray(labels.array) == value) * voxelMl),
                 "watertight": True, "components": 1, "self_intersections": 0, "repaired": False}
        entry.update(changes.get(name, {}))
        structures[name] = entry
    return {"structures": structures, "warnings": ["intensity: median 812 HU inside the heart, the training phantoms 150-450 HU"],
            "checkpoint": "", "seconds": 4.25}


def writeOutputs(files, labels, reportDict: dict = None) -> dict:
    """Write the run's files for ``labels`` into ``files`` (a ``compute.WorkFiles``); returns the meshes by name."""
    from AnatomyINRLib.io import write_image, write_mesh
    from AnatomyINRShapeFromImageLib import compute

    meshes = {name: labelMesh(labels, value) for value, name in compute.STRUCTURES.items()}
    for name, mesh in meshes.items():
        write_mesh(mesh, files.mesh(name))  # the library's mesh files, as every worker writes them
    write_image(labels, files.labels)
    with open(files.report, "w", encoding="utf-8") as stream:
        json.dump(reportDict if reportDict is not None else report(labels), stream)
    return meshes
