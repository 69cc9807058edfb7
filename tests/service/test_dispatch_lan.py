"""Dispatch to an unRAID / LAN node end to end: its ComfyUI over HTTPS with the node's own CA
and the bearer token (the validator's rules), validated against the Docker API fake, driven by
the driver process. The token never reaches the job's record, the trail or the logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from comfyvn_gui.service import Service
from tests.fakes.comfyui import running_comfyui
from tests.fakes.docker import DockerFake, make_pki
from tests.service.test_dispatch import dispatch, ended, posts, project, stop_driver, summary

pytestmark = pytest.mark.usefixtures("secret_service")

TOKEN = "lan-dispatch-token-4f2a9c"


def test_a_job_runs_on_the_lan_nodes_comfyui_over_https_with_its_token(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    tls = pki.server_context(require_client_cert=False)
    with DockerFake(pki, token=TOKEN) as docker, running_comfyui(ssl_context=tls) as comfyui:
        svc = Service()
        svc.create_provider(
            "lan",
            {
                "id": "nas",
                "config": {
                    "endpoint": docker.base,
                    "api_token": TOKEN,
                    "ca_bundle": str(pki.ca_file),
                    "endpoints": {"comfyui": comfyui.url},
                },
            },
        )
        [valid] = svc.run_checks("validate", ["nas"], timeout_s=20)
        assert valid.status == "valid", valid
        svc.run_checks("health", ["nas"], timeout_s=20)  # (the VRAM ComfyUI reports)
        [job] = svc.import_summary(summary(), str(project(tmp_path / "project")))
        assert job.compute is not None and job.compute.provider == "nas", job.compute
        dispatch(svc, job)
        done = ended(svc, job.id)
        assert done.status == "completed", done.meta["dispatch"]
        assert len(done.meta["dispatch"]["outputs"]) == 2
        assert posts(comfyui, "/prompt") == 2
        assert set(comfyui.authorizations) == {f"Bearer {TOKEN}"}
        stop_driver(svc)
    assert TOKEN not in done.model_dump_json()
    assert all(TOKEN not in e.model_dump_json() for e in svc.job_events(job.id))
    for log in svc.home.log_dir.iterdir():
        assert TOKEN not in log.read_text("utf-8", errors="replace"), log
