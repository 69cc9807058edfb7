"""ComfyVN's own clients against the real server: its requests, as its tests send them
(Megamjm/Comfyvn-ToolProject tests/test_compute_api.py, test_gpu_api.py,
test_gpu_advisor_api.py, test_providers_api.py), answered with the fields it reads, through
the same advisor, registry, keyring and guard as every other route."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from comfyvn_gui.core.checks import LocalSnapshot
from tests.api.helpers import active_runpod, assert_error, keyring_entries, ok
from tests.fakes.api_server import ApiServer
from tests.fakes.runpod import RunPodFake

pytestmark = pytest.mark.usefixtures("secret_service")

GPU_16GB = LocalSnapshot.model_validate(
    {
        "gpus": [
            {
                "name": "NVIDIA GeForce RTX 4080",
                "vram_total_gb": 16,
                "vram_free_gb": 15,
                "utilization": 0.05,
                "index": 0,
            }
        ],
        "driver_version": "560.35",
    }
)
NO_GPU = LocalSnapshot(source="none", note="no NVIDIA driver found: jobs run on remote providers")


@pytest.fixture
def local_gpu(monkeypatch: pytest.MonkeyPatch) -> list[LocalSnapshot]:
    """This computer's NVML snapshot, as the test sets it (a GPU CI lacks)."""
    current = [GPU_16GB]
    monkeypatch.setattr("comfyvn_gui.service.advice.snapshot", lambda: current[0])
    return current


# -- GET /compute/advise ---------------------------------------------------------------------


def test_comfyvns_advice_query_is_answered_by_the_same_advisor_in_its_words(
    client: httpx.Client, local_gpu: list[LocalSnapshot]
) -> None:
    answer = ok(client.get("/compute/advise", params={"task": "img", "size": "1024mb"}))
    assert answer["ok"] is True
    assert (answer["target"], answer["choice"], answer["provider"]) == ("gpu", "gpu", "local")
    assert answer["size_mb"] == 1024.0
    assert isinstance(answer["rationale"], str) and answer["rationale"].startswith("Local GPU")
    # the same advice POST /compute/advise gives for the workload it stands for
    seed = ok(
        client.post(
            "/compute/advise",
            json={"workload": {"kind": "sprite_generation", "total_bytes": 1024 * 2**20}},
        )
    )
    assert answer["advice"]["choice"] == seed["choice"] == "local"
    assert answer["rationale"] == seed["reason"]
    assert answer["advice"]["requirements"] == seed["requirements"]

    override = ok(
        client.get("/compute/advise", params={"task": "img", "hardware_override": "true"})
    )
    assert override["target"] == "cpu" and override["override"] == "cpu"
    assert "cpu" in override["rationale"].lower()
    assert override["advice"]["choice"] == "local"  # what would have run

    export = ok(client.get("/compute/advise", params={"task": "export", "size": "2gb"}))
    assert (export["target"], export["advice"], export["size_mb"]) == ("cpu", None, 2048.0)

    local_gpu[0] = NO_GPU  # nothing can run it: ComfyVN's cpu
    client.get("/api/gpu/list")  # (reads NVML afresh)
    none = ok(client.get("/compute/advise", params={"task": "tts"}))
    assert none["target"] == "cpu" and none["provider"] is None
    assert none["rationale"].startswith("No provider can run voice synthesis")


def test_prefer_remote_sends_the_job_to_a_provider_and_says_why(
    client: httpx.Client, runpod: RunPodFake, local_gpu: list[LocalSnapshot]
) -> None:
    active_runpod(client, runpod, "rp")
    plain = ok(client.get("/compute/advise", params={"task": "tts"}))
    assert plain["target"] == "gpu"
    remote = ok(client.get("/compute/advise", params={"task": "tts", "prefer_remote": "true"}))
    assert (remote["target"], remote["provider"]) == ("remote", "rp")
    assert remote["rationale"].startswith("You prefer a remote GPU (prefer_remote)")
    assert remote["estimated_cost"] == remote["advice"]["estimated_cost"]
    assert "data_leaves_machine" in {w["code"] for w in remote["advice"]["warnings"]}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"task": "video"}, "task"),
        ({"task": "img", "size": "lots"}, "size"),
        ({"task": "img", "size": "-5mb"}, "size"),
        ({"task": "img", "size": "999999999gb"}, "size"),
        ({"task": "img", "prefer_remote": "maybe"}, "prefer_remote"),
        ({"task": "img", "hardware_override": "2"}, "hardware_override"),
    ],
)
def test_a_bad_query_value_is_a_clear_422_naming_it(
    client: httpx.Client, params: dict[str, str], field: str
) -> None:
    error = assert_error(client.get("/compute/advise", params=params), 422)
    assert any(f == field or f.endswith(f".{field}") for f in error["fields"]), error
    assert ok(client.get("/api/jobs")) == []  # (a what-if: nothing recorded either way)


# -- /api/gpu/* ------------------------------------------------------------------------------


def test_gpu_list_reads_as_comfyvns(client: httpx.Client, local_gpu: list[LocalSnapshot]) -> None:
    listed = ok(client.get("/api/gpu/list"))
    assert listed["ok"] is True
    [gpu] = listed["devices"]
    assert gpu == {
        "id": "cuda:0",
        "name": "NVIDIA GeForce RTX 4080",
        "mem_total": 16384,
        "mem_free": 15360,
        "util": 5.0,
    }
    kinds = {d["id"]: d["kind"] for d in listed["local"]}
    assert kinds == {"cuda:0": "gpu", "cpu": "cpu"}
    assert listed["policy"]["mode"] in listed["modes"] == ["auto", "manual", "sticky"]
    assert "preferred_id" in listed["policy"]
    assert ok(client.get("/api/gpu/policy"))["policy"] == listed["policy"]

    local_gpu[0] = NO_GPU
    empty = ok(client.get("/api/gpu/list"))
    assert empty["devices"] == [] and [d["id"] for d in empty["local"]] == ["cpu"]
    assert "no NVIDIA driver" in empty["note"]


def test_gpu_advise_and_select_answer_comfyvns_fields(
    client: httpx.Client, runpod: RunPodFake, local_gpu: list[LocalSnapshot]
) -> None:
    body = {"workload": {"requirements": {"type": "voice_synthesis", "min_vram_gb": 8}}}
    advice = ok(client.post("/api/gpu/advise", json=body))["advice"]
    assert advice["choice"] == "gpu" and advice["provider"] == "local"
    assert advice["local_candidate"]["id"] == "cuda:0"
    assert advice["local_candidate"]["memory_total"] == 16384
    assert advice["remote_candidate"] is None and advice["reason"]
    assert advice["comfyvn_gui"]["requirements"]["vram_gb"] == 8  # ComfyVN's stated need

    active_runpod(client, runpod, "rp")
    remote = ok(client.post("/api/gpu/advise", json={**body, "prefer_remote": True}))["advice"]
    assert (remote["choice"], remote["provider"]) == ("remote", "rp")
    assert remote["remote_candidate"]["id"] == "rp"
    assert remote["remote_candidate"]["service"] == "runpod"
    assert remote["local_candidate"] is not None  # (it could run it: kept free)
    forced = ok(client.post("/api/gpu/advise", json={**body, "hardware_override": True}))["advice"]
    assert (forced["choice"], forced["override"]) == ("cpu", "cpu")
    assert forced["fallback"]["id"] == "cuda:0"

    too_big = {"workload": {"type": "render", "min_vram_gb": 40}}
    assert ok(client.post("/api/gpu/advise", json=too_big))["advice"]["local_candidate"] is None

    bad = client.post("/api/gpu/advise", json={"workload": {"type": "juggling"}})
    assert assert_error(bad, 422)["fields"] == ["workload.type"]
    bad = client.post("/api/gpu/advise", json={"workload": {"min_vram_gb": "lots"}})
    assert "workload.requirements.min_vram_gb" in assert_error(bad, 422)["fields"]

    select = ok(client.post("/api/gpu/select", json={"requirements": {"min_vram_gb": 12}}))
    assert select["choice"]["kind"] == "gpu" and select["choice"]["id"] == "cuda:0"
    assert (
        ok(client.post("/api/gpu/select", json={"requirements": {"min_vram_gb": 20}}))["choice"][
            "kind"
        ]
        == "cpu"
    )
    assert ok(client.post("/api/gpu/select", json={"prefer": "cpu"}))["choice"]["kind"] == "cpu"
    mib = ok(client.post("/api/gpu/select", json={"requirements": {"memory_min_mb": 8192}}))
    assert mib["choice"]["kind"] == "gpu"


# -- /api/providers --------------------------------------------------------------------------


def _files(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def test_comfyvns_provider_definition_registers_onto_a_template(
    client: httpx.Client, app_home: Path
) -> None:
    definition = {
        "id": "runpod",
        "name": "RunPod",
        "kind": "remote",
        "service": "runpod",
        "base_url": "https://api.runpod.io/v2/",
    }
    r = client.post("/api/providers/register", json=definition)
    assert r.status_code == 200, r.text
    provider = r.json()["provider"]
    assert r.json()["ok"] is True and provider["id"] == "runpod"
    assert (provider["template_id"], provider["kind"], provider["service"]) == (
        "runpod",
        "remote",
        "runpod",
    )
    listing = ok(client.get("/api/providers"))
    assert listing["ok"] is True
    assert [p["id"] for p in listing["providers"]] == ["local", "runpod"]  # by priority
    assert listing["providers"][0]["kind"] == "local"
    assert {t["id"] for t in listing["templates"]} >= {"runpod", "gcp", "lan", "custom"}
    assert ok(client.get("/api/providers/list")) == listing

    # ComfyVN's richer shape: secrets to the keyring, the rest kept, nothing leaked
    secret = "rp-comfyvn-7f3c-secret"
    r = client.post(
        "/api/providers/register",
        json={
            "id": "rp-voices",
            "kind": "remote",
            "service": "runpod",
            "endpoint": "https://api.runpod.ai/v2",
            "config": {"api_key": secret, "endpoint_id": "ep-a", "region_hint": "eu"},
            "priority": 5,
            "active": False,
            "notes": "voices only",
            "last_health": {"ok": True, "ts": 1},
        },
    )
    assert r.status_code == 200, r.text
    row = r.json()["provider"]
    assert secret not in r.text and row["secrets_set"] == ["api_key"]
    assert row["enabled"] is False and row["active"] is False  # (not validated here)
    assert row["meta"] == {"priority": 5, "notes": "voices only", "region_hint": "eu"}
    assert row["priority"] == 5 and row["base_url"] == "https://api.runpod.ai/v2"
    assert row["config"]["endpoint_id"] == "ep-a"
    assert secret in keyring_entries().values()
    assert secret.encode() not in _files(app_home)
    assert [p["id"] for p in ok(client.get("/api/providers"))["providers"]] == [
        "local",
        "rp-voices",
        "runpod",
    ]

    # an unknown service is a ComfyUI server of your own; unRAID is the LAN template
    echo = client.post(
        "/api/providers/register",
        json={
            "id": "echo",
            "kind": "remote",
            "service": "echo",
            "base_url": "http://10.0.0.5:8188",
        },
    ).json()["provider"]
    assert (echo["template_id"], echo["config"]["endpoint"], echo["service"]) == (
        "custom",
        "http://10.0.0.5:8188",
        "echo",
    )
    nas = client.post(
        "/api/providers/register",
        json={"id": "nas", "kind": "remote", "service": "unraid", "base_url": "https://nas:2376"},
    ).json()["provider"]
    assert nas["template_id"] == "lan" and nas["config"]["endpoint"] == "https://nas:2376"


def test_a_secret_outside_the_templates_fields_is_refused_and_nothing_is_saved(
    client: httpx.Client, app_home: Path
) -> None:
    before = ok(client.get("/api/providers"))
    r = client.post(
        "/api/providers/register",
        json={"id": "rp", "service": "runpod", "config": {"api_token": "leak-me-9q"}},
    )
    error = assert_error(r, 422, fields=["config.api_token"])
    assert "api_key" in error["message"] and "leak-me-9q" not in r.text
    r = client.post(
        "/api/providers/register",
        json={"id": "rp", "service": "runpod", "password": "leak-me-9q"},
    )
    assert_error(r, 422, fields=["password"])
    assert ok(client.get("/api/providers")) == before
    assert b"leak-me-9q" not in _files(app_home)
    # the seed's own register shape is answered as before: 201 and the entry itself
    created = client.post(
        "/api/providers/register",
        json={
            "id": "mine",
            "template_id": "custom",
            "config": {"endpoint": "http://10.0.0.9:8188"},
        },
    )
    assert created.status_code == 201 and created.json()["id"] == "mine"


def test_health_by_id_answers_status_with_provider_id_and_ok(
    client: httpx.Client, runpod: RunPodFake
) -> None:
    active_runpod(client, runpod, "rp")
    one = ok(client.get("/api/providers/health", params={"id": "rp"}))
    assert one["ok"] is True
    assert (one["status"]["provider_id"], one["status"]["ok"]) == ("rp", True)
    assert one["status"]["status"] == "healthy" and one["results"] == [one["status"]]
    cached = ok(client.get("/api/providers/health", params={"id": "rp", "cached": "true"}))
    assert cached["status"]["provider_id"] == "rp"
    assert_error(client.get("/api/providers/health", params={"id": "nope"}), 422, fields=["id"])


def test_the_compatibility_routes_are_guarded_like_every_other(srv: ApiServer) -> None:
    routes = [
        ("GET", "/compute/advise?task=img"),
        ("GET", "/api/gpu/list"),
        ("GET", "/api/gpu/policy"),
        ("POST", "/api/gpu/advise"),
        ("POST", "/api/gpu/select"),
        ("GET", "/api/providers/list"),
    ]
    with httpx.Client(base_url=srv.url, timeout=10) as anonymous:
        for method, path in routes:
            r = anonymous.request(method, path, json={} if method == "POST" else None)
            assert_error(r, 401)
    with srv.client() as c:
        for method, path in routes:
            r = c.request(
                method,
                path,
                json={} if method == "POST" else None,
                headers={"Host": "evil.example"},
            )
            assert_error(r, 403, code="forbidden")
