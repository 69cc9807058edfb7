"""Contract fakes of two price APIs no other fake serves, and a transport that sends a real
host name to a fake.

:class:`AzurePricesFake` — the public Azure Retail Prices API, written from its documentation
(https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices:
the endpoint, ``api-version`` 2023-01-01-preview, ``meterRegion='primary'``, the ``$filter``
fields, the response and item fields, "API response pagination") and Microsoft's Q&A on its
paging (https://learn.microsoft.com/en-us/answers/questions/1188465/, ``NextPageLink`` is the
same query with ``$skip``), not from the source module:

* ``GET /api/retail/prices`` — no authentication. ``$filter`` is OData: ``field eq 'value'``
  terms joined by ``and`` / ``or`` with parentheses, over the documented filter fields
  (``armRegionName``, ``location``, ``meterId``, ``meterName``, ``productId``, ``skuId``,
  ``productName``, ``skuName``, ``serviceName``, ``serviceId``, ``serviceFamily``,
  ``priceType`` (the item's ``type``), ``armSkuName``); values are case-sensitive (since
  2023-01-01-preview). Anything else in a filter is 400 ``{"Error": {"Code": "BadRequest",
  "Message"}}``. ``meterRegion='primary'`` keeps primary meters only. Answers
  ``{"BillingCurrency": "USD", "CustomerEntityId": "Default", "CustomerEntityType":
  "Retail", "Items": [...], "NextPageLink": <url or null>, "Count": <items on this page>}``,
  ``page_size`` items a page; ``NextPageLink`` is ``https://<Host>/api/retail/prices?<the same
  query>&$skip=<n>``.
* ``status`` answers every request with that status (a 503 outage), ``delay_s`` waits first.

:class:`RunPodPricesFake` — RunPod's GraphQL ``gpuTypes`` query, written from RunPod's GraphQL
schema (https://graphql-spec.runpod.io, type ``GpuType``) and runpod-python
(``runpod/api/queries/gpus.py``): ``POST /graphql`` with ``Authorization: Bearer KEY``; a bad
key gets HTTP 200 with ``{"errors": [{"message": "Unauthorized request, please check your API
key."}], "data": null}`` as RunPod answers; a field ``GpuType`` does not have is 400
``GRAPHQL_VALIDATION_FAILED``. The query is read with the pods fake's GraphQL reader
(tests/fakes/runpod_pods.py).

:class:`HostRoutes` — an httpx transport (``CheckContext.transport``) that sends requests for
a host name (``prices.azure.com``) to a fake's base URL, keeping the ``Host`` header, so a
test proves the module asks the real address.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from .http import FakeServer, Reply, Request, ResettableFake, reply_json
from .runpod_pods import BAD_KEY_MESSAGE, Field, GraphQLError, parse

# --------------------------------------------------------------------------------------------
# Azure Retail Prices
# --------------------------------------------------------------------------------------------

#: The documented ``$filter`` fields -> the item field each matches.
FILTER_FIELDS = {
    "armRegionName": "armRegionName",
    "location": "location",
    "meterId": "meterId",
    "meterName": "meterName",
    "productId": "productId",
    "skuId": "skuId",
    "productName": "productName",
    "skuName": "skuName",
    "serviceName": "serviceName",
    "serviceId": "serviceId",
    "serviceFamily": "serviceFamily",
    "priceType": "type",
    "armSkuName": "armSkuName",
}
LOCATIONS = {
    "eastus": "US East",
    "westus2": "US West 2",
    "westeurope": "EU West",
    "northeurope": "EU North",
    "uksouth": "UK South",
    "japaneast": "JA East",
}


def vm_price(
    sku: str,
    region: str,
    price: float,
    *,
    kind: str = "",
    windows: bool = False,
    primary: bool = True,
    price_type: str = "Consumption",
    unit: str = "1 Hour",
) -> dict[str, Any]:
    """One Virtual Machines meter as the API lists it; ``kind`` "Spot" or "Low Priority"."""
    short = sku.removeprefix("Standard_").replace("_", " ")
    suffix = f" {kind}" if kind else ""
    series = short.split(" ")[0]
    product = f"Virtual Machines {series} Series" + (" Windows" if windows else "")
    return {
        "currencyCode": "USD",
        "tierMinimumUnits": 0.0,
        "retailPrice": price,
        "unitPrice": price,
        "armRegionName": region,
        "location": LOCATIONS.get(region, region),
        "effectiveStartDate": "2024-05-01T00:00:00Z",
        "meterId": f"meter-{sku}-{region}-{kind or 'std'}-{'w' if windows else 'l'}",
        "meterName": f"{short}{suffix}",
        "productId": f"DZH318Z0{series.upper()[:4]}",
        "skuId": f"DZH318Z0{series.upper()[:4]}/{kind or 'std'}",
        "availabilityId": None,
        "productName": product,
        "skuName": f"{short}{suffix}",
        "serviceName": "Virtual Machines",
        "serviceId": "DZH313Z7MMC8",
        "serviceFamily": "Compute",
        "unitOfMeasure": unit,
        "type": price_type,
        "isPrimaryMeterRegion": primary,
        "armSkuName": sku,
    }


def default_meters() -> list[dict[str, Any]]:
    """A T4 size and an A100 size in two regions, with their Spot, Low Priority, Windows,
    reservation and non-primary meters, and filler meters of other sizes and services."""
    meters = [
        vm_price("Standard_NC4as_T4_v3", "westeurope", 0.58),
        vm_price("Standard_NC4as_T4_v3", "westeurope", 0.1153, kind="Spot"),
        vm_price("Standard_NC4as_T4_v3", "westeurope", 0.1153, kind="Low Priority"),
        vm_price("Standard_NC4as_T4_v3", "westeurope", 0.767, windows=True),
        vm_price("Standard_NC4as_T4_v3", "westeurope", 2850.0, price_type="Reservation"),
        vm_price("Standard_NC4as_T4_v3", "westeurope", 0.59, primary=False),
        vm_price("Standard_NC4as_T4_v3", "eastus", 0.526),
        vm_price("Standard_NC4as_T4_v3", "eastus", 0.0526, kind="Spot"),
        vm_price("Standard_NC24ads_A100_v4", "eastus", 3.673),
        vm_price("Standard_NC24ads_A100_v4", "eastus", 4.51, windows=True),
        vm_price("Standard_NC24ads_A100_v4", "westeurope", 4.041),
        vm_price("Standard_NC24ads_A100_v4", "japaneast", 4.2),
    ]
    for i in range(1, 140):  # other sizes in the same regions: pages of them
        meters.append(vm_price(f"Standard_D{i}s_v5", "westeurope", round(0.05 * i, 4)))
    for i in range(1, 30):
        item = vm_price(f"Standard_NC4as_T4_v3_x{i}", "westeurope", 0.1)
        item["serviceName"] = "Virtual Machines Licenses"
        meters.append(item)
    return meters


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[()])|(?P<word>[A-Za-z_]\w*))")


class _FilterError(Exception):
    pass


def _lex(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _FilterError(f"Invalid filter near position {pos}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        tokens.append((kind, value[1:-1].replace("''", "'") if kind == "str" else value))
        pos = m.end()
    return tokens


class _Filter:
    """``expr := term (('and'|'or') term)*`` with ``and`` binding tighter;
    ``term := '(' expr ')' | field 'eq' 'string'``."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.i = 0
        self.tree = self._or()
        if self.i != len(self.tokens):
            raise _FilterError("Invalid filter: unexpected text after the expression")

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        tok = self._peek()
        if tok is None:
            raise _FilterError("Invalid filter: it ends too soon")
        self.i += 1
        return tok

    def _or(self) -> Any:
        parts = [self._and()]
        while self._peek() == ("word", "or"):
            self.i += 1
            parts.append(self._and())
        return ("or", parts)

    def _and(self) -> Any:
        parts = [self._term()]
        while self._peek() == ("word", "and"):
            self.i += 1
            parts.append(self._term())
        return ("and", parts)

    def _term(self) -> Any:
        tok = self._take()
        if tok == ("punct", "("):
            inner = self._or()
            if self._take() != ("punct", ")"):
                raise _FilterError("Invalid filter: a '(' is not closed")
            return inner
        kind, name = tok
        if kind != "word" or name not in FILTER_FIELDS:
            raise _FilterError(f"Invalid filter: {name!r} is not a field that can be filtered")
        if self._take() != ("word", "eq"):
            raise _FilterError("Invalid filter: only 'eq' is supported here")
        kind, value = self._take()
        if kind != "str":
            raise _FilterError("Invalid filter: a value must be quoted")
        return ("eq", FILTER_FIELDS[name], value)

    def matches(self, item: dict[str, Any], node: Any = None) -> bool:
        node = self.tree if node is None else node
        if node[0] == "eq":
            return bool(item.get(node[1]) == node[2])
        results = (self.matches(item, n) for n in node[1])
        return all(results) if node[0] == "and" else any(results)


@dataclass
class AzurePricesFake(ResettableFake):
    meters: list[dict[str, Any]] = field(default_factory=default_meters)
    page_size: int = 100
    status: int | None = None
    delay_s: float = 0.0
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        self.server.route("GET", "/api/retail/prices")(self._prices)

    def _prices(self, req: Request) -> Reply:
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.status is not None:
            return reply_json(self.status, {"Error": {"Code": "Unavailable", "Message": "busy"}})
        query = {k: v[-1] for k, v in req.query.items()}
        items = list(self.meters)
        text = query.get("$filter")
        if text:
            try:
                flt = _Filter(text)
            except _FilterError as exc:
                return reply_json(400, {"Error": {"Code": "BadRequest", "Message": str(exc)}})
            items = [i for i in items if flt.matches(i)]
        if query.get("meterRegion") == "'primary'":
            items = [i for i in items if i.get("isPrimaryMeterRegion")]
        try:
            skip = int(query.get("$skip", "0"))
        except ValueError:
            return reply_json(400, {"Error": {"Code": "BadRequest", "Message": "bad $skip"}})
        page = items[skip : skip + self.page_size]
        next_link = None
        if skip + self.page_size < len(items):
            rest = {k: v for k, v in query.items() if k != "$skip"}
            rest["$skip"] = str(skip + self.page_size)
            host = req.headers.get("host", "prices.azure.com")
            next_link = f"https://{host}/api/retail/prices?{urlencode(rest)}"
        return reply_json(
            200,
            {
                "BillingCurrency": "USD",
                "CustomerEntityId": "Default",
                "CustomerEntityType": "Retail",
                "Items": page,
                "NextPageLink": next_link,
                "Count": len(page),
            },
        )


# --------------------------------------------------------------------------------------------
# RunPod gpuTypes
# --------------------------------------------------------------------------------------------

#: ``GpuType``'s fields (a subset of RunPod's schema; ``lowestPrice`` takes an input object).
GPU_TYPE_FIELDS = frozenset(
    {
        "id",
        "displayName",
        "manufacturer",
        "memoryInGb",
        "cudaCores",
        "maxGpuCount",
        "secureCloud",
        "communityCloud",
        "securePrice",
        "communityPrice",
        "secureSpotPrice",
        "communitySpotPrice",
        "oneWeekPrice",
        "oneMonthPrice",
        "threeMonthPrice",
    }
)


def gpu_type(
    type_id: str,
    display: str,
    memory_gb: int,
    *,
    secure: float | None,
    community: float | None,
    secure_spot: float | None = None,
    community_spot: float | None = None,
) -> dict[str, Any]:
    """One ``GpuType`` as RunPod answers it ($/h per GPU; a cloud that lacks it: false, 0)."""
    return {
        "id": type_id,
        "displayName": display,
        "manufacturer": "Nvidia",
        "memoryInGb": memory_gb,
        "cudaCores": 0,
        "maxGpuCount": 8,
        "secureCloud": secure is not None,
        "communityCloud": community is not None,
        "securePrice": secure or 0,
        "communityPrice": community or 0,
        "secureSpotPrice": secure_spot or 0,
        "communitySpotPrice": community_spot,
        "oneWeekPrice": 0,
        "oneMonthPrice": 0,
        "threeMonthPrice": 0,
    }


def default_gpu_types() -> list[dict[str, Any]]:
    return [
        gpu_type(
            "NVIDIA GeForce RTX 4090",
            "RTX 4090",
            24,
            secure=0.69,
            community=0.34,
            secure_spot=0.35,
            community_spot=0.2,
        ),
        gpu_type("NVIDIA RTX A5000", "RTX A5000", 24, secure=0.27, community=0.16),
        gpu_type(
            "NVIDIA H100 80GB HBM3", "H100 SXM", 80, secure=2.69, community=None, secure_spot=1.75
        ),
        gpu_type("NVIDIA B200", "B200", 180, secure=5.99, community=None),
        gpu_type("unknown", "unknown", 0, secure=None, community=None),
    ]


@dataclass
class RunPodPricesFake(ResettableFake):
    key: str = "rpa_PRICESKEY_0123456789abcdef"
    gpu_types: list[dict[str, Any]] = field(default_factory=default_gpu_types)
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        self.server.route("POST", "/graphql")(self._graphql)

    @property
    def graphql_url(self) -> str:
        return f"{self.server.base}/graphql"

    def _graphql(self, req: Request) -> Reply:
        try:
            body = json.loads(req.body or b"null")
        except ValueError:
            return reply_json(400, {"errors": [{"message": "POST body sent invalid JSON."}]})
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str) or not query.strip():
            return reply_json(400, {"errors": [{"message": "Must provide query string."}]})
        if req.bearer != self.key:
            return reply_json(200, {"errors": [{"message": BAD_KEY_MESSAGE}], "data": None})
        try:
            op = parse(query)
            if op.kind != "query" or [f.name for f in op.selection] != ["gpuTypes"]:
                raise GraphQLError("This fake answers the gpuTypes query only.")
            (root,) = op.selection
            if not root.selection:
                raise GraphQLError('Field "gpuTypes" of type "[GpuType]" must have a selection.')
            for f in root.selection:
                if f.name not in GPU_TYPE_FIELDS or f.selection is not None:
                    raise GraphQLError(f'Cannot query field "{f.name}" on type "GpuType".')
        except GraphQLError as exc:
            return reply_json(
                400,
                {
                    "errors": [
                        {"message": str(exc), "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}
                    ]
                },
            )
        return reply_json(200, {"data": {"gpuTypes": _project(self.gpu_types, root.selection)}})


def _project(items: list[dict[str, Any]], selection: list[Field]) -> list[dict[str, Any]]:
    return [{f.name: item.get(f.name) for f in selection} for item in items]


# --------------------------------------------------------------------------------------------
# Routing a real host name to a fake
# --------------------------------------------------------------------------------------------


class HostRoutes(httpx.AsyncBaseTransport):
    """Requests for ``routes``' host names go to the fake's base URL (``http://127.0.0.1:N``),
    their ``Host`` header kept; any other host is refused (no request leaves the machine)."""

    def __init__(self, routes: dict[str, str]) -> None:
        self.routes = {host: httpx.URL(base) for host, base in routes.items()}
        self.inner: httpx.AsyncHTTPTransport | None = None
        self.seen: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.url)
        target = self.routes.get(request.url.host)
        if target is None:
            raise httpx.ConnectError(f"no route to {request.url.host}", request=request)
        request.url = request.url.copy_with(
            scheme=target.scheme, host=target.host, port=target.port
        )
        if self.inner is None:  # (each client that used it closed it: one per client)
            self.inner = httpx.AsyncHTTPTransport()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        inner, self.inner = self.inner, None
        if inner is not None:
            await inner.aclose()
