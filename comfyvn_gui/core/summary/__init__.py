"""The importer summary: what ComfyVN's importer found in a project and the work it queued.

After scanning a visual-novel project the importer writes one JSON document, the *import
summary* (``"format": "comfyvn.import-summary"``, ``"version": 1``; docs/import-summary.md).
It lists the project (name, tags), its assets (sprites, CGs, audio lines, script text, each
with its size and licence) and the queued units of work: processing ``tasks`` over those
assets, inline ComfyUI ``workflows``, and ``translations``.

:func:`parse_summary` reads one and turns every unit into a :class:`JobDraft`: a
:class:`~comfyvn_gui.core.workload.Workload` the advisor can be asked about, its figures
derived from the assets (how many, how large, how many seconds of audio or characters of
text), its residency from the project's ``residency:<zone>`` tags, and its licensing flags
from the assets' licences, so a user reviews non-open-source assets before anything is
uploaded.

The reader is pure (no disk, no network, no clock) and all-or-nothing: it returns a draft for
every unit, or raises one :class:`InputError` naming the dotted path of each problem.

The modules: :mod:`.models` (the document's pydantic models, whose JSON Schema is published)
and :mod:`.reader` (from a validated document to job drafts).
"""

from __future__ import annotations

from .models import (
    FORMAT,
    SUPPORTED_VERSIONS,
    Asset,
    AssetSelector,
    ImportSummary,
    JobDraft,
    ProjectInfo,
    SummaryDefaults,
    Task,
    TranslationJob,
    WorkflowJob,
)
from .reader import OPEN_LICENSES, is_open_source, parse_summary

__all__ = [
    "FORMAT",
    "OPEN_LICENSES",
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
    "is_open_source",
    "parse_summary",
]
