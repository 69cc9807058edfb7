"""Google Cloud's live prices: Compute Engine's public SKUs from the Cloud Billing Catalog API,
read with the provider's service-account key, priced for each machine type of the profile in
the provider's region.

What is sent:

1. The service-account sign-in of the provider's checks (providers/gcp/auth.py: google-auth
   signs the JWT-bearer grant, POSTed to the ``token_uri`` endpoint) for a ``cloud-platform``
   access token.
2. ``GET {cloudbilling}/v1/services/6F81-5844-456A/skus?currencyCode=USD&pageSize=5000``
   (Compute Engine's service id; Cloud Billing Catalog API, ``services.skus.list``:
   https://cloud.google.com/billing/docs/reference/rest/v1/services.skus/list and
   https://cloud.google.com/billing/v1/how-tos/catalog-api), then ``&pageToken=`` the answer's
   ``nextPageToken`` until there is none (at most :data:`MAX_PAGES` pages; the API has no
   server-side filter, so every Compute Engine SKU is read). ``{cloudbilling}`` is
   ``ctx.endpoint("cloudbilling")`` (a ``config.endpoints`` override, or the profile's) else
   :data:`CLOUD_BILLING`. Google answers with OAuth credentials as with an API key; the
   service account's own project must have the Cloud Billing API enabled.

Each SKU: ``description``, ``category`` (``resourceFamily`` ``Compute``, ``resourceGroup``
``GPU`` for GPUs, ``usageType`` ``OnDemand`` / ``Preemptible`` (Spot) / ``Commit1Yr`` ...),
``serviceRegions`` (region ids) and ``pricingInfo`` (a timeline, the last entry current) with
``pricingExpression.usageUnit`` (``h`` per hour, ``GiBy.h`` per GiB-hour) and
``tieredRates[].unitPrice`` (``Money``: ``units`` (an int64 as a string) + ``nanos``). Only
``OnDemand`` (an offer with ``spot=False``) and ``Preemptible`` (``spot=True``) SKUs of the
provider's region are read:

* GPU SKUs, ``category.resourceGroup == "GPU"``, described "Nvidia [Tesla ]<model> GPU
  running in <place>" or "... GPU attached to Spot Preemptible VMs running in <place>" (model
  ``L4``, ``T4``, ``V100``, ``A100`` (40 GB), ``A100 80GB``, ``H100 80GB`` ...). Reserved,
  commitment and DWS (Dynamic Workload Scheduler) SKUs do not match.
* The machine family's vCPU and memory SKUs, "[Spot Preemptible ]<FAMILY> [Predefined ]Instance
  Core|Ram running in <place>" (``G2``, ``A2``, ``A3``, ``N1``).

A machine's price is its GPUs x the GPU SKU's $/h, plus — where the family's vCPU and memory
SKUs are found and its shape is known (:data:`SHAPES`: vCPUs and GiB of the G2, A2 and A3
machine types, from https://cloud.google.com/compute/docs/accelerator-optimized-machines) —
its vCPUs x the core $/h and its GiB x the memory $/GiB-h. Otherwise the offer is the GPUs'
price alone and says so (``source_name`` ends "(GPU only)", ``detail.priced`` ``"GPU
only"``). Not included either way: the boot disk, and the Local SSD that A2 Ultra and A3 VMs
come with (``detail.excludes``). A machine whose GPU has no SKU in the region gives no offer.

Failures: the key's (``misconfigured`` / ``invalid_credentials`` naming
``service_account_json``, as the checks report them); the catalog refusing the token (401)
``invalid_credentials`` naming it; the Cloud Billing API disabled in the account's project
``misconfigured``; another 403 ``permission_denied``; a timeout or the deadline ``timeout``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from comfyvn_gui.core.prices import Offer
from comfyvn_gui.providers.base import CheckContext, CheckFailure
from comfyvn_gui.providers.gcp.api import _api_disabled, _call, _check_address, _google_error
from comfyvn_gui.providers.gcp.auth import _sign_in
from comfyvn_gui.providers.gcp.settings import KEY_FIELD, _Session, _settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from comfyvn_gui.core.catalog import Catalog
    from comfyvn_gui.core.catalog.profiles import MachineType

__all__ = [
    "CLOUD_BILLING",
    "COMPUTE_ENGINE_SERVICE",
    "ENDPOINT",
    "SHAPES",
    "SKU_GPU_MODELS",
    "live_offers",
    "machine_shape",
]

CLOUD_BILLING = "https://cloudbilling.googleapis.com"
#: The endpoint name a ``config.endpoints`` override (or the profile) may set.
ENDPOINT = "cloudbilling"
#: Compute Engine's service id in the Cloud Billing catalog.
COMPUTE_ENGINE_SERVICE = "6F81-5844-456A"
#: The most SKUs the API returns per page.
PAGE_SIZE = 5000
#: Pages read at most (Compute Engine has a few tens of thousands of SKUs).
MAX_PAGES = 40

#: GPU catalog name -> the model as the GPU SKUs describe it ("Nvidia Tesla A100 GPU ...").
SKU_GPU_MODELS: dict[str, tuple[str, ...]] = {
    "L4": ("L4",),
    "T4": ("T4",),
    "V100": ("V100",),
    "A100 40GB": ("A100", "A100 40GB"),
    "A100 80GB": ("A100 80GB",),
    "H100": ("H100 80GB", "H100"),
}
#: Machine-type prefixes whose GPU has a SKU of its own (A3 Mega's H100s).
_FAMILY_GPU_MODELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("a3-megagpu-", ("H100 80GB Mega",)),
)

#: Machine type -> (vCPUs, memory GiB), by pattern (Google's accelerator-optimized tables).
SHAPES: tuple[tuple[re.Pattern[str], Callable[[int], tuple[int, float]]], ...] = (
    (re.compile(r"g2-standard-(\d+)"), lambda n: (n, 4.0 * n)),
    (re.compile(r"a2-highgpu-(\d+)g"), lambda k: (12 * k, 85.0 * k)),
    (re.compile(r"a2-megagpu-(16)g"), lambda k: (96, 1360.0)),
    (re.compile(r"a2-ultragpu-(\d+)g"), lambda k: (12 * k, 170.0 * k)),
    (re.compile(r"a3-(?:highgpu|megagpu|edgegpu)-(\d+)g"), lambda k: (26 * k, 234.0 * k)),
)
#: Families whose machine types come with Local SSD that is billed on top.
_BUNDLED_SSD = ("a2-ultragpu-", "a3-")

_GPU_SKU = re.compile(
    r"(?:Nvidia|NVIDIA) (?:Tesla )?(?P<model>[A-Z][A-Za-z0-9]*(?: [0-9]+GB)?(?: Mega| Plus)?) GPU "
    r"(?:attached to Spot Preemptible VMs )?running in .+"
)
_MACHINE_SKU = re.compile(
    r"(?:Spot Preemptible )?(?P<family>[A-Z][A-Z0-9]*) (?:Predefined )?Instance "
    r"(?P<kind>Core|Ram) running in .+"
)
_UNITS = {"gpu": "h", "core": "h", "ram": "GiBy.h"}
_USAGE_SPOT = {"OnDemand": False, "Preemptible": True}


@dataclass(frozen=True)
class _Rate:
    usd: float  # per hour (GPU, vCPU) or per GiB-hour (memory)
    sku: str
    description: str


def machine_shape(machine_type: str) -> tuple[int, float] | None:
    """(vCPUs, memory GiB) of a G2 / A2 / A3 machine type; None for one not in :data:`SHAPES`."""
    for pattern, shape in SHAPES:
        found = pattern.fullmatch(machine_type)
        if found:
            return shape(int(found.group(1)))
    return None


# --------------------------------------------------------------------------- the catalog


def _money(price: Any) -> float | None:
    if not isinstance(price, dict) or price.get("currencyCode", "USD") != "USD":
        return None
    try:
        value = int(price.get("units") or 0) + int(price.get("nanos") or 0) / 1e9
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _unit_price(sku: dict[str, Any], unit: str) -> float | None:
    """The current price per ``unit`` of a SKU (its first tier), or None."""
    timeline = sku.get("pricingInfo") or []
    if not isinstance(timeline, list) or not timeline or not isinstance(timeline[-1], dict):
        return None
    expression = timeline[-1].get("pricingExpression") or {}
    if expression.get("usageUnit") != unit:
        return None
    tiers = [t for t in expression.get("tieredRates") or [] if isinstance(t, dict)]
    if not tiers:
        return None
    first = min(tiers, key=_start)
    return _money(first.get("unitPrice"))


def _start(tier: dict[str, Any]) -> float:
    try:
        return float(tier.get("startUsageAmount") or 0)
    except (TypeError, ValueError):
        return math.inf


def _key(sku: dict[str, Any]) -> tuple[str, str, bool] | None:
    """("gpu", model, spot) or ("core"|"ram", family, spot) of a SKU this source reads."""
    category = sku.get("category") or {}
    spot = _USAGE_SPOT.get(str(category.get("usageType")))
    if spot is None or category.get("resourceFamily", "Compute") != "Compute":
        return None
    description = str(sku.get("description") or "")
    if category.get("resourceGroup") == "GPU":
        found = _GPU_SKU.fullmatch(description)
        return ("gpu", found["model"], spot) if found else None
    found = _MACHINE_SKU.fullmatch(description)
    if found is None:
        return None
    return ("core" if found["kind"] == "Core" else "ram", found["family"], spot)


def _rates(skus: list[dict[str, Any]], region: str) -> dict[tuple[str, str, bool], _Rate]:
    """The region's GPU, vCPU and memory rates by (kind, model or family, spot); where two
    SKUs price the same thing there, the lower."""
    rates: dict[tuple[str, str, bool], _Rate] = {}
    for sku in skus:
        if not isinstance(sku, dict) or region not in (sku.get("serviceRegions") or []):
            continue
        key = _key(sku)
        if key is None:
            continue
        usd = _unit_price(sku, _UNITS[key[0]])
        if usd is None:
            continue
        seen = rates.get(key)
        if seen is None or usd < seen.usd:
            rates[key] = _Rate(usd, str(sku.get("skuId") or ""), str(sku.get("description")))
    return rates


def _billing_failure(session: _Session, status: int, err: Any) -> CheckFailure:
    detail = {"http_status": status, "identity": session.email}
    if status == 401:
        return CheckFailure(
            "invalid_credentials",
            "Google Cloud's billing catalog did not accept the service account's token (401); "
            "check the key, or create a new JSON key for the account",
            fields=[KEY_FIELD],
            detail=detail,
        )
    if status == 403 and _api_disabled(err):
        project = session.detail.get("key_project") or session.settings.project
        return CheckFailure(
            "misconfigured",
            "Google Cloud: the Cloud Billing API is not enabled in project "
            f"{project}, the service account's own project; enable it "
            f"(https://console.cloud.google.com/apis/library/cloudbilling.googleapis.com"
            f"?project={quote(str(project), safe='')}) to read live prices",
            detail={**detail, "api_disabled": "cloudbilling.googleapis.com"},
        )
    if status == 403:
        return CheckFailure(
            "permission_denied",
            f"Google Cloud refused {session.email} the billing catalog (403)",
            fields=[KEY_FIELD],
            detail=detail,
        )
    return CheckFailure(
        "misconfigured",
        f"Google Cloud's billing catalog answered {status} to the SKU list: the cloudbilling "
        "endpoint address is wrong",
        fields=["endpoints"],
        detail=detail,
    )


async def _skus(session: _Session, base: str) -> list[dict[str, Any]]:
    """Every Compute Engine SKU, page by page."""
    url = f"{base}/v1/services/{COMPUTE_ENGINE_SERVICE}/skus"
    skus: list[dict[str, Any]] = []
    token = ""
    for _ in range(MAX_PAGES):
        params = {"currencyCode": "USD", "pageSize": str(PAGE_SIZE)}
        if token:
            params["pageToken"] = token
        resp = await _call(
            session, "GET", url, ENDPOINT, ok=(200, 400, 401, 403, 404), params=params
        )
        if resp.status_code != 200:
            raise _billing_failure(session, resp.status_code, _google_error(resp))
        body = session.http.json(resp)
        page = body.get("skus") if isinstance(body, dict) else None
        if not isinstance(page, list):
            raise CheckFailure(
                "error",
                "Google Cloud's billing catalog answered without a SKU list; try again later",
            )
        skus += [s for s in page if isinstance(s, dict)]
        token = str(body.get("nextPageToken") or "")
        if not token:
            return skus
    raise CheckFailure(
        "error",
        f"Google Cloud's billing catalog kept paging past {MAX_PAGES} pages; try again later",
    )


# --------------------------------------------------------------------------- offers


def _gpu_models(machine: MachineType) -> tuple[str, ...]:
    for prefix, models in _FAMILY_GPU_MODELS:
        if machine.id.startswith(prefix):
            return models
    return SKU_GPU_MODELS.get(machine.gpu, (machine.gpu,))


def _price(
    machine: MachineType, rates: dict[tuple[str, str, bool], _Rate], spot: bool
) -> tuple[float, str, dict[str, Any]] | None:
    """(the machine's $/h, what was priced, detail), or None when its GPU has no SKU here."""
    gpu = next(
        (r for m in _gpu_models(machine) if (r := rates.get(("gpu", m, spot))) is not None), None
    )
    if gpu is None:
        return None
    total = machine.gpu_count * gpu.usd
    detail: dict[str, Any] = {
        "gpu_sku": gpu.sku,
        "gpu_sku_description": gpu.description,
        "gpu_hourly_usd": gpu.usd,
    }
    family = machine.id.split("-", 1)[0].upper()
    core = rates.get(("core", family, spot))
    ram = rates.get(("ram", family, spot))
    shape = machine_shape(machine.id)
    if core is None or ram is None or shape is None:
        why = (
            f"no vCPU/memory shape known for {machine.id}"
            if shape is None
            else f"no {family} vCPU and memory SKUs in the region"
        )
        detail.update(priced="GPU only", not_priced=why)
        return total, "GPU only", detail
    vcpus, memory_gib = shape
    total += vcpus * core.usd + memory_gib * ram.usd
    detail.update(
        priced="GPU, vCPU and memory",
        vcpus=vcpus,
        memory_gib=memory_gib,
        core_sku=core.sku,
        ram_sku=ram.sku,
    )
    if machine.id.startswith(_BUNDLED_SSD):
        detail["excludes"] = "the Local SSD the machine type comes with"
    return total, "GPU, vCPU and memory", detail


async def live_offers(ctx: CheckContext, catalog: Catalog) -> list[Offer]:
    """The profile's machine types priced now in the provider's region, on demand and Spot."""
    machines = list(ctx.profile.machines)
    if not machines:
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: the catalog lists no machine types for this template, so there is "
            "nothing to price",
        )
    s = _settings(ctx)
    base = ctx.endpoint(ENDPOINT) or CLOUD_BILLING
    _check_address(base, ENDPOINT)
    try:
        async with ctx.http(auth_fields=[KEY_FIELD]) as http:
            session = await _sign_in(ctx, http, s)
            skus = await _skus(session, base)
    except TimeoutError:
        raise CheckFailure(
            "timeout",
            f"{ctx.name}: the billing catalog did not answer within the deadline; check your "
            "network or try again later",
        ) from None
    taken_at = datetime.now(UTC)
    rates = _rates(skus, s.region)
    residency = next((r.zone for r in ctx.profile.regions if r.id == s.region), None)
    offers: list[Offer] = []
    for machine in machines:
        if machine.regions is not None and s.region not in machine.regions:
            continue
        spec = catalog.gpu(machine.gpu)
        for spot in (False, True):
            priced = _price(machine, rates, spot)
            if priced is None:
                continue
            usd, what, detail = priced
            if s.zone:
                detail["machine_zone"] = s.zone
            offers.append(
                Offer(
                    provider=ctx.provider.id,
                    template_id=ctx.profile.id,
                    machine=machine.id,
                    gpu=machine.gpu,
                    gpu_count=machine.gpu_count,
                    vram_gb=spec.vram_gb if spec is not None else None,
                    region=s.region,
                    zone=residency,
                    hourly_usd=round(usd, 6),
                    spot=spot,
                    billing_increment_minutes=ctx.profile.billing.increment_minutes,
                    billing_minimum_minutes=ctx.profile.billing.minimum_minutes,
                    source="live",
                    source_name=f"Google Cloud Billing Catalog ({what})",
                    taken_at=taken_at,
                    detail=detail,
                )
            )
    return offers
