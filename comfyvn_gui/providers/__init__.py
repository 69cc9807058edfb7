"""Provider adapters, one module a provider, imported only when a check needs it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Adapter

#: template id -> module under comfyvn_gui.providers (each defines ``ADAPTER``).
ADAPTER_MODULES: dict[str, str] = {
    "runpod": "runpod",
    "vast": "vast",
    "lambda": "lambda_labs",
    "paperspace": "paperspace",
    "lan": "lan",
    "local": "local",
    "aws": "aws",
    "azure": "azure",
    "gcp": "gcp",
    "ssh": "ssh",
    "coreweave": "coreweave",
}


def adapter_for(template_id: str) -> Adapter | None:
    """The adapter of a template, or None where this version has none yet."""
    module = ADAPTER_MODULES.get(template_id)
    if module is None:
        return None
    mod = importlib.import_module(f"{__name__}.{module}")
    adapter: Adapter = mod.ADAPTER
    return adapter
