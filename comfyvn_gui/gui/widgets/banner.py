"""The result banner the pages show above their content: success, information, warning or
error, with at most one action button (docs/architecture.md, "GUI")."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from comfyvn_gui.gui.palette import is_dark

__all__ = ["BANNER_COLOURS", "Banner"]

#: (foreground, background) per kind, on a light and on a dark palette.
BANNER_COLOURS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "ok": (("#1e4620", "#c8e6c9"), ("#c8e6c9", "#1e3a20")),
    "info": (("#0d3c61", "#d6eaf8"), ("#d6eaf8", "#12304a")),
    "warning": (("#5d4000", "#fff3cd"), ("#ffe08a", "#3d3000")),
    "error": (("#7a1010", "#fde2e2"), ("#ffb4ab", "#4a1212")),
}


class Banner(QFrame):
    """A one-line result above the form: success, warning or error, with optional actions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setAccessibleName("Result")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel(self)
        self.label.setObjectName("banner-text")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action = QPushButton(self)
        self.action.setObjectName("banner-action")
        self.action.setAccessibleName("Act on this result")
        self.action.hide()
        self._callback: Callable[[], None] | None = None
        self.action.clicked.connect(self._on_action)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action)
        self.kind = ""
        self.hide()

    def show_message(
        self,
        kind: str,
        text: str,
        *,
        action: str | None = None,
        callback: Callable[[], None] | None = None,
    ) -> None:
        """``kind``: ok | info | warning | error."""
        self.kind = kind
        self.setProperty("kind", kind)
        light, dark = BANNER_COLOURS.get(kind, BANNER_COLOURS["info"])
        fg, bg = dark if is_dark(self) else light
        # By this banner's own object name: a page may rename it ("review-banner" ...).
        self.setStyleSheet(
            f"QFrame#{self.objectName()} {{ background: {bg}; border-radius: 4px; }}"
            f" QLabel#banner-text {{ color: {fg}; }}"
        )
        self.label.setText(text)
        self.setAccessibleDescription(text)
        self._callback = callback
        if action and callback:
            self.action.setText(action)
            self.action.setAccessibleName(action)
            self.action.show()
        else:
            self.action.hide()
        self.show()

    def clear(self) -> None:
        self.kind = ""
        self.label.clear()
        self.action.hide()
        self._callback = None
        self.hide()

    def _on_action(self) -> None:
        if self._callback is not None:
            self._callback()
