"""Provider profiles: the curated templates (what to ask for, what it costs, where it runs, why).

Each ``resources/catalog/providers/<id>.toml`` is validated by :class:`ProviderProfile` when the
catalog is loaded.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from .base import STRICT, PathError
from .vocabulary import (
    CUSTOM_TERM_FIELDS,
    ON_PREM_KINDS,
    REPORTED_GPU_KINDS,
    REPORTED_GPU_VALUES,
    RESERVED_IDS,
    RESIDENCY_ZONES,
    AuthFieldKind,
    MetaFieldKind,
    ProviderKind,
    WorkloadKind,
)

__all__ = [
    "AuthField",
    "Billing",
    "Legal",
    "MetaField",
    "Pricing",
    "ProviderProfile",
    "Region",
]

_ID_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")
_FIELD_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_URL_RE = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")
#: A link a user keeps in a provider's meta (a wiki page may have a query and a fragment).
_LINK_RE = re.compile(r"https?://[^\s/?#]+([/?#]\S*)?")
_LINK_MAX_CHARS = 2000
_PRICE_IN_HINT_RE = re.compile(r"\$(\d+(?:\.\d+)?)")
_ITEM_SEPARATOR_RE = re.compile(r"[,\s]+")


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def _checked_pattern(cls: type, value: str | None) -> str | None:
    """A field's ``pattern``: None, or a regular expression Python compiles."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


class AuthField(BaseModel):
    """One input a provider asks for: a credential of the seed's table or an option."""

    model_config = STRICT

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
    minimum: float | None = Field(None, description="number: the least value accepted")
    minimum_exclusive: bool = Field(
        False, description="number: the value must be MORE than minimum (VRAM 0 is no GPU)"
    )
    maximum: float | None = Field(None, description="number: the largest value accepted")
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

    _check_pattern = field_validator("pattern")(_checked_pattern)

    @field_validator("choices")
    @classmethod
    def _check_choices(cls, value: list[str], info: ValidationInfo) -> list[str]:
        kind = info.data.get("kind")
        if kind in ("choice", "multi_choice") and not value:
            raise ValueError(f"a field of kind {kind!r} needs at least one choice")
        if kind is not None and kind not in ("choice", "multi_choice") and value:
            raise ValueError(
                f"only fields of kind 'choice' / 'multi_choice' have choices, not {kind!r}"
            )
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

    @model_validator(mode="after")
    def _check_kind_settings(self) -> AuthField:
        bounds = self.minimum is not None or self.maximum is not None or self.minimum_exclusive
        if bounds and self.kind != "number":
            raise PathError(
                "minimum", f"only a field of kind 'number' has bounds, not {self.kind!r}"
            )
        if self.minimum_exclusive and self.minimum is None:
            raise PathError("minimum_exclusive", "needs a minimum")
        for name in ("minimum", "maximum"):
            bound = getattr(self, name)
            if bound is not None and not math.isfinite(bound):
                raise PathError(name, "must be a finite number")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise PathError("maximum", "is below the minimum")
        if self.kind in ("number", "multi_choice") and self.pattern is not None:
            raise PathError("pattern", f"a field of kind {self.kind!r} is checked by its kind")
        if self.default is not None and self.kind in ("number", "multi_choice"):
            reason = self.check_value(self.default)
            if reason is not None:
                raise PathError("default", reason)
        return self

    def items(self, value: str) -> list[str]:
        """A ``multi_choice`` value's items (separated by commas or spaces), each once."""
        return list(dict.fromkeys(i for i in _ITEM_SEPARATOR_RE.split(value.strip()) if i))

    def number(self, value: str) -> float | None:
        """A ``number`` value as a float; ``None`` if it is not a finite number."""
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None

    def normalized(self, value: str) -> str:
        """The form a checked value is stored in: a ``multi_choice`` as ``"eu, us"``."""
        if self.kind == "multi_choice":
            return ", ".join(self.items(value))
        return value

    def _number_problem(self, value: str) -> str | None:
        number = self.number(value)
        example = f" (e.g. {self.placeholder})" if self.placeholder else ""
        if number is None:
            return f"{self.label} must be a number{example}"
        if self.minimum is not None:
            if self.minimum_exclusive and number <= self.minimum:
                return f"{self.label} must be more than {self.minimum:g}{example}"
            if number < self.minimum:
                return f"{self.label} must be {self.minimum:g} or more{example}"
        if self.maximum is not None and number > self.maximum:
            return f"{self.label} must be at most {self.maximum:g}{example}"
        return None

    def check_value(self, value: str) -> str | None:
        """Why ``value`` is not acceptable for this field, or ``None`` if it is.

        A choice field with a pattern also takes values beyond its offered choices (an AWS
        region the catalog does not list); one without a pattern takes only its choices. A
        ``number`` must be a finite number within its bounds; a ``multi_choice`` is one or more
        of its choices, separated by commas or spaces. The reason never repeats the value of a
        field that may be secret (only ``number`` and ``multi_choice`` values, never secret,
        are quoted).
        """
        if value == "":
            return f"{self.label} is required" if self.required else None
        if self.kind == "number":
            return self._number_problem(value)
        if self.kind == "multi_choice":
            items = self.items(value)
            if not items:
                return f"{self.label} is required" if self.required else None
            unknown = [i for i in items if i not in self.choices]
            if unknown:
                shown = unknown[0] if len(unknown[0]) <= 20 else unknown[0][:20] + "…"
                return f"{self.label}: {shown!r} is not one of: {', '.join(self.choices)}"
            return None
        if self.kind == "choice" and self.pattern is None and value not in self.choices:
            return f"{self.label} must be one of: {', '.join(self.choices)}"
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return f"{self.label} does not have the expected form" + (
                f" (e.g. {self.placeholder})" if self.placeholder else ""
            )
        return None


class MetaField(BaseModel):
    """One registry metadata value a provider's onboarding notes ask for (a security group, a
    price ceiling, a runbook link): kept, typed, in the provider entry's ``meta`` (plain
    text: never a credential), read by the provider's adapter. Declared once here, the form is
    generated from it and :meth:`parse` is the one check of a typed value.

    Kinds and what ``meta`` holds: ``text`` a string (``pattern`` must fullmatch), ``url`` an
    http(s) address, ``number`` a float and ``integer`` an int (within ``minimum`` /
    ``maximum``), ``boolean`` ``true`` (absent = false), ``list`` a list of strings (typed
    separated by commas or spaces; each item must fullmatch ``pattern``)."""

    model_config = STRICT

    name: str = Field(description="The key in a provider entry's meta")
    label: str = Field(min_length=1, description="What the GUI shows next to the input")
    kind: MetaFieldKind
    pattern: str | None = Field(
        None, description="text: the value, list: each item, must fullmatch it"
    )
    help: str = Field("", description="What it is for and where to find it")
    placeholder: str = ""
    minimum: float | None = Field(None, description="number / integer: the least value")
    maximum: float | None = Field(None, description="number / integer: the largest value")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _FIELD_NAME_RE.fullmatch(value):
            raise ValueError("must be lower-case letters, digits and '_', starting with a letter")
        return value

    _check_pattern = field_validator("pattern")(_checked_pattern)

    @model_validator(mode="after")
    def _check_kind_settings(self) -> MetaField:
        numeric = self.kind in ("number", "integer")
        if (self.minimum is not None or self.maximum is not None) and not numeric:
            raise PathError("minimum", f"only a number or integer has bounds, not {self.kind!r}")
        if self.pattern is not None and self.kind not in ("text", "list"):
            raise PathError("pattern", f"a {self.kind!r} value is checked by its kind")
        for name in ("minimum", "maximum"):
            bound = getattr(self, name)
            if bound is not None and not math.isfinite(bound):
                raise PathError(name, "must be a finite number")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise PathError("maximum", "is below the minimum")
        return self

    def _example(self) -> str:
        return f" (e.g. {self.placeholder})" if self.placeholder else ""

    def parse(self, value: Any) -> Any:
        """``value`` (typed, or the text a user typed) as ``meta`` stores it; ``None`` for an
        empty one (= no value). ``ValueError`` naming the field's label says what is wrong."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if self.kind == "boolean":
            return self._boolean(value)
        if self.kind in ("number", "integer"):
            return self._number(value)
        if self.kind == "list":
            return self._list(value)
        if not isinstance(value, str):
            raise ValueError(f"{self.label} must be text")
        text = value.strip()
        if self.kind == "url":
            if len(text) > _LINK_MAX_CHARS or not _LINK_RE.fullmatch(text):
                raise ValueError(
                    f"{self.label} must be an http:// or https:// address{self._example()}"
                )
        elif self.pattern is not None and not re.fullmatch(self.pattern, text):
            raise ValueError(f"{self.label} does not have the expected form{self._example()}")
        return text

    def _boolean(self, value: Any) -> bool | None:
        if isinstance(value, bool):
            return True if value else None
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "no", "off", "0"):
            return None
        raise ValueError(f"{self.label} must be yes or no")

    def _number(self, value: Any) -> float | int:
        word = "a whole number" if self.kind == "integer" else "a number"
        problem = f"{self.label} must be {word}{self._example()}"
        if isinstance(value, bool):
            raise ValueError(problem)
        try:
            number = float(value.strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ValueError(problem) from None
        if not math.isfinite(number) or (self.kind == "integer" and not number.is_integer()):
            raise ValueError(problem)
        if self.minimum is not None and number < self.minimum:
            raise ValueError(f"{self.label} must be {self.minimum:g} or more")
        if self.maximum is not None and number > self.maximum:
            raise ValueError(f"{self.label} must be at most {self.maximum:g}")
        return int(number) if self.kind == "integer" else number

    def _list(self, value: Any) -> list[str] | None:
        if isinstance(value, str):
            items = [i for i in _ITEM_SEPARATOR_RE.split(value.strip()) if i]
        elif isinstance(value, list | tuple) and all(isinstance(i, str) for i in value):
            items = [i.strip() for i in value if i.strip()]
        else:
            raise ValueError(f"{self.label} must be a list of names")
        items = list(dict.fromkeys(items))
        for item in items:
            if self.pattern is not None and not re.fullmatch(self.pattern, item):
                shown = item if len(item) <= 30 else item[:30] + "…"
                raise ValueError(
                    f"{self.label}: {shown!r} does not have the expected form{self._example()}"
                )
        return items or None

    def text(self, value: Any) -> str:
        """A stored ``meta`` value as the form shows it ('' for none)."""
        if value is None or value is False:
            return ""
        if value is True:
            return "true"
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        if isinstance(value, float) and value.is_integer() and self.kind == "integer":
            return str(int(value))
        return f"{value:g}" if isinstance(value, float) else str(value)


class Region(BaseModel):
    """A provider region and the residency zone its data stays in."""

    model_config = STRICT

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

    model_config = STRICT

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

    model_config = STRICT

    hourly_usd: float | None = Field(
        None, ge=0, description="None = marketplace / stated per provider / unknown"
    )
    hint: str = Field(min_length=1, description="The seed's text, e.g. '~$0.46/hr'")
    marketplace: bool = False
    per_provider: bool = Field(
        False,
        description="Each provider of this template states its own price (the custom "
        "template: config.hourly_usd)",
    )
    prices_as_of: datetime.date

    @model_validator(mode="after")
    def _check_consistent(self) -> Pricing:
        if self.marketplace and self.per_provider:
            raise PathError("per_provider", "a marketplace's prices come from its offers")
        if (self.marketplace or self.per_provider) and self.hourly_usd is not None:
            what = "a marketplace" if self.marketplace else "a template priced per provider"
            raise PathError("hourly_usd", f"{what} has no list price: leave it out")
        if not (self.marketplace or self.per_provider) and self.hourly_usd is None:
            raise PathError("hourly_usd", "required unless marketplace or per_provider = true")
        found = _PRICE_IN_HINT_RE.search(self.hint)
        if found and self.hourly_usd is not None and float(found[1]) != self.hourly_usd:
            raise PathError("hint", f"says ${found[1]} but hourly_usd is {self.hourly_usd}")
        return self


class MachineType(BaseModel):
    """One machine a provider launches (an instance type, VM size, machine type, GPU type or
    GPU class) with the GPU it carries and its on-demand price: where a profile lists
    machines, the machine is the one source of truth for the GPU, VRAM and price the advisor
    uses (issue 21), so the advice prices the machine dispatch will launch."""

    model_config = STRICT

    id: str = Field(min_length=1, description="As the provider's API names it (g5.xlarge)")
    gpu: str = Field(description="A GPU catalog name (gpus.toml): the GPU it carries")
    gpu_count: int = Field(1, ge=1, description="GPUs per machine (VRAM is per GPU)")
    hourly_usd: float = Field(ge=0, description="On-demand $/h of the whole machine")
    region_prices: dict[str, float] = Field(
        default_factory=dict,
        description="Region id -> $/h where it differs from hourly_usd",
    )
    regions: list[str] | None = Field(
        None, description="Region ids it is offered in; None = every region of the profile"
    )
    source: str = Field("", description="Where the price was taken (URL or note)")

    def price(self, region: str | None) -> float:
        """Its $/h in ``region`` (the listed price where the region has none of its own)."""
        if region is not None and region in self.region_prices:
            return self.region_prices[region]
        return self.hourly_usd


class Legal(BaseModel):
    """What a user must be told before their content goes to this provider."""

    model_config = STRICT

    data_leaves_machine: bool
    egress_notice: str = Field(min_length=1)
    dpia_notes: dict[WorkloadKind, str] = Field(default_factory=dict)
    content_restrictions: str = ""


class ProviderProfile(BaseModel):
    """A curated provider template: what to ask for, what it costs, where it runs, why."""

    model_config = STRICT

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
    meta_fields: list[MetaField] = Field(
        default_factory=list,
        description="The registry metadata the onboarding notes ask for (kept in the entry's "
        "meta, never a credential)",
    )
    default_gpu: str = Field(description="A GPU catalog name, or 'local' / 'custom'")
    seed_gpu_label: str = Field(min_length=1, description="The seed table's 'Default GPU' text")
    vram_floor_gb: float = Field(gt=0, description="The seed's 'Min VRAM'")
    pricing: Pricing
    billing: Billing
    machine_option: str | None = Field(
        None,
        description="The option that names the machine launched (instance_type, vm_size, "
        "machine_type, gpu_type_id, gpu_class); with it, `machines` lists every machine the "
        "app knows, and the machine decides the GPU and the price",
    )
    machines: list[MachineType] = Field(default_factory=list)
    regions: list[Region] = Field(
        default_factory=list,
        description="At least one, except for kind custom (its providers state their zones)",
    )
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
                raise PathError(name, "endpoint names are lower-case letters, digits and '_'")
            if url is not None and not _URL_RE.fullmatch(url):
                raise PathError(name, "must be an http(s) URL without query or fragment")
            if url is not None and url.endswith("/"):
                raise PathError(name, "a base URL has no trailing '/' (paths are appended)")
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
                raise PathError(kind, "a policy hint must say something")
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
                    raise PathError(f"[{i}]", f"{kind!r} has no entry in policy_hints")
        return value

    @model_validator(mode="after")
    def _check_profile(self) -> ProviderProfile:
        seen: dict[str, str] = {}
        for group, fields in (("auth_fields", self.auth_fields), ("options", self.options)):
            for i, f in enumerate(fields):
                where = f"{group}[{i}]"
                if f.name in seen:
                    raise PathError(
                        f"{where}.name", f"duplicate field name {f.name!r} (also {seen[f.name]})"
                    )
                seen[f.name] = where
                if group == "options" and f.required:
                    raise PathError(f"{where}.required", "options are never required")
        meta_names: set[str] = set()
        for i, m in enumerate(self.meta_fields):
            if m.name in meta_names:
                raise PathError(f"meta_fields[{i}].name", f"duplicate meta field {m.name!r}")
            meta_names.add(m.name)
        region_ids = [r.id for r in self.regions]
        for i, r in enumerate(self.regions):
            if region_ids.index(r.id) != i:
                raise PathError(f"regions[{i}].id", f"duplicate region id {r.id!r}")
        for group, fields in (("auth_fields", self.auth_fields), ("options", self.options)):
            for i, f in enumerate(fields):
                if f.name == "region" and f.kind == "choice" and set(f.choices) != set(region_ids):
                    raise PathError(
                        f"{group}[{i}].choices", "the region choices must be the profile's regions"
                    )
        if self.default_gpu in REPORTED_GPU_VALUES and self.kind not in REPORTED_GPU_KINDS:
            raise PathError(
                "default_gpu",
                f"{self.default_gpu!r} (the node's own GPU) is only for lan, ssh, local and custom",
            )
        if self.legal.data_leaves_machine == (self.kind in ON_PREM_KINDS):
            raise PathError(
                "legal.data_leaves_machine",
                "must be true for remote and custom providers and false for lan, ssh and local",
            )
        self._check_machines(region_ids)
        if self.kind == "custom":
            self._check_custom()
        elif not self.regions:
            raise PathError("regions", "at least one region is needed")
        for group, fields in (("auth_fields", self.auth_fields), ("options", self.options)):
            for i, f in enumerate(fields):
                if f.name == "zones" and f.kind == "multi_choice":
                    unknown = sorted(set(f.choices) - RESIDENCY_ZONES)
                    if unknown:
                        raise PathError(
                            f"{group}[{i}].choices", f"{unknown[0]!r} is not a residency zone"
                        )
        return self

    def _check_machines(self, region_ids: list[str]) -> None:
        """``machine_option`` names an option; its default, if any, is a listed machine; each
        machine's regions are the profile's (the GPUs are checked against gpus.toml by the
        catalog's loader)."""
        if self.machine_option is None:
            if self.machines:
                raise PathError("machine_option", "machines need the option that names them")
            return
        try:
            option = self.field(self.machine_option)
        except KeyError:
            raise PathError(
                "machine_option", f"{self.machine_option!r} is not one of the profile's fields"
            ) from None
        if not self.machines:
            raise PathError("machines", f"list the machines {self.machine_option} can name")
        ids = [m.id for m in self.machines]
        for i, m in enumerate(self.machines):
            if ids.index(m.id) != i:
                raise PathError(f"machines[{i}].id", f"duplicate machine {m.id!r}")
            for region in [*(m.regions or ()), *m.region_prices]:
                if region not in region_ids:
                    raise PathError(
                        f"machines[{i}]", f"{region!r} is not one of the profile's regions"
                    )
        if option.default is not None and option.default not in ids:
            raise PathError(
                "machine_option",
                f"the default {self.machine_option} {option.default!r} is not in machines",
            )

    def machine(self, machine_id: str | None) -> MachineType | None:
        """The listed machine called ``machine_id`` (None if unlisted or none given)."""
        if machine_id is None:
            return None
        for m in self.machines:
            if m.id == machine_id:
                return m
        return None

    def machines_with(self, gpu: str, region: str | None = None) -> list[MachineType]:
        """The machines carrying ``gpu`` (a catalog name) offered in ``region`` (None: any),
        cheapest there first, then fewest GPUs, then by id."""
        found = [
            m
            for m in self.machines
            if m.gpu == gpu and (region is None or m.regions is None or region in m.regions)
        ]
        return sorted(found, key=lambda m: (m.price(region), m.gpu_count, m.id))

    def machine_for_gpu(self, gpu: str, region: str | None = None) -> MachineType | None:
        """The machine a GPU chosen alone picks: the cheapest listed machine carrying it in
        ``region`` (else anywhere), fewest GPUs first; None if no listed machine carries it.
        (Saving a provider, its form and the advisor all apply this one rule.)"""
        matching = self.machines_with(gpu, region) or self.machines_with(gpu)
        return matching[0] if matching else None

    def _check_custom(self) -> None:
        """A custom profile: its providers state their price, billing, VRAM and zones."""
        if self.regions:
            raise PathError(
                "regions", "a custom profile has no regions: each provider states its zones"
            )
        if not self.pricing.per_provider:
            raise PathError("pricing.per_provider", "must be true for a custom profile")
        if self.default_gpu not in REPORTED_GPU_VALUES:
            raise PathError("default_gpu", "a custom profile's GPU is the provider's own")
        kinds = {f.name: f.kind for f in self.all_fields}
        for name, kind in CUSTOM_TERM_FIELDS.items():
            if kinds.get(name) != kind:
                raise PathError(name, f"a custom profile needs a field {name!r} of kind {kind!r}")

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

    def meta_field(self, name: str) -> MetaField:
        """The metadata field called ``name`` (``KeyError`` if the profile declares none)."""
        for m in self.meta_fields:
            if m.name == name:
                return m
        raise KeyError(name)

    def check_meta(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        """``meta`` with each declared field's value parsed (:meth:`MetaField.parse`; a value
        parsed to nothing is None, which removes the key); other keys are left as they are.
        ``PathError`` (path ``meta.<name>``) names the first field that is wrong."""
        out = dict(meta)
        for m in self.meta_fields:
            if m.name in out and out[m.name] is not None:
                try:
                    out[m.name] = m.parse(out[m.name])
                except ValueError as exc:
                    raise PathError(f"meta.{m.name}", str(exc)) from None
        return out

    @property
    def zones(self) -> tuple[str, ...]:
        """The distinct residency zones of the profile's regions, sorted."""
        return tuple(sorted({r.zone for r in self.regions}))

    @property
    def reports_own_gpu(self) -> bool:
        """True when ``default_gpu`` is not a catalog GPU but whatever the node reports."""
        return self.default_gpu in REPORTED_GPU_VALUES
