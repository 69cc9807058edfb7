"""The API's front door, as Jupyter guards its local server: the Host header (against DNS
rebinding), the bearer token, a body size limit, and the last word on unexpected errors.

It is plain ASGI middleware, so it also covers the routes FastAPI does not know (404s) and the
OpenAPI document. No CORS headers are ever added: a web page cannot read the API's answers.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from comfyvn_gui.core.redaction import redact

log = logging.getLogger("comfyvn_gui.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Largest request body accepted (an importer summary with inline ComfyUI graphs fits easily).
MAX_BODY_BYTES = 16 * 1024 * 1024

#: Added to every response: nothing is cached, nothing is sniffed, no page may frame it.
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})


def host_name(header: str) -> str:
    """The host part of a Host header, lower case: ``[::1]:8765`` -> ``::1``."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    name, sep, port = value.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        value = name
    return value.rstrip(".")


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def is_loopback_ip(address: str) -> bool:
    """``address`` is an IP address of this machine's loopback interface."""
    ip = _ip(address)
    return ip is not None and ip.is_loopback


def is_loopback_name(name: str) -> bool:
    """A name or address that can only mean this machine (a DNS name an attacker controls
    cannot be one: ``*.localhost`` never leaves the machine, RFC 6761)."""
    return name in LOOPBACK_NAMES or name.endswith(".localhost") or is_loopback_ip(name)


def is_loopback_bind(host: str) -> bool:
    return is_loopback_name(host_name(host) if host.startswith("[") else host.lower())


class HostPolicy:
    """Which Host headers the server answers: loopback names, the address it was told to bind
    to, and, when bound to every interface, any IP address (an address is not a DNS name, so
    it cannot be rebound)."""

    def __init__(self, bind_host: str) -> None:
        bound = bind_host.strip().lower().strip("[]")
        self.any_ip = bind_host.strip() in WILDCARDS
        self.extra = frozenset() if self.any_ip else frozenset({bound})

    def allows(self, name: str) -> bool:
        if is_loopback_name(name) or name in self.extra:
            return True
        return self.any_ip and _ip(name) is not None


def error_object(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    """The API's one error shape: ``{"error": {"code", "message", "fields"}}``."""
    return {"error": {"code": code, "message": message, "fields": list(fields or [])}}


def error_body(code: str, message: str, fields: list[str] | None = None) -> bytes:
    return json.dumps(error_object(code, message, fields)).encode()


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        token_file: str,
        bind_host: str,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self._token = token.encode()
        self.token_file = token_file
        self.hosts = HostPolicy(bind_host)
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        headers: dict[bytes, bytes] = {}
        for k, v in scope.get("headers") or []:
            headers.setdefault(k.lower(), v)
        refusal = self._refusal(headers)
        if refusal is not None:
            status, code, message, extra = refusal
            await _respond(send, status, error_body(code, message), extra)
            return

        # Every body of this API is JSON, whatever the client called it (`curl -d` says
        # x-www-form-urlencoded): the routes parse it as JSON and say so when it is not.
        if b"content-type" in headers or b"content-length" in headers:
            scope["headers"] = [
                (k, v) for k, v in scope.get("headers") or [] if k.lower() != b"content-type"
            ] + [(b"content-type", b"application/json")]

        started = False
        refused = False
        received = 0

        async def guarded_receive() -> Message:
            nonlocal received, started, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    # Answer now: the framework turns any error while it reads a body into
                    # its own 400, which guarded_send then drops.
                    if not started:
                        started = refused = True
                        await _respond(send, 413, self._too_large())
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in SECURITY_HEADERS if k not in names
                ]
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except _TooLarge:
            if not started:
                await _respond(send, 413, self._too_large())
        except Exception as exc:
            log.error(
                "internal error in %s %s: %s: %s",
                scope.get("method"),
                scope.get("path"),
                type(exc).__name__,
                redact(str(exc)),
                exc_info=True,
            )
            if not started:
                await _respond(
                    send,
                    500,
                    error_body(
                        "internal_error",
                        f"internal error ({type(exc).__name__}); nothing more is known here. "
                        "The server's log has the details; please report it",
                    ),
                )

    def _too_large_message(self) -> str:
        return (
            f"the request body is larger than {self.max_body / (1024 * 1024):g} MiB; "
            "send less at a time"
        )

    def _too_large(self) -> bytes:
        return error_body("payload_too_large", self._too_large_message())

    def _refusal(
        self, headers: dict[bytes, bytes]
    ) -> tuple[int, str, str, list[tuple[bytes, bytes]]] | None:
        raw_host = headers.get(b"host")
        if raw_host is None:
            return 400, "invalid_input", "the request has no Host header", []
        name = host_name(raw_host.decode("latin-1"))
        if not self.hosts.allows(name):
            return (
                403,
                "forbidden",
                f"requests for host {name[:100]!r} are refused: this API answers only to "
                "localhost, a loopback address or the address the server was started on "
                "(a guard against DNS rebinding)",
                [],
            )
        auth = headers.get(b"authorization", b"")
        scheme, _, given = auth.partition(b" ")
        if not auth:
            return (
                401,
                "unauthorized",
                "this API needs its token: send `Authorization: Bearer TOKEN`, with the token "
                f"kept in {self.token_file}",
                [(b"www-authenticate", b"Bearer")],
            )
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self._token):
            return (
                401,
                "unauthorized",
                "the API token is wrong: send `Authorization: Bearer TOKEN` with the token "
                f"kept in {self.token_file}",
                [(b"www-authenticate", b'Bearer error="invalid_token"')],
            )
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return 413, "payload_too_large", self._too_large_message(), []
        return None


class _TooLarge(Exception):
    pass


async def _respond(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *SECURITY_HEADERS,
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
