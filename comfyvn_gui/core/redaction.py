"""Redaction: what every log record, audit line, diagnostics file and error passes through.

Masks, with ``***``:

- every value registered with ``register_secret`` (the secrets store registers each secret it
  writes or reads), wherever it appears inside a string;
- the value of every secret-looking key (``api_key``, ``token``, ``password`` ...; also
  ``aws_secret_access_key``, ``clientSecret`` ... by suffix), but not keys such as
  ``secrets_set`` or ``fields_changed`` that only name fields;
- credential-looking text: ``Bearer <token>``, AWS access key ids, PEM private key blocks,
  ``"private_key": "..."`` and other quoted or ``key=value`` pairs with a secret-looking key.

Pure: no file, no handler (the audit log that uses it is ``store/audit.py``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from pathlib import Path
from typing import Any

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "RedactingFilter",
    "is_secret_key",
    "jsonable",
    "redact",
    "redact_text",
    "register_secret",
]

MASK = "***"
MIN_SECRET_LENGTH = 4
_MAX_DEPTH = 64

# --------------------------------------------------------------------------- secret registry

_registry_lock = threading.Lock()
_registered: set[str] = set()
#: The pattern of every registered value; ``None`` while values were added since it was made
#: (it is made again on the next use, not on every registration: an import of 200 secrets
#: compiled a growing pattern 200 times, 2.6 s of a 5 s import).
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
        _registered_pattern = None


def _secret_pattern() -> re.Pattern[str] | None:
    """The pattern matching every registered value (made when values were added since)."""
    global _registered_pattern
    pattern = _registered_pattern
    if pattern is not None or not _registered:
        return pattern
    with _registry_lock:
        if _registered_pattern is None and _registered:
            # Longest first, so a secret that contains another one is masked whole.
            ordered = sorted(_registered, key=lambda s: (-len(s), s))
            _registered_pattern = re.compile("|".join(re.escape(s) for s in ordered))
        return _registered_pattern


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


def redact_text(text: str) -> str:
    pattern = _secret_pattern()
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
        return redact_text(obj)
    if depth > _MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if isinstance(key, str) and is_secret_key(key) and value is not None:
                out[redact_text(key)] = MASK
            else:
                new_key = redact_text(key) if isinstance(key, str) else key
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


def jsonable(obj: Any, depth: int = 0) -> Any:
    """A JSON-safe, redacted form of ``obj``: unknown objects become their redacted ``str``."""
    if obj is None or isinstance(obj, bool | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, str):
        return redact_text(obj)
    if depth > _MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            skey = redact_text(key if isinstance(key, str) else str(key))
            if isinstance(key, str) and is_secret_key(key) and value is not None:
                out[skey] = MASK
            else:
                out[skey] = jsonable(value, depth + 1)
        return out
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
        return [jsonable(v, depth + 1) for v in items]
    if isinstance(obj, bytes | bytearray):
        return redact_text(bytes(obj).decode("utf-8", "replace"))
    if isinstance(obj, BaseException):
        return redact_text(f"{type(obj).__name__}: {obj}")
    if isinstance(obj, Path):
        return redact_text(str(obj))
    try:
        return redact_text(str(obj))
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
        record.msg = redact_text(message)
        record.args = None
    elif isinstance(record.msg, str):
        record.msg = redact_text(record.msg)
    else:  # a non-string message is rendered with str() later: render and redact it now
        record.msg = redact_text(str(record.msg))
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = _EXC_FORMATTER.formatException(record.exc_info)
    record.exc_info = None
    if record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    for key, value in list(record.__dict__.items()):
        if key in _STANDARD_RECORD_ATTRS:
            continue
        if is_secret_key(key) and value is not None:
            record.__dict__[key] = MASK
        else:
            record.__dict__[key] = redact(value)
