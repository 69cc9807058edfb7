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

Compute Engine instances (``compute#instance``) and zone operations (``compute#operation``),
from the Compute Engine v1 REST reference:

* ``POST /compute/v1/projects/{p}/zones/{z}/instances?requestId=<uuid>`` — ``instances.insert``.
  Accepted only in the documented shape: ``name`` (RFC 1035: ``[a-z]([-a-z0-9]{0,61}[a-z0-9])?``),
  ``machineType`` (``zones/<z>/machineTypes/<type>`` or its full URL, in this zone), exactly one
  ``disks[]`` entry with ``boot: true`` and ``initializeParams.sourceImage`` (a
  ``projects/<p>/global/images/...`` path or URL), ``networkInterfaces[]`` (a ``network`` or
  ``subnetwork``; ``accessConfigs[].type`` ``ONE_TO_ONE_NAT``), ``metadata.items[]`` of ``{key,
  value}`` (unique keys, ``[a-zA-Z0-9_-]{1,128}``), ``labels`` (keys ``[a-z][a-z0-9_-]{0,62}``,
  values ``[a-z0-9_-]{0,63}``), ``guestAccelerators[]`` (``acceleratorType`` offered in the
  zone, ``acceleratorCount`` >= 1; GPUs need ``scheduling.onHostMaintenance`` ``TERMINATE``),
  ``scheduling`` (``maxRunDuration.seconds`` 30 s .. 120 days, which needs
  ``instanceTerminationAction`` ``STOP``/``DELETE``; ``provisioningModel`` ``STANDARD``/
  ``SPOT``, a Spot VM with ``automaticRestart`` false). Anything else is 400 ``INVALID_ARGUMENT``
  ("Invalid value for field 'resource.<field>'"). ``requestId`` must be a UUID; the same
  ``requestId`` again returns the same operation and creates nothing. A name already used in the
  zone is 409 ``alreadyExists``. Permissions checked as Compute Engine documents them for a
  create: ``compute.instances.create``, ``compute.disks.create``, ``compute.subnetworks.use``,
  ``useExternalIp`` with an access config, ``compute.instances.setMetadata`` /
  ``setLabels`` / ``setServiceAccount`` when those are set (403 "Required '<perm>' permission
  for '<resource>'"). ``fail_insert`` (``ZONE_RESOURCE_POOL_EXHAUSTED``, ``QUOTA_EXCEEDED``)
  makes the operation end in that error (``error.errors[].code``, ``httpErrorStatusCode``)
  and creates nothing, as a stock-out does.
* ``GET .../zones/{z}/instances/{name}`` (``compute.instances.get``) and ``DELETE`` (``...
  .delete``; an operation); 404 ``notFound`` for an unknown instance. Creating an instance boots
  its machine (``hosts.boot(name, <startup-script metadata>)``); deleting it, or its
  ``maxRunDuration`` running out with ``instanceTerminationAction: DELETE`` (enforced by a
  timer, scaled by ``run_duration_scale`` so a test need not wait 30 s), ends it
  (``hosts.stop``). ``status``: ``PROVISIONING`` for ``boot_s``, then ``RUNNING``; the access
  config's ``natIP`` is a documentation address (203.0.113.N).
* ``GET .../zones/{z}/operations/{op}`` (``compute.zoneOperations.get``) and ``POST .../wait``:
  ``RUNNING`` for ``op_delay_s``, then ``DONE``.
* ``GET /compute/v1/projects/{p}/aggregated/instances?filter=...`` (``compute.instances.list``):
  ``items`` keyed ``zones/<z>`` (a ``warning`` where a zone has none); the filter accepted is
  ``labels.<key> = "<value>"`` / ``name = "<value>"`` (quotes optional), anything else 400.

Keys are made at test time (:func:`make_key`): no private key is ever committed.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .http import FakeServer, Reply, Request, ResettableFake, reply_json
from .machine_host import MachineHosts

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
        "compute.instances.setLabels",
        "compute.instances.list",
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
    #: the machines behind the instances (see the module's text)
    hosts: MachineHosts | None = None
    #: an error code every insert's operation ends in (nothing is created)
    fail_insert: str | None = None
    op_delay_s: float = 0.0  # an operation is RUNNING this long, then DONE
    boot_s: float = 0.0  # an instance is PROVISIONING this long, then RUNNING
    run_duration_scale: float = 1.0  # real seconds per maxRunDuration second
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        self.tokens: dict[str, str] = {}  # access token -> account
        self.grants: list[dict[str, Any]] = []  # verified assertion claims, in order
        self._lock = threading.RLock()
        #: (zone, name) -> the instance resource (plus "_created": monotonic time)
        self.instances: dict[tuple[str, str], dict[str, Any]] = {}
        #: (zone, operation name) -> the operation (plus "_started")
        self.operations: dict[tuple[str, str], dict[str, Any]] = {}
        self.request_ids: dict[str, tuple[str, str]] = {}  # requestId -> (zone, operation)
        self.expired: list[str] = []  # instances deleted by their maxRunDuration
        self._timers: dict[tuple[str, str], threading.Timer] = {}
        self._serial = 0
        self.server.default = self._dispatch

    def _after_reset(self) -> None:
        self.tokens.clear()
        self.grants.clear()
        with self._lock:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            self.instances.clear()
            self.operations.clear()
            self.request_ids.clear()
            self.expired.clear()

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
        (
            "POST",
            re.compile(r"/compute/v1/projects/(?P<p>[^/]+)/zones/(?P<z>[^/]+)/instances"),
            "_insert",
        ),
        (
            "GET",
            re.compile(
                r"/compute/v1/projects/(?P<p>[^/]+)/zones/(?P<z>[^/]+)/instances/(?P<name>[^/]+)"
            ),
            "_get_instance",
        ),
        (
            "DELETE",
            re.compile(
                r"/compute/v1/projects/(?P<p>[^/]+)/zones/(?P<z>[^/]+)/instances/(?P<name>[^/]+)"
            ),
            "_delete_instance",
        ),
        (
            "GET",
            re.compile(
                r"/compute/v1/projects/(?P<p>[^/]+)/zones/(?P<z>[^/]+)/operations/(?P<op>[^/]+)"
            ),
            "_get_operation",
        ),
        (
            "POST",
            re.compile(
                r"/compute/v1/projects/(?P<p>[^/]+)/zones/(?P<z>[^/]+)/operations/(?P<op>[^/]+)"
                r"/wait"
            ),
            "_wait_operation",
        ),
        (
            "GET",
            re.compile(r"/compute/v1/projects/(?P<p>[^/]+)/aggregated/instances"),
            "_aggregated_instances",
        ),
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
        known = False
        for method, pattern, handler in self.ROUTES:
            m = pattern.fullmatch(req.path)
            if m is None:
                continue
            known = True
            if req.method != method:
                continue
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
        if known:
            return google_error(405, "Method not allowed", "INVALID_ARGUMENT")
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

    # -- Compute Engine instances ----------------------------------------------------------

    def _link(self, *parts: str) -> str:
        return "https://www.googleapis.com/compute/v1/projects/" + "/".join((self.project, *parts))

    @staticmethod
    def _invalid(field: str, why: str) -> Reply:
        return google_error(
            400,
            f"Invalid value for field 'resource.{field}': {why}",
            "INVALID_ARGUMENT",
            reason="invalid",
        )

    def _denied(self, account: str, permission: str, resource: str) -> Reply | None:
        if permission in self.granted.get(account, set()):
            return None
        return google_error(
            403,
            f"Required '{permission}' permission for '{resource}'",
            "PERMISSION_DENIED",
            reason="forbidden",
        )

    def _not_found(self, what: str) -> Reply:
        return google_error(
            404, f"The resource '{what}' was not found", "NOT_FOUND", reason="notFound"
        )

    def _operation(self, zone: str, kind: str, target: str, account: str) -> dict[str, Any]:
        self._serial += 1
        name = f"operation-{int(time.time() * 1000)}-{secrets.token_hex(6)}-{self._serial}"
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        op: dict[str, Any] = {
            "kind": "compute#operation",
            "id": str(7_000_000_000 + self._serial),
            "name": name,
            "zone": self._link("zones", zone),
            "operationType": kind,
            "targetLink": self._link("zones", zone, "instances", target),
            "targetId": str(4_000_000_000 + self._serial),
            "status": "RUNNING",
            "user": account,
            "progress": 0,
            "insertTime": now,
            "startTime": now,
            "selfLink": self._link("zones", zone, "operations", name),
            "_started": time.monotonic(),
        }
        self.operations[(zone, name)] = op
        return op

    def _op_view(self, op: dict[str, Any]) -> dict[str, Any]:
        done = time.monotonic() - op["_started"] >= self.op_delay_s
        view = {k: v for k, v in op.items() if not k.startswith("_")}
        if done:
            view.update(status="DONE", progress=100, endTime=op["startTime"])
            if op.get("_error"):
                view["error"] = {"errors": [op["_error"]]}
                view["httpErrorStatusCode"] = op["_http"][0]
                view["httpErrorMessage"] = op["_http"][1]
        return view

    def _compute_auth(self, account: str, p: str, permission: str, zone: str) -> Reply | None:
        refused = self._compute_guard(account, p, permission)
        if refused is not None:
            return refused
        if zone not in self.zones:
            return self._not_found(f"projects/{p}/zones/{zone}")
        return None

    def _insert(self, req: Request, account: str, p: str, z: str) -> Reply:
        refused = self._compute_auth(account, p, "compute.instances.create", z)
        if refused is not None:
            return refused
        request_id = (req.query.get("requestId") or [None])[0]
        if request_id is not None:
            try:
                parsed = uuid.UUID(request_id)
            except ValueError:
                parsed = None
            if parsed is None or parsed.int == 0 or str(parsed) != request_id.lower():
                return google_error(
                    400,
                    "Invalid value for field 'requestId': '"
                    + request_id
                    + "'. The request ID must be a valid UUID with the exception that zero "
                    "UUID is not supported.",
                    "INVALID_ARGUMENT",
                    reason="invalid",
                )
            with self._lock:
                seen = self.request_ids.get(request_id)
                if seen is not None and seen in self.operations:
                    return reply_json(200, self._op_view(self.operations[seen]))
        try:
            body = req.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return google_error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        checked = self._check_instance(body, z)
        if isinstance(checked, tuple):
            return checked
        resource = f"projects/{p}/zones/{z}/instances/{body['name']}"
        needed = ["compute.disks.create", "compute.subnetworks.use"]
        if any(nic.get("accessConfigs") for nic in body["networkInterfaces"]):
            needed.append("compute.subnetworks.useExternalIp")
        if body.get("metadata"):
            needed.append("compute.instances.setMetadata")
        if body.get("labels"):
            needed.append("compute.instances.setLabels")
        if body.get("serviceAccounts"):
            needed.append("compute.instances.setServiceAccount")
        for permission in needed:
            refused = self._denied(account, permission, resource)
            if refused is not None:
                return refused
        with self._lock:
            if (z, body["name"]) in self.instances:
                return google_error(
                    409,
                    f"The resource '{resource}' already exists",
                    "ALREADY_EXISTS",
                    reason="alreadyExists",
                )
            op = self._operation(z, "insert", body["name"], account)
            if request_id is not None:
                self.request_ids[request_id] = (z, op["name"])
            if self.fail_insert:
                op["_error"] = {
                    "code": self.fail_insert,
                    "message": (
                        f"The zone '{resource.rsplit('/instances/', 1)[0]}' does not have "
                        "enough resources available to fulfill the request.  Try a different "
                        "zone, or try again later."
                        if self.fail_insert.startswith("ZONE_RESOURCE_POOL_EXHAUSTED")
                        else "Quota 'NVIDIA_L4_GPUS' exceeded.  Limit: 0.0 in region "
                        f"{z.rsplit('-', 1)[0]}."
                    ),
                }
                op["_http"] = (
                    (503, "SERVICE UNAVAILABLE")
                    if self.fail_insert.startswith("ZONE_RESOURCE")
                    else (403, "FORBIDDEN")
                )
                return reply_json(200, self._op_view(op))
            self._create(z, body, checked)
            return reply_json(200, self._op_view(op))

    def _check_instance(self, body: dict[str, Any], z: str) -> Reply | int:
        """The documented shape of an insert; the maxRunDuration (s, 0 without) or a 400."""
        name = body.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name):
            return self._invalid(
                "name",
                "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?|[1-9][0-9]{0,19})'",
            )
        mt = body.get("machineType")
        m = re.fullmatch(
            r"(?:https://www\.googleapis\.com/compute/v1/projects/[^/]+/)?zones/([^/]+)"
            r"/machineTypes/([a-z][a-z0-9]*-[a-z]+-\d+[a-z]*)",
            mt if isinstance(mt, str) else "",
        )
        if m is None or m.group(1) != z:
            return self._invalid("machineType", "Invalid value for field 'machineType'")
        machine_type = m.group(2)
        disks = body.get("disks")
        if not isinstance(disks, list) or len(disks) != 1 or not isinstance(disks[0], dict):
            return self._invalid("disks", "Exactly one boot disk must be specified")
        disk = disks[0]
        params = disk.get("initializeParams")
        image = params.get("sourceImage") if isinstance(params, dict) else None
        if disk.get("boot") is not True or not isinstance(image, str):
            return self._invalid("disks[0]", "The boot disk needs initializeParams.sourceImage")
        if not re.fullmatch(
            r"(?:https://www\.googleapis\.com/compute/v1/)?projects/[a-z][-a-z0-9.:]*/global/"
            r"images/(?:family/)?[a-z][-a-z0-9]*",
            image,
        ):
            return self._invalid("disks[0].initializeParams.sourceImage", "Invalid image")
        size = params.get("diskSizeGb")
        if size is not None and not str(size).isdigit():
            return self._invalid("disks[0].initializeParams.diskSizeGb", "not an int64")
        nics = body.get("networkInterfaces")
        if not isinstance(nics, list) or not nics:
            return self._invalid("networkInterfaces", "At least one network interface")
        for i, nic in enumerate(nics):
            if not isinstance(nic, dict) or not (nic.get("network") or nic.get("subnetwork")):
                return self._invalid(f"networkInterfaces[{i}]", "No network or subnetwork")
            for j, ac in enumerate(nic.get("accessConfigs") or []):
                if not isinstance(ac, dict) or ac.get("type", "ONE_TO_ONE_NAT") != "ONE_TO_ONE_NAT":
                    return self._invalid(
                        f"networkInterfaces[{i}].accessConfigs[{j}].type", "ONE_TO_ONE_NAT"
                    )
        metadata = body.get("metadata")
        if metadata is not None:
            items = metadata.get("items") if isinstance(metadata, dict) else None
            if not isinstance(items, list):
                return self._invalid("metadata", "metadata.items must be a list")
            keys: set[str] = set()
            for i, item in enumerate(items):
                key = item.get("key") if isinstance(item, dict) else None
                if not isinstance(key, str) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,128}", key):
                    return self._invalid(f"metadata.items[{i}].key", "Invalid metadata key")
                if key in keys:
                    return self._invalid("metadata", f"Duplicate metadata key '{key}'")
                if not isinstance(item.get("value"), str):
                    return self._invalid(f"metadata.items[{i}].value", "must be a string")
                keys.add(key)
            if sum(len(i["key"]) + len(i["value"]) for i in items) > 512 * 1024:
                return self._invalid("metadata", "Metadata is larger than 512 KB")
        labels = body.get("labels")
        if labels is not None:
            if not isinstance(labels, dict) or len(labels) > 64:
                return self._invalid("labels", "Invalid labels")
            for k, v in labels.items():
                if not re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", k) or not (
                    isinstance(v, str) and re.fullmatch(r"[a-z0-9_-]{0,63}", v)
                ):
                    return self._invalid(f"labels.{k}", "Invalid label")
        accelerators = body.get("guestAccelerators") or []
        scheduling = body.get("scheduling") or {}
        if not isinstance(scheduling, dict):
            return self._invalid("scheduling", "must be an object")
        for i, acc in enumerate(accelerators):
            m2 = re.fullmatch(
                r"(?:https://www\.googleapis\.com/compute/v1/projects/[^/]+/)?zones/([^/]+)"
                r"/acceleratorTypes/([a-z0-9-]+)",
                str(acc.get("acceleratorType", "")) if isinstance(acc, dict) else "",
            )
            count = acc.get("acceleratorCount") if isinstance(acc, dict) else None
            if m2 is None or m2.group(1) != z or m2.group(2) not in self.zones.get(z, []):
                return self._invalid(
                    f"guestAccelerators[{i}].acceleratorType", "Accelerator type not in zone"
                )
            if not isinstance(count, int) or count < 1:
                return self._invalid(f"guestAccelerators[{i}].acceleratorCount", "must be >= 1")
            if not machine_type.startswith("n1-"):
                return self._invalid(
                    "guestAccelerators", f"Machine type {machine_type} does not take accelerators"
                )
        if accelerators and scheduling.get("onHostMaintenance") != "TERMINATE":
            return self._invalid(
                "scheduling.onHostMaintenance",
                "Instances with guest accelerators do not support live migration.",
            )
        model = scheduling.get("provisioningModel", "STANDARD")
        if model not in ("STANDARD", "SPOT"):
            return self._invalid("scheduling.provisioningModel", str(model))
        if model == "SPOT" and scheduling.get("automaticRestart") is not False:
            return self._invalid("scheduling.automaticRestart", "Spot VMs cannot restart")
        action = scheduling.get("instanceTerminationAction")
        if action is not None and action not in ("STOP", "DELETE"):
            return self._invalid("scheduling.instanceTerminationAction", str(action))
        seconds = 0
        run = scheduling.get("maxRunDuration")
        if run is not None:
            raw = run.get("seconds") if isinstance(run, dict) else None
            if not (isinstance(raw, str) and raw.isdigit()) and not isinstance(raw, int):
                return self._invalid("scheduling.maxRunDuration.seconds", "not an int64")
            seconds = int(raw)
            if not 30 <= seconds <= 120 * 86400:
                return self._invalid(
                    "scheduling.maxRunDuration",
                    "The max run duration must be between 30 seconds and 120 days",
                )
            if action is None:
                return self._invalid(
                    "scheduling.instanceTerminationAction",
                    "instanceTerminationAction must be set with maxRunDuration",
                )
        return seconds

    def _create(self, z: str, body: dict[str, Any], run_s: int) -> None:
        name = body["name"]
        self._serial += 1
        n = len(self.instances) + 1
        nics = []
        for i, nic in enumerate(body["networkInterfaces"]):
            view = {
                "kind": "compute#networkInterface",
                "network": self._link("global", "networks", "default"),
                "subnetwork": self._link("regions", z.rsplit("-", 1)[0], "subnetworks", "default"),
                "networkIP": f"10.128.0.{n + 1}",
                "name": f"nic{i}",
            }
            if nic.get("accessConfigs"):
                view["accessConfigs"] = [
                    {
                        "kind": "compute#accessConfig",
                        "type": "ONE_TO_ONE_NAT",
                        "name": ac.get("name", "External NAT"),
                        "natIP": f"203.0.113.{(self._serial % 250) + 1}",
                        "networkTier": "PREMIUM",
                    }
                    for ac in nic["accessConfigs"]
                ]
            nics.append(view)
        items = (body.get("metadata") or {}).get("items") or []
        inst: dict[str, Any] = {
            "kind": "compute#instance",
            "id": str(5_000_000_000_000 + self._serial),
            "creationTimestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "name": name,
            "machineType": self._link(
                "zones", z, "machineTypes", body["machineType"].rsplit("/", 1)[1]
            ),
            "status": "PROVISIONING",
            "zone": self._link("zones", z),
            "canIpForward": False,
            "networkInterfaces": nics,
            "disks": [
                {
                    "kind": "compute#attachedDisk",
                    "type": "PERSISTENT",
                    "mode": "READ_WRITE",
                    "source": self._link("zones", z, "disks", name),
                    "deviceName": name,
                    "index": 0,
                    "boot": True,
                    "autoDelete": bool(body["disks"][0].get("autoDelete", False)),
                }
            ],
            "metadata": {"kind": "compute#metadata", "fingerprint": "x1", "items": items},
            "labels": dict(body.get("labels") or {}),
            "labelFingerprint": "42WmSpB8rSM=",
            "scheduling": dict(body.get("scheduling") or {}),
            "guestAccelerators": [
                {
                    "acceleratorType": self._link(
                        "zones", z, "acceleratorTypes", a["acceleratorType"].rsplit("/", 1)[1]
                    ),
                    "acceleratorCount": a["acceleratorCount"],
                }
                for a in body.get("guestAccelerators") or []
            ],
            "selfLink": self._link("zones", z, "instances", name),
            "_created": time.monotonic(),
            "_body": body,
        }
        self.instances[(z, name)] = inst
        script = next((i["value"] for i in items if i["key"] == "startup-script"), None)
        if self.hosts is not None and script is not None:
            self.hosts.boot(name, script)
        action = inst["scheduling"].get("instanceTerminationAction")
        if run_s and action == "DELETE":
            timer = threading.Timer(run_s * self.run_duration_scale, self._expire, (z, name, inst))
            timer.daemon = True
            self._timers[(z, name)] = timer
            timer.start()

    def _expire(self, z: str, name: str, inst: dict[str, Any]) -> None:
        """maxRunDuration ran out: Compute Engine deletes the instance (DELETE action)."""
        with self._lock:
            if self.instances.get((z, name)) is not inst:
                return
            self.expired.append(name)
        self._remove(z, name)

    def _remove(self, z: str, name: str) -> None:
        with self._lock:
            self.instances.pop((z, name), None)
            timer = self._timers.pop((z, name), None)
        if timer is not None:
            timer.cancel()
        if self.hosts is not None:
            self.hosts.stop(name)

    def _instance_view(self, inst: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in inst.items() if not k.startswith("_")}
        if time.monotonic() - inst["_created"] >= self.boot_s:
            view["status"] = "RUNNING"
        return view

    def _get_instance(self, req: Request, account: str, p: str, z: str, name: str) -> Reply:
        refused = self._compute_auth(account, p, "compute.instances.get", z)
        if refused is not None:
            return refused
        with self._lock:
            inst = self.instances.get((z, name))
            if inst is None:
                return self._not_found(f"projects/{p}/zones/{z}/instances/{name}")
            return reply_json(200, self._instance_view(inst))

    def _delete_instance(self, req: Request, account: str, p: str, z: str, name: str) -> Reply:
        refused = self._compute_auth(account, p, "compute.instances.delete", z)
        if refused is not None:
            return refused
        with self._lock:
            if (z, name) not in self.instances:
                return self._not_found(f"projects/{p}/zones/{z}/instances/{name}")
            op = self._operation(z, "delete", name, account)
        self._remove(z, name)
        return reply_json(200, self._op_view(op))

    def _get_operation(self, req: Request, account: str, p: str, z: str, op: str) -> Reply:
        refused = self._compute_auth(account, p, "compute.zoneOperations.get", z)
        if refused is not None:
            return refused
        with self._lock:
            found = self.operations.get((z, op))
            if found is None:
                return self._not_found(f"projects/{p}/zones/{z}/operations/{op}")
            return reply_json(200, self._op_view(found))

    def _wait_operation(self, req: Request, account: str, p: str, z: str, op: str) -> Reply:
        refused = self._compute_auth(account, p, "compute.zoneOperations.get", z)
        if refused is not None:
            return refused
        with self._lock:
            found = self.operations.get((z, op))
        if found is None:
            return self._not_found(f"projects/{p}/zones/{z}/operations/{op}")
        left = self.op_delay_s - (time.monotonic() - found["_started"])
        time.sleep(max(0.0, min(left, 2.0)))
        return reply_json(200, self._op_view(found))

    _FILTER = re.compile(r'\s*(labels\.[a-z][a-z0-9_-]*|name)\s*=\s*("?)([a-z0-9_-]*)\2\s*')

    def _aggregated_instances(self, req: Request, account: str, p: str) -> Reply:
        refused = self._compute_guard(account, p, "compute.instances.list")
        if refused is not None:
            return refused
        text = (req.query.get("filter") or [""])[0]
        field_name = value = None
        if text:
            m = self._FILTER.fullmatch(text)
            if m is None:
                return google_error(
                    400,
                    "Invalid value for field 'filter': '" + text + "'. Invalid list filter "
                    "expression.",
                    "INVALID_ARGUMENT",
                    reason="invalid",
                )
            field_name, value = m.group(1), m.group(3)

        def wanted(inst: dict[str, Any]) -> bool:
            if field_name is None:
                return True
            if field_name == "name":
                return bool(inst["name"] == value)
            return bool(inst["labels"].get(field_name[len("labels.") :]) == value)

        items: dict[str, Any] = {}
        with self._lock:
            for z in sorted(self.zones):
                found = [
                    self._instance_view(i)
                    for (zone, _), i in sorted(self.instances.items())
                    if zone == z and wanted(i)
                ]
                if found:
                    items[f"zones/{z}"] = {"instances": found}
                else:
                    items[f"zones/{z}"] = {
                        "warning": {
                            "code": "NO_RESULTS_ON_PAGE",
                            "message": f"There are no results for scope 'zones/{z}' on this page.",
                            "data": [{"key": "scope", "value": f"zones/{z}"}],
                        }
                    }
        return reply_json(
            200,
            {
                "kind": "compute#instanceAggregatedList",
                "id": f"projects/{p}/aggregated/instances",
                "items": items,
                "selfLink": self._link("aggregated", "instances"),
            },
        )

    def live(self) -> list[str]:
        """The names of the instances that exist."""
        with self._lock:
            return sorted(name for _, name in self.instances)

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
