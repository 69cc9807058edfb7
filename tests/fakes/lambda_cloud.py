"""A contract fake of Lambda Cloud's REST API (``/api/v1``): the instance-type listing.

Written from Lambda's Cloud API reference (OpenAPI 1.10: responses are ``{"data": ...}``,
errors ``{"error": {"code", "message", "suggestion"}}``) and docs/providers.md, not from the
adapter:

* ``GET /api/v1/instance-types`` — ``Authorization: Bearer KEY`` (or HTTP Basic with the key as
  the user name, which Lambda also accepts); anything else is 401 ``global/invalid-api-key``.
  ``{"data": {"<type>": {"instance_type": {"name", "description", "gpu_description",
  "price_cents_per_hour", "specs": {"vcpus", "memory_gib", "storage_gib", "gpus"}},
  "regions_with_capacity_available": [{"name", "description"}]}}}``.
* ``capacity`` sets, per type, the regions with capacity now (types in ``TYPES``).
* Wrong paths 404, wrong methods 405. ``rate_limit_first=N`` answers the first N requests 429
  ``global/too-many-requests`` (Lambda allows about one request a second), with
  ``Retry-After`` when ``retry_after`` is set.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from .http import FakeServer, Reply, Request, ResettableFake, reply_json

REGION_NAMES = {
    "us-east-1": "Virginia, USA",
    "us-west-1": "California, USA",
    "us-south-1": "Texas, USA",
    "us-midwest-1": "Illinois, USA",
    "europe-central-1": "Germany",
    "asia-northeast-1": "Tokyo, Japan",
    "me-west-1": "Israel",
}

#: type -> (description, gpu description, price in cents/hour, gpus, vcpus, memory GiB)
TYPES: dict[str, tuple[str, str, int, int, int, int]] = {
    "gpu_1x_a10": ("1x A10 (24 GB PCIe)", "A10 (24 GB PCIe)", 75, 1, 30, 200),
    "gpu_1x_a100": ("1x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 129, 1, 30, 200),
    "gpu_1x_h100_pcie": ("1x H100 (80 GB PCIe)", "H100 (80 GB PCIe)", 249, 1, 26, 200),
    "gpu_8x_a100_80gb_sxm4": ("8x A100 (80 GB SXM4)", "A100 (80 GB SXM4)", 1432, 8, 240, 1800),
}

UNAUTHORIZED = {
    "error": {
        "code": "global/invalid-api-key",
        "message": "API key was invalid, expired, or deleted.",
        "suggestion": "Check your API key or create a new one, then try again.",
    }
}


@dataclass
class LambdaFake(ResettableFake):
    key: str = "secret_GOODKEY_0123456789abcdef.0123"
    capacity: dict[str, list[str]] = field(
        default_factory=lambda: {
            "gpu_1x_a10": ["us-east-1", "us-west-1"],
            "gpu_1x_a100": ["us-east-1"],
            "gpu_1x_h100_pcie": [],
            "gpu_8x_a100_80gb_sxm4": [],
        }
    )
    rate_limit_first: int = 0
    retry_after: str | None = None
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        self.server.route("GET", "/api/v1/instance-types")(self._instance_types)

    @property
    def api_base(self) -> str:
        return f"{self.server.base}/api/v1"

    def _authorized(self, req: Request) -> bool:
        if req.bearer == self.key:
            return True
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except ValueError:
                return False
            return user == self.key
        return False

    def _instance_types(self, req: Request) -> Reply:
        self._seen += 1
        if self._seen <= self.rate_limit_first:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return reply_json(
                429,
                {
                    "error": {
                        "code": "global/too-many-requests",
                        "message": "Too many requests; slow down.",
                    }
                },
                headers,
            )
        if not self._authorized(req):
            return reply_json(401, UNAUTHORIZED)
        data: dict[str, Any] = {}
        for name, regions in self.capacity.items():
            desc, gpu, cents, gpus, vcpus, mem = TYPES[name]
            data[name] = {
                "instance_type": {
                    "name": name,
                    "description": desc,
                    "gpu_description": gpu,
                    "price_cents_per_hour": cents,
                    "specs": {"vcpus": vcpus, "memory_gib": mem, "storage_gib": 512, "gpus": gpus},
                },
                "regions_with_capacity_available": [
                    {"name": r, "description": REGION_NAMES[r]} for r in regions
                ],
            }
        return reply_json(200, {"data": data})
