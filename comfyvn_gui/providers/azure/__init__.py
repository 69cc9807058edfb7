"""Azure: an Entra ID app registration's token, its subscription, and GPU quota in a region.

What is sent (docs/providers.md; Microsoft's REST references):

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

* launch permission (validate only, when the ``resource_group`` option is set) — ``GET
  {management}/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/
  Microsoft.Authorization/permissions?api-version=2022-04-01``: the app's role must allow
  writing and deleting VMs, NICs, public IPs, security groups, virtual networks and DevTestLab
  schedules there (and joining subnets, IPs and security groups, deleting disks) — what a
  dispatch does (:mod:`.permissions`); missing actions -> ``permission_denied`` listing them,
  naming ``resource_group``; a resource group that does not exist -> ``misconfigured`` naming
  ``resource_group``. Without ``resource_group`` validation passes and says dispatch needs it.

Layout: :mod:`.token` (the Entra ID token, through the check's HTTP client),
:mod:`.subscription` (Azure Resource Manager addresses, errors and the subscription's state),
:mod:`.quota` (the usage lists, read as room for one VM), :mod:`.permissions` (the launch
permission), :mod:`.machines` (dispatch: one VM per job); this module holds the adapter.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from comfyvn_gui.providers.base import CheckContext, Outcome
from comfyvn_gui.providers.registry import register

from .permissions import _launch_permissions
from .quota import FAMILIES, REGIONAL_VCPUS, _Quota, _quota, family_of, vcpus_of
from .subscription import _check_state, _state_warning, _subscription
from .token import SCOPE, _token

__all__ = ["FAMILIES", "REGIONAL_VCPUS", "SCOPE", "AzureAdapter", "family_of", "vcpus_of"]

#: Seconds before the check's deadline at which its HTTP requests time out themselves.
HTTP_MARGIN_S = 0.25


@register("azure")
class AzureAdapter:
    """Validation and health of an Azure app registration and its subscription."""

    async def validate(self, ctx: CheckContext) -> Outcome:
        detail, quota = await _check(ctx, launch=True)
        sub = detail["subscription_name"] or detail["subscription_id"]
        msg = f"Azure accepted the app registration: subscription {sub} is {detail['state']}"
        warning = _state_warning(detail)
        if warning:
            msg += f": {warning}"
        if quota.problem:
            msg += f"; but {quota.problem}"
        elif quota.summary:
            msg += f"; {quota.summary}"
        rg = detail.get("launch", {}).get("resource_group")
        if rg:
            msg += f"; its role may create and delete VMs in resource group {rg}"
        else:
            msg += "; dispatch needs resource_group (the resource group VMs are created in)"
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


async def _check(ctx: CheckContext, *, launch: bool = False) -> tuple[dict[str, Any], _Quota]:
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
        rg = (ctx.value("resource_group") or "").strip()
        if launch and rg:
            detail["launch"] = await _launch_permissions(
                ctx, arm, token, detail["subscription_id"], rg
            )
    detail["quota"] = quota.detail
    return detail, quota
