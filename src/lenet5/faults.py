"""Fault injection for the crash tests: ``LENET5_FAULT=POINT:N`` kills the process at a named point.

Training calls :func:`fault_point` at the places a real crash would hurt most (mid-epoch,
between writing the weights and the state, inside an atomic write before its rename). When
the environment variable names a point, its N-th occurrence in this process ends the process
at once with ``os._exit`` -- no cleanup, no ``finally`` blocks, like a power cut or a kill -9.
Without the variable every call is a dictionary lookup and nothing else.
"""

from __future__ import annotations

import os
import sys
from collections import Counter

ENV = "LENET5_FAULT"
EXIT_CODE = 86  # distinctive, so a test can tell an injected crash from a real failure
POINTS = ("mid-epoch", "after-weights", "mid-write")
_seen: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """Crash here if ``LENET5_FAULT`` is ``name:N`` and this is the N-th time ``name`` is reached."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, occurrence = spec.partition(":")
    if point != name:
        return
    _seen[name] += 1
    if _seen[name] == int(occurrence or 1):
        sys.stderr.write(f"lenet5: injected fault {name}:{_seen[name]}\n")
        sys.stderr.flush()
        os._exit(EXIT_CODE)
