"""A contract fake of the Google Cloud APIs a check uses: OAuth token, Resource Manager, Compute
Engine and Cloud Storage, on one local HTTP server.

Written from Google's documentation and what the public SDKs send, not from the adapter:

* ``POST /token`` — the OAuth 2.0 JWT-bearer grant (RFC 7523) that google-auth's
  service-account refresh sends: form ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``
  and ``assertion=<JWT>``. The assertion's RS256 signature is VERIFIED against the public key
  registered for its ``kid`` (a key that was deleted, or signed by another private key, is 400
  ``invalid_grant`` "Invalid JWT Signature.", as Google answers); ``iss`` must be the account
  the key belongs to, ``aud`` Google's token URL (google-auth always sends it, whatever
  ``token_uri`` is), ``scope`` must name ``cloud-platform``, and ``iat``/``exp`` must be within
  an hour and close to the server's clock (``clock_offset_s`` moves it: "Invalid JWT: Token must
  be a short-lived token (60 minutes) and in a reasonable timeframe..."). A good grant gets
  ``{"access_token", "expires_in": 3599, "token_type": "Bearer"}``; every other endpoint
  accepts only a bearer token issued here (else 401 ``UNAUTHENTICATED``).
* ``POST /v1/projects/{project}:testIamPermissions`` ``{"permissions": [...]}`` ->
  ``{"permissions": [granted subset]}`` (the key is left out when nothing is granted, as proto3
  JSON does). An account with no role on the project (or an unknown project) gets 403
  ``PERMISSION_DENIED`` "The caller does not have permission"; wildcards are 400.
* ``GET /compute/v1/projects/{p}/zones/{zone}/acceleratorTypes`` (``compute#acceleratorTypeList``),
  ``GET /compute/v1/projects/{p}/aggregated/acceleratorTypes`` (``items`` keyed
  ``zones/<zone>``, zones without any holding a ``warning``), ``GET /compute/v1/projects/{p}/
  regions/{region}`` (``compute#region`` with ``quotas``: ``metric``, ``limit``, ``usage``). With
  ``compute_enabled`` false every Compute call is 403 with the ``accessNotConfigured`` error and
  the ``SERVICE_DISABLED`` ``ErrorInfo`` (``metadata.service``, ``consumer``,
  ``activationUrl``). A missing permission is 403 "Required '<perm>' permission for
  'projects/<p>'"; an unknown zone or project 404 "The resource '...' was not found".
* ``GET /storage/v1/b/{bucket}/iam/testPermissions?permissions=...`` (repeated parameter;
  ``storage#testIamPermissionsResponse``; ``storage.buckets.list``/``create`` are 400, as
  documented) and ``GET /storage/v1/b/{bucket}`` (``storage#bucket`` with ``location``,
  ``locationType`` ...; needs ``storage.buckets.get``). Unknown buckets are 404 "The specified
  bucket does not exist.". Bucket permissions are the project's ``storage.*`` grants plus those
  granted on the bucket itself.

Keys are made at test time (:func:`make_key`): no private key is ever committed.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .http import FakeServer, Reply, Request, ResettableFake, reply_json

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PROJECT = "comfyvn-render-4821"
PROJECT_NUMBER = "418830125517"

ALL_PROJECT_PERMISSIONS = frozenset(
    {
        "compute.instances.create",
        "compute.instances.get",
        "compute.instances.delete",
        "compute.instances.setMetadata",
        "compute.instances.setServiceAccount",
        "compute.disks.create",
        "compute.subnetworks.use",
        "compute.subnetworks.useExternalIp",
        "compute.zoneOperations.get",
        "compute.acceleratorTypes.list",
        "compute.regions.get",
        "iam.serviceAccounts.actAs",
        "storage.buckets.get",
        "storage.objects.create",
        "storage.objects.get",
        "storage.objects.list",
    }
)

ACCELERATOR_DESCRIPTIONS = {
    "nvidia-l4": "NVIDIA L4",
    "nvidia-tesla-t4": "NVIDIA T4",
    "nvidia-tesla-a100": "NVIDIA A100 40GB",
    "nvidia-a100-80gb": "NVIDIA A100 80GB",
    "nvidia-h100-80gb": "NVIDIA H100 80GB",
    "nvidia-tesla-v100": "NVIDIA V100",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class ServiceAccountKey:
    """A service-account key as Google issues it (the JSON), with its RSA key pair."""

    email: str
    project_id: str
    key_id: str
    private_key: rsa.RSAPrivateKey

    @property
    def pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def info(self, **changes: Any) -> dict[str, Any]:
        account = self.email.split("@", 1)[0]
        data: dict[str, Any] = {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.key_id,
            "private_key": self.pem,
            "client_email": self.email,
            "client_id": "10" + str(int(self.key_id[:12], 16))[:19],
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": GOOGLE_TOKEN_URL,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + account
            + "%40"
            + self.email.split("@", 1)[1],
            "universe_domain": "googleapis.com",
        }
        data.update(changes)
        return {k: v for k, v in data.items() if v is not None}

    def json(self, **changes: Any) -> str:
        return json.dumps(self.info(**changes), indent=2) + "\n"

    def with_other_private_key(self) -> ServiceAccountKey:
        """Same account and key id, another private key (a forged or mixed-up key file)."""
        return ServiceAccountKey(
            self.email,
            self.project_id,
            self.key_id,
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
        )


def make_key(email: str, project_id: str = PROJECT) -> ServiceAccountKey:
    return ServiceAccountKey(
        email=email,
        project_id=project_id,
        key_id=secrets.token_hex(20),
        private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


def google_error(
    code: int,
    message: str,
    status: str,
    *,
    reason: str | None = None,
    domain: str = "global",
    details: list[dict[str, Any]] | None = None,
) -> Reply:
    err: dict[str, Any] = {"code": code, "message": message}
    if reason is not None:
        err["errors"] = [{"message": message, "domain": domain, "reason": reason}]
    err["status"] = status
    if details:
        err["details"] = details
    return reply_json(code, {"error": err})


@dataclass
class GcpFake(ResettableFake):
    project: str = PROJECT
    project_number: str = PROJECT_NUMBER
    #: key id -> (account email, public key PEM): the keys Google knows (deleting one revokes it)
    keys: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    #: account -> permissions granted on the project
    granted: dict[str, set[str]] = field(default_factory=dict)
    #: account -> permissions granted on buckets (on top of the project's storage.* ones)
    bucket_granted: dict[str, set[str]] = field(default_factory=dict)
    compute_enabled: bool = True
    zones: dict[str, list[str]] = field(
        default_factory=lambda: {
            "us-central1-a": ["nvidia-l4", "nvidia-tesla-t4", "nvidia-tesla-a100"],
            "us-central1-b": ["nvidia-l4", "nvidia-tesla-t4"],
            "us-central1-c": ["nvidia-tesla-t4"],
            "us-east1-b": ["nvidia-l4"],
            "europe-west1-b": ["nvidia-l4", "nvidia-tesla-t4"],
            "europe-west1-c": ["nvidia-tesla-t4"],
            "europe-west4-a": ["nvidia-l4", "nvidia-h100-80gb"],
            "europe-west4-b": ["nvidia-tesla-t4"],
            "europe-west2-a": [],
        }
    )
    #: region -> quota metric -> (limit, usage)
    quotas: dict[str, dict[str, tuple[float, float]]] = field(
        default_factory=lambda: {
            "us-central1": {
                "CPUS": (24.0, 4.0),
                "NVIDIA_L4_GPUS": (2.0, 1.0),
                "NVIDIA_T4_GPUS": (1.0, 0.0),
                "NVIDIA_A100_GPUS": (0.0, 0.0),
            },
            "europe-west1": {"CPUS": (24.0, 0.0), "NVIDIA_L4_GPUS": (1.0, 0.0)},
            "europe-west4": {"CPUS": (24.0, 0.0), "NVIDIA_L4_GPUS": (0.0, 0.0)},
        }
    )
    #: bucket name -> its metadata beyond name/id (location, locationType, ...)
    buckets: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "comfyvn-assets-us": {"location": "US-CENTRAL1", "locationType": "region"},
        }
    )
    clock_offset_s: float = 0.0
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        self.tokens: dict[str, str] = {}  # access token -> account
        self.grants: list[dict[str, Any]] = []  # verified assertion claims, in order
        self.server.default = self._dispatch

    def _after_reset(self) -> None:
        self.tokens.clear()
        self.grants.clear()

    # -- set-up ----------------------------------------------------------------------------

    def register(
        self,
        key: ServiceAccountKey,
        permissions: set[str] | frozenset[str] = ALL_PROJECT_PERMISSIONS,
    ) -> None:
        """Make Google know ``key`` and grant its account ``permissions`` on the project."""
        self.keys[key.key_id] = (key.email, key.public_pem)
        self.granted[key.email] = set(permissions)

    def revoke(self, key: ServiceAccountKey) -> None:
        self.keys.pop(key.key_id, None)

    @property
    def base(self) -> str:
        return self.server.base

    @property
    def token_url(self) -> str:
        return f"{self.server.base}/token"

    def endpoints(self) -> dict[str, str]:
        return {
            "token_uri": self.token_url,
            "resourcemanager": self.base,
            "compute": self.base,
            "storage": self.base,
        }

    # -- routing ---------------------------------------------------------------------------

    ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
        ("POST", re.compile(r"/token"), "_token"),
        ("POST", re.compile(r"/v1/projects/(?P<p>[^/:]+):testIamPermissions"), "_test_project"),
        (
            "GET",
            re.compile(r"/compute/v1/projects/(?P<p>[^/]+)/zones/(?P<z>[^/]+)/acceleratorTypes"),
            "_zone_types",
        ),
        (
            "GET",
            re.compile(r"/compute/v1/projects/(?P<p>[^/]+)/aggregated/acceleratorTypes"),
            "_aggregated_types",
        ),
        ("GET", re.compile(r"/compute/v1/projects/(?P<p>[^/]+)/regions/(?P<r>[^/]+)"), "_region"),
        ("GET", re.compile(r"/storage/v1/b/(?P<b>[^/]+)/iam/testPermissions"), "_test_bucket"),
        ("GET", re.compile(r"/storage/v1/b/(?P<b>[^/]+)"), "_bucket"),
    )

    def _dispatch(self, req: Request) -> Reply:
        for method, pattern, handler in self.ROUTES:
            m = pattern.fullmatch(req.path)
            if m is None:
                continue
            if req.method != method:
                return google_error(405, "Method not allowed", "INVALID_ARGUMENT")
            if handler != "_token":
                account = self.tokens.get(req.bearer or "")
                if account is None:
                    return google_error(
                        401,
                        "Request had invalid authentication credentials. Expected OAuth 2 access "
                        "token, login cookie or other valid authentication credential.",
                        "UNAUTHENTICATED",
                        reason="authError",
                    )
                return getattr(self, handler)(req, account, **m.groupdict())  # type: ignore[no-any-return]
            return self._token(req)
        return reply_json(404, {"error": {"code": 404, "message": "Not Found"}})

    # -- OAuth -----------------------------------------------------------------------------

    def _token(self, req: Request) -> Reply:
        def refuse(error: str, description: str, status: int = 400) -> Reply:
            return reply_json(status, {"error": error, "error_description": description})

        if not req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return refuse("invalid_request", "Bad Request")
        form = parse_qs(req.body.decode())
        if form.get("grant_type") != [JWT_BEARER]:
            return refuse("unsupported_grant_type", "Invalid grant_type: ")
        assertion = (form.get("assertion") or [""])[0]
        try:
            head_b64, body_b64, sig_b64 = assertion.split(".")
            header = json.loads(_unb64(head_b64))
            claims = json.loads(_unb64(body_b64))
        except ValueError:
            return refuse("invalid_grant", "Invalid JWT: Failed to parse assertion.")
        if header.get("alg") != "RS256":
            return refuse("invalid_grant", "Invalid JWT Signature.")
        registered = self.keys.get(str(header.get("kid")))
        if registered is None:
            return refuse("invalid_grant", "Invalid JWT Signature.")
        email, public_pem = registered
        public = serialization.load_pem_public_key(public_pem)
        assert isinstance(public, rsa.RSAPublicKey)
        try:
            public.verify(
                _unb64(sig_b64),
                f"{head_b64}.{body_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return refuse("invalid_grant", "Invalid JWT Signature.")
        if claims.get("iss") != email:
            return refuse("invalid_grant", "Invalid JWT Signature.")
        if claims.get("aud") != GOOGLE_TOKEN_URL:
            return refuse("invalid_grant", "Invalid JWT: Failed audience check.")
        now = time.time() + self.clock_offset_s
        iat, exp = claims.get("iat"), claims.get("exp")
        if (
            not isinstance(iat, int)
            or not isinstance(exp, int)
            or exp - iat > 3600
            or iat > now + 60
            or exp < now
        ):
            return refuse(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                "timeframe. Check your iat and exp values in the JWT claim.",
            )
        if CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
            return refuse("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        self.grants.append({"kid": header.get("kid"), **claims})
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self.tokens[token] = email
        return reply_json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    # -- Resource Manager ------------------------------------------------------------------

    def _test_project(self, req: Request, account: str, p: str) -> Reply:
        try:
            wanted = req.json().get("permissions")
        except (ValueError, AttributeError):
            wanted = None
        if not isinstance(wanted, list) or not all(isinstance(x, str) for x in wanted):
            return google_error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        for perm in wanted:
            if "*" in perm:
                return google_error(
                    400,
                    f"Permissions ({perm}) with wildcards (such as '*') are not allowed in "
                    "this request.",
                    "INVALID_ARGUMENT",
                )
        have = self.granted.get(account, set())
        if p != self.project or not have:
            return google_error(403, "The caller does not have permission", "PERMISSION_DENIED")
        held = [x for x in wanted if x in have]
        return reply_json(200, {"permissions": held} if held else {})

    # -- Compute Engine --------------------------------------------------------------------

    def _compute_guard(self, account: str, p: str, permission: str) -> Reply | None:
        if not self.compute_enabled:
            msg = (
                f"Compute Engine API has not been used in project {self.project_number} before "
                "or it is disabled. Enable it by visiting https://console.developers.google.com/"
                f"apis/api/compute.googleapis.com/overview?project={self.project_number} then "
                "retry. If you enabled this API recently, wait a few minutes for the action to "
                "propagate to our systems and retry."
            )
            return google_error(
                403,
                msg,
                "PERMISSION_DENIED",
                reason="accessNotConfigured",
                domain="usageLimits",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "SERVICE_DISABLED",
                        "domain": "googleapis.com",
                        "metadata": {
                            "service": "compute.googleapis.com",
                            "consumer": f"projects/{self.project_number}",
                            "activationUrl": "https://console.developers.google.com/apis/api/"
                            f"compute.googleapis.com/overview?project={self.project_number}",
                        },
                    }
                ],
            )
        if p != self.project:
            return google_error(
                404, f"The resource 'projects/{p}' was not found", "NOT_FOUND", reason="notFound"
            )
        if permission not in self.granted.get(account, set()):
            return google_error(
                403,
                f"Required '{permission}' permission for 'projects/{p}'",
                "PERMISSION_DENIED",
                reason="forbidden",
            )
        return None

    def _type_item(self, zone: str, name: str) -> dict[str, Any]:
        link = f"https://www.googleapis.com/compute/v1/projects/{self.project}/zones/{zone}"
        return {
            "kind": "compute#acceleratorType",
            "id": str(abs(hash((zone, name))) % 10**13),
            "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
            "name": name,
            "description": ACCELERATOR_DESCRIPTIONS.get(name, name),
            "zone": link,
            "selfLink": f"{link}/acceleratorTypes/{name}",
            "maximumCardsPerInstance": 8,
        }

    def _zone_types(self, req: Request, account: str, p: str, z: str) -> Reply:
        refused = self._compute_guard(account, p, "compute.acceleratorTypes.list")
        if refused is not None:
            return refused
        if z not in self.zones:
            return google_error(
                404,
                f"The resource 'projects/{p}/zones/{z}' was not found",
                "NOT_FOUND",
                reason="notFound",
            )
        base = f"https://www.googleapis.com/compute/v1/projects/{p}/zones/{z}/acceleratorTypes"
        body: dict[str, Any] = {"kind": "compute#acceleratorTypeList", "id": base[37:]}
        if self.zones[z]:
            body["items"] = [self._type_item(z, n) for n in self.zones[z]]
        body["selfLink"] = base
        return reply_json(200, body)

    def _aggregated_types(self, req: Request, account: str, p: str) -> Reply:
        refused = self._compute_guard(account, p, "compute.acceleratorTypes.list")
        if refused is not None:
            return refused
        items: dict[str, Any] = {}
        for z, names in sorted(self.zones.items()):
            if names:
                items[f"zones/{z}"] = {"acceleratorTypes": [self._type_item(z, n) for n in names]}
            else:
                items[f"zones/{z}"] = {
                    "warning": {
                        "code": "NO_RESULTS_ON_PAGE",
                        "message": "There are no results for scope 'zones/" + z + "' on this page.",
                        "data": [{"key": "scope", "value": f"zones/{z}"}],
                    }
                }
        return reply_json(
            200,
            {
                "kind": "compute#acceleratorTypeAggregatedList",
                "id": f"projects/{p}/aggregated/acceleratorTypes",
                "items": items,
                "selfLink": f"https://www.googleapis.com/compute/v1/projects/{p}/aggregated/"
                "acceleratorTypes",
            },
        )

    def _region(self, req: Request, account: str, p: str, r: str) -> Reply:
        refused = self._compute_guard(account, p, "compute.regions.get")
        if refused is not None:
            return refused
        zones = sorted(z for z in self.zones if z.rsplit("-", 1)[0] == r)
        if not zones:
            return google_error(
                404,
                f"The resource 'projects/{p}/regions/{r}' was not found",
                "NOT_FOUND",
                reason="notFound",
            )
        link = f"https://www.googleapis.com/compute/v1/projects/{p}"
        return reply_json(
            200,
            {
                "kind": "compute#region",
                "id": "1000",
                "name": r,
                "description": r,
                "status": "UP",
                "zones": [f"{link}/zones/{z}" for z in zones],
                "quotas": [
                    {"metric": m, "limit": lim, "usage": use}
                    for m, (lim, use) in self.quotas.get(r, {}).items()
                ],
                "selfLink": f"{link}/regions/{r}",
            },
        )

    # -- Cloud Storage ---------------------------------------------------------------------

    def _bucket_permissions(self, account: str) -> set[str]:
        project = {x for x in self.granted.get(account, set()) if x.startswith("storage.")}
        return project | self.bucket_granted.get(account, set())

    def _no_bucket(self) -> Reply:
        return google_error(
            404, "The specified bucket does not exist.", "NOT_FOUND", reason="notFound"
        )

    def _test_bucket(self, req: Request, account: str, b: str) -> Reply:
        wanted = req.query.get("permissions", [])
        if not wanted:
            return google_error(
                400, "Required parameter: permissions", "INVALID_ARGUMENT", reason="required"
            )
        for perm in wanted:
            if perm in ("storage.buckets.list", "storage.buckets.create"):
                return google_error(
                    400,
                    f"Permission '{perm}' applies to projects, not buckets.",
                    "INVALID_ARGUMENT",
                    reason="invalid",
                )
        if b not in self.buckets:
            return self._no_bucket()
        have = self._bucket_permissions(account)
        held = [x for x in wanted if x in have]
        body: dict[str, Any] = {"kind": "storage#testIamPermissionsResponse"}
        if held:
            body["permissions"] = held
        return reply_json(200, body)

    def _bucket(self, req: Request, account: str, b: str) -> Reply:
        if b not in self.buckets:
            return self._no_bucket()
        if "storage.buckets.get" not in self._bucket_permissions(account):
            return google_error(
                403,
                f"{account} does not have storage.buckets.get access to the Google Cloud "
                "Storage bucket. Permission 'storage.buckets.get' denied on resource (or it may "
                "not exist).",
                "PERMISSION_DENIED",
                reason="forbidden",
            )
        meta = self.buckets[b]
        return reply_json(
            200,
            {
                "kind": "storage#bucket",
                "selfLink": f"https://www.googleapis.com/storage/v1/b/{b}",
                "id": b,
                "name": b,
                "projectNumber": self.project_number,
                "metageneration": "1",
                "storageClass": "STANDARD",
                "timeCreated": "2025-03-14T09:26:53.112Z",
                "updated": "2025-03-14T09:26:53.112Z",
                "rpo": "DEFAULT",
                **meta,
            },
        )
