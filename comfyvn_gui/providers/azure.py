"""Azure: an Entra ID app registration's token, its subscription, and GPU quota in a region.

What is sent (PROVIDERS.md; Microsoft's REST references):

* token — azure-identity's ``ClientSecretCredential`` (the asyncio one, ``azure.identity.aio``)
  for the scope ``https://management.azure.com/.default``: one
  ``POST {authority}/{tenant_id}/oauth2/v2.0/token`` with the form fields ``client_id``,
  ``client_secret``, ``grant_type=client_credentials`` and ``scope``. The credential's HTTP goes
  through the check's httpx client (:func:`_transport_class`, passed as azure-core's
  ``transport``; azure-core retries off), so the token request has the same deadline (httpx
  timeouts cut to what is left), proxy settings, trust store and ``network.ca_bundle`` as every
  other request of the app, and it holds no executor thread: a black-holed authority costs the
  check its deadline and nothing else, and never starves the Azure lane of the executor.
* subscription — ``GET {management}/subscriptions/{subscription_id}?api-version=2022-12-01``
  with ``Authorization: Bearer TOKEN``: ``displayName``, ``state`` (Enabled, Warned, PastDue,
  Disabled, Deleted), ``tenantId`` and ``subscriptionPolicies``.
* quota — ``GET {management}/subscriptions/{subscription_id}/providers/Microsoft.Compute/
  locations/{region}/usages?api-version=2023-07-01`` -> ``value[]`` of ``{"name": {"value",
  "localizedValue"}, "currentValue", "limit", "unit"}`` (``nextLink`` followed), for the
  configured region and every region in ``meta.allowed_regions``.

Which quotas: ``meta.quota_ids`` (usage names such as ``standardNCASv3_T4Family`` or
``cores``) when the provider's metadata lists them — the seed's "populate metadata with allowed
regions and quota IDs" — else the vCPU quota of the configured VM size's family
(:data:`FAMILIES`) and the region's total vCPUs (``cores``). One VM needs as many vCPUs of
each vCPU quota as its size has (the number in its name: Standard_NC4as_T4_v3 has 4) and one
unit of any other quota.

How answers read:

* Entra errors (``ClientAuthenticationError``; the ``AADSTS`` code in its message):
  7000215 wrong secret and 7000222 expired secret -> ``invalid_credentials`` naming
  ``client_secret``; 700016 no such application in the tenant -> ``invalid_credentials`` naming
  ``client_id``; 90002 / 900023 no such tenant -> ``invalid_credentials`` naming ``tenant_id``;
  7000112 application disabled -> ``invalid_credentials`` naming ``client_id``; 53003 blocked by
  Conditional Access -> ``permission_denied``; 429 -> ``rate_limited``; 5xx -> ``unreachable``.
* the subscription: ``Enabled`` -> valid, identity ``displayName (subscriptionId)``; ``Warned``
  and ``PastDue`` -> valid (resources still run) with a warning, health ``degraded`` with code
  ``quota_exhausted`` (a billing problem, as Vast.ai's empty credit);
  ``Disabled`` -> ``permission_denied``, ``Deleted`` -> ``misconfigured``, both naming
  ``subscription_id``; 403 (no role for the app) -> ``permission_denied``; 404 -> ``misconfigured``
  naming ``subscription_id``; 401 ``InvalidAuthenticationTokenTenant`` (the subscription is in
  another tenant) -> ``misconfigured`` naming ``tenant_id`` and ``subscription_id``.
* quota: the configured region without room for one VM -> validation still ``valid`` (the
  credentials work) with a warning and the numbers in ``detail["quota"]``; health ``unhealthy``
  with code ``quota_exhausted``, so the advisor skips the provider. A region outside
  ``meta.allowed_regions`` -> health ``unhealthy`` / ``misconfigured`` naming ``region``.
  Quota that cannot be read -> health ``degraded`` (``permission_denied`` when refused).

Never ambient credentials: the credential is built from the stored ``tenant_id``,
``client_id`` and ``client_secret`` and an explicit ``authority`` (so ``AZURE_AUTHORITY_HOST``
is not read); the asyncio credential does not use MSAL, so neither MSAL's region variables
(``AZURE_REGIONAL_AUTHORITY_NAME``, ``MSAL_FORCE_REGION``, ``REGION_NAME``) nor instance
metadata (IMDS) region discovery nor authority instance discovery can redirect or add a
request (``disable_instance_discovery`` therefore has nothing to disable). The environment
credential, managed identity, the Azure CLI and the default credential chain are never used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from .base import CheckContext, CheckFailure, HttpClient, Outcome

if TYPE_CHECKING:
    import httpx

SCOPE = "https://management.azure.com/.default"
SUBSCRIPTION_API_VERSION = "2022-12-01"
USAGES_API_VERSION = "2023-07-01"

#: VM size (without ``Standard_``) -> the usage name of its family's vCPU quota. Azure spells
#: these names with varying case (``standardNCASv3_T4Family`` in usages,
#: ``StandardNCASv3_T4Family`` in the SKU list), so they are compared case-insensitively.
#: Sizes not listed here: set ``meta.quota_ids``; only the regional vCPU total is checked.
FAMILIES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), family)
    for pattern, family in (
        (r"NC\d+as_T4_v3", "standardNCASv3_T4Family"),  # NVIDIA T4 (the seed's NC4as_T4_v3)
        (r"NV\d+ads_A10_v5", "StandardNVADSA10v5Family"),  # NVIDIA A10
        (r"NC\d+ads_A100_v4", "StandardNCADSA100v4Family"),  # NVIDIA A100 80 GB
        (r"NC\d+ads_H100_v5", "StandardNCadsH100v5Family"),  # NVIDIA H100 NVL
        (r"NC\d+s_v3", "standardNCSv3Family"),  # NVIDIA V100
        (r"ND\d+asr_v4", "StandardNDASv4_A100Family"),  # 8x A100 40 GB
        (r"ND\d+amsr_A100_v4", "StandardNDAMSv4_A100Family"),  # 8x A100 80 GB
    )
)
#: The usage name of a region's total vCPUs (all families together).
REGIONAL_VCPUS = "cores"
#: Pages of a usage list followed at most (a region lists about 100 quotas on one page).
MAX_USAGE_PAGES = 5
#: Allowed regions whose quota is read at most.
MAX_REGIONS = 12
#: Seconds before the check's deadline at which its HTTP requests time out themselves.
HTTP_MARGIN_S = 0.25

_REGION = re.compile(r"[a-z0-9]+")
_VCPUS = re.compile(r"^Standard_[A-Za-z]+?(\d+)")
_AADSTS = re.compile(r"AADSTS(\d+)")

# azure-identity logs every failed get_token as a WARNING with Entra's error body; the check
# reports the failure itself (in words), so those records would only repeat it on stderr and in
# gui.log. Keep an explicit level if someone set one.
if logging.getLogger("azure.identity").level == logging.NOTSET:
    logging.getLogger("azure.identity").setLevel(logging.ERROR)


class AzureAdapter:
    """Validation and health of an Azure app registration and its subscription."""

    async def validate(self, ctx: CheckContext) -> Outcome:
        detail, quota = await _check(ctx)
        sub = detail["subscription_name"] or detail["subscription_id"]
        msg = f"Azure accepted the app registration: subscription {sub} is {detail['state']}"
        warning = _state_warning(detail)
        if warning:
            msg += f": {warning}"
        if quota.problem:
            msg += f"; but {quota.problem}"
        elif quota.summary:
            msg += f"; {quota.summary}"
        return Outcome(msg, detail=detail)

    async def health(self, ctx: CheckContext) -> Outcome:
        detail, quota = await _check(ctx)
        sub = detail["subscription_name"] or detail["subscription_id"]
        if quota.problem:
            return Outcome(
                f"Azure: {quota.problem}",
                detail=detail,
                health=quota.health,
                code=quota.code,
            )
        warning = _state_warning(detail)
        if warning:
            return Outcome(
                f"Azure: subscription {sub} is {detail['state']}: {warning}",
                detail=detail,
                health="degraded",
                code="quota_exhausted",
            )
        msg = f"Azure answers for subscription {sub}"
        if quota.summary:
            msg += f"; {quota.summary}"
        return Outcome(msg, detail=detail)


# -- the token ---------------------------------------------------------------------------


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
    from azure.core.pipeline.transport import AsyncHttpResponse, AsyncHttpTransport
    from azure.core.utils import case_insensitive_dict

    # Every answer goes back to azure-identity to parse, except those the framework retries.
    answered = tuple(s for s in range(100, 600) if s not in (429, 503))

    class Response(AsyncHttpResponse):
        """The parts of a response azure-identity reads, from an httpx response."""

        def __init__(self, request: Any, resp: httpx.Response) -> None:
            super().__init__(request, resp)
            self.status_code = resp.status_code
            self.headers = case_insensitive_dict(resp.headers)
            self.reason = resp.reason_phrase
            self.content_type = resp.headers.get("content-type")
            self._body = resp.content

        def body(self) -> bytes:
            return self._body

        def stream_download(self, pipeline: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("a token response is never streamed")

    class Transport(AsyncHttpTransport[Any, Any]):
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
    from azure.core.exceptions import AzureError, ClientAuthenticationError
    from azure.identity.aio import ClientSecretCredential

    authority = _endpoint(ctx, "authority")
    if urlsplit(authority).scheme != "https":  # checked before any secret is sent
        raise CheckFailure(
            "misconfigured",
            f"Azure: the Entra ID authority must be an https:// address (it is {authority}); "
            "set the base URL to https://login.microsoftonline.com or leave it empty",
            fields=["base_url"],
        )
    try:
        credential = ClientSecretCredential(
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
    except ClientAuthenticationError as exc:
        raise _entra_failure(exc, tenant_id, client_id) from None
    except AzureError as exc:  # e.g. DecodeError: the authority did not answer as Entra does
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


# -- the subscription --------------------------------------------------------------------


def _endpoint(ctx: CheckContext, name: str) -> str:
    url = ctx.endpoint(name)
    if url is None:
        raise CheckFailure(
            "misconfigured",
            f"Azure: the {name} address is not set; remove the override in config.endpoints",
            fields=["base_url" if name == ctx.profile.primary_endpoint else "endpoints"],
        )
    return url


def _arm_error(resp: httpx.Response) -> tuple[str, str]:
    try:
        body = resp.json()
    except ValueError:
        return "", ""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return "", ""
    return str(err.get("code") or ""), str(err.get("message") or "")


async def _subscription(
    ctx: CheckContext, http: HttpClient, token: str, sub_id: str, client_id: str
) -> dict[str, Any]:
    url = f"{_endpoint(ctx, 'management')}/subscriptions/{quote(sub_id, safe='')}"
    resp = await http.get(
        url,
        params={"api-version": SUBSCRIPTION_API_VERSION},
        headers={"Authorization": f"Bearer {token}"},
        ok=(200, 401, 403, 404),
    )
    code, _ = _arm_error(resp)
    if resp.status_code == 401:
        if code == "InvalidAuthenticationTokenTenant":
            raise CheckFailure(
                "misconfigured",
                f"Azure: subscription {sub_id} belongs to another tenant than {_tenant(ctx)}; "
                "set the Tenant ID of the subscription's directory (Azure portal → "
                "Subscriptions → the subscription → Parent management group / Directory)",
                fields=["tenant_id", "subscription_id"],
                detail={"arm_error": code},
            )
        raise CheckFailure(
            "invalid_credentials",
            f"Azure Resource Manager refused the app's token ({code or '401'}); check the "
            "Tenant ID, Client ID and client secret",
            fields=["tenant_id", "client_id", "client_secret"],
            detail={"arm_error": code} if code else {},
        )
    if resp.status_code == 403:
        raise CheckFailure(
            "permission_denied",
            f"Azure: the app {client_id} has no role on subscription {sub_id} "
            f"({code or '403'}); in Azure portal → Subscriptions → the subscription → Access "
            "control (IAM), give the app a role such as Virtual Machine Contributor",
            fields=["subscription_id"],
            detail={"arm_error": code} if code else {},
        )
    if resp.status_code == 404:
        raise CheckFailure(
            "misconfigured",
            f"Azure: no subscription {sub_id} is visible to the app ({code or '404'}); check "
            "the Subscription ID (Azure portal → Subscriptions) and that the app has a role "
            "on it",
            fields=["subscription_id"],
            detail={"arm_error": code} if code else {},
        )
    body = http.json(resp)
    if not isinstance(body, dict) or not isinstance(body.get("state"), str):
        raise CheckFailure(
            "error",
            "Azure Resource Manager answered without the subscription's state; is the "
            "management address https://management.azure.com?",
            fields=["endpoints"],
        )
    policies = body.get("subscriptionPolicies")
    policies = policies if isinstance(policies, dict) else {}
    name = body.get("displayName") if isinstance(body.get("displayName"), str) else None
    real_id = str(body.get("subscriptionId") or sub_id)
    tenant = body.get("tenantId") if isinstance(body.get("tenantId"), str) else _tenant(ctx)
    return {
        "identity": f"{name} ({real_id})" if name else real_id,
        "subscription_id": real_id,
        "subscription_name": name,
        "state": body["state"],
        "tenant_id": tenant,
        "client_id": client_id,
        "offer": policies.get("quotaId"),
        "spending_limit": policies.get("spendingLimit"),
    }


def _tenant(ctx: CheckContext) -> str:
    return ctx.value("tenant_id") or "?"


def _check_state(detail: dict[str, Any]) -> None:
    state = detail["state"]
    sub = detail["identity"]
    fix = "Azure portal → Subscriptions"
    if state in ("Enabled", "Warned", "PastDue"):
        return
    if state == "Disabled":
        raise CheckFailure(
            "permission_denied",
            f"Azure subscription {sub} is disabled: no VM can be created in it. Re-enable it in "
            f"{fix} (for example add a payment method or remove the spending limit), or enter "
            "the ID of an active subscription",
            fields=["subscription_id"],
            detail=detail,
        )
    if state == "Deleted":
        raise CheckFailure(
            "misconfigured",
            f"Azure subscription {sub} has been deleted; enter the ID of an active subscription "
            f"from {fix}",
            fields=["subscription_id"],
            detail=detail,
        )
    raise CheckFailure(
        "permission_denied",
        f"Azure subscription {sub} is in state {state!r}, not Enabled; check it in {fix}",
        fields=["subscription_id"],
        detail=detail,
    )


def _state_warning(detail: dict[str, Any]) -> str | None:
    """What a Warned or PastDue subscription means, in a creator's words."""
    state = detail["state"]
    if state == "PastDue":
        return (
            "a payment is past due, and Azure will disable the subscription if the bill is not "
            "paid (Azure portal → Cost Management + Billing)"
        )
    if state == "Warned":
        return (
            "Azure will soon disable the subscription unless the warning is resolved (Azure "
            "portal → Subscriptions)"
        )
    return None


# -- quota -------------------------------------------------------------------------------


@dataclass
class _Quota:
    """What the usage lists say, read as a user would."""

    health: str = "healthy"
    code: str | None = None
    problem: str | None = None
    summary: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def vcpus_of(vm_size: str) -> int | None:
    """The vCPUs of a VM size, from its name (Standard_NC4as_T4_v3 -> 4)."""
    m = _VCPUS.match(vm_size)
    return int(m.group(1)) if m else None


def family_of(vm_size: str) -> str | None:
    """The usage name of the vCPU quota of a VM size's family, where it is known."""
    name = vm_size.removeprefix("Standard_")
    for pattern, family in FAMILIES:
        if pattern.fullmatch(name):
            return family
    return None


def _key(name: str) -> str:
    return name.replace(" ", "").lower()


def _is_vcpu_quota(name: str) -> bool:
    key = _key(name)
    return key in ("cores", "lowprioritycores") or key.endswith("family")


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, list | tuple):
        return []
    return [v for v in value if isinstance(v, str) and v]


async def _usages(
    ctx: CheckContext, http: HttpClient, token: str, sub_id: str, region: str
) -> dict[str, dict[str, Any]] | str:
    """The region's usages by lower-cased name, or why they could not be read."""
    url: str | None = (
        f"{_endpoint(ctx, 'management')}/subscriptions/{quote(sub_id, safe='')}/providers/"
        f"Microsoft.Compute/locations/{region}/usages"
    )
    params: dict[str, str] | None = {"api-version": USAGES_API_VERSION}
    out: dict[str, dict[str, Any]] = {}
    pages = 0
    while url and pages < MAX_USAGE_PAGES:
        pages += 1
        resp = await http.get(
            url,
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            ok=(200, 400, 403, 404),
        )
        if resp.status_code != 200:
            code, _ = _arm_error(resp)
            if resp.status_code == 403:
                return f"the app may not read quota ({code or '403'})"
            return f"Azure could not list quota in {region} ({code or resp.status_code})"
        body = http.json(resp)
        items = body.get("value") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return f"the quota list of {region} came back in an unexpected form"
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), dict):
                continue
            name = item["name"].get("value")
            current, limit = _int(item.get("currentValue")), _int(item.get("limit"))
            if not isinstance(name, str) or current is None or limit is None:
                continue
            out[_key(name)] = {
                "id": name,
                "name": item["name"].get("localizedValue") or name,
                "current": current,
                "limit": limit,
            }
        next_link = body.get("nextLink")
        if isinstance(next_link, str) and not _same_origin(next_link, url):
            break  # never send the token to another host
        url, params = (
            (next_link, None) if isinstance(next_link, str) and next_link else (None, None)
        )
    return out


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc) == (pb.scheme, pb.netloc)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


async def _quota(ctx: CheckContext, http: HttpClient, token: str, sub_id: str) -> _Quota:
    region = ctx.value("region") or ctx.profile.field("region").default or ""
    vm_size = ctx.value("vm_size") or ctx.profile.field("vm_size").default or ""
    meta = ctx.provider.meta or {}
    allowed = [r.lower() for r in _string_list(meta.get("allowed_regions"))]
    allowed = [r for r in dict.fromkeys(allowed) if _REGION.fullmatch(r)][:MAX_REGIONS]
    vcpus = vcpus_of(vm_size)
    family = family_of(vm_size)
    quota_ids = _string_list(meta.get("quota_ids"))
    notes: list[str] = []
    if not quota_ids:
        quota_ids = [q for q in (family, REGIONAL_VCPUS) if q]
        if family is None:
            notes.append(
                f"the quota family of {vm_size} is not known to this version: only the "
                "regional vCPU total was checked; list the family's quota name in the "
                "provider's meta.quota_ids"
            )
    quota_ids = list(dict.fromkeys(quota_ids))
    regions = list(dict.fromkeys([region, *allowed]))
    result = _Quota()
    result.detail = {
        "region": region,
        "vm_size": vm_size,
        "vcpus_per_vm": vcpus,
        "quota_ids": quota_ids,
        "allowed_regions": allowed,
        "regions": {},
        "notes": notes,
    }
    if not _REGION.fullmatch(region):
        result.health, result.code = "unhealthy", "misconfigured"
        result.problem = f"the region {region!r} is not an Azure region name (e.g. westeurope)"
        return result
    lists = await asyncio.gather(*(_usages(ctx, http, token, sub_id, r) for r in regions))
    per_region: dict[str, dict[str, Any]] = {}
    for name, usages in zip(regions, lists, strict=True):
        per_region[name] = _room(usages, quota_ids, vcpus or 1)
    result.detail["regions"] = per_region
    with_room = [r for r in regions if per_region[r].get("room") is True]
    result.detail["regions_with_room"] = with_room
    here = per_region[region]
    vm = f"{vm_size} ({vcpus} vCPUs)" if vcpus else vm_size
    if allowed and region not in allowed:
        result.health, result.code = "unhealthy", "misconfigured"
        result.problem = (
            f"the region {region} is not one of the provider's allowed regions "
            f"({', '.join(allowed)}); choose an allowed region"
        )
        return result
    if here.get("room") is None:
        result.health, result.code = (
            "degraded",
            ("permission_denied" if "may not read" in here["error"] else "error"),
        )
        result.problem = f"could not check quota in {region}: {here['error']}"
        return result
    if not here["room"]:
        others = [r for r in with_room if r != region]
        result.health, result.code = "unhealthy", "quota_exhausted"
        result.problem = (
            f"no quota left for one {vm} in {region}: {here['reason']}. Request a quota "
            "increase in Azure portal → Subscriptions → Usage + quotas"
            + (f", or switch the region to {', '.join(others)}, which has room" if others else "")
        )
        return result
    result.summary = f"quota for {here['vms']} more {vm} in {region}"
    return result


def _room(
    usages: dict[str, dict[str, Any]] | str, quota_ids: list[str], vcpus: int
) -> dict[str, Any]:
    """Whether one VM fits in a region's quotas, with the numbers."""
    if isinstance(usages, str):
        return {"room": None, "error": usages}
    rows: list[dict[str, Any]] = []
    missing: list[str] = []
    reasons: list[str] = []
    vms: int | None = None
    for qid in quota_ids:
        u = usages.get(_key(qid))
        if u is None:
            missing.append(qid)
            reasons.append(f"{qid} is not offered there")
            continue
        need = vcpus if _is_vcpu_quota(qid) else 1
        free = max(0, u["limit"] - u["current"])
        rows.append({**u, "free": free, "need": need})
        fits = free // need
        vms = fits if vms is None else min(vms, fits)
        if free < need:
            reasons.append(
                f"{u['name']}: {u['current']} of {u['limit']} in use, one VM needs {need}"
            )
    room = not reasons and bool(rows)
    return {
        "room": room,
        "vms": vms or 0,
        "usages": rows,
        "missing": missing,
        "reason": "; ".join(reasons) if reasons else "",
    }


# -- the whole check ---------------------------------------------------------------------


async def _check(ctx: CheckContext) -> tuple[dict[str, Any], _Quota]:
    tenant_id, client_id, secret, sub_id = ctx.require(
        "tenant_id", "client_id", "client_secret", "subscription_id"
    )
    # Requests end HTTP_MARGIN_S before the check's deadline, so that httpx's own timeout —
    # which closes a half-done TLS handshake — fires rather than the check's cancellation,
    # which on Python 3.11 leaves the handshake's socket open (an unclosed-transport leak).
    io = dataclasses.replace(ctx, deadline=ctx.deadline - HTTP_MARGIN_S)
    async with (
        io.http(auth_fields=["client_id", "client_secret"]) as entra,
        io.http(auth_fields=["client_id", "client_secret"], address_field="endpoints") as arm,
    ):
        token = await _token(ctx, entra, tenant_id, client_id, secret)
        detail = await _subscription(ctx, arm, token, sub_id, client_id)
        _check_state(detail)
        quota = await _quota(ctx, arm, token, detail["subscription_id"])
    detail["quota"] = quota.detail
    return detail, quota


ADAPTER = AzureAdapter()
