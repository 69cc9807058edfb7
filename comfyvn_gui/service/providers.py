"""Providers: the registry's create / update / remove / export / import, for every skin.

The rules are :mod:`comfyvn_gui.core.provider_rules`, the transaction is
:class:`comfyvn_gui.store.registry.Registry`; this feature adds what follows a change that
succeeded: the job queue is re-advised (``on_change``, given the reason in words)
(docs/architecture.md, "The service: composition root and features").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from comfyvn_gui.core import provider_rules as rules
from comfyvn_gui.core.catalog import Catalog, ProviderProfile
from comfyvn_gui.core.errors import InputError
from comfyvn_gui.core.models import ImportPlan, ProviderEntry
from comfyvn_gui.store.paths import atomic_write_text
from comfyvn_gui.store.registry import ImportReport, Registry


class ProvidersFeature:
    """Registry CRUD of one home; ``on_change(reason)`` after every change."""

    def __init__(
        self, *, registry: Registry, catalog: Catalog, on_change: Callable[[str], None]
    ) -> None:
        self.registry = registry
        self.catalog = catalog
        self._on_change = on_change

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
        entry, created = self.registry.register(payload, must_exist=True)
        self._on_change(f"{entry.id} was changed")
        return entry, created

    def remove(self, provider_id: str) -> ProviderEntry:
        entry = self.registry.remove(provider_id)
        self._on_change(f"{provider_id} was removed")
        return entry

    def remove_all(self) -> list[str]:
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
        return self.registry.plan_import(data, replace=replace, overwrite=overwrite)

    def import_(self, data: Any, *, replace: bool, overwrite: bool) -> ImportReport:
        report = self.registry.import_(data, replace=replace, overwrite=overwrite)
        self._on_change("providers were imported")
        return report
