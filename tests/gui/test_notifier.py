"""The job-ended notifier: a job that ends while the window is in the background is told in
one sentence (the offscreen platform has no system tray, so the notice goes to the sink the
window gives: its banner); nothing is told while the window is active. The jobs are real
records of the home's job store, moved as the driver moves them (its lease, its write)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from comfyvn_gui.core import dispatch as rules
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.notifier import JobEnd, JobEndNotifier, JobEndWatch, Notice, ended_text
from comfyvn_gui.service import Service
from tests.service.test_dispatch import project, summary

from .test_window import no_leaks, qloop  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("secret_service")

WAIT_MS = 10000


def running_jobs(svc: Service, tmp_path: Path, n: int) -> list[int]:
    """``n`` jobs of the home's queue, set running (as a dispatch would; no driver runs)."""
    ids = []
    for i in range(n):
        [job] = svc.import_summary(summary(), str(project(tmp_path / f"project{i}")))
        moved = svc.job_store.change_status(
            job.id, expected=["queued"], status="running", actor="system", message="test"
        )
        assert moved is not None
        ids.append(job.id)
    return ids


def end(svc: Service, job_id: int, status: str, **record: Any) -> None:
    """End a job as the driver does: under its lease, with its ``meta.dispatch``."""
    store = svc.job_store
    owner = f"test-driver-{job_id}"
    taken = dict(store.claim(owner, now=time.time(), lease_s=60, takeover=True))
    store.write_dispatch(
        job_id, (owner, taken[job_id]), {"provider": "rp", **record}, status=status
    )


def test_a_job_that_ends_in_the_background_is_told_and_not_while_active(
    qtbot: QtBot, app_home: Path, tmp_path: Path
) -> None:
    svc = Service()
    svc.create_provider("runpod", {"id": "rp"})  # named "RunPod"
    first, second = running_jobs(svc, tmp_path, 2)
    bridge = ServiceBridge(svc)
    holder = QWidget()
    qtbot.addWidget(holder)
    active = [False]
    told: list[Notice] = []
    try:
        bridge.watch()
        watch = JobEndWatch(bridge, holder, told.append, active=lambda: active[0])
        watch.look()
        qtbot.waitUntil(lambda: watch.in_flight == [first, second], timeout=WAIT_MS)
        assert told == []  # (the first look only remembers)

        end(
            svc,
            first,
            "completed",
            outputs=[{"run": 0}] * 4,
            actual_cost_usd=0.31,
            ended_message="completed on rp: 1 of 1 runs, 4 output files; spent $0.31",
        )
        qtbot.waitUntil(lambda: bool(told), timeout=WAIT_MS)
        [notice] = told
        assert notice.text == f"Job {first} completed on RunPod: 4 outputs, spent $0.31"
        assert notice.kind == "ok" and notice.job_id == first

        active[0] = True  # the user is looking at the window: the table says it
        end(svc, second, "failed", ended_message="failed on rp: out of memory; 0 of 1 runs")
        qtbot.waitUntil(lambda: watch.in_flight == [], timeout=WAIT_MS)
        assert len(told) == 1
        watch.close()
    finally:
        bridge.close()
        qtbot.waitUntil(lambda: not bridge._tasks, timeout=WAIT_MS)


def test_a_failure_is_told_with_the_first_sentence_of_the_drivers_words() -> None:
    message = rules.ended_message(
        "failed",
        provider="rp",
        runs=[{"index": 0, "status": "failed", "error": "CUDA out of memory"}],
        outputs=0,
        cost_usd=0.05,
        reason=None,
        job_id=12,
        released="the pod was released",
    )
    failed = JobEnd(12, "failed", "RunPod", "rp", 0, 0.05, message)
    assert ended_text(failed) == "Job 12 failed on RunPod: run 0: CUDA out of memory"
    free = JobEnd(3, "completed", "My box", "lan", 1, 0.0, "")
    assert ended_text(free) == "Job 3 completed on My box: 1 output, nothing was billed"

    told: list[Notice] = []
    active = [True]
    notifier = JobEndNotifier(told.append, active=lambda: active[0])
    assert notifier.left([12]) == []  # the first look
    notifier.look([12, 13])
    assert notifier.left([13]) == [12]
    assert notifier.tell(failed) is None and told == []
    active[0] = False
    sent = notifier.tell(failed)
    assert told == [sent] and sent is not None and sent.kind == "error"
