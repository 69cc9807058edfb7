"""Fixtures of the HTTP API tests: the product's own server on a free port, and a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.api_server import ApiServer, api_server
from tests.fakes.runpod import RunPodFake, health_body

# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runpod_server() -> Iterator[RunPodFake]:
    with RunPodFake(endpoints={"ep-a": health_body(idle=1, running=1)}) as fake:
        yield fake


@pytest.fixture
def runpod(runpod_server: RunPodFake) -> RunPodFake:
    fake: RunPodFake = runpod_server.reset()
    return fake


@pytest.fixture
def srv(app_home: Path) -> Iterator[ApiServer]:
    with api_server() as server:
        yield server


@pytest.fixture
def client(srv: ApiServer) -> Iterator[httpx.Client]:
    with srv.client() as c:
        yield c
