"""The one façade the CLI, the HTTP API and the GUI talk to (DESIGN.md, "Layers").

It composes the catalog, the registry, the secret store, the settings and the audit log of
one home. Rules live in ``core/``; this module only wires them together, so the three skins
stay thin and agree with each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from . import __version__
from .core.audit import AuditLog, get_audit_log
from .core.catalog import Catalog, ProviderProfile, load_catalog
from .core.models import ImportPlan, ProviderEntry
from .core.paths import Home, resolve_home
from .core.registry import ImportReport, Registry
from .core.secrets import SecretStore, SecretStoreError
from .core.settings import SettingsStore


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
        return self.registry.create(template_id, **fields)

    def register_provider(self, payload: Mapping[str, Any]) -> tuple[ProviderEntry, bool]:
        return self.registry.register(payload)

    def remove_provider(self, provider_id: str) -> ProviderEntry:
        return self.registry.remove(provider_id)

    def remove_all_providers(self) -> list[str]:
        return self.registry.remove_all()

    def export_providers(self, *, include_secrets: bool = False) -> dict[str, Any]:
        return self.registry.export(include_secrets=include_secrets)

    def plan_import(self, data: Any, *, replace: bool, overwrite: bool) -> ImportPlan:
        return self.registry.plan_import(data, replace=replace, overwrite=overwrite)

    def import_providers(self, data: Any, *, replace: bool, overwrite: bool) -> ImportReport:
        return self.registry.import_(data, replace=replace, overwrite=overwrite)

    def keyring_backend(self) -> str:
        return self.secrets.backend_name

    # -- settings --------------------------------------------------------------------------

    def get_settings(self) -> dict[str, Any]:
        return self.settings.all()

    def get_setting(self, key: str) -> Any:
        return self.settings.get(key)

    def set_setting(self, key: str, value: Any) -> Any:
        typed = self.settings.set(key, value)
        self.audit.event("settings.changed", key=key, value=typed)
        return typed

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
