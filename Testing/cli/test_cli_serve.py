"""``anatomy-inr serve``: the persistent worker's JSON-lines protocol, with real requests."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from AnatomyINRLib.phantoms import get_phantom

REPO = Path(__file__).resolve().parents[2]
FAST = ["--iterations", "30", "--spacing", "2.0", "--threads", "1"]


class Server:
    """A real ``python -m AnatomyINRLib serve`` child with line-level access."""

    def __init__(self, cwd: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "AnatomyINRLib", "serve", "--threads", "1"], cwd=cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: "queue.Queue[dict]" = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))  # every line must be JSON: the protocol is never corrupted

    def send(self, obj) -> None:
        self.proc.stdin.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
        self.proc.stdin.flush()

    def next(self, timeout: float = 120.0) -> dict:
        return self.lines.get(timeout=timeout)

    def until_done(self, request_id) -> list:
        events = []
        while True:
            event = self.next()
            events.append(event)
            if event.get("event") == "done" and event.get("id") == request_id:
                return events

    def close(self) -> int:
        self.proc.stdin.close()
        return self.proc.wait(timeout=60)


@pytest.fixture()
def workdir(tmp_path):
    pts = get_phantom("aaa").sample_surface(120, seed=0).points
    np.savetxt(tmp_path / "p.csv", pts, delimiter=",")
    return tmp_path


@pytest.fixture()
def server(workdir):
    srv = Server(workdir)
    assert srv.next()["event"] == "ready"
    yield srv
    if srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait()


def test_requests_run_like_the_command_line_and_bad_ones_never_kill_the_server(server, workdir):
    server.send({"id": "a", "argv": ["fit-points", "p.csv", "--output", "a.vtp", "--save-inr", "a.safetensors", *FAST]})
    events = server.until_done("a")
    assert events[-1] == {"id": "a", "event": "done", "exit": 0, "error": None}
    progress = [e for e in events if "stage" in e]
    assert progress and all(e["id"] == "a" and set(e) == {"id", "stage", "fraction", "message", "metrics"}
                            for e in progress)
    assert {"a.vtp", "a.safetensors", "a.json"} <= {p.name for p in workdir.iterdir()}

    server.send("not json")
    assert server.next() == {"id": None, "event": "done", "exit": 2,
                             "error": "anatomy-inr: error: request: not valid JSON (Expecting value)"}
    for bad in ({"id": 1, "argv": "fit-points"}, {"id": 2, "argv": []}, {"argv": ["demo"]}, {"id": 3, "argv": ["serve"]}):
        server.send(bad)
        done = server.next()
        assert done["event"] == "done" and done["exit"] == 2 and done["id"] == bad.get("id")
    server.send({"id": 4, "argv": ["fit-points", "missing.csv", "--output", "m.vtp"]})
    events = server.until_done(4)
    assert events[-1]["exit"] == 2 and "missing.csv" in events[-1]["error"]
    assert {"id": 4, "event": "log", "message": events[-1]["error"]} in events  # stderr arrives as events
    server.send({"id": 5, "argv": ["fit-points", "p.csv", "--output", "b.vtp", "--init-inr", "a.safetensors", *FAST]})
    assert server.until_done(5)[-1]["exit"] == 0  # still alive and warm-starting
    assert server.close() == 0


def test_cancel_a_running_request_then_keep_serving(server, workdir):
    (workdir / "c.vtp").write_text("the user's earlier mesh")
    server.send({"id": 7, "argv": ["fit-points", "p.csv", "--output", "c.vtp", "--iterations", "100000",
                                   "--threads", "1"]})
    while "stage" not in (event := server.next()):
        pass
    assert event["id"] == 7
    server.send({"cancel": 7})
    events = server.until_done(7)
    assert events[-1]["exit"] == 130
    assert (workdir / "c.vtp").read_text() == "the user's earlier mesh"
    assert sorted(p.name for p in workdir.iterdir()) == ["c.vtp", "p.csv"]  # no temporaries
    server.send({"id": 8, "argv": ["fit-points", "p.csv", "--output", "d.vtp", *FAST]})
    assert server.until_done(8)[-1]["exit"] == 0


def test_a_queued_request_can_be_cancelled_before_it_starts(server):
    server.send({"id": "long", "argv": ["fit-points", "p.csv", "--output", "l.vtp", "--iterations", "100000",
                                        "--threads", "1"]})
    server.send({"id": "queued", "argv": ["fit-points", "p.csv", "--output", "q.vtp", *FAST]})
    server.send({"cancel": "queued"})
    while "stage" not in server.next():
        pass
    server.send({"cancel": "long"})
    assert server.until_done("long")[-1]["exit"] == 130
    assert server.until_done("queued")[-1] == {"id": "queued", "event": "done", "exit": 130,
                                                "error": "anatomy-inr: cancelled"}


def test_sigterm_stops_the_server_and_rolls_the_running_request_back(server, workdir):
    (workdir / "t.vtp").write_text("keep me")
    server.send({"id": 9, "argv": ["fit-points", "p.csv", "--output", "t.vtp", "--iterations", "100000",
                                   "--threads", "1"]})
    while "stage" not in server.next():
        pass
    server.proc.send_signal(signal.SIGTERM)
    assert server.until_done(9)[-1]["exit"] == 130
    assert server.proc.wait(timeout=60) == 130
    assert (workdir / "t.vtp").read_text() == "keep me"
    assert sorted(p.name for p in workdir.iterdir()) == ["p.csv", "t.vtp"]
