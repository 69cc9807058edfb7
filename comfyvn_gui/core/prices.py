"""Prices and offers (issue 21): one row per machine a provider can rent, with where its price
came from and when.

An :class:`Offer` is what a price source says about one machine (an instance type, VM size,
machine type, RunPod GPU type, CoreWeave GPU class or Vast ask) in one region: its GPU, the
$/h of the whole machine, whether it is interruptible (spot), and its source: ``live`` (fetched
from the provider's own API with the stored credentials, or a public price API, at
``taken_at``) or ``catalog`` (the curated table, as of the catalog's ``prices_as_of``).

The price sources (``providers/prices/``) return offers; the service keeps the live ones in the
home with their time (``store/prices.py``); the advisor prices a provider from them in the
order documented in docs/architecture.md ("Prices"); ``comfyvn-gui offers``, ``GET
/api/offers`` and the Offers view list them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from comfyvn_gui.core.catalog import Catalog, ProviderProfile

__all__ = ["OFFER_SOURCES", "LivePrices", "Offer", "OfferSource", "catalog_offers"]

OfferSource = Literal["live", "catalog"]
OFFER_SOURCES: tuple[str, ...] = ("live", "catalog")


class Offer(BaseModel):
    """One machine a provider rents, in one region, at one price."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(
        description="The registered provider's id, or the template's id for "
        "a template row (configured = false)"
    )
    template_id: str = Field(description="The catalog profile")
    configured: bool = Field(True, description="False: a template nobody has registered yet")
    machine: str | None = Field(
        None,
        description="What the provider's API calls the machine: instance type, VM size, "
        "machine type, GPU type id, GPU class, or the marketplace ask's id",
    )
    gpu: str = Field(
        description="The GPU catalog name where it is known, else as the provider names it"
    )
    gpu_count: int = Field(1, ge=1)
    vram_gb: float | None = Field(None, ge=0, description="VRAM per GPU")
    region: str | None = Field(None, description="The provider's region id (None: any/unknown)")
    zone: str | None = Field(None, description="The region's residency zone (us, eu, ...)")
    hourly_usd: float = Field(ge=0, description="$/h of the whole machine")
    spot: bool = Field(False, description="Interruptible (spot, preemptible, bid)")
    billing_increment_minutes: float | None = Field(None, gt=0)
    billing_minimum_minutes: float | None = Field(None, ge=0)
    source: OfferSource
    source_name: str = Field(description="Which API or table, in words")
    taken_at: datetime = Field(description="When the price was taken (UTC)")
    available: bool | None = Field(
        None, description="Capacity now, where the source says (None: not stated)"
    )
    detail: dict[str, Any] = Field(
        default_factory=dict, description="Source-specific facts (a Vast ask's reliability ...)"
    )


class LivePrices(BaseModel):
    """A provider's live prices as the advisor is given them: the offers of its last
    successful refresh, whether they are still ``fresh`` (younger than ``prices.max_age_h``
    when the advice is made: decided by the service, the advisor has no clock), and the last
    refresh's failure in words, if it failed."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    taken_at: datetime | None = Field(None, description="The last successful refresh")
    offers: list[Offer] = Field(default_factory=list)
    fresh: bool = False
    error: str | None = Field(None, description="Why the last refresh failed, if it did")


def catalog_offers(
    catalog: Catalog,
    profile: ProviderProfile,
    provider: str,
    *,
    configured: bool = True,
    regions: Sequence[str] | None = None,
) -> list[Offer]:
    """The catalog's rows for one provider (or template): each listed machine in each region
    it is offered in (``regions``: only those), at the region's price; a profile without
    machines gives its default GPU at its listed price, once per region. None for a template
    with no list price (a marketplace, a custom endpoint) or no GPU of its own (LAN, SSH,
    local)."""
    if profile.reports_own_gpu or profile.pricing.marketplace or profile.pricing.per_provider:
        return []
    taken = datetime.combine(profile.pricing.prices_as_of, time(), tzinfo=UTC)
    zone_of = {r.id: r.zone for r in profile.regions}
    wanted = list(zone_of) if regions is None else [r for r in regions if r in zone_of]
    rows: list[tuple[str | None, str, int, float | None, list[str]]]
    if profile.machines:
        rows = [
            (
                m.id,
                m.gpu,
                m.gpu_count,
                None,
                [r for r in wanted if m.regions is None or r in m.regions],
            )
            for m in profile.machines
        ]
    elif profile.pricing.hourly_usd is not None:
        rows = [(None, profile.default_gpu, 1, profile.pricing.hourly_usd, wanted)]
    else:
        return []
    out: list[Offer] = []
    for machine_id, gpu, count, listed, where in rows:
        machine = profile.machine(machine_id)
        spec = catalog.gpu(gpu)
        spots: list[str | None] = list(where) if where else [None]
        for region in spots:
            price = machine.price(region) if machine is not None else listed
            if price is None:
                continue
            out.append(
                Offer(
                    provider=provider,
                    template_id=profile.id,
                    configured=configured,
                    machine=machine_id,
                    gpu=spec.name if spec is not None else gpu,
                    gpu_count=count,
                    vram_gb=spec.vram_gb if spec is not None else None,
                    region=region,
                    zone=zone_of.get(region) if region is not None else None,
                    hourly_usd=price,
                    billing_increment_minutes=profile.billing.increment_minutes,
                    billing_minimum_minutes=profile.billing.minimum_minutes,
                    source="catalog",
                    source_name=f"the catalog ({profile.name} price table)",
                    taken_at=taken,
                )
            )
    return out
