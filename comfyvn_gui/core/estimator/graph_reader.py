"""The graph reader: what a ComfyUI graph loads and generates, and the VRAM and time it needs.

:func:`read_graph` gives the :class:`~comfyvn_gui.core.workload.GraphSummary`; :func:`analyse`
gives the figures as well, for the estimate of kind ``comfyui_workflow``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from comfyvn_gui.core import wording
from comfyvn_gui.core.workload import GraphSummary, ModelUse

from .constants import (
    CALIBRATION_GPU,
    CALIBRATION_GPU_VRAM_GB,
    DEFAULT_STEPS,
    FAMILIES,
    GRAPH_RUN_OVERHEAD_S,
    LATENT_SOURCES,
    MAX_BATCH,
    MAX_SCALE,
    MAX_SIDE,
    MAX_STEPS,
    MAX_UNKNOWN_LISTED,
    MODEL_UPSCALERS,
    PER_IMAGE_OVERHEAD_S,
    RUNTIME_OVERHEAD_GB,
    SAMPLERS,
    SCALE_BY,
    SCALE_TO_SIZE,
    TTS_WEIGHTS_GB,
    TTS_WORK_GB,
    UPSCALE_DEFAULT_SCALE,
    UPSCALE_IMAGE_GB_PER_OUTPUT_MP,
    UPSCALE_SECONDS_PER_OUTPUT_MP,
    UPSCALE_TILE_GB_PER_SCALE,
    UPSCALE_WORK_MAX_GB,
    VIDEO_LATENT_SOURCES,
)
from .graph import Node, literal, parse, topological
from .graph_models import Diffusion, ModelReader
from .notes import Notes, cap_first, cap_generation, megapixels_of, tts_vram_note

__all__ = ["Analysis", "analyse", "read_graph"]

# --------------------------------------------------------------------------------------------
# Reading a graph: sizes, samplers, upscalers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Size:
    width: float
    height: float
    batch: int
    factor: float  # linear size relative to the latent the graph generated

    def __post_init__(self) -> None:
        # A chain of upscales (LatentUpscaleBy x16, 300 times) must not overflow to
        # infinity: no side grows past the largest image a graph can make.
        if self.width > MAX_SIDE or self.height > MAX_SIDE:
            shrink = MAX_SIDE / max(self.width, self.height)
            object.__setattr__(self, "width", self.width * shrink)
            object.__setattr__(self, "height", self.height * shrink)
            object.__setattr__(self, "factor", self.factor * shrink)


_PASS_THROUGH_KEYS = ("latent_image", "samples", "latent", "image", "images", "pixels")
_SAMPLER_LATENT_KEYS = ("latent_image",)


@dataclass
class Analysis:
    summary: GraphSummary
    vram_gb: float
    run_seconds: float
    has_tts: bool


@dataclass
class _Reader(ModelReader):
    """Reads a whole graph: its models (:class:`ModelReader`), then sizes, samplers, upscalers."""

    fallback: tuple[int, int] | None = None
    order: list[str] = field(default_factory=list)
    sizes: dict[str, _Size | None] = field(default_factory=dict)
    latent_sizes: list[tuple[float | None, float | None, int]] = field(default_factory=list)

    # ---- sizes -------------------------------------------------------------------------

    def _fallback_size(self, family: str) -> tuple[int, int, str]:
        if self.fallback is not None:
            return self.fallback[0], self.fallback[1], "the size in the request"
        side = FAMILIES[family].native_side
        return side, side, f"{FAMILIES[family].label}'s native size"

    def read_sizes(self) -> None:
        for nid in self.order:
            self.sizes[nid] = self._size_of(self.nodes[nid])

    def _upstream(self, node: Node, keys: tuple[str, ...] | None = None) -> _Size | None:
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

    def _size_of(self, node: Node) -> _Size | None:
        ct = node.class_type
        if ct in LATENT_SOURCES:
            return self._latent_source(node)
        if ct in SAMPLERS:
            return self._upstream(node, _SAMPLER_LATENT_KEYS)
        if ct in SCALE_TO_SIZE:
            return self._scale_to(node)
        if ct in SCALE_BY:
            base = self._upstream(node)
            scale = literal(node, "scale_by", lo=0.01, hi=MAX_SCALE, integer=False)
            if base is None or scale is None:
                return base
            return _Size(base.width * scale, base.height * scale, base.batch, base.factor * scale)
        if ct == "ImageScaleToTotalPixels":
            base = self._upstream(node)
            megapixels = literal(node, "megapixels", lo=0.01, hi=1000.0, integer=False)
            if base is None or megapixels is None:
                return base
            scale = math.sqrt(megapixels / megapixels_of(base.width, base.height))
            return _Size(base.width * scale, base.height * scale, base.batch, base.factor * scale)
        if ct in MODEL_UPSCALERS:
            base = self._upstream(node, ("image",))
            scale = self._model_scale(node)
            if base is None:
                return None
            return _Size(base.width * scale, base.height * scale, base.batch, base.factor * scale)
        if ct == "RepeatLatentBatch":
            base = self._upstream(node, ("samples",))
            amount = literal(node, "amount", lo=1, hi=MAX_BATCH, integer=True)
            if base is None or amount is None:
                return base
            return _Size(base.width, base.height, base.batch * int(amount), base.factor)
        return self._upstream(node)

    def _model_scale(self, node: Node) -> int:
        link = node.links.get("upscale_model")
        if link is None:
            return UPSCALE_DEFAULT_SCALE
        return self.upscale_scales.get(link[0], UPSCALE_DEFAULT_SCALE)

    def _latent_source(self, node: Node) -> _Size:
        width = literal(node, "width", lo=1, hi=MAX_SIDE, integer=True)
        height = literal(node, "height", lo=1, hi=MAX_SIDE, integer=True)
        batch = literal(node, "batch_size", lo=1, hi=MAX_BATCH, integer=True)
        self.latent_sizes.append((width, height, int(batch or 1)))
        fb_w, fb_h, why = self._fallback_size(self.main_family)
        missing = [n for n, v in (("width", width), ("height", height)) if v is None]
        if missing:
            how = "from another node" if any(m in node.links for m in missing) else "nowhere"
            self.notes.add(
                "both",
                f"{cap_first(node.where)} takes its {' and '.join(missing)} {how}; assumed "
                f"{wording.image_size(width or fb_w, height or fb_h)} px ({why}).",
            )
        if batch is None and "batch_size" in node.links:
            self.notes.add(
                "both",
                f"{cap_first(node.where)} takes its batch_size from another node; assumed 1.",
            )
        if node.class_type in VIDEO_LATENT_SOURCES:
            length = node.inputs.get("length")
            self.notes.add(
                "both",
                f"{cap_first(node.where)} makes a video latent (length {length!r}); the "
                "estimate counts one frame per batch item, so a video job needs considerably "
                "more: give vram_gb / gpu_hours if you know them.",
            )
        return _Size(width or fb_w, height or fb_h, int(batch or 1), 1.0)

    def _scale_to(self, node: Node) -> _Size | None:
        base = self._upstream(node)
        width = literal(node, "width", lo=0, hi=MAX_SIDE, integer=True)
        height = literal(node, "height", lo=0, hi=MAX_SIDE, integer=True)
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

    def _trace_model(self, node: Node) -> Diffusion | None:
        """The loader behind a sampler's model (through LoRAs, patches and guiders)."""
        current: Node | None = node
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

    def _sampler_steps(self, node: Node) -> tuple[int | None, int]:
        """(steps read, steps run) of a sampler; steps run falls back to DEFAULT_STEPS."""
        steps_node: Node | None = node
        if node.class_type in ("SamplerCustom", "SamplerCustomAdvanced"):
            steps_node = None
            current: Node | None = node
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
            steps = literal(steps_node, "steps", lo=1, hi=MAX_STEPS, integer=True)
        if steps is None:
            source = steps_node.where if steps_node is not None else node.where
            self.notes.add(
                "time",
                f"{cap_first(source)} does not state its steps (they come from another "
                f"node); assumed {DEFAULT_STEPS}.",
            )
            return None, DEFAULT_STEPS
        run = int(steps)
        if node.class_type == "KSamplerAdvanced":
            start = literal(node, "start_at_step", lo=0, hi=MAX_STEPS, integer=True) or 0
            end = literal(node, "end_at_step", lo=0, hi=MAX_STEPS, integer=True)
            run = max(1, int(min(end if end is not None else steps, steps) - start))
        return int(steps), run

    # ---- the whole graph ---------------------------------------------------------------

    def analyse(self) -> Analysis:
        self.order = topological(self.nodes)
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
            main = Diffusion(
                ModelUse(node="", class_type="", name="", family="unknown", vram_gb=0.0),
                fam.checkpoint_gb - fam.text_encoder_gb,
                fam.text_encoder_gb,
            )
            notes.add(
                "both",
                f"No model loader the estimator knows feeds the samplers; assumed an SDXL-class "
                f"model ({wording.figure(fam.checkpoint_gb, 1)} GB of weights).",
            )
        if len(self.diffusion) > 1 and main is not None:
            notes.add(
                "vram",
                f"The graph loads {len(self.diffusion)} diffusion models; assumed ComfyUI swaps "
                f"them, so only the largest ({main.use.name}, "
                f"{wording.figure(main.resident_gb, 1)} GB) counts at once.",
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
                        f"{cap_first(node.where)} starts from an image of unknown size; assumed "
                        f"{wording.image_size(fb_w, fb_h)} px ({why}).",
                    )
                read, steps = self._sampler_steps(node)
                if read is not None:
                    max_steps = read if max_steps is None else max(max_steps, read)
                mp = megapixels_of(size.width, size.height) * size.batch
                gb = fam.work_gb_per_mp * mp
                if gb > work_gb:
                    work_gb = gb
                    work_where = (
                        f"{wording.figure(gb, 1)} GB of working memory for {node.where} at "
                        f"{wording.image_size(size.width, size.height)} px, batch {size.batch} "
                        f"({wording.figure(fam.work_gb_per_mp, 1)} GB per megapixel for "
                        f"{fam.label})"
                    )
                seconds = steps * mp * fam.seconds_per_step_mp
                run_seconds += seconds
                image_batch = max(image_batch, size.batch)
                notes.add(
                    "time",
                    f"{cap_first(node.where)}: {steps} steps at "
                    f"{wording.image_size(size.width, size.height)} px, batch {size.batch}, "
                    f"{fam.label}: about {wording.seconds(seconds)} on the {CALIBRATION_GPU} "
                    f"({wording.figure(fam.seconds_per_step_mp, 2)} s per step per megapixel).",
                )
            else:
                scale = self._model_scale(node)
                out = self.sizes.get(node.id)
                if out is None:
                    fb_w, fb_h, why = self._fallback_size(self.main_family)
                    out = _Size(fb_w * scale, fb_h * scale, 1, float(scale))
                    notes.add(
                        "both",
                        f"{cap_first(node.where)} upscales an image of unknown size; assumed "
                        f"{wording.image_size(fb_w, fb_h)} px ({why}).",
                    )
                out_mp = megapixels_of(out.width, out.height) * out.batch
                gb = min(
                    UPSCALE_TILE_GB_PER_SCALE * scale + UPSCALE_IMAGE_GB_PER_OUTPUT_MP * out_mp,
                    UPSCALE_WORK_MAX_GB,
                )
                if gb > work_gb:
                    work_gb = gb
                    work_where = (
                        f"{wording.figure(gb, 1)} GB of working memory for the {scale}x model "
                        f"upscale in {node.where} (512 px tiles, "
                        f"{wording.image_size(out.width, out.height)} px output)"
                    )
                seconds = UPSCALE_SECONDS_PER_OUTPUT_MP * out_mp
                run_seconds += seconds
                image_batch = max(image_batch, out.batch)
                notes.add(
                    "time",
                    f"{cap_first(node.where)}: {scale}x model upscale to "
                    f"{wording.image_size(out.width, out.height)} px: about "
                    f"{wording.seconds(seconds)} on the {CALIBRATION_GPU} "
                    f"({wording.figure(UPSCALE_SECONDS_PER_OUTPUT_MP, 2)} s per output megapixel).",
                )
        if image_batch:
            run_seconds += PER_IMAGE_OVERHEAD_S * image_batch
            notes.add(
                "time",
                f"Plus {wording.figure(PER_IMAGE_OVERHEAD_S, 1)} s per output image to decode and "
                "save it.",
            )

        has_tts = bool(self.tts_nodes)
        if has_tts:
            names = ", ".join(dict.fromkeys(self.nodes[nid].class_type for nid in self.tts_nodes))
            notes.add(
                "both",
                f"The graph has text-to-speech nodes ({names}); they are estimated like a "
                "voice synthesis job.",
            )
            tts_vram_note(notes)
            if TTS_WORK_GB > work_gb:
                work_gb = TTS_WORK_GB
                work_where = (
                    f"{wording.figure(TTS_WORK_GB, 1)} GB of working memory for text-to-speech"
                )

        if not samplers and not upscalers and not has_tts:
            run_seconds = GRAPH_RUN_OVERHEAD_S
            notes.add(
                "both",
                "Found no sampler, upscaler or text-to-speech node the estimator knows; the "
                "figures cover only ComfyUI's own overhead "
                f"({wording.figure(RUNTIME_OVERHEAD_GB, 1)} GB, "
                f"{wording.figure(GRAPH_RUN_OVERHEAD_S, 1)} s per run).",
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
                f"{wording.figure(CALIBRATION_GPU_VRAM_GB, 1)} GB GPU with its working memory: "
                "ComfyUI can still run it there by keeping part of the weights in system memory "
                "(much slower), and an fp8 or GGUF version needs about half the VRAM.",
            )
        if resident > 0 or work_gb > 0:
            parts = [f"{wording.figure(resident, 1)} GB of weights kept on the GPU"]
            if work_where:
                parts.append(work_where)
            parts.append(f"{wording.figure(RUNTIME_OVERHEAD_GB, 1)} GB for the CUDA runtime")
            notes.add("vram", "Peak VRAM while generating: " + " + ".join(parts) + ".")
        if text_encoders > 0:
            bigger = "the larger" if encoding > sampling else "the smaller"
            notes.add(
                "vram",
                f"Counted the {wording.figure(text_encoders, 1)} GB of text encoders separately: "
                "ComfyUI unloads them after encoding the prompt when memory is short, so the "
                f"peak is the larger of the two stages (encoding is {bigger} here).",
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
                    f"The graph sets its own image size ({wording.image_size(w, h)} px); the "
                    f"request's {wording.image_size(*self.fallback)} px was not used for it.",
                )

        summary = self._summary(max_steps)
        return Analysis(summary, cap_generation(vram, notes), run_seconds, has_tts)

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


def analyse(graph: Mapping[str, Any], fallback: tuple[int, int] | None, notes: Notes) -> Analysis:
    nodes = parse(graph)
    analysis = _Reader(nodes, notes, fallback=fallback).analyse()
    notes.entries.insert(
        0,
        (
            "both",
            f"Read the workflow: {analysis.summary.nodes} nodes"
            + (
                "; models: "
                + ", ".join(
                    f"{m.name} ({m.family}, {wording.figure(m.vram_gb, 2)} GB)"
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
    return analyse(graph, None, Notes()).summary
