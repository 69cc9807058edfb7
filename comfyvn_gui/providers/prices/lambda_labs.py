"""Lambda Cloud's live prices: its instance types, their $/h and where they have capacity now.

What is sent: ``GET {api}/instance-types`` with ``Authorization: Bearer KEY`` (the provider's
``api_key``; ``{api}`` is the ``api`` endpoint, the provider's base URL) — the same one
request the adapter's checks make (providers/lambda_labs.py). The answer (Lambda Cloud API
reference, docs.lambda.ai/api/cloud, ``listInstanceTypes``) is ``{"data": {"<type>":
{"instance_type": {"name", "description", "gpu_description", "price_cents_per_hour",
"specs": {"vcpus", "memory_gib", "storage_gib", "gpus"}}, "regions_with_capacity_available":
[{"name", "description"}]}}}``.

What comes back: one offer per instance type per region with capacity now (``available``
true, the region's residency zone from the profile), and one offer with no region and
``available`` false for a type with no capacity anywhere (its price still counts). The price
is ``price_cents_per_hour / 100`` for the whole machine. Its GPU: the catalog machine of that
name (``profile.machine``) where the catalog lists it, else the catalog GPU the
``gpu_description`` names ("A100 (40 GB SXM4)" -> "A100 40GB"), else Lambda's words; the
count is ``specs.gpus``.

Failures: a refused key is ``invalid_credentials`` naming ``api_key`` (401) or
``permission_denied`` (403); 429 ``rate_limited``; 5xx ``unreachable``; an answer without
``data`` ``error``; no answer in time ``timeout`` — always a
:class:`~comfyvn_gui.providers.base.CheckFailure`.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from comfyvn_gui.core.prices import Offer
from comfyvn_gui.providers.base import CheckFailure

if TYPE_CHECKING:
    from comfyvn_gui.core.catalog import Catalog
    from comfyvn_gui.core.catalog.gpus import GpuSpec
    from comfyvn_gui.providers.base import CheckContext

__all__ = ["SOURCE_NAME", "gpu_of_description", "live_offers"]

SOURCE_NAME = "Lambda instance-types API"
#: "A100 (40 GB SXM4)": the model, then the memory in GB (and the form factor) in brackets.
_DESCRIPTION = re.compile(r"\s*(?P<model>[^(]+?)\s*(?:\((?P<gb>\d+(?:\.\d+)?)\s*GB[^)]*\))?\s*")


async def live_offers(ctx: CheckContext, catalog: Catalog) -> list[Offer]:
    """Lambda's instance types as offers (see the module's text)."""
    try:
        types = await _instance_types(ctx)
    except TimeoutError:
        raise CheckFailure(
            "timeout", f"{ctx.name} did not list its instance types in time; try again later"
        ) from None
    taken_at = datetime.now(UTC)
    offers: list[Offer] = []
    for name, entry in sorted(types.items()):
        offers.extend(_offers_of(ctx, catalog, name, entry, taken_at))
    return offers


async def _instance_types(ctx: CheckContext) -> dict[str, Any]:
    (key,) = ctx.require("api_key")
    api = ctx.endpoint("api")
    if api is None:
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: the API address is not set; set the base URL",
            fields=["base_url"],
        )
    async with ctx.http(auth_fields=["api_key"]) as http:
        resp = await http.get(f"{api}/instance-types", headers={"Authorization": f"Bearer {key}"})
        body = http.json(resp)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise CheckFailure(
            "error",
            f"{ctx.name} answered without the list of instance types; is the base URL "
            "https://cloud.lambdalabs.com/api/v1 (or https://cloud.lambda.ai/api/v1)?",
            fields=["base_url"],
        )
    return data


def _offers_of(
    ctx: CheckContext, catalog: Catalog, name: Any, entry: Any, taken_at: datetime
) -> list[Offer]:
    """The offers of one instance type (none for an entry without a name or a price)."""
    itype = entry.get("instance_type") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name or not isinstance(itype, dict):
        return []
    cents = _number(itype.get("price_cents_per_hour"))
    if cents is None or cents < 0:
        return []
    raw_specs = itype.get("specs")
    specs: dict[str, Any] = raw_specs if isinstance(raw_specs, dict) else {}
    listed = ctx.profile.machine(name)
    description = itype.get("gpu_description")
    if listed is not None:
        gpu, spec = listed.gpu, catalog.gpu(listed.gpu)
    else:
        spec = gpu_of_description(catalog, description)
        gpu = spec.name if spec is not None else str(description or name)
    count = _int(specs.get("gpus")) or (listed.gpu_count if listed is not None else 1)
    detail = {
        k: v
        for k, v in {
            "description": itype.get("description"),
            "gpu_description": description,
            "vcpus": _int(specs.get("vcpus")),
            "memory_gib": _number(specs.get("memory_gib")),
            "storage_gib": _number(specs.get("storage_gib")),
        }.items()
        if v is not None
    }
    common: dict[str, Any] = {
        "provider": ctx.provider.id,
        "template_id": ctx.profile.id,
        "machine": name,
        "gpu": gpu,
        "gpu_count": max(1, count),
        "vram_gb": spec.vram_gb if spec is not None else None,
        "hourly_usd": round(cents / 100, 4),
        "billing_increment_minutes": ctx.profile.billing.increment_minutes,
        "billing_minimum_minutes": ctx.profile.billing.minimum_minutes,
        "source": "live",
        "source_name": SOURCE_NAME,
        "taken_at": taken_at,
        "detail": detail,
    }
    regions = _regions(entry)
    if not regions:
        return [Offer(region=None, zone=None, available=False, **common)]
    zones = {r.id: r.zone for r in ctx.profile.regions}
    return [Offer(region=r, zone=zones.get(r), available=True, **common) for r in regions]


def gpu_of_description(catalog: Catalog, description: Any) -> GpuSpec | None:
    """The catalog GPU a Lambda ``gpu_description`` names: "A100 (40 GB SXM4)" is tried as
    "A100 40GB", then "A100" (taken only when its VRAM agrees with the 40 GB); None if none."""
    if not isinstance(description, str) or not description.strip():
        return None
    found = catalog.gpu(description)
    if found is not None:
        return found
    m = _DESCRIPTION.fullmatch(description)
    if m is None:
        return None
    model, gb = m.group("model"), m.group("gb")
    if gb is not None:
        found = catalog.gpu(f"{model} {float(gb):g}GB")
        if found is not None:
            return found
    found = catalog.gpu(model)
    if found is not None and gb is not None and not math.isclose(found.vram_gb, float(gb)):
        return None  # "A100" is the 40 GB one; an 80 GB card is another GPU
    return found


def _regions(entry: Any) -> list[str]:
    regions = entry.get("regions_with_capacity_available") if isinstance(entry, dict) else None
    if not isinstance(regions, list):
        return []
    names: list[str] = []
    for r in regions:
        name = r.get("name") if isinstance(r, dict) else r
        if isinstance(name, str) and name and name not in names:
            names.append(name)
    return names


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
