"""``comfyvn-gui providers ...`` on a provider with work in flight: refused with exit 2 (a
conflict is bad input for now, as every ConflictError is: docs/architecture.md, "Command line")
and one line on stderr naming the jobs, nothing changed; accepted once the jobs end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from comfyvn_gui.core.jobs import ComputeDecision
from comfyvn_gui.service import Service
from tests.cli.test_cli import cli
from tests.conftest import keyring_entries

pytestmark = pytest.mark.usefixtures("secret_service")

KEY = "rp-cli-lock-key-0123456789"
RUNPOD = {
    "id": "runpod-1",
    "template_id": "runpod",
    "name": "RunPod one",
    "secrets": {"api_key": KEY},
}


def setup_running(capsys: pytest.CaptureFixture[str]) -> tuple[Service, int]:
    """runpod-1 registered through the command line, with job 1 running on it."""
    code, _, err = cli(
        capsys, "providers", "register", "--config-file", "-", stdin=json.dumps(RUNPOD)
    )
    assert code == 0, err
    svc = Service()
    job = svc.add_job({"kind": "translation", "characters": 5000})
    moved = svc.job_store.change_status(
        job.id,
        expected=["queued"],
        status="running",
        actor="test",
        message="running: dispatched by the test",
        decision=ComputeDecision(
            provider="runpod-1", advice={}, decided_at=datetime.now(UTC), decided_by="user"
        ),
    )
    assert moved is not None and moved.status == "running"
    return svc, job.id


def state(svc: Service) -> tuple[bytes, dict[tuple[str, str], str]]:
    return svc.home.registry_file.read_bytes(), keyring_entries(f"comfyvn-gui/{svc.home.home_id()}")


def test_refusals_exit_2_with_one_line_naming_the_jobs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    svc, job = setup_running(capsys)
    export = tmp_path / "export.json"
    export.write_text(json.dumps({"providers": [{**RUNPOD, "id": "runpod-2"}]}), "utf-8")
    before = state(svc)
    attempts = [
        (("providers", "remove", "runpod-1"), "", "before removing it"),
        (("providers", "remove", "--all", "--yes"), "", "before removing every provider"),
        (
            ("providers", "register", "--config-file", "-"),
            json.dumps({"id": "runpod-1", "secrets": {"api_key": "rp-cli-other-0123456789"}}),
            "before changing its credentials (api_key)",
        ),
        (
            ("providers", "register", "--config-file", "-"),
            json.dumps({"id": "runpod-1", "enabled": False}),
            "before disabling it",
        ),
        (("providers", "import", str(export), "--replace", "--yes"), "", "without replace"),
    ]
    for args, stdin, words in attempts:
        code, out, err = cli(capsys, *args, stdin=stdin)
        assert code == 2, (args, err)
        assert out == ""
        lines = err.splitlines()
        assert len(lines) == 1, (args, err)
        assert lines[0].startswith("comfyvn-gui: ")
        assert f"(job {job})" in lines[0] and f"`comfyvn-gui jobs cancel {job}`" in lines[0]
        assert words in lines[0], lines[0]
        assert "Traceback" not in err
        assert state(svc) == before

    # --json: the error object on stdout, the line on stderr
    code, out, err = cli(capsys, "providers", "remove", "runpod-1", "--json")
    assert code == 2 and len(err.splitlines()) == 1
    error = json.loads(out)["error"]
    assert error["code"] == "conflict" and error["fields"] == ["id"]
    assert error["message"].startswith(f"runpod-1 has work in flight (job {job})")

    # a rename passes
    code, out, err = cli(
        capsys,
        "providers",
        "register",
        "--config-file",
        "-",
        stdin=json.dumps({"id": "runpod-1", "name": "Renamed"}),
    )
    assert code == 0, err
    assert svc.get_provider("runpod-1").name == "Renamed"


def test_accepted_once_the_job_ended(capsys: pytest.CaptureFixture[str]) -> None:
    svc, job = setup_running(capsys)
    code, _, err = cli(capsys, "providers", "remove", "runpod-1")
    assert code == 2 and f"(job {job})" in err
    ended = svc.job_store.change_status(
        job, expected=["running"], status="completed", actor="test", message="completed"
    )
    assert ended is not None
    code, out, err = cli(capsys, "providers", "remove", "runpod-1")
    assert code == 0, err
    assert out.strip() == "removed runpod-1 and its stored credentials"
    assert state(svc)[1] == {}
