"""Settings: read and change the home's settings; every change is logged, and a change of an
``advisor.*`` setting re-advises the job queue (``on_change``) (docs/architecture.md, "The
service: composition root and features").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from comfyvn_gui.core.settings import spec_for
from comfyvn_gui.store.audit import AuditLog
from comfyvn_gui.store.settings import SettingsStore


class SettingsFeature:
    """The settings of one home, changed with an audit line (and re-advice where it matters)."""

    def __init__(
        self, *, settings: SettingsStore, audit: AuditLog, on_change: Callable[[str], None]
    ) -> None:
        self.settings = settings
        self.audit = audit
        self._on_change = on_change

    def all(self) -> dict[str, Any]:
        return self.settings.all()

    def get(self, key: str) -> Any:
        return self.settings.get(key)

    def set(self, key: str, value: Any) -> Any:
        typed = self.settings.set(key, value)
        self.audit.event("settings.changed", key=key, value=spec_for(key).summary(typed))
        if key.startswith("advisor."):
            self._on_change(f"{key} was set to {json.dumps(typed)}")
        return typed

    def unset(self, key: str) -> Any:
        self.settings.unset(key)
        value = self.settings.get(key)
        self.audit.event(
            "settings.changed", key=key, value=spec_for(key).summary(value), reset=True
        )
        if key.startswith("advisor."):
            self._on_change(f"{key} was reset to {json.dumps(value)}")
        return value
