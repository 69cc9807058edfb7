"""``comfyvn-gui advise`` and ``comfyvn-gui jobs ...``: advice and the job queue."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from comfyvn_gui.core import wording
from comfyvn_gui.core.errors import InputError
from comfyvn_gui.service import Service

from .dispatch import dispatch_command
from .output import EXIT_OK, Output, _clip, _read_json_source

if TYPE_CHECKING:
    from comfyvn_gui.core.advisor import Advice


def _advise(args: argparse.Namespace, svc: Service, out: Output, stdin: TextIO) -> int:
    data = _read_json_source(args.request, stdin, "advice request")
    advice = svc.advise(data)
    if not args.text:
        out.json(advice.model_dump(mode="json"))
        return EXIT_OK
    out.line(f"choice:    {advice.choice or 'none'}")
    _advice_lines(advice, out, policy=True)
    return EXIT_OK


def _advice_lines(advice: Advice, out: Output, *, policy: bool) -> None:
    """An advice for people: cost, reason, needs, (policy,) warnings, alternatives."""
    if advice.choice:
        minutes = wording.minutes(advice.estimated_minutes or 0)
        out.line(f"cost:      {advice.estimated_cost} (~{minutes})")
    out.line(f"reason:    {advice.reason}")
    req = advice.requirements
    needs = f"{wording.vram(req.vram_gb)} VRAM, {wording.gpu_hours(req.gpu_hours)}"
    out.line(f"needs:     {needs} on the A10G")
    if policy and advice.policy_hint:
        out.line(f"policy:    {advice.policy_hint}")
    for w in advice.warnings:
        out.line(f"warning:   [{w.code}] {w.message}")
    rows = [
        [
            a.provider,
            "-"
            if a.estimated_cost_usd is None or not a.eligible
            else wording.usd(a.estimated_cost_usd, grouping=False),
            a.excluded_because or a.note or "",
        ]
        for a in advice.alternatives
    ]
    if rows:
        out.line()
        out.table(["ALTERNATIVE", "COST", "WHY NOT"], rows)


def _job_rows(svc: Service, jobs: Sequence[Any]) -> list[list[Any]]:
    rows = []
    for r in svc.jobs_summary(jobs):
        warn = ", ".join(str(c) for c in r["warnings"]) or "-"
        who = " (your pick)" if r["decided_by"] == "user" else ""
        rows.append(
            [
                r["id"],
                _clip(r["title"], 60),
                r["kind"],
                r["status"],
                f"{r['provider'] or 'none'}{who}",
                r["estimated_cost"] or "-",
                _clip(warn, 60),
            ]
        )
    return rows


def _show_job(svc: Service, job: Any, out: Output) -> None:
    events = svc.job_events(job.id)
    advice = svc.job_advice(job)
    if out.as_json:
        out.json(
            {
                **job.model_dump(mode="json"),
                "events": [e.model_dump(mode="json") for e in events],
            }
        )
        return
    compute = job.compute
    out.line(f"job {job.id}: {job.title}")
    out.line(f"kind:      {job.kind} ({job.workload.asset_type}, {job.workload.items} items)")
    out.line(f"status:    {job.status}")
    if compute is not None and advice is not None:
        who = "you" if compute.decided_by == "user" else "the advisor"
        out.line(
            f"provider:  {compute.provider or 'none'} (decided by {who}, "
            f"{compute.decided_at:%Y-%m-%d %H:%M:%S} UTC)"
        )
        _advice_lines(advice, out, policy=False)
    _dispatch_lines(job.meta.get("dispatch") or {}, out)
    out.line()
    out.line("audit trail:")
    for e in events:
        out.line(f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<8} {e.action:<12} {e.message}")


def _dispatch_lines(record: dict[str, Any], out: Output) -> None:
    """What a dispatched job ran on, its ceilings, what it cost against the estimate."""
    if not record:
        return
    out.line()
    out.line(f"dispatched: to {record.get('provider')} at {record.get('dispatched_at')}")
    ceilings = record.get("ceilings") or {}
    stops = f"by {ceilings.get('deadline')}"
    if ceilings.get("cost_usd") is not None:
        stops += f" or at {wording.cost(ceilings['cost_usd'])}"
    out.line(f"guard:     stops {stops}")
    if record.get("bill_guard"):
        out.line(f"           {record['bill_guard']}")
    machine = record.get("machine") or {}
    if machine:
        state = "released" if machine.get("released_at") else "NOT released"
        if machine.get("release_error"):
            state += f" ({machine['release_error']})"
        out.line(f"machine:   {machine.get('name')} ({machine.get('id')}), {state}")
    price = record.get("price") or {}
    if price.get("hourly_usd"):
        source = " live" if price.get("source") == "live" else ""
        out.line(f"price:     {wording.cost(price['hourly_usd'])}/h{source}")
    estimate = (record.get("estimate") or {}).get("cost_usd")
    if record.get("ended_at"):
        actual = wording.cost(float(record.get("actual_cost_usd") or 0))
        against = f" (estimated {wording.cost(estimate)})" if estimate is not None else ""
        billed = wording.number(float(record.get("billed_minutes") or 0))
        out.line(f"spent:     {actual}{against}, {billed} min billed")


def _jobs(args: argparse.Namespace, svc: Service, out: Output, stdin: TextIO) -> int:
    if args.action in ("add", "import-summary"):
        what = "workload" if args.action == "add" else "import summary"
        data = _read_json_source(args.file, stdin, what)
        if args.action == "add":
            jobs = [svc.add_job(data)]
        else:
            folder = args.project_dir or (None if args.file == "-" else str(Path(args.file).parent))
            if folder is not None:
                folder = str(Path(folder).expanduser().absolute())
            jobs = svc.import_summary(data, folder)
        if out.as_json:
            out.json([j.model_dump(mode="json") for j in jobs])
        else:
            out.table(
                ["ID", "JOB", "KIND", "STATUS", "PROVIDER", "COST", "WARNINGS"],
                _job_rows(svc, jobs),
            )
        return EXIT_OK
    if args.action == "list":
        jobs = svc.list_jobs(args.status)
        if out.as_json:
            out.json(list(svc.jobs_summary(jobs)))
        elif not jobs:
            out.line(
                "No jobs queued. Add one with `comfyvn-gui jobs add FILE` or "
                "`comfyvn-gui jobs import-summary FILE`."
            )
        else:
            out.table(
                ["ID", "JOB", "KIND", "STATUS", "PROVIDER", "COST", "WARNINGS"],
                _job_rows(svc, jobs),
            )
        return EXIT_OK
    if args.action == "show":
        _show_job(svc, svc.get_job(args.id), out)
        return EXIT_OK
    if args.action == "pick":
        if args.advisor == bool(args.provider):
            raise InputError(
                "give a provider id, or --advisor to go back to the advisor's choice",
                fields=["provider"],
            )
        job = svc.pick_provider(args.id, None if args.advisor else args.provider)
        if out.as_json:
            out.json(job.model_dump(mode="json"))
        else:
            compute = job.compute
            assert compute is not None
            out.line(
                f"job {job.id} runs on {compute.provider or 'no provider'} "
                f"(decided by {'you' if compute.decided_by == 'user' else 'the advisor'})"
            )
        return EXIT_OK
    if args.action in ("dispatch", "watch", "outputs", "remove"):
        return dispatch_command(args, svc, out, stdin)
    if args.action in ("cancel", "retry"):
        job = svc.cancel_job(args.id) if args.action == "cancel" else svc.retry_job(args.id)
        if out.as_json:
            out.json(job.model_dump(mode="json"))
        elif job.status == "cancelled":
            out.line(f"job {job.id} cancelled: nothing was sent for it")
        elif job.status in ("submitting", "running"):
            out.line(
                f"job {job.id}: cancel asked for; the driver stops it on its provider and "
                f"keeps what finished (`comfyvn-gui jobs watch {job.id}` follows it)"
            )
        else:
            compute = job.compute
            where = compute.provider if compute and compute.provider else "no provider yet"
            out.line(f"job {job.id} is queued again: {where}")
        return EXIT_OK
    changes = svc.readvise(args.because or "asked from the command line")
    if out.as_json:
        out.json(changes)
    elif not changes:
        out.line("no decision changed")
    else:
        for ch in changes:
            out.line(
                f"job {ch['job']}: {ch['previous'] or 'none'} -> {ch['provider'] or 'none'} "
                f"because {ch['because']}"
            )
    return EXIT_OK
