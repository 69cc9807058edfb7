"""Dispatch: a queued job handed to the driver after every check that can refuse it, and
the commands that follow, cancel, list and remove jobs (docs/architecture.md, "Dispatch").

:meth:`DispatchFeature.dispatch` checks, in this order, and refuses with one clear line
(nothing sent, nothing changed) at the first that fails:

1. the job exists and is queued;
2. its provider (the current decision) is registered, usable by this version, enabled and
   validated, and of a kind this version dispatches to;
3. the provider can still run it now (a fresh advice for that pick: residency, VRAM, health
   ...; a provider outside the job's zones is refused, explicit pick or not);
4. the job has a runnable graph (its own, the ``workflows.<kind>`` setting, or the shipped
   template; the setting is named when none) and every input file is found (missing ones
   named);
5. the consent gate (``core/gate.py``): every consent warning of THIS advice, for THIS
   provider, acknowledged;
6. the bill guard's ceilings (``core/dispatch.py``).

Then the job moves queued -> submitting with ``meta.dispatch`` (compare-and-set on the
decision the user saw) and the driver is started; the driver does the sending.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from comfyvn_gui.core import dispatch as rules
from comfyvn_gui.core import provider_rules
from comfyvn_gui.core.catalog import Catalog
from comfyvn_gui.core.errors import ConflictError, InputError
from comfyvn_gui.core.gate import Acknowledgement, ConsentItem, check_consent, consent_items
from comfyvn_gui.core.jobs import ENDED, IN_FLIGHT, Job
from comfyvn_gui.core.provider_lock import LOCATION_OPTIONS
from comfyvn_gui.core.runs import WorkflowTemplate, kind_template, plan_runs
from comfyvn_gui.providers.dispatch_targets import dispatch_target, supported
from comfyvn_gui.store.audit import AuditLog
from comfyvn_gui.store.jobs import JobStore
from comfyvn_gui.store.registry import Registry
from comfyvn_gui.store.settings import SettingsStore

from .advice import AdviceFeature
from .inputs import output_folder, run_inputs
from .jobs import JobsFeature

__all__ = ["DispatchFeature"]


class DispatchFeature:
    """Dispatching queued jobs, and following, cancelling, listing and removing them."""

    def __init__(
        self,
        *,
        job_store: JobStore,
        jobs: JobsFeature,
        advice: AdviceFeature,
        registry: Registry,
        catalog: Catalog,
        settings: SettingsStore,
        audit: AuditLog,
        start_driver: Callable[[], object],
    ) -> None:
        self.job_store = job_store
        self.jobs = jobs
        self.advice = advice
        self.registry = registry
        self.catalog = catalog
        self.settings = settings
        self.audit = audit
        self.start_driver = start_driver

    # -- what the user is asked ------------------------------------------------------------

    def consent(self, job_id: int) -> list[ConsentItem]:
        """The warnings of the job's current advice that must be acknowledged."""
        job = self.job_store.get(job_id)
        compute = job.compute
        return consent_items(compute.advice) if compute is not None else []

    def bill_guard(self, job_id: int) -> str | None:
        """What stops the bill of the job's provider if this app is gone, in words (shown
        before the upload, kept in the job); None where nothing is billed."""
        job = self.job_store.get(job_id)
        compute = job.compute
        if compute is None or compute.provider is None:
            return None
        try:
            entry = self.registry.get(compute.provider)
        except InputError:
            return None
        profile = self.catalog.profile(entry.template_id)
        target = dispatch_target(entry.template_id, profile.kind, entry.config)
        if target == "serverless":
            return (
                "RunPod stops each request at its policy.executionTimeout (the time left under "
                "the job's ceilings), on RunPod's side: the bill stops even if this app is gone"
            )
        if target == "machine":
            from comfyvn_gui.providers.dispatch_targets import machine_adapter

            return machine_adapter(entry.template_id).deadman_words
        return None

    # -- dispatch --------------------------------------------------------------------------

    def check(self, job_id: int, project_dir: str | None = None) -> Job:
        """Checks 1-4 (everything but the gate): the job as it is, or the refusal."""
        job = self.job_store.get(job_id)
        if job.status != "queued":
            raise ConflictError(_not_queued(job), fields=["id"])
        compute = job.compute
        if compute is None or compute.provider is None:
            raise ConflictError(
                f"job {job.id} has no provider that can run it now: see why with "
                f"`comfyvn-gui jobs show {job.id}`",
                fields=["provider"],
            )
        self._check_provider(job, compute.provider)
        self._check_runnable(job, project_dir)
        return job

    def ceilings(self, job_id: int) -> rules.Ceilings:
        """The bill guard's ceilings dispatching the job now would set (a ConflictError where
        dispatch would refuse: nothing bounds the bill)."""
        return self._ceilings(self.job_store.get(job_id))

    def _ceilings(self, job: Job) -> rules.Ceilings:
        compute = job.compute
        if compute is None or compute.provider is None:
            raise ConflictError(f"job {job.id} has no provider to run on; it cannot be dispatched")
        return rules.ceilings_for(
            compute.advice,
            budget_usd=job.workload.budget_usd
            if job.workload.budget_usd is not None
            else self.settings.get("advisor.budget_usd"),
            max_cost_factor=float(self.settings.get("dispatch.max_cost_factor")),
            max_runtime_factor=float(self.settings.get("dispatch.max_runtime_factor")),
            job_id=job.id,
        )

    def dispatch(
        self,
        job_id: int,
        *,
        provider: str | None = None,
        decided_at: datetime | str | None = None,
        acknowledge: Iterable[str] = (),
        project_dir: str | None = None,
        interface: str,
        dry_run: bool = False,
    ) -> Job:
        """Hand a queued job to the driver after every check (see the module's text).
        ``dry_run``: every check, the gate and the bill guard, but nothing sent or changed."""
        job = self.check(job_id, project_dir)
        ack = check_consent(
            job,
            provider=provider,
            decided_at=decided_at,
            acknowledge=acknowledge,
            interface=interface,
        )
        compute = job.compute
        assert compute is not None and compute.provider is not None  # (check() said so)
        ceilings = self._ceilings(job)
        if dry_run:
            return job
        now = datetime.now(UTC)
        record = self._record(job, ack, ceilings, now, project_dir)
        record["bill_guard"] = self.bill_guard(job.id)
        done = self.job_store.begin_dispatch(
            job.id,
            provider=compute.provider,
            decided_at=ack.decided_at,
            dispatch=record,
            actor="user",
            message=_dispatched_message(ack, ceilings, now),
            detail={"acknowledged": ack.as_json(), "ceilings": record["ceilings"]},
        )
        if done is None:
            raise ConflictError(
                f"job {job.id} changed while it was being dispatched (another window or "
                "process); look at it again and dispatch it again",
                fields=["id"],
            )
        self.audit.event(
            "job.dispatched",
            job=job.id,
            provider=compute.provider,
            acknowledged=list(ack.codes),
            interface=interface,
            estimated_cost_usd=compute.advice.get("estimated_cost_usd"),
            cost_ceiling_usd=record["ceilings"]["cost_usd"],
            deadline=record["ceilings"]["deadline"],
        )
        self.start_driver()
        return done

    def _check_provider(self, job: Job, provider_id: str) -> None:
        try:
            entry = self.registry.get(provider_id)
        except InputError:
            raise ConflictError(
                f"job {job.id}'s provider {provider_id} is no longer registered; pick another "
                f"(`comfyvn-gui jobs pick {job.id} PROVIDER`)",
                fields=["provider"],
            ) from None
        broken = provider_rules.broken_reason(
            self.catalog, entry, str(self.registry.home.registry_file)
        )
        if broken is not None:
            raise ConflictError(broken, fields=["provider"])
        profile = self.catalog.profile(entry.template_id)
        if not entry.enabled:
            raise ConflictError(
                f"{provider_id} is disabled: enable it (`comfyvn-gui providers register`, or its "
                "card's switch) or pick another provider",
                fields=["provider"],
            )
        if not entry.active and profile.kind != "local":
            raise ConflictError(
                f"{provider_id} is not validated: run `comfyvn-gui providers validate "
                f"{provider_id}` (or its card's Validate) first",
                fields=["provider"],
            )
        target = dispatch_target(entry.template_id, profile.kind, entry.config)
        if target is None:
            raise ConflictError(
                f"running jobs on {profile.name} ({provider_id}) is not built in this version "
                f"yet (it runs jobs on {supported()}); pick one of those "
                f"(`comfyvn-gui jobs pick {job.id} PROVIDER`)",
                fields=["provider"],
            )
        if target == "serverless":
            from comfyvn_gui.providers.runpod_serverless import SERVERLESS_KINDS

            if job.kind not in SERVERLESS_KINDS:
                raise ConflictError(
                    f"{provider_id} runs jobs on a RunPod serverless endpoint (worker-comfyui), "
                    f"which returns images only; a {job.kind} job makes other files. Clear the "
                    "provider's endpoint_id to run it on a pod, or pick another provider",
                    fields=["provider", "endpoint_id"],
                )
        [fresh] = self.advice.advise_workloads([job.workload], user_picks=[provider_id])
        if fresh.choice != provider_id:
            alt = next((a for a in fresh.alternatives if a.provider == provider_id), None)
            why = alt.excluded_because if alt is not None else "it cannot be used"
            raise ConflictError(
                f"{provider_id} cannot run job {job.id} now: {why}; nothing was sent",
                fields=["provider"],
            )

    def _template(self, job: Job) -> WorkflowTemplate | None:
        return kind_template(job.kind, self.settings.get)

    def _check_runnable(self, job: Job, project_dir: str | None) -> list[Path]:
        template = self._template(job)
        inputs = run_inputs(job.id, job.kind, job.source, project_dir)
        plan_runs(  # (an InputError naming the setting or the graph's problem)
            job_id=job.id,
            kind=job.kind,
            items=job.workload.items,
            inputs=[p.name for p in inputs],
            template=template,
            workflow=job.workload.workflow,
            task=job.source.get("task"),
        )
        return inputs

    def _record(
        self,
        job: Job,
        ack: Acknowledgement,
        ceilings: rules.Ceilings,
        now: datetime,
        project_dir: str | None,
    ) -> dict[str, Any]:
        compute = job.compute
        assert compute is not None and compute.provider is not None
        entry = self.registry.get(compute.provider)
        profile = self.catalog.profile(entry.template_id)
        chosen = compute.advice.get("chosen") or {}
        folder = project_dir or job.source.get("project_dir")
        template = self._template(job)
        return {
            "provider": compute.provider,
            "provider_kind": profile.kind,
            "template_id": entry.template_id,
            "acknowledged": ack.as_json(),
            "refs": {
                "endpoints": dict(entry.config.get("endpoints") or {}),
                # where the work runs, as at launch (release uses these, never today's)
                "config": {
                    k: v
                    for k, v in entry.config.items()
                    if k in LOCATION_OPTIONS or k in ("endpoint", "hostname", "username")
                },
            },
            "project_dir": folder,
            "outputs_dir": str(
                output_folder(job.id, job.source, self.job_store.home.data_dir, project_dir)
            ),
            "template": None if template is None else template.source,
            "dispatched_at": now.isoformat(timespec="seconds"),
            "ceilings": ceilings.as_json(now),
            # "spot": the advice chose the provider's Spot offer; the launch asks for Spot
            "offer": chosen.get("offer"),
            "price": {
                "hourly_usd": ceilings.hourly_usd,
                "increment_minutes": chosen.get("billing_increment_minutes") or 1,
                "minimum_minutes": chosen.get("billing_minimum_minutes") or 0,
            },
            "estimate": {
                "cost_usd": compute.advice.get("estimated_cost_usd"),
                "minutes": compute.advice.get("estimated_minutes"),
            },
            "runs": [],
            "outputs": [],
            "billed_minutes": 0,
            "actual_cost_usd": 0.0,
            "last_error": None,
        }

    # -- following, cancelling, listing, removing --------------------------------------------

    def cancel(self, job_id: int, *, interface: str) -> Job:
        """A queued job is cancelled at once; a job in flight is cancelled by the driver
        (asked here, started if none runs); an ended one says so."""
        job = self.job_store.get(job_id)
        if job.status in IN_FLIGHT:
            asked = self.job_store.request_cancel(job_id, actor="user", interface=interface)
            if asked is not None:
                self.audit.event("job.cancel_requested", job=job_id, interface=interface)
                self.start_driver()
                return asked
            job = self.job_store.get(job_id)
        return self.jobs.cancel(job_id)

    def watch(
        self, job_id: int, *, poll_s: float = 0.25, timeout_s: float | None = None
    ) -> Iterator[Job]:
        """The job each time it changes, until it ends (its last state is yielded too). A
        queued job is refused: nothing happens to it until it is dispatched."""
        job = self.job_store.get(job_id)
        if job.status == "queued":
            raise ConflictError(
                f"job {job_id} is queued: nothing to watch until it is dispatched "
                f"(`comfyvn-gui jobs dispatch {job_id}`)",
                fields=["id"],
            )
        if job.status in IN_FLIGHT:
            self.start_driver()
        yield job
        seen = job.updated_at
        end = None if timeout_s is None else time.monotonic() + timeout_s
        nudged = time.monotonic()
        while job.status not in ENDED:
            if end is not None and time.monotonic() > end:
                return
            time.sleep(poll_s)
            if time.monotonic() - nudged > 5:  # (a driver that died is started again)
                nudged = time.monotonic()
                self.start_driver()
            job = self.job_store.get(job_id)
            if job.updated_at != seen:
                seen = job.updated_at
                yield job

    def outputs(self, job_id: int) -> dict[str, Any]:
        """What a dispatched job produced: the folder and ``outputs.json``'s list."""
        job = self.job_store.get(job_id)
        record = job.meta.get("dispatch")
        if job.status == "queued" or not isinstance(record, dict):
            raise ConflictError(
                f"job {job_id} has not run: no outputs (`comfyvn-gui jobs dispatch {job_id}` "
                "runs it)",
                fields=["id"],
            )
        return {
            "job": job.id,
            "status": job.status,
            "folder": record.get("outputs_dir"),
            "outputs": record.get("outputs") or [],
        }

    def remove(self, job_id: int) -> Job:
        """Delete a queued or ended job; its outputs stay on disk, its trail is kept."""
        job = self.job_store.remove(job_id)
        self.audit.event("job.removed", job=job_id, previous=job.status)
        return job


def _not_queued(job: Job) -> str:
    if job.status in IN_FLIGHT:
        return (
            f"job {job.id} is {job.status} already: follow it with "
            f"`comfyvn-gui jobs watch {job.id}`"
        )
    return (
        f"job {job.id} has ended ({job.status}); `comfyvn-gui jobs retry {job.id}` queues it again"
    )


def _dispatched_message(ack: Acknowledgement, ceilings: rules.Ceilings, now: datetime) -> str:
    codes = ", ".join(ack.codes) if ack.codes else "no warnings to acknowledge"
    guard = f"stops by {ceilings.deadline(now).isoformat(timespec='seconds')}"
    if ceilings.cost_usd is not None:
        guard += f" or at ${ceilings.cost_usd:.2f}"
    return f"dispatched to {ack.provider} via {ack.interface} (acknowledged: {codes}); {guard}"
