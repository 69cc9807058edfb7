"""The app as the desktop knows it (freedesktop.org): its id, its menu entry, its icons.

One id names the menu entry (``<id>.desktop``), the AppStream metainfo, the icon and the
window (Qt's desktop file name), so that a desktop matches the running window to its entry.
The files themselves are resources (``resources/desktop/``, ``resources/icons/hicolor/``);
this module says where each goes under a data folder and writes the ``Exec`` line of the
entry for the program that installs it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "APP_ID",
    "ICON_SIZES",
    "desktop_entry_for",
    "exec_line",
    "icon_files",
    "install_plan",
]

#: Reverse-DNS id of the app (AppStream component id, desktop file and icon name).
APP_ID = "io.github.comfyvn.ComfyVNGui"

#: The PNG sizes rendered from the SVG icon (packaging/render_icons.py).
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

# An argument made only of these needs no quoting in an Exec key.
_PLAIN_ARG = re.compile(r"[A-Za-z0-9_/.+,=:@-]+")


def _quote(arg: str) -> str:
    """One argument of an Exec key, quoted as the Desktop Entry Specification says."""
    if arg and _PLAIN_ARG.fullmatch(arg):
        return arg.replace("%", "%%")
    escaped = re.sub(r'(["`$\\])', r"\\\1", arg).replace("%", "%%")
    return f'"{escaped}"'


def exec_line(argv: Sequence[str]) -> str:
    """The value of ``Exec=`` that runs ``argv``.

    Arguments are quoted for the Exec key, then the whole value escaped as a desktop-entry
    string (a backslash is written twice), so a launcher under ``~/My Apps`` starts.
    """
    if not argv:
        raise ValueError("exec_line needs a program")
    return " ".join(_quote(arg) for arg in argv).replace("\\", "\\\\")


def desktop_entry_for(template: str, argv: Sequence[str]) -> str:
    """The desktop entry ``template`` with its ``Exec`` (and ``TryExec``) set to run ``argv``."""
    program = exec_line([argv[0]])
    lines = []
    for line in template.splitlines():
        if line.startswith("Exec="):
            line = f"Exec={exec_line(argv)}"
        elif line.startswith("TryExec="):
            line = f"TryExec={program}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def install_plan(resources: Path, data_dir: Path) -> list[tuple[Path, Path]]:
    """Each (resource file, where it goes under ``data_dir``), in install order.

    ``data_dir`` is ``$XDG_DATA_HOME`` (``~/.local/share``) for one user. The entry comes last,
    so a menu that notices it finds its icon already there.
    """
    hicolor = resources / "icons" / "hicolor"
    plan = [
        (path, data_dir / "icons" / "hicolor" / path.relative_to(hicolor))
        for path in sorted(hicolor.rglob(f"{APP_ID}.*"))
    ]
    metainfo = f"{APP_ID}.metainfo.xml"
    plan.append((resources / "desktop" / metainfo, data_dir / "metainfo" / metainfo))
    entry = f"{APP_ID}.desktop"
    plan.append((resources / "desktop" / entry, data_dir / "applications" / entry))
    return plan


def icon_files(resources: Path) -> list[Path]:
    """The app icon's files (the SVG, then each PNG size), for a window's icon."""
    hicolor = resources / "icons" / "hicolor"
    return [hicolor / "scalable" / "apps" / f"{APP_ID}.svg"] + [
        hicolor / f"{size}x{size}" / "apps" / f"{APP_ID}.png" for size in ICON_SIZES
    ]
