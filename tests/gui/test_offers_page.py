"""The Offers place, headless, against a real service in a temporary home: the templates'
catalog offers sorted by price, the VRAM / zone / price filters, a registered provider's live
rows (a real price record in the home's store) with their age and staleness, Refresh prices
against a Lambda price API that refuses the connection and one that never answers (the banner
names both, the window keeps answering), "Add this provider" opening the Remote GPU page's add
form, and the model under Qt's model tester."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget
from pytestqt.qtbot import QtBot

from comfyvn_gui.core.prices import Offer
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.mainwindow import MainWindow
from comfyvn_gui.gui.offers.model import OFFER_ROLE, SORT_ROLE, Column, OffersModel, prepare
from comfyvn_gui.gui.offers.page import DEBOUNCE_MS, EMPTY_TEXT, OffersPage
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from comfyvn_gui.store.prices import PriceRecord, PriceStore
from tests.fakes.http import SilentServer, closed_port_url

from .test_window import close, loaded, no_leaks, qloop  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("secret_service")

WAIT_MS = 10000
LAMBDA_KEY = "secret_" + "OFFERSKEY_0123456789abcdef.0123"


@pytest.fixture
def bridge(qtbot: QtBot, app_home: Path) -> Iterator[ServiceBridge]:
    b = ServiceBridge(Service(resolve_home()))
    yield b
    b.close()
    qtbot.waitUntil(lambda: not b._tasks, timeout=WAIT_MS)
    b.deleteLater()


@pytest.fixture
def page(qtbot: QtBot, bridge: ServiceBridge) -> Iterator[OffersPage]:
    p = OffersPage(bridge)
    qtbot.addWidget(p)
    p.resize(1100, 600)
    p.show()
    qtbot.waitExposed(p)
    with qtbot.waitSignal(p.loaded, timeout=WAIT_MS):
        p.start()
    yield p
    p.close_dialogs()


def lambda_provider(svc: Service, pid: str, api: str) -> None:
    """A Lambda provider whose price API is ``api`` (never validated: nothing answers)."""
    svc.create_provider(
        "lambda",
        {
            "id": pid,
            "config": {"endpoints": {"api": api}, "region": "us-east-1"},
            "secrets": {"api_key": LAMBDA_KEY},
        },
    )


def live_offer(pid: str, taken_at: datetime, **changes: Any) -> Offer:
    values: dict[str, Any] = {
        "provider": pid,
        "template_id": "lambda",
        "machine": "gpu_1x_a10",
        "gpu": "A10",
        "vram_gb": 24.0,
        "region": "us-east-1",
        "zone": "us",
        "hourly_usd": 0.61,
        "billing_increment_minutes": 1.0,
        "billing_minimum_minutes": 0.0,
        "source": "live",
        "source_name": "Lambda's instance-types API",
        "taken_at": taken_at,
        "available": True,
        "detail": {"vcpus": 30},
        **changes,
    }
    return Offer(**values)


def shown(page: OffersPage) -> list[Offer]:
    return page.model.offers()


def reread(qtbot: QtBot, page: OffersPage, change: Any) -> None:
    """Make a filter change and wait until its read is shown."""
    with qtbot.waitSignal(page.reloaded, timeout=WAIT_MS):
        change()


# --------------------------------------------------------------------------- the model


def test_the_offers_model_passes_qts_model_tester(qtmodeltester: Any, app_home: Path) -> None:
    svc = Service(resolve_home())
    try:
        now = datetime.now(UTC)
        offers = [*svc.offers()[:20], live_offer("my-lambda", now - timedelta(minutes=3))]
    finally:
        svc.close()
    model = OffersModel()
    model.set_rows(prepare(offers, {"my-lambda"}, max_age_h=24, now=now))
    qtmodeltester.check(model)
    model.sort(Column.VRAM, Qt.SortOrder.DescendingOrder)
    qtmodeltester.check(model)
    vram = [model.index(r, Column.VRAM).data(SORT_ROLE) for r in range(model.rowCount())]
    assert vram == sorted(vram, reverse=True)


# --------------------------------------------------------------------------- the page


def test_the_templates_catalog_offers_are_listed_cheapest_first_and_filtered(
    qtbot: QtBot, page: OffersPage
) -> None:
    offers = shown(page)
    assert len(offers) > 50 and page.list_stack.currentWidget() is page.table
    assert {o.source for o in offers} == {"catalog"} and not any(o.configured for o in offers)
    prices = [o.hourly_usd for o in offers]
    assert prices == sorted(prices)
    first = page.model.index(0, Column.PROVIDER).data()
    assert first.endswith("(not configured)")
    assert page.model.index(0, Column.PRICE).data().endswith("/hr")
    assert "catalog" in page.model.index(0, Column.SOURCE).data(Qt.ItemDataRole.ToolTipRole)
    assert page.summary.text() == f"{len(offers)} offers"

    # Sorting by price is numeric: $10 comes after $9, not after $1.
    page.table.sortByColumn(Column.PRICE, Qt.SortOrder.DescendingOrder)
    prices = [o.hourly_usd for o in shown(page)]
    assert prices == sorted(prices, reverse=True) and prices[0] > 10 > prices[-1]
    page.table.sortByColumn(Column.PRICE, Qt.SortOrder.AscendingOrder)

    reread(qtbot, page, lambda: page.vram_spin.setValue(48))
    assert shown(page) and all((o.vram_gb or 0) >= 48 for o in shown(page))
    reread(qtbot, page, lambda: page.zone_combo.setCurrentIndex(page.zone_combo.findData("eu")))
    assert shown(page) and {o.zone for o in shown(page)} == {"eu"}
    reread(qtbot, page, lambda: page.price_spin.setValue(3.0))
    narrowed = shown(page)
    assert narrowed and all(o.hourly_usd <= 3.0 for o in narrowed)
    assert [o.hourly_usd for o in narrowed] == sorted(o.hourly_usd for o in narrowed)
    assert page.shown_filters == (48.0, None, "eu", 3.0, False, True)

    # Typing reads once, after a pause, not per key.
    before = page.reads.shown
    for text in ("Z", "Z9", "Z90", "Z900"):
        page.gpu_edit.setText(text)
    assert page._debounce.isActive()
    qtbot.waitUntil(lambda: page.shown_filters is not None and page.shown_filters[1] == "Z900")
    assert page.reads.shown == before + 1
    assert not shown(page) and page.list_stack.currentWidget() is page.empty
    assert page.empty.text() == EMPTY_TEXT
    reread(qtbot, page, page.gpu_edit.clear)
    assert shown(page) == narrowed


def test_a_registered_providers_live_rows_show_their_age_and_go_stale(
    qtbot: QtBot, bridge: ServiceBridge, page: OffersPage
) -> None:
    svc = bridge.service
    lambda_provider(svc, "my-lambda", closed_port_url() + "/api/v1")
    taken = datetime.now(UTC) - timedelta(minutes=10)
    PriceStore(resolve_home()).save(
        [PriceRecord(provider="my-lambda", taken_at=taken, offers=[live_offer("my-lambda", taken)])]
    )
    reread(qtbot, page, page.shown)
    [row] = [r for r in range(page.model.rowCount()) if page.model.row_at(r).offer.configured]
    cells = [page.model.index(row, c).data() for c in Column]
    assert cells == [
        "my-lambda",
        "gpu_1x_a10",
        "A10",
        "24 GB",
        "us-east-1 (us)",
        "$0.61/hr",
        "per minute",
        "live",
        "10 min",
    ]
    tip = page.model.index(row, Column.GPU).data(Qt.ItemDataRole.ToolTipRole)
    assert "Lambda's instance-types API" in tip and "Capacity now: yes" in tip
    assert "vcpus: 30" in tip and "Billed per minute" in tip
    live_tint = page.model.index(row, 0).data(Qt.ItemDataRole.BackgroundRole)
    assert live_tint is not None
    # its template's rows are gone: lambda is set up now
    assert not any(o.template_id == "lambda" and not o.configured for o in shown(page))
    assert page.summary.text().endswith(", 1 live")

    svc.set_setting("prices.max_age_h", 0.1)  # 6 minutes: the 10-minute-old price is stale
    reread(qtbot, page, page.shown)
    [row] = [r for r in range(page.model.rowCount()) if page.model.row_at(r).offer.configured]
    assert page.model.index(row, Column.SOURCE).data() == "live, stale"
    tip = page.model.index(row, Column.PRICE).data(Qt.ItemDataRole.ToolTipRole)
    assert "Stale: older than 0.1 h (prices.max_age_h)" in tip
    stale_tint = page.model.index(row, 0).data(Qt.ItemDataRole.BackgroundRole)
    assert stale_tint is not None and stale_tint.color() != live_tint.color()


def test_refresh_names_the_providers_that_failed_and_the_window_keeps_answering(
    qtbot: QtBot, bridge: ServiceBridge, page: OffersPage
) -> None:
    svc = bridge.service
    lambda_provider(svc, "lam-closed", closed_port_url() + "/api/v1")
    with SilentServer() as silent:
        lambda_provider(svc, "lam-silent", silent.base + "/api/v1")
        page.refresh_timeout_s = 1.0
        # The GUI thread's longest gap between 10-ms ticks while the refresh waits.
        gaps: list[int] = []
        clock = QElapsedTimer()
        clock.start()

        def tick() -> None:
            gaps.append(clock.restart())

        probe = QTimer()
        probe.setInterval(10)
        probe.timeout.connect(tick)
        probe.start()
        started = time.monotonic()
        try:
            with qtbot.waitSignal(page.refreshed, timeout=WAIT_MS) as done:
                page.refresh_button.click()
                assert page.refreshing and page.progress.isVisible()
                assert not page.refresh_button.isEnabled()
        finally:
            probe.stop()
        took = time.monotonic() - started
    records = done.args[0]
    assert {r.provider for r in records} == {"lam-closed", "lam-silent"}
    assert all(r.error for r in records)
    assert 0.5 < took < 5  # the deadline ended it
    assert len(gaps) > 30 and max(gaps) < 250, max(gaps)
    assert page.banner.isVisible() and page.banner.kind == "warning"
    text = page.banner.label.text()
    assert "lam-closed:" in text and "lam-silent:" in text
    assert LAMBDA_KEY not in text
    assert page.refresh_button.isEnabled() and not page.progress.isVisible()
    # no live price was kept: both show the catalog's rows
    mine = [o for o in shown(page) if o.configured]
    assert mine and {o.source for o in mine} == {"catalog"}


def test_add_this_provider_opens_the_remote_gpu_pages_add_form(
    qtbot: QtBot, app_home: Path
) -> None:
    w = loaded(qtbot, MainWindow(remember_geometry=False))
    try:
        w.show_page("offers")
        assert w.current_page() == "offers"
        page = w.offers
        assert page is not None
        qtbot.waitUntil(lambda: page.is_loaded, timeout=WAIT_MS)
        assert not page.add_button.isEnabled()
        row = next(
            r
            for r in range(page.model.rowCount())
            if page.model.row_at(r).offer.template_id == "gcp"
        )
        page.select_row(row)
        offer = page.model.index(row, 0).data(OFFER_ROLE)
        assert not offer.configured
        assert page.add_button.isEnabled() and page.add_action.isEnabled()
        assert page.add_action in page.table.actions()  # (the context menu)
        page.add_button.click()
        assert w.current_page() == "remote-gpu"
        remote = w.remote
        assert remote is not None
        assert remote.current_key == "template:gcp"
        assert remote.title.text() == f"Add {w.bridge.service.catalog.profile('gcp').name}"  # type: ignore[union-attr]
        assert remote.form is not None
    finally:
        close(qtbot, w)


def test_every_visible_widget_is_named_for_screen_readers(qtbot: QtBot, page: OffersPage) -> None:
    page.select_row(0)
    page.banner.show_message("warning", "Live prices could not be refreshed for x: y.")
    checked = 0
    for widget in [page, *page.findChildren(QWidget)]:
        if not widget.isVisible() or widget.objectName().startswith("qt_"):
            continue
        has_text = isinstance(widget, QLabel | QAbstractButton) and bool(widget.text())
        assert widget.accessibleName() or has_text, (
            f"{type(widget).__name__} {widget.objectName()!r} has no accessible name"
        )
        checked += 1
    assert checked >= 15
    assert DEBOUNCE_MS <= 250
