"""The job queue: jobs added and imported from summaries, each advised; the audit trail;
re-advice when a provider's health changes (a real health check against the RunPod contract
fake); the user's pick; compute_advisor.log; two processes adding at once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.catalog import resources_dir
from comfyvn_gui.service import Service
from comfyvn_gui.store.audit import read_events
from comfyvn_gui.store.paths import resolve_home
from tests.cli.test_cli import cli
from tests.fakes.http import arun
from tests.fakes.runpod import RunPodFake, health_body

pytestmark = pytest.mark.usefixtures("secret_service")

SUMMARIES = resources_dir() / "examples" / "summaries"
HEALTHY = health_body(idle=2, running=1)
CRASHED = health_body(unhealthy=3, in_queue=1)


@pytest.fixture
def svc(app_home: Path) -> Service:
    return Service(resolve_home())


@pytest.fixture
def runpod() -> Any:
    with RunPodFake(endpoints={"ep-a": HEALTHY, "ep-b": HEALTHY}) as fake:
        yield fake


def add_runpod(svc: Service, fake: RunPodFake, pid: str, endpoint: str, **extra: Any) -> None:
    svc.create_provider("runpod", fake.provider(pid, endpoint=endpoint, **extra))


def check(svc: Service, kind: str, *ids: str) -> list[Any]:
    return arun(svc.check(kind, list(ids), timeout_s=10))  # type: ignore[arg-type]


def two_runpods(svc: Service, fake: RunPodFake) -> None:
    """runpod-a: an A10G at $0.40/hr; runpod-b: an A100 80GB at $2.00/hr. Both validated and
    healthy (real checks against the fake)."""
    add_runpod(svc, fake, "runpod-a", "ep-a", meta={"hourly_usd": 0.40})
    add_runpod(svc, fake, "runpod-b", "ep-b", gpu="A100 80GB", meta={"hourly_usd": 2.0})
    validated = check(svc, "validate", "runpod-a", "runpod-b")
    assert [r.status for r in validated] == ["valid"] * 2, [r.message for r in validated]
    healthy = check(svc, "health", "runpod-a", "runpod-b")
    assert [r.status for r in healthy] == ["healthy"] * 2, [r.message for r in healthy]


def job_events(svc: Service, event: str) -> list[dict[str, Any]]:
    return [e for e in read_events(svc.home) if e.get("event") == event]


# --------------------------------------------------------------------------- add, list, show


def test_add_list_show_from_the_command_line(
    capsys: pytest.CaptureFixture[str], svc: Service, runpod: RunPodFake
) -> None:
    two_runpods(svc, runpod)
    workload = {
        "title": "Chapter 1 backgrounds",
        "kind": "cg_super_res",
        "items": 40,
        "width": 2048,
        "height": 2048,
        "licenses": {"non_open_source": True},
    }
    code, out, err = cli(capsys, "jobs", "add", "-", "--json", stdin=json.dumps(workload))
    assert code == 0, err
    [job] = json.loads(out)
    assert job["status"] == "queued" and job["title"] == "Chapter 1 backgrounds"
    compute = job["meta"]["compute"]
    assert compute["provider"] == "runpod-a" and compute["decided_by"] == "advisor"
    assert compute["advice"]["requirements"]["vram_gb"] == 12

    code, out, _ = cli(capsys, "jobs", "list")
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("1 "))
    assert "Chapter 1 backgrounds" in line and "runpod-a" in line
    assert compute["advice"]["estimated_cost"] in line
    assert "data_leaves_machine" in line and "non_open_source_assets" in line

    rows = json.loads(cli(capsys, "jobs", "list", "--json")[1])
    assert rows[0]["provider"] == "runpod-a" and rows[0]["estimated_cost_usd"] > 0

    code, out, _ = cli(capsys, "jobs", "show", "1")
    assert code == 0
    assert "provider:  runpod-a (decided by the advisor" in out
    assert "ALTERNATIVE" in out and "runpod-b" in out
    trail = out.split("audit trail:")[1]
    assert "created" in trail and "queued: Chapter 1 backgrounds" in trail
    assert "decided" in trail and "assigned to runpod-a" in trail

    shown = json.loads(cli(capsys, "jobs", "show", "1", "--json")[1])
    assert [e["action"] for e in shown["events"]] == ["created", "decided"]
    # The assignment is a line of compute_advisor.log.
    [logged] = job_events(svc, "job.assigned")
    assert (logged["job"], logged["provider"], logged["decided_by"]) == (1, "runpod-a", "advisor")


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"kind": "cg_super_res", "items": -4}, "items", "greater than or equal to 1"),
        ({"kind": "upscale_everything"}, "kind", "Input should be"),
        ({"items": 3}, "kind", "required field is missing"),
        ({"kind": "voice_synthesis", "audio_seconds": 1e300}, "audio_seconds", "less than"),
        ({"kind": "translation", "characters": "lots"}, "characters", "valid integer"),
        ([1, 2], "kind", "JSON workload object"),
    ],
)
def test_bad_workloads_add_nothing(
    capsys: pytest.CaptureFixture[str], svc: Service, payload: Any, field: str, words: str
) -> None:
    code, out, err = cli(capsys, "jobs", "add", "-", "--json", stdin=json.dumps(payload))
    assert code == 2, (out, err)
    error = json.loads(out)["error"]
    assert field in error["fields"] and words in error["message"]
    assert svc.list_jobs() == []


def test_broken_json_adds_nothing(capsys: pytest.CaptureFixture[str], svc: Service) -> None:
    code, _, err = cli(capsys, "jobs", "add", "-", stdin='{"kind": "cg_bake",')
    assert code == 2 and "not valid JSON" in err
    code, _, err = cli(capsys, "jobs", "import-summary", "-", stdin="{")
    assert code == 2 and "import summary" in err and "not valid JSON" in err
    assert svc.list_jobs() == []
    code, _, err = cli(capsys, "jobs", "show", "7")
    assert code == 2 and "no job 7" in err


# --------------------------------------------------------------------------- re-advice


def test_a_provider_turning_unhealthy_readvises_exactly_the_affected_jobs(
    svc: Service, runpod: RunPodFake
) -> None:
    two_runpods(svc, runpod)
    a = svc.add_job(
        {
            "title": "A: backgrounds",
            "kind": "cg_super_res",
            "items": 40,
            "width": 2048,
            "height": 2048,
        }
    )
    b = svc.add_job({"title": "B: big bake", "kind": "cg_bake", "vram_gb": 60, "gpu_hours": 2})
    c = svc.add_job({"title": "C: voices", "kind": "voice_synthesis", "audio_seconds": 900})
    assert [j.compute.provider for j in (a, b, c)] == ["runpod-a", "runpod-b", "runpod-a"]

    runpod.add_endpoint("ep-a", CRASHED)
    [health] = check(svc, "health", "runpod-a")
    assert health.status == "unhealthy"

    jobs = {j.id: j for j in svc.list_jobs()}
    assert jobs[a.id].compute.provider == "runpod-b"
    assert jobs[c.id].compute.provider == "runpod-b"
    assert jobs[b.id].compute.provider == "runpod-b"
    assert jobs[b.id].compute.decided_at == b.compute.decided_at  # B's decision did not change
    # Recorded in each affected job's trail, once, with the reason.
    for job in (a, c):
        [line] = [e for e in svc.job_events(job.id) if e.action == "re-advised"]
        assert line.message.startswith(
            "re-advised: runpod-a -> runpod-b because runpod-a is "
            "excluded: unhealthy at its last health check"
        )
        assert "(after runpod-a turned unhealthy)" in line.message
        assert line.previous == "runpod-a" and line.provider == "runpod-b"
    assert [e.action for e in svc.job_events(b.id)] == ["created", "decided"]
    # ... and logged once each.
    logged = job_events(svc, "job.reassigned")
    assert sorted(e["job"] for e in logged) == [a.id, c.id]
    assert all(e["previous"] == "runpod-a" and e["provider"] == "runpod-b" for e in logged)

    # Still unhealthy at the next check: nothing changes, nothing is recorded again.
    check(svc, "health", "runpod-a")
    assert len(job_events(svc, "job.reassigned")) == 2
    # Healthy again: A and C go back to the cheaper provider, recorded and logged.
    runpod.add_endpoint("ep-a", HEALTHY)
    check(svc, "health", "runpod-a")
    assert {j.id: j.compute.provider for j in svc.list_jobs()} == {
        a.id: "runpod-a",
        b.id: "runpod-b",
        c.id: "runpod-a",
    }
    back = [e for e in job_events(svc, "job.reassigned") if e["provider"] == "runpod-a"]
    assert sorted(e["job"] for e in back) == [a.id, c.id]


def test_registry_and_settings_changes_readvise(svc: Service, runpod: RunPodFake) -> None:
    two_runpods(svc, runpod)
    job = svc.add_job({"kind": "cg_remix", "vram_gb": 10, "gpu_hours": 1})
    assert job.compute.provider == "runpod-a"
    svc.set_setting("advisor.budget_usd", 0.3)  # runpod-a costs ~$0.40
    assert svc.get_job(job.id).compute.provider is None
    [line] = [e for e in svc.job_events(job.id) if e.action == "re-advised"]
    assert "over budget" in line.message and "advisor.budget_usd was set to 0.3" in line.message
    svc.unset_setting("advisor.budget_usd")
    assert svc.get_job(job.id).compute.provider == "runpod-a"
    svc.remove_provider("runpod-a")
    assert svc.get_job(job.id).compute.provider == "runpod-b"
    last = svc.job_events(job.id)[-1]
    assert "runpod-a is no longer registered" in last.message
    assert "runpod-a was removed" in last.message


def test_user_pick_is_kept_until_the_user_changes_it_or_it_becomes_ineligible(
    capsys: pytest.CaptureFixture[str], svc: Service, runpod: RunPodFake
) -> None:
    two_runpods(svc, runpod)
    job = svc.add_job({"kind": "cg_remix", "vram_gb": 10, "gpu_hours": 1})
    assert job.compute.provider == "runpod-a"
    code, out, err = cli(capsys, "jobs", "pick", str(job.id), "runpod-b")
    assert code == 0, err
    assert "runs on runpod-b (decided by you)" in out
    picked = svc.get_job(job.id).compute
    assert (picked.provider, picked.decided_by) == ("runpod-b", "user")
    [line] = [e for e in svc.job_events(job.id) if e.action == "picked"]
    assert line.actor == "user" and line.message.startswith("you picked runpod-b")
    [logged] = job_events(svc, "job.picked")
    assert (logged["provider"], logged["decided_by"]) == ("runpod-b", "user")

    # Re-advice keeps the pick although runpod-a is cheaper.
    assert svc.readvise("test") == []
    assert svc.get_job(job.id).compute.decided_by == "user"
    # A pick that cannot run the job is refused and changes nothing.
    code, _, err = cli(capsys, "jobs", "pick", str(job.id), "local")
    assert code == 2 and "local cannot run job" in err and "no local GPU" in err
    assert svc.get_job(job.id).compute.provider == "runpod-b"
    # The picked provider turns unhealthy: the advisor takes over, and says so.
    runpod.add_endpoint("ep-b", CRASHED)
    check(svc, "health", "runpod-b")
    now = svc.get_job(job.id).compute
    assert (now.provider, now.decided_by) == ("runpod-a", "advisor")
    [dropped] = [e for e in svc.job_events(job.id) if e.action == "pick_dropped"]
    assert dropped.message.startswith(
        "your pick runpod-b can no longer run this job (unhealthy at its last health check)"
    )
    # Back to the advisor explicitly.
    runpod.add_endpoint("ep-b", HEALTHY)
    check(svc, "health", "runpod-b")
    svc.pick_provider(job.id, "runpod-b")
    code, out, err = cli(capsys, "jobs", "pick", str(job.id), "--advisor")
    assert code == 0 and "runs on runpod-a (decided by the advisor)" in out


def test_the_audit_trail_is_append_only(svc: Service) -> None:
    job = svc.add_job({"kind": "translation", "characters": 5000})
    db = sqlite3.connect(svc.home.data_dir / "jobs.sqlite3")
    try:
        for statement in ("UPDATE job_events SET message = 'x'", "DELETE FROM job_events"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(statement)
    finally:
        db.close()
    assert len(svc.job_events(job.id)) == 2


# --------------------------------------------------------------------------- concurrency

ADDER = textwrap.dedent(
    """
    import sys
    from comfyvn_gui.service import Service
    svc = Service()
    for i in range(int(sys.argv[2])):
        svc.add_job({"title": f"{sys.argv[1]}-{i}", "kind": "translation", "characters": 1000 + i})
    """
)


def test_two_processes_adding_at_once_lose_no_job(svc: Service, app_home: Path) -> None:
    svc.add_job({"kind": "translation", "characters": 10})  # the database exists
    env = {**os.environ, "COMFYVN_GUI_HOME": str(app_home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ADDER, name, "40"], env=env, stderr=subprocess.PIPE, text=True
        )
        for name in ("left", "right")
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    jobs = svc.list_jobs()
    titles = {j.title for j in jobs}
    assert len(jobs) == 81
    assert {f"{side}-{i}" for side in ("left", "right") for i in range(40)} <= titles
    assert len({j.id for j in jobs}) == 81
    for j in jobs:
        assert [e.action for e in svc.job_events(j.id)] == ["created", "decided"]
    assert len(job_events(svc, "job.assigned")) == 81


# --------------------------------------------------------------------------- summaries


def test_a_sample_summary_imports_into_advised_jobs(
    capsys: pytest.CaptureFixture[str], svc: Service, runpod: RunPodFake
) -> None:
    two_runpods(svc, runpod)
    path = SUMMARIES / "moonlit-academy.json"
    code, out, err = cli(capsys, "jobs", "import-summary", str(path), "--json")
    assert code == 0, err
    jobs = json.loads(out)
    assert [j["kind"] for j in jobs] == [
        "cg_super_res",
        "sprite_generation",
        "voice_synthesis",
        "comfyui_workflow",
        "translation",
    ]
    assert all(j["title"].startswith("Moonlit Academy — ") for j in jobs)
    assert all(j["workload"]["residency"] == ["eu"] for j in jobs)  # the project's tag
    rows = {r["kind"]: r for r in json.loads(cli(capsys, "jobs", "list", "--json")[1])}
    for row in rows.values():
        assert row["provider"] == "runpod-a", row
        assert {"data_leaves_machine", "residency"} <= set(row["warnings"])
        assert row["estimated_cost_usd"] > 0
    assert "non_open_source_assets" in rows["cg_super_res"]["warnings"]
    assert "dpia" in rows["voice_synthesis"]["warnings"]
    show = json.loads(cli(capsys, "jobs", "show", str(jobs[3]["id"]), "--json")[1])
    assert show["source"]["project"] == "Moonlit Academy"
    assert show["source"]["unit"] == "workflows[0]"
    advice = show["meta"]["compute"]["advice"]
    assert advice["requirements"]["graph"]["upscale_factor"] is not None
    assert len(job_events(svc, "job.assigned")) == 5


def test_a_summary_with_one_bad_unit_adds_nothing(
    capsys: pytest.CaptureFixture[str], svc: Service, tmp_path: Path
) -> None:
    data = json.loads((SUMMARIES / "moonlit-academy.json").read_text("utf-8"))
    data["translations"][-1]["target_languages"] = []
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), "utf-8")
    code, out, err = cli(capsys, "jobs", "import-summary", str(bad), "--json")
    assert code == 2, (out, err)
    error = json.loads(out)["error"]
    assert any(f.startswith("translations.") for f in error["fields"]), error
    assert svc.list_jobs() == [] and job_events(svc, "job.assigned") == []
    for change, words in (
        (lambda d: d.pop("format"), "format"),
        (lambda d: d["assets"][0].update(width=-5), "assets.0.width"),
        (lambda d: d["tasks"][0].update(kind="paint"), "tasks.0.kind"),
        (lambda d: d["tasks"][1].update(assets=["cg/nope.png"]), "cg/nope.png"),
    ):
        data = json.loads((SUMMARIES / "moonlit-academy.json").read_text("utf-8"))
        change(data)
        code, _, err = cli(capsys, "jobs", "import-summary", "-", stdin=json.dumps(data))
        assert code == 2 and words in err, err
    assert svc.list_jobs() == []


@pytest.mark.parametrize("name", ["moonlit-academy.json", "indie-demo.json", "voice-pack-uk.json"])
def test_every_sample_imports(svc: Service, name: str) -> None:
    data = json.loads((SUMMARIES / name).read_text("utf-8"))
    jobs = svc.import_summary(data)
    assert jobs and all(j.compute is not None for j in jobs)
    assert len(svc.list_jobs()) == len(jobs)


def test_the_app_re_advises_in_a_child_process(svc: Service, runpod: RunPodFake) -> None:
    """The desktop app's mode: re-advice runs as `comfyvn-gui jobs readvise` in a child
    process (its CPU work would stall the window's GIL), recorded as usual."""
    two_runpods(svc, runpod)
    job = svc.add_job({"kind": "cg_remix", "vram_gb": 10, "gpu_hours": 1})
    assert job.compute.provider == "runpod-a"
    app = Service(resolve_home())
    app.readvise_in_subprocess = True
    app.set_setting("advisor.budget_usd", 0.3)  # returns at once; the child re-advises
    app.close()  # waits for the child
    assert svc.get_job(job.id).compute.provider is None
    [line] = [e for e in svc.job_events(job.id) if e.action == "re-advised"]
    assert "over budget" in line.message and "advisor.budget_usd was set to 0.3" in line.message


def test_counting_and_the_providers_of_queued_jobs_read_no_job(
    svc: Service, runpod: RunPodFake
) -> None:
    """The Advisor tab counts the queue and notes each queued job's provider with one SQL
    query each (it read every job to do that); the answers are those of the full read."""
    import sqlite3

    two_runpods(svc, runpod)
    jobs = [svc.add_job({"kind": "cg_remix", "vram_gb": 10, "gpu_hours": 1}) for _ in range(4)]
    jobs.append(svc.add_job({"kind": "translation", "items": 3}))
    svc.pick_provider(jobs[1].id, "runpod-b")
    with sqlite3.connect(svc.job_store.path) as conn:  # a job that has ended (dispatch sets it)
        conn.execute("UPDATE jobs SET status = 'completed' WHERE id = ?", (jobs[2].id,))
    queued = svc.list_jobs(["queued"])
    assert svc.count_jobs(["queued"]) == len(queued) == 4
    assert svc.count_jobs() == 5 and svc.count_jobs(["completed", "failed"]) == 1
    assert svc.job_providers(["queued"]) == {
        j.id: (j.compute.provider if j.compute else None) for j in queued
    }
    assert svc.job_providers(["queued"])[jobs[1].id] == "runpod-b"
    assert svc.count_jobs(["running"]) == 0 and svc.job_providers(["running"]) == {}


def test_a_brief_list_is_the_full_list_without_the_alternatives(
    svc: Service, runpod: RunPodFake
) -> None:
    """The Jobs view reads jobs brief: each advice without its list of alternatives (most of
    what is stored with many providers); everything else is what a full read gives."""
    two_runpods(svc, runpod)
    svc.add_job({"kind": "cg_remix", "vram_gb": 10, "gpu_hours": 1})
    svc.add_job({"kind": "translation", "items": 3})
    full, brief = svc.list_jobs(), svc.list_jobs(brief=True)
    assert [j.id for j in brief] == [j.id for j in full]
    for whole, short in zip(full, brief, strict=True):
        advice = dict(whole.meta["compute"]["advice"])
        assert len(advice.pop("alternatives")) >= 2
        assert short.meta["compute"]["advice"] == advice
        assert short.model_dump(exclude={"meta"}) == whole.model_dump(exclude={"meta"})
        assert short.compute is not None and whole.compute is not None
        assert (short.compute.provider, short.compute.decided_by) == (
            whole.compute.provider,
            whole.compute.decided_by,
        )
        assert "alternatives" in svc.get_job(short.id).meta["compute"]["advice"]
    assert svc.list_jobs(["queued"], brief=True) == brief
    # Read one at a time (the Jobs view keeps only the rows of jobs that changed).
    assert list(svc.iter_jobs(brief=True)) == brief and list(svc.iter_jobs()) == full
    assert list(svc.iter_jobs(["running"])) == []


def test_the_queues_digest_and_changed_jobs_tell_a_reader_what_it_must_read_again(
    svc: Service,
) -> None:
    """A reader holding the queue (the Jobs view) asks, without reading every job, whether a
    job was added or removed (``job_ids_digest``, equal to ``ids_digest`` of the ids) and which
    jobs were written since a time (``iter_jobs(changed_since=)``)."""
    from comfyvn_gui.core.jobs import ids_digest, now_iso

    assert svc.job_ids_digest() == ids_digest([]) == (0, 0, 0)
    first = [svc.add_job({"kind": "translation", "items": n}).id for n in (1, 2, 3)]
    held = svc.job_ids()
    assert held == first and svc.job_ids_digest() == ids_digest(held)
    # (updated_at is stamped to the millisecond: a mark in the millisecond of the last add
    # would count that add as a change, as changed_since means "at or after")
    last = max(j.updated_at for j in svc.iter_jobs())
    mark = now_iso()
    while datetime.fromisoformat(mark) <= last:
        time.sleep(0.001)
        mark = now_iso()
    svc.cancel_job(first[1], interface="test")
    assert [j.id for j in svc.iter_jobs(brief=True, changed_since=mark)] == [first[1]]
    assert svc.job_ids_digest() == ids_digest(held)  # a change, not an addition
    # One removed, one added: the same number of jobs, and still another digest.
    svc.remove_job(first[0])
    added = svc.add_job({"kind": "translation", "items": 4}).id
    assert len(svc.job_ids()) == len(held)
    assert svc.job_ids_digest() != ids_digest(held)
    assert svc.job_ids_digest() == ids_digest(svc.job_ids()) == ids_digest([*first[1:], added])
    # The highest job removed and one added: AUTOINCREMENT never gives its id again.
    svc.remove_job(added)
    again = svc.add_job({"kind": "translation", "items": 5}).id
    assert again > added and svc.job_ids_digest() != ids_digest([*first[1:], added])
