"""The Entra ID token: azure-identity's asyncio ``ClientSecretCredential`` (imported on first
use), sending through the check's :class:`~comfyvn_gui.providers.http_client.HttpClient`, and
Entra's refusals (``AADSTS`` codes) in the result vocabulary."""

from __future__ import annotations

import functools
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from comfyvn_gui.providers.base import CheckContext, CheckFailure
from comfyvn_gui.providers.lazy import LazyImport, import_now

from .subscription import _endpoint

if TYPE_CHECKING:
    import httpx
    from azure.core import exceptions as azure_exceptions
    from azure.core import utils as azure_utils
    from azure.core.pipeline import transport as azure_transport
    from azure.identity import aio as identity_aio

    from comfyvn_gui.providers.http_client import HttpClient
else:
    azure_exceptions = LazyImport("azure.core.exceptions")
    azure_utils = LazyImport("azure.core.utils")
    azure_transport = LazyImport("azure.core.pipeline.transport")
    identity_aio = LazyImport("azure.identity.aio")

SCOPE = "https://management.azure.com/.default"
_AADSTS = re.compile(r"AADSTS(\d+)")

# azure-identity logs every failed get_token as a WARNING with Entra's error body; the check
# reports the failure itself (in words), so those records would only repeat it on stderr and in
# gui.log. Keep an explicit level if someone set one.
if logging.getLogger("azure.identity").level == logging.NOTSET:
    logging.getLogger("azure.identity").setLevel(logging.ERROR)


@functools.cache
def _transport_class() -> type:
    """An azure-core async transport that sends through the check's :class:`HttpClient`.

    Built on first use, so importing this module imports no Azure package. Through it the
    deadline (httpx timeouts cut to what is left), the system proxy settings, the trust store
    and ``network.ca_bundle``, and the framework's failure mapping (``timeout``,
    ``unreachable``, TLS ``misconfigured``; 429/503 retried when ``Retry-After`` fits) apply to
    the token request exactly as to the ARM requests. Transport failures come out as
    :class:`CheckFailure`, which azure-core's policies pass through untouched.
    """
    # Every answer goes back to azure-identity to parse, except those the framework retries.
    answered = tuple(s for s in range(100, 600) if s not in (429, 503))

    class Response(azure_transport.AsyncHttpResponse):
        """The parts of a response azure-identity reads, from an httpx response."""

        def __init__(self, request: Any, resp: httpx.Response) -> None:
            super().__init__(request, resp)
            self.status_code = resp.status_code
            self.headers = azure_utils.case_insensitive_dict(resp.headers)
            self.reason = resp.reason_phrase
            self.content_type = resp.headers.get("content-type")
            self._body = resp.content

        def body(self) -> bytes:
            return self._body

        def stream_download(self, pipeline: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("a token response is never streamed")

    class Transport(azure_transport.AsyncHttpTransport[Any, Any]):
        def __init__(self, http: HttpClient) -> None:
            self._http = http

        async def __aenter__(self) -> Transport:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def open(self) -> None:
            return None

        async def close(self) -> None:
            return None  # the check's HttpClient is closed by the check

        async def send(self, request: Any, **kwargs: Any) -> Response:
            content = request.content
            body = {"data": content} if isinstance(content, dict) else {"content": content}
            resp = await self._http.request(
                request.method, request.url, ok=answered, headers=dict(request.headers), **body
            )
            return Response(request, resp)

    return Transport


async def _token(
    ctx: CheckContext, http: HttpClient, tenant_id: str, client_id: str, secret: str
) -> str:
    import_now(azure_exceptions, identity_aio)  # a missing SDK fails here, first
    authority = _endpoint(ctx, "authority")
    if urlsplit(authority).scheme != "https":  # checked before any secret is sent
        raise CheckFailure(
            "misconfigured",
            f"Azure: the Entra ID authority must be an https:// address (it is {authority}); "
            "set the base URL to https://login.microsoftonline.com or leave it empty",
            fields=["base_url"],
        )
    try:
        credential = identity_aio.ClientSecretCredential(
            tenant_id,
            client_id,
            secret,
            authority=authority,
            transport=_transport_class()(http),
            retry_total=0,  # the framework retries 429/503 within the deadline; nothing else
        )
    except ValueError:  # azure-identity's check of the tenant ID's characters
        raise CheckFailure(
            "invalid_credentials",
            "Azure: the Tenant ID has characters a tenant ID never has; paste the 'Tenant ID' "
            "GUID (or your-tenant.onmicrosoft.com) from Azure portal → Microsoft Entra ID → "
            "Overview",
            fields=["tenant_id"],
        ) from None
    try:
        token = await credential.get_token(SCOPE)
    except azure_exceptions.ClientAuthenticationError as exc:
        raise _entra_failure(exc, tenant_id, client_id) from None
    except azure_exceptions.AzureError as exc:
        # e.g. DecodeError: the authority did not answer as Entra does
        status = getattr(getattr(exc, "response", None), "status_code", None)
        raise CheckFailure(
            "error",
            f"the Entra ID authority at {authority} answered"
            + (f" {status}" if status is not None else "")
            + " with something that is not a token response; is the base URL (the authority) "
            "right?",
            fields=["base_url"],
        ) from None
    finally:
        await credential.close()
    return str(token.token)


def _entra_failure(exc: Exception, tenant_id: str, client_id: str) -> CheckFailure:
    """Map an Entra ID refusal (``AADSTS`` codes) to the result vocabulary."""
    text = str(getattr(exc, "message", None) or exc)
    codes = {int(c) for c in _AADSTS.findall(text)}
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    error = ""
    try:
        body = response.json() if response is not None else None
    except Exception:  # noqa: BLE001 - any body that is not JSON
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        error = body["error"]
    aadsts = f"AADSTS{min(codes)}" if codes else (error or f"HTTP {status}")
    detail = {"entra_error": aadsts}
    secrets_page = "App registrations → your app → Certificates & secrets"
    if 7000222 in codes:
        return CheckFailure(
            "invalid_credentials",
            f"Microsoft Entra ID says the client secret has expired ({aadsts}); create a new "
            f"secret in {secrets_page} and paste its Value",
            fields=["client_secret"],
            detail=detail,
        )
    if 7000215 in codes:
        return CheckFailure(
            "invalid_credentials",
            f"Microsoft Entra ID rejected the client secret ({aadsts}); paste the secret's "
            f"Value — not its Secret ID — from {secrets_page}, or create a new one",
            fields=["client_secret"],
            detail=detail,
        )
    if 700016 in codes:
        return CheckFailure(
            "invalid_credentials",
            f"Microsoft Entra ID has no application with this Client (application) ID in tenant "
            f"{tenant_id} ({aadsts}); copy the 'Application (client) ID' from App registrations "
            "→ your app → Overview, and check that the Tenant ID is the tenant the app is "
            "registered in",
            fields=["client_id"],
            detail=detail,
        )
    if codes & {90002, 900023, 90013}:
        return CheckFailure(
            "invalid_credentials",
            f"Microsoft Entra ID does not know the tenant {tenant_id} ({aadsts}); paste the "
            "'Tenant ID' from Azure portal → Microsoft Entra ID → Overview",
            fields=["tenant_id"],
            detail=detail,
        )
    if codes & {7000112, 700024}:
        return CheckFailure(
            "invalid_credentials",
            f"the app registration {client_id} is disabled in tenant {tenant_id} ({aadsts}); "
            "enable it in Microsoft Entra ID → Enterprise applications",
            fields=["client_id"],
            detail=detail,
        )
    if 53003 in codes:
        return CheckFailure(
            "permission_denied",
            f"a Conditional Access policy of tenant {tenant_id} blocks this app's sign-in "
            f"({aadsts}); ask your Entra ID administrator to allow it",
            fields=["client_id"],
            detail=detail,
        )
    if not codes and (status in (404, 405) or not error):
        return CheckFailure(
            "misconfigured",
            f"the address given as Entra ID authority answered {status} to the token request "
            "and is not an Entra ID authority; set the base URL to "
            "https://login.microsoftonline.com (or your cloud's authority) or leave it empty",
            fields=["base_url"],
        )
    if status == 429:
        return CheckFailure("rate_limited", "Microsoft Entra ID is rate-limiting sign-ins (429)")
    if status is not None and status >= 500:
        return CheckFailure(
            "unreachable",
            f"Microsoft Entra ID is unavailable right now ({status}, {aadsts}); try again later",
            detail=detail,
        )
    if error in ("invalid_client", "unauthorized_client"):
        return CheckFailure(
            "invalid_credentials",
            f"Microsoft Entra ID refused the app's credentials ({aadsts}); check the Client ID "
            "and the client secret",
            fields=["client_id", "client_secret"],
            detail=detail,
        )
    return CheckFailure(
        "error",
        f"Microsoft Entra ID refused the token request ({aadsts}); look the code up at "
        "https://login.microsoftonline.com/error",
        detail=detail,
    )
