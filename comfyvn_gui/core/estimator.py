"""Estimate what a workload needs: VRAM (GB) and GPU-hours on the reference GPU (the A10G).

:func:`estimate` turns a :class:`~comfyvn_gui.core.workload.Workload` into
:class:`~comfyvn_gui.core.workload.Requirements`; :func:`read_graph` reads a ComfyUI graph in API
format into a :class:`~comfyvn_gui.core.workload.GraphSummary`.

The figures are PLANNING numbers from the heuristics below, not measurements. Every constant the
result rests on is a named module-level constant with its rationale, and every assumption an
estimate makes is stated in ``Requirements.assumptions`` in a desktop user's words, numbers
included, so a user can see why the advisor asks for (say) 12 GB and correct it with an explicit
``vram_gb`` / ``gpu_hours`` in the request.

Units: VRAM in GB as GPU vendors state it; time in seconds on the A10G internally, GPU-hours on
the catalog's reference GPU in the result (the A10G in the bundled catalog).

Pure module: the standard library and pydantic (through the workload models) only.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .catalog import Catalog
from .workload import GraphSummary, ModelUse, Requirements, Workload

__all__ = ["estimate", "read_graph"]

# --------------------------------------------------------------------------------------------
# Constants: general
# --------------------------------------------------------------------------------------------

#: The GPU the per-item seconds below were calibrated on (the bundled catalog's reference GPU).
CALIBRATION_GPU = "A10G"
#: Its memory as the vendor states it, used in sentences when no catalog is passed.
CALIBRATION_GPU_VRAM_GB = 24.0

#: Estimates are rounded UP to this VRAM step (GB) and never go below the floor: a job that
#: needs 7.6 GB is reported as 8 GB, and nothing that touches a GPU needs less than 2 GB.
VRAM_STEP_GB = 0.5
VRAM_FLOOR_GB = 2.0
#: GPU-hours are rounded to 4 decimals, but any work counts at least one second.
HOURS_DECIMALS = 4
MIN_WORK_SECONDS = 1.0

#: The CUDA context, cuDNN/cuBLAS workspaces and PyTorch's caching allocator take about 1 GB
#: before any model is loaded (a bare ``torch.cuda.init()`` is ~0.4-0.6 GB; ComfyUI keeps some
#: headroom on top).
RUNTIME_OVERHEAD_GB = 1.0

#: The most an image-generation estimate asks for. Beyond ~20 megapixels per item ComfyUI
#: falls back to tiled VAE decoding and such sizes need a tiled workflow anyway, so a larger
#: figure would only rule out every GPU without being more accurate.
GENERATION_MAX_GB = 48.0

# --------------------------------------------------------------------------------------------
# Constants: CG super-resolution (kind cg_super_res)
# --------------------------------------------------------------------------------------------

#: 4x super-resolution of a CG / sprite: a model upscale followed by tiled diffusion
#: refinement. Calibrated to the seed's documented example: 40 CGs of 2048x2048 need 12 GB
#: ("6GB < 12GB required for CG super-res") and take ~59 minutes on the A10G.
#: VRAM = base + per megapixel of ONE item (the tiles and the full-size image tensors grow
#: with it), at least the floor and at most the cap (beyond it the work is split in tiles).
SUPER_RES_BASE_GB = 6.0
SUPER_RES_GB_PER_MP = 1.4  # 6 + 1.4 x 4.19 MP = 11.9 -> 12 GB at 2048x2048
SUPER_RES_MIN_GB = 6.0
SUPER_RES_MAX_GB = 24.0
#: GPU seconds per megapixel of an item: 59 min / 40 items = 88.5 s per 4.19 MP item.
SUPER_RES_SECONDS_PER_MP = 21.0
SUPER_RES_DEFAULT_SIZE = (1920, 1080)

# --------------------------------------------------------------------------------------------
# Constants: diffusion model families (checkpoints, UNet loaders, samplers)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Family:
    """What a diffusion model family takes and how fast it samples on the A10G."""

    label: str
    #: fp16 weights of a whole checkpoint file (diffusion model + text encoders + VAE), GB
    checkpoint_gb: float
    #: of which the text encoders (ComfyUI unloads them after encoding when memory is short)
    text_encoder_gb: float
    #: working memory (activations, attention, VAE decode) per megapixel per batch item, GB
    work_gb_per_mp: float
    #: A10G seconds per sampler step per megapixel per batch item
    seconds_per_step_mp: float
    #: the size the family was trained at (used when a graph does not say)
    native_side: int


#: Weights: the published fp16 checkpoint sizes (SD 1.5 pruned 2.0 GB with a 0.25 GB CLIP-L;
#: SD 2.1 2.6 GB with a 0.7 GB OpenCLIP-H; SDXL base 6.5 GB with 1.6 GB of CLIP-L + OpenCLIP-G;
#: SD3 medium "incl_clips" 6.0 GB with 1.6 GB of CLIP-L/G; Flux: 11.9 B parameters in fp16 is
#: 23.8 GB plus T5-XXL 9.5 GB, CLIP-L and the 0.2 GB autoencoder). Working memory and speed
#: are rounded from public ComfyUI / diffusers fp16 runs on 24 GB Ampere cards (A10G, A10,
#: RTX 3090) with PyTorch SDPA attention: SD 1.5 at 512x512 ~11 it/s, SDXL at 1024x1024
#: ~2.6 it/s, Flux dev at 1024x1024 ~0.73 it/s on the A10G. "unknown" is an SDXL-class guess.
FAMILIES: dict[str, _Family] = {
    "sd15": _Family("SD 1.5", 2.0, 0.25, 2.5, 0.30, 512),
    "sd2": _Family("SD 2.x", 2.6, 0.7, 2.5, 0.33, 768),
    "sdxl": _Family("SDXL", 6.5, 1.6, 2.0, 0.38, 1024),
    "sd3": _Family("SD3", 6.0, 1.6, 2.0, 0.45, 1024),
    "flux": _Family("Flux", 33.7, 9.75, 2.5, 1.30, 1024),
    "video": _Family("video", 4.8, 1.2, 3.0, 1.50, 1024),
    "unknown": _Family("unknown (SDXL-class assumed)", 6.5, 1.6, 2.0, 0.38, 1024),
}

#: Parameters (billions) of diffusion models loaded on their own (UNETLoader & co), by family:
#: Flux dev / schnell 11.9 B; SD3 medium 2 B, SD3.5 large 8.1 B; video: 13 B-class (HunyuanVideo,
#: Wan 14B). For the SD families the diffusion weights are the checkpoint minus text encoders.
FLUX_PARAMS_B = 11.9
SD3_MEDIUM_PARAMS_B = 2.05
SD3_LARGE_PARAMS_B = 8.1
VIDEO_PARAMS_B = 13.0

#: Bits per weight of the storage types a loader may use. GGUF k-quants carry block scales,
#: so Q8_0 is 8.5 bits per weight and Q4_K_S about 4.5 (a Flux dev Q8_0 file is 12.7 GB,
#: Q4_K_S 6.8 GB). ``fp8`` files / ``weight_dtype fp8_*`` hold 8 bits, NF4 about 4.5.
FP16_BITS = 16.0
FP8_BITS = 8.0
NF4_BITS = 4.5
GGUF_BITS: dict[int, float] = {8: 8.5, 6: 6.6, 5: 5.5, 4: 4.5, 3: 3.5, 2: 2.6}
GGUF_DEFAULT_QUANT = 8  # a .gguf whose name states no quantisation

#: Text encoder files (DualCLIPLoader & co): parameters in billions by a marker in the name.
#: T5-XXL encoder 4.76 B (9.5 GB fp16, 4.9 GB fp8), UMT5-XXL 5.7 B, Llama-3-8B-class 8 B,
#: OpenCLIP-G 0.69 B, CLIP-L 0.12 B.
T5XXL_PARAMS_B = 4.76
CLIP_L_GB = 0.25
TEXT_ENCODER_PARAMS_B: tuple[tuple[tuple[str, ...], float], ...] = (
    (("umt5",), 5.7),
    (("t5xxl", "t5-xxl", "t5_xxl", "t5-v1_1-xxl"), T5XXL_PARAMS_B),
    (("llava", "llama", "qwen", "gemma"), 8.0),
    (("clip_g", "clip-g", "clipg"), 0.69),
    (("clip_l", "clip-l", "clipl"), 0.12),
    (("t5_base", "t5-base", "t5base"), 0.11),
)
TEXT_ENCODER_DEFAULT_GB = 1.0  # an encoder file the estimator cannot classify

#: A VAE on its own (VAELoader): the SD / SDXL / Flux autoencoders are 80-84 M parameters.
VAE_GB = 0.2
#: A LoRA is patched into the model's weights; its own tensors are a few hundred MB at most.
LORA_GB = 0.3
#: ControlNet weights (fp16 files): SD 1.5 1.45 GB, SDXL 2.5 GB, Flux ControlNets ~3.3 GB.
CONTROLNET_GB: dict[str, float] = {"sd15": 1.45, "sd2": 1.45, "sdxl": 2.5, "sd3": 2.5, "flux": 3.3}
CONTROLNET_DEFAULT_GB = 2.5  # an unknown base family: the SDXL size

#: Sampler steps assumed when a graph takes them from another node, and ComfyUI's default.
DEFAULT_STEPS = 20
#: VAE decoding, image encoding and saving per output image, A10G seconds.
PER_IMAGE_OVERHEAD_S = 1.0
#: Queueing / graph execution overhead per run of a graph that does no known GPU work.
GRAPH_RUN_OVERHEAD_S = 1.0

# --------------------------------------------------------------------------------------------
# Constants: image kinds without a graph (SDXL-class)
# --------------------------------------------------------------------------------------------

#: SDXL kept on the GPU while sampling: the 6.5 GB checkpoint minus its 1.6 GB of text
#: encoders = 4.9 GB (UNet + VAE).
SDXL_RESIDENT_GB = FAMILIES["sdxl"].checkpoint_gb - FAMILIES["sdxl"].text_encoder_gb

#: sprite_generation: SDXL-class txt2img, 30 steps (the common SDXL setting), 1024x1024.
SPRITE_DEFAULT_SIZE = (1024, 1024)
SPRITE_STEPS = 30
#: cg_remix: SDXL-class img2img of a CG (VAE-encode the source, ~20 steps of denoising).
REMIX_DEFAULT_SIZE = (1920, 1080)
REMIX_STEPS = 20
REMIX_OVERHEAD_S = 1.5  # encode the source image as well as decode the result
#: cg_bake: long high-resolution renders (base pass, high-res pass, refinement) at full size:
#: about 80 step-equivalents at the full pixel count, and more working memory per megapixel
#: because the high-res pass keeps two latents and decodes a large image untiled.
BAKE_DEFAULT_SIZE = (2048, 2048)
BAKE_STEP_EQUIVALENTS = 80
BAKE_WORK_GB_PER_MP = 2.4  # 4.9 + 1 + 2.4 x 4.19 MP = 15.97 -> 16 GB at 2048x2048
BAKE_OVERHEAD_S = 2.0
#: comfyui_workflow without a graph: an SDXL txt2img graph with ComfyUI's default 20 steps.
WORKFLOW_DEFAULT_SIZE = (1024, 1024)

# --------------------------------------------------------------------------------------------
# Constants: upscale models (ESRGAN-class, ImageUpscaleWithModel)
# --------------------------------------------------------------------------------------------

#: ESRGAN-class weights (RealESRGAN_x4plus 67 MB, 4x-UltraSharp 67 MB): ~0.1 GB.
UPSCALE_MODEL_GB = 0.1
#: ComfyUI upscales in 512 px tiles and reserves 512*512*3 * 4 bytes * scale * 384 for a tile:
#: ~1.2 GB per unit of scale (4.8 GB for a 4x model), whatever the image size ...
UPSCALE_TILE_GB_PER_SCALE = 1.2
#: ... plus the full-size image tensors (fp32 RGB, 12 bytes per output pixel) ...
UPSCALE_IMAGE_GB_PER_OUTPUT_MP = 0.012
#: ... capped: the tiling keeps it bounded (a 16k x 16k output is still ~8 GB).
UPSCALE_WORK_MAX_GB = 12.0
#: A10G seconds per output megapixel for an ESRGAN-class 4x model (~0.8 s for 512 -> 2048).
UPSCALE_SECONDS_PER_OUTPUT_MP = 0.2
UPSCALE_DEFAULT_SCALE = 4

# --------------------------------------------------------------------------------------------
# Constants: voice synthesis (TTS)
# --------------------------------------------------------------------------------------------

#: XTTS-v2 / F5-TTS class models: ~2 GB of weights, ~3 GB of working memory (GPT-style
#: decoding cache, vocoder, speaker conditioning) = 6 GB with the runtime overhead.
TTS_WEIGHTS_GB = 2.0
TTS_WORK_GB = 3.0
#: GPU seconds per second of speech on the A10G (XTTS-v2 streams at RTF ~0.2-0.4 there).
TTS_REAL_TIME_FACTOR = 0.3
#: Per line: text normalisation, speaker conditioning, writing the file.
TTS_SECONDS_PER_LINE = 0.5
#: Speech assumed per line when neither audio_seconds nor total_bytes is given.
TTS_DEFAULT_SECONDS_PER_LINE = 10.0
#: Bytes per second of the WAV files total_bytes is read as: 16-bit PCM, 44.1 kHz, mono.
WAV_BYTES_PER_SECOND = 88_200

# --------------------------------------------------------------------------------------------
# Constants: translation (LLM-assisted)
# --------------------------------------------------------------------------------------------

#: A 7-8 B parameter instruction LLM quantised to 4 bits (Q4_K_M / AWQ: ~4.5 GB of weights)
#: plus a 2.5 GB context / KV cache: 8 GB with the runtime overhead.
LLM_WEIGHTS_GB = 4.5
LLM_CONTEXT_GB = 2.5
#: Characters of source text translated per second on the A10G: ~40-50 generated tokens/s for
#: a 4-bit 7B model in one stream, the output about as long as the input, ~3 characters per
#: token, plus reading the prompt.
TRANSLATION_CHARS_PER_SECOND = 150.0
#: Per line: the instruction prompt around each line.
TRANSLATION_SECONDS_PER_LINE = 0.25
#: Characters assumed per line when neither characters nor (text) total_bytes is given.
TRANSLATION_DEFAULT_CHARS_PER_LINE = 200

# --------------------------------------------------------------------------------------------
# Constants: reading graphs
# --------------------------------------------------------------------------------------------

MAX_GRAPH_NODES = 5000
MAX_SIDE = 65_536
MAX_BATCH = 4096
MAX_STEPS = 10_000
MAX_SCALE = 16.0
MAX_UNKNOWN_LISTED = 5

CHECKPOINT_LOADERS = frozenset(
    {
        "CheckpointLoaderSimple",
        "CheckpointLoader",
        "ImageOnlyCheckpointLoader",
        "unCLIPCheckpointLoader",
    }
)
UNET_LOADERS = frozenset({"UNETLoader", "UnetLoaderGGUF", "UnetLoaderGGUFAdvanced"})
CLIP_LOADERS = frozenset(
    {
        "CLIPLoader",
        "DualCLIPLoader",
        "TripleCLIPLoader",
        "QuadrupleCLIPLoader",
        "CLIPLoaderGGUF",
        "DualCLIPLoaderGGUF",
        "TripleCLIPLoaderGGUF",
    }
)
VAE_LOADERS = frozenset({"VAELoader"})
LORA_LOADERS = frozenset({"LoraLoader", "LoraLoaderModelOnly"})
CONTROLNET_LOADERS = frozenset({"ControlNetLoader", "DiffControlNetLoader"})
UPSCALE_LOADERS = frozenset({"UpscaleModelLoader"})
LATENT_SOURCES = frozenset(
    {
        "EmptyLatentImage",
        "EmptySD3LatentImage",
        "StableCascade_EmptyLatentImage",
        "EmptyHunyuanLatentVideo",
        "EmptyMochiLatentVideo",
        "EmptyLTXVLatentVideo",
        "EmptyCosmosLatentVideo",
    }
)
VIDEO_LATENT_SOURCES = frozenset(
    {
        "EmptyHunyuanLatentVideo",
        "EmptyMochiLatentVideo",
        "EmptyLTXVLatentVideo",
        "EmptyCosmosLatentVideo",
    }
)
SAMPLERS = frozenset({"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"})
SCALE_TO_SIZE = frozenset({"LatentUpscale", "ImageScale"})
SCALE_BY = frozenset({"LatentUpscaleBy", "ImageScaleBy"})
MODEL_UPSCALERS = frozenset({"ImageUpscaleWithModel"})

#: ComfyUI core nodes that take no noteworthy VRAM or time of their own (or whose cost the
#: samplers / loaders above already count). Anything else that is not recognised is reported
#: as an unknown node type.
UTILITY_NODES = frozenset(
    {
        "CLIPTextEncode",
        "CLIPTextEncodeSDXL",
        "CLIPTextEncodeSDXLRefiner",
        "CLIPTextEncodeFlux",
        "CLIPTextEncodeSD3",
        "CLIPTextEncodeHunyuanDiT",
        "CLIPSetLastLayer",
        "ConditioningCombine",
        "ConditioningAverage",
        "ConditioningConcat",
        "ConditioningSetArea",
        "ConditioningSetAreaPercentage",
        "ConditioningSetMask",
        "ConditioningSetTimestepRange",
        "ConditioningZeroOut",
        "ControlNetApply",
        "ControlNetApplyAdvanced",
        "ControlNetApplySD3",
        "SetUnionControlNetType",
        "CLIPVisionLoader",
        "CLIPVisionEncode",
        "unCLIPConditioning",
        "StyleModelLoader",
        "StyleModelApply",
        "GLIGENLoader",
        "GLIGENTextBoxApply",
        "InpaintModelConditioning",
        "VAEDecode",
        "VAEDecodeTiled",
        "VAEEncode",
        "VAEEncodeTiled",
        "VAEEncodeForInpaint",
        "SetLatentNoiseMask",
        "LatentFromBatch",
        "RepeatLatentBatch",
        "LatentComposite",
        "LatentBlend",
        "LatentCrop",
        "LatentFlip",
        "LatentRotate",
        "ImageScaleToTotalPixels",
        "ImageCrop",
        "ImageInvert",
        "ImageBatch",
        "ImagePadForOutpaint",
        "ImageBlend",
        "ImageBlur",
        "ImageSharpen",
        "ImageCompositeMasked",
        "LoadImage",
        "LoadImageMask",
        "SaveImage",
        "PreviewImage",
        "SaveAnimatedWEBP",
        "SaveAnimatedPNG",
        "SaveLatent",
        "LoadLatent",
        "LoadAudio",
        "SaveAudio",
        "PreviewAudio",
        "FluxGuidance",
        "BasicGuider",
        "CFGGuider",
        "DualCFGGuider",
        "BasicScheduler",
        "KarrasScheduler",
        "ExponentialScheduler",
        "PolyexponentialScheduler",
        "SDTurboScheduler",
        "AlignYourStepsScheduler",
        "BetaSamplingScheduler",
        "LaplaceScheduler",
        "VPScheduler",
        "GITSScheduler",
        "SplitSigmas",
        "SplitSigmasDenoise",
        "FlipSigmas",
        "KSamplerSelect",
        "SamplerEulerAncestral",
        "SamplerDPMPP_2M_SDE",
        "SamplerDPMPP_SDE",
        "RandomNoise",
        "DisableNoise",
        "ModelSamplingDiscrete",
        "ModelSamplingContinuousEDM",
        "ModelSamplingSD3",
        "ModelSamplingAuraFlow",
        "ModelSamplingFlux",
        "RescaleCFG",
        "FreeU",
        "FreeU_V2",
        "DifferentialDiffusion",
        "PerturbedAttentionGuidance",
        "SelfAttentionGuidance",
        "PatchModelAddDownscale",
        "HypernetworkLoader",
        "UpscaleModelLoader",
    }
)

#: A class_type or model name with one of these (case-insensitive) is a text-to-speech node.
_TTS_RE = re.compile(r"tts|bark|tortoise|(?<![0-9a-f])f5(?![0-9a-f])", re.IGNORECASE)
_GGUF_QUANT_RE = re.compile(r"(?:^|[^a-z0-9])i?q([2-8])(?:[^0-9]|$)")
_SCALE_RE = re.compile(r"(?:^|[^a-z0-9])([1-8])x(?![a-z]*\d)|x([1-8])(?![0-9])")

Aspect = Literal["vram", "time", "both"]

# --------------------------------------------------------------------------------------------
# Notes: the assumptions an estimate rests on
# --------------------------------------------------------------------------------------------


@dataclass
class _Notes:
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
class _Figures:
    vram_gb: float
    seconds: float
    graph: GraphSummary | None = None


def _num(value: float, digits: int = 1) -> str:
    """``12``, ``4.9``, ``0.38``: a number without trailing zeros."""
    return f"{round(value, digits):g}"


def _secs(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.0f} s"
    return f"{_num(seconds, 1)} s"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _count(value: float) -> str:
    return f"{round(value):,}"


def _mp(width: float, height: float) -> float:
    return width * height / 1_000_000


def _size(width: float, height: float) -> str:
    return f"{round(width)}x{round(height)}"


_NOUNS = {"sprite": "sprite", "cg": "CG", "audio": "voice line", "text": "line"}


def _noun(workload: Workload) -> str:
    return _NOUNS.get(workload.asset_type or "", "item")


# --------------------------------------------------------------------------------------------
# estimate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reference:
    name: str
    vram_gb: float
    time_scale: float  # reference-GPU seconds per A10G second


def _reference(catalog: Catalog | None, notes: _Notes) -> _Reference:
    if catalog is None:
        return _Reference(CALIBRATION_GPU, CALIBRATION_GPU_VRAM_GB, 1.0)
    ref = catalog.reference
    calibration = catalog.gpu(CALIBRATION_GPU)
    if calibration is None:
        notes.add(
            "time",
            f"The per-item times were measured for the {CALIBRATION_GPU}, which this catalog "
            f"does not list; assumed the reference GPU ({ref.name}) is as fast.",
        )
        return _Reference(ref.name, ref.vram_gb, 1.0)
    # time on the reference = time on the A10G x (A10G speed / reference speed); ref speed = 1
    return _Reference(ref.name, ref.vram_gb, calibration.relative_throughput)


def estimate(workload: Workload, catalog: Catalog | None = None) -> Requirements:
    """The VRAM and GPU-hours (on the reference GPU) ``workload`` needs, and why.

    An explicit ``workload.vram_gb`` / ``workload.gpu_hours`` replaces the estimate of that
    figure. A workflow graph is read even then, and for every kind (a malformed one raises
    ``ValueError``); only kind ``comfyui_workflow`` takes its figures from the graph.
    """
    notes = _Notes()
    ref = _reference(catalog, notes)
    figures = _ESTIMATORS[workload.kind](workload, notes)
    if workload.workflow is not None and workload.kind != "comfyui_workflow":
        # read (and so validate) the graph, and show what it loads; the kind's calibrated
        # heuristics still give the figures
        summary = _analyse(workload.workflow, None, _Notes()).summary
        notes.add(
            "both",
            f"Read the attached workflow ({summary.nodes} nodes), but the figures use the "
            f"{workload.label} heuristics above; use kind comfyui_workflow to estimate from "
            "the graph itself.",
        )
        figures = _Figures(figures.vram_gb, figures.seconds, summary)

    vram_given = workload.vram_gb is not None
    time_given = workload.gpu_hours is not None
    given: list[str] = []
    if workload.vram_gb is not None:
        vram = workload.vram_gb
        given.append(f"VRAM need given in the request: {_num(vram, 2)} GB.")
    else:
        vram = _round_vram(figures.vram_gb)
    if workload.gpu_hours is not None:
        hours = workload.gpu_hours
        given.append(f"GPU time given in the request: {_num(hours, 4)} hours on the {ref.name}.")
    else:
        hours = _round_hours(figures.seconds * ref.time_scale)
        notes.add(
            "time",
            f"GPU-hours are hours on the reference GPU, the {ref.name} "
            f"({_num(ref.vram_gb)} GB); a faster GPU needs proportionally less time.",
        )

    if vram_given and time_given:
        source: Literal["estimate", "explicit", "partly_explicit"] = "explicit"
    elif vram_given or time_given:
        source = "partly_explicit"
    else:
        source = "estimate"
    return Requirements(
        vram_gb=vram,
        gpu_hours=hours,
        source=source,
        assumptions=given + notes.select(vram_given=vram_given, time_given=time_given),
        graph=figures.graph,
    )


def _round_vram(gb: float) -> float:
    # round(…, 6) first so that float noise (8.0000000001) does not add a whole step
    steps = math.ceil(round(gb / VRAM_STEP_GB, 6))
    return max(VRAM_FLOOR_GB, steps * VRAM_STEP_GB)


def _round_hours(seconds: float) -> float:
    if seconds <= 0:
        return 0.0
    hours = round(max(seconds, MIN_WORK_SECONDS) / 3600, HOURS_DECIMALS)
    return max(hours, 0.1**HOURS_DECIMALS)


def _image_size(workload: Workload, default: tuple[int, int], notes: _Notes) -> tuple[int, int]:
    if workload.width is not None and workload.height is not None:
        return workload.width, workload.height
    notes.add(
        "both",
        f"Assumed {_size(*default)} px per {_noun(workload)} (no width/height given).",
    )
    return default


def _cap_generation(gb: float, notes: _Notes) -> float:
    if gb > GENERATION_MAX_GB:
        notes.add(
            "vram",
            f"Capped the VRAM estimate at {_num(GENERATION_MAX_GB)} GB: at this size ComfyUI "
            "decodes in tiles, and sizes this large need a tiled workflow anyway.",
        )
        return GENERATION_MAX_GB
    return gb


def _sdxl_vram_note(notes: _Notes, work_gb_per_mp: float) -> None:
    fam = FAMILIES["sdxl"]
    notes.add(
        "vram",
        f"Assumed an SDXL-class model: {_num(SDXL_RESIDENT_GB)} GB of weights stay on the GPU "
        f"while sampling (its {_num(fam.text_encoder_gb)} GB of text encoders are unloaded "
        f"after encoding the prompt), plus {_num(work_gb_per_mp)} GB of working memory per "
        f"megapixel and {_num(RUNTIME_OVERHEAD_GB)} GB for the CUDA runtime.",
    )


def _sdxl_job(
    workload: Workload,
    notes: _Notes,
    *,
    default: tuple[int, int],
    steps: int,
    work_gb_per_mp: float,
    overhead_s: float,
    what: str,
    steps_text: str = "sampler steps",
) -> _Figures:
    width, height = _image_size(workload, default, notes)
    mp = _mp(width, height)
    fam = FAMILIES["sdxl"]
    _sdxl_vram_note(notes, work_gb_per_mp)
    vram = _cap_generation(SDXL_RESIDENT_GB + RUNTIME_OVERHEAD_GB + work_gb_per_mp * mp, notes)
    per_item = steps * mp * fam.seconds_per_step_mp + overhead_s
    notes.add(
        "time",
        f"About {_secs(per_item)} per {_size(width, height)} {_noun(workload)} on the "
        f"{CALIBRATION_GPU} ({what}: {steps} {steps_text} at "
        f"{_num(fam.seconds_per_step_mp, 2)} s per step per megapixel, plus "
        f"{_num(overhead_s)} s to decode and save).",
    )
    return _Figures(vram, per_item * workload.items)


def _estimate_sprite(workload: Workload, notes: _Notes) -> _Figures:
    return _sdxl_job(
        workload,
        notes,
        default=SPRITE_DEFAULT_SIZE,
        steps=SPRITE_STEPS,
        work_gb_per_mp=FAMILIES["sdxl"].work_gb_per_mp,
        overhead_s=PER_IMAGE_OVERHEAD_S,
        what="SDXL-class text-to-image",
    )


def _estimate_remix(workload: Workload, notes: _Notes) -> _Figures:
    return _sdxl_job(
        workload,
        notes,
        default=REMIX_DEFAULT_SIZE,
        steps=REMIX_STEPS,
        work_gb_per_mp=FAMILIES["sdxl"].work_gb_per_mp,
        overhead_s=REMIX_OVERHEAD_S,
        what="SDXL-class image-to-image remix",
    )


def _estimate_bake(workload: Workload, notes: _Notes) -> _Figures:
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


def _estimate_super_res(workload: Workload, notes: _Notes) -> _Figures:
    width, height = _image_size(workload, SUPER_RES_DEFAULT_SIZE, notes)
    mp = _mp(width, height)
    noun = _noun(workload)
    raw = SUPER_RES_BASE_GB + SUPER_RES_GB_PER_MP * mp
    notes.add(
        "vram",
        f"Assumed 4x super-resolution (a model upscale with tiled refinement): about "
        f"{_num(SUPER_RES_BASE_GB)} GB plus {_num(SUPER_RES_GB_PER_MP)} GB per megapixel of one "
        f"{noun}, at least {_num(SUPER_RES_MIN_GB)} GB.",
    )
    if raw > SUPER_RES_MAX_GB:
        notes.add(
            "vram",
            f"Capped the VRAM estimate at {_num(SUPER_RES_MAX_GB)} GB: a {noun} this large "
            "is processed in tiles.",
        )
    vram = min(max(raw, SUPER_RES_MIN_GB), SUPER_RES_MAX_GB)
    per_item = SUPER_RES_SECONDS_PER_MP * mp
    notes.add(
        "time",
        f"About {_secs(per_item)} per {_size(width, height)} {noun} on the {CALIBRATION_GPU} "
        f"(4x super-resolution, tiled; {_num(SUPER_RES_SECONDS_PER_MP)} s per megapixel).",
    )
    return _Figures(vram, per_item * workload.items)


def _speech_seconds(workload: Workload, notes: _Notes) -> float:
    """Seconds of speech, all items together, from audio_seconds, total_bytes or a default."""
    if workload.audio_seconds is not None:
        return workload.audio_seconds
    if workload.total_bytes is not None:
        seconds = workload.total_bytes / WAV_BYTES_PER_SECOND
        notes.add(
            "time",
            f"Took the audio length from the input size: {_count(workload.total_bytes)} bytes "
            f"read as 16-bit 44.1 kHz mono WAV ({WAV_BYTES_PER_SECOND:,} bytes per second) "
            f"is about {_secs(seconds)} of audio.",
        )
        return seconds
    notes.add(
        "time",
        f"Assumed {_num(TTS_DEFAULT_SECONDS_PER_LINE)} s of speech per voice line "
        "(no audio_seconds or total_bytes given).",
    )
    return TTS_DEFAULT_SECONDS_PER_LINE * workload.items


def _tts_seconds(workload: Workload, notes: _Notes) -> float:
    speech = _speech_seconds(workload, notes)
    notes.add(
        "time",
        f"About {_num(TTS_REAL_TIME_FACTOR, 2)} s of GPU time per second of speech on the "
        f"{CALIBRATION_GPU} (real-time factor {_num(TTS_REAL_TIME_FACTOR, 2)}), plus "
        f"{_num(TTS_SECONDS_PER_LINE, 2)} s per voice line.",
    )
    return speech * TTS_REAL_TIME_FACTOR + TTS_SECONDS_PER_LINE * workload.items


def _tts_vram_note(notes: _Notes) -> None:
    total = TTS_WEIGHTS_GB + TTS_WORK_GB + RUNTIME_OVERHEAD_GB
    notes.add(
        "vram",
        f"Assumed a text-to-speech model of the XTTS-v2 / F5-TTS class: about {_num(total)} GB "
        f"of VRAM ({_num(TTS_WEIGHTS_GB)} GB of weights, {_num(TTS_WORK_GB)} GB of working "
        f"memory, {_num(RUNTIME_OVERHEAD_GB)} GB for the CUDA runtime).",
    )


def _estimate_voice(workload: Workload, notes: _Notes) -> _Figures:
    _tts_vram_note(notes)
    vram = TTS_WEIGHTS_GB + TTS_WORK_GB + RUNTIME_OVERHEAD_GB
    return _Figures(vram, _tts_seconds(workload, notes))


def _estimate_translation(workload: Workload, notes: _Notes) -> _Figures:
    vram = LLM_WEIGHTS_GB + LLM_CONTEXT_GB + RUNTIME_OVERHEAD_GB
    notes.add(
        "vram",
        f"Assumed GPU-assisted translation with a 7-8B-parameter language model quantised to "
        f"4 bits: about {_num(vram)} GB of VRAM ({_num(LLM_WEIGHTS_GB)} GB of weights, "
        f"{_num(LLM_CONTEXT_GB)} GB of context cache, {_num(RUNTIME_OVERHEAD_GB)} GB for the "
        "CUDA runtime).",
    )
    if workload.characters is not None:
        chars = float(workload.characters)
    elif workload.total_bytes is not None and workload.asset_type != "audio":
        chars = float(workload.total_bytes)
        notes.add(
            "time",
            f"Took 1 byte as about 1 character of text (total_bytes given, no characters): "
            f"{_count(chars)} characters. UTF-8 Japanese or Chinese text has 3 bytes per "
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
        f"About {_num(TRANSLATION_CHARS_PER_SECOND)} characters per second on the "
        f"{CALIBRATION_GPU}, plus {_num(TRANSLATION_SECONDS_PER_LINE, 2)} s per line.",
    )
    seconds = chars / TRANSLATION_CHARS_PER_SECOND + TRANSLATION_SECONDS_PER_LINE * workload.items
    return _Figures(vram, seconds)


def _estimate_workflow(workload: Workload, notes: _Notes) -> _Figures:
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
            f"No workflow given: assumed an SDXL text-to-image graph at {_size(width, height)} "
            f"px with {DEFAULT_STEPS} steps.",
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
    analysis = _analyse(workload.workflow, fallback, notes)
    seconds = analysis.run_seconds * workload.items
    if analysis.has_tts:
        seconds += _tts_seconds(workload, notes)
    if workload.items > 1:
        notes.add("time", f"The graph runs once per item: {workload.items:,} runs.")
    return _Figures(analysis.vram_gb, seconds, analysis.summary)


_ESTIMATORS: dict[str, Callable[[Workload, _Notes], _Figures]] = {
    "sprite_generation": _estimate_sprite,
    "cg_remix": _estimate_remix,
    "cg_super_res": _estimate_super_res,
    "cg_bake": _estimate_bake,
    "voice_synthesis": _estimate_voice,
    "translation": _estimate_translation,
    "comfyui_workflow": _estimate_workflow,
}

# --------------------------------------------------------------------------------------------
# Reading a graph: structure
# --------------------------------------------------------------------------------------------

_EXPORT_HINT = "export the workflow again with 'Save (API Format)'"


@dataclass(frozen=True)
class _Node:
    id: str
    class_type: str
    inputs: Mapping[str, Any]
    links: dict[str, tuple[str, int]]  # input name -> (source node id, output index)

    @property
    def where(self) -> str:
        return f"node {self.id!r} ({self.class_type})"


def _unwrap(graph: Mapping[str, Any]) -> Mapping[str, Any]:
    inner = graph.get("prompt")
    if isinstance(inner, Mapping) and "class_type" not in inner:
        return inner
    return graph


def _parse(graph: Any) -> dict[str, _Node]:
    if not isinstance(graph, Mapping):
        raise ValueError(
            f"the workflow must be a JSON object of nodes, not {type(graph).__name__}; "
            f"{_EXPORT_HINT}"
        )
    graph = _unwrap(graph)
    if isinstance(graph.get("nodes"), list) or isinstance(graph.get("links"), list):
        raise ValueError(
            "this is a ComfyUI UI workflow (top-level 'nodes' and 'links' lists), not the API "
            "format the estimator reads: in ComfyUI, enable Dev mode in the settings and "
            "export the workflow with 'Save (API Format)'"
        )
    if not graph:
        raise ValueError(f"the workflow graph is empty; {_EXPORT_HINT}")
    if len(graph) > MAX_GRAPH_NODES:
        raise ValueError(f"the workflow has {len(graph)} nodes; at most {MAX_GRAPH_NODES} are read")
    nodes: dict[str, _Node] = {}
    for raw_id, raw in graph.items():
        nid = str(raw_id)
        if not isinstance(raw, Mapping):
            raise ValueError(
                f"node {nid!r} is not a node object ({type(raw).__name__}): every node of an "
                'API-format graph is {"class_type": ..., "inputs": {...}}; ' + _EXPORT_HINT
            )
        class_type = raw.get("class_type")
        if not isinstance(class_type, str) or not class_type.strip():
            raise ValueError(
                f"node {nid!r} has no class_type: every node of an API-format graph is "
                '{"class_type": ..., "inputs": {...}}; ' + _EXPORT_HINT
            )
        inputs = raw.get("inputs")
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, Mapping):
            raise ValueError(
                f"node {nid!r} ({class_type}): 'inputs' must be an object of input names, not "
                f"{type(inputs).__name__}; {_EXPORT_HINT}"
            )
        links: dict[str, tuple[str, int]] = {}
        for name, value in inputs.items():
            if isinstance(value, list | tuple):
                links[str(name)] = _link(nid, class_type, str(name), value)
        nodes[nid] = _Node(nid, class_type, inputs, links)
    for node in nodes.values():
        for name, (src, _) in node.links.items():
            if src not in nodes:
                raise ValueError(
                    f"{node.where}, input {name!r}: links to node {src!r}, which is not in the "
                    f"graph; {_EXPORT_HINT}"
                )
    return nodes


def _link(
    nid: str, class_type: str, name: str, value: list[Any] | tuple[Any, ...]
) -> tuple[str, int]:
    ok = (
        len(value) == 2
        and isinstance(value[0], str | int)
        and not isinstance(value[0], bool)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
        and value[1] >= 0
    )
    if not ok:
        raise ValueError(
            f"node {nid!r} ({class_type}), input {name!r}: {list(value)!r} is not a link; a "
            f'link is ["<node id>", <output index>] (a list stands for a link in the API '
            f"format); {_EXPORT_HINT}"
        )
    return str(value[0]), int(value[1])


def _topological(nodes: dict[str, _Node]) -> list[str]:
    """Node ids, every node after the nodes it takes inputs from; ``ValueError`` on a cycle."""
    indegree: dict[str, int] = {}
    consumers: dict[str, list[str]] = {nid: [] for nid in nodes}
    for nid, node in nodes.items():
        sources = list(dict.fromkeys(src for src, _ in node.links.values()))
        indegree[nid] = len(sources)
        for src in sources:
            consumers[src].append(nid)
    ready = deque(nid for nid, n in indegree.items() if n == 0)
    order: list[str] = []
    while ready:
        nid = ready.popleft()
        order.append(nid)
        for consumer in consumers[nid]:
            indegree[consumer] -= 1
            if indegree[consumer] == 0:
                ready.append(consumer)
    if len(order) < len(nodes):
        stuck = next(nid for nid in nodes if indegree[nid] > 0)
        raise ValueError(
            f"the graph has a cycle through {nodes[stuck].where}: a node's output feeds back "
            f"into its own inputs, which ComfyUI cannot run; {_EXPORT_HINT}"
        )
    return order


def _literal(node: _Node, name: str, *, lo: float, hi: float, integer: bool) -> float | None:
    """The literal number of input ``name``; ``None`` when missing or a link; else ValueError."""
    if name in node.links or name not in node.inputs:
        return None
    value = node.inputs[name]
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and integer and isinstance(value, float) and not value.is_integer():
        ok = False
    if not ok or not (lo <= float(value) <= hi) or math.isnan(float(value)):
        kind = "a whole number" if integer else "a number"
        raise ValueError(
            f"{node.where}, input {name!r}: {value!r} is not {kind} from {_num(lo, 2)} to "
            f"{_num(hi, 2)}; fix the value in ComfyUI and export again with 'Save (API Format)'"
        )
    return float(value)


def _text(node: _Node, name: str) -> str | None:
    value = node.inputs.get(name)
    if name in node.links or not isinstance(value, str):
        return None
    return value


# --------------------------------------------------------------------------------------------
# Reading a graph: models
# --------------------------------------------------------------------------------------------

_SD3_MARKERS = ("sd3", "sd_3", "stable-diffusion-3", "stable_diffusion_3")
_VIDEO_MARKERS = (
    "svd",
    "stable_video",
    "stable-video",
    "hunyuan_video",
    "hunyuanvideo",
    "wan2",
    "wan_2",
    "ltx",
    "mochi",
    "cosmos",
)
_SDXL_MARKERS = ("sdxl", "xl", "pony", "illustrious", "juggernaut")
_SD2_MARKERS = ("v2-", "sd2", "sd_2", "768-v")
_SD15_MARKERS = ("v1-5", "sd15", "sd1.5", "sd_1.5", "1.5", "v1-4", "sd14", "sd-v1")


def _family_of(name: str) -> str:
    """The model family a checkpoint / diffusion model file name suggests ("unknown" if none)."""
    n = name.lower()
    if "flux" in n:
        return "flux"
    if any(m in n for m in _SD3_MARKERS):
        return "sd3"
    if any(m in n for m in _VIDEO_MARKERS):
        return "video"
    if any(m in n for m in _SDXL_MARKERS):
        return "sdxl"
    if any(m in n for m in _SD2_MARKERS):
        return "sd2"
    if any(m in n for m in _SD15_MARKERS):
        return "sd15"
    return "unknown"


def _bits(name: str, weight_dtype: str | None) -> tuple[float, str]:
    """Bits per weight a model file is held in, and how that reads ("fp16", "GGUF Q4")."""
    n = name.lower()
    if n.endswith(".gguf") or "gguf" in n:
        found = _GGUF_QUANT_RE.search(n)
        quant = int(found[1]) if found else GGUF_DEFAULT_QUANT
        quant = quant if quant in GGUF_BITS else GGUF_DEFAULT_QUANT
        return GGUF_BITS[quant], f"GGUF Q{quant}"
    if "fp8" in n or "float8" in n or (weight_dtype or "").lower().startswith("fp8"):
        return FP8_BITS, "fp8"
    if "nf4" in n:
        return NF4_BITS, "NF4"
    return FP16_BITS, "fp16"


@dataclass(frozen=True)
class _Diffusion:
    use: ModelUse
    resident_gb: float  # kept on the GPU while sampling
    text_encoder_gb: float  # inside a checkpoint; unloaded after encoding
    dtype: str = "fp16"


def _checkpoint_model(node: _Node, notes: _Notes) -> _Diffusion:
    name = _text(node, "ckpt_name")
    family = _family_of(name) if name else "unknown"
    fam = FAMILIES[family]
    bits, dtype = _bits(name or "", None)
    te = fam.text_encoder_gb
    total = fam.checkpoint_gb
    if family == "flux":
        # an all-in-one Flux checkpoint: the model and T5 in the file's precision
        te = T5XXL_PARAMS_B * bits / 8 + CLIP_L_GB
        total = FLUX_PARAMS_B * bits / 8 + te + VAE_GB
    elif family == "sd3":
        n = (name or "").lower()
        params = SD3_LARGE_PARAMS_B if "large" in n else SD3_MEDIUM_PARAMS_B
        if "t5" in n:
            t5_bits = FP8_BITS if "fp8" in n else FP16_BITS
            te += T5XXL_PARAMS_B * t5_bits / 8
        total = params * 2 + te + VAE_GB
    elif dtype != "fp16":
        total *= bits / FP16_BITS
        te *= bits / FP16_BITS
    if name is None:
        notes.add(
            "both",
            f"{_cap(node.where)} takes its model name from another node; assumed an "
            f"SDXL-class checkpoint ({_num(total)} GB).",
        )
    elif family == "unknown":
        notes.add(
            "both",
            f"Could not tell which model family {name!r} is; assumed an SDXL-class model "
            f"({_num(total)} GB of weights).",
        )
    use = ModelUse(
        node=node.id,
        class_type=node.class_type,
        name=name or "(from another node)",
        family=family,
        vram_gb=round(total, 2),
    )
    return _Diffusion(use, total - te, te, dtype)


def _unet_model(node: _Node, clip_hint: str | None, notes: _Notes) -> _Diffusion:
    name = _text(node, "unet_name")
    family = _family_of(name) if name else "unknown"
    if family == "unknown" and clip_hint is not None:
        family = clip_hint
    bits, dtype = _bits(name or "", _text(node, "weight_dtype"))
    n = (name or "").lower()
    if family == "flux":
        params = FLUX_PARAMS_B
    elif family == "sd3":
        params = SD3_LARGE_PARAMS_B if "large" in n else SD3_MEDIUM_PARAMS_B
    elif family == "video":
        params = VIDEO_PARAMS_B
    else:
        fam = FAMILIES[family]
        params = (fam.checkpoint_gb - fam.text_encoder_gb) / 2
    weights = params * bits / 8
    label = repr(name) if name else "the diffusion model"
    if name is None:
        notes.add(
            "both",
            f"{_cap(node.where)} takes its model name from another node; assumed "
            f"{'an SDXL-class' if family == 'unknown' else 'a ' + FAMILIES[family].label} "
            f"model ({_num(weights)} GB of weights in {dtype}).",
        )
    elif family == "unknown":
        notes.add(
            "both",
            f"Could not tell which model family {label} is; assumed an SDXL-class model "
            f"({_num(weights)} GB of weights in {dtype}).",
        )
    if family == "video":
        notes.add(
            "both",
            f"Assumed {label} is a 13B-class video model ({_num(weights)} GB in {dtype}); "
            "video models vary widely, so give vram_gb / gpu_hours if you know better.",
        )
    use = ModelUse(
        node=node.id,
        class_type=node.class_type,
        name=name or "(from another node)",
        family=family,
        vram_gb=round(weights, 2),
    )
    return _Diffusion(use, weights, 0.0, dtype)


def _text_encoder_gb(name: str) -> tuple[float, bool]:
    """The VRAM of a text encoder file, and whether its kind was recognised."""
    n = name.lower()
    bits, _ = _bits(name, None)
    for markers, params in TEXT_ENCODER_PARAMS_B:
        if any(m in n for m in markers):
            return params * bits / 8, True
    return TEXT_ENCODER_DEFAULT_GB, False


def _upscale_scale(name: str | None) -> int:
    if not name:
        return UPSCALE_DEFAULT_SCALE
    found = _SCALE_RE.search(name.lower())
    if not found:
        return UPSCALE_DEFAULT_SCALE
    return int(found[1] or found[2])


_MODEL_INPUT_RE = re.compile(r"model|_name$|^name$|voice|speaker_model", re.IGNORECASE)


def _tts_name(node: _Node) -> str | None:
    """The TTS model name a node loads / uses, or its class_type; ``None`` if not TTS."""
    for key, value in node.inputs.items():
        if (
            isinstance(value, str)
            and key not in node.links
            and _MODEL_INPUT_RE.search(str(key))
            and _TTS_RE.search(value)
        ):
            return value
    if _TTS_RE.search(node.class_type):
        return node.class_type
    return None


def _is_loader(node: _Node) -> bool:
    if "load" in node.class_type.lower():
        return True
    return any(
        isinstance(v, str) and k not in node.links and _MODEL_INPUT_RE.search(str(k))
        for k, v in node.inputs.items()
    )


# --------------------------------------------------------------------------------------------
# Reading a graph: sizes, samplers, upscalers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Size:
    width: float
    height: float
    batch: int
    factor: float  # linear size relative to the latent the graph generated


_PASS_THROUGH_KEYS = ("latent_image", "samples", "latent", "image", "images", "pixels")
_SAMPLER_LATENT_KEYS = ("latent_image",)


@dataclass
class _Analysis:
    summary: GraphSummary
    vram_gb: float
    run_seconds: float
    has_tts: bool


@dataclass
class _Reader:
    nodes: dict[str, _Node]
    fallback: tuple[int, int] | None
    notes: _Notes
    order: list[str] = field(default_factory=list)
    diffusion: dict[str, _Diffusion] = field(default_factory=dict)
    models: list[ModelUse] = field(default_factory=list)
    extra_resident_gb: float = 0.0  # VAE, LoRA, ControlNet, upscale model weights
    clip_gb: float = 0.0
    upscale_scales: dict[str, int] = field(default_factory=dict)
    tts_nodes: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    sizes: dict[str, _Size | None] = field(default_factory=dict)
    latent_sizes: list[tuple[float | None, float | None, int]] = field(default_factory=list)

    # ---- models ------------------------------------------------------------------------

    def read_models(self) -> None:
        clip_hint = self._clip_family_hint()
        controlnets: list[_Node] = []
        for node in self.nodes.values():
            ct = node.class_type
            if ct in CHECKPOINT_LOADERS:
                d = _checkpoint_model(node, self.notes)
                self.diffusion[node.id] = d
                self.models.append(d.use)
            elif ct in UNET_LOADERS:
                d = _unet_model(node, clip_hint, self.notes)
                self.diffusion[node.id] = d
                self.models.append(d.use)
            elif ct in CLIP_LOADERS:
                self._read_clip(node)
            elif ct in VAE_LOADERS:
                self.extra_resident_gb += VAE_GB
                self._add_use(node, _text(node, "vae_name"), "vae", VAE_GB)
            elif ct in LORA_LOADERS:
                self.extra_resident_gb += LORA_GB
                self._add_use(node, _text(node, "lora_name"), "lora", LORA_GB)
            elif ct in CONTROLNET_LOADERS:
                controlnets.append(node)
            elif ct in UPSCALE_LOADERS:
                name = _text(node, "model_name")
                self.upscale_scales[node.id] = _upscale_scale(name)
                self.extra_resident_gb += UPSCALE_MODEL_GB
                self._add_use(node, name, "upscale", UPSCALE_MODEL_GB)
            elif _tts_name(node) is not None:
                self.tts_nodes.append(node.id)
            elif (
                ct not in UTILITY_NODES
                and ct not in LATENT_SOURCES
                and ct not in SAMPLERS
                and ct not in SCALE_TO_SIZE
                and ct not in SCALE_BY
                and ct not in MODEL_UPSCALERS
                and ct not in self.unknown
            ):
                self.unknown.append(ct)
        main = self.main_family
        for node in controlnets:
            name = _text(node, "control_net_name")
            fam = _family_of(name) if name else "unknown"
            if fam not in CONTROLNET_GB:
                fam = main
            gb = CONTROLNET_GB.get(fam, CONTROLNET_DEFAULT_GB)
            self.extra_resident_gb += gb
            self._add_use(node, name, "controlnet", gb)
        self._read_tts()

    def _add_use(self, node: _Node, name: str | None, family: str, gb: float) -> None:
        self.models.append(
            ModelUse(
                node=node.id,
                class_type=node.class_type,
                name=name or "(from another node)",
                family=family,
                vram_gb=round(gb, 2),
            )
        )

    def _clip_family_hint(self) -> str | None:
        for node in self.nodes.values():
            if node.class_type in CLIP_LOADERS:
                kind = (_text(node, "type") or "").lower()
                if kind == "flux":
                    return "flux"
                if kind in ("sd3", "sdxl"):
                    return kind
                if kind in ("hunyuan_video", "mochi", "ltxv", "cosmos", "wan"):
                    return "video"
        return None

    def _read_clip(self, node: _Node) -> None:
        for key in sorted(k for k in node.inputs if str(k).startswith("clip_name")):
            name = _text(node, str(key))
            if name is None:
                gb, known = TEXT_ENCODER_DEFAULT_GB, False
            else:
                gb, known = _text_encoder_gb(name)
            if not known:
                self.notes.add(
                    "vram",
                    f"Could not tell what text encoder {name or 'the linked one'!r} is; assumed "
                    f"{_num(gb)} GB.",
                )
            self.clip_gb += gb
            self._add_use(node, name, "clip", gb)

    def _read_tts(self) -> None:
        if not self.tts_nodes:
            return
        loaders = [nid for nid in self.tts_nodes if _is_loader(self.nodes[nid])]
        for nid in loaders or self.tts_nodes[:1]:
            node = self.nodes[nid]
            self._add_use(node, _tts_name(node), "tts", TTS_WEIGHTS_GB)

    @property
    def main(self) -> _Diffusion | None:
        if not self.diffusion:
            return None
        # the largest; the first in the file on a tie (max keeps the first maximum)
        return max(self.diffusion.values(), key=lambda d: d.resident_gb)

    @property
    def main_family(self) -> str:
        main = self.main
        if main is None:
            return "unknown"
        return main.use.family

    # ---- sizes -------------------------------------------------------------------------

    def _fallback_size(self, family: str) -> tuple[int, int, str]:
        if self.fallback is not None:
            return self.fallback[0], self.fallback[1], "the size in the request"
        side = FAMILIES[family].native_side
        return side, side, f"{FAMILIES[family].label}'s native size"

    def read_sizes(self) -> None:
        for nid in self.order:
            self.sizes[nid] = self._size_of(self.nodes[nid])

    def _upstream(self, node: _Node, keys: tuple[str, ...] | None = None) -> _Size | None:
        names = list(keys) if keys is not None else list(_PASS_THROUGH_KEYS)
        if keys is None:
            names += [k for k in node.links if k not in names]
        for name in names:
            link = node.links.get(name)
            if link is not None:
                size = self.sizes.get(link[0])
                if size is not None:
                    return size
        return None

    def _size_of(self, node: _Node) -> _Size | None:
        ct = node.class_type
        if ct in LATENT_SOURCES:
            return self._latent_source(node)
        if ct in SAMPLERS:
            return self._upstream(node, _SAMPLER_LATENT_KEYS)
        if ct in SCALE_TO_SIZE:
            return self._scale_to(node)
        if ct in SCALE_BY:
            base = self._upstream(node)
            scale = _literal(node, "scale_by", lo=0.01, hi=MAX_SCALE, integer=False)
            if base is None or scale is None:
                return base
            return _Size(base.width * scale, base.height * scale, base.batch, base.factor * scale)
        if ct == "ImageScaleToTotalPixels":
            base = self._upstream(node)
            megapixels = _literal(node, "megapixels", lo=0.01, hi=1000.0, integer=False)
            if base is None or megapixels is None:
                return base
            scale = math.sqrt(megapixels / _mp(base.width, base.height))
            return _Size(base.width * scale, base.height * scale, base.batch, base.factor * scale)
        if ct in MODEL_UPSCALERS:
            base = self._upstream(node, ("image",))
            scale = self._model_scale(node)
            if base is None:
                return None
            return _Size(base.width * scale, base.height * scale, base.batch, base.factor * scale)
        if ct == "RepeatLatentBatch":
            base = self._upstream(node, ("samples",))
            amount = _literal(node, "amount", lo=1, hi=MAX_BATCH, integer=True)
            if base is None or amount is None:
                return base
            return _Size(base.width, base.height, base.batch * int(amount), base.factor)
        return self._upstream(node)

    def _model_scale(self, node: _Node) -> int:
        link = node.links.get("upscale_model")
        if link is None:
            return UPSCALE_DEFAULT_SCALE
        return self.upscale_scales.get(link[0], UPSCALE_DEFAULT_SCALE)

    def _latent_source(self, node: _Node) -> _Size:
        width = _literal(node, "width", lo=1, hi=MAX_SIDE, integer=True)
        height = _literal(node, "height", lo=1, hi=MAX_SIDE, integer=True)
        batch = _literal(node, "batch_size", lo=1, hi=MAX_BATCH, integer=True)
        self.latent_sizes.append((width, height, int(batch or 1)))
        fb_w, fb_h, why = self._fallback_size(self.main_family)
        missing = [n for n, v in (("width", width), ("height", height)) if v is None]
        if missing:
            how = "from another node" if any(m in node.links for m in missing) else "nowhere"
            self.notes.add(
                "both",
                f"{_cap(node.where)} takes its {' and '.join(missing)} {how}; assumed "
                f"{_size(width or fb_w, height or fb_h)} px ({why}).",
            )
        if batch is None and "batch_size" in node.links:
            self.notes.add(
                "both",
                f"{_cap(node.where)} takes its batch_size from another node; assumed 1.",
            )
        if node.class_type in VIDEO_LATENT_SOURCES:
            length = node.inputs.get("length")
            self.notes.add(
                "both",
                f"{_cap(node.where)} makes a video latent (length {length!r}); the "
                "estimate counts one frame per batch item, so a video job needs considerably "
                "more: give vram_gb / gpu_hours if you know them.",
            )
        return _Size(width or fb_w, height or fb_h, int(batch or 1), 1.0)

    def _scale_to(self, node: _Node) -> _Size | None:
        base = self._upstream(node)
        width = _literal(node, "width", lo=0, hi=MAX_SIDE, integer=True)
        height = _literal(node, "height", lo=0, hi=MAX_SIDE, integer=True)
        if base is None:
            if width and height:
                return _Size(width, height, 1, 1.0)
            return None
        if width is None or height is None or (width == 0 and height == 0):
            return base
        if width == 0:
            width = base.width * height / base.height
        elif height == 0:
            height = base.height * width / base.width
        factor = base.factor * math.sqrt((width * height) / (base.width * base.height))
        return _Size(width, height, base.batch, factor)

    # ---- samplers ----------------------------------------------------------------------

    def _trace_model(self, node: _Node) -> _Diffusion | None:
        """The loader behind a sampler's model (through LoRAs, patches and guiders)."""
        current: _Node | None = node
        for _ in range(len(self.nodes) + 1):
            if current is None:
                return None
            if current.id in self.diffusion:
                return self.diffusion[current.id]
            nxt = None
            for key in ("model", "guider", "unet"):
                if key in current.links:
                    nxt = self.nodes[current.links[key][0]]
                    break
            current = nxt
        return None

    def _sampler_steps(self, node: _Node) -> tuple[int | None, int]:
        """(steps read, steps run) of a sampler; steps run falls back to DEFAULT_STEPS."""
        steps_node: _Node | None = node
        if node.class_type in ("SamplerCustom", "SamplerCustomAdvanced"):
            steps_node = None
            current: _Node | None = node
            for _ in range(len(self.nodes) + 1):
                link = current.links.get("sigmas") if current is not None else None
                if link is None:
                    break
                current = self.nodes[link[0]]
                if "steps" in current.inputs:
                    steps_node = current
                    break
        steps = None
        if steps_node is not None:
            steps = _literal(steps_node, "steps", lo=1, hi=MAX_STEPS, integer=True)
        if steps is None:
            source = steps_node.where if steps_node is not None else node.where
            self.notes.add(
                "time",
                f"{_cap(source)} does not state its steps (they come from another "
                f"node); assumed {DEFAULT_STEPS}.",
            )
            return None, DEFAULT_STEPS
        run = int(steps)
        if node.class_type == "KSamplerAdvanced":
            start = _literal(node, "start_at_step", lo=0, hi=MAX_STEPS, integer=True) or 0
            end = _literal(node, "end_at_step", lo=0, hi=MAX_STEPS, integer=True)
            run = max(1, int(min(end if end is not None else steps, steps) - start))
        return int(steps), run

    # ---- the whole graph ---------------------------------------------------------------

    def analyse(self) -> _Analysis:
        self.order = _topological(self.nodes)
        self.read_models()
        self.read_sizes()
        notes = self.notes
        work_nodes = [
            self.nodes[nid]
            for nid in self.order
            if self.nodes[nid].class_type in SAMPLERS
            or self.nodes[nid].class_type in MODEL_UPSCALERS
        ]
        samplers = [n for n in work_nodes if n.class_type in SAMPLERS]
        upscalers = [n for n in work_nodes if n.class_type in MODEL_UPSCALERS]

        main = self.main
        if main is None and samplers:
            fam = FAMILIES["unknown"]
            main = _Diffusion(
                ModelUse(node="", class_type="", name="", family="unknown", vram_gb=0.0),
                fam.checkpoint_gb - fam.text_encoder_gb,
                fam.text_encoder_gb,
            )
            notes.add(
                "both",
                f"No model loader the estimator knows feeds the samplers; assumed an SDXL-class "
                f"model ({_num(fam.checkpoint_gb)} GB of weights).",
            )
        if len(self.diffusion) > 1 and main is not None:
            notes.add(
                "vram",
                f"The graph loads {len(self.diffusion)} diffusion models; assumed ComfyUI swaps "
                f"them, so only the largest ({main.use.name}, {_num(main.resident_gb)} GB) "
                "counts at once.",
            )

        work_gb = 0.0
        work_where = ""
        run_seconds = 0.0
        image_batch = 0
        max_steps: int | None = None
        for node in work_nodes:
            if node.class_type in SAMPLERS:
                model = self._trace_model(node) or main
                family = model.use.family if model is not None else "unknown"
                fam = FAMILIES[family]
                size = self.sizes.get(node.id)
                if size is None:
                    fb_w, fb_h, why = self._fallback_size(family)
                    size = _Size(fb_w, fb_h, 1, 1.0)
                    notes.add(
                        "both",
                        f"{_cap(node.where)} starts from an image of unknown size; assumed "
                        f"{_size(fb_w, fb_h)} px ({why}).",
                    )
                read, steps = self._sampler_steps(node)
                if read is not None:
                    max_steps = read if max_steps is None else max(max_steps, read)
                mp = _mp(size.width, size.height) * size.batch
                gb = fam.work_gb_per_mp * mp
                if gb > work_gb:
                    work_gb = gb
                    work_where = (
                        f"{_num(gb)} GB of working memory for {node.where} at "
                        f"{_size(size.width, size.height)} px, batch {size.batch} "
                        f"({_num(fam.work_gb_per_mp)} GB per megapixel for {fam.label})"
                    )
                seconds = steps * mp * fam.seconds_per_step_mp
                run_seconds += seconds
                image_batch = max(image_batch, size.batch)
                notes.add(
                    "time",
                    f"{_cap(node.where)}: {steps} steps at {_size(size.width, size.height)} "
                    f"px, batch {size.batch}, {fam.label}: about {_secs(seconds)} on the "
                    f"{CALIBRATION_GPU} ({_num(fam.seconds_per_step_mp, 2)} s per step per "
                    "megapixel).",
                )
            else:
                scale = self._model_scale(node)
                out = self.sizes.get(node.id)
                if out is None:
                    fb_w, fb_h, why = self._fallback_size(self.main_family)
                    out = _Size(fb_w * scale, fb_h * scale, 1, float(scale))
                    notes.add(
                        "both",
                        f"{_cap(node.where)} upscales an image of unknown size; assumed "
                        f"{_size(fb_w, fb_h)} px ({why}).",
                    )
                out_mp = _mp(out.width, out.height) * out.batch
                gb = min(
                    UPSCALE_TILE_GB_PER_SCALE * scale + UPSCALE_IMAGE_GB_PER_OUTPUT_MP * out_mp,
                    UPSCALE_WORK_MAX_GB,
                )
                if gb > work_gb:
                    work_gb = gb
                    work_where = (
                        f"{_num(gb)} GB of working memory for the {scale}x model upscale in "
                        f"{node.where} (512 px tiles, {_size(out.width, out.height)} px output)"
                    )
                seconds = UPSCALE_SECONDS_PER_OUTPUT_MP * out_mp
                run_seconds += seconds
                image_batch = max(image_batch, out.batch)
                notes.add(
                    "time",
                    f"{_cap(node.where)}: {scale}x model upscale to "
                    f"{_size(out.width, out.height)} px: about {_secs(seconds)} on the "
                    f"{CALIBRATION_GPU} ({_num(UPSCALE_SECONDS_PER_OUTPUT_MP, 2)} s per output "
                    "megapixel).",
                )
        if image_batch:
            run_seconds += PER_IMAGE_OVERHEAD_S * image_batch
            notes.add(
                "time",
                f"Plus {_num(PER_IMAGE_OVERHEAD_S)} s per output image to decode and save it.",
            )

        has_tts = bool(self.tts_nodes)
        if has_tts:
            names = ", ".join(dict.fromkeys(self.nodes[nid].class_type for nid in self.tts_nodes))
            notes.add(
                "both",
                f"The graph has text-to-speech nodes ({names}); they are estimated like a "
                "voice synthesis job.",
            )
            _tts_vram_note(notes)
            if TTS_WORK_GB > work_gb:
                work_gb = TTS_WORK_GB
                work_where = f"{_num(TTS_WORK_GB)} GB of working memory for text-to-speech"

        if not samplers and not upscalers and not has_tts:
            run_seconds = GRAPH_RUN_OVERHEAD_S
            notes.add(
                "both",
                "Found no sampler, upscaler or text-to-speech node the estimator knows; the "
                f"figures cover only ComfyUI's own overhead ({_num(RUNTIME_OVERHEAD_GB)} GB, "
                f"{_num(GRAPH_RUN_OVERHEAD_S)} s per run).",
            )

        resident = (main.resident_gb if main is not None else 0.0) + self.extra_resident_gb
        resident += TTS_WEIGHTS_GB if has_tts else 0.0
        text_encoders = self.clip_gb + (main.text_encoder_gb if main is not None else 0.0)
        sampling = resident + work_gb + RUNTIME_OVERHEAD_GB
        encoding = text_encoders + RUNTIME_OVERHEAD_GB
        vram = max(sampling, encoding)
        if (
            main is not None
            and main.dtype == "fp16"
            and main.use.family in ("flux", "sd3", "video")
            and vram > CALIBRATION_GPU_VRAM_GB
        ):
            notes.add(
                "vram",
                f"This {FAMILIES[main.use.family].label} model in fp16 does not fit a "
                f"{_num(CALIBRATION_GPU_VRAM_GB)} GB GPU with its working memory: ComfyUI can "
                "still run it there by keeping part of the weights in system memory (much "
                "slower), and an fp8 or GGUF version needs about half the VRAM.",
            )
        if resident > 0 or work_gb > 0:
            parts = [f"{_num(resident)} GB of weights kept on the GPU"]
            if work_where:
                parts.append(work_where)
            parts.append(f"{_num(RUNTIME_OVERHEAD_GB)} GB for the CUDA runtime")
            notes.add("vram", "Peak VRAM while generating: " + " + ".join(parts) + ".")
        if text_encoders > 0:
            bigger = "the larger" if encoding > sampling else "the smaller"
            notes.add(
                "vram",
                f"Counted the {_num(text_encoders)} GB of text encoders separately: ComfyUI "
                "unloads them after encoding the prompt when memory is short, so the peak is "
                f"the larger of the two stages (encoding is {bigger} here).",
            )

        if self.unknown:
            listed = ", ".join(self.unknown[:MAX_UNKNOWN_LISTED])
            more = len(self.unknown) - MAX_UNKNOWN_LISTED
            more_text = f" and {more} more" if more > 0 else ""
            notes.add(
                "both",
                f"Ignored {len(self.unknown)} node type{'s' if len(self.unknown) != 1 else ''} "
                f"the estimator does not know: {listed}{more_text}; they may need more VRAM or "
                "time.",
            )
        if self.fallback is not None:
            given = [(w, h) for w, h, _ in self.latent_sizes if w is not None and h is not None]
            if given and any((w, h) != self.fallback for w, h in given):
                w, h = given[0]
                notes.add(
                    "both",
                    f"The graph sets its own image size ({_size(w, h)} px); the request's "
                    f"{_size(*self.fallback)} px was not used for it.",
                )

        summary = self._summary(max_steps)
        return _Analysis(summary, _cap_generation(vram, notes), run_seconds, has_tts)

    def _summary(self, steps: int | None) -> GraphSummary:
        width = height = None
        best = -1.0
        for w, h, _ in self.latent_sizes:
            pixels = (w or 1.0) * (h or 1.0)
            if (w is not None or h is not None) and pixels > best:
                best = pixels
                width = int(w) if w is not None else None
                height = int(h) if h is not None else None
        batch = max((b for _, _, b in self.latent_sizes), default=1)
        factor: float | None = None
        scaling = any(
            n.class_type in SCALE_TO_SIZE
            or n.class_type in SCALE_BY
            or n.class_type in MODEL_UPSCALERS
            or n.class_type == "ImageScaleToTotalPixels"
            for n in self.nodes.values()
        )
        if scaling:
            consumed = {src for n in self.nodes.values() for src, _ in n.links.values()}
            sinks = [s for nid, s in self.sizes.items() if s is not None and nid not in consumed]
            candidates = sinks or [s for s in self.sizes.values() if s is not None]
            if candidates:
                biggest = max(candidates, key=lambda s: s.width * s.height)
                factor = round(biggest.factor, 4)
        return GraphSummary(
            nodes=len(self.nodes),
            models=self.models,
            width=width,
            height=height,
            batch_size=batch,
            steps=steps,
            upscale_factor=factor,
        )


def _analyse(
    graph: Mapping[str, Any], fallback: tuple[int, int] | None, notes: _Notes
) -> _Analysis:
    nodes = _parse(graph)
    analysis = _Reader(nodes, fallback, notes).analyse()
    notes.entries.insert(
        0,
        (
            "both",
            f"Read the workflow: {analysis.summary.nodes} nodes"
            + (
                "; models: "
                + ", ".join(
                    f"{m.name} ({m.family}, {_num(m.vram_gb, 2)} GB)"
                    for m in analysis.summary.models
                )
                if analysis.summary.models
                else "; no model loaders"
            )
            + ".",
        ),
    )
    return analysis


def read_graph(graph: Mapping[str, Any]) -> GraphSummary:
    """What a ComfyUI graph in API format loads and generates.

    ``graph`` is ``{node_id: {"class_type": ..., "inputs": {...}}}`` as ComfyUI's "Save (API
    Format)" writes it, or the body of a POST /prompt (``{"prompt": graph, ...}``). Raises
    ``ValueError`` naming the node and input for a malformed graph, and for a UI-format
    workflow (export it with "Save (API Format)" instead).
    """
    return _analyse(graph, None, _Notes()).summary
