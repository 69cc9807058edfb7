"""Opening a provider's ComfyUI for dispatch: local, and LAN under its validator's TLS and
token rules (the ComfyUI contract fake, served over HTTPS by a trustme CA for the LAN)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.core.runs import shipped_template
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext
from comfyvn_gui.providers.comfyui import ComfyUIError
from comfyvn_gui.providers.comfyui_runs import execute
from comfyvn_gui.providers.comfyui_target import open_comfyui
from tests.fakes.comfyui import running_comfyui
from tests.fakes.docker import Pki, make_pki
from tests.fakes.http import arun

CATALOG = load_catalog()
TOKEN = "lan-token-0123456789"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def executor() -> Iterator[BlockingExecutor]:
    pool = BlockingExecutor(max_workers=2)
    yield pool
    pool.shutdown()


def context(
    entry: ProviderEntry, secrets: dict[str, str], executor: BlockingExecutor
) -> CheckContext:
    return CheckContext(
        provider=entry,
        profile=CATALOG.profile(entry.template_id),
        secrets=secrets,
        deadline=asyncio.get_running_loop().time() + 60,
        executor=executor,
    )


def super_res(ctx: CheckContext, tmp_path: Path) -> Any:
    src = tmp_path / "cg.png"
    Image.new("RGB", (24, 16), (1, 2, 3)).save(src)

    async def main() -> Any:
        async with open_comfyui(ctx) as client:
            return await execute(
                client,
                job_id=1,
                kind="cg_super_res",
                items=1,
                inputs=[src],
                out_dir=tmp_path / "out",
                template=shipped_template("cg_super_res"),
            )

    return main()


def test_the_local_provider_runs_on_its_comfyui_endpoint(
    tmp_path: Path, executor: BlockingExecutor
) -> None:
    with running_comfyui() as server:
        entry = ProviderEntry(
            id="local",
            template_id="local",
            name="This computer",
            active=True,
            config={"endpoints": {"comfyui": server.url}},
        )

        async def run() -> Any:
            return await super_res(context(entry, {}, executor), tmp_path)

        report = arun(run())
        assert set(server.authorizations) == {None}
    assert report.outcome == "completed" and len(report.outputs) == 1


def lan_entry(comfyui: str, pki: Pki, **options: Any) -> ProviderEntry:
    return ProviderEntry(
        id="nas",
        template_id="lan",
        name="NAS",
        active=True,
        config={
            "endpoint": "https://127.0.0.1:2376",
            "endpoints": {"comfyui": comfyui},
            **options,
        },
    )


def test_a_lan_node_over_https_with_its_ca_gets_the_token(
    tmp_path: Path, pki: Pki, executor: BlockingExecutor
) -> None:
    tls = pki.server_context(require_client_cert=False)
    with running_comfyui(ssl_context=tls) as server:
        assert server.url.startswith("https://127.0.0.1:")
        entry = lan_entry(server.url, pki, ca_bundle=str(pki.ca_file))

        async def run() -> Any:
            return await super_res(context(entry, {"api_token": TOKEN}, executor), tmp_path)

        report = arun(run())
        sent = set(server.authorizations)
        paths = {p for _, p in server.requests}
    assert report.outcome == "completed"
    assert sent == {f"Bearer {TOKEN}"}  # every request, the WebSocket's included
    assert "/ws" in paths


def test_the_token_never_goes_to_another_host_or_in_clear(
    tmp_path: Path, pki: Pki, executor: BlockingExecutor
) -> None:
    with running_comfyui() as server:  # plain http on 127.0.0.1 while Docker is at localhost
        entry = lan_entry(server.url.replace("127.0.0.1", "localhost"), pki)

        async def run() -> Any:
            return await super_res(context(entry, {"api_token": TOKEN}, executor), tmp_path)

        report = arun(run())
        assert set(server.authorizations) == {None}
    assert report.outcome == "completed"


def test_an_untrusted_certificate_is_refused_naming_the_ca_field(
    tmp_path: Path, pki: Pki, executor: BlockingExecutor
) -> None:
    tls = pki.server_context(require_client_cert=False)
    with running_comfyui(ssl_context=tls) as server:
        entry = lan_entry(server.url, pki)  # no ca_bundle: the node's own CA is not trusted

        async def run() -> Any:
            return await super_res(context(entry, {}, executor), tmp_path)

        with pytest.raises(ComfyUIError) as info:
            arun(run())
        assert server.uploads == {}
    assert info.value.code == "unreachable"
    assert "TLS certificate of ComfyUI at https://127.0.0.1:" in info.value.message
    assert "CA certificate" in info.value.message


def test_a_lan_node_without_a_comfyui_address_says_what_to_set(
    tmp_path: Path, pki: Pki, executor: BlockingExecutor
) -> None:
    entry = ProviderEntry(
        id="nas",
        template_id="lan",
        name="NAS",
        active=True,
        config={"endpoint": "https://127.0.0.1:2376"},
    )

    async def run() -> Any:
        return await super_res(context(entry, {}, executor), tmp_path)

    with pytest.raises(ComfyUIError, match=r"no ComfyUI address: set its endpoints.comfyui"):
        arun(run())


def test_other_providers_say_dispatch_is_not_built_for_them(
    tmp_path: Path, executor: BlockingExecutor
) -> None:
    entry = ProviderEntry(id="rp", template_id="runpod", name="RunPod", active=True)

    async def run() -> Any:
        return await super_res(context(entry, {}, executor), tmp_path)

    with pytest.raises(ComfyUIError, match="not built yet"):
        arun(run())
