"""The credential form of one provider, generated from its catalog profile.

:class:`CredentialForm` shows and collects the values of ONE provider: its name (and id when
new), the profile's auth fields, base URL and GPU, the options and endpoint overrides (in
collapsed sections), the registry metadata the onboarding notes ask for (the profile's
``meta_fields``: a security group, a price ceiling, a runbook link; kept in the entry's
``meta``) and the onboarding and legal notes. It never touches the keyring or the
network: the page around it hands :meth:`CredentialForm.payload` (the one provider input the
service saves) to the service off the GUI thread (docs/architecture.md, "GUI").

Each input is a :class:`~.fields.FieldWidget` picked by the field's kind (:data:`.fields.WIDGETS`).
Validation runs immediately on every edit: it is a few regular expressions, so there is no
debounce timer to leak. Like Spyder's remote-client dialog, each field shows its reason beside
it (``field-<name>-error``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QVBoxLayout, QWidget
from superqt import QCollapsible

from comfyvn_gui.core.catalog import AuthField, ProviderProfile, load_catalog
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.gui.palette import error_color

from .fields import META_WIDGETS, WIDGETS, ChoiceField, FieldWidget, TextField
from .form_helpers import (
    check_id_text,
    check_name,
    check_url,
    in_list,
    legal_text,
    meta_spec,
    meta_validator,
    mnemonic,
    spec,
)

__all__ = ["CredentialForm"]


class _Section(QCollapsible):
    """A collapsed-by-default section whose fields are hidden (out of the tab order) while
    collapsed."""

    def __init__(self, title: str, object_name: str, parent: QWidget) -> None:
        super().__init__(title, parent)
        self.setObjectName(object_name)
        self.setAccessibleName(title)
        self.toggleButton().setAccessibleName(title)
        self.body = QWidget(self)
        self.body.setObjectName(f"{object_name}-body")
        self.body.setAccessibleName(title)
        for child in self.findChildren(QWidget):
            if not child.accessibleName() and child is not self.toggleButton():
                child.setAccessibleName(title)
        self.rows = QFormLayout(self.body)
        self.addWidget(self.body)
        self.body.hide()

    def expand(self, animate: bool = True) -> None:
        self.body.show()
        super().expand(animate)

    def collapse(self, animate: bool = True) -> None:
        super().collapse(animate)
        self.body.hide()


class CredentialForm(QWidget):
    """The credential form of one provider, generated from ``profile``.

    ``entry`` is the registered provider being edited (``None``: a new one from the template).
    ``keyring_backend`` names the keyring for "stored in …" placeholders; ``gpu_names`` are
    the catalog's GPU names (default: the bundled catalog's).

    Signals: ``changed()`` on every edit, ``validity_changed(bool)`` when :meth:`is_valid`
    flips. Problem keys (:meth:`problems`, :meth:`highlight`): ``name``, ``id``, ``base_url``,
    ``gpu``, each field's name, ``endpoints.<name>`` (``endpoints`` = all of them) and
    ``meta.<name>`` (a metadata field).
    """

    changed = Signal()
    validity_changed = Signal(bool)

    def __init__(
        self,
        profile: ProviderProfile,
        entry: ProviderEntry | None = None,
        *,
        keyring_backend: str = "",
        gpu_names: Sequence[str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName(f"credential-form-{profile.id}")
        self.profile = profile
        self.entry = entry
        self._backend = keyring_backend
        self._inputs: dict[str, FieldWidget] = {}
        self.fields: dict[str, FieldWidget] = {}
        #: The registry metadata inputs, by meta key (the profile's ``meta_fields``).
        self.meta_inputs: dict[str, FieldWidget] = {}
        self._sections: dict[str, _Section] = {}
        self._highlights: dict[str, str] = {}
        self._show_all = False
        self._mnemonics: set[str] = set()
        self._qss_color = ""

        layout = QVBoxLayout(self)
        self.banner = QLabel(self)
        self.banner.setObjectName("form-error")
        self.banner.setTextFormat(Qt.TextFormat.PlainText)
        self.banner.setWordWrap(True)
        self.banner.hide()
        layout.addWidget(self.banner)
        rows = QFormLayout()
        layout.addLayout(rows)
        self._build_identity(rows)
        for f in profile.auth_fields:
            self._add_field(rows, f)
        if not profile.auth_fields:
            none = QLabel("Nothing to enter: this provider needs no credentials.", self)
            none.setObjectName("no-fields")
            rows.addRow(none)
        self._build_connection(rows, gpu_names)
        if profile.options:
            section = self._section("More options", "options", layout)
            for f in profile.options:
                self._add_field(section.rows, f, section)
        if profile.endpoints:
            self._build_endpoints(layout)
        if profile.meta_fields:
            self._build_meta(layout)
        self._build_notes(layout)
        layout.addStretch(1)
        self._fill()
        for widget in self._inputs.values():
            widget.changed.connect(lambda w=widget: self._on_changed(w))
        self._valid = True
        self._restyle()
        self._revalidate()
        self._baseline = self._state()

    # -- building ----------------------------------------------------------------------------

    def _label(self, text: str, buddy: QWidget, required: bool = False) -> QLabel:
        label = QLabel(mnemonic(text, self._mnemonics) + (" *" if required else ""), self)
        label.setBuddy(buddy)
        return label

    def _add(
        self,
        rows: QFormLayout,
        widget: FieldWidget,
        problem_key: str,
        section: _Section | None = None,
    ) -> FieldWidget:
        rows.addRow(self._label(widget.field.label, widget.editor, widget.field.required), widget)
        self._inputs[problem_key] = widget
        if section is not None:
            self._sections[problem_key] = section
        return widget

    def _add_field(self, rows: QFormLayout, f: AuthField, section: _Section | None = None) -> None:
        self.fields[f.name] = self._add(rows, WIDGETS[f.kind](f, self), f.name, section)

    def _section(self, title: str, object_name: str, layout: QVBoxLayout) -> _Section:
        section = _Section(title, object_name, self)
        layout.addWidget(section)
        return section

    def _build_identity(self, rows: QFormLayout) -> None:
        name = spec(
            "name", "Name", "How this provider is shown in the list (up to 200 characters)."
        )
        self._add(rows, TextField(name, self, key="name", validator=check_name), "name")
        if self.entry is None:
            ident = spec(
                "id",
                "ID",
                "A short stable id for scripts and the command line: lower-case letters, digits "
                "and inner hyphens. Leave empty to have one made from the template id.",
                required=False,
                placeholder="made from the template id",
            )
            self._add(rows, TextField(ident, self, key="id", validator=check_id_text), "id")
        else:
            shown = QLabel(self.entry.id, self)
            shown.setObjectName("id-readonly")
            shown.setAccessibleName("ID")
            shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            rows.addRow("ID", shown)

    def _build_connection(self, rows: QFormLayout, gpu_names: Sequence[str] | None) -> None:
        p = self.profile
        primary = p.endpoints.get(p.primary_endpoint) if p.primary_endpoint else None
        url_help = (
            f"Overrides the {p.primary_endpoint} endpoint; leave empty for the default."
            if p.primary_endpoint
            else f"{p.name} has no HTTP endpoint."
        )
        placeholder = primary or "the provider's own"
        url = spec("base_url", "Base URL", url_help, required=False, placeholder=placeholder)
        base = self._add(
            rows, TextField(url, self, key="base-url", validator=check_url), "base_url"
        )
        base.editor.setEnabled(p.primary_endpoint is not None)
        if p.reports_own_gpu:
            words = "reported by its ComfyUI" if p.kind == "custom" else "reported by the node"
            gpu = QLabel(words, self)
            gpu.setObjectName("gpu")
            gpu.setAccessibleName("GPU")
            gpu.setEnabled(False)
            rows.addRow("GPU", gpu)
            return
        names = list(gpu_names if gpu_names is not None else load_catalog().gpus)
        if p.default_gpu not in names:
            names.insert(0, p.default_gpu)
        gpu_help = f"The GPU type to run on (the profile's default: {p.default_gpu})."
        field = spec("gpu", "GPU", gpu_help, kind="choice", choices=names, default=p.default_gpu)
        self._add(rows, ChoiceField(field, self, key="gpu", validator=in_list(names)), "gpu")

    def _build_endpoints(self, layout: QVBoxLayout) -> None:
        section = self._section("Endpoints", "endpoints", layout)
        for name, default in self.profile.endpoints.items():
            why = f"default {default}" if default else "no fixed default"
            help_text = f"Overrides the {name} endpoint ({why})."
            field = spec(name, name, help_text, required=False, placeholder=default or "no default")
            widget = TextField(field, self, key=f"endpoint-{name}", validator=check_url)
            self._add(section.rows, widget, f"endpoints.{name}", section)

    def _build_meta(self, layout: QVBoxLayout) -> None:
        section = self._section("Registry metadata", "meta", layout)
        for m in self.profile.meta_fields:
            widget = META_WIDGETS[m.kind](
                meta_spec(m), self, key=f"meta-{m.name}", validator=meta_validator(m)
            )
            self.meta_inputs[m.name] = self._add(section.rows, widget, f"meta.{m.name}", section)

    def _build_notes(self, layout: QVBoxLayout) -> None:
        notes = QLabel(self.profile.onboarding_notes, self)
        notes.setObjectName("notes")
        notes.setTextFormat(Qt.TextFormat.PlainText)
        notes.setWordWrap(True)
        layout.addWidget(notes)
        box = QGroupBox("Legal && data residency", self)
        box.setAccessibleName("Legal and data residency")
        box.setObjectName("legal")
        inner = QVBoxLayout(box)
        legal = QLabel(legal_text(self.profile), box)
        legal.setObjectName("legal-notes")
        legal.setTextFormat(Qt.TextFormat.PlainText)
        legal.setWordWrap(True)
        legal.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        inner.addWidget(legal)
        layout.addWidget(box)

    def _fill(self) -> None:
        entry = self.entry
        config: dict[str, Any] = entry.config if entry is not None else {}
        self._inputs["name"].set_value(entry.name if entry is not None else self.profile.name)
        self._inputs["base_url"].set_value(entry.base_url if entry is not None else None)
        if "gpu" in self._inputs:
            gpu = entry.gpu if entry is not None and entry.gpu else self.profile.default_gpu
            self._inputs["gpu"].set_value(gpu)
        stored = set(entry.secrets_set) if entry is not None else set()
        for name, widget in self.fields.items():
            widget.set_stored(name in stored, self._backend)
            if entry is None:
                widget.set_value(widget.field.default)
            elif not widget.field.secret and config.get(name) is not None:
                widget.set_value(str(config[name]))
        overrides = config.get("endpoints") or {}
        for name in self.profile.endpoints:
            if isinstance(overrides.get(name), str):
                self._inputs[f"endpoints.{name}"].set_value(overrides[name])
        meta: dict[str, Any] = entry.meta if entry is not None else {}
        for m in self.profile.meta_fields:
            self.meta_inputs[m.name].set_value(m.text(meta.get(m.name)) or None)

    # -- state and validation ----------------------------------------------------------------

    def _state(self) -> dict[str, tuple[str, bool, bool]]:
        return {key: widget.state() for key, widget in self._inputs.items()}

    def _on_changed(self, widget: FieldWidget) -> None:
        widget.touched = True
        key = next(k for k, w in self._inputs.items() if w is widget)
        self._follow_machine(key)
        self._highlights.pop(key, None)
        if not self._highlights:
            self.banner.hide()
        self._revalidate()
        self.changed.emit()

    def _follow_machine(self, key: str) -> None:
        """The GPU and the machine are one choice (issue 21): picking a GPU picks the machine
        that carries it (``ProviderProfile.machine_for_gpu``, the rule saving applies), and a
        listed machine shows its GPU, so the form never sends a pair the save refuses."""
        p = self.profile
        option = p.machine_option
        if (
            option is None
            or not p.machines
            or option not in self.fields
            or "gpu" not in self._inputs
        ):
            return
        machine_input, gpu_input = self.fields[option], self._inputs["gpu"]
        if key == "gpu":
            gpu = gpu_input.value()
            current = p.machine(machine_input.value() or p.field(option).default)
            if gpu and (current is None or current.gpu != gpu):
                region = self.fields["region"].value() if "region" in self.fields else None
                fit = p.machine_for_gpu(gpu, region)
                if fit is not None:
                    machine_input.set_value(fit.id)
        elif key == option:
            machine = p.machine(machine_input.value())
            if machine is not None and gpu_input.value() != machine.gpu:
                gpu_input.set_value(machine.gpu)

    def _revalidate(self) -> None:
        self._problems: dict[str, str] = {}
        for key, widget in self._inputs.items():
            reason = widget.check()
            if reason:
                self._problems[key] = reason
            visible = self._show_all or widget.touched or widget.value() is not None
            widget.set_error((reason if visible else None) or self._highlights.get(key))
        valid = not self._problems
        if valid != self._valid:
            self._valid = valid
            self.validity_changed.emit(valid)

    def _restyle(self) -> None:
        color = error_color(self).name()
        if color != self._qss_color:
            self._qss_color = color
            self.banner.setStyleSheet(f"color: {color};")
            self.setStyleSheet(
                f'QLineEdit[invalid="true"], QComboBox[invalid="true"] '
                f"{{ border: 1px solid {color}; border-radius: 2px; }}"
            )

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._restyle()
        super().changeEvent(event)

    # -- public API --------------------------------------------------------------------------

    def field_widget(self, key: str) -> FieldWidget:
        """The input for a problem key (a field name, ``name``, ``endpoints.<name>`` …)."""
        return self._inputs[key]

    def problems(self) -> dict[str, str]:
        """Problem key -> reason, for every currently invalid input."""
        return dict(self._problems)

    def is_valid(self) -> bool:
        return not self._problems

    def is_dirty(self) -> bool:
        return self._state() != self._baseline

    def show_problems(self) -> None:
        """Show every reason, also "required" on inputs not yet touched (e.g. on Save)."""
        self._show_all = True
        self._revalidate()

    def payload(self) -> dict[str, Any]:
        """The one provider input the page hands, unchanged, to ``Service.save_provider``
        (it creates the provider when new and updates it when it exists).

        ``template_id`` is the profile's. ``config`` holds the non-empty non-secret fields and
        options (stripped) and ``endpoints`` overrides; for an existing entry a field (or
        endpoint) that was set when the form was built (or last saved) and is now empty is sent
        as ``None`` (= remove it: the registry merges ``config`` over the stored one, so
        leaving it out would keep it). ``meta`` holds the metadata fields' typed values
        (:meth:`MetaField.parse`) and ``None`` for one emptied (the registry merges ``meta``
        too; its other keys are kept); left out when empty. ``secrets`` holds the typed
        secrets (replace) and ``None`` for a stored secret marked by Clear (delete); an
        untouched stored secret is left out (keep), and so is ``secrets`` when empty. ``id`` is
        the entry's, or the typed one for a new provider (left out when empty: the registry
        makes one from the template id).
        """
        entry, p = self.entry, self.profile
        out: dict[str, Any] = {}
        new_id = entry.id if entry is not None else self._inputs["id"].value()
        if new_id is not None:
            out["id"] = new_id
        out["template_id"] = p.id
        out["name"] = self._inputs["name"].value() or ""
        if p.primary_endpoint is not None:
            out["base_url"] = self._inputs["base_url"].value()
        if "gpu" in self._inputs:
            gpu = self._inputs["gpu"].value()
            follows_default = entry is not None and entry.gpu is None
            out["gpu"] = None if follows_default and gpu == p.default_gpu else gpu
        else:
            out["gpu"] = None

        def was_set(key: str) -> bool:
            return entry is not None and bool(self._baseline[key][0].strip())

        config: dict[str, Any] = {}
        secrets: dict[str, str | None] = {}
        for name, widget in self.fields.items():
            value = widget.value()
            if widget.field.secret:
                if value is not None:
                    secrets[name] = value
                elif widget.is_cleared():
                    secrets[name] = None
            elif value is not None or was_set(name):
                config[name] = value
        endpoints = {
            name: self._inputs[f"endpoints.{name}"].value()
            for name in p.endpoints
            if self._inputs[f"endpoints.{name}"].value() is not None or was_set(f"endpoints.{name}")
        }
        if endpoints:
            config["endpoints"] = endpoints
        out["config"] = config
        if secrets:
            out["secrets"] = secrets
        meta: dict[str, Any] = {}
        for m in p.meta_fields:
            text = self.meta_inputs[m.name].value()
            try:
                value = m.parse(text)
            except ValueError:
                value = text  # the form is invalid: the service refuses it naming the field
            if value is not None or was_set(f"meta.{m.name}"):
                meta[m.name] = value
        if meta:
            out["meta"] = meta
        return out

    def reset(self) -> None:
        """Restore the state the form was built with (or last saved): Cancel."""
        was_dirty = self.is_dirty()
        for key, widget in self._inputs.items():
            widget.restore(self._baseline[key])
        self._highlights.clear()
        self._show_all = False
        self.banner.hide()
        self._revalidate()
        if was_dirty:
            self.changed.emit()

    def highlight(self, fields: Sequence[str], message: str) -> None:
        """Mark ``fields`` as rejected with ``message`` (after a failed Validate) and focus the
        first. Unknown or no fields: the message goes to the banner above the form."""
        keys: list[str] = []
        for name in fields:
            name = name.removeprefix("config.").removeprefix("secrets.")
            if name == "endpoints":
                keys += [k for k in self._inputs if k.startswith("endpoints.")]
            elif name in self._inputs:
                keys.append(name)
            elif f"meta.{name}" in self._inputs:  # the registry names a meta key bare
                keys.append(f"meta.{name}")
        for key in keys:
            self._highlights[key] = message
        if not keys:
            self.banner.setText(message)
            self.banner.show()
        self._revalidate()
        if keys:
            section = self._sections.get(keys[0])
            if section is not None and not section.isExpanded():
                section.expand(animate=False)
            self._inputs[keys[0]].editor.setFocus(Qt.FocusReason.OtherFocusReason)

    def clear_highlights(self) -> None:
        self._highlights.clear()
        self.banner.hide()
        self._revalidate()

    def set_stored(self, secrets_set: Sequence[str], backend: str) -> None:
        """After a Save: which secrets the keyring now holds; typed secrets are emptied and the
        current values become the state :meth:`reset` returns to."""
        self._backend = backend
        for name, widget in self.fields.items():
            if widget.field.secret:
                widget.set_stored(name in secrets_set, backend)
                widget.set_value(None)
                widget.touched = False
        self._revalidate()
        self._baseline = self._state()
