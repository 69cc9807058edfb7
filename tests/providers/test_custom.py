"""The custom ComfyUI endpoint adapter through ``Service.check``, against the ComfyUI contract
fake (tests/fakes/comfyui.py: ``running_comfyui``, a bearer token enforced as a proxy in front
of ComfyUI would, HTTPS with a trustme CA from tests/fakes/docker.py's PKI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.checks import CheckResult
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext, CheckFailure
from comfyvn_gui.providers.custom import comfyui_access
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.comfyui import CPU_ONLY, RTX_3060, running_comfyui
from tests.fakes.docker import Pki, make_pki
from tests.fakes.http import arun, closed_port_url

pytestmark = pytest.mark.usefixtures("secret_service")

TOKEN = "custom-comfy-token-canary-5d2e81"
TERMS = {"hourly_usd": "0.35", "zones": "eu", "billing_increment_minutes": "1"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def svc(app_home: Path) -> Service:
    return Service(resolve_home())


def add_box(
    svc: Service, endpoint: str, secrets: dict[str, Any] | None = None, **config: Any
) -> None:
    payload: dict[str, Any] = {"id": "box", "config": {"endpoint": endpoint, **TERMS, **config}}
    if secrets:
        payload["secrets"] = secrets
    svc.create_provider("custom", payload)


def check(svc: Service, kind: str, pid: str = "box") -> CheckResult:
    [result] = arun(svc.check(kind, [pid], timeout_s=10))  # type: ignore[arg-type]
    return result


def assert_no_secret(svc: Service, *results: CheckResult) -> None:
    for r in results:
        assert TOKEN not in r.model_dump_json()
    for path in (svc.home.data_dir / "checks.json", svc.home.log_dir / "compute_advisor.log"):
        if path.exists():
            assert TOKEN not in path.read_text("utf-8"), path


def test_a_comfyui_with_its_token_is_valid_reports_its_gpu_and_activates(svc: Service) -> None:
    with running_comfyui(token=TOKEN) as server:
        add_box(svc, server.url, {"api_token": TOKEN})
        result = check(svc, "validate")
        health = check(svc, "health")
        sent = set(server.authorizations)
    assert result.status == "valid", result.message
    assert sent == {f"Bearer {TOKEN}"}  # over loopback http the token may go
    d = result.detail
    assert d["identity"].startswith("ComfyUI ") and "127.0.0.1" in d["identity"]
    assert d["auth"] == "API token"
    assert d["reported_vram_gb"] == 24.0
    assert d["gpus"][0]["name"] == "NVIDIA GeForce RTX 4090"
    assert d["stated"]["hourly_usd"] == 0.35 and d["stated"]["zones"] == ["eu"]
    assert "RTX 4090 24.0 GB" in result.message and "$0.35/hr" in result.message
    assert svc.get_provider("box").active
    assert health.status == "healthy", health.message
    assert health.detail["reported_vram_gb"] == 24.0
    assert_no_secret(svc, result, health)


def test_the_reported_vram_reaches_the_advisor(svc: Service) -> None:
    with running_comfyui(device=RTX_3060) as server:
        add_box(svc, server.url)
        assert check(svc, "validate").status == "valid"
        assert check(svc, "health").status == "healthy"
    workload = {"kind": "cg_super_res", "asset_type": "cg", "items": 1, "width": 1024,
                "height": 1024, "vram_gb": 16}  # fmt: skip
    advice = svc.advise({"workload": workload, "local": {"gpus": []}})
    [box] = [a for a in advice.alternatives if a.provider == "box"]
    assert box.vram_gb == 12.0 and box.health == "healthy"
    assert box.excluded_because == (
        "insufficient VRAM (12GB reported by its last health check < 16GB required for "
        "CG super-res)"
    )


def test_a_wrong_token_is_invalid_credentials_naming_api_token(svc: Service) -> None:
    with running_comfyui(token=TOKEN) as server:
        add_box(svc, server.url, {"api_token": "not-the-right-token"})
        result = check(svc, "validate")
        health = check(svc, "health")
    assert result.status == "invalid_credentials"
    assert result.fields == ["api_token"]
    assert "rejected the API token (401 Unauthorized)" in result.message
    assert (health.status, health.code) == ("unhealthy", "invalid_credentials")
    assert not svc.get_provider("box").active


def test_no_token_where_one_is_needed_says_to_set_it(svc: Service) -> None:
    with running_comfyui(token=TOKEN) as server:
        add_box(svc, server.url)
        result = check(svc, "validate")
        assert set(server.authorizations) == {None}
    assert (result.status, result.fields) == ("invalid_credentials", ["api_token"])
    assert "set the API token" in result.message


def test_an_unreachable_server_names_the_endpoint(svc: Service) -> None:
    url = closed_port_url()
    add_box(svc, url)
    result = check(svc, "validate")
    health = check(svc, "health")
    assert result.status == "unreachable"
    assert result.fields == ["endpoint"]
    assert "ComfyUI at http://127.0.0.1:" in result.message and "does not answer" in result.message
    assert (health.status, health.code, health.fields) == ("unhealthy", "unreachable", ["endpoint"])


def test_an_endpoints_override_is_the_address_and_is_named(svc: Service) -> None:
    add_box(svc, "https://unused.invalid", endpoints={"comfyui": closed_port_url()})
    result = check(svc, "validate")
    assert (result.status, result.fields) == ("unreachable", ["endpoints"])


def test_https_with_the_servers_ca_sends_the_token(svc: Service, pki: Pki) -> None:
    tls = pki.server_context(require_client_cert=False)
    with running_comfyui(ssl_context=tls, token=TOKEN) as server:
        assert server.url.startswith("https://127.0.0.1:")
        add_box(svc, server.url, {"api_token": TOKEN}, ca_bundle=str(pki.ca_file))
        result = check(svc, "validate")
        sent = set(server.authorizations)
    assert result.status == "valid", result.message
    assert sent == {f"Bearer {TOKEN}"}
    assert result.message.startswith("ComfyUI ") and "https://127.0.0.1:" in result.message
    assert_no_secret(svc, result)


def test_https_without_the_ca_names_the_ca_field(svc: Service, pki: Pki) -> None:
    tls = pki.server_context(require_client_cert=False)
    with running_comfyui(ssl_context=tls, token=TOKEN) as server:
        add_box(svc, server.url, {"api_token": TOKEN})
        result = check(svc, "validate")
        assert server.authorizations == []  # refused in the handshake: the token never went
    assert result.status == "misconfigured"
    assert result.fields == ["ca_bundle"]
    assert "could not be verified" in result.message


def test_a_token_is_never_sent_in_clear_to_another_machine(svc: Service) -> None:
    add_box(svc, "http://192.0.2.10:8188", {"api_token": TOKEN})
    result = check(svc, "validate")
    assert result.status == "misconfigured"
    assert result.fields == ["endpoint", "api_token"]
    assert "plain http://" in result.message and "clear the token" in result.message
    assert_no_secret(svc, result)


def test_without_a_token_plain_http_is_fine_and_nothing_is_sent(svc: Service) -> None:
    with running_comfyui() as server:
        add_box(svc, server.url.replace("127.0.0.1", "localhost"))
        result = check(svc, "validate")
        assert set(server.authorizations) == {None}
    assert result.status == "valid", result.message
    assert result.detail["auth"] == "no token"


def test_a_cpu_only_comfyui_passes_validation_and_is_degraded(svc: Service) -> None:
    with running_comfyui(device=CPU_ONLY) as server:
        add_box(svc, server.url)
        result = check(svc, "validate")
        health = check(svc, "health")
    assert result.status == "valid"
    assert "no GPU" in result.message
    assert (health.status, health.code) == ("degraded", "misconfigured")


def test_an_address_that_is_not_comfyui_is_misconfigured(svc: Service) -> None:
    with running_comfyui() as server:
        add_box(svc, server.url + "/not-comfyui")
        result = check(svc, "validate")
    assert (result.status, result.fields) == ("misconfigured", ["endpoint"])
    assert "does not look like ComfyUI" in result.message


def test_a_stated_vram_above_the_reported_one_is_noted(svc: Service) -> None:
    with running_comfyui(device=RTX_3060) as server:
        add_box(svc, server.url, vram_gb="48")
        result = check(svc, "validate")
    assert result.status == "valid"
    assert "you stated 48 GB of VRAM but ComfyUI reports 12 GB" in result.message


def test_validation_needs_the_price_and_zones(svc: Service) -> None:
    svc.create_provider("custom", {"id": "box", "config": {"endpoint": closed_port_url()}})
    assert svc.missing_fields(svc.get_provider("box")) == ["hourly_usd", "zones"]
    result = check(svc, "validate")
    assert (result.status, result.fields) == ("misconfigured", ["hourly_usd", "zones"])
    assert "Price per hour (USD), Residency zones are not set" in result.message


def test_a_hand_edited_bad_term_is_misconfigured_naming_it(tmp_path: Path) -> None:
    from comfyvn_gui.core.catalog import load_catalog

    entry = ProviderEntry(
        id="box",
        template_id="custom",
        name="Box",
        config={"endpoint": "https://comfy.example.net", "hourly_usd": "-2", "zones": "mars"},
    )
    pool = BlockingExecutor(max_workers=1)

    async def run() -> Any:
        import asyncio

        from comfyvn_gui.providers.base import run_check
        from comfyvn_gui.providers.custom import CustomAdapter

        ctx = CheckContext(
            provider=entry,
            profile=load_catalog().profile("custom"),
            secrets={},
            deadline=asyncio.get_running_loop().time() + 10,
            executor=pool,
        )
        return await run_check(CustomAdapter(), ctx, "validate")

    try:
        result = arun(run())
    finally:
        pool.shutdown()
    assert result.status == "misconfigured"
    assert set(result.fields) == {"hourly_usd", "zones"}
    assert "must be 0 or more" in result.message and "'mars' is not one of" in result.message


def test_comfyui_access_gives_dispatch_the_address_ca_and_token() -> None:
    from comfyvn_gui.core.catalog import load_catalog

    profile = load_catalog().profile("custom")

    def access(url: str, **config: Any) -> Any:
        entry = ProviderEntry(
            id="box", template_id="custom", name="Box", config={"endpoint": url, **config}
        )
        ctx = CheckContext(
            provider=entry,
            profile=profile,
            secrets={"api_token": TOKEN},
            deadline=0.0,
            executor=BlockingExecutor(max_workers=1),
        )
        return comfyui_access(ctx)

    remote = access("https://comfy.example.net/", ca_bundle="/etc/ca.pem")
    assert remote.url == "https://comfy.example.net"
    assert remote.headers == {"Authorization": f"Bearer {TOKEN}"}
    assert (remote.verify, remote.tls) == ("/etc/ca.pem", True)
    loop = access("http://127.0.0.1:8188", ca_bundle="/etc/ca.pem")
    assert loop.send_token and loop.verify is None  # no TLS: the CA does not apply
    with pytest.raises(CheckFailure) as info:
        access("http://comfy.lan:8188")
    assert info.value.code == "misconfigured" and info.value.fields == ["endpoint", "api_token"]
