"""The Jobs page's Review panel: everything about one job — the decision and who made it,
the reason, every warning, the requirements, the alternatives (with "Use this provider") and
the audit trail. What it says is worked out in :mod:`.review_text` (docs/architecture.md, "GUI").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QFont
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

from comfyvn_gui.core.jobs import Job, JobEvent
from comfyvn_gui.gui.widgets.banner import Banner

from .model import AlternativesModel, EventsModel
from .review_text import (
    assumption_lines,
    decided_line,
    decision_line,
    requirements_line,
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
