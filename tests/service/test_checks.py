"""The check framework (providers/base.py) and the service's concurrent checks, against real
HTTP(S) servers: retries, deadlines, TLS, proxies, cancellation, redaction, the CLI table."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.providers.base import (
    BlockingExecutor,
    CheckContext,
    CheckFailure,
    NetworkOptions,
    Outcome,
    run_check,
)
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.http import FakeServer, Request, SilentServer, arun, reply_json, slow

SECRET = "sk-live-CANARY-0123456789abcdef"


class Probe:
    """A minimal adapter: GET {primary}/probe with the api key as a bearer."""

    def __init__(self, leak: bool = False, blocking: float = 0.0, send_key: bool = True) -> None:
        self.leak = leak
        self.blocking = blocking
        self.send_key = send_key

    async def validate(self, ctx: CheckContext) -> Outcome:
        if self.blocking:
            await ctx.executor.run(ctx.deadline, time.sleep, self.blocking)
        (key,) = ctx.require("api_key")
        if self.leak:
            raise CheckFailure("error", f"server said: bad key {key}", detail={"echo": key})
        base = ctx.endpoint("api")
        auth = {"Authorization": f"Bearer {key}"} if self.send_key else {}
        async with ctx.http(auth_fields=["api_key"] if self.send_key else []) as http:
            resp = await http.get(f"{base}/probe", headers=auth)
            data = http.json(resp)
        return Outcome(f"hello {data['user']}", detail={"identity": data["user"]})

    async def health(self, ctx: CheckContext) -> Outcome:
        return await self.validate(ctx)


def make_ctx(
    base: str,
    *,
    timeout: float = 5.0,
    executor: BlockingExecutor | None = None,
    network: NetworkOptions | None = None,
    loop_time: float | None = None,
) -> CheckContext:
    profile = load_catalog().profile("vast")
    entry = ProviderEntry(id="probe", template_id="vast", name="Probe", base_url=base)
    now = loop_time if loop_time is not None else asyncio.get_running_loop().time()
    return CheckContext(
        provider=entry,
        profile=profile,
        secrets={"api_key": SECRET},
        deadline=now + timeout,
        executor=executor or BlockingExecutor(2),
        network=network or NetworkOptions(),
    )


def ok_route(req: Request) -> Any:
    if req.bearer != SECRET:
        return reply_json(401, {"error": "unauthorized"})
    return reply_json(200, {"user": "alice@example.com"})


def check(base: str, adapter: Any = None, kind: str = "validate", **kw: Any) -> Any:
    async def go() -> Any:
        return await run_check(adapter or Probe(), make_ctx(base, **kw), kind)  # type: ignore[arg-type]

    return arun(go())


def test_valid_result_has_identity_latency_and_time() -> None:
    with FakeServer(default=ok_route) as srv:
        r = check(srv.base)
    assert r.status == "valid" and r.code is None
    assert r.detail == {"identity": "alice@example.com"}
    assert r.latency_ms is not None and r.latency_ms > 0
    assert r.checked_at.tzinfo is not None
    assert srv.requests[0].path == "/probe"
    assert srv.requests[0].headers["user-agent"] == "comfyvn-gui"


def test_retry_after_is_honoured_then_succeeds() -> None:
    calls = []

    def route(req: Request) -> Any:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return reply_json(429, {"error": "slow down"}, {"Retry-After": "1"})
        return ok_route(req)

    with FakeServer(default=route) as srv:
        r = check(srv.base)
    assert r.status == "valid"
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.95


def test_retry_after_beyond_the_deadline_is_reported_at_once() -> None:
    with FakeServer(default=lambda req: reply_json(429, {}, {"Retry-After": "120"})) as srv:
        t = time.monotonic()
        r = check(srv.base, timeout=5)
        elapsed = time.monotonic() - t  # (not the fake's shutdown: it polls every 0.5 s)
    assert elapsed < 1.0, elapsed
    assert r.status == "rate_limited" and r.detail == {"retry_after_s": 120.0}
    assert "try again in 120 s" in r.message
    assert len(srv.requests) == 1


def test_503_with_an_http_date_retry_after_is_retried() -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    calls: list[float] = []

    def route(req: Request) -> Any:
        calls.append(time.monotonic())
        if len(calls) == 1:
            when = format_datetime(datetime.now(UTC) + timedelta(seconds=1), usegmt=True)
            return reply_json(503, {}, {"Retry-After": when})
        return ok_route(req)

    with FakeServer(default=route) as srv:
        r = check(srv.base)
    assert r.status == "valid" and len(calls) == 2


@pytest.mark.parametrize(
    ("status", "expect", "fields"),
    [
        (401, "invalid_credentials", ["api_key"]),
        (403, "permission_denied", ["api_key"]),
        (404, "misconfigured", ["base_url"]),
        (500, "error", []),
        (502, "unreachable", []),
    ],
)
def test_http_failures_map_to_the_vocabulary(status: int, expect: str, fields: list[str]) -> None:
    with FakeServer(default=lambda req: reply_json(status, {"error": "x"})) as srv:
        r = check(srv.base)
        h = check(srv.base, kind="health")
    assert (r.status, r.fields) == (expect, fields)
    assert h.status == "unhealthy" and h.code == expect
    assert "Vast.ai" in r.message


def test_malformed_json_is_an_error_not_a_crash() -> None:
    with FakeServer(default=lambda req: (200, {"Content-Type": "application/json"}, "{nope")) as s:
        r = check(s.base)
    assert r.status == "error" and "not JSON" in r.message


def test_a_server_that_never_answers_ends_at_the_deadline() -> None:
    with SilentServer() as srv:
        t = time.monotonic()
        r = check(srv.base, timeout=1.0)
        elapsed = time.monotonic() - t  # (the fake's shutdown not counted)
    assert 0.7 <= elapsed < 2.0, elapsed  # httpx gives up just before the deadline
    assert r.status == "timeout"
    assert "in time" in r.message or "deadline" in r.message


def test_the_deadline_counts_waiting_for_the_executor() -> None:
    """A check queued behind busy executor threads still ends at its deadline."""
    ex = BlockingExecutor(1)
    blocker = threading.Event()
    ex._pool.submit(blocker.wait, 10)  # the only worker is busy
    try:
        with FakeServer(default=ok_route) as srv:
            t = time.monotonic()
            r = check(srv.base, adapter=Probe(blocking=0.1), timeout=1.0, executor=ex)
            elapsed = time.monotonic() - t  # (the fake's shutdown, a 0.5 s poll, not counted)
        assert r.status == "timeout"
        assert elapsed < 1.8, elapsed
    finally:
        blocker.set()
        ex.shutdown()


def test_no_secret_in_message_or_detail_even_if_an_adapter_leaks_it() -> None:
    r = check("http://127.0.0.1:9", adapter=Probe(leak=True))
    assert r.status == "error"
    dumped = r.model_dump_json()
    assert SECRET not in dumped and "***" in dumped


def test_an_unexpected_exception_becomes_an_error_result() -> None:
    class Broken:
        async def validate(self, ctx: CheckContext) -> Outcome:
            raise KeyError(f"oops {ctx.secrets['api_key']}")

        health = validate

    r = check("http://127.0.0.1:9", adapter=Broken())
    assert r.status == "error" and "KeyError" in r.message and SECRET not in r.message


def test_custom_ca_bundle_setting_is_trusted(tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with FakeServer(default=ok_route, ssl_context=server_ctx) as srv:
        bad = check(srv.base)
        good = check(srv.base, network=NetworkOptions(ca_bundle=str(ca_file)))
    assert bad.status == "misconfigured" and "TLS certificate" in bad.message
    assert good.status == "valid"


def test_system_proxy_settings_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    def anyone(req: Request) -> Any:  # an unauthenticated endpoint (no key to send)
        return reply_json(200, {"user": "anyone"})

    with FakeServer(default=anyone) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.base)
        monkeypatch.setenv("NO_PROXY", "")
        monkeypatch.delenv("no_proxy", raising=False)
        r = check("http://provider.example.invalid", Probe(send_key=False))
        assert r.status == "valid"
        assert proxy.requests and proxy.requests[0].headers["host"] == "provider.example.invalid"
        # A request carrying the key is never sent over plain http:// to another machine,
        # proxy or not (core/addresses.py).
        proxy.requests.clear()
        r = check("http://provider.example.invalid")
    assert r.status == "misconfigured" and "plain http://" in r.message, r.message
    assert not proxy.requests


def test_cancelling_a_check_stops_it_promptly() -> None:
    async def go() -> float:
        with SilentServer() as srv:
            task = asyncio.create_task(
                run_check(Probe(), make_ctx(srv.base, timeout=30), "validate")  # type: ignore[arg-type]
            )
            await asyncio.sleep(0.3)
            t = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return time.monotonic() - t

    assert arun(go()) < 0.5


# -- the service: many checks at once, activation, stored results, the command ------------


@pytest.fixture
def svc(secret_service: dict[str, str]) -> Service:
    return Service(resolve_home())


def slow_401(seconds: float) -> Any:
    return slow(lambda req: reply_json(401, {"error": "unauthorized"}), seconds)


def test_twenty_checks_take_about_as_long_as_the_slowest(svc: Service) -> None:
    with FakeServer(default=slow_401(1.0)) as srv:
        for i in range(20):
            template = ("vast", "lambda", "paperspace")[i % 3]
            svc.create_provider(
                template,
                {
                    "id": f"p{i}",
                    "base_url": srv.base,
                    "secrets": {"api_key": f"key-{i}-0123456789abcdef"},
                },
            )
        t = time.monotonic()
        results = arun(svc.check("validate", [f"p{i}" for i in range(20)], timeout_s=10))
        elapsed = time.monotonic() - t
    odd = [(r.provider, r.status, r.message) for r in results if r.status != "invalid_credentials"]
    assert not odd
    slowest = max(r.latency_ms for r in results) / 1000
    print(f"\n20 checks in {elapsed:.2f} s; slowest single check {slowest:.2f} s")
    assert elapsed < slowest + 1.0, "checks did not run concurrently"


def test_unknown_id_is_bad_input_and_checks_nothing(svc: Service) -> None:
    from comfyvn_gui.core.errors import NotFoundError

    with pytest.raises(NotFoundError, match="'ghost'"):
        arun(svc.check("validate", ["local", "ghost"]))
    assert svc.last_results() == {}


def test_results_are_stored_and_failures_deactivate(svc: Service) -> None:
    with FakeServer(default=slow_401(0)) as srv:
        svc.create_provider(
            "vast",
            {"id": "v", "base_url": srv.base, "secrets": {"api_key": "bad-key-0123456789abcdef"}},
        )
        svc.registry.set_active("v", True)
        (r,) = arun(svc.check("validate", ["v"]))
    assert r.status == "invalid_credentials"
    assert svc.get_provider("v").active is False
    stored = svc.last_results()["v"]["validate"]
    assert stored.status == "invalid_credentials" and stored.checked_at == r.checked_at
    text = (svc.home.data_dir / "checks.json").read_text()
    assert "bad-key" not in text


def test_a_transient_failure_leaves_active_alone(svc: Service) -> None:
    with FakeServer(default=lambda req: reply_json(502, {})) as srv:
        svc.create_provider(
            "vast",
            {"id": "v", "base_url": srv.base, "secrets": {"api_key": "key-0123456789abcdef"}},
        )
        svc.registry.set_active("v", True)
        (r,) = arun(svc.check("validate", ["v"]))
    assert r.status == "unreachable" and svc.get_provider("v").active is True


def test_a_provider_without_its_key_is_misconfigured_without_a_request(svc: Service) -> None:
    with FakeServer(default=ok_route) as srv:
        svc.create_provider("vast", {"id": "v", "base_url": srv.base})
        (r,) = arun(svc.check("validate", ["v"]))
    assert r.status == "misconfigured" and r.fields == ["api_key"]
    assert srv.requests == []


def test_health_without_ids_watches_enabled_providers_only(svc: Service) -> None:
    svc.create_provider("vast", {"id": "off", "enabled": False})
    results = arun(svc.check("health"))
    assert [r.provider for r in results] == ["local"]
    results = arun(svc.check("validate"))
    assert [r.provider for r in results] == ["local", "off"]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "comfyvn_gui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or dict(os.environ),
    )


def test_validate_command_table_json_and_exit_codes(svc: Service) -> None:
    with FakeServer(default=slow_401(0)) as srv:
        svc.create_provider(
            "vast",
            {
                "id": "vast-bad",
                "base_url": srv.base,
                "secrets": {"api_key": "bad-key-0123456789abcdef"},
            },
        )
        res = cli("providers", "validate")
        assert res.returncode == 1, res.stderr
        assert "vast-bad" in res.stdout and "invalid_credentials" in res.stdout
        assert "api_key" in res.stdout and "local" in res.stdout
        assert "rejected the API key" in res.stdout
        res = cli("providers", "validate", "local", "--json")
        assert res.returncode == 0, res.stderr
        (local,) = json.loads(res.stdout)
        assert local["provider"] == "local" and local["status"] == "valid"
        assert {"status", "code", "message", "fields", "detail", "latency_ms", "checked_at"} <= set(
            local
        )
        res = cli("providers", "health", "--json")
        assert res.returncode == 1  # vast-bad is unhealthy
        assert {r["provider"]: r["status"] for r in json.loads(res.stdout)} == {
            "local": "healthy",
            "vast-bad": "unhealthy",
        }
        res = cli("providers", "validate", "ghost")
        assert res.returncode == 2 and "ghost" in res.stderr
    assert "bad-key" not in (svc.home.log_dir / "compute_advisor.log").read_text()


def test_disabled_providers_say_why_they_were_not_checked(svc: Service) -> None:
    svc.create_provider("vast", {"id": "off", "enabled": False})
    res = cli("providers", "health")
    assert res.returncode == 0, res.stderr
    assert "not checked (disabled" in res.stdout and "off" in res.stdout
    res = cli("providers", "validate", "off")
    assert "off (disabled)" in res.stdout and "misconfigured" in res.stdout
