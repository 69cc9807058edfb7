"""Helpers of the HTTP API tests: constants, response checks, homes and payloads."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from comfyvn_gui import cli
from comfyvn_gui.core.catalog import resources_dir
from comfyvn_gui.store.paths import Home, resolve_home
from tests.conftest import keyring_entries
from tests.fakes.runpod import RunPodFake

EXAMPLES = resources_dir() / "examples"
ADVICE_EXAMPLE = EXAMPLES / "advice" / "seed-cg-super-res.json"
SUMMARY_EXAMPLE = EXAMPLES / "summaries" / "moonlit-academy.json"

#: The seed's `create` payload, verbatim (seed/remote_gpu_services.md).
SEED_CREATE: dict[str, Any] = {
    "template_id": "runpod",
    "id": "runpod-demo",
    "name": "RunPod Demo",
    "base_url": "https://api.runpod.io/v2/",
    "config": {"api_key": "RUNPOD_KEY"},
    "meta": {"notes": "Demo project"},
}

#: The seed's table of curated providers: template id -> its auth fields.
SEED_AUTH_FIELDS: dict[str, list[str]] = {
    "runpod": ["api_key"],
    "vast": ["api_key"],
    "lambda": ["api_key"],
    "aws": ["access_key", "secret_key", "region"],
    "azure": ["tenant_id", "client_id", "client_secret", "subscription_id"],
    "coreweave": ["api_key", "organization_id"],
    "gcp": ["project_id", "service_account_json", "region"],
    "paperspace": ["api_key", "project"],
    "lan": ["endpoint", "api_token"],
    "ssh": ["hostname", "username", "ssh_key_path", "nfs_mount"],
    "local": [],
    # not in the seed: a ComfyUI endpoint asks for its own terms with its address
    "custom": [
        "endpoint",
        "api_token",
        "hourly_usd",
        "zones",
        "vram_gb",
        "gpu_name",
        "billing_increment_minutes",
        "billing_minimum_minutes",
    ],
}

SETTING_KEYS = {
    "advisor.budget_usd",
    "advisor.latency",
    "advisor.residency",
    "checks.timeout_s",
    "dispatch.boot_timeout_min",
    "dispatch.max_cost_factor",
    "dispatch.max_runtime_factor",
    "dispatch.runpod_parallel",
    "health.interval_s",
    "network.ca_bundle",
    "prices.max_age_h",
    "workflows.cg_bake",
    "workflows.cg_remix",
    "workflows.cg_super_res",
    "workflows.sprite_generation",
    "workflows.translation",
    "workflows.voice_synthesis",
}

HEALTH_STATUSES = {"healthy", "degraded", "unhealthy", "unknown"}
WORKLOAD = {"kind": "cg_super_res", "items": 5, "title": "Five CGs"}
MIB = 1024 * 1024


# -- helpers --------------------------------------------------------------------------------


def assert_error(
    r: httpx.Response,
    status: int,
    *,
    fields: list[str] | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """``r`` is an error of ``status`` in the API's one shape; returns its ``error``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers.get("cache-control") == "no-store"
    body = r.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "fields"}, err
    assert isinstance(err["code"], str) and err["code"], err
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["fields"], list), err
    assert all(isinstance(f, str) for f in err["fields"]), err
    if fields is not None:
        assert err["fields"] == fields, err
    if code is not None:
        assert err["code"] == code, err
    return err


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    assert r.headers.get("cache-control") == "no-store"
    return r.json()


def home_secrets(home: Home) -> dict[str, str]:
    """This home's keyring entries, as username -> value."""
    service = f"comfyvn-gui/{home.home_id()}"
    return {u: v for (s, u), v in keyring_entries(service).items() if s == service}


def home_of(path: Path) -> Home:
    return resolve_home({"COMFYVN_GUI_HOME": str(path)})


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """``comfyvn-gui ARGS --json`` in this process (same home); its parsed stdout."""
    capsys.readouterr()
    code = cli.main([*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def ids(listing: dict[str, Any] | list[dict[str, Any]]) -> list[str]:
    """The provider ids of ``GET /api/providers`` (its ``providers``), or of a list."""
    entries = listing["providers"] if isinstance(listing, dict) else listing
    return [e["id"] for e in entries]


def without(entry: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in keys}


def runpod_payload(fake: RunPodFake, pid: str, key: str, **config: Any) -> dict[str, Any]:
    """A create/register body: a RunPod provider whose endpoints are the contract fake."""
    payload = fake.provider(pid, key=key, template_id="runpod")
    payload["config"].update(config)
    return payload


def own_ipv4() -> str:
    """A non-loopback IPv4 address of this machine (fails the test if there is none)."""
    found: list[str] = []
    with (
        contextlib.suppress(OSError),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe,
    ):
        probe.connect(("192.0.2.1", 9))  # UDP: sends nothing, only picks the route
        found.append(probe.getsockname()[0])
    with contextlib.suppress(OSError):
        for *_, addr in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(str(addr[0]))
    for ip in found:
        addr = ipaddress.ip_address(ip)
        if not addr.is_loopback and not addr.is_unspecified:
            return ip
    pytest.fail(
        "this machine has no non-loopback IPv4 address (tried a UDP route probe and "
        f"getaddrinfo({socket.gethostname()!r})); the remote-client export rule cannot be "
        "tested without one"
    )


def active_runpod(client: httpx.Client, fake: RunPodFake, pid: str = "rp") -> None:
    """Register a RunPod provider on the fake, validate it and health-check it (both pass)."""
    ok(client.post("/api/providers/create", json=runpod_payload(fake, pid, fake.key)), 201)
    assert ok(client.post(f"/api/providers/{pid}/validate"))["status"] == "valid"
    client.put("/api/settings/checks.timeout_s", json={"value": 10})
    [health] = ok(client.get("/api/providers/health", params={"id": pid}))["results"]
    assert health["status"] == "healthy", health
