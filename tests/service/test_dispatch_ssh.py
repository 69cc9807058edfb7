"""Dispatch to an On-Prem SSH provider end to end: the real OpenSSH server of the tests with
the ComfyUI contract fake bound to its loopback, the pinned host key, the driver process."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from comfyvn_gui.service import Service
from tests.fakes.comfyui import ComfyUIServer, running_comfyui
from tests.fakes.sshd import Sshd, running_sshd
from tests.service.test_dispatch import dispatch, ended, posts, project, stop_driver, summary

pytestmark = pytest.mark.usefixtures("secret_service")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def comfyui() -> Iterator[ComfyUIServer]:
    with running_comfyui() as server:
        yield server


def ssh_provider(svc: Service, sshd: Sshd, comfyui: ComfyUIServer) -> None:
    svc.create_provider(
        "ssh",
        {
            "id": "gpu01",
            "config": {
                "hostname": sshd.hostname,
                "username": getpass.getuser(),
                "ssh_key_path": str(sshd.client_key),
                "nfs_mount": str(sshd.nfs),
                "comfyui_port": str(comfyui.port),
            },
        },
    )


def test_a_job_runs_on_the_ssh_hosts_comfyui_through_the_pinned_tunnel(
    sshd: Sshd, comfyui: ComfyUIServer, tmp_path: Path
) -> None:
    svc = Service()
    ssh_provider(svc, sshd, comfyui)
    svc.trust_host("gpu01", sshd.host_fingerprint)
    [valid] = svc.run_checks("validate", ["gpu01"], timeout_s=30)
    assert valid.status == "valid", valid
    [job] = svc.import_summary(summary(), str(project(tmp_path / "project")))
    assert job.compute is not None and job.compute.provider == "gpu01", job.compute
    dispatch(svc, job)
    done = ended(svc, job.id)
    assert done.status == "completed", done.meta["dispatch"]
    folder = Path(done.meta["dispatch"]["outputs_dir"])
    for output in done.meta["dispatch"]["outputs"]:
        with Image.open(folder / output["file"]) as img:
            assert img.size == (96, 64)
    assert posts(comfyui, "/prompt") == 2
    refs = done.meta["dispatch"]["refs"]["config"]  # where it ran, as at launch
    assert refs["hostname"] == sshd.hostname and refs["comfyui_port"] == str(comfyui.port)
    stop_driver(svc)


def test_a_changed_host_key_stops_the_job_before_anything_is_sent(
    sshd: Sshd, comfyui: ComfyUIServer, tmp_path: Path
) -> None:
    svc = Service()
    ssh_provider(svc, sshd, comfyui)
    svc.trust_host("gpu01", sshd.host_fingerprint)
    [valid] = svc.run_checks("validate", ["gpu01"], timeout_s=30)
    assert valid.status == "valid", valid
    [job] = svc.import_summary(summary(), str(project(tmp_path / "project")))
    # the host's key changes after validation (a reinstalled or impostor host)
    svc.host_keys.pin("gpu01", sshd.hostname, "SHA256:" + "A" * 43)
    dispatch(svc, job)
    done = ended(svc, job.id)
    assert done.status == "failed"
    message = done.meta["dispatch"]["ended_message"]
    assert sshd.host_fingerprint in message and "trust-host" in message
    assert comfyui.requests == []
    stop_driver(svc)
