"""A job's runs on a RunPod serverless endpoint running worker-comfyui (docs/providers.md,
"RunPod"; docs/architecture.md, "Dispatch: where the ComfyUI server is").

:func:`execute_serverless` is :func:`.comfyui_runs.execute` for a RunPod serverless endpoint:
the same plan (``core.runs.plan_runs`` with the names of :func:`.comfyui_runs.upload_name`),
the same :class:`.comfyui_runs.RunRecord` and :class:`.comfyui_runs.ExecutionReport`, the same
``outputs.json`` after every run, so the driver can use either. Every call carries the
``api_key`` as ``Authorization: Bearer KEY`` and goes to ``{serverless}/{endpoint_id}`` (the
provider's base URL, default ``https://api.runpod.ai/v2``, and its ``endpoint_id`` option):

* each run is ``POST .../run`` with ``{"input": {"workflow": graph, "images": [{"name": upload
  name, "image": base64}]}, "policy": {"executionTimeout": ms, "ttl": ms}}``: the graph with
  its placeholders filled, and only the run's own input image (worker-comfyui uploads it to
  ComfyUI's input folder under that name, which the graph's LoadImage names; a graph of its
  own sends no ``images``). ``executionTimeout`` is what is left under the job's runtime
  ceiling (``execution_timeout_ms()``, asked for each request), within RunPod's 5 s..7 days: a
  run with under 5 s left is not sent. ``ttl`` (RunPod counts it from the submission: queue and
  run together) is the same plus :data:`TTL_MARGIN_MS` to collect the result, at least 10 s.
  The two are the dead-man switch: a request the app stops following still ends on RunPod's
  side. A body over RunPod's 10 MB limit for ``/run`` is not sent (the run fails saying so).
  The answer's ``id`` becomes the run's ``prompt_id`` and is handed to ``on_change`` at once,
  so a driver that resumes the job follows that request instead of sending the run again (a
  request RunPod no longer holds, 404, runs afresh).
* ``GET .../status/{id}`` every :data:`POLL_FIRST_S` rising to :data:`POLL_MAX_S`. While the
  request is ``IN_QUEUE``, ``GET .../health`` at most every :data:`HEALTH_EVERY_S` (for the
  whole job), its worker and queue counts told to ``on_status`` in one line. ``COMPLETED``:
  the outputs are ``output.images[]`` (worker-comfyui 5.x), each ``{"filename", "type":
  "base64" | "s3_url", "data"}``: base64 is decoded, a URL (https, or http to this computer) is
  fetched without the API key, both size-capped (:data:`.comfyui.MAX_OUTPUT_BYTES`); remote
  file names are never used as paths (the rules of :func:`.comfyui.safe_name`: a name that is
  not a plain file name is reduced to its last part, made safe, else ``run<n>-<k>.png``), never
  overwrite a file, and every file must decode as an image (:func:`.comfyui_runs.check_image`).
  Records are ``OutputRecord(file, sha256, bytes, run, node="runpod")``. A ``COMPLETED``
  answer that carries ``output.errors`` or ``error`` is a failed run with those reasons (the
  images that did come are kept); ``FAILED`` (``error`` and worker-comfyui's
  ``output.details``), ``TIMED_OUT`` (the ``executionTimeout`` stopped it, or no worker took it
  within its ``ttl``) and ``CANCELLED`` are failed runs with the reason. A run that fails does
  not stop the others; the job is ``failed`` with the good outputs kept.
* at most ``parallel`` requests are outstanding at once (``dispatch.runpod_parallel``).
* cancelling the task: ``POST .../cancel/{id}`` for every request not ended (shielded: done
  even while the cancellation goes on), unless ``cancel_remote()`` is False (another driver
  took the job over and follows them), then the cancellation goes on. A request being sent
  when the cancellation comes is waited for, so its id is known and it is cancelled too.

Failures are :class:`.comfyui.ComfyUIError`. Those of the settings (no ``endpoint_id``, a key
RunPod refuses for the endpoint: 401/403, an endpoint it does not know: 404 on ``/run``) end
the whole job at once, naming the field, after cancelling what was sent; the others fail one
run (``rejected``: RunPod refused the request, 400/413; ``failed``; ``timeout``;
``unreachable`` once RunPod could not be reached for :data:`FOLLOW_GIVE_UP_S`;
``bad_output``). 429 and 503 are retried honouring ``Retry-After``.

No preflight: a serverless endpoint does not expose ComfyUI's ``/object_info`` or model
folders; a missing node or model comes back as a failed run (worker-comfyui's validation
error). worker-comfyui returns images only (``output.images``), so only the kinds in
:data:`SERVERLESS_KINDS` are run here.

``report.billed_s`` is the sum of the ``executionTime`` (ms) of every request whose end this
call saw (COMPLETED, FAILED, TIMED_OUT, CANCELLED). RunPod bills a worker from its start until
it stops (docs.runpod.io/serverless/pricing: start time, execution time and the idle timeout,
per second): ``delayTime`` is not added because it mixes the queue wait (not billed) with the
cold start (billed) and the two cannot be told apart, so the figure is the part of the bill the
requests themselves caused — a lower bound of what the endpoint bills (add its cold start and
idle timeout for an upper one). Only this call's requests are counted: runs that ended under an
earlier driver (succeeded, or failed with their request's end seen) are not counted again, so a
driver that resumes adds ``billed_s`` to what it kept.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from comfyvn_gui.core.addresses import in_clear
from comfyvn_gui.core.runs import RunPlan, WorkflowTemplate, job_outcome

from .base import CheckContext, CheckFailure
from .comfyui import MAX_OUTPUT_BYTES, ComfyUIError, safe_name
from .comfyui_runs import (
    ExecutionReport,
    OutputRecord,
    RunRecord,
    check_image,
    planned,
    resumed_report,
    write_manifest,
)
from .http_client import retry_after_seconds
from .runpod import health_counts

if TYPE_CHECKING:
    import httpx

__all__ = [
    "SERVERLESS_KINDS",
    "cancel_requests",
    "execute_serverless",
]

#: The job kinds a worker-comfyui endpoint can run: those whose outputs are images.
SERVERLESS_KINDS: frozenset[str] = frozenset(
    {"comfyui_workflow", "cg_super_res", "cg_remix", "sprite_generation"}
)

#: RunPod's bounds for ``policy.executionTimeout`` and ``policy.ttl`` (milliseconds).
MIN_EXECUTION_TIMEOUT_MS = 5_000
MIN_TTL_MS = 10_000
MAX_POLICY_MS = 7 * 24 * 3600 * 1000
#: Added to a request's ``ttl`` beyond its execution timeout: time to collect the result
#: (RunPod drops a request's data when its ttl ends, whatever its state).
TTL_MARGIN_MS = 60_000
#: RunPod's largest ``/run`` body (bytes).
MAX_RUN_BODY = 10 * 2**20
#: The largest ``/status`` answer read (bytes): base64 outputs come inside it.
MAX_STATUS_BYTES = 64 * 2**20
#: How often a request's status is asked: first after this, then growing to POLL_MAX_S.
POLL_FIRST_S = 1.0
POLL_MAX_S = 5.0
POLL_GROWTH = 1.5
#: The endpoint's health is read (for ``on_status``) at most this often while a run queues.
HEALTH_EVERY_S = 10.0
#: One HTTP request's timeout (seconds); ``/run`` carries the input images, so it gets more.
REQUEST_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 120.0
#: Retries of a request refused with 429/503 or (reads only) broken off, and the first pause.
MAX_RETRIES = 4
RETRY_PAUSE_S = 1.0
MAX_RETRY_AFTER_S = 60.0
#: How long a run is followed while RunPod cannot be reached before it is given up.
FOLLOW_GIVE_UP_S = 300.0
#: How long cancelling the requests may take once the task is cancelled.
CANCEL_TIMEOUT_S = 30.0

ACTIVE = frozenset({"IN_QUEUE", "IN_PROGRESS", "RUNNING"})
ENDED = frozenset({"COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED"})
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_TEXT = 300


class _SettingsError(ComfyUIError):
    """A failure of the provider's settings (key, endpoint): every run would fail the same
    way, so the job ends at once."""


def _shorten(text: str, key: str | None = None, limit: int = _MAX_TEXT) -> str:
    text = " ".join(str(text).split())
    if key:
        text = text.replace(key, "***")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(ms: int) -> str:
    s = ms / 1000
    if s < 120:
        return f"{s:g} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


async def _call(fn: Callable[[Any], Awaitable[None] | None] | None, arg: Any) -> None:
    if fn is None:
        return
    result = fn(arg)
    if asyncio.iscoroutine(result):
        await result


class _Endpoint:
    """RunPod's queue-based serverless API for one endpoint, over the caller's httpx client."""

    def __init__(
        self, http: httpx.AsyncClient, base: str, endpoint_id: str, key: str, name: str
    ) -> None:
        self.http = http
        self.base = f"{base.rstrip('/')}/{quote(endpoint_id, safe='')}"
        self.endpoint_id = endpoint_id
        self.key = key
        self.name = name
        self.host = urlsplit(base).hostname or base

    def _refused(self, status: int) -> _SettingsError:
        return _SettingsError(
            "unreachable",
            f"{self.name} refused the API key for serverless endpoint {self.endpoint_id} "
            f"({status}); check api_key: it must be valid and allowed to use this endpoint "
            "(RunPod console → Settings → API Keys)",
        )

    async def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        wait_s: float = REQUEST_TIMEOUT_S,
        ok: tuple[int, ...] = (200,),
    ) -> tuple[int, bytes]:
        """Send a request; (status, body) for a status in ``ok`` (401/403 end the job)."""
        import httpx

        headers = {"Authorization": f"Bearer {self.key}"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        url = f"{self.base}{path}"
        attempt = 0
        while True:
            try:
                async with self.http.stream(
                    method, url, content=content, headers=headers, timeout=wait_s
                ) as resp:
                    status = resp.status_code
                    body = await _read_capped(resp, MAX_STATUS_BYTES, path)
                    retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
            except httpx.TransportError as exc:
                # A read is asked again; a /run that broke off may have been received, and
                # sending it again would make a second request.
                if method == "GET" and attempt < MAX_RETRIES:
                    await asyncio.sleep(RETRY_PAUSE_S * 2**attempt)
                    attempt += 1
                    continue
                if isinstance(exc, httpx.TimeoutException):
                    raise ComfyUIError(
                        "timeout", f"{self.name} ({self.host}) did not answer {path} in time"
                    ) from None
                raise ComfyUIError(
                    "unreachable",
                    f"cannot reach {self.name} at {self.host} "
                    f"({_shorten(str(exc) or type(exc).__name__, limit=120)})",
                ) from None
            if status in ok:
                return status, body
            if status in (401, 403):
                raise self._refused(status)
            if status in (429, 503) and attempt < MAX_RETRIES:
                wait = retry_after if retry_after is not None else RETRY_PAUSE_S * 2**attempt
                if wait <= MAX_RETRY_AFTER_S:
                    await asyncio.sleep(wait)
                    attempt += 1
                    continue
            raise ComfyUIError(
                "failed",
                f"{self.name} answered {method} {path} with HTTP {status}: "
                f"{_shorten(_error_text(body), self.key, 200)}",
            )

    def _json(self, body: bytes, path: str) -> dict[str, Any]:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ComfyUIError("failed", f"{self.name}'s answer to {path} is not a JSON object")
        return data

    async def run(self, body: bytes) -> str:
        """Send one request; its RunPod id."""
        status, answer = await self._send(
            "POST", "/run", content=body, wait_s=RUN_TIMEOUT_S, ok=(200, 400, 404, 413)
        )
        if status == 404:
            raise _SettingsError(
                "unreachable",
                f"{self.name} has no serverless endpoint {self.endpoint_id!r} for this API key "
                "(404); set endpoint_id to your endpoint's ID (RunPod console → Serverless)",
            )
        if status in (400, 413):
            raise ComfyUIError(
                "rejected",
                f"{self.name} refused the run ({status}): "
                f"{_shorten(_error_text(answer), self.key)}",
            )
        data = self._json(answer, "/run")
        request_id = data.get("id")
        if not isinstance(request_id, str) or not request_id:
            raise ComfyUIError("failed", f"{self.name} accepted the run but sent no request id")
        return request_id

    async def status(self, request_id: str) -> dict[str, Any] | None:
        """The request's status answer, or None when RunPod no longer holds it (404)."""
        path = f"/status/{quote(request_id, safe='')}"
        status, answer = await self._send("GET", path, ok=(200, 404))
        if status == 404:
            return None
        return self._json(answer, "/status")

    async def cancel(self, request_id: str) -> None:
        await self._send("POST", f"/cancel/{quote(request_id, safe='')}", ok=(200, 404))

    async def health(self) -> dict[str, Any]:
        _, answer = await self._send("GET", "/health")
        return self._json(answer, "/health")

    async def fetch(self, url: str, target: Path, max_bytes: int) -> tuple[str, int]:
        """Stream an output URL into ``target`` (never with the API key); (sha256, size)."""
        import httpx

        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("https", "http") or in_clear(url):
            raise ComfyUIError(
                "bad_output",
                f"{self.name} gave an output URL that is not https:// "
                f"({scheme or 'no scheme'}://{urlsplit(url).hostname or '?'}); not fetched",
            )
        digest, size = hashlib.sha256(), 0
        try:
            async with self.http.stream("GET", url, timeout=REQUEST_TIMEOUT_S) as resp:
                if resp.status_code != 200:
                    raise ComfyUIError(
                        "bad_output",
                        f"the output at {urlsplit(url).hostname} could not be fetched "
                        f"(HTTP {resp.status_code})",
                    )
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise ComfyUIError("bad_output", _too_big(target.name, int(declared)))
                with target.open("wb") as fh:
                    async for chunk in resp.aiter_bytes(2**20):
                        size += len(chunk)
                        if size > max_bytes:
                            raise ComfyUIError("bad_output", _too_big(target.name, size))
                        digest.update(chunk)
                        fh.write(chunk)
        except httpx.TransportError as exc:
            raise ComfyUIError(
                "unreachable",
                f"the download of {target.name} broke off ({type(exc).__name__})",
            ) from None
        return digest.hexdigest(), size


async def _read_capped(resp: httpx.Response, limit: int, path: str) -> bytes:
    chunks, size = [], 0
    async for chunk in resp.aiter_bytes(2**20):
        size += len(chunk)
        if size > limit:
            raise ComfyUIError(
                "bad_output", f"RunPod's answer to {path} is over {limit // 2**20} MB: not read"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _error_text(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace") or "no reason given"
    if isinstance(data, dict):
        for name in ("error", "message", "detail"):
            if data.get(name):
                return str(data[name])
    return json.dumps(data)


def _too_big(name: str, size: int) -> str:
    return (
        f"the output {name} is over {MAX_OUTPUT_BYTES // 2**20} MB ({size:,} bytes): not "
        "kept; lower the output size of the workflow"
    )


def _output_name(remote: Any, index: int, k: int) -> str:
    """A plain local file name for a remote one (never a path), ending as an image."""
    text = remote if isinstance(remote, str) else ""
    try:
        name = safe_name(text)
    except ComfyUIError:
        last = re.split(r"[\\/]", text)[-1]
        stem, suffix = os.path.splitext(last)
        stem = re.sub(r"\.{2,}", ".", _UNSAFE.sub("_", stem)).strip("._")[:80]
        name = f"{stem}{_UNSAFE.sub('', suffix)[:10]}" if stem else ""
        try:
            name = safe_name(name)
        except ComfyUIError:
            name = f"run{index}-{k}.png"
    if os.path.splitext(name)[1].lower() not in _IMAGE_SUFFIXES:
        name += ".png"
    return name


def _reserve(folder: Path, name: str) -> Path:
    """Create ``folder/name`` empty (or ``name (n)``: never over an existing file)."""
    stem, suffix = os.path.splitext(name)
    n = 0
    while True:
        target = folder / (name if n == 0 else f"{stem} ({n}){suffix}")
        try:
            with target.open("xb"):
                return target
        except FileExistsError:
            n += 1


def _decode(data: Any, name: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise ComfyUIError("bad_output", f"RunPod sent the output {name} without data")
    if data.startswith("data:") and "," in data:
        data = data.split(",", 1)[1]
    if len(data) * 3 // 4 > MAX_OUTPUT_BYTES:
        raise ComfyUIError("bad_output", _too_big(name, len(data) * 3 // 4))
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ComfyUIError(
            "bad_output", f"RunPod sent the output {name} as base64 that does not decode"
        ) from None


def _failure_reason(body: Mapping[str, Any]) -> str:
    """FAILED's reason: ``error`` (a worker's text, or the JSON the runpod SDK makes of an
    exception) and worker-comfyui's ``output.details``."""
    error = body.get("error")
    text = ""
    if isinstance(error, str):
        try:
            parsed = json.loads(error)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            text = str(parsed.get("error_message") or parsed.get("error_type") or error)
        else:
            text = error
    elif error:
        text = json.dumps(error)
    output = body.get("output")
    details = output.get("details") if isinstance(output, Mapping) else None
    if isinstance(details, list) and details:
        more = "; ".join(str(d) for d in details)
        text = f"{text}: {more}" if text else more
    return text or "no reason given"


def _errors_of(body: Mapping[str, Any]) -> str | None:
    """The reasons a COMPLETED answer is still a failure: ``output.errors`` or ``error``."""
    output = body.get("output")
    found: list[str] = []
    if isinstance(output, Mapping):
        errors = output.get("errors")
        if isinstance(errors, list):
            found.extend(str(e) for e in errors if e)
        elif errors:
            found.append(str(errors))
        if output.get("error"):
            found.append(str(output["error"]))
    if body.get("error"):
        found.append(_failure_reason(body))
    return "; ".join(found) if found else None


def _ms(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(0, int(value))


def _open(ctx: CheckContext) -> tuple[str, str, str]:
    """(api key, endpoint id, serverless base) of the provider, or the error naming what to
    set."""
    try:
        (key,) = ctx.require("api_key")
    except CheckFailure as failure:
        raise ComfyUIError("unreachable", failure.message) from None
    endpoint_id = ctx.value("endpoint_id")
    if endpoint_id is None:
        raise ComfyUIError(
            "unreachable",
            f"{ctx.name} ({ctx.provider.id}) has no serverless endpoint to run jobs on: set "
            "endpoint_id to the ID of an endpoint running worker-comfyui (RunPod console → "
            "Serverless)",
        )
    base = ctx.endpoint("serverless")
    if base is None:
        raise ComfyUIError(
            "unreachable", f"{ctx.name}: the serverless address is not set; set the base URL"
        )
    if in_clear(base):
        raise ComfyUIError(
            "unreachable",
            f"{ctx.name}: not sent: {urlsplit(base).hostname} is plain http:// to another "
            "machine and the requests carry your API key; use an https:// base URL",
        )
    return key, endpoint_id, base


async def cancel_requests(ctx: CheckContext, request_ids: Sequence[str]) -> None:
    """Cancel RunPod requests left by a job (``POST .../cancel/{id}`` each; best effort: one
    that ended or that RunPod no longer holds is passed over)."""
    if not request_ids:
        return
    key, endpoint_id, base = _open(ctx)
    async with ctx.http(auth_fields=["api_key"]) as http:
        api = _Endpoint(http.raw, base, endpoint_id, key, ctx.name)
        for request_id in request_ids:
            with contextlib.suppress(ComfyUIError):
                await api.cancel(request_id)


async def execute_serverless(
    ctx: CheckContext,
    *,
    job_id: int,
    kind: str,
    items: int,
    inputs: Sequence[Path],
    out_dir: Path,
    template: WorkflowTemplate | None = None,
    workflow: Mapping[str, Any] | None = None,
    task: Mapping[str, Any] | None = None,
    execution_timeout_ms: Callable[[], int],
    previous: Sequence[RunRecord] = (),
    on_change: Callable[[ExecutionReport], Awaitable[None] | None] | None = None,
    on_status: Callable[[str], Awaitable[None] | None] | None = None,
    cancel_remote: Callable[[], bool] = lambda: True,
    parallel: int = 1,
) -> ExecutionReport:
    """Run a job's runs on the provider's RunPod serverless endpoint (see the module's text).

    ``execution_timeout_ms()``: the milliseconds left under the job's runtime ceiling, asked
    for each request. ``previous``, ``on_change`` and ``cancel_remote`` as for
    :func:`.comfyui_runs.execute` (a run whose request RunPod still holds is followed, not sent
    again). ``on_status`` hears one line now and then while a run waits for a worker.
    ``parallel``: at most this many requests outstanding."""
    if kind not in SERVERLESS_KINDS:
        raise ComfyUIError(
            "rejected",
            f"{ctx.name}: a {kind} job makes no images, and a worker-comfyui endpoint returns "
            "images only; run it on a provider with a ComfyUI server of its own",
        )
    key, endpoint_id, base = _open(ctx)
    names, plans = planned(job_id, kind, items, inputs, template, workflow, task)
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    by_name = dict(zip(names, inputs, strict=True))
    report = resumed_report(plans, previous, billed_s=0.0)
    todo = [(p, r) for p, r in zip(plans, report.runs, strict=True) if r.status != "succeeded"]
    encoded: dict[str, str] = {}
    for name in dict.fromkeys(p.input for p, _ in todo):
        if name is None:
            continue
        data = await asyncio.to_thread(by_name[name].read_bytes)
        report.inputs[name] = hashlib.sha256(data).hexdigest()
        encoded[name] = base64.b64encode(data).decode("ascii")

    runner = _Runner(
        ctx=ctx,
        report=report,
        out_dir=out_dir,
        total=len(plans),
        encoded=encoded,
        execution_timeout_ms=execution_timeout_ms,
        on_change=on_change,
        on_status=on_status,
    )
    runner.billed_before = {r.index for r in previous if r.status == "failed" and r.prompt_id}
    async with ctx.http(auth_fields=["api_key"]) as http:
        runner.api = _Endpoint(http.raw, base, endpoint_id, key, ctx.name)
        await runner.run_all(todo, max(1, int(parallel)), cancel_remote)
    report.outcome = job_outcome([r.status for r in report.runs])
    await runner.manifest()
    return report


class _Runner:
    """One call of :func:`execute_serverless`: its runs, their requests and what they cost."""

    api: _Endpoint

    def __init__(
        self,
        *,
        ctx: CheckContext,
        report: ExecutionReport,
        out_dir: Path,
        total: int,
        encoded: dict[str, str],
        execution_timeout_ms: Callable[[], int],
        on_change: Callable[[ExecutionReport], Awaitable[None] | None] | None,
        on_status: Callable[[str], Awaitable[None] | None] | None,
    ) -> None:
        self.ctx = ctx
        self.report = report
        self.out_dir = out_dir
        self.total = total
        self.encoded = encoded
        self.execution_timeout_ms = execution_timeout_ms
        self.on_change = on_change
        self.on_status = on_status
        self.outstanding: dict[int, str] = {}  # run index -> request id, until it ended
        self.sending: dict[int, asyncio.Future[str]] = {}  # a /run under way
        self.policies: dict[int, tuple[int, int]] = {}  # run index -> (executionTimeout, ttl)
        # Runs an earlier driver saw end as failed: following their request again (as
        # comfyui_runs.execute does) must not count its execution time twice.
        self.billed_before: set[int] = set()
        self._write = asyncio.Lock()
        self._last_health = float("-inf")

    # -- records ----------------------------------------------------------------------------

    async def changed(self) -> None:
        await _call(self.on_change, self.report)

    async def manifest(self) -> None:
        async with self._write:
            await asyncio.to_thread(write_manifest, self.out_dir, self.report)

    async def ended(self, record: RunRecord, status: str, error: str | None = None) -> None:
        record.status, record.error = status, error
        await self.manifest()
        await self.changed()

    # -- all runs -----------------------------------------------------------------------------

    async def run_all(
        self,
        todo: Sequence[tuple[RunPlan, RunRecord]],
        parallel: int,
        cancel_remote: Callable[[], bool],
    ) -> None:
        gate = asyncio.Semaphore(parallel)

        async def one(plan: RunPlan, record: RunRecord) -> None:
            async with gate:
                await self.run_one(plan, record)

        tasks = [asyncio.ensure_future(one(p, r)) for p, r in todo]
        if not tasks:
            return
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    raise error
        except asyncio.CancelledError:
            await asyncio.shield(self.stop(tasks, cancel_remote(), None))
            raise
        except BaseException as exc:  # a setting every run needs, or a bug: stop them all
            why = (
                exc.message
                if isinstance(exc, ComfyUIError)
                else f"stopped by an unexpected error ({type(exc).__name__}: {exc})"
            )
            await asyncio.shield(self.stop(tasks, True, why))
            raise

    async def stop(
        self, tasks: Sequence[asyncio.Future[None]], remote: bool, why: str | None
    ) -> None:
        """Stop every run: the tasks cancelled, the requests sent cancelled on RunPod
        (``remote``), the records ``cancelled`` (or ``failed`` with ``why``)."""
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for index, fut in list(self.sending.items()):  # sent while the cancellation came
            with contextlib.suppress(Exception, asyncio.CancelledError):
                request_id = await asyncio.wait_for(asyncio.shield(fut), RUN_TIMEOUT_S)
                self.outstanding[index] = request_id
                self.record(index).prompt_id = request_id
        self.sending.clear()
        if remote and self.outstanding:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CANCEL_TIMEOUT_S):
                    await asyncio.gather(
                        *(self._cancel_quietly(rid) for rid in self.outstanding.values())
                    )
        for record in self.report.runs:
            if record.status in ("pending", "running"):
                if why is None:
                    record.status = "cancelled"
                else:
                    record.status, record.error = "failed", why
        self.report.outcome = job_outcome([r.status for r in self.report.runs]) or (
            "cancelled" if why is None else "failed"
        )
        with contextlib.suppress(Exception):
            await self.manifest()
            await self.changed()

    async def _cancel_quietly(self, request_id: str) -> None:
        with contextlib.suppress(ComfyUIError):
            await self.api.cancel(request_id)

    def record(self, index: int) -> RunRecord:
        return next(r for r in self.report.runs if r.index == index)

    # -- one run ------------------------------------------------------------------------------

    async def run_one(self, plan: RunPlan, record: RunRecord) -> None:
        first: dict[str, Any] | None = None
        try:
            if record.prompt_id is not None:  # a request sent by an earlier driver
                self.outstanding[plan.index] = record.prompt_id
                first = await self.api.status(record.prompt_id)
                if first is None:  # RunPod no longer holds it: the run is sent afresh
                    self.outstanding.pop(plan.index, None)
                    record.prompt_id = None
            if record.prompt_id is None:
                body, why_not = self.request_body(plan)
                if body is None:
                    await self.ended(record, "failed", why_not)
                    return
                record.status = "running"
                fut = asyncio.ensure_future(self.api.run(body))
                # Shielded, and kept in ``sending`` until its id is kept: a cancellation that
                # comes meanwhile (even as the answer arrives) waits for it and cancels it.
                self.sending[plan.index] = fut
                request_id = await asyncio.shield(fut)
                record.prompt_id = request_id
                self.outstanding[plan.index] = request_id
                self.sending.pop(plan.index, None)
            else:
                record.status = "running"
                self.outstanding[plan.index] = record.prompt_id
            await self.changed()  # the request id is kept before anything else happens
            final = await self.follow(plan.index, record.prompt_id, first)
        except _SettingsError:
            raise
        except ComfyUIError as exc:
            self.sending.pop(plan.index, None)
            rid = self.outstanding.pop(plan.index, None)
            if rid is not None:  # (given up following: it must not run on unseen)
                await asyncio.shield(self._cancel_quietly(rid))
            await self.ended(record, "failed", exc.message)
            return
        self.outstanding.pop(plan.index, None)
        if not (first is not None and plan.index in self.billed_before):
            seconds = _ms(final.get("executionTime")) / 1000
            self.report.billed_s = (self.report.billed_s or 0.0) + seconds
        await self.finish(plan.index, record, final)

    def request_body(self, plan: RunPlan) -> tuple[bytes | None, str | None]:
        """The ``/run`` body of a run, or None and why it is not sent."""
        left = int(self.execution_timeout_ms())
        if left < MIN_EXECUTION_TIMEOUT_MS:
            return None, (
                "not sent: the job's runtime ceiling is reached (under "
                f"{MIN_EXECUTION_TIMEOUT_MS // 1000} s left, RunPod's shortest execution "
                "timeout); raise dispatch.max_runtime_factor if the job needs longer"
            )
        execution = min(left, MAX_POLICY_MS)
        ttl = min(max(execution + TTL_MARGIN_MS, MIN_TTL_MS), MAX_POLICY_MS)
        job_input: dict[str, Any] = {"workflow": plan.graph}
        if plan.input is not None:
            job_input["images"] = [{"name": plan.input, "image": self.encoded[plan.input]}]
        doc = {"input": job_input, "policy": {"executionTimeout": execution, "ttl": ttl}}
        body = json.dumps(doc, separators=(",", ":")).encode()
        if len(body) > MAX_RUN_BODY:
            return None, (
                f"not sent: the request would be {len(body) / 2**20:.1f} MB, over RunPod's "
                f"{MAX_RUN_BODY // 2**20} MB limit for a request (the input image travels in "
                "it as base64); use a smaller input image"
            )
        self.policies[plan.index] = (execution, ttl)
        return body, None

    async def follow(
        self, index: int, request_id: str, first: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Ask the request's status until it ended; its last answer."""
        pause = POLL_FIRST_S
        body = first
        told_running = False
        failing_since: float | None = None
        while True:
            if body is None:
                try:
                    body = await self.api.status(request_id)
                except _SettingsError:
                    raise
                except ComfyUIError as exc:
                    if exc.code not in ("unreachable", "timeout", "failed"):
                        raise
                    now = time.monotonic()
                    failing_since = failing_since or now
                    if now - failing_since >= FOLLOW_GIVE_UP_S:
                        raise ComfyUIError(
                            exc.code,
                            f"{exc.message} (for {FOLLOW_GIVE_UP_S / 60:g} min while following "
                            f"request {request_id})",
                        ) from None
                    await asyncio.sleep(POLL_MAX_S)
                    continue
                failing_since = None
                if body is None:
                    raise ComfyUIError(
                        "failed",
                        f"{self.ctx.name} no longer holds request {request_id} (it keeps a "
                        "result about 30 minutes): the run's outputs are lost",
                    )
            status = str(body.get("status") or "")
            if status in ENDED:
                return body
            if status == "IN_QUEUE":
                await self.tell_queue(index)
            elif status in ACTIVE and not told_running:
                told_running = True
                await _call(
                    self.on_status,
                    f"run {index + 1} of {self.total} is running on a RunPod worker",
                )
            body = None
            await asyncio.sleep(pause)
            pause = min(pause * POLL_GROWTH, POLL_MAX_S)

    async def tell_queue(self, index: int) -> None:
        """One line on the endpoint's workers and queue, at most every HEALTH_EVERY_S."""
        if self.on_status is None or time.monotonic() - self._last_health < HEALTH_EVERY_S:
            return
        self._last_health = time.monotonic()
        lead = f"run {index + 1} of {self.total} waits in RunPod's queue"
        try:
            workers, jobs = health_counts(await self.api.health())
        except ComfyUIError as exc:
            await _call(self.on_status, f"{lead} (the endpoint's health: {exc.message})")
            return
        ready = max(workers["idle"], workers["ready"]) + workers["running"]
        parts = [
            f"{ready} worker{'s' if ready != 1 else ''} ready "
            f"({max(workers['idle'], workers['ready'])} idle, {workers['running']} running)"
        ]
        if workers["initializing"]:
            parts.append(f"{workers['initializing']} starting")
        if workers["throttled"]:
            parts.append(f"{workers['throttled']} throttled (GPU type scarce)")
        if workers["unhealthy"]:
            parts.append(f"{workers['unhealthy']} unhealthy")
        queued = jobs["inQueue"]
        parts.append(f"{queued} job{'s' if queued != 1 else ''} queued")
        line = f"{lead}: " + ", ".join(parts)
        if ready == 0 and not workers["initializing"]:
            line += "; no worker is up yet (a cold start can take minutes)"
        await _call(self.on_status, line)

    # -- a request's end -----------------------------------------------------------------------

    async def finish(self, index: int, record: RunRecord, body: dict[str, Any]) -> None:
        status = str(body.get("status"))
        if status == "FAILED":
            await self.ended(
                record,
                "failed",
                f"RunPod's worker failed the run: {_shorten(_failure_reason(body), self.api.key)}",
            )
            return
        if status == "TIMED_OUT":
            await self.ended(record, "failed", self.timed_out(index, body))
            return
        if status == "CANCELLED":
            await self.ended(
                record,
                "failed",
                "RunPod cancelled the run before it finished (it was cancelled in the RunPod "
                "console or through the API)",
            )
            return
        error: str | None = None
        output = body.get("output")
        images = output.get("images") if isinstance(output, Mapping) else None
        for k, item in enumerate(images if isinstance(images, list) else []):
            try:
                out = await self.save(index, k, item)
            except ComfyUIError as exc:
                error = error or exc.message
                continue
            record.outputs.append(out)
        problems = _errors_of(body)
        if problems:
            error = (
                f"worker-comfyui finished the run with errors: {_shorten(problems, self.api.key)}"
            )
        await self.ended(record, "failed" if error else "succeeded", error)

    def timed_out(self, index: int, body: Mapping[str, Any]) -> str:
        execution, ttl = self.policies.get(index, (0, 0))
        ran = _ms(body.get("executionTime")) > 0
        if ran or not ttl:
            limit = f" of {_duration(execution)}" if execution else ""
            return (
                f"RunPod stopped the run at its execution timeout{limit} (policy."
                "executionTimeout, set from the job's runtime ceiling by the bill guard); raise "
                "dispatch.max_runtime_factor if the job needs longer"
            )
        return (
            f"no RunPod worker took the run within its ttl of {_duration(ttl)} (policy.ttl: "
            "queue and run together, set from the job's runtime ceiling by the bill guard); "
            "check the endpoint's workers (max workers, GPU types) in the RunPod console"
        )

    async def save(self, index: int, k: int, item: Any) -> OutputRecord:
        """One ``output.images[]`` item saved under a safe name and checked; its record."""
        if not isinstance(item, Mapping):
            raise ComfyUIError("bad_output", "RunPod sent an output that is not an object")
        name = _output_name(item.get("filename"), index, k)
        kind = item.get("type")
        data = item.get("data")
        target = await asyncio.to_thread(_reserve, self.out_dir, name)
        partial = target.with_name(f".{uuid.uuid4().hex}.part")
        try:
            if kind == "s3_url":
                if not isinstance(data, str):
                    raise ComfyUIError("bad_output", f"RunPod sent the output {name} without a URL")
                digest, size = await self.api.fetch(data, partial, MAX_OUTPUT_BYTES)
            elif kind in ("base64", None):
                raw = await asyncio.to_thread(_decode, data, name)
                await asyncio.to_thread(partial.write_bytes, raw)
                digest, size = hashlib.sha256(raw).hexdigest(), len(raw)
            else:
                raise ComfyUIError(
                    "bad_output", f"RunPod sent the output {name} as {kind!r}, not base64 or a URL"
                )
            await asyncio.to_thread(os.replace, partial, target)
            await asyncio.to_thread(check_image, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            if target.exists() and target.stat().st_size == 0:
                target.unlink(missing_ok=True)
            raise
        return OutputRecord(target.name, digest, size, index, "runpod")
