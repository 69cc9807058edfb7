"""What the Jobs page's Review panel says about one job, worked out without widgets
(docs/architecture.md, "GUI"): the decision and who made it, the warnings, the requirements
and the outcome of a pick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from comfyvn_gui.core import wording
from comfyvn_gui.core.jobs import Job

from .model import KIND_NAMES, WARNING_WORDS, cost_text, local_time, minutes_text, size_text

__all__ = [
    "RULE_WORDS",
    "assumption_lines",
    "decided_line",
    "decision_line",
    "pick_outcome",
    "requirements_line",
    "status_line",
    "warning_lines",
]

#: How the advisor's deciding rule reads after "Chosen by the advisor".
RULE_WORDS: dict[str, str] = {
    "local_gpu": "this computer's GPU comes first",
    "cost_free_on_prem": "a cost-free node on your network",
    "cheapest": "the cheapest eligible provider",
    "interactive_latency": "the quickest to start, for interactive work",
    "cached_graphs": "it keeps cached ComfyUI graphs",
    "user_pick": "your pick",
}

_SOURCE_WORDS = {
    "estimate": "estimated",
    "explicit": "as the job gives them",
    "partly_explicit": "partly estimated",
}


def _cost(advice: Mapping[str, Any]) -> str:
    return str(advice.get("estimated_cost") or cost_text(advice.get("estimated_cost_usd")))


def status_line(job: Job) -> str:
    """'Job 3 · Queued · CG remix · 40 × 2048×2048'."""
    return (
        f"Job {job.id} · {job.status.capitalize()} · "
        f"{KIND_NAMES.get(job.kind, job.kind)} · {size_text(job.workload)}"
    )


def decision_line(compute: Mapping[str, Any], advice: Mapping[str, Any]) -> str:
    """Where the job runs, what it costs and how long it takes."""
    provider = compute.get("provider")
    if provider is None:
        return "No provider can run this job now."
    chosen = advice.get("chosen") or {}
    name = str(chosen.get("name") or provider)
    who = f"{name} ({provider})" if name != provider else provider
    minutes = minutes_text(advice.get("estimated_minutes"))
    return f"Runs on {who} — {_cost(advice)}, ~{minutes}"


def decided_line(compute: Mapping[str, Any], advice: Mapping[str, Any]) -> str:
    """Who decided, by which rule, and when."""
    when = local_time(compute.get("decided_at"))
    if not compute:
        return "Not advised yet."
    if compute.get("decided_by") == "user":
        return f"Your pick, on {when}. The advisor keeps it while it can run the job."
    rule = RULE_WORDS.get(str(advice.get("decided_by") or ""))
    return f"Decided by the advisor{f' ({rule})' if rule else ''} on {when}."


def warning_lines(warnings: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(code, the line shown) per warning; ``[("", "No warnings.")]`` when there are none."""
    if not warnings:
        return [("", "No warnings.")]
    lines = []
    for w in warnings:
        code = str(w.get("code", ""))
        words = WARNING_WORDS.get(code, code.replace("_", " ").capitalize())
        about = f" ({w['provider']})" if w.get("provider") else ""
        lines.append((code, f"⚠ {words}{about}: {w.get('message', '')}"))
    return lines


def requirements_line(req: Mapping[str, Any]) -> str:
    """What the job needs, on the reference GPU."""
    if not req:
        return "Not estimated yet."
    source = _SOURCE_WORDS.get(str(req.get("source")), "")
    vram = wording.vram(req.get("vram_gb", 0))
    hours = wording.gpu_hours(req.get("gpu_hours", 0))
    return f"{vram} of VRAM, {hours} on the reference A10G" + (f" ({source})." if source else ".")


def assumption_lines(req: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in req.get("assumptions") or []]


def pick_outcome(provider_id: str | None, compute: Mapping[str, Any]) -> str:
    """What the banner says once a pick (None: back to the advisor's choice) is recorded."""
    advice = compute.get("advice") or {}
    if provider_id is not None:
        return (
            f"This job now runs on {provider_id} ({_cost(advice)}), your pick. "
            "Recorded in its audit trail."
        )
    choice = compute.get("provider")
    return (
        f"Back to the advisor's choice: {choice} ({_cost(advice)})."
        if choice
        else "Back to the advisor's choice: no provider can run this job now."
    ) + " Recorded in its audit trail."
