"""Provider adapters, one module (or subpackage) a provider, imported only when a check needs it.

Each adapter registers itself for its catalog template beside its class (``@register``, in
:mod:`.registry`); :func:`adapter_for` finds and imports the one a check needs, and
:func:`import_all` imports them all ahead of the first check (docs/architecture.md).
Importing this package imports no adapter module, no SDK and no httpx.
"""

from __future__ import annotations

from .registry import adapter_for, import_all, register

__all__ = ["adapter_for", "import_all", "register"]
