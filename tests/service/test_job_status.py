"""Cancelling a queued job and retrying an ended one: the status, the trail, the advice."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from comfyvn_gui.core.errors import ConflictError, NotFoundError
from comfyvn_gui.service import Service
from tests.cli.test_cli import cli

pytestmark = pytest.mark.usefixtures("secret_service")

WORKLOAD = {"kind": "cg_super_res", "items": 4, "width": 1024, "height": 1024}


def test_a_cancelled_job_leaves_the_queue_and_says_so_in_its_trail() -> None:
    svc = Service()
    job = svc.add_job(WORKLOAD)
    cancelled = svc.cancel_job(job.id)
    assert cancelled.status == "cancelled"
    assert [j.id for j in svc.list_jobs(["queued"])] == []
    last = svc.job_events(job.id)[-1]
    assert (last.actor, last.action, last.previous) == ("user", "status", "queued")
    assert "nothing was sent" in last.message and last.detail == {"to": "cancelled"}
    # a re-advice leaves it alone: only queued jobs are re-advised
    svc.readvise("a test")
    assert svc.get_job(job.id).status == "cancelled"
    with pytest.raises(ConflictError, match=f"job {job.id} is cancelled already"):
        svc.cancel_job(job.id)


def test_retry_queues_it_again_with_fresh_advice() -> None:
    svc = Service()
    job = svc.add_job(WORKLOAD)
    svc.cancel_job(job.id)
    before = svc.get_job(job.id).compute
    again = svc.retry_job(job.id)
    assert again.status == "queued"
    assert again.compute is not None and before is not None
    assert again.compute.decided_at > before.decided_at
    actions = [e.action for e in svc.job_events(job.id)]
    assert actions[-2:] == ["status", "decided"]
    with pytest.raises(ConflictError, match=f"job {job.id} is queued already"):
        svc.retry_job(job.id)


def test_an_ended_job_cannot_be_cancelled_and_a_missing_one_is_named(tmp_path: Path) -> None:
    svc = Service()
    job = svc.add_job(WORKLOAD)
    with sqlite3.connect(svc.job_store.path) as conn:  # (dispatch sets it)
        conn.execute("UPDATE jobs SET status = 'completed' WHERE id = ?", (job.id,))
    with pytest.raises(ConflictError, match=r"has ended \(completed\): nothing to cancel"):
        svc.cancel_job(job.id)
    with pytest.raises(ConflictError, match="only a failed or cancelled job is retried"):
        svc.retry_job(job.id)
    with pytest.raises(NotFoundError, match="no job 999"):
        svc.cancel_job(999)
    assert svc.get_job(job.id).status == "completed"  # nothing changed


def test_cancel_and_retry_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    svc = Service()
    job = svc.add_job(WORKLOAD)
    code, out, err = cli(capsys, "jobs", "cancel", str(job.id))
    assert code == 0, err
    assert out.strip() == f"job {job.id} cancelled: nothing was sent for it"
    code, _, err = cli(capsys, "jobs", "cancel", str(job.id))
    assert code == 2 and f"job {job.id} is cancelled already" in err and "Traceback" not in err
    code, out, err = cli(capsys, "jobs", "retry", str(job.id), "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "queued"
