"""``runner.BackgroundWorker`` (the Qt-polled worker) executed against the fake Slicer.

Real child processes; the fake event loop stands in for Qt's. Covers what only the
polled runner does: undecodable output through Slicer's text-mode pipe, and the
watchdog that stops a worker that has stopped talking.
"""

from __future__ import annotations

import sys

from fake_slicer import eventloop

from test_slicer_worker_protocol import _NOISY_CHILD


def _run(command, silenceTimeout=None):
    from AnatomyINRSlicerLib.runner import BackgroundWorker
    from AnatomyINRSlicerLib.worker_protocol import FIT_POINTS_STAGES, StagePlan

    outcomes, logged = [], []
    worker = BackgroundWorker(command, StagePlan(FIT_POINTS_STAGES), ".", lambda *a: None, outcomes.append,
                              onLog=logged.append)
    if silenceTimeout is not None:
        worker.SILENCE_TIMEOUT_S = silenceTimeout
    worker.start()
    assert eventloop.pumpUntil(lambda: bool(outcomes), timeout=60)
    return outcomes[0], logged


def test_undecodable_worker_output_does_not_hang_the_run(fakeSlicer):
    outcome, logged = _run([sys.executable, "-c", _NOISY_CHILD])
    assert outcome.ok and len(logged) == 2002 and logged[0] == "bad \ufffd\ufffd bytes" and logged[-1] == "last"


def test_watchdog_stops_a_silent_worker(fakeSlicer):
    outcome, _logged = _run([sys.executable, "-c", "print('started', flush=True); import time; time.sleep(60)"],
                            silenceTimeout=1.0)
    assert not outcome.ok and not outcome.cancelled and "stopped responding" in outcome.message, outcome.message
