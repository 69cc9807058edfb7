"""``comfyvn-gui running``: what this home holds at the providers, and stopping it."""

from __future__ import annotations

import argparse
import asyncio
from typing import TextIO

from comfyvn_gui.core import wording
from comfyvn_gui.service import Service

from .output import EXIT_FAILED, EXIT_OK, Output, _confirm

_STATE = {"in_use": "in use", "orphan": "ORPHAN", "leaked": "LEAKED", "standing": "kept"}


def running_command(args: argparse.Namespace, svc: Service, out: Output, stdin: TextIO) -> int:
    svc.resume_dispatch()  # (a driver retries releases that failed)
    if args.action == "stop":
        return _stop(args, svc, out, stdin)
    report = asyncio.run(svc.running())
    if out.as_json:
        out.json(report.as_json())
    else:
        rows = [
            [
                r.ref,
                r.kind,
                "-" if r.job_id is None else r.job_id,
                _STATE[r.state],
                r.status,
                "-" if r.age_s is None else wording.duration(r.age_s / 60),
                _money(r),
            ]
            for r in report.rows
        ]
        if rows:
            out.table(["REF", "KIND", "JOB", "STATE", "STATUS", "AGE", "COST SO FAR"], rows)
        elif report.errors:  # (the listing is unknown, not empty)
            out.line("the providers that could be listed hold nothing of this home")
        else:
            out.line("nothing of this home is held at any provider")
        for row in report.orphans:
            where = f" (console: {row.console_url})" if row.console_url else ""
            out.note(f"{row.ref} is {_STATE[row.state].lower()}{where}")
        if report.orphans:
            out.note("release them with `comfyvn-gui running stop --orphans`")
    for provider, why in sorted(report.errors.items()):
        out.note(f"comfyvn-gui: {provider} could not be listed: {why}")
    return EXIT_FAILED if report.errors else EXIT_OK


def _money(row: object) -> str:
    cost = getattr(row, "cost_so_far_usd", None)
    monthly = getattr(row, "monthly_usd", None)
    if monthly:
        return f"{wording.cost(monthly)}/month"
    return "-" if cost is None else wording.cost(cost)


def _stop(args: argparse.Namespace, svc: Service, out: Output, stdin: TextIO) -> int:
    what = "every orphan and leaked resource" if args.orphans else args.ref
    if not args.yes and stdin.isatty() and not _confirm(f"Release {what}?", stdin, out):
        out.note("nothing was released")
        return EXIT_FAILED
    stopped = asyncio.run(svc.stop_running(args.ref, orphans=args.orphans))
    if out.as_json:
        out.json({"stopped": [r.as_json() for r in stopped]})
    elif stopped:
        for row in stopped:
            out.line(f"released {row.ref} ({row.kind} {row.name})")
    else:
        out.line("nothing to release")
    return EXIT_OK
