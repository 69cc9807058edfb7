"""The curated provider catalog: provider profiles and the GPU catalog, loaded from data files.

The catalog is DATA, not code. It lives under ``resources/catalog/``::

    catalog.toml              version, reference_gpu, prices_as_of (the default for every profile)
    gpus.toml                 [[gpu]] tables: name, vram_gb, relative_throughput, aliases, vendor
    providers/<id>.toml       one provider profile per file; the file name is the profile id

Everything is validated by the pydantic models below when it is loaded. A broken file gives a
:class:`CatalogError` whose message names the file, the entry and the field path, e.g.
``runpod.toml: provider 'runpod': auth_fields[0].kind: Input should be 'text', 'secret', ...``.

TOML has no null, so two spellings stand for ``None`` in the data files:

- an endpoint whose URL is ``""`` has no fixed default base URL (``None``): the SDK's own (AWS),
  the service-account key's own ``token_uri`` (Google), or the user's own server (CoreWeave's
  cluster API server, a LAN node's Docker / ComfyUI endpoint);
- a profile without ``pricing.hourly_usd`` has no list price (a marketplace: ``marketplace =
  true``). ``pricing.prices_as_of`` may be left out; it then comes from ``catalog.toml``.

``default_gpu`` is a GPU catalog name, except for the nodes whose GPU is whatever the machine
has (:data:`REPORTED_GPU_VALUES`): ``"local"`` (this machine, a LAN node) and ``"custom"`` (an
on-prem SSH node). For those the advisor uses the VRAM the node's health check (or the local
NVML snapshot) reported, and the profile's ``vram_floor_gb`` only while nothing was reported.

Only the standard library and pydantic are used here: ``core`` stays pure (no Qt, network, SDK).
"""

from __future__ import annotations

import datetime
import functools
import importlib.resources
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import NotFoundError, OperationError

__all__ = [
    "AUTH_FIELD_KINDS",
    "PROVIDER_KINDS",
    "REPORTED_GPU_VALUES",
    "RESERVED_IDS",
    "RESIDENCY_ZONES",
    "WORKLOAD_KINDS",
    "AuthField",
    "AuthFieldKind",
    "Billing",
    "Catalog",
    "CatalogError",
    "GpuSpec",
    "Legal",
    "Pricing",
    "ProviderKind",
    "ProviderProfile",
    "Region",
    "WorkloadKind",
    "catalog_dir",
    "load_catalog",
    "resources_dir",
]

AuthFieldKind = Literal["text", "secret", "path", "json_file", "choice"]
ProviderKind = Literal["cloud", "marketplace", "kubernetes", "lan", "ssh", "local"]
WorkloadKind = Literal[
    "sprite_generation",
    "cg_remix",
    "cg_super_res",
    "cg_bake",
    "voice_synthesis",
    "translation",
    "comfyui_workflow",
]

AUTH_FIELD_KINDS: tuple[AuthFieldKind, ...] = get_args(AuthFieldKind)
PROVIDER_KINDS: tuple[ProviderKind, ...] = get_args(ProviderKind)
WORKLOAD_KINDS: tuple[WorkloadKind, ...] = get_args(WorkloadKind)

#: Residency zones a region may belong to. ``uk`` is separate from ``eu`` (UK GDPR is not the
#: EU's); ``on_prem`` and ``local`` are the user's own machines and satisfy any residency rule.
RESIDENCY_ZONES: frozenset[str] = frozenset(
    {"us", "ca", "sa", "eu", "uk", "me", "af", "asia", "oceania", "on_prem", "local"}
)

#: ``default_gpu`` values that are not GPU catalog names: the GPU is whatever the node reports.
#: Allowed only for profiles of kind lan, ssh and local.
REPORTED_GPU_VALUES: frozenset[str] = frozenset({"local", "custom"})
_REPORTED_GPU_KINDS: frozenset[str] = frozenset({"lan", "ssh", "local"})

#: Ids that name an API route and so can be neither a template nor a provider id (DESIGN.md).
RESERVED_IDS: frozenset[str] = frozenset(
    {"templates", "health", "export", "import", "create", "register", "remove"}
)

_ID_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")
_FIELD_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_URL_RE = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")
_PRICE_IN_HINT_RE = re.compile(r"\$(\d+(?:\.\d+)?)")
_TOML_LINE_RE = re.compile(r"at line (\d+)(?:, column (\d+))?")
_TOML_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_KEY_RE = re.compile(r"""^\s*([A-Za-z0-9_\-."']+?)\s*=""")

_STRICT = ConfigDict(frozen=True, extra="forbid")


class CatalogError(OperationError):
    """A catalog data file is missing or broken.

    ``file`` is the file's name relative to the catalog folder, ``entry`` the provider id or GPU
    name the problem is in (``None`` where it is the file itself), ``fields`` the field paths.
    """

    code = "catalog_invalid"

    def __init__(
        self,
        message: str,
        *,
        file: str,
        entry: str | None = None,
        fields: list[str] | None = None,
    ) -> None:
        super().__init__(message, fields=fields)
        self.file = file
        self.entry = entry


class _PathError(ValueError):
    """A validator's complaint about a field below the one it validates (``path`` is relative)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class AuthField(BaseModel):
    """One input a provider asks for: a credential of the seed's table or an option."""

    model_config = _STRICT

    name: str = Field(description="The key in a provider entry's config / secrets")
    label: str = Field(min_length=1, description="What the GUI shows next to the input")
    kind: AuthFieldKind
    required: bool = True
    secret: bool = Field(
        False,
        validate_default=True,
        description="Stored in the OS keyring, never in providers.json",
    )
    pattern: str | None = Field(None, description="A regular expression the value must fullmatch")
    help: str = Field("", description="Where to find the value, in a desktop user's words")
    choices: list[str] = Field(default_factory=list, validate_default=True)
    default: str | None = None
    placeholder: str = ""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _FIELD_NAME_RE.fullmatch(value):
            raise ValueError("must be lower-case letters, digits and '_', starting with a letter")
        return value

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, value: bool, info: ValidationInfo) -> bool:
        kind = info.data.get("kind")
        if kind == "secret" and not value:
            raise ValueError("must be true for a field of kind 'secret'")
        if value and kind is not None and kind not in ("secret", "json_file"):
            raise ValueError(f"only kinds 'secret' and 'json_file' can be secret, not {kind!r}")
        return value

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("choices")
    @classmethod
    def _check_choices(cls, value: list[str], info: ValidationInfo) -> list[str]:
        kind = info.data.get("kind")
        if kind == "choice" and not value:
            raise ValueError("a field of kind 'choice' needs at least one choice")
        if kind is not None and kind != "choice" and value:
            raise ValueError(f"only a field of kind 'choice' has choices, not {kind!r}")
        if len(set(value)) != len(value):
            raise ValueError("choices must be distinct")
        return value

    @field_validator("default")
    @classmethod
    def _check_default(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if info.data.get("secret"):
            raise ValueError("a secret field never has a default")
        pattern = info.data.get("pattern")
        choices = info.data.get("choices") or []
        if pattern is not None and not re.fullmatch(pattern, value):
            raise ValueError("the default does not match the field's pattern")
        if info.data.get("kind") == "choice" and pattern is None and value not in choices:
            raise ValueError("the default is not one of the choices")
        return value

    def check_value(self, value: str) -> str | None:
        """Why ``value`` is not acceptable for this field, or ``None`` if it is.

        A choice field with a pattern also takes values beyond its offered choices (an AWS
        region the catalog does not list); one without a pattern takes only its choices. The
        reason never repeats the value (it may be a secret).
        """
        if value == "":
            return f"{self.label} is required" if self.required else None
        if self.kind == "choice" and self.pattern is None and value not in self.choices:
            return f"{self.label} must be one of: {', '.join(self.choices)}"
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return f"{self.label} does not have the expected form" + (
                f" (e.g. {self.placeholder})" if self.placeholder else ""
            )
        return None


class Region(BaseModel):
    """A provider region and the residency zone its data stays in."""

    model_config = _STRICT

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    zone: str = Field(description="Residency zone: " + " | ".join(sorted(RESIDENCY_ZONES)))

    @field_validator("zone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        if value not in RESIDENCY_ZONES:
            raise ValueError(f"unknown zone {value!r}; known: {', '.join(sorted(RESIDENCY_ZONES))}")
        return value


class Billing(BaseModel):
    """How a provider bills time: in increments, with a minimum charge per start."""

    model_config = _STRICT

    increment_minutes: float = Field(gt=0, description="1/60 = per second, 1 = per minute, 60")
    minimum_minutes: float = Field(ge=0, description="Least billed per start (0 = none)")
    assumed: bool = Field(description="True where the provider publishes nothing (seed's rule)")
    source: str = Field("", description="URL or note of where the rule is published")

    def billed_minutes(self, minutes: float) -> float:
        """``max(minimum, ceil(minutes / increment) * increment)``; 0 for no use at all."""
        if minutes <= 0:
            return 0.0
        # a hair above a whole step (float noise, e.g. 1/60 increments) is not another step
        steps = math.ceil(minutes / self.increment_minutes - 1e-9)
        return max(self.minimum_minutes, steps * self.increment_minutes)


class Pricing(BaseModel):
    """The indicative price of the profile's default GPU."""

    model_config = _STRICT

    hourly_usd: float | None = Field(None, ge=0, description="None = marketplace / unknown")
    hint: str = Field(min_length=1, description="The seed's text, e.g. '~$0.46/hr'")
    marketplace: bool = False
    prices_as_of: datetime.date

    @model_validator(mode="after")
    def _check_consistent(self) -> Pricing:
        if self.marketplace and self.hourly_usd is not None:
            raise _PathError("hourly_usd", "a marketplace has no list price: leave it out")
        if not self.marketplace and self.hourly_usd is None:
            raise _PathError("hourly_usd", "required unless marketplace = true")
        found = _PRICE_IN_HINT_RE.search(self.hint)
        if found and self.hourly_usd is not None and float(found[1]) != self.hourly_usd:
            raise _PathError("hint", f"says ${found[1]} but hourly_usd is {self.hourly_usd}")
        return self


class Legal(BaseModel):
    """What a user must be told before their content goes to this provider."""

    model_config = _STRICT

    data_leaves_machine: bool
    egress_notice: str = Field(min_length=1)
    dpia_notes: dict[WorkloadKind, str] = Field(default_factory=dict)
    content_restrictions: str = ""


class ProviderProfile(BaseModel):
    """A curated provider template: what to ask for, what it costs, where it runs, why."""

    model_config = _STRICT

    id: str
    name: str = Field(min_length=1)
    kind: ProviderKind
    endpoints: dict[str, str | None] = Field(
        description="Endpoint name -> default base URL (None = no fixed default)"
    )
    primary_endpoint: str | None = Field(
        None,
        validate_default=True,
        description="The endpoint a provider's base_url overrides; None only without endpoints",
    )
    auth_fields: list[AuthField] = Field(description="The seed's auth fields, in its order")
    options: list[AuthField] = Field(default_factory=list)
    default_gpu: str = Field(description="A GPU catalog name, or 'local' / 'custom'")
    seed_gpu_label: str = Field(min_length=1, description="The seed table's 'Default GPU' text")
    vram_floor_gb: float = Field(gt=0, description="The seed's 'Min VRAM'")
    pricing: Pricing
    billing: Billing
    regions: list[Region] = Field(min_length=1)
    policy_highlight: str = Field(min_length=1, description="The seed's text, verbatim")
    policy_hints: dict[WorkloadKind, str]
    preferred_workloads: list[WorkloadKind] = Field(default_factory=list)
    onboarding_notes: str = Field(min_length=1)
    legal: Legal
    startup_minutes: float = Field(0, ge=0, description="Typical time until work can start")
    startup_note: str = Field("", description="Where the start-up figure comes from")
    protected: bool = Field(False, description="Cannot be removed (the local provider)")
    persistent_cache: bool = Field(
        False,
        description="Keeps an importer cache (models, cached ComfyUI graphs) between jobs; the "
        "advisor favours it for workloads with cached_graphs",
    )
    docs_url: str = ""

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID_RE.fullmatch(value):
            raise ValueError("must be a slug: lower-case letters, digits and '-'")
        if value in RESERVED_IDS:
            raise ValueError(f"{value!r} names an API route and is reserved")
        return value

    @field_validator("endpoints", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: (None if v == "" else v) for k, v in value.items()}
        return value

    @field_validator("endpoints")
    @classmethod
    def _check_endpoints(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        for name, url in value.items():
            if not _FIELD_NAME_RE.fullmatch(name):
                raise _PathError(name, "endpoint names are lower-case letters, digits and '_'")
            if url is not None and not _URL_RE.fullmatch(url):
                raise _PathError(name, "must be an http(s) URL without query or fragment")
            if url is not None and url.endswith("/"):
                raise _PathError(name, "a base URL has no trailing '/' (paths are appended)")
        return value

    @field_validator("primary_endpoint")
    @classmethod
    def _check_primary(cls, value: str | None, info: ValidationInfo) -> str | None:
        endpoints = info.data.get("endpoints")
        if endpoints is None:
            return value
        if value is None and endpoints:
            raise ValueError("required when the profile has endpoints")
        if value is not None and value not in endpoints:
            raise ValueError(f"{value!r} is not one of the endpoints ({', '.join(endpoints)})")
        return value

    @field_validator("policy_hints")
    @classmethod
    def _check_hints(cls, value: dict[WorkloadKind, str]) -> dict[WorkloadKind, str]:
        for kind, hint in value.items():
            if not hint.strip():
                raise _PathError(kind, "a policy hint must say something")
        return value

    @field_validator("preferred_workloads")
    @classmethod
    def _check_preferred(
        cls, value: list[WorkloadKind], info: ValidationInfo
    ) -> list[WorkloadKind]:
        if len(set(value)) != len(value):
            raise ValueError("workload kinds are listed twice")
        hints = info.data.get("policy_hints")
        if hints is not None:
            for i, kind in enumerate(value):
                if kind not in hints:
                    raise _PathError(f"[{i}]", f"{kind!r} has no entry in policy_hints")
        return value

    @model_validator(mode="after")
    def _check_profile(self) -> ProviderProfile:
        seen: dict[str, str] = {}
        for group, fields in (("auth_fields", self.auth_fields), ("options", self.options)):
            for i, f in enumerate(fields):
                where = f"{group}[{i}]"
                if f.name in seen:
                    raise _PathError(
                        f"{where}.name", f"duplicate field name {f.name!r} (also {seen[f.name]})"
                    )
                seen[f.name] = where
                if group == "options" and f.required:
                    raise _PathError(f"{where}.required", "options are never required")
        region_ids = [r.id for r in self.regions]
        for i, r in enumerate(self.regions):
            if region_ids.index(r.id) != i:
                raise _PathError(f"regions[{i}].id", f"duplicate region id {r.id!r}")
        for group, fields in (("auth_fields", self.auth_fields), ("options", self.options)):
            for i, f in enumerate(fields):
                if f.name == "region" and f.kind == "choice" and set(f.choices) != set(region_ids):
                    raise _PathError(
                        f"{group}[{i}].choices", "the region choices must be the profile's regions"
                    )
        if self.default_gpu in REPORTED_GPU_VALUES and self.kind not in _REPORTED_GPU_KINDS:
            raise _PathError(
                "default_gpu",
                f"{self.default_gpu!r} (the node's own GPU) is only for lan, ssh and local",
            )
        if self.legal.data_leaves_machine == (self.kind in _REPORTED_GPU_KINDS):
            raise _PathError(
                "legal.data_leaves_machine",
                "must be true for remote providers and false for lan, ssh and local",
            )
        return self

    @property
    def all_fields(self) -> tuple[AuthField, ...]:
        """The seed's auth fields, then the options."""
        return (*self.auth_fields, *self.options)

    @property
    def secret_fields(self) -> tuple[str, ...]:
        """Names of the fields (auth fields and options) whose values go to the keyring."""
        return tuple(f.name for f in self.all_fields if f.secret)

    def field(self, name: str) -> AuthField:
        """The auth field or option called ``name`` (``KeyError`` if the profile has none)."""
        for f in self.all_fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def zones(self) -> tuple[str, ...]:
        """The distinct residency zones of the profile's regions, sorted."""
        return tuple(sorted({r.zone for r in self.regions}))

    @property
    def reports_own_gpu(self) -> bool:
        """True when ``default_gpu`` is not a catalog GPU but whatever the node reports."""
        return self.default_gpu in REPORTED_GPU_VALUES


class GpuSpec(BaseModel):
    """A GPU model: its memory and its speed relative to the reference GPU (the A10G)."""

    model_config = _STRICT

    name: str = Field(min_length=1)
    vram_gb: float = Field(gt=0, description="As the vendor states it (an RTX 4090 is 24)")
    relative_throughput: float = Field(gt=0, description="Reference GPU = 1.0; approximate")
    aliases: list[str] = Field(default_factory=list)
    vendor: str = "NVIDIA"


def _gpu_key(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


_GPU_PREFIXES = ("nvidia geforce ", "nvidia ", "geforce ", "tesla ")


def _gpu_keys(name: str) -> tuple[str, ...]:
    """The lookup keys of a GPU name: itself, and without a vendor / brand prefix (NVML names)."""
    key = _gpu_key(name)
    keys = [key]
    for prefix in _GPU_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            keys.append(key[len(prefix) :])
            break
    return tuple(keys)


def _gpu_name_clash(spec: GpuSpec, owner: dict[str, str]) -> tuple[str, str] | None:
    """(field path, reason) if a name or alias of ``spec`` is another GPU's; else record them."""
    for j, label in enumerate((spec.name, *spec.aliases)):
        for k in _gpu_keys(label):
            other = owner.get(k)
            if other is not None and other != spec.name:
                field = "name" if j == 0 else f"aliases[{j - 1}]"
                return field, f"{label!r} is already a name or alias of {other!r}"
    for label in (spec.name, *spec.aliases):
        for k in _gpu_keys(label):
            owner[k] = spec.name
    return None


class Catalog(BaseModel):
    """All provider profiles and GPUs of one catalog version."""

    model_config = _STRICT

    version: str = Field(min_length=1)
    reference_gpu: str
    prices_as_of: datetime.date | None = None
    profiles: dict[str, ProviderProfile]
    gpus: dict[str, GpuSpec]

    _gpu_index: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_catalog(self) -> Catalog:
        owner: dict[str, str] = {}
        for key, spec in self.gpus.items():
            if key != spec.name:
                raise _PathError(f"gpus.{key}.name", f"the key and name differ ({spec.name!r})")
            clash = _gpu_name_clash(spec, owner)
            if clash is not None:
                raise _PathError(f"gpus.{key}.{clash[0]}", clash[1])
        ref = self.gpus.get(self.reference_gpu)
        if ref is None:
            raise _PathError("reference_gpu", f"{self.reference_gpu!r} is not in the GPU catalog")
        if ref.relative_throughput != 1.0:
            raise _PathError("reference_gpu", "the reference GPU's relative_throughput must be 1.0")
        for key, profile in self.profiles.items():
            if key != profile.id:
                raise _PathError(f"profiles.{key}.id", f"the key and id differ ({profile.id!r})")
            if not profile.reports_own_gpu and profile.default_gpu not in self.gpus:
                raise _PathError(
                    f"profiles.{key}.default_gpu",
                    f"{profile.default_gpu!r} is not in the GPU catalog",
                )
        return self

    def model_post_init(self, context: Any, /) -> None:
        index: dict[str, str] = {}
        for spec in self.gpus.values():
            for label in (spec.name, *spec.aliases):
                for k in _gpu_keys(label):
                    index.setdefault(k, spec.name)
        self._gpu_index = index

    def profile(self, template_id: str) -> ProviderProfile:
        """The profile ``template_id``; :class:`NotFoundError` naming the known ids if none."""
        try:
            return self.profiles[template_id]
        except KeyError:
            raise NotFoundError(
                f"no provider template {template_id!r}; known: {', '.join(self.profiles)}",
                fields=["template_id"],
            ) from None

    def gpu(self, name: str) -> GpuSpec | None:
        """The GPU called ``name`` or with that alias, case-insensitively; ``None`` if unknown.

        Vendor prefixes as NVML reports them ("NVIDIA GeForce RTX 4090", "Tesla T4") are
        ignored, so a local snapshot's names resolve too.
        """
        for key in _gpu_keys(name):
            found = self._gpu_index.get(key)
            if found is not None:
                return self.gpus[found]
        return None

    @property
    def reference(self) -> GpuSpec:
        return self.gpus[self.reference_gpu]

    @property
    def all_secret_field_names(self) -> frozenset[str]:
        """Every field name that is secret in some profile (for redaction everywhere)."""
        return frozenset(name for p in self.profiles.values() for name in p.secret_fields)


# --------------------------------------------------------------------------------------------
# Locating and loading
# --------------------------------------------------------------------------------------------


def resources_dir() -> Path:
    """The application's resources folder (catalog data, icons, samples, style).

    In an installed wheel it is ``comfyvn_gui/resources`` (pyproject force-includes the
    top-level ``resources/`` there); in a checkout or editable install, ``<repo>/resources``.
    """
    packaged = importlib.resources.files("comfyvn_gui") / "resources"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "resources"


def catalog_dir() -> Path:
    """The default catalog folder: ``resources_dir() / "catalog"``."""
    return resources_dir() / "catalog"


def _loc_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        else:
            out += f".{part}" if out else str(part)
    return out


def _join(base: str, sub: str) -> str:
    if not base:
        return sub
    if not sub:
        return base
    return base + sub if sub.startswith("[") else f"{base}.{sub}"


def _describe(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """(field path, reason) for each error of ``exc``, with paths below ``prefix``."""
    out: list[tuple[str, str]] = []
    for err in exc.errors():
        path = _loc_path(err["loc"])
        reason = err["msg"]
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, _PathError):
            path = _join(path, cause.path)
            reason = cause.reason
        elif reason.startswith("Value error, "):
            reason = reason[len("Value error, ") :]
        out.append((_join(prefix, path), reason))
    return out


def _raise(
    file: str, entry_label: str | None, entry: str | None, problems: list[tuple[str, str]]
) -> NoReturn:
    head = f"{file}: {entry_label}: " if entry_label else f"{file}: "
    lines = [f"{head}{path}: {reason}" if path else f"{head}{reason}" for path, reason in problems]
    raise CatalogError(
        "\n".join(lines), file=file, entry=entry, fields=[p for p, _ in problems if p]
    )


def _toml_location(text: str, message: str) -> str:
    """The TOML key path of the line a decode error points at, e.g. ``auth_fields[0].kind``."""
    found = _TOML_LINE_RE.search(message)
    if not found:
        return ""
    lineno = int(found[1])
    lines = text.splitlines()
    table = ""
    counts: dict[str, int] = {}
    for line in lines[: lineno - 1]:
        header = _TOML_HEADER_RE.match(line)
        if header:
            name = header[2].strip().replace('"', "")
            if header[1] == "[[":
                counts[name] = counts.get(name, -1) + 1
                table = f"{name}[{counts[name]}]"
            else:
                table = name
    key = ""
    if 0 < lineno <= len(lines):
        m = _TOML_KEY_RE.match(lines[lineno - 1])
        if m:
            key = m[1].replace('"', "")
    return _join(table, key) if key else table


def _read_toml(
    path: Path, root: Path, entry_label: str | None, entry: str | None
) -> dict[str, Any]:
    rel = path.relative_to(root).as_posix()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        _raise(rel, entry_label, entry, [("", "file not found")])
    except (OSError, UnicodeDecodeError) as exc:
        _raise(rel, entry_label, entry, [("", f"cannot be read: {exc}")])
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = _toml_location(text, str(exc))
        _raise(rel, entry_label, entry, [(where, f"TOML syntax error: {exc}")])


def _load_gpus(root: Path) -> dict[str, GpuSpec]:
    path = root / "gpus.toml"
    data = _read_toml(path, root, None, None)
    unknown = sorted(set(data) - {"gpu"})
    if unknown:
        _raise("gpus.toml", None, None, [(unknown[0], "unknown table; GPUs are [[gpu]] tables")])
    entries = data.get("gpu", [])
    if not isinstance(entries, list) or not entries:
        _raise("gpus.toml", None, None, [("gpu", "no [[gpu]] tables")])
    gpus: dict[str, GpuSpec] = {}
    owner: dict[str, str] = {}
    for i, raw in enumerate(entries):
        name = raw.get("name") if isinstance(raw, dict) else None
        label = f"gpu {name!r}" if isinstance(name, str) else f"gpu[{i}]"
        try:
            spec = GpuSpec.model_validate(raw)
        except ValidationError as exc:
            _raise("gpus.toml", label, name if isinstance(name, str) else None, _describe(exc))
        clash = _gpu_name_clash(spec, owner)
        if clash is not None:
            _raise("gpus.toml", label, spec.name, [clash])
        gpus[spec.name] = spec
    return gpus


def _load_profile(
    path: Path, root: Path, gpus: Mapping[str, GpuSpec], prices_as_of: datetime.date | None
) -> ProviderProfile:
    file_id = path.stem
    rel = path.relative_to(root).as_posix()
    label = f"provider {file_id!r}"
    data = _read_toml(path, root, label, file_id)
    declared = data.get("id")
    if declared != file_id:
        reason = (
            "missing (it must be the file name without .toml)"
            if declared is None
            else f"{declared!r} differs from the file name; rename one of them"
        )
        _raise(rel, label, file_id, [("id", reason)])
    pricing = data.get("pricing")
    if isinstance(pricing, dict) and "prices_as_of" not in pricing and prices_as_of is not None:
        data["pricing"] = {**pricing, "prices_as_of": prices_as_of}
    try:
        profile = ProviderProfile.model_validate(data)
    except ValidationError as exc:
        _raise(rel, label, file_id, _describe(exc))
    if not profile.reports_own_gpu and profile.default_gpu not in gpus:
        _raise(
            rel,
            label,
            file_id,
            [
                (
                    "default_gpu",
                    f"{profile.default_gpu!r} is not in gpus.toml "
                    f"(known: {', '.join(gpus)}; lan/ssh/local may say 'local' or 'custom')",
                )
            ],
        )
    return profile


def _load(root: Path) -> Catalog:
    if not root.is_dir():
        raise CatalogError(f"catalog folder not found: {root}", file=str(root))
    meta = _read_toml(root / "catalog.toml", root, None, None)
    gpus = _load_gpus(root)
    reference = meta.get("reference_gpu")
    ref = gpus.get(reference) if isinstance(reference, str) else None
    if ref is None:
        _raise(
            "catalog.toml", None, None, [("reference_gpu", f"{reference!r} is not in gpus.toml")]
        )
    elif ref.relative_throughput != 1.0:
        _raise(
            "gpus.toml",
            f"gpu {ref.name!r}",
            ref.name,
            [("relative_throughput", "the reference GPU's throughput must be 1.0")],
        )
    as_of = meta.get("prices_as_of")
    default_as_of = as_of if isinstance(as_of, datetime.date) else None
    provider_dir = root / "providers"
    files = sorted(provider_dir.glob("*.toml")) if provider_dir.is_dir() else []
    if not files:
        _raise("providers", None, None, [("", "no provider profiles (providers/<id>.toml)")])
    profiles = {p.id: p for p in (_load_profile(f, root, gpus, default_as_of) for f in files)}
    try:
        return Catalog.model_validate({**meta, "profiles": profiles, "gpus": gpus})
    except ValidationError as exc:
        _raise("catalog.toml", None, None, _describe(exc))


@functools.lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    return _load(catalog_dir())


def load_catalog(path: Path | None = None) -> Catalog:
    """Load and validate the catalog in folder ``path`` (default: the bundled one, cached).

    Raises :class:`CatalogError` naming the file, entry and field of the first broken file.
    """
    if path is None:
        return _default_catalog()
    return _load(Path(path))
