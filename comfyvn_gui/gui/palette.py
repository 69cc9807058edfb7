"""Colours that follow the palette: whether a widget is dark, and the error red on it.

Shared by the pages' widgets (docs/architecture.md, "GUI"): one place decides what "dark" is.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

__all__ = ["error_color", "is_dark"]


def is_dark(widget: QWidget) -> bool:
    """Whether ``widget``'s palette is a dark one (its window colour is dark)."""
    return widget.palette().color(QPalette.ColorRole.Window).lightness() < 128


def error_color(widget: QWidget) -> QColor:
    """An accessible red for error text: darker on light windows, lighter on dark ones."""
    return QColor("#f28b82" if is_dark(widget) else "#d93025")
