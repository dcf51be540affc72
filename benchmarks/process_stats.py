"""CPU time and memory of a process tree, read from Linux's /proc (no extra dependency).

``serve_load.py`` reads the server's own counters before and after each run, so "CPU per
request" is what the server processes spent, not what the load generator saw.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
UTIME_FIELD, STIME_FIELD = 13, 14  # 0-based fields of /proc/PID/stat after the command name
RSS_FIELD = 1  # of /proc/PID/statm, in pages


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive now."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                queue += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of ``pids`` (threads included), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited; its time is lost, which the caller sees as a smaller figure
        total += int(fields[UTIME_FIELD - 2]) + int(fields[STIME_FIELD - 2])
    return total / CLOCK_TICKS


def rss_bytes(pids: list[int]) -> int:
    """Resident memory of ``pids`` now, summed."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[RSS_FIELD]) * PAGE_BYTES
        except OSError:
            continue
    return total


class PeakMemory:
    """Samples the tree's summed RSS every ``interval`` seconds in a background thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval = pid, interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        pids = tree(self.pid)
        next_refresh = time.monotonic() + 1
        while not self._stop.wait(self.interval):
            if time.monotonic() > next_refresh:  # a restarted worker is a new pid
                pids, next_refresh = tree(self.pid), time.monotonic() + 1
            self.peak = max(self.peak, rss_bytes(pids))
