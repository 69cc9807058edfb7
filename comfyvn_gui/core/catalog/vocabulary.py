"""The catalog's vocabulary: the kinds of auth fields, providers and workloads, residency zones,
and the ids no template or provider may take."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "AUTH_FIELD_KINDS",
    "CUSTOM_TERM_FIELDS",
    "ON_PREM_KINDS",
    "ON_PREM_ZONES",
    "PROVIDER_KINDS",
    "REPORTED_GPU_KINDS",
    "REPORTED_GPU_VALUES",
    "RESERVED_IDS",
    "RESIDENCY_ZONES",
    "WORKLOAD_KINDS",
    "AuthFieldKind",
    "MetaFieldKind",
    "ProviderKind",
    "WorkloadKind",
]

AuthFieldKind = Literal["text", "secret", "path", "json_file", "choice", "number", "multi_choice"]
#: The kinds of a provider's registry metadata (``meta``), typed as JSON (profiles.MetaField).
MetaFieldKind = Literal["text", "url", "number", "integer", "boolean", "list"]
#: ``custom``: a ComfyUI endpoint the user registers with their own price, billing, VRAM and
#: residency zones (the entry says where it runs, not the profile).
ProviderKind = Literal["cloud", "marketplace", "kubernetes", "lan", "ssh", "local", "custom"]
WorkloadKind = Literal[
    "sprite_generation",
    "cg_remix",
    "cg_super_res",
    "cg_bake",
    "voice_synthesis",
    "translation",
    "comfyui_workflow",
]

AUTH_FIELD_KINDS: tuple[AuthFieldKind, ...] = get_args(AuthFieldKind)
PROVIDER_KINDS: tuple[ProviderKind, ...] = get_args(ProviderKind)
WORKLOAD_KINDS: tuple[WorkloadKind, ...] = get_args(WorkloadKind)

#: Residency zones a region may belong to. ``uk`` is separate from ``eu`` (UK GDPR is not the
#: EU's); ``on_prem`` and ``local`` are the user's own machines and satisfy any residency rule.
RESIDENCY_ZONES: frozenset[str] = frozenset(
    {"us", "ca", "sa", "eu", "uk", "me", "af", "asia", "oceania", "on_prem", "local"}
)
#: The zones that are the user's own machines: data kept in them does not leave the premises.
ON_PREM_ZONES: frozenset[str] = frozenset({"on_prem", "local"})

#: ``default_gpu`` values that are not GPU catalog names: the GPU is whatever the node reports.
#: Allowed only for profiles of kind lan, ssh, local and custom (a custom ComfyUI endpoint: the
#: GPU its ``/system_stats`` reports, or the one its entry names).
REPORTED_GPU_VALUES: frozenset[str] = frozenset({"local", "custom"})
REPORTED_GPU_KINDS: frozenset[str] = frozenset({"lan", "ssh", "local", "custom"})

#: Kinds that are the user's own machines: cost-free, and data does not leave the premises.
ON_PREM_KINDS: frozenset[str] = frozenset({"lan", "ssh", "local"})

#: The fields a ``custom`` profile must have, with their kinds: each provider of it states its
#: own price, billing, VRAM, GPU and residency zones in its ``config``
#: (:mod:`comfyvn_gui.core.custom_terms` reads them).
CUSTOM_TERM_FIELDS: dict[str, AuthFieldKind] = {
    "hourly_usd": "number",
    "billing_increment_minutes": "number",
    "billing_minimum_minutes": "number",
    "vram_gb": "number",
    "gpu_name": "text",
    "zones": "multi_choice",
}

#: Ids that name an API route and so can be neither a template nor a provider id
#: (docs/architecture.md, "Provider entries and endpoints").
RESERVED_IDS: frozenset[str] = frozenset(
    {"templates", "health", "export", "import", "create", "register", "remove"}
)
