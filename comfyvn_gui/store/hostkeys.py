"""Pinned SSH host keys, in ``config/known_hosts.json`` (what a pin is: ``core/hostkeys.py``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from filelock import FileLock
from pydantic import ValidationError

from comfyvn_gui.core.errors import OperationError
from comfyvn_gui.core.hostkeys import PinnedKey, check_fingerprint

from .paths import Home, atomic_write_text


class HostKeyStore:
    def __init__(self, home: Home) -> None:
        self.home = home
        self.path = home.config_dir / "known_hosts.json"
        self._lock = FileLock(str(home.config_dir / ".known_hosts.lock"), timeout=10)

    def _load(self) -> dict[str, PinnedKey]:
        try:
            raw = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise OperationError(
                f"{self.path} is damaged ({exc}); fix it or delete it and pin the hosts again"
            ) from None
        out: dict[str, PinnedKey] = {}
        for pid, data in (raw.get("pins") or {}).items():
            try:
                out[pid] = PinnedKey.model_validate(data)
            except ValidationError:
                continue
        return out

    def get(self, provider_id: str) -> PinnedKey | None:
        return self._load().get(provider_id)

    def pin(
        self, provider_id: str, host: str, fingerprint: str, key_type: str | None = None
    ) -> PinnedKey:
        pinned = PinnedKey(
            host=host,
            fingerprint=check_fingerprint(fingerprint),
            key_type=key_type,
            pinned_at=datetime.now(UTC),
        )
        self._save({provider_id: pinned})
        return pinned

    def forget(self, provider_id: str) -> None:
        self._save({provider_id: None})

    def _save(self, changes: dict[str, PinnedKey | None]) -> None:
        self.home.ensure()
        with self._lock:
            pins = self._load()
            for pid, pin in changes.items():
                if pin is None:
                    pins.pop(pid, None)
                else:
                    pins[pid] = pin
            data = {
                "schema_version": 1,
                "pins": {k: v.model_dump(mode="json") for k, v in pins.items()},
            }
            atomic_write_text(self.path, json.dumps(data, indent=1) + "\n")
