"""Paperspace: the API key, the team and user behind it, and the configured project; and,
for dispatch, one Paperspace machine per job (:class:`~.machine.MachineAdapter`).

What is sent (docs/providers.md; the API reference at docs.digitalocean.com/reference/paperspace/
api-reference, base ``https://api.paperspace.com/v1``, ``Authorization: Bearer KEY``; the
request and reply shapes as the official ``pspace`` CLI's generated API types have them):

* ``GET {api}/machines`` — the proof. Its lists are paged, ``{"hasMore": bool, "items": [...],
  "nextPage": cursor|null}``; the first page is enough. A 200 is never trusted without that
  body: an empty body, ``null`` or any other shape is ``invalid_credentials`` naming
  ``api_key`` (the key looks not accepted), as this API can answer a bad key with a body-less
  200. A body that is not JSON at all is an ``error`` (likely a wrong address).
* ``GET {api}/auth/session`` — documented to return ``null`` when nobody is signed in and
  otherwise ``{"team": {"id", "namespace", ...}, "user": {"email", "id", ...}}``; used only for
  the identity, so a ``null`` or failed session does not fail a check the machines list passed.
* ``GET {api}/projects?limit=120`` (paged like machines, ``after=nextPage``; items have ``id``
  and ``name``) — only when ``project`` is set: a project found by ID or name goes into the
  detail; none in the team is ``misconfigured`` naming ``project``. At most five pages are
  read; a listing that cannot be read (e.g. a key scoped away from it) leaves the project
  unchecked, said in the detail.
* ``GET {api}/machine-availability?machineType=&region=`` -> ``{"available": bool}`` — whether
  the configured machine type can be had in the region now, without renting anything. ``false``
  is a warning in the message and the detail (validate passes; health is ``degraded`` with
  ``quota_exhausted``); a failed or odd answer leaves it unchecked, said in the detail.

Health is the same calls.

Dispatch (a job's machine; every name is ``comfyvn-<home_id>-job<id>``):

* launch: ``POST {api}/startup-scripts`` ``{"name", "script", "isRunOnce": false}`` (the
  start-up script the lifecycle built: the host key, the one-time client key, the dead-man
  switch, ComfyUI on the loopback; run on every boot, so a restarted machine meets its absolute
  deadline again), then ``POST {api}/machines`` ``{"name", "machineType", "templateId",
  "region", "diskSize" (at least 50 GB), "startOnCreate": true, "publicIpType": "dynamic",
  "startupScriptId", "autoShutdownEnabled": true, "autoShutdownTimeout": hours,
  "autoShutdownForce": true}`` (+ ``"networkId"`` with the cache volume) -> ``{"data":
  machine, "event"}``. ``autoShutdownTimeout`` is the hours from now to the hard deadline,
  rounded up, at least 1: Paperspace's own servers turn the machine off then. A refused
  creation deletes the start-up script before the failure is raised; a refusal while
  ``machine-availability`` says the type is not available is ``quota_exhausted``. The region is
  sent in the API's lower-case form (``ny2``, ``ca1``, ``ams1``). ``templateId`` is the
  ``template_id`` option, else the newest ``ML-in-a-Box`` template of ``GET {api}/os-templates``
  offered on the machine type (the ML-in-a-Box image has Docker with NVIDIA's container
  runtime, which the start-up script's ComfyUI container needs).
* find: ``GET {api}/machines?name=`` (all pages; the name compared exactly) and the start-up
  script of that name (``GET {api}/startup-scripts?name=``), so a resumed driver can release
  both.
* describe: ``GET {api}/machines/{id}``: ``provisioning``/``starting``/``restarting``/
  ``upgrading`` -> booting, ``ready``/``serviceready`` -> running, ``off``/``stopping`` ->
  stopped, 404 -> released. The SSH address is ``publicIp`` and the ``ssh_port`` option
  (22 on Paperspace's templates) as recorded at launch.
* release: ``DELETE {api}/machines/{id}`` (404: already gone), then ``DELETE
  {api}/startup-scripts/{id}`` (a failure there, once the machine is gone, is logged, not
  raised: ``running`` still lists the script).
* resources: every machine and start-up script named for the home, and the cache volume;
  stop deletes one (a machine with its same-named start-up script).
* The cache volume (option ``cache_volume`` = ``on`` only): a Paperspace shared drive named
  ``comfyvn-<home_id>-cache`` in the region (``GET/POST {api}/shared-drives``; ``POST`` takes
  ``{"name", "networkId", "region", "size"}``, size in GB, 250 to 2,000), in a private network
  of the same name (``GET/POST {api}/private-networks`` ``{"name", "region"}``) that the machine
  joins (``networkId``). Reused by every job, never released with a machine: a standing cost
  that ``running`` lists; stopping it deletes the drive, then its private network.
  Mounted inside the machine: the drive's ``mountPoint`` (``\\\\<ip>\\<share>``, an SMB share
  in the private network) and its ``username`` / ``password`` (both in every shared-drive
  reply; ``GET {api}/shared-drives/{id}`` when a listed drive lacks them) become the start-up
  script's ``cache`` part (:func:`~comfyvn_gui.core.machines.cache_mount_part`), put just
  before the ``comfyui`` part: ``mount -t cifs //<ip>/<share> /mnt/comfyvn-cache`` with a
  root-only credentials file. The ComfyUI container then gets the drive's ``models``,
  ``hf-hub`` and ``torch-hub`` folders as ``/root/ComfyUI/models``,
  ``/root/.cache/huggingface/hub`` and ``/root/.cache/torch/hub`` (:data:`CACHE_BINDS`: where
  the default image keeps them). A drive that does not mount leaves those folders on the
  machine's own disk (the job runs, without the cache). The password is sent only inside the
  start-up script (stored at Paperspace with it); it is never read into refs, resources,
  logs or messages. The drive's monthly price: the API gives none and no published
  per-GB rate was found (:data:`SHARED_DRIVE_USD_PER_GB_MONTH`), so ``running`` shows none.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from comfyvn_gui.core.machines import (
    HOME_TAG,
    cache_mount_part,
    parse_resource_name,
    script_part,
)

from .base import CheckContext, CheckFailure, Outcome
from .http_client import HttpClient
from .machine import LaunchSpec, Machine, MachineStatus, Resource
from .registry import register

log = logging.getLogger(__name__)

_MAX_PROJECT_PAGES = 5
#: Pages of a listing read at most (120 items each) before giving up.
_MAX_PAGES = 50
_PAGE = 120
CONSOLE_URL = "https://console.paperspace.com/"
DEFAULT_MACHINE_TYPE = "A4000"
#: The smallest machine disk Paperspace offers (GB; its block storage is 50 GB to 2 TB).
MIN_DISK_GB = 50
#: The size of a new cache volume when the option is empty (GB; shared drives: 250 to 2,000).
DEFAULT_CACHE_GB = 250
#: Refusals of a create call that carry the API's reason (``{"code", "message"}``).
_REFUSED = (400, 402, 403, 404, 409, 422)
#: Where the start-up script mounts the cache volume on the machine.
CACHE_MOUNT_POINT = "/mnt/comfyvn-cache"
#: The drive's folders and where the ComfyUI container sees them: the default image
#: (yanwk/comfyui-boot, github.com/YanWenKun/ComfyUI-Docker: cu126-slim/docker-compose.yml and
#: README.adoc) keeps ComfyUI in /root/ComfyUI and documents these three as its model and
#: download-cache mounts. Another image sees the same folders there.
CACHE_BINDS: tuple[tuple[str, str], ...] = (
    ("models", "/root/ComfyUI/models"),
    ("hf-hub", "/root/.cache/huggingface/hub"),
    ("torch-hub", "/root/.cache/torch/hub"),
)
#: USD per GB-month of a shared drive, for ``running``'s monthly price. The API's shared-drive
#: replies carry no price (the OpenAPI types of github.com/Paperspace/cli api/openapi.ts;
#: docs.digitalocean.com/reference/paperspace/api-reference/shared-drives), and no published
#: per-GB or per-size rate was found (docs.paperspace.com/core/storage/ points to a "Shared
#: Drives" pricing article that could not be read): None, so no price is shown rather than a
#: guessed one. Set it from Paperspace's pricing page to show one.
SHARED_DRIVE_USD_PER_GB_MONTH: float | None = None
#: The prefix of the ``comfyui`` part's container start (core/machines.py ``_comfyui``, vm mode).
_DOCKER_RUN = "docker run -d --name "

_STATUS: dict[str, MachineStatus] = {
    "provisioning": "booting",
    "starting": "booting",
    "restarting": "booting",
    "upgrading": "booting",
    "ready": "running",
    "serviceready": "running",
    "off": "stopped",
    "stopping": "stopped",
    "failed": "failed",
}


@register("paperspace")
class PaperspaceAdapter:
    """Validation and health of a Paperspace team's API key; one machine per job."""

    deadman = "shutdown"
    mode = "vm"
    default_ssh_user = "paperspace"
    deadman_words = (
        "Paperspace: the machine's start-up script shuts it down at the hard deadline, and the "
        "machine's own auto-shutdown, kept by Paperspace's servers and set to the deadline "
        "rounded up to whole hours, turns it off even if the script never ran; either one ends "
        "the hourly compute charge. Its disk and public IP address keep billing until the app "
        "deletes the machine, which it does when the job ends."
    )

    async def validate(self, ctx: CheckContext) -> Outcome:
        detail = await _check(ctx)
        return Outcome(_summary("Paperspace accepted the API key", detail), detail=detail)

    async def health(self, ctx: CheckContext) -> Outcome:
        detail = await _check(ctx)
        outcome = Outcome(_summary("Paperspace answers", detail), detail=detail)
        if detail.get("machine_type_available") is False:
            outcome.health, outcome.code = "degraded", "quota_exhausted"
        return outcome

    # -- dispatch ------------------------------------------------------------------------

    async def launch(self, ctx: CheckContext, spec: LaunchSpec) -> Machine:
        api, headers = _api(ctx)
        region = _region(ctx, spec.zones)
        machine_type = ctx.setting("machine_type") or DEFAULT_MACHINE_TYPE
        ssh_port = _ssh_port(ctx)
        async with ctx.http(auth_fields=["api_key"]) as http:
            template_id = ctx.value("template_id") or await _ml_template(
                http, api, headers, machine_type
            )
            volume: _CacheDrive | None = None
            script = spec.startup_script
            if (ctx.setting("cache_volume") or "off") == "on":
                volume = await _cache_volume(ctx, http, api, headers, spec, region)
                script = _with_cache(script, volume)
            script_id = await _create_script(http, api, headers, spec.name, script)
            body: dict[str, Any] = {
                "name": spec.name,
                "machineType": machine_type,
                "templateId": template_id,
                "region": region,
                "diskSize": max(MIN_DISK_GB, int(spec.disk_gb)),
                "startOnCreate": True,
                "publicIpType": "dynamic",
                "startupScriptId": script_id,
                "autoShutdownEnabled": True,
                "autoShutdownTimeout": shutdown_hours(spec.deadline),
                "autoShutdownForce": True,
            }
            if volume is not None:
                body["networkId"] = volume.network_id
            resp = await http.request(
                "POST", f"{api}/machines", headers=headers, json=body, ok=(200, *_REFUSED)
            )
            if resp.status_code != 200:
                try:
                    failure = await _create_refused(http, api, headers, resp, machine_type, region)
                finally:
                    await _delete_script(http, api, headers, script_id)
                raise failure
            doc = http.json(resp)
            data = doc.get("data") if isinstance(doc, dict) else None
            if not isinstance(data, dict) or not data.get("id"):
                raise CheckFailure(
                    "error",
                    f"Paperspace accepted the machine {spec.name} but did not say its ID; "
                    "it may exist: `comfyvn-gui running` lists it",
                )
        refs: dict[str, Any] = {
            "machine_id": str(data["id"]),
            "startup_script_id": script_id,
            "region": region,
            "api": api,
            "ssh_port": ssh_port,
            "machine_type": machine_type,
            "template_id": template_id,
        }
        if volume is not None:
            refs["cache_volume_id"] = volume.id
            refs["network_id"] = volume.network_id
        return _machine(data, refs)

    async def find(self, ctx: CheckContext, name: str) -> Machine | None:
        api, headers = _api(ctx)
        async with ctx.http(auth_fields=["api_key"]) as http:
            found = [
                m
                for m in await _items(http, f"{api}/machines", headers, {"name": name})
                if m.get("name") == name and m.get("id") and not m.get("dtDeleted")
            ]
            if not found:
                return None
            data = max(found, key=lambda m: str(m.get("dtCreated") or ""))
            scripts = [
                s
                for s in await _items(http, f"{api}/startup-scripts", headers, {"name": name})
                if s.get("name") == name and s.get("id")
            ]
        mine = [s for s in scripts if str(data["id"]) in (s.get("assignedMachineIds") or [])]
        script = max(mine or scripts, key=lambda s: str(s.get("dtCreated") or ""), default=None)
        refs: dict[str, Any] = {
            "machine_id": str(data["id"]),
            "startup_script_id": str(script["id"]) if script else None,
            "region": str(data.get("region") or _region(ctx, None)),
            "api": api,
            "ssh_port": _ssh_port(ctx),
        }
        if data.get("networkId"):
            refs["network_id"] = str(data["networkId"])
        return _machine(data, refs)

    async def describe(self, ctx: CheckContext, machine: Machine) -> Machine:
        api, headers = _api(ctx, machine.refs)
        mid = str(machine.refs.get("machine_id") or machine.id)
        async with ctx.http(auth_fields=["api_key"]) as http:
            resp = await http.get(f"{api}/machines/{mid}", headers=headers, ok=(200, 404))
            if resp.status_code == 404:
                return Machine(
                    id=machine.id,
                    name=machine.name,
                    status="released",
                    raw_status="deleted",
                    created_at=machine.created_at,
                    refs=dict(machine.refs),
                )
            data = http.json(resp)
        if not isinstance(data, dict):
            raise CheckFailure(
                "error", f"Paperspace answered the machine {mid} in an unexpected form"
            )
        return _machine(data, dict(machine.refs), fallback=machine)

    async def release(self, ctx: CheckContext, machine: Machine) -> None:
        api, headers = _api(ctx, machine.refs)
        mid = str(machine.refs.get("machine_id") or machine.id)
        async with ctx.http(auth_fields=["api_key"]) as http:
            await http.request("DELETE", f"{api}/machines/{mid}", headers=headers, ok=(200, 404))
            script_id = machine.refs.get("startup_script_id")
            if script_id:
                await _delete_script(http, api, headers, str(script_id))

    async def resources(self, ctx: CheckContext, home_id: str) -> list[Resource]:
        api, headers = _api(ctx)
        out: list[Resource] = []
        async with ctx.http(auth_fields=["api_key"]) as http:
            for m in await _items(http, f"{api}/machines", headers):
                parsed = parse_resource_name(m.get("name"))
                if parsed and parsed[0] == home_id and m.get("id") and not m.get("dtDeleted"):
                    out.append(
                        Resource(
                            kind="machine",
                            id=str(m["id"]),
                            name=str(m["name"]),
                            job_id=parsed[1],
                            status=str(m.get("state") or ""),
                            created_at=_when(m.get("dtCreated")),
                            console_url=CONSOLE_URL,
                        )
                    )
            for sc in await _items(http, f"{api}/startup-scripts", headers):
                parsed = parse_resource_name(sc.get("name"))
                if parsed and parsed[0] == home_id and sc.get("id"):
                    out.append(
                        Resource(
                            kind="startup_script",
                            id=str(sc["id"]),
                            name=str(sc["name"]),
                            job_id=parsed[1],
                            status="in use" if sc.get("assignedMachineIds") else "unused",
                            created_at=_when(sc.get("dtCreated")),
                            console_url=CONSOLE_URL,
                        )
                    )
            name = cache_volume_name(home_id)
            for d in await _items(http, f"{api}/shared-drives", headers, {"name": name}):
                if d.get("name") == name and d.get("id") and not d.get("dtDeleted"):
                    size = _gb(d.get("size"))
                    monthly = _stated_monthly(ctx) or drive_monthly_usd(size)
                    where = f"{size} GB, {d.get('region')}" if size else str(d.get("region"))
                    if monthly is None:
                        where += (
                            "; price not published: enter it as the provider's "
                            "cache_volume_monthly_usd"
                        )
                    out.append(
                        Resource(
                            kind="volume",
                            id=str(d["id"]),
                            name=name,
                            job_id=None,
                            status=f"kept ({where})",
                            created_at=_when(d.get("dtCreated")),
                            monthly_usd=monthly,
                            console_url=CONSOLE_URL,
                        )
                    )
        return out

    async def stop(self, ctx: CheckContext, resource: Resource) -> None:
        api, headers = _api(ctx)
        async with ctx.http(auth_fields=["api_key"]) as http:
            if resource.kind == "machine":
                await http.request(
                    "DELETE", f"{api}/machines/{resource.id}", headers=headers, ok=(200, 404)
                )
                scripts = await _items(
                    http, f"{api}/startup-scripts", headers, {"name": resource.name}
                )
                for sc in scripts:
                    if sc.get("name") == resource.name and sc.get("id"):
                        await _delete_script(http, api, headers, str(sc["id"]))
            elif resource.kind == "startup_script":
                await http.request(
                    "DELETE",
                    f"{api}/startup-scripts/{resource.id}",
                    headers=headers,
                    ok=(200, 404),
                )
            elif resource.kind == "volume":
                await _delete_volume(http, api, headers, resource.id)
            else:
                raise CheckFailure(
                    "error", f"Paperspace: the app holds no {resource.kind} here to stop"
                )


def cache_volume_name(home_id: str) -> str:
    """The name of this home's cache volume (and of its private network)."""
    return f"comfyvn-{home_id}-cache"


def _stated_monthly(ctx: CheckContext) -> float | None:
    """The drive's monthly price as the user read it on Paperspace's billing page (option
    ``cache_volume_monthly_usd``): Paperspace publishes none through its API."""
    text = (ctx.setting("cache_volume_monthly_usd") or "").strip()
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value > 0 else None


def drive_monthly_usd(size_gb: int | None) -> float | None:
    """A shared drive's monthly price: its size at :data:`SHARED_DRIVE_USD_PER_GB_MONTH`."""
    if SHARED_DRIVE_USD_PER_GB_MONTH is None or not size_gb:
        return None
    return round(SHARED_DRIVE_USD_PER_GB_MONTH * size_gb, 2)


@dataclass(frozen=True)
class _CacheDrive:
    """The cache volume as launch uses it (the password never printed)."""

    id: str
    network_id: str
    host: str | None = None
    share: str | None = None
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


def _share_of(mount_point: Any) -> tuple[str, str] | None:
    """``(host, share)`` of a drive's ``mountPoint``: ``\\\\10.64.92.2\\sdvkpg3v2v`` (as the API
    writes it) or ``//10.64.92.2/sdvkpg3v2v``."""
    if not isinstance(mount_point, str):
        return None
    m = re.fullmatch(r"(?:\\\\|//)([^\\/]+)[\\/]([^\\/]+)[\\/]?", mount_point.strip())
    return (m[1], m[2]) if m else None


def _drive(doc: dict[str, Any], network_id: str) -> _CacheDrive:
    share = _share_of(doc.get("mountPoint"))
    user, password = doc.get("username"), doc.get("password")
    return _CacheDrive(
        id=str(doc["id"]),
        network_id=network_id,
        host=share[0] if share else None,
        share=share[1] if share else None,
        username=user if isinstance(user, str) and user else None,
        password=password if isinstance(password, str) and password else None,
    )


def _with_cache(script: str, drive: _CacheDrive) -> str:
    """``script`` with the ``cache`` part before its ``comfyui`` part, and the container given
    the drive's folders (:data:`CACHE_BINDS`); as it was when the drive cannot be mounted."""
    if not (drive.host and drive.share and drive.username and drive.password):
        log.warning(
            "Paperspace: the cache volume %s came without its share or credentials; this "
            "machine runs without it",
            drive.id,
        )
        return script
    try:
        part = cache_mount_part(
            drive.host, drive.share, drive.username, drive.password, CACHE_MOUNT_POINT
        )
        comfyui = script_part(script, "comfyui")
    except (ValueError, KeyError) as exc:
        log.warning(
            "Paperspace: the cache volume %s is not mounted on this machine (%s)",
            drive.id,
            "the start-up script has no comfyui part"
            if isinstance(exc, KeyError)
            else "its share or credentials cannot be written safely",
        )
        return script
    if comfyui.count(_DOCKER_RUN) == 1:
        binds = "".join(f"-v {CACHE_MOUNT_POINT}/{sub}:{path} " for sub, path in CACHE_BINDS)
        new = comfyui.replace(_DOCKER_RUN, f"docker run -d {binds}--name ")
        script = script.replace(
            f"# >>> comfyvn:comfyui\n{comfyui}", f"# >>> comfyvn:comfyui\n{new}"
        )
    else:
        log.warning(
            "Paperspace: the start-up script starts no ComfyUI container; the cache volume is "
            "mounted at %s but given to nothing",
            CACHE_MOUNT_POINT,
        )
    return script.replace("# >>> comfyvn:comfyui\n", f"{part}\n# >>> comfyvn:comfyui\n", 1)


def shutdown_hours(deadline: datetime, now: datetime | None = None) -> int:
    """``autoShutdownTimeout``: whole hours from now to the deadline, rounded up, at least 1."""
    left = (deadline - (now or datetime.now(UTC))).total_seconds()
    return max(1, math.ceil(left / 3600))


def _api(ctx: CheckContext, refs: dict[str, Any] | None = None) -> tuple[str, dict[str, str]]:
    (key,) = ctx.require("api_key")
    api = (refs or {}).get("api") or ctx.endpoint("api")
    if not api:
        raise CheckFailure(
            "misconfigured",
            "Paperspace: the API address is not set; set the base URL",
            fields=["base_url"],
        )
    return str(api).rstrip("/"), {"Authorization": f"Bearer {key}"}


def _region(ctx: CheckContext, zones: tuple[str, ...] | None) -> str:
    """The configured region in the API's form (``ny2``), checked against the job's zones."""
    region = ctx.setting("region") or "NY2"
    if zones is not None:
        zone = next((r.zone for r in ctx.profile.regions if r.id == region), None)
        if zone not in zones:
            raise CheckFailure(
                "misconfigured",
                f"Paperspace: the region {region} is outside the zones this job may run in "
                f"({', '.join(zones)}); choose another Region",
                fields=["region"],
            )
    return region.lower()


def _ssh_port(ctx: CheckContext) -> int:
    value = ctx.setting("ssh_port") or "22"
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise CheckFailure(
            "misconfigured", "Paperspace: SSH port must be a port number", fields=["ssh_port"]
        )
    return port


def _machine(
    data: dict[str, Any], refs: dict[str, Any], fallback: Machine | None = None
) -> Machine:
    raw = str(data.get("state") or "")
    ip = data.get("publicIp")
    return Machine(
        id=str(data.get("id") or (fallback.id if fallback else "")),
        name=str(data.get("name") or (fallback.name if fallback else "")),
        status=_STATUS.get(raw, "booting"),
        raw_status=raw,
        ssh_host=ip if isinstance(ip, str) and ip else None,
        ssh_port=int(refs.get("ssh_port") or 22),
        hourly_usd=None,  # the machine list's usageRate is not documented as a price
        created_at=_when(data.get("dtCreated")) or (fallback.created_at if fallback else None),
        refs=refs,
    )


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _gb(size: Any) -> int | None:
    """A shared drive's ``size`` (bytes) in GB."""
    if isinstance(size, int | float) and not isinstance(size, bool) and size > 0:
        return round(size / 1024**3) if size >= 1024**3 else int(size)
    return None


async def _items(
    http: HttpClient, url: str, headers: dict[str, str], params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every item of a paged listing (``hasMore`` / ``nextPage`` / ``after``)."""
    out: list[dict[str, Any]] = []
    after: str | None = None
    what = url.rsplit("/", 1)[-1]
    for _ in range(_MAX_PAGES):
        query: dict[str, Any] = {"limit": _PAGE, **(params or {})}
        if after:
            query["after"] = after
        page = http.json(await http.get(url, headers=headers, params=query))
        items = page.get("items") if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise CheckFailure(
                "error", f"Paperspace answered the {what} list in an unexpected form"
            )
        out.extend(i for i in items if isinstance(i, dict))
        next_page = page.get("nextPage")
        if not page.get("hasMore") or not isinstance(next_page, str) or not next_page:
            return out
        after = next_page
    raise CheckFailure(
        "error", f"Paperspace: the {what} list has more than {_MAX_PAGES} pages; not read"
    )


def _reason(http: HttpClient, resp: Any) -> str:
    """The API's ``message`` of a refusal (``{"code", "message"}``), one short line."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        return f"{resp.status_code}"
    text = re.sub(r"\s+", " ", message).strip()
    return f"{resp.status_code}: {text[:200]}"


async def _create_script(
    http: HttpClient, api: str, headers: dict[str, str], name: str, script: str
) -> str:
    body = {"name": name, "script": script, "isRunOnce": False}
    resp = await http.request(
        "POST", f"{api}/startup-scripts", headers=headers, json=body, ok=(200, *_REFUSED)
    )
    if resp.status_code != 200:
        # (the API's message is not repeated: it could quote the script, which holds a key)
        raise CheckFailure(
            "permission_denied" if resp.status_code == 403 else "error",
            f"Paperspace refused to create the start-up script {name} "
            f"({resp.status_code}); nothing was rented",
            fields=["api_key"] if resp.status_code == 403 else [],
        )
    doc = http.json(resp)
    if not isinstance(doc, dict) or not doc.get("id"):
        raise CheckFailure("error", f"Paperspace did not say the ID of the start-up script {name}")
    return str(doc["id"])


async def _delete_script(
    http: HttpClient, api: str, headers: dict[str, str], script_id: str
) -> None:
    """Delete a start-up script; a failure is logged (``running`` lists what is left)."""
    try:
        await http.request(
            "DELETE", f"{api}/startup-scripts/{script_id}", headers=headers, ok=(200, 404)
        )
    except CheckFailure as failure:
        log.warning(
            "Paperspace: the start-up script %s was not deleted (%s); `running` lists it",
            script_id,
            failure.message,
        )


async def _available(
    http: HttpClient, api: str, headers: dict[str, str], machine_type: str, region: str
) -> bool | None:
    """``GET /machine-availability``: True, False, or None when it could not be asked."""
    try:
        resp = await http.get(
            f"{api}/machine-availability",
            headers=headers,
            params={"machineType": machine_type, "region": region},
        )
        body = resp.json()
    except (CheckFailure, ValueError):
        return None
    value = body.get("available") if isinstance(body, dict) else None
    return value if isinstance(value, bool) else None


async def _create_refused(
    http: HttpClient,
    api: str,
    headers: dict[str, str],
    resp: Any,
    machine_type: str,
    region: str,
) -> CheckFailure:
    why = _reason(http, resp)
    if resp.status_code == 403:
        return CheckFailure(
            "permission_denied",
            f"Paperspace refused to create a machine ({why}); the API key needs the right to "
            "create machines in the team",
            fields=["api_key"],
        )
    if await _available(http, api, headers, machine_type, region) is False:
        return CheckFailure(
            "quota_exhausted",
            f"Paperspace has no {machine_type} machine free in {region.upper()} right now "
            f"({why}); try later, or choose another Machine type or Region",
            fields=["machine_type", "region"],
        )
    return CheckFailure(
        "misconfigured",
        f"Paperspace refused to create the machine ({machine_type} in {region.upper()}: "
        f"{why}); check Machine type, Region and Template ID",
        fields=["machine_type", "region", "template_id"],
    )


def _ml_in_a_box(name: Any) -> bool:
    return isinstance(name, str) and "mlinabox" in re.sub(r"[^a-z]", "", name.lower())


async def _ml_template(
    http: HttpClient, api: str, headers: dict[str, str], machine_type: str
) -> str:
    """The newest ML-in-a-Box OS template offered on ``machine_type``."""
    templates = [
        t
        for t in await _items(http, f"{api}/os-templates", headers)
        if _ml_in_a_box(t.get("name")) and t.get("id")
    ]

    def offered(t: dict[str, Any]) -> bool:
        kinds = t.get("availableMachineTypes") or []
        return any(
            isinstance(k, dict)
            and k.get("isAvailable") is True
            and str(k.get("machineTypeLabel") or "").casefold() == machine_type.casefold()
            for k in kinds
        )

    chosen = max(
        [t for t in templates if offered(t)] or templates,
        key=lambda t: str(t.get("dtCreated") or ""),
        default=None,
    )
    if chosen is None:
        raise CheckFailure(
            "misconfigured",
            "Paperspace lists no ML-in-a-Box OS template for this team; set Template ID (an "
            "Ubuntu template with Docker and the NVIDIA container toolkit)",
            fields=["template_id"],
        )
    return str(chosen["id"])


async def _find_named(
    http: HttpClient, url: str, headers: dict[str, str], name: str, region: str
) -> dict[str, Any] | None:
    for item in await _items(http, url, headers, {"name": name}):
        if (
            item.get("name") == name
            and _same_region(item.get("region"), region)
            and item.get("id")
            and not item.get("dtDeleted")
        ):
            return item
    return None


def _same_region(value: Any, region: str) -> bool:
    """``ny2`` is ``ny2``, ``NY2`` or ``East Coast (NY2)`` (the older API's form)."""
    text = str(value or "").lower()
    return text == region or text.endswith(f"({region})")


async def _cache_volume(
    ctx: CheckContext,
    http: HttpClient,
    api: str,
    headers: dict[str, str],
    spec: LaunchSpec,
    region: str,
) -> _CacheDrive:
    """This home's cache volume in ``region``, found or made, with its share and credentials."""
    home_id = spec.tags.get(HOME_TAG) or (parse_resource_name(spec.name) or ("",))[0]
    if not home_id:
        raise CheckFailure("error", f"Paperspace: no home in the name {spec.name}")
    name = cache_volume_name(str(home_id))
    drive = await _find_named(http, f"{api}/shared-drives", headers, name, region)
    if drive is not None and drive.get("networkId"):
        found = _drive(drive, str(drive["networkId"]))
        if found.host and found.username and found.password:
            return found
        # (a listing without the credentials: the drive itself has them)
        got = await http.get(f"{api}/shared-drives/{found.id}", headers=headers, ok=(200, 404))
        doc = http.json(got) if got.status_code == 200 else None
        return _drive(doc, found.network_id) if isinstance(doc, dict) and doc.get("id") else found
    network = await _find_named(http, f"{api}/private-networks", headers, name, region)
    if network is None:
        resp = await http.request(
            "POST",
            f"{api}/private-networks",
            headers=headers,
            json={"name": name, "region": region},
            ok=(200, *_REFUSED),
        )
        if resp.status_code != 200:
            raise CheckFailure(
                "misconfigured",
                f"Paperspace refused to create the cache volume's private network "
                f"({_reason(http, resp)}); turn Cache volume off or check the team's limits",
                fields=["cache_volume"],
            )
        network = http.json(resp)
        if not isinstance(network, dict) or not network.get("id"):
            raise CheckFailure("error", "Paperspace did not say the private network's ID")
    size = _cache_gb(ctx)
    resp = await http.request(
        "POST",
        f"{api}/shared-drives",
        headers=headers,
        json={"name": name, "networkId": str(network["id"]), "region": region, "size": size},
        ok=(200, *_REFUSED),
    )
    if resp.status_code != 200:
        raise CheckFailure(
            "misconfigured",
            f"Paperspace refused to create the {size} GB cache volume ({_reason(http, resp)}); "
            "check Cache volume size (250 to 2,000 GB) or turn Cache volume off",
            fields=["cache_volume_gb", "cache_volume"],
        )
    drive = http.json(resp)
    if not isinstance(drive, dict) or not drive.get("id"):
        raise CheckFailure("error", "Paperspace did not say the cache volume's ID")
    log.info("Paperspace: created the cache volume %s (%s, %s GB)", name, drive["id"], size)
    return _drive(drive, str(network["id"]))


def _cache_gb(ctx: CheckContext) -> int:
    value = ctx.setting("cache_volume_gb") or str(DEFAULT_CACHE_GB)
    try:
        size = int(float(value))
    except ValueError:
        size = 0
    if not 250 <= size <= 2000:
        raise CheckFailure(
            "misconfigured",
            "Paperspace: Cache volume size must be 250 to 2,000 GB",
            fields=["cache_volume_gb"],
        )
    return size


async def _delete_volume(
    http: HttpClient, api: str, headers: dict[str, str], drive_id: str
) -> None:
    """Delete the cache volume, then its private network (a failure there is logged)."""
    resp = await http.get(f"{api}/shared-drives/{drive_id}", headers=headers, ok=(200, 404))
    if resp.status_code == 404:
        return
    drive = http.json(resp)
    await http.request("DELETE", f"{api}/shared-drives/{drive_id}", headers=headers, ok=(200, 404))
    network_id = drive.get("networkId") if isinstance(drive, dict) else None
    name = drive.get("name") if isinstance(drive, dict) else None
    if not network_id or not isinstance(name, str):
        return
    try:
        got = await http.get(f"{api}/private-networks/{network_id}", headers=headers, ok=(200, 404))
        network = got.json() if got.status_code == 200 else None
        if isinstance(network, dict) and network.get("name") == name:
            await http.request(
                "DELETE", f"{api}/private-networks/{network_id}", headers=headers, ok=(200, 404)
            )
    except (CheckFailure, ValueError) as exc:
        log.warning(
            "Paperspace: the cache volume's private network %s was not deleted (%s)",
            network_id,
            getattr(exc, "message", exc),
        )


def _summary(lead: str, detail: dict[str, Any]) -> str:
    email, team = detail.get("email"), detail.get("team")
    who = ", ".join([*([email] if email else []), *([f"team {team}"] if team else [])])
    parts = [f"{lead} ({who})" if who else lead]
    n = detail["machines"]
    parts.append(
        f"{n}{'+' if detail.get('machines_more') else ''} machine{'s' if n != 1 else ''}, "
        f"{detail['machines_running']} running"
    )
    project = detail.get("project")
    if project is None:
        parts.append("Project is not set: set it before running jobs here")
    elif detail.get("project_checked"):
        parts.append(f"project {project['name']} found")
    else:
        parts.append(f"project {project['name']} not checked ({detail.get('project_note')})")
    available = detail.get("machine_type_available")
    if available is False:
        parts.append(
            f"warning: Paperspace has no {detail['machine_type']} machine free in "
            f"{detail['region']} right now (jobs sent here fail until it has one)"
        )
    elif available is None and "machine_type" in detail:
        parts.append(f"{detail['machine_type']} availability in {detail['region']} not checked")
    return "; ".join(parts)


def _not_accepted(what: str) -> CheckFailure:
    return CheckFailure(
        "invalid_credentials",
        f"Paperspace answered the machines list with {what}: it looks like the API key was not "
        "accepted. Paste the key again, or create a new one under your team's Settings → API "
        "Keys",
        fields=["api_key"],
    )


async def _check(ctx: CheckContext) -> dict[str, Any]:
    (key,) = ctx.require("api_key")
    api = ctx.endpoint("api")
    if api is None:
        raise CheckFailure(
            "misconfigured",
            "Paperspace: the API address is not set; set the base URL",
            fields=["base_url"],
        )
    headers = {"Authorization": f"Bearer {key}"}
    async with ctx.http(auth_fields=["api_key"]) as http:
        resp = await http.get(f"{api}/machines", headers=headers)
        if not resp.content.strip():
            raise _not_accepted("an empty body")
        page = http.json(resp)
        if page is None:
            raise _not_accepted("null")
        items = page.get("items") if isinstance(page, dict) else None
        if not isinstance(items, list) or not isinstance(page.get("hasMore"), bool):
            raise _not_accepted("a body without the machine list")
        detail: dict[str, Any] = {
            "identity": None,
            "machines": len(items),
            "machines_more": page["hasMore"],
            "machines_running": sum(
                1 for m in items if isinstance(m, dict) and m.get("state") == "ready"
            ),
        }
        detail.update(await _session(http, f"{api}/auth/session", headers))
        project = ctx.value("project")
        if project is None:
            detail["project"] = None
        else:
            try:
                detail.update(await _project(http, f"{api}/projects", headers, project))
            except CheckFailure as failure:
                failure.detail = {**detail, **failure.detail}
                raise
        machine_type = ctx.setting("machine_type") or DEFAULT_MACHINE_TYPE
        region = _region(ctx, None)
        detail["machine_type"] = machine_type
        detail["region"] = region.upper()
        detail["machine_type_available"] = await _available(
            http, api, headers, machine_type, region
        )
    return detail


async def _session(http: HttpClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    try:
        resp = await http.get(url, headers=headers)
        body = resp.json() if resp.content.strip() else None
    except (CheckFailure, ValueError):
        return {}
    if not isinstance(body, dict):
        return {}
    user: dict[str, Any] = body["user"] if isinstance(body.get("user"), dict) else {}
    team: dict[str, Any] = body["team"] if isinstance(body.get("team"), dict) else {}
    email = user.get("email") if isinstance(user.get("email"), str) else None
    team_name = team.get("namespace") or team.get("id")
    out: dict[str, Any] = {"email": email, "user_id": user.get("id"), "team": team_name}
    if email or team_name:
        out["identity"] = email or f"team {team_name}"
    return out


async def _project(
    http: HttpClient, url: str, headers: dict[str, str], wanted: str
) -> dict[str, Any]:
    after: str | None = None
    for _ in range(_MAX_PROJECT_PAGES):
        params: dict[str, Any] = {"limit": 120}
        if after:
            params["after"] = after
        try:
            resp = await http.get(url, headers=headers, params=params)
            page = resp.json()
        except CheckFailure as failure:
            return _unchecked(wanted, f"the project list could not be read: {failure.code}")
        except ValueError:
            return _unchecked(wanted, "the project list was not JSON")
        items = page.get("items") if isinstance(page, dict) else None
        if not isinstance(items, list):
            return _unchecked(wanted, "the project list came back in an unexpected form")
        for item in items:
            if not isinstance(item, dict):
                continue
            pid, name = item.get("id"), item.get("name")
            if wanted == pid or (isinstance(name, str) and name.casefold() == wanted.casefold()):
                return {
                    "project": {"id": pid, "name": name},
                    "project_checked": True,
                }
        next_page = page.get("nextPage")
        if not page.get("hasMore") or not isinstance(next_page, str) or not next_page:
            raise CheckFailure(
                "misconfigured",
                f"Paperspace: the API key works, but its team has no project with the name or "
                f"ID {wanted!r}; check Project (console → Projects) or create the project",
                fields=["project"],
            )
        after = next_page
    return _unchecked(wanted, f"not among the first {_MAX_PROJECT_PAGES} pages of projects")


def _unchecked(wanted: str, why: str) -> dict[str, Any]:
    return {
        "project": {"id": None, "name": wanted},
        "project_checked": False,
        "project_note": why,
    }
