"""The latest validation and health result of each provider, in ``data/checks.json``.

Shared by every process of the home (a file lock around read-modify-write); never holds a
secret. The results themselves are ``core/checks.py``.
"""

from __future__ import annotations

import json

from filelock import FileLock, Timeout
from pydantic import ValidationError

from comfyvn_gui.core.checks import CheckKind, CheckResult
from comfyvn_gui.core.errors import OperationError

from .paths import Home, atomic_write_text


class CheckStore:
    """The latest validation and health result of each provider, shared through the home."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.path = home.data_dir / "checks.json"
        self._lock = FileLock(str(home.data_dir / ".checks.lock"), timeout=10)

    def load(self) -> dict[str, dict[str, CheckResult]]:
        try:
            raw = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a damaged cache of results is not worth failing for; it is rewritten
        out: dict[str, dict[str, CheckResult]] = {}
        for pid, kinds in (raw.get("results") or {}).items():
            for kind, data in (kinds or {}).items():
                try:
                    out.setdefault(pid, {})[kind] = CheckResult.model_validate(data)
                except ValidationError:
                    continue
        return out

    def latest(self, provider_id: str, check: CheckKind) -> CheckResult | None:
        return self.load().get(provider_id, {}).get(check)

    def save(self, results: list[CheckResult]) -> None:
        if not results:
            return
        self.home.ensure()
        try:
            with self._lock:
                current = self.load()
                for r in results:
                    current.setdefault(r.provider, {})[r.check] = r
                data = {
                    "schema_version": 1,
                    "results": {
                        pid: {k: v.model_dump(mode="json") for k, v in kinds.items()}
                        for pid, kinds in current.items()
                    },
                }
                atomic_write_text(self.path, json.dumps(data, indent=1) + "\n")
        except Timeout:
            raise OperationError(f"{self.path} is busy; try again") from None

    def forget(self, provider_ids: list[str]) -> None:
        self.home.ensure()
        with self._lock:
            current = self.load()
            if not any(pid in current for pid in provider_ids):
                return
            for pid in provider_ids:
                current.pop(pid, None)
            data = {
                "schema_version": 1,
                "results": {
                    pid: {k: v.model_dump(mode="json") for k, v in kinds.items()}
                    for pid, kinds in current.items()
                },
            }
            atomic_write_text(self.path, json.dumps(data, indent=1) + "\n")
