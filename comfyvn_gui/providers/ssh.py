"""On-Prem SSH / NFS: a GPU server of your own, reached over SSH with a key, jobs on NFS.

What it does (paramiko, in the check's executor lane, every paramiko timeout cut to the
check's deadline):

1. Loads the private key at ``ssh_key_path`` (with ``key_passphrase`` when the key is
   encrypted) before any network traffic: a missing or unreadable file, or a file that is not a
   private key, is ``misconfigured`` naming ``ssh_key_path``; an encrypted key without a
   passphrase is ``misconfigured`` naming ``key_passphrase``; a wrong passphrase is
   ``invalid_credentials`` naming ``key_passphrase``.
2. Connects to ``hostname`` (``host``, ``host:port`` or ``[v6]:port``; port 22 by default) with
   ``look_for_keys=False, allow_agent=False`` — only the configured key, never ``~/.ssh`` keys
   or an agent — and no known_hosts file: the server's host key goes to :class:`_PinPolicy`,
   which compares its SHA256 fingerprint (as OpenSSH prints it) with the pin in the home
   (``ctx.host_keys``) *before authentication*, so the key is never offered to an unpinned or
   impostor host. No pin (or a pin made for another address): ``untrusted_host`` with the
   fingerprint and the ``comfyvn-gui providers trust-host`` command that pins it. A different
   key: ``host_key_mismatch`` with both fingerprints; never accepted.
3. Authentication refused: ``invalid_credentials`` naming ``ssh_key_path`` and ``username``.
   Connection refused / no route / unknown name: ``unreachable`` naming ``hostname``; no answer
   in time (TCP or SSH banner): ``timeout``.
4. Runs ``nvidia-smi --query-gpu=name,memory.total,memory.used,utilization.gpu
   --format=csv,noheader,nounits`` -> ``detail["gpus"]`` (VRAM in GB as vendors state it, via
   :func:`comfyvn_gui.providers.local.vram_gb`) and ``detail["reported_vram_gb"]`` (the
   largest, used by the advisor). No nvidia-smi or a failing one: the check still passes, with
   "no GPU found" in ``detail`` (health: ``degraded``).
5. ``stat`` and ``df -P`` of ``nfs_mount`` (shell-quoted): missing or not a directory is
   ``misconfigured`` naming ``nfs_mount``; its filesystem type and free space go to ``detail``.

Steps 1-3 are :func:`connect` (with :func:`ssh_target`, :func:`pin_policy` and
:func:`ssh_failures`), shared with the dispatch tunnel (:mod:`.ssh_tunnel`), so a job's
connection obeys exactly the same key and pin rules as the checks.

The provider's ``meta`` links about data handling (any ``runbook*`` / ``compliance*`` key, as
the seed's onboarding notes ask teams to record) are shown with every result, passed or failed.
Health runs the same and is ``degraded`` when nvidia-smi fails or a GPU is nearly fully loaded.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import CheckContext, CheckFailure, Outcome
from .lazy import LazyImport, import_now
from .local import vram_gb
from .registry import register

if TYPE_CHECKING:
    import paramiko
else:
    paramiko = LazyImport("paramiko")

NVIDIA_SMI = (
    "nvidia-smi --query-gpu=name,memory.total,memory.used,utilization.gpu "
    "--format=csv,noheader,nounits"
)
#: A GPU at or above this utilisation (%) makes a health check ``degraded`` (busy server).
BUSY_UTILIZATION = 95
#: paramiko gives up this long before the check's deadline, so it ends by its own timeout.
SSH_MARGIN_S = 0.3
MIB = 2**20


@dataclass
class SshTarget:
    host: str  # as typed, without the port (brackets of an IPv6 address removed)
    port: int
    username: str
    key_path: str
    nfs_mount: str
    passphrase: str | None
    pkey: Any = None  # a key in memory (a machine's one-time key): used instead of key_path

    @property
    def address(self) -> str:
        """host:port, as the pin store keeps it (``Service.trust_host``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def ssh_target(ctx: CheckContext) -> SshTarget:
    hostname, username, key_path, nfs_mount = ctx.require(
        "hostname", "username", "ssh_key_path", "nfs_mount"
    )
    hostname = hostname.strip()
    host, port = hostname, 22
    if hostname.startswith("["):
        inner, _, rest = hostname[1:].partition("]")
        host = inner
        if rest.startswith(":"):
            port = _port(ctx, rest[1:])
    elif hostname.count(":") == 1:
        host, _, p = hostname.partition(":")
        port = _port(ctx, p)
    if not host:
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: the host is empty; enter the server's name or address",
            fields=["hostname"],
        )
    if not nfs_mount.startswith("/"):
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: the NFS mount path must be absolute (e.g. /mnt/comfyvn), not "
            f"{nfs_mount!r}",
            fields=["nfs_mount"],
        )
    return SshTarget(
        host=host,
        port=port,
        username=username,
        key_path=os.path.expanduser(key_path),
        nfs_mount=nfs_mount,
        passphrase=ctx.value("key_passphrase"),
    )


def _port(ctx: CheckContext, text: str) -> int:
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    raise CheckFailure(
        "misconfigured",
        f"{ctx.name}: {text!r} is not a port number; write the host as name:port "
        "(e.g. gpu01.lab.example:2222)",
        fields=["hostname"],
    )


def fingerprint(key: paramiko.PKey) -> str:
    """The SHA256 fingerprint of a public key as OpenSSH prints it (no base64 padding)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


# --------------------------------------------------------------------------- the key


def _load_key(name: str, target: SshTarget) -> paramiko.PKey:
    """The private key, or the failure that names the field to fix. Blocking (file I/O)."""
    import_now(paramiko)  # a missing paramiko is not a file that is no key
    if target.pkey is not None:
        return target.pkey

    path = target.key_path
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise CheckFailure(
            "misconfigured",
            f"{name}: the private key file {path} cannot be read ({why}); choose the private "
            "key whose public key is in the server account's ~/.ssh/authorized_keys",
            fields=["ssh_key_path"],
        ) from None
    encrypted = False
    try:
        return paramiko.PKey.from_path(path)
    except TypeError as exc:  # cryptography: encrypted, and no password given
        if "password" not in str(exc).lower() and "encrypt" not in str(exc).lower():
            raise _not_a_key(name, path) from None
        encrypted = True
    except Exception:  # noqa: BLE001 - not a key, unsupported algorithm, damaged file ...
        raise _not_a_key(name, path) from None
    assert encrypted
    if not target.passphrase:
        raise CheckFailure(
            "misconfigured",
            f"{name}: the private key {path} is protected by a passphrase and none is set; "
            "enter the key passphrase in the provider's settings",
            fields=["key_passphrase"],
        )
    try:
        return paramiko.PKey.from_path(path, target.passphrase.encode())
    except Exception:  # noqa: BLE001 - cryptography says "bad decrypt"/"no delimiters"/...
        raise CheckFailure(
            "invalid_credentials",
            f"{name}: the key passphrase does not unlock the private key {path}; enter the "
            "passphrase again",
            fields=["key_passphrase"],
        ) from None


def _not_a_key(name: str, path: str) -> CheckFailure:
    hint = (
        " (that is the public key: choose the file without .pub)" if path.endswith(".pub") else ""
    )
    return CheckFailure(
        "misconfigured",
        f"{name}: {path} is not a private key paramiko can read{hint}; choose your SSH private "
        "key (OpenSSH or PEM format, e.g. ~/.ssh/id_ed25519)",
        fields=["ssh_key_path"],
    )


# --------------------------------------------------------------------------- host key pin


class _HostKeyRefused(Exception):
    def __init__(self, failure: CheckFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def pin_policy(
    ctx: CheckContext, target: SshTarget, provider_id: str
) -> paramiko.MissingHostKeyPolicy:
    pin = ctx.host_keys.get(provider_id) if ctx.host_keys is not None else None
    name = ctx.name

    class _PinPolicy(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
        """Accept exactly the pinned key; called before authentication (no known_hosts)."""

        def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
            fp = fingerprint(key)
            key_type = key.get_name()
            detail = {"fingerprint": fp, "key_type": key_type, "host": target.address}
            command = f"comfyvn-gui providers trust-host {provider_id} --fingerprint {fp}"
            if pin is None or pin.host.lower() != target.address.lower():
                again = (
                    f" (the pinned key was for {pin.host}, not {target.address})"
                    if pin is not None
                    else ""
                )
                raise _HostKeyRefused(
                    CheckFailure(
                        "untrusted_host",
                        f"{name}: the server {target.address} is not trusted yet{again}. Its "
                        f"host key ({key_type}) has the fingerprint {fp}. Compare it with the "
                        "fingerprint your administrator gave you (ssh-keygen -lf on the "
                        "server's host key); if they match, run: "
                        f"{command}",
                        fields=["hostname"],
                        detail={**detail, "trust_command": command},
                    )
                )
            if pin.fingerprint.rstrip("=") != fp:
                raise _HostKeyRefused(
                    CheckFailure(
                        "host_key_mismatch",
                        f"{name}: the server {target.address} presented a DIFFERENT host key "
                        f"({key_type} {fp}) than the one pinned ({pin.fingerprint}). Someone "
                        "may be intercepting the connection, or the server was reinstalled. "
                        "Nothing was sent to it. Ask your administrator whether the key "
                        "changed; only then pin the new one with: "
                        f"{command}",
                        fields=["hostname"],
                        detail={**detail, "pinned_fingerprint": pin.fingerprint},
                    )
                )

    return _PinPolicy()


def machine_target(host: str, port: int, username: str, client_private_pem: str) -> SshTarget:
    """The SSH target of a machine the app rented: its one-time client key, held in memory."""
    import io

    key = paramiko.Ed25519Key.from_private_key(io.StringIO(client_private_pem))
    return SshTarget(
        host=host,
        port=port,
        username=username,
        key_path="",
        nfs_mount="",
        passphrase=None,
        pkey=key,
    )


def expected_key_policy(name: str, target: SshTarget, host_public: str) -> Any:
    """Accept exactly ``host_public`` ("ssh-ed25519 AAAA..."), the host key the app generated
    for a machine it rented (no trust on first use); any other key is ``host_key_mismatch``
    (during the boot wait: the machine's own sshd answered first, "not ready yet")."""
    blob = base64.b64decode(host_public.split()[1])
    expected = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")

    class _ExpectedKey(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
        def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
            fp = fingerprint(key)
            if fp != expected:
                raise _HostKeyRefused(
                    CheckFailure(
                        "host_key_mismatch",
                        f"{name}: the machine at {target.address} presented the host key {fp}, "
                        f"not the one this app gave it ({expected}); nothing was sent to it",
                        detail={"fingerprint": fp, "expected": expected},
                    )
                )

    return _ExpectedKey()


# --------------------------------------------------------------------------- the session


@dataclass
class _Raw:
    gpu_rc: int
    gpu_out: str
    gpu_err: str
    stat_rc: int
    stat_out: str
    stat_err: str
    df_rc: int
    df_out: str
    server_key: str
    server_fingerprint: str


def _exec(client: paramiko.SSHClient, command: str, end: float) -> tuple[int, str, str]:
    """Run a command; (exit status, stdout, stderr). ``socket.timeout`` past ``end``."""
    transport = client.get_transport()
    assert transport is not None
    chan = transport.open_session(timeout=max(0.05, end - time.monotonic()))

    def left() -> float:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    try:
        chan.exec_command(command)
        out, err = bytearray(), bytearray()
        for buf, recv in ((out, chan.recv), (err, chan.recv_stderr)):
            while True:  # the outputs are small: stdout to its end, then stderr
                chan.settimeout(left())
                data = recv(65536)  # TimeoutError once the deadline passes
                if not data:
                    break
                buf += data
        if not chan.status_event.wait(left()):
            raise TimeoutError
        return chan.recv_exit_status(), out.decode(errors="replace"), err.decode(errors="replace")
    finally:
        chan.close()


def _probe_command(nfs_mount: str, marker: str) -> str:
    """One command for the whole check: nvidia-smi, then ``stat`` and ``df -P`` of the mount.

    One SSH session instead of three: the server starts the account's shell (and its rc
    files) once, and a far host costs one round of channel set-up rather than three. Each part
    ends with a line ``\n<marker> <part> <exit status>`` on stdout and ``\n<marker> <part>`` on
    stderr (``marker`` is random per check), so :func:`_sections` splits the outputs again. It
    runs under ``sh -c`` so the login shell's own syntax (fish, csh) does not matter.
    """
    q = shlex.quote(nfs_mount)
    m = shlex.quote(marker)

    def end(part: str) -> str:
        return f"printf '\\n%s %s %s\\n' {m} {part} $? ; printf '\\n%s %s\\n' {m} {part} >&2"

    script = (
        f"{NVIDIA_SMI} ; {end('gpu')} ; "
        f"stat -L -c '%F' -- {q} && stat -f -L -c '%T' -- {q} ; r=$? ; "
        f"(exit $r) ; {end('stat')} ; "
        f"if [ $r -eq 0 ] ; then df -P -k -- {q} ; {end('df')} ; fi"
    )
    return f"sh -c {shlex.quote(script)}"


def _sections(out: str, err: str, marker: str) -> dict[str, tuple[int, str, str]]:
    """Split the probe's outputs into ``{part: (exit status, stdout, stderr)}``."""
    found: dict[str, tuple[int, str, str]] = {}
    for part in ("gpu", "stat", "df"):
        head = f"\n{marker} {part} "
        at = out.find(head)
        if at < 0:
            break  # the probe stopped before this part
        line_end = out.find("\n", at + len(head))
        line_end = len(out) if line_end < 0 else line_end
        try:
            rc = int(out[at + len(head) : line_end])
        except ValueError:
            rc = 1
        err_head = f"\n{marker} {part}\n"
        err_at = err.find(err_head)
        found[part] = (rc, out[:at], err[:err_at] if err_at >= 0 else err)
        out = out[line_end + 1 :]
        if err_at >= 0:
            err = err[err_at + len(err_head) :]
    return found


def connect(name: str, target: SshTarget, policy: Any, budget: float) -> paramiko.SSHClient:
    """Blocking: an authenticated SSH connection to ``target``, for the checks and for the
    dispatch tunnel (:mod:`.ssh_tunnel`) alike.

    The private key is loaded first (nothing is sent with a key that cannot be read); only that
    key is offered (``look_for_keys=False, allow_agent=False``); no known_hosts file is read,
    so the server's host key always goes to ``policy`` (:func:`pin_policy`), which refuses an
    unpinned or different key *before authentication*. Every paramiko timeout is ``budget``
    seconds. Failures are :class:`CheckFailure` as the module's text maps them; the caller
    closes the client it gets.
    """
    end = time.monotonic() + budget
    key = _load_key(name, target)
    left = max(0.05, end - time.monotonic())
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(policy)  # no known_hosts: every key goes to the pin
    try:
        with ssh_failures(name, target, end):
            client.connect(
                target.host,
                port=target.port,
                username=target.username,
                pkey=key,
                look_for_keys=False,
                allow_agent=False,
                timeout=left,
                banner_timeout=left,
                auth_timeout=left,
                channel_timeout=left,
            )
    except BaseException:
        client.close()
        raise
    return client


@contextlib.contextmanager
def ssh_failures(name: str, target: SshTarget, end: float) -> Iterator[None]:
    """Turn what paramiko raises (connecting, or in a session ending at monotonic ``end``)
    into the :class:`CheckFailure` that names the setting to fix."""
    try:
        yield
    except CheckFailure:
        raise
    except _HostKeyRefused as refused:
        raise refused.failure from None
    except paramiko.AuthenticationException:
        raise CheckFailure(
            "invalid_credentials",
            f"{name}: {target.address} refused the key {target.key_path} for the user "
            f"{target.username!r}; check the user name and that the key's public half is in "
            f"that account's ~/.ssh/authorized_keys",
            fields=["ssh_key_path", "username"],
        ) from None
    except TimeoutError:
        raise _timeout(name, target) from None
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        raise _unreachable(name, target, _errors_text(exc)) from None
    except paramiko.SSHException as exc:
        if time.monotonic() >= end - 0.2 or isinstance(exc.__cause__, TimeoutError):
            raise _timeout(name, target) from None
        text = str(exc)
        if "banner" in text.lower():
            raise CheckFailure(
                "unreachable",
                f"{name}: {target.address} answers but does not speak SSH; check the host "
                "and the port",
                fields=["hostname"],
            ) from None
        raise CheckFailure(
            "unreachable",
            f"{name}: the SSH session with {target.address} failed ({text[:200]})",
            fields=["hostname"],
        ) from None
    except OSError as exc:
        raise _unreachable(name, target, exc.strerror or str(exc) or type(exc).__name__) from None


def _session(ctx_name: str, target: SshTarget, policy: Any, budget: float) -> _Raw:
    """Blocking: load the key, connect (pinned host key), run the commands."""

    end = time.monotonic() + budget
    client = connect(ctx_name, target, policy, budget)
    try:
        with ssh_failures(ctx_name, target, end):
            transport = client.get_transport()
            server_key = transport.get_remote_server_key() if transport else None
            marker = secrets.token_hex(8)
            _rc, out, err = _exec(client, _probe_command(target.nfs_mount, marker), end)
            found = _sections(out, err, marker)
            gpu = found.get("gpu", (127, "", "the probe ended early"))
            stat = found.get("stat", (1, "", "the probe ended early"))
            df = found.get("df", (1, "", ""))
            return _Raw(
                gpu_rc=gpu[0],
                gpu_out=gpu[1],
                gpu_err=gpu[2],
                stat_rc=stat[0],
                stat_out=stat[1],
                stat_err=stat[2],
                df_rc=df[0],
                df_out=df[1],
                server_key=server_key.get_name() if server_key else "",
                server_fingerprint=fingerprint(server_key) if server_key else "",
            )
    finally:
        client.close()


def _errors_text(exc: Any) -> str:
    errors = getattr(exc, "errors", {}) or {}
    texts = {e.strerror or type(e).__name__ for e in errors.values()}
    return "; ".join(sorted(t for t in texts if t)) or "connection failed"


def _timeout(name: str, target: SshTarget) -> CheckFailure:
    return CheckFailure(
        "timeout",
        f"{name}: {target.address} did not answer in time; check that the server is on and "
        "that a firewall lets SSH through",
    )


def _unreachable(name: str, target: SshTarget, why: str) -> CheckFailure:
    return CheckFailure(
        "unreachable",
        f"{name}: cannot connect to {target.address} ({why}); check the host, the port and "
        "that the SSH server is running",
        fields=["hostname"],
    )


# --------------------------------------------------------------------------- parsing


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None  # "[N/A]", "[Not Supported]"


def parse_gpus(out: str) -> list[dict[str, Any]]:
    """nvidia-smi's ``name, memory.total, memory.used, utilization.gpu`` CSV (MiB, %)."""
    gpus: list[dict[str, Any]] = []
    for index, line in enumerate(ln for ln in out.splitlines() if ln.strip()):
        parts = [p.strip() for p in line.rsplit(",", 3)]
        if len(parts) != 4:
            continue
        name, total, used, util = parts
        total_mib = _number(total)
        if not name or total_mib is None or total_mib <= 0:
            continue
        used_mib = _number(used)
        total_gb = vram_gb(total_mib * MIB)
        free_gb = (
            None
            if used_mib is None
            else min(total_gb, vram_gb(max(0.0, total_mib - used_mib) * MIB, total=False))
        )
        load = _number(util)
        gpus.append(
            {
                "index": index,
                "name": name,
                "vram_total_gb": total_gb,
                "vram_free_gb": free_gb,
                "vram_total_mib": int(total_mib),
                "utilization_pct": None if load is None else int(load),
            }
        )
    return gpus


def _df_free(out: str) -> dict[str, Any]:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if len(lines) < 2:
        return {}
    cols = lines[-1].split()
    if len(cols) < 6:
        return {}
    try:
        size_k, avail_k = int(cols[1]), int(cols[3])
    except ValueError:
        return {}
    return {
        "nfs_filesystem": cols[0],
        "nfs_size_gb": round(size_k * 1024 / 1e9, 1),
        "nfs_free_gb": round(avail_k * 1024 / 1e9, 1),
        "nfs_used_pct": cols[4],
    }


def _links(ctx: CheckContext) -> dict[str, str]:
    """The data-handling links of the provider's meta: ``runbook*`` and ``compliance*`` keys."""
    meta = ctx.provider.meta or {}
    out: dict[str, str] = {}
    for key in sorted(meta):
        value = meta[key]
        low = key.lower()
        if not isinstance(value, str) or not value.strip():
            continue
        for topic in ("runbook", "compliance"):
            if topic in low and topic not in out:
                out[topic] = value.strip()
    return out


def _links_words(links: dict[str, str]) -> str:
    return "".join(f"; {topic}: {url}" for topic, url in links.items())


# --------------------------------------------------------------------------- the adapter


@register("ssh")
class SshAdapter:
    async def _run(self, ctx: CheckContext, kind: str) -> Outcome:
        links = _links(ctx)
        try:
            return await self._check(ctx, kind, links)
        except CheckFailure as failure:
            if links:
                failure.detail.update(links)
                failure.message += _links_words(links)
            raise

    async def _check(self, ctx: CheckContext, kind: str, links: dict[str, str]) -> Outcome:
        target = ssh_target(ctx)
        policy = pin_policy(ctx, target, ctx.provider.id)
        budget = ctx.remaining() - SSH_MARGIN_S
        if budget <= 0:
            raise TimeoutError
        raw = await ctx.run_blocking(
            _session, ctx.name, target, policy, budget, destination=target.address
        )
        if raw.stat_rc != 0:
            why = (raw.stat_err.strip().splitlines() or ["it does not exist"])[-1][:200]
            raise CheckFailure(
                "misconfigured",
                f"{ctx.name}: the NFS mount path {target.nfs_mount} is not there on "
                f"{target.address} ({why}); check the path and that the NFS volume is mounted",
                fields=["nfs_mount"],
            )
        stat_lines = raw.stat_out.split()
        file_type = " ".join(raw.stat_out.splitlines()[0].split()) if stat_lines else ""
        if file_type and file_type != "directory":
            raise CheckFailure(
                "misconfigured",
                f"{ctx.name}: {target.nfs_mount} on {target.address} is a {file_type}, not a "
                "directory; give the folder where the NFS volume is mounted",
                fields=["nfs_mount"],
            )
        fs_type = (
            raw.stat_out.splitlines()[1].strip() if len(raw.stat_out.splitlines()) > 1 else None
        )
        nfs = {"nfs_mount": target.nfs_mount, "nfs_fs_type": fs_type, **_df_free(raw.df_out)}
        gpus = parse_gpus(raw.gpu_out) if raw.gpu_rc == 0 else []
        detail: dict[str, Any] = {
            "identity": f"{target.username}@{target.address}",
            "address": target.address,
            "host_key": {"type": raw.server_key, "fingerprint": raw.server_fingerprint},
            "gpus": gpus,
            **nfs,
            **links,
        }
        problems: list[str] = []
        health_code: str | None = None  # degraded by load alone has no failure code
        if gpus:
            detail["reported_vram_gb"] = max(g["vram_total_gb"] for g in gpus)
            gpu_words = f"{len(gpus)} GPU{'s' if len(gpus) != 1 else ''}: " + ", ".join(
                f"{g['name']} {g['vram_total_gb']:.0f} GB"
                + (f" ({g['utilization_pct']}% busy)" if g["utilization_pct"] is not None else "")
                for g in gpus
            )
            busy = [g for g in gpus if (g["utilization_pct"] or 0) >= BUSY_UTILIZATION]
            if busy:
                problems.append(
                    f"{len(busy)} of {len(gpus)} GPU(s) are at {BUSY_UTILIZATION}%+ load"
                )
        else:
            if raw.gpu_rc == 127 or "not found" in raw.gpu_err.lower():
                why = "nvidia-smi is not installed or not on the account's PATH"
                health_code = "misconfigured"
            elif raw.gpu_rc != 0:
                last = (raw.gpu_err.strip() or raw.gpu_out.strip()).splitlines()
                why = f"nvidia-smi failed (exit {raw.gpu_rc}: {last[-1][:160] if last else ''})"
                health_code = "error"
            else:
                why = "nvidia-smi lists no GPU"
                health_code = "misconfigured"
            detail["gpu"] = f"no GPU found: {why}"
            gpu_words = f"no GPU found ({why})"
            problems.append(gpu_words)
        free = (
            f"{nfs['nfs_free_gb']:.1f} GB free on {target.nfs_mount}"
            if "nfs_free_gb" in nfs
            else f"{target.nfs_mount} is there"
        )
        message = f"{target.username}@{target.address}: {gpu_words}; {free}" + _links_words(links)
        if kind == "health" and problems:
            return Outcome(message=message, detail=detail, health="degraded", code=health_code)
        return Outcome(message=message, detail=detail)

    async def validate(self, ctx: CheckContext) -> Outcome:
        return await self._run(ctx, "validate")

    async def health(self, ctx: CheckContext) -> Outcome:
        return await self._run(ctx, "health")
