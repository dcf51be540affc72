"""How many predictions one server process holds at once, and the one thread that computes them.

A request counts from the moment it is admitted (before its body is read) until its answer
is ready. Past ``max_in_flight`` the next one is refused at once with 503 and Retry-After,
instead of waiting in a queue that grows without limit. Admitted requests read their bodies
concurrently on the event loop. Small images are then analysed right there on the loop;
bigger ones one at a time on a single worker thread: a process with one torch thread gains
nothing from more, and one big decoded image at a time is what bounds the memory (see
:func:`limits.peak_memory_bound`).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, TypeVar

from fastapi.responses import JSONResponse

from .limits import DEFAULT_MAX_IN_FLIGHT, RETRY_AFTER_S

Result = TypeVar("Result")


class Admission:
    """The in-flight count of one process and its single prediction thread."""

    def __init__(self, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # changed only on the event loop's thread, so it needs no lock
        self._executor: ThreadPoolExecutor | None = None  # made on first use, again after close()

    def try_enter(self) -> bool:
        """Count one more request in flight, or say no when the bound is reached."""
        if self.in_flight >= self.max_in_flight:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1

    async def run(self, function: Callable[..., Result], *args: Any, inline: bool = False) -> Result:
        """``function(*args)`` on the prediction thread, awaited without blocking the event loop.

        With ``inline``, it runs right here on the event loop instead: for work of a
        millisecond or two, the hand-off to the thread (and the two threads taking turns at
        the GIL) costs more than the wait it saves the loop.
        """
        if inline:
            return function(*args)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lenet5-predict")
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(function, *args))

    def busy(self) -> JSONResponse:
        """503 for a request over the bound; its body is never read, so the connection closes."""
        return JSONResponse({"error": f"the server is busy: {self.max_in_flight} requests in flight per process; "
                                      f"retry after {RETRY_AFTER_S} s"},
                            status_code=503, headers={"Retry-After": str(RETRY_AFTER_S), "Connection": "close"})

    def close(self) -> None:
        """Stop the prediction thread (at the app's shutdown); a later request starts a new one."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

