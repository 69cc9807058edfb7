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

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["OFFER_SOURCES", "Offer", "OfferSource"]

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
