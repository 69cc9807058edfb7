"""A page's coalesced read (gui/reads.py) on the GUI's real loop and the bridge's I/O pool:
a burst of requests costs one more read and one show, and changes that never stop still let
the page show its state at least every MAX_WAIT_S (a long queue read overtaken by drivers'
writes would otherwise show nothing until they stop)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.reads import MAX_WAIT_S, CoalescedRead
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home

from .test_window import no_leaks, qloop  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("secret_service")


@pytest.fixture
def bridge(qtbot: QtBot, app_home: Path) -> Iterator[ServiceBridge]:
    b = ServiceBridge(Service(resolve_home()))
    yield b
    b.close()
    qtbot.waitUntil(lambda: not b._tasks, timeout=10000)
    b.deleteLater()


class Counter:
    """A state that changes: each read returns the current version (slowly, off the GUI
    thread), each show records what it got and on which thread."""

    def __init__(self, read_s: float) -> None:
        self.version = 0
        self.read_s = read_s
        self.reads = 0
        self.shown: list[tuple[int, float]] = []
        self.gui_thread = threading.get_ident()
        self.show_threads: set[int] = set()

    def read(self) -> int:
        assert threading.get_ident() != self.gui_thread  # (never on the GUI thread)
        self.reads += 1
        version = self.version
        time.sleep(self.read_s)
        return version

    def show(self, version: int) -> None:
        self.show_threads.add(threading.get_ident())
        self.shown.append((version, time.monotonic()))


def test_a_burst_of_requests_costs_one_more_read_and_one_show(
    qtbot: QtBot, bridge: ServiceBridge
) -> None:
    state = Counter(read_s=0.2)
    reads = CoalescedRead(bridge, state.read, state.show, name="test-read")
    task = reads.request()
    qtbot.waitUntil(lambda: state.reads == 1, timeout=5000)  # a read under way
    for _ in range(5):
        state.version += 1
        assert reads.request() is task  # joined, not a second read
    qtbot.waitUntil(task.done, timeout=5000)
    assert [v for v, _ in state.shown] == [5]  # the latest state, once
    assert state.reads == 2 and state.show_threads == {state.gui_thread}


def test_changes_that_never_stop_still_show_the_state_every_max_wait(
    qtbot: QtBot, bridge: ServiceBridge
) -> None:
    state = Counter(read_s=0.1)
    reads = CoalescedRead(bridge, state.read, state.show, name="test-read")
    started = time.monotonic()
    stream_s = 3 * MAX_WAIT_S
    task = reads.request()
    while time.monotonic() - started < stream_s:  # a change every 30 ms, never a pause
        state.version += 1
        reads.request()
        qtbot.wait(30)
    stopped = time.monotonic()
    qtbot.waitUntil(task.done, timeout=5000)
    during = [(v, t) for v, t in state.shown if t < stopped]
    # shown while the changes went on, about every MAX_WAIT_S (plus a read), not only at the end
    assert len(during) >= 2, state.shown
    assert during[0][1] - started < MAX_WAIT_S + 0.5
    versions = [v for v, _ in state.shown]
    assert versions == sorted(versions)  # never an older read after a newer one
    assert versions[-1] == state.version  # and the last state once they stop


def test_a_paced_read_yields_every_item_in_order_one_at_a_time_and_rests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``paced`` hands a long read's items on as they come (a reader that drops each job as
    it is compared never holds them all) and rests after each PACE_WORK_S of work, so the GUI
    thread gets the GIL while a read of 10,000 jobs runs."""
    from comfyvn_gui.gui import reads

    rests: list[float] = []
    real_sleep = time.sleep
    me = threading.get_ident()

    def sleep(s: float) -> None:
        if threading.get_ident() == me:  # (time.sleep is the module's: other threads too)
            rests.append(s)
        real_sleep(s)

    monkeypatch.setattr(reads.time, "sleep", sleep)
    made: list[int] = []

    def items() -> Iterator[int]:
        for i in range(6):
            made.append(i)
            yield i

    seen = []
    for item in reads.paced(items()):
        assert made[-1] == item  # nothing read ahead
        seen.append(item)
        end = time.perf_counter() + reads.PACE_WORK_S  # the reader's work on the item
        while time.perf_counter() < end:
            pass
    assert seen == list(range(6))
    assert rests == [reads.PACE_REST_S] * 6  # a rest after each item's work
