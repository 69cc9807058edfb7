"""The main window: its places in a navigation list on the left — **Jobs**, **Running**,
**Offers** and **Settings** (tabs "Remote GPU" and "Advisor") — and the page on the right,
under the window's banner (orphans found at a provider, a job that ended where there is no
system tray).

Closing the window while jobs are in flight says first how many go on in the background (the
detached dispatch driver keeps them going) and how to follow them.

The window is shown before anything slow happens: the Remote GPU page loads the registry, the
keyring status and the NVML snapshot afterwards, off the GUI thread (:mod:`.bridge`), and no
cloud SDK is imported until a check needs one. The geometry is remembered in an ini file in the
home's config folder (docs/architecture.md, "Storage"); a first run greets the user.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QGuiApplication,
    QKeySequence,
    QPalette,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QSizeGrip,
    QStackedWidget,
    QStatusBar,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from comfyvn_gui import __version__
from comfyvn_gui.core.errors import ComfyVNError
from comfyvn_gui.store.paths import resolve_home

from .widgets.banner import Banner

if TYPE_CHECKING:  # imported after the first paint (start-up time): see build_pages
    import asyncio

    from comfyvn_gui.service import Service

    from .advisor.page import AdvisorPage
    from .bridge import ServiceBridge
    from .jobs.page import JobsPage
    from .notifier import JobEndWatch, Notice
    from .offers.page import OffersPage
    from .remote_gpu.page import RemoteGpuPage
    from .running.page import RunningPage
    from .settings.workflows import WorkflowsPage

log = logging.getLogger(__name__)
T = TypeVar("T")

WINDOW_TITLE = "ComfyVN GPU Manager"
DEFAULT_SIZE = (1000, 650)
GEOMETRY_KEY = "mainwindow/geometry"
STATE_KEY = "mainwindow/state"
GREETED_KEY = "firstrun/greeted"


class PageSpec(NamedTuple):
    """One page: its stable id (``--page``), title and what it holds."""

    id: str
    title: str
    summary: str


PAGES: tuple[PageSpec, ...] = (
    PageSpec(
        "remote-gpu",
        "Remote GPU",
        "Register remote GPU providers (RunPod, Vast.ai, Lambda, AWS, Azure, Google Cloud, "
        "CoreWeave, Paperspace, LAN and SSH nodes), store their keys in the OS keyring and "
        "validate them.",
    ),
    PageSpec(
        "jobs",
        "Jobs",
        "The ComfyVN importer jobs (voice synthesis, CG remix and super-resolution, "
        "translation, ComfyUI workflows), where each one would run and what it would cost.",
    ),
    PageSpec(
        "advisor",
        "Advisor",
        "The compute advisor's defaults: budget per job, latency, allowed residency zones.",
    ),
    PageSpec(
        "workflows",
        "Workflows",
        "The ComfyUI graph each kind of job runs: the shipped template or your own.",
    ),
    PageSpec(
        "running",
        "Running",
        "Every machine, pod, key and volume this home holds at the providers, with its job, "
        "age and cost so far; orphans and leaked ones marked, and stopping them.",
    ),
    PageSpec(
        "offers",
        "Offers",
        "Every GPU you can rent now, cheapest first: your providers' live prices and the "
        "catalog's, filtered by VRAM, GPU, zone and price; add a provider from its row.",
    ),
)
PAGE_IDS: tuple[str, ...] = tuple(p.id for p in PAGES)


#: The navigation's places: (id, title, what it holds).
PLACES: tuple[tuple[str, str, str], ...] = (
    ("jobs", "Jobs", PAGES[1].summary),
    ("running", "Running", PAGES[4].summary),
    ("offers", "Offers", PAGES[5].summary),
    (
        "settings",
        "Settings",
        "Remote GPU providers, the advisor's defaults and dispatch guards, the workflows",
    ),
)
#: Where each page id of ``--page`` lives: (place, settings tab index or None).
PAGE_PLACES: dict[str, tuple[str, int | None]] = {
    "jobs": ("jobs", None),
    "running": ("running", None),
    "offers": ("offers", None),
    "remote-gpu": ("settings", 0),
    "advisor": ("settings", 1),
    "workflows": ("settings", 2),
}


class MainWindow(QMainWindow):
    """The application window.

    ``settings_file``: the ini file that remembers the window geometry (default: the home's
    ``config/gui.ini``); ``remember_geometry=False`` neither reads nor writes it (screenshots).
    ``service``: the home's service (default: a new one for the current home).
    ``autoload``: load the Remote GPU page when first shown; ``monitor``: run the health
    monitor while the window is open (the app does; tests and screenshots do not);
    ``background_readvise``: re-advise queued jobs in a child process (the app does).
    """

    def __init__(
        self,
        settings_file: Path | None = None,
        *,
        remember_geometry: bool = True,
        service: Service | None = None,
        autoload: bool = True,
        monitor: bool = False,
        background_readvise: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("main-window")
        self.setWindowTitle(WINDOW_TITLE)
        self.setAccessibleName(WINDOW_TITLE)
        self._about: QMessageBox | None = None
        self._settings: QSettings | None = None
        self._autoload = autoload
        self._monitor = monitor
        self._background_readvise = background_readvise
        self._started = False
        self._closing = False
        self.painted = False
        self._load_task: asyncio.Task[Any] | None = None
        self._diagnostics_dialog: QFileDialog | None = None
        if remember_geometry:
            path = settings_file or resolve_home().qt_settings_file
            self._settings = QSettings(str(path), QSettings.Format.IniFormat, self)
        self._service = service
        self.bridge: ServiceBridge | None = None
        self.remote: RemoteGpuPage | None = None
        self.jobs: JobsPage | None = None
        self.advisor: AdvisorPage | None = None
        self.workflows: WorkflowsPage | None = None
        self.running: RunningPage | None = None
        self.offers: OffersPage | None = None
        self.job_ends: JobEndWatch | None = None
        self._quit_requested = False  # File → Quit: the user closes (see closeEvent)
        self._close_told = False  # the user read that jobs go on, and closed
        self._close_box: QMessageBox | None = None

        self.nav = QListWidget(self)
        self.nav.setObjectName("navigation")
        self.nav.setAccessibleName("Navigation")
        self.nav.setAccessibleDescription("Choose a place; the arrow keys move between them.")
        self.nav.setFrameShape(QListWidget.Shape.NoFrame)
        self.nav.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.nav.setUniformItemSizes(True)
        self.nav.setSpacing(3)
        self.nav.setContentsMargins(6, 10, 6, 10)
        # Padding only: every colour still comes from the palette.
        self.nav.setStyleSheet("QListWidget#navigation::item { padding-left: 12px; }")
        self.nav.setFixedWidth(180)
        self.nav.viewport().setBackgroundRole(QPalette.ColorRole.Window)

        self.stack = QStackedWidget(self)
        self.stack.setObjectName("places")
        self.stack.setAccessibleName("Places")
        # The Remote GPU page is built right after the window's first paint (_build_pages).
        loading = QLabel("Loading your providers…", self)
        loading.setObjectName("page-remote-gpu-loading")
        loading.setAccessibleName("Loading the Remote GPU settings")
        loading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pages: dict[str, QWidget] = {
            "jobs": _loading("jobs", "Loading the job queue…", self),
            "running": _loading("running", "Loading what runs at the providers…", self),
            "offers": _loading("offers", "Loading the offers…", self),
            "remote-gpu": loading,
            "advisor": _loading("advisor", "Loading the advisor's settings…", self),
        }
        self.settings_tabs = QTabWidget(self)
        self.settings_tabs.setObjectName("settings-tabs")
        self.settings_tabs.setAccessibleName("Settings")
        self.settings_tabs.setDocumentMode(True)
        self.settings_tabs.addTab(loading, "&Remote GPU")
        self.settings_tabs.addTab(self.pages["advisor"], "A&dvisor")
        self.places: dict[str, QWidget] = {
            "jobs": self.pages["jobs"],
            "running": self.pages["running"],
            "offers": self.pages["offers"],
            "settings": self.settings_tabs,
        }
        for place, title, summary in PLACES:
            self.stack.addWidget(self.places[place])
            item = QListWidgetItem(title, self.nav)
            item.setData(Qt.ItemDataRole.UserRole, place)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, title)
            item.setToolTip(summary)
            item.setSizeHint(QSize(0, self.nav.fontMetrics().height() + 16))
        self.nav.currentRowChanged.connect(self._on_nav_row_changed)

        central = QWidget(self)
        central.setObjectName("central")
        central.setAccessibleName("Main area")
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.nav)
        # The window's banner: orphans found at a provider, a job that ended (no system tray).
        self.banner = Banner(central)
        self.banner.setObjectName("window-banner")
        self.banner.setAccessibleName("Notice")
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.setSpacing(0)
        right.addWidget(self.banner)
        right.addWidget(self.stack, 1)
        layout.addLayout(right, 1)
        self.setCentralWidget(central)

        self._chrome_built = False  # the menus and status bar: right after the first paint

        self.resize(*DEFAULT_SIZE)
        self.setMinimumSize(720, 480)
        self.show_page("remote-gpu")
        self.nav.setFocus()
        self._restore_geometry()

    pages_built = Signal()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._started:
            self._started = True
            self.installEventFilter(self)  # build the pages after the first paint

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self and event.type() == QEvent.Type.Paint:
            self.removeEventFilter(self)
            self.painted = True
            QTimer.singleShot(0, self._after_first_paint)
        return super().eventFilter(watched, event)

    def build_chrome(self) -> None:
        """The menus and the status bar (built after the first paint: start-up time)."""
        if self._chrome_built:
            return
        self._chrome_built = True
        self._build_menus()
        status = QStatusBar(self)
        status.setObjectName("status-bar")
        status.setAccessibleName("Status")
        self.setStatusBar(status)
        for grip in status.findChildren(QSizeGrip):
            grip.setAccessibleName("Resize the window")

    @Slot()
    def _after_first_paint(self) -> None:
        if self.remote is not None or self._closing:
            return
        self.build_chrome()
        if self._autoload:
            self.start()

    def build_pages(self) -> RemoteGpuPage:
        """Build every page now (imports the service and pydantic on the calling thread;
        :meth:`start` imports them in a worker and builds the Remote GPU page first)."""
        page = self._build_remote_page()
        self._build_other_pages()
        return page

    def _build_remote_page(self) -> RemoteGpuPage:
        if self.remote is not None:
            return self.remote
        self.build_chrome()
        from .bridge import ServiceBridge
        from .remote_gpu.page import RemoteGpuPage

        self.bridge = ServiceBridge(self._service, self)
        if self._background_readvise:  # the app: re-advice in a child process (GIL, GC)
            self.bridge.service.readvise_in_subprocess = True
        page = RemoteGpuPage(self.bridge)
        page.setBackgroundRole(QPalette.ColorRole.Base)
        current = self.settings_tabs.currentIndex()
        loading = self.pages["remote-gpu"]
        self.settings_tabs.removeTab(0)
        self.settings_tabs.insertTab(0, page, "&Remote GPU")
        self.settings_tabs.setCurrentIndex(current)
        loading.deleteLater()
        self.pages["remote-gpu"] = page
        self.remote = page
        return page

    def _build_other_pages(self) -> None:
        """The Jobs, Running, Offers and Advisor pages (after the Remote GPU page: see
        :meth:`start`)."""
        if self.jobs is not None:
            return
        assert self.bridge is not None
        from .jobs.page import JobsPage

        jobs = JobsPage(self.bridge)
        jobs.setBackgroundRole(QPalette.ColorRole.Base)
        placeholder = self.places["jobs"]
        index = self.stack.indexOf(placeholder)
        current = self.stack.currentIndex()
        self.stack.removeWidget(placeholder)
        self.stack.insertWidget(index, jobs)
        self.stack.setCurrentIndex(current)
        placeholder.deleteLater()
        self.pages["jobs"] = self.places["jobs"] = jobs
        self.jobs = jobs

        from .running.page import RunningPage

        running = RunningPage(self.bridge)
        running.setBackgroundRole(QPalette.ColorRole.Base)
        placeholder = self.places["running"]
        index = self.stack.indexOf(placeholder)
        current = self.stack.currentIndex()
        self.stack.removeWidget(placeholder)
        self.stack.insertWidget(index, running)
        self.stack.setCurrentIndex(current)
        placeholder.deleteLater()
        self.pages["running"] = self.places["running"] = running
        self.running = running

        from .offers.page import OffersPage

        offers = OffersPage(self.bridge)
        offers.setBackgroundRole(QPalette.ColorRole.Base)
        offers.add_provider_requested.connect(self.add_provider)
        placeholder = self.places["offers"]
        index = self.stack.indexOf(placeholder)
        current = self.stack.currentIndex()
        self.stack.removeWidget(placeholder)
        self.stack.insertWidget(index, offers)
        self.stack.setCurrentIndex(current)
        placeholder.deleteLater()
        self.pages["offers"] = self.places["offers"] = offers
        self.offers = offers

        from .advisor.page import AdvisorPage

        advisor = AdvisorPage(self.bridge)
        advisor.setBackgroundRole(QPalette.ColorRole.Base)
        current = self.settings_tabs.currentIndex()
        old_advisor = self.pages["advisor"]
        self.settings_tabs.removeTab(1)
        self.settings_tabs.insertTab(1, advisor, "A&dvisor")
        self.settings_tabs.setCurrentIndex(current)
        old_advisor.deleteLater()
        self.pages["advisor"] = advisor
        self.advisor = advisor

        from .settings.workflows import WorkflowsPage

        workflows = WorkflowsPage(self.bridge)
        workflows.setBackgroundRole(QPalette.ColorRole.Base)
        self.settings_tabs.addTab(workflows, "&Workflows")
        self.pages["workflows"] = workflows
        self.workflows = workflows
        self._file_menu.insertAction(self.quit_action, jobs.import_action)
        jobs.import_action.triggered.connect(lambda: self.show_page("jobs"))
        self.pages_built.emit()

    @property
    def is_loaded(self) -> bool:
        """Every page is built and has loaded its data (the Running place lists only once it
        is shown: its listing asks every provider; the Offers place reads once it is shown)."""
        return all(
            page is not None and page.is_loaded
            for page in (self.remote, self.jobs, self.advisor, self.workflows)
        ) and all(
            page is not None and (page.is_loaded or not page.started)
            for page in (self.running, self.offers)
        )

    def start(self) -> asyncio.Task[Any]:
        """Build and load the pages (and start the health monitor); the window is already
        visible. Returns the task that ends once the Remote GPU page has loaded.

        In order, so that the providers' cards come first (``benchmarks/startup_bench.py``):
        the service and the Remote GPU page's modules are imported in a worker thread (the
        window keeps answering meanwhile), the Remote GPU page is built and reads the
        providers; once their cards are shown, the Jobs and Advisor pages are built and
        loaded, the adapters are warmed up and the monitor starts."""
        if self._load_task is None:
            import asyncio

            self._load_task = asyncio.get_event_loop().create_task(
                self._start(), name="window-start"
            )
            self._load_task.add_done_callback(_report_failure)
        return self._load_task

    async def _start(self) -> None:
        import asyncio

        if self.remote is None:
            self._service = await _in_worker(functools.partial(_prepare_service, self._service))
        if self._closing:
            return
        page = self._build_remote_page()
        bridge = self.bridge
        assert bridge is not None
        greet = self._first_run()
        bridge.watch()
        loading = page.start(greet=greet)
        await page.first_shown()  # the cards are on screen
        if self._closing:
            return
        await bridge.call(_import_other_pages)
        if self._closing:
            return
        self._build_other_pages()
        assert self.jobs is not None and self.advisor is not None
        self.jobs.start()
        self.advisor.start()
        assert self.workflows is not None
        self.workflows.start()
        if self.current_page() in ("running", "offers"):
            self._on_place_shown(self.current_page())
        from .notifier import JobEndWatch

        # (a job that ends while the window is in the background: the tray, or the banner)
        self.job_ends = JobEndWatch(bridge, self, self._show_notice)
        self.job_ends.look()
        # (the provider adapters and HTTP client, imported in a worker ahead of the first
        # check, so that check does not import them on the GUI thread: a stall of ~0.5 s)
        bridge.spawn(bridge.call(bridge.service.warm_up), name="warm-up")
        if self._monitor:
            bridge.spawn(bridge.run_monitor(), name="health-monitor")
            # jobs left in flight (a restart, a crash) are driven again, off the GUI thread
            bridge.spawn(bridge.call(bridge.service.resume_dispatch), name="resume-dispatch")
            bridge.spawn(self._warn_orphans(), name="orphans")
        await asyncio.wait({loading})  # (a failure is reported by the bridge, once)

    def _first_run(self) -> bool:
        """True once per home: the window greets the user with what it found."""
        if self._settings is None:
            return self.bridge is not None and not self.bridge.service.home.registry_file.exists()
        if self._settings.value(GREETED_KEY):
            return False
        self._settings.setValue(GREETED_KEY, True)
        self._settings.sync()
        return True

    # -- construction ------------------------------------------------------------------------

    def _build_menus(self) -> None:
        bar = self.menuBar()
        bar.setObjectName("menu-bar")
        bar.setAccessibleName("Main menu")

        file_menu = bar.addMenu("&File")
        self._file_menu = file_menu
        file_menu.setAccessibleName("File menu")
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        if self.quit_action.shortcut().isEmpty():  # no platform default (e.g. Windows)
            self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.quit_action.setStatusTip("Close the window and quit")
        self.quit_action.triggered.connect(self.request_close)
        file_menu.addAction(self.quit_action)

        view_menu = bar.addMenu("&View")
        view_menu.setAccessibleName("View menu")
        self.page_actions: dict[str, QAction] = {}
        for number, spec in enumerate(PAGES, start=1):  # Remote GPU, Jobs, Advisor
            action = QAction(spec.title, self)
            action.setShortcut(QKeySequence(f"Ctrl+{number}"))
            action.setStatusTip(f"Show the {spec.title} page")
            action.triggered.connect(lambda _checked=False, page=spec.id: self.show_page(page))
            view_menu.addAction(action)
            self.page_actions[spec.id] = action

        help_menu = bar.addMenu("&Help")
        help_menu.setAccessibleName("Help menu")
        self.diagnostics_action = QAction("Save &diagnostics…", self)
        self.diagnostics_action.setStatusTip(
            "Save logs, settings and versions to a zip for a bug report (secrets removed)"
        )
        self.diagnostics_action.triggered.connect(self.ask_diagnostics)
        help_menu.addAction(self.diagnostics_action)
        self.about_action = QAction("&About", self)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.setStatusTip("Version and licence of ComfyVN GPU Manager")
        self.about_action.triggered.connect(self.show_about)
        help_menu.addAction(self.about_action)

    # -- pages ---------------------------------------------------------------------------------

    def show_page(self, name: str) -> None:
        """Select a page by its id: ``remote-gpu``, ``jobs``, ``advisor``, ``workflows``,
        ``running`` or ``offers``."""
        try:
            place, tab = PAGE_PLACES[name]
        except KeyError:
            raise ValueError(
                f"unknown page {name!r}; choose one of {', '.join(PAGE_IDS)}"
            ) from None
        self.nav.setCurrentRow([p for p, _, _ in PLACES].index(place))
        if tab is not None:
            self.settings_tabs.setCurrentIndex(tab)

    def current_page(self) -> str:
        place = PLACES[self.stack.currentIndex()][0]
        if place == "settings":
            return ("remote-gpu", "advisor", "workflows")[max(0, self.settings_tabs.currentIndex())]
        return place

    @Slot(int)
    def _on_nav_row_changed(self, row: int) -> None:
        if 0 <= row < len(PLACES):
            self.stack.setCurrentIndex(row)
            self._on_place_shown(PLACES[row][0])

    def _on_place_shown(self, place: str) -> None:
        if place == "running" and self.running is not None and not self._closing:
            self.running.shown()  # (lists the first time, and again when stale)
        if place == "offers" and self.offers is not None and not self._closing:
            self.offers.shown()  # (reads from the home: the ages move on)

    def add_provider(self, template_id: str) -> None:
        """Open the Remote GPU page's add form for the template ``template_id`` (an offer's
        "Add this provider")."""
        self.show_page("remote-gpu")
        if self.remote is None:
            return
        from .remote_gpu.provider_info import TEMPLATE_PREFIX

        key = TEMPLATE_PREFIX + template_id
        if key in self.remote.cards.keys():
            self.remote.cards.select(key)

    # -- diagnostics ---------------------------------------------------------------------------

    @Slot()
    def ask_diagnostics(self) -> None:
        """Help → Save diagnostics: choose a file (non-blocking), then write it off-thread."""
        dialog = QFileDialog(self, "Save diagnostics", str(Path.home()), "Zip archives (*.zip)")
        dialog.setObjectName("diagnostics-dialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("zip")
        dialog.selectFile("comfyvn-gui-diagnostics.zip")
        dialog.fileSelected.connect(self.save_diagnostics)
        dialog.finished.connect(self._diagnostics_closed)
        self._diagnostics_dialog = dialog
        dialog.open()

    @Slot()
    def _diagnostics_closed(self) -> None:
        if self._diagnostics_dialog is not None:
            self._diagnostics_dialog.deleteLater()
            self._diagnostics_dialog = None

    def save_diagnostics(self, path: str) -> asyncio.Task[Any]:
        self.build_pages()
        bridge = self.bridge
        assert bridge is not None

        async def run() -> None:
            self.statusBar().showMessage("Saving diagnostics…")
            try:
                report = await bridge.call(bridge.service.write_diagnostics, Path(path))
            except ComfyVNError as exc:
                self.statusBar().showMessage(f"Diagnostics not saved: {exc.message}")
                return
            self.statusBar().showMessage(
                f"Diagnostics saved to {report.path} ({len(report.files)} files, "
                f"{report.redacted_count} secret values removed)."
            )

        return bridge.spawn(run(), name="diagnostics")

    async def _warn_orphans(self) -> None:
        """After the first paint, off the GUI thread: say when this home holds machines, pods
        or keys at a provider that no job owns (they may bill)."""
        bridge = self.bridge
        assert bridge is not None
        try:
            warning = await bridge.call(bridge.service.orphan_warning)
        except Exception as exc:  # noqa: BLE001 - a provider that cannot be listed now
            log.info("orphan check: %s", exc)
            return
        if warning and not self._closing:
            self.statusBar().showMessage(warning)
            self.show_orphans_banner(warning)

    def show_orphans_banner(self, warning: str) -> None:
        """The orphan warning (the service's words) in the window's banner, with **Show**,
        which opens the Running place."""
        cli = ": release with `comfyvn-gui running stop --orphans`"
        text = warning.removesuffix(cli) + ". Stop them on the Running page."
        if not warning.endswith(cli):
            text = warning

        def show() -> None:
            self.banner.clear()
            self.show_page("running")

        self.banner.show_message("warning", text, action="Show", callback=show)

    def _show_notice(self, notice: Notice) -> None:
        """A job ended while the window was in the background and there is no system tray."""
        if self._closing:
            return
        self.banner.show_message(
            notice.kind, notice.text, action="Show", callback=self._show_jobs_from_banner
        )

    def _show_jobs_from_banner(self) -> None:
        self.banner.clear()
        self.show_page("jobs")

    # -- notifications -------------------------------------------------------------------------

    @Slot(str)
    def notify_error(self, message: str) -> None:
        """Say, without blocking, that something went wrong (the details are in the log)."""
        self.statusBar().showMessage(message)

    @Slot()
    def show_about(self) -> None:
        """A non-modal About box; a second request raises the one already open."""
        if self._about is None:
            box = QMessageBox(self)
            box.setObjectName("about-box")
            box.setAccessibleName(f"About {WINDOW_TITLE}")
            box.setWindowTitle(f"About {WINDOW_TITLE}")
            box.setWindowModality(Qt.WindowModality.NonModal)
            box.setIcon(QMessageBox.Icon.Information)
            box.setTextFormat(Qt.TextFormat.RichText)
            box.setText(f"<b>{WINDOW_TITLE}</b> {__version__}")
            box.setInformativeText(
                "Registers remote GPU providers, keeps their credentials in the OS keyring, "
                "and shows where the compute advisor would run each ComfyVN importer job, "
                "what it would cost and why.<br><br>MIT licence."
            )
            box.setStandardButtons(QMessageBox.StandardButton.Close)
            box.finished.connect(self._on_about_finished)
            self._about = box
        already_open = self._about.isVisible()
        self._about.show()
        if already_open and QGuiApplication.platformName() not in ("offscreen", "minimal"):
            self._about.raise_()  # (headless platforms cannot raise, and warn)
            self._about.activateWindow()

    @Slot()
    def _on_about_finished(self) -> None:
        if self._about is not None:
            self._about.deleteLater()
            self._about = None

    # -- geometry ------------------------------------------------------------------------------

    def _restore_geometry(self) -> None:
        if self._settings is None:
            return
        geometry = self._settings.value(GEOMETRY_KEY)
        if isinstance(geometry, QByteArray | bytes) and not self.restoreGeometry(geometry):
            log.warning("ignoring the saved window geometry in %s", self._settings.fileName())
        state = self._settings.value(STATE_KEY)
        if isinstance(state, QByteArray | bytes):
            self.restoreState(state)

    def save_geometry(self) -> None:
        if self._settings is None:
            return
        self._settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        self._settings.setValue(STATE_KEY, self.saveState())
        self._settings.sync()
        if self._settings.status() != QSettings.Status.NoError:
            log.warning("could not save the window geometry to %s", self._settings.fileName())

    @Slot()
    def request_close(self) -> None:
        """File → Quit: the user closes the window (jobs in flight are told first)."""
        self._quit_requested = True
        self.close()

    def _told_first(self, event: QCloseEvent) -> bool:
        """When the user closes the window (its close button, File → Quit) while jobs are in
        flight: keep it open, and say first how many go on in the background and how to follow
        them; it closes once that is read. Closes made by the program (a screenshot, Ctrl+C
        in the terminal, tests) are not held up."""
        by_user = event.spontaneous() or self._quit_requested
        self._quit_requested = False
        if self._closing or self._close_told or not by_user or self.job_ends is None:
            return False
        in_flight = self.job_ends.in_flight
        if not in_flight:
            return False
        event.ignore()
        if self._close_box is not None:
            return True
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "Jobs continue in the background",
            close_message(in_flight),
            QMessageBox.StandardButton.NoButton,
            self,
        )
        box.setObjectName("close-running-jobs")
        box.setInformativeText(close_details(in_flight))
        close = box.addButton("Close the window", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Keep it open", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(close)

        def answered(_result: int) -> None:
            self._close_box = None
            box.deleteLater()
            if box.clickedButton() is close:
                self._close_told = True
                self.close()

        box.finished.connect(answered)
        self._close_box = box
        box.open()
        return True

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._told_first(event):
            return
        if self._close_box is not None:
            self._close_box.reject()
        if self.job_ends is not None and self.job_ends.in_flight:
            log.info(close_message(self.job_ends.in_flight))
        self.save_geometry()
        if self._about is not None:
            self._about.close()
        if self._diagnostics_dialog is not None:
            self._diagnostics_dialog.reject()
        self._closing = True
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        if self.remote is not None:
            self.remote.close_dialogs()
        if self.jobs is not None:
            self.jobs.close_dialogs()
        if self.running is not None:
            self.running.close_dialogs()
        if self.offers is not None:
            self.offers.close_dialogs()
        if self.job_ends is not None:
            self.job_ends.close()
        if self.bridge is not None:
            self.bridge.close()  # cancels running checks and waits for the workers
        self.statusBar().clearMessage()  # stops the status bar's timer, if any
        super().closeEvent(event)


def close_message(in_flight: list[int]) -> str:
    """'2 jobs continue in the background.'"""
    n = len(in_flight)
    return f"{n} job{'s' if n != 1 else ''} continue{'s' if n == 1 else ''} in the background."


def close_details(in_flight: list[int]) -> str:
    """How the driver keeps them going, and how to follow them."""
    shown = ", ".join(str(i) for i in in_flight[:5]) + (" …" if len(in_flight) > 5 else "")
    return (
        f"Job{'s' if len(in_flight) != 1 else ''} {shown}: the dispatch driver keeps "
        "running them after the window closes and releases what they rent when they end. "
        f"Follow one with `comfyvn-gui jobs watch {in_flight[0]}`, or open the app again."
    )


def _report_failure(task: asyncio.Task[Any]) -> None:
    """A start that failed reaches the error reporter (``sys.excepthook``), as the bridge's
    tasks do."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        import sys

        sys.excepthook(type(exc), exc, exc.__traceback__)


def _prepare_service(service: Service | None) -> Service:
    """Import the service (pydantic) and the Remote GPU page's modules, make the home's
    service unless one was given, and load its catalog (read by the page as it is built)."""
    from comfyvn_gui.service import Service

    from .remote_gpu import page  # noqa: F401

    service = service or Service()
    _ = service.catalog
    return service


def _import_other_pages() -> None:
    from .advisor import page as advisor  # noqa: F401
    from .jobs import page as jobs  # noqa: F401
    from .offers import page as offers  # noqa: F401
    from .running import page as running  # noqa: F401
    from .settings import workflows  # noqa: F401


async def _in_worker(fn: Callable[[], T]) -> T:
    """``fn()`` in a thread of its own (the service's pool does not exist yet), awaited on
    the GUI's loop."""
    import asyncio
    import threading

    loop = asyncio.get_event_loop()  # (qasync may step a task while it is not "running")
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():  # (cancelled: the window closed meanwhile)
            return
        if error is None:
            done.set_result(result)
        else:
            done.set_exception(error)

    def run() -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (fn(), None)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name="comfyvn-start", daemon=True).start()
    return await done


def _loading(page: str, text: str, parent: QWidget) -> QLabel:
    """What a place shows for the instant before its page is built (after the first paint)."""
    label = QLabel(text, parent)
    label.setObjectName(f"page-{page}-loading")
    label.setAccessibleName(text.rstrip("…"))
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return label
