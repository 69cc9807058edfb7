"""The estimators of each workload kind: sprites, CG remix / super-res / bake, voice,
translation, and a ComfyUI workflow (read from its graph, or an SDXL graph assumed)."""

from __future__ import annotations

from collections.abc import Callable

from comfyvn_gui.core import wording
from comfyvn_gui.core.workload import Workload

from .constants import (
    BAKE_DEFAULT_SIZE,
    BAKE_OVERHEAD_S,
    BAKE_STEP_EQUIVALENTS,
    BAKE_WORK_GB_PER_MP,
    CALIBRATION_GPU,
    DEFAULT_STEPS,
    FAMILIES,
    LLM_CONTEXT_GB,
    LLM_WEIGHTS_GB,
    PER_IMAGE_OVERHEAD_S,
    REMIX_DEFAULT_SIZE,
    REMIX_OVERHEAD_S,
    REMIX_STEPS,
    RUNTIME_OVERHEAD_GB,
    SDXL_RESIDENT_GB,
    SPRITE_DEFAULT_SIZE,
    SPRITE_STEPS,
    SUPER_RES_BASE_GB,
    SUPER_RES_DEFAULT_SIZE,
    SUPER_RES_GB_PER_MP,
    SUPER_RES_MAX_GB,
    SUPER_RES_MIN_GB,
    SUPER_RES_SECONDS_PER_MP,
    TRANSLATION_CHARS_PER_SECOND,
    TRANSLATION_DEFAULT_CHARS_PER_LINE,
    TRANSLATION_SECONDS_PER_LINE,
    TTS_DEFAULT_SECONDS_PER_LINE,
    TTS_REAL_TIME_FACTOR,
    TTS_SECONDS_PER_LINE,
    TTS_WEIGHTS_GB,
    TTS_WORK_GB,
    WAV_BYTES_PER_SECOND,
    WORKFLOW_DEFAULT_SIZE,
)
from .graph_reader import analyse
from .notes import Figures, Notes, cap_generation, item_noun, megapixels_of, tts_vram_note

__all__ = ["ESTIMATORS"]

# --------------------------------------------------------------------------------------------
# Images without a graph (SDXL-class)
# --------------------------------------------------------------------------------------------


def _image_size(workload: Workload, default: tuple[int, int], notes: Notes) -> tuple[int, int]:
    if workload.width is not None and workload.height is not None:
        return workload.width, workload.height
    notes.add(
        "both",
        f"Assumed {wording.image_size(*default)} px per {item_noun(workload)} "
        "(no width/height given).",
    )
    return default


def _sdxl_vram_note(notes: Notes, work_gb_per_mp: float) -> None:
    fam = FAMILIES["sdxl"]
    notes.add(
        "vram",
        f"Assumed an SDXL-class model: {wording.figure(SDXL_RESIDENT_GB, 1)} GB of weights stay "
        f"on the GPU while sampling (its {wording.figure(fam.text_encoder_gb, 1)} GB of text "
        "encoders are unloaded after encoding the prompt), plus "
        f"{wording.figure(work_gb_per_mp, 1)} GB of working memory per megapixel and "
        f"{wording.figure(RUNTIME_OVERHEAD_GB, 1)} GB for the CUDA runtime.",
    )


def _sdxl_job(
    workload: Workload,
    notes: Notes,
    *,
    default: tuple[int, int],
    steps: int,
    work_gb_per_mp: float,
    overhead_s: float,
    what: str,
    steps_text: str = "sampler steps",
) -> Figures:
    width, height = _image_size(workload, default, notes)
    mp = megapixels_of(width, height)
    fam = FAMILIES["sdxl"]
    _sdxl_vram_note(notes, work_gb_per_mp)
    vram = cap_generation(SDXL_RESIDENT_GB + RUNTIME_OVERHEAD_GB + work_gb_per_mp * mp, notes)
    per_item = steps * mp * fam.seconds_per_step_mp + overhead_s
    notes.add(
        "time",
        f"About {wording.seconds(per_item)} per {wording.image_size(width, height)} "
        f"{item_noun(workload)} on the {CALIBRATION_GPU} ({what}: {steps} {steps_text} at "
        f"{wording.figure(fam.seconds_per_step_mp, 2)} s per step per megapixel, plus "
        f"{wording.figure(overhead_s, 1)} s to decode and save).",
    )
    return Figures(vram, per_item * workload.items)


def _estimate_sprite(workload: Workload, notes: Notes) -> Figures:
    return _sdxl_job(
        workload,
        notes,
        default=SPRITE_DEFAULT_SIZE,
        steps=SPRITE_STEPS,
        work_gb_per_mp=FAMILIES["sdxl"].work_gb_per_mp,
        overhead_s=PER_IMAGE_OVERHEAD_S,
        what="SDXL-class text-to-image",
    )


def _estimate_remix(workload: Workload, notes: Notes) -> Figures:
    return _sdxl_job(
        workload,
        notes,
        default=REMIX_DEFAULT_SIZE,
        steps=REMIX_STEPS,
        work_gb_per_mp=FAMILIES["sdxl"].work_gb_per_mp,
        overhead_s=REMIX_OVERHEAD_S,
        what="SDXL-class image-to-image remix",
    )


def _estimate_bake(workload: Workload, notes: Notes) -> Figures:
    return _sdxl_job(
        workload,
        notes,
        default=BAKE_DEFAULT_SIZE,
        steps=BAKE_STEP_EQUIVALENTS,
        work_gb_per_mp=BAKE_WORK_GB_PER_MP,
        overhead_s=BAKE_OVERHEAD_S,
        what="SDXL-class high-resolution bake with a base pass, a high-res pass and refinement",
        steps_text="step-equivalents at full size",
    )


def _estimate_super_res(workload: Workload, notes: Notes) -> Figures:
    width, height = _image_size(workload, SUPER_RES_DEFAULT_SIZE, notes)
    mp = megapixels_of(width, height)
    noun = item_noun(workload)
    raw = SUPER_RES_BASE_GB + SUPER_RES_GB_PER_MP * mp
    notes.add(
        "vram",
        "Assumed 4x super-resolution (a model upscale with tiled refinement): about "
        f"{wording.figure(SUPER_RES_BASE_GB, 1)} GB plus {wording.figure(SUPER_RES_GB_PER_MP, 1)} "
        f"GB per megapixel of one {noun}, at least {wording.figure(SUPER_RES_MIN_GB, 1)} GB.",
    )
    if raw > SUPER_RES_MAX_GB:
        notes.add(
            "vram",
            f"Capped the VRAM estimate at {wording.figure(SUPER_RES_MAX_GB, 1)} GB: a {noun} this "
            "large is processed in tiles.",
        )
    vram = min(max(raw, SUPER_RES_MIN_GB), SUPER_RES_MAX_GB)
    per_item = SUPER_RES_SECONDS_PER_MP * mp
    notes.add(
        "time",
        f"About {wording.seconds(per_item)} per {wording.image_size(width, height)} {noun} on the "
        f"{CALIBRATION_GPU} (4x super-resolution, tiled; "
        f"{wording.figure(SUPER_RES_SECONDS_PER_MP, 1)} s per megapixel).",
    )
    return Figures(vram, per_item * workload.items)


def _speech_seconds(workload: Workload, notes: Notes) -> float:
    """Seconds of speech, all items together, from audio_seconds, total_bytes or a default."""
    if workload.audio_seconds is not None:
        return workload.audio_seconds
    if workload.total_bytes is not None:
        seconds = workload.total_bytes / WAV_BYTES_PER_SECOND
        notes.add(
            "time",
            f"Took the audio length from the input size: {wording.count(workload.total_bytes)} "
            f"bytes read as 16-bit 44.1 kHz mono WAV ({WAV_BYTES_PER_SECOND:,} bytes per second) "
            f"is about {wording.seconds(seconds)} of audio.",
        )
        return seconds
    notes.add(
        "time",
        f"Assumed {wording.figure(TTS_DEFAULT_SECONDS_PER_LINE, 1)} s of speech per voice line "
        "(no audio_seconds or total_bytes given).",
    )
    return TTS_DEFAULT_SECONDS_PER_LINE * workload.items


def _tts_seconds(workload: Workload, notes: Notes) -> float:
    speech = _speech_seconds(workload, notes)
    notes.add(
        "time",
        f"About {wording.figure(TTS_REAL_TIME_FACTOR, 2)} s of GPU time per second of speech on "
        f"the {CALIBRATION_GPU} (real-time factor {wording.figure(TTS_REAL_TIME_FACTOR, 2)}), "
        f"plus {wording.figure(TTS_SECONDS_PER_LINE, 2)} s per voice line.",
    )
    return speech * TTS_REAL_TIME_FACTOR + TTS_SECONDS_PER_LINE * workload.items


def _estimate_voice(workload: Workload, notes: Notes) -> Figures:
    tts_vram_note(notes)
    vram = TTS_WEIGHTS_GB + TTS_WORK_GB + RUNTIME_OVERHEAD_GB
    return Figures(vram, _tts_seconds(workload, notes))


def _estimate_translation(workload: Workload, notes: Notes) -> Figures:
    vram = LLM_WEIGHTS_GB + LLM_CONTEXT_GB + RUNTIME_OVERHEAD_GB
    notes.add(
        "vram",
        "Assumed GPU-assisted translation with a 7-8B-parameter language model quantised to 4 "
        f"bits: about {wording.figure(vram, 1)} GB of VRAM ({wording.figure(LLM_WEIGHTS_GB, 1)} "
        f"GB of weights, {wording.figure(LLM_CONTEXT_GB, 1)} GB of context cache, "
        f"{wording.figure(RUNTIME_OVERHEAD_GB, 1)} GB for the CUDA runtime).",
    )
    if workload.characters is not None:
        chars = float(workload.characters)
    elif workload.total_bytes is not None and workload.asset_type != "audio":
        chars = float(workload.total_bytes)
        notes.add(
            "time",
            f"Took 1 byte as about 1 character of text (total_bytes given, no characters): "
            f"{wording.count(chars)} characters. UTF-8 Japanese or Chinese text has 3 bytes per "
            "character, so this overestimates the time for it.",
        )
    else:
        chars = float(TRANSLATION_DEFAULT_CHARS_PER_LINE * workload.items)
        why = (
            "no characters given; total_bytes of audio files says nothing about their text"
            if workload.asset_type == "audio" and workload.total_bytes is not None
            else "no characters or total_bytes given"
        )
        notes.add(
            "time",
            f"Assumed {TRANSLATION_DEFAULT_CHARS_PER_LINE} characters per line ({why}).",
        )
    notes.add(
        "time",
        f"About {wording.figure(TRANSLATION_CHARS_PER_SECOND, 1)} characters per second on the "
        f"{CALIBRATION_GPU}, plus {wording.figure(TRANSLATION_SECONDS_PER_LINE, 2)} s per line.",
    )
    seconds = chars / TRANSLATION_CHARS_PER_SECOND + TRANSLATION_SECONDS_PER_LINE * workload.items
    return Figures(vram, seconds)


def _estimate_workflow(workload: Workload, notes: Notes) -> Figures:
    if workload.workflow is None:
        if workload.asset_type == "audio":
            notes.add(
                "both",
                "No workflow given: assumed a text-to-speech graph (the job is for audio).",
            )
            return _estimate_voice(workload, notes)
        width, height = _image_size(workload, WORKFLOW_DEFAULT_SIZE, notes)
        notes.add(
            "both",
            "No workflow given: assumed an SDXL text-to-image graph at "
            f"{wording.image_size(width, height)} px with {DEFAULT_STEPS} steps.",
        )
        return _sdxl_job(
            workload,
            notes,
            default=WORKFLOW_DEFAULT_SIZE,
            steps=DEFAULT_STEPS,
            work_gb_per_mp=FAMILIES["sdxl"].work_gb_per_mp,
            overhead_s=PER_IMAGE_OVERHEAD_S,
            what="SDXL text-to-image",
        )
    fallback = None
    if workload.width is not None and workload.height is not None:
        fallback = (workload.width, workload.height)
    analysis = analyse(workload.workflow, fallback, notes)
    seconds = analysis.run_seconds * workload.items
    if analysis.has_tts:
        seconds += _tts_seconds(workload, notes)
    if workload.items > 1:
        notes.add("time", f"The graph runs once per item: {workload.items:,} runs.")
    return Figures(analysis.vram_gb, seconds, analysis.summary)


ESTIMATORS: dict[str, Callable[[Workload, Notes], Figures]] = {
    "sprite_generation": _estimate_sprite,
    "cg_remix": _estimate_remix,
    "cg_super_res": _estimate_super_res,
    "cg_bake": _estimate_bake,
    "voice_synthesis": _estimate_voice,
    "translation": _estimate_translation,
    "comfyui_workflow": _estimate_workflow,
}
