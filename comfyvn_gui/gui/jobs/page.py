"""Jobs: the ComfyVN importer jobs, where each would run, what it would cost, why, and what to
watch out for — and the Review panel (:mod:`.review_panel`) to see it all for one job and pick
another provider.

Nothing here blocks the GUI thread: the queue, the audit trail, an import and a pick go
through :class:`~comfyvn_gui.gui.bridge.ServiceBridge` (the service's I/O pool;
docs/architecture.md, "GUI"). The service re-advises the queued jobs itself whenever a
provider's health or activation, the registry or an ``advisor.*`` setting changes; this page
only reloads when the bridge says the job queue changed (the re-advice of a health,
validation or registry change is such a change; the check results alone are not). Reloads
are coalesced: while one reads, any number of further requests make one more read, never a
queue of them. The list reads jobs brief (without each advice's alternatives); the Review
panel reads the selected job whole.

Dispatch, Cancel and Remove act on the selected jobs (the toolbar, the table's context menu,
the Review panel): Dispatch… opens the confirmation (:mod:`.dispatch_dialog`) once the
service has checked every job; Cancel and Remove ask first (non-modal message boxes); the
service calls run through the bridge. A job in flight shows its progress as the driver writes
it (the queue's change reloads the view); its elapsed time and cost so far move on every
second without a read (:meth:`JobsModel.tick`, while the page is shown).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QItemSelectionModel,
    QMimeData,
    QObject,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QHideEvent,
    QKeySequence,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from comfyvn_gui.core import wording
from comfyvn_gui.core.errors import ComfyVNError, InputError
from comfyvn_gui.core.jobs import ENDED, IN_FLIGHT, Job, JobEvent
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.dialogs import OpenDialogs
from comfyvn_gui.gui.reads import CoalescedRead, paced
from comfyvn_gui.gui.widgets.banner import Banner
from comfyvn_gui.gui.widgets.tables import read_only_table

from .dispatch_dialog import DispatchDialog, JobToDispatch, read_confirmation
from .model import (
    JOB_ID_ROLE,
    SEARCH_ROLE,
    SORT_ROLE,
    Column,
    JobsModel,
    PreparedJobs,
    spent_so_far,
)
from .review_panel import ReviewPanel
from .review_text import pick_outcome

__all__ = ["CLOCK_MS", "EMPTY_TEXT", "JobsPage"]

#: How often the elapsed time and cost so far of the jobs in flight move on (no read).
CLOCK_MS = 1000
#: A reload reads only the jobs written since the last read, less this margin (seconds: a
#: write stamped before it committed, another process's clock step) ...
READ_MARGIN_S = 5.0
#: ... and every job at least this often (seconds), so nothing can stay stale.
FULL_READ_EVERY_S = 30.0

EMPTY_TEXT = (
    "No jobs yet. Import an importer summary (File → Import summary… or drop a .json here)."
)


class _JobsProxy(QSortFilterProxyModel):
    """Filters by one search text per row; sorting is forwarded to :class:`JobsModel`, which
    sorts its :data:`SORT_ROLE` keys in Python far faster than per-comparison ``data()``
    calls (10,000 jobs: milliseconds instead of most of a second)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setFilterRole(SEARCH_ROLE)
        self.setFilterKeyColumn(Column.JOB)
        self._needle: list[str] = []
        self._model: JobsModel | None = None
        self._matched: list[bool] = []
        self._matched_for: list[str] | None = None  # the search texts _matched was made of

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        source = self.sourceModel()
        if source is not None:
            source.sort(column, order)

    def set_needle(self, text: str) -> None:
        needle = text.casefold().split()
        if needle == self._needle:
            return
        self._matched_for = None
        if hasattr(self, "beginFilterChange"):  # Qt 6.9+
            self.beginFilterChange()
            self._needle = needle
            self.endFilterChange()
        else:
            self._needle = needle
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Any) -> bool:
        # Called once per row: the matches are worked out for all rows at once, in one Python
        # loop (10,000 rows: a few ms instead of ~70 ms of index() and data() calls).
        if not self._needle or self._model is None:
            return True
        texts = self._model.search_texts()
        if texts is not self._matched_for:
            needle = self._needle
            self._matched = [all(word in text for word in needle) for text in texts]
            self._matched_for = texts
        return self._matched[source_row]

    def setSourceModel(self, model: Any) -> None:
        super().setSourceModel(model)
        self._model = model


class JobsPage(QWidget):
    """The Jobs place: the queue, an import, the filter, and the Review panel."""

    loaded = Signal()
    #: After each reload has been applied to the table.
    reloaded = Signal()
    #: The ids of the jobs an import added ([] when nothing was imported).
    import_finished = Signal(list)
    #: A pick (or the return to the advisor's choice) was recorded: the job's id.
    picked = Signal(int)
    #: The dispatch confirmation is open (the dialog).
    dispatch_asked = Signal(object)
    #: "Upload and run" is done: the ids of the jobs handed to the driver (the others failed
    #: and the banner says why).
    dispatched = Signal(list)
    #: A cancel was asked for / jobs were removed: their ids.
    cancel_asked = Signal(list)
    removed = Signal(list)

    def __init__(self, bridge: ServiceBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page-jobs")
        self.setAccessibleName("Jobs")
        self.setAcceptDrops(True)
        self.bridge = bridge
        self.svc = bridge.service
        self.is_loaded = False
        self._load_task: asyncio.Task[Any] | None = None
        self.reads = CoalescedRead(
            bridge, self._read_state, self._apply, name="jobs-reload", failed=self._unreadable
        )
        self._events_task: asyncio.Task[Any] | None = None
        self._events_again = False
        self._read_mark: str | None = None  # the last read's time, less READ_MARGIN_S
        self._full_read_at = 0.0  # time.monotonic() of the last read of every job
        self.dialogs = OpenDialogs()

        # -- toolbar -------------------------------------------------------------------------
        self.import_button = QPushButton("Import summary…", self)
        self.import_button.setObjectName("import-summary")
        self.import_button.setAccessibleName("Import summary")
        self.import_button.setToolTip(
            "Queue the jobs of a ComfyVN importer summary (.json), each advised (Ctrl+I)"
        )
        self.import_button.clicked.connect(self.ask_import)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setObjectName("jobs-filter")
        self.filter_edit.setAccessibleName("Filter jobs")
        self.filter_edit.setPlaceholderText("Filter by title, kind, provider, warning… (Ctrl+F)")
        self.filter_edit.setClearButtonEnabled(True)
        self.count = QLabel("", self)
        self.count.setObjectName("jobs-count")
        self.count.setAccessibleName("Number of jobs shown")

        self.dispatch_action = QAction("&Dispatch…", self)
        self.dispatch_action.setObjectName("dispatch-action")
        self.dispatch_action.setShortcut(QKeySequence("Ctrl+D"))
        self.dispatch_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.dispatch_action.setToolTip(
            "Upload the selected queued jobs to their providers and run them, once you have "
            "read their warnings (Ctrl+D)"
        )
        self.dispatch_action.setIconText("Dispatch…")  # (a tool button drops the "…")
        self.dispatch_action.triggered.connect(self.dispatch_selected)
        self.cancel_action = QAction("&Cancel job…", self)
        self.cancel_action.setObjectName("cancel-job-action")
        self.cancel_action.setToolTip(
            "Stop the selected jobs that are being submitted or running (asks first)"
        )
        self.cancel_action.setIconText("Cancel job…")
        self.cancel_action.triggered.connect(self.cancel_selected)
        self.remove_action = QAction("&Remove…", self)
        self.remove_action.setObjectName("remove-job-action")
        self.remove_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.remove_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.remove_action.setToolTip(
            "Remove the selected queued or ended jobs from the queue (asks first; outputs stay "
            "on disk)"
        )
        self.remove_action.setIconText("Remove…")
        self.remove_action.triggered.connect(self.remove_selected)
        self.dispatch_button = self._tool_button(self.dispatch_action, "dispatch", "Dispatch")
        self.cancel_button = self._tool_button(self.cancel_action, "cancel-job", "Cancel job")
        self.remove_button = self._tool_button(self.remove_action, "remove-job", "Remove job")
        tools = QHBoxLayout()
        tools.addWidget(self.import_button)
        tools.addWidget(self.dispatch_button)
        tools.addWidget(self.cancel_button)
        tools.addWidget(self.remove_button)
        tools.addWidget(self.filter_edit, 1)
        tools.addWidget(self.count)

        self.banner = Banner(self)
        self.banner.setObjectName("banner")

        # -- the table -----------------------------------------------------------------------
        self.model = JobsModel(self)
        self.proxy = _JobsProxy(self)
        self.proxy.setSourceModel(self.model)
        # (several jobs are dispatched, cancelled or removed at once)
        self.table = read_only_table(
            self,
            self.proxy,
            object_name="jobs-table",
            name="Jobs",
            description="One row per job; Enter moves to the review of the selected job.",
            header_name="Job columns: click one to sort by it",
            multi_select=True,
        )
        hh = self.table.horizontalHeader()
        hh.setSectionsMovable(True)  # e.g. drag Provider and Est. cost next to the title
        for col, width in {
            Column.JOB: 230,
            Column.KIND: 105,
            Column.SIZE: 105,
            Column.STATUS: 82,
            Column.PROVIDER: 115,
            Column.COST: 62,
            Column.REASON: 220,
            Column.WARNINGS: 60,
            Column.PROGRESS: 110,
            Column.ELAPSED: 60,
            Column.SPENT: 60,
        }.items():
            hh.resizeSection(col, width)
        # The advice sits next to each job: Job, Provider, Est. cost and what was spent,
        # Warnings, then where it is (status, progress, elapsed), then the rest.
        first = (
            Column.JOB,
            Column.PROVIDER,
            Column.COST,
            Column.SPENT,
            Column.WARNINGS,
            Column.STATUS,
            Column.PROGRESS,
            Column.ELAPSED,
        )
        for visual, col in enumerate(first):
            hh.moveSection(hh.visualIndex(col), visual)
        hh.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # the queue's order at first
        self.table.setSortingEnabled(True)
        self.table.horizontalScrollBar().setAccessibleName("Scroll the jobs sideways")
        self.table.verticalScrollBar().setAccessibleName("Scroll the jobs")
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for action in (self.dispatch_action, self.cancel_action, self.remove_action):
            self.table.addAction(action)

        self.empty = QLabel("Loading the job queue…", self)
        self.empty.setObjectName("jobs-empty")
        self.empty.setAccessibleName("No jobs")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setMargin(24)
        self.list_stack = QStackedWidget(self)
        self.list_stack.setObjectName("jobs-stack")
        self.list_stack.setAccessibleName("Jobs")
        self.list_stack.addWidget(self.empty)
        self.list_stack.addWidget(self.table)

        self.review = ReviewPanel(self)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("jobs-splitter")
        self.splitter.setAccessibleName("Jobs and the review of the selected job")
        self.splitter.addWidget(self.list_stack)
        self.splitter.addWidget(self.review)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([620, 380])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addLayout(tools)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)

        # -- keyboard ------------------------------------------------------------------------
        self.import_action = QAction("&Import summary…", self)
        self.import_action.setObjectName("import-summary-action")
        self.import_action.setShortcut(QKeySequence("Ctrl+I"))
        self.import_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.import_action.setStatusTip("Queue the jobs of a ComfyVN importer summary (.json)")
        self.import_action.triggered.connect(self.ask_import)
        self.addAction(self.import_action)
        self.filter_action = QAction("&Filter jobs", self)
        self.filter_action.setObjectName("filter-jobs-action")
        self.filter_action.setShortcut(QKeySequence("Ctrl+F"))
        self.filter_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.filter_action.setStatusTip("Filter the jobs by title, kind, provider or warning")
        self.filter_action.triggered.connect(self.focus_filter)
        self.addAction(self.filter_action)
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            shortcut = QShortcut(QKeySequence(key), self.table)
            shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
            shortcut.activated.connect(self.focus_review)
        self.filter_edit.returnPressed.connect(self._filter_done)

        # -- wiring --------------------------------------------------------------------------
        self.filter_edit.textChanged.connect(self.proxy.set_needle)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        for signal in (
            self.proxy.modelReset,
            self.proxy.rowsInserted,
            self.proxy.rowsRemoved,
            self.proxy.layoutChanged,
        ):
            signal.connect(self._update_count)
        self.review.pick_requested.connect(self.pick)
        self.review.advisor_requested.connect(self.back_to_advisor)
        # (the Review panel's own Dispatch… and Cancel buttons act on the job it shows)
        for name, slot in (
            ("dispatch_requested", self.dispatch_reviewed),
            ("cancel_requested", self.cancel_reviewed),
        ):
            requested = getattr(self.review, name, None)
            if requested is not None:
                requested.connect(slot)
        for action in (self.dispatch_action, self.cancel_action, self.remove_action):
            self.addAction(action)
        self._update_actions()

        # The clock of the jobs in flight (elapsed time, cost so far): no read, while shown.
        self.clock = QTimer(self)
        self.clock.setObjectName("jobs-clock")
        self.clock.setInterval(CLOCK_MS)
        self.clock.timeout.connect(self._tick)
        # Only the queue: a health, validation or registry change that matters to a job
        # re-advises it, and that change of the queue is what reloads the view (a Validate all
        # or a monitor round alone read 10,000 jobs again for nothing).
        bridge.jobs_changed.connect(self.refresh)

    # -- loading -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[Any]:
        """Load the queue off the GUI thread; ``loaded`` is emitted when it is shown."""
        if self._load_task is None:
            self._load_task = self.bridge.spawn(self._load(), name="jobs-load")
        return self._load_task

    async def _load(self) -> None:
        await self.reload()
        self.is_loaded = True
        self._update_empty()
        self.loaded.emit()

    @Slot()
    def refresh(self) -> asyncio.Task[Any]:
        """Read the queue again (coalesced: a read already running reads once more)."""
        return self.reads.request()

    async def reload(self) -> None:
        """Read the queue and show it; returns once a read that began after the call is shown."""
        await self.refresh()

    def _unreadable(self, exc: ComfyVNError) -> None:
        self.banner.show_message("error", f"The job queue cannot be read: {exc.message}")

    def _read_state(self) -> PreparedJobs:
        # Brief jobs (no alternatives: the Review panel reads the selected job whole), their
        # rows worked out here, off the GUI thread (10,000 jobs: seconds otherwise).
        # (one job at a time: the jobs of unchanged rows are dropped as they are read, so a
        # reload never holds 10,000 new jobs for the garbage collector to go through)
        # Between full reads, only the jobs written since the last read (less a margin for a
        # write stamped before it committed) are read again: 20 drivers' progress in a queue
        # of 10,000 then costs 20 jobs a read, not 10,000 (benchmarks/live_jobs_bench.py).
        started = time.monotonic()
        since = self._read_mark
        stamp = (datetime.now(UTC) - timedelta(seconds=READ_MARGIN_S)).isoformat(
            timespec="milliseconds"
        )
        if since is not None and started - self._full_read_at < FULL_READ_EVERY_S:
            # The same jobs as shown (no job added or removed): only the rows of the changed
            # ones are made (the GUI thread waits for the GIL while this thread runs Python,
            # so a read's cost is paid in stalls too: ~1 ms now instead of ~20).
            # The jobs are compared as they are read, and an unchanged one dropped at once:
            # holding thousands of parsed jobs (after a re-advice wrote them all) made the
            # collector go through ~40,000 live objects per young collection, 20-60 ms each,
            # with the GUI thread held.
            if self.svc.job_ids_digest() == self.model.ids_digest():
                changes = paced(self.svc.iter_jobs(brief=True, changed_since=since))
                if (only := self.model.prepare_changes(changes)) is not None:
                    self._read_mark = stamp
                    return only
            ids = self.svc.job_ids()
            shown = self.model.shown_jobs()
            changed = {
                j.id: j
                for j in paced(self.svc.iter_jobs(brief=True, changed_since=since))
                if shown.get(j.id) != j
            }
            if all(i in changed or i in shown for i in ids):
                self._read_mark = stamp
                return self.model.prepare(changed.get(i) or shown[i] for i in ids)
        prepared = self.model.prepare(paced(self.svc.iter_jobs(brief=True)))
        self._read_mark = stamp
        self._full_read_at = started
        return prepared

    def _apply(self, prepared: PreparedJobs) -> None:
        selected = self.selected_job_id()
        if self.model.set_jobs(prepared) and selected is not None:
            self.select_job(selected)
        elif selected is None and self.model.rowCount():  # open the first job's review
            self.select_job(self.model.job_at(0).id)
        self._update_empty()
        self._sync_review()
        self._update_actions()
        self._update_clock()
        self.reloaded.emit()

    def _update_empty(self) -> None:
        if not self.is_loaded and self.model.rowCount() == 0:
            return
        empty = self.model.rowCount() == 0
        self.empty.setText(EMPTY_TEXT)
        self.empty.setAccessibleName("No jobs yet" if empty else "No jobs")
        self.list_stack.setCurrentWidget(self.empty if empty else self.table)
        self._update_count()

    @Slot()
    def _update_count(self, *_args: Any) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        noun = "job" if total == 1 else "jobs"
        self.count.setText(f"{total} {noun}" if shown == total else f"{shown} of {total} {noun}")

    # -- selection and the Review panel --------------------------------------------------------

    def selected_job_id(self) -> int | None:
        """The job the Review panel shows: the current row if selected, else the first."""
        selection = self.table.selectionModel()
        current = self.table.currentIndex()
        if current.isValid() and selection.isRowSelected(current.row(), current.parent()):
            value = current.siblingAtColumn(0).data(JOB_ID_ROLE)
            return int(value) if value is not None else None
        rows = selection.selectedRows()
        if not rows:
            return None
        value = rows[0].data(JOB_ID_ROLE)
        return int(value) if value is not None else None

    def selected_job_ids(self) -> list[int]:
        """Every selected job's id, in the order shown."""
        rows = sorted(self.table.selectionModel().selectedRows(), key=lambda i: i.row())
        return [int(i.data(JOB_ID_ROLE)) for i in rows if i.data(JOB_ID_ROLE) is not None]

    def selected_jobs(self) -> list[Job]:
        jobs = (self.model.job(jid) for jid in self.selected_job_ids())
        return [j for j in jobs if j is not None]

    def selected_job(self) -> Job | None:
        jid = self.selected_job_id()
        return None if jid is None else self.model.job(jid)

    def select_job(self, job_id: int, *, scroll: bool = False) -> bool:
        """Select job ``job_id``'s row (False: not in the queue, or filtered out)."""
        row = self.model.row_of(job_id)
        if row < 0:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            return False
        self.table.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        if scroll:
            self.table.scrollTo(index)
        return True

    def proxy_row_of(self, job_id: int) -> int:
        """The row job ``job_id`` is shown at (after sorting and filtering), or -1."""
        row = self.model.row_of(job_id)
        if row < 0:
            return -1
        return self.proxy.mapFromSource(self.model.index(row, 0)).row()

    def _on_selection(self, *_args: Any) -> None:
        self._sync_review()
        self._update_actions()

    def _sync_review(self) -> None:
        job = self.selected_job()
        shown = self.review.job
        if job is None:
            if shown is not None:
                self.review.show_job(None)
            return
        if shown is not None and _same_version(shown, job):
            return
        self.review.show_job(job)
        if _brief(job):  # the alternatives come with the whole job
            self.bridge.spawn(self._show_whole(job), name="jobs-review-whole")
        self._load_events()

    async def _show_whole(self, brief: Job) -> None:
        """Read the job shown in the Review panel whole (the list holds it without its
        alternatives) and show it, unless another job or version is shown by then."""
        try:
            whole = await self.bridge.call(self.svc.get_job, brief.id)
        except ComfyVNError:
            return  # it left the queue meanwhile: the next reload says so
        shown = self.review.job
        if shown is not None and shown.id == brief.id and _same_version(whole, brief):
            self.review.show_job(whole)

    def _load_events(self) -> None:
        task = self._events_task
        if task is not None and not task.done():
            self._events_again = True
            return
        self._events_task = self.bridge.spawn(self._events_loop(), name="jobs-events")

    async def _events_loop(self) -> None:
        while True:
            self._events_again = False
            job = self.review.job
            events: list[JobEvent] = []
            if job is not None:
                try:
                    events = await self.bridge.call(self.svc.job_events, job.id)
                except ComfyVNError:
                    events = []  # it left the queue meanwhile: the next reload says so
            if self._events_again:
                continue
            if self.review.job is not None and job is not None and self.review.job.id == job.id:
                self.review.set_events(events)
            return

    @Slot()
    def focus_review(self) -> None:
        """Enter on a row: move to the Review panel (a screen reader reads its summary)."""
        if self.selected_job_id() is None:
            current = self.table.currentIndex()
            if current.isValid():
                self.table.selectRow(current.row())
        self.review.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.review.ensureVisible(0, 0)

    @Slot()
    def focus_filter(self) -> None:
        self.filter_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_edit.selectAll()

    @Slot()
    def _filter_done(self) -> None:
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)
        if self.selected_job_id() is None and self.proxy.rowCount() > 0:
            self.table.selectRow(0)

    # -- picking a provider --------------------------------------------------------------------

    @Slot(str)
    def pick(self, provider_id: str) -> asyncio.Task[Any] | None:
        """Run the reviewed job on ``provider_id`` (recorded in its audit trail)."""
        job = self.review.job
        if job is None:
            return None
        return self.bridge.spawn(self._pick(job.id, provider_id), name="jobs-pick")

    @Slot()
    def back_to_advisor(self) -> asyncio.Task[Any] | None:
        """Drop the user's pick of the reviewed job: the advisor decides again."""
        job = self.review.job
        if job is None:
            return None
        return self.bridge.spawn(self._pick(job.id, None), name="jobs-back-to-advisor")

    async def _pick(self, job_id: int, provider_id: str | None) -> None:
        self.review.set_busy(True)
        self.review.banner.show_message(
            "info",
            f"Asking the advisor about {provider_id}…"
            if provider_id
            else "Asking the advisor again…",
        )
        try:
            job = await self.bridge.write(self.svc.pick_provider, job_id, provider_id)
        except ComfyVNError as exc:
            self.review.banner.show_message("error", f"Nothing was changed: {exc.message}")
            return
        finally:
            self.review.set_busy(False)
        await self.reload()
        text = pick_outcome(provider_id, job.meta.get("compute") or {})
        if self.review.job is not None and self.review.job.id == job_id:
            self.review.banner.show_message("ok", text)
        self.picked.emit(job_id)

    # -- dispatch, cancel, remove --------------------------------------------------------------

    @staticmethod
    def _tool_button(action: QAction, name: str, accessible: str) -> QToolButton:
        button = QToolButton()
        button.setObjectName(name)
        button.setDefaultAction(action)
        button.setAccessibleName(accessible)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        return button

    def _update_actions(self) -> None:
        """Each action is enabled where it applies to a selected job."""
        jobs = self.selected_jobs()
        self.dispatch_action.setEnabled(any(j.status == "queued" for j in jobs))
        self.cancel_action.setEnabled(any(_cancellable(j) for j in jobs))
        self.remove_action.setEnabled(any(_removable(j) for j in jobs))

    @Slot()
    def dispatch_selected(self) -> asyncio.Task[Any] | None:
        """Dispatch… the selected queued jobs (the confirmation first)."""
        ids = [j.id for j in self.selected_jobs() if j.status == "queued"]
        return self.ask_dispatch(ids) if ids else None

    @Slot()
    def dispatch_reviewed(self) -> asyncio.Task[Any] | None:
        """The Review panel's Dispatch…: the job it shows."""
        job = self.review.job
        return None if job is None else self.ask_dispatch([job.id])

    def ask_dispatch(self, job_ids: list[int]) -> asyncio.Task[Any]:
        """Ask the service about each job, then open the confirmation (its task returns the
        dialog, or None when it could not be read)."""
        return self.bridge.spawn(self._ask_dispatch(list(job_ids)), name="jobs-ask-dispatch")

    async def _ask_dispatch(self, job_ids: list[int]) -> DispatchDialog | None:
        for d in self.dialogs:
            if isinstance(d, DispatchDialog) and d.isVisible():
                d.raise_()
                d.activateWindow()
                return d
        n = len(job_ids)
        what = f"job {job_ids[0]}" if n == 1 else f"{n} jobs"
        self.dispatch_action.setEnabled(False)
        self.banner.show_message("info", f"Checking {what} before anything is sent…")
        try:
            confirmation = await self.bridge.call(read_confirmation, self.svc, job_ids)
        except ComfyVNError as exc:
            self.banner.show_message("error", f"Nothing was sent: {exc.message}")
            return None
        finally:
            self._update_actions()
        self.banner.clear()
        dialog = DispatchDialog(confirmation, self)
        dialog.upload.connect(self.upload)
        dialog.finished.connect(lambda _r: self.dialogs.forget(dialog))
        self.dialogs.keep(dialog)
        dialog.open()
        self.dispatch_asked.emit(dialog)
        return dialog

    @Slot(list)
    def upload(self, jobs: list[JobToDispatch]) -> asyncio.Task[Any]:
        """Hand the confirmed jobs to the driver, with exactly what the dialog showed."""
        return self.bridge.spawn(self._upload(list(jobs)), name="jobs-upload")

    async def _upload(self, jobs: list[JobToDispatch]) -> list[int]:
        n = len(jobs)
        self.banner.show_message(
            "info", f"Uploading {'job ' + str(jobs[0].job_id) if n == 1 else f'{n} jobs'}…"
        )
        done: list[JobToDispatch] = []
        failed: list[str] = []
        for job in jobs:
            try:
                await self.bridge.write(
                    self.svc.dispatch_job,
                    job.job_id,
                    provider=job.provider,
                    decided_at=job.decided_at,
                    acknowledge=job.codes,
                    interface="window",
                )
            except ComfyVNError as exc:
                failed.append(f"job {job.job_id} was not sent: {exc.message}")
            else:
                done.append(job)
        await self.reload()
        if done:
            names = ", ".join(f"job {j.job_id} to {j.provider}" for j in done)
            text = f"Dispatched {names}: the table follows the progress."
            if failed:
                text += " " + _sentence(failed)
            self.banner.show_message("warning" if failed else "ok", text)
        else:
            self.banner.show_message("error", _sentence(failed))
        ids = [j.job_id for j in done]
        self.dispatched.emit(ids)
        return ids

    @Slot()
    def cancel_selected(self) -> QMessageBox | None:
        """Cancel… the selected jobs in flight (asks first)."""
        return self.ask_cancel([j.id for j in self.selected_jobs() if _cancellable(j)])

    @Slot()
    def cancel_reviewed(self) -> QMessageBox | None:
        """The Review panel's Cancel: the job it shows."""
        job = self.review.job
        return None if job is None else self.ask_cancel([job.id])

    def ask_cancel(self, job_ids: list[int]) -> QMessageBox | None:
        jobs = [j for j in (self.model.job(i) for i in job_ids) if j is not None]
        jobs = [j for j in jobs if _cancellable(j)]
        if not jobs:
            return None
        if len(jobs) == 1:
            text = f"Stop “{jobs[0].title}” (job {jobs[0].id})?"
        else:
            text = f"Stop these {len(jobs)} jobs?"
        details = "\n\n".join(_cancel_words(j) for j in jobs)
        box = QMessageBox(QMessageBox.Icon.Warning, "Cancel job", text, parent=self)
        box.setObjectName("cancel-confirm")
        box.setInformativeText(details)
        stop = box.addButton("Stop", QMessageBox.ButtonRole.DestructiveRole)
        stop.setObjectName("cancel-confirm-stop")
        keep = box.addButton("Keep running", QMessageBox.ButtonRole.RejectRole)
        keep.setObjectName("cancel-confirm-keep")
        box.setDefaultButton(keep)
        ids = [j.id for j in jobs]
        box.finished.connect(
            lambda _r: self._answered_cancel(box, ids, box.clickedButton() is stop)
        )
        self.dialogs.keep(box)
        box.open()
        return box

    def _answered_cancel(self, box: QMessageBox, ids: list[int], yes: bool) -> None:
        self.dialogs.forget(box)
        if yes:
            self.bridge.spawn(self._cancel(ids), name="jobs-cancel")

    async def _cancel(self, ids: list[int]) -> list[int]:
        asked: list[int] = []
        failed: list[str] = []
        for jid in ids:
            try:
                await self.bridge.write(self.svc.cancel_job, jid, interface="window")
            except ComfyVNError as exc:
                failed.append(exc.message)
            else:
                asked.append(jid)
        await self.reload()
        if asked:
            which = ", ".join(str(i) for i in asked)
            text = (
                f"Cancel asked for (job {which}): the driver stops it on its provider and keeps "
                "what finished; the table follows it."
            )
            if failed:
                text += " " + "; ".join(failed)
            self.banner.show_message("warning" if failed else "ok", text)
        else:
            self.banner.show_message("error", "Nothing was cancelled: " + "; ".join(failed))
        self.cancel_asked.emit(asked)
        return asked

    @Slot()
    def remove_selected(self) -> QMessageBox | None:
        """Remove… the selected queued or ended jobs (asks first)."""
        return self.ask_remove([j.id for j in self.selected_jobs() if _removable(j)])

    def ask_remove(self, job_ids: list[int]) -> QMessageBox | None:
        jobs = [j for j in (self.model.job(i) for i in job_ids) if j is not None]
        jobs = [j for j in jobs if _removable(j)]
        if not jobs:
            return None
        if len(jobs) == 1:
            text = f"Remove “{jobs[0].title}” (job {jobs[0].id}) from the queue?"
        else:
            text = f"Remove these {len(jobs)} jobs from the queue?"
        lines = []
        if any(j.status == "queued" for j in jobs):
            lines.append("Nothing was sent for a queued job; it is not run.")
        if any(j.status in ENDED for j in jobs):
            lines.append("The outputs of the jobs that ran stay on disk.")
        lines.append("Each job's audit trail is kept.")
        box = QMessageBox(QMessageBox.Icon.Question, "Remove job", text, parent=self)
        box.setObjectName("remove-confirm")
        box.setInformativeText(" ".join(lines))
        yes = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        yes.setObjectName("remove-confirm-remove")
        no = box.addButton(QMessageBox.StandardButton.Cancel)
        no.setObjectName("remove-confirm-cancel")
        box.setDefaultButton(no)
        ids = [j.id for j in jobs]
        box.finished.connect(lambda _r: self._answered_remove(box, ids, box.clickedButton() is yes))
        self.dialogs.keep(box)
        box.open()
        return box

    def _answered_remove(self, box: QMessageBox, ids: list[int], yes: bool) -> None:
        self.dialogs.forget(box)
        if yes:
            self.bridge.spawn(self._remove(ids), name="jobs-remove")

    async def _remove(self, ids: list[int]) -> list[int]:
        removed: list[int] = []
        failed: list[str] = []
        for jid in ids:
            try:
                await self.bridge.write(self.svc.remove_job, jid)
            except ComfyVNError as exc:
                failed.append(exc.message)
            else:
                removed.append(jid)
        await self.reload()
        if removed:
            which = ", ".join(str(i) for i in removed)
            text = f"Removed job {which} from the queue."
            if failed:
                text += " " + "; ".join(failed)
            self.banner.show_message("warning" if failed else "ok", text)
        else:
            self.banner.show_message("error", "Nothing was removed: " + "; ".join(failed))
        self.removed.emit(removed)
        return removed

    # -- the clock of the jobs in flight --------------------------------------------------------

    def _update_clock(self) -> None:
        """Tick while a job is in flight and the page is shown; stop otherwise."""
        if self.isVisible() and self.model.in_flight():
            if not self.clock.isActive():
                self.clock.start()
        else:
            self.clock.stop()

    @Slot()
    def _tick(self) -> None:
        if not self.model.tick():
            self.clock.stop()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._update_clock()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.clock.stop()

    # -- importing a summary -------------------------------------------------------------------

    @Slot()
    def ask_import(self) -> QFileDialog:
        """Choose a summary to import (a non-blocking dialog; never exec())."""
        for d in self.dialogs:
            if isinstance(d, QFileDialog) and d.isVisible():
                return d
        dialog = QFileDialog(
            self, "Import an importer summary", str(Path.home()), "Importer summaries (*.json)"
        )
        dialog.setObjectName("import-summary-dialog")
        dialog.setAccessibleName("Import an importer summary")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        dialog.fileSelected.connect(self.import_file)
        dialog.finished.connect(lambda _r: self.dialogs.forget(dialog))
        self.dialogs.keep(dialog)
        dialog.open()
        return dialog

    def import_file(self, path: str | Path) -> asyncio.Task[Any]:
        """Import an importer summary: one advised job per unit of work, all or nothing."""
        return self.bridge.spawn(self._import(Path(path)), name="jobs-import")

    def _read_and_import(self, path: Path) -> list[Job]:
        try:
            data = json.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise InputError(f"{path} cannot be read ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise InputError(f"{path.name} is not valid JSON ({exc})") from None
        # (the summary's asset paths are relative to its folder, as `jobs import-summary`
        # reads them: dispatch finds the inputs there)
        return self.svc.import_summary(data, str(path.parent.absolute()))

    async def _import(self, path: Path) -> list[int]:
        self.import_button.setEnabled(False)
        self.banner.show_message("info", f"Importing {path.name}…")
        try:
            jobs = await self.bridge.write(self._read_and_import, path)
        except ComfyVNError as exc:
            self.banner.show_message("error", f"Nothing was imported: {exc.message}")
            self.import_finished.emit([])
            return []
        finally:
            self.import_button.setEnabled(True)
        await self.reload()
        n = len(jobs)
        self.banner.show_message(
            "ok",
            f"Imported {n} job{'s' if n != 1 else ''} from {path.name}. Select one to review "
            "where it runs, what it costs and its warnings.",
        )
        ids = [j.id for j in jobs]
        if ids:
            if not self.select_job(ids[0], scroll=True):  # filtered out: show it anyway
                self.filter_edit.clear()
                self.select_job(ids[0], scroll=True)
        self.import_finished.emit(ids)
        return ids

    # -- drag and drop -------------------------------------------------------------------------

    @staticmethod
    def dropped_summary(mime: QMimeData) -> str | None:
        """The first local .json file a drag carries, or None."""
        if not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and url.toLocalFile().lower().endswith(".json"):
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.dropped_summary(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self.dropped_summary(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self.dropped_summary(event.mimeData())
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.import_file(path)

    # -- dialogs -------------------------------------------------------------------------------

    def close_dialogs(self) -> None:
        """Close the open dialogs, stop the clock and the thumbnails' decoders (the window is
        closing)."""
        self.clock.stop()
        self.dialogs.close_all()
        self.review.stop()


def _sentence(failures: list[str]) -> str:
    """Up to three failures as one sentence: 'Job 3 was not sent: …; job 4 …'."""
    text = "; ".join(failures[:3]) + (" …" if len(failures) > 3 else "")
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "…")) else ".")


def _cancellable(job: Job) -> bool:
    """In flight, and no cancel asked for yet."""
    record = job.meta.get("dispatch") or {}
    return job.status in IN_FLIGHT and not record.get("cancel_requested")


def _removable(job: Job) -> bool:
    return job.status == "queued" or job.status in ENDED


def _cancel_words(job: Job) -> str:
    """What cancelling ``job`` does, in words: the driver stops it, what finished is kept,
    the machine is released, what was spent so far."""
    from datetime import UTC, datetime

    record = job.meta.get("dispatch") or {}
    provider = record.get("provider") or "its provider"
    head = f"Job {job.id}: "
    machine = record.get("machine") or {}
    if machine.get("launched_at") and not machine.get("released_at"):
        name = machine.get("name") or machine.get("id") or "the machine"
        release = f"The machine {name} is released on {provider}, which stops its bill."
    elif record.get("target") == "machine":
        release = f"Any machine it rented on {provider} is released."
    else:
        release = f"The prompt is stopped on {provider}."
    text = f"{head}{release} The outputs that finished are kept."
    spent = spent_so_far(record, datetime.now(UTC))
    hourly = (record.get("price") or {}).get("hourly_usd")
    if spent is not None and hourly:
        text += f" Spent so far: {wording.cost(spent[1])}"
        estimate = (record.get("estimate") or {}).get("cost_usd")
        if isinstance(estimate, int | float):
            text += f" (estimated {wording.cost(estimate)})"
        text += "."
    elif spent is not None:
        text += " Nothing is billed on this provider."
    return text


def _brief(job: Job) -> bool:
    """Whether ``job`` was read without its alternatives (``list_jobs(brief=True)``)."""
    advice = (job.meta.get("compute") or {}).get("advice")
    return isinstance(advice, dict) and "alternatives" not in advice


def _same_version(a: Job, b: Job) -> bool:
    """The same job as stored at the same time (one may be brief, the other whole)."""
    return a is b or _without_alternatives(a) == _without_alternatives(b)


def _without_alternatives(job: Job) -> Job:
    compute = job.meta.get("compute")
    if not isinstance(compute, dict):
        return job
    advice = compute.get("advice")
    if not isinstance(advice, dict) or "alternatives" not in advice:
        return job
    brief = {k: v for k, v in advice.items() if k != "alternatives"}
    return job.model_copy(update={"meta": {**job.meta, "compute": {**compute, "advice": brief}}})
