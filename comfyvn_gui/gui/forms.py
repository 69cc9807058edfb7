"""The credential form of one provider, generated from its catalog profile.

:class:`CredentialForm` shows and collects the values of ONE provider: its name (and id when
new), the profile's auth fields, base URL and GPU, the options and endpoint overrides (in
collapsed sections) and the onboarding and legal notes. It never touches the keyring or the
network: the page around it saves :meth:`CredentialForm.payload` off the GUI thread. The only
disk access is reading a chosen service-account key file (at most 64 KB) in its slot.

Like qutebrowser's prompts, ONE mapping picks the widget class for a field's kind
(:data:`WIDGETS`); every class is a :class:`FieldWidget`. Validation is derived from the
field spec (``AuthField.check_value`` plus the kind's own checks) and runs immediately on every
edit: it is a few regular expressions, so there is no debounce timer to leak. Like Spyder's
remote-client dialog, each field shows its reason beside it (``field-<name>-error``).

Secrets are never loaded into the form. A secret that is stored shows an empty input whose
placeholder says where it is stored; typing replaces it, "Clear" marks it for deletion.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from PySide6.QtCore import QEvent, QFile, QIODevice, QPointF, QSignalBlocker, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QIcon,
    QKeySequence,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible, QSearchableComboBox

from comfyvn_gui.core.catalog import AuthField, AuthFieldKind, ProviderProfile, load_catalog
from comfyvn_gui.core.models import ID_MAX_LEN, ID_RE, RESERVED_IDS, ProviderEntry

__all__ = [
    "MAX_KEY_FILE_BYTES",
    "WIDGETS",
    "ChoiceField",
    "CredentialForm",
    "FieldWidget",
    "JsonFileField",
    "PathField",
    "SecretField",
    "TextField",
]

MAX_KEY_FILE_BYTES = 64 * 1024
REVEAL_SHORTCUT = "Ctrl+Shift+R"
CHOOSE = "— choose —"
_URL_PREFIXES = ("http://", "https://")
Validator = Callable[[str], str | None]


def _error_color(widget: QWidget) -> QColor:
    """An accessible red for error text: darker on light windows, lighter on dark ones."""
    dark = widget.palette().color(QPalette.ColorRole.Window).lightness() < 128
    return QColor("#f28b82" if dark else "#d93025")


def _eye_icon(color: QColor, crossed: bool) -> QIcon:
    """A drawn eye (crossed out while the secret is shown); no icon theme needed."""
    pixmap = QPixmap(32, 32)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(color, 2.5))
    outline = QPainterPath(QPointF(3, 16))
    outline.quadTo(16, 3, 29, 16)
    outline.quadTo(16, 29, 3, 16)
    painter.drawPath(outline)
    painter.setBrush(color)
    painter.drawEllipse(QPointF(16, 16), 4.5, 4.5)
    if crossed:
        painter.drawLine(6, 27, 26, 5)
    painter.end()
    return QIcon(pixmap)


def _mnemonic(text: str, used: set[str]) -> str:
    """``text`` with '&' before its first letter or digit not in ``used`` ('&' escaped)."""
    for i, char in enumerate(text):
        if char.isalnum() and char.lower() not in used:
            used.add(char.lower())
            return text[:i].replace("&", "&&") + "&" + text[i:].replace("&", "&&")
    return text.replace("&", "&&")


def _check_url(text: str) -> str | None:
    if not text.startswith(_URL_PREFIXES) or len(text.split("://", 1)[1]) == 0:
        return "must start with http:// or https://"
    if any(c.isspace() for c in text):
        return "must not contain spaces"
    return None


# --------------------------------------------------------------------------------------------
# One widget class per field kind
# --------------------------------------------------------------------------------------------


class FieldWidget(QWidget):
    """The input of one :class:`AuthField`: an editor, its buttons and an error line.

    ``value()`` is the stripped text or ``None`` when empty. For a secret field that is stored
    in the keyring, ``stored`` is true and the input starts empty (empty = keep); the "Clear"
    button marks it for deletion (:meth:`is_cleared`). The editor's objectName is ``key``
    (``field-<name>``), the error label's ``<key>-error``.
    """

    changed = Signal()
    replace_hint: ClassVar[str] = "type to replace"

    def __init__(
        self,
        field: AuthField,
        parent: QWidget | None = None,
        *,
        key: str | None = None,
        validator: Validator | None = None,
    ) -> None:
        super().__init__(parent)
        self.field = field
        self.key = key or f"field-{field.name}"
        self.setObjectName(f"{self.key}-widget")
        self.setAccessibleName(field.label)
        self.stored = False
        self.touched = False
        self._backend = ""
        self._cleared = False
        self._validator = validator
        self.dialog: QFileDialog | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        self._row = QHBoxLayout()
        self._row.setSpacing(4)
        outer.addLayout(self._row)
        self.editor = self._build()
        self.editor.setObjectName(self.key)
        self.editor.setAccessibleName(field.label)
        self.editor.setAccessibleDescription(field.help)
        self.editor.setToolTip(field.help)
        self._row.insertWidget(0, self.editor, 1)
        self.clear_button: QToolButton | None = None
        if field.secret:
            self.clear_button = self._button("Clear", "clear", f"Delete stored {field.label}")
            self.clear_button.setCheckable(True)
            self.clear_button.setToolTip(f"Delete the stored {field.label} when you save")
            self.clear_button.toggled.connect(self._on_clear_toggled)
            self.clear_button.hide()
        self.error_label = QLabel(self)
        self.error_label.setObjectName(f"{self.key}-error")
        self.error_label.setTextFormat(Qt.TextFormat.PlainText)
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        outer.addWidget(self.error_label)
        self._recolor()
        self._update_placeholder()

    # -- what a kind provides --------------------------------------------------------------

    def _build(self) -> QWidget:
        edit = QLineEdit(self)
        edit.textChanged.connect(self._on_edit)
        return edit

    def _text(self) -> str:
        assert isinstance(self.editor, QLineEdit)
        return self.editor.text()

    def _set_text(self, text: str) -> None:
        assert isinstance(self.editor, QLineEdit)
        self.editor.setText(text)

    def _set_placeholder(self, text: str) -> None:
        if isinstance(self.editor, QLineEdit):
            self.editor.setPlaceholderText(text)

    def _reset_ui(self) -> None:
        """Back to the look it was built with (e.g. secret hidden again)."""

    def _problem(self, text: str) -> str | None:
        """Why the non-empty ``text`` is not acceptable."""
        if self._validator is not None:
            return self._validator(text)
        return self.field.check_value(text)

    # -- public ------------------------------------------------------------------------------

    def value(self) -> str | None:
        return self._text().strip() or None

    def set_value(self, value: str | None) -> None:
        """Set the value without emitting ``changed`` (programmatic, not an edit)."""
        with QSignalBlocker(self.editor):
            self._set_text(value or "")

    def check(self) -> str | None:
        """Why the current value is not acceptable, or ``None``."""
        text = self._text().strip()
        if text:
            return self._problem(text)
        if self.stored and not self._cleared:
            return None  # empty = keep the stored secret
        return self.field.check_value("")

    def set_error(self, reason: str | None) -> None:
        self.error_label.setText(reason or "")
        self.error_label.setVisible(bool(reason))
        if bool(self.editor.property("invalid")) != bool(reason):
            self.editor.setProperty("invalid", bool(reason))
            self.editor.style().unpolish(self.editor)  # re-apply the [invalid="true"] rule
            self.editor.style().polish(self.editor)
        help_text = self.field.help
        self.editor.setAccessibleDescription(f"{reason}. {help_text}" if reason else help_text)

    def set_stored(self, stored: bool, backend: str = "") -> None:
        """Whether the keyring holds this (secret) field; ``backend`` names the keyring."""
        self.stored = stored and self.field.secret
        self._backend = backend
        if self.clear_button is not None:
            self.clear_button.setVisible(self.stored)
        self._set_cleared(False)

    def is_cleared(self) -> bool:
        """True when the stored secret is marked for deletion."""
        return self.stored and self._cleared

    def state(self) -> tuple[str, bool, bool]:
        return (self._text(), self._cleared, self.stored)

    def restore(self, state: tuple[str, bool, bool]) -> None:
        text, cleared, stored = state
        self.set_stored(stored, self._backend)
        self.set_value(text)
        self._set_cleared(cleared)
        self._reset_ui()
        self.touched = False

    # -- internals ---------------------------------------------------------------------------

    def _button(self, text: str, suffix: str, accessible: str) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setObjectName(f"{self.key}-{suffix}")
        button.setAccessibleName(accessible)
        button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._row.addWidget(button)
        return button

    def _add_browse(
        self, text: str, filters: Sequence[str], on_file: Callable[[str], None]
    ) -> None:
        self._dialog_args = (list(filters), on_file)
        self.browse = self._button(text, "browse", f"Choose {self.field.label}")
        self.browse.setToolTip(f"Choose the {self.field.label} in a file dialog")
        self.browse.clicked.connect(self.open_dialog)

    def open_dialog(self) -> None:
        """A window-modal but NON-blocking file dialog (``open()``, never ``exec()``, which
        would nest an event loop under qasync); raises the one already open."""
        if self.dialog is not None:
            self.dialog.raise_()
            return
        filters, on_file = self._dialog_args
        self.dialog = dialog = QFileDialog(self, f"Choose {self.field.label}")
        dialog.setObjectName("file-dialog")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        if filters:
            dialog.setNameFilters(filters)
        start = "" if self.field.secret else self._text().strip()
        if start:
            dialog.selectFile(os.path.expanduser(start))  # where it opens; the value keeps "~"
        dialog.fileSelected.connect(on_file)
        dialog.finished.connect(self._forget_dialog)
        dialog.open()

    def _forget_dialog(self) -> None:
        self.dialog = None

    def _placeholder(self) -> str:
        if self.stored:
            if self._cleared:
                return "will be deleted on Save"
            return f"stored in {self._backend or 'the keyring'} — {self.replace_hint}"
        return self.field.placeholder or (self.field.default or "")

    def _update_placeholder(self) -> None:
        self._set_placeholder(self._placeholder())

    def _set_cleared(self, cleared: bool) -> None:
        self._cleared = cleared and self.stored
        if self.clear_button is not None:
            with QSignalBlocker(self.clear_button):
                self.clear_button.setChecked(self._cleared)
        self._update_placeholder()

    def _on_clear_toggled(self, checked: bool) -> None:
        if checked and self._text():
            self.set_value("")
        self._set_cleared(checked)
        self.changed.emit()

    def _on_edit(self) -> None:
        if self._cleared and self._text().strip():
            self._set_cleared(False)  # typing a value means "replace"
        self.changed.emit()

    def _recolor(self) -> None:
        palette = self.error_label.palette()
        palette.setColor(QPalette.ColorRole.WindowText, _error_color(self))
        self.error_label.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._recolor()
        super().changeEvent(event)


class TextField(FieldWidget):
    """``text``: a line edit."""


class SecretField(FieldWidget):
    """``secret``: a password line edit with a trailing, checkable "Show" toggle."""

    def _build(self) -> QWidget:
        edit = QLineEdit(self)
        edit.setEchoMode(QLineEdit.EchoMode.Password)
        edit.setInputMethodHints(
            Qt.InputMethodHint.ImhHiddenText
            | Qt.InputMethodHint.ImhSensitiveData
            | Qt.InputMethodHint.ImhNoPredictiveText
        )
        edit.textChanged.connect(self._on_edit)
        color = edit.palette().color(QPalette.ColorRole.Text)
        self._icons = (_eye_icon(color, False), _eye_icon(color, True))
        self.reveal = QAction(self._icons[0], f"Show {self.field.label}", edit)
        self.reveal.setObjectName(f"field-{self.field.name}-reveal")
        self.reveal.setCheckable(True)
        self.reveal.setShortcut(QKeySequence(REVEAL_SHORTCUT))
        self.reveal.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.reveal.setToolTip(f"Show {self.field.label} ({REVEAL_SHORTCUT})")
        self.reveal.toggled.connect(self._on_reveal)
        edit.addAction(self.reveal, QLineEdit.ActionPosition.TrailingPosition)
        for obj in self.reveal.associatedObjects():
            if isinstance(obj, QWidget) and obj is not edit:  # the line edit's icon button
                obj.setAccessibleName(f"Show {self.field.label}")
        return edit

    def _on_reveal(self, shown: bool) -> None:
        assert isinstance(self.editor, QLineEdit)
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        self.editor.setEchoMode(mode)
        self.reveal.setIcon(self._icons[int(shown)])

    def _reset_ui(self) -> None:
        self.reveal.setChecked(False)


class PathField(FieldWidget):
    """``path``: a line edit and "Browse…" (a non-blocking file dialog). ``~`` is kept as typed."""

    def _build(self) -> QWidget:
        edit = super()._build()
        self._add_browse("Browse…", [], self._on_file)
        return edit

    def _on_file(self, path: str) -> None:
        assert isinstance(self.editor, QLineEdit)
        self.editor.setText(path)  # textChanged -> changed


def _service_account_problem(text: str) -> str | None:
    """Why ``text`` is not a Google service-account key (never quoting the key)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON (line {exc.lineno}, column {exc.colno})"
    if not isinstance(data, dict):
        return "must be a JSON object (the content of the key file)"
    missing = [
        k for k in ("type", "client_email", "private_key") if not isinstance(data.get(k), str)
    ]
    if missing:
        return f"not a service-account key: it has no {', '.join(missing)}"
    if data["type"] != "service_account":
        kind = data["type"][:30]
        return f'"type" is {kind!r}, not "service_account": pick a service account\'s key'
    return None


class JsonFileField(FieldWidget):
    """``json_file``: the CONTENT of a JSON key file (a secret), never its path.

    Shown as a masked summary (``service account <email> (key <id>…)``); "Choose key file…"
    reads a file of at most :data:`MAX_KEY_FILE_BYTES`, "Paste…" opens a text box whose content
    is taken (and the box emptied and closed) as soon as it is a complete key.
    """

    replace_hint = "choose or paste a key file to replace"

    def _build(self) -> QWidget:
        self._content = ""
        self._load_error: str | None = None
        summary = QLineEdit(self)
        summary.setReadOnly(True)
        self._add_browse(
            "Choose key file…", ["JSON key files (*.json)", "All files (*)"], self.load_file
        )
        self.paste = self._button("Paste…", "paste", f"Paste {self.field.label}")
        self.paste.setCheckable(True)
        self.paste.toggled.connect(self._on_paste_toggled)
        self.text_box = QPlainTextEdit(self)
        self.text_box.setObjectName(f"field-{self.field.name}-text")
        self.text_box.setAccessibleName(f"{self.field.label}, pasted")
        self.text_box.setPlaceholderText('{"type": "service_account", …}')
        self.text_box.setTabChangesFocus(True)
        self.text_box.setFixedHeight(90)
        self.text_box.textChanged.connect(self._on_pasted)
        self.text_box.hide()
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.addWidget(self.text_box)
        return summary

    def _text(self) -> str:
        return self._content

    def _set_text(self, text: str) -> None:
        self._content = text
        self._load_error = None
        self._show_summary()

    def _problem(self, text: str) -> str | None:
        if len(text.encode()) > MAX_KEY_FILE_BYTES:
            return f"larger than {MAX_KEY_FILE_BYTES // 1024} KB: not a service-account key"
        return _service_account_problem(text) or self.field.check_value(text)

    def check(self) -> str | None:
        return self._load_error or super().check()

    def _reset_ui(self) -> None:
        with QSignalBlocker(self.text_box):
            self.text_box.clear()
        self.paste.setChecked(False)

    def summary(self) -> str:
        """The masked one-line description of the held key ('' when none)."""
        text = self._content.strip()
        if not text or _service_account_problem(text):
            return "unrecognised key content" if text else ""
        data = json.loads(text)
        kid = data.get("private_key_id")
        key = f" (key {kid[:8]}…)" if isinstance(kid, str) and kid else ""
        return f"service account {data['client_email'][:120]}{key}"

    def _show_summary(self) -> None:
        assert isinstance(self.editor, QLineEdit)
        self.editor.setText(self.summary())

    def _take(self, content: str, error: str | None = None) -> None:
        self._content = content
        self._load_error = error
        if self._cleared and content.strip():
            self._set_cleared(False)
        self._show_summary()
        self.changed.emit()

    def load_file(self, path: str) -> None:
        """Read the key file at ``path`` (refusing anything over 64 KB) and hold its content."""
        file = QFile(path)
        if file.size() > MAX_KEY_FILE_BYTES:
            self._take("", f"the file is larger than {MAX_KEY_FILE_BYTES // 1024} KB: not a key")
            return
        if not file.open(QIODevice.OpenModeFlag.ReadOnly):
            self._take("", f"cannot read the file: {file.errorString()}")
            return
        try:
            raw = bytes(file.read(MAX_KEY_FILE_BYTES + 1).data())
        finally:
            file.close()
        try:
            self._take(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            self._take("", "the file is not text (UTF-8): not a JSON key file")

    def _on_paste_toggled(self, shown: bool) -> None:
        self.text_box.setVisible(shown)
        if shown:
            self.text_box.setFocus(Qt.FocusReason.OtherFocusReason)

    def _on_pasted(self) -> None:
        text = self.text_box.toPlainText()
        self._take(text)
        if text.strip() and self._problem(text.strip()) is None:
            with QSignalBlocker(self.text_box):
                self.text_box.clear()  # a complete key: keep it out of sight
            self.paste.setChecked(False)
            self.editor.setFocus(Qt.FocusReason.OtherFocusReason)


class ChoiceField(FieldWidget):
    """``choice``: a searchable combo box of the choices (editable: a choice field with a
    pattern takes values beyond its list); an empty first entry when there is no default."""

    def _build(self) -> QWidget:
        combo = QSearchableComboBox(self)
        self._blank = self.field.default is None or not self.field.required
        if self._blank:
            combo.addItem("")  # type: ignore[no-untyped-call]
        combo.addItems(self.field.choices)  # type: ignore[no-untyped-call]
        line = combo.lineEdit()
        if line is not None:
            line.setAccessibleName(self.field.label)
            line.setPlaceholderText(CHOOSE)
        combo.currentTextChanged.connect(self._on_edit)
        return combo

    def choices(self) -> list[str]:
        assert isinstance(self.editor, QSearchableComboBox)
        items = [self.editor.itemText(i) for i in range(self.editor.count())]
        return items[1:] if self._blank else items

    def _text(self) -> str:
        assert isinstance(self.editor, QSearchableComboBox)
        return self.editor.currentText()

    def _set_text(self, text: str) -> None:
        assert isinstance(self.editor, QSearchableComboBox)
        index = self.editor.findText(text, Qt.MatchFlag.MatchExactly)
        if index >= 0:
            self.editor.setCurrentIndex(index)
        else:
            self.editor.setEditText(text)

    def _set_placeholder(self, text: str) -> None:
        pass  # always "— choose —"


#: The one mapping from a field's kind to its widget class.
WIDGETS: dict[AuthFieldKind, type[FieldWidget]] = {
    "text": TextField,
    "secret": SecretField,
    "path": PathField,
    "json_file": JsonFileField,
    "choice": ChoiceField,
}


# --------------------------------------------------------------------------------------------
# The form
# --------------------------------------------------------------------------------------------


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


def _spec(name: str, label: str, help_text: str, **more: Any) -> AuthField:
    """An AuthField for the form's own inputs (name, id, base URL, GPU, endpoints)."""
    return AuthField(name=name, label=label, kind=more.pop("kind", "text"), help=help_text, **more)


def _legal_text(profile: ProviderProfile) -> str:
    legal = profile.legal
    lines = [f"Data: {legal.egress_notice}"]
    if legal.content_restrictions:
        lines.append(f"Content: {legal.content_restrictions}")
    for kind, note in legal.dpia_notes.items():
        lines.append(f"DPIA ({kind.replace('_', ' ')}): {note}")
    regions = "; ".join(f"{r.name} ({r.id}, zone {r.zone})" for r in profile.regions)
    lines.append(f"Regions: {regions}")
    lines.append(f"Policy: {profile.policy_highlight}")
    if profile.docs_url:
        lines.append(f"Documentation: {profile.docs_url}")
    return "\n\n".join(lines)


class CredentialForm(QWidget):
    """The credential form of one provider, generated from ``profile``.

    ``entry`` is the registered provider being edited (``None``: a new one from the template).
    ``keyring_backend`` names the keyring for "stored in …" placeholders; ``gpu_names`` are
    the catalog's GPU names (default: the bundled catalog's).

    Signals: ``changed()`` on every edit, ``validity_changed(bool)`` when :meth:`is_valid`
    flips. Problem keys (:meth:`problems`, :meth:`highlight`): ``name``, ``id``, ``base_url``,
    ``gpu``, each field's name and ``endpoints.<name>`` (``endpoints`` = all of them).
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
        label = QLabel(_mnemonic(text, self._mnemonics) + (" *" if required else ""), self)
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
        name = _spec(
            "name", "Name", "How this provider is shown in the list (up to 200 characters)."
        )
        self._add(rows, TextField(name, self, key="name", validator=_check_name), "name")
        if self.entry is None:
            ident = _spec(
                "id",
                "ID",
                "A short stable id for scripts and the command line: lower-case letters, digits "
                "and inner hyphens. Leave empty to have one made from the template id.",
                required=False,
                placeholder="made from the template id",
            )
            self._add(rows, TextField(ident, self, key="id", validator=_check_id), "id")
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
        url = _spec("base_url", "Base URL", url_help, required=False, placeholder=placeholder)
        base = self._add(
            rows, TextField(url, self, key="base-url", validator=_check_url), "base_url"
        )
        base.editor.setEnabled(p.primary_endpoint is not None)
        if p.reports_own_gpu:
            gpu = QLabel("reported by the node", self)
            gpu.setObjectName("gpu")
            gpu.setAccessibleName("GPU")
            gpu.setEnabled(False)
            rows.addRow("GPU", gpu)
            return
        names = list(gpu_names if gpu_names is not None else load_catalog().gpus)
        if p.default_gpu not in names:
            names.insert(0, p.default_gpu)
        gpu_help = f"The GPU type to run on (the profile's default: {p.default_gpu})."
        spec = _spec("gpu", "GPU", gpu_help, kind="choice", choices=names, default=p.default_gpu)
        self._add(rows, ChoiceField(spec, self, key="gpu", validator=_in_list(names)), "gpu")

    def _build_endpoints(self, layout: QVBoxLayout) -> None:
        section = self._section("Endpoints", "endpoints", layout)
        for name, default in self.profile.endpoints.items():
            why = f"default {default}" if default else "no fixed default"
            help_text = f"Overrides the {name} endpoint ({why})."
            spec = _spec(name, name, help_text, required=False, placeholder=default or "no default")
            widget = TextField(spec, self, key=f"endpoint-{name}", validator=_check_url)
            self._add(section.rows, widget, f"endpoints.{name}", section)

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
        legal = QLabel(_legal_text(self.profile), box)
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

    # -- state and validation ----------------------------------------------------------------

    def _state(self) -> dict[str, tuple[str, bool, bool]]:
        return {key: widget.state() for key, widget in self._inputs.items()}

    def _on_changed(self, widget: FieldWidget) -> None:
        widget.touched = True
        key = next(k for k, w in self._inputs.items() if w is widget)
        self._highlights.pop(key, None)
        if not self._highlights:
            self.banner.hide()
        self._revalidate()
        self.changed.emit()

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
        color = _error_color(self).name()
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
        """What ``Service.create_provider`` / ``register_provider`` take.

        ``config`` holds the non-empty non-secret fields and options (stripped) and
        ``endpoints`` overrides; for an existing entry a field (or endpoint) that was set when
        the form was built (or last saved) and is now empty is sent as ``None`` (= remove it:
        the registry merges ``config`` over the stored one, so leaving it out would keep it).
        ``secrets`` holds the typed secrets (replace) and ``None`` for a stored secret marked
        by Clear (delete); an untouched stored secret is left out (keep), and so is ``secrets``
        when empty. ``id`` is the entry's, or the typed one for a new provider (left out when
        empty).
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


def _check_name(text: str) -> str | None:
    return "Name must be at most 200 characters" if len(text) > 200 else None


def _check_id(text: str) -> str | None:
    if len(text) > ID_MAX_LEN:
        return f"ID must be at most {ID_MAX_LEN} characters"
    if not ID_RE.match(text):
        return "ID: use lower-case letters, digits and inner hyphens only (e.g. my-runpod)"
    if text in RESERVED_IDS:
        return f"ID {text!r} is reserved (it names an API route); choose another"
    return None


def _in_list(names: Sequence[str]) -> Validator:
    known = set(names)
    return lambda text: (
        None if text in known else "not a GPU of the catalog: pick one from the list"
    )
