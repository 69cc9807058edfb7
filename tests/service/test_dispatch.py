"""Dispatch end to end on the local provider: the checks that refuse, the consent gate, the
driver process (leases, cancel, resume), outputs and the job's end told in words.

The ComfyUI is the contract fake (tests/fakes/comfyui.py), which really runs the shipped
templates' nodes; the driver is the real ``comfyvn-gui driver`` process, started by dispatch.
This machine has no GPU: the local NVML snapshot is replaced by one with an RTX 4090 (the
hardware, not the app's logic), so the advisor may choose the local provider.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from comfyvn_gui.core.checks import LocalGpu, LocalSnapshot
from comfyvn_gui.core.errors import ConflictError, InputError, NotFoundError
from comfyvn_gui.core.jobs import Job
from comfyvn_gui.service import Service
from comfyvn_gui.store.driver_lock import driver_pid, driver_running
from comfyvn_gui.store.jobs import LeaseLost
from tests.fakes.comfyui import ComfyUIServer, running_comfyui

pytestmark = pytest.mark.usefixtures("secret_service")

WAIT_S = 30.0


@pytest.fixture(autouse=True)
def local_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    snap = LocalSnapshot(
        gpus=[LocalGpu(name="RTX 4090", vram_total_gb=24, vram_free_gb=22, index=0)],
        source="nvml",
    )
    monkeypatch.setattr("comfyvn_gui.service.advice.snapshot", lambda: snap)


@pytest.fixture
def comfyui() -> Iterator[ComfyUIServer]:
    with running_comfyui() as server:
        yield server


@pytest.fixture
def svc(comfyui: ComfyUIServer) -> Iterator[Service]:
    service = local_service(comfyui)
    yield service
    stop_driver(service)
    service.close()


def stop_driver(svc: Service, *, wait_idle: bool = False) -> None:
    """End the home's driver (every test leaves none behind): told to stop (SIGTERM, what a
    logout sends), or with ``wait_idle`` left to exit by itself with nothing in flight."""
    if not wait_idle:
        pid = driver_pid(svc.home)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + 20
    while driver_running(svc.home) and time.monotonic() < end:
        time.sleep(0.05)
    assert not driver_running(svc.home), "the driver did not exit"


def png(
    path: Path, size: tuple[int, int] = (24, 16), colour: tuple[int, int, int] = (9, 8, 7)
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def project(root: Path, names: tuple[str, ...] = ("a.png", "b.png")) -> Path:
    for i, name in enumerate(names):
        png(root / "cg" / name, colour=(i * 40, 10, 10))
    return root


def summary(names: tuple[str, ...] = ("a.png", "b.png"), **task: Any) -> dict[str, Any]:
    return {
        "format": "comfyvn.import-summary",
        "version": 1,
        "project": {"name": "Test", "id": "test"},
        "assets": [
            {"id": f"cg/{n}", "type": "cg", "width": 24, "height": 16, "license": "CC0-1.0"}
            for n in names
        ],
        "tasks": [{"kind": "cg_super_res", "select": {"type": "cg"}, **task}],
    }


def queued_job(svc: Service, tmp_path: Path, names: tuple[str, ...] = ("a.png", "b.png")) -> Job:
    folder = project(tmp_path / "project", names)
    [job] = svc.import_summary(summary(names), str(folder))
    assert job.compute is not None and job.compute.provider == "local", job.compute
    return job


def local_service(server: ComfyUIServer) -> Service:
    """A service whose local provider's ComfyUI is ``server``."""
    service = Service()
    service.register_provider(
        {"id": "local", "template_id": "local", "config": {"endpoints": {"comfyui": server.url}}}
    )
    return service


def prompt_in_flight(svc: Service, tmp_path: Path, names: tuple[str, ...]) -> Job:
    """A job dispatched, once its first prompt is queued on the server."""
    job = queued_job(svc, tmp_path, names)
    dispatch(svc, job)
    return wait_for(
        svc, job.id, lambda j: any(r.get("prompt_id") for r in j.meta["dispatch"]["runs"])
    )


def dispatch(svc: Service, job: Job, **kwargs: Any) -> Job:
    compute = svc.get_job(job.id).compute
    assert compute is not None
    return svc.dispatch_job(
        job.id,
        decided_at=compute.decided_at,
        acknowledge=[i.code for i in svc.job_consent(job.id)],
        interface="test",
        **kwargs,
    )


def wait_for(svc: Service, job_id: int, what: Any, timeout: float = WAIT_S) -> Job:
    end = time.monotonic() + timeout
    while True:
        job = svc.get_job(job_id)
        if what(job):
            return job
        if time.monotonic() > end:
            raise AssertionError(f"job {job_id} is {job.status}: {job.meta.get('dispatch')}")
        time.sleep(0.1)


def ended(svc: Service, job_id: int) -> Job:
    return wait_for(svc, job_id, lambda j: j.status in ("completed", "failed", "cancelled"))


def posts(server: ComfyUIServer, path: str) -> int:
    return sum(1 for m, p in server.requests if m == "POST" and p == path)


# -- the whole way -------------------------------------------------------------------------


def test_a_queued_job_runs_on_the_local_comfyui_and_its_outputs_are_collected(
    svc: Service, comfyui: ComfyUIServer, tmp_path: Path
) -> None:
    job = queued_job(svc, tmp_path)
    started = dispatch(svc, job)
    assert started.status == "submitting"
    record = started.meta["dispatch"]
    assert record["provider"] == "local" and record["acknowledged"]["interface"] == "test"
    done = ended(svc, job.id)
    assert done.status == "completed", done.meta["dispatch"]
    record = done.meta["dispatch"]
    folder = Path(record["outputs_dir"])
    assert folder == tmp_path / "project" / "comfyvn-output" / str(job.id)
    files = sorted(o["file"] for o in record["outputs"])
    assert len(files) == 2
    for name in files:
        with Image.open(folder / name) as img:
            assert img.size == (96, 64)  # the 4x model's resize of 24x16
    manifest = json.loads((folder / "outputs.json").read_text())
    assert manifest["outcome"] == "completed" and len(manifest["outputs"]) == 2
    assert [r["status"] for r in record["runs"]] == ["succeeded", "succeeded"]
    assert record["actual_cost_usd"] == 0 and "nothing was billed" in record["ended_message"]
    assert posts(comfyui, "/prompt") == 2
    trail = [(e.action, e.detail.get("to")) for e in svc.job_events(job.id)]
    assert ("dispatched", None) in trail
    statuses = [to for action, to in trail if action == "status"]
    assert statuses == ["submitting", "running", "completed"]
    log = svc.home.advisor_log.read_text()
    assert '"job.dispatched"' in log and '"job.status"' in log
    listing = svc.job_outputs(job.id)
    assert listing["folder"] == str(folder) and len(listing["outputs"]) == 2
    stop_driver(svc, wait_idle=True)  # with nothing in flight it exits by itself
    assert not (svc.home.data_dir / "driver.pid").exists()


def test_a_run_that_fails_keeps_the_good_outputs_and_says_which_failed(
    svc: Service, comfyui: ComfyUIServer, tmp_path: Path
) -> None:
    job = queued_job(svc, tmp_path)
    (tmp_path / "project" / "cg" / "b.png").write_bytes(b"not a png at all")
    dispatch(svc, job)
    done = ended(svc, job.id)
    assert done.status == "failed"
    record = done.meta["dispatch"]
    assert [r["status"] for r in record["runs"]] == ["succeeded", "failed"]
    assert len(record["outputs"]) == 1
    message = record["ended_message"]
    assert "run 1:" in message and "1 of 2 runs finished" in message
    assert "jobs retry" in message
    stop_driver(svc)


# -- refusals: nothing sent, nothing changed -----------------------------------------------


def test_refusals_name_the_problem_and_send_nothing(
    svc: Service, comfyui: ComfyUIServer, tmp_path: Path
) -> None:
    job = queued_job(svc, tmp_path)
    compute = job.compute
    assert compute is not None
    with pytest.raises(NotFoundError, match="no job 999"):
        svc.dispatch_job(999, interface="test")
    # the advice's decision time must be the one the user saw
    with pytest.raises(ConflictError, match="changed since its warnings were shown"):
        svc.dispatch_job(job.id, decided_at="2020-01-01T00:00:00+00:00", interface="test")
    # a missing input file is named
    (tmp_path / "project" / "cg" / "b.png").unlink()
    with pytest.raises(InputError, match=r"cg/b\.png"):
        dispatch(svc, job)
    png(tmp_path / "project" / "cg" / "b.png")
    # a kind with no shipped template names its setting
    voice = svc.add_job({"kind": "voice_synthesis", "items": 3})
    assert voice.compute is not None and voice.compute.provider == "local"
    with pytest.raises(InputError, match=r"settings set workflows\.voice_synthesis FILE"):
        dispatch(svc, voice)
    # a disabled provider
    svc.register_provider({"id": "local", "template_id": "local", "enabled": False})
    with pytest.raises(ConflictError, match="has no provider that can run it now"):
        dispatch(svc, job)
    assert comfyui.requests == []
    assert svc.get_job(job.id).status in ("queued",)
    assert not driver_running(svc.home)


def test_cancel_while_running_interrupts_the_prompt_and_keeps_what_finished(
    tmp_path: Path,
) -> None:
    with running_comfyui(node_delay_s=0.6) as server:
        svc = local_service(server)
        job = queued_job(svc, tmp_path)
        dispatch(svc, job)
        wait_for(svc, job.id, lambda j: j.status == "running")
        cancelled = svc.cancel_job(job.id, interface="test")
        assert cancelled.meta["dispatch"]["cancel_requested"]["by"] == "test"
        done = ended(svc, job.id)
        assert done.status == "cancelled"
        assert "you cancelled it" in done.meta["dispatch"]["ended_message"]
        assert posts(server, "/interrupt") + posts(server, "/queue") >= 1
        actions = [e.action for e in svc.job_events(job.id)]
        assert "cancel_requested" in actions
        stop_driver(svc)


def test_a_server_that_dies_mid_run_fails_the_job_saying_why(tmp_path: Path) -> None:
    server = ComfyUIServer(node_delay_s=1.0).start()
    try:
        svc = local_service(server)
        job = queued_job(svc, tmp_path)
        dispatch(svc, job)
        wait_for(svc, job.id, lambda j: j.status == "running")
        server.kill()
        done = ended(svc, job.id)
        assert done.status == "failed"
        assert "cannot reach ComfyUI" in done.meta["dispatch"]["ended_message"]
        stop_driver(svc)
    finally:
        server.stop()


def test_a_missing_model_is_found_before_anything_is_uploaded(tmp_path: Path) -> None:
    with running_comfyui(models={"checkpoints": []}) as server:
        svc = local_service(server)
        job = queued_job(svc, tmp_path)
        dispatch(svc, job)
        done = ended(svc, job.id)
        assert done.status == "failed"
        assert "RealESRGAN" in done.meta["dispatch"]["ended_message"]
        assert posts(server, "/prompt") == 0 and posts(server, "/upload/image") == 0
        stop_driver(svc)


def driver_pid_of(svc: Service, job_id: int) -> int:
    """The pid of the driver that holds the job's lease."""
    lease = svc.job_store.lease(job_id)
    assert lease is not None
    return int(lease[0].split("-", 1)[0])


def test_a_killed_driver_is_resumed_by_the_next_and_the_job_completes(tmp_path: Path) -> None:
    with running_comfyui(node_delay_s=0.2) as server:
        svc = local_service(server)
        job = running = prompt_in_flight(svc, tmp_path, ("a.png", "b.png", "c.png"))
        os.kill(driver_pid_of(svc, running.id), signal.SIGKILL)
        time.sleep(0.3)
        assert svc.resume_dispatch()  # (what the window and `serve` do when they start)
        done = ended(svc, job.id)
        assert done.status == "completed", done.meta["dispatch"]
        assert len(done.meta["dispatch"]["outputs"]) == 3
        assert posts(server, "/prompt") == 3  # the prompt in flight was followed, not re-queued
        assert "resumed" in [e.action for e in svc.job_events(job.id)]
        stop_driver(svc)


def test_two_drivers_never_drive_one_job(svc: Service, tmp_path: Path) -> None:
    job = queued_job(svc, tmp_path)
    store = svc.job_store
    assert not svc.resume_dispatch()  # nothing in flight: no driver is started
    assert not driver_running(svc.home)
    # a second driver process exits at once while one holds the home's lock
    from filelock import FileLock

    lock = FileLock(str(svc.home.data_dir / "driver.lock"))
    lock.acquire()
    try:
        env = {**os.environ, "COMFYVN_GUI_HOME": str(svc.home.config_dir.parent)}
        t0 = time.monotonic()
        rc = subprocess.run(
            [sys.executable, "-m", "comfyvn_gui", "driver"], env=env, timeout=60
        ).returncode
        assert rc == 0 and time.monotonic() - t0 < 30
    finally:
        lock.release()
    # leases: a driver whose generation was raised by another cannot write
    with store._write() as conn:  # (put the job in flight without a driver)
        conn.execute("UPDATE jobs SET status = 'running' WHERE id = ?", (job.id,))
    [(job_id, gen1)] = store.claim("driver-a", now=time.time(), lease_s=60)
    assert store.claim("driver-b", now=time.time(), lease_s=60) == []  # a live lease is kept
    [(_, gen2)] = store.claim("driver-b", now=time.time() + 61, lease_s=60)  # expired: taken
    assert gen2 == gen1 + 1
    with pytest.raises(LeaseLost):
        store.write_dispatch(job_id, ("driver-a", gen1), {"runs": []})
    assert store.renew("driver-a", {job_id: gen1}, now=time.time(), lease_s=60) == {job_id}
    store.write_dispatch(job_id, ("driver-b", gen2), {"runs": []}, status="cancelled")


def test_cancel_before_the_driver_took_the_job_sends_nothing(
    svc: Service, comfyui: ComfyUIServer, tmp_path: Path
) -> None:
    from filelock import FileLock

    job = queued_job(svc, tmp_path)
    lock = FileLock(str(svc.home.data_dir / "driver.lock"))
    lock.acquire()  # (as if a driver were busy elsewhere: the one dispatch starts exits)
    try:
        dispatch(svc, job)
        asked = svc.cancel_job(job.id, interface="test")
        assert asked.status == "submitting" and asked.meta["dispatch"]["cancel_requested"]
    finally:
        lock.release()
    assert svc.resume_dispatch()
    done = ended(svc, job.id)
    assert done.status == "cancelled"
    assert comfyui.requests == []  # nothing was uploaded or queued
    assert "nothing was billed" in done.meta["dispatch"]["ended_message"]
    stop_driver(svc)


def test_cancel_while_queued_behind_another_prompt_dequeues_it(tmp_path: Path) -> None:
    import httpx

    from comfyvn_gui.core.runs import shipped_template

    with running_comfyui(node_delay_s=0.5) as server:
        svc = local_service(server)
        # someone else's prompt keeps the server busy
        png(Path(server.input_dir) / "other.png")
        graph = json.loads(
            json.dumps(shipped_template("cg_super_res").graph)  # type: ignore[union-attr]
            .replace("{{input_image}}", "other.png")
            .replace("{{output_prefix}}", "other")
        )
        other = httpx.post(f"{server.url}/prompt", json={"prompt": graph}).json()["prompt_id"]
        server.wait_until_running(other)
        job = queued_job(svc, tmp_path, ("a.png",))
        dispatch(svc, job)
        wait_for(svc, job.id, lambda j: any(r.get("prompt_id") for r in j.meta["dispatch"]["runs"]))
        svc.cancel_job(job.id, interface="test")
        done = ended(svc, job.id)
        assert done.status == "cancelled"
        assert posts(server, "/queue") >= 1  # dequeued: it never ran
        assert done.meta["dispatch"]["outputs"] == []
        stop_driver(svc)


def test_a_graph_the_server_refuses_fails_naming_the_node_and_input(
    svc: Service, comfyui: ComfyUIServer
) -> None:
    from comfyvn_gui.core.catalog import resources_dir

    data = json.loads((resources_dir() / "examples/summaries/moonlit-academy.json").read_text())
    graph = data["workflows"][0]["workflow"]
    for node in graph.values():  # (the models this ComfyUI has)
        if node["class_type"] == "UpscaleModelLoader":
            node["inputs"]["model_name"] = "RealESRGAN_x4plus.pth"
    sampler = next(k for k, n in graph.items() if n["class_type"] == "KSampler")
    graph[sampler]["inputs"]["sampler_name"] = "no_such_sampler"
    job = svc.add_job({"kind": "comfyui_workflow", "items": 1, "workflow": graph})
    assert job.compute is not None and job.compute.provider == "local", job.compute
    dispatch(svc, job)
    done = ended(svc, job.id)
    assert done.status == "failed"
    message = done.meta["dispatch"]["ended_message"]
    assert f"refused the workflow: node {sampler} (KSampler), input sampler_name" in message
    assert "no_such_sampler" in message
    assert done.meta["dispatch"]["outputs"] == []
    stop_driver(svc)


def test_sigterm_leaves_the_job_in_flight_for_the_next_driver(tmp_path: Path) -> None:
    with running_comfyui(node_delay_s=0.2) as server:
        svc = local_service(server)
        job = running = prompt_in_flight(svc, tmp_path, ("a.png", "b.png", "c.png"))
        pid = driver_pid_of(svc, running.id)
        os.kill(pid, signal.SIGTERM)  # (a logout, a shutdown)
        end = time.monotonic() + 20
        while driver_running(svc.home):
            assert time.monotonic() < end, "the driver did not stop on SIGTERM"
            time.sleep(0.1)
        left = svc.get_job(job.id)
        assert left.status in ("submitting", "running")  # not failed, not cancelled
        lease = svc.job_store.lease(job.id)
        assert lease is not None and lease[2] == 0  # given up: the next driver takes it at once
        assert svc.resume_dispatch()
        done = ended(svc, job.id)
        assert done.status == "completed", done.meta["dispatch"]
        assert posts(server, "/prompt") == 3
        stop_driver(svc)


def test_cancel_while_uploading_queues_nothing(tmp_path: Path) -> None:
    with running_comfyui(upload_delay_s=3.0) as server:
        svc = local_service(server)
        job = queued_job(svc, tmp_path)
        dispatch(svc, job)
        end = time.monotonic() + WAIT_S
        while ("POST", "/upload/image") not in server.requests:
            assert time.monotonic() < end, server.requests
            time.sleep(0.05)
        svc.cancel_job(job.id, interface="test")
        done = ended(svc, job.id)
        assert done.status == "cancelled"
        assert posts(server, "/prompt") == 0
        assert {r["status"] for r in done.meta["dispatch"]["runs"]} <= {"cancelled"}
        stop_driver(svc)


def test_a_failed_job_retried_runs_again_and_completes(svc: Service, tmp_path: Path) -> None:
    job = queued_job(svc, tmp_path)
    good = (tmp_path / "project" / "cg" / "b.png").read_bytes()
    (tmp_path / "project" / "cg" / "b.png").write_bytes(b"not a png")
    dispatch(svc, job)
    assert ended(svc, job.id).status == "failed"
    (tmp_path / "project" / "cg" / "b.png").write_bytes(good)
    again = svc.retry_job(job.id)
    assert again.status == "queued"
    dispatch(svc, again)
    done = ended(svc, job.id)
    assert done.status == "completed", done.meta["dispatch"]
    assert len(done.meta["dispatch"]["outputs"]) == 2
    statuses = [e.detail.get("to") for e in svc.job_events(job.id) if e.action == "status"]
    assert statuses == [
        "submitting",
        "running",
        "failed",
        "queued",
        "submitting",
        "running",
        "completed",
    ]
    stop_driver(svc)
