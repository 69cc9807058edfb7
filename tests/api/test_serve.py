"""``comfyvn-gui serve`` as users run it: its own process on a home the desktop app also has
open. A provider or a job added through the API shows up in the running window without a
restart; the server's start-up messages, warnings and exit codes."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pytestqt.qtbot import QtBot

from comfyvn_gui.gui.mainwindow import MainWindow
from tests.conftest import keyring_entries
from tests.fakes.runpod import RunPodFake, health_body
from tests.gui.test_window import close, loaded, no_leaks, qloop  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("secret_service")

ROOT = Path(__file__).resolve().parents[2]
KEY = "rpa_API_GUI_CANARY_0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, proc: subprocess.Popen[str], port: int, home: Path) -> None:
        self.proc, self.port, self.home = proc, port, home

    @property
    def token(self) -> str:
        return (self.home / "config" / "api-token").read_text().strip()

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )


def start_serve(home: Path, *args: str, port: int | None = None) -> Served:
    port = port or free_port()
    env = {**os.environ, "COMFYVN_GUI_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "comfyvn_gui", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"serve exited with {proc.returncode}: {out}{err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("serve did not start listening in 30 s") from None
            time.sleep(0.05)
    return Served(proc, port, home)


def stop(served: Served) -> tuple[int, str]:
    served.proc.send_signal(signal.SIGINT)
    try:
        _, err = served.proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        _, err = served.proc.communicate()
        raise AssertionError("serve did not stop within 30 s of Ctrl+C") from None
    return served.proc.returncode, err


@pytest.fixture
def served(app_home: Path) -> Iterator[Served]:
    s = start_serve(app_home, "--no-monitor")
    yield s
    if s.proc.poll() is None:
        stop(s)


@pytest.fixture
def runpod() -> Iterator[RunPodFake]:
    with RunPodFake(endpoints={"ep-a": health_body(idle=1)}, key=KEY) as fake:
        yield fake


# --------------------------------------------------------------------------- the server process


def test_serve_makes_a_private_token_and_stops_cleanly_on_ctrl_c(served: Served) -> None:
    token_file = served.home / "config" / "api-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(served.token) >= 32
    with served.client() as c:
        assert c.get("/api/providers").status_code == 200
        no_token = httpx.get(f"http://127.0.0.1:{served.port}/api/providers", timeout=30)
        assert no_token.status_code == 401
    code, err = stop(served)
    assert code == 0, err
    assert f"http://127.0.0.1:{served.port}" in err and str(token_file) in err
    assert served.token not in err  # the token's place is shown, never the token
    assert "Traceback" not in err


def test_a_second_server_on_a_port_in_use_says_so(served: Served) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "comfyvn_gui", "serve", "--port", str(served.port)],
        env={**os.environ, "COMFYVN_GUI_HOME": str(served.home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1
    assert "could not start" in res.stderr and "--port" in res.stderr
    assert "Traceback" not in res.stderr


def test_binding_to_every_interface_warns_that_the_network_can_reach_it(app_home: Path) -> None:
    s = start_serve(app_home, "--no-monitor", "--host", "0.0.0.0")
    code, err = stop(s)
    assert code == 0
    assert "warning" in err and "reachable from the network" in err


def test_a_bad_port_is_a_usage_error() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "comfyvn_gui", "serve", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "not a port number" in res.stderr


def test_the_server_runs_the_health_monitor(app_home: Path, runpod: RunPodFake) -> None:
    """Without --no-monitor the server health-checks validated providers by itself."""
    from comfyvn_gui.service import Service

    svc = Service()
    svc.create_provider("runpod", runpod.provider("rp", endpoint="ep-a"))
    # (in a thread: a GUI test earlier in the session left qasync's loop running here)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        [result] = pool.submit(svc.run_checks, "validate", ["rp"], timeout_s=10).result()
    assert result.status == "valid"
    s = start_serve(app_home)
    try:
        deadline = time.monotonic() + 30
        while "health" not in svc.last_results().get("rp", {}):
            assert time.monotonic() < deadline, "the server's monitor never checked rp"
            time.sleep(0.2)
        assert svc.last_results()["rp"]["health"].status == "healthy"
    finally:
        stop(s)
        svc.close()


# --------------------------------------------------------------------------- GUI and API together


@pytest.fixture
def window(qtbot: QtBot, app_home: Path) -> Iterator[MainWindow]:
    w = loaded(qtbot, MainWindow())
    yield w
    close(qtbot, w)


def test_what_the_api_adds_appears_in_the_open_window_without_a_restart(
    qtbot: QtBot, window: MainWindow, served: Served, runpod: RunPodFake
) -> None:
    page = window.remote
    jobs = window.jobs
    assert page is not None and jobs is not None
    with served.client() as c:
        created = c.post(
            "/api/providers/create",
            json=runpod.provider(
                "from-api", endpoint="ep-a", template_id="runpod", name="From the API"
            ),
        )
        assert created.status_code == 201, created.text
        qtbot.waitUntil(lambda: "from-api" in page.cards.keys(), timeout=10000)
        assert page.cards.card("from-api").info.badge.state == "configured"
        # The secret went to the keyring the window also reads, and nowhere else.
        mine = keyring_entries(f"comfyvn-gui/{page.svc.home.home_id()}")
        assert [v for (_s, user), v in mine.items() if user.startswith("from-api")] == [KEY]
        assert KEY not in (served.home / "config" / "providers.json").read_text()

        # A validation through the API turns the window's badge.
        result = c.post("/api/providers/from-api/validate")
        assert result.status_code == 200 and result.json()["status"] == "valid", result.text
        qtbot.waitUntil(
            lambda: page.cards.card("from-api").info.badge.state == "validated", timeout=10000
        )

        # A job queued through the API appears in the Jobs view with its advice.
        job = c.post("/api/jobs", json={"kind": "voice_synthesis", "items": 20, "title": "API job"})
        assert job.status_code == 201, job.text
        job_id = job.json()["id"]
        qtbot.waitUntil(lambda: jobs.model.row_of(job_id) >= 0, timeout=10000)
        row = jobs.model.row_of(job_id)
        titles = [jobs.model.index(row, col).data() for col in range(jobs.model.columnCount())]
        assert "API job" in titles
        # The window's own view of the registry agrees with the API's.
        listed = c.get("/api/providers").json()
        assert {p["id"] for p in listed["providers"]} == set(page.entries)


def test_every_api_call_keeps_secrets_out_of_the_home_files(served: Served) -> None:
    with served.client() as c:
        r = c.post(
            "/api/providers/create",
            json={"template_id": "lambda", "id": "lam", "config": {"api_key": KEY}},
        )
        assert r.status_code == 201
        exported = c.get("/api/providers/export").json()
    assert KEY not in json.dumps(exported)
    for path in served.home.rglob("*"):
        if path.is_file() and path.name != "api-token":
            assert KEY.encode() not in path.read_bytes(), path
