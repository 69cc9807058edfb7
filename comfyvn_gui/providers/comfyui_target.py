"""The ComfyUI server of a provider that has one, opened for dispatch (docs/architecture.md,
"Dispatch: where the ComfyUI server is").

* ``local``: its ``comfyui`` endpoint (default ``http://127.0.0.1:8188``);
* ``lan``: its ``comfyui`` endpoint, under the rules its validator applies
  (:func:`.lan.comfyui_access`: the node's CA and client certificate for https, the bearer
  token only to the Docker API's own host over an encrypted or loopback connection);
* ``ssh``: the ComfyUI listening on the SSH host's loopback, port ``comfyui_port`` (default
  8188), through a tunnel with the pinned host key (:func:`.ssh_tunnel.open_tunnel`); the
  tunnel's local end is ``127.0.0.1`` on a free port, spoken to without any proxy;
* ``custom``: its ``endpoint`` (or ``endpoints.comfyui``), under its validator's rules
  (:func:`.custom.comfyui_access`: TLS with ``ca_bundle``; the ``api_token`` only over
  https:// or to this computer, else refused before anything is sent);
* the machines the app rents come with the rest of dispatch.

The connection is made from a :class:`~.base.CheckContext` (the provider, its secrets, the
network settings), so the proxy, trust store and certificate rules are the checks' own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from .base import CheckContext, CheckFailure
from .comfyui import ComfyUIClient, ComfyUIError
from .custom import comfyui_access as custom_access
from .lan import comfyui_access
from .ssh_tunnel import open_tunnel, tunnel_error

__all__ = ["DISPATCH_KINDS", "comfyui_port", "open_comfyui"]

#: The provider kinds whose ComfyUI the app can reach today.
DISPATCH_KINDS: tuple[str, ...] = ("local", "lan", "ssh", "custom")


@contextlib.asynccontextmanager
async def open_comfyui(ctx: CheckContext) -> AsyncIterator[ComfyUIClient]:
    """A :class:`ComfyUIClient` for the provider's ComfyUI, closed on exit; a
    :class:`ComfyUIError` (``unreachable`` for wrong settings, naming them; for ``ssh`` also
    ``untrusted_host`` and ``host_key_mismatch``) otherwise."""
    kind = ctx.profile.kind
    if kind not in DISPATCH_KINDS:
        raise ComfyUIError(
            "unreachable",
            f"{ctx.name}: running jobs on {kind} providers is not built yet (local, LAN, SSH "
            "and custom ComfyUI endpoints are)",
        )
    if kind == "ssh":
        async with _through_ssh(ctx) as client:
            yield client
        return
    try:
        if kind == "local":
            url = ctx.endpoint("comfyui")
            verify: str | None = None
            cert: tuple[str, str] | str | None = None
            headers: dict[str, str] = {}
        else:
            access = custom_access(ctx) if kind == "custom" else comfyui_access(ctx)
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


def comfyui_port(ctx: CheckContext) -> int:
    """The ``comfyui_port`` option of an ``ssh`` provider (the catalog's default: 8188)."""
    text = (ctx.setting("comfyui_port") or "8188").strip()
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise tunnel_error(
            "unreachable",
            f"{ctx.name}: the provider option comfyui_port is {text!r}, not a port number; set "
            "it to the port ComfyUI listens on on the SSH host (default 8188)",
        )
    return int(text)


@contextlib.asynccontextmanager
async def _through_ssh(ctx: CheckContext) -> AsyncIterator[ComfyUIClient]:
    """The host's loopback ComfyUI through the tunnel. httpx ignores the proxy settings here:
    the tunnel's end is this computer's loopback, which no proxy should see."""
    import httpx

    from .http_client import USER_AGENT

    async with (
        open_tunnel(ctx, comfyui_port(ctx)) as url,
        httpx.AsyncClient(
            trust_env=False, follow_redirects=False, headers={"User-Agent": USER_AGENT}
        ) as http,
    ):
        yield ComfyUIClient(url, http)
