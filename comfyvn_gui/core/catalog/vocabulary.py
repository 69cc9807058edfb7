"""The catalog's vocabulary: the kinds of auth fields, providers and workloads, residency zones,
and the ids no template or provider may take."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "AUTH_FIELD_KINDS",
    "PROVIDER_KINDS",
    "REPORTED_GPU_KINDS",
    "REPORTED_GPU_VALUES",
    "RESERVED_IDS",
    "RESIDENCY_ZONES",
    "WORKLOAD_KINDS",
    "AuthFieldKind",
    "ProviderKind",
    "WorkloadKind",
]

AuthFieldKind = Literal["text", "secret", "path", "json_file", "choice"]
ProviderKind = Literal["cloud", "marketplace", "kubernetes", "lan", "ssh", "local"]
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

#: ``default_gpu`` values that are not GPU catalog names: the GPU is whatever the node reports.
#: Allowed only for profiles of kind lan, ssh and local.
REPORTED_GPU_VALUES: frozenset[str] = frozenset({"local", "custom"})
REPORTED_GPU_KINDS: frozenset[str] = frozenset({"lan", "ssh", "local"})

#: Ids that name an API route and so can be neither a template nor a provider id
#: (docs/architecture.md, "Provider entries and endpoints").
RESERVED_IDS: frozenset[str] = frozenset(
    {"templates", "health", "export", "import", "create", "register", "remove"}
)
