"""Shared fixtures: a real Secret Service keyring and a fresh application home per test."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists
os.environ.setdefault("QT_API", "pyside6")

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def start_secret_service(base: Path, *, unlock: bool = True) -> tuple[dict[str, str], int]:
    """Start a private session D-Bus with gnome-keyring's Secret Service under ``base``.

    Returns the environment to use and the bus pid (gnome-keyring exits with its bus).
    """
    missing = [t for t in ("dbus-daemon", "gnome-keyring-daemon") if shutil.which(t) is None]
    if missing:
        pytest.fail(
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


KEYRING_ENV = ("DBUS_SESSION_BUS_ADDRESS", "XDG_DATA_HOME", "XDG_RUNTIME_DIR")


@pytest.fixture(scope="session")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private session D-Bus with an unlocked gnome-keyring (a real Secret Service)."""
    env, bus_pid = start_secret_service(tmp_path_factory.mktemp("keyring"))
    old = {k: os.environ.get(k) for k in KEYRING_ENV}
    os.environ.update({k: env[k] for k in KEYRING_ENV})
    yield env
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    os.kill(bus_pid, signal.SIGTERM)


def keyring_entries(prefix: str = "comfyvn-gui/") -> dict[tuple[str, str], str]:
    """Every entry of the real Secret Service whose service starts with ``prefix``."""
    import secretstorage

    conn = secretstorage.dbus_init()
    try:
        col = secretstorage.get_default_collection(conn)
        out = {}
        for item in col.get_all_items():
            attrs = item.get_attributes()
            if attrs.get("service", "").startswith(prefix):
                out[(attrs["service"], attrs.get("username", ""))] = item.get_secret().decode()
        return out
    finally:
        conn.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is a failure here: every counterpart is started by the suite itself."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        reporter.write_line("skipped tests count as failures in this project", red=True)
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def app_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own COMFYVN_GUI_HOME, so nothing leaks between tests."""
    home = tmp_path / "home"
    monkeypatch.setenv("COMFYVN_GUI_HOME", str(home))
    return home
