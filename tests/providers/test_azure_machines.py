"""Azure dispatch: one VM per job against the ARM fake (tests/fakes/azure.py) over HTTPS, with
azure-identity's real credential for the token, and machines that are real sshd's started from
the start-up script the adapter sent as customData (tests/fakes/machine_host.py).

Every test that creates a resource proves it was released: the fake holds nothing
(``az.held() == []``) and no sshd runs (``hosts.alive == []``).
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import io
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import paramiko
import pytest

from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.core.machines import StartupPlan, resource_name, resource_tags, startup_script
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.providers.azure import machines as azure_machines
from comfyvn_gui.providers.azure.machines import AzureMachines, schedule_time
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext, CheckFailure, NetworkOptions
from comfyvn_gui.providers.machine import (
    LaunchSpec,
    Machine,
    MachineKeys,
    generate_keys,
    is_machine_adapter,
)
from tests.fakes.azure import RESOURCE_GROUP, AzureFake
from tests.fakes.http import arun
from tests.fakes.machine_host import MachineHosts

CATALOG = load_catalog()
HOME = "0123456789abcdef"
OTHER_HOME = "fedcba9876543210"
IMAGE = "yanwk/comfyui-boot:cu128-slim"
ADAPTER = AzureMachines()
T = TypeVar("T")


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureFake]:
    with AzureFake(tmp_path_factory.mktemp("azure-pki")) as az:
        yield az


@pytest.fixture
def hosts() -> Iterator[MachineHosts]:
    with MachineHosts() as h:
        yield h


@pytest.fixture
def az(fake: AzureFake, hosts: MachineHosts) -> AzureFake:
    fake.reset()
    fake.hosts = hosts
    return fake


@pytest.fixture
def executor() -> Iterator[BlockingExecutor]:
    pool = BlockingExecutor(max_workers=2)
    yield pool
    pool.shutdown()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The adapter's waits between polls, recorded (a yield to the loop instead of a sleep)."""
    seen: list[float] = []
    real = asyncio.sleep

    async def record(seconds: float) -> None:
        seen.append(seconds)
        await real(0)

    monkeypatch.setattr(azure_machines, "_sleep", record)
    return seen


def run(
    az: AzureFake,
    executor: BlockingExecutor,
    fn: Callable[[CheckContext], Awaitable[T]],
    **config: Any,
) -> T:
    """``fn(ctx)`` for an Azure provider pointed at the fake (resource group comfyvn-gpu)."""

    async def main() -> T:
        cfg: dict[str, Any] = {
            "tenant_id": az.tenant_id,
            "client_id": az.client_id,
            "subscription_id": az.subscription_id,
            "resource_group": RESOURCE_GROUP,
            "endpoints": {"management": az.management},
        }
        cfg.update(config)
        entry = ProviderEntry(
            id="az",
            template_id="azure",
            name="Azure",
            active=True,
            base_url=az.authority,
            config={k: v for k, v in cfg.items() if v is not None},
        )
        ctx = CheckContext(
            provider=entry,
            profile=CATALOG.profile("azure"),
            secrets={"client_secret": az.secret},
            deadline=asyncio.get_running_loop().time() + 30,
            executor=executor,
            network=NetworkOptions(ca_bundle=str(az.ca_file)),
        )
        return await fn(ctx)

    result: T = arun(main())
    return result


def job_spec(job: int = 7, *, deadline: datetime | None = None) -> tuple[LaunchSpec, MachineKeys]:
    name = resource_name(HOME, job)
    keys = generate_keys(name)
    deadline = deadline or datetime.now(UTC) + timedelta(hours=2)
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
        vram_mb=16_000,
        max_hourly_usd=None,
        zones=None,
        deadline=deadline,
    )
    return spec, keys


def writes(az: AzureFake) -> list[tuple[str, str]]:
    """(method, "<type>/<name>") of every PUT and DELETE, in order."""
    return [
        (r.method, r.path.split("/providers/", 1)[1])
        for r in az.arm.requests
        if r.method in ("PUT", "DELETE")
    ]


def put_body(az: AzureFake, kind: str) -> Any:
    (req,) = [r for r in az.arm.requests if r.method == "PUT" and f"/{kind}/" in r.path]
    return req.json()


def assert_all_gone(az: AzureFake, hosts: MachineHosts) -> None:
    assert az.held() == []
    assert hosts.alive == []


def ssh_login(port: int, keys: MachineKeys) -> str:
    """Log in to 127.0.0.1:port with the one-time client key; the server's host key."""
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


# -- the adapter ---------------------------------------------------------------------------


def test_the_adapter_is_a_machine_adapter_with_two_guards() -> None:
    assert is_machine_adapter(ADAPTER)
    assert (ADAPTER.deadman, ADAPTER.mode, ADAPTER.default_ssh_user) == (
        "shutdown",
        "vm",
        "azureuser",
    )
    words = ADAPTER.deadman_words
    assert "shuts the OS down" in words and "DEALLOCATES" in words and "24 hours" in words
    options = {f.name: f.default for f in CATALOG.profile("azure").options}
    assert options["image"] == azure_machines.DEFAULT_VM_IMAGE
    assert schedule_time(datetime(2025, 3, 1, 21, 7, 59, tzinfo=UTC)) == "2107"
    cet = datetime(2025, 3, 1, 22, 7, tzinfo=UTC).astimezone()
    assert schedule_time(cet) == "2207"  # (always UTC)


def test_launch_sends_the_documented_bodies_and_release_deletes_everything(
    az: AzureFake, hosts: MachineHosts, executor: BlockingExecutor, waits: list[float]
) -> None:
    az.retry_after = "7"
    spec, keys = job_spec()
    machine = run(az, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    name = spec.name
    assert writes(az) == [
        ("PUT", f"Microsoft.Network/networkSecurityGroups/{name}-nsg"),
        ("PUT", f"Microsoft.Network/virtualNetworks/{name}-vnet"),
        ("PUT", f"Microsoft.Network/publicIPAddresses/{name}-ip"),
        ("PUT", f"Microsoft.Network/networkInterfaces/{name}-nic"),
        ("PUT", f"Microsoft.Compute/virtualMachines/{name}"),
        ("PUT", f"Microsoft.DevTestLab/schedules/shutdown-computevm-{name}"),
    ]
    (token,) = az.tokens
    assert all(r.bearer == token for r in az.arm.requests)
    tags = {"Name": name, "comfyvn-gui-home": HOME, "comfyvn-gui-job": "7"}
    rg = f"/subscriptions/{az.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers"
    bodies = {
        r.path.split("/providers/", 1)[1].split("/")[1]: r.json()
        for r in az.arm.requests
        if r.method == "PUT"
    }
    for body in bodies.values():
        assert body["tags"] == tags and body["location"] == "westeurope"
    # The security group lets in SSH (22/tcp) and nothing else.
    (rule,) = bodies["networkSecurityGroups"]["properties"]["securityRules"]
    assert rule["properties"] == {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": "Inbound",
        "priority": 1000,
        "sourceAddressPrefix": "*",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "destinationPortRange": "22",
    }
    ip = bodies["publicIPAddresses"]
    assert ip["sku"] == {"name": "Standard", "tier": "Regional"}
    assert ip["properties"]["publicIPAllocationMethod"] == "Static"
    assert ip["properties"]["deleteOption"] == "Delete"
    nic = bodies["networkInterfaces"]["properties"]
    assert (
        nic["networkSecurityGroup"]["id"]
        == f"{rg}/Microsoft.Network/networkSecurityGroups/{name}-nsg"
    )
    vm = bodies["virtualMachines"]["properties"]
    assert vm["hardwareProfile"] == {"vmSize": "Standard_NC4as_T4_v3"}
    assert vm["storageProfile"]["imageReference"] == {
        "publisher": "microsoft-dsvm",
        "offer": "ubuntu-2204",
        "sku": "2204-gen2",
        "version": "latest",
    }
    assert vm["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
    assert vm["networkProfile"]["networkInterfaces"] == [
        {
            "id": f"{rg}/Microsoft.Network/networkInterfaces/{name}-nic",
            "properties": {"primary": True, "deleteOption": "Delete"},
        }
    ]
    os_profile = vm["osProfile"]
    assert base64.b64decode(os_profile["customData"]).decode() == spec.startup_script
    assert keys.host_public in spec.startup_script
    assert os_profile["adminUsername"] == "azureuser"
    assert os_profile["linuxConfiguration"] == {
        "disablePasswordAuthentication": True,
        "ssh": {
            "publicKeys": [
                {"path": "/home/azureuser/.ssh/authorized_keys", "keyData": keys.client_public}
            ]
        },
    }
    schedule = bodies["schedules"]["properties"]
    assert schedule == {
        "status": "Enabled",
        "taskType": "ComputeVmShutdownTask",
        "dailyRecurrence": {"time": spec.deadline.astimezone(UTC).strftime("%H%M")},
        "timeZoneId": "UTC",
        "notificationSettings": {"status": "Disabled"},
        "targetResourceId": f"{rg}/Microsoft.Compute/virtualMachines/{name}",
    }
    # The VM's creation was followed through its Azure-AsyncOperation (InProgress, then
    # Succeeded), waiting the Retry-After Azure sent.
    polls = [r for r in az.arm.requests if "/operations/" in r.path]
    assert len(polls) == 2 and waits[:2] == [7.0, 7.0]
    assert (machine.id, machine.name, machine.status) == (name, name, "running")
    assert machine.hourly_usd == CATALOG.profile("azure").pricing.hourly_usd
    assert machine.refs == {
        "vm": name,
        "nsg": f"{name}-nsg",
        "vnet": f"{name}-vnet",
        "ip": f"{name}-ip",
        "nic": f"{name}-nic",
        "os_disk": f"{name}-osdisk",
        "schedule": f"shutdown-computevm-{name}",
        "resource_group": RESOURCE_GROUP,
        "subscription_id": az.subscription_id,
        "region": "westeurope",
        "management": az.management,
    }
    stored = json.dumps(machine.as_json())
    for secret in (az.secret, token, keys.client_private, keys.host_private):
        assert secret not in stored
    assert Machine.from_json(json.loads(stored)) == machine

    az.arm.requests.clear()
    run(az, executor, lambda ctx: ADAPTER.release(ctx, machine))
    deletes = [w for w in writes(az)]
    assert deletes[0] == ("DELETE", f"Microsoft.Compute/virtualMachines/{name}")
    assert [p.rsplit("/", 1)[1] for _, p in deletes] == [
        name,
        f"shutdown-computevm-{name}",
        f"{name}-nic",
        f"{name}-ip",
        f"{name}-nsg",
        f"{name}-vnet",
        f"{name}-osdisk",
    ]
    assert_all_gone(az, hosts)
    # Released again: everything answers "not found", which is released.
    run(az, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_all_gone(az, hosts)


def test_describe_gives_the_public_ip_and_the_ssh_is_the_machine_the_app_made(
    az: AzureFake, hosts: MachineHosts, executor: BlockingExecutor, waits: list[float]
) -> None:
    spec, keys = job_spec()
    machine = run(az, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    try:
        up = run(az, executor, lambda ctx: ADAPTER.describe(ctx, machine))
        assert (up.status, up.raw_status) == ("running", "Succeeded/running")
        ip = az.resources[
            f"/subscriptions/{az.subscription_id}/resourcegroups/{RESOURCE_GROUP}/providers/"
            f"microsoft.network/publicipaddresses/{spec.name}-ip".lower()
        ]["properties"]["ipAddress"]
        assert (up.ssh_host, up.ssh_port) == (ip, 22) and ip.startswith("203.0.113.")
        assert up.refs == machine.refs
        # A real SSH server, booted from the customData: the host key is the one the app
        # generated, and the one-time client key logs in.
        assert hosts.alive == [spec.name]
        assert ssh_login(az.ports[spec.name], keys) == keys.host_public
        az.resources[next(k for k in az.resources if k.endswith(spec.name.lower()))]["power"] = (
            "deallocated"  # (what the schedule does at the deadline)
        )
        stopped = run(az, executor, lambda ctx: ADAPTER.describe(ctx, machine))
        assert (stopped.status, stopped.ssh_host) == ("stopped", None)
    finally:
        run(az, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_all_gone(az, hosts)
    gone = run(az, executor, lambda ctx: ADAPTER.describe(ctx, machine))
    assert (gone.status, gone.ssh_host) == ("released", None)


def test_a_vm_that_cannot_be_allocated_deletes_what_the_launch_made(
    az: AzureFake, hosts: MachineHosts, executor: BlockingExecutor, waits: list[float]
) -> None:
    az.fail_put = {
        "virtualMachines": (
            "AllocationFailed",
            "Allocation failed. We do not have sufficient capacity for the requested VM size "
            "in this region.",
        )
    }
    spec, _ = job_spec()
    with pytest.raises(CheckFailure) as failure:
        run(az, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    assert failure.value.code == "quota_exhausted"
    assert failure.value.fields == ["vm_size", "region"]
    message = failure.value.message
    assert "Standard_NC4as_T4_v3" in message and "westeurope" in message
    assert "AllocationFailed" in message and "no capacity" in message
    name = spec.name
    # The VM (left Failed, as Azure leaves it) and everything made before it, newest first.
    assert [w for w in writes(az) if w[0] == "DELETE"] == [
        ("DELETE", f"Microsoft.Compute/virtualMachines/{name}"),
        ("DELETE", f"Microsoft.Network/networkInterfaces/{name}-nic"),
        ("DELETE", f"Microsoft.Network/publicIPAddresses/{name}-ip"),
        ("DELETE", f"Microsoft.Network/networkSecurityGroups/{name}-nsg"),
        ("DELETE", f"Microsoft.Network/virtualNetworks/{name}-vnet"),
        ("DELETE", f"Microsoft.Compute/disks/{name}-osdisk"),
    ]
    assert not [w for w in writes(az) if "schedules" in w[1]]
    assert_all_gone(az, hosts)


def test_a_network_failure_midway_deletes_what_was_made(
    az: AzureFake, hosts: MachineHosts, executor: BlockingExecutor, waits: list[float]
) -> None:
    az.fail_put = {
        "publicIPAddresses": (
            "PublicIPCountLimitReached",
            "Cannot create more than 10 public IP addresses for this subscription in this region.",
        )
    }
    spec, _ = job_spec()
    with pytest.raises(CheckFailure) as failure:
        run(az, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    assert failure.value.code == "error" and "PublicIPCountLimitReached" in failure.value.message
    assert "\n" not in failure.value.message
    assert [p.rsplit("/", 1)[1] for m, p in writes(az) if m == "DELETE"] == [
        f"{spec.name}-ip",
        f"{spec.name}-nsg",
        f"{spec.name}-vnet",
    ]
    assert_all_gone(az, hosts)


def test_a_role_without_vm_write_is_permission_denied_naming_the_action(
    az: AzureFake, hosts: MachineHosts, executor: BlockingExecutor, waits: list[float]
) -> None:
    az.permissions[0]["notActions"].append("Microsoft.Compute/virtualMachines/write")
    spec, _ = job_spec()
    with pytest.raises(CheckFailure) as failure:
        run(az, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    assert (failure.value.code, failure.value.fields) == ("permission_denied", ["resource_group"])
    assert "Microsoft.Compute/virtualMachines/write" in failure.value.message
    assert RESOURCE_GROUP in failure.value.message
    assert failure.value.detail["action"] == "Microsoft.Compute/virtualMachines/write"
    assert_all_gone(az, hosts)


def test_find_is_idempotent_by_name_and_a_second_launch_creates_nothing(
    az: AzureFake, hosts: MachineHosts, executor: BlockingExecutor, waits: list[float]
) -> None:
    spec, _ = job_spec()
    assert run(az, executor, lambda ctx: ADAPTER.find(ctx, spec.name)) is None
    machine = run(az, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    az.arm.requests.clear()
    found = run(az, executor, lambda ctx: ADAPTER.find(ctx, spec.name))
    again = run(az, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    assert found is not None and found.id == machine.id and found.refs == machine.refs
    assert again.id == machine.id and again.refs == machine.refs
    assert writes(az) == []  # nothing created by the second launch
    assert hosts.alive == [spec.name]
    # A launch that died between the VM and its schedule: the retry adds the schedule only.
    schedule = next(k for k in az.resources if "shutdown-computevm" in k)
    del az.resources[schedule]
    run(az, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    assert writes(az) == [("PUT", f"Microsoft.DevTestLab/schedules/shutdown-computevm-{spec.name}")]
    assert run(az, executor, lambda ctx: ADAPTER.find(ctx, resource_name(HOME, 8))) is None
    run(az, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_all_gone(az, hosts)


def test_resources_lists_an_orphan_by_tag_and_stop_deletes_it(
    az: AzureFake, hosts: MachineHosts, executor: BlockingExecutor, waits: list[float]
) -> None:
    spec, _ = job_spec(9)
    run(az, executor, lambda ctx: ADAPTER.launch(ctx, spec))  # (its job forgot it: an orphan)
    az.arm.requests.clear()
    found = run(az, executor, lambda ctx: ADAPTER.resources(ctx, HOME))
    (listing,) = [r for r in az.arm.requests if r.path.endswith("/resources")]
    assert listing.query == {
        "api-version": ["2021-04-01"],
        "$filter": [f"tagName eq 'comfyvn-gui-home' and tagValue eq '{HOME}'"],
        "$expand": ["createdTime"],
    }
    by_kind = sorted((r.kind, r.id) for r in found)
    name = spec.name
    assert by_kind == [
        ("machine", f"Microsoft.Compute/virtualMachines/{name}"),
        ("network", f"Microsoft.Network/networkInterfaces/{name}-nic"),
        ("network", f"Microsoft.Network/networkSecurityGroups/{name}-nsg"),
        ("network", f"Microsoft.Network/publicIPAddresses/{name}-ip"),
        ("network", f"Microsoft.Network/virtualNetworks/{name}-vnet"),
        ("schedule", f"Microsoft.DevTestLab/schedules/shutdown-computevm-{name}"),
    ]
    assert all(r.job_id == 9 and r.name == name and r.created_at is not None for r in found)
    vm = next(r for r in found if r.kind == "machine")
    assert vm.console_url is not None and vm.console_url.startswith("https://portal.azure.com/#@")
    assert run(az, executor, lambda ctx: ADAPTER.resources(ctx, OTHER_HOME)) == []
    run(az, executor, lambda ctx: ADAPTER.stop(ctx, vm))  # the VM with its dependants
    assert_all_gone(az, hosts)
    assert run(az, executor, lambda ctx: ADAPTER.resources(ctx, HOME)) == []


def test_stop_of_one_resource_that_is_not_a_vm_deletes_it_alone(
    az: AzureFake, hosts: MachineHosts, executor: BlockingExecutor, waits: list[float]
) -> None:
    spec, _ = job_spec()
    machine = run(az, executor, lambda ctx: ADAPTER.launch(ctx, spec))
    found = run(az, executor, lambda ctx: ADAPTER.resources(ctx, HOME))
    schedule = next(r for r in found if r.kind == "schedule")
    az.arm.requests.clear()
    run(az, executor, lambda ctx: ADAPTER.stop(ctx, schedule))
    assert writes(az) == [
        ("DELETE", f"Microsoft.DevTestLab/schedules/shutdown-computevm-{spec.name}")
    ]
    assert hosts.alive == [spec.name]
    nic = next(r for r in found if r.id.endswith("-nic"))
    with pytest.raises(CheckFailure) as in_use:  # (Azure refuses: the VM uses it)
        run(az, executor, lambda ctx: ADAPTER.stop(ctx, nic))
    assert "NicInUse" in in_use.value.message
    run(az, executor, lambda ctx: ADAPTER.release(ctx, machine))
    assert_all_gone(az, hosts)


def test_launch_needs_a_resource_group_and_a_deadline_within_a_day(
    az: AzureFake, executor: BlockingExecutor
) -> None:
    spec, _ = job_spec()
    with pytest.raises(CheckFailure) as unset:
        run(az, executor, lambda ctx: ADAPTER.launch(ctx, spec), resource_group=None)
    assert (unset.value.code, unset.value.fields) == ("misconfigured", ["resource_group"])
    far, _ = job_spec(deadline=datetime.now(UTC) + timedelta(hours=30))
    with pytest.raises(CheckFailure) as too_far:
        run(az, executor, lambda ctx: ADAPTER.launch(ctx, far))
    assert too_far.value.code == "misconfigured" and "24 hours" in too_far.value.message
    bad, _ = job_spec()
    with pytest.raises(CheckFailure) as image:
        run(az, executor, lambda ctx: ADAPTER.launch(ctx, bad), image="ubuntu-latest")
    assert (image.value.code, image.value.fields) == ("misconfigured", ["image"])
    outside = LaunchSpec(**{**spec.__dict__, "zones": ("us",)})
    with pytest.raises(CheckFailure) as zone:
        run(az, executor, lambda ctx: ADAPTER.launch(ctx, outside))
    assert (zone.value.code, zone.value.fields) == ("misconfigured", ["region"])
    assert az.arm.requests == [] and az.entra.requests == []  # refused before anything


def test_a_missing_resource_group_is_misconfigured(
    az: AzureFake, hosts: MachineHosts, executor: BlockingExecutor, waits: list[float]
) -> None:
    spec, _ = job_spec()
    with pytest.raises(CheckFailure) as failure:
        run(az, executor, lambda ctx: ADAPTER.launch(ctx, spec), resource_group="no-such-rg")
    assert (failure.value.code, failure.value.fields) == ("misconfigured", ["resource_group"])
    assert "no-such-rg" in failure.value.message
    assert_all_gone(az, hosts)


def test_importing_the_machines_module_imports_no_azure_package(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, comfyvn_gui.providers.azure.machines; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'msal')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
