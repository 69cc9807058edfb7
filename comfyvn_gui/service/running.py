"""``running``: every resource this home holds at a provider, and stopping them
(docs/architecture.md, "Dispatch: who drives, names, state, recovery").

Each machine provider is asked, all at once, for the resources named or tagged for this home
(:meth:`~comfyvn_gui.providers.machine.MachineAdapter.resources`: machines, pods, one-time SSH
keys, start-up scripts, a cache volume); serverless requests in flight come from the job store.
Each resource is matched with its job:

* ``in_use``: its job is in flight on that provider;
* ``leaked``: its job ended but the resource was not released (a release that failed);
* ``orphan``: no job of this home owns it (the job was removed, or the app died between launch
  and recording it);
* ``standing``: a resource kept on purpose across jobs (a cache volume the user turned on),
  listed with its monthly price.

A provider whose listing failed is reported with why (the command exits 1), never as an empty
list. Providers with the same account (two entries, one key) list a resource once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from comfyvn_gui.core.errors import ConflictError, NotFoundError, OperationError
from comfyvn_gui.core.jobs import ENDED, IN_FLIGHT
from comfyvn_gui.providers.dispatch_targets import MACHINE_TEMPLATES, machine_adapter
from comfyvn_gui.store.jobs import JobStore
from comfyvn_gui.store.registry import Registry
from comfyvn_gui.store.secrets import SecretStoreError

__all__ = ["RunningFeature", "RunningReport", "RunningRow"]

#: How long one provider's listing (or one stop) may take (seconds).
LIST_TIMEOUT_S = 30.0

State = Literal["in_use", "leaked", "orphan", "standing"]


@dataclass
class RunningRow:
    provider: str
    ref: str  # <provider_id>:<resource id>, what `running stop` takes
    kind: str
    name: str
    job_id: int | None
    state: State
    status: str
    age_s: float | None
    hourly_usd: float | None
    cost_so_far_usd: float | None
    monthly_usd: float | None
    console_url: str | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunningReport:
    rows: list[RunningRow] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # provider -> why it was not listed

    @property
    def orphans(self) -> list[RunningRow]:
        return [r for r in self.rows if r.state in ("orphan", "leaked")]

    def as_json(self) -> dict[str, Any]:
        return {
            "resources": [r.as_json() for r in self.rows],
            "errors": [{"provider": p, "message": m} for p, m in sorted(self.errors.items())],
            "orphans": len(self.orphans),
        }


class RunningFeature:
    def __init__(
        self,
        *,
        home_id: Callable[[], str],
        registry: Registry,
        job_store: Callable[[], JobStore | None],
        context: Callable[..., Any],
    ) -> None:
        self._home_id = home_id
        self.registry = registry
        self._job_store = job_store
        self._context = context

    def has_machine_providers(self) -> bool:
        return bool(self._machine_entries())

    def _machine_entries(self) -> list[Any]:
        return [e for e in self.registry.providers() if e.template_id in MACHINE_TEMPLATES]

    async def _ctx(self, entry: Any) -> Any:
        secrets = {}
        if entry.secrets_set:
            secrets = await asyncio.to_thread(self.registry.read_secrets, entry)
        loop = asyncio.get_running_loop()
        return self._context(entry, secrets, loop.time() + LIST_TIMEOUT_S)

    async def _list_one(self, entry: Any) -> tuple[Any, list[Any]]:
        from comfyvn_gui.providers.base import CheckFailure

        adapter = machine_adapter(entry.template_id)
        try:
            ctx = await self._ctx(entry)
            async with asyncio.timeout(LIST_TIMEOUT_S):
                return adapter, await adapter.resources(ctx, self._home_id())
        except CheckFailure as failure:
            raise _Unlisted(failure.message) from None
        except SecretStoreError as exc:
            raise _Unlisted(f"the keyring cannot be read ({exc.message})") from None
        except TimeoutError:
            raise _Unlisted(f"no answer within {LIST_TIMEOUT_S:.0f} s") from None

    async def listing(self) -> RunningReport:
        """Every resource of this home at every machine provider (see the module's text)."""
        entries = self._machine_entries()
        results = await asyncio.gather(
            *(self._list_one(e) for e in entries), return_exceptions=True
        )
        report = RunningReport()
        jobs = self._jobs()
        now = datetime.now(UTC)
        seen: set[tuple[str, str, str]] = set()
        for entry, result in zip(entries, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, _Unlisted | LookupError):
                    raise result
                report.errors[entry.id] = str(result)
                continue
            _adapter, resources = result
            for res in resources:
                key = (entry.template_id, res.kind, res.id)
                if key in seen:
                    continue
                seen.add(key)
                report.rows.append(_row(entry.id, res, jobs, now))
        report.rows.extend(self._serverless_rows(jobs, now))
        report.rows.sort(key=lambda r: (r.provider, r.state != "orphan", r.ref))
        return report

    def _jobs(self) -> dict[int, Any]:
        store = self._job_store()
        if store is None:
            return {}
        return {j.id: j for j in store.select(brief=True)}

    def _serverless_rows(self, jobs: dict[int, Any], now: datetime) -> list[RunningRow]:
        rows = []
        for job in jobs.values():
            record = job.meta.get("dispatch") or {}
            if job.status not in IN_FLIGHT or not (record.get("refs") or {}).get("config", {}).get(
                "endpoint_id"
            ):
                continue
            for run in record.get("runs") or []:
                if run.get("prompt_id") and run.get("status") in ("pending", "running"):
                    rows.append(
                        RunningRow(
                            provider=str(record.get("provider")),
                            ref=f"{record.get('provider')}:{run['prompt_id']}",
                            kind="serverless_run",
                            name=f"job {job.id} run {run.get('index')}",
                            job_id=job.id,
                            state="in_use",
                            status=str(run.get("status")),
                            age_s=None,
                            hourly_usd=(record.get("price") or {}).get("hourly_usd"),
                            cost_so_far_usd=None,
                            monthly_usd=None,
                            console_url="https://www.runpod.io/console/serverless",
                        )
                    )
        return rows

    async def stop(self, ref: str | None = None, *, orphans: bool = False) -> list[RunningRow]:
        """Release the resource ``ref`` (``<provider_id>:<id>`` as listed), or every orphan
        and leaked one; the rows stopped. A resource a job in flight uses is refused (cancel
        the job: its driver releases it)."""
        report = await self.listing()
        if ref is not None:
            chosen = [r for r in report.rows if r.ref == ref]
            if not chosen:
                provider = ref.partition(":")[0]
                why = report.errors.get(provider)
                raise NotFoundError(
                    f"no resource {ref} of this home"
                    + (f" ({provider} could not be listed: {why})" if why else "")
                    + "; `comfyvn-gui running` lists them",
                    fields=["ref"],
                )
            if chosen[0].state == "in_use":
                raise ConflictError(
                    f"{ref} runs job {chosen[0].job_id}: cancel the job instead "
                    f"(`comfyvn-gui jobs cancel {chosen[0].job_id}`), its driver releases it",
                    fields=["ref"],
                )
            if chosen[0].kind == "serverless_run":
                raise ConflictError(f"{ref} is a request of a job in flight", fields=["ref"])
        elif orphans:
            chosen = report.orphans
        else:
            return []
        from comfyvn_gui.providers.base import CheckFailure

        entries = {e.id: e for e in self._machine_entries()}
        stopped: list[RunningRow] = []
        for row in chosen:
            entry = entries[row.provider]
            adapter = machine_adapter(entry.template_id)
            try:
                ctx = await self._ctx(entry)
                async with asyncio.timeout(LIST_TIMEOUT_S * 2):
                    resources = await adapter.resources(ctx, self._home_id())
                    res = next(
                        (
                            r
                            for r in resources
                            if f"{row.provider}:{r.id}" == row.ref and r.kind == row.kind
                        ),
                        None,
                    )
                    if res is None:
                        continue  # (gone meanwhile)
                    await adapter.stop(ctx, res)
            except (CheckFailure, SecretStoreError, TimeoutError) as exc:
                why = getattr(exc, "message", None) or "no answer in time"
                done = ", ".join(r.ref for r in stopped)
                raise OperationError(
                    f"{row.ref} was not released: {why}"
                    + (f" (released before it: {done})" if done else "")
                    + "; try again, or stop it in the provider's console"
                    + (f" ({row.console_url})" if row.console_url else ""),
                    fields=["ref"],
                ) from None
            stopped.append(row)
        return stopped


class _Unlisted(Exception):
    pass


def _row(provider_id: str, res: Any, jobs: dict[int, Any], now: datetime) -> RunningRow:
    job = jobs.get(res.job_id) if res.job_id is not None else None
    state: State
    if res.kind == "volume":
        state = "standing"
    elif job is None:
        state = "orphan"
    elif job.status in ENDED:
        state = "leaked"
    elif (job.meta.get("dispatch") or {}).get("provider") == provider_id or job.status in IN_FLIGHT:
        state = "in_use"
    else:  # (queued again after a retry: nothing of it runs)
        state = "orphan"
    age = (now - res.created_at).total_seconds() if res.created_at else None
    cost = None
    if age is not None and res.hourly_usd:
        cost = round(res.hourly_usd * age / 3600, 4)
    return RunningRow(
        provider=provider_id,
        ref=f"{provider_id}:{res.id}",
        kind=res.kind,
        name=res.name,
        job_id=res.job_id,
        state=state,
        status=res.status,
        age_s=None if age is None else round(age, 1),
        hourly_usd=res.hourly_usd,
        cost_so_far_usd=cost,
        monthly_usd=res.monthly_usd,
        console_url=res.console_url,
    )
