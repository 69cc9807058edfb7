"""The HTTP API (DESIGN.md, "HTTP API"), spoken to over real HTTP.

Every test talks to the product's own uvicorn server (``tests/fakes/api_server.py``, started
as ``comfyvn-gui serve`` starts it) on a free port, with a real Secret Service behind the
keyring and, where a provider is checked, the RunPod contract fake or a closed port. The
command line runs in the same process on the same home, to show that the skins agree.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import re
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from comfyvn_gui import cli
from comfyvn_gui.core.catalog import resources_dir
from comfyvn_gui.service import Service
from comfyvn_gui.store.audit import read_events
from comfyvn_gui.store.paths import Home, resolve_home

from .conftest import keyring_entries
from .fakes.api_server import ApiServer, api_server
from .fakes.http import closed_port_url
from .fakes.runpod import RunPodFake, health_body

pytestmark = pytest.mark.usefixtures("secret_service")

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
}

SETTING_KEYS = {
    "advisor.budget_usd",
    "advisor.latency",
    "advisor.residency",
    "checks.timeout_s",
    "health.interval_s",
    "network.ca_bundle",
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


def ids(entries: list[dict[str, Any]]) -> list[str]:
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


def active_runpod(client: httpx.Client, fake: RunPodFake, pid: str = "rp") -> None:
    """Register a RunPod provider on the fake, validate it and health-check it (both pass)."""
    ok(client.post("/api/providers/create", json=runpod_payload(fake, pid, fake.key)), 201)
    assert ok(client.post(f"/api/providers/{pid}/validate"))["status"] == "valid"
    client.put("/api/settings/checks.timeout_s", json={"value": 10})
    [health] = ok(client.get("/api/providers/health", params={"id": pid}))
    assert health["status"] == "healthy", health


# -- providers: templates, create, register, remove ----------------------------------------


def test_templates_list_the_catalog_with_the_seed_auth_fields(client: httpx.Client) -> None:
    templates = ok(client.get("/api/providers/templates"))
    by_id = {t["id"]: t for t in templates}
    assert set(by_id) == set(SEED_AUTH_FIELDS)
    for template_id, fields in SEED_AUTH_FIELDS.items():
        names = [f["name"] for f in by_id[template_id]["auth_fields"]]
        assert names == fields, template_id
    secret = {f["name"] for f in by_id["aws"]["auth_fields"] if f.get("secret")}
    assert secret == {"access_key", "secret_key"}


def test_seed_create_payload_keeps_the_key_in_the_keyring_only(
    srv: ApiServer, client: httpx.Client
) -> None:
    home = srv.service.home
    r = client.post("/api/providers/create", json=SEED_CREATE)
    entry = ok(r, 201)
    assert entry["id"] == "runpod-demo" and entry["template_id"] == "runpod"
    assert entry["name"] == "RunPod Demo" and entry["base_url"] == "https://api.runpod.io/v2/"
    assert entry["secrets_set"] == ["api_key"]
    assert "api_key" not in entry["config"]
    assert entry["meta"] == {"notes": "Demo project"}
    assert entry["active"] is False
    assert "RUNPOD_KEY" not in r.text
    assert home_secrets(home) == {"runpod-demo/api_key": "RUNPOD_KEY"}
    registry = home.registry_file.read_text("utf-8")
    assert "runpod-demo" in registry and "RUNPOD_KEY" not in registry

    listed = ok(client.get("/api/providers"))
    assert ids(listed) == ["local", "runpod-demo"]
    assert listed[1] == entry
    assert ok(client.get("/api/providers/runpod-demo")) == entry

    before = (home.registry_file.read_bytes(), home_secrets(home))
    again = {**SEED_CREATE, "config": {"api_key": "OTHER_KEY_123"}}
    assert_error(client.post("/api/providers/create", json=again), 409, fields=["id"])
    assert (home.registry_file.read_bytes(), home_secrets(home)) == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"template_id": "nosuch", "id": "x1"}, "template_id"),
        ({"id": "x1", "config": {"api_key": "KEY-123456789"}}, "template_id"),
        ({"template_id": "runpod", "id": "export"}, "id"),
        ({"template_id": "runpod", "id": "health"}, "id"),
        ({"template_id": "runpod", "id": "templates"}, "id"),
        ({"template_id": "runpod", "id": "Not An Id"}, "id"),
        ({"template_id": "runpod", "meta": {"api_key": "KEY-123456789"}}, "api_key"),
    ],
)
def test_create_refusals_name_the_field_and_add_nothing(
    srv: ApiServer, client: httpx.Client, payload: dict[str, Any], field: str
) -> None:
    assert_error(client.post("/api/providers/create", json=payload), 422, fields=[field])
    assert ids(ok(client.get("/api/providers"))) == ["local"]
    assert home_secrets(srv.service.home) == {}


def test_register_creates_updates_keeps_and_clears_secrets(
    srv: ApiServer, client: httpx.Client
) -> None:
    home = srv.service.home
    first = {
        "id": "vast-1",
        "template_id": "vast",
        "name": "Vast box",
        "secrets": {"api_key": "VAST-KEY-0123456789"},
    }
    created = ok(client.post("/api/providers/register", json=first), 201)
    assert created["secrets_set"] == ["api_key"]
    assert home_secrets(home) == {"vast-1/api_key": "VAST-KEY-0123456789"}

    renamed = ok(client.post("/api/providers/register", json={"id": "vast-1", "name": "Renamed"}))
    assert renamed["name"] == "Renamed" and renamed["secrets_set"] == ["api_key"]
    assert home_secrets(home) == {"vast-1/api_key": "VAST-KEY-0123456789"}  # omitted: kept

    changed = {"id": "vast-1", "config": {"api_key": "VAST-KEY-second-9876"}}
    assert ok(client.post("/api/providers/register", json=changed))["secrets_set"] == ["api_key"]
    assert home_secrets(home) == {"vast-1/api_key": "VAST-KEY-second-9876"}

    cleared = {"id": "vast-1", "secrets": {"api_key": None}}
    entry = ok(client.post("/api/providers/register", json=cleared))
    assert entry["secrets_set"] == [] and entry["name"] == "Renamed"
    assert home_secrets(home) == {}
    assert ok(client.get("/api/providers/vast-1")) == entry

    assert_error(
        client.post("/api/providers/register", json={"id": "ghost-1"}), 422, fields=["template_id"]
    )
    assert_error(client.post("/api/providers/register", json={"name": "no id"}), 422, fields=["id"])


def test_remove_deletes_the_entry_and_its_secrets(srv: ApiServer, client: httpx.Client) -> None:
    home = srv.service.home
    for pid in ("gone", "kept"):
        ok(client.post("/api/providers/create", json={**SEED_CREATE, "id": pid}), 201)
    assert set(home_secrets(home)) == {"gone/api_key", "kept/api_key"}

    assert ok(client.delete("/api/providers/remove/gone")) == {"removed": ["gone"]}
    assert home_secrets(home) == {"kept/api_key": "RUNPOD_KEY"}
    assert ids(ok(client.get("/api/providers"))) == ["local", "kept"]
    assert_error(client.get("/api/providers/gone"), 404, fields=["id"])

    before = (home.registry_file.read_bytes(), home_secrets(home))
    err = assert_error(
        client.delete("/api/providers/remove/local"), 403, fields=["id"], code="forbidden"
    )
    assert "local" in err["message"]
    assert_error(client.delete("/api/providers/remove/gone"), 404, fields=["id"])
    assert (home.registry_file.read_bytes(), home_secrets(home)) == before
    assert ids(ok(client.get("/api/providers"))) == ["local", "kept"]


def test_a_body_sent_as_a_form_is_read_as_json(client: httpx.Client) -> None:
    """`curl -d` says x-www-form-urlencoded; every body of this API is JSON all the same."""
    r = client.post(
        "/api/providers/create",
        content=json.dumps(SEED_CREATE),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert ok(r, 201)["secrets_set"] == ["api_key"]


# -- export and import between two homes ----------------------------------------------------

GCP_KEY = json.dumps(
    {
        "type": "service_account",
        "project_id": "vn-render-farm",
        "private_key_id": "0123456789abcdef",
        # about as long as a real key, so the keyring stores it in parts
        "private_key": "-----BEGIN PRIVATE KEY-----\n"
        + "\n".join(["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" * 2] * 30)
        + "\n-----END PRIVATE KEY-----\n",
        "client_email": "vn@vn-render-farm.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
)

A_SECRETS = {
    "az": {"client_secret": "AZ-secret-value-0001"},
    "gcp": {"service_account_json": GCP_KEY},
}


def fill_home_a(client: httpx.Client, fake: RunPodFake) -> None:
    payload = runpod_payload(fake, "rp", fake.key)
    payload["config"]["webhook_secret"] = "RP-webhook-secret-01"
    payload["meta"] = {"notes": "Demo project"}
    ok(client.post("/api/providers/create", json=payload), 201)
    assert ok(client.post("/api/providers/rp/validate"))["status"] == "valid"
    azure = {
        "template_id": "azure",
        "id": "az",
        "config": {
            "tenant_id": "00000000-0000-4000-8000-000000000001",
            "client_id": "00000000-0000-4000-8000-000000000002",
            "subscription_id": "00000000-0000-4000-8000-000000000003",
            "region": "westeurope",
        },
        "secrets": A_SECRETS["az"],
        "meta": {"resource_group": "vn-rg"},
    }
    ok(client.post("/api/providers/create", json=azure), 201)
    gcp = {
        "template_id": "gcp",
        "id": "gcp",
        "config": {"project_id": "vn-render-farm", "region": "europe-west4"},
        "secrets": A_SECRETS["gcp"],
    }
    ok(client.post("/api/providers/create", json=gcp), 201)


@pytest.mark.parametrize("form", ["document-with-flags", "export-member"])
def test_export_with_secrets_imports_into_another_home(
    tmp_path: Path, runpod: RunPodFake, form: str
) -> None:
    home_a, home_b = home_of(tmp_path / "a"), home_of(tmp_path / "b")
    with (
        api_server(Service(home_a)) as srv_a,
        api_server(Service(home_b)) as srv_b,
        srv_a.client() as a,
        srv_b.client() as b,
    ):
        fill_home_a(a, runpod)
        providers_a = ok(a.get("/api/providers"))
        assert [p["active"] for p in providers_a if p["id"] == "rp"] == [True]
        secrets_a = home_secrets(home_a)
        assert any("#" in user for user in secrets_a), "the long key was not stored in parts"

        plain = a.get("/api/providers/export")
        doc_plain = ok(plain)
        assert doc_plain["include_secrets"] is False
        assert all(not p.get("secrets") for p in doc_plain["providers"])
        for value in [runpod.key, "RP-webhook-secret-01", "AZ-secret-value-0001", GCP_KEY]:
            assert value not in plain.text
        assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in plain.text

        doc = ok(a.get("/api/providers/export", params={"include_secrets": "true"}))
        assert doc["include_secrets"] is True
        exported = {p["id"]: p.get("secrets", {}) for p in doc["providers"]}
        assert exported == {
            "local": {},
            "rp": {"api_key": runpod.key, "webhook_secret": "RP-webhook-secret-01"},
            **A_SECRETS,
        }

        flags = {"replace": False, "overwrite": True}
        body = {**doc, **flags} if form == "document-with-flags" else {"export": doc, **flags}
        outcome = ok(b.post("/api/providers/import", json=body))
        assert outcome["dry_run"] is False
        assert sorted(outcome["imported"]) == ["az", "gcp", "rp"]
        assert sorted(outcome["plan"]["add"]) == ["az", "gcp", "rp"]
        assert "local" in outcome["plan"]["skip"]

        providers_b = ok(b.get("/api/providers"))
        assert ids(providers_b) == ids(providers_a)
        for pa, pb in zip(providers_a[1:], providers_b[1:], strict=True):
            assert without(pb, "active") == without(pa, "active")
            assert pb["active"] is False  # not validated on this machine yet
        assert home_a.home_id() != home_b.home_id()
        assert home_secrets(home_b) == secrets_a  # same values, under B's own service
        assert home_secrets(home_a) == secrets_a

        # dry run: says what it would do, changes nothing
        extra = {
            "id": "vast-new",
            "template_id": "vast",
            "name": "Vast",
            "secrets": {"api_key": "VAST-KEY-0123456789"},
        }
        renamed = [{**p, "name": "Changed"} if p["id"] == "rp" else p for p in doc["providers"]] + [
            extra
        ]
        before = (home_b.registry_file.read_bytes(), home_secrets(home_b))
        dry = ok(
            b.post(
                "/api/providers/import",
                json={**doc, "providers": renamed, "dry_run": True, "overwrite": True},
            )
        )
        assert dry["dry_run"] is True and dry["imported"] == []
        assert dry["plan"]["add"] == ["vast-new"]
        assert sorted(dry["plan"]["update"]) == ["az", "gcp", "rp"]
        assert (home_b.registry_file.read_bytes(), home_secrets(home_b)) == before

        # overwrite: false skips the ids that exist and adds the rest
        skipping = ok(
            b.post(
                "/api/providers/import",
                json={"export": {**doc, "providers": renamed}, "overwrite": False},
            )
        )
        assert skipping["imported"] == ["vast-new"]
        assert set(skipping["plan"]["skip"]) == {"local", "rp", "az", "gcp"}
        assert ok(b.get("/api/providers/rp"))["name"] == providers_a[1]["name"]
        assert home_secrets(home_b) == {**secrets_a, "vast-new/api_key": "VAST-KEY-0123456789"}


def test_import_refusals_change_nothing(srv: ApiServer, client: httpx.Client) -> None:
    home = srv.service.home
    ok(client.post("/api/providers/create", json=SEED_CREATE), 201)
    before = (home.registry_file.read_bytes(), home_secrets(home))
    good = {"id": "vast-1", "template_id": "vast", "secrets": {"api_key": "VAST-KEY-0123456789"}}
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"replace": False}, ["providers"]),
        ({"providers": [good, {"id": "export", "template_id": "vast"}]}, ["id"]),
        ({"providers": [good, {"id": "b2", "template_id": "nosuch"}]}, ["template_id"]),
        ({"format": "something-else", "version": 1, "providers": [good]}, ["format"]),
        (
            {"export": {"format": "comfyvn-gui.providers-export", "version": 99, "providers": []}},
            ["version"],
        ),
    ]
    for body, fields in cases:
        assert_error(client.post("/api/providers/import", json=body), 422, fields=fields)
    assert (home.registry_file.read_bytes(), home_secrets(home)) == before


# -- validation and health ------------------------------------------------------------------


def test_validate_good_and_rejected_keys(
    srv: ApiServer, client: httpx.Client, runpod: RunPodFake
) -> None:
    ok(client.post("/api/providers/create", json=runpod_payload(runpod, "rp", runpod.key)), 201)
    bad = runpod_payload(runpod, "rp-bad", "WRONG-key-0123456789")
    ok(client.post("/api/providers/create", json=bad), 201)

    good = ok(client.post("/api/providers/rp/validate"))
    assert good["provider"] == "rp" and good["check"] == "validate"
    assert good["status"] == "valid", good
    assert good["detail"]["identity"] == runpod.email
    assert ok(client.get("/api/providers/rp"))["active"] is True
    assert runpod.key not in json.dumps(good)

    rejected = ok(client.post("/api/providers/rp-bad/validate"))
    assert rejected["provider"] == "rp-bad"
    assert rejected["status"] == "invalid_credentials", rejected
    assert rejected["fields"] == ["api_key"]
    assert ok(client.get("/api/providers/rp-bad"))["active"] is False
    assert [r.path for r in runpod.requests] == ["/graphql", "/graphql"]

    # a changed credential is no longer validated
    new_key = {"id": "rp", "secrets": {"api_key": "rpa_OTHERKEY_000000000"}}
    assert ok(client.post("/api/providers/register", json=new_key))["active"] is False

    assert_error(client.post("/api/providers/ghost/validate"), 404, fields=["id"])


def test_health_checks_now_and_returns_cached_results(
    client: httpx.Client, runpod: RunPodFake
) -> None:
    payload = runpod_payload(runpod, "rp", runpod.key, endpoint_id="ep-a")
    ok(client.post("/api/providers/create", json=payload), 201)

    [only] = ok(client.get("/api/providers/health", params={"id": "rp"}))
    assert only["provider"] == "rp" and only["check"] == "health"
    assert only["status"] == "healthy", only
    assert only["detail"]["endpoint_id"] == "ep-a"
    assert [(r.method, r.path) for r in runpod.requests] == [("GET", "/v2/ep-a/health")]

    every = ok(client.get("/api/providers/health"))
    assert {r["provider"] for r in every} == {"local", "rp"}
    assert all(r["status"] in HEALTH_STATUSES for r in every)
    seen = len(runpod.requests)
    assert seen == 2

    cached = ok(client.get("/api/providers/health", params={"cached": "true"}))
    assert sorted(cached, key=lambda r: r["provider"]) == sorted(every, key=lambda r: r["provider"])
    one = ok(client.get("/api/providers/health", params={"cached": "true", "id": "rp"}))
    assert one == [r for r in every if r["provider"] == "rp"]
    assert len(runpod.requests) == seen  # the fake was not asked again

    err = assert_error(client.get("/api/providers/health", params={"id": "ghost"}), 422)
    assert err["fields"] == ["id"] and "ghost" in err["message"]


# -- advice and the local GPU ---------------------------------------------------------------


def test_advise_gives_the_cli_advice_and_records_nothing(
    srv: ApiServer, client: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    request = json.loads(ADVICE_EXAMPLE.read_text("utf-8"))
    advice = ok(client.post("/compute/advise", json=request))
    assert advice["choice"] == "runpod-demo"
    assert advice["estimated_cost_usd"] > 0 and advice["reason"]
    assert "data_leaves_machine" in [w["code"] for w in advice["warnings"]]

    from_cli = run_cli(capsys, "advise", "--request", str(ADVICE_EXAMPLE))
    for key in ("choice", "estimated_cost_usd", "estimated_cost", "reason"):
        assert advice[key] == from_cli[key], key
    assert advice == from_cli

    # a what-if: no job, no assignment, no provider registered
    assert ok(client.get("/api/jobs")) == []
    assert ids(ok(client.get("/api/providers"))) == ["local"]
    assert not [e for e in read_events(srv.service.home) if str(e.get("event")).startswith("job.")]


def test_advise_refuses_bad_requests_in_the_error_shape(client: httpx.Client) -> None:
    bad = {"workload": {"kind": "cg_super_res", "asset_type": "cg", "items": -3}}
    assert_error(client.post("/compute/advise", json=bad), 422, fields=["workload.items"])
    unknown_kind = {"workload": {"kind": "mining", "items": 1}}
    assert_error(client.post("/compute/advise", json=unknown_kind), 422, fields=["workload.kind"])
    assert_error(client.post("/compute/advise", content=b'{"workload": {"kind": '), 400)
    missing = client.post("/compute/advise")
    assert missing.status_code in (400, 422)
    assert_error(missing, missing.status_code)
    assert_error(client.post("/compute/advise", json=[1, 2]), 422)
    assert ok(client.get("/api/jobs")) == []


def test_local_gpu_snapshot(client: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    snap = ok(client.get("/api/gpu/local"))
    assert isinstance(snap["gpus"], list)
    if not snap["gpus"]:
        assert isinstance(snap["note"], str) and snap["note"]
    assert [g["name"] for g in snap["gpus"]] == [g["name"] for g in run_cli(capsys, "gpus")]


# -- jobs -----------------------------------------------------------------------------------


def test_jobs_add_list_show_and_pick(client: httpx.Client, runpod: RunPodFake) -> None:
    active_runpod(client, runpod)

    job = ok(client.post("/api/jobs", json=WORKLOAD), 201)
    assert job["status"] == "queued" and job["title"] == "Five CGs"
    assert job["kind"] == "cg_super_res" and job["workload"]["items"] == 5
    compute = job["meta"]["compute"]
    assert compute["provider"] == "rp" and compute["decided_by"] == "advisor"
    assert compute["advice"]["choice"] == "rp" and compute["decided_at"]

    assert ok(client.get("/api/jobs")) == [job]
    assert ok(client.get("/api/jobs", params={"status": "queued"})) == [job]
    assert ok(client.get("/api/jobs", params={"status": "running"})) == []
    shown = ok(client.get(f"/api/jobs/{job['id']}"))
    assert without(shown, "events") == job
    assert [e["action"] for e in shown["events"]] == ["created", "decided"]
    assert shown["events"][1]["provider"] == "rp"

    picked = ok(client.post(f"/api/jobs/{job['id']}/pick", json={"provider": "rp"}))
    assert picked["meta"]["compute"]["decided_by"] == "user"
    assert picked["meta"]["compute"]["provider"] == "rp"
    back = ok(client.post(f"/api/jobs/{job['id']}/pick", json={"provider": None}))
    assert back["meta"]["compute"]["decided_by"] == "advisor"
    events = ok(client.get(f"/api/jobs/{job['id']}"))["events"]
    assert [e["action"] for e in events] == ["created", "decided", "picked", "picked"]

    assert_error(
        client.post(f"/api/jobs/{job['id']}/pick", json={"provider": "ghost"}),
        422,
        fields=["provider"],
    )
    assert_error(
        client.post(f"/api/jobs/{job['id']}/pick", json={"provider": "local"}),
        422,
        fields=["provider"],
    )
    assert_error(client.post(f"/api/jobs/{job['id']}/pick", json={}), 422, fields=["provider"])
    assert_error(client.post("/api/jobs/999/pick", json={"provider": None}), 404, fields=["id"])
    assert_error(client.get("/api/jobs/999"), 404, fields=["id"])
    assert_error(client.get("/api/jobs/not-a-number"), 422)
    assert ok(client.get(f"/api/jobs/{job['id']}"))["meta"]["compute"]["decided_by"] == "advisor"


def test_jobs_import_summary_and_refusals(client: httpx.Client) -> None:
    summary = json.loads(SUMMARY_EXAMPLE.read_text("utf-8"))
    jobs = ok(client.post("/api/jobs/import-summary", json=summary), 201)
    assert len(jobs) == 5
    assert all(j["status"] == "queued" and "compute" in j["meta"] for j in jobs)
    assert all(j["source"] for j in jobs)
    assert ok(client.get("/api/jobs")) == jobs

    broken = json.loads(SUMMARY_EXAMPLE.read_text("utf-8"))
    broken["assets"][0]["width"] = -5
    assert_error(
        client.post("/api/jobs/import-summary", json=broken), 422, fields=["assets.0.width"]
    )
    no_project = {"format": "comfyvn.import-summary", "version": 1}
    assert_error(client.post("/api/jobs/import-summary", json=no_project), 422)
    assert_error(
        client.post("/api/jobs", json={"kind": "cg_super_res", "items": 0}), 422, fields=["items"]
    )
    assert_error(client.post("/api/jobs", content=b"not json"), 400)
    assert ok(client.get("/api/jobs")) == jobs  # nothing added by the refused ones


# -- settings -------------------------------------------------------------------------------


def test_settings_read_set_reset_shared_with_the_cli(
    client: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    every = ok(client.get("/api/settings"))
    assert set(every) == SETTING_KEYS
    assert every["advisor.budget_usd"] is None
    assert ok(client.get("/api/settings/advisor.budget_usd")) == {"advisor.budget_usd": None}

    put = client.put("/api/settings/advisor.budget_usd", json={"value": 5})
    assert ok(put) == {"advisor.budget_usd": 5.0}
    assert run_cli(capsys, "settings", "get", "advisor.budget_usd") == {"advisor.budget_usd": 5.0}
    assert ok(client.get("/api/settings"))["advisor.budget_usd"] == 5.0

    posted = client.post("/api/settings", json={"key": "advisor.latency", "value": "interactive"})
    assert ok(posted) == {"advisor.latency": "interactive"}
    assert run_cli(capsys, "settings", "get", "advisor.latency") == {
        "advisor.latency": "interactive"
    }
    run_cli(capsys, "settings", "set", "health.interval_s", "600")
    assert ok(client.get("/api/settings/health.interval_s")) == {"health.interval_s": 600}

    err = assert_error(
        client.put("/api/settings/advisor.budget_usd", json={"value": "lots"}),
        422,
        fields=["advisor.budget_usd"],
    )
    assert "lots" in err["message"]
    assert ok(client.get("/api/settings/advisor.budget_usd")) == {"advisor.budget_usd": 5.0}
    assert_error(
        client.post("/api/settings", json={"key": "advisor.latency", "value": "soon"}),
        422,
        fields=["advisor.latency"],
    )
    assert_error(client.post("/api/settings", json={"value": 1}), 422, fields=["key"])
    assert_error(client.put("/api/settings/advisor.budget_usd", json={}), 422, fields=["value"])

    assert ok(client.delete("/api/settings/advisor.budget_usd")) == {"advisor.budget_usd": None}
    assert run_cli(capsys, "settings", "get", "advisor.budget_usd") == {"advisor.budget_usd": None}

    for call in (
        client.get("/api/settings/no.such"),
        client.put("/api/settings/no.such", json={"value": 1}),
        client.delete("/api/settings/no.such"),
    ):
        assert_error(call, 404, fields=["key"])
    assert set(ok(client.get("/api/settings"))) == SETTING_KEYS


def test_one_home_is_shared_by_the_api_and_the_cli(
    client: httpx.Client, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    entry = ok(client.post("/api/providers/create", json=SEED_CREATE), 201)
    listed = run_cli(capsys, "providers", "list")
    assert [p for p in listed if p["id"] == "runpod-demo"] == [entry]
    assert run_cli(capsys, "providers", "show", "runpod-demo") == entry

    config = tmp_path / "vast.json"
    config.write_text(json.dumps({"api_key": "VAST-KEY-0123456789"}), "utf-8")
    made = run_cli(
        capsys, "providers", "create", "vast", "--id", "vast-cli", "--config-file", str(config)
    )
    assert ok(client.get("/api/providers/vast-cli")) == made
    assert ids(ok(client.get("/api/providers"))) == ["local", "runpod-demo", "vast-cli"]


# -- errors ---------------------------------------------------------------------------------


def test_unknown_route_and_wrong_method(client: httpx.Client) -> None:
    assert_error(client.get("/api/nothing-here"), 404, code="not_found")
    assert_error(client.get("/"), 404, code="not_found")
    r = client.put("/api/providers")
    assert_error(r, 405, code="method_not_allowed")
    assert "GET" in r.headers.get("allow", "")
    assert_error(client.delete("/api/jobs"), 405, code="method_not_allowed")
    assert_error(client.get("/api/providers/ghost"), 404, fields=["id"])


# -- security: token ------------------------------------------------------------------------

DUMMY_PARAMS = {"provider_id": "victim", "job_id": "1", "key": "advisor.budget_usd"}


def test_every_route_needs_the_token(srv: ApiServer, client: httpx.Client) -> None:
    ok(client.post("/api/providers/create", json={**SEED_CREATE, "id": "victim"}), 201)
    ok(client.put("/api/settings/advisor.budget_usd", json={"value": 3}))
    ok(client.post("/api/jobs", json=WORKLOAD), 201)
    state = (
        ok(client.get("/api/providers")),
        ok(client.get("/api/settings")),
        ok(client.get("/api/jobs")),
        home_secrets(srv.service.home),
    )

    spec = ok(client.get("/openapi.json"))
    routes = [
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "delete", "patch")
    ]
    assert len(routes) >= 22
    assert ("DELETE", "/api/providers/remove/{provider_id}") in routes
    assert ("POST", "/compute/advise") in routes
    routes.append(("GET", "/openapi.json"))

    with srv.client(token="") as anonymous:
        for method, path in routes:
            url = re.sub(r"\{(\w+)\}", lambda m: DUMMY_PARAMS[m.group(1)], path)
            body = {"value": 1} if method in ("POST", "PUT") else None
            r = anonymous.request(method, url, json=body)
            assert_error(r, 401, code="unauthorized")
            assert r.headers.get("www-authenticate", "").startswith("Bearer"), (method, url)

    assert state == (
        ok(client.get("/api/providers")),
        ok(client.get("/api/settings")),
        ok(client.get("/api/jobs")),
        home_secrets(srv.service.home),
    )


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wrong-token-0123456789-0123456789-0123",
        "Bearer {token}x",
        "Bearer {short}",
        "Bearer",
        "Basic {basic}",
        "Basic {token}",
        "Token {token}",
        "{token}",
    ],
)
def test_a_wrong_token_or_scheme_is_refused(srv: ApiServer, authorization: str) -> None:
    header = authorization.format(
        token=srv.token,
        short=srv.token[:-1],
        basic=base64.b64encode(f"user:{srv.token}".encode()).decode(),
    )
    with srv.client(token="", headers={"Authorization": header}) as c:
        r = c.get("/api/providers")
    assert_error(r, 401, code="unauthorized")
    assert r.headers.get("www-authenticate", "").startswith("Bearer")
    assert srv.token not in r.text


def test_the_token_file_is_private_long_and_kept_across_restarts(app_home: Path) -> None:
    token_file = app_home / "config" / "api-token"
    with api_server() as first:
        assert token_file.exists()
        mode = stat.S_IMODE(token_file.stat().st_mode)
        assert mode == 0o600, oct(mode)
        token = token_file.read_text("utf-8").strip()
        assert len(token) >= 32 and token == first.token
        with first.client() as c:
            ok(c.get("/api/providers"))
    with api_server(Service(resolve_home())) as second, second.client(token=token) as c:
        assert second.token == token
        assert token_file.read_text("utf-8").strip() == token
        ok(c.get("/api/providers"))


def test_a_token_of_another_home_is_refused(tmp_path: Path) -> None:
    with (
        api_server(Service(home_of(tmp_path / "one"))) as one,
        api_server(Service(home_of(tmp_path / "two"))) as two,
        one.client(token=two.token) as c,
    ):
        assert one.token != two.token
        assert_error(c.get("/api/providers"), 401)


# -- security: Host header, CORS, size limit, caching --------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1.evil.example",
        "127.0.0.1.evil.example:{port}",
        "localhost.evil.example:{port}",
        "192.0.2.77:{port}",
    ],
)
def test_a_foreign_host_header_is_refused(srv: ApiServer, host: str) -> None:
    with srv.client(headers={"Host": host.format(port=srv.port)}) as c:
        assert_error(c.get("/api/providers"), 403, code="forbidden")
        assert_error(c.post("/api/providers/create", json=SEED_CREATE), 403)
    with srv.client() as c:
        assert ids(ok(c.get("/api/providers"))) == ["local"]


@pytest.mark.parametrize(
    "host",
    ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "localhost", "LOCALHOST:{port}"],
)
def test_loopback_host_headers_are_accepted(srv: ApiServer, host: str) -> None:
    with srv.client(headers={"Host": host.format(port=srv.port)}) as c:
        assert ids(ok(c.get("/api/providers"))) == ["local"]


def test_no_cors_headers_and_preflight_needs_the_token(srv: ApiServer) -> None:
    origin = {"Origin": "https://evil.example"}
    with srv.client(headers=origin) as c:
        r = c.get("/api/providers")
        ok(r)
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]
        r = c.options("/api/providers", headers={"Access-Control-Request-Method": "POST"})
        assert r.status_code >= 400
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]
    with srv.client(token="", headers=origin) as anonymous:
        r = anonymous.options(
            "/api/providers/create",
            headers={
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert_error(r, 401)
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]


def _chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        part = min(MIB, total - sent)
        sent += part
        yield b" " * part


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_16_mib_is_refused_with_413(client: httpx.Client, streamed: bool) -> None:
    size = 16 * MIB + 1
    body: Any = _chunks(size) if streamed else b" " * size
    r = client.post("/api/providers/import", content=body)
    assert_error(r, 413, code="payload_too_large")
    assert ids(ok(client.get("/api/providers"))) == ["local"]  # the server still answers


def test_a_body_just_under_16_mib_is_read(client: httpx.Client) -> None:
    text = json.dumps({"kind": "cg_super_res", "items": 2})
    body = text + " " * (16 * MIB - len(text) - 1024)
    assert ok(client.post("/api/jobs", content=body.encode()), 201)["workload"]["items"] == 2


def test_every_response_says_no_store(srv: ApiServer, client: httpx.Client) -> None:
    responses = [
        client.get("/openapi.json"),
        client.get("/api/providers"),
        client.post("/api/providers/create", json=SEED_CREATE),
        client.post("/api/providers/create", json=SEED_CREATE),  # 409
        client.get("/api/providers/export"),
        client.get("/api/nothing"),
        client.put("/api/providers"),
        client.post("/compute/advise", content=b"{"),
        client.post("/compute/advise", json={"workload": {"kind": "x"}}),
        client.post("/api/providers/import", content=b" " * (16 * MIB + 1)),
    ]
    with srv.client(token="") as anonymous:
        responses.append(anonymous.get("/api/providers"))
    with srv.client(headers={"Host": "evil.example"}) as foreign:
        responses.append(foreign.get("/api/providers"))
    statuses = sorted({r.status_code for r in responses})
    assert statuses == [200, 201, 400, 401, 403, 404, 405, 409, 413, 422]
    for r in responses:
        assert r.headers.get("cache-control") == "no-store", (r.request.url, r.status_code)


# -- security: secret export from another machine ------------------------------------------


def test_secret_export_only_for_loopback_clients_or_when_allowed(
    app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMFYVN_ALLOW_SECRET_EXPORT", raising=False)
    ip = own_ipv4()
    with api_server(host="0.0.0.0") as srv, srv.client(host=ip) as remote, srv.client() as local:
        ok(remote.post("/api/providers/create", json=SEED_CREATE), 201)

        r = remote.get("/api/providers/export", params={"include_secrets": "true"})
        err = assert_error(r, 403, fields=["include_secrets"], code="forbidden")
        assert "COMFYVN_ALLOW_SECRET_EXPORT" in err["message"]
        assert "RUNPOD_KEY" not in r.text

        plain = remote.get("/api/providers/export")
        assert ids(ok(plain)["providers"]) == ["local", "runpod-demo"]
        assert "RUNPOD_KEY" not in plain.text

        monkeypatch.setenv("COMFYVN_ALLOW_SECRET_EXPORT", "0")
        assert_error(remote.get("/api/providers/export?include_secrets=true"), 403)

        mine = ok(local.get("/api/providers/export", params={"include_secrets": "true"}))
        assert mine["providers"][1]["secrets"] == {"api_key": "RUNPOD_KEY"}

        # bound to every interface: any IP address is a fine Host, a DNS name is not
        with srv.client(host=ip, headers={"Host": f"evil.example:{srv.port}"}) as foreign:
            assert_error(foreign.get("/api/providers"), 403, code="forbidden")

        monkeypatch.setenv("COMFYVN_ALLOW_SECRET_EXPORT", "1")
        allowed = ok(remote.get("/api/providers/export", params={"include_secrets": "true"}))
        assert allowed["include_secrets"] is True
        assert allowed["providers"][1]["secrets"] == {"api_key": "RUNPOD_KEY"}


def test_a_server_bound_to_one_address_answers_to_it(app_home: Path) -> None:
    ip = own_ipv4()
    with api_server(host=ip) as srv:
        with srv.client() as c:
            ok(c.get("/api/providers"))
            r = c.get("/api/providers/export", params={"include_secrets": "true"})
            assert_error(r, 403, fields=["include_secrets"])
        with srv.client(headers={"Host": f"evil.example:{srv.port}"}) as c:
            assert_error(c.get("/api/providers"), 403, code="forbidden")


# -- security: canary secrets never leave the keyring -------------------------------------

CANARY = "7f3a9c1d"
#: An AWS access key id in form, built at run time so no committed line looks like a real key.
AWS_CANARY = "AKIA" + "CANARY7F3A9C1D00"
GCP_CANARY = f"CANARY-gcp-private-key-{CANARY}"


def canary_providers(closed: str) -> dict[str, dict[str, Any]]:
    """One provider of every template with secrets, each secret a canary, each endpoint a
    closed port (so checks fail fast, after reading the secrets)."""
    tls_closed = closed.replace("http://", "https://")
    sa = {
        "type": "service_account",
        "project_id": "vn-render-farm",
        "private_key_id": f"kid-{CANARY}",
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{GCP_CANARY}\n-----END PRIVATE KEY-----\n",
        "client_email": "vn@vn-render-farm.iam.gserviceaccount.com",
        "token_uri": f"{closed}/token",
    }
    return {
        "c-runpod": {
            "template_id": "runpod",
            "base_url": f"{closed}/v2",
            "config": {
                "api_key": f"CANARY-runpod-{CANARY}",
                "webhook_secret": f"CANARY-webhook-{CANARY}",
                "endpoints": {"graphql": f"{closed}/graphql"},
            },
        },
        "c-vast": {
            "template_id": "vast",
            "base_url": closed,
            "secrets": {"api_key": f"CANARY-vast-{CANARY}"},
        },
        "c-lambda": {
            "template_id": "lambda",
            "base_url": closed,
            "secrets": {"api_key": f"CANARY-lambda-{CANARY}"},
        },
        "c-paperspace": {
            "template_id": "paperspace",
            "base_url": closed,
            "config": {"project": "vn-cache"},
            "secrets": {"api_key": f"CANARY-paperspace-{CANARY}"},
        },
        "c-coreweave": {
            "template_id": "coreweave",
            "config": {"organization_id": "acme", "endpoints": {"kubernetes": tls_closed}},
            "secrets": {"api_key": f"CANARY-coreweave-{CANARY}"},
        },
        "c-aws": {
            "template_id": "aws",
            "config": {"region": "eu-west-1", "endpoints": {"aws": closed}},
            "secrets": {
                "access_key": AWS_CANARY,
                "secret_key": f"CANARYaws{CANARY}".ljust(40, "Q"),
            },
        },
        "c-azure": {
            "template_id": "azure",
            "config": {
                "tenant_id": "00000000-0000-4000-8000-000000000001",
                "client_id": "00000000-0000-4000-8000-000000000002",
                "subscription_id": "00000000-0000-4000-8000-000000000003",
                "endpoints": {"authority": tls_closed, "management": tls_closed},
            },
            "secrets": {"client_secret": f"CANARY-azure-{CANARY}"},
        },
        "c-gcp": {
            "template_id": "gcp",
            "config": {
                "project_id": "vn-render-farm",
                "region": "europe-west4",
                "endpoints": {"token_uri": f"{closed}/token"},
            },
            "secrets": {"service_account_json": json.dumps(sa)},
        },
        "c-lan": {
            "template_id": "lan",
            "config": {"endpoint": closed},
            "secrets": {"api_token": f"CANARY-lan-{CANARY}"},
        },
        "c-ssh": {
            "template_id": "ssh",
            "config": {
                "hostname": closed.removeprefix("http://"),
                "username": "vn",
                "ssh_key_path": "/nonexistent/id_ed25519",
                "nfs_mount": "/mnt/vn",
            },
            "secrets": {"key_passphrase": f"CANARY-ssh-{CANARY}"},
        },
    }


def test_canary_secrets_appear_in_no_response_and_no_file(
    srv: ApiServer, client: httpx.Client, app_home: Path
) -> None:
    closed = closed_port_url()
    providers = canary_providers(closed)
    seen: list[httpx.Response] = []

    def call(method: str, url: str, **kw: Any) -> httpx.Response:
        r = client.request(method, url, **kw)
        assert r.status_code < 500, (method, url, r.text)
        seen.append(r)
        return r

    call("PUT", "/api/settings/checks.timeout_s", json={"value": 5})
    for pid, payload in providers.items():
        assert call("POST", "/api/providers/create", json={**payload, "id": pid}).status_code == 201
    # a second runpod key through register, and an update that keeps every secret
    rekey = {"id": "c-runpod", "secrets": {"api_key": f"CANARY-runpod2-{CANARY}"}}
    assert call("POST", "/api/providers/register", json=rekey).status_code == 200
    for pid in providers:
        r = call("POST", "/api/providers/register", json={"id": pid, "name": f"{pid} renamed"})
        assert r.status_code == 200
    # refusals that handle a secret value: wrong form, wrong place
    bad = {"template_id": "aws", "secrets": {"secret_key": f"CANARY-bad-{CANARY}"}}
    assert call("POST", "/api/providers/create", json=bad).status_code == 422
    misplaced = {"id": "c-vast", "config": {"client_secret": f"CANARY-misplaced-{CANARY}"}}
    assert call("POST", "/api/providers/register", json=misplaced).status_code == 422

    for pid in providers:
        result = call("POST", f"/api/providers/{pid}/validate").json()
        assert result["provider"] == pid and result["status"] != "valid", result
    assert {r["provider"] for r in call("GET", "/api/providers/health").json()} >= set(providers)
    call("GET", "/api/providers/health", params={"cached": "true"})
    call("GET", "/api/providers/export")
    call("GET", "/api/providers/export", params={"include_secrets": "false"})
    job = call("POST", "/api/jobs", json=WORKLOAD).json()
    call("POST", "/api/jobs/import-summary", json=json.loads(SUMMARY_EXAMPLE.read_text("utf-8")))
    call("POST", f"/api/jobs/{job['id']}/pick", json={"provider": None})
    call("POST", "/compute/advise", json={"workload": WORKLOAD})
    call("POST", "/compute/advise", content=ADVICE_EXAMPLE.read_bytes())
    call("POST", "/api/settings", json={"key": "advisor.budget_usd", "value": 4})

    spec = call("GET", "/openapi.json").json()
    fill = {
        "provider_id": ["local", *providers],
        "job_id": [str(job["id"])],
        "key": sorted(SETTING_KEYS),
    }
    for path, ops in spec["paths"].items():
        if "get" not in ops:
            continue
        names = re.findall(r"\{(\w+)\}", path)
        values = fill[names[0]] if names else [""]
        for value in values:
            url = re.sub(r"\{\w+\}", value, path)
            assert call("GET", url).status_code == 200, url

    canaries = [
        *(
            v
            for payload in providers.values()
            for v in {**payload.get("config", {}), **payload.get("secrets", {})}.values()
            if isinstance(v, str) and CANARY in v and not v.startswith("{")
        ),
        f"CANARY-runpod2-{CANARY}",
        f"CANARY-bad-{CANARY}",
        f"CANARY-misplaced-{CANARY}",
        AWS_CANARY,
        GCP_CANARY,
    ]
    assert len(canaries) >= 13
    for r in seen:
        text = r.text + json.dumps(dict(r.headers))
        for canary in canaries:
            assert canary not in text, (r.request.method, r.request.url, canary)

    # the keyring holds them (so the scan above looked for values that exist) ...
    stored = "\n".join(home_secrets(srv.service.home).values())
    never_stored = {  # replaced through register, or refused
        f"CANARY-runpod-{CANARY}",
        f"CANARY-bad-{CANARY}",
        f"CANARY-misplaced-{CANARY}",
    }
    for canary in canaries:
        assert (canary in stored) is (canary not in never_stored), canary
    backup = client.get("/api/providers/export", params={"include_secrets": "true"}).text
    assert f"CANARY-runpod2-{CANARY}" in backup and GCP_CANARY in backup

    # ... and no file of the home does
    files = [p for p in app_home.rglob("*") if p.is_file()]
    assert any(p.name == "providers.json" for p in files)
    assert any(p.parent.name == "logs" for p in files)
    for path in files:
        data = path.read_bytes()
        for canary in canaries:
            assert canary.encode() not in data, (path, canary)
