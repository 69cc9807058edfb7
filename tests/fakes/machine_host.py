"""The machine behind a fake provider: a real OpenSSH server started with the host key and the
client key the app put in the machine's start-up script.

A provider fake that "creates" a machine calls :meth:`MachineHosts.boot` with the start-up
script it received (as the provider would run it). The script's ``ssh`` part is read the way
the shell would: the host private key from its heredoc, the client key from its quoted
``printf`` line. An sshd (``tests/fakes/sshd.py``'s configuration: key logins only, local
forwarding to its own 127.0.0.1 only) is started with exactly that host key, authorizing
exactly that client key. The tunnel's host-key check and login are therefore real; the
machine's ComfyUI is the test's ComfyUI fake on this computer's loopback (the provider's
``comfyui_port`` option names its port).

``boot_delay_s`` keeps the sshd down for a while after creation (a machine still booting);
``never_boot`` never starts it. :meth:`stop` ends a machine's sshd; :attr:`alive` names the
machines whose sshd runs, so a test proves every one was released.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization as s

from .sshd import free_port

_HOST_KEY = re.compile(r"<<'COMFYVN_HOST_KEY'\n(?P<key>.*?)\nCOMFYVN_HOST_KEY\n", re.S)
_CLIENT = re.compile(
    r"^printf '%s\\n' (?P<arg>.+?) >> \"\$comfyvn_home/\.ssh/authorized_keys\"$", re.M
)


def keys_of(script: str) -> tuple[str, str]:
    """(host private key PEM, client public key line) as the script installs them."""
    host = _HOST_KEY.search(script)
    client = _CLIENT.search(script)
    if host is None or client is None:
        raise ValueError("the start-up script installs no host key or no client key")
    (client_pub,) = shlex.split(client["arg"])
    return host["key"] + "\n", client_pub


def _end_tree(proc: subprocess.Popen[bytes]) -> None:
    """End an sshd and every process it forked (one per connection), as a machine that
    goes away does."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    todo, tree = [proc.pid], []
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    for pid in reversed(tree):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    proc.wait(5)


def _random_key() -> str:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(s.Encoding.PEM, s.PrivateFormat.OpenSSH, s.NoEncryption()).decode()


def _write_key(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


@dataclass
class BootedMachine:
    name: str
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None


@dataclass
class MachineHosts:
    """The sshd of each machine the fakes created (see the module's text)."""

    boot_delay_s: float = 0.0
    never_boot: bool = False
    impostor_first_s: float = 0.0  # another host key answers first (the image's own sshd)
    machines: dict[str, BootedMachine] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mh-")))

    def boot(self, machine_id: str, script: str) -> int:
        """Start the machine's sshd (now, later, or never); returns the port it will use."""
        host_key, client_pub = keys_of(script)
        d = self._root / re.sub(r"[^A-Za-z0-9_.-]", "_", machine_id)
        d.mkdir(parents=True, exist_ok=True)
        (d / "host_key").write_text(host_key)
        (d / "host_key").chmod(0o600)
        s.load_ssh_private_key(host_key.encode(), None)  # (a real key, or the test fails here)
        (d / "authorized_keys").write_text(client_pub + "\n")
        port = free_port()
        booted = BootedMachine(machine_id, port, d)
        with self._lock:
            self.machines[machine_id] = booted
        if self.impostor_first_s and not self.never_boot:
            (d / "host_key.real").write_text(host_key)
            _write_key(d / "host_key", _random_key())
            self._start(booted)
            t = threading.Timer(self.impostor_first_s, self._restart, (booted, host_key))
            t.daemon = True
            t.start()
        elif not self.never_boot:
            if self.boot_delay_s:
                t = threading.Timer(self.boot_delay_s, self._start, (booted,))
                t.daemon = True
                t.start()
            else:
                self._start(booted)
        return port

    def _start(self, m: BootedMachine) -> None:
        with self._lock:
            if self.machines.get(m.name) is not m:
                return  # released before it booted
        (m.dir / "sshd_config").write_text(
            f"""Port {m.port}
ListenAddress 127.0.0.1
HostKey {m.dir}/host_key
PidFile none
AuthorizedKeysFile {m.dir}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100:30:200
MaxSessions 50
AllowTcpForwarding local
PermitOpen 127.0.0.1:*
"""
        )
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        log = open(m.dir / "sshd.log", "w")
        proc = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(m.dir / "sshd_config")], stderr=log
        )
        log.close()
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", m.port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError((m.dir / "sshd.log").read_text()) from None
                time.sleep(0.05)
        with self._lock:
            if self.machines.get(m.name) is m:
                m.proc = proc
                return
        proc.terminate()
        proc.wait(5)

    def _restart(self, m: BootedMachine, host_key: str) -> None:
        """The machine's sshd again on the same port, with ``host_key``."""
        with self._lock:
            if self.machines.get(m.name) is not m:
                return
            proc, m.proc = m.proc, None
        if proc is not None:
            _end_tree(proc)  # (its connections too: the machine is another one now)
        _write_key(m.dir / "host_key", host_key)
        self._start(m)

    def rekey(self, machine_id: str) -> None:
        """The machine answers with a different host key from now on (reinstalled, or an
        impostor at its address)."""
        with self._lock:
            m = self.machines[machine_id]
        self._restart(m, _random_key())

    def stop(self, machine_id: str) -> None:
        """The machine is gone: its sshd ends."""
        with self._lock:
            m = self.machines.pop(machine_id, None)
        if m is not None and m.proc is not None:
            m.proc.terminate()
            m.proc.wait(5)

    @property
    def alive(self) -> list[str]:
        with self._lock:
            return sorted(self.machines)

    def close(self) -> None:
        for machine_id in self.alive:
            self.stop(machine_id)
        shutil.rmtree(self._root, ignore_errors=True)  # (the machines' host keys)

    def __enter__(self) -> MachineHosts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
