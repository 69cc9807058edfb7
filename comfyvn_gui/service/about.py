"""About: versions, the home's folders and whether the OS keyring works now
(docs/architecture.md, "The service: composition root and features")."""

from __future__ import annotations

from typing import Any

from comfyvn_gui import __version__
from comfyvn_gui.core.catalog import Catalog
from comfyvn_gui.store.paths import Home
from comfyvn_gui.store.secrets import SecretStore, SecretStoreError


class AboutFeature:
    """What ``about`` and Help -> About say of one home."""

    def __init__(self, *, home: Home, catalog: Catalog, secrets: SecretStore) -> None:
        self.home = home
        self.catalog = catalog
        self.secrets = secrets

    def keyring_backend(self) -> str:
        return self.secrets.backend_name

    def keyring_status(self) -> tuple[str, str | None]:
        """(backend name, None) when the keyring works now, else ("none", why and how to fix)."""
        try:
            self.secrets.check()
        except SecretStoreError as exc:
            # (a status is a read: "Nothing was saved." is said only where a write failed)
            why = exc.message.replace(" Nothing was saved.", "").strip()
            return self.secrets.backend_name, why
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
