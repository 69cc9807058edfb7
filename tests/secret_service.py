"""Start a private Secret Service (D-Bus session + gnome-keyring) for tests and benchmarks.

No pytest here, so ``benchmarks/`` can use it too.

The bus has no service directories, so nothing is started on demand: if gnome-keyring ever
exits, a call fails with "service unknown" instead of D-Bus starting a second, *locked*
gnome-keyring behind our back (which made every later test read "the keyring is locked" and
hid the first failure). gnome-keyring runs in the foreground as our child, in a session of
its own (a hang-up or a signal to the test run's process group does not reach it), with its
output in ``gnome-keyring.log`` beside its data, so a test can tell when and how it ended, and
the suite can start it again on the same data (:meth:`SecretService.restart`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "testpass"
SECRETS_NAME = "org.freedesktop.secrets"

# The default session bus (/usr/share/dbus-1/session.conf), its limits included, minus
# <standard_session_servicedirs/>: nothing is started on demand.
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:dir={run}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_incoming_unix_fds">250000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_outgoing_unix_fds">250000000</limit>
  <limit name="max_message_size">1000000000</limit>
  <limit name="service_start_timeout">120000</limit>
  <limit name="auth_timeout">240000</limit>
  <limit name="pending_fd_timeout">150000</limit>
  <limit name="max_completed_connections">100000</limit>
  <limit name="max_incomplete_connections">10000</limit>
  <limit name="max_connections_per_user">100000</limit>
  <limit name="max_pending_service_starts">10000</limit>
  <limit name="max_names_per_connection">50000</limit>
  <limit name="max_match_rules_per_connection">50000</limit>
  <limit name="max_replies_per_connection">50000</limit>
</busconfig>
"""


class MissingTools(RuntimeError):
    pass


@dataclass
class SecretService:
    """A running private bus and its gnome-keyring."""

    env: dict[str, str]
    bus_pid: int
    daemon: subprocess.Popen[bytes]
    log: Path
    run_dir: Path | None = None  # the sockets' folder, removed by stop()

    def problem(self) -> str | None:
        """None while gnome-keyring runs; else how it ended and the end of its log."""
        code = self.daemon.poll()
        if code is None:
            return None
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        return f"gnome-keyring-daemon {how}; its log ends:\n{tail or '(empty)'}"

    def restart(self) -> None:
        """Start gnome-keyring again on the same bus and data (its keyring file survives)."""
        self._stop_daemon()
        self.daemon = _start_daemon(self.env, self.log)

    def stop(self) -> None:
        try:
            os.kill(self.bus_pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self._stop_daemon()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _stop_daemon(self) -> None:
        if self.daemon.poll() is None:
            self.daemon.terminate()
        try:
            self.daemon.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()


def _name_has_owner(address: str, name: str) -> bool:
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection

    bus = DBusAddress(
        "/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface="org.freedesktop.DBus"
    )
    with open_dbus_connection(address) as conn:
        reply = conn.send_and_get_reply(new_method_call(bus, "NameHasOwner", "s", (name,)))
    return bool(reply.body[0])


def start(base: Path, timeout_s: float = 15.0) -> SecretService:
    """Start a private session D-Bus with gnome-keyring's Secret Service under ``base``."""
    missing = [t for t in ("dbus-daemon", "gnome-keyring-daemon") if shutil.which(t) is None]
    if missing:
        raise MissingTools(
            f"{', '.join(missing)} not installed: run `make test` as root, or install "
            "gnome-keyring and dbus-x11 (apt)"
        )
    # The sockets' folder is a short one of its own: a socket path has at most 107 bytes, and
    # a test's folder (longer under pytest-xdist: popen-gw1/...) made dbus-daemon refuse
    # "Socket name too long".
    run = Path(tempfile.mkdtemp(prefix="kr-", dir="/tmp"))
    env = dict(
        os.environ,
        XDG_DATA_HOME=str(base / "data"),
        XDG_RUNTIME_DIR=str(run),
        HOME=str(base),
    )
    (base / "data").mkdir(mode=0o700, parents=True)
    config = base / "bus.conf"
    config.write_text(BUS_CONFIG.format(run=run))
    out = subprocess.check_output(
        ["dbus-daemon", f"--config-file={config}", "--fork", "--print-address=1", "--print-pid=1"],
        env=env,
        text=True,
    ).split()
    addr, bus_pid = out[0], int(out[1])
    env["DBUS_SESSION_BUS_ADDRESS"] = addr
    log = base / "gnome-keyring.log"
    daemon = _start_daemon(env, log, timeout_s)
    return SecretService(env=env, bus_pid=bus_pid, daemon=daemon, log=log, run_dir=run)


def _start_daemon(
    env: dict[str, str], log: Path, timeout_s: float = 15.0
) -> subprocess.Popen[bytes]:
    """gnome-keyring in the foreground, unlocked, once it owns the Secret Service name."""
    with log.open("ab") as sink:
        daemon = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    assert daemon.stdin is not None
    daemon.stdin.write(PASSWORD.encode())
    daemon.stdin.close()
    deadline = time.monotonic() + timeout_s
    while not _name_has_owner(env["DBUS_SESSION_BUS_ADDRESS"], SECRETS_NAME):
        code = daemon.poll()
        if code is not None or time.monotonic() > deadline:
            if code is None:
                daemon.kill()
                daemon.wait()
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"the test keyring did not start (status {daemon.returncode}): {tail}"
            )
        time.sleep(0.02)
    return daemon
