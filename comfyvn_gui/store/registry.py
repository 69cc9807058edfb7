"""The provider registry's storage: one crash-safe transaction per change (the seed's
``/api/providers/*`` semantics, done right).

What a valid provider is, how an input merges with the stored entry, what an export looks like
and what an import would do are rules, computed by :mod:`comfyvn_gui.core.provider_rules`; this
module applies them (docs/architecture.md, "Storage"):

* ``config/providers.json`` never holds a secret value; it is schema-versioned, written
  atomically, and every read-modify-write holds one file lock, so the GUI, the API server and
  the CLI can share a home.
* Secrets go to the keyring FIRST, then the registry is written. Every change is a small
  transaction with a journal (``config/registry-journal.json``, names only, no values): the
  previous value of each secret it overwrites is parked in the keyring as
  ``<provider>/<field>@prev``. If the registry write fails, or the process dies before it, the
  keyring is put back as it was (on the spot, or by the next process that takes the lock); if
  it dies after, the change is finished. Removal and clearing work the other way round:
  registry first, then the secrets.
"""

from __future__ import annotations

import contextlib
import json
import secrets as _random
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pydantic import ValidationError

from comfyvn_gui import __version__
from comfyvn_gui.core import json_input
from comfyvn_gui.core import provider_rules as rules
from comfyvn_gui.core.catalog import Catalog, ProviderProfile, load_catalog
from comfyvn_gui.core.errors import ForbiddenError, InputError, NotFoundError, OperationError
from comfyvn_gui.core.models import (
    LOCAL_ID,
    REGISTRY_FORMAT,
    REGISTRY_SCHEMA_VERSION,
    ImportPlan,
    ProviderEntry,
    RegistryFile,
)
from comfyvn_gui.core.provider_rules import SecretKey, short

from .audit import AuditLog, get_audit_log
from .paths import Home, atomic_write_text
from .secrets import SecretStore, username

BACKUPS_KEPT = 5


@dataclass
class ImportReport:
    plan: ImportPlan
    imported: list[str]


def _no_fault(step: str) -> None:
    """A named step of the transaction: nothing happens here in the app. The crash tests
    (tests/store/test_registry_faults.py) replace :attr:`Registry._fault` in a child process
    with a hook that kills the process at a chosen step, and list the steps from it."""


class Registry:
    """Provider registry of one home. Thread-safe and multi-process-safe."""

    #: Called at each named step of a change's transaction (see :func:`_no_fault`).
    _fault: Callable[[str], None] = staticmethod(_no_fault)

    def __init__(
        self,
        home: Home,
        *,
        catalog: Catalog | None = None,
        secrets: SecretStore | None = None,
        audit: AuditLog | None = None,
        lock_timeout: float = 30.0,
    ) -> None:
        self.home = home
        self.catalog = catalog or load_catalog()
        self._secrets = secrets
        self._audit = audit
        self._lock = FileLock(str(home.lock_file), timeout=lock_timeout)
        # Threads of one process (the API server's workers) queue here, woken in turn, instead
        # of polling the file lock against each other; the file lock is for other processes.
        self._thread_lock = threading.RLock()
        self._lock_timeout = lock_timeout

    # -- collaborators -------------------------------------------------------------------

    @property
    def secrets(self) -> SecretStore:
        if self._secrets is None:
            self._secrets = SecretStore(self.home.home_id)
        return self._secrets

    @property
    def audit(self) -> AuditLog:
        if self._audit is None:
            self._audit = get_audit_log(self.home)
        return self._audit

    # -- reading ---------------------------------------------------------------------------

    def providers(self) -> list[ProviderEntry]:
        """Every provider (the built-in ``local`` first). Never returns a secret value."""
        with self._locked(recover="best_effort"):
            return self._read(strict=False).providers

    def get(self, provider_id: str) -> ProviderEntry:
        for p in self.providers():
            if p.id == provider_id:
                return p
        known = ", ".join(p.id for p in self.providers())
        raise NotFoundError(
            f"no provider {short(provider_id)} is registered (registered: {known}); see "
            "`comfyvn-gui providers list`",
            fields=["id"],
        )

    def get_secret(self, provider_id: str, field_name: str) -> str | None:
        """Read one stored secret (for adapters). Never logged."""
        with self._locked():
            return self.secrets.get(provider_id, field_name)

    def profile_of(self, entry: ProviderEntry) -> ProviderProfile:
        return self.catalog.profile(entry.template_id)

    # -- create / register -----------------------------------------------------------------

    def create(self, template_id: str, **fields: Any) -> ProviderEntry:
        """Instantiate a provider from a curated template (the seed's ``create``).

        ``fields`` are those of :class:`ProviderInput` (``id``, ``name``, ``base_url``,
        ``config``, ``secrets``, ``meta`` ...). An explicit duplicate id is refused; a missing
        id gets a unique one made from the template id.
        """
        inp = rules.parse_input(dict(fields, template_id=template_id), "create")
        rules.creatable_profile(self.catalog, template_id)
        with self._locked():
            reg = self._read()
            change = rules.new_provider(self.catalog, inp, {p.id for p in reg.providers})
            reg.providers.append(change.entry)
            self._commit(reg, rules.writes_of([change]), rules.clears_of([change]))
            self.audit.event(
                "provider.created",
                provider=change.entry.id,
                template_id=template_id,
                secrets_set=change.entry.secrets_set,
            )
            return change.entry

    def register(
        self, payload: Mapping[str, Any], *, must_exist: bool = False
    ) -> tuple[ProviderEntry, bool]:
        """Create or update from a provider entry. Returns (entry, created).

        An update that omits a secret keeps the stored one; a secret set to null is cleared;
        changing any credential clears ``active``. With ``must_exist`` an id that is not
        registered (any more) is refused instead of created.
        """
        inp = rules.parse_registration(payload)
        with self._locked():
            reg = self._read()
            existing = next((p for p in reg.providers if p.id == inp.id), None)
            if existing is None and must_exist:
                raise NotFoundError(
                    f"no provider {short(inp.id)} is registered any more; nothing was saved",
                    fields=["id"],
                )
            change = rules.registration(self.catalog, inp, existing)
            if existing is None:
                reg.providers.append(change.entry)
            else:
                reg.providers[reg.providers.index(existing)] = change.entry
            self._commit(reg, rules.writes_of([change]), rules.clears_of([change]))
            self.audit.event(
                "provider.created" if existing is None else "provider.updated",
                provider=change.entry.id,
                template_id=change.entry.template_id,
                secrets_changed=sorted([*change.writes, *change.clears]),
                secrets_set=change.entry.secrets_set,
                active=change.entry.active,
            )
            return change.entry, existing is None

    def set_active(
        self, provider_id: str, active: bool, *, fingerprint: str | None = None
    ) -> ProviderEntry | None:
        """Record the outcome of a validation.

        With ``fingerprint`` (see :meth:`fingerprint`), the change is made only if the
        provider's credentials are still those that were checked; otherwise nothing changes
        and None is returned (the user edited them while the check ran).
        """
        with self._locked():
            reg = self._read()
            for i, p in enumerate(reg.providers):
                if p.id != provider_id:
                    continue
                if fingerprint is not None and fingerprint != self.fingerprint(p):
                    return None
                if p.active != active:
                    reg.providers[i] = p.model_copy(update={"active": active})
                    self._commit(reg, {}, set())
                return reg.providers[i]
        raise NotFoundError(f"no provider {short(provider_id)} is registered", fields=["id"])

    def current_txn(self) -> str | None:
        """Id of the last committed change (to notice later whether anything changed)."""
        try:
            return str(json.loads(self.home.registry_file.read_text("utf-8")).get("txn"))
        except (OSError, ValueError, AttributeError):
            return None

    def apply_validations(
        self, outcomes: Mapping[str, tuple[bool, str]], *, seen_txn: str | None
    ) -> list[str]:
        """Set ``active`` from validation outcomes {id: (active, fingerprint)} in one change.

        An outcome is applied only if the provider's credentials are still those that were
        checked: nothing was committed since ``seen_txn`` (cheap), or else its fingerprint
        still matches (reads the keyring). Returns the ids whose ``active`` changed.
        """
        if not outcomes:
            return []
        with self._locked():
            reg = self._read()
            unchanged = seen_txn is not None and reg.txn == seen_txn
            changed = []
            for i, p in enumerate(reg.providers):
                if p.id not in outcomes:
                    continue
                active, fingerprint = outcomes[p.id]
                if p.active == active:
                    continue
                if not unchanged and fingerprint != self.fingerprint(p):
                    continue  # edited while the check ran: that result is stale
                reg.providers[i] = p.model_copy(update={"active": active})
                changed.append(p.id)
            if changed:
                self._commit(reg, {}, set())
            return changed

    def read_secrets(self, entry: ProviderEntry) -> dict[str, str]:
        """The stored secret values of a provider (for its checks). Never logged or stored."""
        out: dict[str, str] = {}
        for name in entry.secrets_set:
            value = self.secrets.get(entry.id, name)
            if value is not None:
                out[name] = value
        return out

    def read_secrets_many(self, entries: list[ProviderEntry]) -> dict[str, dict[str, str]]:
        """:meth:`read_secrets` of many providers in one batch of keyring reads."""
        values = self.secrets.get_many([(e.id, name) for e in entries for name in e.secrets_set])
        out: dict[str, dict[str, str]] = {e.id: {} for e in entries}
        for (pid, name), value in values.items():
            if value is not None:
                out[pid][name] = value
        return out

    def fingerprint(self, entry: ProviderEntry, secrets: Mapping[str, str] | None = None) -> str:
        """A digest of everything a validation depends on (kept in memory only)."""
        if secrets is None:
            secrets = self.read_secrets(entry) if entry.secrets_set else {}
        return rules.fingerprint(entry, secrets)

    # -- remove ----------------------------------------------------------------------------

    def remove(self, provider_id: str) -> ProviderEntry:
        """Remove a provider and delete its secrets. The local provider is protected."""
        if provider_id == LOCAL_ID:
            raise ForbiddenError(
                "the local provider (this machine) is built in and cannot be removed; "
                "disable it instead",
                fields=["id"],
            )
        with self._locked():
            reg = self._read()
            entry = next((p for p in reg.providers if p.id == provider_id), None)
            if entry is None:
                raise NotFoundError(
                    f"no provider {short(provider_id)} is registered; nothing was removed",
                    fields=["id"],
                )
            reg.providers.remove(entry)
            self._commit(reg, {}, rules.all_secret_keys(self.catalog, [entry]))
            self.audit.event("provider.removed", provider=provider_id, secrets_deleted=True)
            return entry

    def remove_all(self) -> list[str]:
        """Remove every unprotected provider and every keyring entry of this home."""
        with self._locked():
            reg = self._read()
            gone = [p for p in reg.providers if p.id != LOCAL_ID]
            reg.providers = [p for p in reg.providers if p.id == LOCAL_ID]
            # Every entry this home may have made, not only those the registry lists.
            keys = rules.all_secret_keys(self.catalog, gone + reg.providers)
            self._commit(reg, {}, keys)
            self.audit.event("provider.removed_all", providers=[p.id for p in gone])
            return [p.id for p in gone]

    # -- export / import -------------------------------------------------------------------

    def export(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """The registry as an export document; secrets only when asked for."""
        with self._locked(recover="best_effort" if not include_secrets else "required"):
            providers = self._read().providers
            secrets = self.read_secrets_many(providers) if include_secrets else {}
        data = rules.export_document(
            providers,
            secrets,
            include_secrets=include_secrets,
            exported_at=datetime.now(UTC),
            app_version=__version__,
            catalog_version=self.catalog.version,
        )
        self.audit.event("registry.exported", include_secrets=include_secrets, count=len(providers))
        return data

    def plan_import(
        self, data: Any, *, replace: bool = False, overwrite: bool = True
    ) -> ImportPlan:
        """Validate an import completely and say what it would do. Changes nothing."""
        with self._locked(recover="best_effort"):
            plan, _ = rules.plan_import(
                self.catalog, self._read().providers, data, replace=replace, overwrite=overwrite
            )
            return plan

    def import_(self, data: Any, *, replace: bool = False, overwrite: bool = True) -> ImportReport:
        """Import an export, ``{"providers": [...]}`` or a bare list. All or nothing.

        ``replace`` clears every unprotected provider first (after a backup);
        ``overwrite=False`` skips ids that exist and reports them. Imported providers are not
        active until validated on this machine.
        """
        with self._locked():
            reg = self._read()
            plan, changes = rules.plan_import(
                self.catalog, reg.providers, data, replace=replace, overwrite=overwrite
            )
            deletes: set[SecretKey] = set()
            if replace:
                plan.backup = str(self._backup(reg))
                kept = [p for p in reg.providers if p.id == LOCAL_ID]
                replaced = [p for p in reg.providers if p.id != LOCAL_ID]
                deletes |= rules.all_secret_keys(self.catalog, replaced)
                reg.providers = kept
            by_id = {p.id: i for i, p in enumerate(reg.providers)}
            for ch in changes:
                if ch.entry.id in by_id:
                    reg.providers[by_id[ch.entry.id]] = ch.entry
                else:
                    reg.providers.append(ch.entry)
            writes = rules.writes_of(changes)
            deletes |= rules.clears_of(changes)
            self._commit(reg, writes, deletes - set(writes))  # what the import writes survives
            imported = [ch.entry.id for ch in changes]
            self.audit.event(
                "registry.imported",
                replace=replace,
                overwrite=overwrite,
                added=plan.add,
                updated=plan.update,
                skipped=sorted(plan.skip),
                deleted=plan.delete,
                backup=plan.backup,
            )
            return ImportReport(plan=plan, imported=imported)

    # -- internals: storage and transactions ---------------------------------------------

    def _backup(self, reg: RegistryFile) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.home.backups_dir / f"providers-{stamp}.json"
        atomic_write_text(path, reg.model_dump_json(indent=2) + "\n")
        backups = sorted(self.home.backups_dir.glob("providers-*.json"))
        for old in backups[:-BACKUPS_KEPT]:
            old.unlink(missing_ok=True)
        return path

    @contextmanager
    def _locked(self, recover: str = "required") -> Iterator[None]:
        if not self._thread_lock.acquire(timeout=self._lock_timeout):
            raise OperationError(
                f"the provider registry is busy (this process has been using it for over "
                f"{self._lock_timeout:.0f} s); try again"
            )
        try:
            with self._file_locked(recover):
                yield
        finally:
            self._thread_lock.release()

    @contextmanager
    def _file_locked(self, recover: str) -> Iterator[None]:
        try:
            self._lock.acquire()
        except Timeout:
            raise OperationError(
                f"the provider registry is busy (another comfyvn-gui process has held "
                f"{self.home.lock_file} for over {self._lock_timeout:.0f} s); try again"
            ) from None
        try:
            if self._lock.lock_counter == 1 and self.home.journal_file.exists():
                try:
                    self._recover()
                except OperationError:
                    if recover == "required":
                        raise
            yield
        finally:
            self._lock.release()

    def _read(self, *, strict: bool = True) -> RegistryFile:
        path = self.home.registry_file
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return RegistryFile(providers=[rules.local_entry(self.catalog)])
        except OSError as exc:
            raise OperationError(f"cannot read {path} ({exc.strerror})") from None
        try:
            data = json_input.loads(raw, where=path.name)
            data = _migrate(data)
            reg = RegistryFile.model_validate(data)
            rules.check_unique_ids(reg.providers)
        except (InputError, ValueError, ValidationError) as exc:
            if isinstance(exc, ValidationError):
                detail = rules.pydantic_message(exc, "")[0].removeprefix(": ")
            else:
                detail = str(exc).splitlines()[0]
            raise OperationError(
                f"{path} is damaged ({detail}); it was left as it is: restore a copy from "
                f"{self.home.backups_dir} or move the file away to start with an empty registry"
            ) from None
        if not any(p.id == LOCAL_ID for p in reg.providers):
            reg.providers.insert(0, rules.local_entry(self.catalog))
        plaintext = rules.take_plaintext_secrets(self.catalog, reg)
        if plaintext:
            # A file written by another tool (or the original ComfyVN) holds secret values:
            # move them into the keyring now. If that is impossible, a read still shows the
            # entries without the values, but nothing may be written over the file.
            try:
                self._commit(reg, plaintext, set())
            except OperationError:
                if strict:
                    raise
            else:
                self.audit.event(
                    "registry.secrets_migrated",
                    secrets=sorted(f"{p}/{f}" for p, f in plaintext),
                )
        return reg

    def _write(self, reg: RegistryFile) -> None:
        self.home.ensure()
        # Temp files of writers that were killed mid-write (we hold the lock: none is live).
        for stale in self.home.config_dir.glob(f".{self.home.registry_file.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        atomic_write_text(self.home.registry_file, reg.model_dump_json(indent=2) + "\n")

    def _commit(
        self, reg: RegistryFile, writes: Mapping[SecretKey, str], deletes: set[SecretKey]
    ) -> None:
        """Keyring writes, then the registry, then keyring deletions — crash-safe."""
        txn = _random.token_hex(8)
        reg.txn = txn
        if not writes and not deletes:
            self._write(reg)
            return
        store = self.secrets
        # What is there now, in one batch of reads: the values overwritten, and any parked
        # value a crash left (recovery drops those; read anyway, so their parts are replaced).
        olds = store.get_many(list(writes))
        had_old = {key: value is not None for key, value in olds.items()}
        parked = store.get_many([_prev_key(key) for key, old in had_old.items() if old])
        self._write_journal(txn, had_old, deletes)
        self._fault("journal written")
        try:
            for key, old in olds.items():  # park every value we overwrite before touching any
                if old is not None:
                    store.set_raw(_prev(key), old, previous=parked[_prev_key(key)])
                    self._fault(f"parked {_prev(key)}")
            for key, value in writes.items():
                store.set(*key, value, previous=olds[key])
                self._fault(f"wrote {key[0]}/{key[1]}")
            self._write(reg)
            self._fault("registry written")
        except BaseException:
            # If the rollback fails too, the journal stays and the next process finishes it.
            with contextlib.suppress(Exception):
                self._rollback(had_old)
                self.home.journal_file.unlink(missing_ok=True)
            raise
        self._finish(had_old, deletes, olds)

    def _write_journal(
        self, txn: str, had_old: Mapping[SecretKey, bool], deletes: set[SecretKey]
    ) -> None:
        journal = {
            "txn": txn,
            "writes": [[p, f, old] for (p, f), old in sorted(had_old.items())],
            "deletes": sorted([p, f] for p, f in deletes),
        }
        self.home.ensure()
        atomic_write_text(self.home.journal_file, json.dumps(journal) + "\n")

    def _rollback(self, had_old: Mapping[SecretKey, bool]) -> None:
        store = self.secrets
        for key, old in had_old.items():
            prev = store.get_raw(_prev(key))
            if prev is not None:
                store.set(*key, prev)
            elif not old:
                store.delete(*key)
            # else: the value was never overwritten (we died before parking it)
        for key in had_old:
            store.delete_raw(_prev(key))

    def _finish(
        self,
        had_old: Mapping[SecretKey, bool],
        deletes: set[SecretKey],
        parked: Mapping[SecretKey, str | None] | None = None,
    ) -> None:
        """Delete what the change removes, then the parked values (``parked``: their values,
        when this process parked them, which saves reading them back)."""
        store = self.secrets
        for key in sorted(deletes):
            store.delete(*key)
            self._fault(f"deleted {key[0]}/{key[1]}")
        for key, old in had_old.items():
            if old:  # only a value that was there was parked
                if parked is not None and key in parked:
                    store.delete_raw(_prev(key), previous=parked[key])
                else:
                    store.delete_raw(_prev(key))
                self._fault(f"dropped {_prev(key)}")
        self.home.journal_file.unlink(missing_ok=True)
        self._fault("journal removed")

    def _recover(self) -> None:
        """Finish or undo a change that a process left half-done (it died, or failed)."""
        try:
            journal = json.loads(self.home.journal_file.read_text("utf-8"))
            txn = journal["txn"]
            had_old = {(p, f): bool(o) for p, f, o in journal["writes"]}
            deletes = {(p, f) for p, f in journal["deletes"]}
        except (OSError, ValueError, KeyError, TypeError):
            self.home.journal_file.unlink(missing_ok=True)
            return
        committed = False
        try:
            committed = json.loads(self.home.registry_file.read_text("utf-8")).get("txn") == txn
        except (OSError, ValueError, AttributeError):
            committed = False
        if committed:
            self._finish(had_old, deletes)
            self.audit.event("registry.recovered", txn=txn, outcome="completed")
        else:
            self._rollback(had_old)
            self.home.journal_file.unlink(missing_ok=True)
            self.audit.event("registry.recovered", txn=txn, outcome="rolled_back")


def _prev_key(key: SecretKey) -> SecretKey:
    """The (provider, field) under which a value being overwritten is parked."""
    return (key[0], f"{key[1]}@prev")


def _prev(key: SecretKey) -> str:
    """The keyring username of the parked value (:func:`_prev_key` joined as every entry)."""
    return username(*_prev_key(key))


def _migrate(data: Any) -> Any:
    """Bring an older ``providers.json`` up to the current schema version."""
    if isinstance(data, list):  # version 0: a bare list of entries
        data = {"providers": data}
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    version = data.get("schema_version", 0)
    if not isinstance(version, int) or version > REGISTRY_SCHEMA_VERSION:
        raise ValueError(
            f"schema version {version!r} is newer than this comfyvn-gui understands "
            f"({REGISTRY_SCHEMA_VERSION}); update comfyvn-gui"
        )
    if version == 0:
        data = {
            "format": REGISTRY_FORMAT,
            "schema_version": 1,
            "providers": data.get("providers", []),
        }
    return data
