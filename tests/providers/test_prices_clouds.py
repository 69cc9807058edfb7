"""The live price sources of AWS and Google Cloud against their contract fakes.

AWS: on-demand prices from the Price List Query API fake (tests/fakes/aws_pricing.py: SigV4
verified, JSON 1.1, ``NextToken`` pages), spot prices from moto's EC2 with IAM enforced
(tests/fakes/aws.py). moto's ``DescribeSpotPriceHistory`` answers a fixed $0.00001 for every
type in every Availability Zone it offers, dated 2006: the tests check that each type and zone
becomes a spot offer with moto's price, not the price itself.

Google Cloud: the service-account sign-in against the token endpoint of tests/fakes/gcp.py (the
grant's RS256 signature verified), then the Cloud Billing Catalog fake
(tests/fakes/gcp_billing.py), which accepts only the tokens that endpoint issued.

Profiles are copies of the shipped ones with the machines a test needs (the shipped machine
tables are filled elsewhere).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.core.catalog.profiles import MachineType, ProviderProfile
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.core.prices import Offer
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext, CheckFailure
from comfyvn_gui.providers.prices import aws as aws_prices
from comfyvn_gui.providers.prices import gcp as gcp_prices
from tests.fakes.aws import Key, MotoAccount, auth_off, moto_server, setup_account
from tests.fakes.aws_pricing import PriceListFake, ec2_product
from tests.fakes.gcp import PROJECT, GcpFake, ServiceAccountKey, make_key
from tests.fakes.gcp_billing import BillingCatalogFake, default_skus
from tests.fakes.http import SilentServer, arun

CATALOG = load_catalog()
T = TypeVar("T")
BOGUS_KEY = "AKIA" + "BOGUS00000000000"
WRONG_SECRET = "WrongSecretCanary0123456789abcdefghijklm"


def with_machines(template: str, option: str, machines: list[MachineType]) -> ProviderProfile:
    return CATALOG.profile(template).model_copy(
        update={"machine_option": option, "machines": machines}
    )


def run(
    entry: ProviderEntry,
    profile: ProviderProfile,
    secrets: dict[str, str],
    fn: Callable[[CheckContext], Awaitable[T]],
    timeout_s: float = 10.0,
) -> T:
    async def main() -> T:
        pool = BlockingExecutor(max_workers=8)
        try:
            ctx = CheckContext(
                provider=entry,
                profile=profile,
                secrets=secrets,
                deadline=asyncio.get_running_loop().time() + timeout_s,
                executor=pool,
            )
            return await fn(ctx)
        finally:
            pool.shutdown()

    result: T = arun(main())
    return result


def failure_of(call: Callable[[], object]) -> tuple[CheckFailure, float]:
    started = time.monotonic()
    with pytest.raises(CheckFailure) as info:
        call()
    return info.value, time.monotonic() - started


def assert_recent(offer: Offer) -> None:
    assert offer.source == "live"
    assert datetime.now(UTC) - offer.taken_at < timedelta(seconds=30)


# --------------------------------------------------------------------------- AWS

AWS_MACHINES = [
    MachineType(id="g5.xlarge", gpu="A10G", hourly_usd=1.006),
    MachineType(id="g6.xlarge", gpu="L4", hourly_usd=0.8048),
    MachineType(id="p4d.24xlarge", gpu="A100 40GB", gpu_count=8, hourly_usd=21.96),
]
AWS_PROFILE = with_machines("aws", "instance_type", AWS_MACHINES)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoAccount]:
    for url in moto_server():
        account = setup_account(url)
        try:
            yield account
        finally:
            auth_off(url)


@pytest.fixture(scope="module")
def price_list_server() -> Iterator[PriceListFake]:
    with PriceListFake() as fake:
        yield fake


@pytest.fixture
def price_list(price_list_server: PriceListFake, moto: MotoAccount) -> PriceListFake:
    app = moto.keys["app"]
    fake: PriceListFake = price_list_server.reset(
        keys={app.access_key: app.secret_key},
        products=[
            # a Capacity Block for the same type, cheaper and listed first (on its own page)
            ec2_product("g5.xlarge", "us-east-1", 0.42, market_option="CapacityBlock"),
            ec2_product("g5.xlarge", "us-east-1", 1.006, reserved_usd=0.634),
            ec2_product("g5.xlarge", "us-east-1", 1.476, operating_system="Windows"),
            ec2_product("g5.xlarge", "eu-west-1", 1.123),
            ec2_product("g6.xlarge", "us-east-1", 0.8048),
            ec2_product("g6.xlarge", "eu-west-1", 0.8853),
        ],
        page_size=1,
    )
    return fake


def aws_entry(moto: MotoAccount, pricing_url: str, region: str = "us-east-1") -> ProviderEntry:
    return ProviderEntry(
        id="aws1",
        template_id="aws",
        name="AWS",
        config={"region": region, "endpoints": {"aws": moto.url, "pricing": pricing_url}},
    )


def aws_offers(entry: ProviderEntry, key: Key, timeout_s: float = 10.0) -> list[Offer]:
    return run(
        entry,
        AWS_PROFILE,
        key.secrets,
        lambda ctx: aws_prices.live_offers(ctx, CATALOG),
        timeout_s,
    )


def test_aws_on_demand_from_the_price_list_and_spot_from_ec2(
    moto: MotoAccount, price_list: PriceListFake
) -> None:
    offers = aws_offers(aws_entry(moto, price_list.base), moto.keys["app"])
    on_demand = {o.machine: o for o in offers if not o.spot}
    # the Linux on-demand price, not the Capacity Block, Windows, reserved or Irish one;
    # p4d.24xlarge is not in the price list for us-east-1: no offer
    assert {m: o.hourly_usd for m, o in on_demand.items()} == {
        "g5.xlarge": 1.006,
        "g6.xlarge": 0.8048,
    }
    g5 = on_demand["g5.xlarge"]
    assert (g5.gpu, g5.gpu_count, g5.vram_gb, g5.region, g5.zone) == (
        "A10G",
        1,
        24,
        "us-east-1",
        "us",
    )
    assert (g5.provider, g5.template_id, g5.source_name) == (
        "aws1",
        "aws",
        "AWS Price List API (on-demand, Linux)",
    )
    assert g5.billing_increment_minutes == AWS_PROFILE.billing.increment_minutes
    assert g5.billing_minimum_minutes == AWS_PROFILE.billing.minimum_minutes
    assert_recent(g5)

    # what was asked: one query per machine, in us-east-1, the documented filters, and the
    # second page of g5.xlarge's products with the first page's NextToken
    g5_calls = [c for c in price_list.calls if c["Filters"][0]["Value"] == "g5.xlarge"]
    assert g5_calls[0]["Filters"] == [
        {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "g5.xlarge"},
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"},
        {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
        {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
        {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
        {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
    ]
    assert g5_calls[0]["ServiceCode"] == "AmazonEC2" and "NextToken" not in g5_calls[0]
    assert len(g5_calls) == 2 and g5_calls[1]["NextToken"]
    assert {c["region"] for c in price_list.calls} == {"us-east-1"}
    queried = {c["Filters"][0]["Value"] for c in price_list.calls}
    assert queried == {"g5.xlarge", "g6.xlarge", "p4d.24xlarge"}

    # spot: one offer per type and Availability Zone moto offers it in, at moto's price
    spot = [o for o in offers if o.spot]
    g5_zones = sorted(o.detail["availability_zone"] for o in spot if o.machine == "g5.xlarge")
    assert g5_zones and all(z.startswith("us-east-1") for z in g5_zones)
    assert len(set(g5_zones)) == len(g5_zones)
    for o in spot:
        assert (o.region, o.hourly_usd, o.source_name) == (
            "us-east-1",
            0.00001,
            "EC2 spot price history (Linux/UNIX)",
        )
        assert o.detail["price_since"].startswith("2006-")  # moto's fixed timestamp
        assert_recent(o)
    assert "spot_prices" not in g5.detail


def test_aws_region_outside_the_us_asks_the_nearest_price_list(
    moto: MotoAccount, price_list: PriceListFake
) -> None:
    offers = aws_offers(aws_entry(moto, price_list.base, "eu-west-1"), moto.keys["app"])
    on_demand = {o.machine: (o.hourly_usd, o.region, o.zone) for o in offers if not o.spot}
    assert on_demand == {
        "g5.xlarge": (1.123, "eu-west-1", "eu"),
        "g6.xlarge": (0.8853, "eu-west-1", "eu"),
    }
    assert {c["region"] for c in price_list.calls} == {"eu-central-1"}
    assert all(o.detail["availability_zone"].startswith("eu-west-1") for o in offers if o.spot)


@pytest.mark.parametrize(
    ("who", "code", "fields"),
    [
        ("unknown key", "invalid_credentials", ["access_key"]),
        ("wrong secret", "invalid_credentials", ["secret_key"]),
        ("no pricing permission", "permission_denied", ["access_key"]),
    ],
)
def test_aws_refused_key_names_the_field(
    moto: MotoAccount, price_list: PriceListFake, who: str, code: str, fields: list[str]
) -> None:
    app = moto.keys["app"]
    key = {
        "unknown key": Key(BOGUS_KEY, WRONG_SECRET, "-"),
        "wrong secret": Key(app.access_key, WRONG_SECRET, "-"),
        "no pricing permission": app,
    }[who]
    if who == "no pricing permission":
        price_list.denied_keys = {app.access_key}
    failure, _ = failure_of(lambda: aws_offers(aws_entry(moto, price_list.base), key))
    assert (failure.code, failure.fields) == (code, fields), failure.message
    if code == "permission_denied":
        assert failure.detail["missing_permission"] == "pricing:GetProducts"
        assert "pricing:GetProducts" in failure.message
    text = failure.message + repr(failure.detail)
    assert key.secret_key not in text and key.access_key not in text


def test_aws_hung_price_list_fails_within_the_deadline(moto: MotoAccount) -> None:
    with SilentServer() as hung:
        failure, took = failure_of(
            lambda: aws_offers(aws_entry(moto, hung.base), moto.keys["app"], timeout_s=1.5)
        )
    assert failure.code == "timeout", failure.message
    assert took < 2.5


# --------------------------------------------------------------------------- Google Cloud

GCP_MACHINES = [
    MachineType(id="g2-standard-4", gpu="L4", hourly_usd=0.7068),
    MachineType(id="a2-highgpu-1g", gpu="A100 40GB", hourly_usd=3.6734),
    MachineType(id="a2-ultragpu-1g", gpu="A100 80GB", hourly_usd=5.0688),
    MachineType(id="a3-highgpu-8g", gpu="H100", gpu_count=8, hourly_usd=88.49),
]
GCP_PROFILE = with_machines("gcp", "machine_type", GCP_MACHINES)


@pytest.fixture(scope="module")
def gcp_servers() -> Iterator[tuple[GcpFake, BillingCatalogFake]]:
    with GcpFake() as google, BillingCatalogFake() as billing:
        billing.trust(google)
        yield google, billing


@pytest.fixture(scope="module")
def gcp_key() -> ServiceAccountKey:
    return make_key(f"comfyvn-prices@{PROJECT}.iam.gserviceaccount.com")


@pytest.fixture
def gcp(
    gcp_servers: tuple[GcpFake, BillingCatalogFake], gcp_key: ServiceAccountKey
) -> tuple[GcpFake, BillingCatalogFake]:
    google, billing = gcp_servers
    google.reset()
    google.register(gcp_key)
    billing.reset()
    return google, billing


def gcp_offers(
    google: GcpFake,
    billing_url: str,
    key: ServiceAccountKey,
    timeout_s: float = 10.0,
) -> list[Offer]:
    entry = ProviderEntry(
        id="g",
        template_id="gcp",
        name="Google Cloud",
        config={
            "project_id": PROJECT,
            "region": "us-central1",
            "zone": "us-central1-a",
            "endpoints": {**google.endpoints(), "cloudbilling": billing_url},
        },
    )
    return run(
        entry,
        GCP_PROFILE,
        {"service_account_json": key.json()},
        lambda ctx: gcp_prices.live_offers(ctx, CATALOG),
        timeout_s,
    )


def test_gcp_machines_priced_from_the_billing_catalog(
    gcp: tuple[GcpFake, BillingCatalogFake], gcp_key: ServiceAccountKey
) -> None:
    google, billing = gcp
    # A2's memory SKU missing: A2 machine types are priced by their GPUs alone, and say so
    billing.reset(
        skus=[
            s for s in default_skus() if s["description"] != "A2 Instance Ram running in Americas"
        ],
        page_size=4,
    )
    offers = gcp_offers(google, billing.base, gcp_key)
    got = {(o.machine, o.spot): o for o in offers}
    # no spot A100 SKU, no H100 SKU at all: no offers for those
    assert set(got) == {
        ("g2-standard-4", False),
        ("g2-standard-4", True),
        ("a2-highgpu-1g", False),
        ("a2-ultragpu-1g", False),
    }

    g2 = got[("g2-standard-4", False)]
    # 1 L4 + 4 vCPUs + 16 GiB at the Americas' G2 rates (the timeline's current entry)
    assert g2.hourly_usd == pytest.approx(0.56 + 4 * 0.024988 + 16 * 0.002927, abs=1e-6)
    assert (g2.gpu, g2.vram_gb, g2.region, g2.zone) == ("L4", 24, "us-central1", "us")
    assert g2.source_name == "Google Cloud Billing Catalog (GPU, vCPU and memory)"
    assert (g2.detail["vcpus"], g2.detail["memory_gib"]) == (4, 16)
    assert g2.billing_increment_minutes == GCP_PROFILE.billing.increment_minutes
    assert_recent(g2)

    g2_spot = got[("g2-standard-4", True)]
    assert g2_spot.hourly_usd == pytest.approx(0.224 + 4 * 0.009995 + 16 * 0.001171, abs=1e-6)

    a2 = got[("a2-highgpu-1g", False)]
    assert a2.hourly_usd == pytest.approx(2.933908, abs=1e-6)
    assert a2.source_name == "Google Cloud Billing Catalog (GPU only)"
    assert a2.detail["priced"] == "GPU only" and a2.vram_gb == 40

    # every page read, each with the previous page's token, in USD
    pages = [r for r in billing.requests if r.path.endswith("/skus")]
    assert len(pages) == -(-len(billing.skus) // 4)
    assert all(r.path == "/v1/services/6F81-5844-456A/skus" for r in pages)
    assert "pageToken" not in pages[0].query and all("pageToken" in r.query for r in pages[1:])
    assert all(r.query["currencyCode"] == ["USD"] for r in pages)
    # the token came from a real JWT-bearer grant of the key's account
    assert [g["iss"] for g in google.grants] == [gcp_key.email]


def test_gcp_full_machine_price_with_the_a2_rates(
    gcp: tuple[GcpFake, BillingCatalogFake], gcp_key: ServiceAccountKey
) -> None:
    google, billing = gcp
    offers = {o.machine: o for o in gcp_offers(google, billing.base, gcp_key) if not o.spot}
    a2 = offers["a2-highgpu-1g"]
    assert a2.hourly_usd == pytest.approx(2.933908 + 12 * 0.031611 + 85 * 0.004237, abs=1e-6)
    ultra = offers["a2-ultragpu-1g"]
    assert ultra.hourly_usd == pytest.approx(3.92 + 12 * 0.031611 + 170 * 0.004237, abs=1e-6)
    assert "Local SSD" in ultra.detail["excludes"]


@pytest.mark.parametrize("case", ["revoked key", "billing API disabled"])
def test_gcp_refusals(
    gcp: tuple[GcpFake, BillingCatalogFake], gcp_key: ServiceAccountKey, case: str
) -> None:
    google, billing = gcp
    if case == "revoked key":
        google.revoke(gcp_key)
    else:
        billing.api_enabled = False
    failure, _ = failure_of(lambda: gcp_offers(google, billing.base, gcp_key))
    if case == "revoked key":
        assert (failure.code, failure.fields) == ("invalid_credentials", ["service_account_json"])
    else:
        assert failure.code == "misconfigured"
        assert "Cloud Billing API" in failure.message and PROJECT in failure.message
    text = failure.message + repr(failure.detail)
    assert gcp_key.pem not in text
    assert gcp_key.pem.splitlines()[1] not in text


def test_gcp_hung_catalog_fails_within_the_deadline(
    gcp: tuple[GcpFake, BillingCatalogFake], gcp_key: ServiceAccountKey
) -> None:
    google, _ = gcp
    with SilentServer() as hung:
        failure, took = failure_of(lambda: gcp_offers(google, hung.base, gcp_key, timeout_s=1.5))
    assert failure.code == "timeout", failure.message
    assert took < 2.5


def test_importing_the_sources_loads_no_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import comfyvn_gui.providers.prices.aws, comfyvn_gui.providers.prices.gcp\n"
        "loaded = [m for m in ('boto3', 'botocore', 'google.auth', 'google.oauth2') "
        "if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
