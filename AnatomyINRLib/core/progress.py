"""Progress events and cooperative cancellation.

Algorithms never print. They report ``Progress`` events through a callback; the
CLI turns them into JSON lines, Slicer into a progress bar, tests into a list.
Cancellation is cooperative: a callback may raise :class:`Cancelled`, or the
caller passes ``should_cancel`` which the reporter polls at every event.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from AnatomyINRLib.core.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """One progress event.

    Attributes:
        stage: Short machine-readable stage name ("sample", "fit", "extract"...).
        fraction: Completion of this stage in [0, 1].
        message: Human-readable text.
        metrics: Scalar values worth showing (loss, iteration...).
    """

    stage: str
    fraction: float
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; non-finite floats become None so the line stays valid JSON."""
        metrics = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in self.metrics.items()
        }
        return {
            "stage": self.stage,
            "fraction": round(float(self.fraction), 4),
            "message": self.message,
            "metrics": metrics,
        }

    def to_json(self) -> str:
        """One line of JSON (the ``--json-progress`` protocol)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))


ProgressCallback = Callable[[Progress], None]


class ProgressReporter:
    """Sends events to an optional callback and polls an optional cancel check.

    Args:
        callback: Receives every event; may raise :class:`Cancelled`.
        should_cancel: Returns True when the caller wants to stop.
    """

    def __init__(
        self,
        callback: Optional[ProgressCallback] = None,
        should_cancel: Optional[Callable[[], bool]] = None,
    ) -> None:
        self._callback = callback
        self._should_cancel = should_cancel

    @classmethod
    def wrap(
        cls,
        progress: "ProgressReporter | ProgressCallback | None",
        should_cancel: Optional[Callable[[], bool]] = None,
    ) -> "ProgressReporter":
        """Accept a reporter, a bare callback or None (the public API takes any).

        A reporter given together with ``should_cancel`` is wrapped so that both
        its own cancel check and ``should_cancel`` are honoured.
        """
        if isinstance(progress, ProgressReporter):
            if should_cancel is None:
                return progress
            return cls(progress._forward, should_cancel)
        return cls(progress, should_cancel)

    def _forward(self, event: Progress) -> None:
        """Re-emit an event through this reporter (callback, then its cancel check)."""
        self.report(event.stage, event.fraction, event.message, **event.metrics)

    def check_cancel(self) -> None:
        """Raise :class:`Cancelled` if the caller asked to stop."""
        if self._should_cancel is not None and self._should_cancel():
            raise Cancelled("cancelled by the caller")

    def report(self, stage: str, fraction: float, message: str = "", **metrics: Any) -> None:
        """Emit one event, then honour cancellation."""
        if self._callback is not None:
            frac = min(1.0, max(0.0, float(fraction)))
            self._callback(Progress(stage, frac, message, dict(metrics)))
        self.check_cancel()
