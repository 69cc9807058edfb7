"""The machine side of driving a job (docs/architecture.md, "Dispatch: machines"): for a job
on a provider that rents a machine per job, the driver's job run (``driver._JobRun``) gets
the session from here — the one-time keys (generated, kept in the keyring under the reserved
name ``<provider>/@job<id>`` until release, read there by a driver that resumes the job), the
start-up script and launch spec (``core/machines.py``), launch or find, the boot and readiness
waits and the tunnel (``providers/machine_lifecycle.py``), the machine recorded in
``meta.dispatch.machine`` the moment it exists, and release (retried; a release that keeps
failing leaves the machine listed as leaked by ``running``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from comfyvn_gui.core.errors import ComfyVNError
from comfyvn_gui.core.jobs import Job
from comfyvn_gui.store.secrets import SecretStoreError

__all__ = ["MachineRun"]

log = logging.getLogger(__name__)

#: A keyring that cannot be read is asked again after this long (seconds).
KEYRING_RETRY_S = 30.0


class MachineRun:
    """The machine half of a job run (mixed into the driver's ``_JobRun``)."""

    driver: Any
    job: Job
    job_id: int
    provider: str
    record: dict[str, Any]
    machine: Any
    adapter: Any
    released: str | None
    _inhibitor: Any = None  # systemd-inhibit while a driver-only-guarded machine runs
    timeout: Any = None  # the job's asyncio.Timeout (the bill guard's deadline)

    def write(self, *args: Any, **kwargs: Any) -> None:  # (the job run's)
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def _session(self, ctx: Any, target: str, monotonic_end: float) -> AsyncIterator[Any]:
        """The ComfyUI the runs go to: the provider's own, or one on a machine rented for the
        job (launched or found again, booted, reached through the tunnel; released by
        :meth:`drive` on every path)."""
        if target == "comfyui":
            from comfyvn_gui.providers.comfyui_target import open_comfyui

            async with open_comfyui(ctx) as client:
                yield client
            return
        from comfyvn_gui.core import machines
        from comfyvn_gui.providers.comfyui import ComfyUIError
        from comfyvn_gui.providers.comfyui_target import comfyui_port
        from comfyvn_gui.providers.dispatch_targets import machine_adapter
        from comfyvn_gui.providers.machine import LaunchSpec, Machine
        from comfyvn_gui.providers.machine_lifecycle import boot, open_machine_comfyui

        adapter = machine_adapter(str(self.record.get("template_id")))
        self.adapter = adapter
        self.record["target"] = "machine"
        doc = self.record.get("machine")
        existing = Machine.from_json(doc) if doc and not doc.get("released_at") else None
        if existing is not None:
            self.machine = existing  # (released on every path, even before it is reached)
        keys = await self._machine_keys()
        name = machines.resource_name(self.driver.home.home_id(), self.job_id)
        ceilings = self.record["ceilings"]
        hard = machines.hard_deadline(
            datetime.fromisoformat(self.record["dispatched_at"]),
            runtime_s=float(ceilings["runtime_s"]),
            cost_usd=ceilings.get("cost_usd"),
            hourly_usd=ceilings.get("hourly_usd"),
        )
        ssh_user = ctx.setting("ssh_user") or adapter.default_ssh_user
        port = comfyui_port(ctx)  # (as the SSH provider's: the host's loopback port)
        plan = machines.StartupPlan(
            name=name,
            deadline=hard,
            deadman=adapter.deadman,  # type: ignore[arg-type]
            host_private_key=keys.host_private,
            host_public_key=keys.host_public,
            client_public_key=keys.client_public,
            ssh_user=ssh_user,
            comfyui_port=port,
            mode=adapter.mode,  # type: ignore[arg-type]
            image=ctx.setting("comfyui_image") or getattr(adapter, "default_image", ""),
            comfyui_command=ctx.setting("comfyui_command")
            or getattr(adapter, "default_comfyui_command", ""),
            api_url=_deadman_api(ctx, adapter.deadman),
        )
        job = self.job

        def script_for(hourly: float | None) -> str:
            """The script whose dead-man deadline is the cost ceiling at the price of the
            machine taken (never later than at the advised price)."""
            price = max(float(hourly or 0.0), float(ceilings.get("hourly_usd") or 0.0))
            at_price = machines.hard_deadline(
                datetime.fromisoformat(self.record["dispatched_at"]),
                runtime_s=float(ceilings["runtime_s"]),
                cost_usd=ceilings.get("cost_usd"),
                hourly_usd=price or None,
            )
            return machines.startup_script(dataclasses.replace(plan, deadline=min(hard, at_price)))

        spec = LaunchSpec(
            name=name,
            tags=machines.resource_tags(self.driver.home.home_id(), self.job_id),
            job_id=self.job_id,
            image=plan.image,
            startup_script=machines.startup_script(plan),
            client_public_key=keys.client_public,
            vram_mb=_vram_mb(job),
            max_hourly_usd=_price_ceiling(self.record, ctx),
            zones=self._zones(),
            deadline=hard,
            script_for=script_for,
            spot=self.record.get("offer") == "spot",
        )
        if existing is None:
            self.released = "no machine was rented"
        boot_s = float(self.driver.settings.get("dispatch.boot_timeout_min")) * 60
        ready_by = min(monotonic_end, time.monotonic() + boot_s)
        self._notice(
            "waiting for the machine to boot" if existing else "renting a machine for the job"
        )
        if getattr(adapter, "driver_only_guard", False):
            self._inhibitor = inhibit_sleep(
                f"comfyvn-gui job {self.job_id} runs on a rented {ctx.name} machine that only "
                "this app can stop"
            )
        machine = await boot(
            ctx, adapter, spec, existing=existing, on_machine=self._keep_machine, ready_by=ready_by
        )
        self._notice("waiting for ComfyUI on the machine")
        try:
            async with open_machine_comfyui(
                ctx,
                machine,
                keys,
                ssh_user=ssh_user,
                comfyui_port=port,
                ready_by=ready_by,
                adapter=adapter,
            ) as client:
                self._notice(None)
                yield client
        except ComfyUIError as exc:
            if exc.code == "host_key_mismatch":
                raise ComfyUIError(
                    "host_key_mismatch",
                    f"{exc.message}; the job was stopped and the machine released",
                ) from None
            raise

    def _zones(self) -> tuple[str, ...] | None:
        """The zones the job's data may go to (its residency, else the advisor's setting);
        None: any."""
        zones = self.job.workload.residency
        if zones is None:
            zones = self.driver.settings.get("advisor.residency")
        return tuple(zones) if zones else None

    def _notice(self, text: str | None) -> None:
        if text is None:
            self.record.pop("notice", None)
        else:
            self.record["notice"] = text
        self.write()

    def _keep_machine(self, machine: Any) -> None:
        """Record the machine at once (refs, address, live price), so a driver that takes the
        job over finds it, and release can use the refs as they were at launch."""
        doc = dict(self.record.get("machine") or {})
        doc.update(machine.as_json())
        # (to the millisecond: a rental shorter than a second still bills its minimum)
        doc.setdefault("launched_at", datetime.now(UTC).isoformat(timespec="milliseconds"))
        self.record["machine"] = doc
        self.machine = machine
        if machine.hourly_usd:  # the live price (an offer's dph_total, the instance's price)
            self.record.setdefault("price", {})["hourly_usd"] = float(machine.hourly_usd)
            self.record["price"]["source"] = "live"
            self._cost_deadline(float(machine.hourly_usd), doc["launched_at"])
        self.write(
            events=(
                (
                    "machine",
                    f"machine {machine.name} ({machine.id}) {machine.raw_status or machine.status}",
                    {"id": machine.id, "status": machine.status},
                ),
            )
            if doc.get("status_seen") != machine.status
            else ()
        )
        self.record["machine"]["status_seen"] = machine.status

    def _cost_deadline(self, hourly: float, launched_at: str) -> None:
        """At the live price, the cost ceiling may come sooner than the deadline set at
        dispatch (priced at the advice's price): the job's deadline moves up to it."""
        ceilings = self.record["ceilings"]
        cost = ceilings.get("cost_usd")
        if not cost or hourly <= 0:
            return
        by_cost = datetime.fromisoformat(launched_at) + timedelta(seconds=cost / hourly * 3600)
        if by_cost >= datetime.fromisoformat(ceilings["deadline"]):
            return
        ceilings["deadline"] = by_cost.isoformat(timespec="seconds")
        ceilings["deadline_source"] = "the cost ceiling at the live price"
        timeout = getattr(self, "timeout", None)
        if timeout is not None:
            loop = asyncio.get_running_loop()
            left = (by_cost - datetime.now(UTC)).total_seconds()
            timeout.reschedule(loop.time() + max(0.0, left))

    async def _release(self, ctx: Any) -> None:
        """:meth:`_release_now`, carried to its end even if the job's task is cancelled
        meanwhile (a cancel asked for as the job ends): a release cut in half would leave a
        machine, a provider-side key or a keyring entry behind. The cancellation is passed on
        once it is done."""
        await _to_the_end(self._release_now(ctx))

    async def _release_now(self, ctx: Any) -> None:
        """Give the job's machine back (retried with back-off); the one-time keys are deleted
        from the keyring once it is gone. A release that keeps failing leaves the machine
        listed as leaked (``running``), with the provider's console to check."""
        from comfyvn_gui.providers.machine_lifecycle import release

        stop_inhibiting(getattr(self, "_inhibitor", None))
        self._inhibitor = None
        doc = self.record.get("machine") or {}
        if self.machine is None and doc and not doc.get("released_at"):
            # (given up before the session reached it: a resumed job's machine, cancelled
            # while the driver was still reading the keyring or the inputs)
            from comfyvn_gui.providers.dispatch_targets import machine_adapter
            from comfyvn_gui.providers.machine import Machine

            self.machine = Machine.from_json(doc)
            self.adapter = self.adapter or machine_adapter(str(self.record.get("template_id")))
            self.record["target"] = "machine"
        machine = self.machine
        if self.record.get("target") != "machine":
            return
        if machine is None or self.adapter is None:
            if not doc:  # (nothing was rented: the keys go at once)
                await self._forget_keys()
            return
        self.machine = None
        why = await release(ctx, self.adapter, machine, tries=self.driver.release_tries)
        doc = self.record.setdefault("machine", {})
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        if why is None:
            doc["released_at"] = now
            doc.pop("release_error", None)
            self.released = f"the machine {machine.name} ({machine.id}) was released"
            await self._forget_keys()
        else:
            doc["release_error"] = why
            doc["release_failed_at"] = now
            self.released = (
                f"the machine {machine.name} ({machine.id}) could NOT be released ({why}); it may "
                f"still bill: stop it with `comfyvn-gui running stop --orphans` or in the "
                "provider's console"
            )
        self.write(events=(("release", self.released, {"id": machine.id, "ok": why is None}),))

    def _key_owner(self) -> str:
        return f"{self.provider}/@job{self.job_id}"

    async def _machine_keys(self) -> Any:
        """The machine's host and one-time client keys: generated for a new machine and kept
        in the keyring under the reserved name ``<provider>/@job<id>`` until release (a driver
        that resumes the job reads them there; while the keyring cannot be read, it waits)."""
        from comfyvn_gui.providers.machine import MachineKeys, generate_keys

        store = self.driver.registry.secrets
        owner = self._key_owner()
        while True:
            try:
                host = await asyncio.to_thread(store.get, owner, "host_key")
                client = await asyncio.to_thread(store.get, owner, "client_key")
                if host and client:
                    return MachineKeys.from_secrets(host, client)
                if self.record.get("machine"):
                    raise ComfyVNError(
                        f"the SSH keys of job {self.job_id}'s machine are no longer in the "
                        "keyring, so the machine cannot be reached"
                    )
                from comfyvn_gui.core import machines

                keys = generate_keys(
                    machines.resource_name(self.driver.home.home_id(), self.job_id)
                )

                def keep(keys: Any = keys) -> None:
                    for field_name, value in keys.as_secrets().items():
                        store.set(owner, field_name, value)

                # (a keyring write cannot be stopped: a cancellation waits for it, so the
                # release that follows deletes what it wrote)
                await _to_the_end(asyncio.to_thread(keep))
                return keys
            except SecretStoreError as exc:
                self._notice(
                    f"waiting for the keyring ({exc.message}): unlock it to resume job "
                    f"{self.job_id}"
                )
                await asyncio.sleep(KEYRING_RETRY_S)

    async def _forget_keys(self) -> None:
        store = self.driver.registry.secrets
        for field_name in ("host_key", "client_key"):
            try:
                await asyncio.to_thread(store.delete, self._key_owner(), field_name)
            except SecretStoreError as exc:  # (logged, not a failed release: DESIGN)
                log.warning("job %s: a machine key stays in the keyring: %s", self.job_id, exc)


def _deadman_api(ctx: Any, deadman: str) -> str:
    """The API the machine's dead-man switch calls (RunPod's GraphQL, Vast.ai's API)."""
    if deadman == "runpod_pod":
        return ctx.endpoint("graphql") or ""
    if deadman == "vast":
        return ctx.endpoint("api") or ""
    return ""


def _vram_mb(job: Job) -> int:
    """The VRAM the job needs (MB, as marketplaces filter): the advice's requirement."""
    compute = job.compute
    need = None
    if compute is not None:
        need = (compute.advice.get("requirements") or {}).get("vram_gb")
    if not isinstance(need, int | float):
        need = job.workload.vram_gb or 0
    return round(float(need) * 1000)


def _price_ceiling(record: dict[str, Any], ctx: Any) -> float | None:
    """The most an hour of the machine may cost (an offer, instance type or bid above it is
    not taken): the provider's ``price_ceiling_usd`` meta; else the price at which the job's
    estimated time just costs its cost ceiling (with the default factor, twice the price the
    advice used: a live price a little over the catalog's still fits the ceiling the user
    saw); else the advice's price."""
    meta = getattr(ctx.provider, "meta", None) or {}
    ceiling = meta.get("price_ceiling_usd")
    if isinstance(ceiling, int | float) and not isinstance(ceiling, bool) and ceiling > 0:
        return float(ceiling)
    ceilings = record.get("ceilings") or {}
    minutes = (record.get("estimate") or {}).get("minutes")
    cost = ceilings.get("cost_usd")
    if isinstance(cost, int | float) and isinstance(minutes, int | float) and minutes > 0:
        return round(float(cost) / (float(minutes) / 60), 4)
    hourly = ceilings.get("hourly_usd")
    return float(hourly) if hourly else None


def inhibit_sleep(why: str) -> Any:
    """Keep the computer from sleeping while a job runs on a machine whose only guard is this
    driver (systemd-inhibit on Linux, where it exists); the process to stop afterwards, or
    None where the OS offers no way (then nothing is held)."""
    import shutil
    import subprocess

    tool = shutil.which("systemd-inhibit")
    if tool is None:
        return None
    try:
        return subprocess.Popen(
            [
                tool,
                "--what=sleep:idle",
                "--who=comfyvn-gui",
                f"--why={why}",
                "--mode=block",
                "sleep",
                "infinity",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        log.info("sleep is not inhibited: %s", exc)
        return None


def stop_inhibiting(proc: Any) -> None:
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except Exception:  # noqa: BLE001 - (a stuck inhibitor is killed)
        proc.kill()


async def _to_the_end(work: Any) -> Any:
    """Await ``work`` to its end even if the caller is cancelled meanwhile; the cancellation
    is raised afterwards."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


#: A release that failed is tried again after this long, doubled each time up to the last
#: (seconds).
RELEASE_RETRY_S = (30.0, 600.0)


async def retry_release(driver: Any, job_id: int) -> bool:
    """Try again to release the machine of an ended job whose release failed; True once it
    is released (its one-time keys are then deleted from the keyring). Uses the machine's
    refs as launched, never today's settings."""
    from comfyvn_gui.providers.base import CheckFailure
    from comfyvn_gui.providers.dispatch_targets import machine_adapter
    from comfyvn_gui.providers.machine import Machine

    job = driver.job_store.get(job_id)
    record = job.meta.get("dispatch") or {}
    doc = dict(record.get("machine") or {})
    if not doc or doc.get("released_at"):
        return True
    provider = str(record.get("provider"))
    machine = Machine.from_json(doc)
    try:
        entry = driver.registry.get(provider)
        secrets = (
            await asyncio.to_thread(driver.registry.read_secrets, entry)
            if entry.secrets_set
            else {}
        )
        adapter = machine_adapter(str(record.get("template_id") or entry.template_id))
        ctx = driver.checks.context(entry, secrets, asyncio.get_running_loop().time() + 60)
        async with asyncio.timeout(60):
            await adapter.release(ctx, machine)
    except (CheckFailure, ComfyVNError, SecretStoreError, LookupError, OSError) as exc:
        why = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        doc["release_error"] = why
        doc["release_failed_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        driver.job_store.write_release(
            job_id, doc, f"releasing the machine {machine.id} failed again: {why}"
        )
        return False
    except TimeoutError:
        return False
    # (the keys go first: once the job says "released", nothing of it is left)
    store = driver.registry.secrets
    for field_name in ("host_key", "client_key"):
        try:
            await asyncio.to_thread(store.delete, f"{provider}/@job{job_id}", field_name)
        except SecretStoreError as exc:
            log.warning("job %s: a machine key stays in the keyring: %s", job_id, exc)
    doc["released_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    doc.pop("release_error", None)
    driver.job_store.write_release(
        job_id, doc, f"the machine {machine.name} ({machine.id}) was released (retried)"
    )
    return True
