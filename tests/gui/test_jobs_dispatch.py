"""Dispatch from the Jobs page, headless, against the ComfyUI contract fake and the real
detached driver: the confirmation (its warnings in words; closing it sends nothing), "Upload
and run" to the outputs on disk with the progress reaching the table, Cancel from the table,
Remove, the live columns' model and the selection kept while rows update."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.exceptions import TimeoutError as WaitTimeout
from pytestqt.qtbot import QtBot

from comfyvn_gui.core.gate import ConsentItem
from comfyvn_gui.core.jobs import Job
from comfyvn_gui.core.workload import Workload
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.jobs.dispatch_dialog import (
    UPLOAD_TEXT,
    Confirmation,
    DispatchDialog,
    JobToDispatch,
    confirmation_sections,
)
from comfyvn_gui.gui.jobs.model import Column, JobsModel, clock_text, spent_so_far
from comfyvn_gui.gui.jobs.page import JobsPage
from comfyvn_gui.service import Service
from comfyvn_gui.store.driver_lock import driver_running
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.comfyui import ComfyUIServer, running_comfyui
from tests.service.test_dispatch import project, stop_driver, summary

from .test_window import no_leaks, qloop  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("secret_service")

WAIT_MS = 30000


# --------------------------------------------------------------------------- set-up


@pytest.fixture
def bridge(qtbot: QtBot, app_home: Path) -> Iterator[ServiceBridge]:
    b = ServiceBridge(Service(resolve_home()))
    b.watch()  # what the window does: the driver's writes arrive as signals
    yield b
    b.close()
    qtbot.waitUntil(lambda: not b._tasks, timeout=10000)
    b.deleteLater()


@pytest.fixture
def page(qtbot: QtBot, bridge: ServiceBridge) -> Iterator[JobsPage]:
    p = JobsPage(bridge)
    qtbot.addWidget(p)
    p.resize(1300, 760)
    p.show()
    qtbot.waitExposed(p)
    with qtbot.waitSignal(p.loaded, timeout=WAIT_MS):
        p.start()
    yield p
    p.close_dialogs()


def add_box(qtbot: QtBot, bridge: ServiceBridge, server: ComfyUIServer) -> None:
    """A custom ComfyUI endpoint at $0.60/h (data leaves the machine: a warning to
    acknowledge), validated against the fake."""
    svc = bridge.service
    config = {
        "endpoint": server.url,
        "hourly_usd": "0.60",
        "zones": "us",
        "vram_gb": "24",
        "billing_increment_minutes": "1",
    }
    svc.create_provider("custom", {"id": "box", "config": config})
    task = bridge.spawn(bridge.check("validate", ["box"]), name="test-validate")
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    [valid] = task.result()
    assert valid.status == "valid", valid


def import_job(qtbot: QtBot, page: JobsPage, tmp_path: Path) -> int:
    """Import a two-image super-resolution summary through the page (its folder is the
    project's): one job, queued for the box."""
    folder = project(tmp_path / "project")
    path = folder / "summary.json"
    path.write_text(json.dumps(summary()), "utf-8")
    with qtbot.waitSignal(page.import_finished, timeout=WAIT_MS) as finished:
        page.import_file(path)
    [job_id] = finished.args[0]
    job = page.model.job(job_id)
    assert job is not None and job.compute is not None and job.compute.provider == "box"
    return int(job_id)


def open_dispatch(qtbot: QtBot, page: JobsPage, job_id: int) -> DispatchDialog:
    assert page.select_job(job_id)
    assert page.dispatch_action.isEnabled() and not page.cancel_action.isEnabled()
    with qtbot.waitSignal(page.dispatch_asked, timeout=WAIT_MS) as asked:
        page.dispatch_action.trigger()
    dialog: DispatchDialog = asked.args[0]
    assert dialog.isVisible()
    return dialog


def cell(page: JobsPage, job_id: int, column: Column) -> str:
    return str(page.model.index(page.model.row_of(job_id), column).data())


def status(page: JobsPage, job_id: int) -> str:
    job = page.model.job(job_id)
    return "" if job is None else job.status


def wait_status(qtbot: QtBot, page: JobsPage, job_id: int, want: str) -> None:
    """Wait until the table shows job ``job_id`` as ``want`` (else say what the queue holds)."""
    try:
        qtbot.waitUntil(lambda: status(page, job_id) == want, timeout=WAIT_MS)
    except WaitTimeout as exc:
        job = page.svc.get_job(job_id)
        shown = status(page, job_id)
        raise AssertionError(
            f"the table shows {shown}, the queue {job.status}: {job.meta}"
        ) from exc


def find_box(qtbot: QtBot, page: JobsPage, name: str) -> QMessageBox:
    def visible() -> list[QMessageBox]:
        return [b for b in page.findChildren(QMessageBox, name) if b.isVisible()]

    qtbot.waitUntil(lambda: bool(visible()), timeout=5000)
    return visible()[0]


def click(qtbot: QtBot, box: QMessageBox, name: str) -> None:
    [button] = [b for b in box.buttons() if b.objectName() == name]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


# --------------------------------------------------------------------------- end to end


def test_upload_and_run_from_the_dialog_reaches_the_outputs_and_the_table_follows(
    qtbot: QtBot, page: JobsPage, bridge: ServiceBridge, tmp_path: Path
) -> None:
    with running_comfyui(node_delay_s=0.25) as server:
        add_box(qtbot, bridge, server)
        job_id = import_job(qtbot, page, tmp_path)
        server.requests.clear()
        dialog = open_dispatch(qtbot, page, job_id)
        text = "\n".join(dialog.texts())
        # every warning in words, the provider, the estimate, the ceiling
        assert "will be uploaded to Custom ComfyUI (box)" in text or "(box)" in text, text
        assert "⚠ Data leaves this machine: Your content leaves this machine for" in text
        assert "Estimated $0.0" in text and "$0.60/hr" in text
        assert "(the cost ceiling)" in text
        assert dialog.upload_button is not None and dialog.upload_button.text() == UPLOAD_TEXT
        assert server.requests == []  # asking sent nothing

        seen: list[str] = []

        def follow(*_args: Any) -> None:
            if page.model.row_of(job_id) >= 0:
                text = cell(page, job_id, Column.PROGRESS)
                if not seen or seen[-1] != text:
                    seen.append(text)

        page.model.dataChanged.connect(follow)
        page.model.modelReset.connect(follow)
        with qtbot.waitSignal(page.dispatched, timeout=WAIT_MS) as dispatched:
            qtbot.mouseClick(dialog.upload_button, Qt.MouseButton.LeftButton)
        assert dispatched.args[0] == [job_id]
        wait_status(qtbot, page, job_id, "completed")

        svc = bridge.service
        record = svc.get_job(job_id).meta["dispatch"]
        assert record["acknowledged"]["interface"] == "window"
        assert record["acknowledged"]["codes"] == ["data_leaves_machine"]
        listing = svc.job_outputs(job_id)
        assert len(listing["outputs"]) == 2
        assert all((Path(listing["folder"]) / o["file"]).is_file() for o in listing["outputs"])
        # the progress reached the table while it ran: runs done of all moved on
        assert any(t.startswith("0/2 runs") for t in seen), seen
        assert any(t.startswith("1/2 runs") for t in seen), seen
        assert cell(page, job_id, Column.PROGRESS) == "2/2 runs"
        assert cell(page, job_id, Column.STATUS) == "Completed"
        assert cell(page, job_id, Column.SPENT) == "$0.01"  # one minute billed at $0.60/h
        assert ":" in cell(page, job_id, Column.ELAPSED)
        assert not page.clock.isActive()  # nothing in flight: the clock stopped
        assert not page.dispatch_action.isEnabled() and page.remove_action.isEnabled()
        stop_driver(svc, wait_idle=True)


def test_closing_the_confirmation_or_a_changed_advice_sends_nothing(
    qtbot: QtBot, page: JobsPage, bridge: ServiceBridge, tmp_path: Path
) -> None:
    with running_comfyui() as server:
        add_box(qtbot, bridge, server)
        job_id = import_job(qtbot, page, tmp_path)
        server.requests.clear()
        dialog = open_dispatch(qtbot, page, job_id)
        with qtbot.assertNotEmitted(dialog.upload):
            dialog.close()  # (the title bar's close; Cancel and Esc reject the same way)
        qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=2000)
        qtbot.wait(300)
        assert server.requests == []
        assert bridge.service.get_job(job_id).status == "queued"
        assert not driver_running(bridge.service.home)
        assert not list(page.dialogs)
        # the Review panel's Dispatch… asks about the job it shows (where the panel has one)
        requested = getattr(page.review, "dispatch_requested", None)
        if requested is not None:
            with qtbot.waitSignal(page.dispatch_asked, timeout=WAIT_MS) as asked:
                requested.emit()
            again: DispatchDialog = asked.args[0]
            assert [j.job_id for j in again.confirmation.jobs] == [job_id]
            qtbot.keyClick(again, Qt.Key.Key_Escape)
            qtbot.waitUntil(lambda: not again.isVisible(), timeout=2000)
        assert server.requests == [] and bridge.service.get_job(job_id).status == "queued"

        # the advice changes while the confirmation is open: what was shown no longer holds
        dialog = open_dispatch(qtbot, page, job_id)
        bridge.service.pick_provider(job_id, "box")  # (a new decision, as a re-advice makes)
        with qtbot.waitSignal(page.dispatched, timeout=WAIT_MS) as dispatched:
            qtbot.mouseClick(dialog.upload_button, Qt.MouseButton.LeftButton)
        assert dispatched.args[0] == []
        assert page.banner.kind == "error"
        assert "it changed since its warnings were shown" in page.banner.label.text()
        assert server.requests == [] and bridge.service.get_job(job_id).status == "queued"
        assert not driver_running(bridge.service.home)


def test_a_refused_job_says_why_and_offers_nothing_to_upload(
    qtbot: QtBot, page: JobsPage, bridge: ServiceBridge, tmp_path: Path
) -> None:
    with running_comfyui() as server:
        add_box(qtbot, bridge, server)
        job_id = import_job(qtbot, page, tmp_path)
        (tmp_path / "project" / "cg" / "b.png").unlink()  # an input went missing
        server.requests.clear()
        dialog = open_dispatch(qtbot, page, job_id)
        assert dialog.upload_button is None
        text = "\n".join(dialog.texts())
        assert text.startswith("Nothing can be uploaded")
        assert "b.png" in text, text
        dialog.reject()
        assert server.requests == [] and bridge.service.get_job(job_id).status == "queued"


def test_cancel_from_the_table_stops_a_running_job(
    qtbot: QtBot, page: JobsPage, bridge: ServiceBridge, tmp_path: Path
) -> None:
    with running_comfyui(node_delay_s=0.6) as server:
        add_box(qtbot, bridge, server)
        job_id = import_job(qtbot, page, tmp_path)
        dialog = open_dispatch(qtbot, page, job_id)
        with qtbot.waitSignal(page.dispatched, timeout=WAIT_MS):
            dialog.accept()
        wait_status(qtbot, page, job_id, "running")
        assert page.clock.isActive()  # elapsed time moves on while it runs
        assert page.select_job(job_id)
        assert page.cancel_action.isEnabled() and not page.dispatch_action.isEnabled()
        assert not page.remove_action.isEnabled()
        page.cancel_action.trigger()
        box = find_box(qtbot, page, "cancel-confirm")
        words = box.informativeText()
        assert "The prompt is stopped on box" in words and "Spent so far: $" in words, words
        with qtbot.waitSignal(page.cancel_asked, timeout=WAIT_MS) as asked:
            click(qtbot, box, "cancel-confirm-stop")
        assert asked.args[0] == [job_id]
        wait_status(qtbot, page, job_id, "cancelled")
        record = bridge.service.get_job(job_id).meta["dispatch"]
        assert record["cancel_requested"]["by"] == "window"
        assert "you cancelled it" in record["ended_message"]
        stop_driver(bridge.service, wait_idle=True)


def test_remove_asks_then_removes_a_queued_job(
    qtbot: QtBot, page: JobsPage, bridge: ServiceBridge
) -> None:
    svc = bridge.service
    [keep] = svc.import_summary(summary())
    [gone] = svc.import_summary(summary())
    with qtbot.waitSignal(page.reloaded, timeout=WAIT_MS):
        page.refresh()
    assert page.select_job(gone.id)
    assert page.remove_action.isEnabled() and not page.cancel_action.isEnabled()
    page.remove_action.trigger()
    box = find_box(qtbot, page, "remove-confirm")
    assert "Nothing was sent" in box.informativeText()
    click(qtbot, box, "remove-confirm-cancel")  # No: nothing happens
    qtbot.wait(200)
    assert page.model.row_of(gone.id) >= 0
    page.remove_action.trigger()
    box = find_box(qtbot, page, "remove-confirm")
    with qtbot.waitSignal(page.removed, timeout=WAIT_MS) as removed:
        click(qtbot, box, "remove-confirm-remove")
    assert removed.args[0] == [gone.id]
    assert page.model.row_of(gone.id) == -1 and page.model.row_of(keep.id) >= 0
    assert [j.id for j in svc.list_jobs()] == [keep.id]


def test_several_jobs_share_one_confirmation_listing_the_union_of_their_warnings(
    qtbot: QtBot,
) -> None:
    leave = ConsentItem("data_leaves_machine", "Your content leaves this machine for box.")
    dpia = ConsentItem("dpia", "Voice cloning needs a DPIA.")
    guard = "The machine shuts itself down at the deadline."
    at = datetime(2026, 1, 1, tzinfo=UTC)
    one = JobToDispatch(1, "CGs", "box", "box", at, (leave,), (), guard, "Estimated $0.01", "c1")
    two = JobToDispatch(2, "Voices", "box", "box", at, (leave, dpia), (), guard, "e2", "c2")
    refused = JobToDispatch(3, "Script", None, "", None, refusal="no provider can run it now")
    confirmation = Confirmation((one, two, refused))
    sections = confirmation_sections(confirmation)
    assert [s.heading for s in sections] == [
        "Every job",
        "“CGs” (job 1) on box",
        "“Voices” (job 2) on box",
        "Not dispatched (nothing is sent for these)",
    ]
    every = [text for _, text in sections[0].lines]
    assert every == [
        "⚠ Data leaves this machine: Your content leaves this machine for box.",
        f"If this app is gone: {guard}",
    ]
    assert ("warning", "⚠ Data protection (DPIA): Voice cloning needs a DPIA.") in sections[2].lines
    assert not any("DPIA" in text for _, text in sections[1].lines)
    assert sections[3].lines == [("error", "“Script” (job 3): no provider can run it now")]

    dialog = DispatchDialog(confirmation)
    qtbot.addWidget(dialog)
    dialog.open()
    assert dialog.upload_button is not None
    with qtbot.waitSignal(dialog.upload) as upload:
        qtbot.mouseClick(dialog.upload_button, Qt.MouseButton.LeftButton)
    sent = upload.args[0]
    assert [(j.job_id, j.codes) for j in sent] == [
        (1, ["data_leaves_machine"]),
        (2, ["data_leaves_machine", "dpia"]),
    ]


# --------------------------------------------------------------------------- the model


def _flight(job_id: int, status: str = "running", **record: Any) -> Job:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    base = {
        "provider": "box",
        "dispatched_at": at.isoformat(),
        "started_at": at.isoformat(),
        "price": {"hourly_usd": 0.6, "increment_minutes": 1.0, "minimum_minutes": 0.0},
        "estimate": {"cost_usd": 0.05, "minutes": 3.0},
        "ceilings": {"cost_usd": 0.1},
        "runs": [
            {"index": 0, "status": "succeeded"},
            {"index": 1, "status": "running"},
        ],
        "progress": {"run": 1, "node": "3", "value": 5, "max": 20},
        **record,
    }
    return Job(
        id=job_id,
        title=f"Job {job_id}",
        kind="cg_super_res",
        status=status,  # type: ignore[arg-type]
        workload=Workload(kind="cg_super_res", items=2, width=24, height=16),
        meta={"dispatch": base},
        created_at=at,
        updated_at=at,
    )


def test_the_live_columns_pass_the_model_tester_and_tick_without_a_reset(
    qtmodeltester: Any, qtbot: QtBot
) -> None:
    model = JobsModel()
    queued = _flight(1, "queued")
    queued.meta.pop("dispatch")
    ended = _flight(
        3,
        "completed",
        ended_at="2026-01-01T00:02:05+00:00",
        actual_cost_usd=0.03,
        billed_minutes=3.0,
        runs=[{"status": "succeeded"}] * 2,
    )
    model.set_jobs([queued, _flight(2), ended])
    qtmodeltester.check(model)
    assert model.index(0, Column.PROGRESS).data() == ""
    assert model.index(1, Column.PROGRESS).data() == "1/2 runs · 25%"
    assert model.index(2, Column.PROGRESS).data() == "2/2 runs"
    assert model.index(2, Column.ELAPSED).data() == "2:05"
    assert model.index(2, Column.SPENT).data() == "$0.03"
    tip = model.index(1, Column.PROGRESS).data(Qt.ItemDataRole.ToolTipRole)
    assert "run 2 at 25%" in tip and "node 3" in tip
    assert model.in_flight() == [2]

    changed: list[tuple[int, int, int, int]] = []
    resets: list[bool] = []
    model.dataChanged.connect(
        lambda a, b, _r: changed.append((a.row(), a.column(), b.row(), b.column()))
    )
    model.modelReset.connect(lambda: resets.append(True))
    later = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=4, seconds=7)
    assert model.tick(later) == 1
    assert changed == [(1, Column.ELAPSED, 1, Column.SPENT)] and resets == []
    assert model.index(1, Column.ELAPSED).data() == "4:07"
    assert model.index(1, Column.SPENT).data() == "$0.05"  # 5 minutes billed at $0.60/h
    tip = model.index(1, Column.SPENT).data(Qt.ItemDataRole.ToolTipRole)
    assert "Spent so far: $0.05" in tip and "estimated $0.05" in tip and "$0.10" in tip


def test_cost_so_far_follows_the_bill_the_driver_counts() -> None:
    now = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    price = {"hourly_usd": 6.0, "increment_minutes": 1.0, "minimum_minutes": 0.0}
    started = {"started_at": "2026-01-01T00:00:00+00:00", "price": price}
    assert spent_so_far({}, now) is None
    assert spent_so_far(started, now) == (10.0, 1.0)
    # a rented machine bills from its launch; none rented yet: nothing
    machine = {**started, "machine": {"launched_at": "2026-01-01T00:05:00+00:00"}}
    assert spent_so_far(machine, now) == (5.0, 0.5)
    assert spent_so_far({**started, "target": "machine"}, now) == (0.0, 0.0)
    ended = {**started, "ended_at": "x", "actual_cost_usd": 0.2, "billed_minutes": 2}
    assert spent_so_far(ended, now) == (2.0, 0.2)
    assert clock_text(59) == "0:59" and clock_text(3723) == "1:02:03"


def test_a_running_jobs_update_keeps_the_selection_and_the_scroll(
    qtbot: QtBot, page: JobsPage
) -> None:
    """A reload (as the driver's progress writes cause) and the clock's tick update the
    running job's row in place: the two selected rows stay selected, the view does not
    scroll."""
    jobs = [_flight(i, "queued") for i in range(1, 80)]
    jobs[60] = _flight(61)
    page._apply(page.model.prepare(jobs))  # (what a reload shows)
    assert page.proxy.rowCount() == 79 and page.clock.isActive()
    selection = page.table.selectionModel()
    selection.clearSelection()
    for jid in (61, 62):
        index = page.proxy.mapFromSource(page.model.index(page.model.row_of(jid), 0))
        selection.select(
            index,
            QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows,
        )
    page.table.scrollTo(index)
    scroll = page.table.verticalScrollBar().value()
    assert scroll > 0 and page.selected_job_ids() == [61, 62]
    assert page.cancel_action.isEnabled() and page.dispatch_action.isEnabled()
    resets: list[bool] = []
    page.model.modelReset.connect(lambda: resets.append(True))
    again = list(jobs)
    again[60] = _flight(61, progress={"run": 1, "value": 15, "max": 20})
    with qtbot.waitSignal(page.reloaded):
        page._apply(page.model.prepare(again))
    with qtbot.waitSignal(page.clock.timeout, timeout=3000):
        pass  # (the clock ticks while the job runs)
    assert resets == []
    assert cell(page, 61, Column.PROGRESS) == "1/2 runs · 75%"
    assert page.selected_job_ids() == [61, 62]
    assert page.table.verticalScrollBar().value() == scroll


def test_changes_read_between_full_reads_move_the_rows_the_clock_and_the_sort(
    qtmodeltester: Any, qtbot: QtBot
) -> None:
    """Between full reads the page reads only the jobs written since (``prepare_changes``, in
    the I/O pool): a job that ended leaves the clock, a sorted table moves its row, an
    unchanged job changes nothing, and a job the table does not hold sends the page to a
    full read instead of being dropped."""
    import concurrent.futures

    model = JobsModel()
    queued = [_flight(i, "queued") for i in (1, 3, 4, 6)]
    for job in queued:
        job.meta.pop("dispatch")
    jobs = sorted([*queued, _flight(2), _flight(5)], key=lambda j: j.id)
    model.set_jobs(jobs)
    model.sort(Column.STATUS, Qt.SortOrder.DescendingOrder)  # running first, then queued
    assert model.in_flight() == [2, 5]
    assert [model.job_at(r).id for r in range(2)] == [2, 5]

    ended = _flight(
        2,
        "completed",
        ended_at="2026-01-01T00:02:05+00:00",
        actual_cost_usd=0.03,
        billed_minutes=3.0,
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        prepared = pool.submit(model.prepare_changes, [ended, _flight(5)]).result()
    assert prepared is not None and [r.job.id for r in prepared.fresh] == [2]  # 5: unchanged
    resets: list[bool] = []
    model.modelReset.connect(lambda: resets.append(True))
    assert model.set_jobs(prepared) is False and resets == []
    assert model.in_flight() == [5] and model.tick() == 1
    row = model.row_of(2)
    assert model.index(row, Column.STATUS).data() == "Completed"
    assert model.index(row, Column.SPENT).data() == "$0.03"
    assert model.job_at(0).id == 2  # "completed" sorts above "running", descending
    qtmodeltester.check(model)

    unchanged = model.prepare_changes([model.job(4)])  # type: ignore[list-item]
    assert unchanged is not None and unchanged.fresh == []
    assert model.prepare_changes([_flight(99)]) is None  # not shown: the page reads it all

    # Prepared before the user sorted again: worked out again, never lost.
    stale = model.prepare_changes([_flight(5, "completed", ended_at="2026-01-01T00:01:00Z")])
    assert stale is not None
    model.sort(Column.JOB, Qt.SortOrder.AscendingOrder)
    assert model.set_jobs(stale) is False
    assert model.index(model.row_of(5), Column.STATUS).data() == "Completed"
    assert model.in_flight() == [] and model.tick() == 0
    assert [model.job_at(r).id for r in range(6)] == [1, 2, 3, 4, 5, 6]
    qtmodeltester.check(model)
