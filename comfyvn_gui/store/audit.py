"""The audit log ``logs/compute_advisor.log`` (docs/architecture.md, "Storage").

One JSON object a line: ``ts`` (ISO-8601 UTC), ``level``, ``event``, ``pid``, then the event's
fields. Several processes (GUI, API server, CLI) append to the same file;
``concurrent_log_handler`` serialises them with a lock file in the log folder and rotates the
file (5 MB, 5 backups) under that lock, so no line is lost or interleaved. Every record passes
the redaction of ``core/redaction.py``.

Writing an event never raises: a failure (full disk, permissions) is reported once to stderr
and the event is dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import types
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from concurrent_log_handler import ConcurrentRotatingFileHandler

from comfyvn_gui.core.redaction import RedactingFilter, jsonable, redact_text

from .paths import Home

__all__ = ["AuditLog", "get_audit_log", "read_events"]

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_BACKUP_COUNT = 5

# --------------------------------------------------------------------------- the audit log

_RESERVED = ("ts", "level", "event", "pid")
_FIELDS_ATTR = "audit_fields"


class _JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds")
        payload: dict[str, Any] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname,
            "event": record.getMessage(),
            "pid": record.process if record.process is not None else os.getpid(),
        }
        fields = getattr(record, _FIELDS_ATTR, None)
        if isinstance(fields, dict):
            payload.update(fields)
        if not record.exc_text and record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact_text(self.formatException(record.exc_info))
        if record.exc_text:
            payload["exc"] = record.exc_text
        return json.dumps(jsonable(payload), ensure_ascii=False)


class _AuditHandler(ConcurrentRotatingFileHandler):
    """The rotating handler, reporting its write errors through ``on_error``."""

    on_error: Callable[[BaseException | None], None] | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if self.on_error is not None:
            self.on_error(exc)


class AuditLog:
    """Appends audit events to ``home.advisor_log``; safe across threads and processes.

    Lazy: the log folder is created and the file opened on the first event, so building an
    ``AuditLog`` never touches the disk and never fails."""

    def __init__(
        self,
        home: Home,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backup_count: int = DEFAULT_BACKUP_COUNT,
    ) -> None:
        self.path = home.advisor_log
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        self._lock = threading.Lock()
        self._handler: _AuditHandler | None = None
        self._reported = False
        self._report_lock = threading.Lock()
        self._logger = logging.Logger("comfyvn_gui.audit", logging.DEBUG)
        self._logger.propagate = False

    def _open(self) -> _AuditHandler | None:
        with self._lock:
            if self._handler is not None:
                return self._handler
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                handler = _AuditHandler(
                    str(self.path),
                    maxBytes=self.max_bytes,
                    backupCount=self.backup_count,
                    encoding="utf-8",
                    chmod=0o600,
                    lock_file_directory=str(self.path.parent),
                    # Audit events are rare: opening per event keeps no file descriptors
                    # between events (one AuditLog per home may live as long as the process).
                    keep_file_open=False,
                )
            except Exception as exc:  # noqa: BLE001 - logging never raises
                self._report(exc)
                return None
            handler.on_error = self._report
            handler.addFilter(RedactingFilter())
            handler.setFormatter(_JsonLineFormatter())
            self._logger.addHandler(handler)
            self._handler = handler
            return handler

    def event(self, event: str, /, **fields: Any) -> None:
        """Append one event. ``level="warning"`` (a level name) sets its level (default INFO);
        ``exc_info=True`` or an exception adds its redacted traceback as ``exc``. A field named
        ``ts``, ``event`` or ``pid`` is stored as ``field_ts`` ... Never raises."""
        try:
            if self._open() is None:
                return
            level = logging.INFO
            requested = fields.pop("level", None)
            if isinstance(requested, str):
                named = logging.getLevelName(requested.upper())
                if isinstance(named, int):
                    level = named
            exc_info = _exc_info(fields.pop("exc_info", None))
            clean = {(f"field_{k}" if k in _RESERVED else k): v for k, v in fields.items()}
            record = self._logger.makeRecord(
                self._logger.name,
                level,
                "",
                0,
                event,
                (),
                exc_info,
                extra={_FIELDS_ATTR: clean},
            )
            self._logger.handle(record)
        except Exception as exc:  # noqa: BLE001 - logging never raises
            self._report(exc)

    def close(self) -> None:
        """Close the file (a later event opens it again)."""
        with self._lock:
            handler, self._handler = self._handler, None
        if handler is not None:
            self._logger.removeHandler(handler)
            try:
                handler.close()
            except Exception as exc:  # noqa: BLE001 - logging never raises
                self._report(exc)

    def _report(self, exc: BaseException | None) -> None:
        with self._report_lock:
            if self._reported:
                return
            self._reported = True
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "unknown error"
        message = redact_text(
            f"comfyvn-gui: cannot write the audit log {self.path} ({reason}); audit events "
            "are dropped until it is writable (check the folder's permissions and free space; "
            "this is reported once)"
        )
        # If stderr itself is gone, nothing more can be done.
        with contextlib.suppress(Exception):
            if logging.lastResort is not None:
                logging.lastResort.handle(
                    logging.makeLogRecord(
                        {"msg": message, "levelno": logging.WARNING, "levelname": "WARNING"}
                    )
                )
            else:
                sys.stderr.write(message + "\n")


_ExcInfo = tuple[type[BaseException], BaseException, types.TracebackType | None]


def _exc_info(value: Any) -> _ExcInfo | None:
    if value is None or value is False:
        return None
    if isinstance(value, BaseException):
        return (type(value), value, value.__traceback__)
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return (type(value[1]), value[1], value[2])
    current = sys.exc_info()
    if current[1] is None:
        return None
    return (type(current[1]), current[1], current[2])


_instances_lock = threading.Lock()
_instances: dict[Path, AuditLog] = {}


def get_audit_log(home: Home) -> AuditLog:
    """The process's one ``AuditLog`` for ``home``'s log file (so handlers never double)."""
    key = Path(os.path.abspath(home.advisor_log))
    with _instances_lock:
        log = _instances.get(key)
        if log is None:
            log = _instances[key] = AuditLog(home)
        return log


def _log_files(path: Path) -> list[Path]:
    """The rotated files (oldest first), then the current one."""
    backups: list[tuple[int, Path]] = []
    try:
        for candidate in path.parent.glob(path.name + ".*"):
            suffix = candidate.name[len(path.name) + 1 :]
            if suffix.isdigit():
                backups.append((int(suffix), candidate))
    except OSError:
        pass
    return [p for _, p in sorted(backups, reverse=True)] + [path]


def read_events(home: Home) -> list[dict[str, Any]]:
    """Every event in the log, oldest file first; unreadable files and broken lines are
    skipped. Not taken under the writers' lock: a rotation in progress can hide a file."""
    events: list[dict[str, Any]] = []
    for path in _log_files(home.advisor_log):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.split("\n"):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                events.append(obj)
    return events
