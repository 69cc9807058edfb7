"""One page's read of the application's state, coalesced (docs/architecture.md, "GUI").

A page reads its state off the GUI thread (through the bridge) and shows it. Change
notifications come in bursts (a save touches several files; another process writes twice), so
a request made while a read runs does not start a second read: it makes the running one read
once more before it shows anything. The latest state is shown once, and a page never shows an
older read after a newer one.

Changes that never stop (20 jobs' drivers writing their progress while a read of 10,000 jobs
takes most of a second) would otherwise never let a read be shown: once a page has shown
nothing for :data:`MAX_WAIT_S` while its reads kept being overtaken, the read just made is
shown anyway (it is newer than what the page shows) and the next one starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from comfyvn_gui.core.errors import ComfyVNError
from comfyvn_gui.gui.bridge import ServiceBridge

__all__ = ["MAX_WAIT_S", "PACE_REST_S", "PACE_WORK_S", "CoalescedRead", "paced"]

#: The longest a page waits to show a read while changes keep overtaking its reads (seconds).
MAX_WAIT_S = 1.0

#: A long read in the pool pauses for PACE_REST_S after every PACE_WORK_S of work (:func:`paced`).
PACE_WORK_S = 0.004
PACE_REST_S = 0.001

T = TypeVar("T")


def paced(items: Iterable[T]) -> Iterator[T]:
    """``items``, with a pause of :data:`PACE_REST_S` after every :data:`PACE_WORK_S` spent
    between them: for a read in the pool that runs Python for a long time (parsing 10,000 jobs
    takes most of a second). While it holds the GIL, the GUI thread waits up to Python's
    switch interval each time it needs it, and a paint needs it many times over (reading
    10,000 jobs stalled the window up to 150 ms): the pauses let it run unhindered."""
    start = time.perf_counter()
    for item in items:
        yield item
        if time.perf_counter() - start >= PACE_WORK_S:
            time.sleep(PACE_REST_S)
            start = time.perf_counter()


class CoalescedRead(Generic[T]):
    """``read`` (blocking, in the bridge's pool) then ``show`` (on the GUI thread), one at a
    time. ``failed`` shows a domain error instead of showing state; without it the error
    ends the task (and reaches the window's error reporter)."""

    def __init__(
        self,
        bridge: ServiceBridge,
        read: Callable[[], T],
        show: Callable[[T], None],
        *,
        name: str,
        failed: Callable[[ComfyVNError], None] | None = None,
    ) -> None:
        self.bridge = bridge
        self.read = read
        self.show = show
        self.name = name
        self.failed = failed
        self.task: asyncio.Task[None] | None = None
        self._again = False
        self.shown = 0  # reads shown (a count: tests and benchmarks)

    @property
    def busy(self) -> bool:
        """A read (or the showing of it) is under way."""
        return self.task is not None and not self.task.done()

    def request(self) -> asyncio.Task[None]:
        """Read and show; joins a read under way (which then reads once more)."""
        if self.task is not None and not self.task.done():
            self._again = True
            return self.task
        self.task = self.bridge.spawn(self._run(), name=self.name)
        return self.task

    async def _run(self) -> None:
        waiting_since = time.monotonic()
        while True:
            self._again = False
            try:
                state = await self.bridge.call(self.read)
            except ComfyVNError as exc:
                if self.failed is None:
                    raise
                self.failed(exc)
                return
            if self._again and time.monotonic() - waiting_since < MAX_WAIT_S:
                continue  # something changed while reading: read again, show once
            self.show(state)
            self.shown += 1
            if not self._again:
                return
            waiting_since = time.monotonic()  # (changes keep coming: the next read)
