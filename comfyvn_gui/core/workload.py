"""The workload the advisor is asked about, and what it needs (docs/architecture.md, "Advice
request and response").

Units: VRAM in GB as GPU vendors state it, sizes in pixels / seconds / characters / bytes,
money in USD, GPU time in hours on the reference GPU (the catalog's A10G).

A field left out (``None``) of ``latency``, ``budget_usd`` or ``residency`` takes the
advisor's setting (``advisor.latency``, ``advisor.budget_usd``, ``advisor.residency``); an
explicit value — ``[]`` for "any zone" — overrides it for this workload.

:mod:`comfyvn_gui.core.estimator` turns a workload into :class:`Requirements`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from .catalog import RESIDENCY_ZONES, WorkloadKind

AssetType = Literal["sprite", "cg", "audio", "text"]
Latency = Literal["interactive", "batch"]

#: Upper bounds that keep a typo ("items": 1e12) from producing absurd advice. They are far
#: above any real ComfyVN import.
MAX_ITEMS = 1_000_000
MAX_PIXELS_SIDE = 65_536
MAX_AUDIO_SECONDS = 10_000_000.0  # ~115 days of audio
MAX_CHARACTERS = 2_000_000_000
MAX_BYTES = 10**14  # 100 TB
MAX_VRAM_GB = 4096.0
MAX_GPU_HOURS = 1_000_000.0
MAX_BUDGET_USD = 10_000_000.0

#: The asset types each kind of job works on; the first is the default.
ASSET_TYPES_OF_KIND: dict[str, tuple[AssetType, ...]] = {
    "sprite_generation": ("sprite", "cg"),
    "cg_remix": ("cg", "sprite"),
    "cg_super_res": ("cg", "sprite"),
    "cg_bake": ("cg", "sprite"),
    "voice_synthesis": ("audio",),
    "translation": ("text", "audio"),
    "comfyui_workflow": ("cg", "sprite", "audio", "text"),
}

#: The kind an asset type implies when a request gives ``asset_type`` and no ``kind`` (the
#: seed's first advisor input is the asset type): the usual heavy job on that asset.
KIND_OF_ASSET_TYPE: dict[str, str] = {
    "sprite": "sprite_generation",
    "cg": "cg_super_res",
    "audio": "voice_synthesis",
    "text": "translation",
}

#: How a kind reads at the start of a title or a table cell ("CG super-res (40 CGs)").
KIND_TITLES: dict[str, str] = {
    "sprite_generation": "Sprite generation",
    "cg_remix": "CG remix",
    "cg_super_res": "CG super-res",
    "cg_bake": "CG bake",
    "voice_synthesis": "Voice synthesis",
    "translation": "Translation",
    "comfyui_workflow": "ComfyUI workflow",
}

#: How a kind reads in a sentence ("12GB required for CG super-res").
KIND_LABELS: dict[str, str] = {
    "sprite_generation": "sprite generation",
    "cg_remix": "CG remix",
    "cg_super_res": "CG super-res",
    "cg_bake": "CG bake",
    "voice_synthesis": "voice synthesis",
    "translation": "translation",
    "comfyui_workflow": "the ComfyUI workflow",
}


class Licenses(BaseModel):
    """Licensing flags of the assets a job uploads."""

    model_config = ConfigDict(extra="forbid")

    non_open_source: bool = Field(
        False, description="Some assets are not open source: review licences before uploading"
    )
    notes: str | None = Field(None, max_length=2000, description="Which assets, which licence")


class Workload(BaseModel):
    """One unit of importer work: what it is, how big, and the user's constraints."""

    model_config = ConfigDict(extra="forbid")

    kind: WorkloadKind = Field(
        description="What the job does; may be left out when asset_type is given (its usual "
        "job: sprite -> sprite_generation, cg -> cg_super_res, audio -> voice_synthesis, "
        "text -> translation)"
    )
    asset_type: AssetType | None = Field(
        None, description="sprite | cg | audio | text; default from the kind"
    )
    title: str | None = Field(None, max_length=500, description="A name for the job")
    items: int = Field(1, ge=1, le=MAX_ITEMS, description="How many assets / prompts / lines")
    width: int | None = Field(None, ge=1, le=MAX_PIXELS_SIDE, description="Pixels, per item")
    height: int | None = Field(None, ge=1, le=MAX_PIXELS_SIDE, description="Pixels, per item")
    audio_seconds: float | None = Field(
        None, ge=0, le=MAX_AUDIO_SECONDS, description="Seconds of audio, all items together"
    )
    characters: int | None = Field(
        None, ge=0, le=MAX_CHARACTERS, description="Characters of text, all items together"
    )
    total_bytes: int | None = Field(
        None, ge=0, le=MAX_BYTES, description="Size of the inputs, all items together"
    )
    workflow: dict[str, Any] | None = Field(
        None, description="An inline ComfyUI graph in API format ({node_id: {class_type, inputs}})"
    )
    cached_graphs: bool = Field(
        False, description="The workflow relies on cached ComfyUI graphs / models"
    )
    interruptible: bool = Field(
        False,
        description="The job may run on capacity that can be taken back (Spot): its provider's "
        "Spot offer is weighed where the provider can launch one, as with meta.spot",
    )
    prefer_remote: bool = Field(
        False,
        description="Run it on a LAN, SSH or cloud GPU when one can, even where this computer's "
        "GPU could (ComfyVN's prefer_remote); this computer's GPU stays the fallback",
    )
    vram_gb: float | None = Field(
        None, gt=0, le=MAX_VRAM_GB, description="Overrides the estimated VRAM need (GB)"
    )
    gpu_hours: float | None = Field(
        None, ge=0, le=MAX_GPU_HOURS, description="Overrides the estimate: hours on the A10G"
    )
    latency: Latency | None = Field(None, description="Default: the advisor.latency setting")
    budget_usd: float | None = Field(
        None, ge=0, le=MAX_BUDGET_USD, description="Default: the advisor.budget_usd setting"
    )
    residency: list[str] | None = Field(
        None,
        max_length=32,
        description="Allowed zones (eu, us, ...); [] = any; default: the advisor.residency "
        "setting. Local and on-prem nodes always satisfy it.",
    )
    licenses: Licenses = Field(default_factory=Licenses)
    #: ``kind`` was not given and was derived from ``asset_type`` (said in the assumptions).
    _kind_derived: bool = PrivateAttr(default=False)

    @field_validator("residency")
    @classmethod
    def _check_zones(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out: list[str] = []
        for zone in value:
            z = zone.strip().lower()
            if z not in RESIDENCY_ZONES:
                raise ValueError(
                    f"{zone!r} is not a residency zone; use {', '.join(sorted(RESIDENCY_ZONES))}"
                )
            if z not in out:
                out.append(z)
        return out

    @field_validator("workflow")
    @classmethod
    def _check_workflow(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("the workflow graph is empty; export it with 'Save (API Format)'")
        if len(value) > 5000:
            raise ValueError(f"the workflow has {len(value)} nodes; at most 5000 are read")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _kind_from_asset_type(cls, data: Any, handler: Any) -> Workload:
        derived = (
            isinstance(data, dict)
            and data.get("kind") is None
            and isinstance(data.get("asset_type"), str)
            and data["asset_type"] in KIND_OF_ASSET_TYPE
        )
        if derived:
            data = {**data, "kind": KIND_OF_ASSET_TYPE[data["asset_type"]]}
        workload: Workload = handler(data)
        workload._kind_derived = derived or workload._kind_derived
        return workload

    @model_validator(mode="after")
    def _check_asset_type(self) -> Workload:
        allowed = ASSET_TYPES_OF_KIND[self.kind]
        if self.asset_type is None:
            self.asset_type = allowed[0]
        elif self.asset_type not in allowed:
            raise ValueError(
                f"asset_type {self.asset_type!r} does not fit kind {self.kind!r} "
                f"(use {' or '.join(repr(a) for a in allowed)})"
            )
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height (pixels of one item), or neither")
        return self

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]


class ModelUse(BaseModel):
    """A model a ComfyUI graph loads, as the estimator classified it."""

    node: str = Field(description="The node id in the graph")
    class_type: str
    name: str = Field(description="The model file / name the node loads")
    family: str = Field(
        description="sd15 | sd2 | sdxl | sd3 | flux | upscale | tts | controlnet | lora | "
        "clip | vae | video | unknown"
    )
    vram_gb: float = Field(ge=0, description="What its weights take in VRAM (GB)")


class GraphSummary(BaseModel):
    """What the estimator read from a ComfyUI graph."""

    nodes: int = Field(ge=0)
    models: list[ModelUse] = Field(default_factory=list)
    width: int | None = Field(None, description="Latent image width (pixels)")
    height: int | None = Field(None, description="Latent image height (pixels)")
    batch_size: int = Field(1, ge=1)
    steps: int | None = Field(None, description="Sampler steps (the largest sampler)")
    upscale_factor: float | None = Field(None, description="Total upscale factor, when any")


class Requirements(BaseModel):
    """What a workload needs: VRAM and GPU time on the reference GPU, and why."""

    vram_gb: float = Field(gt=0, description="VRAM needed (GB)")
    gpu_hours: float = Field(ge=0, description="GPU-hours on the reference GPU (A10G)")
    source: Literal["estimate", "explicit", "partly_explicit"] = Field(
        description="estimate: both figures estimated; explicit: both given in the workload; "
        "partly_explicit: one given, one estimated"
    )
    assumptions: list[str] = Field(
        default_factory=list, description="What the estimate assumed, in a user's words"
    )
    graph: GraphSummary | None = Field(None, description="What was read from the workflow")
