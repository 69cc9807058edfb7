"""The Qt binding itself: what the app relies on and a release of PySide6 broke.

PySide6 6.12.0 drops a reference to ``True`` on every ``Signal.emit``: a window that emits
signals for long enough (the bridge's change signals, the models' row updates) dies with
"Fatal Python error: bool_dealloc: deallocating True or False" (seen under
``benchmarks/window_bench.py``). pyproject.toml excludes that release; this test fails on any
release with the same fault.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal, Slot
from pytestqt.qtbot import QtBot


class _Emitter(QObject):
    changed = Signal(str)
    plain = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    @Slot(str)
    def on_changed(self, _text: str) -> None:
        self.seen += 1

    def on_plain(self) -> None:
        self.seen += 1


def _refs() -> tuple[int, int, int]:
    return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)


def test_emitting_signals_keeps_the_reference_counts_of_the_singletons(qtbot: QtBot) -> None:
    emitter = _Emitter()
    emitter.changed.connect(emitter.on_changed)
    emitter.plain.connect(emitter.on_plain)
    for _ in range(10):  # warm: caches and interned objects made on first use
        emitter.changed.emit("warm")
        emitter.plain.emit()
    before = _refs()
    for _ in range(20):  # (a faulty release loses one reference per emit: 40 here)
        emitter.changed.emit("providers")
        emitter.plain.emit()
    after = _refs()
    assert emitter.seen == 60
    lost = [b - a for a, b in zip(after, before, strict=True)]
    assert max(lost) < 20, f"references lost by 40 emits (None, True, False): {lost}"
