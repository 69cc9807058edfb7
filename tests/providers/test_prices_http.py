"""The live price sources that speak plain HTTP (providers/prices: lambda_labs, runpod, vast,
azure) against contract fakes that answer with the providers' documented shapes:
tests/fakes/lambda_cloud.py, tests/fakes/vast.py and tests/fakes/prices_http.py (RunPod's
``gpuTypes``, the Azure Retail Prices API). What a user would see: each offer's price, GPU,
region and zone, spot flag and capacity; a refused key named; a dead source failing within its
deadline as a CheckFailure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from comfyvn_gui.core.catalog import MachineType, ProviderProfile, load_catalog
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.core.prices import Offer
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext, CheckFailure
from comfyvn_gui.providers.prices import azure, lambda_labs, runpod, vast
from tests.fakes.http import SilentServer, arun
from tests.fakes.lambda_cloud import LambdaFake
from tests.fakes.prices_http import AzurePricesFake, HostRoutes, RunPodPricesFake
from tests.fakes.vast import VastFake

CATALOG = load_catalog()
T4 = "Standard_NC4as_T4_v3"
A100 = "Standard_NC24ads_A100_v4"


@pytest.fixture(scope="module")
def executor() -> Iterator[BlockingExecutor]:
    pool = BlockingExecutor(max_workers=2)
    yield pool
    pool.shutdown()


def offers_of(
    source: Any,
    template: str,
    executor: BlockingExecutor,
    *,
    secrets: dict[str, str] | None = None,
    base_url: str | None = None,
    config: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    profile: ProviderProfile | None = None,
    transport: Any = None,
    deadline_s: float = 10.0,
) -> list[Offer]:
    """``source.live_offers`` for a provider of ``template``; raises what it raises."""

    async def main() -> list[Offer]:
        entry = ProviderEntry(
            id=f"my-{template}",
            template_id=template,
            name=template,
            active=True,
            base_url=base_url,
            config=dict(config or {}),
            meta=dict(meta or {}),
        )
        ctx = CheckContext(
            provider=entry,
            profile=profile or CATALOG.profile(template),
            secrets=dict(secrets or {}),
            deadline=asyncio.get_running_loop().time() + deadline_s,
            executor=executor,
            transport=transport,
        )
        result: list[Offer] = await source.live_offers(ctx, CATALOG)
        return result

    offers: list[Offer] = arun(main())
    return offers


def live(offer: Offer, source_name: str) -> None:
    """Said as live, by which API, taken just now, billed as the profile says."""
    assert offer.source == "live"
    assert offer.source_name == source_name
    assert offer.configured
    assert datetime.now(UTC) - offer.taken_at < timedelta(minutes=1)
    assert offer.billing_increment_minutes is not None


# -- Lambda -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lam() -> Iterator[LambdaFake]:
    with LambdaFake() as fake:
        yield fake


def test_lambda_offers_each_type_where_it_has_capacity(
    lam: LambdaFake, executor: BlockingExecutor
) -> None:
    lam.reset()
    offers = offers_of(
        lambda_labs,
        "lambda",
        executor,
        secrets={"api_key": lam.key},
        base_url=lam.api_base,
    )
    rows = {(o.machine, o.region): o for o in offers}
    # gpu_1x_a10: capacity in two regions -> one available offer in each, zone from the profile
    a10_east, a10_west = rows[("gpu_1x_a10", "us-east-1")], rows[("gpu_1x_a10", "us-west-1")]
    assert (a10_east.gpu, a10_east.vram_gb, a10_east.hourly_usd) == ("A10", 24, 0.75)
    assert (a10_east.available, a10_east.zone, a10_west.available) == (True, "us", True)
    # no capacity: one offer, no region, not available; its price still counted
    h100 = rows[("gpu_1x_h100_pcie", None)]
    assert (h100.gpu, h100.hourly_usd, h100.available, h100.zone) == ("H100", 2.49, False, None)
    # the whole machine's price; GPU count from specs.gpus; "A100 (80 GB SXM4)" is the 80 GB one
    big = rows[("gpu_8x_a100_80gb_sxm4", None)]
    assert (big.gpu, big.gpu_count, big.vram_gb, big.hourly_usd) == ("A100 80GB", 8, 80, 14.32)
    assert rows[("gpu_1x_a100", "us-east-1")].gpu == "A100 40GB"
    assert len(offers) == 5
    for o in offers:
        live(o, "Lambda instance-types API")
        assert (o.billing_increment_minutes, o.billing_minimum_minutes, o.spot) == (1, 0, False)
    assert lam.requests[-1].path == "/api/v1/instance-types"


def test_lambda_refused_key_names_it(lam: LambdaFake, executor: BlockingExecutor) -> None:
    lam.reset()
    wrong = "secret_WRONGKEY_0123456789abcdef"
    with pytest.raises(CheckFailure) as info:
        offers_of(
            lambda_labs, "lambda", executor, secrets={"api_key": wrong}, base_url=lam.api_base
        )
    assert (info.value.code, info.value.fields) == ("invalid_credentials", ["api_key"])
    assert "API key" in info.value.message and wrong not in info.value.message


# -- RunPod -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rp() -> Iterator[RunPodPricesFake]:
    with RunPodPricesFake() as fake:
        yield fake


def test_runpod_gpu_types_on_demand_and_spot_in_the_chosen_cloud(
    rp: RunPodPricesFake, executor: BlockingExecutor
) -> None:
    rp.reset()
    endpoints = {"endpoints": {"graphql": rp.graphql_url}}
    secure = offers_of(runpod, "runpod", executor, secrets={"api_key": rp.key}, config=endpoints)
    rows = {(o.machine, o.spot): o for o in secure}
    rtx = rows[("NVIDIA GeForce RTX 4090", False)]
    assert (rtx.gpu, rtx.vram_gb, rtx.hourly_usd, rtx.region) == ("RTX 4090", 24, 0.69, None)
    assert rows[("NVIDIA GeForce RTX 4090", True)].hourly_usd == 0.35
    assert rows[("NVIDIA H100 80GB HBM3", False)].gpu == "H100"
    assert rows[("NVIDIA H100 80GB HBM3", True)].hourly_usd == 1.75
    assert ("NVIDIA RTX A5000", True) not in rows  # no spot price (0): no spot offer
    b200 = rows[("NVIDIA B200", False)]  # not in the GPU catalog: RunPod's name and memory
    assert (b200.gpu, b200.vram_gb, b200.hourly_usd) == ("B200", 180, 5.99)
    assert len(secure) == 6  # "unknown" is no GPU type
    for o in secure:
        live(o, "RunPod GraphQL gpuTypes")
        assert o.detail["cloud_type"] == "SECURE"
    # the query is the fixed text, nothing pasted in
    assert rp.requests[-1].json() == {"query": runpod.GPU_TYPES_QUERY}

    community = offers_of(
        runpod,
        "runpod",
        executor,
        secrets={"api_key": rp.key},
        config={**endpoints, "cloud_type": "COMMUNITY"},
    )
    prices = {(o.machine, o.spot): o.hourly_usd for o in community}
    assert prices == {
        ("NVIDIA GeForce RTX 4090", False): 0.34,
        ("NVIDIA GeForce RTX 4090", True): 0.2,
        ("NVIDIA RTX A5000", False): 0.16,
    }


def test_runpod_refused_key_names_it(rp: RunPodPricesFake, executor: BlockingExecutor) -> None:
    rp.reset()
    wrong = "rpa_WRONGKEY_0123456789abcdef"
    with pytest.raises(CheckFailure) as info:
        offers_of(
            runpod,
            "runpod",
            executor,
            secrets={"api_key": wrong},
            config={"endpoints": {"graphql": rp.graphql_url}},
        )
    assert (info.value.code, info.value.fields) == ("invalid_credentials", ["api_key"])
    assert wrong not in info.value.message


# -- Vast.ai ----------------------------------------------------------------------------------


def test_vast_offers_come_from_the_dispatch_search_under_the_ceiling(
    executor: BlockingExecutor,
) -> None:
    with VastFake() as fake:
        offers = offers_of(
            vast,
            "vast",
            executor,
            secrets={"api_key": fake.key},
            base_url=fake.api_base,
            meta={"price_ceiling_usd": 0.40},
        )
        sent = fake.requests[-1]
    # the search dispatch makes: the ceiling, the profile's VRAM floor, min_reliability 0.95
    assert sent.path == "/api/v0/bundles/"
    body = sent.json()
    assert body["dph_total"] == {"lte": 0.40}
    assert body["gpu_ram"] == {"gte": 16000.0}
    assert body["reliability"] == {"gte": 0.95}
    assert body["limit"] == vast.MAX_OFFERS
    assert all(o.hourly_usd <= 0.40 for o in offers)
    assert [o.machine for o in offers] == ["5010", "5003", "5002", "5004"]  # cheapest first
    rows = {o.machine: o for o in offers}
    de = rows["5002"]
    assert (de.gpu, de.vram_gb, de.hourly_usd) == ("RTX 3090", 24, 0.21)
    assert (de.region, de.zone, de.available) == ("Germany, DE", "eu", True)
    assert (de.detail["reliability"], de.detail["machine_id"], de.gpu_count) == (0.97, 1002, 1)
    assert (rows["5003"].gpu, rows["5003"].zone) == ("RTX A4000", "asia")
    assert (rows["5010"].region, rows["5010"].zone) == ("Norway, NO", None)  # no zone: unknown
    for o in offers:
        live(o, "Vast.ai offer search")
        assert not o.spot


# -- Azure ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prices() -> Iterator[AzurePricesFake]:
    with AzurePricesFake() as fake:
        yield fake


def azure_profile() -> ProviderProfile:
    """The Azure profile with two listed VM sizes (whatever the shipped catalog lists)."""
    machines = [
        MachineType(id=T4, gpu="T4", hourly_usd=0.526),
        MachineType(id=A100, gpu="A100 80GB", hourly_usd=3.673),
    ]
    profile: ProviderProfile = CATALOG.profile("azure").model_copy(
        update={"machine_option": "vm_size", "machines": machines}
    )
    return profile


def test_azure_retail_prices_across_pages(
    prices: AzurePricesFake, executor: BlockingExecutor
) -> None:
    prices.reset(page_size=3)  # the ten meters asked for come in four pages
    routes = HostRoutes({"prices.azure.com": prices.server.base})
    offers = offers_of(azure, "azure", executor, profile=azure_profile(), transport=routes)
    rows = {(o.machine, o.region, o.spot): o for o in offers}
    assert {k: o.hourly_usd for k, o in rows.items()} == {
        (A100, "eastus", False): 3.673,
        (A100, "japaneast", False): 4.2,
        (A100, "westeurope", False): 4.041,
        (T4, "eastus", False): 0.526,
        (T4, "eastus", True): 0.0526,
        (T4, "westeurope", False): 0.58,  # Linux, primary meter, pay-as-you-go
        (T4, "westeurope", True): 0.1153,  # the Spot meter; Low Priority and Windows dropped
    }
    a100 = rows[(A100, "japaneast", False)]
    assert (a100.gpu, a100.vram_gb, a100.zone) == ("A100 80GB", 80, "asia")
    t4 = rows[(T4, "westeurope", True)]
    assert (t4.gpu, t4.vram_gb, t4.zone) == ("T4", 16, "eu")
    for o in offers:
        live(o, "Azure Retail Prices API")
        assert (o.billing_increment_minutes, o.billing_minimum_minutes) == (
            CATALOG.profile("azure").billing.increment_minutes,
            CATALOG.profile("azure").billing.minimum_minutes,
        )
    # the real address, every page through NextPageLink; one query for every region and size
    assert len(routes.seen) == 4
    assert {(u.host, u.path) for u in routes.seen} == {("prices.azure.com", "/api/retail/prices")}
    first = prices.requests[0].query
    assert first["api-version"] == [azure.API_VERSION]
    assert first["meterRegion"] == ["'primary'"]
    assert "armRegionName eq 'westeurope'" in first["$filter"][0]
    assert [r.query.get("$skip") for r in prices.requests] == [None, ["3"], ["6"], ["9"]]


# -- failures within the deadline -------------------------------------------------------------


def test_azure_outage_is_a_check_failure(
    prices: AzurePricesFake, executor: BlockingExecutor
) -> None:
    prices.reset(status=500)
    routes = HostRoutes({"prices.azure.com": prices.server.base})
    with pytest.raises(CheckFailure) as info:
        offers_of(azure, "azure", executor, profile=azure_profile(), transport=routes)
    assert info.value.code == "error" and "500" in info.value.message


@pytest.mark.parametrize("name", ["lambda", "runpod", "vast", "azure"])
def test_a_silent_source_fails_within_its_deadline(name: str, executor: BlockingExecutor) -> None:
    with SilentServer() as silent:
        kwargs: dict[str, Any] = {"secrets": {"api_key": "key_0123456789abcdef"}}
        if name == "runpod":
            kwargs["config"] = {"endpoints": {"graphql": f"{silent.base}/graphql"}}
        elif name == "azure":
            kwargs = {"transport": HostRoutes({"prices.azure.com": silent.base})}
        else:
            kwargs["base_url"] = f"{silent.base}/api"
        source = {"lambda": lambda_labs, "runpod": runpod, "vast": vast, "azure": azure}[name]
        started = time.monotonic()
        with pytest.raises(CheckFailure) as info:
            offers_of(source, name, executor, deadline_s=0.6, **kwargs)
        elapsed = time.monotonic() - started
    assert info.value.code == "timeout"
    assert elapsed < 1.5
