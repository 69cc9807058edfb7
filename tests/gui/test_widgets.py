"""Shared widgets (comfyvn_gui/gui/widgets/), as a user sees them."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from comfyvn_gui.gui.palette import is_dark
from comfyvn_gui.gui.widgets.banner import BANNER_COLOURS, Banner
from comfyvn_gui.gui.widgets.cost_chart import CostBar, CostChart
from comfyvn_gui.gui.widgets.thumbnails import STATE_ROLE, Thumb, ThumbnailGrid

WAIT_MS = 10000


@pytest.mark.parametrize("name", ["banner", "review-banner", "advisor-banner", "form-error"])
@pytest.mark.parametrize("kind", ["ok", "warning", "error"])
def test_a_banner_shows_its_kinds_colour_whatever_its_name(
    qtbot: QtBot, name: str, kind: str
) -> None:
    """Pages rename their banners; each must still be painted in its kind's colour."""
    banner = Banner()
    qtbot.addWidget(banner)
    banner.setObjectName(name)
    banner.resize(300, 40)
    banner.show_message(kind, "Saved.")
    light, dark = BANNER_COLOURS[kind]
    _fg, bg = dark if is_dark(banner) else light
    image = banner.grab().toImage()
    # Inside the frame's right margin: neither the text nor the rounded corner.
    pixel = image.pixelColor(image.width() - 4, image.height() // 2)
    assert pixel.name() == QColor(bg).name()


def test_the_chart_paints_unknown_prices_and_the_grid_a_missing_file(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """Edge cases without a run (tests/gui/test_review_panel.py has a real one): a bar with
    no price, keyboard use, an output file that is gone."""
    chart = CostChart()
    qtbot.addWidget(chart)
    chart.set_bars(
        [
            CostBar("a", "a", 1.0, "$1.00", chosen=True),
            CostBar("b", "b", None, "price unknown"),
        ]
    )
    chart.resize(300, chart.sizeHint().height())
    assert not chart.grab().toImage().isNull()
    assert "b: price unknown" in chart.accessibleDescription()
    chart.setFocus()
    qtbot.keyClick(chart, Qt.Key.Key_Down)
    with qtbot.waitSignal(chart.bar_activated) as activated:
        qtbot.keyClick(chart, Qt.Key.Key_Return)
    assert activated.args == ["a"]

    grid = ThumbnailGrid()
    qtbot.addWidget(grid)
    with qtbot.waitSignal(grid.all_loaded, timeout=WAIT_MS):
        grid.set_items([Thumb((tmp_path / "gone.png",), "gone.png")])
    assert grid.thumbs.index(0, 0).data(STATE_ROLE) == "unreadable"
    grid.close()
    assert grid.pool.activeThreadCount() == 0


def test_the_thumbnail_model_passes_qt_model_tester(
    qtbot: QtBot, qtmodeltester: ModelTester, tmp_path: Path
) -> None:
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (300, 200), (i * 60, 20, 20)).save(path)
        paths.append(path)
    grid = ThumbnailGrid()
    qtbot.addWidget(grid)
    with qtbot.waitSignal(grid.all_loaded, timeout=WAIT_MS):
        grid.set_items([Thumb((p,), p.name) for p in paths])
    qtmodeltester.check(grid.thumbs)
    pixmap = grid.thumbs.index(0, 0).data(Qt.ItemDataRole.DecorationRole)
    assert max(pixmap.width(), pixmap.height()) <= 112  # scaled as it was decoded
    grid.close()
