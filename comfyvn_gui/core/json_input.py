"""JSON from outside (a file, stdin, a request body) read as bad input, never as a crash.

One rule for every path that reads JSON a user or another tool wrote: the command line's
``--config-file`` / ``--request`` / summary files, ``providers.json`` itself, the desktop app's
import dialogs, and (through :func:`check_value`) the HTTP API's bodies, which the web framework
has already parsed. Refused, each as one :class:`InputError` line that says where:

- bytes that are not UTF-8 text, and text that is not JSON;
- nesting deeper than :data:`MAX_DEPTH` (``[[[[...]]]]`` 100,000 deep made Python's parser
  raise RecursionError, an "internal error");
- numbers that are not finite (``NaN``, ``Infinity``, ``1e999``): JSON has no such numbers,
  a strict parser refuses them, and stored they became ``null``. The message names where the
  number is (``workload.audio_seconds``), as a schema error does.

Pure: no file is opened here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import InputError

__all__ = ["MAX_DEPTH", "check_value", "loads"]

#: Arrays and objects inside each other, at most. Real documents (a summary, a registry, a
#: ComfyUI graph) are under 10 deep.
MAX_DEPTH = 64


def loads(data: str | bytes, *, where: str) -> Any:
    """Parse JSON text, refusing what the module docstring lists; ``where`` names the source
    in the message (``config file 'x.json'``, ``providers.json``)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{where} is not UTF-8 text (byte {exc.start} cannot be decoded); give a JSON "
                "file saved as UTF-8"
            ) from None
    try:
        value = json.loads(data)  # NaN / Infinity / 1e999 parse here, and are refused below
    except RecursionError:
        raise InputError(
            f"{where} is nested too deeply (more than {MAX_DEPTH} levels of arrays and objects)"
        ) from None
    except ValueError as exc:  # json.JSONDecodeError is one
        raise InputError(f"{where} is not valid JSON ({exc})") from None
    check_value(value, where=where)
    return value


def check_value(value: Any, *, where: str) -> None:
    """Refuse a parsed value that nests deeper than :data:`MAX_DEPTH` or holds a non-finite
    float, naming where. Iterative (any depth is safe to check) and cheap: only containers are
    stacked, and a path is spelled out only for an error."""
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(value, 0, ())]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            if depth >= MAX_DEPTH:
                raise InputError(
                    f"{where} is nested too deeply (more than {MAX_DEPTH} levels of arrays and "
                    f"objects, at {_dotted(path) or 'the top'})"
                )
            pairs = item.items() if isinstance(item, Mapping) else enumerate(item)
            for key, child in pairs:
                kind = type(child)
                if kind in _SCALARS:
                    continue
                if kind is float:
                    if not math.isfinite(child):
                        _not_finite(child, (*path, key), where)
                elif isinstance(child, Mapping | list | tuple):
                    stack.append((child, depth + 1, (*path, key)))
        elif type(item) is float and not math.isfinite(item):
            _not_finite(item, path, where)


_SCALARS = frozenset({str, int, bool, type(None)})


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(k) for k in path)


def _not_finite(number: float, path: tuple[Any, ...], where: str) -> None:
    shown = "NaN" if math.isnan(number) else ("-Infinity" if number < 0 else "Infinity")
    dotted = _dotted(path)
    raise InputError(
        f"{where}: {dotted or 'value'}: {shown} is not a finite number; JSON numbers must be "
        "finite",
        fields=[dotted] if dotted else [],
    )
