"""A one-line label that ends in "…" when it is too narrow, showing its whole text as a tooltip.

superqt's ``QElidingLabel`` does the same, but importing superqt imports qtpy, whose star
imports create every enum of QtCore, QtGui and QtWidgets: ~350 ms before the Remote GPU page's
cards could show (``benchmarks/startup_bench.py``, cards). The cards need only this; the
credential forms, opened later, keep using superqt.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    """A QLabel of one line that elides its text at the right to fit its width."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self._fitted: tuple[str, int] | None = None  # (text, width) of the elided text shown
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self._elide()

    def text(self) -> str:
        """The whole text, not the elided one on screen."""
        return self._full

    def elided_text(self) -> str:
        """What is shown now."""
        return super().text()

    def minimumSizeHint(self) -> QSize:
        return QSize(1, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        width = self.fontMetrics().horizontalAdvance(self._full)
        return QSize(width, super().sizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = self.contentsRect().width()
        if self._fitted == (self._full, width):
            return
        self._fitted = (self._full, width)
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, width)
        if shown != super().text():
            super().setText(shown)
