"""The import summary as a document: the pydantic models of what ComfyVN's importer writes.

``"format": "comfyvn.import-summary"``, ``"version": 1`` (docs/import-summary.md): the project
(name, tags), its assets (each with its size and licence) and the queued units of work (tasks,
workflows, translations). :mod:`.reader` turns a validated summary into job drafts.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from comfyvn_gui.core.catalog import WorkloadKind
from comfyvn_gui.core.workload import (
    MAX_AUDIO_SECONDS,
    MAX_BUDGET_USD,
    MAX_BYTES,
    MAX_CHARACTERS,
    MAX_GPU_HOURS,
    MAX_ITEMS,
    MAX_PIXELS_SIDE,
    MAX_VRAM_GB,
    AssetType,
    Latency,
    Workload,
)

__all__ = [
    "FORMAT",
    "MAX_PROMPTS",
    "MAX_PROMPT_CHARS",
    "MAX_UNITS",
    "PROMPT_KINDS",
    "SUPPORTED_VERSIONS",
    "Asset",
    "AssetSelector",
    "ImportSummary",
    "JobDraft",
    "ProjectInfo",
    "SummaryDefaults",
    "Task",
    "TranslationJob",
    "WorkflowJob",
]

#: The value of ``format`` that marks a document as an import summary.
FORMAT = "comfyvn.import-summary"
#: The versions of the format this reader understands.
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)

#: At most this many units of each kind (tasks, workflows, translations) in one summary.
MAX_UNITS = 1000
#: A task's prompt (and each of its prompts) is at most this many characters, after trimming.
MAX_PROMPT_CHARS = 2000
#: A sprite_generation task lists at most this many prompts (one per item).
MAX_PROMPTS = 10_000
#: The kinds whose workflow template takes a task's ``prompt``; only the first takes ``prompts``
#: (one per item) and ``vary_seed``.
PROMPT_KINDS: tuple[WorkloadKind, ...] = ("sprite_generation", "cg_remix", "cg_super_res")

_LANGUAGE_RE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"


# --------------------------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------------------------


def _check_asset_id(value: str) -> str:
    if value != value.strip():
        raise ValueError(f"{value!r} starts or ends with white space: write the path as it is")
    if value.startswith("/") or re.match(r"[A-Za-z]:", value):
        raise ValueError(
            f"{value!r} is an absolute path: write it relative to the project folder, "
            "e.g. 'cg/bg_school_night.png'"
        )
    if "\\" in value:
        raise ValueError(
            f"{value!r} uses backslashes: write the path with forward slashes, "
            "e.g. 'cg/bg_school_night.png'"
        )
    if ".." in value.split("/"):
        raise ValueError(f"{value!r} points outside the project folder ('..')")
    return value


def _check_language(value: str) -> str:
    if not _LANGUAGE_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a language tag: use a BCP 47 tag such as en, ja, fr, pt-BR, zh-Hans"
        )
    return value


def _trim(value: Any) -> Any:
    """A string without its surrounding white space (anything else as given)."""
    return value.strip() if isinstance(value, str) else value


def _check_prompt(value: str) -> str:
    if not value:
        raise ValueError(
            "is blank: write the prompt's text, or leave prompt / prompts out to use the "
            "workflow's default prompt"
        )
    if len(value) > MAX_PROMPT_CHARS:
        raise ValueError(
            f"is {len(value):,} characters long: a prompt is at most {MAX_PROMPT_CHARS:,} "
            "characters, so shorten it"
        )
    return value


def _check_prompts(value: list[str]) -> list[str]:
    if not value:
        raise ValueError(
            "lists no prompts: give one prompt per item, or leave prompts out to use the "
            "default prompt"
        )
    if len(value) > MAX_PROMPTS:
        raise ValueError(
            f"lists {len(value):,} prompts: at most {MAX_PROMPTS:,} are allowed; split the task "
            "into several, or use prompt (one prompt for every item) instead"
        )
    return value


def _check_name(value: str) -> str:
    if not value.strip():
        raise ValueError("is blank: give a name a user recognises")
    return value.strip()


AssetId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description="The asset's path relative to the project folder, with forward slashes "
        "(e.g. 'cg/bg_school_night.png'); for an entry that stands for several files "
        "(count > 1), the folder (e.g. 'voice/hana/'). Unique within the summary.",
    ),
    AfterValidator(_check_asset_id),
]
AssetRef = Annotated[
    str,
    Field(min_length=1, max_length=255, description="The id of an entry of the summary's assets"),
]
LanguageTag = Annotated[
    str,
    Field(
        min_length=2,
        max_length=35,
        description="A BCP 47 language tag: en, ja, fr, pt-BR, zh-Hans ...",
        json_schema_extra={"pattern": _LANGUAGE_PATTERN},
    ),
    AfterValidator(_check_language),
]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_check_name)]
Tag = Annotated[str, Field(min_length=1, max_length=100, description="A tag: 'key:value'")]
Prompt = Annotated[
    str,
    BeforeValidator(_trim),
    Field(
        description=f"A text prompt (1-{MAX_PROMPT_CHARS} characters, not blank; surrounding "
        "white space is removed first)",
        json_schema_extra={"minLength": 1, "maxLength": MAX_PROMPT_CHARS},
    ),
    AfterValidator(_check_prompt),
]
Prompts = Annotated[
    list[Prompt],
    Field(json_schema_extra={"minItems": 1, "maxItems": MAX_PROMPTS}),
    AfterValidator(_check_prompts),
]

_BOTH_OR_NEITHER: dict[str, Any] = {"dependentRequired": {"width": ["height"], "height": ["width"]}}


# --------------------------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------------------------


class ProjectInfo(BaseModel):
    """The ComfyVN project the importer scanned."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="The project's name as users know it (1-200 characters)")
    id: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$",
        description="The project's slug (lower-case letters, digits, '.', '_', '-')",
    )
    tags: list[Tag] = Field(
        default_factory=list,
        max_length=200,
        description="The project's tags, 'key:value'. 'residency:<zone>' (several allowed: "
        "their union) restricts where the project's data may be processed to those zones "
        "(us, ca, sa, eu, uk, me, af, asia, oceania); 'residency:any' allows any zone; without "
        "a residency tag the advisor's residency setting applies. Other tags ('client:acme', "
        "'nsfw:false') are kept and ignored.",
    )


class SummaryDefaults(BaseModel):
    """Settings applied to every job of the summary unless the unit gives its own."""

    model_config = ConfigDict(extra="forbid")

    latency: Latency | None = Field(
        None, description="interactive | batch; null: the advisor's latency setting"
    )
    budget_usd: float | None = Field(
        None,
        ge=0,
        le=MAX_BUDGET_USD,
        description="Budget per job (USD); null: the advisor's budget setting",
    )


class Asset(BaseModel):
    """One file of the project (or several like files summarised as one entry)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_BOTH_OR_NEITHER)

    id: AssetId
    type: AssetType = Field(
        description="sprite (character art) | cg (backgrounds, event CGs) | audio (voice "
        "lines, music) | text (script, UI strings)"
    )
    count: int = Field(
        1,
        ge=1,
        le=MAX_ITEMS,
        description="How many files the entry stands for (a folder of voice lines summarised "
        "as one entry); audio_seconds, characters and bytes are then totals over them",
    )
    width: int | None = Field(
        None,
        ge=1,
        le=MAX_PIXELS_SIDE,
        description="Pixels, per file (sprites and CGs); give height too",
    )
    height: int | None = Field(
        None,
        ge=1,
        le=MAX_PIXELS_SIDE,
        description="Pixels, per file (sprites and CGs); give width too",
    )
    audio_seconds: float | None = Field(
        None, ge=0, le=MAX_AUDIO_SECONDS, description="Seconds of audio (audio assets)"
    )
    characters: int | None = Field(
        None,
        ge=0,
        le=MAX_CHARACTERS,
        description="Characters of text: a script's length, a voice line's transcript",
    )
    bytes: int | None = Field(None, ge=0, le=MAX_BYTES, description="Size on disk (bytes)")
    license: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="The asset's licence: an SPDX id (CC-BY-4.0, CC0-1.0, MIT ...) or free "
        "text ('proprietary', 'All rights reserved'); null: unknown",
    )
    open_source: bool | None = Field(
        None,
        description="Whether the asset is open source; null: decided from license (an open "
        "SPDX licence of docs/import-summary.md is open; anything else, or no licence, is not)",
    )


class AssetSelector(BaseModel):
    """Selects every asset of one type, optionally under a path prefix."""

    model_config = ConfigDict(extra="forbid")

    type: AssetType = Field(description="The asset type to select: sprite | cg | audio | text")
    prefix: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="Only assets whose id starts with this (e.g. 'cg/' or 'voice/ch01/')",
    )


class Task(BaseModel):
    """A processing step the importer queued over some of the project's assets: one job."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_BOTH_OR_NEITHER)

    kind: WorkloadKind = Field(
        description="sprite_generation | cg_remix | cg_super_res | cg_bake | voice_synthesis | "
        "translation | comfyui_workflow"
    )
    title: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="A short name for the job; default: made from the kind and the assets",
    )
    assets: list[AssetRef] | None = Field(
        None,
        max_length=MAX_ITEMS,
        description="The ids of the assets it works on (all of one type); or use select",
    )
    select: AssetSelector | None = Field(
        None, description="Works on every asset of a type (under a prefix); instead of assets"
    )
    asset_type: AssetType | None = Field(
        None,
        description="For a task that makes new assets without inputs; default: the type of its "
        "assets, else the kind's usual type",
    )
    items: int | None = Field(
        None,
        ge=1,
        le=MAX_ITEMS,
        description="How many items the job makes or processes; default: the number of its "
        "assets (counting count). Required when it works on no assets (12 new sprites)",
    )
    width: int | None = Field(
        None,
        ge=1,
        le=MAX_PIXELS_SIDE,
        description="Pixels per item; default: the largest image asset's",
    )
    height: int | None = Field(
        None,
        ge=1,
        le=MAX_PIXELS_SIDE,
        description="Pixels per item; default: the largest image asset's",
    )
    latency: Latency | None = Field(None, description="interactive | batch; default: defaults")
    budget_usd: float | None = Field(
        None, ge=0, le=MAX_BUDGET_USD, description="Budget for this job (USD); default: defaults"
    )
    vram_gb: float | None = Field(
        None, gt=0, le=MAX_VRAM_GB, description="Overrides the estimated VRAM need (GB)"
    )
    gpu_hours: float | None = Field(
        None, ge=0, le=MAX_GPU_HOURS, description="Overrides the estimate: hours on the A10G"
    )
    prompt: Prompt | None = Field(
        None,
        description=f"The text prompt the kind's workflow runs with (1-{MAX_PROMPT_CHARS} "
        "characters, not blank); cg_remix, cg_super_res and sprite_generation only (for "
        "sprites, every item's prompt); default: the workflow's own prompt",
    )
    prompts: Prompts | None = Field(
        None,
        description=f"One prompt per item, in order, exactly as many as the task's items (at "
        f"most {MAX_PROMPTS:,}); sprite_generation only, instead of prompt; default: the "
        "default prompt and the item's number",
    )
    vary_seed: bool | None = Field(
        None,
        description="Whether each item gets its own seed (the base seed + the item's index); "
        "sprite_generation only; null or absent: true",
    )


class WorkflowJob(BaseModel):
    """A ComfyUI workflow the importer queued: one job of kind comfyui_workflow."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_BOTH_OR_NEITHER)

    name: Name = Field(description="The workflow's name (1-200 characters)")
    workflow: dict[str, Any] = Field(
        description="The ComfyUI graph in API format ({node_id: {class_type, inputs}}, as "
        "'Save (API Format)' writes it; a /prompt body {\"prompt\": graph} is accepted too)"
    )
    items: int = Field(
        1, ge=1, le=MAX_ITEMS, description="How many times the graph runs (images it makes)"
    )
    width: int | None = Field(
        None,
        ge=1,
        le=MAX_PIXELS_SIDE,
        description="Output pixels per item; default: read from the graph",
    )
    height: int | None = Field(
        None,
        ge=1,
        le=MAX_PIXELS_SIDE,
        description="Output pixels per item; default: read from the graph",
    )
    cached_graphs: bool = Field(
        False, description="The workflow relies on cached ComfyUI graphs / models"
    )
    asset_type: AssetType = Field("cg", description="What it makes: sprite | cg | audio | text")
    assets: list[AssetRef] | None = Field(
        None,
        max_length=MAX_ITEMS,
        description="Ids of the assets it reads (reference images, voices): their licences "
        "are flagged and their sizes summed",
    )
    latency: Latency | None = Field(None, description="interactive | batch; default: defaults")
    budget_usd: float | None = Field(
        None, ge=0, le=MAX_BUDGET_USD, description="Budget for this job (USD); default: defaults"
    )
    vram_gb: float | None = Field(
        None, gt=0, le=MAX_VRAM_GB, description="Overrides the estimated VRAM need (GB)"
    )
    gpu_hours: float | None = Field(
        None, ge=0, le=MAX_GPU_HOURS, description="Overrides the estimate: hours on the A10G"
    )
    vary_seed: bool | None = Field(
        None,
        description="Whether each run gets its own seeds (every seed input of the graph + the "
        "run's index, so items different images); false: every run uses the graph's seeds as "
        "given; null or absent: true",
    )


class TranslationJob(BaseModel):
    """Text the importer queued for machine translation: one job of kind translation."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="What is translated, e.g. 'Script' or 'UI strings'")
    source_language: LanguageTag = Field(description="The language of the text (BCP 47)")
    target_languages: list[LanguageTag] = Field(
        min_length=1,
        max_length=50,
        description="The languages to translate into (BCP 47), at least one",
    )
    characters: int | None = Field(
        None,
        ge=0,
        le=MAX_CHARACTERS,
        description="Characters of source text; default: the sum of its assets' characters "
        "(required when no assets are given). The job translates them into each target.",
    )
    lines: int | None = Field(
        None, ge=1, le=MAX_ITEMS, description="Lines (strings) of source text"
    )
    assets: list[AssetRef] | None = Field(
        None, max_length=MAX_ITEMS, description="Ids of the text (or audio) assets translated"
    )
    latency: Latency | None = Field(None, description="interactive | batch; default: defaults")
    budget_usd: float | None = Field(
        None, ge=0, le=MAX_BUDGET_USD, description="Budget for this job (USD); default: defaults"
    )
    vram_gb: float | None = Field(
        None, gt=0, le=MAX_VRAM_GB, description="Overrides the estimated VRAM need (GB)"
    )
    gpu_hours: float | None = Field(
        None, ge=0, le=MAX_GPU_HOURS, description="Overrides the estimate: hours on the A10G"
    )


class ImportSummary(BaseModel):
    """What ComfyVN's importer found in a project and the work it queued."""

    model_config = ConfigDict(extra="forbid", title="ComfyVN import summary")

    format: Literal["comfyvn.import-summary"] = Field(
        description="Always 'comfyvn.import-summary': marks the document"
    )
    version: Literal[1] = Field(description="The format's version; this reader reads 1")
    generator: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="The program that wrote it, e.g. 'comfyvn-importer 0.9.2' (informational)",
    )
    project: ProjectInfo = Field(description="The project scanned; its tags set residency")
    defaults: SummaryDefaults = Field(
        default_factory=SummaryDefaults,
        description="Latency and budget for every job that does not give its own",
    )
    assets: list[Asset] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="The project's files that the queued work reads, each with its size and "
        "licence",
    )
    tasks: list[Task] = Field(
        default_factory=list,
        max_length=MAX_UNITS,
        description="Processing steps over the assets (super-res, remix, voice ...): one job each",
    )
    workflows: list[WorkflowJob] = Field(
        default_factory=list,
        max_length=MAX_UNITS,
        description="Queued ComfyUI workflows (inline API-format graphs): one job each",
    )
    translations: list[TranslationJob] = Field(
        default_factory=list,
        max_length=MAX_UNITS,
        description="Queued machine translations: one job each",
    )


class JobDraft(BaseModel):
    """One unit of the summary as a workload the advisor can be asked about."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(description="'<project name> — <what the job does>'")
    workload: Workload = Field(description="The job, its title set to the draft's")
    source: dict[str, Any] = Field(
        description="Where it came from: {project, unit ('tasks[0]', 'workflows[1]', "
        "'translations[0]'), assets (at most 50 ids, for display), asset_count, inputs (every "
        "asset the unit reads: {id, count when over 1}; absent when none)}, and task: {prompt, "
        "prompts, vary_seed} with only those the unit gives (no task when it gives none); the "
        "service adds project_dir, the folder the ids are relative to"
    )
