"""Dispatch to a RunPod serverless endpoint (worker-comfyui) end to end, through the detached
driver: the RunPod contract fake (``/run``, ``/status``, ``/cancel``, a ComfyUI-like executor,
server-side executionTimeout), the real keyring. Every test ends with nothing outstanding on
the endpoint."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from comfyvn_gui.core.errors import ConflictError
from comfyvn_gui.service import Service
from tests.fakes.runpod import RunPodFake, health_body
from tests.service.test_dispatch import (
    dispatch,
    driver_pid_of,
    ended,
    project,
    stop_driver,
    summary,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("secret_service")

EP = "ep1comfy"


@pytest.fixture
def runpod() -> Iterator[RunPodFake]:
    with RunPodFake(endpoints={EP: health_body(idle=1)}) as fake:
        yield fake
        assert fake.outstanding() == [], "a request was left running on RunPod"


def serverless_service(fake: RunPodFake) -> Service:
    svc = Service()
    svc.create_provider(
        "runpod",
        {
            "id": "rp",
            "base_url": fake.serverless_base,
            "config": {"endpoint_id": EP, "endpoints": {"graphql": fake.graphql_url}},
            "secrets": {"api_key": fake.key},
        },
    )
    [valid] = svc.run_checks("validate", ["rp"], timeout_s=30)
    assert valid.status == "valid", valid
    return svc


def runs_sent(fake: RunPodFake) -> list[dict]:
    return [r.json() for r in fake.requests if r.method == "POST" and r.path.endswith("/run")]


def test_a_job_runs_on_the_serverless_endpoint_and_is_billed_by_execution_time(
    runpod: RunPodFake, tmp_path: Path
) -> None:
    svc = serverless_service(runpod)
    [job] = svc.import_summary(summary(), str(project(tmp_path / "project")))
    assert job.compute is not None and job.compute.provider == "rp", job.compute
    started = dispatch(svc, job)
    assert "executionTimeout" in started.meta["dispatch"]["bill_guard"]
    done = ended(svc, job.id)
    record = done.meta["dispatch"]
    assert done.status == "completed", record.get("ended_message")
    assert len(record["outputs"]) == 2
    folder = Path(record["outputs_dir"])
    assert all((folder / o["file"]).is_file() for o in record["outputs"])
    sent = runs_sent(runpod)
    assert len(sent) == 2
    for body in sent:  # worker-comfyui's input, the bill guard's timeout in ms
        assert set(body["input"]) == {"workflow", "images"} and len(body["input"]["images"]) == 1
        timeout = body["policy"]["executionTimeout"]
        assert 5000 <= timeout <= record["ceilings"]["runtime_s"] * 1000
    assert record["billed_s"] > 0 and record["actual_cost_usd"] > 0
    stop_driver(svc, wait_idle=True)


def test_cancel_while_in_progress_cancels_the_request_on_runpod(
    runpod: RunPodFake, tmp_path: Path
) -> None:
    runpod.run_s = 30.0
    svc = serverless_service(runpod)
    [job] = svc.import_summary(summary(), str(project(tmp_path / "project")))
    dispatch(svc, job)
    wait_for(svc, job.id, lambda j: j.status == "running")
    svc.cancel_job(job.id, interface="test")
    done = ended(svc, job.id)
    assert done.status == "cancelled"
    ids = [r["prompt_id"] for r in done.meta["dispatch"]["runs"] if r.get("prompt_id")]
    assert ids and all(runpod.status_of(i) == "CANCELLED" for i in ids)
    stop_driver(svc, wait_idle=True)


def test_a_killed_driver_follows_the_request_instead_of_sending_it_again(
    runpod: RunPodFake, tmp_path: Path
) -> None:
    runpod.run_s = 3.0
    svc = serverless_service(runpod)
    [job] = svc.import_summary(summary(("a.png",)), str(project(tmp_path / "project", ("a.png",))))
    dispatch(svc, job)
    wait_for(svc, job.id, lambda j: j.status == "running")
    os.kill(driver_pid_of(svc, job.id), signal.SIGKILL)
    time.sleep(0.3)
    assert svc.resume_dispatch()
    done = ended(svc, job.id)
    assert done.status == "completed", done.meta["dispatch"].get("ended_message")
    assert len(runs_sent(runpod)) == 1  # followed, not sent again
    stop_driver(svc, wait_idle=True)


def test_a_kind_that_makes_no_images_is_refused_before_anything_is_sent(
    runpod: RunPodFake, tmp_path: Path
) -> None:
    svc = serverless_service(runpod)
    folder = tmp_path / "project"
    (folder / "voice").mkdir(parents=True)
    (folder / "voice" / "line.txt").write_text("Hello.")
    doc = {
        "format": "comfyvn.import-summary",
        "version": 1,
        "project": {"name": "Test", "id": "test"},
        "assets": [{"id": "voice/line.txt", "type": "text", "license": "CC0-1.0"}],
        "tasks": [{"kind": "translation", "select": {"type": "text"}}],
    }
    jobs = svc.import_summary(doc, str(folder))
    job = next(j for j in jobs if j.compute and j.compute.provider == "rp")
    with pytest.raises(ConflictError, match="images only"):
        svc.check_dispatch(job.id)
    assert runs_sent(runpod) == []


def test_from_the_command_line_and_the_api(
    runpod: RunPodFake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`jobs dispatch --yes` + `jobs watch`, and the API's dispatch and cancel, on the
    serverless endpoint."""
    from tests.api.helpers import ok
    from tests.cli.test_cli import cli
    from tests.fakes.api_server import api_server

    svc = serverless_service(runpod)
    first, second = svc.import_summary(
        {**summary(("a.png",)), "tasks": [summary(("a.png",))["tasks"][0]] * 2},
        str(project(tmp_path / "project", ("a.png",))),
    )
    code, out, err = cli(capsys, "jobs", "dispatch", str(first.id), "--yes")
    assert code == 0, err
    assert "bill guard" in err and "executionTimeout" in err
    code, out, err = cli(capsys, "jobs", "watch", str(first.id))
    assert code == 0, err
    assert "completed on rp" in out.splitlines()[-1]
    runpod.run_s = 30.0
    with api_server(svc) as srv, srv.client() as client:
        job = ok(client.get(f"/api/jobs/{second.id}"))
        codes = [c["code"] for c in ok(client.get(f"/api/jobs/{second.id}/consent"))]
        body = {
            "provider": "rp",
            "decided_at": job["meta"]["compute"]["decided_at"],
            "acknowledge": codes,
        }
        assert ok(client.post(f"/api/jobs/{second.id}/dispatch", json=body))["status"] == (
            "submitting"
        )
        wait_for(svc, second.id, lambda j: j.status == "running")
        ok(client.post(f"/api/jobs/{second.id}/cancel"))
    done = ended(svc, second.id)
    assert done.status == "cancelled"
    assert len(runs_sent(runpod)) == 2
    stop_driver(svc, wait_idle=True)
