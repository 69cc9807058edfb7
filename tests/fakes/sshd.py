"""A real OpenSSH server for the SSH adapter's tests (recipe: shared/recipes/sshd_paramiko).

Key authentication only, ``HOME`` set to the server's folder (so sessions do not run this
machine's own ``~/.bashrc``: a real GPU server's shell start-up costs its CPU, not the app's),
``StrictModes no`` / ``UsePAM no`` (it runs as the test's user, root in CI), ``MaxStartups``
raised so parallel checks are not dropped. Local forwarding is allowed to the server's own
``127.0.0.1`` only (``AllowTcpForwarding local``, ``PermitOpen 127.0.0.1:*``: what a hardened
host running ComfyUI on its loopback allows; the dispatch tunnel's tests need it). Commands
run with a ``PATH`` that starts with a folder holding a fake ``nvidia-smi``: realistic CSV,
switched by flag files (``slow`` = 200 ms, ``fail`` = driver error, ``absent`` = command not
found, ``busy`` = 99%).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization as s
from cryptography.hazmat.primitives.asymmetric import ed25519

PASSPHRASE = "ssh-key-passphrase-canary-51c0de"

FAKE_NVIDIA_SMI = r"""#!/bin/sh
flags="$(dirname "$0")"
if [ -e "$flags/absent" ]; then echo "sh: 1: nvidia-smi: not found" >&2; exit 127; fi
if [ -e "$flags/slow" ]; then sleep 0.2; fi
if [ -e "$flags/fail" ]; then
  echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2
  exit 9
fi
case "$*" in *--query-gpu=name,memory.total,memory.used,utilization.gpu*) ;;
  *) echo "unexpected arguments: $*" >&2; exit 2;; esac
util=37; [ -e "$flags/busy" ] && util=99
echo "NVIDIA RTX A6000, 49140, 1024, $util"
echo "NVIDIA GeForce RTX 4090, 24564, 20000, 12"
"""


def keypair(path: Path, passphrase: str | None = None) -> str:
    """Write an ed25519 private key (OpenSSH format); return its public key line."""
    key = ed25519.Ed25519PrivateKey.generate()
    enc: s.KeySerializationEncryption = (
        s.BestAvailableEncryption(passphrase.encode()) if passphrase else s.NoEncryption()
    )
    path.write_bytes(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.OpenSSH, enc))
    path.chmod(0o600)
    return key.public_key().public_bytes(s.Encoding.OpenSSH, s.PublicFormat.OpenSSH).decode()


def openssh_fingerprint(pub_line: str) -> str:
    blob = base64.b64decode(pub_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def free_port() -> int:
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port: int = so.getsockname()[1]
        return port


@dataclass
class Sshd:
    port: int
    dir: Path
    host_fingerprint: str
    client_key: Path  # authorized
    bad_key: Path  # not authorized
    encrypted_key: Path  # authorized, protected by PASSPHRASE
    nfs: Path  # an existing directory standing in for the NFS mount
    bin: Path  # the fake nvidia-smi's folder (its flag files go here)
    proc: subprocess.Popen[bytes]

    @property
    def hostname(self) -> str:
        return f"127.0.0.1:{self.port}"

    def flag(self, name: str, on: bool = True) -> None:
        path = self.bin / name
        if on:
            path.touch()
        else:
            path.unlink(missing_ok=True)

    def reset(self) -> None:
        for name in ("slow", "fail", "absent", "busy"):
            self.flag(name, False)


@contextmanager
def running_sshd(d: Path, listen: tuple[str, ...] = ("127.0.0.1",)) -> Iterator[Sshd]:
    """An sshd on a free port of each loopback address in ``listen`` (several addresses stand
    for several servers: the app runs at most 4 checks at once per destination)."""
    host_pub = keypair(d / "host_key")
    client_pub = keypair(d / "client_key")
    enc_pub = keypair(d / "encrypted_key", PASSPHRASE)
    keypair(d / "bad_key")
    (d / "authorized_keys").write_text(f"{client_pub}\n{enc_pub}\n")
    bin_dir = d / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(FAKE_NVIDIA_SMI)
    smi.chmod(0o755)
    nfs = d / "nfs mount"  # a space: the adapter must quote it
    nfs.mkdir()
    port = free_port()
    (d / "sshd_config").write_text(
        f"""Port {port}
{"".join(f"ListenAddress {a}{chr(10)}" for a in listen)}HostKey {d}/host_key
PidFile none
AuthorizedKeysFile {d}/authorized_keys
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
SetEnv PATH={bin_dir}:/usr/bin:/bin HOME={d}
"""
    )
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
    log = open(d / "sshd.log", "w")
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")], stderr=log
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError((d / "sshd.log").read_text()) from None
                time.sleep(0.05)
        yield Sshd(
            port=port,
            dir=d,
            host_fingerprint=openssh_fingerprint(host_pub),
            client_key=d / "client_key",
            bad_key=d / "bad_key",
            encrypted_key=d / "encrypted_key",
            nfs=nfs,
            bin=bin_dir,
            proc=proc,
        )
    finally:
        proc.terminate()
        proc.wait(5)
        log.close()
