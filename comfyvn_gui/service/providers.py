"""Providers: the registry's create / update / remove / export / import, for every skin.

The rules are :mod:`comfyvn_gui.core.provider_rules`, the transaction is
:class:`comfyvn_gui.store.registry.Registry`; this feature adds what comes before and after a
change: a provider with work in flight (``in_flight``: provider id -> job ids) is locked
against removal, a replacing or overwriting import, disabling, and changes of its credentials,
location or endpoints (the rule: :mod:`comfyvn_gui.core.provider_lock`; a refusal changes
nothing); after a change that succeeded the job queue is re-advised (``on_change``, given the
reason in words) (docs/architecture.md, "The service: composition root and features").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from comfyvn_gui.core import provider_lock as lock
from comfyvn_gui.core import provider_rules as rules
from comfyvn_gui.core.catalog import Catalog, ProviderProfile
from comfyvn_gui.core.errors import InputError
from comfyvn_gui.core.models import ImportPlan, ProviderEntry
from comfyvn_gui.store.paths import atomic_write_text
from comfyvn_gui.store.registry import ImportReport, Registry


class ProvidersFeature:
    """Registry CRUD of one home; ``on_change(reason)`` after every change; ``in_flight()``
    says which providers have work in flight ({provider id: job ids}), asked before a change
    that may be locked (none: nothing is locked)."""

    def __init__(
        self,
        *,
        registry: Registry,
        catalog: Catalog,
        on_change: Callable[[str], None],
        in_flight: Callable[[], Mapping[str, Sequence[int]]] | None = None,
    ) -> None:
        self.registry = registry
        self.catalog = catalog
        self._on_change = on_change
        self._in_flight = in_flight or dict

    # -- catalog ---------------------------------------------------------------------------

    def templates(self) -> list[ProviderProfile]:
        return list(self.catalog.profiles.values())

    def template(self, template_id: str) -> ProviderProfile:
        return self.catalog.profile(template_id)

    # -- reading ---------------------------------------------------------------------------

    def entries(self) -> list[ProviderEntry]:
        return self.registry.providers()

    def get(self, provider_id: str) -> ProviderEntry:
        return self.registry.get(provider_id)

    def problem(self, entry: ProviderEntry) -> str | None:
        """Why this version cannot use ``entry`` (an unknown template), with the fix; or None."""
        return rules.broken_reason(self.catalog, entry, str(self.registry.home.registry_file))

    def problems(self) -> dict[str, str]:
        """:meth:`problem` of every registered provider that has one, by id."""
        return {e.id: why for e in self.entries() if (why := self.problem(e)) is not None}

    def missing_fields(self, entry: ProviderEntry) -> list[str]:
        """Required auth fields that are neither configured nor stored in the keyring (none
        for a provider whose template is unknown: see :meth:`problem`)."""
        if entry.template_id not in self.catalog.profiles:
            return []
        profile = self.catalog.profile(entry.template_id)
        have = set(entry.config) | set(entry.secrets_set)
        return [f.name for f in profile.auth_fields if f.required and f.name not in have]

    # -- changes ---------------------------------------------------------------------------

    def create(self, template_id: str, payload: Mapping[str, Any]) -> ProviderEntry:
        """A new provider from a template; ``payload`` is a provider input (its
        ``template_id``, if any, is ignored: the argument names the template)."""
        fields = {k: v for k, v in payload.items() if k != "template_id"}
        entry = self.registry.create(template_id, **fields)
        self._on_change(f"{entry.id} was added")
        return entry

    def register(self, payload: Mapping[str, Any]) -> tuple[ProviderEntry, bool]:
        """Create or update from a provider input that names its id. (entry, created)."""
        self._check_update(payload)
        entry, created = self.registry.register(payload)
        self._on_change(f"{entry.id} was {'added' if created else 'changed'}")
        return entry, created

    def save(
        self, payload: Mapping[str, Any], *, new: bool | None = None
    ) -> tuple[ProviderEntry, bool]:
        """Save a provider input as a form holds it (``id``, ``template_id`` and the rest).

        ``new=True``: create it (as :meth:`create`: a taken id is refused, a missing one is
        made from the template id). ``new=False``: update the registered provider of that id
        (refused if it is not registered any more). ``new=None``: create when the payload has
        no id, else create or update that id (as :meth:`register`). Returns (entry, created).
        """
        if not isinstance(payload, Mapping):
            return self.register(payload)  # the registry says what is wrong with it
        if new is None:
            new = payload.get("id") is None
            if not new:
                return self.register(payload)
        if new:
            template_id = payload.get("template_id")
            if template_id is None:
                raise InputError(
                    "a new provider needs its `template_id` (one of "
                    f"{', '.join(self.catalog.profiles)})",
                    fields=["template_id"],
                )
            fields = {k: v for k, v in payload.items() if k not in ("template_id", "id")}
            if payload.get("id") is not None:
                fields["id"] = payload["id"]
            return self.create(template_id, fields), True
        self._check_update(payload)
        entry, created = self.registry.register(payload, must_exist=True)
        self._on_change(f"{entry.id} was changed")
        return entry, created

    def remove(self, provider_id: str) -> ProviderEntry:
        lock.check_remove(provider_id, self._in_flight())
        entry = self.registry.remove(provider_id)
        self._on_change(f"{provider_id} was removed")
        return entry

    def remove_all(self) -> list[str]:
        lock.check_remove_all(self._in_flight())
        removed = self.registry.remove_all()
        self._on_change("every provider was removed")
        return removed

    # -- export / import -------------------------------------------------------------------

    def export(self, *, include_secrets: bool = False) -> dict[str, Any]:
        return self.registry.export(include_secrets=include_secrets)

    def export_to(self, path: Path, *, include_secrets: bool = False) -> int:
        """Write the export to ``path`` (atomically, private: mode 0600) and return how many
        providers it holds. Raises OperationError when the file cannot be written."""
        doc = self.export(include_secrets=include_secrets)
        atomic_write_text(path, json.dumps(doc, indent=2) + "\n", mode=0o600)
        return len(doc["providers"])

    def plan_import(self, data: Any, *, replace: bool, overwrite: bool) -> ImportPlan:
        """What an import would do; ConflictError when it would be refused because it would
        replace or overwrite a provider with work in flight (so a preview says so first)."""
        plan = self.registry.plan_import(data, replace=replace, overwrite=overwrite)
        lock.check_import(plan, self._in_flight())
        return plan

    def import_(self, data: Any, *, replace: bool, overwrite: bool) -> ImportReport:
        in_flight = self._in_flight()
        if in_flight:
            plan = self.registry.plan_import(data, replace=replace, overwrite=overwrite)
            lock.check_import(plan, in_flight)
        report = self.registry.import_(data, replace=replace, overwrite=overwrite)
        self._on_change("providers were imported")
        return report

    # -- the lock of a provider with work in flight -----------------------------------------

    def _check_update(self, payload: Any) -> None:
        """Refuse an update that is locked while its provider has work in flight. Reads the
        registry (and the keyring, for the secrets it writes) only for such a provider; an
        input the registry would refuse is left for it to refuse."""
        in_flight = self._in_flight()
        pid = payload.get("id") if isinstance(payload, Mapping) else None
        if not isinstance(pid, str) or not in_flight.get(pid):
            return
        old = next((p for p in self.registry.providers() if p.id == pid), None)
        if old is None or old.template_id not in self.catalog.profiles:
            return
        change = rules.registration(self.catalog, rules.parse_registration(payload), old)
        stored = {
            name: value
            for name in sorted(set(change.writes) & set(old.secrets_set))
            if (value := self.registry.get_secret(pid, name)) is not None
        }
        lock.check_update(
            self.catalog.profile(old.template_id),
            old,
            change,
            stored=stored,
            job_ids=in_flight[pid],
        )
