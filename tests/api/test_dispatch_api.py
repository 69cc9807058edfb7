"""The HTTP API's dispatch routes: the gate (409 listing the codes), loopback only (403 with
nothing sent, whatever the environment), dry run, outputs, cancel and remove."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from comfyvn_gui.service import Service
from tests.api.helpers import assert_error, ok, own_ipv4
from tests.fakes.api_server import api_server
from tests.fakes.comfyui import ComfyUIServer, running_comfyui
from tests.service.test_dispatch import local_gpu, project, stop_driver, summary

pytestmark = pytest.mark.usefixtures("secret_service")

__all__ = ["local_gpu"]  # (the fixture: a GPU for the local provider, this machine has none)


@pytest.fixture
def comfyui() -> Iterator[ComfyUIServer]:
    with running_comfyui() as server:
        yield server


def _setup(svc: Service, comfyui: ComfyUIServer, tmp_path: Path, *, proprietary: bool) -> int:
    svc.register_provider(
        {"id": "local", "template_id": "local", "config": {"endpoints": {"comfyui": comfyui.url}}}
    )
    data = summary()
    if proprietary:
        data["assets"][0]["license"] = "proprietary"
    [job] = svc.import_summary(data, str(project(tmp_path / "project")))
    return job.id


def _body(client: httpx.Client, job_id: int, **extra: Any) -> dict[str, Any]:
    job = ok(client.get(f"/api/jobs/{job_id}"))
    return {
        "provider": job["meta"]["compute"]["provider"],
        "decided_at": job["meta"]["compute"]["decided_at"],
        **extra,
    }


def test_dispatch_over_the_api_runs_the_job_and_lists_its_outputs(
    app_home: Path, comfyui: ComfyUIServer, tmp_path: Path
) -> None:
    svc = Service()
    job_id = _setup(svc, comfyui, tmp_path, proprietary=False)
    with api_server(svc) as srv, srv.client() as client:
        assert ok(client.get(f"/api/jobs/{job_id}/consent")) == []
        # outputs, before it ran: 409
        assert_error(client.get(f"/api/jobs/{job_id}/outputs"), 409, code="conflict")
        # a dry run checks everything and changes nothing
        dry = ok(
            client.post(f"/api/jobs/{job_id}/dispatch", json=_body(client, job_id, dry_run=True))
        )
        assert dry["status"] == "queued" and comfyui.requests == []
        # a stale decision time is refused
        stale = _body(client, job_id, decided_at="2020-01-01T00:00:00Z")
        assert_error(client.post(f"/api/jobs/{job_id}/dispatch", json=stale), 409)
        started = ok(client.post(f"/api/jobs/{job_id}/dispatch", json=_body(client, job_id)))
        assert started["status"] == "submitting"
        assert started["meta"]["dispatch"]["acknowledged"]["interface"] == "HTTP API"
        # in flight: it cannot be removed, nor dispatched again
        assert_error(client.delete(f"/api/jobs/{job_id}"), 409)
        end = time.monotonic() + 60
        while ok(client.get(f"/api/jobs/{job_id}"))["status"] not in ("completed", "failed"):
            assert time.monotonic() < end
            time.sleep(0.2)
        done = ok(client.get(f"/api/jobs/{job_id}"))
        assert done["status"] == "completed", done["meta"]["dispatch"]
        listing = ok(client.get(f"/api/jobs/{job_id}/outputs"))
        assert len(listing["outputs"]) == 2 and Path(listing["folder"]).is_dir()
        stop_driver(svc)
        assert ok(client.delete(f"/api/jobs/{job_id}")) == {"removed": job_id}
        assert_error(client.get(f"/api/jobs/{job_id}"), 404)
    # its trail is kept, with the removal as its last line
    assert svc.job_store.events(job_id)[-1].action == "removed"


def test_dispatch_is_refused_to_other_machines_whatever_the_environment(
    app_home: Path, comfyui: ComfyUIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMFYVN_ALLOW_SECRET_EXPORT", "1")
    svc = Service()
    job_id = _setup(svc, comfyui, tmp_path, proprietary=False)
    with api_server(svc, host="0.0.0.0") as srv, srv.client(host=own_ipv4()) as remote:
        body = _body(remote, job_id)
        assert_error(remote.post(f"/api/jobs/{job_id}/dispatch", json=body), 403, code="forbidden")
    assert comfyui.requests == []
    assert svc.get_job(job_id).status == "queued"


def test_the_gate_answers_409_listing_the_codes_and_sends_nothing(
    app_home: Path, tmp_path: Path
) -> None:
    from tests.service.test_dispatch_custom import TOKEN, box_job

    with running_comfyui(token=TOKEN) as server:
        svc = Service()
        job = box_job(svc, server, tmp_path)
        with api_server(svc) as srv, srv.client() as client:
            codes = [w["code"] for w in ok(client.get(f"/api/jobs/{job.id}/consent"))]
            assert "data_leaves_machine" in codes
            err = assert_error(
                client.post(f"/api/jobs/{job.id}/dispatch", json=_body(client, job.id)), 409
            )
            assert all(code in err["message"] for code in codes)
            assert err["fields"] == ["acknowledge"]
            bad = _body(client, job.id, acknowledge=["nope"])
            assert_error(client.post(f"/api/jobs/{job.id}/dispatch", json=bad), 422)
            dry = _body(client, job.id, acknowledge=codes, dry_run=True)
            assert ok(client.post(f"/api/jobs/{job.id}/dispatch", json=dry))["status"] == "queued"
        assert server.requests == []
        assert svc.get_job(job.id).status == "queued"
