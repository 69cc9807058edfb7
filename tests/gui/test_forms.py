"""The generated credential form: one widget class per field kind, secrets, validation, Cancel."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QToolButton,
    QWidget,
)
from pytestqt.qtbot import QtBot
from superqt import QCollapsible

from comfyvn_gui.core.catalog import ProviderProfile, load_catalog
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.gui.remote_gpu.fields import (
    MAX_KEY_FILE_BYTES,
    META_WIDGETS,
    WIDGETS,
    ChoiceField,
    JsonFileField,
    SecretField,
)
from comfyvn_gui.gui.remote_gpu.forms import CredentialForm

from .test_window import assert_nothing_left, qloop  # noqa: F401 - fixture

CATALOG = load_catalog()
PROFILES = list(CATALOG.profiles.values())
RUNPOD_KEY = "rpa_0123456789abcdefXYZ"
SERVICE_ACCOUNT = {
    "type": "service_account",
    "client_email": "x@p.iam.gserviceaccount.com",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----\n",
    "private_key_id": "abcdef123456",
    "project_id": "p",
}
W = TypeVar("W", bound=QWidget)
INPUTS = (QLineEdit, QComboBox, QAbstractButton, QPlainTextEdit)


@pytest.fixture(autouse=True)
def no_leaks(qtbot: QtBot) -> Iterator[None]:
    """Fail a test that leaves a thread or a running QTimer behind (as tests/gui/test_window.py)."""
    threads_before = set(threading.enumerate())
    yield
    assert_nothing_left(threads_before)


def make_form(
    qtbot: QtBot, template_id: str, entry: ProviderEntry | None = None, backend: str = ""
) -> CredentialForm:
    form = CredentialForm(CATALOG.profile(template_id), entry, keyring_backend=backend)
    qtbot.addWidget(form)
    form.show()
    qtbot.waitExposed(form)
    return form


def child(form: QWidget, cls: type[W], name: str) -> W:
    found = form.findChild(cls, name)
    assert found is not None, f"no {cls.__name__} {name!r}"
    return found


# -- every profile -----------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES, ids=[p.id for p in PROFILES])
def test_every_profile_builds_its_form_from_the_mapping(
    qtbot: QtBot, profile: ProviderProfile
) -> None:
    form = make_form(qtbot, profile.id)
    assert list(form.fields) == [f.name for f in profile.all_fields]
    for f in profile.all_fields:
        widget = form.fields[f.name]
        assert type(widget) is WIDGETS[f.kind]
        assert widget.editor.objectName() == f"field-{f.name}"
        assert widget.editor.toolTip() == f.help
        assert child(form, QLabel, f"field-{f.name}-error").isHidden()
        if f.kind == "secret":
            edit = child(form, QLineEdit, f"field-{f.name}")
            assert edit.echoMode() == QLineEdit.EchoMode.Password
            assert isinstance(widget, SecretField)
            widget.reveal.trigger()
            assert edit.echoMode() == QLineEdit.EchoMode.Normal
            widget.reveal.trigger()
            assert edit.echoMode() == QLineEdit.EchoMode.Password
            assert widget.reveal.objectName() == f"field-{f.name}-reveal"
            assert widget.reveal.text() == f"Show {f.label}"
        elif f.kind == "choice":
            assert isinstance(widget, ChoiceField)
            assert widget.choices() == f.choices
        elif f.kind in ("path", "json_file"):
            assert child(form, QToolButton, f"field-{f.name}-browse").text()
    for name in ("name", "base-url", "notes", "legal-notes"):
        assert child(form, QWidget, name)
    assert child(form, QLabel, "notes").text() == profile.onboarding_notes
    legal = child(form, QLabel, "legal-notes").text()
    assert profile.legal.egress_notice in legal
    assert profile.policy_highlight in legal
    assert all(r.id in legal and r.zone in legal for r in profile.regions)
    assert all(note in legal for note in profile.legal.dpia_notes.values())
    gpu = child(form, QWidget, "gpu")
    assert isinstance(gpu, QLabel) == profile.reports_own_gpu
    if not profile.reports_own_gpu:
        assert isinstance(gpu, QComboBox)
        assert gpu.currentText() == profile.default_gpu
    assert (form.findChild(QWidget, "options") is not None) == bool(profile.options)
    assert (form.findChild(QWidget, "endpoints") is not None) == bool(profile.endpoints)
    assert (form.findChild(QWidget, "meta") is not None) == bool(profile.meta_fields)
    assert list(form.meta_inputs) == [m.name for m in profile.meta_fields]
    for m in profile.meta_fields:  # generated from the profile's [[meta_fields]]
        widget = form.meta_inputs[m.name]
        assert type(widget) is META_WIDGETS[m.kind]
        assert widget.editor.objectName() == f"meta-{m.name}" and widget.editor.toolTip() == m.help
    # every input has a name for screen readers; every field label has a buddy
    checked = 0
    for widget in form.findChildren(QWidget):
        if isinstance(widget, INPUTS) and not widget.objectName().startswith("qt_"):
            assert widget.accessibleName(), f"{type(widget).__name__} {widget.objectName()!r}"
            checked += 1
    assert checked >= 2 + len(profile.all_fields)
    for f in profile.all_fields:
        labels = [
            lb for lb in form.findChildren(QLabel) if lb.buddy() is form.fields[f.name].editor
        ]
        assert len(labels) == 1
        assert "&" in labels[0].text()
        assert labels[0].text().endswith(" *") == f.required
    assert form.is_valid() == (not any(f.required for f in profile.auth_fields))
    assert not form.is_dirty()


def test_local_has_no_fields_and_only_needs_a_name(qtbot: QtBot) -> None:
    form = make_form(qtbot, "local")
    assert form.fields == {}
    assert child(form, QLabel, "no-fields").text()
    assert form.is_valid()
    assert form.payload() == {
        "template_id": "local",
        "name": "Local GPU",
        "base_url": None,
        "gpu": None,
        "config": {},
    }


# -- round trip ----------------------------------------------------------------------------------


def test_typed_values_reach_the_payload_with_secrets_apart(qtbot: QtBot) -> None:
    form = make_form(qtbot, "runpod")
    assert not form.is_valid()
    qtbot.keyClicks(child(form, QLineEdit, "field-api_key"), RUNPOD_KEY)
    qtbot.keyClicks(child(form, QLineEdit, "field-endpoint_id"), "abc123xyz456")
    qtbot.keyClicks(child(form, QLineEdit, "id"), "my-runpod")
    child(form, QLineEdit, "name").clear()
    qtbot.keyClicks(child(form, QLineEdit, "name"), "Voice farm")
    qtbot.keyClicks(child(form, QLineEdit, "endpoint-graphql"), "https://gql.example")
    assert form.is_valid(), form.problems()
    assert form.is_dirty()
    payload = form.payload()
    assert payload == {
        "id": "my-runpod",
        "template_id": "runpod",
        "name": "Voice farm",
        "base_url": None,
        "gpu": "A10G",
        "config": {"endpoint_id": "abc123xyz456", "endpoints": {"graphql": "https://gql.example"}},
        "secrets": {"api_key": RUNPOD_KEY},
    }
    assert RUNPOD_KEY not in json.dumps(payload["config"])


def test_a_custom_endpoint_form_checks_its_terms_and_saves_them(qtbot: QtBot) -> None:
    form = make_form(qtbot, "custom")
    price, zones = child(form, QLineEdit, "field-hourly_usd"), child(form, QLineEdit, "field-zones")
    vram = child(form, QLineEdit, "field-vram_gb")
    increment = child(form, QLineEdit, "field-billing_increment_minutes")
    assert price.isVisible() and zones.isVisible()  # the terms are not in the collapsed options
    assert (
        increment.text() == "1"
        and child(form, QLineEdit, "field-billing_minimum_minutes").text() == "0"
    )
    assert child(form, QLabel, "gpu").text() == "reported by its ComfyUI"
    assert set(form.problems()) == {"endpoint", "hourly_usd", "zones"}
    qtbot.keyClicks(child(form, QLineEdit, "field-endpoint"), "https://comfy.example.net")
    qtbot.keyClicks(price, "-1")
    qtbot.keyClicks(zones, "eu, mars")
    qtbot.keyClicks(vram, "0")
    assert form.problems() == {
        "hourly_usd": "Price per hour (USD) must be 0 or more (e.g. 0.50)",
        "zones": "Residency zones: 'mars' is not one of: us, ca, sa, eu, uk, me, af, asia, "
        "oceania, on_prem, local",
        "vram_gb": "GPU VRAM (GB) must be more than 0 (e.g. 24)",
    }
    assert child(form, QLabel, "field-zones-error").isVisible()
    price.setText("0.35")
    zones.setText("eu, uk")
    vram.setText("24")
    increment.setText("60")
    qtbot.keyClicks(child(form, QLineEdit, "field-api_token"), "token-0123456789")
    assert form.is_valid(), form.problems()
    payload = form.payload()
    assert payload["template_id"] == "custom" and payload["gpu"] is None
    assert payload["config"] == {
        "endpoint": "https://comfy.example.net",
        "hourly_usd": "0.35",
        "zones": "eu, uk",
        "vram_gb": "24",
        "billing_increment_minutes": "60",
        "billing_minimum_minutes": "0",
    }
    assert payload["secrets"] == {"api_token": "token-0123456789"}


def runpod_entry(**changes: object) -> ProviderEntry:
    data: dict[str, object] = {
        "id": "runpod",
        "template_id": "runpod",
        "name": "RunPod",
        "config": {"endpoint_id": "abc123xyz456"},
        "secrets_set": ["api_key"],
    }
    return ProviderEntry.model_validate({**data, **changes})


def test_a_stored_secret_is_never_loaded_and_clear_deletes_it(qtbot: QtBot) -> None:
    form = make_form(qtbot, "runpod", runpod_entry(), backend="SecretService")
    edit = child(form, QLineEdit, "field-api_key")
    assert edit.text() == ""
    assert edit.placeholderText() == "stored in SecretService — type to replace"
    assert child(form, QLineEdit, "field-endpoint_id").text() == "abc123xyz456"
    assert form.findChild(QLineEdit, "id") is None
    assert child(form, QLabel, "id-readonly").text() == "runpod"
    assert form.is_valid()
    payload = form.payload()
    assert "secrets" not in payload
    assert payload["id"] == "runpod"
    assert payload["gpu"] is None  # follows the profile's default, as before
    assert payload["config"] == {"endpoint_id": "abc123xyz456"}

    clear = child(form, QToolButton, "field-api_key-clear")
    assert clear.isVisible()
    webhook_clear = child(form, QToolButton, "field-webhook_secret-clear")
    assert webhook_clear.isHidden()  # nothing stored: nothing to clear
    with qtbot.waitSignal(form.changed):
        qtbot.mouseClick(clear, Qt.MouseButton.LeftButton)
    assert edit.placeholderText() == "will be deleted on Save"
    assert form.payload()["secrets"] == {"api_key": None}
    assert form.problems() == {"api_key": "API key is required"}

    qtbot.keyClicks(edit, RUNPOD_KEY)  # typing means "replace"
    assert not clear.isChecked()
    assert form.payload()["secrets"] == {"api_key": RUNPOD_KEY}

    endpoint_id = child(form, QLineEdit, "field-endpoint_id")
    endpoint_id.clear()  # emptied: removed from the entry
    assert form.payload()["config"] == {"endpoint_id": None}
    endpoint_id.setText("abc123xyz456")

    form.set_stored(["api_key", "webhook_secret"], "KWallet")
    assert edit.text() == ""
    assert edit.placeholderText() == "stored in KWallet — type to replace"
    assert (
        child(form, QLineEdit, "field-webhook_secret")
        .placeholderText()
        .startswith("stored in KWallet")
    )
    assert "secrets" not in form.payload()
    assert not form.is_dirty()
    qtbot.keyClicks(child(form, QLineEdit, "endpoint-graphql"), "https://gql.example")
    form.set_stored(["api_key"], "KWallet")  # saved: the override is now part of the entry
    child(form, QLineEdit, "endpoint-graphql").clear()
    assert form.payload()["config"]["endpoints"] == {"graphql": None}


def test_reveal_toggle_is_reachable_from_the_keyboard(qtbot: QtBot) -> None:
    form = make_form(qtbot, "aws")
    form.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is form, timeout=2000)
    edit = child(form, QLineEdit, "field-secret_key")
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus, timeout=2000)
    qtbot.keyClick(
        edit, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert edit.echoMode() == QLineEdit.EchoMode.Normal
    assert child(form, QLineEdit, "field-access_key").echoMode() == QLineEdit.EchoMode.Password
    # Alt+mnemonic: the labels' buddies take the focus
    label = next(lb for lb in form.findChildren(QLabel) if lb.buddy() is edit)
    letter = label.text()[label.text().index("&") + 1]
    child(form, QLineEdit, "name").setFocus()
    qtbot.keyClick(form, getattr(Qt.Key, f"Key_{letter.upper()}"), Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(edit.hasFocus, timeout=2000)


def test_tab_order_follows_the_layout(qtbot: QtBot) -> None:
    form = make_form(qtbot, "ssh")
    form.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is form, timeout=2000)
    name = child(form, QLineEdit, "name")
    name.setFocus()
    qtbot.waitUntil(name.hasFocus, timeout=2000)
    seen: list[str] = []
    for _ in range(9):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget().objectName())
    assert seen[:7] == [
        "id",
        "field-hostname",
        "field-username",
        "field-ssh_key_path",
        "field-ssh_key_path-browse",
        "field-nfs_mount",
        # base URL is disabled (no HTTP endpoint); collapsed options are out of the order
        "",  # the "More options" toggle button
    ]
    assert QApplication.focusWidget() is not form.fields["key_passphrase"].editor


# -- validation ----------------------------------------------------------------------------------


def test_pattern_errors_show_as_you_type(qtbot: QtBot) -> None:
    form = make_form(qtbot, "runpod")
    qtbot.keyClicks(child(form, QLineEdit, "field-api_key"), RUNPOD_KEY)
    assert form.is_valid()
    error = child(form, QLabel, "field-endpoint_id-error")
    edit = child(form, QLineEdit, "field-endpoint_id")
    assert not edit.isVisible()  # the options start collapsed
    toggle = child(form, QCollapsible, "options").toggleButton()
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert edit.isVisible()
    with qtbot.waitSignal(form.validity_changed) as blocker:
        qtbot.keyClicks(edit, "x!")
    assert blocker.args == [False]
    assert error.isVisible()
    assert (
        error.text() == "Serverless endpoint ID does not have the expected form (e.g. abc123xyz456)"
    )
    assert edit.property("invalid") is True
    assert form.problems() == {"endpoint_id": error.text()}
    assert not form.is_valid()
    with qtbot.waitSignal(form.validity_changed) as blocker:
        edit.setText("abc123")
    assert blocker.args == [True]
    assert error.isHidden()
    assert edit.property("invalid") is False


def test_identity_and_url_problems(qtbot: QtBot) -> None:
    form = make_form(qtbot, "runpod")
    qtbot.keyClicks(child(form, QLineEdit, "id"), "export")
    qtbot.keyClicks(child(form, QLineEdit, "base-url"), "ftp://x")
    child(form, QLineEdit, "name").clear()
    problems = form.problems()
    assert "reserved" in problems["id"]
    assert problems["base_url"] == "must start with http:// or https://"
    assert problems["name"] == "Name is required"
    assert child(form, QLabel, "base-url-error").isVisible()
    child(form, QLineEdit, "id").setText("Bad_Id")
    assert "lower-case" in form.problems()["id"]


def test_required_is_shown_once_touched_or_asked(qtbot: QtBot) -> None:
    form = make_form(qtbot, "ssh")
    error = child(form, QLabel, "field-hostname-error")
    assert "hostname" in form.problems()
    assert error.isHidden()  # a fresh form is not shouting
    form.show_problems()
    assert error.text() == "Host is required"
    assert error.isVisible()


def test_choices_and_pattern_choices(qtbot: QtBot) -> None:
    form = make_form(qtbot, "aws")
    combo = child(form, QComboBox, "field-region")
    assert combo.currentText() == "us-east-1"
    combo.setCurrentIndex(combo.findText("eu-west-2"))
    assert form.payload()["config"]["region"] == "eu-west-2"
    combo.setEditText("us-gov-west-1")  # beyond the list, but matches the pattern
    assert "region" not in form.problems()
    combo.setEditText("mars")
    assert form.problems()["region"].startswith("Region does not have the expected form")
    lambda_form = make_form(qtbot, "lambda")
    region = child(lambda_form, QComboBox, "field-region")
    assert region.currentText() == ""
    line = region.lineEdit()
    assert line is not None
    assert line.placeholderText() == "— choose —"
    assert "region" not in lambda_form.payload()["config"]


# -- json_file -----------------------------------------------------------------------------------


def gcp_key(form: CredentialForm) -> JsonFileField:
    widget = form.fields["service_account_json"]
    assert isinstance(widget, JsonFileField)
    return widget


def test_a_pasted_service_account_key_is_checked_and_masked(qtbot: QtBot) -> None:
    form = make_form(qtbot, "gcp")
    widget = gcp_key(form)
    error = child(form, QLabel, "field-service_account_json-error")
    box = child(form, QPlainTextEdit, "field-service_account_json-text")
    assert box.isHidden()
    qtbot.mouseClick(
        child(form, QToolButton, "field-service_account_json-paste"), Qt.MouseButton.LeftButton
    )
    assert box.isVisible()

    box.setPlainText('{"type": "service_account",')
    assert error.text().startswith("not valid JSON (line 1")
    without_key = {k: v for k, v in SERVICE_ACCOUNT.items() if k != "private_key"}
    box.setPlainText(json.dumps(without_key))
    assert error.text() == "not a service-account key: it has no private_key"
    assert error.isVisible()
    box.setPlainText(json.dumps({**SERVICE_ACCOUNT, "type": "authorized_user"}))
    assert "service_account" in error.text()
    assert "PRIVATE KEY" not in error.text()
    assert "service_account_json" in form.problems()

    box.setPlainText(json.dumps(SERVICE_ACCOUNT, indent=2))
    assert error.isHidden()
    assert box.isHidden() and box.toPlainText() == ""  # the key is taken and out of sight
    summary = child(form, QLineEdit, "field-service_account_json").text()
    assert summary == "service account x@p.iam.gserviceaccount.com (key abcdef12…)"
    assert "PRIVATE" not in summary and "MIIE" not in summary
    qtbot.keyClicks(child(form, QLineEdit, "field-project_id"), "my-project-1")
    assert form.is_valid(), form.problems()
    payload = form.payload()
    assert json.loads(payload["secrets"]["service_account_json"]) == SERVICE_ACCOUNT
    assert "service_account_json" not in payload["config"]
    assert widget.summary() == summary


def test_a_key_file_is_read_and_big_files_are_refused(qtbot: QtBot, tmp_path: Path) -> None:
    form = make_form(qtbot, "gcp")
    widget = gcp_key(form)
    good = tmp_path / "key.json"
    good.write_text(json.dumps(SERVICE_ACCOUNT), encoding="utf-8")
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_KEY_FILE_BYTES + 1))
    widget.load_file(str(big))
    assert "larger than 64 KB" in form.problems()["service_account_json"]
    assert child(form, QLabel, "field-service_account_json-error").isVisible()

    qtbot.mouseClick(
        child(form, QToolButton, "field-service_account_json-browse"), Qt.MouseButton.LeftButton
    )
    dialog = child(form, QFileDialog, "file-dialog")
    qtbot.waitUntil(dialog.isVisible, timeout=2000)
    dialog.fileSelected.emit(str(good))
    dialog.reject()
    qtbot.waitUntil(lambda: form.findChild(QFileDialog) is None, timeout=2000)
    assert "service_account_json" not in form.problems()
    assert widget.value() == json.dumps(SERVICE_ACCOUNT)


def test_a_stored_key_file_is_kept_unless_replaced(qtbot: QtBot) -> None:
    entry = ProviderEntry(
        id="gcp",
        template_id="gcp",
        name="Google Cloud",
        config={"project_id": "my-project-1", "region": "europe-west4"},
        secrets_set=["service_account_json"],
    )
    form = make_form(qtbot, "gcp", entry, backend="SecretService")
    summary = child(form, QLineEdit, "field-service_account_json")
    assert summary.text() == ""
    assert summary.placeholderText().startswith("stored in SecretService — ")
    assert form.is_valid()
    assert "secrets" not in form.payload()
    assert child(form, QComboBox, "field-region").currentText() == "europe-west4"


# -- reset, highlight, browse ----------------------------------------------------------------------


def test_reset_restores_the_state_it_was_built_with(qtbot: QtBot) -> None:
    form = make_form(qtbot, "runpod", runpod_entry(), backend="SecretService")
    before = form.payload()
    child(form, QLineEdit, "name").setText("Renamed")
    qtbot.keyClicks(child(form, QLineEdit, "field-endpoint_id"), "!")
    child(form, QToolButton, "field-api_key-clear").click()
    form.highlight(["endpoint_id"], "rejected")
    assert form.is_dirty() and not form.is_valid()
    with qtbot.waitSignal(form.changed):
        form.reset()
    assert form.payload() == before
    assert not form.is_dirty()
    assert form.is_valid()
    assert child(form, QLineEdit, "field-api_key").placeholderText().startswith("stored in")
    assert child(form, QLabel, "field-endpoint_id-error").isHidden()


def test_highlight_marks_the_rejected_field_and_focuses_it(qtbot: QtBot) -> None:
    form = make_form(qtbot, "runpod")
    form.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is form, timeout=2000)
    edit = child(form, QLineEdit, "field-api_key")
    qtbot.keyClicks(edit, RUNPOD_KEY)
    child(form, QLineEdit, "name").setFocus()
    form.highlight(["api_key"], "RunPod rejected this key")
    error = child(form, QLabel, "field-api_key-error")
    assert error.text() == "RunPod rejected this key"
    assert error.isVisible()
    assert edit.property("invalid") is True
    qtbot.waitUntil(edit.hasFocus, timeout=2000)
    assert form.is_valid()  # a rejection is not a form problem: the user may retry
    qtbot.keyClicks(edit, "x")  # editing the field drops its mark
    assert error.isHidden()

    form.highlight(["webhook_secret"], "bad secret")  # inside the collapsed options
    section = child(form, QCollapsible, "options")
    qtbot.waitUntil(form.fields["webhook_secret"].editor.hasFocus, timeout=2000)
    assert section.isExpanded()
    form.highlight([], "RunPod is down")
    assert child(form, QLabel, "form-error").text() == "RunPod is down"
    form.clear_highlights()
    assert child(form, QLabel, "form-error").isHidden()
    assert child(form, QLabel, "field-webhook_secret-error").isHidden()


def test_browse_opens_a_non_blocking_dialog(qtbot: QtBot, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("not really a key", encoding="utf-8")
    form = make_form(qtbot, "ssh")
    edit = child(form, QLineEdit, "field-ssh_key_path")
    qtbot.keyClicks(edit, "~/.ssh/id_rsa")
    assert form.payload()["config"]["ssh_key_path"] == "~/.ssh/id_rsa"  # ~ kept as typed
    qtbot.mouseClick(
        child(form, QToolButton, "field-ssh_key_path-browse"), Qt.MouseButton.LeftButton
    )
    dialog = child(form, QFileDialog, "file-dialog")
    qtbot.waitUntil(dialog.isVisible, timeout=2000)
    assert QApplication.activeModalWidget() in (None, dialog)  # returned at once: no exec()
    dialog.selectFile(str(key))
    dialog.accept()
    qtbot.waitUntil(lambda: form.findChild(QFileDialog) is None, timeout=2000)
    assert edit.text() == str(key)
    assert form.fields["ssh_key_path"].touched


# -- registry metadata -------------------------------------------------------------------------

AWS_ACCESS_KEY = "AKIA" + "0123456789ABCDEF"  # (split: no credential-shaped literal)
AWS_SECRET_KEY = "abcdefghijABCDEFGHIJ0123456789/+abcdefgh"


@pytest.mark.usefixtures("qloop", "secret_service")
def test_aws_metadata_is_generated_from_the_profile_and_saved_in_meta(
    qtbot: QtBot, app_home: Path
) -> None:
    """The security group and subnet the AWS onboarding notes ask for: inputs generated from
    the profile, saved (through the page and the service) into the entry's meta; a bad value
    is refused naming the field, and nothing is saved."""
    from comfyvn_gui.gui.bridge import ServiceBridge
    from comfyvn_gui.gui.remote_gpu.page import RemoteGpuPage
    from comfyvn_gui.service import Service
    from comfyvn_gui.store.paths import resolve_home

    page = RemoteGpuPage(ServiceBridge(Service(resolve_home())))
    qtbot.addWidget(page)
    page.show()
    with qtbot.waitSignal(page.loaded, timeout=15000):
        page.start()
    page.cards.select("template:aws")
    qtbot.waitUntil(lambda: page.form is not None and page.current_key == "template:aws")
    form = page.form
    assert form is not None
    labels = {m.name: m.label for m in CATALOG.profile("aws").meta_fields}
    assert labels == {
        "security_group_id": "Security group",
        "subnet_id": "Subnet",
        "spot": "Allow Spot instances",
    }
    for name, label in labels.items():
        [row_label] = [
            lb for lb in form.findChildren(QLabel) if lb.buddy() is form.meta_inputs[name].editor
        ]
        assert row_label.text().replace("&", "") == label
    qtbot.keyClicks(form.field_widget("access_key").editor, AWS_ACCESS_KEY)
    qtbot.keyClicks(form.field_widget("secret_key").editor, AWS_SECRET_KEY)
    qtbot.keyClicks(form.meta_inputs["security_group_id"].editor, "sg-0123456789abcdef0")
    qtbot.keyClicks(form.meta_inputs["subnet_id"].editor, "subnet-12")  # too short

    # A bad value: the field says why (its label), Save says which, nothing is written.
    problem = form.problems()["meta.subnet_id"]
    assert problem == "Subnet does not have the expected form (e.g. subnet-0123456789abcdef0)"
    assert child(form, QLabel, "meta-subnet_id-error").text() == problem
    page.save_button.click()
    qtbot.waitUntil(lambda: page.banner.isVisible())
    assert page.banner.label.text() == f"Not saved: fix meta.subnet_id: {problem}"
    assert not (app_home / "config" / "providers.json").exists() or all(
        p["template_id"] != "aws"
        for p in json.loads((app_home / "config" / "providers.json").read_text())["providers"]
    )

    qtbot.keyClicks(form.meta_inputs["subnet_id"].editor, "3456789abcdef0")
    form.meta_inputs["spot"].editor.click()
    assert form.is_valid()
    with qtbot.waitSignal(page.saved, timeout=10000) as saved:
        page.save_button.click()
    pid = saved.args[0]
    page.bridge.close()
    qtbot.waitUntil(lambda: not page.bridge._tasks, timeout=10000)
    page.close()

    svc = Service(resolve_home())  # read back as another process would
    try:
        assert svc.get_provider(pid).meta == {
            "security_group_id": "sg-0123456789abcdef0",
            "subnet_id": "subnet-123456789abcdef0",
            "spot": True,
        }
    finally:
        svc.close()


def test_the_gpu_picks_the_machine_and_the_machine_shows_its_gpu(qtbot: QtBot) -> None:
    """Issue 21: a Lambda provider's GPU and instance type are one choice. Picking H100 puts
    the cheapest H100 instance type in the field; typing an instance type the catalog lists
    shows its GPU; the payload is always a pair the save accepts."""
    form = make_form(qtbot, "lambda")
    profile = form.profile
    gpu = child(form, QComboBox, "gpu")
    machine = child(form, QLineEdit, "field-instance_type")
    gpu.setCurrentIndex(gpu.findText("H100"))
    [cheapest, *_] = profile.machines_with("H100")
    assert machine.text() == cheapest.id
    payload = form.payload()
    assert payload["gpu"] == "H100" and payload["config"]["instance_type"] == cheapest.id
    machine.clear()
    qtbot.keyClicks(machine, "gpu_1x_a100")
    assert gpu.currentText() == "A100 40GB"
    assert form.payload()["gpu"] == "A100 40GB"
    # an instance type the catalog does not list leaves the GPU as chosen
    machine.clear()
    qtbot.keyClicks(machine, "gpu_1x_b200")
    assert gpu.currentText() == "A100 40GB" and "instance_type" not in form.problems()
