"""The unRAID / LAN and Local adapters through ``Service.check``, against real counterparts.

LAN: a Docker Engine API contract fake on HTTPS (tests/fakes/docker.py: trustme CA, server
certificate for 127.0.0.1, client certificates for mutual TLS) and a ComfyUI ``/system_stats``
fake (tests/fakes/comfyui.py). Local: this machine has no NVIDIA GPU and no driver, so the
no-driver path runs for real; the NVML reading itself runs against a small fake NVML module,
and ``test_real_gpu_snapshot`` (marker ``gpu``) checks it on a real NVIDIA GPU.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from comfyvn_gui.core import wording
from comfyvn_gui.core.checks import CheckResult
from comfyvn_gui.providers import local as local_adapter
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.comfyui import CPU_ONLY, RTX_3060, RTX_4090, comfyui_server
from tests.fakes.docker import DockerFake, Pki, make_pki
from tests.fakes.http import FakeServer, SilentServer, arun, closed_port_url

pytestmark = pytest.mark.usefixtures("secret_service")

TOKEN = "lan-proxy-token-canary-7f3a9c41"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def svc(app_home: Path) -> Service:
    return Service(resolve_home())


def add_nas(svc: Service, endpoint: str, **config: Any) -> None:
    svc.create_provider("lan", {"id": "nas", "config": {"endpoint": endpoint, **config}})


def check(svc: Service, kind: str, pid: str = "nas", timeout_s: float = 10) -> CheckResult:
    [result] = arun(svc.check(kind, [pid], timeout_s=timeout_s))  # type: ignore[arg-type]
    return result


def assert_no_secret(svc: Service, *results: CheckResult, secret: str = TOKEN) -> None:
    for r in results:
        assert secret not in r.model_dump_json()
    for path in (svc.home.data_dir / "checks.json", svc.home.log_dir / "compute_advisor.log"):
        if path.exists():
            assert secret not in path.read_text("utf-8"), path


# --------------------------------------------------------------------------- LAN: Docker


def test_token_valid_reports_docker_version_and_activates(svc: Service, pki: Pki) -> None:
    with DockerFake(pki, token=TOKEN) as docker:
        add_nas(svc, docker.base, api_token=TOKEN, ca_bundle=str(pki.ca_file))
        result = check(svc, "validate")
        health = check(svc, "health")
    assert result.status == "valid", result.message
    assert result.message.startswith("Docker 27.3.1 on 127.0.0.1 (API 1.47, linux/amd64")
    d = result.detail
    assert d["identity"] == "Docker 27.3.1 on 127.0.0.1"
    assert (d["docker_version"], d["api_version"], d["min_api_version"]) == (
        "27.3.1",
        "1.47",
        "1.24",
    )
    assert (d["os"], d["arch"], d["kernel_version"]) == ("linux", "amd64", "6.1.106-Unraid")
    assert d["auth"] == "API token" and d["comfyui"] == "not configured"
    assert svc.get_provider("nas").active is True
    assert health.status == "healthy" and health.code is None
    assert health.detail["api_version"] == "1.47"
    # What went over the wire: GET /_ping, GET /version (validate), GET /_ping (health).
    assert [(r.method, r.path) for r in docker.requests] == [
        ("GET", "/_ping"),
        ("GET", "/version"),
        ("GET", "/_ping"),
    ]
    assert all(r.bearer == TOKEN for r in docker.requests)
    assert_no_secret(svc, result, health)


def test_wrong_token_is_invalid_credentials_naming_api_token(svc: Service, pki: Pki) -> None:
    wrong = "not-the-proxy-token-5512"
    with DockerFake(pki, token=TOKEN) as docker:
        add_nas(svc, docker.base, api_token=wrong, ca_bundle=str(pki.ca_file))
        result = check(svc, "validate")
        health = check(svc, "health")
    assert result.status == "invalid_credentials"
    assert result.fields == ["api_token"]
    assert "rejected the API token (401" in result.message
    assert svc.get_provider("nas").active is False
    assert (health.status, health.code) == ("unhealthy", "invalid_credentials")
    assert [r.path for r in docker.requests] == ["/_ping", "/_ping"]
    assert_no_secret(svc, result, health, secret=wrong)


def test_no_credentials_on_a_token_proxy_names_both_ways_in(svc: Service, pki: Pki) -> None:
    with DockerFake(pki, token=TOKEN) as docker:
        add_nas(svc, docker.base, ca_bundle=str(pki.ca_file))
        result = check(svc, "validate")
    assert result.status == "invalid_credentials"
    assert result.fields == ["api_token", "client_cert"]
    assert "asks for credentials" in result.message
    assert docker.requests[0].bearer is None


def test_mutual_tls_with_the_nodes_client_certificate_is_valid(svc: Service, pki: Pki) -> None:
    with DockerFake(pki, mtls=True) as docker:
        add_nas(
            svc,
            docker.base,
            ca_bundle=str(pki.ca_file),
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
        )
        result = check(svc, "validate")
    assert result.status == "valid", result.message
    assert result.detail["auth"] == "mutual TLS"
    assert docker.handshake_failures == []
    assert [r.path for r in docker.requests] == ["/_ping", "/version"]
    assert all(r.bearer is None for r in docker.requests)
    # The key's content never leaves the file: only its path is configuration.
    key_text = pki.client_key.read_text()
    assert key_text.strip().splitlines()[1] not in result.model_dump_json()


@pytest.mark.parametrize("tls_max", [None, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
@pytest.mark.parametrize("cert", ["rogue", "none"])
def test_mutual_tls_refused_handshake_names_client_cert(
    svc: Service, pki: Pki, cert: str, tls_max: ssl.TLSVersion | None
) -> None:
    config: dict[str, Any] = {"ca_bundle": str(pki.ca_file)}
    if cert == "rogue":  # a certificate from another CA
        config.update(client_cert=str(pki.rogue_cert), client_key=str(pki.rogue_key))
    with DockerFake(pki, mtls=True, tls_max=tls_max) as docker:
        add_nas(svc, docker.base, **config)
        result = check(svc, "validate")
        health = check(svc, "health")
    assert docker.requests == []  # nothing got past the TLS handshake
    assert docker.handshake_failures
    assert result.fields == ["client_cert", "client_key"], result.message
    if cert == "rogue":
        assert result.status == "invalid_credentials"
        assert "refused this computer's client certificate" in result.message
    else:
        assert result.status == "misconfigured"
        # OpenSSL on TLS 1.2 only says "handshake failure" (Docker's Go says bad_certificate).
        assert "requires a client certificate" in result.message
    assert health.status == "unhealthy" and health.code == result.status


def test_untrusted_node_certificate_needs_ca_bundle(svc: Service, pki: Pki) -> None:
    with DockerFake(pki, token=TOKEN) as docker:
        add_nas(svc, docker.base, api_token=TOKEN)
        refused = check(svc, "validate")
        assert docker.requests == []  # the token was never sent to an unverified server
        svc.register_provider({"id": "nas", "config": {"ca_bundle": str(pki.ca_file)}})
        accepted = check(svc, "validate")
    assert refused.status == "misconfigured"
    assert refused.fields == ["ca_bundle"]
    assert "could not be verified" in refused.message
    assert accepted.status == "valid", accepted.message
    assert_no_secret(svc, refused, accepted)


def test_plain_http_to_another_host_is_refused_before_connecting(svc: Service) -> None:
    add_nas(svc, "http://192.0.2.10:2375", api_token=TOKEN)
    started = time.monotonic()
    result = check(svc, "validate")
    assert time.monotonic() - started < 3
    assert result.status == "misconfigured"
    assert result.fields == ["endpoint"]
    assert "plain http://" in result.message and "tunnel" in result.message
    assert_no_secret(svc, result)


def test_plain_http_on_loopback_is_allowed_for_ssh_tunnels(svc: Service, pki: Pki) -> None:
    with DockerFake(pki, token=TOKEN, tls=False) as docker:
        assert docker.base.startswith("http://127.0.0.1:")
        add_nas(svc, docker.base, api_token=TOKEN)
        result = check(svc, "validate")
    assert result.status == "valid", result.message
    assert [r.path for r in docker.requests] == ["/_ping", "/version"]


def test_docker_endpoint_override_wins_over_the_endpoint_field(svc: Service, pki: Pki) -> None:
    with DockerFake(pki, token=TOKEN) as docker:
        add_nas(
            svc,
            "https://nas.invalid:2376",
            api_token=TOKEN,
            ca_bundle=str(pki.ca_file),
            # A base with an API version, as `docker -H` users pin one: Docker accepts both.
            endpoints={"docker": docker.base + "/v1.43/"},
        )
        result = check(svc, "validate")
    assert result.status == "valid", result.message
    assert [r.path for r in docker.requests] == ["/v1.43/_ping", "/v1.43/version"]


def test_missing_endpoint_is_misconfigured(svc: Service) -> None:
    svc.create_provider("lan", {"id": "nas", "config": {"api_token": TOKEN}})
    result = check(svc, "validate")
    assert (result.status, result.fields) == ("misconfigured", ["endpoint"])
    assert "Docker API endpoint is not set" in result.message


@pytest.mark.parametrize(
    ("status", "headers", "body", "says"),
    [
        (200, {"Content-Type": "text/html"}, "<html><form>Sign in</form></html>", "HTML page"),
        (200, {"Content-Type": "text/plain"}, "OK", "without Docker's Api-Version header"),
        (302, {"Location": "https://127.0.0.1/login?next=/_ping"}, "", "redirects /_ping"),
    ],
    ids=["html-login-page", "ok-without-api-version", "redirect-to-login"],
)
def test_not_a_docker_api_is_misconfigured(
    svc: Service, pki: Pki, status: int, headers: dict[str, str], body: str, says: str
) -> None:
    server = FakeServer(ssl_context=pki.server_context(require_client_cert=False))
    server.route("GET", "/_ping")(lambda req: (status, headers, body))
    with server:
        add_nas(svc, server.base, api_token=TOKEN, ca_bundle=str(pki.ca_file))
        result = check(svc, "validate")
    assert result.status == "misconfigured"
    assert result.fields == ["endpoint"]
    assert "does not look like a Docker Engine API" in result.message
    assert says in result.message
    assert [r.path for r in server.requests] == ["/_ping"]
    assert svc.get_provider("nas").active is False


def test_proxy_asking_for_a_client_certificate_names_client_cert(svc: Service, pki: Pki) -> None:
    """nginx with ssl_verify_client finishes the handshake and answers 400 in HTML."""
    page = "<html><head><title>400 No required SSL certificate was sent</title></head></html>"
    server = FakeServer(ssl_context=pki.server_context(require_client_cert=False))
    server.route("GET", "/_ping")(lambda req: (400, {"Content-Type": "text/html"}, page))
    with server:
        add_nas(svc, server.base, ca_bundle=str(pki.ca_file))
        result = check(svc, "validate")
    assert (result.status, result.fields) == ("misconfigured", ["client_cert", "client_key"])
    assert "requires a client certificate" in result.message


def test_docker_not_answering_is_unreachable_and_unhealthy(svc: Service, pki: Pki) -> None:
    add_nas(svc, closed_port_url().replace("http://", "https://"), ca_bundle=str(pki.ca_file))
    result = check(svc, "validate")
    health = check(svc, "health")
    assert (result.status, result.fields) == ("unreachable", ["endpoint"])
    assert (health.status, health.code) == ("unhealthy", "unreachable")


# --------------------------------------------------------------------------- LAN: ComfyUI


def test_comfyui_reports_gpus_and_vram(svc: Service, pki: Pki) -> None:
    with DockerFake(pki, token=TOKEN) as docker, comfyui_server([RTX_4090, RTX_3060]) as comfy:
        add_nas(
            svc,
            docker.base,
            api_token=TOKEN,
            ca_bundle=str(pki.ca_file),
            endpoints={"comfyui": comfy.base},
        )
        result = check(svc, "validate")
        health = check(svc, "health")
    assert result.status == "valid", result.message
    for r in (result, health):
        assert r.detail["comfyui"] == "running"
        assert r.detail["comfyui_version"] == "0.3.27"
        gpus = r.detail["gpus"]
        assert [(g["name"], g["vram_total_gb"]) for g in gpus] == [
            ("NVIDIA GeForce RTX 4090", 24.0),
            ("NVIDIA GeForce RTX 3060", 12.0),
        ]
        assert gpus[0]["vram_free_gb"] == 21.3
        assert gpus[0]["vram_total_bytes"] == RTX_4090.vram_total
        assert r.detail["reported_vram_gb"] == 24.0
    assert "ComfyUI: 2 GPUs: NVIDIA GeForce RTX 4090 24.0 GB" in result.message
    assert health.status == "healthy"
    assert [(r.method, r.path) for r in comfy.requests] == [("GET", "/system_stats")] * 2
    # ComfyUI on the same (loopback) host as the Docker API: behind the same proxy.
    assert all(r.bearer == TOKEN for r in comfy.requests)
    assert_no_secret(svc, result, health)


def test_comfyui_down_while_docker_answers_is_degraded(svc: Service, pki: Pki) -> None:
    with DockerFake(pki, token=TOKEN) as docker:
        add_nas(
            svc,
            docker.base,
            api_token=TOKEN,
            ca_bundle=str(pki.ca_file),
            endpoints={"comfyui": closed_port_url()},
        )
        health = check(svc, "health")
        result = check(svc, "validate")
    assert (health.status, health.code) == ("degraded", "unreachable")
    assert health.detail["comfyui"] == "not answering"
    assert "does not answer" in health.message
    assert "reported_vram_gb" not in health.detail
    # Validation is about Docker's credentials: still valid, saying ComfyUI is down.
    assert result.status == "valid"
    assert result.detail["comfyui"] == "not answering"


def test_comfyui_without_gpu_is_degraded(svc: Service, pki: Pki) -> None:
    with DockerFake(pki, token=TOKEN) as docker, comfyui_server([CPU_ONLY]) as comfy:
        add_nas(
            svc,
            docker.base,
            api_token=TOKEN,
            ca_bundle=str(pki.ca_file),
            endpoints={"comfyui": comfy.base},
        )
        health = check(svc, "health")
    assert (health.status, health.code) == ("degraded", "misconfigured")
    assert health.detail["gpus"] == [] and "reported_vram_gb" not in health.detail
    assert "sees no GPU" in health.message


def test_token_never_goes_to_comfyui_on_another_host_in_clear(svc: Service, pki: Pki) -> None:
    with DockerFake(pki, token=TOKEN) as docker, comfyui_server() as comfy:
        add_nas(
            svc,
            docker.base.replace("127.0.0.1", "localhost"),
            api_token=TOKEN,
            ca_bundle=str(pki.ca_file),
            endpoints={"comfyui": comfy.base},  # 127.0.0.1: another host name
        )
        result = check(svc, "validate")
    assert result.status == "valid", result.message
    assert result.detail["reported_vram_gb"] == 24.0
    assert [r.bearer for r in comfy.requests] == [None]


# --------------------------------------------------------------------------- Local


def test_local_without_driver_is_valid_and_healthy_with_empty_snapshot(svc: Service) -> None:
    svc.register_provider({"id": "local", "config": {"endpoints": {"comfyui": closed_port_url()}}})
    result = check(svc, "validate", "local")
    health = check(svc, "health", "local")
    assert result.status == "valid", result.message
    assert health.status == "healthy" and health.code is None
    for r in (result, health):
        snap = r.detail["snapshot"]
        assert snap["gpus"] == [] and snap["source"] == "none"
        assert "no NVIDIA driver found" in snap["note"]
        assert r.message.startswith("no local GPU (no NVIDIA driver found")
        assert r.detail["comfyui"] == "not running"


def test_local_comfyui_adds_its_devices(svc: Service) -> None:
    with comfyui_server([RTX_4090]) as comfy:
        svc.register_provider({"id": "local", "config": {"endpoints": {"comfyui": comfy.base}}})
        result = check(svc, "validate", "local")
    assert result.status == "valid"
    assert result.detail["comfyui"] == "running"
    [dev] = result.detail["comfyui_devices"]
    assert (dev["name"], dev["vram_total_gb"], dev["vram_free_gb"]) == (
        "NVIDIA GeForce RTX 4090",
        24.0,
        21.3,
    )
    assert "ComfyUI running (1 GPU: NVIDIA GeForce RTX 4090 24.0 GB)" in result.message
    assert [r.path for r in comfy.requests] == ["/system_stats"]


def test_local_comfyui_that_hangs_costs_at_most_the_probe_time(svc: Service) -> None:
    with SilentServer() as silent:
        svc.register_provider({"id": "local", "config": {"endpoints": {"comfyui": silent.base}}})
        started = time.monotonic()
        result = check(svc, "health", "local", timeout_s=20)
        elapsed = time.monotonic() - started
    assert result.status == "healthy"
    assert result.detail["comfyui"] == "not running"
    assert elapsed < local_adapter.COMFYUI_PROBE_S + 1.5


def test_module_prints_the_snapshot_as_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "comfyvn_gui.providers.local"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data = json.loads(out.stdout)
    assert data["gpus"] == []
    assert data["source"] == "none" and "no NVIDIA driver found" in data["note"]


# --------------------------------------------------------------------------- NVML reading


class FakeNvml:
    """The part of pynvml the snapshot uses, with pynvml's own error classes."""

    def __init__(self, devices: list[dict[str, Any]], *, init_error: int | None = None) -> None:
        import pynvml

        self._pynvml = pynvml
        self.NVMLError = pynvml.NVMLError
        self.NVMLError_LibraryNotFound = pynvml.NVMLError_LibraryNotFound
        self.NVMLError_DriverNotLoaded = pynvml.NVMLError_DriverNotLoaded
        self.devices = devices
        self.init_error = init_error
        self.calls: list[str] = []

    def nvmlInit(self) -> None:
        self.calls.append("init")
        if self.init_error is not None:
            raise self.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.calls.append("shutdown")

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.127.05"

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:
        return self.devices[index]

    def nvmlDeviceGetName(self, handle: dict[str, Any]) -> str | bytes:
        return handle["name"]  # type: ignore[no-any-return]

    def nvmlDeviceGetMemoryInfo(self, handle: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(
            total=handle["total"], free=handle["free"], used=handle["total"] - handle["free"]
        )

    def nvmlDeviceGetUtilizationRates(self, handle: dict[str, Any]) -> SimpleNamespace:
        if handle.get("util") is None:
            raise self.NVMLError(self._pynvml.NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(gpu=handle["util"], memory=10)


def test_snapshot_reads_every_gpu_through_nvml() -> None:
    nvml = FakeNvml(
        [
            # nvidia-smi's 24564 MiB of an RTX 4090, in bytes; old pynvml returned bytes names.
            {
                "name": b"NVIDIA GeForce RTX 4090",
                "total": 25_757_220_864,
                "free": 22_871_736_320,
                "util": 37,
            },
            {"name": "NVIDIA A2", "total": 15_987_638_272, "free": 15_000_000_000, "util": None},
        ]
    )
    snap = local_adapter.snapshot(nvml=nvml)
    assert nvml.calls == ["init", "shutdown"]
    assert snap.source == "nvml" and snap.note is None
    assert snap.driver_version == "550.127.05"
    g0, g1 = snap.gpus
    assert (g0.name, g0.vram_total_gb, g0.vram_free_gb, g0.utilization, g0.index) == (
        "NVIDIA GeForce RTX 4090",
        24.0,
        21.3,
        0.37,
        0,
    )
    assert (g1.name, g1.vram_total_gb, g1.utilization, g1.index) == ("NVIDIA A2", 15.0, 0.0, 1)
    assert wording.local_gpus(snap).startswith(
        "2 GPUs: NVIDIA GeForce RTX 4090, 24.0 GB (21.3 GB free); NVIDIA A2, 15.0 GB"
    )


@pytest.mark.parametrize("code", ["NVML_ERROR_DRIVER_NOT_LOADED", "NVML_ERROR_LIBRARY_NOT_FOUND"])
def test_snapshot_without_driver_is_empty_with_a_note(code: str) -> None:
    import pynvml

    nvml = FakeNvml([], init_error=getattr(pynvml, code))
    snap = local_adapter.snapshot(nvml=nvml)
    assert snap.gpus == [] and snap.source == "none"
    assert snap.note == local_adapter.NO_DRIVER_NOTE
    assert wording.local_gpus(snap) == "no local GPU (no NVIDIA driver found)"


@pytest.mark.parametrize(
    ("nbytes", "total", "gb"),
    [
        (25_756_696_576, True, 24.0),  # RTX 4090 as ComfyUI reports it
        (34_190_458_880, True, 32.0),  # RTX 5090
        (85_520_809_984, True, 80.0),  # H100 80GB: 81559 MiB
        (16_106_127_360, True, 15.0),  # T4: 15360 MiB usable of its 16 GB, not snapped up
        (22_871_736_320, False, 21.3),  # free VRAM is never snapped
        (0, True, 0.0),
    ],
)
def test_vram_in_vendor_gb(nbytes: int, total: bool, gb: float) -> None:
    assert local_adapter.vram_gb(nbytes, total=total) == gb


@pytest.mark.gpu
def test_real_gpu_snapshot() -> None:
    snap = local_adapter.snapshot()
    assert snap.source == "nvml", snap.note
    assert snap.gpus, snap.note
    assert all(g.vram_total_gb > 0 and 0 <= g.vram_free_gb <= g.vram_total_gb for g in snap.gpus)
    assert snap.driver_version
