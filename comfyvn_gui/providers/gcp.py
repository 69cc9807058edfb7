"""Google Cloud: a service-account key, the permissions a GPU launch needs, the Compute Engine
API, the GPU in the zone and the Cloud Storage bucket's region.

Credentials are exactly the stored ``service_account_json`` (the key file's content) — never
``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's configuration or the metadata server. ``project_id``
and ``region`` are the auth fields; ``zone``, ``bucket`` and ``machine_type`` the options.

What is sent (endpoints from the profile: ``token_uri``, ``resourcemanager``, ``compute``
(primary: ``base_url`` overrides it), ``storage``; ``config.endpoints`` overrides any):

1. The OAuth 2.0 JWT-bearer grant (RFC 7523), as google-auth's service-account refresh sends it.
   google-auth (``service_account.Credentials.from_service_account_info`` with the
   ``cloud-platform`` scope, then ``google.auth.jwt.encode`` with its signer) parses the key and
   signs the assertion (``iss`` the account, ``aud`` Google's token URL, ``scope``, one hour),
   in the executor lane; the assertion is then POSTed —
   ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=...`` — to the
   ``token_uri`` endpoint when configured, else the key's own ``token_uri`` (which must be a
   Google https address: a pasted key cannot send its signed grant elsewhere). The POST goes
   through the shared httpx client rather than ``Credentials.refresh()``, whose blocking HTTP
   would hold one of the lane's four workers until the deadline for every check whose token
   endpoint does not answer: five such checks starve the sixth. Signing takes milliseconds.
   Answers: 200 ``{"access_token", "expires_in", "token_type"}``; 400 ``invalid_grant``
   "Invalid JWT Signature." (a deleted / revoked key, or a key whose private half does not
   match its id), "Invalid grant: account not found" (the account was deleted), "Invalid JWT:
   Token must be a short-lived token (60 minutes) and in a reasonable timeframe" (this
   computer's clock); 401 ``invalid_client`` / ``disabled_client`` / ``deleted_client``.
2. ``POST {resourcemanager}/v1/projects/{project_id}:testIamPermissions``
   ``{"permissions": [...]}`` -> ``{"permissions": [the granted subset]}`` (the key is left out
   when none is granted). 403 without ``SERVICE_DISABLED``: the account cannot see the project
   (or it does not exist).
3. With a bucket: ``GET {storage}/storage/v1/b/{bucket}/iam/testPermissions?permissions=...``
   (no permission needed; grants on the bucket count, which a project-level test would miss)
   and, once ``storage.buckets.get`` is granted, ``GET {storage}/storage/v1/b/{bucket}`` for its
   ``location`` / ``locationType`` / ``customPlacementConfig.dataLocations``.
4. ``GET {compute}/compute/v1/projects/{p}/zones/{zone}/acceleratorTypes`` with a zone, else
   ``GET {compute}/compute/v1/projects/{p}/aggregated/acceleratorTypes`` (every zone; not every
   region has an ``-a`` zone: europe-west1 starts at ``-b``), looking for the provider's GPU.
   A disabled API answers 403 with ``error.details[].reason == "SERVICE_DISABLED"`` (an
   ``ErrorInfo`` whose ``metadata`` carries ``service`` and ``activationUrl``) and, in Compute's
   older form, ``error.errors[].reason == "accessNotConfigured"``.
5. Health only: ``GET {compute}/compute/v1/projects/{p}/regions/{region}`` — its ``quotas``
   hold the region's GPU quota (``NVIDIA_L4_GPUS`` ...: ``limit`` and ``usage``), the capacity
   this account can actually launch; a new project's is often 0.

The permissions a launch needs (:data:`PROJECT_PERMISSIONS`, tested on the project):
create, read and delete the VM (``compute.instances.create/get/delete``), its boot disk
(``compute.disks.create``), its startup script (``compute.instances.setMetadata``), the default
network with an external address to fetch models (``compute.subnetworks.use`` and
``useExternalIp``), a service account on the VM so it can reach the bucket
(``compute.instances.setServiceAccount``), waiting for zone operations
(``compute.zoneOperations.get``), and what these checks read (``compute.acceleratorTypes.list``,
``compute.regions.get``). All are in the Compute Instance Admin (v1) role. With a bucket,
:data:`BUCKET_PERMISSIONS` are tested on the bucket: read its metadata, stage inputs and read
results (``storage.buckets.get``, ``storage.objects.create/get/list``).
``iam.serviceAccounts.actAs`` (:data:`SOFT_PERMISSIONS`) is tested on the project too, but it can
also be granted on the VM's service account itself, which a project-level test cannot see (as
SkyPilot found), so its absence is a warning, not a failure.

Statuses: a key that is not JSON, not a service-account key, lacks fields, or names a token
address that is not Google's -> ``misconfigured`` naming ``service_account_json``; a private
key that cannot be read, or one Google rejects -> ``invalid_credentials`` naming it; missing
permissions -> ``permission_denied`` with ``detail["missing_permissions"]`` listing exactly
those; a disabled API -> ``misconfigured`` naming ``project_id`` ("enable the ... API");
a GPU not offered in the zone (or in no zone of the region) -> ``misconfigured`` naming
``zone`` (or ``region``); a bucket that does not exist or is not in the configured region (a
multi-region bucket is in none: the seed's "Keep GCS + Translation API co-located") ->
``misconfigured`` naming ``bucket``. A key made in another project than ``project_id`` is fine
(the account may hold roles there) and is noted in ``detail["warnings"]``.

Health: token + GPU types (+ the region's GPU quota): ``healthy``; ``degraded`` with
``misconfigured`` when the GPU is not offered where configured, with ``quota_exhausted`` when
the region's GPU quota is used up or 0; failures of the token or the API are ``unhealthy``.

No message or detail carries the key or any part of it; parse errors are described by position
only, and Google's own error texts are not echoed in messages (only their short error codes; an
unexpected 400 of the permission test keeps Google's text in ``detail["google_message"]``).
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from .base import CheckContext, CheckFailure, HttpClient, Outcome

if TYPE_CHECKING:
    import httpx

KEY_FIELD = "service_account_json"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: The ``aud`` of every service-account grant: Google's token URL, whatever ``token_uri`` is.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600

PROJECT_PERMISSIONS: tuple[str, ...] = (
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
)
SOFT_PERMISSIONS: tuple[str, ...] = ("iam.serviceAccounts.actAs",)
BUCKET_PERMISSIONS: tuple[str, ...] = (
    "storage.buckets.get",
    "storage.objects.create",
    "storage.objects.get",
    "storage.objects.list",
)

#: GPU catalog name -> Compute Engine accelerator type.
ACCELERATORS: dict[str, str] = {
    "L4": "nvidia-l4",
    "T4": "nvidia-tesla-t4",
    "V100": "nvidia-tesla-v100",
    "A100 40GB": "nvidia-tesla-a100",
    "A100 80GB": "nvidia-a100-80gb",
    "H100": "nvidia-h100-80gb",
}
#: Machine families that come with their GPU attached (prefix -> GPU catalog name).
MACHINE_FAMILY_GPUS: tuple[tuple[str, str], ...] = (
    ("g2-", "L4"),
    ("a2-ultragpu-", "A100 80GB"),
    ("a2-", "A100 40GB"),
    ("a3-", "H100"),
)
#: Accelerator type -> the regional quota metric that limits it.
QUOTA_METRICS: dict[str, str] = {
    "nvidia-l4": "NVIDIA_L4_GPUS",
    "nvidia-tesla-t4": "NVIDIA_T4_GPUS",
    "nvidia-tesla-v100": "NVIDIA_V100_GPUS",
    "nvidia-tesla-a100": "NVIDIA_A100_GPUS",
    "nvidia-a100-80gb": "NVIDIA_A100_80GB_GPUS",
    "nvidia-h100-80gb": "NVIDIA_H100_GPUS",
}
#: Predefined dual-region buckets -> their regions (configurable dual-regions list theirs in
#: ``customPlacementConfig.dataLocations``).
DUAL_REGIONS: dict[str, frozenset[str]] = {
    "ASIA1": frozenset({"ASIA-NORTHEAST1", "ASIA-NORTHEAST2"}),
    "EUR4": frozenset({"EUROPE-NORTH1", "EUROPE-WEST4"}),
    "NAM4": frozenset({"US-CENTRAL1", "US-EAST1"}),
}
KNOWN_CREDENTIAL_TYPES = (
    "authorized_user",
    "external_account",
    "external_account_authorized_user",
    "impersonated_service_account",
    "gdch_service_account",
)
_ERROR_CODE = re.compile(r"[A-Za-z_]{1,48}")
MAX_AGGREGATED_PAGES = 5


@dataclass
class _Settings:
    project: str
    key_text: str
    region: str
    zone: str | None
    bucket: str | None
    machine_type: str | None
    gpu: str | None  # GPU catalog name
    accelerator: str | None  # Compute Engine accelerator type
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Session:
    """One check's token and what it learnt on the way."""

    settings: _Settings
    http: HttpClient
    token: str
    email: str
    detail: dict[str, Any]

    @property
    def warnings(self) -> list[str]:
        return self.settings.warnings


class GcpAdapter:
    """Validation and health of a Google Cloud service account and project."""

    async def validate(self, ctx: CheckContext) -> Outcome:
        s = _settings(ctx)
        async with ctx.http(auth_fields=[KEY_FIELD]) as http:
            session = await _sign_in(ctx, http, s)
            checked = await _permissions(ctx, session)
            offers = await _accelerator_offers(ctx, session)
            where = _require_gpu_offer(session, offers)
            bucket_text = await _bucket_location(ctx, session) if s.bucket else None
        d = session.detail
        d["permissions_checked"] = checked
        parts = [
            f"Google Cloud accepted the key of {session.email} for project {s.project}",
            f"all {checked} permissions a launch needs are granted",
            "the Compute Engine API is on",
        ]
        if where:
            parts.append(where)
        parts.append(bucket_text or "no Cloud Storage bucket is set (jobs need one to stage files)")
        if session.warnings:
            parts.append("note: " + " ".join(session.warnings))
            d["warnings"] = list(session.warnings)
        return Outcome("; ".join(parts), detail=d)

    async def health(self, ctx: CheckContext) -> Outcome:
        s = _settings(ctx)
        async with ctx.http(auth_fields=[KEY_FIELD]) as http:
            session = await _sign_in(ctx, http, s)
            offers = await _accelerator_offers(ctx, session)
            quota = await _gpu_quota(ctx, session)
        d = session.detail
        if session.warnings:
            d["warnings"] = list(session.warnings)
        if s.accelerator is not None:
            zones = _zones_offering(s, offers)
            d["zones_offering_gpu"] = zones
            if not zones:
                failure = _not_offered(s)
                return Outcome(
                    f"Google Cloud answers, but {failure.message}",
                    detail={**d, **failure.detail},
                    health="degraded",
                    code="misconfigured",
                )
        gpu = _gpu_label(s)
        if quota is not None:
            limit, usage = quota
            free = limit - usage
            if free < 1:
                return Outcome(
                    f"Google Cloud answers, but project {s.project} has no {gpu} GPU quota "
                    f"left in {s.region} ({usage:g} of {limit:g} in use); request a quota "
                    f"increase (IAM & Admin → Quotas, {QUOTA_METRICS.get(s.accelerator or '')} "
                    f"in {s.region}) before launching",
                    detail=d,
                    health="degraded",
                    code="quota_exhausted",
                )
            msg = f"{free:g} {gpu} GPU{'s' if free != 1 else ''} of quota free in {s.region}"
        elif s.accelerator is not None:
            msg = f"{gpu} offered in {', '.join(d.get('zones_offering_gpu', []))}"
        else:
            msg = "the Compute Engine API answers"
        return Outcome(
            f"Google Cloud answers for {session.email} (project {s.project}); {msg}", detail=d
        )


# --------------------------------------------------------------------------- settings, key


def _settings(ctx: CheckContext) -> _Settings:
    project, key_text = ctx.require("project_id", KEY_FIELD)
    region = ctx.value("region") or ctx.profile.field("region").default or ""
    zone = ctx.value("zone")
    if zone is not None and zone.rsplit("-", 1)[0] != region:
        raise CheckFailure(
            "misconfigured",
            f"Google Cloud: zone {zone} is not in region {region}; pick a zone of {region} "
            f"(such as {region}-a or {region}-b) or change the region",
            fields=["zone", "region"],
        )
    machine_type = ctx.value("machine_type") or ctx.profile.field("machine_type").default
    warnings: list[str] = []
    gpu = ctx.provider.gpu or ctx.profile.default_gpu
    family_gpu = next(
        (
            g
            for prefix, g in MACHINE_FAMILY_GPUS
            if machine_type and machine_type.startswith(prefix)
        ),
        None,
    )
    if family_gpu is not None:
        if family_gpu != gpu:
            warnings.append(
                f"Machine type {machine_type} comes with the {family_gpu}, not the {gpu} set "
                f"for this provider; the {family_gpu} was looked for."
            )
        gpu = family_gpu
    accelerator = ACCELERATORS.get(gpu)
    if accelerator is None:
        warnings.append(
            f"The {gpu} is not a Compute Engine GPU, so whether a zone offers it was not checked."
        )
    return _Settings(
        project=project,
        key_text=key_text,
        region=region,
        zone=zone,
        bucket=ctx.value("bucket"),
        machine_type=machine_type,
        gpu=gpu,
        accelerator=accelerator,
        warnings=warnings,
    )


def _key_failure(code: str, what: str) -> CheckFailure:
    return CheckFailure(code, f"Google Cloud: {what}", fields=[KEY_FIELD])


def _parse_key(text: str) -> dict[str, Any]:
    """The key's fields, or ``misconfigured`` saying what is wrong — never quoting it."""
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _key_failure(
            "misconfigured",
            f"the service account key is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}); pick the downloaded .json key file again, or paste its whole "
            "content unchanged",
        ) from None
    if not isinstance(info, dict):
        raise _key_failure(
            "misconfigured",
            "the service account key is not a JSON object; pick the downloaded .json key file",
        )
    kind = info.get("type")
    if kind != "service_account":
        what = (
            (f"a {kind!r} credential" if kind in KNOWN_CREDENTIAL_TYPES else "not a credential")
            if kind is not None
            else 'missing its "type"'
        )
        raise _key_failure(
            "misconfigured",
            f"the JSON given is {what}, not a service account key; create one in the Google "
            "Cloud console (IAM & Admin → Service accounts → your account → Keys → Add key → "
            "JSON) and pick that file",
        )
    missing = [
        f
        for f in ("client_email", "private_key", "private_key_id")
        if not isinstance(info.get(f), str) or not info.get(f)
    ]
    if missing:
        raise _key_failure(
            "misconfigured",
            f"the service account key lacks {', '.join(missing)}; it was cut or edited — pick "
            "the downloaded .json key file again",
        )
    universe = info.get("universe_domain")
    if universe not in (None, "googleapis.com"):
        raise _key_failure(
            "misconfigured",
            "the service account key belongs to another Google Cloud universe than "
            "googleapis.com, which this app does not support",
        )
    return info


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token_url(ctx: CheckContext, info: dict[str, Any]) -> str:
    configured = ctx.endpoint("token_uri")
    if configured is not None:
        return configured
    own = info.get("token_uri")
    if not isinstance(own, str) or not own:
        raise _key_failure(
            "misconfigured",
            "the service account key lacks token_uri; pick the downloaded .json key file again",
        )
    parts = urlsplit(own)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not (
        host == "accounts.google.com" or host.endswith(".googleapis.com")
    ):
        raise _key_failure(
            "misconfigured",
            "the service account key's token_uri is not a Google address, so its signed grant "
            "was not sent there; use the key file Google gave you (to go through a proxy, set "
            "the token_uri endpoint in the provider's settings instead)",
        )
    return own


def _sign_assertion(info: dict[str, Any], token_url: str) -> tuple[str, str | None]:
    """Blocking (runs in the executor): parse the key and sign the grant assertion.

    Returns (assertion, the key's project id). Any failure to read the private key is an
    ``invalid_credentials`` without the library's text (which could quote key material).
    """
    from google.auth import jwt
    from google.oauth2 import service_account

    try:
        creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            {**info, "token_uri": token_url}, scopes=[SCOPE]
        )
        now = int(time.time())
        payload = {
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
            "iss": creds.service_account_email,
            "aud": GOOGLE_TOKEN_AUDIENCE,
            "scope": SCOPE,
        }
        assertion = jwt.encode(creds.signer, payload)  # type: ignore[no-untyped-call]
    except Exception:  # noqa: BLE001 - never surface a text that may quote the key
        raise _key_failure(
            "invalid_credentials",
            "the private key in the service account key cannot be read (it is damaged or "
            "incomplete); download a new JSON key for the account and pick that file",
        ) from None
    text = assertion.decode("ascii") if isinstance(assertion, bytes) else str(assertion)
    return text, creds.project_id


# --------------------------------------------------------------------------- HTTP helpers


def _check_address(url: str, name: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname or "")):
        return
    raise CheckFailure(
        "misconfigured",
        f"Google Cloud: the {name} endpoint {parts.scheme}://{parts.hostname} is not https; "
        "credentials are only sent over https (plain http only to this computer)",
        fields=["base_url"] if name == "compute" else [],
    )


def _endpoint(ctx: CheckContext, name: str) -> str:
    url = ctx.endpoint(name)
    if url is None:
        raise CheckFailure(
            "misconfigured",
            f"Google Cloud: the {name} endpoint is not set; remove the empty override from the "
            "provider's settings",
            fields=["base_url"] if name == "compute" else [],
        )
    _check_address(url, name)
    return url


async def _call(
    session: _Session,
    method: str,
    url: str,
    endpoint: str,
    *,
    ok: Iterable[int] = (200,),
    **kwargs: Any,
) -> httpx.Response:
    """An authorised API call; address problems blame ``base_url`` only for ``compute``."""
    headers = {"Authorization": f"Bearer {session.token}", "Accept": "application/json"}
    try:
        return await session.http.request(method, url, ok=ok, headers=headers, **kwargs)
    except CheckFailure as failure:
        if endpoint != "compute" and failure.fields == ["base_url"]:
            failure.fields = []
        raise


@dataclass
class _GoogleError:
    status: str | None = None
    reasons: list[str] = field(default_factory=list)
    service: str | None = None
    activation_url: str | None = None
    message: str = ""


def _google_error(resp: httpx.Response) -> _GoogleError:
    """The parts of a Google API error body (``{"error": {...}}``) that decide what it means."""
    out = _GoogleError()
    try:
        body = resp.json()
    except ValueError:
        return out
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return out
    if isinstance(err.get("status"), str):
        out.status = err["status"]
    if isinstance(err.get("message"), str):
        out.message = err["message"]
    for item in err.get("errors") or []:
        if isinstance(item, dict) and isinstance(item.get("reason"), str):
            out.reasons.append(item["reason"])
    for item in err.get("details") or []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("reason"), str):
            out.reasons.append(item["reason"])
        meta = item.get("metadata")
        if isinstance(meta, dict):
            if isinstance(meta.get("service"), str):
                out.service = meta["service"]
            url = meta.get("activationUrl")
            if isinstance(url, str) and urlsplit(url).hostname in (
                "console.developers.google.com",
                "console.cloud.google.com",
            ):
                out.activation_url = url
    return out


def _api_disabled(err: _GoogleError) -> bool:
    return any(r in ("SERVICE_DISABLED", "accessNotConfigured") for r in err.reasons)


API_NAMES = {
    "compute.googleapis.com": "Compute Engine API",
    "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API",
    "storage.googleapis.com": "Cloud Storage API",
    "storage-api.googleapis.com": "Cloud Storage API",
}


def _disabled_failure(session: _Session, err: _GoogleError, default_service: str) -> CheckFailure:
    service = err.service if err.service in API_NAMES else default_service
    api = API_NAMES[service]
    project = session.settings.project
    url = err.activation_url or (
        f"https://console.cloud.google.com/apis/library/{service}?project={project}"
    )
    return CheckFailure(
        "misconfigured",
        f"Google Cloud: the {api} is not enabled for project {project}; enable the {api} "
        f"({url}), wait a few minutes, then check again",
        fields=["project_id"],
        detail={**session.detail, "api_disabled": service, "activation_url": url},
    )


def _json(session: _Session, resp: httpx.Response) -> dict[str, Any]:
    body = session.http.json(resp)
    if not isinstance(body, dict):
        raise CheckFailure(
            "error", "Google Cloud answered with something other than a JSON object; try again"
        )
    return body


# --------------------------------------------------------------------------- token


async def _sign_in(ctx: CheckContext, http: HttpClient, s: _Settings) -> _Session:
    info = _parse_key(s.key_text)
    token_url = _token_url(ctx, info)
    _check_address(token_url, "token_uri")
    assertion, key_project = await ctx.run_blocking(_sign_assertion, info, token_url)
    email = str(info["client_email"])
    detail: dict[str, Any] = {
        "identity": email,
        "service_account": email,
        "key_id": str(info["private_key_id"]),
        "key_project": key_project,
        "project": s.project,
        "region": s.region,
        "zone": s.zone,
        "bucket": s.bucket,
        "machine_type": s.machine_type,
        "gpu": s.gpu,
        "accelerator": s.accelerator,
    }
    if key_project and key_project != s.project:
        s.warnings.append(
            f"The key was made in project {key_project} but this provider uses project "
            f"{s.project}; that works when the account holds roles in {s.project}."
        )
    try:
        resp = await http.request(
            "POST",
            token_url,
            ok=(200, 400, 401, 403),
            data={"grant_type": JWT_BEARER, "assertion": assertion},
            headers={"Accept": "application/json"},
        )
    except CheckFailure as failure:
        if failure.fields == ["base_url"]:
            failure.fields = []
        raise
    session = _Session(settings=s, http=http, token="", email=email, detail=detail)
    body: Any
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code == 200:
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise CheckFailure(
                "error",
                "Google's token service answered without an access token; is the token_uri "
                "endpoint right?",
                detail=detail,
            )
        session.token = token
        return session
    raise _token_failure(resp.status_code, body, email, detail)


def _token_failure(status: int, body: Any, email: str, detail: dict[str, Any]) -> CheckFailure:
    error = body.get("error") if isinstance(body, dict) else None
    desc = body.get("error_description") if isinstance(body, dict) else None
    code = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else None
    text = desc.lower() if isinstance(desc, str) else ""
    detail = {**detail, "google_error": code, "http_status": status}
    if code == "invalid_grant" and ("timeframe" in text or " iat " in f" {text} "):
        return CheckFailure(
            "misconfigured",
            "Google Cloud refused the sign-in because this computer's clock is wrong (the "
            "signed grant looked expired or from the future); set the date and time to "
            "automatic, then check again",
            detail=detail,
        )
    if code == "invalid_grant" and "account not found" in text:
        return _key_failure_with(
            "the service account " + email + " no longer exists (it was deleted); create a "
            "service account and a JSON key for it, and pick that key",
            detail,
        )
    if code == "invalid_grant":
        return _key_failure_with(
            f"Google rejected the key of {email}: it was revoked or deleted (or its private "
            "key does not match its key id); create a new JSON key for the account (IAM & "
            "Admin → Service accounts → Keys → Add key) and pick that file",
            detail,
        )
    if code in ("invalid_client", "unauthorized_client", "disabled_client", "deleted_client") or (
        status == 401
    ):
        return _key_failure_with(
            f"Google rejected the key of {email}: the service account is disabled or was "
            "deleted; enable it (IAM & Admin → Service accounts) or use another account's key",
            detail,
        )
    return CheckFailure(
        "error",
        f"Google's token service refused the sign-in ({status}"
        + (f", {code}" if code else "")
        + "); try again later",
        detail=detail,
    )


def _key_failure_with(what: str, detail: dict[str, Any]) -> CheckFailure:
    return CheckFailure(
        "invalid_credentials", f"Google Cloud: {what}", fields=[KEY_FIELD], detail=detail
    )


# --------------------------------------------------------------------------- permissions


async def _permissions(ctx: CheckContext, session: _Session) -> int:
    """Test every permission a launch needs; ``permission_denied`` naming the missing ones."""
    s = session.settings
    rm = _endpoint(ctx, "resourcemanager")
    wanted = [*PROJECT_PERMISSIONS, *SOFT_PERMISSIONS]
    resp = await _call(
        session,
        "POST",
        f"{rm}/v1/projects/{quote(s.project, safe='')}:testIamPermissions",
        "resourcemanager",
        ok=(200, 400, 403, 404),
        json={"permissions": wanted},
    )
    if resp.status_code != 200:
        err = _google_error(resp)
        if resp.status_code == 403 and _api_disabled(err):
            raise _disabled_failure(session, err, "cloudresourcemanager.googleapis.com")
        if resp.status_code == 403:
            raise CheckFailure(
                "permission_denied",
                f"Google Cloud: the service account {session.email} has no access to project "
                f"{s.project}, or there is no such project; check the Project ID (the ID, not "
                "the project's name or number), then grant the account a role in it (IAM & "
                "Admin → IAM → Grant access)",
                fields=["project_id", KEY_FIELD],
                detail=session.detail,
            )
        if resp.status_code == 400:
            raise CheckFailure(
                "error",
                "Google Cloud refused the permission test (400 Bad Request); try again later, "
                "and report it if it persists",
                detail={**session.detail, "google_message": err.message[:300]},
            )
        raise CheckFailure(
            "misconfigured",
            f"Google Cloud knows no project {s.project}; enter the project's ID (Google Cloud "
            "console → project picker, ID column)",
            fields=["project_id"],
            detail=session.detail,
        )
    granted = _granted(_json(session, resp))
    missing = [p for p in PROJECT_PERMISSIONS if p not in granted]
    bucket_missing: list[str] = []
    if s.bucket:
        bucket_missing = await _bucket_permissions(ctx, session)
    soft_missing = [p for p in SOFT_PERMISSIONS if p not in granted]
    if soft_missing:
        s.warnings.append(
            f"{', '.join(soft_missing)} is not granted on the project; launching a VM that runs "
            "as a service account needs it there or on that service account (the Service "
            "Account User role)."
        )
        session.detail["unverified_permissions"] = soft_missing
    all_missing = missing + bucket_missing
    if all_missing:
        where = []
        if missing:
            where.append(f"on project {s.project}: {', '.join(missing)}")
        if bucket_missing:
            where.append(f"on bucket {s.bucket}: {', '.join(bucket_missing)}")
        roles = []
        if missing:
            roles.append("Compute Instance Admin (v1) on the project")
        if bucket_missing:
            roles.append("a Storage role on the bucket that holds these")
        raise CheckFailure(
            "permission_denied",
            f"Google Cloud: the service account {session.email} lacks "
            f"{len(all_missing)} permission{'s' if len(all_missing) != 1 else ''} a launch "
            f"needs — {'; '.join(where)}. Grant them (e.g. {' and '.join(roles)}) in IAM & "
            "Admin → IAM, then validate again",
            fields=[KEY_FIELD],
            detail={
                **session.detail,
                "missing_permissions": all_missing,
                "missing_project_permissions": missing,
                "missing_bucket_permissions": bucket_missing,
            },
        )
    return len(PROJECT_PERMISSIONS) + (len(BUCKET_PERMISSIONS) if s.bucket else 0)


def _granted(body: dict[str, Any]) -> set[str]:
    perms = body.get("permissions", [])
    return {p for p in perms if isinstance(p, str)} if isinstance(perms, list) else set()


def _no_bucket(session: _Session) -> CheckFailure:
    b = session.settings.bucket
    return CheckFailure(
        "misconfigured",
        f"Google Cloud: there is no Cloud Storage bucket named {b}; check the name, or create "
        f"the bucket in {session.settings.region} (Cloud Storage → Buckets → Create)",
        fields=["bucket"],
        detail=session.detail,
    )


async def _bucket_permissions(ctx: CheckContext, session: _Session) -> list[str]:
    storage = _endpoint(ctx, "storage")
    bucket = quote(session.settings.bucket or "", safe="")
    resp = await _call(
        session,
        "GET",
        f"{storage}/storage/v1/b/{bucket}/iam/testPermissions",
        "storage",
        ok=(200, 403, 404),
        params=[("permissions", p) for p in BUCKET_PERMISSIONS],
    )
    if resp.status_code == 404:
        raise _no_bucket(session)
    if resp.status_code == 403:
        err = _google_error(resp)
        if _api_disabled(err):
            raise _disabled_failure(session, err, "storage.googleapis.com")
        return list(BUCKET_PERMISSIONS)
    granted = _granted(_json(session, resp))
    return [p for p in BUCKET_PERMISSIONS if p not in granted]


# --------------------------------------------------------------------------- compute


async def _accelerator_offers(ctx: CheckContext, session: _Session) -> dict[str, list[str]]:
    """Zone -> accelerator types offered there (the zone, or every zone of the project)."""
    s = session.settings
    compute = _endpoint(ctx, "compute")
    base = f"{compute}/compute/v1/projects/{quote(s.project, safe='')}"
    offers: dict[str, list[str]] = {}
    if s.zone:
        resp = await _call(
            session,
            "GET",
            f"{base}/zones/{quote(s.zone, safe='')}/acceleratorTypes",
            "compute",
            ok=(200, 400, 403, 404),
        )
        _compute_failure(session, resp)
        offers[s.zone] = _type_names(_json(session, resp).get("items"))
    else:
        token: str | None = None
        for _ in range(MAX_AGGREGATED_PAGES):
            params = {"pageToken": token} if token else None
            resp = await _call(
                session,
                "GET",
                f"{base}/aggregated/acceleratorTypes",
                "compute",
                ok=(200, 400, 403, 404),
                params=params,
            )
            _compute_failure(session, resp)
            body = _json(session, resp)
            items = body.get("items")
            if isinstance(items, dict):
                for scope, entry in items.items():
                    if isinstance(scope, str) and scope.startswith("zones/"):
                        names = _type_names(
                            entry.get("acceleratorTypes") if isinstance(entry, dict) else None
                        )
                        offers.setdefault(scope[len("zones/") :], []).extend(names)
            next_token = body.get("nextPageToken")
            if not isinstance(next_token, str) or not next_token:
                break
            token = next_token
    session.detail["zones_checked"] = sorted(z for z in offers if z.rsplit("-", 1)[0] == s.region)
    return offers


def _type_names(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [i["name"] for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)]


def _compute_failure(session: _Session, resp: httpx.Response) -> None:
    if resp.status_code == 200:
        return
    s = session.settings
    err = _google_error(resp)
    if resp.status_code == 403 and _api_disabled(err):
        raise _disabled_failure(session, err, "compute.googleapis.com")
    if resp.status_code == 403:
        raise CheckFailure(
            "permission_denied",
            f"Google Cloud: the service account {session.email} may not list GPU types in "
            f"project {s.project} (compute.acceleratorTypes.list); grant it the Compute "
            "Instance Admin (v1) role",
            fields=[KEY_FIELD],
            detail=session.detail,
        )
    if s.zone and f"zones/{s.zone}" in err.message:
        raise CheckFailure(
            "misconfigured",
            f"Google Cloud has no zone {s.zone}; pick a zone of {s.region} (such as {s.region}-b)",
            fields=["zone"],
            detail=session.detail,
        )
    raise CheckFailure(
        "misconfigured",
        f"Compute Engine knows no project {s.project} (answer {resp.status_code}); check the "
        "Project ID",
        fields=["project_id"],
        detail=session.detail,
    )


def _zones_offering(s: _Settings, offers: dict[str, list[str]]) -> list[str]:
    return sorted(
        z
        for z, types in offers.items()
        if z.rsplit("-", 1)[0] == s.region and s.accelerator in types
    )


def _gpu_label(s: _Settings) -> str:
    return f"{s.gpu} ({s.accelerator})" if s.accelerator else str(s.gpu)


def _not_offered(s: _Settings) -> CheckFailure:
    gpu = _gpu_label(s)
    if s.zone:
        return CheckFailure(
            "misconfigured",
            f"the {gpu} is not offered in zone {s.zone}; pick a zone of {s.region} that offers "
            "it (https://cloud.google.com/compute/docs/gpus/gpu-regions-zones), or leave the "
            "zone empty to have every zone of the region looked at",
            fields=["zone"],
            detail={"zones_offering_gpu": []},
        )
    return CheckFailure(
        "misconfigured",
        f"no zone of region {s.region} offers the {gpu}; pick a region that does "
        "(https://cloud.google.com/compute/docs/gpus/gpu-regions-zones)",
        fields=["region"],
        detail={"zones_offering_gpu": []},
    )


def _require_gpu_offer(session: _Session, offers: dict[str, list[str]]) -> str | None:
    s = session.settings
    if s.accelerator is None:
        return None
    zones = _zones_offering(s, offers)
    session.detail["zones_offering_gpu"] = zones
    if not zones:
        failure = _not_offered(s)
        failure.message = f"Google Cloud: {failure.message}"
        failure.detail = {**session.detail, **failure.detail}
        raise failure
    return f"the {_gpu_label(s)} is offered in {', '.join(zones)}"


async def _gpu_quota(ctx: CheckContext, session: _Session) -> tuple[float, float] | None:
    """(limit, usage) of the region's quota for the GPU; None when it cannot be read."""
    s = session.settings
    metric = QUOTA_METRICS.get(s.accelerator or "")
    if metric is None:
        return None
    compute = _endpoint(ctx, "compute")
    resp = await _call(
        session,
        "GET",
        f"{compute}/compute/v1/projects/{quote(s.project, safe='')}/regions/"
        f"{quote(s.region, safe='')}",
        "compute",
        ok=(200, 403, 404),
    )
    if resp.status_code != 200:
        session.detail["gpu_quota"] = "not readable"
        return None
    for q in _json(session, resp).get("quotas") or []:
        if isinstance(q, dict) and q.get("metric") == metric:
            limit, usage = q.get("limit"), q.get("usage")
            if isinstance(limit, int | float) and isinstance(usage, int | float):
                session.detail["gpu_quota"] = {"metric": metric, "limit": limit, "usage": usage}
                return float(limit), float(usage)
    session.detail["gpu_quota"] = f"{metric} not listed for {s.region}"
    return None


# --------------------------------------------------------------------------- storage


async def _bucket_location(ctx: CheckContext, session: _Session) -> str:
    """Where the bucket is; ``misconfigured`` naming ``bucket`` unless it is in the region."""
    s = session.settings
    storage = _endpoint(ctx, "storage")
    resp = await _call(
        session,
        "GET",
        f"{storage}/storage/v1/b/{quote(s.bucket or '', safe='')}",
        "storage",
        ok=(200, 403, 404),
    )
    if resp.status_code == 404:
        raise _no_bucket(session)
    if resp.status_code == 403:
        raise CheckFailure(
            "permission_denied",
            f"Google Cloud: the service account {session.email} may not read bucket "
            f"{s.bucket} (storage.buckets.get)",
            fields=[KEY_FIELD],
            detail={**session.detail, "missing_permissions": ["storage.buckets.get"]},
        )
    body = _json(session, resp)
    location = str(body.get("location") or "").upper()
    kind = str(body.get("locationType") or "").lower()
    region = s.region.upper()
    session.detail["bucket_location"] = location
    session.detail["bucket_location_type"] = kind or None
    placement = body.get("customPlacementConfig")
    data_locations = (
        {str(x).upper() for x in placement.get("dataLocations") or []}
        if isinstance(placement, dict)
        else set()
    )
    if kind == "dual-region" or data_locations:
        regions = data_locations or DUAL_REGIONS.get(location)
        if regions is None:
            s.warnings.append(
                f"Bucket {s.bucket} is in dual-region {location}, whose regions this app does "
                f"not know; make sure {s.region} is one of them."
            )
            return f"bucket {s.bucket} is in dual-region {location}"
        if region in regions:
            return f"bucket {s.bucket} is in dual-region {location}, which includes {s.region}"
        raise _not_co_located(session, f"dual-region {location} ({', '.join(sorted(regions))})")
    if kind == "multi-region" or (kind == "" and "-" not in location):
        raise _not_co_located(session, f"multi-region {location}", multi=True)
    if location == region:
        return f"bucket {s.bucket} is in {location}"
    raise _not_co_located(session, f"region {location}")


def _not_co_located(session: _Session, where: str, *, multi: bool = False) -> CheckFailure:
    s = session.settings
    hint = (
        "a multi-region bucket keeps data in no one region, so VMs read it across regions "
        "(charged as data transfer)"
        if multi
        else "VMs would read and write it across regions (slower, and charged as data transfer)"
    )
    return CheckFailure(
        "misconfigured",
        f"Google Cloud: bucket {s.bucket} is in {where}, but this provider runs in "
        f"{s.region}: {hint}. Keep Cloud Storage and the jobs co-located — use a bucket in "
        f"{s.region}"
        + ("" if multi else ", or change the provider's region to the bucket's")
        + " (a bucket's location cannot be changed after it is created)",
        fields=["bucket"],
        detail=session.detail,
    )


ADAPTER = GcpAdapter()
