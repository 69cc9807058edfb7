"""Vast.ai dispatch: the offer search, one instance per job, and what ends its bill.

Against the contract fake of tests/fakes/vast.py (a real HTTP server that answers as Vast.ai's
documented API does) and, behind each instance it creates, a real OpenSSH server started with
the host key and the client key of the start-up script the adapter sent
(tests/fakes/machine_host.py): the SSH check below is a real login. Every test that rents a
machine proves it was released: the fake holds no instance of it and no sshd runs.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import io
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
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
from comfyvn_gui.providers import vast as vast_module
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext, CheckFailure, run_check
from comfyvn_gui.providers.machine import (
    LaunchSpec,
    Machine,
    MachineKeys,
    MachineStatus,
    generate_keys,
    is_machine_adapter,
)
from comfyvn_gui.providers.vast import Offer, VastAdapter, search_offers, zone_of
from tests.fakes.http import Request, arun
from tests.fakes.machine_host import MachineHosts
from tests.fakes.vast import VastFake, offer

CATALOG = load_catalog()
HOME = "ab12cd34"
ADAPTER = VastAdapter()
COMFYUI_COMMAND = CATALOG.profile("vast").field("comfyui_command").default or ""


@pytest.fixture(scope="module")
def server() -> Iterator[VastFake]:
    with VastFake() as fake:
        yield fake


@pytest.fixture
def hosts() -> Iterator[MachineHosts]:
    with MachineHosts() as machines:
        yield machines


@pytest.fixture
def fake(server: VastFake, hosts: MachineHosts) -> VastFake:
    reset: VastFake = server.reset(hosts=hosts)
    return reset


@pytest.fixture
def executor() -> Iterator[BlockingExecutor]:
    pool = BlockingExecutor(max_workers=2)
    yield pool
    pool.shutdown()


def context(
    fake: VastFake,
    executor: BlockingExecutor,
    *,
    meta: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    key: str | None = None,
) -> CheckContext:
    provider = ProviderEntry(
        id="va",
        template_id="vast",
        name="Vast",
        active=True,
        base_url=fake.api_base,
        config=dict(config or {}),
        meta=dict(meta or {}),
    )
    return CheckContext(
        provider=provider,
        profile=CATALOG.profile("vast"),
        secrets={"api_key": key or fake.key},
        deadline=asyncio.get_running_loop().time() + 20,
        executor=executor,
    )


def spec_for(
    fake: VastFake,
    keys: MachineKeys,
    *,
    job_id: int = 3,
    vram_mb: int = 16000,
    max_hourly_usd: float | None = 0.30,
    zones: tuple[str, ...] | None = None,
    deadline: datetime | None = None,
) -> LaunchSpec:
    name = resource_name(HOME, job_id)
    when = deadline or datetime.now(UTC) + timedelta(hours=2)
    plan = StartupPlan(
        name=name,
        deadline=when,
        deadman="vast",
        host_private_key=keys.host_private,
        host_public_key=keys.host_public,
        client_public_key=keys.client_public,
        ssh_user=getpass.getuser(),
        mode="container",
        comfyui_command=COMFYUI_COMMAND,
        api_url=fake.api_base,
    )
    return LaunchSpec(
        name=name,
        tags=resource_tags(HOME, job_id),
        job_id=job_id,
        image="vastai/comfyui:latest",
        startup_script=startup_script(plan),
        client_public_key=keys.client_public,
        vram_mb=vram_mb,
        max_hourly_usd=max_hourly_usd,
        zones=zones,
        deadline=when,
        disk_gb=40,
    )


def sent(fake: VastFake, method: str, prefix: str) -> list[Request]:
    return [r for r in fake.requests if r.method == method and r.path.startswith(prefix)]


async def until_running(ctx: CheckContext, machine: Machine) -> Machine:
    for _ in range(50):
        machine = await ADAPTER.describe(ctx, machine)
        if machine.status == "running":
            return machine
        await asyncio.sleep(0.05)
    raise AssertionError(f"instance {machine.id} never ran ({machine.raw_status!r})")


def ssh_login(machine: Machine, keys: MachineKeys) -> str:
    """Log in with the one-time client key, pinning the host key the app generated; returns
    what a command printed there."""
    assert machine.ssh_host is not None and machine.ssh_port is not None
    client = paramiko.SSHClient()
    kind, blob = keys.host_public.split()[:2]
    pinned = paramiko.Ed25519Key(data=base64.b64decode(blob))
    client.get_host_keys().add(f"[{machine.ssh_host}]:{machine.ssh_port}", kind, pinned)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            machine.ssh_host,
            machine.ssh_port,
            username=getpass.getuser(),
            pkey=paramiko.Ed25519Key.from_private_key(io.StringIO(keys.client_private)),
            look_for_keys=False,
            allow_agent=False,
            timeout=5,
        )
        transport = client.get_transport()
        assert transport is not None
        assert transport.get_remote_server_key().get_base64() == blob
        _, out, _ = client.exec_command("echo comfyvn-ok", timeout=5)
        return str(out.read().decode().strip())
    finally:
        client.close()


def assert_released(fake: VastFake, hosts: MachineHosts, machine: Machine) -> None:
    assert fake.instance(machine.id) is None
    assert fake.created == []
    assert hosts.alive == []


# -- the offer search ------------------------------------------------------------------------


def test_search_sends_mb_ceiling_and_cheapest_first(
    fake: VastFake, executor: BlockingExecutor
) -> None:
    async def go() -> list[Offer]:
        ctx = context(fake, executor)
        return await search_offers(
            ctx, vram_mb=16000, max_hourly_usd=0.5, zones=("us", "eu"), min_reliability=0.95
        )

    offers = arun(go())
    (req,) = fake.requests
    assert (req.method, req.path) == ("POST", "/api/v0/bundles/")
    assert req.bearer == fake.key
    body = req.json()
    assert body["gpu_ram"] == {"gte": 16000.0}  # MB, as Vast's API takes it
    assert body["dph_total"] == {"lte": 0.5}
    assert body["rentable"] == {"eq": True} and body["verified"] == {"eq": True}
    assert body["reliability"] == {"gte": 0.95}
    assert body["order"] == [["dph_total", "asc"]]  # price, not the client's default score
    assert body["type"] == "on-demand"
    assert "US" in body["geolocation"]["in"] and "DE" in body["geolocation"]["in"]
    assert "JP" not in body["geolocation"]["in"] and "NO" not in body["geolocation"]["in"]
    assert "machine_id" not in body
    # Cheapest first; Japan (asia), Norway (no zone), 12 GB, unverified, taken, unreliable
    # and over-the-ceiling offers are not among them.
    assert [(o.id, o.zone, o.dph_total) for o in offers] == [
        (5002, "eu", 0.21),
        (5004, "us", 0.35),
        (5001, "us", 0.42),
    ]
    assert offers[0] == Offer(5002, 1002, "RTX 3090", 24576.0, 0.21, 0.97, "Germany, DE", "eu")


@pytest.mark.parametrize(
    ("where", "zone"),
    [
        ("Texas, US", "us"),
        ("US", "us"),
        ("Germany, DE", "eu"),
        ("Japan, JP", "asia"),
        ("Ontario, CA", "ca"),
        ("England, GB", "uk"),
        ("Norway, NO", None),  # not an EU member state
        ("Atlantis, XX", None),
        ("", None),
        (None, None),
    ],
)
def test_zone_of_a_geolocation(where: str | None, zone: str | None) -> None:
    assert zone_of(where) == zone


def test_residency_skips_offers_outside_the_zones_whatever_the_answer(
    fake: VastFake, executor: BlockingExecutor
) -> None:
    # The search asks for the zones' countries; every offer is checked again here, so one the
    # answer carries from elsewhere (or from an unknown place) is never taken.
    norway = vast_module._offer(offer(1, where="Norway, NO"))
    japan = vast_module._offer(offer(2, where="Japan, JP"))
    assert norway is not None and japan is not None

    def takeable(o: Offer, zones: tuple[str, ...] | None) -> bool:
        return vast_module._takeable(
            o, vram_mb=16000, max_hourly_usd=None, zones=zones, machine_id=None
        )

    assert not takeable(norway, ("eu", "us")) and not takeable(japan, ("eu", "us"))
    assert takeable(japan, ("asia",))
    assert takeable(norway, None)  # no residency rule: anywhere

    async def go(zones: tuple[str, ...] | None) -> list[int]:
        ctx = context(fake, executor)
        found = await search_offers(
            ctx, vram_mb=16000, max_hourly_usd=None, zones=zones, min_reliability=0.95
        )
        return [o.id for o in found]

    assert arun(go(("eu",))) == [5002, 5006]
    assert 5010 in arun(go(None))  # Norway: taken only when the job has no zones
    assert arun(go(("on_prem",))) == []  # no Vast host is on the premises: nothing asked
    assert len(sent(fake, "POST", "/api/v0/bundles/")) == 2


def test_pinned_machine_and_meta_ceiling(
    fake: VastFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    keys = generate_keys(resource_name(HOME, 5))
    spec = spec_for(fake, keys, job_id=5, max_hourly_usd=None)

    async def go() -> Machine:
        ctx = context(fake, executor, meta={"machine_id": 644, "price_ceiling_usd": 0.4})
        machine = await ADAPTER.launch(ctx, spec)
        await ADAPTER.release(ctx, machine)
        return machine

    machine = arun(go())
    search = sent(fake, "POST", "/api/v0/bundles/")[0].json()
    assert search["machine_id"] == {"eq": 644}
    assert search["dph_total"] == {"lte": 0.4}  # the provider's ceiling when the job has none
    (ask,) = sent(fake, "PUT", "/api/v0/asks/")
    assert ask.path == "/api/v0/asks/5004/"  # machine 644's offer, though 5002 is cheaper
    assert machine.refs["machine_id"] == 644 and machine.refs["offer_id"] == 5004
    assert_released(fake, hosts, machine)


# -- launch, describe, SSH, release ----------------------------------------------------------


def test_launch_describe_ssh_and_release(
    fake: VastFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    keys = generate_keys(resource_name(HOME, 3))
    spec = spec_for(fake, keys, max_hourly_usd=0.30, zones=("us", "eu", "asia"))

    async def go() -> tuple[Machine, Machine, Machine, str, int]:
        ctx = context(fake, executor)
        launched = await ADAPTER.launch(ctx, spec)
        assert launched.status == "booting"
        sshd_port = hosts.machines[launched.id].port
        running = await until_running(ctx, launched)
        said = await asyncio.to_thread(ssh_login, running, keys)
        await ADAPTER.release(ctx, running)
        gone = await ADAPTER.describe(ctx, running)
        await ADAPTER.release(ctx, running)  # again: already destroyed is released
        return launched, running, gone, said, sshd_port

    launched, running, gone, said, sshd_port = arun(go())
    (ask,) = sent(fake, "PUT", "/api/v0/asks/")
    body = ask.json()
    # The cheapest offer under the $0.30 ceiling in the zones: Japan's RTX A4000 at $0.15.
    assert ask.path == "/api/v0/asks/5003/"
    assert body["client_id"] == "me" and body["label"] == spec.name
    assert body["image"] == "vastai/comfyui:latest" and body["disk"] == 40
    assert body["runtype"] == "ssh_direc ssh_proxy" and body["cancel_unavail"] is True
    assert body["onstart"] == spec.startup_script
    assert keys.client_public in body["onstart"] and keys.host_public in body["onstart"]
    deadman = script_part(body["onstart"], "deadman")
    assert "-X DELETE" in deadman and f"{fake.api_base}/instances/" in deadman
    assert "CONTAINER_API_KEY" in deadman and fake.key not in body["onstart"]
    # No offer above the ceiling was ever asked for.
    prices = {o["id"]: o["dph_total"] for o in fake.offers}
    assert all(prices[int(r.path.split("/")[4])] <= 0.30 for r in sent(fake, "PUT", "/api/v0/"))

    instance_id = int(launched.id)
    assert launched.name == spec.name and launched.hourly_usd == 0.15
    assert launched.refs == {
        "instance_id": instance_id,
        "offer_id": 5003,
        "machine_id": 1003,
        "api": fake.api_base,
        "dph_total": 0.15,
        "geolocation": "Japan, JP",
        "gpu_name": "RTX A4000",
    }
    assert (running.status, running.raw_status) == ("running", "running")
    assert (running.ssh_host, running.ssh_port) == ("127.0.0.1", sshd_port)
    assert running.hourly_usd == 0.15 and running.created_at is not None
    assert said == "comfyvn-ok"
    # The instance's own key (in the create answer) is kept nowhere.
    for machine in (launched, running):
        for instance_key in fake.instance_keys.values():
            assert instance_key not in str(machine.as_json())
    assert gone.status == "released"
    deletes = sent(fake, "DELETE", "/api/v0/instances/")
    assert [r.path for r in deletes] == [f"/api/v0/instances/{instance_id}/"] * 2
    assert_released(fake, hosts, running)


def test_describe_reads_the_ssh_port_of_the_booted_machine(
    fake: VastFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    keys = generate_keys(resource_name(HOME, 4))
    spec = spec_for(fake, keys, job_id=4)

    async def go() -> tuple[list[MachineStatus], Machine, int]:
        ctx = context(fake, executor)
        machine = await ADAPTER.launch(ctx, spec)
        port = hosts.machines[machine.id].port
        seen = []
        for _ in range(5):
            machine = await ADAPTER.describe(ctx, machine)
            seen.append(machine.status)
            if machine.status == "running":
                break
        await ADAPTER.release(ctx, machine)
        return seen, machine, port

    seen, machine, port = arun(go())
    assert seen == ["booting", "running"]  # created -> loading -> running
    assert (machine.ssh_host, machine.ssh_port) == ("127.0.0.1", port)
    show = sent(fake, "GET", f"/api/v0/instances/{machine.id}/")[0]
    assert show.query == {"owner": ["me"]}
    assert_released(fake, hosts, machine)


def test_find_by_name_and_proxy_ssh(
    fake: VastFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    fake.direct_ssh = False  # only Vast's SSH proxy address (ssh_host / ssh_port)
    keys = generate_keys(resource_name(HOME, 8))
    spec = spec_for(fake, keys, job_id=8)

    async def go() -> tuple[Machine, Machine | None, Machine | None, str]:
        ctx = context(fake, executor)
        launched = await ADAPTER.launch(ctx, spec)
        found = await ADAPTER.find(ctx, spec.name)
        other = await ADAPTER.find(ctx, resource_name(HOME, 999))
        assert found is not None
        running = await until_running(ctx, found)
        said = await asyncio.to_thread(ssh_login, running, keys)
        await ADAPTER.release(ctx, found)  # release from what find returned (a resumed job)
        return launched, found, other, said

    launched, found, other, said = arun(go())
    assert found is not None and other is None
    assert found.id == launched.id and found.name == spec.name
    assert (
        found.refs["api"] == fake.api_base
        and found.refs["machine_id"] == launched.refs["machine_id"]
    )
    assert said == "comfyvn-ok"
    listing = sent(fake, "GET", "/api/v0/instances/")[0]
    assert listing.query == {"owner": ["me"]}
    assert_released(fake, hosts, launched)


def test_release_of_an_instance_destroyed_elsewhere_succeeds(
    fake: VastFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    keys = generate_keys(resource_name(HOME, 6))
    spec = spec_for(fake, keys, job_id=6)

    async def go() -> Machine:
        ctx = context(fake, executor)
        machine = await ADAPTER.launch(ctx, spec)
        # Destroyed in the console (or by its dead-man switch) before the app releases it.
        async with httpx.AsyncClient() as console:
            resp = await console.delete(
                f"{fake.api_base}/instances/{machine.id}/",
                headers={"Authorization": f"Bearer {fake.key}"},
            )
            resp.raise_for_status()
        await ADAPTER.release(ctx, machine)
        return await ADAPTER.describe(ctx, machine)

    machine = arun(go())
    assert machine.status == "released"
    assert_released(fake, hosts, machine)


def test_429_on_create_is_retried(
    fake: VastFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    fake.rate_limit_asks = 1
    keys = generate_keys(resource_name(HOME, 9))
    spec = spec_for(fake, keys, job_id=9)

    async def go() -> Machine:
        ctx = context(fake, executor)
        machine = await ADAPTER.launch(ctx, spec)
        await ADAPTER.release(ctx, machine)
        return machine

    machine = arun(go())
    asks = sent(fake, "PUT", "/api/v0/asks/")
    assert len(asks) == 2 and asks[0].path == asks[1].path  # the same offer, once more
    assert len(fake.instance_keys) == 0 and machine.id
    assert_released(fake, hosts, machine)


def test_an_offer_taken_meanwhile_moves_on_to_the_next(
    fake: VastFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    fake.taken_before_ask = [5003]  # listed, but rented by someone else before our ask
    keys = generate_keys(resource_name(HOME, 10))
    spec = spec_for(fake, keys, job_id=10, max_hourly_usd=0.30, zones=("us", "eu", "asia"))

    async def go() -> Machine:
        ctx = context(fake, executor)
        machine = await ADAPTER.launch(ctx, spec)
        await ADAPTER.release(ctx, machine)
        return machine

    machine = arun(go())
    assert [r.path for r in sent(fake, "PUT", "/api/v0/asks/")] == [
        "/api/v0/asks/5003/",
        "/api/v0/asks/5002/",
    ]
    assert machine.refs["offer_id"] == 5002
    assert_released(fake, hosts, machine)


def test_no_offer_is_quota_exhausted_and_nothing_is_rented(
    fake: VastFake, executor: BlockingExecutor
) -> None:
    keys = generate_keys(resource_name(HOME, 11))
    spec = spec_for(fake, keys, job_id=11, max_hourly_usd=0.05, zones=("us", "eu"))

    async def go() -> None:
        await ADAPTER.launch(context(fake, executor), spec)

    with pytest.raises(CheckFailure) as caught:
        arun(go())
    assert caught.value.code == "quota_exhausted"
    message = caught.value.message
    assert "16,000 MB VRAM" in message and "$0.05/hr" in message and "us, eu" in message
    assert "today" in message
    assert sent(fake, "PUT", "/api/v0/asks/") == [] and fake.created == []


# -- running: orphans ------------------------------------------------------------------------


def test_resources_finds_an_orphan_and_stop_destroys_it(
    fake: VastFake, executor: BlockingExecutor
) -> None:
    started = time.time() - 3600
    fake.instances += [
        {  # left behind by a job of this home whose release never happened
            "id": 880,
            "label": resource_name(HOME, 41),
            "actual_status": "running",
            "dph_total": 0.33,
            "start_date": started,
        },
        {"id": 881, "label": resource_name("ffff0000", 41), "actual_status": "running"},
        {"id": 882, "label": "my-own-notebook", "actual_status": "running"},
    ]

    async def go() -> tuple[list[Any], list[Any]]:
        ctx = context(fake, executor)
        before = await ADAPTER.resources(ctx, HOME)
        for resource in before:
            await ADAPTER.stop(ctx, resource)
        return before, await ADAPTER.resources(ctx, HOME)

    before, after = arun(go())
    (orphan,) = before
    assert (orphan.kind, orphan.id, orphan.name, orphan.job_id) == (
        "machine",
        "880",
        resource_name(HOME, 41),
        41,
    )
    assert orphan.status == "running" and orphan.hourly_usd == 0.33
    assert orphan.created_at == datetime.fromtimestamp(started, UTC)
    assert orphan.console_url == "https://cloud.vast.ai/instances/"
    assert after == []
    assert fake.instance(880) is None
    assert fake.instance(881) is not None and fake.instance(882) is not None  # not this home's


# -- validate --------------------------------------------------------------------------------


def test_validate_counts_offers_under_the_ceiling(
    fake: VastFake, executor: BlockingExecutor
) -> None:
    async def go() -> Any:
        ctx = context(fake, executor, meta={"price_ceiling_usd": 0.5})
        return await run_check(ADAPTER, ctx, "validate")

    result = arun(go())
    assert result.status == "valid", result.message
    assert "5 offers with 16 GB VRAM under $0.50/hr, from $0.11/hr" in result.message
    assert result.detail["offers"] == 5 and result.detail["cheapest_hourly_usd"] == 0.11
    search = sent(fake, "POST", "/api/v0/bundles/")[0].json()
    assert search["gpu_ram"] == {"gte": 16000.0} and search["dph_total"] == {"lte": 0.5}
    assert search["reliability"] == {"gte": 0.95}  # the option's default
    assert fake.key not in str(result.model_dump())


def test_validate_warns_not_fails_without_offers(
    fake: VastFake, executor: BlockingExecutor
) -> None:
    fake.offers = []

    async def go() -> Any:
        return await run_check(ADAPTER, context(fake, executor), "validate")

    result = arun(go())
    assert result.status == "valid", result.message
    assert "warning: no offer with 16 GB VRAM today" in result.message
    assert result.detail["offers"] == 0 and "no offer" in result.detail["warning"]


def test_validate_with_a_key_that_cannot_search_is_permission_denied(
    fake: VastFake, executor: BlockingExecutor
) -> None:
    fake.key_permissions = ["user_read", "instance_read", "instance_write"]  # no "misc"

    async def go() -> Any:
        return await run_check(ADAPTER, context(fake, executor), "validate")

    result = arun(go())
    assert (result.status, result.fields) == ("permission_denied", ["api_key"])
    assert "misc" in result.message


# -- the dead-man switch ---------------------------------------------------------------------


STUB = """#!/bin/sh
out="$COMFYVN_RECORD/$(basename "$0")"
{ date +%s; for a in "$@"; do printf '%s\\n' "$a"; done; } > "$out.tmp" && mv "$out.tmp" "$out"
"""


def test_deadman_destroys_the_instance_with_its_own_key_at_the_deadline(
    fake: VastFake, hosts: MachineHosts, executor: BlockingExecutor, tmp_path: Path
) -> None:
    keys = generate_keys(resource_name(HOME, 12))
    deadline = datetime.now(UTC) + timedelta(seconds=2)
    spec = spec_for(fake, keys, job_id=12, deadline=deadline)

    async def go() -> Machine:
        return await ADAPTER.launch(context(fake, executor), spec)

    machine = arun(go())
    onstart = sent(fake, "PUT", "/api/v0/asks/")[0].json()["onstart"]
    (tmp_path / "bin").mkdir()
    for stub in ("curl", "shutdown"):
        (tmp_path / "bin" / stub).write_text(STUB)
        (tmp_path / "bin" / stub).chmod(0o755)
    (tmp_path / "record").mkdir()
    (tmp_path / "deadman.sh").write_text(script_part(onstart, "deadman"))
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "COMFYVN_RECORD": str(tmp_path / "record"),
        "CONTAINER_API_KEY": fake.instance_keys[int(machine.id)],
        "CONTAINER_ID": machine.id,
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(
        ["sh", str(tmp_path / "deadman.sh")],
        env=env,
        timeout=5,
        start_new_session=True,
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr  # the switch runs in the background
    curl = tmp_path / "record" / "curl"
    epoch = int(deadline.timestamp())
    while time.time() < epoch - 0.3:
        assert not curl.exists(), "the dead-man switch fired before the deadline"
        time.sleep(0.1)
    for _ in range(60):
        if curl.exists():
            break
        time.sleep(0.05)
    called, *argv = curl.read_text().splitlines()
    assert int(called) >= epoch
    assert argv[argv.index("-X") + 1] == "DELETE"
    url = argv[-1]
    assert url == f"{fake.api_base}/instances/{machine.id}/"
    auth = argv[argv.index("-H") + 1]
    assert auth == "Authorization: Bearer " + env["CONTAINER_API_KEY"]
    assert not (tmp_path / "record" / "shutdown").exists()  # curl succeeded: no fallback
    assert fake.key not in curl.read_text()

    # What the stub recorded, sent for real: the instance's own key destroys it.
    resp = httpx.request("DELETE", url, headers={"Authorization": auth.split(": ", 1)[1]})
    assert resp.status_code == 200 and resp.json()["success"] is True
    assert_released(fake, hosts, machine)


# -- the protocol and the fake ---------------------------------------------------------------


def test_vast_is_a_machine_adapter() -> None:
    assert is_machine_adapter(ADAPTER)
    assert (ADAPTER.deadman, ADAPTER.mode, ADAPTER.default_ssh_user) == (
        "vast",
        "container",
        "root",
    )
    assert "CONTAINER_API_KEY" in ADAPTER.deadman_words and "destroys" in ADAPTER.deadman_words


def test_fake_follows_the_documented_api(fake: VastFake) -> None:
    with httpx.Client() as web:
        fake_answers_as_documented(fake, web)


def fake_answers_as_documented(fake: VastFake, web: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {fake.key}"}
    api = fake.api_base
    bad_op = web.post(f"{api}/bundles/", headers=auth, json={"gpu_ram": {"ge": 1}})
    assert bad_op.status_code == 400 and "operator" in bad_op.json()["msg"]
    bad_field = web.post(f"{api}/bundles/", headers=auth, json={"colour": {"eq": 1}})
    assert bad_field.status_code == 400
    ask = {"client_id": "me", "image": "x", "label": "l", "onstart": "true", "disk": 10}
    assert web.put(f"{api}/asks/5001/", json=ask).status_code == 401
    no_client = web.put(f"{api}/asks/5001/", headers=auth, json={**ask, "client_id": "you"})
    assert no_client.status_code == 400 and no_client.json()["error"] == "invalid_args"
    unknown = web.put(f"{api}/asks/4242/", headers=auth, json=ask)
    assert unknown.status_code == 404 and unknown.json()["error"] == "no_such_ask"
    assert web.get(f"{api}/instances/4242/", headers=auth).status_code == 404
    assert web.delete(f"{api}/instances/4242/", headers=auth).json()["error"] == "not_found"
    assert web.post(f"{api}/instances/", headers=auth).status_code == 405
    # An instance's own key works for that instance only, and not for the account.
    fake.hosts = None  # (no machine behind this one: its onstart installs no keys)
    made = web.put(f"{api}/asks/5001/", headers=auth, json=ask)
    assert made.status_code == 200
    own = {"Authorization": f"Bearer {made.json()['instance_api_key']}"}
    contract = made.json()["new_contract"]
    assert web.get(f"{api}/users/current", headers=own).status_code == 401
    assert web.delete(f"{api}/instances/901/", headers=own).status_code == 401
    assert web.delete(f"{api}/instances/{contract}/", headers=own).status_code == 200
    assert os.environ.get("CONTAINER_API_KEY") is None  # (nothing leaked into this process)
