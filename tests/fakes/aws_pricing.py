"""A contract fake of the AWS Price List Query API's ``GetProducts`` (moto has no pricing
service), on a local HTTP server.

Written from AWS's documentation, not from the adapter:

* The protocol — AWS JSON 1.1 (botocore's ``pricing`` model: ``targetPrefix``
  ``AWSPriceListService``, signing name ``pricing``): ``POST /`` with ``X-Amz-Target:
  AWSPriceListService.GetProducts`` and ``Content-Type: application/x-amz-json-1.1``; errors are
  ``{"__type": <code>, "message": ...}`` with status 400
  (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/CommonErrors.html).
* Authentication — Signature Version 4, VERIFIED here
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html): the
  ``Authorization`` header's credential scope must be ``<key>/<date>/<region>/pricing/
  aws4_request`` with a region that serves the API (us-east-1, eu-central-1, ap-south-1:
  https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/using-price-list-query-api.html),
  and the signature is recomputed from the canonical request with the key's secret. No header:
  ``MissingAuthenticationTokenException``; an unknown key: ``UnrecognizedClientException`` "The
  security token included in the request is invalid."; a wrong secret:
  ``InvalidSignatureException``; a key in ``denied_keys``: ``AccessDeniedException`` "User: ...
  is not authorized to perform: pricing:GetProducts".
* ``GetProducts`` (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html):
  ``ServiceCode``, ``Filters`` (``Type`` ``TERM_MATCH``: the product attribute ``Field`` equals
  ``Value``), ``FormatVersion`` (``aws_v1``), ``MaxResults`` (1-100), ``NextToken``. The answer
  is ``{"FormatVersion": "aws_v1", "PriceList": [<one product as a JSON string>, ...],
  "NextToken": ...}``, ``NextToken`` left out on the last page; at most ``min(MaxResults,
  page_size)`` products a page. An unknown ``NextToken`` is ``InvalidNextTokenException``.
* A product document has the shape of the price list files
  (https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/reading-service-price-list-file-for-services.html):
  ``product`` (``productFamily``, ``attributes``, ``sku``), ``serviceCode``, ``terms``
  (``OnDemand`` / ``Reserved`` -> ``<sku>.<offerTermCode>`` -> ``priceDimensions`` ->
  ``<sku>.<offerTermCode>.<rateCode>`` with ``unit`` ``Hrs``, ``pricePerUnit.USD`` a decimal
  string, ``beginRange``, ``endRange``, ``description``, ``appliesTo``), ``version``,
  ``publicationDate``. :func:`ec2_product` builds one for an EC2 instance type.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from .http import FakeServer, Reply, Request, ResettableFake, reply_json

TARGET = "AWSPriceListService.GetProducts"
PRICE_LIST_REGIONS = ("us-east-1", "eu-central-1", "ap-south-1")
ON_DEMAND_TERM = "JRTCKXETXF"  # the offer term code of EC2's on-demand terms
HOURLY_RATE = "6YS6EN2CT7"
RESERVED_TERM = "4NA7Y494T4"  # a 1-year No Upfront standard reserved term

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)

LOCATIONS = {
    "us-east-1": "US East (N. Virginia)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-central-1": "EU (Frankfurt)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
}


def ec2_product(
    instance_type: str,
    region: str,
    usd: float,
    *,
    operating_system: str = "Linux",
    tenancy: str = "Shared",
    pre_installed_sw: str = "NA",
    capacity_status: str = "Used",
    market_option: str = "OnDemand",
    reserved_usd: float | None = None,
) -> dict[str, Any]:
    """An EC2 instance type's product document as GetProducts returns it."""
    sku = secrets.token_hex(8).upper()
    attributes = {
        "instanceType": instance_type,
        "regionCode": region,
        "location": LOCATIONS.get(region, region),
        "locationType": "AWS Region",
        "servicecode": "AmazonEC2",
        "operatingSystem": operating_system,
        "tenancy": tenancy,
        "preInstalledSw": pre_installed_sw,
        "capacitystatus": capacity_status,
        "marketoption": market_option,
        "licenseModel": "No License required",
        "operation": "RunInstances",
        "usagetype": f"BoxUsage:{instance_type}",
        "instanceFamily": "GPU instance",
    }
    on_demand_code = f"{sku}.{ON_DEMAND_TERM}"
    terms: dict[str, Any] = {
        "OnDemand": {
            on_demand_code: {
                "priceDimensions": {
                    f"{on_demand_code}.{HOURLY_RATE}": {
                        "unit": "Hrs",
                        "endRange": "Inf",
                        "description": f"${usd:.4f} per On Demand {operating_system} "
                        f"{instance_type} Instance Hour",
                        "appliesTo": [],
                        "rateCode": f"{on_demand_code}.{HOURLY_RATE}",
                        "beginRange": "0",
                        "pricePerUnit": {"USD": f"{usd:.10f}"},
                    }
                },
                "sku": sku,
                "effectiveDate": "2026-01-01T00:00:00Z",
                "offerTermCode": ON_DEMAND_TERM,
                "termAttributes": {},
            }
        }
    }
    if reserved_usd is not None:
        reserved_code = f"{sku}.{RESERVED_TERM}"
        terms["Reserved"] = {
            reserved_code: {
                "priceDimensions": {
                    f"{reserved_code}.{HOURLY_RATE}": {
                        "unit": "Hrs",
                        "endRange": "Inf",
                        "description": f"{operating_system} {instance_type} reserved hour",
                        "appliesTo": [],
                        "rateCode": f"{reserved_code}.{HOURLY_RATE}",
                        "beginRange": "0",
                        "pricePerUnit": {"USD": f"{reserved_usd:.10f}"},
                    }
                },
                "sku": sku,
                "effectiveDate": "2026-01-01T00:00:00Z",
                "offerTermCode": RESERVED_TERM,
                "termAttributes": {
                    "LeaseContractLength": "1yr",
                    "OfferingClass": "standard",
                    "PurchaseOption": "No Upfront",
                },
            }
        }
    return {
        "product": {"productFamily": "Compute Instance", "attributes": attributes, "sku": sku},
        "serviceCode": "AmazonEC2",
        "terms": terms,
        "version": "20260101000000",
        "publicationDate": "2026-01-01T00:00:00Z",
    }


def _error(code: str, message: str, status: int = 400) -> Reply:
    return reply_json(
        status, {"__type": code, "message": message}, {"Content-Type": "application/x-amz-json-1.1"}
    )


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


@dataclass
class PriceListFake(ResettableFake):
    """``keys``: access key -> secret key accepted; ``products``: every product document of
    AmazonEC2 (filters select among them); ``page_size``: the most products a page holds."""

    keys: dict[str, str] = field(default_factory=dict)
    denied_keys: set[str] = field(default_factory=set)
    products: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 100
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        self.calls: list[dict[str, Any]] = []  # GetProducts bodies with the signing region
        self._tokens: dict[str, list[str]] = {}  # NextToken -> the products still to send
        self.server.default = self._handle

    def _after_reset(self) -> None:
        self.calls.clear()
        self._tokens.clear()

    @property
    def base(self) -> str:
        return self.server.base

    # -- SigV4 -----------------------------------------------------------------------------

    def _signature_ok(self, req: Request, found: re.Match[str], secret: str) -> bool:
        signed = found["signed"].split(";")
        canonical_headers = "".join(
            f"{name}:{' '.join(req.headers.get(name, '').split())}\n" for name in signed
        )
        query = "&".join(
            f"{k}={v}" for k, values in sorted(req.query.items()) for v in sorted(values)
        )
        canonical = "\n".join(
            [
                req.method,
                req.path or "/",
                query,
                canonical_headers,
                found["signed"],
                hashlib.sha256(req.body).hexdigest(),
            ]
        )
        scope = f"{found['date']}/{found['region']}/{found['service']}/aws4_request"
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                req.headers.get("x-amz-date", ""),
                scope,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        key = _hmac(("AWS4" + secret).encode(), found["date"])
        for part in (found["region"], found["service"], "aws4_request"):
            key = _hmac(key, part)
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, found["signature"])

    # -- the API ---------------------------------------------------------------------------

    def _handle(self, req: Request) -> Reply:
        if req.method != "POST" or req.path != "/":
            return _error("UnknownOperationException", "", 404)
        if req.headers.get("x-amz-target") != TARGET:
            return _error("UnknownOperationException", "")
        if not req.headers.get("content-type", "").startswith("application/x-amz-json-1.1"):
            return _error(
                "SerializationException", "Start of structure or map found where not expected."
            )
        auth = req.headers.get("authorization")
        if not auth:
            return _error("MissingAuthenticationTokenException", "Missing Authentication Token")
        found = _AUTH.fullmatch(auth)
        if found is None or found["service"] != "pricing":
            return _error(
                "IncompleteSignatureException", "Authorization header requires a valid signature"
            )
        key = found["key"]
        if key not in self.keys:
            return _error(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        if not self._signature_ok(req, found, self.keys[key]):
            return _error(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method.",
            )
        if found["region"] not in PRICE_LIST_REGIONS:
            return _error(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        if key in self.denied_keys:
            return _error(
                "AccessDeniedException",
                "User: arn:aws:iam::123456789012:user/app is not authorized to perform: "
                "pricing:GetProducts because no identity-based policy allows the "
                "pricing:GetProducts action",
            )
        body = req.json() or {}
        self.calls.append({"region": found["region"], **body})
        return self._get_products(body)

    def _get_products(self, body: dict[str, Any]) -> Reply:
        if body.get("ServiceCode") != "AmazonEC2":
            return _error("NotFoundException", "Service not found")
        if body.get("FormatVersion", "aws_v1") != "aws_v1":
            return _error("InvalidParameterException", "Unsupported FormatVersion")
        size = int(body.get("MaxResults") or 100)
        if not 1 <= size <= 100:
            return _error("InvalidParameterException", "MaxResults must be between 1 and 100")
        token = body.get("NextToken")
        if token:
            remaining = self._tokens.pop(token, None)
            if remaining is None:
                return _error("InvalidNextTokenException", "Invalid NextToken")
        else:
            remaining = [
                json.dumps(p) for p in self.products if self._matches(p, body.get("Filters") or [])
            ]
        size = min(size, self.page_size)
        page, rest = remaining[:size], remaining[size:]
        answer: dict[str, Any] = {"FormatVersion": "aws_v1", "PriceList": page}
        if rest:
            next_token = secrets.token_urlsafe(24)
            self._tokens[next_token] = rest
            answer["NextToken"] = next_token
        return reply_json(200, answer, {"Content-Type": "application/x-amz-json-1.1"})

    @staticmethod
    def _matches(product: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
        attrs = product["product"]["attributes"]
        for f in filters:
            if f.get("Type") != "TERM_MATCH":
                return False
            if attrs.get(f.get("Field")) != f.get("Value"):
                return False
        return True
