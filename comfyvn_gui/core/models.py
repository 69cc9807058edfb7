"""Public objects of the provider registry (docs/architecture.md, "Provider entries and endpoints").

Their JSON Schemas are published under ``docs/schemas/`` (``comfyvn-gui schemas``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

REGISTRY_FORMAT: Final = "comfyvn-gui.providers"
REGISTRY_SCHEMA_VERSION = 1
EXPORT_FORMAT: Final = "comfyvn-gui.providers-export"
EXPORT_VERSION = 1

#: Ids that name an API route and therefore cannot be provider ids.
RESERVED_IDS = frozenset(
    {"templates", "health", "export", "import", "create", "register", "remove", "list"}
)
ID_MAX_LEN = 64
ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
ID_RE = re.compile(ID_PATTERN)
LOCAL_ID = "local"


class ProviderEntry(BaseModel):
    """A registered provider as stored, listed and exported. Never holds a secret value."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN, max_length=ID_MAX_LEN, description="Safe slug")
    template_id: str = Field(description="The catalog profile this provider was made from")
    name: str = Field(min_length=1, max_length=200)
    enabled: bool = Field(True, description="The user's switch")
    active: bool = Field(
        False, description="Its current credentials passed validation on this machine"
    )
    base_url: str | None = Field(None, description="Overrides the profile's primary endpoint")
    gpu: str | None = Field(None, description="A GPU catalog name; default the profile's")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Non-secret auth fields, profile options and `endpoints` overrides",
    )
    secrets_set: list[str] = Field(
        default_factory=list, description="Names of the secret fields stored in the keyring"
    )
    meta: dict[str, Any] = Field(default_factory=dict, description="Notes and registry metadata")


class ProviderEntryWithSecrets(ProviderEntry):
    """An entry in an export made with ``include_secrets``."""

    secrets: dict[str, str] = Field(default_factory=dict)


class ProviderInput(BaseModel):
    """What create / register / import accept.

    Secret fields may come inside ``config`` (as the seed's create example sends
    ``config.api_key``) or in ``secrets``; either way they go to the keyring. A secret given
    as null is cleared; an absent one is kept.
    """

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    template_id: str | None = None
    name: str | None = None
    enabled: bool | None = None
    active: bool | None = Field(None, description="Ignored: only validation sets it")
    base_url: str | None = None
    gpu: str | None = None
    config: dict[str, Any] | None = None
    secrets: dict[str, str | None] | None = None
    secrets_set: list[str] | None = Field(None, description="Ignored: derived from the keyring")
    meta: dict[str, Any] | None = None


class RegistryFile(BaseModel):
    """The on-disk form of ``config/providers.json``."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["comfyvn-gui.providers"] = REGISTRY_FORMAT
    schema_version: int = REGISTRY_SCHEMA_VERSION
    txn: str | None = Field(None, description="Id of the last committed change")
    providers: list[ProviderEntry] = Field(default_factory=list)


class ExportDocument(BaseModel):
    """``providers export``: secrets stripped unless asked for."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["comfyvn-gui.providers-export"] = EXPORT_FORMAT
    version: int = EXPORT_VERSION
    exported_at: datetime
    app_version: str
    catalog_version: str
    include_secrets: bool = False
    providers: list[ProviderEntryWithSecrets]


class ImportPlan(BaseModel):
    """What an import will do, computed before anything changes."""

    replace: bool
    overwrite: bool
    add: list[str] = Field(default_factory=list)
    update: list[str] = Field(default_factory=list)
    skip: dict[str, str] = Field(default_factory=dict, description="id -> why it is skipped")
    delete: list[str] = Field(
        default_factory=list, description="Providers a replacing import deletes"
    )
    delete_credentials: dict[str, list[str]] = Field(
        default_factory=dict, description="Provider -> stored secret fields that will be deleted"
    )
    backup: str | None = Field(None, description="Backup file written before a replace")

    def describe(self) -> list[str]:
        lines = []
        if self.delete:
            lines.append("will delete providers: " + ", ".join(self.delete))
        for pid, fields in self.delete_credentials.items():
            lines.append(f"will delete stored credentials of {pid}: {', '.join(fields)}")
        if self.add:
            lines.append("will add: " + ", ".join(self.add))
        if self.update:
            lines.append("will update: " + ", ".join(self.update))
        for pid, why in self.skip.items():
            lines.append(f"will skip {pid}: {why}")
        return lines
