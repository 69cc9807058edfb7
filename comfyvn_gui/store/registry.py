"""The provider registry (the seed's ``/api/providers/*`` semantics, done right).

Storage rules (DESIGN.md, "Storage"):

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
import hashlib
import json
import re
import secrets as _random
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pydantic import ValidationError

from comfyvn_gui import __version__
from comfyvn_gui.core.catalog import Catalog, ProviderProfile, load_catalog
from comfyvn_gui.core.errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
    OperationError,
)
from comfyvn_gui.core.models import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    LOCAL_ID,
    REGISTRY_FORMAT,
    REGISTRY_SCHEMA_VERSION,
    RESERVED_IDS,
    ExportDocument,
    ImportPlan,
    ProviderEntry,
    ProviderEntryWithSecrets,
    ProviderInput,
    RegistryFile,
)
from comfyvn_gui.core.provider_rules import check_id, pydantic_message, short

from .audit import AuditLog, get_audit_log
from .paths import Home, atomic_write_text
from .secrets import SecretStore

BACKUPS_KEPT = 5
MAX_SECRET_CHARS = 65536
MAX_CONFIG_VALUE_CHARS = 4096
_URL_RE = re.compile(r"^https?://[^\s/?#]+[^\s]*$")

SecretKey = tuple[str, str]  # (provider id, field)








@dataclass
class _Change:
    """The outcome of normalising one input against the catalog and the stored entry."""

    entry: ProviderEntry
    writes: dict[str, str] = field(default_factory=dict)
    clears: set[str] = field(default_factory=set)
    created: bool = False


@dataclass
class ImportReport:
    plan: ImportPlan
    imported: list[str]


class Registry:
    """Provider registry of one home. Thread-safe and multi-process-safe."""

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
        payload = dict(fields, template_id=template_id)
        inp = self._parse_input(payload, "create")
        profile = self._profile(template_id)
        if profile.protected:
            raise InputError(
                f"{profile.name} is built in and always registered as {LOCAL_ID!r}; "
                "update it with `providers register` instead",
                fields=["template_id"],
            )
        with self._locked():
            reg = self._read()
            ids = {p.id for p in reg.providers}
            if inp.id is not None:
                check_id(inp.id)
                if inp.id in ids:
                    raise ConflictError(
                        f"a provider with id {inp.id!r} already exists; choose another id or "
                        "update it with `providers register`",
                        fields=["id"],
                    )
                new_id = inp.id
            else:
                new_id = self._unique_id(template_id, ids)
            change = self._normalize(inp.model_copy(update={"id": new_id}), None, "create")
            reg.providers.append(change.entry)
            self._commit(reg, self._writes_of([change]), self._clears_of([change]))
            self.audit.event(
                "provider.created",
                provider=new_id,
                template_id=template_id,
                secrets_set=change.entry.secrets_set,
            )
            return change.entry

    def register(self, payload: Mapping[str, Any]) -> tuple[ProviderEntry, bool]:
        """Create or update from a provider entry. Returns (entry, created).

        An update that omits a secret keeps the stored one; a secret set to null is cleared;
        changing any credential clears ``active``.
        """
        inp = self._parse_input(payload, "register")
        if inp.id is None:
            raise InputError("register needs the provider's `id`", fields=["id"])
        check_id(inp.id)
        with self._locked():
            reg = self._read()
            existing = next((p for p in reg.providers if p.id == inp.id), None)
            if existing is None and inp.template_id is None:
                raise InputError(
                    f"provider {inp.id!r} does not exist yet: give its `template_id` "
                    f"(one of {', '.join(self.catalog.profiles)}) to create it",
                    fields=["template_id"],
                )
            if existing is None and self._profile(inp.template_id or "").protected:
                raise InputError(
                    f"the {inp.template_id!r} template is built in; only the id {LOCAL_ID!r} "
                    "can use it",
                    fields=["template_id"],
                )
            change = self._normalize(inp, existing, "register")
            if existing is None:
                reg.providers.append(change.entry)
            else:
                reg.providers[reg.providers.index(existing)] = change.entry
            self._commit(reg, self._writes_of([change]), self._clears_of([change]))
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

    def fingerprint(self, entry: ProviderEntry, secrets: Mapping[str, str] | None = None) -> str:
        """A digest of everything a validation depends on (kept in memory only)."""
        if secrets is None:
            secrets = self.read_secrets(entry) if entry.secrets_set else {}
        material = json.dumps(
            [entry.template_id, entry.base_url, entry.config, sorted(secrets.items())],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(material.encode()).hexdigest()

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
            self._commit(reg, {}, self._all_secret_keys([entry]))
            self.audit.event("provider.removed", provider=provider_id, secrets_deleted=True)
            return entry

    def remove_all(self) -> list[str]:
        """Remove every unprotected provider and every keyring entry of this home."""
        with self._locked():
            reg = self._read()
            gone = [p for p in reg.providers if p.id != LOCAL_ID]
            reg.providers = [p for p in reg.providers if p.id == LOCAL_ID]
            # Every entry this home may have made, not only those the registry lists.
            keys = self._all_secret_keys(gone + reg.providers)
            self._commit(reg, {}, keys)
            self.audit.event("provider.removed_all", providers=[p.id for p in gone])
            return [p.id for p in gone]

    # -- export / import -------------------------------------------------------------------

    def export(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """The registry as an export document; secrets only when asked for."""
        with self._locked(recover="best_effort" if not include_secrets else "required"):
            providers = self._read().providers
            out: list[ProviderEntryWithSecrets] = []
            for p in providers:
                secrets: dict[str, str] = {}
                if include_secrets:
                    for name in p.secrets_set:
                        value = self.secrets.get(p.id, name)
                        if value is not None:
                            secrets[name] = value
                out.append(ProviderEntryWithSecrets(**p.model_dump(), secrets=secrets))
        doc = ExportDocument(
            exported_at=datetime.now(UTC),
            app_version=__version__,
            catalog_version=self.catalog.version,
            include_secrets=include_secrets,
            providers=out,
        )
        self.audit.event("registry.exported", include_secrets=include_secrets, count=len(out))
        data = doc.model_dump(mode="json")
        if not include_secrets:
            for p in data["providers"]:
                p.pop("secrets", None)
        return data

    def plan_import(
        self, data: Any, *, replace: bool = False, overwrite: bool = True
    ) -> ImportPlan:
        """Validate an import completely and say what it would do. Changes nothing."""
        with self._locked(recover="best_effort"):
            plan, _ = self._plan_import(self._read(), data, replace, overwrite)
            return plan

    def import_(self, data: Any, *, replace: bool = False, overwrite: bool = True) -> ImportReport:
        """Import an export, ``{"providers": [...]}`` or a bare list. All or nothing.

        ``replace`` clears every unprotected provider first (after a backup);
        ``overwrite=False`` skips ids that exist and reports them. Imported providers are not
        active until validated on this machine.
        """
        with self._locked():
            reg = self._read()
            plan, changes = self._plan_import(reg, data, replace, overwrite)
            deletes: set[SecretKey] = set()
            if replace:
                plan.backup = str(self._backup(reg))
                kept = [p for p in reg.providers if p.id == LOCAL_ID]
                replaced = [p for p in reg.providers if p.id != LOCAL_ID]
                deletes |= self._all_secret_keys(replaced)
                reg.providers = kept
            by_id = {p.id: i for i, p in enumerate(reg.providers)}
            for ch in changes:
                if ch.entry.id in by_id:
                    reg.providers[by_id[ch.entry.id]] = ch.entry
                else:
                    reg.providers.append(ch.entry)
            writes = self._writes_of(changes)
            deletes |= self._clears_of(changes)
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

    # -- internals: input ------------------------------------------------------------------

    def _profile(self, template_id: str) -> ProviderProfile:
        try:
            return self.catalog.profile(template_id)
        except NotFoundError as exc:
            raise InputError(
                f"unknown template {short(template_id)}; templates: "
                f"{', '.join(self.catalog.profiles)}",
                fields=["template_id"],
            ) from exc

    @staticmethod
    def _parse_input(payload: Any, where: str) -> ProviderInput:
        if not isinstance(payload, Mapping):
            raise InputError(
                f"{where}: a provider must be a JSON object, got {type(payload).__name__}"
            )
        try:
            return ProviderInput.model_validate(dict(payload))
        except ValidationError as exc:
            msg, fields = pydantic_message(exc, where)
            raise InputError(msg, fields=fields) from None

    @staticmethod
    def _unique_id(template_id: str, taken: set[str]) -> str:
        if template_id not in taken and template_id not in RESERVED_IDS:
            return template_id
        n = 2
        while f"{template_id}-{n}" in taken:
            n += 1
        return f"{template_id}-{n}"

    def _normalize(self, inp: ProviderInput, existing: ProviderEntry | None, where: str) -> _Change:
        """Merge ``inp`` over ``existing`` and check every field against the profile."""
        pid = inp.id or (existing.id if existing else "")
        where = f"{where} {pid!r}"
        template_id = inp.template_id or (existing.template_id if existing else "")
        if existing is not None and inp.template_id and inp.template_id != existing.template_id:
            raise InputError(
                f"{where}: template_id cannot change from {existing.template_id!r} to "
                f"{inp.template_id!r}; remove the provider and create a new one",
                fields=["template_id"],
            )
        profile = self._profile(template_id)
        secret_names = set(profile.secret_fields)
        fields_by_name = {f.name: f for f in profile.all_fields}
        sent = inp.model_fields_set

        config: dict[str, Any] = dict(existing.config) if existing else {}
        writes: dict[str, str] = {}
        clears: set[str] = set()
        cred_changed = False

        def take_secret(name: str, value: Any, loc: str) -> None:
            nonlocal cred_changed
            if name not in secret_names:
                raise InputError(
                    f"{where}: {loc} is not a secret field of {profile.name} (its secret "
                    f"fields: {', '.join(sorted(secret_names)) or 'none'})",
                    fields=[name],
                )
            cred_changed = True
            if value is None:
                writes.pop(name, None)
                clears.add(name)
                return
            self._check_secret(profile, name, value, where, loc)
            clears.discard(name)
            writes[name] = value

        for key, value in (inp.config or {}).items():
            if key in secret_names:
                take_secret(key, value, f"config.{key}")
            elif key == "endpoints":
                new_eps = self._check_endpoints(profile, value, config.get("endpoints"), where)
                if new_eps != config.get("endpoints"):
                    cred_changed = True
                if new_eps:
                    config["endpoints"] = new_eps
                else:
                    config.pop("endpoints", None)
            elif key in fields_by_name:
                if value is None:
                    if key in config:
                        cred_changed = True
                        config.pop(key)
                    continue
                checked = self._check_field(profile, key, value, where)
                if config.get(key) != checked:
                    cred_changed = True
                config[key] = checked
            else:
                known = sorted(n for n in fields_by_name if n not in secret_names)
                raise InputError(
                    f"{where}: config.{key} is not a setting of {profile.name} (known: "
                    f"{', '.join([*known, 'endpoints'])}); put notes and other metadata in "
                    "`meta`",
                    fields=[key],
                )
        for key, value in (inp.secrets or {}).items():
            take_secret(key, value, f"secrets.{key}")

        base_url = existing.base_url if existing else None
        if "base_url" in sent:
            if inp.base_url is not None:
                self._check_url(inp.base_url, where, "base_url")
                if profile.primary_endpoint is None:
                    raise InputError(
                        f"{where}: {profile.name} has no HTTP endpoint, so base_url does not apply",
                        fields=["base_url"],
                    )
            if inp.base_url != base_url:
                cred_changed = True
            base_url = inp.base_url

        gpu = existing.gpu if existing else None
        if "gpu" in sent:
            gpu = None
            if inp.gpu is not None:
                spec = self.catalog.gpu(inp.gpu)
                if spec is None:
                    raise InputError(
                        f"{where}: gpu {short(inp.gpu)} is not in the GPU catalog (known: "
                        f"{', '.join(sorted(self.catalog.gpus))})",
                        fields=["gpu"],
                    )
                gpu = spec.name

        meta: dict[str, Any] = dict(existing.meta) if existing else {}
        for key, value in (inp.meta or {}).items():
            if key in self.catalog.all_secret_field_names:
                raise InputError(
                    f"{where}: meta.{key} looks like a credential; send it in `secrets` so it "
                    "is stored in the OS keyring",
                    fields=[key],
                )
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value

        name = inp.name if inp.name is not None else (existing.name if existing else profile.name)
        name = name.strip()
        if not name or len(name) > 200:
            raise InputError(f"{where}: name must be 1 to 200 characters", fields=["name"])
        enabled = (
            inp.enabled if inp.enabled is not None else (existing.enabled if existing else True)
        )

        stored = set(existing.secrets_set) if existing else set()
        secrets_set = sorted((stored | set(writes)) - clears)
        active = bool(existing and existing.active and not cred_changed)
        try:
            entry = ProviderEntry(
                id=pid,
                template_id=profile.id,
                name=name,
                enabled=enabled,
                active=active,
                base_url=base_url,
                gpu=gpu,
                config=config,
                secrets_set=secrets_set,
                meta=meta,
            )
        except ValidationError as exc:
            msg, fields = pydantic_message(exc, where)
            raise InputError(msg, fields=fields) from None
        try:
            json.dumps(entry.model_dump(mode="json"), allow_nan=False)
        except ValueError as exc:
            raise InputError(f"{where}: a value cannot be stored as JSON ({exc})") from None
        return _Change(entry=entry, writes=writes, clears=clears & stored, created=not existing)

    def _check_field(self, profile: ProviderProfile, key: str, value: Any, where: str) -> Any:
        spec = profile.field(key)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InputError(
                f"{where}: config.{key} must be text, got {type(value).__name__}", fields=[key]
            )
        text = str(value).strip()
        if not text or len(text) > MAX_CONFIG_VALUE_CHARS:
            raise InputError(
                f"{where}: config.{key} must be 1 to {MAX_CONFIG_VALUE_CHARS} characters; "
                "send null to clear it",
                fields=[key],
            )
        reason = spec.check_value(text)
        if reason:
            hint = f"; {spec.help}" if spec.help else ""
            raise InputError(f"{where}: config.{key}: {reason}{hint}", fields=[key])
        return text

    def _check_secret(
        self, profile: ProviderProfile, name: str, value: Any, where: str, loc: str
    ) -> None:
        spec = profile.field(name)
        if not isinstance(value, str):
            raise InputError(f"{where}: {loc} must be text", fields=[name])
        if not value.strip():
            raise InputError(
                f"{where}: {loc} is empty; leave it out to keep the stored value, or send "
                "null to clear it",
                fields=[name],
            )
        if len(value) > MAX_SECRET_CHARS:
            raise InputError(
                f"{where}: {loc} is {len(value)} characters; at most {MAX_SECRET_CHARS}",
                fields=[name],
            )
        if spec.kind == "json_file":
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                pos = f"line {exc.lineno} column {exc.colno}"
                raise InputError(
                    f"{where}: {loc} is not valid JSON ({pos}); pick the key file you "
                    "downloaded again",
                    fields=[name],
                ) from None
            if not isinstance(parsed, dict):
                raise InputError(f"{where}: {loc} must be a JSON object", fields=[name])
        reason = spec.check_value(value.strip())
        if reason:
            hint = f"; {spec.help}" if spec.help else ""
            raise InputError(f"{where}: {loc}: {reason}{hint}", fields=[name])

    @staticmethod
    def _check_url(value: Any, where: str, loc: str) -> None:
        if not isinstance(value, str) or not _URL_RE.match(value):
            raise InputError(
                f"{where}: {loc} {short(value)} must be an http:// or https:// URL",
                fields=[loc.split(".")[-1]],
            )

    def _check_endpoints(
        self, profile: ProviderProfile, value: Any, current: Any, where: str
    ) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise InputError(
                f"{where}: config.endpoints must be an object of endpoint name -> URL",
                fields=["endpoints"],
            )
        merged: dict[str, str] = dict(current or {})
        for name, url in value.items():
            if name not in profile.endpoints:
                raise InputError(
                    f"{where}: config.endpoints.{name} is not an endpoint of {profile.name} "
                    f"(its endpoints: {', '.join(profile.endpoints) or 'none'})",
                    fields=["endpoints"],
                )
            if url is None:
                merged.pop(name, None)
                continue
            self._check_url(url, where, f"config.endpoints.{name}")
            merged[name] = url
        return merged

    # -- internals: import -----------------------------------------------------------------

    def _plan_import(
        self, reg: RegistryFile, data: Any, replace: bool, overwrite: bool
    ) -> tuple[ImportPlan, list[_Change]]:
        items = self._import_items(data)
        existing = {p.id: p for p in reg.providers}
        plan = ImportPlan(replace=replace, overwrite=overwrite)
        seen: dict[str, int] = {}
        changes: list[_Change] = []
        for n, item in enumerate(items, 1):
            where = f"import: provider #{n}"
            if not isinstance(item, Mapping):
                raise InputError(f"{where} must be a JSON object, got {type(item).__name__}")
            raw_id = item.get("id")
            if raw_id is None:
                raise InputError(f"{where} has no `id`", fields=["id"])
            pid = check_id(raw_id, where=f"{where}: id")
            if pid in seen:
                raise InputError(
                    f"import: id {pid!r} appears twice (providers #{seen[pid]} and #{n}); "
                    "each id may appear once",
                    fields=["id"],
                )
            seen[pid] = n
            payload = {k: v for k, v in item.items() if k not in ("active", "secrets_set")}
            inp = self._parse_input(payload, where)
            if inp.template_id is None:
                raise InputError(f"{where} ({pid!r}) has no `template_id`", fields=["template_id"])
            if pid == LOCAL_ID or self._profile(inp.template_id).protected:
                # Validate it all the same, so a broken file is refused whole.
                self._normalize(inp, existing.get(LOCAL_ID), where)
                plan.skip[pid] = "the local provider is built in and is not imported"
                continue
            old = None if replace else existing.get(pid)
            if old is not None and not overwrite:
                self._normalize(inp, None, where)
                plan.skip[pid] = "exists already (import without --no-overwrite to update it)"
                continue
            if old is not None and old.template_id != inp.template_id:
                raise InputError(
                    f"{where} ({pid!r}): template_id {inp.template_id!r} differs from the "
                    f"registered provider's {old.template_id!r}; remove it first or import "
                    "with replace",
                    fields=["template_id"],
                )
            change = self._normalize(inp, old, where)
            change.entry = change.entry.model_copy(update={"active": False})
            changes.append(change)
            (plan.add if old is None else plan.update).append(pid)
        if replace:
            plan.delete = [p.id for p in reg.providers if p.id != LOCAL_ID]
            for p in reg.providers:
                if p.id != LOCAL_ID and p.secrets_set:
                    plan.delete_credentials[p.id] = list(p.secrets_set)
        return plan, changes

    @staticmethod
    def _import_items(data: Any) -> list[Any]:
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise InputError(f"import: not valid JSON ({exc})") from None
        if isinstance(data, list):
            return data
        if not isinstance(data, Mapping):
            raise InputError(
                'import: expected an export, {"providers": [...]} or a list of providers, '
                f"got {type(data).__name__}"
            )
        if "format" in data or "version" in data:
            fmt = data.get("format")
            if fmt not in (EXPORT_FORMAT, REGISTRY_FORMAT):
                raise InputError(
                    f"import: unknown format {short(fmt)}; expected {EXPORT_FORMAT!r}",
                    fields=["format"],
                )
            version = data.get("version", data.get("schema_version"))
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise InputError(
                    f"import: unknown export version {short(version)}", fields=["version"]
                )
            if version > EXPORT_VERSION:
                raise InputError(
                    f"import: export version {version} was written by a newer comfyvn-gui "
                    f"(this one reads version {EXPORT_VERSION}); update comfyvn-gui",
                    fields=["version"],
                )
        providers = data.get("providers")
        if not isinstance(providers, list):
            raise InputError(
                "import: `providers` must be a list of provider entries", fields=["providers"]
            )
        return providers

    def _backup(self, reg: RegistryFile) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.home.backups_dir / f"providers-{stamp}.json"
        atomic_write_text(path, reg.model_dump_json(indent=2) + "\n")
        backups = sorted(self.home.backups_dir.glob("providers-*.json"))
        for old in backups[:-BACKUPS_KEPT]:
            old.unlink(missing_ok=True)
        return path

    # -- internals: storage and transactions ---------------------------------------------

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
            raw = path.read_text("utf-8")
        except FileNotFoundError:
            return RegistryFile(providers=[self._local_entry()])
        except OSError as exc:
            raise OperationError(f"cannot read {path} ({exc.strerror})") from None
        try:
            data = json.loads(raw)
            data = _migrate(data)
            reg = RegistryFile.model_validate(data)
        except (ValueError, ValidationError) as exc:
            detail = str(exc).splitlines()[0]
            raise OperationError(
                f"{path} is damaged ({detail}); restore a copy from {self.home.backups_dir} "
                "or move the file away to start with an empty registry"
            ) from None
        if not any(p.id == LOCAL_ID for p in reg.providers):
            reg.providers.insert(0, self._local_entry())
        plaintext = self._take_plaintext_secrets(reg)
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

    def _take_plaintext_secrets(self, reg: RegistryFile) -> dict[SecretKey, str]:
        """Strip secret values out of ``config`` (they belong in the keyring)."""
        found: dict[SecretKey, str] = {}
        for i, p in enumerate(reg.providers):
            try:
                names = set(self.catalog.profile(p.template_id).secret_fields)
            except NotFoundError:
                continue
            leaked = {k: v for k, v in p.config.items() if k in names}
            if not leaked:
                continue
            config = {k: v for k, v in p.config.items() if k not in names}
            values = {k: v for k, v in leaked.items() if isinstance(v, str) and v}
            found.update({(p.id, k): v for k, v in values.items()})
            reg.providers[i] = p.model_copy(
                update={"config": config, "secrets_set": sorted(set(p.secrets_set) | set(values))}
            )
        return found

    def _local_entry(self) -> ProviderEntry:
        profile = next(p for p in self.catalog.profiles.values() if p.protected)
        return ProviderEntry(id=LOCAL_ID, template_id=profile.id, name=profile.name, active=True)

    def _write(self, reg: RegistryFile) -> None:
        self.home.ensure()
        # Temp files of writers that were killed mid-write (we hold the lock: none is live).
        for stale in self.home.config_dir.glob(f".{self.home.registry_file.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        atomic_write_text(self.home.registry_file, reg.model_dump_json(indent=2) + "\n")

    @staticmethod
    def _writes_of(changes: list[_Change]) -> dict[SecretKey, str]:
        return {(ch.entry.id, f): v for ch in changes for f, v in ch.writes.items()}

    @staticmethod
    def _clears_of(changes: list[_Change]) -> set[SecretKey]:
        return {(ch.entry.id, f) for ch in changes for f in ch.clears}

    def _all_secret_keys(self, entries: list[ProviderEntry]) -> set[SecretKey]:
        names = self.catalog.all_secret_field_names
        return {(p.id, f) for p in entries for f in names | set(p.secrets_set)}

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
        olds = {key: store.get(*key) for key in writes}
        had_old = {key: value is not None for key, value in olds.items()}
        self._write_journal(txn, had_old, deletes)
        try:
            for key, old in olds.items():  # park every value we overwrite before touching any
                if old is not None:
                    store.set_raw(_prev(key), old)
            for key, value in writes.items():
                store.set(*key, value)
            self._write(reg)
        except BaseException:
            # If the rollback fails too, the journal stays and the next process finishes it.
            with contextlib.suppress(Exception):
                self._rollback(had_old)
                self.home.journal_file.unlink(missing_ok=True)
            raise
        self._finish(had_old, deletes)

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

    def _finish(self, had_old: Mapping[SecretKey, bool], deletes: set[SecretKey]) -> None:
        store = self.secrets
        for key in sorted(deletes):
            store.delete(*key)
        for key in had_old:
            store.delete_raw(_prev(key))
        self.home.journal_file.unlink(missing_ok=True)

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


def _prev(key: SecretKey) -> str:
    return f"{key[0]}/{key[1]}@prev"


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
