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
import re
import subprocess
import sys
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
from comfyvn_gui.providers import paperspace
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext, CheckFailure
from comfyvn_gui.providers.machine import (
    LaunchSpec,
    Machine,
    MachineKeys,
    Resource,
    generate_keys,
    is_machine_adapter,
)
from comfyvn_gui.providers.paperspace import (
    CACHE_BINDS,
    CACHE_MOUNT_POINT,
    CONSOLE_URL,
    PaperspaceAdapter,
    shutdown_hours,
)
from tests.fakes import machine_host
from tests.fakes.http import arun
from tests.fakes.machine_host import MachineHosts
from tests.fakes.paperspace import (
    DRIVE_HOST,
    DRIVE_PASSWORD,
    DRIVE_USER,
    ML_TEMPLATE_ID,
    PaperspaceFake,
)
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
    assert DRIVE_USER not in text  # (the drive's user name travels with its password)


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
    assert volume.status.startswith("kept (250 GB, ny2; price not published")
    assert volume.monthly_usd is None  # (no published per-GB rate: see the next tests)
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


# -- the cache volume inside the machine ---------------------------------------------------------

CRED = "/etc/comfyvn-cache.cred"
CACHE_LOG = "/var/log/comfyvn-cache.log"
MARKER = "COMFYVN_CACHE_CRED"


def launch_cached(
    ps: PaperspaceFake, executor: BlockingExecutor, job_id: int = 1, **config: Any
) -> tuple[Machine, str]:
    """A machine launched with the cache volume on, and the start-up script Paperspace got."""
    machine = run(
        ps,
        executor,
        lambda ctx: ADAPTER.launch(ctx, launch_spec(generate_keys(str(job_id)), job_id)),
        cache_volume="on",
        **config,
    )
    sent = ps.bodies("POST", "/v1/startup-scripts")[-1]["script"]
    return machine, sent


def heredoc_bodies(text: str) -> list[tuple[str, list[str]]]:
    """``(marker, lines)`` of every here-document in ``text`` (quoted markers only)."""
    found = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.search(r"<<'([A-Z_]+)'\s*$", lines[i])
        if m:
            end = lines.index(m[1], i + 1)
            found.append((m[1], lines[i + 1 : end]))
            i = end
        i += 1
    return found


def test_with_the_cache_volume_on_the_script_mounts_it_before_comfyui(
    ps: PaperspaceFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    machine, sent = launch_cached(ps, executor)
    (drive,) = ps.shared_drives
    share = (
        f"//{DRIVE_HOST}/{drive['id']}"  # the API's mountPoint \\10.64.0.2\sd..., as SMB wants it
    )
    # the part sits after the keys and before ComfyUI; the rest is the lifecycle's script
    order = [sent.index(f"# >>> comfyvn:{p}\n") for p in ("deadman", "ssh", "cache", "comfyui")]
    assert order == sorted(order)
    spec_script = launch_spec(generate_keys("x")).startup_script
    assert sent.startswith("#!/bin/sh\n# comfyvn-gui start-up script for ")
    assert spec_script.count("# >>>") + 1 == sent.count("# >>>")
    cache = machines.script_part(sent, "cache")
    assert f"mount -t cifs {share} " in cache and f"comfyvn_cred={CRED}" in cache
    assert '-o "credentials=$comfyvn_cred,uid=0,gid=0"' in cache
    subprocess.run(["sh", "-n"], input=sent, text=True, check=True, timeout=5)

    # the password is in the script once: the credentials here-document, never a command's word
    assert sent.count(DRIVE_PASSWORD) == 1 and sent.count(DRIVE_USER) == 1
    docs = dict(heredoc_bodies(cache))
    assert docs[MARKER] == [f"username={DRIVE_USER}", f"password={DRIVE_PASSWORD}"]
    outside = re.sub(rf"<<'{MARKER}'\n.*?\n{MARKER}\n", "", cache, flags=re.S)
    assert DRIVE_PASSWORD not in outside and DRIVE_USER not in outside

    # the container gets the drive's folders (run with a recording docker)
    comfyui = machines.script_part(sent, "comfyui")
    binds = [f"{CACHE_MOUNT_POINT}/{sub}:{path}" for sub, path in CACHE_BINDS]
    assert binds == [
        "/mnt/comfyvn-cache/models:/root/ComfyUI/models",
        "/mnt/comfyvn-cache/hf-hub:/root/.cache/huggingface/hub",
        "/mnt/comfyvn-cache/torch-hub:/root/.cache/torch/hub",
    ]
    assert comfyui.count("docker run ") == 1
    assert hosts.alive == [machine.id]  # (the machine booted from that script)
    assert_no_secret(ps, machine.as_json())
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_gone(ps, hosts, machine)


def test_the_container_is_started_with_the_cache_folders(
    ps: PaperspaceFake, executor: BlockingExecutor, tmp_path: Path
) -> None:
    machine, sent = launch_cached(ps, executor)
    stubs = Stubs.make(tmp_path, "docker")
    stubs.run(machines.script_part(sent, "comfyui"))
    ((argv),) = stubs.argvs("docker")
    assert argv[:2] == ["run", "-d"]
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "-v"]
    assert pairs == [f"{CACHE_MOUNT_POINT}/{sub}:{path}" for sub, path in CACHE_BINDS]
    assert argv[argv.index("--name") + 1] == machine.name
    assert argv[-1] == "yanwk/comfyui-boot:cu126-slim"
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))


def test_with_the_cache_volume_off_nothing_of_it_is_sent(
    ps: PaperspaceFake, executor: BlockingExecutor
) -> None:
    spec = launch_spec(generate_keys("1"))
    machine = run(ps, executor, lambda ctx: ADAPTER.launch(ctx, spec), cache_volume="off")
    (body,) = ps.bodies("POST", "/v1/startup-scripts")
    assert body["script"] == spec.startup_script  # exactly the lifecycle's script
    assert "comfyvn:cache" not in body["script"] and CACHE_MOUNT_POINT not in body["script"]
    assert "cifs" not in body["script"]
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))


# The cache part's absolute paths, moved into the test's folder before it runs.
def sandboxed_cache_part(script: str, root: Path) -> str:
    part = machines.script_part(script, "cache")
    for real, fake in ((CRED, "cache.cred"), (CACHE_LOG, "cache.log")):
        assert part.count(real) == 1
        part = part.replace(real, str(root / fake))
    part = part.replace(f"comfyvn_mnt={CACHE_MOUNT_POINT}", f"comfyvn_mnt={root / 'mnt'}")
    for real in ("/etc/", "/var/", "/mnt/"):
        assert real not in part.replace(str(root), ""), f"{real} left in the cache part"
    return part


_STUB = """#!{python}
import json, os, stat, sys
name = os.path.basename(sys.argv[0])
doc = {{"argv": sys.argv[1:]}}
cred = os.environ.get("CACHE_CRED", "")
if name == "mount" and os.path.exists(cred):  # what mount.cifs would read, at that moment
    doc["cred"] = open(cred).read()
    doc["cred_mode"] = stat.S_IMODE(os.stat(cred).st_mode)
with open(os.path.join(os.environ["RECORD"], name + ".jsonl"), "a") as fh:
    fh.write(json.dumps(doc) + "\\n")
sys.exit(int(os.environ.get("RC_" + name.upper().replace(".", "_"), "0")))
"""


class Stubs:
    """Recording stand-ins first on PATH (sbin is not on it: no real mount.cifs is found)."""

    def __init__(self, root: Path) -> None:
        self.root, self.bin, self.record = root, root / "bin", root / "record"

    @classmethod
    def make(cls, root: Path, *names: str) -> Stubs:
        stubs = cls(root)
        stubs.bin.mkdir()
        stubs.record.mkdir()
        for name in names:
            (stubs.bin / name).write_text(_STUB.format(python=sys.executable))
            (stubs.bin / name).chmod(0o755)
        return stubs

    def run(self, text: str, **env: str) -> subprocess.CompletedProcess[str]:
        full = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "RECORD": str(self.record),
            "CACHE_CRED": str(self.root / "cache.cred"),
            "LC_ALL": "C",
            **env,
        }
        proc = subprocess.run(
            ["sh", "-c", text],
            env=full,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert proc.returncode == 0, proc.stderr
        return proc

    def calls(self, name: str) -> list[dict[str, Any]]:
        path = self.record / f"{name}.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    def argvs(self, name: str) -> list[list[str]]:
        return [c["argv"] for c in self.calls(name)]


def test_the_cache_part_installs_cifs_utils_and_mounts_the_share(
    ps: PaperspaceFake, executor: BlockingExecutor, tmp_path: Path
) -> None:
    machine, sent = launch_cached(ps, executor)
    (drive,) = ps.shared_drives
    stubs = Stubs.make(tmp_path, "mount", "apt-get", "mountpoint")
    proc = stubs.run(
        sandboxed_cache_part(sent, tmp_path) + "\necho after the part\n", RC_MOUNTPOINT="1"
    )
    assert proc.stdout.strip() == "after the part"

    # no mount.cifs on PATH: cifs-utils is installed first, without questions
    update, install = stubs.argvs("apt-get")
    assert update[-2:] == ["update", "-q"] and install[-3:] == ["-y", "-q", "cifs-utils"]
    assert stubs.argvs("mountpoint") == [["-q", str(tmp_path / "mnt")]]
    ((call),) = stubs.calls("mount")
    assert call["argv"] == [
        "-t",
        "cifs",
        f"//{DRIVE_HOST}/{drive['id']}",
        str(tmp_path / "mnt"),
        "-o",
        f"credentials={tmp_path / 'cache.cred'},uid=0,gid=0",
    ]
    # the credentials as mount.cifs reads them: root-only, one key=value a line
    assert call["cred"] == f"username={DRIVE_USER}\npassword={DRIVE_PASSWORD}\n"
    assert call["cred_mode"] == 0o600
    assert (tmp_path / "mnt").is_dir()
    for name in ("mount", "apt-get", "mountpoint"):  # never a command's argument
        assert DRIVE_PASSWORD not in json.dumps(stubs.argvs(name))
    assert DRIVE_PASSWORD not in proc.stdout + proc.stderr
    assert "mounted at" in (tmp_path / "cache.log").read_text()
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))


def test_a_failed_mount_is_logged_and_the_script_goes_on(
    ps: PaperspaceFake, executor: BlockingExecutor, tmp_path: Path
) -> None:
    machine, sent = launch_cached(ps, executor)
    stubs = Stubs.make(tmp_path, "mount", "apt-get", "mountpoint", "mount.cifs", "docker")
    text = sandboxed_cache_part(sent, tmp_path) + "\n" + machines.script_part(sent, "comfyui")
    proc = stubs.run(text, RC_MOUNT="32", RC_MOUNTPOINT="1")
    assert stubs.argvs("apt-get") == []  # (mount.cifs is there)
    assert len(stubs.argvs("mount")) == 1
    assert "NOT mounted" in proc.stderr and DRIVE_PASSWORD not in proc.stderr
    assert "NOT mounted" in (tmp_path / "cache.log").read_text()
    assert len(stubs.argvs("docker")) == 1  # ComfyUI still starts (on the machine's own disk)
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))


def test_a_share_already_mounted_is_left_as_it_is(
    ps: PaperspaceFake, executor: BlockingExecutor, tmp_path: Path
) -> None:
    machine, sent = launch_cached(ps, executor)
    stubs = Stubs.make(tmp_path, "mount", "apt-get", "mountpoint", "mount.cifs")
    stubs.run(sandboxed_cache_part(sent, tmp_path), RC_MOUNTPOINT="0")  # (a reboot's re-run)
    assert stubs.argvs("mount") == [] and stubs.argvs("apt-get") == []
    assert (tmp_path / "cache.cred").stat().st_mode & 0o777 == 0o600
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))


def test_hostile_credentials_and_share_stay_single_words(tmp_path: Path) -> None:
    canary = "PWNED"
    user = f"u'$(touch {canary})`touch {canary}`"
    password = f"p\"\\$x$(touch {canary});touch {canary} '`id`"
    share = f"s h$(touch {canary})'"
    part = machines.cache_mount_part("10.64.0.9", share, user, password, "/mnt/a b")
    part = part.replace(CRED, str(tmp_path / "cache.cred")).replace(
        CACHE_LOG, str(tmp_path / "cache.log")
    )
    part = part.replace("comfyvn_mnt='/mnt/a b'", f"comfyvn_mnt='{tmp_path}/a b'")
    script = f"# >>> comfyvn:x\ntrue\n# <<< comfyvn:x\n{part}\n"
    stubs = Stubs.make(tmp_path, "mount", "mountpoint", "mount.cifs")
    stubs.run(machines.script_part(script, "cache"), RC_MOUNTPOINT="1")
    ((call),) = stubs.calls("mount")
    assert call["argv"][2:4] == [f"//10.64.0.9/{share}", f"{tmp_path}/a b"]
    assert call["cred"] == f"username={user}\npassword={password}\n"
    assert not (tmp_path / canary).exists()


@pytest.mark.parametrize(
    ("host", "share", "user", "password", "what"),
    [
        ("10.64.0.2", "sd1", "u", f"{DRIVE_PASSWORD}\nusername=root", "password"),
        ("10.64.0.2", "sd1", "u", f"{DRIVE_PASSWORD}\rx", "password"),
        ("10.64.0.2", "sd1", "u", f"x\n{MARKER}\ntouch /tmp/x", "password"),
        ("10.64.0.2", "sd1", "u", "", "password"),
        ("10.64.0.2", "sd1", f"u\n{DRIVE_PASSWORD}", DRIVE_PASSWORD, "user name"),
        ("10.64.0.2", "a/b", "u", DRIVE_PASSWORD, "share"),
        ("10.64.0.2", "a\\b", "u", DRIVE_PASSWORD, "share"),
        ("10.64.0.2", "", "u", DRIVE_PASSWORD, "share"),
        ("10.64.0.2 x", "sd1", "u", DRIVE_PASSWORD, "host"),
        ("-o", "sd1", "u", DRIVE_PASSWORD, "host"),
    ],
)
def test_what_cannot_be_mounted_safely_is_refused_without_the_password(
    host: str, share: str, user: str, password: str, what: str
) -> None:
    with pytest.raises(ValueError) as info:
        machines.cache_mount_part(host, share, user, password)
    assert what in str(info.value) and DRIVE_PASSWORD not in str(info.value)


def test_a_listing_without_credentials_reads_the_drive(
    ps: PaperspaceFake, executor: BlockingExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    first, _ = launch_cached(ps, executor)
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, first))
    (drive,) = ps.shared_drives
    ps.list_without_credentials = True
    ps.requests.clear()
    second, sent = launch_cached(ps, executor, 2)
    assert ("GET", f"/v1/shared-drives/{drive['id']}") in calls(ps)
    assert ps.bodies("POST", "/v1/shared-drives") == []  # (reused)
    assert f"//{DRIVE_HOST}/{drive['id']}" in machines.script_part(sent, "cache")
    assert second.refs["cache_volume_id"] == drive["id"]
    assert_no_secret(ps, second.as_json(), caplog.text)
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, second))


def test_a_drive_without_a_mount_point_runs_the_machine_without_it(
    ps: PaperspaceFake, executor: BlockingExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    first, _ = launch_cached(ps, executor)
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, first))
    ps.shared_drives[0]["mountPoint"] = ""  # (not what the API documents: a defensive case)
    second, sent = launch_cached(ps, executor, 2)
    assert "comfyvn:cache" not in sent and CACHE_MOUNT_POINT not in sent
    assert ps.bodies("POST", "/v1/machines")[-1]["networkId"] == ps.private_networks[0]["id"]
    assert "runs without it" in caplog.text
    assert_no_secret(ps, second.as_json(), caplog.text)
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, second))


def test_a_refused_machine_with_the_cache_on_says_no_secret(
    ps: PaperspaceFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    with pytest.raises(CheckFailure) as info:
        launch_cached(ps, executor, template_id="tnosuch1")
    failure = info.value
    assert_no_secret(ps, str(failure), failure.message, failure.detail, repr(failure))
    assert ps.startup_scripts == [] and ps.machines == [] and hosts.alive == []
    assert len(ps.shared_drives) == 1  # (the volume is kept: a standing cost running lists)


def test_the_volume_shows_the_monthly_price_the_user_read_on_paperspace(
    ps: PaperspaceFake, executor: BlockingExecutor
) -> None:
    assert paperspace.SHARED_DRIVE_USD_PER_GB_MONTH is None  # (none published: see the module)
    machine, _ = launch_cached(ps, executor, cache_volume_gb="500")
    run(ps, executor, lambda ctx: ADAPTER.release(ctx, machine))
    (volume,) = run(ps, executor, lambda ctx: ADAPTER.resources(ctx, HOME))
    assert (volume.kind, volume.monthly_usd) == ("volume", None)
    assert "price not published" in volume.status and "cache_volume_monthly_usd" in volume.status
    (priced,) = run(
        ps,
        executor,
        lambda ctx: ADAPTER.resources(ctx, HOME),
        cache_volume_monthly_usd="25",
    )
    assert priced.monthly_usd == 25.0
    assert priced.status == "kept (500 GB, ny2)"
    assert_no_secret(ps, priced.__dict__, volume.__dict__)
    run(ps, executor, lambda ctx: ADAPTER.stop(ctx, priced))
    assert ps.shared_drives == []
