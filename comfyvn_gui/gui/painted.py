"""Waiting, on the GUI's asyncio loop, until a widget has been painted.

The window orders its start-up by what the user sees: the Remote GPU page's cards are painted
before the other pages are built and loaded (``MainWindow.start``), and the start-up probe of
``benchmarks/startup_bench.py`` reports when that happened. Work started in a worker thread
while Qt paints would hold the GIL the paint's Python callbacks need.
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QWidget

__all__ = ["next_paint"]


class _PaintWatcher(QObject):
    def __init__(self, painted: asyncio.Event) -> None:
        super().__init__()
        self._painted = painted

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self._painted.set()
        return False


async def next_paint(widget: QWidget, wait_s: float) -> bool:
    """Ask ``widget`` to repaint and return True once it has, or False after ``wait_s``
    seconds (a hidden or minimised window is not painted) or at once if it is not visible."""
    if not widget.isVisible():
        return False
    painted = asyncio.Event()
    watcher = _PaintWatcher(painted)
    widget.installEventFilter(watcher)
    try:
        widget.update()
        await asyncio.wait_for(painted.wait(), wait_s)
        return True
    except TimeoutError:
        return False
    finally:
        widget.removeEventFilter(watcher)
