"""Fault injection for the crash tests: ``LENET5_FAULT=POINT[@TAG]:N`` kills the process at a named point.

Training calls :func:`fault_point` where a real crash would hurt most: ``mid-epoch`` (after
each batch), ``after-weights`` (weights written, resume state not yet) and ``mid-write``
(inside every atomic write, after the temp file is complete and before its rename; the tag
is the target file's name, so ``mid-write@state.pt:2`` means the second write of state.pt).
When the variable names a point, its N-th matching occurrence in this process ends the
process at once with ``os._exit``: no cleanup and no ``finally`` blocks, like a kill -9 or a
power cut. Without the variable each call is one environment lookup.
"""

from __future__ import annotations

import os
import sys
from collections import Counter

ENV = "LENET5_FAULT"
EXIT_CODE = 86  # distinctive, so a test can tell an injected crash from a real failure
POINTS = ("mid-epoch", "after-weights", "mid-write")
_seen: Counter[str] = Counter()


def fault_point(name: str, tag: str | None = None) -> None:
    """Crash here if ``LENET5_FAULT`` names this point (and tag) and this is its N-th occurrence."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    target, _, occurrence = spec.rpartition(":") if ":" in spec else (spec, "", "1")
    point, _, wanted_tag = target.partition("@")
    if point != name or (wanted_tag and wanted_tag != tag):
        return
    _seen[target] += 1
    if _seen[target] == int(occurrence):
        sys.stderr.write(f"lenet5: injected fault {target}:{occurrence}\n")
        sys.stderr.flush()
        os._exit(EXIT_CODE)
