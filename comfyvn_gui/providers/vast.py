"""Vast.ai: the account behind the API key, its credit, its instances, and the machines
dispatch rents there (one instance per job).

What is sent (docs/providers.md; docs.vast.ai API reference, and what the official client
``vastai`` sends):

* validate — ``GET {api}/users/current`` with ``Authorization: Bearer KEY``. No trailing slash,
  as the official client sends it (the docs add one; the API accepts both), and never the
  legacy ``?api_key=`` query parameter. The answer holds ``id``, ``email``, ``username``,
  ``credit`` and ``balance`` — and also the account's ``api_key`` itself, so only the named
  fields below are ever copied into a result, never the body. Then the offer search below
  with the profile's GPU floor (``vram_floor_gb``) and the provider's price ceiling: the
  offers found are counted in the message; none is a warning, not a failure (the key works;
  nothing matches today). A search refused with 401/403 is ``permission_denied`` (a scoped
  key without the ``misc`` permission).
* health — the same call plus ``GET {api}/instances/?owner=me`` (``{"instances": [...]}``),
  counting the instances whose ``actual_status`` is ``running``.
* offer search (:func:`search_offers`) — ``POST {api}/bundles/`` with a filter object:
  ``gpu_ram`` gte the VRAM in MB (GB x 1000, as the official client converts: a "16 GB" card
  reports 16,376 MB), ``rentable`` and ``verified`` eq true, ``direct_port_count`` gte 1
  (direct SSH), ``dph_total`` lte the price ceiling, ``reliability`` gte the ``min_reliability``
  option, ``machine_id`` eq a pinned machine (``meta.machine_id``), ``disk_space`` gte the
  disk, ``geolocation`` in the country codes of the job's zones; ``"order": [["dph_total",
  "asc"]]`` (the cheapest first, not the client's default ``score``), ``"type": "on-demand"``,
  ``allocated_storage`` = the disk (so ``dph_total`` includes it) and ``limit``. The answer is
  ``{"offers": [...]}``; each offer is checked again here (price, VRAM, machine) and its
  ``geolocation`` ("Texas, US") mapped from its country code to a residency zone: an offer
  outside the job's zones, or of an unknown location, is never taken.
* launch — the cheapest offer: ``PUT {api}/asks/{offer_id}/`` with ``{"client_id": "me",
  "image", "disk", "label": <the resource name>, "onstart": <the start-up script>, "runtype":
  "ssh_direc ssh_proxy", "cancel_unavail": true}`` -> ``{"success": true, "new_contract":
  ID}``. The runtype is what ``vastai create instance --ssh --direct`` sends: SSH into the
  container on a direct port, Vast's SSH proxy as a fallback (the image's entrypoint is not
  run; the start-up script starts sshd and ComfyUI). ``cancel_unavail`` refuses an offer that
  cannot start now instead of leaving a stopped instance that bills its disk. The answer also
  carries the instance's own API key: it is never read. An offer rented by someone else
  meanwhile (404/410 ``no_such_ask``) moves on to the next one (three at most).
* find, resources — ``GET {api}/instances/?owner=me``, matched by ``label``.
* describe — ``GET {api}/instances/{id}/?owner=me`` -> ``{"instances": {...}}``:
  ``actual_status``, the SSH address (``public_ipaddr`` + ``ports["22/tcp"][0]["HostPort"]``
  for direct SSH, else ``ssh_host``/``ssh_port``), ``dph_total`` (the live price).
* release, stop — ``DELETE {api}/instances/{id}/`` (destroy: a stopped instance still bills
  its disk). A 404 answered in Vast's JSON error shape, at the API the machine was rented
  from, is "already gone".

The dead-man switch (``core.machines``, deadman ``vast``): Vast.ai puts a per-instance key,
``CONTAINER_API_KEY``, and ``CONTAINER_ID`` in the container's environment (PID 1's); that key
may start, stop or destroy its own instance only (docs.vast.ai, "API Hello World" and "Docker
Execution Environment"). At the hard deadline the start-up script destroys the instance with
it — compute and disk billing end without the app. No account key is placed on the machine.

The available funds are ``credit`` (the prepaid credit the console shows), else ``balance``.
Zero or less: validation still passes (the key works) but says so, and health is ``degraded``
with ``quota_exhausted`` — nothing can be rented until credit is added.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from comfyvn_gui.core import wording
from comfyvn_gui.core.machines import parse_resource_name

from .base import CheckContext, CheckFailure, Outcome
from .http_client import HttpClient
from .machine import LaunchSpec, Machine, MachineStatus, Resource
from .registry import register

if TYPE_CHECKING:
    import httpx

__all__ = ["Offer", "VastAdapter", "search_offers", "zone_of"]

#: Where ``running`` sends the user to see an instance in the console.
CONSOLE_URL = "https://cloud.vast.ai/instances/"
#: The launch mode ``vastai create instance --ssh --direct`` sends.
RUNTYPE = "ssh_direc ssh_proxy"
#: The longest start-up script Vast.ai takes (its API reference: ``onstart`` <= 4048 chars).
ONSTART_MAX = 4048
#: Offers asked for at most by one search.
SEARCH_LIMIT = 64
#: Offers tried by one launch when the one before was rented by someone else meanwhile.
LAUNCH_TRIES = 3

# Country codes (what Vast's ``geolocation`` ends with) by residency zone. Only clear cases:
# a country missing here is outside every zone list (an offer there is never taken when the
# job has zones). ``eu`` is the 27 member states; the UK is ``uk``.
_EU = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
_COUNTRIES: dict[str, tuple[str, ...]] = {
    "us": ("US",),
    "ca": ("CA",),
    "uk": ("GB", "UK"),
    "eu": tuple(_EU),
    "asia": tuple("BD CN HK ID IN JP KH KR LK MY PH SG TH TW VN".split()),
    "oceania": ("AU", "NZ"),
    "sa": tuple("AR BO BR CL CO EC PE PY UY VE".split()),
    "me": tuple("AE BH IL JO KW OM QA SA".split()),
    "af": tuple("EG GH KE MA NG TN ZA".split()),
}
_ZONE_OF_COUNTRY = {code: zone for zone, codes in _COUNTRIES.items() for code in codes}
_COUNTRY = re.compile(r"[A-Z]{2}")

# Vast's ``actual_status`` (docs.vast.ai "show instances"): null while provisioning, then
# loading, running; exited (the container ended), stopped/frozen (held, no longer usable);
# offline/unknown (host gone or silent) never reach running again (its "poll trap" warning).
_STATUS: dict[str, MachineStatus] = {
    "": "booting",
    "created": "booting",
    "scheduling": "booting",
    "loading": "booting",
    "rebooting": "booting",
    "recycling": "booting",
    "running": "running",
    "exited": "stopped",
    "stopped": "stopped",
    "frozen": "stopped",
    "offline": "failed",
    "unknown": "failed",
    "error": "failed",
}


def zone_of(geolocation: str | None) -> str | None:
    """The residency zone of a Vast ``geolocation`` ("Texas, US" -> ``us``; "Germany, DE" ->
    ``eu``); None for a location it cannot place."""
    code = (geolocation or "").rsplit(",", 1)[-1].strip().upper()
    return _ZONE_OF_COUNTRY.get(code) if _COUNTRY.fullmatch(code) else None


@dataclass(frozen=True)
class Offer:
    """One machine offer of the marketplace, as the search answered it."""

    id: int
    machine_id: int | None
    gpu_name: str
    gpu_ram_mb: float
    dph_total: float  # $/hr, the disk asked for included
    reliability: float | None
    geolocation: str
    zone: str | None  # the residency zone of ``geolocation`` (None: unknown)
    num_gpus: int | None = field(default=None, compare=False)  # GPUs of the machine


@register("vast")
class VastAdapter:
    """Validation and health of a Vast.ai account, and its machines for dispatch."""

    deadman = "vast"
    mode = "container"
    default_ssh_user = "root"
    deadman_words = (
        "At the hard deadline the instance destroys itself with the per-instance key Vast.ai "
        "gives it (CONTAINER_API_KEY, allowed to start, stop or destroy that one instance), "
        "which ends its compute and disk billing even if this app is gone."
    )

    async def validate(self, ctx: CheckContext) -> Outcome:
        (key,) = ctx.require("api_key")
        async with ctx.http(auth_fields=["api_key"]) as http:
            detail = await _current_user(ctx, http, key)
            offers_text = await _offers_today(ctx, http, key, detail)
        funds = detail.get("credit")
        msg = f"Vast.ai accepted the API key (account {detail['identity']}"
        if funds is not None:
            msg += f", credit {wording.usd(funds)}"
        msg += f"); {offers_text}"
        if funds is not None and funds <= 0:
            msg += "; add credit in the Vast.ai console (Billing) before renting machines"
        return Outcome(msg, detail=detail)

    async def health(self, ctx: CheckContext) -> Outcome:
        (key,) = ctx.require("api_key")
        async with ctx.http(auth_fields=["api_key"]) as http:
            detail = await _current_user(ctx, http, key)
            total, running = await _instances(ctx, http, key)
        detail["instances"] = total
        detail["instances_running"] = running
        funds = detail.get("credit")
        running_text = f"{running} of {total} instance{'s' if total != 1 else ''} running"
        if funds is not None and funds <= 0:
            return Outcome(
                f"Vast.ai: no credit left on account {detail['identity']} ({wording.usd(funds)}); "
                f"add credit in the Vast.ai console (Billing) before renting machines "
                f"({running_text})",
                detail=detail,
                health="degraded",
                code="quota_exhausted",
            )
        credit = f", credit {wording.usd(funds)}" if funds is not None else ""
        return Outcome(
            f"Vast.ai answers for account {detail['identity']}{credit}; {running_text}",
            detail=detail,
        )

    # -- dispatch (MachineAdapter) ------------------------------------------------------------

    async def launch(self, ctx: CheckContext, spec: LaunchSpec) -> Machine:
        (key,) = ctx.require("api_key")
        api = _api(ctx)
        if len(spec.startup_script) > ONSTART_MAX:
            raise CheckFailure(
                "misconfigured",
                f"Vast.ai: the start-up script is {len(spec.startup_script)} characters and "
                f"Vast.ai takes at most {ONSTART_MAX}; shorten the ComfyUI command",
                fields=["comfyui_command"],
            )
        ceiling = spec.max_hourly_usd
        if ceiling is None:
            ceiling = _meta_number(ctx, "price_ceiling_usd")
        async with ctx.http(auth_fields=["api_key"]) as http:
            offers = await _search(
                ctx,
                http,
                key,
                vram_mb=spec.vram_mb,
                max_hourly_usd=ceiling,
                zones=spec.zones,
                min_reliability=_min_reliability(ctx),
                machine_id=_pinned_machine(ctx),
                disk_gb=spec.disk_gb,
                limit=SEARCH_LIMIT,
            )
            if not offers:
                raise CheckFailure(
                    "quota_exhausted",
                    f"Vast.ai: {_no_offer(ctx, spec.vram_mb, ceiling, spec.zones)} today; "
                    "raise the price ceiling, allow more zones, or try again later",
                    detail={"vram_mb": spec.vram_mb, "max_hourly_usd": ceiling},
                )
            for offer in offers[:LAUNCH_TRIES]:
                contract = await _rent(ctx, http, key, api, offer, spec)
                if contract is not None:
                    return Machine(
                        id=str(contract),
                        name=spec.name,
                        status="booting",
                        hourly_usd=offer.dph_total,
                        created_at=datetime.now(UTC),
                        refs={
                            "instance_id": contract,
                            "offer_id": offer.id,
                            "machine_id": offer.machine_id,
                            "api": api,
                            "dph_total": offer.dph_total,
                            "geolocation": offer.geolocation,
                            "gpu_name": offer.gpu_name,
                        },
                    )
        raise CheckFailure(
            "quota_exhausted",
            f"Vast.ai: every offer tried ({min(len(offers), LAUNCH_TRIES)}, the cheapest) was "
            "rented by someone else first; try again",
        )

    async def find(self, ctx: CheckContext, name: str) -> Machine | None:
        (key,) = ctx.require("api_key")
        api = _api(ctx)
        async with ctx.http(auth_fields=["api_key"]) as http:
            items = await _instance_list(ctx, http, key)
        mine = [i for i in items if i.get("label") == name and _int(i.get("id")) is not None]
        if not mine:
            return None
        newest = max(mine, key=lambda i: _int(i.get("id")) or 0)
        return _machine(newest, name, _refs_of(newest, api))

    async def describe(self, ctx: CheckContext, machine: Machine) -> Machine:
        (key,) = ctx.require("api_key")
        api = _machine_api(ctx, machine)
        async with ctx.http(auth_fields=["api_key"]) as http:
            resp = await http.get(
                f"{api}/instances/{_instance_id(machine)}/",
                params={"owner": "me"},
                headers=_bearer(key),
                ok=(200, 404),
            )
            body = _body(resp)
            if resp.status_code == 404:
                if not _vast_error(body):
                    raise http.failure_for(resp)
                return _released(machine, "not found")
        if not isinstance(body, dict) or "instances" not in body:
            raise CheckFailure(
                "error", "Vast.ai's answer about an instance came back in an unexpected form"
            )
        inst = body["instances"]
        if inst is None or inst == {}:
            return _released(machine, "not found")
        if not isinstance(inst, dict):
            raise CheckFailure(
                "error", "Vast.ai's answer about an instance came back in an unexpected form"
            )
        refs = dict(machine.refs)
        if refs.get("machine_id") is None and _int(inst.get("machine_id")) is not None:
            refs["machine_id"] = _int(inst.get("machine_id"))
        described = _machine(inst, machine.name, refs)
        described.created_at = described.created_at or machine.created_at
        return described

    async def release(self, ctx: CheckContext, machine: Machine) -> None:
        (key,) = ctx.require("api_key")
        await _destroy(ctx, key, _machine_api(ctx, machine), _instance_id(machine))

    async def resources(self, ctx: CheckContext, home_id: str) -> list[Resource]:
        (key,) = ctx.require("api_key")
        async with ctx.http(auth_fields=["api_key"]) as http:
            items = await _instance_list(ctx, http, key)
        found = []
        for inst in items:
            parsed = parse_resource_name(inst.get("label"))
            instance_id = _int(inst.get("id"))
            if parsed is None or parsed[0] != home_id or instance_id is None:
                continue
            found.append(
                Resource(
                    kind="machine",
                    id=str(instance_id),
                    name=str(inst.get("label")),
                    job_id=parsed[1],
                    status=str(inst.get("actual_status") or ""),
                    created_at=_when(inst.get("start_date")),
                    hourly_usd=_number(inst.get("dph_total")),
                    console_url=CONSOLE_URL,
                )
            )
        return found

    async def stop(self, ctx: CheckContext, resource: Resource) -> None:
        (key,) = ctx.require("api_key")
        instance_id = _int(resource.id)
        if instance_id is None:
            raise CheckFailure("misconfigured", f"Vast.ai: {resource.id!r} is no instance id")
        await _destroy(ctx, key, _api(ctx), instance_id)


async def search_offers(
    ctx: CheckContext,
    *,
    vram_mb: int,
    max_hourly_usd: float | None,
    zones: tuple[str, ...] | None,
    min_reliability: float | None,
    machine_id: int | None = None,
    disk_gb: float | None = None,
    limit: int = SEARCH_LIMIT,
) -> list[Offer]:
    """The on-demand offers a job could rent now, cheapest first (see the module's text).

    ``zones`` None: anywhere; otherwise only offers whose location maps to one of them.
    """
    (key,) = ctx.require("api_key")
    async with ctx.http(auth_fields=["api_key"]) as http:
        return await _search(
            ctx,
            http,
            key,
            vram_mb=vram_mb,
            max_hourly_usd=max_hourly_usd,
            zones=zones,
            min_reliability=min_reliability,
            machine_id=machine_id,
            disk_gb=disk_gb,
            limit=limit,
        )


def _api(ctx: CheckContext) -> str:
    url = ctx.endpoint("api")
    if url is None:
        raise CheckFailure(
            "misconfigured",
            "Vast.ai: the API address is not set; set the base URL",
            fields=["base_url"],
        )
    return url


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _when(epoch: Any) -> datetime | None:
    seconds = _number(epoch)
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def _body(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _vast_error(body: Any) -> bool:
    """Vast's own error answer (``{"success": false, "error", "msg"}``), not a proxy's page."""
    return isinstance(body, dict) and body.get("success") is False


def _provider_text(body: Any) -> str:
    """Vast's error words for a message (its ``msg`` / ``error``), short and on one line."""
    if not isinstance(body, dict):
        return ""
    text = body.get("msg") or body.get("error") or ""
    text = " ".join(str(text).split())
    return text if len(text) <= 160 else text[:160] + "…"


def _meta_number(ctx: CheckContext, name: str) -> float | None:
    value = _number((ctx.provider.meta or {}).get(name))
    return value if value is not None and value >= 0 else None


def _pinned_machine(ctx: CheckContext) -> int | None:
    return _int((ctx.provider.meta or {}).get("machine_id"))


def _min_reliability(ctx: CheckContext) -> float | None:
    text = ctx.setting("min_reliability")
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise CheckFailure(
            "misconfigured",
            f"Vast.ai: minimum reliability {text!r} is not a number between 0 and 1",
            fields=["min_reliability"],
        ) from None
    return value if math.isfinite(value) and value > 0 else None


def _no_offer(
    ctx: CheckContext, vram_mb: int, ceiling: float | None, zones: tuple[str, ...] | None
) -> str:
    text = f"no offer with {vram_mb:,} MB VRAM"
    text += f" under {wording.hourly_price(ceiling)}" if ceiling is not None else ""
    text += f" in zones {', '.join(zones)}" if zones is not None else ""
    machine = _pinned_machine(ctx)
    return text + (f" on machine {machine}" if machine is not None else "")


async def _current_user(ctx: CheckContext, http: HttpClient, key: str) -> dict[str, Any]:
    resp = await http.get(f"{_api(ctx)}/users/current", headers=_bearer(key))
    body = http.json(resp)
    if not isinstance(body, dict) or (body.get("id") is None and not body.get("email")):
        raise CheckFailure(
            "error",
            "Vast.ai answered without the account it belongs to; is the base URL "
            "https://console.vast.ai/api/v0?",
            fields=["base_url"],
        )
    email = body.get("email") if isinstance(body.get("email"), str) else None
    username = body.get("username") if isinstance(body.get("username"), str) else None
    user_id = body.get("id")
    who = email or username or f"user {user_id}"
    identity = f"{who}, id {user_id}" if user_id is not None and who != f"user {user_id}" else who
    credit, balance = _number(body.get("credit")), _number(body.get("balance"))
    return {
        "identity": identity,
        "user_id": user_id,
        "email": email,
        "username": username,
        "credit": credit if credit is not None else balance,
        "balance": balance,
    }


async def _offers_today(
    ctx: CheckContext, http: HttpClient, key: str, detail: dict[str, Any]
) -> str:
    """Validate's offer search (the profile's GPU floor, the provider's ceiling): what it
    found, in words, and in ``detail``; a warning, never a failure, when nothing matches."""
    vram_mb = round(ctx.profile.vram_floor_gb * 1000)
    ceiling = _meta_number(ctx, "price_ceiling_usd")
    try:
        offers = await _search(
            ctx,
            http,
            key,
            vram_mb=vram_mb,
            max_hourly_usd=ceiling,
            zones=None,
            min_reliability=_min_reliability(ctx),
            machine_id=_pinned_machine(ctx),
            disk_gb=None,
            limit=SEARCH_LIMIT,
        )
    except CheckFailure as failure:
        if failure.code in ("invalid_credentials", "permission_denied"):
            raise CheckFailure(
                "permission_denied",
                "Vast.ai accepted the API key but refused to search offers; give the key the "
                "misc permission (offer search) as well as instance_read and instance_write, "
                "or use an unrestricted key",
                fields=["api_key"],
            ) from None
        raise
    under = f" under {wording.hourly_price(ceiling)}" if ceiling is not None else ""
    floor = wording.vram(ctx.profile.vram_floor_gb)
    detail["offers"] = len(offers)
    detail["offers_max_hourly_usd"] = ceiling
    detail["offers_vram_mb"] = vram_mb
    if not offers:
        warning = f"no offer with {floor} VRAM{under} today; dispatch would find nothing to rent"
        detail["warning"] = warning
        return f"warning: {warning}"
    detail["cheapest_hourly_usd"] = offers[0].dph_total
    more = "+" if len(offers) >= SEARCH_LIMIT else ""
    return (
        f"{len(offers)}{more} offer{'s' if len(offers) != 1 else ''} with {floor} VRAM{under}, "
        f"from {wording.hourly_price(offers[0].dph_total)}"
    )


def _search_body(
    *,
    vram_mb: int,
    max_hourly_usd: float | None,
    countries: list[str] | None,
    min_reliability: float | None,
    machine_id: int | None,
    disk_gb: float | None,
    limit: int,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "gpu_ram": {"gte": float(vram_mb)},
        "rentable": {"eq": True},
        "verified": {"eq": True},
        "direct_port_count": {"gte": 1},
    }
    if max_hourly_usd is not None:
        body["dph_total"] = {"lte": max_hourly_usd}
    if min_reliability is not None:
        body["reliability"] = {"gte": min_reliability}
    if machine_id is not None:
        body["machine_id"] = {"eq": machine_id}
    if countries is not None:
        body["geolocation"] = {"in": countries}
    if disk_gb is not None:
        body["disk_space"] = {"gte": float(disk_gb)}
        body["allocated_storage"] = float(disk_gb)
    body["order"] = [["dph_total", "asc"]]
    body["type"] = "on-demand"
    body["limit"] = limit
    return body


def _offer(item: Any) -> Offer | None:
    if not isinstance(item, dict):
        return None
    offer_id = _int(item.get("id"))
    price = _number(item.get("dph_total"))
    if offer_id is None or price is None:
        return None
    where = item.get("geolocation")
    geolocation = where if isinstance(where, str) else ""
    reliability = _number(item.get("reliability"))
    return Offer(
        id=offer_id,
        machine_id=_int(item.get("machine_id")),
        gpu_name=str(item.get("gpu_name") or ""),
        gpu_ram_mb=_number(item.get("gpu_ram")) or 0.0,
        dph_total=price,
        reliability=reliability if reliability is not None else _number(item.get("reliability2")),
        geolocation=geolocation,
        zone=zone_of(geolocation),
        num_gpus=_int(item.get("num_gpus")),
    )


def _takeable(
    offer: Offer,
    *,
    vram_mb: int,
    max_hourly_usd: float | None,
    zones: tuple[str, ...] | None,
    machine_id: int | None,
) -> bool:
    """The search's promises, checked again on each offer: a price above the ceiling or a
    location outside the job's zones is never taken, whatever the answer held."""
    if zones is not None and offer.zone not in zones:
        return False
    if max_hourly_usd is not None and offer.dph_total > max_hourly_usd:
        return False
    if machine_id is not None and offer.machine_id != machine_id:
        return False
    return offer.gpu_ram_mb >= vram_mb


async def _search(
    ctx: CheckContext,
    http: HttpClient,
    key: str,
    *,
    vram_mb: int,
    max_hourly_usd: float | None,
    zones: tuple[str, ...] | None,
    min_reliability: float | None,
    machine_id: int | None,
    disk_gb: float | None,
    limit: int,
) -> list[Offer]:
    countries = None
    if zones is not None:
        countries = sorted({c for z in zones for c in _COUNTRIES.get(z, ())})
        if not countries:
            return []  # zones no Vast host is in (on_prem, local)
    body = _search_body(
        vram_mb=vram_mb,
        max_hourly_usd=max_hourly_usd,
        countries=countries,
        min_reliability=min_reliability,
        machine_id=machine_id,
        disk_gb=disk_gb,
        limit=limit,
    )
    resp = await http.post(f"{_api(ctx)}/bundles/", headers=_bearer(key), json=body)
    answer = http.json(resp)
    items = answer.get("offers") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise CheckFailure("error", "Vast.ai's offer search came back in an unexpected form")
    offers = [
        o
        for o in (_offer(i) for i in items)
        if o is not None
        and _takeable(
            o, vram_mb=vram_mb, max_hourly_usd=max_hourly_usd, zones=zones, machine_id=machine_id
        )
    ]
    return sorted(offers, key=lambda o: o.dph_total)


async def _rent(
    ctx: CheckContext, http: HttpClient, key: str, api: str, offer: Offer, spec: LaunchSpec
) -> int | None:
    """Create the instance from ``offer``: its contract id, or None when the offer was taken."""
    body = {
        "client_id": "me",
        "image": spec.image,
        "disk": spec.disk_gb,
        "label": spec.name,
        "onstart": spec.script_at(offer.dph_total),
        "runtype": RUNTYPE,
        "cancel_unavail": True,
    }
    resp = await http.request(
        "PUT", f"{api}/asks/{offer.id}/", headers=_bearer(key), json=body, ok=(200, 400, 404, 410)
    )
    answer = _body(resp)
    if resp.status_code in (404, 410):
        if not _vast_error(answer):
            raise http.failure_for(resp)
        return None
    if resp.status_code == 400:
        raise CheckFailure(
            "misconfigured",
            f"Vast.ai refused to create the instance ({_provider_text(answer) or 'bad request'});"
            " check the ComfyUI image and the disk size",
            fields=["comfyui_image"],
        )
    contract = _int(answer.get("new_contract")) if isinstance(answer, dict) else None
    if contract is None or not isinstance(answer, dict) or answer.get("success") is False:
        raise CheckFailure(
            "error",
            "Vast.ai answered the rental without an instance id "
            f"({_provider_text(answer) or 'no new_contract'}); check the Vast.ai console for "
            f"an instance labelled {spec.name}",
        )
    return contract


async def _instance_list(ctx: CheckContext, http: HttpClient, key: str) -> list[dict[str, Any]]:
    resp = await http.get(f"{_api(ctx)}/instances/", params={"owner": "me"}, headers=_bearer(key))
    body = http.json(resp)
    items = body.get("instances") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise CheckFailure(
            "error", "Vast.ai's instance list came back in an unexpected form; try again later"
        )
    return [i for i in items if isinstance(i, dict)]


async def _instances(ctx: CheckContext, http: HttpClient, key: str) -> tuple[int, int]:
    items = await _instance_list(ctx, http, key)
    return len(items), sum(1 for i in items if i.get("actual_status") == "running")


async def _destroy(ctx: CheckContext, key: str, api: str, instance_id: int) -> None:
    """Destroy one instance; one already gone (Vast's own 404) is done."""
    async with ctx.http(auth_fields=["api_key"]) as http:
        resp = await http.request(
            "DELETE", f"{api}/instances/{instance_id}/", headers=_bearer(key), ok=(200, 404)
        )
        body = _body(resp)
        if resp.status_code == 404:
            if not _vast_error(body):
                raise http.failure_for(resp)
            return
    if isinstance(body, dict) and body.get("success") is False:
        text = _provider_text(body)
        if re.search(r"no.such.instance|not.found", text, re.I):
            return
        raise CheckFailure(
            "error",
            f"Vast.ai did not destroy instance {instance_id} ({text or 'no reason given'}); "
            f"destroy it in the console ({CONSOLE_URL})",
        )


def _machine_api(ctx: CheckContext, machine: Machine) -> str:
    """The API the machine was rented from (its refs), else the provider's."""
    api = machine.refs.get("api")
    return api.rstrip("/") if isinstance(api, str) and api else _api(ctx)


def _instance_id(machine: Machine) -> int:
    instance_id = _int(machine.refs.get("instance_id"))
    if instance_id is None:
        instance_id = _int(machine.id)
    if instance_id is None:
        raise CheckFailure("error", f"Vast.ai: machine {machine.id!r} has no instance id")
    return instance_id


def _refs_of(inst: dict[str, Any], api: str) -> dict[str, Any]:
    return {
        "instance_id": _int(inst.get("id")),
        "offer_id": None,
        "machine_id": _int(inst.get("machine_id")),
        "api": api,
        "dph_total": _number(inst.get("dph_total")),
        "geolocation": inst.get("geolocation") if isinstance(inst.get("geolocation"), str) else "",
        "gpu_name": str(inst.get("gpu_name") or ""),
    }


def _released(machine: Machine, raw: str) -> Machine:
    return Machine(
        id=machine.id,
        name=machine.name,
        status="released",
        raw_status=raw,
        hourly_usd=machine.hourly_usd,
        created_at=machine.created_at,
        refs=dict(machine.refs),
    )


def _ssh_address(inst: dict[str, Any]) -> tuple[str | None, int | None]:
    """Direct SSH (the public address and the host port mapped to 22) when the instance has
    one, else Vast's SSH proxy."""
    ports = inst.get("ports")
    mapped = ports.get("22/tcp") if isinstance(ports, dict) else None
    ip = inst.get("public_ipaddr")
    if isinstance(mapped, list) and mapped and isinstance(mapped[0], dict):
        port = _int(mapped[0].get("HostPort"))
        if isinstance(ip, str) and ip.strip() and port is not None:
            return ip.strip(), port
    host, port = inst.get("ssh_host"), _int(inst.get("ssh_port"))
    if isinstance(host, str) and host.strip() and port is not None:
        return host.strip(), port
    return None, None


def _machine(inst: dict[str, Any], name: str, refs: dict[str, Any]) -> Machine:
    raw = inst.get("actual_status")
    raw_text = raw if isinstance(raw, str) else ""
    status: MachineStatus = _STATUS.get(raw_text.lower(), "booting")
    host, port = _ssh_address(inst) if status == "running" else (None, None)
    return Machine(
        id=str(_int(inst.get("id")) or refs.get("instance_id")),
        name=str(inst.get("label") or name),
        status=status,
        raw_status=raw_text,
        ssh_host=host,
        ssh_port=port,
        hourly_usd=_number(inst.get("dph_total")),
        created_at=_when(inst.get("start_date")),
        refs=refs,
    )
