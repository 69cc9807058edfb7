"""The Running place's table: one row per resource this home holds at a provider
(:class:`~comfyvn_gui.service.running.RunningRow`, decided by the service: the state, the age,
the cost so far).

Every display string is worked out once, when the rows are set; ``data()`` only indexes.
Orphan and leaked rows are tinted (colours that follow the palette) and say so in words in the
State column: the colour is never the only sign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from PySide6.QtCore import Qt

from comfyvn_gui.core import wording
from comfyvn_gui.gui.widgets.rows_model import TintedRowsModel

if TYPE_CHECKING:
    from comfyvn_gui.service.running import RunningRow

__all__ = [
    "HEADERS",
    "REF_ROLE",
    "ROW_ROLE",
    "STATE_WORDS",
    "Column",
    "RunningModel",
    "money_text",
]

_USER = int(Qt.ItemDataRole.UserRole)
#: The :class:`RunningRow` of a row (any column).
ROW_ROLE = _USER + 1
#: The row's ref (``<provider_id>:<id>``, what a stop takes), any column.
REF_ROLE = _USER + 2

_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)

NO_VALUE = "—"


class Column(IntEnum):
    PROVIDER = 0
    KIND = 1
    NAME = 2
    JOB = 3
    STATE = 4
    AGE = 5
    COST = 6
    CONSOLE = 7


HEADERS: tuple[str, ...] = (
    "Provider",
    "Kind",
    "Name",
    "Job",
    "State",
    "Age",
    "Cost so far ($/h)",
    "Console",
)
HEADER_TIPS: tuple[str, ...] = (
    "The provider that holds it",
    "Machine, pod, one-time key, start-up script, cache volume or a request",
    "Its name at the provider",
    "The job that owns it (none for an orphan)",
    "In use by a job, orphan (no job owns it), leaked (its job ended) or kept on purpose",
    "How long ago it was made",
    "What it has cost so far, and its price per hour (per month for a kept volume)",
    "The provider's console (Enter or double-click opens it)",
)

#: How each state reads (the words carry the meaning; the tint only repeats it).
STATE_WORDS: dict[str, str] = {
    "in_use": "In use",
    "orphan": "Orphan: no job owns it",
    "leaked": "Leaked: its job ended",
    "standing": "Kept on purpose",
}
STATE_TIPS: dict[str, str] = {
    "in_use": "A job in flight uses it: cancel the job, its driver releases it",
    "orphan": "No job of this home owns it; it may bill until it is stopped",
    "leaked": "Its job ended but it was not released; it may bill until it is stopped",
    "standing": "Kept across jobs on purpose (a cache volume); billed per month",
}

#: (background) per state on a light and on a dark palette: the banner's warning and error.
_TINTS: dict[str, tuple[str, str]] = {
    "orphan": ("#fff3cd", "#3d3000"),
    "leaked": ("#fde2e2", "#4a1212"),
}
#: (foreground) that reads on the tint, light and dark palettes.
_INKS: dict[str, tuple[str, str]] = {
    "orphan": ("#5d4000", "#ffe08a"),
    "leaked": ("#7a1010", "#ffb4ab"),
}


def money_text(row: RunningRow) -> str:
    """'$0.12 ($0.46/hr)', '$4.00/month', '— ($0.46/hr)', '—'."""
    if row.monthly_usd:
        return f"{wording.cost(row.monthly_usd)}/month"
    spent = NO_VALUE if row.cost_so_far_usd is None else wording.cost(row.cost_so_far_usd)
    if row.hourly_usd:
        return f"{spent} ({wording.hourly_price(row.hourly_usd)})"
    return spent


def _console_text(url: str | None) -> str:
    if not url:
        return NO_VALUE
    host = urlsplit(url).hostname
    return f"Open {host}" if host else "Open console"


@dataclass(slots=True)
class _Row:
    row: RunningRow
    display: tuple[str, ...]
    tips: tuple[str, ...]


def _prepare(row: RunningRow) -> _Row:
    age = NO_VALUE if row.age_s is None else wording.duration(row.age_s / 60)
    display = (
        row.provider,
        row.kind.replace("_", " "),
        row.name,
        NO_VALUE if row.job_id is None else str(row.job_id),
        STATE_WORDS.get(row.state, row.state),
        age,
        money_text(row),
        _console_text(row.console_url),
    )
    status = f" (at the provider: {row.status})" if row.status else ""
    tips = (
        row.ref,
        row.kind,
        row.name,
        "No job owns it" if row.job_id is None else f"Job {row.job_id}",
        STATE_TIPS.get(row.state, row.state) + status,
        age,
        money_text(row),
        row.console_url or "No console link",
    )
    return _Row(row, display, tips)


class RunningModel(TintedRowsModel):
    """Read-only rows of :class:`RunningRow`; :meth:`set_rows` replaces them."""

    headers = HEADERS
    header_tips = HEADER_TIPS
    tints = _TINTS
    inks = _INKS
    right_columns = frozenset({Column.JOB, Column.AGE, Column.COST})

    # -- content ------------------------------------------------------------------------------

    def set_rows(self, rows: Sequence[RunningRow]) -> None:
        self.beginResetModel()
        self._rows = [_prepare(r) for r in rows]
        self.endResetModel()

    def rows(self) -> list[RunningRow]:
        return [r.row for r in self._rows]

    def row_at(self, row: int) -> RunningRow:
        row_: _Row = self._rows[row]
        return row_.row

    # -- the roles beyond the shared ones -----------------------------------------------------

    def state_of(self, item: Any) -> str | None:
        state: str = item.row.state
        return state

    def role_data(self, item: Any, column: int, role: int) -> Any:
        if role == _TOOLTIP:
            return item.tips[column]
        if role == ROW_ROLE:
            return item.row
        if role == REF_ROLE:
            return item.row.ref
        return None
