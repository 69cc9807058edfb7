"""Settings → Advisor, headless: the page loads the settings, Apply writes them (read back by
a fresh service), Revert restores them, a budget change re-advises a queued job (a real
validation against the RunPod contract fake), the spin boxes refuse what the specs refuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget
from pytestqt.qtbot import QtBot

from comfyvn_gui.core.catalog import RESIDENCY_ZONES
from comfyvn_gui.core.settings import SETTINGS
from comfyvn_gui.gui.advisor.page import (
    BOOT_TIMEOUT_KEY,
    BUDGET_KEY,
    COST_FACTOR_KEY,
    DISPATCH_FIELDS,
    INTERVAL_KEY,
    INTERVAL_RANGE,
    LATENCY_KEY,
    RESIDENCY_KEY,
    RUNTIME_FACTOR_KEY,
    ZONE_NAMES,
    AdvisorPage,
)
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.runpod import RunPodFake, health_body

from .test_window import no_leaks, qloop  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("secret_service")

WAIT_MS = 15000


def fresh(key: str) -> Any:
    """``key`` as a new service of the same home reads it (what another process sees)."""
    svc = Service(resolve_home())
    try:
        return svc.get_setting(key)
    finally:
        svc.close()


def open_page(qtbot: QtBot) -> AdvisorPage:
    bridge = ServiceBridge(Service(resolve_home()))
    page = AdvisorPage(bridge)
    qtbot.addWidget(page)
    page.resize(800, 700)
    page.show()
    qtbot.waitExposed(page)
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.start()
    assert page.is_loaded
    return page


def close_page(qtbot: QtBot, page: AdvisorPage) -> None:
    page.bridge.close()  # cancels running work, stops the workers
    qtbot.waitUntil(lambda: not page.bridge._tasks, timeout=WAIT_MS)
    page.close()


@pytest.fixture
def page(qtbot: QtBot, app_home: Path) -> Iterator[AdvisorPage]:
    p = open_page(qtbot)
    yield p
    close_page(qtbot, p)


def apply(qtbot: QtBot, page: AdvisorPage) -> dict[str, Any]:
    assert page.apply_button.isEnabled()
    with qtbot.waitSignal(page.applied, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(page.apply_button, Qt.MouseButton.LeftButton)
    outcome: dict[str, Any] = blocker.args[0]
    assert not page.apply_button.isEnabled()  # nothing left to save
    return outcome


def click(qtbot: QtBot, page: AdvisorPage, widget: QWidget) -> None:
    """A real mouse click on ``widget``'s indicator (scrolled into view first; a check box
    stretched by its layout only answers clicks on its indicator and text)."""
    page.scroll_area.ensureWidgetVisible(widget)
    pos = QPoint(min(8, widget.width() // 2), widget.height() // 2)
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=pos)


def banner(page: AdvisorPage) -> str:
    return page.banner.label.text() if page.banner.isVisible() else ""


def checked_zones(page: AdvisorPage) -> list[str]:
    return [z for z in ZONE_NAMES if page.zone_item(z).checkState() == Qt.CheckState.Checked]


# --------------------------------------------------------------------------- loading


def test_the_page_shows_the_current_settings(qtbot: QtBot, app_home: Path) -> None:
    svc = Service(resolve_home())
    svc.set_setting(BUDGET_KEY, 2.5)
    svc.set_setting(LATENCY_KEY, "interactive")
    svc.set_setting(RESIDENCY_KEY, ["us", "eu"])
    svc.set_setting(INTERVAL_KEY, 600)
    svc.close()
    page = open_page(qtbot)
    assert page.objectName() == "page-advisor"
    assert page.budget_limit.isChecked() and page.budget.isEnabled()
    assert page.budget.value() == 2.5
    assert page.latency_interactive.isChecked() and not page.latency_batch.isChecked()
    assert not page.any_zone.isChecked() and page.zones.isEnabled()
    assert checked_zones(page) == ["eu", "us"]
    assert page.interval.value() == 600
    assert page.interval.text() == "600 s"
    assert page.preview.text() == "Queued jobs: 0; re-advised when you change these."
    assert not page.apply_button.isEnabled() and not page.revert_button.isEnabled()
    assert not page.is_dirty()
    close_page(qtbot, page)


def test_the_defaults(page: AdvisorPage) -> None:
    assert not page.budget_limit.isChecked() and not page.budget.isEnabled()
    assert page.latency_batch.isChecked()
    assert page.any_zone.isChecked() and not page.zones.isEnabled()
    assert checked_zones(page) == []
    assert page.interval.value() == SETTINGS[INTERVAL_KEY].default
    assert page.values() == {k: SETTINGS[k].default for k in page.values()}
    assert banner(page) == ""


def test_zones_are_the_catalog_zones_but_local_and_on_prem(page: AdvisorPage) -> None:
    assert set(ZONE_NAMES) == RESIDENCY_ZONES - {"local", "on_prem"}
    texts = [page.zones.item(i).text() for i in range(page.zones.count())]
    assert texts[0] == "European Union (eu)" and "Africa (af)" in texts
    assert "always count as allowed" in page.residency_note.text()
    assert "Local and on-prem" in page.residency_note.text()


def test_every_control_is_named_and_explained(page: AdvisorPage) -> None:
    for widget in [page, *page.findChildren(QWidget)]:
        if not widget.isVisible() or widget.objectName().startswith("qt_"):
            continue
        has_text = isinstance(widget, QLabel | QAbstractButton) and bool(widget.text())
        assert widget.accessibleName() or has_text, (
            f"{type(widget).__name__} {widget.objectName()!r} has no accessible name"
        )
    for control in (
        page.budget_limit,
        page.budget,
        page.latency_batch,
        page.latency_interactive,
        page.zones,
        page.interval,
        page.apply_button,
        page.revert_button,
    ):
        assert control.accessibleName()
        assert control.toolTip()
    assert page.budget.toolTip() == SETTINGS[BUDGET_KEY].help
    assert page.latency_batch.toolTip() == SETTINGS[LATENCY_KEY].help
    assert page.zones.toolTip() == SETTINGS[RESIDENCY_KEY].help
    assert page.interval.toolTip() == SETTINGS[INTERVAL_KEY].help


# --------------------------------------------------------------------------- apply / revert


def test_apply_writes_the_budget_latency_and_residency(qtbot: QtBot, page: AdvisorPage) -> None:
    page.budget_limit.setChecked(True)
    page.budget.setValue(7.5)
    assert page.changes() == {BUDGET_KEY: 7.5}
    assert page.revert_button.isEnabled()
    outcome = apply(qtbot, page)
    assert outcome == {"saved": {BUDGET_KEY: 7.5}, "changed": 0, "error": None}
    assert fresh(BUDGET_KEY) == 7.5
    assert banner(page) == "Saved. No job is queued, so none was re-advised."
    assert page.banner.kind == "ok"

    click(qtbot, page, page.latency_interactive)
    page.any_zone.setChecked(False)
    page.zone_item("uk").setCheckState(Qt.CheckState.Checked)
    page.zone_item("eu").setCheckState(Qt.CheckState.Checked)
    page.interval.setValue(900)
    assert page.changes() == {
        INTERVAL_KEY: 900,
        LATENCY_KEY: "interactive",
        RESIDENCY_KEY: ["eu", "uk"],
    }
    apply(qtbot, page)
    assert fresh(LATENCY_KEY) == "interactive"
    assert fresh(RESIDENCY_KEY) == ["eu", "uk"]
    assert fresh(INTERVAL_KEY) == 900
    assert fresh(BUDGET_KEY) == 7.5

    page.budget_limit.setChecked(False)  # no limit: null
    apply(qtbot, page)
    assert fresh(BUDGET_KEY) is None


def test_any_zone_writes_an_empty_list(qtbot: QtBot, app_home: Path) -> None:
    svc = Service(resolve_home())
    svc.set_setting(RESIDENCY_KEY, ["eu"])
    svc.close()
    page = open_page(qtbot)
    assert checked_zones(page) == ["eu"]
    click(qtbot, page, page.any_zone)
    assert page.any_zone.isChecked()
    assert checked_zones(page) == [] and not page.zones.isEnabled()
    assert page.changes() == {RESIDENCY_KEY: []}
    apply(qtbot, page)
    assert fresh(RESIDENCY_KEY) == []
    close_page(qtbot, page)


def test_no_zone_ticked_means_local_and_on_prem_only(qtbot: QtBot, page: AdvisorPage) -> None:
    page.any_zone.setChecked(False)
    assert checked_zones(page) == []
    assert "only local and on-prem" in page.residency_note.text()
    # [] would mean "any zone": the page says "local only" with a zone that always satisfies.
    assert page.changes() == {RESIDENCY_KEY: ["local"]}
    apply(qtbot, page)
    assert fresh(RESIDENCY_KEY) == ["local"]
    page.zone_item("ca").setCheckState(Qt.CheckState.Checked)
    assert page.values()[RESIDENCY_KEY] == ["ca"]
    assert "always count as allowed" in page.residency_note.text()


def test_revert_restores_the_loaded_values(qtbot: QtBot, page: AdvisorPage) -> None:
    loaded = page.values()
    page.budget_limit.setChecked(True)
    page.budget.setValue(12.0)
    page.latency_interactive.setChecked(True)
    page.any_zone.setChecked(False)
    page.zone_item("asia").setCheckState(Qt.CheckState.Checked)
    page.interval.setValue(60)
    assert page.is_dirty() and page.apply_button.isEnabled()
    qtbot.mouseClick(page.revert_button, Qt.MouseButton.LeftButton)
    assert page.values() == loaded
    assert page.any_zone.isChecked() and checked_zones(page) == []
    assert not page.budget.isEnabled()
    assert not page.apply_button.isEnabled() and not page.revert_button.isEnabled()
    assert fresh(BUDGET_KEY) is None  # nothing was written


def test_changing_back_by_hand_is_not_a_change(page: AdvisorPage) -> None:
    page.interval.setValue(301)
    assert page.apply_button.isEnabled()
    page.interval.setValue(300)
    assert not page.apply_button.isEnabled()


def test_reload_shows_other_processes_changes_and_keeps_edits(
    qtbot: QtBot, page: AdvisorPage
) -> None:
    page.interval.setValue(120)  # an unsaved edit
    other = Service(resolve_home())
    other.set_setting(LATENCY_KEY, "interactive")
    other.set_setting(INTERVAL_KEY, 3600)
    other.close()
    page.refresh()
    qtbot.waitUntil(page.latency_interactive.isChecked, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: page.reads.task is not None and not page.reads.busy)
    assert page.interval.value() == 120  # the edit is kept
    assert page.loaded_values[INTERVAL_KEY] == 3600
    assert page.changes() == {INTERVAL_KEY: 120}
    qtbot.mouseClick(page.revert_button, Qt.MouseButton.LeftButton)
    assert page.interval.value() == 3600


def test_an_unreadable_settings_file_is_said_not_overwritten(qtbot: QtBot, app_home: Path) -> None:
    settings = resolve_home().settings_file
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text("{ not json", encoding="utf-8")
    page = open_page(qtbot)
    assert page.banner.kind == "error"
    assert "not valid JSON" in banner(page) and "settings.json" in banner(page)
    assert not page.form_widget.isEnabled()
    assert not page.apply_button.isEnabled()
    settings.unlink()  # fixed: a reload brings the form back
    page.refresh()
    qtbot.waitUntil(page.form_widget.isEnabled, timeout=WAIT_MS)
    assert banner(page) == ""
    close_page(qtbot, page)


def test_a_failed_save_says_why_and_stays_to_apply(qtbot: QtBot, page: AdvisorPage) -> None:
    page.interval.setValue(45)
    settings = page.svc.home.settings_file
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text("[]", encoding="utf-8")  # broken meanwhile
    outcome = apply_failing(qtbot, page)
    assert outcome["saved"] == {} and "not a settings document" in outcome["error"]
    assert banner(page).startswith("Not saved: ")
    assert page.banner.kind == "error"
    assert page.apply_button.isEnabled()  # the edit is still there to apply
    assert page.changes() == {INTERVAL_KEY: 45}


def apply_failing(qtbot: QtBot, page: AdvisorPage) -> dict[str, Any]:
    with qtbot.waitSignal(page.applied, timeout=WAIT_MS) as blocker:
        page.apply_button.click()
    return dict(blocker.args[0])


# --------------------------------------------------------------------------- ranges


def test_values_out_of_range_cannot_be_entered(qtbot: QtBot, page: AdvisorPage) -> None:
    assert (page.budget.minimum(), page.budget.maximum()) == (0.0, 100000.0)
    assert page.budget.singleStep() == 0.5 and page.budget.prefix() == "$"
    assert page.budget.decimals() == 2
    assert page.interval.suffix() == " s"
    page.budget_limit.setChecked(True)
    page.budget.setValue(-3)
    assert page.budget.value() == 0.0
    page.budget.setValue(1e9)
    assert page.budget.value() == 100000.0

    page.interval.setFocus()
    page.interval.selectAll()
    qtbot.keyClicks(page.interval, "5")
    page.interval.interpretText()
    assert page.interval.value() >= INTERVAL_RANGE[0]
    page.interval.selectAll()
    qtbot.keyClicks(page.interval, "9999999")
    page.interval.interpretText()
    assert page.interval.value() <= INTERVAL_RANGE[1]
    page.interval.setValue(0)
    assert page.interval.value() == 15
    page.interval.setValue(10**6)
    assert page.interval.value() == 86400
    page.budget.selectAll()
    qtbot.keyClicks(page.budget, "-")
    assert page.budget.value() >= 0.0


def test_the_interval_bounds_match_the_spec(page: AdvisorPage) -> None:
    spec = SETTINGS[INTERVAL_KEY]
    low, high = INTERVAL_RANGE
    assert (page.interval.minimum(), page.interval.maximum()) == (low, high)
    assert spec.parse(low) == low and spec.parse(high) == high
    for bad in (low - 1, high + 1):
        with pytest.raises(ValueError):
            spec.parse(bad)
    assert f"{low} and {high}" in spec.accepts
    assert SETTINGS[BUDGET_KEY].parse(page.budget.minimum()) == 0.0
    with pytest.raises(ValueError):
        SETTINGS[BUDGET_KEY].parse(-0.01)


# --------------------------------------------------------------------------- re-advice


@pytest.fixture
def runpod() -> Iterator[RunPodFake]:
    with RunPodFake(endpoints={"ep-a": health_body(idle=2, running=1)}) as fake:
        yield fake


def test_a_budget_change_re_advises_a_queued_job(
    qtbot: QtBot, page: AdvisorPage, runpod: RunPodFake
) -> None:
    svc = page.svc
    svc.create_provider("runpod", runpod.provider("runpod-a", endpoint="ep-a"))
    task = page.bridge.spawn(svc.check("validate", ["runpod-a"], timeout_s=10))
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    assert [r.status for r in task.result()] == ["valid"]
    job = svc.add_job({"kind": "cg_remix", "vram_gb": 10, "gpu_hours": 1})
    assert job.compute is not None and job.compute.provider == "runpod-a"
    assert job.compute.advice["estimated_cost_usd"] > 0.30
    page.refresh_count()
    qtbot.waitUntil(lambda: page.queued == 1, timeout=WAIT_MS)
    assert page.preview.text() == "Queued jobs: 1; re-advised when you change these."

    page.budget_limit.setChecked(True)
    page.budget.setValue(0.30)
    outcome = apply(qtbot, page)
    assert outcome == {"saved": {BUDGET_KEY: 0.3}, "changed": 1, "error": None}
    assert banner(page) == "Saved. 1 job decision changed."

    other = Service(resolve_home())  # what the queue holds now, read afresh
    try:
        after = other.get_job(job.id)
        assert after.compute is not None and after.compute.provider is None
        last = other.job_events(job.id)[-1]
    finally:
        other.close()
    assert last.action == "re-advised" and last.previous == "runpod-a"
    assert "over budget" in last.message
    assert "advisor.budget_usd was set to 0.3" in last.message

    page.budget_limit.setChecked(False)  # no budget: back to RunPod
    outcome = apply(qtbot, page)
    assert outcome["changed"] == 1
    assert svc.get_job(job.id).compute.provider == "runpod-a"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- odds and ends


def test_loading_writes_nothing_to_the_home(qtbot: QtBot, app_home: Path) -> None:
    page = open_page(qtbot)
    close_page(qtbot, page)
    written = [p.name for p in app_home.rglob("*") if p.is_file()] if app_home.exists() else []
    assert [n for n in written if not n.endswith(".lock")] == []


def test_a_local_only_rule_is_shown_as_such(qtbot: QtBot, app_home: Path) -> None:
    svc = Service(resolve_home())
    svc.set_setting(RESIDENCY_KEY, ["on_prem"])
    svc.close()
    page = open_page(qtbot)
    assert not page.any_zone.isChecked() and checked_zones(page) == []
    assert "only local and on-prem" in page.residency_note.text()
    assert page.values()[RESIDENCY_KEY] == ["on_prem"] and not page.is_dirty()
    close_page(qtbot, page)


def test_space_ticks_the_current_zone(qtbot: QtBot, page: AdvisorPage) -> None:
    click(qtbot, page, page.any_zone)
    assert page.zones.isEnabled()
    page.zones.setFocus()
    page.zones.setCurrentRow(2)
    qtbot.keyClick(page.zones, Qt.Key.Key_Space)
    assert checked_zones(page) == ["us"]
    assert page.changes() == {RESIDENCY_KEY: ["us"]}


def test_closing_while_saving_leaves_nothing_running(qtbot: QtBot, app_home: Path) -> None:
    page = open_page(qtbot)
    page.interval.setValue(30)
    task = page.apply()
    assert task is not None and not page.apply_button.isEnabled()
    close_page(qtbot, page)  # the no_leaks fixture checks threads, timers and tasks
    assert task.done()


# --------------------------------------------------------------------------- dispatch


def test_the_dispatch_section_edits_every_dispatch_setting_within_its_spec(
    page: AdvisorPage,
) -> None:
    assert set(DISPATCH_FIELDS) == {k for k in SETTINGS if k.startswith("dispatch.")}
    for key, how in DISPATCH_FIELDS.items():
        spec, box = SETTINGS[key], page.dispatch[key]
        assert (box.minimum(), box.maximum()) == (how.low, how.high)
        assert spec.parse(how.low) == how.low and spec.parse(how.high) == how.high
        for bad in (how.low - 0.01 if how.decimals else how.low - 1, how.high + 1):
            with pytest.raises(ValueError):
                spec.parse(bad)
        assert box.value() == spec.default  # nothing set: the defaults
        assert box.toolTip() == spec.help and box.accessibleName()


def test_dispatch_saves_a_factor_and_refuses_an_out_of_range_one(
    qtbot: QtBot, page: AdvisorPage
) -> None:
    cost = page.dispatch[COST_FACTOR_KEY]
    page.scroll_area.ensureWidgetVisible(cost)
    cost.setFocus()
    cost.selectAll()
    qtbot.keyClicks(cost, "4.5")
    cost.interpretText()
    assert page.changes() == {COST_FACTOR_KEY: 4.5}
    outcome = apply(qtbot, page)
    assert outcome == {"saved": {COST_FACTOR_KEY: 4.5}, "changed": None, "error": None}
    assert banner(page) == "Saved."
    assert fresh(COST_FACTOR_KEY) == 4.5

    # Out of range: the spin box does not take it as typed ...
    runtime = page.dispatch[RUNTIME_FACTOR_KEY]
    runtime.selectAll()
    qtbot.keyClicks(runtime, "99")
    runtime.interpretText()
    assert runtime.value() <= 50
    runtime.setValue(3.0)
    # ... and what reaches the settings store anyway is refused with the store's words.
    task = page.bridge.spawn(page._apply({BOOT_TIMEOUT_KEY: 0.01}))
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    assert task.result()["saved"] == {}
    assert banner(page) == (
        "Not saved: dispatch.boot_timeout_min must be a number of minutes between 0.1 and "
        "120, got 0.01"
    )
    assert fresh(BOOT_TIMEOUT_KEY) == SETTINGS[BOOT_TIMEOUT_KEY].default
    assert fresh(COST_FACTOR_KEY) == 4.5
