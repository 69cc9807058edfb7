"""The desktop shell: main window, navigation, geometry, error hook, screenshot, no display."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QThreadPool, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QLabel,
    QMenu,
    QMessageBox,
    QWidget,
)
from pytestqt.qtbot import QtBot
from qasync import QEventLoop, asyncSlot

from comfyvn_gui.gui import app as gui_app
from comfyvn_gui.gui.errors import ErrorReporter
from comfyvn_gui.gui.mainwindow import GEOMETRY_KEY, PAGE_IDS, MainWindow

# The Remote GPU page asks the keyring for its backend: use the real test keyring.
pytestmark = pytest.mark.usefixtures("secret_service")

REPO = Path(__file__).resolve().parents[2]
SUBPROCESS_TIMEOUT_S = 60


@pytest.fixture(scope="session")
def qloop(qapp: QApplication) -> Iterator[QEventLoop]:
    """One qasync loop for the whole session, bound to pytest-qt's QApplication.

    ``already_running=True`` makes it asyncio's running loop, so ``@asyncSlot`` coroutines
    run while qtbot spins Qt's event loop. A second QEventLoop on the same QApplication
    never runs its callbacks, hence one per session (shared/recipes/qt_qasync).
    """
    loop = QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)


def assert_nothing_left(threads_before: set[threading.Thread], *, join_s: float = 0) -> None:
    """No thread started since ``threads_before`` still runs (each may take ``join_s`` to end),
    Qt's thread pool is idle and no top-level widget has a running QTimer."""
    leaked_threads = set(threading.enumerate()) - threads_before
    if join_s:
        for thread in leaked_threads:
            thread.join(timeout=join_s)
        leaked_threads = {t for t in leaked_threads if t.is_alive()}
    assert not leaked_threads, f"threads left running: {leaked_threads}"
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    timers = [
        t
        for top in QApplication.topLevelWidgets()
        for t in top.findChildren(QTimer)
        if t.isActive()
    ]
    assert not timers, f"timers left running: {[t.objectName() or t for t in timers]}"


@pytest.fixture(autouse=True)
def no_leaks(qtbot: QtBot, qloop: QEventLoop) -> Iterator[None]:
    """Fail a test that leaves a thread, a running QTimer or a pending asyncio task behind."""
    threads_before = set(threading.enumerate())
    yield
    # (a closed SDK connection's thread may take a moment)
    assert_nothing_left(threads_before, join_s=5)
    pending = [t for t in asyncio.all_tasks(qloop) if not t.done()]
    assert not pending, f"asyncio tasks left running: {pending}"


def loaded(qtbot: QtBot, w: MainWindow) -> MainWindow:
    """Show ``w`` and wait until its pages have loaded (off the GUI thread)."""
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.is_loaded, timeout=10000)
    return w


def close(qtbot: QtBot, w: MainWindow) -> None:
    """Close ``w`` and wait until its cancelled work has ended."""
    w.close()
    qtbot.waitUntil(lambda: not w.bridge._tasks, timeout=10000)


@pytest.fixture
def window(qtbot: QtBot, app_home: Path) -> Iterator[MainWindow]:
    w = loaded(qtbot, MainWindow())
    yield w
    close(qtbot, w)


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _run_app(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "comfyvn_gui.gui.app", *args],
        env=env if env is not None else _env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )


# -- window and navigation ---------------------------------------------------------------------


def test_window_has_its_places_and_a_title(window: MainWindow) -> None:
    assert "ComfyVN" in window.windowTitle()
    assert [window.nav.item(i).text() for i in range(window.nav.count())] == [
        "Jobs",
        "Running",
        "Offers",
        "Settings",
    ]
    tabs = window.settings_tabs
    assert [tabs.tabText(i).replace("&", "") for i in range(tabs.count())] == [
        "Remote GPU",
        "Advisor",
        "Workflows",
    ]
    assert window.stack.count() == 4
    assert window.current_page() == "remote-gpu"
    assert window.stack.currentWidget() is tabs
    assert tabs.currentWidget() is window.pages["remote-gpu"]
    assert window.pages["advisor"].objectName() == "page-advisor"
    assert window.pages["jobs"].objectName() == "page-jobs"
    assert window.pages["running"].objectName() == "page-running"
    assert window.pages["offers"].objectName() == "page-offers"
    assert window.pages["workflows"].objectName() == "page-workflows"
    window.show_page("workflows")
    assert window.current_page() == "workflows"
    assert tabs.currentWidget() is window.pages["workflows"]
    assert window.stack.widget(0) is window.pages["jobs"]
    assert (window.width(), window.height()) == (1000, 650)


def test_the_cards_are_painted_before_the_other_pages_are_built(
    qtbot: QtBot, app_home: Path
) -> None:
    """Start-up is ordered by what the user sees: the providers' cards first (the service is
    imported in a worker meanwhile), then the Jobs and Advisor pages, the warm-up and the
    monitor."""
    from comfyvn_gui.service import Service

    svc = Service()
    for pid in ("studio-pod", "lan-box"):
        svc.create_provider("runpod" if pid == "studio-pod" else "lan", {"id": pid})
    order: list[tuple[str, list[str]]] = []
    w = MainWindow(service=svc)

    class PaintSpy(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if (
                event.type() == QEvent.Type.Paint
                and watched.objectName() == "provider-cards"
                and w.remote is not None
                and w.remote.cards.keys()  # (the empty list is painted before)
            ):
                order.append(("cards painted", w.remote.cards.keys()))
            return False

    spy = PaintSpy()
    app = QApplication.instance()
    assert app is not None
    app.installEventFilter(spy)
    w.pages_built.connect(lambda: order.append(("other pages built", [])))
    try:
        loaded(qtbot, w)
    finally:
        app.removeEventFilter(spy)
    steps = [step for step, _ in order]
    assert "cards painted" in steps and "other pages built" in steps, steps
    first_paint = steps.index("cards painted")
    assert first_paint < steps.index("other pages built"), steps
    assert {"studio-pod", "lan-box"} <= set(order[first_paint][1])
    close(qtbot, w)


def test_closing_while_the_window_starts_leaves_nothing_running(
    qtbot: QtBot, app_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w._load_task is not None, timeout=5000)
    w.close()  # (the service may still be being prepared in its worker)
    task = w._load_task
    assert task is not None
    qtbot.waitUntil(task.done, timeout=10000)
    qtbot.waitUntil(lambda: w.bridge is None or not w.bridge._tasks, timeout=10000)
    assert task.cancelled() or task.exception() is None
    assert w.jobs is None  # nothing more was built once it closed
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


def test_page_ids_match_the_command_line_choices() -> None:
    assert gui_app.PAGE_CHOICES == PAGE_IDS


def test_navigation_by_mouse_keyboard_and_show_page(window: MainWindow, qtbot: QtBot) -> None:
    nav = window.nav
    rect = nav.visualItemRect(nav.item(0))
    qtbot.mouseClick(nav.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.current_page() == "jobs"

    nav.setFocus()
    qtbot.keyClick(nav, Qt.Key.Key_Down)
    assert window.current_page() == "running"
    qtbot.keyClick(nav, Qt.Key.Key_Down)
    assert window.current_page() == "offers"
    qtbot.keyClick(nav, Qt.Key.Key_Down)
    assert window.current_page() == "remote-gpu"
    qtbot.keyClick(nav, Qt.Key.Key_Home)
    assert window.current_page() == "jobs"
    assert window.stack.currentWidget() is window.pages["jobs"]

    window.show_page("advisor")
    assert nav.currentRow() == 3
    assert window.settings_tabs.currentWidget() is window.pages["advisor"]
    assert window.current_page() == "advisor"
    with pytest.raises(ValueError, match="unknown page 'settings'"):
        window.show_page("settings")
    assert window.current_page() == "advisor"
    window.show_page("remote-gpu")
    assert window.current_page() == "remote-gpu"


def test_view_menu_shortcuts_switch_pages(window: MainWindow, qtbot: QtBot) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    qtbot.keyClick(window.nav, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page() == "jobs"
    qtbot.keyClick(window.nav, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page() == "advisor"
    assert window.quit_action.shortcut().toString() == "Ctrl+Q"


def test_quit_closes_the_window(window: MainWindow, qtbot: QtBot) -> None:
    window.quit_action.trigger()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=2000)


def test_about_is_non_modal_and_single(window: MainWindow, qtbot: QtBot) -> None:
    window.about_action.trigger()
    box = window.findChild(QMessageBox, "about-box")
    assert box is not None
    qtbot.waitUntil(box.isVisible, timeout=2000)
    assert box.windowModality() == Qt.WindowModality.NonModal
    assert QApplication.activeModalWidget() is None
    assert "0.1.0" in box.text()
    window.show_about()
    assert window.findChildren(QMessageBox) == [box]
    window.nav.setCurrentRow(0)  # the main window still works while it is open
    assert window.current_page() == "jobs"
    box.button(QMessageBox.StandardButton.Close).click()
    qtbot.waitUntil(lambda: not window.findChildren(QMessageBox), timeout=2000)


def test_every_visible_widget_has_an_accessible_name_or_text(window: MainWindow) -> None:
    window.show_about()
    checked = 0
    for widget in [window, *window.findChildren(QWidget)]:
        if not widget.isVisible() or widget.objectName().startswith("qt_"):
            continue  # hidden, or Qt's own internals (scroll area viewports and the like)
        has_text = isinstance(widget, QLabel | QAbstractButton) and bool(widget.text())
        assert widget.accessibleName() or has_text, (
            f"{type(widget).__name__} {widget.objectName()!r} has no accessible name"
        )
        checked += 1
    assert checked >= 12
    for action in window.menuBar().actions():
        assert action.text()
        menu = action.menu()
        assert isinstance(menu, QMenu)
        for sub in menu.actions():
            assert sub.text()
            assert sub.statusTip()
    for i in range(window.nav.count()):
        assert window.nav.item(i).data(Qt.ItemDataRole.AccessibleTextRole)


# -- geometry ----------------------------------------------------------------------------------


def test_geometry_is_saved_to_the_home_and_restored(qtbot: QtBot, app_home: Path) -> None:
    first = loaded(qtbot, MainWindow())
    # (offscreen's virtual screen is 800x600 and restoring clamps to it)
    first.setGeometry(40, 60, 744, 497)
    qtbot.waitUntil(lambda: first.size().width() == 744, timeout=2000)
    close(qtbot, first)

    ini = app_home / "config" / "gui.ini"
    assert ini.is_file()
    assert QSettings(str(ini), QSettings.Format.IniFormat).value(GEOMETRY_KEY)

    second = loaded(qtbot, MainWindow())
    assert (second.width(), second.height()) == (744, 497)
    # the position comes back within the (offscreen) frame's margins
    assert abs(second.x() - 40) <= 4
    assert abs(second.y() - 60) <= 4
    close(qtbot, second)


def test_screenshot_window_does_not_touch_the_settings(qtbot: QtBot, app_home: Path) -> None:
    w = loaded(qtbot, MainWindow(remember_geometry=False))
    close(qtbot, w)
    written = [p.name for p in app_home.rglob("*") if p.is_file()] if app_home.exists() else []
    assert [n for n in written if not n.endswith(".lock")] == []


def test_a_broken_settings_file_is_ignored(qtbot: QtBot, app_home: Path) -> None:
    ini = app_home / "config" / "gui.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[mainwindow]\ngeometry=@ByteArray(garbage)\n", encoding="utf-8")
    w = loaded(qtbot, MainWindow())
    assert (w.width(), w.height()) == (1000, 650)
    close(qtbot, w)


# -- unexpected errors -------------------------------------------------------------------------


@pytest.fixture
def reporter(window: MainWindow, app_home: Path) -> Iterator[ErrorReporter]:
    rep = ErrorReporter(log_file=app_home / "logs" / "gui.log")
    rep.error_reported.connect(window.notify_error)
    rep.install()
    try:
        yield rep
    finally:
        rep.uninstall()
        rep.deleteLater()


def _status(window: MainWindow) -> str:
    return window.statusBar().currentMessage()


def test_excepthook_logs_and_notifies_without_a_modal(
    window: MainWindow, reporter: ErrorReporter, qtbot: QtBot, caplog: pytest.LogCaptureFixture
) -> None:
    assert sys.excepthook == reporter.excepthook

    def broken_slot() -> None:
        raise RuntimeError("the provider list is on fire")

    QTimer.singleShot(0, broken_slot)  # an exception in a Qt slot ends in sys.excepthook
    qtbot.waitUntil(lambda: "on fire" in _status(window), timeout=3000)
    message = _status(window)
    assert message.startswith("Something went wrong: RuntimeError: the provider list is on fire")
    assert "gui.log" in message
    assert "Traceback" not in message
    assert QApplication.activeModalWidget() is None
    assert window.isVisible()
    records = [r for r in caplog.records if r.levelname == "ERROR"]
    assert records
    assert records[-1].exc_info
    assert records[-1].exc_info[0] is RuntimeError


def test_async_slot_and_thread_errors_reach_the_window(
    window: MainWindow, reporter: ErrorReporter, qtbot: QtBot, caplog: pytest.LogCaptureFixture
) -> None:
    class Page(QObject):
        @asyncSlot()  # type: ignore[untyped-decorator]
        async def refresh(self) -> None:
            await asyncio.sleep(0)
            raise LookupError("no such job")

    page = Page()
    page.refresh()  # qasync hands the coroutine's exception to sys.excepthook
    qtbot.waitUntil(lambda: "LookupError: no such job" in _status(window), timeout=3000)

    def broken_worker() -> None:
        raise ValueError("worker failed")

    worker = threading.Thread(target=broken_worker)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: "ValueError: worker failed" in _status(window), timeout=3000)
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 2


def test_domain_errors_show_their_own_message(window: MainWindow, reporter: ErrorReporter) -> None:
    from comfyvn_gui.core.errors import OperationError

    exc = OperationError("the keyring is locked; unlock it and try again")
    reporter.excepthook(OperationError, exc, None)
    assert "Something went wrong: the keyring is locked" in _status(window)
    reporter.excepthook(ValueError, ValueError("x" * 1000 + "\nsecond line"), None)
    assert "xxx…" in _status(window)
    assert len(_status(window).split(" (the details are in")[0]) < 250
    assert "second line" not in _status(window)


def test_uninstall_restores_the_previous_hooks(qtbot: QtBot) -> None:
    before = (sys.excepthook, threading.excepthook)
    rep = ErrorReporter()
    rep.install()
    assert sys.excepthook != before[0]
    rep.uninstall()
    assert (sys.excepthook, threading.excepthook) == before


# -- command line ------------------------------------------------------------------------------


def test_screenshot_writes_a_png_of_the_chosen_page(tmp_path: Path, app_home: Path) -> None:
    png = tmp_path / "shot.png"
    result = _run_app("--screenshot", str(png), "--page", "jobs", env=_env(QT_QPA_PLATFORM=None))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(png)
    assert "Traceback" not in result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1000, 650)
    colours = {image.pixel(x, y) for x in range(0, 1000, 3) for y in range(0, 650, 3)}
    assert len(colours) > 10
    # A screenshot writes nothing to the home (reading the registry may leave its lock).
    written = [p.name for p in app_home.rglob("*") if p.is_file()] if app_home.exists() else []
    assert [n for n in written if not n.endswith(".lock")] == []

    other = tmp_path / "advisor.png"
    result = _run_app("--screenshot", str(other), "--page", "advisor")
    assert result.returncode == 0, result.stderr
    assert QImage(str(other)) != image  # --page picked another page


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_the_app_runs_and_ctrl_c_quits_cleanly(app_home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "comfyvn_gui.gui.app", "--page", "advisor"],
        env=_env(QT_QPA_PLATFORM="offscreen"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The log folder is made once the Ctrl+C handler is in place.
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
        while not (app_home / "logs").is_dir() and proc.poll() is None:
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert err == ""
    assert (app_home / "config" / "gui.ini").is_file()  # the window saved its geometry


def test_screenshot_into_a_missing_folder_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing" / "shot.png"
    assert gui_app.main(["--screenshot", str(target)]) == 1
    err = capsys.readouterr().err
    assert "cannot write the screenshot" in err
    assert "does not exist" in err
    assert not target.exists()


def test_no_display_gives_a_hint_instead_of_a_crash() -> None:
    env = _env(DISPLAY=None, WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None)
    result = _run_app(env=env)
    assert result.returncode == 1
    assert "no display found" in result.stderr
    assert "QT_QPA_PLATFORM=offscreen" in result.stderr
    assert "--screenshot" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Aborted" not in result.stderr


def test_display_detection() -> None:
    assert not gui_app.display_available({}, "linux")
    assert gui_app.display_available({"DISPLAY": ":0"}, "linux")
    assert gui_app.display_available({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert gui_app.display_available({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert gui_app.display_available({}, "win32")
    assert gui_app.display_available({}, "darwin")


def test_version_help_and_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert gui_app.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "comfyvn-gui 0.1.0"
    assert gui_app.main(["--page", "settings"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert gui_app.main(["--help"]) == 0
    assert "--screenshot PNG" in capsys.readouterr().out


def test_orphans_at_a_provider_are_told_after_the_first_paint(qtbot: QtBot, app_home: Path) -> None:
    """A pod of this home that no job owns (the app died after renting it) is found in the
    background once the window shows, and the status bar says how to release it."""
    from comfyvn_gui.service import Service
    from tests.fakes.runpod_pods import RunPodPodsFake

    with RunPodPodsFake() as fake:
        svc = Service()
        svc.create_provider(
            "runpod",
            {
                "id": "rp",
                "config": {"endpoints": {"graphql": fake.graphql_url}},
                "secrets": {"api_key": fake.key},
            },
        )
        fake.add_pod(f"comfyvn-{svc.home.home_id()}-job7")
        w = loaded(qtbot, MainWindow(service=svc, monitor=True))
        qtbot.waitUntil(lambda: "no job owns" in w.statusBar().currentMessage(), timeout=20000)
        message = w.statusBar().currentMessage()
        assert "rp:" in message and "running stop --orphans" in message
        close(qtbot, w)


def test_closing_with_jobs_in_flight_says_they_go_on_in_the_background(
    qtbot: QtBot, app_home: Path, tmp_path: Path
) -> None:
    """File → Quit (or the close button) while a job runs: the window says how many jobs go
    on and how to follow them, then closes once that is read ("Keep it open" keeps it)."""
    from comfyvn_gui.service import Service
    from tests.service.test_dispatch import project, summary

    svc = Service()
    [job] = svc.import_summary(summary(), str(project(tmp_path / "project")))
    moved = svc.job_store.change_status(  # (as a dispatch would; no driver runs)
        job.id, expected=["queued"], status="running", actor="system", message="test"
    )
    assert moved is not None
    w = loaded(qtbot, MainWindow(service=svc))
    watch = w.job_ends
    assert watch is not None
    qtbot.waitUntil(lambda: watch.in_flight == [job.id], timeout=10000)

    def box() -> QMessageBox:
        qtbot.waitUntil(
            lambda: any(b.isVisible() for b in w.findChildren(QMessageBox, "close-running-jobs")),
            timeout=5000,
        )
        [found] = [b for b in w.findChildren(QMessageBox, "close-running-jobs") if b.isVisible()]
        return found

    w.quit_action.trigger()
    first = box()
    assert first.text() == "1 job continues in the background."
    assert f"comfyvn-gui jobs watch {job.id}" in first.informativeText()
    assert "open the app again" in first.informativeText()
    [keep] = [b for b in first.buttons() if b.text() == "Keep it open"]
    keep.click()
    qtbot.wait(50)
    assert w.isVisible()

    w.quit_action.trigger()
    [go] = [b for b in box().buttons() if b.text() == "Close the window"]
    go.click()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=5000)
    qtbot.waitUntil(lambda: not w.bridge._tasks, timeout=10000)
    assert svc.get_job(job.id).status == "running"  # (the driver would keep it going)
