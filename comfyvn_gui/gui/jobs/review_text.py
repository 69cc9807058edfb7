"""What the Jobs page's Review panel says about one job, worked out without widgets
(docs/architecture.md, "GUI"): the decision and who made it, the warnings, the requirements,
the outcome of a pick and, once dispatched, its lifecycle, what it cost against the estimate,
how it ended (the driver's own words) and its output tiles; the alternatives' cost bars.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from comfyvn_gui.core import wording
from comfyvn_gui.core.jobs import Job, JobEvent
from comfyvn_gui.gui.widgets.cost_chart import CostBar

from .model import KIND_NAMES, WARNING_WORDS, cost_text, local_time, minutes_text, size_text

__all__ = [
    "PAIRED_KINDS",
    "RULE_WORDS",
    "assumption_lines",
    "cost_bars",
    "decided_line",
    "decision_line",
    "lifecycle_lines",
    "outcome",
    "output_files",
    "output_tiles",
    "pick_outcome",
    "requirements_line",
    "spend_line",
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


# --------------------------------------------------------------------------------------------
# A dispatched job: its lifecycle, what it cost, how it ended, its outputs
# --------------------------------------------------------------------------------------------

#: The kinds whose outputs are shown next to their input (one run per input image:
#: ``core.runs``), before / after.
PAIRED_KINDS = frozenset({"cg_super_res", "cg_remix"})


def _dispatch(job: Job) -> dict[str, Any]:
    record = job.meta.get("dispatch")
    return record if isinstance(record, dict) else {}


def _clock(at: datetime, first: datetime | None) -> str:
    local = at.astimezone()
    if first is not None and local.date() == first.astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M:%S")


def _lifecycle_step(event: JobEvent, seen_machine: set[str]) -> str | None:
    """What one trail event says in the lifecycle (None: not a step of it)."""
    action = event.action
    detail = event.detail or {}
    if action == "created":
        return "Queued"
    if action == "dispatched":
        via = (detail.get("acknowledged") or {}).get("interface")
        return f"Dispatched to {event.provider}" + (f" (from the {via})" if via else "")
    if action == "status":
        to = str(detail.get("to") or "")
        return to.capitalize() if to else None
    if action == "cancel_requested":
        return "Cancel asked for"
    if action == "resumed":
        return "A new driver took it over"
    if action == "machine":
        text = event.message.removeprefix("machine ").strip()
        first = str(detail.get("id")) not in seen_machine
        seen_machine.add(str(detail.get("id")))
        return ("Machine rented: " if first else "Machine: ") + text
    if action == "release":
        return event.message[:1].upper() + event.message[1:]
    return None


def lifecycle_lines(job: Job, events: Sequence[JobEvent]) -> list[str]:
    """Each transition of ``job`` with its time, from its trail ("21:00:03  Running"); before
    the trail is read, the times the dispatch record keeps."""
    lines: list[tuple[datetime, str]] = []
    seen: set[str] = set()
    for e in events:
        step = _lifecycle_step(e, seen)
        if step is not None:
            lines.append((e.at, step))
    if not lines:
        record = _dispatch(job)
        for key, what in (
            ("dispatched_at", f"Dispatched to {record.get('provider')}"),
            ("started_at", "Started"),
            ("ended_at", job.status.capitalize()),
        ):
            value = record.get(key)
            if value:
                try:
                    lines.append((datetime.fromisoformat(str(value)), what))
                except ValueError:
                    continue
    first = lines[0][0] if lines else None
    return [f"{_clock(at, first if i else None)}  {what}" for i, (at, what) in enumerate(lines)]


def spend_line(job: Job) -> str:
    """What the job cost against the estimate (the CLI's ``jobs show`` words), or, in flight,
    the estimate and what stops it."""
    record = _dispatch(job)
    if not record:
        return ""
    estimate = (record.get("estimate") or {}).get("cost_usd")
    if record.get("ended_at"):
        actual = wording.cost(float(record.get("actual_cost_usd") or 0))
        against = f" (estimated {wording.cost(estimate)})" if estimate is not None else ""
        billed = wording.number(float(record.get("billed_minutes") or 0))
        return f"Spent {actual}{against}, {billed} min billed."
    ceilings = record.get("ceilings") or {}
    text = f"Estimated {cost_text(estimate)}"
    if ceilings.get("deadline"):
        text += f"; stops by {local_time(ceilings['deadline'])}"
        if ceilings.get("cost_usd") is not None:
            text += f" or at {wording.cost(ceilings['cost_usd'])}"
    return text + "."


def outcome(job: Job) -> tuple[str, str] | None:
    """(banner kind, text) of an ended job: the driver's ended message, which says what
    failed and what to do (None while the job has not ended)."""
    record = _dispatch(job)
    message = record.get("ended_message")
    if job.status not in ("completed", "failed", "cancelled") or not message:
        return None
    kind = {"completed": "ok", "failed": "error", "cancelled": "warning"}[job.status]
    text = str(message)
    return kind, text[:1].upper() + text[1:]


def output_files(job: Job) -> list[tuple[int, Path]]:
    """(run index, the file's path) of each output the driver collected, in its order."""
    record = _dispatch(job)
    folder = record.get("outputs_dir")
    if not folder:
        return []
    return [
        (int(o.get("run", 0)), Path(folder) / str(o["file"]))
        for o in record.get("outputs") or []
        if isinstance(o, Mapping) and o.get("file")
    ]


def output_tiles(
    job: Job, inputs: Sequence[Path] | None
) -> list[tuple[tuple[Path, ...], str, str]]:
    """(images, caption, tooltip) per output tile: for a super-resolution or remix job whose
    ``inputs`` are known, run N's input beside its output (one run per input image)."""
    tiles: list[tuple[tuple[Path, ...], str, str]] = []
    for run, path in output_files(job):
        before = inputs[run] if inputs and job.kind in PAIRED_KINDS and run < len(inputs) else None
        if before is None:
            tiles.append(((path,), path.name, f"{path}\n(double-click to open)"))
        else:
            tiles.append(
                (
                    (before, path),
                    f"{before.name} → {path.name}",
                    f"Before: {before}\nAfter: {path}\n(double-click to open the after image)",
                )
            )
    return tiles


def cost_bars(advice: Mapping[str, Any]) -> list[CostBar]:
    """The chart's bars: the chosen provider first, then the alternatives as the advisor
    ranked them (the eligible ones, then those that cannot run the job)."""
    rows: list[Mapping[str, Any]] = []
    chosen = advice.get("chosen")
    if isinstance(chosen, Mapping):
        rows.append(chosen)
    rows += [a for a in advice.get("alternatives") or [] if isinstance(a, Mapping)]
    choice = advice.get("choice")
    bars = []
    for alt in rows:
        pid = str(alt.get("provider", ""))
        eligible = bool(alt.get("eligible"))
        usd = alt.get("estimated_cost_usd")
        usd = float(usd) if isinstance(usd, int | float) else None
        why = str((alt.get("note") if eligible else alt.get("excluded_because")) or "")
        bars.append(
            CostBar(
                key=pid,
                label=pid,
                usd=usd,
                value_text=cost_text(usd),
                chosen=pid == choice and alt is chosen,
                eligible=eligible,
                why=why,
            )
        )
    return bars
