"""GPU quota: the usage lists of the configured region (and the allowed ones), read as room
for one VM of the configured size."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from comfyvn_gui.providers.base import CheckContext

from .subscription import _arm_error, _endpoint

if TYPE_CHECKING:
    from comfyvn_gui.providers.http_client import HttpClient

USAGES_API_VERSION = "2023-07-01"

#: VM size (without ``Standard_``) -> the usage name of its family's vCPU quota. Azure spells
#: these names with varying case (``standardNCASv3_T4Family`` in usages,
#: ``StandardNCASv3_T4Family`` in the SKU list), so they are compared case-insensitively.
#: Sizes not listed here: set ``meta.quota_ids``; only the regional vCPU total is checked.
FAMILIES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), family)
    for pattern, family in (
        (r"NC\d+as_T4_v3", "standardNCASv3_T4Family"),  # NVIDIA T4 (the seed's NC4as_T4_v3)
        (r"NV\d+ads_A10_v5", "StandardNVADSA10v5Family"),  # NVIDIA A10
        (r"NC\d+ads_A100_v4", "StandardNCADSA100v4Family"),  # NVIDIA A100 80 GB
        (r"NC\d+ads_H100_v5", "StandardNCadsH100v5Family"),  # NVIDIA H100 NVL
        (r"NC\d+s_v3", "standardNCSv3Family"),  # NVIDIA V100
        (r"ND\d+asr_v4", "StandardNDASv4_A100Family"),  # 8x A100 40 GB
        (r"ND\d+amsr_A100_v4", "StandardNDAMSv4_A100Family"),  # 8x A100 80 GB
    )
)
#: The usage name of a region's total vCPUs (all families together).
REGIONAL_VCPUS = "cores"
#: Pages of a usage list followed at most (a region lists about 100 quotas on one page).
MAX_USAGE_PAGES = 5
#: Allowed regions whose quota is read at most.
MAX_REGIONS = 12

_REGION = re.compile(r"[a-z0-9]+")
_VCPUS = re.compile(r"^Standard_[A-Za-z]+?(\d+)")


@dataclass
class _Quota:
    """What the usage lists say, read as a user would."""

    health: str = "healthy"
    code: str | None = None
    problem: str | None = None
    summary: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def vcpus_of(vm_size: str) -> int | None:
    """The vCPUs of a VM size, from its name (Standard_NC4as_T4_v3 -> 4)."""
    m = _VCPUS.match(vm_size)
    return int(m.group(1)) if m else None


def family_of(vm_size: str) -> str | None:
    """The usage name of the vCPU quota of a VM size's family, where it is known."""
    name = vm_size.removeprefix("Standard_")
    for pattern, family in FAMILIES:
        if pattern.fullmatch(name):
            return family
    return None


def _key(name: str) -> str:
    return name.replace(" ", "").lower()


def _is_vcpu_quota(name: str) -> bool:
    key = _key(name)
    return key in ("cores", "lowprioritycores") or key.endswith("family")


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, list | tuple):
        return []
    return [v for v in value if isinstance(v, str) and v]


async def _usages(
    ctx: CheckContext, http: HttpClient, token: str, sub_id: str, region: str
) -> dict[str, dict[str, Any]] | str:
    """The region's usages by lower-cased name, or why they could not be read."""
    url: str | None = (
        f"{_endpoint(ctx, 'management')}/subscriptions/{quote(sub_id, safe='')}/providers/"
        f"Microsoft.Compute/locations/{region}/usages"
    )
    params: dict[str, str] | None = {"api-version": USAGES_API_VERSION}
    out: dict[str, dict[str, Any]] = {}
    pages = 0
    while url and pages < MAX_USAGE_PAGES:
        pages += 1
        resp = await http.get(
            url,
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            ok=(200, 400, 403, 404),
        )
        if resp.status_code != 200:
            code, _ = _arm_error(resp)
            if resp.status_code == 403:
                return f"the app may not read quota ({code or '403'})"
            return f"Azure could not list quota in {region} ({code or resp.status_code})"
        body = http.json(resp)
        items = body.get("value") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return f"the quota list of {region} came back in an unexpected form"
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), dict):
                continue
            name = item["name"].get("value")
            current, limit = _int(item.get("currentValue")), _int(item.get("limit"))
            if not isinstance(name, str) or current is None or limit is None:
                continue
            out[_key(name)] = {
                "id": name,
                "name": item["name"].get("localizedValue") or name,
                "current": current,
                "limit": limit,
            }
        next_link = body.get("nextLink")
        if isinstance(next_link, str) and not _same_origin(next_link, url):
            break  # never send the token to another host
        url, params = (
            (next_link, None) if isinstance(next_link, str) and next_link else (None, None)
        )
    return out


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc) == (pb.scheme, pb.netloc)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


async def _quota(ctx: CheckContext, http: HttpClient, token: str, sub_id: str) -> _Quota:
    region = ctx.value("region") or ctx.profile.field("region").default or ""
    vm_size = ctx.value("vm_size") or ctx.profile.field("vm_size").default or ""
    meta = ctx.provider.meta or {}
    allowed = [r.lower() for r in _string_list(meta.get("allowed_regions"))]
    allowed = [r for r in dict.fromkeys(allowed) if _REGION.fullmatch(r)][:MAX_REGIONS]
    vcpus = vcpus_of(vm_size)
    family = family_of(vm_size)
    quota_ids = _string_list(meta.get("quota_ids"))
    notes: list[str] = []
    if not quota_ids:
        quota_ids = [q for q in (family, REGIONAL_VCPUS) if q]
        if family is None:
            notes.append(
                f"the quota family of {vm_size} is not known to this version: only the "
                "regional vCPU total was checked; list the family's quota name in the "
                "provider's meta.quota_ids"
            )
    quota_ids = list(dict.fromkeys(quota_ids))
    regions = list(dict.fromkeys([region, *allowed]))
    result = _Quota()
    result.detail = {
        "region": region,
        "vm_size": vm_size,
        "vcpus_per_vm": vcpus,
        "quota_ids": quota_ids,
        "allowed_regions": allowed,
        "regions": {},
        "notes": notes,
    }
    if not _REGION.fullmatch(region):
        result.health, result.code = "unhealthy", "misconfigured"
        result.problem = f"the region {region!r} is not an Azure region name (e.g. westeurope)"
        return result
    lists = await asyncio.gather(*(_usages(ctx, http, token, sub_id, r) for r in regions))
    per_region: dict[str, dict[str, Any]] = {}
    for name, usages in zip(regions, lists, strict=True):
        per_region[name] = _room(usages, quota_ids, vcpus or 1)
    result.detail["regions"] = per_region
    with_room = [r for r in regions if per_region[r].get("room") is True]
    result.detail["regions_with_room"] = with_room
    here = per_region[region]
    vm = f"{vm_size} ({vcpus} vCPUs)" if vcpus else vm_size
    if allowed and region not in allowed:
        result.health, result.code = "unhealthy", "misconfigured"
        result.problem = (
            f"the region {region} is not one of the provider's allowed regions "
            f"({', '.join(allowed)}); choose an allowed region"
        )
        return result
    if here.get("room") is None:
        result.health, result.code = (
            "degraded",
            ("permission_denied" if "may not read" in here["error"] else "error"),
        )
        result.problem = f"could not check quota in {region}: {here['error']}"
        return result
    if not here["room"]:
        others = [r for r in with_room if r != region]
        result.health, result.code = "unhealthy", "quota_exhausted"
        result.problem = (
            f"no quota left for one {vm} in {region}: {here['reason']}. Request a quota "
            "increase in Azure portal → Subscriptions → Usage + quotas"
            + (f", or switch the region to {', '.join(others)}, which has room" if others else "")
        )
        return result
    result.summary = f"quota for {here['vms']} more {vm} in {region}"
    return result


def _room(
    usages: dict[str, dict[str, Any]] | str, quota_ids: list[str], vcpus: int
) -> dict[str, Any]:
    """Whether one VM fits in a region's quotas, with the numbers."""
    if isinstance(usages, str):
        return {"room": None, "error": usages}
    rows: list[dict[str, Any]] = []
    missing: list[str] = []
    reasons: list[str] = []
    vms: int | None = None
    for qid in quota_ids:
        u = usages.get(_key(qid))
        if u is None:
            missing.append(qid)
            reasons.append(f"{qid} is not offered there")
            continue
        need = vcpus if _is_vcpu_quota(qid) else 1
        free = max(0, u["limit"] - u["current"])
        rows.append({**u, "free": free, "need": need})
        fits = free // need
        vms = fits if vms is None else min(vms, fits)
        if free < need:
            reasons.append(
                f"{u['name']}: {u['current']} of {u['limit']} in use, one VM needs {need}"
            )
    room = not reasons and bool(rows)
    return {
        "room": room,
        "vms": vms or 0,
        "usages": rows,
        "missing": missing,
        "reason": "; ".join(reasons) if reasons else "",
    }
