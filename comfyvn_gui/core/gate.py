"""The consent gate: nothing leaves the machine until the user acknowledged the job's consent
warnings for THIS provider and THIS advice (docs/architecture.md, "Dispatch").

The consent codes are ``data_leaves_machine``, ``residency``, ``non_open_source_assets`` and
``dpia``; informational codes (``health_unknown``, ``provider_degraded`` ...) are shown, not
asked about. An acknowledgement names the provider and the advice's decision time
(``meta.compute.decided_at`` as the job shows it): a re-advice that changes either voids it.
The decision's own alternative must still be eligible (a hand-edited queue, a residency that
no longer holds): a provider outside the job's zones is refused, explicit pick or not.

:func:`check_consent` is the one place the rule lives; the command line, the API and the
window ask it and show what it says. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import ConflictError, InputError
from .jobs import Job, instant

__all__ = ["CONSENT_CODES", "Acknowledgement", "ConsentItem", "check_consent", "consent_items"]

#: The warning codes a user must acknowledge before anything is sent (extend, do not rename).
CONSENT_CODES: tuple[str, ...] = (
    "data_leaves_machine",
    "residency",
    "non_open_source_assets",
    "dpia",
    "spot_interruption",
)


@dataclass(frozen=True)
class ConsentItem:
    """One warning to acknowledge: its code and the advice's words."""

    code: str
    message: str


@dataclass(frozen=True)
class Acknowledgement:
    """What the user agreed to, for the job's trail."""

    job_id: int
    provider: str
    decided_at: str
    codes: tuple[str, ...]
    interface: str

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "decided_at": self.decided_at,
            "codes": list(self.codes),
            "interface": self.interface,
        }


def consent_items(advice: Mapping[str, Any]) -> list[ConsentItem]:
    """The advice's warnings that need the user's acknowledgement, in the advice's order."""
    items: list[ConsentItem] = []
    for warning in advice.get("warnings") or []:
        if not isinstance(warning, Mapping):
            continue
        code = str(warning.get("code") or "")
        item = ConsentItem(code, str(warning.get("message") or ""))
        if code in CONSENT_CODES and item not in items:
            items.append(item)
    return items


def check_consent(
    job: Job,
    *,
    provider: str | None,
    decided_at: datetime | str | None,
    acknowledge: Iterable[str],
    interface: str,
) -> Acknowledgement:
    """The acknowledgement if ``acknowledge`` covers every consent code of the job's current
    advice for ``provider`` (None: the job's provider) decided at ``decided_at``; else a
    :class:`ConflictError` saying what to review, or an :class:`InputError` for an unknown
    code. Nothing is recorded here."""
    codes = [c for c in acknowledge]
    unknown = sorted({c for c in codes if c not in CONSENT_CODES})
    if unknown:
        raise InputError(
            f"unknown consent code{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"the codes to acknowledge are {', '.join(CONSENT_CODES)}",
            fields=["acknowledge"],
        )
    if job.status != "queued":
        raise ConflictError(
            f"job {job.id} is {job.status}, not queued: only a queued job is dispatched",
            fields=["id"],
        )
    compute = job.compute
    if compute is None or compute.provider is None:
        raise ConflictError(
            f"job {job.id} has no provider that can run it now: see why with "
            f"`comfyvn-gui jobs show {job.id}`",
            fields=["provider"],
        )
    if provider is not None and provider != compute.provider:
        raise ConflictError(
            f"job {job.id} is to run on {compute.provider}, not {provider}: pick {provider} "
            f"first (`comfyvn-gui jobs pick {job.id} {provider}`) and review its warnings",
            fields=["provider"],
        )
    seen = instant(decided_at)
    if seen is None or seen != compute.decided_at:
        raise ConflictError(
            f"job {job.id}'s advice was decided at {compute.decided_at.isoformat()}"
            + (f", not {decided_at}" if decided_at is not None else "")
            + ": it changed since its warnings were shown; review them again",
            fields=["decided_at"],
        )
    chosen = compute.advice.get("chosen")
    if isinstance(chosen, Mapping) and chosen.get("eligible") is False:
        raise ConflictError(
            f"{compute.provider} cannot run job {job.id}: "
            f"{chosen.get('excluded_because') or 'it is not eligible'}",
            fields=["provider"],
        )
    items = consent_items(compute.advice)
    missing = [i for i in items if i.code not in codes]
    if missing:
        listed = "; ".join(f"{i.code}: {i.message}" for i in missing)
        raise ConflictError(
            f"job {job.id} sends data to {compute.provider} only once you acknowledge "
            f"{len(missing)} warning{'s' if len(missing) > 1 else ''}: {listed}",
            fields=["acknowledge"],
        )
    return Acknowledgement(
        job_id=job.id,
        provider=compute.provider,
        decided_at=compute.decided_at.isoformat(),
        codes=tuple(i.code for i in items),
        interface=interface,
    )
