"""Lambda Cloud: the API key and the capacity for the configured instance type; one instance per
job for dispatch.

What is sent (docs/providers.md; Lambda Cloud API, OpenAPI 1.8.3 / 1.10, docs.lambda.ai). Every
request carries ``Authorization: Bearer KEY``; answers are ``{"data": ...}``, errors
``{"error": {"code", "message", "suggestion"}}`` (the ``code`` is what is read).

* validate and health — ``GET {api}/instance-types``: one request a check. The answer is
  ``{"data": {"<type>": {"instance_type": {"name", "description", "price_cents_per_hour",
  "specs"}, "regions_with_capacity_available": [{"name", "description"}]}}}``; a bad key gets
  401 ``{"error": {"code": "global/invalid-api-key", ...}}``.
* launch — ``GET {api}/instance-types`` (the type is offered, has capacity in the region, its
  price is under the job's ceiling: nothing is created otherwise); ``POST {api}/ssh-keys``
  ``{"name": <resource name>, "public_key": <the job's one-time client key>}`` -> ``{"data":
  {"id", "name", "public_key"}}`` (Lambda takes exactly one key per launch, by name); then
  ``POST {api}/instance-operations/launch`` ``{"region_name", "instance_type_name",
  "ssh_key_names": [<resource name>], "file_system_names": [], "name": <resource name>,
  "user_data": <the start-up script>, "tags": [{"key": "comfyvn-gui-home", "value"},
  {"key": "comfyvn-gui-job", "value"}]}`` -> ``{"data": {"instance_ids": [id]}}``. The image is
  Lambda's default (Lambda Stack: Ubuntu with Docker and the NVIDIA container toolkit, login
  ``ubuntu``); the start-up script (cloud-init user data) runs ``comfyui_image`` in Docker.
  ``quantity`` is not sent: OpenAPI 1.8.3 and later define no such field (one instance is
  launched). ``instance-operations/launch/insufficient-capacity`` (the listing said yes, the
  launch said no) and ``global/quota-exceeded`` are ``quota_exhausted``; a launch that fails
  after the key was registered deletes the key before the failure is reported. A key of the
  same name left by a launch that died half-way is reused when it is the same key, else
  replaced.
* find — ``GET {api}/instances``, the live instance (booting, active, unhealthy) of that name,
  and ``GET {api}/ssh-keys`` for its key's id.
* describe — ``GET {api}/instances/{id}`` (at the API base recorded at launch): ``booting`` ->
  booting; ``active`` and ``unhealthy`` -> running (``raw_status`` keeps Lambda's word);
  ``terminating`` / ``terminated`` or 404 -> released; ``preempted`` -> failed (released
  anyway). SSH: ``data.ip`` and the ``ssh_port`` option as it was at launch (22: Lambda's
  instances have no port field; a test double or a custom image may use another).
  ``price_cents_per_hour / 100`` is the hourly price.
* release — ``POST {api}/instance-operations/terminate`` ``{"instance_ids": [id]}`` (404
  ``global/object-does-not-exist``: already gone = released), then ``DELETE
  {api}/ssh-keys/{key_id}``; a key that cannot be deleted after a successful terminate is
  logged, not a failed release (``running`` lists it, ``running stop`` deletes it).
* resources — ``GET {api}/instances`` and ``GET {api}/ssh-keys``: the instances and the keys
  named ``comfyvn-<home>-job<n>`` (or tagged ``comfyvn-gui-home``) for this home; ``stop``
  terminates an instance or deletes a key.

The dead-man switch: Lambda has no stop state and no server-side time limit, and the only
credential that could terminate an instance is the account's API key, which is never put on a
machine. At the deadline the start-up script shuts the system down (the work stops), but the
instance bills until it is terminated: the app's driver is the only guard (:attr:`deadman_words`).

Rate limits: Lambda allows about one request a second, and one launch every 12 s (five a
minute). The dispatch calls to one account are spaced by :data:`REQUEST_INTERVAL_S` and
:data:`LAUNCH_INTERVAL_S`; a 429 is retried by the HTTP client (honouring ``Retry-After``).

Which type is looked at: the ``instance_type`` option when set — a type missing from the answer
is ``misconfigured`` naming ``instance_type``. Otherwise the profile's default for that option
(``gpu_1x_a100``, the profile's default GPU), but only while the provider uses the profile's
default GPU; a provider set to another GPU has no type to look at until ``instance_type`` is set,
and an unset default that Lambda no longer offers is reported, not failed. The ``region``
option narrows capacity to one region; without it any region counts (a launch takes the first
region with capacity inside the job's residency zones).

Health: ``healthy`` with capacity for the type (in the region, if set), ``degraded`` without —
launches would fail until capacity frees up; ``healthy`` when there is no type to look at.
Validate passes without capacity, saying so (a warning in the message and ``detail``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from comfyvn_gui.core.machines import HOME_TAG, JOB_TAG, parse_resource_name

from .base import CheckContext, CheckFailure, Outcome
from .machine import LaunchSpec, Machine, MachineStatus, Resource
from .registry import register

if TYPE_CHECKING:
    from .http_client import HttpClient

log = logging.getLogger(__name__)

#: Seconds between two dispatch requests to one account (Lambda: about one a second).
REQUEST_INTERVAL_S = 1.0
#: Seconds between two launches on one account (Lambda: one every 12 s, five a minute).
LAUNCH_INTERVAL_S = 12.0
CONSOLE_INSTANCES = "https://cloud.lambda.ai/instances"
CONSOLE_SSH_KEYS = "https://cloud.lambda.ai/ssh-keys"
DEFAULT_SSH_PORT = 22
#: Lambda's tag keys (RequestedTagEntry): lower-case, at most 55 characters; values 128.
_TAG_KEY = re.compile(r"^[a-z][a-z0-9-:]+$")
_STATUS: dict[str, MachineStatus] = {
    "booting": "booting",
    "active": "running",
    "unhealthy": "running",  # up but failing Lambda's health checks: raw_status says so
    "terminating": "released",
    "terminated": "released",
    "preempted": "failed",
}
_LIVE = ("booting", "active", "unhealthy")
NOT_FOUND = "global/object-does-not-exist"
INSUFFICIENT_CAPACITY = "instance-operations/launch/insufficient-capacity"
QUOTA_EXCEEDED = "global/quota-exceeded"


@register("lambda")
class LambdaAdapter:
    """Validation and health of a Lambda Cloud account, and one instance per job."""

    deadman = "shutdown"
    mode = "vm"
    default_ssh_user = "ubuntu"
    driver_only_guard = True  # (the driver inhibits sleep, and releases on SIGTERM)
    deadman_words = (
        "Nothing inside a Lambda instance can stop the bill: Lambda has no stop state and no "
        "time limit, and an instance bills every minute until it is terminated — at the "
        "deadline the machine shuts its system down, which stops the work but not the bill. "
        "Only this app terminates it, and it keeps billing while the app is away: keep the "
        "app running until the job ends"
    )

    async def validate(self, ctx: CheckContext) -> Outcome:
        detail, capacity = await _check(ctx)
        offered = detail["instance_types_offered"]
        msg = f"{ctx.name} accepted the API key ({offered} instance types offered)"
        if detail.get("capacity_available") is False:
            detail["warning"] = capacity
            return Outcome(f"{msg}; warning: {capacity}", detail=detail)
        return Outcome(f"{msg}; {capacity}", detail=detail)

    async def health(self, ctx: CheckContext) -> Outcome:
        detail, capacity = await _check(ctx)
        if detail.get("capacity_available") is False:
            return Outcome(f"{ctx.name} answers, but {capacity}", detail=detail, health="degraded")
        return Outcome(f"{ctx.name} answers; {capacity}", detail=detail)

    # -- dispatch (MachineAdapter) -------------------------------------------------------------

    async def launch(self, ctx: CheckContext, spec: LaunchSpec) -> Machine:
        api = _api(ctx)
        ssh_port = _ssh_port(ctx)
        async with ctx.http(auth_fields=["api_key"]) as http:
            itype, region, hourly = await _pick(ctx, http, api, spec)
            key_id = await _register_key(ctx, http, api, spec)
            body: dict[str, Any] = {
                "region_name": region,
                "instance_type_name": itype,
                "ssh_key_names": [spec.name],
                "file_system_names": [],
                "name": spec.name,
                "user_data": spec.script_at(hourly),
                "tags": _tags(spec.tags),
            }
            try:
                status, answer = await _send(
                    ctx, http, "POST", f"{api}/instance-operations/launch", json=body, launch=True
                )
                if status != 200:
                    raise _launch_failure(ctx, status, answer, itype, region)
                ids = _data(answer).get("instance_ids") if isinstance(_data(answer), dict) else None
                if not isinstance(ids, list) or not ids or not isinstance(ids[0], str):
                    raise CheckFailure(
                        "error",
                        f"{ctx.name} answered the launch without an instance id; look for an "
                        f"instance named {spec.name} at {CONSOLE_INSTANCES}",
                    )
            except BaseException:
                await _forget_key(ctx, http, api, key_id, spec.name)
                raise
        refs = {
            "instance_id": ids[0],
            "ssh_key_id": key_id,
            "ssh_key_name": spec.name,
            "region": region,
            "instance_type": itype,
            "api": api,
            "ssh_port": ssh_port,
        }
        return Machine(
            id=ids[0],
            name=spec.name,
            status="booting",
            raw_status="booting",
            hourly_usd=hourly,
            refs=refs,
        )

    async def find(self, ctx: CheckContext, name: str) -> Machine | None:
        api = _api(ctx)
        async with ctx.http(auth_fields=["api_key"]) as http:
            instances = await _list(ctx, http, f"{api}/instances", "instances")
            data = next(
                (
                    i
                    for i in instances
                    if isinstance(i, dict) and i.get("name") == name and i.get("status") in _LIVE
                ),
                None,
            )
            if data is None:
                return None
            key_names = data.get("ssh_key_names") or []
            key_name = key_names[0] if key_names and isinstance(key_names[0], str) else name
            keys = await _list(ctx, http, f"{api}/ssh-keys", "SSH keys")
        key = next((k for k in keys if isinstance(k, dict) and k.get("name") == key_name), None)
        region = data.get("region")
        itype = data.get("instance_type")
        refs = {
            "instance_id": str(data.get("id")),
            "ssh_key_id": key.get("id") if key else None,
            "ssh_key_name": key_name,
            "region": region.get("name") if isinstance(region, dict) else None,
            "instance_type": itype.get("name") if isinstance(itype, dict) else None,
            "api": api,
            "ssh_port": _ssh_port(ctx),
        }
        return _machine(data, name, refs)

    async def describe(self, ctx: CheckContext, machine: Machine) -> Machine:
        api = str(machine.refs.get("api") or _api(ctx))
        async with ctx.http(auth_fields=["api_key"]) as http:
            status, answer = await _send(ctx, http, "GET", f"{api}/instances/{machine.id}")
        if status == 404 or (status == 400 and _code(answer) == NOT_FOUND):
            return Machine(
                id=machine.id,
                name=machine.name,
                status="released",
                raw_status="not found",
                hourly_usd=machine.hourly_usd,
                created_at=machine.created_at,
                refs=dict(machine.refs),
            )
        data = _data(answer)
        if status != 200 or not isinstance(data, dict):
            raise _unexpected(ctx, status, answer, f"reading the instance {machine.id}")
        described = _machine(data, machine.name, dict(machine.refs))
        if described.hourly_usd is None:
            described.hourly_usd = machine.hourly_usd
        described.created_at = machine.created_at
        return described

    async def release(self, ctx: CheckContext, machine: Machine) -> None:
        api = str(machine.refs.get("api") or _api(ctx))
        async with ctx.http(auth_fields=["api_key"]) as http:
            await _terminate(ctx, http, api, str(machine.refs.get("instance_id") or machine.id))
            key_id = machine.refs.get("ssh_key_id")
            key_name = machine.refs.get("ssh_key_name")
            if key_id or key_name:
                try:
                    await _delete_key(
                        ctx,
                        http,
                        api,
                        str(key_id) if key_id else None,
                        str(key_name) if key_name else None,
                    )
                except CheckFailure as failure:  # the machine is gone: the key is a leftover
                    log.warning(
                        "%s: the one-time SSH key %s was not deleted after %s was terminated "
                        "(%s); `running` lists it",
                        ctx.name,
                        key_name or key_id,
                        machine.id,
                        failure.message,
                    )

    async def resources(self, ctx: CheckContext, home_id: str) -> list[Resource]:
        api = _api(ctx)
        found: list[Resource] = []
        async with ctx.http(auth_fields=["api_key"]) as http:
            instances = await _list(ctx, http, f"{api}/instances", "instances")
            keys = await _list(ctx, http, f"{api}/ssh-keys", "SSH keys")
        for i in instances:
            if not isinstance(i, dict) or i.get("status") == "terminated":
                continue
            ours, job = _owner(i.get("name"), i.get("tags"), home_id)
            if not ours:
                continue
            found.append(
                Resource(
                    kind="machine",
                    id=str(i.get("id")),
                    name=str(i.get("name") or ""),
                    job_id=job,
                    status=str(i.get("status") or ""),
                    hourly_usd=_price(i.get("instance_type")),
                    console_url=CONSOLE_INSTANCES,
                )
            )
        for k in keys:
            if not isinstance(k, dict):
                continue
            ours, job = _owner(k.get("name"), None, home_id)
            if not ours:
                continue
            found.append(
                Resource(
                    kind="ssh_key",
                    id=str(k.get("id")),
                    name=str(k.get("name") or ""),
                    job_id=job,
                    status="registered",
                    console_url=CONSOLE_SSH_KEYS,
                )
            )
        return found

    async def stop(self, ctx: CheckContext, resource: Resource) -> None:
        api = _api(ctx)
        async with ctx.http(auth_fields=["api_key"]) as http:
            if resource.kind == "machine":
                await _terminate(ctx, http, api, resource.id)
            elif resource.kind == "ssh_key":
                await _delete_key(ctx, http, api, resource.id, resource.name)
            else:
                raise CheckFailure(
                    "error", f"{ctx.name} holds no {resource.kind} resources (asked: {resource.id})"
                )


# -- validate / health -------------------------------------------------------------------------


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


def _api(ctx: CheckContext) -> str:
    api = ctx.endpoint("api")
    if api is None:
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: the API address is not set; set the base URL",
            fields=["base_url"],
        )
    return api


async def _types(ctx: CheckContext, http: HttpClient, api: str) -> dict[str, Any]:
    """``GET {api}/instance-types``: the ``data`` object (type name -> entry)."""
    (key,) = ctx.require("api_key")
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
    return types


def _unknown_type(ctx: CheckContext, wanted: str, types: dict[str, Any], detail: Any) -> Exception:
    offered = ", ".join(sorted(types)[:12]) or "none"
    return CheckFailure(
        "misconfigured",
        f"{ctx.name} does not offer the instance type {wanted!r}; set Instance type "
        f"to one it offers (e.g. {offered})",
        fields=["instance_type"],
        detail=detail,
    )


async def _check(ctx: CheckContext) -> tuple[dict[str, Any], str]:
    ctx.require("api_key")
    api = _api(ctx)
    async with ctx.http(auth_fields=["api_key"]) as http:
        types = await _types(ctx, http, api)
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
            raise _unknown_type(ctx, wanted, types, detail)
        detail["instance_type"] = None
        return detail, (
            f"the default instance type {wanted} is not offered any more, so capacity was not "
            "checked; set Instance type"
        )
    spec = entry.get("instance_type") if isinstance(entry, dict) else None
    if isinstance(spec, dict):
        price = _price(spec)
        if price is not None:
            detail["price_usd_per_hour"] = price
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


# -- dispatch ----------------------------------------------------------------------------------


class _Pacer:
    """Spaces the requests to one account (Lambda's rate limits; see the module's text).

    A request reserves its slot before it is sent — the first moment every limit it counts
    against allows — so concurrent jobs on one account queue up instead of tripping a limit;
    a wait longer than the operation may take is refused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[tuple[str, str], float] = {}

    async def wait(self, ctx: CheckContext, account: str, limits: dict[str, float]) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max([now, *(self._next.get((account, k), 0.0) for k in limits)])
            wait = slot - now
            if wait > 0 and wait >= ctx.remaining() - 0.5:
                what = "launch" if "launch" in limits else "request"
                raise CheckFailure(
                    "rate_limited",
                    f"{ctx.name} takes one {what} every {max(limits.values()):g} s on this "
                    f"account; try again in {wait:.0f} s",
                    detail={"retry_after_s": round(wait, 1)},
                )
            for kind, interval in limits.items():
                self._next[(account, kind)] = slot + interval
        if wait > 0:
            await asyncio.sleep(wait)


_PACER = _Pacer()


async def _send(
    ctx: CheckContext,
    http: HttpClient,
    method: str,
    url: str,
    *,
    json: Any = None,
    launch: bool = False,
) -> tuple[int, Any]:
    """One paced request; ``(status, body)`` for 200, 400 and 404 (Lambda's own errors, read
    by the caller); 401/403/429/5xx become the HTTP client's failures."""
    (key,) = ctx.require("api_key")
    limits = {"request": REQUEST_INTERVAL_S}
    if launch:
        limits["launch"] = LAUNCH_INTERVAL_S
    await _PACER.wait(ctx, _account(ctx, url), limits)
    kwargs: dict[str, Any] = {"headers": {"Authorization": f"Bearer {key}"}}
    if json is not None:
        kwargs["json"] = json
    resp = await http.request(method, url, ok=(200, 400, 404), **kwargs)
    try:
        body = resp.json() if resp.content else None
    except ValueError:
        body = None
    if resp.status_code == 200 and not isinstance(body, dict):
        http.json(resp)  # (raises: not JSON)
        raise CheckFailure("error", f"{ctx.name} answered {url} with something other than data")
    return resp.status_code, body


def _data(body: Any) -> Any:
    return body.get("data") if isinstance(body, dict) else None


def _code(body: Any) -> str | None:
    err = body.get("error") if isinstance(body, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    return code if isinstance(code, str) else None


def _said(body: Any) -> str:
    """Lambda's own words for an error (code: message), one line, bounded."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return "no error details"
    words = " ".join(str(err.get("message") or "").split())[:200]
    return f"{err.get('code')}: {words}" if words else str(err.get("code"))


def _unexpected(ctx: CheckContext, status: int, body: Any, doing: str) -> CheckFailure:
    return CheckFailure(
        "error", f"{ctx.name} refused {doing} ({status}, {_said(body)}); try again later"
    )


async def _list(ctx: CheckContext, http: HttpClient, url: str, what: str) -> list[Any]:
    status, body = await _send(ctx, http, "GET", url)
    data = _data(body)
    if status != 200 or not isinstance(data, list):
        raise _unexpected(ctx, status, body, f"listing its {what}")
    return data


def _ssh_port(ctx: CheckContext) -> int:
    raw = ctx.setting("ssh_port")
    try:
        port = int(raw) if raw is not None else DEFAULT_SSH_PORT
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise CheckFailure(
            "misconfigured", f"{ctx.name}: SSH port {raw!r} is not a port", fields=["ssh_port"]
        )
    return port


def _price(itype: Any) -> float | None:
    cents = itype.get("price_cents_per_hour") if isinstance(itype, dict) else None
    if isinstance(cents, int | float) and not isinstance(cents, bool):
        return round(cents / 100, 4)
    return None


def _zone(ctx: CheckContext, region: str) -> str | None:
    return next((r.zone for r in ctx.profile.regions if r.id == region), None)


async def _pick(
    ctx: CheckContext, http: HttpClient, api: str, spec: LaunchSpec
) -> tuple[str, str, float | None]:
    """(instance type, region, hourly price) to launch, or why nothing can be launched."""
    wanted, _ = _target_type(ctx)
    if wanted is None:
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: no instance type to launch for this GPU; set Instance type",
            fields=["instance_type"],
        )
    await _PACER.wait(ctx, _account(ctx, api), {"request": REQUEST_INTERVAL_S})
    types = await _types(ctx, http, api)
    entry = types.get(wanted)
    if entry is None:
        raise _unknown_type(ctx, wanted, types, {})
    hourly = _price(entry.get("instance_type") if isinstance(entry, dict) else None)
    if spec.max_hourly_usd is not None and hourly is not None and hourly > spec.max_hourly_usd:
        raise CheckFailure(
            "quota_exhausted",
            f"{ctx.name}: {wanted} costs ${hourly:.2f}/h, above this job's ceiling of "
            f"${spec.max_hourly_usd:.2f}/h; pick a cheaper instance type or raise the budget",
            fields=["instance_type"],
        )
    capacity = _region_names(entry)
    region = ctx.value("region")
    if region is not None:
        zone = _zone(ctx, region)
        if spec.zones is not None and zone not in spec.zones:
            raise CheckFailure(
                "misconfigured",
                f"{ctx.name}: the region {region} is outside this job's residency zones "
                f"({', '.join(spec.zones)}); set Region to one inside them",
                fields=["region"],
            )
        if region not in capacity:
            elsewhere = f" (capacity elsewhere: {', '.join(capacity)})" if capacity else ""
            raise CheckFailure(
                "quota_exhausted",
                f"{ctx.name} has no {wanted} capacity in {region} right now{elsewhere}; pick "
                "another region or instance type, or try later",
                fields=["instance_type", "region"],
            )
        return wanted, region, hourly
    allowed = [r for r in capacity if spec.zones is None or _zone(ctx, r) in spec.zones]
    if not allowed:
        inside = f" inside the zones {', '.join(spec.zones)}" if spec.zones is not None else ""
        raise CheckFailure(
            "quota_exhausted",
            f"{ctx.name} has no {wanted} capacity{inside} right now; pick another instance "
            "type, or try later",
            fields=["instance_type", "region"],
        )
    return wanted, allowed[0], hourly


def _account(ctx: CheckContext, url: str) -> str:
    """Whose rate limit a request counts against: the API host and (a digest of) the key."""
    (key,) = ctx.require("api_key")
    return f"{url.split('/api/')[0]}|{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _same_key(a: Any, b: str) -> bool:
    return isinstance(a, str) and a.split()[:2] == b.split()[:2]


async def _register_key(ctx: CheckContext, http: HttpClient, api: str, spec: LaunchSpec) -> str:
    """``POST {api}/ssh-keys`` with the one-time key; its id. A key of the same name (a launch
    that died half-way) is reused when it is the same key, else deleted and registered anew."""
    body = {"name": spec.name, "public_key": spec.client_public_key}
    for attempt in range(2):
        status, answer = await _send(ctx, http, "POST", f"{api}/ssh-keys", json=body)
        data = _data(answer)
        if status == 200 and isinstance(data, dict) and isinstance(data.get("id"), str):
            return str(data["id"])
        if status != 400 or attempt:
            break
        keys = await _list(ctx, http, f"{api}/ssh-keys", "SSH keys")
        old = next((k for k in keys if isinstance(k, dict) and k.get("name") == spec.name), None)
        if old is None:
            break
        if _same_key(old.get("public_key"), spec.client_public_key):
            return str(old.get("id"))
        await _delete_key(ctx, http, api, str(old.get("id")), spec.name)
    raise CheckFailure(
        "error",
        f"{ctx.name} refused the job's one-time SSH key {spec.name} ({status}, {_said(answer)})",
    )


async def _forget_key(
    ctx: CheckContext, http: HttpClient, api: str, key_id: str, name: str
) -> None:
    """Delete the one-time key of a launch that failed (best effort: the failure is what is
    reported; a key left behind is listed by ``running``)."""
    try:
        await _delete_key(ctx, http, api, key_id, name)
    except (CheckFailure, OSError, TimeoutError) as exc:
        log.warning("%s: the one-time SSH key %s was not deleted (%s)", ctx.name, name, exc)


def _launch_failure(
    ctx: CheckContext, status: int, body: Any, itype: str, region: str
) -> CheckFailure:
    code = _code(body)
    if code == INSUFFICIENT_CAPACITY:
        return CheckFailure(
            "quota_exhausted",
            f"{ctx.name} has no {itype} capacity in {region} right now (the launch was "
            "refused: insufficient capacity); pick another region or instance type, or try later",
            fields=["instance_type", "region"],
        )
    if code == QUOTA_EXCEEDED:
        return CheckFailure(
            "quota_exhausted",
            f"{ctx.name}: the account's quota does not allow another {itype} instance; ask "
            "Lambda support to raise it, or end other instances",
        )
    if code == NOT_FOUND or status == 404:
        return CheckFailure(
            "misconfigured",
            f"{ctx.name} does not know something the launch named ({_said(body)}); check "
            "Instance type and Region",
            fields=["instance_type", "region"],
        )
    return _unexpected(ctx, status, body, f"to launch {itype} in {region}")


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    out = []
    for key, value in tags.items():
        if _TAG_KEY.match(key) and len(key) <= 55 and len(value) <= 128:
            out.append({"key": key, "value": value})
        else:  # (the app's own tags always fit; the name carries home and job anyway)
            log.warning("Lambda tag %r left out: it does not fit Lambda's tag rules", key)
    return out


def _machine(data: dict[str, Any], name: str, refs: dict[str, Any]) -> Machine:
    raw = str(data.get("status") or "")
    status = _STATUS.get(raw, "booting")
    ip = data.get("ip")
    running = status == "running" and isinstance(ip, str) and bool(ip)
    return Machine(
        id=str(data.get("id") or refs.get("instance_id")),
        name=str(data.get("name") or name),
        status=status,
        raw_status=raw or "unknown",
        ssh_host=ip if running else None,
        ssh_port=int(refs.get("ssh_port") or DEFAULT_SSH_PORT) if running else None,
        hourly_usd=_price(data.get("instance_type")),
        refs=refs,
    )


async def _terminate(ctx: CheckContext, http: HttpClient, api: str, instance_id: str) -> None:
    status, answer = await _send(
        ctx,
        http,
        "POST",
        f"{api}/instance-operations/terminate",
        json={"instance_ids": [instance_id]},
    )
    if status == 200:
        return
    if status == 404 or _code(answer) == NOT_FOUND:
        return  # already gone (asked at the API base it was launched at)
    raise _unexpected(ctx, status, answer, f"to terminate the instance {instance_id}")


async def _delete_key(
    ctx: CheckContext, http: HttpClient, api: str, key_id: str | None, name: str | None
) -> None:
    """``DELETE {api}/ssh-keys/{id}``; a key that is not there (any more) is deleted."""
    if key_id is None:
        keys = await _list(ctx, http, f"{api}/ssh-keys", "SSH keys")
        found = next((k for k in keys if isinstance(k, dict) and k.get("name") == name), None)
        if found is None:
            return
        key_id = str(found.get("id"))
    status, answer = await _send(ctx, http, "DELETE", f"{api}/ssh-keys/{key_id}")
    if status == 200:
        return
    # Lambda documents 400 (not 404) for a bad id: look whether the key is still there.
    keys = await _list(ctx, http, f"{api}/ssh-keys", "SSH keys")
    if any(isinstance(k, dict) and k.get("id") == key_id for k in keys):
        raise _unexpected(ctx, status, answer, f"to delete the SSH key {name or key_id}")


def _owner(name: Any, tags: Any, home_id: str) -> tuple[bool, int | None]:
    """(whether a resource is this home's, its job id) by its name, else its tags."""
    parsed = parse_resource_name(name if isinstance(name, str) else None)
    if parsed is not None:
        return parsed[0] == home_id, parsed[1]
    tagged = {
        t.get("key"): t.get("value")
        for t in (tags if isinstance(tags, list) else [])
        if isinstance(t, dict)
    }
    if tagged.get(HOME_TAG) != home_id:
        return False, None
    job = tagged.get(JOB_TAG)
    return True, int(job) if isinstance(job, str) and job.isdigit() else None
