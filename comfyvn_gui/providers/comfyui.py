"""A ComfyUI server, as dispatch drives it (docs/architecture.md, "Dispatch").

:class:`ComfyUIClient` speaks ComfyUI's own HTTP and WebSocket API (its ``server.py``):

* preflight: ``GET /object_info`` (the node classes installed) and ``GET /models/{folder}``
  (the model files a template loads), so a missing node or model is named before anything is
  uploaded;
* ``POST /upload/image`` (multipart ``image``, ``overwrite``, ``type``);
* ``POST /prompt`` ``{"prompt": graph, "client_id": ...}``: a 400 answer (``error`` and
  ``node_errors``) becomes a :class:`ComfyUIError` naming the node, its class and the input;
* following a prompt on ``/ws?clientId=...`` (``execution_start``, ``executing``,
  ``progress``, ``executed``, ``execution_success`` / ``execution_error`` /
  ``execution_interrupted``), polling ``GET /history/{prompt_id}`` when the WebSocket cannot be
  used; the history is the record of the outputs either way;
* ``GET /view`` to download an output, streamed to disk with a size cap; the server's file
  names are never used as paths (:func:`safe_name`);
* cancel: ``POST /queue {"delete": [id]}`` for a prompt still waiting, ``POST /interrupt
  {"prompt_id": id}`` for the one running.

The caller makes the ``httpx.AsyncClient`` (its TLS rules are the provider's, as its validator
applies them) and closes it. httpx and websockets are imported by the caller's first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = [
    "ComfyUIClient",
    "ComfyUIError",
    "OutputFile",
    "RunEvent",
    "RunState",
    "safe_name",
]

#: The most one output file may weigh (bytes); a larger one is refused while it downloads.
MAX_OUTPUT_BYTES = 512 * 2**20
#: How often the history is asked for when the WebSocket cannot be used (seconds).
POLL_S = 1.0
#: One HTTP request's timeout (seconds): ComfyUI answers its API at once, even while busy.
REQUEST_TIMEOUT_S = 30.0
#: The pause before a read (GET) that lost its connection is asked once more (seconds).
RETRY_PAUSE_S = 0.3
#: How long a message may take to arrive on a quiet WebSocket before the history is asked
#: (a prompt finishing between two messages is never missed).
WS_QUIET_S = 5.0

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ ()+-]{0,199}$")
_LIST_LIMIT = 5  # of the choices quoted from a "value not in list" error

Code = Literal[
    "rejected",
    "missing",
    "unreachable",
    "timeout",
    "failed",
    "interrupted",
    "bad_output",
    "untrusted_host",  # (an SSH tunnel: the host key is not pinned)
    "host_key_mismatch",  # (an SSH tunnel: the host key is not the pinned one)
]


class ComfyUIError(Exception):
    """What went wrong with a ComfyUI server, in words, with a ``code``: ``rejected`` (the
    server refused the graph), ``missing`` (preflight: a node class or model file is not
    installed), ``unreachable``, ``timeout``, ``failed`` (a node raised while running),
    ``interrupted``, ``bad_output``; ``node`` / ``input`` name the culprit when known."""

    def __init__(
        self, code: Code, message: str, *, node: str | None = None, input: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.node = node
        self.input = input


@dataclass(frozen=True)
class OutputFile:
    """An output a node saved, as the history lists it."""

    node: str
    filename: str
    subfolder: str
    type: str


@dataclass(frozen=True)
class RunEvent:
    """Something that happened to a prompt: its ``type`` as ComfyUI sent it and the data."""

    type: str
    data: Mapping[str, Any]


@dataclass
class RunState:
    """A prompt's end: ``succeeded``, ``failed`` or ``cancelled``, with its outputs (the
    history's) and, when it failed, why."""

    prompt_id: str
    status: Literal["succeeded", "failed", "cancelled"]
    outputs: list[OutputFile] = field(default_factory=list)
    error: str | None = None
    node: str | None = None


def safe_name(name: str) -> str:
    """``name`` if it is a plain file name (no folder, no ``..``, printable), else a
    :class:`ComfyUIError`: a server's file names are never used as paths."""
    if not isinstance(name, str) or not _SAFE.match(name) or ".." in name:
        raise ComfyUIError(
            "bad_output", f"the server named an output {name!r}: not a plain file name"
        )
    return name


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _ws_url(base: str, client_id: str) -> str:
    scheme, rest = base.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws?clientId={client_id}"


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rejection(body: Any) -> ComfyUIError:
    """ComfyUI's 400 answer to ``POST /prompt`` as one sentence naming the node and input."""
    if not isinstance(body, Mapping):
        return ComfyUIError("rejected", f"ComfyUI refused the workflow: {_shorten(str(body))}")
    error = _mapping(body.get("error"))
    node_errors = _mapping(body.get("node_errors"))
    for node_id, info in node_errors.items():
        if not isinstance(info, Mapping):
            continue
        cls = info.get("class_type") or "?"
        for err in info.get("errors") or []:
            if not isinstance(err, Mapping):
                continue
            extra = _mapping(err.get("extra_info"))
            name = extra.get("input_name")
            why = str(err.get("message") or err.get("type") or "invalid")
            details = str(err.get("details") or "")
            if details and details not in why:
                why = f"{why}: {details}"
            where = f"node {node_id} ({cls})" + (f", input {name}" if name else "")
            return ComfyUIError(
                "rejected",
                f"ComfyUI refused the workflow: {where}: {_shorten(why)}",
                node=str(node_id),
                input=str(name) if name else None,
            )
    message = str(error.get("message") or error.get("type") or "the workflow is not valid")
    details = str(error.get("details") or "")
    text = f"{message}: {details}" if details and details not in message else message
    return ComfyUIError("rejected", f"ComfyUI refused the workflow: {_shorten(text)}")


class ComfyUIClient:
    """One ComfyUI server at ``base_url`` over the caller's ``http`` client; ``ssl`` (for an
    https server) is used for the WebSocket as ``http`` uses it for requests."""

    def __init__(
        self,
        base_url: str,
        http: httpx.AsyncClient,
        *,
        client_id: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        headers: Mapping[str, str] | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.client_id = client_id or uuid.uuid4().hex
        self._ssl = ssl_context
        self._headers = dict(headers or {})
        self._timeout = request_timeout_s

    # -- plumbing ---------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        url = f"{self.base_url}{path}"
        if self._headers:
            kwargs["headers"] = {**self._headers, **kwargs.get("headers", {})}
        try:
            try:
                return await self.http.request(method, url, timeout=self._timeout, **kwargs)
            except httpx.TransportError as exc:
                # A read (GET) is asked once more after a dropped connection (an SSH tunnel
                # reconnecting, a proxy restarting); nothing that changes the server is.
                if method != "GET" or isinstance(exc, httpx.TimeoutException) or _tls_refused(exc):
                    raise
                await asyncio.sleep(RETRY_PAUSE_S)
                return await self.http.request(method, url, timeout=self._timeout, **kwargs)
        except httpx.TimeoutException:
            raise ComfyUIError(
                "timeout", f"ComfyUI at {self.base_url} did not answer {path} in time"
            ) from None
        except httpx.TransportError as exc:
            if _tls_refused(exc):
                raise ComfyUIError(
                    "unreachable",
                    f"the TLS certificate of ComfyUI at {self.base_url} could not be verified: "
                    "give the server's CA certificate (the provider's CA field) if it uses its "
                    "own CA",
                ) from None
            raise ComfyUIError(
                "unreachable",
                f"cannot reach ComfyUI at {self.base_url} "
                f"({_shorten(str(exc) or type(exc).__name__, 120)})",
            ) from None

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = await self._request(method, path, **kwargs)
        if resp.status_code != 200:
            raise ComfyUIError(
                "failed",
                f"ComfyUI answered {method} {path} with HTTP {resp.status_code}: "
                f"{_shorten(resp.text, 200)}",
            )
        try:
            return resp.json()
        except ValueError:
            raise ComfyUIError("failed", f"ComfyUI's answer to {path} is not JSON") from None

    # -- preflight ----------------------------------------------------------------------------

    async def system_stats(self) -> dict[str, Any]:
        """The server's ``/system_stats`` (a server that answers it is up)."""
        stats = await self._json("GET", "/system_stats")
        return stats if isinstance(stats, dict) else {}

    async def object_info(self) -> dict[str, Any]:
        info = await self._json("GET", "/object_info")
        return info if isinstance(info, dict) else {}

    async def models(self, folder: str) -> list[str] | None:
        """The files of a model folder, or None when the server has no such folder."""
        resp = await self._request("GET", f"/models/{folder}")
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise ComfyUIError(
                "failed", f"ComfyUI answered /models/{folder} with HTTP {resp.status_code}"
            )
        files = resp.json()
        return [str(f) for f in files] if isinstance(files, list) else []

    async def preflight(
        self, graphs: Iterable[Mapping[str, Any]], models: Mapping[str, Sequence[str]]
    ) -> list[str]:
        """What the server lacks to run ``graphs``: node classes not installed, model files
        (``models``: folder -> files) not in their folder. Empty when all is there."""
        needed: dict[str, list[str]] = {}
        for graph in graphs:
            for node_id, node in graph.items():
                cls = node.get("class_type") if isinstance(node, Mapping) else None
                if isinstance(cls, str) and node_id not in needed.get(cls, []):
                    needed.setdefault(cls, []).append(str(node_id))
        info, problems = await self.object_info(), []
        for cls, nodes in sorted(needed.items()):
            if cls not in info:
                problems.append(
                    f"node class {cls} (node {', '.join(sorted(set(nodes)))}) is not installed "
                    "on this ComfyUI: install the custom node that provides it"
                )
        for folder, files in sorted(models.items()):
            present = await self.models(folder)
            for name in files:
                if present is None or name not in present:
                    problems.append(
                        f"model file {name} is not in ComfyUI's models/{folder} folder: "
                        f"download it there (see resources/workflows/README.md)"
                    )
        return problems

    # -- inputs and prompts ---------------------------------------------------------------------

    async def upload_image(self, name: str, data: bytes) -> str:
        """Upload an input image as ``name`` (overwriting one of that name); returns the name
        the graph refers to it by."""
        safe_name(name)
        resp = await self._request(
            "POST",
            "/upload/image",
            files={"image": (name, data, "application/octet-stream")},
            data={"overwrite": "true", "type": "input"},
        )
        if resp.status_code != 200:
            raise ComfyUIError(
                "failed", f"ComfyUI refused the upload of {name} (HTTP {resp.status_code})"
            )
        body = resp.json()
        stored = str(body.get("name") or name)
        sub = str(body.get("subfolder") or "")
        return f"{sub}/{stored}" if sub else stored

    async def queue_prompt(self, graph: Mapping[str, Any]) -> str:
        """Queue ``graph``; returns its prompt id. A refusal names the node and the input."""
        resp = await self._request(
            "POST", "/prompt", json={"prompt": graph, "client_id": self.client_id}
        )
        if resp.status_code == 400:
            try:
                body = resp.json()
            except ValueError:
                body = resp.text
            raise rejection(body)
        if resp.status_code != 200:
            raise ComfyUIError(
                "failed",
                f"ComfyUI answered /prompt with HTTP {resp.status_code}: "
                f"{_shorten(resp.text, 200)}",
            )
        prompt_id = resp.json().get("prompt_id")
        if not isinstance(prompt_id, str) or not prompt_id:
            raise ComfyUIError("failed", "ComfyUI accepted the workflow but sent no prompt id")
        return prompt_id

    async def history(self, prompt_id: str) -> Mapping[str, Any] | None:
        """The prompt's history entry once it has ended, else None."""
        body = await self._json("GET", f"/history/{prompt_id}")
        entry = body.get(prompt_id) if isinstance(body, Mapping) else None
        return entry if isinstance(entry, Mapping) else None

    async def queue_state(self, prompt_id: str) -> Literal["running", "pending", "unknown"]:
        body = await self._json("GET", "/queue")
        for key, state in (("queue_running", "running"), ("queue_pending", "pending")):
            for item in body.get(key) or []:
                if isinstance(item, list) and len(item) > 1 and item[1] == prompt_id:
                    return state  # type: ignore[return-value]
        return "unknown"

    # -- following a prompt -----------------------------------------------------------------------

    async def run_prompt(
        self,
        graph: Mapping[str, Any],
        *,
        on_queued: Callable[[str], None] | None = None,
        on_event: Callable[[RunEvent], Awaitable[None] | None] | None = None,
        deadline: float | None = None,
        use_websocket: bool = True,
    ) -> RunState:
        """Queue ``graph`` and follow it to its end: the WebSocket is opened first (as
        ComfyUI's own front end does), so no message of the prompt is missed; ``on_queued``
        hears the prompt id at once (to cancel it)."""
        ws = await self._open_ws() if use_websocket else None
        try:
            prompt_id = await self.queue_prompt(graph)
            if on_queued is not None:
                on_queued(prompt_id)
            if ws is None:
                return await self._wait_poll(prompt_id, deadline)
            return await self._follow(ws, prompt_id, on_event, deadline)
        finally:
            if ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close()

    async def wait(
        self,
        prompt_id: str,
        *,
        on_event: Callable[[RunEvent], Awaitable[None] | None] | None = None,
        deadline: float | None = None,
        use_websocket: bool = True,
    ) -> RunState:
        """Follow a prompt queued earlier until it ends (``deadline``: a ``time.monotonic()``
        after which :class:`ComfyUIError` ``timeout``); ``on_event`` hears its WebSocket
        messages from now on. The history decides the outcome and lists the outputs."""
        ws = await self._open_ws() if use_websocket else None
        if ws is None:
            return await self._wait_poll(prompt_id, deadline)
        try:
            entry = await self.history(prompt_id)  # (it may have ended already)
            if entry is not None:
                return self._state(prompt_id, entry)
            return await self._follow(ws, prompt_id, on_event, deadline)
        finally:
            with contextlib.suppress(Exception):
                await ws.close()

    async def _open_ws(self) -> Any:
        """The WebSocket of this client id, or None when it cannot be opened (polled then)."""
        try:
            from websockets.asyncio.client import connect
            from websockets.exceptions import WebSocketException
        except ImportError:  # pragma: no cover - a dependency
            return None
        url = _ws_url(self.base_url, self.client_id)
        try:
            return await connect(
                url,
                ssl=self._ssl if url.startswith("wss:") else None,
                additional_headers=self._headers or None,
                open_timeout=10,
                max_size=2**24,
                proxy=None,
            )
        except (OSError, WebSocketException, TimeoutError):
            return None

    async def _follow(
        self,
        ws: Any,
        prompt_id: str,
        on_event: Callable[[RunEvent], Awaitable[None] | None] | None,
        deadline: float | None,
    ) -> RunState:
        from websockets.exceptions import WebSocketException

        while True:
            wait_s = WS_QUIET_S
            if deadline is not None:
                wait_s = min(wait_s, deadline - time.monotonic())
                if wait_s <= 0:
                    raise ComfyUIError("timeout", f"prompt {prompt_id} did not finish in time")
            try:
                raw = await asyncio.wait_for(ws.recv(), wait_s)
            except TimeoutError:
                entry = await self.history(prompt_id)
                if entry is not None:
                    return self._state(prompt_id, entry)
                continue
            except WebSocketException:
                return await self._wait_poll(prompt_id, deadline)
            if isinstance(raw, bytes):
                continue  # a preview image
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            kind, data = msg.get("type"), msg.get("data")
            if not isinstance(data, Mapping) or data.get("prompt_id") != prompt_id:
                continue
            if on_event is not None:
                result = on_event(RunEvent(str(kind), data))
                if asyncio.iscoroutine(result):
                    await result
            ended = kind in ("execution_success", "execution_error", "execution_interrupted")
            if ended or (kind == "executing" and data.get("node") is None):
                entry = await self._history_soon(prompt_id)
                return self._state(prompt_id, entry or {}, last=(str(kind), data))

    async def _history_soon(self, prompt_id: str) -> Mapping[str, Any] | None:
        """The history right after the end message (ComfyUI writes it as it sends the end)."""
        for _ in range(20):
            entry = await self.history(prompt_id)
            if entry is not None:
                return entry
            await asyncio.sleep(0.05)
        return None

    async def _wait_poll(self, prompt_id: str, deadline: float | None) -> RunState:
        while True:
            entry = await self.history(prompt_id)
            if entry is not None:
                return self._state(prompt_id, entry)
            if await self.queue_state(prompt_id) == "unknown":
                entry = await self.history(prompt_id)  # (ended between the two reads?)
                if entry is not None:
                    return self._state(prompt_id, entry)
                return RunState(
                    prompt_id, "cancelled", error="the prompt left ComfyUI's queue without running"
                )
            if deadline is not None and time.monotonic() >= deadline:
                raise ComfyUIError("timeout", f"prompt {prompt_id} did not finish in time")
            await asyncio.sleep(POLL_S)

    def _state(
        self,
        prompt_id: str,
        entry: Mapping[str, Any],
        last: tuple[str, Mapping[str, Any]] | None = None,
    ) -> RunState:
        status = _mapping(entry.get("status"))
        messages = [m for m in status.get("messages") or [] if isinstance(m, list) and len(m) == 2]
        if last is not None:
            messages.append(list(last))
        outputs: list[OutputFile] = []
        for node_id, out in (entry.get("outputs") or {}).items():
            if not isinstance(out, Mapping):
                continue
            for key in ("images", "gifs", "audio", "files"):
                for item in out.get(key) or []:
                    if isinstance(item, Mapping) and item.get("filename"):
                        outputs.append(
                            OutputFile(
                                node=str(node_id),
                                filename=str(item["filename"]),
                                subfolder=str(item.get("subfolder") or ""),
                                type=str(item.get("type") or "output"),
                            )
                        )
        for kind, data in reversed(messages):
            if kind == "execution_error" and isinstance(data, Mapping):
                node = str(data.get("node_id") or "")
                cls = data.get("node_type") or "?"
                why = data.get("exception_message") or data.get("exception_type") or "an error"
                return RunState(
                    prompt_id,
                    "failed",
                    outputs,
                    f"node {node} ({cls}) failed: {_shorten(str(why))}",
                    node or None,
                )
            if kind == "execution_interrupted":
                return RunState(prompt_id, "cancelled", outputs, "interrupted")
        if status.get("status_str") == "error":
            return RunState(prompt_id, "failed", outputs, "ComfyUI reported an error")
        return RunState(prompt_id, "succeeded", outputs)

    # -- outputs ------------------------------------------------------------------------------

    async def download(
        self, output: OutputFile, folder: Path, *, max_bytes: int = MAX_OUTPUT_BYTES
    ) -> tuple[Path, str, int]:
        """Stream ``output`` into ``folder`` (under its own checked name; never over an existing
        file); returns (path, sha256, size). Over ``max_bytes`` it stops and keeps nothing."""
        name = safe_name(output.filename)
        for part in filter(None, output.subfolder.split("/")):
            safe_name(part)
        target = folder / name
        stem, suffix, n = target.stem, target.suffix, 1
        while target.exists():
            target = folder / f"{stem} ({n}){suffix}"
            n += 1
        partial = target.with_name(target.name + ".part")
        params = {"filename": output.filename, "subfolder": output.subfolder, "type": output.type}
        digest, size = hashlib.sha256(), 0
        import httpx

        try:
            async with self.http.stream(
                "GET",
                f"{self.base_url}/view",
                params=params,
                headers=self._headers or None,
                timeout=self._timeout,
            ) as resp:
                if resp.status_code != 200:
                    raise ComfyUIError(
                        "bad_output", f"ComfyUI could not send {name} (HTTP {resp.status_code})"
                    )
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise ComfyUIError("bad_output", _too_big(name, int(declared), max_bytes))
                with partial.open("xb") as fh:
                    async for chunk in resp.aiter_bytes(2**20):
                        size += len(chunk)
                        if size > max_bytes:
                            raise ComfyUIError("bad_output", _too_big(name, size, max_bytes))
                        digest.update(chunk)
                        fh.write(chunk)
            partial.rename(target)
        except httpx.TransportError as exc:
            partial.unlink(missing_ok=True)
            raise ComfyUIError(
                "unreachable", f"the download of {name} broke off ({type(exc).__name__})"
            ) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return target, digest.hexdigest(), size

    # -- cancel ----------------------------------------------------------------------------------

    async def cancel(self, prompt_id: str) -> None:
        """Take ``prompt_id`` off the queue, or interrupt it if it is running (both: it may
        start between the two)."""
        await self._request("POST", "/queue", json={"delete": [prompt_id]})
        if await self.queue_state(prompt_id) == "running":
            await self._request("POST", "/interrupt", json={"prompt_id": prompt_id})


def _tls_refused(exc: BaseException) -> bool:
    """The connection failed because the server's certificate was not trusted."""
    import ssl

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _too_big(name: str, size: int, limit: int) -> str:
    return (
        f"the output {name} is over {limit // 2**20} MB ({size:,} bytes so far): "
        "not kept; lower the output size of the workflow"
    )
