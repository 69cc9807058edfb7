"""AWS EC2: the identity behind an access key, and the configured GPU instance type in a region.

What is sent (PROVIDERS.md; botocore's service models; the EC2 API error reference
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
  3. With the ``bucket`` option: ``s3:GetBucketLocation``. A bucket in another region than the
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
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import CheckContext, CheckFailure, Outcome

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.session import Session

#: The instance type when neither the provider nor the profile names one.
DEFAULT_INSTANCE_TYPE = "g5.xlarge"
DEFAULT_REGION = "us-east-1"
#: Attempts per SDK call, the first included (botocore's ``total_max_attempts``).
TOTAL_MAX_ATTEMPTS = 2
#: Below this much time left, a call gets one attempt with all of it.
RETRY_MIN_BUDGET_S = 4.0
#: Kept back for botocore's retry backoff (standard mode sleeps up to 1 s before attempt 2).
BACKOFF_ALLOWANCE_S = 1.0
CONNECT_TIMEOUT_MAX_S = 5.0
#: The most one attempt may take (connect + read). AWS's describe calls answer in well under a
#: second; a cap keeps a black-holed endpoint from holding an executor worker (and its lane
#: slot) for the whole deadline: with the default 20 s deadline it lets go after at most
#: 2 x 6 s + 1 s, so AWS checks queued behind it still have time to run.
PER_ATTEMPT_MAX_S = 6.0
#: The most the optional Service Quotas lookup of a health check may take.
QUOTA_BUDGET_S = 5.0
#: Too little time left to start another call.
MIN_CALL_BUDGET_S = 0.05

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

_INVALID_KEY = {"InvalidClientTokenId", "UnrecognizedClientException", "InvalidAccessKeyId"}
_AUTH_FAILURE = {"AuthFailure", "IncompleteSignature", "MissingAuthenticationToken"}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden"}
_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
}
_UNAVAILABLE = {
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "ServiceException",
}
_ACTION_IN_TEXT = re.compile(r"perform:\s*([a-z0-9-]+:[A-Za-z0-9]+)")

_LOCK = threading.Lock()
_SESSION: Session | None = None
_KNOWN_REGIONS: frozenset[str] | None = None


# --------------------------------------------------------------------------- the shared session


class _NoToken:
    """A bearer-token provider that has none (no ``AWS_BEARER_TOKEN_*``, no SSO cache)."""

    def load_token(self, **kwargs: Any) -> None:
        return None


def isolated_session() -> Session:
    """A botocore session that reads nothing from the environment or ~/.aws."""
    import botocore.credentials
    import botocore.loaders
    import botocore.session
    from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES

    # (config-file name, env var names, default, converter): keep only the defaults.
    variables = {
        name: (None, None, spec[2], spec[3])
        for name, spec in BOTOCORE_DEFAUT_SESSION_VARIABLES.items()
    }
    variables["config_file"] = (None, None, os.devnull, None)
    variables["credentials_file"] = (None, None, os.devnull, None)
    variables["ignore_configured_endpoint_urls"] = (None, None, True, None)
    variables["metadata_service_num_attempts"] = (None, None, 0, None)
    session = botocore.session.Session(session_vars=variables)
    loader = botocore.loaders.Loader(
        extra_search_paths=[botocore.loaders.Loader.BUILTIN_DATA_PATH],
        include_default_search_paths=False,
    )
    session.register_component("data_loader", loader)
    session.register_component(
        "credential_provider", botocore.credentials.CredentialResolver(providers=[])
    )
    session.register_component("token_provider", _NoToken())
    return session


def shared_session() -> Session:
    """The module's one botocore session (made on first use, never at import)."""
    global _SESSION
    with _LOCK:
        if _SESSION is None:
            _SESSION = isolated_session()
        return _SESSION


def known_regions() -> frozenset[str]:
    """Every region in botocore's bundled endpoint data, all partitions."""
    global _KNOWN_REGIONS
    if _KNOWN_REGIONS is None:
        session = shared_session()
        with _LOCK:
            data = session.get_component("data_loader").load_data("endpoints")
        _KNOWN_REGIONS = frozenset(
            region for partition in data.get("partitions", []) for region in partition["regions"]
        )
    return _KNOWN_REGIONS


# --------------------------------------------------------------------------- one check's settings


@dataclass
class _Job:
    """What the blocking part of a check needs; built on the event loop."""

    name: str
    access_key: str
    secret_key: str
    region: str
    instance_type: str
    bucket: str | None
    endpoint: str | None
    endpoint_fields: list[str]
    verify: str | None
    deadline: float  # time.monotonic()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def scrub(self, text: str) -> str:
        for secret in (self.secret_key, self.access_key):
            if secret:
                text = text.replace(secret, "***")
        return text


def _job(ctx: CheckContext) -> _Job:
    access_key, secret_key = ctx.require("access_key", "secret_key")
    region = (ctx.value("region") or _default(ctx, "region") or DEFAULT_REGION).strip()
    instance_type = (
        ctx.value("instance_type") or _default(ctx, "instance_type") or DEFAULT_INSTANCE_TYPE
    ).strip()
    overrides = ctx.provider.config.get("endpoints") or {}
    endpoint = ctx.endpoint("aws")
    if endpoint is None:
        fields: list[str] = []
    elif overrides.get("aws"):
        fields = ["endpoints"]
    else:
        fields = ["base_url"]
    return _Job(
        name=ctx.name,
        access_key=access_key.strip(),
        secret_key=secret_key.strip(),
        region=region,
        instance_type=instance_type,
        bucket=(ctx.value("bucket") or "").strip() or None,
        endpoint=endpoint,
        endpoint_fields=fields,
        verify=ctx.network.ca_bundle,
        deadline=time.monotonic() + ctx.remaining(),
    )


def _default(ctx: CheckContext, name: str) -> str | None:
    try:
        return ctx.profile.field(name).default
    except KeyError:
        return None


def _client(
    job: _Job, service: str, *, region: str | None = None, budget: float | None = None
) -> BaseClient:
    """A client whose timeouts and retries fit in the time left (or ``budget``)."""
    from botocore.config import Config

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
        config = Config(
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


# --------------------------------------------------------------------------- failures


def _error(exc: Any) -> tuple[str, str, int]:
    """(code, message, HTTP status) of a botocore ClientError."""
    response = getattr(exc, "response", None) or {}
    err = response.get("Error") or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
    return str(err.get("Code") or ""), str(err.get("Message") or ""), int(status)


def _first_sentence(job: _Job, text: str) -> str:
    text = job.scrub(" ".join(text.split()))
    if "<" in text:  # an HTML or XML page, not a message
        return ""
    text = text.split(". ")[0].rstrip(".")
    return text if len(text) <= 160 else text[:160] + "…"


def _where(job: _Job) -> str:
    return f"{job.endpoint}, region {job.region}" if job.endpoint else f"region {job.region}"


def _unknown_region(job: _Job) -> bool:
    try:
        return job.region not in known_regions()
    except Exception:  # noqa: BLE001 - only a hint
        return False


def _region_failure(job: _Job, what: str) -> CheckFailure:
    return CheckFailure(
        "misconfigured",
        f"{what}: {job.region!r} is not an AWS region this version knows. Check the region "
        "(for example us-east-1 or eu-west-1)",
        fields=["region"],
    )


def _client_failure(job: _Job, exc: Any, action: str) -> CheckFailure:
    """Map a ClientError of ``action`` (an IAM action name) into the result vocabulary; the
    detail keeps AWS's error code (``aws_error``)."""
    failure = _map_client_error(job, exc, action)
    code = _error(exc)[0]
    if code:
        failure.detail.setdefault("aws_error", code)
    return failure


def _map_client_error(job: _Job, exc: Any, action: str) -> CheckFailure:
    code, text, status = _error(exc)
    name = job.name
    if code in _INVALID_KEY:
        return CheckFailure(
            "invalid_credentials",
            f"{name} does not know this access key ID ({code}); copy it again from IAM → Users "
            "→ Security credentials, or create a new access key",
            fields=["access_key"],
        )
    if code == "SignatureDoesNotMatch":
        if "expired" in text.lower():
            return _clock_failure(job, code)
        return CheckFailure(
            "invalid_credentials",
            f"{name} knows the access key but the secret access key does not match it "
            f"({code}); paste the secret shown when the key was created, or create a new key",
            fields=["secret_key"],
        )
    if code in _AUTH_FAILURE:
        return CheckFailure(
            "invalid_credentials",
            f"{name} could not validate the access key ({code}); check the access key ID and "
            "its secret access key",
            fields=["access_key"],
        )
    if code in ("ExpiredToken", "ExpiredTokenException"):
        return CheckFailure(
            "invalid_credentials",
            f"{name}: these credentials have expired ({code}); use a long-term IAM user key",
            fields=["access_key"],
        )
    if code in ("RequestExpired", "RequestTimeTooSkewed"):
        return _clock_failure(job, code)
    if code in _DENIED or status == 403:
        found = _ACTION_IN_TEXT.search(text)
        missing = found.group(1) if found else action
        return CheckFailure(
            "permission_denied",
            f"{name} accepted the key but it may not call {missing} ({code or status}); "
            f"allow {missing} in the IAM policy of the key's user (the onboarding notes ask "
            "for ec2:Describe*, ec2:RunInstances and the asset bucket)",
            fields=["access_key"],
            detail={"missing_permission": missing},
        )
    if code == "OptInRequired":
        return CheckFailure(
            "misconfigured",
            f"{name}: the account may not use EC2 in region {job.region} yet (OptInRequired); "
            "enable the region under Account → AWS Regions, or pick another region",
            fields=["region"],
        )
    if code in ("Blocked", "PendingVerification"):
        return CheckFailure(
            "permission_denied",
            f"{name}: the AWS account cannot use EC2 right now ({code}); see the AWS console "
            "or contact AWS Support",
            fields=["access_key"],
        )
    if code in _THROTTLED or status == 429:
        return CheckFailure(
            "rate_limited",
            f"{name} is throttling requests ({code or status}); try again in a minute",
        )
    if code in _UNAVAILABLE or status >= 500:
        if _unknown_region(job):
            return _region_failure(job, f"{name} could not serve {action}")
        return CheckFailure(
            "unreachable",
            f"{name} is unavailable right now ({code or status}); try again later",
        )
    if job.endpoint and code in ("", str(status)):
        # No AWS error document: whatever answered is not an AWS API.
        return CheckFailure(
            "misconfigured",
            f"{job.endpoint} answered {status} to {action} without an AWS error: it does not "
            "look like an AWS endpoint; check the endpoint address (or clear it to use AWS's)",
            fields=list(job.endpoint_fields),
        )
    sentence = _first_sentence(job, text)
    return CheckFailure(
        "error",
        f"{name} refused {action} ({code or status})" + (f": {sentence}" if sentence else ""),
    )


def _clock_failure(job: _Job, code: str) -> CheckFailure:
    return CheckFailure(
        "error",
        f"{job.name} rejected the request as too old ({code}): this computer's clock is off. "
        "Set the date and time automatically in the system settings, then try again",
    )


def _transport_failure(job: _Job, exc: BaseException) -> CheckFailure | None:
    """Map botocore's transport exceptions; None for anything else."""
    from botocore import exceptions as bx
    from botocore.parsers import ResponseParserError

    where = _where(job)
    if isinstance(exc, bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return CheckFailure(
            "timeout",
            f"{job.name} ({where}) did not answer in time; check your network or try again later",
        )
    if isinstance(exc, bx.SSLError):
        return CheckFailure(
            "misconfigured",
            f"the TLS certificate of {job.name} ({where}) could not be verified; if you are "
            "behind a proxy that inspects TLS, set its CA bundle (network.ca_bundle)",
            fields=list(job.endpoint_fields),
        )
    if isinstance(exc, bx.ProxyConnectionError):
        return CheckFailure(
            "unreachable",
            f"cannot reach {job.name} through the proxy; check the system's proxy settings",
        )
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError):
        if not job.endpoint and _unknown_region(job):
            return _region_failure(job, f"cannot reach {job.name} in {job.region}")
        return CheckFailure(
            "unreachable",
            f"cannot connect to {job.name} at {where}; check your network"
            + (" and the endpoint address" if job.endpoint else ""),
            fields=list(job.endpoint_fields),
        )
    if isinstance(exc, bx.InvalidRegionError):
        return _region_failure(job, f"{job.name}")
    if isinstance(exc, ResponseParserError):
        if _unknown_region(job):
            return _region_failure(job, f"{job.name} sent an answer that is not AWS's")
        if job.endpoint:
            return CheckFailure(
                "misconfigured",
                f"{job.endpoint} answered with something that is not an AWS API response; "
                "check the endpoint address (or clear it to use AWS's)",
                fields=list(job.endpoint_fields),
            )
        return CheckFailure(
            "error",
            f"{job.name} ({where}) sent an answer that is not an AWS API response; a proxy may "
            "be in the way. Try again later",
        )
    if isinstance(exc, bx.HTTPClientError):
        return CheckFailure(
            "unreachable", f"the connection to {job.name} at {where} failed; try again later"
        )
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return CheckFailure(
            "misconfigured",
            f"{job.name}: the access key ID and secret access key are both needed",
            fields=["access_key", "secret_key"],
        )
    if isinstance(exc, ValueError) and "endpoint" in str(exc).lower():
        return CheckFailure(
            "misconfigured",
            f"{job.name}: the endpoint address {job.endpoint!r} is not a valid URL",
            fields=list(job.endpoint_fields),
        )
    if job.endpoint and isinstance(exc, KeyError | TypeError | ValueError):
        # botocore could not make sense of the answer (an HTML page with 200, say)
        return CheckFailure(
            "misconfigured",
            f"{job.endpoint} answered with something that is not an AWS API response; check "
            "the endpoint address (or clear it to use AWS's)",
            fields=list(job.endpoint_fields),
        )
    return None


def _call(job: _Job, action: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """One SDK call; every botocore failure becomes a CheckFailure."""
    from botocore.exceptions import ClientError

    try:
        return fn(**kwargs)
    except ClientError as exc:
        raise _client_failure(job, exc, action) from None
    except Exception as exc:
        failure = _transport_failure(job, exc)
        if failure is None:
            raise
        raise failure from None


# --------------------------------------------------------------------------- the calls


def _identity(job: _Job) -> dict[str, Any]:
    """sts:GetCallerIdentity -> identity detail. Raises CheckFailure."""
    from botocore.exceptions import ClientError

    sts = _client(job, "sts")
    try:
        who = sts.get_caller_identity()
    except ClientError as exc:
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
    from botocore.exceptions import ClientError

    try:
        _client(job, "sts", region=DEFAULT_REGION).get_caller_identity()
    except (ClientError, TimeoutError):
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
    from botocore.exceptions import ClientError

    try:
        answer = ec2.describe_instance_types(InstanceTypes=[job.instance_type])
    except ClientError as exc:
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
    """GB as the vendor states it (DESIGN.md): AWS reports the memory left after ECC (22,888
    MiB for a 24 GB A10G), so a catalog GPU of that name whose figure is at most 10 % above
    AWS's gives the vendor's number; otherwise AWS's own, in GiB."""
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
    from botocore.exceptions import ClientError

    bucket = job.bucket or ""
    s3 = _client(job, "s3")
    try:
        answer = s3.get_bucket_location(Bucket=bucket)
    except ClientError as exc:
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
    from botocore.exceptions import ClientError

    found = quota_for(job.instance_type)
    if found is None:
        return {"status": "unknown", "reason": "no On-Demand vCPU quota known for this family"}
    code, name = found
    out: dict[str, Any] = {"code": code, "name": name, "needed_vcpus": vcpus}
    try:
        sq = _client(job, "service-quotas", budget=QUOTA_BUDGET_S)
        answer = sq.get_service_quota(ServiceCode="ec2", QuotaCode=code)
    except ClientError as exc:
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


# --------------------------------------------------------------------------- the adapter


def _validate_blocking(job: _Job) -> Outcome:
    detail = _identity(job)
    try:
        type_detail, latency = _instance_type(job)
        detail.update(type_detail, region=job.region, latency_ms=round(latency, 1))
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


class AwsAdapter:
    """Validation and health of an AWS account for EC2 GPU instances."""

    async def validate(self, ctx: CheckContext) -> Outcome:
        job = _job(ctx)
        return await ctx.run_blocking(_validate_blocking, job)

    async def health(self, ctx: CheckContext) -> Outcome:
        job = _job(ctx)
        return await ctx.run_blocking(_health_blocking, job)


ADAPTER = AwsAdapter()
