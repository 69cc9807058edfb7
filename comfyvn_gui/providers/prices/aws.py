"""AWS EC2's live prices: on-demand from the AWS Price List Query API, spot from EC2's spot
price history, both with the provider's stored access key.

What is sent (boto3/botocore; every client made by :func:`~comfyvn_gui.providers.aws.calls.
_client`: the process's isolated botocore session, the stored key, timeouts and retries cut
from what is left of ``ctx.deadline``, run in the executor through ``ctx.run_blocking``):

* On-demand — ``pricing:GetProducts`` (the Price List Query API, JSON 1.1,
  https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html)
  with ``ServiceCode="AmazonEC2"``, ``FormatVersion="aws_v1"`` and ``TERM_MATCH`` filters
  ``instanceType`` = the machine, ``regionCode`` = the provider's region, ``operatingSystem``
  ``Linux``, ``tenancy`` ``Shared``, ``preInstalledSw`` ``NA``, ``capacitystatus`` ``Used``:
  one query per machine of the profile (``profile.machines``), following ``NextToken``. The
  API is served only in us-east-1, eu-central-1 and ap-south-1 (botocore's endpoint data:
  ``api.pricing.<region>.amazonaws.com``), with the same global price list in each: the one
  nearest the provider's region is asked (:func:`price_list_region`). Each ``PriceList`` item
  is one product as a JSON document (a string on the wire) in the price list file's shape
  (https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/reading-service-price-list-file-for-services.html):
  ``product.attributes`` and ``terms.OnDemand.<sku.offerTermCode>.priceDimensions.<rateCode>``
  with ``unit`` ``"Hrs"`` and ``pricePerUnit.USD`` (a decimal string) — the machine's $/h.
  Where several products match, a Capacity Block (``marketoption`` other than ``OnDemand``) is
  skipped and the cheapest positive hourly USD price is taken. A machine the price list does
  not have in the region gives no offer (it is not offered there).
* Spot — ``ec2:DescribeSpotPriceHistory`` in the provider's region with ``InstanceTypes`` =
  the profile's machines, ``ProductDescriptions=["Linux/UNIX"]`` and ``StartTime`` = now (so
  each type and Availability Zone answers the price in effect now), following ``NextToken``;
  the newest price per type and zone is one offer with ``spot=True``,
  ``detail.availability_zone`` and ``detail.price_since`` (the price's own timestamp). The
  Price List has no spot prices ("this catalog doesn't include Amazon EC2 Spot Instances").

Endpoints: the EC2 call goes where the provider's checks go (``ctx.endpoint("aws")``: the
``aws`` override, else AWS's regional endpoint); the Price List call goes to
``ctx.endpoint("pricing")`` — a ``config.endpoints.pricing`` override (tests point it at
their fake) — else AWS's own. The ``aws`` override does not move the Price List.

Failures are :class:`CheckFailure` in the checks' vocabulary (providers/aws/errors.py): an
unknown key is ``invalid_credentials`` naming ``access_key`` (``secret_key`` for
``SignatureDoesNotMatch``); a key without ``pricing:GetProducts`` (the onboarding notes do not
ask for it) is ``permission_denied`` saying so; a timeout, an unreachable endpoint or the
deadline passing is ``timeout`` / ``unreachable``. The on-demand prices are the source's
answer: when they fail, the source fails. When only the spot prices fail, the on-demand offers
are returned, each saying why spot is missing in ``detail.spot_prices`` (a failure code and
message, never the key).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from comfyvn_gui.core.prices import Offer
from comfyvn_gui.providers.aws.calls import _client
from comfyvn_gui.providers.aws.errors import _call
from comfyvn_gui.providers.aws.session import _Job, _job
from comfyvn_gui.providers.base import CheckContext, CheckFailure

if TYPE_CHECKING:
    from comfyvn_gui.core.catalog import Catalog
    from comfyvn_gui.core.catalog.profiles import MachineType

__all__ = [
    "PRICE_LIST_REGIONS",
    "PRICING_ENDPOINT",
    "SOURCE_ON_DEMAND",
    "SOURCE_SPOT",
    "live_offers",
    "on_demand_filters",
    "price_list_region",
]

#: The regions that serve the Price List Query API (all three the same global list).
PRICE_LIST_REGIONS = ("us-east-1", "eu-central-1", "ap-south-1")
#: The ``config.endpoints`` name that moves the Price List API (a proxy, a test's fake).
PRICING_ENDPOINT = "pricing"
SOURCE_ON_DEMAND = "AWS Price List API (on-demand, Linux)"
SOURCE_SPOT = "EC2 spot price history (Linux/UNIX)"
#: Pages followed per query: a filtered query answers one product (a few where Capacity
#: Blocks match too); more pages than this is an answer gone wrong.
MAX_PAGES = 10
#: Products asked per page (the API's largest page is 100).
PAGE_SIZE = 100


def price_list_region(region: str) -> str:
    """The Price List region nearest ``region`` (each serves the same global list)."""
    if region.startswith(("eu-", "me-", "af-", "il-")):
        return "eu-central-1"
    if region.startswith("ap-"):
        return "ap-south-1"
    return "us-east-1"


def on_demand_filters(instance_type: str, region: str) -> list[dict[str, str]]:
    """The ``GetProducts`` filters of one instance type's Linux on-demand price in a region."""
    wanted = (
        ("instanceType", instance_type),
        ("regionCode", region),
        ("operatingSystem", "Linux"),
        ("tenancy", "Shared"),
        ("preInstalledSw", "NA"),
        ("capacitystatus", "Used"),
    )
    return [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in wanted]


# --------------------------------------------------------------------------- on-demand


def _product(item: Any) -> dict[str, Any] | None:
    """One ``PriceList`` item as a dict (a JSON string on the wire; botocore may parse it)."""
    if isinstance(item, str):
        try:
            item = json.loads(item)
        except ValueError:
            return None
    return item if isinstance(item, dict) else None


def _hourly_usd(product: dict[str, Any]) -> float | None:
    """The lowest positive hourly USD price of a product's OnDemand terms, or None."""
    terms = (product.get("terms") or {}).get("OnDemand") or {}
    prices: list[float] = []
    for term in terms.values() if isinstance(terms, dict) else ():
        dims = (term or {}).get("priceDimensions") or {}
        for dim in dims.values() if isinstance(dims, dict) else ():
            if not isinstance(dim, dict) or str(dim.get("unit", "")).lower() not in ("hrs", "hr"):
                continue
            try:
                usd = float(str((dim.get("pricePerUnit") or {}).get("USD")))
            except ValueError:
                continue
            if math.isfinite(usd) and usd > 0:
                prices.append(usd)
    return min(prices) if prices else None


def _pick(products: list[dict[str, Any]], instance_type: str) -> tuple[float, str | None] | None:
    """(hourly USD, the product's SKU) of the cheapest on-demand product of the type."""
    best: tuple[float, str | None] | None = None
    for product in products:
        info = product.get("product") or {}
        attrs = info.get("attributes") or {}
        if attrs.get("instanceType") not in (None, instance_type):
            continue
        if attrs.get("marketoption") not in (None, "OnDemand"):
            continue  # a Capacity Block, priced by the block
        usd = _hourly_usd(product)
        if usd is not None and (best is None or usd < best[0]):
            best = (usd, info.get("sku"))
    return best


def _on_demand_blocking(
    job: _Job, instance_type: str, region: str
) -> tuple[float, str | None] | None:
    """GetProducts for one type (every page); its price, or None if the list has none."""
    pricing = _client(job, "pricing")
    products: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        kwargs: dict[str, Any] = {
            "ServiceCode": "AmazonEC2",
            "Filters": on_demand_filters(instance_type, region),
            "FormatVersion": "aws_v1",
            "MaxResults": PAGE_SIZE,
        }
        if token:
            kwargs["NextToken"] = token
        answer = _call(job, "pricing:GetProducts", pricing.get_products, **kwargs)
        products += [p for p in map(_product, answer.get("PriceList") or []) if p is not None]
        token = answer.get("NextToken") or None
        if token is None:
            break
    return _pick(products, instance_type)


# --------------------------------------------------------------------------- spot


def _spot_blocking(job: _Job, instance_types: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(type, zone) -> the newest spot price entry, from every page of the history."""
    ec2 = _client(job, "ec2")
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    token: str | None = None
    now = datetime.now(UTC)
    for _ in range(MAX_PAGES):
        kwargs: dict[str, Any] = {
            "InstanceTypes": instance_types,
            "ProductDescriptions": ["Linux/UNIX"],
            "StartTime": now,
        }
        if token:
            kwargs["NextToken"] = token
        answer = _call(
            job, "ec2:DescribeSpotPriceHistory", ec2.describe_spot_price_history, **kwargs
        )
        for entry in answer.get("SpotPriceHistory") or []:
            if not str(entry.get("ProductDescription", "")).startswith("Linux/UNIX"):
                continue
            key = (str(entry.get("InstanceType")), str(entry.get("AvailabilityZone")))
            seen = latest.get(key)
            stamp = entry.get("Timestamp")
            if seen is None or (
                isinstance(stamp, datetime)
                and isinstance(seen.get("Timestamp"), datetime)
                and stamp > seen["Timestamp"]
            ):
                latest[key] = entry
        token = answer.get("NextToken") or None
        if token is None:
            break
    return latest


# --------------------------------------------------------------------------- offers


def _machines(ctx: CheckContext) -> list[MachineType]:
    machines = list(ctx.profile.machines)
    if not machines:
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: the catalog lists no instance types for this template, so there is "
            "nothing to price",
        )
    return machines


def _pricing_job(ctx: CheckContext, job: _Job) -> _Job:
    """The job as the Price List call needs it: its endpoint and its region."""
    endpoint = ctx.endpoint(PRICING_ENDPOINT)
    return dataclasses.replace(
        job,
        endpoint=endpoint,
        endpoint_fields=["endpoints"] if endpoint else [],
        region=price_list_region(job.region),
    )


def _offer(
    ctx: CheckContext,
    catalog: Catalog,
    machine: MachineType,
    region: str,
    usd: float,
    *,
    spot: bool,
    taken_at: datetime,
    detail: dict[str, Any],
) -> Offer:
    spec = catalog.gpu(machine.gpu)
    residency = next((r.zone for r in ctx.profile.regions if r.id == region), None)
    return Offer(
        provider=ctx.provider.id,
        template_id=ctx.profile.id,
        machine=machine.id,
        gpu=machine.gpu,
        gpu_count=machine.gpu_count,
        vram_gb=spec.vram_gb if spec is not None else None,
        region=region,
        zone=residency,
        hourly_usd=usd,
        spot=spot,
        billing_increment_minutes=ctx.profile.billing.increment_minutes,
        billing_minimum_minutes=ctx.profile.billing.minimum_minutes,
        source="live",
        source_name=SOURCE_SPOT if spot else SOURCE_ON_DEMAND,
        taken_at=taken_at,
        detail=detail,
    )


def _timeout(ctx: CheckContext, what: str) -> CheckFailure:
    return CheckFailure(
        "timeout",
        f"{ctx.name}: {what} did not answer within the deadline; check your network or try "
        "again later",
    )


def _refined(ctx: CheckContext, failure: CheckFailure) -> CheckFailure:
    """JSON-protocol APIs say ``InvalidSignatureException`` where the query APIs say
    ``SignatureDoesNotMatch``: the secret does not match the key."""
    if failure.detail.get("aws_error") != "InvalidSignatureException":
        return failure
    return CheckFailure(
        "invalid_credentials",
        f"{ctx.name} knows the access key but the secret access key does not match it "
        "(InvalidSignatureException); paste the secret shown when the key was created, or "
        "create a new key",
        fields=["secret_key"],
        detail=failure.detail,
    )


async def _spot(
    ctx: CheckContext, job: _Job, types: list[str]
) -> dict[tuple[str, str], dict[str, Any]] | CheckFailure:
    try:
        return await ctx.run_blocking(_spot_blocking, job, types)
    except CheckFailure as failure:
        return failure
    except TimeoutError:
        return _timeout(ctx, "EC2's spot price history")


async def live_offers(ctx: CheckContext, catalog: Catalog) -> list[Offer]:
    """The profile's machines priced now in the provider's region: on-demand and spot."""
    machines = _machines(ctx)
    job = _job(ctx)
    region = job.region
    pricing_job = _pricing_job(ctx, job)
    destination = pricing_job.endpoint or f"pricing|{pricing_job.region}"
    types = [m.id for m in machines]
    try:
        on_demand, spot = await asyncio.gather(
            asyncio.gather(
                *(
                    ctx.run_blocking(
                        _on_demand_blocking, pricing_job, t, region, destination=destination
                    )
                    for t in types
                )
            ),
            _spot(ctx, job, types),
        )
    except TimeoutError:
        raise _timeout(ctx, "the AWS Price List API") from None
    except CheckFailure as failure:
        raise _refined(ctx, failure) from None
    taken_at = datetime.now(UTC)
    spot_note: dict[str, Any] = {}
    if isinstance(spot, CheckFailure):
        spot_note = {"spot_prices": {"code": spot.code, "message": spot.message}}
        spot = {}
    offers: list[Offer] = []
    for machine, found in zip(machines, on_demand, strict=True):
        if found is None:
            continue
        usd, sku = found
        detail: dict[str, Any] = {"price_list_sku": sku, **spot_note} if sku else dict(spot_note)
        offers.append(
            _offer(ctx, catalog, machine, region, usd, spot=False, taken_at=taken_at, detail=detail)
        )
    by_id = {m.id: m for m in machines}
    for (instance_type, az), entry in sorted(spot.items()):
        spot_machine = by_id.get(instance_type)
        try:
            usd = float(str(entry.get("SpotPrice")))
        except ValueError:
            continue
        if spot_machine is None or not math.isfinite(usd) or usd < 0:
            continue
        stamp = entry.get("Timestamp")
        detail = {"availability_zone": az}
        if isinstance(stamp, datetime):
            detail["price_since"] = stamp.astimezone(UTC).isoformat()
        offers.append(
            _offer(
                ctx, catalog, spot_machine, region, usd, spot=True, taken_at=taken_at, detail=detail
            )
        )
    return offers
