"""Lambda Cloud dispatch: one instance per job against the contract fake (tests/fakes/
lambda_cloud.py), whose machines are real sshd's started from the start-up script the adapter
sent (tests/fakes/machine_host.py).

Every test that creates a machine proves it was released: the fake holds no live instance and
no key of the job, and no sshd runs (``hosts.alive == []``).
"""

from __future__ import annotations

import asyncio
import getpass
import io
import json
import logging
import os
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import paramiko
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
from comfyvn_gui.providers import lambda_labs
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext, CheckFailure, run_check
from comfyvn_gui.providers.lambda_labs import LambdaAdapter
from comfyvn_gui.providers.machine import (
    LaunchSpec,
    Machine,
    MachineKeys,
    Resource,
    generate_keys,
    is_machine_adapter,
)
from tests.fakes.http import Request, arun
from tests.fakes.lambda_cloud import LambdaFake
from tests.fakes.machine_host import MachineHosts

CATALOG = load_catalog()
HOME = "0123456789abcdef"
OTHER_HOME = "fedcba9876543210"
IMAGE = "yanwk/comfyui-boot:cu128-slim"
ADAPTER = LambdaAdapter()
T = TypeVar("T")


@pytest.fixture(scope="module")
def server() -> Iterator[LambdaFake]:
    with LambdaFake() as fake:
        yield fake


@pytest.fixture
def lam(server: LambdaFake) -> LambdaFake:
    fake: LambdaFake = server.reset()
    return fake


@pytest.fixture
def hosts() -> Iterator[MachineHosts]:
    with MachineHosts() as h:
        yield h


@pytest.fixture
def executor() -> Iterator[BlockingExecutor]:
    pool = BlockingExecutor(max_workers=2)
    yield pool
    pool.shutdown()


@pytest.fixture(autouse=True)
def _no_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lambda's own spacing (1 s, 12 s) is tested on its own; elsewhere it would only wait."""
    monkeypatch.setattr(lambda_labs, "REQUEST_INTERVAL_S", 0.0)
    monkeypatch.setattr(lambda_labs, "LAUNCH_INTERVAL_S", 0.0)


def run(
    fake: LambdaFake,
    executor: BlockingExecutor,
    fn: Callable[[CheckContext], Awaitable[T]],
    **config: Any,
) -> T:
    """``fn(ctx)`` for a Lambda provider pointed at ``fake`` (its SSH port set as an option)."""

    async def main() -> T:
        entry = ProviderEntry(
            id="la",
            template_id="lambda",
            name="Lambda",
            active=True,
            base_url=fake.api_base,
            config={"ssh_port": str(fake.ssh_port), **config},
        )
        ctx = CheckContext(
            provider=entry,
            profile=CATALOG.profile("lambda"),
            secrets={"api_key": fake.key},
            deadline=asyncio.get_running_loop().time() + 30,
            executor=executor,
        )
        return await fn(ctx)

    result: T = arun(main())
    return result


def job_spec(
    job: int = 7,
    *,
    deadline: datetime | None = None,
    zones: tuple[str, ...] | None = None,
    max_hourly_usd: float | None = None,
) -> tuple[LaunchSpec, MachineKeys]:
    name = resource_name(HOME, job)
    keys = generate_keys(name)
    deadline = deadline or datetime.now(UTC) + timedelta(hours=1)
    script = startup_script(
        StartupPlan(
            name=name,
            deadline=deadline,
            deadman="shutdown",
            host_private_key=keys.host_private,
            host_public_key=keys.host_public,
            client_public_key=keys.client_public,
            ssh_user=getpass.getuser(),
            image=IMAGE,
        )
    )
    spec = LaunchSpec(
        name=name,
        tags=resource_tags(HOME, job),
        job_id=job,
        image=IMAGE,
        startup_script=script,
        client_public_key=keys.client_public,
        vram_mb=24_000,
        max_hourly_usd=max_hourly_usd,
        zones=zones,
        deadline=deadline,
    )
    return spec, keys


def calls(fake: LambdaFake) -> list[tuple[str, str]]:
    return [(r.method, r.path.removeprefix("/api/v1")) for r in fake.requests]


def only(fake: LambdaFake, method: str, path: str) -> list[Request]:
    return [r for r in fake.requests if (r.method, r.path) == (method, f"/api/v1{path}")]


def assert_all_gone(fake: LambdaFake, hosts: MachineHosts | None = None) -> None:
    assert fake.live_instances() == []
    assert [k for k in fake.ssh_keys.values() if HOME in k["name"]] == []
    if hosts is not None:
        assert hosts.alive == []


def ssh_login(host: str, port: int, keys: MachineKeys) -> str:
    """Log in with the one-time client key; the server's host key (OpenSSH text)."""
    sock = socket.create_connection((host, port), 5)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=5)
        server_key = transport.get_remote_server_key()
        client_key = paramiko.Ed25519Key.from_private_key(io.StringIO(keys.client_private))
        transport.auth_publickey(getpass.getuser(), client_key)
        assert transport.is_authenticated()
        return f"{server_key.get_name()} {server_key.get_base64()}"
    finally:
        transport.close()


# -- the adapter's dispatch side -----------------------------------------------------------------


def test_the_adapter_is_a_machine_adapter_whose_only_guard_is_the_app() -> None:
    assert is_machine_adapter(ADAPTER)
    assert (ADAPTER.deadman, ADAPTER.mode, ADAPTER.default_ssh_user) == ("shutdown", "vm", "ubuntu")
    words = ADAPTER.deadman_words.lower()
    assert "only this app terminates it" in words and "while the app is away" in words
    options = {f.name: f.default for f in CATALOG.profile("lambda").options}
    assert options["comfyui_image"] == IMAGE
    assert (options["ssh_user"], options["comfyui_port"], options["ssh_port"]) == (
        "ubuntu",
        "8188",
        "22",
    )


def test_launch_registers_the_key_then_launches_the_named_instance(
    lam: LambdaFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    lam.reset(hosts=hosts)
    spec, keys = job_spec()
    machine = run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))

    assert calls(lam) == [
        ("GET", "/instance-types"),
        ("POST", "/ssh-keys"),
        ("POST", "/instance-operations/launch"),
    ]
    assert all(r.bearer == lam.key for r in lam.requests)
    (key_req,) = only(lam, "POST", "/ssh-keys")
    assert key_req.json() == {"name": spec.name, "public_key": keys.client_public}
    (launch_req,) = only(lam, "POST", "/instance-operations/launch")
    body = launch_req.json()
    assert body == {
        "region_name": "us-east-1",  # the one region with gpu_1x_a100 capacity
        "instance_type_name": "gpu_1x_a100",
        "ssh_key_names": [spec.name],
        "file_system_names": [],
        "name": spec.name,
        "user_data": spec.startup_script,
        "tags": [
            {"key": "comfyvn-gui-home", "value": HOME},
            {"key": "comfyvn-gui-job", "value": "7"},
        ],
    }
    assert keys.host_public in body["user_data"]
    deadman = script_part(body["user_data"], "deadman")
    assert f"comfyvn_deadline={int(spec.deadline.timestamp())}" in deadman
    assert "shutdown -h now" in deadman

    (key,) = lam.ssh_keys.values()
    assert (machine.status, machine.name, machine.hourly_usd) == ("booting", spec.name, 1.29)
    assert machine.refs == {
        "instance_id": machine.id,
        "ssh_key_id": key["id"],
        "ssh_key_name": spec.name,
        "region": "us-east-1",
        "instance_type": "gpu_1x_a100",
        "api": lam.api_base,
        "ssh_port": lam.ssh_port,
    }
    stored = json.dumps(machine.as_json())
    jupyter = lam.instances[machine.id]["jupyter_token"]
    for secret in (lam.key, keys.client_private, keys.host_private, jupyter):
        assert secret not in stored
    assert Machine.from_json(json.loads(stored)) == machine

    run(lam, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_all_gone(lam, hosts)


def test_describe_finds_it_running_and_its_ssh_is_the_machine_the_app_made(
    lam: LambdaFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    lam.reset(hosts=hosts)
    spec, keys = job_spec()
    machine = run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    try:
        running = run(lam, executor, lambda ctx: ADAPTER.describe(ctx, machine))
        assert (running.status, running.raw_status) == ("running", "active")
        assert (running.ssh_host, running.ssh_port) == ("127.0.2.1", lam.ssh_port)
        assert running.refs == machine.refs and running.hourly_usd == 1.29
        # A real SSH server, reached at the address Lambda reports: the host key is the one
        # the app generated, and the one-time client key logs in.
        assert running.ssh_host is not None and running.ssh_port is not None
        assert ssh_login(running.ssh_host, running.ssh_port, keys) == keys.host_public
        assert hosts.alive == [machine.id]
    finally:
        run(lam, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert calls(lam)[-2:] == [
        ("POST", "/instance-operations/terminate"),
        ("DELETE", f"/ssh-keys/{machine.refs['ssh_key_id']}"),
    ]
    assert only(lam, "POST", "/instance-operations/terminate")[0].json() == {
        "instance_ids": [machine.id]
    }
    assert lam.instances[machine.id]["status"] == "terminated"
    assert_all_gone(lam, hosts)
    gone = run(lam, executor, lambda ctx: ADAPTER.describe(ctx, machine))
    assert gone.status == "released" and gone.ssh_host is None
    with pytest.raises(OSError):  # its address no longer answers
        socket.create_connection(("127.0.2.1", lam.ssh_port), 1).close()


def test_a_booting_machine_has_no_address_yet(lam: LambdaFake, executor: BlockingExecutor) -> None:
    lam.reset(booting_polls=1)
    spec, _ = job_spec()
    machine = run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    booting = run(lam, executor, lambda ctx: ADAPTER.describe(ctx, machine))
    assert (booting.status, booting.ssh_host, booting.ssh_port) == ("booting", None, None)
    up = run(lam, executor, lambda ctx: ADAPTER.describe(ctx, machine))
    assert up.status == "running" and up.ssh_host is not None
    run(lam, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_all_gone(lam)


@pytest.mark.parametrize(
    ("lambda_status", "status"),
    [
        ("unhealthy", "running"),
        ("terminating", "released"),
        ("preempted", "failed"),
    ],
)
def test_describe_maps_lambdas_statuses(
    lam: LambdaFake, executor: BlockingExecutor, lambda_status: str, status: str
) -> None:
    spec, _ = job_spec()
    machine = run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    lam.instances[machine.id]["status"] = lambda_status
    described = run(lam, executor, lambda ctx: ADAPTER.describe(ctx, machine))
    assert (described.status, described.raw_status) == (status, lambda_status)
    lam.instances[machine.id]["status"] = "active"
    run(lam, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_all_gone(lam)


def test_insufficient_capacity_at_launch_is_quota_exhausted_and_deletes_the_key(
    lam: LambdaFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    # The listing says us-east-1 has gpu_1x_a100; the launch says no (as Lambda often does).
    lam.reset(hosts=hosts, launch_capacity={})
    spec, _ = job_spec()
    with pytest.raises(CheckFailure) as failure:
        run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    assert failure.value.code == "quota_exhausted"
    assert "gpu_1x_a100" in failure.value.message and "us-east-1" in failure.value.message
    assert failure.value.fields == ["instance_type", "region"]
    # The key was registered, the launch refused, then the key deleted.
    assert [m for m, _ in calls(lam)] == ["GET", "POST", "POST", "DELETE"]
    assert calls(lam)[2] == ("POST", "/instance-operations/launch")
    assert calls(lam)[3][1].startswith("/ssh-keys/")
    assert lam.ssh_keys == {} and lam.instances == {}
    assert_all_gone(lam, hosts)


def test_no_listed_capacity_in_the_region_creates_nothing(
    lam: LambdaFake, executor: BlockingExecutor
) -> None:
    spec, _ = job_spec()
    with pytest.raises(CheckFailure) as failure:
        run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec), region="us-west-1")
    assert failure.value.code == "quota_exhausted"
    assert "gpu_1x_a100" in failure.value.message and "us-west-1" in failure.value.message
    assert "capacity elsewhere: us-east-1" in failure.value.message
    assert calls(lam) == [("GET", "/instance-types")]


def test_a_price_over_the_jobs_ceiling_creates_nothing(
    lam: LambdaFake, executor: BlockingExecutor
) -> None:
    spec, _ = job_spec(max_hourly_usd=1.0)
    with pytest.raises(CheckFailure) as failure:
        run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    assert failure.value.code == "quota_exhausted"
    assert "$1.29/h" in failure.value.message and "$1.00/h" in failure.value.message
    assert calls(lam) == [("GET", "/instance-types")]


def test_residency_picks_a_region_inside_the_jobs_zones(
    lam: LambdaFake, executor: BlockingExecutor
) -> None:
    lam.reset(capacity={"gpu_1x_a100": ["us-east-1", "europe-central-1"]})
    spec, _ = job_spec(zones=("eu",))
    machine = run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    assert machine.refs["region"] == "europe-central-1"
    assert only(lam, "POST", "/instance-operations/launch")[0].json()["region_name"] == (
        "europe-central-1"
    )
    run(lam, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_all_gone(lam)

    lam.reset(capacity={"gpu_1x_a100": ["us-east-1"]})
    with pytest.raises(CheckFailure) as failure:
        run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    assert failure.value.code == "quota_exhausted" and "zones eu" in failure.value.message
    with pytest.raises(CheckFailure) as outside:
        run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec), region="us-east-1")
    assert (outside.value.code, outside.value.fields) == ("misconfigured", ["region"])
    assert not only(lam, "POST", "/ssh-keys")


def test_find_returns_the_live_instance_of_the_name(
    lam: LambdaFake, executor: BlockingExecutor
) -> None:
    spec, _ = job_spec()
    machine = run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    found = run(lam, executor, lambda ctx: ADAPTER.find(ctx, spec.name))
    assert found is not None and found.id == machine.id
    assert found.refs == machine.refs and found.hourly_usd == 1.29
    assert run(lam, executor, lambda ctx: ADAPTER.find(ctx, resource_name(HOME, 8))) is None
    run(lam, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert run(lam, executor, lambda ctx: ADAPTER.find(ctx, spec.name)) is None
    assert_all_gone(lam)


def test_a_key_left_by_a_launch_that_died_is_reused_or_replaced(
    lam: LambdaFake, executor: BlockingExecutor
) -> None:
    spec, keys = job_spec()
    lam.ssh_keys["old"] = {"id": "old", "name": spec.name, "public_key": keys.client_public}
    machine = run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    assert machine.refs["ssh_key_id"] == "old"
    run(lam, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_all_gone(lam)

    other = generate_keys("someone-else").client_public
    lam.ssh_keys["stale"] = {"id": "stale", "name": spec.name, "public_key": other}
    machine = run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    (key,) = lam.ssh_keys.values()
    assert key["public_key"] == keys.client_public and machine.refs["ssh_key_id"] == key["id"]
    run(lam, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_all_gone(lam)


def test_release_of_a_machine_already_gone_is_released(
    lam: LambdaFake, executor: BlockingExecutor
) -> None:
    spec, _ = job_spec()
    machine = run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    run(lam, executor, lambda ctx: ADAPTER.release(ctx, machine))
    lam.requests.clear()
    run(lam, executor, lambda ctx: ADAPTER.release(ctx, machine))  # 404 and no key: done
    assert calls(lam) == [
        ("POST", "/instance-operations/terminate"),  # 404: gone
        ("DELETE", f"/ssh-keys/{machine.refs['ssh_key_id']}"),  # 400: is it still there?
        ("GET", "/ssh-keys"),  # no: deleted
    ]
    assert_all_gone(lam)


def test_a_key_that_cannot_be_deleted_is_logged_and_listed_not_a_failed_release(
    lam: LambdaFake, executor: BlockingExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    spec, _ = job_spec()
    machine = run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    lam.refuse_key_deletion = True
    with caplog.at_level(logging.WARNING, logger="comfyvn_gui.providers.lambda_labs"):
        run(lam, executor, lambda ctx: ADAPTER.release(ctx, machine))  # does not raise
    assert lam.live_instances() == []
    assert spec.name in caplog.text and "not deleted" in caplog.text
    listed = run(lam, executor, lambda ctx: ADAPTER.resources(ctx, HOME))
    assert [(r.kind, r.name, r.job_id) for r in listed] == [("ssh_key", spec.name, 7)]
    lam.refuse_key_deletion = False
    run(lam, executor, lambda ctx: ADAPTER.stop(ctx, listed[0]))
    assert_all_gone(lam)


def test_resources_lists_this_homes_instances_and_keys_and_stop_removes_them(
    lam: LambdaFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    lam.reset(hosts=hosts)
    spec, _ = job_spec(3)
    orphan = run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    # A key whose instance is gone, another home's key and the user's own key.
    lone = resource_name(HOME, 4)
    public = generate_keys("x").client_public
    for kid, name in (("k4", lone), ("k9", resource_name(OTHER_HOME, 9)), ("me", "my-laptop")):
        lam.ssh_keys[kid] = {"id": kid, "name": name, "public_key": public}

    listed = run(lam, executor, lambda ctx: ADAPTER.resources(ctx, HOME))
    assert sorted((r.kind, r.id, r.name, r.job_id) for r in listed) == sorted(
        [
            ("machine", orphan.id, spec.name, 3),
            ("ssh_key", "k4", lone, 4),
            ("ssh_key", orphan.refs["ssh_key_id"], spec.name, 3),
        ]
    )
    machine = next(r for r in listed if r.kind == "machine")
    assert (machine.hourly_usd, machine.status) == (1.29, "active")
    assert machine.console_url == "https://cloud.lambda.ai/instances"

    async def stop_all(ctx: CheckContext) -> None:
        for resource in listed:
            await ADAPTER.stop(ctx, resource)

    run(lam, executor, stop_all)
    assert run(lam, executor, lambda ctx: ADAPTER.resources(ctx, HOME)) == []
    assert sorted(k["id"] for k in lam.ssh_keys.values()) == ["k9", "me"]
    assert_all_gone(lam, hosts)
    # Stopping what is already gone is done, not an error.
    run(lam, executor, lambda ctx: ADAPTER.stop(ctx, machine))
    gone_key = Resource(kind="ssh_key", id="k4", name=lone, job_id=4)
    run(lam, executor, lambda ctx: ADAPTER.stop(ctx, gone_key))


def test_resources_by_tag_when_the_name_is_not_the_apps(
    lam: LambdaFake, executor: BlockingExecutor
) -> None:
    spec, _ = job_spec(5)
    machine = run(lam, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    lam.instances[machine.id]["name"] = "renamed-in-the-dashboard"
    listed = run(lam, executor, lambda ctx: ADAPTER.resources(ctx, HOME))
    assert ("machine", machine.id, 5) in [(r.kind, r.id, r.job_id) for r in listed]
    run(lam, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_all_gone(lam)


# -- validate ------------------------------------------------------------------------------------


def test_validate_warns_without_capacity_and_stays_valid(
    lam: LambdaFake, executor: BlockingExecutor
) -> None:
    result = run(lam, executor, lambda ctx: run_check(ADAPTER, ctx, "validate"), region="us-west-1")
    assert result.status == "valid", result.message
    assert "warning" in result.message and "no capacity in us-west-1" in result.message
    assert result.detail["capacity_available"] is False
    assert "no capacity" in result.detail["warning"]

    ok = run(lam, executor, lambda ctx: run_check(ADAPTER, ctx, "validate"), region="us-east-1")
    assert ok.status == "valid" and "warning" not in ok.detail

    unknown = run(
        lam, executor, lambda ctx: run_check(ADAPTER, ctx, "validate"), instance_type="gpu_9x_x"
    )
    assert (unknown.status, unknown.fields) == ("misconfigured", ["instance_type"])


# -- rate limits ---------------------------------------------------------------------------------


def test_the_adapter_spaces_its_requests_as_lambda_asks(
    lam: LambdaFake, executor: BlockingExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lambda: ~1 request/s, 1 launch/12 s; scaled down 5x / 20x, the fake answers 429 to any
    # request that comes sooner. Two launches back to back and their release: none refused.
    lam.reset(min_interval_s=0.18, launch_interval_s=0.55)
    monkeypatch.setattr(lambda_labs, "REQUEST_INTERVAL_S", 0.2)
    monkeypatch.setattr(lambda_labs, "LAUNCH_INTERVAL_S", 0.6)
    specs = [job_spec(1)[0], job_spec(2)[0]]

    async def both(ctx: CheckContext) -> list[Machine]:
        return list(await asyncio.gather(*(ADAPTER.launch(ctx, s) for s in specs)))

    started = time.monotonic()
    machines = run(lam, executor, both)
    assert lam.throttled == 0 and len(lam.live_instances()) == 2
    assert time.monotonic() - started >= 0.55  # the second launch waited its turn

    async def release_all(ctx: CheckContext) -> None:
        await asyncio.gather(*(ADAPTER.release(ctx, m) for m in machines))

    run(lam, executor, release_all)
    assert lam.throttled == 0
    assert_all_gone(lam)


def test_a_429_is_waited_out(lam: LambdaFake, executor: BlockingExecutor) -> None:
    # The adapter not spacing its requests (interval 0 here): Lambda's 429 is retried after
    # a pause (Retry-After when sent), and the listing still comes back whole.
    lam.reset(min_interval_s=0.2, retry_after="1")
    listed = run(lam, executor, lambda ctx: ADAPTER.resources(ctx, HOME))
    assert listed == [] and lam.throttled >= 1
    assert calls(lam)[-1] == ("GET", "/ssh-keys")


# -- the dead-man switch ---------------------------------------------------------------------------


def test_the_deadman_part_shuts_the_machine_down_at_the_deadline_not_before(
    tmp_path: Path,
) -> None:
    stub = tmp_path / "bin"
    stub.mkdir()
    log = tmp_path / "shutdown.log"
    (stub / "shutdown").write_text(f'#!/bin/sh\necho "$(date +%s) $*" >> {log}\n')
    (stub / "shutdown").chmod(0o755)
    deadline = datetime.now(UTC) + timedelta(seconds=2)
    spec, _ = job_spec(deadline=deadline)
    part = script_part(spec.startup_script, "deadman")

    env = {**os.environ, "PATH": f"{stub}:{os.environ['PATH']}"}
    proc = subprocess.Popen(["sh", "-c", part + "\nwait\n"], env=env)
    try:
        time.sleep(0.8)
        assert not log.exists(), "shutdown ran before the deadline"
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (line,) = log.read_text().splitlines()
    called_at, args = line.split(" ", 1)
    assert args == "-h now"
    assert int(called_at) >= int(deadline.timestamp())
