"""The rules a provider entry must keep, apart from the transaction that stores it.

Pure (no file, no keyring): the id check and the wording of input errors, used by the registry
(``store/registry.py``), the command line, the API and the desktop form alike, so every
interface says the same thing about the same mistake.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from .errors import InputError
from .models import ID_MAX_LEN, ID_RE, RESERVED_IDS

__all__ = ["check_id", "pydantic_message", "short"]


def short(value: object, limit: int = 40) -> str:
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def check_id(raw: object, *, where: str = "id") -> str:
    """Return ``raw`` if it is a safe, unreserved provider id, else a specific InputError."""
    if not isinstance(raw, str):
        raise InputError(f"{where} must be a string, got {type(raw).__name__}", fields=["id"])
    if len(raw) > ID_MAX_LEN:
        raise InputError(
            f"{where} {short(raw)} is {len(raw)} characters long; ids have at most "
            f"{ID_MAX_LEN} characters",
            fields=["id"],
        )
    if not ID_RE.match(raw):
        suggestion = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")[:ID_MAX_LEN]
        hint = f" (for example {suggestion!r})" if suggestion and ID_RE.match(suggestion) else ""
        raise InputError(
            f"{where} {short(raw)} is not a valid id: use lower-case letters, digits and "
            f"inner hyphens only{hint}",
            fields=["id"],
        )
    if raw in RESERVED_IDS:
        raise InputError(
            f"{where} {raw!r} is reserved (it names an API route); choose another id",
            fields=["id"],
        )
    return raw


def pydantic_message(exc: ValidationError, where: str) -> tuple[str, list[str]]:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    fields = [str(err["loc"][-1])] if err["loc"] else []
    return f"{where}: {loc or 'value'}: {msg}", fields
