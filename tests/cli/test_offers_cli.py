"""``comfyvn-gui offers``: the table a person reads, the exit codes, and ``--refresh`` fetching
live prices with the stored key (the Lambda Cloud contract fake; a closed port for a source
that cannot be reached)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.cli.test_cli import cli
from tests.fakes.http import closed_port_url
from tests.fakes.lambda_cloud import LambdaFake

pytestmark = pytest.mark.usefixtures("secret_service")


@pytest.fixture
def lam(app_home: Path) -> Iterator[LambdaFake]:
    with LambdaFake() as server:
        yield server.reset()


def add_lambda(pid: str, api: str, key: str) -> None:
    svc = Service(resolve_home())
    svc.create_provider(
        "lambda",
        {
            "id": pid,
            "config": {"endpoints": {"api": api}, "region": "us-east-1"},
            "secrets": {"api_key": key},
        },
    )
    svc.close()


def test_the_table_lists_templates_cheapest_first_and_a_bad_zone_is_bad_input(
    capsys: pytest.CaptureFixture[str], app_home: Path
) -> None:
    code, out, err = cli(capsys, "offers", "--vram", "40")
    assert code == 0 and err == ""
    header, _rule, *rows = out.splitlines()
    assert header.split() == [
        "PROVIDER",
        "MACHINE",
        "GPU",
        "VRAM",
        "REGION",
        "PRICE",
        "BILLED",
        "SOURCE",
        "AGE",
    ]
    assert rows and all("(not configured)" in r and "catalog" in r for r in rows)
    prices = [float(r.split("$")[1].split("/hr")[0]) for r in rows]
    assert prices == sorted(prices)
    code, out, err = cli(capsys, "offers", "--zone", "mars")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--zone 'mars' is not a residency zone" in err
    code, _out, err = cli(capsys, "offers", "--max-price", "-1")
    assert code == 2 and "is not a number of at least 0" in err


def test_refresh_fetches_live_prices_and_a_source_that_fails_exits_1(
    capsys: pytest.CaptureFixture[str], lam: LambdaFake
) -> None:
    add_lambda("my-lambda", lam.api_base, lam.key)
    code, out, err = cli(capsys, "offers", "--refresh", "--gpu", "A100")
    assert code == 0, err
    live = [r for r in out.splitlines() if r.startswith("my-lambda")]
    assert live and all(" live " in r for r in live)
    assert any("gpu_1x_a100" in r and "$1.29/hr" in r for r in live)

    add_lambda("gone-lambda", closed_port_url(), lam.key)
    code, out, err = cli(capsys, "offers", "--refresh", "--gpu", "A100")
    assert code == 1
    assert "live prices could not be refreshed for gone-lambda" in err
    assert lam.key not in err and lam.key not in out
    assert any(r.startswith("my-lambda") for r in out.splitlines())  # still listed
