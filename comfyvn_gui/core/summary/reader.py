"""Reading an import summary: the whole document checked, every unit turned into a job draft.

:func:`parse_summary` returns a :class:`~.models.JobDraft` for every unit (a
:class:`~comfyvn_gui.core.workload.Workload` with its figures summed from the assets, its
residency from the project's ``residency:<zone>`` tags, its licensing flags from the assets'
licences), or raises one :class:`InputError` naming the dotted path of each problem.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from comfyvn_gui.core import json_input, wording
from comfyvn_gui.core.errors import InputError
from comfyvn_gui.core.input_errors import input_error
from comfyvn_gui.core.workload import ASSET_TYPES_OF_KIND, KIND_TITLES, AssetType, Latency, Workload

from .models import (
    FORMAT,
    MAX_PROMPTS,
    PROMPT_KINDS,
    SUPPORTED_VERSIONS,
    Asset,
    ImportSummary,
    JobDraft,
    Task,
    TranslationJob,
    WorkflowJob,
)

__all__ = ["OPEN_LICENSES", "is_open_source", "parse_summary"]


#: Licences (SPDX ids, compared case-insensitively) that make an asset open source when its
#: ``open_source`` flag is not given. Anything else — "proprietary", "All rights reserved",
#: a non-commercial licence, or no licence at all — must be reviewed before uploading.
OPEN_LICENSES: frozenset[str] = frozenset(
    name.lower()
    for name in (
        "CC0-1.0",
        "CC-BY-4.0",
        "CC-BY-SA-4.0",
        "CC-BY-3.0",
        "MIT",
        "Apache-2.0",
        "BSD-3-Clause",
        "OFL-1.1",
        "GPL-3.0-only",
        "GPL-3.0-or-later",
        "Unlicense",
        "public-domain",
    )
)

#: At most this many asset ids are listed in a draft's ``source``.
MAX_SOURCE_ASSETS = 50
#: At most this many non-open-source assets are named in a job's licence notes.
MAX_NOTED_ASSETS = 5
#: At most this many problems are spelled out in one error message (all are in ``fields``).
MAX_SHOWN_PROBLEMS = 3
_MAX_NOTES = 2000  # Licenses.notes max_length

_ZONE_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_RESIDENCY_KEY = "residency"
_ANY_ZONE = "any"


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def is_open_source(asset: Asset) -> bool:
    """``open_source`` when given; else whether ``license`` is one of :data:`OPEN_LICENSES`."""
    if asset.open_source is not None:
        return asset.open_source
    return asset.license is not None and asset.license.strip().lower() in OPEN_LICENSES


def parse_summary(data: Any) -> tuple[ImportSummary, list[JobDraft]]:
    """The summary in ``data`` (parsed JSON) and a draft job for each of its units.

    Raises :class:`InputError` naming each problem's dotted path (``tasks.2.assets.1``) in the
    message and in ``fields``; it never returns part of a summary.
    """
    json_input.check_value(data, where="the summary")
    _check_header(data)
    try:
        summary = ImportSummary.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc) from None
    if not (summary.tasks or summary.workflows or summary.translations):
        raise InputError(
            "the summary has no work in it: tasks, workflows and translations are all empty; "
            "queue at least one job in the importer and write the summary again",
            fields=["tasks", "workflows", "translations"],
        )
    return summary, _Reader(summary).drafts()


_JSON_TYPES: dict[type, str] = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _check_header(data: Any) -> None:
    """``format`` and ``version`` first: a wrong document gets one clear error, not fifty."""
    if not isinstance(data, dict):
        got = _JSON_TYPES.get(type(data), type(data).__name__)
        raise InputError(
            f"an import summary is a JSON object that starts with "
            f'"format": "{FORMAT}" (got {got}); open the file the importer wrote',
            fields=["format"],
        )
    if "format" not in data:
        raise InputError(
            f'format: required field is missing: an import summary has "format": "{FORMAT}"; '
            "is this file the summary ComfyVN's importer wrote?",
            fields=["format"],
        )
    if data["format"] != FORMAT:
        raise InputError(
            f"format: {data['format']!r} is not {FORMAT!r}: this file is not a ComfyVN import "
            "summary (advice requests go to 'comfyvn-gui advise --request')",
            fields=["format"],
        )
    supported = " or ".join(str(v) for v in SUPPORTED_VERSIONS)
    if "version" not in data:
        raise InputError(
            f"version: required field is missing: give the format's version ({supported})",
            fields=["version"],
        )
    version = data["version"]
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or version not in SUPPORTED_VERSIONS
    ):
        raise InputError(
            f"version: version {version!r} of {FORMAT} is not supported: this comfyvn-gui "
            f"reads version {supported}; update comfyvn-gui, or have the importer write "
            f"version {supported}",
            fields=["version"],
        )


class _Problems:
    """Problems found after the document validated, reported together in one InputError."""

    def __init__(self) -> None:
        self._entries: list[tuple[list[str], str]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, path: str, message: str) -> None:
        self._entries.append(([path], f"{path}: {message}"))

    def add_error(self, error: InputError) -> None:
        self._entries.append((error.fields, error.message))

    def raise_if_any(self) -> None:
        if not self._entries:
            return
        fields: list[str] = []
        for entry_fields, _ in self._entries:
            fields.extend(f for f in entry_fields if f not in fields)
        shown = "; ".join(message for _, message in self._entries[:MAX_SHOWN_PROBLEMS])
        more = len(self._entries) - MAX_SHOWN_PROBLEMS
        if more > 0:
            shown += f" (and {more} more)"
        raise InputError(shown, fields=fields)


#: A kind's name at the start of a job title.
_KIND_TITLES: dict[str, str] = KIND_TITLES

#: What one item of an asset type is called in a title (singular, plural).
_ITEM_NOUNS: dict[str, tuple[str, str]] = {
    "sprite": ("sprite", "sprites"),
    "cg": ("CG", "CGs"),
    "audio": ("line", "lines"),
    "text": ("text", "texts"),
}
_OUTPUT_NOUNS: dict[str, tuple[str, str]] = {
    "sprite": ("image", "images"),
    "cg": ("image", "images"),
    "audio": ("audio clip", "audio clips"),
    "text": ("text", "texts"),
}


def _quote_ids(ids: Sequence[str]) -> str:
    return ", ".join(repr(i) for i in ids)


class _Reader:
    """Turns a validated summary into drafts, collecting every problem on the way."""

    def __init__(self, summary: ImportSummary) -> None:
        self.summary = summary
        self.problems = _Problems()
        self.assets: dict[str, Asset] = {}
        self.residency: list[str] | None = None

    def drafts(self) -> list[JobDraft]:
        self.residency = self._residency()
        self._index_assets()
        drafts: list[JobDraft | None] = []
        for i, task in enumerate(self.summary.tasks):
            drafts.append(self._task(i, task))
        for i, workflow in enumerate(self.summary.workflows):
            drafts.append(self._workflow(i, workflow))
        for i, translation in enumerate(self.summary.translations):
            drafts.append(self._translation(i, translation))
        self.problems.raise_if_any()
        out = [d for d in drafts if d is not None]
        if len(out) != len(drafts):  # a unit gave no draft yet no problem: never half a summary
            raise InputError("the summary could not be read in full", fields=["tasks"])
        return out

    # -- the project and the assets ---------------------------------------------------------

    def _residency(self) -> list[str] | None:
        """The zones of the ``residency:<zone>`` tags; ``[]`` for residency:any; None: none."""
        zones: list[str] = []
        any_at: int | None = None
        tagged = False
        for i, tag in enumerate(self.summary.project.tags):
            key, colon, value = tag.partition(":")
            if not colon or key.strip().lower() != _RESIDENCY_KEY:
                continue
            tagged = True
            zone = value.strip().lower()
            if zone == _ANY_ZONE:
                any_at = i
            elif _ZONE_RE.fullmatch(zone):
                if zone not in zones:
                    zones.append(zone)
            else:
                self.problems.add(
                    f"project.tags.{i}",
                    f"{tag!r} does not name a residency zone: write 'residency:<zone>' with a "
                    "lower-case zone such as eu, uk, us, asia (or 'residency:any')",
                )
        if any_at is not None and zones:
            self.problems.add(
                f"project.tags.{any_at}",
                f"'residency:any' contradicts the zone tags ({', '.join(zones)}): keep either "
                "residency:any or the zones the data must stay in",
            )
        if not tagged:
            return None
        return [] if any_at is not None else zones

    def _index_assets(self) -> None:
        first_at: dict[str, int] = {}
        for i, asset in enumerate(self.summary.assets):
            path = f"assets.{i}"
            if asset.id in first_at:
                self.problems.add(
                    f"{path}.id",
                    f"{asset.id!r} is already the id of assets.{first_at[asset.id]}: remove "
                    "the duplicate entry (asset ids are unique within a summary)",
                )
                continue
            first_at[asset.id] = i
            self.assets[asset.id] = asset
            if (asset.width is None) != (asset.height is None):
                missing = "height" if asset.height is None else "width"
                self.problems.add(
                    f"{path}.{missing}",
                    f"required with {'width' if missing == 'height' else 'height'}: give both "
                    "width and height (pixels), or neither",
                )

    def _resolve(self, ids: Sequence[str], path: str) -> list[Asset] | None:
        """The assets ``ids`` name; None (with problems added) when one is unknown or repeated."""
        out: list[Asset] = []
        seen: dict[str, int] = {}
        ok = True
        for j, asset_id in enumerate(ids):
            where = f"{path}.{j}"
            asset = self.assets.get(asset_id)
            if asset is None:
                close = difflib.get_close_matches(asset_id, list(self.assets), n=1, cutoff=0.8)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else "every id must be the id of an entry of assets"
                )
                self.problems.add(where, f"unknown asset {asset_id!r}: {hint}")
                ok = False
            elif asset_id in seen:
                self.problems.add(
                    where,
                    f"{asset_id!r} is listed twice (also at {path}.{seen[asset_id]}): list each "
                    "asset once",
                )
                ok = False
            else:
                seen[asset_id] = j
                out.append(asset)
        return out if ok else None

    def _check_pair(self, path: str, width: int | None, height: int | None) -> bool:
        if (width is None) == (height is None):
            return True
        missing = "height" if height is None else "width"
        self.problems.add(
            f"{path}.{missing}",
            f"required with {'width' if missing == 'height' else 'height'}: give both width "
            "and height (pixels per item), or neither",
        )
        return False

    # -- the units --------------------------------------------------------------------------

    def _task_fields(self, path: str, task: Task) -> bool:
        """prompt, prompts and vary_seed only on the kinds that use them; False: a problem."""
        before = len(self.problems)
        title = _KIND_TITLES[task.kind]
        prompt_kinds = f"{', '.join(PROMPT_KINDS[:-1])} and {PROMPT_KINDS[-1]}"
        if task.prompt is not None and task.kind not in PROMPT_KINDS:
            self.problems.add(
                f"{path}.prompt",
                f"{title} takes no prompt (only {prompt_kinds} tasks do): remove prompt",
            )
        if task.prompts is not None and task.kind != "sprite_generation":
            instead = (
                "use prompt (one prompt for every image) instead"
                if task.kind in PROMPT_KINDS
                else "remove prompts"
            )
            self.problems.add(
                f"{path}.prompts",
                f"{title} takes no prompts (only sprite_generation tasks take one prompt per "
                f"item): {instead}",
            )
        elif task.prompts is not None and task.prompt is not None:
            self.problems.add(
                f"{path}.prompts",
                "give either prompt (the same prompt for every item) or prompts (one per item), "
                "not both",
            )
        if task.vary_seed is not None and task.kind != "sprite_generation":
            fix = "remove vary_seed"
            if task.kind == "comfyui_workflow":
                fix += " (or queue the graph under workflows, where vary_seed is allowed)"
            self.problems.add(
                f"{path}.vary_seed",
                f"{title} takes no vary_seed (only sprite_generation tasks and workflows vary "
                f"the seed per item): {fix}",
            )
        return len(self.problems) == before

    def _check_prompt_count(self, path: str, task: Task, items: int) -> bool:
        """A sprite task's prompts: exactly one per item; False: a problem was added."""
        if task.prompts is None or len(task.prompts) == items:
            return True
        given = wording.counted(len(task.prompts), "prompt", "prompts")
        if task.items is not None:
            problem = f"lists {given} but items is {wording.count(items)}"
        else:
            made = wording.counted(items, "item", "items")
            problem = f"lists {given} but the task has {made} (from its assets)"
        if items > MAX_PROMPTS:
            fix = (
                f"a task lists at most {wording.count(MAX_PROMPTS)} prompts, so split it into "
                f"tasks of at most {wording.count(MAX_PROMPTS)} items, or use prompt (one prompt "
                "for every item) instead"
            )
        elif task.items is not None:
            fix = (
                f"give exactly one prompt per item (list "
                f"{wording.counted(items, 'prompt', 'prompts')}, or set items to "
                f"{len(task.prompts)})"
            )
        else:
            fix = "give exactly one prompt per item, in the order of the assets"
        self.problems.add(f"{path}.prompts", f"{problem}: {fix}")
        return False

    def _task(self, i: int, task: Task) -> JobDraft | None:
        path = f"tasks.{i}"
        fields_ok = self._task_fields(path, task)
        before = len(self.problems)
        self._check_pair(path, task.width, task.height)
        assets: list[Asset] | None = []
        where = f"{path}.assets"
        if task.assets is not None and task.select is not None:
            self.problems.add(
                f"{path}.select",
                "give either assets (a list of ids) or select (all assets of a type), not both",
            )
            return None
        if task.select is not None:
            where = f"{path}.select"
            sel = task.select
            assets = [
                a
                for a in self.assets.values()
                if a.type == sel.type and (sel.prefix is None or a.id.startswith(sel.prefix))
            ]
            if not assets and task.items is None:
                under = f" under {sel.prefix!r}" if sel.prefix else ""
                self.problems.add(
                    where,
                    f"selects no assets (there is no {sel.type} asset{under}): fix the "
                    "selection, or give items (how many new ones to make)",
                )
                return None
        elif task.assets is not None:
            assets = self._resolve(task.assets, where)
        if assets is None:
            return None
        if not assets and task.items is None:
            self.problems.add(
                where,
                "the task names no assets and gives no items: list the ids of the assets it "
                "works on, select them by type, or give items (how many new ones to make)",
            )
            return None
        allowed = ASSET_TYPES_OF_KIND[task.kind]
        types = Counter(a.type for a in assets)
        if len(types) > 1:
            mix = ", ".join(f"{n} {t}" for t, n in sorted(types.items()))
            self.problems.add(
                where,
                f"the assets mix types ({mix}): a task works on one type of asset, so split it "
                "into one task per type",
            )
            return None
        type_path = where
        if types:
            asset_type: AssetType = next(iter(types))
            if task.asset_type is not None and task.asset_type != asset_type:
                self.problems.add(
                    f"{path}.asset_type",
                    f"is {task.asset_type!r} but the task's assets are {asset_type}: remove "
                    "asset_type or fix it",
                )
        elif task.asset_type is not None:
            asset_type, type_path = task.asset_type, f"{path}.asset_type"
        else:
            asset_type = task.select.type if task.select is not None else allowed[0]
        if len(self.problems) == before and asset_type not in allowed:
            self.problems.add(
                type_path,
                f"{_KIND_TITLES[task.kind]} works on {' or '.join(allowed)} assets, not "
                f"{asset_type}: pick assets of that type or another kind",
            )
        if len(self.problems) > before or not fields_ok:
            return None

        items = task.items if task.items is not None else sum(a.count for a in assets)
        if not self._check_prompt_count(path, task, items):
            return None
        width, height = (task.width, task.height)
        if width is None:
            width, height = _largest_image(assets)
        sums = _sums(assets)
        data: dict[str, Any] = {
            "kind": task.kind,
            "asset_type": asset_type,
            "items": items,
            "width": width,
            "height": height,
            **sums,
            "vram_gb": task.vram_gb,
            "gpu_hours": task.gpu_hours,
            "latency": self._latency(task.latency),
            "budget_usd": self._budget(task.budget_usd),
        }
        label = task.title or _task_label(task.kind, asset_type, items, sums)
        given = {"prompt": task.prompt, "prompts": task.prompts, "vary_seed": task.vary_seed}
        return self._draft(path, f"tasks[{i}]", label, data, assets, given)

    def _workflow(self, i: int, job: WorkflowJob) -> JobDraft | None:
        path = f"workflows.{i}"
        paired = self._check_pair(path, job.width, job.height)
        assets = self._resolve(job.assets or [], f"{path}.assets")
        if assets is None or not paired:
            return None
        data: dict[str, Any] = {
            "kind": "comfyui_workflow",
            "asset_type": job.asset_type,
            "items": job.items,
            "width": job.width,
            "height": job.height,
            **_sums(assets),
            "workflow": job.workflow,
            "cached_graphs": job.cached_graphs,
            "vram_gb": job.vram_gb,
            "gpu_hours": job.gpu_hours,
            "latency": self._latency(job.latency),
            "budget_usd": self._budget(job.budget_usd),
        }
        label = (
            f"ComfyUI: {job.name} ({wording.counted(job.items, *_OUTPUT_NOUNS[job.asset_type])})"
        )
        return self._draft(
            path, f"workflows[{i}]", label, data, assets, {"vary_seed": job.vary_seed}
        )

    def _translation(self, i: int, job: TranslationJob) -> JobDraft | None:
        path = f"translations.{i}"
        before = len(self.problems)
        seen: dict[str, int] = {}
        for j, target in enumerate(job.target_languages):
            where = f"{path}.target_languages.{j}"
            key = target.lower()
            if key == job.source_language.lower():
                self.problems.add(
                    where,
                    f"{target!r} is the source language: list only the languages to translate into",
                )
            elif key in seen:
                self.problems.add(
                    where,
                    f"{target!r} is listed twice (also at {path}.target_languages.{seen[key]})",
                )
            else:
                seen[key] = j
        assets = self._resolve(job.assets or [], f"{path}.assets")
        if assets is None:
            return None
        types = Counter(a.type for a in assets)
        allowed = ASSET_TYPES_OF_KIND["translation"]
        if len(types) > 1 or any(t not in allowed for t in types):
            kinds = ", ".join(f"{n} {t}" for t, n in sorted(types.items()))
            self.problems.add(
                f"{path}.assets",
                f"a translation reads text assets, or audio assets with transcripts, all of one "
                f"type (got {kinds}): list only those",
            )
        characters = job.characters
        if characters is None:
            known = [a.characters for a in assets if a.characters is not None]
            if not assets:
                self.problems.add(
                    f"{path}.characters",
                    "required field is missing: give characters (the length of the source "
                    "text), or assets whose characters are known",
                )
            elif not known:
                self.problems.add(
                    f"{path}.characters",
                    f"none of the assets ({_quote_ids([a.id for a in assets][:3])}) states its "
                    "characters: give characters (the length of the source text)",
                )
            else:
                characters = sum(known)
        if len(self.problems) > before or characters is None:
            return None

        languages = len(job.target_languages)
        shown = job.target_languages[:4]
        targets = ", ".join(shown)
        if languages > len(shown):
            targets += f" and {languages - len(shown)} more"
        label = (
            f"{job.name} translation {job.source_language} -> {targets} "
            f"({wording.counted(languages, 'language', 'languages')})"
        )
        data: dict[str, Any] = {
            "kind": "translation",
            "asset_type": next(iter(types)) if types else "text",
            "items": (job.lines or 1) * languages,
            "characters": characters * languages,
            "total_bytes": _sums(assets).get("total_bytes"),
            "vram_gb": job.vram_gb,
            "gpu_hours": job.gpu_hours,
            "latency": self._latency(job.latency),
            "budget_usd": self._budget(job.budget_usd),
        }
        return self._draft(path, f"translations[{i}]", label, data, assets)

    # -- shared -----------------------------------------------------------------------------

    def _latency(self, value: Latency | None) -> Latency | None:
        return value if value is not None else self.summary.defaults.latency

    def _budget(self, value: float | None) -> float | None:
        return value if value is not None else self.summary.defaults.budget_usd

    def _draft(
        self,
        path: str,
        unit: str,
        label: str,
        data: dict[str, Any],
        assets: list[Asset],
        task_fields: dict[str, Any] | None = None,
    ) -> JobDraft | None:
        """The draft; ``task_fields`` given (not None) go to ``source["task"]`` for dispatch."""
        project = self.summary.project
        title = f"{project.name} — {label}"
        data["title"] = title
        data["residency"] = None if self.residency is None else list(self.residency)
        data["licenses"] = _licenses(assets)
        try:
            workload = Workload.model_validate(data)
        except ValidationError as exc:
            self.problems.add_error(input_error(exc, prefix=path))
            return None
        source: dict[str, Any] = {
            "project": project.name,
            "unit": unit,
            "assets": [a.id for a in assets[:MAX_SOURCE_ASSETS]],
            "asset_count": len(assets),
        }
        if assets:  # every file the job reads, looked up under the project folder at dispatch
            source["inputs"] = [
                {"id": a.id, "count": a.count} if a.count > 1 else {"id": a.id} for a in assets
            ]
        given = {
            key: list(value) if isinstance(value, list) else value
            for key, value in (task_fields or {}).items()
            if value is not None
        }
        if given:
            source["task"] = given
        return JobDraft(title=title, workload=workload, source=source)


def _largest_image(assets: Sequence[Asset]) -> tuple[int | None, int | None]:
    """Width and height of the largest (by area) sprite or CG that states its size."""
    best: Asset | None = None
    for a in assets:
        if a.type not in ("sprite", "cg") or a.width is None or a.height is None:
            continue
        if best is None or a.width * a.height > (best.width or 0) * (best.height or 0):
            best = a
    return (None, None) if best is None else (best.width, best.height)


def _sums(assets: Sequence[Asset]) -> dict[str, Any]:
    """audio_seconds, characters and total_bytes summed over the assets that state them."""
    out: dict[str, Any] = {}
    seconds = [a.audio_seconds for a in assets if a.audio_seconds is not None]
    if seconds:
        out["audio_seconds"] = round(sum(seconds), 3)
    characters = [a.characters for a in assets if a.characters is not None]
    if characters:
        out["characters"] = sum(characters)
    sizes = [a.bytes for a in assets if a.bytes is not None]
    if sizes:
        out["total_bytes"] = sum(sizes)
    return out


def _task_label(kind: str, asset_type: str, items: int, sums: dict[str, Any]) -> str:
    """A task's default title: 'CG super-res (40 CGs)', 'Voice synthesis (420 lines, ...)'."""
    if kind == "comfyui_workflow":
        parts = [wording.counted(items, *_OUTPUT_NOUNS[asset_type])]
    else:
        parts = [wording.counted(items, *_ITEM_NOUNS[asset_type])]
    if "audio_seconds" in sums and asset_type == "audio":
        parts.append(f"{wording.media_length(sums['audio_seconds'])} of audio")
    elif "characters" in sums and kind == "translation":
        parts.append(f"{wording.count(sums['characters'])} characters")
    return f"{_KIND_TITLES[kind]} ({', '.join(parts)})"


def _licenses(assets: Sequence[Asset]) -> dict[str, Any]:
    """The job's licensing flags: whether any asset is not open source, and which."""
    closed = [a for a in assets if not is_open_source(a)]
    if not closed:
        return {"non_open_source": False, "notes": None}
    total = sum(a.count for a in assets)
    flagged = sum(a.count for a in closed)
    noun = "asset" if total == 1 else "assets"
    verb = "is" if flagged == 1 else "are"
    named = ", ".join(_why(a) for a in closed[:MAX_NOTED_ASSETS])
    more = len(closed) - MAX_NOTED_ASSETS
    if more > 0:
        named += f" and {more} more"
    notes = (
        f"{wording.count(flagged)} of {wording.count(total)} {noun} {verb} not open source: {named}"
    )
    if len(notes) > _MAX_NOTES:
        notes = notes[: _MAX_NOTES - 3] + "..."
    return {"non_open_source": True, "notes": notes}


def _why(asset: Asset) -> str:
    """'cg/ev_03.png (proprietary)', 'voice/ren/ (140 files, All rights reserved)'."""
    if asset.license is None:
        reason = "no licence" if asset.open_source is None else "marked not open source"
    elif asset.open_source is False and asset.license.strip().lower() in OPEN_LICENSES:
        reason = f"{asset.license}, marked not open source"
    else:
        reason = asset.license
    if asset.count > 1:
        reason = f"{wording.count(asset.count)} files, {reason}"
    return f"{asset.id} ({reason})"
