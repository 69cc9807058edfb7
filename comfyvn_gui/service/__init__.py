"""The one façade the CLI, the HTTP API and the GUI talk to (DESIGN.md, "Layers").

It composes the catalog, the registry, the secret store, the settings and the audit log of
one home. Rules live in ``core/``; this module only wires them together, so the three skins
stay thin and agree with each other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from comfyvn_gui import __version__
from comfyvn_gui.core.catalog import Catalog, ProviderProfile, load_catalog
from comfyvn_gui.core.checks import CREDENTIAL_FAILURES, CheckKind, CheckResult, now
from comfyvn_gui.core.errors import InputError, NotFoundError
from comfyvn_gui.core.hostkeys import PinnedKey
from comfyvn_gui.core.models import ImportPlan, ProviderEntry
from comfyvn_gui.providers import adapter_for
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext, NetworkOptions, run_check
from comfyvn_gui.store.audit import AuditLog, get_audit_log
from comfyvn_gui.store.checks import CheckStore
from comfyvn_gui.store.hostkeys import HostKeyStore
from comfyvn_gui.store.paths import Home, resolve_home
from comfyvn_gui.store.registry import ImportReport, Registry
from comfyvn_gui.store.secrets import SecretStore, SecretStoreError
from comfyvn_gui.store.settings import SettingsStore

if TYPE_CHECKING:
    from comfyvn_gui.core.advisor import Advice, AdviceRequest, AdvisorSettings
    from comfyvn_gui.core.checks import LocalSnapshot
    from comfyvn_gui.core.jobs import Job, JobEvent
    from comfyvn_gui.store.jobs import JobStore

    from .advice import LocalSnapshots
    from .monitor import HealthMonitor


class Service:
    """Everything one home offers: providers, secrets, settings (later: checks, advice, jobs)."""

    def __init__(self, home: Home | None = None) -> None:
        self.home = home or resolve_home()

    # -- collaborators (created on first use: start-up touches no keyring and no network) -

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

    # -- catalog ---------------------------------------------------------------------------

    def templates(self) -> list[ProviderProfile]:
        return list(self.catalog.profiles.values())

    def template(self, template_id: str) -> ProviderProfile:
        return self.catalog.profile(template_id)

    # -- providers -------------------------------------------------------------------------

    def list_providers(self) -> list[ProviderEntry]:
        return self.registry.providers()

    def get_provider(self, provider_id: str) -> ProviderEntry:
        return self.registry.get(provider_id)

    def missing_fields(self, entry: ProviderEntry) -> list[str]:
        """Required auth fields that are neither configured nor stored in the keyring."""
        profile = self.catalog.profile(entry.template_id)
        have = set(entry.config) | set(entry.secrets_set)
        return [f.name for f in profile.auth_fields if f.required and f.name not in have]

    def create_provider(self, template_id: str, payload: Mapping[str, Any]) -> ProviderEntry:
        fields = {k: v for k, v in payload.items() if k != "template_id"}
        entry = self.registry.create(template_id, **fields)
        self.readvise_quietly(f"{entry.id} was added")
        return entry

    def register_provider(self, payload: Mapping[str, Any]) -> tuple[ProviderEntry, bool]:
        entry, created = self.registry.register(payload)
        self.readvise_quietly(f"{entry.id} was {'added' if created else 'changed'}")
        return entry, created

    def remove_provider(self, provider_id: str) -> ProviderEntry:
        entry = self.registry.remove(provider_id)
        self.readvise_quietly(f"{provider_id} was removed")
        return entry

    def remove_all_providers(self) -> list[str]:
        removed = self.registry.remove_all()
        self.readvise_quietly("every provider was removed")
        return removed

    def export_providers(self, *, include_secrets: bool = False) -> dict[str, Any]:
        return self.registry.export(include_secrets=include_secrets)

    def plan_import(self, data: Any, *, replace: bool, overwrite: bool) -> ImportPlan:
        return self.registry.plan_import(data, replace=replace, overwrite=overwrite)

    def import_providers(self, data: Any, *, replace: bool, overwrite: bool) -> ImportReport:
        report = self.registry.import_(data, replace=replace, overwrite=overwrite)
        self.readvise_quietly("providers were imported")
        return report

    def keyring_backend(self) -> str:
        return self.secrets.backend_name

    # -- validation and health ------------------------------------------------------------

    @cached_property
    def executor(self) -> BlockingExecutor:
        """SDK calls of the checks; each provider kind is limited to a lane of 4 workers."""
        return BlockingExecutor(max_workers=16, lane_limit=4)

    @cached_property
    def keyring_executor(self) -> BlockingExecutor:
        """Keyring reads: their own workers, so busy SDK calls never delay them."""
        return BlockingExecutor(max_workers=4)

    @cached_property
    def io_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        """Disk and keyring work of async callers (recording check results, the GUI's calls)."""
        return concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="comfyvn-io")

    def _readvise_runner(self) -> Any:
        if not self.readvise_in_subprocess:
            return None
        runner = self.__dict__.get("_runner")
        if runner is None:
            h = self.home
            root = h.config_dir.parent
            if not (h.data_dir.parent == root == h.log_dir.parent):
                return None  # a home a child process could not find: re-advise here
            from .jobs import ReadviseRunner

            runner = self.__dict__["_runner"] = ReadviseRunner(root)
        return runner

    def close(self) -> None:
        """Stop this service's worker threads (waiting for running calls to end) and close
        the job queue's connection. A closed service can still be used: the workers and
        connections are made again on demand."""
        for name in ("executor", "keyring_executor"):
            pool = self.__dict__.pop(name, None)
            if pool is not None:
                pool._pool.shutdown(wait=True, cancel_futures=True)
        io = self.__dict__.pop("io_pool", None)
        if io is not None:
            io.shutdown(wait=True, cancel_futures=True)
        store = self.__dict__.get("job_store")
        if store is not None:
            store.close()
        runner = self.__dict__.pop("_runner", None)
        if runner is not None:
            runner.close()

    @cached_property
    def check_store(self) -> CheckStore:
        return CheckStore(self.home)

    def _check_targets(self, kind: CheckKind, ids: Sequence[str] | None) -> list[ProviderEntry]:
        entries = self.registry.providers()
        if ids:
            by_id = {p.id: p for p in entries}
            unknown = [i for i in ids if i not in by_id]
            if unknown:
                raise NotFoundError(
                    f"no provider {', '.join(repr(u) for u in unknown)} is registered "
                    f"(registered: {', '.join(by_id)})",
                    fields=["id"],
                )
            return [by_id[i] for i in dict.fromkeys(ids)]
        # No ids: every provider for validation; health watches the enabled ones.
        return entries if kind == "validate" else [p for p in entries if p.enabled]

    async def check(
        self,
        kind: CheckKind,
        ids: Sequence[str] | None = None,
        *,
        timeout_s: float | None = None,
        transport: Any = None,
    ) -> list[CheckResult]:
        """Validate or health-check providers, all at once. Never raises for a failed check.

        Each check's deadline counts from now (waiting for the executor included). Results
        are stored in the home; a ``valid`` result activates the provider (if its credentials
        did not change meanwhile), a credential failure deactivates it.
        """
        entries = self._check_targets(kind, ids)
        if timeout_s is None:
            timeout_s = float(self.settings.get("checks.timeout_s"))
        network = NetworkOptions(ca_bundle=self.settings.get("network.ca_bundle"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        seen_txn = self.registry.current_txn() if kind == "validate" else None
        results = await asyncio.gather(
            *(self._check_one(kind, e, deadline, network, transport) for e in entries)
        )
        outcome = [r for r, _ in results]
        await loop.run_in_executor(self.io_pool, self._record_checks, kind, results, seen_txn)
        return outcome

    def run_checks(
        self, kind: CheckKind, ids: Sequence[str] | None = None, *, timeout_s: float | None = None
    ) -> list[CheckResult]:
        """Blocking form of :meth:`check`, for the command line."""
        return asyncio.run(self.check(kind, ids, timeout_s=timeout_s))

    async def _check_one(
        self,
        kind: CheckKind,
        entry: ProviderEntry,
        deadline: float,
        network: NetworkOptions,
        transport: Any,
    ) -> tuple[CheckResult, str | None]:
        profile = self.catalog.profile(entry.template_id)
        try:
            adapter = adapter_for(entry.template_id)
        except Exception as exc:  # noqa: BLE001 - e.g. an SDK that is not installed
            return self._plain_result(
                entry,
                kind,
                "error",
                f"the {profile.name} adapter could not be loaded ({type(exc).__name__}: {exc})",
            ), None
        if adapter is None:
            return self._plain_result(
                entry,
                kind,
                "error",
                f"checking {profile.name} is not available in this version yet",
            ), None
        try:
            secrets = (
                await self.keyring_executor.run(deadline, self.registry.read_secrets, entry)
                if entry.secrets_set
                else {}
            )
        except TimeoutError:
            return self._plain_result(
                entry, kind, "timeout", "the OS keyring did not answer before the deadline"
            ), None
        except SecretStoreError as exc:
            return self._plain_result(entry, kind, "error", exc.message), None
        ctx = CheckContext(
            provider=entry,
            profile=profile,
            secrets=secrets,
            deadline=deadline,
            executor=self.executor,
            network=network,
            transport=transport,
            host_keys=self.host_keys,
        )
        result = await run_check(adapter, ctx, kind)
        return result, self.registry.fingerprint(entry, secrets)

    @staticmethod
    def _plain_result(
        entry: ProviderEntry, kind: CheckKind, code: str, message: str
    ) -> CheckResult:
        return CheckResult(
            provider=entry.id,
            check=kind,
            status=code if kind == "validate" else "unknown",
            code=code,
            message=message,
            checked_at=now(),
        )

    def _advice_state(self) -> dict[str, tuple[bool, str, Any]]:
        """What the advisor reads of each provider: active, health, reported VRAM."""
        from .advice import live_providers

        providers, health = live_providers(self)
        return {
            p.id: (p.active, health.get(p.id, "unknown"), (p.reported_vram_gb, p.health_code))
            for p in providers
        }

    def _record_checks(
        self,
        kind: CheckKind,
        results: list[tuple[CheckResult, str | None]],
        seen_txn: str | None,
    ) -> None:
        before = self._advice_state() if self.job_store.exists() else None
        self._store_checks(kind, results, seen_txn)
        if before is None:
            return
        after = self._advice_state()
        said = []
        for pid, (active, health, reported) in after.items():
            was = before.get(pid)
            if was is None:
                continue
            if health != was[1]:
                said.append(f"{pid} turned {health}")
            if active != was[0]:
                said.append(f"{pid} {'passed' if active else 'failed'} validation")
            if reported != was[2] and health == was[1]:
                said.append(f"{pid} reported new capacity")
        if said:
            self.readvise_quietly("; ".join(said))

    def _store_checks(
        self,
        kind: CheckKind,
        results: list[tuple[CheckResult, str | None]],
        seen_txn: str | None,
    ) -> None:
        self.check_store.save([r for r, _ in results])
        outcomes: dict[str, tuple[bool, str]] = {}
        for result, fingerprint in results:
            self.audit.event(
                f"provider.{'validated' if kind == 'validate' else 'health_checked'}",
                provider=result.provider,
                status=result.status,
                code=result.code,
                fields=result.fields,
                latency_ms=result.latency_ms,
            )
            if kind != "validate" or fingerprint is None:
                continue
            if result.status == "valid":
                outcomes[result.provider] = (True, fingerprint)
            elif result.status in CREDENTIAL_FAILURES:
                outcomes[result.provider] = (False, fingerprint)
            # a network or load problem says nothing about the credentials
        self.registry.apply_validations(outcomes, seen_txn=seen_txn)

    @cached_property
    def host_keys(self) -> HostKeyStore:
        return HostKeyStore(self.home)

    def trust_host(self, provider_id: str, fingerprint: str) -> PinnedKey:
        """Pin the SSH host key of a provider (after the user compared the fingerprint)."""
        entry = self.get_provider(provider_id)
        profile = self.catalog.profile(entry.template_id)
        if profile.kind != "ssh":
            raise InputError(
                f"{provider_id!r} is a {profile.name} provider; only SSH providers have host keys",
                fields=["id"],
            )
        host = str(entry.config.get("hostname") or "")
        if not host:
            raise InputError(
                f"{provider_id!r} has no hostname yet; set it before pinning its key",
                fields=["hostname"],
            )
        if ":" not in host.rsplit("]", 1)[-1]:
            host = f"{host}:22"
        pinned = self.host_keys.pin(provider_id, host, fingerprint)
        self.audit.event(
            "provider.host_key_pinned",
            provider=provider_id,
            host=host,
            fingerprint=pinned.fingerprint,
        )
        return pinned

    @cached_property
    def monitor(self) -> HealthMonitor:
        from .monitor import HealthMonitor

        return HealthMonitor(self)

    def health_map(self) -> dict[str, str]:
        """Each provider's latest health (healthy | degraded | unhealthy | unknown), as the
        monitor and any `health` check left it in the home; the advisor reads this."""
        results = self.check_store.load()
        out = {}
        for p in self.registry.providers():
            latest = results.get(p.id, {}).get("health")
            out[p.id] = latest.status if latest is not None else "unknown"
        return out

    def last_results(self) -> dict[str, dict[str, CheckResult]]:
        return self.check_store.load()

    # -- advice ----------------------------------------------------------------------------

    @cached_property
    def local_snapshots(self) -> LocalSnapshots:
        from .advice import LocalSnapshots

        return LocalSnapshots()

    def local_snapshot(self, *, fresh: bool = False) -> LocalSnapshot:
        """This computer's GPUs (NVML); blocking, cached for a few seconds."""
        return self.local_snapshots.get(fresh=fresh)

    def advisor_settings(self) -> AdvisorSettings:
        from .advice import advisor_settings

        return advisor_settings(self)

    def advise(self, request: AdviceRequest | Mapping[str, Any]) -> Advice:
        """A what-if advice (records nothing): the request's workload against the live
        registry, health, local GPU and settings, or the ones the request gives."""
        from .advice import advise_request

        return advise_request(self, request)

    # -- settings --------------------------------------------------------------------------

    def get_settings(self) -> dict[str, Any]:
        return self.settings.all()

    def get_setting(self, key: str) -> Any:
        return self.settings.get(key)

    def set_setting(self, key: str, value: Any) -> Any:
        typed = self.settings.set(key, value)
        self.audit.event("settings.changed", key=key, value=typed)
        if key.startswith("advisor."):
            self.readvise_quietly(f"{key} was set to {json.dumps(typed)}")
        return typed

    def unset_setting(self, key: str) -> Any:
        self.settings.unset(key)
        value = self.settings.get(key)
        self.audit.event("settings.changed", key=key, value=value, reset=True)
        if key.startswith("advisor."):
            self.readvise_quietly(f"{key} was reset to {json.dumps(value)}")
        return value

    # -- jobs ------------------------------------------------------------------------------

    @cached_property
    def job_store(self) -> JobStore:
        from comfyvn_gui.store.jobs import JobStore

        return JobStore(self.home)

    def add_job(self, data: Any) -> Job:
        """Queue one workload (``jobs add``), advised and logged."""
        from .jobs import add_job

        return add_job(self, data)

    def import_summary(self, data: Any) -> list[Job]:
        """One advised job per unit of work of an importer summary; all or nothing."""
        from .jobs import import_summary

        return import_summary(self, data)

    def list_jobs(self, status: Sequence[str] | None = None) -> list[Job]:
        return self.job_store.select(status=status)

    def get_job(self, job_id: int) -> Job:
        return self.job_store.get(job_id)

    def job_events(self, job_id: int) -> list[JobEvent]:
        from .jobs import events

        return events(self, job_id)

    def pick_provider(self, job_id: int, provider_id: str | None) -> Job:
        """The user's pick for a queued job (None: back to the advisor's choice)."""
        from .jobs import pick

        return pick(self, job_id, provider_id)

    def readvise(self, trigger: str | None = None) -> list[dict[str, Any]]:
        """Re-advise the queued jobs; returns (and records) only the changed decisions."""
        from .jobs import readvise

        return readvise(self, trigger)

    #: The desktop app re-advises in a child process (see ``ReadviseRunner``): a large queue's
    #: re-advice would otherwise hold the GIL of the window's process.
    readvise_in_subprocess = False

    def readvise_quietly(self, trigger: str) -> None:
        """Re-advise after a change that already succeeded: a failure here is logged, never
        raised (the change itself stands; the next re-advice catches up)."""
        if not self.job_store.exists():
            return
        runner = self._readvise_runner()
        if runner is not None:
            runner.request(trigger)
            return
        try:
            self.readvise(trigger)
        except Exception as exc:  # noqa: BLE001 - must not undo the caller's success
            self.audit.event("jobs.readvise_failed", level="warning", trigger=trigger, exc=exc)

    # -- about -----------------------------------------------------------------------------

    def keyring_status(self) -> tuple[str, str | None]:
        """(backend name, None) when the keyring works now, else ("none", why and how to fix)."""
        try:
            self.secrets.check()
        except SecretStoreError as exc:
            return self.secrets.backend_name, exc.message
        return self.secrets.backend_name, None

    def about(self) -> dict[str, Any]:
        backend, problem = self.keyring_status()
        return {
            "version": __version__,
            "catalog_version": self.catalog.version,
            "config_dir": str(self.home.config_dir),
            "data_dir": str(self.home.data_dir),
            "log_dir": str(self.home.log_dir),
            "keyring_backend": backend,
            "keyring_problem": problem,
        }
