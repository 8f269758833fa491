"""The client side of ``anatomy-inr serve`` (``serve_protocol.ServeSession``), with no Qt.

Lines as the server writes them (see ``AnatomyINRLib/cli/serve.py``) are fed in;
what comes out must match what a one-shot worker run would have produced.
"""

from __future__ import annotations

import json

from AnatomyINRSlicerLib.serve_protocol import ServeSession, default_threads, serve_command
from AnatomyINRSlicerLib.worker_protocol import FIT_POINTS_STAGES


def test_requests_get_increasing_ids_and_valid_json_lines():
    session = ServeSession()
    first, line = session.request(["fit-points", "p.csv", "--output", "m.vtp"], FIT_POINTS_STAGES)
    second, _ = session.request(["fit-points", "q.csv", "--output", "n.vtp", "--json-progress"], FIT_POINTS_STAGES)
    assert (first, second) == (1, 2) and session.pending == [1, 2]
    assert json.loads(line) == {"id": 1, "argv": ["fit-points", "p.csv", "--output", "m.vtp", "--json-progress"]}
    assert json.loads(session.cancel(2)) == {"cancel": 2} and session.cancel(7) is None


def test_progress_log_and_done_are_routed_to_their_request():
    session = ServeSession()
    assert session.feed('{"event": "ready", "version": "0.1", "pid": 42}').kind == "ready" and session.ready
    one, _ = session.request(["fit-points"], FIT_POINTS_STAGES)
    two, _ = session.request(["fit-points"], FIT_POINTS_STAGES)
    event = session.feed(json.dumps({"id": one, "stage": "fit", "fraction": 0.5, "message": "", "metrics": {"loss": 0.1}}))
    assert (event.kind, event.request_id, event.stage_label) == ("progress", one, "fit (2/4)")
    assert abs(event.overall - (0.02 + 0.82 * 0.5)) < 1e-9 and event.progress.metrics == {"loss": 0.1}
    warning = "anatomy-inr: warning: points: removed 1 duplicate point(s)"
    assert session.feed(json.dumps({"id": one, "event": "log", "message": warning})).text == warning
    done = session.feed(json.dumps({"id": one, "event": "done", "exit": 0, "error": None}))
    assert done.kind == "done" and done.outcome.ok and done.outcome.warnings == ("points: removed 1 duplicate point(s)",)
    error = "anatomy-inr: error: points: all points lie on a line; no closed surface can be fitted"
    session.feed(json.dumps({"id": two, "event": "log", "message": error}))
    failed = session.feed(json.dumps({"id": two, "event": "done", "exit": 2, "error": error}))
    assert not failed.outcome.ok and failed.outcome.message == (
        "The input was rejected: points: all points lie on a line; no closed surface can be fitted")
    assert session.pending == [] and session.feed(json.dumps({"id": two, "event": "done", "exit": 0})).kind == "other"


def test_cancel_and_a_dead_server_end_every_pending_request():
    session = ServeSession()
    one, _ = session.request(["fit-points"], FIT_POINTS_STAGES)
    two, _ = session.request(["fit-points"], FIT_POINTS_STAGES)
    three, _ = session.request(["fit-points"], FIT_POINTS_STAGES)
    session.cancel(one)
    cancelled = session.feed(json.dumps({"id": one, "event": "done", "exit": 130, "error": "anatomy-inr: cancelled"}))
    assert cancelled.outcome.cancelled and not cancelled.outcome.ok
    assert session.feed("Traceback (most recent call last):").kind == "other"
    session.cancel(three)
    ended = dict(session.abandon("The persistent worker ended unexpectedly (exit code 1); see the log."))
    assert set(ended) == {two, three} and ended[three].cancelled
    assert not ended[two].ok and not ended[two].cancelled and "ended unexpectedly" in ended[two].message
    assert not session.ready and session.pending == []


def test_serve_command_leaves_one_core_to_the_gui():
    assert serve_command("PythonSlicer", 3)[-4:] == ["AnatomyINRLib", "serve", "--threads", "3"]
    assert int(serve_command("PythonSlicer")[-1]) == default_threads() >= 1
