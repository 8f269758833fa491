"""``anatomy-inr serve``: a persistent worker speaking JSON lines on stdin/stdout.

Starting Python and importing torch costs seconds on a small CPU; a Slicer
module that refits after every moved point cannot pay that each time. The
server pays it once and then runs any subcommand on request, exactly as the
command line would (same parser, same validation, same all-or-nothing
outputs, same exit codes).

Protocol (one JSON object per line; UTF-8):

- in:  ``{"id": ID, "argv": ["fit-points", "p.csv", "--output", "m.vtp", ...]}``
  runs a request; ``ID`` is any JSON string or number chosen by the client.
- in:  ``{"cancel": ID}`` cancels that request (running or queued); the server
  stays up.
- out: ``{"event": "ready", "version": ..., "pid": ...}`` once, when warm.
- out: the request's progress events, exactly those of ``--json-progress``
  plus ``"id"``: ``{"id", "stage", "fraction", "message", "metrics"}``.
- out: ``{"id", "event": "log", "message": LINE}`` for each line the request
  writes to stderr (warnings, the one-line error) and ``"event": "stdout"``
  for other output, so nothing corrupts the protocol.
- out: ``{"id", "event": "done", "exit": CODE, "error": LINE or null}`` ends
  every request, with the CLI's exit codes (0, 2, 3, 4, 5, 130).

A malformed request gets a ``done`` with exit 2 and never stops the server.
End of input stops it; SIGTERM/SIGINT stop it after the running request has
rolled back its outputs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import signal
import sys
import threading
import warnings
from typing import Any, Callable, Optional

from AnatomyINRLib import __version__
from AnatomyINRLib.cli.common import threads_arg


def register(sub) -> None:
    """Add the ``serve`` parser."""
    p = sub.add_parser("serve", help="persistent worker: JSON requests on stdin, JSON events on stdout",
                       description="Run subcommands on request without restarting Python (see the module docstring "
                                   "of AnatomyINRLib.cli.serve for the protocol).")
    p.add_argument("--threads", type=threads_arg, default=None, help="CPU threads (default: cores - 1, at least 1)")
    p.set_defaults(func=run, transactional=False)


class _Output:
    """Thread-safe JSON-line writer on the real stdout."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, obj: dict[str, Any]) -> None:
        line = json.dumps(obj, separators=(",", ":"), default=str)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


class _LineStream(io.TextIOBase):
    """A text stream turning each written line into a protocol event."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._buffer = ""
        self.last_line: Optional[str] = None

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            if line.strip():
                self.last_line = line
                self._emit(line)
        return len(text)

    def flush(self) -> None:
        if self._buffer.strip():
            self.last_line = self._buffer
            self._emit(self._buffer)
        self._buffer = ""


class _Requests:
    """Reader thread: queues requests, records cancellations as they arrive."""

    def __init__(self, stdin, out: _Output) -> None:
        self.queue: "queue.Queue[Optional[dict]]" = queue.Queue()
        self.cancelled: set = set()
        self._stdin = stdin
        self._out = out
        self._thread = threading.Thread(target=self._read, name="anatomy-inr-serve-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for raw in self._stdin:
            line = raw.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError as exc:
                self.queue.put({"id": None, "error": f"request: not valid JSON ({exc.msg})"})
                continue
            if isinstance(msg, dict) and "cancel" in msg and "argv" not in msg:
                self.cancelled.add(_key(msg["cancel"]))
            else:
                self.queue.put(msg if isinstance(msg, dict) else {"id": None, "error": "request: expected a JSON object"})
        self.queue.put(None)  # end of input


def _key(request_id: Any) -> str:
    return json.dumps(request_id, sort_keys=True)


def _check_request(msg: dict) -> Optional[str]:
    """Why a request cannot run, or None."""
    if msg.get("error"):
        return msg["error"]
    argv = msg.get("argv")
    if "id" not in msg:
        return "request: missing 'id'"
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return "request: 'argv' must be a non-empty list of strings (a subcommand and its arguments)"
    if argv[0] == "serve":
        return "request: 'serve' cannot run inside the server"
    return None


def _execute(argv: list, request_id: Any, out: _Output, cancelled: set) -> tuple[int, Optional[str]]:
    """Parse and run one request like the command line; returns (exit code, last stderr line)."""
    from AnatomyINRLib.cli import build_parser, run_parsed
    from AnatomyINRLib.core.progress import ProgressReporter

    def emit_progress(event) -> None:
        out.send({"id": request_id, **event.to_dict()})

    err = _LineStream(lambda line: out.send({"id": request_id, "event": "log", "message": line}))
    std = _LineStream(lambda line: out.send({"id": request_id, "event": "stdout", "message": line}))
    key = _key(request_id)
    reporter = ProgressReporter(emit_progress, should_cancel=lambda: key in cancelled)
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std), warnings.catch_warnings():
        warnings.simplefilter("always")  # a long-lived process must repeat each request's warnings
        try:
            args = build_parser().parse_args(argv)
            code = run_parsed(args, reporter)
        except SystemExit as exc:  # argparse: bad arguments (2) or --help (0)
            code = exc.code if isinstance(exc.code, int) else 2
    err.flush()
    std.flush()
    return code, (err.last_line if code else None)


class _Stop(Exception):
    """SIGTERM/SIGINT asked the server to stop."""


def run(args, progress) -> int:  # noqa: ARG001 - the server reports per request
    """Serve requests until end of input or a termination signal."""
    from AnatomyINRLib.core.device import configure_threads

    configure_threads(args.threads, interactive=args.threads is None)
    out = _Output(sys.stdout)
    requests = _Requests(sys.stdin, out)
    stopping = threading.Event()
    _install_stop_handlers(stopping)
    out.send({"event": "ready", "version": __version__, "pid": os.getpid()})
    while not stopping.is_set():
        msg = requests.queue.get()
        if msg is None:
            break
        request_id = msg.get("id")
        problem = _check_request(msg)
        if problem is not None:
            out.send({"id": request_id, "event": "done", "exit": 2, "error": f"anatomy-inr: error: {problem}"})
            continue
        if _key(request_id) in requests.cancelled:
            out.send({"id": request_id, "event": "done", "exit": 130, "error": "anatomy-inr: cancelled"})
            continue
        code, error = _execute(msg["argv"], request_id, out, requests.cancelled)
        requests.cancelled.discard(_key(request_id))
        out.send({"id": request_id, "event": "done", "exit": code, "error": error})
    return 130 if stopping.is_set() else 0


def _install_stop_handlers(stopping: threading.Event) -> None:
    """SIGTERM/SIGINT: unwind the running request (its outputs roll back), then stop."""
    from AnatomyINRLib.io.transaction import Terminated

    def handler(signum, frame):  # noqa: ARG001 - signal API
        stopping.set()
        raise Terminated(f"stopped by signal {signum}")

    for name in ("SIGTERM", "SIGINT"):
        if hasattr(signal, name) and threading.current_thread() is threading.main_thread():
            signal.signal(getattr(signal, name), handler)
