"""The health monitor: periodic health checks of enabled, active providers.

* Every ``health.interval_s`` seconds each watched provider is due; all due checks of a round
  run concurrently (the checks feature's ``check``).
* A failing (``unhealthy``) provider backs off exponentially: it is next due after
  ``interval * 2**failures`` (at most :data:`MAX_BACKOFF_S`), and comes back to the normal
  interval as soon as it is healthy again.
* The schedule lives in the home (``data/health-monitor.json``) and a round claims the
  providers it will check under a file lock before checking them, so the GUI, ``serve`` and a
  CLI watcher on one home never check the same provider twice.
* After each round, at most every :data:`PRICE_RETRY_S`, the live prices that are missing or
  older than ``prices.max_age_h`` are refreshed (``Service.refresh_stale_prices``): the window
  runs the monitor on its background loop, so prices are never fetched on the GUI thread.
* A change of a provider's health is a line in ``compute_advisor.log``; the latest result is in
  ``data/checks.json``, where the advisor reads it (an ``unhealthy`` provider is skipped with a
  warning).

The monitor is handed what it uses: the checks feature (to run a round), the registry (which
providers it watches), the settings (the interval), the audit log, the schedule
(``store/monitor_schedule.py``) and the service's workers (docs/architecture.md, "The service:
composition root and features").
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from comfyvn_gui.core.checks import CheckResult
from comfyvn_gui.store.audit import AuditLog
from comfyvn_gui.store.monitor_schedule import MonitorSchedule
from comfyvn_gui.store.registry import Registry
from comfyvn_gui.store.settings import SettingsStore

from .checks import ChecksFeature
from .workers import Workers

MAX_BACKOFF_S = 3600.0
#: The background price refresh looks for stale prices at most this often (seconds).
PRICE_RETRY_S = 600.0


class HealthMonitor:
    """Runs health rounds for one home. ``clock`` is wall time (shared between processes)."""

    def __init__(
        self,
        *,
        checks: ChecksFeature,
        registry: Registry,
        settings: SettingsStore,
        audit: AuditLog,
        schedule: MonitorSchedule,
        workers: Workers,
        clock: Callable[[], float] = time.time,
        refresh_prices: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.checks = checks
        self.registry = registry
        self.settings = settings
        self.audit = audit
        self.store = schedule
        self.workers = workers
        self.clock = clock
        self._refresh_prices = refresh_prices
        self._prices_tried = -math.inf  # (monotonic) the last background price refresh

    # -- schedule ------------------------------------------------------------------------

    def interval(self) -> float:
        return float(self.settings.get("health.interval_s"))

    def watched(self) -> list[str]:
        """The providers the monitor watches: enabled and active ones."""
        return [p.id for p in self.registry.providers() if p.enabled and p.active]

    def schedule(self) -> dict[str, dict[str, Any]]:
        """Per provider: next_due (epoch s), failures, status — as stored in the home."""
        return self.store.load()

    def _claim(self) -> list[str]:
        """Take the due providers for this round (a lease of one interval) under the lock."""
        now = self.clock()
        interval = self.interval()
        watched = self.watched()
        with self.store.edit() as state:
            due = [pid for pid in watched if state.get(pid, {}).get("next_due", 0) <= now]
            for pid in due:
                entry = state.setdefault(pid, {"failures": 0, "status": "unknown"})
                entry["next_due"] = now + interval  # the lease: nobody else checks it now
                entry["claimed_at"] = now
            for pid in [p for p in state if p not in watched]:
                state.pop(pid)  # removed, disabled or deactivated: no longer watched
        return due

    def _settle(self, results: list[CheckResult]) -> list[tuple[str, str, str]]:
        """Record the round's outcome; returns the (provider, old, new) status changes."""
        now = self.clock()
        interval = self.interval()
        changes = []
        with self.store.edit() as state:
            for r in results:
                entry = state.setdefault(r.provider, {"failures": 0, "status": "unknown"})
                old = entry.get("status", "unknown")
                if r.status == "unhealthy":
                    entry["failures"] = int(entry.get("failures", 0)) + 1
                    wait = min(interval * 2 ** entry["failures"], max(MAX_BACKOFF_S, interval))
                else:
                    entry["failures"] = 0
                    wait = interval
                entry["next_due"] = now + wait
                entry["status"] = r.status
                entry.pop("claimed_at", None)
                if old != r.status:
                    changes.append((r.provider, old, r.status))
        for pid, old, new in changes:
            result = next(r for r in results if r.provider == pid)
            self.audit.event(
                "provider.health_changed",
                provider=pid,
                previous=old,
                status=new,
                code=result.code,
                message=result.message,
                backoff_s=round(state[pid]["next_due"] - now, 1),
            )
        return changes

    # -- running -------------------------------------------------------------------------

    async def run_once(self) -> list[CheckResult]:
        """One round: check every due provider (concurrently); returns their results."""
        loop = asyncio.get_running_loop()
        due = await loop.run_in_executor(self.workers.io_pool, self._claim)
        if not due:
            return []
        results = await self.checks.check("health", due)
        await loop.run_in_executor(self.workers.io_pool, self._settle, results)
        return results

    async def refresh_prices(self) -> bool:
        """The background price refresh: at most every :data:`PRICE_RETRY_S`, fetch the live
        prices that are missing or older than ``prices.max_age_h`` (the service's
        ``refresh_stale_prices``). Never raises: a failure is logged, the advisor keeps the
        catalog's prices. Returns whether it ran."""
        now = time.monotonic()
        if self._refresh_prices is None or now - self._prices_tried < PRICE_RETRY_S:
            return False
        self._prices_tried = now
        try:
            await self._refresh_prices()
        except Exception as exc:  # noqa: BLE001 - a background refresh must not stop rounds
            self.audit.event("prices.refresh_failed", level="warning", exc=exc)
        return True

    def seconds_until_due(self) -> float:
        state = self.store.load()
        watched = self.watched()
        if not watched:
            return self.interval()
        now = self.clock()
        return float(max(0.0, min(state.get(p, {}).get("next_due", 0) - now for p in watched)))

    async def run_forever(
        self,
        stop: asyncio.Event,
        on_results: Callable[[list[CheckResult]], None] | None = None,
        *,
        max_sleep_s: float = 60.0,
    ) -> None:
        """Rounds until ``stop`` is set; sleeps until the next provider is due."""
        while not stop.is_set():
            results = await self.run_once()
            if results and on_results is not None:
                on_results(results)
            await self.refresh_prices()
            wait = min(max_sleep_s, max(1.0, self.seconds_until_due()))
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except TimeoutError:
                continue
