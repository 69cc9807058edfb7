"""Running: every resource this home holds at every provider — machines, pods, one-time keys,
start-up scripts, a kept cache volume, serverless requests in flight — with its job, age and
cost so far; orphans and leaked ones tinted and named so; Stop and Stop all orphans, each
confirmed with what is released and what it costs.

The listing asks every machine provider at once (``Service.running``, a coroutine that may
wait on the network): it runs on the bridge's checks loop, in a worker thread, never on the
GUI's (docs/architecture.md, "GUI"). It is read when the place is first shown, when it is
shown again after :data:`STALE_S`, on Refresh and after a stop — not on every change of the
job queue (a job's progress writes it ten times a second; each listing calls the providers).
The states, prices and refusals are the service's (``service/running.py``); the page only
shows them.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from comfyvn_gui.core import wording
from comfyvn_gui.core.errors import ComfyVNError, NotFoundError
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.dialogs import OpenDialogs
from comfyvn_gui.gui.palette import error_color, is_dark
from comfyvn_gui.gui.widgets.banner import Banner
from comfyvn_gui.gui.widgets.tables import read_only_table

from .model import STATE_WORDS, Column, RunningModel, money_text

if TYPE_CHECKING:
    from comfyvn_gui.service.running import RunningReport, RunningRow

__all__ = ["EMPTY_TEXT", "IN_USE_TIP", "STALE_S", "RunningPage"]

#: Shown again after this long (seconds), the place lists again.
STALE_S = 30.0
EMPTY_TEXT = "Nothing of this home is held at any provider."
LOADING_TEXT = "Asking the providers what this home holds…"
IN_USE_TIP = "A job in flight uses it: cancel the job on the Jobs page, its driver releases it."
STOP_TIP = "Release the selected resources at their provider (asks first)"


class RunningPage(QWidget):
    """The Running place: what this home holds at the providers, and stopping it."""

    loaded = Signal()
    #: After each listing has been shown.
    reloaded = Signal()
    #: After a stop (and the listing that follows it) is done: the refs released.
    stopped = Signal(list)

    def __init__(self, bridge: ServiceBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page-running")
        self.setAccessibleName("Running")
        self.bridge = bridge
        self.svc = bridge.service
        self.is_loaded = False
        self.started = False
        self.report: RunningReport | None = None
        self._listed_at = 0.0
        self._read_task: asyncio.Task[Any] | None = None
        self._again = False
        self._stop_task: asyncio.Task[Any] | None = None
        self.dialogs = OpenDialogs()

        # -- toolbar -------------------------------------------------------------------------
        self.refresh_button = QPushButton("&Refresh", self)
        self.refresh_button.setObjectName("running-refresh")
        self.refresh_button.setAccessibleName("Refresh")
        self.refresh_button.setToolTip("Ask the providers again what this home holds (F5)")
        self.refresh_button.clicked.connect(self.refresh)
        self.stop_button = QPushButton("&Stop…", self)
        self.stop_button.setObjectName("running-stop")
        self.stop_button.setAccessibleName("Stop the selected resources")
        self.stop_button.setToolTip(STOP_TIP)
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.ask_stop)
        self.orphans_button = QPushButton("Stop all &orphans…", self)
        self.orphans_button.setObjectName("running-stop-orphans")
        self.orphans_button.setAccessibleName("Stop all orphans")
        self.orphans_button.setToolTip(
            "Release every resource no job owns and every one its ended job left (asks first)"
        )
        self.orphans_button.setEnabled(False)
        self.orphans_button.clicked.connect(self.ask_stop_orphans)
        self.summary = QLabel("", self)
        self.summary.setObjectName("running-summary")
        self.summary.setAccessibleName("What this home holds")
        tools = QHBoxLayout()
        tools.addWidget(self.refresh_button)
        tools.addWidget(self.stop_button)
        tools.addWidget(self.orphans_button)
        tools.addStretch(1)
        tools.addWidget(self.summary)

        self.banner = Banner(self)
        self.banner.setObjectName("running-banner")
        self.errors = QLabel("", self)
        self.errors.setObjectName("running-errors")
        self.errors.setAccessibleName("Providers that could not be listed")
        self.errors.setWordWrap(True)
        self.errors.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.errors.hide()

        # -- the table -----------------------------------------------------------------------
        self.model = RunningModel(self)
        self.model.set_dark(is_dark(self))
        self.table = read_only_table(
            self,
            self.model,
            object_name="running-table",
            name="Resources held at the providers",
            description="One row per resource; Enter on the Console column opens the "
            "provider's console.",
            header_name="Resource columns",
            multi_select=True,
            elide=Qt.TextElideMode.ElideMiddle,
        )
        hh = self.table.horizontalHeader()
        for col, width in {
            Column.PROVIDER: 90,
            Column.KIND: 80,
            Column.NAME: 200,
            Column.JOB: 45,
            Column.STATE: 150,
            Column.AGE: 60,
            Column.COST: 120,
        }.items():
            hh.resizeSection(col, width)
        hh.setStretchLastSection(True)
        self.table.horizontalScrollBar().setAccessibleName("Scroll the resources sideways")
        self.table.verticalScrollBar().setAccessibleName("Scroll the resources")
        self.table.activated.connect(self._on_activated)

        self.empty = QLabel(LOADING_TEXT, self)
        self.empty.setObjectName("running-empty")
        self.empty.setAccessibleName("Nothing listed")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setMargin(24)
        self.list_stack = QStackedWidget(self)
        self.list_stack.setObjectName("running-stack")
        self.list_stack.setAccessibleName("Resources")
        self.list_stack.addWidget(self.empty)
        self.list_stack.addWidget(self.table)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addLayout(tools)
        layout.addWidget(self.banner)
        layout.addWidget(self.errors)
        layout.addWidget(self.list_stack, 1)

        refresh_key = QShortcut(QKeySequence(QKeySequence.StandardKey.Refresh), self)
        refresh_key.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        refresh_key.activated.connect(self.refresh)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)

    # -- listing -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[Any]:
        """List what this home holds (once; :meth:`shown` lists again when stale)."""
        if not self.started:
            self.started = True
            return self.refresh()
        assert self._read_task is not None
        return self._read_task

    def shown(self) -> None:
        """The place was shown: list the first time, or again if the listing is stale."""
        if not self.started:
            self.start()
        elif self.is_loaded and time.monotonic() - self._listed_at > STALE_S:
            self.refresh()

    @Slot()
    def refresh(self) -> asyncio.Task[Any]:
        """List again (a listing under way lists once more before it shows anything)."""
        self.started = True
        if self._read_task is not None and not self._read_task.done():
            self._again = True
            return self._read_task
        self.refresh_button.setEnabled(False)
        self._read_task = self.bridge.spawn(self._read(), name="running-list")
        return self._read_task

    async def _read(self) -> None:
        try:
            while True:
                self._again = False
                try:
                    report = await self.bridge.in_background(self.svc.running)
                except ComfyVNError as exc:
                    self.banner.show_message(
                        "error", f"What this home holds could not be listed: {exc.message}"
                    )
                    return
                if not self._again:
                    break
            self._show(report)
        finally:
            self.refresh_button.setEnabled(True)

    def _show(self, report: RunningReport) -> None:
        selected = set(self.selected_refs())
        self.report = report
        self._listed_at = time.monotonic()
        self.model.set_dark(is_dark(self))
        self.model.set_rows(report.rows)
        if selected:
            self.select_refs(selected)
        self._show_errors(report.errors)
        self._show_summary(report)
        self.empty.setText(
            EMPTY_TEXT
            if not report.errors
            else "The providers that could be listed hold nothing of this home."
        )
        self.list_stack.setCurrentWidget(self.table if report.rows else self.empty)
        self._update_buttons()
        first = not self.is_loaded
        self.is_loaded = True
        if first:
            self.loaded.emit()
        self.reloaded.emit()

    def _show_errors(self, errors: dict[str, str]) -> None:
        if not errors:
            self.errors.clear()
            self.errors.hide()
            return
        lines = "; ".join(f"{p}: {why}" for p, why in sorted(errors.items()))
        text = f"Not listed, so not shown below — {lines}"
        palette = self.errors.palette()
        palette.setColor(QPalette.ColorRole.WindowText, error_color(self))
        self.errors.setPalette(palette)
        self.errors.setText(text)
        self.errors.setAccessibleDescription(text)
        self.errors.show()

    def _show_summary(self, report: RunningReport) -> None:
        rows = report.rows
        orphans = report.orphans
        parts = [wording.counted(len(rows), "resource", "resources")]
        if orphans:
            parts.append(wording.counted(len(orphans), "orphan or leaked", "orphan or leaked"))
        hourly = sum(r.hourly_usd or 0.0 for r in rows if r.state != "standing")
        text = ", ".join(parts)
        if hourly:
            text += f"; about {wording.hourly_price(hourly)}"
        self.summary.setText(text)
        self.summary.setAccessibleDescription(text)

    # -- selection -----------------------------------------------------------------------------

    def selected_rows(self) -> list[RunningRow]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.row_at(r) for r in rows]

    def selected_refs(self) -> list[str]:
        return [r.ref for r in self.selected_rows()]

    def select_refs(self, refs: set[str] | list[str]) -> None:
        wanted = set(refs)
        selection = self.table.selectionModel()
        selection.clearSelection()
        for i, row in enumerate(self.model.rows()):
            if row.ref in wanted:
                selection.select(
                    self.model.index(i, 0),
                    selection.SelectionFlag.Select | selection.SelectionFlag.Rows,
                )

    @Slot()
    def _update_buttons(self) -> None:
        busy = self._stop_task is not None and not self._stop_task.done()
        rows = self.selected_rows()
        in_use = [r for r in rows if r.state == "in_use"]
        self.stop_button.setEnabled(bool(rows) and not in_use and not busy)
        if in_use:
            jobs = sorted({r.job_id for r in in_use if r.job_id is not None})
            which = f" (job {', '.join(map(str, jobs))})" if jobs else ""
            self.stop_button.setToolTip(IN_USE_TIP.replace("A job", f"A job{which}", 1))
        else:
            self.stop_button.setToolTip(STOP_TIP)
        orphans = self.report.orphans if self.report is not None else []
        self.orphans_button.setEnabled(bool(orphans) and not busy)

    @Slot(QModelIndex)
    def _on_activated(self, index: QModelIndex) -> None:
        if index.column() != Column.CONSOLE:
            return
        url = self.model.row_at(index.row()).console_url
        if url:
            QDesktopServices.openUrl(QUrl(url))

    # -- stopping ------------------------------------------------------------------------------

    @Slot()
    def ask_stop(self) -> QMessageBox | None:
        """Confirm, then release the selected resources (a row in use cannot be chosen)."""
        rows = [r for r in self.selected_rows() if r.state != "in_use"]
        if not rows:
            return None
        refs = [r.ref for r in rows]
        title = f"Stop {wording.counted(len(rows), 'resource', 'resources')}"
        return self._confirm(title, rows, lambda: self.stop(refs))

    @Slot()
    def ask_stop_orphans(self) -> QMessageBox | None:
        """Confirm, then release every orphan and leaked resource."""
        orphans = self.report.orphans if self.report is not None else []
        if not orphans:
            return None
        title = "Stop all orphans"
        return self._confirm(title, orphans, lambda: self.stop(None, orphans=True))

    def _confirm(self, title: str, rows: list[RunningRow], then: Any) -> QMessageBox:
        hourly = sum(r.hourly_usd or 0.0 for r in rows if not r.monthly_usd)
        spent = sum(r.cost_so_far_usd or 0.0 for r in rows)
        lines = "\n".join(f"• {_described(r)}" for r in rows[:12])
        if len(rows) > 12:
            lines += f"\n• … and {len(rows) - 12} more"
        cost = []
        if hourly:
            cost.append(f"together they bill about {wording.hourly_price(hourly)}")
        if spent:
            cost.append(f"{wording.cost(spent)} so far")
        what = f" ({', '.join(cost)})" if cost else ""
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            title,
            f"Release {wording.counted(len(rows), 'resource', 'resources')} at the provider{what}?",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("running-stop-confirm")
        box.setInformativeText(
            f"{lines}\n\nWhat they hold is deleted with them; this cannot be undone."
        )
        yes = box.addButton("Stop", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def answered(_result: int) -> None:
            self.dialogs.forget(box)
            if box.clickedButton() is yes:
                then()

        box.finished.connect(answered)
        self.dialogs.keep(box)
        box.open()
        return box

    def stop(self, refs: list[str] | None, *, orphans: bool = False) -> asyncio.Task[Any]:
        """Release ``refs`` (or every orphan), off the GUI thread, then list again."""
        self._stop_task = self.bridge.spawn(self._stop(refs, orphans), name="running-stop")
        self._update_buttons()
        return self._stop_task

    async def _stop(self, refs: list[str] | None, orphans: bool) -> None:
        released: list[RunningRow] = []
        missing: list[NotFoundError] = []
        try:
            try:
                if orphans:
                    released = await self.bridge.in_background(self.svc.stop_running, orphans=True)
                else:
                    for ref in refs or []:
                        try:
                            released += await self.bridge.in_background(self.svc.stop_running, ref)
                        except NotFoundError as exc:  # (gone with a machine stopped before)
                            missing.append(exc)
                if missing and not released:
                    raise missing[0]
            except ComfyVNError as exc:
                done = ", ".join(r.ref for r in released)
                self.banner.show_message(
                    "error",
                    exc.message
                    + (f" (released: {done})" if done and done not in exc.message else ""),
                )
            else:
                if released:
                    names = ", ".join(f"{r.kind.replace('_', ' ')} {r.name}" for r in released)
                    self.banner.show_message("ok", f"Released {names}.")
                else:
                    self.banner.show_message("info", "Nothing to release: it was already gone.")
        finally:
            self._stop_task = None
            self._update_buttons()
        await self.refresh()
        self.stopped.emit([r.ref for r in released])

    def close_dialogs(self) -> None:
        """Reject the open confirmation, if any (the window is closing)."""
        self.dialogs.close_all()


def _described(row: RunningRow) -> str:
    """'rented:123 — machine comfyvn-…-job9, Orphan: no job owns it, $0.02 ($0.46/hr)'."""
    return (
        f"{row.ref} — {row.kind.replace('_', ' ')} {row.name}, "
        f"{STATE_WORDS.get(row.state, row.state)}, {money_text(row)}"
    )
