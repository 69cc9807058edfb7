"""The HTTP API's security (docs/architecture.md, "HTTP API"), over real HTTP: the token, the
Host check, no CORS, the size limit, no caching, the secret-export rule and canary secrets that
must never leave the keyring. Server and client fixtures: ``conftest.py``.
"""

from __future__ import annotations

import base64
import json
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.api.helpers import (
    ADVICE_EXAMPLE,
    MIB,
    SEED_CREATE,
    SETTING_KEYS,
    SUMMARY_EXAMPLE,
    WORKLOAD,
    assert_error,
    home_of,
    home_secrets,
    ids,
    ok,
    own_ipv4,
)
from tests.fakes.api_server import ApiServer, api_server
from tests.fakes.http import closed_port_url

pytestmark = pytest.mark.usefixtures("secret_service")


# -- security: token ------------------------------------------------------------------------

DUMMY_PARAMS = {
    "provider_id": "victim",
    "job_id": "1",
    "key": "advisor.budget_usd",
    "ref": "victim:i-1",
}


def test_every_route_needs_the_token(srv: ApiServer, client: httpx.Client) -> None:
    ok(client.post("/api/providers/create", json={**SEED_CREATE, "id": "victim"}), 201)
    ok(client.put("/api/settings/advisor.budget_usd", json={"value": 3}))
    ok(client.post("/api/jobs", json=WORKLOAD), 201)
    state = (
        ok(client.get("/api/providers")),
        ok(client.get("/api/settings")),
        ok(client.get("/api/jobs")),
        home_secrets(srv.service.home),
    )

    spec = ok(client.get("/openapi.json"))
    routes = [
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "delete", "patch")
    ]
    assert len(routes) >= 22
    assert ("DELETE", "/api/providers/remove/{provider_id}") in routes
    assert ("POST", "/compute/advise") in routes
    routes.append(("GET", "/openapi.json"))

    with srv.client(token="") as anonymous:
        for method, path in routes:
            url = re.sub(r"\{(\w+)\}", lambda m: DUMMY_PARAMS[m.group(1)], path)
            body = {"value": 1} if method in ("POST", "PUT") else None
            r = anonymous.request(method, url, json=body)
            assert_error(r, 401, code="unauthorized")
            assert r.headers.get("www-authenticate", "").startswith("Bearer"), (method, url)

    assert state == (
        ok(client.get("/api/providers")),
        ok(client.get("/api/settings")),
        ok(client.get("/api/jobs")),
        home_secrets(srv.service.home),
    )


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wrong-token-0123456789-0123456789-0123",
        "Bearer {token}x",
        "Bearer {short}",
        "Bearer",
        "Basic {basic}",
        "Basic {token}",
        "Token {token}",
        "{token}",
    ],
)
def test_a_wrong_token_or_scheme_is_refused(srv: ApiServer, authorization: str) -> None:
    header = authorization.format(
        token=srv.token,
        short=srv.token[:-1],
        basic=base64.b64encode(f"user:{srv.token}".encode()).decode(),
    )
    with srv.client(token="", headers={"Authorization": header}) as c:
        r = c.get("/api/providers")
    assert_error(r, 401, code="unauthorized")
    assert r.headers.get("www-authenticate", "").startswith("Bearer")
    assert srv.token not in r.text


def test_the_token_file_is_private_long_and_kept_across_restarts(app_home: Path) -> None:
    token_file = app_home / "config" / "api-token"
    with api_server() as first:
        assert token_file.exists()
        mode = stat.S_IMODE(token_file.stat().st_mode)
        assert mode == 0o600, oct(mode)
        token = token_file.read_text("utf-8").strip()
        assert len(token) >= 32 and token == first.token
        with first.client() as c:
            ok(c.get("/api/providers"))
    with api_server(Service(resolve_home())) as second, second.client(token=token) as c:
        assert second.token == token
        assert token_file.read_text("utf-8").strip() == token
        ok(c.get("/api/providers"))


def test_a_token_of_another_home_is_refused(tmp_path: Path) -> None:
    with (
        api_server(Service(home_of(tmp_path / "one"))) as one,
        api_server(Service(home_of(tmp_path / "two"))) as two,
        one.client(token=two.token) as c,
    ):
        assert one.token != two.token
        assert_error(c.get("/api/providers"), 401)


# -- security: Host header, CORS, size limit, caching --------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1.evil.example",
        "127.0.0.1.evil.example:{port}",
        "localhost.evil.example:{port}",
        "192.0.2.77:{port}",
    ],
)
def test_a_foreign_host_header_is_refused(srv: ApiServer, host: str) -> None:
    with srv.client(headers={"Host": host.format(port=srv.port)}) as c:
        assert_error(c.get("/api/providers"), 403, code="forbidden")
        assert_error(c.post("/api/providers/create", json=SEED_CREATE), 403)
    with srv.client() as c:
        assert ids(ok(c.get("/api/providers"))) == ["local"]


@pytest.mark.parametrize(
    "host",
    ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "localhost", "LOCALHOST:{port}"],
)
def test_loopback_host_headers_are_accepted(srv: ApiServer, host: str) -> None:
    with srv.client(headers={"Host": host.format(port=srv.port)}) as c:
        assert ids(ok(c.get("/api/providers"))) == ["local"]


def test_no_cors_headers_and_preflight_needs_the_token(srv: ApiServer) -> None:
    origin = {"Origin": "https://evil.example"}
    with srv.client(headers=origin) as c:
        r = c.get("/api/providers")
        ok(r)
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]
        r = c.options("/api/providers", headers={"Access-Control-Request-Method": "POST"})
        assert r.status_code >= 400
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]
    with srv.client(token="", headers=origin) as anonymous:
        r = anonymous.options(
            "/api/providers/create",
            headers={
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert_error(r, 401)
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]


def _chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        part = min(MIB, total - sent)
        sent += part
        yield b" " * part


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_16_mib_is_refused_with_413(client: httpx.Client, streamed: bool) -> None:
    size = 16 * MIB + 1
    body: Any = _chunks(size) if streamed else b" " * size
    r = client.post("/api/providers/import", content=body)
    assert_error(r, 413, code="payload_too_large")
    assert ids(ok(client.get("/api/providers"))) == ["local"]  # the server still answers


def test_a_body_just_under_16_mib_is_read(client: httpx.Client) -> None:
    text = json.dumps({"kind": "cg_super_res", "items": 2})
    body = text + " " * (16 * MIB - len(text) - 1024)
    assert ok(client.post("/api/jobs", content=body.encode()), 201)["workload"]["items"] == 2


def test_every_response_says_no_store(srv: ApiServer, client: httpx.Client) -> None:
    responses = [
        client.get("/openapi.json"),
        client.get("/api/providers"),
        client.post("/api/providers/create", json=SEED_CREATE),
        client.post("/api/providers/create", json=SEED_CREATE),  # 409
        client.get("/api/providers/export"),
        client.get("/api/nothing"),
        client.put("/api/providers"),
        client.post("/compute/advise", content=b"{"),
        client.post("/compute/advise", json={"workload": {"kind": "x"}}),
        client.post("/api/providers/import", content=b" " * (16 * MIB + 1)),
    ]
    with srv.client(token="") as anonymous:
        responses.append(anonymous.get("/api/providers"))
    with srv.client(headers={"Host": "evil.example"}) as foreign:
        responses.append(foreign.get("/api/providers"))
    statuses = sorted({r.status_code for r in responses})
    assert statuses == [200, 201, 400, 401, 403, 404, 405, 409, 413, 422]
    for r in responses:
        assert r.headers.get("cache-control") == "no-store", (r.request.url, r.status_code)


# -- security: secret export from another machine ------------------------------------------


def test_secret_export_only_for_loopback_clients_or_when_allowed(
    app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMFYVN_ALLOW_SECRET_EXPORT", raising=False)
    ip = own_ipv4()
    with api_server(host="0.0.0.0") as srv, srv.client(host=ip) as remote, srv.client() as local:
        ok(remote.post("/api/providers/create", json=SEED_CREATE), 201)

        r = remote.get("/api/providers/export", params={"include_secrets": "true"})
        err = assert_error(r, 403, fields=["include_secrets"], code="forbidden")
        assert "COMFYVN_ALLOW_SECRET_EXPORT" in err["message"]
        assert "RUNPOD_KEY" not in r.text

        plain = remote.get("/api/providers/export")
        assert ids(ok(plain)["providers"]) == ["local", "runpod-demo"]
        assert "RUNPOD_KEY" not in plain.text

        monkeypatch.setenv("COMFYVN_ALLOW_SECRET_EXPORT", "0")
        assert_error(remote.get("/api/providers/export?include_secrets=true"), 403)

        mine = ok(local.get("/api/providers/export", params={"include_secrets": "true"}))
        assert mine["providers"][1]["secrets"] == {"api_key": "RUNPOD_KEY"}

        # bound to every interface: any IP address is a fine Host, a DNS name is not
        with srv.client(host=ip, headers={"Host": f"evil.example:{srv.port}"}) as foreign:
            assert_error(foreign.get("/api/providers"), 403, code="forbidden")

        monkeypatch.setenv("COMFYVN_ALLOW_SECRET_EXPORT", "1")
        allowed = ok(remote.get("/api/providers/export", params={"include_secrets": "true"}))
        assert allowed["include_secrets"] is True
        assert allowed["providers"][1]["secrets"] == {"api_key": "RUNPOD_KEY"}


def test_a_server_bound_to_one_address_answers_to_it(app_home: Path) -> None:
    ip = own_ipv4()
    with api_server(host=ip) as srv:
        with srv.client() as c:
            ok(c.get("/api/providers"))
            r = c.get("/api/providers/export", params={"include_secrets": "true"})
            assert_error(r, 403, fields=["include_secrets"])
        with srv.client(headers={"Host": f"evil.example:{srv.port}"}) as c:
            assert_error(c.get("/api/providers"), 403, code="forbidden")


# -- security: canary secrets never leave the keyring -------------------------------------

CANARY = "7f3a9c1d"
#: An AWS access key id in form, built at run time so no committed line looks like a real key.
AWS_CANARY = "AKIA" + "CANARY7F3A9C1D00"
GCP_CANARY = f"CANARY-gcp-private-key-{CANARY}"


def canary_providers(closed: str) -> dict[str, dict[str, Any]]:
    """One provider of every template with secrets, each secret a canary, each endpoint a
    closed port (so checks fail fast, after reading the secrets)."""
    tls_closed = closed.replace("http://", "https://")
    sa = {
        "type": "service_account",
        "project_id": "vn-render-farm",
        "private_key_id": f"kid-{CANARY}",
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{GCP_CANARY}\n-----END PRIVATE KEY-----\n",
        "client_email": "vn@vn-render-farm.iam.gserviceaccount.com",
        "token_uri": f"{closed}/token",
    }
    return {
        "c-runpod": {
            "template_id": "runpod",
            "base_url": f"{closed}/v2",
            "config": {
                "api_key": f"CANARY-runpod-{CANARY}",
                "webhook_secret": f"CANARY-webhook-{CANARY}",
                "endpoints": {"graphql": f"{closed}/graphql"},
            },
        },
        "c-vast": {
            "template_id": "vast",
            "base_url": closed,
            "secrets": {"api_key": f"CANARY-vast-{CANARY}"},
        },
        "c-lambda": {
            "template_id": "lambda",
            "base_url": closed,
            "secrets": {"api_key": f"CANARY-lambda-{CANARY}"},
        },
        "c-paperspace": {
            "template_id": "paperspace",
            "base_url": closed,
            "config": {"project": "vn-cache"},
            "secrets": {"api_key": f"CANARY-paperspace-{CANARY}"},
        },
        "c-coreweave": {
            "template_id": "coreweave",
            "config": {"organization_id": "acme", "endpoints": {"kubernetes": tls_closed}},
            "secrets": {"api_key": f"CANARY-coreweave-{CANARY}"},
        },
        "c-aws": {
            "template_id": "aws",
            "config": {"region": "eu-west-1", "endpoints": {"aws": closed}},
            "secrets": {
                "access_key": AWS_CANARY,
                "secret_key": f"CANARYaws{CANARY}".ljust(40, "Q"),
            },
        },
        "c-azure": {
            "template_id": "azure",
            "config": {
                "tenant_id": "00000000-0000-4000-8000-000000000001",
                "client_id": "00000000-0000-4000-8000-000000000002",
                "subscription_id": "00000000-0000-4000-8000-000000000003",
                "endpoints": {"authority": tls_closed, "management": tls_closed},
            },
            "secrets": {"client_secret": f"CANARY-azure-{CANARY}"},
        },
        "c-gcp": {
            "template_id": "gcp",
            "config": {
                "project_id": "vn-render-farm",
                "region": "europe-west4",
                "endpoints": {"token_uri": f"{closed}/token"},
            },
            "secrets": {"service_account_json": json.dumps(sa)},
        },
        "c-lan": {
            "template_id": "lan",
            "config": {"endpoint": closed},
            "secrets": {"api_token": f"CANARY-lan-{CANARY}"},
        },
        "c-ssh": {
            "template_id": "ssh",
            "config": {
                "hostname": closed.removeprefix("http://"),
                "username": "vn",
                "ssh_key_path": "/nonexistent/id_ed25519",
                "nfs_mount": "/mnt/vn",
            },
            "secrets": {"key_passphrase": f"CANARY-ssh-{CANARY}"},
        },
        "c-custom": {
            "template_id": "custom",
            "config": {"endpoint": closed, "hourly_usd": "0.5", "zones": "eu"},
            "secrets": {"api_token": f"CANARY-custom-{CANARY}"},
        },
    }


def test_canary_secrets_appear_in_no_response_and_no_file(
    srv: ApiServer, client: httpx.Client, app_home: Path
) -> None:
    closed = closed_port_url()
    providers = canary_providers(closed)
    seen: list[httpx.Response] = []

    def call(method: str, url: str, **kw: Any) -> httpx.Response:
        r = client.request(method, url, **kw)
        assert r.status_code < 500, (method, url, r.text)
        seen.append(r)
        return r

    call("PUT", "/api/settings/checks.timeout_s", json={"value": 5})
    for pid, payload in providers.items():
        assert call("POST", "/api/providers/create", json={**payload, "id": pid}).status_code == 201
    # a second runpod key through register, and an update that keeps every secret
    rekey = {"id": "c-runpod", "secrets": {"api_key": f"CANARY-runpod2-{CANARY}"}}
    assert call("POST", "/api/providers/register", json=rekey).status_code == 200
    for pid in providers:
        r = call("POST", "/api/providers/register", json={"id": pid, "name": f"{pid} renamed"})
        assert r.status_code == 200
    # refusals that handle a secret value: wrong form, wrong place
    bad = {"template_id": "aws", "secrets": {"secret_key": f"CANARY-bad-{CANARY}"}}
    assert call("POST", "/api/providers/create", json=bad).status_code == 422
    misplaced = {"id": "c-vast", "config": {"client_secret": f"CANARY-misplaced-{CANARY}"}}
    assert call("POST", "/api/providers/register", json=misplaced).status_code == 422

    for pid in providers:
        result = call("POST", f"/api/providers/{pid}/validate").json()
        assert result["provider"] == pid and result["status"] != "valid", result
    health = call("GET", "/api/providers/health").json()["results"]
    assert {r["provider"] for r in health} >= set(providers)
    call("GET", "/api/providers/health", params={"cached": "true"})
    call("GET", "/api/providers/export")
    call("GET", "/api/providers/export", params={"include_secrets": "false"})
    job = call("POST", "/api/jobs", json=WORKLOAD).json()
    call("POST", "/api/jobs/import-summary", json=json.loads(SUMMARY_EXAMPLE.read_text("utf-8")))
    call("POST", f"/api/jobs/{job['id']}/pick", json={"provider": None})
    call("POST", "/compute/advise", json={"workload": WORKLOAD})
    call("POST", "/compute/advise", content=ADVICE_EXAMPLE.read_bytes())
    call("POST", "/api/settings", json={"key": "advisor.budget_usd", "value": 4})

    spec = call("GET", "/openapi.json").json()
    fill = {
        "provider_id": ["local", *providers],
        "job_id": [str(job["id"])],
        "key": sorted(SETTING_KEYS),
    }
    for path, ops in spec["paths"].items():
        if "get" not in ops:
            continue
        names = re.findall(r"\{(\w+)\}", path)
        values = fill[names[0]] if names else [""]
        for value in values:
            url = re.sub(r"\{\w+\}", value, path)
            # (a queued job has no outputs yet: 409 saying so; the answer is checked too)
            ok_status = {200, 409} if url.endswith("/outputs") else {200}
            assert call("GET", url).status_code in ok_status, url

    canaries = [
        *(
            v
            for payload in providers.values()
            for v in {**payload.get("config", {}), **payload.get("secrets", {})}.values()
            if isinstance(v, str) and CANARY in v and not v.startswith("{")
        ),
        f"CANARY-runpod2-{CANARY}",
        f"CANARY-bad-{CANARY}",
        f"CANARY-misplaced-{CANARY}",
        AWS_CANARY,
        GCP_CANARY,
    ]
    assert len(canaries) >= 13
    for r in seen:
        text = r.text + json.dumps(dict(r.headers))
        for canary in canaries:
            assert canary not in text, (r.request.method, r.request.url, canary)

    # the keyring holds them (so the scan above looked for values that exist) ...
    stored = "\n".join(home_secrets(srv.service.home).values())
    never_stored = {  # replaced through register, or refused
        f"CANARY-runpod-{CANARY}",
        f"CANARY-bad-{CANARY}",
        f"CANARY-misplaced-{CANARY}",
    }
    for canary in canaries:
        assert (canary in stored) is (canary not in never_stored), canary
    backup = client.get("/api/providers/export", params={"include_secrets": "true"}).text
    assert f"CANARY-runpod2-{CANARY}" in backup and GCP_CANARY in backup

    # ... and no file of the home does
    files = [p for p in app_home.rglob("*") if p.is_file()]
    assert any(p.name == "providers.json" for p in files)
    assert any(p.parent.name == "logs" for p in files)
    for path in files:
        data = path.read_bytes()
        for canary in canaries:
            assert canary.encode() not in data, (path, canary)


def test_trickled_and_silent_connections_are_closed_and_real_clients_still_served(
    app_home: Path,
) -> None:
    """The slowloris pattern (headers a byte at a time, or nothing at all) cannot hold the
    local API's connections open: each connection must deliver its request within the read
    bound (1 s here, 10 s in the app), and a client that does is served meanwhile."""
    import socket

    with api_server(Service(resolve_home()), request_read_timeout_s=1.0) as srv:
        port = srv.port
        silent = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
        trickling = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
        request = b"GET /api/providers HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
        started = time.monotonic()
        closed: set[int] = set()
        sent = 0
        while time.monotonic() - started < 4 and len(closed) < 40:
            for i, sock in enumerate(trickling):
                if i in closed:
                    continue
                try:
                    sock.sendall(request[sent : sent + 1] or b"a")
                except OSError:
                    closed.add(i)
            sent += 1
            with srv.client() as client:  # a real client is answered while they trickle
                assert client.get("/api/providers").status_code == 200
            time.sleep(0.2)
        for sock in silent:
            sock.settimeout(3)
            assert sock.recv(1) == b"", "a silent connection was kept open"
            sock.close()
        for sock in trickling:
            sock.settimeout(3)
            try:
                data = sock.recv(1)
            except OSError:
                data = b""
            assert data == b"", "a trickling connection was kept open"
            sock.close()
        assert time.monotonic() - started < 8
