"""Validation and health results (docs/architecture.md, "Validation and health results").

A check never raises to its caller: it returns a :class:`CheckResult`. Results are kept with
their time in ``data/checks.json`` (not in providers.json), shared by every process of the
home, and never hold a secret.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

FailureCode = Literal[
    "invalid_credentials",
    "permission_denied",
    "misconfigured",
    "untrusted_host",
    "host_key_mismatch",
    "unreachable",
    "timeout",
    "rate_limited",
    "quota_exhausted",
    "error",
]
ValidationStatus = Literal["valid", FailureCode]
HealthStatus = Literal["healthy", "degraded", "unhealthy", "unknown"]
CheckKind = Literal["validate", "health"]

#: Failures that say the credentials or settings are wrong (a re-validation with one of these
#: clears ``active``). The others are about the moment (network, load) and leave it alone.
CREDENTIAL_FAILURES: frozenset[str] = frozenset(
    {
        "invalid_credentials",
        "permission_denied",
        "misconfigured",
        "untrusted_host",
        "host_key_mismatch",
    }
)

#: How a failure code reads as health.
HEALTH_OF_CODE: dict[str, HealthStatus] = {
    "rate_limited": "degraded",
}


class CheckResult(BaseModel):
    """The outcome of one validation or health check of one provider."""

    provider: str = Field(description="The provider id")
    check: CheckKind
    status: str = Field(description="A validation status, or a health status for health checks")
    code: FailureCode | None = Field(
        None, description="For a failed check: the validation status that says why"
    )
    message: str = Field(description="What happened, in words a user understands")
    fields: list[str] = Field(default_factory=list, description="Auth fields to fix")
    detail: dict[str, Any] = Field(
        default_factory=dict, description="Identity, free VRAM, workers ready ..."
    )
    latency_ms: float | None = None
    checked_at: datetime

    @property
    def ok(self) -> bool:
        return self.status in ("valid", "healthy")


class ValidationResult(CheckResult):
    """JSON Schema view of a validation result."""

    check: Literal["validate"] = "validate"
    status: ValidationStatus


class HealthResult(CheckResult):
    """JSON Schema view of a health result."""

    check: Literal["health"] = "health"
    status: HealthStatus


def now() -> datetime:
    return datetime.now(UTC)


class LocalGpu(BaseModel):
    """One GPU of this machine, as the NVML snapshot (or a request) gives it."""

    name: str
    vram_total_gb: float = Field(ge=0)
    vram_free_gb: float = Field(ge=0)
    utilization: float = Field(0.0, ge=0, le=1, description="0-1")
    index: int | None = None


class LocalSnapshot(BaseModel):
    """This machine's GPUs; an empty list is "no local GPU" (not an error)."""

    gpus: list[LocalGpu] = Field(default_factory=list)
    driver_version: str | None = None
    source: str = Field("nvml", description="nvml | none | request")
    note: str | None = Field(None, description="Why there is no GPU, when there is none")
    taken_at: datetime | None = None
