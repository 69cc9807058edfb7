"""Choosing: rank the eligible providers and build the advice (the rules are in
:mod:`comfyvn_gui.core.advisor`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from comfyvn_gui.core import wording
from comfyvn_gui.core.catalog import Catalog
from comfyvn_gui.core.checks import HealthStatus, LocalSnapshot
from comfyvn_gui.core.models import LOCAL_ID, ProviderEntry
from comfyvn_gui.core.prices import LivePrices
from comfyvn_gui.core.provider_rules import broken_reason
from comfyvn_gui.core.workload import Requirements, Workload

from .candidates import Candidate, cost_key, evaluate, spot_allowed
from .explaining import note_alternatives, reason_for, warnings_for
from .models import Advice, AdviceWarning, AdvisorSettings, Preference

__all__ = ["advise"]


def remote_order(
    remotes: list[Candidate], *, latency: str, cached: bool
) -> tuple[list[Candidate], Preference]:
    """Eligible remotes in the order the advisor prefers them, and what decided the first."""
    by_cost = sorted(remotes, key=cost_key)
    if not by_cost:
        return by_cost, "cheapest"
    decided: Preference = "cheapest"
    order = by_cost
    if latency == "interactive":
        by_start = sorted(remotes, key=lambda c: (c.profile.startup_minutes, *cost_key(c)))
        if by_start[0] is not order[0]:
            decided = "interactive_latency"
        order = by_start
    if cached:
        by_cache = sorted(order, key=lambda c: 0 if c.profile.persistent_cache else 1)
        if by_cache[0] is not order[0]:
            decided = "cached_graphs"
        order = by_cache
    return order, decided


def advise(
    workload: Workload,
    requirements: Requirements,
    providers: Sequence[ProviderEntry],
    health: Mapping[str, HealthStatus],
    local: LocalSnapshot,
    settings: AdvisorSettings,
    catalog: Catalog,
    *,
    user_pick: str | None = None,
    prices: Mapping[str, LivePrices] | None = None,
) -> Advice:
    """Advise where ``workload`` (needing ``requirements``) should run. Pure and deterministic.

    ``providers`` are the registered entries (``AdviceProvider`` for the reported VRAM of
    LAN / SSH nodes and the last failure code); the built-in ``local`` is added when missing.
    ``health`` maps ids to their latest health (missing: ``unknown``). ``prices``: the live
    prices kept for each provider id (the service says which are still fresh).
    """
    residency = workload.residency if workload.residency is not None else settings.residency
    budget = workload.budget_usd if workload.budget_usd is not None else settings.budget_usd
    latency = workload.latency or settings.latency
    applied = AdvisorSettings(budget_usd=budget, latency=latency, residency=list(residency))

    entries = list(providers)
    if not any(e.id == LOCAL_ID for e in entries):
        local_profile = catalog.profile(LOCAL_ID)
        entries.insert(
            0,
            ProviderEntry(
                id=LOCAL_ID, template_id=local_profile.id, name=local_profile.name, active=True
            ),
        )
    seen: set[str] = set()
    candidates: list[Candidate] = []
    spots: list[Candidate] = []  # Spot offers: separate alternatives of their providers
    broken: list[AdviceWarning] = []
    for entry in sorted(entries, key=lambda e: e.id):
        if entry.id in seen:
            continue
        seen.add(entry.id)
        why = broken_reason(catalog, entry)
        if why is not None:
            broken.append(
                AdviceWarning(code="provider_broken_skipped", provider=entry.id, message=why)
            )
            continue
        profile = catalog.profile(entry.template_id)
        c = Candidate(entry, profile, health.get(entry.id, "unknown"))
        live = prices.get(entry.id) if prices else None
        evaluate(c, requirements, workload, local, residency, budget, catalog, live)
        candidates.append(c)
        if spot_allowed(entry, profile, workload):
            s = Candidate(entry, profile, health.get(entry.id, "unknown"))
            evaluate(s, requirements, workload, local, residency, budget, catalog, live, spot=True)
            if s.offer is not None and s.excluded is None:
                spots.append(s)  # (an eligible Spot offer; never weighed when excluded)

    eligible = [c for c in candidates if c.excluded is None] + spots
    locals_ = [c for c in eligible if c.tier == "local"]
    on_prem = sorted(
        (c for c in eligible if c.tier == "on_prem"),
        key=lambda c: (c.minutes or 0.0, c.id),
    )
    remotes, remote_decided = remote_order(
        [c for c in eligible if c.tier == "remote"],
        latency=latency,
        cached=workload.cached_graphs,
    )
    # prefer_remote keeps this computer's GPU free while another can run the job.
    kept_free = bool(workload.prefer_remote and locals_ and (on_prem or remotes))
    ranked: list[Candidate] = (
        [*on_prem, *remotes, *locals_] if kept_free else [*locals_, *on_prem, *remotes]
    )
    decided: Preference | None
    if locals_ and not kept_free:
        decided = "local_gpu"
    elif on_prem:
        decided = "cost_free_on_prem"
    elif remotes:
        decided = remote_decided
    else:
        decided = None

    warnings: list[AdviceWarning] = []
    by_id = {c.id: c for c in candidates}
    if user_pick is not None:
        picked = by_id.get(user_pick)
        if picked is not None and picked.excluded is None:
            ranked.remove(picked)
            ranked.insert(0, picked)
            decided = "user_pick"
        else:
            why = picked.excluded if picked is not None else "it is not registered"
            warnings.append(
                AdviceWarning(
                    code="user_pick_ineligible",
                    provider=user_pick,
                    message=f"Your pick {user_pick!r} can no longer run this job ({why}); "
                    "the advisor chose again.",
                )
            )

    choice = ranked[0] if ranked else None
    note_alternatives(ranked, remotes, decided)
    reason = reason_for(choice, decided, candidates, remotes, workload, requirements, latency)
    warnings.extend(warnings_for(choice, candidates, workload, requirements, residency))
    warnings.extend(broken)

    alternatives = [c.alternative() for c in ranked[1:]]
    alternatives += [c.alternative() for c in candidates if c.excluded is not None]
    policy_hint = None
    if choice is not None:
        policy_hint = choice.profile.policy_hints.get(
            workload.kind, choice.profile.policy_highlight
        )
    return Advice(
        choice=choice.id if choice else None,
        estimated_cost=wording.cost(choice.cost) if choice else None,
        estimated_cost_usd=choice.cost if choice else None,
        estimated_minutes=round(choice.minutes, 1)
        if choice and choice.minutes is not None
        else None,
        reason=reason,
        decided_by=decided,
        policy_hint=policy_hint,
        warnings=warnings,
        requirements=requirements,
        chosen=choice.alternative() if choice else None,
        alternatives=alternatives,
        settings=applied,
        catalog_version=catalog.version,
    )
