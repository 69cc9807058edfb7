"""Dispatch to machines rented for the job, end to end: the provider's contract fake, a real
OpenSSH server booted from the start-up script the app sent (its host key, the one-time client
key: ``tests/fakes/machine_host.py``), the ComfyUI contract fake behind it on loopback, the
real keyring and the detached driver process. Every test proves what the user would: the job's
end, and that nothing is left rented (the fake holds no running resource, no machine's sshd
runs, the one-time keys are gone from the keyring)."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.jobs import Job
from comfyvn_gui.service import Service
from tests.fakes import lambda_cloud, machine_host
from tests.fakes.comfyui import running_comfyui
from tests.fakes.lambda_cloud import LambdaFake
from tests.fakes.machine_host import MachineHosts
from tests.fakes.paperspace import PaperspaceFake
from tests.fakes.runpod_pods import RunPodPodsFake
from tests.fakes.sshd import free_port
from tests.fakes.vast import VastFake
from tests.service.test_dispatch import (
    dispatch,
    driver_pid_of,
    ended,
    posts,
    project,
    stop_driver,
    summary,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("secret_service")


@dataclass
class Kit:
    """One machine provider's fake, how to register it, and what it still holds."""

    template: str
    config: dict[str, Any]
    secrets: dict[str, str]
    held: Callable[[], list[str]]  # the provider-side resources still held
    fake: Any
    set_price: Callable[[float], None] | None = None  # the live price the provider reports
    meta: dict[str, Any] | None = None  # the provider's meta (a marketplace's price ceiling)
    sent_script: Callable[[], str] | None = None  # the start-up script the provider received
    settings: dict[str, Any] | None = None  # app settings the provider needs (a CA bundle)
    base_url: str | None = None  # the provider's base URL (an authority, an API server)
    attach: Callable[[int], None] | None = None  # the ComfyUI fake's port, for a fake to reach


def runpod_pods_kit(hosts: MachineHosts) -> Iterator[Kit]:
    fake = RunPodPodsFake()
    fake.hosts = hosts
    with fake:
        yield Kit(
            template="runpod",
            config={"endpoints": {"graphql": fake.graphql_url}, "ssh_user": getpass.getuser()},
            secrets={"api_key": fake.key},
            held=lambda: sorted(fake.pods),
            fake=fake,
            set_price=lambda usd: setattr(fake, "cost_per_hr", usd),
            sent_script=lambda: pod_script(fake),
        )


def vast_kit(hosts: MachineHosts) -> Iterator[Kit]:
    with VastFake() as server:
        fake = server.reset(hosts=hosts)
        yield Kit(
            template="vast",
            meta={"price_ceiling_usd": 0.45},
            config={"endpoints": {"api": fake.api_base}, "ssh_user": getpass.getuser()},
            secrets={"api_key": fake.key},
            held=lambda: sorted(str(i["id"]) for i in fake.created),
            fake=fake,
            set_price=lambda usd: [o.update(dph_total=usd) for o in fake.offers] and None,
        )


def lambda_kit(hosts: MachineHosts) -> Iterator[Kit]:
    def set_price(usd: float) -> None:
        desc, gpu, _cents, gpus, vcpus, mem = lambda_cloud.TYPES["gpu_1x_a100"]
        lambda_cloud.TYPES["gpu_1x_a100"] = (desc, gpu, round(usd * 100), gpus, vcpus, mem)

    saved = dict(lambda_cloud.TYPES)
    with LambdaFake() as server:
        fake = server.reset(hosts=hosts)
        yield Kit(
            template="lambda",
            config={
                "endpoints": {"api": fake.api_base},
                "ssh_user": getpass.getuser(),
                "ssh_port": str(fake.ssh_port),
            },
            secrets={"api_key": fake.key},
            held=lambda: sorted(
                [str(i["id"]) for i in fake.live_instances()] + list(fake.ssh_keys)
            ),
            fake=fake,
            set_price=set_price,
            sent_script=lambda: next(
                r.json()["user_data"]
                for r in fake.requests
                if r.path.endswith("/instance-operations/launch")
            ),
        )
    lambda_cloud.TYPES.clear()
    lambda_cloud.TYPES.update(saved)


def paperspace_kit(hosts: MachineHosts) -> Iterator[Kit]:
    port = free_port()  # (the fake's machines' sshd listen on the provider's ssh_port)
    real_free_port = machine_host.free_port
    machine_host.free_port = lambda: port
    try:
        with PaperspaceFake() as server:
            fake = server.reset(hosts=hosts, machines=[])
            yield Kit(
                template="paperspace",
                config={
                    "endpoints": {"api": fake.api_base},
                    "ssh_user": getpass.getuser(),
                    "ssh_port": str(port),
                },
                secrets={"api_key": fake.key},
                held=lambda: sorted(
                    [str(m["id"]) for m in fake.machines]
                    + [str(s["id"]) for s in fake.startup_scripts]
                ),
                fake=fake,
            )
    finally:
        machine_host.free_port = real_free_port


class MotoMachines:
    """moto's EC2 instances booted as real machines: a new instance's user data starts a real
    sshd (tests/fakes/machine_host.py), and its sshd stops when moto terminates it. moto's
    addresses are made up: the lifecycle's test-only address map points every machine at the
    one port these sshd's listen on (one machine at a time)."""

    def __init__(self, account: Any, hosts: MachineHosts) -> None:
        import boto3

        key = account.keys["app"]
        self.ec2 = boto3.client(
            "ec2",
            endpoint_url=account.url,
            region_name="us-east-1",
            aws_access_key_id=key.access_key,
            aws_secret_access_key=key.secret_key,
        )
        self.hosts = hosts
        self.booted: set[str] = set()
        self.scripts: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def instances(self) -> list[dict[str, Any]]:
        reply = self.ec2.describe_instances()
        return [i for r in reply["Reservations"] for i in r["Instances"]]

    def held(self) -> list[str]:
        """The instances moto still runs (their sshd's brought up to date first)."""
        self._step()
        gone = ("shutting-down", "terminated")
        return sorted(i["InstanceId"] for i in self.instances() if i["State"]["Name"] not in gone)

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            self._step()

    def _step(self) -> None:
        import base64

        with self._lock:
            for i in self.instances():
                iid, state = i["InstanceId"], i["State"]["Name"]
                if state in ("pending", "running") and iid not in self.booted:
                    attr = self.ec2.describe_instance_attribute(
                        InstanceId=iid, Attribute="userData"
                    )
                    script = base64.b64decode(attr["UserData"]["Value"]).decode()
                    self.booted.add(iid)
                    self.scripts.append(script)
                    self.hosts.boot(iid, script)
                elif state in ("shutting-down", "terminated") and iid in self.hosts.alive:
                    self.hosts.stop(iid)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def aws_kit(hosts: MachineHosts) -> Iterator[Kit]:
    from tests.fakes.aws import auth_off, moto_server, setup_account

    with one_sshd_port():
        servers = moto_server()
        url = next(servers)
        account = setup_account(url)
        watcher = MotoMachines(account, hosts)
        try:
            yield Kit(
                template="aws",
                config={"endpoints": {"aws": url}, "ssh_user": getpass.getuser()},
                secrets=account.keys["app"].secrets,
                held=watcher.held,
                fake=account,
                sent_script=lambda: watcher.scripts[0],
            )
        finally:
            watcher.close()
            auth_off(url)
            servers.close()


@contextlib.contextmanager
def one_sshd_port() -> Iterator[None]:
    """Every machine's sshd on one port, and the lifecycle's test-only address map pointing
    every machine there (the fakes report made-up addresses on port 22)."""
    from comfyvn_gui.providers.machine_lifecycle import ADDRESS_MAP_ENV

    port = free_port()
    real_free_port = machine_host.free_port
    machine_host.free_port = lambda: port
    saved = os.environ.get(ADDRESS_MAP_ENV)
    os.environ[ADDRESS_MAP_ENV] = json.dumps({"*": f"127.0.0.1:{port}"})
    try:
        yield
    finally:
        machine_host.free_port = real_free_port
        if saved is None:
            os.environ.pop(ADDRESS_MAP_ENV, None)
        else:
            os.environ[ADDRESS_MAP_ENV] = saved


def gcp_kit(hosts: MachineHosts) -> Iterator[Kit]:
    from tests.fakes.gcp import PROJECT, GcpFake, make_key

    key = make_key(f"comfyvn-render@{PROJECT}.iam.gserviceaccount.com")
    with one_sshd_port(), GcpFake() as server:
        fake = server.reset(hosts=hosts)
        fake.register(key)
        yield Kit(
            template="gcp",
            config={
                "project_id": PROJECT,
                "region": "us-central1",
                "zone": "us-central1-a",
                "endpoints": fake.endpoints(),
                "ssh_user": getpass.getuser(),
            },
            secrets={"service_account_json": key.json()},
            held=lambda: sorted(name for _zone, name in fake.instances),
            fake=fake,
        )
        fake.reset()  # (timers of what a failing test left)


def azure_kit(hosts: MachineHosts) -> Iterator[Kit]:
    import tempfile

    from tests.fakes.azure import RESOURCE_GROUP, AzureFake

    with one_sshd_port(), AzureFake(Path(tempfile.mkdtemp(prefix="azure-pki-"))) as server:
        fake = server.reset()
        fake.hosts = hosts
        yield Kit(
            template="azure",
            config={
                "tenant_id": fake.tenant_id,
                "client_id": fake.client_id,
                "subscription_id": fake.subscription_id,
                "resource_group": RESOURCE_GROUP,
                "endpoints": {"management": fake.management},
                "ssh_user": getpass.getuser(),
            },
            secrets={"client_secret": fake.secret},
            held=lambda: [f"{kind} {name}" for kind, name in fake.held()],
            fake=fake,
            settings={"network.ca_bundle": str(fake.ca_file)},
            base_url=fake.authority,
        )


def coreweave_kit(hosts: MachineHosts) -> Iterator[Kit]:
    from tests.fakes.kubernetes import KubernetesFake

    with KubernetesFake() as server:
        fake = server.reset()
        yield Kit(
            template="coreweave",
            config={"organization_id": "cw1a2b"},
            secrets={"api_key": fake.token},
            held=fake.held,
            fake=fake,
            base_url=fake.base,
            attach=lambda port: setattr(fake, "backend", port),
        )
        server.reset()


def pod_script(fake: RunPodPodsFake) -> str:
    import base64

    for req in fake.requests:
        body = req.json() or {}
        if "podFindAndDeployOnDemand" in str(body.get("query")):
            env = body["variables"]["input"]["env"]
            [value] = [e["value"] for e in env if e["key"] == "COMFYVN_STARTUP"]
            return base64.b64decode(value).decode()
    raise AssertionError("no pod was deployed")


KITS = {
    "aws": aws_kit,
    "lambda": lambda_kit,
    "paperspace": paperspace_kit,
    "runpod_pods": runpod_pods_kit,
    "vast": vast_kit,
}
#: Providers run through the end-to-end paths that matter most to a user (a job's run and
#: release, an orphan found and stopped, a cancel), not the whole matrix: their failure paths
#: are each adapter's own tests (CI time).
CLOUD_KITS = {"azure": azure_kit, "coreweave": coreweave_kit, "gcp": gcp_kit}
EVERY_KIT = sorted({**KITS, **CLOUD_KITS})


@pytest.fixture
def hosts() -> Iterator[MachineHosts]:
    with MachineHosts() as h:
        yield h


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest, hosts: MachineHosts) -> Iterator[Kit]:
    yield from {**KITS, **CLOUD_KITS}[request.param](hosts)


@pytest.fixture
def pods_kit(hosts: MachineHosts) -> Iterator[Kit]:
    """One provider for the driver's own paths (the release is each adapter's)."""
    yield from runpod_pods_kit(hosts)


@pytest.fixture(params=["lambda", "runpod_pods", "vast"])
def price_kit(request: pytest.FixtureRequest, hosts: MachineHosts) -> Iterator[Kit]:
    """Providers that report a live price (Paperspace's API gives none)."""
    yield from KITS[request.param](hosts)


@pytest.fixture(params=["lambda", "runpod_pods"])
def cost_kit(request: pytest.FixtureRequest, hosts: MachineHosts) -> Iterator[Kit]:
    """Providers whose cost ceiling at a live price comes within seconds (a short estimate at
    the catalog's price, a live price 100x it)."""
    yield from KITS[request.param](hosts)


def machine_service(
    kit: Kit, comfyui_port: int, meta: dict[str, Any] | None = None, **settings: Any
) -> Service:
    svc = Service()
    for key, value in (kit.settings or {}).items():
        svc.set_setting(key, value)
    payload: dict[str, Any] = {
        "id": "rented",
        "config": {**kit.config, "comfyui_port": str(comfyui_port)},
        "secrets": kit.secrets,
        "meta": {**(kit.meta or {}), **(meta or {})},
    }
    if kit.base_url:
        payload["base_url"] = kit.base_url
    svc.create_provider(kit.template, payload)
    if kit.attach is not None:
        kit.attach(comfyui_port)
    [valid] = svc.run_checks("validate", ["rented"], timeout_s=30)
    assert valid.status == "valid", valid
    for key, value in settings.items():
        svc.set_setting(key, value)
    return svc


def queued(svc: Service, tmp_path: Path, **task: Any) -> Job:
    [job] = svc.import_summary(summary(**task), str(project(tmp_path / "project")))
    assert job.compute is not None and job.compute.provider == "rented", job.compute
    return job


def keys_left(svc: Service, job_id: int) -> list[str]:
    owner = f"rented/@job{job_id}"
    return [f for f in ("host_key", "client_key") if svc.registry.secrets.get(owner, f)]


def assert_released(svc: Service, kit: Kit, hosts: MachineHosts, job: Job) -> None:
    assert kit.held() == [], "the provider still holds the job's machine"
    assert hosts.alive == [], "a machine's sshd still runs"
    assert keys_left(svc, job.id) == [], "the one-time keys are still in the keyring"
    machine = job.meta["dispatch"]["machine"]
    assert machine["released_at"] and "release_error" not in machine


@pytest.mark.parametrize("kit", EVERY_KIT, indirect=True)
def test_a_job_runs_on_a_rented_machine_and_the_machine_is_released(
    kit: Kit, hosts: MachineHosts, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_comfyui() as comfyui:
        svc = machine_service(kit, comfyui.port)
        job = queued(svc, tmp_path)
        started = dispatch(svc, job)
        assert started.meta["dispatch"]["bill_guard"]  # said before the upload, kept
        done = ended(svc, job.id)
        record = done.meta["dispatch"]
        assert done.status == "completed", record.get("ended_message")
        assert len(record["outputs"]) == 2 and posts(comfyui, "/prompt") == 2
        assert record["machine"]["name"] == f"comfyvn-{svc.home.home_id()}-job{job.id}"
        assert record["actual_cost_usd"] > 0 and record["billed_minutes"] > 0
        assert "was released" in record["ended_message"]
        actions = [e.action for e in svc.job_events(job.id)]
        assert "machine" in actions and "release" in actions
        assert_released(svc, kit, hosts, done)
        stop_driver(svc, wait_idle=True)
    from comfyvn_gui.cli import main

    capsys.readouterr()
    assert main(["jobs", "show", str(job.id)]) == 0
    shown = capsys.readouterr().out
    assert f"machine:   {record['machine']['name']}" in shown and "released" in shown
    assert "spent:" in shown and "(estimated" in shown  # the actual cost next to the estimate


def test_a_machine_that_never_boots_is_released_and_the_job_fails(
    kit: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    hosts.never_boot = True
    with running_comfyui() as comfyui:
        svc = machine_service(kit, comfyui.port, **{"dispatch.boot_timeout_min": 0.1})
        job = queued(svc, tmp_path)
        dispatch(svc, job)
        done = ended(svc, job.id)
        assert done.status == "failed"
        said = done.meta["dispatch"]["ended_message"]
        if kit.template == "aws":  # EC2 says "running" once placed, before the OS is up
            assert "did not become ready in time" in said and "cannot connect" in said, said
        else:
            assert "did not finish booting" in said
        assert comfyui.requests == []
        assert_released(svc, kit, hosts, done)
        stop_driver(svc, wait_idle=True)


def test_comfyui_that_never_answers_releases_the_machine(
    kit: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    with running_comfyui() as comfyui:
        port = comfyui.port
    svc = machine_service(kit, port, **{"dispatch.boot_timeout_min": 0.1})  # (nothing there)
    job = queued(svc, tmp_path)
    dispatch(svc, job)
    done = ended(svc, job.id)
    assert done.status == "failed"
    assert "did not become ready" in done.meta["dispatch"]["ended_message"]
    assert_released(svc, kit, hosts, done)
    stop_driver(svc, wait_idle=True)


def test_a_failed_run_still_releases_the_machine(
    kit: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    with running_comfyui() as comfyui:
        svc = machine_service(kit, comfyui.port)
        job = queued(svc, tmp_path)
        (tmp_path / "project" / "cg" / "b.png").write_bytes(b"not a png at all")
        dispatch(svc, job)
        done = ended(svc, job.id)
        assert done.status == "failed", done.meta["dispatch"]
        assert [r["status"] for r in done.meta["dispatch"]["runs"]] == ["succeeded", "failed"]
        assert_released(svc, kit, hosts, done)
        stop_driver(svc, wait_idle=True)


@pytest.mark.parametrize("kit", EVERY_KIT, indirect=True)
@pytest.mark.parametrize("when", ["booting", "running"])
def test_cancel_releases_the_machine(
    kit: Kit, hosts: MachineHosts, tmp_path: Path, when: str
) -> None:
    if when == "booting":
        # (the machine's sshd does not come up within the test: an adapter that does more
        # after creating the machine — Azure's auto-shutdown schedule — may record it seconds
        # after it was created, and a short boot could be over by the time the cancel comes)
        hosts.boot_delay_s = 60.0
    with running_comfyui(node_delay_s=0.5) as comfyui:
        svc = machine_service(kit, comfyui.port)
        job = queued(svc, tmp_path)
        dispatch(svc, job)
        if when == "booting":
            wait_for(svc, job.id, lambda j: (j.meta["dispatch"].get("machine") or {}).get("id"))
        else:
            wait_for(svc, job.id, lambda j: j.status == "running")
        svc.cancel_job(job.id, interface="test")
        done = ended(svc, job.id)
        assert done.status == "cancelled", done.meta["dispatch"]
        assert_released(svc, kit, hosts, done)
        stop_driver(svc, wait_idle=True)


def test_a_live_price_over_the_ceiling_rents_nothing(
    price_kit: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    kit = price_kit
    assert kit.set_price is not None
    kit.set_price(50.0)  # far above the catalog's price the job was advised on
    with running_comfyui() as comfyui:
        svc = machine_service(kit, comfyui.port)
        job = queued(svc, tmp_path)
        dispatch(svc, job)
        done = ended(svc, job.id)
        assert done.status == "failed"
        message = done.meta["dispatch"]["ended_message"]
        assert "no machine was rented" in message and "nothing was billed" in message
        assert kit.held() == [] and hosts.alive == [] and comfyui.requests == []
        assert keys_left(svc, job.id) == []
        stop_driver(svc, wait_idle=True)


def test_the_cost_ceiling_at_the_live_price_stops_the_job_and_releases_the_machine(
    cost_kit: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    kit = cost_kit
    assert kit.set_price is not None
    kit.set_price(100.0)  # the user allows up to $500/h, but the job's cost ceiling holds
    with running_comfyui(node_delay_s=3.0) as comfyui:
        svc = machine_service(kit, comfyui.port, meta={"price_ceiling_usd": 500})
        job = queued(svc, tmp_path)
        started = dispatch(svc, job)
        cost_ceiling = started.meta["dispatch"]["ceilings"]["cost_usd"]
        done = ended(svc, job.id)
        record = done.meta["dispatch"]
        assert done.status == "failed"
        assert "stopped at its deadline" in record["ended_message"]
        assert record["ceilings"]["deadline_source"] == "the cost ceiling at the live price"
        assert record["price"]["hourly_usd"] == 100.0
        # the machine's own switch holds the bill too: the cost ceiling at the price taken
        assert kit.sent_script is not None
        [epoch] = re.findall(r"^comfyvn_deadline=(\d+)", kit.sent_script(), re.M)
        dispatched = datetime.fromisoformat(record["dispatched_at"]).timestamp()
        assert int(epoch) <= dispatched + cost_ceiling / 100.0 * 3600 + 300 + 1
        # what the machine billed stays near the ceiling the user saw (a billing step over)
        assert record["actual_cost_usd"] <= cost_ceiling + 100.0 / 60, record
        assert_released(svc, kit, hosts, done)
        stop_driver(svc, wait_idle=True)


def test_a_killed_driver_is_resumed_and_the_machine_still_released(
    kit: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    with running_comfyui(node_delay_s=0.4) as comfyui:
        svc = machine_service(kit, comfyui.port)
        job = queued(svc, tmp_path)
        dispatch(svc, job)
        running = wait_for(svc, job.id, lambda j: j.status == "running")
        os.kill(driver_pid_of(svc, running.id), signal.SIGKILL)  # the app dies mid-run
        time.sleep(0.3)
        assert kit.held() != []  # (the machine outlives the driver: the next one needs it)
        assert svc.resume_dispatch()
        done = ended(svc, job.id)
        assert done.status == "completed", done.meta["dispatch"]
        assert "resumed" in [e.action for e in svc.job_events(job.id)]
        assert len([r for r in kit.held()]) == 0
        assert_released(svc, kit, hosts, done)
        stop_driver(svc, wait_idle=True)


@pytest.mark.parametrize("kit", EVERY_KIT, indirect=True)
def test_running_finds_an_orphan_and_stops_it(
    kit: Kit, hosts: MachineHosts, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    with running_comfyui() as comfyui:
        svc = machine_service(kit, comfyui.port)
        job = queued(svc, tmp_path)
        dispatch(svc, job)
        wait_for(svc, job.id, lambda j: j.status == "running")
        svc.cancel_job(job.id, interface="test")
        done = ended(svc, job.id)
        assert done.status in ("cancelled", "completed"), done.meta["dispatch"]
        assert_released(svc, kit, hosts, done)
        stop_driver(svc, wait_idle=True)
    orphan_name = f"comfyvn-{svc.home.home_id()}-job999"
    asyncio.run(launch_orphan(svc, 999))  # (rented by an app that died before recording it)
    report = asyncio.run(svc.running())
    assert report.errors == {}
    orphans = report.orphans
    assert orphans and {r.job_id for r in orphans} == {999}, report.rows
    assert all(r.state == "orphan" for r in orphans)
    assert orphan_name in {r.name for r in orphans}
    assert "no job owns" in (svc.orphan_warning() or "")
    stopped = asyncio.run(svc.stop_running(orphans=True))
    # (a machine's own start-up script or key may go with it: stopped once, not twice)
    assert {r.kind for r in stopped} & {"machine", "pod"}
    assert {r.ref for r in stopped} <= {r.ref for r in orphans}
    assert kit.held() == [] and hosts.alive == []
    assert asyncio.run(svc.running()).rows == []


async def launch_orphan(svc: Service, job_id: int) -> Any:
    """A machine of this home that no job owns, rented straight through the adapter."""
    import asyncio

    from comfyvn_gui.core import machines
    from comfyvn_gui.providers.dispatch_targets import machine_adapter
    from comfyvn_gui.providers.machine import LaunchSpec, generate_keys

    entry = svc.registry.get("rented")
    secrets = svc.registry.read_secrets(entry)
    ctx = svc._checks.context(entry, secrets, asyncio.get_running_loop().time() + 60)
    adapter = machine_adapter(entry.template_id)
    name = machines.resource_name(svc.home.home_id(), job_id)
    keys = generate_keys(name)
    deadline = datetime.now(UTC) + timedelta(hours=1)
    plan = machines.StartupPlan(
        name=name,
        deadline=deadline,
        deadman=adapter.deadman,  # type: ignore[arg-type]
        host_private_key=keys.host_private,
        host_public_key=keys.host_public,
        client_public_key=keys.client_public,
        ssh_user=getpass.getuser(),
        mode=adapter.mode,  # type: ignore[arg-type]
        image="comfy:1",
    )
    spec = LaunchSpec(
        name=name,
        tags=machines.resource_tags(svc.home.home_id(), job_id),
        job_id=job_id,
        image="comfy:1",
        startup_script=machines.startup_script(plan),
        client_public_key=keys.client_public,
        vram_mb=12000,
        max_hourly_usd=5.0,
        zones=None,
        deadline=deadline,
    )
    return await adapter.launch(ctx, spec)


def test_a_cancel_asked_while_no_driver_runs_releases_the_machine(
    pods_kit: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    kit = pods_kit
    with running_comfyui(node_delay_s=2.0) as comfyui:
        svc = machine_service(kit, comfyui.port)
        job = queued(svc, tmp_path)
        dispatch(svc, job)
        running = wait_for(svc, job.id, lambda j: j.status == "running")
        os.kill(driver_pid_of(svc, running.id), signal.SIGKILL)  # the app died
        time.sleep(0.3)
        svc.cancel_job(job.id, interface="test")  # (a new driver sees the request first)
        done = ended(svc, job.id)
        assert done.status == "cancelled", done.meta["dispatch"]
        assert "was released" in done.meta["dispatch"]["ended_message"]
        assert_released(svc, kit, hosts, done)
        stop_driver(svc, wait_idle=True)


@pytest.fixture
def lambda_only(hosts: MachineHosts) -> Iterator[Kit]:
    yield from lambda_kit(hosts)


def test_sigterm_releases_a_machine_only_the_driver_can_stop(
    lambda_only: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    kit = lambda_only
    with running_comfyui(node_delay_s=2.0) as comfyui:
        svc = machine_service(kit, comfyui.port)
        job = queued(svc, tmp_path)
        dispatch(svc, job)
        running = wait_for(svc, job.id, lambda j: j.status == "running")
        os.kill(driver_pid_of(svc, running.id), signal.SIGTERM)  # a logout
        done = ended(svc, job.id)
        assert done.status == "failed"
        assert "driver was stopped" in done.meta["dispatch"]["ended_message"]
        assert_released(svc, kit, hosts, done)
        stop_driver(svc, wait_idle=True)


def test_sigterm_leaves_a_machine_with_its_own_dead_man_switch_to_the_next_driver(
    pods_kit: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    kit = pods_kit
    with running_comfyui(node_delay_s=0.5) as comfyui:
        svc = machine_service(kit, comfyui.port)
        job = queued(svc, tmp_path)
        dispatch(svc, job)
        running = wait_for(svc, job.id, lambda j: j.status == "running")
        stop_driver(svc)  # SIGTERM
        assert svc.get_job(running.id).status == "running" and kit.held() != []
        assert svc.resume_dispatch()  # the next login
        done = ended(svc, job.id)
        assert done.status == "completed", done.meta["dispatch"].get("ended_message")
        assert_released(svc, kit, hosts, done)
        stop_driver(svc, wait_idle=True)


def test_sleep_is_inhibited_while_a_driver_only_machine_runs(
    lambda_only: Kit, hosts: MachineHosts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = lambda_only
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    seen = tmp_path / "inhibit.args"
    stub = bin_dir / "systemd-inhibit"
    stub.write_text(  # (holds on until terminated, as systemd-inhibit does)
        f'#!/bin/sh\nprintf "%s\\n" "$@" > {seen}\nwhile :; do sleep 0.2; done\n'
    )
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")  # (the driver's PATH)
    with running_comfyui(node_delay_s=1.0) as comfyui:
        svc = machine_service(kit, comfyui.port)
        job = queued(svc, tmp_path)
        dispatch(svc, job)
        wait_for(svc, job.id, lambda j: j.status == "running")
        args = seen.read_text().splitlines()
        assert running_commands(str(stub)), "no inhibitor holds while the machine runs"
        assert "--what=sleep:idle" in args and "--mode=block" in args
        assert any(a.startswith("--why=") and f"job {job.id}" in a for a in args)
        done = ended(svc, job.id)
        assert done.status == "completed"
        stop_driver(svc, wait_idle=True)
    assert running_commands(str(stub)) == [], "the sleep inhibitor outlived the job"
    assert_released(svc, kit, hosts, done)


def running_commands(needle: str) -> list[int]:
    """Pids of the processes whose command line holds ``needle`` (read from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in cmdline:
                pids.append(int(entry.name))
    return pids


def test_a_release_that_fails_is_retried_until_the_machine_is_gone(
    pods_kit: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    import asyncio
    import threading

    from comfyvn_gui.core.errors import ConflictError
    from tests.fakes.http import reply_json

    kit = pods_kit
    graphql = kit.fake.server.routes[("POST", "/graphql")]
    refusing = threading.Event()
    refusing.set()

    def flaky(req: Any) -> Any:  # RunPod answers 500 to every terminate for a while
        if refusing.is_set() and b"podTerminate" in req.body:
            return reply_json(500, {"errors": [{"message": "internal error"}]})
        return graphql(req)

    kit.fake.server.routes[("POST", "/graphql")] = flaky
    with running_comfyui() as comfyui:
        svc = machine_service(kit, comfyui.port)
        # this test's own driver (quick retries), holding the home's lock: the one dispatch
        # starts exits at once
        driver = svc.driver(idle_exit_s=60, release_tries=1, release_retry_s=(0.5, 1.0))
        thread = threading.Thread(target=driver.run, daemon=True)
        thread.start()
        try:
            job = queued(svc, tmp_path)
            dispatch(svc, job)
            done = ended(svc, job.id)
            message = done.meta["dispatch"]["ended_message"]
            assert done.status == "completed" and "could NOT be released" in message
            assert kit.held() != []
            leaked = asyncio.run(svc.running())
            assert [r.state for r in leaked.rows] == ["leaked"]
            with pytest.raises(ConflictError, match="work in flight"):
                svc.remove_provider("rented")  # (its release still needs it)
            refusing.clear()  # RunPod answers again
            gone = wait_for(svc, job.id, lambda j: j.meta["dispatch"]["machine"].get("released_at"))
            assert_released(svc, kit, hosts, gone)
            assert "release" in [e.action for e in svc.job_events(job.id)][-1:]
        finally:
            driver.stop()
            thread.join(20)
        assert not thread.is_alive()


def test_another_host_key_at_boot_is_not_trusted_and_the_right_one_is_waited_for(
    pods_kit: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    kit = pods_kit
    hosts.impostor_first_s = 3.0  # the image's own sshd answers first, with its own key
    with running_comfyui() as comfyui:
        svc = machine_service(kit, comfyui.port)
        job = queued(svc, tmp_path)
        dispatch(svc, job)
        done = ended(svc, job.id)
        assert done.status == "completed", done.meta["dispatch"].get("ended_message")
        assert_released(svc, kit, hosts, done)
        stop_driver(svc, wait_idle=True)


def test_a_host_key_that_changes_after_first_contact_stops_the_job(
    pods_kit: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    kit = pods_kit
    with running_comfyui(node_delay_s=1.5) as comfyui:
        svc = machine_service(kit, comfyui.port)
        job = queued(svc, tmp_path)
        dispatch(svc, job)
        wait_for(svc, job.id, lambda j: j.status == "running")
        [machine_id] = hosts.alive
        prompts = posts(comfyui, "/prompt")
        hosts.rekey(machine_id)  # a different machine answers at its address now
        done = ended(svc, job.id)
        record = done.meta["dispatch"]
        assert done.status == "failed", record.get("ended_message")
        # (the tunnel connects again once: to the other key — refused by the machine's key
        # policy, or by the tunnel's own first-contact check, whichever sees it first — or, if
        # that sshd is not up yet, to nothing; either way the job stops and nothing goes to the
        # other machine)
        message = record["ended_message"]
        assert (
            "not the one this app gave it" in message
            or "DIFFERENT host key" in message
            or "could not be made again" in message
        ), message
        assert posts(comfyui, "/prompt") <= prompts + 1  # (nothing sent through the impostor)
        assert_released(svc, kit, hosts, done)
        stop_driver(svc, wait_idle=True)
