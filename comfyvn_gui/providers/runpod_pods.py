"""RunPod pods for dispatch: one on-demand pod per job, over RunPod's GraphQL API (used when the
RunPod provider has no Serverless ``endpoint_id``; the RunPod adapter hands the machine methods to
:class:`RunPodPods`).

What is sent (``POST {graphql}``, ``Authorization: Bearer KEY``, always
``{"query": <fixed text>, "variables": {...}}``: no value is ever pasted into the query text):

* launch — ``mutation Deploy($input: PodFindAndDeployOnDemandInput!) {
  podFindAndDeployOnDemand(input: $input) { id name desiredStatus costPerHr machine { podHostId }
  } }`` with ``input`` = ``name`` (the resource name), ``imageName`` (``comfyui_image``),
  ``gpuTypeId`` (``gpu_type_id``, RunPod's GPU ID such as ``NVIDIA RTX A5000``), ``gpuCount`` 1,
  ``cloudType`` (``cloud_type``: SECURE, COMMUNITY or ALL), ``containerDiskInGb``,
  ``volumeInGb`` 0 (no volume: nothing is left to bill once the pod is terminated),
  ``ports`` ``"22/tcp"`` (SSH only: ComfyUI listens on the pod's loopback), ``supportPublicIp``
  true, ``env`` ``[{"key": "COMFYVN_STARTUP", "value": base64(start-up script)}]``,
  ``dockerArgs`` (:data:`DOCKER_ARGS`: decode the script and run it with ``sh``, then keep the
  container up), ``deployCost`` = the job's price ceiling in $/h when it has one (runpodctl's
  ``--cost``: "$/hr price ceiling"), and ``dataCenterId`` when the job's residency zones rule
  out some of RunPod's data centres (each allowed one of the profile is tried in turn). RunPod
  answering "There are no longer any instances available ..." (or no pod) is
  ``quota_exhausted``. A pod whose ``costPerHr`` is above the ceiling anyway is terminated at
  once and the launch is ``quota_exhausted``.
* find / resources — ``query Pods { myself { pods { <pod fields> } } }``: the pod named for the
  job, or every pod named for the home (``core.machines.parse_resource_name``).
* describe — ``query Pod($input: PodFilter!) { pod(input: $input) { <pod fields> } }`` with
  ``{"podId"}``: ``desiredStatus`` RUNNING without ``runtime`` is booting, with it running;
  EXITED (stopped: its disk still bills) is stopped; TERMINATED, a null pod or "not found" is
  released. The SSH address is the public ``ip``/``publicPort`` of the runtime port whose
  ``privatePort`` is 22.
* release / stop — ``mutation Terminate($input: PodTerminateInput!) { podTerminate(input: $input)
  }`` with ``{"podId"}``; a pod already gone is released. Terminate, never stop: a stopped pod
  still bills its disk.

Replies: a GraphQL ``errors`` array is a failure whatever the HTTP status (authentication ones
are ``invalid_credentials`` naming ``api_key``, as the RunPod adapter's account check maps
them); 401/403/429 are the HTTP client's.

The dead-man switch is in the start-up script (``core.machines``, ``runpod_pod``): at the
absolute deadline the pod calls ``podTerminate`` on itself with the pod-scoped
``RUNPOD_API_KEY`` and ``RUNPOD_POD_ID`` that RunPod puts in every pod's environment.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from comfyvn_gui.core.machines import parse_resource_name

from .base import CheckContext, CheckFailure
from .http_client import HttpClient
from .machine import LaunchSpec, Machine, MachineStatus, Resource
from .runpod import _bearer, _graphql_failure, _shorten, graphql_url

__all__ = [
    "CONSOLE_URL",
    "DEFAULT_CLOUD_TYPE",
    "DEFAULT_COMFYUI_COMMAND",
    "DEFAULT_COMFYUI_IMAGE",
    "DEFAULT_GPU_TYPE_ID",
    "DEPLOY_MUTATION",
    "DOCKER_ARGS",
    "PODS_QUERY",
    "POD_QUERY",
    "STARTUP_ENV",
    "TERMINATE_MUTATION",
    "RunPodPods",
]

_POD_FIELDS = (
    "id name desiredStatus costPerHr "
    "runtime { uptimeInSeconds ports { ip isIpPublic privatePort publicPort type } }"
)
DEPLOY_MUTATION = (
    "mutation Deploy($input: PodFindAndDeployOnDemandInput!) { "
    "podFindAndDeployOnDemand(input: $input) "
    "{ id name desiredStatus costPerHr machine { podHostId } } }"
)
POD_QUERY = f"query Pod($input: PodFilter!) {{ pod(input: $input) {{ {_POD_FIELDS} }} }}"
PODS_QUERY = f"query Pods {{ myself {{ pods {{ {_POD_FIELDS} }} }} }}"
TERMINATE_MUTATION = (
    "mutation Terminate($input: PodTerminateInput!) { podTerminate(input: $input) }"
)

CONSOLE_URL = "https://www.runpod.io/console/pods"
#: The environment variable that carries the start-up script (base64) into the pod.
STARTUP_ENV = "COMFYVN_STARTUP"
#: The pod's start command (RunPod's ``dockerArgs``, the image's CMD): install openssh-server
#: and curl when the image lacks them (Debian/Ubuntu images; bounded, so the script and its
#: dead-man switch start whatever happens), decode the start-up script and run it with ``sh``,
#: then keep the container up (its services run in the background).
DOCKER_ARGS = (
    "sh -c '"
    "if ! command -v curl >/dev/null 2>&1 || ! test -x /usr/sbin/sshd; then "
    "{ export DEBIAN_FRONTEND=noninteractive; "
    "timeout 300 apt-get update -qq && "
    "timeout 300 apt-get install -y -qq --no-install-recommends "
    "openssh-server curl ca-certificates; } >/tmp/comfyvn-prerequisites.log 2>&1; fi; "
    f'echo "${STARTUP_ENV}" | base64 -d | sh; '
    "sleep infinity'"
)
#: The options' values when they are empty (the catalog's help says the same): RunPod's own
#: ComfyUI worker image (ComfyUI in /comfyui, Python in /opt/venv on PATH, CMD only) and how it
#: starts ComfyUI (the lifecycle adds ``--listen 127.0.0.1 --port``).
DEFAULT_COMFYUI_IMAGE = "runpod/worker-comfyui:5.10.0-base"
DEFAULT_COMFYUI_COMMAND = "python -u /comfyui/main.py"
#: RunPod has no A10G (the catalog's reference GPU); this is the same 24 GB Ampere class.
DEFAULT_GPU_TYPE_ID = "NVIDIA RTX A5000"
DEFAULT_CLOUD_TYPE = "SECURE"
CLOUD_TYPES = ("SECURE", "COMMUNITY", "ALL")

#: GPU memory (GB) by RunPod GPU ID (docs.runpod.io/references/gpu-types), to refuse a GPU type
#: too small for the job before renting it. An ID not listed here is sent as it is.
GPU_MEMORY_GB: dict[str, int] = {
    "AMD Instinct MI300X OAM": 192,
    "NVIDIA A100 80GB PCIe": 80,
    "NVIDIA A100-SXM4-80GB": 80,
    "NVIDIA A30": 24,
    "NVIDIA A40": 48,
    "NVIDIA B200": 180,
    "NVIDIA GeForce RTX 3070": 8,
    "NVIDIA GeForce RTX 3080": 10,
    "NVIDIA GeForce RTX 3080 Ti": 12,
    "NVIDIA GeForce RTX 3090": 24,
    "NVIDIA GeForce RTX 3090 Ti": 24,
    "NVIDIA GeForce RTX 4070 Ti": 12,
    "NVIDIA GeForce RTX 4080": 16,
    "NVIDIA GeForce RTX 4080 SUPER": 16,
    "NVIDIA GeForce RTX 4090": 24,
    "NVIDIA GeForce RTX 5080": 16,
    "NVIDIA GeForce RTX 5090": 32,
    "NVIDIA H100 80GB HBM3": 80,
    "NVIDIA H100 NVL": 94,
    "NVIDIA H100 PCIe": 80,
    "NVIDIA H200": 141,
    "NVIDIA L4": 24,
    "NVIDIA L40": 48,
    "NVIDIA L40S": 48,
    "NVIDIA RTX 2000 Ada Generation": 16,
    "NVIDIA RTX 4000 Ada Generation": 20,
    "NVIDIA RTX 4000 SFF Ada Generation": 20,
    "NVIDIA RTX 5000 Ada Generation": 32,
    "NVIDIA RTX 6000 Ada Generation": 48,
    "NVIDIA RTX A2000": 6,
    "NVIDIA RTX A4000": 16,
    "NVIDIA RTX A4500": 20,
    "NVIDIA RTX A5000": 24,
    "NVIDIA RTX A6000": 48,
    "Tesla V100-FHHL-16GB": 16,
    "Tesla V100-PCIE-16GB": 16,
    "Tesla V100-SXM2-16GB": 16,
    "Tesla V100-SXM2-32GB": 32,
}

#: Words of RunPod's "nothing to rent" answers ("There are no longer any instances available
#: with the requested specifications. Please refresh and try again.").
_NO_CAPACITY = (
    "no longer any instances",
    "no instances available",
    "not enough capacity",
    "insufficient capacity",
)
_GONE = ("not found", "does not exist", "no pod", "already terminated")
_STATUS: dict[str, MachineStatus] = {
    "CREATED": "booting",
    "RESTARTING": "booting",
    "RUNNING": "booting",  # running once it has a runtime (see _machine)
    "EXITED": "stopped",
    "PAUSED": "stopped",
    "TERMINATED": "released",
    "DEAD": "failed",
}


class _Gone(Exception):
    """RunPod says the pod does not exist (any more)."""


class RunPodPods:
    """The machine methods of a RunPod provider without a Serverless endpoint (see the module's
    text). Stateless: one instance serves every provider, concurrently."""

    deadman = "runpod_pod"
    mode = "container"
    default_ssh_user = "root"
    default_image = DEFAULT_COMFYUI_IMAGE
    default_comfyui_command = DEFAULT_COMFYUI_COMMAND
    deadman_words = (
        "the pod terminates itself at the deadline with its own pod-scoped key (the "
        "RUNPOD_API_KEY RunPod puts in every pod); terminate, not stop: a stopped pod still "
        "bills its disk. If that call fails inside the pod, only this app ends the bill"
    )

    async def launch(self, ctx: CheckContext, spec: LaunchSpec) -> Machine:
        (key,) = ctx.require("api_key")
        url = graphql_url(ctx)
        gpu = ctx.setting("gpu_type_id") or DEFAULT_GPU_TYPE_ID
        cloud = (ctx.setting("cloud_type") or DEFAULT_CLOUD_TYPE).upper()
        if cloud not in CLOUD_TYPES:
            raise CheckFailure(
                "misconfigured",
                f"RunPod: cloud type {cloud!r} is not one of {', '.join(CLOUD_TYPES)}; choose "
                "one in the provider's settings",
                fields=["cloud_type"],
            )
        memory = GPU_MEMORY_GB.get(gpu)
        if memory is not None and memory * 1000 < spec.vram_mb:
            raise CheckFailure(
                "misconfigured",
                f"RunPod: the GPU type {gpu} has {memory} GB of memory but this job needs "
                f"{spec.vram_mb / 1000:.0f} GB; choose a larger GPU type",
                fields=["gpu_type_id"],
            )
        centres = _data_centres(ctx, spec.zones)
        base: dict[str, Any] = {
            "name": spec.name,
            "imageName": spec.image,
            "gpuTypeId": gpu,
            "gpuCount": 1,
            "cloudType": cloud,
            "containerDiskInGb": int(spec.disk_gb),
            "volumeInGb": 0,
            "ports": "22/tcp",
            "supportPublicIp": True,
            "env": [
                {
                    "key": STARTUP_ENV,
                    # (deployCost caps the pod's price: its deadline holds at that price)
                    "value": base64.b64encode(
                        spec.script_at(spec.max_hourly_usd).encode()
                    ).decode(),
                }
            ],
            "dockerArgs": DOCKER_ARGS,
        }
        if spec.max_hourly_usd is not None:
            base["deployCost"] = round(float(spec.max_hourly_usd), 4)
        refused: list[str] = []
        pod: dict[str, Any] | None = None
        chosen: str | None = None
        async with ctx.http(auth_fields=["api_key"]) as http:
            for centre in centres:
                request = dict(base)
                if centre is not None:
                    request["dataCenterId"] = centre
                try:
                    data = await _call(
                        ctx, http, url, key, DEPLOY_MUTATION, {"input": request}, "rent a pod"
                    )
                except _NoCapacity as none:
                    refused.append(none.text)
                    continue
                found = data.get("podFindAndDeployOnDemand")
                if isinstance(found, dict) and found.get("id"):
                    pod, chosen = found, centre
                    break
                refused.append("no pod came back")
            if pod is None:
                where = f" in {', '.join(c for c in centres if c)}" if centres != [None] else ""
                under = (
                    f" at or under ${spec.max_hourly_usd:.2f}/h"
                    if spec.max_hourly_usd is not None
                    else ""
                )
                raise CheckFailure(
                    "quota_exhausted",
                    f"RunPod has no {gpu} pod ({cloud} cloud) to rent{under}{where} right now; "
                    "try again later or choose another GPU type or cloud",
                    fields=["gpu_type_id", "cloud_type"],
                    detail={"gpu_type_id": gpu, "cloud_type": cloud, "refused": refused},
                )
            pod_id = str(pod["id"])
            cost = _number(pod.get("costPerHr"))
            if (
                spec.max_hourly_usd is not None
                and cost is not None
                and cost > spec.max_hourly_usd + 1e-9
            ):
                try:
                    await _terminate(ctx, http, url, key, pod_id)
                except CheckFailure as failure:
                    raise CheckFailure(
                        "error",
                        f"RunPod rented pod {pod_id} at ${cost:.2f}/h, above the job's ceiling "
                        f"of ${spec.max_hourly_usd:.2f}/h, and terminating it failed "
                        f"({failure.message}); terminate it in the RunPod console "
                        f"({CONSOLE_URL})",
                        detail={"pod_id": pod_id},
                    ) from None
                raise CheckFailure(
                    "quota_exhausted",
                    f"RunPod's {gpu} pod costs ${cost:.2f}/h, above the job's ceiling of "
                    f"${spec.max_hourly_usd:.2f}/h; it was terminated at once. Raise the "
                    "budget or choose a cheaper GPU type",
                    fields=["gpu_type_id"],
                    detail={"pod_id": pod_id, "cost_per_hr": cost},
                )
        return Machine(
            id=pod_id,
            name=str(pod.get("name") or spec.name),
            status="booting",
            raw_status=str(pod.get("desiredStatus") or ""),
            hourly_usd=cost,
            created_at=datetime.now(UTC),
            refs={
                "pod_id": pod_id,
                "graphql": url,
                "gpu_type_id": gpu,
                "cloud_type": cloud,
                "data_center_id": chosen,
            },
        )

    async def find(self, ctx: CheckContext, name: str) -> Machine | None:
        pods = await self._pods(ctx)
        url = graphql_url(ctx)
        mine = [p for p in pods if p.get("name") == name and p.get("desiredStatus") != "TERMINATED"]
        if not mine:
            return None
        mine.sort(key=lambda p: p.get("desiredStatus") != "RUNNING")  # a running one first
        pod = mine[0]
        return _machine(pod, name, {"pod_id": str(pod["id"]), "graphql": url})

    async def describe(self, ctx: CheckContext, machine: Machine) -> Machine:
        (key,) = ctx.require("api_key")
        url = str(machine.refs.get("graphql") or graphql_url(ctx))
        pod_id = str(machine.refs.get("pod_id") or machine.id)
        async with ctx.http(auth_fields=["api_key"]) as http:
            try:
                data = await _call(
                    ctx,
                    http,
                    url,
                    key,
                    POD_QUERY,
                    {"input": {"podId": pod_id}},
                    "read the pod",
                    gone_ok=True,
                )
                pod = data.get("pod")
            except _Gone:
                pod = None
        refs = dict(machine.refs) or {"pod_id": pod_id, "graphql": url}
        if not isinstance(pod, dict):
            return Machine(
                id=machine.id,
                name=machine.name,
                status="released",
                raw_status="gone",
                hourly_usd=machine.hourly_usd,
                created_at=machine.created_at,
                refs=refs,
            )
        described = _machine(pod, machine.name, refs)
        described.created_at = machine.created_at
        if described.hourly_usd is None:
            described.hourly_usd = machine.hourly_usd
        return described

    async def release(self, ctx: CheckContext, machine: Machine) -> None:
        (key,) = ctx.require("api_key")
        url = str(machine.refs.get("graphql") or graphql_url(ctx))
        pod_id = str(machine.refs.get("pod_id") or machine.id)
        async with ctx.http(auth_fields=["api_key"]) as http:
            await _terminate(ctx, http, url, key, pod_id)

    async def resources(self, ctx: CheckContext, home_id: str) -> list[Resource]:
        found: list[Resource] = []
        for pod in await self._pods(ctx):
            parsed = parse_resource_name(str(pod.get("name") or ""))
            if parsed is None or parsed[0] != home_id:
                continue
            if pod.get("desiredStatus") == "TERMINATED":
                continue
            found.append(
                Resource(
                    kind="pod",
                    id=str(pod["id"]),
                    name=str(pod["name"]),
                    job_id=parsed[1],
                    status=str(pod.get("desiredStatus") or ""),
                    created_at=_started(pod),
                    hourly_usd=_number(pod.get("costPerHr")),
                    console_url=CONSOLE_URL,
                )
            )
        return found

    async def stop(self, ctx: CheckContext, resource: Resource) -> None:
        (key,) = ctx.require("api_key")
        url = graphql_url(ctx)
        async with ctx.http(auth_fields=["api_key"]) as http:
            await _terminate(ctx, http, url, key, resource.id)

    async def _pods(self, ctx: CheckContext) -> list[dict[str, Any]]:
        (key,) = ctx.require("api_key")
        url = graphql_url(ctx)
        async with ctx.http(auth_fields=["api_key"]) as http:
            data = await _call(ctx, http, url, key, PODS_QUERY, {}, "list the account's pods")
        me = data.get("myself")
        pods = me.get("pods") if isinstance(me, dict) else None
        if not isinstance(pods, list):
            raise CheckFailure("error", "RunPod's pod list came back without pods; try again later")
        return [p for p in pods if isinstance(p, dict) and p.get("id")]


class _NoCapacity(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _data_centres(ctx: CheckContext, zones: tuple[str, ...] | None) -> list[str | None]:
    """Where the pod may run: anywhere (``[None]``) without zones, else each data centre of
    the profile inside them (RunPod has more data centres than the profile lists: with zones,
    only listed ones are asked for, so a pod never lands outside them)."""
    if zones is None:
        return [None]
    allowed = [r.id for r in ctx.profile.regions if r.zone in zones]
    if not allowed:
        raise CheckFailure(
            "quota_exhausted",
            f"RunPod has no data centre in this job's zones ({', '.join(zones)}); choose "
            "another provider for it",
            detail={"zones": list(zones)},
        )
    return list(allowed)


async def _call(
    ctx: CheckContext,
    http: HttpClient,
    url: str,
    key: str,
    query: str,
    variables: dict[str, Any],
    what: str,
    *,
    gone_ok: bool = False,
) -> dict[str, Any]:
    """``data`` of one GraphQL request, or the failure that says why not."""
    # 400 is how GraphQL servers answer a query or variables they reject; its body says why.
    resp = await http.post(
        url,
        headers={**_bearer(key), "Content-Type": "application/json"},
        json={"query": query, "variables": variables},
        ok=(200, 400),
    )
    body = http.json(resp)
    if not isinstance(body, dict):
        raise CheckFailure(
            "error",
            f"RunPod answered {resp.status_code} with something that is not a GraphQL "
            "response; is the GraphQL address right?",
            fields=["endpoints"],
        )
    errors = body.get("errors")
    if errors:
        text = _error_text(errors)
        low = text.lower()
        if any(w in low for w in _NO_CAPACITY):
            raise _NoCapacity(_shorten(text, key))
        if gone_ok and any(w in low for w in _GONE):
            raise _Gone(text)
        failure = _graphql_failure(errors, key)
        if failure.code == "invalid_credentials":
            raise failure
        if failure.code == "permission_denied":
            raise CheckFailure(
                "permission_denied",
                f"RunPod accepted the API key but would not let it {what} "
                f"({_shorten(text, key)}); give the key read and write access to pods (or "
                "create one with All access)",
                fields=["api_key"],
            )
        raise CheckFailure(
            "error", f"RunPod could not {what}: {_shorten(text, key)}; try again later"
        )
    if resp.status_code != 200:
        raise CheckFailure(
            "error", f"RunPod refused the request to {what} ({resp.status_code}); try again later"
        )
    data = body.get("data")
    if not isinstance(data, dict):
        raise CheckFailure(
            "error", f"RunPod's answer to {what} came back without data; try again later"
        )
    return data


async def _terminate(ctx: CheckContext, http: HttpClient, url: str, key: str, pod_id: str) -> None:
    """``podTerminate``; a pod already gone is terminated."""
    try:
        await _call(
            ctx,
            http,
            url,
            key,
            TERMINATE_MUTATION,
            {"input": {"podId": pod_id}},
            f"terminate pod {pod_id}",
            gone_ok=True,
        )
    except _Gone:
        return


def _error_text(errors: Any) -> str:
    items = errors if isinstance(errors, list) else [errors]
    texts = [
        str(item.get("message") or "") if isinstance(item, dict) else str(item) for item in items
    ]
    return "; ".join(t for t in texts if t) or "no message"


def _started(pod: Mapping[str, Any]) -> datetime | None:
    """When a pod started, from its ``runtime.uptimeInSeconds`` (RunPod's GraphQL reports no
    creation time; the app never restarts a pod, so its uptime is its age). None while it has
    no runtime yet (still starting): its age is then unknown, and shown so."""
    runtime = pod.get("runtime")
    uptime = _number(runtime.get("uptimeInSeconds")) if isinstance(runtime, Mapping) else None
    if uptime is None or uptime < 0:
        return None
    return datetime.now(UTC) - timedelta(seconds=uptime)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ssh_address(pod: dict[str, Any]) -> tuple[str | None, int | None]:
    """The public address of the pod's port 22 (its runtime's TCP port whose privatePort is 22
    and whose IP is public)."""
    runtime = pod.get("runtime")
    ports = runtime.get("ports") if isinstance(runtime, dict) else None
    for port in ports if isinstance(ports, list) else []:
        if not isinstance(port, dict) or port.get("privatePort") != 22:
            continue
        if port.get("isIpPublic") is not True or str(port.get("type") or "tcp") != "tcp":
            continue
        ip, public = port.get("ip"), port.get("publicPort")
        if isinstance(ip, str) and ip and isinstance(public, int) and 0 < public < 65536:
            return ip, public
    return None, None


def _machine(pod: dict[str, Any], name: str, refs: dict[str, Any]) -> Machine:
    raw = str(pod.get("desiredStatus") or "")
    status: MachineStatus = _STATUS.get(raw, "booting")
    host, port = _ssh_address(pod)
    if raw == "RUNNING" and isinstance(pod.get("runtime"), dict):
        status = "running"
    return Machine(
        id=str(pod["id"]),
        name=str(pod.get("name") or name),
        status=status,
        raw_status=raw,
        ssh_host=host if status == "running" else None,
        ssh_port=port if status == "running" else None,
        hourly_usd=_number(pod.get("costPerHr")),
        refs=refs,
    )
