"""The audit log ``logs/compute_advisor.log`` and the redaction every log record passes.

One JSON object a line: ``ts`` (ISO-8601 UTC), ``level``, ``event``, ``pid``, then the event's
fields (DESIGN.md, "Storage"). Several processes (GUI, API server, CLI) append to the same file;
``concurrent_log_handler`` serialises them with a lock file in the log folder and rotates the
file (5 MB, 5 backups) under that lock, so no line is lost or interleaved.

Redaction (``redact`` / ``RedactingFilter``) masks, with ``***``:

- every value registered with ``register_secret`` (the secrets store registers each secret it
  writes or reads), wherever it appears inside a string;
- the value of every secret-looking key (``api_key``, ``token``, ``password`` ...; also
  ``aws_secret_access_key``, ``clientSecret`` ... by suffix), but not keys such as
  ``secrets_set`` or ``fields_changed`` that only name fields;
- credential-looking text: ``Bearer <token>``, AWS access key ids, PEM private key blocks,
  ``"private_key": "..."`` and other quoted or ``key=value`` pairs with a secret-looking key.

Writing an event never raises: a failure (full disk, permissions) is reported once to stderr
and the event is dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import sys
import threading
import types
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from concurrent_log_handler import ConcurrentRotatingFileHandler

from .paths import Home

__all__ = [
    "AuditLog",
    "RedactingFilter",
    "get_audit_log",
    "read_events",
    "redact",
    "register_secret",
]

MASK = "***"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_BACKUP_COUNT = 5
MIN_SECRET_LENGTH = 4
_MAX_DEPTH = 64

# --------------------------------------------------------------------------- secret registry

_registry_lock = threading.Lock()
_registered: set[str] = set()
_registered_pattern: re.Pattern[str] | None = None


def register_secret(value: str) -> None:
    """Remember a secret value so that it is masked wherever it appears in a log record.

    Values shorter than 4 characters are ignored (masking them would mangle ordinary text).
    The value's JSON- and repr-escaped spellings are registered too, so a secret that holds
    quotes or newlines (a service-account JSON) is also caught inside serialised text.
    """
    global _registered_pattern
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return
    variants = {value, json.dumps(value)[1:-1], repr(value)[1:-1]}
    variants = {v for v in variants if len(v) >= MIN_SECRET_LENGTH}
    with _registry_lock:
        if variants <= _registered:
            return
        _registered.update(variants)
        # Longest first, so a secret that contains another one is masked whole.
        ordered = sorted(_registered, key=lambda s: (-len(s), s))
        _registered_pattern = re.compile("|".join(re.escape(s) for s in ordered))


# --------------------------------------------------------------------------- key rules

_SECRET_KEY_TERMS = frozenset(
    {
        "api_key",
        "apikey",
        "access_key",
        "secret",
        "secrets",
        "secret_key",
        "client_secret",
        "token",
        "api_token",
        "password",
        "passphrase",
        "key_passphrase",
        "webhook_secret",
        "service_account_json",
        "private_key",
        "authorization",
        "credential",
        "credentials",
    }
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _normalise_key(key: str) -> str:
    key = _CAMEL_BOUNDARY.sub("_", key).lower()
    return _NON_WORD.sub("_", key).strip("_")


def is_secret_key(key: str) -> bool:
    """Whether a field named ``key`` holds a secret: one of the known names, or a name that
    ends with one (``aws_secret_access_key``, ``access_token``, ``X-Api-Key``). Names that only
    describe fields (``secrets_set``, ``fields``, ``fields_changed``) are not secret keys."""
    norm = _normalise_key(key)
    if not norm:
        return False
    if norm in _SECRET_KEY_TERMS:
        return True
    return any(norm.endswith("_" + term) for term in _SECRET_KEY_TERMS)


# --------------------------------------------------------------------------- text patterns

_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
    r"(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*\Z)",
    re.DOTALL,
)
_BEARER = re.compile(r"\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
_AWS_KEY_ID = re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}")
# Key/value pairs with a secret-looking key. Candidate keys are found without consuming the
# text after them, so a pair nested inside a non-secret value is still found.
# "key": "value" / 'key': 'value' / \"key\": \"value\" (JSON, Python reprs, escaped JSON):
_QUOTED_KEY = re.compile(r"""(?P<q>\\?["'])(?P<key>[A-Za-z0-9_.\-]+)(?P=q)\s*:\s*""")
_QUOTED_VALUE = re.compile(r"""(?P<vq>\\?["'])(?P<qval>(?:\\.|[^\\])*?)(?P=vq)""", re.DOTALL)
# key=value, key: value, key = "value" (query strings, headers, free text, source lines in
# tracebacks); an Authorization value may be "<scheme> <credential>".
_PLAIN_KEY = re.compile(r"(?<![A-Za-z0-9_\-])(?P<key>[A-Za-z][A-Za-z0-9_\-]*)(?=[ \t]*[:=])")
_PLAIN_VALUE = re.compile(
    r"""[ \t]*[:=][ \t]*(?:(?P<vq>["'])(?P<qval>(?:\\.|[^\\])*?)(?P=vq)"""
    r"""|(?P<val>(?:(?:Basic|Bearer|Token|Digest)[ \t]+)?[^\s&'",;)}\]]+))""",
    re.IGNORECASE | re.DOTALL,
)


def _mask_pairs(text: str, key_re: re.Pattern[str], value_re: re.Pattern[str]) -> str:
    out: list[str] = []
    pos = 0
    for m in key_re.finditer(text):
        if m.start() < pos or not is_secret_key(m.group("key")):
            continue
        v = value_re.match(text, m.end())
        if v is None:
            continue
        group = "qval" if v.group("qval") is not None else "val"
        out += [text[pos : v.start(group)], MASK]
        pos = v.end(group)
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _redact_str(text: str) -> str:
    pattern = _registered_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if "PRIVATE KEY-----" in text:
        text = _PEM.sub(MASK, text)
    text = _mask_pairs(text, _QUOTED_KEY, _QUOTED_VALUE)
    text = _mask_pairs(text, _PLAIN_KEY, _PLAIN_VALUE)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _AWS_KEY_ID.sub(MASK, text)


# --------------------------------------------------------------------------- redact()


def _redact(obj: Any, depth: int) -> Any:
    if isinstance(obj, str):
        return _redact_str(obj)
    if depth > _MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if isinstance(key, str) and is_secret_key(key) and value is not None:
                out[_redact_str(key)] = MASK
            else:
                new_key = _redact_str(key) if isinstance(key, str) else key
                out[new_key] = _redact(value, depth + 1)
        return out
    if isinstance(obj, list):
        return [_redact(v, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_redact(v, depth + 1) for v in obj)
    return obj


def redact(obj: Any) -> Any:
    """A redacted deep copy of ``obj`` (str, dict, list, tuple; anything else unchanged).

    A value under a secret-looking key becomes ``"***"`` whatever it is, except ``None`` (an
    absent or cleared secret reveals nothing and stays ``None``)."""
    return _redact(obj, 0)


def _jsonable(obj: Any, depth: int = 0) -> Any:
    """A JSON-safe, redacted form of ``obj``: unknown objects become their redacted ``str``."""
    if obj is None or isinstance(obj, bool | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, str):
        return _redact_str(obj)
    if depth > _MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            skey = _redact_str(key if isinstance(key, str) else str(key))
            if isinstance(key, str) and is_secret_key(key) and value is not None:
                out[skey] = MASK
            else:
                out[skey] = _jsonable(value, depth + 1)
        return out
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
        return [_jsonable(v, depth + 1) for v in items]
    if isinstance(obj, bytes | bytearray):
        return _redact_str(bytes(obj).decode("utf-8", "replace"))
    if isinstance(obj, BaseException):
        return _redact_str(f"{type(obj).__name__}: {obj}")
    if isinstance(obj, Path):
        return _redact_str(str(obj))
    try:
        return _redact_str(str(obj))
    except Exception:  # noqa: BLE001 - a broken __str__ must not break logging
        return f"<unprintable {type(obj).__name__}>"


# --------------------------------------------------------------------------- logging filter

_STANDARD_RECORD_ATTRS = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}
_REDACTED_FLAG = "_comfyvn_redacted"
_EXC_FORMATTER = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, arguments, exception text, stack and extra fields.

    The message is resolved (``msg % args``) and redacted, and ``args`` dropped; exception
    info is rendered into ``exc_text`` and redacted, and ``exc_info`` dropped, so no handler
    can render the raw values later. Attach it to any handler; it never raises and never
    rejects a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _REDACTED_FLAG, False):
            return True
        try:
            _redact_record(record)
        except Exception as exc:  # noqa: BLE001 - never let logging raise into the caller
            record.msg = f"[log record withheld: redaction failed ({type(exc).__name__})]"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
            for key in list(record.__dict__):
                if key not in _STANDARD_RECORD_ATTRS:
                    del record.__dict__[key]
        setattr(record, _REDACTED_FLAG, True)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    if record.args:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: keep its pieces, redacted
            message = f"{record.msg!s} {record.args!r}"
        record.msg = _redact_str(message)
        record.args = None
    elif isinstance(record.msg, str):
        record.msg = _redact_str(record.msg)
    else:  # a non-string message is rendered with str() later: render and redact it now
        record.msg = _redact_str(str(record.msg))
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = _EXC_FORMATTER.formatException(record.exc_info)
    record.exc_info = None
    if record.exc_text:
        record.exc_text = _redact_str(record.exc_text)
    if record.stack_info:
        record.stack_info = _redact_str(record.stack_info)
    for key, value in list(record.__dict__.items()):
        if key in _STANDARD_RECORD_ATTRS:
            continue
        if is_secret_key(key) and value is not None:
            record.__dict__[key] = MASK
        else:
            record.__dict__[key] = redact(value)


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
            record.exc_text = _redact_str(self.formatException(record.exc_info))
        if record.exc_text:
            payload["exc"] = record.exc_text
        return json.dumps(_jsonable(payload), ensure_ascii=False)


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
        message = _redact_str(
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
