"""The published JSON Schemas on disk (``docs/schemas/``): written, or compared with the models.

What they hold is ``core/schemas.py``; this module only reads and writes the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from comfyvn_gui.core.schemas import render

from .paths import atomic_write_text

__all__ = ["stale_schemas", "write_schemas"]


def write_schemas(folder: Path, schemas: dict[str, dict[str, Any]]) -> list[Path]:
    """Write each schema to ``folder/<name>`` (atomically); returns the paths written."""
    written = []
    for filename, schema in schemas.items():
        path = folder / filename
        atomic_write_text(path, render(schema), mode=0o644)
        written.append(path)
    return written


def stale_schemas(folder: Path, schemas: dict[str, dict[str, Any]]) -> list[str]:
    """File names under ``folder`` that are missing or differ from ``schemas``."""
    stale = []
    for filename, schema in schemas.items():
        path = folder / filename
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != render(schema):
            stale.append(filename)
    return stale
