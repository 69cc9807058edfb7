"""The SDK calls of a check, each on a client made just before it with timeouts and retries cut
to what is left of the deadline: STS (who the key is), EC2 (the instance type and its offer),
S3 (the bucket's region) and Service Quotas (the family's On-Demand vCPU quota)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from comfyvn_gui.providers.base import CheckFailure
from comfyvn_gui.providers.lazy import LazyImport

from .errors import _DENIED, _INVALID_KEY, _call, _client_failure, _error, _transport_failure
from .session import (
    _LOCK,
    BACKOFF_ALLOWANCE_S,
    CONNECT_TIMEOUT_MAX_S,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_REGION,
    MIN_CALL_BUDGET_S,
    PER_ATTEMPT_MAX_S,
    QUOTA_BUDGET_S,
    RETRY_MIN_BUDGET_S,
    TOTAL_MAX_ATTEMPTS,
    _Job,
    shared_session,
)

if TYPE_CHECKING:
    import botocore.config
    import botocore.exceptions
    from botocore.client import BaseClient
else:
    botocore = LazyImport("botocore")

#: "Running On-Demand <family> instances" vCPU quotas (service code ``ec2``), by the family
#: prefix of the instance type; longer prefixes first.
QUOTA_CODES: tuple[tuple[str, str, str], ...] = (
    ("inf", "L-1945791B", "Running On-Demand Inf instances"),
    ("trn", "L-2C3B7624", "Running On-Demand Trn instances"),
    ("dl", "L-6E869C2A", "Running On-Demand DL instances"),
    ("vt", "L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("g", "L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("p", "L-417A185B", "Running On-Demand P instances"),
    ("f", "L-74FC7D96", "Running On-Demand F instances"),
    ("x", "L-7295265B", "Running On-Demand X instances"),
    *(
        (c, "L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances")
        for c in "acdhimrtz"
    ),
)

#: Families with quotas of their own (Mac dedicated hosts, HPC, high-memory): not looked up.
_OWN_QUOTA_FAMILIES = ("mac", "hpc", "u-", "u7")


def _client(
    job: _Job, service: str, *, region: str | None = None, budget: float | None = None
) -> BaseClient:
    """A client whose timeouts and retries fit in the time left (or ``budget``)."""
    session = shared_session()
    with _LOCK:
        session.get_service_data(service)  # a cold model load is not counted in the timeouts
        left = job.remaining() if budget is None else min(job.remaining(), budget)
        if left <= MIN_CALL_BUDGET_S:
            raise TimeoutError
        attempts = TOTAL_MAX_ATTEMPTS if left >= RETRY_MIN_BUDGET_S else 1
        per_attempt = min(
            PER_ATTEMPT_MAX_S, (left - (BACKOFF_ALLOWANCE_S if attempts > 1 else 0.0)) / attempts
        )
        connect = min(CONNECT_TIMEOUT_MAX_S, per_attempt / 3)
        config = botocore.config.Config(
            connect_timeout=connect,
            read_timeout=max(per_attempt - connect, MIN_CALL_BUDGET_S),
            retries={"total_max_attempts": attempts, "mode": "standard"},
            ignore_configured_endpoint_urls=True,
            user_agent_appid="comfyvn-gui",
            s3={"addressing_style": "path"} if job.endpoint else None,
        )
        try:
            return session.create_client(
                service,
                region_name=region or job.region,
                endpoint_url=job.endpoint,
                aws_access_key_id=job.access_key,
                aws_secret_access_key=job.secret_key,
                verify=job.verify,
                config=config,
            )
        except Exception as exc:
            mapped = _transport_failure(job, exc)  # a malformed region or endpoint
            if mapped is None:
                raise
            raise mapped from None


# --------------------------------------------------------------------------- the calls


def _identity(job: _Job) -> dict[str, Any]:
    """sts:GetCallerIdentity -> identity detail. Raises CheckFailure."""
    sts = _client(job, "sts")
    try:
        who = sts.get_caller_identity()
    except botocore.exceptions.ClientError as exc:
        failure = _client_failure(job, exc, "sts:GetCallerIdentity")
        code = _error(exc)[0]
        if code in _INVALID_KEY and job.region != DEFAULT_REGION:
            failure = _other_region(job, failure)
        raise failure from None
    except Exception as exc:
        mapped = _transport_failure(job, exc)
        if mapped is None:
            raise
        raise mapped from None
    arn = str(who.get("Arn") or "")
    return {
        "identity": arn,
        "arn": arn,
        "account": who.get("Account"),
        "user_id": who.get("UserId"),
    }


def _other_region(job: _Job, failure: CheckFailure) -> CheckFailure:
    """The key is unknown in job.region: is it known in us-east-1 (region not enabled)?"""
    try:
        _client(job, "sts", region=DEFAULT_REGION).get_caller_identity()
    except (botocore.exceptions.ClientError, TimeoutError):
        return failure
    except Exception:  # noqa: BLE001 - only a second opinion
        return failure
    return CheckFailure(
        "misconfigured",
        f"{job.name} accepts the access key in {DEFAULT_REGION} but not in {job.region}: the "
        "region is not enabled for this account (Account → AWS Regions), or belongs to another "
        "partition (GovCloud, China). Pick a region the account can use",
        fields=["region"],
    )


def _offered(job: _Job, ec2: BaseClient) -> tuple[bool, float]:
    """Is the instance type offered in the region? Also the call's latency in ms."""
    started = time.perf_counter()
    answer = _call(
        job,
        "ec2:DescribeInstanceTypeOfferings",
        ec2.describe_instance_type_offerings,
        LocationType="region",
        Filters=[{"Name": "instance-type", "Values": [job.instance_type]}],
    )
    latency = (time.perf_counter() - started) * 1000
    offers = answer.get("InstanceTypeOfferings") or []
    return any(o.get("InstanceType") == job.instance_type for o in offers), latency


def _type_info(job: _Job, ec2: BaseClient) -> dict[str, Any] | None:
    """DescribeInstanceTypes of the configured type; None if AWS does not know it."""
    try:
        answer = ec2.describe_instance_types(InstanceTypes=[job.instance_type])
    except botocore.exceptions.ClientError as exc:
        if _error(exc)[0] in ("InvalidInstanceType", "InvalidParameterValue"):
            return None
        raise _client_failure(job, exc, "ec2:DescribeInstanceTypes") from None
    except Exception as exc:
        mapped = _transport_failure(job, exc)
        if mapped is None:
            raise
        raise mapped from None
    types = answer.get("InstanceTypes") or []
    return types[0] if types else None


def _instance_type(job: _Job) -> tuple[dict[str, Any], float]:
    """The type's detail (GPUs, vCPUs, memory) and the offering call's latency (ms)."""
    ec2 = _client(job, "ec2")
    offered, latency = _offered(job, ec2)
    info = _type_info(job, ec2)
    if info is None:
        raise CheckFailure(
            "misconfigured",
            f"{job.name}: {job.instance_type!r} is not an EC2 instance type; check the spelling "
            f"(for example {DEFAULT_INSTANCE_TYPE}, one NVIDIA A10G with 24 GB)",
            fields=["instance_type"],
        )
    if not offered:
        raise CheckFailure(
            "misconfigured",
            f"{job.name}: {job.instance_type} is not offered in {job.region}; pick a region "
            "that has it, or another instance type",
            fields=["instance_type", "region"],
        )
    return _describe_type(info), latency


def _describe_type(info: dict[str, Any]) -> dict[str, Any]:
    gpus = []
    for gpu in (info.get("GpuInfo") or {}).get("Gpus") or []:
        mib = (gpu.get("MemoryInfo") or {}).get("SizeInMiB")
        name = str(gpu.get("Name") or "")
        gpus.append(
            {
                "name": " ".join(x for x in (gpu.get("Manufacturer"), name) if x),
                "count": gpu.get("Count") or 1,
                "vram_gb": _vendor_gb(name, mib) if isinstance(mib, int | float) else None,
                "vram_mib_reported": mib,
            }
        )
    mem = (info.get("MemoryInfo") or {}).get("SizeInMiB")
    return {
        "instance_type": info.get("InstanceType"),
        "gpus": gpus,
        "vcpus": (info.get("VCpuInfo") or {}).get("DefaultVCpus"),
        "memory_gb": round(mem / 1024, 1) if isinstance(mem, int | float) else None,
    }


def _vendor_gb(name: str, mib: float) -> float:
    """GB as the vendor states it (docs/architecture.md): AWS reports the memory left after ECC
    (22,888 MiB for a 24 GB A10G), so a catalog GPU of that name whose figure is at most 10 %
    above AWS's gives the vendor's number; otherwise AWS's own, in GiB."""
    from comfyvn_gui.core.catalog import load_catalog

    reported = mib / 1024
    try:
        spec = load_catalog().gpu(name)
    except Exception:  # noqa: BLE001 - the catalog is only a better label
        spec = None
    if spec is not None and reported <= spec.vram_gb <= reported * 1.1:
        return spec.vram_gb
    return round(reported, 1)


def _gpu_text(detail: dict[str, Any]) -> str:
    gpus = detail.get("gpus") or []
    if not gpus:
        return "no GPU"
    return ", ".join(
        f"{g['count']} x {g['name']}" + (f" {g['vram_gb']:g} GB" if g.get("vram_gb") else "")
        for g in gpus
    )


def _bucket(job: _Job) -> dict[str, Any]:
    """s3:GetBucketLocation of the bucket option; it must be in the instances' region."""
    bucket = job.bucket or ""
    s3 = _client(job, "s3")
    try:
        answer = s3.get_bucket_location(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        code, _, status = _error(exc)
        if code == "NoSuchBucket" or status == 404:
            raise CheckFailure(
                "misconfigured",
                f"{job.name}: there is no S3 bucket named {bucket!r}; check the name or create "
                f"the bucket in {job.region}",
                fields=["bucket"],
            ) from None
        if code in _DENIED or status == 403:
            raise CheckFailure(
                "permission_denied",
                f"{job.name}: the key may not read where bucket {bucket!r} is "
                f"(s3:GetBucketLocation, {code or status}); allow s3:GetBucketLocation on "
                f"arn:aws:s3:::{bucket}, or check that the bucket is yours",
                fields=["bucket"],
                detail={"missing_permission": "s3:GetBucketLocation"},
            ) from None
        raise _client_failure(job, exc, "s3:GetBucketLocation") from None
    except Exception as exc:
        mapped = _transport_failure(job, exc)
        if mapped is None:
            raise
        raise mapped from None
    where = answer.get("LocationConstraint") or "us-east-1"
    where = "eu-west-1" if where == "EU" else where
    if where != job.region:
        raise CheckFailure(
            "misconfigured",
            f"{job.name}: bucket {bucket!r} is in {where} but instances launch in {job.region}; "
            "every transfer between them would be charged. Use a bucket in "
            f"{job.region}, or set the region to {where}",
            fields=["bucket"],
            detail={"bucket_region": where},
        )
    return {"bucket": bucket, "bucket_region": where}


def quota_for(instance_type: str) -> tuple[str, str] | None:
    """(quota code, quota name) of the On-Demand vCPU quota an instance type draws on."""
    family = instance_type.split(".", 1)[0].lower()
    if family.startswith(_OWN_QUOTA_FAMILIES):
        return None
    for prefix, code, name in QUOTA_CODES:
        if family.startswith(prefix):
            return code, name
    return None


def _quota(job: _Job, vcpus: int | None) -> dict[str, Any]:
    """The family's On-Demand vCPU quota in the region; never raises (the quota is optional)."""
    found = quota_for(job.instance_type)
    if found is None:
        return {"status": "unknown", "reason": "no On-Demand vCPU quota known for this family"}
    code, name = found
    out: dict[str, Any] = {"code": code, "name": name, "needed_vcpus": vcpus}
    try:
        sq = _client(job, "service-quotas", budget=QUOTA_BUDGET_S)
        answer = sq.get_service_quota(ServiceCode="ec2", QuotaCode=code)
    except botocore.exceptions.ClientError as exc:
        err = _error(exc)[0]
        reason = {
            "AccessDeniedException": "the key may not call servicequotas:GetServiceQuota",
            "NoSuchResourceException": "Service Quotas has no value for it in this region",
        }.get(err, f"Service Quotas answered {err or 'an error'}")
        return {**out, "status": "unknown", "reason": reason}
    except Exception:  # noqa: BLE001 - a timeout or transport failure: unknown, not unhealthy
        return {**out, "status": "unknown", "reason": "Service Quotas did not answer in time"}
    value = (answer.get("Quota") or {}).get("Value")
    if not isinstance(value, int | float):
        return {**out, "status": "unknown", "reason": "Service Quotas sent no value"}
    out["vcpus"] = value
    enough = value >= (vcpus or 1)
    return {**out, "status": "ok" if enough else "exhausted"}
