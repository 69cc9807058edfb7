"""The catalog of one version (all profiles and GPUs), and where it is found and how it is read.

A broken file gives a :class:`~.base.CatalogError` whose message names the file, the entry and
the field path. Reading the bundled package data is the only file access ``core`` does
(docs/architecture.md, "Layers").
"""

from __future__ import annotations

import datetime
import functools
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, model_validator

from comfyvn_gui.core.errors import NotFoundError
from comfyvn_gui.core.resources import resources_dir

from .base import STRICT, CatalogError, PathError
from .gpus import GpuSpec, gpu_keys, gpu_name_clash
from .profiles import ProviderProfile

__all__ = ["Catalog", "catalog_dir", "load_catalog", "resources_dir"]

_TOML_LINE_RE = re.compile(r"at line (\d+)(?:, column (\d+))?")
_TOML_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_KEY_RE = re.compile(r"""^\s*([A-Za-z0-9_\-."']+?)\s*=""")


class Catalog(BaseModel):
    """All provider profiles and GPUs of one catalog version."""

    model_config = STRICT

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
                raise PathError(f"gpus.{key}.name", f"the key and name differ ({spec.name!r})")
            clash = gpu_name_clash(spec, owner)
            if clash is not None:
                raise PathError(f"gpus.{key}.{clash[0]}", clash[1])
        ref = self.gpus.get(self.reference_gpu)
        if ref is None:
            raise PathError("reference_gpu", f"{self.reference_gpu!r} is not in the GPU catalog")
        if ref.relative_throughput != 1.0:
            raise PathError("reference_gpu", "the reference GPU's relative_throughput must be 1.0")
        for key, profile in self.profiles.items():
            if key != profile.id:
                raise PathError(f"profiles.{key}.id", f"the key and id differ ({profile.id!r})")
            for i, m in enumerate(profile.machines):
                if m.gpu not in self.gpus:
                    raise PathError(
                        f"profiles.{key}.machines[{i}].gpu", f"{m.gpu!r} is not in the GPU catalog"
                    )
            if not profile.reports_own_gpu and profile.default_gpu not in self.gpus:
                raise PathError(
                    f"profiles.{key}.default_gpu",
                    f"{profile.default_gpu!r} is not in the GPU catalog",
                )
        return self

    def model_post_init(self, context: Any, /) -> None:
        index: dict[str, str] = {}
        for spec in self.gpus.values():
            for label in (spec.name, *spec.aliases):
                for k in gpu_keys(label):
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
        for key in gpu_keys(name):
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
        if isinstance(cause, PathError):
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
        clash = gpu_name_clash(spec, owner)
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
                    f"(known: {', '.join(gpus)}; lan/ssh/local/custom may say 'local' or 'custom')",
                )
            ],
        )
    unknown = [(i, m.gpu) for i, m in enumerate(profile.machines) if m.gpu not in gpus]
    if unknown:
        _raise(
            rel,
            label,
            file_id,
            [
                (f"machines[{i}].gpu", f"{g!r} is not in gpus.toml (add it there first)")
                for i, g in unknown
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
