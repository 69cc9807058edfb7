"""Provider cards for the Remote GPU page: the card, the card list, the local GPU panel.

A card's GPU line carries the profile's "Min VRAM" floor; a provider's link metadata (an SSH
server's runbook and compliance pages) shows as links that open in the browser.

The widgets only render what :mod:`.provider_info` works out (no logic of their own):
:class:`ProviderCard`, :class:`ProviderList` (a filter above "Your providers" and "Add a
provider"; cards reused by key, filtered by hiding) and :class:`LocalPanel` (this computer's
GPUs, or plainly why there are none, and the keyring).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TypeVar, cast

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QShortcut,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from comfyvn_gui.core.checks import LocalSnapshot
from comfyvn_gui.gui.palette import is_dark
from comfyvn_gui.gui.widgets.elided import ElidedLabel

from .provider_info import BadgeState, CardInfo, badge_colors, gb_text, matches, zone_words

__all__ = ["LocalPanel", "ProviderCard", "ProviderList"]

_ENTER_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


def _tinted(name: str, state: BadgeState, dark: bool, extra: str) -> str:
    fg, bg = badge_colors(state, dark)
    return f"QLabel#{name} {{ color: {fg}; background-color: {bg}; {extra} }}"


def _label(text: str, name: str, parent: QWidget, *, bold: bool = False) -> QLabel:
    label = QLabel(text, parent)
    label.setObjectName(name)
    label.setTextFormat(Qt.TextFormat.PlainText)
    if bold:
        font = QFont(label.font())
        font.setBold(True)
        label.setFont(font)
    return label


_Box = TypeVar("_Box", QHBoxLayout, QVBoxLayout)


def _fill(box: _Box, *items: QWidget | QLayout | int) -> _Box:
    """Add widgets, layouts and spacings (an int; 0 = a stretch) to ``box``, in order."""
    for item in items:
        if isinstance(item, int) and item == 0:
            box.addStretch(1)
        elif isinstance(item, int):
            box.addSpacing(item)
        elif isinstance(item, QWidget):
            box.addWidget(item)
        else:
            box.addLayout(item)
    return box


class ProviderCard(QFrame):
    """One provider or template: title, badge, GPU, cost, policy and zones. Click to select."""

    activated = Signal(str)

    def __init__(self, info: CardInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("provider-card")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._selected = False
        self._dark = False
        self._styled: tuple[BadgeState, bool] | None = None
        self.title = _label("", "title", self, bold=True)
        self.badge = _label("", "badge", self)
        self.add_hint = _label("+ Add", "add-hint", self)
        self.subtitle = _label("", "subtitle", self)
        self.gpu = _label("", "gpu", self)
        self.cost = _label("", "cost", self)
        self.links = QLabel(self)
        self.links.setObjectName("links")
        self.links.setAccessibleName("Links")
        self.links.setTextFormat(Qt.TextFormat.RichText)
        self.links.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.links.setOpenExternalLinks(True)
        self.links.setWordWrap(True)
        self.links.hide()
        self.policy = ElidedLabel("", self)
        self.policy.setObjectName("policy")
        self._chips = QWidget(self)
        self._chips.setAccessibleName("Residency zones")
        self._chip_row = _fill(QHBoxLayout(self._chips), 0)
        self._chip_row.setContentsMargins(0, 0, 0, 0)
        self._chip_labels: list[QLabel] = []
        # The card narrows with the list: long lines wrap instead of widening it.
        for label in (self.title, self.subtitle, self.gpu, self.cost):
            label.setWordWrap(True)
        self.title.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.policy.setMinimumWidth(1)
        self.policy.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        head = _fill(QHBoxLayout(), self.title, 0, self.add_hint, self.badge)
        box = _fill(
            QVBoxLayout(self),
            head,
            self.subtitle,
            self.gpu,
            self.cost,
            self.links,
            self.policy,
            self._chips,
        )
        box.setContentsMargins(10, 8, 10, 8)
        box.setSpacing(3)
        self._info = info
        self.update_info(info)

    @property
    def info(self) -> CardInfo:
        return self._info

    def update_info(self, info: CardInfo) -> None:
        """Show ``info`` in place (same widgets, no re-layout of the list)."""
        first = self._info is info
        self._info = info
        self.title.setText(info.title)
        self.subtitle.setText(info.subtitle)
        self.gpu.setText(
            f"GPU: {info.gpu} · {info.min_vram}" if info.min_vram else f"GPU: {info.gpu}"
        )
        self.cost.setText(info.cost)
        self.links.setText(
            " · ".join(
                f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>'
                for label, url in info.links
            )
        )
        self.links.setToolTip("\n".join(f"{label}: {url}" for label, url in info.links))
        self.links.setVisible(bool(info.links))
        self.policy.setText(info.policy)
        self.policy.setToolTip(info.policy)
        self.add_hint.setVisible(not info.registered)
        self.add_hint.setToolTip(f"Register a new {info.subtitle.split(' · ')[0]} provider")
        self.badge.setText(info.badge.text)
        self.badge.setToolTip(info.badge.tooltip)
        self.badge.setProperty("state", info.badge.state)
        if first or self.zone_chips() != [zone_words(z) for z in info.zones]:
            self._set_chips(info.zones)
        self._apply_colors()
        zones = ", ".join(zone_words(z) for z in info.zones)
        self.setAccessibleName(f"{info.title}, {info.badge.text}")
        links = "".join(f" {label}: {url}." for label, url in info.links)
        self.setAccessibleDescription(
            f"{self.gpu.text()}. Cost: {info.cost}. Regions: {zones}.{links}"
        )
        self.setToolTip(info.badge.tooltip)

    def _set_chips(self, zones: tuple[str, ...]) -> None:
        for chip in self._chip_labels:
            self._chip_row.removeWidget(chip)
            chip.deleteLater()
        self._chip_labels = [_label(zone_words(z), "zone-chip", self._chips) for z in zones]
        for i, (chip, zone) in enumerate(zip(self._chip_labels, zones, strict=True)):
            # a framed label, not a style sheet: its text keeps following the palette
            chip.setFrameStyle(QFrame.Shape.Box | QFrame.Shadow.Plain)
            chip.setMargin(2)
            chip.setToolTip(f"Residency zone: {zone}")
            self._chip_row.insertWidget(i, chip)

    def zone_chips(self) -> list[str]:
        """The texts of the zone chips, in order."""
        return [chip.text() for chip in self._chip_labels]

    def badge_colors(self) -> tuple[QColor, QColor]:
        """The badge's (foreground, background) as now painted."""
        fg, bg = badge_colors(self._info.badge.state, self._dark)
        return QColor(fg), QColor(bg)

    def _apply_colors(self) -> None:
        self._dark = is_dark(self)
        styled = (self._info.badge.state, self._dark)
        if styled != self._styled:
            self._styled = styled
            self.badge.setStyleSheet(
                _tinted("badge", *styled, "border-radius: 8px; padding: 1px 8px;")
            )

    def is_selected(self) -> bool:
        return self._selected

    def set_selected(self, selected: bool) -> None:
        if selected != self._selected:
            self._selected = selected
            self.update()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_colors()
        super().changeEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        self.activated.emit(self._info.key)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() not in (Qt.Key.Key_Space, *_ENTER_KEYS):
            super().keyPressEvent(event)
            return
        self.activated.emit(self._info.key)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if not (self._selected or self.hasFocus()):
            return
        # QWidget's focusIn/OutEvent already repaint, so the focus ring follows the focus
        highlight = QColor(self.palette().highlight().color())
        fill = QColor(highlight)
        fill.setAlpha(40 if self._selected else 0)
        pen = QPen(highlight, 2 if self._selected else 1)
        if not self._selected:  # focused only: a dashed ring
            pen.setStyle(Qt.PenStyle.DashLine)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(fill)
        painter.setPen(pen)
        painter.drawRoundedRect(self.rect().adjusted(1, 1, -2, -2), 6, 6)
        painter.end()


class ProviderList(QWidget):
    """A filter box above the cards: "Your providers", then the templates to "Add a provider".

    ``selection_changed`` carries the selected key ("" when the selection went away);
    ``activated`` a card's key when it is clicked or Space / Enter is pressed on it.
    """

    selection_changed = Signal(str)
    activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("provider-list")
        self.setAccessibleName("Providers")
        self._cards: dict[str, ProviderCard] = {}
        self._order: list[str] = []
        self._selected: str | None = None

        self.filter = QLineEdit(self)
        self.filter.setObjectName("provider-filter")
        self.filter.setPlaceholderText("Filter providers (name, GPU, region, status)")
        self.filter.setClearButtonEnabled(True)
        self.filter.setAccessibleName("Filter providers")
        self.filter.setAccessibleDescription(
            "Shows only the providers whose name, GPU, region or status contain every word"
        )
        self.filter.textChanged.connect(self._apply_filter)
        self.filter.installEventFilter(self)

        self.body = body = QWidget()
        body.setObjectName("provider-cards")
        body.setAccessibleName("Provider cards")
        self.registered_header = _label("Your providers", "group-registered", body, bold=True)
        self.registered_empty = _label(
            "None yet: pick one under \u201cAdd a provider\u201d.", "registered-empty", body
        )
        self.templates_header = _label("Add a provider", "group-templates", body, bold=True)
        self.no_match = _label("", "no-match", body)
        self.no_match.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_match.hide()
        self._registered_box = QVBoxLayout()
        self._templates_box = QVBoxLayout()
        _fill(
            QVBoxLayout(body),
            self.registered_header,
            self.registered_empty,
            self._registered_box,
            8,
            self.templates_header,
            self._templates_box,
            self.no_match,
            0,
        ).setContentsMargins(0, 0, 4, 0)
        self.scroll_area = QScrollArea(self)
        self.scroll_area.setAccessibleName("Providers")
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area.verticalScrollBar().setAccessibleName("Scroll the providers")
        self.scroll_area.horizontalScrollBar().setAccessibleName("Scroll the providers sideways")
        self.scroll_area.setObjectName("provider-scroll")
        self.scroll_area.setAccessibleName("Provider cards")
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setWidget(body)
        _fill(QVBoxLayout(self), self.filter, self.scroll_area).setContentsMargins(0, 0, 0, 0)

        self.find_shortcut = QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self)
        self.find_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.find_shortcut.activated.connect(self.focus_filter)

    def set_cards(self, infos: Sequence[CardInfo]) -> None:
        """Show ``infos`` in this order (registered ones first), reusing cards by key.

        The selection stays when its key is still there; otherwise it goes and
        ``selection_changed("")`` is emitted.
        """
        wanted = {info.key: info for info in infos}
        body = self.body
        # The first cards are shown with their list in one pass, not one by one (~1 ms a
        # card; later, the focus and the scroll position stay where they are).
        hide_body = body.isVisible() and not self._cards and bool(wanted)
        if hide_body:
            body.hide()
        for key in [k for k in self._cards if k not in wanted]:
            card = self._cards.pop(key)
            card.hide()
            card.deleteLater()
        order = [i.key for i in infos if i.registered] + [i.key for i in infos if not i.registered]
        for key in order:
            existing = self._cards.get(key)
            if existing is None:
                card = ProviderCard(wanted[key], body)
                card.activated.connect(self._on_card_activated)
                card.installEventFilter(self)
                self._cards[key] = card
            elif existing.info != wanted[key]:
                existing.update_info(wanted[key])
        if order != self._order:
            for box in (self._registered_box, self._templates_box):
                while box.count():
                    box.takeAt(0)
            for key in order:
                card = self._cards[key]
                (self._registered_box if card.info.registered else self._templates_box).addWidget(
                    card
                )
            self._order = order
        lost = self._selected is not None and self._selected not in self._cards
        if lost:
            self._selected = None
        self._apply_filter(self.filter.text())
        if hide_body:
            body.show()
        if lost:
            self.selection_changed.emit("")

    def update_card(self, info: CardInfo) -> None:
        """Re-render the card of ``info.key`` (KeyError if there is none)."""
        self._cards[info.key].update_info(info)
        self._apply_filter(self.filter.text())

    def card(self, key: str) -> ProviderCard | None:
        return self._cards.get(key)

    def keys(self) -> list[str]:
        """The keys of all cards, in display order."""
        return list(self._order)

    def visible_keys(self) -> list[str]:
        """The keys of the cards the filter lets through, in display order."""
        return [k for k in self._order if not self._cards[k].isHidden()]

    def selected(self) -> str | None:
        return self._selected

    def select(self, key: str | None) -> None:
        """Select the card ``key`` (None: nothing); emits ``selection_changed`` on a change."""
        if key is not None and key not in self._cards:
            raise KeyError(key)
        if key == self._selected:
            return
        if self._selected is not None:
            self._cards[self._selected].set_selected(False)
        self._selected = key
        if key is not None:
            self._cards[key].set_selected(True)
            self.scroll_area.ensureWidgetVisible(self._cards[key])
        self.selection_changed.emit(key or "")

    def _on_card_activated(self, key: str) -> None:
        self.select(key)
        self.activated.emit(key)

    def _step(self, delta: int) -> None:
        """Select and focus the visible card ``delta`` places after the selected one (0: the
        selected one, or the first visible card when it is filtered out)."""
        visible = self.visible_keys()
        if not visible:
            return
        if self._selected in visible:
            index = max(0, min(len(visible) - 1, visible.index(self._selected) + delta))
        else:
            index = len(visible) - 1 if delta < 0 else 0
        self.select(visible[index])
        self._cards[visible[index]].setFocus(Qt.FocusReason.OtherFocusReason)

    @property
    def filter_text(self) -> str:
        return self.filter.text()

    @filter_text.setter
    def filter_text(self, text: str) -> None:
        self.filter.setText(text)

    def focus_filter(self) -> None:
        self.filter.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter.selectAll()

    def _apply_filter(self, text: str) -> None:
        shown = {True: 0, False: 0}
        for key in self._order:
            card = self._cards[key]
            ok = matches(card.info, text)
            card.setVisible(ok)  # a no-op when it already is: no rebuild per keystroke
            shown[card.info.registered] += ok
        filtering = bool(text.strip())
        self.registered_header.setVisible(shown[True] > 0 or not filtering)
        self.registered_empty.setVisible(not filtering and shown[True] == 0)
        self.templates_header.setVisible(shown[False] > 0 or not filtering)
        none = filtering and shown[True] + shown[False] == 0
        self.no_match.setText(f"No provider matches '{text.strip()}'" if none else "")
        self.no_match.setVisible(none)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Up / Down on a card move the selection; Down or Enter in the filter enter the list."""
        if event.type() == QEvent.Type.KeyPress:
            key = cast(QKeyEvent, event).key()
            if watched is self.filter and key in (Qt.Key.Key_Down, *_ENTER_KEYS):
                self._step(0)
                return True
            if isinstance(watched, ProviderCard) and key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                self._step(1 if key == Qt.Key.Key_Down else -1)
                return True
        return super().eventFilter(watched, event)


class LocalPanel(QFrame):
    """What this computer offers: its GPUs (or plainly why none) and where secrets are kept."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("local-panel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("This computer")
        self.title = _label("This computer", "local-title", self, bold=True)
        self.status = _label("", "local-status", self)
        self.status.setWordWrap(True)
        self._gpus = QWidget(self)
        self._gpus.setAccessibleName("Local GPUs")
        self._gpu_box = QVBoxLayout(self._gpus)
        self._gpu_box.setContentsMargins(0, 0, 0, 0)
        self.keyring = _label("", "keyring", self)
        self.keyring.setWordWrap(True)
        self.keyring.hide()
        self._keyring_problem: str | None = None
        _fill(QVBoxLayout(self), self.title, self.status, self._gpus, self.keyring, 0)
        self.gpu_lines: list[QLabel] = []
        self.vram_bars: list[QProgressBar] = []
        self.set_snapshot(None)

    def set_snapshot(self, snap: LocalSnapshot | None) -> None:
        """Show ``snap``'s GPUs; ``None`` means the search is still running."""
        for widget in (*self.gpu_lines, *self.vram_bars):
            self._gpu_box.removeWidget(widget)
            widget.hide()
            widget.deleteLater()
        self.gpu_lines, self.vram_bars = [], []
        if snap is None:
            self.status.setText("Looking for GPUs…")
        elif not snap.gpus:
            note = (snap.note or "none was found").split(": jobs run", 1)[0].strip()
            note += "" if note.endswith((".", "!", "?")) else "."
            self.status.setText(f"No local GPU: {note}\nJobs run on your providers.")
        else:
            driver = snap.driver_version
            self.status.setText(f"NVIDIA driver {driver}" if driver else "")
        for gpu in snap.gpus if snap is not None else ():
            line = _label(
                f"{gpu.name} — {gb_text(gpu.vram_total_gb)} GB "
                f"({gpu.vram_free_gb:.1f} GB free), load {gpu.utilization * 100:.0f} %",
                "local-gpu",
                self._gpus,
            )
            total = gpu.vram_total_gb
            bar = QProgressBar(self._gpus)
            bar.setObjectName("local-vram")
            bar.setRange(0, 100)
            bar.setValue(round(100 * (1 - min(gpu.vram_free_gb, total) / total)) if total else 0)
            bar.setFormat("%p% VRAM in use")
            bar.setMaximumHeight(14)
            bar.setAccessibleName(f"VRAM in use on {gpu.name}")
            for widget in (line, bar):
                self._gpu_box.addWidget(widget)
                widget.setVisible(True)  # now, not on the next turn of the event loop
            self.gpu_lines.append(line)
            self.vram_bars.append(bar)
        self.status.setVisible(bool(self.status.text()))
        lines = [self.status.text(), *(line.text() for line in self.gpu_lines)]
        self.setAccessibleDescription(" ".join(t for t in lines if t))

    def set_keyring(self, backend: str, problem: str | None = None) -> None:
        """Say where secrets are stored, or the keyring's problem in a warning style."""
        self._keyring_problem = problem
        self.keyring.setText(problem or f"Secrets are stored in: {backend}")
        self.keyring.setAccessibleName("Keyring problem" if problem else "Where secrets are stored")
        self.keyring.setToolTip(f"Keyring backend: {backend}" if problem and backend else "")
        self.keyring.setProperty("warning", bool(problem))
        self._style_keyring()
        self.keyring.show()

    def _style_keyring(self) -> None:
        style = "border-radius: 4px; padding: 4px;"
        problem = bool(self._keyring_problem)
        dark = is_dark(self)
        self.keyring.setStyleSheet(_tinted("keyring", "degraded", dark, style) if problem else "")

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._style_keyring()
        super().changeEvent(event)
