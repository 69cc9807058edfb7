"""The Jobs page's item models: the job queue, a job's alternatives and its audit trail.

Every display string is worked out once, when the jobs are set (:meth:`JobsModel.set_jobs`),
so ``data()`` only indexes a tuple: the queue stays quick with ten thousand jobs. ``set_jobs``
updates in place when the same jobs come back in the same order (``dataChanged`` for the rows
that changed: the selection and the scroll position stay), and resets otherwise.

A dispatched job's live status comes from its record (``meta.dispatch``, written by the
driver): runs done of all, the current node's progress from ComfyUI's messages, the notice,
the time since it started and what it has cost so far. :meth:`JobsModel.tick` moves the clock
of the jobs in flight on (elapsed time, cost so far) without reading anything.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)

from comfyvn_gui.core import dispatch as dispatch_rules
from comfyvn_gui.core import wording
from comfyvn_gui.core.jobs import ENDED, IN_FLIGHT, JOB_STATUSES, Job, JobEvent, ids_digest
from comfyvn_gui.core.workload import KIND_TITLES, Workload

__all__ = [
    "ADVICE_ROLE",
    "ALTERNATIVE_ROLE",
    "EVENT_ROLE",
    "JOB_ID_ROLE",
    "JOB_ROLE",
    "KIND_NAMES",
    "SEARCH_ROLE",
    "SORT_ROLE",
    "WARNING_WORDS",
    "AlternativesModel",
    "Column",
    "EventsModel",
    "JobsModel",
    "clock_text",
    "cost_text",
    "local_time",
    "minutes_text",
    "size_text",
    "spent_so_far",
]

_USER = int(Qt.ItemDataRole.UserRole)
#: The :class:`~comfyvn_gui.core.jobs.Job` of a row (any column).
JOB_ROLE = _USER + 1
#: The row's Advice JSON (``job.meta.compute.advice``, a dict; ``{}`` without a decision).
ADVICE_ROLE = _USER + 2
#: What the page's proxy sorts by: numbers for Size, Est. cost and Warnings.
SORT_ROLE = _USER + 3
#: One lower-case text per row (column 0) that the filter matches against.
SEARCH_ROLE = _USER + 4
#: The job's id (any column).
JOB_ID_ROLE = _USER + 5
#: An alternative's dict (AlternativesModel, any column).
ALTERNATIVE_ROLE = _USER + 6
#: A :class:`~comfyvn_gui.core.jobs.JobEvent` (EventsModel).
EVENT_ROLE = _USER + 7

_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_ACCESSIBLE = int(Qt.ItemDataRole.AccessibleTextRole)
_ALIGN = int(Qt.ItemDataRole.TextAlignmentRole)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter

#: How each advisor warning code reads (the Review panel and the Warnings tooltip).
WARNING_WORDS: dict[str, str] = {
    "data_leaves_machine": "Data leaves this machine",
    "residency": "Residency: where it may run",
    "non_open_source_assets": "Assets that are not open source",
    "dpia": "Data protection (DPIA)",
    "provider_unhealthy_skipped": "Skipped: a provider is unhealthy",
    "provider_degraded": "Provider degraded",
    "health_unknown": "Provider health unknown",
    "price_unknown": "Price unknown",
    "over_budget_skipped": "Skipped: over budget",
    "quota_lapsed_skipped": "Skipped: quota lapsed",
    "user_pick_ineligible": "Your pick cannot run it",
    "provider_broken_skipped": "A provider this version cannot use was skipped",
    "spot_interruption": "Spot: the machine may be taken back",
}

#: How each kind of job reads in the table.
KIND_NAMES: dict[str, str] = KIND_TITLES

NO_VALUE = "—"


class Column(IntEnum):
    JOB = 0
    KIND = 1
    SIZE = 2
    STATUS = 3
    PROVIDER = 4
    COST = 5
    REASON = 6
    WARNINGS = 7
    PROGRESS = 8
    ELAPSED = 9
    SPENT = 10


HEADERS: tuple[str, ...] = (
    "Job",
    "Kind",
    "Size",
    "Status",
    "Provider",
    "Est. cost",
    "Reason",
    "Warnings",
    "Progress",
    "Elapsed",
    "Spent",
)
HEADER_TIPS: tuple[str, ...] = (
    "The job's title",
    "What the job does",
    "How much work it is",
    "Where the job is in the queue",
    "Where it runs: the advisor's choice, or your pick",
    "The estimated cost on that provider",
    "Why the advisor chose it (hover for the full text)",
    "Legal, residency and provider warnings (hover for the list)",
    "Runs done of all, and how far the current run is (from ComfyUI)",
    "How long the job has been running (or ran)",
    "What it has cost so far (the bill once it ended), next to the estimate",
)

#: The columns that move on with the clock while a job is in flight (:meth:`JobsModel.tick`).
_CLOCK_COLUMNS = (Column.ELAPSED, Column.SPENT)
_RIGHT_COLUMNS = (Column.COST, Column.WARNINGS, Column.ELAPSED, Column.SPENT)


# --------------------------------------------------------------------------------------------
# Text helpers (pure; the Review panel uses them too)
# --------------------------------------------------------------------------------------------


def size_text(w: Workload) -> str:
    """'40 × 2048×2048', '420 lines · 52.5 min', '96,420 chars', '24 items'."""
    if w.width is not None and w.height is not None:
        return f"{wording.count(w.items)} × {w.width}×{w.height}"
    if w.audio_seconds is not None:
        length = wording.media_length(w.audio_seconds)
        return f"{wording.counted(w.items, 'line', 'lines')} · {length}"
    if w.characters is not None:
        return f"{wording.count(w.characters)} chars"
    return wording.counted(w.items, "item", "items")


def _size_tip(w: Workload) -> str:
    parts = [wording.counted(w.items, "item", "items")]
    if w.width is not None and w.height is not None:
        parts.append(f"{w.width}×{w.height} px each")
    if w.audio_seconds is not None:
        parts.append(f"{wording.media_length(w.audio_seconds)} of audio")
    if w.characters is not None:
        parts.append(wording.counted(w.characters, "character", "characters"))
    if w.total_bytes is not None:
        parts.append(f"{w.total_bytes / 1e6:,.1f} MB of inputs")
    return ", ".join(parts)


def minutes_text(minutes: float | None) -> str:
    """An estimated run time (core/wording.py), or that it is unknown."""
    return "unknown time" if minutes is None else wording.duration(minutes)


def cost_text(usd: float | None) -> str:
    """An estimated cost (core/wording.py), or that the price is unknown."""
    return "price unknown" if usd is None else wording.cost(usd)


def local_time(value: datetime | str | None, *, seconds: bool = False) -> str:
    """An aware timestamp in this computer's time zone, e.g. '2026-11-27 21:00'."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _warning_tip(warnings: Sequence[Mapping[str, Any]]) -> str:
    if not warnings:
        return "No warnings"
    lines = [
        f"• {WARNING_WORDS.get(str(w.get('code')), str(w.get('code')))}: {w.get('message', '')}"
        for w in warnings
    ]
    return "\n".join(lines)


def clock_text(seconds: float) -> str:
    """An elapsed time as a clock reads: '0:07', '12:05', '1:02:03'."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def elapsed_s(record: Mapping[str, Any], now: datetime) -> float | None:
    """Seconds since the driver took the job (since it was dispatched, before that), up to
    its end; None for a job never dispatched."""
    start = _instant(record.get("started_at")) or _instant(record.get("dispatched_at"))
    if start is None:
        return None
    end = _instant(record.get("ended_at")) or now
    return max(0.0, (end - start).total_seconds())


def spent_so_far(record: Mapping[str, Any], now: datetime) -> tuple[float, float] | None:
    """(billed minutes, dollars) of a dispatched job: the bill recorded at its end, or, in
    flight, the driver's own rule until ``now`` (``core.dispatch.job_bill``). None before
    dispatch."""
    if not record:
        return None
    if record.get("ended_at"):
        cost = record.get("actual_cost_usd")
        if not isinstance(cost, int | float):
            return None
        return float(record.get("billed_minutes") or 0.0), float(cost)
    return dispatch_rules.job_bill(record, now)


@dataclass(frozen=True, slots=True)
class Live:
    """A job's live status, as the table shows it (display, sort key and tooltip per
    column: Progress, Elapsed, Spent)."""

    display: tuple[str, str, str]
    sort: tuple[float, float, float]
    tips: tuple[str, str, str]


def _progress(job: Job, record: Mapping[str, Any]) -> tuple[str, float, str]:
    """The Progress cell: runs done / total, the current run's node progress, the notice."""
    runs = [r for r in record.get("runs") or [] if isinstance(r, Mapping)]
    done = sum(1 for r in runs if r.get("status") == "succeeded")
    total = len(runs)
    progress = record.get("progress") or {}
    notice = str(record.get("notice") or "")
    fraction = done / total if total else 0.0
    if job.status in ENDED:
        text = f"{done}/{total} runs" if total else NO_VALUE
        tip = str(record.get("ended_message") or text)
        return text, fraction, tip
    if record.get("cancel_requested"):
        text = "Cancelling…" + (f" {done}/{total} runs" if total else "")
        return text, fraction, "Cancel asked for: the driver stops the job on its provider"
    if not total:
        text = "Starting…" if record.get("started_at") else "Waiting for the driver…"
        return text, 0.0, notice or text
    text = f"{done}/{total} runs"
    tip = f"{wording.counted(done, 'run', 'runs')} of {total} done"
    value, top = progress.get("value"), progress.get("max")
    if isinstance(value, int | float) and isinstance(top, int | float) and top > 0:
        share = min(1.0, max(0.0, float(value) / float(top)))
        text += f" · {share:.0%}"
        fraction += share / total
        tip += f"; run {int(progress.get('run') or 0) + 1} at {share:.0%}"
    if progress.get("node") is not None:
        tip += f" (node {progress['node']})"
    if notice:
        text += " ⓘ"
        tip += f"\n{notice}"
    return text, fraction, tip


def live_status(job: Job, now: datetime) -> Live:
    """What the Progress, Elapsed and Spent cells say of ``job`` at ``now``."""
    record = job.meta.get("dispatch")
    if job.status == "queued" or not isinstance(record, Mapping):
        empty = "Not dispatched yet"
        return Live(("", "", ""), (-1.0, -1.0, -1.0), (empty, empty, empty))
    progress, fraction, progress_tip = _progress(job, record)
    seconds = elapsed_s(record, now)
    elapsed = "" if seconds is None else clock_text(seconds)
    since = local_time(record.get("started_at") or record.get("dispatched_at"), seconds=True)
    if job.status in ENDED:
        elapsed_tip = (
            f"Ran {elapsed} (from {since} to {local_time(record.get('ended_at'), seconds=True)})"
        )
    else:
        elapsed_tip = f"Running for {elapsed} (since {since})" if seconds is not None else ""
    spent = spent_so_far(record, now)
    estimate = (record.get("estimate") or {}).get("cost_usd")
    ceiling = (record.get("ceilings") or {}).get("cost_usd")
    spent_text, spent_tip, usd = "", "", -1.0
    if spent is not None:
        billed, usd = spent
        spent_text = wording.cost(usd)
        price = (record.get("price") or {}).get("hourly_usd")
        head = "Spent" if job.status in ENDED else "Spent so far"
        parts = [f"{head}: {spent_text}"]
        if price:
            parts.append(f"{wording.number(billed)} min billed at {wording.hourly_price(price)}")
        else:
            parts.append("nothing is billed on this provider")
        if isinstance(estimate, int | float):
            parts.append(f"estimated {wording.cost(estimate)}")
        if isinstance(ceiling, int | float):
            parts.append(f"stopped at {wording.cost(ceiling)}")
        spent_tip = "; ".join(parts)
    return Live(
        (progress, elapsed, spent_text),
        (fraction, -1.0 if seconds is None else seconds, usd),
        (progress_tip, elapsed_tip, spent_tip),
    )


# --------------------------------------------------------------------------------------------
# The job queue
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    job: Job
    advice: dict[str, Any]
    display: tuple[str, ...]
    sort: tuple[Any, ...]
    search: str
    warnings: int
    live: Live
    pos: int = 0  # the job's place in the queue's order (as given to set_jobs)
    tips: tuple[str, ...] | None = None  # worked out the first time one is asked for

    @property
    def in_flight(self) -> bool:
        return self.job.status in IN_FLIGHT

    def relive(self, now: datetime) -> None:
        """Move the live columns on to ``now`` (the same job: the clock only)."""
        live = live_status(self.job, now)
        self.live = live
        self.display = (*self.display[: Column.PROGRESS], *live.display)
        self.sort = (*self.sort[: Column.PROGRESS], *live.sort)
        self.tips = None


def _row(job: Job, pos: int, now: datetime) -> _Row:
    compute = job.meta.get("compute") or {}
    advice: dict[str, Any] = compute.get("advice") or {}
    w = job.workload
    provider = compute.get("provider")
    by_user = compute.get("decided_by") == "user"
    warnings = advice.get("warnings") or []
    cost = advice.get("estimated_cost")
    cost_usd = advice.get("estimated_cost_usd")
    reason = " ".join(str(advice.get("reason") or "").split())
    kind = KIND_NAMES.get(job.kind, job.kind)
    status = job.status.capitalize()
    provider_text = (provider or "none") + (" (your pick)" if by_user else "")
    count = len(warnings)
    live = live_status(job, now)
    display = (
        job.title,
        kind,
        size_text(w),
        status,
        provider_text,
        cost or NO_VALUE,
        reason,
        f"⚠ {count}" if count else "",
        *live.display,
    )
    codes = " ".join([str(x.get("code", "")) for x in warnings])
    search = f"{job.title} {kind} {display[2]} {status} {provider_text} {display[5]} {reason} "
    search = f"{search}{job.kind} {codes}".casefold()
    sort = (
        job.title.casefold(),
        kind.casefold(),
        float(w.items),
        JOB_STATUSES.index(job.status) if job.status in JOB_STATUSES else len(JOB_STATUSES),
        provider_text.casefold(),
        float(cost_usd) if isinstance(cost_usd, int | float) else math.inf,
        reason.casefold(),
        count,
        *live.sort,
    )
    return _Row(job, advice, display, sort, search, count, live, pos)


def _tips(row: _Row) -> tuple[str, ...]:
    """The tooltips of a row (only hovered rows need them: not worked out in set_jobs)."""
    job, advice = row.job, row.advice
    compute = job.meta.get("compute") or {}
    provider = compute.get("provider")
    chosen = advice.get("chosen") or {}
    w = job.workload
    source = job.source or {}
    where = " · ".join(
        str(source[k]) for k in ("project", "unit") if source.get(k) not in (None, "")
    )
    if provider is None:
        provider_tip = "No provider can run this job now"
    else:
        name = chosen.get("name") or provider
        gpu = f" on {chosen['gpu']}" if chosen.get("gpu") else ""
        who = "Your pick" if compute.get("decided_by") == "user" else "Chosen by the advisor"
        provider_tip = f"{who}: {name} ({provider}){gpu}"
    cost_usd = advice.get("estimated_cost_usd")
    minutes = advice.get("estimated_minutes")
    return (
        f"{job.title}\nJob {job.id}" + (f" · {where}" if where else ""),
        f"{row.display[Column.KIND]} ({job.kind}, {w.asset_type})",
        _size_tip(w),
        f"{row.display[Column.STATUS]} (since {local_time(job.updated_at)})",
        provider_tip,
        (
            f"{cost_text(cost_usd)} for ~{minutes_text(minutes)} (estimated)"
            if provider is not None
            else "No estimate: no provider can run it"
        ),
        row.display[Column.REASON] or "No advice yet",
        _warning_tip(advice.get("warnings") or []),
        *row.live.tips,
    )


_ROW_FLAGS = (
    Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
)
_NO_FLAGS = Qt.ItemFlag.NoItemFlags


def _read_only_flags(self: Any, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
    """``flags`` of every model here: rows are selected and read, never edited or nested.
    (The flags are made once: OR-ing Python enums on each of a paint's calls cost more than
    the rest of ``flags``.)"""
    return _ROW_FLAGS if index.isValid() else _NO_FLAGS


@dataclass(frozen=True)
class PreparedJobs:
    """Jobs as rows (:meth:`JobsModel.prepare`), worked out against the model's rows of
    generation ``base``; a row reused from there holds the job as it was read then (equal to
    the one read now). Made by :meth:`JobsModel.prepare_changes`, ``rows`` and ``ids`` are
    None: the same jobs as shown, only ``fresh`` replaces their rows."""

    base: int
    rows: list[_Row] | None
    #: The jobs' ids in the queue's order, and the rows made anew (the jobs that changed).
    ids: list[int] | None
    fresh: list[_Row]

    @property
    def jobs(self) -> list[Job]:
        return [r.job for r in (self.fresh if self.rows is None else self.rows)]


class JobsModel(QAbstractTableModel):
    """The job queue, one row per job: in the queue's order, or sorted by :meth:`sort`.

    Sorting happens here, in Python, on the :data:`SORT_ROLE` keys worked out in
    :meth:`set_jobs` (a few milliseconds for 10,000 jobs, where a proxy calling ``data()``
    for every comparison takes most of a second); the page's proxy forwards its ``sort``
    here and only filters."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[_Row] = []
        self._search_cache: tuple[list[_Row], list[str]] | None = None
        self._index: dict[int, int] = {}  # job id -> row
        self._queue: list[int] = []
        # Kept so that neither a read nor the clock goes through 10,000 rows for 20 changes:
        # every row by job id (read by prepare_changes in the I/O pool: the GUI thread only
        # sets single keys or replaces it whole), the ids of the jobs in flight, the queue's
        # ids_digest, and a generation counted up (after the change) whenever _rows changes.
        self._by_id: dict[int, _Row] = {}
        self._in_flight: set[int] = set()
        self._digest = ids_digest([])
        self._generation = 0
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder

    # -- Qt's interface --------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        col = index.column()
        role = int(role)
        if role == _DISPLAY:
            return row.display[col]
        if role == _TOOLTIP:
            if row.tips is None:
                row.tips = _tips(row)
            return row.tips[col]
        if role == SORT_ROLE:
            return row.sort[col]
        if role == JOB_ROLE:
            return row.job
        if role == ADVICE_ROLE:
            return row.advice
        if role == JOB_ID_ROLE:
            return row.job.id
        if role == SEARCH_ROLE:
            return row.search
        if role == _ALIGN:
            return _RIGHT if col in _RIGHT_COLUMNS else _LEFT
        if role == _ACCESSIBLE:
            if col == Column.WARNINGS:
                n = row.warnings
                return f"{n} warning{'s' if n != 1 else ''}" if n else "no warnings"
            if col == Column.COST and row.display[col] == NO_VALUE:
                return "no estimate"
            if col >= Column.PROGRESS and not row.display[col]:
                return "not dispatched"
            return row.display[col]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(HEADERS):
            return None
        role = int(role)
        if role == _DISPLAY:
            return HEADERS[section]
        if role == _TOOLTIP:
            return HEADER_TIPS[section]
        return None

    flags = _read_only_flags

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort by ``column``'s :data:`SORT_ROLE` key (-1: the queue's order). Rows with the
        same key keep the queue's order; a job without an estimate has an infinite cost."""
        self._sort_column = column if 0 <= column < len(HEADERS) else -1
        self._sort_order = order
        self._relayout(self._ordered(self._rows))

    # -- ours ------------------------------------------------------------------------------

    def prepare(self, jobs: Iterable[Job]) -> PreparedJobs:
        """Work out the rows of ``jobs`` against the rows shown now: safe in any thread (the
        jobs page calls it in its read, off the GUI thread). Comparing 10,000 jobs and making
        the rows of the changed ones took 0.7-3 s, which :meth:`set_jobs` then need not do."""
        base = self._generation  # (read first: a change after it is seen as one)
        old = dict(self._by_id)  # one atomic copy
        rows, ids, fresh = [], [], []
        now = datetime.now(UTC)
        for pos, job in enumerate(jobs):  # (jobs may be read one at a time: keep none here)
            prev = old.get(job.id)
            ids.append(job.id)
            if prev is not None and (prev.job is job or prev.job == job):
                rows.append(prev)  # the job just read is dropped: the row keeps its twin
            else:
                row = _row(job, pos, now)
                rows.append(row)
                fresh.append(row)
        return PreparedJobs(base, rows, ids, fresh)

    def prepare_changes(self, jobs: Iterable[Job]) -> PreparedJobs | None:
        """The rows of ``jobs``, jobs shown now that may have changed, the queue's jobs being
        the same (its :meth:`ids_digest` unchanged): safe in any thread, and its work grows
        with ``jobs``, not with the queue. None if one of ``jobs`` is not shown."""
        base = self._generation
        by_id = self._by_id
        fresh = []
        now = datetime.now(UTC)
        for job in jobs:
            prev = by_id.get(job.id)
            if prev is None:
                return None
            if prev.job is not job and prev.job != job:
                fresh.append(_row(job, prev.pos, now))
        return PreparedJobs(base, None, None, fresh)

    def ids_digest(self) -> tuple[int, int, int]:
        """:func:`~comfyvn_gui.core.jobs.ids_digest` of the jobs shown (any thread)."""
        return self._digest

    def shown_jobs(self) -> dict[int, Job]:
        """The jobs the rows show now, by id (safe in any thread: one atomic copy)."""
        return {jid: r.job for jid, r in dict(self._by_id).items()}

    def set_jobs(self, jobs: Sequence[Job] | PreparedJobs) -> bool:
        """Show ``jobs`` (in the queue's order; the current sort still applies), or the rows
        :meth:`prepare` made of them (made again here if the model changed since).

        The same ids in the same order: ``dataChanged`` for the rows that changed only (and
        ``layoutChanged`` if a change moved a row of the sorted table), so the view keeps its
        selection and scroll position; otherwise a reset. Returns True when it reset."""
        if not isinstance(jobs, PreparedJobs):
            prepared = self.prepare(jobs)
        elif jobs.base == self._generation:
            prepared = jobs
        elif jobs.rows is not None:
            prepared = self.prepare(jobs.jobs)  # the rows changed since it was prepared
        else:
            again = self.prepare_changes(jobs.jobs)
            if again is None:  # the queue changed meanwhile: the read that follows shows it
                return False
            prepared = again
        ids = prepared.ids
        if ids is not None and prepared.rows is not None and ids != self._queue:
            for pos, row in enumerate(prepared.rows):
                row.pos = pos
            self.beginResetModel()
            self._queue = ids
            self._rows = self._ordered(list(prepared.rows))
            self._reindex()
            self._by_id = {r.job.id: r for r in prepared.rows}
            self._in_flight = {r.job.id for r in prepared.rows if r.in_flight}
            self._digest = ids_digest(ids)
            self._generation += 1
            self.endResetModel()
            return True
        if not prepared.fresh:
            return False
        # The same jobs in the same order: only the rows made anew replace theirs (the GUI
        # thread's work grows with the changes, not with the queue).
        rows = list(self._rows)
        changed: list[int] = []
        for row in prepared.fresh:
            jid = row.job.id
            at_row = self._index[jid]
            row.pos = rows[at_row].pos
            rows[at_row] = row
            self._by_id[jid] = row
            if row.in_flight:
                self._in_flight.add(jid)
            else:
                self._in_flight.discard(jid)
            changed.append(jid)
        if self._sort_column >= 0:
            self._relayout(self._ordered(rows))
        else:
            self._rows = rows
        self._generation += 1
        at = sorted(self._index[i] for i in changed)
        last = len(HEADERS) - 1
        for start, end in _runs(at):  # one signal per run of adjacent rows
            self.dataChanged.emit(self.index(start, 0), self.index(end, last), [])
        return False

    def _ordered(self, rows: list[_Row]) -> list[_Row]:
        queue = sorted(rows, key=lambda r: r.pos)
        col = self._sort_column
        if col < 0:
            return queue
        descending = self._sort_order == Qt.SortOrder.DescendingOrder
        return sorted(queue, key=lambda r: r.sort[col], reverse=descending)

    def _reindex(self) -> None:
        self._index = {r.job.id: i for i, r in enumerate(self._rows)}

    def _relayout(self, rows: list[_Row]) -> None:
        """Put the rows in a new order (the same jobs), moving persistent indexes along."""
        if len(rows) == len(self._rows) and all(
            a is b for a, b in zip(rows, self._rows, strict=True)
        ):
            self._rows = rows
            self._generation += 1
            return
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        held = [(self._rows[i.row()].job.id, i.column()) for i in persistent]
        self._rows = rows
        self._reindex()
        self._generation += 1
        self.changePersistentIndexList(
            persistent, [self.index(self._index[jid], col) for jid, col in held]
        )
        self.layoutChanged.emit()

    def in_flight(self) -> list[int]:
        """The ids of the jobs being submitted or running, in the order shown."""
        return sorted(self._in_flight, key=self._index.__getitem__)

    def tick(self, now: datetime | None = None) -> int:
        """Move the clock of the jobs in flight on to ``now`` (elapsed time, cost so far):
        no read, ``dataChanged`` for those cells only. Returns how many jobs are in flight."""
        now = now or datetime.now(UTC)
        at = sorted(self._index[jid] for jid in self._in_flight)
        for i in at:
            self._rows[i].relive(now)
        first, last = min(_CLOCK_COLUMNS), max(_CLOCK_COLUMNS)
        for start, end in _runs(at):
            self.dataChanged.emit(self.index(start, first), self.index(end, last), [])
        return len(at)

    def jobs(self) -> list[Job]:
        """The jobs in the order shown."""
        return [r.job for r in self._rows]

    def job(self, job_id: int) -> Job | None:
        i = self._index.get(job_id)
        return None if i is None else self._rows[i].job

    def search_texts(self) -> list[str]:
        """Each row's search text, in row order (a new list object whenever the rows change:
        the filter keeps what it matched against the list it matched)."""
        rows = self._rows
        cached = self._search_cache
        if cached is None or cached[0] is not rows:
            cached = self._search_cache = (rows, [r.search for r in rows])
        return cached[1]

    def row_of(self, job_id: int) -> int:
        """The row of job ``job_id``, or -1."""
        return self._index.get(job_id, -1)

    def job_at(self, row: int) -> Job:
        return self._rows[row].job


def _runs(rows: Sequence[int]) -> Iterable[tuple[int, int]]:
    """(first, last) of each run of adjacent rows in the sorted ``rows``."""
    start = 0
    while start < len(rows):
        end = start
        while end + 1 < len(rows) and rows[end + 1] == rows[end] + 1:
            end += 1
        yield rows[start], rows[end]
        start = end + 1


# --------------------------------------------------------------------------------------------
# Small read-only tables of the Review panel
# --------------------------------------------------------------------------------------------


class _TableModel(QAbstractTableModel):
    """Rows of precomputed strings with a tooltip per cell and a payload per row."""

    headers: tuple[str, ...] = ()
    payload_role = _USER + 100

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._display: list[tuple[str, ...]] = []
        self._tips: list[tuple[str, ...]] = []
        self._payload: list[Any] = []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._display)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.headers)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        role = int(role)
        if role in (_DISPLAY, _ACCESSIBLE):
            return self._display[index.row()][index.column()]
        if role == _TOOLTIP:
            return self._tips[index.row()][index.column()] or None
        if role == self.payload_role:
            return self._payload[index.row()]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and int(role) == _DISPLAY
            and 0 <= section < len(self.headers)
        ):
            return self.headers[section]
        return None

    flags = _read_only_flags

    def _set(self, rows: Sequence[tuple[tuple[str, ...], tuple[str, ...], Any]]) -> None:
        self.beginResetModel()
        self._display = [d for d, _, _ in rows]
        self._tips = [t for _, t, _ in rows]
        self._payload = [p for _, _, p in rows]
        self.endResetModel()

    def payload(self, row: int) -> Any:
        return self._payload[row]


class AlternativesModel(_TableModel):
    """The providers the advisor weighed besides its choice, and why each was not chosen."""

    headers = ("Provider", "Cost", "Eligible?", "Why not chosen")
    payload_role = ALTERNATIVE_ROLE

    def set_alternatives(self, alternatives: Sequence[Mapping[str, Any]]) -> None:
        rows = []
        for alt in alternatives:
            pid = str(alt.get("provider", ""))
            name = str(alt.get("name") or pid)
            eligible = bool(alt.get("eligible"))
            why = str(alt.get("note") or alt.get("excluded_because") or "")
            cost = alt.get("estimated_cost_usd")
            minutes = alt.get("estimated_minutes")
            details = [f"{name} ({pid}), {alt.get('kind', '')}"]
            if alt.get("gpu"):
                vram = alt.get("vram_gb")
                details.append(f"GPU: {alt['gpu']}" + (f" ({wording.vram(vram)})" if vram else ""))
            if alt.get("zones"):
                details.append("Zones: " + ", ".join(alt["zones"]))
            details.append(f"Health: {alt.get('health', 'unknown')}")
            if alt.get("hourly_usd") is not None:
                details.append(wording.hourly_price(alt["hourly_usd"]))
            time = f"~{minutes_text(minutes)}" if minutes is not None else "unknown time"
            display = (
                pid,
                cost_text(cost) if cost is not None else NO_VALUE,
                "Yes" if eligible else "No",
                why,
            )
            tips = ("\n".join(details), f"Estimated, for {time}", "", why)
            rows.append((display, tips, dict(alt)))
        self._set(rows)

    def alternative(self, row: int) -> dict[str, Any]:
        alt: dict[str, Any] = self.payload(row)
        return alt


class EventsModel(QAbstractListModel):
    """A job's audit trail, one item per event: "when · who · what" over the message (a
    list, so it reads well in a narrow panel); :data:`EVENT_ROLE` gives the JobEvent."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._events: list[JobEvent] = []
        self._display: list[str] = []
        self._accessible: list[str] = []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._events)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        role = int(role)
        if role == _DISPLAY:
            return self._display[index.row()]
        if role == _TOOLTIP:
            return self._events[index.row()].message
        if role == _ACCESSIBLE:
            return self._accessible[index.row()]
        if role == EVENT_ROLE:
            return self._events[index.row()]
        return None

    flags = _read_only_flags

    def set_events(self, events: Sequence[JobEvent]) -> None:
        self.beginResetModel()
        self._events = list(events)
        self._display = []
        self._accessible = []
        for e in self._events:
            when = local_time(e.at, seconds=True)
            what = e.action.replace("_", " ")
            msg = " ".join(e.message.split())
            self._display.append(f"{when} · {e.actor} · {what}\n{msg}")
            self._accessible.append(f"{when}, {e.actor}, {what}: {msg}")
        self.endResetModel()

    def job_event(self, row: int) -> JobEvent:
        return self._events[row]
