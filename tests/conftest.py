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


@pytest.fixture(scope="session")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private session D-Bus with an unlocked gnome-keyring (a real Secret Service)."""
    missing = [t for t in ("dbus-daemon", "gnome-keyring-daemon") if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: run `make test` as root, or install "
            "gnome-keyring and dbus-x11 (apt)"
        )
    base = tmp_path_factory.mktemp("keyring")
    env = dict(
        os.environ,
        XDG_DATA_HOME=str(base / "data"),
        XDG_RUNTIME_DIR=str(base / "run"),
        HOME=str(base),
    )
    for d in ("data", "run"):
        (base / d).mkdir(mode=0o700)
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
    keys = ("DBUS_SESSION_BUS_ADDRESS", "XDG_DATA_HOME", "XDG_RUNTIME_DIR")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: env[k] for k in keys})
    yield env
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    os.kill(bus_pid, signal.SIGTERM)  # gnome-keyring-daemon exits when its bus goes away


@pytest.fixture(autouse=True)
def app_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own COMFYVN_GUI_HOME, so nothing leaks between tests."""
    home = tmp_path / "home"
    monkeypatch.setenv("COMFYVN_GUI_HOME", str(home))
    return home
