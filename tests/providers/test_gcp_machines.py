"""Google Compute Engine VMs for dispatch (providers/gcp/machines.py) against the contract fake
(tests/fakes/gcp.py: a token endpoint that verifies each grant's signature, and Compute
instances and zone operations accepting only their documented shapes and the tokens it
issued), whose VMs are real sshd's started from the start-up script sent
(tests/fakes/machine_host.py).

Every test that creates a VM proves it was released: the fake holds no instance and no sshd
runs (``hosts.alive == []``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import io
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import paramiko
import pytest

from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.core.checks import CheckResult
from comfyvn_gui.core.machines import (
    StartupPlan,
    resource_name,
    resource_tags,
    script_part,
    startup_script,
)
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext, CheckFailure, run_check
from comfyvn_gui.providers.gcp import GcpAdapter
from comfyvn_gui.providers.gcp import machines as gcp_machines
from comfyvn_gui.providers.gcp.machines import (
    DEFAULT_IMAGE,
    GUEST_AGENT_CONFIG,
    GcpMachines,
    request_id,
)
from comfyvn_gui.providers.machine import (
    LaunchSpec,
    Machine,
    MachineKeys,
    generate_keys,
    is_machine_adapter,
)
from tests.fakes.gcp import (
    ALL_PROJECT_PERMISSIONS,
    PROJECT,
    GcpFake,
    ServiceAccountKey,
    make_key,
)
from tests.fakes.http import Request, arun
from tests.fakes.machine_host import MachineHosts

CATALOG = load_catalog()
HOME = "0a1b2c3d4e5f6789"
OTHER_HOME = "9876f5e4d3c2b1a0"
ZONE = "us-central1-a"
MACHINES = GcpMachines()
INSTANCES = f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances"


@pytest.fixture(scope="module")
def key() -> ServiceAccountKey:
    return make_key(f"comfyvn-render@{PROJECT}.iam.gserviceaccount.com")


@pytest.fixture(scope="module")
def server() -> Iterator[GcpFake]:
    with GcpFake() as fake:
        yield fake


@pytest.fixture
def hosts() -> Iterator[MachineHosts]:
    with MachineHosts() as h:
        yield h


@pytest.fixture
def gcp(server: GcpFake, key: ServiceAccountKey, hosts: MachineHosts) -> Iterator[GcpFake]:
    fake: GcpFake = server.reset(hosts=hosts)
    fake.register(key)
    yield fake
    fake.reset()  # (timers of what a failing test left)


@pytest.fixture(autouse=True)
def _no_reused_tokens() -> None:
    """Each test signs in afresh (token reuse is tested on its own)."""
    gcp_machines._TOKENS.clear()


@pytest.fixture
def executor() -> Iterator[BlockingExecutor]:
    pool = BlockingExecutor(max_workers=2)
    yield pool
    pool.shutdown()


def context(
    fake: GcpFake,
    key: ServiceAccountKey,
    executor: BlockingExecutor,
    *,
    meta: dict[str, Any] | None = None,
    gpu: str | None = None,
    **config: Any,
) -> CheckContext:
    settings = {"project_id": PROJECT, "region": "us-central1", "zone": ZONE, **config}
    entry = ProviderEntry(
        id="g1",
        template_id="gcp",
        name="Google Cloud",
        active=True,
        gpu=gpu,
        config={"endpoints": fake.endpoints(), **{k: v for k, v in settings.items() if v}},
        secrets_set=["service_account_json"],
        meta=meta or {},
    )
    return CheckContext(
        provider=entry,
        profile=CATALOG.profile("gcp"),
        secrets={"service_account_json": key.json()},
        deadline=asyncio.get_running_loop().time() + 30,
        executor=executor,
    )


def call(
    fake: GcpFake,
    key: ServiceAccountKey,
    executor: BlockingExecutor,
    method: str,
    *args: Any,
    **kw: Any,
) -> Any:
    async def go() -> Any:
        return await getattr(MACHINES, method)(context(fake, key, executor, **kw), *args)

    return arun(go())


def spec_for(
    job: int = 1, *, deadline: datetime | None = None
) -> tuple[LaunchSpec, MachineKeys, list[float | None]]:
    name = resource_name(HOME, job)
    keys = generate_keys(name)
    deadline = deadline or datetime.now(UTC) + timedelta(hours=1)
    asked: list[float | None] = []

    def plan_script(hourly: float | None) -> str:
        asked.append(hourly)
        return startup_script(
            StartupPlan(
                name=name,
                deadline=deadline,
                deadman="shutdown",
                host_private_key=keys.host_private,
                host_public_key=keys.host_public,
                client_public_key=keys.client_public,
                ssh_user=getpass.getuser(),
                image="comfyui:test",
            )
        )

    spec = LaunchSpec(
        name=name,
        tags=resource_tags(HOME, job),
        job_id=job,
        image="comfyui:test",
        startup_script=plan_script(None),
        client_public_key=keys.client_public,
        vram_mb=20000,
        max_hourly_usd=2.0,
        zones=None,
        deadline=deadline,
        script_for=plan_script,
    )
    asked.clear()
    return spec, keys, asked


def sent(fake: GcpFake, method: str, path: str) -> list[Request]:
    return [r for r in fake.requests if (r.method, r.path) == (method, path)]


def assert_all_gone(fake: GcpFake, hosts: MachineHosts) -> None:
    assert fake.live() == []
    assert hosts.alive == []


def ssh_host_key(port: int, keys: MachineKeys) -> str:
    """Log in with the one-time client key; the server's host key (OpenSSH text)."""
    sock = socket.create_connection(("127.0.0.1", port), 5)
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


# -- the protocol ------------------------------------------------------------------------------


def test_is_a_machine_adapter_whose_vms_google_deletes_at_the_deadline() -> None:
    assert is_machine_adapter(MACHINES)
    assert (MACHINES.deadman, MACHINES.mode, MACHINES.default_ssh_user) == (
        "shutdown",
        "vm",
        "ubuntu",
    )
    words = MACHINES.deadman_words
    assert "maxRunDuration" in words and "DELETE" in words and "hangs" in words
    options = {f.name: f.default for f in CATALOG.profile("gcp").options}
    assert options["image"] == DEFAULT_IMAGE
    assert options["machine_type"] == "g2-standard-4"


# -- launch, describe, SSH, release --------------------------------------------------------------


def test_insert_sends_the_documented_vm_and_its_ssh_is_the_machine_the_app_made(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec, keys, asked = spec_for()
    machine = call(gcp, key, executor, "launch", spec)
    assert asked == [0.85]  # g2-standard-4: the catalog's price, for the dead-man deadline
    assert machine.status == "running" and machine.name == spec.name
    assert machine.refs == {
        "project": PROJECT,
        "zone": ZONE,
        "instance": spec.name,
        "endpoint": gcp.base,
    }

    [insert] = sent(gcp, "POST", INSTANCES)
    assert insert.query["requestId"] == [request_id(spec.name)]
    body = insert.json()
    assert body["name"] == spec.name
    assert body["machineType"] == f"zones/{ZONE}/machineTypes/g2-standard-4"
    assert "guestAccelerators" not in body  # a G2 comes with its L4
    assert body["labels"] == {"comfyvn-gui-home": HOME, "comfyvn-gui-job": "1"}
    [disk] = body["disks"]
    assert disk["boot"] is True and disk["autoDelete"] is True
    assert disk["initializeParams"]["sourceImage"] == DEFAULT_IMAGE
    assert disk["initializeParams"]["labels"] == body["labels"]
    assert body["networkInterfaces"] == [
        {
            "network": "global/networks/default",
            "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT"}],
        }
    ]
    meta = {i["key"]: i["value"] for i in body["metadata"]["items"]}
    assert meta["startup-script"] == spec.script_at(0.85)
    assert "shutdown -h now" in script_part(meta["startup-script"], "deadman")
    assert meta["ssh-keys"] == f"ubuntu:{keys.client_public}"
    assert meta["user-data"] == GUEST_AGENT_CONFIG
    assert "set_host_keys = false" in GUEST_AGENT_CONFIG
    assert (meta["block-project-ssh-keys"], meta["enable-oslogin"]) == ("TRUE", "FALSE")
    scheduling = body["scheduling"]
    assert scheduling["instanceTerminationAction"] == "DELETE"
    # Google deletes the VM two minutes before the script's own shutdown would only stop it
    assert 3590 - 120 <= int(scheduling["maxRunDuration"]["seconds"]) <= 3600 - 120
    assert (scheduling["onHostMaintenance"], scheduling["automaticRestart"]) == (
        "TERMINATE",
        False,
    )
    assert "provisioningModel" not in scheduling and "serviceAccounts" not in body
    issued = set(gcp.tokens)
    assert all(r.bearer in issued for r in gcp.requests if r.path != "/token")

    described = call(gcp, key, executor, "describe", machine)
    assert described.status == "running" and described.raw_status == "RUNNING"
    assert described.ssh_host is not None and described.ssh_host.startswith("203.0.113.")
    assert described.ssh_port == 22
    # The machine behind it: the sshd started from that script, with the app's host key.
    assert ssh_host_key(hosts.machines[spec.name].port, keys) == keys.host_public

    call(gcp, key, executor, "release", machine)
    assert sent(gcp, "DELETE", f"{INSTANCES}/{spec.name}")
    assert_all_gone(gcp, hosts)
    assert call(gcp, key, executor, "describe", machine).status == "released"
    call(gcp, key, executor, "release", machine)  # gone already: released


def test_a_booting_vm_has_no_address_and_the_operation_is_awaited(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    gcp.reset(hosts=hosts, op_delay_s=0.5, boot_s=30.0)
    gcp.register(key)
    spec, _keys, _ = spec_for()
    started = time.monotonic()
    machine = call(gcp, key, executor, "launch", spec)
    assert time.monotonic() - started >= 0.5
    ops = [r for r in gcp.requests if "/operations/" in r.path]
    assert ops and all(r.method == "GET" for r in ops)
    assert (machine.status, machine.raw_status, machine.ssh_host) == (
        "booting",
        "PROVISIONING",
        None,
    )
    call(gcp, key, executor, "release", machine)
    assert_all_gone(gcp, hosts)


def test_an_n1_type_gets_the_gpu_attached_and_spot_only_when_the_advice_chose_spot(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    """The provider's Spot setting alone launches on demand: a Spot VM can be taken back at
    any time, which the user acknowledges only for an advice that chose a Spot offer."""
    spec, _keys, _ = spec_for()
    machine = call(gcp, key, executor, "launch", spec, meta={"spot": True})
    assert "provisioningModel" not in sent(gcp, "POST", INSTANCES)[0].json()["scheduling"]
    call(gcp, key, executor, "release", machine)

    spec, _keys, asked = spec_for(2)
    spec = dataclasses.replace(spec, spot=True)
    machine = call(
        gcp,
        key,
        executor,
        "launch",
        spec,
        machine_type="n1-standard-8",
        gpu="T4",
        meta={"spot": True},
    )
    assert asked == []  # not the catalog's type: its price is not known
    body = sent(gcp, "POST", INSTANCES)[-1].json()
    assert body["guestAccelerators"] == [
        {"acceleratorType": f"zones/{ZONE}/acceleratorTypes/nvidia-tesla-t4", "acceleratorCount": 1}
    ]
    assert body["scheduling"]["provisioningModel"] == "SPOT"
    assert body["scheduling"]["instanceTerminationAction"] == "DELETE"
    call(gcp, key, executor, "release", machine)
    assert_all_gone(gcp, hosts)


def test_without_a_zone_the_first_zone_offering_the_gpu_is_used(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec, _keys, _ = spec_for()
    machine = call(gcp, key, executor, "launch", spec, zone=None)
    assert machine.refs["zone"] == "us-central1-a"  # a and b offer the L4
    assert sent(gcp, "GET", f"/compute/v1/projects/{PROJECT}/aggregated/acceleratorTypes")
    call(gcp, key, executor, "release", machine)
    assert_all_gone(gcp, hosts)


# -- failures ----------------------------------------------------------------------------------


def test_no_capacity_in_the_zone_is_quota_exhausted_and_leaves_nothing(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    gcp.reset(hosts=hosts, fail_insert="ZONE_RESOURCE_POOL_EXHAUSTED")
    gcp.register(key)
    spec, _keys, _ = spec_for()
    with pytest.raises(CheckFailure) as caught:
        call(gcp, key, executor, "launch", spec)
    assert caught.value.code == "quota_exhausted"
    assert "ZONE_RESOURCE_POOL_EXHAUSTED" in caught.value.message and ZONE in caught.value.message
    assert caught.value.fields == ["zone"]
    # What may have been created is deleted (here: nothing was, 404).
    assert sent(gcp, "DELETE", f"{INSTANCES}/{spec.name}")
    assert_all_gone(gcp, hosts)


def test_gpu_quota_is_quota_exhausted(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    gcp.reset(hosts=hosts, fail_insert="QUOTA_EXCEEDED")
    gcp.register(key)
    spec, _keys, _ = spec_for()
    with pytest.raises(CheckFailure) as caught:
        call(gcp, key, executor, "launch", spec)
    assert (caught.value.code, caught.value.fields) == ("quota_exhausted", ["region"])
    assert "quota" in caught.value.message
    assert_all_gone(gcp, hosts)


def test_a_missing_create_permission_is_named(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    gcp.register(key, ALL_PROJECT_PERMISSIONS - {"compute.instances.setLabels"})
    spec, _keys, _ = spec_for()
    with pytest.raises(CheckFailure) as caught:
        call(gcp, key, executor, "launch", spec)
    assert caught.value.code == "permission_denied"
    assert "compute.instances.setLabels" in caught.value.message
    assert caught.value.detail["missing_permissions"] == ["compute.instances.setLabels"]
    assert_all_gone(gcp, hosts)


def test_a_type_that_takes_no_gpu_is_refused_before_anything_is_sent(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec, _keys, _ = spec_for()
    with pytest.raises(CheckFailure) as caught:
        call(gcp, key, executor, "launch", spec, machine_type="e2-standard-4")
    assert (caught.value.code, caught.value.fields) == ("misconfigured", ["machine_type"])
    assert not sent(gcp, "POST", INSTANCES)
    assert_all_gone(gcp, hosts)


def test_a_bucket_outside_the_region_refuses_before_anything_is_created(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    gcp.buckets["comfyvn-assets-eu"] = {"location": "EUROPE-WEST4", "locationType": "region"}
    gcp.buckets["comfyvn-assets-multi"] = {"location": "US", "locationType": "multi-region"}
    spec, _keys, _ = spec_for()
    for bucket in ("comfyvn-assets-eu", "comfyvn-assets-multi"):
        with pytest.raises(CheckFailure) as caught:
            call(gcp, key, executor, "launch", spec, bucket=bucket)
        assert (caught.value.code, caught.value.fields) == ("misconfigured", ["bucket"])
        assert bucket in caught.value.message and "us-central1" in caught.value.message
    assert not sent(gcp, "POST", INSTANCES)
    assert_all_gone(gcp, hosts)
    # The bucket of the region is fine.
    machine = call(gcp, key, executor, "launch", spec, bucket="comfyvn-assets-us")
    call(gcp, key, executor, "release", machine)
    assert_all_gone(gcp, hosts)


# -- idempotence, find ---------------------------------------------------------------------------


def test_a_retried_launch_gets_the_same_vm_and_creates_nothing_more(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec, _keys, _ = spec_for()
    first = call(gcp, key, executor, "launch", spec)
    again = call(gcp, key, executor, "launch", spec)
    inserts = sent(gcp, "POST", INSTANCES)
    assert len(inserts) == 2
    assert {r.query["requestId"][0] for r in inserts} == {request_id(spec.name)}
    assert gcp.live() == [spec.name] and hosts.alive == [spec.name]
    assert (again.id, again.refs) == (first.id, first.refs)
    assert len(gcp.operations) == 1  # the same operation answered both

    found = call(gcp, key, executor, "find", spec.name)
    assert found is not None and (found.id, found.refs) == (first.id, first.refs)
    assert call(gcp, key, executor, "find", resource_name(HOME, 99)) is None
    call(gcp, key, executor, "release", found)
    assert_all_gone(gcp, hosts)


def test_the_token_is_reused_and_a_refused_one_is_replaced(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec, _keys, _ = spec_for()
    machine = call(gcp, key, executor, "launch", spec)
    call(gcp, key, executor, "describe", machine)
    assert len(sent(gcp, "POST", "/token")) == 1  # one sign-in for both calls
    gcp.tokens.clear()  # Google no longer takes it (expired, revoked)
    assert call(gcp, key, executor, "describe", machine).status == "running"
    assert len(sent(gcp, "POST", "/token")) == 2
    call(gcp, key, executor, "release", machine)
    assert_all_gone(gcp, hosts)


# -- running: resources and stop ------------------------------------------------------------------


def test_resources_lists_this_homes_vms_by_label_and_stop_deletes_an_orphan(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    mine, _k1, _ = spec_for(3)
    machine = call(gcp, key, executor, "launch", mine)
    other_name = resource_name(OTHER_HOME, 4)
    other = LaunchSpec(
        **{
            **mine.__dict__,
            "name": other_name,
            "tags": resource_tags(OTHER_HOME, 4),
            "script_for": None,
        }
    )
    call(gcp, key, executor, "launch", other, zone="us-central1-b", gpu="L4")

    listed = call(gcp, key, executor, "resources", HOME)
    assert [(r.kind, r.id, r.name, r.job_id) for r in listed] == [
        ("machine", mine.name, mine.name, 3)
    ]
    assert listed[0].console_url is not None and PROJECT in listed[0].console_url
    [query] = sent(gcp, "GET", f"/compute/v1/projects/{PROJECT}/aggregated/instances")
    assert query.query["filter"] == [f'labels.comfyvn-gui-home = "{HOME}"']

    # The job is gone from the app (an orphan): running stop deletes it, in its zone.
    call(gcp, key, executor, "stop", listed[0])
    assert gcp.live() == [other_name]
    assert call(gcp, key, executor, "resources", HOME) == []
    assert call(gcp, key, executor, "describe", machine).status == "released"
    [left] = call(gcp, key, executor, "resources", OTHER_HOME)
    call(gcp, key, executor, "stop", left)
    assert_all_gone(gcp, hosts)


# -- the dead-man switch -------------------------------------------------------------------------


def test_google_deletes_the_vm_when_its_max_run_duration_runs_out(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    # 30 s (Google's minimum, sent for a deadline 5 s away) run at 1/50 speed: 0.6 s.
    gcp.reset(hosts=hosts, run_duration_scale=0.02)
    gcp.register(key)
    spec, _keys, _ = spec_for(deadline=datetime.now(UTC) + timedelta(seconds=5))
    machine = call(gcp, key, executor, "launch", spec)
    body = sent(gcp, "POST", INSTANCES)[0].json()
    assert body["scheduling"]["maxRunDuration"] == {"seconds": "30"}
    assert hosts.alive == [spec.name]
    for _ in range(50):
        if not gcp.live():
            break
        time.sleep(0.05)
    assert gcp.expired == [spec.name]
    assert_all_gone(gcp, hosts)
    assert call(gcp, key, executor, "describe", machine).status == "released"
    call(gcp, key, executor, "release", machine)  # 404: released


def test_a_machine_from_json_is_described_at_its_launch_time_zone(
    gcp: GcpFake, key: ServiceAccountKey, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec, _keys, _ = spec_for()
    machine = call(gcp, key, executor, "launch", spec)
    stored = Machine.from_json(machine.as_json())
    # The provider's zone changed since: describe and release use the refs.
    described = call(gcp, key, executor, "describe", stored, zone="us-central1-b")
    assert described.status == "running"
    call(gcp, key, executor, "release", stored, zone="us-central1-b")
    assert_all_gone(gcp, hosts)


# -- Validate proves launch permission ------------------------------------------------------------


def test_validate_names_a_missing_instances_create_and_passes_with_it(
    gcp: GcpFake, key: ServiceAccountKey, executor: BlockingExecutor
) -> None:
    async def validate() -> CheckResult:
        return await run_check(GcpAdapter(), context(gcp, key, executor), "validate")

    gcp.register(key, ALL_PROJECT_PERMISSIONS - {"compute.instances.create"})
    result = arun(validate())
    assert result.status == "permission_denied"
    assert result.detail["missing_permissions"] == ["compute.instances.create"]
    assert "compute.instances.create" in result.message
    # What the launch itself would then meet: the same permission named.
    spec, _keys, _ = spec_for()
    with pytest.raises(CheckFailure) as caught:
        call(gcp, key, executor, "launch", spec)
    assert caught.value.detail["missing_permissions"] == ["compute.instances.create"]

    gcp.register(key)
    assert arun(validate()).status == "valid"
