"""The desktop entry point: ``comfyvn-gui`` with no subcommand.

``main(argv)`` boots a QApplication with a qasync event loop, shows :class:`MainWindow` and
returns the exit code. ``--screenshot PNG [--page ...]`` renders the window offscreen to a PNG
and exits (docs/architecture.md, "Command line"). Qt is imported only once we know it can start,
so a machine without a display gets a short hint instead of Qt's abort.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from comfyvn_gui import __version__
from comfyvn_gui.core.desktop import APP_ID, icon_files
from comfyvn_gui.core.resources import resources_dir

if TYPE_CHECKING:
    import argparse
    import asyncio
    import socket

    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from .mainwindow import MainWindow

log = logging.getLogger(__name__)

PROG = "comfyvn-gui"
PAGE_CHOICES = (
    "remote-gpu",
    "jobs",
    "advisor",
    "workflows",
    "running",
    "offers",
)  # == mainwindow.PAGE_IDS (a test checks)
NO_DISPLAY_MESSAGE = (
    f"{PROG}: no display found. Run headless with QT_QPA_PLATFORM=offscreen {PROG}, "
    f"or save a picture with {PROG} --screenshot window.png; "
    f"the command-line tools ({PROG} providers ...) need no display."
)
EXPOSE_TIMEOUT_S = 10.0


def build_parser() -> argparse.ArgumentParser:
    import argparse  # (not at import: the usual start needs no parser)

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="ComfyVN GPU Manager: the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--screenshot",
        metavar="PNG",
        help="render the main window offscreen to this PNG file and exit",
    )
    parser.add_argument(
        "--page",
        choices=PAGE_CHOICES,
        default="remote-gpu",
        help="the page to show (default: %(default)s)",
    )
    return parser


def display_available(env: dict[str, str] | None = None, platform: str = sys.platform) -> bool:
    """False only where Qt would abort for want of a display (X11/Wayland systems)."""
    env = dict(os.environ) if env is None else env
    if platform in ("win32", "cygwin", "darwin"):
        return True
    return any(env.get(k) for k in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"))


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 1


def _check_screenshot_target(path: Path) -> str | None:
    """Why ``path`` cannot be written, or None (checked before Qt starts, to fail fast)."""
    if path.is_dir():
        return f"cannot write the screenshot to {path}: it is a folder; give a file name"
    folder = path.parent
    if not folder.is_dir():
        return f"cannot write the screenshot to {path}: the folder {folder} does not exist"
    if not os.access(folder, os.W_OK):
        return f"cannot write the screenshot to {path}: the folder {folder} is not writable"
    return None


def main(argv: list[str]) -> int:
    """Run the desktop app (or take a screenshot); returns the process exit code."""
    args: argparse.Namespace | SimpleNamespace
    if argv:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version or bad input: argparse already printed
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    else:  # the usual start: no parser to build (start-up time)
        args = SimpleNamespace(screenshot=None, page="remote-gpu")

    screenshot: Path | None = None
    if args.screenshot is not None:
        screenshot = Path(args.screenshot).expanduser().absolute()
        problem = _check_screenshot_target(screenshot)
        if problem:
            return _fail(problem)
        if not os.environ.get("QT_QPA_PLATFORM"):
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if not display_available():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return 1
    _configure_logging()
    return _run(args.page, screenshot)


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:  # the caller (e.g. the CLI) may have set logging up already
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


def _log_to_file() -> Path | None:
    """Also write warnings and errors to ``logs/gui.log`` in the home; None if impossible."""
    from comfyvn_gui.core.errors import OperationError
    from comfyvn_gui.store.paths import resolve_home

    home = resolve_home()
    try:
        home.ensure()
    except OperationError as exc:
        log.warning("not writing a log file: %s", exc.message)
        return None
    path = home.log_dir / "gui.log"
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return path


def _create_application() -> QApplication:
    from PySide6.QtWidgets import QApplication

    QApplication.setApplicationName(PROG)
    QApplication.setOrganizationName("ComfyVN")
    QApplication.setApplicationVersion(__version__)
    QApplication.setDesktopFileName(APP_ID)  # the menu entry's name: the desktop matches them
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication([PROG])
    app.setWindowIcon(_app_icon())
    app.setQuitOnLastWindowClosed(True)
    return app


def _app_icon() -> QIcon:
    """The app's icon (resources/icons/hicolor): the SVG, and each PNG size for small ones."""
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for path in icon_files(resources_dir()):
        if path.is_file():
            icon.addFile(str(path))
    return icon


#: Set to make the app print when its window was first painted and exit (benchmarks/); set to
#: ``cards`` to print when the Remote GPU page shows its providers' cards instead.
STARTUP_PROBE_ENV = "COMFYVN_GUI_STARTUP_PROBE"


def _run(page: str, screenshot: Path | None) -> int:
    import signal

    # Until the window has painted, Ctrl+C only sets a flag (the full handler needs socket,
    # and Qt is still being imported).
    early: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: early.append(signum))

    from .errors import ErrorReporter
    from .mainwindow import MainWindow

    app = _create_application()
    sigint: _QuitOnSigint | None = None
    reporter = ErrorReporter()
    reporter.install()
    result = 0
    try:
        window = MainWindow(
            remember_geometry=screenshot is None,
            monitor=screenshot is None,
            background_readvise=True,
            autoload=False,
        )
        reporter.error_reported.connect(window.notify_error)
        window.show_page(page)
        window.show()
        # The first paint, before asyncio, qasync, the service or any SDK is imported.
        deadline = time.monotonic() + EXPOSE_TIMEOUT_S
        while not window.painted and window.isVisible() and time.monotonic() < deadline:
            app.processEvents()
        probe = os.environ.get(STARTUP_PROBE_ENV)
        if probe and probe != "cards":
            _report_startup(window)
        signal.signal(signal.SIGINT, previous)
        sigint = _QuitOnSigint(app)  # Ctrl+C quits cleanly (geometry saved) from here on
        if early:  # Ctrl+C while the window was appearing
            window.close()
            return 0
        reporter.log_file = None if screenshot else _log_to_file()

        import asyncio

        from qasync import QEventLoop

        loop = QEventLoop(app)
        asyncio.set_event_loop(loop)
        closing = asyncio.Event()
        app.aboutToQuit.connect(closing.set)
        loop.set_exception_handler(reporter.asyncio_handler)
        try:
            _tune_threads()
            loop.call_soon(window.start)  # fill the pages, off the GUI thread
            loop.call_later(3.0, _tune_gc)
            shot: asyncio.Task[int] | None = None
            if screenshot is not None:
                shot = loop.create_task(_take_screenshot(window, screenshot))
            if probe == "cards":
                loop.create_task(_report_cards(window))
            with loop:
                loop.run_until_complete(closing.wait())
                # The window cancelled its work when it closed: let the tasks finish
                # cancelling before the loop closes (a clean shutdown, no stray errors).
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                if pending:
                    loop.run_until_complete(asyncio.wait(pending, timeout=5))
            if shot is not None:
                result = shot.result() if shot.done() and not shot.cancelled() else 1
        finally:
            asyncio.set_event_loop(None)
    finally:
        if sigint is not None:
            sigint.close()
        reporter.uninstall()
    return result


#: Python's switch interval in the app (seconds; Python's default is 0.005).
SWITCH_INTERVAL_S = 0.001


def _tune_threads() -> None:
    """A shorter switch interval: while a thread of the I/O pool runs Python (a read of
    10,000 jobs, a re-advice's results), the GUI thread waits up to the interval each time it
    needs the GIL, and one frame needs it many times. With 20 jobs running among 10,000
    (``benchmarks/live_jobs_bench.py``) the GUI's p95 lateness fell from ~2.4 to ~1 ms and the
    p99 from ~9 to ~6 ms; the pool's reads took no measurably longer."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def _tune_gc() -> None:
    """Fewer, cheaper garbage collections once the app has started: what exists now (Qt
    wrappers, the catalog, modules) is never collected, and young collections run less often.
    A full collection in a worker thread stops every thread, the GUI's included.

    Only the young generations are collected first: a full collection here found nothing to
    free (0 objects, measured) but held the GUI thread ~300 ms with 10,000 jobs loaded
    (``benchmarks/window_bench.py``)."""
    import gc

    gc.collect(1)
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _report_startup(window: MainWindow) -> None:
    """``COMFYVN_GUI_STARTUP_PROBE``: print when the window was painted, and what was loaded."""
    import json

    line = {
        "perf_counter": time.perf_counter(),
        "painted": window.painted,
        "modules": sorted(m for m in sys.modules if "." not in m),
        "size": [window.width(), window.height()],
    }
    sys.stdout.write("PAINTED " + json.dumps(line) + "\n")
    sys.stdout.flush()
    os._exit(0)


async def _report_cards(window: MainWindow) -> None:
    """``COMFYVN_GUI_STARTUP_PROBE=cards``: print (as :func:`_report_startup`) once the Remote
    GPU page has painted the cards of the registered providers, then exit."""
    import asyncio

    deadline = time.monotonic() + EXPOSE_TIMEOUT_S
    while time.monotonic() < deadline:
        page = window.remote
        if page is not None and any(not k.startswith("template:") for k in page.cards.keys()):
            await page.first_shown()
            break
        await asyncio.sleep(0.002)
    _report_startup(window)


async def _take_screenshot(window: MainWindow, path: Path) -> int:
    """Wait until the window is on screen, save it as PNG, print the path, close the window."""
    import asyncio

    try:
        deadline = time.monotonic() + EXPOSE_TIMEOUT_S
        handle = window.windowHandle()
        while handle is None or not handle.isExposed():
            if time.monotonic() > deadline:
                return _fail(f"the window was not shown within {EXPOSE_TIMEOUT_S:g} s")
            await asyncio.sleep(0.01)
            handle = window.windowHandle()
        while not window.is_loaded:  # the page fills itself off the GUI thread
            if time.monotonic() > deadline:
                log.warning("the page was still loading when the screenshot was taken")
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # let layouts and the first paint settle
        if not window.grab().save(str(path), "PNG"):
            return _fail(f"cannot write the screenshot to {path}")
        print(path)
        return 0
    finally:
        window.close()


class _QuitOnSigint:
    """Ctrl+C in the terminal quits cleanly (geometry saved) instead of being ignored.

    Qt's event loop runs in C++, so Python would only see the signal at the next Python
    callback; a wakeup socket watched by a QSocketNotifier makes that happen at once.
    """

    def __init__(self, app: QApplication) -> None:
        import signal
        import socket

        from PySide6.QtCore import QSocketNotifier

        self._app = app
        self._old_handler: object = None
        self._old_fd = -1
        self._notifier: QSocketNotifier | None = None
        self._socks: tuple[socket.socket, socket.socket] | None = None
        try:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self._socks = (reader, writer)
            self._old_fd = signal.set_wakeup_fd(writer.fileno())
            self._old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        except (OSError, ValueError):  # not the main thread, or no socketpair
            self.close()
            return
        self._notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._drain)

    requested = False

    def _on_sigint(self, _signum: int, _frame: object) -> None:
        # Only a flag: Qt is acted on from _drain, a normal Qt callback (touching Qt from a
        # signal handler that interrupted processEvents() can crash PySide).
        self.requested = True

    def _quit(self) -> None:
        self._app.closeAllWindows()  # each window saves its geometry
        self._app.quit()

    def _drain(self) -> None:  # running Python here lets the signal handler run
        if self._socks is not None:
            try:
                self._socks[0].recv(512)
            except OSError:
                pass
        if self.requested:
            self._quit()

    def close(self) -> None:
        import signal

        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier.deleteLater()
            self._notifier = None
        if self._old_handler is not None:
            signal.signal(signal.SIGINT, self._old_handler)  # type: ignore[arg-type]
            self._old_handler = None
        if self._socks is not None:
            signal.set_wakeup_fd(self._old_fd)
            for sock in self._socks:
                sock.close()
            self._socks = None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
