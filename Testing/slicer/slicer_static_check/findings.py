"""What a check reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Finding:
    """One problem: where it is, which rule caught it, and why it is wrong.

    Attributes:
        path: File the problem is in (relative to the checked root when possible).
        line: 1-based line, 0 when the whole file is concerned.
        rule: Short rule id, e.g. ``util-missing`` or ``ui-object``.
        message: What is wrong and where the fact comes from.
    """

    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.message}"
