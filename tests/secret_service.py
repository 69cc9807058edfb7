"""Start a private Secret Service (D-Bus session + gnome-keyring) for tests and benchmarks.

No pytest here, so ``benchmarks/`` can use it too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


class MissingTools(RuntimeError):
    pass


def start_secret_service(base: Path) -> tuple[dict[str, str], int]:
    """Start a private session D-Bus with gnome-keyring's Secret Service under ``base``.

    Returns the environment to use and the bus pid (gnome-keyring exits with its bus).
    """
    missing = [t for t in ("dbus-daemon", "gnome-keyring-daemon") if shutil.which(t) is None]
    if missing:
        raise MissingTools(
            f"{', '.join(missing)} not installed: run `make test` as root, or install "
            "gnome-keyring and dbus-x11 (apt)"
        )
    env = dict(
        os.environ,
        XDG_DATA_HOME=str(base / "data"),
        XDG_RUNTIME_DIR=str(base / "run"),
        HOME=str(base),
    )
    for d in ("data", "run"):
        (base / d).mkdir(mode=0o700, parents=True)
    out = subprocess.check_output(
        ["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"],
        env=env,
        text=True,
    ).split()
    addr, bus_pid = out[0], int(out[1])
    env["DBUS_SESSION_BUS_ADDRESS"] = addr
    subprocess.run(
        ["gnome-keyring-daemon", "--unlock", "--components=secrets"],
        input="testpass",
        env=env,
        text=True,
        capture_output=True,
        check=True,
    )
    return env, bus_pid
