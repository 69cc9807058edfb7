"""The non-modal dialogs a page has open (docs/architecture.md, "GUI").

Dialogs are opened with ``open()`` and answered through signals, never ``exec()`` (which would
nest an event loop under qasync). A page keeps each open dialog here until it has finished, and
closes them all when the window closes.
"""

from __future__ import annotations

from collections.abc import Iterator

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QDialog

__all__ = ["OpenDialogs"]


class OpenDialogs:
    """Keeps a page's open dialogs alive until they finish; rejects them all on close."""

    def __init__(self) -> None:
        self._open: list[QObject] = []

    def __iter__(self) -> Iterator[QObject]:
        return iter(list(self._open))

    def keep(self, obj: QObject) -> None:
        self._open.append(obj)

    def forget(self, obj: QObject) -> None:
        """``obj`` has finished: let it go (deleted once the event loop is back)."""
        if obj in self._open:
            self._open.remove(obj)
            obj.deleteLater()

    def close_all(self) -> None:
        """Reject every open dialog (the window is closing) and let them all go."""
        for obj in list(self._open):
            if isinstance(obj, QDialog):
                obj.reject()
        for obj in list(self._open):
            self.forget(obj)
