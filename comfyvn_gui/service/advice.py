"""Advice: the live inputs of the (pure) advisor, gathered from one home.

The registry's providers, with what their last health checks reported (a LAN / SSH node's
VRAM and GPU, a lapsed quota), the latest health of each, the local NVML snapshot and the
``advisor.*`` settings. A what-if request may replace any of them; an advice records nothing
(docs/architecture.md, "The service: composition root and features").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from comfyvn_gui.core.advisor import (
    Advice,
    AdviceProvider,
    AdviceRequest,
    AdvisorSettings,
    advise,
    check_request,
    parse_request,
    requirements_for,
)
from comfyvn_gui.core.catalog import Catalog
from comfyvn_gui.core.checks import CheckResult, HealthStatus, LocalSnapshot
from comfyvn_gui.core.prices import LivePrices
from comfyvn_gui.core.workload import Workload
from comfyvn_gui.providers.local import snapshot
from comfyvn_gui.store.checks import CheckStore
from comfyvn_gui.store.registry import Registry
from comfyvn_gui.store.settings import SettingsStore

#: A local snapshot younger than this is reused (re-advising a whole queue takes one).
SNAPSHOT_MAX_AGE_S = 5.0


class LocalSnapshots:
    """The NVML snapshot, taken at most once per ``max_age_s`` (thread-safe)."""

    def __init__(self, max_age_s: float = SNAPSHOT_MAX_AGE_S) -> None:
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._taken = -1e18
        self._snap: LocalSnapshot | None = None

    def get(self, *, fresh: bool = False) -> LocalSnapshot:
        with self._lock:
            now = time.monotonic()
            if fresh or self._snap is None or now - self._taken > self.max_age_s:
                self._snap = snapshot()
                self._taken = now
            return self._snap


def _reported(result: CheckResult | None) -> tuple[float | None, str | None]:
    """(reported VRAM GB, GPU name) from a LAN / SSH health result's detail."""
    if result is None:
        return None, None
    vram = result.detail.get("reported_vram_gb")
    gpus = result.detail.get("gpus")
    name = None
    if isinstance(gpus, list):
        sized = [g for g in gpus if isinstance(g, dict) and isinstance(g.get("name"), str)]
        if sized:
            best = max(sized, key=lambda g: float(g.get("vram_total_gb") or 0))
            name = str(best["name"])
    if isinstance(vram, bool) or not isinstance(vram, int | float) or vram <= 0:
        vram = None
    return (float(vram) if vram is not None else None), name


class AdviceFeature:
    """Advice against the live registry, health, local GPU and settings of one home."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        registry: Registry,
        check_store: CheckStore,
        settings: SettingsStore,
        snapshots: LocalSnapshots,
        live_prices: Callable[[], Mapping[str, LivePrices]] | None = None,
    ) -> None:
        self.catalog = catalog
        self.registry = registry
        self.check_store = check_store
        self.settings = settings
        self.snapshots = snapshots
        self._live_prices = live_prices

    def provider_ids(self) -> set[str]:
        return {p.id for p in self.registry.providers()}

    def live_providers(self) -> tuple[list[AdviceProvider], dict[str, HealthStatus]]:
        """The registry's providers as the advisor sees them, and their latest health."""
        results = self.check_store.load()
        providers: list[AdviceProvider] = []
        health: dict[str, HealthStatus] = {}
        for entry in self.registry.providers():
            latest = results.get(entry.id, {})
            h, v = latest.get("health"), latest.get("validate")
            vram, gpu = _reported(h)
            code = None
            for r in (h, v):
                if r is not None and r.code == "quota_exhausted" and not r.ok:
                    code = r.code
            providers.append(
                AdviceProvider(
                    **entry.model_dump(), reported_vram_gb=vram, reported_gpu=gpu, health_code=code
                )
            )
            status: HealthStatus = "unknown"
            if h is not None and h.status in ("healthy", "degraded", "unhealthy"):
                status = h.status  # type: ignore[assignment]
            health[entry.id] = status
        return providers, health

    def state(self) -> dict[str, tuple[bool, str, Any]]:
        """What the advisor reads of each provider: active, health, reported VRAM."""
        providers, health = self.live_providers()
        return {
            p.id: (p.active, health.get(p.id, "unknown"), (p.reported_vram_gb, p.health_code))
            for p in providers
        }

    def local_snapshot(self, *, fresh: bool = False) -> LocalSnapshot:
        """This computer's GPUs (NVML); blocking, cached for a few seconds."""
        return self.snapshots.get(fresh=fresh)

    def advisor_settings(self) -> AdvisorSettings:
        return AdvisorSettings(
            budget_usd=self.settings.get("advisor.budget_usd"),
            latency=self.settings.get("advisor.latency"),
            residency=list(self.settings.get("advisor.residency")),
        )

    def advise(self, data: AdviceRequest | Mapping[str, Any]) -> Advice:
        """One advice; the request's ``local``, ``health`` and ``providers`` replace the live
        ones."""
        if isinstance(data, AdviceRequest):
            request = data
            check_request(request, self.catalog)
        else:
            request = parse_request(data, self.catalog)
        return self.advise_workloads(
            [request.workload],
            local=request.local,
            health=request.health,
            providers=request.providers,
            live_prices=request.providers is None or request.live_prices,
        )[0]

    def advise_workloads(
        self,
        workloads: Sequence[Workload],
        *,
        local: LocalSnapshot | None = None,
        health: Mapping[str, HealthStatus] | None = None,
        providers: Sequence[AdviceProvider] | None = None,
        user_picks: Sequence[str | None] | None = None,
        live_prices: bool = True,
    ) -> list[Advice]:
        """Advise many workloads against one reading of the registry, health, snapshot,
        settings and live prices (``live_prices`` False: the catalog's prices only, as a
        what-if with its own providers is priced unless it asks for live prices)."""
        if providers is None or health is None:
            live, live_health = self.live_providers()
            if providers is None:
                providers = live
            if health is None:
                health = live_health
        if local is None:
            local = self.snapshots.get()
        settings = self.advisor_settings()
        prices = self._live_prices() if live_prices and self._live_prices is not None else None
        out = []
        for i, workload in enumerate(workloads):
            pick = user_picks[i] if user_picks is not None else None
            req = requirements_for(workload, self.catalog)
            out.append(
                advise(
                    workload,
                    req,
                    providers,
                    health,
                    local,
                    settings,
                    self.catalog,
                    user_pick=pick,
                    prices=prices,
                )
            )
        return out
