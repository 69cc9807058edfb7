"""botocore's failures in the result vocabulary: AWS error codes (a ``ClientError``) and
transport exceptions, with AWS's own text cut to its first sentence and the key removed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from comfyvn_gui.providers.base import CheckFailure
from comfyvn_gui.providers.lazy import LazyImport

from .session import known_regions

if TYPE_CHECKING:
    import botocore.exceptions
    import botocore.parsers

    from .session import _Job
else:
    botocore = LazyImport("botocore")

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
    if code in ("SignatureDoesNotMatch", "InvalidSignatureException"):
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
            f"allow {missing} in the IAM policy of the key's user (the app needs "
            "ec2:Describe*, ec2:RunInstances, ec2:CreateTags, ec2:TerminateInstances and the "
            "asset bucket)",
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
    bx = botocore.exceptions
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
    if isinstance(exc, botocore.parsers.ResponseParserError):
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
    try:
        return fn(**kwargs)
    except botocore.exceptions.ClientError as exc:
        raise _client_failure(job, exc, action) from None
    except Exception as exc:
        failure = _transport_failure(job, exc)
        if failure is None:
            raise
        raise failure from None
