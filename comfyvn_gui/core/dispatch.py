"""Dispatch's rules: the bill guard's ceilings, what a run really cost, and how a job's end is
told (docs/architecture.md, "Dispatch"). Pure: the feature (``service/dispatch.py``) and the
driver (``service/driver.py``) apply them.

The bill guard
    A runtime ceiling on every provider, free ones included: the advice's estimate x
    ``dispatch.max_runtime_factor`` (default 3) + the provider's start-up, and never under
    :data:`MIN_RUNTIME_S` (a first run loads its models; a tiny job's estimate is seconds). A
    cost ceiling on priced providers: ``min(budget, estimate x dispatch.max_cost_factor)``
    (default 2.0); with neither a price estimate nor a budget, dispatch refuses naming both
    fixes. The ceilings become one absolute UTC deadline, so a restarted driver does not
    restart the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import wording
from .catalog import Billing
from .errors import ConflictError

__all__ = [
    "MIN_RUNTIME_S",
    "Ceilings",
    "actual_cost",
    "billed_minutes",
    "ceilings_for",
    "ended_message",
]

#: The least runtime ceiling (seconds): a first run loads its models, whatever the estimate.
MIN_RUNTIME_S = 600.0


@dataclass(frozen=True)
class Ceilings:
    """What a dispatched job may take: seconds of runtime and (priced providers) dollars."""

    runtime_s: float
    cost_usd: float | None
    hourly_usd: float

    def deadline(self, start: datetime) -> datetime:
        """The absolute time the job must end by: the runtime ceiling and, when priced, the
        time the cost ceiling buys at the hourly price, whichever comes first."""
        seconds = self.runtime_s
        if self.cost_usd is not None and self.hourly_usd > 0:
            seconds = min(seconds, self.cost_usd / self.hourly_usd * 3600)
        return start + timedelta(seconds=seconds)

    def as_json(self, start: datetime) -> dict[str, Any]:
        return {
            "runtime_s": round(self.runtime_s, 1),
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 4),
            "hourly_usd": self.hourly_usd,
            "deadline": self.deadline(start).isoformat(timespec="seconds"),
        }


def _chosen(advice: Mapping[str, Any]) -> Mapping[str, Any]:
    chosen = advice.get("chosen")
    if isinstance(chosen, Mapping):
        return chosen
    for alt in advice.get("alternatives") or []:
        if isinstance(alt, Mapping) and alt.get("provider") == advice.get("choice"):
            return alt
    return {}


def ceilings_for(
    advice: Mapping[str, Any],
    *,
    budget_usd: float | None,
    max_cost_factor: float,
    max_runtime_factor: float,
    job_id: int,
) -> Ceilings:
    """The ceilings of a job dispatched on its advice's choice; a :class:`ConflictError` when
    a priced provider has neither an estimate nor a budget to bound the bill."""
    chosen = _chosen(advice)
    if chosen and chosen.get("price_source") is None and chosen.get("hourly_usd") is None:
        # (a marketplace with no price known: nothing would bound what an offer costs)
        raise ConflictError(
            f"job {job_id} cannot be dispatched to {advice.get('choice')}: its price is not "
            "known, so nothing would bound the bill; set the provider's price ceiling "
            "(meta.price_ceiling_usd, e.g. 0.60 $/h) and the job is held to it",
            fields=["meta.price_ceiling_usd"],
        )
    hourly = float(chosen.get("hourly_usd") or 0.0)
    minutes = advice.get("estimated_minutes") or chosen.get("estimated_minutes")
    runtime_s = MIN_RUNTIME_S
    if isinstance(minutes, int | float) and minutes > 0:
        runtime_s = max(MIN_RUNTIME_S, float(minutes) * 60 * max_runtime_factor)
    cost: float | None = None
    if hourly > 0:
        estimate = advice.get("estimated_cost_usd")
        bounds = []
        if isinstance(estimate, int | float) and estimate > 0:
            bounds.append(float(estimate) * max_cost_factor)
        if budget_usd is not None:
            bounds.append(float(budget_usd))
        if not bounds:
            raise ConflictError(
                f"job {job_id} cannot be dispatched to {advice.get('choice')} with no bound on "
                "its bill: it has no cost estimate and no budget; set one with "
                "`comfyvn-gui settings set advisor.budget_usd 5` or give the job a "
                "budget_usd, or give the job's provider a price",
                fields=["advisor.budget_usd", "budget_usd"],
            )
        cost = min(bounds)
    return Ceilings(runtime_s=runtime_s, cost_usd=cost, hourly_usd=hourly)


def billed_minutes(seconds: float, increment_minutes: float, minimum_minutes: float) -> float:
    """The provider's billing rule (the catalog's, which the advisor applies) over
    ``seconds`` of use."""
    rule = Billing(
        increment_minutes=increment_minutes if increment_minutes > 0 else 1 / 60,
        minimum_minutes=max(0.0, minimum_minutes),
        assumed=False,
    )
    return rule.billed_minutes(max(0.0, seconds) / 60)


def actual_cost(
    seconds: float, *, hourly_usd: float, increment_minutes: float, minimum_minutes: float
) -> tuple[float, float]:
    """(billed minutes, dollars) of ``seconds`` of use at the price used at launch."""
    billed = billed_minutes(seconds, increment_minutes, minimum_minutes)
    return billed, round(hourly_usd * billed / 60, 6)


def billed_seconds(record: Mapping[str, Any], now: datetime) -> float:
    """The seconds of use a dispatched job's record (``meta.dispatch``) bills until ``now``:
    a rented machine from its launch to its release, a machine provider that rented none
    nothing, a serverless job its requests' recorded run time, a provider's own ComfyUI the
    time since the driver started it; nothing before the driver started."""
    started = record.get("started_at")
    if not started and record.get("billed_s") is None:
        return 0.0
    machine = record.get("machine") or {}
    if machine.get("launched_at"):
        until = machine.get("released_at") or now.isoformat()
        launched = datetime.fromisoformat(machine["launched_at"])
        return max(0.0, (datetime.fromisoformat(until) - launched).total_seconds())
    if record.get("target") == "machine":
        return 0.0
    if record.get("billed_s") is not None:
        return float(record["billed_s"])
    return max(0.0, (now - datetime.fromisoformat(str(started))).total_seconds())


def job_bill(record: Mapping[str, Any], now: datetime) -> tuple[float, float]:
    """(billed minutes, dollars) of a dispatched job's record until ``now``, at the price used
    at launch (the driver's figure at a job's end, and the window's "spent so far")."""
    price = record.get("price") or {}
    return actual_cost(
        billed_seconds(record, now),
        hourly_usd=float(price.get("hourly_usd") or 0.0),
        increment_minutes=float(price.get("increment_minutes") or 1),
        minimum_minutes=float(price.get("minimum_minutes") or 0),
    )


def ended_message(
    status: str,
    *,
    provider: str,
    runs: Sequence[Mapping[str, Any]],
    outputs: int,
    cost_usd: float,
    reason: str | None,
    job_id: int,
    released: str,
    rented: bool = False,
    estimate_usd: float | None = None,
) -> str:
    """How a job ended, in one paragraph: what failed, what was released, what was spent,
    what to do (the trail's and ``jobs watch``'s last line)."""
    total = len(runs)
    done = sum(1 for r in runs if r.get("status") == "succeeded")
    spent = f"spent {wording.cost(cost_usd)}" if cost_usd > 0 else "nothing was billed"
    if cost_usd > 0 and estimate_usd:
        spent += f" (estimated {wording.cost(estimate_usd)})"
    got = f"{outputs} output file{'s' if outputs != 1 else ''}"
    if status == "completed":
        gone = f"; {released}" if rented else ""  # (a machine rented for the job)
        return f"completed on {provider}: {done} of {total} runs, {got}{gone}; {spent}"
    failed = [r for r in runs if r.get("status") == "failed"]
    why = reason or "; ".join(
        f"run {r.get('index')}: {r.get('error') or 'failed'}" for r in failed[:3]
    )
    kept = f"the {got} of the runs that finished are kept" if outputs else "no output was made"
    if status == "cancelled":
        head = f"cancelled on {provider}" + (f" ({reason})" if reason else "")
        return (
            f"{head}: {done} of {total} runs finished; {kept}; {released}; {spent}; "
            f"`comfyvn-gui jobs retry {job_id}` queues it again"
        )
    return (
        f"failed on {provider}: {why or 'unknown error'}; {done} of {total} runs finished; "
        f"{kept}; {released}; {spent}; fix the cause and `comfyvn-gui jobs retry {job_id}`"
    )
