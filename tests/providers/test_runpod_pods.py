"""RunPod pods for dispatch (providers/runpod_pods.py) against the GraphQL contract fake of
tests/fakes/runpod_pods.py and real machines (tests/fakes/machine_host.py: a real sshd with the
host and client keys from the start-up script the pod received).

Every test that rents a pod proves it was given back: the fake holds no pod of the test's home
and ``hosts.alive`` is empty.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
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
from comfyvn_gui.providers.base import BlockingExecutor, CheckContext, CheckFailure
from comfyvn_gui.providers.machine import (
    LaunchSpec,
    Machine,
    MachineKeys,
    generate_keys,
    is_machine_adapter,
)
from comfyvn_gui.providers.runpod_pods import (
    DEFAULT_COMFYUI_COMMAND,
    DEFAULT_COMFYUI_IMAGE,
    DOCKER_ARGS,
    STARTUP_ENV,
    RunPodPods,
)
from tests.fakes.http import arun
from tests.fakes.machine_host import MachineHosts
from tests.fakes.runpod_pods import RunPodPodsFake

CATALOG = load_catalog()
HOME = "c0ffee01"
IMAGE = "runpod/worker-comfyui:5.10.0-base"
PODS = RunPodPods()


@pytest.fixture(scope="module")
def server() -> Iterator[RunPodPodsFake]:
    with RunPodPodsFake() as fake:
        yield fake


@pytest.fixture
def hosts() -> Iterator[MachineHosts]:
    with MachineHosts() as h:
        yield h


@pytest.fixture
def fake(server: RunPodPodsFake, hosts: MachineHosts) -> Iterator[RunPodPodsFake]:
    server.reset(hosts=hosts)
    yield server
    server.reset()


@pytest.fixture
def executor() -> Iterator[BlockingExecutor]:
    pool = BlockingExecutor(max_workers=2)
    yield pool
    pool.shutdown()


def context(
    fake: RunPodPodsFake, executor: BlockingExecutor, *, key: str | None = None, **config: Any
) -> CheckContext:
    entry = ProviderEntry(
        id="rp1",
        template_id="runpod",
        name="RunPod",
        active=True,
        config={"endpoints": {"graphql": fake.graphql_url}, **config},
        secrets_set=["api_key"],
    )
    return CheckContext(
        provider=entry,
        profile=CATALOG.profile("runpod"),
        secrets={"api_key": fake.key if key is None else key},
        deadline=asyncio.get_running_loop().time() + 30,
        executor=executor,
    )


def spec_for(
    fake: RunPodPodsFake,
    *,
    job: int = 1,
    deadline: datetime | None = None,
    max_hourly_usd: float | None = 1.0,
    zones: tuple[str, ...] | None = None,
    vram_mb: int = 12000,
) -> tuple[LaunchSpec, MachineKeys]:
    name = resource_name(HOME, job)
    keys = generate_keys(name)
    deadline = deadline or datetime.now(UTC) + timedelta(hours=1)
    plan = StartupPlan(
        name=name,
        deadline=deadline,
        deadman="runpod_pod",
        host_private_key=keys.host_private,
        host_public_key=keys.host_public,
        client_public_key=keys.client_public,
        ssh_user=getpass.getuser(),
        mode="container",
        comfyui_command="python -u /comfyui/main.py",
        api_url=fake.graphql_url,
    )
    spec = LaunchSpec(
        name=name,
        tags=resource_tags(HOME, job),
        job_id=job,
        image=IMAGE,
        startup_script=startup_script(plan),
        client_public_key=keys.client_public,
        vram_mb=vram_mb,
        max_hourly_usd=max_hourly_usd,
        zones=zones,
        deadline=deadline,
    )
    return spec, keys


def launch(
    fake: RunPodPodsFake, executor: BlockingExecutor, spec: LaunchSpec, **config: Any
) -> Machine:
    async def go() -> Machine:
        return await PODS.launch(context(fake, executor, **config), spec)

    result: Machine = arun(go())
    return result


def call(fake: RunPodPodsFake, executor: BlockingExecutor, method: str, *args: Any) -> Any:
    async def go() -> Any:
        return await getattr(PODS, method)(context(fake, executor), *args)

    return arun(go())


def deploys(fake: RunPodPodsFake) -> list[dict[str, Any]]:
    return [
        r.json()
        for r in fake.requests
        if r.path == "/graphql" and "podFindAndDeployOnDemand" in r.json()["query"]
    ]


def assert_released(fake: RunPodPodsFake, hosts: MachineHosts) -> None:
    mine = [p.name for p in fake.pods.values() if p.name.startswith(f"comfyvn-{HOME}-")]
    assert mine == []
    assert hosts.alive == []


def wait_running(fake: RunPodPodsFake, executor: BlockingExecutor, machine: Machine) -> Machine:
    until = time.monotonic() + 5
    while True:
        described: Machine = call(fake, executor, "describe", machine)
        if described.status == "running" and described.ssh_port:
            return described
        assert time.monotonic() < until, f"still {described.status}"
        time.sleep(0.05)


# -- the protocol ------------------------------------------------------------------------------


def test_is_a_machine_adapter_whose_pods_terminate_themselves() -> None:
    assert is_machine_adapter(PODS)
    assert (PODS.deadman, PODS.mode, PODS.default_ssh_user) == ("runpod_pod", "container", "root")
    words = PODS.deadman_words.lower()
    assert "terminate" in words and "stopped pod still bills its disk" in words
    options = {o.name: o for o in CATALOG.profile("runpod").options}
    for name in ("comfyui_image", "comfyui_command", "ssh_user", "comfyui_port"):
        assert not options[name].required and options[name].default is None  # empty: ...
    assert options["comfyui_image"].placeholder == DEFAULT_COMFYUI_IMAGE == IMAGE
    assert DEFAULT_COMFYUI_COMMAND in options["comfyui_command"].help
    assert options["gpu_type_id"].choices[0] == "NVIDIA RTX A5000"
    assert options["cloud_type"].choices == ["SECURE", "COMMUNITY", "ALL"]
    assert options["gpu_type_id"].check_value("NVIDIA A100-SXM4-80GB") is None  # (any RunPod ID)


# -- launch ------------------------------------------------------------------------------------


def test_deploy_sends_every_value_in_variables_and_the_script_in_the_environment(
    fake: RunPodPodsFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec, keys = spec_for(fake, max_hourly_usd=0.8)
    machine = launch(fake, executor, spec)

    (body,) = deploys(fake)
    (req,) = [r for r in fake.requests if "podFindAndDeployOnDemand" in r.json()["query"]]
    assert req.headers["authorization"] == f"Bearer {fake.key}"
    query = body["query"]
    assert '"' not in query  # nothing pasted into the text ...
    sent = body["variables"]["input"]
    for value in (spec.name, IMAGE, "NVIDIA RTX A5000", "SECURE", "22/tcp", sent["dockerArgs"]):
        assert value not in query  # ... every value comes in the variables
    assert sent["env"][0]["value"] not in query
    assert {k: sent[k] for k in sent if k not in ("env", "dockerArgs")} == {
        "name": spec.name,
        "imageName": IMAGE,
        "gpuTypeId": "NVIDIA RTX A5000",
        "gpuCount": 1,
        "cloudType": "SECURE",
        "containerDiskInGb": 40,
        "volumeInGb": 0,
        "ports": "22/tcp",
        "supportPublicIp": True,
        "deployCost": 0.8,
    }
    (env,) = sent["env"]
    assert env["key"] == STARTUP_ENV
    script = base64.b64decode(env["value"]).decode()
    assert script == spec.startup_script
    assert keys.host_public in script and keys.client_public in script
    deadman = script_part(script, "deadman")
    assert "podTerminate" in deadman and "Bearer $RUNPOD_API_KEY" in deadman
    assert '"$RUNPOD_POD_ID"' in deadman and fake.graphql_url in deadman
    assert sent["dockerArgs"] == DOCKER_ARGS

    assert machine.status == "booting" and machine.hourly_usd == pytest.approx(0.44)
    assert machine.refs == {
        "pod_id": machine.id,
        "graphql": fake.graphql_url,
        "gpu_type_id": "NVIDIA RTX A5000",
        "cloud_type": "SECURE",
        "data_center_id": None,
    }
    doc = json.dumps(machine.as_json())
    assert fake.key not in doc and keys.host_private not in doc and "COMFYVN" not in doc
    assert Machine.from_json(json.loads(doc)) == machine

    call(fake, executor, "release", machine)
    assert_released(fake, hosts)
    assert [(t.pod_id, t.by) for t in fake.terminations] == [(machine.id, "account")]


def _stub(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)


def test_docker_args_decode_and_run_the_script_with_sh(tmp_path: Path) -> None:
    argv = shlex.split(DOCKER_ARGS)
    assert argv[:2] == ["sh", "-c"] and len(argv) == 3
    stubs = tmp_path / "bin"
    stubs.mkdir()
    _stub(stubs, "sleep", 'echo "sleep $*" >> "$LOG"\n')  # ("sleep infinity" returns here)
    _stub(stubs, "apt-get", 'echo "apt-get $*" >> "$LOG"\n')
    marker = tmp_path / "ran"
    script = f'echo "started with $0" > {shlex.quote(str(marker))}\n'
    env = {
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "LOG": str(tmp_path / "log"),
        STARTUP_ENV: base64.b64encode(script.encode()).decode(),
    }
    assert shutil.which("curl") and os.access("/usr/sbin/sshd", os.X_OK)  # (this machine)
    subprocess.run(["/bin/sh", "-c", argv[2]], env=env, check=True, timeout=20)
    assert marker.read_text() == "started with sh\n"
    assert (tmp_path / "log").read_text() == "sleep infinity\n"  # no install: both present


def test_docker_args_install_ssh_and_curl_when_the_image_lacks_them(tmp_path: Path) -> None:
    argv = shlex.split(DOCKER_ARGS)
    stubs = tmp_path / "bin"  # the only PATH: no curl on it
    stubs.mkdir()
    for tool in ("sh", "base64"):
        found = shutil.which(tool)
        assert found is not None
        (stubs / tool).symlink_to(found)
    _stub(stubs, "sleep", "exit 0\n")
    _stub(stubs, "timeout", 'shift\nexec "$@"\n')
    _stub(stubs, "apt-get", f'echo "apt-get $*" >> {shlex.quote(str(tmp_path / "apt"))}\n')
    marker = tmp_path / "ran"
    script = f"echo ran > {shlex.quote(str(marker))}\n"
    env = {"PATH": str(stubs), STARTUP_ENV: base64.b64encode(script.encode()).decode()}
    subprocess.run(["/bin/sh", "-c", argv[2]], env=env, check=True, timeout=20)
    assert (tmp_path / "apt").read_text().splitlines() == [
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends openssh-server curl ca-certificates",
    ]
    assert marker.read_text() == "ran\n"  # the script ran after the install


def test_a_pod_above_the_price_ceiling_is_terminated_at_once(
    fake: RunPodPodsFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    fake.cost_per_hr = 0.89
    fake.honour_deploy_cost = False  # (RunPod took the pod despite deployCost)
    spec, _keys = spec_for(fake, max_hourly_usd=0.5)
    with pytest.raises(CheckFailure) as failure:
        launch(fake, executor, spec)
    assert failure.value.code == "quota_exhausted"
    assert "$0.89/h" in failure.value.message and "$0.50/h" in failure.value.message
    assert "terminated" in failure.value.message
    assert [t.by for t in fake.terminations] == ["account"]
    assert_released(fake, hosts)


def test_the_ceiling_goes_as_deploy_cost_and_a_refusal_is_quota_exhausted(
    fake: RunPodPodsFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    fake.cost_per_hr = 0.89
    spec, _keys = spec_for(fake, max_hourly_usd=0.5)
    with pytest.raises(CheckFailure) as failure:
        launch(fake, executor, spec)
    assert failure.value.code == "quota_exhausted"
    assert "under $0.50/h" in failure.value.message
    assert deploys(fake)[0]["variables"]["input"]["deployCost"] == 0.5
    assert fake.pods == {} and hosts.alive == []


def test_no_capacity_is_quota_exhausted_naming_the_gpu(
    fake: RunPodPodsFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    fake.capacity = False
    spec, _keys = spec_for(fake)
    with pytest.raises(CheckFailure) as failure:
        launch(fake, executor, spec, gpu_type_id="NVIDIA GeForce RTX 4090", cloud_type="ALL")
    assert failure.value.code == "quota_exhausted"
    assert "NVIDIA GeForce RTX 4090" in failure.value.message and "ALL" in failure.value.message
    assert failure.value.fields == ["gpu_type_id", "cloud_type"]
    assert "no longer any instances" in failure.value.detail["refused"][0]
    assert fake.pods == {} and hosts.alive == []


def test_residency_zones_pin_the_data_centre_and_each_allowed_one_is_tried(
    fake: RunPodPodsFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    fake.data_centres = ["EU-SE-1"]
    spec, _keys = spec_for(fake, zones=("eu",))
    machine = launch(fake, executor, spec)
    tried = [d["variables"]["input"]["dataCenterId"] for d in deploys(fake)]
    assert tried == ["EU-RO-1", "EU-SE-1"]
    assert machine.refs["data_center_id"] == "EU-SE-1"
    call(fake, executor, "release", machine)
    assert_released(fake, hosts)


def test_a_gpu_type_too_small_for_the_job_is_refused_before_renting(
    fake: RunPodPodsFake, executor: BlockingExecutor
) -> None:
    spec, _keys = spec_for(fake, vram_mb=40000)
    with pytest.raises(CheckFailure) as failure:
        launch(fake, executor, spec)
    assert failure.value.code == "misconfigured" and failure.value.fields == ["gpu_type_id"]
    assert "24 GB" in failure.value.message and fake.requests == []


def test_a_bad_key_answered_in_a_200_is_invalid_credentials(
    fake: RunPodPodsFake, executor: BlockingExecutor
) -> None:
    spec, _keys = spec_for(fake)

    async def go() -> None:
        await PODS.launch(context(fake, executor, key="rpa_WRONG_0000000000000000"), spec)

    with pytest.raises(CheckFailure) as failure:
        arun(go())
    assert failure.value.code == "invalid_credentials" and failure.value.fields == ["api_key"]
    assert "rpa_WRONG" not in failure.value.message
    assert fake.pods == {}


# -- describe, SSH, release --------------------------------------------------------------------


def test_describe_follows_the_pod_to_running_and_the_ssh_is_real(
    fake: RunPodPodsFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    hosts.boot_delay_s = 0.4
    spec, keys = spec_for(fake)
    machine = launch(fake, executor, spec)
    first: Machine = call(fake, executor, "describe", machine)
    assert (first.status, first.raw_status, first.ssh_port) == ("booting", "RUNNING", None)

    running = wait_running(fake, executor, machine)
    assert running.ssh_host == "127.0.0.1"  # the public address, not the private 10.x one
    assert running.ssh_port == hosts.machines[machine.id].port
    assert running.refs == machine.refs and running.created_at == machine.created_at

    transport = paramiko.Transport(("127.0.0.1", running.ssh_port))
    try:
        transport.start_client(timeout=5)
        served = transport.get_remote_server_key()
        assert f"{served.get_name()} {served.get_base64()}" == keys.host_public
        client_key = paramiko.Ed25519Key.from_private_key(io.StringIO(keys.client_private))
        transport.auth_publickey(getpass.getuser(), client_key)
        assert transport.is_authenticated()
    finally:
        transport.close()

    call(fake, executor, "release", machine)
    assert_released(fake, hosts)
    gone: Machine = call(fake, executor, "describe", machine)
    assert gone.status == "released"


def test_release_of_a_pod_already_gone_is_released(
    fake: RunPodPodsFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec, _keys = spec_for(fake)
    machine = launch(fake, executor, spec)
    call(fake, executor, "release", machine)
    call(fake, executor, "release", machine)  # "pod not found": already released
    assert_released(fake, hosts)
    assert len(fake.terminations) == 1


def test_a_stopped_pod_reads_stopped_still_billing_until_released(
    fake: RunPodPodsFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec, _keys = spec_for(fake)
    machine = launch(fake, executor, spec)
    answer = httpx.post(
        fake.graphql_url,
        headers={"Authorization": f"Bearer {fake.key}"},
        json={
            "query": "mutation S($input: PodStopInput!) { podStop(input: $input) { id } }",
            "variables": {"input": {"podId": machine.id}},
        },
    ).json()
    assert answer == {"data": {"podStop": {"id": machine.id}}}
    stopped: Machine = call(fake, executor, "describe", machine)
    assert (stopped.status, stopped.raw_status, stopped.ssh_host) == ("stopped", "EXITED", None)
    (listed,) = call(fake, executor, "resources", HOME)
    assert (listed.id, listed.status) == (machine.id, "EXITED")  # (its disk still bills)
    call(fake, executor, "release", machine)
    assert_released(fake, hosts)


def test_find_looks_the_pod_up_by_its_name(
    fake: RunPodPodsFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec, _keys = spec_for(fake, job=4)
    machine = launch(fake, executor, spec)
    found: Machine | None = call(fake, executor, "find", spec.name)
    assert found is not None and found.id == machine.id and found.name == spec.name
    assert found.refs == {"pod_id": machine.id, "graphql": fake.graphql_url}
    assert call(fake, executor, "find", resource_name(HOME, 5)) is None
    listings = [r.json() for r in fake.requests if "myself" in r.json()["query"]]
    assert len(listings) == 2 and all(b["variables"] == {} for b in listings)
    call(fake, executor, "release", found)
    assert_released(fake, hosts)
    assert call(fake, executor, "find", spec.name) is None


def test_resources_list_the_homes_pods_and_stop_terminates_an_orphan(
    fake: RunPodPodsFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    spec, _keys = spec_for(fake, job=7)
    before = datetime.now(UTC)
    orphan = launch(fake, executor, spec)  # (no job of this test owns it: an orphan)
    others = {fake.add_pod(resource_name("beef0002", 3)).id, fake.add_pod("my-notebook").id}
    wait_running(fake, executor, orphan)
    (resource,) = call(fake, executor, "resources", HOME)
    # its age (the Running place's Age and cost so far), from the pod's uptime: RunPod's
    # API gives no creation time
    assert resource.created_at is not None
    assert before - timedelta(seconds=2) <= resource.created_at <= datetime.now(UTC)
    assert (resource.kind, resource.id, resource.name, resource.job_id) == (
        "pod",
        orphan.id,
        spec.name,
        7,
    )
    assert resource.hourly_usd == pytest.approx(0.44) and resource.status == "RUNNING"
    assert resource.console_url == "https://www.runpod.io/console/pods"
    call(fake, executor, "stop", resource)
    assert set(fake.pods) == others  # other homes' and the user's own pods untouched
    assert_released(fake, hosts)
    assert call(fake, executor, "resources", HOME) == []


# -- the dead-man switch -----------------------------------------------------------------------

CURL_STUB = r"""#!/usr/bin/env python3
# A stand-in for curl on a machine without it: records its argv, then sends the request.
import json, os, sys, urllib.request
args = sys.argv[1:]
with open(os.environ["CURL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
headers, data, method, url, i = {}, None, "GET", None, 0
while i < len(args):
    a = args[i]
    if a in ("-H", "--data", "-X", "-m"):
        v = args[i + 1]
        if a == "-H":
            k, _, val = v.partition(":")
            headers[k.strip()] = val.strip()
        elif a == "--data":
            data, method = v.encode(), "POST"
        elif a == "-X":
            method = v
        i += 2
        continue
    if not a.startswith("-"):
        url = a
    i += 1
req = urllib.request.Request(url, data=data, headers=headers, method=method)
with urllib.request.urlopen(req, timeout=30) as resp:
    sys.stdout.write(resp.read().decode())
"""


def test_the_pod_terminates_itself_at_the_deadline_with_its_pod_scoped_key(
    fake: RunPodPodsFake, hosts: MachineHosts, executor: BlockingExecutor, tmp_path: Path
) -> None:
    hosts.never_boot = True  # (no sshd needed: the switch alone)
    deadline = datetime.now(UTC) + timedelta(seconds=2)
    epoch = int(deadline.timestamp())  # what the script compares with `date +%s`
    spec, _keys = spec_for(fake, deadline=deadline)
    machine = launch(fake, executor, spec)
    pod_key = fake.pod_key(machine.id)
    assert pod_key != fake.key

    env = {
        "PATH": os.environ["PATH"],
        "RUNPOD_API_KEY": pod_key,  # what RunPod puts in the pod
        "RUNPOD_POD_ID": machine.id,
    }
    if shutil.which("curl") is None:  # (no curl here: a recording stand-in that sends it)
        stubs = tmp_path / "bin"
        stubs.mkdir()
        (stubs / "curl").write_text(CURL_STUB.replace("/usr/bin/env python3", sys.executable))
        (stubs / "curl").chmod(0o755)
        env.update(PATH=f"{stubs}:{env['PATH']}", CURL_LOG=str(tmp_path / "curl.log"))
    part = script_part(spec.startup_script, "deadman")
    proc = subprocess.Popen(["sh", "-c", part], env=env, start_new_session=True)
    try:
        proc.wait(5)  # the part puts the switch in the background and returns
        time.sleep(max(0.0, epoch - 0.4 - time.time()))
        assert machine.id in fake.pods and fake.terminations == []  # not before the deadline
        until = epoch + 5
        while not fake.terminations and time.time() < until:
            time.sleep(0.05)
        (termination,) = fake.terminations
        assert (termination.pod_id, termination.by) == (machine.id, "pod")
        assert termination.at >= epoch
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    assert_released(fake, hosts)


def test_the_pod_scoped_key_may_terminate_only_its_own_pod(
    fake: RunPodPodsFake, hosts: MachineHosts, executor: BlockingExecutor
) -> None:
    hosts.never_boot = True
    first = launch(fake, executor, spec_for(fake, job=1)[0])
    second = launch(fake, executor, spec_for(fake, job=2)[0])
    terminate = "mutation T($input: PodTerminateInput!) { podTerminate(input: $input) }"

    def post(key: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.post(
            fake.graphql_url,
            headers={"Authorization": f"Bearer {key}"},
            json={"query": query, "variables": variables},
        ).json()
        return answer

    key = fake.pod_key(first.id)
    refused = post(key, terminate, {"input": {"podId": second.id}})
    assert "permission" in refused["errors"][0]["message"]
    read = "query P($input: PodFilter!) { pod(input: $input) { id } }"
    assert "errors" in post(key, read, {"input": {"podId": first.id}})
    assert set(fake.pods) == {first.id, second.id}
    assert post(key, terminate, {"input": {"podId": first.id}}) == {"data": {"podTerminate": None}}
    call(fake, executor, "release", second)
    assert [(t.pod_id, t.by) for t in fake.terminations] == [
        (first.id, "pod"),
        (second.id, "account"),
    ]
    assert_released(fake, hosts)


def test_the_fake_refuses_values_written_into_the_query(fake: RunPodPodsFake) -> None:
    answer = httpx.post(
        fake.graphql_url,
        headers={"Authorization": f"Bearer {fake.key}"},
        json={"query": 'mutation { podTerminate(input: {podId: "abc123"}) }'},
    )
    assert answer.status_code == 400
    assert "variables only" in answer.json()["errors"][0]["message"]
    unknown = httpx.post(
        fake.graphql_url,
        headers={"Authorization": f"Bearer {fake.key}"},
        json={"query": "query { myself { pods { id secretField } } }", "variables": {}},
    )
    assert unknown.status_code == 400
    assert (
        'Cannot query field "secretField" on type "Pod"' in unknown.json()["errors"][0]["message"]
    )
