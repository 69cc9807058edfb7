"""Settings → Workflows, headless: each job kind's template (shipped or the user's), a chosen
graph checked by the settings store as it is chosen (refused without the needed placeholder,
nothing changed), stored when good (read back by a fresh service), Use default."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from comfyvn_gui.core.runs import SHIPPED_KINDS, TEMPLATE_KINDS
from comfyvn_gui.gui.bridge import ServiceBridge
from comfyvn_gui.gui.settings.workflows import WorkflowsPage
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home

from .test_window import no_leaks, qloop  # noqa: F401 - fixtures

WAIT_MS = 15000
KEY = "workflows.cg_remix"


def graph(image: str = "{{input_image}}") -> dict[str, Any]:
    """A small API-format remix graph; ``image`` is the LoadImage node's input."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "m.safetensors"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{prompt}}", "clip": ["2", 1]}},
        "4": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["2", 2]}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["2", 2]}},
        "6": {
            "class_type": "SaveImage",
            "inputs": {"images": ["5", 0], "filename_prefix": "{{output_prefix}}"},
        },
    }


def fresh(key: str) -> Any:
    svc = Service(resolve_home())
    try:
        return svc.get_setting(key)
    finally:
        svc.close()


@pytest.fixture
def page(qtbot: QtBot, app_home: Path) -> Iterator[WorkflowsPage]:
    p = WorkflowsPage(ServiceBridge(Service(resolve_home())))
    qtbot.addWidget(p)
    p.resize(800, 900)
    p.show()
    qtbot.waitExposed(p)
    with qtbot.waitSignal(p.loaded, timeout=WAIT_MS):
        p.start()
    yield p
    p.bridge.close()
    qtbot.waitUntil(lambda: not p.bridge._tasks, timeout=WAIT_MS)
    p.close()


def choose_in_dialog(qtbot: QtBot, page: WorkflowsPage, kind: str, path: Path) -> dict[str, Any]:
    """Click "Choose file…" and pick ``path`` in the (non-blocking) dialog."""
    row = page.rows[kind]
    row.choose_button.click()
    dialog = row.dialog
    assert isinstance(dialog, QFileDialog) and dialog.isVisible()
    with qtbot.waitSignal(page.changed, timeout=WAIT_MS) as blocker:
        dialog.fileSelected.emit(str(path))
        dialog.reject()
    qtbot.waitUntil(lambda: row.choose_button.isEnabled(), timeout=WAIT_MS)
    assert row.dialog is None
    return dict(blocker.args[0])


def test_one_row_per_kind_saying_what_runs(page: WorkflowsPage) -> None:
    assert list(page.rows) == list(TEMPLATE_KINDS)
    remix = page.rows["cg_remix"]
    assert remix.source.text() == (
        "The shipped default (resources/workflows/cg_remix.json), holding {{input_image}}, "
        "{{output_prefix}}, {{prompt}}."
    )
    assert remix.needs.text() == "Needs {{input_image}} as the value of an input."
    assert not remix.default_button.isEnabled() and remix.choose_button.isEnabled()
    for kind in set(TEMPLATE_KINDS) - set(SHIPPED_KINDS):
        row = page.rows[kind]
        assert row.source.text().startswith("No default is shipped")
        assert row.needs.text() == "Needs {{input_file}} as the value of an input."
        assert row.default_button.text() == "Clear"


def test_a_graph_without_the_needed_placeholder_is_refused_and_a_good_one_stored(
    qtbot: QtBot, page: WorkflowsPage, tmp_path: Path
) -> None:
    bad = tmp_path / "fixed_image.json"
    bad.write_text(json.dumps(graph(image="portrait.png")), encoding="utf-8")
    outcome = choose_in_dialog(qtbot, page, "cg_remix", bad)
    message = (
        'workflows.cg_remix: a cg_remix template must hold "{{input_image}}" as the value of '
        "an input (the LoadImage node's image) so that each run gets its own input"
    )
    assert outcome == {"kind": "cg_remix", "stored": False, "error": message}
    row = page.rows["cg_remix"]
    assert row.error.isVisible() and row.error.text() == f"Not changed: {message}"
    assert page.banner.label.text() == f"CG remix: not changed. {message}"
    assert row.source.text().startswith("The shipped default")  # nothing changed
    assert fresh(KEY) is None

    good = tmp_path / "my_remix.json"
    good.write_text(json.dumps(graph()), encoding="utf-8")
    outcome = choose_in_dialog(qtbot, page, "cg_remix", good)
    assert outcome == {"kind": "cg_remix", "stored": True, "error": None}
    assert not row.error.isVisible()
    assert page.banner.label.text() == "Saved: CG remix uses my_remix.json."
    assert row.source.text() == (
        "Your graph from my_remix.json: 6 nodes, holding {{input_image}}, {{output_prefix}}, "
        "{{prompt}}."
    )
    assert fresh(KEY) == graph()
    assert row.default_button.isEnabled()

    with qtbot.waitSignal(page.changed, timeout=WAIT_MS) as blocker:
        row.default_button.click()
    assert blocker.args[0]["stored"] and fresh(KEY) is None
    qtbot.waitUntil(lambda: row.source.text().startswith("The shipped default"), timeout=WAIT_MS)
    assert not row.default_button.isEnabled()


def test_a_file_that_is_not_json_is_refused_plainly(
    qtbot: QtBot, page: WorkflowsPage, tmp_path: Path
) -> None:
    broken = tmp_path / "notes.json"
    broken.write_text("{not json", encoding="utf-8")
    outcome = choose_in_dialog(qtbot, page, "voice_synthesis", broken)
    assert not outcome["stored"]
    assert outcome["error"].startswith("the file 'notes.json' is not valid JSON")
    assert fresh("workflows.voice_synthesis") is None
