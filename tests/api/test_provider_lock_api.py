"""The HTTP API on a provider with work in flight: 409 ``conflict`` in the one error shape,
naming the jobs, nothing changed; accepted once the jobs end (the product's own server over
real HTTP, fixtures in ``conftest.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from comfyvn_gui.core.jobs import ComputeDecision
from comfyvn_gui.service import Service
from tests.api.helpers import assert_error, home_secrets, ok
from tests.fakes.api_server import ApiServer

pytestmark = pytest.mark.usefixtures("secret_service")

KEY = "rp-api-lock-key-0123456789"
RUNPOD: dict[str, Any] = {
    "id": "runpod-1",
    "template_id": "runpod",
    "name": "RunPod one",
    "config": {"endpoint_id": "ep-one"},
    "secrets": {"api_key": KEY},
}


def running_on(svc: Service, provider_id: str) -> int:
    job = svc.add_job({"kind": "translation", "characters": 5000})
    moved = svc.job_store.change_status(
        job.id,
        expected=["queued"],
        status="running",
        actor="test",
        message="running: dispatched by the test",
        decision=ComputeDecision(
            provider=provider_id, advice={}, decided_at=datetime.now(UTC), decided_by="user"
        ),
    )
    assert moved is not None and moved.status == "running"
    return job.id


def test_locked_changes_answer_409_and_change_nothing(srv: ApiServer, client: httpx.Client) -> None:
    home = srv.service.home
    ok(client.post("/api/providers/register", json=RUNPOD), 201)
    job = running_on(srv.service, "runpod-1")
    before = (home.registry_file.read_bytes(), home_secrets(home))
    other = {**RUNPOD, "id": "runpod-2"}
    attempts = [
        (client.delete("/api/providers/remove/runpod-1"), ["id"], "before removing it"),
        (
            client.post(
                "/api/providers/register",
                json={"id": "runpod-1", "secrets": {"api_key": "rp-api-other-0123456789"}},
            ),
            ["api_key"],
            "before changing its credentials (api_key)",
        ),
        (
            client.post(
                "/api/providers/register",
                json={"id": "runpod-1", "config": {"endpoint_id": "ep-two"}},
            ),
            ["endpoint_id"],
            "before changing its location (endpoint_id)",
        ),
        (
            client.post("/api/providers/register", json={"id": "runpod-1", "enabled": False}),
            ["enabled"],
            "before disabling it",
        ),
        (
            client.post("/api/providers/import", json={"providers": [other], "replace": True}),
            ["replace"],
            "or import without replace",
        ),
        (
            client.post(
                "/api/providers/import",
                json={"providers": [other], "replace": True, "dry_run": True},
            ),
            ["replace"],
            "or import without replace",
        ),
        (
            client.post("/api/providers/import", json={"providers": [RUNPOD]}),
            ["overwrite"],
            "or import without overwrite",
        ),
    ]
    for response, fields, words in attempts:
        err = assert_error(response, 409, fields=fields, code="conflict")
        assert f"runpod-1 (job {job})" in err["message"] or err["message"].startswith(
            f"runpod-1 has work in flight (job {job})"
        ), err["message"]
        assert f"`comfyvn-gui jobs cancel {job}`" in err["message"]
        assert words in err["message"], err["message"]
        assert KEY not in response.text
        assert (home.registry_file.read_bytes(), home_secrets(home)) == before

    renamed = ok(client.post("/api/providers/register", json={"id": "runpod-1", "name": "Two"}))
    assert renamed["name"] == "Two"
    assert home_secrets(home) == before[1]


def test_accepted_once_the_job_ended(srv: ApiServer, client: httpx.Client) -> None:
    home = srv.service.home
    ok(client.post("/api/providers/register", json=RUNPOD), 201)
    job = running_on(srv.service, "runpod-1")
    assert_error(client.delete("/api/providers/remove/runpod-1"), 409, fields=["id"])
    srv.service.job_store.change_status(
        job, expected=["running"], status="cancelled", actor="test", message="cancelled"
    )
    changed = {"id": "runpod-1", "secrets": {"api_key": "rp-api-other-0123456789"}}
    assert ok(client.post("/api/providers/register", json=changed))["secrets_set"] == ["api_key"]
    assert home_secrets(home) == {"runpod-1/api_key": "rp-api-other-0123456789"}
    assert ok(client.delete("/api/providers/remove/runpod-1")) == {"removed": ["runpod-1"]}
    assert home_secrets(home) == {}
