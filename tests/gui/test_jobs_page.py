"""The Jobs page, headless: the queue's model (checked by Qt's model tester), importing a
summary (the button's dialog, drag and drop, a bad summary), re-advice showing up without a
restart (a real health check against the RunPod contract fake), the Review panel's pick and
"Back to the advisor's choice" with their audit trail, and ten thousand jobs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QFileDialog,
    QLabel,
    QWidget,
)
from pytestqt.qtbot import QtBot

from comfyvn_gui.core.advisor import WARNING_CODES
from comfyvn_gui.core.catalog import resources_dir
from comfyvn_gui.core.jobs import Job, JobEvent
from comfyvn_gui.core.workload import Workload
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.jobs.model import (
    ADVICE_ROLE,
    JOB_ROLE,
    SORT_ROLE,
    WARNING_WORDS,
    AlternativesModel,
    Column,
    EventsModel,
    JobsModel,
    size_text,
)
from comfyvn_gui.gui.jobs.page import EMPTY_TEXT, JobsPage
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.runpod import RunPodFake, health_body

from .test_window import no_leaks, qloop  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("secret_service")

SUMMARIES = resources_dir() / "examples" / "summaries"
MOONLIT = SUMMARIES / "moonlit-academy.json"
HEALTHY = health_body(idle=2, running=1)
CRASHED = health_body(unhealthy=3, in_queue=1)
WAIT_MS = 20000


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def runpod() -> Iterator[RunPodFake]:
    with RunPodFake(endpoints={"ep-a": HEALTHY, "ep-b": HEALTHY}) as fake:
        yield fake


@pytest.fixture
def bridge(qtbot: QtBot, app_home: Path) -> Iterator[ServiceBridge]:
    b = ServiceBridge(Service(resolve_home()))
    yield b
    b.close()
    qtbot.waitUntil(lambda: not b._tasks, timeout=10000)
    b.deleteLater()


@pytest.fixture
def page(qtbot: QtBot, bridge: ServiceBridge) -> Iterator[JobsPage]:
    p = JobsPage(bridge)
    qtbot.addWidget(p)
    p.resize(1200, 760)
    p.show()
    qtbot.waitExposed(p)
    with qtbot.waitSignal(p.loaded, timeout=WAIT_MS):
        p.start()
    assert p.is_loaded
    yield p
    p.close_dialogs()


def run(qtbot: QtBot, bridge: ServiceBridge, coro: Any) -> Any:
    """Run a coroutine on the GUI's loop (as the window would) and wait for its result."""
    task = bridge.spawn(coro, name="test")
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    return task.result()


def add_runpod(svc: Service, fake: RunPodFake, pid: str, endpoint: str, **extra: Any) -> None:
    svc.create_provider("runpod", fake.provider(pid, endpoint=endpoint, **extra))


def two_runpods(qtbot: QtBot, bridge: ServiceBridge, fake: RunPodFake) -> None:
    """runpod-a: an A10G at $0.40/hr; runpod-b: an A100 80GB at $2.00/hr; both validated and
    healthy by real checks against the fake."""
    svc = bridge.service
    add_runpod(svc, fake, "runpod-a", "ep-a", meta={"hourly_usd": 0.40})
    add_runpod(svc, fake, "runpod-b", "ep-b", gpu="A100 80GB", meta={"hourly_usd": 2.0})
    ids = ["runpod-a", "runpod-b"]
    validated = run(qtbot, bridge, svc.check("validate", ids, timeout_s=10))
    assert [r.status for r in validated] == ["valid", "valid"], [r.message for r in validated]
    healthy = run(qtbot, bridge, svc.check("health", ids, timeout_s=10))
    assert [r.status for r in healthy] == ["healthy", "healthy"], [r.message for r in healthy]


def import_moonlit(qtbot: QtBot, page: JobsPage, path: Path = MOONLIT) -> list[int]:
    with qtbot.waitSignal(page.import_finished, timeout=WAIT_MS) as finished:
        page.import_file(path)
    ids: list[int] = finished.args[0]
    return ids


def cell(page: JobsPage, job_id: int, column: Column, role: int = 0) -> Any:
    row = page.model.row_of(job_id)
    return page.model.index(row, column).data(role)


def sample_jobs() -> list[Job]:
    svc = Service(resolve_home())
    try:
        return svc.import_summary(json.loads(MOONLIT.read_text("utf-8")))
    finally:
        svc.close()


def advice_for(cost_usd: float | None, *, choice: str | None = "runpod-a") -> dict[str, Any]:
    return {
        "choice": choice,
        "estimated_cost": None if cost_usd is None else f"${cost_usd:,.2f}",
        "estimated_cost_usd": cost_usd,
        "estimated_minutes": 12.0,
        "reason": "RunPod is the cheapest of 2 eligible remote providers.",
        "decided_by": "cheapest",
        "warnings": [
            {"code": "data_leaves_machine", "message": "Your content leaves this machine."}
        ],
        "requirements": {"vram_gb": 8.0, "gpu_hours": 0.5, "assumptions": ["An assumption."]},
        "alternatives": [],
    }


def synthetic(
    job_id: int, *, cost_usd: float | None = 1.0, title: str | None = None, by: str = "advisor"
) -> Job:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return Job(
        id=job_id,
        title=title or f"Job {job_id}",
        kind="translation",
        status="queued",
        workload=Workload(kind="translation", characters=1000 + job_id),
        meta={
            "compute": {
                "provider": "runpod-a" if cost_usd is not None else None,
                "advice": advice_for(cost_usd, choice="runpod-a" if cost_usd else None),
                "decided_at": at.isoformat(),
                "decided_by": by,
            }
        },
        created_at=at,
        updated_at=at,
    )


# --------------------------------------------------------------------------- the models


def test_the_jobs_model_passes_qts_model_tester(qtmodeltester: Any, qtbot: QtBot) -> None:
    empty = JobsModel()
    qtmodeltester.check(empty)
    assert empty.rowCount() == 0

    jobs = sample_jobs()
    model = JobsModel()
    model.set_jobs(jobs)
    qtmodeltester.check(model)
    assert model.rowCount() == 5 and model.columnCount() == 11
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(11)] == [
        "Job",
        "Kind",
        "Size",
        "Status",
        "Provider",
        "Est. cost",
        "Reason",
        "Warnings",
        "Progress",
        "Elapsed",
        "Spent",
    ]
    sizes = [model.index(r, Column.SIZE).data() for r in range(5)]
    assert sizes == ["5 × 2048×2048", "8 × 1024×1536", "420 lines · 52.5 min", "24 items",
                     "96,420 chars"]  # fmt: skip
    for r, job in enumerate(jobs):
        assert model.index(r, 0).data(JOB_ROLE) is job
        assert model.index(r, 0).data(ADVICE_ROLE) == job.meta["compute"]["advice"]
        assert model.index(r, Column.PROVIDER).data() == "none"  # no provider registered
        assert model.index(r, Column.COST).data() == "—"
        reason = model.index(r, Column.REASON)
        assert reason.data(Qt.ItemDataRole.ToolTipRole) == reason.data()
        assert reason.data().startswith("No provider can run")
    # Changes after the check are checked too (the tester stays attached).
    model.set_jobs(jobs[:3])
    model.set_jobs([])
    model.set_jobs(jobs)

    alternatives = AlternativesModel()
    qtmodeltester.check(alternatives)
    alternatives.set_alternatives(jobs[0].meta["compute"]["advice"]["alternatives"])
    qtmodeltester.check(alternatives)
    assert alternatives.rowCount() >= 1
    assert alternatives.index(0, 2).data() == "No"  # the missing local GPU

    events = EventsModel()
    events.set_events(
        [
            JobEvent(
                seq=1,
                job_id=1,
                at=datetime(2026, 1, 1, tzinfo=UTC),
                actor="user",
                action="picked",
                message="you picked runpod-b",
            )
        ]
    )
    qtmodeltester.check(events)
    assert events.job_event(0).action == "picked"
    assert events.index(0, 0).data().endswith("· user · picked\nyou picked runpod-b")


def test_every_warning_code_reads_in_words() -> None:
    assert set(WARNING_WORDS) == set(WARNING_CODES)
    assert all(words and words[0].isupper() for words in WARNING_WORDS.values())


def test_sizes_read_like_a_person_would_write_them() -> None:
    assert size_text(Workload(kind="cg_super_res", items=40, width=2048, height=2048)) == (
        "40 × 2048×2048"
    )
    assert size_text(Workload(kind="voice_synthesis", items=420, audio_seconds=3150)) == (
        "420 lines · 52.5 min"
    )
    assert size_text(Workload(kind="voice_synthesis", items=1, audio_seconds=42)) == (
        "1 line · 42 s"
    )
    assert size_text(Workload(kind="translation", characters=96420)) == "96,420 chars"
    assert size_text(Workload(kind="cg_bake", items=1)) == "1 item"


def test_set_jobs_updates_in_place_and_keeps_the_selection(
    qtbot: QtBot, page: JobsPage, qtmodeltester: Any
) -> None:
    model = page.model
    qtmodeltester.check(model)
    jobs = [synthetic(i) for i in range(1, 8)]
    model.set_jobs(jobs)
    qtbot.waitUntil(lambda: page.proxy.rowCount() == 7, timeout=2000)
    assert page.select_job(4, scroll=True)
    qtbot.waitUntil(lambda: page.review.job is not None and page.review.job.id == 4)
    resets: list[bool] = []
    changed: list[tuple[int, int]] = []
    model.modelReset.connect(lambda: resets.append(True))
    model.dataChanged.connect(lambda a, b, _r: changed.append((a.row(), b.row())))

    again = list(jobs)
    again[3] = synthetic(4, cost_usd=7.5)
    again[5] = synthetic(6, title="Renamed")
    assert model.set_jobs(again) is False
    assert resets == [] and changed == [(3, 3), (5, 5)]
    assert page.selected_job_id() == 4
    assert cell(page, 4, Column.COST) == "$7.50"
    # The Review panel follows the changed job (as a reload would show it).
    page._sync_review()
    assert page.review.decision.text() == "Runs on runpod-a — $7.50, ~12 min"

    model.set_jobs(again)  # nothing changed: no signal at all
    assert resets == [] and changed == [(3, 3), (5, 5)]
    model.set_jobs([*again, synthetic(8)])  # new ids: a reset
    assert resets == [True]


def test_rows_worked_out_in_a_read_thread_update_only_what_changed(
    qtbot: QtBot, page: JobsPage
) -> None:
    """The page works the rows out in its read, off the GUI thread; the model then only tells
    the view what changed. Rows prepared before another change reached the model are worked
    out again, never shown stale."""
    import concurrent.futures

    model = page.model
    jobs = [synthetic(i) for i in range(1, 6)]
    model.set_jobs(jobs)
    changed: list[tuple[int, int]] = []
    resets: list[bool] = []
    model.dataChanged.connect(lambda a, b, _r: changed.append((a.row(), b.row())))
    model.modelReset.connect(lambda: resets.append(True))
    again = list(jobs)
    again[2] = synthetic(3, cost_usd=4.25)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        prepared = pool.submit(model.prepare, again).result()
    assert model.set_jobs(prepared) is False
    assert changed == [(2, 2)] and resets == []
    assert cell(page, 3, Column.COST) == "$4.25"

    # Prepared against the rows above, but another change lands first: worked out again.
    later = list(again)
    later[4] = synthetic(5, title="Retitled")
    stale = model.prepare(later)
    newer = list(again)
    newer[0] = synthetic(1, cost_usd=9.0)
    model.set_jobs(newer)
    changed.clear()
    assert model.set_jobs(stale) is False
    assert cell(page, 5, Column.JOB) == "Retitled"
    assert cell(page, 1, Column.COST) != "$9.00"  # the stale read's job 1 is shown, as read
    assert sorted(changed) == [(0, 0), (4, 4)] and resets == []


def test_only_a_change_of_the_queue_reads_the_queue_again(
    qtbot: QtBot, page: JobsPage, bridge: ServiceBridge
) -> None:
    """A Validate all or a health round changes the check results; the jobs change only when
    that re-advises them (and then the queue's change reloads the view). Reading 10,000 jobs
    again for a result that changed no job froze the window for up to a second."""
    with qtbot.assertNotEmitted(page.reloaded, wait=300):
        bridge.results_changed.emit()
        bridge.providers_changed.emit()
    with qtbot.waitSignal(page.reloaded, timeout=WAIT_MS):
        bridge.jobs_changed.emit()


def test_another_processs_writes_between_full_reads_are_shown_as_the_store_has_them(
    qtbot: QtBot, page: JobsPage
) -> None:
    """Between full reads (every ``FULL_READ_EVERY_S``) the page reads only the jobs written
    since its last read, and the queue's ids only when a job was added or removed: a job
    another process cancelled, then one removed and one added (the same number of jobs, so
    only the ids tell), are shown as the store has them."""
    ids = import_moonlit(qtbot, page)
    qtbot.waitUntil(lambda: page.model.rowCount() == len(ids), timeout=WAIT_MS)
    calls: list[str] = []
    for name in ("prepare", "prepare_changes"):
        method = getattr(page.model, name)

        def counted(*args: Any, _m: Any = method, _n: str = name, **kwargs: Any) -> Any:
            calls.append(_n)
            return _m(*args, **kwargs)

        setattr(page.model, name, counted)
    other = Service(resolve_home())  # another process: the CLI, a driver
    try:
        other.cancel_job(ids[1], interface="test")
        page.refresh()
        qtbot.waitUntil(lambda: cell(page, ids[1], Column.STATUS) == "Cancelled", timeout=WAIT_MS)
        assert "prepare" not in calls and "prepare_changes" in calls  # 1 job read, not 5

        other.remove_job(ids[2])
        added = other.add_job({"kind": "cg_bake"})
        store_ids = other.job_ids()
        assert len(store_ids) == len(ids) and added.id in store_ids
        page.refresh()
        qtbot.waitUntil(lambda: [j.id for j in page.model.jobs()] == store_ids, timeout=WAIT_MS)
        assert page.model.row_of(ids[2]) == -1
        assert cell(page, ids[1], Column.STATUS) == "Cancelled"
    finally:
        other.close()


def test_the_review_shows_a_jobs_new_version_even_within_the_same_millisecond(
    qtbot: QtBot, page: JobsPage
) -> None:
    """The list holds jobs brief and the Review panel the selected one whole; a new version of
    the job (here: a new decision with the same ``updated_at``) is shown, never mistaken for
    the version already on screen because only the alternatives tell them apart."""

    def brief(job: Job) -> Job:
        compute = job.meta["compute"]
        advice = {k: v for k, v in compute["advice"].items() if k != "alternatives"}
        return job.model_copy(update={"meta": {"compute": {**compute, "advice": advice}}})

    whole = synthetic(1, cost_usd=2.0)
    assert "alternatives" in whole.meta["compute"]["advice"]
    page.model.set_jobs([brief(whole)])
    assert page.select_job(1)
    page.review.show_job(whole)  # as the whole job's read shows it
    page._sync_review()
    assert page.review.job is whole  # the same version: kept, alternatives and all
    newer = brief(synthetic(1, cost_usd=9.5))  # same updated_at, another estimate
    page.model.set_jobs([newer])
    page._sync_review()
    assert page.review.decision.text().startswith("Runs on runpod-a — $9.50")


def test_sorting_by_cost_is_numeric_and_the_filter_matches_any_column(
    qtbot: QtBot, page: JobsPage, qtmodeltester: Any
) -> None:
    qtmodeltester.check(page.model)  # both stay attached: the sorts below are checked too
    qtmodeltester.check(page.proxy)
    costs = {1: 9.0, 2: 100.0, 3: None, 4: 10.0, 5: 0.5}
    jobs = [synthetic(i, cost_usd=c, title=f"Scene {i}") for i, c in costs.items()]
    page.model.set_jobs(jobs)

    def order() -> list[int]:
        return [page.proxy.index(r, 0).data(JOB_ROLE).id for r in range(page.proxy.rowCount())]

    page.table.sortByColumn(Column.COST, Qt.SortOrder.AscendingOrder)
    assert order() == [5, 1, 4, 2, 3]  # $0.50 < $9 < $10 < $100, then no estimate
    assert page.proxy.index(0, Column.COST).data(SORT_ROLE) == 0.5
    page.table.sortByColumn(Column.COST, Qt.SortOrder.DescendingOrder)
    assert order() == [3, 2, 4, 1, 5]

    # A sorted table keeps the selection when it is sorted again or a job's cost moves it.
    page.table.sortByColumn(Column.COST, Qt.SortOrder.AscendingOrder)
    assert page.select_job(4)
    resets: list[bool] = []
    page.model.modelReset.connect(lambda: resets.append(True))
    jobs[3] = synthetic(4, cost_usd=1000.0, title="Scene 4")
    assert page.model.set_jobs(jobs) is False
    assert order() == [5, 1, 2, 4, 3] and resets == []
    assert page.selected_job_id() == 4
    page.table.sortByColumn(Column.JOB, Qt.SortOrder.DescendingOrder)
    assert order() == [5, 4, 3, 2, 1] and page.selected_job_id() == 4
    page.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # back to the queue's order
    assert order() == [1, 2, 3, 4, 5] and page.selected_job_id() == 4

    qtbot.keyClicks(page.filter_edit, "scene 4")
    assert order() == [4]
    assert page.count.text() == "1 of 5 jobs"
    page.filter_edit.setText("none")  # the Provider column of the job nobody can run
    assert order() == [3]
    page.filter_edit.clear()
    assert page.proxy.rowCount() == 5 and page.count.text() == "5 jobs"


def test_a_filter_follows_rows_that_change_while_it_is_on(qtbot: QtBot, page: JobsPage) -> None:
    """The filter matches all rows at once and keeps the result until the rows change; a
    job renamed into or out of the filter, or added, shows or hides at once."""

    def shown() -> list[int]:
        return sorted(
            page.proxy.index(r, 0).data(JOB_ROLE).id for r in range(page.proxy.rowCount())
        )

    jobs = [synthetic(i, title=f"Voice line {i}" if i % 2 else f"Scene {i}") for i in range(1, 7)]
    page.model.set_jobs(jobs)
    page.filter_edit.setText("voice")
    assert shown() == [1, 3, 5]
    jobs[1] = synthetic(2, title="Voice over 2")  # now matches
    jobs[2] = synthetic(3, title="Scene 3")  # no longer matches
    page.model.set_jobs(list(jobs))
    assert shown() == [1, 2, 5]
    page.model.set_jobs([*jobs, synthetic(7, title="voice 7")])  # a reset: matched again
    assert shown() == [1, 2, 5, 7]
    page.filter_edit.setText("voice 7")
    assert shown() == [7]
    page.filter_edit.clear()
    assert shown() == list(range(1, 8))


def test_ten_thousand_jobs_load_into_the_model(qtbot: QtBot) -> None:
    jobs = [synthetic(i, cost_usd=(i % 97) / 10 or None) for i in range(1, 10_001)]
    model = JobsModel()
    assert model.set_jobs(jobs) is True
    assert model.rowCount() == 10_000
    assert model.index(9_999, 0).data(JOB_ROLE) is jobs[-1]
    assert model.row_of(5_000) == 4_999
    changed: list[int] = []
    model.dataChanged.connect(lambda a, _b, _r: changed.append(a.row()))
    assert model.set_jobs(list(jobs)) is False  # same jobs: nothing to tell the view
    assert changed == []


# --------------------------------------------------------------------------- importing


def test_importing_a_summary_fills_the_view_with_advised_jobs(
    qtbot: QtBot, page: JobsPage, bridge: ServiceBridge, runpod: RunPodFake
) -> None:
    assert page.list_stack.currentWidget() is page.empty
    assert page.empty.text() == EMPTY_TEXT
    two_runpods(qtbot, bridge, runpod)

    ids = import_moonlit(qtbot, page)
    assert len(ids) == 5
    assert page.banner.kind == "ok"
    assert page.banner.label.text().startswith("Imported 5 jobs from moonlit-academy.json")
    assert page.list_stack.currentWidget() is page.table
    assert page.model.rowCount() == page.proxy.rowCount() == 5
    assert page.count.text() == "5 jobs"
    for jid in ids:
        advice = cell(page, jid, Column.JOB, ADVICE_ROLE)
        assert advice["choice"] == "runpod-a"
        assert cell(page, jid, Column.PROVIDER) == "runpod-a"
        assert cell(page, jid, Column.COST) == advice["estimated_cost"]
        assert cell(page, jid, Column.COST).startswith("$")
        warnings = cell(page, jid, Column.WARNINGS)
        assert warnings.startswith("⚠ ") and int(warnings.split()[1]) > 0
        tip = cell(page, jid, Column.WARNINGS, Qt.ItemDataRole.ToolTipRole)
        assert "Data leaves this machine" in tip and "Residency" in tip
        assert cell(page, jid, Column.REASON, Qt.ItemDataRole.ToolTipRole) == advice["reason"]

    # The first imported job is selected and reviewed.
    assert page.selected_job_id() == ids[0]
    review = page.review
    assert review.title.text().startswith("Moonlit Academy — CG super-res")
    assert review.decision.text().startswith("Runs on RunPod (runpod-a) — $")
    assert "Decided by the advisor (the cheapest eligible provider)" in review.decided.text()
    assert {"data_leaves_machine", "residency", "non_open_source_assets"} <= set(
        review.warnings.codes()
    )
    lines = dict(review.warnings.items())
    assert lines["residency"].startswith("⚠ Residency: where it may run (runpod-a): RunPod")
    labels = review.warnings.labels()
    assert labels and all(label.isVisible() for label in labels)
    assert [label.text() for label in labels][: len(lines)] == [
        t for _, t in review.warnings.items()
    ]
    assert "12 GB of VRAM" in review.requirements.text()
    assert not review.assumptions.isVisible()
    review.assumptions_toggle.click()
    assert review.assumptions.isVisible() and "A10G" in review.assumptions.text()
    # The list holds jobs without their alternatives; the panel reads the selected one whole.
    alternatives = review.alternatives_model
    qtbot.waitUntil(lambda: alternatives.rowCount() == 2, timeout=WAIT_MS)
    assert "alternatives" in review.job.meta["compute"]["advice"]
    assert "alternatives" not in page.model.job(ids[0]).meta["compute"]["advice"]
    rows = {alternatives.alternative(r)["provider"]: r for r in range(alternatives.rowCount())}
    assert set(rows) == {"runpod-b", "local"}
    assert alternatives.index(rows["runpod-b"], 1).data().startswith("$")
    assert alternatives.index(rows["runpod-b"], 2).data() == "Yes"
    assert "more than runpod-a" in alternatives.index(rows["runpod-b"], 3).data()
    assert alternatives.index(rows["local"], 2).data() == "No"
    assert "no local GPU" in alternatives.index(rows["local"], 3).data()
    qtbot.waitUntil(lambda: review.events_model.rowCount() == 2, timeout=WAIT_MS)
    actions = [review.events_model.job_event(r).action for r in range(2)]
    assert actions == ["created", "decided"]

    # Another job: its own warnings, every one shown.
    assert page.select_job(ids[2])
    assert "dpia" in review.warnings.codes()
    shown = [label for label in review.warnings.labels() if label.isVisibleTo(review)]
    assert (
        len(shown)
        == len(review.warnings.codes())
        == int(cell(page, ids[2], Column.WARNINGS).split()[1])
    )
    assert review.warnings_heading.text() == f"Warnings ({len(shown)})"

    # The voice job carries the DPIA note; the filter finds it by its warning code.
    page.filter_edit.setText("dpia")
    assert page.proxy.rowCount() == 1
    assert "Voice synthesis" in page.proxy.index(0, Column.KIND).data()


def test_a_bad_summary_shows_the_error_and_adds_nothing(
    qtbot: QtBot, page: JobsPage, bridge: ServiceBridge, tmp_path: Path
) -> None:
    data = json.loads(MOONLIT.read_text("utf-8"))
    data["translations"][-1]["target_languages"] = []
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), "utf-8")
    assert import_moonlit(qtbot, page, bad) == []
    assert page.banner.kind == "error"
    assert page.banner.label.text().startswith("Nothing was imported: ")
    assert "translations" in page.banner.label.text()
    assert bridge.service.list_jobs() == []
    assert page.model.rowCount() == 0 and page.list_stack.currentWidget() is page.empty

    broken = tmp_path / "broken.json"
    broken.write_text("{", "utf-8")
    assert import_moonlit(qtbot, page, broken) == []
    assert "broken.json is not valid JSON" in page.banner.label.text()
    assert import_moonlit(qtbot, page, tmp_path / "missing.json") == []
    assert "cannot be read" in page.banner.label.text()
    assert bridge.service.list_jobs() == []
    assert page.import_button.isEnabled()


def _mime(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def test_dropping_a_summary_on_the_page_imports_it(
    qtbot: QtBot, page: JobsPage, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello", "utf-8")
    plain = _mime(text)  # (an event does not own its data: keep it alive)
    refused = QDragEnterEvent(
        QPoint(20, 20),
        Qt.DropAction.CopyAction,
        plain,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    page.dragEnterEvent(refused)
    assert not refused.isAccepted()

    mime = _mime(text, MOONLIT)
    enter = QDragEnterEvent(
        QPoint(20, 20),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    page.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(20, 20),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(page.import_finished, timeout=WAIT_MS) as finished:
        page.dropEvent(drop)
    assert drop.isAccepted()
    assert len(finished.args[0]) == 5
    assert page.model.rowCount() == 5
    assert page.banner.label.text().startswith("Imported 5 jobs from moonlit-academy.json")


def test_the_import_button_and_ctrl_i_open_a_non_blocking_dialog(
    qtbot: QtBot, page: JobsPage
) -> None:
    page.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is page, timeout=2000)
    page.table.setFocus()
    qtbot.keyClick(page.table, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    dialog = page.findChild(QFileDialog, "import-summary-dialog")
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=2000)
    assert QApplication.activeModalWidget() in (None, dialog)  # open(), not exec()
    page.import_button.click()  # a second request shows the same dialog
    assert page.findChildren(QFileDialog) == [dialog]
    dialog.selectFile(str(MOONLIT))
    with qtbot.waitSignal(page.import_finished, timeout=WAIT_MS) as finished:
        dialog.accept()
    assert len(finished.args[0]) == 5
    qtbot.waitUntil(lambda: page.findChild(QFileDialog) is None, timeout=2000)

    page.ask_import()
    qtbot.waitUntil(lambda: page.findChild(QFileDialog) is not None, timeout=2000)
    page.close_dialogs()  # what the window does when it closes
    qtbot.waitUntil(lambda: page.findChild(QFileDialog) is None, timeout=2000)


def test_keyboard_filter_and_review(qtbot: QtBot, page: JobsPage) -> None:
    import_moonlit(qtbot, page)
    page.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is page, timeout=2000)
    page.table.setFocus()
    qtbot.keyClick(page.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert page.filter_edit.hasFocus()
    qtbot.keyClicks(page.filter_edit, "translation")
    assert page.proxy.rowCount() == 1
    qtbot.keyClick(page.filter_edit, Qt.Key.Key_Return)  # to the table, first row selected
    assert page.table.hasFocus()
    assert page.selected_job() is not None and page.selected_job().kind == "translation"
    qtbot.keyClick(page.table, Qt.Key.Key_Return)
    assert page.review.hasFocus()
    assert page.review.accessibleDescription().startswith("Moonlit Academy — Script")


def test_every_visible_widget_is_named_for_screen_readers(qtbot: QtBot, page: JobsPage) -> None:
    import_moonlit(qtbot, page)
    qtbot.waitUntil(lambda: page.review.events_model.rowCount() == 2, timeout=WAIT_MS)
    page.review.assumptions_toggle.click()
    checked = 0
    for widget in [page, *page.findChildren(QWidget)]:
        if not widget.isVisible() or widget.objectName().startswith("qt_"):
            continue
        has_text = isinstance(widget, QLabel | QAbstractButton) and bool(widget.text())
        assert widget.accessibleName() or has_text, (
            f"{type(widget).__name__} {widget.objectName()!r} has no accessible name"
        )
        checked += 1
    assert checked >= 25
    for name in ("jobs-table", "review", "jobs-filter", "import-summary", "review-alternatives"):
        assert page.findChild(QWidget, name) is not None, name


# --------------------------------------------------------------------------- live changes


def test_a_provider_turning_unhealthy_changes_the_view_without_a_restart(
    qtbot: QtBot, page: JobsPage, bridge: ServiceBridge, runpod: RunPodFake
) -> None:
    two_runpods(qtbot, bridge, runpod)
    ids = import_moonlit(qtbot, page)
    assert all(cell(page, jid, Column.PROVIDER) == "runpod-a" for jid in ids)
    page.select_job(ids[2])
    bridge.watch()  # what the window does: other writers' changes arrive as signals

    runpod.add_endpoint("ep-a", CRASHED)
    [health] = run(qtbot, bridge, bridge.service.check("health", ["runpod-a"], timeout_s=10))
    assert health.status == "unhealthy"
    # The service re-advised the queue; the page hears of it and reloads by itself.
    qtbot.waitUntil(
        lambda: all(cell(page, jid, Column.PROVIDER) == "runpod-b" for jid in ids),
        timeout=WAIT_MS,
    )
    for jid in ids:
        codes = [w["code"] for w in cell(page, jid, Column.JOB, ADVICE_ROLE)["warnings"]]
        assert "provider_unhealthy_skipped" in codes
        tip = cell(page, jid, Column.WARNINGS, Qt.ItemDataRole.ToolTipRole)
        assert "Skipped: a provider is unhealthy" in tip
    # The selection stayed, and the Review panel shows the new decision and its trail.
    assert page.selected_job_id() == ids[2]
    review = page.review
    assert review.decision.text().startswith("Runs on RunPod (runpod-b)")
    assert "provider_unhealthy_skipped" in review.warnings.codes()
    qtbot.waitUntil(
        lambda: any(
            review.events_model.job_event(r).action == "re-advised"
            for r in range(review.events_model.rowCount())
        ),
        timeout=WAIT_MS,
    )


def test_choosing_another_provider_is_recorded_and_can_be_undone(
    qtbot: QtBot, page: JobsPage, bridge: ServiceBridge, runpod: RunPodFake
) -> None:
    two_runpods(qtbot, bridge, runpod)
    ids = import_moonlit(qtbot, page)
    jid = ids[0]
    assert page.selected_job_id() == jid
    review = page.review
    assert not review.use_button.isEnabled()  # nothing selected yet
    assert not review.back_button.isVisibleTo(page)
    qtbot.waitUntil(lambda: review.alternatives_model.rowCount() == 2, timeout=WAIT_MS)
    assert review.select_alternative("local")
    assert not review.use_button.isEnabled()  # not eligible
    assert review.select_alternative("runpod-b")
    assert review.use_button.isEnabled()

    with qtbot.waitSignal(page.picked, timeout=WAIT_MS):
        review.use_button.click()
    events = bridge.service.job_events(jid)
    [picked] = [e for e in events if e.action == "picked"]
    assert picked.actor == "user" and picked.provider == "runpod-b"
    assert cell(page, jid, Column.PROVIDER) == "runpod-b (your pick)"
    assert review.banner.kind == "ok" and "runpod-b" in review.banner.label.text()
    assert review.decided.text().startswith("Your pick, on ")
    assert review.back_button.isVisibleTo(page) and review.back_button.isEnabled()
    qtbot.waitUntil(
        lambda: (
            review.events_model.rowCount() == 3
            and review.events_model.job_event(2).actor == "user"
            and review.events_model.job_event(2).action == "picked"
        ),
        timeout=WAIT_MS,
    )

    # A provider that cannot run the job is refused, with the service's reason.
    task = page.pick("local")
    assert task is not None
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    assert review.banner.kind == "error"
    assert review.banner.label.text().startswith("Nothing was changed: local cannot run job")
    assert cell(page, jid, Column.PROVIDER) == "runpod-b (your pick)"

    with qtbot.waitSignal(page.picked, timeout=WAIT_MS):
        review.back_button.click()
    assert cell(page, jid, Column.PROVIDER) == "runpod-a"
    assert not review.back_button.isVisibleTo(page)
    assert review.banner.label.text().startswith("Back to the advisor's choice: runpod-a")
    last = bridge.service.job_events(jid)[-1]
    assert (last.actor, last.action, last.provider) == ("user", "picked", "runpod-a")
    assert bridge.service.get_job(jid).compute.decided_by == "advisor"


def test_a_reload_keeps_the_selection_by_job_id(
    qtbot: QtBot, page: JobsPage, bridge: ServiceBridge
) -> None:
    ids = import_moonlit(qtbot, page)
    page.table.sortByColumn(Column.JOB, Qt.SortOrder.DescendingOrder)
    assert page.select_job(ids[3])
    row_before = page.proxy_row_of(ids[3])
    job = run(qtbot, bridge, bridge.call(bridge.service.add_job, {"kind": "cg_bake"}))
    with qtbot.waitSignal(page.reloaded, timeout=WAIT_MS):
        page.refresh()
        page.refresh()  # coalesced with the first
    assert page.model.rowCount() == 6 and page.model.row_of(job.id) == 5
    assert page.selected_job_id() == ids[3]
    assert page.proxy_row_of(ids[3]) in (row_before, row_before + 1)
