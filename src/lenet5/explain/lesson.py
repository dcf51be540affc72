"""A worked example as printable steps plus the numbers behind them (for ``--json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Lesson:
    """One topic's worked example.

    ``lines`` are what a student reads; ``values`` are the computed numbers, keyed by name,
    that tests and tools check. Both come from the same computation.
    """

    topic: str
    title: str
    lines: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def say(self, *lines: str) -> None:
        self.lines.extend(lines)

    def to_text(self) -> str:
        rule = "=" * len(self.title)
        return "\n".join([self.title, rule, *self.lines]) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "title": self.title, "values": self.values, "lines": self.lines}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def number(value: float, digits: int = 4) -> str:
    """A float without trailing noise: 6.0 -> '6', 0.35000001 -> '0.35'."""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def vector(values: Sequence[float], digits: int = 4) -> str:
    return "[" + ", ".join(number(v, digits) for v in values) + "]"


def matrix(rows: Sequence[Sequence[float]], digits: int = 4, indent: str = "    ") -> list[str]:
    """Right-aligned rows, one line each, for printing a small 2-D tensor."""
    cells = [[number(v, digits) for v in row] for row in rows]
    width = max(len(c) for row in cells for c in row)
    return [indent + "  ".join(c.rjust(width) for c in row) for row in cells]
