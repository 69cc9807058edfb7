"""Settings → Advisor: the advisor's defaults (budget per job, latency, residency zones), the
health-check interval and the **Dispatch** section (the guards of dispatched jobs: the cost and
runtime factors, the boot timeout, RunPod's parallel runs: every ``dispatch.*`` setting), with
Apply and Revert.

The form is generated from nothing but the setting specs' help text and ranges; every read and
write goes through :class:`~comfyvn_gui.gui.bridge.ServiceBridge` (off the GUI thread). Saving
an ``advisor.*`` key makes the service re-advise the queued jobs at once; the banner says how
many job decisions that changed (the queued jobs' providers before and after the save).

A change another process makes (``comfyvn-gui settings set``) shows after :meth:`reload` (the
bridge's ``providers_changed`` fires for a change of the registry or of the settings file); the
user's unsaved edits are kept across such a reload (docs/architecture.md, "GUI").
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from comfyvn_gui.core.errors import ComfyVNError
from comfyvn_gui.core.settings import SETTINGS
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.reads import CoalescedRead
from comfyvn_gui.gui.widgets.banner import Banner

log = logging.getLogger(__name__)

BUDGET_KEY = "advisor.budget_usd"
LATENCY_KEY = "advisor.latency"
RESIDENCY_KEY = "advisor.residency"
INTERVAL_KEY = "health.interval_s"
COST_FACTOR_KEY = "dispatch.max_cost_factor"
RUNTIME_FACTOR_KEY = "dispatch.max_runtime_factor"
BOOT_TIMEOUT_KEY = "dispatch.boot_timeout_min"
RUNPOD_PARALLEL_KEY = "dispatch.runpod_parallel"


@dataclass(frozen=True)
class DispatchField:
    """How the Dispatch section edits one ``dispatch.*`` setting: its label, the spin box's
    bounds (the spec's parser's; a test checks they agree), step, decimals and suffix."""

    label: str
    low: float
    high: float
    step: float
    decimals: int  # 0: a whole number (a QSpinBox)
    suffix: str


#: The Dispatch section, in its order (the help text is the spec's).
DISPATCH_FIELDS: dict[str, DispatchField] = {
    COST_FACTOR_KEY: DispatchField("Stop at &cost", 1, 20, 0.5, 1, " × estimate"),
    RUNTIME_FACTOR_KEY: DispatchField("Stop at run&time", 1, 50, 0.5, 1, " × estimate"),
    BOOT_TIMEOUT_KEY: DispatchField("&Boot timeout", 0.1, 120, 1, 1, " min"),
    RUNPOD_PARALLEL_KEY: DispatchField("RunPod &parallel runs", 1, 16, 1, 0, ""),
}

#: The settings this page edits, in the order Apply saves them (the interval and the dispatch
#: guards first: they do not re-advise, so the advisor keys' re-advice sees the final values
#: sooner).
KEYS: tuple[str, ...] = (
    INTERVAL_KEY,
    *DISPATCH_FIELDS,
    BUDGET_KEY,
    LATENCY_KEY,
    RESIDENCY_KEY,
)

BUDGET_RANGE = (0.0, 100_000.0)
BUDGET_STEP = 0.5
#: The bounds of ``health.interval_s`` (the spec's parser; a test checks they agree).
INTERVAL_RANGE = (15, 86_400)

#: The residency zones a user chooses from, with their names. ``local`` and ``on_prem`` are
#: left out: they always satisfy any residency rule.
ZONE_NAMES: dict[str, str] = {
    "eu": "European Union",
    "uk": "United Kingdom",
    "us": "United States",
    "ca": "Canada",
    "sa": "South America",
    "asia": "Asia",
    "oceania": "Oceania",
    "me": "Middle East",
    "af": "Africa",
}
#: Zones never shown (always allowed); kept when the loaded value has only them.
HIDDEN_ZONES: tuple[str, ...] = ("local", "on_prem")

ZONE_ROLE = Qt.ItemDataRole.UserRole


class AdvisorPage(QWidget):
    """The Advisor settings tab. ``start()`` loads it; ``loaded`` says it has."""

    loaded = Signal()
    #: After Apply: ``{"saved": {key: value}, "changed": int | None, "error": str | None}``
    #: (``changed``: job decisions the re-advice changed; None when nothing re-advised).
    applied = Signal(dict)

    def __init__(self, bridge: ServiceBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page-advisor")
        self.setAccessibleName("Advisor settings")
        self.bridge = bridge
        self.svc = bridge.service
        self.is_loaded = False
        self.queued: int | None = None
        #: The form's values as loaded (normalised to what the controls can show).
        self.loaded_values: dict[str, Any] = {}
        self._hidden_zones: list[str] = []
        self._populating = False
        self._busy = False
        self._load_problem: str | None = None
        self._apply_task: asyncio.Task[Any] | None = None
        self.reads = CoalescedRead(
            bridge,
            self._read_state,
            self._show_state,
            name="advisor-reload",
            failed=self._unreadable,
        )

        self.heading = QLabel("Advisor", self)
        self.heading.setObjectName("page-advisor-heading")
        self.heading.setAccessibleName("Advisor heading")
        font = QFont(self.heading.font())
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setWeight(QFont.Weight.DemiBold)
        self.heading.setFont(font)
        self.summary = QLabel(
            "The defaults the compute advisor applies to every job that does not set its own, "
            "and the guards of dispatched jobs. Queued jobs are re-advised as soon as you "
            "apply a change to the advisor's defaults.",
            self,
        )
        self.summary.setObjectName("page-advisor-summary")
        self.summary.setAccessibleName("Advisor: what this page is for")
        self.summary.setWordWrap(True)

        self.banner = Banner(self)
        self.banner.setObjectName("advisor-banner")

        self.form_widget = QWidget(self)
        self.form_widget.setObjectName("advisor-form")
        self.form_widget.setAccessibleName("Advisor defaults")
        form = QFormLayout(self.form_widget)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.form = form

        # -- budget ------------------------------------------------------------------------
        budget_help = SETTINGS[BUDGET_KEY].help
        self.budget_row = QWidget(self.form_widget)
        self.budget_row.setObjectName("budget-row")
        self.budget_row.setAccessibleName("Budget per job")
        self.budget_limit = QCheckBox("Limit the &cost of one job", self.budget_row)
        self.budget_limit.setObjectName("budget-limit")
        self.budget_limit.setAccessibleName("Limit the cost of one job")
        self.budget_limit.setToolTip(budget_help)
        self.budget = QDoubleSpinBox(self.budget_row)
        self.budget.setObjectName("budget")
        self.budget.setAccessibleName("Budget per job in US dollars")
        self.budget.setAccessibleDescription(budget_help)
        self.budget.setToolTip(budget_help)
        self.budget.setPrefix("$")
        self.budget.setDecimals(2)
        self.budget.setRange(*BUDGET_RANGE)
        self.budget.setSingleStep(BUDGET_STEP)
        self.budget.setValue(5.0)
        self.budget.setEnabled(False)
        self.budget.setMinimumWidth(120)
        budget_layout = QHBoxLayout(self.budget_row)
        budget_layout.setContentsMargins(0, 0, 0, 0)
        budget_layout.addWidget(self.budget_limit)
        budget_layout.addWidget(self.budget)
        budget_layout.addStretch(1)
        budget_label = QLabel("&Budget per job:", self.form_widget)
        budget_label.setBuddy(self.budget_limit)
        budget_label.setToolTip(budget_help)
        form.addRow(budget_label, self.budget_row)

        # -- latency -----------------------------------------------------------------------
        latency_help = SETTINGS[LATENCY_KEY].help
        self.latency_row = QWidget(self.form_widget)
        self.latency_row.setObjectName("latency-row")
        self.latency_row.setAccessibleName("Preferred latency")
        self.latency_batch = QRadioButton("Overnight batch (chea&pest)", self.latency_row)
        self.latency_batch.setObjectName("latency-batch")
        self.latency_batch.setAccessibleName("Overnight batch (cheapest)")
        self.latency_interactive = QRadioButton("&Interactive (fast start)", self.latency_row)
        self.latency_interactive.setObjectName("latency-interactive")
        self.latency_interactive.setAccessibleName("Interactive (fast start)")
        self.latency_group = QButtonGroup(self)
        self.latency_group.setObjectName("latency")
        for button in (self.latency_batch, self.latency_interactive):
            button.setToolTip(latency_help)
            self.latency_group.addButton(button)
        self.latency_batch.setChecked(True)
        latency_layout = QVBoxLayout(self.latency_row)
        latency_layout.setContentsMargins(0, 0, 0, 0)
        latency_layout.addWidget(self.latency_batch)
        latency_layout.addWidget(self.latency_interactive)
        latency_label = QLabel("Preferred &latency:", self.form_widget)
        latency_label.setBuddy(self.latency_batch)
        latency_label.setToolTip(latency_help)
        form.addRow(latency_label, self.latency_row)

        # -- residency ---------------------------------------------------------------------
        residency_help = SETTINGS[RESIDENCY_KEY].help
        self.residency_row = QWidget(self.form_widget)
        self.residency_row.setObjectName("residency-row")
        self.residency_row.setAccessibleName("Allowed residency zones")
        self.any_zone = QCheckBox("Any z&one", self.residency_row)
        self.any_zone.setObjectName("any-zone")
        self.any_zone.setAccessibleName("Any zone")
        self.any_zone.setToolTip("Jobs may be processed in any zone (no residency rule)")
        self.zones = QListWidget(self.residency_row)
        self.zones.setObjectName("zones")
        self.zones.setAccessibleName("Allowed residency zones")
        self.zones.setAccessibleDescription(residency_help)
        self.zones.setToolTip(residency_help)
        self.zones.verticalScrollBar().setAccessibleName("Scroll the zones")
        self.zones.horizontalScrollBar().setAccessibleName("Scroll the zones sideways")
        for zone, name in ZONE_NAMES.items():
            item = QListWidgetItem(f"{name} ({zone})", self.zones)
            item.setData(ZONE_ROLE, zone)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, name)
            item.setFlags(
                Qt.ItemFlag.ItemIsUserCheckable
                | Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
            )
            item.setCheckState(Qt.CheckState.Unchecked)
        rows = self.zones.sizeHintForRow(0) * len(ZONE_NAMES) + 2 * self.zones.frameWidth()
        self.zones.setMaximumHeight(max(rows, 60))
        self.zones.setMaximumWidth(320)
        self.residency_note = QLabel(
            "Local and on-prem nodes always count as allowed.", self.residency_row
        )
        self.residency_note.setObjectName("residency-note")
        self.residency_note.setAccessibleName("About local and on-prem nodes")
        self.residency_note.setWordWrap(True)
        residency_layout = QVBoxLayout(self.residency_row)
        residency_layout.setContentsMargins(0, 0, 0, 0)
        residency_layout.addWidget(self.any_zone)
        residency_layout.addWidget(self.zones)
        residency_layout.addWidget(self.residency_note)
        residency_label = QLabel("Allowed residency &zones:", self.form_widget)
        residency_label.setBuddy(self.any_zone)
        residency_label.setToolTip(residency_help)
        form.addRow(residency_label, self.residency_row)

        # -- health interval ---------------------------------------------------------------
        interval_help = SETTINGS[INTERVAL_KEY].help
        self.interval = QSpinBox(self.form_widget)
        self.interval.setObjectName("health-interval")
        self.interval.setAccessibleName("Health-check interval in seconds")
        self.interval.setAccessibleDescription(interval_help)
        self.interval.setToolTip(interval_help)
        self.interval.setRange(*INTERVAL_RANGE)
        self.interval.setSuffix(" s")
        self.interval.setSingleStep(15)
        self.interval.setValue(int(SETTINGS[INTERVAL_KEY].default))
        self.interval.setMaximumWidth(160)
        interval_label = QLabel("Health-check i&nterval:", self.form_widget)
        interval_label.setBuddy(self.interval)
        interval_label.setToolTip(interval_help)
        form.addRow(interval_label, self.interval)

        # -- dispatch ----------------------------------------------------------------------
        self.dispatch_heading = QLabel("Dispatch", self.form_widget)
        self.dispatch_heading.setObjectName("dispatch-heading")
        self.dispatch_heading.setAccessibleName("Dispatch")
        bold = QFont(self.dispatch_heading.font())
        bold.setWeight(QFont.Weight.DemiBold)
        self.dispatch_heading.setFont(bold)
        self.dispatch_note = QLabel(
            "The guards of a job sent to a provider: it is stopped once it could cost, or has "
            "run, this many times its estimate; a rented machine must boot in time.",
            self.form_widget,
        )
        self.dispatch_note.setObjectName("dispatch-note")
        self.dispatch_note.setWordWrap(True)
        form.addRow(self.dispatch_heading)
        form.addRow(self.dispatch_note)
        #: The Dispatch section's spin boxes, by setting key.
        self.dispatch: dict[str, QSpinBox | QDoubleSpinBox] = {}
        for key, how in DISPATCH_FIELDS.items():
            help_text = SETTINGS[key].help
            box: QSpinBox | QDoubleSpinBox
            if how.decimals:
                box = QDoubleSpinBox(self.form_widget)
                box.setDecimals(how.decimals)
                box.setRange(how.low, how.high)
                box.setSingleStep(how.step)
                box.setValue(float(SETTINGS[key].default))
            else:
                box = QSpinBox(self.form_widget)
                box.setRange(int(how.low), int(how.high))
                box.setSingleStep(int(how.step))
                box.setValue(int(SETTINGS[key].default))
            box.setObjectName(key.replace(".", "-").replace("_", "-"))
            words = how.label.replace("&", "")
            box.setAccessibleName(f"{words} ({how.suffix.strip()})" if how.suffix else words)
            box.setAccessibleDescription(help_text)
            box.setToolTip(help_text)
            box.setSuffix(how.suffix)
            box.setMaximumWidth(200)
            box.valueChanged.connect(self._changed)
            label = QLabel(how.label + ":", self.form_widget)
            label.setBuddy(box)
            label.setToolTip(help_text)
            form.addRow(label, box)
            self.dispatch[key] = box

        # -- preview and buttons -----------------------------------------------------------
        self.preview = QLabel("Counting the queued jobs…", self)
        self.preview.setObjectName("advisor-preview")
        self.preview.setAccessibleName("Queued jobs")
        self.preview.setWordWrap(True)

        self.apply_button = QPushButton("&Apply", self)
        self.apply_button.setObjectName("advisor-apply")
        self.apply_button.setAccessibleName("Apply")
        self.apply_button.setToolTip("Save the changed settings; queued jobs are re-advised")
        self.revert_button = QPushButton("Rever&t", self)
        self.revert_button.setObjectName("advisor-revert")
        self.revert_button.setAccessibleName("Revert")
        self.revert_button.setToolTip("Put back the values that were loaded")
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.revert_button)
        buttons.addStretch(1)

        self.scroll_area = QScrollArea(self)
        self.scroll_area.setObjectName("advisor-scroll")
        self.scroll_area.setAccessibleName("Advisor settings")
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.verticalScrollBar().setAccessibleName("Scroll the advisor settings")
        self.scroll_area.horizontalScrollBar().setAccessibleName(
            "Scroll the advisor settings sideways"
        )
        self.scroll_area.setWidget(self.form_widget)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 28, 32, 28)
        layout.setSpacing(12)
        layout.addWidget(self.heading)
        layout.addWidget(self.summary)
        layout.addWidget(self.banner)
        layout.addWidget(self.scroll_area, 1)
        layout.addWidget(self.preview)
        layout.addLayout(buttons)

        self.budget_limit.toggled.connect(self._on_budget_limit)
        self.any_zone.toggled.connect(self._on_any_zone)
        self.budget.valueChanged.connect(self._changed)
        self.latency_group.buttonToggled.connect(self._changed)
        self.zones.itemChanged.connect(self._changed)
        self.interval.valueChanged.connect(self._changed)
        self.apply_button.clicked.connect(self.apply)
        self.revert_button.clicked.connect(self.revert)
        bridge.providers_changed.connect(self.refresh)  # the registry or the settings file
        bridge.jobs_changed.connect(self.refresh_count)

        self.any_zone.setChecked(True)
        self._set_form_enabled(False)
        self._update_buttons()

    # -- the form's values -----------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        """What the form holds now, as the settings' typed values."""
        return {
            INTERVAL_KEY: self.interval.value(),
            **{key: self._dispatch_value(key) for key in DISPATCH_FIELDS},
            BUDGET_KEY: round(self.budget.value(), 2) if self.budget_limit.isChecked() else None,
            LATENCY_KEY: "interactive" if self.latency_interactive.isChecked() else "batch",
            RESIDENCY_KEY: self._residency(),
        }

    def _dispatch_value(self, key: str) -> float | int:
        box = self.dispatch[key]
        if isinstance(box, QDoubleSpinBox):
            return round(box.value(), DISPATCH_FIELDS[key].decimals)
        return box.value()

    def _residency(self) -> list[str]:
        if self.any_zone.isChecked():
            return []
        chosen = [
            str(item.data(ZONE_ROLE))
            for item in self._zone_items()
            if item.checkState() == Qt.CheckState.Checked
        ]
        # Local and on-prem always satisfy a residency rule: listing them beside a cloud zone
        # changes nothing. With no cloud zone ticked they are the rule ("only local and
        # on-prem"), which needs a zone: [] would mean "any zone".
        return chosen or self._hidden_zones or ["local"]

    def changes(self) -> dict[str, Any]:
        """The settings whose form value differs from the loaded one, in save order."""
        now = self.values()
        return {
            k: now[k] for k in KEYS if k in self.loaded_values and now[k] != self.loaded_values[k]
        }

    def is_dirty(self) -> bool:
        return bool(self.changes())

    def _zone_items(self) -> list[QListWidgetItem]:
        return [self.zones.item(i) for i in range(self.zones.count())]

    def zone_item(self, zone: str) -> QListWidgetItem:
        """The list item of ``zone`` (e.g. ``eu``)."""
        for item in self._zone_items():
            if item.data(ZONE_ROLE) == zone:
                return item
        raise KeyError(zone)

    def _show(self, values: dict[str, Any], keys: tuple[str, ...] = KEYS) -> None:
        """Put ``values`` in the controls of ``keys``."""
        self._populating = True
        try:
            if INTERVAL_KEY in keys:
                self.interval.setValue(int(values[INTERVAL_KEY]))
            for key, box in self.dispatch.items():
                if key in keys:
                    box.setValue(values[key])  # (a QSpinBox's are whole numbers)
            if BUDGET_KEY in keys:
                budget = values[BUDGET_KEY]
                self.budget_limit.setChecked(budget is not None)
                if budget is not None:
                    self.budget.setValue(float(budget))
            if LATENCY_KEY in keys:
                interactive = values[LATENCY_KEY] == "interactive"
                (self.latency_interactive if interactive else self.latency_batch).setChecked(True)
            if RESIDENCY_KEY in keys:
                zones = list(values[RESIDENCY_KEY] or [])
                self._hidden_zones = [z for z in zones if z in HIDDEN_ZONES]
                shown = {z for z in zones if z in ZONE_NAMES}
                self.any_zone.setChecked(not zones)
                for item in self._zone_items():
                    item.setCheckState(
                        Qt.CheckState.Checked
                        if item.data(ZONE_ROLE) in shown
                        else Qt.CheckState.Unchecked
                    )
        finally:
            self._populating = False
        self._update_buttons()

    # -- reacting to the controls ----------------------------------------------------------

    @Slot(bool)
    def _on_budget_limit(self, on: bool) -> None:
        self.budget.setEnabled(on and self.form_widget.isEnabled())
        self._changed()

    @Slot(bool)
    def _on_any_zone(self, on: bool) -> None:
        if on:
            was = self._populating
            self._populating = True
            try:
                for item in self._zone_items():
                    item.setCheckState(Qt.CheckState.Unchecked)
            finally:
                self._populating = was
        self.zones.setEnabled(not on)
        self._changed()

    def _changed(self, *_args: Any) -> None:
        if not self._populating:
            self._update_buttons()

    def _update_buttons(self) -> None:
        dirty = self.is_loaded and self.is_dirty()
        self.apply_button.setEnabled(dirty and not self._busy and self._load_problem is None)
        self.revert_button.setEnabled(dirty and not self._busy)
        only_local = not self.any_zone.isChecked() and not any(
            item.checkState() == Qt.CheckState.Checked for item in self._zone_items()
        )
        self.residency_note.setText(
            "No cloud zone is allowed: only local and on-prem nodes may run jobs."
            if only_local
            else "Local and on-prem nodes always count as allowed."
        )

    def _set_form_enabled(self, on: bool) -> None:
        self.form_widget.setEnabled(on)
        self.budget.setEnabled(on and self.budget_limit.isChecked())
        self.zones.setEnabled(on and not self.any_zone.isChecked())

    # -- loading ---------------------------------------------------------------------------

    def start(self) -> asyncio.Task[Any]:
        """Load the settings and the queue's size off the GUI thread; emits ``loaded``."""
        return self.bridge.spawn(self.load(), name="advisor-load")

    async def load(self) -> None:
        await self.reload()
        self.is_loaded = True
        self._update_buttons()
        self.loaded.emit()

    async def reload(self) -> None:
        """Read the settings (and the queue) again; unsaved edits in the form are kept."""
        await self.reads.request()

    def _unreadable(self, exc: ComfyVNError) -> None:
        self._load_problem = exc.message
        self._set_form_enabled(False)
        self.banner.show_message("error", f"The settings cannot be read: {exc.message}")
        self._update_buttons()

    def _show_state(self, state: tuple[dict[str, Any], int]) -> None:
        settings, queued = state
        if self._load_problem is not None:
            self._load_problem = None
            self.banner.clear()
        edited = self.changes() if self.loaded_values else {}
        self._show(settings)
        self.loaded_values = self.values()  # normalised to what the controls can hold
        if edited:
            self._show(edited, tuple(edited))
        self._set_form_enabled(True)
        self._show_count(queued)

    def _read_state(self) -> tuple[dict[str, Any], int]:
        settings = self.svc.get_settings()
        return {k: settings[k] for k in KEYS}, self._count_queued()

    def _count_queued(self) -> int:
        return self.svc.count_jobs(["queued"])

    @Slot()
    def refresh(self) -> None:
        """Reload (another process may have changed the settings); one reload at a time."""
        self.reads.request()

    @Slot()
    def refresh_count(self) -> None:
        """Count the queued jobs again (the bridge saw the job queue change); a reload in
        progress counts them anyway (it reads once more if it has begun reading)."""
        if self.reads.busy:
            self.reads.request()  # the read under way reads once more, the count included
            return

        async def run() -> None:
            try:
                count = await self.bridge.call(self._count_queued)
            except ComfyVNError as exc:
                self.preview.setText(f"The queued jobs cannot be counted: {exc.message}")
                return
            self._show_count(count)

        self.bridge.spawn(run(), name="advisor-count")

    def _show_count(self, queued: int) -> None:
        self.queued = queued
        self.preview.setText(f"Queued jobs: {queued}; re-advised when you change these.")
        self.preview.setAccessibleDescription(self.preview.text())

    # -- apply / revert --------------------------------------------------------------------

    @Slot()
    def revert(self) -> None:
        """Put back the values that were loaded."""
        if not self.loaded_values or self._busy:
            return
        self._show(self.loaded_values)
        self.banner.clear()

    @Slot()
    def apply(self) -> asyncio.Task[Any] | None:
        """Save every changed setting (the service re-advises the queue at once)."""
        if self._busy or not self.is_loaded or not self.is_dirty():
            return None
        self._busy = True  # at once: a second click spawns nothing
        self._update_buttons()
        self.banner.show_message("info", "Saving…")
        task = self.bridge.spawn(self._apply(self.changes()), name="advisor-apply")
        task.add_done_callback(self._apply_done)  # also when cancelled before it ran
        self._apply_task = task
        return task

    def _apply_done(self, _task: asyncio.Task[Any]) -> None:
        self._busy = False

    async def _apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        readvises = any(k.startswith("advisor.") for k in changes)
        saved: dict[str, Any] = {}
        error: str | None = None
        changed: int | None = None
        try:
            before = (await self.bridge.call(self._queued_providers)) if readvises else {}
            for key, value in changes.items():
                try:
                    saved[key] = await self.bridge.write(self.svc.set_setting, key, value)
                except ComfyVNError as exc:
                    error = exc.message
                    break
            if readvises and any(k.startswith("advisor.") for k in saved):
                after = await self.bridge.call(self._queued_providers)
                changed = sum(1 for jid, p in after.items() if jid in before and before[jid] != p)
                self.queued = len(after)
        except ComfyVNError as exc:  # counting the queue failed; the settings are saved
            error = error or exc.message
        finally:
            self._busy = False
        for key in saved:  # what is saved is the new baseline; the rest stays an edit
            self.loaded_values[key] = changes[key]
        self._update_buttons()
        self._report(saved, changed, error)
        outcome = {"saved": saved, "changed": changed, "error": error}
        self.applied.emit(outcome)
        return outcome

    def _queued_providers(self) -> dict[int, str | None]:
        """Each queued job's provider (blocking: run through the bridge)."""
        return self.svc.job_providers(["queued"])

    def _report(self, saved: dict[str, Any], changed: int | None, error: str | None) -> None:
        if error is not None:
            if saved:
                names = ", ".join(saved)
                self.banner.show_message("error", f"Saved {names}; not saved the rest: {error}")
            else:
                self.banner.show_message("error", f"Not saved: {error}")
            return
        if changed is None:
            self.banner.show_message("ok", "Saved.")
        elif not self.queued and changed == 0:
            self.banner.show_message("ok", "Saved. No job is queued, so none was re-advised.")
        elif changed == 0:
            self.banner.show_message("ok", "Saved; the queue was re-advised: no decision changed.")
        else:
            plural = "decision" if changed == 1 else "decisions"
            self.banner.show_message("ok", f"Saved. {changed} job {plural} changed.")
        if self.queued is not None:
            self._show_count(self.queued)
