"""How a provider's ComfyUI is reached: its address, TLS settings and the bearer token, and
the one rule for where that token may go (shared by the LAN and custom adapters, their checks
and dispatch, :mod:`.comfyui_target`).

The token is sent only over an encrypted (``https://``) or loopback connection, and — where the
token belongs to another server (a LAN node's Docker API) — only to that server's own host.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from comfyvn_gui.core.addresses import is_loopback_host

__all__ = ["ComfyUIAccess", "access_for", "display_url"]


@dataclass(frozen=True)
class ComfyUIAccess:
    """How a ComfyUI is reached: its address, TLS (a CA bundle for its certificate, a client
    certificate) and the bearer token headers, when the token may be sent there."""

    url: str
    tls: bool
    send_token: bool
    headers: dict[str, str]
    verify: str | None
    cert: tuple[str, str] | str | None


def access_for(
    url: str,
    *,
    token: str | None,
    ca: str | None,
    cert: tuple[str, str] | str | None = None,
    token_host: str | None = None,
) -> ComfyUIAccess:
    """The access to the ComfyUI at ``url``: the token goes only over https:// or to loopback,
    and, with ``token_host``, only to that host; the CA and client certificate only with TLS."""
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    same_host = token_host is None or hostname.lower() == token_host.lower()
    unencrypted = parts.scheme != "https" and not is_loopback_host(hostname)
    send_token = bool(token) and same_host and not unencrypted
    tls = parts.scheme == "https"
    return ComfyUIAccess(
        url=url,
        tls=tls,
        send_token=send_token,
        headers={"Authorization": f"Bearer {token}"} if send_token else {},
        verify=ca if tls else None,
        cert=cert if tls else None,
    )


def display_url(url: str) -> str:
    """scheme://host[:port][/path] — never a user:password@ part or a query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
