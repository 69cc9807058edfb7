"""The rules a provider entry must keep, apart from the transaction that stores it.

Pure (no file, no keyring): the id check and the wording of input errors, normalising a provider
input against its catalog profile and the stored entry (which fields are secrets, endpoints and
URLs, config value limits, what goes to or leaves the keyring), the shape of an export and the
plan of an import. The registry (``store/registry.py``) applies what these functions compute in
one crash-safe transaction; the command line, the API and the desktop form use the same rules,
so every interface says the same thing about the same mistake (docs/architecture.md, "Layers").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from . import json_input
from .addresses import MAX_URL_CHARS, in_clear
from .catalog import Catalog, ProviderProfile
from .errors import ConflictError, InputError, NotFoundError
from .models import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    ID_MAX_LEN,
    ID_RE,
    LOCAL_ID,
    REGISTRY_FORMAT,
    RESERVED_IDS,
    ExportDocument,
    ImportPlan,
    ProviderEntry,
    ProviderEntryWithSecrets,
    ProviderInput,
    RegistryFile,
)
from .redaction import is_secret_key
from .wording import printable

__all__ = [
    "MAX_CONFIG_VALUE_CHARS",
    "MAX_SECRET_CHARS",
    "ProviderChange",
    "SecretKey",
    "all_secret_keys",
    "broken_reason",
    "check_id",
    "check_unique_ids",
    "clears_of",
    "creatable_profile",
    "export_document",
    "fingerprint",
    "import_items",
    "local_entry",
    "new_provider",
    "normalize",
    "parse_input",
    "parse_registration",
    "plan_import",
    "profile_for",
    "pydantic_message",
    "registration",
    "short",
    "take_plaintext_secrets",
    "unique_id",
    "writes_of",
]

MAX_SECRET_CHARS = 65536
MAX_CONFIG_VALUE_CHARS = 4096
_URL_RE = re.compile(r"^https?://[^\s/?#]+[^\s]*$")

SecretKey = tuple[str, str]  # (provider id, field)


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


# --------------------------------------------------------------------------- one provider


@dataclass
class ProviderChange:
    """The outcome of normalising one input against the catalog and the stored entry:
    the entry to store, the secret values to write and the stored secrets to clear."""

    entry: ProviderEntry
    writes: dict[str, str] = field(default_factory=dict)
    clears: set[str] = field(default_factory=set)
    created: bool = False


def parse_input(payload: Any, where: str) -> ProviderInput:
    if not isinstance(payload, Mapping):
        raise InputError(f"{where}: a provider must be a JSON object, got {type(payload).__name__}")
    json_input.check_value(payload, where=where)
    try:
        return ProviderInput.model_validate(dict(payload))
    except ValidationError as exc:
        msg, fields = pydantic_message(exc, where)
        raise InputError(msg, fields=fields) from None


def profile_for(catalog: Catalog, template_id: str) -> ProviderProfile:
    """The profile of a template id, or an InputError that lists the templates."""
    try:
        return catalog.profile(template_id)
    except NotFoundError as exc:
        raise InputError(
            f"unknown template {short(template_id)}; templates: {', '.join(catalog.profiles)}",
            fields=["template_id"],
        ) from exc


def unique_id(template_id: str, taken: Collection[str]) -> str:
    if template_id not in taken and template_id not in RESERVED_IDS:
        return template_id
    n = 2
    while f"{template_id}-{n}" in taken:
        n += 1
    return f"{template_id}-{n}"


def local_entry(catalog: Catalog) -> ProviderEntry:
    """The built-in ``local`` provider, as a registry without it gets it."""
    profile = next(p for p in catalog.profiles.values() if p.protected)
    return ProviderEntry(id=LOCAL_ID, template_id=profile.id, name=profile.name, active=True)


def check_unique_ids(entries: Sequence[ProviderEntry]) -> None:
    """Refuse a list of entries (a hand-edited ``providers.json``) that names an id twice: the
    two would share their keyring secrets, and removing one would delete what the other still
    lists. ValueError naming the id and both positions."""
    first: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if entry.id in first:
            raise ValueError(
                f"the provider id {short(entry.id)} is used twice (providers {first[entry.id] + 1} "
                f"and {i + 1}); give one of them another id or remove it"
            )
        first[entry.id] = i


def broken_reason(
    catalog: Catalog, entry: ProviderEntry, where: str = "providers.json"
) -> str | None:
    """Why this version cannot use a registered provider (its template is unknown here: a
    newer version's, or a hand edit of ``where``), with the fix; None when it can.

    Such an entry stays on disk untouched: it is listed as broken, skipped by the advisor with
    a warning, and a check of it reports ``misconfigured`` naming ``template_id``; the others
    are not affected (a newer version's file must not take this one's providers down).
    """
    if entry.template_id in catalog.profiles:
        return None
    return (
        f"provider {short(entry.id)} uses the template {short(entry.template_id)}, which this "
        f"version of comfyvn-gui does not know (it was made by a newer version, or {where} was "
        f"edited by hand): update comfyvn-gui, or remove it with `comfyvn-gui providers remove "
        f"{entry.id}`; until then it is kept as it is and not used"
    )


def creatable_profile(catalog: Catalog, template_id: str) -> ProviderProfile:
    """The profile a ``create`` instantiates; the built-in one cannot be created again."""
    profile = profile_for(catalog, template_id)
    if profile.protected:
        raise InputError(
            f"{profile.name} is built in and always registered as {LOCAL_ID!r}; "
            "update it with `providers register` instead",
            fields=["template_id"],
        )
    return profile


def new_provider(catalog: Catalog, inp: ProviderInput, taken: Collection[str]) -> ProviderChange:
    """``create``: an explicit id must be free; a missing one is made from the template id."""
    template_id = inp.template_id or ""
    if inp.id is not None:
        check_id(inp.id)
        if inp.id in taken:
            raise ConflictError(
                f"a provider with id {inp.id!r} already exists; choose another id or "
                "update it with `providers register`",
                fields=["id"],
            )
        new_id = inp.id
    else:
        new_id = unique_id(template_id, taken)
    return normalize(catalog, inp.model_copy(update={"id": new_id}), None, "create")


def parse_registration(payload: Any) -> ProviderInput:
    """``register``'s input: a provider input that names its (valid) id."""
    inp = parse_input(payload, "register")
    if inp.id is None:
        raise InputError("register needs the provider's `id`", fields=["id"])
    check_id(inp.id)
    return inp


def registration(
    catalog: Catalog, inp: ProviderInput, existing: ProviderEntry | None
) -> ProviderChange:
    """``register``: update ``existing``, or create it (then ``template_id`` is needed)."""
    if existing is None and inp.template_id is None:
        raise InputError(
            f"provider {inp.id!r} does not exist yet: give its `template_id` "
            f"(one of {', '.join(catalog.profiles)}) to create it",
            fields=["template_id"],
        )
    if existing is None and profile_for(catalog, inp.template_id or "").protected:
        raise InputError(
            f"the {inp.template_id!r} template is built in; only the id {LOCAL_ID!r} can use it",
            fields=["template_id"],
        )
    return normalize(catalog, inp, existing, "register")


def normalize(
    catalog: Catalog, inp: ProviderInput, existing: ProviderEntry | None, where: str
) -> ProviderChange:
    """Merge ``inp`` over ``existing`` and check every field against the profile.

    An input that omits a secret keeps the stored one; a secret set to null is cleared;
    changing any credential (a secret, an auth field, an endpoint, the base URL) clears
    ``active``.
    """
    pid = inp.id or (existing.id if existing else "")
    where = f"{where} {pid!r}"
    template_id = inp.template_id or (existing.template_id if existing else "")
    if existing is not None and inp.template_id and inp.template_id != existing.template_id:
        raise InputError(
            f"{where}: template_id cannot change from {existing.template_id!r} to "
            f"{inp.template_id!r}; remove the provider and create a new one",
            fields=["template_id"],
        )
    profile = profile_for(catalog, template_id)
    secret_names = set(profile.secret_fields)
    fields_by_name = {f.name: f for f in profile.all_fields}
    sent = inp.model_fields_set

    config: dict[str, Any] = dict(existing.config) if existing else {}
    writes: dict[str, str] = {}
    clears: set[str] = set()
    cred_changed = False

    def take_secret(name: str, value: Any, loc: str) -> None:
        nonlocal cred_changed
        if name not in secret_names:
            raise InputError(
                f"{where}: {loc} is not a secret field of {profile.name} (its secret "
                f"fields: {', '.join(sorted(secret_names)) or 'none'})",
                fields=[name],
            )
        cred_changed = True
        if value is None:
            writes.pop(name, None)
            clears.add(name)
            return
        _check_secret(profile, name, value, where, loc)
        clears.discard(name)
        writes[name] = value

    for key, value in (inp.config or {}).items():
        if key in secret_names:
            take_secret(key, value, f"config.{key}")
        elif key == "endpoints":
            new_eps = _check_endpoints(profile, value, config.get("endpoints"), where)
            if new_eps != config.get("endpoints"):
                cred_changed = True
            if new_eps:
                config["endpoints"] = new_eps
            else:
                config.pop("endpoints", None)
        elif key in fields_by_name:
            if value is None:
                if key in config:
                    cred_changed = True
                    config.pop(key)
                continue
            checked = _check_field(profile, key, value, where)
            if config.get(key) != checked:
                cred_changed = True
            config[key] = checked
        else:
            known = sorted(n for n in fields_by_name if n not in secret_names)
            raise InputError(
                f"{where}: config.{key} is not a setting of {profile.name} (known: "
                f"{', '.join([*known, 'endpoints'])}); put notes and other metadata in "
                "`meta`",
                fields=[key],
            )
    for key, value in (inp.secrets or {}).items():
        take_secret(key, value, f"secrets.{key}")

    base_url = existing.base_url if existing else None
    if "base_url" in sent:
        if inp.base_url is not None:
            _check_url(inp.base_url, where, "base_url", profile)
            if profile.primary_endpoint is None:
                raise InputError(
                    f"{where}: {profile.name} has no HTTP endpoint, so base_url does not apply",
                    fields=["base_url"],
                )
        if inp.base_url != base_url:
            cred_changed = True
        base_url = inp.base_url

    gpu = existing.gpu if existing else None
    if "gpu" in sent:
        gpu = None
        if inp.gpu is not None:
            spec = catalog.gpu(inp.gpu)
            if spec is None:
                raise InputError(
                    f"{where}: gpu {short(inp.gpu)} is not in the GPU catalog (known: "
                    f"{', '.join(sorted(catalog.gpus))})",
                    fields=["gpu"],
                )
            gpu = spec.name

    gpu = _machine_and_gpu(
        catalog,
        profile,
        config,
        gpu,
        gpu_sent="gpu" in sent and inp.gpu is not None,
        machine_sent=profile.machine_option is not None
        and (inp.config or {}).get(profile.machine_option) not in (None, ""),
        where=where,
    )

    meta: dict[str, Any] = dict(existing.meta) if existing else {}
    leaked = _secret_looking_keys(catalog, inp.meta or {}, "meta")
    if leaked:
        raise InputError(
            f"{where}: {leaked[0]} looks like a credential; meta is stored in plain text, so "
            "send credentials in `secrets` (they go to the OS keyring) and keep only notes in "
            "meta",
            fields=[leaked[0].rsplit(".", 1)[-1]],
        )
    for key, value in (inp.meta or {}).items():
        if value is not None:
            try:  # (a key the profile declares is checked and typed; others are kept as given)
                value = profile.meta_field(key).parse(value)
            except KeyError:
                pass
            except ValueError as exc:
                raise InputError(f"{where}: {exc}", fields=[f"meta.{key}"]) from None
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value

    name = inp.name if inp.name is not None else (existing.name if existing else profile.name)
    name = name.strip()
    if not name or len(name) > 200:
        raise InputError(f"{where}: name must be 1 to 200 characters", fields=["name"])
    if printable(name) != name or "\n" in name or "\t" in name:
        raise InputError(
            f"{where}: name {printable(short(name))} holds control characters (an escape, a new "
            "line, a text direction override); type the name as plain text",
            fields=["name"],
        )
    enabled = inp.enabled if inp.enabled is not None else (existing.enabled if existing else True)

    stored = set(existing.secrets_set) if existing else set()
    secrets_set = sorted((stored | set(writes)) - clears)
    active = bool(existing and existing.active and not cred_changed)
    try:
        entry = ProviderEntry(
            id=pid,
            template_id=profile.id,
            name=name,
            enabled=enabled,
            active=active,
            base_url=base_url,
            gpu=gpu,
            config=config,
            secrets_set=secrets_set,
            meta=meta,
        )
    except ValidationError as exc:
        msg, fields = pydantic_message(exc, where)
        raise InputError(msg, fields=fields) from None
    try:
        json.dumps(entry.model_dump(mode="json"), allow_nan=False)
    except ValueError as exc:
        raise InputError(f"{where}: a value cannot be stored as JSON ({exc})") from None
    return ProviderChange(entry=entry, writes=writes, clears=clears & stored, created=not existing)


def _machine_and_gpu(
    catalog: Catalog,
    profile: ProviderProfile,
    config: dict[str, Any],
    gpu: str | None,
    *,
    gpu_sent: bool,
    machine_sent: bool,
    where: str,
) -> str | None:
    """Keep a provider's machine and GPU one choice (issue 21): where the profile lists the
    machines its ``machine_option`` names, a listed machine decides the GPU, and a GPU chosen
    alone picks the cheapest listed machine carrying it (in the provider's region) into
    ``config`` — so the advice prices the machine dispatch launches. Both given and not
    matching is refused, naming the machines that do. Returns the GPU to store."""
    option = profile.machine_option
    if option is None or not profile.machines:
        return gpu
    machine = profile.machine(config.get(option)) if config.get(option) else None
    if machine_sent and machine is not None:
        if gpu_sent and gpu is not None and gpu != machine.gpu:
            fits = ", ".join(m.id for m in profile.machines_with(gpu)) or "none is listed"
            raise InputError(
                f"{where}: gpu {gpu} does not match {option} {machine.id}, which has "
                f"{machine.gpu_count if machine.gpu_count > 1 else 'an'} "
                f"{machine.gpu}; leave gpu empty or choose a {option} with an {gpu} ({fits})",
                fields=["gpu", option],
            )
        return machine.gpu
    if gpu_sent and gpu is not None and not machine_sent:
        if machine is not None and machine.gpu == gpu:
            return gpu
        region = config.get("region")
        fit = profile.machine_for_gpu(gpu, region if isinstance(region, str) else None)
        if fit is not None:
            config[option] = fit.id
        elif machine is not None:
            config.pop(option, None)  # (the old machine carries another GPU)
    return gpu


def _secret_looking_keys(catalog: Catalog, value: Any, path: str) -> list[str]:
    """Dotted paths of the keys, at any depth of ``value``, that name a credential (a catalog
    secret field, or a secret-looking name such as ``api_key`` or ``accessToken``). The depth is
    bounded by the JSON rules (:mod:`comfyvn_gui.core.json_input`)."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, Mapping):
            for key, child in item.items():
                here = f"{where}.{key}"
                if isinstance(key, str) and (
                    key in catalog.all_secret_field_names or is_secret_key(key)
                ):
                    found.append(here)
                stack.append((child, here))
        elif isinstance(item, list):
            stack.extend((child, f"{where}.{i}") for i, child in enumerate(item))
    return sorted(found)


def _check_field(profile: ProviderProfile, key: str, value: Any, where: str) -> Any:
    spec = profile.field(key)
    if (
        spec.kind == "multi_choice"
        and isinstance(value, list)
        and all(isinstance(v, str) and v.strip() for v in value)
    ):
        value = ", ".join(v.strip() for v in value)  # ["eu", "us"] as the form's "eu, us"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        wanted = {
            "number": "a number",
            "multi_choice": 'text or a list of text (e.g. "eu, us")',
        }.get(spec.kind, "text")
        raise InputError(
            f"{where}: config.{key} must be {wanted}, got {type(value).__name__}", fields=[key]
        )
    text = str(value).strip()
    if not text or len(text) > MAX_CONFIG_VALUE_CHARS:
        raise InputError(
            f"{where}: config.{key} must be 1 to {MAX_CONFIG_VALUE_CHARS} characters; "
            "send null to clear it",
            fields=[key],
        )
    reason = spec.check_value(text)
    if reason:
        hint = f"; {spec.help}" if spec.help else ""
        raise InputError(f"{where}: config.{key}: {reason}{hint}", fields=[key])
    return spec.normalized(text)


def _check_secret(profile: ProviderProfile, name: str, value: Any, where: str, loc: str) -> None:
    spec = profile.field(name)
    if not isinstance(value, str):
        raise InputError(f"{where}: {loc} must be text", fields=[name])
    if not value.strip():
        raise InputError(
            f"{where}: {loc} is empty; leave it out to keep the stored value, or send "
            "null to clear it",
            fields=[name],
        )
    if len(value) > MAX_SECRET_CHARS:
        raise InputError(
            f"{where}: {loc} is {len(value)} characters; at most {MAX_SECRET_CHARS}",
            fields=[name],
        )
    if spec.kind == "json_file":
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            pos = f"line {exc.lineno} column {exc.colno}"
            raise InputError(
                f"{where}: {loc} is not valid JSON ({pos}); pick the key file you downloaded again",
                fields=[name],
            ) from None
        if not isinstance(parsed, dict):
            raise InputError(f"{where}: {loc} must be a JSON object", fields=[name])
    reason = spec.check_value(value.strip())
    if reason:
        hint = f"; {spec.help}" if spec.help else ""
        raise InputError(f"{where}: {loc}: {reason}{hint}", fields=[name])


def _check_url(value: Any, where: str, loc: str, profile: ProviderProfile | None = None) -> None:
    field_name = loc.split(".")[-1]
    if not isinstance(value, str) or not _URL_RE.match(value):
        raise InputError(
            f"{where}: {loc} {short(value)} must be an http:// or https:// URL",
            fields=[field_name],
        )
    if len(value) > MAX_URL_CHARS:
        raise InputError(
            f"{where}: {loc} is {len(value)} characters long; at most {MAX_URL_CHARS}",
            fields=[field_name],
        )
    if profile is not None and _always_sends_a_credential(profile) and in_clear(value):
        raise InputError(
            f"{where}: {loc} {short(value)} is plain http:// to another machine, and "
            f"{profile.name} sends your credentials to it; use https:// (plain http:// is "
            "accepted only for this machine: localhost, 127.0.0.1, ::1)",
            fields=[field_name],
        )


def _always_sends_a_credential(profile: ProviderProfile) -> bool:
    return any(f.secret and f.required for f in profile.auth_fields)


def _check_endpoints(
    profile: ProviderProfile, value: Any, current: Any, where: str
) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(
            f"{where}: config.endpoints must be an object of endpoint name -> URL",
            fields=["endpoints"],
        )
    merged: dict[str, str] = dict(current or {})
    for name, url in value.items():
        if name not in profile.endpoints:
            raise InputError(
                f"{where}: config.endpoints.{name} is not an endpoint of {profile.name} "
                f"(its endpoints: {', '.join(profile.endpoints) or 'none'})",
                fields=["endpoints"],
            )
        if url is None:
            merged.pop(name, None)
            continue
        _check_url(url, where, f"config.endpoints.{name}", profile)
        merged[name] = url
    return merged


# --------------------------------------------------------------------------- secrets


def writes_of(changes: Iterable[ProviderChange]) -> dict[SecretKey, str]:
    return {(ch.entry.id, f): v for ch in changes for f, v in ch.writes.items()}


def clears_of(changes: Iterable[ProviderChange]) -> set[SecretKey]:
    return {(ch.entry.id, f) for ch in changes for f in ch.clears}


def all_secret_keys(catalog: Catalog, entries: Iterable[ProviderEntry]) -> set[SecretKey]:
    """Every keyring entry these providers may have: each secret field name of the catalog
    (not only those the registry lists) and whatever the entries say they stored."""
    names = catalog.all_secret_field_names
    return {(p.id, f) for p in entries for f in names | set(p.secrets_set)}


def take_plaintext_secrets(catalog: Catalog, reg: RegistryFile) -> dict[SecretKey, str]:
    """Strip secret values out of ``config`` (they belong in the keyring), in place.

    Returns the values found (non-empty text) by (provider, field); their names are added to
    the entries' ``secrets_set``.
    """
    found: dict[SecretKey, str] = {}
    for i, p in enumerate(reg.providers):
        try:
            names = set(catalog.profile(p.template_id).secret_fields)
        except NotFoundError:
            continue
        leaked = {k: v for k, v in p.config.items() if k in names}
        if not leaked:
            continue
        config = {k: v for k, v in p.config.items() if k not in names}
        values = {k: v for k, v in leaked.items() if isinstance(v, str) and v}
        found.update({(p.id, k): v for k, v in values.items()})
        reg.providers[i] = p.model_copy(
            update={"config": config, "secrets_set": sorted(set(p.secrets_set) | set(values))}
        )
    return found


def fingerprint(entry: ProviderEntry, secrets: Mapping[str, str]) -> str:
    """A digest of everything a validation depends on (kept in memory only)."""
    material = json.dumps(
        [entry.template_id, entry.base_url, entry.config, sorted(secrets.items())],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()


# --------------------------------------------------------------------------- export / import


def export_document(
    entries: Sequence[ProviderEntry],
    secrets: Mapping[str, Mapping[str, str]],
    *,
    include_secrets: bool,
    exported_at: datetime,
    app_version: str,
    catalog_version: str,
) -> dict[str, Any]:
    """The export of ``entries`` as JSON-native data; ``secrets`` (id -> field -> value) only
    when ``include_secrets`` (otherwise no ``secrets`` key at all)."""
    doc = ExportDocument(
        exported_at=exported_at,
        app_version=app_version,
        catalog_version=catalog_version,
        include_secrets=include_secrets,
        providers=[
            ProviderEntryWithSecrets(
                **p.model_dump(), secrets=dict(secrets.get(p.id, {})) if include_secrets else {}
            )
            for p in entries
        ],
    )
    data = doc.model_dump(mode="json")
    if not include_secrets:
        for p in data["providers"]:
            p.pop("secrets", None)
    return data


def import_items(data: Any) -> list[Any]:
    """The provider items of an export, of ``{"providers": [...]}`` or of a bare list
    (JSON text is parsed first)."""
    if isinstance(data, str | bytes):
        data = json_input.loads(data, where="import")
    else:
        json_input.check_value(data, where="import")
    if isinstance(data, list):
        return data
    if not isinstance(data, Mapping):
        raise InputError(
            'import: expected an export, {"providers": [...]} or a list of providers, '
            f"got {type(data).__name__}"
        )
    if "format" in data or "version" in data:
        fmt = data.get("format")
        if fmt not in (EXPORT_FORMAT, REGISTRY_FORMAT):
            raise InputError(
                f"import: unknown format {short(fmt)}; expected {EXPORT_FORMAT!r}",
                fields=["format"],
            )
        version = data.get("version", data.get("schema_version"))
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InputError(f"import: unknown export version {short(version)}", fields=["version"])
        if version > EXPORT_VERSION:
            raise InputError(
                f"import: export version {version} was written by a newer comfyvn-gui "
                f"(this one reads version {EXPORT_VERSION}); update comfyvn-gui",
                fields=["version"],
            )
    providers = data.get("providers")
    if not isinstance(providers, list):
        raise InputError(
            "import: `providers` must be a list of provider entries", fields=["providers"]
        )
    return providers


def plan_import(
    catalog: Catalog,
    current: Sequence[ProviderEntry],
    data: Any,
    *,
    replace: bool,
    overwrite: bool,
) -> tuple[ImportPlan, list[ProviderChange]]:
    """Validate an import completely against the ``current`` entries and say what it would do.

    Every item is checked (a broken file is refused whole, skipped items included); the
    changes to apply are returned with the plan. Imported providers are not active until
    validated on this machine.
    """
    items = import_items(data)
    existing = {p.id: p for p in current}
    plan = ImportPlan(replace=replace, overwrite=overwrite)
    seen: dict[str, int] = {}
    changes: list[ProviderChange] = []
    for n, item in enumerate(items, 1):
        where = f"import: provider #{n}"
        if not isinstance(item, Mapping):
            raise InputError(f"{where} must be a JSON object, got {type(item).__name__}")
        raw_id = item.get("id")
        if raw_id is None:
            raise InputError(f"{where} has no `id`", fields=["id"])
        pid = check_id(raw_id, where=f"{where}: id")
        if pid in seen:
            raise InputError(
                f"import: id {pid!r} appears twice (providers #{seen[pid]} and #{n}); "
                "each id may appear once",
                fields=["id"],
            )
        seen[pid] = n
        payload = {k: v for k, v in item.items() if k not in ("active", "secrets_set")}
        inp = parse_input(payload, where)
        if inp.template_id is None:
            raise InputError(f"{where} ({pid!r}) has no `template_id`", fields=["template_id"])
        if pid == LOCAL_ID or profile_for(catalog, inp.template_id).protected:
            # Validate it all the same, so a broken file is refused whole.
            normalize(catalog, inp, existing.get(LOCAL_ID), where)
            plan.skip[pid] = "the local provider is built in and is not imported"
            continue
        old = None if replace else existing.get(pid)
        if old is not None and not overwrite:
            normalize(catalog, inp, None, where)
            plan.skip[pid] = "exists already (import without --no-overwrite to update it)"
            continue
        if old is not None and old.template_id != inp.template_id:
            raise InputError(
                f"{where} ({pid!r}): template_id {inp.template_id!r} differs from the "
                f"registered provider's {old.template_id!r}; remove it first or import "
                "with replace",
                fields=["template_id"],
            )
        change = normalize(catalog, inp, old, where)
        change.entry = change.entry.model_copy(update={"active": False})
        changes.append(change)
        (plan.add if old is None else plan.update).append(pid)
    if replace:
        plan.delete = [p.id for p in current if p.id != LOCAL_ID]
        for p in current:
            if p.id != LOCAL_ID and p.secrets_set:
                plan.delete_credentials[p.id] = list(p.secrets_set)
    return plan, changes
