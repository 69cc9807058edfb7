"""Provider cards: badges, card texts, the filterable card list and the local GPU panel."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QProgressBar, QWidget
from pytestqt.qtbot import QtBot

from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.core.checks import CheckResult, LocalGpu, LocalSnapshot
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.gui.remote_gpu.cards import LocalPanel, ProviderCard, ProviderList
from comfyvn_gui.gui.remote_gpu.provider_info import (
    BADGE_STATES,
    REASON_WORDS,
    Badge,
    BadgeState,
    CardInfo,
    badge_colors,
    badge_for,
    card_info,
    matches,
)

from .test_window import assert_nothing_left

NOW = datetime(2025, 11, 27, 15, 0, tzinfo=UTC)
CATALOG = load_catalog()


@pytest.fixture(autouse=True)
def no_leaks(qtbot: QtBot) -> Iterator[None]:
    """Fail a test that leaves a thread or a running QTimer behind (as tests/gui/test_window.py)."""
    threads_before = set(threading.enumerate())
    yield
    assert_nothing_left(threads_before)


def entry(pid: str, template: str, name: str | None = None, **kw: Any) -> ProviderEntry:
    return ProviderEntry(id=pid, template_id=template, name=name or pid, **kw)


def check(
    kind: str,
    status: str,
    *,
    code: str | None = None,
    at: datetime = NOW,
    message: str = "what happened",
    detail: dict[str, Any] | None = None,
) -> CheckResult:
    return CheckResult(
        provider="p",
        check=kind,
        status=status,
        code=code,
        message=message,
        detail=detail or {},
        checked_at=at,
    )


def valid(minutes_ago: float = 5) -> CheckResult:
    return check("validate", "valid", at=NOW - timedelta(minutes=minutes_ago), message="ok")


# -- badges ------------------------------------------------------------------------------------


def test_badge_without_entry_or_with_missing_fields_is_not_configured() -> None:
    assert badge_for(None, None, None, now=NOW).text == "not configured"
    b = badge_for(entry("r", "runpod"), None, None, missing_fields=["API key"], now=NOW)
    assert (b.state, b.text) == ("not_configured", "not configured")
    assert "API key" in b.tooltip


def test_badge_disabled_wins_over_results() -> None:
    b = badge_for(entry("r", "runpod", enabled=False, active=True), valid(), None, now=NOW)
    assert (b.state, b.text) == ("disabled", "disabled")


def test_badge_checking() -> None:
    b = badge_for(entry("r", "runpod", active=True), valid(), None, now=NOW, checking=True)
    assert (b.state, b.text) == ("checking", "checking…")


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("invalid_credentials", "invalid: key rejected"),
        ("permission_denied", "invalid: permission denied"),
        ("misconfigured", "invalid: misconfigured"),
        ("untrusted_host", "invalid: host key not trusted yet"),
        ("host_key_mismatch", "invalid: HOST KEY CHANGED"),
        ("unreachable", "invalid: unreachable"),
        ("timeout", "invalid: timed out"),
        ("rate_limited", "invalid: rate limited"),
        ("quota_exhausted", "invalid: quota exhausted"),
        ("error", "invalid: error"),
    ],
)
def test_badge_invalid_names_the_reason_and_keeps_the_message(code: str, text: str) -> None:
    failed = check("validate", code, code=code, message="RunPod said 401: the key is wrong")
    healthy = check("health", "healthy")
    b = badge_for(entry("r", "runpod", active=True), failed, healthy, now=NOW)
    assert b == Badge("invalid", text, "RunPod said 401: the key is wrong")


def test_every_failure_code_has_words() -> None:
    from comfyvn_gui.core.checks import FailureCode

    assert set(REASON_WORDS) == set(get_args(FailureCode))


@pytest.mark.parametrize(
    ("at", "detail", "text"),
    [
        (datetime(2025, 11, 27, 14, 2, tzinfo=UTC), None, "unhealthy since 14:02"),
        (datetime(2025, 11, 26, 14, 2, tzinfo=UTC), None, "unhealthy since 26 Nov 14:02"),
        (datetime(2024, 12, 31, 9, 5, tzinfo=UTC), None, "unhealthy since 31 Dec 2024 09:05"),
        (NOW, {"since": "2025-11-26T09:30:00+00:00"}, "unhealthy since 26 Nov 09:30"),
        (NOW, {"since": "garbage"}, "unhealthy since 15:00"),
    ],
)
def test_badge_unhealthy_since(at: datetime, detail: dict[str, Any] | None, text: str) -> None:
    health = check("health", "unhealthy", code="unreachable", at=at, detail=detail)
    b = badge_for(entry("r", "runpod", active=True), valid(), health, now=NOW)
    assert (b.state, b.text, b.tooltip) == ("unhealthy", text, "what happened")


def test_badge_since_is_shown_in_the_zone_of_now() -> None:
    health = check("health", "unhealthy", at=datetime(2025, 11, 27, 13, 2, tzinfo=UTC))
    cet = NOW.astimezone(timezone(timedelta(hours=1)))
    assert badge_for(entry("r", "runpod"), None, health, now=cet).text == "unhealthy since 14:02"


def test_badge_degraded_and_healthy() -> None:
    e = entry("r", "runpod", active=True)
    degraded = check("health", "degraded", message="rate limited: retry in 30 s")
    assert badge_for(e, valid(), degraded, now=NOW) == Badge(
        "degraded", "degraded", "rate limited: retry in 30 s"
    )
    healthy = badge_for(e, valid(), check("health", "healthy", message="serving"), now=NOW)
    assert (healthy.state, healthy.text) == ("healthy", "healthy")
    assert healthy.tooltip == "serving (checked just now)"


@pytest.mark.parametrize(
    ("minutes_ago", "text"),
    [
        (0.3, "validated just now"),
        (5, "validated 5 min ago"),
        (59, "validated 59 min ago"),
        (180, "validated 3 h ago"),
        (19 * 60, "validated yesterday"),
        (4 * 24 * 60, "validated 4 days ago"),
        (10 * 24 * 60, "validated on 17 Nov"),
    ],
)
def test_badge_validated_relative_time(minutes_ago: float, text: str) -> None:
    unknown = check("health", "unknown")
    b = badge_for(entry("r", "runpod", active=True), valid(minutes_ago), unknown, now=NOW)
    assert (b.state, b.text) == ("validated", text)


def test_badge_not_validated() -> None:
    b = badge_for(entry("r", "runpod"), None, None, now=NOW)
    assert (b.state, b.text) == ("configured", "not validated")
    assert badge_for(entry("r", "runpod", active=True), None, None).text == "validated"


# -- card texts --------------------------------------------------------------------------------

EXPECTED = {
    "aws": ("Cloud", "A10G · 24 GB", "~$1.05/hr · per second, 1 min minimum"),
    "azure": ("Cloud", "T4 · 16 GB", "~$1.00/hr · per minute, 5 min minimum"),
    "coreweave": ("Kubernetes", "A40 · 48 GB", "~$0.95/hr · per minute"),
    "gcp": ("Cloud", "L4 · 24 GB", "~$0.85/hr · per second, 1 min minimum"),
    "lambda": ("Cloud", "A100 40GB · 40 GB", "~$1.10/hr · per minute"),
    "lan": ("LAN node", "reported by the node", "free"),
    "local": ("This computer", "reported by the node", "free"),
    "paperspace": ("Cloud", "RTX A4000 · 16 GB", "~$0.78/hr · per hour (assumed)"),
    "runpod": ("Cloud", "A10G · 24 GB", "~$0.46/hr · per second"),
    "ssh": ("On-prem SSH", "reported by the node", "free"),
    "vast": ("Marketplace", "RTX 4090 · 24 GB", "marketplace prices · per second"),
    "custom": ("Custom ComfyUI", "reported by the server", "your own price · per minute (assumed)"),
}


def test_every_profile_has_an_expected_card() -> None:
    assert set(EXPECTED) == set(CATALOG.profiles)


@pytest.mark.parametrize("template_id", sorted(CATALOG.profiles))
def test_card_info_of_every_template(template_id: str) -> None:
    profile = CATALOG.profile(template_id)
    info = card_info(profile, CATALOG)
    kind, gpu, cost = EXPECTED[template_id]
    assert info.key == f"template:{template_id}"
    assert info.title == profile.name
    assert info.subtitle == f"{profile.name} · {kind}"
    assert (info.gpu, info.cost) == (gpu, cost)
    assert info.policy == profile.policy_highlight
    assert info.zones == tuple(sorted({r.zone for r in profile.regions}))
    assert info.badge.text == "not configured"
    assert not info.registered
    assert info.template_id == template_id


def test_card_info_of_a_custom_endpoint_shows_its_own_terms() -> None:
    custom = CATALOG.profile("custom")
    config = {
        "endpoint": "https://comfy.example.net",
        "hourly_usd": "0.35",
        "zones": "eu, uk",
        "vram_gb": "24",
        "gpu_name": "RTX 4090",
        "billing_increment_minutes": "60",
    }
    e = entry("box", "custom", "My box", active=True)
    e = e.model_copy(update={"config": config})
    info = card_info(custom, CATALOG, e, valid(), None, now=NOW)
    assert (info.subtitle, info.gpu) == (
        "Custom ComfyUI endpoint · Custom ComfyUI",
        "RTX 4090 · 24 GB",
    )
    assert info.cost == "$0.35/hr · per hour"
    assert info.zones == ("eu", "uk")
    assert matches(info, "uk") and matches(info, "box 4090")
    bare = card_info(custom, CATALOG, e.model_copy(update={"config": {}}), missing_fields=["zones"])
    assert (bare.cost, bare.zones) == ("no price set · per minute (assumed)", ())
    assert bare.badge.tooltip == "Still missing: Residency zones"


def test_card_info_of_an_entry() -> None:
    runpod = CATALOG.profile("runpod")
    e = entry("runpod-eu", "runpod", "RunPod EU", gpu="A100 80GB", active=True)
    info = card_info(runpod, CATALOG, e, valid(), None, now=NOW)
    assert (info.key, info.title, info.registered) == ("runpod-eu", "RunPod EU", True)
    assert info.gpu == "A100 80GB · 80 GB"
    assert info.badge.text == "validated 5 min ago"
    assert info.zones == ("ca", "eu", "us")
    missing = card_info(runpod, CATALOG, e, missing_fields=["api_key"])
    assert missing.badge.text == "not configured"
    assert missing.badge.tooltip == "Still missing: API key"  # the field's label, not its name


def test_card_info_shows_the_gpu_a_node_reported() -> None:
    lan = CATALOG.profile("lan")
    health = check(
        "health",
        "healthy",
        detail={"gpus": [{"name": "RTX 3090", "vram_total_gb": 24.0}, {"name": "T4"}]},
    )
    info = card_info(lan, CATALOG, entry("box", "lan", active=True), None, health, now=NOW)
    assert info.gpu == "RTX 3090 · 24 GB (+1 more)"


def test_matches_every_word_case_insensitively() -> None:
    info = card_info(CATALOG.profile("aws"), CATALOG)
    assert matches(info, "")
    assert matches(info, "AWS a10g")
    assert matches(info, "eu cloud")
    assert matches(info, "not configured")
    assert matches(info, "Asia")
    assert not matches(info, "aws h100")


# -- the card list -----------------------------------------------------------------------------


def registered_infos() -> list[CardInfo]:
    runpod = card_info(
        CATALOG.profile("runpod"),
        CATALOG,
        entry("runpod-eu", "runpod", "RunPod EU", active=True),
        valid(),
        now=NOW,
    )
    lambda_ = card_info(
        CATALOG.profile("lambda"),
        CATALOG,
        entry("lambda-a100", "lambda", "Lambda big", gpu="A100 80GB"),
        check("validate", "invalid_credentials", code="invalid_credentials"),
        now=NOW,
    )
    lan = card_info(
        CATALOG.profile("lan"),
        CATALOG,
        entry("studio", "lan", "Studio box", active=True),
        valid(),
        check("health", "unhealthy", at=datetime(2025, 11, 27, 14, 2, tzinfo=UTC)),
        now=NOW,
    )
    return [runpod, lambda_, lan]


def all_infos() -> list[CardInfo]:
    templates = [card_info(p, CATALOG) for p in CATALOG.profiles.values()]
    return templates + registered_infos()


@pytest.fixture
def plist(qtbot: QtBot) -> ProviderList:
    widget = ProviderList()
    qtbot.addWidget(widget)
    widget.resize(500, 700)
    widget.set_cards(all_infos())
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def shown(plist: ProviderList) -> set[str]:
    out = set()
    for key in plist.keys():
        card = plist.card(key)
        assert card is not None
        assert card.isVisible() == (not card.isHidden())
        if card.isVisible():
            out.add(key)
    return out


def test_list_groups_registered_first(plist: ProviderList) -> None:
    keys = plist.keys()
    assert keys[:3] == ["runpod-eu", "lambda-a100", "studio"]
    assert len(keys) == 3 + len(CATALOG.profiles)
    assert shown(plist) == set(keys)
    assert plist.registered_header.text() == "Your providers"
    assert plist.templates_header.text() == "Add a provider"
    template = plist.card("template:runpod")
    assert template is not None and template.add_hint.isVisible()
    mine = plist.card("runpod-eu")
    assert mine is not None and not mine.add_hint.isVisible()
    assert plist.no_match.isHidden()
    assert plist.registered_empty.isHidden()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "eu",
            {"runpod-eu", "lambda-a100"}
            | {f"template:{t}" for t in ("aws", "azure", "gcp", "lambda", "paperspace")}
            | {"template:runpod", "template:vast"},
        ),
        ("a100", {"lambda-a100", "template:lambda"}),
        ("RunPod", {"runpod-eu", "template:runpod"}),
        ("key rejected", {"lambda-a100"}),
        ("on-prem", {"studio", "template:lan", "template:ssh"}),
    ],
)
def test_filter_shows_the_matching_cards(
    plist: ProviderList, qtbot: QtBot, query: str, expected: set[str]
) -> None:
    qtbot.keyClicks(plist.filter, query)
    assert plist.filter_text == query
    assert shown(plist) == expected
    assert set(plist.visible_keys()) == expected
    assert plist.no_match.isHidden()
    assert plist.registered_header.isVisible()


def test_filter_without_match_says_so(plist: ProviderList) -> None:
    plist.filter_text = "xyz"
    assert shown(plist) == set()
    assert plist.no_match.isVisible()
    assert plist.no_match.text() == "No provider matches 'xyz'"
    assert not plist.registered_header.isVisible()
    assert not plist.templates_header.isVisible()
    plist.filter.clear()
    assert plist.no_match.isHidden()
    assert len(shown(plist)) == 3 + len(CATALOG.profiles)


def test_filter_box_is_described(plist: ProviderList) -> None:
    f = plist.filter
    assert f.objectName() == "provider-filter"
    assert f.placeholderText() == "Filter providers (name, GPU, region, status)"
    assert f.isClearButtonEnabled()
    assert f.accessibleName()


def test_click_selects_and_emits(plist: ProviderList, qtbot: QtBot) -> None:
    card = plist.card("template:aws")
    assert card is not None
    with qtbot.waitSignal(plist.selection_changed) as sig:
        qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
    assert sig.args == ["template:aws"]
    assert plist.selected() == "template:aws"
    assert card.is_selected()
    with qtbot.assertNotEmitted(plist.selection_changed):
        qtbot.mouseClick(card, Qt.MouseButton.LeftButton)


def test_space_on_a_card_selects_it(plist: ProviderList, qtbot: QtBot) -> None:
    card = plist.card("studio")
    assert card is not None
    with qtbot.waitSignal(plist.activated) as sig:
        qtbot.keyClick(card, Qt.Key.Key_Space)
    assert sig.args == ["studio"]
    assert plist.selected() == "studio"


def test_arrow_keys_move_between_visible_cards(plist: ProviderList, qtbot: QtBot) -> None:
    plist.filter_text = "eu"
    plist.select("runpod-eu")
    first = plist.card("runpod-eu")
    assert first is not None
    with qtbot.waitSignal(plist.selection_changed) as sig:
        qtbot.keyClick(first, Qt.Key.Key_Down)
    assert sig.args == ["lambda-a100"]  # "studio" is filtered out
    second = plist.card("lambda-a100")
    assert second is not None
    with qtbot.waitSignal(plist.selection_changed) as sig:
        qtbot.keyClick(second, Qt.Key.Key_Down)
    assert sig.args == ["template:aws"]
    aws = plist.card("template:aws")
    assert aws is not None
    qtbot.keyClick(aws, Qt.Key.Key_Up)
    assert plist.selected() == "lambda-a100"
    qtbot.keyClick(plist.filter, Qt.Key.Key_Down)  # from the filter into the list
    assert plist.selected() == "lambda-a100"


def test_ctrl_f_focuses_the_filter(plist: ProviderList, qtbot: QtBot) -> None:
    assert plist.find_shortcut.context() == Qt.ShortcutContext.WidgetWithChildrenShortcut
    plist.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is plist, timeout=2000)
    card = plist.card("studio")
    assert card is not None
    card.setFocus()
    qtbot.waitUntil(card.hasFocus, timeout=2000)
    qtbot.keyClick(card, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(plist.filter.hasFocus, timeout=2000)


def test_set_cards_reuses_widgets_and_keeps_the_selection(
    plist: ProviderList, qtbot: QtBot
) -> None:
    plist.select("runpod-eu")
    before = {k: plist.card(k) for k in plist.keys()}
    infos = all_infos()
    i = next(n for n, info in enumerate(infos) if info.key == "runpod-eu")
    failed = check("validate", "timeout", code="timeout", message="no answer in 10 s")
    infos[i] = card_info(
        CATALOG.profile("runpod"),
        CATALOG,
        entry("runpod-eu", "runpod", "RunPod EU", active=True),
        failed,
        now=NOW,
    )
    with qtbot.assertNotEmitted(plist.selection_changed):
        plist.set_cards(infos)
    card = plist.card("runpod-eu")
    assert card is before["runpod-eu"]
    assert all(plist.card(k) is w for k, w in before.items())
    assert plist.selected() == "runpod-eu" and card is not None and card.is_selected()
    assert card.badge.text() == "invalid: timed out"
    assert card.badge.property("state") == "invalid"
    assert card.badge.toolTip() == "no answer in 10 s"
    assert card.accessibleName() == "RunPod EU, invalid: timed out"


def test_cards_filled_into_a_shown_list_and_added_later(qtbot: QtBot) -> None:
    """The app's path: the list is on screen, empty, when the first cards arrive (shown in one
    pass); a card added later leaves the focus and the scroll position where they were."""
    widget = ProviderList()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.show()
    qtbot.waitExposed(widget)
    infos = all_infos()
    widget.set_cards([i for i in infos if i.key != "studio"])
    assert widget.body.isVisible()
    assert shown(widget) == set(widget.keys()) and len(widget.keys()) == 2 + len(CATALOG.profiles)
    bar = widget.scroll_area.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    last = widget.card(widget.keys()[-1])
    assert last is not None
    last.setFocus()
    widget.scroll_area.ensureWidgetVisible(last)
    qtbot.waitUntil(last.hasFocus)
    scrolled = bar.value()
    assert scrolled > 0
    widget.set_cards(infos)  # "studio" registered meanwhile
    assert widget.card("studio") is not None and widget.card("studio").isVisible()
    assert last.hasFocus()
    assert bar.value() == scrolled


def test_set_cards_drops_gone_cards_and_their_selection(plist: ProviderList, qtbot: QtBot) -> None:
    plist.select("studio")
    with qtbot.waitSignal(plist.selection_changed) as sig:
        plist.set_cards([i for i in all_infos() if i.key != "studio"])
    assert sig.args == [""]
    assert plist.selected() is None
    assert plist.card("studio") is None
    assert len(plist.keys()) == 2 + len(CATALOG.profiles)
    plist.set_cards([card_info(p, CATALOG) for p in CATALOG.profiles.values()])
    assert plist.registered_empty.isVisible()


def test_update_card_and_badge_state_property(plist: ProviderList) -> None:
    info = card_info(
        CATALOG.profile("lan"),
        CATALOG,
        entry("studio", "lan", "Studio box", active=True),
        valid(),
        check("health", "healthy"),
        now=NOW,
    )
    plist.update_card(info)
    card = plist.card("studio")
    assert card is not None
    assert card.badge.objectName() == "badge"
    assert card.badge.property("state") == "healthy"
    assert card.badge.text() == "healthy"
    with pytest.raises(KeyError):
        plist.select("nope")


def test_cards_are_described_for_assistive_tech(plist: ProviderList) -> None:
    card = plist.card("runpod-eu")
    assert card is not None
    assert card.accessibleName() == "RunPod EU, validated 5 min ago"
    desc = card.accessibleDescription()
    assert "A10G · 24 GB" in desc and "per second" in desc and "EU" in desc
    assert card.focusPolicy() == Qt.FocusPolicy.StrongFocus
    assert card.zone_chips() == ["Canada", "EU", "US"]
    assert card.policy.toolTip() == CATALOG.profile("runpod").policy_highlight
    checked = 0
    for widget in [plist, *plist.findChildren(QWidget)]:
        parent = widget.parentWidget()
        if not widget.isVisible() or widget.objectName().startswith("qt_"):
            continue
        if parent is not None and parent.objectName().startswith("qt_"):
            continue  # the scroll area's own scroll bars
        has_text = isinstance(widget, QLabel) and bool(widget.text())
        assert widget.accessibleName() or has_text, (
            f"{type(widget).__name__} {widget.objectName()!r} has no accessible name"
        )
        checked += 1
    assert checked > 50


def test_a_long_policy_line_ends_in_an_ellipsis_and_shows_whole_when_wide(
    qtbot: QtBot,
) -> None:
    from comfyvn_gui.gui.widgets.elided import ElidedLabel

    full = "EU data residency only; no training on customer data; " * 3
    card = ProviderCard(
        replace(next(i for i in registered_infos() if i.key == "runpod-eu"), policy=full)
    )
    qtbot.addWidget(card)
    card.resize(300, 200)
    card.show()
    qtbot.waitExposed(card)
    label = card.policy
    assert isinstance(label, ElidedLabel)
    assert label.text() == full and label.toolTip() == full
    shown = label.elided_text()
    assert shown.endswith("…") and full.startswith(shown[:-1]), shown
    assert label.fontMetrics().horizontalAdvance(shown) <= label.width()
    assert card.width() == 300  # the line does not widen the card
    card.resize(2000, 200)
    qtbot.waitUntil(lambda: label.elided_text() == full)
    label.setText("short")
    assert label.elided_text() == "short" and label.text() == "short"


def test_sixty_cards_filter_without_rebuilding(qtbot: QtBot) -> None:
    widget = ProviderList()
    qtbot.addWidget(widget)
    profiles = list(CATALOG.profiles.values())
    infos = [
        card_info(p, CATALOG, entry(f"p{n}", p.id, f"{p.name} {n}"), now=NOW)
        for n, p in enumerate(profiles * 6)
    ][:49] + [card_info(p, CATALOG) for p in profiles]
    widget.set_cards(infos)
    widget.show()
    qtbot.waitExposed(widget)
    cards = widget.findChildren(ProviderCard)
    assert len(cards) == 49 + len(profiles)
    started = time.perf_counter()
    qtbot.keyClicks(widget.filter, "a100 eu")
    QApplication.processEvents()
    assert time.perf_counter() - started < 2.0
    assert widget.findChildren(ProviderCard) == cards
    lambdas = sum(1 for i in infos if i.registered and i.template_id == "lambda")
    assert lambdas >= 4
    assert len(widget.visible_keys()) == lambdas + 1  # the "Lambda Labs n" entries, the template
    widget.set_cards(infos)
    assert widget.findChildren(ProviderCard) == cards


# -- colours -----------------------------------------------------------------------------------


def _luminance(color: QColor) -> float:
    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(color.redF()) + 0.7152 * lin(color.greenF()) + 0.0722 * lin(color.blueF())


def contrast(a: QColor, b: QColor) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("state", BADGE_STATES)
def test_badge_colours_read_in_both_palettes(state: BadgeState, dark: bool) -> None:
    fg, bg = (QColor(c) for c in badge_colors(state, dark))
    assert abs(fg.lightness() - bg.lightness()) >= 100
    assert contrast(fg, bg) >= 4.5  # WCAG AA for normal text
    assert bg.lightness() not in (0, 255)  # a tint, never plain black or white
    assert (bg.lightness() < 128) == dark  # blends with the window it sits on


def test_every_badge_state_is_a_literal() -> None:
    assert BADGE_STATES == get_args(BadgeState)


def _palette(window: str, text: str) -> QPalette:
    pal = QPalette(QApplication.palette())
    for role, color in (
        (QPalette.ColorRole.Window, window),
        (QPalette.ColorRole.Base, window),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Text, text),
    ):
        pal.setColor(role, QColor(color))
    return pal


@pytest.mark.parametrize(
    ("window", "text", "dark"),
    [("#1e1f22", "#e8eaed", True), ("#f6f6f6", "#202124", False)],
    ids=["dark", "light"],
)
@pytest.mark.parametrize("state", BADGE_STATES)
def test_painted_badge_follows_the_palette(
    qtbot: QtBot, state: BadgeState, window: str, text: str, dark: bool
) -> None:
    info = card_info(CATALOG.profile("runpod"), CATALOG)
    card = ProviderCard(info)
    qtbot.addWidget(card)
    card.setPalette(_palette(window, text))
    card.update_info(CardInfo(**{**info.__dict__, "badge": Badge(state, "some status", "tip")}))
    card.show()
    qtbot.waitExposed(card)
    assert card.badge.property("state") == state
    fg, bg = card.badge_colors()
    assert (fg.name(), bg.name()) == badge_colors(state, dark)
    image = card.badge.grab().toImage()
    painted = image.pixelColor(3, image.height() // 2)
    assert painted.name() == bg.name()
    assert contrast(fg, painted) >= 4.5


def test_switching_the_palette_recolours_the_badges(plist: ProviderList) -> None:
    card = plist.card("studio")
    assert card is not None
    plist.setPalette(_palette("#f6f6f6", "#202124"))
    light_bg = card.badge_colors()[1]
    assert light_bg.name() == badge_colors("unhealthy", False)[1]
    plist.setPalette(_palette("#1e1f22", "#e8eaed"))
    assert card.badge_colors()[1].name() == badge_colors("unhealthy", True)[1]
    assert badge_colors("unhealthy", True)[1] in card.badge.styleSheet()


# -- local panel -------------------------------------------------------------------------------


@pytest.fixture
def panel(qtbot: QtBot) -> LocalPanel:
    widget = LocalPanel()
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_local_panel_while_looking(panel: LocalPanel) -> None:
    assert panel.title.text() == "This computer"
    assert panel.accessibleName() == "This computer"
    assert panel.status.text() == "Looking for GPUs…"
    assert panel.gpu_lines == []
    assert panel.keyring.isHidden()


def test_local_panel_without_gpu_says_why_plainly(panel: LocalPanel) -> None:
    snap = LocalSnapshot(gpus=[], source="none", note="no NVIDIA driver is installed")
    panel.set_snapshot(snap)
    assert panel.status.text() == (
        "No local GPU: no NVIDIA driver is installed.\nJobs run on your providers."
    )
    assert panel.status.isVisible()
    assert not panel.findChildren(QProgressBar) or all(
        not bar.isVisible() for bar in panel.findChildren(QProgressBar)
    )
    assert "No local GPU" in panel.accessibleDescription()


def test_local_panel_with_two_gpus(panel: LocalPanel, qtbot: QtBot) -> None:
    snap = LocalSnapshot(
        gpus=[
            LocalGpu(
                name="NVIDIA GeForce RTX 4090",
                vram_total_gb=24,
                vram_free_gb=21.3,
                utilization=0.12,
                index=0,
            ),
            LocalGpu(name="Tesla T4", vram_total_gb=16, vram_free_gb=4, utilization=1.0, index=1),
        ],
        driver_version="550.54.14",
    )
    panel.set_snapshot(snap)
    assert [line.text() for line in panel.gpu_lines] == [
        "NVIDIA GeForce RTX 4090 — 24 GB (21.3 GB free), load 12 %",
        "Tesla T4 — 16 GB (4.0 GB free), load 100 %",
    ]
    assert [bar.value() for bar in panel.vram_bars] == [11, 75]
    assert all(bar.isVisible() and bar.accessibleName() for bar in panel.vram_bars)
    assert panel.status.text() == "NVIDIA driver 550.54.14"
    panel.set_snapshot(None)  # old rows go away
    assert panel.gpu_lines == [] and panel.status.text() == "Looking for GPUs…"
    qtbot.waitUntil(lambda: not panel.findChildren(QProgressBar), timeout=2000)


def test_local_panel_keyring_line_and_warning(panel: LocalPanel) -> None:
    panel.set_keyring("Secret Service (GNOME Keyring)", None)
    assert panel.keyring.text() == "Secrets are stored in: Secret Service (GNOME Keyring)"
    assert panel.keyring.isVisible()
    assert panel.keyring.property("warning") is False
    assert panel.keyring.styleSheet() == ""
    problem = "No usable keyring: install gnome-keyring or KWallet, then restart the app."
    panel.set_keyring("fail.Keyring", problem)
    assert panel.keyring.text() == problem
    assert panel.keyring.property("warning") is True
    assert badge_colors("degraded", False)[1] in panel.keyring.styleSheet()
    panel.setPalette(_palette("#1e1f22", "#e8eaed"))
    assert badge_colors("degraded", True)[1] in panel.keyring.styleSheet()


# -- Min VRAM and link metadata ----------------------------------------------------------------


def test_a_card_shows_min_vram_beside_the_gpu_and_the_ssh_runbook_link(qtbot: QtBot) -> None:
    runpod = card_info(CATALOG.profile("runpod"), CATALOG, entry("rp", "runpod", gpu="A100 80GB"))
    card = ProviderCard(runpod)
    qtbot.addWidget(card)
    # The configured GPU's VRAM, then the profile's (the seed's) "Min VRAM" floor.
    floor = CATALOG.profile("runpod").vram_floor_gb
    assert card.gpu.text() == f"GPU: A100 80GB · 80 GB · Min VRAM {floor:g} GB"
    assert not card.links.isVisibleTo(card)

    ssh = entry(
        "gpu01",
        "ssh",
        "GPU server",
        meta={
            "runbook_url": "https://wiki.example.com/runbook?a=1&b=<2>",
            "compliance_url": "javascript:alert(1)",  # set by hand: not a link, left out
            "note": "kept",
        },
    )
    info = card_info(CATALOG.profile("ssh"), CATALOG, ssh)
    assert info.links == (("Runbook", "https://wiki.example.com/runbook?a=1&b=<2>"),)
    card.update_info(info)
    card.show()
    qtbot.waitExposed(card)
    assert card.gpu.text() == "GPU: reported by the node · Min VRAM 8 GB"
    assert card.links.isVisible() and card.links.openExternalLinks()
    assert card.links.text() == (
        '<a href="https://wiki.example.com/runbook?a=1&amp;b=&lt;2&gt;">Runbook</a>'
    )
    assert "Runbook: https://wiki.example.com/runbook" in card.accessibleDescription()
