"""The compute advisor: where a workload should run, what it costs, why, and what to warn about.

:func:`advise` is a PURE function of (workload, requirements, providers with their health and
validation, the local GPU snapshot, the advisor settings, the catalog). It touches no disk, no
network and no clock, so the same input always gives the same advice. ``service`` gathers the
live inputs; a request may give them instead (DESIGN.md, "Advice request / response").

The rules (DESIGN.md, "Advisor invariants"):

1. Eligibility. A provider is eligible when it is enabled, active (its credentials passed
   validation; the built-in ``local`` needs none), not unhealthy, its quota has not lapsed,
   its GPU's VRAM covers the need (the local GPU: its FREE VRAM, with utilisation below 0.9; a
   LAN / SSH node: the VRAM its health check reported, the profile's floor while nothing was
   reported; a cloud: the VRAM of its configured GPU), it can run in an allowed residency zone,
   and its estimated cost is within the budget (an unpriced provider is over any budget).
   ``degraded`` and ``unknown`` health are eligible, with a warning.
2. Order. The local GPU wins; then a cost-free on-prem / LAN node (the fastest, then by id);
   then the remote provider with the lowest estimated cost, billed as
   ``max(minimum, ceil(minutes / increment) * increment)`` — then the fewest minutes, then the
   id. A remote without a known price ranks after every priced one. Preferences reorder the
   eligible remotes only, and the reason names the one that decided: a workload with
   ``cached_graphs`` favours a profile with ``persistent_cache`` (Paperspace's volume);
   ``interactive`` latency favours the shortest start-up (``startup_minutes``), then cost. A
   user's explicit pick (``user_pick``, the jobs queue's ``decided_by: user``) wins while it is
   eligible.
3. Every provider that is not the choice is an alternative with its numbers and either
   ``excluded_because`` or a ``note`` saying why it was not chosen.
4. Warnings come from the profiles' metadata (``legal``): a remote choice always carries
   ``data_leaves_machine``; residency, non-open-source assets and DPIA notes likewise.

Minutes on a provider = reference GPU-hours x 60 / its GPU's relative throughput + its
profile's ``startup_minutes``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .catalog import Catalog, GpuSpec, ProviderKind, ProviderProfile, Region
from .checks import FailureCode, HealthStatus, LocalGpu, LocalSnapshot
from .errors import InputError
from .models import LOCAL_ID, ProviderEntry
from .workload import Latency, Requirements, Workload

__all__ = [
    "BUSY_UTILIZATION",
    "WARNING_CODES",
    "Advice",
    "AdviceProvider",
    "AdviceRequest",
    "AdviceWarning",
    "AdvisorSettings",
    "Alternative",
    "advise",
    "format_cost",
    "input_error",
    "parse_request",
    "requirements_for",
]

#: A local GPU at or above this utilisation is busy (DESIGN.md: "utilisation below 0.9").
BUSY_UTILIZATION = 0.9
#: Cost comparisons tolerate float noise of this size (USD).
_EPS = 1e-9

WarningCode = Literal[
    "data_leaves_machine",
    "residency",
    "non_open_source_assets",
    "dpia",
    "provider_unhealthy_skipped",
    "provider_degraded",
    "health_unknown",
    "price_unknown",
    "over_budget_skipped",
    "quota_lapsed_skipped",
    "user_pick_ineligible",
]
WARNING_CODES: tuple[str, ...] = WarningCode.__args__  # type: ignore[attr-defined]

Preference = Literal[
    "local_gpu",
    "cost_free_on_prem",
    "cheapest",
    "interactive_latency",
    "cached_graphs",
    "user_pick",
]

_REMOTE_KINDS: frozenset[str] = frozenset({"cloud", "marketplace", "kubernetes"})
_ON_PREM_KINDS: frozenset[str] = frozenset({"lan", "ssh"})


# --------------------------------------------------------------------------------------------
# Objects of the request and the response
# --------------------------------------------------------------------------------------------


class AdviceProvider(ProviderEntry):
    """A provider entry as an advice request gives it (taken as given: ``active`` is trusted)."""

    reported_vram_gb: float | None = Field(
        None, gt=0, le=4096, description="LAN / SSH: the VRAM the node's health check reported"
    )
    reported_gpu: str | None = Field(
        None, max_length=200, description="LAN / SSH: the GPU name the node reported"
    )
    health_code: FailureCode | None = Field(
        None, description="The code of its last failed check (quota_exhausted: quota lapsed)"
    )


class AdvisorSettings(BaseModel):
    """The advisor's defaults (settings ``advisor.*``), used where a workload gives none."""

    model_config = ConfigDict(extra="forbid")

    budget_usd: float | None = Field(None, ge=0, description="Per job; null: no budget")
    latency: Latency = "batch"
    residency: list[str] = Field(default_factory=list, description="Allowed zones; [] = any")


class AdviceRequest(BaseModel):
    """``comfyvn-gui advise --request`` and ``POST /compute/advise``."""

    model_config = ConfigDict(extra="forbid")

    workload: Workload
    local: LocalSnapshot | None = Field(
        None, description="This machine's GPUs; default: the live NVML snapshot"
    )
    health: dict[str, HealthStatus] | None = Field(
        None, description="{provider_id: health}; default: the latest health checks"
    )
    providers: list[AdviceProvider] | None = Field(
        None, description="Replaces the registry for this one advice (a what-if)"
    )


class AdviceWarning(BaseModel):
    code: WarningCode
    message: str
    provider: str | None = Field(None, description="The provider it is about, if one")


class Alternative(BaseModel):
    """One provider the advisor weighed: its numbers, or why it was excluded."""

    provider: str
    name: str
    kind: ProviderKind
    eligible: bool
    excluded_because: str | None = Field(None, description="Why it cannot run this workload")
    note: str | None = Field(None, description="For an eligible provider: why it was not chosen")
    health: HealthStatus
    gpu: str | None = Field(None, description="The GPU the numbers are for")
    vram_gb: float | None = Field(None, description="Its VRAM (local: free VRAM)")
    zones: list[str] = Field(default_factory=list, description="Residency zones it may run in")
    hourly_usd: float | None = Field(None, description="None: no known price")
    price_source: Literal["catalog", "meta", "price_ceiling", "free"] | None = None
    billing_increment_minutes: float
    billing_minimum_minutes: float
    estimated_minutes: float | None = Field(None, description="GPU time + start-up, minutes")
    billed_minutes: float | None = None
    estimated_cost_usd: float | None = Field(None, description="Not rounded")


class Advice(BaseModel):
    """The advisor's answer (DESIGN.md, "Advice request / response")."""

    choice: str | None = Field(description="A provider id, 'local' for this machine, or null")
    estimated_cost: str | None = Field(description="Rounded for display, e.g. '$0.45'")
    estimated_cost_usd: float | None = Field(description="Not rounded")
    estimated_minutes: float | None
    reason: str
    decided_by: Preference | None = Field(
        None, description="The rule or preference that decided the choice"
    )
    policy_hint: str | None = None
    warnings: list[AdviceWarning] = Field(default_factory=list)
    requirements: Requirements
    chosen: Alternative | None = Field(None, description="The choice's own numbers")
    alternatives: list[Alternative] = Field(default_factory=list)
    settings: AdvisorSettings = Field(description="Budget, latency and residency applied")
    catalog_version: str


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _num(x: float) -> str:
    """12.0 -> '12', 5.5 -> '5.5', 0.46 -> '0.46'."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def _money(usd: float) -> str:
    """An hourly price: $0.30, $1.05, $0.456."""
    text = f"{usd:.4f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def format_cost(usd: float | None) -> str | None:
    if usd is None:
        return None
    if usd <= 0:
        return "$0.00"
    if usd < 0.005:
        return "<$0.01"
    return f"${usd:,.2f}"


def _minutes_text(minutes: float) -> str:
    if minutes < 1:
        return f"{max(1, round(minutes * 60))} s"
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def _increment_text(minutes: float) -> str:
    if abs(minutes - 1 / 60) < 1e-6:
        return "per second"
    if abs(minutes - 1) < 1e-9:
        return "per minute"
    if abs(minutes - 60) < 1e-9:
        return "per hour"
    return f"in {_num(minutes)}-minute steps"


def _meta_number(meta: Mapping[str, Any], key: str) -> float | None:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _regions_by_id(profile: ProviderProfile) -> dict[str, Region]:
    return {r.id.lower(): r for r in profile.regions}


def _configured_regions(
    entry: ProviderEntry, profile: ProviderProfile
) -> tuple[list[Region] | None, str | None]:
    """The regions this provider is pinned to (config ``region``, else ``meta.allowed_regions``),
    or (None, None) when it is not pinned; (None, why) when a region is not in the catalog."""
    by_id = _regions_by_id(profile)
    region = entry.config.get("region")
    if isinstance(region, str) and region.strip():
        found = by_id.get(region.strip().lower())
        if found is None:
            return None, f"its region {region!r} is not in the catalog, so its zone is unknown"
        return [found], None
    allowed = entry.meta.get("allowed_regions")
    if isinstance(allowed, list) and allowed:
        out: list[Region] = []
        for item in allowed:
            found = by_id.get(str(item).strip().lower())
            if found is None:
                return None, f"its allowed region {item!r} is not in the catalog"
            out.append(found)
        return out, None
    return None, None


# --------------------------------------------------------------------------------------------
# Evaluating one provider
# --------------------------------------------------------------------------------------------


class _Candidate:
    """Working numbers of one provider while advising."""

    def __init__(self, entry: ProviderEntry, profile: ProviderProfile, health: HealthStatus):
        self.entry = entry
        self.profile = profile
        self.health = health
        self.excluded: str | None = None
        self.exclusion_code: str | None = None
        self.gpu: str | None = None
        self.vram_gb: float | None = None
        self.throughput = 1.0
        self.zones: list[str] = list(profile.zones)
        self.pinned: list[Region] | None = None
        self.hourly: float | None = None
        self.price_source: Literal["catalog", "meta", "price_ceiling", "free"] | None = None
        self.minutes: float | None = None
        self.billed: float | None = None
        self.cost: float | None = None
        self.note: str | None = None
        self.local_gpu: LocalGpu | None = None

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def kind(self) -> str:
        return self.profile.kind

    @property
    def label(self) -> str:
        return self.entry.name if self.entry.name else self.entry.id

    def exclude(self, code: str, why: str) -> None:
        if self.excluded is None:
            self.excluded, self.exclusion_code = why, code

    def alternative(self) -> Alternative:
        return Alternative(
            provider=self.id,
            name=self.label,
            kind=self.profile.kind,
            eligible=self.excluded is None,
            excluded_because=self.excluded,
            note=self.note if self.excluded is None else None,
            health=self.health,
            gpu=self.gpu,
            vram_gb=self.vram_gb,
            zones=self.zones,
            hourly_usd=self.hourly,
            price_source=self.price_source,
            billing_increment_minutes=self.profile.billing.increment_minutes,
            billing_minimum_minutes=self.profile.billing.minimum_minutes,
            estimated_minutes=None if self.minutes is None else round(self.minutes, 1),
            billed_minutes=None if self.billed is None else round(self.billed, 4),
            estimated_cost_usd=self.cost,
        )


def _best_local_gpu(local: LocalSnapshot) -> tuple[LocalGpu | None, bool]:
    """(the GPU with the most free VRAM among those not busy, any_gpu_busy)."""
    idle = [g for g in local.gpus if g.utilization < BUSY_UTILIZATION]
    if not idle:
        return None, bool(local.gpus)
    idle.sort(key=lambda g: (-g.vram_free_gb, g.index if g.index is not None else 0, g.name))
    return idle[0], len(idle) < len(local.gpus)


def _evaluate(
    c: _Candidate,
    req: Requirements,
    workload: Workload,
    local: LocalSnapshot,
    residency: Sequence[str],
    budget: float | None,
    catalog: Catalog,
) -> None:
    entry, profile = c.entry, c.profile
    need = req.vram_gb
    label = workload.label

    # The switches, validation, health and quota.
    if not entry.enabled:
        c.exclude("disabled", "switched off (disabled)")
    if not entry.active and c.kind != "local":
        c.exclude("not_active", "not validated: its credentials have not passed Validate")
    if c.health == "unhealthy":
        c.exclude("unhealthy", "unhealthy at its last health check")
    code = entry.health_code if isinstance(entry, AdviceProvider) else None
    if entry.meta.get("quota_lapsed") is True or code == "quota_exhausted":
        c.exclude("quota_lapsed", "its quota has lapsed (no capacity can be rented)")

    # The GPU and its VRAM.
    spec: GpuSpec | None
    if c.kind == "local":
        gpu, _ = _best_local_gpu(local)
        c.local_gpu = gpu
        if not local.gpus:
            why = (local.note or "none found").split(": jobs run", 1)[0]
            c.exclude("no_gpu", f"no local GPU ({why})")
        elif gpu is None:
            busiest = min(g.utilization for g in local.gpus)
            c.exclude("busy", f"local GPU is busy ({busiest:.0%} utilised)")
        else:
            c.gpu, c.vram_gb = gpu.name, gpu.vram_free_gb
            spec = catalog.gpu(gpu.name)
            c.throughput = spec.relative_throughput if spec else 1.0
            if gpu.vram_free_gb + _EPS < need:
                c.exclude(
                    "vram",
                    f"Local GPU has insufficient VRAM ({_num(gpu.vram_free_gb)}GB free < "
                    f"{_num(need)}GB required for {label})",
                )
    elif profile.reports_own_gpu:
        reported = entry.reported_vram_gb if isinstance(entry, AdviceProvider) else None
        name = entry.reported_gpu if isinstance(entry, AdviceProvider) else None
        # The GPU the node reported, else the one configured for it (a catalog name).
        reported_spec = catalog.gpu(name) if name else None
        configured_spec = catalog.gpu(entry.gpu) if entry.gpu else None
        spec = reported_spec or configured_spec
        c.gpu = name or (spec.name if spec else None)
        c.throughput = spec.relative_throughput if spec else 1.0
        if reported is not None:
            c.vram_gb = reported
            where = "reported by its last health check"
        elif reported_spec is not None:
            c.vram_gb, where = reported_spec.vram_gb, f"of the {reported_spec.name} it reported"
        elif configured_spec is not None:
            c.vram_gb, where = configured_spec.vram_gb, f"of its configured {configured_spec.name}"
        else:
            c.vram_gb, where = profile.vram_floor_gb, "the profile's floor (nothing reported yet)"
        if c.vram_gb + _EPS < need:
            c.exclude(
                "vram",
                f"insufficient VRAM ({_num(c.vram_gb)}GB {where} < {_num(need)}GB required "
                f"for {label})",
            )
    else:
        name = entry.gpu or profile.default_gpu
        spec = catalog.gpu(name)
        if spec is not None:
            c.gpu, c.vram_gb, c.throughput = spec.name, spec.vram_gb, spec.relative_throughput
        else:
            c.gpu, c.vram_gb = name, profile.vram_floor_gb
        if c.vram_gb + _EPS < need:
            c.exclude(
                "vram",
                f"insufficient VRAM ({c.gpu} has {_num(c.vram_gb)}GB < {_num(need)}GB required "
                f"for {label})",
            )

    # Residency: local and on-prem always satisfy it.
    if c.kind in _REMOTE_KINDS:
        pinned, problem = _configured_regions(entry, profile)
        c.pinned = pinned
        if pinned is not None:
            c.zones = sorted({r.zone for r in pinned})
        if residency:
            if problem is not None:
                c.exclude("residency", f"residency cannot be confirmed: {problem}")
            elif not set(c.zones) & set(residency):
                c.exclude(
                    "residency",
                    f"outside the allowed residency ({', '.join(residency)}): it runs in "
                    f"{', '.join(c.zones)}",
                )

    # Time and money.
    c.minutes = req.gpu_hours * 60 / c.throughput + profile.startup_minutes
    c.billed = profile.billing.billed_minutes(c.minutes)
    if c.kind in _REMOTE_KINDS:
        hourly = _meta_number(entry.meta, "hourly_usd")
        source: Literal["catalog", "meta", "price_ceiling"] | None = (
            "meta" if hourly is not None else None
        )
        if hourly is None and profile.pricing.hourly_usd is not None:
            hourly, source = profile.pricing.hourly_usd, "catalog"
        ceiling = _meta_number(entry.meta, "price_ceiling_usd")
        if ceiling is not None and (hourly is None or ceiling < hourly):
            hourly, source = ceiling, "price_ceiling"
        c.hourly, c.price_source = hourly, source
    else:
        c.hourly, c.price_source = 0.0, "free"
    if c.hourly is not None:
        c.cost = c.hourly * c.billed / 60

    if budget is not None and c.kind in _REMOTE_KINDS:
        if c.cost is None:
            c.exclude(
                "budget", f"no known price, so it cannot be held to the ${_num(budget)} budget"
            )
        elif c.cost > budget + _EPS:
            c.exclude(
                "budget",
                f"over budget ({format_cost(c.cost)} > {format_cost(budget)})",
            )


# --------------------------------------------------------------------------------------------
# Choosing
# --------------------------------------------------------------------------------------------


def _cost_key(c: _Candidate) -> tuple[int, float, float, str]:
    return (
        0 if c.cost is not None else 1,
        c.cost if c.cost is not None else 0.0,
        c.minutes or 0.0,
        c.id,
    )


def _remote_order(
    remotes: list[_Candidate], *, latency: str, cached: bool
) -> tuple[list[_Candidate], Preference]:
    """Eligible remotes in the order the advisor prefers them, and what decided the first."""
    by_cost = sorted(remotes, key=_cost_key)
    if not by_cost:
        return by_cost, "cheapest"
    decided: Preference = "cheapest"
    order = by_cost
    if latency == "interactive":
        by_start = sorted(remotes, key=lambda c: (c.profile.startup_minutes, *_cost_key(c)))
        if by_start[0] is not order[0]:
            decided = "interactive_latency"
        order = by_start
    if cached:
        by_cache = sorted(order, key=lambda c: 0 if c.profile.persistent_cache else 1)
        if by_cache[0] is not order[0]:
            decided = "cached_graphs"
        order = by_cache
    return order, decided


def _join(items: Iterable[str]) -> str:
    return "; ".join(items)


def advise(
    workload: Workload,
    requirements: Requirements,
    providers: Sequence[ProviderEntry],
    health: Mapping[str, HealthStatus],
    local: LocalSnapshot,
    settings: AdvisorSettings,
    catalog: Catalog,
    *,
    user_pick: str | None = None,
) -> Advice:
    """Advise where ``workload`` (needing ``requirements``) should run. Pure and deterministic.

    ``providers`` are the registered entries (``AdviceProvider`` for the reported VRAM of
    LAN / SSH nodes and the last failure code); the built-in ``local`` is added when missing.
    ``health`` maps ids to their latest health (missing: ``unknown``).
    """
    residency = workload.residency if workload.residency is not None else settings.residency
    budget = workload.budget_usd if workload.budget_usd is not None else settings.budget_usd
    latency = workload.latency or settings.latency
    applied = AdvisorSettings(budget_usd=budget, latency=latency, residency=list(residency))

    entries = list(providers)
    if not any(e.id == LOCAL_ID for e in entries):
        local_profile = catalog.profile(LOCAL_ID)
        entries.insert(
            0,
            ProviderEntry(
                id=LOCAL_ID, template_id=local_profile.id, name=local_profile.name, active=True
            ),
        )
    seen: set[str] = set()
    candidates: list[_Candidate] = []
    for entry in sorted(entries, key=lambda e: e.id):
        if entry.id in seen:
            continue
        seen.add(entry.id)
        profile = catalog.profile(entry.template_id)
        c = _Candidate(entry, profile, health.get(entry.id, "unknown"))
        _evaluate(c, requirements, workload, local, residency, budget, catalog)
        candidates.append(c)

    eligible = [c for c in candidates if c.excluded is None]
    locals_ = [c for c in eligible if c.kind == "local"]
    on_prem = sorted(
        (c for c in eligible if c.kind in _ON_PREM_KINDS),
        key=lambda c: (c.minutes or 0.0, c.id),
    )
    remotes, remote_decided = _remote_order(
        [c for c in eligible if c.kind in _REMOTE_KINDS],
        latency=latency,
        cached=workload.cached_graphs,
    )
    ranked: list[_Candidate] = [*locals_, *on_prem, *remotes]
    decided: Preference | None
    if locals_:
        decided = "local_gpu"
    elif on_prem:
        decided = "cost_free_on_prem"
    elif remotes:
        decided = remote_decided
    else:
        decided = None

    warnings: list[AdviceWarning] = []
    by_id = {c.id: c for c in candidates}
    if user_pick is not None:
        picked = by_id.get(user_pick)
        if picked is not None and picked.excluded is None:
            ranked.remove(picked)
            ranked.insert(0, picked)
            decided = "user_pick"
        else:
            why = picked.excluded if picked is not None else "it is not registered"
            warnings.append(
                AdviceWarning(
                    code="user_pick_ineligible",
                    provider=user_pick,
                    message=f"Your pick {user_pick!r} can no longer run this job ({why}); "
                    "the advisor chose again.",
                )
            )

    choice = ranked[0] if ranked else None
    _notes(ranked, remotes, decided)
    reason = _reason(choice, decided, candidates, remotes, workload, requirements, latency)
    warnings.extend(_warnings(choice, candidates, workload, requirements, residency))

    alternatives = [c.alternative() for c in ranked[1:]]
    alternatives += [c.alternative() for c in candidates if c.excluded is not None]
    policy_hint = None
    if choice is not None:
        policy_hint = choice.profile.policy_hints.get(
            workload.kind, choice.profile.policy_highlight
        )
    return Advice(
        choice=choice.id if choice else None,
        estimated_cost=format_cost(choice.cost) if choice else None,
        estimated_cost_usd=choice.cost if choice else None,
        estimated_minutes=round(choice.minutes, 1)
        if choice and choice.minutes is not None
        else None,
        reason=reason,
        decided_by=decided,
        policy_hint=policy_hint,
        warnings=warnings,
        requirements=requirements,
        chosen=choice.alternative() if choice else None,
        alternatives=alternatives,
        settings=applied,
        catalog_version=catalog.version,
    )


def _notes(ranked: list[_Candidate], remotes: list[_Candidate], decided: str | None) -> None:
    """Why each eligible provider after the first was not chosen."""
    if not ranked:
        return
    first = ranked[0]
    for c in ranked[1:]:
        if decided == "user_pick":
            c.note = f"you picked {first.id}"
        elif first.kind == "local":
            c.note = "the local GPU can run it at no cost, and nothing leaves this machine"
        elif first.kind in _ON_PREM_KINDS:
            c.note = (
                "a faster on-prem node is preferred"
                if c.kind in _ON_PREM_KINDS
                else f"the on-prem node {first.id} runs it at no cost"
            )
        elif decided == "cached_graphs" and not c.profile.persistent_cache:
            c.note = f"{first.id} keeps cached ComfyUI graphs on a persistent volume"
        elif decided == "interactive_latency" and (
            c.profile.startup_minutes > first.profile.startup_minutes
        ):
            c.note = (
                f"starts in ~{_num(c.profile.startup_minutes)} min; interactive work prefers "
                f"{first.id} (~{_num(first.profile.startup_minutes)} min)"
            )
        elif c.cost is None:
            c.note = "no known price: priced providers rank first"
        elif first.cost is not None and c.cost > first.cost + _EPS:
            c.note = f"{format_cost(c.cost - first.cost)} more than {first.id}"
        else:
            c.note = f"same cost as {first.id}; ties go to the faster, then by id"


def _local_clause(candidates: list[_Candidate]) -> str | None:
    for c in candidates:
        if c.kind == "local" and c.excluded is not None:
            text = c.excluded
            if c.exclusion_code == "vram":
                return text
            if c.exclusion_code in ("no_gpu", "busy"):
                return text[0].upper() + text[1:]
            return f"The local GPU is {text}" if c.exclusion_code != "not_active" else text
    return None


def _reason(
    choice: _Candidate | None,
    decided: str | None,
    candidates: list[_Candidate],
    remotes: list[_Candidate],
    workload: Workload,
    req: Requirements,
    latency: str,
) -> str:
    label = workload.label
    if choice is None:
        whys = [f"{'local GPU' if c.kind == 'local' else c.id}: {c.excluded}" for c in candidates]
        return f"No provider can run {label} ({_num(req.vram_gb)}GB VRAM): " + _join(whys) + "."
    local_clause = _local_clause(candidates)
    if decided == "local_gpu":
        return (
            f"Local GPU {choice.gpu} has enough free VRAM ({_num(choice.vram_gb or 0)}GB free "
            f">= {_num(req.vram_gb)}GB required for {label}); it costs nothing and nothing "
            "leaves this machine."
        )
    parts = [local_clause] if local_clause else []
    if decided == "user_pick":
        parts.append(f"You picked {choice.label} ({choice.id}); it is eligible")
    elif decided == "cost_free_on_prem":
        parts.append(
            f"{choice.label} ({choice.id}) has {_num(choice.vram_gb or 0)}GB and runs it on-prem "
            f"at no cost in ~{_minutes_text(choice.minutes or 0)}"
        )
    else:
        increment = _increment_text(choice.profile.billing.increment_minutes)
        price = (
            f"{_money(choice.hourly)}/hr billed {increment}"
            if choice.hourly is not None
            else "no known price"
        )
        cost_text = format_cost(choice.cost) or "cost unknown"
        numbers = (
            f"{cost_text} for ~{_minutes_text(choice.minutes or 0)}"
            f" on {choice.gpu} ({_num(choice.vram_gb or 0)}GB, {price})"
        )
        if decided == "interactive_latency":
            cheapest = sorted(remotes, key=_cost_key)[0]
            parts.append(
                f"Interactive latency preferred: {choice.label} starts in "
                f"~{_num(choice.profile.startup_minutes)} min, {numbers} (cheapest: "
                f"{cheapest.id} at {format_cost(cheapest.cost) or 'unknown'}, starting in "
                f"~{_num(cheapest.profile.startup_minutes)} min)"
            )
        elif decided == "cached_graphs":
            parts.append(
                f"Cached ComfyUI graphs preferred: {choice.label} keeps them on a persistent "
                f"volume, {numbers}"
            )
        else:
            others = len(remotes) - 1
            tail = f" of {len(remotes)} eligible remote providers" if others > 0 else ""
            parts.append(f"{choice.label} is the cheapest{tail}: {numbers}")
    return ". ".join(p[0].upper() + p[1:] for p in parts) + "."


#: Exclusions that warn (beyond unhealthy providers, which always do): code -> warning code.
_SKIPPED_WARNINGS: dict[str, WarningCode] = {
    "budget": "over_budget_skipped",
    "quota_lapsed": "quota_lapsed_skipped",
}


def _warnings(
    choice: _Candidate | None,
    candidates: list[_Candidate],
    workload: Workload,
    req: Requirements,
    residency: Sequence[str],
) -> list[AdviceWarning]:
    out: list[AdviceWarning] = []
    if choice is not None and choice.kind in _REMOTE_KINDS:
        legal = choice.profile.legal
        regions = (
            ", ".join(f"{r.name} ({r.id})" for r in choice.pinned)
            if choice.pinned
            else "its regions in " + ", ".join(choice.zones)
        )
        out.append(
            AdviceWarning(
                code="data_leaves_machine",
                provider=choice.id,
                message=f"Your content leaves this machine for {choice.label}, processed in "
                f"{regions}. {legal.egress_notice}",
            )
        )
        if residency:
            outside = sorted(set(choice.zones) - set(residency))
            if outside:
                inside = [r for r in choice.profile.regions if r.zone in residency]
                out.append(
                    AdviceWarning(
                        code="residency",
                        provider=choice.id,
                        message=f"{choice.label} also runs outside {', '.join(residency)} "
                        f"({', '.join(outside)}): run this job only in "
                        + ", ".join(f"{r.name} ({r.id})" for r in inside)
                        + " to respect the residency rule.",
                    )
                )
        if workload.licenses.non_open_source:
            restriction = legal.content_restrictions or legal.egress_notice
            notes = f" ({workload.licenses.notes})" if workload.licenses.notes else ""
            out.append(
                AdviceWarning(
                    code="non_open_source_assets",
                    provider=choice.id,
                    message=f"This job includes assets that are not open source{notes}: review "
                    f"their licences before uploading them to {choice.label}. {restriction}",
                )
            )
        dpia_kinds = [workload.kind]
        if req.graph is not None and any(m.family == "tts" for m in req.graph.models):
            dpia_kinds.append("voice_synthesis")
        for kind in dict.fromkeys(dpia_kinds):
            note = legal.dpia_notes.get(kind)
            if note:
                out.append(AdviceWarning(code="dpia", provider=choice.id, message=note))
        if choice.hourly is None:
            out.append(
                AdviceWarning(
                    code="price_unknown",
                    provider=choice.id,
                    message=f"{choice.label} has no known price for this GPU: set "
                    "meta.price_ceiling_usd (or meta.hourly_usd) to see a cost before running.",
                )
            )
        elif choice.price_source == "price_ceiling":
            out.append(
                AdviceWarning(
                    code="price_unknown",
                    provider=choice.id,
                    message=f"{choice.label}'s cost is an upper bound from your price ceiling "
                    f"({_money(choice.hourly)}/hr); the offer you rent may cost less.",
                )
            )
    if choice is not None and choice.kind != "local":
        if choice.health == "degraded":
            out.append(
                AdviceWarning(
                    code="provider_degraded",
                    provider=choice.id,
                    message=f"{choice.label} was degraded at its last health check; jobs may "
                    "be slow or retried.",
                )
            )
        elif choice.health == "unknown":
            out.append(
                AdviceWarning(
                    code="health_unknown",
                    provider=choice.id,
                    message=f"{choice.label} has not been health-checked yet; run Health "
                    "before sending work.",
                )
            )
    for c in candidates:
        if not c.entry.enabled:
            continue
        code: WarningCode
        if c.health == "unhealthy":
            code, why = "provider_unhealthy_skipped", "unhealthy at its last health check"
        elif c.exclusion_code in _SKIPPED_WARNINGS and c.excluded is not None:
            code, why = _SKIPPED_WARNINGS[c.exclusion_code], c.excluded
        else:
            continue
        out.append(
            AdviceWarning(code=code, provider=c.id, message=f"{c.label} was skipped: {why}.")
        )
    return out


# --------------------------------------------------------------------------------------------
# Reading requests
# --------------------------------------------------------------------------------------------

_MAX_PROBLEMS = 3


def input_error(exc: ValidationError, prefix: str = "") -> InputError:
    """A pydantic error as a user reads it: each problem with its dotted field path."""
    return input_error_from(exc.errors(), prefix)


def input_error_from(errors: Iterable[Mapping[str, Any]], prefix: str = "") -> InputError:
    """:func:`input_error` for pydantic's error dicts (as a web framework passes them on)."""
    problems: list[str] = []
    fields: list[str] = []
    for err in errors:
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        msg = (
            "unknown field (check its spelling)" if err["type"] == "extra_forbidden" else err["msg"]
        )
        if err["type"] == "missing":
            msg = "required field is missing"
        msg = msg.removeprefix("Value error, ")
        if loc not in fields:
            fields.append(loc)
            problems.append(f"{loc or 'request'}: {msg}")
    shown = "; ".join(problems[:_MAX_PROBLEMS])
    more = len(problems) - _MAX_PROBLEMS
    if more > 0:
        shown += f" (and {more} more)"
    return InputError(shown, fields=fields)


def parse_request(data: Any, catalog: Catalog) -> AdviceRequest:
    """An advice request from JSON data; :class:`InputError` naming the field when it is bad."""
    if not isinstance(data, dict):
        raise InputError(
            "an advice request is a JSON object with a 'workload' object "
            f"(got {type(data).__name__})",
            fields=["workload"],
        )
    try:
        request = AdviceRequest.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc) from None
    check_request(request, catalog)
    return request


def check_request(request: AdviceRequest, catalog: Catalog) -> None:
    """What a request's schema cannot say: its providers' templates exist, ids are unique."""
    seen: set[str] = set()
    for i, p in enumerate(request.providers or []):
        where = f"providers.{i}"
        if p.template_id not in catalog.profiles:
            raise InputError(
                f"{where}.template_id: unknown template {p.template_id!r} "
                f"(known: {', '.join(sorted(catalog.profiles))})",
                fields=[f"{where}.template_id"],
            )
        if p.id in seen:
            raise InputError(f"{where}.id: {p.id!r} is given twice", fields=[f"{where}.id"])
        seen.add(p.id)


def requirements_for(workload: Workload, catalog: Catalog) -> Requirements:
    """The estimator's requirements; a malformed workflow graph is an :class:`InputError`."""
    from .estimator import estimate

    try:
        return estimate(workload, catalog)
    except ValueError as exc:
        raise InputError(f"workload.workflow: {exc}", fields=["workload.workflow"]) from None
