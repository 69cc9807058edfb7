"""Azure's live prices: the pay-as-you-go (and Spot) $/h of the VM sizes the app knows, from
the public Azure Retail Prices API (no credentials).

What is sent (learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices):
``GET https://prices.azure.com/api/retail/prices`` with ``api-version`` =
:data:`API_VERSION`, ``meterRegion='primary'`` (primary meters only: one price per meter) and
an OData ``$filter``: ``serviceName eq 'Virtual Machines' and priceType eq 'Consumption'``,
the regions (``armRegionName``: the provider's ``region`` first, then the profile's other
regions — one query covers them all) and the VM sizes (``armSkuName``: the catalog's machines
of the profile, ``profile.machines``, and the provider's ``vm_size``). Filter values are
case-sensitive since 2023-01-01-preview; only names of letters, digits and '_' are sent. The
answer is ``{"BillingCurrency", "CustomerEntityId", "CustomerEntityType", "Items": [...],
"NextPageLink", "Count"}``; each item has ``currencyCode``, ``retailPrice``, ``unitPrice``,
``armRegionName``, ``location``, ``meterName``, ``productName``, ``skuName``,
``serviceName``, ``unitOfMeasure`` ("1 Hour"), ``type`` ("Consumption"),
``isPrimaryMeterRegion``, ``armSkuName`` and ``effectiveStartDate``. While ``NextPageLink`` is
set it is followed (same host only, at most :data:`MAX_PAGES` pages, within the deadline).

What comes back: one offer per VM size, region and kind: Linux meters only (a ``productName``
with "Windows" is dropped), no "Low Priority" meters (the retired Batch/scale-set tier); a
"Spot" meter (in ``skuName`` / ``meterName``) is ``spot`` true. ``hourly_usd`` is the USD
``retailPrice`` per hour; ``zone`` the region's residency zone from the profile. The GPU is
the catalog machine's (``profile.machine``); for a VM size the catalog does not list, the
provider's GPU where that size is its ``vm_size``, the profile's default GPU for the profile's
default size, else the size's name.

Where it is asked: the ``prices`` endpoint when the provider's ``config.endpoints`` (or the
profile's ``[endpoints]``) names one, else :data:`DEFAULT_URL`; tests route the real host name
to a fake through ``ctx.transport``.

Failures: 429 ``rate_limited``; 5xx and a refused connection ``unreachable`` (naming
``endpoints``); another status or a body without ``Items`` ``error``; no answer in time
``timeout`` — always a :class:`~comfyvn_gui.providers.base.CheckFailure`.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from comfyvn_gui.core.prices import Offer
from comfyvn_gui.providers.base import CheckFailure

if TYPE_CHECKING:
    from comfyvn_gui.core.catalog import Catalog
    from comfyvn_gui.providers.base import CheckContext
    from comfyvn_gui.providers.http_client import HttpClient

__all__ = ["API_VERSION", "DEFAULT_URL", "MAX_PAGES", "SOURCE_NAME", "live_offers", "price_filter"]

SOURCE_NAME = "Azure Retail Prices API"
DEFAULT_URL = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"
#: Pages followed at most (the filter asks for a few dozen meters: one or two pages).
MAX_PAGES = 20
_NAME = re.compile(r"[A-Za-z0-9_]{1,80}")
_SPOT = re.compile(r"\bSpot\b")
_LOW_PRIORITY = re.compile(r"\bLow Priority\b", re.IGNORECASE)


async def live_offers(ctx: CheckContext, catalog: Catalog) -> list[Offer]:
    """The Retail Prices API's hourly Linux prices of the known VM sizes (see the module)."""
    regions = _regions(ctx)
    sizes = _sizes(ctx)
    if not regions or not sizes:
        return []
    url = ctx.endpoint("prices") or DEFAULT_URL
    params = {
        "api-version": API_VERSION,
        "meterRegion": "'primary'",
        "$filter": price_filter(regions, sizes),
    }
    try:
        items = await _items(ctx, url, params)
    except TimeoutError:
        raise CheckFailure(
            "timeout", f"{ctx.name}: the Azure Retail Prices API did not answer in time"
        ) from None
    taken_at = datetime.now(UTC)
    wanted_regions = set(regions)
    wanted_sizes = {s.lower(): s for s in sizes}
    best: dict[tuple[str, str, bool], dict[str, Any]] = {}
    for item in items:
        key = _meter(item, wanted_regions, wanted_sizes)
        if key is None:
            continue
        held = best.get(key)
        if held is None or str(item.get("effectiveStartDate") or "") > str(
            held.get("effectiveStartDate") or ""
        ):
            best[key] = item
    return [
        _offer(ctx, catalog, size, region, spot, item, taken_at)
        for (size, region, spot), item in sorted(best.items())
    ]


def price_filter(regions: list[str], sizes: list[str]) -> str:
    """The OData ``$filter`` of one query for ``sizes`` in ``regions`` (checked names)."""
    where = " or ".join(f"armRegionName eq '{r}'" for r in regions)
    which = " or ".join(f"armSkuName eq '{s}'" for s in sizes)
    return (
        f"serviceName eq 'Virtual Machines' and priceType eq 'Consumption' "
        f"and ({where}) and ({which})"
    )


def _regions(ctx: CheckContext) -> list[str]:
    found: list[str] = []
    for r in (ctx.setting("region"), *(r.id for r in ctx.profile.regions)):
        if r and _NAME.fullmatch(r) and r not in found:
            found.append(r)
    return found


def _option(ctx: CheckContext) -> str:
    return ctx.profile.machine_option or "vm_size"


def _sizes(ctx: CheckContext) -> list[str]:
    found: list[str] = []
    for s in (*(m.id for m in ctx.profile.machines), ctx.setting(_option(ctx))):
        if s and _NAME.fullmatch(s) and s not in found:
            found.append(s)
    return found


async def _items(ctx: CheckContext, url: str, params: dict[str, str]) -> list[Any]:
    """Every item of every page (``NextPageLink`` followed on the same host)."""
    origin = urlsplit(url)[:2]
    items: list[Any] = []
    async with ctx.http(address_field="endpoints") as http:
        body = await _page(ctx, http, url, params)
        pages = 1
        while True:
            page = body.get("Items")
            if not isinstance(page, list):
                raise CheckFailure(
                    "error",
                    f"{ctx.name}: the Azure Retail Prices API answered without its Items; "
                    "try again later",
                )
            items.extend(page)
            link = body.get("NextPageLink")
            if not isinstance(link, str) or not link:
                return items
            if urlsplit(link)[:2] != origin:
                raise CheckFailure(
                    "error",
                    f"{ctx.name}: the Azure Retail Prices API sent its next page to another "
                    "address; it was not followed",
                )
            if pages >= MAX_PAGES:
                raise CheckFailure(
                    "error",
                    f"{ctx.name}: the Azure Retail Prices API answered more than {MAX_PAGES} "
                    "pages for a few VM sizes; not read further",
                )
            pages += 1
            body = await _page(ctx, http, link, None)


async def _page(
    ctx: CheckContext, http: HttpClient, url: str, params: dict[str, str] | None
) -> dict[str, Any]:
    resp = await (http.get(url, params=params) if params is not None else http.get(url))
    body = http.json(resp)
    if not isinstance(body, dict):
        raise CheckFailure(
            "error",
            f"{ctx.name}: the Azure Retail Prices API answered with something other than a "
            "price list; try again later",
        )
    return body


def _meter(item: Any, regions: set[str], sizes: dict[str, str]) -> tuple[str, str, bool] | None:
    """(VM size, region, spot) of an hourly Linux pay-as-you-go meter we asked for; else None."""
    if not isinstance(item, dict):
        return None
    size = sizes.get(str(item.get("armSkuName") or "").lower())
    region = item.get("armRegionName")
    if size is None or region not in regions:
        return None
    if item.get("type", "Consumption") != "Consumption":
        return None
    if item.get("isPrimaryMeterRegion") is False:
        return None
    if item.get("currencyCode", "USD") != "USD" or item.get("unitOfMeasure") != "1 Hour":
        return None
    words = f"{item.get('skuName') or ''} {item.get('meterName') or ''}"
    if "windows" in str(item.get("productName") or "").lower() or _LOW_PRIORITY.search(words):
        return None
    price = _number(item.get("retailPrice"))
    if price is None or price <= 0:
        return None
    return size, str(region), bool(_SPOT.search(words))


def _offer(
    ctx: CheckContext,
    catalog: Catalog,
    size: str,
    region: str,
    spot: bool,
    item: dict[str, Any],
    taken_at: datetime,
) -> Offer:
    listed = ctx.profile.machine(size)
    count = 1
    if listed is not None:
        gpu, count = listed.gpu, listed.gpu_count
    elif size == ctx.value(_option(ctx)) and ctx.provider.gpu:
        gpu = ctx.provider.gpu
    elif size == _default_size(ctx) and ctx.profile.default_gpu:
        gpu = ctx.profile.default_gpu
    else:
        gpu = size
    spec = catalog.gpu(gpu)
    zones = {r.id: r.zone for r in ctx.profile.regions}
    return Offer(
        provider=ctx.provider.id,
        template_id=ctx.profile.id,
        machine=size,
        gpu=spec.name if spec is not None else gpu,
        gpu_count=count,
        vram_gb=spec.vram_gb if spec is not None else None,
        region=region,
        zone=zones.get(region),
        hourly_usd=float(item["retailPrice"]),
        spot=spot,
        billing_increment_minutes=ctx.profile.billing.increment_minutes,
        billing_minimum_minutes=ctx.profile.billing.minimum_minutes,
        source="live",
        source_name=SOURCE_NAME,
        taken_at=taken_at,
        detail={
            k: item.get(k)
            for k in ("meterName", "productName", "skuName", "location", "effectiveStartDate")
            if isinstance(item.get(k), str)
        },
    )


def _default_size(ctx: CheckContext) -> str | None:
    try:
        return ctx.profile.field(_option(ctx)).default
    except KeyError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
