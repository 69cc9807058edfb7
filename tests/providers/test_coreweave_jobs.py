"""CoreWeave dispatch: one Kubernetes Job per job against the Kubernetes API server fake
(tests/fakes/kubernetes.py: Jobs, their pods, activeDeadlineSeconds enforced, and the
port-forward WebSocket protocol relayed to a real ComfyUI fake standing in for the pod's).

The REST client is the official ``kubernetes`` package and the port-forward the real
``websockets`` client, unmocked. Every test that creates a Job proves it was released: the fake
holds no Job and no pod.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.core.machines import (
    StartupPlan,
    resource_name,
    resource_tags,
    script_part,
    startup_script,
)
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext, CheckFailure
from comfyvn_gui.providers.comfyui import ComfyUIError
from comfyvn_gui.providers.coreweave_jobs import MANAGED_BY, TTL_S, CoreWeaveJobs
from comfyvn_gui.providers.machine import LaunchSpec, Machine, generate_keys, is_machine_adapter
from tests.fakes.comfyui import running_comfyui
from tests.fakes.http import arun
from tests.fakes.kubernetes import WS_PROTOCOL, KubernetesFake

CATALOG = load_catalog()
HOME = "0123456789abcdef"
OTHER_HOME = "fedcba9876543210"
ORG = "cw1a2b"
NS = f"tenant-{ORG}"
IMAGE = "ghcr.io/example/comfyui:1"
ADAPTER = CoreWeaveJobs()
T = TypeVar("T")


@pytest.fixture(scope="module")
def server() -> Iterator[KubernetesFake]:
    with KubernetesFake() as fake:
        yield fake


@pytest.fixture
def k8s(server: KubernetesFake) -> Iterator[KubernetesFake]:
    fake: KubernetesFake = server.reset()
    yield fake
    server.reset()


@pytest.fixture
def executor() -> Iterator[BlockingExecutor]:
    pool = BlockingExecutor(max_workers=2)
    yield pool
    pool.shutdown()


def context(fake: KubernetesFake, executor: BlockingExecutor, **config: Any) -> CheckContext:
    entry = ProviderEntry(
        id="cw",
        template_id="coreweave",
        name="CoreWeave",
        active=True,
        base_url=fake.base,
        config={"organization_id": ORG, **config},
    )
    return CheckContext(
        provider=entry,
        profile=CATALOG.profile("coreweave"),
        secrets={"api_key": fake.token},
        deadline=asyncio.get_running_loop().time() + 30,
        executor=executor,
    )


def run(
    fake: KubernetesFake,
    executor: BlockingExecutor,
    fn: Callable[[CheckContext], Awaitable[T]],
    **config: Any,
) -> T:
    async def main() -> T:
        return await fn(context(fake, executor, **config))

    result: T = arun(main())
    return result


def spec_for(
    job_id: int = 7,
    *,
    home: str = HOME,
    deadline_s: float = 3600,
    port: int = 8188,
    command: str = "python -u /comfyui/main.py",
) -> LaunchSpec:
    name = resource_name(home, job_id)
    keys = generate_keys(name)
    deadline = datetime.now(UTC) + timedelta(seconds=deadline_s)
    plan = StartupPlan(
        name=name,
        deadline=deadline,
        deadman="shutdown",
        host_private_key=keys.host_private,
        host_public_key=keys.host_public,
        client_public_key=keys.client_public,
        ssh_user="root",
        comfyui_port=port,
        mode="container",
        comfyui_command=command,
    )
    return LaunchSpec(
        name=name,
        tags=resource_tags(home, job_id),
        job_id=job_id,
        image=IMAGE,
        startup_script=startup_script(plan),
        client_public_key=keys.client_public,
        vram_mb=20_000,
        max_hourly_usd=2.0,
        zones=None,
        deadline=deadline,
    )


async def wait_running(ctx: CheckContext, machine: Machine, within: float = 3.0) -> Machine:
    end = time.monotonic() + within
    while machine.status != "running":
        assert time.monotonic() < end, machine
        await asyncio.sleep(0.05)
        machine = await ADAPTER.describe(ctx, machine)
    return machine


def test_is_a_machine_adapter_without_ssh() -> None:
    assert is_machine_adapter(ADAPTER)
    assert ADAPTER.mode == "container"
    assert "activeDeadlineSeconds" in ADAPTER.deadman_words
    assert "ttlSecondsAfterFinished" in ADAPTER.deadman_words


def test_launch_sends_the_job_and_release_deletes_it(
    k8s: KubernetesFake, executor: BlockingExecutor
) -> None:
    spec = spec_for(deadline_s=1800)

    async def go(ctx: CheckContext) -> tuple[Machine, Machine]:
        machine = await ADAPTER.launch(ctx, spec)
        found = await ADAPTER.find(ctx, spec.name)
        assert found is not None
        await ADAPTER.release(ctx, found)
        return machine, found

    sent_at = datetime.now(UTC)
    machine, found = run(k8s, executor, go, gpu_class="A40")
    assert found.id == machine.id and found.refs["uid"] == machine.refs["uid"]
    (create,) = k8s.job_requests("POST")
    assert create.path == f"/apis/batch/v1/namespaces/{NS}/jobs"
    assert create.bearer == k8s.token
    body = create.json()
    labels = {**spec.tags, **MANAGED_BY}
    assert body["apiVersion"] == "batch/v1" and body["kind"] == "Job"
    assert body["metadata"]["name"] == spec.name
    assert body["metadata"]["labels"] == labels
    job = body["spec"]
    assert job["backoffLimit"] == 0
    assert job["ttlSecondsAfterFinished"] == TTL_S
    expected = (spec.deadline - sent_at).total_seconds()
    assert expected - 2 <= job["activeDeadlineSeconds"] <= expected + 1
    assert job["template"]["metadata"]["labels"] == labels
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert container["resources"]["requests"] == {"nvidia.com/gpu": "1"}
    sh, c, script = container["command"]
    assert (sh, c) == ("sh", "-c")
    comfyui = script_part(spec.startup_script, "comfyui").strip()
    assert script == f"{comfyui}\nwait\n"
    assert "--listen 127.0.0.1 --port 8188" in script
    assert "comfyvn_deadman" not in script and "authorized_keys" not in script
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [
        {"key": "gpu.nvidia.com/class", "operator": "In", "values": ["A40"]}
    ]
    assert machine.id == machine.name == spec.name
    assert machine.status == "booting"
    assert machine.refs["namespace"] == NS and machine.refs["job"] == spec.name
    assert machine.refs["cluster"] == k8s.base
    assert k8s.token not in json.dumps(machine.as_json())
    (delete,) = k8s.job_requests("DELETE")
    assert delete.path.endswith(f"/jobs/{spec.name}")
    assert delete.query["propagationPolicy"] == ["Background"]
    assert k8s.held() == []


def test_gpu_label_option_and_no_affinity_without_gpu_class(
    k8s: KubernetesFake, executor: BlockingExecutor
) -> None:
    async def go(ctx: CheckContext) -> None:
        for job_id in (1, 2):
            await ADAPTER.release(ctx, await ADAPTER.launch(ctx, spec_for(job_id)))

    run(k8s, executor, go)
    run(
        k8s,
        executor,
        go,
        gpu_class="gd-8xh100ib-i128",
        gpu_label="node.kubernetes.io/instance-type",
    )
    bodies = [r.json()["spec"]["template"]["spec"] for r in k8s.job_requests("POST")]
    assert "affinity" not in bodies[0]
    terms = bodies[2]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0] == {
        "key": "node.kubernetes.io/instance-type",
        "operator": "In",
        "values": ["gd-8xh100ib-i128"],
    }
    assert k8s.held() == []


def test_describe_goes_from_booting_to_running_with_the_pod(
    k8s: KubernetesFake, executor: BlockingExecutor
) -> None:
    k8s.reset(pod_start_s=0.4)
    spec = spec_for()

    async def go(ctx: CheckContext) -> tuple[Machine, Machine]:
        machine = await ADAPTER.launch(ctx, spec)
        try:
            first = await ADAPTER.describe(ctx, machine)
            return first, await wait_running(ctx, first)
        finally:
            await ADAPTER.release(ctx, machine)

    first, running = run(k8s, executor, go)
    assert first.status == "booting" and first.raw_status.startswith("Pending")
    selectors = {p.query["labelSelector"][0] for p in k8s.requests if "labelSelector" in p.query}
    assert selectors == {f"batch.kubernetes.io/job-name={spec.name}"}
    assert running.status == "running"
    assert running.refs["pod"].startswith(spec.name + "-")
    assert running.ssh_host is None and running.ssh_port is None
    assert k8s.held() == []


def test_open_port_reaches_comfyui_through_the_port_forward_websocket(
    k8s: KubernetesFake, executor: BlockingExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    spec = spec_for()
    with running_comfyui() as comfy:
        k8s.reset(backend=comfy.port, pod_start_s=0.0)

        async def go(ctx: CheckContext) -> tuple[list[dict[str, Any]], str, set[Any]]:
            machine = await wait_running(ctx, await ADAPTER.launch(ctx, spec))
            try:
                before = asyncio.all_tasks()
                async with ADAPTER.open_port(ctx, machine, 8188) as url:
                    async with httpx.AsyncClient(base_url=url, trust_env=False) as http:
                        answers = [(await http.get("/system_stats")).json() for _ in range(3)]
                        # two connections at once: two WebSockets
                        async with (
                            httpx.AsyncClient(base_url=url, trust_env=False) as a,
                            httpx.AsyncClient(base_url=url, trust_env=False) as b,
                        ):
                            more = await asyncio.gather(
                                a.get("/system_stats"), b.get("/system_stats")
                            )
                        answers += [r.json() for r in more]
                left = asyncio.all_tasks() - before
                return answers, url, left
            finally:
                await ADAPTER.release(ctx, machine)

        answers, url, left = run(k8s, executor, go)
    assert all(a["devices"][0]["name"].startswith("cuda:0 NVIDIA") for a in answers)
    assert left == set()
    forwards = [r for r in k8s.requests if r.path.endswith("/portforward")]
    assert len(forwards) >= 3  # the probe, then one per connection
    for r in forwards:
        assert r.path.startswith(f"/api/v1/namespaces/{NS}/pods/{spec.name}-")
        assert r.query["ports"] == ["8188"]
        assert WS_PROTOCOL in r.headers["sec-websocket-protocol"]
        assert r.bearer == k8s.token
    deadline = time.monotonic() + 2
    while k8s.open_sessions() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert k8s.open_sessions() == 0
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert k8s.token not in caplog.text
    assert k8s.held() == []


def test_open_port_before_the_pod_runs_or_to_a_closed_port_is_unreachable(
    k8s: KubernetesFake, executor: BlockingExecutor
) -> None:
    k8s.reset(pod_start_s=30.0)
    spec = spec_for()

    async def go(ctx: CheckContext) -> tuple[ComfyUIError, Exception]:
        machine = await ADAPTER.launch(ctx, spec)
        try:
            with pytest.raises(ComfyUIError) as pending:
                async with ADAPTER.open_port(ctx, machine, 8188):
                    pass
            k8s.pod_start_s = 0.0
            machine = await wait_running(ctx, machine)
            # Running, but nothing listens on 9999 in the pod: the kubelet's error on
            # channel 1 closes the relayed connection.
            async with ADAPTER.open_port(ctx, machine, 9999) as url:
                async with httpx.AsyncClient(base_url=url, trust_env=False) as http:
                    with pytest.raises(httpx.HTTPError) as closed:
                        await http.get("/system_stats")
            return pending.value, closed.value
        finally:
            await ADAPTER.release(ctx, machine)

    pending, closed = run(k8s, executor, go)
    assert pending.code == "unreachable"
    assert "does not have a host assigned" in pending.message
    assert isinstance(closed, httpx.HTTPError)
    assert k8s.held() == []


def test_active_deadline_is_enforced_and_describe_says_failed(
    k8s: KubernetesFake, executor: BlockingExecutor
) -> None:
    k8s.reset(pod_start_s=0.0)
    spec = spec_for(deadline_s=1.0)

    async def go(ctx: CheckContext) -> tuple[Machine, Machine]:
        machine = await ADAPTER.launch(ctx, spec)
        running = await wait_running(ctx, machine)
        await asyncio.sleep(1.2)
        ended = await ADAPTER.describe(ctx, running)
        assert k8s.pods_of(NS, spec.name) == []  # the pod was killed at the deadline
        await ADAPTER.release(ctx, ended)
        return running, ended

    running, ended = run(k8s, executor, go)
    assert running.status == "running"
    (create,) = k8s.job_requests("POST")
    assert create.json()["spec"]["activeDeadlineSeconds"] == 1
    assert (ended.status, ended.raw_status) == ("failed", "DeadlineExceeded")
    assert k8s.held() == []


def test_relaunch_after_409_returns_the_existing_job(
    k8s: KubernetesFake, executor: BlockingExecutor
) -> None:
    spec = spec_for()

    async def go(ctx: CheckContext) -> tuple[Machine, Machine]:
        first = await ADAPTER.launch(ctx, spec)
        again = await ADAPTER.launch(ctx, spec)
        await ADAPTER.release(ctx, again)
        return first, again

    first, again = run(k8s, executor, go)
    assert len(k8s.job_requests("POST")) == 2
    assert again.id == first.id and again.refs["uid"] == first.refs["uid"]
    assert k8s.held() == []


def test_resources_list_orphans_by_label_and_stop_deletes_them(
    k8s: KubernetesFake, executor: BlockingExecutor
) -> None:
    mine, other, lost = spec_for(7), spec_for(8, home=OTHER_HOME), spec_for(9)

    async def go(ctx: CheckContext) -> tuple[list[Any], list[Any]]:
        for spec in (mine, other, lost):
            await ADAPTER.launch(ctx, spec)
        # a Job deleted elsewhere without propagation: batch/v1 orphans its pod
        async with httpx.AsyncClient(trust_env=False) as http:
            r = await http.delete(
                f"{k8s.base}/apis/batch/v1/namespaces/{NS}/jobs/{lost.name}",
                headers={"Authorization": f"Bearer {k8s.token}"},
            )
            assert r.status_code == 200
        found = await ADAPTER.resources(ctx, HOME)
        for resource in found:
            await ADAPTER.stop(ctx, resource)
        after = await ADAPTER.resources(ctx, HOME)
        await ADAPTER.release(ctx, Machine(id=other.name, name=other.name, status="running"))
        return found, after

    found, after = run(k8s, executor, go)
    by_kind = {r.kind: r for r in found}
    assert sorted(by_kind) == ["machine", "pod"]
    assert by_kind["machine"].id == mine.name and by_kind["machine"].job_id == 7
    assert by_kind["machine"].created_at is not None
    assert by_kind["pod"].id.startswith(lost.name + "-") and by_kind["pod"].job_id == 9
    assert after == []
    selectors = [r.query.get("labelSelector") for r in k8s.requests if r.method == "GET"]
    assert [f"comfyvn-gui-home={HOME}"] in selectors
    assert k8s.held() == []


def test_refusals_map_to_codes(k8s: KubernetesFake, executor: BlockingExecutor) -> None:
    async def launch(ctx: CheckContext) -> CheckFailure:
        with pytest.raises(CheckFailure) as failure:
            await ADAPTER.launch(ctx, spec_for())
        return failure.value

    k8s.reset(denied=["create jobs"])
    denied = run(k8s, executor, launch)
    assert denied.code == "permission_denied" and "create on jobs.batch" in denied.message
    k8s.reset(quota_exceeded=True)
    quota = run(k8s, executor, launch)
    assert quota.code == "quota_exhausted" and "exceeded quota" in quota.message
    k8s.reset()
    bad = run(k8s, executor, launch, gpu_class="A40", gpu_label="not a label!")
    assert (bad.code, bad.fields) == ("misconfigured", ["gpu_label"])
    spec = spec_for()
    long_name = LaunchSpec(**{**spec.__dict__, "name": "comfyvn-" + "a" * 60 + "-job7"})

    async def too_long(ctx: CheckContext) -> CheckFailure:
        with pytest.raises(CheckFailure) as failure:
            await ADAPTER.launch(ctx, long_name)
        return failure.value

    assert run(k8s, executor, too_long).code == "misconfigured"
    assert k8s.job_requests("POST") == []
    assert k8s.held() == []


def test_release_of_a_gone_job_is_released(k8s: KubernetesFake, executor: BlockingExecutor) -> None:
    gone = Machine(
        id="comfyvn-0123456789abcdef-job3",
        name="comfyvn-0123456789abcdef-job3",
        status="running",
        refs={"cluster": k8s.base, "namespace": NS, "job": "comfyvn-0123456789abcdef-job3"},
    )

    async def go(ctx: CheckContext) -> Machine:
        await ADAPTER.release(ctx, gone)
        return await ADAPTER.describe(ctx, gone)

    assert run(k8s, executor, go).status == "released"


def test_importing_the_adapter_imports_no_sdk() -> None:
    code = (
        "import sys, comfyvn_gui.providers.coreweave_jobs, "
        "comfyvn_gui.providers.coreweave_portforward;"
        "print('kubernetes' in sys.modules, 'websockets.asyncio.client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
