"""A job's runs on a RunPod serverless endpoint running worker-comfyui, against the RunPod fake
(tests/fakes/runpod.py: RunPod's /run, /status, /cancel and /health with worker-comfyui's
input and output shapes, a server-side executionTimeout and ttl, results kept 30 minutes).

Every test ends with nothing left running on the fake (``fake.outstanding() == []``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.core.checks import CheckResult
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.core.runs import plan_runs, shipped_template
from comfyvn_gui.providers import runpod_serverless as rs
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext
from comfyvn_gui.providers.comfyui import ComfyUIError
from comfyvn_gui.providers.comfyui_runs import ExecutionReport, RunRecord, upload_name
from comfyvn_gui.providers.runpod_serverless import SERVERLESS_KINDS, execute_serverless
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.http import Request, arun, assert_clean
from tests.fakes.runpod import RunPodFake, health_body

CATALOG = load_catalog()
EP = "ep-comfy"
JOB = 7


@pytest.fixture(scope="module")
def server() -> Iterator[RunPodFake]:
    with RunPodFake(endpoints={EP: health_body(idle=1, in_queue=1)}) as fake:
        yield fake


@pytest.fixture
def fake(server: RunPodFake) -> Iterator[RunPodFake]:
    server.reset()
    yield server
    assert server.outstanding() == [], "a request was left running on RunPod"


@pytest.fixture(autouse=True)
def _quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Poll the fake every few ms (RunPod's cadence is seconds)."""
    monkeypatch.setattr(rs, "POLL_FIRST_S", 0.01)
    monkeypatch.setattr(rs, "POLL_MAX_S", 0.03)
    monkeypatch.setattr(rs, "HEALTH_EVERY_S", 0.05)
    monkeypatch.setattr(rs, "RETRY_PAUSE_S", 0.01)


@pytest.fixture
def executor() -> Iterator[BlockingExecutor]:
    pool = BlockingExecutor(max_workers=2)
    yield pool
    pool.shutdown()


def context(fake: RunPodFake, executor: BlockingExecutor, **config: Any) -> CheckContext:
    entry = ProviderEntry(
        id="rp",
        template_id="runpod",
        name="RunPod",
        active=True,
        base_url=fake.serverless_base,
        config={"endpoint_id": EP, "endpoints": {"graphql": fake.graphql_url}, **config},
    )
    return CheckContext(
        provider=entry,
        profile=CATALOG.profile("runpod"),
        secrets={"api_key": fake.key},
        deadline=asyncio.get_running_loop().time() + 60,
        executor=executor,
    )


def images(tmp_path: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = tmp_path / f"cg {i}.png"
        Image.new("RGB", (8 + i, 6), (10 * i, 20, 30)).save(path)
        paths.append(path)
    return paths


def workflow_graph() -> dict[str, Any]:
    """A ``comfyui_workflow`` job's own graph (no input image)."""
    return {
        "3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 4}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "{{output_prefix}}"}},
    }


def runs_sent(fake: RunPodFake) -> list[Request]:
    return [r for r in fake.requests if r.method == "POST" and r.path == f"/v2/{EP}/run"]


def execute(
    ctx: CheckContext, out_dir: Path, *, inputs: list[Path] | None = None, **kw: Any
) -> Any:
    """``execute_serverless`` of a cg_super_res job on ``inputs`` (or a workflow job)."""
    args: dict[str, Any] = {
        "job_id": JOB,
        "out_dir": out_dir,
        "execution_timeout_ms": lambda: 120_000,
    }
    if inputs is not None:
        args.update(
            kind="cg_super_res",
            items=len(inputs),
            inputs=inputs,
            template=shipped_template("cg_super_res"),
        )
    else:
        args.update(kind="comfyui_workflow", items=kw.pop("items", 1), inputs=[])
        args["workflow"] = workflow_graph()
    args.update(kw)
    return execute_serverless(ctx, **args)


def manifest(out_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out_dir / "outputs.json").read_text())
    return data


# -- a job end to end ------------------------------------------------------------------------


def test_a_job_runs_on_the_endpoint_with_worker_comfyui_shapes(
    tmp_path: Path, fake: RunPodFake, executor: BlockingExecutor
) -> None:
    fake.queue_s, fake.run_s = 0.15, 0.2
    srcs = images(tmp_path, 3)
    out = tmp_path / "out"
    seen: list[list[tuple[str, str | None]]] = []
    busiest: list[int] = []
    lines: list[str] = []

    def keep(report: ExecutionReport) -> None:
        seen.append([(r.status, r.prompt_id) for r in report.runs])
        busiest.append(len(fake.outstanding()))

    async def main() -> ExecutionReport:
        ctx = context(fake, executor)
        return await execute(
            ctx, out, inputs=srcs, on_change=keep, on_status=lines.append, parallel=2
        )

    report = arun(main())

    assert report.outcome == "completed", [r.error for r in report.runs]
    sent = runs_sent(fake)
    assert len(sent) == 3
    plans = plan_runs(
        job_id=JOB,
        kind="cg_super_res",
        items=3,
        inputs=[upload_name(JOB, i, p) for i, p in enumerate(srcs)],
        template=shipped_template("cg_super_res"),
    )
    by_image = {}
    for req in sent:
        assert req.headers["authorization"] == f"Bearer {fake.key}"
        assert req.headers["content-type"] == "application/json"
        body = req.json()
        assert set(body) == {"input", "policy"}
        assert body["policy"] == {"executionTimeout": 120_000, "ttl": 180_000}
        (image,) = body["input"]["images"]
        by_image[image["name"]] = (body["input"]["workflow"], base64.b64decode(image["image"]))
    for plan, src in zip(plans, srcs, strict=True):
        graph, data = by_image[upload_name(JOB, plan.index, src)]
        assert graph == plan.graph  # the placeholders filled: LoadImage names the upload
        assert graph["1"]["inputs"]["image"] == upload_name(JOB, plan.index, src)
        assert data == src.read_bytes()  # the real input's bytes, base64
    # every request id was kept (on_change) while its run was still running
    ids = {r.prompt_id for r in report.runs}
    assert ids == set(fake.jobs)
    assert any(("running", rid) in snap for snap in seen for rid in ids)
    assert max(busiest) <= 2  # parallel=2: never more requests outstanding
    # outputs: real images, listed in outputs.json after the runs
    assert [o.run for o in sorted(report.outputs, key=lambda o: o.run)] == [0, 1, 2]
    for o in report.outputs:
        path = out / o.file
        assert o.node == "runpod" and path.stat().st_size == o.bytes
        with Image.open(path) as img:
            assert img.size[1] == 12  # the fake doubled the 6-pixel-high input
    doc = manifest(out)
    assert doc["outcome"] == "completed"
    assert sorted(o["file"] for o in doc["outputs"]) == sorted(o.file for o in report.outputs)
    assert {r["prompt_id"] for r in doc["runs"]} == ids
    assert report.inputs == {
        upload_name(JOB, i, p): hashlib.sha256(p.read_bytes()).hexdigest()
        for i, p in enumerate(srcs)
    }
    # billed: every request's executionTime (200 ms each)
    assert report.billed_s == pytest.approx(0.6, abs=0.01)
    # while queued, the endpoint's health was told in one line
    assert any("waits in RunPod's queue: 1 worker ready (1 idle, 0 running)" in x for x in lines)
    assert any(r.path == f"/v2/{EP}/health" for r in fake.requests)


def test_url_outputs_are_fetched_without_the_api_key(
    tmp_path: Path, fake: RunPodFake, executor: BlockingExecutor
) -> None:
    fake.output_mode = "url"
    out = tmp_path / "out"

    async def main() -> ExecutionReport:
        return await execute(context(fake, executor), out, items=2)

    report = arun(main())
    assert report.outcome == "completed"
    fetched = [r for r in fake.requests if r.path.startswith("/bucket/")]
    assert len(fetched) == 2
    assert all("authorization" not in r.headers for r in fetched)
    served = set(fake.bucket.values())
    for o in report.outputs:
        assert (out / o.file).read_bytes() in served
        with Image.open(out / o.file) as img:
            assert img.format == "PNG"
    assert sorted(o.file for o in report.outputs) == ["run0_00001_.png", "run1_00001_.png"]
    # a workflow job sends no images
    assert all("images" not in r.json()["input"] for r in runs_sent(fake))


# -- cancelling -----------------------------------------------------------------------------


def test_cancelling_the_job_cancels_the_requests_on_runpod(
    tmp_path: Path, fake: RunPodFake, executor: BlockingExecutor
) -> None:
    fake.run_s = 60.0
    out = tmp_path / "out"

    async def main() -> None:
        task = asyncio.ensure_future(execute(context(fake, executor), out, items=3, parallel=2))
        for _ in range(300):
            await asyncio.sleep(0.01)
            states = [fake.status_of(i) for i in list(fake.jobs)]
            if states.count("IN_PROGRESS") == 2:
                break
        assert len(fake.jobs) == 2  # parallel=2: the third run is not sent
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    arun(main())
    assert {fake.status_of(i) for i in fake.jobs} == {"CANCELLED"}
    cancels = [r.path for r in fake.requests if r.path.startswith(f"/v2/{EP}/cancel/")]
    assert sorted(cancels) == sorted(f"/v2/{EP}/cancel/{i}" for i in fake.jobs)
    doc = manifest(out)
    assert doc["outcome"] == "cancelled"
    assert [r["status"] for r in doc["runs"]] == ["cancelled"] * 3
    assert {r["prompt_id"] for r in doc["runs"][:2]} == set(fake.jobs)


def test_a_job_taken_over_follows_the_request_instead_of_sending_it_again(
    tmp_path: Path, fake: RunPodFake, executor: BlockingExecutor
) -> None:
    fake.run_s = 0.4
    out = tmp_path / "out"
    kept: list[RunRecord] = []

    def keep(report: ExecutionReport) -> None:
        kept[:] = [RunRecord(r.index, r.status, r.prompt_id, r.input) for r in report.runs]

    async def first_driver() -> None:
        task = asyncio.ensure_future(
            execute(context(fake, executor), out, on_change=keep, cancel_remote=lambda: False)
        )
        for _ in range(300):
            if kept and kept[0].prompt_id:
                break
            await asyncio.sleep(0.01)
        task.cancel()  # (another driver took the job over: nothing is cancelled on RunPod)
        with pytest.raises(asyncio.CancelledError):
            await task

    arun(first_driver())
    (rid,) = fake.jobs
    assert kept[0].prompt_id == rid and fake.status_of(rid) in ("IN_QUEUE", "IN_PROGRESS")
    assert not any("/cancel/" in r.path for r in fake.requests)

    async def second_driver() -> ExecutionReport:
        return await execute(context(fake, executor), out, previous=kept)

    report = arun(second_driver())
    assert report.outcome == "completed"
    assert len(runs_sent(fake)) == 1  # followed, not sent again
    assert report.runs[0].prompt_id == rid and len(report.outputs) == 1
    assert any(r.path == f"/v2/{EP}/status/{rid}" for r in fake.requests)


def test_a_request_runpod_no_longer_holds_runs_afresh(
    tmp_path: Path, fake: RunPodFake, executor: BlockingExecutor
) -> None:
    previous = [RunRecord(0, "running", prompt_id="expired-0000-u1")]

    async def main() -> ExecutionReport:
        return await execute(context(fake, executor), tmp_path / "out", previous=previous)

    report = arun(main())
    assert report.outcome == "completed"
    (rid,) = fake.jobs
    assert report.runs[0].prompt_id == rid != "expired-0000-u1"
    assert [r.path for r in fake.requests][:2] == [
        f"/v2/{EP}/status/expired-0000-u1",
        f"/v2/{EP}/run",
    ]


# -- failures -------------------------------------------------------------------------------


def test_a_failed_run_fails_the_job_and_keeps_the_other_outputs(
    tmp_path: Path, fake: RunPodFake, executor: BlockingExecutor
) -> None:
    fake.fail_runs = {1}
    out = tmp_path / "out"

    async def main() -> ExecutionReport:
        return await execute(context(fake, executor), out, items=3)

    report = arun(main())
    assert report.outcome == "failed"
    assert [r.status for r in report.runs] == ["succeeded", "failed", "succeeded"]
    error = report.runs[1].error or ""
    assert error.startswith("RunPod's worker failed the run: Job processing failed")
    assert "CUDA out of memory" in error
    assert sorted(o.run for o in report.outputs) == [0, 2]
    assert all((out / o.file).is_file() for o in report.outputs)
    doc = manifest(out)
    assert doc["outcome"] == "failed" and len(doc["outputs"]) == 2
    assert report.billed_s == pytest.approx(0.6, abs=0.01)  # the failed one billed too


def test_completed_with_errors_is_a_failed_run(
    tmp_path: Path, fake: RunPodFake, executor: BlockingExecutor
) -> None:
    fake.error_runs = {0}
    out = tmp_path / "out"

    async def main() -> ExecutionReport:
        return await execute(context(fake, executor), out)

    report = arun(main())
    (run,) = report.runs
    assert (report.outcome, run.status) == ("failed", "failed")
    assert run.error is not None
    assert run.error.startswith("worker-comfyui finished the run with errors")
    assert "AccessDenied" in run.error
    assert len(run.outputs) == 1 and (out / run.outputs[0].file).is_file()  # what came is kept


@pytest.mark.parametrize(
    ("queue_s", "words"),
    [
        (0.0, "RunPod stopped the run at its execution timeout of 6 s (policy.executionTimeout"),
        (1e6, "no RunPod worker took the run within its ttl of 66 s (policy.ttl"),
    ],
)
def test_a_run_past_its_timeout_is_stopped_by_runpod(
    tmp_path: Path, fake: RunPodFake, executor: BlockingExecutor, queue_s: float, words: str
) -> None:
    fake.speed, fake.queue_s, fake.run_s = 200.0, queue_s, 3600.0  # an hour-long run

    async def main() -> ExecutionReport:
        return await execute(
            context(fake, executor), tmp_path / "out", execution_timeout_ms=lambda: 6000
        )

    report = arun(main())
    (run,) = report.runs
    assert (report.outcome, run.status) == ("failed", "failed")
    assert run.error is not None and words in run.error, run.error
    (rid,) = fake.jobs
    assert fake.status_of(rid) == "TIMED_OUT"
    assert runs_sent(fake)[0].json()["policy"] == {"executionTimeout": 6000, "ttl": 66_000}


def test_a_hostile_output_file_name_is_neutralised(
    tmp_path: Path, fake: RunPodFake, executor: BlockingExecutor
) -> None:
    fake.filenames = {0: "../../../escaped.png", 1: "/etc/cron.d/job.sh", 2: "..\\..\\.."}
    out = tmp_path / "deep" / "out"
    before = {p for p in tmp_path.rglob("*")}

    async def main() -> ExecutionReport:
        return await execute(context(fake, executor), out, items=3)

    report = arun(main())
    assert report.outcome == "completed"
    files = sorted(o.file for o in report.outputs)
    assert files == ["escaped.png", "job.sh.png", "run2-0.png"]
    created = {p for p in tmp_path.rglob("*")} - before
    assert all(p in (out, out.parent) or out in p.parents for p in created), created
    assert not (tmp_path / "escaped.png").exists()
    for name in files:
        with Image.open(out / name) as img:
            img.verify()


def test_a_key_refused_for_the_endpoint_ends_the_job_naming_api_key(
    tmp_path: Path, fake: RunPodFake, executor: BlockingExecutor
) -> None:
    fake.denied_endpoints = {EP: 403}

    async def main() -> ExecutionReport:
        return await execute(context(fake, executor), tmp_path / "out", items=3, parallel=2)

    with pytest.raises(ComfyUIError) as info:
        arun(main())
    assert info.value.code == "unreachable" and "api_key" in info.value.message
    assert fake.key not in info.value.message
    doc = manifest(tmp_path / "out")
    assert doc["outcome"] == "failed"
    assert {r["status"] for r in doc["runs"]} == {"failed"}


def test_settings_and_kinds_it_cannot_run(
    tmp_path: Path, fake: RunPodFake, executor: BlockingExecutor
) -> None:
    async def no_endpoint() -> ExecutionReport:
        return await execute(context(fake, executor, endpoint_id=None), tmp_path / "out")

    with pytest.raises(ComfyUIError, match="set endpoint_id") as info:
        arun(no_endpoint())
    assert info.value.code == "unreachable"

    async def unknown_endpoint() -> ExecutionReport:
        return await execute(context(fake, executor, endpoint_id="ep-gone"), tmp_path / "out")

    with pytest.raises(ComfyUIError, match=r"no serverless endpoint 'ep-gone'.*endpoint_id"):
        arun(unknown_endpoint())

    async def voice() -> ExecutionReport:
        return await execute_serverless(
            context(fake, executor),
            job_id=JOB,
            kind="voice_synthesis",
            items=1,
            inputs=[],
            out_dir=tmp_path / "out",
            execution_timeout_ms=lambda: 60_000,
        )

    assert "voice_synthesis" not in SERVERLESS_KINDS
    with pytest.raises(ComfyUIError, match="returns images only"):
        arun(voice())
    assert runs_sent(fake) == []


def test_an_input_too_big_for_runpod_is_not_sent(
    tmp_path: Path, fake: RunPodFake, executor: BlockingExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rs, "MAX_RUN_BODY", 2000)
    big = tmp_path / "big.png"
    Image.frombytes("RGB", (40, 40), os.urandom(40 * 40 * 3)).save(big)

    async def main() -> ExecutionReport:
        return await execute(context(fake, executor), tmp_path / "out", inputs=[big])

    report = arun(main())
    (run,) = report.runs
    assert run.status == "failed" and run.error is not None
    assert run.error.startswith("not sent: the request would be")
    assert "use a smaller input image" in run.error
    assert runs_sent(fake) == []


# -- the fake is strict ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"input": {"images": []}},
        {"input": {"workflow": workflow_graph(), "images": [{"name": "a.png", "image": "!!"}]}},
        {"input": {"workflow": workflow_graph()}, "policy": {"executionTimeout": 1000}},
        {"input": {"workflow": workflow_graph()}, "policy": {"executionTimeout": "60000"}},
        {"input": {"workflow": workflow_graph()}, "policy": {"ttl": 5000}},
        {"input": {"workflow": workflow_graph()}, "extra": 1},
    ],
)
def test_the_fake_refuses_what_runpod_refuses(fake: RunPodFake, body: dict[str, Any]) -> None:
    resp = httpx.post(
        f"{fake.serverless_base}/{EP}/run",
        json=body,
        headers={"Authorization": f"Bearer {fake.key}"},
    )
    assert resp.status_code == 400 and resp.json()["error"]
    assert fake.jobs == {}


# -- validate: the key must be able to use the endpoint --------------------------------------


def validate(
    fake: RunPodFake, app_home: Path, endpoint_id: str, pid: str = "p"
) -> tuple[Service, CheckResult]:
    svc = Service(resolve_home())
    svc.create_provider(
        "runpod",
        {
            "id": pid,
            "base_url": fake.serverless_base,
            "config": {"endpoints": {"graphql": fake.graphql_url}, "endpoint_id": endpoint_id},
            "secrets": {"api_key": fake.key},
        },
    )
    (result,) = arun(svc.check("validate", [pid], timeout_s=5.0))
    assert isinstance(result, CheckResult)
    return svc, result


@pytest.mark.usefixtures("secret_service")
@pytest.mark.parametrize("status", [401, 403])
def test_validate_says_when_the_key_cannot_use_the_endpoint(
    fake: RunPodFake, app_home: Path, status: int
) -> None:
    fake.denied_endpoints = {EP: status}
    svc, r = validate(fake, app_home, EP)
    assert (r.status, r.code, r.fields) == ("permission_denied", "permission_denied", ["api_key"])
    assert EP in r.message and f"({status})" in r.message
    assert [q.path for q in fake.requests][-2:] == ["/graphql", f"/v2/{EP}/health"]
    assert_clean(svc, r, fake.key)


@pytest.mark.usefixtures("secret_service")
def test_validate_reads_the_endpoint(fake: RunPodFake, app_home: Path) -> None:
    _, r = validate(fake, app_home, EP)
    assert r.status == "valid", r.message
    assert f"endpoint {EP} answers: 1 worker ready (1 idle, 0 running), 1 job queued" in r.message
    assert r.detail["workers_ready"] == 1 and r.detail["endpoint_id"] == EP
    health = [q for q in fake.requests if q.path == f"/v2/{EP}/health"][-1]
    assert health.headers["authorization"] == f"Bearer {fake.key}"
    _, gone = validate(fake, app_home, "ep-gone", pid="q")
    assert (gone.status, gone.fields) == ("misconfigured", ["endpoint_id"])
