"""The HTTP API's routes (docs/architecture.md, "HTTP API"), spoken to over real HTTP.

Every test talks to the product's own uvicorn server (``tests/fakes/api_server.py``, started
as ``comfyvn-gui serve`` starts it; fixtures in ``conftest.py``) on a free port, with a real
Secret Service behind the keyring and, where a provider is checked, the RunPod contract fake or
a closed port. The command line runs in the same process on the same home, to show that the
skins agree. The security of the same server: ``test_security.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from comfyvn_gui.service import Service
from comfyvn_gui.store.audit import read_events
from tests.api.helpers import (
    ADVICE_EXAMPLE,
    HEALTH_STATUSES,
    SEED_AUTH_FIELDS,
    SEED_CREATE,
    SETTING_KEYS,
    SUMMARY_EXAMPLE,
    WORKLOAD,
    active_runpod,
    assert_error,
    home_of,
    home_secrets,
    ids,
    ok,
    run_cli,
    runpod_payload,
    without,
)
from tests.fakes.api_server import ApiServer, api_server
from tests.fakes.runpod import RunPodFake

pytestmark = pytest.mark.usefixtures("secret_service")


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
    assert {k: v for k, v in listed["providers"][1].items() if k in entry} == entry
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
        providers_a = ok(a.get("/api/providers"))["providers"]
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

        providers_b = ok(b.get("/api/providers"))["providers"]
        assert ids(providers_b) == ids(providers_a)
        for pa, pb in zip(providers_a[1:], providers_b[1:], strict=True):
            assert without(pb, "active", "last_health") == without(pa, "active", "last_health")
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

    answer = ok(client.get("/api/providers/health", params={"id": "rp"}))
    [only] = answer["results"]
    assert answer["status"] == only and answer["ok"] is True
    assert only["provider"] == "rp" and only["check"] == "health"
    assert only["status"] == "healthy", only
    assert only["detail"]["endpoint_id"] == "ep-a"
    assert [(r.method, r.path) for r in runpod.requests] == [("GET", "/v2/ep-a/health")]

    every = ok(client.get("/api/providers/health"))["results"]
    assert {r["provider"] for r in every} == {"local", "rp"}
    assert all(r["status"] in HEALTH_STATUSES for r in every)
    seen = len(runpod.requests)
    assert seen == 2

    cached = ok(client.get("/api/providers/health", params={"cached": "true"}))["results"]
    assert sorted(cached, key=lambda r: r["provider"]) == sorted(every, key=lambda r: r["provider"])
    one = ok(client.get("/api/providers/health", params={"cached": "true", "id": "rp"}))
    assert one["results"] == [r for r in every if r["provider"] == "rp"]
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
    err = assert_error(
        client.post("/api/jobs/import-summary?project_dir=my-vn", json=summary),
        422,
        fields=["project_dir"],
    )
    assert "absolute folder path" in err["message"]
    assert ok(client.get("/api/jobs")) == jobs  # nothing added by the refused ones

    folder = "/srv/vn/moonlit"
    more = ok(
        client.post("/api/jobs/import-summary", params={"project_dir": folder}, json=summary), 201
    )
    assert {j["source"]["project_dir"] for j in more} == {folder}


def test_cancel_and_retry_a_job(client: httpx.Client) -> None:
    job = ok(client.post("/api/jobs", json={"kind": "cg_super_res", "items": 2}), 201)
    cancelled = ok(client.post(f"/api/jobs/{job['id']}/cancel"))
    assert cancelled["status"] == "cancelled"
    err = assert_error(client.post(f"/api/jobs/{job['id']}/cancel"), 409, fields=["id"])
    assert err["message"] == f"job {job['id']} is cancelled already"
    queued = ok(client.post(f"/api/jobs/{job['id']}/retry"))
    assert queued["status"] == "queued"
    assert queued["meta"]["compute"]["decided_at"] > job["meta"]["compute"]["decided_at"]
    assert_error(client.post(f"/api/jobs/{job['id']}/retry"), 409, fields=["id"])
    assert_error(client.post("/api/jobs/999/cancel"), 404, fields=["id"])


# -- settings -------------------------------------------------------------------------------


def test_a_workflow_template_is_set_through_the_api_as_a_graph(
    client: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    from comfyvn_gui.core.runs import shipped_template

    shipped = shipped_template("cg_super_res")
    assert shipped is not None
    graph = dict(shipped.graph)
    put = client.put("/api/settings/workflows.cg_super_res", json={"value": graph})
    assert ok(put) == {"workflows.cg_super_res": graph}
    got = run_cli(capsys, "settings", "get", "workflows.cg_super_res")
    assert got == {"workflows.cg_super_res": graph}
    no_input = {k: v for k, v in graph.items() if v["class_type"] != "LoadImage"}
    err = assert_error(
        client.put("/api/settings/workflows.cg_super_res", json={"value": no_input}),
        422,
        fields=["workflows.cg_super_res"],
    )
    assert "links to node" in err["message"] or "{{input_image}}" in err["message"]
    assert ok(client.get("/api/settings/workflows.cg_super_res")) == got  # unchanged


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


def test_import_flags_in_the_query_are_honoured_never_ignored(
    srv: ApiServer, client: httpx.Client
) -> None:
    home = srv.service.home
    ok(client.post("/api/providers/create", json=SEED_CREATE), 201)
    exported = ok(client.get("/api/providers/export"))
    renamed = [{**p, "name": "Renamed"} for p in exported["providers"]]
    extra = {"id": "vast-q", "template_id": "vast", "secrets": {"api_key": "VAST-KEY-0123456789"}}
    body = {"providers": [*renamed, extra]}
    before = home.registry_file.read_bytes()

    dry = ok(client.post("/api/providers/import", params={"dry_run": "true"}, json=body))
    assert dry["dry_run"] is True and home.registry_file.read_bytes() == before

    conflict = client.post(
        "/api/providers/import", params={"overwrite": "false"}, json={**body, "overwrite": True}
    )
    assert_error(conflict, 422, fields=["overwrite"])
    assert home.registry_file.read_bytes() == before

    done = ok(client.post("/api/providers/import", params={"overwrite": "false"}, json=body))
    assert done["imported"] == ["vast-q"]
    assert all(p["name"] != "Renamed" for p in ok(client.get("/api/providers"))["providers"])


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_in_a_body_are_bad_input(client: httpx.Client, number: str) -> None:
    ok(client.post("/api/providers/create", json=SEED_CREATE), 201)
    headers = {"content-type": "application/json"}
    r = client.post(
        "/api/providers/register",
        content=f'{{"id": "runpod-demo", "meta": {{"x": {{"y": {number}}}}}}}',
        headers=headers,
    )
    assert r.status_code in (400, 422), r.text
    assert "finite" in r.json()["error"]["message"]
    r = client.post(
        "/compute/advise",
        content=f'{{"workload": {{"kind": "cg_super_res", "vram_gb": {number}}}}}',
        headers=headers,
    )
    assert r.status_code in (400, 422), r.text
    assert ok(client.get("/api/providers/runpod-demo"))["meta"] == {"notes": "Demo project"}


def test_offers_answer_cheapest_first_filtered_as_the_cli_does(
    srv: ApiServer, client: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    """``GET /api/offers``: every template's catalog rows (nobody registered), cheapest first,
    the filters as ``comfyvn-gui offers`` applies them; a bad zone is a 422 naming it; no
    token, no offers."""
    every = ok(client.get("/api/offers"))["offers"]
    assert every and all(not o["configured"] and o["source"] == "catalog" for o in every)
    prices = [o["hourly_usd"] for o in every]
    assert prices == sorted(prices)
    assert {o["template_id"] for o in every} >= {"aws", "azure", "gcp", "lambda"}
    big = ok(client.get("/api/offers", params={"vram": 48, "zone": "eu", "max_price": 5}))
    assert big["offers"] and all(
        o["vram_gb"] >= 48 and o["zone"] == "eu" and o["hourly_usd"] <= 5 for o in big["offers"]
    )
    a100 = ok(client.get("/api/offers", params={"gpu": "A100"}))["offers"]
    assert {o["gpu"] for o in a100} == {"A100 40GB", "A100 80GB"}
    from_cli = run_cli(capsys, "offers", "--gpu", "A100")
    assert from_cli["offers"] == a100 and from_cli["failed"] == []
    assert_error(client.get("/api/offers", params={"zone": "mars"}), 422, fields=["zone"])
    with httpx.Client(base_url=srv.url) as anonymous:
        assert_error(anonymous.get("/api/offers"), 401)
