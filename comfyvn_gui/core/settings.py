"""Typed application settings in ``config/settings.json``.

Each setting is ONE ``SettingSpec`` in ``_SPECS`` below: its dotted key, type, default, help
text, a phrase saying what it accepts, and a parser that turns a typed value or a command-line
string (``"600"``, ``"null"``, ``"eu,us"``, ``'["eu"]'``) into the typed value or raises
``ValueError``.

The file holds ``{"schema_version": 1, "values": {KEY: VALUE, ...}}`` with only the keys the
user set (so an unset key follows the default of the running version). Writes happen under a
file lock (``config/.settings.lock``) held across read-modify-write, and are atomic. Keys and
top-level members this version does not know (written by a newer one) are kept on write.

A settings file that cannot be read or parsed is never overwritten or silently ignored: every
operation raises ``OperationError`` naming the file and saying to fix or delete it (deleting
it returns every setting to its default). A known key whose stored value is invalid raises
``OperationError`` when it is read, naming the key; ``set`` or ``unset`` of that key repairs it.

Settings never hold secrets.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .catalog import RESIDENCY_ZONES
from .errors import InputError
from .runs import (
    REQUIRED_PLACEHOLDERS,
    SHIPPED_KINDS,
    TEMPLATE_KINDS,
    check_template,
    template_setting,
)

__all__ = [
    "SETTINGS",
    "SettingSpec",
    "copy_value",
    "parse_value",
    "shown_value",
    "spec_for",
    "specs",
]

_NULL_WORDS = frozenset({"null", "none"})


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its dotted ``key``, ``type_name`` (for help and schemas), ``default``,
    ``help`` text, ``accepts`` (what valid values look like, used in error messages) and
    ``parse`` (typed value or command-line string -> typed value; ``ValueError`` if bad)."""

    key: str
    type_name: str
    default: Any
    help: str
    accepts: str = ""
    parse: Callable[[Any], Any] = field(default=lambda v: v, repr=False, compare=False)
    #: The command line's VALUE is a JSON file (or - for standard input) holding the value.
    from_file: bool = False
    #: A short, JSON-able form of a value for tables and the audit log (default: itself).
    summary: Callable[[Any], Any] = field(default=lambda v: v, repr=False, compare=False)


# --------------------------------------------------------------------------- parsers


def _int_between(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        if isinstance(value, str):
            number = int(value.strip(), 10)  # ValueError on "abc", "1.5", ""
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        else:
            raise ValueError("not an integer")
        if not low <= number <= high:
            raise ValueError("out of range")
        return number

    return parse


def _optional_money(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _NULL_WORDS or text == "":
            return None
        number = float(text.removeprefix("$"))
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise ValueError("not a number")
    if not math.isfinite(number) or number < 0:
        raise ValueError("out of range")
    return number


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise ValueError("not one of the choices")
        return value.strip().lower()

    return parse


_ZONE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _zones(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = json.loads(text)  # JSONDecodeError is a ValueError
        elif text.lower() in _NULL_WORDS | {"any"}:
            return []
        else:  # "eu,us"; empty items ("eu,,us", a trailing comma, "") are dropped
            value = [item for item in text.split(",") if item.strip()]
    if not isinstance(value, list | tuple):
        raise ValueError("not a list")
    zones: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError("a zone is not a string")
        zone = item.strip().lower()
        if not _ZONE.match(zone):
            raise ValueError(f"bad zone {item!r}")
        if zone not in RESIDENCY_ZONES:
            raise ValueError(f"unknown zone {item!r}")
        if zone not in zones:
            zones.append(zone)
    return zones


# --------------------------------------------------------------------------- the settings

_SPECS: tuple[SettingSpec, ...] = (
    SettingSpec(
        key="health.interval_s",
        type_name="integer",
        default=300,
        help="How often enabled providers are health-checked, in seconds.",
        accepts="an integer between 15 and 86400 seconds",
        parse=_int_between(15, 86400),
    ),
    SettingSpec(
        key="advisor.budget_usd",
        type_name="number or null",
        default=None,
        help="Default budget of one job in US dollars; providers estimated above it are "
        "skipped. null: no budget.",
        accepts="a number of US dollars >= 0, or null for no budget",
        parse=_optional_money,
    ),
    SettingSpec(
        key="advisor.latency",
        type_name="interactive|batch",
        default="batch",
        help="Default latency preference of jobs: interactive favours a fast start, batch "
        "the lowest cost.",
        accepts="one of interactive, batch",
        parse=_choice("interactive", "batch"),
    ),
    SettingSpec(
        key="advisor.residency",
        type_name="list of zones",
        default=[],
        help="Zones the data of jobs may be processed in (e.g. eu, us); empty: any zone. "
        "Local and on-prem nodes always satisfy it.",
        accepts='a list of residency zones such as eu,us or ["eu"] (known zones: '
        + ", ".join(sorted(RESIDENCY_ZONES))
        + "), or an empty list for any zone",
        parse=_zones,
    ),
)


def _optional_pem_path(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in _NULL_WORDS | {""}):
        return None
    if not isinstance(value, str):
        raise ValueError("expected a file path")
    path = value.strip()
    if not path.startswith(("/", "~")) and not re.match(r"^[A-Za-z]:[\\/]", path):
        raise ValueError("expected an absolute path")
    return path


_SPECS += (
    SettingSpec(
        key="checks.timeout_s",
        type_name="integer",
        default=20,
        help="Deadline of one validation or health check, in seconds, counted from the moment "
        "it is asked for (waiting included).",
        accepts="an integer between 1 and 300 seconds",
        parse=_int_between(1, 300),
    ),
    SettingSpec(
        key="network.ca_bundle",
        type_name="path or null",
        default=None,
        help="A PEM file of extra trusted certificate authorities, for a proxy that inspects "
        "TLS. null: the system's.",
        accepts="an absolute path to a PEM file, or null",
        parse=_optional_pem_path,
    ),
)


def _number_between(low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        number = float(value.strip()) if isinstance(value, str) else float(value)
        if not math.isfinite(number) or not low <= number <= high:
            raise ValueError("out of range")
        return number

    return parse


_SPECS += (
    SettingSpec(
        key="dispatch.max_cost_factor",
        type_name="number",
        default=2.0,
        help="The bill guard: a dispatched job on a priced provider is stopped once it could "
        "cost this many times its estimate (or the budget, if lower).",
        accepts="a number between 1 and 20",
        parse=_number_between(1, 20),
    ),
    SettingSpec(
        key="dispatch.max_runtime_factor",
        type_name="number",
        default=3.0,
        help="The runtime guard: a dispatched job is stopped once it ran this many times its "
        "estimated time (plus start-up; at least 10 minutes), on every provider.",
        accepts="a number between 1 and 50",
        parse=_number_between(1, 50),
    ),
    SettingSpec(
        key="dispatch.boot_timeout_min",
        type_name="number",
        default=20.0,
        help="A machine rented for a job must boot and have ComfyUI answering within this many "
        "minutes, else it is released and the job fails (the boot counts against the job's "
        "ceilings too).",
        accepts="a number of minutes between 0.1 and 120",
        parse=_number_between(0.1, 120),
    ),
    SettingSpec(
        key="prices.max_age_h",
        type_name="number",
        default=24.0,
        help="Live prices and offers fetched from the providers are used for this many hours; "
        "older ones are refreshed in the background, and until then the advisor uses the "
        "catalog's prices (and says so).",
        accepts="a number of hours between 0.1 and 720",
        parse=_number_between(0.1, 720),
    ),
    SettingSpec(
        key="dispatch.runpod_parallel",
        type_name="integer",
        default=1,
        help="How many runs of one job are sent to a RunPod serverless endpoint at once.",
        accepts="a whole number between 1 and 16",
        parse=_int_between(1, 16),
    ),
)


def _workflow(kind: str) -> Callable[[Any], dict[str, Any] | None]:
    def parse(value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if isinstance(value, str):
            text = value.strip()
            if text.lower() in _NULL_WORDS | {""}:
                return None
            value = json.loads(text)  # (JSONDecodeError is a ValueError)
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        # An InputError from here names what is wrong with the graph (not caught below).
        return check_template(kind, value, where=template_setting(kind))

    return parse


def _graph_summary(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
    return {"nodes": len(value), "sha256": digest[:16]}


for _kind in TEMPLATE_KINDS:
    _shipped_note = (
        "null: the template shipped in resources/workflows/"
        if _kind in SHIPPED_KINDS
        else "null: none (these jobs need custom nodes, so no template is shipped)"
    )
    _SPECS += (
        SettingSpec(
            key=template_setting(_kind),
            type_name="ComfyUI API graph or null",
            default=None,
            help=f"The ComfyUI workflow {_kind} jobs run: an API-format graph (ComfyUI's "
            f"'Save (API Format)') holding "
            + ", ".join('"{{' + p + '}}"' for p in REQUIRED_PLACEHOLDERS[_kind])
            + f" (see resources/workflows/README.md); {_shipped_note}.",
            accepts="a JSON file of a ComfyUI API-format graph, or null",
            parse=_workflow(_kind),
            from_file=True,
            summary=_graph_summary,
        ),
    )

SETTINGS: dict[str, SettingSpec] = {spec.key: spec for spec in _SPECS}


def specs() -> list[SettingSpec]:
    """Every setting, sorted by key."""
    return [SETTINGS[key] for key in sorted(SETTINGS)]


def copy_value(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, list | dict) else value


def shown_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def spec_for(key: Any) -> SettingSpec:
    spec = SETTINGS.get(key) if isinstance(key, str) else None
    if spec is None:
        raise InputError(
            f"unknown setting {key!r}; known settings: {', '.join(sorted(SETTINGS))}",
            fields=[str(key)],
        )
    return spec


def parse_value(spec: SettingSpec, value: Any) -> Any:
    try:
        return spec.parse(value)
    except (ValueError, TypeError):
        raise InputError(
            f"{spec.key} must be {spec.accepts}, got {shown_value(value)}", fields=[spec.key]
        ) from None


# --------------------------------------------------------------------------- the store
