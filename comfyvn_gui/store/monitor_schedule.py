"""The health monitor's schedule, ``data/health-monitor.json``, shared by every process.

Per watched provider: when it is next due (epoch seconds), how many health checks in a row
failed, its last status and, while a round checks it, when that round claimed it. Rounds of
several processes (the GUI, ``serve``, ``providers health --watch``) read and change it under
one file lock, so no provider is checked twice. A damaged file is an empty schedule (every
provider due now); it is rewritten by the next round.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from filelock import FileLock

from .paths import Home, atomic_write_text

__all__ = ["MonitorSchedule"]

Schedule = dict[str, dict[str, Any]]


class MonitorSchedule:
    def __init__(self, home: Home) -> None:
        self.home = home
        self.path = home.data_dir / "health-monitor.json"
        self._lock = FileLock(str(home.data_dir / ".health-monitor.lock"), timeout=30)

    def load(self) -> Schedule:
        """The schedule as stored (without the lock: a reader may see the one before)."""
        try:
            data = json.loads(self.path.read_text("utf-8"))
            providers = data.get("providers", {})
            return providers if isinstance(providers, dict) else {}
        except (OSError, ValueError, AttributeError):
            return {}

    @contextmanager
    def edit(self) -> Iterator[Schedule]:
        """Read, change in place and write back the schedule under the lock (atomically)."""
        self.home.ensure()
        with self._lock:
            state = self.load()
            yield state
            atomic_write_text(
                self.path, json.dumps({"schema_version": 1, "providers": state}, indent=1) + "\n"
            )
