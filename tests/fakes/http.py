"""Real HTTP(S) servers on 127.0.0.1 for provider counterparts, and fault servers.

A counterpart is a :class:`FakeServer` with routes; each route is a function of the recorded
request returning ``(status, headers, body)``. Every request is recorded (method, path, query,
headers, body) so tests assert what the adapter sent. A request that matches no route gets
404, a known path with the wrong method 405 — as a real API does — so an adapter that calls
the wrong path or method fails its test.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # a templated route's {names}

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None


Reply = tuple[int, dict[str, str], bytes | str | Any]
Route = Callable[[Request], Reply]


def reply_json(status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(data)


@dataclass
class FakeServer:
    """A threaded HTTP server; use as a context manager. ``base`` is its URL."""

    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None
    default: Route | None = None  # answers every request no route matches (fault servers)
    requests: list[Request] = field(default_factory=list)

    def _template_match(self, template: str, path: str) -> dict[str, str] | None:
        """``/v1/machines/{id}`` matches ``/v1/machines/ps123`` ({id}: one path segment)."""
        if "{" not in template:
            return None
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        m = re.fullmatch(pattern, path)
        return m.groupdict() if m else None

    def _templated(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for (m, template), fn in list(self.routes.items()):
            if m == method:
                params = self._template_match(template, path)
                if params is not None:
                    return fn, params
        return None, {}

    def route(self, method: str, path: str) -> Callable[[Route], Route]:
        """Route ``method path``; ``{name}`` in the path matches one segment, found in
        ``req.params``."""

        def deco(fn: Route) -> Route:
            self.routes[(method.upper(), path)] = fn
            return fn

        return deco

    def __enter__(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                fake.requests.append(req)
                route = fake.routes.get((self.command, parts.path))
                if route is None:
                    route, req.params = fake._templated(self.command, parts.path)
                route = route or fake.default
                if route is None:
                    known = any(
                        p == parts.path or fake._template_match(p, parts.path) is not None
                        for (_, p) in fake.routes
                    )
                    status, headers, payload = reply_json(
                        405 if known else 404, {"error": "no such route"}
                    )
                else:
                    status, headers, payload = route(req)
                if not isinstance(payload, bytes | str):
                    payload = json.dumps(payload)
                data = payload.encode() if isinstance(payload, str) else payload
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # a real API takes many connections at once

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.ssl_context is not None:
            self._server.socket = self.ssl_context.wrap_socket(
                self._server.socket, server_side=True
            )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"


class SilentServer:
    """Accepts connections and never answers (a black hole after the TCP handshake)."""

    def __enter__(self) -> SilentServer:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.conns: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
            except OSError:
                continue

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"


def closed_port_url() -> str:
    """A URL on which nothing listens (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def slow(route: Route, seconds: float) -> Route:
    def wrapped(req: Request) -> Reply:
        time.sleep(seconds)
        return route(req)

    return wrapped


def arun(coro: Any) -> Any:
    """Run a coroutine to completion on a fresh event loop in its own thread.

    Independent of any loop the Qt tests keep running, so any test can use it.
    """
    import asyncio
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class ResettableFake:
    """What the provider fakes share: one running server per test module, reset per test.

    A subclass is a dataclass with a ``server: FakeServer`` field and its settings as fields;
    its ``__post_init__`` registers routes and calls :meth:`_capture_defaults`.
    """

    server: FakeServer
    _defaults: dict[str, Any]
    _seen: int

    def _capture_defaults(self) -> None:
        import copy
        import dataclasses

        self._defaults = {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.name != "server"
        }
        self._seen = 0

    def reset(self, **changes: Any) -> Any:
        """Back to the settings it was made with (plus ``changes``), no requests recorded."""
        import copy

        for name, value in self._defaults.items():
            setattr(self, name, copy.deepcopy(value))
        for name, value in changes.items():
            if name not in self._defaults:
                raise TypeError(f"{type(self).__name__} has no setting {name!r}")
            setattr(self, name, value)
        self._after_reset()
        self.server.requests.clear()
        self._seen = 0
        return self

    def _after_reset(self) -> None:
        """Hook for fakes whose routes depend on their settings."""

    def __enter__(self) -> Any:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def requests(self) -> list[Request]:
        return self.server.requests


def closed_by_peer(conn: socket.socket, until: float) -> bool:
    """Read what the client sent until it closes the connection (True) or ``until`` passes."""
    while (left := until - time.monotonic()) > 0:
        conn.settimeout(left)
        try:
            if conn.recv(65536) == b"":
                return True
        except (TimeoutError, OSError):
            return False
    return False


def assert_clean(svc: Any, result: Any, *secrets: str) -> None:
    """No secret value in the result, in what was stored, or in the audit log."""
    kinds = svc.last_results().get(result.provider, {})
    stored = json.dumps({k: v.model_dump(mode="json") for k, v in kinds.items()})
    log = svc.home.log_dir / "compute_advisor.log"
    log_text = log.read_text() if log.exists() else ""
    for secret in secrets:
        assert secret not in result.model_dump_json()
        assert secret not in stored
        assert secret not in log_text
