"""Telling the user that a job ended while the window was in the background
(docs/architecture.md, "GUI").

Two parts, so the decision and the words are tested without a system tray (the offscreen
platform has none):

* :class:`JobEndNotifier`, plain Python: which jobs left flight (``submitting`` / ``running``)
  since the last look, and, for each that ended while the window is not active, one sentence
  handed to its *sink* — "Job 12 completed on RunPod: 4 outputs, spent $0.31", "Job 12 failed
  on RunPod: <the first sentence of the driver's ended message>";
* :class:`JobEndWatch`, the Qt side: it looks again whenever the bridge says the job queue
  changed (reading off the GUI thread: which jobs are in flight is one column of the queue, and
  only the jobs that left flight are read whole), and sends each notice to the system tray
  where there is one (``QSystemTrayIcon.showMessage``), else to the window's banner.

The words of an end are the driver's (``core/dispatch.ended_message``, kept in
``meta.dispatch.ended_message``); this module only shortens them. Shared: it imports no page
and not the window.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication, QStyle, QSystemTrayIcon, QWidget

from comfyvn_gui.core import wording
from comfyvn_gui.core.errors import ComfyVNError
from comfyvn_gui.core.jobs import ENDED, IN_FLIGHT, Job
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.reads import CoalescedRead

__all__ = ["JobEnd", "JobEndNotifier", "JobEndWatch", "Notice", "ended_text", "job_end"]

#: How long a tray message stays up (ms; the platform may shorten it).
TRAY_MS = 10_000


@dataclass(frozen=True)
class JobEnd:
    """How one job ended, as the driver recorded it."""

    job_id: int
    status: str  # completed | failed | cancelled
    provider: str  # the provider's name as the user gave it (its id when it is gone)
    provider_id: str
    outputs: int
    cost_usd: float | None
    message: str  # the driver's ended message ("" when the job ended without the driver)


@dataclass(frozen=True)
class Notice:
    """One notification: a title, one sentence, and its kind (ok | error | info)."""

    title: str
    text: str
    kind: str
    job_id: int


def job_end(job: Job, provider_name: str | None = None) -> JobEnd:
    """A :class:`JobEnd` from an ended job's ``meta.dispatch``."""
    record: Mapping[str, Any] = job.meta.get("dispatch") or {}
    provider_id = str(record.get("provider") or (job.compute.provider if job.compute else "?"))
    cost = record.get("actual_cost_usd")
    return JobEnd(
        job_id=job.id,
        status=job.status,
        provider=provider_name or provider_id,
        provider_id=provider_id,
        outputs=len(record.get("outputs") or []),
        cost_usd=float(cost) if isinstance(cost, int | float) else None,
        message=str(record.get("ended_message") or record.get("last_error") or ""),
    )


def _first_sentence(end: JobEnd) -> str:
    """The ended message without its head ("failed on rented: "), up to its first stop."""
    text = end.message.strip()
    head = f"{end.status} on {end.provider_id}"
    if text.startswith(head):
        _, sep, rest = text.partition(": ")
        text = rest if sep else ""
    first = re.split(r"; |\. (?=[A-Z`])", text, maxsplit=1)[0].strip().rstrip(".")
    return first


def ended_text(end: JobEnd) -> str:
    """'Job 12 completed on RunPod: 4 outputs, spent $0.31'; 'Job 12 failed on RunPod: ...'."""
    where = f"Job {end.job_id} {end.status} on {end.provider}"
    if end.status == "completed":
        got = wording.counted(end.outputs, "output", "outputs")
        spent = (
            f"spent {wording.cost(end.cost_usd)}"
            if end.cost_usd and end.cost_usd > 0
            else "nothing was billed"
        )
        return f"{where}: {got}, {spent}"
    why = _first_sentence(end)
    return f"{where}: {why}" if why else f"{where}."


class JobEndNotifier:
    """Which jobs left flight since the last look, and what to tell about each that ended.

    ``sink`` receives a :class:`Notice` for each job that ended while ``active()`` is False
    (the window is in the background); nothing is sent while the window is active (the user
    sees the table change)."""

    def __init__(self, sink: Callable[[Notice], None], *, active: Callable[[], bool]) -> None:
        self.sink = sink
        self.active = active
        #: The jobs in flight at the last look (None before the first).
        self.in_flight: frozenset[int] | None = None

    def left(self, in_flight: Iterable[int]) -> list[int]:
        """The jobs in flight at the last look that are not any more (none at the first)."""
        if self.in_flight is None:
            return []
        return sorted(self.in_flight - set(in_flight))

    def look(self, in_flight: Iterable[int]) -> None:
        """Remember the jobs in flight now."""
        self.in_flight = frozenset(in_flight)

    def tell(self, end: JobEnd) -> Notice | None:
        """Send ``end`` to the sink if the window is in the background; the notice sent."""
        if end.status not in ENDED or self.active():
            return None
        kind = {"completed": "ok", "failed": "error"}.get(end.status, "info")
        notice = Notice(f"Job {end.job_id} {end.status}", ended_text(end), kind, end.job_id)
        self.sink(notice)
        return notice


class JobEndWatch(QObject):
    """The Qt side of :class:`JobEndNotifier`: looks when the job queue changes, off the GUI
    thread; shows each notice in the system tray, or hands it to ``fallback`` (the window's
    banner) where there is no tray. ``active`` defaults to "the application and ``window``
    are active"."""

    def __init__(
        self,
        bridge: ServiceBridge,
        window: QWidget,
        fallback: Callable[[Notice], None],
        *,
        active: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(window)
        self.setObjectName("job-end-watch")
        self.bridge = bridge
        self.window = window
        self.fallback = fallback
        self.notifier = JobEndNotifier(self._send, active=active or self._window_active)
        self.tray: QSystemTrayIcon | None = None
        self.sent: list[Notice] = []
        self.reads = CoalescedRead(
            bridge, self._read, self._apply, name="job-ends", failed=self._unreadable
        )
        self._closed = False
        bridge.jobs_changed.connect(self.look)

    # -- looking -------------------------------------------------------------------------------

    def look(self) -> Any:
        """Look at the queue again (coalesced); the first look only remembers."""
        if self._closed:
            return None
        return self.reads.request()

    @property
    def in_flight(self) -> list[int]:
        """The jobs in flight at the last look (none before it)."""
        return sorted(self.notifier.in_flight or ())

    def _read(self) -> tuple[list[int], list[JobEnd]]:
        # (in the bridge's pool: one column of the queue, then only the jobs that left flight)
        svc = self.bridge.service
        now = list(svc.job_providers(IN_FLIGHT))
        ends = []
        names: dict[str, str] = {}
        for job_id in self.notifier.left(now):
            try:
                job = svc.get_job(job_id)
            except ComfyVNError:  # removed meanwhile
                continue
            if job.status not in ENDED:
                continue
            end = job_end(job)
            if end.provider_id not in names:
                try:
                    names[end.provider_id] = svc.get_provider(end.provider_id).name
                except (ComfyVNError, LookupError):
                    names[end.provider_id] = end.provider_id
            ends.append(job_end(job, names[end.provider_id]))
        return now, ends

    def _apply(self, state: tuple[list[int], list[JobEnd]]) -> None:
        now, ends = state
        self.notifier.look(now)
        if self._closed:
            return
        for end in ends:
            self.notifier.tell(end)

    def _unreadable(self, exc: ComfyVNError) -> None:
        import logging

        logging.getLogger(__name__).info("job ends not looked at: %s", exc.message)

    # -- telling -------------------------------------------------------------------------------

    def _window_active(self) -> bool:
        state = QGuiApplication.applicationState()
        return state == Qt.ApplicationState.ApplicationActive and self.window.isActiveWindow()

    def _send(self, notice: Notice) -> None:
        self.sent.append(notice)
        if QSystemTrayIcon.isSystemTrayAvailable():
            tray = self._tray()
            icon = {
                "ok": QSystemTrayIcon.MessageIcon.Information,
                "error": QSystemTrayIcon.MessageIcon.Critical,
            }.get(notice.kind, QSystemTrayIcon.MessageIcon.Information)
            tray.showMessage(notice.title, notice.text, icon, TRAY_MS)
        else:
            self.fallback(notice)

    def _tray(self) -> QSystemTrayIcon:
        if self.tray is None:
            icon = self.window.windowIcon()
            if icon.isNull():
                app = QApplication.instance()
                style = app.style() if isinstance(app, QApplication) else None
                icon = (
                    style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxInformation)
                    if style is not None
                    else QIcon()
                )
            self.tray = QSystemTrayIcon(icon, self)
            self.tray.setObjectName("job-end-tray")
            self.tray.setToolTip(self.window.windowTitle())
            self.tray.activated.connect(self._raise_window)
            self.tray.messageClicked.connect(self._raise_window)
            self.tray.show()
        return self.tray

    def _raise_window(self, *_args: Any) -> None:
        if self._closed:
            return
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()

    def close(self) -> None:
        """Stop looking and take the tray icon away (the window is closing)."""
        self._closed = True
        try:
            self.bridge.jobs_changed.disconnect(self.look)
        except (RuntimeError, TypeError):  # (already disconnected)
            pass
        if self.tray is not None:
            self.tray.hide()
            self.tray.deleteLater()
            self.tray = None
