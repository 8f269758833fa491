"""Talking to the AnatomyINRLib worker process, with no Qt and no Slicer.

Long computations run in a separate process, ``PythonSlicer -m AnatomyINRLib
<subcommand> ... --json-progress`` (the library's CLI doubles as the worker).
This file holds everything about that conversation that can be tested outside
Slicer:

- building the command line (:func:`worker_command`, :func:`cli_arguments`,
  :func:`fit_points_arguments`);
- parsing its stdout, where each progress event is one JSON object per line
  (:func:`parse_progress_line`) and a failure is one ``anatomy-inr: error: ...``
  line (Slicer's ``launchConsoleProcess`` merges stderr into stdout);
- turning stage fractions into one monotone overall fraction (:class:`StagePlan`);
- turning an exit code into a message a clinician can act on (:class:`WorkerRun`);
- a blocking runner (:func:`run_blocking`) for tests and batch use;
- reading and applying a finished run's result (:func:`complete_run`).

The Qt side (a reader thread polled by a ``QTimer``) is in ``runner.py``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

WORKER_PACKAGE = "AnatomyINRLib"
ERROR_PREFIX = "anatomy-inr: error:"
WARNING_PREFIX = "anatomy-inr: warning:"

# Exit codes of AnatomyINRLib.cli.main (see its module docstring).
EXIT_CANCELLED = 130
EXIT_MEANINGS = {
    2: "The input was rejected",
    3: "An output file could not be written",
    4: "The computation failed",
    5: "A required Python package is missing",
    EXIT_CANCELLED: "Cancelled",
}
_LOG_TAIL = 20

@dataclass(frozen=True)
class ProgressEvent:
    """One ``--json-progress`` line: ``{"stage", "fraction", "message", "metrics"}``."""

    stage: str
    fraction: float
    message: str = ""
    metrics: dict = field(default_factory=dict)


def parse_progress_line(line: str) -> Optional[ProgressEvent]:
    """The progress event on this stdout line, or None for any other text.

    Args:
        line: One line of worker output (trailing newline allowed).

    Returns:
        The event with ``fraction`` clamped to [0, 1], or None when the line is
        not a JSON object with a string ``stage`` and a numeric ``fraction``.
    """
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("stage"), str):
        return None
    fraction = data.get("fraction")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not math.isfinite(fraction):
        return None
    metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
    message = data.get("message") if isinstance(data.get("message"), str) else ""
    return ProgressEvent(data["stage"], min(1.0, max(0.0, float(fraction))), message, dict(metrics))


class StagePlan:
    """Maps (stage, fraction) events onto one overall fraction in [0, 1].

    Each known stage owns a slice of the bar proportional to its weight, in
    order. Events of unknown stages keep the bar where it is (the worker may
    add stages; the bar must never jump backwards).

    Args:
        stages: ``(name, weight)`` pairs in the order the worker runs them.
    """

    def __init__(self, stages: Sequence[tuple[str, float]]) -> None:
        total = float(sum(w for _, w in stages))
        if not stages or total <= 0:
            raise ValueError("stages: expected at least one stage with a positive weight")
        self._start: dict[str, float] = {}
        self._width: dict[str, float] = {}
        self.names = [name for name, _ in stages]
        acc = 0.0
        for name, weight in stages:
            self._start[name] = acc / total
            self._width[name] = weight / total
            acc += weight
        self._overall = 0.0

    @property
    def overall(self) -> float:
        """Current overall fraction (monotone non-decreasing)."""
        return self._overall

    def update(self, event: ProgressEvent) -> float:
        """Advance with one event and return the overall fraction."""
        if event.stage in self._start:
            value = self._start[event.stage] + self._width[event.stage] * event.fraction
            self._overall = max(self._overall, min(1.0, value))
        return self._overall

    def stage_label(self, event: ProgressEvent) -> str:
        """``"fit (2/4)"``-style label of the stage an event belongs to."""
        if event.stage in self._start:
            return f"{event.stage} ({self.names.index(event.stage) + 1}/{len(self.names)})"
        return event.stage


# Progress stages `fit-points` reports (AnatomyINRLib.surface.api / meshing), in order,
# weighted by their typical share of the run time on CPU.
FIT_POINTS_STAGES = (("prepare", 0.02), ("fit", 0.82), ("extract", 0.12), ("labelmap", 0.04))
# `blend` (AnatomyINRLib.blend.api): INR fits of point sets / open meshes, extraction, checks.
BLEND_STAGES = (("fit", 0.55), ("extract", 0.35), ("check", 0.10))
# `fit-nested` (AnatomyINRLib.nested.api): joint fit, one-grid extraction, thickness/volumes/Dmax.
FIT_NESTED_STAGES = (("fit", 0.70), ("extract", 0.15), ("measure", 0.15))
# `pulmonary segments` (AnatomyINRLib.pulmonary.api): Method A propagates point labels, grows territories,
# fits the soft partition and samples it; Method B encodes, then samples.
PULMONARY_SEGMENTS_STAGES = (("propagate", 0.10), ("encode", 0.05), ("territories", 0.45), ("field", 0.10),
                             ("sample", 0.30))
# `trees sample` (AnatomyINRLib.trees.api.sample_trees): DDIM denoising steps, then one mesh per tree.
TREES_SAMPLE_STAGES = (("sample", 0.60), ("mesh", 0.40))
# `trees compress` (AnatomyINRLib.cli.trees_compress): clean/check the mesh, label points and fit, re-extract, compare.
TREES_COMPRESS_STAGES = (("frame", 0.03), ("prepare", 0.02), ("fit", 0.75), ("extract", 0.15), ("compare", 0.05))
# `image-to-mesh predict` (AnatomyINRLib.image_to_mesh.api): load the model and volume, run the networks,
# check (and repair) the meshes, rasterise the label map, write the files.
IMAGE_TO_MESH_PREDICT_STAGES = (("load", 0.15), ("predict", 0.45), ("check", 0.15), ("rasterise", 0.20),
                                ("write", 0.05))


@dataclass(frozen=True)
class WorkerOutcome:
    """How a worker run ended.

    Attributes:
        ok: True only for exit code 0 without cancellation.
        cancelled: True if the caller cancelled (whatever the exit code).
        returncode: The process exit code (negative: killed by that signal).
        message: One sentence for the user; says what went wrong.
        log_tail: The last non-progress lines of output.
        warnings: The worker's warnings (``anatomy-inr: warning:`` lines, prefix removed).
    """

    ok: bool
    cancelled: bool
    returncode: Optional[int]
    message: str
    log_tail: tuple = ()
    warnings: tuple = ()


class WorkerRun:
    """State of one run, fed line by line; independent of how lines arrive.

    Args:
        plan: Stage weights of the subcommand.
    """

    def __init__(self, plan: StagePlan) -> None:
        self.plan = plan
        self.last_event: Optional[ProgressEvent] = None
        self.error_lines: list[str] = []
        self.warnings: list[str] = []
        self.log_tail: list[str] = []
        self.cancel_requested = False
        self.stalled_seconds: Optional[float] = None  # set when a watchdog stopped a silent worker

    def feed(self, line: str) -> Optional[ProgressEvent]:
        """Record one output line; returns the progress event it carried, if any."""
        event = parse_progress_line(line)
        if event is not None:
            self.last_event = event
            self.plan.update(event)
            return event
        text = line.rstrip("\r\n")
        if text.startswith(ERROR_PREFIX):
            self.error_lines.append(text[len(ERROR_PREFIX):].strip())
        elif text.startswith(WARNING_PREFIX):
            self.warnings.append(text[len(WARNING_PREFIX):].strip())
        if text.strip():
            self.log_tail = (self.log_tail + [text])[-_LOG_TAIL:]
        return None

    def outcome(self, returncode: Optional[int]) -> WorkerOutcome:
        """Interpret the exit code together with what was printed."""
        tail, warnings = tuple(self.log_tail), tuple(self.warnings)
        if self.stalled_seconds is not None:
            text = (f"The worker process stopped responding (no output for {self.stalled_seconds:.0f} s) and was "
                    "stopped; nothing was changed in the scene.")
            return WorkerOutcome(False, False, returncode, text, tail, warnings)
        if self.cancel_requested or returncode == EXIT_CANCELLED:
            return WorkerOutcome(False, True, returncode, "Cancelled: nothing was changed in the scene.", tail, warnings)
        if returncode == 0:
            return WorkerOutcome(True, False, 0, "Finished.", tail, warnings)
        detail = self.error_lines[-1] if self.error_lines else ""
        if returncode in EXIT_MEANINGS:
            text = EXIT_MEANINGS[returncode] + (f": {detail}" if detail else ".")
        elif returncode is not None and returncode < 0:
            text = f"The worker process was stopped by signal {-returncode} (out of memory?)."
        else:
            last = detail or (tail[-1] if tail else "no output")
            text = f"The worker process failed (exit code {returncode}): {last}"
        if returncode == 5:  # the worker's line names the package that failed to import
            text = text.rstrip(".") + ". Install the extension's Python requirements (Apply does this) and retry."
        return WorkerOutcome(False, False, returncode, text, tail, warnings)


def worker_command(python: str, subcommand: str, arguments: Sequence[str]) -> list[str]:
    """``[python, -m, AnatomyINRLib, subcommand, *arguments, --json-progress]``."""
    return [str(python), "-m", WORKER_PACKAGE, subcommand, *[str(a) for a in arguments], "--json-progress"]


def fit_points_arguments(
    points: str,
    output_mesh: str,
    *,
    reference: Optional[str] = None,
    output_labelmap: Optional[str] = None,
    save_inr: Optional[str] = None,
    init_inr: Optional[str] = None,
    spacing_mm: Optional[float] = None,
    preset: Optional[str] = None,
    iterations: Optional[int] = None,
    seed: Optional[int] = None,
    device: Optional[str] = None,
    threads: Optional[int] = None,
    report: Optional[str] = None,
) -> list[str]:
    """Arguments of ``fit-points`` (without the subcommand), in the CLI's spelling.

    Raises:
        ValueError: a labelmap is requested without a reference image (or the reverse).
    """
    if (reference is None) != (output_labelmap is None):
        raise ValueError("reference and output_labelmap: give both or neither")
    return cli_arguments([points], (
        ("--output", output_mesh), ("--reference", reference), ("--output-labelmap", output_labelmap),
        ("--save-inr", save_inr), ("--init-inr", init_inr), ("--spacing", spacing_mm), ("--preset", preset),
        ("--iterations", iterations), ("--seed", seed), ("--device", device), ("--threads", threads),
        ("--report", report),
    ))


def _cli_value(value: Any) -> str:
    """One value in the CLI's spelling: floats without a spurious exponent or rounding."""
    if isinstance(value, float):  # numpy floats too; repr(np.float64) would print its type
        return repr(float(value))  # shortest exact round trip: 0.25 -> "0.25"
    return str(value)


def cli_arguments(positional: Sequence[Any], options: Sequence[tuple[str, Any]]) -> list[str]:
    """Arguments of any worker subcommand: positionals, then ``--flag value`` pairs.

    Args:
        positional: Positional arguments in order (e.g. input files).
        options: ``(flag, value)`` pairs in order. ``None`` and ``False`` leave the
            flag out, ``True`` gives the bare flag (a switch), a list or tuple gives
            the flag followed by every item (``nargs="+"``), anything else one value.

    Returns:
        Strings ready for :func:`worker_command`.

    Raises:
        ValueError: a list/tuple option is empty (argparse would reject the bare flag).
    """
    args = [_cli_value(p) for p in positional]
    for flag, value in options:
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            if not value:
                raise ValueError(f"{flag}: expected at least one value, got an empty list")
            args += [flag, *[_cli_value(v) for v in value]]
        else:
            args += [flag, _cli_value(value)]
    return args


def library_search_dir() -> str:
    """Folder that contains the ``AnatomyINRLib`` package (the worker's cwd).

    ``python -m`` puts the working directory first on ``sys.path``, so running
    the worker from this folder finds the library installed beside the Slicer
    modules without touching PYTHONPATH. Only the package's ``__init__`` is
    imported (it imports neither torch nor numpy).
    """
    import importlib

    package = importlib.import_module(WORKER_PACKAGE)
    return str(Path(package.__file__).resolve().parent.parent)


def read_report(path: str) -> dict[str, Any]:
    """The worker's ``--report`` JSON as a dict (empty if the file is absent)."""
    p = Path(path)
    if not p.exists():
        return {}
    return json.loads(p.read_text(encoding="utf-8"))


def complete_run(outcome: WorkerOutcome, read_result: Callable[[], Any], apply_result: Callable[[Any], None],
                 cleanup: Callable[[], None]) -> tuple[WorkerOutcome, Any]:
    """Finish a run: on success read and apply its result; always clean up.

    Args:
        outcome: How the worker process ended.
        read_result: Reads the worker's output files (called only when ``outcome.ok``).
        apply_result: Puts the result where it belongs (e.g. into MRML nodes).
        cleanup: Removes the run's temporary files (always called, last).

    Returns:
        ``(outcome, result)``; a result that cannot be read or applied after
        exit code 0 turns the outcome into a failure (result None) whose message
        says why, so the caller reports it like any failed run.
    """
    result = None
    try:
        if outcome.ok:
            result = read_result()
            apply_result(result)
    except Exception as error:  # noqa: BLE001 - any failure here is reported to the user, not raised
        logging.getLogger(__name__).exception("Reading the worker result failed")
        outcome = WorkerOutcome(False, False, outcome.returncode, f"Reading the result failed: {error}", outcome.log_tail,
                                outcome.warnings)
        result = None
    finally:
        cleanup()
    return outcome, result


def pump_lines(stream, lines: "queue.Queue[Optional[str]]") -> None:
    """Thread body: forward every line of ``stream`` into ``lines``, then None at end of stream.

    Lines are read as bytes (from the text stream's ``buffer`` when it has one) and
    decoded as UTF-8 with replacement: one undecodable byte must not stop the reader
    while the worker keeps writing, or the pipe fills and both sides wait forever.
    """
    raw = getattr(stream, "buffer", stream)
    try:
        while True:
            line = raw.readline()
            if not line:
                break
            lines.put(line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line)
    except (OSError, ValueError):
        pass  # a closed pipe after a kill: nothing more to read
    lines.put(None)


# The worker writes UTF-8 whatever the system locale (Windows code pages, C locale).
WORKER_ENVIRONMENT = {"PYTHONIOENCODING": "utf-8", "PYTHONUTF8": "1"}


def run_blocking(
    command: Sequence[str],
    plan: StagePlan,
    *,
    cwd: Optional[str] = None,
    on_event: Optional[Callable[[ProgressEvent, float], None]] = None,
    should_cancel: Optional[Callable[[], bool]] = None,
    env: Optional[dict] = None,
) -> WorkerOutcome:
    """Run the worker to completion with plain ``subprocess`` (no Qt).

    Used by tests and batch scripts; the GUI uses ``runner.BackgroundWorker``,
    which feeds the same :class:`WorkerRun`.

    Args:
        command: From :func:`worker_command`.
        plan: Stage weights for the overall fraction.
        cwd: Working directory (see :func:`library_search_dir`).
        on_event: Called with each progress event and the overall fraction.
        should_cancel: Polled every 50 ms; True kills the process.
        env: Environment of the process (default: inherited).

    Returns:
        The outcome; never raises for a failed run.
    """
    run = WorkerRun(plan)
    environment = dict(os.environ if env is None else env, **WORKER_ENVIRONMENT)
    proc = subprocess.Popen(list(command), cwd=cwd, env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace")
    lines: "queue.Queue[Optional[str]]" = queue.Queue()
    threading.Thread(target=pump_lines, args=(proc.stdout, lines), daemon=True).start()
    finished = False
    while not finished:
        if should_cancel is not None and not run.cancel_requested and should_cancel():
            run.cancel_requested = True
            proc.kill()
        try:
            line = lines.get(timeout=0.05)
        except queue.Empty:
            continue
        if line is None:
            finished = True
            continue
        event = run.feed(line)
        if event is not None and on_event is not None:
            on_event(event, run.plan.overall)
    returncode = proc.wait()
    proc.stdout.close()
    return run.outcome(returncode)
