"""A machine's life for one job, written once for every machine provider (docs/architecture.md,
"Dispatch: machines"): launch (or find the one a previous driver launched), the boot wait, the
tunnel to its loopback ComfyUI with exactly the host key the app gave it, the readiness wait,
and release.

* :func:`boot` launches the machine — unless the job already has one (a resumed driver), or the
  provider knows one by the job's resource name (launch is idempotent: a driver that died
  between "launch" and "write it down" finds it) — hands it to ``on_machine`` at once (the
  caller records its refs before anything else happens), then polls it with back-off
  (:data:`POLL_S`: at least a second apart, as Lambda's rate limit asks) until it runs and has an
  SSH address, by ``ready_by`` (the boot ceiling). A machine the provider ended or failed while
  it booted stops the wait.
* :func:`open_machine_comfyui` opens the SSH tunnel (the one-time client key in memory; the
  host key must be the one in the start-up script: a different one means the image's own sshd
  answered first, "not ready yet") and waits for ComfyUI's ``/system_stats``, retrying both
  until ``ready_by``. After the first successful contact, a changed host key stops the job
  (the tunnel's own rule).
  An adapter that reaches the machine another way (a Kubernetes Job through the API server's
  port-forward) has ``open_port(ctx, machine, port)``, an async context manager yielding the
  local URL of the machine's ``port``: it is used instead of the SSH tunnel, with the same
  readiness wait.
* :func:`release` gives the machine back, retrying with back-off (:data:`RELEASE_TRIES`), and
  says whether it worked.

Tests only: ``COMFYVN_GUI_TEST_SSH_ADDRESS_MAP`` (JSON ``{"<machine id, name or address>":
"127.0.0.1:<port>"}``; the key ``*`` maps every machine), read here alone, points a fake
provider's made-up machine address (moto's random instance IPs) at the test's real sshd.
Nothing else differs between tests and production.

Errors are :class:`~.comfyui.ComfyUIError` (``timeout`` for a boot or readiness ceiling,
``failed`` for a machine the provider ended), each one line naming the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from .base import CheckContext, CheckFailure
from .comfyui import ComfyUIClient, ComfyUIError
from .machine import LaunchSpec, Machine, MachineAdapter, MachineKeys

__all__ = [
    "ADDRESS_MAP_ENV",
    "POLL_S",
    "RELEASE_TRIES",
    "boot",
    "open_machine_comfyui",
    "release",
    "ssh_address",
]

log = logging.getLogger(__name__)

#: Waiting for a machine: the first poll after this long, then 1.5x up to the last (seconds).
POLL_S = (1.0, 10.0)
#: Release attempts, and the pause before each retry (seconds, doubled each time).
RELEASE_TRIES = 5
RELEASE_PAUSE_S = 1.0
#: Test-only (see the module's text).
ADDRESS_MAP_ENV = "COMFYVN_GUI_TEST_SSH_ADDRESS_MAP"


def ssh_address(machine: Machine) -> tuple[str, int] | None:
    """Where the machine's sshd answers: its address, or the test-only map's entry for it."""
    text = os.environ.get(ADDRESS_MAP_ENV)
    if text:
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for key in (machine.id, machine.name, machine.ssh_host, "*"):
                target = doc.get(key) if key else None
                if isinstance(target, str) and ":" in target:
                    host, _, port = target.rpartition(":")
                    return host, int(port)
    if machine.ssh_host and machine.ssh_port:
        return machine.ssh_host, int(machine.ssh_port)
    return None


def _reachable(adapter: MachineAdapter, machine: Machine) -> bool:
    if machine.status != "running":
        return False
    return hasattr(adapter, "open_port") or bool(machine.ssh_host and machine.ssh_port)


async def _maybe(result: Awaitable[None] | None) -> None:
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        await result


async def boot(
    ctx: CheckContext,
    adapter: MachineAdapter,
    spec: LaunchSpec,
    *,
    existing: Machine | None,
    on_machine: Callable[[Machine], Awaitable[None] | None],
    ready_by: float,
    poll: tuple[float, float] = POLL_S,
) -> Machine:
    """The job's machine, running with an SSH address (see the module's text). ``ready_by`` is
    a ``time.monotonic()`` deadline."""
    machine = existing
    if machine is None:
        try:
            machine = await adapter.find(ctx, spec.name)
        except CheckFailure as failure:
            raise _error(failure) from None
    if machine is None:
        try:
            machine = await adapter.launch(ctx, spec)
        except CheckFailure as failure:
            raise _error(failure) from None
        log.info("%s: launched %s (%s)", ctx.name, machine.name, machine.id)
    await _maybe(on_machine(machine))
    pause = poll[0]
    while True:
        if _reachable(adapter, machine):
            return machine
        if machine.status in ("released", "failed", "stopped"):
            raise ComfyUIError(
                "failed",
                f"{ctx.name}: the machine {machine.name} ({machine.id}) is "
                f"{machine.raw_status or machine.status} at the provider before it was ready",
            )
        left = ready_by - time.monotonic()
        if left <= 0:
            raise ComfyUIError(
                "timeout",
                f"{ctx.name}: the machine {machine.name} ({machine.id}) did not finish booting "
                f"in time (still {machine.raw_status or machine.status}); it was released",
            )
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 1.5, poll[1])
        try:
            described = await adapter.describe(ctx, machine)
        except CheckFailure as failure:
            if failure.code in ("rate_limited", "unreachable", "timeout"):
                continue  # (asked again after the next pause)
            raise _error(failure) from None
        if described.refs != machine.refs or described.hourly_usd != machine.hourly_usd:
            await _maybe(on_machine(described))
        machine = described


def _error(failure: CheckFailure) -> ComfyUIError:
    code = "timeout" if failure.code == "timeout" else "unreachable"
    if failure.code in ("quota_exhausted", "permission_denied", "invalid_credentials"):
        code = "failed"
    return ComfyUIError(code, failure.message)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def open_machine_comfyui(
    ctx: CheckContext,
    machine: Machine,
    keys: MachineKeys,
    *,
    ssh_user: str,
    comfyui_port: int,
    ready_by: float,
    poll: tuple[float, float] = POLL_S,
    adapter: MachineAdapter | None = None,
) -> AsyncIterator[ComfyUIClient]:
    """A client of the machine's loopback ComfyUI through the SSH tunnel (or the adapter's
    ``open_port``), once it answers (see the module's text); ``ready_by`` is a
    ``time.monotonic()`` deadline."""
    import httpx

    from .http_client import USER_AGENT
    from .ssh import expected_key_policy, machine_target
    from .ssh_tunnel import open_tunnel

    open_port = getattr(adapter, "open_port", None)
    if open_port is not None:

        def opener() -> contextlib.AbstractAsyncContextManager[str]:
            return open_port(ctx, machine, comfyui_port)  # type: ignore[no-any-return]

    else:
        address = ssh_address(machine)
        assert address is not None
        target = machine_target(address[0], address[1], ssh_user, keys.client_private)
        policy = expected_key_policy(ctx.name, target, keys.host_public)

        def opener() -> contextlib.AbstractAsyncContextManager[str]:
            return open_tunnel(ctx, comfyui_port, target=target, policy=policy)

    pause = poll[0]
    last = "no answer yet"
    while True:
        left = ready_by - time.monotonic()
        if left <= 0:
            raise ComfyUIError(
                "timeout",
                f"{ctx.name}: ComfyUI on the machine {machine.name} did not become ready in "
                f"time ({last}); it was released",
            )
        opened = False
        try:
            async with (
                opener() as url,
                httpx.AsyncClient(
                    trust_env=False, follow_redirects=False, headers={"User-Agent": USER_AGENT}
                ) as http,
            ):
                client = ComfyUIClient(url, http)
                try:
                    await client.system_stats()
                except ComfyUIError as exc:
                    last = exc.message
                else:
                    opened = True
                    yield client
                    return
        except ComfyUIError as exc:
            if opened:
                raise
            if exc.code not in ("unreachable", "timeout", "host_key_mismatch"):
                raise
            last = exc.message
        await asyncio.sleep(min(pause, max(0.0, ready_by - time.monotonic())))
        pause = min(pause * 1.5, poll[1])


async def release(
    ctx: CheckContext,
    adapter: MachineAdapter,
    machine: Machine,
    *,
    tries: int = RELEASE_TRIES,
    pause_s: float = RELEASE_PAUSE_S,
) -> str | None:
    """Give the machine back; None when it is released, else why not (after ``tries``)."""
    why = "not tried"
    for attempt in range(tries):
        try:
            await adapter.release(ctx, machine)
        except CheckFailure as failure:
            why = failure.message
        except (OSError, TimeoutError) as exc:
            why = str(exc) or type(exc).__name__
        else:
            log.info("%s: released %s (%s)", ctx.name, machine.name, machine.id)
            return None
        log.warning("%s: releasing %s failed (%s)", ctx.name, machine.id, why)
        if attempt + 1 < tries:
            await asyncio.sleep(pause_s * 2**attempt)
    return why
