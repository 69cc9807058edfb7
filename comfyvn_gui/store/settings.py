"""The settings file, ``config/settings.json``: read and written under a file lock, atomically.

What each setting is and accepts: ``core/settings.py``.
"""

from __future__ import annotations

import json
from typing import Any

from filelock import FileLock, Timeout

from comfyvn_gui.core.errors import OperationError
from comfyvn_gui.core.settings import (
    SettingSpec,
    copy_value,
    parse_value,
    shown_value,
    spec_for,
    specs,
)

from .paths import Home, atomic_write_text

SCHEMA_VERSION = 1


LOCK_TIMEOUT_S = 10.0


class SettingsStore:
    """Reads and writes ``home.settings_file``. Safe to share between processes."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.path = home.settings_file
        self.lock_path = home.config_dir / ".settings.lock"

    # ----------------------------------------------------------------- reading

    def _fix_hint(self) -> str:
        return (
            f"fix it or delete it (deleting {self.path.name} returns every setting to its default)"
        )

    def _load(self) -> dict[str, Any]:
        """The whole document, ``{"schema_version": 1, "values": {}}`` if there is none."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"schema_version": SCHEMA_VERSION, "values": {}}
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise OperationError(
                f"cannot read the settings file {self.path} ({reason}); {self._fix_hint()}"
            ) from exc
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise OperationError(
                f"the settings file {self.path} is not valid JSON ({exc}); {self._fix_hint()}"
            ) from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("values", {}), dict):
            raise OperationError(
                f"the settings file {self.path} is not a settings document (expected "
                f'{{"schema_version": {SCHEMA_VERSION}, "values": {{...}}}}); '
                f"{self._fix_hint()}"
            )
        doc.setdefault("values", {})
        return doc

    def _effective(self, spec: SettingSpec, values: dict[str, Any]) -> Any:
        if spec.key not in values:
            return copy_value(spec.default)
        try:
            return spec.parse(values[spec.key])
        except (ValueError, TypeError):
            raise OperationError(
                f"the settings file {self.path} holds an invalid {spec.key} "
                f"({shown_value(values[spec.key])}; it must be {spec.accepts}); run "
                f"`comfyvn-gui settings set {spec.key} VALUE` or `comfyvn-gui settings unset "
                f"{spec.key}`, or edit the file",
                fields=[spec.key],
            ) from None

    def all(self) -> dict[str, Any]:
        """Every known setting with its effective value (defaults filled in), sorted by key."""
        values = self._load()["values"]
        return {spec.key: self._effective(spec, values) for spec in specs()}

    def get(self, key: str) -> Any:
        spec = spec_for(key)
        return self._effective(spec, self._load()["values"])

    # ----------------------------------------------------------------- writing

    def set(self, key: str, value: Any) -> Any:
        """Validate ``value`` (typed, or a command-line string), store it, return it typed."""
        spec = spec_for(key)
        typed = parse_value(spec, value)
        self._update(spec.key, typed, remove=False)
        return copy_value(typed)

    def unset(self, key: str) -> None:
        """Return ``key`` to its default."""
        spec = spec_for(key)
        self._update(spec.key, None, remove=True)

    def _update(self, key: str, value: Any, *, remove: bool) -> None:
        self.home.ensure()
        try:
            with FileLock(str(self.lock_path), timeout=LOCK_TIMEOUT_S):
                doc = self._load()
                values: dict[str, Any] = doc["values"]
                if remove:
                    if key not in values:
                        return
                    del values[key]
                else:
                    if key in values and values[key] == value and type(values[key]) is type(value):
                        return
                    values[key] = value
                doc["schema_version"] = max(SCHEMA_VERSION, _int_or(doc.get("schema_version")))
                atomic_write_text(self.path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        except Timeout as exc:
            raise OperationError(
                f"another comfyvn-gui process holds the settings lock {self.lock_path} for more "
                f"than {LOCK_TIMEOUT_S:.0f} s; try again, or delete the lock file if no other "
                "process is running"
            ) from exc


def _int_or(value: Any, default: int = SCHEMA_VERSION) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
