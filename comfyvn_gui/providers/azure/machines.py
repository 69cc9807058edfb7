"""Azure virtual machines for dispatch: one VM per job in the ``resource_group`` option.

What is sent (Azure Resource Manager REST at the ``management`` endpoint, with the Entra ID
token the check obtains (:mod:`.token`); every request carries ``api-version`` and
``Authorization: Bearer``; errors are ``{"error": {"code", "message"}}``). ``{rg}`` is
``/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers``, ``<name>`` the
job's resource name, and every resource carries the tags ``Name`` = ``<name>``,
``comfyvn-gui-home`` and ``comfyvn-gui-job``:

* launch — refused before anything is sent when ``resource_group`` is not set
  (``misconfigured`` naming it), when the region is outside the job's residency zones, or when
  the hard deadline is more than 24 hours away (see the dead-man switch below). Then
  ``GET {rg}/Microsoft.Compute/virtualMachines/<name>``: a VM of that name (a previous launch
  that died before it was written down) is returned as it is — its schedule is created if it
  is missing — and nothing else is created. Otherwise, in this order, each a ``PUT``
  (create-or-update, so a retried launch reuses what a dead one made):

  1. ``Microsoft.Network/networkSecurityGroups/<name>-nsg`` (api 2024-05-01): one rule,
     inbound TCP 22 from anywhere, priority 1000 (Azure's default rules deny every other
     inbound port: a Standard public IP is closed without a security group);
  2. ``Microsoft.Network/virtualNetworks/<name>-vnet``: ``10.73.0.0/16`` with one subnet
     ``default`` ``10.73.0.0/24``;
  3. ``Microsoft.Network/publicIPAddresses/<name>-ip``: ``sku`` Standard / Regional,
     ``publicIPAllocationMethod`` Static, IPv4, ``deleteOption`` Delete;
  4. ``Microsoft.Network/networkInterfaces/<name>-nic``: one IP configuration on that subnet
     with that public IP, and the security group;
  5. ``Microsoft.Compute/virtualMachines/<name>`` (api 2024-07-01): ``hardwareProfile.vmSize``
     (the ``vm_size`` option), ``storageProfile.imageReference`` (the ``image`` option: a URN
     ``publisher:offer:sku:version`` or an image resource ID), ``osDisk`` ``<name>-osdisk``
     (``createOption`` FromImage, ``deleteOption`` Delete, StandardSSD_LRS),
     ``osProfile.customData`` = base64 of the start-up script (cloud-init runs a ``#!/bin/sh``
     user script), ``adminUsername`` = the ``ssh_user`` option (default ``azureuser``),
     ``linuxConfiguration.disablePasswordAuthentication`` true with the job's one-time client
     key in ``ssh.publicKeys`` (path ``/home/<user>/.ssh/authorized_keys``), and the NIC with
     ``deleteOption`` Delete. Launch waits for the VM's creation to finish (allocation failures
     are only known then);
  6. ``Microsoft.DevTestLab/schedules/shutdown-computevm-<name>`` (api 2018-09-15):
     ``taskType`` ComputeVmShutdownTask, ``dailyRecurrence.time`` = the hard deadline's
     ``HHmm`` in UTC, ``timeZoneId`` UTC, ``targetResourceId`` the VM, ``status`` Enabled,
     notifications Disabled.

  PUTs answer 200/201; a 201/202 is followed through its ``Azure-AsyncOperation`` header
  (else ``Location``; else the resource's ``provisioningState``) until Succeeded, Failed or
  Canceled, sleeping ``Retry-After`` (else :data:`POLL_DEFAULT_S`, at most :data:`POLL_MAX_S`)
  between polls without blocking the event loop; status URLs on another host than the
  management endpoint are never sent the token. When a step fails, launch deletes what it
  asked for (newest first; "not found" is fine) and raises. ``SkuNotAvailable``,
  ``AllocationFailed``, ``ZonalAllocationFailed``, ``Overconstrained*AllocationRequest``,
  ``QuotaExceeded`` and a quota ``OperationNotAllowed`` are ``quota_exhausted`` naming
  ``vm_size`` and ``region``; ``AuthorizationFailed`` / ``LinkedAuthorizationFailed``
  ``permission_denied`` naming the action ARM names and ``resource_group``;
  ``ResourceGroupNotFound`` ``misconfigured`` naming ``resource_group``; an image that does not
  exist or needs a purchase ``misconfigured`` naming ``image``; ``MissingSubscriptionRegistration``
  ``misconfigured`` saying which resource provider to register.
* find — ``GET`` the VM by name in the resource group (404, or a VM being deleted: None).
* describe — ``GET`` the VM with ``$expand=instanceView`` (at the launch-time subscription,
  resource group and endpoint): ``provisioningState`` Creating -> booting; Succeeded (or
  Updating) with ``PowerState/running`` -> running; ``PowerState/stopped|stopping|
  deallocated|deallocating`` -> stopped; Failed -> failed; Deleting or 404 -> released. The SSH
  address is the public IP's ``properties.ipAddress``, port 22.
* release — ``DELETE`` the VM (waiting for it), then the schedule, NIC, public IP, security
  group, virtual network and OS disk (each usually already gone with the VM through its
  ``deleteOption``); 404 is released. Everything named in the refs at launch.
* resources — ``GET {subscription}/resourceGroups/{rg}/resources?$filter=tagName eq
  'comfyvn-gui-home' and tagValue eq '<home>'&$expand=createdTime`` (api 2021-04-01;
  ``nextLink`` followed): the VM (``machine``), disks (``disk``), NIC / IP / security group /
  network (``network``) and the schedule (``schedule``). The OS disk is not tagged (Azure
  does not copy a VM's tags to the disk it creates) and is listed only while it is in the VM's
  own listing; release deletes it by name. ``stop`` deletes one (a VM with its dependants).

The dead-man switch is twofold. The start-up script shuts the OS down at the absolute
deadline — on Azure that alone still bills the compute (a VM stopped from inside is "Stopped",
not "Deallocated") — and the DevTestLab auto-shutdown schedule DEALLOCATES the VM at the
deadline's minute (UTC), which ends the compute bill without the app. Its limit: the schedule is
daily, at a time of day; so a deadline more than 24 hours away cannot be expressed (it would
fire at the first occurrence, earlier than the deadline): such a launch is refused, as the
design says (``misconfigured``). The minute is the deadline's, truncated: the schedule fires up
to a minute early, never late. The disk and public IP still bill (little) until the driver
deletes them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from comfyvn_gui.core.machines import HOME_TAG, JOB_TAG
from comfyvn_gui.providers.base import CheckContext, CheckFailure
from comfyvn_gui.providers.http_client import retry_after_seconds
from comfyvn_gui.providers.machine import LaunchSpec, Machine, MachineStatus, Resource

from .subscription import _arm_error, _endpoint
from .token import _token

if TYPE_CHECKING:
    import httpx

    from comfyvn_gui.providers.http_client import HttpClient

__all__ = [
    "COMPUTE_API",
    "DEFAULT_VM_IMAGE",
    "NETWORK_API",
    "RESOURCES_API",
    "SCHEDULE_API",
    "AzureMachines",
    "console_url",
    "schedule_time",
]

log = logging.getLogger(__name__)

COMPUTE_API = "2024-07-01"
NETWORK_API = "2024-05-01"
SCHEDULE_API = "2018-09-15"
RESOURCES_API = "2021-04-01"
#: The VM image when the ``image`` option is empty (also the catalog's default): Microsoft's
#: Data Science VM for Ubuntu 22.04 (Gen2), with the NVIDIA driver, Docker and the NVIDIA
#: container toolkit, free of Marketplace terms.
DEFAULT_VM_IMAGE = "microsoft-dsvm:ubuntu-2204:2204-gen2:latest"
DEFAULT_SSH_USER = "azureuser"
#: Seconds between polls of a long operation when Azure sends no Retry-After, and at most.
POLL_DEFAULT_S = 5.0
POLL_MAX_S = 30.0
#: The schedule is daily: a deadline further away than this cannot be expressed.
MAX_DEADLINE = timedelta(hours=24)
#: A deadline sooner than this cannot be given a schedule that fires before it.
MIN_DEADLINE = timedelta(minutes=2)
VNET_PREFIX = "10.73.0.0/16"
SUBNET_PREFIX = "10.73.0.0/24"
SUBNET = "default"
SSH_PORT = 22

VM = "Microsoft.Compute/virtualMachines"
DISK = "Microsoft.Compute/disks"
NSG = "Microsoft.Network/networkSecurityGroups"
VNET = "Microsoft.Network/virtualNetworks"
IP = "Microsoft.Network/publicIPAddresses"
NIC = "Microsoft.Network/networkInterfaces"
SCHEDULE = "Microsoft.DevTestLab/schedules"
_API = {VM: COMPUTE_API, DISK: COMPUTE_API, SCHEDULE: SCHEDULE_API}
_KIND = {VM: "machine", DISK: "disk", SCHEDULE: "schedule", NSG: "network", VNET: "network"}
_KIND |= {IP: "network", NIC: "network"}
#: refs key -> resource type, in release order (the VM first: its NIC, IP and disk are in use
#: until it is gone).
_RELEASE_ORDER = (
    ("vm", VM),
    ("schedule", SCHEDULE),
    ("nic", NIC),
    ("ip", IP),
    ("nsg", NSG),
    ("vnet", VNET),
    ("os_disk", DISK),
)
_CAPACITY = {
    "SkuNotAvailable",
    "AllocationFailed",
    "ZonalAllocationFailed",
    "OverconstrainedAllocationRequest",
    "OverconstrainedZonalAllocationRequest",
    "QuotaExceeded",
}
_IMAGE_ERRORS = {
    "PlatformImageNotFound",
    "ImageNotFound",
    "InvalidImageReference",
    "MarketplacePurchaseEligibilityFailed",
    "ResourcePurchaseValidationFailed",
    "VMMarketplaceInvalidInput",
}
_REGION_ERRORS = {"LocationNotAvailableForResourceType", "NoRegisteredProviderFound"}
_ACTION = re.compile(r"(?:linked )?action '([^']+)'")
_NAMESPACE = re.compile(r"namespace '([^']+)'")
# Every answer is read here, except those the HTTP client retries (429/503 with Retry-After).
_ANSWERED = tuple(s for s in range(200, 600) if s not in (429, 503))
_DONE = ("Succeeded", "Failed", "Canceled")

# The event loop's sleep, as a module attribute (tests record the waits instead of waiting).
_sleep = asyncio.sleep


def console_url(resource_id: str, tenant_id: str | None = None) -> str:
    tenant = f"@{tenant_id}" if tenant_id else ""
    return f"https://portal.azure.com/#{tenant}/resource{resource_id}"


def schedule_time(deadline: datetime) -> str:
    """The schedule's ``HHmm`` (UTC) of a deadline: its minute, truncated (never later)."""
    return deadline.astimezone(UTC).strftime("%H%M")


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _image_reference(ctx: CheckContext, image: str) -> dict[str, str]:
    if image.startswith("/subscriptions/"):
        return {"id": image}
    parts = image.split(":")
    if len(parts) != 4 or not all(parts):
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: the image {image!r} is neither a URN publisher:offer:sku:version (e.g. "
            f"{DEFAULT_VM_IMAGE}) nor an image resource ID; correct the image option",
            fields=["image"],
        )
    publisher, offer, sku, version = parts
    return {"publisher": publisher, "offer": offer, "sku": sku, "version": version}


@dataclass
class _Names:
    """The names of everything one job's VM needs (all from the resource name)."""

    vm: str

    @property
    def refs(self) -> dict[str, str]:
        return {
            "vm": self.vm,
            "nsg": f"{self.vm}-nsg",
            "vnet": f"{self.vm}-vnet",
            "ip": f"{self.vm}-ip",
            "nic": f"{self.vm}-nic",
            "os_disk": f"{self.vm}-osdisk",
            "schedule": f"shutdown-computevm-{self.vm}",
        }


@dataclass
class _Arm:
    """Resource Manager for one adapter call: the token, the subscription and resource group,
    and the failure mapping."""

    ctx: CheckContext
    http: HttpClient
    token: str
    base: str
    sub: str
    rg: str
    region: str = ""
    vm_size: str = ""
    made: list[tuple[str, str]] = field(default_factory=list)

    # -- addresses ---------------------------------------------------------------------

    @property
    def rg_path(self) -> str:
        return f"/subscriptions/{quote(self.sub, safe='')}/resourceGroups/{quote(self.rg, safe='')}"

    def rid(self, kind: str, name: str) -> str:
        """The resource ID of ``name`` of type ``kind`` in the resource group."""
        return f"{self.rg_path}/providers/{kind}/{quote(name, safe='')}"

    def _url(self, path: str) -> str:
        if path.startswith("/"):
            return self.base + path
        if (urlsplit(path).scheme, urlsplit(path).netloc) != (
            urlsplit(self.base).scheme,
            urlsplit(self.base).netloc,
        ):
            raise CheckFailure(
                "error",
                f"{self.ctx.name}: Azure pointed an operation's status at another host "
                f"({urlsplit(path).netloc}); it was not followed",
                fields=["endpoints"],
            )
        return path

    # -- requests ------------------------------------------------------------------------

    async def send(
        self,
        method: str,
        path: str,
        api: str | None,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        query = dict(params or {})
        if api is not None:
            query["api-version"] = api
        kwargs: dict[str, Any] = {"headers": {"Authorization": f"Bearer {self.token}"}}
        if query:
            kwargs["params"] = query
        if body is not None:
            kwargs["json"] = body
        return await self.http.request(method, self._url(path), ok=_ANSWERED, **kwargs)

    async def get(
        self, kind: str, name: str, params: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        resp = await self.send(
            "GET", self.rid(kind, name), _API.get(kind, NETWORK_API), params=params
        )
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self.failure(resp, f"reading {name}")
        body = self.http.json(resp)
        return body if isinstance(body, dict) else {}

    async def put(self, kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create (or update) a resource and wait until it is provisioned."""
        self.made.append((kind, name))
        what = f"creating {name}"
        api = _API.get(kind, NETWORK_API)
        resp = await self.send("PUT", self.rid(kind, name), api, body=body)
        if resp.status_code not in (200, 201, 202):
            raise self.failure(resp, what)
        await self.wait(resp, what, kind, name)
        got = await self.get(kind, name)
        if got is None:
            raise CheckFailure(
                "error", f"{self.ctx.name}: {name} was created but Azure no longer finds it"
            )
        return got

    async def delete(self, kind: str, name: str) -> None:
        """Delete a resource and wait until it is gone; not found is gone."""
        what = f"deleting {name}"
        resp = await self.send("DELETE", self.rid(kind, name), _API.get(kind, NETWORK_API))
        if resp.status_code in (204, 404):
            return
        if resp.status_code not in (200, 201, 202):
            raise self.failure(resp, what)
        if resp.status_code != 200 or _async_url(resp):
            await self.wait(resp, what, None, name)

    async def wait(self, resp: httpx.Response, what: str, kind: str | None, name: str) -> None:
        """Follow a long operation (ARM's async pattern) to its end."""
        op_url = _async_url(resp)
        location = resp.headers.get("Location")
        if op_url is None and location is None:
            if kind is None or _state(resp) in (None, *_DONE):
                self.check_state(_state(resp), what, None)
                return
        last = resp
        while True:
            await self.pause(last, what)
            if op_url is not None:
                last = await self.send("GET", op_url, None)
                if last.status_code != 200:
                    raise self.failure(last, what)
                doc = self.http.json(last)
                status = doc.get("status") if isinstance(doc, dict) else None
                if status in _DONE:
                    error = doc.get("error") if isinstance(doc, dict) else None
                    self.check_state(status, what, error if isinstance(error, dict) else None)
                    return
            elif location is not None:
                last = await self.send("GET", location, None)
                if last.status_code == 202:
                    continue
                if last.status_code in (200, 201, 204):
                    return
                raise self.failure(last, what)
            else:
                assert kind is not None
                last = await self.send("GET", self.rid(kind, name), _API.get(kind, NETWORK_API))
                if last.status_code != 200:
                    raise self.failure(last, what)
                state = _state(last)
                if state in (None, *_DONE):
                    self.check_state(state, what, None)
                    return

    def check_state(self, state: str | None, what: str, error: dict[str, Any] | None) -> None:
        if state in (None, "Succeeded"):
            return
        code = str((error or {}).get("code") or state)
        message = str((error or {}).get("message") or "")
        raise self.mapped(None, code, message, what)

    async def pause(self, resp: httpx.Response, what: str) -> None:
        wait = retry_after_seconds(resp.headers.get("Retry-After"))
        wait = POLL_DEFAULT_S if wait is None else wait
        wait = min(wait, POLL_MAX_S)
        left = self.ctx.remaining() - 1.0
        if left <= 0:
            raise CheckFailure("timeout", f"{self.ctx.name}: Azure had not finished {what} in time")
        await _sleep(min(wait, left))

    # -- failures --------------------------------------------------------------------------

    def failure(self, resp: httpx.Response, what: str) -> CheckFailure:
        code, message = _arm_error(resp)
        return self.mapped(resp.status_code, code, message, what)

    def mapped(self, status: int | None, code: str, message: str, what: str) -> CheckFailure:
        name = self.ctx.name
        said = f"{code}: {_one_line(message)}" if message else (code or f"HTTP {status}")
        detail = {"arm_error": code} if code else {}
        low = message.lower()
        if status == 401:
            return CheckFailure(
                "invalid_credentials",
                f"Azure Resource Manager refused the app's token while {what} ({code or '401'}); "
                "check the Tenant ID, Client ID and client secret",
                fields=["tenant_id", "client_id", "client_secret"],
                detail=detail,
            )
        if code in ("AuthorizationFailed", "LinkedAuthorizationFailed") or status == 403:
            actions = _ACTION.findall(message)
            action = actions[-1] if actions else None
            return CheckFailure(
                "permission_denied",
                f"{name}: Azure did not allow {what} in resource group {self.rg}: "
                + (f"the app's role lacks {action}" if action else f"{code or '403'}")
                + "; give it the Contributor role on the resource group (Azure portal → "
                "Resource groups → the group → Access control (IAM))",
                fields=["resource_group"],
                detail={**detail, **({"action": action} if action else {})},
            )
        if code in _CAPACITY or (code == "OperationNotAllowed" and "quota" in low):
            why = (
                "the subscription's quota is used up"
                if "quota" in low or code == "QuotaExceeded"
                else "Azure has no capacity for it right now"
            )
            return CheckFailure(
                "quota_exhausted",
                f"{name}: no {self.vm_size or 'VM'} can be created in {self.region or 'the region'}"
                f": {why} ({said}); try again later, choose another region, or request more "
                "quota in Azure portal → Subscriptions → Usage + quotas",
                fields=["vm_size", "region"],
                detail=detail,
            )
        if code == "ResourceGroupNotFound":
            return CheckFailure(
                "misconfigured",
                f"{name}: the resource group {self.rg} does not exist in the subscription; "
                "create it or correct the resource group option",
                fields=["resource_group"],
                detail=detail,
            )
        if code in _IMAGE_ERRORS or (code == "InvalidParameter" and "image" in low):
            return CheckFailure(
                "misconfigured",
                f"{name}: Azure refused the VM image while {what} ({said}); set the image option "
                f"to an image offered in {self.region or 'the region'} (e.g. {DEFAULT_VM_IMAGE})",
                fields=["image"],
                detail=detail,
            )
        if code == "MissingSubscriptionRegistration":
            namespace = _NAMESPACE.findall(message)
            ns = namespace[0] if namespace else "the resource provider"
            return CheckFailure(
                "misconfigured",
                f"{name}: the subscription is not registered for {ns}; register it in Azure "
                "portal → Subscriptions → the subscription → Resource providers",
                fields=["subscription_id"],
                detail=detail,
            )
        if code in _REGION_ERRORS:
            return CheckFailure(
                "misconfigured",
                f"{name}: {what} is not possible in region {self.region} ({said}); choose "
                "another region",
                fields=["region"],
                detail=detail,
            )
        if status is not None and status >= 500:
            return CheckFailure(
                "unreachable",
                f"{name}: Azure Resource Manager failed while {what} ({status}, {said}); try "
                "again later",
                detail=detail,
            )
        return CheckFailure("error", f"{name}: Azure did not allow {what} ({said})", detail=detail)


def _async_url(resp: httpx.Response) -> str | None:
    url = resp.headers.get("Azure-AsyncOperation")
    return str(url) if url else None


def _state(resp: httpx.Response) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    props = body.get("properties") if isinstance(body, dict) else None
    state = props.get("provisioningState") if isinstance(props, dict) else None
    return str(state) if state else None


def _resource_group(ctx: CheckContext) -> str:
    rg = (ctx.value("resource_group") or "").strip()
    if not rg:
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: resource_group is not set; enter the resource group VMs are created "
            "in (the app registration needs a role on it) in the provider's settings",
            fields=["resource_group"],
        )
    return rg


@contextlib.asynccontextmanager
async def _arm(
    ctx: CheckContext, *, rg: str, sub: str | None = None, base: str | None = None
) -> AsyncIterator[_Arm]:
    tenant_id, client_id, secret, sub_id = ctx.require(
        "tenant_id", "client_id", "client_secret", "subscription_id"
    )
    async with (
        ctx.http(auth_fields=["client_id", "client_secret"]) as entra,
        ctx.http(auth_fields=["client_id", "client_secret"], address_field="endpoints") as http,
    ):
        token = await _token(ctx, entra, tenant_id, client_id, secret)
        yield _Arm(
            ctx,
            http,
            token,
            (base or _endpoint(ctx, "management")).rstrip("/"),
            sub or sub_id,
            rg,
            region=ctx.setting("region") or "",
            vm_size=ctx.setting("vm_size") or "",
        )


def _at(ctx: CheckContext, machine: Machine) -> contextlib.AbstractAsyncContextManager[_Arm]:
    """Resource Manager where ``machine`` was launched (its refs), not the current settings."""
    refs = machine.refs
    return _arm(
        ctx,
        rg=str(refs.get("resource_group") or _resource_group(ctx)),
        sub=str(refs["subscription_id"]) if refs.get("subscription_id") else None,
        base=str(refs["management"]) if refs.get("management") else None,
    )


def _refs(arm: _Arm, name: str, region: str) -> dict[str, Any]:
    return {
        **_Names(name).refs,
        "resource_group": arm.rg,
        "subscription_id": arm.sub,
        "region": region,
        "management": arm.base,
    }


def _tags(spec_tags: dict[str, str], name: str) -> dict[str, str]:
    return {"Name": name, **spec_tags}


def _created(doc: dict[str, Any], key: str) -> datetime | None:
    props = doc.get("properties") if isinstance(doc.get("properties"), dict) else {}
    value = doc.get(key) or (props or {}).get(key)
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _vm_status(vm: dict[str, Any]) -> tuple[MachineStatus, str]:
    props = vm.get("properties") or {}
    state = str(props.get("provisioningState") or "")
    view = props.get("instanceView") or {}
    power = ""
    for status in view.get("statuses") or []:
        code = str(status.get("code") or "")
        if code.startswith("PowerState/"):
            power = code.removeprefix("PowerState/")
        elif code.startswith("ProvisioningState/") and not state:
            state = code.removeprefix("ProvisioningState/").split("/")[0].capitalize()
    raw = f"{state}/{power}" if power else state
    if state == "Deleting":
        return "released", raw
    if state == "Failed":
        return "failed", raw
    if power in ("stopped", "stopping", "deallocated", "deallocating"):
        return "stopped", raw
    if power == "running" and state in ("Succeeded", "Updating"):
        return "running", raw
    return "booting", raw


class AzureMachines:
    """The dispatch side of Azure virtual machines (see the module's text)."""

    deadman = "shutdown"
    mode = "vm"
    default_ssh_user = DEFAULT_SSH_USER
    default_image = "yanwk/comfyui-boot:cu128-slim"
    deadman_words = (
        "Azure VM with two guards: at the absolute deadline the start-up script shuts the OS "
        "down, and an Azure auto-shutdown schedule (Microsoft.DevTestLab/schedules) "
        "DEALLOCATES the VM at that minute (UTC) — an OS shutdown alone leaves it 'Stopped' and "
        "still billing. Deallocated, the compute bill ends even if the app is gone; its disk "
        "and public IP bill (a little) until the app deletes them. Jobs whose deadline is more "
        "than 24 hours away are refused (the schedule is daily)"
    )

    async def launch(self, ctx: CheckContext, spec: LaunchSpec) -> Machine:
        rg = _resource_group(ctx)
        region = ctx.setting("region") or ""
        vm_size = ctx.setting("vm_size") or ""
        user = ctx.setting("ssh_user") or DEFAULT_SSH_USER
        image = _image_reference(ctx, ctx.setting("image") or DEFAULT_VM_IMAGE)
        zone = next((r.zone for r in ctx.profile.regions if r.id == region), None)
        if spec.zones is not None and zone not in spec.zones:
            raise CheckFailure(
                "misconfigured",
                f"{ctx.name}: the region {region} is outside this job's residency zones "
                f"({', '.join(spec.zones)}); set Region to one inside them",
                fields=["region"],
            )
        now = datetime.now(UTC)
        if spec.deadline - now > MAX_DEADLINE:
            hours = (spec.deadline - now).total_seconds() / 3600
            raise CheckFailure(
                "misconfigured",
                f"{ctx.name}: this job may run until {spec.deadline:%Y-%m-%d %H:%M} UTC, "
                f"{hours:.0f} hours from now; Azure's auto-shutdown schedule is daily and "
                "cannot guard a VM for more than 24 hours, so such jobs are not sent to Azure. "
                "Split the job or choose another provider",
            )
        if spec.deadline - now < MIN_DEADLINE:
            raise CheckFailure(
                "misconfigured",
                f"{ctx.name}: the job's deadline ({spec.deadline:%H:%M:%S} UTC) is too close "
                "for Azure's auto-shutdown schedule; dispatch it again",
            )
        price = None  # the catalog's price is that of its default size only
        try:
            if vm_size == ctx.profile.field("vm_size").default:
                price = ctx.profile.pricing.hourly_usd
        except KeyError:
            pass
        names = _Names(spec.name).refs
        tags = _tags(spec.tags, spec.name)
        async with _arm(ctx, rg=rg) as arm:
            refs = _refs(arm, spec.name, region)
            existing = await arm.get(VM, spec.name)
            if existing is not None:
                if (existing.get("properties") or {}).get("provisioningState") == "Deleting":
                    raise CheckFailure(
                        "error",
                        f"{ctx.name}: the VM {spec.name} is still being deleted; try again "
                        "in a few minutes",
                    )
                vm_id = str(existing.get("id") or arm.rid(VM, spec.name))
                if await arm.get(SCHEDULE, names["schedule"]) is None:
                    await arm.put(SCHEDULE, names["schedule"], _schedule(spec, region, tags, vm_id))
                return await self._described(arm, spec.name, refs, price)
            try:
                await self._create(arm, spec, region, vm_size, user, image, tags, price)
            except Exception as exc:
                log.info(
                    "%s: launch of %s failed (%s); deleting what it made", ctx.name, spec.name, exc
                )
                await _undo(arm)
                raise
            return await self._described(arm, spec.name, refs, price)

    async def _create(
        self,
        arm: _Arm,
        spec: LaunchSpec,
        region: str,
        vm_size: str,
        user: str,
        image: dict[str, str],
        tags: dict[str, str],
        price: float | None,
    ) -> None:
        n = _Names(spec.name).refs
        nsg_id, ip_id = arm.rid(NSG, n["nsg"]), arm.rid(IP, n["ip"])
        subnet_id = f"{arm.rid(VNET, n['vnet'])}/subnets/{SUBNET}"
        nic_id, vm_id = arm.rid(NIC, n["nic"]), arm.rid(VM, spec.name)
        rule = {
            "name": "ssh",
            "properties": {
                "protocol": "Tcp",
                "access": "Allow",
                "direction": "Inbound",
                "priority": 1000,
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": str(SSH_PORT),
            },
        }
        await arm.put(
            NSG,
            n["nsg"],
            {"location": region, "tags": tags, "properties": {"securityRules": [rule]}},
        )
        await arm.put(
            VNET,
            n["vnet"],
            {
                "location": region,
                "tags": tags,
                "properties": {
                    "addressSpace": {"addressPrefixes": [VNET_PREFIX]},
                    "subnets": [{"name": SUBNET, "properties": {"addressPrefix": SUBNET_PREFIX}}],
                },
            },
        )
        await arm.put(
            IP,
            n["ip"],
            {
                "location": region,
                "tags": tags,
                "sku": {"name": "Standard", "tier": "Regional"},
                "properties": {
                    "publicIPAllocationMethod": "Static",
                    "publicIPAddressVersion": "IPv4",
                    "deleteOption": "Delete",
                },
            },
        )
        await arm.put(
            NIC,
            n["nic"],
            {
                "location": region,
                "tags": tags,
                "properties": {
                    "ipConfigurations": [
                        {
                            "name": "ipconfig1",
                            "properties": {
                                "privateIPAllocationMethod": "Dynamic",
                                "subnet": {"id": subnet_id},
                                "publicIPAddress": {"id": ip_id},
                            },
                        }
                    ],
                    "networkSecurityGroup": {"id": nsg_id},
                },
            },
        )
        script = spec.script_at(price)
        await arm.put(
            VM,
            spec.name,
            {
                "location": region,
                "tags": tags,
                "properties": {
                    "hardwareProfile": {"vmSize": vm_size},
                    "storageProfile": {
                        "imageReference": image,
                        "osDisk": {
                            "name": n["os_disk"],
                            "createOption": "FromImage",
                            "deleteOption": "Delete",
                            "managedDisk": {"storageAccountType": "StandardSSD_LRS"},
                        },
                    },
                    "osProfile": {
                        "computerName": spec.name[:64],
                        "adminUsername": user,
                        "customData": base64.b64encode(script.encode()).decode(),
                        "linuxConfiguration": {
                            "disablePasswordAuthentication": True,
                            "ssh": {
                                "publicKeys": [
                                    {
                                        "path": f"/home/{user}/.ssh/authorized_keys",
                                        "keyData": spec.client_public_key,
                                    }
                                ]
                            },
                        },
                    },
                    "networkProfile": {
                        "networkInterfaces": [
                            {
                                "id": nic_id,
                                "properties": {"primary": True, "deleteOption": "Delete"},
                            }
                        ]
                    },
                },
            },
        )
        await arm.put(SCHEDULE, n["schedule"], _schedule(spec, region, tags, vm_id))

    async def _described(
        self, arm: _Arm, name: str, refs: dict[str, Any], price: float | None
    ) -> Machine:
        machine = await _describe(arm, name, refs)
        machine.hourly_usd = price
        if machine.created_at is None:
            machine.created_at = datetime.now(UTC)
        return machine

    async def find(self, ctx: CheckContext, name: str) -> Machine | None:
        rg = (ctx.value("resource_group") or "").strip()
        if not rg:
            return None  # (nothing can have been launched without one)
        async with _arm(ctx, rg=rg) as arm:
            vm = await arm.get(VM, name)
            if vm is None or (vm.get("properties") or {}).get("provisioningState") == "Deleting":
                return None
            return await _describe(
                arm, name, _refs(arm, name, str(vm.get("location") or arm.region))
            )

    async def describe(self, ctx: CheckContext, machine: Machine) -> Machine:
        name = str(machine.refs.get("vm") or machine.id)
        async with _at(ctx, machine) as arm:
            refs = dict(machine.refs) or _refs(arm, name, arm.region)
            described = await _describe(arm, name, refs)
        described.created_at = machine.created_at or described.created_at
        described.hourly_usd = machine.hourly_usd
        return described

    async def release(self, ctx: CheckContext, machine: Machine) -> None:
        refs = {**_Names(str(machine.refs.get("vm") or machine.id)).refs, **machine.refs}
        async with _at(ctx, machine) as arm:
            await _delete_all(arm, refs)

    async def resources(self, ctx: CheckContext, home_id: str) -> list[Resource]:
        rg = (ctx.value("resource_group") or "").strip()
        if not rg:
            return []  # (nothing can have been launched without one)
        found: list[Resource] = []
        tenant = ctx.value("tenant_id")
        async with _arm(ctx, rg=rg) as arm:
            url: str | None = f"{arm.rg_path}/resources"
            params: dict[str, str] | None = {
                "$filter": f"tagName eq '{HOME_TAG}' and tagValue eq '{home_id}'",
                "$expand": "createdTime",
            }
            api: str | None = RESOURCES_API
            pages = 0
            while url and pages < 20:
                pages += 1
                resp = await arm.send("GET", url, api, params=params)
                if resp.status_code != 200:
                    raise arm.failure(resp, "listing the resource group's resources")
                body = arm.http.json(resp)
                items = body.get("value") if isinstance(body, dict) else None
                for item in items if isinstance(items, list) else []:
                    res = _resource(item, tenant)
                    if res is not None:
                        found.append(res)
                next_link = body.get("nextLink") if isinstance(body, dict) else None
                url, params, api = (str(next_link), None, None) if next_link else (None, None, None)
        return found

    async def stop(self, ctx: CheckContext, resource: Resource) -> None:
        kind, _, name = resource.id.rpartition("/")
        async with _arm(ctx, rg=_resource_group(ctx)) as arm:
            if kind == VM:
                await _delete_all(arm, _Names(name).refs)
            else:
                await arm.delete(kind, name)


def _schedule(spec: LaunchSpec, region: str, tags: dict[str, str], vm_id: str) -> dict[str, Any]:
    return {
        "location": region,
        "tags": tags,
        "properties": {
            "status": "Enabled",
            "taskType": "ComputeVmShutdownTask",
            "dailyRecurrence": {"time": schedule_time(spec.deadline)},
            "timeZoneId": "UTC",
            "notificationSettings": {"status": "Disabled"},
            "targetResourceId": vm_id,
        },
    }


async def _describe(arm: _Arm, name: str, refs: dict[str, Any]) -> Machine:
    vm = await arm.get(VM, name, params={"$expand": "instanceView"})
    if vm is None:
        return Machine(id=name, name=name, status="released", raw_status="gone", refs=refs)
    status, raw = _vm_status(vm)
    host: str | None = None
    if status == "running":
        ip = await arm.get(IP, str(refs.get("ip") or f"{name}-ip"))
        address = ((ip or {}).get("properties") or {}).get("ipAddress")
        host = str(address) if address else None
    return Machine(
        id=name,
        name=name,
        status=status,
        raw_status=raw,
        ssh_host=host,
        ssh_port=SSH_PORT if host else None,
        created_at=_created(vm, "timeCreated"),
        refs=refs,
    )


async def _undo(arm: _Arm) -> None:
    """Delete what a failed launch asked for, newest first (a failure here is logged: the
    resources are tagged, and ``running`` lists them)."""
    made = list(dict.fromkeys(arm.made))
    for kind, name in list(made):
        if kind == VM:  # the VM's OS disk, if it survived a failed creation
            made.append((DISK, f"{name}-osdisk"))
    for kind, name in sorted(made, key=lambda m: _order(m[0])):
        try:
            await arm.delete(kind, name)
        except CheckFailure as exc:
            log.warning(
                "%s: could not delete %s after the failed launch: %s",
                arm.ctx.name,
                name,
                exc.message,
            )


def _order(kind: str) -> int:
    return next(i for i, (_, k) in enumerate(_RELEASE_ORDER) if k == kind)


async def _delete_all(arm: _Arm, refs: dict[str, Any]) -> None:
    """Delete everything of one VM named in ``refs``, in release order; not found is gone."""
    for key, kind in _RELEASE_ORDER:
        name = refs.get(key)
        if name:
            await arm.delete(kind, str(name))


def _resource(item: Any, tenant: str | None) -> Resource | None:
    if not isinstance(item, dict):
        return None
    kind = str(item.get("type") or "")
    name = str(item.get("name") or "")
    rkind = next((v for k, v in _KIND.items() if k.lower() == kind.lower()), None)
    if rkind is None or not name:
        return None
    canonical = next(k for k in _KIND if k.lower() == kind.lower())
    raw_tags = item.get("tags")
    tags: dict[str, Any] = raw_tags if isinstance(raw_tags, dict) else {}
    job = str(tags.get(JOB_TAG) or "")
    props = item.get("properties")
    state = item.get("provisioningState") or (
        props.get("provisioningState") if isinstance(props, dict) else None
    )
    return Resource(
        kind=rkind,  # type: ignore[arg-type]
        id=f"{canonical}/{name}",
        name=str(tags.get("Name") or name),
        job_id=int(job) if job.isdigit() else None,
        status=str(state or ""),
        created_at=_created(item, "createdTime"),
        console_url=console_url(str(item.get("id") or ""), tenant),
    )
