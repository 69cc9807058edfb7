"""What a job of the queue (the seed's TaskRegistry) is: its status, decision and audit events.

Each job holds its workload, a status (docs/architecture.md, "Storage": queued | submitting |
running | completed | failed | cancelled) and ``meta.compute``, the current decision: the
provider, the advice it came from, when and by whom (``advisor`` or ``user``). Every decision
and change of decision is appended to the job's audit trail (``job_events``), which the
database itself keeps append-only (triggers refuse UPDATE and DELETE).

The database that keeps them is ``store/jobs.py``; this module is what a job is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from .workload import Workload

__all__ = [
    "ENDED",
    "IN_FLIGHT",
    "JOB_STATUSES",
    "ComputeDecision",
    "Job",
    "JobEvent",
    "NewJob",
]

JobStatus = Literal["queued", "submitting", "running", "completed", "failed", "cancelled"]
JOB_STATUSES: tuple[str, ...] = JobStatus.__args__  # type: ignore[attr-defined]
DecidedBy = Literal["advisor", "user"]
#: The statuses of a job the dispatch driver is working on ("in flight").
IN_FLIGHT: tuple[str, ...] = ("submitting", "running")
#: The statuses a job ends in.
ENDED: tuple[str, ...] = ("completed", "failed", "cancelled")


def ids_digest(ids: Sequence[int]) -> tuple[int, int, int]:
    """(how many, the highest, their sum) of a queue's job ids: the store answers the same
    for its jobs (``JobStore.ids_digest``, in SQL) without reading them, so a reader holding
    the ids learns whether a job was added or removed since (ids are never reused)."""
    return (len(ids), max(ids, default=0), sum(ids))


def instant(value: datetime | str | None) -> datetime | None:
    """A time given as a datetime or an ISO string (``+00:00`` and ``Z`` spell the same
    instant); None for None or a string that is not a time."""
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ComputeDecision(BaseModel):
    """``meta.compute``: where the job runs now, and why."""

    provider: str | None = Field(description="The chosen provider id, or null: none can run it")
    advice: dict[str, Any] = Field(description="The advice object the decision came from")
    decided_at: datetime
    decided_by: DecidedBy


#: Job ids are SQLite rowids: 1 .. 2**63-1 (a larger number is no job, not a crash).
MAX_JOB_ID = 2**63 - 1


class Job(BaseModel):
    """One queued unit of importer work."""

    id: int
    title: str
    kind: str
    status: JobStatus
    workload: Workload
    source: dict[str, Any] = Field(
        default_factory=dict, description="Where it came from: the summary's project and unit"
    )
    meta: dict[str, Any] = Field(default_factory=dict, description="meta.compute: the decision")
    created_at: datetime
    updated_at: datetime

    @property
    def compute(self) -> ComputeDecision | None:
        data = self.meta.get("compute")
        return ComputeDecision.model_validate(data) if data else None


class JobEvent(BaseModel):
    """One line of a job's audit trail: who decided, when, what, why."""

    seq: int
    job_id: int
    at: datetime
    actor: str = Field(description="advisor | user | system")
    action: str = Field(
        description="created | decided | re-advised | picked | pick_dropped | status"
    )
    provider: str | None = None
    previous: str | None = None
    message: str
    detail: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class NewJob:
    """A job to add: its title, workload, source and first decision."""

    title: str
    workload: Workload
    decision: ComputeDecision
    source: dict[str, Any]
    message: str


@dataclass(frozen=True)
class DecisionChange:
    """Replace job ``job_id``'s decision, if it still holds ``expected`` (compare-and-set)."""

    job_id: int
    expected: str | None
    expected_by: str | None
    decision: ComputeDecision
    actor: str
    action: str
    message: str
    detail: dict[str, Any]


def advice_detail(advice: dict[str, Any]) -> dict[str, Any]:
    """What an audit line keeps of an advice: the figures and warning codes, not the lists."""
    return {
        "estimated_cost_usd": advice.get("estimated_cost_usd"),
        "estimated_minutes": advice.get("estimated_minutes"),
        "decided_by": advice.get("decided_by"),
        "reason": advice.get("reason"),
        "warnings": [w.get("code") for w in advice.get("warnings", [])],
    }
