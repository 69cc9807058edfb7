"""The Offers place's table: one row per offer (:class:`~comfyvn_gui.core.prices.Offer`, listed
by ``Service.offers``: live rows of the user's providers where kept, the catalog's otherwise,
and the templates' catalog rows), with the columns of ``comfyvn-gui offers``.

Every display string, tooltip and sort key is worked out once, by :func:`prepare` (in the
bridge's pool, off the GUI thread); ``data()`` only indexes. The model sorts its own rows on
their keys (the table's sorting calls :meth:`OffersModel.sort`): the price, VRAM, billing step
and age sort as numbers. Live rows are tinted and say "live" in the Source column; stale ones
say "live, stale" and are tinted as a warning: the colour is never the only sign.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont

from comfyvn_gui.core import wording
from comfyvn_gui.gui.widgets.rows_model import TintedRowsModel

if TYPE_CHECKING:
    from comfyvn_gui.core.prices import Offer

__all__ = [
    "HEADERS",
    "OFFER_ROLE",
    "SORT_ROLE",
    "Column",
    "OffersModel",
    "PreparedOffer",
    "offer_key",
    "prepare",
]

_USER = int(Qt.ItemDataRole.UserRole)
#: The row's :class:`Offer` (any column).
OFFER_ROLE = _USER + 1
#: The column's sort key (numbers for price, VRAM, billing step and age).
SORT_ROLE = _USER + 2

_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_FONT = int(Qt.ItemDataRole.FontRole)

NO_VALUE = "—"


class Column(IntEnum):
    PROVIDER = 0
    MACHINE = 1
    GPU = 2
    VRAM = 3
    REGION = 4
    PRICE = 5
    BILLED = 6
    SOURCE = 7
    AGE = 8


HEADERS: tuple[str, ...] = (
    "Provider",
    "Machine",
    "GPU",
    "VRAM",
    "Region",
    "$/hr",
    "Billed",
    "Source",
    "Age",
)
HEADER_TIPS: tuple[str, ...] = (
    "Your provider, or a template nobody has set up yet (“not configured”)",
    "What the provider calls the machine: instance type, VM size, GPU type, offer id",
    "The GPU, with the count when the machine has several; “spot”: it can be interrupted",
    "Memory per GPU",
    "The provider's region, and its residency zone in brackets",
    "The price per hour of the whole machine",
    "How the provider bills time",
    "live: fetched from the provider; catalog: the curated price table; stale: a live price "
    "older than prices.max_age_h",
    "How old the price is",
)

#: (background) of live and stale live rows on a light and on a dark palette.
_TINTS: dict[str, tuple[str, str]] = {
    "live": ("#e8f5e9", "#1b2e1c"),
    "stale": ("#fff3cd", "#3d3000"),
}
#: (foreground) that reads on the tint, light and dark palettes.
_INKS: dict[str, tuple[str, str]] = {
    "live": ("#1e4620", "#c8e6c9"),
    "stale": ("#5d4000", "#ffe08a"),
}


def offer_key(offer: Offer) -> tuple[Any, ...]:
    """What tells one offer from another across reads (the selection follows it)."""
    return (
        offer.provider,
        offer.machine,
        offer.gpu,
        offer.gpu_count,
        offer.region,
        offer.spot,
        offer.source,
    )


@dataclass(slots=True)
class PreparedOffer:
    """One row, worked out off the GUI thread."""

    offer: Offer
    display: tuple[str, ...]
    keys: tuple[Any, ...]
    tip: str
    state: str  # "live", "stale" or "catalog"
    key: tuple[Any, ...]


def _gpu_text(offer: Offer) -> str:
    gpu = offer.gpu if offer.gpu_count == 1 else f"{offer.gpu_count}x {offer.gpu}"
    return gpu + (" spot" if offer.spot else "")


def _where(offer: Offer) -> str:
    where = offer.region or "any"
    if offer.zone:
        where += f" ({offer.zone})"
    return where


def _taken_text(offer: Offer) -> str:
    taken = offer.taken_at.astimezone()
    if offer.source == "catalog":
        return f"prices as of {taken:%Y-%m-%d}"
    return f"taken {taken:%Y-%m-%d %H:%M}"


def _detail_text(detail: dict[str, Any]) -> str:
    parts = []
    for key, value in list(detail.items())[:8]:
        if value is None or value == "":
            continue
        if isinstance(value, float):
            value = wording.number(value, 3)
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return ", ".join(parts)


def _tip(offer: Offer, age: str, stale: bool, max_age_h: float | None) -> str:
    lines = [f"From {offer.source_name}, {_taken_text(offer)} ({age} ago)."]
    terms = []
    if offer.billing_increment_minutes is not None:
        terms.append(f"billed {wording.billing_step(offer.billing_increment_minutes)}")
    if offer.billing_minimum_minutes:
        terms.append(f"at least {wording.minutes(offer.billing_minimum_minutes)}")
    if terms:
        lines.append(", ".join(terms).capitalize() + ".")
    if offer.available is True:
        lines.append("Capacity now: yes.")
    elif offer.available is False:
        lines.append("Capacity now: none (the provider lists it without capacity).")
    if offer.detail:
        lines.append(_detail_text(offer.detail))
    if stale:
        hours = "" if max_age_h is None else f" than {wording.number(max_age_h)} h"
        lines.append(f"Stale: older{hours} (prices.max_age_h). “Refresh prices” fetches it again.")
    if not offer.configured:
        lines.append("Not set up yet: “Add this provider” opens its form.")
    return "\n".join(lines)


def prepare(
    offers: Sequence[Offer],
    stale_providers: set[str] | frozenset[str] = frozenset(),
    *,
    max_age_h: float | None = None,
    now: datetime | None = None,
) -> list[PreparedOffer]:
    """The rows of ``offers`` (in their order): display strings, sort keys, tooltips.
    ``stale_providers``: the providers whose kept live prices are no longer fresh (the
    service decides: ``Service.live_prices``)."""
    from comfyvn_gui.service.prices import age_text  # (the service's words for an age)

    now = now or datetime.now(UTC)
    rows = []
    for offer in offers:
        live = offer.source == "live"
        stale = live and offer.provider in stale_providers
        state = "stale" if stale else offer.source
        age = age_text(offer.taken_at, now)
        increment = offer.billing_increment_minutes
        display = (
            offer.provider if offer.configured else f"{offer.provider} (not configured)",
            offer.machine or NO_VALUE,
            _gpu_text(offer),
            NO_VALUE if offer.vram_gb is None else wording.vram(offer.vram_gb),
            _where(offer),
            wording.hourly_price(offer.hourly_usd),
            NO_VALUE if increment is None else wording.billing_step(increment),
            "live, stale" if stale else offer.source,
            age,
        )
        keys = (
            (not offer.configured, offer.provider.casefold()),
            (offer.machine or "").casefold(),
            (offer.gpu.casefold(), offer.gpu_count, offer.spot),
            -1.0 if offer.vram_gb is None else offer.vram_gb,
            _where(offer).casefold(),
            offer.hourly_usd,
            math.inf if increment is None else increment,
            display[Column.SOURCE],
            (now - offer.taken_at).total_seconds(),
        )
        rows.append(
            PreparedOffer(
                offer=offer,
                display=display,
                keys=keys,
                tip=_tip(offer, age, stale, max_age_h),
                state=state,
                key=offer_key(offer),
            )
        )
    return rows


class OffersModel(TintedRowsModel):
    """Read-only rows of prepared offers; :meth:`set_rows` replaces them, kept in the order
    of the last :meth:`sort` (the service's order, cheapest first, until one)."""

    headers = HEADERS
    header_tips = HEADER_TIPS
    tints = _TINTS
    inks = _INKS
    right_columns = frozenset({Column.VRAM, Column.PRICE, Column.AGE})

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[PreparedOffer] = []
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder

    # -- content ------------------------------------------------------------------------------

    def set_rows(self, rows: Sequence[PreparedOffer]) -> None:
        self.beginResetModel()
        self._rows = self._sorted(list(rows))
        self.endResetModel()

    def rows(self) -> list[PreparedOffer]:
        return list(self._rows)

    def offers(self) -> list[Offer]:
        return [r.offer for r in self._rows]

    def row_at(self, row: int) -> PreparedOffer:
        return self._rows[row]

    def row_of(self, key: tuple[Any, ...]) -> int:
        """The row of the offer with :func:`offer_key` ``key`` (-1: none)."""
        return next((i for i, r in enumerate(self._rows) if r.key == key), -1)

    # -- sorting -------------------------------------------------------------------------------

    def _sorted(self, rows: list[PreparedOffer]) -> list[PreparedOffer]:
        column = self._sort_column
        if not 0 <= column < len(HEADERS):
            return rows
        # (stable: equal keys keep the service's order, cheapest first)
        return sorted(
            rows,
            key=lambda r: r.keys[column],
            reverse=self._sort_order == Qt.SortOrder.DescendingOrder,
        )

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort by ``column``'s key (-1: the service's order, as read)."""
        self._sort_column, self._sort_order = column, order
        if not 0 <= column < len(HEADERS):
            return
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        before = {id(r): i for i, r in enumerate(self._rows)}
        self._rows = self._sorted(self._rows)
        moved = {before[id(r)]: i for i, r in enumerate(self._rows)}
        self.changePersistentIndexList(old, [self.index(moved[i.row()], i.column()) for i in old])
        self.layoutChanged.emit()

    # -- the roles beyond the shared ones -----------------------------------------------------

    def state_of(self, item: Any) -> str | None:
        state: str | None = item.state
        return state

    def role_data(self, item: Any, column: int, role: int) -> Any:
        if role == _TOOLTIP:
            return item.tip
        if role == _FONT and not item.offer.configured and column == Column.PROVIDER:
            font = QFont()
            font.setItalic(True)
            return font
        if role == OFFER_ROLE:
            return item.offer
        if role == SORT_ROLE:
            key = item.keys[column]
            return key if isinstance(key, str | float | int) else str(key)
        return None
