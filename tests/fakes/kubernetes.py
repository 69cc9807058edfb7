"""A contract fake of a Kubernetes API server (CoreWeave CKS), as far as the app uses it.

Written from the Kubernetes API conventions (kubernetes.io "API Concepts", the Status kind,
"Jobs", "Automatic Cleanup for Finished Jobs", "Authorization" / SelfSubjectAccessReview), the
port-forward WebSocket protocol (KEP-4006; the ``v4.channel.k8s.io`` framing as the
kubernetes-client ``stream/ws_client.py`` PortForward reads it) and docs/providers.md, not from
the adapter. Every request needs ``Authorization: Bearer <token>`` (else 401 ``Status``, reason
``Unauthorized``); a namespace in ``forbidden`` is 403 for everything, one not in
``namespaces`` 404 (``details.kind = "namespaces"``).

* ``GET /api/v1/namespaces/{ns}/pods`` (``?limit=N``, ``?labelSelector=``) — a ``PodList`` of
  the Jobs' pods; ``GET`` / ``DELETE .../pods/{name}``.
* ``POST /apis/authentication.k8s.io/v1/selfsubjectreviews`` — who the token is.
* ``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`` — ``status.allowed`` is
  False for a ``"<verb> <resource>[/<subresource>]"`` in ``denied`` (e.g.
  ``"create pods/portforward"``); 404 when ``access_review_missing`` (a cluster that does
  not serve it).
* ``GET /api/v1/nodes`` — a ``NodeList`` with GPU capacity, or 403 when ``nodes_forbidden``.
* Jobs (``batch/v1``): ``POST /apis/batch/v1/namespaces/{ns}/jobs`` validates the body (kind,
  apiVersion, ``metadata.name`` a DNS-1123 label — the Job controller puts it in a label —,
  label values, one container with an image, ``restartPolicy`` Never/OnFailure, positive
  ``activeDeadlineSeconds`` / non-negative ``ttlSecondsAfterFinished``: else 422 ``Invalid``
  with ``details.causes``), 409 ``AlreadyExists`` for a taken name, 403 ``Forbidden`` when
  ``create jobs`` is denied or with ``quota_exceeded`` (the ResourceQuota admission message,
  "exceeded quota: ..."). ``GET .../jobs`` (``labelSelector``), ``GET`` / ``DELETE
  .../jobs/{name}`` (``propagationPolicy`` in the query or a ``DeleteOptions`` body: batch/v1's
  default is ``Orphan``, which leaves the pods behind, as the real API does).
* The Job controller and kubelet, evaluated on every request: a new Job gets one pod
  ``<job>-<5 chars>`` (labels: the template's plus ``job-name``, ``batch.kubernetes.io/job-name``,
  ``controller-uid``), ``Pending`` without a node, ``Running`` after ``pod_start_s``; at
  ``status.startTime + activeDeadlineSeconds`` the pod is killed (deleted, counted failed) and
  the Job gets ``FailureTarget`` and ``Failed`` conditions with reason ``DeadlineExceeded``;
  ``ttlSecondsAfterFinished`` after it finished the Job and its pods are deleted.
* Port-forward: ``GET /api/v1/namespaces/{ns}/pods/{pod}/portforward?ports=P`` upgraded to a
  WebSocket (RFC 6455: the key, version 13, masked client frames) with subprotocol
  ``v4.channel.k8s.io`` (else 400). 403 when ``create pods/portforward`` is denied, 404 for an
  unknown pod, 400 for a pod not running (no node yet). After the 101 the server sends
  ``[0, lo, hi]`` and ``[1, lo, hi]`` (the port, little-endian, on the data and error channel),
  then connects to the pod's port: the pod's ComfyUI listens on the ``--port`` its container
  command gives (8188 without one), served by the local ``backend`` port (a real ComfyUI fake).
  Any other port, or no backend, is refused: the kubelet's message on channel 1, then close.
  Channel-0 frames from the client are relayed to it and its bytes come back as channel-0
  frames. A killed or deleted pod ends its port-forward connections.
* Every other path: 404 ``Status``; every request is recorded (``requests``), WebSocket
  upgrades included.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from .http import FakeServer, Reply, Request, ResettableFake, reply_json

WS_PROTOCOL = "v4.channel.k8s.io"
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?")
_POD_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery utilrand's alphabet


def status(code: int, reason: str, message: str, **details: Any) -> Reply:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return reply_json(code, body)


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class _Pod:
    name: str
    ns: str
    job: str
    labels: dict[str, str]
    spec: dict[str, Any]
    created: float
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    phase: str = "Pending"
    port: int = 8188  # the port ComfyUI listens on in the pod (its command's --port)


@dataclass
class _Job:
    body: dict[str, Any]
    created: float
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    pods: list[str] = field(default_factory=list)
    failed: int = 0
    finished: float | None = None
    conditions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def ns(self) -> str:
        return str(self.body["metadata"]["namespace"])


class _Upgrading(FakeServer):
    """The FakeServer whose handler hands WebSocket upgrades to ``upgrade`` (same host and
    port as the REST API, as on a real API server)."""

    upgrade: Any = None

    def __enter__(self) -> _Upgrading:
        super().__enter__()
        base = self._server.RequestHandlerClass
        server = self

        class Handler(base):  # type: ignore[valid-type,misc]
            def _handle(self) -> None:
                if (
                    self.command == "GET"
                    and "websocket" in (self.headers.get("Upgrade") or "").lower()
                    and server.upgrade is not None
                ):
                    self.close_connection = True
                    server.upgrade(self)
                    return
                super()._handle()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        self._server.RequestHandlerClass = Handler
        return self


@dataclass
class KubernetesFake(ResettableFake):
    token: str = "cw-GOODTOKEN-0123456789abcdef0123456789"
    username: str = "system:serviceaccount:tenant-cw1a2b:comfyvn"
    namespaces: list[str] = field(default_factory=lambda: ["tenant-cw1a2b", "renders"])
    forbidden: list[str] = field(default_factory=lambda: ["tenant-other"])
    nodes_forbidden: bool = True
    nodes: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"name": "g1", "gpus": "8", "allocatable": "8", "product": "A40"},
            {"name": "g2", "gpus": "8", "allocatable": "6", "product": "A40"},
            {"name": "cpu1", "gpus": None, "allocatable": None, "product": None},
        ]
    )
    #: RBAC: "<verb> <resource>[/<subresource>]" the token may not do (e.g. "create jobs").
    denied: list[str] = field(default_factory=list)
    access_review_missing: bool = False
    quota_exceeded: bool = False
    pod_start_s: float = 0.2
    #: The local port standing in for the pod's ComfyUI (a ComfyUI fake's port).
    backend: int | None = None
    server: FakeServer = field(default_factory=_Upgrading)

    def __post_init__(self) -> None:
        self._capture_defaults()
        self.server.default = self._route
        self.server.upgrade = self._upgrade  # type: ignore[attr-defined]
        self._lock = threading.RLock()
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._sessions: dict[str, list[socket.socket]] = {}  # pod uid -> its connections

    def _after_reset(self) -> None:
        with self._lock:
            self._jobs.clear()
            for key in list(self._pods):
                self._kill(key)
            self._pods.clear()

    def __exit__(self, *exc: object) -> None:
        self._after_reset()
        super().__exit__(*exc)

    @property
    def base(self) -> str:
        return self.server.base

    def pod_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/pods")]

    def job_requests(self, method: str | None = None) -> list[Request]:
        return [
            r
            for r in self.requests
            if "/apis/batch/v1/" in r.path and (method is None or r.method == method)
        ]

    def held(self) -> list[str]:
        """The Jobs and pods that still exist (``job ns/name``, ``pod ns/name``)."""
        with self._lock:
            self._tick()
            return sorted(
                [f"job {j.ns}/{j.name}" for j in self._jobs.values()]
                + [f"pod {p.ns}/{p.name}" for p in self._pods.values()]
            )

    def job(self, ns: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            self._tick()
            found = self._jobs.get((ns, name))
            return self._job_doc(found) if found else None

    def pods_of(self, ns: str, job: str) -> list[dict[str, Any]]:
        with self._lock:
            self._tick()
            return [self._pod_doc(p) for p in self._pods.values() if p.ns == ns and p.job == job]

    def open_sessions(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._sessions.values())

    # ------------------------------------------------------------------ the cluster's clock

    def _tick(self) -> None:
        now = time.time()
        with self._lock:
            for pod in self._pods.values():
                if pod.phase == "Pending" and now >= pod.created + self.pod_start_s:
                    pod.phase = "Running"
            for key, job in list(self._jobs.items()):
                spec = job.body["spec"]
                deadline = spec.get("activeDeadlineSeconds")
                if job.finished is None and deadline is not None and now >= job.created + deadline:
                    for pod_name in job.pods:
                        if (job.ns, pod_name) in self._pods:
                            self._kill((job.ns, pod_name))
                            job.failed += 1
                    job.finished = now
                    stamp = _stamp(now)
                    for kind in ("FailureTarget", "Failed"):
                        job.conditions.append(
                            {
                                "type": kind,
                                "status": "True",
                                "reason": "DeadlineExceeded",
                                "message": "Job was active longer than specified deadline",
                                "lastProbeTime": stamp,
                                "lastTransitionTime": stamp,
                            }
                        )
                ttl = spec.get("ttlSecondsAfterFinished")
                if job.finished is not None and ttl is not None and now >= job.finished + ttl:
                    self._delete_job(key, "Background")

    def _kill(self, key: tuple[str, str]) -> None:
        pod = self._pods.pop(key, None)
        if pod is None:
            return
        for conn in self._sessions.pop(pod.uid, []):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _delete_job(self, key: tuple[str, str], policy: str) -> _Job | None:
        job = self._jobs.pop(key, None)
        if job is not None and policy in ("Background", "Foreground"):
            for pod_name in job.pods:
                self._kill((job.ns, pod_name))
        return job

    # ------------------------------------------------------------------ REST

    def _allowed(self, verb: str, resource: str) -> bool:
        return f"{verb} {resource}" not in self.denied

    def _forbid(self, verb: str, resource: str, group: str, ns: str) -> Reply:
        plural = resource.split("/")[0]
        sub = resource.split("/")[1] if "/" in resource else ""
        what = f'resource "{plural}"' + (f' in subresource "{sub}"' if sub else "")
        full = f"{plural}.{group}" if group else plural
        return status(
            403,
            "Forbidden",
            f'{full} is forbidden: User "{self.username}" cannot {verb} {what} in API group '
            f'"{group}" in the namespace "{ns}"',
            kind=plural,
            group=group,
        )

    def _route(self, req: Request) -> Reply:
        if req.bearer != self.token:
            return status(401, "Unauthorized", "Unauthorized")
        with self._lock:
            self._tick()
            return self._answer(req)

    def _answer(self, req: Request) -> Reply:
        parts = req.path.strip("/").split("/")
        if req.path == "/apis/authentication.k8s.io/v1/selfsubjectreviews":
            if req.method != "POST":
                return status(405, "MethodNotAllowed", "the server does not allow this method")
            return reply_json(
                201,
                {
                    "kind": "SelfSubjectReview",
                    "apiVersion": "authentication.k8s.io/v1",
                    "metadata": {"creationTimestamp": None},
                    "status": {
                        "userInfo": {
                            "username": self.username,
                            "groups": ["system:serviceaccounts", "system:authenticated"],
                        }
                    },
                },
            )
        if req.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
            if self.access_review_missing:
                return status(404, "NotFound", "the server could not find the requested resource")
            if req.method != "POST":
                return status(405, "MethodNotAllowed", "the server does not allow this method")
            return self._access_review(req)
        if req.method == "GET" and req.path == "/api/v1/nodes":
            return self._nodes()
        if len(parts) >= 5 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods":
            ns = parts[3]
            if (refused := self._namespace(ns, "pods", "")) is not None:
                return refused
            if len(parts) == 5 and req.method == "GET":
                return self._pod_list(ns, req)
            if len(parts) == 6 and req.method == "GET":
                pod = self._pods.get((ns, parts[5]))
                if pod is None:
                    return status(404, "NotFound", f'pods "{parts[5]}" not found', kind="pods")
                return reply_json(200, self._pod_doc(pod))
            if len(parts) == 6 and req.method == "DELETE":
                if not self._allowed("delete", "pods"):
                    return self._forbid("delete", "pods", "", ns)
                pod = self._pods.get((ns, parts[5]))
                if pod is None:
                    return status(404, "NotFound", f'pods "{parts[5]}" not found', kind="pods")
                doc = self._pod_doc(pod)
                self._kill((ns, parts[5]))
                return reply_json(200, doc)
        if len(parts) >= 6 and parts[:4] == ["apis", "batch", "v1", "namespaces"]:
            if parts[5] == "jobs":
                return self._jobs_route(parts[4], parts[6:], req)
        return status(404, "NotFound", "the server could not find the requested resource")

    def _namespace(self, ns: str, resource: str, group: str) -> Reply | None:
        if ns in self.forbidden:
            return self._forbid("list", resource, group, ns)
        if ns not in self.namespaces:
            return status(
                404, "NotFound", f'namespaces "{ns}" not found', name=ns, kind="namespaces"
            )
        return None

    def _access_review(self, req: Request) -> Reply:
        try:
            body = req.json()
            attrs = body["spec"]["resourceAttributes"]
            verb, resource = str(attrs["verb"]), str(attrs["resource"])
        except (ValueError, KeyError, TypeError):
            return status(400, "BadRequest", "the body is not a SelfSubjectAccessReview")
        if body.get("kind", "SelfSubjectAccessReview") != "SelfSubjectAccessReview":
            return status(400, "BadRequest", "the body is not a SelfSubjectAccessReview")
        sub = attrs.get("subresource") or ""
        name = f"{resource}/{sub}" if sub else resource
        allowed = self._allowed(verb, name) and attrs.get("namespace") not in self.forbidden
        review = {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": body["spec"],
            "status": {"allowed": allowed},
        }
        if not allowed:
            review["status"]["reason"] = ""
        return reply_json(201, review)

    def _pod_list(self, ns: str, req: Request) -> Reply:
        selector = (req.query.get("labelSelector") or [""])[0]
        items = [
            self._pod_doc(p)
            for p in self._pods.values()
            if p.ns == ns and _selector_matches(selector, p.labels)
        ]
        limit = (req.query.get("limit") or [""])[0]
        if limit.isdigit():
            items = items[: int(limit)]
        return reply_json(
            200,
            {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "1"},
                "items": items,
            },
        )

    def _pod_doc(self, pod: _Pod) -> dict[str, Any]:
        doc_status: dict[str, Any] = {"phase": pod.phase}
        spec = dict(pod.spec)
        if pod.phase == "Running":
            spec["nodeName"] = "g1"
            doc_status["startTime"] = _stamp(pod.created + self.pod_start_s)
            doc_status["containerStatuses"] = [
                {
                    "name": c.get("name", ""),
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": doc_status["startTime"]}},
                }
                for c in spec.get("containers", [])
            ]
        else:
            doc_status["conditions"] = [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
            ]
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": pod.name,
                "namespace": pod.ns,
                "uid": pod.uid,
                "labels": dict(pod.labels),
                "creationTimestamp": _stamp(pod.created),
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": pod.job,
                        "uid": pod.labels.get("controller-uid", ""),
                    }
                ],
            },
            "spec": spec,
            "status": doc_status,
        }

    def _job_doc(self, job: _Job) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(json.dumps(job.body))
        doc["metadata"].update(
            {"uid": job.uid, "creationTimestamp": _stamp(job.created), "resourceVersion": "1"}
        )
        active = sum(1 for p in job.pods if (job.ns, p) in self._pods)
        job_status: dict[str, Any] = {"startTime": _stamp(job.created)}
        if active:
            job_status["active"] = active
        if job.failed:
            job_status["failed"] = job.failed
        if job.conditions:
            job_status["conditions"] = job.conditions
        doc["status"] = job_status
        return doc

    def _jobs_route(self, ns: str, rest: list[str], req: Request) -> Reply:
        if (refused := self._namespace(ns, "jobs", "batch")) is not None:
            return refused
        if not rest:
            if req.method == "POST":
                return self._create_job(ns, req)
            if req.method == "GET":
                selector = (req.query.get("labelSelector") or [""])[0]
                items = [
                    self._job_doc(j)
                    for j in self._jobs.values()
                    if j.ns == ns and _selector_matches(selector, j.body["metadata"]["labels"])
                ]
                return reply_json(
                    200,
                    {
                        "kind": "JobList",
                        "apiVersion": "batch/v1",
                        "metadata": {"resourceVersion": "1"},
                        "items": items,
                    },
                )
            return status(405, "MethodNotAllowed", "the server does not allow this method")
        if len(rest) != 1:
            return status(404, "NotFound", "the server could not find the requested resource")
        name = rest[0]
        job = self._jobs.get((ns, name))
        if req.method == "GET":
            if job is None:
                return self._job_not_found(name)
            return reply_json(200, self._job_doc(job))
        if req.method == "DELETE":
            if not self._allowed("delete", "jobs"):
                return self._forbid("delete", "jobs", "batch", ns)
            if job is None:
                return self._job_not_found(name)
            policy = (req.query.get("propagationPolicy") or [""])[0]
            if not policy and req.body:
                try:
                    policy = str(req.json().get("propagationPolicy") or "")
                except (ValueError, AttributeError):
                    return status(400, "BadRequest", "the body is not a DeleteOptions")
            self._delete_job((ns, name), policy or "Orphan")
            return reply_json(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {"name": name, "group": "batch", "kind": "jobs", "uid": job.uid},
                },
            )
        return status(405, "MethodNotAllowed", "the server does not allow this method")

    @staticmethod
    def _job_not_found(name: str) -> Reply:
        return status(
            404, "NotFound", f'jobs.batch "{name}" not found', name=name, group="batch", kind="jobs"
        )

    def _create_job(self, ns: str, req: Request) -> Reply:
        if not self._allowed("create", "jobs"):
            return self._forbid("create", "jobs", "batch", ns)
        try:
            body = req.json()
        except ValueError:
            return status(400, "BadRequest", "the body is not JSON")
        if not isinstance(body, dict) or body.get("kind") != "Job":
            return status(400, "BadRequest", "the body is not a Job")
        if body.get("apiVersion") != "batch/v1":
            return status(
                400,
                "BadRequest",
                f"the API version in the data ({body.get('apiVersion')}) does not match the "
                "expected API version (batch/v1)",
            )
        meta = body.setdefault("metadata", {})
        name = str(meta.get("name") or "")
        causes = self._invalid(body)
        if causes:
            return status(
                422,
                "Invalid",
                f'Job.batch "{name}" is invalid: '
                + "; ".join(f"{c['field']}: {c['message']}" for c in causes),
                name=name,
                group="batch",
                kind="Job",
                causes=causes,
            )
        if meta.get("namespace", ns) != ns:
            return status(
                400,
                "BadRequest",
                "the namespace of the object does not match the namespace on the request",
            )
        if (ns, name) in self._jobs:
            return status(
                409,
                "AlreadyExists",
                f'jobs.batch "{name}" already exists',
                name=name,
                group="batch",
                kind="jobs",
            )
        if self.quota_exceeded:
            return status(
                403,
                "Forbidden",
                f'jobs.batch "{name}" is forbidden: exceeded quota: job-quota, requested: '
                "count/jobs.batch=1, used: count/jobs.batch=4, limited: count/jobs.batch=4",
                name=name,
                group="batch",
                kind="jobs",
            )
        meta["namespace"] = ns
        meta.setdefault("labels", {})
        now = time.time()
        job = _Job(body=body, created=now)
        template = body["spec"]["template"]
        suffix = "".join(random.choice(_POD_SUFFIX) for _ in range(5))
        labels = {
            **(template.get("metadata") or {}).get("labels", {}),
            "job-name": name,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": job.uid,
            "batch.kubernetes.io/controller-uid": job.uid,
        }
        pod = _Pod(
            name=f"{name}-{suffix}",
            ns=ns,
            job=name,
            labels=labels,
            spec=json.loads(json.dumps(template["spec"])),
            created=now,
        )
        command = " ".join(
            str(a) for c in template["spec"]["containers"] for a in (c.get("command") or [])
        )
        found = re.search(r"--port (\d+)", command)
        pod.port = int(found.group(1)) if found else 8188
        job.pods.append(pod.name)
        self._jobs[(ns, name)] = job
        self._pods[(ns, pod.name)] = pod
        return reply_json(201, self._job_doc(job))

    @staticmethod
    def _invalid(body: dict[str, Any]) -> list[dict[str, str]]:
        causes: list[dict[str, str]] = []

        def bad(path: str, message: str) -> None:
            causes.append({"reason": "FieldValueInvalid", "message": message, "field": path})

        meta = body.get("metadata") or {}
        name = str(meta.get("name") or "")
        if not name:
            bad("metadata.name", "Required value: name or generateName is required")
        elif not _DNS1123_LABEL.fullmatch(name):
            bad(
                "metadata.name",
                f'Invalid value: "{name}": must be no more than 63 characters and a lowercase '
                "RFC 1123 label",
            )
        for where, labels in (
            ("metadata.labels", meta.get("labels") or {}),
            (
                "spec.template.metadata.labels",
                ((body.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels")
                or {},
            ),
        ):
            for v in labels.values():
                if not isinstance(v, str) or not _LABEL_VALUE.fullmatch(v):
                    bad(
                        f"{where}",
                        f'Invalid value: "{v}": a valid label must be 63 characters or less',
                    )
        spec = body.get("spec")
        if not isinstance(spec, dict):
            bad("spec", "Required value")
            return causes
        for key, low in (
            ("activeDeadlineSeconds", 1),
            ("ttlSecondsAfterFinished", 0),
            ("backoffLimit", 0),
        ):
            v = spec.get(key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < low):
                bad(f"spec.{key}", f"Invalid value: {v!r}: must be greater than or equal to {low}")
        template = spec.get("template")
        pod = template.get("spec") if isinstance(template, dict) else None
        if not isinstance(pod, dict):
            bad("spec.template.spec", "Required value")
            return causes
        if pod.get("restartPolicy") not in ("Never", "OnFailure"):
            bad(
                "spec.template.spec.restartPolicy",
                f'Unsupported value: "{pod.get("restartPolicy")}": supported values: '
                '"OnFailure", "Never"',
            )
        containers = pod.get("containers")
        if not isinstance(containers, list) or not containers:
            bad("spec.template.spec.containers", "Required value")
            return causes
        for i, c in enumerate(containers):
            if not isinstance(c, dict) or not c.get("name"):
                bad(f"spec.template.spec.containers[{i}].name", "Required value")
            elif not c.get("image"):
                bad(f"spec.template.spec.containers[{i}].image", "Required value")
            cmd = c.get("command") if isinstance(c, dict) else None
            if cmd is not None and (
                not isinstance(cmd, list) or not all(isinstance(a, str) for a in cmd)
            ):
                bad(f"spec.template.spec.containers[{i}].command", "Invalid value: not strings")
        return causes

    def _nodes(self) -> Reply:
        if self.nodes_forbidden:
            return status(
                403,
                "Forbidden",
                f'nodes is forbidden: User "{self.username}" cannot list resource "nodes" in API '
                'group "" at the cluster scope',
                kind="nodes",
            )
        items = []
        for n in self.nodes:
            capacity = {"cpu": "64", "memory": "512Gi"}
            allocatable = dict(capacity)
            labels = {"kubernetes.io/hostname": n["name"]}
            if n["gpus"] is not None:
                capacity["nvidia.com/gpu"] = n["gpus"]
                allocatable["nvidia.com/gpu"] = n["allocatable"]
                labels["gpu.nvidia.com/class"] = n["product"]
            items.append(
                {
                    "metadata": {"name": n["name"], "labels": labels},
                    "status": {"capacity": capacity, "allocatable": allocatable},
                }
            )
        return reply_json(
            200,
            {
                "kind": "NodeList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "1"},
                "items": items,
            },
        )

    # ------------------------------------------------------------------ port-forward

    def _upgrade(self, handler: Any) -> None:
        """A WebSocket upgrade on the request ``handler`` read (its raw socket after)."""
        from urllib.parse import urlsplit

        split = urlsplit(handler.path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        req = Request("GET", split.path, parse_qs(split.query), headers, b"")
        self.requests.append(req)

        def refuse(reply: Reply) -> None:
            code, hdrs, payload = reply
            data = payload.encode() if isinstance(payload, str) else payload
            handler.send_response(code)
            for k, v in hdrs.items():
                handler.send_header(k, v)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)

        if req.bearer != self.token:
            return refuse(status(401, "Unauthorized", "Unauthorized"))
        parts = split.path.strip("/").split("/")
        if not (
            len(parts) == 7
            and parts[:3] == ["api", "v1", "namespaces"]
            and parts[4] == "pods"
            and parts[6] == "portforward"
        ):
            return refuse(
                status(404, "NotFound", "the server could not find the requested resource")
            )
        ns, pod_name = parts[3], parts[5]
        with self._lock:
            self._tick()
            if (refused := self._namespace(ns, "pods", "")) is not None:
                return refuse(refused)
            if not self._allowed("create", "pods/portforward"):
                return refuse(self._forbid("create", "pods/portforward", "", ns))
            pod = self._pods.get((ns, pod_name))
            if pod is None:
                return refuse(status(404, "NotFound", f'pods "{pod_name}" not found', kind="pods"))
            if pod.phase != "Running":
                return refuse(
                    status(400, "BadRequest", f"pod {pod_name} does not have a host assigned")
                )
        ports = (req.query.get("ports") or [""])[0]
        if not ports.isdigit() or not 0 < int(ports) < 65536:
            return refuse(status(400, "BadRequest", 'query parameter "ports" is required'))
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
        key = headers.get("sec-websocket-key", "")
        if (
            WS_PROTOCOL not in offered
            or headers.get("sec-websocket-version") != "13"
            or "upgrade" not in headers.get("connection", "").lower()
            or len(base64.b64decode(key + "==", validate=False)) < 16
        ):
            return refuse(
                status(
                    400,
                    "BadRequest",
                    "unable to upgrade connection: no supported WebSocket subprotocol",
                )
            )
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        handler.wfile.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
                f"Sec-WebSocket-Protocol: {WS_PROTOCOL}\r\n\r\n"
            ).encode()
        )
        handler.wfile.flush()
        _PortForward(self, handler, pod, int(ports)).run()


class _PortForward:
    """One port-forward WebSocket (the server side): channel framing, relay to the backend."""

    def __init__(self, fake: KubernetesFake, handler: Any, pod: _Pod, port: int) -> None:
        self.fake, self.pod, self.port = fake, pod, port
        self.conn: socket.socket = handler.connection
        self.rfile = handler.rfile  # (may hold bytes already buffered after the headers)
        self._send_lock = threading.Lock()
        self.backend: socket.socket | None = None
        self.closing = False  # a close frame was sent

    def _frame(self, opcode: int, payload: bytes) -> None:
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack("!H", n)
        else:
            head += bytes([127]) + struct.pack("!Q", n)
        with self._send_lock:
            self.conn.sendall(head + payload)

    def _read(self, n: int) -> bytes:
        data: bytes = self.rfile.read(n)
        if len(data) < n:
            raise EOFError
        return data

    def _recv(self) -> tuple[int, bytes]:
        """One whole message (continuations joined); pings answered here."""
        buf = b""
        first_opcode = None
        while True:
            b0, b1 = self._read(2)
            fin, opcode = b0 & 0x80, b0 & 0x0F
            if not b1 & 0x80:
                raise ValueError("an unmasked client frame")
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(n)))
            if opcode == 0x9:
                self._frame(0xA, data)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                return 0x8, data
            if opcode != 0x0:
                first_opcode = opcode
            buf += data
            if fin:
                return first_opcode or 0x2, buf

    def _register(self, sock: socket.socket) -> None:
        with self.fake._lock:
            self.fake._sessions.setdefault(self.pod.uid, []).append(sock)

    def _unregister(self, sock: socket.socket) -> None:
        with self.fake._lock:
            socks = self.fake._sessions.get(self.pod.uid, [])
            if sock in socks:
                socks.remove(sock)

    def run(self) -> None:
        lo_hi = struct.pack("<H", self.port)
        self._register(self.conn)
        try:
            self._frame(0x2, b"\x00" + lo_hi)
            self._frame(0x2, b"\x01" + lo_hi)
            target = self.fake.backend if self.port == self.pod.port else None
            try:
                if target is None:
                    raise ConnectionRefusedError
                self.backend = socket.create_connection(("127.0.0.1", target), timeout=5)
                self.backend.settimeout(None)
            except OSError:
                message = (
                    f"an error occurred forwarding {self.port} -> {self.port}: error forwarding "
                    f"port {self.port} to pod {self.pod.uid}, uid : failed to execute portforward "
                    f"in network namespace: failed to connect to localhost:{self.port} inside "
                    f"namespace, IPv4: dial tcp4 127.0.0.1:{self.port}: connect: connection refused"
                )
                self._frame(0x2, b"\x01" + message.encode())
                self._frame(0x8, struct.pack("!H", 1000))
                return
            self._register(self.backend)
            down = threading.Thread(target=self._down, daemon=True)
            down.start()
            try:
                self._up()
            finally:
                try:
                    self.backend.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                down.join(5)
                self.backend.close()
                self._unregister(self.backend)
        except (OSError, EOFError, ValueError):
            pass
        finally:
            self._unregister(self.conn)

    def _up(self) -> None:
        """The client's channel-0 frames -> the pod's port."""
        assert self.backend is not None
        while True:
            opcode, data = self._recv()
            if opcode == 0x8:
                if not self.closing:
                    self.closing = True
                    try:
                        self._frame(0x8, data[:2])
                    except OSError:
                        pass
                return
            if opcode != 0x2 or not data:
                raise ValueError("not a binary channel frame")
            if data[0] != 0:
                raise ValueError(f"data on channel {data[0]}")
            self.backend.sendall(data[1:])

    def _down(self) -> None:
        """The pod's port -> channel-0 frames; its end closes the WebSocket."""
        assert self.backend is not None
        try:
            while True:
                data = self.backend.recv(65536)
                if not data:
                    break
                self._frame(0x2, b"\x00" + data)
            if not self.closing:
                self.closing = True
                self._frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        finally:
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
