"""The Google Cloud adapter through ``Service.check``, against a local contract fake.

The fake (tests/fakes/gcp.py) is a token endpoint that verifies each grant's RS256 signature
against the public half of the keys it knows, plus Resource Manager ``testIamPermissions``,
Compute Engine and Cloud Storage endpoints that accept only the bearer tokens it issued. Keys
are RSA key pairs made at test time; the provider's key JSON goes into the real keyring.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.checks import CheckResult
from comfyvn_gui.core.errors import InputError
from comfyvn_gui.providers import gcp
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.gcp import (
    ALL_PROJECT_PERMISSIONS,
    CLOUD_PLATFORM,
    GOOGLE_TOKEN_URL,
    PROJECT,
    GcpFake,
    ServiceAccountKey,
    make_key,
)
from tests.fakes.http import SilentServer, arun, closed_port_url

pytestmark = pytest.mark.usefixtures("secret_service")

TIMEOUT = 5.0
BUCKET = "comfyvn-assets-us"


@pytest.fixture(scope="module")
def keys() -> dict[str, ServiceAccountKey]:
    return {
        "good": make_key(f"comfyvn-render@{PROJECT}.iam.gserviceaccount.com"),
        "other": make_key(f"ci-deployer@{PROJECT}.iam.gserviceaccount.com"),
        "foreign": make_key(
            "shared-gpu@central-ops-2291.iam.gserviceaccount.com", "central-ops-2291"
        ),
    }


@pytest.fixture(scope="module")
def server() -> Iterator[GcpFake]:
    with GcpFake() as fake:
        yield fake


@pytest.fixture
def fake(server: GcpFake, keys: dict[str, ServiceAccountKey]) -> GcpFake:
    server.reset()
    for k in keys.values():
        server.register(k)
    return server


@pytest.fixture
def svc(app_home: Path) -> Service:
    return Service(resolve_home())


def create(
    svc: Service,
    fake: GcpFake | None,
    key_json: str | None,
    *,
    pid: str = "g",
    project: str = PROJECT,
    region: str = "us-central1",
    endpoints: dict[str, str] | None = None,
    gpu: str | None = None,
    **options: Any,
) -> None:
    config: dict[str, Any] = {"project_id": project, "region": region, **options}
    eps = dict(fake.endpoints() if fake is not None else {})
    eps.update(endpoints or {})
    if eps:
        config["endpoints"] = eps
    payload: dict[str, Any] = {"id": pid, "config": config}
    if key_json is not None:
        payload["secrets"] = {"service_account_json": key_json}
    if gpu is not None:
        payload["gpu"] = gpu
    svc.create_provider("gcp", payload)


def check(svc: Service, kind: str, pid: str = "g", timeout_s: float = TIMEOUT) -> CheckResult:
    (result,) = arun(svc.check(kind, [pid], timeout_s=timeout_s))  # type: ignore[arg-type]
    assert isinstance(result, CheckResult)
    return result


def key_fragments(key: ServiceAccountKey) -> list[str]:
    """Pieces of the private key that must never appear anywhere."""
    body = [line for line in key.pem.splitlines() if line and not line.startswith("-----")]
    return [key.pem, key.json(), *body[:3], body[-1]]


def assert_clean(svc: Service, results: list[CheckResult], key: ServiceAccountKey) -> None:
    """No part of the key in the results, what was stored, or the audit log."""
    stored = json.dumps(
        {
            pid: {k: v.model_dump(mode="json") for k, v in checks.items()}
            for pid, checks in svc.last_results().items()
        }
    )
    log = svc.home.log_dir / "compute_advisor.log"
    log_text = log.read_text() if log.exists() else ""
    registry = (svc.home.config_dir / "providers.json").read_text()
    for frag in key_fragments(key):
        for r in results:
            assert frag not in r.model_dump_json()
        assert frag not in stored
        assert frag not in log_text
        assert frag not in registry


def paths(fake: GcpFake) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests]


TEST_PROJECT = ("POST", f"/v1/projects/{PROJECT}:testIamPermissions")
ZONE_A = ("GET", f"/compute/v1/projects/{PROJECT}/zones/us-central1-a/acceleratorTypes")
AGGREGATED = ("GET", f"/compute/v1/projects/{PROJECT}/aggregated/acceleratorTypes")
REGION = ("GET", f"/compute/v1/projects/{PROJECT}/regions/us-central1")
TEST_BUCKET = ("GET", f"/storage/v1/b/{BUCKET}/iam/testPermissions")
GET_BUCKET = ("GET", f"/storage/v1/b/{BUCKET}")


# --------------------------------------------------------------------------- good key


def test_good_key_is_valid_with_identity_and_everything_checked(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    key = keys["good"]
    create(svc, fake, key.json(), zone="us-central1-a", bucket=BUCKET)
    result = check(svc, "validate")
    assert result.status == "valid", result.message
    d = result.detail
    assert d["identity"] == key.email and d["key_id"] == key.key_id
    assert (d["project"], d["key_project"], d["region"], d["zone"]) == (
        PROJECT,
        PROJECT,
        "us-central1",
        "us-central1-a",
    )
    assert (d["gpu"], d["accelerator"]) == ("L4", "nvidia-l4")
    assert d["zones_offering_gpu"] == ["us-central1-a"]
    assert (d["bucket_location"], d["bucket_location_type"]) == ("US-CENTRAL1", "region")
    assert d["permissions_checked"] == len(gcp.PROJECT_PERMISSIONS) + len(gcp.BUCKET_PERMISSIONS)
    assert "warnings" not in d
    assert result.message.startswith(
        f"Google Cloud accepted the key of {key.email} for project {PROJECT}"
    )
    assert "bucket comfyvn-assets-us is in US-CENTRAL1" in result.message
    assert svc.get_provider("g").active is True

    # What went over the wire.
    assert paths(fake) == [
        ("POST", "/token"),
        TEST_PROJECT,
        TEST_BUCKET,
        ZONE_A,
        GET_BUCKET,
    ]
    [grant] = fake.grants  # the token endpoint verified the signature with the key's public half
    assert (grant["kid"], grant["iss"], grant["aud"]) == (key.key_id, key.email, GOOGLE_TOKEN_URL)
    assert grant["scope"] == CLOUD_PLATFORM and grant["exp"] - grant["iat"] == 3600
    issued = set(fake.tokens)
    assert len(issued) == 1
    assert all(r.bearer in issued for r in fake.requests[1:])
    assert fake.requests[1].json() == {
        "permissions": [*gcp.PROJECT_PERMISSIONS, *gcp.SOFT_PERMISSIONS]
    }
    assert fake.requests[2].query["permissions"] == list(gcp.BUCKET_PERMISSIONS)
    assert_clean(svc, [result], key)


def test_health_reports_gpu_quota(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    create(svc, fake, keys["good"].json(), bucket=BUCKET)
    health = check(svc, "health")
    assert (health.status, health.code) == ("healthy", None), health.message
    assert health.detail["zones_offering_gpu"] == ["us-central1-a", "us-central1-b"]
    assert health.detail["gpu_quota"] == {"metric": "NVIDIA_L4_GPUS", "limit": 2.0, "usage": 1.0}
    assert "1 L4 (nvidia-l4) GPU of quota free in us-central1" in health.message
    assert paths(fake) == [("POST", "/token"), AGGREGATED, REGION]
    assert_clean(svc, [health], keys["good"])


def test_health_degraded_without_gpu_quota(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    fake.quotas["us-central1"]["NVIDIA_L4_GPUS"] = (1.0, 1.0)
    create(svc, fake, keys["good"].json())
    health = check(svc, "health")
    assert (health.status, health.code) == ("degraded", "quota_exhausted")
    assert "no L4 (nvidia-l4) GPU quota left in us-central1 (1 of 1 in use)" in health.message
    assert "quota increase" in health.message


def test_no_zone_set_looks_at_every_zone_of_the_region(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    # europe-west1 has no "-a" zone: guessing "<region>-a" would have failed.
    create(svc, fake, keys["good"].json(), region="europe-west1")
    result = check(svc, "validate")
    assert result.status == "valid", result.message
    assert result.detail["zones_checked"] == ["europe-west1-b", "europe-west1-c"]
    assert result.detail["zones_offering_gpu"] == ["europe-west1-b"]
    assert AGGREGATED in paths(fake)
    assert "no Cloud Storage bucket is set" in result.message


def test_key_from_another_project_is_valid_with_a_warning(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    create(svc, fake, keys["foreign"].json())
    result = check(svc, "validate")
    assert result.status == "valid", result.message
    assert result.detail["key_project"] == "central-ops-2291"
    [warning] = result.detail["warnings"]
    assert "made in project central-ops-2291" in warning and PROJECT in warning
    assert "central-ops-2291" in result.message


# --------------------------------------------------------------------------- broken keys


def test_broken_json_key_is_misconfigured_without_a_request(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    key = keys["good"]
    broken = key.json().replace('"private_key_id"', '"private_key_id",', 1)  # a stray comma
    # The app refuses to store it ...
    with pytest.raises(InputError) as refused:
        create(svc, fake, broken, pid="refused")
    assert refused.value.fields == ["service_account_json"]
    assert key.key_id not in str(refused.value)
    # ... so it only reaches a check when the keyring entry was changed outside the app.
    create(svc, fake, key.json())
    svc.registry.secrets.set("g", "service_account_json", broken)
    result = check(svc, "validate")
    health = check(svc, "health")
    assert result.status == "misconfigured"
    assert result.fields == ["service_account_json"]
    assert "not valid JSON (line" in result.message
    assert (health.status, health.code) == ("unhealthy", "misconfigured")
    assert fake.requests == []
    assert_clean(svc, [result, health], key)


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        (
            {"type": "authorized_user"},
            "misconfigured",
            "'authorized_user' credential, not a service",
        ),
        ({"client_email": None}, "misconfigured", "lacks client_email"),
        ({"private_key_id": None}, "misconfigured", "lacks private_key_id"),
        ({"universe_domain": "example-sovereign.cloud"}, "misconfigured", "another Google Cloud"),
        ("damaged", "invalid_credentials", "private key in the service account key cannot be read"),
    ],
    ids=["user-credentials", "no-client-email", "no-key-id", "other-universe", "damaged-key"],
)
def test_unusable_key_names_the_field_and_never_echoes_it(
    svc: Service,
    fake: GcpFake,
    keys: dict[str, ServiceAccountKey],
    change: Any,
    status: str,
    words: str,
) -> None:
    key = keys["good"]
    if change == "damaged":  # a PEM whose middle was lost: the key data cannot be parsed
        lines = key.pem.splitlines()
        text = key.json(private_key="\n".join(lines[:5] + lines[-4:]) + "\n")
    else:
        text = key.json(**change)
    create(svc, fake, text)
    result = check(svc, "validate")
    assert result.status == status, result.message
    assert result.fields == ["service_account_json"]
    assert words in result.message
    assert fake.requests == []
    assert_clean(svc, [result], key)


def test_key_token_uri_elsewhere_is_refused_before_sending(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    key = keys["good"]
    eps = fake.endpoints()
    del eps["token_uri"]  # no override: the key's own token_uri would be used ...
    create(svc, None, key.json(token_uri=fake.token_url), endpoints=eps)
    result = check(svc, "validate")
    assert result.status == "misconfigured"
    assert result.fields == ["service_account_json"]
    assert "token_uri is not a Google address" in result.message
    assert fake.requests == []  # ... but the signed grant never left


# --------------------------------------------------------------------------- rejected keys


def test_revoked_key_is_invalid_credentials(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    key = keys["good"]
    fake.revoke(key)
    create(svc, fake, key.json())
    result = check(svc, "validate")
    health = check(svc, "health")
    assert result.status == "invalid_credentials"
    assert result.fields == ["service_account_json"]
    assert "revoked or deleted" in result.message and key.email in result.message
    assert result.detail["google_error"] == "invalid_grant"
    assert (health.status, health.code) == ("unhealthy", "invalid_credentials")
    assert paths(fake) == [("POST", "/token"), ("POST", "/token")]
    assert fake.tokens == {}
    assert svc.get_provider("g").active is False
    assert_clean(svc, [result, health], key)


def test_key_signed_with_another_private_key_is_rejected(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    """Same account and key id, another private key: only a verified signature tells."""
    forged = keys["good"].with_other_private_key()
    create(svc, fake, forged.json())
    result = check(svc, "validate")
    assert result.status == "invalid_credentials"
    assert "revoked or deleted" in result.message
    assert fake.grants == [] and fake.tokens == {}
    assert_clean(svc, [result], forged)


def test_wrong_clock_is_explained(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    fake.clock_offset_s = 2 * 3600  # Google's clock two hours ahead of this computer's
    create(svc, fake, keys["good"].json())
    result = check(svc, "validate")
    assert result.status == "misconfigured"
    assert "this computer's clock is wrong" in result.message


# --------------------------------------------------------------------------- permissions, APIs


def test_missing_permissions_are_listed_by_name(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    key = keys["good"]
    fake.register(
        key,
        ALL_PROJECT_PERMISSIONS
        - {"compute.instances.create", "compute.disks.create", "storage.objects.create"},
    )
    create(svc, fake, key.json(), bucket=BUCKET)
    result = check(svc, "validate")
    assert result.status == "permission_denied"
    assert result.fields == ["service_account_json"]
    assert result.detail["missing_permissions"] == [
        "compute.instances.create",
        "compute.disks.create",
        "storage.objects.create",
    ]
    assert result.detail["missing_bucket_permissions"] == ["storage.objects.create"]
    for name in result.detail["missing_permissions"]:
        assert name in result.message
    assert "lacks 3 permissions" in result.message and key.email in result.message
    assert svc.get_provider("g").active is False

    # Granting storage.objects.create on the bucket alone (not the project) is enough there.
    fake.bucket_granted[key.email] = {"storage.objects.create"}
    fake.granted[key.email] |= {"compute.instances.create", "compute.disks.create"}
    assert check(svc, "validate").status == "valid"


def test_the_permission_test_asks_for_what_a_launch_and_release_send(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    key = keys["good"]
    # No service account goes on the VM: neither of these is needed, nor asked about.
    fake.register(
        key,
        ALL_PROJECT_PERMISSIONS
        - {"iam.serviceAccounts.actAs", "compute.instances.setServiceAccount"},
    )
    create(svc, fake, key.json())
    result = check(svc, "validate")
    assert result.status == "valid", result.message
    assert "unverified_permissions" not in result.detail and "warnings" not in result.detail
    asked = fake.requests[1].json()["permissions"]
    assert {
        "compute.instances.create",
        "compute.instances.get",
        "compute.instances.list",
        "compute.instances.delete",
        "compute.instances.setMetadata",
        "compute.instances.setLabels",
        "compute.disks.create",
        "compute.subnetworks.use",
        "compute.subnetworks.useExternalIp",
        "compute.zoneOperations.get",
    } <= set(asked)
    assert "compute.instances.setServiceAccount" not in asked
    assert "iam.serviceAccounts.actAs" not in asked

    # Without the right to label or list VMs, a launch (labels) or `running` (list) fails:
    fake.granted[key.email] -= {"compute.instances.setLabels", "compute.instances.list"}
    result = check(svc, "validate")
    assert result.status == "permission_denied"
    assert result.detail["missing_permissions"] == [
        "compute.instances.list",
        "compute.instances.setLabels",
    ]


def test_no_access_to_the_project(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    create(svc, fake, keys["good"].json(), project="someone-elses-42")
    result = check(svc, "validate")
    assert result.status == "permission_denied"
    assert result.fields == ["project_id", "service_account_json"]
    assert "no access to project someone-elses-42" in result.message


def test_compute_api_disabled_says_enable_it(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    fake.compute_enabled = False
    create(svc, fake, keys["good"].json())
    result = check(svc, "validate")
    health = check(svc, "health")
    assert result.status == "misconfigured"
    assert result.fields == ["project_id"]
    assert "enable the Compute Engine API" in result.message
    assert result.detail["api_disabled"] == "compute.googleapis.com"
    assert result.detail["activation_url"].startswith(
        "https://console.developers.google.com/apis/api/compute.googleapis.com/overview"
    )
    assert (health.status, health.code) == ("unhealthy", "misconfigured")


def test_gpu_not_offered_in_the_zone(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    create(svc, fake, keys["good"].json(), zone="us-central1-c")  # T4 only
    result = check(svc, "validate")
    health = check(svc, "health")
    assert result.status == "misconfigured" and result.fields == ["zone"]
    assert "L4 (nvidia-l4) is not offered in zone us-central1-c" in result.message
    assert (health.status, health.code) == ("degraded", "misconfigured")


def test_zone_outside_the_region_is_misconfigured_without_a_request(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    create(svc, fake, keys["good"].json(), zone="europe-west4-a")
    result = check(svc, "validate")
    assert result.status == "misconfigured"
    assert result.fields == ["zone", "region"]
    assert fake.requests == []


# --------------------------------------------------------------------------- bucket


@pytest.mark.parametrize(
    ("location", "kind", "extra", "words"),
    [
        ("EUROPE-WEST4", "region", {}, "is in region EUROPE-WEST4, but this provider runs in"),
        ("US", "multi-region", {}, "is in multi-region US"),
        ("EUR4", "dual-region", {}, "dual-region EUR4 (EUROPE-NORTH1, EUROPE-WEST4)"),
    ],
    ids=["other-region", "multi-region", "dual-region-elsewhere"],
)
def test_bucket_not_in_the_region_is_misconfigured(
    svc: Service,
    fake: GcpFake,
    keys: dict[str, ServiceAccountKey],
    location: str,
    kind: str,
    extra: dict[str, Any],
    words: str,
) -> None:
    fake.buckets["vn-scripts"] = {"location": location, "locationType": kind, **extra}
    create(svc, fake, keys["good"].json(), bucket="vn-scripts")
    result = check(svc, "validate")
    assert result.status == "misconfigured"
    assert result.fields == ["bucket"]
    assert words in result.message and "co-located" in result.message
    assert result.detail["bucket_location"] == location


@pytest.mark.parametrize(
    "meta",
    [
        {"location": "NAM4", "locationType": "dual-region"},
        {
            "location": "US",
            "locationType": "dual-region",
            "customPlacementConfig": {"dataLocations": ["US-CENTRAL1", "US-EAST4"]},
        },
    ],
    ids=["predefined", "configurable"],
)
def test_dual_region_bucket_including_the_region_is_valid(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey], meta: dict[str, Any]
) -> None:
    fake.buckets["vn-dual"] = meta
    create(svc, fake, keys["good"].json(), bucket="vn-dual")
    result = check(svc, "validate")
    assert result.status == "valid", result.message
    assert "which includes us-central1" in result.message


def test_missing_bucket_is_misconfigured(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    create(svc, fake, keys["good"].json(), bucket="no-such-bucket-7")
    result = check(svc, "validate")
    assert result.status == "misconfigured" and result.fields == ["bucket"]
    assert "no Cloud Storage bucket named no-such-bucket-7" in result.message


# --------------------------------------------------------------------------- ambient credentials


def test_ambient_google_credentials_are_never_used(
    svc: Service,
    fake: GcpFake,
    keys: dict[str, ServiceAccountKey],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = keys["other"]  # a valid key Google knows, with every permission
    adc = tmp_path / "adc.json"
    adc.write_text(other.json(token_uri=fake.token_url))
    gcloud = tmp_path / "gcloud"
    gcloud.mkdir()
    (gcloud / "application_default_credentials.json").write_text(adc.read_text())
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(gcloud))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "central-ops-2291")
    monkeypatch.setenv("CLOUDSDK_CORE_PROJECT", "central-ops-2291")
    monkeypatch.setenv("GCE_METADATA_HOST", closed_port_url().removeprefix("http://"))

    key = keys["good"]
    create(svc, fake, key.json())
    result = check(svc, "validate")
    assert result.status == "valid", result.message
    assert result.detail["identity"] == key.email
    assert [g["iss"] for g in fake.grants] == [key.email]
    assert set(fake.tokens.values()) == {key.email}

    # A provider without a stored key does not fall back to them either.
    fake.reset()
    create(svc, fake, None, pid="nokey")
    empty = check(svc, "validate", "nokey")
    assert empty.status == "misconfigured"
    assert empty.fields == ["service_account_json"]
    assert fake.requests == []


def test_adapter_module_imports_no_cloud_sdk() -> None:
    code = (
        "import sys, comfyvn_gui.providers.gcp\n"
        "print([m for m in sys.modules if m == 'google' or m.startswith('google.')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- deadlines


def test_unreachable_token_endpoint(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    create(svc, fake, keys["good"].json(), endpoints={"token_uri": closed_port_url() + "/token"})
    result = check(svc, "validate")
    assert result.status == "unreachable"
    assert result.fields == []  # the token address is no field of the form


@pytest.mark.parametrize("kind", ["validate", "health"])
def test_black_holed_token_endpoint_ends_by_the_deadline(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey], kind: str
) -> None:
    with SilentServer() as silent:
        create(svc, fake, keys["good"].json(), endpoints={"token_uri": silent.base + "/token"})
        started = time.monotonic()
        result = check(svc, kind, timeout_s=2)
        elapsed = time.monotonic() - started
    assert elapsed < 3.5, elapsed
    assert result.code == "timeout"
    assert result.status == ("timeout" if kind == "validate" else "unhealthy")


def test_black_holed_providers_do_not_starve_the_others(
    svc: Service, fake: GcpFake, keys: dict[str, ServiceAccountKey]
) -> None:
    """Six black-holed Google providers (more than the lane's four workers), a good one and
    ``local``, in one call: the good ones come back with their real result, quickly."""
    timeout_s = 4.0
    with SilentServer() as silent:
        holes = [f"hole{i}" for i in range(6)]
        for i, pid in enumerate(holes):
            # Half black-hole the token endpoint, half the APIs after a good token.
            eps = (
                {"token_uri": silent.base + "/token"}
                if i % 2 == 0
                else {"resourcemanager": silent.base, "compute": silent.base}
            )
            create(svc, fake, keys["good"].json(), pid=pid, endpoints=eps)
        create(svc, fake, keys["good"].json(), pid="good")
        svc.register_provider(
            {"id": "local", "config": {"endpoints": {"comfyui": closed_port_url()}}}
        )
        started = time.monotonic()
        results = arun(svc.check("validate", [*holes, "good", "local"], timeout_s=timeout_s))
        elapsed = time.monotonic() - started
    by_id = {r.provider: r for r in results}
    assert by_id["good"].status == "valid", by_id["good"].message
    assert by_id["local"].status == "valid", by_id["local"].message
    assert all(by_id[p].status == "timeout" for p in holes)
    assert elapsed < timeout_s + 1.5, elapsed
    good_ms, local_ms = by_id["good"].latency_ms, by_id["local"].latency_ms
    assert good_ms is not None and local_ms is not None
    # Measured: both come back in well under a second while the holes wait out the deadline.
    assert good_ms < 1500, good_ms
    assert local_ms < 1500, local_ms
    print(f"\nstarvation: good gcp {good_ms:.0f} ms, local {local_ms:.0f} ms, call {elapsed:.2f} s")
