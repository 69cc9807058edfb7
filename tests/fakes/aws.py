"""AWS counterparts for tests: moto's real server with authentication enforced, and a
Service Quotas front for it.

moto accepts any key until ``POST /moto-api/reset-auth`` with body ``0`` turns IAM checking on
(recipes/moto_aws): users, keys and buckets are made while it is off, then every request must be
signed by a key moto issued, and IAM policies are enforced (``AccessDenied`` for EC2 where AWS
says ``UnauthorizedOperation``). moto implements Service Quotas only for ``vpc``, so
:class:`QuotaFront` answers ``GetServiceQuota`` for EC2 itself, as the documented JSON 1.1 API
does, and passes every other request through to moto unchanged (same Host header, so moto's
SigV4 check still holds).
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from .http import FakeServer, Reply, Request, reply_json

ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
#: A user who may ask who they are and use S3, but nothing in EC2.
NO_EC2 = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["sts:GetCallerIdentity", "s3:*"], "Resource": "*"}
    ],
}
#: A user who may describe EC2 but not touch S3 or Service Quotas.
EC2_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["sts:GetCallerIdentity", "ec2:Describe*"], "Resource": "*"}
    ],
}

#: A user who may launch (EC2 and STS) but not touch S3.
NO_S3 = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["sts:GetCallerIdentity", "ec2:*"], "Resource": "*"}
    ],
}


@dataclass
class Key:
    access_key: str
    secret_key: str
    user: str

    @property
    def secrets(self) -> dict[str, str]:
        return {"access_key": self.access_key, "secret_key": self.secret_key}


@dataclass
class MotoAccount:
    """A reset moto with users ``app`` (everything), ``noec2``, ``ec2only`` (describe only) and
    ``nos3`` (EC2 but no S3), Amazon's Deep Learning AMIs (:data:`DLAMIS`), and buckets
    ``assets-use1`` (us-east-1) and ``assets-euw1`` (eu-west-1); auth enforced."""

    url: str
    keys: dict[str, Key] = field(default_factory=dict)
    account_id: str = "123456789012"

    def arn(self, user: str) -> str:
        return f"arn:aws:iam::{self.account_id}:user/{user}"


def setup_account(url: str) -> MotoAccount:
    import boto3

    requests.post(f"{url}/moto-api/reset", timeout=10)
    requests.post(f"{url}/moto-api/reset-auth", data="inf", timeout=10)  # auth off
    setup = {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "aws_access_key_id": "setup",
        "aws_secret_access_key": "setup",
    }
    iam = boto3.client("iam", **setup)
    account = MotoAccount(url)
    users = (("app", ALL), ("noec2", NO_EC2), ("ec2only", EC2_ONLY), ("nos3", NO_S3))
    for user, policy in users:
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
        k = iam.create_access_key(UserName=user)["AccessKey"]
        account.keys[user] = Key(k["AccessKeyId"], k["SecretAccessKey"], user)
    s3 = boto3.client("s3", **setup)
    s3.create_bucket(Bucket="assets-use1")
    s3.create_bucket(
        Bucket="assets-euw1", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    for region in DLAMI_REGIONS:
        for ami_id, name, created in DLAMIS:
            publish_amazon_ami(account.account_id, region, ami_id, name, created)
    requests.post(f"{url}/moto-api/reset-auth", data="0", timeout=10)  # auth ON from now
    return account


#: What Amazon publishes as its Deep Learning Base GPU AMI (Ubuntu 22.04) in each region: an
#: older and a newer release, and the ARM64 one (never the default on x86 GPU types).
DLAMIS = (
    (
        "ami-0d1a000000000a001",
        "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20261006",
        "2026-10-06T10:00:00.000Z",
    ),
    (
        "ami-0d1a000000000a002",
        "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20261120",
        "2026-11-20T10:00:00.000Z",
    ),
    (
        "ami-0d1a000000000a003",
        "Deep Learning ARM64 Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20261125",
        "2026-11-25T10:00:00.000Z",
    ),
)
NEWEST_DLAMI = "ami-0d1a000000000a002"
DLAMI_REGIONS = ("us-east-1", "eu-west-1")


def publish_amazon_ami(account_id: str, region: str, ami_id: str, name: str, created: str) -> None:
    """An AMI owned by Amazon (as moto's bundled ones are) in moto's in-process backend: AWS
    publishes images under its own account, which no API call of a test's account can do."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami

    backend = ec2_backends[account_id][region]
    arch = "arm64" if "ARM64" in name else "x86_64"
    backend.amis[ami_id] = Ami(
        backend,
        ami_id=ami_id,
        name=name,
        owner_id="898082745236",
        owner_alias="amazon",
        public=True,
        architecture=arch,
        virtualization_type="hvm",
        creation_date=datetime.fromisoformat(created.replace("Z", "+00:00")),
        root_device_type="ebs",
        region_name=region,
    )


def auth_off(url: str) -> None:
    requests.post(f"{url}/moto-api/reset-auth", data="inf", timeout=10)


def moto_server() -> Iterator[str]:
    """moto's threaded server on a free port of 127.0.0.1 (a generator for a fixture)."""
    from moto.server import ThreadedMotoServer

    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        srv.stop()


_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


@dataclass
class QuotaFront:
    """``GetServiceQuota`` for EC2 answered here; everything else passed through to moto.

    ``quotas`` maps quota code -> vCPUs; a code not in it is ``NoSuchResourceException``.
    ``denied_keys`` get ``AccessDeniedException``. Only keys moto issued are accepted, and the
    request must be signed for the service ``servicequotas``. Requests seen are recorded.
    """

    moto_url: str
    keys: dict[str, Key]
    quotas: dict[str, float] = field(default_factory=dict)
    denied_keys: set[str] = field(default_factory=set)
    quota_requests: list[dict[str, Any]] = field(default_factory=list)
    server: FakeServer = field(init=False)

    def __post_init__(self) -> None:
        self.server = FakeServer(default=self._handle)

    def __enter__(self) -> QuotaFront:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def base(self) -> str:
        return self.server.base

    def _handle(self, req: Request) -> Reply:
        target = req.headers.get("x-amz-target", "")
        if target.startswith("ServiceQuotasV20190624."):
            return self._quota(req, target.split(".", 1)[1])
        return self._forward(req)

    def _quota(self, req: Request, operation: str) -> Reply:
        found = _CREDENTIAL.search(req.headers.get("authorization", ""))
        key_id, region, service = found.groups() if found else ("", "", "")
        body = req.json() or {}
        self.quota_requests.append({"operation": operation, "region": region, **body})
        ok_keys = {k.access_key for k in self.keys.values()}
        if key_id not in ok_keys or service != "servicequotas":
            return _json_error(400, "UnrecognizedClientException", "The security token is invalid")
        if key_id in self.denied_keys:
            return _json_error(
                400,
                "AccessDeniedException",
                "You don't have sufficient permission to perform this action",
            )
        if operation != "GetServiceQuota" or body.get("ServiceCode") != "ec2":
            return _json_error(400, "IllegalArgumentException", "not part of this fake")
        code = body.get("QuotaCode")
        if code not in self.quotas:
            return _json_error(400, "NoSuchResourceException", "The request failed")
        return reply_json(
            200,
            {
                "Quota": {
                    "ServiceCode": "ec2",
                    "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
                    "QuotaCode": code,
                    "QuotaName": "Running On-Demand instances",
                    "Value": float(self.quotas[code]),
                    "Unit": "None",
                    "Adjustable": True,
                    "GlobalQuota": False,
                }
            },
            {"Content-Type": "application/x-amz-json-1.1"},
        )

    def _forward(self, req: Request) -> Reply:
        """Pass a POST / (the query APIs: STS, EC2) through to moto unchanged."""
        target = urlsplit(self.moto_url)
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
        try:
            # Host is kept as the client sent it: it is part of what SigV4 signed.
            conn.request(req.method, req.path, body=req.body, headers=dict(req.headers))
            resp = conn.getresponse()
            data = resp.read()
            headers = {
                k: v
                for k, v in resp.getheaders()
                if k.lower() in ("content-type", "x-amzn-requestid")
            }
            return resp.status, headers, data
        finally:
            conn.close()


def _json_error(status: int, code: str, message: str) -> Reply:
    return reply_json(
        status, {"__type": code, "message": message}, {"Content-Type": "application/x-amz-json-1.1"}
    )
