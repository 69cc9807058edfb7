"""CoreWeave (CKS) for dispatch: one Kubernetes ``batch/v1`` Job per job, reached through the
API server's port-forward (no SSH, no public address).

What is sent (the cluster's API server with the stored token, the client of coreweave.py: no
kubeconfig, the app's CA bundle, timeouts cut to the deadline, no retries; the namespace is the
``namespace`` option, else ``tenant-<organization_id>``):

* launch — ``POST /apis/batch/v1/namespaces/{ns}/jobs``: ``metadata.name`` = the resource name
  (checked to be a DNS-1123 label first: the Job controller copies it into a label, so at most
  63 characters), ``labels`` = the job's tags plus ``app.kubernetes.io/managed-by:
  comfyvn-gui``; ``spec.backoffLimit`` 0 (a failed pod is not retried: it would bill again),
  ``activeDeadlineSeconds`` = the seconds left until the hard deadline (rounded up),
  ``ttlSecondsAfterFinished`` :data:`TTL_S`, and a pod template with the same labels,
  ``restartPolicy: Never``, no service-account token, one container ``comfyui``: ``image`` =
  the ``comfyui_image`` option (default :data:`DEFAULT_COMFYUI_IMAGE`), ``command`` ``["sh",
  "-c", <the start-up script's comfyui part> + "wait"]`` (ComfyUI on the pod's loopback,
  ``127.0.0.1:<comfyui_port>``), ``resources.limits`` and ``requests`` ``nvidia.com/gpu: 1``;
  with the ``gpu_class`` option a required node affinity ``<gpu_label> In [<gpu_class>]``
  (``gpu_label`` default ``gpu.nvidia.com/class``, the GPU-class label of CoreWeave's GPU
  nodes; on CKS node pools ``node.kubernetes.io/instance-type`` with an instance ID such as
  ``gd-8xh100ib-i128`` selects the node type). 409 ``AlreadyExists`` reads and returns the
  existing Job (launch is idempotent by name); 403 with "exceeded quota" is
  ``quota_exhausted``, another 403 ``permission_denied`` (RBAC: create on jobs.batch); 422 is
  ``misconfigured`` with the API server's reason.
* find — ``GET .../jobs/{name}`` (404: None).
* describe — the Job, then ``GET /api/v1/namespaces/{ns}/pods?labelSelector=
  batch.kubernetes.io/job-name={name}`` (the pods the Job owns, by owner uid): a Job
  condition ``Failed`` (``DeadlineExceeded``, ``BackoffLimitExceeded``) is failed,
  ``Complete`` released, a Job being deleted released; else its pod: none yet or ``Pending``
  booting (the scheduler's reason in ``raw_status``, e.g. no node of the GPU class free),
  ``Running`` running, ``Succeeded`` released, ``Failed`` failed. A Job that is gone is
  released. ``refs``: cluster, namespace, job (name), uid, pod.
* open_port — :func:`.coreweave_portforward.port_forward` to the running pod (``refs``'s
  pod, else the Job's pod as describe finds it).
* release / stop — ``DELETE .../jobs/{name}?propagationPolicy=Background`` (the pods go with
  the Job: batch/v1's default would orphan them); 404 is released. A pod left behind by a
  Job deleted elsewhere without propagation (``resources`` lists it as a "pod") is stopped
  with ``DELETE /api/v1/namespaces/{ns}/pods/{name}``.
* resources — ``GET .../jobs?labelSelector=comfyvn-gui-home={home}`` (kind "machine"), and
  ``GET .../pods?labelSelector=comfyvn-gui-home={home}`` for pods whose Job is gone
  (kind "pod").

The dead-man switch is Kubernetes': ``activeDeadlineSeconds`` makes the Job controller kill the
pod at the hard deadline (the Job fails with ``DeadlineExceeded``) even when this app is gone,
and ``ttlSecondsAfterFinished`` deletes the finished Job and its pods. The start-up script's own
dead-man part is not sent (the container runs its comfyui part only).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from comfyvn_gui.core.machines import HOME_TAG, JOB_TAG, script_part

from .base import CheckContext, CheckFailure
from .comfyui import ComfyUIError
from .coreweave import NAME, _api_client, _api_failure, _call, _settings, _status_message
from .lazy import LazyImport
from .machine import LaunchSpec, Machine, MachineStatus, Resource

if TYPE_CHECKING:
    import kubernetes.client
    import kubernetes.client.exceptions
else:
    kubernetes = LazyImport("kubernetes")

__all__ = [
    "DEFAULT_COMFYUI_COMMAND",
    "DEFAULT_COMFYUI_IMAGE",
    "DEFAULT_GPU_LABEL",
    "MANAGED_BY",
    "TTL_S",
    "CoreWeaveJobs",
]

#: The same public image and command as RunPod pods (ComfyUI in /comfyui).
DEFAULT_COMFYUI_IMAGE = "runpod/worker-comfyui:5.10.0-base"
DEFAULT_COMFYUI_COMMAND = "python -u /comfyui/main.py"
DEFAULT_GPU_LABEL = "gpu.nvidia.com/class"
GPU_RESOURCE = "nvidia.com/gpu"
MANAGED_BY = {"app.kubernetes.io/managed-by": "comfyvn-gui"}
#: A finished Job (and its pod) is deleted this long after it finished (seconds).
TTL_S = 600
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


class _Gone(Exception):
    pass


def _batch(api: Any) -> Any:
    return kubernetes.client.BatchV1Api(api)


def _core(api: Any) -> Any:
    return kubernetes.client.CoreV1Api(api)


async def _doc(ctx: CheckContext, host: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """One API call's JSON body (read in the executor); ApiException for an error status."""

    def read(*a: Any, **kw: Any) -> Any:
        return json.loads(fn(*a, **kw).data or b"null")

    return await _call(ctx, host, read, *args, _preload_content=False, **kwargs)


def _failure(exc: Any, host: str, ns: str, doing: str, rbac: str) -> CheckFailure:
    """An API error of a Job call: ``doing`` in words, ``rbac`` the permission it needs."""
    code = exc.status
    server = _status_message(exc)
    said = f" (the cluster said: {server})" if server else ""
    if code == 403 and "exceeded quota" in server:
        return CheckFailure(
            "quota_exhausted",
            f"{NAME}: namespace {ns} has no quota left for another job{said}; wait for running "
            "jobs to finish or ask for a larger ResourceQuota",
            fields=["namespace"],
            detail={"namespace": ns},
        )
    if code == 403:
        return CheckFailure(
            "permission_denied",
            f"{NAME}: the API access token may not {doing} in namespace {ns} (403 Forbidden; "
            f"RBAC: {rbac}){said}. Give its role that permission, or use a token of a "
            "namespace where it has it",
            fields=["api_key", "namespace"],
            detail={"namespace": ns, "rbac": rbac},
        )
    if code in (400, 422):
        return CheckFailure(
            "misconfigured",
            f"{NAME}: the cluster refused to {doing}{said}; check the comfyui_image, gpu_class "
            "and gpu_label options",
            fields=["comfyui_image", "gpu_class", "gpu_label"],
            detail={"namespace": ns},
        )
    if code == 404 and "namespaces" not in server:
        return CheckFailure(
            "misconfigured",
            f"{NAME}: {host} answered 404 to {doing}; is it your cluster's Kubernetes API server "
            "address (with the batch/v1 API)?",
            fields=["base_url"],
        )
    return _api_failure(exc, host, ns)


def _stamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _pick_pod(pods: list[dict[str, Any]], job_uid: str | None) -> dict[str, Any] | None:
    """The Job's pod: one it owns (by uid), live ones first, then the newest."""
    own = [
        p
        for p in pods
        if not job_uid
        or any(
            ref.get("uid") == job_uid
            for ref in (p.get("metadata") or {}).get("ownerReferences") or []
        )
    ]
    if not own:
        return None
    order = {"Running": 0, "Pending": 1}

    def key(p: dict[str, Any]) -> tuple[int, str]:
        phase = str((p.get("status") or {}).get("phase") or "")
        created = str((p.get("metadata") or {}).get("creationTimestamp") or "")
        return (order.get(phase, 2), "".join(chr(255 - ord(c)) for c in created))

    return sorted(own, key=key)[0]


def _condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind and c.get("status") == "True":
            return dict(c)
    return None


def _pending_reason(pod: dict[str, Any]) -> str:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            msg = str(c.get("message") or c.get("reason") or "")
            return f"Pending: {msg[:200]}" if msg else "Pending"
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return f"Pending: {waiting['reason']}"
    return "Pending"


def _state(job: dict[str, Any], pod: dict[str, Any] | None) -> tuple[MachineStatus, str]:
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        return "released", "Terminating"
    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    if failed is not None:
        return "failed", str(failed.get("reason") or "Failed")
    if _condition(job, "Complete") is not None:
        return "released", "Complete"
    if pod is None:
        if (job.get("status") or {}).get("failed"):
            return "failed", "pod failed"
        return "booting", "Pending (no pod yet)"
    phase = str((pod.get("status") or {}).get("phase") or "")
    if phase == "Running":
        return "running", "Running"
    if phase == "Succeeded":
        return "released", "Succeeded"
    if phase == "Failed":
        return "failed", "pod Failed"
    if phase == "Pending":
        return "booting", _pending_reason(pod)
    return "booting", phase or "Unknown"


def _machine(job: dict[str, Any], pod: dict[str, Any] | None, host: str, ns: str) -> Machine:
    meta = job.get("metadata") or {}
    name = str(meta.get("name") or "")
    status, raw = _state(job, pod)
    refs: dict[str, Any] = {"cluster": host, "namespace": ns, "job": name}
    if meta.get("uid"):
        refs["uid"] = str(meta["uid"])
    if pod is not None:
        refs["pod"] = str((pod.get("metadata") or {}).get("name") or "")
    return Machine(
        id=name,
        name=name,
        status=status,
        raw_status=raw,
        created_at=_stamp(meta.get("creationTimestamp")),
        refs=refs,
    )


def _where(ctx: CheckContext, machine: Machine | None) -> tuple[str, str, str, str]:
    """(cluster, token, namespace, job name) of a call on ``machine`` (its launch-time refs)."""
    host, token, ns = _settings(ctx)
    if machine is None:
        return host, token, ns, ""
    refs = machine.refs
    return (
        str(refs.get("cluster") or host),
        token,
        str(refs.get("namespace") or ns),
        str(refs.get("job") or machine.name or machine.id),
    )


def _gpu_affinity(ctx: CheckContext) -> dict[str, Any] | None:
    gpu = (ctx.setting("gpu_class") or "").strip()
    if not gpu:
        return None
    label = (ctx.setting("gpu_label") or DEFAULT_GPU_LABEL).strip()
    if not _LABEL_KEY.fullmatch(label):
        raise CheckFailure(
            "misconfigured",
            f"{NAME}: the gpu_label option {label!r} is not a Kubernetes label key; enter a "
            f"node label such as {DEFAULT_GPU_LABEL}",
            fields=["gpu_label"],
        )
    if not _LABEL_VALUE.fullmatch(gpu):
        raise CheckFailure(
            "misconfigured",
            f"{NAME}: the gpu_class option {gpu!r} is not a label value; enter the GPU class "
            "as your nodes' label gives it (e.g. A40)",
            fields=["gpu_class"],
        )
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": label, "operator": "In", "values": [gpu]}]}
                ]
            }
        }
    }


def job_body(ctx: CheckContext, spec: LaunchSpec, ns: str, now: datetime) -> dict[str, Any]:
    """The Job sent for ``spec`` (see the module's text)."""
    name = spec.name
    if not _DNS1123_LABEL.fullmatch(name):
        raise CheckFailure(
            "misconfigured",
            f"{NAME}: the job's resource name {name!r} is not a Kubernetes Job name (lowercase "
            "letters, digits and '-', at most 63 characters)",
        )
    labels = {**spec.tags, **MANAGED_BY}
    for k, v in labels.items():
        if not _LABEL_KEY.fullmatch(k) or not _LABEL_VALUE.fullmatch(v):
            raise CheckFailure("misconfigured", f"{NAME}: the tag {k}={v!r} is not a label")
    left = math.ceil((spec.deadline - now).total_seconds())
    if left < 1:
        raise CheckFailure(
            "timeout", f"{NAME}: the job's hard deadline passed before its Job was created"
        )
    comfyui = script_part(spec.startup_script, "comfyui").strip()
    container: dict[str, Any] = {
        "name": "comfyui",
        "image": spec.image or DEFAULT_COMFYUI_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", f"{comfyui}\nwait\n"],
        "resources": {"limits": {GPU_RESOURCE: "1"}, "requests": {GPU_RESOURCE: "1"}},
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 10,
        "containers": [container],
    }
    affinity = _gpu_affinity(ctx)
    if affinity is not None:
        pod_spec["affinity"] = affinity
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": left,
            "ttlSecondsAfterFinished": TTL_S,
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }


class CoreWeaveJobs:
    """The dispatch side of CoreWeave (see the module's text). Stateless."""

    deadman = "shutdown"  # (the container runs the script's comfyui part only)
    mode = "container"
    default_ssh_user = "root"  # (unused: no SSH)
    default_image = DEFAULT_COMFYUI_IMAGE
    default_comfyui_command = DEFAULT_COMFYUI_COMMAND
    deadman_words = (
        "Kubernetes ends the Job's pod at the deadline (activeDeadlineSeconds) even if the app "
        "is gone, and deletes the finished Job (ttlSecondsAfterFinished)"
    )

    async def launch(self, ctx: CheckContext, spec: LaunchSpec) -> Machine:
        host, token, ns = _settings(ctx)
        body = job_body(ctx, spec, ns, datetime.now(UTC))
        api = _api_client(ctx, host, token)
        try:
            try:
                job = await _doc(ctx, host, _batch(api).create_namespaced_job, ns, body)
            except kubernetes.client.exceptions.ApiException as exc:
                if exc.status != 409:
                    raise _failure(
                        exc, host, ns, f"create the Job {spec.name}", "create on jobs.batch"
                    ) from None
                job = await self._read(ctx, api, host, ns, spec.name)
                if job is None:  # (deleted in between: the next launch makes it again)
                    raise CheckFailure(
                        "error", f"{NAME}: the Job {spec.name} vanished while it was launched"
                    ) from None
        finally:
            api.close()
        machine = _machine(job, None, host, ns)
        if machine.created_at is None:
            machine.created_at = datetime.now(UTC)
        return machine

    async def _read(
        self, ctx: CheckContext, api: Any, host: str, ns: str, name: str
    ) -> dict[str, Any] | None:
        try:
            job = await _doc(ctx, host, _batch(api).read_namespaced_job, name, ns)
        except kubernetes.client.exceptions.ApiException as exc:
            if exc.status == 404 and "namespaces" not in _status_message(exc):
                return None
            raise _failure(exc, host, ns, f"read the Job {name}", "get on jobs.batch") from None
        return job if isinstance(job, dict) else None

    async def _pods(
        self, ctx: CheckContext, api: Any, host: str, ns: str, selector: str
    ) -> list[dict[str, Any]]:
        try:
            doc = await _doc(ctx, host, _core(api).list_namespaced_pod, ns, label_selector=selector)
        except kubernetes.client.exceptions.ApiException as exc:
            raise _failure(exc, host, ns, "list pods", "list on pods") from None
        return list((doc or {}).get("items") or [])

    async def _describe(
        self, ctx: CheckContext, host: str, token: str, ns: str, name: str
    ) -> Machine | None:
        api = _api_client(ctx, host, token)
        try:
            job = await self._read(ctx, api, host, ns, name)
            if job is None:
                return None
            pods = await self._pods(ctx, api, host, ns, f"{JOB_NAME_LABEL}={name}")
        finally:
            api.close()
        uid = (job.get("metadata") or {}).get("uid")
        return _machine(job, _pick_pod(pods, uid), host, ns)

    async def find(self, ctx: CheckContext, name: str) -> Machine | None:
        host, token, ns = _settings(ctx)
        return await self._describe(ctx, host, token, ns, name)

    async def describe(self, ctx: CheckContext, machine: Machine) -> Machine:
        host, token, ns, name = _where(ctx, machine)
        described = await self._describe(ctx, host, token, ns, name)
        if described is None:
            return Machine(
                id=machine.id,
                name=machine.name,
                status="released",
                raw_status="gone",
                created_at=machine.created_at,
                refs=dict(machine.refs),
            )
        described.created_at = machine.created_at or described.created_at
        return described

    async def _delete(
        self, ctx: CheckContext, host: str, token: str, ns: str, kind: str, name: str
    ) -> None:
        api = _api_client(ctx, host, token)
        try:
            if kind == "pod":
                call, rbac = _core(api).delete_namespaced_pod, "delete on pods"
            else:
                call, rbac = _batch(api).delete_namespaced_job, "delete on jobs.batch"
            try:
                await _doc(ctx, host, call, name, ns, propagation_policy="Background")
            except kubernetes.client.exceptions.ApiException as exc:
                if exc.status == 404 and "namespaces" not in _status_message(exc):
                    return
                raise _failure(exc, host, ns, f"delete the {kind} {name}", rbac) from None
        finally:
            api.close()

    async def release(self, ctx: CheckContext, machine: Machine) -> None:
        host, token, ns, name = _where(ctx, machine)
        await self._delete(ctx, host, token, ns, "job", name)

    async def resources(self, ctx: CheckContext, home_id: str) -> list[Resource]:
        host, token, ns = _settings(ctx)
        selector = f"{HOME_TAG}={home_id}"
        api = _api_client(ctx, host, token)
        try:
            try:
                doc = await _doc(
                    ctx, host, _batch(api).list_namespaced_job, ns, label_selector=selector
                )
            except kubernetes.client.exceptions.ApiException as exc:
                raise _failure(exc, host, ns, "list Jobs", "list on jobs.batch") from None
            pods = await self._pods(ctx, api, host, ns, selector)
        finally:
            api.close()
        found: list[Resource] = []
        names: set[str] = set()
        for job in (doc or {}).get("items") or []:
            meta = job.get("metadata") or {}
            name = str(meta.get("name") or "")
            names.add(name)
            status, raw = _state(job, None)
            active = (job.get("status") or {}).get("active")
            found.append(
                Resource(
                    kind="machine",
                    id=name,
                    name=name,
                    job_id=_job_id(meta.get("labels")),
                    status="active" if active and status == "booting" else raw,
                    created_at=_stamp(meta.get("creationTimestamp")),
                )
            )
        for pod in pods:
            meta = pod.get("metadata") or {}
            labels = meta.get("labels") or {}
            if labels.get(JOB_NAME_LABEL) in names or labels.get("job-name") in names:
                continue  # (its Job is listed: stopping the Job stops it)
            found.append(
                Resource(
                    kind="pod",
                    id=str(meta.get("name") or ""),
                    name=str(meta.get("name") or ""),
                    job_id=_job_id(labels),
                    status=str((pod.get("status") or {}).get("phase") or ""),
                    created_at=_stamp(meta.get("creationTimestamp")),
                )
            )
        return found

    async def stop(self, ctx: CheckContext, resource: Resource) -> None:
        host, token, ns = _settings(ctx)
        kind = "pod" if resource.kind == "pod" else "job"
        await self._delete(ctx, host, token, ns, kind, resource.id)

    @contextlib.asynccontextmanager
    async def open_port(self, ctx: CheckContext, machine: Machine, port: int) -> AsyncIterator[str]:
        """``http://127.0.0.1:<local port>`` relayed to ``port`` of the Job's pod through the
        API server's port-forward (:mod:`.coreweave_portforward`); ComfyUIError
        ``unreachable`` when the pod is not there or not running (yet)."""
        from .coreweave_portforward import port_forward

        host, token, ns, name = _where(ctx, machine)
        pod = str(machine.refs.get("pod") or "")
        if not pod:
            try:
                described = await self._describe(ctx, host, token, ns, name)
            except CheckFailure as failure:
                raise ComfyUIError("unreachable", failure.message) from None
            pod = str((described.refs.get("pod") if described else "") or "")
            if not pod:
                raise ComfyUIError(
                    "unreachable", f"{ctx.name}: the Job {name} has no pod (yet) in {ns}"
                )
        async with port_forward(
            ctx.name, host, ns, pod, int(port), token=token, ca_bundle=ctx.network.ca_bundle
        ) as url:
            yield url


def _job_id(labels: Any) -> int | None:
    text = str((labels or {}).get(JOB_TAG) or "")
    return int(text) if text.isdigit() else None
