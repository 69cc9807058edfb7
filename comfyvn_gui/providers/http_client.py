"""The HTTP client every HTTP adapter uses: httpx bound to one check (docs/architecture.md).

:class:`HttpClient` (made by :meth:`CheckContext.http <.base.CheckContext.http>`) gives httpx
timeouts cut to the check's deadline, the system proxy settings (``trust_env``), the OS trust
store plus an optional custom CA bundle or client certificate, bounded retries that honour
``Retry-After`` on 429/503, and the mapping of transport and HTTP failures into the result
vocabulary (naming the auth fields to fix). httpx itself is imported when a check opens one.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import os
import ssl
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from comfyvn_gui.core.addresses import in_clear

from .base import CheckFailure

if TYPE_CHECKING:
    import httpx

    from .base import CheckContext

#: Retries of one request on 429/503 (the first attempt not counted).
MAX_RETRIES = 2
#: A Retry-After longer than this (seconds) is not waited for; the check reports it instead.
MAX_RETRY_AFTER_S = 10.0
USER_AGENT = "comfyvn-gui"
#: An HTTP request times out this long before its check's deadline.
HTTP_MARGIN_S = 0.2


class HttpClient:
    """httpx bound to one check: deadline-aware timeouts, retries and failure mapping."""

    def __init__(
        self,
        ctx: CheckContext,
        *,
        auth_fields: list[str],
        verify: str | bool | None,
        cert: tuple[str, str] | str | None,
        verify_field: str | None,
        address_field: str = "base_url",
    ) -> None:
        self.ctx = ctx
        self._address_field = address_field
        self.auth_fields = auth_fields
        self._verify = verify
        self._cert = cert
        self._verify_field = verify_field
        self._client: httpx.AsyncClient | None = None
        self.ssl_context: ssl.SSLContext | None = None

    async def __aenter__(self) -> HttpClient:
        import httpx

        # The OS trust store (and OpenSSL's SSL_CERT_FILE), plus a custom CA bundle if given.
        cafile = self._verify if isinstance(self._verify, str) else self.ctx.network.ca_bundle
        verify = _ssl_context(
            self.ctx.name,
            cafile,
            self._verify is False,
            self._cert,
            self._verify_field,
            isinstance(self._verify, str),
        )
        self.ssl_context = verify
        self._client = httpx.AsyncClient(
            verify=verify,
            trust_env=True,  # HTTP(S)_PROXY / NO_PROXY and the system's proxy settings
            transport=self.ctx.transport,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )
        return self

    @property
    def raw(self) -> httpx.AsyncClient:
        """The httpx client itself (its TLS and proxy settings are this one's), for a client
        of its own API that maps failures itself (providers/comfyui.py)."""
        assert self._client is not None, "use `async with ctx.http() as http`"
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        ok: Iterable[int] = (200,),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; return the response if its status is in ``ok``.

        Anything else becomes a :class:`CheckFailure` of the right kind. 429 and 503 are
        retried (at most :data:`MAX_RETRIES` times) when ``Retry-After`` fits the deadline.
        """
        import httpx

        assert self._client is not None, "use `async with ctx.http() as http`"
        ok_set = set(ok)
        host = httpx.URL(url).host or url
        if self.auth_fields and in_clear(url):
            # Checked at input too; here again for a hand-edited providers.json.
            raise CheckFailure(
                "misconfigured",
                f"{self.ctx.name}: not sent: {host} is plain http:// to another machine, and "
                "this request carries your credentials; use an https:// address",
                fields=self._address_fields(),
            )
        attempt = 0
        while True:
            remaining = self.ctx.remaining()
            if remaining <= 0:
                raise TimeoutError
            # httpx gives up just before the check's deadline, so a request ends by its own
            # timeout (closing its socket cleanly) rather than by cancellation mid-handshake.
            budget = max(0.05, remaining - HTTP_MARGIN_S)
            timeout = httpx.Timeout(budget, connect=min(budget, 10.0))
            try:
                resp = await self._client.request(method, url, timeout=timeout, **kwargs)
            except httpx.TimeoutException:
                raise CheckFailure(
                    "timeout",
                    f"{self.ctx.name} ({host}) did not answer in time; check your network or "
                    "try again later",
                ) from None
            except httpx.ConnectError as exc:
                if _is_tls_error(exc):
                    raise CheckFailure(
                        "misconfigured",
                        f"the TLS certificate of {host} could not be verified ({_reason(exc)}). "
                        "If the address is right and you are behind a proxy that inspects TLS, "
                        "or the server uses its own CA, give its CA bundle",
                        fields=[self._verify_field] if self._verify_field else [],
                    ) from None
                raise CheckFailure(
                    "unreachable",
                    f"cannot connect to {self.ctx.name} at {host} ({_reason(exc)}); check the "
                    "address and your network",
                    fields=self._address_fields(),
                ) from None
            except ssl.SSLError as exc:
                # TLS 1.3 reports a refused client certificate on the first read, as a bare
                # SSLError that httpx does not wrap.
                raise CheckFailure(
                    "misconfigured",
                    f"the TLS connection to {self.ctx.name} at {host} was refused "
                    f"({_reason(exc)}); check the certificates in the provider's settings",
                    fields=[f for f in (self._verify_field,) if f],
                ) from None
            except httpx.TransportError as exc:
                raise CheckFailure(
                    "unreachable",
                    f"the connection to {self.ctx.name} at {host} failed ({_reason(exc)})",
                    fields=self._address_fields(),
                ) from None
            if resp.status_code in ok_set:
                return resp
            if resp.status_code in (429, 503) and attempt < MAX_RETRIES:
                wait = _retry_after(resp)
                if wait is None:
                    wait = 0.5 * (2**attempt)
                if wait <= MAX_RETRY_AFTER_S and wait < self.ctx.remaining() - 0.05:
                    attempt += 1
                    await asyncio.sleep(wait)
                    continue
            raise self.failure_for(resp)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    def json(self, resp: httpx.Response) -> Any:
        """The body as JSON, or an ``error`` failure saying the provider sent something else."""
        try:
            return resp.json()
        except ValueError:
            raise CheckFailure(
                "error",
                f"{self.ctx.name} answered {resp.status_code} with a body that is not JSON; "
                "is the address right?",
                fields=self._address_fields(),
            ) from None

    def failure_for(self, resp: httpx.Response) -> CheckFailure:
        """Map an unexpected HTTP status into the result vocabulary."""
        code = resp.status_code
        name = self.ctx.name
        fields = self.auth_fields
        label = " / ".join(self.ctx.profile.field(f).label for f in fields) or "credentials"
        if code == 401:
            return CheckFailure(
                "invalid_credentials",
                f"{name} rejected the {label} (401 Unauthorized); paste the key again or "
                "create a new one",
                fields=fields,
            )
        if code == 403:
            return CheckFailure(
                "permission_denied",
                f"{name} accepted the {label} but refused access (403 Forbidden); give the key "
                "the permissions it needs",
                fields=fields,
            )
        if code == 429:
            wait = _retry_after(resp)
            return CheckFailure(
                "rate_limited",
                f"{name} is rate-limiting requests (429)"
                + (f"; try again in {wait:.0f} s" if wait else "; try again shortly"),
                detail={"retry_after_s": wait} if wait is not None else {},
            )
        if code in (404, 405):
            return CheckFailure(
                "misconfigured",
                f"{name} answered {code} for {resp.request.url.path}: the address or an id in "
                "the settings is wrong",
                fields=self._address_fields(),
            )
        if code in (502, 503, 504):
            return CheckFailure(
                "unreachable",
                f"{name} is unavailable right now ({code}); try again later",
            )
        return CheckFailure("error", f"{name} answered {code} unexpectedly; try again later")

    def _address_fields(self) -> list[str]:
        if self._address_field != "base_url":
            return [self._address_field]
        return ["base_url"] if self.ctx.profile.primary_endpoint else []


@functools.lru_cache(maxsize=64)
def _cached_context(
    cafile: str | None, insecure: bool, cert: tuple[str, str] | str | None, mtime: float
) -> ssl.SSLContext:
    """Loading the trust store costs tens of milliseconds of CPU: do it once per setting."""
    ctx = ssl.create_default_context()  # the system's trust store ...
    if cafile:
        ctx.load_verify_locations(cafile=cafile)  # ... plus the extra CAs
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if isinstance(cert, tuple):
        ctx.load_cert_chain(*cert)
    elif cert is not None:
        ctx.load_cert_chain(cert)
    return ctx


def _ssl_context(
    name: str,
    cafile: str | None,
    insecure: bool,
    cert: tuple[str, str] | str | None,
    verify_field: str | None,
    own_ca: bool,
) -> ssl.SSLContext:
    files = [f for f in (cafile, *(cert if isinstance(cert, tuple) else (cert,))) if f]
    try:
        mtime = max((os.stat(f).st_mtime for f in files), default=0.0)  # a changed file reloads
    except OSError:
        mtime = -1.0  # a missing file: loading it below reports it
    try:
        return _cached_context(cafile, insecure, cert, mtime)
    except (OSError, ssl.SSLError) as exc:
        if cafile:  # which file was it? the CA bundle, if it does not load on its own
            try:
                ssl.create_default_context().load_verify_locations(cafile=cafile)
            except (OSError, ssl.SSLError) as ca_exc:
                raise _ca_failure(cafile, ca_exc, verify_field, own_ca) from None
        raise CheckFailure(
            "misconfigured",
            f"{name}: the client certificate or its key could not be loaded "
            f"({_reason(exc)}); check the files",
            fields=["client_cert", "client_key"],
        ) from None


def _ca_failure(
    cafile: str | None, exc: BaseException, verify_field: str | None, own_ca: bool
) -> CheckFailure:
    return CheckFailure(
        "misconfigured",
        f"the CA bundle {cafile} could not be loaded ({_reason(exc)}); "
        + ("check the file" if own_ca else "check the network.ca_bundle setting"),
        fields=[verify_field] if own_ca and verify_field else [],
    )


def _retry_after(resp: httpx.Response) -> float | None:
    return retry_after_seconds(resp.headers.get("Retry-After"))


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header's wait in seconds (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _is_tls_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(cur):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:160] + "…"
