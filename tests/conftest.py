"""Shared fixtures: a real Secret Service keyring and a fresh application home per test."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists
os.environ.setdefault("QT_API", "pyside6")

from collections.abc import Iterator
from pathlib import Path

import pytest

from . import secret_service as secret_service_module


def start_secret_service(base: Path) -> secret_service_module.SecretService:
    """A private D-Bus + gnome-keyring under ``base`` (see tests/secret_service.py); the
    caller stops it."""
    try:
        return secret_service_module.start(base)
    except secret_service_module.MissingTools as exc:
        pytest.fail(str(exc))


KEYRING_ENV = ("DBUS_SESSION_BUS_ADDRESS", "XDG_DATA_HOME", "XDG_RUNTIME_DIR")
_SESSION_KEYRING: list[secret_service_module.SecretService] = []


@pytest.fixture(scope="session")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private session D-Bus with an unlocked gnome-keyring (a real Secret Service)."""
    service = start_secret_service(tmp_path_factory.mktemp("keyring"))
    env = service.env
    old = {k: os.environ.get(k) for k in KEYRING_ENV}
    os.environ.update({k: env[k] for k in KEYRING_ENV})
    _SESSION_KEYRING.append(service)
    yield env
    _SESSION_KEYRING.remove(service)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    service.stop()


@pytest.fixture(autouse=True)
def _keyring_still_running() -> Iterator[None]:
    """Fail the very test during which the session's gnome-keyring ended, saying how, and
    start it again on the same data so that the tests after it still mean something.

    Before this, the first sign was every later test reading a locked keyring (D-Bus had
    started a second, locked gnome-keyring) and nothing said when or why the first one ended.
    """
    yield
    for service in _SESSION_KEYRING:
        problem = service.problem()
        if problem:
            service.restart()
            pytest.fail(f"the test keyring ended during this test: {problem}", pytrace=False)


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


@pytest.fixture(autouse=True)
def _no_gui_loop_outside_gui_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """In a test without a window, no asyncio loop is "running" on the main thread.

    The GUI tests' session-wide qasync loop (tests/gui/test_window.py, ``qloop``) is made
    asyncio's running loop for the session (``already_running=True``), so a later test that
    reaches ``asyncio.run`` in-process (the command line's ``providers validate``, the
    service's blocking ``run_checks``) failed with "cannot be called from a running event
    loop" only when the GUI tests had run first. The loop is set aside for a test that uses
    no ``qtbot`` (no window), and put back for the GUI tests after it."""
    import asyncio

    if "qtbot" in request.fixturenames:  # (a window: tests/gui, or a GUI test elsewhere)
        yield
        return
    loop = asyncio.events._get_running_loop()
    if loop is None:
        yield
        return
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.events._set_running_loop(loop)
