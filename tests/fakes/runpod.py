"""A contract fake of RunPod's GraphQL API and serverless endpoint health.

Written from RunPod's documentation and docs/providers.md (what the official client was recorded
sending), not from the adapter:

* ``POST /graphql`` — ``Authorization: Bearer KEY``, ``Content-Type: application/json``, body
  ``{"query": "...", "variables"?: {...}}``. Only the current-user query is served
  (``myself { <fields of User> }``); an unknown field is a GraphQL validation error (HTTP 400
  with ``errors``), a body without a query string is 400, a non-JSON content type is 400, GET
  is 405. A bad or missing key gets HTTP 401 (``bad_key="401"``) or, as RunPod's GraphQL also
  does, HTTP 200 with an ``errors`` array (``bad_key="errors_in_200"``).
* ``GET /v2/{endpoint_id}/health`` — for each endpoint in ``endpoints`` (id -> the health body,
  ``{"jobs": {...}, "workers": {...}}``); the key may come as ``Bearer KEY`` or bare, as RunPod's
  own examples send it; anything else is 401. An endpoint id the account does not have is 404.
  ``denied_endpoints`` (id -> 401 or 403) makes every serverless call on that endpoint refuse the
  good key (a key restricted to other endpoints).
* The queue-based serverless API of a worker-comfyui endpoint (docs.runpod.io "Send API
  requests"; github.com/runpod-workers/worker-comfyui README and handler.py), same auth:

  - ``POST /v2/{ep}/run`` — body ``{"input": {"workflow": {...}, "images"?: [{"name", "image":
    base64}]}, "policy"?: {"executionTimeout": ms 5000..604800000, "ttl": ms 10000..604800000,
    "lowPriority"?: bool}, "webhook"?, "s3Config"?}``; anything else is 400 ``{"error": ...}``, a
    body over ``max_body`` bytes (RunPod: 10 MB for ``/run``) is 413. Answers ``{"id",
    "status": "IN_QUEUE"}``.
  - ``GET /v2/{ep}/status/{id}`` — ``{"id", "status", "delayTime", "executionTime", "output"?,
    "error"?}``; an id it does not hold (never made, or its data expired) is 404.
  - ``POST /v2/{ep}/cancel/{id}`` — a request IN_QUEUE or IN_PROGRESS becomes CANCELLED; answers
    ``{"id", "status"}``.

  Each request lives on the fake's clock (``speed`` fake seconds per real second): ``queue_s``
  IN_QUEUE, then ``run_s`` IN_PROGRESS, then its end. The end is that of a small ComfyUI-like
  executor: the workflow must be a graph of ``{"class_type", "inputs"}`` nodes and every
  LoadImage must name an image the request carries (else FAILED as worker-comfyui reports a
  refused workflow); each SaveImage makes one real PNG (the LoadImage's image doubled, or a
  plain tile), named ``<last part of filename_prefix>_00001_.png`` (``filenames`` overrides a
  run's name, e.g. with a hostile one), returned as base64 ``data`` or, with ``output_mode=
  "url"``, as an ``s3_url`` the fake itself serves at ``GET /bucket/{name}`` (no auth: a
  presigned URL). Run ``n`` (the n-th accepted ``/run``, from 0) in ``fail_runs`` FAILS
  (``error`` + ``output.details``, worker-comfyui's shape); in ``error_runs`` it COMPLETES with
  its image and ``output.errors``. The server-side ``executionTimeout`` is enforced (a run
  longer than it is TIMED_OUT at that moment, ``executionTime`` = the timeout) and so is the
  ``ttl`` (queue + run: TIMED_OUT), and what a request ended with is kept ``retention_s``
  (RunPod: 30 min) after its end, then it is 404. :meth:`RunPodFake.outstanding` lists the
  requests still IN_QUEUE or IN_PROGRESS.

``mode`` forces answers for every key: ``"null_myself"`` (200 with ``data.myself`` null) or
``"server_error"`` (200 with a non-auth ``errors`` array).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .http import FakeServer, Reply, Request, ResettableFake, reply_json

#: Fields of RunPod's ``User`` type this fake knows (a subset of the real schema).
USER_FIELDS = ("id", "email", "pubKey", "clientBalance", "currentSpendPerHr", "minBalance")

BAD_KEY_MESSAGE = "Unauthorized request, please check your API key."

MIN_EXECUTION_TIMEOUT_MS = 5_000
MIN_TTL_MS = 10_000
MAX_POLICY_MS = 7 * 24 * 3600 * 1000
ACTIVE = ("IN_QUEUE", "IN_PROGRESS")


@dataclass
class ServerlessRequest:
    """One ``/run`` request as the fake holds it (times on the fake's clock, in seconds)."""

    id: str
    endpoint: str
    index: int  # the n-th accepted /run of this fake
    body: dict[str, Any]
    submitted: float
    queue_s: float
    run_s: float
    execution_timeout_s: float
    ttl_s: float
    cancelled_at: float | None = None
    result: dict[str, Any] | None = None  # the executor's end: status, output, error

    @property
    def images(self) -> list[dict[str, Any]]:
        return list(self.body["input"].get("images") or [])

    @property
    def workflow(self) -> dict[str, Any]:
        return dict(self.body["input"]["workflow"])


def health_body(
    *,
    idle: int = 0,
    running: int = 0,
    initializing: int = 0,
    throttled: int = 0,
    unhealthy: int = 0,
    ready: int | None = None,
    in_queue: int = 0,
    in_progress: int = 0,
    completed: int = 0,
    failed: int = 0,
) -> dict[str, Any]:
    """A ``/health`` answer in the documented shape (plus the worker states live ones carry)."""
    return {
        "jobs": {
            "completed": completed,
            "failed": failed,
            "inProgress": in_progress,
            "inQueue": in_queue,
            "retried": 0,
        },
        "workers": {
            "idle": idle,
            "initializing": initializing,
            "ready": idle if ready is None else ready,
            "running": running,
            "throttled": throttled,
            "unhealthy": unhealthy,
        },
    }


@dataclass
class RunPodFake(ResettableFake):
    key: str = "rpa_GOODKEY_0123456789abcdef"
    user_id: str = "user_2Xk9"
    email: str = "studio@example.com"
    bad_key: str = "401"  # or "errors_in_200"
    mode: str = "normal"  # or "null_myself", "server_error"
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    denied_endpoints: dict[str, int] = field(default_factory=dict)  # id -> 401 | 403
    # The serverless executor (see the module's text).
    queue_s: float = 0.0
    run_s: float = 0.2
    speed: float = 1.0  # fake seconds per real second
    fail_runs: set[int] = field(default_factory=set)
    error_runs: set[int] = field(default_factory=set)
    output_mode: str = "base64"  # or "url"
    filenames: dict[int, str] = field(default_factory=dict)
    retention_s: float = 1800.0
    max_body: int = 10 * 2**20
    jobs: dict[str, ServerlessRequest] = field(default_factory=dict)
    bucket: dict[str, bytes] = field(default_factory=dict)
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        self._lock = threading.RLock()
        self.server.route("POST", "/graphql")(self._graphql)
        self.server.route("GET", "/v2/{ep}/health")(self._health)
        self.server.route("POST", "/v2/{ep}/run")(self._run)
        self.server.route("GET", "/v2/{ep}/status/{id}")(self._status)
        self.server.route("POST", "/v2/{ep}/cancel/{id}")(self._cancel)
        self.server.route("GET", "/bucket/{name}")(self._bucket)

    def add_endpoint(self, endpoint_id: str, body: dict[str, Any]) -> None:
        self.endpoints[endpoint_id] = body

    @property
    def graphql_url(self) -> str:
        return f"{self.server.base}/graphql"

    def provider(
        self, pid: str, *, key: str | None = None, endpoint: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A RunPod provider entry whose serverless base and GraphQL URL are this fake, with
        ``key`` (default: the one this fake accepts) and ``endpoint`` (a serverless endpoint
        id) in its config; ``fields`` are more entry fields (``template_id``, ``meta`` ...)."""
        config: dict[str, Any] = {
            "api_key": self.key if key is None else key,
            "endpoints": {"graphql": self.graphql_url},
        }
        if endpoint is not None:
            config["endpoint_id"] = endpoint
        return {"id": pid, "base_url": self.serverless_base, "config": config, **fields}

    @property
    def serverless_base(self) -> str:
        return f"{self.server.base}/v2"

    # -- GraphQL ---------------------------------------------------------------------------

    def _graphql(self, req: Request) -> Reply:
        if not req.headers.get("content-type", "").lower().startswith("application/json"):
            return reply_json(400, {"errors": [{"message": "Must provide query string."}]})
        if req.bearer != self.key:
            if self.bad_key == "errors_in_200":
                return reply_json(
                    200,
                    {
                        "errors": [{"message": BAD_KEY_MESSAGE, "path": ["myself"]}],
                        "data": {"myself": None},
                    },
                )
            return reply_json(401, {"errors": [{"message": BAD_KEY_MESSAGE}]})
        try:
            body = json.loads(req.body or b"null")
        except ValueError:
            return reply_json(400, {"errors": [{"message": "POST body sent invalid JSON."}]})
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str) or not query.strip():
            return reply_json(400, {"errors": [{"message": "Must provide query string."}]})
        if self.mode == "server_error":
            return reply_json(
                200,
                {
                    "errors": [
                        {
                            "message": "Something went wrong. Please try again later or "
                            "contact support."
                        }
                    ],
                    "data": None,
                },
            )
        match = re.search(r"\bmyself\s*\{([^{}]*)\}", query)
        if match is None:
            return reply_json(
                400,
                {
                    "errors": [
                        {
                            "message": "this fake serves only the myself query",
                            "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
                        }
                    ]
                },
            )
        wanted = match.group(1).split()
        for name in wanted:
            if name not in USER_FIELDS:
                return reply_json(
                    400,
                    {
                        "errors": [
                            {
                                "message": f'Cannot query field "{name}" on type "User".',
                                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
                            }
                        ]
                    },
                )
        if self.mode == "null_myself":
            return reply_json(200, {"data": {"myself": None}})
        user = {
            "id": self.user_id,
            "email": self.email,
            "pubKey": None,
            "clientBalance": 25.0,
            "currentSpendPerHr": 0.0,
            "minBalance": 0.0,
        }
        return reply_json(200, {"data": {"myself": {n: user[n] for n in wanted}}})

    # -- serverless ------------------------------------------------------------------------

    def _denied(self, req: Request, endpoint_id: str) -> Reply | None:
        """401 for a bad key, the endpoint's refusal for a restricted one, 404 for an endpoint
        the account does not have; None when the call may go on."""
        auth = req.headers.get("authorization", "")
        if req.bearer != self.key and auth != self.key:
            return 401, {"Content-Type": "text/plain"}, "Unauthorized"
        if endpoint_id in self.denied_endpoints:
            status = self.denied_endpoints[endpoint_id]
            return reply_json(status, {"error": "API key does not have access to this endpoint"})
        if endpoint_id not in self.endpoints:
            return reply_json(404, {"error": "endpoint not found"})
        return None

    def _health(self, req: Request) -> Reply:
        endpoint_id = req.params["ep"]
        refused = self._denied(req, endpoint_id)
        if refused is not None:
            return refused
        return reply_json(200, self.endpoints[endpoint_id])

    # -- serverless jobs ---------------------------------------------------------------------

    def now(self) -> float:
        """The fake's clock (seconds; ``speed`` of them per real second)."""
        return time.monotonic() * self.speed

    def _run(self, req: Request) -> Reply:
        endpoint_id = req.params["ep"]
        refused = self._denied(req, endpoint_id)
        if refused is not None:
            return refused
        if len(req.body) > self.max_body:
            return reply_json(413, {"error": "request body too large (max 10MB for /run)"})
        try:
            body = req.json()
        except ValueError:
            return reply_json(400, {"error": "invalid JSON body"})
        problem = _check_run_body(body)
        if problem is not None:
            return reply_json(400, {"error": problem})
        policy = body.get("policy") or {}
        with self._lock:
            job = ServerlessRequest(
                id=f"{uuid.uuid4()}-u1",
                endpoint=endpoint_id,
                index=len(self.jobs),
                body=body,
                submitted=self.now(),
                queue_s=self.queue_s,
                run_s=self.run_s,
                execution_timeout_s=policy.get("executionTimeout", 600_000) / 1000,
                ttl_s=policy.get("ttl", 86_400_000) / 1000,
            )
            self.jobs[job.id] = job
        return reply_json(200, {"id": job.id, "status": "IN_QUEUE"})

    def state(self, job: ServerlessRequest, at: float | None = None) -> dict[str, Any] | None:
        """The request's ``/status`` answer at fake time ``at`` (now), None once its data is
        gone (``retention_s`` after its end)."""
        at = self.now() if at is None else at
        elapsed = at - job.submitted
        start = job.submitted + job.queue_s  # when a worker takes it
        if job.cancelled_at is not None:
            ended, status, extra = job.cancelled_at, "CANCELLED", {}
            ran = max(0.0, job.cancelled_at - start)
        elif job.queue_s >= job.ttl_s and elapsed >= job.ttl_s:  # no worker took it in time
            ended, status, extra, ran = job.submitted + job.ttl_s, "TIMED_OUT", {}, 0.0
        elif elapsed < job.queue_s:
            return self._answer(job, "IN_QUEUE", elapsed, 0.0, {})
        else:
            limit = min(job.execution_timeout_s, job.ttl_s - job.queue_s)
            end = start + min(job.run_s, limit)
            if at < end:
                return self._answer(job, "IN_PROGRESS", job.queue_s, at - start, {})
            if job.run_s > limit:  # stopped by executionTimeout (or the ttl)
                ended, status, extra, ran = end, "TIMED_OUT", {}, limit
            else:
                ended, ran = end, job.run_s
                extra = self._execute(job)
                status = extra.pop("status")
        if at >= ended + self.retention_s:
            return None
        delay = min(job.queue_s, ended - job.submitted)
        return self._answer(job, status, delay, ran, extra)

    def _answer(
        self,
        job: ServerlessRequest,
        status: str,
        delay_s: float,
        run_s: float,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": job.id,
            "status": status,
            "delayTime": round(delay_s * 1000),
            "executionTime": round(run_s * 1000),
        }
        if status != "IN_QUEUE":
            body["workerId"] = "fake-worker-1"
        return {**body, **extra}

    def outstanding(self) -> list[str]:
        """The ids of the requests still IN_QUEUE or IN_PROGRESS now."""
        now = self.now()
        with self._lock:
            jobs = list(self.jobs.values())
        out = []
        for job in jobs:
            state = self.state(job, now)
            if state is not None and state["status"] in ACTIVE:
                out.append(job.id)
        return out

    def status_of(self, request_id: str) -> str | None:
        """A request's status now (None once its data is gone)."""
        state = self.state(self.jobs[request_id])
        return None if state is None else str(state["status"])

    def _status(self, req: Request) -> Reply:
        endpoint_id = req.params["ep"]
        refused = self._denied(req, endpoint_id)
        if refused is not None:
            return refused
        job = self.jobs.get(req.params["id"])
        state = self.state(job) if job is not None and job.endpoint == endpoint_id else None
        if state is None:
            return reply_json(404, {"error": "request does not exist"})
        return reply_json(200, state)

    def _cancel(self, req: Request) -> Reply:
        endpoint_id = req.params["ep"]
        refused = self._denied(req, endpoint_id)
        if refused is not None:
            return refused
        job = self.jobs.get(req.params["id"])
        with self._lock:
            now = self.now()
            state = (
                self.state(job, now) if job is not None and job.endpoint == endpoint_id else None
            )
            if job is None or state is None:
                return reply_json(404, {"error": "request does not exist"})
            if state["status"] in ACTIVE:
                job.cancelled_at = now
                state = self.state(job, now) or state
        return reply_json(200, {"id": job.id, "status": state["status"]})

    def _bucket(self, req: Request) -> Reply:
        data = self.bucket.get(req.params["name"])
        if data is None:
            return 404, {"Content-Type": "application/xml"}, "<Error><Code>NoSuchKey</Code></Error>"
        return 200, {"Content-Type": "image/png"}, data

    # -- the ComfyUI-like executor ------------------------------------------------------------

    def _execute(self, job: ServerlessRequest) -> dict[str, Any]:
        """What worker-comfyui returns for the request (computed once, kept)."""
        with self._lock:
            if job.result is None:
                job.result = self._outcome(job)
            return json.loads(json.dumps(job.result))

    def _outcome(self, job: ServerlessRequest) -> dict[str, Any]:
        from PIL import Image

        if job.index in self.fail_runs:
            return {
                "status": "FAILED",
                "error": "Job processing failed",
                "output": {
                    "details": [
                        "Workflow execution error: Node Type: KSampler, Node ID: 3, Message: "
                        "CUDA out of memory"
                    ]
                },
            }
        uploads: dict[str, bytes] = {}
        for item in job.images:
            uploads[item["name"]] = _b64(item["image"])
        images: list[dict[str, Any]] = []
        loaded: Image.Image | None = None
        for node_id, node in job.workflow.items():
            if node.get("class_type") != "LoadImage":
                continue
            name = (node.get("inputs") or {}).get("image")
            if name not in uploads:
                return {
                    "status": "FAILED",
                    "error": "Workflow validation failed:\n• Node "
                    f"{node_id} (errors): Invalid image file: {name}",
                }
            try:
                with Image.open(io.BytesIO(uploads[name])) as img:
                    loaded = img.convert("RGB")
            except OSError:
                return {
                    "status": "FAILED",
                    "error": f"Workflow execution error: Node Type: LoadImage, Node ID: "
                    f"{node_id}, Message: cannot identify image file {name}",
                }
        for node in job.workflow.values():
            if node.get("class_type") != "SaveImage":
                continue
            prefix = str((node.get("inputs") or {}).get("filename_prefix") or "ComfyUI")
            filename = self.filenames.get(job.index) or f"{prefix.rsplit('/', 1)[-1]}_00001_.png"
            if loaded is not None:
                img = loaded.resize((loaded.width * 2, loaded.height * 2))
            else:
                img = Image.new("RGB", (16, 16), (40 * job.index % 256, 90, 160))
            buf = io.BytesIO()
            img.save(buf, "PNG")
            png = buf.getvalue()
            if self.output_mode == "url":
                key = f"{job.id}-{len(images)}.png"
                self.bucket[key] = png
                images.append(
                    {
                        "filename": filename,
                        "type": "s3_url",
                        "data": f"{self.server.base}/bucket/{key}",
                    }
                )
            else:
                images.append(
                    {
                        "filename": filename,
                        "type": "base64",
                        "data": base64.b64encode(png).decode(),
                    }
                )
        output: dict[str, Any] = {"images": images}
        if not images:
            output["status"] = "success_no_images"
        if job.index in self.error_runs:
            output["errors"] = [
                "Error uploading run_00002_.png to S3: An error occurred (AccessDenied)"
            ]
        return {"status": "COMPLETED", "output": output}


def _b64(text: str) -> bytes:
    """A base64 string (a ``data:...;base64,`` prefix allowed, as worker-comfyui allows it)."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    return base64.b64decode(text, validate=True)


def _policy_ms(policy: dict[str, Any], name: str, low: int) -> str | None:
    if name not in policy:
        return None
    value = policy[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_POLICY_MS:
        return (
            f"policy.{name} must be an integer number of milliseconds from {low} to {MAX_POLICY_MS}"
        )
    return None


def _check_run_body(body: Any) -> str | None:
    """Why RunPod (and worker-comfyui's input check) would refuse the ``/run`` body, or None."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    unknown = set(body) - {"input", "policy", "webhook", "s3Config"}
    if unknown:
        return f"unknown fields: {sorted(unknown)}"
    job_input = body.get("input")
    if not isinstance(job_input, dict):
        return "input is required and must be an object"
    workflow = job_input.get("workflow")
    if not isinstance(workflow, dict) or not workflow:
        return "input.workflow must be a ComfyUI API-format graph (an object)"
    for node_id, node in workflow.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            return f"input.workflow node {node_id} has no class_type"
        if not isinstance(node.get("inputs", {}), dict):
            return f"input.workflow node {node_id}: inputs must be an object"
    images = job_input.get("images")
    if images is not None:
        if not isinstance(images, list):
            return "'images' must be a list of objects with 'name' and 'image' keys"
        names = set()
        for item in images:
            if not (
                isinstance(item, dict)
                and isinstance(item.get("name"), str)
                and isinstance(item.get("image"), str)
            ):
                return "'images' must be a list of objects with 'name' and 'image' keys"
            if item["name"] in names:
                return f"image name {item['name']} is not unique"
            names.add(item["name"])
            try:
                _b64(item["image"])
            except (binascii.Error, ValueError):
                return f"Error decoding base64 for {item['name']}"
    policy = body.get("policy")
    if policy is not None:
        if not isinstance(policy, dict):
            return "policy must be an object"
        unknown = set(policy) - {"executionTimeout", "ttl", "lowPriority"}
        if unknown:
            return f"unknown policy fields: {sorted(unknown)}"
        for name, low in (("executionTimeout", MIN_EXECUTION_TIMEOUT_MS), ("ttl", MIN_TTL_MS)):
            problem = _policy_ms(policy, name, low)
            if problem is not None:
                return problem
        if "lowPriority" in policy and not isinstance(policy["lowPriority"], bool):
            return "policy.lowPriority must be a boolean"
    return None
