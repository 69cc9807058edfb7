"""The Azure adapter through ``Service.check``, against a fake Entra ID authority and ARM.

The counterparts (tests/fakes/azure.py) answer over HTTPS with certificates of their own CA,
which the app trusts only through its ``network.ca_bundle`` setting. The credential is
azure-identity's own ``ClientSecretCredential`` — nothing of the SDK is mocked; only its HTTP
goes through the app's httpx client.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from comfyvn_gui.core.checks import CheckResult
from comfyvn_gui.providers.azure import family_of, vcpus_of
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.azure import RESOURCE_GROUP, SCOPE, AzureFake
from tests.fakes.http import FakeServer, SilentServer, arun, closed_port_url, reply_json

pytestmark = pytest.mark.usefixtures("secret_service")

TIMEOUT = 5.0
WRONG_SECRET = "Wr0ng~client-secret-canary-51c2"
T4 = "standardNCASv3_T4Family"


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureFake]:
    with AzureFake(tmp_path_factory.mktemp("azure-pki")) as az:
        yield az


@pytest.fixture
def az(fake: AzureFake) -> AzureFake:
    return fake.reset()


@pytest.fixture
def svc(app_home: Path, az: AzureFake) -> Service:
    service = Service(resolve_home())
    service.set_setting("network.ca_bundle", str(az.ca_file))
    return service


def add(
    svc: Service,
    az: AzureFake,
    pid: str = "az",
    *,
    secret: str | None = None,
    authority: str | None = None,
    management: str | None = None,
    meta: dict[str, Any] | None = None,
    **config: Any,
) -> None:
    cfg: dict[str, Any] = {
        "tenant_id": az.tenant_id,
        "client_id": az.client_id,
        "subscription_id": az.subscription_id,
        "endpoints": {"management": management or az.management},
    }
    cfg.update(config)
    svc.create_provider(
        "azure",
        {
            "id": pid,
            "base_url": authority or az.authority,
            "config": cfg,
            "secrets": {"client_secret": secret or az.secret},
            "meta": meta or {},
        },
    )


def check(svc: Service, kind: str = "validate", pid: str = "az", timeout: float = TIMEOUT) -> Any:
    (result,) = arun(svc.check(kind, [pid], timeout_s=timeout))  # type: ignore[arg-type]
    assert isinstance(result, CheckResult)
    return result


def assert_clean(svc: Service, *secrets: str) -> None:
    """No secret in a result, in what was stored, or in the audit log."""
    stored = (svc.home.data_dir / "checks.json").read_text("utf-8")
    log = svc.home.log_dir / "compute_advisor.log"
    log_text = log.read_text("utf-8") if log.exists() else ""
    for secret in secrets:
        assert secret not in stored
        assert secret not in log_text


def token_posts(az: AzureFake) -> list[dict[str, str]]:
    return [
        {k: v[0] for k, v in parse_qs(r.body.decode()).items()}
        for r in az.entra.requests
        if r.method == "POST"
    ]


# -- the token and the subscription ------------------------------------------------------


def test_good_secret_is_valid_with_the_subscription_as_identity(
    svc: Service, az: AzureFake
) -> None:
    add(svc, az)
    r = check(svc)
    assert r.status == "valid", r.message
    assert r.detail["identity"] == f"ComfyVN GPU (pay-as-you-go) ({az.subscription_id})"
    assert (r.detail["tenant_id"], r.detail["client_id"]) == (az.tenant_id, az.client_id)
    assert r.detail["state"] == "Enabled" and r.detail["offer"] == "PayAsYouGo_2014-09-01"
    assert r.message.startswith(
        "Azure accepted the app registration: subscription ComfyVN GPU (pay-as-you-go) is "
        "Enabled; quota for 2 more Standard_NC4as_T4_v3 (4 vCPUs) in westeurope"
    )
    assert svc.get_provider("az").active is True
    # What went over the wire: one client-credentials token request to the tenant's endpoint,
    # then ARM with that token: the subscription, then the region's usages.
    (post,) = az.entra.requests
    assert (post.method, post.path) == ("POST", f"/{az.tenant_id}/oauth2/v2.0/token")
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert token_posts(az) == [
        {
            "client_id": az.client_id,
            "client_secret": az.secret,
            "grant_type": "client_credentials",
            "scope": SCOPE,
        }
    ]
    (token,) = az.tokens
    assert [(q.method, q.path, q.query, q.bearer) for q in az.arm.requests] == [
        ("GET", f"/subscriptions/{az.subscription_id}", {"api-version": ["2022-12-01"]}, token),
        (
            "GET",
            f"/subscriptions/{az.subscription_id}/providers/Microsoft.Compute/locations/"
            "westeurope/usages",
            {"api-version": ["2023-07-01"]},
            token,
        ),
    ]
    assert token not in r.model_dump_json() and az.secret not in r.model_dump_json()
    h = check(svc, "health")
    assert (h.status, h.code) == ("healthy", None), h.message
    quota = h.detail["quota"]
    assert (quota["region"], quota["vm_size"], quota["vcpus_per_vm"]) == (
        "westeurope",
        "Standard_NC4as_T4_v3",
        4,
    )
    assert quota["quota_ids"] == [T4, "cores"]
    t4 = quota["regions"]["westeurope"]["usages"][0]
    assert (t4["id"], t4["current"], t4["limit"], t4["free"], t4["need"]) == (T4, 0, 8, 8, 4)
    assert_clean(svc, az.secret, token)


def test_the_tenants_domain_name_works_as_tenant_id(svc: Service, az: AzureFake) -> None:
    add(svc, az, tenant_id=az.tenant_domain)
    r = check(svc)
    assert r.status == "valid", r.message
    assert az.entra.requests[0].path == f"/{az.tenant_domain}/oauth2/v2.0/token"
    assert r.detail["tenant_id"] == az.tenant_id  # the subscription's own answer


def test_bad_secret_is_invalid_credentials_naming_client_secret(
    svc: Service, az: AzureFake, caplog: pytest.LogCaptureFixture
) -> None:
    add(svc, az, secret=WRONG_SECRET)
    with caplog.at_level(logging.DEBUG):
        r = check(svc)
        h = check(svc, "health")
    assert (r.status, r.fields) == ("invalid_credentials", ["client_secret"])
    assert "AADSTS7000215" in r.message and "not its Secret ID" in r.message
    assert r.detail == {"entra_error": "AADSTS7000215"}
    assert (h.status, h.code, h.fields) == ("unhealthy", "invalid_credentials", ["client_secret"])
    assert svc.get_provider("az").active is False
    assert az.arm.requests == []  # no token, no Resource Manager call
    assert token_posts(az)[0]["client_secret"] == WRONG_SECRET
    # azure-identity's own "get_token failed" warnings are not repeated into the app's logs.
    assert not [x for x in caplog.records if x.name.startswith("azure") and x.levelno >= 30]
    assert WRONG_SECRET not in r.model_dump_json() + caplog.text
    assert_clean(svc, WRONG_SECRET)


def test_expired_secret_says_expired(svc: Service, az: AzureFake) -> None:
    az.apps[az.client_id].expired = True
    add(svc, az)
    r = check(svc)
    assert (r.status, r.fields) == ("invalid_credentials", ["client_secret"])
    assert "expired" in r.message and "AADSTS7000222" in r.message


def test_unknown_application_names_client_id(svc: Service, az: AzureFake) -> None:
    other = "11111111-2222-3333-4444-555555555555"
    add(svc, az, client_id=other)
    r = check(svc)
    assert (r.status, r.fields) == ("invalid_credentials", ["client_id"])
    assert "AADSTS700016" in r.message and az.tenant_id in r.message
    assert token_posts(az)[0]["client_id"] == other


def test_unknown_tenant_names_tenant_id(svc: Service, az: AzureFake) -> None:
    other = "99999999-8888-7777-6666-555555555555"
    add(svc, az, tenant_id=other)
    r = check(svc)
    assert (r.status, r.fields) == ("invalid_credentials", ["tenant_id"])
    assert "AADSTS90002" in r.message and other in r.message
    assert az.entra.requests[0].path == f"/{other}/oauth2/v2.0/token"
    assert az.arm.requests == []


@pytest.mark.parametrize(
    ("state", "status", "words"),
    [("Disabled", "permission_denied", "is disabled"), ("Deleted", "misconfigured", "deleted")],
)
def test_disabled_or_deleted_subscription_fails_naming_subscription_id(
    svc: Service, az: AzureFake, state: str, status: str, words: str
) -> None:
    az.subscription.state = state
    add(svc, az)
    r = check(svc)
    h = check(svc, "health")
    assert (r.status, r.fields) == (status, ["subscription_id"])
    assert words in r.message and az.subscription_id in r.message
    assert r.detail["state"] == state
    assert (h.status, h.code) == ("unhealthy", status)
    assert svc.get_provider("az").active is False
    assert not any("usages" in q.path for q in az.arm.requests)


@pytest.mark.parametrize("state", ["Warned", "PastDue"])
def test_warned_or_past_due_subscription_is_valid_but_degraded(
    svc: Service, az: AzureFake, state: str
) -> None:
    az.subscription.state = state
    add(svc, az)
    r = check(svc)
    h = check(svc, "health")
    assert r.status == "valid" and f"is {state}: " in r.message and "disable" in r.message
    assert (h.status, h.code) == ("degraded", "quota_exhausted")
    assert f"is {state}: " in h.message and "disable" in h.message


@pytest.mark.parametrize(
    ("case", "status", "fields", "words"),
    [
        ("missing", "misconfigured", ["subscription_id"], "SubscriptionNotFound"),
        ("no_role", "permission_denied", ["subscription_id"], "Access control (IAM)"),
        ("other_tenant", "misconfigured", ["tenant_id", "subscription_id"], "another tenant"),
    ],
)
def test_subscription_refusals_name_the_field_to_fix(
    svc: Service, az: AzureFake, case: str, status: str, fields: list[str], words: str
) -> None:
    if case == "missing":
        add(svc, az, subscription_id="00000000-1111-2222-3333-444444444444")
    elif case == "no_role":
        az.subscription.members.clear()
        add(svc, az)
    else:  # the app signs in to a tenant the subscription does not belong to
        other = az.add_tenant()
        az.apps[az.client_id].tenant_id = other
        add(svc, az, tenant_id=other)
    r = check(svc)
    assert (r.status, r.fields) == (status, fields), r.message
    assert words in r.message


# -- quota -------------------------------------------------------------------------------


def test_lapsed_quota_is_valid_but_unhealthy_quota_exhausted(svc: Service, az: AzureFake) -> None:
    az.subscription.set_usage("westeurope", T4, current=4, limit=4)
    add(svc, az)
    r = check(svc)
    h = check(svc, "health")
    assert r.status == "valid"
    assert "but no quota left for one Standard_NC4as_T4_v3 (4 vCPUs) in westeurope" in r.message
    assert svc.get_provider("az").active is True
    assert (h.status, h.code) == ("unhealthy", "quota_exhausted")
    assert "Standard NCASv3_T4 Family vCPUs: 4 of 4 in use, one VM needs 4" in h.message
    assert "Usage + quotas" in h.message
    region = h.detail["quota"]["regions"]["westeurope"]
    assert region["room"] is False and region["vms"] == 0
    assert svc.last_results()["az"]["health"].status == "unhealthy"


def test_allowed_regions_from_meta_are_checked_and_one_with_room_suggested(
    svc: Service, az: AzureFake
) -> None:
    az.subscription.set_usage("westeurope", T4, current=0, limit=0)  # a new subscription
    add(svc, az, meta={"allowed_regions": ["westeurope", "northeurope", "uksouth"]})
    az.subscription.set_usage("uksouth", "cores", current=100, limit=100)
    h = check(svc, "health")
    assert (h.status, h.code) == ("unhealthy", "quota_exhausted")
    assert "switch the region to northeurope, which has room" in h.message
    quota = h.detail["quota"]
    assert quota["allowed_regions"] == ["westeurope", "northeurope", "uksouth"]
    assert quota["regions_with_room"] == ["northeurope"]
    assert quota["regions"]["uksouth"]["reason"] == (
        "Total Regional vCPUs: 100 of 100 in use, one VM needs 4"
    )
    regions = sorted(q.path.split("/")[-2] for q in az.arm.requests if "usages" in q.path)
    assert regions == ["northeurope", "uksouth", "westeurope"]


def test_a_region_outside_the_allowed_ones_is_misconfigured(svc: Service, az: AzureFake) -> None:
    add(svc, az, region="eastus", meta={"allowed_regions": "westeurope, northeurope"})
    r = check(svc)
    h = check(svc, "health")
    assert r.status == "valid" and "not one of the provider's allowed regions" in r.message
    assert (h.status, h.code) == ("unhealthy", "misconfigured")


def test_quota_ids_from_meta_replace_the_derived_family(svc: Service, az: AzureFake) -> None:
    add(svc, az, vm_size="Standard_NV36ads_A10_v5", meta={"quota_ids": ["virtualMachines"]})
    h = check(svc, "health")
    assert h.status == "healthy", h.message
    assert h.detail["quota"]["quota_ids"] == ["virtualMachines"]
    (row,) = h.detail["quota"]["regions"]["westeurope"]["usages"]
    assert row["need"] == 1  # not a vCPU quota: one VM is one unit
    # Without meta.quota_ids the A10 family's own quota (0 in this subscription) decides.
    add(svc, az, "az2", vm_size="Standard_NV36ads_A10_v5")
    h2 = check(svc, "health", "az2")
    assert (h2.status, h2.code) == ("unhealthy", "quota_exhausted")
    assert "Standard NVADSA10v5 Family vCPUs: 0 of 0 in use, one VM needs 36" in h2.message


def test_an_unknown_vm_size_checks_the_regional_total_and_says_so(
    svc: Service, az: AzureFake
) -> None:
    add(svc, az, vm_size="Standard_D4s_v5")
    h = check(svc, "health")
    assert h.status == "healthy"
    assert h.detail["quota"]["quota_ids"] == ["cores"]
    assert "meta.quota_ids" in h.detail["quota"]["notes"][0]


def test_quota_that_cannot_be_read_degrades_health_only(svc: Service, az: AzureFake) -> None:
    az.apps[az.client_id].can_read_quota = False
    add(svc, az)
    r = check(svc)
    h = check(svc, "health")
    assert r.status == "valid" and "could not check quota" in r.message
    assert (h.status, h.code) == ("degraded", "permission_denied")


def test_usage_pages_are_followed(svc: Service, az: AzureFake) -> None:
    az.usage_page_size = 3  # the T4 family is on the second of three pages
    add(svc, az)
    h = check(svc, "health")
    assert h.status == "healthy", h.message
    pages = [q for q in az.arm.requests if q.path.endswith("/usages")]
    assert [q.query.get("$skiptoken") for q in pages] == [None, ["3"], ["6"]]
    assert all(q.bearer in az.tokens for q in pages)


def test_vm_size_names() -> None:
    assert (vcpus_of("Standard_NC4as_T4_v3"), family_of("Standard_NC4as_T4_v3")) == (4, T4)
    assert vcpus_of("Standard_ND96amsr_A100_v4") == 96
    assert family_of("Standard_NC24ads_A100_v4") == "StandardNCADSA100v4Family"
    assert family_of("Standard_D4s_v5") is None and vcpus_of("nonsense") is None


# -- settings, trust and addresses -------------------------------------------------------


def test_missing_secret_is_misconfigured_naming_it(svc: Service, az: AzureFake) -> None:
    svc.create_provider(
        "azure",
        {
            "id": "az",
            "base_url": az.authority,
            "config": {"tenant_id": az.tenant_id, "client_id": az.client_id},
        },
    )
    r = check(svc)
    assert (r.status, r.fields) == ("misconfigured", ["client_secret", "subscription_id"])
    assert az.entra.requests == []


def test_the_authority_is_trusted_only_through_the_ca_bundle_setting(
    app_home: Path, az: AzureFake
) -> None:
    svc = Service(resolve_home())  # no network.ca_bundle
    add(svc, az)
    r = check(svc)
    assert r.status == "misconfigured" and "TLS certificate" in r.message
    assert az.entra.requests == []  # refused before anything was sent
    svc.set_setting("network.ca_bundle", str(az.ca_file))
    assert check(svc).status == "valid"


def test_a_plain_http_authority_is_refused_before_sending_the_secret(
    svc: Service, az: AzureFake
) -> None:
    with FakeServer(default=lambda req: reply_json(200, {})) as plain:
        add(svc, az, authority=plain.base)
        r = check(svc)
    assert (r.status, r.fields) == ("misconfigured", ["base_url"])
    assert "https://" in r.message
    assert plain.requests == []


def test_an_authority_that_is_not_entra_is_an_error(svc: Service, az: AzureFake) -> None:
    add(svc, az, authority=az.management)  # ARM answers, but not as a token endpoint
    r = check(svc)
    assert (r.status, r.fields) == ("misconfigured", ["base_url"]), r.message
    assert "not an Entra ID authority" in r.message


def test_a_refused_management_address_names_the_endpoints(svc: Service, az: AzureFake) -> None:
    add(svc, az, management=closed_port_url().replace("http:", "https:"))
    r = check(svc)
    assert (r.status, r.fields) == ("unreachable", ["endpoints"])


# -- deadlines and starvation ------------------------------------------------------------


@pytest.mark.parametrize("where", ["authority", "management"])
def test_a_black_holed_endpoint_ends_by_the_deadline(
    svc: Service, az: AzureFake, where: str
) -> None:
    with SilentServer() as silent:
        hole = silent.base.replace("http:", "https:")
        if where == "authority":
            add(svc, az, authority=hole)
        else:
            add(svc, az, management=hole)
        started = time.monotonic()
        r = check(svc, timeout=2)
        elapsed = time.monotonic() - started
    assert r.status == "timeout", r.message
    assert elapsed < 3.5


def test_black_holed_azure_providers_do_not_starve_the_others(svc: Service, az: AzureFake) -> None:
    """More black-holed Azure providers than the executor's lane has workers (4), checked
    together with a good Azure provider and the local one: the good ones answer at once."""
    alone = check(svc, "validate", "local")
    with SilentServer() as silent:
        hole = silent.base.replace("http:", "https:")
        for i in range(6):
            add(svc, az, f"hole{i}", authority=hole)
        add(svc, az, "good")
        ids = [f"hole{i}" for i in range(6)] + ["good", "local"]
        started = time.monotonic()
        results = arun(svc.check("validate", ids, timeout_s=2))
        elapsed = time.monotonic() - started
    by_id = {r.provider: r for r in results}
    print(
        f"\n6 black-holed Azure + good Azure + local in {elapsed:.2f} s; "
        + ", ".join(f"{r.provider} {r.status} {r.latency_ms:.0f} ms" for r in results)
    )
    assert [by_id[f"hole{i}"].status for i in range(6)] == ["timeout"] * 6
    assert by_id["good"].status == "valid", by_id["good"].message
    assert by_id["good"].latency_ms < 1500
    assert by_id["local"].status == alone.status and by_id["local"].latency_ms < 1500
    assert elapsed < 3.5


# -- never ambient credentials -----------------------------------------------------------


def test_ambient_azure_environment_is_never_used(
    svc: Service, az: AzureFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeServer(default=lambda req: reply_json(200, {"access_token": "x"})) as imds:
        ambient = {
            # the environment credential's variables, holding the GOOD credentials
            "AZURE_TENANT_ID": az.tenant_id,
            "AZURE_CLIENT_ID": az.client_id,
            "AZURE_CLIENT_SECRET": az.secret,
            "AZURE_SUBSCRIPTION_ID": az.subscription_id,
            # the authority, regional token service and managed-identity endpoints
            "AZURE_AUTHORITY_HOST": closed_port_url().replace("http:", "https:"),
            "AZURE_REGIONAL_AUTHORITY_NAME": "westus2",
            "MSAL_FORCE_REGION": "westus2",
            "REGION_NAME": "westus2",
            "IDENTITY_ENDPOINT": imds.base,
            "IDENTITY_HEADER": "x",
            "MSI_ENDPOINT": imds.base,
            "AZURE_FEDERATED_TOKEN_FILE": "/nonexistent",
        }
        for k, v in ambient.items():
            monkeypatch.setenv(k, v)
        add(svc, az, secret=WRONG_SECRET)  # stored: a wrong secret
        r = check(svc)
        add(svc, az, "az-good")  # stored: the good credentials
        good = check(svc, "validate", "az-good")
    assert r.status == "invalid_credentials"
    assert good.status == "valid", good.message
    assert [p["client_secret"] for p in token_posts(az)] == [WRONG_SECRET, az.secret]
    assert all(q.path == f"/{az.tenant_id}/oauth2/v2.0/token" for q in az.entra.requests)
    assert imds.requests == []


def test_no_ambient_credential_class_appears_in_the_code() -> None:
    root = Path(__file__).resolve().parents[2]
    names = [
        "Default" + "AzureCredential",
        "Environment" + "Credential",
        "ManagedIdentity" + "Credential",
        "AzureCli" + "Credential",
        "SharedTokenCache" + "Credential",
        "Interactive" + "BrowserCredential",
    ]
    files = [*(root / "comfyvn_gui").rglob("*.py"), root / "tests" / "fakes" / "azure.py"]
    files.append(Path(__file__))
    found = [(f.name, n) for f in files for n in names if n in f.read_text("utf-8")]
    assert found == []


def test_importing_the_adapter_imports_no_azure_package() -> None:
    code = (
        "import sys, comfyvn_gui.providers.azure as a; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'msal')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout.replace("'", '"')) == []


# -- launch permission (the permissions API) ---------------------------------------------


def test_validate_without_a_resource_group_says_dispatch_needs_one(
    svc: Service, az: AzureFake
) -> None:
    add(svc, az)
    r = check(svc)
    assert r.status == "valid", r.message
    assert "dispatch needs resource_group" in r.message
    assert not any("permissions" in q.path for q in az.arm.requests)


def test_validate_proves_the_role_may_create_vms_in_the_resource_group(
    svc: Service, az: AzureFake
) -> None:
    add(svc, az, resource_group=RESOURCE_GROUP)
    r = check(svc)
    assert r.status == "valid", r.message
    assert f"may create and delete VMs in resource group {RESOURCE_GROUP}" in r.message
    (perm,) = [q for q in az.arm.requests if q.path.endswith("/permissions")]
    assert perm.path == (
        f"/subscriptions/{az.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/"
        "Microsoft.Authorization/permissions"
    )
    assert perm.query == {"api-version": ["2022-04-01"]} and perm.bearer in az.tokens
    h = check(svc, "health")  # (health does not ask)
    assert h.status == "healthy"
    assert len([q for q in az.arm.requests if q.path.endswith("/permissions")]) == 1


def test_validate_lists_exactly_the_actions_the_role_lacks(svc: Service, az: AzureFake) -> None:
    # Virtual Machine Contributor alone: no virtual networks or security groups of its own.
    az.permissions = [
        {
            "actions": [
                "Microsoft.Compute/virtualMachines/*",
                "Microsoft.Compute/disks/*",
                "Microsoft.DevTestLab/schedules/*",
                "Microsoft.Network/networkInterfaces/*",
                "Microsoft.Network/publicIPAddresses/*",
                "Microsoft.Network/networkSecurityGroups/join/action",
                "Microsoft.Network/networkSecurityGroups/read",
                "Microsoft.Network/virtualNetworks/read",
                "Microsoft.Network/virtualNetworks/subnets/join/action",
            ],
            "notActions": ["Microsoft.Network/publicIPAddresses/delete"],
            "dataActions": [],
            "notDataActions": [],
        }
    ]
    add(svc, az, resource_group=RESOURCE_GROUP)
    r = check(svc)
    assert (r.status, r.fields) == ("permission_denied", ["resource_group"]), r.message
    missing = [
        "Microsoft.Network/publicIPAddresses/delete",
        "Microsoft.Network/networkSecurityGroups/write",
        "Microsoft.Network/networkSecurityGroups/delete",
        "Microsoft.Network/virtualNetworks/write",
        "Microsoft.Network/virtualNetworks/delete",
    ]
    assert r.detail["missing_actions"] == missing
    assert f"does not allow {', '.join(missing)}, which" in r.message
    assert RESOURCE_GROUP in r.message and "Contributor" in r.message
    assert svc.get_provider("az").active is False


def test_validate_with_a_resource_group_that_does_not_exist_is_misconfigured(
    svc: Service, az: AzureFake
) -> None:
    add(svc, az, resource_group="no-such-group")
    r = check(svc)
    assert (r.status, r.fields) == ("misconfigured", ["resource_group"]), r.message
    assert "no-such-group does not exist" in r.message and "ResourceGroupNotFound" in r.message


def test_the_permission_reading_follows_azures_rules() -> None:
    from comfyvn_gui.providers.azure.permissions import REQUIRED_ACTIONS, allowed, missing_actions

    contributor = [{"actions": ["*"], "notActions": ["Microsoft.Authorization/*/Write"]}]
    assert missing_actions(contributor) == []
    assert not allowed(contributor, "Microsoft.Authorization/roleAssignments/write")
    reader = [{"actions": ["*/read"], "notActions": []}]
    assert missing_actions(reader) == list(REQUIRED_ACTIONS)
    # notActions subtract within their own role only; another role may still grant it.
    two = [
        {"actions": ["Microsoft.Compute/*"], "notActions": ["microsoft.compute/*/delete"]},
        {"actions": ["Microsoft.Compute/virtualMachines/delete"], "notActions": []},
    ]
    assert allowed(two, "Microsoft.Compute/virtualMachines/delete")
    assert not allowed(two, "Microsoft.Compute/disks/delete")
