"""The client side of ``anatomy-inr serve`` (the persistent worker), with no Qt and no Slicer.

Live refit cannot pay a new process and a torch import per moved point, so the
Surface from points module keeps one ``python -m AnatomyINRLib serve`` running and
sends it requests (see ``AnatomyINRLib/cli/serve.py`` for the protocol). This file
turns that conversation into the same objects a one-shot worker run produces:

- :meth:`ServeSession.request` / :meth:`ServeSession.cancel` give the JSON lines to
  write on the server's stdin;
- :meth:`ServeSession.feed` reads one stdout line and returns what it meant: the
  server is ready, a request's progress event, a log line, or a finished request
  with its :class:`~AnatomyINRSlicerLib.worker_protocol.WorkerOutcome` (same exit
  codes and messages as the command line);
- :meth:`ServeSession.abandon` fails every pending request when the server died.

The Qt side (reader thread, poll timer, process) is ``live.py``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from AnatomyINRSlicerLib.worker_protocol import (WORKER_PACKAGE, ProgressEvent, StagePlan, WorkerOutcome, WorkerRun,
                                                 parse_progress_line)


DEVICES = ("auto", "cpu", "cuda")  # the device choices a panel offers (the library's --device)


def default_threads() -> int:
    """CPU threads for a worker: all cores but one, so Slicer's GUI stays smooth (at least 1)."""
    return max(1, (os.cpu_count() or 2) - 1)


def serve_command(python: str, threads: Optional[int] = None) -> list[str]:
    """``[python, -m, AnatomyINRLib, serve, --threads, N]``."""
    return [str(python), "-m", WORKER_PACKAGE, "serve", "--threads", str(threads or default_threads())]


@dataclass(frozen=True)
class ServeEvent:
    """What one server line meant.

    Attributes:
        kind: ``"ready"``, ``"progress"``, ``"log"``, ``"done"`` or ``"other"`` (not for
            a pending request: launcher output, a crash traceback, a stale request).
        request_id: The request it belongs to (None for ``ready``/``other``).
        text: The log line (``log``/``other``).
        progress: The progress event (``progress``).
        overall: The request's overall fraction after a progress event.
        stage_label: ``"fit (2/4)"``-style label of the progress event's stage.
        outcome: How the request ended (``done``).
    """

    kind: str
    request_id: Any = None
    text: str = ""
    progress: Optional[ProgressEvent] = None
    overall: float = 0.0
    stage_label: str = ""
    outcome: Optional[WorkerOutcome] = None


class ServeSession:
    """State of one server's conversation: pending requests by ID, fed line by line."""

    def __init__(self) -> None:
        self.ready = False
        self._runs: dict[int, WorkerRun] = {}
        self._next_id = 0

    @property
    def pending(self) -> list[int]:
        """IDs of the requests sent and not finished, oldest first."""
        return list(self._runs)

    def request(self, argv: Sequence[str], stages: Sequence[tuple[str, float]]) -> tuple[int, str]:
        """A new request: ``(id, line to write)``; ``argv`` is a subcommand and its arguments."""
        self._next_id += 1
        self._runs[self._next_id] = WorkerRun(StagePlan(stages))
        argv = [str(a) for a in argv]
        if "--json-progress" not in argv:
            argv.append("--json-progress")  # harmless in the server; keeps the argv valid on the command line too
        return self._next_id, json.dumps({"id": self._next_id, "argv": argv})

    def cancel(self, request_id: int) -> Optional[str]:
        """The line cancelling a pending request (None if it already finished)."""
        run = self._runs.get(request_id)
        if run is None:
            return None
        run.cancel_requested = True
        return json.dumps({"cancel": request_id})

    def feed(self, line: str) -> ServeEvent:
        """Interpret one line of the server's stdout."""
        text = line.rstrip("\r\n")
        try:
            data = json.loads(text) if text.lstrip().startswith("{") else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return ServeEvent("other", text=text)
        if data.get("event") == "ready" and "id" not in data:
            self.ready = True
            return ServeEvent("ready")
        request_id = data.get("id")
        run = self._runs.get(request_id) if isinstance(request_id, int) else None
        if run is None:
            return ServeEvent("other", text=text)
        kind = data.get("event")
        if kind == "done":
            error = data.get("error")
            if isinstance(error, str) and error not in run.log_tail:
                run.feed(error)
            code = data.get("exit")
            del self._runs[request_id]
            return ServeEvent("done", request_id, outcome=run.outcome(code if isinstance(code, int) else None))
        if kind in ("log", "stdout"):
            message = str(data.get("message", ""))
            run.feed(message)
            return ServeEvent("log", request_id, text=message)
        progress = parse_progress_line(json.dumps({k: v for k, v in data.items() if k != "id"}))
        if progress is None:
            return ServeEvent("other", request_id, text=text)
        run.feed(json.dumps({"stage": progress.stage, "fraction": progress.fraction}))
        run.last_event = progress
        return ServeEvent("progress", request_id, progress=progress, overall=run.plan.overall,
                          stage_label=run.plan.stage_label(progress))

    def abandon(self, message: str) -> list[tuple[int, WorkerOutcome]]:
        """Fail every pending request (the server died); cancelled ones stay cancelled."""
        ended = []
        for request_id, run in self._runs.items():
            outcome = run.outcome(None)
            if not outcome.cancelled:
                outcome = WorkerOutcome(False, False, None, message, outcome.log_tail, outcome.warnings)
            ended.append((request_id, outcome))
        self._runs.clear()
        self.ready = False
        return ended
