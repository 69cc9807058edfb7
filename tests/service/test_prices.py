"""Prices that are true today (issue 21), through the service as the CLI, the API and the window
use it: the machine decides the price (a Lambda H100 is not priced as the A100), live prices
fetched with the stored key price the advice and the offers, a stale live price falls back to
the catalog saying so, and a price source that fails or hangs never blocks an advice.

Real counterparts: the Lambda Cloud contract fake (tests/fakes/lambda_cloud.py), a server that
never answers, the home's real price store and the Secret Service keyring.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from comfyvn_gui.store.prices import PriceStore
from tests.fakes.http import SilentServer
from tests.fakes.lambda_cloud import LambdaFake

pytestmark = pytest.mark.usefixtures("secret_service")

NO_GPU: dict[str, Any] = {"gpus": [], "source": "request"}
#: 2 A10G-hours of CG super-resolution: no local GPU, any zone, no budget.
WORKLOAD: dict[str, Any] = {"kind": "cg_super_res", "vram_gb": 20, "gpu_hours": 2}


@pytest.fixture
def lam(app_home: Path) -> Iterator[LambdaFake]:
    with LambdaFake() as server:
        yield server.reset()


def lambda_provider(svc: Service, fake: LambdaFake, pid: str = "my-lambda", **config: Any) -> None:
    svc.create_provider(
        "lambda",
        {
            "id": pid,
            "config": {"endpoints": {"api": fake.api_base}, "region": "us-east-1", **config},
            "secrets": {"api_key": fake.key},
        },
    )
    [valid] = svc.run_checks("validate", [pid], timeout_s=20)
    assert valid.status == "valid", valid.message


def advise(svc: Service, **request: Any) -> Any:
    return svc.advise({"workload": WORKLOAD, "local": NO_GPU, **request})


def test_a_lambda_h100_is_priced_as_an_h100_not_as_the_a100(app_home: Path) -> None:
    """The issue's case: a Lambda provider set to an H100 was priced at the A100's $1.10/hr
    and advised as the cheaper one. The machine decides the GPU and the price now."""
    svc = Service(resolve_home())

    def entry(pid: str, instance_type: str) -> dict[str, Any]:
        return {
            "id": pid,
            "template_id": "lambda",
            "name": pid,
            "active": True,
            "config": {"instance_type": instance_type, "region": "us-east-1"},
        }

    advice = advise(
        svc,
        providers=[entry("lam-h100", "gpu_1x_h100_pcie"), entry("lam-a100", "gpu_1x_a100")],
        health={"lam-h100": "healthy", "lam-a100": "healthy"},
    )
    by_id = {a.provider: a for a in [advice.chosen, *advice.alternatives] if a is not None}
    h100, a100 = by_id["lam-h100"], by_id["lam-a100"]
    assert (h100.machine, h100.gpu, h100.vram_gb) == ("gpu_1x_h100_pcie", "H100", 80)
    assert (a100.machine, a100.gpu) == ("gpu_1x_a100", "A100 40GB")
    catalog = svc.catalog.profile("lambda")
    assert h100.hourly_usd == catalog.machine("gpu_1x_h100_pcie").price("us-east-1")  # type: ignore[union-attr]
    assert a100.hourly_usd == catalog.machine("gpu_1x_a100").price("us-east-1")  # type: ignore[union-attr]
    assert h100.hourly_usd > a100.hourly_usd
    assert {h100.price_source, a100.price_source} == {"catalog"}
    assert h100.prices_as_of == a100.prices_as_of == catalog.pricing.prices_as_of.isoformat()
    # the H100 is faster; the choice is whichever costs less for these 2 A10G-hours, and the
    # reason says where its price comes from
    cheaper = min((h100, a100), key=lambda a: a.estimated_cost_usd or 0)
    assert advice.choice == cheaper.provider
    assert f"catalog price as of {catalog.pricing.prices_as_of.isoformat()}" in advice.reason
    # choosing the GPU picks the machine: an entry that names only the H100
    gpu_only = {**entry("lam-gpu", "x"), "config": {"region": "us-east-1"}, "gpu": "H100"}
    picked = advise(svc, providers=[gpu_only], health={"lam-gpu": "healthy"})
    assert picked.chosen is not None and picked.chosen.gpu == "H100"
    assert picked.chosen.machine in {m.id for m in catalog.machines_with("H100")}
    assert picked.chosen.hourly_usd == min(
        m.price("us-east-1") for m in catalog.machines_with("H100")
    )
    svc.close()


def test_live_prices_price_the_advice_and_the_offers_and_age_out_to_the_catalog(
    app_home: Path, lam: LambdaFake
) -> None:
    svc = Service(resolve_home())
    lambda_provider(svc, lam, instance_type="gpu_1x_a100")
    catalog_price = svc.catalog.profile("lambda").machine("gpu_1x_a100").price("us-east-1")  # type: ignore[union-attr]
    before = advise(svc)
    assert before.chosen is not None and before.chosen.price_source == "catalog"
    assert before.chosen.hourly_usd == catalog_price

    [record] = svc.run_refresh_prices()
    assert record.provider == "my-lambda" and record.error is None and record.offers
    # The fake lists gpu_1x_a100 at $1.29/hr with capacity in us-east-1.
    live = advise(svc)
    chosen = live.chosen
    assert chosen is not None and live.choice == "my-lambda"
    assert (chosen.price_source, chosen.hourly_usd, chosen.machine) == ("live", 1.29, "gpu_1x_a100")
    assert chosen.prices_as_of is not None
    assert datetime.now(UTC) - datetime.fromisoformat(chosen.prices_as_of) < timedelta(minutes=1)
    assert "live price from Lambda" in live.reason
    # A what-if that brings its own providers stays reproducible unless it asks for them.
    what_if = {
        "providers": [
            {
                "id": "my-lambda",
                "template_id": "lambda",
                "name": "x",
                "active": True,
                "config": {"instance_type": "gpu_1x_a100", "region": "us-east-1"},
            }
        ],
        "health": {"my-lambda": "healthy"},
    }
    assert advise(svc, **what_if).chosen.price_source == "catalog"
    assert advise(svc, **what_if, live_prices=True).chosen.price_source == "live"

    # The offers: the provider's live rows, the templates' catalog rows, cheapest first.
    offers = svc.offers(gpu="A100")
    mine = [o for o in offers if o.provider == "my-lambda"]
    assert mine and {o.source for o in mine} == {"live"}
    assert all(o.gpu.startswith("A100") for o in offers)
    assert [o.hourly_usd for o in offers] == sorted(o.hourly_usd for o in offers)
    assert any(not o.configured and o.source == "catalog" for o in offers)
    assert all(o.zone == "eu" for o in svc.offers(zone="eu"))
    assert all(o.hourly_usd <= 1.5 for o in svc.offers(max_price=1.5))
    assert all((o.vram_gb or 0) >= 48 for o in svc.offers(vram_gb=48))

    # Older than prices.max_age_h: the catalog's price, and the reason says why.
    store = PriceStore(resolve_home())
    kept = store.load()["my-lambda"]
    store.save([kept.model_copy(update={"taken_at": kept.taken_at - timedelta(hours=2)})])  # type: ignore[operator]
    svc.set_setting("prices.max_age_h", 1)
    stale = advise(svc)
    assert stale.chosen is not None and stale.chosen.price_source == "catalog"
    assert stale.chosen.hourly_usd == catalog_price
    assert "older than prices.max_age_h" in (stale.chosen.price_note or "")
    assert "older than prices.max_age_h, so the catalog's price is used" in stale.reason
    assert svc.stale_prices() == ["my-lambda"]
    svc.close()


def test_a_price_source_that_hangs_never_blocks_the_others_or_advice(
    app_home: Path, lam: LambdaFake
) -> None:
    """Two Lambda accounts refreshed at once, one behind a server that never answers: the
    refresh ends at its deadline with the working one's prices kept and the other's failure
    recorded with why; the advice prices the silent one from the catalog and says why."""
    svc = Service(resolve_home())
    lambda_provider(svc, lam, instance_type="gpu_1x_a100")
    with SilentServer() as silent:
        svc.create_provider(
            "lambda",
            {
                "id": "slow-lambda",
                "config": {
                    "endpoints": {"api": silent.base},
                    "region": "us-east-1",
                    "instance_type": "gpu_1x_a100",
                },
                "secrets": {"api_key": lam.key},
            },
        )
        started = time.monotonic()
        records = {r.provider: r for r in svc.run_refresh_prices(timeout_s=1.0)}
        took = time.monotonic() - started
    assert took < 5  # the deadline ended it, not the silent server
    assert records["my-lambda"].error is None and records["my-lambda"].offers
    slow = records["slow-lambda"]
    assert slow.taken_at is None and slow.offers == []
    assert slow.error and lam.key not in slow.error
    advice = svc.advise(
        {"workload": WORKLOAD, "local": NO_GPU, "health": {"slow-lambda": "healthy"}}
    )
    assert advice.choice == "my-lambda" and advice.chosen is not None
    assert advice.chosen.price_source == "live"
    [other] = [a for a in advice.alternatives if a.provider == "slow-lambda"]
    assert other.price_source == "catalog"
    assert "could not be refreshed" in (other.price_note or "")
    # the store keeps the failure with its time
    kept = PriceStore(resolve_home()).load()["slow-lambda"]
    assert kept.error == slow.error and kept.error_at is not None and kept.offers == []
    svc.close()


def test_choosing_a_gpu_picks_the_machine_and_a_machine_decides_the_gpu(app_home: Path) -> None:
    """The provider form's GPU and machine are one choice: the entry dispatch launches is the
    one the advice priced. A GPU and a machine that disagree are refused, naming the machines
    that carry that GPU, and nothing is saved."""
    from comfyvn_gui.core.errors import InputError

    svc = Service(resolve_home())
    profile = svc.catalog.profile("lambda")
    h100s = profile.machines_with("H100", "us-east-1")
    entry = svc.create_provider(
        "lambda",
        {
            "id": "lam",
            "gpu": "H100",
            "config": {"region": "us-east-1"},
            "secrets": {"api_key": "x" * 12},
        },
    )
    assert entry.gpu == "H100" and entry.config["instance_type"] == h100s[0].id
    moved, _ = svc.register_provider({"id": "lam", "config": {"instance_type": "gpu_1x_a100"}})
    assert moved.gpu == "A100 40GB" and moved.config["instance_type"] == "gpu_1x_a100"
    with pytest.raises(InputError) as refused:
        svc.register_provider(
            {"id": "lam", "gpu": "H100", "config": {"instance_type": "gpu_1x_a100"}}
        )
    assert set(refused.value.fields) == {"gpu", "instance_type"}
    assert all(m.id in refused.value.message for m in h100s)
    assert svc.get_provider("lam").config["instance_type"] == "gpu_1x_a100"  # unchanged
    svc.close()


def test_the_health_monitor_refreshes_stale_prices_in_the_background(
    app_home: Path, lam: LambdaFake
) -> None:
    """The window and ``serve`` run the health monitor off the GUI thread; after a round it
    fetches the live prices that are missing or stale, at most every PRICE_RETRY_S."""
    import asyncio

    svc = Service(resolve_home())
    lambda_provider(svc, lam, instance_type="gpu_1x_a100")
    assert svc.stale_prices() == ["my-lambda"]
    assert asyncio.run(svc.monitor.refresh_prices()) is True
    assert svc.stale_prices() == []
    assert PriceStore(resolve_home()).load()["my-lambda"].offers
    before = len(lam.requests)
    assert asyncio.run(svc.monitor.refresh_prices()) is False  # not again so soon
    assert len(lam.requests) == before
    svc.close()
