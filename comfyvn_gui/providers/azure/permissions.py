"""Whether the app's role lets it create (and delete) a job's VM in the resource group: the
permissions API, read as Azure evaluates it.

``GET {management}/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Authorization/
permissions?api-version=2022-04-01`` -> ``{"value": [{"actions", "notActions", "dataActions",
"notDataActions"}]}``: one entry per role the app holds there (inherited ones included). An
action is allowed when some entry's ``actions`` match it and that entry's ``notActions`` do not
(``*`` matches any characters, case-insensitively). Deny assignments are not in this answer, so
a deny assignment can still refuse a launch that passes here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from comfyvn_gui.providers.base import CheckContext, CheckFailure

from .subscription import _arm_error, _endpoint

if TYPE_CHECKING:
    from comfyvn_gui.providers.http_client import HttpClient

PERMISSIONS_API_VERSION = "2022-04-01"

#: What a launch and its release do in the resource group (machines.py). The ``join`` actions
#: are checked by ARM when the NIC links the subnet, public IP and security group.
REQUIRED_ACTIONS: tuple[str, ...] = (
    "Microsoft.Compute/virtualMachines/write",
    "Microsoft.Compute/virtualMachines/delete",
    "Microsoft.Network/networkInterfaces/write",
    "Microsoft.Network/networkInterfaces/delete",
    "Microsoft.Network/publicIPAddresses/write",
    "Microsoft.Network/publicIPAddresses/delete",
    "Microsoft.Network/networkSecurityGroups/write",
    "Microsoft.Network/networkSecurityGroups/delete",
    "Microsoft.Network/virtualNetworks/write",
    "Microsoft.Network/virtualNetworks/delete",
    "Microsoft.DevTestLab/schedules/write",
    "Microsoft.DevTestLab/schedules/delete",
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    "Microsoft.Network/publicIPAddresses/join/action",
    "Microsoft.Network/networkSecurityGroups/join/action",
    "Microsoft.Compute/disks/delete",
)


def _matches(pattern: str, action: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, action, re.IGNORECASE) is not None


def allowed(permissions: list[dict[str, Any]], action: str) -> bool:
    """Whether ``action`` is allowed by a permissions answer (see the module's text)."""
    for entry in permissions:
        if not isinstance(entry, dict):
            continue
        actions = [a for a in entry.get("actions") or [] if isinstance(a, str)]
        denied = [n for n in entry.get("notActions") or [] if isinstance(n, str)]
        if any(_matches(a, action) for a in actions) and not any(
            _matches(n, action) for n in denied
        ):
            return True
    return False


def missing_actions(permissions: list[dict[str, Any]]) -> list[str]:
    return [a for a in REQUIRED_ACTIONS if not allowed(permissions, a)]


async def _launch_permissions(
    ctx: CheckContext, http: HttpClient, token: str, sub_id: str, rg: str
) -> dict[str, Any]:
    """The app may create and delete a job's VM in ``rg``, or the failure saying what not."""
    url = (
        f"{_endpoint(ctx, 'management')}/subscriptions/{quote(sub_id, safe='')}/resourceGroups/"
        f"{quote(rg, safe='')}/providers/Microsoft.Authorization/permissions"
    )
    resp = await http.get(
        url,
        params={"api-version": PERMISSIONS_API_VERSION},
        headers={"Authorization": f"Bearer {token}"},
        ok=(200, 403, 404),
    )
    code, _ = _arm_error(resp)
    if resp.status_code == 404:
        raise CheckFailure(
            "misconfigured",
            f"Azure: the resource group {rg} does not exist in subscription {sub_id} "
            f"({code or '404'}); create it, or correct the resource group option",
            fields=["resource_group"],
            detail={"arm_error": code} if code else {},
        )
    if resp.status_code == 403:
        raise CheckFailure(
            "permission_denied",
            f"Azure: the app may not read its permissions on resource group {rg} "
            f"({code or '403'}); give it a role on the group, such as Contributor",
            fields=["resource_group"],
            detail={"arm_error": code} if code else {},
        )
    body = http.json(resp)
    entries = body.get("value") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise CheckFailure(
            "error",
            "Azure answered the permissions request without a list of permissions; is the "
            "management address right?",
            fields=["endpoints"],
        )
    missing = missing_actions(entries)
    if missing:
        raise CheckFailure(
            "permission_denied",
            f"Azure: the app's role on resource group {rg} does not allow "
            f"{', '.join(missing)}, which dispatch needs to create and delete a job's VM; give "
            "the app the Contributor role on the group (Azure portal → Resource groups → the "
            "group → Access control (IAM)), or Virtual Machine Contributor with Network "
            "Contributor",
            fields=["resource_group"],
            detail={"missing_actions": missing, "resource_group": rg},
        )
    return {"resource_group": rg, "launch_actions": len(REQUIRED_ACTIONS)}
