"""The Review panel of a job that really ran: dispatched to the local provider, whose ComfyUI is
the contract fake (tests/fakes/comfyui.py, which really writes PNG outputs), by the real
detached driver. The panel shows the lifecycle, what the job cost against its estimate, its
outputs as thumbnails decoded off the GUI thread (before / after for super-resolution), the
outputs folder, how a failed job ended and what to do, and the alternatives' cost chart."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QPalette
from pytestqt.qtbot import QtBot

from comfyvn_gui.core.checks import LocalGpu, LocalSnapshot
from comfyvn_gui.core.jobs import Job
from comfyvn_gui.gui.jobs.review_panel import ReviewPanel
from comfyvn_gui.gui.widgets.thumbnails import PATH_ROLE, STATE_ROLE
from comfyvn_gui.service import Service
from tests.fakes.comfyui import ComfyUIServer, running_comfyui
from tests.fakes.runpod import RunPodFake, health_body
from tests.service.test_dispatch import (
    dispatch,
    ended,
    local_service,
    queued_job,
    stop_driver,
)

from .test_window import no_leaks, qloop  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("secret_service")

WAIT_MS = 10000


@pytest.fixture(autouse=True)
def local_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has no GPU: the advisor sees an RTX 4090 (the hardware, not the logic)."""
    snap = LocalSnapshot(
        gpus=[LocalGpu(name="RTX 4090", vram_total_gb=24, vram_free_gb=22, index=0)],
        source="nvml",
    )
    monkeypatch.setattr("comfyvn_gui.service.advice.snapshot", lambda: snap)


@pytest.fixture
def comfyui() -> Iterator[ComfyUIServer]:
    with running_comfyui() as server:
        yield server


@pytest.fixture
def svc(comfyui: ComfyUIServer) -> Iterator[Service]:
    service = local_service(comfyui)
    yield service
    stop_driver(service)
    service.close()


@pytest.fixture
def panel(qtbot: QtBot) -> Iterator[ReviewPanel]:
    p = ReviewPanel()
    qtbot.addWidget(p)
    p.resize(520, 1400)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.close()
    assert p.thumbnails.pool.activeThreadCount() == 0


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[QUrl]:
    """The URLs the panel asks the desktop to open (no file manager is started)."""
    urls: list[QUrl] = []

    def open_url(url: QUrl) -> bool:
        urls.append(url)
        return True

    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(open_url))
    return urls


def ran(svc: Service, tmp_path: Path, **kw: object) -> Job:
    job = queued_job(svc, tmp_path, **kw)  # type: ignore[arg-type]
    dispatch(svc, job)
    return ended(svc, job.id)


def show(qtbot: QtBot, panel: ReviewPanel, svc: Service, job: Job) -> None:
    panel.show_job(job)
    panel.set_events(svc.job_events(job.id))
    grid = panel.thumbnails
    qtbot.waitUntil(
        lambda: (
            grid.thumbs.rowCount() > 0
            and grid.pending() == 0
            and all(
                grid.thumbs.index(r, 0).data(STATE_ROLE) != "loading"
                for r in range(grid.thumbs.rowCount())
            )
        ),
        timeout=WAIT_MS,
    )


def test_a_completed_job_shows_its_life_cost_outputs_and_the_alternatives_chart(
    qtbot: QtBot, panel: ReviewPanel, svc: Service, tmp_path: Path, opened: list[QUrl]
) -> None:
    # An ineligible alternative with a price: a RunPod endpoint that was never validated.
    with RunPodFake(endpoints={"ep-a": health_body(idle=2, running=1)}) as fake:
        svc.create_provider(
            "runpod", fake.provider("runpod-a", endpoint="ep-a", meta={"hourly_usd": 0.40})
        )
    job = ran(svc, tmp_path)
    assert job.status == "completed", job.meta["dispatch"]
    record = job.meta["dispatch"]
    show(qtbot, panel, svc, job)

    # The lifecycle, each step with its time.
    steps = [line.split("  ", 1)[1] for line in panel.lifecycle.text().splitlines()]
    assert steps == [
        "Queued",
        "Dispatched to local (from the test)",
        "Submitting",
        "Running",
        "Completed",
    ]
    # What it cost against the estimate, and how it ended.
    assert panel.spend.text() == "Spent $0.00 (estimated $0.00), 1 min billed."
    assert panel.outcome.isVisible() and panel.outcome.kind == "ok"
    assert "2 of 2 runs" in panel.outcome.label.text()
    assert not panel.dispatch_button.isVisible() and not panel.cancel_button.isVisible()

    # The outputs: one before / after tile per input, decoded off the GUI thread.
    grid = panel.thumbnails
    inputs = svc.job_inputs(job.id)
    files = [Path(record["outputs_dir"]) / o["file"] for o in record["outputs"]]
    tiles = grid.thumbs.items()
    pairs = list(zip(inputs, files, strict=True))
    assert [t.paths for t in tiles] == pairs
    assert [t.caption for t in tiles] == [f"{i.name} → {f.name}" for i, f in pairs]
    assert panel.outputs_heading.text() == "Outputs (2)"
    assert all(grid.thumbs.index(r, 0).data(STATE_ROLE) == "shown" for r in range(2))
    assert grid.decoded_in and threading.get_ident() not in grid.decoded_in
    pixmap = grid.thumbs.index(0, 0).data(Qt.ItemDataRole.DecorationRole)
    assert pixmap.width() > pixmap.height()  # the pair, side by side

    # Double-click opens the output; "Open folder" the outputs folder.
    first = grid.thumbs.index(0, 0)
    assert first.data(PATH_ROLE) == str(files[0])
    centre = grid.visualRect(first).center()
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseDClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseClick(panel.open_folder_button, Qt.MouseButton.LeftButton)
    assert opened[-2:] == [
        QUrl.fromLocalFile(str(files[0])),
        QUrl.fromLocalFile(str(svc.job_outputs_dir(job.id))),
    ]

    # The chart: the chosen provider marked, the ineligible one greyed with why.
    chart = panel.cost_chart
    bars = {b.key: b for b in chart.bars()}
    assert bars["local"].chosen and bars["local"].eligible
    assert not bars["runpod-a"].eligible and "not validated" in bars["runpod-a"].why
    description = chart.accessibleDescription()
    assert "local: $0.00, chosen" in description
    assert "runpod-a: cannot run it — not validated" in description
    image = chart.grab().toImage()
    ratio = image.devicePixelRatio()
    rows = [chart.row_rect(i) for i in range(len(chart.bars()))]
    order = [b.key for b in chart.bars()]

    def colours(key: str) -> set[str]:
        rect = rows[order.index(key)]
        ys = range(int(rect.top() * ratio), int((rect.bottom() + 1) * ratio))
        return {image.pixelColor(x, y).name() for y in ys for x in range(image.width())}

    highlight = chart.palette().color(QPalette.ColorRole.Highlight).name()
    grey = chart.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text).name()
    assert highlight in colours("local")
    assert highlight not in colours("runpod-a") and grey in colours("runpod-a")
    # A click on a bar selects that alternative in the list below.
    y = rows[order.index("runpod-a")].center().y()
    qtbot.mouseClick(chart, Qt.MouseButton.LeftButton, pos=QPoint(10, y))
    selected = panel.selected_alternative()
    assert selected is not None and selected["provider"] == "runpod-a"

    stop_driver(svc, wait_idle=True)


def test_a_failed_job_says_what_failed_and_what_to_do_and_keeps_the_good_outputs(
    qtbot: QtBot, panel: ReviewPanel, svc: Service, tmp_path: Path
) -> None:
    job = queued_job(svc, tmp_path)
    (tmp_path / "project" / "cg" / "b.png").write_bytes(b"not a png at all")
    # Queued: "Dispatch…" asks the page for its dialog; nothing of a run is shown yet.
    panel.show_job(job)
    assert panel.dispatch_button.isEnabled() and not panel.cancel_button.isVisible()
    assert not panel.dispatch_box.isVisible()
    with qtbot.waitSignal(panel.dispatch_requested, timeout=1000):
        qtbot.mouseClick(panel.dispatch_button, Qt.MouseButton.LeftButton)
    # In flight: "Cancel job" instead.
    started = dispatch(svc, job)
    panel.show_job(started)
    assert panel.cancel_button.isEnabled() and not panel.dispatch_button.isVisible()
    with qtbot.waitSignal(panel.cancel_requested, timeout=1000):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    job = ended(svc, job.id)
    assert job.status == "failed"
    show(qtbot, panel, svc, job)

    message = job.meta["dispatch"]["ended_message"]
    assert panel.outcome.isVisible() and panel.outcome.kind == "error"
    assert panel.outcome.label.text().lower() == message.lower()
    assert "jobs retry" in panel.outcome.label.text()
    assert panel.lifecycle.text().splitlines()[-1].endswith("Failed")
    tiles = panel.thumbnails.thumbs.items()
    assert len(tiles) == 1 and tiles[0].paths[0].name == "a.png"

    # Another job selected: the panel drops the outputs (nothing keeps decoding them).
    panel.show_job(None)
    assert panel.thumbnails.thumbs.rowCount() == 0 and not panel.dispatch_box.isVisible()
    stop_driver(svc, wait_idle=True)
