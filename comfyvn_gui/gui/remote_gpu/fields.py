"""The input widgets of a credential form: one class per field kind, and the one mapping
from a kind to its class (docs/architecture.md, "GUI").

Like qutebrowser's prompts, ONE mapping picks the widget class for a field's kind
(:data:`WIDGETS`); every class is a :class:`FieldWidget`: an editor, its buttons and an error
line. Validation is derived from the field spec (``AuthField.check_value`` plus the kind's own
checks, :mod:`.form_helpers`) and runs on every edit. Secrets are never loaded: a stored secret
shows an empty input whose placeholder says where it is stored; typing replaces it, "Clear"
marks it for deletion. The only disk access is reading a chosen service-account key file (at
most :data:`MAX_KEY_FILE_BYTES`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import ClassVar

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
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QSearchableComboBox

from comfyvn_gui.core.catalog import AuthField, AuthFieldKind, MetaFieldKind
from comfyvn_gui.gui.palette import error_color

from .form_helpers import Validator, service_account_problem, service_account_summary

__all__ = [
    "CHOOSE",
    "MAX_KEY_FILE_BYTES",
    "META_WIDGETS",
    "REVEAL_SHORTCUT",
    "WIDGETS",
    "BoolField",
    "ChoiceField",
    "FieldWidget",
    "JsonFileField",
    "MultiChoiceField",
    "NumberField",
    "PathField",
    "SecretField",
    "TextField",
]

MAX_KEY_FILE_BYTES = 64 * 1024
REVEAL_SHORTCUT = "Ctrl+Shift+R"
CHOOSE = "— choose —"


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
        palette.setColor(QPalette.ColorRole.WindowText, error_color(self))
        self.error_label.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._recolor()
        super().changeEvent(event)


class TextField(FieldWidget):
    """``text``: a line edit."""


class NumberField(FieldWidget):
    """``number``: a line edit for a decimal number; the field's bounds are checked as you type
    (``AuthField.check_value``: "must be 0 or more", "must be more than 0")."""

    def _build(self) -> QWidget:
        edit = QLineEdit(self)
        edit.setInputMethodHints(Qt.InputMethodHint.ImhFormattedNumbersOnly)
        edit.textChanged.connect(self._on_edit)
        return edit


class MultiChoiceField(FieldWidget):
    """``multi_choice``: a line edit for one or more of the choices, separated by commas
    ("eu, uk"); a value that is not a choice is named as you type. Without a placeholder of
    its own, the first choices show while it is empty."""

    def _placeholder(self) -> str:
        placeholder = super()._placeholder()
        return placeholder or ", ".join(self.field.choices[:3]) + ", …"


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
        return service_account_problem(text) or self.field.check_value(text)

    def check(self) -> str | None:
        return self._load_error or super().check()

    def _reset_ui(self) -> None:
        with QSignalBlocker(self.text_box):
            self.text_box.clear()
        self.paste.setChecked(False)

    def summary(self) -> str:
        """The masked one-line description of the held key ('' when none)."""
        return service_account_summary(self._content)

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


class BoolField(FieldWidget):
    """A yes / no metadata value (``boolean``): a check box; its value is ``"true"`` when
    ticked and ``None`` (= absent, no) when not."""

    def _build(self) -> QWidget:
        box = QCheckBox(self)  # the row's label says what it is
        box.toggled.connect(self._on_edit)
        return box

    def _text(self) -> str:
        assert isinstance(self.editor, QCheckBox)
        return "true" if self.editor.isChecked() else ""

    def _set_text(self, text: str) -> None:
        assert isinstance(self.editor, QCheckBox)
        self.editor.setChecked(text.strip().lower() == "true")


#: The one mapping from a field's kind to its widget class.
WIDGETS: dict[AuthFieldKind, type[FieldWidget]] = {
    "text": TextField,
    "secret": SecretField,
    "path": PathField,
    "json_file": JsonFileField,
    "choice": ChoiceField,
    "number": NumberField,
    "multi_choice": MultiChoiceField,
}

#: The widget class of each kind of registry metadata (``MetaField.kind``).
META_WIDGETS: dict[MetaFieldKind, type[FieldWidget]] = {
    "text": TextField,
    "url": TextField,
    "number": NumberField,
    "integer": NumberField,
    "boolean": BoolField,
    "list": TextField,
}
