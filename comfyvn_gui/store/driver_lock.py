"""The dispatch driver's lock and log: one driver per home (docs/architecture.md, "Dispatch:
who drives").

The driver holds ``data/driver.lock`` (filelock) for its whole life, so a second one exits at
once; a process that holds it is alive, so the one that holds it may take over every lease
left by a driver that is gone. Its process id is in ``data/driver.pid`` while it runs; its
output goes to ``logs/driver.log``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .paths import HOME_ENV, Home

if TYPE_CHECKING:
    from filelock import BaseFileLock

__all__ = [
    "driver_env_home",
    "driver_lock",
    "driver_log",
    "driver_pid",
    "driver_pid_file",
    "driver_running",
]


def _lock_path(home: Home) -> Path:
    return home.data_dir / "driver.lock"


def driver_lock(home: Home) -> BaseFileLock:
    """The lock (not taken): ``acquire(timeout=0)`` raises ``filelock.Timeout`` while
    another driver of this home runs."""
    from filelock import FileLock

    home.ensure()
    return FileLock(str(_lock_path(home)))


def driver_running(home: Home) -> bool:
    """A driver of this home holds its lock now."""
    from filelock import Timeout

    if not _lock_path(home).exists():
        return False
    lock = driver_lock(home)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def driver_pid_file(home: Home) -> Path:
    """``data/driver.pid``: the running driver's process id (written while it holds the
    lock, removed when it exits), for people and tools that look for it."""
    return home.data_dir / "driver.pid"


def driver_pid(home: Home) -> int | None:
    """The running driver's process id, or None when no driver runs."""
    if not driver_running(home):
        return None
    try:
        return int(driver_pid_file(home).read_text("ascii").strip())
    except (OSError, ValueError):
        return None


def driver_log(home: Home) -> Path:
    home.ensure()
    return home.log_dir / "driver.log"


def driver_env_home(home: Home) -> dict[str, str]:
    """The environment a driver process needs to open this same home: ``COMFYVN_GUI_HOME``
    when the home is one folder's config/data/logs (else the platform's folders, which a
    child finds by itself)."""
    parent = home.config_dir.parent
    if (
        home.config_dir.name == "config"
        and home.data_dir == parent / "data"
        and home.log_dir == parent / "logs"
    ):
        return {HOME_ENV: str(parent)}
    return {}
