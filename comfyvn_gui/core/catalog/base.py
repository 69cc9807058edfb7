"""What every catalog model shares: the strict model configuration and the catalog's errors."""

from __future__ import annotations

from pydantic import ConfigDict

from comfyvn_gui.core.errors import OperationError

__all__ = ["STRICT", "CatalogError", "PathError"]

#: Catalog models are immutable and refuse unknown keys (a typo in a data file is an error).
STRICT = ConfigDict(frozen=True, extra="forbid")


class CatalogError(OperationError):
    """A catalog data file is missing or broken.

    ``file`` is the file's name relative to the catalog folder, ``entry`` the provider id or GPU
    name the problem is in (``None`` where it is the file itself), ``fields`` the field paths.
    """

    code = "catalog_invalid"

    def __init__(
        self,
        message: str,
        *,
        file: str,
        entry: str | None = None,
        fields: list[str] | None = None,
    ) -> None:
        super().__init__(message, fields=fields)
        self.file = file
        self.entry = entry


class PathError(ValueError):
    """A validator's complaint about a field below the one it validates (``path`` is relative)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message
