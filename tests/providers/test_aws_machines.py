"""AWS EC2 instances for dispatch (providers/aws/machines.py) against moto's real server with
IAM enforced (tests/fakes/aws.py), and a real sshd booted from the user data sent
(tests/fakes/machine_host.py).

Every test ends with no instance of the test's home left running in moto.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
from comfyvn_gui.providers.aws.machines import AwsMachines
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext, CheckFailure
from comfyvn_gui.providers.machine import (
    LaunchSpec,
    Machine,
    MachineKeys,
    generate_keys,
    is_machine_adapter,
)
from comfyvn_gui.providers.machine_lifecycle import ADDRESS_MAP_ENV, ssh_address
from tests.fakes.aws import NEWEST_DLAMI, Key, MotoAccount, auth_off, moto_server, setup_account
from tests.fakes.http import arun
from tests.fakes.machine_host import MachineHosts

CATALOG = load_catalog()
HOME = "a0b1c2d3"
AMI = "ami-03cf127a"  # one of moto's bundled AMIs
MACHINES = AwsMachines()


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    yield from moto_server()


@pytest.fixture
def moto(moto_url: str) -> Iterator[MotoAccount]:
    account = setup_account(moto_url)
    yield account
    assert live(account) == []  # nothing of the home left running
    auth_off(moto_url)


@pytest.fixture
def executor() -> Iterator[BlockingExecutor]:
    pool = BlockingExecutor(max_workers=2)
    yield pool
    pool.shutdown()


def ec2(moto: MotoAccount, user: str = "app") -> Any:
    import boto3

    key = moto.keys[user]
    return boto3.client(
        "ec2",
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id=key.access_key,
        aws_secret_access_key=key.secret_key,
    )


def live(moto: MotoAccount) -> list[str]:
    reply = ec2(moto).describe_instances(
        Filters=[
            {"Name": "tag:comfyvn-gui-home", "Values": [HOME]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping"]},
        ]
    )
    return [i["InstanceId"] for r in reply["Reservations"] for i in r["Instances"]]


def context(
    moto: MotoAccount,
    executor: BlockingExecutor,
    *,
    user: str = "app",
    meta: dict[str, Any] | None = None,
    **config: Any,
) -> CheckContext:
    key: Key = moto.keys[user]
    entry = ProviderEntry(
        id="aws1",
        template_id="aws",
        name="AWS EC2",
        active=True,
        config={"endpoints": {"aws": moto.url}, "ami_id": AMI, **config},
        secrets_set=["access_key", "secret_key"],
        meta=meta or {},
    )
    return CheckContext(
        provider=entry,
        profile=CATALOG.profile("aws"),
        secrets=key.secrets,
        deadline=asyncio.get_running_loop().time() + 30,
        executor=executor,
    )


def spec_for(
    *, job: int = 1, deadline: datetime | None = None
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


def call(moto: MotoAccount, executor: BlockingExecutor, method: str, *args: Any, **kw: Any) -> Any:
    async def go() -> Any:
        return await getattr(MACHINES, method)(context(moto, executor, **kw), *args)

    return arun(go())


def state(moto: MotoAccount, instance_id: str) -> str:
    reply = ec2(moto).describe_instances(InstanceIds=[instance_id])
    return str(reply["Reservations"][0]["Instances"][0]["State"]["Name"])


# -- the protocol ------------------------------------------------------------------------------


def test_is_a_machine_adapter_whose_instances_terminate_themselves() -> None:
    assert is_machine_adapter(MACHINES)
    assert (MACHINES.deadman, MACHINES.mode, MACHINES.default_ssh_user) == (
        "shutdown",
        "vm",
        "ubuntu",
    )
    assert "InstanceInitiatedShutdownBehavior=terminate" in MACHINES.deadman_words


def test_run_instances_sends_the_script_tags_shutdown_behaviour_and_network(
    moto: MotoAccount, executor: BlockingExecutor
) -> None:
    client = ec2(moto)
    subnet = client.describe_subnets()["Subnets"][0]
    group = client.create_security_group(
        GroupName="comfyvn", Description="ssh", VpcId=subnet["VpcId"]
    )["GroupId"]
    spec, keys, asked = spec_for()
    meta = {"security_group_id": group, "subnet_id": subnet["SubnetId"]}
    machine = call(moto, executor, "launch", spec, meta=meta)
    # g5.xlarge: the catalog's price of that type, for its dead-man deadline
    listed = CATALOG.profile("aws").machine("g5.xlarge")
    assert listed is not None and asked == [listed.price("us-east-1")]
    assert machine.status == "booting" and machine.hourly_usd is None
    assert machine.refs == {
        "instance_id": machine.id,
        "region": "us-east-1",
        "endpoint": moto.url,
    }
    json.dumps(machine.as_json())

    [instance] = client.describe_instances(InstanceIds=[machine.id])["Reservations"][0]["Instances"]
    assert instance["ImageId"] == AMI and instance["InstanceType"] == "g5.xlarge"
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags == {"Name": spec.name, "comfyvn-gui-home": HOME, "comfyvn-gui-job": "1"}
    assert instance["SubnetId"] == subnet["SubnetId"]
    assert group in [g["GroupId"] for g in instance["SecurityGroups"]]
    user_data = client.describe_instance_attribute(InstanceId=machine.id, Attribute="userData")
    script = base64.b64decode(user_data["UserData"]["Value"]).decode()
    assert script == spec.startup_script
    assert keys.host_public in script and "shutdown -h now" in script_part(script, "deadman")
    behaviour = client.describe_instance_attribute(
        InstanceId=machine.id, Attribute="instanceInitiatedShutdownBehavior"
    )
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"

    call(moto, executor, "release", machine)
    assert state(moto, machine.id) == "terminated"


def test_without_ami_id_the_newest_deep_learning_ami_of_the_region_is_launched(
    moto: MotoAccount, executor: BlockingExecutor
) -> None:
    spec, _keys, _ = spec_for()
    machine = call(moto, executor, "launch", spec, ami_id="")
    [instance] = ec2(moto).describe_instances(InstanceIds=[machine.id])["Reservations"][0][
        "Instances"
    ]
    assert instance["ImageId"] == NEWEST_DLAMI  # not the older one, not the ARM64 one
    call(moto, executor, "release", machine)


def test_no_default_ami_in_the_region_refuses_naming_ami_id_and_launches_nothing(
    moto: MotoAccount, executor: BlockingExecutor
) -> None:
    spec, _keys, _ = spec_for()
    with pytest.raises(CheckFailure) as caught:
        call(moto, executor, "launch", spec, ami_id="", region="us-west-2")
    assert (caught.value.code, caught.value.fields) == ("misconfigured", ["ami_id"])
    assert "us-west-2" in caught.value.message
    reply = ec2(moto).describe_instances()
    assert [i for r in reply["Reservations"] for i in r["Instances"]] == []


def test_spot_when_the_advice_chose_the_spot_offer_with_the_ceiling_as_max_price(
    moto: MotoAccount, executor: BlockingExecutor
) -> None:
    """Spot only when the job's advice chose the provider's Spot offer (LaunchSpec.spot);
    ``meta.spot`` alone (Spot allowed) launches on demand."""
    import dataclasses

    spec, _keys, _ = spec_for()
    allowed_only = call(moto, executor, "launch", spec, meta={"spot": True})
    assert "spot" not in allowed_only.refs
    call(moto, executor, "release", allowed_only)
    spot_spec = dataclasses.replace(spec, spot=True, name=spec.name + "-spot")
    machine = call(moto, executor, "launch", spot_spec, meta={"spot": True})
    assert machine.refs["spot"] is True
    [instance] = ec2(moto).describe_instances(InstanceIds=[machine.id])["Reservations"][0][
        "Instances"
    ]
    assert instance.get("InstanceLifecycle") == "spot"
    call(moto, executor, "release", machine)
    assert state(moto, machine.id) == "terminated"


def test_the_spot_request_carries_the_ceiling_and_terminates_on_interruption() -> None:
    from comfyvn_gui.providers.aws.machines import run_request
    from comfyvn_gui.providers.aws.session import _Job

    job = _Job("aws", "k", "s", "us-east-1", "g5.xlarge", None, None, [], None, 0.0)
    request = run_request(
        job,
        "ami-1",
        {"spot": True},
        name="n",
        tags={},
        user_data="x",
        max_hourly_usd=0.8,
        spot=True,
    )
    assert request["InstanceMarketOptions"] == {
        "MarketType": "spot",
        "SpotOptions": {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
            "MaxPrice": "0.8000",
        },
    }
    on_demand = run_request(job, "ami-1", {}, name="n", tags={}, user_data="x")
    assert "InstanceMarketOptions" not in on_demand


def test_an_instance_type_the_catalog_does_not_list_sends_the_script_without_a_price(
    moto: MotoAccount, executor: BlockingExecutor
) -> None:
    spec, _keys, asked = spec_for()
    machine = call(moto, executor, "launch", spec, instance_type="g5.12xlarge")
    assert asked == []  # no known price: the script as the lifecycle built it
    call(moto, executor, "release", machine)
    spec, _keys, asked = spec_for()
    listed = call(moto, executor, "launch", spec, instance_type="g6.xlarge")
    assert asked == [CATALOG.profile("aws").machine("g6.xlarge").price("us-east-1")]  # type: ignore[union-attr]
    call(moto, executor, "release", listed)


def test_find_looks_the_instance_up_by_its_name(
    moto: MotoAccount, executor: BlockingExecutor
) -> None:
    spec, _keys, _ = spec_for(job=7)
    assert call(moto, executor, "find", spec.name) is None
    machine = call(moto, executor, "launch", spec)
    found = call(moto, executor, "find", spec.name)
    assert found is not None and found.id == machine.id and found.name == spec.name
    assert found.refs == machine.refs
    assert call(moto, executor, "find", resource_name(HOME, 8)) is None
    call(moto, executor, "release", machine)
    assert call(moto, executor, "find", spec.name) is None  # terminated: not found


def test_describe_states_and_release_terminates(
    moto: MotoAccount, executor: BlockingExecutor
) -> None:
    spec, _keys, _ = spec_for()
    machine = call(moto, executor, "launch", spec)
    client = ec2(moto)
    first = call(moto, executor, "describe", machine)
    assert first.status in ("booting", "running")
    assert first.refs == machine.refs and first.created_at == machine.created_at
    if first.status == "running":
        assert first.ssh_port == 22 and first.ssh_host

    client.stop_instances(InstanceIds=[machine.id])
    stopped = call(moto, executor, "describe", machine)
    assert (stopped.status, stopped.ssh_host) == ("stopped", None)
    client.start_instances(InstanceIds=[machine.id])
    running = call(moto, executor, "describe", machine)
    assert (running.status, running.raw_status, running.ssh_port) == ("running", "running", 22)

    call(moto, executor, "release", machine)
    assert state(moto, machine.id) == "terminated"
    gone = call(moto, executor, "describe", machine)
    assert gone.status == "released"
    call(moto, executor, "release", machine)  # again: still released

    unknown = Machine(id="i-0123456789abcdef0", name="x", status="running", refs=machine.refs)
    unknown.refs = {**machine.refs, "instance_id": unknown.id}
    assert call(moto, executor, "describe", unknown).status == "released"
    call(moto, executor, "release", unknown)  # InvalidInstanceID.NotFound is released


def test_resources_list_an_orphan_and_stop_terminates_it(
    moto: MotoAccount, executor: BlockingExecutor
) -> None:
    spec, _keys, _ = spec_for(job=3)
    orphan = call(moto, executor, "launch", spec)
    other = ec2(moto).run_instances(ImageId=AMI, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    other_id = other["Instances"][0]["InstanceId"]

    [resource] = call(moto, executor, "resources", HOME)
    assert (resource.kind, resource.id, resource.name, resource.job_id) == (
        "machine",
        orphan.id,
        spec.name,
        3,
    )
    assert resource.created_at is not None
    assert resource.console_url == (
        "https://console.aws.amazon.com/ec2/home?region=us-east-1#Instances:"
    )
    assert call(moto, executor, "resources", "ffffffff") == []

    call(moto, executor, "stop", resource)
    assert state(moto, orphan.id) == "terminated"
    assert call(moto, executor, "resources", HOME) == []
    assert state(moto, other_id) == "running"  # not the home's: untouched
    ec2(moto).terminate_instances(InstanceIds=[other_id])


@pytest.mark.parametrize(
    ("aws_error", "code", "fields"),
    [
        ("InvalidAMIID.NotFound", "misconfigured", ["ami_id"]),
        ("InvalidAMIID.Malformed", "misconfigured", ["ami_id"]),
        ("InsufficientInstanceCapacity", "quota_exhausted", ["instance_type", "region"]),
        ("UnauthorizedOperation", "permission_denied", ["access_key"]),
    ],
)
def test_run_instances_errors_moto_does_not_make(
    moto: MotoAccount, executor: BlockingExecutor, aws_error: str, code: str, fields: list[str]
) -> None:
    """moto launches any AMI ID and never runs out of capacity: EC2's own error document
    (botocore's parsed form) goes through the same mapping."""
    from botocore.exceptions import ClientError

    from comfyvn_gui.providers.aws.machines import _launch_failure
    from comfyvn_gui.providers.aws.session import _job

    error = ClientError(
        {"Error": {"Code": aws_error, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        "RunInstances",
    )

    async def go() -> CheckFailure:
        job = _job(context(moto, executor))
        return _launch_failure(job, error, aws_error, "ec2:RunInstances")

    failure: CheckFailure = arun(go())
    assert (failure.code, failure.fields) == (code, fields), failure.message
    assert failure.detail["aws_error"] == aws_error


def test_a_user_without_run_instances_is_permission_denied(
    moto: MotoAccount, executor: BlockingExecutor
) -> None:
    spec, _keys, _ = spec_for()
    key = moto.keys["ec2only"]  # ec2:Describe* only
    with pytest.raises(CheckFailure) as caught:
        call(moto, executor, "launch", spec, user="ec2only")
    failure = caught.value
    assert (failure.code, failure.fields) == ("permission_denied", ["access_key"])
    assert failure.detail["missing_permission"] == "ec2:RunInstances"
    assert "ec2:RunInstances" in failure.message
    assert key.secret_key not in failure.message and key.access_key not in failure.message
    reply = ec2(moto).describe_instances()
    assert [i for r in reply["Reservations"] for i in r["Instances"]] == []


STUB_SHUTDOWN = """#!/bin/sh
date +%s > "$SHUTDOWN_LOG"
"""


def test_the_deadman_part_shuts_down_at_the_deadline(tmp_path: Path) -> None:
    deadline = datetime.now(UTC) + timedelta(seconds=2)
    epoch = int(deadline.timestamp())
    spec, _keys, _ = spec_for(deadline=deadline)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "shutdown").write_text(STUB_SHUTDOWN)
    (stubs / "shutdown").chmod(0o755)
    log = tmp_path / "shutdown.log"
    env = {"PATH": f"{stubs}:{os.environ['PATH']}", "SHUTDOWN_LOG": str(log)}
    part = script_part(spec.startup_script, "deadman")
    proc = subprocess.Popen(["sh", "-c", part], env=env, start_new_session=True)
    try:
        proc.wait(5)  # the part puts the switch in the background and returns
        time.sleep(max(0.0, epoch - 0.4 - time.time()))
        assert not log.exists()  # not before the deadline
        until = epoch + 5
        while not (log.exists() and log.read_text().strip()) and time.time() < until:
            time.sleep(0.05)
        assert int(log.read_text()) >= epoch
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def test_the_lifecycles_address_map_leads_to_the_sshd_of_the_user_data(
    moto: MotoAccount, executor: BlockingExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, keys, _ = spec_for()
    with MachineHosts() as hosts:
        machine = call(moto, executor, "launch", spec)
        user_data = ec2(moto).describe_instance_attribute(
            InstanceId=machine.id, Attribute="userData"
        )
        script = base64.b64decode(user_data["UserData"]["Value"]).decode()
        port = hosts.boot(machine.id, script)
        monkeypatch.setenv(ADDRESS_MAP_ENV, json.dumps({machine.id: f"127.0.0.1:{port}"}))
        until = time.monotonic() + 5
        while (running := call(moto, executor, "describe", machine)).status != "running":
            assert time.monotonic() < until
            time.sleep(0.05)
        assert running.ssh_port == 22 and running.ssh_host != "127.0.0.1"  # moto's own
        assert ssh_address(running) == ("127.0.0.1", port)

        transport = paramiko.Transport(("127.0.0.1", port))
        try:
            transport.start_client(timeout=5)
            served = transport.get_remote_server_key()
            assert f"{served.get_name()} {served.get_base64()}" == keys.host_public
            client_key = paramiko.Ed25519Key.from_private_key(io.StringIO(keys.client_private))
            transport.auth_publickey(getpass.getuser(), client_key)
            assert transport.is_authenticated()
        finally:
            transport.close()

        call(moto, executor, "release", machine)
        hosts.stop(machine.id)
        assert hosts.alive == []
    assert state(moto, machine.id) == "terminated"
