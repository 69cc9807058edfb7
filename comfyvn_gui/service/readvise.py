"""When to re-advise the job queue: after a change that may alter a decision.

A provider added, changed or removed, an ``advisor.*`` setting, an import, or check results
that change what the advisor reads (health, validation, a node's reported capacity) re-advise
the queued jobs. That is a consequence of a change that already succeeded, so it never raises:
a failure is logged and the next re-advice catches up. The desktop app runs it in a child
process (:class:`ReadviseRunner`) so its CPU work does not hold the window's GIL
(docs/architecture.md, "The service: composition root and features").

Only callbacks come in: whether a queue exists, the re-advice itself and a reading of the
advisor's inputs, so a home without a job queue never loads the advisor.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from comfyvn_gui.store.audit import AuditLog
from comfyvn_gui.store.paths import Home

#: What the advisor reads of each provider: (active, health, (reported VRAM, health code)).
AdviceState = Mapping[str, tuple[bool, str, Any]]


class ReadviseTrigger:
    """Re-advises the queue after changes: here, or in a child process (``in_subprocess``)."""

    def __init__(
        self,
        *,
        home: Home,
        audit: AuditLog,
        queue_exists: Callable[[], bool],
        readvise: Callable[[str], object],
        advice_state: Callable[[], AdviceState],
    ) -> None:
        self.home = home
        self.audit = audit
        self._queue_exists = queue_exists
        self._readvise = readvise
        self._advice_state = advice_state
        #: The desktop app re-advises in a child process (see ``ReadviseRunner``): a large
        #: queue's re-advice would otherwise hold the GIL of the window's process.
        self.in_subprocess = False
        self._runner: ReadviseRunner | None = None

    def runner(self) -> ReadviseRunner | None:
        """The child-process runner, when re-advice runs in one (made on first use)."""
        if not self.in_subprocess:
            return None
        if self._runner is None:
            h = self.home
            root = h.config_dir.parent
            if not (h.data_dir.parent == root == h.log_dir.parent):
                return None  # a home a child process could not find: re-advise here
            self._runner = ReadviseRunner(root)
        return self._runner

    def quietly(self, trigger: str) -> None:
        """Re-advise after a change that already succeeded: a failure here is logged, never
        raised (the change itself stands; the next re-advice catches up)."""
        if not self._queue_exists():
            return
        runner = self.runner()
        if runner is not None:
            runner.request(trigger)
            return
        try:
            self._readvise(trigger)
        except Exception as exc:  # noqa: BLE001 - must not undo the caller's success
            self.audit.event("jobs.readvise_failed", level="warning", trigger=trigger, exc=exc)

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Around recording check results: re-advise if what the advisor reads changed
        (a provider's health, its validation, or the capacity it reported)."""
        before = self._advice_state() if self._queue_exists() else None
        yield
        if before is None:
            return
        after = self._advice_state()
        said = []
        for pid, (active, health, reported) in after.items():
            was = before.get(pid)
            if was is None:
                continue
            if health != was[1]:
                said.append(f"{pid} turned {health}")
            if active != was[0]:
                said.append(f"{pid} {'passed' if active else 'failed'} validation")
            if reported != was[2] and health == was[1]:
                said.append(f"{pid} reported new capacity")
        if said:
            self.quietly("; ".join(said))

    def close(self) -> None:
        """Let a child re-advice finish; a later request starts a new runner."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()


class ReadviseRunner:
    """Re-advice in a separate ``comfyvn-gui jobs readvise`` process (the desktop app's way).

    Re-advising a large queue is CPU work in Python: in a thread of the GUI process it holds
    the GIL (and triggers garbage collections) long enough to stall the window. A child
    process shares nothing but the home, whose job queue is multi-process safe. At most one
    child runs; requests meanwhile are merged into one more run afterwards.
    """

    def __init__(self, home_root: Path) -> None:
        self.home_root = home_root
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending: list[str] = []
        self._waiter: threading.Thread | None = None
        self._closed = False

    def request(self, trigger: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._pending.append(trigger)
            if self._proc is None:
                self._start_locked()

    def _start_locked(self) -> None:
        because = "; ".join(dict.fromkeys(self._pending))[:2000]
        self._pending = []
        env = {**os.environ, "COMFYVN_GUI_HOME": str(self.home_root)}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "comfyvn_gui", "jobs", "readvise", "--because", because],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._waiter = threading.Thread(
            target=self._wait, args=(self._proc,), name="comfyvn-readvise", daemon=True
        )
        self._waiter.start()

    def _wait(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        with self._lock:
            self._proc = None
            if self._pending and not self._closed:
                self._start_locked()

    def close(self, timeout: float = 30.0) -> None:
        """Let a running re-advice finish (it is recorded all or nothing per job)."""
        with self._lock:
            self._closed = True
            self._pending = []
            waiter = self._waiter
        if waiter is not None:
            waiter.join(timeout)
