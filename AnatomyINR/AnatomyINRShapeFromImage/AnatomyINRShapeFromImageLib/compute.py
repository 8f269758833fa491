"""The computation behind "Shape from image", with no Slicer and no Qt.

A CT volume (``ImageGrid``, RAS mm) and optionally a checkpoint file → one watertight
mesh per cardiac structure (RAS mm), the label map rasterised from the meshes on the
volume's grid, and a report (volumes, mesh checks, warnings). The work runs in the
library's worker (``python -m AnatomyINRLib image-to-mesh predict IMAGE [--checkpoint
CKPT] --output-prefix P --json-progress``), which writes ``P_<structure>.vtp`` (the
library's mesh files: tagged with their frame, read back into RAS mm),
``P_labels.nrrd`` and ``P_report.json``:

- :func:`writeWorkerInputs` writes the volume (``.nrrd``, world geometry) and
  :func:`workerArguments` builds the arguments;
- :func:`readWorkerResult` reads and checks the meshes, labels and report;
- :func:`structureRows`, :func:`warningLines` and :func:`summaryText` turn the report
  into the panel's table and text.

The library (and torch) is imported inside the functions: this file is imported
when Slicer loads the module, before dependencies are installed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

# Label value → structure name, as the library's model writes them
# (AnatomyINRLib.image_to_mesh.config.STRUCTURES, tested); segment and file names use these names.
STRUCTURES = {1: "left_atrium", 2: "left_ventricle"}
STRUCTURE_NAMES = tuple(STRUCTURES[value] for value in sorted(STRUCTURES))
STRUCTURE_TITLES = {"left_atrium": "Left atrium", "left_ventricle": "Left ventricle"}
# Warm tones that stay apart in the views and from each other: atrium light salmon, ventricle dark red.
STRUCTURE_COLORS = {"left_atrium": (0.96, 0.58, 0.45), "left_ventricle": (0.75, 0.16, 0.18)}
SEGMENTATION_NAME = "Shape from image"
CHECKPOINT_SUFFIX = ".safetensors"
TABLE_COLUMNS = ("Structure", "Volume (ml)", "Watertight", "Components", "Self-intersections", "Repaired")
_REPORT_STRUCTURE_KEYS = ("label", "volume_ml", "watertight", "components", "self_intersections", "repaired")


def checkpointProblem(path: str) -> Optional[str]:
    """Why ``path`` cannot be the checkpoint (None when it can; an empty path means the shipped model)."""
    text = (path or "").strip()
    if not text:
        return None
    if not os.path.isfile(text):
        return f"Checkpoint: no file {text!r}; leave it empty to use the model shipped with the extension."
    if not text.lower().endswith(CHECKPOINT_SUFFIX):
        return (f"Checkpoint: expected a {CHECKPOINT_SUFFIX} file written by 'anatomy-inr image-to-mesh train', "
                f"got {os.path.basename(text)!r}.")
    return None


@dataclass(frozen=True)
class WorkFiles:
    """Files of one worker run, all in one temporary folder."""

    folder: str

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    @property
    def image(self) -> str:
        return self.path("image.nrrd")

    @property
    def prefix(self) -> str:
        return self.path("shape")

    def mesh(self, name: str) -> str:
        return f"{self.prefix}_{name}.vtp"  # the worker's P_<structure>.vtp

    @property
    def labels(self) -> str:
        return f"{self.prefix}_labels.nrrd"

    @property
    def report(self) -> str:
        return f"{self.prefix}_report.json"


def writeWorkerInputs(files: WorkFiles, image) -> str:
    """Write the volume (an ``ImageGrid`` in world RAS geometry) as ``.nrrd``; returns its path."""
    from AnatomyINRLib.io.images import write_image

    write_image(image, files.image)
    return files.image


def workerArguments(files: WorkFiles, imagePath: str, checkpoint: str = "", refine: bool = True) -> list[str]:
    """Arguments of ``image-to-mesh predict`` (AnatomyINRLib/cli/image_to_mesh.py) for these files.

    The subcommand is ``image-to-mesh``; the action ``predict`` is the first argument.
    An empty ``checkpoint`` leaves ``--checkpoint`` out: the worker uses the shipped model.
    ``refine`` False adds ``--no-refine`` (the network's meshes, not moved onto the image's edges).
    """
    from AnatomyINRSlicerLib.worker_protocol import cli_arguments

    return cli_arguments(["predict", imagePath], (("--checkpoint", (checkpoint or "").strip() or None),
                                                  ("--no-refine", not refine),
                                                  ("--output-prefix", files.prefix)))


@dataclass
class ShapeResult:
    """The worker's meshes (RAS mm, by structure name), label map (volume's grid) and report."""

    meshes: dict
    labels: object
    report: dict = field(default_factory=dict)


def checkReport(report: dict) -> None:
    """Raise ValueError unless ``report`` describes every structure with the expected keys and labels."""
    structures = report.get("structures")
    if not isinstance(structures, dict) or sorted(structures) != sorted(STRUCTURE_NAMES):
        found = ", ".join(sorted(structures)) if isinstance(structures, dict) else "none"
        raise ValueError(f"the worker's report does not list the structures {', '.join(STRUCTURE_NAMES)} "
                         f"(found: {found})")
    for value, name in STRUCTURES.items():
        entry = structures[name]
        missing = [key for key in _REPORT_STRUCTURE_KEYS if key not in entry]
        if missing:
            raise ValueError(f"the worker's report has no {', '.join(missing)} for {name}")
        if int(entry["label"]) != value:
            raise ValueError(f"the worker's report gives {name} label {entry['label']}, expected {value}")
    if not isinstance(report.get("warnings", []), list):
        raise ValueError("the worker's report: warnings is not a list")


def readWorkerResult(files: WorkFiles, shape: Sequence[int]) -> ShapeResult:
    """The meshes, labels and report of a successful run.

    Args:
        files: The run's files.
        shape: (I, J, K) of the input volume; the label map must lie on that grid.

    Raises:
        ValueError: a file is missing, or the labels or report do not match the input.
    """
    import numpy as np

    from AnatomyINRLib.io.images import read_image
    from AnatomyINRLib.io.meshes import read_mesh
    from AnatomyINRSlicerLib.worker_protocol import read_report

    report = read_report(files.report)
    checkReport(report)
    missing = [os.path.basename(p) for p in [files.labels] + [files.mesh(n) for n in STRUCTURE_NAMES]
               if not os.path.isfile(p)]
    if missing:
        raise ValueError(f"the worker did not write {', '.join(missing)}")
    labels = read_image(files.labels)
    if tuple(labels.shape) != tuple(int(n) for n in shape):
        raise ValueError(f"the worker's label map has shape {tuple(labels.shape)}, the volume {tuple(shape)}")
    unknown = sorted(set(np.unique(np.asarray(labels.array)).tolist()) - {0, *STRUCTURES})
    if unknown:
        raise ValueError(f"the worker's label map holds values {unknown} besides 0 and {sorted(STRUCTURES)}")
    meshes = {name: read_mesh(files.mesh(name)) for name in STRUCTURE_NAMES}
    return ShapeResult(meshes, labels, report)


def _yesNo(value) -> str:
    return "yes" if bool(value) else "no"


def structureRows(report: dict) -> list[tuple]:
    """``(structure, volume ml, watertight, components, self-intersections, repaired)`` per structure, label order.

    Numbers stay numbers (the panel's table sorts them by value); yes/no columns are text.
    """
    rows = []
    for name in STRUCTURE_NAMES:
        entry = report["structures"][name]
        rows.append((STRUCTURE_TITLES[name], float(entry["volume_ml"]), _yesNo(entry["watertight"]),
                     int(entry["components"]), int(entry["self_intersections"]), _yesNo(entry["repaired"])))
    return rows


def problemRows(report: dict) -> list[int]:
    """Rows of :func:`structureRows` whose mesh is not one watertight, self-intersection-free component."""
    rows = []
    for row, name in enumerate(STRUCTURE_NAMES):
        entry = report["structures"][name]
        if not entry["watertight"] or int(entry["components"]) != 1 or int(entry["self_intersections"]) > 0:
            rows.append(row)
    return rows


def warningLines(report: dict) -> list[str]:
    """The report's warnings (e.g. an image far from the training spacing or intensities), each once, in order.

    The worker's ``warning:`` lines are shown under the status already (``progress.outcomeText``).
    """
    lines = []
    for text in report.get("warnings", []):
        if str(text) not in lines:
            lines.append(str(text))
    return lines


def summaryText(result: ShapeResult) -> str:
    """Volumes, model, time and warnings for the module panel."""
    report = result.report
    volumes = ", ".join(f"{STRUCTURE_TITLES[name].lower()} {float(report['structures'][name]['volume_ml']):.1f} ml"
                        for name in STRUCTURE_NAMES)
    lines = [volumes[0].upper() + volumes[1:]]
    checkpoint = str(report.get("checkpoint") or "")
    model = os.path.basename(checkpoint) if checkpoint else "the shipped model"
    seconds = report.get("seconds")
    lines.append(f"Model: {model}" + (f"; computed in {float(seconds):.1f} s" if seconds is not None else ""))
    lines += [f"Warning: {text}" for text in warningLines(report)]
    return "\n".join(lines)
