"""The job queue's database, ``data/jobs.sqlite3`` (the seed's TaskRegistry), shared by all
processes.

SQLite in WAL mode with a busy timeout: several processes (the GUI, the API server, the command
line) add and re-advise jobs at once without losing any. Every change is one transaction
(``BEGIN IMMEDIATE``), so an import of a summary adds all its jobs or none. A decision is only
replaced when the job still holds the decision the caller read (compare-and-set), so two
processes re-advising at once record each change once. The audit trail (``job_events``) is kept
append-only by the database itself (triggers refuse UPDATE and DELETE). What a job is:
``core/jobs.py``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from comfyvn_gui.core.errors import ConflictError, InputError, NotFoundError, OperationError
from comfyvn_gui.core.jobs import (
    IN_FLIGHT,
    MAX_JOB_ID,
    ComputeDecision,
    DecisionChange,
    Job,
    JobEvent,
    NewJob,
    advice_detail,
    instant,
    now_iso,
)
from comfyvn_gui.core.workload import Workload

from .paths import Home

__all__ = ["JobStore", "LeaseLost"]


class LeaseLost(Exception):
    """Another driver holds this job's lease now: this one must leave the job alone."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id}: another dispatch driver has taken it over")
        self.job_id = job_id


SCHEMA_VERSION = 2


def _no_job(job_id: int) -> NotFoundError:
    return NotFoundError(
        f"no job {job_id} in the queue (`comfyvn-gui jobs list` shows them)", fields=["id"]
    )


BUSY_TIMEOUT_S = 30.0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    workload    TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '{}',
    meta        TEXT NOT NULL DEFAULT '{}',
    provider    TEXT,
    decided_by  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_updated ON jobs(updated_at);
CREATE TABLE IF NOT EXISTS job_events (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id    INTEGER NOT NULL,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    provider  TEXT,
    previous  TEXT,
    message   TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS job_events_job ON job_events(job_id, seq);
CREATE TRIGGER IF NOT EXISTS job_events_no_update BEFORE UPDATE ON job_events
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS job_events_no_delete BEFORE DELETE ON job_events
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TABLE IF NOT EXISTS leases (
    job_id      INTEGER PRIMARY KEY,
    owner       TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    expires_at  REAL NOT NULL
);
"""

#: Schema 1 -> 2: the trail outlives its job (``jobs remove`` deletes the job, never its
#: trail), so ``job_events.job_id`` no longer references ``jobs``; the rows are copied as they
#: are (DROP TABLE fires no trigger). Leases (the dispatch driver's) are new.
_MIGRATE_1_TO_2 = """
ALTER TABLE job_events RENAME TO job_events_v1;
DROP INDEX IF EXISTS job_events_job;
CREATE TABLE job_events (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id    INTEGER NOT NULL,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    provider  TEXT,
    previous  TEXT,
    message   TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO job_events SELECT * FROM job_events_v1;
DROP TABLE job_events_v1;
"""


#: The columns a job is made of, but ``meta`` (a brief read selects a trimmed one).
_COLUMNS = "id, title, kind, status, workload, source, created_at, updated_at"


class JobStore:
    """``data/jobs.sqlite3``: jobs and their append-only audit trail."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.path = home.jobs_file
        self._local = threading.local()
        self._ready = False

    # -- connection ------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.exists()

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        self.home.ensure()
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            if not self._ready:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise OperationError(
                        f"{self.path} was written by a newer comfyvn-gui (schema {version}); "
                        "update comfyvn-gui to open it"
                    )
                if version == 1:
                    self._migrate(conn)
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._ready = True
        except sqlite3.DatabaseError as exc:
            raise OperationError(
                f"the job queue {self.path} cannot be opened ({exc}); move it aside to start "
                "an empty queue"
            ) from None
        self._local.conn = conn
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Schema 1 -> 2 in one transaction (another process migrating first is waited for:
        the version is read again under the write lock)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] == 1:
                for statement in _MIGRATE_1_TO_2.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("PRAGMA user_version = 2")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise OperationError(f"the job queue is busy ({exc}); try again") from None
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    # -- reading ---------------------------------------------------------------------------

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:  # (reads the columns of _COLUMNS and meta)
        return Job(
            id=row["id"],
            title=row["title"],
            kind=row["kind"],
            status=row["status"],
            workload=Workload.model_validate_json(row["workload"]),
            source=json.loads(row["source"]),
            meta=json.loads(row["meta"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def select(self, *, status: Sequence[str] | None = None, brief: bool = False) -> list[Job]:
        """The jobs (with one of ``status``) in id order. ``brief``: each decision's advice
        without its ``alternatives`` (removed by SQLite before Python parses anything): about
        85 % of a job's stored advice with 50 providers, and of the time and memory a list
        of 10,000 jobs takes; :meth:`get` reads a job whole."""
        return list(self.iter_select(status=status, brief=brief))

    def iter_select(
        self,
        *,
        status: Sequence[str] | None = None,
        brief: bool = False,
        changed_since: str | None = None,
    ) -> Iterator[Job]:
        """:meth:`select`, one job at a time (read in batches, in the calling thread): a
        caller that keeps little of each job never holds all of them at once.
        ``changed_since`` (an ISO time as ``updated_at`` holds it): only the jobs written at
        or after it."""
        if not self.exists():
            return
        conn = self._connect()
        columns = (
            f"{_COLUMNS}, json_remove(meta, '$.compute.advice.alternatives') AS meta"
            if brief
            else "*"
        )
        where: list[str] = []
        params: list[Any] = []
        if status:
            where.append(f"status IN ({','.join('?' * len(status))})")
            params += list(status)
        if changed_since is not None:
            where.append("updated_at >= ?")
            params.append(changed_since)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        cursor = conn.execute(f"SELECT {columns} FROM jobs{clause} ORDER BY id", tuple(params))
        try:
            while batch := cursor.fetchmany(256):
                for row in batch:
                    yield self._job(row)
        finally:
            cursor.close()

    def get(self, job_id: int) -> Job:
        row = None
        if self.exists() and 1 <= job_id <= MAX_JOB_ID:
            row = self._connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise _no_job(job_id)
        return self._job(row)

    def events(self, job_id: int) -> list[JobEvent]:
        if not self.exists() or not 1 <= job_id <= MAX_JOB_ID:
            return []
        rows = (
            self._connect()
            .execute("SELECT * FROM job_events WHERE job_id = ? ORDER BY seq", (job_id,))
            .fetchall()
        )
        return [
            JobEvent(
                seq=r["seq"],
                job_id=r["job_id"],
                at=r["at"],
                actor=r["actor"],
                action=r["action"],
                provider=r["provider"],
                previous=r["previous"],
                message=r["message"],
                detail=json.loads(r["detail"]),
            )
            for r in rows
        ]

    def ids(self) -> list[int]:
        """Every job's id, in id order (the queue's order)."""
        if not self.exists():
            return []
        return [int(r[0]) for r in self._connect().execute("SELECT id FROM jobs ORDER BY id")]

    def ids_digest(self) -> tuple[int, int, int]:
        """:func:`comfyvn_gui.core.jobs.ids_digest` of the queue's ids, worked out by SQLite
        (no id is read): whether a job was added or removed since a reader took its ids
        (AUTOINCREMENT ids are never reused: an added job raises the highest id for good)."""
        if not self.exists():
            return (0, 0, 0)
        n, top, total = (
            self._connect()
            .execute("SELECT count(*), coalesce(max(id), 0), coalesce(sum(id), 0) FROM jobs")
            .fetchone()
        )
        return (int(n), int(top), int(total))

    def count(self, status: Sequence[str] | None = None) -> int:
        """How many jobs (with one of ``status``), counted by SQLite: no job is read."""
        if not self.exists():
            return 0
        conn = self._connect()
        if status:
            marks = ",".join("?" * len(status))
            sql = f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})"
            return int(conn.execute(sql, tuple(status)).fetchone()[0])
        return int(conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])

    def providers(self, status: Sequence[str]) -> dict[int, str | None]:
        """Each job's (with one of ``status``) current provider, by id: one column read."""
        if not self.exists() or not status:
            return {}
        marks = ",".join("?" * len(status))
        rows = self._connect().execute(
            f"SELECT id, provider FROM jobs WHERE status IN ({marks}) ORDER BY id", tuple(status)
        )
        return {int(r[0]): r[1] for r in rows}

    # -- writing ---------------------------------------------------------------------------

    def unreleased(self) -> dict[int, str | None]:
        """Ended jobs whose rented machine was not released (a release that failed, retried
        by the driver until it succeeds): job id -> provider. Read by SQLite's JSON functions:
        no job is parsed."""
        if not self.exists():
            return {}
        rows = self._connect().execute(
            "SELECT id, provider FROM jobs WHERE status IN ('completed', 'failed', 'cancelled') "
            "AND json_extract(meta, '$.dispatch.machine.launched_at') IS NOT NULL "
            "AND json_extract(meta, '$.dispatch.machine.released_at') IS NULL ORDER BY id"
        )
        return {int(r[0]): r[1] for r in rows}

    def write_release(self, job_id: int, machine: dict[str, Any], message: str) -> Job:
        """Record a release the driver retried after the job ended (only the driver, which
        holds the home's driver lock, writes ended jobs' machines)."""
        with self._write() as conn:
            row = conn.execute("SELECT meta, provider FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise LeaseLost(job_id)
            meta = json.loads(row["meta"])
            dispatch = meta.get("dispatch") or {}
            dispatch["machine"] = machine
            meta["dispatch"] = dispatch
            conn.execute(
                "UPDATE jobs SET meta = ?, updated_at = ? WHERE id = ?",
                (json.dumps(meta), now_iso(), job_id),
            )
            detail = {"id": machine.get("id"), "ok": bool(machine.get("released_at"))}
            self._event(conn, job_id, "driver", "release", row["provider"], None, message, detail)
        return self.get(job_id)

    def add(self, jobs: Sequence[NewJob], *, actor: str = "user") -> list[Job]:
        """Add every job, each with its first decision and audit lines, or none of them."""
        if not jobs:
            raise InputError("nothing to add: no jobs were given")
        ids: list[int] = []
        with self._write() as conn:
            for new in jobs:
                at = now_iso()
                workload = new.workload.model_dump_json(exclude_none=True)
                meta = json.dumps({"compute": new.decision.model_dump(mode="json")})
                cur = conn.execute(
                    "INSERT INTO jobs (title, kind, status, workload, source, meta, provider, "
                    "decided_by, created_at, updated_at) "
                    "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                    (
                        new.title,
                        new.workload.kind,
                        workload,
                        json.dumps(new.source),
                        meta,
                        new.decision.provider,
                        new.decision.decided_by,
                        at,
                        at,
                    ),
                )
                job_id = int(cur.lastrowid or 0)
                ids.append(job_id)
                self._event(conn, job_id, actor, "created", None, None, f"queued: {new.title}", {})
                self._event(
                    conn,
                    job_id,
                    "advisor",
                    "decided",
                    new.decision.provider,
                    None,
                    new.message,
                    advice_detail(new.decision.advice),
                )
        return [self.get(i) for i in ids]

    def apply(self, changes: Sequence[DecisionChange]) -> list[DecisionChange]:
        """Replace decisions in one transaction; returns the changes applied (a job whose
        decision another process changed meanwhile, or that left the queue, is skipped)."""
        applied: list[DecisionChange] = []
        if not changes:
            return applied
        with self._write() as conn:
            for ch in changes:
                row = conn.execute(
                    "SELECT provider, decided_by, status, meta FROM jobs WHERE id = ?",
                    (ch.job_id,),
                ).fetchone()
                if row is None or row["status"] != "queued":
                    continue
                if (row["provider"], row["decided_by"]) != (ch.expected, ch.expected_by):
                    continue
                meta = json.loads(row["meta"])
                meta["compute"] = ch.decision.model_dump(mode="json")
                conn.execute(
                    "UPDATE jobs SET meta = ?, provider = ?, decided_by = ?, updated_at = ? "
                    "WHERE id = ?",
                    (
                        json.dumps(meta),
                        ch.decision.provider,
                        ch.decision.decided_by,
                        now_iso(),
                        ch.job_id,
                    ),
                )
                if ch.action:
                    self._event(
                        conn,
                        ch.job_id,
                        ch.actor,
                        ch.action,
                        ch.decision.provider,
                        ch.expected,
                        ch.message,
                        ch.detail,
                    )
                applied.append(ch)
        return applied

    def change_status(
        self,
        job_id: int,
        *,
        expected: Sequence[str],
        status: str,
        actor: str,
        message: str,
        decision: ComputeDecision | None = None,
        decision_message: str = "",
    ) -> Job | None:
        """Move a job from one of the ``expected`` statuses to ``status`` (with a new
        decision, if given) in one transaction, with its audit lines; None if the job is not
        in an expected status (another process moved it meanwhile). NotFoundError if none."""
        with self._write() as conn:
            row = None
            if 1 <= job_id <= MAX_JOB_ID:
                row = conn.execute(
                    "SELECT status, meta, provider FROM jobs WHERE id = ?", (job_id,)
                ).fetchone()
            if row is None:
                raise _no_job(job_id)
            if row["status"] not in expected:
                return None
            meta = json.loads(row["meta"])
            provider = row["provider"]
            decided_by = meta.get("compute", {}).get("decided_by")
            if decision is not None:
                meta["compute"] = decision.model_dump(mode="json")
                provider, decided_by = decision.provider, decision.decided_by
            conn.execute(
                "UPDATE jobs SET status = ?, meta = ?, provider = ?, decided_by = ?, "
                "updated_at = ? WHERE id = ?",
                (status, json.dumps(meta), provider, decided_by, now_iso(), job_id),
            )
            self._event(
                conn, job_id, actor, "status", provider, row["status"], message, {"to": status}
            )
            if decision is not None:
                self._event(
                    conn,
                    job_id,
                    "advisor",
                    "decided",
                    decision.provider,
                    row["provider"],
                    decision_message,
                    advice_detail(decision.advice),
                )
        return self.get(job_id)

    def remove(self, job_id: int, *, actor: str = "user") -> Job:
        """Delete a queued or ended job (``jobs remove``); its trail is kept, with a last
        ``removed`` line. ConflictError for a job in flight; NotFoundError for none."""
        with self._write() as conn:
            row = None
            if 1 <= job_id <= MAX_JOB_ID:
                row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise _no_job(job_id)
            job = self._job(row)
            if job.status in IN_FLIGHT:
                raise ConflictError(
                    f"job {job_id} is {job.status}: cancel it first "
                    f"(`comfyvn-gui jobs cancel {job_id}`), then remove it",
                    fields=["id"],
                )
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            conn.execute("DELETE FROM leases WHERE job_id = ?", (job_id,))
            self._event(
                conn,
                job_id,
                actor,
                "removed",
                row["provider"],
                job.status,
                f"removed from the queue (it was {job.status}); its outputs stay on disk",
                {},
            )
        return job

    # -- dispatch: the driver's leases and the job's dispatch record -----------------------

    def begin_dispatch(
        self,
        job_id: int,
        *,
        provider: str,
        decided_at: str,
        dispatch: dict[str, Any],
        actor: str,
        message: str,
        detail: dict[str, Any],
    ) -> Job | None:
        """queued -> submitting with ``meta.dispatch``, only if the job is still queued for
        ``provider`` under the decision made at ``decided_at`` (compare-and-set: a re-advice
        in between voids the user's acknowledgement); None otherwise."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT status, meta, provider FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None or row["status"] != "queued" or row["provider"] != provider:
                return None
            meta = json.loads(row["meta"])
            compute = meta.get("compute") or {}
            seen = instant(decided_at)
            if seen is None or instant(compute.get("decided_at")) != seen:
                return None
            meta["dispatch"] = dispatch
            conn.execute(
                "UPDATE jobs SET status = 'submitting', meta = ?, updated_at = ? WHERE id = ?",
                (json.dumps(meta), now_iso(), job_id),
            )
            self._event(conn, job_id, actor, "dispatched", provider, "queued", message, detail)
            self._event(
                conn,
                job_id,
                actor,
                "status",
                provider,
                "queued",
                "submitting: the dispatch driver takes it from here",
                {"to": "submitting"},
            )
        return self.get(job_id)

    def request_cancel(self, job_id: int, *, actor: str, interface: str) -> Job | None:
        """Ask the driver to cancel a job in flight (``meta.dispatch.cancel_requested``);
        None if the job is not in flight any more (it ended meanwhile)."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT status, meta, provider FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None or row["status"] not in IN_FLIGHT:
                return None
            meta = json.loads(row["meta"])
            dispatch = meta.setdefault("dispatch", {})
            if not dispatch.get("cancel_requested"):
                dispatch["cancel_requested"] = {"at": now_iso(), "by": interface}
                conn.execute(
                    "UPDATE jobs SET meta = ?, updated_at = ? WHERE id = ?",
                    (json.dumps(meta), now_iso(), job_id),
                )
                self._event(
                    conn,
                    job_id,
                    actor,
                    "cancel_requested",
                    row["provider"],
                    row["status"],
                    f"cancel asked for ({interface}); the driver stops the job",
                    {"interface": interface},
                )
        return self.get(job_id)

    def claim(
        self, owner: str, *, now: float, lease_s: float, takeover: bool = False
    ) -> list[tuple[int, int]]:
        """Take the lease of every job in flight that no driver holds (none yet, or expired;
        ``takeover``: any other owner's, for the driver that holds the home's driver lock,
        which proves every other driver gone): its generation goes up by one. Returns (job
        id, generation) of each job taken."""
        taken: list[tuple[int, int]] = []
        if not self.exists():
            return taken
        with self._write() as conn:
            rows = conn.execute(
                "SELECT j.id, l.owner, l.generation, l.expires_at FROM jobs j "
                "LEFT JOIN leases l ON l.job_id = j.id "
                "WHERE j.status IN ('submitting', 'running') ORDER BY j.id"
            ).fetchall()
            for r in rows:
                live = r["owner"] is not None and r["expires_at"] > now
                if live and (r["owner"] == owner or not takeover):
                    continue
                generation = int(r["generation"] or 0) + 1
                conn.execute(
                    "INSERT INTO leases (job_id, owner, generation, expires_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET "
                    "owner = excluded.owner, generation = excluded.generation, "
                    "expires_at = excluded.expires_at",
                    (r["id"], owner, generation, now + lease_s),
                )
                taken.append((int(r["id"]), generation))
        return taken

    def renew(self, owner: str, held: Mapping[int, int], *, now: float, lease_s: float) -> set[int]:
        """Renew the leases ``held`` (job id -> generation); returns the jobs whose lease
        another driver took meanwhile (their generation is no longer this one's)."""
        lost: set[int] = set()
        if not held:
            return lost
        with self._write() as conn:
            for job_id, generation in held.items():
                cur = conn.execute(
                    "UPDATE leases SET expires_at = ? "
                    "WHERE job_id = ? AND owner = ? AND generation = ?",
                    (now + lease_s, job_id, owner, generation),
                )
                if cur.rowcount != 1:
                    lost.add(job_id)
        return lost

    def drop_lease(self, job_id: int, owner: str, generation: int) -> None:
        """Give a lease up at once (the driver stops: another may take the job now)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE leases SET expires_at = 0 WHERE job_id = ? AND owner = ? "
                "AND generation = ?",
                (job_id, owner, generation),
            )

    def lease(self, job_id: int) -> tuple[str, int, float] | None:
        """(owner, generation, expires_at) of a job's lease, if it ever had one."""
        if not self.exists():
            return None
        row = (
            self._connect()
            .execute("SELECT owner, generation, expires_at FROM leases WHERE job_id = ?", (job_id,))
            .fetchone()
        )
        return None if row is None else (row[0], int(row[1]), float(row[2]))

    def write_dispatch(
        self,
        job_id: int,
        lease: tuple[str, int],
        dispatch: dict[str, Any],
        *,
        status: str | None = None,
        message: str = "",
        events: Sequence[tuple[str, str, dict[str, Any]]] = (),
    ) -> Job:
        """The driver's write: ``meta.dispatch`` (and a new ``status``, with its trail line,
        and any other trail ``events`` (action, message, detail)), only while ``lease``
        (owner, generation) is the job's; :class:`LeaseLost` otherwise: another driver has
        the job now, and this one must leave it alone."""
        owner, generation = lease
        with self._write() as conn:
            held = conn.execute(
                "SELECT 1 FROM leases WHERE job_id = ? AND owner = ? AND generation = ?",
                (job_id, owner, generation),
            ).fetchone()
            row = conn.execute(
                "SELECT status, meta, provider FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if held is None or row is None:
                raise LeaseLost(job_id)
            meta = json.loads(row["meta"])
            old = meta.get("dispatch") or {}
            if old.get("cancel_requested") and not dispatch.get("cancel_requested"):
                dispatch = {**dispatch, "cancel_requested": old["cancel_requested"]}
            meta["dispatch"] = dispatch
            new_status = status or row["status"]
            conn.execute(
                "UPDATE jobs SET status = ?, meta = ?, updated_at = ? WHERE id = ?",
                (new_status, json.dumps(meta), now_iso(), job_id),
            )
            for action, text, detail in events:
                self._event(conn, job_id, "driver", action, row["provider"], None, text, detail)
            if status is not None and status != row["status"]:
                self._event(
                    conn,
                    job_id,
                    "driver",
                    "status",
                    row["provider"],
                    row["status"],
                    message or status,
                    {"to": status},
                )
        return self.get(job_id)

    @staticmethod
    def _event(
        conn: sqlite3.Connection,
        job_id: int,
        actor: str,
        action: str,
        provider: str | None,
        previous: str | None,
        message: str,
        detail: dict[str, Any],
    ) -> None:
        conn.execute(
            "INSERT INTO job_events (job_id, at, actor, action, provider, previous, message, "
            "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, now_iso(), actor, action, provider, previous, message, json.dumps(detail)),
        )
