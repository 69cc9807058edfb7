"""The Running place, headless: its model (Qt's model tester), a pod that no job owns rented
on the RunPod pods fake (a real launch through the adapter, its machine booted by
``MachineHosts``) listed, tinted and named an orphan, and stopped after a confirmation; a row
in use that cannot be stopped; providers that could not be listed; and the window's banner,
after the first paint, that opens the place."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.mainwindow import MainWindow
from comfyvn_gui.gui.running.model import (
    REF_ROLE,
    ROW_ROLE,
    STATE_WORDS,
    Column,
    RunningModel,
)
from comfyvn_gui.gui.running.page import IN_USE_TIP, RunningPage
from comfyvn_gui.service import Service
from comfyvn_gui.service.running import RunningReport, RunningRow
from tests.fakes.machine_host import MachineHosts
from tests.fakes.runpod_pods import RunPodPodsFake
from tests.fakes.sshd import free_port
from tests.service.test_dispatch_machines import (
    Kit,
    launch_orphan,
    machine_service,
    runpod_pods_kit,
)

from .test_window import _run_app, close, loaded, no_leaks, qloop  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("secret_service")

WAIT_MS = 20000
T = TypeVar("T")


def in_thread(fn: Callable[[], T]) -> T:
    """``fn()`` in a thread of its own (the GUI tests' loop counts as running here, so a
    blocking service call that runs ``asyncio.run`` cannot run on this thread)."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append((fn(), None))
        except BaseException as exc:  # noqa: BLE001 - raised below
            out.append((None, exc))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    [(value, error)] = out
    if error is not None:
        raise error
    return value  # type: ignore[no-any-return]


def row(ref: str, state: str, **changes: Any) -> RunningRow:
    values: dict[str, Any] = {
        "provider": ref.partition(":")[0],
        "ref": ref,
        "kind": "pod",
        "name": f"comfyvn-h-{ref}",
        "job_id": None,
        "state": state,
        "status": "RUNNING",
        "age_s": 600.0,
        "hourly_usd": 0.46,
        "cost_so_far_usd": 0.0767,
        "monthly_usd": None,
        "console_url": "https://www.runpod.io/console/pods",
        **changes,
    }
    return RunningRow(**values)


def sample_report() -> RunningReport:
    return RunningReport(
        rows=[
            row("rp:a", "orphan"),
            row("rp:b", "in_use", job_id=4),
            row("rp:c", "leaked", job_id=2),
            row("rp:v", "standing", kind="volume", monthly_usd=7.0, hourly_usd=None),
        ],
        errors={"vast": "the API key was refused (401)"},
    )


@pytest.fixture
def bridge(qtbot: QtBot, app_home: Path) -> Iterator[ServiceBridge]:
    b = ServiceBridge(Service())
    yield b
    b.close()
    qtbot.waitUntil(lambda: not b._tasks, timeout=10000)
    b.deleteLater()


def make_page(qtbot: QtBot, bridge: ServiceBridge) -> RunningPage:
    p = RunningPage(bridge)
    qtbot.addWidget(p)
    p.resize(1000, 500)
    p.show()
    qtbot.waitExposed(p)
    return p


# --------------------------------------------------------------------------- the model


def test_the_running_model_passes_qts_model_tester(qtmodeltester: Any) -> None:
    model = RunningModel()
    qtmodeltester.check(model)
    report = sample_report()
    model.set_rows(report.rows)
    qtmodeltester.check(model)
    assert model.rowCount() == 4 and model.columnCount() == len(Column)

    def cell(r: int, c: Column, role: Qt.ItemDataRole = Qt.ItemDataRole.DisplayRole) -> Any:
        return model.data(model.index(r, c), role)

    # The state in words, the tint only repeating it (orphan and leaked), on both palettes.
    assert [cell(r, Column.STATE) for r in range(4)] == [
        STATE_WORDS[s] for s in ("orphan", "in_use", "leaked", "standing")
    ]
    light = cell(0, Column.NAME, Qt.ItemDataRole.BackgroundRole)
    assert light is not None and cell(2, Column.NAME, Qt.ItemDataRole.BackgroundRole)
    assert cell(1, Column.NAME, Qt.ItemDataRole.BackgroundRole) is None
    model.set_dark(True)
    dark = cell(0, Column.NAME, Qt.ItemDataRole.BackgroundRole)
    assert dark.color().lightness() < 128 < light.color().lightness()
    assert cell(0, Column.COST) == "$0.08 ($0.46/hr)"
    assert cell(3, Column.COST) == "$7.00/month"
    assert cell(0, Column.AGE) == "10 min"
    assert cell(1, Column.JOB) == "4" and cell(0, Column.JOB) == "—"
    assert cell(0, Column.CONSOLE) == "Open www.runpod.io"
    assert model.data(model.index(2, 0), REF_ROLE) == "rp:c"
    assert model.data(model.index(2, 5), ROW_ROLE).state == "leaked"
    model.set_rows([])
    qtmodeltester.check(model)


# --------------------------------------------------------------------------- the page


def test_a_row_in_use_cannot_be_stopped_and_unlisted_providers_are_said(
    qtbot: QtBot, bridge: ServiceBridge
) -> None:
    page = make_page(qtbot, bridge)
    page._show(sample_report())  # (what the service decided: states, errors)
    assert page.is_loaded and page.list_stack.currentWidget() is page.table
    assert page.errors.isVisible()
    assert "vast: the API key was refused (401)" in page.errors.text()
    assert "3 orphan" not in page.summary.text() and "2 orphan or leaked" in page.summary.text()
    assert page.orphans_button.isEnabled()
    assert not page.stop_button.isEnabled()  # nothing selected
    page.select_refs(["rp:b"])
    assert not page.stop_button.isEnabled()
    assert "cancel the job" in page.stop_button.toolTip() and "job 4" in page.stop_button.toolTip()
    assert IN_USE_TIP.split(":")[1].strip() in page.stop_button.toolTip()
    page.select_refs(["rp:a", "rp:c"])
    assert page.stop_button.isEnabled()
    page.close_dialogs()


def find_box(qtbot: QtBot, parent: Any, name: str) -> QMessageBox:
    def visible() -> list[QMessageBox]:
        return [b for b in parent.findChildren(QMessageBox, name) if b.isVisible()]

    qtbot.waitUntil(lambda: bool(visible()), timeout=5000)
    [box] = visible()
    return box


def click_button(box: QMessageBox, text: str) -> None:
    [button] = [b for b in box.buttons() if b.text() == text]
    button.click()


@pytest.fixture
def pods_kit() -> Iterator[Kit]:
    with MachineHosts() as hosts:
        yield from runpod_pods_kit(hosts)


def test_an_orphan_pod_is_listed_and_stopped_after_a_confirmation(
    qtbot: QtBot, app_home: Path, pods_kit: Kit
) -> None:
    svc = in_thread(lambda: machine_service(pods_kit, free_port()))
    import asyncio

    in_thread(lambda: asyncio.run(launch_orphan(svc, 999)))  # (an app that died after renting)
    assert len(pods_kit.held()) == 1
    b = ServiceBridge(svc)
    try:
        page = make_page(qtbot, b)
        with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
            page.start()
        rows = page.model.rows()
        orphan_name = f"comfyvn-{svc.home.home_id()}-job999"
        orphans = [r for r in rows if r.name == orphan_name]
        assert orphans and orphans[0].state == "orphan", rows
        r = rows.index(orphans[0])
        assert page.model.data(page.model.index(r, Column.STATE)) == STATE_WORDS["orphan"]
        assert page.model.data(page.model.index(r, Column.JOB)) == "999"
        assert page.orphans_button.isEnabled()

        # Stop asks first, naming what is released and what it costs; Cancel sends nothing.
        page.select_refs([orphans[0].ref])
        page.stop_button.click()
        box = find_box(qtbot, page, "running-stop-confirm")
        assert "Release 1 resource" in box.text() and "/hr" in box.text()
        assert orphan_name in box.informativeText()
        click_button(box, "Cancel")
        qtbot.waitUntil(lambda: not page.findChildren(QMessageBox), timeout=5000)
        assert len(pods_kit.held()) == 1

        page.stop_button.click()
        box = find_box(qtbot, page, "running-stop-confirm")
        with qtbot.waitSignal(page.stopped, timeout=WAIT_MS) as stopped:
            click_button(box, "Stop")
        assert orphans[0].ref in stopped.args[0]
        assert pods_kit.held() == []
        assert page.banner.kind == "ok" and "Released" in page.banner.label.text()
        assert [r for r in page.model.rows() if r.kind in ("pod", "machine")] == []
    finally:
        b.close()
        qtbot.waitUntil(lambda: not b._tasks, timeout=10000)


def test_the_windows_banner_tells_of_orphans_and_opens_the_running_place(
    qtbot: QtBot, app_home: Path
) -> None:
    """After the first paint, off the GUI thread: a pod of this home that no job owns is told
    in the window's banner; Show opens the Running place, which lists it as an orphan."""
    with RunPodPodsFake() as fake:
        svc = Service()
        svc.create_provider(
            "runpod",
            {
                "id": "rp",
                "config": {"endpoints": {"graphql": fake.graphql_url}},
                "secrets": {"api_key": fake.key},
            },
        )
        fake.add_pod(f"comfyvn-{svc.home.home_id()}-job7")
        w = loaded(qtbot, MainWindow(service=svc, monitor=True))
        qtbot.waitUntil(w.banner.isVisible, timeout=WAIT_MS)
        assert "no job owns" in w.banner.label.text()
        assert "Running page" in w.banner.label.text()
        assert "no job owns" in w.statusBar().currentMessage()  # (kept as it was)
        assert w.banner.action.text() == "Show"
        page = w.running
        assert page is not None
        with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
            w.banner.action.click()
        assert w.current_page() == "running" and not w.banner.isVisible()
        assert [r.state for r in page.model.rows()] == ["orphan"]
        close(qtbot, w)


def test_screenshot_of_the_running_place(tmp_path: Path, app_home: Path) -> None:
    png = tmp_path / "running.png"
    result = _run_app("--screenshot", str(png), "--page", "running")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "still loading" not in result.stderr
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1000, 650)
