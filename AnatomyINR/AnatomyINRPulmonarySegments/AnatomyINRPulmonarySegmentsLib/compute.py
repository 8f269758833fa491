"""The computation behind "Pulmonary segments", with no Slicer and no Qt.

Lobes, airways (and optional vessels, CT, nodule) as images on one grid, plus the
segmental identity (one labelled point per segmental bronchus, a labelled airway
image, or a Method B checkpoint) → the 18 segments as a ``.seg.nrrd`` and the
planning numbers. The work runs in the library's ``pulmonary segments`` worker
(``python -m AnatomyINRLib pulmonary segments ... --json-progress``):

- :func:`lobeValues` and :func:`treeSegmentNames` say which segments of a
  segmentation are the lobes (TotalSegmentator's names, other common names, or five
  segments in lobe order) and which make an airway or vessel tree;
- :func:`writeWorkerInputs` writes the images (``.nrrd``) and points (RAS
  ``.mrk.json``) and :func:`workerArguments` builds the arguments;
- :func:`readWorkerResult` reads the report; :func:`tableRows` and
  :func:`summaryText` turn it into the table node and the panel text.

The library (and torch) is imported inside the functions: this file is
imported when Slicer loads the module, before dependencies are installed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

# Label values 1-18 in this order (AnatomyINRLib.pulmonary.config.SEGMENTS, tested).
SEGMENT_NAMES = ("RUL S1", "RUL S2", "RUL S3", "RML S4", "RML S5", "RLL S6", "RLL S7", "RLL S8", "RLL S9", "RLL S10",
                 "LUL S1+2", "LUL S3", "LUL S4", "LUL S5", "LLL S6", "LLL S7+8", "LLL S9", "LLL S10")
LOBE_NAMES = ("RUL", "RML", "RLL", "LUL", "LLL")  # lobe values 1-5 (AnatomyINRLib.pulmonary.config.LOBE_NAMES)
# TotalSegmentator's lobe segments (task "total"), in lobe-value order.
TOTALSEGMENTATOR_LOBES = ("lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right",
                          "lung_upper_lobe_left", "lung_lower_lobe_left")
# Segment names taken as each tree when a segmentation holds several segments (compared without case,
# spaces, '_' or '-'); TotalSegmentator's "lung_vessels" task names the airways lung_trachea_bronchia.
TREE_NAMES = {
    "airways": ("lung_trachea_bronchia", "airways", "airway", "airway structure", "bronchi", "bronchial tree",
                "trachea and bronchi", "trachea and bronchus", "tracheobronchial tree"),
    "arteries": ("pulmonary_artery", "pulmonary arteries", "arteries", "artery"),
    "veins": ("pulmonary_vein", "pulmonary veins", "veins", "vein"),
    "nodule": ("nodule", "lung_nodules", "lung nodule", "tumor", "tumour", "lesion"),
}
METHODS = ("points", "labels", "checkpoint")  # the segmental identity: Method A (two ways) or Method B
PRESETS = ("fast", "default", "fine")  # AnatomyINRLib.pulmonary.config.PRESETS (tested)
OUTPUT_NAME = "Pulmonary segments"
TABLE_NAME = "Pulmonary segments planning"
TABLE_COLUMNS = (("Segment", "string"), ("Volume (ml)", "double"), ("% of both lungs", "double"), ("Note", "string"))


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(text)).upper()


_SEGMENT_BY_KEY = {_key(name): value for value, name in enumerate(SEGMENT_NAMES, start=1)}
_TREE_KEYS = {role: {_key(n) for n in names} for role, names in TREE_NAMES.items()}


def segmentValue(name: str) -> Optional[int]:
    """Label value (1-18) of a segment name ("RUL S1", "rul_s1", "LLL S7+8"), None if it is not one."""
    return _SEGMENT_BY_KEY.get(_key(name))


def nextMissingName(labels: Sequence[str]) -> Optional[str]:
    """The first segment name (label order) no point is labelled with yet; None when all 18 are there."""
    present = {segmentValue(label) for label in labels}
    return next((name for value, name in enumerate(SEGMENT_NAMES, start=1) if value not in present), None)


def pointLabelProblem(labels: Sequence[str]) -> Optional[str]:
    """Why these point labels are not one point per segment (None when they are)."""
    values = [segmentValue(label) for label in labels]
    unknown = [label for label, value in zip(labels, values) if value is None]
    if unknown:
        return f"point label {unknown[0]!r} is not a segment name; expected one of: {', '.join(SEGMENT_NAMES)}"
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        return f"segment {SEGMENT_NAMES[repeated[0] - 1]} has more than one point"
    missing = [name for value, name in enumerate(SEGMENT_NAMES, start=1) if value not in values]
    if missing:
        return f"{len(values)} of 18 points placed; next: {missing[0]}"
    return None


def lobeValue(name: str) -> Optional[int]:
    """Lobe value (1 RUL, 2 RML, 3 RLL, 4 LUL, 5 LLL) a segment name stands for, None if none.

    Understands TotalSegmentator (``lung_upper_lobe_right``), Slicer terminology
    (``right upper lobe of lung``), ``upper lobe of left lung`` and ``RUL``-style names.
    """
    words = set(re.split(r"[\s_\-]+", str(name).strip().lower()))
    for value, short in enumerate(LOBE_NAMES, start=1):
        if short.lower() in words:
            return value
    side = "right" if "right" in words else "left" if "left" in words else None
    level = next((lv for lv, keys in (("upper", {"upper", "superior"}), ("middle", {"middle"}),
                                      ("lower", {"lower", "inferior"})) if words & keys), None)
    if side is None or level is None or not words & {"lobe", "lung"}:
        return None
    value = {("right", "upper"): 1, ("right", "middle"): 2, ("right", "lower"): 3, ("left", "upper"): 4,
             ("left", "lower"): 5}.get((side, level))
    return value


def lobeValues(segmentNames: Sequence[str]) -> list[Optional[int]]:
    """Lobe value of each segment of a lobe segmentation (None: not a lobe, left out).

    By name when every lobe is named once (other segments, e.g. TotalSegmentator's other
    organs, are ignored); by order (RUL, RML, RLL, LUL, LLL) when the segmentation has
    exactly five segments and none is named as a lobe.

    Raises:
        ValueError: a lobe named twice, or the lobes cannot be told apart (the message says what is expected).
    """
    values = [lobeValue(name) for name in segmentNames]
    named = [v for v in values if v is not None]
    for value in range(1, 6):
        if named.count(value) > 1:
            twice = [n for n, v in zip(segmentNames, values) if v == value]
            raise ValueError(f"lobes: {LOBE_NAMES[value - 1]} is named by more than one segment ({', '.join(twice)})")
    if sorted(named) == [1, 2, 3, 4, 5]:
        return values
    if not named and len(segmentNames) == 5:
        return [1, 2, 3, 4, 5]
    found = ", ".join(segmentNames) if segmentNames else "no segments"
    raise ValueError("lobes: expected the five lobe segments named as TotalSegmentator names them ("
                     + ", ".join(TOTALSEGMENTATOR_LOBES) + "), or exactly five segments in the order RUL, RML, RLL, "
                     f"LUL, LLL, or a labelmap with values 1-5; found: {found}")


def treeSegmentNames(segmentNames: Sequence[str], role: str) -> list[str]:
    """The segments taken as the ``role`` mask ("airways", "arteries", "veins", "nodule"): those named as
    such (``TREE_NAMES``), else the only segment.

    Raises:
        ValueError: several segments and none has a known name.
    """
    chosen = [name for name in segmentNames if _key(name) in _TREE_KEYS[role]]
    if chosen:
        return chosen
    if len(segmentNames) == 1:
        return list(segmentNames)
    raise ValueError(f"{role}: the segmentation has {len(segmentNames)} segments and none is named "
                     f"{' or '.join(TREE_NAMES[role])}; rename the {role} segment or use a segmentation holding only it")


def labelSegmentValues(segmentNames: Sequence[str]) -> list[Optional[int]]:
    """Segment label (1-18) of each segment of a labelled-airway segmentation (named like ``RUL S1``)."""
    values = [segmentValue(name) for name in segmentNames]
    if not any(values):
        raise ValueError("segmental labels: no segment is named like a pulmonary segment "
                         f"({', '.join(SEGMENT_NAMES[:3])}, ...); name each bronchial subtree by its segment")
    return values


def parseResect(text: str) -> list[str]:
    """Segment names of a comma- or semicolon-separated list ("RUL S1, RUL S2"), in label order.

    Raises:
        ValueError: an unknown or repeated name.
    """
    values = []
    for item in (part.strip() for part in re.split(r"[,;]", text or "")):
        if not item:
            continue
        value = segmentValue(item)
        if value is None:
            raise ValueError(f"segments to resect: {item!r} is not a segment name; expected names such as "
                             f"{', '.join(SEGMENT_NAMES[:3])} (separated by commas)")
        if value in values:
            raise ValueError(f"segments to resect: {SEGMENT_NAMES[value - 1]} is listed twice")
        values.append(value)
    return [SEGMENT_NAMES[v - 1] for v in sorted(values)]


@dataclass
class SegmentsOptions:
    """What the user chooses.

    Attributes:
        preset: Method A preset ("fast": 3 mm work grid; "default": 2 mm; "fine": 1.5 mm).
        device: Method B compute device ("cpu", "cuda", "auto"); Method A runs on the CPU.
        seed: Recorded in the report (Method A is deterministic).
    """

    preset: str = "default"
    device: str = "cpu"
    seed: int = 0

    def validate(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {self.preset!r}")


@dataclass
class SegmentsInputs:
    """The inputs in library containers (images on one grid, points in RAS mm).

    Attributes:
        lobes: Lobe labels 1-5. airways: Airway mask. arteries, veins, ct: Optional images.
        segmentalLabels / segmentPoints / checkpoint: Exactly one (the segmental identity).
        nodule: Optional points or mask. resect: Segment names to resect (may be empty).
    """

    lobes: object
    airways: object
    arteries: object = None
    veins: object = None
    ct: object = None
    segmentalLabels: object = None
    segmentPoints: object = None
    checkpoint: Optional[str] = None
    nodule: object = None
    resect: list = field(default_factory=list)


@dataclass(frozen=True)
class WorkFiles:
    """Files of one worker run, all in one temporary folder."""

    folder: str

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def image(self, role: str) -> str:
        return self.path(f"{role}.nrrd")

    @property
    def points(self) -> str:
        return self.path("segment_points.mrk.json")

    @property
    def nodulePoints(self) -> str:
        return self.path("nodule.mrk.json")

    @property
    def output(self) -> str:
        return self.path("segments.seg.nrrd")

    @property
    def report(self) -> str:
        return self.path("report.json")


IMAGE_FLAGS = (("lobes", "--lobes"), ("airways", "--airways"), ("arteries", "--arteries"), ("veins", "--veins"),
               ("ct", "--ct"), ("segmentalLabels", "--segmental-labels"))


def writeWorkerInputs(files: WorkFiles, inputs: SegmentsInputs) -> dict:
    """Write the images (.nrrd) and points (RAS .mrk.json); returns ``{CLI flag: path or value}``."""
    from AnatomyINRLib.core.types import ImageGrid, PointSet
    from AnatomyINRLib.io.images import write_image
    from AnatomyINRLib.io.points import write_points

    identities = [inputs.segmentalLabels is not None, inputs.segmentPoints is not None, bool(inputs.checkpoint)]
    if sum(identities) != 1:
        raise ValueError("segmental identity: give exactly one of segment points, segmental labels or a checkpoint")
    written = {}
    for role, flag in IMAGE_FLAGS:
        image = getattr(inputs, role)
        if image is not None:
            write_image(image, files.image(role))
            written[flag] = files.image(role)
    if inputs.segmentPoints is not None:
        write_points(inputs.segmentPoints, files.points, coordinate_system="RAS")
        written["--segment-points"] = files.points
    if inputs.checkpoint:
        written["--checkpoint"] = str(inputs.checkpoint)
    if isinstance(inputs.nodule, PointSet):
        write_points(inputs.nodule, files.nodulePoints, coordinate_system="RAS")
        written["--nodule"] = files.nodulePoints
    elif isinstance(inputs.nodule, ImageGrid):
        write_image(inputs.nodule, files.image("nodule"))
        written["--nodule"] = files.image("nodule")
    return written


def workerArguments(files: WorkFiles, written: dict, resect: Sequence[str], options: SegmentsOptions) -> list[str]:
    """Arguments of ``pulmonary segments`` (AnatomyINRLib/cli/pulmonary.py) for these files and options.

    The subcommand is ``pulmonary``; the action ``segments`` is the first argument.
    """
    from AnatomyINRSlicerLib.worker_protocol import cli_arguments

    options.validate()
    flags = [flag for _role, flag in IMAGE_FLAGS] + ["--segment-points", "--checkpoint", "--nodule"]
    pairs = [(flag, written.get(flag)) for flag in flags]
    pairs += [("--output", files.output), ("--resect", list(resect) or None), ("--preset", options.preset),
              ("--seed", options.seed), ("--device", options.device if written.get("--checkpoint") else None),
              ("--report", files.report)]
    return cli_arguments(["segments"], pairs)


@dataclass
class SegmentsResult:
    """The worker's ``.seg.nrrd`` (18 named, coloured segments) and its report."""

    segmentationFile: str
    report: dict = field(default_factory=dict)


def readWorkerResult(files: WorkFiles) -> SegmentsResult:
    """The output file and the report of a successful run (ValueError if something is missing)."""
    from AnatomyINRSlicerLib.worker_protocol import read_report

    report = read_report(files.report)
    if "planning" not in report or not os.path.isfile(files.output):
        raise ValueError("the worker wrote no segments or no planning report")
    return SegmentsResult(files.output, report)


def noduleText(nodule: dict) -> str:
    """"in RUL S1 (100 %); margin 6.3 mm to RUL S2" from the report's ``planning.nodule``."""
    shares = ", ".join(f"{name} ({100.0 * share:.0f} %)" for name, share in nodule["share_of_nodule"].items())
    margin = nodule.get("margin_mm")
    where = f"margin {margin:.1f} mm to {nodule.get('nearest_remaining_segment')}" if margin is not None else \
        "no remaining segment (margin not defined)"
    outside = float(nodule.get("fraction_outside_lungs", 0.0))
    return f"in {shares}; {where}" + (f"; {100.0 * outside:.0f} % outside the lungs" if outside > 0 else "")


def tableRows(report: dict) -> list[tuple]:
    """``(segment, ml, % of both lungs, note)``: the 18 segments, both lungs, then resection and nodule rows."""
    plan = report["planning"]
    volumes = plan["volumes"]
    resection = plan.get("resection")
    resected = set(resection["segments"]) if resection else set()
    nodule = plan.get("nodule")
    holding = set(nodule["segments"]) if nodule else set()
    rows = []
    for name in SEGMENT_NAMES:
        entry = volumes["segments"][name]
        note = "; ".join(n for n, on in (("resect", name in resected), ("holds the nodule", name in holding)) if on)
        rows.append((name, float(entry["ml"]), float(entry["percent"]), note))
    rows.append(("Both lungs", float(volumes["total_ml"]), 100.0, ""))
    if resection:
        rows.append(("Resected", float(resection["resected_ml"]), 100.0 - float(resection["remaining_percent"]),
                     ", ".join(resection["segments"])))
        rows.append(("Remaining lung", float(volumes["total_ml"]) - float(resection["resected_ml"]),
                     float(resection["remaining_percent"]), "ppoFEV1 = FEV1 × remaining %"))
    if nodule:
        rows.append(("Nodule", None, None, noduleText(nodule)))
        rows.append(("Nodule margin (mm)", nodule.get("margin_mm"), None, nodule.get("nearest_remaining_segment") or ""))
    return rows


def summaryText(result: SegmentsResult) -> str:
    """Method, lung volume, resection and nodule lines for the module panel."""
    report = result.report
    plan = report["planning"]
    lines = [f"18 segments, both lungs {plan['volumes']['total_ml'] / 1000.0:.2f} l "
             f"({'Method B, learned' if str(report.get('method', '')).startswith('B') else 'Method A'})"]
    resection = plan.get("resection")
    if resection:
        lines.append(f"Resecting {', '.join(resection['segments'])}: {resection['resected_ml']:.0f} ml; "
                     f"remaining lung {resection['remaining_percent']:.1f} %")
    if plan.get("nodule"):
        lines.append("Nodule " + noduleText(plan["nodule"]))
    seconds = sum(float(v) for v in report.get("timings_s", {}).values())
    if seconds:
        lines.append(f"Computed in {seconds:.1f} s")
    return "\n".join(lines)

