"""A persistent worker (``anatomy-inr serve``) polled from the Qt event loop, for live refit.

A one-shot run pays a new ``PythonSlicer`` and a torch import (about 4 s on two
cores) before it fits; a point edit cannot. :class:`PersistentWorker` starts the
server once and sends it requests (``serve_protocol.ServeSession``); each request
is a :class:`LiveJob`, which behaves like ``runner.BackgroundWorker`` for the Logic
(``isRunning``, ``cancel``, ``waitForCompletion``) and finishes like
``runner.startWorkerJob`` (result read and applied only after a successful exit,
its folder deleted, then ``onFinished(outcome, result)``).

The server needs a stdin pipe, which ``slicer.util.launchConsoleProcess`` does not
give, so it is started with ``subprocess`` in Slicer's startup environment (what
``launchConsoleProcess`` does). A server that dies fails its pending requests and
is restarted by the next request; one silent for ``SILENCE_TIMEOUT_S`` while a
request is pending is stopped (watchdog).
"""

from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import threading
import time
from typing import Callable, Optional, Sequence

import qt
import slicer

from AnatomyINRSlicerLib.runner import killProcessTree, logWorkerLine, pythonSlicerExecutable
from AnatomyINRSlicerLib.serve_protocol import ServeSession, serve_command
from AnatomyINRSlicerLib.worker_protocol import (WORKER_ENVIRONMENT, WorkerOutcome, complete_run, library_search_dir,
                                                 pump_lines)

_log = logging.getLogger(__name__)


class LiveJob:
    """One request to the persistent worker (``isRunning`` until ``onFinished`` has run)."""

    def __init__(self, server: "PersistentWorker", requestId: int, finish: Callable[[WorkerOutcome], None]) -> None:
        self.server, self.requestId, self._finish = server, requestId, finish
        self.outcome: Optional[WorkerOutcome] = None

    @property
    def isRunning(self) -> bool:
        return self.outcome is None

    def cancel(self) -> None:
        """Ask the server to stop this request (it rolls back its outputs; the server stays up)."""
        if self.isRunning:
            self.server.cancel(self.requestId)

    def finished(self, outcome: WorkerOutcome) -> None:
        self.outcome = outcome
        self._finish(outcome)

    def waitForCompletion(self) -> WorkerOutcome:
        """Block (processing Qt events) until finished; for tests and batch mode."""
        while self.isRunning:
            slicer.app.processEvents()
            time.sleep(0.02)
        return self.outcome


class PersistentWorker:
    """``PythonSlicer -m AnatomyINRLib serve``, kept alive between requests.

    Args:
        threads: CPU threads of the server (default: cores - 1).
        onLog: Receives every non-progress line (request logs and server output).
    """

    POLL_INTERVAL_MS = 50
    SILENCE_TIMEOUT_S = 600.0

    def __init__(self, threads: Optional[int] = None, onLog: Optional[Callable[[str], None]] = None) -> None:
        self.threads, self.onLog = threads, onLog
        self._proc = None
        self._session = ServeSession()
        self._jobs: dict = {}  # request ID -> (LiveJob, onProgress)
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._lastOutput = time.monotonic()
        self._polling = False

    @property
    def isAlive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server if it is not running (returns at once; requests queue until it is ready)."""
        if self.isAlive:
            return
        environment = dict(slicer.util.startupEnvironment(), **WORKER_ENVIRONMENT)
        command = serve_command(pythonSlicerExecutable(), self.threads)
        _log.info("Starting persistent worker: %s", " ".join(command))
        self._session, self._lines = ServeSession(), queue.Queue()
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      env=environment, cwd=library_search_dir(), text=True, encoding="utf-8")
        threading.Thread(target=pump_lines, args=(self._proc.stdout, self._lines), daemon=True).start()
        self._lastOutput = time.monotonic()
        self._schedulePoll()

    def submit(self, argv: Sequence[str], stages: Sequence[tuple[str, float]], onProgress: Callable,
               onFinished: Callable[[WorkerOutcome], None]) -> LiveJob:
        """Send one request (``argv``: a subcommand and its arguments); returns its job at once."""
        self.start()
        requestId, line = self._session.request(argv, stages)
        job = LiveJob(self, requestId, onFinished)
        self._jobs[requestId] = (job, onProgress)
        if not self._write(line):
            self._serverEnded()
        return job

    def cancel(self, requestId: int) -> None:
        line = self._session.cancel(requestId)
        if line is not None:
            self._write(line)

    def stop(self) -> None:
        """End the server: pending requests are cancelled, then input closes (it exits after rolling back)."""
        for requestId in list(self._jobs):
            self.cancel(requestId)
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                killProcessTree(proc)
        self._finishAll("The persistent worker was stopped.")

    def _write(self, line: str) -> bool:
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def _schedulePoll(self) -> None:
        if not self._polling:
            self._polling = True
            qt.QTimer.singleShot(self.POLL_INTERVAL_MS, self._poll)

    def _poll(self) -> None:
        self._polling = False
        if self._proc is None:
            return
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._serverEnded()
                return
            self._lastOutput = time.monotonic()
            self._dispatch(line)
        if self._jobs and time.monotonic() - self._lastOutput > self.SILENCE_TIMEOUT_S:
            _log.error("The persistent worker wrote nothing for %.0f s; stopping it", self.SILENCE_TIMEOUT_S)
            killProcessTree(self._proc)
            self._proc = None
            self._finishAll(f"The worker process stopped responding (no output for {self.SILENCE_TIMEOUT_S:.0f} s) "
                            "and was stopped; nothing was changed in the scene.")
            return
        self._schedulePoll()

    def _dispatch(self, line: str) -> None:
        event = self._session.feed(line)
        if event.kind in ("log", "other") and event.text:
            logWorkerLine(event.text)
            if self.onLog is not None:
                self.onLog(event.text)
        entry = self._jobs.get(event.request_id)
        if entry is None:
            return
        job, onProgress = entry
        if event.kind == "progress":
            onProgress(event.overall, event.stage_label, event.progress)
        elif event.kind == "done":
            del self._jobs[event.request_id]
            job.finished(event.outcome)

    def _serverEnded(self) -> None:
        code = self._proc.poll() if self._proc is not None else None
        self._proc = None
        self._finishAll(f"The persistent worker ended unexpectedly (exit code {code}); see the log.")

    def _finishAll(self, message: str) -> None:
        for requestId, outcome in self._session.abandon(message):
            entry = self._jobs.pop(requestId, None)
            if entry is not None:
                entry[0].finished(outcome)


def submitLiveJob(server: PersistentWorker, subcommand: str, arguments: Sequence[str],
                  stages: Sequence[tuple[str, float]], folder: str, readResult: Callable, applyResult: Callable,
                  onProgress: Callable, onFinished: Callable) -> LiveJob:
    """``runner.startWorkerJob`` through the persistent worker: same completion, same cleanup."""

    def finished(outcome: WorkerOutcome) -> None:
        outcome, result = complete_run(outcome, readResult, applyResult, lambda: shutil.rmtree(folder, ignore_errors=True))
        onFinished(outcome, result)

    return server.submit([subcommand, *arguments], stages, onProgress, finished)


class LiveRefit:
    """When to refit while points are edited: a preview at once, full quality once edits pause.

    ``startRun(quality)`` (``"preview"`` or ``"full"``) starts a run and returns its job,
    or None when it cannot start; the widget calls :meth:`edited` on every point edit and
    :meth:`finished` when a run it started ends. An edit cancels the request it
    supersedes (preview or full), so the server never works on stale points.
    """

    PREVIEW_DELAY_MS = 250  # gathers the events of one drag step into one request
    FULL_DELAY_MS = 1500  # the full-quality fit starts once edits paused this long after a preview

    def __init__(self, startRun: Callable[[str], object]) -> None:
        self._startRun = startRun
        self.job = None
        self.previewTimer = self._timer(self.PREVIEW_DELAY_MS, self._preview)
        self.fullTimer = self._timer(self.FULL_DELAY_MS, self._full)

    @staticmethod
    def _timer(interval: int, slot: Callable) -> "qt.QTimer":
        timer = qt.QTimer()
        timer.setSingleShot(True)
        timer.interval = interval
        timer.connect("timeout()", slot)
        return timer

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.isRunning

    def edited(self) -> None:
        """The points changed: drop the pending full fit, cancel a stale run, preview soon."""
        self.fullTimer.stop()
        if self.running:
            self.job.cancel()
        self.previewTimer.start()

    def finished(self, quality: str, outcome: WorkerOutcome) -> None:
        """A run ended: after a good preview (and no newer edit) the full fit follows."""
        if quality == "preview" and outcome.ok and not self.previewTimer.isActive():
            self.fullTimer.start()

    def stop(self) -> None:
        self.previewTimer.stop()
        self.fullTimer.stop()
        if self.running:
            self.job.cancel()

    def _preview(self) -> None:
        if self.running:  # a cancelled run is still rolling back: try again shortly
            self.previewTimer.start()
            return
        self.job = self._startRun("preview")

    def _full(self) -> None:
        if self.running:
            return  # an edit started a new preview meanwhile; its end restarts this timer
        self.job = self._startRun("full")
