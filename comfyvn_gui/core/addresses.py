"""Addresses a credential may be sent to: the one rule for "never in clear over the network".

A provider's API key, token or secret travels only over https://, or over plain http:// to this
machine itself (a local test server, an SSH tunnel's end). The rule is applied when an address is
entered (``core/provider_rules.py``) and again just before a request carries a credential
(``providers/http_client.py``), so a hand-edited ``providers.json`` cannot slip past it.

Pure: no name is resolved (``localhost`` and ``*.localhost`` are loopback by definition, RFC 6761).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["MAX_URL_CHARS", "in_clear", "is_loopback_host"]

#: The longest URL accepted for an address or an endpoint override (names are capped at 200).
MAX_URL_CHARS = 2048


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal, brackets allowed) is this machine."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name in ("localhost", "localhost.localdomain") or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def in_clear(url: str) -> bool:
    """Whether a request to ``url`` would cross the network unencrypted (http:// to a host that
    is not this machine)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False  # not a URL at all: the URL rule says so
    return parts.scheme.lower() == "http" and not is_loopback_host(host)
