"""Lambda Cloud: the API key and the capacity for the configured instance type.

What is sent (docs/providers.md; Lambda Cloud API, OpenAPI 1.10, docs.lambda.ai):

* validate and health — ``GET {api}/instance-types`` with ``Authorization: Bearer KEY``: one
  request a check (the API allows about one a second). The answer is
  ``{"data": {"<type>": {"instance_type": {"name", "description", "price_cents_per_hour",
  "specs"}, "regions_with_capacity_available": [{"name", "description"}]}}}``; a bad key gets
  401 ``{"error": {"code": "global/invalid-api-key", ...}}``.

Which type is looked at: the ``instance_type`` option when set — a type missing from the answer
is ``misconfigured`` naming ``instance_type``. Otherwise the profile's default for that option
(``gpu_1x_a100``, the profile's default GPU), but only while the provider uses the profile's
default GPU; a provider set to another GPU has no type to look at until ``instance_type`` is set,
and an unset default that Lambda no longer offers is reported, not failed. The ``region``
option narrows capacity to one region; without it any region counts.

Health: ``healthy`` with capacity for the type (in the region, if set), ``degraded`` without —
launches would fail until capacity frees up; ``healthy`` when there is no type to look at.
"""

from __future__ import annotations

from typing import Any

from .base import CheckContext, CheckFailure, Outcome
from .registry import register


@register("lambda")
class LambdaAdapter:
    """Validation and health of a Lambda Cloud account."""

    async def validate(self, ctx: CheckContext) -> Outcome:
        detail, capacity = await _check(ctx)
        offered = detail["instance_types_offered"]
        msg = f"{ctx.name} accepted the API key ({offered} instance types offered)"
        return Outcome(f"{msg}; {capacity}", detail=detail)

    async def health(self, ctx: CheckContext) -> Outcome:
        detail, capacity = await _check(ctx)
        if detail.get("capacity_available") is False:
            return Outcome(f"{ctx.name} answers, but {capacity}", detail=detail, health="degraded")
        return Outcome(f"{ctx.name} answers; {capacity}", detail=detail)


def _target_type(ctx: CheckContext) -> tuple[str | None, bool]:
    """(instance type to look at, whether the user set it)."""
    configured = ctx.value("instance_type")
    if configured is not None:
        return configured, True
    gpu = ctx.provider.gpu
    if gpu is not None and gpu.strip().lower() != ctx.profile.default_gpu.lower():
        return None, False
    try:
        default = ctx.profile.field("instance_type").default
    except KeyError:
        default = None
    return default, False


def _region_names(entry: Any) -> list[str]:
    regions = entry.get("regions_with_capacity_available") if isinstance(entry, dict) else None
    if not isinstance(regions, list):
        return []
    names = []
    for r in regions:
        name = r.get("name") if isinstance(r, dict) else r
        if isinstance(name, str) and name:
            names.append(name)
    return names


async def _check(ctx: CheckContext) -> tuple[dict[str, Any], str]:
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
    types = body.get("data") if isinstance(body, dict) else None
    if not isinstance(types, dict):
        raise CheckFailure(
            "error",
            f"{ctx.name} answered without the list of instance types; is the base URL "
            "https://cloud.lambdalabs.com/api/v1 (or https://cloud.lambda.ai/api/v1)?",
            fields=["base_url"],
        )
    region = ctx.value("region")
    wanted, explicit = _target_type(ctx)
    with_capacity = sorted(t for t, e in types.items() if _region_names(e))
    detail: dict[str, Any] = {
        "identity": None,  # Lambda's public API has no call that names the account
        "instance_types_offered": len(types),
        "instance_types_with_capacity": with_capacity,
        "region": region,
    }
    if wanted is None:
        detail["instance_type"] = None
        return detail, "capacity not checked: set Instance type to see whether it can be launched"
    detail["instance_type"] = wanted
    entry = types.get(wanted)
    if entry is None:
        if explicit:
            offered = ", ".join(sorted(types)[:12]) or "none"
            raise CheckFailure(
                "misconfigured",
                f"{ctx.name} does not offer the instance type {wanted!r}; set Instance type "
                f"to one it offers (e.g. {offered})",
                fields=["instance_type"],
                detail=detail,
            )
        detail["instance_type"] = None
        return detail, (
            f"the default instance type {wanted} is not offered any more, so capacity was not "
            "checked; set Instance type"
        )
    spec = entry.get("instance_type") if isinstance(entry, dict) else None
    if isinstance(spec, dict):
        price = spec.get("price_cents_per_hour")
        if isinstance(price, int | float) and not isinstance(price, bool):
            detail["price_usd_per_hour"] = round(price / 100, 4)
        if isinstance(spec.get("description"), str):
            detail["instance_type_description"] = spec["description"]
    regions = _region_names(entry)
    detail["regions_with_capacity"] = regions
    available = region in regions if region else bool(regions)
    detail["capacity_available"] = available
    where = f" in {region}" if region else ""
    if available:
        return detail, f"{wanted} has capacity{where} now"
    elsewhere = f" (capacity elsewhere: {', '.join(regions)})" if region and regions else ""
    return detail, (
        f"{wanted} has no capacity{where} right now{elsewhere}; launches fail until capacity "
        "frees up — pick another region or instance type, or try later"
    )
