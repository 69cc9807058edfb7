"""ComfyVN's own wire format (Megamjm/Comfyvn-ToolProject), mapped onto this app's objects.

ComfyVN's editor and scripts ask for advice with query parameters (``GET /compute/advise``),
list and pick GPUs (``/api/gpu/*``), register providers in their own shape (``kind``,
``service``, ``priority`` ...) and read ``{ok, ...}`` envelopes. This module translates
between those shapes and the advisor's, the registry's and the local snapshot's: pure
functions, no rule of their own. The advisor decides; this only says it in ComfyVN's words
(docs/api.md, "ComfyVN compatibility").

Facts about ComfyVN's format come from its server modules (``comfyvn/server/modules/
compute_api.py``, ``gpu_api.py``, ``providers_api.py``, ``comfyvn/core/compute_advisor.py``,
``provider_profiles.py``) and its tests (``tests/test_compute_api.py``, ``test_gpu_api.py``,
``test_gpu_advisor_api.py``, ``test_providers_api.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .advisor import Advice
from .advisor.models import Alternative
from .catalog import ProviderProfile
from .checks import CheckResult, LocalGpu, LocalSnapshot
from .errors import InputError
from .workload import MAX_BYTES, MAX_VRAM_GB, Workload

__all__ = [
    "CPU_TASKS",
    "GPU_MODES",
    "TASK_KINDS",
    "Target",
    "advice_answer",
    "checked_gb",
    "gpu_advice_answer",
    "gpu_list",
    "gpu_policy",
    "health_answer",
    "is_comfyvn_provider",
    "mib_to_gb",
    "parse_size_mb",
    "provider_input",
    "provider_row",
    "select_device",
    "target_of",
    "template_of",
    "template_row",
    "workload_from_comfyvn",
    "workload_from_query",
]

Target = Literal["gpu", "remote", "cpu"]

#: ``task`` of ``GET /compute/advise`` -> the workload kind it is advised as. ComfyVN's
#: ``img`` (its "render") is image generation; ``tts`` voice synthesis. This app's own kinds
#: are accepted as they are.
TASK_KINDS: dict[str, str] = {
    "img": "sprite_generation",
    "tts": "voice_synthesis",
    "sprite_generation": "sprite_generation",
    "cg_remix": "cg_remix",
    "cg_super_res": "cg_super_res",
    "cg_bake": "cg_bake",
    "voice_synthesis": "voice_synthesis",
    "translation": "translation",
}
#: Tasks that need no GPU at all (ComfyVN's ``export`` packs a project): answered ``cpu``.
CPU_TASKS = frozenset({"export"})

#: ComfyVN's workload ``type`` words (``requirements.type`` / ``type``) -> workload kinds.
_TYPE_KINDS: dict[str, str] = {
    **TASK_KINDS,
    "render": "sprite_generation",
    "image": "sprite_generation",
    "sprite": "sprite_generation",
    "animation": "sprite_generation",
    "cg": "cg_remix",
    "cg_batch": "cg_remix",
    "voice": "voice_synthesis",
}

#: ComfyVN's GPU policy modes. This app always advises per job ("auto"); a device is chosen
#: by the advisor, or by the user per job (``jobs pick``).
GPU_MODES = ("auto", "manual", "sticky")

#: ComfyVN's ``service`` (or profile id) -> this app's template id. Anything else registers as
#: ``custom`` (a ComfyUI server of the user's own).
_SERVICE_TEMPLATES: dict[str, str] = {
    "comfyui": "local",
    "local": "local",
    "runpod": "runpod",
    "vast": "vast",
    "vast.ai": "vast",
    "vastai": "vast",
    "lambda": "lambda",
    "lambdalabs": "lambda",
    "aws": "aws",
    "azure": "azure",
    "coreweave": "coreweave",
    "gcp": "gcp",
    "google": "gcp",
    "paperspace": "paperspace",
    "lan": "lan",
    "unraid": "lan",
    "ssh_unraid": "lan",
    "ssh": "ssh",
    "onprem_ssh": "ssh",
    "custom": "custom",
}
#: Fields ComfyVN's provider entries carry that only its own server sets: ignored on input.
_SERVER_FIELDS = frozenset({"last_health", "created_at", "updated_at", "ts", "templates"})
#: Fields of this app's provider input that a ComfyVN-shaped body passes through as they are.
_OWN_FIELDS = frozenset({"id", "name", "base_url", "gpu", "config", "secrets", "meta"})
_SECRET_WORDS = re.compile(r"key|secret|token|password|passphrase|credential", re.I)
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(gb|mb|kb|g|m|k)?\s*", re.I)
_MIB_PER_GB = 1024.0


# -- advice ----------------------------------------------------------------------------------


def parse_size_mb(text: str | None) -> float | None:
    """ComfyVN's ``size``: MB, or with a unit (``1024mb``, ``1.5gb``, ``800kb``); None if absent.

    :class:`InputError` (field ``size``) for anything else: ComfyVN ignores a size it cannot
    read, which would silently advise a different job.
    """
    if text is None or not text.strip():
        return None
    found = _SIZE.fullmatch(text)
    if found is None:
        raise InputError(
            f"size: {text!r} is not a size; give megabytes, or a number with gb, mb or kb "
            "(e.g. 1024mb, 1.5gb)",
            fields=["size"],
        )
    number = float(found.group(1))
    unit = (found.group(2) or "mb").lower()[0]
    mb = number * {"g": 1024.0, "m": 1.0, "k": 1 / 1024}[unit]
    if mb * 2**20 > MAX_BYTES:
        raise InputError(
            f"size: {text!r} is larger than any import (at most 100 TB)", fields=["size"]
        )
    return mb


def workload_from_query(task: str, size_mb: float | None, *, prefer_remote: bool) -> Workload:
    """The workload ``GET /compute/advise?task=...&size=...`` asks about (not a CPU task)."""
    kind = TASK_KINDS.get(task)
    if kind is None:
        raise InputError(
            f"task: {task!r} is not a task; use img, tts or export (or one of this app's "
            f"kinds: {', '.join(k for k in TASK_KINDS if '_' in k)})",
            fields=["task"],
        )
    total = int(size_mb * 2**20) if size_mb is not None else None
    return Workload.model_validate(
        {"kind": kind, "total_bytes": total, "prefer_remote": prefer_remote}
    )


def _number(value: object, where: str, *, low: float = 0.0, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InputError(f"{where}: {value!r} is not a number", fields=[where])
    if value < low or (high is not None and value > high):
        raise InputError(f"{where}: {value!r} is out of range", fields=[where])
    return float(value)


def _asset_mb(asset: object, where: str) -> float:
    if not isinstance(asset, Mapping):
        raise InputError(f"{where}: each asset must be an object", fields=[where])
    for key, scale in (("size_mb", 1.0), ("size_kb", 1 / 1024), ("size_bytes", 1 / 2**20)):
        if asset.get(key) is not None:
            return _number(asset[key], f"{where}.{key}") * scale
    return 0.0


def checked_gb(value: object, where: str) -> float:
    """A VRAM amount in GB from a ComfyVN request; :class:`InputError` naming ``where``."""
    return _number(value, where, high=MAX_VRAM_GB)


def mib_to_gb(value: object, where: str) -> float:
    """A memory amount in MiB (ComfyVN's unit) as GB; :class:`InputError` naming ``where``."""
    return _number(value, where, high=MAX_VRAM_GB * _MIB_PER_GB) / _MIB_PER_GB


def workload_from_comfyvn(
    workload: object, *, prefer_remote: bool
) -> tuple[Workload, dict[str, Any]]:
    """The workload of ``POST /api/gpu/advise`` (ComfyVN's words), and what was read of it.

    Read: ``type`` / ``requirements.type`` (the kind), ``requirements.min_vram_gb`` /
    ``min_vram`` (the VRAM need, overriding the estimate), ``assets[].size_mb|size_kb|
    size_bytes`` (input size and count), ``requirements.estimated_minutes`` /
    ``estimated_minutes`` (GPU time), ``budget.limit_usd``. Other keys are ComfyVN's own
    analysis and are ignored, as ComfyVN ignores them; a key that is read must be well formed.
    """
    if workload is None:
        workload = {}
    if not isinstance(workload, Mapping):
        raise InputError("workload: must be an object", fields=["workload"])
    req = workload.get("requirements") or {}
    if not isinstance(req, Mapping):
        raise InputError(
            "workload.requirements: must be an object", fields=["workload.requirements"]
        )
    word = req.get("type", workload.get("type", "render"))
    kind = _TYPE_KINDS.get(str(word).lower()) if isinstance(word, str) else None
    if kind is None:
        raise InputError(
            f"workload.type: {word!r} is not a workload type; use render, cg, cg_batch, "
            "animation, voice_synthesis, tts or translation",
            fields=["workload.type"],
        )
    data: dict[str, Any] = {"kind": kind, "prefer_remote": prefer_remote}
    vram = req.get("min_vram_gb", req.get("min_vram", workload.get("min_vram_gb")))
    if vram is not None:
        data["vram_gb"] = _number(vram, "workload.requirements.min_vram_gb", high=MAX_VRAM_GB)
        if data["vram_gb"] == 0:
            del data["vram_gb"]  # (ComfyVN's "no GPU needed": the estimate decides)
    assets = workload.get("assets") or []
    if not isinstance(assets, Sequence) or isinstance(assets, str):
        raise InputError("workload.assets: must be a list", fields=["workload.assets"])
    sizes = [_asset_mb(a, f"workload.assets[{i}]") for i, a in enumerate(assets)]
    if assets:
        data["items"] = len(assets)
    if sum(sizes) > 0:
        data["total_bytes"] = min(int(sum(sizes) * 2**20), MAX_BYTES)
    minutes = req.get("estimated_minutes", workload.get("estimated_minutes"))
    if minutes is not None:
        data["gpu_hours"] = _number(minutes, "workload.estimated_minutes") / 60
    budget = workload.get("budget")
    if isinstance(budget, Mapping) and budget.get("limit_usd") is not None:
        data["budget_usd"] = _number(budget["limit_usd"], "workload.budget.limit_usd")
    read = {k: v for k, v in data.items() if k != "prefer_remote"}
    return Workload.model_validate(data), read


def target_of(advice: Advice | None) -> Target:
    """ComfyVN's ``target``: ``gpu`` (this computer's), ``remote`` (any provider: LAN, SSH or
    cloud) or ``cpu`` (nothing can run it on a GPU)."""
    if advice is None or advice.choice is None:
        return "cpu"
    return "gpu" if advice.choice == "local" else "remote"


def advice_answer(
    task: str,
    size_mb: float | None,
    advice: Advice | None,
    *,
    override: bool,
) -> dict[str, Any]:
    """The answer of ``GET /compute/advise`` in ComfyVN's words.

    ``choice`` and ``target`` are ``gpu`` / ``remote`` / ``cpu``; ``provider`` is the
    provider id the advisor chose; ``advice`` is the whole advice object of
    ``POST /compute/advise`` (null for a CPU task). With ``override`` (ComfyVN's
    ``hardware_override``) the answer is ``cpu`` and the advice says what would have run.
    """
    if advice is None:
        target: Target = "cpu"
        rationale = f"{task} needs no GPU: it runs on the CPU"
    elif override:
        target = "cpu"
        rationale = f"{advice.reason}; user override requested CPU fallback"
    else:
        target = target_of(advice)
        rationale = advice.reason
    return {
        "ok": True,
        "task": task,
        "size_mb": size_mb,
        "choice": target,
        "target": target,
        "provider": None if target == "cpu" else advice.choice if advice else None,
        "rationale": rationale,
        "estimated_cost": None if target == "cpu" or advice is None else advice.estimated_cost,
        "override": "cpu" if override else None,
        "advice": advice.model_dump(mode="json") if advice is not None else None,
    }


# -- GPUs ------------------------------------------------------------------------------------


def _device_id(gpu: LocalGpu, position: int) -> str:
    return f"cuda:{gpu.index if gpu.index is not None else position}"


def _mib(gb: float) -> int:
    return round(gb * _MIB_PER_GB)


def _cpu_row() -> dict[str, Any]:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (AttributeError, ValueError, OSError):
        total = None
    return {
        "id": "cpu",
        "name": "CPU",
        "kind": "cpu",
        "available": True,
        "memory_total": total,
        "memory_used": None,
        "source": "system",
    }


def _gpu_row(gpu: LocalGpu, device: str, snapshot: LocalSnapshot) -> dict[str, Any]:
    """A local GPU as ComfyVN's device rows give it (memory in MiB, utilisation in percent)."""
    return {
        "id": device,
        "name": gpu.name,
        "kind": "gpu",
        "available": True,
        "memory_total": _mib(gpu.vram_total_gb),
        "memory_used": _mib(gpu.vram_total_gb - gpu.vram_free_gb),
        "utilization": round(gpu.utilization * 100, 1),
        "source": snapshot.source,
    }


def gpu_policy() -> dict[str, Any]:
    """ComfyVN's GPU policy, as this app applies it: the advisor picks per job (``auto``);
    nothing is pinned (a job's provider is picked with ``jobs pick`` instead)."""
    return {
        "mode": "auto",
        "manual_device": None,
        "sticky_device": None,
        "last_selected": None,
        "preferred_id": None,
    }


def gpu_list(snapshot: LocalSnapshot) -> dict[str, Any]:
    """``GET /api/gpu/list``: this computer's GPUs in ComfyVN's shape (memory in MiB,
    utilisation in percent), ``local`` with the CPU too, and the policy."""
    devices = [
        {
            "id": _device_id(g, i),
            "name": g.name,
            "mem_total": _mib(g.vram_total_gb),
            "mem_free": _mib(g.vram_free_gb),
            "util": round(g.utilization * 100, 1),
        }
        for i, g in enumerate(snapshot.gpus)
    ]
    local = [_gpu_row(g, _device_id(g, i), snapshot) for i, g in enumerate(snapshot.gpus)]
    return {
        "ok": True,
        "devices": devices,
        "local": [*local, _cpu_row()],
        "policy": gpu_policy(),
        "modes": list(GPU_MODES),
        "driver_version": snapshot.driver_version,
        "note": snapshot.note,
    }


def select_device(
    snapshot: LocalSnapshot, *, prefer: str | None, min_vram_gb: float | None
) -> dict[str, Any]:
    """``POST /api/gpu/select``: the local device a ComfyVN job would use now.

    ``prefer`` (a device id from ``gpu/list``) when it is there and has the free VRAM asked
    for; else the GPU with the most free VRAM that has it; else the CPU. Nothing is recorded.
    """
    need = min_vram_gb or 0.0
    rows = [(_device_id(g, i), g) for i, g in enumerate(snapshot.gpus) if g.vram_free_gb >= need]
    if prefer == "cpu":
        rows = []
    preferred = [(d, g) for d, g in rows if d == prefer]
    picked = preferred or sorted(rows, key=lambda r: -r[1].vram_free_gb)[:1]
    if not picked:
        cpu = _cpu_row()
        why = "preferred" if prefer == "cpu" else "auto"
        return {**cpu, "device": "cpu", "policy": "auto", "reason": why}
    device, gpu = picked[0]
    why = "preferred" if preferred else "auto"
    return {**_gpu_row(gpu, device, snapshot), "device": device, "policy": "auto", "reason": why}


def _remote_candidate(advice: Advice, rows: Mapping[str, dict[str, Any]]) -> dict[str, Any] | None:
    chosen = [advice.chosen] if advice.chosen is not None else []
    for alt in [*chosen, *advice.alternatives]:
        if alt is None or not alt.eligible or alt.provider == "local":
            continue
        return _candidate_row(alt, rows.get(alt.provider), advice)
    return None


def _candidate_row(
    alt: Alternative, row: Mapping[str, Any] | None, advice: Advice
) -> dict[str, Any]:
    cost = alt.estimated_cost_usd
    return {
        "id": alt.provider,
        "name": alt.name,
        "service": (row or {}).get("service"),
        "base_url": (row or {}).get("base_url"),
        "cost": alt.hourly_usd,
        "cost_estimate": cost,
        "cost_estimate_str": f"${cost:.2f}" if cost is not None else None,
        "policy_hint": advice.policy_hint if alt.provider == advice.choice else None,
        "gpu": alt.gpu,
        "vram_gb": alt.vram_gb,
    }


def gpu_advice_answer(
    advice: Advice,
    snapshot: LocalSnapshot,
    workload: Mapping[str, Any],
    read: Mapping[str, Any],
    rows: Mapping[str, dict[str, Any]],
    *,
    override: bool,
) -> dict[str, Any]:
    """``POST /api/gpu/advise``: the advice in ComfyVN's recommendation shape.

    ``choice`` is ``gpu`` / ``remote`` / ``cpu`` (``cpu`` with ``hardware_override``, the
    advisor's pick then in ``fallback``); ``local_candidate`` is this computer's GPU when the
    advisor found it can run the job; ``remote_candidate`` the best eligible provider;
    ``comfyvn_gui`` the whole advice object.
    """
    local_alt = next(
        (
            a
            for a in [advice.chosen, *advice.alternatives]
            if a is not None and a.provider == "local"
        ),
        None,
    )
    local_candidate = None
    if local_alt is not None and local_alt.eligible:
        # the GPU the advisor found fit (its name and free VRAM), not a choice of our own
        free = local_alt.vram_gb or 0.0
        found = sorted(
            ((i, g) for i, g in enumerate(snapshot.gpus) if g.name == local_alt.gpu),
            key=lambda ig: abs(ig[1].vram_free_gb - free),
        )
        if found:
            i, gpu = found[0]
            local_candidate = {
                "id": _device_id(gpu, i),
                "name": gpu.name,
                "kind": "gpu",
                "memory_total": _mib(gpu.vram_total_gb),
                "memory_free": _mib(gpu.vram_free_gb),
                "source": snapshot.source,
            }
    remote = _remote_candidate(advice, rows)
    target: Target = "cpu" if override else target_of(advice)
    reason = advice.reason + ("; user override requested CPU fallback" if override else "")
    estimated = advice.estimated_cost if target != "cpu" else None
    answer: dict[str, Any] = {
        "workload": dict(workload),
        "read": dict(read),
        "choice": target,
        "provider": advice.choice if target != "cpu" else None,
        "reason": reason,
        "local_candidate": local_candidate,
        "remote_candidate": remote,
        "estimated_cost": estimated,
        "job_summary": {
            "recommended_provider": advice.choice,
            "choice": target,
            "estimated_cost": estimated,
            "policy_hint": advice.policy_hint,
            "min_vram_gb": advice.requirements.vram_gb,
            "asset_total_mb": round(read.get("total_bytes", 0) / 2**20, 3),
        },
        "comfyvn_gui": advice.model_dump(mode="json"),
    }
    if override:
        answer["override"] = "cpu"
        answer["fallback"] = remote if advice.choice != "local" else local_candidate
    return {"ok": True, "advice": answer}


# -- providers -------------------------------------------------------------------------------


def is_comfyvn_provider(body: Mapping[str, Any]) -> bool:
    """Whether a register body is in ComfyVN's shape (``kind`` / ``service`` / ``endpoint`` /
    ``priority``, no ``template_id``) rather than this app's provider entry."""
    return "template_id" not in body and any(
        k in body for k in ("kind", "service", "endpoint", "priority")
    )


def template_of(body: Mapping[str, Any]) -> str:
    """The template a ComfyVN provider definition is: by ``service``, else its ``id`` (a
    ComfyVN profile id such as ``onprem_ssh``), else ``local`` for ``kind: local``, else
    ``custom``."""
    for key in ("service", "id"):
        value = body.get(key)
        if isinstance(value, str) and value.lower() in _SERVICE_TEMPLATES:
            return _SERVICE_TEMPLATES[value.lower()]
        if isinstance(value, str) and "unraid" in value.lower():
            return "lan"
    return "local" if body.get("kind") == "local" else "custom"


def provider_input(body: Mapping[str, Any], profile: ProviderProfile) -> dict[str, Any]:
    """A ComfyVN provider definition as this app's provider input (for ``register``).

    ``endpoint`` (or ``base_url``) -> ``base_url``, or the ``endpoint`` field of the templates
    that take their address there (LAN, custom); ``active`` (ComfyVN's on/off switch) ->
    ``enabled``; ``config`` keys the template declares stay in ``config`` (its secret fields go
    to the keyring as always); other config keys and unknown fields go to ``meta`` — except
    secret-looking ones, which are refused rather than written to a file; ``kind``,
    ``service`` and ``priority`` are kept in ``meta`` (``service`` only when it names no
    template); fields only ComfyVN's server sets (``last_health``, ``created_at`` ...) are
    ignored.
    """
    meta: dict[str, Any] = {}
    given_meta = body.get("meta")
    if given_meta is not None and not isinstance(given_meta, Mapping):
        raise InputError("meta: must be an object", fields=["meta"])
    out: dict[str, Any] = {"template_id": profile.id}
    for key, value in body.items():
        if key in _SERVER_FIELDS or key in ("kind", "meta", "active", "endpoint", "enabled"):
            continue
        if key in _OWN_FIELDS:
            out[key] = value
        elif key == "service":
            if _SERVICE_TEMPLATES.get(str(value).lower()) is None:
                meta["service"] = value
        elif _SECRET_WORDS.search(key):
            raise InputError(
                f"{key}: a secret outside the provider's fields would be written to a file; "
                f"put it in config under one of {profile.id}'s secret fields",
                fields=[key],
            )
        else:
            meta[key] = value
    address = body.get("endpoint") if out.get("base_url") is None else out["base_url"]
    names = {f.name for f in profile.auth_fields} | {f.name for f in profile.options}
    if address is not None and "endpoint" in names:
        # (LAN and custom take their address as the `endpoint` field, not as base_url)
        out.pop("base_url", None)
        config_in = out.get("config")
        config_map = dict(config_in) if isinstance(config_in, Mapping) else {}
        config_map.setdefault("endpoint", address)
        out["config"] = config_map
    elif address is not None:
        out["base_url"] = address
    switch = body.get("enabled", body.get("active"))
    if isinstance(switch, bool):
        out["enabled"] = switch
    config = out.get("config")
    if isinstance(config, Mapping):
        known = names
        kept = {}
        for key, value in config.items():
            if key in known or key == "endpoints":
                kept[key] = value
            elif _SECRET_WORDS.search(str(key)):
                secret_fields = [f.name for f in profile.auth_fields if f.secret]
                raise InputError(
                    f"config.{key}: not a field of the {profile.id} template, and a secret "
                    "outside its fields would be written to a file; its secret fields are: "
                    + (", ".join(secret_fields) or "none"),
                    fields=[f"config.{key}"],
                )
            else:
                meta[str(key)] = value
        out["config"] = kept
    out["meta"] = {**meta, **dict(given_meta or {})}
    return out


def _service_of(profile: ProviderProfile, entry_meta: Mapping[str, Any]) -> str:
    named = entry_meta.get("service")
    if profile.id == "custom" and isinstance(named, str):
        return named
    return {"gcp": "gcp", "lan": "lan", "local": "comfyui"}.get(profile.id, profile.id)


def provider_row(
    entry: Mapping[str, Any],
    profile: ProviderProfile | None,
    last: CheckResult | None,
    position: int,
) -> dict[str, Any]:
    """One provider in ComfyVN's listing: this app's entry (``active`` stays "validated"),
    plus ComfyVN's ``kind`` (local / remote), ``service``, ``priority`` and ``last_health``."""
    meta = entry.get("meta") or {}
    priority = meta.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool):
        priority = 0 if entry.get("id") == "local" else (position + 1) * 10
    template = entry.get("template_id")
    return {
        **entry,
        "kind": "local" if template == "local" else "remote",
        "service": _service_of(profile, meta) if profile is not None else template,
        "priority": priority,
        "last_health": {
            "ok": last.ok if last is not None else None,
            "status": last.status if last is not None else None,
            "ts": int(last.checked_at.timestamp() * 1000) if last is not None else None,
        },
    }


def template_row(profile: ProviderProfile) -> dict[str, Any]:
    """One curated template in ComfyVN's listing shape."""
    base = next(iter(profile.endpoints.values()), None) if profile.endpoints else None
    return {
        "id": profile.id,
        "name": profile.name,
        "kind": "local" if profile.id == "local" else "remote",
        "service": _service_of(profile, {}),
        "base_url": base,
        "gpu": profile.default_gpu,
        "fields": [f.name for f in profile.auth_fields],
        "policy_hints": dict(profile.policy_hints),
    }


def health_answer(results: Sequence[CheckResult], one: str | None) -> dict[str, Any]:
    """``GET /api/providers/health``: ``{ok, results}``, and ``status`` for one provider.

    ``ok`` says every check passed (valid, or healthy).
    """
    rows = [_health_row(r) for r in results]
    answer: dict[str, Any] = {"ok": all(r.ok for r in results), "results": rows}
    if one is not None:
        answer["status"] = next((row for row in rows if row["provider_id"] == one), None)
    return answer


def _health_row(result: CheckResult) -> dict[str, Any]:
    return {
        **result.model_dump(mode="json"),
        "ok": result.ok,
        "provider_id": result.provider,
        "ts": int(result.checked_at.timestamp() * 1000),
    }
