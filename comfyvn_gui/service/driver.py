"""The dispatch driver: the one process per home that sends jobs and follows them to their
end (docs/architecture.md, "Dispatch: who drives, names, state, recovery").

``comfyvn-gui driver`` (started detached by :func:`start_driver` from every command that
touches dispatch) takes the home's driver lock (a second driver exits at once), then loops:

* it takes the lease of every job in flight (``submitting`` / ``running``) that no live
  driver holds — holding the lock proves every other driver gone, so their leases are taken
  over at once — and drives each job in a task of its own;
* it renews its leases every :data:`RENEW_S` seconds (a lease lasts :data:`LEASE_S`); every
  write of a job checks the lease's generation, and a job whose lease another driver took is
  dropped without touching the server;
* a job whose cancel was asked for (``jobs cancel``: ``meta.dispatch.cancel_requested``) is
  cancelled on the server (dequeued or interrupted), what finished is kept, and it ends
  ``cancelled``;
* it exits when nothing is in flight.

Driving a job: the provider's ComfyUI is opened (``providers/comfyui_target.py``), the runs
are executed (``providers/comfyui_runs.py``: preflight, upload, queue, follow, download) under
the job's absolute deadline (the bill guard's), and every change of a run (a prompt queued, a
run ended, progress) is written to ``meta.dispatch`` so a driver that takes the job over
resumes it: runs that succeeded are kept, prompts the server still holds are followed, not
queued again. The end is told in words (``core/dispatch.ended_message``): what failed, what
was released, what was spent, what to do.

On SIGTERM (logout, shutdown) the driver gives its jobs up (their leases dropped) and exits:
the jobs stay in flight on the provider's own ComfyUI and the next driver resumes them. The
providers of part 1 (local, LAN, SSH, custom) bill nothing the app started; providers whose
only guard is the driver come with their machines (and the sleep inhibitor) in part 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from comfyvn_gui.core import dispatch as rules
from comfyvn_gui.core.errors import ComfyVNError
from comfyvn_gui.core.jobs import ENDED, IN_FLIGHT, Job
from comfyvn_gui.core.runs import kind_template
from comfyvn_gui.providers.machine_lifecycle import RELEASE_TRIES
from comfyvn_gui.store.audit import AuditLog
from comfyvn_gui.store.driver_lock import (
    driver_env_home,
    driver_lock,
    driver_log,
    driver_pid_file,
    driver_running,
)
from comfyvn_gui.store.jobs import JobStore, LeaseLost
from comfyvn_gui.store.paths import Home
from comfyvn_gui.store.registry import Registry
from comfyvn_gui.store.secrets import SecretStoreError
from comfyvn_gui.store.settings import SettingsStore

from .checks import ChecksFeature
from .driver_machines import KEYRING_RETRY_S, RELEASE_RETRY_S, MachineRun, retry_release
from .inputs import run_inputs

__all__ = ["LEASE_S", "RENEW_S", "Driver", "start_driver"]

log = logging.getLogger(__name__)

#: How long a lease lasts, and how often a driver renews its own (seconds).
LEASE_S = 60.0
RENEW_S = 20.0
#: How often the driver looks for new jobs and cancel requests (seconds).
POLL_S = 0.5
#: Progress is written at most this often per job (seconds).
PROGRESS_EVERY_S = 0.5
#: A driver with nothing in flight for this long exits (seconds).
IDLE_EXIT_S = 3.0

_children: list[int] = []  # pids of drivers this process started (reaped when they end)


def _reap_children() -> None:
    for pid in list(_children):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _children.remove(pid)


def start_driver(home: Home) -> bool:
    """Start ``comfyvn-gui driver`` for ``home``, detached in its own session, unless one
    runs; True if one was started. Its output goes to ``logs/driver.log``. (Spawned without
    a ``Popen`` object: the driver outlives the command that started it by design.)"""
    if sys.platform != "win32":
        _reap_children()
    if driver_running(home):
        return False
    env = {**os.environ, **driver_env_home(home)}
    argv = [sys.executable, "-m", "comfyvn_gui", "driver"]
    log_path = str(driver_log(home))
    if sys.platform == "win32":  # pragma: no cover - not tested here
        with open(log_path, "ab") as out:
            subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
                creationflags=subprocess.CREATE_NEW_PROCESS_GROUP | 0x00000008,  # DETACHED
            )
        return True
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    pid = os.posix_spawn(
        sys.executable,
        argv,
        env,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, log_path, flags, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    _children.append(pid)
    return True


class _Stop(Exception):
    """Why a job's task was cancelled: ``cancel`` (the user), ``abandon`` (the lease was
    lost, or the driver stops: leave the job to the next driver)."""


class Driver:
    """One home's dispatch driver (see the module's text)."""

    def __init__(
        self,
        *,
        home: Home,
        job_store: JobStore,
        registry: Registry,
        checks: ChecksFeature,
        settings: SettingsStore,
        audit: AuditLog,
        lease_s: float = LEASE_S,
        renew_s: float = RENEW_S,
        poll_s: float = POLL_S,
        idle_exit_s: float = IDLE_EXIT_S,
        release_tries: int = RELEASE_TRIES,
        release_retry_s: tuple[float, float] = RELEASE_RETRY_S,
    ) -> None:
        self.home = home
        self.job_store = job_store
        self.registry = registry
        self.checks = checks
        self.settings = settings
        self.audit = audit
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.poll_s = poll_s
        self.idle_exit_s = idle_exit_s
        self.release_tries = release_tries  # (a release is tried this often at once)
        self.release_retry_s = release_retry_s  # (then again after the job ended)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._held: dict[int, int] = {}  # job id -> lease generation
        self._why: dict[int, str] = {}  # job id -> cancel | abandon
        self._started: set[int] = set()  # jobs whose task runs (may be cancelled)
        self._stopping: asyncio.Event | None = None
        self._signalled = False  # SIGTERM: machines are released on the way out
        # ended jobs whose machine's release failed: job id -> (next try, pause)
        self._release_due: dict[int, tuple[float, float]] = {}
        self._releasing: dict[int, asyncio.Task[bool]] = {}
        self._lost: set[int] = set()  # jobs whose lease another driver took

    # -- the process -----------------------------------------------------------------------

    def run(self) -> int:
        """Run until nothing is in flight (0), or return at once (0) when another driver of
        this home runs."""
        from filelock import Timeout

        lock = driver_lock(self.home)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("another dispatch driver runs for this home; this one exits")
            return 0
        pid_file = driver_pid_file(self.home)
        try:
            pid_file.write_text(f"{os.getpid()}\n", "ascii")
            asyncio.run(self.main())
        finally:
            pid_file.unlink(missing_ok=True)
            lock.release()
        return 0

    def stop(self) -> None:
        """Give every job up and exit (SIGTERM). Jobs on machines that nothing but this driver
        can stop (Lambda) are cancelled and their machines released first."""
        self._signalled = True
        if self._stopping is not None:
            self._stopping.set()

    def releases_on_abandon(self, job_id: int, *, driver_only: bool) -> bool:
        """A job being given up releases its machine when the user cancelled it, or when this
        driver stops (SIGTERM: logout, shutdown) and nothing but this driver could stop the
        machine's bill (``driver_only``); never when another driver took its lease. A machine
        with its own dead-man switch is left to the next driver, which resumes the job."""
        why = self._why.get(job_id, "abandon")
        return why == "cancel" or (driver_only and self._signalled and job_id not in self._lost)

    async def main(self) -> None:
        """The loop (call it while holding the driver lock)."""
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, self.stop)
        last_renew = time.monotonic()
        idle_since: float | None = None
        try:
            while not self._stopping.is_set():
                for job_id, generation in self.job_store.claim(
                    self.owner, now=time.time(), lease_s=self.lease_s, takeover=True
                ):
                    self._start(job_id, generation)
                if time.monotonic() - last_renew >= self.renew_s:
                    last_renew = time.monotonic()
                    lost = self.job_store.renew(
                        self.owner, self._held, now=time.time(), lease_s=self.lease_s
                    )
                    for job_id in lost:
                        self._lost.add(job_id)
                        self._cancel(job_id, "abandon")
                self._look_for_cancels()
                self._reap()
                unreleased = self._retry_releases()
                if not self._tasks and not unreleased and self.job_store.count(IN_FLIGHT) == 0:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since >= self.idle_exit_s:
                        break
                else:
                    idle_since = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll_s)
        finally:
            for task in self._releasing.values():
                task.cancel()
            for job_id in list(self._tasks):
                self._cancel(job_id, "abandon")
            if self._tasks:
                await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            for job_id, generation in list(self._held.items()):
                with contextlib.suppress(Exception):
                    self.job_store.drop_lease(job_id, self.owner, generation)
            self._held.clear()
            self._tasks.clear()

    def _retry_releases(self) -> bool:
        """Try again, with back-off, the releases that failed after their job ended; True
        while any machine is unreleased (the driver stays)."""
        now = time.monotonic()
        for job_id, task in list(self._releasing.items()):
            if task.done():
                del self._releasing[job_id]
                ok = not task.cancelled() and task.exception() is None and task.result()
                if ok:
                    self._release_due.pop(job_id, None)
                else:
                    first, most = self.release_retry_s
                    _, pause = self._release_due.get(job_id, (now, first))
                    pause = min(pause * 2, most)
                    self._release_due[job_id] = (now + pause, pause)
        unreleased = self.job_store.unreleased()
        for job_id in unreleased:
            if job_id in self._tasks or job_id in self._releasing:
                continue
            due, _ = self._release_due.setdefault(
                job_id, (now + self.release_retry_s[0], self.release_retry_s[0])
            )
            if now >= due:
                self._releasing[job_id] = asyncio.create_task(retry_release(self, job_id))
        return bool(unreleased)

    def _start(self, job_id: int, generation: int) -> None:
        self._held[job_id] = generation
        self._why.pop(job_id, None)
        self._tasks[job_id] = asyncio.create_task(self._drive(job_id, generation))

    def _cancel(self, job_id: int, why: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None and not task.done():
            self._why.setdefault(job_id, why)
            task.cancel()

    def _reap(self) -> None:
        for job_id, task in list(self._tasks.items()):
            if task.done():
                del self._tasks[job_id]
                generation = self._held.pop(job_id, None)
                if not task.cancelled() and task.exception() is not None:
                    log.error("job %s: the driver's task failed", job_id, exc_info=task.exception())
                if generation is not None:
                    with contextlib.suppress(Exception):
                        self.job_store.drop_lease(job_id, self.owner, generation)

    def _look_for_cancels(self) -> None:
        for job_id in list(self._tasks):
            # (a task not started yet reads the request itself: cancelling it before its
            # first step would end it with nothing written, and the job be taken again)
            if self._why.get(job_id) or job_id not in self._started:
                continue
            try:
                job = self.job_store.get(job_id)
            except ComfyVNError:
                self._cancel(job_id, "abandon")
                continue
            if (job.meta.get("dispatch") or {}).get("cancel_requested"):
                self._cancel(job_id, "cancel")

    # -- one job ---------------------------------------------------------------------------

    async def _drive(self, job_id: int, generation: int) -> None:
        run = _JobRun(self, job_id, (self.owner, generation))
        self._started.add(job_id)
        try:
            await run.drive()
        except LeaseLost:
            log.info("job %s was taken over by another driver", job_id)
        except asyncio.CancelledError:
            why = self._why.get(job_id, "abandon")
            if why == "cancel":
                with contextlib.suppress(LeaseLost):
                    run.end("cancelled", reason="you cancelled it")
            elif run.released_on_stop:  # (the driver stopped: the machine was released)
                with contextlib.suppress(LeaseLost):
                    run.end(
                        "failed",
                        reason="the app's dispatch driver was stopped (logout or shutdown) "
                        "while the job ran on a rented machine",
                    )
            # abandon: the job stays in flight for the next driver (nothing written)
        finally:
            self._started.discard(job_id)


class _JobRun(MachineRun):
    """Driving one job: its ``meta.dispatch`` in memory, written under the lease."""

    def __init__(self, driver: Driver, job_id: int, lease: tuple[str, int]) -> None:
        self.driver = driver
        self.job_id = job_id
        self.lease = lease
        self.store = driver.job_store
        self.job: Job = self.store.get(job_id)
        self.record: dict[str, Any] = dict(self.job.meta.get("dispatch") or {})
        self.provider = str(self.record.get("provider") or self.job.meta["compute"]["provider"])
        self._last_progress = 0.0
        self._progress_task: asyncio.Task[None] | None = None
        self.machine: Any = None  # the machine rented for the job, until released
        self.adapter: Any = None  # its provider's machine adapter
        self.released: str | None = None  # what release said (the end's words)
        self.released_on_stop = False  # SIGTERM released a machine only this driver guards
        # (serverless: the seconds billed before this driver took the job over)
        self._billed_before = float(self.record.get("billed_s") or 0.0)

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        status: str | None = None,
        message: str = "",
        events: tuple[tuple[str, str, dict[str, Any]], ...] = (),
    ) -> None:
        old = self.job.status
        self.job = self.store.write_dispatch(
            self.job_id, self.lease, self.record, status=status, message=message, events=events
        )
        if status is not None and status != old:
            self.driver.audit.event(
                "job.status",
                job=self.job_id,
                provider=self.provider,
                previous=old,
                status=status,
                message=message,
            )

    def end(self, status: str, *, reason: str | None = None, released: str | None = None) -> None:
        now = datetime.now(UTC)
        billed, cost = rules.job_bill(self.record, now)
        self.record.update(
            ended_at=now.isoformat(timespec="seconds"),
            billed_minutes=round(billed, 4),
            actual_cost_usd=cost,
            last_error=reason if status != "completed" else None,
        )
        self.record.pop("progress", None)
        self.record.pop("notice", None)
        for r in self.record.get("runs") or []:
            if r.get("status") in ("pending", "running"):
                r["status"] = "cancelled" if status == "cancelled" else "failed"
                if status != "cancelled":
                    r["error"] = reason
        message = rules.ended_message(
            status,
            provider=self.provider,
            runs=self.record.get("runs") or [],
            outputs=len(self.record.get("outputs") or []),
            cost_usd=cost,
            reason=reason,
            job_id=self.job_id,
            rented=self.released is not None,
            estimate_usd=(self.record.get("estimate") or {}).get("cost_usd"),
            released=released
            or self.released
            or "nothing to release (the provider's own ComfyUI keeps running; the inputs "
            "uploaded to it stay in its input folder)",
        )
        self.record["ended_message"] = message
        self.write(status, message)

    def _keep(self, report: Any) -> None:
        if report.billed_s is not None:  # (serverless: what this driver's requests ran)
            self.record["billed_s"] = self._billed_before + report.billed_s
        self.record["runs"] = [
            {k: v for k, v in asdict(r).items() if k != "outputs"} for r in report.runs
        ]
        self.record["outputs"] = [asdict(o) for o in report.outputs]
        if report.inputs:
            self.record["inputs"] = {**(self.record.get("inputs") or {}), **report.inputs}
        running = any(r.prompt_id for r in report.runs)
        status = "running" if running and self.job.status == "submitting" else None
        self.write(status, "running: the first prompt is queued on the server" if status else "")

    def _progress(self, index: int, event: Any) -> None:
        data = event.data
        progress = dict(self.record.get("progress") or {})
        if event.type == "progress":
            progress.update(run=index, value=data.get("value"), max=data.get("max"))
        elif event.type == "executing" and data.get("node") is not None:
            progress.update(run=index, node=data.get("node"))
        else:
            return
        self.record["progress"] = progress
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            self.write()

    # -- driving ---------------------------------------------------------------------------

    async def drive(self) -> None:
        job, record = self.job, self.record
        if job.status in ENDED:
            return
        if record.get("cancel_requested"):
            await self._cancel_left_over()
            self.end("cancelled", reason="you cancelled it")
            return
        deadline = datetime.fromisoformat(record["ceilings"]["deadline"])
        left = (deadline - datetime.now(UTC)).total_seconds()
        if left <= 0:
            self.end("failed", reason=_ceiling_reason(record))
            return
        record.setdefault("started_at", datetime.now(UTC).isoformat(timespec="seconds"))
        resumed = bool(record.get("driver"))
        record["driver"] = {"owner": self.lease[0], "generation": self.lease[1]}
        self.write(
            events=(
                (
                    "resumed" if resumed else "driving",
                    "a new driver took the job over and resumes it"
                    if resumed
                    else "the driver took the job",
                    {"generation": self.lease[1]},
                ),
            )
        )
        try:
            entry = self.driver.registry.get(self.provider)
        except ComfyVNError:
            self.end("failed", reason=f"the provider {self.provider} is no longer registered")
            return
        secrets = await self._secrets(entry)
        kind = job.kind
        try:
            inputs = await asyncio.to_thread(
                run_inputs, job.id, kind, job.source, record.get("project_dir")
            )
            template = kind_template(kind, self.driver.settings.get)
        except ComfyVNError as exc:
            self.end("failed", reason=str(exc))
            return
        from comfyvn_gui.providers.comfyui import ComfyUIError
        from comfyvn_gui.providers.comfyui_runs import RunRecord
        from comfyvn_gui.providers.dispatch_targets import dispatch_target

        previous = [
            RunRecord(
                index=int(r["index"]),
                status=str(r["status"]),
                prompt_id=r.get("prompt_id"),
                input=r.get("input"),
                error=r.get("error"),
            )
            for r in record.get("runs") or []
        ]
        for r in previous:  # (their outputs are listed in record["outputs"])
            r.outputs = [_output(o) for o in record.get("outputs") or [] if o["run"] == r.index]
        launch_config = (record.get("refs") or {}).get("config") or {}
        target = dispatch_target(
            str(record.get("template_id") or entry.template_id),
            str(record.get("provider_kind") or ""),
            launch_config,
        )
        if target is None:
            self.end("failed", reason=f"this version cannot run jobs on {self.provider}")
            return
        loop = asyncio.get_running_loop()
        ctx = self.driver.checks.context(entry, secrets, loop.time() + left + 600)
        monotonic_end = time.monotonic() + left
        run_args: dict[str, Any] = dict(
            job_id=job.id,
            kind=kind,
            items=job.workload.items,
            inputs=inputs,
            out_dir=Path(record["outputs_dir"]),
            template=template,
            workflow=job.workload.workflow,
            task=job.source.get("task"),
            previous=previous,
            on_change=self._keep,
            cancel_remote=lambda: self.driver._why.get(self.job_id) != "abandon",
        )
        status, reason = "failed", None
        report = None
        try:
            try:
                async with asyncio.timeout(left) as self.timeout:
                    if target == "serverless":
                        report = await self._serverless(ctx, run_args, monotonic_end)
                    else:
                        async with self._session(ctx, target, monotonic_end) as client:
                            report = await self._execute(client, run_args, monotonic_end)
            except TimeoutError:
                reason = _ceiling_reason(record)
            except ComfyUIError as exc:
                reason = exc.message
            except ComfyVNError as exc:
                reason = str(exc)
            else:
                assert report is not None
                self._keep(report)
                status = report.outcome or "failed"
        except asyncio.CancelledError:
            driver_only = bool(getattr(self.adapter, "driver_only_guard", False))
            if self.driver.releases_on_abandon(self.job_id, driver_only=driver_only):
                self.released_on_stop = self.machine is not None
                await self._release(ctx)
            raise
        await self._release(ctx)
        if report is not None and report.billed_s is not None:
            self.record["billed_s"] = self._billed_before + report.billed_s
        self.end(status, reason=reason)

    async def _execute(self, client: Any, run_args: dict[str, Any], monotonic_end: float) -> Any:
        from comfyvn_gui.providers.comfyui_runs import execute

        return await execute(
            client, on_event=self._progress, run_deadline=lambda _i: monotonic_end, **run_args
        )

    async def _serverless(self, ctx: Any, run_args: dict[str, Any], monotonic_end: float) -> Any:
        """The runs on a RunPod serverless endpoint (worker-comfyui); each request carries the
        time left under the bill guard as its ``policy.executionTimeout``."""
        from comfyvn_gui.providers.runpod_serverless import execute_serverless

        def timeout_ms() -> int:
            return max(5000, int((monotonic_end - time.monotonic()) * 1000))

        def status(text: str) -> None:
            if self.record.get("notice") != text:
                self.record["notice"] = text
                now = time.monotonic()
                if now - self._last_progress >= PROGRESS_EVERY_S:
                    self._last_progress = now
                    self.write()

        return await execute_serverless(
            ctx,
            execution_timeout_ms=timeout_ms,
            on_status=status,
            parallel=int(self.driver.settings.get("dispatch.runpod_parallel")),
            **run_args,
        )

    async def _cancel_left_over(self) -> None:
        """A job whose cancel was asked for while no driver held it: the prompts it left on
        the server are dequeued or interrupted (best effort: a server that is gone runs
        nothing any more), a serverless job's requests cancelled, and a machine rented for it
        released (retried later by the driver if that fails)."""
        from comfyvn_gui.providers.comfyui import ComfyUIError
        from comfyvn_gui.providers.dispatch_targets import dispatch_target

        machine = self.record.get("machine") or {}
        prompts = [
            r["prompt_id"]
            for r in self.record.get("runs") or []
            if r.get("prompt_id") and r.get("status") in ("pending", "running")
        ]
        if not prompts and not (machine and not machine.get("released_at")):
            return
        try:
            entry = self.driver.registry.get(self.provider)
            secrets = await self._secrets(entry)
            loop = asyncio.get_running_loop()
            ctx = self.driver.checks.context(entry, secrets, loop.time() + 120)
            target = dispatch_target(
                str(self.record.get("template_id") or entry.template_id),
                str(self.record.get("provider_kind") or ""),
                (self.record.get("refs") or {}).get("config") or {},
            )
            if machine and not machine.get("released_at"):
                from comfyvn_gui.providers.dispatch_targets import machine_adapter
                from comfyvn_gui.providers.machine import Machine

                self.record["target"] = "machine"
                self.adapter = machine_adapter(str(self.record.get("template_id")))
                self.machine = Machine.from_json(machine)
                await self._release(ctx)  # (the machine's prompts go with it)
            elif target == "serverless":
                from comfyvn_gui.providers.runpod_serverless import cancel_requests

                async with asyncio.timeout(60):
                    await cancel_requests(ctx, prompts)
            elif target == "comfyui":
                from comfyvn_gui.providers.comfyui_target import open_comfyui

                async with asyncio.timeout(60), open_comfyui(ctx) as client:
                    for prompt_id in prompts:
                        with contextlib.suppress(ComfyUIError):
                            await client.cancel(prompt_id)
        except (ComfyVNError, ComfyUIError, TimeoutError) as exc:
            log.warning(
                "job %s: what the job left at the provider was not cancelled: %s",
                self.job_id,
                exc,
            )

    async def _secrets(self, entry: Any) -> dict[str, str]:
        """The provider's secrets; while the keyring cannot be read the job waits in flight
        with a notice (never ``failed``), asking again every :data:`KEYRING_RETRY_S`."""
        if not entry.secrets_set:
            return {}
        while True:
            try:
                return await asyncio.to_thread(self.driver.registry.read_secrets, entry)
            except SecretStoreError as exc:
                self.record["notice"] = (
                    f"waiting for the keyring ({exc.message}): unlock it to resume job "
                    f"{self.job_id}"
                )
                self.write()
                await asyncio.sleep(KEYRING_RETRY_S)
            else:  # pragma: no cover
                break
        return {}


def _output(o: dict[str, Any]) -> Any:
    from comfyvn_gui.providers.comfyui_runs import OutputRecord

    return OutputRecord(o["file"], o["sha256"], int(o["bytes"]), int(o["run"]), str(o["node"]))


def _ceiling_reason(record: dict[str, Any]) -> str:
    ceilings = record.get("ceilings") or {}
    cost = ceilings.get("cost_usd")
    text = (
        f"stopped at its deadline {ceilings.get('deadline')} (the bill guard: "
        f"{round(float(ceilings.get('runtime_s') or 0) / 60, 1)} min of runtime"
    )
    if cost is not None:
        text += f" or ${float(cost):.2f}"
    return text + "); raise dispatch.max_runtime_factor if the job needs longer"
