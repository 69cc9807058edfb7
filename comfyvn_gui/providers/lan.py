"""unRAID / LAN: a GPU node on your own network, reached through its Docker Engine API.

What it sends (Docker Engine API, https://docs.docker.com/reference/api/engine/):

* validate: ``GET {docker}/_ping`` — the daemon answers 200, body ``OK`` and an ``Api-Version``
  header; anything else (a proxy's HTML login page with 200, a redirect) means the address is
  not a Docker Engine API: ``misconfigured``. Then ``GET {docker}/version`` (``Version``,
  ``ApiVersion``, ``MinAPIVersion``, ``Os``, ``Arch``, ``KernelVersion`` ...) gives the
  identity "Docker <Version> on <host>".
* health: ``GET {docker}/_ping`` only.
* both, when the node's ComfyUI is configured (``config.endpoints.comfyui``):
  ``GET {comfyui}/system_stats`` -> ``detail["gpus"]`` (name, VRAM in GB as vendors state it;
  see :func:`comfyvn_gui.providers.local.vram_gb`) and ``detail["reported_vram_gb"]`` (the
  largest), which the advisor uses for this node. ComfyUI gets at most
  :data:`COMFYUI_BUDGET_S` seconds. A ComfyUI that does not answer never fails validation (the
  credentials are Docker's); in a health check it makes the node ``degraded`` (so does a
  ComfyUI that sees no GPU), while a Docker API that does not answer makes it ``unhealthy``.

``{docker}`` is ``config.endpoints.docker``, else the provider's ``base_url``, else the
``endpoint`` auth field (the profile's ``docker`` default is empty: every node has its own).

Credentials: the optional ``api_token`` as ``Authorization: Bearer`` (a reverse proxy in front
of the daemon) and/or Docker's own mutual TLS with ``client_cert`` + ``client_key``; the node's
certificate is checked against ``ca_bundle`` when given (a node CA), else the system's CAs.
401 / 403 name the token (or the client certificate when no token is set); a certificate
the node refuses in the TLS handshake names ``client_cert``; a node certificate that cannot be
verified names ``ca_bundle``.

Plain ``http://`` is refused (``misconfigured``, naming the address field) unless the host is
loopback: an unauthenticated Docker API is root on that machine, and a token sent in clear
text is anyone's on the network. Loopback stays allowed because it is how the SSH / VPN
tunnels of the onboarding notes end (``ssh -L 2375:/var/run/docker.sock node`` ->
``http://127.0.0.1:2375``). The token is likewise never sent to ComfyUI over plain http to
another host, nor to a ComfyUI on another host than the Docker API's.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from comfyvn_gui.core.addresses import in_clear

from .base import CheckContext, CheckFailure, Outcome
from .comfyui_access import ComfyUIAccess, access_for, display_url
from .http_client import HttpClient
from .local import comfyui_devices, comfyui_summary
from .registry import register

if TYPE_CHECKING:
    import httpx

#: The most a ComfyUI may take to answer, so a hung one cannot time the whole check out.
COMFYUI_BUDGET_S = 5.0

# TLS alerts the PEER sent about our certificate (OpenSSL reason names). A certificate WE
# could not verify is CERTIFICATE_VERIFY_FAILED instead, which base.py maps to ca_bundle.
# Go (Docker) sends bad_certificate / certificate_required; OpenSSL servers on TLS 1.2 send a
# bare handshake_failure for a missing certificate, which is reported with a "most likely".
_CERT_ALERT = re.compile(
    r"(?:SSLV3|TLSV1|TLSV13)_ALERT_(?:CERTIFICATE_\w+|BAD_CERTIFICATE|UNKNOWN_CA|"
    r"ACCESS_DENIED|UNSUPPORTED_CERTIFICATE|HANDSHAKE_FAILURE)",
    re.IGNORECASE,
)
_REDIRECTS = (301, 302, 303, 307, 308)


_display = display_url


@dataclass
class _Target:
    """The Docker API of one node, with the settings that reach it."""

    url: str
    field: str  # the setting that gave the address: endpoint | base_url | endpoints
    scheme: str
    hostname: str
    host: str  # host[:port], for messages
    token: str | None
    cert: tuple[str, str] | str | None
    ca: str | None

    @property
    def cred_fields(self) -> list[str]:
        if self.token:
            return ["api_token"]
        if self.cert:
            return ["client_cert"]
        return ["api_token", "client_cert"]

    @property
    def auth(self) -> str:
        modes = [m for m, on in (("API token", self.token), ("mutual TLS", self.cert)) if on]
        return " + ".join(modes) or "no credentials"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, ctx: CheckContext) -> HttpClient:
        tls = self.scheme == "https"
        return ctx.http(
            auth_fields=self.cred_fields,
            verify=self.ca if tls else None,
            cert=self.cert if tls else None,
            verify_field="ca_bundle",
        )


def _target(ctx: CheckContext) -> _Target:
    overrides = ctx.provider.config.get("endpoints") or {}
    url = ctx.endpoint("docker")
    if url is not None:
        field = "endpoints" if overrides.get("docker") else "base_url"
    else:
        url = ctx.require("endpoint")[0].strip().rstrip("/")
        field = "endpoint"
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: the Docker API address must look like https://unraid.local:2376",
            fields=[field],
        )
    hostname = parts.hostname
    host = (f"[{hostname}]" if ":" in hostname else hostname) + (f":{port}" if port else "")
    if in_clear(url):
        raise CheckFailure(
            "misconfigured",
            f"{_display(url)} is plain http://: anyone on the network could use the node's "
            "Docker API (root on that machine) and read its credentials. Use the node's "
            "https:// address (Docker with --tlsverify, or your reverse proxy), or an SSH / VPN "
            "tunnel that ends on this computer (http://127.0.0.1:PORT)",
            fields=[field],
        )
    token = ctx.value("api_token")
    cert_file, key_file = ctx.value("client_cert"), ctx.value("client_key")
    if key_file and not cert_file:
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: a client key is set without its client certificate; choose both "
            "(or clear the key)",
            fields=["client_cert"],
        )
    cert: tuple[str, str] | str | None = (
        (cert_file, key_file) if cert_file and key_file else cert_file or None
    )
    return _Target(
        url=url,
        field=field,
        scheme=parts.scheme,
        hostname=hostname,
        host=host,
        token=token,
        cert=cert,
        ca=ctx.value("ca_bundle"),
    )


# --------------------------------------------------------------------------- failures


def _peer_cert_alert(exc: BaseException) -> str | None:
    """The TLS alert by which the peer refused our client certificate, if that happened."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        cur = stack.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        found = _CERT_ALERT.search(f"{getattr(cur, 'reason', '') or ''} {cur}")
        if found:
            return found.group(0).lower().replace("_", " ")
        stack += [cur.__cause__, cur.__context__]
    return None


def _client_cert_failure(target: _Target, why: str, *, sure: bool = True) -> CheckFailure:
    """The node refused the TLS client certificate (or its absence)."""
    if target.cert:
        head = (
            f"{target.host} refused this computer's client certificate ({why})"
            if sure
            else f"{target.host} refused the TLS handshake ({why}), which usually means it did "
            "not accept the client certificate"
        )
        return CheckFailure(
            "invalid_credentials",
            f"{head}: it must be signed by the CA the node's Docker daemon trusts (its "
            "--tlscacert) and still be valid; choose the certificate and key made for this "
            "computer, or make new ones with that CA",
            fields=["client_cert", "client_key"],
        )
    head = (
        f"{target.host} requires a client certificate ({why})"
        if sure
        else f"{target.host} refused the TLS handshake ({why}); it most likely requires a "
        "client certificate"
    )
    return CheckFailure(
        "misconfigured",
        f"{head} — Docker's mutual TLS (--tlsverify) — and none is set: choose the client "
        "certificate and key made for this computer",
        fields=["client_cert", "client_key"],
    )


def _refine(target: _Target, failure: CheckFailure) -> CheckFailure:
    """base.py's failure, with the client-certificate case and the right address field."""
    alert = _peer_cert_alert(failure)
    if alert is not None:
        return _client_cert_failure(
            target, f"TLS alert: {alert}", sure="handshake failure" not in alert
        )
    fields = [target.field if f == "base_url" else f for f in failure.fields]
    if fields == failure.fields:
        return failure
    return CheckFailure(failure.code, failure.message, fields=fields, detail=failure.detail)


def _tls_failure(target: _Target, exc: ssl.SSLError) -> CheckFailure:
    failure = CheckFailure(
        "unreachable",
        f"the TLS connection to {target.host} failed ({exc.reason or exc}); check the address "
        "and the node's TLS settings",
        fields=[target.field],
    )
    failure.__context__ = exc
    return failure


def _status_failure(target: _Target, resp: httpx.Response) -> CheckFailure | None:
    """401 / 403 / redirects, in this provider's words (``None`` for anything else)."""
    code = resp.status_code
    path = resp.request.url.path
    if code == 400 and "ssl certificate" in resp.text[:4000].lower():
        # nginx with ssl_verify_client: "400 No required SSL certificate was sent" /
        # "400 The SSL certificate error", after a completed handshake.
        return _client_cert_failure(target, "400 from the proxy: SSL certificate")
    if code == 401:
        if target.token:
            msg = (
                f"{target.host} rejected the API token (401 Unauthorized): paste the token "
                "your reverse proxy expects again"
            )
        elif target.cert:
            msg = (
                f"{target.host} answered 401 Unauthorized although the client certificate was "
                "accepted: set the API token if a proxy in front of Docker expects one"
            )
        else:
            msg = (
                f"{target.host} asks for credentials (401 Unauthorized): set the API token "
                "your reverse proxy expects, or the client certificate and key for Docker's "
                "mutual TLS"
            )
        return CheckFailure("invalid_credentials", msg, fields=target.cred_fields)
    if code == 403:
        what = "API token" if target.token else "client certificate" if target.cert else "request"
        return CheckFailure(
            "permission_denied",
            f"{target.host} accepted the connection but refused the {what} access to "
            f"{path} (403 Forbidden): allow it to reach the Docker API in your proxy's rules",
            fields=target.cred_fields,
        )
    if code in _REDIRECTS:
        return CheckFailure(
            "misconfigured",
            f"{target.host} redirects {path} to another page ({code}), as a login page or a "
            "web UI does: this address does not look like a Docker Engine API. Give the Docker "
            "daemon's address (e.g. https://unraid.local:2376) or a proxy path that forwards "
            "to it",
            fields=[target.field],
        )
    return None


async def _call(
    http: HttpClient, target: _Target, path: str, ok: tuple[int, ...]
) -> httpx.Response:
    try:
        resp = await http.get(target.url + path, ok=ok, headers=target.headers())
    except CheckFailure as failure:
        raise _refine(target, failure) from None
    except ssl.SSLError as exc:
        # A TLS alert that arrives after the client's side of the handshake (TLS 1.3: the
        # node checks our certificate then) reaches us as a bare SSLError, unmapped by httpx.
        raise _refine(target, _tls_failure(target, exc)) from None
    refused = _status_failure(target, resp)
    if refused is not None:
        raise refused
    if resp.status_code != 200:
        raise _refine(target, http.failure_for(resp))
    return resp


def _not_docker(target: _Target, what: str) -> CheckFailure:
    return CheckFailure(
        "misconfigured",
        f"{target.host} answered {what}: this address does not look like a Docker Engine API. "
        "Give the Docker daemon's address (e.g. https://unraid.local:2376) or a proxy path "
        "that forwards to it",
        fields=[target.field],
    )


async def _ping(http: HttpClient, target: _Target) -> str:
    """``GET /_ping``: Docker's ``OK`` and ``Api-Version`` header, else not a Docker API."""
    resp = await _call(http, target, "/_ping", (200, 400, 401, 403, *_REDIRECTS))
    api_version: str | None = resp.headers.get("Api-Version")
    if resp.text.strip() == "OK" and api_version:
        return api_version
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if "html" in ctype:
        got = "an HTML page"
    elif resp.text.strip() == "OK":
        got = "OK without Docker's Api-Version header"
    else:
        got = f"a {ctype or 'untyped'} body"
    raise _not_docker(target, f'/_ping with {got} (200) instead of Docker\'s "OK"')


async def _version(http: HttpClient, target: _Target) -> dict[str, Any]:
    resp = await _call(http, target, "/version", (200, 400, 401, 403, *_REDIRECTS))
    try:
        data = http.json(resp)
    except CheckFailure:
        raise _not_docker(target, "/version with a body that is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("Version"), str):
        raise _not_docker(target, "/version without Docker's Version field")
    return data


# --------------------------------------------------------------------------- ComfyUI


def comfyui_access(ctx: CheckContext) -> ComfyUIAccess | None:
    """The node's ComfyUI (``endpoints.comfyui``), or None when none is configured; a
    :class:`CheckFailure` for a node whose settings are wrong (as its validator says).

    TLS uses the node's CA and client certificate, as for its Docker API; the bearer token goes
    only to the Docker API's own host over an encrypted or loopback connection
    (:func:`.comfyui_access.access_for`)."""
    url = ctx.endpoint("comfyui")
    if url is None:
        return None
    target = _target(ctx)
    return _access(url, target)


def _access(url: str, target: _Target) -> ComfyUIAccess:
    return access_for(
        url, token=target.token, ca=target.ca, cert=target.cert, token_host=target.hostname
    )


async def _comfyui(ctx: CheckContext, target: _Target) -> dict[str, Any] | None:
    """The node's ComfyUI ``/system_stats`` in ``detail`` form; ``None`` if not configured."""
    url = ctx.endpoint("comfyui")
    if url is None:
        return None
    access = _access(url, target)
    chost = _display(url)
    send_token, headers = access.send_token, access.headers
    budget = min(COMFYUI_BUDGET_S, ctx.remaining() - 0.2)
    if budget <= 0:
        return {"comfyui": "not checked", "comfyui_error": "no time was left for ComfyUI"}
    try:
        async with asyncio.timeout(budget):
            async with ctx.http(
                auth_fields=["api_token"] if send_token else [],
                verify=access.verify,
                cert=access.cert,
                verify_field="ca_bundle",
            ) as http:
                try:
                    resp = await http.get(f"{url}/system_stats", headers=headers)
                except ssl.SSLError as exc:
                    raise _refine(target, _tls_failure(target, exc)) from None
                stats = http.json(resp)
    except TimeoutError:
        return {
            "comfyui": "not answering",
            "comfyui_code": "timeout",
            "comfyui_error": f"ComfyUI at {chost} did not answer within {budget:.1f} s",
        }
    except CheckFailure as failure:
        if failure.code == "unreachable":
            why = f"ComfyUI at {chost} does not answer (is it running?)"
        elif failure.code in ("invalid_credentials", "permission_denied"):
            why = f"ComfyUI at {chost} refused the request ({failure.code.replace('_', ' ')})"
        elif failure.code == "misconfigured" and failure.fields == ["base_url"]:
            why = f"{chost} has no ComfyUI /system_stats (wrong address?)"
        else:
            why = f"ComfyUI at {chost}: {failure.message}"
        return {"comfyui": "not answering", "comfyui_code": failure.code, "comfyui_error": why}
    gpus, ok = comfyui_devices(stats)
    if not ok:
        return {
            "comfyui": "not answering",
            "comfyui_code": "misconfigured",
            "comfyui_error": f"{chost}/system_stats is not ComfyUI's (no device list)",
        }
    system = stats.get("system") if isinstance(stats.get("system"), dict) else {}
    out: dict[str, Any] = {
        "comfyui": "running",
        "comfyui_version": system.get("comfyui_version"),
        "gpus": gpus,
    }
    if gpus:
        out["reported_vram_gb"] = max(g["vram_total_gb"] for g in gpus)
    return out


def _comfyui_words(comfy: dict[str, Any] | None) -> str:
    if comfy is None:
        return ""
    if comfy["comfyui"] == "running":
        if comfy["gpus"]:
            return f"; ComfyUI: {comfyui_summary(comfy['gpus'])}"
        return "; ComfyUI sees no GPU (it runs on CPU)"
    return f"; {comfy.get('comfyui_error') or 'ComfyUI is not answering'}"


# --------------------------------------------------------------------------- the adapter


@register("lan")
class LanAdapter:
    """A LAN / unRAID node: its Docker Engine API, and its ComfyUI when configured."""

    async def validate(self, ctx: CheckContext) -> Outcome:
        target = _target(ctx)
        async with target.client(ctx) as http:
            ping_version = await _ping(http, target)
            version = await _version(http, target)
        comfy = await _comfyui(ctx, target)
        docker = version["Version"]
        api = version.get("ApiVersion") or ping_version
        platform = "/".join(str(v) for v in (version.get("Os"), version.get("Arch")) if v)
        detail: dict[str, Any] = {
            "identity": f"Docker {docker} on {target.hostname}",
            "address": target.host,
            "docker_version": docker,
            "api_version": api,
            "min_api_version": version.get("MinAPIVersion"),
            "os": version.get("Os"),
            "arch": version.get("Arch"),
            "kernel_version": version.get("KernelVersion"),
            "platform": (version.get("Platform") or {}).get("Name")
            if isinstance(version.get("Platform"), dict)
            else None,
            "auth": target.auth,
            "comfyui": "not configured",
        }
        if comfy is not None:
            detail.update(comfy)
        message = (
            f"Docker {docker} on {target.hostname} (API {api}"
            + (f", {platform}" if platform else "")
            + f", {target.auth})"
            + _comfyui_words(comfy)
        )
        return Outcome(message=message, detail=detail)

    async def health(self, ctx: CheckContext) -> Outcome:
        target = _target(ctx)
        async with target.client(ctx) as http:
            api = await _ping(http, target)
        comfy = await _comfyui(ctx, target)
        detail: dict[str, Any] = {
            "address": target.host,
            "api_version": api,
            "comfyui": "not configured",
        }
        message = f"the Docker API at {target.host} answers (API {api})"
        if comfy is None:
            return Outcome(message=message, detail=detail)
        detail.update(comfy)
        message += _comfyui_words(comfy)
        if comfy["comfyui"] != "running":
            return Outcome(
                message=message,
                detail=detail,
                health="degraded",
                code=comfy.get("comfyui_code") or "unreachable",
            )
        if not comfy["gpus"]:
            return Outcome(message=message, detail=detail, health="degraded", code="misconfigured")
        return Outcome(message=message, detail=detail)
