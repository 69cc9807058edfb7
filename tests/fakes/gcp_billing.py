"""A contract fake of the Cloud Billing Catalog API's SKU list, on a local HTTP server.

Written from Google's documentation, not from the adapter:

* ``GET /v1/services/{service}/skus`` (``services.skus.list``,
  https://cloud.google.com/billing/docs/reference/rest/v1/services.skus/list; how-to:
  https://cloud.google.com/billing/v1/how-tos/catalog-api) with ``currencyCode``, ``pageSize``
  (at most 5000 per page) and ``pageToken``; the answer is ``{"skus": [...],
  "nextPageToken": ...}``, the token left out once every SKU was listed. An unknown page token
  is 400 ``INVALID_ARGUMENT``; an unknown service 404 ``NOT_FOUND``.
* A SKU (the ``Sku`` resource): ``name`` (``services/<id>/skus/<skuId>``), ``skuId``,
  ``description``, ``category`` (``serviceDisplayName``, ``resourceFamily``,
  ``resourceGroup``, ``usageType``), ``serviceRegions``, ``pricingInfo`` (``effectiveTime``,
  ``summary``, ``pricingExpression`` (``usageUnit`` such as ``h`` or ``GiBy.h``,
  ``usageUnitDescription``, ``baseUnit`` ``s`` / ``By.s``, ``baseUnitConversionFactor``,
  ``displayQuantity``, ``tieredRates[]`` of ``startUsageAmount`` and ``unitPrice``
  (``Money``: ``currencyCode``, ``units`` as a string, ``nanos``)), ``aggregationInfo``,
  ``currencyConversionRate``), ``serviceProviderName``, ``geoTaxonomy``. Descriptions are
  Compute Engine's ("Nvidia L4 GPU running in Americas", "Nvidia L4 GPU attached to Spot
  Preemptible VMs running in Americas", "G2 Instance Core running in Americas", "Spot
  Preemptible G2 Instance Ram running in Americas" ...).
* Authorisation: a bearer token issued by the Google token endpoint of
  :class:`tests.fakes.gcp.GcpFake` (:meth:`BillingCatalogFake.trust`), which verified the
  service account's signed grant; anything else is 401 ``UNAUTHENTICATED``. With
  ``api_enabled`` false every request is 403 ``PERMISSION_DENIED`` with the
  ``SERVICE_DISABLED`` ``ErrorInfo`` for ``cloudbilling.googleapis.com``.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from .gcp import google_error
from .http import FakeServer, Reply, Request, ResettableFake, reply_json

COMPUTE_ENGINE = "6F81-5844-456A"
MAX_PAGE_SIZE = 5000
AMERICAS = ["us-central1", "us-east1", "us-east4", "us-west1", "us-west4"]

_SKUS_PATH = re.compile(r"/v1/services/(?P<service>[^/]+)/skus")


def money(usd: float) -> dict[str, Any]:
    units = math.floor(usd)
    return {"currencyCode": "USD", "units": str(units), "nanos": round((usd - units) * 1e9)}


def sku(
    description: str,
    usd: float,
    *,
    regions: list[str],
    group: str,
    usage: str = "OnDemand",
    unit: str = "h",
) -> dict[str, Any]:
    """A Compute Engine SKU priced ``usd`` per ``unit`` (``h``, ``GiBy.h``)."""
    sku_id = "-".join(secrets.token_hex(2).upper() for _ in range(3))
    per_gib = unit == "GiBy.h"
    return {
        "name": f"services/{COMPUTE_ENGINE}/skus/{sku_id}",
        "skuId": sku_id,
        "description": description,
        "category": {
            "serviceDisplayName": "Compute Engine",
            "resourceFamily": "Compute",
            "resourceGroup": group,
            "usageType": usage,
        },
        "serviceRegions": list(regions),
        "pricingInfo": [
            {
                "effectiveTime": "2026-01-01T00:00:00Z",
                "summary": "",
                "pricingExpression": {
                    "usageUnit": unit,
                    "displayQuantity": 1,
                    "tieredRates": [{"startUsageAmount": 0, "unitPrice": money(usd * 0.9)}],
                    "usageUnitDescription": "gibibyte hour" if per_gib else "hour",
                    "baseUnit": "By.s" if per_gib else "s",
                    "baseUnitDescription": "byte second" if per_gib else "second",
                    "baseUnitConversionFactor": 3865470566400 if per_gib else 3600,
                },
                "currencyConversionRate": 1,
            },
            {  # the timeline's last entry is the current price
                "effectiveTime": "2026-03-01T00:00:00Z",
                "summary": "",
                "pricingExpression": {
                    "usageUnit": unit,
                    "displayQuantity": 1,
                    "tieredRates": [{"startUsageAmount": 0, "unitPrice": money(usd)}],
                    "usageUnitDescription": "gibibyte hour" if per_gib else "hour",
                    "baseUnit": "By.s" if per_gib else "s",
                    "baseUnitDescription": "byte second" if per_gib else "second",
                    "baseUnitConversionFactor": 3865470566400 if per_gib else 3600,
                },
                "aggregationInfo": {
                    "aggregationLevel": "ACCOUNT",
                    "aggregationInterval": "DAILY",
                    "aggregationCount": 1,
                },
                "currencyConversionRate": 1,
            },
        ],
        "serviceProviderName": "Google",
        "geoTaxonomy": {
            "type": "MULTI_REGIONAL" if len(regions) > 1 else "REGIONAL",
            "regions": list(regions),
        },
    }


def default_skus() -> list[dict[str, Any]]:
    """GPU, G2 and A2 SKUs in the Americas and europe-west4, with noise a reader must skip."""
    eu = ["europe-west4"]
    return [
        sku("Nvidia L4 GPU running in Americas", 0.56, regions=AMERICAS, group="GPU"),
        sku(
            "Nvidia L4 GPU attached to Spot Preemptible VMs running in Americas",
            0.224,
            regions=AMERICAS,
            group="GPU",
            usage="Preemptible",
        ),
        sku("Nvidia L4 GPU running in Netherlands", 0.6165, regions=eu, group="GPU"),
        sku(
            "Commitment v1: Nvidia L4 GPU in Americas for 1 Year",
            0.3528,
            regions=AMERICAS,
            group="GPU",
            usage="Commit1Yr",
        ),
        sku(
            "Nvidia L4 GPU attached to DWS Defined Duration VMs running in Americas",
            0.31,
            regions=AMERICAS,
            group="GPU",
        ),
        sku("Nvidia Tesla A100 GPU running in Americas", 2.933908, regions=AMERICAS, group="GPU"),
        sku(
            "Nvidia Tesla A100 80GB GPU running in Americas",
            3.92,
            regions=AMERICAS,
            group="GPU",
        ),
        sku("G2 Instance Core running in Americas", 0.024988, regions=AMERICAS, group="CPU"),
        sku(
            "G2 Instance Ram running in Americas",
            0.002927,
            regions=AMERICAS,
            group="RAM",
            unit="GiBy.h",
        ),
        sku(
            "Spot Preemptible G2 Instance Core running in Americas",
            0.009995,
            regions=AMERICAS,
            group="CPU",
            usage="Preemptible",
        ),
        sku(
            "Spot Preemptible G2 Instance Ram running in Americas",
            0.001171,
            regions=AMERICAS,
            group="RAM",
            usage="Preemptible",
            unit="GiBy.h",
        ),
        sku("A2 Instance Core running in Americas", 0.031611, regions=AMERICAS, group="CPU"),
        sku(
            "A2 Instance Ram running in Americas",
            0.004237,
            regions=AMERICAS,
            group="RAM",
            unit="GiBy.h",
        ),
        sku(
            "N1 Predefined Instance Core running in Americas",
            0.031611,
            regions=AMERICAS,
            group="N1Standard",
        ),
        sku("E2 Instance Core running in Americas", 0.021811, regions=AMERICAS, group="CPU"),
    ]


@dataclass
class BillingCatalogFake(ResettableFake):
    """``skus``: Compute Engine's SKUs in list order; ``page_size``: the most a page holds
    (the API's own cap is 5000)."""

    skus: list[dict[str, Any]] = field(default_factory=default_skus)
    page_size: int = MAX_PAGE_SIZE
    api_enabled: bool = True
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        self._issuer: Any = None  # the GcpFake whose tokens are accepted
        self._pages: dict[str, int] = {}  # pageToken -> index of the next SKU
        self.server.default = self._handle

    def trust(self, issuer: Any) -> None:
        """Accept the access tokens ``issuer`` (a :class:`tests.fakes.gcp.GcpFake`) issued."""
        self._issuer = issuer

    def _after_reset(self) -> None:
        self._pages.clear()

    @property
    def base(self) -> str:
        return self.server.base

    def _handle(self, req: Request) -> Reply:
        found = _SKUS_PATH.fullmatch(req.path)
        if found is None:
            return reply_json(404, {"error": {"code": 404, "message": "Not Found"}})
        if req.method != "GET":
            return google_error(405, "Method not allowed", "INVALID_ARGUMENT")
        tokens = getattr(self._issuer, "tokens", {})
        if not req.bearer or req.bearer not in tokens:
            return google_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
                "UNAUTHENTICATED",
                reason="authError",
            )
        if not self.api_enabled:
            return google_error(
                403,
                "Cloud Billing API has not been used in project 418830125517 before or it is "
                "disabled.",
                "PERMISSION_DENIED",
                reason="accessNotConfigured",
                domain="usageLimits",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "SERVICE_DISABLED",
                        "domain": "googleapis.com",
                        "metadata": {
                            "service": "cloudbilling.googleapis.com",
                            "consumer": "projects/418830125517",
                        },
                    }
                ],
            )
        if found["service"] != COMPUTE_ENGINE:
            return google_error(404, "Service not found.", "NOT_FOUND")
        if req.query.get("currencyCode", ["USD"]) != ["USD"]:
            return google_error(400, "Only USD in this fake.", "INVALID_ARGUMENT")
        try:
            size = int(req.query.get("pageSize", [str(MAX_PAGE_SIZE)])[0])
        except ValueError:
            return google_error(400, "Invalid value at 'page_size'", "INVALID_ARGUMENT")
        size = max(1, min(size or MAX_PAGE_SIZE, MAX_PAGE_SIZE, self.page_size))
        token = req.query.get("pageToken", [""])[0]
        start = 0
        if token:
            if token not in self._pages:
                return google_error(400, "Invalid page token.", "INVALID_ARGUMENT")
            start = self._pages.pop(token)
        page = self.skus[start : start + size]
        answer: dict[str, Any] = {"skus": page}
        if start + size < len(self.skus):
            next_token = secrets.token_urlsafe(16)
            self._pages[next_token] = start + size
            answer["nextPageToken"] = next_token
        return reply_json(200, answer)
