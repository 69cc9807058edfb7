"""Which provider changes wait while the provider has work in flight (docs/architecture.md,
"Dispatch": a provider with work in flight cannot be removed, replaced by an import, disabled,
or have its credentials, location or endpoints changed; the error names the jobs).

"Work in flight" is handed in as ``{provider id: [job ids]}`` (the service builds it: jobs
submitting or running, later also jobs whose resources are not released yet). Each ``check_*``
function raises :class:`~comfyvn_gui.core.errors.ConflictError` naming the provider, its jobs
and what to do, or returns; the providers feature asks them before it changes anything, so a
refusal leaves the registry and the keyring as they were. Harmless changes (name, notes and
other ``meta``, the GPU, the machine size) stay allowed. Pure: the current values of the
secrets an update writes are read by the caller.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from .catalog import ProviderProfile
from .errors import ConflictError
from .models import LOCAL_ID, ImportPlan, ProviderEntry
from .provider_rules import ProviderChange

__all__ = [
    "CONNECTION_OPTIONS",
    "LOCATION_OPTIONS",
    "InFlight",
    "LockedChange",
    "check_import",
    "check_remove",
    "check_remove_all",
    "check_update",
    "locked_change",
]

#: Provider id -> the ids of the jobs it has in flight.
InFlight = Mapping[str, Sequence[int]]

#: Settings (auth fields or options of the catalog's profiles) that say where a provider's work
#: runs or its data is kept: the region or zone, the Azure resource group, the CoreWeave
#: namespace, the RunPod serverless endpoint, the storage bucket, the port of an SSH host's
#: ComfyUI (where a running job's tunnel leads). The one list of them.
LOCATION_OPTIONS: Final = frozenset(
    {"region", "zone", "resource_group", "namespace", "endpoint_id", "bucket", "comfyui_port"}
)
#: Options that are part of how the app authenticates to a provider although they are not
#: auth fields (a LAN node's TLS trust store and client certificate); every auth field, secret
#: or not, counts as a credential as well.
CONNECTION_OPTIONS: Final = frozenset({"ca_bundle", "client_cert", "client_key"})

_MAX_JOBS_NAMED = 10


@dataclass(frozen=True)
class LockedChange:
    """What an update would change of a provider that matters to its work in flight."""

    disables: bool = False
    credentials: tuple[str, ...] = ()
    location: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()

    @property
    def fields(self) -> list[str]:
        """The changed fields, as an error's ``fields`` names them."""
        return [
            *(["enabled"] if self.disables else []),
            *self.credentials,
            *self.location,
            *self.endpoints,
        ]

    def __bool__(self) -> bool:
        return bool(self.fields)

    def describe(self) -> str:
        """``disabling it or changing its credentials (api_key)``."""
        what = []
        if self.disables:
            what.append("disabling it")
        changes = [
            f"its {aspect} ({', '.join(names)})"
            for aspect, names in (
                ("credentials", self.credentials),
                ("location", self.location),
                ("endpoints", self.endpoints),
            )
            if names
        ]
        if changes:
            what.append("changing " + " and ".join(changes))
        return " or ".join(what)


def locked_change(
    profile: ProviderProfile,
    old: ProviderEntry,
    new: ProviderEntry,
    *,
    writes: Mapping[str, str],
    clears: Collection[str],
    stored: Mapping[str, str],
) -> LockedChange:
    """What of ``old`` -> ``new`` is locked while the provider has work in flight.

    ``writes`` / ``clears``: the secrets the update writes / deletes (a secret absent from the
    input is kept, and so is not in either); ``stored``: the current values of the written
    secrets that are stored (a value written unchanged is no change).
    """
    credentials: list[str] = []
    location: list[str] = []
    for name, value in writes.items():
        if stored.get(name) != value:
            credentials.append(name)
    credentials += [name for name in clears if name not in writes]
    secret_names = set(profile.secret_fields)
    auth_names = {f.name for f in profile.auth_fields}
    for f in profile.all_fields:
        name = f.name
        if name in secret_names or old.config.get(name) == new.config.get(name):
            continue
        if name in LOCATION_OPTIONS:
            location.append(name)
        elif name in auth_names or name in CONNECTION_OPTIONS:
            credentials.append(name)
    endpoints: list[str] = []
    if old.base_url != new.base_url:
        endpoints.append("base_url")
    if (old.config.get("endpoints") or {}) != (new.config.get("endpoints") or {}):
        endpoints.append("endpoints")
    return LockedChange(
        disables=old.enabled and not new.enabled,
        credentials=tuple(sorted(set(credentials))),
        location=tuple(location),
        endpoints=tuple(endpoints),
    )


def check_update(
    profile: ProviderProfile,
    old: ProviderEntry,
    change: ProviderChange,
    *,
    stored: Mapping[str, str],
    job_ids: Sequence[int],
) -> None:
    """Refuse an update of ``old`` (``change``: the normalised input) that is locked while
    ``job_ids`` are in flight; the error's ``fields`` name what it would change."""
    if not job_ids:
        return
    locked = locked_change(
        profile, old, change.entry, writes=change.writes, clears=change.clears, stored=stored
    )
    if not locked:
        return
    raise ConflictError(
        f"{_has_work(old.id, job_ids)}: {_wait(job_ids)} before {locked.describe()}; nothing "
        "was saved (its name, notes and other settings can still be changed)",
        fields=locked.fields,
    )


def check_remove(provider_id: str, in_flight: InFlight) -> None:
    """Refuse removing a provider with work in flight."""
    job_ids = in_flight.get(provider_id)
    if job_ids:
        raise ConflictError(
            f"{_has_work(provider_id, job_ids)}: {_wait(job_ids)} before removing it; nothing "
            "was removed",
            fields=["id"],
        )


def check_remove_all(in_flight: InFlight) -> None:
    """Refuse removing every provider while any (but the built-in one, which stays) has work
    in flight."""
    busy = {pid: jobs for pid, jobs in sorted(in_flight.items()) if jobs and pid != LOCAL_ID}
    if not busy:
        return
    every = sorted(j for jobs in busy.values() for j in jobs)
    named = [f"{pid} ({_jobs(jobs)})" for pid, jobs in busy.items()]
    verb = "has" if len(named) == 1 else "have"
    raise ConflictError(
        f"{_and(named)} {verb} work in flight: {_wait(every)} before removing every provider; "
        "nothing was removed",
        fields=["all"],
    )


def check_import(plan: ImportPlan, in_flight: InFlight) -> None:
    """Refuse an import (``plan``: what it would do) that would delete (replace) or overwrite
    a provider with work in flight. A provider it skips is untouched and does not count."""
    deleted = [pid for pid in plan.delete if in_flight.get(pid)]
    if deleted:
        _refuse_import(deleted, in_flight, "replace", "remove", "or import without replace")
    updated = [pid for pid in plan.update if in_flight.get(pid)]
    if updated:
        _refuse_import(
            updated, in_flight, "overwrite", "overwrite", "or import without overwrite to skip it"
        )


def _refuse_import(
    pids: list[str], in_flight: InFlight, flag: str, verb: str, alternative: str
) -> None:
    every = sorted(j for pid in pids for j in in_flight[pid])
    named = [f"{pid} ({_jobs(in_flight[pid])})" for pid in pids]
    which = "which has" if len(named) == 1 else "which have"
    raise ConflictError(
        f"the import would {verb} {_and(named)}, {which} work in flight: {_wait(every)} first, "
        f"{alternative}; nothing was imported",
        fields=[flag],
    )


# --------------------------------------------------------------------------- wording


def _jobs(job_ids: Sequence[int]) -> str:
    """``job 3`` / ``jobs 3, 5`` (at most ten named)."""
    ids = sorted(job_ids)
    shown = ", ".join(str(j) for j in ids[:_MAX_JOBS_NAMED])
    if len(ids) > _MAX_JOBS_NAMED:
        shown += f" and {len(ids) - _MAX_JOBS_NAMED} more"
    return f"{'job' if len(ids) == 1 else 'jobs'} {shown}"


def _has_work(provider_id: str, job_ids: Sequence[int]) -> str:
    return f"{provider_id} has work in flight ({_jobs(job_ids)})"


def _wait(job_ids: Sequence[int]) -> str:
    them = "it" if len(job_ids) == 1 else "them"
    return f"wait for {them} to end or cancel {them} (`comfyvn-gui jobs cancel {min(job_ids)}`)"


def _and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"
