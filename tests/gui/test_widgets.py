"""Shared widgets (comfyvn_gui/gui/widgets/), as a user sees them."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from comfyvn_gui.gui.palette import is_dark
from comfyvn_gui.gui.widgets.banner import BANNER_COLOURS, Banner


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
