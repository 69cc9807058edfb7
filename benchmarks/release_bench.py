"""How fast a cancelled job's rented machine is given back, and how hard the boot wait polls the
provider (issue 18, dispatch to rented machines).

Run: ``.venv/bin/python benchmarks/release_bench.py [--runs N] [--boot S]``. Prints figures
and exits 0 (``GOAL MISSED`` lines flag a missed goal); a dev benchmark, not a test.

For each machine provider (Lambda, Paperspace, RunPod pods, Vast.ai) the end-to-end kit of
``tests/service/test_dispatch_machines.py`` is used as the tests use it: the provider's contract
fake, a real sshd booted from the start-up script the app sent (``tests/fakes/machine_host.py``,
kept down for ``--boot`` seconds, default 4, so the boot wait polls), the ComfyUI contract fake
behind it (each node 2 s, so the job is still running when it is cancelled), the real keyring (a
private Secret Service, as ``tests/conftest.py`` starts it) and the detached driver process, in a
temporary home (``COMFYVN_GUI_HOME``) per run. Each request the provider fake receives is
stamped with ``time.monotonic()`` on arrival (the fake server's request list is swapped for one
that stamps), so both figures are read on the provider's side:

1. **release latency**: a job is dispatched and, once it is ``running``, cancelled
   (``Service.cancel_job``); the time from ``cancel_job`` returning to the fake receiving the
   release call (Lambda ``POST /instance-operations/terminate``, Paperspace ``DELETE
   /machines/{id}``, RunPod ``podTerminate``, Vast.ai ``DELETE /instances/{id}/``). Median of
   ``--runs`` (default 3) runs; goal <= 2 s.
2. **polling while waiting**: the provider calls received after the launch call up to the job
   being seen ``running`` (polled every 20 ms), per second of that wait, and the shortest gap
   between two calls from the launch on; against Lambda's rate limit of about 1 request/s (the
   strictest of the four).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEYRING_ENV = ("DBUS_SESSION_BUS_ADDRESS", "XDG_DATA_HOME", "XDG_RUNTIME_DIR")
HOME_ENV = "COMFYVN_GUI_HOME"
RELEASE_GOAL_S = 2.0
LAMBDA_RATE_PER_S = 1.0
NODE_DELAY_S = 2.0
WAIT_S = 90.0

Match = Callable[[Any], bool]


def _is(method: str, pattern: str, body: bytes | None = None) -> Match:
    path = re.compile(pattern)

    def match(req: Any) -> bool:
        return bool(
            req.method == method
            and path.fullmatch(req.path)
            and (body is None or body in (req.body or b""))
        )

    return match


#: provider -> (its launch call, its release call)
CALLS: dict[str, tuple[Match, Match]] = {
    "lambda": (
        _is("POST", r"/api/v1/instance-operations/launch"),
        _is("POST", r"/api/v1/instance-operations/terminate"),
    ),
    "paperspace": (_is("POST", r"/v1/machines"), _is("DELETE", r"/v1/machines/[^/]+")),
    "runpod_pods": (
        _is("POST", r"/graphql", b"podFindAndDeployOnDemand"),
        _is("POST", r"/graphql", b"podTerminate"),
    ),
    "vast": (_is("PUT", r"/api/v0/asks/[^/]+/"), _is("DELETE", r"/api/v0/instances/[^/]+/")),
}


class StampedRequests(list):  # type: ignore[type-arg]
    """The fake server's request list, each request stamped (``.at``) when it arrives."""

    def append(self, req: Any) -> None:
        req.at = time.monotonic()
        super().append(req)


@dataclass
class Figures:
    release_s: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)  # calls/s while waiting
    calls: list[int] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    min_gaps: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def wait_job(svc: Any, job_id: int, what: Callable[[Any], bool], limit: float = WAIT_S) -> Any:
    end = time.monotonic() + limit
    while True:
        job = svc.get_job(job_id)
        if what(job):
            return job
        if time.monotonic() > end:
            raise TimeoutError(f"job {job_id} is {job.status}: {job.meta.get('dispatch')}")
        time.sleep(0.02)


def one_run(provider: str, tmp: Path, boot_s: float, figures: Figures) -> None:
    from tests.fakes.comfyui import running_comfyui
    from tests.fakes.machine_host import MachineHosts
    from tests.service.test_dispatch_machines import KITS

    os.environ[HOME_ENV] = str(tmp / "home")
    hosts = MachineHosts(boot_delay_s=boot_s)
    with contextlib.ExitStack() as stack:
        # (MachineHosts leaves its folder of machines' keys behind: removed here)
        stack.callback(shutil.rmtree, hosts._root, ignore_errors=True)
        stack.enter_context(hosts)
        kit = stack.enter_context(contextlib.contextmanager(KITS[provider])(hosts))
        comfyui = stack.enter_context(running_comfyui(node_delay_s=NODE_DELAY_S))
        measure(provider, tmp, kit, comfyui, figures)


def measure(provider: str, tmp: Path, kit: Any, comfyui: Any, figures: Figures) -> None:
    from tests.service.test_dispatch import dispatch, stop_driver
    from tests.service.test_dispatch_machines import machine_service, queued

    launch_call, release_call = CALLS[provider]
    kit.fake.server.requests = stamped = StampedRequests()
    svc = machine_service(kit, comfyui.port)
    try:
        job = queued(svc, tmp)
        dispatch(svc, job)
        wait_job(svc, job.id, lambda j: j.status == "running")
        running_at = time.monotonic()
        svc.cancel_job(job.id, interface="bench")
        cancelled_at = time.monotonic()
        done = wait_job(svc, job.id, lambda j: j.status in ("completed", "failed", "cancelled"))
        if done.status != "cancelled":
            figures.problems.append(f"the job ended {done.status}, not cancelled")
        requests = list(stamped)
        launches = [r for r in requests if launch_call(r)]
        releases = [r for r in requests if release_call(r) and r.at >= cancelled_at]
        if not launches or not releases:
            figures.problems.append(
                f"no {'launch' if not launches else 'release'} call seen ({len(requests)} requests)"
            )
            return
        figures.release_s.append(releases[0].at - cancelled_at)
        launched_at = launches[0].at
        waiting = [r for r in requests if launched_at < r.at <= running_at]
        span = running_at - launched_at
        figures.calls.append(len(waiting))
        figures.waits.append(span)
        figures.rates.append(len(waiting) / span if span > 0 else 0.0)
        stamps = [launched_at] + [r.at for r in waiting]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        figures.min_gaps.append(min(gaps) if gaps else float("inf"))
        if kit.held():
            figures.problems.append(f"the provider still holds {kit.held()}")
    finally:
        stop_driver(svc, wait_idle=True)
        svc.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--boot", type=float, default=4.0, help="s each machine takes to boot")
    parser.add_argument("providers", nargs="*", default=sorted(CALLS))
    args = parser.parse_args(argv)

    from tests.secret_service import MissingTools, start

    print(
        f"release benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
        f"{args.runs} runs a provider, machines boot in {args.boot:g} s, "
        f"ComfyUI nodes take {NODE_DELAY_S:g} s",
        flush=True,
    )
    t0 = time.monotonic()
    results: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(prefix="comfyvn-release-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            keyring = start(tmp / "keyring")
        except MissingTools as exc:
            print(f"cannot run: {exc}")
            return 0
        saved = {k: os.environ.get(k) for k in (*KEYRING_ENV, HOME_ENV)}
        os.environ.update({k: keyring.env[k] for k in KEYRING_ENV})
        try:
            for provider in args.providers:
                figures = results[provider] = Figures()
                for i in range(args.runs):
                    try:
                        one_run(provider, tmp / f"{provider}-{i}", args.boot, figures)
                    except Exception as exc:  # noqa: BLE001 (a figure missing, said; the rest still run)
                        figures.problems.append(f"run {i + 1}: {type(exc).__name__}: {exc}")
                print(f"  {line(provider, figures)}", flush=True)
        finally:
            keyring.stop()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    print(f"summary ({time.monotonic() - t0:.0f} s):")
    for provider, figures in results.items():
        print(f"  {line(provider, figures)}")
        for problem in figures.problems:
            print(f"    PROBLEM: {problem}")
        if figures.release_s and statistics.median(figures.release_s) > RELEASE_GOAL_S:
            print(
                f"GOAL MISSED: {provider} released {statistics.median(figures.release_s):.2f} s "
                f"after the cancel > {RELEASE_GOAL_S:g} s"
            )
        if figures.rates and max(figures.rates) > LAMBDA_RATE_PER_S:
            print(
                f"GOAL MISSED: {provider} polled {max(figures.rates):.2f} calls/s while waiting "
                f"> Lambda's {LAMBDA_RATE_PER_S:g}/s"
            )
    return 0


def line(provider: str, f: Figures) -> str:
    if not f.release_s:
        return f"{provider:<12} no figures ({len(f.problems)} problems)"
    release = statistics.median(f.release_s)
    each = "/".join(f"{s:.2f}" for s in f.release_s)
    rate = statistics.median(f.rates)
    verdict = "PASS" if release <= RELEASE_GOAL_S else "MISS"
    pace = "PASS" if max(f.rates) <= LAMBDA_RATE_PER_S else "MISS"
    return (
        f"{provider:<12} release {release:5.2f} s after cancel (median; runs {each}; goal <= "
        f"{RELEASE_GOAL_S:g} s: {verdict}) | boot wait {statistics.median(f.calls):.0f} calls in "
        f"{statistics.median(f.waits):.1f} s = {rate:.2f} calls/s (max {max(f.rates):.2f}), "
        f"min gap {min(f.min_gaps):.2f} s (Lambda allows {LAMBDA_RATE_PER_S:g}/s: {pace})"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
