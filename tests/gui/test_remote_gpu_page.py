"""Settings → Remote GPU, end to end: the real keyring, real checks against the providers'
contract fakes and a real sshd, files other processes write, and the dialogs — headless."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from PySide6.QtWidgets import QLabel, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from comfyvn_gui.core.catalog import resources_dir
from comfyvn_gui.gui.bridge import COALESCE_MS
from comfyvn_gui.gui.mainwindow import MainWindow
from comfyvn_gui.gui.remote_gpu.page import RemoteGpuPage
from comfyvn_gui.gui.remote_gpu.provider_io import ImportDialog
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from comfyvn_gui.store.secrets import SecretStore
from tests.conftest import keyring_entries
from tests.fakes.http import SilentServer
from tests.fakes.runpod import RunPodFake, health_body
from tests.fakes.sshd import Sshd, running_sshd

from .test_window import close, loaded, no_leaks, qloop  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("secret_service")

KEY = "rpa_GUI_CANARY_0123456789abcdef"


@pytest.fixture
def window(qtbot: QtBot, app_home: Path) -> Iterator[MainWindow]:
    w = loaded(qtbot, MainWindow())
    yield w
    close(qtbot, w)


@pytest.fixture
def runpod() -> Iterator[RunPodFake]:
    with RunPodFake() as fake:
        yield fake


def page_of(w: MainWindow) -> RemoteGpuPage:
    return w.remote


def select(qtbot: QtBot, page: RemoteGpuPage, key: str) -> None:
    page.cards.select(key)
    qtbot.waitUntil(lambda: page.current_key == key and page.form is not None, timeout=5000)


def add_runpod(svc: Service, fake: RunPodFake, pid: str = "rp", key: str | None = None) -> None:
    svc.create_provider("runpod", fake.provider(pid, key=key or fake.key))


def refreshed(qtbot: QtBot, page: RemoteGpuPage, pid: str) -> None:
    page.refresh()
    qtbot.waitUntil(lambda: pid in page.entries, timeout=5000)


def banner(page: RemoteGpuPage) -> str:
    return page.banner.label.text() if page.banner.isVisible() else ""


# --------------------------------------------------------------------------- first run


def test_first_run_greets_once_with_what_was_found(qtbot: QtBot, app_home: Path) -> None:
    w = loaded(qtbot, MainWindow())
    greeting = w.remote.greeting
    assert greeting.isVisible()
    text = greeting.label.text()
    assert "No local GPU" in text and "add a provider" in text
    assert "Secret Service (GNOME Keyring / KWallet)" in text
    greeting.action.click()  # "Add a provider": the first template is selected
    assert w.remote.current_key and w.remote.current_key.startswith("template:")
    assert not greeting.isVisible()
    close(qtbot, w)
    again = loaded(qtbot, MainWindow())
    assert not again.remote.greeting.isVisible()
    assert "No local GPU" in again.remote.local.status.text()
    assert "Secret Service" in again.remote.local.keyring.text()
    close(qtbot, again)


# --------------------------------------------------------------------------- save


def test_save_stores_secrets_in_the_keyring_only_and_reopens_masked(
    qtbot: QtBot, window: MainWindow, app_home: Path
) -> None:
    page = page_of(window)
    select(qtbot, page, "template:runpod")
    form = page.form
    assert form is not None
    field = form.field_widget("api_key")
    qtbot.keyClicks(field.editor, KEY)
    qtbot.keyClicks(form.findChild(type(field.editor), "field-endpoint_id"), "ep-demo-1")
    with qtbot.waitSignal(page.saved, timeout=10000) as saved:
        page.save_button.click()
    pid = saved.args[0]
    assert pid == "runpod"
    assert "Secrets are stored in" in banner(page)
    stored = {
        u: v for (_s, u), v in keyring_entries(f"comfyvn-gui/{page.svc.home.home_id()}").items()
    }
    assert stored["runpod/api_key"] == KEY
    for path in app_home.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    entry = json.loads((app_home / "config" / "providers.json").read_text())
    [runpod] = [p for p in entry["providers"] if p["id"] == "runpod"]
    assert runpod["config"]["endpoint_id"] == "ep-demo-1" and runpod["secrets_set"] == ["api_key"]

    # Reopen in a fresh window: the non-secret field is shown, the secret is masked.
    close(qtbot, window)
    again = loaded(qtbot, MainWindow())
    select(qtbot, again.remote, "runpod")
    form = again.remote.form
    assert form is not None
    secret = form.field_widget("api_key").editor
    assert secret.text() == "" and "stored in" in secret.placeholderText()
    assert form.field_widget("endpoint_id").value() == "ep-demo-1"
    assert "secrets" not in form.payload()
    close(qtbot, again)


def test_cancel_restores_what_was_there(qtbot: QtBot, window: MainWindow) -> None:
    page = page_of(window)
    select(qtbot, page, "local")
    form = page.form
    assert form is not None
    name = form.findChild(type(form.field_widget("name").editor), "name")
    before = name.text()
    name.setText("Renamed")
    assert form.is_dirty()
    page.cancel_button.click()
    assert name.text() == before and not form.is_dirty()


def test_a_missing_keyring_says_what_to_install_and_saves_nothing(
    qtbot: QtBot, app_home: Path
) -> None:
    svc = Service(resolve_home())
    svc.__dict__["secrets"] = SecretStore(svc.home.home_id, backend=keyring.backends.fail.Keyring())
    w = loaded(qtbot, MainWindow(service=svc))
    page = w.remote
    assert page.local.keyring.property("warning")
    assert "Secret Service" in page.local.keyring.text()
    select(qtbot, page, "template:runpod")
    assert "Secrets cannot be stored" in banner(page)
    form = page.form
    assert form is not None
    qtbot.keyClicks(form.field_widget("api_key").editor, KEY)
    page.save_button.click()
    qtbot.waitUntil(lambda: "Not saved" in banner(page), timeout=10000)
    assert "keyring" in banner(page)
    assert [p.id for p in svc.list_providers()] == ["local"]
    assert not (app_home / "config" / "providers.json").exists()
    close(qtbot, w)


# --------------------------------------------------------------------------- validate


def test_validate_shows_the_identity_and_the_badge(
    qtbot: QtBot, window: MainWindow, runpod: RunPodFake
) -> None:
    page = page_of(window)
    add_runpod(page.svc, runpod)
    refreshed(qtbot, page, "rp")
    select(qtbot, page, "rp")
    with qtbot.waitSignal(page.checks_finished, timeout=15000) as done:
        page.validate_button.click()
    [result] = done.args[0]
    assert result.status == "valid"
    assert banner(page) == f"Valid — authenticated as {runpod.email}."
    qtbot.waitUntil(lambda: page.cards.card("rp").info.badge.state == "validated", timeout=5000)
    assert page.validate_button.isEnabled() and not page.progress.isVisible()


def test_a_rejected_key_highlights_the_field(
    qtbot: QtBot, window: MainWindow, runpod: RunPodFake
) -> None:
    page = page_of(window)
    add_runpod(page.svc, runpod, key="rpa_WRONG_KEY_0123456789")
    refreshed(qtbot, page, "rp")
    select(qtbot, page, "rp")
    with qtbot.waitSignal(page.checks_finished, timeout=15000):
        page.validate_button.click()
    assert banner(page).startswith("Invalid credentials:")
    assert page.banner.kind == "error"
    form = page.form
    assert form is not None
    error = form.findChild(QLabel, "field-api_key-error")
    assert error.isVisible() and error.text()
    qtbot.waitUntil(
        lambda: page.cards.card("rp").info.badge.text == "invalid: key rejected", timeout=5000
    )


def test_a_slow_provider_shows_progress_and_can_be_cancelled(
    qtbot: QtBot, window: MainWindow, app_home: Path
) -> None:
    page = page_of(window)
    with SilentServer() as silent:
        page.svc.create_provider(
            "runpod",
            {
                "id": "slow",
                "config": {
                    "api_key": KEY,
                    "endpoints": {"graphql": f"{silent.base}/graphql"},
                },
            },
        )
        refreshed(qtbot, page, "slow")
        select(qtbot, page, "slow")
        page.validate_button.click()
        qtbot.waitUntil(page.progress.isVisible, timeout=5000)
        assert page.stop_button.isVisible() and not page.validate_button.isEnabled()
        assert "Validating" in page.validate_button.text()
        # The window stays responsive: another card can be looked at meanwhile.
        page.cards.filter_text = "runpod"
        page.stop_button.click()
        qtbot.waitUntil(lambda: "Cancelled" in banner(page), timeout=5000)
    assert page.validate_button.isEnabled() and not page.progress.isVisible()
    assert "slow" not in page.svc.last_results()  # nothing was recorded


def test_validate_all_checks_every_provider_at_once(
    qtbot: QtBot, window: MainWindow, runpod: RunPodFake
) -> None:
    page = page_of(window)
    add_runpod(page.svc, runpod, "good")
    add_runpod(page.svc, runpod, "bad", key="rpa_WRONG_KEY_0123456789")
    refreshed(qtbot, page, "bad")
    with qtbot.waitSignal(page.checks_finished, timeout=20000) as done:
        page.validate_all_button.click()
    statuses = {r.provider: r.status for r in done.args[0]}
    assert statuses["good"] == "valid" and statuses["bad"] == "invalid_credentials"
    assert set(statuses) == {"local", "good", "bad"}
    valid = sum(s == "valid" for s in statuses.values())
    assert banner(page).startswith(f"{valid} of 3 providers valid.")
    assert "bad (invalid_credentials)" in banner(page)


@pytest.fixture(scope="module")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def add_ssh(svc: Service, sshd: Sshd) -> None:
    svc.create_provider(
        "ssh",
        {
            "id": "gpu01",
            "config": {
                "hostname": sshd.hostname,
                "username": "root",
                "ssh_key_path": str(sshd.client_key),
                "nfs_mount": str(sshd.nfs),
            },
        },
    )


def test_an_unknown_ssh_host_key_is_shown_and_can_be_trusted(
    qtbot: QtBot, window: MainWindow, sshd_server: Sshd
) -> None:
    sshd_server.reset()
    page = page_of(window)
    add_ssh(page.svc, sshd_server)
    refreshed(qtbot, page, "gpu01")
    select(qtbot, page, "gpu01")
    with qtbot.waitSignal(page.checks_finished, timeout=20000) as first:
        page.validate_button.click()
    assert first.args[0][0].status == "untrusted_host"
    assert sshd_server.host_fingerprint in banner(page)
    assert page.banner.action.isVisible()
    assert page.banner.action.text() == "Trust this host key"
    with qtbot.waitSignal(page.checks_finished, timeout=20000) as second:
        page.banner.action.click()
    assert second.args[0][0].status == "valid", second.args[0][0].message
    assert banner(page).startswith("Valid")
    pinned = page.svc.host_keys.get("gpu01")
    assert pinned is not None and pinned.fingerprint == sshd_server.host_fingerprint


def test_a_changed_ssh_host_key_is_a_loud_warning_without_a_button(
    qtbot: QtBot, window: MainWindow, sshd_server: Sshd
) -> None:
    sshd_server.reset()
    page = page_of(window)
    add_ssh(page.svc, sshd_server)
    page.svc.trust_host("gpu01", "SHA256:" + "A" * 43)
    refreshed(qtbot, page, "gpu01")
    select(qtbot, page, "gpu01")
    with qtbot.waitSignal(page.checks_finished, timeout=20000):
        page.validate_button.click()
    assert "HOST KEY HAS CHANGED" in banner(page) and page.banner.kind == "error"
    assert not page.banner.action.isVisible()


# --------------------------------------------------------------------------- other processes


def test_a_provider_added_by_another_process_appears_without_a_restart(
    qtbot: QtBot, window: MainWindow, app_home: Path
) -> None:
    page = page_of(window)
    env = {**os.environ, "COMFYVN_GUI_HOME": str(app_home)}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "comfyvn_gui",
            "providers",
            "create",
            "lambda",
            "--id",
            "from-cli",
            "--no-prompt",
            "--config-file",
            "-",
        ],
        input=json.dumps({"api_key": "secret_lambda_key_0123456789"}),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    qtbot.waitUntil(lambda: "from-cli" in page.cards.keys(), timeout=10000)
    assert page.cards.card("from-cli").info.badge.state == "configured"


def test_health_results_refresh_the_badges(
    qtbot: QtBot, window: MainWindow, runpod: RunPodFake
) -> None:
    page = page_of(window)
    add_runpod(page.svc, runpod)
    # Another process (the CLI, or the API server's monitor) checks the provider.
    env = {**os.environ, "COMFYVN_GUI_HOME": str(page.svc.home.config_dir.parent)}
    for kind in ("validate", "health"):
        res = subprocess.run(
            [sys.executable, "-m", "comfyvn_gui", "providers", kind, "rp"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stdout + res.stderr
    qtbot.waitUntil(
        lambda: "rp" in page.cards.keys() and page.cards.card("rp").info.badge.state == "healthy",
        timeout=10000,
    )


def count_reads(
    window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], dict[str, int]]:
    """How often each page has read its state through the bridge since this was called."""
    remote, jobs, advisor = window.remote, window.jobs, window.advisor
    bridge = window.bridge
    assert remote is not None and jobs is not None and advisor is not None and bridge is not None
    readers: dict[str, list[Callable[..., Any]]] = {
        "remote-gpu": [remote._read_state],
        "jobs": [jobs._read_state],
        "advisor": [advisor._read_state, advisor._count_queued],
    }
    calls: list[Callable[..., Any]] = []
    real_call = bridge.call

    async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(fn)
        return await real_call(fn, *args, **kwargs)

    monkeypatch.setattr(bridge, "call", call)
    return lambda: {page: sum(fn in fns for fn in calls) for page, fns in readers.items()}


def settle(qtbot: QtBot, window: MainWindow) -> None:
    """Wait until the watcher's notifications have been handled and no page is reading."""
    qtbot.wait(4 * COALESCE_MS)  # the notification, then the bridge's coalescing timer
    pages = (window.remote, window.jobs, window.advisor)
    qtbot.waitUntil(
        lambda: all(p is None or not p.reads.busy for p in pages),
        timeout=10000,
    )
    assert window.bridge is not None and not window.bridge._timer.isActive()


def test_one_save_reloads_each_page_once(
    qtbot: QtBot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    page, jobs = page_of(window), window.jobs
    assert jobs is not None and window.bridge is not None
    other = Service(resolve_home())  # queued jobs: a save re-advises them
    other.import_summary(
        json.loads(
            (resources_dir() / "examples" / "summaries" / "moonlit-academy.json").read_text()
        )
    )
    other.close()
    qtbot.waitUntil(lambda: jobs.model.rowCount() > 0, timeout=10000)
    select(qtbot, page, "template:lambda")
    form = page.form
    assert form is not None
    qtbot.keyClicks(form.field_widget("api_key").editor, "secret_lambda_key_0123456789")
    settle(qtbot, window)
    reads = count_reads(window, monkeypatch)
    notified: list[str] = []
    watcher = window.bridge._watcher
    assert watcher is not None
    watcher.directoryChanged.connect(notified.append)
    watcher.fileChanged.connect(notified.append)

    with qtbot.waitSignal(page.saved, timeout=10000):
        page.save_button.click()
    settle(qtbot, window)
    assert notified  # the watcher saw the save's write ...
    assert reads() == {"remote-gpu": 1, "jobs": 1, "advisor": 1}  # ... and nobody read twice
    assert "lambda" in page.cards.keys()

    # A change another writer makes still reloads every page (its registry write and its
    # re-advice may reach the watcher apart, so a page may read more than once).
    other = Service(resolve_home())
    other.create_provider("runpod", {"id": "from-elsewhere"})
    other.close()
    qtbot.waitUntil(lambda: "from-elsewhere" in page.cards.keys(), timeout=10000)
    settle(qtbot, window)
    assert all(n >= 2 for n in reads().values()), reads()


# --------------------------------------------------------------------------- remove, export, import


def click_button(box: QMessageBox, text: str) -> None:
    [button] = [b for b in box.buttons() if b.text() == text]
    button.click()


def find_box(qtbot: QtBot, page: RemoteGpuPage, name: str) -> QMessageBox:
    def visible() -> list[QMessageBox]:
        return [b for b in page.findChildren(QMessageBox, name) if b.isVisible()]

    qtbot.waitUntil(lambda: bool(visible()), timeout=5000)
    [box] = visible()
    return box


def test_remove_asks_first_and_the_local_provider_is_protected(
    qtbot: QtBot, window: MainWindow, runpod: RunPodFake
) -> None:
    page = page_of(window)
    select(qtbot, page, "local")
    assert not page.remove_button.isEnabled()
    add_runpod(page.svc, runpod)
    refreshed(qtbot, page, "rp")
    select(qtbot, page, "rp")
    page.remove_button.click()
    box = find_box(qtbot, page, "remove-confirm")
    assert "api_key" in box.informativeText()
    click_button(box, "Cancel")
    assert "rp" in [p.id for p in page.svc.list_providers()]
    page.remove_button.click()
    click_button(find_box(qtbot, page, "remove-confirm"), "Remove")
    qtbot.waitUntil(lambda: "Removed rp" in banner(page), timeout=5000)
    assert "rp" not in [p.id for p in page.svc.list_providers()]
    mine = keyring_entries(f"comfyvn-gui/{page.svc.home.home_id()}")
    assert not [u for (_s, u) in mine if u.startswith("rp/")]


def test_export_warns_before_including_secrets(
    qtbot: QtBot, window: MainWindow, runpod: RunPodFake, tmp_path: Path
) -> None:
    page = page_of(window)
    add_runpod(page.svc, runpod, key=KEY)
    page.export_button.click()
    choice = find_box(qtbot, page, "export-choice")
    click_button(choice, "Include secrets…")
    warning = find_box(qtbot, page, "export-secrets-warning")
    assert "plain text" in warning.text()
    click_button(warning, "Cancel")
    qtbot.waitUntil(
        lambda: not [b for b in page.findChildren(QMessageBox) if b.isVisible()], timeout=5000
    )
    plain = tmp_path / "plain.json"
    task = page.export_to(str(plain), include_secrets=False)
    qtbot.waitUntil(task.done, timeout=5000)
    assert KEY not in plain.read_text() and "rp" in plain.read_text()
    assert stat.S_IMODE(plain.stat().st_mode) == 0o600
    full = tmp_path / "full.json"
    task = page.export_to(str(full), include_secrets=True)
    qtbot.waitUntil(task.done, timeout=5000)
    assert KEY in full.read_text()
    assert "keep this file private" in banner(page)


def test_import_previews_what_a_replace_deletes(
    qtbot: QtBot, window: MainWindow, runpod: RunPodFake, tmp_path: Path
) -> None:
    page = page_of(window)
    add_runpod(page.svc, runpod, "old", key=KEY)
    source = tmp_path / "team.json"
    source.write_text(
        json.dumps(
            {"providers": [{"id": "team-lambda", "template_id": "lambda", "name": "Team Lambda"}]}
        )
    )
    dialog: ImportDialog = page.import_from(str(source))
    qtbot.waitUntil(lambda: dialog.import_button.isEnabled(), timeout=5000)
    assert "will add: team-lambda" in dialog.preview.text()
    assert "old" not in dialog.preview.text()
    dialog.replace.setChecked(True)
    qtbot.waitUntil(lambda: dialog.import_button.isEnabled(), timeout=5000)
    text = dialog.preview.text()
    assert "deletes providers" in text and "will delete providers: old" in text
    assert "will delete stored credentials of old: api_key" in text
    dialog.merge.setChecked(True)
    qtbot.waitUntil(lambda: dialog.import_button.isEnabled(), timeout=5000)
    dialog.import_button.click()
    qtbot.waitUntil(lambda: "Imported 1 providers" in banner(page), timeout=5000)
    assert {p.id for p in page.svc.list_providers()} == {"local", "old", "team-lambda"}


def test_an_unreadable_import_file_says_why(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    page = page_of(window)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    dialog = page.import_from(str(bad))
    qtbot.waitUntil(lambda: "cannot be imported" in dialog.preview.text(), timeout=5000)
    assert not dialog.import_button.isEnabled()
    dialog.reject()


# --------------------------------------------------------------------------- diagnostics


def test_save_diagnostics_from_the_help_menu(
    qtbot: QtBot, window: MainWindow, runpod: RunPodFake, tmp_path: Path
) -> None:
    add_runpod(window.remote.svc, runpod, key=KEY)
    target = tmp_path / "diag.zip"
    task = window.save_diagnostics(str(target))
    qtbot.waitUntil(task.done, timeout=20000)
    assert "Diagnostics saved to" in window.statusBar().currentMessage()
    with zipfile.ZipFile(target) as z:
        names = z.namelist()
        blob = b"".join(z.read(n) for n in names)
    assert "about.json" in names and "providers.json" in names
    assert KEY.encode() not in blob


def test_every_button_of_the_page_is_named(window: MainWindow) -> None:
    for button in window.remote.findChildren(QPushButton):
        assert button.accessibleName() or button.text(), button.objectName()


def test_an_unhealthy_provider_shows_since_when(qtbot: QtBot, window: MainWindow) -> None:
    page = page_of(window)
    with RunPodFake(endpoints={"ep-down": health_body(unhealthy=3, in_queue=1)}) as fake:
        page.svc.create_provider(
            "runpod",
            {
                "id": "down",
                "base_url": fake.serverless_base,
                "config": {
                    "api_key": fake.key,
                    "endpoint_id": "ep-down",
                    "endpoints": {"graphql": fake.graphql_url},
                },
            },
        )
        refreshed(qtbot, page, "down")
        select(qtbot, page, "down")
        task = window.bridge.spawn(page.svc.check("health", ["down"]))
        qtbot.waitUntil(task.done, timeout=15000)
    [result] = task.result()
    assert result.status == "unhealthy"
    qtbot.waitUntil(lambda: page.cards.card("down").info.badge.state == "unhealthy", timeout=10000)
    badge = page.cards.card("down").info.badge
    assert badge.text.startswith("unhealthy since ")
    assert result.checked_at.astimezone().strftime("%H:%M") in badge.text


def test_closing_the_window_cancels_a_running_check(qtbot: QtBot, app_home: Path) -> None:
    w = loaded(qtbot, MainWindow())
    page = w.remote
    assert page is not None
    with SilentServer() as silent:
        page.svc.create_provider(
            "runpod",
            {"id": "slow", "config": {"api_key": KEY, "endpoints": {"graphql": silent.base}}},
        )
        refreshed(qtbot, page, "slow")
        select(qtbot, page, "slow")
        page.validate_button.click()
        qtbot.waitUntil(page.progress.isVisible, timeout=5000)
        close(qtbot, w)  # waits until the cancelled work has ended
    assert not w.bridge._tasks
    assert "slow" not in Service(resolve_home()).last_results()


def test_a_provider_from_a_newer_version_is_kept_and_named_not_carded(
    qtbot: QtBot, app_home: Path, runpod: RunPodFake
) -> None:
    """One entry whose template this version does not know (hand edit, newer version) must not
    take the page down: the others get their cards, a banner names it and the fix."""
    svc = Service(resolve_home())
    add_runpod(svc, runpod)
    path = svc.home.registry_file
    data = json.loads(path.read_text())
    data["providers"].append({"id": "future", "template_id": "nebula-cloud", "name": "Nebula"})
    path.write_text(json.dumps(data))
    w = loaded(qtbot, MainWindow())
    try:
        page = page_of(w)
        qtbot.waitUntil(lambda: "rp" in page.cards.keys(), timeout=5000)
        assert "future" not in page.cards.keys()
        assert page.broken.isVisible()
        text = page.broken.label.text()
        assert "'future'" in text and "'nebula-cloud'" in text and "providers remove future" in text
        assert {p["id"] for p in json.loads(path.read_text())["providers"]} >= {"future", "rp"}
    finally:
        close(qtbot, w)


def test_a_locked_keyring_says_what_to_unlock_and_saves_nothing(
    qtbot: QtBot, app_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real gnome-keyring whose collection is locked (the desktop's keyring manager locked
    it): the page says so, Save says what to unlock, and nothing is written anywhere. (The
    D-Bus connection keyring's own backend left open on this path is closed now, so the
    window runs the case in this process.)"""
    from tests.conftest import start_secret_service

    locked = start_secret_service(tmp_path / "kr-locked")
    try:
        lock = subprocess.run(
            [sys.executable, "-c", "import secretstorage\nc = secretstorage.dbus_init()\n"
             "col = secretstorage.get_default_collection(c)\ncol.lock()\nprint(col.is_locked())"],
            env=locked.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert lock.stdout.strip() == "True", lock.stderr
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", locked.env["DBUS_SESSION_BUS_ADDRESS"])
        w = loaded(qtbot, MainWindow())
        page = w.remote
        assert page.local.keyring.property("warning")
        assert "locked" in page.local.keyring.text().lower()
        select(qtbot, page, "template:runpod")
        form = page.form
        assert form is not None
        qtbot.keyClicks(form.field_widget("api_key").editor, KEY)
        page.save_button.click()
        qtbot.waitUntil(lambda: "Not saved" in banner(page), timeout=10000)
        assert "locked" in banner(page) and "Unlock" in banner(page)
        assert not (app_home / "config" / "providers.json").exists()
        close(qtbot, w)
    finally:
        locked.stop()
    monkeypatch.undo()
    stored = keyring_entries(f"comfyvn-gui/{resolve_home().home_id()}")
    assert KEY not in stored.values()
