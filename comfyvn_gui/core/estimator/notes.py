"""What every estimate is built from: its notes (the assumptions, in a user's words), its raw
figures, and the sentences more than one kind of estimate shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from comfyvn_gui.core import wording
from comfyvn_gui.core.workload import GraphSummary, Workload

from .constants import GENERATION_MAX_GB, RUNTIME_OVERHEAD_GB, TTS_WEIGHTS_GB, TTS_WORK_GB

Aspect = Literal["vram", "time", "both"]

# --------------------------------------------------------------------------------------------
# Notes: the assumptions an estimate rests on
# --------------------------------------------------------------------------------------------


@dataclass
class Notes:
    """Assumptions, each tagged with the figure it affects (an explicit figure drops its own)."""

    entries: list[tuple[Aspect, str]] = field(default_factory=list)

    def add(self, aspect: Aspect, text: str) -> None:
        if all(t != text for _, t in self.entries):
            self.entries.append((aspect, text))

    def select(self, *, vram_given: bool, time_given: bool) -> list[str]:
        out: list[str] = []
        for aspect, text in self.entries:
            if aspect == "vram" and vram_given:
                continue
            if aspect == "time" and time_given:
                continue
            if aspect == "both" and vram_given and time_given:
                continue
            out.append(text)
        return out


@dataclass(frozen=True)
class Figures:
    vram_gb: float
    seconds: float
    graph: GraphSummary | None = None


def cap_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def megapixels_of(width: float, height: float) -> float:
    return width * height / 1_000_000


_NOUNS = {"sprite": "sprite", "cg": "CG", "audio": "voice line", "text": "line"}


def item_noun(workload: Workload) -> str:
    return _NOUNS.get(workload.asset_type or "", "item")


# --------------------------------------------------------------------------------------------
# Notes more than one estimator adds
# --------------------------------------------------------------------------------------------


def cap_generation(gb: float, notes: Notes) -> float:
    if gb > GENERATION_MAX_GB:
        notes.add(
            "vram",
            f"Capped the VRAM estimate at {wording.figure(GENERATION_MAX_GB, 1)} GB: at this size "
            "ComfyUI decodes in tiles, and sizes this large need a tiled workflow anyway.",
        )
        return GENERATION_MAX_GB
    return gb


def tts_vram_note(notes: Notes) -> None:
    total = TTS_WEIGHTS_GB + TTS_WORK_GB + RUNTIME_OVERHEAD_GB
    notes.add(
        "vram",
        "Assumed a text-to-speech model of the XTTS-v2 / F5-TTS class: about "
        f"{wording.figure(total, 1)} GB of VRAM ({wording.figure(TTS_WEIGHTS_GB, 1)} GB of "
        f"weights, {wording.figure(TTS_WORK_GB, 1)} GB of working memory, "
        f"{wording.figure(RUNTIME_OVERHEAD_GB, 1)} GB for the CUDA runtime).",
    )
