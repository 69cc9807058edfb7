"""Checks: validating and health-checking providers, all at once, and recording the outcome.

A check runs the provider's adapter (found by ``adapter_for``) with the provider's secrets read
from the keyring off the event loop; each check's deadline counts from the start of the round.
Results go to the home's check store and the audit log; a ``valid`` result activates the
provider (if its credentials did not change meanwhile), a credential failure deactivates it.
Recording happens inside ``watch()``, which re-advises the job queue if what the advisor reads
changed (docs/architecture.md, "The service: composition root and features").
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from comfyvn_gui.core import provider_rules as rules
from comfyvn_gui.core.catalog import Catalog
from comfyvn_gui.core.checks import CREDENTIAL_FAILURES, CheckKind, CheckResult, now
from comfyvn_gui.core.errors import InputError, NotFoundError
from comfyvn_gui.core.hostkeys import PinnedKey
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.providers.base import CheckContext, NetworkOptions, run_check
from comfyvn_gui.store.audit import AuditLog
from comfyvn_gui.store.checks import CheckStore
from comfyvn_gui.store.hostkeys import HostKeyStore
from comfyvn_gui.store.registry import Registry
from comfyvn_gui.store.secrets import SecretStoreError
from comfyvn_gui.store.settings import SettingsStore

from .workers import Workers

if TYPE_CHECKING:
    from comfyvn_gui.providers.base import Adapter

#: A template id -> its adapter (None where this version has none); may raise, e.g. when the
#: adapter's SDK is not installed.
AdapterLookup = Callable[[str], "Adapter | None"]


class ChecksFeature:
    """Validation and health checks of one home's providers."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        registry: Registry,
        check_store: CheckStore,
        host_keys: HostKeyStore,
        settings: SettingsStore,
        audit: AuditLog,
        workers: Workers,
        adapter_for: AdapterLookup,
        import_adapters: Callable[[], None],
        watch: Callable[[], AbstractContextManager[object]],
    ) -> None:
        self.catalog = catalog
        self.registry = registry
        self.check_store = check_store
        self.host_keys = host_keys
        self.settings = settings
        self.audit = audit
        self.workers = workers
        self._adapter_for = adapter_for
        self._import_adapters = import_adapters
        self._watch = watch

    # -- running checks --------------------------------------------------------------------

    def warm_up(self) -> None:
        """Import every adapter and the HTTP client ahead of the first check (the adapters
        import the client only when a check runs). Blocking: call it off the GUI thread.

        An adapter that cannot be loaded is left out: its check reports why."""
        with contextlib.suppress(Exception):
            self._import_adapters()
        # Deliberately late (it is what warming up is for): httpx is never loaded at start-up.
        importlib.import_module("httpx")

    def _targets(self, kind: CheckKind, ids: Sequence[str] | None) -> list[ProviderEntry]:
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
        entries = self._targets(kind, ids)
        if timeout_s is None:
            timeout_s = float(self.settings.get("checks.timeout_s"))
        network = NetworkOptions(ca_bundle=self.settings.get("network.ca_bundle"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        seen_txn = self.registry.current_txn() if kind == "validate" else None
        # The secrets are read in one batch while the checks that need none (an SSH key is a
        # file) already run.
        preread = asyncio.ensure_future(self._read_all_secrets(entries, deadline))

        async def one(entry: ProviderEntry) -> tuple[CheckResult, str | None]:
            secrets = (await preread).get(entry.id) if entry.secrets_set else None
            return await self._check_one(kind, entry, deadline, network, transport, secrets)

        try:
            results = await asyncio.gather(*(one(e) for e in entries))
        finally:
            preread.cancel()  # (done by then, unless the call itself was cancelled)
        outcome = [r for r, _ in results]
        await loop.run_in_executor(self.workers.io_pool, self._record, kind, results, seen_txn)
        return outcome

    def run_checks(
        self, kind: CheckKind, ids: Sequence[str] | None = None, *, timeout_s: float | None = None
    ) -> list[CheckResult]:
        """Blocking form of :meth:`check`, for the command line."""
        return asyncio.run(self.check(kind, ids, timeout_s=timeout_s))

    async def _read_all_secrets(
        self, entries: list[ProviderEntry], deadline: float
    ) -> dict[str, dict[str, str]]:
        """The secrets of every provider to check, in one batch of keyring reads (a few ms for
        50 providers where one read after another took 150-250 ms). When the batch fails, each
        check reads its own and reports its own error; nothing here fails a check."""
        with_secrets = [e for e in entries if e.secrets_set]
        if len(with_secrets) < 2:
            return {}
        try:
            return await self.workers.keyring_executor.run(
                deadline, self.registry.read_secrets_many, with_secrets
            )
        except Exception:  # noqa: BLE001 - each check reads (and reports) on its own
            return {}

    async def _check_one(
        self,
        kind: CheckKind,
        entry: ProviderEntry,
        deadline: float,
        network: NetworkOptions,
        transport: Any,
        preread: dict[str, str] | None = None,
    ) -> tuple[CheckResult, str | None]:
        broken = rules.broken_reason(self.catalog, entry, str(self.registry.home.registry_file))
        if broken is not None:
            return _plain_result(entry, kind, "misconfigured", broken, ["template_id"]), None
        profile = self.catalog.profile(entry.template_id)
        try:
            adapter = self._adapter_for(entry.template_id)
        except Exception as exc:  # noqa: BLE001 - e.g. an SDK that is not installed
            return _plain_result(
                entry,
                kind,
                "error",
                f"the {profile.name} adapter could not be loaded ({type(exc).__name__}: {exc})",
            ), None
        if adapter is None:
            return _plain_result(
                entry,
                kind,
                "error",
                f"checking {profile.name} is not available in this version yet",
            ), None
        try:
            if preread is not None:
                secrets = preread
            elif entry.secrets_set:
                secrets = await self.workers.keyring_executor.run(
                    deadline, self.registry.read_secrets, entry
                )
            else:
                secrets = {}
        except TimeoutError:
            return _plain_result(
                entry, kind, "timeout", "the OS keyring did not answer before the deadline"
            ), None
        except SecretStoreError as exc:
            return _plain_result(entry, kind, "error", exc.message), None
        ctx = self.context(entry, secrets, deadline, network=network, transport=transport)
        result = await run_check(adapter, ctx, kind)
        return result, self.registry.fingerprint(entry, secrets)

    def context(
        self,
        entry: ProviderEntry,
        secrets: dict[str, str],
        deadline: float,
        *,
        network: NetworkOptions | None = None,
        transport: Any = None,
    ) -> CheckContext:
        """What an adapter (a check, or dispatch's ComfyUI target) is given for ``entry``:
        its profile, secrets, deadline (event-loop time), workers, network settings and the
        home's pinned host keys."""
        return CheckContext(
            provider=entry,
            profile=self.catalog.profile(entry.template_id),
            secrets=secrets,
            deadline=deadline,
            executor=self.workers.executor,
            network=network or NetworkOptions(ca_bundle=self.settings.get("network.ca_bundle")),
            transport=transport,
            host_keys=self.host_keys,
        )

    # -- recording -------------------------------------------------------------------------

    def _record(
        self,
        kind: CheckKind,
        results: list[tuple[CheckResult, str | None]],
        seen_txn: str | None,
    ) -> None:
        with self._watch():
            self._store(kind, results, seen_txn)

    def _store(
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

    # -- results ---------------------------------------------------------------------------

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

    # -- SSH host keys ---------------------------------------------------------------------

    def trust_host(self, provider_id: str, fingerprint: str) -> PinnedKey:
        """Pin the SSH host key of a provider (after the user compared the fingerprint)."""
        entry = self.registry.get(provider_id)
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


def _plain_result(
    entry: ProviderEntry,
    kind: CheckKind,
    code: str,
    message: str,
    fields: Sequence[str] = (),
) -> CheckResult:
    return CheckResult(
        provider=entry.id,
        check=kind,
        status=code if kind == "validate" else "unknown",
        code=code,
        message=message,
        fields=list(fields),
        checked_at=now(),
    )
