"""Every HTTP adapter against every fault: the right status, within the deadline, a useful
message naming the field to fix, and no secret in it. Real servers, real keyring."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.http import FakeServer, SilentServer, arun, closed_port_url, reply_json, slow

KEY = "CANARY-fault-key-0123456789"
DEADLINE = 1.5

AUTH_FIELD = {
    "runpod": "api_key",
    "vast": "api_key",
    "lambda": "api_key",
    "paperspace": "api_key",
    "lan": "api_token",
}
ADDRESS_FIELD = {"lan": "endpoint"}


def payload(template: str, base: str) -> dict[str, Any]:
    secrets = {AUTH_FIELD[template]: KEY}
    if template == "runpod":
        return {
            "config": {"endpoints": {"graphql": f"{base}/graphql", "serverless": base}},
            "secrets": secrets,
        }
    if template == "lan":
        return {"config": {"endpoint": base}, "secrets": secrets}
    if template == "paperspace":
        return {"base_url": base, "config": {"project": "vn-cache"}, "secrets": secrets}
    return {"base_url": base, "secrets": secrets}


@contextmanager
def fault_server(kind: str) -> Iterator[str]:
    routes: dict[str, Callable[..., Any]] = {
        "401": lambda req: reply_json(401, {"error": "unauthorized"}),
        "403": lambda req: reply_json(403, {"error": "forbidden"}),
        "429": lambda req: reply_json(429, {"error": "slow down"}, {"Retry-After": "120"}),
        "500": lambda req: reply_json(500, {"error": "boom"}),
        "malformed": lambda req: (200, {"Content-Type": "application/json"}, "{not json"),
        "slow": slow(lambda req: reply_json(200, {}), DEADLINE + 2),
    }
    if kind == "refused":
        yield closed_port_url()
    elif kind == "silent":
        with SilentServer() as srv:
            yield srv.base
    elif kind == "tls":
        import trustme

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        trustme.CA().issue_cert("127.0.0.1").configure_cert(ctx)  # a CA nobody trusts
        with FakeServer(default=lambda req: reply_json(200, {}), ssl_context=ctx) as srv:
            yield srv.base
    else:
        with FakeServer(default=routes[kind]) as srv:
            yield srv.base


# fault -> (status, fields to fix: "auth" | "address" | "tls" | None = not checked)
EXPECTED: dict[str, tuple[str, str | None]] = {
    "refused": ("unreachable", "address"),
    "silent": ("timeout", None),
    "slow": ("timeout", None),
    "401": ("invalid_credentials", "auth"),
    "403": ("permission_denied", "auth"),
    "429": ("rate_limited", None),
    "500": ("error", None),
    "malformed": ("error", None),
    "tls": ("misconfigured", "tls"),
}
# A body that is not what the API sends is the adapter's to judge where the API says so.
OVERRIDES: dict[tuple[str, str], tuple[str, str | None]] = {
    ("lan", "malformed"): ("misconfigured", "address"),
}


@pytest.mark.parametrize("fault", list(EXPECTED))
@pytest.mark.parametrize("template", list(AUTH_FIELD))
def test_fault(secret_service: dict[str, str], template: str, fault: str) -> None:
    svc = Service(resolve_home())
    expected, fields = OVERRIDES.get((template, fault), EXPECTED[fault])
    with fault_server(fault) as base:
        svc.create_provider(template, {"id": "p", **payload(template, base)})
        t = time.monotonic()
        (r,) = arun(svc.check("validate", ["p"], timeout_s=DEADLINE))
        elapsed = time.monotonic() - t
    assert r.status == expected, r.message
    assert elapsed < DEADLINE + 0.7
    assert len(r.message) > 20 and KEY not in r.model_dump_json()
    if fields == "auth":
        assert r.fields == [AUTH_FIELD[template]]
    elif fields == "address":
        assert r.fields == [ADDRESS_FIELD.get(template, "base_url")]
    elif fields == "tls" and template == "lan":
        assert r.fields == ["ca_bundle"]
    assert svc.get_provider("p").active is False
    assert KEY not in (svc.home.log_dir / "compute_advisor.log").read_text()
