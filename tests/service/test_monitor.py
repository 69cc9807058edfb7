"""The health monitor: failing providers become unhealthy, back off and recover; processes
sharing a home never double a check. Real HTTP counterparts, real keyring, real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from comfyvn_gui.service import Service
from comfyvn_gui.store.audit import read_events
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.http import arun
from tests.fakes.vast import VastFake

pytestmark = pytest.mark.usefixtures("secret_service")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def vast() -> VastFake:
    with VastFake() as fake:
        yield fake


def add_vast(svc: Service, fake: VastFake, pid: str, *, active: bool = True) -> None:
    svc.create_provider(
        "vast", {"id": pid, "base_url": fake.api_base, "secrets": {"api_key": fake.key}}
    )
    if active:
        svc.registry.set_active(pid, True)


def user_calls(fake: VastFake) -> int:
    return sum(1 for r in fake.requests if r.path.rstrip("/").endswith("users/current"))


def test_watches_enabled_active_providers_only(vast: VastFake) -> None:
    svc = Service(resolve_home())
    add_vast(svc, vast, "on")
    add_vast(svc, vast, "not-validated", active=False)
    svc.create_provider("vast", {"id": "off", "enabled": False})
    svc.registry.set_active("off", True)
    assert svc.monitor.watched() == ["local", "on"]


def test_failing_provider_becomes_unhealthy_backs_off_and_recovers(vast: VastFake) -> None:
    svc = Service(resolve_home())
    svc.set_setting("health.interval_s", 60)
    add_vast(svc, vast, "v")
    clock = Clock()
    mon = svc.monitor
    mon.clock = clock

    assert {r.provider: r.status for r in arun(mon.run_once())} == {
        "local": "healthy",
        "v": "healthy",
    }
    assert arun(mon.run_once()) == []  # nothing is due again before the interval

    good_key = vast.key
    vast.key = "someone-else-rotated-it-0123456789"  # the stored key stops working
    clock.now += 60
    (r,) = [r for r in arun(mon.run_once()) if r.provider == "v"]
    assert r.status == "unhealthy" and r.code == "invalid_credentials"
    assert svc.health_map()["v"] == "unhealthy"
    assert mon.schedule()["v"]["failures"] == 1
    assert mon.schedule()["v"]["next_due"] == clock.now + 120  # backed off: 2 x interval

    calls = user_calls(vast)
    clock.now += 60
    assert [r.provider for r in arun(mon.run_once())] == ["local"]  # v is backing off
    assert user_calls(vast) == calls
    clock.now += 60
    (r,) = [r for r in arun(mon.run_once()) if r.provider == "v"]
    assert r.status == "unhealthy" and mon.schedule()["v"]["failures"] == 2
    assert mon.schedule()["v"]["next_due"] == clock.now + 240  # 4 x interval

    vast.key = good_key  # fixed
    clock.now += 240
    (r,) = [r for r in arun(mon.run_once()) if r.provider == "v"]
    assert r.status == "healthy"
    assert mon.schedule()["v"] == {**mon.schedule()["v"], "failures": 0, "next_due": clock.now + 60}
    assert svc.health_map()["v"] == "healthy"

    changes = [
        (e["provider"], e["previous"], e["status"])
        for e in read_events(svc.home)
        if e["event"] == "provider.health_changed"
    ]
    assert changes == [
        ("local", "unknown", "healthy"),
        ("v", "unknown", "healthy"),
        ("v", "healthy", "unhealthy"),
        ("v", "unhealthy", "healthy"),
    ]
    assert vast.key not in (svc.home.log_dir / "compute_advisor.log").read_text()


def test_two_processes_on_one_home_do_not_double_the_checks(vast: VastFake, tmp_path: Path) -> None:
    svc = Service(resolve_home())
    ids = [f"v{i}" for i in range(5)]
    for pid in ids:
        add_vast(svc, vast, pid)
    code = textwrap.dedent("""
        import asyncio, json, sys, time
        from comfyvn_gui.service import Service
        start = float(sys.argv[1])
        while time.time() < start:
            time.sleep(0.005)
        results = asyncio.run(Service().monitor.run_once())
        print(json.dumps(sorted(r.provider for r in results)))
    """)
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(start)],
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for _ in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    checked = sorted(outs[0] + outs[1])
    assert checked == sorted(["local", *ids]), outs  # each provider exactly once in total
    assert user_calls(vast) == 5
