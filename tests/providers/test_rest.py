"""The REST adapters (RunPod, Vast.ai, Lambda Cloud, Paperspace) against contract fakes.

Every check runs through the Service as a user's would: the provider is created in a fresh
home with its key in a real keyring, its base URL (or endpoint override) pointing at a real
HTTP server that answers as the provider's documented API does and rejects anything else.
The generic fault matrix (timeouts, refusals, 5xx, TLS ...) is tests/providers/test_check_faults.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from comfyvn_gui.core.checks import CheckResult
from comfyvn_gui.providers.runpod import MYSELF_QUERY
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.http import Request, arun, assert_clean
from tests.fakes.lambda_cloud import LambdaFake
from tests.fakes.paperspace import PaperspaceFake
from tests.fakes.runpod import RunPodFake, health_body
from tests.fakes.vast import VastFake

pytestmark = pytest.mark.usefixtures("secret_service")

TIMEOUT = 5.0
WRONG_KEY = "WRONG-key-canary-0123456789"


RUNPOD_ENDPOINTS = {
    "ep-ready": health_body(idle=1, running=1, in_queue=0, completed=7),
    "ep-queued": health_body(throttled=2, in_queue=3),
    "ep-zero": health_body(),
    "ep-crashed": health_body(unhealthy=3, in_queue=1),
    "ep-partly": health_body(idle=1, unhealthy=1),
}


@pytest.fixture
def svc(app_home: Path) -> Service:
    return Service(resolve_home())


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    """One running fake a provider for the whole module (each test resets its settings)."""
    with (
        RunPodFake(endpoints=RUNPOD_ENDPOINTS) as runpod,
        VastFake() as vast,
        LambdaFake() as lam,
        PaperspaceFake() as ps,
    ):
        yield {"runpod": runpod, "vast": vast, "lambda": lam, "paperspace": ps}


@pytest.fixture
def runpod(servers: dict[str, Any]) -> RunPodFake:
    fake: RunPodFake = servers["runpod"].reset()
    return fake


@pytest.fixture
def vast(servers: dict[str, Any]) -> VastFake:
    fake: VastFake = servers["vast"].reset()
    return fake


@pytest.fixture
def lam(servers: dict[str, Any]) -> LambdaFake:
    fake: LambdaFake = servers["lambda"].reset()
    return fake


@pytest.fixture
def ps(servers: dict[str, Any]) -> PaperspaceFake:
    fake: PaperspaceFake = servers["paperspace"].reset()
    return fake


def create(
    svc: Service,
    template: str,
    *,
    key: str | None,
    base_url: str | None = None,
    config: dict[str, Any] | None = None,
    gpu: str | None = None,
    pid: str = "p",
) -> None:
    payload: dict[str, Any] = {"id": pid, "config": dict(config or {})}
    if base_url is not None:
        payload["base_url"] = base_url
    if gpu is not None:
        payload["gpu"] = gpu
    if key is not None:
        payload["secrets"] = {"api_key": key}
    svc.create_provider(template, payload)


def check(svc: Service, kind: str, pid: str = "p") -> CheckResult:
    (result,) = arun(svc.check(kind, [pid], timeout_s=TIMEOUT))  # type: ignore[arg-type]
    assert isinstance(result, CheckResult)
    return result


def only(requests: list[Request], path: str) -> list[Request]:
    return [r for r in requests if r.path == path]


def assert_bearer(req: Request, key: str) -> None:
    assert req.headers.get("authorization") == f"Bearer {key}"
    assert "api_key" not in req.query and key not in json.dumps(req.query)


# -- RunPod --------------------------------------------------------------------------------


def runpod_config(fake: RunPodFake, **extra: Any) -> dict[str, Any]:
    return {"endpoints": {"graphql": fake.graphql_url}, **extra}


def test_runpod_validate_good_key(svc: Service, runpod: RunPodFake) -> None:
    create(
        svc, "runpod", key=runpod.key, base_url=runpod.serverless_base, config=runpod_config(runpod)
    )
    r = check(svc, "validate")
    assert r.status == "valid", r.message
    assert r.detail["identity"] == runpod.email and r.detail["user_id"] == runpod.user_id
    assert runpod.email in r.message
    (req,) = runpod.requests
    assert (req.method, req.path) == ("POST", "/graphql")
    assert_bearer(req, runpod.key)
    assert req.headers["content-type"].startswith("application/json")
    assert req.json() == {"query": MYSELF_QUERY}
    assert svc.get_provider("p").active is True
    assert svc.last_results()["p"]["validate"].status == "valid"
    assert_clean(svc, r, runpod.key)


@pytest.mark.parametrize("bad_key", ["401", "errors_in_200"])
def test_runpod_bad_key(svc: Service, runpod: RunPodFake, bad_key: str) -> None:
    runpod.bad_key = bad_key
    create(
        svc, "runpod", key=WRONG_KEY, base_url=runpod.serverless_base, config=runpod_config(runpod)
    )
    r = check(svc, "validate")
    assert r.status == "invalid_credentials", r.message
    assert r.fields == ["api_key"]
    assert "API key" in r.message
    assert svc.get_provider("p").active is False
    assert runpod.requests[0].headers["authorization"] == f"Bearer {WRONG_KEY}"
    assert_clean(svc, r, WRONG_KEY)


def test_runpod_null_myself_deactivates_a_valid_provider(svc: Service, runpod: RunPodFake) -> None:
    create(
        svc, "runpod", key=runpod.key, base_url=runpod.serverless_base, config=runpod_config(runpod)
    )
    assert check(svc, "validate").status == "valid"
    assert svc.get_provider("p").active is True
    runpod.mode = "null_myself"
    r = check(svc, "validate")
    assert (r.status, r.fields) == ("invalid_credentials", ["api_key"])
    assert svc.get_provider("p").active is False


def test_runpod_other_graphql_error_is_error_with_server_text(
    svc: Service, runpod: RunPodFake
) -> None:
    runpod.mode = "server_error"
    create(
        svc, "runpod", key=runpod.key, base_url=runpod.serverless_base, config=runpod_config(runpod)
    )
    r = check(svc, "validate")
    assert r.status == "error" and r.fields == []
    assert "Something went wrong" in r.message


def test_runpod_health_without_endpoint_is_the_account_query(
    svc: Service, runpod: RunPodFake
) -> None:
    create(
        svc, "runpod", key=runpod.key, base_url=runpod.serverless_base, config=runpod_config(runpod)
    )
    r = check(svc, "health")
    assert (r.status, r.code) == ("healthy", None)
    assert r.detail["identity"] == runpod.email
    assert "endpoint ID" in r.message
    assert [q.path for q in runpod.requests] == ["/graphql"]
    assert svc.last_results()["p"]["health"].status == "healthy"


@pytest.mark.parametrize(
    ("endpoint_id", "status", "code", "words"),
    [
        ("ep-ready", "healthy", None, "serving"),
        ("ep-zero", "healthy", None, "scaled to zero"),
        ("ep-queued", "degraded", None, "3 jobs are waiting"),
        ("ep-partly", "degraded", None, "unhealthy"),
        ("ep-crashed", "unhealthy", "error", "crashed"),
    ],
)
def test_runpod_endpoint_health(
    svc: Service,
    runpod: RunPodFake,
    endpoint_id: str,
    status: str,
    code: str | None,
    words: str,
) -> None:
    create(
        svc,
        "runpod",
        key=runpod.key,
        base_url=runpod.serverless_base,
        config=runpod_config(runpod, endpoint_id=endpoint_id),
    )
    r = check(svc, "health")
    assert (r.status, r.code) == (status, code), r.message
    assert words in r.message
    assert r.detail["endpoint_id"] == endpoint_id
    assert r.detail["jobs"]["inQueue"] == runpod.endpoints[endpoint_id]["jobs"]["inQueue"]
    (req,) = runpod.requests
    assert (req.method, req.path) == ("GET", f"/v2/{endpoint_id}/health")
    assert_bearer(req, runpod.key)
    assert_clean(svc, r, runpod.key)


def test_runpod_unknown_endpoint_is_misconfigured_endpoint_id(
    svc: Service, runpod: RunPodFake
) -> None:
    create(
        svc,
        "runpod",
        key=runpod.key,
        base_url=runpod.serverless_base,
        config=runpod_config(runpod, endpoint_id="ep-gone"),
    )
    r = check(svc, "health")
    assert (r.status, r.code, r.fields) == ("unhealthy", "misconfigured", ["endpoint_id"])
    assert "ep-gone" in r.message


def test_runpod_endpoint_health_bad_key(svc: Service, runpod: RunPodFake) -> None:
    create(
        svc,
        "runpod",
        key=WRONG_KEY,
        base_url=runpod.serverless_base,
        config=runpod_config(runpod, endpoint_id="ep-ready"),
    )
    r = check(svc, "health")
    assert (r.status, r.code, r.fields) == ("unhealthy", "invalid_credentials", ["api_key"])
    assert_clean(svc, r, WRONG_KEY)


# -- Vast.ai -------------------------------------------------------------------------------


def test_vast_validate_good_key(svc: Service, vast: VastFake) -> None:
    create(svc, "vast", key=vast.key, base_url=vast.api_base)
    r = check(svc, "validate")
    assert r.status == "valid", r.message
    assert vast.email in r.detail["identity"] and str(vast.user_id) in r.detail["identity"]
    assert r.detail["credit"] == 12.5 and r.detail["user_id"] == vast.user_id
    assert "$12.50" in r.message
    user, search = vast.requests  # validate also searches today's offers (the GPU floor)
    assert (user.method, user.path) == ("GET", "/api/v0/users/current")
    assert (search.method, search.path) == ("POST", "/api/v0/bundles/")
    for req in (user, search):
        assert_bearer(req, vast.key)
    assert "offers with 16 GB VRAM" in r.message and r.detail["offers"] > 0
    assert svc.get_provider("p").active is True
    # The API echoes the key in its answer; nothing of it may reach the result or the log.
    assert "api_key" not in r.detail
    assert_clean(svc, r, vast.key)


def test_vast_base_url_with_trailing_slash(svc: Service, vast: VastFake) -> None:
    create(svc, "vast", key=vast.key, base_url=vast.api_base + "/")
    r = check(svc, "validate")
    assert r.status == "valid", r.message
    assert vast.requests[0].path == "/api/v0/users/current"


def test_vast_fake_accepts_both_spellings_like_the_api(vast: VastFake) -> None:
    auth = {"Authorization": f"Bearer {vast.key}"}
    for path in ("/users/current", "/users/current/", "/instances", "/instances/"):
        assert httpx.get(vast.api_base + path, headers=auth).status_code == 200
    assert httpx.get(vast.api_base + "/users/current").status_code == 401
    assert httpx.get(vast.api_base + f"/users/current?api_key={vast.key}").status_code == 401
    assert httpx.post(vast.api_base + "/users/current", headers=auth).status_code == 405
    assert httpx.get(vast.api_base + "/users/me", headers=auth).status_code == 404


def test_vast_bad_key(svc: Service, vast: VastFake) -> None:
    create(svc, "vast", key=WRONG_KEY, base_url=vast.api_base)
    r = check(svc, "validate")
    assert (r.status, r.fields) == ("invalid_credentials", ["api_key"])
    assert svc.get_provider("p").active is False
    assert_clean(svc, r, WRONG_KEY)


def test_vast_health_counts_instances(svc: Service, vast: VastFake) -> None:
    create(svc, "vast", key=vast.key, base_url=vast.api_base)
    r = check(svc, "health")
    assert (r.status, r.code) == ("healthy", None), r.message
    assert (r.detail["instances"], r.detail["instances_running"]) == (2, 1)
    assert [(q.method, q.path) for q in vast.requests] == [
        ("GET", "/api/v0/users/current"),
        ("GET", "/api/v0/instances/"),
    ]
    for q in vast.requests:
        assert_bearer(q, vast.key)
    assert_clean(svc, r, vast.key)


@pytest.mark.parametrize("credit", [0.0, -3.2])
def test_vast_without_credit_is_valid_but_degraded(
    svc: Service, vast: VastFake, credit: float
) -> None:
    vast.reset(credit=credit)
    create(svc, "vast", key=vast.key, base_url=vast.api_base)
    v = check(svc, "validate")
    h = check(svc, "health")
    assert v.status == "valid" and "add credit" in v.message
    assert (h.status, h.code) == ("degraded", "quota_exhausted")
    assert "add credit" in h.message and h.detail["credit"] == credit


def test_vast_429_is_retried_then_passes(svc: Service, vast: VastFake) -> None:
    vast.reset(rate_limit_first=1, retry_after="0")
    create(svc, "vast", key=vast.key, base_url=vast.api_base)
    r = check(svc, "validate")
    assert r.status == "valid", r.message
    assert len(only(vast.requests, "/api/v0/users/current")) == 2


def test_vast_lasting_429_is_rate_limited(svc: Service, vast: VastFake) -> None:
    vast.reset(rate_limit_first=100, retry_after="60")
    create(svc, "vast", key=vast.key, base_url=vast.api_base)
    v = check(svc, "validate")
    h = check(svc, "health")
    assert v.status == "rate_limited" and "60" in v.message
    assert (h.status, h.code) == ("degraded", "rate_limited")
    assert svc.get_provider("p").active is False


# -- Lambda Cloud ----------------------------------------------------------------------------


def test_lambda_validate_default_type(svc: Service, lam: LambdaFake) -> None:
    create(svc, "lambda", key=lam.key, base_url=lam.api_base)
    r = check(svc, "validate")
    assert r.status == "valid", r.message
    d = r.detail
    assert (d["instance_type"], d["capacity_available"], d["regions_with_capacity"]) == (
        "gpu_1x_a100",
        True,
        ["us-east-1"],
    )
    assert d["price_usd_per_hour"] == 1.29 and d["instance_types_offered"] == 4
    (req,) = lam.requests
    assert (req.method, req.path) == ("GET", "/api/v1/instance-types")
    assert_bearer(req, lam.key)
    assert svc.get_provider("p").active is True
    assert_clean(svc, r, lam.key)


@pytest.mark.parametrize(
    ("config", "capacity", "health"),
    [
        ({"instance_type": "gpu_1x_a10", "region": "us-west-1"}, True, "healthy"),
        ({"instance_type": "gpu_1x_a100", "region": "us-west-1"}, False, "degraded"),
        ({"instance_type": "gpu_1x_h100_pcie"}, False, "degraded"),
        ({"region": "us-east-1"}, True, "healthy"),
    ],
)
def test_lambda_capacity(
    svc: Service, lam: LambdaFake, config: dict[str, str], capacity: bool, health: str
) -> None:
    create(svc, "lambda", key=lam.key, base_url=lam.api_base, config=config)
    v = check(svc, "validate")
    h = check(svc, "health")
    assert v.status == "valid", v.message
    assert v.detail["capacity_available"] is capacity
    assert h.status == health, h.message
    if not capacity:
        assert "no capacity" in h.message and h.detail["capacity_available"] is False
    assert svc.get_provider("p").active is True


def test_lambda_unknown_instance_type_is_misconfigured(svc: Service, lam: LambdaFake) -> None:
    create(
        svc,
        "lambda",
        key=lam.key,
        base_url=lam.api_base,
        config={"instance_type": "gpu_3x_nothing"},
    )
    r = check(svc, "validate")
    assert (r.status, r.fields) == ("misconfigured", ["instance_type"])
    assert "gpu_3x_nothing" in r.message and "gpu_1x_a10" in r.message
    assert svc.get_provider("p").active is False


def test_lambda_other_gpu_without_type_skips_capacity(svc: Service, lam: LambdaFake) -> None:
    # A GPU no listed instance type carries (the catalog prices no Lambda A10 type): no type
    # to look at until instance_type is set.
    create(svc, "lambda", key=lam.key, base_url=lam.api_base, gpu="A10")
    assert "instance_type" not in svc.get_provider("p").config
    v = check(svc, "validate")
    h = check(svc, "health")
    assert v.status == "valid" and v.detail["instance_type"] is None
    assert "Instance type" in v.message
    assert h.status == "healthy"


def test_lambda_gpu_picks_its_listed_type_whose_capacity_is_checked(
    svc: Service, lam: LambdaFake
) -> None:
    # Choosing the H100 picks the cheapest listed H100 type (issue 21): Validate looks at it.
    create(svc, "lambda", key=lam.key, base_url=lam.api_base, gpu="H100")
    [cheapest, *_] = svc.catalog.profile("lambda").machines_with("H100")
    assert svc.get_provider("p").config["instance_type"] == cheapest.id
    v = check(svc, "validate")
    assert v.status == "valid" and v.detail["instance_type"] == cheapest.id


def test_lambda_bad_key(svc: Service, lam: LambdaFake) -> None:
    create(svc, "lambda", key=WRONG_KEY, base_url=lam.api_base)
    r = check(svc, "validate")
    assert (r.status, r.fields) == ("invalid_credentials", ["api_key"])
    assert svc.get_provider("p").active is False
    assert_clean(svc, r, WRONG_KEY)


def test_lambda_429_honours_retry_after(svc: Service, lam: LambdaFake) -> None:
    lam.reset(rate_limit_first=1, retry_after="1")
    create(svc, "lambda", key=lam.key, base_url=lam.api_base)
    r = check(svc, "validate")
    assert r.status == "valid", r.message
    assert len(lam.requests) == 2
    assert r.latency_ms is not None and r.latency_ms >= 900


# -- Paperspace ------------------------------------------------------------------------------


def test_paperspace_validate_good_key(svc: Service, ps: PaperspaceFake) -> None:
    create(
        svc, "paperspace", key=ps.key, base_url=ps.api_base, config={"project": "comfyvn-importer"}
    )
    r = check(svc, "validate")
    assert r.status == "valid", r.message
    assert r.detail["identity"] == ps.email and r.detail["team"] == ps.team
    assert r.detail["project"] == {"id": "pr1ab2cd3", "name": "comfyvn-importer"}
    assert r.detail["project_checked"] is True
    assert (r.detail["machines"], r.detail["machines_running"]) == (2, 1)
    assert [(q.method, q.path) for q in ps.requests] == [
        ("GET", "/v1/machines"),
        ("GET", "/v1/auth/session"),
        ("GET", "/v1/projects"),
        ("GET", "/v1/machine-availability"),
    ]
    for q in ps.requests:
        assert_bearer(q, ps.key)
    assert svc.get_provider("p").active is True
    assert_clean(svc, r, ps.key)


@pytest.mark.parametrize("bad_key", ["401", "null_body", "empty_body", "wrong_shape"])
def test_paperspace_bad_key(svc: Service, ps: PaperspaceFake, bad_key: str) -> None:
    ps.reset(bad_key=bad_key)
    create(
        svc,
        "paperspace",
        key=WRONG_KEY,
        base_url=ps.api_base,
        config={"project": "comfyvn-importer"},
    )
    r = check(svc, "validate")
    h = check(svc, "health")
    assert (r.status, r.fields) == ("invalid_credentials", ["api_key"]), r.message
    assert (h.status, h.code) == ("unhealthy", "invalid_credentials")
    if bad_key != "401":
        assert "not accepted" in r.message
    assert svc.get_provider("p").active is False
    assert_clean(svc, r, WRONG_KEY)


def test_paperspace_missing_project_is_misconfigured(svc: Service, ps: PaperspaceFake) -> None:
    create(
        svc, "paperspace", key=ps.key, base_url=ps.api_base, config={"project": "no-such-project"}
    )
    r = check(svc, "validate")
    assert (r.status, r.fields) == ("misconfigured", ["project"])
    assert "no-such-project" in r.message
    assert r.detail["identity"].startswith(ps.email)
    assert svc.get_provider("p").active is False


def test_paperspace_project_by_id_on_a_later_page(svc: Service, ps: PaperspaceFake) -> None:
    projects = [{"id": f"pr{i:05d}", "name": f"p{i}"} for i in range(130)]
    ps.reset(projects=projects)
    create(svc, "paperspace", key=ps.key, base_url=ps.api_base, config={"project": "pr00125"})
    r = check(svc, "validate")
    assert r.status == "valid", r.message
    assert r.detail["project"] == {"id": "pr00125", "name": "p125"}
    pages = only(ps.requests, "/v1/projects")
    assert len(pages) == 2 and pages[1].query["after"] == ["120"]


def test_paperspace_without_project_says_so(svc: Service, ps: PaperspaceFake) -> None:
    create(svc, "paperspace", key=ps.key, base_url=ps.api_base)
    r = check(svc, "validate")
    assert r.status == "valid" and r.detail["project"] is None
    assert "Project is not set" in r.message
    assert not only(ps.requests, "/v1/projects")


def test_paperspace_health(svc: Service, ps: PaperspaceFake) -> None:
    create(svc, "paperspace", key=ps.key, base_url=ps.api_base, config={"project": "scratch"})
    r = check(svc, "health")
    assert (r.status, r.code) == ("healthy", None), r.message
    assert r.detail["identity"].startswith(ps.email)
    assert svc.last_results()["p"]["health"].status == "healthy"


# -- all four ------------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["runpod", "vast", "lambda", "paperspace"])
@pytest.mark.parametrize("kind", ["validate", "health"])
def test_missing_key_is_misconfigured_without_a_request(
    svc: Service, servers: dict[str, Any], template: str, kind: str
) -> None:
    fake = servers[template].reset()
    base = fake.serverless_base if isinstance(fake, RunPodFake) else fake.api_base
    create(svc, template, key=None, base_url=base)
    r = check(svc, kind)
    assert fake.requests == []
    assert r.code == "misconfigured" and r.fields == ["api_key"]
    assert r.status == ("misconfigured" if kind == "validate" else "unhealthy")
    assert "API key" in r.message


def test_all_four_checked_at_once(
    svc: Service, runpod: RunPodFake, vast: VastFake, lam: LambdaFake, ps: PaperspaceFake
) -> None:
    create(
        svc,
        "runpod",
        pid="rp",
        key=runpod.key,
        base_url=runpod.serverless_base,
        config=runpod_config(runpod),
    )
    create(svc, "vast", pid="va", key=vast.key, base_url=vast.api_base)
    create(svc, "lambda", pid="la", key=lam.key, base_url=lam.api_base)
    create(
        svc, "paperspace", pid="ps", key=ps.key, base_url=ps.api_base, config={"project": "scratch"}
    )
    results = arun(svc.check("validate", ["rp", "va", "la", "ps"], timeout_s=TIMEOUT))
    assert [(r.provider, r.status) for r in results] == [
        ("rp", "valid"),
        ("va", "valid"),
        ("la", "valid"),
        ("ps", "valid"),
    ]
    assert all(svc.get_provider(p).active for p in ("rp", "va", "la", "ps"))
    log = (svc.home.log_dir / "compute_advisor.log").read_text()
    for key in (runpod.key, vast.key, lam.key, ps.key):
        assert key not in log
