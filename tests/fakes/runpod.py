"""A contract fake of RunPod's GraphQL API and serverless endpoint health.

Written from RunPod's documentation and docs/providers.md (what the official client was recorded
sending), not from the adapter:

* ``POST /graphql`` — ``Authorization: Bearer KEY``, ``Content-Type: application/json``, body
  ``{"query": "...", "variables"?: {...}}``. Only the current-user query is served
  (``myself { <fields of User> }``); an unknown field is a GraphQL validation error (HTTP 400
  with ``errors``), a body without a query string is 400, a non-JSON content type is 400, GET
  is 405. A bad or missing key gets HTTP 401 (``bad_key="401"``) or, as RunPod's GraphQL also
  does, HTTP 200 with an ``errors`` array (``bad_key="errors_in_200"``).
* ``GET /v2/{endpoint_id}/health`` — for each endpoint in ``endpoints`` (id -> the health body,
  ``{"jobs": {...}, "workers": {...}}``); the key may come as ``Bearer KEY`` or bare, as RunPod's
  own examples send it; anything else is 401. An endpoint id the account does not have is 404.

``mode`` forces answers for every key: ``"null_myself"`` (200 with ``data.myself`` null) or
``"server_error"`` (200 with a non-auth ``errors`` array).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .http import FakeServer, Reply, Request, ResettableFake, reply_json

#: Fields of RunPod's ``User`` type this fake knows (a subset of the real schema).
USER_FIELDS = ("id", "email", "pubKey", "clientBalance", "currentSpendPerHr", "minBalance")

BAD_KEY_MESSAGE = "Unauthorized request, please check your API key."


def health_body(
    *,
    idle: int = 0,
    running: int = 0,
    initializing: int = 0,
    throttled: int = 0,
    unhealthy: int = 0,
    ready: int | None = None,
    in_queue: int = 0,
    in_progress: int = 0,
    completed: int = 0,
    failed: int = 0,
) -> dict[str, Any]:
    """A ``/health`` answer in the documented shape (plus the worker states live ones carry)."""
    return {
        "jobs": {
            "completed": completed,
            "failed": failed,
            "inProgress": in_progress,
            "inQueue": in_queue,
            "retried": 0,
        },
        "workers": {
            "idle": idle,
            "initializing": initializing,
            "ready": idle if ready is None else ready,
            "running": running,
            "throttled": throttled,
            "unhealthy": unhealthy,
        },
    }


@dataclass
class RunPodFake(ResettableFake):
    key: str = "rpa_GOODKEY_0123456789abcdef"
    user_id: str = "user_2Xk9"
    email: str = "studio@example.com"
    bad_key: str = "401"  # or "errors_in_200"
    mode: str = "normal"  # or "null_myself", "server_error"
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        self.server.route("POST", "/graphql")(self._graphql)
        for endpoint_id, body in self.endpoints.items():
            self.add_endpoint(endpoint_id, body)

    def add_endpoint(self, endpoint_id: str, body: dict[str, Any]) -> None:
        self.endpoints[endpoint_id] = body

        def route(req: Request) -> Reply:
            return self._health(req, endpoint_id)

        self.server.route("GET", f"/v2/{endpoint_id}/health")(route)

    def _after_reset(self) -> None:
        for endpoint_id, body in list(self.endpoints.items()):
            self.add_endpoint(endpoint_id, body)

    @property
    def graphql_url(self) -> str:
        return f"{self.server.base}/graphql"

    def provider(
        self, pid: str, *, key: str | None = None, endpoint: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A RunPod provider entry whose serverless base and GraphQL URL are this fake, with
        ``key`` (default: the one this fake accepts) and ``endpoint`` (a serverless endpoint
        id) in its config; ``fields`` are more entry fields (``template_id``, ``meta`` ...)."""
        config: dict[str, Any] = {
            "api_key": self.key if key is None else key,
            "endpoints": {"graphql": self.graphql_url},
        }
        if endpoint is not None:
            config["endpoint_id"] = endpoint
        return {"id": pid, "base_url": self.serverless_base, "config": config, **fields}

    @property
    def serverless_base(self) -> str:
        return f"{self.server.base}/v2"

    # -- GraphQL ---------------------------------------------------------------------------

    def _graphql(self, req: Request) -> Reply:
        if not req.headers.get("content-type", "").lower().startswith("application/json"):
            return reply_json(400, {"errors": [{"message": "Must provide query string."}]})
        if req.bearer != self.key:
            if self.bad_key == "errors_in_200":
                return reply_json(
                    200,
                    {
                        "errors": [{"message": BAD_KEY_MESSAGE, "path": ["myself"]}],
                        "data": {"myself": None},
                    },
                )
            return reply_json(401, {"errors": [{"message": BAD_KEY_MESSAGE}]})
        try:
            body = json.loads(req.body or b"null")
        except ValueError:
            return reply_json(400, {"errors": [{"message": "POST body sent invalid JSON."}]})
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str) or not query.strip():
            return reply_json(400, {"errors": [{"message": "Must provide query string."}]})
        if self.mode == "server_error":
            return reply_json(
                200,
                {
                    "errors": [
                        {
                            "message": "Something went wrong. Please try again later or "
                            "contact support."
                        }
                    ],
                    "data": None,
                },
            )
        match = re.search(r"\bmyself\s*\{([^{}]*)\}", query)
        if match is None:
            return reply_json(
                400,
                {
                    "errors": [
                        {
                            "message": "this fake serves only the myself query",
                            "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
                        }
                    ]
                },
            )
        wanted = match.group(1).split()
        for name in wanted:
            if name not in USER_FIELDS:
                return reply_json(
                    400,
                    {
                        "errors": [
                            {
                                "message": f'Cannot query field "{name}" on type "User".',
                                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
                            }
                        ]
                    },
                )
        if self.mode == "null_myself":
            return reply_json(200, {"data": {"myself": None}})
        user = {
            "id": self.user_id,
            "email": self.email,
            "pubKey": None,
            "clientBalance": 25.0,
            "currentSpendPerHr": 0.0,
            "minBalance": 0.0,
        }
        return reply_json(200, {"data": {"myself": {n: user[n] for n in wanted}}})

    # -- serverless ------------------------------------------------------------------------

    def _health(self, req: Request, endpoint_id: str) -> Reply:
        auth = req.headers.get("authorization", "")
        if req.bearer != self.key and auth != self.key:
            return 401, {"Content-Type": "text/plain"}, "Unauthorized"
        if endpoint_id not in self.endpoints:  # registered for an earlier test, gone now
            return reply_json(404, {"error": "no such route"})
        return reply_json(200, self.endpoints[endpoint_id])
