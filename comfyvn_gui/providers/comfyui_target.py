"""The ComfyUI server of a provider that has one, opened for dispatch (docs/architecture.md,
"Dispatch: where the ComfyUI server is").

* ``local``: its ``comfyui`` endpoint (default ``http://127.0.0.1:8188``);
* ``lan``: its ``comfyui`` endpoint, under the rules its validator applies
  (:func:`.lan.comfyui_access`: the node's CA and client certificate for https, the bearer
  token only to the Docker API's own host over an encrypted or loopback connection);
* ``ssh``, ``custom`` and the machines the app rents come with the rest of dispatch.

The connection is made from a :class:`~.base.CheckContext` (the provider, its secrets, the
network settings), so the proxy, trust store and certificate rules are the checks' own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from .base import CheckContext, CheckFailure
from .comfyui import ComfyUIClient, ComfyUIError
from .lan import comfyui_access

__all__ = ["DISPATCH_KINDS", "open_comfyui"]

#: The provider kinds whose ComfyUI the app can reach today.
DISPATCH_KINDS: tuple[str, ...] = ("local", "lan")


@contextlib.asynccontextmanager
async def open_comfyui(ctx: CheckContext) -> AsyncIterator[ComfyUIClient]:
    """A :class:`ComfyUIClient` for the provider's ComfyUI, closed on exit; a
    :class:`ComfyUIError` (``unreachable`` for wrong settings, naming them) otherwise."""
    kind = ctx.profile.kind
    if kind not in DISPATCH_KINDS:
        raise ComfyUIError(
            "unreachable",
            f"{ctx.name}: running jobs on {kind} providers is not built yet (local and LAN "
            "ComfyUI are)",
        )
    try:
        if kind == "local":
            url = ctx.endpoint("comfyui")
            verify: str | None = None
            cert: tuple[str, str] | str | None = None
            headers: dict[str, str] = {}
        else:
            access = comfyui_access(ctx)
            if access is None:
                raise ComfyUIError(
                    "unreachable",
                    f"{ctx.name} ({ctx.provider.id}) has no ComfyUI address: set its "
                    "endpoints.comfyui (e.g. https://unraid.local:8188)",
                )
            url, verify, cert, headers = access.url, access.verify, access.cert, access.headers
        if not url:
            raise ComfyUIError("unreachable", f"{ctx.name}: no ComfyUI address is set")
        async with ctx.http(verify=verify, cert=cert, verify_field="ca_bundle") as http:
            yield ComfyUIClient(
                url,
                http.raw,
                ssl_context=http.ssl_context if url.startswith("https:") else None,
                headers=headers,
            )
    except CheckFailure as failure:
        raise ComfyUIError("unreachable", failure.message) from None
