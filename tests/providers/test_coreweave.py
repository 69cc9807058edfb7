"""The CoreWeave adapter through ``Service.check``, against a local Kubernetes API server fake.

Each provider is created in a fresh home with its token in a real keyring and its ``kubernetes``
endpoint (the base URL) pointing at tests/fakes/kubernetes.py, which checks the bearer token
and the namespace in the path as an API server does. The client is the official ``kubernetes``
package, unmocked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from comfyvn_gui.core.checks import CheckResult
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.http import (
    FakeServer,
    SilentServer,
    arun,
    assert_clean,
    closed_by_peer,
    closed_port_url,
)
from tests.fakes.kubernetes import KubernetesFake

pytestmark = pytest.mark.usefixtures("secret_service")

TIMEOUT = 5.0
ORG = "cw1a2b"
WRONG_TOKEN = "WRONG-token-canary-0123456789abcdef"
POD_PATH = f"/api/v1/namespaces/tenant-{ORG}/pods"


@pytest.fixture
def svc(app_home: Path) -> Service:
    return Service(resolve_home())


@pytest.fixture(scope="module")
def server() -> Iterator[KubernetesFake]:
    with KubernetesFake() as fake:
        yield fake


@pytest.fixture
def k8s(server: KubernetesFake) -> KubernetesFake:
    fake: KubernetesFake = server.reset()
    return fake


def create(
    svc: Service,
    *,
    token: str | None,
    base_url: str | None,
    config: dict[str, Any] | None = None,
    pid: str = "cw",
) -> None:
    payload: dict[str, Any] = {"id": pid, "config": {"organization_id": ORG, **(config or {})}}
    if base_url is not None:
        payload["base_url"] = base_url
    if token is not None:
        payload["secrets"] = {"api_key": token}
    svc.create_provider("coreweave", payload)


def check(svc: Service, kind: str, pid: str = "cw", timeout_s: float = TIMEOUT) -> CheckResult:
    (result,) = arun(svc.check(kind, [pid], timeout_s=timeout_s))  # type: ignore[arg-type]
    assert isinstance(result, CheckResult)
    return result


def test_good_token_is_valid_with_identity_and_default_namespace(
    svc: Service, k8s: KubernetesFake
) -> None:
    create(svc, token=k8s.token, base_url=k8s.base)
    r = check(svc, "validate")
    assert r.status == "valid", r.message
    assert r.detail["namespace"] == f"tenant-{ORG}"
    assert r.detail["username"] == k8s.username
    assert f"tenant-{ORG}" in r.detail["identity"] and k8s.username in r.detail["identity"]
    (pods,) = k8s.pod_requests()
    assert pods.method == "GET" and pods.path == POD_PATH
    assert pods.query.get("limit") == ["1"]
    assert pods.headers["authorization"] == f"Bearer {k8s.token}"
    assert all(req.bearer == k8s.token for req in k8s.requests)
    assert_clean(svc, r, k8s.token)


def test_validate_reviews_the_rights_dispatch_needs(svc: Service, k8s: KubernetesFake) -> None:
    create(svc, token=k8s.token, base_url=k8s.base)
    r = check(svc, "validate")
    assert r.status == "valid", r.message
    assert r.detail["dispatch_permissions"] is True
    assert "create and delete Jobs and port-forward" in r.message
    assert "; it can list pods" in r.message  # (not masked as "token: <value>")
    reviews = [
        q.json()["spec"]["resourceAttributes"]
        for q in k8s.requests
        if q.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    ]
    asked = {(a["verb"], a.get("group", ""), a["resource"], a.get("subresource")) for a in reviews}
    assert asked == {
        ("create", "batch", "jobs", None),
        ("delete", "batch", "jobs", None),
        ("create", "", "pods", "portforward"),
    }
    assert all(a["namespace"] == f"tenant-{ORG}" for a in reviews)


@pytest.mark.parametrize(
    ("denied", "named"),
    [
        ("create pods/portforward", "may not create pods/portforward"),
        ("create jobs", "may not create jobs.batch"),
        ("delete jobs", "may not delete jobs.batch"),
    ],
)
def test_a_missing_dispatch_right_is_permission_denied_naming_it(
    svc: Service, k8s: KubernetesFake, denied: str, named: str
) -> None:
    k8s.reset(denied=[denied])
    create(svc, token=k8s.token, base_url=k8s.base)
    r = check(svc, "validate")
    assert r.status == "permission_denied", r.message
    assert r.fields == ["api_key", "namespace"]
    assert named in r.message and "RBAC verb" in r.message
    assert_clean(svc, r, k8s.token)


def test_a_cluster_without_access_reviews_is_noted_not_failed(
    svc: Service, k8s: KubernetesFake
) -> None:
    k8s.reset(access_review_missing=True)
    create(svc, token=k8s.token, base_url=k8s.base)
    r = check(svc, "validate")
    assert r.status == "valid", r.message
    assert r.detail["dispatch_permissions"] is False
    assert "access reviews" in r.detail["note"]
    assert "could not be checked" in r.message


def test_wrong_token_is_invalid_credentials_naming_api_key(
    svc: Service, k8s: KubernetesFake
) -> None:
    create(svc, token=WRONG_TOKEN, base_url=k8s.base)
    r = check(svc, "validate")
    assert (r.status, r.fields) == ("invalid_credentials", ["api_key"]), r.message
    assert "401" in r.message
    assert_clean(svc, r, WRONG_TOKEN)


def test_forbidden_namespace_is_permission_denied(svc: Service, k8s: KubernetesFake) -> None:
    create(svc, token=k8s.token, base_url=k8s.base, config={"namespace": "tenant-other"})
    r = check(svc, "validate")
    assert r.status == "permission_denied", r.message
    assert r.fields == ["api_key", "namespace"]
    assert "lacks rights in namespace tenant-other" in r.message
    assert "namespace-scoped" in r.message
    assert [q.path for q in k8s.pod_requests()] == ["/api/v1/namespaces/tenant-other/pods"]
    assert_clean(svc, r, k8s.token)


def test_missing_namespace_is_misconfigured_naming_namespace(
    svc: Service, k8s: KubernetesFake
) -> None:
    create(svc, token=k8s.token, base_url=k8s.base, config={"namespace": "nope"})
    r = check(svc, "validate")
    assert r.status == "misconfigured", r.message
    assert r.fields == ["namespace", "organization_id"]
    assert "nope" in r.message


def test_namespace_option_overrides_the_default(svc: Service, k8s: KubernetesFake) -> None:
    create(svc, token=k8s.token, base_url=k8s.base, config={"namespace": "renders"})
    r = check(svc, "validate")
    assert r.status == "valid", r.message
    assert r.detail["namespace"] == "renders"
    assert [q.path for q in k8s.pod_requests()] == ["/api/v1/namespaces/renders/pods"]


def test_endpoint_override_in_config_endpoints(svc: Service, k8s: KubernetesFake) -> None:
    create(svc, token=k8s.token, base_url=None, config={"endpoints": {"kubernetes": k8s.base}})
    assert check(svc, "validate").status == "valid"


def test_no_endpoint_is_misconfigured_naming_base_url(svc: Service, k8s: KubernetesFake) -> None:
    create(svc, token=k8s.token, base_url=None)
    r = check(svc, "validate")
    assert (r.status, r.fields) == ("misconfigured", ["base_url"]), r.message
    assert "API server address" in r.message
    assert not k8s.requests


def test_no_token_is_misconfigured_naming_api_key(svc: Service, k8s: KubernetesFake) -> None:
    create(svc, token=None, base_url=k8s.base)
    r = check(svc, "validate")
    assert (r.status, r.fields) == ("misconfigured", ["api_key"]), r.message


def test_kubeconfig_and_env_are_ignored(
    svc: Service, k8s: KubernetesFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kubeconfig pointing at the good fake with the good token is not used: the provider's
    own (wrong) token is, and nothing reaches the kubeconfig's server with its token."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": k8s.base}}],
                "users": [{"name": "u", "user": {"token": k8s.token}}],
                "contexts": [
                    {"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "renders"}}
                ],
                "current-context": "x",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(kubeconfig.read_text())
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(k8s.server.port))
    # The provider: wrong token, no endpoint -> the kubeconfig must not fill either in.
    create(svc, token=WRONG_TOKEN, base_url=None)
    r = check(svc, "validate")
    assert (r.status, r.fields) == ("misconfigured", ["base_url"]), r.message
    assert not k8s.requests
    svc.remove_provider("cw")
    create(svc, token=WRONG_TOKEN, base_url=k8s.base)
    r = check(svc, "validate")
    assert r.status == "invalid_credentials", r.message
    assert k8s.requests and all(req.bearer == WRONG_TOKEN for req in k8s.requests)
    assert all("/namespaces/renders/" not in req.path for req in k8s.requests)


def test_a_loaded_kubeconfig_default_is_not_used(
    svc: Service, k8s: KubernetesFake, tmp_path: Path
) -> None:
    """Even where something in the process loaded a kubeconfig (setting the client's default
    Configuration to the good server and token), the provider's own settings are used."""
    from kubernetes import client, config

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": k8s.base}}],
                "users": [{"name": "u", "user": {"token": k8s.token}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    config.load_kube_config(config_file=str(kubeconfig))
    try:
        create(svc, token=WRONG_TOKEN, base_url=k8s.base)
        r = check(svc, "validate")
    finally:
        client.Configuration.set_default(None)
    assert r.status == "invalid_credentials", r.message
    assert k8s.requests and all(req.bearer == WRONG_TOKEN for req in k8s.requests)


def test_health_namespace_scoped_token_skips_gpu_capacity(
    svc: Service, k8s: KubernetesFake
) -> None:
    create(svc, token=k8s.token, base_url=k8s.base)
    r = check(svc, "health")
    assert r.status == "healthy", r.message
    assert r.detail["gpu_capacity"] is None and "namespace-scoped" in r.detail["note"]
    assert any(q.path == "/api/v1/nodes" for q in k8s.requests)
    assert_clean(svc, r, k8s.token)


def test_health_reports_gpu_capacity_where_nodes_are_readable(
    svc: Service, k8s: KubernetesFake
) -> None:
    k8s.reset(nodes_forbidden=False)
    create(svc, token=k8s.token, base_url=k8s.base)
    r = check(svc, "health")
    assert r.status == "healthy", r.message
    assert (r.detail["gpu_capacity"], r.detail["gpu_allocatable"], r.detail["gpu_nodes"]) == (
        16,
        14,
        2,
    )
    assert "14 of 16 GPUs" in r.message


def test_health_wrong_token_is_unhealthy(svc: Service, k8s: KubernetesFake) -> None:
    create(svc, token=WRONG_TOKEN, base_url=k8s.base)
    r = check(svc, "health")
    assert (r.status, r.code) == ("unhealthy", "invalid_credentials"), r.message


def test_refused_connection_is_unreachable_naming_base_url(svc: Service) -> None:
    create(svc, token=WRONG_TOKEN, base_url=closed_port_url())
    r = check(svc, "validate")
    assert (r.status, r.fields) == ("unreachable", ["base_url"]), r.message
    assert_clean(svc, r, WRONG_TOKEN)


def test_untrusted_tls_certificate_is_misconfigured(svc: Service) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    import ssl

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    with FakeServer(ssl_context=server_ctx) as tls:
        create(svc, token=WRONG_TOKEN, base_url=tls.base)
        r = check(svc, "validate")
    assert (r.status, r.fields) == ("misconfigured", ["base_url"]), r.message
    assert "CA bundle" in r.message


def test_wrong_address_404_names_base_url(svc: Service) -> None:
    with FakeServer() as other:  # some web server that is not an API server: 404 everywhere
        create(svc, token=WRONG_TOKEN, base_url=other.base)
        r = check(svc, "validate")
    assert (r.status, r.fields) == ("misconfigured", ["base_url"]), r.message


def test_black_hole_ends_by_the_deadline(svc: Service) -> None:
    with SilentServer() as silent:
        create(svc, token=WRONG_TOKEN, base_url=silent.base)
        started = time.monotonic()
        r = check(svc, "validate", timeout_s=2)
        elapsed = time.monotonic() - started
        assert r.status == "timeout", r.message
        assert elapsed < 3.5
        # urllib3's own read timeout let go of the socket: no executor worker is left hanging.
        assert silent.conns
        assert all(closed_by_peer(c, started + 3.0) for c in silent.conns)
    assert_clean(svc, r, WRONG_TOKEN)


def test_black_holed_clusters_do_not_starve_the_others(svc: Service, k8s: KubernetesFake) -> None:
    """6 black-holed CoreWeave providers (more than a lane's 4 workers) + a good one + local,
    in one call: the black holes time out, the others get their real results."""
    with SilentServer() as silent:
        black = [f"hole{i}" for i in range(6)]
        for pid in black:
            create(svc, token=WRONG_TOKEN, base_url=silent.base, pid=pid)
        create(svc, token=k8s.token, base_url=k8s.base, pid="good")
        svc.register_provider(
            {"id": "local", "config": {"endpoints": {"comfyui": closed_port_url()}}}
        )
        started = time.monotonic()
        results = arun(svc.check("validate", ["good", *black, "local"], timeout_s=3))
        elapsed = time.monotonic() - started
    by_id = {r.provider: r for r in results}
    assert elapsed < 4.5
    assert all(by_id[pid].status == "timeout" for pid in black)
    assert by_id["good"].status == "valid", by_id["good"].message
    assert by_id["good"].latency_ms < 1500
    assert by_id["local"].status == "valid", by_id["local"].message


def test_no_token_in_logs(
    svc: Service, k8s: KubernetesFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    create(svc, token=k8s.token, base_url=k8s.base)
    check(svc, "validate")
    check(svc, "health")
    create(svc, token=WRONG_TOKEN, base_url=k8s.base, pid="bad")
    check(svc, "validate", pid="bad")
    assert k8s.token not in caplog.text and WRONG_TOKEN not in caplog.text


def test_startup_does_not_import_kubernetes() -> None:
    import subprocess
    import sys

    code = (
        "import sys, comfyvn_gui.cli, comfyvn_gui.service, comfyvn_gui.providers;"
        "import comfyvn_gui.providers.coreweave;"
        "print('kubernetes' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
