"""The Jobs page's Review panel: everything about one job — the decision and who made it,
Dispatch… and Cancel job, how it ended (the driver's words: what failed, what to do), its
lifecycle, what it cost against the estimate, its outputs as thumbnails (before / after for
super-resolution and remix) with "Open folder", the reason, every warning, the requirements, the
alternatives' costs as a bar chart above their list (with "Use this provider") and the audit
trail. What it says is worked out in :mod:`.review_text` (docs/architecture.md, "GUI"); the
output images are decoded off the GUI thread (:mod:`comfyvn_gui.gui.widgets.thumbnails`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDesktopServices, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from comfyvn_gui.core.errors import ComfyVNError
from comfyvn_gui.core.jobs import IN_FLIGHT, Job, JobEvent
from comfyvn_gui.gui.widgets.banner import Banner
from comfyvn_gui.gui.widgets.cost_chart import CostChart
from comfyvn_gui.gui.widgets.thumbnails import Thumb, ThumbnailGrid

from .model import AlternativesModel, EventsModel
from .review_text import (
    PAIRED_KINDS,
    assumption_lines,
    cost_bars,
    decided_line,
    decision_line,
    lifecycle_lines,
    outcome,
    output_files,
    output_tiles,
    requirements_line,
    spend_line,
    status_line,
    warning_lines,
)

__all__ = ["ReviewPanel", "WarningList"]


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
        self._lines: list[tuple[str, str]] = []

    def set_warnings(self, warnings: Sequence[Mapping[str, Any]]) -> None:
        # The list is hidden while its lines are replaced and shown once: showing each new
        # line in a shown list laid the whole Review panel out again per line (300-500 ms
        # for a job with many warnings, each time the selection moved).
        lines = list(warning_lines(warnings))
        if self._labels and lines == self._lines:
            return  # the same warnings (a job in flight writes its progress many times)
        self._lines = lines
        shown = self.isVisible()
        if shown:
            self.hide()
        for label in self._labels:
            self._layout.removeWidget(label)
            label.deleteLater()
        self._labels = []
        self._items = []
        for i, (code, text) in enumerate(lines):
            label = _text(f"review-warning-{i}", text.removeprefix("⚠ "), self)
            label.setText(text)
            if code:
                label.setToolTip(code)
                self._items.append((code, text))
            self._layout.addWidget(label)
            self._labels.append(label)
        self.setAccessibleDescription(f"{len(self._items)} warnings")
        if shown:
            self.show()

    def items(self) -> list[tuple[str, str]]:
        """(code, the line shown) for each warning."""
        return list(self._items)

    def codes(self) -> list[str]:
        return [c for c, _ in self._items]

    def labels(self) -> list[QLabel]:
        return list(self._labels)


def read_tiles(job: Job) -> list[Thumb]:
    """The output tiles of ``job`` (blocking: run off the GUI thread). A super-resolution or
    remix job's input files are looked up (``service.inputs.job_inputs``, as the driver did,
    in the project folder it used) to show each beside its output; when they cannot be found
    the outputs are shown alone."""
    inputs: list[Path] | None = None
    if job.kind in PAIRED_KINDS:
        from comfyvn_gui.service.inputs import job_inputs  # (lazy: the service's own read)

        record = job.meta.get("dispatch") or {}
        try:
            inputs = job_inputs(job.id, job.source, record.get("project_dir"))
        except (ComfyVNError, OSError):
            inputs = None
    return [
        Thumb(paths, caption, tip, opens=paths[-1])
        for paths, caption, tip in output_tiles(job, inputs)
    ]


class ReviewPanel(QScrollArea):
    """Everything about one job: the decision and who made it, Dispatch… / Cancel job, how it
    ended, its lifecycle, cost and outputs, the reason, every warning, the requirements, the
    alternatives (a cost chart, the list, "Use this provider"), and the audit trail."""

    pick_requested = Signal(str)
    advisor_requested = Signal()
    #: "Dispatch…" (a queued job): the page opens the dispatch dialog.
    dispatch_requested = Signal()
    #: "Cancel job" (a job in flight): the page confirms and cancels.
    cancel_requested = Signal()

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
        self._events: list[JobEvent] = []
        self._outputs_key: tuple[Any, ...] | None = None

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

        self.dispatch_button = QPushButton("&Dispatch…", d)
        self.dispatch_button.setObjectName("review-dispatch")
        self.dispatch_button.setAccessibleName("Dispatch")
        self.dispatch_button.setToolTip(
            "Review the warnings and the estimate, then upload the job and run it"
        )
        self.dispatch_button.clicked.connect(self.dispatch_requested)
        self.cancel_button = QPushButton("&Cancel job", d)
        self.cancel_button.setObjectName("review-cancel")
        self.cancel_button.setAccessibleName("Cancel job")
        self.cancel_button.setToolTip("Stop this job; what finished is kept")
        self.cancel_button.clicked.connect(self.cancel_requested)
        run_buttons = QHBoxLayout()
        run_buttons.addWidget(self.dispatch_button)
        run_buttons.addWidget(self.cancel_button)
        run_buttons.addStretch(1)

        # How it ended: the driver's message, which says what failed and what to do.
        self.outcome = Banner(d)
        self.outcome.setObjectName("review-outcome")
        self.outcome.setAccessibleName("How the job ended")

        self.dispatch_box = QWidget(d)
        self.dispatch_box.setObjectName("review-dispatch-box")
        self.dispatch_box.setAccessibleName("The job's run")
        box = self.dispatch_box
        self.lifecycle = _text("review-lifecycle", "Lifecycle", box)
        self.spend = _text("review-spend", "What it cost", box)
        self.outputs_heading = _heading("Outputs", "review-outputs-heading", box)
        self.outputs_note = _text("review-outputs-note", "About the outputs", box)
        self.thumbnails = ThumbnailGrid(box)
        self.thumbnails.setObjectName("review-thumbnails")
        self.thumbnails.all_loaded.connect(self._outputs_loaded)
        self.thumbnails.failed.connect(self._outputs_failed)
        self.open_folder_button = QPushButton("Open &folder", box)
        self.open_folder_button.setObjectName("review-open-folder")
        self.open_folder_button.setAccessibleName("Open the outputs folder")
        self.open_folder_button.clicked.connect(self.open_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.outputs_note, 1)
        folder_row.addWidget(self.open_folder_button)
        blay = QVBoxLayout(box)
        blay.setContentsMargins(0, 0, 0, 0)
        blay.setSpacing(6)
        blay.addWidget(_heading("Lifecycle", "review-lifecycle-heading", box))
        blay.addWidget(self.lifecycle)
        blay.addWidget(self.spend)
        blay.addSpacing(6)
        blay.addWidget(self.outputs_heading)
        blay.addWidget(self.thumbnails)
        blay.addLayout(folder_row)

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

        self.cost_chart = CostChart(d)
        self.cost_chart.setObjectName("review-cost-chart")
        self.cost_chart.bar_activated.connect(self.select_alternative)
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
        lay.addLayout(run_buttons)
        lay.addWidget(self.outcome)
        lay.addWidget(self.dispatch_box)
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
        lay.addWidget(self.cost_chart)
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
            self._events = []
            self.assumptions_toggle.setChecked(False)
        self.job = job
        self.placeholder.setVisible(job is None)
        self.details.setVisible(job is not None)
        self._show_run(job)
        if job is None:
            self.setAccessibleDescription("No job selected")
            self._update_buttons()
            return
        compute = job.meta.get("compute") or {}
        advice: dict[str, Any] = compute.get("advice") or {}
        by_user = compute.get("decided_by") == "user"

        self.title.setText(job.title)
        self.status.setText(status_line(job))
        decision = decision_line(compute, advice)
        self.decision.setText(decision)
        self.decided.setText(decided_line(compute, advice))

        self.reason.setText(str(advice.get("reason") or "No advice yet."))
        hint = advice.get("policy_hint")
        self.hint.setText(f"Tip: {hint}" if hint else "")
        self.hint.setVisible(bool(hint))
        warnings = advice.get("warnings") or []
        self.warnings_heading.setText(f"Warnings ({len(warnings)})")
        self.warnings_heading.setAccessibleName(f"Warnings ({len(warnings)})")
        self.warnings.set_warnings(warnings)

        req = advice.get("requirements") or {}
        self.requirements.setText(requirements_line(req))
        assumptions = assumption_lines(req)
        self.assumptions.setText("\n".join(f"• {a}" for a in assumptions))
        self.assumptions_toggle.setText(f"Assumptions ({len(assumptions)})")
        self.assumptions_toggle.setVisible(bool(assumptions))

        self.cost_chart.set_bars(cost_bars(advice))
        self.alternatives_model.set_alternatives(advice.get("alternatives") or [])
        self.back_button.setVisible(by_user)
        self._update_buttons()
        self.setAccessibleDescription(
            f"{job.title}. {decision}. {len(warnings)} warning{'s' if len(warnings) != 1 else ''}."
        )

    def set_events(self, events: Sequence[JobEvent]) -> None:
        self.events_model.set_events(events)
        self._events = list(events)
        if self.job is not None:
            self._show_lifecycle(self.job)
        if events:
            self.events.scrollToBottom()

    def stop(self) -> None:
        """Leave nothing running (the thumbnails' decoders): the page calls it as it closes."""
        self.thumbnails.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.stop()
        super().closeEvent(event)

    def outputs_folder(self) -> Path | None:
        """Where the shown job's outputs go (the folder the service recorded at dispatch)."""
        record = (self.job.meta.get("dispatch") or {}) if self.job is not None else {}
        folder = record.get("outputs_dir") if isinstance(record, dict) else None
        return Path(folder) if folder else None

    @Slot()
    def open_folder(self) -> bool:
        """Open the outputs folder in the desktop's file manager."""
        folder = self.outputs_folder()
        if folder is None:
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

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

    def _show_run(self, job: Job | None) -> None:
        """How the job ended, its lifecycle, cost and outputs (a job never dispatched has
        none of these)."""
        record = (job.meta.get("dispatch") or {}) if job is not None else {}
        if job is None or not record:
            self.dispatch_box.hide()
            self.outcome.clear()
            if self._outputs_key is not None:
                self._outputs_key = None
                self.thumbnails.clear()
            return
        ended = outcome(job)
        if ended is None:
            self.outcome.clear()
        elif self.outcome.label.text() != ended[1] or self.outcome.kind != ended[0]:
            self.outcome.show_message(*ended)
        self._show_lifecycle(job)
        self.spend.setText(spend_line(job))
        files = output_files(job)
        n = len(files)
        self.outputs_heading.setText(f"Outputs ({n})")
        self.outputs_heading.setAccessibleName(f"Outputs ({n})")
        self.open_folder_button.setEnabled(self.outputs_folder() is not None)
        self.open_folder_button.setToolTip(str(self.outputs_folder() or ""))
        self.thumbnails.setVisible(n > 0)
        self.thumbnails.setAccessibleDescription(
            f"{n} output image{'s' if n != 1 else ''}; Enter or a double-click opens one"
        )
        key = (job.id, tuple(files))
        if key != self._outputs_key:
            self._outputs_key = key
            if n:
                self.outputs_note.setText(f"Loading {n} image{'s' if n != 1 else ''}…")
                self.thumbnails.load(functools.partial(read_tiles, job))
            else:
                self.thumbnails.clear()
                self.outputs_note.setText(
                    "No output files yet." if job.status in IN_FLIGHT else "No output files."
                )
        self.dispatch_box.show()

    def _show_lifecycle(self, job: Job) -> None:
        lines = lifecycle_lines(job, self._events)
        self.lifecycle.setText("\n".join(lines))
        self.lifecycle.setAccessibleDescription("; ".join(lines))

    @Slot()
    def _outputs_loaded(self) -> None:
        count = self.thumbnails.thumbs.rowCount()
        if count:
            self.outputs_note.setText("Double-click an image to open it.")

    @Slot(object)
    def _outputs_failed(self, exc: object) -> None:
        self.outputs_note.setText(f"The outputs cannot be shown: {exc}")

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
        self.dispatch_button.setEnabled(self._queued() and not self._busy)
        job = self.job
        record = (job.meta.get("dispatch") or {}) if job is not None else {}
        in_flight = job is not None and job.status in IN_FLIGHT
        asked = bool(record.get("cancel_requested")) if isinstance(record, dict) else False
        self.cancel_button.setEnabled(in_flight and not asked and not self._busy)
        self.cancel_button.setVisible(in_flight)
        self.dispatch_button.setVisible(job is None or job.status == "queued")
        self.cancel_button.setAccessibleDescription(
            "Cancel asked for: the driver is stopping it" if asked else "Stop this job"
        )

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
