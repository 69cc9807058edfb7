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

The permissions a launch and its release need (:data:`PROJECT_PERMISSIONS`, tested on the
project; what :mod:`.machines` sends): create, read, list and delete the VM
(``compute.instances.create/get/list/delete``), its boot disk (``compute.disks.create``), its
start-up script and SSH key metadata (``compute.instances.setMetadata``), its labels
(``compute.instances.setLabels``), the default network with an external address to fetch
models (``compute.subnetworks.use`` and ``useExternalIp``), waiting for zone operations
(``compute.zoneOperations.get``), and what these checks read (``compute.acceleratorTypes.list``,
``compute.regions.get``). All are in the Compute Instance Admin (v1) role. The VM runs without
a service account (no Google credentials on it), so ``compute.instances.setServiceAccount`` and
``iam.serviceAccounts.actAs`` are not asked for (:data:`SOFT_PERMISSIONS`, warnings only, is
empty). With a bucket, :data:`BUCKET_PERMISSIONS` are tested on the bucket: read its metadata,
stage inputs and read results (``storage.buckets.get``, ``storage.objects.create/get/list``).

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

Layout: :mod:`.settings` (what a check works with), :mod:`.auth` (the key and the token),
:mod:`.api` (authorised calls and Google's error bodies), :mod:`.check` (permissions, GPU
offers and quota, the bucket); this module holds the adapter.
"""

from __future__ import annotations

from comfyvn_gui.providers.base import CheckContext, Outcome
from comfyvn_gui.providers.registry import register

from .auth import _sign_in
from .check import (
    BUCKET_PERMISSIONS,
    DUAL_REGIONS,
    MAX_AGGREGATED_PAGES,
    PROJECT_PERMISSIONS,
    QUOTA_METRICS,
    SOFT_PERMISSIONS,
    _accelerator_offers,
    _bucket_location,
    _gpu_label,
    _gpu_quota,
    _not_offered,
    _permissions,
    _require_gpu_offer,
    _zones_offering,
)
from .settings import ACCELERATORS, KEY_FIELD, MACHINE_FAMILY_GPUS, _settings

__all__ = [
    "ACCELERATORS",
    "BUCKET_PERMISSIONS",
    "DUAL_REGIONS",
    "KEY_FIELD",
    "MACHINE_FAMILY_GPUS",
    "MAX_AGGREGATED_PAGES",
    "PROJECT_PERMISSIONS",
    "QUOTA_METRICS",
    "SOFT_PERMISSIONS",
    "GcpAdapter",
]


@register("gcp")
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
