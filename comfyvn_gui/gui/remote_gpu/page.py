"""Settings → Remote GPU: this computer's GPUs, the provider cards, and the selected provider's
generated credential form with Save, Cancel, Validate, Remove, and Import / Export.

Nothing here blocks the GUI thread: every registry, keyring, disk and network call goes
through :class:`~comfyvn_gui.gui.bridge.ServiceBridge` (the service's I/O pool) and is awaited
on the qasync loop (docs/architecture.md, "GUI"). Dialogs are opened with ``open()`` and
answered through signals (never ``exec()``, which would nest event loops under qasync); the
import and export dialogs live in :mod:`.provider_io`.

Reloads are coalesced: while one reads, any number of further requests make one more read.
A save announces its own change through the bridge, so the page reads once after it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from comfyvn_gui.core import wording
from comfyvn_gui.core.checks import CheckResult
from comfyvn_gui.core.errors import ComfyVNError
from comfyvn_gui.core.models import LOCAL_ID, ProviderEntry
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.dialogs import OpenDialogs
from comfyvn_gui.gui.painted import next_paint
from comfyvn_gui.gui.reads import CoalescedRead
from comfyvn_gui.gui.widgets.banner import Banner

from .cards import LocalPanel, ProviderList
from .provider_info import TEMPLATE_PREFIX, card_info
from .provider_io import ImportDialog, ProviderTransfer

if TYPE_CHECKING:
    from .forms import CredentialForm

__all__ = ["RemoteGpuPage"]

log = logging.getLogger(__name__)

#: How long :meth:`RemoteGpuPage.first_shown` waits for the cards' first paint.
FIRST_PAINT_WAIT_S = 1.0


#: What a reload reads off the GUI thread: the entries, the last results, the broken ones' reasons.
_State = tuple[list[ProviderEntry], dict[str, dict[str, CheckResult]], dict[str, str]]


class RemoteGpuPage(QWidget):
    """The Remote GPU settings tab."""

    loaded = Signal()
    checks_finished = Signal(list)
    saved = Signal(str)

    def __init__(self, bridge: ServiceBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page-remote-gpu")
        self.setAccessibleName("Remote GPU settings")
        self.bridge = bridge
        self.svc = bridge.service
        self.catalog = self.svc.catalog
        self.entries: dict[str, ProviderEntry] = {}
        self.results: dict[str, dict[str, CheckResult]] = {}
        self.backend = ""
        self.keyring_problem: str | None = None
        self.form: CredentialForm | None = None
        self.current_key: str | None = None
        self._check_task: asyncio.Task[Any] | None = None
        self.reads = CoalescedRead(
            bridge, self._read_state, self._show_state, name="remote-gpu-reload"
        )
        self.dialogs = OpenDialogs()
        self.is_loaded = False
        self._shown = asyncio.Event()  # the first read shown (or ended without)
        self._painted = False  # ... and painted

        self.greeting = Banner(self)
        self.greeting.setObjectName("greeting")
        # Providers this version cannot use (a newer version's template): kept, not carded.
        self.broken = Banner(self)
        self.broken.setObjectName("broken-providers")
        self.problems: dict[str, str] = {}
        self.local = LocalPanel(self)
        self.local.setObjectName("local-panel")

        self.validate_all_button = QPushButton("Validate &all", self)
        self.validate_all_button.setObjectName("validate-all")
        self.validate_all_button.setToolTip("Check every provider's credentials at once")
        self.import_button = QPushButton("&Import…", self)
        self.import_button.setObjectName("import")
        self.import_button.setToolTip("Import providers from an export file")
        self.export_button = QPushButton("E&xport…", self)
        self.export_button.setObjectName("export")
        self.export_button.setToolTip(
            "Save your providers to a file (without secrets unless asked)"
        )
        tools = QHBoxLayout()
        tools.addWidget(self.validate_all_button)
        tools.addStretch(1)
        tools.addWidget(self.import_button)
        tools.addWidget(self.export_button)

        self.cards = ProviderList(self)
        self.cards.setObjectName("provider-list")

        # The detail side: header, banner, form (scrolls), buttons.
        self.detail = QWidget(self)
        self.detail.setObjectName("provider-detail")
        self.detail.setAccessibleName("Selected provider")
        self.title = QLabel("Choose a provider on the left", self.detail)
        self.title.setObjectName("detail-title")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.banner = Banner(self.detail)
        self.form_scroll = QScrollArea(self.detail)
        self.form_scroll.setObjectName("form-scroll")
        self.form_scroll.setWidgetResizable(True)
        self.form_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.form_scroll.setAccessibleName("Provider settings")
        self.form_scroll.verticalScrollBar().setAccessibleName("Scroll the settings")
        self.form_scroll.horizontalScrollBar().setAccessibleName("Scroll the settings sideways")
        self.save_button = QPushButton("&Save", self.detail)
        self.save_button.setObjectName("save")
        self.save_button.setToolTip(
            "Store the settings, and the secrets in the OS keyring (Ctrl+S)"
        )
        self.cancel_button = QPushButton("&Cancel", self.detail)
        self.cancel_button.setObjectName("cancel")
        self.cancel_button.setToolTip("Put back what was there")
        self.validate_button = QPushButton("&Validate", self.detail)
        self.validate_button.setObjectName("validate")
        self.validate_button.setToolTip(
            "Check the stored credentials with the provider (Ctrl+Enter)"
        )
        self.stop_button = QPushButton("Sto&p", self.detail)
        self.stop_button.setObjectName("stop-check")
        self.stop_button.setToolTip("Cancel the running check (Esc)")
        self.stop_button.hide()
        self.progress = QProgressBar(self.detail)
        self.progress.setObjectName("check-progress")
        self.progress.setAccessibleName("Check in progress")
        self.progress.setRange(0, 0)
        self.progress.setMaximumWidth(120)
        self.progress.hide()
        self.remove_button = QPushButton("&Remove…", self.detail)
        self.remove_button.setObjectName("remove")
        self.remove_button.setToolTip("Remove this provider and its stored secrets")
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.validate_button)
        buttons.addWidget(self.progress)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        buttons.addWidget(self.remove_button)
        detail_layout = QVBoxLayout(self.detail)
        detail_layout.setContentsMargins(12, 0, 0, 0)
        detail_layout.addWidget(self.title)
        detail_layout.addWidget(self.banner)
        detail_layout.addWidget(self.form_scroll, 1)
        detail_layout.addLayout(buttons)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.setObjectName("remote-gpu-splitter")
        splitter.setAccessibleName("Providers and the selected provider's settings")
        splitter.addWidget(self.cards)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([360, 620])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(self.greeting)
        layout.addWidget(self.broken)
        layout.addWidget(self.local)
        layout.addLayout(tools)
        layout.addWidget(splitter, 1)

        for b in (
            self.save_button,
            self.cancel_button,
            self.validate_button,
            self.remove_button,
            self.stop_button,
            self.validate_all_button,
            self.import_button,
            self.export_button,
        ):
            b.setAccessibleName(b.text().replace("&", "").rstrip("…"))
        self._set_detail_enabled(False)

        self.cards.selection_changed.connect(self._on_selected)
        self.save_button.clicked.connect(self.save)
        self.cancel_button.clicked.connect(self.cancel)
        self.validate_button.clicked.connect(self.validate)
        self.stop_button.clicked.connect(self.stop_check)
        self.remove_button.clicked.connect(self.ask_remove)
        self.validate_all_button.clicked.connect(self.validate_all)
        self.transfer = ProviderTransfer(self, bridge, self.banner, self.dialogs, self.reload)
        self.import_button.clicked.connect(self.transfer.ask_import)
        self.export_button.clicked.connect(self.transfer.ask_export)
        bridge.providers_changed.connect(self.refresh)
        bridge.results_changed.connect(self.refresh)

        for keys, slot in (
            (QKeySequence.StandardKey.Save, self.save),
            (QKeySequence("Ctrl+Return"), self.validate),
            (QKeySequence("Escape"), self.stop_check),
        ):
            shortcut = QShortcut(keys, self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    # -- loading ---------------------------------------------------------------------------

    def start(self, *, greet: bool = False) -> asyncio.Task[Any]:
        """Load everything off the GUI thread (the window is already on screen)."""
        return self.bridge.spawn(self.load(greet=greet), name="remote-gpu-load")

    async def load(self, *, greet: bool = False) -> None:
        # The providers' cards first; the keyring and the local GPUs after (start-up time).
        try:
            await self.reload()
        finally:
            self._shown.set()
        await self.first_shown()
        (backend, problem), snap = await asyncio.gather(
            self.bridge.call(self.svc.keyring_status),
            self.bridge.call(self.svc.local_snapshot),
        )
        backend = wording.keyring_backend(backend)
        self.backend, self.keyring_problem = backend, problem
        self.local.set_keyring(backend, problem)
        self.local.set_snapshot(snap)
        if greet:
            self._greet(snap, backend, problem)
        if self.current_key is None:  # show the first of the user's providers
            first = next((pid for pid in self.entries if pid != LOCAL_ID), None)
            if first is not None:
                # The cards are on screen now; the form's widgets (superqt) are imported off
                # the GUI thread before the form is built.
                await self.bridge.call(_import_forms)
                if self.current_key is None and first in self.entries:
                    self.cards.select(first)
        self.is_loaded = True
        self.loaded.emit()

    async def first_shown(self) -> None:
        """Returns once :meth:`load` has shown the providers' cards (or failed to read them)
        and they have been painted (at most :data:`FIRST_PAINT_WAIT_S` later)."""
        await self._shown.wait()
        if not self._painted:
            await next_paint(self.cards.body, FIRST_PAINT_WAIT_S)
            self._painted = True

    @Slot()
    def refresh(self) -> asyncio.Task[Any]:
        """Read the providers and results again (coalesced: a read already running reads
        once more; requests made before it starts reading make none)."""
        return self.reads.request()

    async def reload(self) -> None:
        """Returns once a read that began after the call is shown."""
        await self.refresh()

    def _show_state(self, state: _State) -> None:
        entries, results, problems = state
        self.problems = problems
        self.entries = {e.id: e for e in entries if e.id not in problems}
        self.results = results
        self._render_cards()
        if problems:
            self.broken.show_message(
                "warning",
                f"{len(problems)} provider{'s' if len(problems) > 1 else ''} cannot be used "
                f"by this version and {'are' if len(problems) > 1 else 'is'} not shown: "
                + " ".join(problems.values()),
            )
        else:
            self.broken.clear()

    def _read_state(self) -> _State:
        entries = self.svc.list_providers()
        problems = {e.id: why for e in entries if (why := self.svc.provider_problem(e))}
        return entries, self.svc.last_results(), problems

    def _render_cards(self) -> None:
        infos = []
        for entry in self.entries.values():
            profile = self.catalog.profile(entry.template_id)
            r = self.results.get(entry.id, {})
            infos.append(
                card_info(
                    profile,
                    self.catalog,
                    entry,
                    r.get("validate"),
                    r.get("health"),
                    self.svc.missing_fields(entry),
                )
            )
        for profile in self.catalog.profiles.values():
            if profile.protected:
                continue
            infos.append(card_info(profile, self.catalog))
        self.cards.set_cards(infos)
        if (
            self.current_key
            and self.current_key not in self.entries
            and not (self.current_key.startswith(TEMPLATE_PREFIX))
        ):
            self._show_form(None)  # removed elsewhere

    def _greet(self, snap: Any, backend: str, problem: str | None) -> None:
        gpus = getattr(snap, "gpus", [])
        found = (
            "Found " + ", ".join(f"{g.name} ({g.vram_total_gb:g} GB)" for g in gpus)
            if gpus
            else "No local GPU was found on this computer"
        )
        keys = (
            f"secrets go to {backend}"
            if problem is None
            else "no usable OS keyring yet (see below what to install or unlock)"
        )
        self.greeting.show_message(
            "info",
            f"Welcome! {found}; {keys}. Next step: add a provider — pick one under "
            "“Add a provider”, paste its key, Save, then Validate.",
            action="Add a provider",
            callback=self._focus_catalog,
        )

    def _focus_catalog(self) -> None:
        self.greeting.clear()
        first = next(
            (f"{TEMPLATE_PREFIX}{p}" for p in self.catalog.profiles if p != LOCAL_ID), None
        )
        if first:
            self.cards.select(first)

    # -- selection and the form ------------------------------------------------------------

    @Slot(str)
    def _on_selected(self, key: str) -> None:
        if key == (self.current_key or ""):
            return
        known = key.startswith(TEMPLATE_PREFIX) or key in self.entries
        self._show_form(key if key and known else None)

    def _show_form(self, key: str | None) -> None:
        self.current_key = key
        self.banner.clear()
        old = self.form_scroll.takeWidget()
        if old is not None:
            old.deleteLater()
        self.form = None
        if key is None:
            self.title.setText("Choose a provider on the left")
            self._set_detail_enabled(False)
            return
        if key.startswith(TEMPLATE_PREFIX):
            profile = self.catalog.profile(key.removeprefix(TEMPLATE_PREFIX))
            entry = None
            self.title.setText(f"Add {profile.name}")
        else:
            entry = self.entries[key]
            profile = self.catalog.profile(entry.template_id)
            self.title.setText(f"{entry.name} ({entry.id})")
        from .forms import CredentialForm  # superqt: imported when a form is first shown

        self.form = CredentialForm(
            profile, entry, keyring_backend=self.backend, gpu_names=list(self.catalog.gpus)
        )
        self.form.setObjectName("credential-form")
        self.form.setAccessibleName(f"{profile.name} settings")
        self.form_scroll.setWidget(self.form)
        self._set_detail_enabled(True)
        self.remove_button.setEnabled(entry is not None and entry.id != LOCAL_ID)
        self.validate_button.setEnabled(entry is not None)
        if entry is not None:
            self._show_last_result(entry.id)
        elif self.keyring_problem and profile.secret_fields:
            self.banner.show_message(
                "warning",
                "Secrets cannot be stored until an OS keyring is available: see “This "
                "computer” above for what to install or unlock. Nothing is saved meanwhile.",
            )

    def _set_detail_enabled(self, on: bool) -> None:
        for b in (self.save_button, self.cancel_button, self.validate_button, self.remove_button):
            b.setEnabled(on)

    def _show_last_result(self, pid: str) -> None:
        last = self.results.get(pid, {}).get("validate")
        if last is not None and not last.ok:
            self._show_result(last)

    # -- save / cancel ---------------------------------------------------------------------

    @Slot()
    def cancel(self) -> None:
        if self.form is not None:
            self.form.reset()
            self.banner.clear()

    @Slot()
    def save(self) -> None:
        if self.form is None or not self.save_button.isEnabled():
            return
        self.bridge.spawn(self._save(), name="save-provider")

    async def _save(self) -> bool:
        form = self.form
        if form is None or self.current_key is None:
            return False
        problems = form.problems()
        if problems:
            form.show_problems()
            name, why = next(iter(problems.items()))
            self.banner.show_message("error", f"Not saved: fix {name}: {why}")
            return False
        payload = form.payload()
        self.save_button.setEnabled(False)
        try:  # the form's payload as it is: the service creates or updates
            entry, _ = await self.bridge.write(
                self.svc.save_provider, payload, new=form.entry is None
            )
        except ComfyVNError as exc:
            self.banner.show_message("error", f"Not saved: {exc.message}")
            if exc.fields:
                form.highlight(exc.fields, exc.message)
            return False
        finally:
            self.save_button.setEnabled(True)
        where = f" Secrets are stored in {self.backend}." if entry.secrets_set else ""
        await self.reload()
        self.cards.select(entry.id)
        self._show_form_for_saved(entry.id)
        self.banner.show_message("ok", f"Saved {entry.name}.{where} Validate to activate it.")
        self.saved.emit(entry.id)
        return True

    def _show_form_for_saved(self, pid: str) -> None:
        if self.current_key != pid:
            self._show_form(pid)
        elif self.form is not None:
            entry = self.entries[pid]
            self.form.set_stored(entry.secrets_set, self.backend)

    # -- validate --------------------------------------------------------------------------

    @Slot()
    def validate(self) -> None:
        key = self.current_key
        if key is None or key.startswith(TEMPLATE_PREFIX) or self._check_task is not None:
            return
        self._check_task = self.bridge.spawn(self._validate([key]), name="validate")

    @Slot()
    def validate_all(self) -> None:
        if self._check_task is not None or not self.entries:
            return
        self._check_task = self.bridge.spawn(self._validate(None), name="validate-all")

    @Slot()
    def stop_check(self) -> None:
        if self._check_task is not None and not self._check_task.done():
            self._check_task.cancel()

    def _busy(self, on: bool, what: str = "") -> None:
        self.progress.setVisible(on)
        self.stop_button.setVisible(on)
        self.validate_button.setEnabled(
            not on
            and self.current_key is not None
            and not self.current_key.startswith(TEMPLATE_PREFIX)
        )
        self.validate_all_button.setEnabled(not on)
        self.validate_button.setText("Validating…" if on and what == "one" else "&Validate")
        self.validate_all_button.setText(
            "Validating all…" if on and what == "all" else "Validate &all"
        )

    async def _validate(self, ids: list[str] | None) -> list[CheckResult]:
        if ids is not None and self.form is not None and self.form.is_dirty():
            if not await self._save():
                self._check_task = None
                return []
        self._busy(True, "one" if ids else "all")
        self.banner.show_message(
            "info",
            "Checking with the provider… (Esc or Stop cancels)"
            if ids
            else "Checking every provider at once… (Esc or Stop cancels)",
        )
        try:
            results: list[CheckResult] = await self.bridge.check("validate", ids)
        except asyncio.CancelledError:
            self.banner.show_message("warning", "Cancelled: nothing was recorded.")
            raise
        except ComfyVNError as exc:
            self.banner.show_message("error", exc.message)
            return []
        finally:
            self._busy(False)
            self._check_task = None
        await self.reload()
        if ids and results:
            self._show_result(results[0])
        else:
            ok = sum(r.ok for r in results)
            kind = "ok" if ok == len(results) else "warning"
            bad = ", ".join(f"{r.provider} ({r.status})" for r in results if not r.ok)
            self.banner.show_message(
                kind,
                f"{ok} of {len(results)} providers valid." + (f" Not valid: {bad}." if bad else ""),
            )
        self.checks_finished.emit(results)
        return results

    def _show_result(self, r: CheckResult) -> None:
        if self.form is not None:
            self.form.clear_highlights()
        if r.status == "valid":
            who = r.detail.get("identity")
            text = f"Valid — authenticated as {who}." if who else f"Valid. {r.message}"
            self.banner.show_message("ok", text)
        elif r.status == "untrusted_host":
            fp = str(r.detail.get("fingerprint", ""))
            self.banner.show_message(
                "warning",
                f"{r.message}\nCompare this fingerprint with your administrator's before "
                f"trusting it: {fp}",
                action="Trust this host key",
                callback=lambda: self._trust(r.provider, fp),
            )
        elif r.status == "host_key_mismatch":
            self.banner.show_message(
                "error",
                "⚠ THE SERVER'S HOST KEY HAS CHANGED. " + r.message + " Do not connect until "
                "your administrator confirms the new key; if it is expected, pin the new key "
                "with the command in this message (comfyvn-gui providers trust-host).",
            )
        else:
            self.banner.show_message(
                "error", f"{r.status.replace('_', ' ').capitalize()}: {r.message}"
            )
            if r.fields and self.form is not None:
                self.form.highlight(r.fields, r.message)

    def _trust(self, pid: str, fingerprint: str) -> None:
        async def run() -> None:
            try:
                await self.bridge.write(self.svc.trust_host, pid, fingerprint)
            except ComfyVNError as exc:
                self.banner.show_message("error", exc.message)
                return
            self.banner.show_message("ok", f"Host key {fingerprint} trusted; validating…")
            self._check_task = self.bridge.spawn(self._validate([pid]), name="validate")

        self.bridge.spawn(run(), name="trust-host")

    # -- remove ----------------------------------------------------------------------------

    @Slot()
    def ask_remove(self) -> None:
        key = self.current_key
        if key is None or key not in self.entries or key == LOCAL_ID:
            return
        entry = self.entries[key]
        stored = ", ".join(entry.secrets_set) or "none"
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Remove provider",
            f"Remove {entry.name} ({entry.id})?",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("remove-confirm")
        box.setInformativeText(f"Its stored secrets ({stored}) are deleted from the keyring.")
        yes = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(
            lambda _r: self._answered_remove(box, entry.id, box.clickedButton() is yes)
        )
        self.dialogs.keep(box)
        box.open()

    def _answered_remove(self, box: QMessageBox, pid: str, yes: bool) -> None:
        self.dialogs.forget(box)
        if not yes:
            return

        async def run() -> None:
            try:
                await self.bridge.write(self.svc.remove_provider, pid)
            except ComfyVNError as exc:
                self.banner.show_message("error", exc.message)
                return
            await self.reload()
            self._show_form(None)
            self.banner.show_message("ok", f"Removed {pid} and its stored secrets.")

        self.bridge.spawn(run(), name="remove-provider")

    # -- import / export (.provider_io) ---------------------------------------------------

    def export_to(self, path: str, include_secrets: bool) -> asyncio.Task[Any]:
        """Write the providers to ``path`` (with secrets only when asked), off the GUI thread."""
        return self.transfer.export_to(path, include_secrets)

    def import_from(self, path: str) -> ImportDialog:
        """Preview, then import, the providers of the export file at ``path``."""
        return self.transfer.import_from(path)

    def close_dialogs(self) -> None:
        self.dialogs.close_all()


def _import_forms() -> None:
    """Import the credential form's module (and superqt with it) in a worker thread."""
    import importlib

    importlib.import_module(f"{__package__}.forms")
