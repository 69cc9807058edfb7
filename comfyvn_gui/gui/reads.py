"""One page's read of the application's state, coalesced (docs/architecture.md, "GUI").

A page reads its state off the GUI thread (through the bridge) and shows it. Change
notifications come in bursts (a save touches several files; another process writes twice), so
a request made while a read runs does not start a second read: it makes the running one read
once more before it shows anything. The latest state is shown once, and a page never shows an
older read after a newer one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

from comfyvn_gui.core.errors import ComfyVNError
from comfyvn_gui.gui.bridge import ServiceBridge

__all__ = ["CoalescedRead"]

T = TypeVar("T")


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
        while True:
            self._again = False
            try:
                state = await self.bridge.call(self.read)
            except ComfyVNError as exc:
                if self.failed is None:
                    raise
                self.failed(exc)
                return
            if self._again:
                continue  # something changed while reading: read again, show once
            self.show(state)
            return
