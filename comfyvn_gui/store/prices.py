"""Each provider's live prices and offers, in ``data/prices.json`` (issue 21).

What a provider's last refresh returned (``core.prices.Offer`` rows) and when, and the last
refresh's failure if it failed: a failure keeps the offers of the last successful refresh (they
age out by ``prices.max_age_h``; the advisor then uses the catalog, and says why). Shared by
every process of the home (a file lock around read-modify-write); never holds a secret; a
damaged file reads as empty (it is a cache, rewritten by the next refresh).
"""

from __future__ import annotations

import json
from datetime import datetime

from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from comfyvn_gui.core.errors import OperationError
from comfyvn_gui.core.prices import Offer

from .paths import Home, atomic_write_text

__all__ = ["PriceRecord", "PriceStore"]

SCHEMA_VERSION = 1


class PriceRecord(BaseModel):
    """One provider's kept prices."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    taken_at: datetime | None = Field(None, description="The last successful refresh")
    offers: list[Offer] = Field(default_factory=list)
    error: str | None = Field(None, description="The last refresh's failure, in words")
    error_at: datetime | None = None


class PriceStore:
    """``data/prices.json``: {provider id: :class:`PriceRecord`}."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.path = home.data_dir / "prices.json"
        self._lock = FileLock(str(home.data_dir / ".prices.lock"), timeout=10)

    def load(self) -> dict[str, PriceRecord]:
        try:
            raw = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}
        out: dict[str, PriceRecord] = {}
        for pid, data in (raw.get("providers") or {}).items():
            try:
                out[pid] = PriceRecord.model_validate(data)
            except ValidationError:
                continue
        return out

    def save(self, records: list[PriceRecord]) -> None:
        """Keep ``records``: a record with offers replaces the provider's; one with only an
        error keeps the offers (and their time) of the last successful refresh."""
        if not records:
            return
        self.home.ensure()
        try:
            with self._lock:
                current = self.load()
                for r in records:
                    before = current.get(r.provider)
                    if r.taken_at is None and before is not None:
                        r = before.model_copy(update={"error": r.error, "error_at": r.error_at})
                    current[r.provider] = r
                self._write(current)
        except Timeout:
            raise OperationError(f"{self.path} is busy; try again") from None

    def forget(self, provider_ids: list[str]) -> None:
        """Drop the prices of removed providers."""
        if not self.path.exists():
            return
        with self._lock:
            current = self.load()
            if not any(pid in current for pid in provider_ids):
                return
            for pid in provider_ids:
                current.pop(pid, None)
            self._write(current)

    def _write(self, records: dict[str, PriceRecord]) -> None:
        data = {
            "schema_version": SCHEMA_VERSION,
            "providers": {pid: r.model_dump(mode="json") for pid, r in sorted(records.items())},
        }
        atomic_write_text(self.path, json.dumps(data, indent=1) + "\n")
