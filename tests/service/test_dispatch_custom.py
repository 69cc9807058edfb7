"""Dispatch to a custom ComfyUI endpoint (the user's own price, billing, VRAM and zones): the
consent gate, a re-advice voiding an acknowledgement, residency enforced on an explicit pick,
the bill guard's deadline, and the actual cost by the endpoint's own billing rule."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.errors import ConflictError
from comfyvn_gui.core.jobs import Job
from comfyvn_gui.service import Service
from tests.fakes.comfyui import ComfyUIServer, running_comfyui
from tests.service.test_dispatch import (
    dispatch,
    ended,
    posts,
    project,
    stop_driver,
    summary,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("secret_service")

TOKEN = "custom-dispatch-token-77c1e0"


def add_box(svc: Service, server: ComfyUIServer, pid: str = "box", **terms: Any) -> None:
    config = {
        "endpoint": server.url,
        "hourly_usd": "0.60",
        "zones": "us",
        "vram_gb": "24",
        "billing_increment_minutes": "1",
        **terms,
    }
    svc.create_provider("custom", {"id": pid, "config": config, "secrets": {"api_token": TOKEN}})
    [valid] = svc.run_checks("validate", [pid], timeout_s=20)
    assert valid.status == "valid", valid


def queued(svc: Service, tmp_path: Path) -> Job:
    [job] = svc.import_summary(summary(), str(project(tmp_path / "project")))
    return job


def box_job(svc: Service, server: ComfyUIServer, tmp_path: Path) -> Job:
    """A job queued for the custom endpoint ``box`` (picked: a module that gives the local
    provider a GPU would have it chosen), the server's request log emptied."""
    add_box(svc, server)
    job = svc.pick_provider(queued(svc, tmp_path).id, "box")
    server.requests.clear()
    return job


def test_the_gate_then_a_priced_run_billed_by_the_endpoints_own_rule(tmp_path: Path) -> None:
    with running_comfyui(token=TOKEN) as server:
        svc = Service()
        add_box(svc, server)
        job = queued(svc, tmp_path)
        assert job.compute is not None and job.compute.provider == "box", job.compute
        codes = [i.code for i in svc.job_consent(job.id)]
        assert "data_leaves_machine" in codes
        server.requests.clear()
        # nothing acknowledged, or one warning short: refused, nothing sent
        for given in ([], codes[:-1]):
            with pytest.raises(ConflictError, match=codes[-1]):
                svc.dispatch_job(
                    job.id, decided_at=job.compute.decided_at, acknowledge=given, interface="test"
                )
        assert server.requests == [] and svc.get_job(job.id).status == "queued"
        started = dispatch(svc, job)
        record = started.meta["dispatch"]
        assert record["acknowledged"]["codes"] == codes
        assert record["price"] == {
            "hourly_usd": 0.6,
            "increment_minutes": 1.0,
            "minimum_minutes": 0.0,
        }
        assert record["ceilings"]["cost_usd"] is not None  # a priced provider has a cost ceiling
        done = ended(svc, job.id)
        assert done.status == "completed", done.meta["dispatch"]
        record = done.meta["dispatch"]
        assert record["billed_minutes"] == 1.0  # a few seconds, billed by the minute
        assert record["actual_cost_usd"] == pytest.approx(0.01)
        assert "spent $0.01" in record["ended_message"]
        assert posts(server, "/prompt") == 2
        trail = [e for e in svc.job_events(job.id) if e.action == "dispatched"]
        assert trail and trail[0].detail["acknowledged"]["codes"] == codes
        stop_driver(svc)
    assert TOKEN not in done.model_dump_json()


def test_a_readvice_to_another_provider_voids_the_acknowledgement(tmp_path: Path) -> None:
    with running_comfyui(token=TOKEN) as server:
        svc = Service()
        add_box(svc, server)
        job = queued(svc, tmp_path)
        seen = job.compute
        assert seen is not None and seen.provider == "box"
        add_box(svc, server, pid="cheaper", hourly_usd="0.10")  # re-advises the queue
        now = svc.get_job(job.id).compute
        assert now is not None and now.provider == "cheaper"
        server.requests.clear()
        with pytest.raises(ConflictError, match="is to run on cheaper, not box"):
            svc.dispatch_job(
                job.id,
                provider="box",
                decided_at=seen.decided_at,
                acknowledge=[i.code for i in svc.job_consent(job.id)],
                interface="test",
            )
        with pytest.raises(ConflictError, match="changed since its warnings were shown"):
            svc.dispatch_job(
                job.id,
                decided_at=seen.decided_at,
                acknowledge=[i.code for i in svc.job_consent(job.id)],
                interface="test",
            )
        assert server.requests == [] and svc.get_job(job.id).status == "queued"


def test_residency_is_enforced_on_an_explicit_pick(tmp_path: Path) -> None:
    with running_comfyui(token=TOKEN) as server:
        svc = Service()
        add_box(svc, server)  # in the us
        add_box(svc, server, pid="eu-box", zones="eu", hourly_usd="0.90")
        job = queued(svc, tmp_path)
        picked = svc.pick_provider(job.id, "box")
        assert picked.compute is not None and picked.compute.decided_by == "user"
        # another process made the data stay in the EU; this queue was not re-advised yet
        svc.settings.set("advisor.residency", ["eu"])
        server.requests.clear()
        with pytest.raises(ConflictError, match=r"box cannot run job \d+ now: .*(eu|residen)"):
            dispatch(svc, picked)
        assert server.requests == [] and svc.get_job(job.id).status == "queued"


def test_the_bill_guard_stops_a_run_at_its_deadline(tmp_path: Path) -> None:
    # $36/h billed by the second: the cost ceiling (2x a few seconds' estimate) buys seconds
    with running_comfyui(token=TOKEN, node_delay_s=4.0) as server:
        svc = Service()
        add_box(svc, server, hourly_usd="36", billing_increment_minutes="0.0166667")
        job = queued(svc, tmp_path)
        started = dispatch(svc, job)
        ceilings = started.meta["dispatch"]["ceilings"]
        allowed = (
            datetime.fromisoformat(ceilings["deadline"])
            - datetime.fromisoformat(started.meta["dispatch"]["dispatched_at"])
        ).total_seconds()
        assert allowed < 30, ceilings  # the cost ceiling, not the 10-minute runtime floor
        wait_for(svc, job.id, lambda j: j.status == "running")
        done = ended(
            svc,
            job.id,
        )
        assert done.status == "failed"
        message = done.meta["dispatch"]["ended_message"]
        assert "stopped at its deadline" in message and "the bill guard" in message
        assert posts(server, "/interrupt") + posts(server, "/queue") >= 1  # stopped there too
        assert done.meta["dispatch"]["actual_cost_usd"] <= ceilings["cost_usd"] + 0.01
        stop_driver(svc)
