"""``comfyvn-gui running`` and dispatch to rented machines as a user types them: what this home
holds at the providers (orphans marked, how to release them said), releasing one or every
orphan, a provider that cannot be listed (exit 1, never an empty list), and a job run on a
rented machine followed to its end with the machine released.

The providers are their contract fakes with real sshd machines
(``tests/service/test_dispatch_machines.py``'s kits); every test that rents proves nothing is
left: the fake holds nothing, no machine's sshd runs, no dispatch driver is left."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from comfyvn_gui.service import Service
from comfyvn_gui.store.driver_lock import driver_running
from tests.cli.test_cli import cli
from tests.fakes.comfyui import running_comfyui
from tests.fakes.http import closed_port_url
from tests.fakes.machine_host import MachineHosts
from tests.fakes.sshd import free_port
from tests.service.test_dispatch import stop_driver
from tests.service.test_dispatch_machines import (
    Kit,
    assert_released,
    launch_orphan,
    machine_service,
    queued,
    runpod_pods_kit,
    vast_kit,
)

pytestmark = pytest.mark.usefixtures("secret_service")

ORPHAN_JOB = 999  # (a job id this home never had)


@pytest.fixture
def hosts() -> Iterator[MachineHosts]:
    with MachineHosts() as h:
        yield h


@pytest.fixture
def pods(hosts: MachineHosts) -> Iterator[Kit]:
    yield from runpod_pods_kit(hosts)


@pytest.fixture
def vast(hosts: MachineHosts) -> Iterator[Kit]:
    yield from vast_kit(hosts)


def orphaned(kit: Kit) -> Service:
    """A home with ``kit``'s provider as ``rented`` and one machine of it that no job owns."""
    svc = machine_service(kit, free_port())  # (no job runs: no ComfyUI is asked)
    asyncio.run(launch_orphan(svc, ORPHAN_JOB))
    assert kit.held() != []
    return svc


def listing(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    code, out, err = cli(capsys, "running", "--json")
    assert code == 0, err
    data: dict[str, object] = json.loads(out)
    return data


def test_running_with_nothing_rented_says_so(capsys: pytest.CaptureFixture[str], pods: Kit) -> None:
    # no provider at all
    code, out, err = cli(capsys, "running")
    assert code == 0, err
    assert "nothing of this home is held at any provider" in out
    assert listing(capsys) == {"resources": [], "errors": [], "orphans": 0}
    # a machine provider, asked, that holds nothing of this home
    machine_service(pods, free_port())
    code, out, err = cli(capsys, "running")
    assert code == 0, err
    assert "nothing of this home is held at any provider" in out and err == ""
    assert listing(capsys) == {"resources": [], "errors": [], "orphans": 0}
    code, out, err = cli(capsys, "running", "stop", "--orphans", "--yes")
    assert code == 0 and "nothing to release" in out, err


def test_an_orphan_is_listed_and_stopped_by_its_ref(
    capsys: pytest.CaptureFixture[str], pods: Kit, hosts: MachineHosts
) -> None:
    svc = orphaned(pods)
    [pod_id] = pods.held()
    ref = f"rented:{pod_id}"
    code, out, err = cli(capsys, "running")
    assert code == 0, err
    header, _rule, *rows = out.strip().splitlines()
    assert header.split()[:4] == ["REF", "KIND", "JOB", "STATE"]
    [row] = rows
    assert row.split()[:4] == [ref, "pod", str(ORPHAN_JOB), "ORPHAN"], out
    assert f"{ref} is orphan" in err
    assert "release them with `comfyvn-gui running stop --orphans`" in err
    data = listing(capsys)
    assert data["orphans"] == 1 and data["errors"] == []
    [res] = data["resources"]  # type: ignore[misc]
    assert res["ref"] == ref and res["state"] == "orphan" and res["job_id"] == ORPHAN_JOB
    assert res["provider"] == "rented" and res["kind"] == "pod"
    assert res["name"] == f"comfyvn-{svc.home.home_id()}-job{ORPHAN_JOB}"

    code, out, err = cli(capsys, "running", "stop", ref, "--yes")
    assert code == 0, err
    assert f"released {ref} (pod comfyvn-{svc.home.home_id()}-job{ORPHAN_JOB})" in out
    assert pods.held() == [] and hosts.alive == []
    assert listing(capsys) == {"resources": [], "errors": [], "orphans": 0}
    # gone: stopping it again names it and says how to list what is held
    code, _, err = cli(capsys, "running", "stop", ref, "--yes")
    assert code == 2 and ref in err and "comfyvn-gui running" in err
    assert not driver_running(svc.home)


def test_every_orphan_is_stopped_at_once(
    capsys: pytest.CaptureFixture[str], vast: Kit, hosts: MachineHosts
) -> None:
    svc = orphaned(vast)
    asyncio.run(launch_orphan(svc, ORPHAN_JOB + 1))
    assert len(vast.held()) == 2
    data = listing(capsys)
    assert data["orphans"] == 2
    refs = {r["ref"] for r in data["resources"]}  # type: ignore[attr-defined]
    assert refs == {f"rented:{i}" for i in vast.held()}
    code, out, err = cli(capsys, "running", "stop", "--orphans", "--yes", "--json")
    assert code == 0, err
    stopped = json.loads(out)["stopped"]
    assert {r["ref"] for r in stopped} == refs
    assert {r["job_id"] for r in stopped} == {ORPHAN_JOB, ORPHAN_JOB + 1}
    assert vast.held() == [] and hosts.alive == []
    assert listing(capsys)["resources"] == []
    assert not driver_running(svc.home)


def test_stopping_an_unknown_ref_names_it(capsys: pytest.CaptureFixture[str], pods: Kit) -> None:
    machine_service(pods, free_port())
    code, out, err = cli(capsys, "running", "stop", "nosuch:ref", "--yes")
    assert code == 2 and out == ""
    assert "no resource nosuch:ref of this home" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    # (no ref and no --orphans: the command line says one of them is needed)
    code, _, err = cli(capsys, "running", "stop")
    assert code == 2 and "--orphans" in err


def test_a_provider_that_cannot_be_listed_fails_the_listing_naming_it(
    capsys: pytest.CaptureFixture[str], pods: Kit, hosts: MachineHosts
) -> None:
    svc = orphaned(pods)  # (a provider that answers, holding an orphan)
    svc.create_provider(
        "vast",
        {
            "id": "gone",
            "config": {"endpoints": {"api": closed_port_url() + "/api/v0"}},
            "secrets": {"api_key": "k" * 32},
        },
    )
    code, out, err = cli(capsys, "running")
    assert code == 1
    # what could be listed is listed, and the one that could not is named with why
    assert "ORPHAN" in out and "rented:" in out
    [why] = [line for line in err.splitlines() if "gone could not be listed" in line]
    assert why.startswith("comfyvn-gui: gone could not be listed: ")
    assert len(why) > len("comfyvn-gui: gone could not be listed: ") + 10
    code, out, err = cli(capsys, "running", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["orphans"] == 1 and len(data["resources"]) == 1
    [error] = data["errors"]
    assert error["provider"] == "gone" and error["message"]
    assert error["message"] in why
    # stopping every orphan releases what can be seen
    code, _, err = cli(capsys, "running", "stop", "--orphans", "--yes")
    assert code == 0, err
    assert pods.held() == [] and hosts.alive == []
    # the unreachable provider alone: exit 1 naming it, never "nothing is held"
    svc.remove_provider("rented")
    code, out, err = cli(capsys, "running")
    assert code == 1 and "gone could not be listed" in err
    code, out, err = cli(capsys, "running", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["resources"] == [] and [e["provider"] for e in data["errors"]] == ["gone"]
    # a ref of the unreachable provider: refused, saying it could not be listed
    code, _, err = cli(capsys, "running", "stop", "gone:42", "--yes")
    assert code == 2 and "gone:42" in err and "gone could not be listed" in err


def test_dispatch_and_watch_on_a_rented_pod_releases_it(
    capsys: pytest.CaptureFixture[str], pods: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    with running_comfyui() as comfyui:
        svc = machine_service(pods, comfyui.port)
        job = queued(svc, tmp_path)
        # no terminal, no --yes: refused, nothing rented
        code, _, err = cli(capsys, "jobs", "dispatch", str(job.id))
        assert code == 2 and "--yes" in err and pods.held() == []
        code, out, err = cli(capsys, "jobs", "dispatch", str(job.id), "--yes")
        assert code == 0, err
        assert f"job {job.id} dispatched to rented" in out and "stops by" in out
        assert "bill guard: " in err
        code, out, err = cli(capsys, "jobs", "watch", str(job.id))
        assert code == 0, err
        last = out.strip().splitlines()[-1]
        assert last.startswith(f"job {job.id}: completed on rented"), last
        assert "was released" in last, last
        stop_driver(svc, wait_idle=True)
    done = svc.get_job(job.id)
    assert done.status == "completed"
    assert_released(svc, pods, hosts, done)
    assert listing(capsys) == {"resources": [], "errors": [], "orphans": 0}


def test_dispatch_in_a_terminal_shows_the_bill_guard_before_asking(
    pods: Kit, hosts: MachineHosts, tmp_path: Path
) -> None:
    svc = machine_service(pods, free_port())
    job = queued(svc, tmp_path)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "comfyvn_gui", "jobs", "dispatch", str(job.id)],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=os.environ.copy(),
    )
    os.close(follower)
    shown = b""
    try:
        while b"[y/N]" not in shown:
            chunk = os.read(leader, 4096)
            assert chunk, shown
            shown += chunk
        os.write(leader, b"n\n")
        assert proc.wait(60) == 1
        try:
            while chunk := os.read(leader, 4096):
                shown += chunk
        except OSError:
            pass
    finally:
        os.close(leader)
        proc.stdout.close()  # type: ignore[union-attr]
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = shown.decode()
    lines = text.replace("\r\n", "\n").splitlines()
    guard = next(i for i, line in enumerate(lines) if line.startswith("  [bill guard] "))
    asked = next(i for i, line in enumerate(lines) if "Upload and run it? [y/N]" in line)
    assert guard < asked, text
    assert f"job {job.id} will run on rented" in text
    # the guard says what stops the machine's bill should this app be gone
    assert len(lines[guard]) > len("  [bill guard] ") + 10
    assert "not dispatched: nothing was sent" in text
    assert svc.get_job(job.id).status == "queued"
    assert pods.held() == [] and hosts.alive == []
    assert not driver_running(svc.home)


# -- known product bugs (strict: each passes once the product is fixed; drop the marker then) --


def test_an_unlistable_provider_is_never_shown_as_nothing_held(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Service().create_provider(
        "vast",
        {
            "id": "gone",
            "config": {"endpoints": {"api": closed_port_url() + "/api/v0"}},
            "secrets": {"api_key": "k" * 32},
        },
    )
    code, out, err = cli(capsys, "running")
    assert code == 1 and "gone could not be listed" in err
    assert "nothing of this home is held" not in out


def test_a_release_the_provider_refuses_says_why(
    capsys: pytest.CaptureFixture[str], vast: Kit, hosts: MachineHosts
) -> None:
    from tests.fakes.http import reply_json

    svc = orphaned(vast)
    [instance] = vast.held()
    route = vast.fake.server.routes[("DELETE", "/api/v0/instances/{id}/")]
    vast.fake.server.route("DELETE", "/api/v0/instances/{id}/")(
        lambda req: reply_json(503, {"success": False, "error": "busy", "msg": "try later"})
    )
    try:
        code, _, err = cli(capsys, "running", "stop", f"rented:{instance}", "--yes")
        assert code == 1 and "internal error" not in err, err
        assert f"rented:{instance}" in err and "unavailable" in err, err
    finally:
        vast.fake.server.route("DELETE", "/api/v0/instances/{id}/")(route)
        asyncio.run(svc.stop_running(orphans=True))
        assert vast.held() == [] and hosts.alive == []
