"""Pinned SSH host keys (trust on first use, done right), in ``config/known_hosts.json``.

The first check of an SSH provider returns ``untrusted_host`` with the server key's
fingerprint; the user compares it with the one their administrator gave them and pins it
(`comfyvn-gui providers trust-host ID --fingerprint SHA256:...`). From then on a different key
is ``host_key_mismatch`` and is never accepted silently. Fingerprints are public: no secret here.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel

from .errors import InputError

FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")


class PinnedKey(BaseModel):
    host: str  # host:port as connected to
    fingerprint: str  # "SHA256:<base64>" as OpenSSH prints it
    key_type: str | None = None
    pinned_at: datetime


def check_fingerprint(value: str) -> str:
    value = value.strip()
    if not FINGERPRINT_RE.match(value):
        raise InputError(
            f"{value[:60]!r} is not an SSH key fingerprint; it looks like SHA256: followed by 43 "
            "characters (as `ssh-keygen -lf` prints it, and as the untrusted_host result shows)",
            fields=["fingerprint"],
        )
    return value.rstrip("=")
