"""The computation behind "Tree synthesis", with no Slicer and no Qt.

Two tasks, each one run of the library's ``trees`` worker
(``python -m AnatomyINRLib trees ... --json-progress``):

- **sample**: a diffusion checkpoint (from ``anatomy-inr trees train``) → N new trees,
  ``trees sample --checkpoint CKPT --count N --output-dir D --seed S --spacing MM``;
  :func:`readSampleResult` reads back each tree's mesh (None where a sample has no surface);
- **compress**: one tree surface (a model or a segment's closed surface, written as ``.vtp``)
  → its occupancy INR, re-meshed at a chosen spacing, with size and error against the source,
  ``trees compress MESH --output-inr INR --output MESH --spacing MM --report JSON``;
  :func:`readCompressResult` reads the mesh, the report and the INR file's bytes.

:func:`sampleArguments` / :func:`writeCompressInputs` build the arguments (the latter writes the tree);
:func:`compressRows` and the summary functions turn the reports into what the panel shows.
The library (and torch) is imported inside the functions: this file is imported
when Slicer loads the module, before dependencies are installed.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import dataclass, field
from typing import Optional

TASKS = ("sample", "compress")
TASK_TITLES = {"sample": "Sample new trees from a checkpoint", "compress": "Compress a tree into an INR"}
PRESETS = ("tiny", "fast", "paper")  # AnatomyINRLib.trees.config.FIT_PRESETS but "shared" (tested)
PRESET_TITLES = {"tiny": "Quick preview (coarse)", "fast": "Standard (CPU)", "paper": "Paper protocol (slow)"}
DEVICES = ("auto", "cpu", "cuda")
SAMPLE_NAME = "Sampled tree"
OUTPUT_NAME = "Compressed tree"
SAMPLE_COLOR = (0.80, 0.30, 0.30)
OUTPUT_COLOR = (0.30, 0.55, 0.85)
MAX_COUNT = 100
MAX_TEMPERATURE = 10.0  # the panel's range; beyond it a hull checkpoint samples its mean network
TABLE_COLUMNS = (("Quantity", "string"), ("Value", "double"), ("Unit", "string"))
_TREE_FILE = re.compile(r"^tree_(\d{3,})\.vtp$")


def _positive(name: str, value, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a positive {unit}, got {value!r}")


@dataclass
class SampleOptions:
    """What the user chooses for sampling.

    Attributes:
        checkpoint: ``.safetensors`` checkpoint of ``anatomy-inr trees train`` (its ``.json`` sidecar beside it).
        count: Number of trees (1..``MAX_COUNT``).
        seed: Initial noise of the sampler: the same seed gives the same trees.
        spacingMm: Marching-cubes spacing of the meshes (mm).
        device: "auto", "cpu" or "cuda".
        sampleSteps: DDIM steps (None: the checkpoint's own setting).
        temperature: Softmax temperature of a checkpoint trained with the "hull" head (None: the
            checkpoint's own; the worker refuses it for other checkpoints).
        keepAllPieces: Keep every connected piece of a sampled surface in its model (False: only the
            largest piece; the report names the trees that had more).
    """

    checkpoint: str = ""
    count: int = 4
    seed: int = 0
    spacingMm: float = 0.5
    device: str = "cpu"
    sampleSteps: Optional[int] = None
    temperature: Optional[float] = None
    keepAllPieces: bool = False

    def validate(self) -> None:
        """Raise ValueError naming the first invalid option."""
        if not isinstance(self.keepAllPieces, bool):
            raise ValueError(f"keepAllPieces: expected True or False, got {self.keepAllPieces!r}")
        if not str(self.checkpoint).strip():
            raise ValueError("checkpoint: choose the .safetensors file written by 'anatomy-inr trees train'")
        if not os.path.isfile(self.checkpoint):
            raise ValueError(f"checkpoint: {self.checkpoint!r} does not exist or is not a file")
        if isinstance(self.count, bool) or int(self.count) != self.count or not 1 <= self.count <= MAX_COUNT:
            raise ValueError(f"count: expected a number of trees in [1, {MAX_COUNT}], got {self.count!r}")
        _positive("spacingMm", self.spacingMm, "spacing in mm")
        if self.sampleSteps is not None:
            _positive("sampleSteps", self.sampleSteps, "number of steps")
        if self.temperature is not None:
            _positive("temperature", self.temperature, "temperature")
        if self.device not in DEVICES:
            raise ValueError(f"device: expected one of {', '.join(DEVICES)}, got {self.device!r}")


def chosenTemperature(value: float) -> Optional[float]:
    """The panel's temperature as a sampling option: 0 (shown as "checkpoint's own") → None."""
    return float(value) if value > 0 else None


@dataclass
class CompressOptions:
    """What the user chooses for compression.

    Attributes:
        spacingMm: Spacing of the re-extracted mesh (mm); the INR meshes at any spacing.
        preset: Stage-1 fit preset ("tiny", "fast", "paper").
        seed: Initial weights and training points of the fit, and the distance samples.
        device: "auto", "cpu" or "cuda".
        iterations: Optional cap on the fit's iterations (quick previews, tests).
        configFile: Optional full ``TreeFitConfig`` JSON (overrides ``preset``; scripts and tests).
        threads: Optional CPU thread count of the worker.
    """

    spacingMm: float = 0.3
    preset: str = "fast"
    seed: int = 0
    device: str = "auto"
    iterations: Optional[int] = None
    configFile: Optional[str] = None
    threads: Optional[int] = None

    def validate(self) -> None:
        """Raise ValueError naming the first invalid option."""
        _positive("spacingMm", self.spacingMm, "spacing in mm")
        if self.preset not in PRESETS:
            raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.iterations is not None:
            _positive("iterations", self.iterations, "number of iterations")
        if self.device not in DEVICES:
            raise ValueError(f"device: expected one of {', '.join(DEVICES)}, got {self.device!r}")


@dataclass(frozen=True)
class WorkFiles:
    """Files of one worker run, all in one temporary folder."""

    folder: str

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    @property
    def samples(self) -> str:
        """Folder ``trees sample`` writes into (created by the worker)."""
        return self.path("samples")

    @property
    def source(self) -> str:
        return self.path("source.vtp")

    @property
    def inr(self) -> str:
        return self.path("compressed.safetensors")

    @property
    def inrSidecar(self) -> str:
        return self.path("compressed.json")

    @property
    def mesh(self) -> str:
        return self.path("compressed.vtp")

    @property
    def report(self) -> str:
        return self.path("report.json")


def sampleArguments(files: WorkFiles, options: SampleOptions) -> list[str]:
    """Arguments of ``trees sample`` (AnatomyINRLib/cli/trees_diffusion.py); the subcommand is ``trees``."""
    from AnatomyINRSlicerLib.worker_protocol import cli_arguments

    options.validate()
    return cli_arguments(["sample"], (
        ("--checkpoint", str(options.checkpoint)), ("--count", int(options.count)), ("--output-dir", files.samples),
        ("--seed", int(options.seed)), ("--spacing", float(options.spacingMm)),
        ("--sample-steps", options.sampleSteps), ("--temperature", options.temperature), ("--device", options.device),
        ("--keep-all-components", options.keepAllPieces), ("--report", files.report)))


def writeCompressInputs(files: WorkFiles, mesh, options: CompressOptions) -> list[str]:
    """Write the tree surface (a ``TriangleMesh`` in RAS mm) as ``.vtp``; returns the worker's arguments."""
    from AnatomyINRLib.io.meshes import write_mesh

    options.validate()
    write_mesh(mesh, files.source)
    return compressArguments(files, options)


def compressArguments(files: WorkFiles, options: CompressOptions) -> list[str]:
    """Arguments of ``trees compress`` (AnatomyINRLib/cli/trees_compress.py); the subcommand is ``trees``."""
    from AnatomyINRSlicerLib.worker_protocol import cli_arguments

    options.validate()
    return cli_arguments(["compress", files.source], (
        ("--output-inr", files.inr), ("--output", files.mesh), ("--spacing", float(options.spacingMm)),
        ("--preset", options.preset), ("--config", options.configFile), ("--iterations", options.iterations),
        ("--seed", int(options.seed)), ("--device", options.device), ("--threads", options.threads),
        ("--report", files.report)))


@dataclass
class SampleResult:
    """Sampled trees: ``(index, mesh or None)`` per tree in order, and the worker's report."""

    trees: list = field(default_factory=list)
    report: dict = field(default_factory=dict)

    @property
    def meshes(self) -> list:
        """The trees that have a surface (a sample may have none)."""
        return [mesh for _index, mesh in self.trees if mesh is not None]


def readSampleResult(files: WorkFiles) -> SampleResult:
    """The meshes and report of a successful ``trees sample`` run (ValueError if something is missing)."""
    from AnatomyINRLib.io.meshes import read_mesh
    from AnatomyINRSlicerLib.worker_protocol import read_report

    report = read_report(files.report)
    count = report.get("count")
    if not isinstance(count, int) or not os.path.isdir(files.samples):
        raise ValueError("the worker wrote no samples or no sampling report")
    found = {int(m.group(1)): os.path.join(files.samples, name)
             for name in os.listdir(files.samples) if (m := _TREE_FILE.match(name))}
    trees = [(index, read_mesh(found[index]) if index in found else None) for index in range(count)]
    if not any(mesh is not None for _index, mesh in trees):
        raise ValueError(f"none of the {count} sampled trees has a surface; try another seed or checkpoint")
    return SampleResult(trees, report)


@dataclass
class CompressResult:
    """The re-extracted mesh, the report (sizes, error, fit) and the INR file pair's bytes on disk."""

    mesh: object
    report: dict
    inrFiles: tuple = ()

    @property
    def inrBytes(self) -> int:
        return int(self.report["size"]["inr_bytes"])


def readCompressResult(files: WorkFiles) -> CompressResult:
    """The mesh and report of a successful ``trees compress`` run (ValueError if something is missing)."""
    from AnatomyINRLib.io.meshes import read_mesh
    from AnatomyINRSlicerLib.worker_protocol import read_report

    report = read_report(files.report)
    if "size" not in report or "error" not in report or not os.path.isfile(files.mesh):
        raise ValueError("the worker wrote no compressed tree or no report")
    onDisk = os.path.getsize(files.inr) + os.path.getsize(files.inrSidecar)
    if onDisk != report["size"]["inr_bytes"]:  # the report must describe the file the user keeps
        raise ValueError(f"the INR file has {onDisk} bytes, the report says {report['size']['inr_bytes']}")
    return CompressResult(read_mesh(files.mesh), report, (files.inr, files.inrSidecar))


def saveInr(result: CompressResult, path: str) -> list[str]:
    """Copy the INR file and its ``.json`` sidecar to ``path`` (a ``.safetensors`` file); returns the paths.

    Raises:
        ValueError: ``path`` does not end in ``.safetensors`` or its folder does not exist.
    """
    if not path.lower().endswith(".safetensors"):
        raise ValueError(f"save INR as: expected a .safetensors path, got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"save INR as: the folder {folder!r} does not exist")
    targets = [path, path[: -len(".safetensors")] + ".json"]
    for source, target in zip(result.inrFiles, targets):
        shutil.copyfile(source, target)
    return targets


def compressRows(report: dict) -> list[tuple]:
    """``(quantity, value, unit)`` rows of the size and error table."""
    size, error, fit = report["size"], report["error"], report["fit"]
    return [
        ("INR file (weights + sidecar)", float(size["inr_bytes"]) / 1024.0, "KiB"),
        ("Source mesh as .vtp", float(size["source_vtp_bytes"]) / 1024.0, "KiB"),
        ("Source mesh raw (float32 vertices, int32 triangles)", float(size["source_raw_bytes"]) / 1024.0, "KiB"),
        ("Compression vs .vtp", float(size["compression_vs_vtp"]), "x"),
        ("Compression vs raw", float(size["compression_vs_raw"]), "x"),
        ("ASD to the source", float(error["asd_mm"]), "mm"),
        ("HD95 to the source", float(error["hd95_mm"]), "mm"),
        ("Hausdorff to the source", float(error["hd_mm"]), "mm"),
        ("Re-extraction spacing", float(report["spacing_mm"]), "mm"),
        ("Fit iterations", float(fit["iterations"]), ""),
        ("Fit time", float(fit["seconds"]), "s"),
    ]


def compressSummary(result: CompressResult) -> str:
    """Two lines for the panel: size and error."""
    report = result.report
    size, error = report["size"], report["error"]
    return (f"INR {size['inr_bytes'] / 1024.0:.0f} KiB vs mesh {size['source_vtp_bytes'] / 1024.0:.0f} KiB (.vtp): "
            f"{size['compression_vs_vtp']:.1f}x smaller\n"
            f"Re-extracted at {report['spacing_mm']:g} mm: ASD {error['asd_mm']:.3f} mm, "
            f"HD95 {error['hd95_mm']:.3f} mm")


def sampleSummary(result: SampleResult) -> str:
    """A few lines for the panel: how many trees, the empty ones, the ones whose surface came out in
    pieces (the model holds the largest piece, or every piece when the run kept them all), the time."""
    report = result.report
    empty = [index for index, mesh in result.trees if mesh is None]
    lines = [f"{len(result.meshes)} trees sampled (seed {report.get('seed')}, {report.get('sample_steps')} DDIM steps)"
             f" in {float(report.get('seconds', 0.0)):.1f} s"]
    if empty:
        lines.append(f"Samples without a surface (no model): {', '.join(str(i) for i in empty)}")
    pieces = [(index, entry) for index, entry in enumerate(report.get("meshes") or [])
              if entry and entry.get("pieces", 1) > 1]
    if pieces:
        # rounded down: a tree with a speck beside it must not read as 100 %
        listed = ", ".join(f"{index} ({math.floor(1000 * entry['largest_area_fraction']) / 10:.1f} %)"
                           for index, entry in pieces)
        kept = "every piece kept" if report.get("components") == "all" else "largest piece kept"
        lines.append(f"Samples in pieces, {kept} (the largest piece's share of the surface): {listed}")
    return "\n".join(lines)


def sampleName(index: int) -> str:
    """Model name of sampled tree ``index``: "Sampled tree 000"."""
    return f"{SAMPLE_NAME} {index:03d}"
