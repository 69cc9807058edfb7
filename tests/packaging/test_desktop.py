"""The app in a desktop's menu: its entry, AppStream metainfo and icons validate, and
``comfyvn-gui desktop install|uninstall`` puts them in place for the user and takes them out."""

from __future__ import annotations

import json
import shlex
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from comfyvn_gui import __version__
from comfyvn_gui.cli import build_parser, run
from comfyvn_gui.core.desktop import APP_ID, ICON_SIZES, exec_line

ROOT = Path(__file__).resolve().parents[2]
DESKTOP = ROOT / "resources" / "desktop"
ENTRY = DESKTOP / f"{APP_ID}.desktop"
METAINFO = DESKTOP / f"{APP_ID}.metainfo.xml"
HICOLOR = ROOT / "resources" / "icons" / "hicolor"


def _validate(*command: str) -> None:
    res = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_desktop_entry_and_the_metainfo_validate() -> None:
    _validate("desktop-file-validate", str(ENTRY))
    _validate("appstreamcli", "validate", "--no-net", str(METAINFO))


def test_the_menu_and_the_software_centre_name_the_app_as_its_window_does() -> None:
    from comfyvn_gui.gui.mainwindow import WINDOW_TITLE

    assert f"\nName={WINDOW_TITLE}\n" in ENTRY.read_text(encoding="utf-8")
    assert ET.parse(METAINFO).getroot().findtext("name") == WINDOW_TITLE


def test_the_metainfo_names_this_version_and_shows_screenshots_that_exist() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.findtext("id") == APP_ID
    assert root.find("launchable").text == f"{APP_ID}.desktop"  # type: ignore[union-attr]
    newest = root.find("releases/release")
    assert newest is not None and newest.get("version") == __version__
    assert newest.find("description") is not None  # release notes
    images = [img.text or "" for img in root.iter("image")]
    assert images
    for url in images:
        assert url.startswith("https://"), url
        path = ROOT / url.split("/main/", 1)[1]
        assert path.is_file(), f"{url}: no {path.relative_to(ROOT)} in the repository"


@pytest.mark.parametrize("size", ICON_SIZES)
def test_each_png_icon_is_its_size_and_matches_the_svg(qapp: object, size: int) -> None:
    """The PNGs are rendered from the SVG (packaging/render_icons.py): a changed SVG with
    stale PNGs fails here."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "render_icons", ROOT / "packaging" / "render_icons.py"
    )
    assert spec is not None and spec.loader is not None
    render_icons = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render_icons)

    png = HICOLOR / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
    with Image.open(png) as kept:
        assert kept.size == (size, size)
        from PySide6.QtGui import QImage

        # (a PNG keeps straight alpha; the render is premultiplied)
        rendered = render_icons.render(size).convertToFormat(QImage.Format.Format_ARGB32)
        fresh = Image.frombuffer(
            "RGBA", (size, size), rendered.constBits().tobytes(), "raw", "BGRA", 0, 1
        )
        diff = ImageChops.difference(kept.convert("RGBA"), fresh)
        assert max(ImageStat.Stat(diff).mean) < 4.0


def test_exec_line_quotes_a_path_with_spaces_and_reserved_characters() -> None:
    assert exec_line(["/opt/comfyvn-gui/comfyvn-gui"]) == "/opt/comfyvn-gui/comfyvn-gui"
    line = exec_line(["/home/a/My Apps/100%/comfyvn-gui"])
    assert line == '"/home/a/My Apps/100%%/comfyvn-gui"'
    line = exec_line(["/x/$HOME/b`c\\d", "-m", "comfyvn_gui"])
    # the Exec quoting escapes $, ` and \ with a backslash; the string level doubles each one
    assert line == '"/x/\\\\$HOME/b\\\\`c\\\\\\\\d" -m comfyvn_gui'


def _cli(*argv: str) -> tuple[int, str]:
    import io

    out, err = io.StringIO(), io.StringIO()
    code = run(build_parser().parse_args(list(argv)), stdout=out, stderr=err)
    return code, out.getvalue() + err.getvalue()


def test_desktop_install_puts_entry_metainfo_and_icons_in_place_and_uninstall_removes_them(
    tmp_path: Path,
) -> None:
    data = tmp_path / "share"
    program = tmp_path / "My Apps" / "comfyvn-gui"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)

    code, text = _cli(
        "desktop", "install", "--data-dir", str(data), "--exec", str(program), "--json"
    )
    assert code == 0, text
    installed = {Path(p) for p in json.loads(text)["installed"]}
    entry = data / "applications" / f"{APP_ID}.desktop"
    assert entry in installed
    assert data / "metainfo" / f"{APP_ID}.metainfo.xml" in installed
    assert data / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg" in installed
    for size in ICON_SIZES:
        assert data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png" in installed
    assert all(p.is_file() for p in installed)
    exec_value = next(
        line.split("=", 1)[1] for line in entry.read_text().splitlines() if line.startswith("Exec=")
    )
    assert shlex.split(exec_value) == [str(program)]  # a desktop's launcher starts this program
    _validate("desktop-file-validate", str(entry))

    code, text = _cli("desktop", "uninstall", "--data-dir", str(data), "--json")
    assert code == 0, text
    assert {Path(p) for p in json.loads(text)["removed"]} == installed
    assert not any(p.exists() for p in installed)
    code, text = _cli("desktop", "uninstall", "--data-dir", str(data))
    assert code == 0 and "not installed" in text


def test_desktop_install_refuses_a_program_that_does_not_exist_and_writes_nothing(
    tmp_path: Path,
) -> None:
    data = tmp_path / "share"
    code, text = _cli(
        "desktop", "install", "--data-dir", str(data), "--exec", "/nowhere/comfyvn-gui"
    )
    assert code == 2
    assert "--exec /nowhere/comfyvn-gui: no such program" in text
    assert not data.exists()
