"""The job queue's schema 2: a schema-1 file (as the app wrote it before dispatch) is migrated
in place with its whole trail; the trail outlives a removed job and stays append-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from comfyvn_gui.core.errors import ConflictError
from comfyvn_gui.service import Service
from comfyvn_gui.store.jobs import JobStore

pytestmark = pytest.mark.usefixtures("secret_service")

#: Schema 1 as the app created it (the trail's job_id referenced jobs).
SCHEMA_1 = """
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, kind TEXT NOT NULL,
    status TEXT NOT NULL, workload TEXT NOT NULL, source TEXT NOT NULL DEFAULT '{}',
    meta TEXT NOT NULL DEFAULT '{}', provider TEXT, decided_by TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX jobs_status ON jobs(status);
CREATE TABLE job_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER NOT NULL REFERENCES jobs(id),
    at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, provider TEXT,
    previous TEXT, message TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX job_events_job ON job_events(job_id, seq);
CREATE TRIGGER job_events_no_update BEFORE UPDATE ON job_events
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER job_events_no_delete BEFORE DELETE ON job_events
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"""

WORKLOAD = '{"kind": "cg_super_res", "items": 2, "width": 512, "height": 512}'


def _schema_1(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_1)
    db.execute(
        "INSERT INTO jobs (title, kind, status, workload, created_at, updated_at) VALUES "
        "('old job', 'cg_super_res', 'queued', ?, '2026-01-01T00:00:00+00:00', "
        "'2026-01-01T00:00:00+00:00')",
        (WORKLOAD,),
    )
    for n in range(3):
        db.execute(
            "INSERT INTO job_events (job_id, at, actor, action, message) "
            "VALUES (1, '2026-01-01T00:00:00+00:00', 'user', 'created', ?)",
            (f"line {n}",),
        )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()


def test_a_schema_1_queue_is_migrated_with_its_whole_trail() -> None:
    svc = Service()
    _schema_1(svc.home.jobs_file)
    store = JobStore(svc.home)
    job = store.get(1)
    assert job.title == "old job"
    assert [e.message for e in store.events(1)] == ["line 0", "line 1", "line 2"]
    db = sqlite3.connect(svc.home.jobs_file)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "job_events", "leases"} <= tables and "job_events_v1" not in tables
    # still append-only after the migration
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM job_events")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE job_events SET message = 'x'")
    db.close()
    # and a removed job's trail stays, with its last line
    store.remove(1)
    assert [e.action for e in store.events(1)][-1] == "removed"
    assert len(store.events(1)) == 4


def test_a_job_in_flight_is_not_removed() -> None:
    svc = Service()
    job = svc.add_job({"kind": "cg_super_res", "items": 1, "width": 256, "height": 256})
    svc.job_store.change_status(
        job.id, expected=["queued"], status="running", actor="test", message="as if dispatched"
    )
    with pytest.raises(ConflictError, match=f"cancel it first .*jobs cancel {job.id}"):
        svc.remove_job(job.id)
    assert svc.get_job(job.id).status == "running"
