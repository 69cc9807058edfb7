"""The ``ssh`` dispatch target: a ComfyUI listening on the SSH host's loopback, reached through a
tunnel (docs/architecture.md, "Dispatch: where the ComfyUI server is").

:func:`open_tunnel` connects to the provider's host exactly as its checks do
(:func:`.ssh.connect`: only the configured key, ``look_for_keys=False, allow_agent=False``; the
host key compared with the pin *before authentication*; no trust on first use: an unpinned host
or a different key is refused and nothing is sent), then listens on ``127.0.0.1`` on a free port
(never on the network) and forwards every connection made there to ``127.0.0.1:<remote_port>``
on the host, each over its own ``direct-tcpip`` channel (what ``ssh -L`` does). Many connections
at once: httpx's pool and the ComfyUI WebSocket (``/ws``).

* Right after connecting, one channel to the remote port is opened and closed: a ComfyUI that
  does not listen there is an ``unreachable`` naming the ``comfyui_port`` option, before the job
  sends anything.
* Accepting runs on the event loop; opening a channel and connecting (paramiko blocks) run in
  threads; each forwarded connection is two threads copying bytes with blocking reads (one per
  direction; back-pressure is the SSH window and the socket buffers), so the loop never waits on
  the network. SSH keepalives every :data:`KEEPALIVE_S` seconds.
* A dropped connection is made again, once, on the next local connection, with the same pin
  (the host key as the job's first contact saw it). A host key that changed since then, or a
  reconnection that fails, stops the job: the task that opened the tunnel is cancelled and the
  tunnel's context raises :class:`~.comfyui.ComfyUIError` ``host_key_mismatch`` (both
  fingerprints, the ``comfyvn-gui providers trust-host`` fix) or ``unreachable``.
* On exit everything is closed and joined: the listening socket, the channels and their
  threads, the SSH transport and its thread.

paramiko is a :class:`~.lazy.LazyImport` (through :mod:`.ssh`): importing this module loads no
SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Literal

from .base import CheckContext, CheckFailure
from .comfyui import ComfyUIError
from .ssh import (
    SSH_MARGIN_S,
    SshTarget,
    connect,
    fingerprint,
    pin_policy,
    ssh_failures,
    ssh_target,
)

if TYPE_CHECKING:
    import paramiko
else:
    from .lazy import LazyImport

    paramiko = LazyImport("paramiko")

__all__ = ["CONNECT_TIMEOUT_S", "KEEPALIVE_S", "open_tunnel", "tunnel_error"]

log = logging.getLogger(__name__)

#: SSH keepalive interval (seconds): keeps NAT and firewall state alive through a long run.
KEEPALIVE_S = 15
#: The most one SSH connection (TCP, banner, key exchange, authentication) may take (seconds).
CONNECT_TIMEOUT_S = 20.0
#: The most opening one forwarded channel may take (seconds).
CHANNEL_TIMEOUT_S = 15.0
#: How long closing waits for each copying thread and the transport's thread (seconds).
JOIN_S = 5.0
_CHUNK = 64 * 1024
_LOOPBACK = "127.0.0.1"

TunnelCode = Literal["unreachable", "timeout", "untrusted_host", "host_key_mismatch"]


def tunnel_error(code: TunnelCode, message: str) -> ComfyUIError:
    """A :class:`ComfyUIError` with one of the tunnel's codes (the host-key codes are the check
    vocabulary's own, ``core/checks.py``)."""
    return ComfyUIError(code, message)


#: A check failure's code as dispatch reports it; any other (a key file that cannot be read,
#: a refused login, a wrong setting) is ``unreachable``, its message naming what to fix.
_CODES: dict[str, TunnelCode] = {
    "untrusted_host": "untrusted_host",
    "host_key_mismatch": "host_key_mismatch",
    "timeout": "timeout",
}


def _as_error(failure: CheckFailure) -> ComfyUIError:
    """A failure of :func:`.ssh.connect` (or of the settings) as dispatch reports it."""
    return tunnel_error(_CODES.get(failure.code, "unreachable"), failure.message)


def _close_client(client: paramiko.SSHClient | None) -> None:
    """Blocking: close an SSH connection and wait for its transport thread to end."""
    if client is None:
        return
    transport = client.get_transport()
    client.close()
    if transport is not None and transport is not threading.current_thread():
        transport.join(JOIN_S)


class _Pump:
    """One forwarded connection: a local socket and its channel, copied both ways by two
    threads; the last one to finish closes both and tells the tunnel."""

    def __init__(
        self,
        sock: socket.socket,
        chan: paramiko.Channel,
        name: str,
        done: Callable[[_Pump], None],
    ) -> None:
        self.sock = sock
        self.chan = chan
        self._done = done
        self._lock = threading.Lock()
        self._left = 2
        self.threads = (
            threading.Thread(target=self._run, args=(self._up,), name=f"{name}-up", daemon=True),
            threading.Thread(
                target=self._run, args=(self._down,), name=f"{name}-down", daemon=True
            ),
        )

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _up(self) -> None:  # this computer -> the host
        while data := self.sock.recv(_CHUNK):
            self.chan.sendall(data)
        self.chan.shutdown_write()

    def _down(self) -> None:  # the host -> this computer
        while data := self.chan.recv(_CHUNK):
            self.sock.sendall(data)
        self.sock.shutdown(socket.SHUT_WR)

    def _run(self, copy: Callable[[], None]) -> None:
        try:
            copy()
        except (OSError, EOFError, paramiko.SSHException):
            self.abort()  # one side is gone: so is the other
        finally:
            with self._lock:
                self._left -= 1
                last = self._left == 0
            if last:
                self.chan.close()
                self.sock.close()
                self._done(self)

    def abort(self) -> None:
        """Stop both directions now (wakes the threads' blocking reads and writes)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.chan.close()

    def join(self, timeout: float) -> None:
        for thread in self.threads:
            if thread.ident is not None:
                thread.join(timeout)


class _Tunnel:
    """The state of one tunnel (see the module's text); :func:`open_tunnel` drives it."""

    def __init__(
        self,
        ctx: CheckContext,
        remote_port: int,
        target: SshTarget | None = None,
        policy: Any = None,
    ) -> None:
        self.name = ctx.name
        self.provider_id = ctx.provider.id
        self.target = target if target is not None else ssh_target(ctx)
        # (the pin as of now; a machine the app rented: exactly the key it gave the machine)
        self.policy = (
            policy if policy is not None else pin_policy(ctx, self.target, ctx.provider.id)
        )
        self.remote_port = remote_port
        self.client: paramiko.SSHClient | None = None
        self.first_fingerprint: str | None = None
        self.listener: socket.socket | None = None
        self.port = 0
        self.fatal: ComfyUIError | None = None
        self._owner: asyncio.Task[Any] | None = None
        self._owner_cancelling = 0
        self._cancelled_owner = False
        self._closing = False  # set on the loop: no more cancelling of the owner
        self._closed = False  # set under _state: threads hand over nothing any more
        self._state = threading.Lock()
        self._reconnect_lock = asyncio.Lock()
        self._accepting: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pumps: set[_Pump] = set()
        self._served = 0  # connections forwarded so far (names the copying threads)

    @property
    def url(self) -> str:
        return f"http://{_LOOPBACK}:{self.port}"

    @property
    def _where(self) -> str:
        return f"{_LOOPBACK}:{self.remote_port} on {self.target.address}"

    # -- opening ----------------------------------------------------------------------------

    async def start(self, ctx: CheckContext) -> None:
        self._owner = asyncio.current_task()
        self._owner_cancelling = self._owner.cancelling() if self._owner is not None else 0
        try:
            budget = min(CONNECT_TIMEOUT_S, ctx.remaining() - SSH_MARGIN_S)
            if budget <= 0:
                raise TimeoutError
            await ctx.run_blocking(self._first_contact, budget, destination=self.target.address)
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                listener.bind((_LOOPBACK, 0))  # this computer only, a free port
                listener.listen(64)
                listener.setblocking(False)
            except BaseException:
                listener.close()
                raise
            self.listener = listener
            self.port = listener.getsockname()[1]
            self._accepting = asyncio.get_running_loop().create_task(self._accept())
        except BaseException as exc:
            await self.aclose()
            if isinstance(exc, CheckFailure):
                raise _as_error(exc) from None
            if isinstance(exc, TimeoutError):
                raise tunnel_error(
                    "timeout",
                    f"{self.name}: the SSH connection to {self.target.address} was not made in "
                    "time; check that the server is on and that a firewall lets SSH through",
                ) from None
            raise
        log.info("%s: ComfyUI at %s through %s", self.name, self._where, self.url)

    def _first_contact(self, budget: float) -> None:
        """Blocking: connect, remember the host key, and check that the port answers."""
        client = connect(self.name, self.target, self.policy, budget)
        try:
            transport = client.get_transport()
            assert transport is not None
            self.first_fingerprint = fingerprint(transport.get_remote_server_key())
            transport.set_keepalive(KEEPALIVE_S)
            with ssh_failures(self.name, self.target, time.monotonic() + budget):
                self._open(transport, (_LOOPBACK, 0), budget).close()  # does ComfyUI listen?
        except BaseException:
            _close_client(client)
            raise
        self._adopt(client)

    def _adopt(self, client: paramiko.SSHClient) -> None:
        """Blocking: make ``client`` the tunnel's connection, unless the tunnel was closed
        meanwhile (a connect the caller stopped waiting for): then close it."""
        with self._state:
            closed = self._closed
            if not closed:
                self.client = client
        if closed:
            _close_client(client)

    def _open(
        self, transport: paramiko.Transport, peer: tuple[str, int], timeout: float
    ) -> paramiko.Channel:
        """Blocking: a ``direct-tcpip`` channel to the remote port; :class:`CheckFailure`
        naming ``comfyui_port`` when nothing listens there."""
        try:
            return transport.open_channel(
                "direct-tcpip", (_LOOPBACK, self.remote_port), peer, timeout=timeout
            )
        except paramiko.ChannelException as exc:
            raise self._refused(exc) from None

    def _refused(self, exc: paramiko.ChannelException) -> CheckFailure:
        if exc.code == paramiko.common.OPEN_FAILED_CONNECT_FAILED:
            return CheckFailure(
                "unreachable",
                f"{self.name}: no ComfyUI answers at {self._where} (the provider option "
                f"comfyui_port is {self.remote_port}); start ComfyUI on the host listening on "
                f"127.0.0.1 port {self.remote_port} (python main.py --listen 127.0.0.1 --port "
                f"{self.remote_port}), or set comfyui_port to the port it uses",
                fields=["comfyui_port"],
            )
        if exc.code == paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED:
            return CheckFailure(
                "unreachable",
                f"{self.name}: the SSH server {self.target.address} does not let "
                f"{self.target.username!r} forward connections, which reaching ComfyUI on its "
                "loopback needs; ask its administrator to allow it (sshd_config: "
                "AllowTcpForwarding local)",
                fields=["hostname"],
            )
        return CheckFailure(
            "unreachable",
            f"{self.name}: the SSH server {self.target.address} refused a connection to "
            f"{_LOOPBACK}:{self.remote_port} ({exc.text}); check the provider option "
            "comfyui_port",
            fields=["comfyui_port"],
        )

    # -- forwarding ---------------------------------------------------------------------------

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.listener is not None
        while True:
            try:
                conn, peer = await loop.sock_accept(self.listener)
            except OSError as exc:
                if self._closing:
                    return
                log.warning("%s: the tunnel could not accept a connection (%s)", self.name, exc)
                await asyncio.sleep(0.1)
                continue
            if self.fatal is not None or self._closing:
                conn.close()  # nothing goes to a host the job stopped trusting
                continue
            conn.setblocking(True)
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = loop.create_task(self._serve(conn, peer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        try:
            chan = await self._channel(peer)
        except ComfyUIError as exc:
            conn.close()
            log.warning("%s", exc.message)
            return
        except BaseException:
            conn.close()
            raise
        self._served += 1
        pump = _Pump(conn, chan, f"comfyvn-ssh-tunnel-{self.port}-{self._served}", self._finished)
        with self._state:
            closed = self._closed
            if not closed:
                self._pumps.add(pump)
        if closed:
            chan.close()
            conn.close()
            return
        pump.start()

    def _finished(self, pump: _Pump) -> None:
        with self._state:
            self._pumps.discard(pump)

    async def _channel(self, peer: tuple[str, int]) -> paramiko.Channel:
        """A channel for one local connection; a dropped SSH connection is made again once."""
        chan = await self._try_open(await self._transport(), peer)
        if chan is None:  # the connection dropped under it
            chan = await self._try_open(await self._transport(), peer)
        if chan is None:
            raise tunnel_error(
                "unreachable",
                f"{self.name}: the SSH connection to {self.target.address} dropped again at "
                "once; check the network",
            )
        return chan

    async def _try_open(
        self, transport: paramiko.Transport, peer: tuple[str, int]
    ) -> paramiko.Channel | None:
        """A channel over ``transport``, or None when the transport died meanwhile."""
        try:
            return await asyncio.to_thread(self._open, transport, peer, CHANNEL_TIMEOUT_S)
        except CheckFailure as failure:
            raise _as_error(failure) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if not transport.is_active():
                return None
            raise tunnel_error(
                "unreachable",
                f"{self.name}: the SSH server {self.target.address} did not open a connection "
                f"to {_LOOPBACK}:{self.remote_port} ({exc or type(exc).__name__}); check that "
                "ComfyUI is still running there",
            ) from None

    async def _transport(self) -> paramiko.Transport:
        """The live SSH transport; a dropped one is connected again, once, with the same pin."""
        async with self._reconnect_lock:
            if self.fatal is not None:
                raise self.fatal
            client = self.client
            transport = client.get_transport() if client is not None else None
            if transport is not None and transport.is_active():
                return transport
            if self._closing:
                raise tunnel_error("unreachable", f"{self.name}: the tunnel is closing")
            log.warning(
                "%s: the SSH connection to %s dropped; connecting again",
                self.name,
                self.target.address,
            )
            try:
                await asyncio.to_thread(self._reconnect)
            except CheckFailure as failure:
                raise self._stop(failure) from None
            except (paramiko.SSHException, EOFError, OSError) as exc:
                why = str(exc) or type(exc).__name__
                raise self._stop(CheckFailure("unreachable", f"{self.name}: {why}")) from None
            client = self.client
            transport = client.get_transport() if client is not None else None
            if transport is None or not transport.is_active():
                raise self._stop(CheckFailure("unreachable", f"{self.name}: closed at once"))
            return transport

    def _reconnect(self) -> None:
        """Blocking: drop the dead connection and make a new one with the same pin; a host
        key other than the one the job first met is ``host_key_mismatch``."""
        with self._state:
            old, self.client = self.client, None
        _close_client(old)
        client = connect(self.name, self.target, self.policy, CONNECT_TIMEOUT_S)
        try:
            transport = client.get_transport()
            assert transport is not None
            key = transport.get_remote_server_key()
            seen = fingerprint(key)
            if seen != self.first_fingerprint:  # (the pin refuses it first; in case not)
                command = (
                    f"comfyvn-gui providers trust-host {self.provider_id} --fingerprint {seen}"
                )
                raise CheckFailure(
                    "host_key_mismatch",
                    f"{self.name}: the server {self.target.address} presented a DIFFERENT host "
                    f"key ({key.get_name()} {seen}) than the one this job started with "
                    f"({self.first_fingerprint}). Nothing was sent to it. Ask your "
                    f"administrator whether the key changed; only then pin the new one with: "
                    f"{command}",
                )
            transport.set_keepalive(KEEPALIVE_S)
        except BaseException:
            _close_client(client)
            raise
        self._adopt(client)
        log.info("%s: the SSH connection to %s is back", self.name, self.target.address)

    def _stop(self, failure: CheckFailure) -> ComfyUIError:
        """The connection cannot be made again: stop the job (cancel the task that opened the
        tunnel; :func:`open_tunnel` turns that cancellation into this error)."""
        rest = failure.message.removeprefix(f"{self.name}: ")
        code = _CODES.get(failure.code, "unreachable")
        if code in ("host_key_mismatch", "untrusted_host"):
            words = f", on connecting again, {rest}"
        else:
            words = f" it could not be made again ({rest})"
        error = tunnel_error(
            code,
            f"{self.name}: the job was stopped: its SSH connection to {self.target.address} "
            f"dropped and{words}",
        )
        if self.fatal is None:
            self.fatal = error
        log.error("%s", self.fatal.message)
        for pump in self._pump_list():
            pump.abort()
        owner = self._owner
        if not self._closing and not self._cancelled_owner and owner is not None:
            if not owner.done():
                self._cancelled_owner = True
                owner.cancel(msg=self.fatal.message)
        return self.fatal

    def stop_reason(self) -> ComfyUIError | None:
        """The error that stopped the job, if the tunnel cancelled its owner (and nobody
        else did): the cancellation is taken back and this error raised instead."""
        if not self._cancelled_owner or self._owner is None:
            return None
        self._cancelled_owner = False
        if self._owner.uncancel() > self._owner_cancelling:
            return None  # cancelled from outside as well: that cancellation wins
        return self.fatal

    def _pump_list(self) -> list[_Pump]:
        with self._state:
            return list(self._pumps)

    # -- closing ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close everything; waits for the threads even when cancelled meanwhile."""
        if self._closing:
            return
        self._closing = True
        closing = asyncio.ensure_future(self._close())
        interrupted = False
        while not closing.done():
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError:
                interrupted = True
        closing.result()
        if interrupted:
            raise asyncio.CancelledError

    async def _close(self) -> None:
        tasks = [t for t in (self._accepting, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.listener is not None:
            self.listener.close()
        await asyncio.to_thread(self._shut)

    def _shut(self) -> None:
        with self._state:
            self._closed = True
            client, self.client = self.client, None
            pumps = list(self._pumps)
        for pump in pumps:
            pump.abort()
        for pump in pumps:
            pump.join(JOIN_S)
        _close_client(client)


@contextlib.asynccontextmanager
async def open_tunnel(
    ctx: CheckContext,
    remote_port: int,
    *,
    target: SshTarget | None = None,
    policy: Any = None,
) -> AsyncIterator[str]:
    """A tunnel to ``127.0.0.1:remote_port`` on the provider's SSH host; yields its local base
    URL ``http://127.0.0.1:<port>``. Refusals and failures are :class:`ComfyUIError`
    (``untrusted_host``, ``host_key_mismatch``, ``unreachable``, ``timeout``), each one line
    saying what, where and how to fix it. See the module's text.

    ``target`` and ``policy`` (a machine the app rented: its address, the one-time client key,
    exactly the host key the app gave it) replace the ``ssh`` provider's own settings and pin."""
    try:
        tunnel = _Tunnel(ctx, remote_port, target, policy)
    except CheckFailure as failure:
        raise _as_error(failure) from None
    await tunnel.start(ctx)
    try:
        yield tunnel.url
    except BaseException:
        stopped = tunnel.stop_reason()
        if stopped is None:
            raise
        raise stopped from None
    finally:
        await tunnel.aclose()
    stopped = tunnel.stop_reason()  # (the body swallowed the cancellation)
    if stopped is not None:
        raise stopped
