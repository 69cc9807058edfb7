"""Jobs: importer work queued with the advisor's decision, re-advised when things change.

Every job/device assignment and every change of one is a line in ``logs/compute_advisor.log``
(``job.assigned``, ``job.reassigned``, ``job.picked``) and a line of the job's audit trail. A
re-advice that changes no decision records nothing (the stored advice's figures are refreshed
silently). A user's pick (``decided_by: user``) is kept until the user changes it or the
provider can no longer run the job, which is recorded too. When to re-advise is
``service/readvise.py`` (docs/architecture.md, "The service: composition root and features").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from comfyvn_gui.core import json_input
from comfyvn_gui.core.advisor import Advice, input_error
from comfyvn_gui.core.errors import ConflictError, InputError
from comfyvn_gui.core.jobs import (
    ComputeDecision,
    DecisionChange,
    Job,
    JobEvent,
    NewJob,
    advice_detail,
)
from comfyvn_gui.core.summary import parse_summary
from comfyvn_gui.core.workload import Workload
from comfyvn_gui.store.audit import AuditLog
from comfyvn_gui.store.jobs import JobStore

from .advice import AdviceFeature
from .inputs import check_project_dir, job_inputs, output_folder

#: One job to add: (title, workload, source).
Draft = tuple[str, Workload, dict[str, Any]]


def _decision(advice: Advice, by: str) -> ComputeDecision:
    return ComputeDecision(
        provider=advice.choice,
        advice=advice.model_dump(mode="json"),
        decided_at=datetime.now(UTC),
        decided_by="user" if by == "user" else "advisor",
    )


def _cannot(job: Job, what: str) -> str:
    """Why a job in its status cannot be ``what`` (cancelled, retried), and what can be done."""
    if what == "cancelled":
        if job.status == "cancelled":
            return f"job {job.id} is cancelled already"
        if job.status in ("completed", "failed"):
            return (
                f"job {job.id} has ended ({job.status}): nothing to cancel; "
                f"`comfyvn-gui jobs retry {job.id}` queues it again"
            )
        return f"job {job.id} is {job.status}: only the dispatch driver can cancel it"
    if job.status == "queued":
        return f"job {job.id} is queued already"
    return f"job {job.id} is {job.status}: only a failed or cancelled job is retried"


def _assigned_message(advice: Advice) -> str:
    if advice.choice is None:
        return f"no provider can run it: {advice.reason}"
    return f"assigned to {advice.choice} ({advice.estimated_cost}): {advice.reason}"


def _log_assignment(audit: AuditLog, job: Job, advice: Advice) -> None:
    audit.event(
        "job.assigned",
        job=job.id,
        title=job.title,
        kind=job.kind,
        provider=advice.choice,
        decided_by="advisor",
        estimated_cost_usd=advice.estimated_cost_usd,
        estimated_minutes=advice.estimated_minutes,
        reason=advice.reason,
        warnings=[w.code for w in advice.warnings],
    )


def parse_workload(data: Any) -> Workload:
    """``jobs add``: a workload object (optionally with ``title``)."""
    if isinstance(data, dict) and "workload" in data and "kind" not in data:
        data = data["workload"]  # an advice request's workload is accepted as well
    if not isinstance(data, dict):
        raise InputError(
            f"a job is a JSON workload object with a 'kind' (got {type(data).__name__})",
            fields=["kind"],
        )
    json_input.check_value(data, where="the job")
    try:
        return Workload.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc) from None


def _default_title(workload: Workload) -> str:
    label = workload.label
    return (
        f"{label[0].upper()}{label[1:]} ({workload.items} item{'s' if workload.items != 1 else ''})"
    )


def advice_of(job: Job) -> Advice | None:
    compute = job.compute
    return Advice.model_validate(compute.advice) if compute is not None else None


def _because(old: str | None, advice: Advice, trigger: str | None) -> str:
    """Why a decision changed, from the new advice's view of the old choice."""
    why: str | None = None
    if old is not None:
        for alt in advice.alternatives:
            if alt.provider == old:
                why = (
                    f"{old} is excluded: {alt.excluded_because}"
                    if not alt.eligible
                    else f"{old} is no longer preferred ({alt.note})"
                )
        if why is None and advice.choice != old:
            why = f"{old} is no longer registered"
    else:
        why = f"{advice.choice} can run it now"
    why = why or "the advice changed"
    if trigger:
        why = f"{why} (after {trigger})"
    return why


class JobsFeature:
    """The job queue of one home: jobs added advised, picked, re-advised and logged."""

    def __init__(self, *, job_store: JobStore, advice: AdviceFeature, audit: AuditLog) -> None:
        self.job_store = job_store
        self.advice = advice
        self.audit = audit

    def add_jobs(self, drafts: Sequence[Draft]) -> list[Job]:
        """Advise every draft against one reading of the providers, then add them all at once."""
        workloads = [w for _, w, _ in drafts]
        advices = self.advice.advise_workloads(workloads)
        new = [
            NewJob(
                title=title,
                workload=workload,
                decision=_decision(advice, "advisor"),
                source=source,
                message=_assigned_message(advice),
            )
            for (title, workload, source), advice in zip(drafts, advices, strict=True)
        ]
        jobs = self.job_store.add(new)
        for job, advice in zip(jobs, advices, strict=True):
            _log_assignment(self.audit, job, advice)
        return jobs

    def add(self, data: Any) -> Job:
        """``jobs add``: one workload, advised and logged."""
        workload = parse_workload(data)
        title = workload.title or _default_title(workload)
        jobs = self.add_jobs([(title, workload, {"added_by": "jobs add"})])
        return jobs[0]

    def import_summary(self, data: Any, project_dir: str | None = None) -> list[Job]:
        """One job per unit of work of an importer summary, each advised; all or nothing.
        ``project_dir``: the absolute folder its asset paths are relative to (kept in each
        job's ``source``; the files are looked up at dispatch, not now)."""
        folder = None if project_dir is None else check_project_dir(project_dir)
        _, drafts = parse_summary(data)
        units = []
        for d in drafts:
            source = dict(d.source)
            if folder is not None:
                source["project_dir"] = folder
            units.append((d.title, d.workload, source))
        return self.add_jobs(units)

    def inputs(self, job_id: int, project_dir: str | None = None) -> list[Path]:
        """The job's input files in its project folder (``project_dir`` overrides the one
        recorded at import); a missing one is an InputError naming it."""
        job = self.get(job_id)
        return job_inputs(job.id, job.source, project_dir)

    def outputs_dir(self, job_id: int, project_dir: str | None = None) -> Path:
        """Where the job's outputs go (its project folder's comfyvn-output/<id>/, else the
        home's data/outputs/<id>/)."""
        job = self.get(job_id)
        return output_folder(job.id, job.source, self.job_store.home.data_dir, project_dir)

    def select(self, status: Sequence[str] | None = None, *, brief: bool = False) -> list[Job]:
        return self.job_store.select(status=status, brief=brief)

    def iter_select(
        self,
        status: Sequence[str] | None = None,
        *,
        brief: bool = False,
        changed_since: str | None = None,
    ) -> Iterator[Job]:
        return self.job_store.iter_select(status=status, brief=brief, changed_since=changed_since)

    def get(self, job_id: int) -> Job:
        return self.job_store.get(job_id)

    def events(self, job_id: int) -> list[JobEvent]:
        self.job_store.get(job_id)  # NotFoundError for an unknown id
        return self.job_store.events(job_id)

    def readvise(self, trigger: str | None = None) -> list[dict[str, Any]]:
        """Re-advise every queued job; record and log only the decisions that changed.

        Returns one ``{"job", "previous", "provider", "because"}`` per changed decision.
        """
        store = self.job_store
        if not store.exists():
            return []
        jobs = store.select(status=["queued"])
        if not jobs:
            return []
        picks = [
            (j.compute.provider if j.compute and j.compute.decided_by == "user" else None)
            for j in jobs
        ]
        advices = self.advice.advise_workloads([j.workload for j in jobs], user_picks=picks)
        changes: list[DecisionChange] = []
        for job, pick, advice in zip(jobs, picks, advices, strict=True):
            current = job.compute
            old = current.provider if current else None
            old_by = current.decided_by if current else None
            if pick is not None and advice.choice == pick:
                # The user's pick stands; refresh its figures silently.
                kept = _decision(advice, "user")
                if current is not None and current.advice != kept.advice:
                    kept = kept.model_copy(update={"decided_at": current.decided_at})
                    changes.append(DecisionChange(job.id, old, old_by, kept, "", "", "", {}))
                continue
            decision = _decision(advice, "advisor")
            if pick is not None:
                dropped = next((a for a in advice.alternatives if a.provider == pick), None)
                why = (
                    dropped.excluded_because
                    if dropped is not None
                    else "it is no longer registered"
                )
                message = (
                    f"your pick {pick} can no longer run this job ({why}); the advisor chose "
                    f"{advice.choice or 'no provider'}: {advice.reason}"
                )
                changes.append(
                    DecisionChange(
                        job.id,
                        old,
                        old_by,
                        decision,
                        "advisor",
                        "pick_dropped",
                        message,
                        {"trigger": trigger, **advice_detail(decision.advice)},
                    )
                )
                continue
            if advice.choice == old:
                if current is None or current.advice != decision.advice:
                    if current is not None:  # same decision, fresher figures: keep its time
                        decision = decision.model_copy(update={"decided_at": current.decided_at})
                    changes.append(DecisionChange(job.id, old, old_by, decision, "", "", "", {}))
                continue
            because = _because(old, advice, trigger)
            message = f"re-advised: {old or 'none'} -> {advice.choice or 'none'} because {because}"
            changes.append(
                DecisionChange(
                    job.id,
                    old,
                    old_by,
                    decision,
                    "advisor",
                    "re-advised",
                    message,
                    {"trigger": trigger, "because": because, **advice_detail(decision.advice)},
                )
            )
        applied = store.apply(changes)
        out = []
        for ch in applied:
            if not ch.action:
                continue
            out.append(
                {
                    "job": ch.job_id,
                    "previous": ch.expected,
                    "provider": ch.decision.provider,
                    "because": ch.detail.get("because") or ch.message,
                }
            )
            self.audit.event(
                "job.reassigned",
                job=ch.job_id,
                previous=ch.expected,
                provider=ch.decision.provider,
                decided_by="advisor",
                action=ch.action,
                trigger=trigger,
                because=ch.detail.get("because"),
                message=ch.message,
                estimated_cost_usd=ch.detail.get("estimated_cost_usd"),
            )
        return out

    def cancel(self, job_id: int) -> Job:
        """``jobs cancel``: a queued job is cancelled (nothing was sent for it). A job that
        has ended says so; running jobs are cancelled by the dispatch driver (issue 17)."""
        job = self.job_store.get(job_id)
        if job.status == "queued":
            done = self.job_store.change_status(
                job_id,
                expected=["queued"],
                status="cancelled",
                actor="user",
                message="cancelled before it was dispatched: nothing was sent",
            )
            if done is not None:
                self.audit.event("job.cancelled", job=job_id, previous="queued")
                return done
            job = self.job_store.get(job_id)
        raise ConflictError(_cannot(job, "cancelled"), fields=["id"])

    def retry(self, job_id: int) -> Job:
        """``jobs retry``: a failed or cancelled job goes back to the queue, advised afresh."""
        job = self.job_store.get(job_id)
        if job.status in ("failed", "cancelled"):
            [advice] = self.advice.advise_workloads([job.workload])
            decision = _decision(advice, "advisor")
            done = self.job_store.change_status(
                job_id,
                expected=["failed", "cancelled"],
                status="queued",
                actor="user",
                message=f"queued again (it was {job.status})",
                decision=decision,
                decision_message=_assigned_message(advice),
            )
            if done is not None:
                self.audit.event("job.retried", job=job_id, previous=job.status)
                _log_assignment(self.audit, done, advice)
                return done
            job = self.job_store.get(job_id)
        raise ConflictError(_cannot(job, "retried"), fields=["id"])

    def pick(self, job_id: int, provider_id: str | None) -> Job:
        """The user's explicit choice of provider for a queued job (None: back to the advisor)."""
        job = self.job_store.get(job_id)
        if job.status != "queued":
            raise InputError(
                f"job {job_id} is {job.status}; only a queued job's provider can be changed",
                fields=["id"],
            )
        current = job.compute
        old = current.provider if current else None
        old_by = current.decided_by if current else None
        if provider_id is None:
            [advice] = self.advice.advise_workloads([job.workload])
            by = "advisor"
            message = (
                f"back to the advisor's choice: {advice.choice or 'no provider'}: {advice.reason}"
            )
        else:
            known = self.advice.provider_ids()
            if provider_id not in known:
                raise InputError(
                    f"no provider {provider_id!r} is registered "
                    f"(registered: {', '.join(sorted(known))})",
                    fields=["provider"],
                )
            [advice] = self.advice.advise_workloads([job.workload], user_picks=[provider_id])
            if advice.choice != provider_id:
                alt = next((a for a in advice.alternatives if a.provider == provider_id), None)
                why = alt.excluded_because if alt is not None else "it cannot be used"
                raise InputError(
                    f"{provider_id} cannot run job {job_id}: {why}", fields=["provider"]
                )
            by = "user"
            message = (
                f"you picked {provider_id} ({advice.estimated_cost}) instead of {old or 'none'}"
            )
        decision = _decision(advice, by)
        change = DecisionChange(
            job.id, old, old_by, decision, "user", "picked", message, advice_detail(decision.advice)
        )
        if not self.job_store.apply([change]):
            raise InputError(
                f"job {job_id} changed meanwhile (another window or process); look again and retry",
                fields=["id"],
            )
        self.audit.event(
            "job.picked",
            job=job_id,
            previous=old,
            provider=change.decision.provider,
            decided_by=change.decision.decided_by,
            estimated_cost_usd=advice.estimated_cost_usd,
            message=message,
        )
        return self.job_store.get(job_id)


def jobs_summary(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """Rows for a jobs table: the advice next to each job."""
    rows: list[dict[str, Any]] = []
    for j in jobs:
        compute = j.compute
        advice = compute.advice if compute else {}
        rows.append(
            {
                "id": j.id,
                "title": j.title,
                "kind": j.kind,
                "status": j.status,
                "provider": compute.provider if compute else None,
                "decided_by": compute.decided_by if compute else None,
                "estimated_cost": advice.get("estimated_cost"),
                "estimated_cost_usd": advice.get("estimated_cost_usd"),
                "warnings": [w.get("code") for w in advice.get("warnings", [])],
                "reason": advice.get("reason"),
            }
        )
    return rows
