"""A Microsoft Entra ID authority and an Azure Resource Manager endpoint, both over HTTPS.

Adapted from /work/shared/recipes/azure_identity (fake_entra.py); the certificates come from a
trustme CA whose PEM file (:attr:`AzureFake.ca_file`) the app must be told to trust
(``network.ca_bundle``) — nothing else on the machine trusts it.

Entra ID (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` -> the endpoints (MSAL reads it;
  azure-identity's asyncio credential does not); an unknown tenant -> 400 ``invalid_tenant``
  AADSTS90002.
* ``POST /{tenant}/oauth2/v2.0/token`` (form: ``grant_type=client_credentials``,
  ``client_id``, ``client_secret``, ``scope``), checked in Entra's order: unknown tenant ->
  400 ``invalid_request`` AADSTS90002; unknown application in the tenant -> 400
  ``unauthorized_client`` AADSTS700016; wrong secret -> 401 ``invalid_client`` AADSTS7000215;
  expired secret -> 401 ``invalid_client`` AADSTS7000222; another scope -> 400
  ``invalid_scope`` AADSTS70011; otherwise 200 ``{"token_type": "Bearer", "expires_in",
  "ext_expires_in", "access_token"}`` with a fresh opaque token. Error bodies carry
  ``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id`` and ``error_uri`` as
  Entra's do.

Resource Manager (``{"error": {"code", "message"}}`` for every error, as ARM writes them):

* every request needs ``Authorization: Bearer`` with a token this authority issued (else 401
  ``AuthenticationFailed`` / ``InvalidAuthenticationToken``) and the documented
  ``api-version`` (else 400 ``MissingApiVersionParameter`` / ``InvalidApiVersionParameter``);
* ``GET /subscriptions/{id}?api-version=2022-12-01`` -> the subscription; unknown -> 404
  ``SubscriptionNotFound``; a token of another tenant -> 401
  ``InvalidAuthenticationTokenTenant``; an app without a role on it -> 403
  ``AuthorizationFailed``;
* ``GET /subscriptions/{id}/providers/Microsoft.Compute/locations/{region}/usages
  ?api-version=2023-07-01`` -> ``{"value": [{"unit": "Count", "currentValue", "limit",
  "name": {"value", "localizedValue"}}]}`` (in pages linked by ``nextLink`` when
  :attr:`AzureFake.usage_page_size` is set); a region it does not serve -> 400
  ``NoRegisteredProviderFound``; an app that may not read quota -> 403.

Resource groups (:attr:`AzureFake.resource_groups`; another one -> 404
``ResourceGroupNotFound``), each request checked against the app's role
(:attr:`AzureFake.permissions`: ``actions`` minus ``notActions`` with ``*`` wildcards; a write
or delete it does not allow -> 403 ``AuthorizationFailed`` naming the action):

* ``GET .../resourceGroups/{rg}/providers/Microsoft.Authorization/permissions
  ?api-version=2022-04-01`` -> ``{"value": [{"actions", "notActions", "dataActions",
  "notDataActions"}]}``;
* ``GET .../resourceGroups/{rg}/resources?api-version=2021-04-01&$filter=tagName eq 'N' and
  tagValue eq 'V'`` (``$expand=createdTime`` adds ``createdTime``) -> ``{"value": [{"id",
  "name", "type", "location", "tags"}]}``;
* ``PUT / GET / DELETE .../resourceGroups/{rg}/providers/{type}/{name}`` for
  ``Microsoft.Network/networkSecurityGroups``, ``virtualNetworks``, ``publicIPAddresses``,
  ``networkInterfaces`` (api 2024-05-01), ``Microsoft.Compute/virtualMachines``, ``disks``
  (2024-07-01) and ``Microsoft.DevTestLab/schedules`` (2018-09-15). A PUT needs a JSON body
  with ``location`` (a region the fake serves) and the properties Azure requires for the type
  (security rules with protocol, access, direction, priority 100-4096 and address prefixes; an
  address space and subnets inside it; Standard IPs Static; an IP configuration whose subnet and
  public IP exist; a VM's size, image, ``adminUsername``, base64 ``customData``, SSH keys at
  ``/home/<user>/.ssh/authorized_keys`` when passwords are disabled, an existing NIC; a schedule
  named ``shutdown-computevm-<vm>`` of ``taskType`` ComputeVmShutdownTask, a ``HHmm`` daily
  time, a ``timeZoneId`` and an existing VM as ``targetResourceId``), else 400
  ``InvalidParameter`` / ``InvalidRequestFormat`` / ``InvalidResourceReference`` /
  ``LocationRequired``. Network resources and schedules are created at once (201,
  ``provisioningState`` Succeeded). A VM's create answers 201 ``Creating`` with an
  ``Azure-AsyncOperation`` URL (``/subscriptions/{s}/providers/Microsoft.Compute/locations/
  {region}/operations/{id}``) that answers ``InProgress`` once, then ``Succeeded`` — when the
  VM "boots": ``hosts.boot(<vm name>, <decoded customData>)`` — or ``Failed`` with the error
  :attr:`AzureFake.fail_put` holds for ``virtualMachines`` (the VM then stays, ``Failed``, as
  Azure leaves it). A VM's delete answers 202 with such a URL; when it succeeds the VM is gone
  (``hosts.stop``), with its NIC, OS disk and (through the NIC) public IP where their
  ``deleteOption`` is Delete. A resource another one refers to cannot be deleted (400
  ``NicInUse``, ``PublicIPAddressInUse``, ``InUseNetworkSecurityGroupCannotBeDeleted``,
  ``InUseSubnetCannotBeDeleted``, ``OperationNotAllowed`` for an attached disk).
  :attr:`AzureFake.fail_put` ``{"<type's last segment>": (code, message)}`` makes that type's
  create fail (the VM's asynchronously, the others at once with 409). :meth:`AzureFake.held`
  lists what the resource groups hold.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import secrets
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import trustme

from .http import FakeServer, Reply, Request, reply_json

if TYPE_CHECKING:
    from .machine_host import MachineHosts

SCOPE = "https://management.azure.com/.default"
SUBSCRIPTION_API = "2022-12-01"
USAGES_API = "2023-07-01"
REGIONS = ("eastus", "westus2", "westeurope", "northeurope", "uksouth", "japaneast")
COMPUTE_API = "2024-07-01"
NETWORK_API = "2024-05-01"
SCHEDULE_API = "2018-09-15"
RESOURCES_API = "2021-04-01"
PERMISSIONS_API = "2022-04-01"
RESOURCE_GROUP = "comfyvn-gpu"
VM = "Microsoft.Compute/virtualMachines"
DISK = "Microsoft.Compute/disks"
NSG = "Microsoft.Network/networkSecurityGroups"
VNET = "Microsoft.Network/virtualNetworks"
IP = "Microsoft.Network/publicIPAddresses"
NIC = "Microsoft.Network/networkInterfaces"
SCHEDULE = "Microsoft.DevTestLab/schedules"
TYPES = {
    NSG: NETWORK_API,
    VNET: NETWORK_API,
    IP: NETWORK_API,
    NIC: NETWORK_API,
    VM: COMPUTE_API,
    DISK: COMPUTE_API,
    SCHEDULE: SCHEDULE_API,
}
#: Windows time zone IDs the schedule takes (a few; "UTC" among them).
TIME_ZONES = {"UTC", "Pacific Standard Time", "W. Europe Standard Time", "GMT Standard Time"}
_FILTER = re.compile(r"^tagName eq '([^']*)' and tagValue eq '([^']*)'$")


def contributor() -> list[dict[str, list[str]]]:
    """The permissions of the built-in Contributor role."""
    return [
        {
            "actions": ["*"],
            "notActions": [
                "Microsoft.Authorization/*/Delete",
                "Microsoft.Authorization/*/Write",
                "Microsoft.Authorization/elevateAccess/Action",
                "Microsoft.Blueprint/blueprintAssignments/write",
                "Microsoft.Blueprint/blueprintAssignments/delete",
            ],
            "dataActions": [],
            "notDataActions": [],
        }
    ]


def _matches(pattern: str, action: str) -> bool:
    regex = ".*".join(re.escape(p) for p in pattern.split("*"))
    return re.fullmatch(regex, action, re.IGNORECASE) is not None


def allowed(permissions: list[dict[str, Any]], action: str) -> bool:
    """Whether a role's permissions allow ``action`` (actions minus notActions, per entry)."""
    return any(
        any(_matches(a, action) for a in p.get("actions") or [])
        and not any(_matches(n, action) for n in p.get("notActions") or [])
        for p in permissions
    )


def default_usages() -> dict[str, tuple[int, int, str]]:
    """A region of a pay-as-you-go subscription with some GPU quota: name -> (current, limit,
    localized name)."""
    return {
        "availabilitySets": (0, 2500, "Availability Sets"),
        "cores": (2, 100, "Total Regional vCPUs"),
        "virtualMachines": (1, 25000, "Virtual Machines"),
        "standardDSv5Family": (2, 100, "Standard DSv5 Family vCPUs"),
        "standardNCASv3_T4Family": (0, 8, "Standard NCASv3_T4 Family vCPUs"),
        "StandardNVADSA10v5Family": (0, 0, "Standard NVADSA10v5 Family vCPUs"),
        "lowPriorityCores": (0, 100, "Total Regional Spot vCPUs"),
    }


@dataclass
class App:
    client_id: str
    tenant_id: str
    secret: str
    expired: bool = False
    can_read_quota: bool = True


@dataclass
class Subscription:
    subscription_id: str
    tenant_id: str
    display_name: str
    state: str = "Enabled"
    #: client ids of the apps with a role on the subscription
    members: set[str] = field(default_factory=set)
    #: region -> usage name -> (current, limit, localized name)
    usages: dict[str, dict[str, tuple[int, int, str]]] = field(default_factory=dict)

    def set_usage(self, region: str, name: str, current: int, limit: int) -> None:
        region_usages = self.usages.setdefault(region, default_usages())
        localized = region_usages.get(name, (0, 0, name))[2]
        region_usages[name] = (current, limit, localized)


def _entra_error(status: int, error: str, code: int, text: str) -> Reply:
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = "2025-01-01 00:00:00Z"
    return reply_json(
        status,
        {
            "error": error,
            "error_description": f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: "
            f"{corr} Timestamp: {stamp}",
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
    )


def _arm_error(status: int, code: str, message: str) -> Reply:
    return reply_json(status, {"error": {"code": code, "message": message}})


class AzureFake:
    """The authority (:attr:`authority`) and Resource Manager (:attr:`management`) servers."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA(organization_name="fake Azure")
        self.ca_file = directory / "fake-azure-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.tenant_id = str(uuid.uuid4())
        self.tenant_domain = "contoso.onmicrosoft.com"
        self.client_id = str(uuid.uuid4())
        self.secret = "Gd8Q~good-client-secret-" + secrets.token_hex(8)
        self.subscription_id = str(uuid.uuid4())
        self.entra = FakeServer(default=self._entra, ssl_context=self._server_context())
        self.arm = FakeServer(default=self._arm, ssl_context=self._server_context())
        self.reset()

    def _server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        return ctx

    def reset(self) -> AzureFake:
        """One tenant with one app (its secret valid) that has a role on one subscription."""
        self.tenants = {self.tenant_id: self.tenant_id, self.tenant_domain: self.tenant_id}
        self.apps = {self.client_id: App(self.client_id, self.tenant_id, self.secret)}
        self.subscriptions = {
            self.subscription_id: Subscription(
                self.subscription_id,
                self.tenant_id,
                "ComfyVN GPU (pay-as-you-go)",
                members={self.client_id},
            )
        }
        self.tokens: dict[str, tuple[str, str]] = {}  # access token -> (tenant, client id)
        #: usages per page (None: all on one page); more pages are linked by ``nextLink``
        self.usage_page_size: int | None = None
        #: resource group name (lower case) -> (its name, its region)
        self.resource_groups: dict[str, tuple[str, str]] = {
            RESOURCE_GROUP: (RESOURCE_GROUP, "westeurope")
        }
        #: the app's role on the resource groups (Contributor)
        self.permissions: list[dict[str, Any]] = contributor()
        #: resource ID (lower case) -> the resource as ARM returns it
        self.resources: dict[str, dict[str, Any]] = {}
        #: operation id -> {"polls": InProgress answers left, "status", "error", "then"}
        self.operations: dict[str, dict[str, Any]] = {}
        #: type's last segment ("virtualMachines") -> (error code, message) of its create
        self.fail_put: dict[str, tuple[str, str]] = {}
        #: the Retry-After of long operations (seconds, as text; None: no header)
        self.retry_after: str | None = "0"
        #: the machines behind the VMs (None: VMs have no sshd)
        self.hosts: MachineHosts | None = None
        self.ports: dict[str, int] = {}
        self._ip = 10
        self.entra.requests.clear()
        self.arm.requests.clear()
        return self

    @property
    def subscription(self) -> Subscription:
        return self.subscriptions[self.subscription_id]

    def add_tenant(self) -> str:
        other = str(uuid.uuid4())
        self.tenants[other] = other
        return other

    def __enter__(self) -> AzureFake:
        self.entra.__enter__()
        self.arm.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.entra.__exit__(*exc)
        self.arm.__exit__(*exc)

    @property
    def authority(self) -> str:
        return self.entra.base

    @property
    def management(self) -> str:
        return self.arm.base

    # -- Entra ID ------------------------------------------------------------------------

    def _entra(self, req: Request) -> Reply:
        parts = req.path.strip("/").split("/")
        tenant_ref = parts[0] if parts else ""
        rest = "/".join(parts[1:])
        tenant = self.tenants.get(tenant_ref)
        if req.method == "GET" and rest == "v2.0/.well-known/openid-configuration":
            if tenant is None:
                return _entra_error(
                    400,
                    "invalid_tenant",
                    90002,
                    f"Tenant '{tenant_ref}' not found. Check to make sure you have the correct "
                    "tenant ID and are signing into the correct cloud.",
                )
            base = f"{self.authority}/{tenant_ref}"
            return reply_json(
                200,
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    "issuer": f"https://login.microsoftonline.com/{tenant}/v2.0",
                },
            )
        if rest != "oauth2/v2.0/token":
            return reply_json(404, {"error": "not_found"})
        if req.method != "POST":
            return reply_json(405, {"error": "method_not_allowed"})
        if not req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _entra_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        if tenant is None:
            return _entra_error(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant_ref}' not found. Check to make sure you have the correct "
                "tenant ID and are signing into the correct cloud. Check with your subscription "
                "administrator, this may happen if there are no active subscriptions for the "
                "tenant.",
            )
        if form.get("grant_type") != "client_credentials":
            return _entra_error(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            )
        client_id = form.get("client_id", "")
        app = self.apps.get(client_id)
        if app is None or app.tenant_id != tenant:
            return _entra_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant_ref}'. This can happen if the application has not been installed by "
                "the administrator of the tenant or consented to by any user in the tenant. "
                "You may have sent your authentication request to the wrong tenant.",
            )
        if form.get("client_secret") != app.secret:
            return _entra_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
            )
        if app.expired:
            return _entra_error(
                401,
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{client_id}' are expired. Visit the "
                "Azure portal to create new keys for your app: https://aka.ms/NewClientSecret",
            )
        if form.get("scope") != SCOPE:
            return _entra_error(
                400,
                "invalid_scope",
                70011,
                f"The provided request must include a 'scope' input parameter. The provided "
                f"value for the input parameter 'scope' is not valid: {form.get('scope')!r}.",
            )
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(24)
        self.tokens[token] = (tenant, client_id)
        return reply_json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": token,
            },
        )

    # -- Resource Manager ------------------------------------------------------------------

    def _arm(self, req: Request) -> Reply:
        parts = req.path.strip("/").split("/")
        if not parts or parts[0] != "subscriptions" or len(parts) < 2:
            return _arm_error(404, "NotFound", f"The path '{req.path}' is not valid.")
        auth = req.headers.get("authorization")
        if auth is None:
            return _arm_error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            )
        holder = self.tokens.get(req.bearer or "")
        if holder is None:
            return _arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        token_tenant, client_id = holder
        sub_id = parts[1]
        if len(parts) >= 4 and parts[2].lower() == "resourcegroups":
            return self._group(req, parts, token_tenant, client_id)
        if (
            len(parts) == 8
            and parts[2:5] == ["providers", "Microsoft.Compute", "locations"]
            and parts[6] == "operations"
        ):
            return self._operation(req, parts, token_tenant, client_id)
        if len(parts) == 2:
            api = SUBSCRIPTION_API
        elif len(parts) == 7 and parts[2:5] == ["providers", "Microsoft.Compute", "locations"]:
            if parts[6] != "usages":
                return _arm_error(404, "NotFound", f"The path '{req.path}' is not valid.")
            api = USAGES_API
        else:
            return _arm_error(404, "NotFound", f"The path '{req.path}' is not valid.")
        if req.method != "GET":
            return _arm_error(405, "MethodNotAllowed", f"{req.method} is not allowed here.")
        versions = req.query.get("api-version") or []
        version = versions[0] if versions else None
        if version is None:
            return _arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if version != api:
            return _arm_error(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. This fake serves '{api}'.",
            )
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            return _arm_error(
                404, "SubscriptionNotFound", f"The subscription '{sub_id}' could not be found."
            )
        if token_tenant != sub.tenant_id:
            return _arm_error(
                401,
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer 'https://sts.windows.net/"
                f"{token_tenant}/'. It must match the tenant 'https://sts.windows.net/"
                f"{sub.tenant_id}/' associated with this subscription.",
            )
        if client_id not in sub.members:
            action = (
                "Microsoft.Resources/subscriptions/read"
                if api == SUBSCRIPTION_API
                else "Microsoft.Compute/locations/usages/read"
            )
            return _arm_error(
                403,
                "AuthorizationFailed",
                f"The client '{client_id}' with object id '{client_id}' does not have "
                f"authorization to perform action '{action}' over scope '/subscriptions/"
                f"{sub_id}' or the scope is invalid.",
            )
        if api == SUBSCRIPTION_API:
            return reply_json(200, self._subscription_body(sub))
        region = parts[5]
        if not self.apps[client_id].can_read_quota:
            return _arm_error(
                403,
                "AuthorizationFailed",
                f"The client '{client_id}' with object id '{client_id}' does not have "
                "authorization to perform action 'Microsoft.Compute/locations/usages/read' "
                f"over scope '/subscriptions/{sub_id}'.",
            )
        if region not in REGIONS:
            return _arm_error(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location '{region}' and API "
                f"version '{USAGES_API}' for type 'locations/usages'.",
            )
        usages = sub.usages.setdefault(region, default_usages())
        items = [
            {
                "unit": "Count",
                "currentValue": current,
                "limit": limit,
                "name": {"value": name, "localizedValue": localized},
            }
            for name, (current, limit, localized) in usages.items()
        ]
        if self.usage_page_size is None:
            return reply_json(200, {"value": items})
        skip = int((req.query.get("$skiptoken") or ["0"])[0])
        end = skip + self.usage_page_size
        body: dict[str, Any] = {"value": items[skip:end]}
        if end < len(items):
            body["nextLink"] = (
                f"{self.management}{req.path}?api-version={USAGES_API}&$skiptoken={end}"
            )
        return reply_json(200, body)

    # -- resource groups -------------------------------------------------------------------

    def _refusal(
        self, req: Request, api: str, sub_id: str, tenant: str, client_id: str, action: str
    ) -> Reply | None:
        """The checks every request shares: api-version, subscription, tenant, role."""
        versions = req.query.get("api-version") or []
        if not versions:
            return _arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if versions[0] != api:
            return _arm_error(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{versions[0]}' is invalid. This fake serves '{api}'.",
            )
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            return _arm_error(
                404, "SubscriptionNotFound", f"The subscription '{sub_id}' could not be found."
            )
        if tenant != sub.tenant_id:
            return _arm_error(
                401,
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer 'https://sts.windows.net/{tenant}/'.",
            )
        if client_id not in sub.members:
            return self._denied(client_id, action, f"/subscriptions/{sub_id}")
        return None

    @staticmethod
    def _denied(client_id: str, action: str, scope: str) -> Reply:
        return _arm_error(
            403,
            "AuthorizationFailed",
            f"The client '{client_id}' with object id '{client_id}' does not have authorization "
            f"to perform action '{action}' over scope '{scope}' or the scope is invalid. If "
            "access was recently granted, please refresh your credentials.",
        )

    def _group(self, req: Request, parts: list[str], tenant: str, client_id: str) -> Reply:
        sub_id, rg_ref = parts[1], parts[3]
        rest = parts[4:]
        kind = "/".join(rest[1:3]) if len(rest) == 4 and rest[0] == "providers" else ""
        methods: tuple[str, ...]
        if rest == ["resources"]:
            api, methods, action = (
                RESOURCES_API,
                ("GET",),
                "Microsoft.Resources/subscriptions/resourceGroups/resources/read",
            )
        elif rest == ["providers", "Microsoft.Authorization", "permissions"]:
            api, methods, action = (
                PERMISSIONS_API,
                ("GET",),
                "Microsoft.Authorization/permissions/read",
            )
        elif kind in TYPES:
            api, methods = TYPES[kind], ("GET", "PUT", "DELETE")
            verb = {"GET": "read", "PUT": "write", "DELETE": "delete"}.get(req.method, "read")
            action = f"{kind}/{verb}"
        else:
            return _arm_error(404, "NotFound", f"The path '{req.path}' is not valid.")
        if req.method not in methods:
            return _arm_error(405, "MethodNotAllowed", f"{req.method} is not allowed here.")
        refused = self._refusal(req, api, sub_id, tenant, client_id, action)
        if refused is not None:
            return refused
        group = self.resource_groups.get(rg_ref.lower())
        if group is None:
            return _arm_error(
                404, "ResourceGroupNotFound", f"Resource group '{rg_ref}' could not be found."
            )
        rg = group[0]
        scope = f"/subscriptions/{sub_id}/resourceGroups/{rg}"
        if rest == ["resources"]:
            return self._list(req, scope)
        if rest[1] == "Microsoft.Authorization":
            return reply_json(200, {"value": self.permissions})
        name = rest[3]
        rid = f"{scope}/providers/{kind}/{name}"
        if req.method != "GET" and not allowed(self.permissions, action):
            return self._denied(client_id, action, rid)
        if req.method == "GET":
            doc = self.resources.get(rid.lower())
            if doc is None:
                return _arm_error(
                    404,
                    "ResourceNotFound",
                    f"The Resource '{kind}/{name}' under resource group '{rg}' was not found.",
                )
            return reply_json(200, self._view(doc, req))
        if req.method == "DELETE":
            return self._delete(rid, kind, name, sub_id)
        return self._put(req, rid, kind, name, sub_id)

    def _list(self, req: Request, scope: str) -> Reply:
        text = (req.query.get("$filter") or [""])[0]
        m = _FILTER.match(text)
        if text and m is None:
            return _arm_error(400, "InvalidFilterInQueryString", f"Invalid $filter '{text}'.")
        expand = (req.query.get("$expand") or [""])[0]
        items = []
        for doc in self.resources.values():
            if not doc["id"].lower().startswith(scope.lower() + "/"):
                continue
            if m is not None and (doc.get("tags") or {}).get(m.group(1)) != m.group(2):
                continue
            item: dict[str, Any] = {k: doc[k] for k in ("id", "name", "type", "location")}
            item["tags"] = doc.get("tags") or {}
            if "createdTime" in expand:
                item["createdTime"] = doc["created"]
            items.append(item)
        return reply_json(200, {"value": items})

    def _view(self, doc: dict[str, Any], req: Request) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(
            json.dumps({k: v for k, v in doc.items() if k != "created"})
        )
        if doc["type"] == VM and "instanceView" in (req.query.get("$expand") or [""])[0]:
            state = doc["properties"]["provisioningState"]
            statuses = [{"code": f"ProvisioningState/{state.lower()}"}]
            power = doc.get("power")
            if power:
                statuses.append({"code": f"PowerState/{power}"})
            out["properties"]["instanceView"] = {"statuses": statuses}
        out.pop("power", None)
        return out

    def _operation(self, req: Request, parts: list[str], tenant: str, client_id: str) -> Reply:
        if req.method != "GET":
            return _arm_error(405, "MethodNotAllowed", f"{req.method} is not allowed here.")
        refused = self._refusal(
            req,
            COMPUTE_API,
            parts[1],
            tenant,
            client_id,
            "Microsoft.Compute/locations/operations/read",
        )
        if refused is not None:
            return refused
        op = self.operations.get(parts[7])
        if op is None:
            return _arm_error(404, "NotFound", f"The operation '{parts[7]}' was not found.")
        body: dict[str, Any] = {"name": parts[7], "startTime": op["start"]}
        if op["polls"] > 0:
            op["polls"] -= 1
            body["status"] = "InProgress"
            return reply_json(200, body, self._retry())
        if not op["done"]:
            op["done"] = True
            op["then"]()
        body["status"] = op["status"]
        body["endTime"] = op["start"]
        if op["error"]:
            body["error"] = {"code": op["error"][0], "message": op["error"][1]}
        return reply_json(200, body)

    def _retry(self) -> dict[str, str]:
        return {"Retry-After": self.retry_after} if self.retry_after is not None else {}

    def _start(
        self, sub_id: str, region: str, then: Any, error: tuple[str, str] | None = None
    ) -> dict[str, str]:
        opid = str(uuid.uuid4())
        self.operations[opid] = {
            "polls": 1,
            "status": "Failed" if error else "Succeeded",
            "error": error,
            "then": then,
            "done": False,
            "start": datetime.now(UTC).isoformat(),
        }
        url = (
            f"{self.management}/subscriptions/{sub_id}/providers/Microsoft.Compute/locations/"
            f"{region}/operations/{opid}?api-version={COMPUTE_API}"
        )
        return {"Azure-AsyncOperation": url, **self._retry()}

    def _exists(self, rid: Any, kind: str | None = None) -> bool:
        if not isinstance(rid, str):
            return False
        doc = self.resources.get(rid.lower())
        return doc is not None and (kind is None or doc["type"] == kind)

    def _put(self, req: Request, rid: str, kind: str, name: str, sub_id: str) -> Reply:
        try:
            body = req.json()
        except ValueError:
            return _arm_error(
                400, "InvalidRequestContent", "The request content is not valid JSON."
            )
        if not isinstance(body, dict):
            return _arm_error(
                400, "InvalidRequestContent", "The request content must be an object."
            )
        location = body.get("location")
        if not isinstance(location, str) or not location:
            return _arm_error(
                400, "LocationRequired", "The location property is required for this definition."
            )
        if location not in REGIONS:
            return _arm_error(
                400,
                "LocationNotAvailableForResourceType",
                f"The provided location '{location}' is not available for resource type '{kind}'.",
            )
        props = body.get("properties")
        if not isinstance(props, dict):
            return _bad("properties", "The 'properties' object is required.")
        tags = body.get("tags") or {}
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            return _bad("tags", "Tags must be an object of strings.")
        checks: dict[str, Callable[[str, dict[str, Any], dict[str, Any]], Reply | None]] = {
            NSG: self._check_nsg,
            VNET: self._check_vnet,
            IP: self._check_ip,
            NIC: self._check_nic,
            VM: self._check_vm,
            SCHEDULE: self._check_schedule,
            DISK: lambda n, b, p: _bad("disk", "This fake creates disks only with their VM."),
        }
        problem = checks[kind](name, body, props)
        if problem is not None:
            return problem
        existing = self.resources.get(rid.lower())
        if existing is not None and kind == VM:
            return reply_json(200, self._view(existing, req))
        failure = self.fail_put.get(kind.rsplit("/", 1)[1])
        if failure is not None and kind != VM:
            return _arm_error(409, failure[0], failure[1])
        doc: dict[str, Any] = {
            "id": rid,
            "name": name,
            "type": kind,
            "location": location,
            "tags": dict(tags),
            "properties": json.loads(json.dumps(props)),
            "created": datetime.now(UTC).isoformat(),
        }
        doc["properties"]["provisioningState"] = "Succeeded"
        if "sku" in body:
            doc["sku"] = body["sku"]
        if kind == IP:
            self._ip += 1
            doc["properties"]["ipAddress"] = f"203.0.113.{self._ip}"
        if kind == VNET:
            for subnet in doc["properties"]["subnets"]:
                subnet["id"] = f"{rid}/subnets/{subnet['name']}"
        if kind == VM:
            return self._create_vm(rid, name, doc, sub_id, failure)
        self.resources[rid.lower()] = doc
        return reply_json(
            200 if existing is not None else 201, {k: v for k, v in doc.items() if k != "created"}
        )

    def _create_vm(
        self, rid: str, name: str, doc: dict[str, Any], sub_id: str, failure: tuple[str, str] | None
    ) -> Reply:
        props = doc["properties"]
        props["provisioningState"] = "Creating"
        props["vmId"] = str(uuid.uuid4())
        props["timeCreated"] = doc["created"]
        os_disk = props["storageProfile"].setdefault("osDisk", {})
        disk_name = os_disk.get("name") or f"{name}_OsDisk_1_{uuid.uuid4().hex}"
        disk_id = rid.rsplit("/providers/", 1)[0] + f"/providers/{DISK}/{disk_name}"
        os_disk["name"] = disk_name
        os_disk.setdefault("managedDisk", {})["id"] = disk_id
        script = base64.b64decode(props["osProfile"]["customData"]).decode()
        props["osProfile"].pop("customData")  # (ARM never returns it)
        self.resources[rid.lower()] = doc

        def done() -> None:
            if failure is not None:
                props["provisioningState"] = "Failed"
                return
            props["provisioningState"] = "Succeeded"
            doc["power"] = "running"
            self.resources[disk_id.lower()] = {
                "id": disk_id,
                "name": disk_name,
                "type": DISK,
                "location": doc["location"],
                "tags": {},  # (Azure does not copy the VM's tags to its disk)
                "properties": {"provisioningState": "Succeeded", "diskSizeGB": 150},
                "created": doc["created"],
            }
            if self.hosts is not None:
                self.ports[name] = self.hosts.boot(name, script)

        headers = self._start(sub_id, doc["location"], done, failure)
        view = {k: v for k, v in doc.items() if k not in ("created", "power")}
        return reply_json(201, view, headers)

    def _referrers(self, rid: str) -> list[str]:
        key = rid.lower()
        out = []
        for other in self.resources.values():
            if other["id"].lower() == key or other["type"] == SCHEDULE:
                continue
            text = json.dumps(other["properties"]).lower()
            if f'"{key}"' in text or f'"{key}/' in text:
                out.append(other["id"])
        return out

    def _delete(self, rid: str, kind: str, name: str, sub_id: str) -> Reply:
        doc = self.resources.get(rid.lower())
        if doc is None:
            return 204, {}, b""
        if kind == VM:
            doc["properties"]["provisioningState"] = "Deleting"
            doc["power"] = "deallocating"

            def gone() -> None:
                self._remove_vm(doc)

            return 202, self._start(sub_id, doc["location"], gone), b""
        users = self._referrers(rid)
        if users:
            code = {
                NIC: "NicInUse",
                IP: "PublicIPAddressInUse",
                NSG: "InUseNetworkSecurityGroupCannotBeDeleted",
                VNET: "InUseSubnetCannotBeDeleted",
                DISK: "OperationNotAllowed",
            }.get(kind, "Conflict")
            return _arm_error(
                400,
                code,
                f"{kind.rsplit('/', 1)[1]} {rid} is in use by {users[0]} and cannot be deleted.",
            )
        del self.resources[rid.lower()]
        return 200, {}, b""

    def _remove_vm(self, doc: dict[str, Any]) -> None:
        self.resources.pop(doc["id"].lower(), None)
        if self.hosts is not None:
            self.hosts.stop(doc["name"])
        self.ports.pop(doc["name"], None)
        props = doc["properties"]
        os_disk = props["storageProfile"].get("osDisk") or {}
        if os_disk.get("deleteOption") == "Delete":
            self.resources.pop(str(os_disk["managedDisk"]["id"]).lower(), None)
        for ref in props["networkProfile"]["networkInterfaces"]:
            if (ref.get("properties") or {}).get("deleteOption") != "Delete":
                continue
            nic = self.resources.pop(str(ref["id"]).lower(), None)
            for conf in (nic or {}).get("properties", {}).get("ipConfigurations") or []:
                ip_id = str(((conf.get("properties") or {}).get("publicIPAddress") or {}).get("id"))
                ip = self.resources.get(ip_id.lower())
                if ip is not None and ip["properties"].get("deleteOption") == "Delete":
                    del self.resources[ip_id.lower()]

    # -- what each type requires -------------------------------------------------------------

    def _check_nsg(self, name: str, body: dict[str, Any], props: dict[str, Any]) -> Reply | None:
        rules = props.get("securityRules", [])
        if not isinstance(rules, list):
            return _bad("securityRules", "securityRules must be an array.")
        for rule in rules:
            p = rule.get("properties") if isinstance(rule, dict) else None
            if not isinstance(p, dict) or not rule.get("name"):
                return _bad("securityRules", "A security rule needs a name and properties.")
            if p.get("protocol") not in ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*"):
                return _bad("protocol", f"Security rule {rule['name']} has an invalid protocol.")
            if p.get("access") not in ("Allow", "Deny") or p.get("direction") not in (
                "Inbound",
                "Outbound",
            ):
                return _bad("access", f"Security rule {rule['name']} needs access and direction.")
            priority = p.get("priority")
            if not isinstance(priority, int) or not 100 <= priority <= 4096:
                return _arm_error(
                    400,
                    "SecurityRuleInvalidPriority",
                    f"Security rule {rule['name']} has invalid priority; it must be 100-4096.",
                )
            for side in ("source", "destination"):
                if not (p.get(f"{side}AddressPrefix") or p.get(f"{side}AddressPrefixes")):
                    return _bad(
                        f"{side}AddressPrefix", f"Rule {rule['name']} needs {side} addresses."
                    )
            if not (p.get("destinationPortRange") or p.get("destinationPortRanges")):
                return _bad("destinationPortRange", f"Rule {rule['name']} needs a port range.")
        return None

    def _check_vnet(self, name: str, body: dict[str, Any], props: dict[str, Any]) -> Reply | None:
        prefixes = (props.get("addressSpace") or {}).get("addressPrefixes")
        if not isinstance(prefixes, list) or not prefixes:
            return _bad("addressSpace", "The virtual network needs an address space.")
        try:
            spaces = [ipaddress.ip_network(p) for p in prefixes]
            for subnet in props.get("subnets") or []:
                prefix = ipaddress.ip_network((subnet.get("properties") or {})["addressPrefix"])
                if not subnet.get("name") or not any(prefix.subnet_of(s) for s in spaces):  # type: ignore[arg-type]
                    return _arm_error(
                        400,
                        "NetcfgSubnetRangeOutsideVnet",
                        f"Subnet '{subnet.get('name')}' is not valid in virtual network '{name}'.",
                    )
        except (KeyError, ValueError, TypeError):
            return _bad("addressPrefix", "An address prefix is missing or not a CIDR block.")
        return None

    def _check_ip(self, name: str, body: dict[str, Any], props: dict[str, Any]) -> Reply | None:
        sku = (body.get("sku") or {}).get("name", "Basic")
        if sku not in ("Basic", "Standard"):
            return _bad("sku", f"Public IP SKU '{sku}' is not valid.")
        if sku == "Standard" and props.get("publicIPAllocationMethod") != "Static":
            return _arm_error(
                400,
                "StandardSkuPublicIPAddressesMustBeStatic",
                "Standard sku publicIp /subscriptions/.../publicIPAddresses/"
                f"{name} must have AllocationMethod set to Static.",
            )
        if props.get("deleteOption", "Delete") not in ("Delete", "Detach"):
            return _bad("deleteOption", "deleteOption must be Delete or Detach.")
        return None

    def _check_nic(self, name: str, body: dict[str, Any], props: dict[str, Any]) -> Reply | None:
        configs = props.get("ipConfigurations")
        if not isinstance(configs, list) or not configs:
            return _bad("ipConfigurations", "A network interface needs an IP configuration.")
        for conf in configs:
            p = conf.get("properties") if isinstance(conf, dict) else None
            if not isinstance(p, dict) or not conf.get("name"):
                return _bad("ipConfigurations", "An IP configuration needs a name and properties.")
            subnet_id = str((p.get("subnet") or {}).get("id") or "")
            vnet_id, _, subnet = subnet_id.partition("/subnets/")
            vnet = self.resources.get(vnet_id.lower())
            if vnet is None or subnet not in [s["name"] for s in vnet["properties"]["subnets"]]:
                return _arm_error(
                    400,
                    "InvalidResourceReference",
                    f"Resource {subnet_id} referenced by resource {name} was not found.",
                )
            ip_ref = p.get("publicIPAddress")
            if ip_ref is not None and not self._exists(ip_ref.get("id"), IP):
                return _arm_error(
                    400,
                    "InvalidResourceReference",
                    f"Resource {ip_ref.get('id')} referenced by resource {name} was not found.",
                )
        nsg = props.get("networkSecurityGroup")
        if nsg is not None and not self._exists(nsg.get("id"), NSG):
            return _arm_error(
                400,
                "InvalidResourceReference",
                f"Resource {nsg.get('id')} referenced by resource {name} was not found.",
            )
        return None

    def _check_vm(self, name: str, body: dict[str, Any], props: dict[str, Any]) -> Reply | None:
        if not (props.get("hardwareProfile") or {}).get("vmSize"):
            return _invalid("hardwareProfile.vmSize", "Required parameter 'vmSize' is missing.")
        image = (props.get("storageProfile") or {}).get("imageReference") or {}
        if not image.get("id") and not all(
            image.get(k) for k in ("publisher", "offer", "sku", "version")
        ):
            return _invalid(
                "imageReference", "The image reference needs publisher, offer, sku and version."
            )
        os_profile = props.get("osProfile") or {}
        user = os_profile.get("adminUsername")
        if not user or not os_profile.get("computerName"):
            return _invalid(
                "osProfile", "Required parameters 'adminUsername' and 'computerName' are missing."
            )
        try:
            base64.b64decode(str(os_profile.get("customData") or ""), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return _invalid("osProfile.customData", "customData is not valid base64.")
        if not os_profile.get("customData"):
            return _invalid("osProfile.customData", "This fake's VMs need a start-up script.")
        linux = os_profile.get("linuxConfiguration") or {}
        keys = (linux.get("ssh") or {}).get("publicKeys") or []
        if linux.get("disablePasswordAuthentication") is True:
            if not keys:
                return _invalid(
                    "linuxConfiguration.ssh.publicKeys",
                    "Authentication using either SSH or by user name and password must be "
                    "enabled in Linux profile.",
                )
        elif not os_profile.get("adminPassword"):
            return _invalid(
                "adminPassword", "Required parameter 'adminPassword' is missing (null)."
            )
        for key in keys:
            if key.get("path") != f"/home/{user}/.ssh/authorized_keys":
                return _invalid(
                    "linuxConfiguration.ssh.publicKeys.path",
                    "Destination path for SSH public keys is currently limited to its default "
                    f"value /home/{user}/.ssh/authorized_keys due to a known issue in Linux "
                    "provisioning agent.",
                )
            if not str(key.get("keyData") or "").startswith("ssh-"):
                return _invalid(
                    "linuxConfiguration.ssh.publicKeys.keyData", "The SSH public key is not valid."
                )
        nics = (props.get("networkProfile") or {}).get("networkInterfaces") or []
        if not nics:
            return _invalid("networkProfile", "At least one network interface is required.")
        for ref in nics:
            if not self._exists(ref.get("id"), NIC):
                return _arm_error(
                    400, "InvalidResourceReference", f"Resource {ref.get('id')} was not found."
                )
            if (ref.get("properties") or {}).get("deleteOption", "Detach") not in (
                "Delete",
                "Detach",
            ):
                return _invalid(
                    "networkInterfaces.deleteOption", "deleteOption must be Delete or Detach."
                )
            users = [
                u
                for u in self._referrers(str(ref["id"]))
                if not u.lower().endswith("/" + name.lower())
            ]
            if users:
                return _arm_error(
                    400, "NicInUse", f"Network Interface {ref['id']} is used by {users[0]}."
                )
        return None

    def _check_schedule(
        self, name: str, body: dict[str, Any], props: dict[str, Any]
    ) -> Reply | None:
        target = props.get("targetResourceId")
        if not name.startswith("shutdown-computevm-"):
            return _invalid(
                "name", "A VM's shutdown schedule must be named shutdown-computevm-<vm>."
            )
        if props.get("taskType") != "ComputeVmShutdownTask":
            return _invalid("taskType", "taskType must be ComputeVmShutdownTask.")
        time = str((props.get("dailyRecurrence") or {}).get("time") or "")
        if not re.fullmatch(r"([01][0-9]|2[0-3])[0-5][0-9]", time):
            return _invalid("dailyRecurrence.time", f"The time '{time}' is not HHmm.")
        if props.get("timeZoneId") not in TIME_ZONES:
            return _invalid(
                "timeZoneId", f"The time zone '{props.get('timeZoneId')}' is not valid."
            )
        if props.get("status", "Enabled") not in ("Enabled", "Disabled"):
            return _invalid("status", "status must be Enabled or Disabled.")
        if not self._exists(target, VM) or not str(target).lower().endswith(
            "/" + name.removeprefix("shutdown-computevm-").lower()
        ):
            return _invalid("targetResourceId", f"The target resource '{target}' is not this VM.")
        return None

    def held(self) -> list[tuple[str, str]]:
        """What the resource groups hold: (type, name)."""
        return sorted((d["type"], d["name"]) for d in self.resources.values())

    @staticmethod
    def _subscription_body(sub: Subscription) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{sub.subscription_id}",
            "authorizationSource": "RoleBased",
            "managedByTenants": [],
            "subscriptionId": sub.subscription_id,
            "tenantId": sub.tenant_id,
            "displayName": sub.display_name,
            "state": sub.state,
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
        }


def _bad(target: str, message: str) -> Reply:
    return reply_json(
        400,
        {"error": {"code": "InvalidRequestFormat", "message": message, "target": target}},
    )


def _invalid(target: str, message: str) -> Reply:
    return reply_json(
        400, {"error": {"code": "InvalidParameter", "message": message, "target": target}}
    )
