"""AWS EC2: the identity behind an access key, and the configured GPU instance type in a region.

What is sent (docs/providers.md; botocore's service models; the EC2 API error reference
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html):

* validate —

  1. ``sts:GetCallerIdentity`` in the configured region: ``Arn`` is the identity (``Account``,
     ``UserId`` go to the detail). It needs no IAM permission, so a failure here is about the key
     itself: ``InvalidClientTokenId`` / ``UnrecognizedClientException`` / ``InvalidAccessKeyId``
     name ``access_key``, ``SignatureDoesNotMatch`` names ``secret_key``. An unknown key in a
     region other than us-east-1 is asked once more in us-east-1: if the key is accepted there,
     the region is wrong for it (a region not enabled for the account, or a GovCloud / China
     region with a standard key) and the result is ``misconfigured`` naming ``region``.
  2. ``ec2:DescribeInstanceTypeOfferings`` (``LocationType=region``, filter ``instance-type`` =
     the configured type, default the profile's ``g5.xlarge``) proves ``ec2:Describe*`` and that
     the type is offered in the region; then ``ec2:DescribeInstanceTypes`` for its GPUs, vCPUs and
     memory. A type that does not exist (``InvalidInstanceType``) is ``misconfigured`` naming
     ``instance_type``; one that exists but is not offered in the region names ``instance_type``
     and ``region``. ``UnauthorizedOperation`` (AWS) / ``AccessDenied`` (moto) are
     ``permission_denied`` saying which action is missing; EC2's ``AuthFailure`` names
     ``access_key``.
  3. ``ec2:RunInstances`` with ``DryRun=True`` (:func:`.machines.dry_run`): the launch a job
     would send, with the ``ami_id`` option or the default AMI (``ec2:DescribeImages``), the
     network settings and tags from the provider. ``DryRunOperation`` proves the permission
     (users of launchers complain of "check passed but launch failed"); ``UnauthorizedOperation``
     (AWS) / ``AccessDenied`` (moto) is ``permission_denied``; no AMI found names ``ami_id``.
  4. With the ``bucket`` option: ``s3:GetBucketLocation``. A bucket in another region than the
     instances is ``misconfigured`` naming ``bucket`` (cross-region transfer is charged);
     ``NoSuchBucket`` too; ``AccessDenied`` is ``permission_denied`` naming ``bucket``.

* health — ``DescribeInstanceTypeOfferings`` (its latency is ``detail.latency_ms``) and
  ``DescribeInstanceTypes``; then, within at most :data:`QUOTA_BUDGET_S` seconds,
  ``servicequotas:GetServiceQuota`` for the family's "Running On-Demand ... instances" vCPU quota
  (:data:`QUOTA_CODES`) in the region. A quota below the type's vCPU count (0 on a new account
  for G and P) means nothing can be launched: ``unhealthy`` / ``quota_exhausted``. The quota is
  optional: no permission, no such quota or no answer in time leaves health ``healthy`` with
  ``detail.quota`` saying why it is unknown.

Other answers: throttling codes are ``rate_limited``; 5xx / ``ServiceUnavailable`` ``unreachable``;
``RequestExpired`` or an expired signature ``error`` (the computer's clock is off); a connect or
read timeout ``timeout``; ``EndpointConnectionError`` ``unreachable`` — or ``misconfigured``
naming ``region`` when the region is not one botocore knows and the SDK's own endpoints are used
(the regional host does not exist). AWS's own error text is never copied whole (it can echo the
request); at most its first sentence, with the key values removed.

Deadlines. Every SDK call runs in the executor (``ctx.run_blocking``, the ``aws`` lane), and each
client is created just before its call with botocore timeouts cut from what is left of the
check's deadline (counted on ``time.monotonic``, the event loop's clock, so waiting for a worker
counts): at most :data:`TOTAL_MAX_ATTEMPTS` attempts ("standard" retry mode), connect timeout at
most :data:`CONNECT_TIMEOUT_MAX_S`, one attempt at most :data:`PER_ATTEMPT_MAX_S`, and
``attempts * (connect + read) + backoff`` within the time left. A black-holed endpoint
therefore frees its worker by the deadline, or after 2 x 6 s + 1 s when the deadline is longer.
Not bounded: a DNS lookup that hangs (getaddrinfo has no timeout in urllib3).

Never ambient credentials or configuration. One module-level botocore ``Session`` is built with
every session variable stripped of its environment variable and config-file name
(``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``AWS_CONFIG_FILE``, ``AWS_ENDPOINT_URL*``,
``AWS_CA_BUNDLE``, ``AWS_DEFAULTS_MODE``, ``AWS_MAX_ATTEMPTS`` ... are not read),
``config_file`` / ``credentials_file`` set to ``os.devnull``, configured endpoint URLs ignored,
an empty credential resolver (no env, files, SSO, container or instance-metadata credentials)
and no bearer-token provider; every client gets the stored ``access_key`` / ``secret_key``
explicitly. Its data loader reads only botocore's bundled models (not ``~/.aws/models`` or
``AWS_DATA_PATH``). The system proxy settings (``HTTPS_PROXY``) still apply, as for httpx; the
app's ``network.ca_bundle``, when set, is the CA file botocore verifies with.

Reuse. A new botocore session per check parses ``endpoints.json`` and the EC2 service model
again: measured ~300 ms of CPU per check for its STS + EC2 clients, and a validation against
moto on loopback took 344 ms (median of 3 x 10) against 58 ms with the shared session, whose
loader caches the parsed models (~200 ms once per process, ~44 MiB kept). ``create_client`` on a
shared session is not documented as thread-safe, so it runs under a lock (CPU only, never
network I/O); each client is used by one thread.

Layout: :mod:`.session` (the shared botocore session and one check's settings),
:mod:`.errors` (botocore's failures in the result vocabulary), :mod:`.calls` (clients cut to
the deadline, and the STS, EC2, S3 and Service Quotas calls); this module holds the adapter.
"""

from __future__ import annotations

from typing import Any

from comfyvn_gui.providers.base import CheckContext, CheckFailure, Outcome
from comfyvn_gui.providers.registry import register

from .calls import QUOTA_CODES, _bucket, _gpu_text, _identity, _instance_type, _quota, quota_for
from .errors import _AUTH_FAILURE
from .session import (
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_REGION,
    _Job,
    _job,
    isolated_session,
    known_regions,
    shared_session,
)

__all__ = [
    "DEFAULT_INSTANCE_TYPE",
    "DEFAULT_REGION",
    "QUOTA_CODES",
    "AwsAdapter",
    "isolated_session",
    "known_regions",
    "quota_for",
    "shared_session",
]


def _validate_blocking(job: _Job, ami_option: str | None, meta: dict[str, Any]) -> Outcome:
    from .machines import dry_run

    detail = _identity(job)
    try:
        type_detail, latency = _instance_type(job)
        detail.update(type_detail, region=job.region, latency_ms=round(latency, 1))
        detail["launch"] = {"dry_run": "allowed", "ami_id": dry_run(job, ami_option, meta)}
        if job.bucket:
            detail.update(_bucket(job))
    except CheckFailure as failure:
        # The key works: say whose it is, so the right IAM user gets the permission.
        failure.detail.setdefault("identity", detail["identity"])
        if failure.code == "permission_denied":
            failure.message += f" (the key belongs to {detail['identity']})"
        raise
    message = (
        f"AWS accepted the access key ({detail['identity']}); {job.instance_type} "
        f"({_gpu_text(type_detail)}, {type_detail.get('vcpus')} vCPUs) is offered in {job.region}"
        f"; a DryRun launch of it from {detail['launch']['ami_id']} was allowed"
    )
    if job.bucket:
        message += f"; bucket {job.bucket} is in {job.region}"
    if not type_detail.get("gpus"):
        message += f". Note: {job.instance_type} has no GPU"
    return Outcome(message, detail=detail)


def _health_blocking(job: _Job) -> Outcome:
    try:
        type_detail, latency = _instance_type(job)
    except CheckFailure as failure:
        if failure.detail.get("aws_error") in _AUTH_FAILURE:
            # EC2 says AuthFailure for a wrong key and a wrong secret alike; STS tells them
            # apart (and raises the precise failure). Only asked when EC2 refused the key.
            _identity(job)
        raise
    detail: dict[str, Any] = {**type_detail, "region": job.region, "latency_ms": round(latency, 1)}
    quota = _quota(job, type_detail.get("vcpus"))
    detail["quota"] = quota
    if quota["status"] == "exhausted":
        return Outcome(
            f"{job.name}: the quota '{quota['name']}' in {job.region} is {quota['vcpus']:g} "
            f"vCPUs, and {job.instance_type} needs {quota['needed_vcpus']}: no instance can be "
            "launched. Request an increase in the Service Quotas console",
            detail=detail,
            health="unhealthy",
            code="quota_exhausted",
        )
    quota_text = (
        f"; quota {quota['vcpus']:g} vCPUs"
        if quota["status"] == "ok"
        else f"; vCPU quota unknown ({quota['reason']})"
    )
    return Outcome(
        f"{job.name} answers in {latency:.0f} ms; {job.instance_type} is offered in "
        f"{job.region}{quota_text}",
        detail=detail,
    )


@register("aws")
class AwsAdapter:
    """Validation and health of an AWS account for EC2 GPU instances."""

    async def validate(self, ctx: CheckContext) -> Outcome:
        job = _job(ctx)
        return await ctx.run_blocking(
            _validate_blocking, job, ctx.value("ami_id"), dict(ctx.provider.meta or {})
        )

    async def health(self, ctx: CheckContext) -> Outcome:
        job = _job(ctx)
        return await ctx.run_blocking(_health_blocking, job)
