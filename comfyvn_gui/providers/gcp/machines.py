"""Google Compute Engine instances for dispatch: one VM per job (not wired into dispatch yet).

What is sent (Compute Engine REST v1 at the ``compute`` endpoint, ``Authorization: Bearer``
the access token the service-account key gets, as validate does — one token is reused for up
to 45 minutes of its hour, and a 401 signs in again once):

* launch — with the ``bucket`` option set, first ``GET {storage}/storage/v1/b/{bucket}`` (the
  seed's "Keep GCS + Translation API co-located": a bucket that is not in the provider's region,
  or is a multi-region, is ``misconfigured`` naming ``bucket`` before anything is created — the
  same rule as validate, :func:`.check._bucket_location`). Without a ``zone`` option, ``GET
  .../aggregated/acceleratorTypes`` picks the first zone of the region offering the GPU. Then
  ``POST /compute/v1/projects/{p}/zones/{zone}/instances?requestId=<uuid5 of the resource
  name>`` (Compute Engine ignores a repeated ``requestId`` for 60 minutes: a retried launch gets
  the same operation and creates nothing) with:

  - ``name`` = the resource name; ``machineType`` ``zones/{zone}/machineTypes/{machine_type}``;
  - ``guestAccelerators`` ``[{acceleratorType: zones/{zone}/acceleratorTypes/<gpu>,
    acceleratorCount: 1}]`` for an N1 type only (G2, A2 and A3 types come with their GPU;
    another family cannot take one: ``misconfigured`` naming ``machine_type``);
  - one boot disk: ``initializeParams.sourceImage`` = the ``image`` option (default: Google's
    Deep Learning VM family ``common-cu129-ubuntu-2404-nvidia-580``: Ubuntu 24.04, NVIDIA
    driver 580, Docker with the NVIDIA container toolkit), ``diskSizeGb`` = max(the job's
    disk, :data:`MIN_DISK_GB`), ``autoDelete`` true (the disk goes with the VM), the labels;
  - ``networkInterfaces`` ``[{network: global/networks/default, accessConfigs: [{type:
    ONE_TO_ONE_NAT, name: "External NAT"}]}]`` (an ephemeral external IP);
  - ``metadata.items``: ``startup-script`` = the start-up script (the guest agent runs it at every
    boot), ``ssh-keys`` ``<ssh_user>:<the one-time client key>`` (default ``ubuntu``),
    ``block-project-ssh-keys`` TRUE (no project-wide key reaches this VM), ``enable-oslogin`` FALSE
    (so the ``ssh-keys`` entry counts), and ``user-data`` — a cloud-config whose ``write_files``
    appends ``[InstanceSetup] set_host_keys = false`` to ``/etc/default/instance_configs.cfg``.
    Google's guest agent generates new SSH host keys at a VM's first boot (and publishes them as the
    guest attributes ``hostkeys/``); ``set_host_keys`` in that file is the documented switch
    (github.com/GoogleCloudPlatform/guest-agent, Configuration; there is no metadata key for it),
    and cloud-init writes the file before the agent starts (cloud-init's first stage runs before
    ``network-online.target``, the agent after it). The start-up script then installs the app's host
    key itself. On an image without cloud-init the agent's keys may be written first; the script
    replaces them, and the boot wait treats any other key as "not ready";
  - ``labels`` = the job's tags (keys and values checked against Google's label rule);
  - ``scheduling``: ``onHostMaintenance`` TERMINATE (GPUs cannot live-migrate),
    ``automaticRestart`` false, ``maxRunDuration.seconds`` = seconds until the hard deadline
    less :data:`DELETE_LEAD_S` (so Google deletes the VM before the script's own shutdown could
    leave it stopped with a billing disk; at least 30, Google's minimum),
    ``instanceTerminationAction`` DELETE — Compute Engine itself deletes the VM when that runs
    out, whatever the VM is doing — and ``provisioningModel`` SPOT only when the advice chose a
    Spot offer (``LaunchSpec.spot``), never from the provider's meta alone;
  - no ``serviceAccounts``: the VM gets no Google credentials at all.

  The returned zone operation is polled (``GET .../zones/{zone}/operations/{op}``, with
  ``asyncio.sleep`` between reads) until ``DONE``. An operation error
  ``ZONE_RESOURCE_POOL_EXHAUSTED(_WITH_DETAILS)`` / ``QUOTA_EXCEEDED`` (or a 403 ``quotaExceeded``
  / 429 at once) is ``quota_exhausted``; any failed insert operation is followed by a ``DELETE``
  of the instance name (404 is fine) so nothing is left. 403 ``Required '<perm>' permission`` is
  ``permission_denied`` naming the permission; 409 ``alreadyExists`` (the same name made by an
  earlier launch) returns that VM.
* find — ``GET .../zones/{zone}/instances/{name}`` (404: None).
* describe — the same GET at the launch-time project, zone and endpoint (refs):
  ``PROVISIONING``/``STAGING``/``REPAIRING`` booting, ``RUNNING`` running,
  ``STOPPING``/``SUSPENDING``/``SUSPENDED``/``TERMINATED`` stopped (the boot disk still bills),
  404 released. SSH: ``networkInterfaces[0].accessConfigs[0].natIP``, port 22.
* release — ``DELETE .../zones/{zone}/instances/{name}`` and the operation awaited (404:
  released). The boot disk goes with it (``autoDelete``).
* resources — ``GET .../aggregated/instances?filter=labels.comfyvn-gui-home = "<home>"`` (every
  zone; the API's filter syntax ``labels.<key> = "<value>"``): kind machine, id = the instance
  name (``running stop`` takes ``gcp:<name>``), the job from the ``comfyvn-gui-job`` label.
* stop — the instance's zone is looked up (``aggregated/instances`` with ``filter=name =
  "<name>"``), then it is deleted as release does.

Refs: ``project``, ``zone``, ``instance`` (the name) and ``endpoint`` (the compute base).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from comfyvn_gui.core.machines import HOME_TAG, JOB_TAG
from comfyvn_gui.providers.base import CheckContext, CheckFailure
from comfyvn_gui.providers.machine import LaunchSpec, Machine, MachineStatus, Resource

from .api import _api_disabled, _call, _check_address, _disabled_failure, _endpoint, _google_error
from .auth import _parse_key, _sign_in, _token_url
from .check import _accelerator_offers, _bucket_location, _zones_offering
from .settings import KEY_FIELD, MACHINE_FAMILY_GPUS, _Session, _settings

if TYPE_CHECKING:
    import httpx

    from comfyvn_gui.providers.http_client import HttpClient

__all__ = ["DEFAULT_IMAGE", "GUEST_AGENT_CONFIG", "GcpMachines", "console_url", "request_id"]

T = TypeVar("T")

#: Google's Deep Learning VM image family: Ubuntu 24.04, NVIDIA driver 580, CUDA 12.9, Docker.
DEFAULT_IMAGE = (
    "projects/deeplearning-platform-release/global/images/family/"
    "common-cu129-ubuntu-2404-nvidia-580"
)
DEFAULT_SSH_USER = "ubuntu"
#: The smallest boot disk sent (GB): the Deep Learning VM images are larger than a job's 40 GB.
MIN_DISK_GB = 100
#: Google's bounds on scheduling.maxRunDuration (seconds).
MIN_RUN_S = 30
MAX_RUN_S = 120 * 86400
#: Google's DELETE comes this long before the start-up script's own shutdown: a VM the script
#: shut down first would be TERMINATED, not deleted (its boot disk would still bill, and a
#: stopped VM's run time no longer counts toward maxRunDuration). Google may act up to 30 s
#: late.
DELETE_LEAD_S = 120
#: How long a zone operation is waited for (seconds), and the pauses between reads.
OP_WAIT_S = 180.0
OP_POLL_S = (0.2, 2.0)
#: How long an access token is reused (Google's last an hour).
TOKEN_REUSE_S = 45 * 60
GUEST_AGENT_CONFIG = (
    "#cloud-config\n"
    "write_files:\n"
    "  - path: /etc/default/instance_configs.cfg\n"
    "    append: true\n"
    "    content: |\n"
    "      [InstanceSetup]\n"
    "      set_host_keys = false\n"
)
_CAPACITY = ("ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_PERMISSION = re.compile(r"Required '(compute\.[A-Za-z.]+)' permission")
_STATUS: dict[str, MachineStatus] = {
    "PROVISIONING": "booting",
    "STAGING": "booting",
    "REPAIRING": "booting",
    "RUNNING": "running",
    "STOPPING": "stopped",
    "SUSPENDING": "stopped",
    "SUSPENDED": "stopped",
    "TERMINATED": "stopped",
}
_REQUEST_NS = uuid.UUID("3f0c5b0e-6a43-4b59-9f53-8c1a0d2e7b61")


def console_url(project: str) -> str:
    return f"https://console.cloud.google.com/compute/instances?project={quote(project, safe='')}"


def request_id(name: str) -> str:
    """The ``requestId`` of the launch of ``name`` (the same for every retry)."""
    return str(uuid.uuid5(_REQUEST_NS, name))


# --------------------------------------------------------------------------- the API


@dataclass
class _Token:
    token: str
    email: str
    until: float


_TOKENS: dict[str, _Token] = {}


class _Compute:
    """Authorised Compute Engine calls of one adapter call (a token reused across calls)."""

    def __init__(self, ctx: CheckContext, http: HttpClient, base: str | None = None) -> None:
        self.ctx = ctx
        self.http = http
        self.settings = _settings(ctx)
        if base is None:
            base = _endpoint(ctx, "compute")
        else:
            _check_address(base, "compute")
        self.base = base
        self.session: _Session | None = None
        info = _parse_key(self.settings.key_text)
        self._token_key = hashlib.sha256(
            f"{_token_url(ctx, info)}\0{self.settings.key_text}".encode()
        ).hexdigest()

    async def _session(self, fresh: bool = False) -> _Session:
        if self.session is not None and not fresh:
            return self.session
        cached = _TOKENS.get(self._token_key)
        if cached is not None and cached.until > time.monotonic() and not fresh:
            self.session = _Session(self.settings, self.http, cached.token, cached.email, {})
            return self.session
        session = await _sign_in(self.ctx, self.http, self.settings)
        _TOKENS[self._token_key] = _Token(
            session.token, session.email, time.monotonic() + TOKEN_REUSE_S
        )
        self.session = session
        return session

    async def checked(self, fn: Callable[[CheckContext, _Session], Awaitable[T]]) -> T:
        """``fn(ctx, session)`` (a check of :mod:`.check`); a reused token that Google no
        longer takes (401) is replaced once."""
        session = await self._session()
        cached = session.detail == {}
        try:
            return await fn(self.ctx, session)
        except CheckFailure as failure:
            if not cached or failure.code != "invalid_credentials":
                raise
        _TOKENS.pop(self._token_key, None)
        return await fn(self.ctx, await self._session(fresh=True))

    @property
    def email(self) -> str:
        return self.session.email if self.session else "the service account"

    def project_url(self, project: str) -> str:
        return f"{self.base}/compute/v1/projects/{quote(project, safe='')}"

    async def request(
        self, method: str, url: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any
    ) -> httpx.Response:
        ok_all = (*ok, 400, 401, 403, 404, 409, 429)
        session = await self._session()
        resp = await _call(session, method, url, "compute", ok=ok_all, **kwargs)
        if resp.status_code == 401:  # an expired or revoked token: sign in once more
            _TOKENS.pop(self._token_key, None)
            session = await self._session(fresh=True)
            resp = await _call(session, method, url, "compute", ok=ok_all, **kwargs)
        return resp

    def body(self, resp: httpx.Response) -> dict[str, Any]:
        body = self.http.json(resp)
        if not isinstance(body, dict):
            raise CheckFailure(
                "error", "Google Cloud answered with something other than a JSON object"
            )
        return body

    def failure(self, resp: httpx.Response, action: str, fields: list[str]) -> CheckFailure:
        """What an unexpected answer to ``action`` means."""
        err = _google_error(resp)
        code = resp.status_code
        name = self.ctx.name
        if code == 403 and _api_disabled(err) and self.session is not None:
            return _disabled_failure(self.session, err, "compute.googleapis.com")
        if code == 429 or "rateLimitExceeded" in err.reasons:
            return CheckFailure(
                "rate_limited", f"{name}: Compute Engine is rate-limiting {action}; try again"
            )
        if "quotaExceeded" in err.reasons or "QUOTA_EXCEEDED" in err.reasons:
            return _quota(self.ctx, self.settings.region, "QUOTA_EXCEEDED")
        if code == 403:
            m = _PERMISSION.search(err.message)
            permission = m.group(1) if m else None
            return CheckFailure(
                "permission_denied",
                f"{name}: the service account {self.email} may not {action}"
                + (f" (it lacks {permission})" if permission else "")
                + "; grant it the Compute Instance Admin (v1) role on the project",
                fields=[KEY_FIELD],
                detail={"missing_permissions": [permission] if permission else []},
            )
        if code == 401:
            return CheckFailure(
                "invalid_credentials",
                f"{name}: Google rejected the access token of {self.email}; validate the key",
                fields=[KEY_FIELD],
            )
        if code == 400:
            return CheckFailure(
                "misconfigured",
                f"{name}: Compute Engine refused to {action} (400"
                + (f", {err.reasons[0]}" if err.reasons else "")
                + "); check "
                + ", ".join(fields),
                fields=fields,
                detail={"google_message": err.message[:300]},
            )
        if code == 404:
            return CheckFailure(
                "misconfigured",
                f"{name}: Compute Engine found no such resource to {action} (404); check "
                + ", ".join(fields),
                fields=fields,
                detail={"google_message": err.message[:300]},
            )
        return CheckFailure("error", f"{name}: Compute Engine answered {code} to {action}")

    async def wait(self, op: dict[str, Any], project: str, zone: str) -> dict[str, Any]:
        """The operation once DONE (or as last read when the wait runs out)."""
        name = str(op.get("name") or "")
        url = (
            f"{self.project_url(project)}/zones/{quote(zone, safe='')}/operations/"
            f"{quote(name, safe='')}"
        )
        loop = asyncio.get_running_loop()
        until = loop.time() + min(OP_WAIT_S, max(0.0, self.ctx.remaining() - 1.0))
        pause = OP_POLL_S[0]
        while op.get("status") != "DONE" and name:
            if loop.time() + pause >= until:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, OP_POLL_S[1])
            resp = await self.request("GET", url)
            if resp.status_code != 200:
                raise self.failure(resp, "read the operation", ["zone"])
            op = self.body(resp)
        return op


def _quota(ctx: CheckContext, where: str, code: str) -> CheckFailure:
    if code in _CAPACITY:
        return CheckFailure(
            "quota_exhausted",
            f"{ctx.name}: zone {where} has no capacity for this machine type and GPU right now "
            f"({code}); try again later, or pick another zone in the provider's settings",
            fields=["zone"],
            detail={"google_error": code},
        )
    return CheckFailure(
        "quota_exhausted",
        f"{ctx.name}: the project's quota does not allow another GPU VM in {where} ({code}); "
        "request a GPU quota increase (IAM & Admin → Quotas) or end other VMs",
        fields=["region"],
        detail={"google_error": code},
    )


# --------------------------------------------------------------------------- helpers


def _labels(tags: dict[str, str]) -> dict[str, str]:
    for key, value in tags.items():
        if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
            raise CheckFailure(
                "error",
                f"Google Cloud: the label {key}={value} does not follow Google's label rule "
                "(lower-case letters, digits, _ and -)",
            )
    return dict(tags)


def _run_seconds(deadline: datetime) -> int:
    left = int((deadline - datetime.now(UTC)).total_seconds()) - DELETE_LEAD_S
    return max(MIN_RUN_S, min(MAX_RUN_S, left))


def _accelerator_for(ctx: CheckContext, machine_type: str, accelerator: str | None) -> bool:
    """Whether the launch attaches the GPU itself (N1), or the type carries one."""
    if any(machine_type.startswith(prefix) for prefix, _ in MACHINE_FAMILY_GPUS):
        return False
    if machine_type.startswith("n1-"):
        if accelerator is None:
            raise CheckFailure(
                "misconfigured",
                f"{ctx.name}: the provider's GPU is not a Compute Engine GPU, so none can be "
                f"attached to {machine_type}; choose a GPU Compute Engine offers",
                fields=["gpu"],
            )
        return True
    raise CheckFailure(
        "misconfigured",
        f"{ctx.name}: machine type {machine_type} takes no GPU; use an N1 type (a GPU is "
        "attached) or a G2/A2/A3 type (which come with theirs), e.g. g2-standard-4",
        fields=["machine_type"],
    )


def _created(inst: dict[str, Any]) -> datetime | None:
    text = inst.get("creationTimestamp")
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _nat_ip(inst: dict[str, Any]) -> str | None:
    for nic in inst.get("networkInterfaces") or []:
        for ac in (nic or {}).get("accessConfigs") or []:
            ip = (ac or {}).get("natIP")
            if isinstance(ip, str) and ip:
                return ip
    return None


def _machine(inst: dict[str, Any], refs: dict[str, Any]) -> Machine:
    raw = str(inst.get("status") or "")
    status = _STATUS.get(raw, "booting")
    running = status == "running"
    host = _nat_ip(inst) if running else None
    return Machine(
        id=str(inst.get("id") or inst.get("name") or refs.get("instance")),
        name=str(inst.get("name") or refs.get("instance") or ""),
        status=status,
        raw_status=raw,
        ssh_host=host,
        ssh_port=22 if host else None,
        created_at=_created(inst),
        refs=refs,
    )


def _zone_of(inst: dict[str, Any]) -> str:
    return str(inst.get("zone") or "").rsplit("/", 1)[-1]


def _refs(project: str, zone: str, name: str, base: str) -> dict[str, Any]:
    return {"project": project, "zone": zone, "instance": name, "endpoint": base}


# --------------------------------------------------------------------------- the adapter


class GcpMachines:
    """The dispatch side of Google Compute Engine (see the module's text)."""

    deadman = "shutdown"
    mode = "vm"
    default_ssh_user = DEFAULT_SSH_USER
    default_image = "yanwk/comfyui-boot:cu128-slim"  # the ComfyUI container (comfyui_image)
    deadman_words = (
        "Two guards end a Google Cloud VM without the app: Google's own maxRunDuration with "
        "the DELETE action deletes the VM and its disk two minutes before the deadline, even "
        "if the VM hangs or the app is gone; should that fail, the start-up script shuts the "
        "system down at the deadline (the GPU stops billing; the boot disk bills until the "
        "VM is deleted)"
    )

    async def launch(self, ctx: CheckContext, spec: LaunchSpec) -> Machine:
        if not _NAME.fullmatch(spec.name):
            raise CheckFailure(
                "error", f"{ctx.name}: {spec.name} is not a valid Compute Engine instance name"
            )
        labels = _labels(spec.tags)
        user = (ctx.setting("ssh_user") or DEFAULT_SSH_USER).strip()
        async with ctx.http(auth_fields=[KEY_FIELD]) as http:
            api = _Compute(ctx, http)
            s = api.settings
            if s.bucket:
                await api.checked(_bucket_location)  # the seed's region rule, before creating
            machine_type = s.machine_type or ""
            if not machine_type:
                raise CheckFailure(
                    "misconfigured", f"{ctx.name}: machine_type is not set", fields=["machine_type"]
                )
            attach = _accelerator_for(ctx, machine_type, s.accelerator)
            zone: str = s.zone if s.zone else await api.checked(_pick_zone)
            image = ctx.setting("image") or DEFAULT_IMAGE
            price = None
            try:
                if machine_type == ctx.profile.field("machine_type").default:
                    price = ctx.profile.pricing.hourly_usd
            except KeyError:
                pass
            scheduling: dict[str, Any] = {
                "onHostMaintenance": "TERMINATE",
                "automaticRestart": False,
                "maxRunDuration": {"seconds": str(_run_seconds(spec.deadline))},
                "instanceTerminationAction": "DELETE",
            }
            # Spot only when the advice chose a Spot offer, whose spot_interruption warning the
            # user acknowledged (as on AWS); the provider's own Spot setting alone never does.
            if spec.spot:
                scheduling["provisioningModel"] = "SPOT"
            body: dict[str, Any] = {
                "name": spec.name,
                "machineType": f"zones/{zone}/machineTypes/{machine_type}",
                "labels": labels,
                "disks": [
                    {
                        "boot": True,
                        "autoDelete": True,
                        "initializeParams": {
                            "sourceImage": image,
                            "diskSizeGb": str(max(spec.disk_gb, MIN_DISK_GB)),
                            "labels": labels,
                        },
                    }
                ],
                "networkInterfaces": [
                    {
                        "network": "global/networks/default",
                        "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT"}],
                    }
                ],
                "metadata": {
                    "items": [
                        {"key": "startup-script", "value": spec.script_at(price)},
                        {"key": "user-data", "value": GUEST_AGENT_CONFIG},
                        {
                            "key": "ssh-keys",
                            "value": f"{user}:{spec.client_public_key.strip()}",
                        },
                        {"key": "block-project-ssh-keys", "value": "TRUE"},
                        {"key": "enable-oslogin", "value": "FALSE"},
                    ]
                },
                "scheduling": scheduling,
            }
            if attach:
                body["guestAccelerators"] = [
                    {
                        "acceleratorType": f"zones/{zone}/acceleratorTypes/{s.accelerator}",
                        "acceleratorCount": 1,
                    }
                ]
            url = f"{api.project_url(s.project)}/zones/{quote(zone, safe='')}/instances"
            resp = await api.request(
                "POST", url, params={"requestId": request_id(spec.name)}, json=body
            )
            if resp.status_code == 409:
                found = await _get(api, s.project, zone, spec.name)
                if found is not None:
                    return _machine(found, _refs(s.project, zone, spec.name, api.base))
            if resp.status_code != 200:
                raise api.failure(resp, f"create a VM in {zone}", ["machine_type", "image", "zone"])
            op = await api.wait(api.body(resp), s.project, zone)
            errors = ((op.get("error") or {}).get("errors")) or []
            if errors:
                await _delete(api, s.project, zone, spec.name, wait=False)
                code = str((errors[0] or {}).get("code") or "")
                if code in _CAPACITY:
                    raise _quota(ctx, zone, code)
                if code == "QUOTA_EXCEEDED":
                    raise _quota(ctx, s.region, code)
                raise CheckFailure(
                    "error",
                    f"{ctx.name}: Compute Engine could not create the VM in {zone} ({code}); "
                    "try again later",
                    detail={"google_error": code},
                )
            refs = _refs(s.project, zone, spec.name, api.base)
            inst = await _get(api, s.project, zone, spec.name)
            if inst is None:
                return Machine(
                    id=spec.name,
                    name=spec.name,
                    status="booting",
                    raw_status="PROVISIONING",
                    created_at=datetime.now(UTC),
                    refs=refs,
                )
            machine = _machine(inst, refs)
            machine.created_at = machine.created_at or datetime.now(UTC)
            return machine

    async def find(self, ctx: CheckContext, name: str) -> Machine | None:
        async with ctx.http(auth_fields=[KEY_FIELD]) as http:
            api = _Compute(ctx, http)
            s = api.settings
            if s.zone:
                zones = [s.zone]
            else:
                zones = [_zone_of(i) for i in await _listed(api, s.project, f'name = "{name}"')]
            for zone in zones:
                inst = await _get(api, s.project, zone, name)
                if inst is not None:
                    return _machine(inst, _refs(s.project, zone, name, api.base))
        return None

    async def describe(self, ctx: CheckContext, machine: Machine) -> Machine:
        refs = dict(machine.refs)
        async with ctx.http(auth_fields=[KEY_FIELD]) as http:
            api = _Compute(ctx, http, refs.get("endpoint"))
            project = str(refs.get("project") or api.settings.project)
            zone = str(refs.get("zone") or api.settings.zone or "")
            name = str(refs.get("instance") or machine.name)
            inst = await _get(api, project, zone, name)
        if inst is None:
            return Machine(
                id=machine.id,
                name=machine.name,
                status="released",
                raw_status="gone",
                created_at=machine.created_at,
                refs=refs,
            )
        described = _machine(inst, refs)
        described.created_at = machine.created_at or described.created_at
        return described

    async def release(self, ctx: CheckContext, machine: Machine) -> None:
        refs = machine.refs
        async with ctx.http(auth_fields=[KEY_FIELD]) as http:
            api = _Compute(ctx, http, refs.get("endpoint"))
            project = str(refs.get("project") or api.settings.project)
            zone = str(refs.get("zone") or api.settings.zone or "")
            await _delete(api, project, zone, str(refs.get("instance") or machine.name))

    async def resources(self, ctx: CheckContext, home_id: str) -> list[Resource]:
        async with ctx.http(auth_fields=[KEY_FIELD]) as http:
            api = _Compute(ctx, http)
            project = api.settings.project
            found = await _listed(api, project, f'labels.{HOME_TAG} = "{home_id}"')
        out: list[Resource] = []
        for inst in found:
            job = str((inst.get("labels") or {}).get(JOB_TAG) or "")
            out.append(
                Resource(
                    kind="machine",
                    id=str(inst.get("name") or ""),
                    name=str(inst.get("name") or ""),
                    job_id=int(job) if job.isdigit() else None,
                    status=str(inst.get("status") or ""),
                    created_at=_created(inst),
                    console_url=console_url(project),
                )
            )
        return out

    async def stop(self, ctx: CheckContext, resource: Resource) -> None:
        async with ctx.http(auth_fields=[KEY_FIELD]) as http:
            api = _Compute(ctx, http)
            project = api.settings.project
            for inst in await _listed(api, project, f'name = "{resource.id}"'):
                await _delete(api, project, _zone_of(inst), resource.id)


# --------------------------------------------------------------------------- calls


async def _pick_zone(ctx: CheckContext, session: _Session) -> str:
    s = session.settings
    if s.accelerator is None:
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: the zone is not set and the provider's GPU is not a Compute Engine "
            "GPU to find one by; enter a zone in the provider's settings",
            fields=["zone"],
        )
    zones = _zones_offering(s, await _accelerator_offers(ctx, session))
    if not zones:
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: no zone of {s.region} offers the {s.gpu}; pick another region",
            fields=["region"],
        )
    return zones[0]


async def _get(api: _Compute, project: str, zone: str, name: str) -> dict[str, Any] | None:
    url = (
        f"{api.project_url(project)}/zones/{quote(zone, safe='')}/instances/{quote(name, safe='')}"
    )
    resp = await api.request("GET", url)
    if resp.status_code == 404:
        return None
    if resp.status_code != 200:
        raise api.failure(resp, f"read VM {name}", ["zone"])
    return api.body(resp)


async def _delete(api: _Compute, project: str, zone: str, name: str, *, wait: bool = True) -> None:
    url = (
        f"{api.project_url(project)}/zones/{quote(zone, safe='')}/instances/{quote(name, safe='')}"
    )
    resp = await api.request("DELETE", url)
    if resp.status_code == 404:
        return  # gone: released
    if resp.status_code != 200:
        raise api.failure(resp, f"delete VM {name}", ["zone"])
    if wait:
        op = await api.wait(api.body(resp), project, zone)
        errors = ((op.get("error") or {}).get("errors")) or []
        if errors and not any((e or {}).get("code") == "RESOURCE_NOT_FOUND" for e in errors):
            code = str((errors[0] or {}).get("code") or "")
            raise CheckFailure(
                "error",
                f"{api.ctx.name}: Compute Engine could not delete VM {name} ({code}); it is "
                "retried",
                detail={"google_error": code},
            )


async def _listed(api: _Compute, project: str, expression: str) -> list[dict[str, Any]]:
    """Every instance of the project matching ``expression`` (all zones, every page)."""
    url = f"{api.project_url(project)}/aggregated/instances"
    out: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(20):
        params: dict[str, str] = {"filter": expression}
        if token:
            params["pageToken"] = token
        resp = await api.request("GET", url, params=params)
        if resp.status_code != 200:
            raise api.failure(resp, "list VMs", ["project_id"])
        body = api.body(resp)
        items = body.get("items")
        if isinstance(items, dict):
            for scope in items.values():
                for inst in (scope or {}).get("instances") or []:
                    if isinstance(inst, dict):
                        out.append(inst)
        next_token = body.get("nextPageToken")
        if not isinstance(next_token, str) or not next_token:
            break
        token = next_token
    return out
