"""A contract fake of Paperspace's public API (``https://api.paperspace.com/v1``).

Written from the API reference (docs.digitalocean.com/reference/paperspace/api-reference:
Authentication, Machines, Projects) and docs/providers.md, not from the adapter:

* ``GET /v1/machines`` and ``GET /v1/projects`` — ``Authorization: Bearer KEY``; paged lists
  ``{"hasMore", "items", "nextPage"}`` with the query parameters ``after`` (the cursor from
  ``nextPage``), ``limit`` (1-120; anything else is 400), ``orderBy``, ``order``.
* ``GET /v1/auth/session`` — ``null`` when the key is not accepted (documented: "If a user is
  not logged in, this will be null"), else ``{"team": {...}, "user": {...}}``.
* A bad or missing key on the lists: ``bad_key="401"`` answers 401 ``{"code", "message"}``;
  ``"null_body"`` a 200 whose body is ``null``; ``"empty_body"`` a 200 with no body at all;
  ``"wrong_shape"`` a 200 with an object that is not a page — the forms a body-less "success"
  can take, which docs/providers.md says never to trust.
* Wrong paths 404, wrong methods 405.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .http import FakeServer, Reply, Request, ResettableFake, reply_json

PAGE_SIZE = 20  # the fake's default page size when no limit is given


@dataclass
class PaperspaceFake(ResettableFake):
    key: str = "ps_GOODKEY_0123456789abcdef0123"
    email: str = "lead@example.com"
    team: str = "vnstudio"
    bad_key: str = "401"  # or "null_body", "empty_body", "wrong_shape"
    machines: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "id": "psm1x2y3",
                "name": "comfy-a4000",
                "state": "ready",
                "machineType": "A4000",
                "region": "ny2",
            },
            {
                "id": "psm4z5w6",
                "name": "spare",
                "state": "off",
                "machineType": "A4000",
                "region": "ny2",
            },
        ]
    )
    projects: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"id": "pr1ab2cd3", "name": "comfyvn-importer", "dtCreated": "2025-01-02T03:04:05Z"},
            {"id": "pr9zz8yy7", "name": "scratch", "dtCreated": "2025-02-02T03:04:05Z"},
        ]
    )
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        self.server.route("GET", "/v1/machines")(lambda req: self._list(req, self.machines))
        self.server.route("GET", "/v1/projects")(lambda req: self._list(req, self.projects))
        self.server.route("GET", "/v1/auth/session")(self._session)

    @property
    def api_base(self) -> str:
        return f"{self.server.base}/v1"

    def _rejected(self) -> Reply:
        if self.bad_key == "null_body":
            return 200, {"Content-Type": "application/json"}, "null"
        if self.bad_key == "empty_body":
            return 200, {"Content-Type": "application/json"}, b""
        if self.bad_key == "wrong_shape":
            return reply_json(200, {"message": "ok"})
        return reply_json(401, {"code": "UNAUTHORIZED", "message": "You must be logged in."})

    def _list(self, req: Request, items: list[dict[str, Any]]) -> Reply:
        if req.bearer != self.key:
            return self._rejected()
        try:
            limit = int(req.query.get("limit", [PAGE_SIZE])[0])
            start = int(req.query.get("after", ["0"])[0])
        except ValueError:
            return reply_json(400, {"code": "BAD_REQUEST", "message": "invalid query"})
        if not 1 <= limit <= 120 or start < 0:
            return reply_json(400, {"code": "BAD_REQUEST", "message": "limit must be 1-120"})
        page = items[start : start + limit]
        more = start + limit < len(items)
        return reply_json(
            200, {"hasMore": more, "items": page, "nextPage": str(start + limit) if more else None}
        )

    def _session(self, req: Request) -> Reply:
        if req.bearer != self.key:
            return reply_json(200, None)
        return reply_json(
            200,
            {
                "team": {
                    "analyticsId": 11,
                    "id": "te1x2y3z",
                    "isPrivate": False,
                    "maxMachines": 10,
                    "namespace": self.team,
                },
                "user": {
                    "analyticsId": 22,
                    "dtConfirmed": "2024-01-01T00:00:00Z",
                    "dtCreated": "2024-01-01T00:00:00Z",
                    "email": self.email,
                    "firstName": "Lead",
                    "id": "us9a8b7c",
                    "isPasswordAuthEnabled": True,
                    "isPhoneVerified": False,
                    "isQrCodeBasedMfaConfirmed": False,
                    "isQrCodeBasedMfaEnabled": False,
                },
            },
        )
