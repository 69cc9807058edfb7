"""Pydantic's validation errors as a user reads them: one :class:`InputError`, each problem with
its dotted field path (``workload.items: Input should be greater than or equal to 1``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from .errors import InputError

__all__ = ["input_error", "input_error_from"]

_MAX_PROBLEMS = 3


def input_error(exc: ValidationError, prefix: str = "") -> InputError:
    """A pydantic error as a user reads it: each problem with its dotted field path."""
    return input_error_from(exc.errors(), prefix)


def input_error_from(errors: Iterable[Mapping[str, Any]], prefix: str = "") -> InputError:
    """:func:`input_error` for pydantic's error dicts (as a web framework passes them on)."""
    problems: list[str] = []
    fields: list[str] = []
    for err in errors:
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        msg = (
            "unknown field (check its spelling)" if err["type"] == "extra_forbidden" else err["msg"]
        )
        if err["type"] == "missing":
            msg = "required field is missing"
        msg = msg.removeprefix("Value error, ")
        if loc not in fields:
            fields.append(loc)
            problems.append(f"{loc or 'request'}: {msg}")
    shown = "; ".join(problems[:_MAX_PROBLEMS])
    more = len(problems) - _MAX_PROBLEMS
    if more > 0:
        shown += f" (and {more} more)"
    return InputError(shown, fields=fields)
