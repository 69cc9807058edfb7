"""Offers: every GPU the user can rent now, cheapest first — across their providers (live
prices where kept, else the catalog's) and the templates nobody has set up yet — filtered by
VRAM, GPU, residency zone, price, spot and templates; the window's ``comfyvn-gui offers``.

The list is ``Service.offers`` (the home and the catalog, no network), read off the GUI thread
through the bridge each time a filter changes (text and numbers after a pause of
:data:`DEBOUNCE_MS`, the zone and the boxes at once). The filtering is the service's, not a
proxy's: the GPU match (an alias the GPU catalog knows, "A100" for both sizes), the VRAM and
price tolerances and the spot rule live there once, and a re-read answers in about 2 ms.

**Refresh prices** fetches the live prices (``Service.refresh_prices``, a coroutine that waits
on every provider's price API) on the bridge's background loop, never the GUI's; what failed
is named per provider in the banner, and the list is read again. A template row's **Add this
provider** asks the window (:attr:`OffersPage.add_provider_requested`) to open the Remote GPU
page's add form for that template.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from comfyvn_gui.core import wording
from comfyvn_gui.core.catalog import RESIDENCY_ZONES
from comfyvn_gui.core.errors import ComfyVNError
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.palette import is_dark
from comfyvn_gui.gui.reads import CoalescedRead
from comfyvn_gui.gui.widgets.banner import Banner
from comfyvn_gui.gui.widgets.tables import read_only_table

from .model import Column, OffersModel, PreparedOffer, prepare

__all__ = ["DEBOUNCE_MS", "EMPTY_TEXT", "Filters", "OffersPage"]

#: A pause in typing a filter this long (ms) re-reads the list.
DEBOUNCE_MS = 200
EMPTY_TEXT = "No offer matches: loosen the filters."
LOADING_TEXT = "Reading the offers…"
ADD_TIP = "Select a row marked “not configured” to set up its provider on the Remote GPU page"
ANY = "any"

#: (vram_gb, gpu, zone, max_price, spot, templates): what ``Service.offers`` is asked.
Filters = tuple[float | None, str | None, str | None, float | None, bool, bool]
#: What a read gives: the rows (worked out off the GUI thread) and the filters they answer.
_State = tuple[list[PreparedOffer], Filters]


class OffersPage(QWidget):
    """The Offers place: a filterable table of offers, Refresh prices, Add this provider."""

    loaded = Signal()
    #: After each read has been shown.
    reloaded = Signal()
    #: A refresh of the live prices is done (the records, and the read after it shown).
    refreshed = Signal(list)
    #: "Add this provider" on a template row: the template's id.
    add_provider_requested = Signal(str)

    def __init__(self, bridge: ServiceBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page-offers")
        self.setAccessibleName("Offers")
        self.bridge = bridge
        self.svc = bridge.service
        self.is_loaded = False
        self.started = False
        #: The deadline per provider of a refresh (None: the service's default).
        self.refresh_timeout_s: float | None = None
        self._filters: Filters = (None, None, None, None, False, True)
        self.shown_filters: Filters | None = None  # the filters of the rows shown
        self._refresh_task: asyncio.Task[Any] | None = None
        self.reads = CoalescedRead(
            bridge, self._read_state, self._show, name="offers-read", failed=self._unreadable
        )

        # -- filters -------------------------------------------------------------------------
        self.vram_spin = QSpinBox(self)
        self.vram_spin.setObjectName("offers-vram")
        self.vram_spin.setAccessibleName("Minimum VRAM per GPU")
        self.vram_spin.setToolTip("Only GPUs with at least this much memory (any: no minimum)")
        self.vram_spin.setRange(0, 1024)
        self.vram_spin.setSingleStep(8)
        self.vram_spin.setSuffix(" GB")
        self.vram_spin.setSpecialValueText(ANY)
        self.vram_spin.setMaximumWidth(100)
        self.gpu_edit = QLineEdit(self)
        self.gpu_edit.setObjectName("offers-gpu")
        self.gpu_edit.setAccessibleName("GPU")
        self.gpu_edit.setPlaceholderText("any, e.g. A100")
        self.gpu_edit.setToolTip("A GPU name or part of it: “A100” matches every A100")
        self.gpu_edit.setClearButtonEnabled(True)
        self.gpu_edit.setMinimumWidth(110)
        self.gpu_edit.setMaximumWidth(150)
        self.zone_combo = QComboBox(self)
        self.zone_combo.setObjectName("offers-zone")
        self.zone_combo.setAccessibleName("Residency zone")
        self.zone_combo.setToolTip("Only machines in this residency zone")
        self.zone_combo.addItem("any zone", None)
        for zone in sorted(RESIDENCY_ZONES):
            self.zone_combo.addItem(zone, zone)
        self.price_spin = QDoubleSpinBox(self)
        self.price_spin.setObjectName("offers-max-price")
        self.price_spin.setAccessibleName("Maximum price per hour")
        self.price_spin.setToolTip("Only machines at most this price per hour (any: no limit)")
        self.price_spin.setRange(0.0, 1000.0)
        self.price_spin.setDecimals(2)
        self.price_spin.setSingleStep(0.25)
        self.price_spin.setPrefix("$")
        self.price_spin.setSuffix("/hr")
        self.price_spin.setSpecialValueText(ANY)
        self.price_spin.setMaximumWidth(120)
        self.spot_box = QCheckBox("Include &spot", self)
        self.spot_box.setObjectName("offers-spot")
        self.spot_box.setAccessibleName("Include spot offers")
        self.spot_box.setToolTip("Interruptible (spot, preemptible) machines too")
        self.templates_box = QCheckBox("&Templates too", self)
        self.templates_box.setObjectName("offers-templates")
        self.templates_box.setAccessibleName("Include providers not set up yet")
        self.templates_box.setToolTip("The catalog's prices of the providers you could add")
        self.templates_box.setChecked(True)
        filters = QHBoxLayout()
        for text, widget in (
            ("&Min VRAM", self.vram_spin),
            ("&GPU", self.gpu_edit),
            ("&Zone", self.zone_combo),
            ("Max &price", self.price_spin),
        ):
            label = QLabel(text, self)
            label.setObjectName(f"{widget.objectName()}-label")
            label.setBuddy(widget)
            filters.addWidget(label)
            filters.addWidget(widget)
            filters.addSpacing(8)
        filters.addStretch(1)

        # -- tools ---------------------------------------------------------------------------
        self.refresh_button = QPushButton("&Refresh prices", self)
        self.refresh_button.setObjectName("offers-refresh")
        self.refresh_button.setAccessibleName("Refresh prices")
        self.refresh_button.setToolTip(
            "Fetch the live prices of your providers from their APIs (F5)"
        )
        self.refresh_button.clicked.connect(self.refresh_prices)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("offers-refresh-progress")
        self.progress.setAccessibleName("Refreshing the prices")
        self.progress.setRange(0, 0)
        self.progress.setMaximumWidth(120)
        self.progress.hide()
        self.add_action = QAction("&Add this provider…", self)
        self.add_action.setObjectName("offers-add-action")
        self.add_action.setToolTip("Open the form that sets up the selected template's provider")
        self.add_action.setEnabled(False)
        self.add_action.triggered.connect(self.add_selected)
        self.add_button = QPushButton("&Add this provider…", self)
        self.add_button.setObjectName("offers-add")
        self.add_button.setAccessibleName("Add this provider")
        self.add_button.setToolTip(ADD_TIP)
        self.add_button.setEnabled(False)
        self.add_button.clicked.connect(self.add_selected)
        self.summary = QLabel("", self)
        self.summary.setObjectName("offers-summary")
        self.summary.setAccessibleName("Offers shown")
        filters.addWidget(self.summary)
        tools = QHBoxLayout()
        tools.addWidget(self.spot_box)
        tools.addWidget(self.templates_box)
        tools.addStretch(1)
        tools.addWidget(self.progress)
        tools.addWidget(self.refresh_button)
        tools.addWidget(self.add_button)

        self.banner = Banner(self)
        self.banner.setObjectName("offers-banner")

        # -- the table -----------------------------------------------------------------------
        self.model = OffersModel(self)
        self.model.set_dark(is_dark(self))
        self.table = read_only_table(
            self,
            self.model,
            object_name="offers-table",
            name="Offers",
            description="One row per machine and region, cheapest first; click a column to "
            "sort by it.",
            header_name="Offer columns: click one to sort by it",
            multi_select=False,
        )
        hh = self.table.horizontalHeader()
        for col, width in {
            Column.PROVIDER: 160,
            Column.MACHINE: 120,
            Column.GPU: 75,
            Column.VRAM: 50,
            Column.REGION: 120,
            Column.PRICE: 75,
            Column.BILLED: 75,
            Column.SOURCE: 55,
            Column.AGE: 40,
        }.items():
            hh.resizeSection(col, width)
        hh.setStretchLastSection(True)
        hh.setSortIndicator(Column.PRICE, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.horizontalScrollBar().setAccessibleName("Scroll the offers sideways")
        self.table.verticalScrollBar().setAccessibleName("Scroll the offers")
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.table.addAction(self.add_action)
        self.table.selectionModel().currentRowChanged.connect(self._update_add)

        self.empty = QLabel(LOADING_TEXT, self)
        self.empty.setObjectName("offers-empty")
        self.empty.setAccessibleName("No offers shown")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setMargin(24)
        self.list_stack = QStackedWidget(self)
        self.list_stack.setObjectName("offers-stack")
        self.list_stack.setAccessibleName("Offers")
        self.list_stack.addWidget(self.empty)
        self.list_stack.addWidget(self.table)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addLayout(filters)
        layout.addLayout(tools)
        layout.addWidget(self.banner)
        layout.addWidget(self.list_stack, 1)

        # -- re-reads ------------------------------------------------------------------------
        self._debounce = QTimer(self)
        self._debounce.setObjectName("offers-filter-debounce")
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.reload)
        self.vram_spin.valueChanged.connect(self._filter_typed)
        self.price_spin.valueChanged.connect(self._filter_typed)
        self.gpu_edit.textChanged.connect(self._filter_typed)
        self.zone_combo.currentIndexChanged.connect(self._filter_chosen)
        self.spot_box.toggled.connect(self._filter_chosen)
        self.templates_box.toggled.connect(self._filter_chosen)
        bridge.providers_changed.connect(self._on_providers_changed)
        bridge.prices_changed.connect(self._on_providers_changed)  # (a background refresh)

        refresh_key = QShortcut(QKeySequence(QKeySequence.StandardKey.Refresh), self)
        refresh_key.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        refresh_key.activated.connect(self.refresh_prices)

    # -- reading -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Read the offers (once; :meth:`shown` reads again)."""
        if not self.started:
            self.started = True
            return self.reload()
        assert self.reads.task is not None
        return self.reads.task

    def shown(self) -> None:
        """The place was shown: read (the first time, and again: the ages move on)."""
        if not self.started:
            self.start()
        else:
            self.reload()

    def filters(self) -> Filters:
        """What the filters ask, as ``Service.offers`` takes it."""
        vram = self.vram_spin.value()
        price = self.price_spin.value()
        gpu = self.gpu_edit.text().strip()
        return (
            float(vram) if vram > 0 else None,
            gpu or None,
            self.zone_combo.currentData(),
            price if price > 0 else None,
            self.spot_box.isChecked(),
            self.templates_box.isChecked(),
        )

    @Slot()
    def reload(self) -> asyncio.Task[None]:
        """Read the offers with the current filters (coalesced: a read under way reads once
        more before anything is shown)."""
        self._debounce.stop()
        self.started = True
        self._filters = self.filters()
        return self.reads.request()

    @Slot()
    def _filter_typed(self) -> None:
        if self.started:
            self._debounce.start()

    @Slot()
    def _filter_chosen(self) -> None:
        if self.started:
            self.reload()

    @Slot()
    def _on_providers_changed(self) -> None:
        if self.started:  # (a provider set up elsewhere: its template row turns into its own)
            self.reload()

    def _read_state(self) -> _State:
        """In the bridge's pool: the offers, which live prices are stale, the rows' texts."""
        asked = self._filters
        vram, gpu, zone, max_price, spot, templates = asked
        offers = self.svc.offers(
            vram_gb=vram,
            gpu=gpu,
            zone=zone,
            max_price=max_price,
            spot=spot,
            templates=templates,
        )
        stale: set[str] = set()
        if any(o.source == "live" for o in offers):
            stale = {pid for pid, lp in self.svc.live_prices().items() if not lp.fresh}
        max_age_h = float(self.svc.get_setting("prices.max_age_h"))
        return prepare(offers, stale, max_age_h=max_age_h, now=datetime.now(UTC)), asked

    def _show(self, state: _State) -> None:
        rows, asked = state
        current = self.table.currentIndex()
        keep = self.model.row_at(current.row()).key if current.isValid() else None
        self.model.set_dark(is_dark(self))
        self.model.set_rows(rows)
        self.shown_filters = asked
        if keep is not None and (row := self.model.row_of(keep)) >= 0:
            self.table.selectionModel().setCurrentIndex(
                self.model.index(row, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
        self._update_add()
        self._show_summary(rows)
        self.empty.setText(self._empty_text(asked))
        self.list_stack.setCurrentWidget(self.table if rows else self.empty)
        first = not self.is_loaded
        self.is_loaded = True
        if first:
            self.loaded.emit()
        self.reloaded.emit()

    def _unreadable(self, exc: ComfyVNError) -> None:
        self.banner.show_message("error", f"The offers could not be read: {exc.message}")
        self.empty.setText("The offers could not be read.")
        self.list_stack.setCurrentWidget(self.empty)

    @staticmethod
    def _empty_text(asked: Filters) -> str:
        if not asked[5]:
            return EMPTY_TEXT.rstrip(".") + ", or tick “Templates too” for the providers you "
            "could add."
        return EMPTY_TEXT

    def _show_summary(self, rows: list[PreparedOffer]) -> None:
        live = sum(1 for r in rows if r.state != "catalog")
        text = wording.counted(len(rows), "offer", "offers")
        if live:
            text += f", {live} live"
        self.summary.setText(text)
        self.summary.setAccessibleDescription(text)

    # -- refreshing the live prices ------------------------------------------------------------

    @property
    def refreshing(self) -> bool:
        return self._refresh_task is not None and not self._refresh_task.done()

    @Slot()
    def refresh_prices(self) -> asyncio.Task[Any]:
        """Fetch the live prices on the bridge's background loop, then read again."""
        if self._refresh_task is not None and not self._refresh_task.done():
            return self._refresh_task
        self._busy(True)  # (at once: the task starts on the loop's next turn)
        self._refresh_task = self.bridge.spawn(self._refresh(), name="offers-refresh-prices")
        if self._refresh_task.done():  # (the window is closing: nothing started)
            self._busy(False)
        return self._refresh_task

    async def _refresh(self) -> None:
        records: list[Any] = []
        try:
            try:
                records = await self.bridge.in_background(
                    self.svc.refresh_prices, timeout_s=self.refresh_timeout_s
                )
            except ComfyVNError as exc:
                self.banner.show_message(
                    "error", f"The live prices could not be refreshed: {exc.message}"
                )
            else:
                self._show_refreshed(records)
        finally:
            self._busy(False)
        await self.reload()
        self.refreshed.emit(records)

    def _busy(self, on: bool) -> None:
        self.refresh_button.setEnabled(not on)
        self.refresh_button.setText("Refreshing…" if on else "&Refresh prices")
        self.progress.setVisible(on)

    def _show_refreshed(self, records: list[Any]) -> None:
        """The banner: what failed per provider (the kept prices stay), else what worked."""
        if not records:
            self.banner.show_message(
                "info",
                "None of your providers has a live price source: the prices are the catalog's.",
            )
            return
        failed = [r for r in records if r.error]
        fetched = [r for r in records if not r.error]
        if not failed:
            which = wording.counted(len(fetched), "provider", "providers")
            self.banner.show_message("ok", f"Live prices refreshed for {which}.")
            return
        why = "; ".join(f"{r.provider}: {r.error}" for r in failed)
        done = f" Refreshed: {', '.join(r.provider for r in fetched)}." if fetched else ""
        self.banner.show_message(
            "warning",
            f"Live prices could not be refreshed for {why}. Their rows keep the last prices "
            f"fetched, else the catalog's.{done}",
        )

    # -- adding a template's provider ----------------------------------------------------------

    def selected_offer(self) -> PreparedOffer | None:
        current = self.table.currentIndex()
        if not current.isValid() or not self.table.selectionModel().isRowSelected(
            current.row(), QModelIndex()
        ):
            return None
        return self.model.row_at(current.row())

    @Slot()
    def _update_add(self, *_args: Any) -> None:
        row = self.selected_offer()
        template = row is not None and not row.offer.configured
        self.add_button.setEnabled(template)
        self.add_action.setEnabled(template)
        if template and row is not None:
            self.add_button.setToolTip(f"Set up {row.offer.template_id} on the Remote GPU page")
        else:
            self.add_button.setToolTip(ADD_TIP)

    @Slot()
    def add_selected(self) -> None:
        """Open the add form of the selected template row's provider (the window does)."""
        row = self.selected_offer()
        if row is not None and not row.offer.configured:
            self.add_provider_requested.emit(row.offer.template_id)

    def select_row(self, row: int) -> None:
        self.table.selectionModel().setCurrentIndex(
            self.model.index(row, 0),
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )

    def close_dialogs(self) -> None:
        """The window is closing: no re-read is pending."""
        self._debounce.stop()

    def hideEvent(self, event: Any) -> None:
        self._debounce.stop()  # (read again when shown)
        super().hideEvent(event)
