"""Live price sources (issue 21): each fetches the offers of one provider kind with the
provider's stored credentials (or a public price API that needs none) and returns them as
:class:`~comfyvn_gui.core.prices.Offer` rows with ``source="live"``.

A source is ``async def live_offers(ctx: CheckContext, catalog: Catalog) -> list[Offer]``:
``ctx`` is the check context the service builds for a Validate (credentials from the keyring,
``ctx.http`` with the user's network settings and the tests' transport, ``ctx.run_blocking``
for an SDK, ``ctx.deadline``), ``catalog`` the loaded catalog (machines, GPUs, regions). It
raises :class:`~comfyvn_gui.providers.base.CheckFailure` when the source cannot answer (the
service then keeps the catalog's prices and says why). Modules are imported when a refresh
needs them, never at start-up (no SDK is loaded by importing this package).

Templates without a price API (CoreWeave, Paperspace, SSH, LAN, local, custom) have no source:
their offers come from the catalog alone, said so.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from comfyvn_gui.core.catalog import Catalog
    from comfyvn_gui.core.prices import Offer
    from comfyvn_gui.providers.base import CheckContext

__all__ = ["LIVE_SOURCES", "live_source"]

LiveSource = Callable[["CheckContext", "Catalog"], Awaitable[list["Offer"]]]

#: template id -> the module (under this package) whose ``live_offers`` prices it.
LIVE_SOURCES: dict[str, str] = {
    "lambda": "lambda_labs",
    "runpod": "runpod",
    "vast": "vast",
    "azure": "azure",
    "aws": "aws",
    "gcp": "gcp",
}


def live_source(template_id: str) -> LiveSource | None:
    """The live price source of a template (imported now), or None where there is none."""
    module = LIVE_SOURCES.get(template_id)
    if module is None:
        return None
    loaded = importlib.import_module(f"{__name__}.{module}")
    source: LiveSource = loaded.live_offers
    return source
