"""Vast.ai's live offers: the asks dispatch could rent now, from the search dispatch uses.

What is sent: :func:`comfyvn_gui.providers.vast.search_offers` — the very search a launch
makes (``POST {api}/bundles/``, providers/vast.py): the profile's GPU floor
(``vram_floor_gb``) as the least VRAM, the provider's price ceiling
(``meta.price_ceiling_usd``), its ``min_reliability`` option and its pinned machine
(``meta.machine_id``), rentable verified hosts with direct SSH, cheapest first, at most
:data:`MAX_OFFERS`. Every residency zone is searched (a job narrows to its own zones when it
launches).

What comes back: one offer per ask. ``machine`` is the ask's id, ``hourly_usd`` its
``dph_total`` (the whole machine, its storage included), ``region`` the host's
``geolocation`` ("Texas, US") and ``zone`` the residency zone of its country
(providers/vast.py ``zone_of``); ``available`` true (the search lists rentable asks only);
``detail`` carries the host's ``reliability``, its ``machine_id`` and ``num_gpus``. The GPU is
the catalog GPU Vast's ``gpu_name`` names ("RTX 4090"), else Vast's name with the VRAM it
reports.

Failures are the search's: ``invalid_credentials`` / ``permission_denied`` naming ``api_key``,
``rate_limited``, ``unreachable``, ``misconfigured`` (a ``min_reliability`` that is not a
number), ``error``, ``timeout`` — always a :class:`~comfyvn_gui.providers.base.CheckFailure`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from comfyvn_gui.core.prices import Offer
from comfyvn_gui.providers.base import CheckFailure
from comfyvn_gui.providers.vast import (
    _meta_number,
    _min_reliability,
    _pinned_machine,
    search_offers,
)

if TYPE_CHECKING:
    from comfyvn_gui.core.catalog import Catalog
    from comfyvn_gui.providers.base import CheckContext
    from comfyvn_gui.providers.vast import Offer as Ask

__all__ = ["MAX_OFFERS", "SOURCE_NAME", "live_offers"]

SOURCE_NAME = "Vast.ai offer search"
#: The cheapest asks kept from one search.
MAX_OFFERS = 50


async def live_offers(ctx: CheckContext, catalog: Catalog) -> list[Offer]:
    """Vast.ai's cheapest rentable asks as offers (see the module's text)."""
    try:
        asks = await search_offers(
            ctx,
            vram_mb=round(ctx.profile.vram_floor_gb * 1000),
            max_hourly_usd=_meta_number(ctx, "price_ceiling_usd"),
            zones=None,
            min_reliability=_min_reliability(ctx),
            machine_id=_pinned_machine(ctx),
            limit=MAX_OFFERS,
        )
    except TimeoutError:
        raise CheckFailure(
            "timeout", f"{ctx.name} did not answer the offer search in time; try again later"
        ) from None
    taken_at = datetime.now(UTC)
    return [_offer(ctx, catalog, ask, taken_at) for ask in asks[:MAX_OFFERS]]


def _offer(ctx: CheckContext, catalog: Catalog, ask: Ask, taken_at: datetime) -> Offer:
    spec = catalog.gpu(ask.gpu_name) if ask.gpu_name else None
    # (``num_gpus`` where providers/vast.py's Offer carries it; one GPU otherwise)
    count = getattr(ask, "num_gpus", None)
    count = count if isinstance(count, int) and count > 0 else None
    vram = spec.vram_gb if spec is not None else (round(ask.gpu_ram_mb / 1000, 1) or None)
    return Offer(
        provider=ctx.provider.id,
        template_id=ctx.profile.id,
        machine=str(ask.id),
        gpu=spec.name if spec is not None else (ask.gpu_name or "unknown GPU"),
        gpu_count=count or 1,
        vram_gb=vram,
        region=ask.geolocation or None,
        zone=ask.zone,
        hourly_usd=ask.dph_total,
        spot=False,
        billing_increment_minutes=ctx.profile.billing.increment_minutes,
        billing_minimum_minutes=ctx.profile.billing.minimum_minutes,
        source="live",
        source_name=SOURCE_NAME,
        taken_at=taken_at,
        available=True,
        detail={
            "reliability": ask.reliability,
            "machine_id": ask.machine_id,
            "num_gpus": count,
            "gpu_name": ask.gpu_name,
        },
    )
