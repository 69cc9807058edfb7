"""A Docker Engine API counterpart over HTTPS, with the PKI a TLS-protected daemon uses.

It answers as the Engine API documents it (https://docs.docker.com/reference/api/engine/):

* ``GET|HEAD /_ping`` -> 200 ``text/plain`` body ``OK`` (empty for HEAD) with the headers
  ``Api-Version``, ``Docker-Experimental``, ``Ostype``, ``Builder-Version`` and
  ``Cache-Control: no-cache, no-store, must-revalidate``;
* ``GET /version`` -> the ``SystemVersion`` object (``Platform``, ``Components``, ``Version``,
  ``ApiVersion``, ``MinAPIVersion``, ``GitCommit``, ``GoVersion``, ``Os``, ``Arch``,
  ``KernelVersion``, ``BuildTime``);
* versioned paths (``/v1.47/_ping``) the same as unversioned ones, as the daemon does;
* anything else: ``404 {"message": "page not found"}``; a known path with another method:
  ``405 {"message": "..."}``. Errors are JSON ``{"message": ...}`` as the daemon writes them.

Two ways of protecting it, as real nodes are set up:

* ``token=...`` — a reverse proxy in front of the daemon that wants ``Authorization: Bearer``
  (401 ``{"message": "unauthorized"}`` without it or with another one);
* ``mtls=True`` — the daemon's own ``--tlsverify``: the TLS handshake requires a client
  certificate signed by the node's CA (``ssl.CERT_REQUIRED``); a refused handshake is recorded
  in :attr:`DockerFake.handshake_failures`.

Every request that got past TLS is recorded (see :class:`tests.fakes.http.Request`).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

from .http import Request

_VERSIONED = re.compile(r"^/v\d+\.\d+(?=/)")


@dataclass
class Pki:
    """A node's CA with its server certificate, and client certificates as files (PEM)."""

    directory: Path
    ca: trustme.CA
    server: trustme.LeafCert
    ca_file: Path
    client_cert: Path
    client_key: Path
    #: A client certificate from another CA: the node must refuse it.
    rogue_cert: Path
    rogue_key: Path

    def server_context(self, *, require_client_cert: bool) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server.configure_cert(ctx)
        if require_client_cert:
            self.ca.configure_trust(ctx)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1 / localhost and two client certificates."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="unraid node CA")
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("comfyvn-gui-client", common_name="comfyvn-gui")
    rogue_ca = trustme.CA(organization_name="someone else")
    rogue = rogue_ca.issue_cert("comfyvn-gui-client", common_name="comfyvn-gui")
    files = {
        "ca.pem": ca.cert_pem,
        "cert.pem": client.cert_chain_pems[0],
        "key.pem": client.private_key_pem,
        "rogue-cert.pem": rogue.cert_chain_pems[0],
        "rogue-key.pem": rogue.private_key_pem,
    }
    for name, blob in files.items():
        blob.write_to_path(str(directory / name))
    return Pki(
        directory=directory,
        ca=ca,
        server=server,
        ca_file=directory / "ca.pem",
        client_cert=directory / "cert.pem",
        client_key=directory / "key.pem",
        rogue_cert=directory / "rogue-cert.pem",
        rogue_key=directory / "rogue-key.pem",
    )


def version_body(version: str, api_version: str) -> dict[str, Any]:
    """``GET /version`` as a Linux daemon answers it."""
    return {
        "Platform": {"Name": "Docker Engine - Community"},
        "Components": [
            {
                "Name": "Engine",
                "Version": version,
                "Details": {
                    "ApiVersion": api_version,
                    "Arch": "amd64",
                    "BuildTime": "2024-09-20T11:41:05.000000000+00:00",
                    "Experimental": "false",
                    "GitCommit": "41ca978",
                    "GoVersion": "go1.22.7",
                    "KernelVersion": "6.1.106-Unraid",
                    "MinAPIVersion": "1.24",
                    "Os": "linux",
                },
            },
            {"Name": "containerd", "Version": "v1.7.22", "Details": {"GitCommit": "7f7fdf5"}},
        ],
        "Version": version,
        "ApiVersion": api_version,
        "MinAPIVersion": "1.24",
        "GitCommit": "41ca978",
        "GoVersion": "go1.22.7",
        "Os": "linux",
        "Arch": "amd64",
        "KernelVersion": "6.1.106-Unraid",
        "BuildTime": "2024-09-20T11:41:05.000000000+00:00",
    }


@dataclass
class DockerFake:
    """The Docker Engine API of one node on HTTPS; use as a context manager."""

    pki: Pki
    token: str | None = None
    mtls: bool = False
    #: False: plain HTTP, as the daemon's socket looks at the end of an SSH tunnel.
    tls: bool = True
    #: Cap the TLS version (TLS 1.2 refuses a client certificate inside the handshake; 1.3
    #: after the client has finished its side of it).
    tls_max: ssl.TLSVersion | None = None
    version: str = "27.3.1"
    api_version: str = "1.47"
    requests: list[Request] = field(default_factory=list)
    handshake_failures: list[str] = field(default_factory=list)

    def __enter__(self) -> DockerFake:
        fake = self
        context = self.pki.server_context(require_client_cert=self.mtls) if self.tls else None
        if context is not None and self.tls_max is not None:
            context.maximum_version = self.tls_max

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                # The handshake runs in this request's thread, so a client that is refused
                # (or never finishes it) cannot stall the accepting thread.
                raw: socket.socket = self.request
                raw.settimeout(5)
                if context is None:
                    super().setup()
                    return
                tls = context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
                try:
                    tls.do_handshake()
                except (ssl.SSLError, OSError) as exc:
                    fake.handshake_failures.append(getattr(exc, "reason", None) or str(exc))
                    _drain(tls)
                    raise _Refused from None
                self.request = self.connection = tls
                super().setup()

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    self.request.close()

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _error(self, status: int, message: str) -> None:
                self._reply(
                    status,
                    {"Content-Type": "application/json"},
                    json.dumps({"message": message}).encode() + b"\n",
                )

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                req = Request(self.command, parts.path, parse_qs(parts.query), headers, body)
                fake.requests.append(req)
                if fake.token is not None and req.bearer != fake.token:
                    self._error(401, "unauthorized")
                    return
                path = _VERSIONED.sub("", parts.path)
                if path == "/_ping":
                    if self.command not in ("GET", "HEAD"):
                        self._error(405, f"method {self.command} not allowed on /_ping")
                        return
                    self._reply(
                        200,
                        {
                            "Api-Version": fake.api_version,
                            "Builder-Version": "2",
                            "Cache-Control": "no-cache, no-store, must-revalidate",
                            "Docker-Experimental": "false",
                            "Ostype": "linux",
                            "Pragma": "no-cache",
                            "Content-Type": "text/plain; charset=utf-8",
                            "Server": f"Docker/{fake.version} (linux)",
                        },
                        b"OK",
                    )
                elif path == "/version":
                    if self.command != "GET":
                        self._error(405, f"method {self.command} not allowed on /version")
                        return
                    self._reply(
                        200,
                        {
                            "Api-Version": fake.api_version,
                            "Content-Type": "application/json",
                            "Server": f"Docker/{fake.version} (linux)",
                        },
                        json.dumps(version_body(fake.version, fake.api_version)).encode() + b"\n",
                    )
                else:
                    self._error(404, "page not found")

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # refused handshakes are recorded above; nothing to print

        self._server = Server(("127.0.0.1", 0), Handler)
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
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


class _Refused(Exception):
    """The TLS handshake was refused (the alert has been sent)."""


def _drain(tls: ssl.SSLSocket) -> None:
    """Read what the client already sent before closing, so it gets our TLS alert, not a reset.

    (Closing a socket with unread data makes the kernel send RST, which can overtake the alert.)
    """
    try:
        raw = socket.socket(fileno=tls.detach())
    except OSError:
        return
    try:
        raw.shutdown(socket.SHUT_WR)
        raw.settimeout(1.0)
        while raw.recv(65536):
            pass
    except OSError:
        pass
    finally:
        raw.close()
