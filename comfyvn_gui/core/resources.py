"""Where the application's resources are (catalog data, icons, the desktop entry, samples).

Light on purpose: the window's start-up reads its icon from here before pydantic or the
catalog are imported.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

__all__ = ["resources_dir"]


def resources_dir() -> Path:
    """The application's resources folder (catalog data, icons, samples, style).

    In an installed wheel (and in the bundle) it is ``comfyvn_gui/resources`` (pyproject
    force-includes the top-level ``resources/`` there; the PyInstaller spec does the same); in
    a checkout or editable install, ``<repo>/resources``.
    """
    packaged = importlib.resources.files("comfyvn_gui") / "resources"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "resources"
