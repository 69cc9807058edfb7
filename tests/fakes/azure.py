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
"""

from __future__ import annotations

import secrets
import ssl
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import trustme

from .http import FakeServer, Reply, Request, reply_json

SCOPE = "https://management.azure.com/.default"
SUBSCRIPTION_API = "2022-12-01"
USAGES_API = "2023-07-01"
REGIONS = ("eastus", "westus2", "westeurope", "northeurope", "uksouth", "japaneast")


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
