"""Run the AnatomyINRLib worker in a background process without freezing Slicer.

The pattern is MONAIAuto3DSeg's ``BackgroundProcess``: the process is started
with ``slicer.util.launchConsoleProcess`` (which on 5.10 and 5.12 alike returns
a ``Popen`` whose stdout carries stderr too); a daemon thread reads its lines
into a queue; a ``qt.QTimer.singleShot`` poll on the main thread drains the
queue, reports staged progress and, once the process has exited, calls
``onFinished`` with a :class:`~AnatomyINRSlicerLib.worker_protocol.WorkerOutcome`.

We do not rely on 5.12's ``launchConsoleProcess(blocking=False, ...)``: the same
thread + timer code then works on 5.10. MRML is only touched by the callbacks,
which run on the main thread.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import sys
import threading
import time
from typing import Callable, Optional, Sequence

import qt
import slicer

from AnatomyINRSlicerLib.worker_protocol import (ERROR_PREFIX, WARNING_PREFIX, WORKER_ENVIRONMENT, ProgressEvent, StagePlan, WorkerOutcome, WorkerRun,
                                                 complete_run, library_search_dir, pump_lines, worker_command)

_log = logging.getLogger(__name__)


def pythonSlicerExecutable() -> str:
    """Path of ``PythonSlicer`` (Slicer's Python with Slicer's site-packages, no GUI)."""
    found = shutil.which("PythonSlicer")
    if found:
        return found
    # Same fallback as slicer.util._executePythonModule: next to the interpreter.
    candidate = os.path.join(os.path.dirname(sys.executable), "PythonSlicer")
    if os.name == "nt":
        candidate += ".exe"
    if not os.path.exists(candidate):
        raise RuntimeError("PythonSlicer executable not found; is this a complete Slicer installation?")
    return candidate


def killProcessTree(proc) -> None:
    """Kill ``proc`` and its children.

    ``PythonSlicer`` is a launcher that starts the real interpreter as a child,
    so killing only ``proc`` would leave the computation running
    (MONAIAuto3DSeg's comment on ``proc.kill()``). psutil, when present, finds
    the children; without it we can only kill the launcher.
    """
    if proc is None or proc.poll() is not None:
        return
    try:
        import psutil
    except ImportError:
        _log.warning("psutil is not available: only the launcher process can be stopped")
        proc.kill()
        return
    try:
        parent = psutil.Process(proc.pid)
        for child in parent.children(recursive=True):
            child.kill()
        parent.kill()
    except psutil.NoSuchProcess:
        pass  # ended on its own meanwhile


def logWorkerLine(line: str) -> None:
    """One line of worker output into Slicer's log, at the level its prefix says."""
    if line.startswith(ERROR_PREFIX):
        _log.error("%s", line)
    elif line.startswith(WARNING_PREFIX):
        _log.warning("%s", line)
    elif line.strip():
        _log.info("worker: %s", line)


class BackgroundWorker:
    """One worker process, observed from the Qt event loop.

    Args:
        command: Full command line (``worker_protocol.worker_command``).
        plan: Stage weights for the overall progress fraction.
        cwd: Working directory; the folder holding ``AnatomyINRLib``.
        onProgress: ``(overallFraction, stageLabel, event)`` on every progress line.
        onFinished: Called once with the outcome (success, failure or cancel).
        onLog: Optional, receives every non-progress output line.
    """

    POLL_INTERVAL_MS = 100
    # A worker silent this long is hung (progress arrives every few seconds even on CPU):
    # it is stopped and the run reported as failed rather than waiting forever.
    SILENCE_TIMEOUT_S = 600.0

    def __init__(
        self,
        command: Sequence[str],
        plan: StagePlan,
        cwd: str,
        onProgress: Callable[[float, str, ProgressEvent], None],
        onFinished: Callable[[WorkerOutcome], None],
        onLog: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.command = list(command)
        self.cwd = cwd
        self.run = WorkerRun(plan)
        self.onProgress = onProgress
        self.onFinished = onFinished
        self.onLog = onLog
        self._proc = None
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._streamEnded = False
        self._done = False
        self._lastOutput = time.monotonic()

    @property
    def isRunning(self) -> bool:
        """True from ``start`` until ``onFinished`` has been called."""
        return self._proc is not None and not self._done

    def start(self) -> None:
        """Launch the process and begin polling; returns immediately."""
        _log.info("Starting worker: %s", " ".join(self.command))
        self._proc = slicer.util.launchConsoleProcess(self.command, updateEnvironment=WORKER_ENVIRONMENT, cwd=self.cwd)
        self._lastOutput = time.monotonic()
        threading.Thread(target=pump_lines, args=(self._proc.stdout, self._lines), daemon=True).start()
        qt.QTimer.singleShot(self.POLL_INTERVAL_MS, self._poll)

    def cancel(self) -> None:
        """Stop the process; ``onFinished`` then reports a cancelled outcome."""
        if self._done:
            return
        self.run.cancel_requested = True
        killProcessTree(self._proc)

    def _drain(self) -> None:
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            if line is None:
                self._streamEnded = True
                return
            self._lastOutput = time.monotonic()
            event = self.run.feed(line)
            if event is not None:
                self.onProgress(self.run.plan.overall, self.run.plan.stage_label(event), event)
            else:
                logWorkerLine(line.rstrip())
                if self.onLog is not None:
                    self.onLog(line.rstrip())

    def _poll(self) -> None:
        if self._done:
            return
        self._drain()
        silent = time.monotonic() - self._lastOutput
        if silent > self.SILENCE_TIMEOUT_S and self.run.stalled_seconds is None and not self.run.cancel_requested:
            _log.error("The worker wrote nothing for %.0f s; stopping it", silent)
            self.run.stalled_seconds = silent
            killProcessTree(self._proc)
        exited = self._proc.poll() is not None
        # After a cancel do not wait for end-of-stream: a surviving grandchild (no psutil)
        # may keep the pipe open, and its output no longer matters.
        if exited and (self._streamEnded or self.run.cancel_requested or self.run.stalled_seconds is not None):
            self._done = True
            self.onFinished(self.run.outcome(self._proc.returncode))
            return
        qt.QTimer.singleShot(self.POLL_INTERVAL_MS, self._poll)

    def waitForCompletion(self) -> WorkerOutcome:
        """Block (processing Qt events) until finished; for tests and batch mode."""
        outcomes: list[WorkerOutcome] = []
        userCallback = self.onFinished
        self.onFinished = lambda outcome: (outcomes.append(outcome), userCallback(outcome))
        if self._proc is None:
            self.start()
        while not outcomes:
            slicer.app.processEvents()
            time.sleep(0.02)
        return outcomes[0]


def startWorkerJob(subcommand: str, arguments: Sequence[str], stages: Sequence[tuple[str, float]], folder: str,
                   readResult: Callable, applyResult: Callable, onProgress: Callable,
                   onFinished: Callable, onLog: Optional[Callable[[str], None]] = None) -> BackgroundWorker:
    """Run ``PythonSlicer -m AnatomyINRLib <subcommand> <arguments>`` on the files of ``folder``.

    When the process ends, ``readResult()`` and ``applyResult(result)`` run on the
    main thread only after a successful exit (so a failed or cancelled run leaves
    the scene untouched), ``folder`` is deleted, and ``onFinished(outcome, result)``
    is called (``result`` None unless everything succeeded). See
    ``worker_protocol.complete_run``.
    """
    command = worker_command(pythonSlicerExecutable(), subcommand, arguments)

    def finished(outcome: WorkerOutcome) -> None:
        outcome, result = complete_run(outcome, readResult, applyResult, lambda: shutil.rmtree(folder, ignore_errors=True))
        onFinished(outcome, result)

    worker = BackgroundWorker(command, StagePlan(stages), library_search_dir(), onProgress, finished, onLog)
    worker.start()
    return worker
