"""What a launch needs, tested: the permissions on the project and the bucket, the GPU's offer
in the zone or region and its quota, and the bucket's location."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from comfyvn_gui.providers.base import CheckContext, CheckFailure

from .api import _api_disabled, _call, _disabled_failure, _endpoint, _google_error, _json
from .settings import KEY_FIELD, _Session, _Settings

if TYPE_CHECKING:
    import httpx

#: What dispatch's instances.insert / get / delete / aggregated list and the operation waits
#: need (providers/gcp/machines.py), as Compute Engine documents a create's permissions, plus
#: what these checks read. No service account is put on the VM, so neither
#: ``compute.instances.setServiceAccount`` nor ``iam.serviceAccounts.actAs`` is needed.
PROJECT_PERMISSIONS: tuple[str, ...] = (
    "compute.instances.create",
    "compute.instances.get",
    "compute.instances.list",
    "compute.instances.delete",
    "compute.instances.setMetadata",
    "compute.instances.setLabels",
    "compute.disks.create",
    "compute.subnetworks.use",
    "compute.subnetworks.useExternalIp",
    "compute.zoneOperations.get",
    "compute.acceleratorTypes.list",
    "compute.regions.get",
)
#: Permissions tested whose absence is only a warning (none since no VM runs as a service
#: account; ``iam.serviceAccounts.actAs`` was one: it can be granted on the account itself).
SOFT_PERMISSIONS: tuple[str, ...] = ()
BUCKET_PERMISSIONS: tuple[str, ...] = (
    "storage.buckets.get",
    "storage.objects.create",
    "storage.objects.get",
    "storage.objects.list",
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
MAX_AGGREGATED_PAGES = 5


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
