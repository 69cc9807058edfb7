"""A horizontal bar chart of estimated costs, one row per provider (docs/architecture.md, "GUI"):
people compare prices faster by looking than by reading.

The chart only paints what it is given (:class:`CostBar`: the label, the cost and its words,
whether it is the chosen one, whether it can run the job and why not); the page works the bars
out. The chosen bar is drawn in the palette's highlight colour with a check mark and a bold
label; a provider that cannot run the job is greyed and hatched, with why on a second line, its
tooltip and the accessible description (which lists every value for a screen reader). Up and
Down move between rows, Enter or a click emits :attr:`CostChart.bar_activated`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFocusEvent,
    QFont,
    QFontMetrics,
    QHelpEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

__all__ = ["CostBar", "CostChart"]

_PAD = 4  # around the chart and between a row's parts (px)
_CHECK = "✓ "


@dataclass(frozen=True)
class CostBar:
    """One provider's row: ``usd`` None draws no bar (its ``value_text`` says why)."""

    key: str
    label: str
    usd: float | None
    value_text: str
    chosen: bool = False
    eligible: bool = True
    why: str = ""  # why it cannot run the job (or, eligible, why it was not chosen)

    def spoken(self) -> str:
        """The row in words (tooltip and screen reader)."""
        if not self.eligible:
            return f"{self.label}: cannot run it" + (f" — {self.why}" if self.why else "")
        text = f"{self.label}: {self.value_text}"
        if self.chosen:
            return f"{text}, chosen"
        return text + (f" — {self.why}" if self.why else "")


class CostChart(QWidget):
    """Estimated cost per provider as horizontal bars (see the module's text)."""

    #: A row was clicked or Enter pressed on it: the bar's key.
    bar_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("cost-chart")
        self.setAccessibleName("Estimated cost per provider")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(False)
        self._bars: list[CostBar] = []
        self._current = -1
        self.set_bars([])

    # -- data ------------------------------------------------------------------------------

    def set_bars(self, bars: Sequence[CostBar]) -> None:
        bars = list(bars)
        if bars == self._bars and self._bars:
            return
        if [b.key for b in bars] != [b.key for b in self._bars]:
            self._current = -1
            self.setAccessibleName("Estimated cost per provider")
        self._bars = bars
        if bars:
            self.setAccessibleDescription("; ".join(b.spoken() for b in bars) + ".")
        else:
            self.setAccessibleDescription("No providers to compare.")
        self.setToolTip("")
        self.updateGeometry()
        self.update()

    def bars(self) -> list[CostBar]:
        return list(self._bars)

    def current(self) -> CostBar | None:
        return self._bars[self._current] if 0 <= self._current < len(self._bars) else None

    # -- geometry --------------------------------------------------------------------------

    def _line_height(self) -> int:
        return self.fontMetrics().height() + 2 * _PAD

    def _why_shown(self, bar: CostBar) -> bool:
        """An ineligible bar has a second line under it: why it cannot run the job."""
        return not bar.eligible and bool(bar.why)

    def _row_heights(self) -> list[int]:
        line = self._line_height()
        small = self._small_metrics().height() + _PAD
        return [line + (small if self._why_shown(b) else 0) for b in self._bars]

    def sizeHint(self) -> QSize:
        height = sum(self._row_heights()) if self._bars else self._line_height()
        return QSize(320, height + 2 * _PAD)

    def minimumSizeHint(self) -> QSize:
        return QSize(160, self.sizeHint().height())

    def row_rect(self, row: int) -> QRect:
        heights = self._row_heights()
        return QRect(0, _PAD + sum(heights[:row]), self.width(), heights[row])

    def row_at(self, pos: QPoint) -> int:
        top = _PAD
        for row, height in enumerate(self._row_heights()):
            if top <= pos.y() < top + height:
                return row
            top += height
        return -1

    def _small_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.9))
        return font

    def _small_metrics(self) -> QFontMetrics:
        return QFontMetrics(self._small_font())

    def _columns(self) -> tuple[int, int, int]:
        """The label column's width, the bar area's left edge and its width."""
        fm = self.fontMetrics()
        width = self.width() - 2 * _PAD
        bold = QFont(self.font())
        bold.setBold(True)
        bfm = QFontMetrics(bold)  # (the chosen label is bold)
        widest = max((bfm.horizontalAdvance(_CHECK + b.label) for b in self._bars), default=0)
        label_w = min(widest + 2 * _PAD, int(width * 0.4))
        value_w = max((fm.horizontalAdvance(b.value_text) for b in self._bars), default=0)
        value_w = min(value_w + 2 * _PAD, int(width * 0.3))
        left = _PAD + label_w
        return label_w, left, max(0, width - label_w - value_w)

    # -- painting --------------------------------------------------------------------------

    def colours(self, bar: CostBar) -> tuple[QColor, QBrush]:
        """The label colour and the bar's brush of ``bar`` (from the palette)."""
        pal = self.palette()
        if not bar.eligible:
            grey = pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
            return grey, QBrush(grey, Qt.BrushStyle.BDiagPattern)
        if bar.chosen:
            return pal.color(QPalette.ColorRole.Text), QBrush(
                pal.color(QPalette.ColorRole.Highlight)
            )
        other = QColor(pal.color(QPalette.ColorRole.Highlight))
        other.setAlphaF(0.4)
        return pal.color(QPalette.ColorRole.Text), QBrush(other)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, p: QPainter) -> None:
        pal = self.palette()
        fm = self.fontMetrics()
        if not self._bars:
            p.setPen(pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No providers to compare")
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        label_w, left, area = self._columns()
        top = max((b.usd or 0.0 for b in self._bars), default=0.0)
        bold = QFont(self.font())
        bold.setBold(True)
        line_h = self._line_height()
        for row, bar in enumerate(self._bars):
            whole = self.row_rect(row)
            rect = QRect(whole.left(), whole.top(), whole.width(), line_h)
            text_colour, brush = self.colours(bar)
            if row == self._current and self.hasFocus():
                p.fillRect(whole, pal.color(QPalette.ColorRole.AlternateBase))
                focus = QPen(pal.color(QPalette.ColorRole.Highlight))
                focus.setStyle(Qt.PenStyle.DotLine)
                p.setPen(focus)
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRect(whole.adjusted(0, 0, -1, -1))
            label = (_CHECK if bar.chosen else "") + bar.label
            p.setFont(bold if bar.chosen else self.font())
            p.setPen(text_colour)
            label_rect = QRect(_PAD, rect.top(), label_w - _PAD, rect.height())
            p.drawText(
                label_rect,
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                p.fontMetrics().elidedText(label, Qt.TextElideMode.ElideRight, label_rect.width()),
            )
            p.setFont(self.font())
            bar_h = max(4, rect.height() - 2 * _PAD)
            if bar.usd is not None:
                length = 2 if top <= 0 else max(2, round(area * bar.usd / top))
                body = QRect(left, rect.top() + _PAD, length, bar_h)
                p.setPen(Qt.PenStyle.NoPen if bar.eligible else QPen(text_colour))
                p.setBrush(brush)
                p.drawRect(body)
                value_rect = QRect(left + length + _PAD, rect.top(), self.width(), rect.height())
                value = bar.value_text
            else:
                value_rect = QRect(left, rect.top(), self.width() - left - _PAD, rect.height())
                value = bar.value_text
            p.setPen(text_colour)
            p.drawText(
                value_rect.adjusted(0, 0, -_PAD, 0),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                fm.elidedText(
                    value, Qt.TextElideMode.ElideRight, max(0, value_rect.width() - _PAD)
                ),
            )
            if self._why_shown(bar):  # (a second line: why it cannot run the job)
                small = self._small_font()
                p.setFont(small)
                why_rect = QRect(
                    left,
                    rect.bottom() + 1,
                    self.width() - left - _PAD,
                    whole.bottom() - rect.bottom(),
                )
                p.drawText(
                    why_rect,
                    Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft,
                    QFontMetrics(small).elidedText(
                        f"Cannot run it: {bar.why}", Qt.TextElideMode.ElideRight, why_rect.width()
                    ),
                )
                p.setFont(self.font())

    # -- interaction -----------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            row = self.row_at(event.pos())
            if row < 0:
                QToolTip.hideText()
                event.ignore()
                return True
            QToolTip.showText(event.globalPos(), self.tooltip(row), self, self.row_rect(row))
            return True
        return super().event(event)

    def tooltip(self, row: int) -> str:
        bar = self._bars[row]
        lines = [bar.spoken()]
        if bar.eligible and not bar.chosen:
            lines.append("Click to select it in the list below")
        return "\n".join(lines)

    def _set_current(self, row: int) -> None:
        if row == self._current or not 0 <= row < len(self._bars):
            return
        self._current = row
        bar = self._bars[row]
        # (what a screen reader says as the user moves along the rows)
        self.setAccessibleName(f"Estimated cost per provider: {bar.spoken()}")
        self.update()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Down, Qt.Key.Key_Up) and self._bars:
            step = 1 if key == Qt.Key.Key_Down else -1
            start = 0 if self._current < 0 else self._current + step
            self._set_current(max(0, min(len(self._bars) - 1, start)))
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            bar = self.current()
            if bar is not None:
                self.bar_activated.emit(bar.key)
                return
        super().keyPressEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        row = self.row_at(event.position().toPoint())
        if row >= 0 and event.button() == Qt.MouseButton.LeftButton:
            self._set_current(row)
            self.bar_activated.emit(self._bars[row].key)
            return
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self.row_at(event.position().toPoint()) >= 0:
            event.accept()  # (the press acted on the row)
            return
        super().mouseReleaseEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:
        if self._current < 0 and self._bars:
            self._set_current(0)
        self.update()
        super().focusInEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        self.update()
        super().focusOutEvent(event)
