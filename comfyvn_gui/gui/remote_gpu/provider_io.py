"""Import and export of the provider list, for the Remote GPU page (docs/architecture.md,
"GUI"): the confirmations, the file dialogs and the import preview, and their reads and writes
off the GUI thread through the :class:`~comfyvn_gui.gui.bridge.ServiceBridge`.

Every dialog is a child of the page, opened with ``open()`` and answered through signals.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QMessageBox,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from comfyvn_gui.core.errors import ComfyVNError, InputError
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.dialogs import OpenDialogs
from comfyvn_gui.gui.widgets.banner import Banner

__all__ = ["ImportDialog", "ProviderTransfer"]


class ImportDialog(QDialog):
    """Choose replace / merge and overwrite, see what will change, then import (non-modal)."""

    plan_requested = Signal(bool, bool)

    def __init__(self, source: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("import-dialog")
        self.setWindowTitle("Import providers")
        self.setAccessibleName("Import providers")
        self.source = QLabel(f"From {source}", self)
        self.merge = QRadioButton("&Merge: add the file's providers to yours", self)
        self.merge.setObjectName("import-merge")
        self.replace = QRadioButton("&Replace: the file's providers replace all of yours", self)
        self.replace.setObjectName("import-replace")
        self.merge.setChecked(True)
        self.overwrite = QCheckBox("&Overwrite providers with the same id", self)
        self.overwrite.setObjectName("import-overwrite")
        self.overwrite.setChecked(True)
        self.preview = QLabel("Working out what will change…", self)
        self.preview.setObjectName("import-preview")
        self.preview.setWordWrap(True)
        self.preview.setAccessibleName("What the import will change")
        self.buttons = QDialogButtonBox(self)
        self.import_button = self.buttons.addButton(
            "&Import", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.import_button.setObjectName("import-confirm")
        self.import_button.setEnabled(False)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for w in (self.source, self.merge, self.replace, self.overwrite, self.preview):
            layout.addWidget(w)
        layout.addWidget(self.buttons)
        for w in (self.merge, self.replace, self.overwrite):
            w.toggled.connect(self._changed)

    def choice(self) -> tuple[bool, bool]:
        return self.replace.isChecked(), self.overwrite.isChecked()

    def _changed(self) -> None:
        self.import_button.setEnabled(False)
        self.preview.setText("Working out what will change…")
        self.plan_requested.emit(*self.choice())

    def show_plan(self, lines: list[str], *, destructive: bool) -> None:
        text = "\n".join(f"• {line}" for line in lines) if lines else "Nothing will change."
        if destructive:
            text = "⚠ This deletes providers and their stored credentials:\n" + text
        self.preview.setText(text)
        self.import_button.setEnabled(bool(lines))

    def show_problem(self, message: str) -> None:
        self.preview.setText(f"This file cannot be imported: {message}")
        self.import_button.setEnabled(False)


class ProviderTransfer(QObject):
    """Export the providers to a file (with secrets only after a warning) and import them from
    one (with a preview of what changes). ``page`` parents the dialogs, ``banner`` says how it
    went and ``reload`` shows the imported providers."""

    def __init__(
        self,
        page: QWidget,
        bridge: ServiceBridge,
        banner: Banner,
        dialogs: OpenDialogs,
        reload: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(page)
        self.page = page
        self.bridge = bridge
        self.svc = bridge.service
        self.banner = banner
        self.dialogs = dialogs
        self._reload = reload

    # -- export ----------------------------------------------------------------------------

    @Slot()
    def ask_export(self) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Export providers",
            "Export your providers to a file.",
            QMessageBox.StandardButton.Cancel,
            self.page,
        )
        box.setObjectName("export-choice")
        box.setInformativeText(
            "Without secrets the file can be shared. With secrets it holds your API keys in "
            "plain text: keep it private and delete it after use."
        )
        plain = box.addButton("Export without secrets", QMessageBox.ButtonRole.AcceptRole)
        secret = box.addButton("Include secrets…", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(plain)
        box.finished.connect(
            lambda _r: self._export_answered(box, box.clickedButton(), plain, secret)
        )
        self.dialogs.keep(box)
        box.open()

    def _export_answered(self, box: QMessageBox, clicked: Any, plain: Any, secret: Any) -> None:
        self.dialogs.forget(box)
        if clicked is plain:
            self._choose_export_file(include_secrets=False)
        elif clicked is secret:
            warn = QMessageBox(
                QMessageBox.Icon.Warning,
                "Include secrets?",
                "The file will contain every stored API key and password in plain text.",
                QMessageBox.StandardButton.Cancel,
                self.page,
            )
            warn.setObjectName("export-secrets-warning")
            warn.setInformativeText(
                "Anyone who reads it can use your accounts and run up bills. The file is "
                "written readable by you only."
            )
            go = warn.addButton("Export with secrets", QMessageBox.ButtonRole.DestructiveRole)
            warn.setDefaultButton(QMessageBox.StandardButton.Cancel)
            warn.finished.connect(
                lambda _r: self._secrets_confirmed(warn, warn.clickedButton() is go)
            )
            self.dialogs.keep(warn)
            warn.open()

    def _secrets_confirmed(self, box: QMessageBox, yes: bool) -> None:
        self.dialogs.forget(box)
        if yes:
            self._choose_export_file(include_secrets=True)

    def _choose_export_file(self, *, include_secrets: bool) -> None:
        dialog = QFileDialog(self.page, "Export providers to", str(Path.home()), "JSON (*.json)")
        dialog.setObjectName("export-file-dialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("json")
        dialog.selectFile("comfyvn-providers.json")
        dialog.fileSelected.connect(lambda path: self.export_to(path, include_secrets))
        dialog.finished.connect(lambda _r: self.dialogs.forget(dialog))
        self.dialogs.keep(dialog)
        dialog.open()

    def export_to(self, path: str, include_secrets: bool) -> asyncio.Task[Any]:
        async def run() -> None:
            try:
                n = await self.bridge.call(
                    self.svc.export_providers_to, Path(path), include_secrets=include_secrets
                )
            except (ComfyVNError, OSError) as exc:
                message = getattr(exc, "message", None) or str(exc)
                self.banner.show_message("error", f"Not exported: {message}")
                return
            extra = " with secrets (keep this file private)" if include_secrets else ""
            self.banner.show_message("ok", f"Exported {n} providers{extra} to {path}.")

        return self.bridge.spawn(run(), name="export")

    # -- import ----------------------------------------------------------------------------

    @Slot()
    def ask_import(self) -> None:
        dialog = QFileDialog(self.page, "Import providers from", str(Path.home()), "JSON (*.json)")
        dialog.setObjectName("import-file-dialog")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.import_from)
        dialog.finished.connect(lambda _r: self.dialogs.forget(dialog))
        self.dialogs.keep(dialog)
        dialog.open()

    def import_from(self, path: str) -> ImportDialog:
        dialog = ImportDialog(os.path.basename(path), self.page)
        self.dialogs.keep(dialog)
        state: dict[str, Any] = {}

        def read() -> Any:
            try:
                return json.loads(Path(path).read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise InputError(f"{path} is not a readable JSON file ({exc})") from None

        async def plan(replace: bool, overwrite: bool) -> None:
            try:
                if "data" not in state:
                    state["data"] = await self.bridge.call(read)
                p = await self.bridge.call(
                    self.svc.plan_import, state["data"], replace=replace, overwrite=overwrite
                )
            except ComfyVNError as exc:
                dialog.show_problem(exc.message)
                return
            dialog.show_plan(p.describe(), destructive=bool(p.delete or p.delete_credentials))

        async def apply(replace: bool, overwrite: bool) -> None:
            try:
                report = await self.bridge.write(
                    self.svc.import_providers, state["data"], replace=replace, overwrite=overwrite
                )
            except ComfyVNError as exc:
                self.banner.show_message("error", f"Nothing was imported: {exc.message}")
                return
            await self._reload()
            plan = report.plan
            self.banner.show_message(
                "ok",
                f"Imported {len(report.imported)} providers ({len(plan.add)} added, "
                f"{len(plan.update)} updated, {len(plan.delete)} deleted). Imported providers "
                "need Validate before the advisor uses them.",
            )

        dialog.plan_requested.connect(
            lambda r, o: self.bridge.spawn(plan(r, o), name="import-plan")
        )
        # (the choice is read now: the dialog is deleted once it has closed)
        dialog.accepted.connect(lambda: self.bridge.spawn(apply(*dialog.choice()), name="import"))
        dialog.finished.connect(lambda _r: self.dialogs.forget(dialog))
        dialog.open()
        self.bridge.spawn(plan(*dialog.choice()), name="import-plan")
        return dialog
