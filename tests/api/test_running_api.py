"""The HTTP API's ``running`` routes and dispatch to rented machines, through the product's own
server: an orphan listed and released (by its ref, or every orphan), an unknown ref refused
(400, the error object), a machine a job in flight uses refused (409: cancel the job), a job
dispatched to a machine provider run to its end, and a cancel mid-run releasing the machine.

The providers are their contract fakes with real sshd machines
(``tests/service/test_dispatch_machines.py``'s kits); every test that rents proves nothing is
left: the fake holds nothing, no machine's sshd runs, no dispatch driver is left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from comfyvn_gui.store.driver_lock import driver_running
from tests.api.helpers import assert_error, ok
from tests.fakes.api_server import api_server
from tests.fakes.comfyui import running_comfyui
from tests.fakes.machine_host import MachineHosts
from tests.fakes.sshd import free_port
from tests.service.test_dispatch import posts, stop_driver
from tests.service.test_dispatch_machines import (
    Kit,
    assert_released,
    launch_orphan,
    machine_service,
    queued,
    runpod_pods_kit,
    vast_kit,
)

pytestmark = pytest.mark.usefixtures("secret_service")

ORPHAN_JOB = 999  # (a job id this home never had)
EMPTY = {"resources": [], "errors": [], "orphans": 0}


@pytest.fixture
def hosts() -> Iterator[MachineHosts]:
    with MachineHosts() as h:
        yield h


@pytest.fixture
def pods(hosts: MachineHosts) -> Iterator[Kit]:
    yield from runpod_pods_kit(hosts)


@pytest.fixture
def vast(hosts: MachineHosts) -> Iterator[Kit]:
    yield from vast_kit(hosts)


def job_until(
    client: httpx.Client, job_id: int, what: Callable[[dict[str, Any]], Any], timeout: float = 30
) -> dict[str, Any]:
    """The job as the API shows it, once ``what`` holds of it."""
    end = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = ok(client.get(f"/api/jobs/{job_id}"))
        if what(job):
            return job
        assert time.monotonic() < end, job
        time.sleep(0.1)


def dispatch_body(client: httpx.Client, job_id: int) -> dict[str, Any]:
    """What a client sends: the provider and decision time as the job shows them, and every
    consent code the job lists, acknowledged."""
    job = ok(client.get(f"/api/jobs/{job_id}"))
    codes = [w["code"] for w in ok(client.get(f"/api/jobs/{job_id}/consent"))]
    assert codes, "a rented machine is asked about"
    return {
        "provider": job["meta"]["compute"]["provider"],
        "decided_at": job["meta"]["compute"]["decided_at"],
        "acknowledge": codes,
    }


def test_an_orphan_is_listed_and_released_over_the_api(vast: Kit, hosts: MachineHosts) -> None:
    svc = machine_service(vast, free_port())  # (no job runs: no ComfyUI is asked)
    with api_server(svc) as srv, srv.client() as client:
        assert ok(client.get("/api/running")) == EMPTY
        asyncio.run(launch_orphan(svc, ORPHAN_JOB))
        asyncio.run(launch_orphan(svc, ORPHAN_JOB + 1))
        first, second = vast.held()
        listing = ok(client.get("/api/running"))
        assert listing["orphans"] == 2 and listing["errors"] == []
        rows = {r["ref"]: r for r in listing["resources"]}
        assert set(rows) == {f"rented:{first}", f"rented:{second}"}
        assert {r["state"] for r in rows.values()} == {"orphan"}
        assert {r["job_id"] for r in rows.values()} == {ORPHAN_JOB, ORPHAN_JOB + 1}
        assert {r["kind"] for r in rows.values()} == {"machine"}
        home = svc.home.home_id()
        assert rows[f"rented:{first}"]["name"].startswith(f"comfyvn-{home}-job")

        # one, by its ref
        stopped = ok(client.post(f"/api/running/rented:{first}/stop"))["stopped"]
        assert [r["ref"] for r in stopped] == [f"rented:{first}"]
        assert stopped[0] == rows[f"rented:{first}"] | {
            k: stopped[0][k] for k in ("age_s", "cost_so_far_usd", "status")
        }
        assert vast.held() == [second]
        # an unknown ref (or the one just released): not found, the error object naming it
        for ref in ("nosuch:ref", f"rented:{first}"):
            r = client.post(f"/api/running/{ref}/stop")
            err = assert_error(r, 404, fields=["ref"])
            assert f"no resource {ref} of this home" in err["message"]
        # every orphan
        stopped = ok(client.post("/api/running/orphans/stop"))["stopped"]
        assert [r["ref"] for r in stopped] == [f"rented:{second}"]
        assert vast.held() == [] and hosts.alive == []
        assert ok(client.get("/api/running")) == EMPTY
        assert ok(client.post("/api/running/orphans/stop")) == {"stopped": []}
    assert not driver_running(svc.home)


def test_a_job_dispatched_over_the_api_runs_on_a_rented_machine_and_releases_it(
    pods: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    with running_comfyui() as comfyui:
        svc = machine_service(pods, comfyui.port)
        job = queued(svc, tmp_path)
        with api_server(svc) as srv, srv.client() as client:
            body = dispatch_body(client, job.id)
            # without the codes: 409 listing them, nothing rented
            refused = {k: v for k, v in body.items() if k != "acknowledge"}
            err = assert_error(client.post(f"/api/jobs/{job.id}/dispatch", json=refused), 409)
            assert all(code in err["message"] for code in body["acknowledge"])
            assert pods.held() == []
            started = ok(client.post(f"/api/jobs/{job.id}/dispatch", json=body))
            assert started["status"] == "submitting"
            record = started["meta"]["dispatch"]
            assert record["bill_guard"] and record["acknowledged"]["interface"] == "HTTP API"
            done = job_until(
                client, job.id, lambda j: j["status"] in ("completed", "failed", "cancelled")
            )
            record = done["meta"]["dispatch"]
            assert done["status"] == "completed", record.get("ended_message")
            assert "was released" in record["ended_message"]
            assert record["actual_cost_usd"] > 0 and posts(comfyui, "/prompt") == 2
            assert len(ok(client.get(f"/api/jobs/{job.id}/outputs"))["outputs"]) == 2
            assert ok(client.get("/api/running")) == EMPTY
            stop_driver(svc, wait_idle=True)
    assert_released(svc, pods, hosts, svc.get_job(job.id))


def test_a_machine_in_use_is_refused_and_a_cancel_mid_run_releases_it(
    pods: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    with running_comfyui(node_delay_s=0.5) as comfyui:
        svc = machine_service(pods, comfyui.port)
        job = queued(svc, tmp_path)
        with api_server(svc) as srv, srv.client() as client:
            ok(client.post(f"/api/jobs/{job.id}/dispatch", json=dispatch_body(client, job.id)))
            job_until(client, job.id, lambda j: j["status"] == "running")
            listing = ok(client.get("/api/running"))
            [row] = listing["resources"]
            assert row["state"] == "in_use" and row["job_id"] == job.id, listing
            assert listing["orphans"] == 0 and row["kind"] == "pod"
            # the job's own machine: 409 saying to cancel the job; every orphan: not it
            err = assert_error(client.post(f"/api/running/{row['ref']}/stop"), 409)
            assert f"jobs cancel {job.id}" in err["message"] and err["fields"] == ["ref"]
            assert ok(client.post("/api/running/orphans/stop")) == {"stopped": []}
            assert pods.held() != []
            # cancel mid-run: the driver releases the machine
            asked = ok(client.post(f"/api/jobs/{job.id}/cancel"))
            assert asked["meta"]["dispatch"]["cancel_requested"]
            done = job_until(
                client, job.id, lambda j: j["status"] in ("completed", "failed", "cancelled")
            )
            assert done["status"] == "cancelled", done["meta"]["dispatch"]
            assert "was released" in done["meta"]["dispatch"]["ended_message"]
            assert ok(client.get("/api/running")) == EMPTY
            stop_driver(svc, wait_idle=True)
    assert_released(svc, pods, hosts, svc.get_job(job.id))


# -- known product bugs (strict: each passes once the product is fixed; drop the marker then) --


@pytest.mark.parametrize(
    "ref", ["nosuch:ref", "az:Microsoft.Compute/virtualMachines/comfyvn-0a1b-job3"]
)
def test_an_unknown_ref_is_a_404(client: httpx.Client, ref: str) -> None:
    """A ref may hold slashes (Azure's resource ids): the route takes it whole, and the
    answer is the service's own (naming the ref), not a route that does not exist."""
    err = assert_error(client.post(f"/api/running/{ref}/stop"), 404)
    assert ref in err["message"]


def test_a_release_the_provider_refuses_says_why(vast: Kit, hosts: MachineHosts) -> None:
    from tests.fakes.http import reply_json

    svc = machine_service(vast, free_port())
    asyncio.run(launch_orphan(svc, ORPHAN_JOB))
    [instance] = vast.held()
    server = vast.fake.server
    route = server.routes[("DELETE", "/api/v0/instances/{id}/")]
    server.route("DELETE", "/api/v0/instances/{id}/")(
        lambda req: reply_json(503, {"success": False, "error": "busy", "msg": "try later"})
    )
    try:
        with api_server(svc) as srv, srv.client() as client:
            r = client.post(f"/api/running/rented:{instance}/stop")
            err = assert_error(r, 503, code="operation_failed")
            assert f"rented:{instance}" in err["message"] and "unavailable" in err["message"]
    finally:
        server.route("DELETE", "/api/v0/instances/{id}/")(route)
        asyncio.run(svc.stop_running(orphans=True))
        assert vast.held() == [] and hosts.alive == []
