"""``comfyvn-gui jobs dispatch|watch|outputs|remove``: running jobs on their providers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from comfyvn_gui.core import wording
from comfyvn_gui.core.errors import ConflictError
from comfyvn_gui.core.jobs import Job
from comfyvn_gui.service import Service

from .output import EXIT_FAILED, EXIT_OK, Output, _confirm


def dispatch_command(args: argparse.Namespace, svc: Service, out: Output, stdin: TextIO) -> int:
    if args.action == "dispatch":
        return _dispatch(args, svc, out, stdin)
    if args.action == "watch":
        return _watch(args.id, svc, out)
    if args.action == "outputs":
        listing = svc.job_outputs(args.id)
        if out.as_json:
            out.json(listing)
            return EXIT_OK
        out.line(f"job {args.id} ({listing['status']}): {listing['folder']}")
        rows = [[o["file"], o["run"], o["node"], o["bytes"]] for o in listing["outputs"]]
        if rows:
            out.table(["FILE", "RUN", "NODE", "BYTES"], rows)
        else:
            out.line("no output files")
        return EXIT_OK
    job = svc.remove_job(args.id)
    if out.as_json:
        out.json({"removed": job.id, "status": job.status})
    else:
        out.line(f"job {job.id} removed from the queue (its outputs stay on disk)")
    return EXIT_OK


def _dispatch(args: argparse.Namespace, svc: Service, out: Output, stdin: TextIO) -> int:
    folder = None
    if args.project_dir:
        folder = str(Path(args.project_dir).expanduser().absolute())
    job = svc.get_job(args.id)
    current = job.compute.provider if job.compute else None
    if args.provider and args.provider != current and job.status == "queued":
        job = svc.pick_provider(args.id, args.provider)
    job = svc.check_dispatch(args.id, folder)  # (refuses before anything is asked)
    compute = job.compute
    assert compute is not None and compute.provider is not None
    items = svc.job_consent(args.id)
    guard = svc.job_bill_guard(args.id)
    if items and not args.yes:
        listed = "; ".join(f"{i.code}: {i.message}" for i in items)
        if not stdin.isatty():
            raise ConflictError(
                f"job {job.id} sends data to {compute.provider} only once you acknowledge "
                f"{len(items)} warning{'s' if len(items) > 1 else ''}: {listed}; read them and "
                "run again with --yes",
                fields=["acknowledge"],
            )
        out.note(f"job {job.id} will run on {compute.provider}. Before anything is sent:")
        for item in items:
            out.note(f"  [{item.code}] {item.message}")
        if guard:
            out.note(f"  [bill guard] {guard}")
        if not _confirm("Upload and run it?", stdin, out):
            out.note(f"job {job.id} not dispatched: nothing was sent")
            return EXIT_FAILED
    job = svc.dispatch_job(
        args.id,
        provider=compute.provider,
        decided_at=compute.decided_at,
        acknowledge=[i.code for i in items],
        project_dir=folder,
        interface="command line",
    )
    if out.as_json:
        out.json(job.model_dump(mode="json"))
    else:
        ceilings = job.meta["dispatch"]["ceilings"]
        stops = f"stops by {ceilings['deadline']}"
        if ceilings.get("cost_usd") is not None:
            stops += f" or at {wording.cost(ceilings['cost_usd'])}"
        out.line(
            f"job {job.id} dispatched to {compute.provider} ({stops}); follow it with "
            f"`comfyvn-gui jobs watch {job.id}`"
        )
        if guard:
            out.note(f"bill guard: {guard}")
    return EXIT_OK


def describe(job: Job) -> str:
    """One line of a job in flight or ended, for people."""
    record = job.meta.get("dispatch") or {}
    if job.status in ("completed", "failed", "cancelled") and record.get("ended_message"):
        return f"job {job.id}: {record['ended_message']}"
    runs = record.get("runs") or []
    done = sum(1 for r in runs if r.get("status") == "succeeded")
    text = f"job {job.id}: {job.status}"
    if runs:
        text += f", {done}/{len(runs)} runs done"
    progress = record.get("progress") or {}
    if progress.get("max"):
        pct = 100 * float(progress.get("value") or 0) / float(progress["max"])
        text += f", run {progress.get('run')} at {pct:.0f}%"
    if record.get("notice"):
        text += f" ({record['notice']})"
    return text


def _watch(job_id: int, svc: Service, out: Output) -> int:
    last: Job | None = None
    try:
        for job in svc.watch_job(job_id):
            last = job
            if not out.as_json:
                out.line(describe(job))
    except KeyboardInterrupt:
        out.note(
            f"stopped watching; the dispatch driver keeps job {job_id} going "
            f"(`comfyvn-gui jobs watch {job_id}` follows it again)"
        )
        return EXIT_OK
    assert last is not None
    if out.as_json:
        out.json(last.model_dump(mode="json"))
    return EXIT_OK if last.status == "completed" else EXIT_FAILED
