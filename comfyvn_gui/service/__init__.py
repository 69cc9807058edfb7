"""The one façade the CLI, the HTTP API and the GUI talk to, and the composition root of one
home (docs/architecture.md, "The service: composition root and features").

:class:`Service` makes the stores of a home (catalog, keyring, registry, settings, audit log,
check results, host keys, job queue) and the features built on them, each once and on first
use, and hands every feature only the collaborators it needs:

==================  =========================================================================
feature             collaborators
==================  =========================================================================
providers           registry, catalog, re-advise trigger
checks              catalog, registry, check store, host keys, settings, audit, workers,
                    adapter lookup and import, re-advise watch
advice              catalog, registry, check store, settings, local GPU snapshots
jobs                job store, advice, audit
dispatch            job store, jobs, advice, registry, catalog, settings, audit, driver start
driver              home, job store, registry, checks (contexts), settings, audit
settings            settings store, audit, re-advise trigger
monitor             checks, registry, settings, audit, home, workers
diagnostics         home, audit, and readers: providers, secrets, about, catalog version,
                    settings, check results, local GPU
re-advise trigger   home, audit, and callbacks: queue exists?, re-advise, advice state
==================  =========================================================================

No feature knows the service; the methods below only delegate. Rules live in ``core/``, state
in ``store/``. Start-up touches no keyring and no network, and importing this module loads no
cloud SDK, no HTTP client, no advisor and no SQLite: the advice, jobs and diagnostics features
(and the job store) are imported when first used (see :meth:`Service._advice`).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comfyvn_gui.core import wording
from comfyvn_gui.core.catalog import Catalog, ProviderProfile, load_catalog
from comfyvn_gui.core.checks import CheckKind, CheckResult
from comfyvn_gui.core.dispatch import Ceilings
from comfyvn_gui.core.hostkeys import PinnedKey
from comfyvn_gui.core.models import ImportPlan, ProviderEntry
from comfyvn_gui.providers import adapter_for, import_all
from comfyvn_gui.providers.base import BlockingExecutor
from comfyvn_gui.store.audit import AuditLog, get_audit_log
from comfyvn_gui.store.checks import CheckStore
from comfyvn_gui.store.hostkeys import HostKeyStore
from comfyvn_gui.store.monitor_schedule import MonitorSchedule
from comfyvn_gui.store.paths import Home, resolve_home
from comfyvn_gui.store.registry import ImportReport, Registry
from comfyvn_gui.store.secrets import SecretStore
from comfyvn_gui.store.settings import SettingsStore

from .about import AboutFeature
from .checks import ChecksFeature
from .monitor import HealthMonitor
from .providers import ProvidersFeature
from .readvise import ReadviseRunner, ReadviseTrigger
from .settings import SettingsFeature
from .workers import Workers

if TYPE_CHECKING:
    from comfyvn_gui.core.advisor import Advice, AdviceRequest, AdvisorSettings
    from comfyvn_gui.core.checks import LocalSnapshot
    from comfyvn_gui.core.gate import ConsentItem
    from comfyvn_gui.core.jobs import Job, JobEvent
    from comfyvn_gui.core.prices import LivePrices, Offer
    from comfyvn_gui.core.workload import Workload
    from comfyvn_gui.store.jobs import JobStore
    from comfyvn_gui.store.prices import PriceRecord, PriceStore

    from .advice import AdviceFeature, LocalSnapshots
    from .diagnostics import Diagnostics, DiagnosticsReport
    from .dispatch import DispatchFeature
    from .driver import Driver
    from .jobs import JobsFeature
    from .prices import PricesFeature
    from .running import RunningFeature, RunningReport, RunningRow

__all__ = ["Service"]


class Service:
    """Everything one home offers: providers, secrets, settings, checks, advice and jobs."""

    def __init__(self, home: Home | None = None) -> None:
        self.home = home or resolve_home()

    # -- stores (made on first use: start-up touches no keyring and no network) -------------

    @cached_property
    def catalog(self) -> Catalog:
        return load_catalog()

    @cached_property
    def secrets(self) -> SecretStore:
        return SecretStore(self.home.home_id)

    @cached_property
    def audit(self) -> AuditLog:
        return get_audit_log(self.home)

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.home, catalog=self.catalog, secrets=self.secrets, audit=self.audit)

    @cached_property
    def settings(self) -> SettingsStore:
        return SettingsStore(self.home)

    @cached_property
    def check_store(self) -> CheckStore:
        return CheckStore(self.home)

    @cached_property
    def host_keys(self) -> HostKeyStore:
        return HostKeyStore(self.home)

    @cached_property
    def price_store(self) -> PriceStore:
        from comfyvn_gui.store.prices import PriceStore  # (lazy: pydantic models of offers)

        return PriceStore(self.home)

    @cached_property
    def job_store(self) -> JobStore:
        # Imported here, not at the top: SQLite and the job model are not needed to start
        # (docs/architecture.md, "Layers").
        from comfyvn_gui.store.jobs import JobStore

        return JobStore(self.home)

    @cached_property
    def local_snapshots(self) -> LocalSnapshots:
        # Lazy like the advice feature that defines it (see _advice).
        from .advice import LocalSnapshots

        return LocalSnapshots()

    # -- features (made on first use, each handed only what it needs) -----------------------

    @cached_property
    def _workers(self) -> Workers:
        return Workers()

    @cached_property
    def _readvise(self) -> ReadviseTrigger:
        return ReadviseTrigger(
            home=self.home,
            audit=self.audit,
            queue_exists=lambda: self.job_store.exists(),
            readvise=lambda trigger: self._jobs.readvise(trigger),
            advice_state=lambda: self._advice.state(),
        )

    @cached_property
    def _providers(self) -> ProvidersFeature:
        return ProvidersFeature(
            registry=self.registry,
            catalog=self.catalog,
            on_change=self._readvise.quietly,
            in_flight=self._work_in_flight,
        )

    def _work_in_flight(self) -> dict[str, list[int]]:
        """Provider id -> its jobs in flight (submitting or running), which lock it (see
        core/provider_lock.py). A home without a job queue has none: SQLite is not loaded."""
        if not self.home.jobs_file.exists():
            return {}
        out: dict[str, list[int]] = {}
        from comfyvn_gui.core.jobs import IN_FLIGHT  # (lazy: not needed to start)

        for job_id, provider in self.job_providers(IN_FLIGHT).items():
            if provider is not None:
                out.setdefault(provider, []).append(job_id)
        # (an ended job whose machine was not released yet: its release uses the provider)
        for job_id, provider in self.job_store.unreleased().items():
            if provider is not None:
                out.setdefault(provider, []).append(job_id)
        return out

    @cached_property
    def _checks(self) -> ChecksFeature:
        return ChecksFeature(
            catalog=self.catalog,
            registry=self.registry,
            check_store=self.check_store,
            host_keys=self.host_keys,
            settings=self.settings,
            audit=self.audit,
            workers=self._workers,
            adapter_for=adapter_for,
            import_adapters=import_all,
            watch=self._readvise.watching,
        )

    @cached_property
    def _advice(self) -> AdviceFeature:
        # Imported on first use, not at the top: the advisor and its estimator cost every
        # command-line start ~30 ms and only matter once something is advised; a home without
        # a job queue never loads them (docs/architecture.md, "Layers").
        from .advice import AdviceFeature

        return AdviceFeature(
            catalog=self.catalog,
            registry=self.registry,
            check_store=self.check_store,
            settings=self.settings,
            snapshots=self.local_snapshots,
            live_prices=lambda: self._prices.live(),
        )

    @cached_property
    def _prices(self) -> PricesFeature:
        from .prices import PricesFeature  # (lazy: the sources' registry and offer models)

        return PricesFeature(
            catalog=self.catalog,
            registry=self.registry,
            store=self.price_store,
            settings=self.settings,
            checks=self._checks,
            workers=self._workers,
        )

    @cached_property
    def _jobs(self) -> JobsFeature:
        # Lazy for the same reason as _advice (it needs the advisor and SQLite).
        from .jobs import JobsFeature

        return JobsFeature(job_store=self.job_store, advice=self._advice, audit=self.audit)

    @cached_property
    def _dispatch(self) -> DispatchFeature:
        # Lazy like _jobs (the run model, the gate and SQLite).
        from .dispatch import DispatchFeature

        return DispatchFeature(
            job_store=self.job_store,
            jobs=self._jobs,
            advice=self._advice,
            registry=self.registry,
            catalog=self.catalog,
            settings=self.settings,
            audit=self.audit,
            start_driver=self.start_driver,
        )

    @cached_property
    def _running(self) -> RunningFeature:
        from .running import RunningFeature

        return RunningFeature(
            home_id=self.home.home_id,
            registry=self.registry,
            job_store=lambda: self.job_store if self.home.jobs_file.exists() else None,
            context=self._checks.context,
        )

    @cached_property
    def _settings(self) -> SettingsFeature:
        return SettingsFeature(
            settings=self.settings, audit=self.audit, on_change=self._readvise.quietly
        )

    @cached_property
    def _about(self) -> AboutFeature:
        return AboutFeature(home=self.home, catalog=self.catalog, secrets=self.secrets)

    @cached_property
    def _diagnostics(self) -> Diagnostics:
        # Lazy: zip writing, package metadata and the job store are only needed for a report.
        from .diagnostics import Diagnostics

        # Functions, not objects: each is called when a report is made, inside its section's
        # guard, so a broken registry, keyring or catalog still gets a report.
        return Diagnostics(
            home=self.home,
            audit=self.audit,
            providers=lambda: self.registry.providers(),
            read_secrets=lambda entry: self.registry.read_secrets(entry),
            about=lambda: self._about.about(),
            catalog_version=lambda: self.catalog.version,
            settings=lambda: self.settings.all(),
            check_results=lambda: self.check_store.load(),
            local_snapshot=lambda: self.local_snapshot(),
        )

    @cached_property
    def monitor(self) -> HealthMonitor:
        return HealthMonitor(
            checks=self._checks,
            registry=self.registry,
            settings=self.settings,
            audit=self.audit,
            schedule=MonitorSchedule(self.home),
            workers=self._workers,
            refresh_prices=self.refresh_stale_prices,
        )

    # -- workers -------------------------------------------------------------------------

    @property
    def executor(self) -> BlockingExecutor:
        """SDK calls of the checks; each provider kind is limited to a lane of 4 workers."""
        return self._workers.executor

    @property
    def keyring_executor(self) -> BlockingExecutor:
        """Keyring reads: their own workers, so busy SDK calls never delay them."""
        return self._workers.keyring_executor

    @property
    def io_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        """Disk and keyring work of async callers (recording check results, the GUI's calls)."""
        return self._workers.io_pool

    def warm_up(self) -> None:
        """Import the provider adapters and the HTTP client ahead of the first check (call it
        off the GUI thread: the first check then does not import them on it)."""
        self._checks.warm_up()

    def close(self) -> None:
        """Stop this service's worker threads (waiting for running calls to end) and close
        the job queue's connection. A closed service can still be used: the workers and
        connections are made again on demand."""
        workers = self.__dict__.get("_workers")
        if workers is not None:
            workers.close()
        store = self.__dict__.get("job_store")
        if store is not None:
            store.close()
        trigger = self.__dict__.get("_readvise")
        if trigger is not None:
            trigger.close()

    # -- catalog ---------------------------------------------------------------------------

    def templates(self) -> list[ProviderProfile]:
        return self._providers.templates()

    def template(self, template_id: str) -> ProviderProfile:
        return self._providers.template(template_id)

    # -- providers -------------------------------------------------------------------------

    def list_providers(self) -> list[ProviderEntry]:
        return self._providers.entries()

    def get_provider(self, provider_id: str) -> ProviderEntry:
        return self._providers.get(provider_id)

    def missing_fields(self, entry: ProviderEntry) -> list[str]:
        """Required auth fields that are neither configured nor stored in the keyring."""
        return self._providers.missing_fields(entry)

    def provider_problem(self, entry: ProviderEntry) -> str | None:
        """Why this version cannot use a registered provider (its template is unknown: a newer
        version's, a hand edit), with the fix; None when it can be used."""
        return self._providers.problem(entry)

    def provider_problems(self) -> dict[str, str]:
        """:meth:`provider_problem` of every registered provider that has one, by id."""
        return self._providers.problems()

    def create_provider(self, template_id: str, payload: Mapping[str, Any]) -> ProviderEntry:
        return self._providers.create(template_id, payload)

    def register_provider(self, payload: Mapping[str, Any]) -> tuple[ProviderEntry, bool]:
        return self._providers.register(payload)

    def save_provider(
        self, payload: Mapping[str, Any], *, new: bool | None = None
    ) -> tuple[ProviderEntry, bool]:
        """Save a provider form's payload as it is (``id``, ``template_id`` and the rest).
        ``new``: True for a new provider, False for an update, None: decided by ``id``. See
        :meth:`ProvidersFeature.save`. Returns (entry, created)."""
        return self._providers.save(payload, new=new)

    def remove_provider(self, provider_id: str) -> ProviderEntry:
        return self._providers.remove(provider_id)

    def remove_all_providers(self) -> list[str]:
        return self._providers.remove_all()

    def export_providers(self, *, include_secrets: bool = False) -> dict[str, Any]:
        return self._providers.export(include_secrets=include_secrets)

    def export_providers_to(self, path: Path, *, include_secrets: bool = False) -> int:
        """Write the export to a private file (mode 0600); returns the number of providers."""
        return self._providers.export_to(Path(path), include_secrets=include_secrets)

    def plan_import(self, data: Any, *, replace: bool, overwrite: bool) -> ImportPlan:
        return self._providers.plan_import(data, replace=replace, overwrite=overwrite)

    def import_providers(self, data: Any, *, replace: bool, overwrite: bool) -> ImportReport:
        return self._providers.import_(data, replace=replace, overwrite=overwrite)

    def keyring_backend(self) -> str:
        return self._about.keyring_backend()

    # -- validation and health ------------------------------------------------------------

    async def check(
        self,
        kind: CheckKind,
        ids: Sequence[str] | None = None,
        *,
        timeout_s: float | None = None,
        transport: Any = None,
    ) -> list[CheckResult]:
        """Validate or health-check providers, all at once (see :class:`ChecksFeature`)."""
        return await self._checks.check(kind, ids, timeout_s=timeout_s, transport=transport)

    def run_checks(
        self, kind: CheckKind, ids: Sequence[str] | None = None, *, timeout_s: float | None = None
    ) -> list[CheckResult]:
        """Blocking form of :meth:`check`, for the command line."""
        return self._checks.run_checks(kind, ids, timeout_s=timeout_s)

    def trust_host(self, provider_id: str, fingerprint: str) -> PinnedKey:
        """Pin the SSH host key of a provider (after the user compared the fingerprint)."""
        return self._checks.trust_host(provider_id, fingerprint)

    def health_map(self) -> dict[str, str]:
        """Each provider's latest health (healthy | degraded | unhealthy | unknown)."""
        return self._checks.health_map()

    def last_results(self) -> dict[str, dict[str, CheckResult]]:
        return self._checks.last_results()

    # -- advice ----------------------------------------------------------------------------

    def local_snapshot(self, *, fresh: bool = False) -> LocalSnapshot:
        """This computer's GPUs (NVML); blocking, cached for a few seconds."""
        return self.local_snapshots.get(fresh=fresh)

    def describe_local(self, snapshot: LocalSnapshot) -> str:
        """A local snapshot in words (``1 GPU: NVIDIA GeForce RTX 4090, 24.0 GB ...`` or
        ``no local GPU (why)``)."""
        return wording.local_gpus(snapshot)

    def advisor_settings(self) -> AdvisorSettings:
        return self._advice.advisor_settings()

    def advise(self, request: AdviceRequest | Mapping[str, Any]) -> Advice:
        """A what-if advice (records nothing): the request's workload against the live
        registry, health, local GPU and settings, or the ones the request gives."""
        return self._advice.advise(request)

    # -- prices and offers ------------------------------------------------------------------

    async def refresh_prices(
        self,
        ids: Sequence[str] | None = None,
        *,
        timeout_s: float | None = None,
        transport: Any = None,
    ) -> list[PriceRecord]:
        """Fetch the live prices of ``ids`` (default: every enabled provider with a live price
        source) at once, keep them, and re-advise the queue if any came back."""
        import asyncio  # (lazy, as in run_running: not needed to start)

        records = await self._prices.refresh(ids, timeout_s=timeout_s, transport=transport)
        if any(r.taken_at is not None for r in records):
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self.io_pool, self._readvise.quietly, "live prices")
        return records

    def run_refresh_prices(
        self, ids: Sequence[str] | None = None, *, timeout_s: float | None = None
    ) -> list[PriceRecord]:
        """Blocking form of :meth:`refresh_prices`, for the command line."""
        import asyncio

        records: list[PriceRecord] = asyncio.run(self.refresh_prices(ids, timeout_s=timeout_s))
        return records

    async def refresh_stale_prices(self) -> list[PriceRecord]:
        """Refresh only the live prices that are missing or older than the setting (the
        health monitor's background refresh, in the window and in ``serve``)."""
        import asyncio

        stale = await asyncio.get_running_loop().run_in_executor(self.io_pool, self.stale_prices)
        return await self.refresh_prices(stale) if stale else []

    def stale_prices(self) -> list[str]:
        """The providers with a live price source whose prices are missing or older than
        ``prices.max_age_h`` (what a background refresh asks for)."""
        return self._prices.stale()

    def live_prices(self) -> dict[str, LivePrices]:
        """Each provider's kept live prices, marked fresh while younger than the setting."""
        return self._prices.live()

    def offers(self, **filters: Any) -> list[Offer]:
        """Every offer across the user's providers and the templates, cheapest first, from
        the home and the catalog (no network); ``filters``: see ``PricesFeature.offers``."""
        return self._prices.offers(**filters)

    # -- settings --------------------------------------------------------------------------

    def get_settings(self) -> dict[str, Any]:
        return self._settings.all()

    def get_setting(self, key: str) -> Any:
        return self._settings.get(key)

    def set_setting(self, key: str, value: Any) -> Any:
        return self._settings.set(key, value)

    def unset_setting(self, key: str) -> Any:
        return self._settings.unset(key)

    # -- jobs ------------------------------------------------------------------------------

    def add_job(self, data: Any) -> Job:
        """Queue one workload (``jobs add``), advised and logged."""
        return self._jobs.add(data)

    def add_jobs(self, drafts: Sequence[tuple[str, Workload, dict[str, Any]]]) -> list[Job]:
        """Queue (title, workload, source) drafts, advised against one reading; all or
        nothing."""
        return self._jobs.add_jobs(drafts)

    def import_summary(self, data: Any, project_dir: str | None = None) -> list[Job]:
        """One advised job per unit of work of an importer summary; all or nothing.
        ``project_dir``: the absolute folder its asset paths are relative to."""
        return self._jobs.import_summary(data, project_dir)

    def cancel_job(self, job_id: int, *, interface: str = "command line") -> Job:
        """Cancel a job: a queued one at once (nothing was sent for it), one in flight by the
        driver (asked now; ``jobs watch`` follows it to ``cancelled``); ConflictError for one
        that ended."""
        return self._dispatch.cancel(job_id, interface=interface)

    # -- dispatch --------------------------------------------------------------------------

    def job_consent(self, job_id: int) -> list[ConsentItem]:
        """The warnings of a job's current advice the user must acknowledge to dispatch it."""
        return self._dispatch.consent(job_id)

    def job_bill_guard(self, job_id: int) -> str | None:
        """What stops the bill of a job's provider if the app is gone, in words (None where
        nothing is billed)."""
        return self._dispatch.bill_guard(job_id)

    def job_ceilings(self, job_id: int) -> Ceilings:
        """The runtime and cost ceilings dispatching the job now would set (ConflictError where
        dispatch would refuse: nothing bounds the bill)."""
        return self._dispatch.ceilings(job_id)

    def check_dispatch(self, job_id: int, project_dir: str | None = None) -> Job:
        """Every dispatch check but the consent gate (a refusal names what to fix)."""
        return self._dispatch.check(job_id, project_dir)

    def dispatch_job(
        self,
        job_id: int,
        *,
        provider: str | None = None,
        decided_at: Any = None,
        acknowledge: Sequence[str] = (),
        project_dir: str | None = None,
        interface: str,
        dry_run: bool = False,
    ) -> Job:
        """Hand a queued job to the dispatch driver after every check and the consent gate
        (docs/architecture.md, "Dispatch"); the driver is started. ``dry_run``: check only."""
        return self._dispatch.dispatch(
            job_id,
            provider=provider,
            decided_at=decided_at,
            acknowledge=acknowledge,
            project_dir=project_dir,
            interface=interface,
            dry_run=dry_run,
        )

    def watch_job(
        self, job_id: int, *, poll_s: float = 0.25, timeout_s: float | None = None
    ) -> Iterator[Job]:
        """The job each time it changes, until it ends (blocking; a thread or the CLI)."""
        return self._dispatch.watch(job_id, poll_s=poll_s, timeout_s=timeout_s)

    def job_outputs(self, job_id: int) -> dict[str, Any]:
        """A dispatched job's output folder and files (``outputs.json``'s list)."""
        return self._dispatch.outputs(job_id)

    def remove_job(self, job_id: int) -> Job:
        """Delete a queued or ended job (its outputs stay on disk; its trail is kept)."""
        return self._dispatch.remove(job_id)

    async def running(self) -> RunningReport:
        """Every resource this home holds at a provider, with its job, age and cost so far;
        orphans and leaked ones marked (docs/architecture.md, "Dispatch")."""
        return await self._running.listing()

    async def stop_running(
        self, ref: str | None = None, *, orphans: bool = False
    ) -> list[RunningRow]:
        """Release one listed resource (``<provider_id>:<id>``), or every orphan and leaked
        one; the rows released."""
        return await self._running.stop(ref, orphans=orphans)

    def orphan_warning(self) -> str | None:
        """Blocking (a worker thread): a sentence when this home holds orphan or leaked
        resources at a provider (the window and ``serve`` ask at start), else None. Nothing is
        asked of any provider when none rents machines."""
        import asyncio

        if not self._running.has_machine_providers():
            return None
        report = asyncio.run(self._running.listing())
        orphans = report.orphans
        if not orphans:
            return None
        cost = sum(r.hourly_usd or 0.0 for r in orphans)
        refs = ", ".join(r.ref for r in orphans[:5]) + (" ..." if len(orphans) > 5 else "")
        return (
            f"{len(orphans)} resource{'s' if len(orphans) != 1 else ''} of this home at the "
            f"providers no job owns ({refs})"
            + (f", billing about ${cost:.2f}/hr" if cost else "")
            + ": release with `comfyvn-gui running stop --orphans`"
        )

    def start_driver(self) -> bool:
        """Start this home's dispatch driver (detached) unless one runs; True if started."""
        from .driver import start_driver  # lazy: subprocess and the driver's imports

        return start_driver(self.home)

    def resume_dispatch(self) -> bool:
        """Start the dispatch driver if a job is in flight (after a restart, a logout, a
        crash): the window and ``serve`` call it when they start. Nothing to do in a home
        without a job queue (SQLite is not loaded)."""
        if not self.home.jobs_file.exists():
            return False
        from comfyvn_gui.core.jobs import IN_FLIGHT

        busy = self.job_store.count(IN_FLIGHT) > 0 or bool(self.job_store.unreleased())
        return busy and self.start_driver()

    def driver(self, **options: Any) -> Driver:
        """This home's dispatch driver (``comfyvn-gui driver`` runs it)."""
        from .driver import Driver

        return Driver(
            home=self.home,
            job_store=self.job_store,
            registry=self.registry,
            checks=self._checks,
            settings=self.settings,
            audit=self.audit,
            **options,
        )

    def retry_job(self, job_id: int) -> Job:
        """Put a failed or cancelled job back in the queue, advised afresh."""
        return self._jobs.retry(job_id)

    def job_inputs(self, job_id: int, project_dir: str | None = None) -> list[Path]:
        """A job's input files, looked up in its project folder (docs/import-summary.md)."""
        return self._jobs.inputs(job_id, project_dir)

    def job_outputs_dir(self, job_id: int, project_dir: str | None = None) -> Path:
        """Where a job's outputs go (docs/architecture.md, "Dispatch")."""
        return self._jobs.outputs_dir(job_id, project_dir)

    def list_jobs(self, status: Sequence[str] | None = None, *, brief: bool = False) -> list[Job]:
        """The jobs in the queue (with one of ``status``). ``brief``: without the alternatives
        in each decision's advice (a list's view needs none; ``get_job`` has them)."""
        return self._jobs.select(status, brief=brief)

    def iter_jobs(
        self,
        status: Sequence[str] | None = None,
        *,
        brief: bool = False,
        changed_since: str | None = None,
    ) -> Iterator[Job]:
        """:meth:`list_jobs` one job at a time, read in the calling thread (consume it there):
        a reader that keeps little of each job never holds them all. ``changed_since``: only
        the jobs written at or after that ISO time (``Job.updated_at``)."""
        return self._jobs.iter_select(status, brief=brief, changed_since=changed_since)

    def job_ids(self) -> list[int]:
        """Every job's id in the queue's order (cheap: no job is parsed)."""
        return self.job_store.ids()

    def job_ids_digest(self) -> tuple[int, int, int]:
        """(count, highest id, sum of ids) of the queue: changes whenever a job is added or
        removed (compare it with :func:`ids_digest` of the ids a reader holds)."""
        return self.job_store.ids_digest()

    def count_jobs(self, status: Sequence[str] | None = None) -> int:
        """How many jobs (with one of ``status``), without reading them."""
        return self.job_store.count(status)

    def job_providers(self, status: Sequence[str]) -> dict[int, str | None]:
        """Each job's (with one of ``status``) current provider by id, without reading jobs."""
        return self.job_store.providers(status)

    def get_job(self, job_id: int) -> Job:
        return self._jobs.get(job_id)

    def job_events(self, job_id: int) -> list[JobEvent]:
        return self._jobs.events(job_id)

    def job_advice(self, job: Job) -> Advice | None:
        """The advice recorded with a job's current decision (None before any)."""
        from .jobs import advice_of  # lazy like _jobs

        return advice_of(job)

    def jobs_summary(self, jobs: Sequence[Job]) -> list[dict[str, Any]]:
        """Rows for a jobs table: id, title, kind, status, provider, decided_by,
        estimated_cost(_usd), warnings (codes) and reason of each job."""
        from .jobs import jobs_summary  # lazy like _jobs

        return jobs_summary(jobs)

    def pick_provider(self, job_id: int, provider_id: str | None) -> Job:
        """The user's pick for a queued job (None: back to the advisor's choice)."""
        return self._jobs.pick(job_id, provider_id)

    def readvise(self, trigger: str | None = None) -> list[dict[str, Any]]:
        """Re-advise the queued jobs; returns (and records) only the changed decisions."""
        return self._jobs.readvise(trigger)

    @property
    def readvise_in_subprocess(self) -> bool:
        """The desktop app re-advises in a child process (see ``ReadviseRunner``): a large
        queue's re-advice would otherwise hold the GIL of the window's process."""
        return self._readvise.in_subprocess

    @readvise_in_subprocess.setter
    def readvise_in_subprocess(self, value: bool) -> None:
        self._readvise.in_subprocess = value

    def _readvise_runner(self) -> ReadviseRunner | None:
        return self._readvise.runner()

    def readvise_quietly(self, trigger: str) -> None:
        """Re-advise after a change that already succeeded: a failure here is logged, never
        raised (the change itself stands; the next re-advice catches up)."""
        self._readvise.quietly(trigger)

    # -- files a window follows ----------------------------------------------------------

    def watched_files(self) -> dict[Path, str]:
        """The home's files other processes change, and what a change of each means to a
        window: ``providers`` (the registry, the settings), ``results`` (check results),
        ``jobs`` (the queue's database and its write-ahead log) or ``prices`` (live prices)."""
        jobs = self.home.jobs_file  # (not the job store: SQLite is not needed to start)
        return {
            self.home.registry_file: "providers",
            self.settings.path: "providers",
            self.check_store.path: "results",
            jobs.with_name(jobs.name + "-wal"): "jobs",
            jobs: "jobs",
            self.home.data_dir / "prices.json": "prices",
        }

    # -- the published JSON Schemas ------------------------------------------------------

    @staticmethod
    def write_schemas(folder: Path) -> list[Path]:
        """Write the JSON Schemas of the public objects under ``folder``."""
        # Lazy: the schemas need every public model (the advisor's included), which the
        # command line's start-up does not load for other commands.
        from comfyvn_gui.core.schemas import schemas
        from comfyvn_gui.store.schema_files import write_schemas

        return write_schemas(Path(folder), schemas())

    @staticmethod
    def stale_schemas(folder: Path) -> list[str]:
        """The schema files under ``folder`` that are missing or differ from the models."""
        from comfyvn_gui.core.schemas import schemas  # lazy, as in write_schemas
        from comfyvn_gui.store.schema_files import stale_schemas

        return stale_schemas(Path(folder), schemas())

    # -- about -----------------------------------------------------------------------------

    def keyring_status(self) -> tuple[str, str | None]:
        """(backend name, None) when the keyring works now, else ("none", why and how to fix)."""
        return self._about.keyring_status()

    def about(self) -> dict[str, Any]:
        return self._about.about()

    def write_diagnostics(self, path: Path) -> DiagnosticsReport:
        """Write the diagnostics zip of this home to ``path`` (no secret inside). Blocking:
        call it off the GUI thread. Raises OperationError when ``path`` cannot be written."""
        return self._diagnostics.write(path)
