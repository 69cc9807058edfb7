"""A read-only table of rows whose texts were worked out beforehand, tinted by a state.

The Running and Offers places show such tables: each row has one ``display`` text per column
(``data()`` only indexes), a state that picks a tint and an ink (colours for a light and a dark
palette: the colour is never the only sign, the words say it too), numbers right-aligned. A
subclass names its ``headers``, ``header_tips``, ``tints``, ``inks`` and ``right_columns``,
says how a row's state is read (:meth:`state_of`) and answers its own roles in
:meth:`role_data`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

__all__ = ["TintedRowsModel"]

DISPLAY = int(Qt.ItemDataRole.DisplayRole)
TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
ACCESSIBLE = int(Qt.ItemDataRole.AccessibleTextRole)
ALIGN = int(Qt.ItemDataRole.TextAlignmentRole)
BACKGROUND = int(Qt.ItemDataRole.BackgroundRole)
FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class TintedRowsModel(QAbstractTableModel):
    """Rows with a ``display`` tuple each, in ``self._rows``; see the module's text."""

    headers: ClassVar[tuple[str, ...]] = ()
    header_tips: ClassVar[tuple[str, ...]] = ()
    #: state -> (light, dark) colour of the row's background / text
    tints: ClassVar[dict[str, tuple[str, str]]] = {}
    inks: ClassVar[dict[str, tuple[str, str]]] = {}
    right_columns: ClassVar[frozenset[int]] = frozenset()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []
        #: Tint for a dark palette (the page sets it from its palette).
        self.dark = False

    def state_of(self, item: Any) -> str | None:
        """The state that picks a row's tint and ink."""
        return None

    def role_data(self, item: Any, column: int, role: int) -> Any:
        """A subclass's own roles (the tooltip, its user roles ...)."""
        return None

    def set_dark(self, dark: bool) -> None:
        if dark != self.dark:
            self.dark = dark
            if self._rows:
                self.dataChanged.emit(
                    self.index(0, 0),
                    self.index(len(self._rows) - 1, len(self.headers) - 1),
                    [BACKGROUND, FOREGROUND],
                )

    # -- QAbstractTableModel --------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        if parent is not None and parent.isValid():
            return 0
        return len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        if parent is not None and parent.isValid():
            return 0
        return len(self.headers)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = DISPLAY) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.headers):
            return None
        if role == DISPLAY:
            return self.headers[section]
        if role == TOOLTIP:
            return self.header_tips[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = DISPLAY) -> Any:
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if not (0 <= r < len(self._rows) and 0 <= c < len(self.headers)):
            return None
        item = self._rows[r]
        if role == DISPLAY:
            return item.display[c]
        if role == ACCESSIBLE:
            return f"{self.headers[c]}: {item.display[c]}"
        if role in (BACKGROUND, FOREGROUND):
            state = self.state_of(item)
            table = self.tints if role == BACKGROUND else self.inks
            colours = table.get(state) if state is not None else None
            if colours is None:
                return None
            return QBrush(QColor(colours[1] if self.dark else colours[0]))
        if role == ALIGN and c in self.right_columns:
            return RIGHT
        return self.role_data(item, c, role)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
