"""Paperspace machines for dispatch (providers/paperspace.py) against the contract fake of its
API (tests/fakes/paperspace.py), whose machines boot a real OpenSSH server with the host and
client keys of the start-up script they were given (tests/fakes/machine_host.py).

Every test that rents a machine proves it was given back: the fake holds no machine or
start-up script of it, and no sshd of it runs (``hosts.alive == []``).
"""

from __future__ import annotations

import asyncio
import getpass
import io
import json
import math
import os
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import paramiko
import pytest

from comfyvn_gui.core import machines
from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext, CheckFailure
from comfyvn_gui.providers.machine import (
    LaunchSpec,
    Machine,
    MachineKeys,
    Resource,
    generate_keys,
    is_machine_adapter,
)
from comfyvn_gui.providers.paperspace import CONSOLE_URL, PaperspaceAdapter, shutdown_hours
from tests.fakes import machine_host
from tests.fakes.http import arun
from tests.fakes.machine_host import MachineHosts
from tests.fakes.paperspace import DRIVE_PASSWORD, ML_TEMPLATE_ID, PaperspaceFake
from tests.fakes.sshd import free_port

CATALOG = load_catalog()
HOME = "0123456789abcdef"
OTHER_HOME = "fedcba9876543210"
ADAPTER = PaperspaceAdapter()
T = TypeVar("T")


@pytest.fixture(scope="module")
def server() -> Iterator[PaperspaceFake]:
    with PaperspaceFake() as fake:
        yield fake


@pytest.fixture
def hosts() -> Iterator[MachineHosts]:
    with MachineHosts() as h:
        yield h


@pytest.fixture
def ps(server: PaperspaceFake, hosts: MachineHosts) -> PaperspaceFake:
    fake: PaperspaceFake = server.reset(hosts=hosts, machines=[])
    return fake


@pytest.fixture
def executor() -> Iterator[BlockingExecutor]:
    pool = BlockingExecutor(max_workers=2)
    yield pool
    pool.shutdown()


def run(
    ps: PaperspaceFake,
    executor: BlockingExecutor,
    call: Callable[[CheckContext], Awaitable[T]],
    **config: Any,
) -> T:
    """``call(ctx)`` on a fresh event loop, for a Paperspace provider with ``config``."""

    async def main() -> T:
        entry = ProviderEntry(
            id="ps",
            template_id="paperspace",
            name="Paperspace",
            active=True,
            base_url=ps.api_base,
            config={"project": "scratch", **config},
        )
        ctx = CheckContext(
            provider=entry,
            profile=CATALOG.profile("paperspace"),
            secrets={"api_key": ps.key},
            deadline=asyncio.get_running_loop().time() + 20,
            executor=executor,
        )
        return await call(ctx)

    result: T = arun(main())
    return result


def launch_spec(
    keys: MachineKeys, job_id: int = 1, *, deadline_s: float = 5400, home: str = HOME
) -> LaunchSpec:
    name = machines.resource_name(home, job_id)
    deadline = datetime.now(UTC) + timedelta(seconds=deadline_s)
    plan = machines.StartupPlan(
        name=name,
        deadline=deadline,
        deadman="shutdown",
        host_private_key=keys.host_private,
        host_public_key=keys.host_public,
        client_public_key=keys.client_public,
        ssh_user="paperspace",
        image="yanwk/comfyui-boot:cu126-slim",
    )
    return LaunchSpec(
        name=name,
        tags=machines.resource_tags(home, job_id),
        job_id=job_id,
        image=plan.image,
        startup_script=machines.startup_script(plan),
        client_public_key=keys.client_public,
        vram_mb=16000,
        max_hourly_usd=2.0,
        zones=("us",),
        deadline=deadline,
    )


def calls(ps: PaperspaceFake) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in ps.requests]


def assert_gone(ps: PaperspaceFake, hosts: MachineHosts, machine: Machine) -> None:
    assert ps.machine(machine.name) is None
    assert [s["name"] for s in ps.startup_scripts if s["name"] == machine.name] == []
    assert hosts.alive == []


def assert_no_secret(ps: PaperspaceFake, *docs: Any) -> None:
    text = json.dumps(docs, default=str)
    assert ps.key not in text and DRIVE_PASSWORD not in text


def test_the_adapter_is_a_machine_adapter() -> None:
    assert is_machine_adapter(ADAPTER)
    assert (ADAPTER.deadman, ADAPTER.mode, ADAPTER.default_ssh_user) == (
        "shutdown",
        "vm",
        "paperspace",
    )
    words = ADAPTER.deadman_words
    assert "auto-shutdown" in words and "disk" in words and "deletes the machine" in words


def test_auto_shutdown_hours_are_rounded_up() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert shutdown_hours(now + timedelta(minutes=61), now) == 2
    assert shutdown_hours(now + timedelta(minutes=60), now) == 1
    assert shutdown_hours(now + timedelta(minutes=5), now) == 1
    assert shutdown_hours(now - timedelta(minutes=5), now) == 1  # (never 0: that is "off")


def test_launch_sends_the_start_up_script_then_the_machine(
    ps: PaperspaceFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    keys = generate_keys("job1")
    spec = launch_spec(keys, deadline_s=90 * 60)
    machine = run(ps, executor, lambda ctx: ADAPTER.launch(ctx, spec))

    assert calls(ps) == [
        ("GET", "/v1/os-templates"),
        ("POST", "/v1/startup-scripts"),
        ("POST", "/v1/machines"),
    ]
    for req in ps.requests:
        assert req.bearer == ps.key
    (script_body,) = ps.bodies("POST", "/v1/startup-scripts")
    assert script_body == {"name": spec.name, "script": spec.startup_script, "isRunOnce": False}
    sent = script_body["script"]
    assert keys.host_public in sent and keys.client_public in sent
    deadman = machines.script_part(sent, "deadman")
    assert str(int(spec.deadline.timestamp())) in deadman and "shutdown -h now" in deadman

    (body,) = ps.bodies("POST", "/v1/machines")
    (script,) = ps.startup_scripts
    assert body == {
        "name": spec.name,
        "machineType": "A4000",
        "templateId": ML_TEMPLATE_ID,  # the newest ML-in-a-Box template offered on an A4000
        "region": "ny2",
        "diskSize": 50,  # (the job asked for 40 GB: Paperspace's smallest disk is 50 GB)
        "startOnCreate": True,
        "publicIpType": "dynamic",
        "startupScriptId": script["id"],
        "autoShutdownEnabled": True,
        "autoShutdownTimeout": 2,  # 90 minutes, rounded up
        "autoShutdownForce": True,
    }
    assert (machine.name, machine.status, machine.raw_status) == (
        spec.name,
        "booting",
        "provisioning",
    )
    assert machine.hourly_usd is None
    assert machine.refs == {
        "machine_id": machine.id,
        "startup_script_id": script["id"],
        "region": "ny2",
        "api": ps.api_base,
        "ssh_port": 22,
        "machine_type": "A4000",
        "template_id": ML_TEMPLATE_ID,
    }
    assert_no_secret(ps, machine.as_json())
    assert hosts.alive == [machine.id]

    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert calls(ps)[-2:] == [
        ("DELETE", f"/v1/machines/{machine.id}"),
        ("DELETE", f"/v1/startup-scripts/{script['id']}"),
    ]
    assert_gone(ps, hosts, machine)


def test_a_set_template_is_used_as_it_is(
    ps: PaperspaceFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec = launch_spec(generate_keys("job1"))
    machine = run(
        ps, executor, lambda ctx: ADAPTER.launch(ctx, spec), template_id="tkni3aa4", region="CA1"
    )
    assert ("GET", "/v1/os-templates") not in calls(ps)
    (body,) = ps.bodies("POST", "/v1/machines")
    assert (body["templateId"], body["region"]) == ("tkni3aa4", "ca1")
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_gone(ps, hosts, machine)


def test_a_region_outside_the_jobs_zones_rents_nothing(
    ps: PaperspaceFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec = launch_spec(generate_keys("job1"))
    with pytest.raises(CheckFailure) as info:
        run(ps, executor, lambda ctx: ADAPTER.launch(ctx, spec), region="AMS1")
    assert (info.value.code, info.value.fields) == ("misconfigured", ["region"])
    assert "AMS1" in info.value.message and ps.requests == []
    assert hosts.alive == []


def test_no_capacity_deletes_the_script_and_says_so(
    ps: PaperspaceFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    ps.availability = {"A4000": False}
    spec = launch_spec(generate_keys("job1"))
    with pytest.raises(CheckFailure) as info:
        run(ps, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    assert info.value.code == "quota_exhausted"
    assert "no A4000 machine free in NY2" in info.value.message
    assert calls(ps)[1:] == [
        ("POST", "/v1/startup-scripts"),
        ("POST", "/v1/machines"),
        ("GET", "/v1/machine-availability"),
        ("DELETE", calls(ps)[-1][1]),
    ]
    assert calls(ps)[-1][1].startswith("/v1/startup-scripts/")
    assert ps.startup_scripts == [] and ps.machines == [] and hosts.alive == []


def test_a_refused_machine_deletes_the_script(
    ps: PaperspaceFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec = launch_spec(generate_keys("job1"))
    with pytest.raises(CheckFailure) as info:
        run(ps, executor, lambda ctx: ADAPTER.launch(ctx, spec), template_id="tnosuch1")
    assert info.value.code == "misconfigured"
    assert "template tnosuch1 not found" in info.value.message
    assert "template_id" in info.value.fields
    assert ps.startup_scripts == [] and ps.machines == [] and hosts.alive == []
    assert calls(ps)[-1][0] == "DELETE"


def test_describe_reports_the_running_machine_and_its_ssh_is_real(
    ps: PaperspaceFake,
    hosts: MachineHosts,
    executor: BlockingExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()  # the machine's sshd listens on the provider's ssh_port
    monkeypatch.setattr(machine_host, "free_port", lambda: port)
    keys = generate_keys("job1")
    spec = launch_spec(keys)
    machine = run(ps, executor, lambda ctx: ADAPTER.launch(ctx, spec), ssh_port=str(port))
    assert machine.status == "booting" and machine.ssh_host is None

    described = run(ps, executor, lambda ctx: ADAPTER.describe(ctx, machine))
    assert (described.status, described.raw_status) == ("running", "ready")
    assert (described.ssh_host, described.ssh_port) == ("127.0.0.1", port)
    assert described.refs == machine.refs and described.id == machine.id

    client = paramiko.SSHClient()
    seen: list[str] = []

    class Record(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
        def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
            seen.append(f"{key.get_name()} {key.get_base64()}")

    client.set_missing_host_key_policy(Record())
    pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(keys.client_private))
    client.connect(
        described.ssh_host,
        port=described.ssh_port,
        username=getpass.getuser(),
        pkey=pkey,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    try:
        _, out, _ = client.exec_command("echo up")
        assert out.read().strip() == b"up"
    finally:
        client.close()
    assert seen == [keys.host_public]

    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_gone(ps, hosts, machine)
    gone = run(ps, executor, lambda ctx: ADAPTER.describe(ctx, machine))
    assert gone.status == "released"


def test_releasing_a_machine_that_is_gone_succeeds(
    ps: PaperspaceFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    machine = run(ps, executor, lambda ctx: ADAPTER.launch(ctx, launch_spec(generate_keys("j"))))
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))
    ps.requests.clear()
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))  # again: both 404
    assert [m for m, _ in calls(ps)] == ["DELETE", "DELETE"]
    assert_gone(ps, hosts, machine)


def test_a_script_that_cannot_be_deleted_is_logged_and_listed(
    ps: PaperspaceFake,
    hosts: MachineHosts,
    executor: BlockingExecutor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    machine = run(ps, executor, lambda ctx: ADAPTER.launch(ctx, launch_spec(generate_keys("j"))))
    ps.fail_script_delete = True
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))  # does not raise
    assert ps.machine(machine.name) is None and hosts.alive == []
    assert "start-up script" in caplog.text and "not deleted" in caplog.text
    listed = run(ps, executor, lambda ctx: ADAPTER.resources(ctx, HOME))
    assert [(r.kind, r.name, r.status) for r in listed] == [
        ("startup_script", machine.name, "unused")
    ]
    ps.fail_script_delete = False
    run(ps, executor, lambda ctx: ADAPTER.stop(ctx, listed[0]))
    assert_gone(ps, hosts, machine)


def test_find_looks_the_machine_and_its_script_up_by_name(
    ps: PaperspaceFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec = launch_spec(generate_keys("job4"), job_id=4)
    machine = run(ps, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    found = run(ps, executor, lambda ctx: ADAPTER.find(ctx, spec.name))
    assert found is not None
    assert (found.id, found.name) == (machine.id, spec.name)
    assert found.refs["startup_script_id"] == machine.refs["startup_script_id"]
    assert found.refs["region"] == "ny2" and found.refs["api"] == ps.api_base
    other = machines.resource_name(HOME, 5)
    assert run(ps, executor, lambda ctx: ADAPTER.find(ctx, other)) is None
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, found))  # (a resumed driver's release)
    assert_gone(ps, hosts, machine)


def test_resources_find_orphans_and_stop_removes_them(
    ps: PaperspaceFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    # 130 machines of other people first: the listing takes two pages
    ps.machines.extend(
        {"id": f"psx{i:04d}", "name": f"other-{i}", "state": "off", "region": "ny2"}
        for i in range(130)
    )
    orphan = run(ps, executor, lambda ctx: ADAPTER.launch(ctx, launch_spec(generate_keys("7"), 7)))
    foreign = run(
        ps,
        executor,
        lambda ctx: ADAPTER.launch(ctx, launch_spec(generate_keys("f"), 8, home=OTHER_HOME)),
    )
    lone = machines.resource_name(HOME, 9)  # a script whose machine was never made
    run(ps, executor, lambda ctx: _post_script(ctx, lone))

    listed = run(ps, executor, lambda ctx: ADAPTER.resources(ctx, HOME))
    assert sorted((r.kind, r.name, r.job_id) for r in listed) == [
        ("machine", orphan.name, 7),
        ("startup_script", orphan.name, 7),
        ("startup_script", lone, 9),
    ]
    assert all(r.console_url == CONSOLE_URL and r.created_at is not None for r in listed)
    pages = [r for r in ps.requests if r.path == "/v1/machines" and r.method == "GET"]
    assert len(pages) == 2 and pages[1].query["after"] == ["120"]

    for resource in listed:
        run(ps, executor, lambda ctx, r=resource: ADAPTER.stop(ctx, r))  # type: ignore[misc]
    assert run(ps, executor, lambda ctx: ADAPTER.resources(ctx, HOME)) == []
    assert hosts.alive == [foreign.id]  # the other home's machine is not touched
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, foreign))
    assert_gone(ps, hosts, orphan)
    assert_gone(ps, hosts, foreign)


async def _post_script(ctx: CheckContext, name: str) -> None:
    async with ctx.http(auth_fields=["api_key"]) as http:
        await http.post(
            f"{ctx.endpoint('api')}/startup-scripts",
            headers={"Authorization": f"Bearer {ctx.secrets['api_key']}"},
            json={"name": name, "script": "#!/bin/sh\ntrue\n"},
        )


def test_the_cache_volume_is_made_only_when_asked_reused_and_kept(
    ps: PaperspaceFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    plain = run(ps, executor, lambda ctx: ADAPTER.launch(ctx, launch_spec(generate_keys("1"))))
    assert not [p for _, p in calls(ps) if "shared-drives" in p or "private-networks" in p]
    assert "networkId" not in ps.bodies("POST", "/v1/machines")[0]
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, plain))
    assert run(ps, executor, lambda ctx: ADAPTER.resources(ctx, HOME)) == []

    ps.requests.clear()
    first = run(
        ps,
        executor,
        lambda ctx: ADAPTER.launch(ctx, launch_spec(generate_keys("2"), 2)),
        cache_volume="on",
    )
    name = f"comfyvn-{HOME}-cache"
    (network,) = ps.private_networks
    (drive,) = ps.shared_drives
    assert ps.bodies("POST", "/v1/private-networks") == [{"name": name, "region": "ny2"}]
    assert ps.bodies("POST", "/v1/shared-drives") == [
        {"name": name, "networkId": network["id"], "region": "ny2", "size": 250}
    ]
    assert ps.bodies("POST", "/v1/machines")[0]["networkId"] == network["id"]
    assert first.refs["cache_volume_id"] == drive["id"]
    assert first.refs["network_id"] == network["id"]
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, first))
    assert ps.shared_drives == [drive]  # not released with the machine

    ps.requests.clear()
    second = run(
        ps,
        executor,
        lambda ctx: ADAPTER.launch(ctx, launch_spec(generate_keys("3"), 3)),
        cache_volume="on",
        cache_volume_gb="500",
    )
    assert ps.bodies("POST", "/v1/shared-drives") == []  # reused
    assert ps.bodies("POST", "/v1/private-networks") == []
    assert ps.bodies("POST", "/v1/machines")[0]["networkId"] == network["id"]
    assert second.refs["cache_volume_id"] == drive["id"]

    listed = run(ps, executor, lambda ctx: ADAPTER.resources(ctx, HOME))
    volume = next(r for r in listed if r.kind == "volume")
    assert (volume.id, volume.name, volume.job_id) == (drive["id"], name, None)
    assert volume.status == "kept (250 GB, ny2)"
    assert volume.monthly_usd is None  # Paperspace publishes no shared-drive price
    assert_no_secret(ps, first.as_json(), second.as_json(), [r.__dict__ for r in listed])

    run(ps, executor, lambda ctx: ADAPTER.release(ctx, second))
    assert_gone(ps, hosts, second)
    assert ps.shared_drives == [drive]
    run(ps, executor, lambda ctx: ADAPTER.stop(ctx, volume))
    assert ps.shared_drives == [] and ps.private_networks == []
    assert run(ps, executor, lambda ctx: ADAPTER.resources(ctx, HOME)) == []


def test_a_cache_volume_size_paperspace_does_not_offer_rents_nothing(
    ps: PaperspaceFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    with pytest.raises(CheckFailure) as info:
        run(
            ps,
            executor,
            lambda ctx: ADAPTER.launch(ctx, launch_spec(generate_keys("1"))),
            cache_volume="on",
            cache_volume_gb="50",
        )
    assert (info.value.code, info.value.fields) == ("misconfigured", ["cache_volume_gb"])
    assert ps.machines == [] and ps.startup_scripts == [] and hosts.alive == []


def test_paperspaces_own_auto_shutdown_turns_the_machine_off(
    ps: PaperspaceFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    ps.hour_s = 0.4  # (fake only) one auto-shutdown hour lasts 0.4 s
    machine = run(
        ps,
        executor,
        lambda ctx: ADAPTER.launch(ctx, launch_spec(generate_keys("1"), deadline_s=600)),
    )
    assert ps.bodies("POST", "/v1/machines")[0]["autoShutdownTimeout"] == 1
    assert run(ps, executor, lambda ctx: ADAPTER.describe(ctx, machine)).status == "running"
    time.sleep(0.5)
    off = run(ps, executor, lambda ctx: ADAPTER.describe(ctx, machine))
    assert (off.status, off.raw_status, off.ssh_host) == ("stopped", "off", None)
    assert hosts.alive == []  # powered off: no sshd, no compute
    assert ps.machine(machine.name) is not None  # but its disk is still there until release
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_gone(ps, hosts, machine)


def test_the_dead_man_part_shuts_down_after_the_deadline_not_before(tmp_path: Path) -> None:
    keys = generate_keys("job1")
    deadline = math.ceil(time.time() + 1.2)  # a whole second, about 2 s ahead
    plan = machines.StartupPlan(
        name=machines.resource_name(HOME, 1),
        deadline=datetime.fromtimestamp(deadline, UTC),
        deadman=ADAPTER.deadman,  # type: ignore[arg-type]
        host_private_key=keys.host_private,
        host_public_key=keys.host_public,
        client_public_key=keys.client_public,
        ssh_user="paperspace",
        image="yanwk/comfyui-boot:cu126-slim",
    )
    part = machines.script_part(machines.startup_script(plan), "deadman")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    called = tmp_path / "called"
    stub = bin_dir / "shutdown"
    stub.write_text(f'#!/bin/sh\necho "$(date +%s.%N) $*" > {called}\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["sh", "-c", part], env=env, check=True, timeout=5)

    time.sleep(max(0.0, deadline - 0.4 - time.time()))
    assert not called.exists(), "shutdown ran before the deadline"
    until = deadline + 3
    while not called.exists() and time.time() < until:
        time.sleep(0.05)
    when, args = called.read_text().split(" ", 1)
    assert float(when) >= deadline
    assert args.strip() == "-h now"


def test_validate_warns_when_the_machine_type_is_not_available(
    ps: PaperspaceFake, executor: BlockingExecutor
) -> None:
    ok = run(ps, executor, ADAPTER.validate)
    assert ok.detail["machine_type_available"] is True and "warning" not in ok.message
    (asked,) = [r for r in ps.requests if r.path == "/v1/machine-availability"]
    assert asked.query == {"machineType": ["A4000"], "region": ["ny2"]}

    ps.availability = {"A4000": False}
    warned = run(ps, executor, ADAPTER.validate)
    assert warned.detail["machine_type_available"] is False
    assert "warning: Paperspace has no A4000 machine free in NY2" in warned.message
    health = run(ps, executor, ADAPTER.health)
    assert (health.health, health.code) == ("degraded", "quota_exhausted")
    assert ps.machines == []  # nothing was rented to find out


def test_every_resource_kind_is_known(ps: PaperspaceFake, executor: BlockingExecutor) -> None:
    odd = Resource(kind="pod", id="x", name="comfyvn-0123456789abcdef-job1", job_id=1)
    with pytest.raises(CheckFailure):
        run(ps, executor, lambda ctx: ADAPTER.stop(ctx, odd))
