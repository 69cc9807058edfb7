"""RunPod's live prices: its GPU types and their on-demand and spot $/h, from its GraphQL API.

What is sent: ``POST {graphql}`` (the ``graphql`` endpoint, :func:`~comfyvn_gui.providers.
runpod.graphql_url`) with ``Authorization: Bearer KEY`` (the provider's ``api_key``) and the
fixed query :data:`GPU_TYPES_QUERY`: ``gpuTypes { id displayName memoryInGb secureCloud
communityCloud securePrice communityPrice secureSpotPrice communitySpotPrice }`` (RunPod's
GraphQL schema, graphql-spec.runpod.io, type ``GpuType``; the same fields runpod-python's
``api/queries/gpus.py`` asks for). Prices are $/h per GPU (a pod of one GPU); a spot price is
the least bid an interruptible pod is rented at.

What comes back: per GPU type, the cloud the provider rents in (its ``cloud_type`` option:
SECURE — the default, as dispatch has it — COMMUNITY, or ALL: both), one on-demand offer
where that cloud offers the type (``secureCloud`` / ``communityCloud``) at a price above zero,
and one spot offer (``spot`` true) where a spot price above zero exists. RunPod prices are
global: no region. ``machine`` is the GPU type id (what ``gpu_type_id`` names); the GPU is the
catalog machine of that id where the catalog lists it, else the catalog GPU its display name
or id names ("RTX 4090", "NVIDIA GeForce RTX 4090"), else RunPod's display name.

Failures are read as the adapter reads them (providers/runpod.py): GraphQL answers a bad key
with HTTP 200 and an ``errors`` array, or 401: ``invalid_credentials`` naming ``api_key``; a
forbidden one ``permission_denied``; 429 ``rate_limited``; 5xx ``unreachable``; a body that
is not a GraphQL answer ``error``; no answer in time ``timeout`` — always a
:class:`~comfyvn_gui.providers.base.CheckFailure`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from comfyvn_gui.core.prices import Offer
from comfyvn_gui.providers.base import CheckFailure
from comfyvn_gui.providers.runpod import _bearer, _graphql_failure, graphql_url

if TYPE_CHECKING:
    from comfyvn_gui.core.catalog import Catalog
    from comfyvn_gui.core.catalog.gpus import GpuSpec
    from comfyvn_gui.providers.base import CheckContext

__all__ = ["GPU_TYPES_QUERY", "SOURCE_NAME", "live_offers"]

SOURCE_NAME = "RunPod GraphQL gpuTypes"
#: Fixed text: nothing is pasted into it.
GPU_TYPES_QUERY = (
    "query GpuTypes { gpuTypes { id displayName memoryInGb secureCloud communityCloud "
    "securePrice communityPrice secureSpotPrice communitySpotPrice } }"
)
#: cloud -> (the flag that it offers the type, the on-demand price, the spot price)
_CLOUD_FIELDS = {
    "SECURE": ("secureCloud", "securePrice", "secureSpotPrice"),
    "COMMUNITY": ("communityCloud", "communityPrice", "communitySpotPrice"),
}


async def live_offers(ctx: CheckContext, catalog: Catalog) -> list[Offer]:
    """RunPod's GPU types as offers (see the module's text)."""
    clouds = _clouds(ctx)
    try:
        types = await _gpu_types(ctx)
    except TimeoutError:
        raise CheckFailure(
            "timeout", f"{ctx.name} did not list its GPU types in time; try again later"
        ) from None
    taken_at = datetime.now(UTC)
    offers: list[Offer] = []
    for item in types:
        offers.extend(_offers_of(ctx, catalog, item, clouds, taken_at))
    return offers


def _clouds(ctx: CheckContext) -> tuple[str, ...]:
    cloud = (ctx.setting("cloud_type") or "SECURE").upper()
    if cloud == "ALL":
        return ("SECURE", "COMMUNITY")
    if cloud not in _CLOUD_FIELDS:
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: cloud type {cloud!r} is not one of SECURE, COMMUNITY, ALL; choose "
            "one in the provider's settings",
            fields=["cloud_type"],
        )
    return (cloud,)


async def _gpu_types(ctx: CheckContext) -> list[Any]:
    (key,) = ctx.require("api_key")
    url = graphql_url(ctx)
    async with ctx.http(auth_fields=["api_key"]) as http:
        # 400 is how GraphQL servers answer a query they reject; its body says why.
        resp = await http.post(
            url,
            headers={**_bearer(key), "Content-Type": "application/json"},
            json={"query": GPU_TYPES_QUERY},
            ok=(200, 400),
        )
        body = http.json(resp)
    if not isinstance(body, dict):
        raise CheckFailure(
            "error",
            f"{ctx.name} answered {resp.status_code} with something that is not a GraphQL "
            "response; is the GraphQL address right?",
            fields=["endpoints"],
        )
    errors = body.get("errors")
    if errors:
        raise _graphql_failure(errors, key)
    data = body.get("data")
    types = data.get("gpuTypes") if isinstance(data, dict) else None
    if resp.status_code != 200 or not isinstance(types, list):
        raise CheckFailure(
            "error",
            f"{ctx.name} answered the GPU types query ({resp.status_code}) without the list "
            "of GPU types; try again later",
        )
    return types


def _offers_of(
    ctx: CheckContext,
    catalog: Catalog,
    item: Any,
    clouds: tuple[str, ...],
    taken_at: datetime,
) -> list[Offer]:
    if not isinstance(item, dict):
        return []
    type_id = item.get("id")
    if not isinstance(type_id, str) or not type_id or type_id.lower() == "unknown":
        return []
    shown = item.get("displayName") if isinstance(item.get("displayName"), str) else None
    listed = ctx.profile.machine(type_id)
    spec: GpuSpec | None
    if listed is not None:
        gpu, count, spec = listed.gpu, listed.gpu_count, catalog.gpu(listed.gpu)
    else:
        spec = catalog.gpu(shown or type_id) or catalog.gpu(type_id)
        gpu, count = (spec.name if spec is not None else shown or type_id), 1
    vram = spec.vram_gb if spec is not None else _number(item.get("memoryInGb"))
    offers: list[Offer] = []
    for cloud in clouds:
        offered, on_demand, spot = _CLOUD_FIELDS[cloud]
        if item.get(offered) is False:
            continue
        for field, is_spot in ((on_demand, False), (spot, True)):
            price = _number(item.get(field))
            if price is None or price <= 0:
                continue
            offers.append(
                Offer(
                    provider=ctx.provider.id,
                    template_id=ctx.profile.id,
                    machine=type_id,
                    gpu=gpu,
                    gpu_count=count,
                    vram_gb=vram if vram is None or vram > 0 else None,
                    region=None,
                    zone=None,
                    hourly_usd=round(price * count, 4),
                    spot=is_spot,
                    billing_increment_minutes=ctx.profile.billing.increment_minutes,
                    billing_minimum_minutes=ctx.profile.billing.minimum_minutes,
                    source="live",
                    source_name=SOURCE_NAME,
                    taken_at=taken_at,
                    detail={
                        "cloud_type": cloud,
                        **({"display_name": shown} if shown else {}),
                    },
                )
            )
    return offers


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
