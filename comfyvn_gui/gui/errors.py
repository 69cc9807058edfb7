"""Unexpected errors: log them and tell the user without a modal crash dump.

``ErrorReporter`` is installed as ``sys.excepthook`` (exceptions raised in Qt slots and in
qasync's ``@asyncSlot`` coroutines end there), as ``threading.excepthook`` and as the asyncio
loop's exception handler. It logs the full traceback with :mod:`logging` and emits
``error_reported`` with one short sentence, which the main window shows in its status bar.
The signal is thread-safe: a hook run in a worker thread reaches the window through Qt's
queued connection.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from comfyvn_gui.core.errors import ComfyVNError

if TYPE_CHECKING:  # (asyncio itself is imported after the window's first paint)
    import asyncio

log = logging.getLogger("comfyvn_gui.gui")

_MAX_MESSAGE = 200


def describe(exc_type: type[BaseException], exc: BaseException | None) -> str:
    """One line for the status bar: the domain error's own message, else type and message."""
    if isinstance(exc, ComfyVNError):
        text = exc.message
    else:
        detail = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else ""
        text = f"{exc_type.__name__}: {detail}" if detail else exc_type.__name__
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 1] + "…"
    return text


class ErrorReporter(QObject):
    """Routes unhandled exceptions to the log and to ``error_reported``."""

    error_reported = Signal(str)

    def __init__(self, log_file: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.log_file = log_file
        self._previous_sys: Any = None
        self._previous_threading: Any = None
        self._installed = False

    def message_for(self, exc_type: type[BaseException], exc: BaseException | None) -> str:
        where = f"the details are in {self.log_file}" if self.log_file else "see the log"
        return f"Something went wrong: {describe(exc_type, exc)} ({where})."

    def excepthook(
        self,
        exc_type: type[BaseException],
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """``sys.excepthook``: never raises, never blocks."""
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc or exc_type(), tb)
            return
        if exc is None:
            exc = exc_type()
        try:
            log.error("unhandled error: %s", describe(exc_type, exc), exc_info=(exc_type, exc, tb))
            self.error_reported.emit(self.message_for(exc_type, exc))
        except Exception:  # noqa: BLE001 - the hook of last resort must not raise itself
            sys.__excepthook__(exc_type, exc, tb)

    def _threading_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        self.excepthook(args.exc_type, args.exc_value, args.exc_traceback)

    def asyncio_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The asyncio loop's exception handler (e.g. a task's exception never retrieved)."""
        exc = context.get("exception")
        if isinstance(exc, BaseException):
            self.excepthook(type(exc), exc, exc.__traceback__)
        else:
            log.error("asyncio: %s", context.get("message", "unknown error"))

    def install(self) -> None:
        if self._installed:
            return
        self._previous_sys = sys.excepthook
        self._previous_threading = threading.excepthook
        sys.excepthook = self.excepthook
        threading.excepthook = self._threading_hook
        self._installed = True

    def uninstall(self) -> None:
        """Put back the hooks found at :meth:`install` (only if they are still ours)."""
        if not self._installed:
            return
        if sys.excepthook == self.excepthook:
            sys.excepthook = self._previous_sys
        if threading.excepthook == self._threading_hook:
            threading.excepthook = self._previous_threading
        self._installed = False
