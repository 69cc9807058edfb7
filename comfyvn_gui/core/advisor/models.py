"""The objects of an advice request and of the advice (docs/architecture.md, "Advice request and
response"); their JSON Schemas are published in docs/schemas/."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from comfyvn_gui.core.catalog import ProviderKind
from comfyvn_gui.core.checks import FailureCode, HealthStatus, LocalSnapshot
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.core.workload import Latency, Requirements, Workload

__all__ = [
    "WARNING_CODES",
    "Advice",
    "AdviceProvider",
    "AdviceRequest",
    "AdviceWarning",
    "AdvisorSettings",
    "Alternative",
    "Preference",
    "WarningCode",
]

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
    "provider_broken_skipped",
    "spot_interruption",
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


# --------------------------------------------------------------------------------------------
# Objects of the request and the response
# --------------------------------------------------------------------------------------------


class AdviceProvider(ProviderEntry):
    """A provider entry as an advice request gives it (taken as given: ``active`` is trusted)."""

    reported_vram_gb: float | None = Field(
        None,
        gt=0,
        le=4096,
        description="LAN / SSH / custom: the VRAM the node's health check reported",
    )
    reported_gpu: str | None = Field(
        None, max_length=200, description="LAN / SSH / custom: the GPU name the node reported"
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
    live_prices: bool = Field(
        False,
        description="With providers: use the live prices kept for those provider ids too "
        "(by default a what-if is priced from its request and the catalog alone, so it stays "
        "reproducible); without providers live prices are always used",
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
    price_source: Literal["catalog", "live", "meta", "config", "price_ceiling", "free"] | None = (
        Field(
            None,
            description="Where hourly_usd comes from: the catalog, a live price fetched from the "
            "provider, the entry's meta.hourly_usd, its config (a custom endpoint's own "
            "hourly_usd), its meta.price_ceiling_usd, or free",
        )
    )
    prices_as_of: str | None = Field(
        None,
        description="When the price was taken: the catalog's date (YYYY-MM-DD) or the live "
        "price's time (ISO, UTC); null for a price the user stated",
    )
    price_note: str | None = Field(
        None,
        description="Why a live price was not used (older than prices.max_age_h, or its "
        "refresh failed), in words",
    )
    machine: str | None = Field(
        None,
        description="The machine the price is for (instance type, VM size, machine type, GPU "
        "type or class, or a marketplace offer's id)",
    )
    offer: Literal["spot"] | None = Field(
        None,
        description="'spot': the provider's interruptible (Spot) offer, a separate alternative "
        "of the same provider, shown where the provider allows Spot (meta.spot) and a fresh "
        "live Spot price is known; null: on demand",
    )
    billing_increment_minutes: float
    billing_minimum_minutes: float
    estimated_minutes: float | None = Field(None, description="GPU time + start-up, minutes")
    billed_minutes: float | None = None
    estimated_cost_usd: float | None = Field(None, description="Not rounded")


#: The description docs/schemas/advice.schema.json publishes for :class:`Advice` (its former
#: docstring, kept word for word so that moving the model changes no published schema; drop it
#: when the schemas are next regenerated on purpose).
class Advice(BaseModel):
    """The advisor's answer (docs/architecture.md, "Advice request and response")."""

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
