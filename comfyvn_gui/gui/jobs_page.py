"""Jobs: the ComfyVN importer jobs, where each would run, what it would cost, why, and what to
watch out for — and the Review panel to see it all for one job and pick another provider.

Nothing here blocks the GUI thread: the queue, the audit trail, an import and a pick go
through :class:`~comfyvn_gui.gui.bridge.ServiceBridge` (the service's I/O pool). The service
re-advises the queued jobs itself whenever a provider's health or activation, the registry or
an ``advisor.*`` setting changes; this page only reloads when the bridge says the job queue
(or the providers, or the check results) changed. Reloads are coalesced: while one reads, any
number of further requests make one more read, never a queue of them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QItemSelectionModel,
    QMimeData,
    QObject,
    QSize,
    QSortFilterProxyModel,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from comfyvn_gui.core.errors import ComfyVNError, InputError
from comfyvn_gui.core.jobs import Job, JobEvent

from .bridge import ServiceBridge
from .jobs_model import (
    ADVICE_ROLE,
    ALTERNATIVE_ROLE,
    JOB_ID_ROLE,
    JOB_ROLE,
    KIND_NAMES,
    SEARCH_ROLE,
    SORT_ROLE,
    WARNING_WORDS,
    AlternativesModel,
    Column,
    EventsModel,
    JobsModel,
    cost_text,
    local_time,
    minutes_text,
    size_text,
)
from .remote_gpu import Banner

__all__ = [
    "ADVICE_ROLE",
    "ALTERNATIVE_ROLE",
    "EMPTY_TEXT",
    "JOB_ID_ROLE",
    "JOB_ROLE",
    "SORT_ROLE",
    "WARNING_WORDS",
    "AlternativesModel",
    "EventsModel",
    "JobsModel",
    "JobsPage",
    "ReviewPanel",
    "WarningList",
]

EMPTY_TEXT = (
    "No jobs yet. Import an importer summary (File → Import summary… or drop a .json here)."
)

#: How the advisor's deciding rule reads after "Chosen by the advisor".
RULE_WORDS: dict[str, str] = {
    "local_gpu": "this computer's GPU comes first",
    "cost_free_on_prem": "a cost-free node on your network",
    "cheapest": "the cheapest eligible provider",
    "interactive_latency": "the quickest to start, for interactive work",
    "cached_graphs": "it keeps cached ComfyUI graphs",
    "user_pick": "your pick",
}


def _heading(text: str, name: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setObjectName(name)
    label.setAccessibleName(text)
    font = QFont(label.font())
    font.setBold(True)
    label.setFont(font)
    return label


def _text(name: str, accessible: str, parent: QWidget, *, wrap: bool = True) -> QLabel:
    label = QLabel(parent)
    label.setObjectName(name)
    label.setAccessibleName(accessible)
    label.setWordWrap(wrap)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    return label


class _FitTable(QTableView):
    """A table of a few rows that is as tall as its rows (no inner scrolling, no clipping):
    the short columns fit their contents, the last one takes the rest and wraps."""

    def __init__(self, name: str, accessible: str, model: Any, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setAccessibleName(accessible)
        self.setModel(model)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        rows = self.verticalHeader()
        rows.hide()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        rows.sectionResized.connect(self._grown)
        header = self.horizontalHeader()
        header.setAccessibleName(f"{accessible} columns")
        header.setHighlightSections(False)
        header.setStretchLastSection(True)
        header.setMinimumSectionSize(self.fontMetrics().horizontalAdvance("Why not") + 12)
        last = model.columnCount() - 1
        for col in range(last):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.sectionResized.connect(self._grown)
        model.modelReset.connect(self._grown)

    def _grown(self, *_args: Any) -> None:
        self.updateGeometry()

    def sizeHint(self) -> QSize:
        rows = sum(self.rowHeight(r) for r in range(self.model().rowCount()))
        rows = max(rows, self.fontMetrics().height() + 8)  # an empty table keeps a row
        height = self.horizontalHeader().sizeHint().height() + rows + 2 * self.frameWidth()
        return QSize(super().sizeHint().width(), height)

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), self.sizeHint().height())


class WarningList(QWidget):
    """Every warning of an advice, one word-wrapped line each: the code in words, then the
    message (data leaving the machine, residency, licences, DPIA, skipped providers)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("review-warnings")
        self.setAccessibleName("Warnings")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self._labels: list[QLabel] = []
        self._items: list[tuple[str, str]] = []

    def set_warnings(self, warnings: Sequence[Mapping[str, Any]]) -> None:
        for label in self._labels:
            self._layout.removeWidget(label)
            label.hide()
            label.deleteLater()
        self._labels = []
        self._items = []
        if not warnings:
            warnings_shown: list[tuple[str, str]] = [("", "No warnings.")]
        else:
            warnings_shown = []
            for w in warnings:
                code = str(w.get("code", ""))
                words = WARNING_WORDS.get(code, code.replace("_", " ").capitalize())
                about = f" ({w['provider']})" if w.get("provider") else ""
                warnings_shown.append((code, f"⚠ {words}{about}: {w.get('message', '')}"))
        for i, (code, text) in enumerate(warnings_shown):
            label = _text(f"review-warning-{i}", text.removeprefix("⚠ "), self)
            label.setText(text)
            if code:
                label.setToolTip(code)
                self._items.append((code, text))
            self._layout.addWidget(label)
            label.show()  # (a child added to a shown widget stays hidden until shown)
            self._labels.append(label)
        self.setAccessibleDescription(f"{len(self._items)} warnings")

    def items(self) -> list[tuple[str, str]]:
        """(code, the line shown) for each warning."""
        return list(self._items)

    def codes(self) -> list[str]:
        return [c for c, _ in self._items]

    def labels(self) -> list[QLabel]:
        return list(self._labels)


class ReviewPanel(QScrollArea):
    """Everything about one job: the decision and who made it, the reason, every warning, the
    requirements, the alternatives (with "Use this provider"), and the audit trail."""

    pick_requested = Signal(str)
    advisor_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("review")
        self.setAccessibleName("Review of the selected job")
        self.setMinimumWidth(280)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.verticalScrollBar().setAccessibleName("Scroll the review")
        self.job: Job | None = None
        self._busy = False

        body = QWidget(self)
        body.setObjectName("review-body")
        body.setAccessibleName("Review of the selected job")
        self.placeholder = QLabel(
            "Select a job to see where it runs, what it costs, why, and what to watch out for.",
            body,
        )
        self.placeholder.setObjectName("review-placeholder")
        self.placeholder.setAccessibleName("No job selected")
        self.placeholder.setWordWrap(True)

        self.details = QWidget(body)
        self.details.setObjectName("review-details")
        self.details.setAccessibleName("Review of the selected job")
        d = self.details
        self.title = _text("review-title", "Job title", d)
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        self.status = _text("review-status", "Job status", d)
        self.decision = _text("review-decision", "Where it runs", d)
        dfont = QFont(self.decision.font())
        dfont.setBold(True)
        self.decision.setFont(dfont)
        self.decided = _text("review-decided", "Who decided, and when", d)
        self.banner = Banner(d)
        self.banner.setObjectName("review-banner")
        self.banner.setAccessibleName("Result of your choice")

        self.reason = _text("review-reason", "Why", d)
        self.hint = _text("review-hint", "Tip", d)
        self.warnings_heading = _heading("Warnings", "review-warnings-heading", d)
        self.warnings = WarningList(d)
        self.requirements = _text("review-requirements", "What the job needs", d)
        self.assumptions_toggle = QToolButton(d)
        self.assumptions_toggle.setObjectName("review-assumptions-toggle")
        self.assumptions_toggle.setCheckable(True)
        self.assumptions_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.assumptions_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.assumptions_toggle.setAutoRaise(True)
        self.assumptions_toggle.setText("Assumptions")
        self.assumptions_toggle.setAccessibleName("Show the estimate's assumptions")
        self.assumptions_toggle.toggled.connect(self._toggle_assumptions)
        self.assumptions = _text("review-assumptions", "The estimate's assumptions", d)
        self.assumptions.hide()

        self.alternatives_model = AlternativesModel(self)
        self.alternatives = _FitTable(
            "review-alternatives", "Alternatives", self.alternatives_model, d
        )
        self.alternatives.selectionModel().selectionChanged.connect(self._update_buttons)
        self.use_button = QPushButton("&Use this provider", d)
        self.use_button.setObjectName("use-provider")
        self.use_button.setAccessibleName("Use this provider")
        self.use_button.setToolTip("Run this job on the selected alternative instead")
        self.use_button.clicked.connect(self._use)
        self.back_button = QPushButton("&Back to the advisor's choice", d)
        self.back_button.setObjectName("back-to-advisor")
        self.back_button.setAccessibleName("Back to the advisor's choice")
        self.back_button.setToolTip("Drop your pick: the advisor decides again")
        self.back_button.clicked.connect(self.advisor_requested)
        self.back_button.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.back_button)
        buttons.addStretch(1)

        self.events_model = EventsModel(self)
        self.events = QListView(d)
        self.events.setObjectName("review-events")
        self.events.setAccessibleName("Audit trail")
        self.events.setModel(self.events_model)
        self.events.setWordWrap(True)
        self.events.setUniformItemSizes(False)
        self.events.setResizeMode(QListView.ResizeMode.Adjust)
        self.events.setAlternatingRowColors(True)
        self.events.setSpacing(1)
        self.events.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.events.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.events.setMinimumHeight(6 * self.events.fontMetrics().height())
        self.events.setMaximumHeight(18 * self.events.fontMetrics().height())
        self.events.verticalScrollBar().setAccessibleName("Scroll the audit trail")

        lay = QVBoxLayout(d)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        for w in (self.title, self.status, self.decision, self.decided, self.banner):
            lay.addWidget(w)
        lay.addSpacing(6)
        lay.addWidget(_heading("Why", "review-reason-heading", d))
        lay.addWidget(self.reason)
        lay.addWidget(self.hint)
        lay.addSpacing(6)
        lay.addWidget(self.warnings_heading)
        lay.addWidget(self.warnings)
        lay.addSpacing(6)
        lay.addWidget(_heading("Requirements", "review-requirements-heading", d))
        lay.addWidget(self.requirements)
        lay.addWidget(self.assumptions_toggle)
        lay.addWidget(self.assumptions)
        lay.addSpacing(6)
        lay.addWidget(_heading("Alternatives", "review-alternatives-heading", d))
        lay.addWidget(self.alternatives)
        lay.addLayout(buttons)
        lay.addSpacing(6)
        lay.addWidget(_heading("Audit trail", "review-events-heading", d))
        lay.addWidget(self.events)
        lay.addStretch(1)

        outer = QVBoxLayout(body)
        outer.setContentsMargins(12, 4, 8, 8)
        outer.addWidget(self.placeholder)
        outer.addWidget(self.details)
        outer.addStretch(1)
        self.setWidget(body)
        self.show_job(None)

    # -- showing a job ---------------------------------------------------------------------

    def show_job(self, job: Job | None) -> None:
        """Show ``job`` (None: nothing selected). The banner stays for the same job."""
        if job is None or self.job is None or job.id != self.job.id:
            self.banner.clear()
            self.events_model.set_events([])
            self.assumptions_toggle.setChecked(False)
        self.job = job
        self.placeholder.setVisible(job is None)
        self.details.setVisible(job is not None)
        if job is None:
            self.setAccessibleDescription("No job selected")
            self._update_buttons()
            return
        compute = job.meta.get("compute") or {}
        advice: dict[str, Any] = compute.get("advice") or {}
        provider = compute.get("provider")
        by_user = compute.get("decided_by") == "user"
        chosen = advice.get("chosen") or {}

        self.title.setText(job.title)
        self.status.setText(
            f"Job {job.id} · {job.status.capitalize()} · "
            f"{KIND_NAMES.get(job.kind, job.kind)} · {size_text(job.workload)}"
        )
        if provider is None:
            decision = "No provider can run this job now."
        else:
            name = str(chosen.get("name") or provider)
            who = f"{name} ({provider})" if name != provider else provider
            cost = advice.get("estimated_cost") or cost_text(advice.get("estimated_cost_usd"))
            minutes = minutes_text(advice.get("estimated_minutes"))
            decision = f"Runs on {who} — {cost}, ~{minutes}"
        self.decision.setText(decision)
        when = local_time(compute.get("decided_at"))
        if not compute:
            decided = "Not advised yet."
        elif by_user:
            decided = f"Your pick, on {when}. The advisor keeps it while it can run the job."
        else:
            rule = RULE_WORDS.get(str(advice.get("decided_by") or ""))
            decided = f"Decided by the advisor{f' ({rule})' if rule else ''} on {when}."
        self.decided.setText(decided)

        self.reason.setText(str(advice.get("reason") or "No advice yet."))
        hint = advice.get("policy_hint")
        self.hint.setText(f"Tip: {hint}" if hint else "")
        self.hint.setVisible(bool(hint))
        warnings = advice.get("warnings") or []
        self.warnings_heading.setText(f"Warnings ({len(warnings)})")
        self.warnings_heading.setAccessibleName(f"Warnings ({len(warnings)})")
        self.warnings.set_warnings(warnings)

        req = advice.get("requirements") or {}
        if req:
            source = {
                "estimate": "estimated",
                "explicit": "as the job gives them",
                "partly_explicit": "partly estimated",
            }.get(str(req.get("source")), "")
            self.requirements.setText(
                f"{req.get('vram_gb', 0):g} GB of VRAM, {req.get('gpu_hours', 0):g} GPU-hours "
                f"on the reference A10G" + (f" ({source})." if source else ".")
            )
        else:
            self.requirements.setText("Not estimated yet.")
        assumptions = list(req.get("assumptions") or [])
        self.assumptions.setText("\n".join(f"• {a}" for a in assumptions))
        self.assumptions_toggle.setText(f"Assumptions ({len(assumptions)})")
        self.assumptions_toggle.setVisible(bool(assumptions))

        self.alternatives_model.set_alternatives(advice.get("alternatives") or [])
        self.back_button.setVisible(by_user)
        self._update_buttons()
        self.setAccessibleDescription(
            f"{job.title}. {decision}. {len(warnings)} warning{'s' if len(warnings) != 1 else ''}."
        )

    def set_events(self, events: Sequence[JobEvent]) -> None:
        self.events_model.set_events(events)
        if events:
            self.events.scrollToBottom()

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update_buttons()

    def selected_alternative(self) -> dict[str, Any] | None:
        rows = self.alternatives.selectionModel().selectedRows()
        if not rows:
            return None
        return self.alternatives_model.alternative(rows[0].row())

    def select_alternative(self, provider_id: str) -> bool:
        for row in range(self.alternatives_model.rowCount()):
            if self.alternatives_model.alternative(row).get("provider") == provider_id:
                self.alternatives.selectRow(row)
                return True
        return False

    # -- internals -------------------------------------------------------------------------

    def _queued(self) -> bool:
        return self.job is not None and self.job.status == "queued"

    @Slot()
    def _update_buttons(self, *_args: Any) -> None:
        alt = self.selected_alternative()
        ok = alt is not None and bool(alt.get("eligible")) and self._queued() and not self._busy
        self.use_button.setEnabled(ok)
        if alt is not None:
            name = f"{alt.get('name') or alt.get('provider')} ({alt.get('provider')})"
            self.use_button.setAccessibleDescription(
                f"Use {name} for this job"
                if alt.get("eligible")
                else f"{name} cannot run this job: {alt.get('excluded_because') or ''}"
            )
        else:
            self.use_button.setAccessibleDescription("Select an eligible alternative first")
        self.back_button.setEnabled(self._queued() and not self._busy)

    @Slot(bool)
    def _toggle_assumptions(self, on: bool) -> None:
        self.assumptions.setVisible(on)
        self.assumptions_toggle.setArrowType(
            Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow
        )
        self.assumptions_toggle.setAccessibleName(
            "Hide the estimate's assumptions" if on else "Show the estimate's assumptions"
        )

    @Slot()
    def _use(self) -> None:
        alt = self.selected_alternative()
        if alt is not None and alt.get("eligible") and self.use_button.isEnabled():
            self.pick_requested.emit(str(alt["provider"]))


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

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        source = self.sourceModel()
        if source is not None:
            source.sort(column, order)

    def set_needle(self, text: str) -> None:
        needle = text.casefold().split()
        if needle == self._needle:
            return
        if hasattr(self, "beginFilterChange"):  # Qt 6.9+
            self.beginFilterChange()
            self._needle = needle
            self.endFilterChange()
        else:
            self._needle = needle
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Any) -> bool:
        if not self._needle:
            return True
        model = self.sourceModel()
        text = model.data(model.index(source_row, 0, source_parent), SEARCH_ROLE)
        return all(word in text for word in self._needle)


class JobsPage(QWidget):
    """The Jobs place: the queue, an import, the filter, and the Review panel."""

    loaded = Signal()
    #: After each reload has been applied to the table.
    reloaded = Signal()
    #: The ids of the jobs an import added ([] when nothing was imported).
    import_finished = Signal(list)
    #: A pick (or the return to the advisor's choice) was recorded: the job's id.
    picked = Signal(int)

    def __init__(self, bridge: ServiceBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page-jobs")
        self.setAccessibleName("Jobs")
        self.setAcceptDrops(True)
        self.bridge = bridge
        self.svc = bridge.service
        self.is_loaded = False
        self._load_task: asyncio.Task[Any] | None = None
        self._reload_task: asyncio.Task[Any] | None = None
        self._reload_again = False
        self._events_task: asyncio.Task[Any] | None = None
        self._events_again = False
        self._dialogs: list[QObject] = []

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
        tools = QHBoxLayout()
        tools.addWidget(self.import_button)
        tools.addWidget(self.filter_edit, 1)
        tools.addWidget(self.count)

        self.banner = Banner(self)
        self.banner.setObjectName("banner")

        # -- the table -----------------------------------------------------------------------
        self.model = JobsModel(self)
        self.proxy = _JobsProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView(self)
        self.table.setObjectName("jobs-table")
        self.table.setAccessibleName("Jobs")
        self.table.setAccessibleDescription(
            "One row per job; Enter moves to the review of the selected job."
        )
        self.table.setModel(self.proxy)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setCornerButtonEnabled(False)
        vh = self.table.verticalHeader()
        vh.hide()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # uniform row heights
        vh.setDefaultSectionSize(self.table.fontMetrics().height() + 10)
        hh = self.table.horizontalHeader()
        hh.setAccessibleName("Job columns: click one to sort by it")
        hh.setHighlightSections(False)
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setSectionsMovable(True)  # e.g. drag Provider and Est. cost next to the title
        for col, width in {
            Column.JOB: 230,
            Column.KIND: 105,
            Column.SIZE: 105,
            Column.STATUS: 60,
            Column.PROVIDER: 115,
            Column.COST: 62,
            Column.REASON: 220,
            Column.WARNINGS: 60,
        }.items():
            hh.resizeSection(col, width)
        # The advice sits next to each job: Job, Provider, Est. cost, Warnings, then the rest.
        for visual, col in enumerate((Column.JOB, Column.PROVIDER, Column.COST, Column.WARNINGS)):
            hh.moveSection(hh.visualIndex(col), visual)
        hh.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # the queue's order at first
        self.table.setSortingEnabled(True)
        self.table.horizontalScrollBar().setAccessibleName("Scroll the jobs sideways")
        self.table.verticalScrollBar().setAccessibleName("Scroll the jobs")

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
        bridge.jobs_changed.connect(self.refresh)
        bridge.results_changed.connect(self.refresh)
        bridge.providers_changed.connect(self.refresh)

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
        task = self._reload_task
        if task is not None and not task.done():
            self._reload_again = True
            return task
        self._reload_task = self.bridge.spawn(self._reload_loop(), name="jobs-reload")
        return self._reload_task

    async def reload(self) -> None:
        """Read the queue and show it; returns once a read that began after the call is shown."""
        await self.refresh()

    async def _reload_loop(self) -> None:
        while True:
            self._reload_again = False
            try:
                jobs = await self.bridge.call(self.svc.list_jobs)
            except ComfyVNError as exc:
                self.banner.show_message("error", f"The job queue cannot be read: {exc.message}")
                return
            if self._reload_again:
                continue  # something changed while reading: read again, show once
            self._apply(jobs)
            return

    def _apply(self, jobs: Sequence[Job]) -> None:
        selected = self.selected_job_id()
        if self.model.set_jobs(jobs) and selected is not None:
            self.select_job(selected)
        elif selected is None and jobs:  # open the first job's review
            self.select_job(self.model.job_at(0).id)
        self._update_empty()
        self._sync_review()
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
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        value = rows[0].data(JOB_ID_ROLE)
        return int(value) if value is not None else None

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

    def _sync_review(self) -> None:
        job = self.selected_job()
        shown = self.review.job
        if job is None:
            if shown is not None:
                self.review.show_job(None)
            return
        if shown is not None and shown.id == job.id and shown == job:
            return
        self.review.show_job(job)
        self._load_events()

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
            job = await self.bridge.call(self.svc.pick_provider, job_id, provider_id)
        except ComfyVNError as exc:
            self.review.banner.show_message("error", f"Nothing was changed: {exc.message}")
            return
        finally:
            self.review.set_busy(False)
        await self.reload()
        compute = job.meta.get("compute") or {}
        advice = compute.get("advice") or {}
        cost = advice.get("estimated_cost") or cost_text(advice.get("estimated_cost_usd"))
        if provider_id is not None:
            text = (
                f"This job now runs on {provider_id} ({cost}), your pick. "
                "Recorded in its audit trail."
            )
        else:
            choice = compute.get("provider")
            text = (
                f"Back to the advisor's choice: {choice} ({cost})."
                if choice
                else "Back to the advisor's choice: no provider can run this job now."
            ) + " Recorded in its audit trail."
        if self.review.job is not None and self.review.job.id == job_id:
            self.review.banner.show_message("ok", text)
        self.picked.emit(job_id)

    # -- importing a summary -------------------------------------------------------------------

    @Slot()
    def ask_import(self) -> QFileDialog:
        """Choose a summary to import (a non-blocking dialog; never exec())."""
        for d in self._dialogs:
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
        dialog.finished.connect(lambda _r: self._forget(dialog))
        self._dialogs.append(dialog)
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
        return self.svc.import_summary(data)

    async def _import(self, path: Path) -> list[int]:
        self.import_button.setEnabled(False)
        self.banner.show_message("info", f"Importing {path.name}…")
        try:
            jobs = await self.bridge.call(self._read_and_import, path)
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

    def _forget(self, obj: QObject) -> None:
        if obj in self._dialogs:
            self._dialogs.remove(obj)
            obj.deleteLater()

    def close_dialogs(self) -> None:
        """Close the open file dialog, if any (the window is closing)."""
        for d in list(self._dialogs):
            if isinstance(d, QFileDialog):
                d.reject()
        for d in list(self._dialogs):
            self._forget(d)
