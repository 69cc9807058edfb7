"""The Jobs page's dispatch confirmation: what the user must know before a job's content is
uploaded, in words, with one "Upload and run" button (docs/architecture.md, "GUI").

Nothing here decides anything. :func:`read_confirmation` (blocking: the page runs it through
the bridge, off the GUI thread) asks the service for every job: ``check_dispatch`` (every
check that can refuse it: a refusal is shown as one line and nothing is offered for that
job), ``job_consent`` (the warnings to acknowledge), ``job_bill_guard`` (what stops the bill
if the app is gone), and the job's advice (provider, estimate, the other warnings); the cost
and runtime ceilings are ``core.dispatch.ceilings_for`` with the settings dispatch uses. The
:class:`DispatchDialog` shows that and, on "Upload and run", hands back exactly what it showed
(:class:`JobToDispatch`: the provider, the decision's time and the consent codes), which the
page passes to ``Service.dispatch_job``: a re-advice in between voids it there (the gate).
Closing the dialog or Cancel sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from comfyvn_gui.core import wording
from comfyvn_gui.core.errors import ComfyVNError
from comfyvn_gui.core.gate import ConsentItem
from comfyvn_gui.gui.palette import error_color

from .model import WARNING_WORDS, cost_text, minutes_text

__all__ = [
    "Confirmation",
    "DispatchDialog",
    "JobToDispatch",
    "Section",
    "confirmation_sections",
    "read_confirmation",
]

UPLOAD_TEXT = "Upload and run"


@dataclass(frozen=True)
class JobToDispatch:
    """One job as the confirmation shows it, and what is acknowledged by uploading it."""

    job_id: int
    title: str
    provider: str | None
    #: The provider in words: 'Custom ComfyUI (box), RTX 4090'.
    where: str
    #: The decision the warnings belong to (``meta.compute.decided_at``).
    decided_at: datetime | None
    consent: tuple[ConsentItem, ...] = ()
    #: The advice's other warnings (skipped providers, health unknown ...): shown, not asked.
    notes: tuple[ConsentItem, ...] = ()
    bill_guard: str | None = None
    estimate: str = ""
    ceiling: str = ""
    #: Why it cannot be dispatched (nothing is offered for it), or None.
    refusal: str | None = None

    @property
    def codes(self) -> list[str]:
        """The consent codes uploading it acknowledges (exactly those shown)."""
        return [item.code for item in self.consent]


@dataclass(frozen=True)
class Confirmation:
    jobs: tuple[JobToDispatch, ...]

    @property
    def ready(self) -> list[JobToDispatch]:
        return [j for j in self.jobs if j.refusal is None]

    @property
    def refused(self) -> list[JobToDispatch]:
        return [j for j in self.jobs if j.refusal is not None]


@dataclass
class Section:
    """A heading and its lines (a line's kind: ``warning``, ``note``, ``info`` or ``error``)."""

    heading: str
    lines: list[tuple[str, str]] = field(default_factory=list)
    name: str = ""


# --------------------------------------------------------------------------------------------
# Reading what the user must see (blocking: off the GUI thread)
# --------------------------------------------------------------------------------------------


def read_confirmation(svc: Any, job_ids: Sequence[int]) -> Confirmation:
    """Ask the service what dispatching each of ``job_ids`` would mean (blocking)."""
    return Confirmation(tuple(_read_one(svc, jid) for jid in job_ids))


def _read_one(svc: Any, job_id: int) -> JobToDispatch:
    try:
        job = svc.get_job(job_id)
    except ComfyVNError as exc:
        return JobToDispatch(job_id, f"Job {job_id}", None, "", None, refusal=exc.message)
    compute = job.compute
    advice: Mapping[str, Any] = compute.advice if compute is not None else {}
    provider = compute.provider if compute is not None else None
    base = JobToDispatch(
        job_id=job.id,
        title=job.title,
        provider=provider,
        where=_where(provider, advice),
        decided_at=compute.decided_at if compute is not None else None,
    )
    try:
        job = svc.check_dispatch(job_id)  # every check that can refuse it, first
        compute = job.compute
        assert compute is not None and compute.provider is not None  # (the check says so)
        advice = compute.advice
        consent = tuple(svc.job_consent(job_id))
        guard = svc.job_bill_guard(job_id)
        ceiling = _ceiling(svc, job, advice)
    except ComfyVNError as exc:
        return _replace(base, refusal=exc.message)
    notes = []
    for w in advice.get("warnings") or []:
        if not isinstance(w, Mapping):
            continue
        item = ConsentItem(str(w.get("code") or ""), str(w.get("message") or ""))
        if item not in consent and item not in notes:
            notes.append(item)
    return JobToDispatch(
        job_id=job.id,
        title=job.title,
        provider=compute.provider,
        where=_where(compute.provider, advice),
        decided_at=compute.decided_at,
        consent=consent,
        notes=tuple(notes),
        bill_guard=guard,
        estimate=_estimate(advice),
        ceiling=ceiling,
    )


def _replace(job: JobToDispatch, **changes: Any) -> JobToDispatch:
    from dataclasses import replace

    return replace(job, **changes)


def _where(provider: str | None, advice: Mapping[str, Any]) -> str:
    if provider is None:
        return "no provider"
    chosen = advice.get("chosen") or {}
    name = chosen.get("name")
    text = f"{name} ({provider})" if name and name != provider else provider
    if chosen.get("gpu"):
        text += f", {chosen['gpu']}"
    return text


def _estimate(advice: Mapping[str, Any]) -> str:
    cost = advice.get("estimated_cost_usd")
    minutes = advice.get("estimated_minutes")
    chosen = advice.get("chosen") or {}
    text = f"Estimated {cost_text(cost)} for ~{minutes_text(minutes)}"
    hourly = chosen.get("hourly_usd")
    if hourly:
        text += f" at {wording.hourly_price(float(hourly))}"
    elif chosen.get("price_source") == "free" or hourly == 0:
        text += " (nothing is billed)"
    return text


def _ceiling(svc: Any, job: Any, advice: Mapping[str, Any]) -> str:
    """The bill guard's ceilings as dispatch will set them (a ConflictError where dispatch
    would refuse: no bound on the bill)."""
    ceilings = svc.job_ceilings(job.id)
    after = wording.duration(ceilings.runtime_s / 60)
    if ceilings.cost_usd is None:
        return f"It is stopped if it runs longer than {after}."
    return (
        f"It is stopped at {wording.cost(ceilings.cost_usd)} (the cost ceiling) or after "
        f"{after}, whichever comes first."
    )


# --------------------------------------------------------------------------------------------
# What the dialog says (pure)
# --------------------------------------------------------------------------------------------


def _warning_line(item: ConsentItem) -> tuple[str, str]:
    words = WARNING_WORDS.get(item.code, item.code)
    return ("warning", f"⚠ {words}: {item.message}")


def _note_line(item: ConsentItem) -> tuple[str, str]:
    words = WARNING_WORDS.get(item.code, item.code)
    return ("note", f"{words}: {item.message}")


def _label(job: JobToDispatch) -> str:
    return f"“{job.title}” (job {job.job_id})"


def intro_text(confirmation: Confirmation) -> str:
    ready = confirmation.ready
    if not ready:
        n = len(confirmation.jobs)
        return "Nothing can be uploaded: " + (
            "this job cannot be dispatched now." if n == 1 else f"none of these {n} jobs can."
        )
    if len(ready) == 1:
        job = ready[0]
        head = f"{_label(job)} will be uploaded to {job.where} and run there."
    else:
        head = f"{len(ready)} jobs will be uploaded and run."
    if any(j.consent for j in ready):
        return f"{head} Before anything is sent, read what it means; uploading acknowledges it."
    return f"{head} Nothing needs your acknowledgement; check the estimate and the ceiling."


def confirmation_sections(confirmation: Confirmation) -> list[Section]:
    """The dialog's text: for one job, its warnings, notes, bill guard, estimate and ceiling;
    for several, what every job shares once ("Every job"), then each job's own."""
    ready = confirmation.ready
    sections: list[Section] = []
    if len(ready) == 1:
        job = ready[0]
        sections.append(_job_section(job, f"On {job.where}", shared=(), guard_shared=False))
    elif ready:
        shared = tuple(i for i in ready[0].consent if all(i in j.consent for j in ready[1:]))
        guards = {j.bill_guard for j in ready}
        guard_shared = len(guards) == 1
        common = Section("Every job", name="dispatch-every-job")
        common.lines += [_warning_line(i) for i in shared]
        if guard_shared and ready[0].bill_guard:
            common.lines.append(("info", f"If this app is gone: {ready[0].bill_guard}"))
        if common.lines:
            sections.append(common)
        for job in ready:
            heading = f"{_label(job)} on {job.where}"
            sections.append(_job_section(job, heading, shared=shared, guard_shared=guard_shared))
    if confirmation.refused:
        refused = Section("Not dispatched (nothing is sent for these)", name="dispatch-refused")
        if len(confirmation.jobs) == 1:
            refused.heading = "It cannot be dispatched now"
        for job in confirmation.refused:
            refused.lines.append(("error", f"{_label(job)}: {job.refusal}"))
        sections.append(refused)
    return sections


def _job_section(
    job: JobToDispatch, heading: str, *, shared: Sequence[ConsentItem], guard_shared: bool
) -> Section:
    section = Section(heading, name=f"dispatch-job-{job.job_id}")
    own = [i for i in job.consent if i not in shared]
    section.lines += [_warning_line(i) for i in own]
    if not job.consent:
        section.lines.append(("info", "No warning to acknowledge: nothing leaves your premises."))
    section.lines += [_note_line(i) for i in job.notes]
    section.lines.append(("info", job.estimate))
    section.lines.append(("info", job.ceiling))
    if job.bill_guard and not guard_shared:
        section.lines.append(("info", f"If this app is gone: {job.bill_guard}"))
    return section


# --------------------------------------------------------------------------------------------
# The dialog
# --------------------------------------------------------------------------------------------


class DispatchDialog(QDialog):
    """The confirmation before an upload (non-modal: ``open()``, answered by signals).

    ``upload`` is emitted with the jobs to dispatch (:class:`JobToDispatch`, as shown) when
    the user chooses "Upload and run"; closing it or Cancel emits nothing."""

    upload = Signal(list)

    def __init__(self, confirmation: Confirmation, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.confirmation = confirmation
        ready = confirmation.ready
        self.setObjectName("dispatch-dialog")
        title = "Upload and run" if len(confirmation.jobs) == 1 else "Upload and run jobs"
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.setSizeGripEnabled(True)
        self.resize(620, 480)

        self.intro = QLabel(intro_text(confirmation), self)
        self.intro.setObjectName("dispatch-intro")
        self.intro.setAccessibleName("What happens")
        self.intro.setWordWrap(True)
        self.intro.setTextFormat(Qt.TextFormat.PlainText)

        body = QWidget()
        body.setObjectName("dispatch-body")
        column = QVBoxLayout(body)
        column.setContentsMargins(0, 0, 8, 0)
        column.setSpacing(6)
        self.lines: list[QLabel] = []
        red = error_color(self).name()
        for s, section in enumerate(confirmation_sections(confirmation)):
            heading = QLabel(section.heading, body)
            heading.setObjectName(section.name or f"dispatch-section-{s}")
            heading.setAccessibleName(section.heading)
            heading.setWordWrap(True)
            heading.setTextFormat(Qt.TextFormat.PlainText)
            font = QFont(heading.font())
            font.setBold(True)
            heading.setFont(font)
            if s:
                column.addSpacing(6)
            column.addWidget(heading)
            for i, (kind, text) in enumerate(section.lines):
                line = QLabel(text, body)
                line.setObjectName(f"dispatch-line-{s}-{i}")
                line.setAccessibleName(text)
                line.setProperty("kind", kind)
                line.setWordWrap(True)
                line.setIndent(12)  # (under its heading)
                line.setTextFormat(Qt.TextFormat.PlainText)
                line.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                if kind == "error":
                    line.setStyleSheet(f"color: {red};")
                column.addWidget(line)
                self.lines.append(line)
        column.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setObjectName("dispatch-details")
        scroll.setAccessibleName("Warnings, estimate and ceilings")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)

        self.buttons = QDialogButtonBox(self)
        self.buttons.setObjectName("dispatch-buttons")
        self.buttons.setAccessibleName("Upload or cancel")
        self.upload_button: QPushButton | None = None
        if ready:
            self.upload_button = self.buttons.addButton(
                UPLOAD_TEXT, QDialogButtonBox.ButtonRole.AcceptRole
            )
            self.upload_button.setObjectName("dispatch-upload")
            self.upload_button.setAccessibleName(UPLOAD_TEXT)
            n = len(ready)
            self.upload_button.setToolTip(
                f"Send {'this job' if n == 1 else f'these {n} jobs'} to "
                f"{'its provider' if n == 1 else 'their providers'} and run "
                f"{'it' if n == 1 else 'them'}"
            )
            cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        else:
            cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        cancel.setObjectName("dispatch-cancel")
        cancel.setAccessibleName("Cancel: send nothing")
        cancel.setDefault(True)  # (Enter never uploads by accident)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addSpacing(6)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.buttons)

    def texts(self) -> list[str]:
        """Every line the dialog shows, in order (the intro first)."""
        return [self.intro.text(), *[line.text() for line in self.lines]]

    def accept(self) -> None:
        ready = self.confirmation.ready
        super().accept()
        if ready:
            self.upload.emit(list(ready))
