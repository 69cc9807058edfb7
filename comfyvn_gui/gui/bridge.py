"""The GUI's one way to the service: blocking calls off the GUI thread, changes as signals.

Everything that can wait on a disk, the keyring or a network (the registry, the keyring, the
checks, the NVML snapshot) runs in the service's I/O pool and is awaited from the qasync loop,
so the window never freezes (docs/architecture.md, "GUI"). The bridge also watches the home's
registry, settings, check results and job queue (QFileSystemWatcher), so a change made by the
command line or the API server shows in the window without a restart.

A change the window makes itself (:meth:`ServiceBridge.write`, :meth:`ServiceBridge.check`) is
announced by the bridge as soon as it is done, once; the watcher's later notification of the
same change is then ignored: the bridge compares each watched file's state (inode, size,
modification time) with the state it last announced, and only a file whose state
differs counts as changed. Notifications that arrive while such a write runs wait until it is
done, so a change another process makes meanwhile is announced with it, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

from comfyvn_gui.service import Service

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Several writes in a row (an import, a round of checks) make one refresh.
COALESCE_MS = 150

#: What tells two versions of a watched file's content apart: (inode, size, mtime_ns); None
#: while the file does not exist. An atomic write replaces the inode, SQLite writes in place;
#: not the change time, which a new SQLite connection may bump (owner, mode) without a write.
FileState = tuple[int, int, int] | None

#: The order the change signals are emitted in (a page that listens to several reloads once).
KINDS: tuple[str, ...] = ("providers", "results", "jobs", "prices")


def file_state(path: str) -> FileState:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class ServiceBridge(QObject):
    """Runs service calls off the GUI thread and tells the window what changed."""

    providers_changed = Signal()
    results_changed = Signal()
    jobs_changed = Signal()
    #: The kept live prices changed (a refresh here, in the background or in another process).
    prices_changed = Signal()

    def __init__(self, service: Service | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.service = service or Service()
        self._closed = False
        self._watcher: QFileSystemWatcher | None = None
        #: Watched file -> the kind of change it signals, and the state last announced.
        self._files: dict[str, str] = {}
        self._known: dict[str, FileState] = {}
        self._writing = 0
        self._timer = QTimer(self)
        self._timer.setObjectName("bridge-coalesce")
        self._timer.setSingleShot(True)
        self._timer.setInterval(COALESCE_MS)
        self._timer.timeout.connect(self._flush)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: Any = None

    # -- calls ---------------------------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the service's I/O pool, awaited on the GUI's loop."""
        if self._closed:
            raise RuntimeError("the window is closing")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.service.io_pool, functools.partial(fn, *args, **kwargs)
        )

    def spawn(self, coro: Any, *, name: str | None = None) -> asyncio.Task[Any]:
        """Run a coroutine on the loop, kept alive until done and cancelled on close.

        Once the bridge is closed nothing new starts: the coroutine is discarded and the
        returned task is already cancelled."""
        loop = asyncio.get_event_loop()
        if self._closed:
            coro.close()

            async def nothing() -> None:
                return None

            dead = loop.create_task(nothing(), name=name)
            dead.cancel()
            return dead
        task: asyncio.Task[Any] = loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """:meth:`call` for a change to the home (a save, a removal, an import, a pick, a
        setting): once it is done the bridge emits the change signals of the files it changed
        (before this returns, so a page that reloads right after reads once), and the file
        watcher's notification of the same change is ignored."""
        with self._own_changes():
            return await self.call(fn, *args, **kwargs)

    @contextlib.contextmanager
    def _own_changes(self) -> Iterator[None]:
        self._writing += 1
        try:
            yield
        finally:
            self._writing -= 1
            if not self._writing:
                self._announce()

    # -- checks on their own event loop ---------------------------------------------------------

    def _checks_loop(self) -> asyncio.AbstractEventLoop:
        """A second asyncio loop, in a worker thread, for the provider checks: a hundred
        concurrent HTTPS exchanges would otherwise run on the GUI's loop and stall it."""
        if self._loop is None:
            import threading

            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._loop_thread = threading.Thread(target=run, name="comfyvn-checks", daemon=True)
            self._loop_thread.start()
            ready.wait(5)
            self._loop = loop
        return self._loop

    async def in_background(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` (a coroutine function) run on the checks' loop;
        cancelling the caller cancels it there."""
        if self._closed:
            raise RuntimeError("the window is closing")
        future = asyncio.run_coroutine_threadsafe(fn(*args, **kwargs), self._checks_loop())
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    async def check(self, kind: str, ids: list[str] | None = None) -> Any:
        """``Service.check`` on the checks' loop (never on the GUI's); the results it records
        are announced as a :meth:`write`'s are."""
        with self._own_changes():
            return await self.in_background(self.service.check, kind, ids)

    async def run_monitor(self) -> None:
        """The health monitor, on the checks' loop, until cancelled."""

        async def monitor() -> None:
            await self.service.monitor.run_forever(asyncio.Event())

        await self.in_background(monitor)

    def _stop_checks_loop(self) -> None:
        loop, thread = self._loop, self._loop_thread
        self._loop = self._loop_thread = None
        if loop is None or thread is None:
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout=30)
        except Exception:
            log.warning("the checks did not stop in time", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        if not thread.is_alive():
            loop.close()

    # -- watching the home ---------------------------------------------------------------------

    def watch(self) -> None:
        """Follow changes other processes make to the registry, the settings, the results and
        the jobs."""
        if self._watcher is not None:
            return
        home = self.service.home
        try:
            home.ensure()  # (the folders must exist to be watched)
        except Exception:  # noqa: BLE001 - an unwritable home: nothing to watch
            log.warning("cannot watch %s for changes", home.config_dir.parent)
        self._files = {str(path): what for path, what in self.service.watched_files().items()}
        self._known = {f: file_state(f) for f in self._files}
        self._watcher = QFileSystemWatcher(self)
        self._watcher.setObjectName("home-watcher")
        # Watch the folders too: an atomic write replaces the file (a new inode).
        folders = {str(Path(f).parent) for f in self._files}
        for folder in sorted(folders):
            if Path(folder).is_dir():
                self._watcher.addPath(folder)
        self._rewatch_files()
        self._watcher.fileChanged.connect(self._on_path_changed)
        self._watcher.directoryChanged.connect(self._on_path_changed)

    def _rewatch_files(self) -> None:
        if self._watcher is None:
            return
        watched = set(self._watcher.files())
        for f in self._files:
            if f not in watched and Path(f).exists():
                self._watcher.addPath(f)

    def _on_path_changed(self, _path: str) -> None:
        # A file or a folder (an atomic write replaces the file): which watched file changed,
        # if any, is found out by comparing their states when the timer fires.
        self._rewatch_files()
        if not self._closed:
            self._timer.start()

    def _flush(self) -> None:
        if self._writing:
            return  # announced when the window's own write is done (_own_changes)
        self._announce()

    def _announce(self) -> None:
        """Emit the signal of each kind whose files changed since they were last announced."""
        if self._watcher is None or self._closed:
            return
        changed: set[str] = set()
        for path, kind in self._files.items():
            state = file_state(path)
            if state != self._known.get(path):
                self._known[path] = state
                changed.add(kind)
        signals = {
            "providers": self.providers_changed,
            "results": self.results_changed,
            "jobs": self.jobs_changed,
            "prices": self.prices_changed,
        }
        for kind in KINDS:
            if kind in changed:
                signals[kind].emit()

    # -- shutdown ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Cancel running work, wait for it, stop the workers (the clean shutdown)."""
        self._closed = True
        self._timer.stop()
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._stop()

    def close(self) -> None:
        """Synchronous close (the loop may be gone): cancel tasks, stop the workers."""
        self._closed = True
        self._timer.stop()
        for t in list(self._tasks):
            t.cancel()
        self._stop()

    def _stop(self) -> None:
        self._stop_checks_loop()
        if self._watcher is not None:
            self._watcher.deleteLater()
            self._watcher = None
        self.service.close()


def _log_failure(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        # The excepthook shows it to the user (non-modal) and logs the traceback.
        import sys

        sys.excepthook(type(exc), exc, exc.__traceback__)
