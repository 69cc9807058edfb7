"""Pinned SSH host keys (trust on first use, done right), in ``config/known_hosts.json``.

The first check of an SSH provider returns ``untrusted_host`` with the server key's
fingerprint; the user compares it with the one their administrator gave them and pins it
(`comfyvn-gui providers trust-host ID --fingerprint SHA256:...`). From then on a different key
is ``host_key_mismatch`` and is never accepted silently. Fingerprints are public: no secret here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from filelock import FileLock
from pydantic import BaseModel, ValidationError

from .errors import InputError, OperationError
from .paths import Home, atomic_write_text

FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")


class PinnedKey(BaseModel):
    host: str  # host:port as connected to
    fingerprint: str  # "SHA256:<base64>" as OpenSSH prints it
    key_type: str | None = None
    pinned_at: datetime


def check_fingerprint(value: str) -> str:
    value = value.strip()
    if not FINGERPRINT_RE.match(value):
        raise InputError(
            f"{value[:60]!r} is not an SSH key fingerprint; it looks like SHA256: followed by 43 "
            "characters (as `ssh-keygen -lf` prints it, and as the untrusted_host result shows)",
            fields=["fingerprint"],
        )
    return value.rstrip("=")


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
