"""AWS EC2 instances for dispatch: one instance per job (On-Demand, or Spot when the advice
chose the provider's Spot offer, which it weighs only where the meta says ``spot: true``).

What is sent (EC2 Query API through botocore, signed with the stored keys, in the configured
region, to the ``aws`` endpoint override when there is one; every call in the executor with
the timeouts of :mod:`.calls`):

* the AMI — the provider option ``ami_id``; when it is empty, ``ec2:DescribeImages`` with
  ``Owners=amazon`` and the filters ``name`` = :data:`DEFAULT_AMI_NAME` (AWS's Deep Learning Base
  OSS Nvidia Driver GPU AMI, Ubuntu 22.04: the NVIDIA driver, Docker and the NVIDIA Container
  Toolkit the start-up script's ``docker run --gpus all`` needs), ``architecture`` x86_64 and
  ``state`` available; the newest ``CreationDate`` wins. None found is ``misconfigured`` naming
  ``ami_id``.
* validate (:func:`dry_run`, called by the adapter's validate) — the launch request below with
  ``DryRun=True``: ``DryRunOperation`` proves ``ec2:RunInstances`` (and ``ec2:CreateTags`` for
  the tag specifications) without launching; ``UnauthorizedOperation`` (AWS) / ``AccessDenied``
  (moto) is ``permission_denied`` saying so.
* launch — ``ec2:RunInstances`` with ``ImageId`` (the AMI above), ``InstanceType``
  (``instance_type``, default ``g5.xlarge``), ``MinCount``/``MaxCount`` 1, ``UserData`` = the
  start-up script (plain text; botocore base64-encodes it) at the catalog's price of the type
  when the catalog lists it, ``InstanceInitiatedShutdownBehavior`` ``terminate``,
  ``ClientToken`` = the resource name (a retried launch does not rent a second instance),
  ``TagSpecifications`` for the instance and its volumes (``Name`` = the resource name, and
  ``comfyvn-gui-home`` / ``comfyvn-gui-job``), and ``SecurityGroupIds`` / ``SubnetId`` from
  the provider's meta (``security_group_id``, ``subnet_id``) when set. When the advice chose
  the provider's Spot offer (``LaunchSpec.spot``; weighed only with ``spot: true`` in the
  meta): ``InstanceMarketOptions`` ``spot``, one-time, interruption ``terminate``, and
  ``MaxPrice`` = the job's price ceiling when it has one (an interrupted instance is gone:
  the job fails and says so; nothing is left to release).
  ``InsufficientInstanceCapacity`` is ``quota_exhausted``; ``UnauthorizedOperation`` (AWS) /
  ``AccessDenied`` (moto) ``permission_denied``; ``InvalidAMIID.*`` ``misconfigured`` naming
  ``ami_id``.
* find — ``ec2:DescribeInstances`` with the filters ``tag:Name`` = the name and
  ``instance-state-name`` in pending, running, stopping, stopped.
* describe — ``ec2:DescribeInstances`` with ``InstanceIds``: pending is booting, running
  running, stopping/stopped stopped, shutting-down/terminated or ``InvalidInstanceID.NotFound``
  released. The SSH address is ``PublicIpAddress`` (else ``PrivateIpAddress``), port 22.
* release / stop — ``ec2:TerminateInstances`` (``InvalidInstanceID.NotFound`` is released).
* resources — ``ec2:DescribeInstances`` with the filters ``tag:comfyvn-gui-home`` = the home
  and every state but terminated.

The dead-man switch is in the start-up script (``core.machines``, ``shutdown``): at the
absolute deadline the instance shuts itself down, and ``InstanceInitiatedShutdownBehavior``
``terminate`` makes that a termination (the root EBS volume goes with it,
``DeleteOnTermination`` being the AMI's default for the root volume).

moto's instance addresses are made up: the lifecycle's test-only address map
(``machine_lifecycle.ADDRESS_MAP_ENV``) points them at a test sshd; nothing here differs in tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from comfyvn_gui.core.machines import HOME_TAG, JOB_TAG
from comfyvn_gui.providers.base import CheckContext, CheckFailure
from comfyvn_gui.providers.lazy import LazyImport
from comfyvn_gui.providers.machine import LaunchSpec, Machine, MachineStatus, Resource

from .calls import _client
from .errors import _client_failure, _error, _transport_failure
from .session import _Job, _job

if TYPE_CHECKING:
    import botocore.exceptions
else:
    botocore = LazyImport("botocore")

__all__ = [
    "DEFAULT_AMI_NAME",
    "AwsMachines",
    "console_url",
    "default_ami",
    "dry_run",
    "resolve_ami",
    "run_request",
]

#: The name (a DescribeImages filter, ``*`` any) of the default AMI, owned by Amazon.
DEFAULT_AMI_NAME = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"
_LIVE_STATES = ["pending", "running", "stopping", "stopped"]
_STATUS: dict[str, MachineStatus] = {
    "pending": "booting",
    "running": "running",
    "stopping": "stopped",
    "stopped": "stopped",
    "shutting-down": "released",
    "terminated": "released",
}


def console_url(region: str) -> str:
    return f"https://console.aws.amazon.com/ec2/home?region={region}#Instances:"


class _Gone(Exception):
    pass


def _ec2(job: _Job, action: str, method: str, *, gone_ok: bool = False, **kwargs: Any) -> Any:
    """One EC2 call on a client cut to the deadline; failures are CheckFailures."""
    ec2 = _client(job, "ec2")
    try:
        return getattr(ec2, method)(**kwargs)
    except botocore.exceptions.ClientError as exc:
        code = _error(exc)[0]
        if gone_ok and code == "InvalidInstanceID.NotFound":
            raise _Gone from None
        raise _launch_failure(job, exc, code, action) from None
    except Exception as exc:
        mapped = _transport_failure(job, exc)
        if mapped is None:
            raise
        raise mapped from None


def _launch_failure(job: _Job, exc: Any, code: str, action: str) -> CheckFailure:
    if code == "InsufficientInstanceCapacity":
        return CheckFailure(
            "quota_exhausted",
            f"{job.name}: AWS has no {job.instance_type} capacity in {job.region} right now "
            "(InsufficientInstanceCapacity); try again later or choose another region",
            fields=["instance_type", "region"],
            detail={"aws_error": code},
        )
    if code.startswith("InvalidAMIID"):
        return CheckFailure(
            "misconfigured",
            f"{job.name}: the AMI in ami_id does not exist in {job.region} ({code}); enter the "
            "ID of an AMI of this region",
            fields=["ami_id"],
            detail={"aws_error": code},
        )
    return _client_failure(job, exc, action)


def _instances(reply: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for r in reply.get("Reservations") or [] for i in r.get("Instances") or []]


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value")) for t in instance.get("Tags") or []}


def _machine(instance: dict[str, Any], name: str, refs: dict[str, Any]) -> Machine:
    raw = str((instance.get("State") or {}).get("Name") or "")
    status = _STATUS.get(raw, "booting")
    host = instance.get("PublicIpAddress") or instance.get("PrivateIpAddress")
    port: int | None = 22 if host else None
    running = status == "running"
    launched = instance.get("LaunchTime")
    return Machine(
        id=str(instance["InstanceId"]),
        name=_tags(instance).get("Name") or name,
        status=status,
        raw_status=raw,
        ssh_host=host if running else None,
        ssh_port=port if running else None,
        created_at=launched if isinstance(launched, datetime) else None,
        refs=refs,
    )


def _refs(job: _Job, instance_id: str) -> dict[str, Any]:
    refs: dict[str, Any] = {"instance_id": instance_id, "region": job.region}
    if job.endpoint:
        refs["endpoint"] = job.endpoint
    return refs


def _at(ctx: CheckContext, machine: Machine) -> _Job:
    """The job of a call on ``machine``: its launch-time region and endpoint."""
    job = _job(ctx)
    job.region = str(machine.refs.get("region") or job.region)
    if machine.refs.get("endpoint"):
        job.endpoint = str(machine.refs["endpoint"])
    return job


def _terminate(job: _Job, instance_id: str) -> None:
    try:
        _ec2(
            job,
            "ec2:TerminateInstances",
            "terminate_instances",
            gone_ok=True,
            InstanceIds=[instance_id],
        )
    except _Gone:
        return


def default_ami(job: _Job, pattern: str = DEFAULT_AMI_NAME) -> tuple[str, str] | None:
    """The newest Amazon-owned x86_64 AMI named like ``pattern`` in the region: (id, name)."""
    reply = _ec2(
        job,
        "ec2:DescribeImages",
        "describe_images",
        Owners=["amazon"],
        Filters=[
            {"Name": "name", "Values": [pattern]},
            {"Name": "architecture", "Values": ["x86_64"]},
            {"Name": "state", "Values": ["available"]},
        ],
    )
    images = [i for i in reply.get("Images") or [] if i.get("ImageId")]
    if not images:
        return None
    newest = max(images, key=lambda i: str(i.get("CreationDate") or ""))
    return str(newest["ImageId"]), str(newest.get("Name") or "")


def resolve_ami(job: _Job, option: str | None) -> str:
    """The ``ami_id`` option, else the default AMI of the region (blocking)."""
    if option and option.strip():
        return option.strip()
    found = default_ami(job)
    if found is None:
        raise CheckFailure(
            "misconfigured",
            f"{job.name}: no AWS Deep Learning GPU AMI (Ubuntu 22.04) was found in {job.region}; "
            "enter the ID of an AMI with Docker and the NVIDIA drivers in ami_id",
            fields=["ami_id"],
        )
    return found[0]


def run_request(
    job: _Job,
    ami: str,
    meta: dict[str, Any],
    *,
    name: str,
    tags: dict[str, str],
    user_data: str,
    max_hourly_usd: float | None = None,
    spot: bool = False,
) -> dict[str, Any]:
    """The RunInstances request of one job's instance (see the module's text)."""
    tag_list = [{"Key": "Name", "Value": name}] + [{"Key": k, "Value": v} for k, v in tags.items()]
    request: dict[str, Any] = {
        "ImageId": ami,
        "InstanceType": job.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "UserData": user_data,
        "InstanceInitiatedShutdownBehavior": "terminate",
        "ClientToken": name,
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tag_list},
            {"ResourceType": "volume", "Tags": tag_list},
        ],
    }
    if meta.get("security_group_id"):
        request["SecurityGroupIds"] = [str(meta["security_group_id"])]
    if meta.get("subnet_id"):
        request["SubnetId"] = str(meta["subnet_id"])
    if spot:
        options: dict[str, Any] = {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
        }
        if max_hourly_usd:
            options["MaxPrice"] = f"{max_hourly_usd:.4f}"
        request["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": options}
    return request


def dry_run(job: _Job, ami_option: str | None, meta: dict[str, Any]) -> str:
    """Prove ``ec2:RunInstances`` (with its tags) by a DryRun launch; returns the AMI used
    (blocking; see the module's text)."""
    ami = resolve_ami(job, ami_option)
    request = run_request(
        job,
        ami,
        meta,
        name="comfyvn-validate",
        tags={},
        user_data="#!/bin/sh\ntrue\n",
        spot=meta.get("spot") is True,  # (Spot allowed: prove a Spot launch is permitted too)
    )
    request.pop("ClientToken")
    ec2 = _client(job, "ec2")
    try:
        reply = ec2.run_instances(DryRun=True, **request)
    except botocore.exceptions.ClientError as exc:
        code = _error(exc)[0]
        if code == "DryRunOperation":
            return ami
        if code in ("UnauthorizedOperation", "AccessDenied"):
            raise CheckFailure(
                "permission_denied",
                f"{job.name}: the key may not launch instances (ec2:RunInstances with "
                f"ec2:CreateTags, {code} on a DryRun launch of {job.instance_type}); add them "
                "to the IAM user's policy",
                fields=["access_key"],
                detail={"aws_error": code, "action": "ec2:RunInstances"},
            ) from None
        raise _launch_failure(job, exc, code, "ec2:RunInstances") from None
    except Exception as exc:
        mapped = _transport_failure(job, exc)
        if mapped is None:
            raise
        raise mapped from None
    # (a DryRun that launched would be a bug at AWS, never seen: what it launched goes at once)
    for instance in reply.get("Instances") or []:
        _terminate(job, str(instance["InstanceId"]))
    raise CheckFailure("error", f"{job.name}: the DryRun launch did not answer DryRunOperation")


class AwsMachines:
    """The dispatch side of AWS EC2 (see the module's text)."""

    deadman = "shutdown"
    mode = "vm"
    default_ssh_user = "ubuntu"
    deadman_words = (
        "EC2 with InstanceInitiatedShutdownBehavior=terminate: the start-up script's shutdown "
        "at the absolute deadline TERMINATES the instance (billing ends; its EBS volume is "
        "deleted with DeleteOnTermination) even if the app is gone"
    )

    async def launch(self, ctx: CheckContext, spec: LaunchSpec) -> Machine:
        job = _job(ctx)
        ami = await ctx.run_blocking(resolve_ami, job, ctx.value("ami_id"))
        listed = ctx.profile.machine(job.instance_type)  # (the catalog's price of the type)
        price = listed.price(ctx.setting("region")) if listed is not None else None
        request = run_request(
            job,
            ami,
            ctx.provider.meta or {},
            name=spec.name,
            tags=spec.tags,
            user_data=spec.script_at(price),
            max_hourly_usd=spec.max_hourly_usd,
            spot=spec.spot,
        )
        reply = await ctx.run_blocking(
            lambda: _ec2(job, "ec2:RunInstances", "run_instances", **request)
        )
        instances = reply.get("Instances") or []
        if not instances:
            raise CheckFailure(
                "error", f"{ctx.name}: RunInstances returned no instance; try again later"
            )
        instance = instances[0]
        refs = _refs(job, str(instance["InstanceId"]))
        if "InstanceMarketOptions" in request:
            refs["spot"] = True
        machine = _machine(instance, spec.name, refs)
        if machine.created_at is None:
            machine.created_at = datetime.now(UTC)
        return machine

    async def find(self, ctx: CheckContext, name: str) -> Machine | None:
        job = _job(ctx)
        filters = [
            {"Name": "tag:Name", "Values": [name]},
            {"Name": "instance-state-name", "Values": _LIVE_STATES},
        ]
        reply = await ctx.run_blocking(
            lambda: _ec2(job, "ec2:DescribeInstances", "describe_instances", Filters=filters)
        )
        found = _instances(reply)
        if not found:
            return None
        found.sort(key=lambda i: (i.get("State") or {}).get("Name") != "running")
        instance = found[0]
        return _machine(instance, name, _refs(job, str(instance["InstanceId"])))

    async def describe(self, ctx: CheckContext, machine: Machine) -> Machine:
        job = _at(ctx, machine)
        instance_id = str(machine.refs.get("instance_id") or machine.id)
        refs = dict(machine.refs) or _refs(job, instance_id)

        def read() -> dict[str, Any] | None:
            try:
                reply = _ec2(
                    job,
                    "ec2:DescribeInstances",
                    "describe_instances",
                    gone_ok=True,
                    InstanceIds=[instance_id],
                )
            except _Gone:
                return None
            found = _instances(reply)
            return found[0] if found else None

        instance = await ctx.run_blocking(read)
        if instance is None:
            return Machine(
                id=machine.id,
                name=machine.name,
                status="released",
                raw_status="gone",
                created_at=machine.created_at,
                refs=refs,
            )
        described = _machine(instance, machine.name, refs)
        described.created_at = machine.created_at or described.created_at
        return described

    async def release(self, ctx: CheckContext, machine: Machine) -> None:
        job = _at(ctx, machine)
        instance_id = str(machine.refs.get("instance_id") or machine.id)
        await ctx.run_blocking(_terminate, job, instance_id)

    async def resources(self, ctx: CheckContext, home_id: str) -> list[Resource]:
        job = _job(ctx)
        filters = [
            {"Name": f"tag:{HOME_TAG}", "Values": [home_id]},
            {"Name": "instance-state-name", "Values": [*_LIVE_STATES, "shutting-down"]},
        ]
        reply = await ctx.run_blocking(
            lambda: _ec2(job, "ec2:DescribeInstances", "describe_instances", Filters=filters)
        )
        found: list[Resource] = []
        for instance in _instances(reply):
            tags = _tags(instance)
            job_tag = tags.get(JOB_TAG, "")
            launched = instance.get("LaunchTime")
            found.append(
                Resource(
                    kind="machine",
                    id=str(instance["InstanceId"]),
                    name=tags.get("Name", ""),
                    job_id=int(job_tag) if job_tag.isdigit() else None,
                    status=str((instance.get("State") or {}).get("Name") or ""),
                    created_at=launched if isinstance(launched, datetime) else None,
                    console_url=console_url(job.region),
                )
            )
        return found

    async def stop(self, ctx: CheckContext, resource: Resource) -> None:
        job = _job(ctx)
        await ctx.run_blocking(_terminate, job, resource.id)
