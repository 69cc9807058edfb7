"""The advice in words: why the choice, why not each alternative, and the warnings to show.

Every figure is worded by :mod:`comfyvn_gui.core.wording`; the warnings about a provider's
terms (data leaving the machine, content restrictions, DPIA notes) quote its profile's ``legal``
metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from comfyvn_gui.core import wording
from comfyvn_gui.core.catalog import ON_PREM_ZONES
from comfyvn_gui.core.workload import Requirements, Workload

from .candidates import EPS, Candidate, cost_key
from .models import AdviceWarning, WarningCode


def _join(items: Iterable[str]) -> str:
    return "; ".join(items)


def note_alternatives(
    ranked: list[Candidate], remotes: list[Candidate], decided: str | None
) -> None:
    """Why each eligible provider after the first was not chosen."""
    if not ranked:
        return
    first = ranked[0]
    for c in ranked[1:]:
        if decided == "user_pick":
            c.note = f"you picked {first.id}"
        elif c.kind == "local":  # (after another only when the workload prefers remote)
            c.note = "kept free: the workload prefers a remote GPU (prefer_remote)"
        elif c.id == first.id:  # the same provider's other offer (on demand / Spot)
            what, other = ("on demand", "its Spot offer") if first.spot else ("Spot", "on demand")
            if c.cost is not None and first.cost is not None and c.cost > first.cost + EPS:
                c.note = f"{what}: {wording.cost(c.cost - first.cost)} more than {other}"
            else:
                c.note = f"{what}: the same cost as {other}, which goes first"
        elif first.kind == "local":
            c.note = "the local GPU can run it at no cost, and nothing leaves this machine"
        elif first.tier == "on_prem":
            c.note = (
                "a faster on-prem node is preferred"
                if c.tier == "on_prem"
                else f"the on-prem node {first.id} runs it at no cost"
            )
        elif decided == "cached_graphs" and not c.profile.persistent_cache:
            c.note = f"{first.id} keeps cached ComfyUI graphs on a persistent volume"
        elif decided == "interactive_latency" and (
            c.profile.startup_minutes > first.profile.startup_minutes
        ):
            c.note = (
                f"starts in ~{wording.number(c.profile.startup_minutes)} min; interactive work "
                f"prefers {first.id} (~{wording.number(first.profile.startup_minutes)} min)"
            )
        elif c.cost is None:
            c.note = "no known price: priced providers rank first"
        elif first.cost is not None and c.cost > first.cost + EPS:
            c.note = f"{wording.cost(c.cost - first.cost)} more than {first.id}"
        else:
            c.note = f"same cost as {first.id}; ties go to the faster, then by id"


def _local_clause(candidates: list[Candidate]) -> str | None:
    for c in candidates:
        if c.kind == "local" and c.excluded is not None:
            text = c.excluded
            if c.exclusion_code == "vram":
                return text
            if c.exclusion_code in ("no_gpu", "busy"):
                return text[0].upper() + text[1:]
            return f"The local GPU is {text}" if c.exclusion_code != "not_active" else text
    return None


def reason_for(
    choice: Candidate | None,
    decided: str | None,
    candidates: list[Candidate],
    remotes: list[Candidate],
    workload: Workload,
    req: Requirements,
    latency: str,
) -> str:
    label = workload.label
    if choice is None:
        whys = [f"{'local GPU' if c.kind == 'local' else c.id}: {c.excluded}" for c in candidates]
        return (
            f"No provider can run {label} ({wording.number(req.vram_gb)}GB VRAM): "
            + _join(whys)
            + "."
        )
    local_clause = _local_clause(candidates)
    if decided == "local_gpu":
        return (
            f"Local GPU {choice.gpu} has enough free VRAM "
            f"({wording.number(choice.vram_gb or 0)}GB free >= {wording.number(req.vram_gb)}GB "
            f"required for {label}); it costs nothing and nothing leaves this machine."
            + (" You prefer a remote GPU, but none can run it." if workload.prefer_remote else "")
        )
    parts = [local_clause] if local_clause else []
    if workload.prefer_remote and any(c.kind == "local" and c.excluded is None for c in candidates):
        parts.append("you prefer a remote GPU (prefer_remote), so this computer's GPU is kept free")
    if decided == "user_pick":
        parts.append(f"You picked {choice.label} ({choice.id}); it is eligible")
    elif decided == "cost_free_on_prem":
        parts.append(
            f"{choice.label} ({choice.id}) has {wording.number(choice.vram_gb or 0)}GB and runs "
            f"it on-prem at no cost in ~{wording.duration(choice.minutes or 0)}"
        )
    else:
        increment = wording.billing_step(choice.billing.increment_minutes)
        price = (
            f"{wording.hourly_price(choice.hourly)} billed {increment}, {price_origin(choice)}"
            if choice.hourly is not None
            else "no known price"
        )
        cost_text = wording.cost(choice.cost) or "cost unknown"
        machine = f"{choice.machine}, " if choice.machine and choice.offer is None else ""
        numbers = (
            f"{cost_text} for ~{wording.duration(choice.minutes or 0)}"
            f" on {choice.gpu or 'its GPU'} ({machine}{wording.number(choice.vram_gb or 0)}GB, "
            f"{price})"
        )
        if choice.price_note:
            numbers += f" — {choice.price_note}, so the catalog's price is used"
        if choice.spot:
            numbers += " — on Spot capacity, which may be taken back"
        if decided == "interactive_latency":
            cheapest = sorted(remotes, key=cost_key)[0]
            parts.append(
                f"Interactive latency preferred: {choice.label} starts in "
                f"~{wording.number(choice.profile.startup_minutes)} min, {numbers} (cheapest: "
                f"{cheapest.id} at {wording.cost(cheapest.cost) or 'unknown'}, starting in "
                f"~{wording.number(cheapest.profile.startup_minutes)} min)"
            )
        elif decided == "cached_graphs":
            parts.append(
                f"Cached ComfyUI graphs preferred: {choice.label} keeps them on a persistent "
                f"volume, {numbers}"
            )
        else:
            others = len(remotes) - 1
            tail = f" of {len(remotes)} eligible remote providers" if others > 0 else ""
            parts.append(f"{choice.label} is the cheapest{tail}: {numbers}")
    return ". ".join(p[0].upper() + p[1:] for p in parts) + "."


def price_origin(c: Candidate) -> str:
    """Where a candidate's price comes from, and when it was taken, in words."""
    offer = c.offer
    if c.price_source == "live" and offer is not None:
        taken = offer.taken_at.strftime("%Y-%m-%d %H:%M UTC")
        return f"live price from {offer.source_name} of {taken}"
    return wording.price_origin(c.price_source, c.prices_as_of)


def _where(choice: Candidate) -> str:
    """Where a provider processes content, for the ``data_leaves_machine`` warning."""
    if choice.custom:
        zones = ", ".join(choice.zones)
        return f"the zones you stated for it ({zones})" if zones else "zones you have not stated"
    if choice.pinned:
        return ", ".join(f"{r.name} ({r.id})" for r in choice.pinned)
    return "its regions in " + ", ".join(choice.zones)


def _legal_warnings(
    choice: Candidate, workload: Workload, req: Requirements, residency: Sequence[str]
) -> list[AdviceWarning]:
    """The warnings about content leaving the machine, from the profile's ``legal`` notes."""
    out: list[AdviceWarning] = []
    legal = choice.profile.legal
    out.append(
        AdviceWarning(
            code="data_leaves_machine",
            provider=choice.id,
            message=f"Your content leaves this machine for {choice.label}, processed in "
            f"{_where(choice)}. {legal.egress_notice}",
        )
    )
    if residency:
        allowed = set(residency) | (ON_PREM_ZONES if choice.custom else set())
        outside = sorted(set(choice.zones) - allowed)
        if outside and choice.custom:
            out.append(
                AdviceWarning(
                    code="residency",
                    provider=choice.id,
                    message=f"You stated that {choice.label} runs in {', '.join(choice.zones)}, "
                    f"also outside {', '.join(residency)} ({', '.join(outside)}): send this "
                    "job only if you know it will be processed in an allowed zone.",
                )
            )
        elif outside:
            inside = [r for r in choice.profile.regions if r.zone in residency]
            out.append(
                AdviceWarning(
                    code="residency",
                    provider=choice.id,
                    message=f"{choice.label} also runs outside {', '.join(residency)} "
                    f"({', '.join(outside)}): run this job only in "
                    + ", ".join(f"{r.name} ({r.id})" for r in inside)
                    + " to respect the residency rule.",
                )
            )
    if workload.licenses.non_open_source:
        restriction = legal.content_restrictions or legal.egress_notice
        notes = f" ({workload.licenses.notes})" if workload.licenses.notes else ""
        out.append(
            AdviceWarning(
                code="non_open_source_assets",
                provider=choice.id,
                message=f"This job includes assets that are not open source{notes}: review "
                f"their licences before uploading them to {choice.label}. {restriction}",
            )
        )
    dpia_kinds = [workload.kind]
    if req.graph is not None and any(m.family == "tts" for m in req.graph.models):
        dpia_kinds.append("voice_synthesis")
    for kind in dict.fromkeys(dpia_kinds):
        note = legal.dpia_notes.get(kind)
        if note:
            out.append(AdviceWarning(code="dpia", provider=choice.id, message=note))
    return out


def _price_warnings(choice: Candidate) -> list[AdviceWarning]:
    """An unknown price, or a cost that is only an upper bound."""
    if choice.hourly is None:
        fix = (
            "set its Price per hour (config.hourly_usd)"
            if choice.custom
            else "set meta.price_ceiling_usd (or meta.hourly_usd)"
        )
        what = "this GPU"
        if choice.machine and choice.profile.machines:
            what = f"{choice.machine} (not in the catalog's price table)"
        return [
            AdviceWarning(
                code="price_unknown",
                provider=choice.id,
                message=f"{choice.label} has no known price for {what}: {fix} to see a cost "
                "before running.",
            )
        ]
    if choice.price_source == "price_ceiling":
        return [
            AdviceWarning(
                code="price_unknown",
                provider=choice.id,
                message=f"{choice.label}'s cost is an upper bound from your price ceiling "
                f"({wording.hourly_price(choice.hourly)}); the offer you rent may cost less.",
            )
        ]
    return []


#: Exclusions that warn (beyond unhealthy providers, which always do): code -> warning code.
_SKIPPED_WARNINGS: dict[str, WarningCode] = {
    "budget": "over_budget_skipped",
    "quota_lapsed": "quota_lapsed_skipped",
}


def warnings_for(
    choice: Candidate | None,
    candidates: list[Candidate],
    workload: Workload,
    req: Requirements,
    residency: Sequence[str],
) -> list[AdviceWarning]:
    out: list[AdviceWarning] = []
    if choice is not None and choice.leaves_machine:
        out.extend(_legal_warnings(choice, workload, req, residency))
    if choice is not None and choice.priced:
        out.extend(_price_warnings(choice))
    if choice is not None and choice.spot:
        out.append(
            AdviceWarning(
                code="spot_interruption",
                provider=choice.id,
                message=f"{choice.label} runs this job on Spot capacity "
                f"({choice.machine or 'its machine'} at "
                f"{wording.hourly_price(choice.hourly or 0.0)}, bid capped at the job's ceiling): "
                "the provider may take the machine back at short notice; the job then fails "
                "saying so, what finished is kept and billed, and Retry runs it again.",
            )
        )
    if choice is not None and choice.kind != "local":
        if choice.health == "degraded":
            out.append(
                AdviceWarning(
                    code="provider_degraded",
                    provider=choice.id,
                    message=f"{choice.label} was degraded at its last health check; jobs may "
                    "be slow or retried.",
                )
            )
        elif choice.health == "unknown":
            out.append(
                AdviceWarning(
                    code="health_unknown",
                    provider=choice.id,
                    message=f"{choice.label} has not been health-checked yet; run Health "
                    "before sending work.",
                )
            )
    for c in candidates:
        if not c.entry.enabled:
            continue
        code: WarningCode
        if c.health == "unhealthy":
            code, why = "provider_unhealthy_skipped", "unhealthy at its last health check"
        elif c.exclusion_code in _SKIPPED_WARNINGS and c.excluded is not None:
            code, why = _SKIPPED_WARNINGS[c.exclusion_code], c.excluded
        else:
            continue
        out.append(
            AdviceWarning(code=code, provider=c.id, message=f"{c.label} was skipped: {why}.")
        )
    return out
