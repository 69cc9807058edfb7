"""The models a ComfyUI graph loads: which family a file is, how it is stored, what it takes.

:class:`ModelReader` reads them from the graph's loader nodes (the first stage of reading a graph).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from comfyvn_gui.core import wording
from comfyvn_gui.core.workload import ModelUse

from .constants import (
    CHECKPOINT_LOADERS,
    CLIP_L_GB,
    CLIP_LOADERS,
    CONTROLNET_DEFAULT_GB,
    CONTROLNET_GB,
    CONTROLNET_LOADERS,
    FAMILIES,
    FLUX_PARAMS_B,
    FP8_BITS,
    FP16_BITS,
    GGUF_BITS,
    GGUF_DEFAULT_QUANT,
    GGUF_QUANT_RE,
    LATENT_SOURCES,
    LORA_GB,
    LORA_LOADERS,
    MODEL_UPSCALERS,
    NF4_BITS,
    SAMPLERS,
    SCALE_BY,
    SCALE_RE,
    SCALE_TO_SIZE,
    SD3_LARGE_PARAMS_B,
    SD3_MEDIUM_PARAMS_B,
    T5XXL_PARAMS_B,
    TEXT_ENCODER_DEFAULT_GB,
    TEXT_ENCODER_PARAMS_B,
    TTS_RE,
    TTS_WEIGHTS_GB,
    UNET_LOADERS,
    UPSCALE_DEFAULT_SCALE,
    UPSCALE_LOADERS,
    UPSCALE_MODEL_GB,
    UTILITY_NODES,
    VAE_GB,
    VAE_LOADERS,
    VIDEO_PARAMS_B,
)
from .graph import Node, text_input
from .notes import Notes, cap_first

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


def family_of(name: str) -> str:
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


def storage_bits(name: str, weight_dtype: str | None) -> tuple[float, str]:
    """Bits per weight a model file is held in, and how that reads ("fp16", "GGUF Q4")."""
    n = name.lower()
    if n.endswith(".gguf") or "gguf" in n:
        found = GGUF_QUANT_RE.search(n)
        quant = int(found[1]) if found else GGUF_DEFAULT_QUANT
        quant = quant if quant in GGUF_BITS else GGUF_DEFAULT_QUANT
        return GGUF_BITS[quant], f"GGUF Q{quant}"
    if "fp8" in n or "float8" in n or (weight_dtype or "").lower().startswith("fp8"):
        return FP8_BITS, "fp8"
    if "nf4" in n:
        return NF4_BITS, "NF4"
    return FP16_BITS, "fp16"


@dataclass(frozen=True)
class Diffusion:
    use: ModelUse
    resident_gb: float  # kept on the GPU while sampling
    text_encoder_gb: float  # inside a checkpoint; unloaded after encoding
    dtype: str = "fp16"


def checkpoint_model(node: Node, notes: Notes) -> Diffusion:
    name = text_input(node, "ckpt_name")
    family = family_of(name) if name else "unknown"
    fam = FAMILIES[family]
    bits, dtype = storage_bits(name or "", None)
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
            f"{cap_first(node.where)} takes its model name from another node; assumed an "
            f"SDXL-class checkpoint ({wording.figure(total, 1)} GB).",
        )
    elif family == "unknown":
        notes.add(
            "both",
            f"Could not tell which model family {name!r} is; assumed an SDXL-class model "
            f"({wording.figure(total, 1)} GB of weights).",
        )
    use = ModelUse(
        node=node.id,
        class_type=node.class_type,
        name=name or "(from another node)",
        family=family,
        vram_gb=round(total, 2),
    )
    return Diffusion(use, total - te, te, dtype)


def unet_model(node: Node, clip_hint: str | None, notes: Notes) -> Diffusion:
    name = text_input(node, "unet_name")
    family = family_of(name) if name else "unknown"
    if family == "unknown" and clip_hint is not None:
        family = clip_hint
    bits, dtype = storage_bits(name or "", text_input(node, "weight_dtype"))
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
            f"{cap_first(node.where)} takes its model name from another node; assumed "
            f"{'an SDXL-class' if family == 'unknown' else 'a ' + FAMILIES[family].label} "
            f"model ({wording.figure(weights, 1)} GB of weights in {dtype}).",
        )
    elif family == "unknown":
        notes.add(
            "both",
            f"Could not tell which model family {label} is; assumed an SDXL-class model "
            f"({wording.figure(weights, 1)} GB of weights in {dtype}).",
        )
    if family == "video":
        notes.add(
            "both",
            f"Assumed {label} is a 13B-class video model ({wording.figure(weights, 1)} GB in "
            f"{dtype}); video models vary widely, so give vram_gb / gpu_hours if you know better.",
        )
    use = ModelUse(
        node=node.id,
        class_type=node.class_type,
        name=name or "(from another node)",
        family=family,
        vram_gb=round(weights, 2),
    )
    return Diffusion(use, weights, 0.0, dtype)


def text_encoder_gb(name: str) -> tuple[float, bool]:
    """The VRAM of a text encoder file, and whether its kind was recognised."""
    n = name.lower()
    bits, _ = storage_bits(name, None)
    for markers, params in TEXT_ENCODER_PARAMS_B:
        if any(m in n for m in markers):
            return params * bits / 8, True
    return TEXT_ENCODER_DEFAULT_GB, False


def upscale_scale(name: str | None) -> int:
    if not name:
        return UPSCALE_DEFAULT_SCALE
    found = SCALE_RE.search(name.lower())
    if not found:
        return UPSCALE_DEFAULT_SCALE
    return int(found[1] or found[2])


_MODEL_INPUT_RE = re.compile(r"model|_name$|^name$|voice|speaker_model", re.IGNORECASE)


def tts_name(node: Node) -> str | None:
    """The TTS model name a node loads / uses, or its class_type; ``None`` if not TTS."""
    for key, value in node.inputs.items():
        if (
            isinstance(value, str)
            and key not in node.links
            and _MODEL_INPUT_RE.search(str(key))
            and TTS_RE.search(value)
        ):
            return value
    if TTS_RE.search(node.class_type):
        return node.class_type
    return None


def is_loader(node: Node) -> bool:
    if "load" in node.class_type.lower():
        return True
    return any(
        isinstance(v, str) and k not in node.links and _MODEL_INPUT_RE.search(str(k))
        for k, v in node.inputs.items()
    )


# --------------------------------------------------------------------------------------------
# Reading the loaders of a graph
# --------------------------------------------------------------------------------------------


@dataclass
class ModelReader:
    """The models a graph's loaders load, and the VRAM their weights take."""

    nodes: dict[str, Node]
    notes: Notes
    diffusion: dict[str, Diffusion] = field(default_factory=dict)
    models: list[ModelUse] = field(default_factory=list)
    extra_resident_gb: float = 0.0  # VAE, LoRA, ControlNet, upscale model weights
    clip_gb: float = 0.0
    upscale_scales: dict[str, int] = field(default_factory=dict)
    tts_nodes: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def read_models(self) -> None:
        clip_hint = self._clip_family_hint()
        controlnets: list[Node] = []
        for node in self.nodes.values():
            ct = node.class_type
            if ct in CHECKPOINT_LOADERS:
                d = checkpoint_model(node, self.notes)
                self.diffusion[node.id] = d
                self.models.append(d.use)
            elif ct in UNET_LOADERS:
                d = unet_model(node, clip_hint, self.notes)
                self.diffusion[node.id] = d
                self.models.append(d.use)
            elif ct in CLIP_LOADERS:
                self._read_clip(node)
            elif ct in VAE_LOADERS:
                self.extra_resident_gb += VAE_GB
                self._add_use(node, text_input(node, "vae_name"), "vae", VAE_GB)
            elif ct in LORA_LOADERS:
                self.extra_resident_gb += LORA_GB
                self._add_use(node, text_input(node, "lora_name"), "lora", LORA_GB)
            elif ct in CONTROLNET_LOADERS:
                controlnets.append(node)
            elif ct in UPSCALE_LOADERS:
                name = text_input(node, "model_name")
                self.upscale_scales[node.id] = upscale_scale(name)
                self.extra_resident_gb += UPSCALE_MODEL_GB
                self._add_use(node, name, "upscale", UPSCALE_MODEL_GB)
            elif tts_name(node) is not None:
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
            name = text_input(node, "control_net_name")
            fam = family_of(name) if name else "unknown"
            if fam not in CONTROLNET_GB:
                fam = main
            gb = CONTROLNET_GB.get(fam, CONTROLNET_DEFAULT_GB)
            self.extra_resident_gb += gb
            self._add_use(node, name, "controlnet", gb)
        self._read_tts()

    def _add_use(self, node: Node, name: str | None, family: str, gb: float) -> None:
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
                kind = (text_input(node, "type") or "").lower()
                if kind == "flux":
                    return "flux"
                if kind in ("sd3", "sdxl"):
                    return kind
                if kind in ("hunyuan_video", "mochi", "ltxv", "cosmos", "wan"):
                    return "video"
        return None

    def _read_clip(self, node: Node) -> None:
        for key in sorted(k for k in node.inputs if str(k).startswith("clip_name")):
            name = text_input(node, str(key))
            if name is None:
                gb, known = TEXT_ENCODER_DEFAULT_GB, False
            else:
                gb, known = text_encoder_gb(name)
            if not known:
                self.notes.add(
                    "vram",
                    f"Could not tell what text encoder {name or 'the linked one'!r} is; assumed "
                    f"{wording.figure(gb, 1)} GB.",
                )
            self.clip_gb += gb
            self._add_use(node, name, "clip", gb)

    def _read_tts(self) -> None:
        if not self.tts_nodes:
            return
        loaders = [nid for nid in self.tts_nodes if is_loader(self.nodes[nid])]
        for nid in loaders or self.tts_nodes[:1]:
            node = self.nodes[nid]
            self._add_use(node, tts_name(node), "tts", TTS_WEIGHTS_GB)

    @property
    def main(self) -> Diffusion | None:
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
