"""Azure Resource Manager: its addresses and error bodies, and the subscription — whether the
app may see it, and what its state means for launching VMs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from comfyvn_gui.providers.base import CheckContext, CheckFailure

if TYPE_CHECKING:
    import httpx

    from comfyvn_gui.providers.http_client import HttpClient

SUBSCRIPTION_API_VERSION = "2022-12-01"


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
            "control (IAM), give the app Reader there, and Contributor on the resource group "
            "jobs use",
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
