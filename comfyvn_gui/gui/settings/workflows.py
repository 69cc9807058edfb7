"""Settings → Workflows: the ComfyUI graph each job kind runs (docs/architecture.md, "GUI").

One row per kind that runs a template (``core/runs.py``'s ``TEMPLATE_KINDS``): the template in
use (the one shipped in ``resources/workflows/``, the user's own graph, or none: a kind that
needs custom nodes ships none), the placeholders a graph of the kind must hold, and two
buttons. "Choose file…" opens a non-blocking file dialog; the chosen file is read, parsed and
stored as the ``workflows.<kind>`` setting off the GUI thread, and the settings store checks
it (``core.runs.check_template``, what ``comfyvn-gui settings set workflows.<kind> FILE`` does):
a graph it refuses changes nothing, and the row shows the store's own message. "Use default"
(or "Clear" where nothing ships) unsets the setting.

A change another process makes shows after :meth:`WorkflowsPage.refresh` (the bridge's
``providers_changed`` fires for a change of the settings file).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from comfyvn_gui.core import json_input
from comfyvn_gui.core.errors import ComfyVNError, InputError
from comfyvn_gui.core.runs import (
    REQUIRED_PLACEHOLDERS,
    TEMPLATE_KINDS,
    placeholders_in,
    shipped_template,
    template_setting,
)
from comfyvn_gui.core.settings import SETTINGS
from comfyvn_gui.core.workload import KIND_TITLES
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.palette import error_color
from comfyvn_gui.gui.reads import CoalescedRead
from comfyvn_gui.gui.widgets.banner import Banner

__all__ = ["MAX_GRAPH_BYTES", "KindState", "WorkflowRow", "WorkflowsPage", "read_graph_file"]

log = logging.getLogger(__name__)

#: A workflow file larger than this is refused before it is parsed (an API graph is a few KB).
MAX_GRAPH_BYTES = 8 * 1024 * 1024


def _placeholders(names: Any) -> str:
    return ", ".join("{{" + n + "}}" for n in sorted(names))


@dataclass(frozen=True)
class KindState:
    """What a row shows for one kind: the user's graph (the setting; None: not set), where the
    shipped template is (None: none ships), the placeholders each holds, or why the setting
    cannot be read."""

    kind: str
    graph: dict[str, Any] | None
    shipped: str | None
    shipped_placeholders: frozenset[str] = frozenset()
    problem: str | None = None

    @property
    def own(self) -> bool:
        return self.graph is not None


def read_graph_file(path: str | Path) -> Any:
    """The JSON value of a workflow file (blocking: run it through the bridge); an
    :class:`InputError` says why it cannot be read (too large, not UTF-8, not JSON)."""
    where = f"the file {Path(path).name!r}"
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_GRAPH_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {where}: {exc.strerror or exc}") from None
    if len(data) > MAX_GRAPH_BYTES:
        raise InputError(
            f"{where} is larger than {MAX_GRAPH_BYTES // (1024 * 1024)} MB: not a ComfyUI graph"
        )
    return json_input.loads(data, where=where)


class WorkflowRow(QFrame):
    """One kind: its title, the template in use, the placeholders it needs, the buttons and
    the reason the last choice was refused."""

    choose_requested = Signal(str)
    default_requested = Signal(str)

    def __init__(self, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.key = template_setting(kind)
        self.dialog: QFileDialog | None = None
        self.chosen_name: str | None = None  # the file chosen in this session, if any
        self.setObjectName(f"workflow-{kind}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        title = KIND_TITLES.get(kind, kind)
        self.setAccessibleName(f"{title} workflow")
        self.title = QLabel(f"{title} ({kind})", self)
        self.title.setObjectName("workflow-title")
        font = QFont(self.title.font())
        font.setWeight(QFont.Weight.DemiBold)
        self.title.setFont(font)
        self.source = QLabel("…", self)
        self.source.setObjectName("workflow-source")
        self.source.setWordWrap(True)
        self.source.setTextFormat(Qt.TextFormat.PlainText)
        self.needs = QLabel(
            f"Needs {_placeholders(REQUIRED_PLACEHOLDERS[kind])} as the value of an input.", self
        )
        self.needs.setObjectName("workflow-needs")
        self.needs.setWordWrap(True)
        self.needs.setTextFormat(Qt.TextFormat.PlainText)
        self.needs.setToolTip(SETTINGS[self.key].help)
        self.error = QLabel(self)
        self.error.setObjectName("workflow-error")
        self.error.setAccessibleName(f"{title} workflow: not changed")
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._recolor()
        self.error.hide()
        self.choose_button = QPushButton("Choose file…", self)
        self.choose_button.setObjectName("workflow-choose")
        self.choose_button.setAccessibleName(f"Choose the {title} workflow file")
        self.choose_button.setToolTip(
            "Choose an API-format graph (ComfyUI's 'Save (API Format)'); it is checked at once"
        )
        self.default_button = QPushButton("Use default", self)
        self.default_button.setObjectName("workflow-default")
        self.default_button.setAccessibleName(f"Use the default {title} workflow")
        self.choose_button.clicked.connect(self.open_dialog)
        self.default_button.clicked.connect(lambda: self.default_requested.emit(self.kind))
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.choose_button)
        buttons.addWidget(self.default_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(4)
        for widget in (self.title, self.source, self.needs, self.error):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        self.set_busy(True)

    def _recolor(self) -> None:
        palette = self.error.palette()
        palette.setColor(QPalette.ColorRole.WindowText, error_color(self))
        self.error.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._recolor()
        super().changeEvent(event)

    def show_state(self, state: KindState) -> None:
        if state.problem is not None:
            self.source.setText(f"The setting cannot be read: {state.problem}")
        elif state.graph is not None:
            held = placeholders_in(state.graph)
            where = f" from {self.chosen_name}" if self.chosen_name else ""
            self.source.setText(
                f"Your graph{where}: {len(state.graph)} nodes, holding {_placeholders(held)}."
            )
        elif state.shipped is not None:
            self.source.setText(
                f"The shipped default ({state.shipped}), holding "
                f"{_placeholders(state.shipped_placeholders)}."
            )
        else:
            self.source.setText(
                "No default is shipped (these jobs need custom nodes): choose your graph to run "
                "them."
            )
        self.default_button.setText("Use default" if state.shipped else "Clear")
        self.default_button.setToolTip(
            "Go back to the shipped template"
            if state.shipped
            else "Remove your graph (these jobs then cannot run)"
        )
        self.default_button.setEnabled(state.own or state.problem is not None)
        self.source.setAccessibleName(self.source.text())

    def show_error(self, message: str | None) -> None:
        self.error.setText(f"Not changed: {message}" if message else "")
        self.error.setVisible(bool(message))
        self.error.setAccessibleDescription(self.error.text())

    def set_busy(self, busy: bool) -> None:
        self.choose_button.setEnabled(not busy)
        if busy:
            self.default_button.setEnabled(False)

    # -- the file dialog ---------------------------------------------------------------------

    @Slot()
    def open_dialog(self) -> None:
        """A window-modal but NON-blocking file dialog (``open()``, never ``exec()``, which
        would nest an event loop under qasync); raises the one already open."""
        if self.dialog is not None:
            self.dialog.raise_()
            return
        title = KIND_TITLES.get(self.kind, self.kind)
        self.dialog = dialog = QFileDialog(self, f"Choose the {title} workflow")
        dialog.setObjectName("workflow-file-dialog")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilters(["ComfyUI API graphs (*.json)", "All files (*)"])
        dialog.fileSelected.connect(self._on_file)
        dialog.finished.connect(self._forget_dialog)
        dialog.open()

    def _on_file(self, path: str) -> None:
        self.choose_requested.emit(path)

    def _forget_dialog(self) -> None:
        self.dialog = None


class WorkflowsPage(QWidget):
    """The Workflows settings tab. ``start()`` loads it; ``loaded`` says it has.

    ``changed`` carries ``{"kind", "stored": bool, "error": str | None}`` after a choice or a
    reset (``stored``: the setting was written)."""

    loaded = Signal()
    changed = Signal(dict)

    def __init__(self, bridge: ServiceBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page-workflows")
        self.setAccessibleName("Workflow settings")
        self.bridge = bridge
        self.svc = bridge.service
        self.is_loaded = False
        self.states: dict[str, KindState] = {}
        self._busy: set[str] = set()
        self.reads = CoalescedRead(
            bridge, self._read_state, self._show_state, name="workflows-reload"
        )

        heading = QLabel("Workflows", self)
        heading.setObjectName("page-workflows-heading")
        font = QFont(heading.font())
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setWeight(QFont.Weight.DemiBold)
        heading.setFont(font)
        self.summary = QLabel(
            "The ComfyUI graph each kind of job runs: the template shipped with the app, or "
            "your own API-format graph (ComfyUI's 'Save (API Format)'). A graph is checked as "
            "you choose it; one without the placeholders its kind needs is refused.",
            self,
        )
        self.summary.setObjectName("page-workflows-summary")
        self.summary.setWordWrap(True)
        self.banner = Banner(self)
        self.banner.setObjectName("workflows-banner")

        body = QWidget(self)
        body.setObjectName("workflow-rows")
        rows = QVBoxLayout(body)
        rows.setContentsMargins(0, 0, 0, 0)
        self.rows: dict[str, WorkflowRow] = {}
        for kind in TEMPLATE_KINDS:
            row = WorkflowRow(kind, body)
            row.choose_requested.connect(lambda path, k=kind: self.choose(k, path))
            row.default_requested.connect(self.use_default)
            rows.addWidget(row)
            self.rows[kind] = row
        rows.addStretch(1)
        self.scroll_area = QScrollArea(self)
        self.scroll_area.setObjectName("workflows-scroll")
        self.scroll_area.setAccessibleName("Workflows")
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setWidget(body)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 28, 32, 28)
        layout.setSpacing(12)
        layout.addWidget(heading)
        layout.addWidget(self.summary)
        layout.addWidget(self.banner)
        layout.addWidget(self.scroll_area, 1)
        bridge.providers_changed.connect(self.refresh)  # the registry or the settings file

    # -- loading -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[Any]:
        """Read the workflow settings off the GUI thread; emits ``loaded``."""
        return self.bridge.spawn(self.load(), name="workflows-load")

    async def load(self) -> None:
        await self.reads.request()
        self.is_loaded = True
        self.loaded.emit()

    @Slot()
    def refresh(self) -> None:
        self.reads.request()

    def _read_state(self) -> dict[str, KindState]:
        """Each kind's setting and shipped template (blocking: the settings file, the
        shipped templates' files)."""
        out: dict[str, KindState] = {}
        for kind in TEMPLATE_KINDS:
            shipped = shipped_template(kind)
            where = shipped.source.removeprefix("shipped: ") if shipped is not None else None
            held = shipped.placeholders if shipped is not None else frozenset()
            try:
                graph = self.svc.get_setting(template_setting(kind))
            except ComfyVNError as exc:
                out[kind] = KindState(kind, None, where, held, problem=exc.message)
                continue
            out[kind] = KindState(kind, graph, where, held)
        return out

    def _show_state(self, states: dict[str, KindState]) -> None:
        self.states = states
        for kind, state in states.items():
            row = self.rows[kind]
            if kind not in self._busy:
                row.set_busy(False)
                row.show_state(state)

    # -- changes -------------------------------------------------------------------------------

    def choose(self, kind: str, path: str) -> asyncio.Task[Any]:
        """Read, check and store the graph in ``path`` as ``kind``'s workflow (off the GUI
        thread); a graph the settings store refuses changes nothing."""
        return self.bridge.spawn(self._change(kind, path), name=f"workflow-{kind}")

    @Slot(str)
    def use_default(self, kind: str) -> asyncio.Task[Any]:
        """Unset ``kind``'s workflow setting (back to the shipped template, or none)."""
        return self.bridge.spawn(self._change(kind, None), name=f"workflow-{kind}")

    async def _change(self, kind: str, path: str | None) -> dict[str, Any]:
        row = self.rows[kind]
        if kind in self._busy:
            return {"kind": kind, "stored": False, "error": "busy"}
        self._busy.add(kind)
        row.set_busy(True)
        key = template_setting(kind)
        error: str | None = None
        try:
            if path is None:
                await self.bridge.write(self.svc.unset_setting, key)
            else:
                graph = await self.bridge.call(read_graph_file, path)
                # The store's parser is the check (core.runs.check_template).
                await self.bridge.write(self.svc.set_setting, key, graph)
        except ComfyVNError as exc:
            error = exc.message
        finally:
            self._busy.discard(kind)
        title = KIND_TITLES.get(kind, kind)
        if error is None:
            row.chosen_name = Path(path).name if path is not None else None
            row.show_error(None)
            words = f"uses {row.chosen_name}" if path is not None else "uses the default again"
            if path is None and self.states.get(kind, KindState(kind, None, None)).shipped is None:
                words = "has no workflow now"
            self.banner.show_message("ok", f"Saved: {title} {words}.")
        else:
            row.show_error(error)
            self.banner.show_message("error", f"{title}: not changed. {error}")
        await self.reads.request()  # shows the row as stored (and re-enables it)
        outcome = {"kind": kind, "stored": error is None, "error": error}
        self.changed.emit(outcome)
        return outcome
