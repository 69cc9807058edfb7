"""The ``ssh`` dispatch target: a ComfyUI on the SSH host's loopback, reached through the
tunnel of providers/ssh_tunnel.py, opened by ``open_comfyui`` as dispatch opens it.

Real counterparts only: the OpenSSH server of tests/fakes/sshd.py (forwarding to its own
127.0.0.1 allowed) and the ComfyUI contract fake, bound to 127.0.0.1, behind it. A TCP relay
(:class:`Relay`) stands for the network between this computer and the host where a test needs
to drop the connection or put another host in its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.core.runs import shipped_template
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext
from comfyvn_gui.providers.comfyui import ComfyUIClient, ComfyUIError, OutputFile, RunEvent
from comfyvn_gui.providers.comfyui_runs import ExecutionReport, execute
from comfyvn_gui.providers.comfyui_target import DISPATCH_KINDS, comfyui_port, open_comfyui
from comfyvn_gui.store.hostkeys import HostKeyStore
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.comfyui import ComfyUIServer, running_comfyui
from tests.fakes.http import arun
from tests.fakes.sshd import Sshd, free_port, running_sshd

CATALOG = load_catalog()
OTHER_FP = "SHA256:" + "A" * 43
PID = "gpu01"
CHECK_THREADS = "comfyvn-check"  # the test's BlockingExecutor: lives as long as the test
FAKE_THREADS = "comfyui-fake"  # the ComfyUI fake's own (it lives as long as its fixture)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="module")
def comfyui() -> Iterator[ComfyUIServer]:
    with running_comfyui() as server:
        yield server


@pytest.fixture
def fresh(comfyui: ComfyUIServer) -> ComfyUIServer:
    """The module's ComfyUI, its request records emptied."""
    comfyui.requests.clear()
    comfyui.authorizations.clear()
    comfyui.uploads.clear()
    return comfyui


@pytest.fixture
def executor() -> Iterator[BlockingExecutor]:
    pool = BlockingExecutor(max_workers=2)
    yield pool
    pool.shutdown()


@pytest.fixture
def pins() -> HostKeyStore:
    return HostKeyStore(resolve_home())


def entry(sshd: Sshd, comfyui_port: int | None, *, hostname: str | None = None) -> ProviderEntry:
    config: dict[str, Any] = {
        "hostname": hostname or sshd.hostname,
        "username": getpass.getuser(),
        "ssh_key_path": str(sshd.client_key),
        "nfs_mount": str(sshd.nfs),
    }
    if comfyui_port is not None:
        config["comfyui_port"] = str(comfyui_port)
    return ProviderEntry(id=PID, template_id="ssh", name="GPU 01", active=True, config=config)


def context(
    provider: ProviderEntry, executor: BlockingExecutor, pins: HostKeyStore
) -> CheckContext:
    return CheckContext(
        provider=provider,
        profile=CATALOG.profile("ssh"),
        secrets={},
        deadline=asyncio.get_running_loop().time() + 60,
        executor=executor,
        host_keys=pins,
    )


class Job:
    """One cg_super_res job through ``open_comfyui``: its report, the tunnel's URL and the
    ComfyUI messages heard (``on_event`` may act on them: a test cuts the network there)."""

    def __init__(self, tmp_path: Path, on_event: Any = None) -> None:
        self.tmp_path = tmp_path
        self.events: list[RunEvent] = []
        self.url = ""
        self._on_event = on_event
        self.src = tmp_path / "cg.png"
        colour = tuple(os.urandom(3))  # a new input: ComfyUI's cache does not skip the run
        Image.new("RGB", (24, 16), colour).save(self.src)

    async def run(self, ctx: CheckContext) -> ExecutionReport:
        def heard(_index: int, event: RunEvent) -> None:
            self.events.append(event)
            if self._on_event is not None:
                self._on_event(event)

        async with open_comfyui(ctx) as client:
            self.url = client.base_url
            return await execute(
                client,
                job_id=1,
                kind="cg_super_res",
                items=1,
                inputs=[self.src],
                out_dir=self.tmp_path / "out",
                template=shipped_template("cg_super_res"),
                on_event=heard,
            )

    def output_size(self, report: ExecutionReport) -> tuple[int, int]:
        [output] = report.outputs
        with Image.open(self.tmp_path / "out" / output.file) as img:
            return img.size


def run_job(
    provider: ProviderEntry,
    executor: BlockingExecutor,
    pins: HostKeyStore,
    tmp_path: Path,
    on_event: Any = None,
) -> tuple[Job, ExecutionReport]:
    job = Job(tmp_path, on_event)

    async def main() -> ExecutionReport:
        return await job.run(context(provider, executor, pins))

    return job, arun(main())


def accepted(sshd: Sshd) -> int:
    """How many logins the SSH server accepted so far."""
    return (sshd.dir / "sshd.log").read_text().count("Accepted publickey")


# --------------------------------------------------------------------------- sockets, threads


def _own_socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    return inodes


def own_tcp() -> list[tuple[str, int, int, str]]:
    """This process's TCP sockets: (local address in /proc's hex, local port, remote port,
    state; ``0A`` is LISTEN)."""
    inodes = _own_socket_inodes()
    rows = []
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[9] in inodes:
                local_ip, local_port = f[1].split(":")
                rows.append((local_ip, int(local_port, 16), int(f[2].split(":")[1], 16), f[3]))
    return rows


def listening() -> set[tuple[str, int]]:
    return {(ip, port) for ip, port, _remote, state in own_tcp() if state == "0A"}


def tunnel_port(url: str) -> int:
    assert url.startswith("http://127.0.0.1:"), url
    return int(url.rsplit(":", 1)[1])


class Relay:
    """A TCP relay on 127.0.0.1 to ``to`` (a port): the network between this computer and the
    SSH host. :meth:`cut` drops every connection through it; new ones go to ``to``."""

    def __init__(self, to: int) -> None:
        self.to = to
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._live: list[socket.socket] = []
        self._all: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._accepting = threading.Thread(target=self._accept, name="relay", daemon=True)
        self._accepting.start()

    @property
    def hostname(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                a, _ = self.listener.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.to), 5)
            except OSError:
                a.close()
                continue
            with self._lock:
                self.connections += 1
                self._live += [a, b]
                self._all += [a, b]
                for src, dst in ((a, b), (b, a)):
                    t = threading.Thread(target=self._pipe, args=(src, dst), daemon=True)
                    t.start()
                    self._threads.append(t)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            live, self._live = self._live, []
        for s in live:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.cut()
        self._accepting.join(5)
        for t in self._threads:
            t.join(5)
        for s in self._all:
            s.close()


def settle() -> None:
    """Hold the event loop (a message handler runs on it) while every forwarded connection
    notices a drop, so the client's next request opens a new one. (A request already on its
    way when the network drops fails, and its run with it: the ComfyUI client does not retry.)
    """
    time.sleep(0.3)


@pytest.fixture
def relay(sshd: Sshd) -> Iterator[Relay]:
    r = Relay(sshd.port)
    yield r
    r.close()


# --------------------------------------------------------------------------- a job end to end


def test_ssh_is_a_dispatch_kind_and_comfyui_port_defaults_to_8188(
    sshd: Sshd, executor: BlockingExecutor, pins: HostKeyStore
) -> None:
    assert "ssh" in DISPATCH_KINDS
    option = CATALOG.profile("ssh").field("comfyui_port")
    assert (option.default, option.required, option.secret) == ("8188", False, False)
    assert option.check_value("70000") is not None and option.check_value("8190") is None

    async def main() -> tuple[int, int]:
        plain = comfyui_port(context(entry(sshd, None), executor, pins))
        return plain, comfyui_port(context(entry(sshd, 8190), executor, pins))

    assert arun(main()) == (8188, 8190)
    bad = entry(sshd, None)
    bad.config["comfyui_port"] = "http"

    async def wrong() -> None:
        async with open_comfyui(context(bad, executor, pins)):
            pass

    with pytest.raises(ComfyUIError) as info:
        arun(wrong())
    assert info.value.code == "unreachable"
    assert "comfyui_port is 'http', not a port number" in info.value.message


def test_a_super_res_job_runs_through_the_tunnel(
    sshd: Sshd, fresh: ComfyUIServer, executor: BlockingExecutor, pins: HostKeyStore, tmp_path: Path
) -> None:
    pins.pin(PID, sshd.hostname, sshd.host_fingerprint)
    job, report = run_job(entry(sshd, fresh.port), executor, pins, tmp_path)
    assert report.outcome == "completed", report.runs
    assert job.output_size(report) == (96, 64)  # RealESRGAN x4 (the fake: a 4x resize)
    assert tunnel_port(job.url) != fresh.port  # the client spoke to the tunnel, not ComfyUI
    paths = {p for _m, p in fresh.requests}
    assert {"/object_info", "/upload/image", "/prompt", "/view"} <= paths
    assert set(fresh.authorizations) == {None}  # no token of any kind


def test_the_websocket_progress_arrives_through_the_tunnel(
    sshd: Sshd, fresh: ComfyUIServer, executor: BlockingExecutor, pins: HostKeyStore, tmp_path: Path
) -> None:
    pins.pin(PID, sshd.hostname, sshd.host_fingerprint)
    job, report = run_job(entry(sshd, fresh.port), executor, pins, tmp_path)
    assert report.outcome == "completed"
    assert ("GET", "/ws") in fresh.requests
    types = [e.type for e in job.events]
    assert types[0] == "execution_start" and types[-1] == "execution_success", types
    progress = [e.data for e in job.events if e.type == "progress"]
    assert progress and progress[-1]["value"] == progress[-1]["max"]
    assert {e.data["prompt_id"] for e in job.events} == {report.runs[0].prompt_id}


def test_many_connections_at_once_and_bytes_intact_both_ways(
    sshd: Sshd, fresh: ComfyUIServer, executor: BlockingExecutor, pins: HostKeyStore, tmp_path: Path
) -> None:
    pins.pin(PID, sshd.hostname, sshd.host_fingerprint)
    blob = os.urandom(3 * 2**20 + 17)  # a few SSH windows' worth

    async def main() -> tuple[int, str, int]:
        async with open_comfyui(context(entry(sshd, fresh.port), executor, pins)) as client:
            assert isinstance(client, ComfyUIClient)
            infos = await asyncio.gather(*(client.object_info() for _ in range(12)))
            assert all("SaveImage" in info for info in infos)
            name = await client.upload_image("blob.png", blob)
            _path, digest, size = await client.download(
                OutputFile(node="0", filename=name, subfolder="", type="input"), tmp_path
            )
            return len(infos), digest, size

    count, digest, size = arun(main())
    assert count == 12
    assert fresh.uploads["blob.png"] == blob
    assert (digest, size) == (hashlib.sha256(blob).hexdigest(), len(blob))


# --------------------------------------------------------------------------- the host key


def test_an_unpinned_host_is_refused_and_nothing_is_sent(
    sshd: Sshd, fresh: ComfyUIServer, executor: BlockingExecutor, pins: HostKeyStore, tmp_path: Path
) -> None:
    logins = accepted(sshd)
    with pytest.raises(ComfyUIError) as info:
        run_job(entry(sshd, fresh.port), executor, pins, tmp_path)
    err = info.value
    assert err.code == "untrusted_host", err.message
    assert sshd.host_fingerprint in err.message
    assert f"comfyvn-gui providers trust-host {PID} --fingerprint {sshd.host_fingerprint}" in (
        err.message
    )
    assert "\n" not in err.message
    assert fresh.requests == [] and fresh.uploads == {}
    assert accepted(sshd) == logins  # refused before authenticating: the key was never offered


def test_a_changed_host_key_is_refused_and_nothing_is_sent(
    sshd: Sshd, fresh: ComfyUIServer, executor: BlockingExecutor, pins: HostKeyStore, tmp_path: Path
) -> None:
    pins.pin(PID, sshd.hostname, OTHER_FP)
    logins = accepted(sshd)
    with pytest.raises(ComfyUIError) as info:
        run_job(entry(sshd, fresh.port), executor, pins, tmp_path)
    err = info.value
    assert err.code == "host_key_mismatch", err.message
    assert sshd.host_fingerprint in err.message and OTHER_FP in err.message
    assert "comfyvn-gui providers trust-host" in err.message
    assert fresh.requests == []
    assert accepted(sshd) == logins


def test_a_dropped_connection_is_made_again_with_the_same_key(
    sshd: Sshd,
    relay: Relay,
    executor: BlockingExecutor,
    pins: HostKeyStore,
    tmp_path: Path,
) -> None:
    pins.pin(PID, relay.hostname, sshd.host_fingerprint)
    cuts: list[str] = []

    def drop_once(event: RunEvent) -> None:
        if event.type == "progress" and not cuts:
            cuts.append(event.type)
            relay.cut()  # the network drops mid-run
            settle()

    with running_comfyui(node_delay_s=0.4) as server:
        job, report = run_job(
            entry(sshd, server.port, hostname=relay.hostname), executor, pins, tmp_path, drop_once
        )
    assert cuts
    assert relay.connections == 2  # the first contact, and one reconnection
    assert report.outcome == "completed", report.runs
    assert job.output_size(report) == (96, 64)


def test_a_host_key_that_changes_after_the_first_contact_stops_the_job(
    sshd: Sshd,
    relay: Relay,
    executor: BlockingExecutor,
    pins: HostKeyStore,
    tmp_path: Path,
) -> None:
    pins.pin(PID, relay.hostname, sshd.host_fingerprint)
    (tmp_path / "impostor").mkdir()
    with (
        running_sshd(tmp_path / "impostor") as impostor,
        running_comfyui(node_delay_s=0.4) as server,
    ):
        assert impostor.host_fingerprint != sshd.host_fingerprint
        swapped: list[float] = []

        def swap_host(event: RunEvent) -> None:
            if event.type == "progress" and not swapped:
                swapped.append(time.monotonic())
                relay.to = impostor.port  # another machine answers at the same address
                relay.cut()
                settle()

        with pytest.raises(ComfyUIError) as info:
            run_job(
                entry(sshd, server.port, hostname=relay.hostname),
                executor,
                pins,
                tmp_path,
                swap_host,
            )
        stopped = time.monotonic()
        impostor_logins = accepted(impostor)
    err = info.value
    assert swapped and stopped - swapped[0] < 10
    assert err.code == "host_key_mismatch", err.message
    assert "the job was stopped" in err.message
    assert sshd.host_fingerprint in err.message and impostor.host_fingerprint in err.message
    assert f"comfyvn-gui providers trust-host {PID} --fingerprint {impostor.host_fingerprint}" in (
        err.message
    )
    assert "\n" not in err.message
    assert impostor_logins == 0  # never authenticated to: nothing was sent to it
    manifest = json.loads((tmp_path / "out" / "outputs.json").read_text())
    assert manifest["outcome"] == "cancelled" and manifest["outputs"] == []  # stopped mid-run


# --------------------------------------------------------------------------- the local end


def test_nothing_is_left_after_the_tunnel_closes(
    sshd: Sshd, fresh: ComfyUIServer, executor: BlockingExecutor, pins: HostKeyStore, tmp_path: Path
) -> None:
    pins.pin(PID, sshd.hostname, sshd.host_fingerprint)
    threads_before = set(threading.enumerate())
    listening_before = listening()
    seen: dict[str, Any] = {}

    async def main() -> ExecutionReport:
        job = Job(tmp_path)
        ctx = context(entry(sshd, fresh.port), executor, pins)
        async with open_comfyui(ctx) as client:
            port = tunnel_port(client.base_url)
            seen["bound"] = {ip for ip, p in listening() if p == port}
            seen["to_sshd"] = [row for row in own_tcp() if row[2] == sshd.port]

            def running(_index: int, _event: RunEvent) -> None:  # (the WebSocket is open)
                seen.setdefault("threads", [t.name for t in threading.enumerate()])

            report = await execute(
                client,
                job_id=2,
                kind="cg_super_res",
                items=1,
                inputs=[job.src],
                out_dir=tmp_path / "out",
                template=shipped_template("cg_super_res"),
                on_event=running,
            )
        seen["port"] = port
        return report

    report = arun(main())
    assert report.outcome == "completed"
    assert seen["bound"] == {"0100007F"}  # 127.0.0.1 only: never on the network
    assert len(seen["to_sshd"]) == 1  # one SSH connection carries every forwarded one
    assert any(n.startswith("comfyvn-ssh-tunnel-") for n in seen["threads"])
    left = [
        t.name
        for t in threading.enumerate()
        if t not in threads_before and not t.name.startswith((CHECK_THREADS, FAKE_THREADS))
    ]
    assert left == []
    assert listening() == listening_before
    assert seen["port"] not in {p for _ip, p in listening()}
    assert [row for row in own_tcp() if row[2] == sshd.port] == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", seen["port"]), 1).close()


def test_a_comfyui_not_listening_on_the_port_names_comfyui_port(
    sshd: Sshd, executor: BlockingExecutor, pins: HostKeyStore, tmp_path: Path
) -> None:
    pins.pin(PID, sshd.hostname, sshd.host_fingerprint)
    threads_before = set(threading.enumerate())
    port = free_port()  # nothing listens there on the host's loopback
    with pytest.raises(ComfyUIError) as info:
        run_job(entry(sshd, port), executor, pins, tmp_path)
    err = info.value
    assert err.code == "unreachable", err.message
    assert "comfyui_port" in err.message and str(port) in err.message
    assert sshd.hostname in err.message
    assert "\n" not in err.message
    left = [
        t.name
        for t in threading.enumerate()
        if t not in threads_before and not t.name.startswith((CHECK_THREADS, FAKE_THREADS))
    ]
    assert left == []
    assert [row for row in own_tcp() if row[2] == sshd.port] == []
