"""What a machine provider does for dispatch, written once for every provider that rents a
machine per job (Vast.ai, Lambda, Paperspace, RunPod pods; AWS, Azure and Google Cloud later).

A machine adapter is the provider's check adapter (``@register``) with these methods too
(:class:`MachineAdapter`); the lifecycle (``machine_lifecycle.py``) drives them:

* :meth:`~MachineAdapter.launch` rents one machine for a :class:`LaunchSpec` (its name, tags,
  image, start-up script, the one-time client key, the job's VRAM, price ceiling and zones, the
  hard deadline) and returns a :class:`Machine` at once, booting; a refusal is a
  :class:`~.base.CheckFailure` (``quota_exhausted`` when nothing can be rented today: no
  offer under the ceiling, no capacity in the region; the message says which);
* :meth:`~MachineAdapter.find` looks a machine up by its name (a driver that resumes a job in
  ``submitting`` looks before launching again: launch is idempotent);
* :meth:`~MachineAdapter.describe` reads a machine again (status, SSH address, live price);
* :meth:`~MachineAdapter.release` gives it back and deletes what was made for it (a one-time
  provider-side SSH key, a start-up script resource); "not found" at the launch-time location
  is released;
* :meth:`~MachineAdapter.resources` lists every resource of a home (by name or tag) for
  ``running``, and :meth:`~MachineAdapter.stop` releases one of them (``running stop``).

Everything a release needs is in :attr:`Machine.refs` (JSON), kept in the job as launched:
release uses the refs, never the current settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from .base import CheckContext

__all__ = [
    "LaunchSpec",
    "Machine",
    "MachineAdapter",
    "MachineKeys",
    "MachineStatus",
    "Resource",
    "generate_keys",
    "is_machine_adapter",
]

#: ``booting``: rented, not usable yet; ``running``: up (SSH may still be starting);
#: ``stopped``: not running but still held (may bill storage); ``released``: gone;
#: ``failed``: the provider gave up on it (still to be released).
MachineStatus = Literal["booting", "running", "stopped", "released", "failed"]


@dataclass(frozen=True)
class LaunchSpec:
    """What to rent for one job."""

    name: str  # comfyvn-<home_id>-job<id>: the label / name / idempotency token
    tags: dict[str, str]  # comfyvn-gui-home, comfyvn-gui-job
    job_id: int
    image: str  # the comfyui_image option
    startup_script: str  # core.machines.startup_script (host key, dead-man switch, ComfyUI)
    client_public_key: str  # the one-time key ("ssh-ed25519 AAAA... name")
    vram_mb: int  # what the job needs
    max_hourly_usd: float | None  # the price ceiling (offers / bids above it are not taken)
    zones: tuple[str, ...] | None  # residency: the zones the job may run in (None: any)
    deadline: datetime  # the hard deadline (absolute, UTC)
    disk_gb: int = 40
    spot: bool = False  # the advice chose the provider's Spot offer: launch on Spot capacity
    # The start-up script for the hourly price of the machine actually taken (its dead-man
    # deadline is the cost ceiling at that price): an adapter that knows the price before it
    # sends the script asks for it with :meth:`script_at`.
    script_for: Callable[[float | None], str] | None = None

    def script_at(self, hourly_usd: float | None) -> str:
        """The start-up script whose dead-man deadline holds at ``hourly_usd``."""
        if self.script_for is None or hourly_usd is None:
            return self.startup_script
        return self.script_for(hourly_usd)


@dataclass
class Machine:
    """One rented machine as the provider last described it."""

    id: str  # the provider's id
    name: str
    status: MachineStatus
    raw_status: str = ""  # the provider's own word
    ssh_host: str | None = None
    ssh_port: int | None = None
    hourly_usd: float | None = None  # the live price when the provider reports it
    created_at: datetime | None = None
    refs: dict[str, Any] = field(default_factory=dict)  # what release needs (JSON)

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["created_at"] = self.created_at.isoformat() if self.created_at else None
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Machine:
        created = doc.get("created_at")
        return cls(
            id=str(doc["id"]),
            name=str(doc.get("name") or ""),
            status=doc.get("status") or "booting",
            raw_status=str(doc.get("raw_status") or ""),
            ssh_host=doc.get("ssh_host"),
            ssh_port=doc.get("ssh_port"),
            hourly_usd=doc.get("hourly_usd"),
            created_at=datetime.fromisoformat(created) if created else None,
            refs=dict(doc.get("refs") or {}),
        )


@dataclass(frozen=True)
class Resource:
    """One thing a home holds at a provider (``running``)."""

    kind: Literal[
        "machine",  # a VM, instance, machine or Kubernetes Job
        "pod",
        "ssh_key",
        "startup_script",
        "volume",
        "disk",
        "network",  # a NIC, public IP, security group or virtual network made for a job
        "schedule",  # an auto-shutdown schedule
        "serverless_run",
    ]
    id: str  # the provider's id (``running stop`` takes ``<provider_id>:<id>``)
    name: str
    job_id: int | None  # from the name or tags; None: not one of a job's
    status: str = ""
    created_at: datetime | None = None
    hourly_usd: float | None = None
    monthly_usd: float | None = None  # a standing cost (a volume)
    console_url: str | None = None


@runtime_checkable
class MachineAdapter(Protocol):
    """The dispatch side of a machine provider (see the module's text)."""

    #: What ends billing if the app is gone, in words (the confirmation shows it).
    deadman_words: str
    #: The start-up script's stop command (core.machines.DeadmanKind).
    deadman: str
    #: "vm": the image runs as a container on a VM; "container": the machine is the image.
    mode: str
    #: The login user when the ``ssh_user`` option is empty.
    default_ssh_user: str
    # Optional (read with getattr): ``default_image`` and ``default_comfyui_command`` when the
    # ``comfyui_image`` / ``comfyui_command`` options are empty; ``driver_only_guard`` True
    # when nothing but the driver stops the bill (the driver then inhibits system sleep).

    async def launch(self, ctx: CheckContext, spec: LaunchSpec) -> Machine: ...

    async def find(self, ctx: CheckContext, name: str) -> Machine | None: ...

    async def describe(self, ctx: CheckContext, machine: Machine) -> Machine: ...

    async def release(self, ctx: CheckContext, machine: Machine) -> None: ...

    async def resources(self, ctx: CheckContext, home_id: str) -> list[Resource]: ...

    async def stop(self, ctx: CheckContext, resource: Resource) -> None: ...


def is_machine_adapter(adapter: object) -> bool:
    return isinstance(adapter, MachineAdapter)


@dataclass(frozen=True)
class MachineKeys:
    """A machine's SSH host key pair and the one-time client key pair (OpenSSH text)."""

    host_private: str
    host_public: str
    client_private: str
    client_public: str

    def as_secrets(self) -> dict[str, str]:
        return {"host_key": self.host_private, "client_key": self.client_private}

    @classmethod
    def from_secrets(cls, host_private: str, client_private: str) -> MachineKeys:
        return cls(host_private, _public(host_private), client_private, _public(client_private))


def _public(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization as s

    key = s.load_ssh_private_key(private_pem.encode(), None)
    return key.public_key().public_bytes(s.Encoding.OpenSSH, s.PublicFormat.OpenSSH).decode()


def generate_keys(comment: str) -> MachineKeys:
    """Fresh ed25519 host and client key pairs for one machine (``comment`` ends the client
    public key: the resource name, so a provider-side key says whose it is)."""
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pair = []
    for _ in range(2):
        key = ed25519.Ed25519PrivateKey.generate()
        private = key.private_bytes(
            s.Encoding.PEM, s.PrivateFormat.OpenSSH, s.NoEncryption()
        ).decode()
        public = key.public_key().public_bytes(s.Encoding.OpenSSH, s.PublicFormat.OpenSSH).decode()
        pair.append((private, public))
    (host_private, host_public), (client_private, client_public) = pair
    return MachineKeys(host_private, host_public, client_private, f"{client_public} {comment}")
