"""Show worker progress and per-point results in the module panel.

The presenter only sets properties on the widgets it is given (``value``,
``text``, ``visible``), so it works with any ``QProgressBar``/``QLabel`` pair
and its text formatting is testable without Qt; ``qt`` is imported only by
:func:`fillDistanceTable`.
"""

from __future__ import annotations

from typing import Any, Mapping

from AnatomyINRSlicerLib.worker_protocol import ProgressEvent, WorkerOutcome

# Metrics worth showing while a fit runs, with their display format.
_SHOWN_METRICS = (("iteration", "iteration {:d}"), ("loss", "loss {:.4g}"), ("surface_mm", "surface error {:.3g} mm"))


def formatMetrics(metrics: Mapping[str, Any]) -> str:
    """``"iteration 200, loss 0.0123"`` from an event's metrics (unknown keys ignored)."""
    parts = []
    for key, pattern in _SHOWN_METRICS:
        value = metrics.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        try:
            parts.append(pattern.format(int(value) if pattern.endswith(":d}") else float(value)))
        except (ValueError, OverflowError):
            continue
    return ", ".join(parts)


def progressText(stageLabel: str, event: ProgressEvent) -> str:
    """Status line for one progress event: stage, message and metrics."""
    details = ", ".join(p for p in (event.message, formatMetrics(event.metrics)) if p)
    return f"{stageLabel}: {details}" if details else stageLabel


def outcomeText(outcome: WorkerOutcome) -> str:
    """The outcome's message, then one ``Warning: ...`` line per worker warning."""
    return "\n".join([outcome.message, *(f"Warning: {text}" for text in outcome.warnings)])


class ProgressPresenter:
    """Drives a progress bar (0..100) and a status label from worker events.

    Args:
        progressBar: A ``QProgressBar`` (or anything with ``value``/``visible``).
        statusLabel: A ``QLabel`` (or anything with ``text``).
    """

    def __init__(self, progressBar, statusLabel) -> None:
        self.progressBar = progressBar
        self.statusLabel = statusLabel

    def started(self, text: str) -> None:
        """A run begins."""
        self.progressBar.value = 0
        self.progressBar.visible = True
        self.statusLabel.text = text

    def update(self, overall: float, stageLabel: str, event: ProgressEvent) -> None:
        """One progress event arrived."""
        self.progressBar.value = int(round(100 * min(1.0, max(0.0, overall))))
        self.statusLabel.text = progressText(stageLabel, event)

    def finished(self, outcome: WorkerOutcome) -> None:
        """The run ended; the label keeps the outcome's message and the worker's warnings."""
        self.progressBar.visible = False
        self.statusLabel.text = outcomeText(outcome)


OUTLIER_BACKGROUND = (255, 190, 180)


def fillDistanceTable(table, rows, outlierText: str, keys=None) -> None:
    """Fill a 3-column ``QTableWidget`` with ``(label, distance mm, is outlier)`` rows.

    Distances are stored as numbers so that sorting by the column sorts by value;
    outlier rows get a light red background. ``keys[i]`` (e.g. the control point
    index of row i) is kept in the label item's ``Qt.UserRole``, so it survives sorting.
    """
    import qt

    table.sortingEnabled = False
    table.rowCount = len(rows)
    for row, (label, distance, outlier) in enumerate(rows):
        distanceItem = qt.QTableWidgetItem()
        distanceItem.setData(qt.Qt.DisplayRole, round(float(distance), 2))
        items = (qt.QTableWidgetItem(str(label)), distanceItem, qt.QTableWidgetItem(outlierText if outlier else ""))
        if keys is not None and row < len(keys):
            items[0].setData(qt.Qt.UserRole, keys[row])
        for column, item in enumerate(items):
            if outlier:
                item.setBackground(qt.QBrush(qt.QColor(*OUTLIER_BACKGROUND)))
            table.setItem(row, column, item)
    table.sortingEnabled = True


def fillTable(table, rows, highlighted=(), sortable: bool = True) -> None:
    """Fill a ``QTableWidget`` (columns set in the .ui) with rows of text or numbers.

    Numbers are stored as numbers (rounded to 2 decimals) so sorting by a column
    sorts by value; ``None`` shows as an empty cell. Rows whose index is in
    ``highlighted`` get the light red background used for outliers. A table whose
    row order means something (e.g. a list the user edits by row) passes
    ``sortable=False``.
    """
    import qt

    table.sortingEnabled = False
    table.rowCount = len(rows)
    for row, values in enumerate(rows):
        for column, value in enumerate(values):
            item = qt.QTableWidgetItem()
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                item.setData(qt.Qt.DisplayRole, round(float(value), 2))
            else:
                item.setText("" if value is None else str(value))
            if row in highlighted:
                item.setBackground(qt.QBrush(qt.QColor(*OUTLIER_BACKGROUND)))
            table.setItem(row, column, item)
    table.sortingEnabled = sortable
