"""RunPod: credentials over the GraphQL API, endpoint health over the serverless API.

What is sent (docs/providers.md; the official client was recorded sending the same):

* validate — ``POST {graphql}`` with ``Authorization: Bearer KEY`` and the JSON body
  ``{"query": "query myself { myself { id email } }"}``: a fixed query, nothing pasted into it.
  GraphQL failures do not always come as HTTP errors: a bad key may get ``401`` or an HTTP
  ``200`` whose body carries an ``errors`` array, so the body is always read. An ``errors``
  array is a failure whatever the status: an authentication-looking one is
  ``invalid_credentials`` (naming ``api_key``), a forbidden one ``permission_denied``, anything
  else ``error`` with the server's (shortened) message. ``data.myself`` null is
  ``invalid_credentials`` too. With the ``endpoint_id`` option, validate also reads that
  endpoint's ``GET {serverless}/{endpoint_id}/health`` with the same key (jobs are sent there):
  401 or 403 after the account query passed means the key may not use the endpoint (a key
  restricted to other endpoints or without serverless access): ``permission_denied`` naming
  ``api_key``; 404 is ``misconfigured`` naming ``endpoint_id``. The ready, idle and running
  worker counts go into the message and ``detail`` (an endpoint scaled to zero is valid: its
  next job waits for a worker to start).
* health — with the ``endpoint_id`` option: ``GET {serverless}/{endpoint_id}/health`` (bearer),
  which answers ``{"jobs": {"completed", "failed", "inProgress", "inQueue", "retried"},
  "workers": {"idle", "running", ...}}`` (docs.runpod.io, serverless operation reference; live
  endpoints also report ``initializing``, ``ready``, ``throttled`` and ``unhealthy`` worker
  counts, all read as 0 when absent). 404 there means no such endpoint for this key:
  ``misconfigured`` naming ``endpoint_id``. Without ``endpoint_id`` health is the ``myself``
  query.

How endpoint health reads (``workers_ready`` = idle/ready workers plus running ones):

* ``healthy`` — a worker is ready or running and none is unhealthy; or the endpoint has scaled
  to zero with nothing queued (the normal resting state of a serverless endpoint: the next job
  waits for a cold start), or workers are still starting with nothing queued;
* ``degraded`` — some workers are unhealthy while others serve; or no worker is ready while jobs
  wait in the queue (throttled or starting workers, or none at all); or workers are throttled
  (the GPU type is scarce) while nothing is queued yet;
* ``unhealthy`` (code ``error``) — no worker can serve and every worker there is has crashed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .base import CheckContext, CheckFailure, Outcome
from .http_client import HttpClient
from .registry import register

#: The current-user query: fixed text, no values pasted in.
MYSELF_QUERY = "query myself { myself { id email } }"

_AUTH_WORDS = (
    "unauthorized",
    "unauthorised",
    "unauthenticated",
    "not authenticated",
    "authentication",
    "api key",
    "api_key",
    "apikey",
    "invalid token",
)
_FORBIDDEN_WORDS = ("forbidden", "permission", "not allowed", "access denied")
_MAX_SERVER_TEXT = 200


@register("runpod")
class RunPodAdapter:
    """Validation and health of a RunPod account and its serverless endpoint."""

    async def validate(self, ctx: CheckContext) -> Outcome:
        (key,) = ctx.require("api_key")
        endpoint_id = ctx.value("endpoint_id")
        async with ctx.http(auth_fields=["api_key"]) as http:
            me = await _myself(ctx, http, key)
            outcome = _account_outcome(me, "RunPod accepted the API key")
            if endpoint_id is None:
                return outcome
            workers, jobs = await _read_health(ctx, http, key, endpoint_id, validating=True)
        ready = _ready(workers)
        outcome.message += (
            f"; endpoint {endpoint_id} answers: {ready} worker{'s' if ready != 1 else ''} "
            f"ready ({max(workers['idle'], workers['ready'])} idle, {workers['running']} "
            f"running), {jobs['inQueue']} job{'s' if jobs['inQueue'] != 1 else ''} queued"
        )
        if ready == 0 and not jobs["inQueue"]:
            outcome.message += " (scaled to zero: the next job waits for a worker to start)"
        outcome.detail.update(
            endpoint_id=endpoint_id, workers_ready=ready, workers=workers, jobs=jobs
        )
        return outcome

    async def health(self, ctx: CheckContext) -> Outcome:
        (key,) = ctx.require("api_key")
        endpoint_id = ctx.value("endpoint_id")
        async with ctx.http(auth_fields=["api_key"]) as http:
            if endpoint_id is None:
                me = await _myself(ctx, http, key)
                outcome = _account_outcome(me, "RunPod answers and the API key works")
                outcome.message += (
                    "; no Serverless endpoint ID is set, so only the account was checked"
                )
                return outcome
            return await _endpoint_health(ctx, http, key, endpoint_id)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _shorten(text: str, key: str) -> str:
    text = " ".join(text.split()).replace(key, "***").rstrip(" .;")
    return text if len(text) <= _MAX_SERVER_TEXT else text[:_MAX_SERVER_TEXT] + "…"


def graphql_url(ctx: CheckContext) -> str:
    """RunPod's GraphQL URL (the ``graphql`` endpoint), or ``misconfigured`` naming it."""
    url = ctx.endpoint("graphql")
    if url is None:
        raise CheckFailure(
            "misconfigured",
            "RunPod: the GraphQL address is not set; set config.endpoints.graphql or remove "
            "the override",
            fields=["endpoints"],
        )
    return url


async def _myself(ctx: CheckContext, http: HttpClient, key: str) -> dict[str, Any]:
    """The ``myself`` object of the key's account, or the failure that says why not."""
    url = graphql_url(ctx)
    # 400 is how GraphQL servers answer a query they reject; its body says why.
    resp = await http.post(url, headers=_bearer(key), json={"query": MYSELF_QUERY}, ok=(200, 400))
    body = http.json(resp)
    if not isinstance(body, dict):
        raise CheckFailure(
            "error",
            f"RunPod answered {resp.status_code} with something that is not a GraphQL "
            "response; is the GraphQL address right?",
        )
    errors = body.get("errors")
    if errors:
        raise _graphql_failure(errors, key)
    if resp.status_code != 200:
        raise CheckFailure(
            "error", f"RunPod refused the account query ({resp.status_code}); try again later"
        )
    data = body.get("data")
    me = data.get("myself") if isinstance(data, dict) else None
    if me is None:
        raise CheckFailure(
            "invalid_credentials",
            "RunPod did not recognise the API key (no account came back); paste the key "
            "again or create a new one under Settings → API Keys",
            fields=["api_key"],
        )
    if not isinstance(me, dict) or not (me.get("email") or me.get("id")):
        raise CheckFailure(
            "error", "RunPod's account query came back without an account id; try again later"
        )
    return me


def _graphql_failure(errors: Any, key: str) -> CheckFailure:
    items = errors if isinstance(errors, list) else [errors]
    texts: list[str] = []
    codes: list[str] = []
    for item in items:
        if isinstance(item, dict):
            texts.append(str(item.get("message") or ""))
            ext = item.get("extensions")
            if isinstance(ext, dict) and ext.get("code"):
                codes.append(str(ext["code"]).upper())
        else:
            texts.append(str(item))
    joined = "; ".join(t for t in texts if t) or "no message"
    low = joined.lower()
    if "UNAUTHENTICATED" in codes or any(w in low for w in _AUTH_WORDS):
        return CheckFailure(
            "invalid_credentials",
            f"RunPod rejected the API key ({_shorten(joined, key)}); paste the key again or "
            "create a new one under Settings → API Keys",
            fields=["api_key"],
        )
    if "FORBIDDEN" in codes or any(w in low for w in _FORBIDDEN_WORDS):
        return CheckFailure(
            "permission_denied",
            f"RunPod accepted the API key but refused the account query "
            f"({_shorten(joined, key)}); give the key read access (or create one with All "
            "access)",
            fields=["api_key"],
        )
    return CheckFailure(
        "error", f"RunPod reported an error: {_shorten(joined, key)}; try again later"
    )


def _account_outcome(me: dict[str, Any], lead: str) -> Outcome:
    email = me.get("email") or None
    user_id = me.get("id") or None
    identity = str(email or user_id)
    detail: dict[str, Any] = {"identity": identity, "user_id": user_id, "email": email}
    return Outcome(f"{lead} (account {identity})", detail=detail)


def _count(obj: Any, name: str) -> int:
    value = obj.get(name) if isinstance(obj, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(0, int(value))


def health_counts(body: Any) -> tuple[dict[str, int], dict[str, int]]:
    """The worker and job counts of a ``/health`` answer (absent ones read as 0)."""
    workers_raw = body.get("workers") if isinstance(body, dict) else None
    jobs_raw = body.get("jobs") if isinstance(body, dict) else None
    workers = {
        n: _count(workers_raw, n)
        for n in ("idle", "ready", "running", "initializing", "throttled", "unhealthy")
    }
    jobs = {
        n: _count(jobs_raw, n) for n in ("inQueue", "inProgress", "completed", "failed", "retried")
    }
    return workers, jobs


def _ready(workers: dict[str, int]) -> int:
    """Workers that can take a job now: idle/ready ones plus running ones."""
    return max(workers["idle"], workers["ready"]) + workers["running"]


async def _read_health(
    ctx: CheckContext, http: HttpClient, key: str, endpoint_id: str, *, validating: bool = False
) -> tuple[dict[str, int], dict[str, int]]:
    """The endpoint's worker and job counts, or the failure that says why not. ``validating``:
    the account query already accepted the key, so 401/403 here means the key may not use
    this endpoint."""
    base = ctx.endpoint("serverless")
    if base is None:
        raise CheckFailure(
            "misconfigured",
            "RunPod: the serverless address is not set; set the base URL",
            fields=["base_url"],
        )
    url = f"{base}/{quote(endpoint_id, safe='')}/health"
    ok = (200, 401, 403, 404) if validating else (200, 404)
    resp = await http.get(url, headers=_bearer(key), ok=ok)
    if resp.status_code in (401, 403):
        raise CheckFailure(
            "permission_denied",
            f"RunPod accepted the API key for the account but refused it for serverless "
            f"endpoint {endpoint_id} ({resp.status_code}); give the key access to this "
            "endpoint (RunPod console → Settings → API Keys: All, or Restricted with this "
            "endpoint allowed)",
            fields=["api_key"],
            detail={"endpoint_id": endpoint_id},
        )
    if resp.status_code == 404:
        raise CheckFailure(
            "misconfigured",
            f"RunPod has no serverless endpoint {endpoint_id!r} for this API key (404); check "
            "the Serverless endpoint ID (RunPod console → Serverless → your endpoint)",
            fields=["endpoint_id"],
            detail={"endpoint_id": endpoint_id},
        )
    body = http.json(resp)
    if not isinstance(body, dict) or not (
        isinstance(body.get("workers"), dict) or isinstance(body.get("jobs"), dict)
    ):
        raise CheckFailure(
            "error",
            "RunPod's endpoint health came back without worker or job counts; is the base "
            "URL a RunPod serverless address (https://api.runpod.ai/v2)?",
            fields=["base_url"],
        )
    return health_counts(body)


async def _endpoint_health(
    ctx: CheckContext, http: HttpClient, key: str, endpoint_id: str
) -> Outcome:
    workers, jobs = await _read_health(ctx, http, key, endpoint_id)
    ready = _ready(workers)
    queued = jobs["inQueue"]
    starting, throttled, crashed = (
        workers["initializing"],
        workers["throttled"],
        workers["unhealthy"],
    )
    detail: dict[str, Any] = {
        "endpoint_id": endpoint_id,
        "workers_ready": ready,
        "workers": workers,
        "jobs": jobs,
    }
    name = f"RunPod endpoint {endpoint_id}"
    if ready > 0:
        summary = f"{ready} worker{'s' if ready != 1 else ''} ready or running"
        if queued:
            summary += f", {queued} job{'s' if queued != 1 else ''} queued"
        if crashed:
            return Outcome(
                f"{name}: {summary}, but {crashed} worker{'s are' if crashed != 1 else ' is'} "
                "unhealthy; check the worker logs in the RunPod console",
                detail=detail,
                health="degraded",
            )
        return Outcome(f"{name} is serving: {summary}", detail=detail)
    if crashed and not starting and not throttled:
        return Outcome(
            f"{name}: every worker has crashed ({crashed} unhealthy) and none can take jobs; "
            "check the worker image and its logs in the RunPod console",
            detail=detail,
            health="unhealthy",
            code="error",
        )
    if queued:
        states = ((throttled, "throttled"), (starting, "starting"), (crashed, "unhealthy"))
        why = ", ".join(f"{n} {state}" for n, state in states if n) or "no workers"
        if throttled:
            advice = "the GPU type is scarce: allow more GPU types for the endpoint"
        elif starting:
            advice = "workers are starting"
        else:
            advice = "check the endpoint's max workers in the RunPod console"
        return Outcome(
            f"{name}: no worker is ready and {queued} job{'s are' if queued != 1 else ' is'} "
            f"waiting ({why}); {advice}",
            detail=detail,
            health="degraded",
        )
    if throttled:
        return Outcome(
            f"{name}: {throttled} worker{'s are' if throttled != 1 else ' is'} throttled "
            "because the GPU type is scarce; jobs may wait. Allow more GPU types for the "
            "endpoint",
            detail=detail,
            health="degraded",
        )
    if starting:
        return Outcome(
            f"{name}: {starting} worker{'s are' if starting != 1 else ' is'} starting; "
            "nothing is queued",
            detail=detail,
        )
    return Outcome(
        f"{name} is idle (scaled to zero, nothing queued); the next job waits for a worker "
        "to start",
        detail=detail,
    )
