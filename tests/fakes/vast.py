"""A contract fake of Vast.ai's REST API (``/api/v0``): the current user and the instance list.

Written from docs.vast.ai (API reference "show user", "show instances") and docs/providers.md (what
the official client was recorded sending), not from the adapter:

* ``GET /api/v0/users/current`` — with or without the trailing slash (the docs write one, the
  client sends none). ``Authorization: Bearer KEY``; anything else (including the legacy
  ``?api_key=`` parameter alone) is 401. The answer carries ``id``, ``email``, ``username``,
  ``credit``, ``balance`` ... and, like the real API, the account's ``api_key`` itself.
* ``GET /api/v0/instances/`` (either spelling) — ``{"instances": [...]}``.
* Wrong paths 404, wrong methods 405. ``rate_limit_first=N`` answers the first N requests 429
  (with ``Retry-After`` when ``retry_after`` is set). Replies are ``application/json`` exactly,
  as the official client insists on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .http import FakeServer, Reply, Request, ResettableFake, reply_json


@dataclass
class VastFake(ResettableFake):
    key: str = "vast_GOODKEY_0123456789abcdef0123"
    user_id: int = 40217
    email: str = "cg-team@example.com"
    username: str = "cgteam"
    credit: float = 12.5
    balance: float = 0.0
    instances: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"id": 901, "actual_status": "running", "gpu_name": "RTX 4090", "dph_total": 0.41},
            {"id": 902, "actual_status": "exited", "gpu_name": "RTX 3090", "dph_total": 0.22},
        ]
    )
    rate_limit_first: int = 0
    retry_after: str | None = None
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        for path in ("/api/v0/users/current", "/api/v0/users/current/"):
            self.server.route("GET", path)(self._guard(self._user))
        for path in ("/api/v0/instances", "/api/v0/instances/"):
            self.server.route("GET", path)(self._guard(self._instances))

    @property
    def api_base(self) -> str:
        return f"{self.server.base}/api/v0"

    def _guard(self, route: Any) -> Any:
        def wrapped(req: Request) -> Reply:
            self._seen += 1
            if self._seen <= self.rate_limit_first:
                headers = {"Retry-After": self.retry_after} if self.retry_after else {}
                return reply_json(429, {"detail": "API requests too frequent"}, headers)
            if req.bearer != self.key:
                return reply_json(
                    401, {"success": False, "error": "invalid_user", "msg": "Invalid user key"}
                )
            reply: Reply = route(req)
            return reply

        return wrapped

    def _user(self, req: Request) -> Reply:
        return reply_json(
            200,
            {
                "id": self.user_id,
                "key_id": 7731,
                "email": self.email,
                "username": self.username,
                "fullname": "CG Team",
                "credit": self.credit,
                "balance": self.balance,
                "can_pay": self.credit > 0,
                "api_key": self.key,  # the real API echoes it; a client must never show it
                "ssh_key": "ssh-ed25519 AAAAC3Nza... cg@studio",
                "sid": "s-77",
            },
        )

    def _instances(self, req: Request) -> Reply:
        return reply_json(200, {"instances": self.instances})
