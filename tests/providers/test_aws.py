"""The AWS EC2 adapter through ``Service.check``, against moto's real server with IAM enforced.

Every provider is created in a fresh home with its keys in a real keyring and its ``aws``
endpoint pointing at moto (tests/fakes/aws.py: a session-wide ThreadedMotoServer, reset per
test, users and keys made while auth is off, then auth turned on). Health checks that read the
EC2 vCPU quota go through :class:`QuotaFront`, which answers Service Quotas (moto has no EC2
quotas) and passes everything else to moto.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.checks import CheckResult
from comfyvn_gui.providers import aws as aws_adapter
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.aws import (
    NEWEST_DLAMI,
    Key,
    MotoAccount,
    QuotaFront,
    auth_off,
    moto_server,
    setup_account,
)
from tests.fakes.http import FakeServer, Route, SilentServer, arun, closed_by_peer, closed_port_url

pytestmark = pytest.mark.usefixtures("secret_service")

TIMEOUT = 10.0
BOGUS_KEY = "AKIA" + "BOGUS00000000000"
WRONG_SECRET = "WrongSecretCanary0123456789abcdefghijklm"  # 40 characters


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    yield from moto_server()


@pytest.fixture
def moto(moto_url: str) -> Iterator[MotoAccount]:
    account = setup_account(moto_url)
    yield account
    auth_off(moto_url)


@pytest.fixture
def svc(app_home: Path) -> Service:
    return Service(resolve_home())


def add_aws(
    svc: Service,
    endpoint: str | None,
    secrets: dict[str, str] | None,
    pid: str = "aws1",
    **config: Any,
) -> None:
    payload: dict[str, Any] = {"id": pid, "config": dict(config)}
    if endpoint is not None:
        payload["config"]["endpoints"] = {"aws": endpoint}
    if secrets is not None:
        payload["secrets"] = secrets
    svc.create_provider("aws", payload)


def check(svc: Service, kind: str, pid: str = "aws1", timeout_s: float = TIMEOUT) -> CheckResult:
    [result] = arun(svc.check(kind, [pid], timeout_s=timeout_s))  # type: ignore[arg-type]
    assert isinstance(result, CheckResult)
    return result


def assert_clean(svc: Service, result: CheckResult, key: Key) -> None:
    """Neither the access key ID nor the secret in the result, the stored results, the log."""
    stored = svc.home.data_dir / "checks.json"
    log = svc.home.log_dir / "compute_advisor.log"
    texts = [result.model_dump_json()]
    texts += [p.read_text("utf-8") for p in (stored, log) if p.exists()]
    for text in texts:
        assert key.secret_key not in text
        assert key.access_key not in text


# --------------------------------------------------------------------------- validate


def test_good_key_is_valid_with_the_account_arn(svc: Service, moto: MotoAccount) -> None:
    key = moto.keys["app"]
    add_aws(svc, moto.url, key.secrets)
    result = check(svc, "validate")
    assert result.status == "valid", result.message
    d = result.detail
    assert d["identity"] == d["arn"] == moto.arn("app")
    assert d["account"] == moto.account_id and d["user_id"]
    assert (d["instance_type"], d["region"], d["vcpus"]) == ("g5.xlarge", "us-east-1", 4)
    assert d["gpus"] == [
        {"name": "NVIDIA A10G", "count": 1, "vram_gb": 24, "vram_mib_reported": 22888}
    ]  # AWS reports the memory left after ECC; the vendor's figure is 24 GB
    assert moto.arn("app") in result.message
    assert "g5.xlarge (1 x NVIDIA A10G 24 GB, 4 vCPUs) is offered in us-east-1" in result.message
    assert result.fields == []
    assert svc.get_provider("aws1").active is True
    assert_clean(svc, result, key)


def test_unknown_access_key_names_access_key(svc: Service, moto: MotoAccount) -> None:
    add_aws(svc, moto.url, {"access_key": BOGUS_KEY, "secret_key": WRONG_SECRET})
    result = check(svc, "validate")
    assert (result.status, result.fields) == ("invalid_credentials", ["access_key"])
    assert "access key ID" in result.message and "InvalidClientTokenId" in result.message
    assert svc.get_provider("aws1").active is False
    assert_clean(svc, result, Key(BOGUS_KEY, WRONG_SECRET, "-"))


def test_wrong_secret_names_secret_key(svc: Service, moto: MotoAccount) -> None:
    key = moto.keys["app"]
    add_aws(svc, moto.url, {"access_key": key.access_key, "secret_key": WRONG_SECRET})
    result = check(svc, "validate")
    assert (result.status, result.fields) == ("invalid_credentials", ["secret_key"])
    assert "SignatureDoesNotMatch" in result.message
    assert_clean(svc, result, Key(key.access_key, WRONG_SECRET, "-"))


def test_user_without_ec2_permission_is_permission_denied(svc: Service, moto: MotoAccount) -> None:
    key = moto.keys["noec2"]
    add_aws(svc, moto.url, key.secrets)
    result = check(svc, "validate")
    assert result.status == "permission_denied", result.message
    assert result.fields == ["access_key"]
    assert result.detail["missing_permission"] == "ec2:DescribeInstanceTypeOfferings"
    assert "may not call ec2:DescribeInstanceTypeOfferings" in result.message
    assert result.detail["identity"] == moto.arn("noec2")  # whose policy to change
    assert moto.arn("noec2") in result.message
    assert_clean(svc, result, key)


def test_unknown_instance_type_names_instance_type(svc: Service, moto: MotoAccount) -> None:
    add_aws(svc, moto.url, moto.keys["app"].secrets, instance_type="g9.huge")
    result = check(svc, "validate")
    assert (result.status, result.fields) == ("misconfigured", ["instance_type"])
    assert "'g9.huge' is not an EC2 instance type" in result.message


def test_type_not_offered_in_the_region(svc: Service, moto: MotoAccount) -> None:
    # moto's offering data (like AWS) has no g5 in us-west-1
    add_aws(svc, moto.url, moto.keys["app"].secrets, region="us-west-1")
    result = check(svc, "validate")
    assert (result.status, result.fields) == ("misconfigured", ["instance_type", "region"])
    assert "g5.xlarge is not offered in us-west-1" in result.message


def test_region_aws_does_not_have_names_region(svc: Service, moto: MotoAccount) -> None:
    add_aws(svc, moto.url, moto.keys["app"].secrets, region="xx-nowhere-9")
    result = check(svc, "validate")
    assert (result.status, result.fields) == ("misconfigured", ["region"])
    assert "'xx-nowhere-9' is not an AWS region" in result.message


def test_key_unknown_only_in_its_region_names_region(svc: Service, moto: MotoAccount) -> None:
    """A standard-partition key in GovCloud (or a region not enabled): AWS says the token is
    invalid, but us-east-1 knows it — so the region, not the key, is wrong."""
    add_aws(svc, moto.url, moto.keys["app"].secrets, region="us-gov-west-1")
    result = check(svc, "validate")
    assert (result.status, result.fields) == ("misconfigured", ["region"])
    assert "accepts the access key in us-east-1 but not in us-gov-west-1" in result.message


@pytest.mark.parametrize(
    ("user", "bucket", "status", "fields", "text"),
    [
        ("app", "assets-use1", "valid", [], "bucket assets-use1 is in us-east-1"),
        ("app", "assets-euw1", "misconfigured", ["bucket"], "is in eu-west-1 but instances"),
        ("app", "assets-none", "misconfigured", ["bucket"], "no S3 bucket named 'assets-none'"),
        ("nos3", "assets-use1", "permission_denied", ["bucket"], "s3:GetBucketLocation"),
    ],
)
def test_bucket_option(
    svc: Service,
    moto: MotoAccount,
    user: str,
    bucket: str,
    status: str,
    fields: list[str],
    text: str,
) -> None:
    add_aws(svc, moto.url, moto.keys[user].secrets, bucket=bucket)
    result = check(svc, "validate")
    assert (result.status, result.fields) == (status, fields), result.message
    assert text in result.message


# --------------------------------------------------------------------------- launch permission


def test_validate_proves_the_launch_with_a_dry_run_of_the_newest_deep_learning_ami(
    svc: Service, moto: MotoAccount
) -> None:
    add_aws(svc, moto.url, moto.keys["app"].secrets)
    result = check(svc, "validate")
    assert result.status == "valid", result.message
    assert result.detail["launch"] == {"dry_run": "allowed", "ami_id": NEWEST_DLAMI}
    assert "DryRun launch" in result.message
    assert_no_instance(moto)


def test_a_key_that_may_only_describe_is_refused_at_the_dry_run(
    svc: Service, moto: MotoAccount
) -> None:
    """ec2:Describe* passes the type check; the DryRun launch is what tells the truth (moto
    answers AccessDenied where EC2 says UnauthorizedOperation: both are mapped)."""
    add_aws(svc, moto.url, moto.keys["ec2only"].secrets)
    result = check(svc, "validate")
    assert result.status == "permission_denied", result.message
    assert "ec2:RunInstances" in result.message
    assert moto.arn("ec2only") in result.message  # whose policy to change
    assert result.detail["aws_error"] in ("AccessDenied", "UnauthorizedOperation")
    assert_no_instance(moto)


def test_the_ami_option_is_used_for_the_dry_run(svc: Service, moto: MotoAccount) -> None:
    add_aws(svc, moto.url, moto.keys["app"].secrets, ami_id="ami-03cf127a")
    result = check(svc, "validate")
    assert result.status == "valid", result.message
    assert result.detail["launch"]["ami_id"] == "ami-03cf127a"


def test_a_region_without_the_default_ami_names_ami_id(svc: Service, moto: MotoAccount) -> None:
    """Amazon's images are published here in us-east-1 and eu-west-1 only (DLAMI_REGIONS)."""
    add_aws(svc, moto.url, moto.keys["app"].secrets, region="us-west-2")
    result = check(svc, "validate")
    assert (result.status, result.fields) == ("misconfigured", ["ami_id"]), result.message
    assert "us-west-2" in result.message


def assert_no_instance(moto: MotoAccount) -> None:
    import boto3

    key = moto.keys["app"]
    ec2 = boto3.client(
        "ec2",
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id=key.access_key,
        aws_secret_access_key=key.secret_key,
    )
    reply = ec2.describe_instances()
    assert [i for r in reply["Reservations"] for i in r["Instances"]] == []


def sts_error(status: int, code: str, message: str) -> Route:
    """STS's query-protocol error document (what AWS sends), for answers moto cannot make."""
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
        f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>4e2b7c1a-0000-4000-8000-000000000000</RequestId></ErrorResponse>"
    )
    return lambda req: (status, {"Content-Type": "text/xml"}, body)


@pytest.mark.parametrize(
    ("route", "status", "fields", "text"),
    [
        (sts_error(400, "Throttling", "Rate exceeded"), "rate_limited", [], "throttling"),
        (
            sts_error(
                403,
                "SignatureDoesNotMatch",
                "Signature expired: 20200101T000000Z is now earlier than 20261127T000000Z",
            ),
            "error",
            [],
            "clock is off",
        ),
        (sts_error(400, "RequestExpired", "Request has expired."), "error", [], "clock is off"),
        (sts_error(503, "ServiceUnavailable", "down"), "unreachable", [], "unavailable"),
        (
            lambda req: (200, {"Content-Type": "text/html"}, "<html>Sign in</html>"),
            "misconfigured",
            ["endpoints"],
            "not an AWS API response",
        ),
        (
            lambda req: (404, {"Content-Type": "text/html"}, "<html>Not found</html>"),
            "misconfigured",
            ["endpoints"],
            "does not look like an AWS endpoint",
        ),
    ],
    ids=["throttled", "signature-expired", "request-expired", "503", "html-200", "html-404"],
)
def test_answers_moto_cannot_give(
    svc: Service, route: Route, status: str, fields: list[str], text: str
) -> None:
    with FakeServer(default=route) as fake:
        add_aws(svc, fake.base, {"access_key": BOGUS_KEY, "secret_key": WRONG_SECRET})
        result = check(svc, "validate")
    assert (result.status, result.fields) == (status, fields), result.message
    assert text in result.message
    assert (
        fake.requests[0]
        .headers["authorization"]
        .startswith(f"AWS4-HMAC-SHA256 Credential={BOGUS_KEY}/")
    )
    assert_clean(svc, result, Key(BOGUS_KEY, WRONG_SECRET, "-"))


# --------------------------------------------------------------------------- health


def test_health_reports_latency_and_unknown_quota(svc: Service, moto: MotoAccount) -> None:
    add_aws(svc, moto.url, moto.keys["app"].secrets)
    result = check(svc, "health")
    assert (result.status, result.code) == ("healthy", None), result.message
    assert result.detail["latency_ms"] > 0
    assert result.detail["quota"]["status"] == "unknown"  # moto has no EC2 quotas
    assert "vCPU quota unknown" in result.message


@pytest.mark.parametrize(
    ("quota", "status", "code", "text"),
    [
        (0, "unhealthy", "quota_exhausted", "is 0 vCPUs, and g5.xlarge needs 4"),
        (2, "unhealthy", "quota_exhausted", "is 2 vCPUs, and g5.xlarge needs 4"),
        (64, "healthy", None, "quota 64 vCPUs"),
    ],
)
def test_health_reads_the_g_family_vcpu_quota(
    svc: Service, moto: MotoAccount, quota: int, status: str, code: str | None, text: str
) -> None:
    with QuotaFront(moto.url, moto.keys, quotas={"L-DB2E81BA": quota}) as front:
        add_aws(svc, front.base, moto.keys["app"].secrets, region="eu-west-1")
        result = check(svc, "health")
    assert (result.status, result.code) == (status, code), result.message
    assert text in result.message
    assert front.quota_requests == [
        {
            "operation": "GetServiceQuota",
            "region": "eu-west-1",
            "ServiceCode": "ec2",
            "QuotaCode": "L-DB2E81BA",
        }
    ]


def test_health_without_quota_permission_stays_healthy(svc: Service, moto: MotoAccount) -> None:
    key = moto.keys["app"]
    with QuotaFront(
        moto.url, moto.keys, quotas={"L-DB2E81BA": 0}, denied_keys={key.access_key}
    ) as f:
        add_aws(svc, f.base, key.secrets)
        result = check(svc, "health")
    assert result.status == "healthy", result.message
    assert result.detail["quota"]["reason"].endswith("servicequotas:GetServiceQuota")


@pytest.mark.parametrize(("wrong", "field"), [("key", "access_key"), ("secret", "secret_key")])
def test_health_with_a_broken_key_is_unhealthy_naming_the_field(
    svc: Service, moto: MotoAccount, wrong: str, field: str
) -> None:
    """EC2 answers AuthFailure to both; the adapter then asks STS, which tells them apart."""
    good = moto.keys["app"]
    secrets = {
        "access_key": BOGUS_KEY if wrong == "key" else good.access_key,
        "secret_key": WRONG_SECRET,
    }
    add_aws(svc, moto.url, secrets)
    result = check(svc, "health")
    assert (result.status, result.code) == ("unhealthy", "invalid_credentials")
    assert result.fields == [field]


@pytest.mark.parametrize(
    ("instance_type", "code"),
    [
        ("g5.xlarge", "L-DB2E81BA"),
        ("g4dn.12xlarge", "L-DB2E81BA"),
        ("vt1.3xlarge", "L-DB2E81BA"),
        ("p4d.24xlarge", "L-417A185B"),
        ("inf2.xlarge", "L-1945791B"),
        ("trn1.2xlarge", "L-2C3B7624"),
        ("dl1.24xlarge", "L-6E869C2A"),
        ("m5.large", "L-1216C47A"),
        ("mac2.metal", None),
        ("u-6tb1.metal", None),
    ],
)
def test_quota_code_of_each_family(instance_type: str, code: str | None) -> None:
    found = aws_adapter.quota_for(instance_type)
    assert (found[0] if found else None) == code


# --------------------------------------------------------------------------- deadlines


def test_black_hole_ends_by_the_deadline_and_frees_the_connection(svc: Service) -> None:
    with SilentServer() as silent:
        add_aws(svc, silent.base, {"access_key": BOGUS_KEY, "secret_key": WRONG_SECRET})
        started = time.monotonic()
        result = check(svc, "validate", timeout_s=2)
        elapsed = time.monotonic() - started
        assert result.status == "timeout", result.message
        assert elapsed < 3.5
        # botocore's own read timeout let go of the socket: no worker is left hanging.
        assert silent.conns
        assert all(closed_by_peer(c, started + 3.0) for c in silent.conns)


def test_refused_connection_is_unreachable_naming_the_endpoint(svc: Service) -> None:
    add_aws(svc, closed_port_url(), {"access_key": BOGUS_KEY, "secret_key": WRONG_SECRET})
    result = check(svc, "validate")
    assert (result.status, result.fields) == ("unreachable", ["endpoints"])


def _add_many(svc: Service, moto: MotoAccount, silent: SilentServer, n_black: int) -> list[str]:
    add_aws(svc, moto.url, moto.keys["app"].secrets, pid="warm")
    assert check(svc, "validate", "warm").status == "valid"  # models and moto's EC2 data loaded
    black = [f"hole{i}" for i in range(n_black)]
    for pid in black:
        add_aws(svc, silent.base, {"access_key": BOGUS_KEY, "secret_key": WRONG_SECRET}, pid=pid)
    add_aws(svc, moto.url, moto.keys["app"].secrets, pid="good")
    svc.register_provider({"id": "local", "config": {"endpoints": {"comfyui": closed_port_url()}}})
    return black


def test_black_holed_aws_providers_do_not_starve_the_others(
    svc: Service, moto: MotoAccount
) -> None:
    """6 black-holed AWS providers (more than the AWS lane's 4 workers) + a good AWS provider +
    local, in one call: the black holes time out, the others get their real results."""
    with SilentServer() as silent:
        black = _add_many(svc, moto, silent, 6)
        started = time.monotonic()
        results = arun(svc.check("validate", ["good", *black, "local"], timeout_s=4))
        elapsed = time.monotonic() - started
    by_id = {r.provider: r for r in results}
    assert elapsed < 5.5
    assert all(by_id[pid].status == "timeout" for pid in black)
    assert by_id["good"].status == "valid", by_id["good"].message
    assert by_id["local"].status == "valid", by_id["local"].message
    assert by_id["local"].latency_ms < 1000


def test_good_aws_check_asked_while_black_holes_fill_a_lane(
    svc: Service, moto: MotoAccount
) -> None:
    """6 black-holed AWS checks are already running (their lane's 4 workers busy, 2 waiting)
    when a good AWS check and a local one are asked for: both get their real results.

    Measured (reported): with lanes per provider kind, the good check waited for a lane slot
    until 4 black holes gave up — after ~2.3 s of its 4 s, because botocore's per-attempt
    timeouts are a share of the deadline (2 attempts of (deadline - 1 s) / 2, at most 6 s
    each) — then answered in ~50 ms. With lanes per kind and destination (base.py's
    run_blocking), it does not wait at all (~40 ms). Local never waits.
    """

    async def two_calls() -> tuple[list[CheckResult], list[CheckResult]]:
        holes = asyncio.ensure_future(svc.check("validate", black, timeout_s=4))
        await asyncio.sleep(0.3)  # the black holes hold their lane's workers by now
        others = await svc.check("validate", ["good", "local"], timeout_s=4)
        return await holes, others

    with SilentServer() as silent:
        black = _add_many(svc, moto, silent, 6)
        holes, others = arun(two_calls())
    assert all(r.status == "timeout" for r in holes)
    assert max(r.latency_ms for r in holes) < 4500
    good, local = others
    assert local.status == "valid" and local.latency_ms < 1000
    assert good.status == "valid", good.message


# --------------------------------------------------------------------------- ambient credentials


@pytest.fixture
def ambient(moto: MotoAccount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MotoAccount:
    """Every ambient source set to moto's GOOD key (or to settings that would break a check)."""
    key = moto.keys["app"]
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[default]\naws_access_key_id = {key.access_key}\naws_secret_access_key = "
        f"{key.secret_key}\n[ambient]\naws_access_key_id = {key.access_key}\n"
        f"aws_secret_access_key = {key.secret_key}\n"
    )
    config = tmp_path / "config"
    config.write_text(
        f"[default]\nregion = us-gov-west-1\nendpoint_url = {moto.url}\n"
        "[profile ambient]\nregion = us-gov-west-1\n"
    )
    env = {
        "AWS_ACCESS_KEY_ID": key.access_key,
        "AWS_SECRET_ACCESS_KEY": key.secret_key,
        "AWS_PROFILE": "ambient",
        "AWS_DEFAULT_PROFILE": "ambient",
        "AWS_SHARED_CREDENTIALS_FILE": str(creds),
        "AWS_CONFIG_FILE": str(config),
        "AWS_DEFAULT_REGION": "us-gov-west-1",
        "AWS_REGION": "us-gov-west-1",
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_CA_BUNDLE": str(tmp_path / "no-such-ca.pem"),
        "AWS_MAX_ATTEMPTS": "10",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return moto


def test_ambient_credentials_are_never_used(svc: Service, ambient: MotoAccount) -> None:
    # No stored keys: misconfigured, even though the environment holds a working key.
    add_aws(svc, ambient.url, None, pid="nokeys")
    result = check(svc, "validate", "nokeys")
    assert result.status == "misconfigured" and "access_key" in result.fields
    # A bad stored key stays invalid: nothing falls back to the environment or ~/.aws.
    add_aws(svc, ambient.url, {"access_key": BOGUS_KEY, "secret_key": WRONG_SECRET}, pid="bad")
    result = check(svc, "validate", "bad")
    assert (result.status, result.fields) == ("invalid_credentials", ["access_key"])
    # A good stored key, no region set: the profile's us-east-1, not AWS_DEFAULT_REGION.
    add_aws(svc, ambient.url, ambient.keys["noec2"].secrets, pid="own")
    result = check(svc, "validate", "own")
    assert result.status == "permission_denied"  # noec2's own rights, not app's from the env
    assert result.detail["identity"] == ambient.arn("noec2")


def test_shared_session_reads_nothing_ambient(ambient: MotoAccount) -> None:
    session = aws_adapter.isolated_session()
    assert session.get_credentials() is None
    assert session.get_config_variable("region") is None
    assert session.get_config_variable("profile") is None
    assert session.get_config_variable("ca_bundle") is None
    assert session.get_config_variable("max_attempts") is None
    client = session.create_client(
        "sts", region_name="us-east-1", aws_access_key_id=BOGUS_KEY, aws_secret_access_key="x"
    )
    # AWS_ENDPOINT_URL (pointing at moto) is ignored: the SDK's own regional endpoint is used.
    assert client.meta.endpoint_url == "https://sts.us-east-1.amazonaws.com"
    assert aws_adapter.shared_session() is aws_adapter.shared_session()


def test_importing_the_adapter_imports_no_sdk() -> None:
    code = (
        "import sys, comfyvn_gui.providers.aws\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'urllib3'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert json.loads(out.stdout) == []
