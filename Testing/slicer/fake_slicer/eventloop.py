"""The fake Qt event loop: timers are plain Python callables run when a test pumps.

Slicer runs ``qt.QTimer`` callbacks from its event loop; here nothing runs on its
own. A test (or ``slicer.app.processEvents()``) calls :func:`processEvents`,
which runs every timer whose due time (real ``time.monotonic()``) has come, in
due order. :func:`pumpUntil` repeats that until a condition holds, so a worker
process polled by a timer is followed in real time.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Callable

_queue: list = []
_counter = itertools.count()


def schedule(delaySeconds: float, callback: Callable[[], None]) -> list:
    """Run ``callback`` at the first pump after ``delaySeconds``; returns a handle for :func:`cancel`."""
    entry = [time.monotonic() + max(0.0, delaySeconds), next(_counter), callback, True]
    heapq.heappush(_queue, entry)
    return entry


def cancel(entry: list) -> None:
    entry[3] = False


def processEvents() -> int:
    """Run the timers that are due (including ones they schedule with no delay); returns how many ran."""
    ran = 0
    while _queue and _queue[0][0] <= time.monotonic():
        _due, _n, callback, alive = heapq.heappop(_queue)
        if alive:
            callback()
            ran += 1
    return ran


def pending() -> int:
    """Number of timers still scheduled."""
    return sum(1 for entry in _queue if entry[3])


def pumpUntil(condition: Callable[[], bool], timeout: float = 120.0, step: float = 0.01) -> bool:
    """Pump events until ``condition()`` is true (returns True) or ``timeout`` seconds pass (False)."""
    end = time.monotonic() + timeout
    while True:
        processEvents()
        if condition():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(step)


def pump(seconds: float) -> None:
    """Pump events for ``seconds`` of real time."""
    pumpUntil(lambda: False, timeout=seconds)


def reset() -> None:
    """Drop every scheduled timer (between tests)."""
    _queue.clear()
