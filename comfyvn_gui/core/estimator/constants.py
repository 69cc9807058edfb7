"""The estimator's constants: model sizes, speeds on the reference GPU, the node types it knows.

Every figure an estimate rests on is a named constant here with its rationale. The per-item
seconds were calibrated on the A10G (:data:`CALIBRATION_GPU`), the bundled catalog's reference
GPU; VRAM is in GB as GPU vendors state it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
class Family:
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
FAMILIES: dict[str, Family] = {
    "sd15": Family("SD 1.5", 2.0, 0.25, 2.5, 0.30, 512),
    "sd2": Family("SD 2.x", 2.6, 0.7, 2.5, 0.33, 768),
    "sdxl": Family("SDXL", 6.5, 1.6, 2.0, 0.38, 1024),
    "sd3": Family("SD3", 6.0, 1.6, 2.0, 0.45, 1024),
    "flux": Family("Flux", 33.7, 9.75, 2.5, 1.30, 1024),
    "video": Family("video", 4.8, 1.2, 3.0, 1.50, 1024),
    "unknown": Family("unknown (SDXL-class assumed)", 6.5, 1.6, 2.0, 0.38, 1024),
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
TTS_RE = re.compile(r"tts|bark|tortoise|(?<![0-9a-f])f5(?![0-9a-f])", re.IGNORECASE)
GGUF_QUANT_RE = re.compile(r"(?:^|[^a-z0-9])i?q([2-8])(?:[^0-9]|$)")
SCALE_RE = re.compile(r"(?:^|[^a-z0-9])([1-8])x(?![a-z]*\d)|x([1-8])(?![0-9])")
