"""Prices and offers: live prices fetched with each provider's stored credentials, kept in the
home, read by the advisor, listed by ``offers`` (issue 21; docs/architecture.md, "Prices").

* :meth:`PricesFeature.refresh` asks every provider that has a live price source
  (``providers/prices``) at once, each under the same deadline; a source that fails or does not
  answer in time is recorded with why, and never blocks the others or any advice (the advisor
  falls back to the catalog and says so). The refresh runs on the caller's event loop: the
  window's background loop, ``serve``, or the command line's ``offers --refresh``.
* :func:`live_prices` is what the advisor is given: each provider's kept offers, marked fresh
  while younger than ``prices.max_age_h``.
* :meth:`PricesFeature.offers` answers ``offers`` from the store and the catalog alone (no
  network): live rows for providers that have them, the catalog's rows for the others and for
  the templates nobody has registered yet (``configured`` false).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from comfyvn_gui.core.catalog import Catalog
from comfyvn_gui.core.errors import NotFoundError
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.core.prices import LivePrices, Offer, catalog_offers
from comfyvn_gui.core.redaction import redact_text, register_secret
from comfyvn_gui.providers.base import CheckFailure
from comfyvn_gui.providers.prices import LIVE_SOURCES, live_source
from comfyvn_gui.store.prices import PriceRecord, PriceStore
from comfyvn_gui.store.registry import Registry
from comfyvn_gui.store.settings import SettingsStore

from .checks import ChecksFeature
from .workers import Workers

__all__ = ["PricesFeature", "live_prices"]

#: A refresh's default deadline per provider (seconds).
REFRESH_TIMEOUT_S = 30.0


def live_prices(
    records: dict[str, PriceRecord], max_age_h: float, now: datetime | None = None
) -> dict[str, LivePrices]:
    """The kept prices as the advisor is given them: fresh while younger than ``max_age_h``."""
    now = now or datetime.now(UTC)
    oldest = now - timedelta(hours=max_age_h)
    return {
        pid: LivePrices(
            provider=pid,
            taken_at=r.taken_at,
            offers=r.offers,
            fresh=r.taken_at is not None and r.taken_at >= oldest,
            error=r.error,
        )
        for pid, r in records.items()
    }


class PricesFeature:
    """Live prices and the offers listing of one home."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        registry: Registry,
        store: PriceStore,
        settings: SettingsStore,
        checks: ChecksFeature,
        workers: Workers,
    ) -> None:
        self.catalog = catalog
        self.registry = registry
        self.store = store
        self.settings = settings
        self.checks = checks
        self.workers = workers

    @property
    def max_age_h(self) -> float:
        return float(self.settings.get("prices.max_age_h"))

    def live(self, now: datetime | None = None) -> dict[str, LivePrices]:
        """Each provider's kept prices, fresh or not (blocking: reads the home)."""
        return live_prices(self.store.load(), self.max_age_h, now)

    def sources(self, ids: Sequence[str] | None = None) -> list[ProviderEntry]:
        """The providers whose prices a refresh asks for: the enabled ones with a live price
        source (``ids``: those, refused by name when unknown or without a source)."""
        entries = self.registry.providers()
        if not ids:
            return [e for e in entries if e.enabled and e.template_id in LIVE_SOURCES]
        by_id = {e.id: e for e in entries}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise NotFoundError(
                f"no provider {', '.join(repr(u) for u in unknown)} is registered "
                f"(registered: {', '.join(by_id) or 'none'})",
                fields=["id"],
            )
        without = [i for i in ids if by_id[i].template_id not in LIVE_SOURCES]
        if without:
            raise NotFoundError(
                f"{', '.join(without)} {'has' if len(without) == 1 else 'have'} no live price "
                "source (the catalog's prices are used): "
                f"live prices come from {', '.join(sorted(LIVE_SOURCES))}",
                fields=["id"],
            )
        return [by_id[i] for i in dict.fromkeys(ids)]

    def stale(self, now: datetime | None = None) -> list[str]:
        """The providers with a source whose prices are missing or older than the setting."""
        live = self.live(now)
        return [e.id for e in self.sources() if not (e.id in live and live[e.id].fresh)]

    async def refresh(
        self,
        ids: Sequence[str] | None = None,
        *,
        timeout_s: float | None = None,
        transport: Any = None,
    ) -> list[PriceRecord]:
        """Fetch the live prices of ``ids`` (default: every enabled provider with a source) at
        once and keep them; returns what each gave (offers, or why not)."""
        entries = self.sources(ids)
        if not entries:
            return []
        loop = asyncio.get_running_loop()
        timeout = REFRESH_TIMEOUT_S if timeout_s is None else timeout_s
        deadline = loop.time() + timeout
        records = await asyncio.gather(
            *(self._one(e, deadline, timeout, transport) for e in entries)
        )
        await loop.run_in_executor(self.workers.io_pool, self.store.save, list(records))
        return list(records)

    async def _one(
        self, entry: ProviderEntry, deadline: float, limit_s: float, transport: Any
    ) -> PriceRecord:
        secrets: dict[str, str] = {}
        try:
            if entry.secrets_set:
                secrets = await self.workers.keyring_executor.run(
                    deadline, self.registry.read_secrets, entry
                )
            source = live_source(entry.template_id)
            if source is None:  # (sources() keeps only providers with one)
                raise CheckFailure("error", "no live price source")
            ctx = self.checks.context(entry, secrets, deadline, transport=transport)
            left = max(0.0, deadline - asyncio.get_running_loop().time())
            offers = await asyncio.wait_for(source(ctx, self.catalog), left)
        except CheckFailure as failure:
            return _failed(entry, failure.message, secrets)
        except TimeoutError:
            return _failed(entry, f"no answer within {limit_s:g} s", secrets)
        except Exception as exc:  # noqa: BLE001 - a source's bug must not stop the others
            return _failed(entry, f"{type(exc).__name__}: {exc}", secrets)
        return PriceRecord(provider=entry.id, taken_at=datetime.now(UTC), offers=offers)

    def offers(
        self,
        *,
        vram_gb: float | None = None,
        gpu: str | None = None,
        zone: str | None = None,
        max_price: float | None = None,
        spot: bool = False,
        templates: bool = True,
        now: datetime | None = None,
    ) -> list[Offer]:
        """Every offer across the user's providers (their live rows where kept, else the
        catalog's) and, with ``templates``, the templates not registered yet (catalog rows,
        ``configured`` false): filtered, cheapest first (then by VRAM, provider, region).
        ``spot``: interruptible offers too (default: on-demand only). Reads the home only."""
        kept = self.live(now)
        rows: list[Offer] = []
        registered: set[str] = set()
        for entry in self.registry.providers():
            if not entry.enabled:
                continue
            registered.add(entry.template_id)
            live = kept.get(entry.id)
            if live is not None and live.offers:
                rows.extend(live.offers)
                continue
            try:
                profile = self.catalog.profile(entry.template_id)
            except KeyError:
                continue
            region = entry.config.get("region")
            pinned = [region] if isinstance(region, str) and region else None
            rows.extend(catalog_offers(self.catalog, profile, entry.id, regions=pinned))
        if templates:
            for profile in self.catalog.profiles.values():
                if profile.id not in registered:
                    rows.extend(catalog_offers(self.catalog, profile, profile.id, configured=False))
        wanted = self.catalog.gpu(gpu) if gpu else None
        out = [
            o
            for o in rows
            if (spot or not o.spot)
            and (vram_gb is None or (o.vram_gb is not None and o.vram_gb + 1e-9 >= vram_gb))
            and (zone is None or o.zone == zone)
            and (max_price is None or o.hourly_usd <= max_price + 1e-9)
            and (gpu is None or _same_gpu(o.gpu, gpu, wanted.name if wanted else None))
        ]
        out.sort(
            key=lambda o: (
                o.hourly_usd,
                -(o.vram_gb or 0.0),
                o.configured is False,
                o.provider,
                o.region or "",
                o.machine or "",
            )
        )
        return out


def _same_gpu(offered: str, asked: str, catalog_name: str | None) -> bool:
    """``--gpu A100`` matches every A100 (40 and 80 GB); an alias the GPU catalog knows
    ("A6000") matches the GPU it names."""
    if catalog_name is not None and offered == catalog_name:
        return True
    return asked.casefold() in offered.casefold()


def _failed(entry: ProviderEntry, message: str, secrets: dict[str, str]) -> PriceRecord:
    for value in secrets.values():  # (never a credential in the home's files)
        register_secret(value)
    return PriceRecord(provider=entry.id, error=redact_text(message), error_at=datetime.now(UTC))


def age_text(taken_at: datetime, now: datetime | None = None) -> str:
    """How old a price is, in words ("3 min", "2 h", "5 d")."""
    seconds = max(0.0, ((now or datetime.now(UTC)) - taken_at).total_seconds())
    if seconds < 90:
        return f"{math.floor(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"
