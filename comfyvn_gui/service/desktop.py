"""``comfyvn-gui desktop install|uninstall``: the app in the user's desktop menu.

Copies the menu entry (with ``Exec`` set to the program that runs this), the AppStream
metainfo and the icons under the user's data folder (``$XDG_DATA_HOME``, else
``~/.local/share``), as ``make install-desktop`` does; a bundle or a wheel installs itself the
same way. Nothing outside that folder is touched, and nothing is written for a program that
does not exist.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from comfyvn_gui.core.catalog import resources_dir
from comfyvn_gui.core.desktop import desktop_entry_for, install_plan
from comfyvn_gui.core.errors import InputError, OperationError
from comfyvn_gui.store.paths import atomic_write_text

__all__ = ["default_data_dir", "install_desktop_entry", "launcher", "uninstall_desktop_entry"]

#: Caches a desktop rebuilds when told (absent tools are skipped: a menu rescans by itself).
_REFRESH = (
    ("update-desktop-database", "-q", "{data}/applications"),
    ("gtk-update-icon-cache", "-q", "-t", "-f", "{data}/icons/hicolor"),
)


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME`` when it is an absolute path (the spec), else ``~/.local/share``."""
    value = os.environ.get("XDG_DATA_HOME", "")
    if value and Path(value).is_absolute():
        return Path(value)
    return Path.home() / ".local" / "share"


def launcher() -> list[str]:
    """The command that starts this very installation of the app.

    A bundle's executable; else the ``comfyvn-gui`` script this process was started as; else
    this Python running the package.
    """
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).absolute())]
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "comfyvn-gui" and script.exists():
        return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "comfyvn_gui"]


def install_desktop_entry(
    data_dir: Path | None = None, argv: Sequence[str] | None = None
) -> list[Path]:
    """Install the entry, metainfo and icons; returns the files written.

    ``argv`` is what the entry runs (default :func:`launcher`); its program must exist.
    """
    data = _checked_data_dir(data_dir)
    argv = list(argv) if argv else launcher()
    program = Path(argv[0])
    if not program.is_absolute() or not program.exists():
        raise InputError(
            f"--exec {argv[0]}: no such program; give the absolute path of the comfyvn-gui "
            "you want the menu to start"
        )
    written = []
    try:
        for source, target in install_plan(resources_dir(), data):
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.name.endswith(".desktop"):
                text = desktop_entry_for(source.read_text(encoding="utf-8"), argv)
                atomic_write_text(target, text, mode=0o644)
            else:
                shutil.copyfile(source, target)
            written.append(target)
    except OSError as exc:
        raise OperationError(
            f"could not install the desktop entry under {data}: {exc.strerror or exc}"
        ) from exc
    _refresh_caches(data)
    return written


def uninstall_desktop_entry(data_dir: Path | None = None) -> list[Path]:
    """Remove what :func:`install_desktop_entry` installed; returns the files removed."""
    data = _checked_data_dir(data_dir)
    removed = []
    for _source, target in install_plan(resources_dir(), data):
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise OperationError(f"could not remove {target}: {exc.strerror or exc}") from exc
        removed.append(target)
    if removed:
        _refresh_caches(data)
    return removed


def _checked_data_dir(data_dir: Path | None) -> Path:
    data = default_data_dir() if data_dir is None else data_dir.expanduser()
    if not data.is_absolute():
        data = data.absolute()
    if data.exists() and not data.is_dir():
        raise InputError(f"--data-dir {data}: not a folder")
    return data


def _refresh_caches(data: Path) -> None:
    for command in _REFRESH:
        args = [part.format(data=data) for part in command]
        if shutil.which(args[0]) is None or not Path(args[-1]).is_dir():
            continue
        try:
            subprocess.run(args, capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            continue  # a stale cache only delays the menu; the files are in place
