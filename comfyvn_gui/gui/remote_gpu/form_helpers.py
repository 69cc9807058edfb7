"""The credential form's pure helpers (no Qt; docs/architecture.md, "GUI"): the checks of the
form's own inputs, the masked summary of a service-account key, the legal notes and the
keyboard mnemonics.

The id check is the registry's own (:func:`comfyvn_gui.core.provider_rules.check_id`), so the
form says what the command line and the API say about the same id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from comfyvn_gui.core.catalog import AuthField, MetaField, ProviderProfile
from comfyvn_gui.core.errors import InputError
from comfyvn_gui.core.provider_rules import check_id

__all__ = [
    "NAME_MAX_LEN",
    "Validator",
    "check_id_text",
    "check_name",
    "check_url",
    "in_list",
    "legal_text",
    "meta_spec",
    "meta_validator",
    "mnemonic",
    "service_account_problem",
    "service_account_summary",
    "spec",
]

#: Why a non-empty input is not acceptable, or None.
Validator = Callable[[str], str | None]

NAME_MAX_LEN = 200
_URL_PREFIXES = ("http://", "https://")


def spec(name: str, label: str, help_text: str, **more: Any) -> AuthField:
    """An AuthField for the form's own inputs (name, id, base URL, GPU, endpoints)."""
    return AuthField(name=name, label=label, kind=more.pop("kind", "text"), help=help_text, **more)


def meta_spec(field: MetaField) -> AuthField:
    """The input spec of a registry metadata field (never required, never secret)."""
    return spec(field.name, field.label, field.help, required=False, placeholder=field.placeholder)


def meta_validator(field: MetaField) -> Validator:
    """The profile's own check of a typed metadata value (:meth:`MetaField.parse`)."""

    def problem(text: str) -> str | None:
        try:
            field.parse(text)
        except ValueError as exc:
            return str(exc)
        return None

    return problem


def mnemonic(text: str, used: set[str]) -> str:
    """``text`` with '&' before its first letter or digit not in ``used`` ('&' escaped)."""
    for i, char in enumerate(text):
        if char.isalnum() and char.lower() not in used:
            used.add(char.lower())
            return text[:i].replace("&", "&&") + "&" + text[i:].replace("&", "&&")
    return text.replace("&", "&&")


def check_url(text: str) -> str | None:
    if not text.startswith(_URL_PREFIXES) or len(text.split("://", 1)[1]) == 0:
        return "must start with http:// or https://"
    if any(c.isspace() for c in text):
        return "must not contain spaces"
    return None


def check_name(text: str) -> str | None:
    return f"Name must be at most {NAME_MAX_LEN} characters" if len(text) > NAME_MAX_LEN else None


def check_id_text(text: str) -> str | None:
    """The registry's reason for refusing ``text`` as a new provider's id, word for word."""
    try:
        check_id(text, where="id")
    except InputError as exc:
        return exc.message
    return None


def in_list(names: Sequence[str]) -> Validator:
    known = set(names)
    return lambda text: (
        None if text in known else "not a GPU of the catalog: pick one from the list"
    )


def service_account_problem(text: str) -> str | None:
    """Why ``text`` is not a Google service-account key (never quoting the key)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON (line {exc.lineno}, column {exc.colno})"
    if not isinstance(data, dict):
        return "must be a JSON object (the content of the key file)"
    missing = [
        k for k in ("type", "client_email", "private_key") if not isinstance(data.get(k), str)
    ]
    if missing:
        return f"not a service-account key: it has no {', '.join(missing)}"
    if data["type"] != "service_account":
        kind = data["type"][:30]
        return f'"type" is {kind!r}, not "service_account": pick a service account\'s key'
    return None


def service_account_summary(content: str) -> str:
    """The masked one-line description of a held key ('' when none)."""
    text = content.strip()
    if not text or service_account_problem(text):
        return "unrecognised key content" if text else ""
    data = json.loads(text)
    kid = data.get("private_key_id")
    key = f" (key {kid[:8]}…)" if isinstance(kid, str) and kid else ""
    return f"service account {data['client_email'][:120]}{key}"


def legal_text(profile: ProviderProfile) -> str:
    legal = profile.legal
    lines = [f"Data: {legal.egress_notice}"]
    if legal.content_restrictions:
        lines.append(f"Content: {legal.content_restrictions}")
    for kind, note in legal.dpia_notes.items():
        lines.append(f"DPIA ({kind.replace('_', ' ')}): {note}")
    regions = "; ".join(f"{r.name} ({r.id}, zone {r.zone})" for r in profile.regions)
    lines.append(f"Regions: {regions or 'the residency zones you state for this provider'}")
    lines.append(f"Policy: {profile.policy_highlight}")
    if profile.docs_url:
        lines.append(f"Documentation: {profile.docs_url}")
    return "\n\n".join(lines)
