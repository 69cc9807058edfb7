"""What one Google Cloud check works with: its settings, read from the provider and its
profile, and the session (token, identity, detail) that the sign-in starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from comfyvn_gui.providers.base import CheckContext, CheckFailure

if TYPE_CHECKING:
    from comfyvn_gui.providers.http_client import HttpClient

KEY_FIELD = "service_account_json"

#: GPU catalog name -> Compute Engine accelerator type.
ACCELERATORS: dict[str, str] = {
    "L4": "nvidia-l4",
    "T4": "nvidia-tesla-t4",
    "V100": "nvidia-tesla-v100",
    "A100 40GB": "nvidia-tesla-a100",
    "A100 80GB": "nvidia-a100-80gb",
    "H100": "nvidia-h100-80gb",
}
#: Machine families that come with their GPU attached (prefix -> GPU catalog name).
MACHINE_FAMILY_GPUS: tuple[tuple[str, str], ...] = (
    ("g2-", "L4"),
    ("a2-ultragpu-", "A100 80GB"),
    ("a2-", "A100 40GB"),
    ("a3-", "H100"),
)


@dataclass
class _Settings:
    project: str
    key_text: str
    region: str
    zone: str | None
    bucket: str | None
    machine_type: str | None
    gpu: str | None  # GPU catalog name
    accelerator: str | None  # Compute Engine accelerator type
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Session:
    """One check's token and what it learnt on the way."""

    settings: _Settings
    http: HttpClient
    token: str
    email: str
    detail: dict[str, Any]

    @property
    def warnings(self) -> list[str]:
        return self.settings.warnings


def _settings(ctx: CheckContext) -> _Settings:
    project, key_text = ctx.require("project_id", KEY_FIELD)
    region = ctx.value("region") or ctx.profile.field("region").default or ""
    zone = ctx.value("zone")
    if zone is not None and zone.rsplit("-", 1)[0] != region:
        raise CheckFailure(
            "misconfigured",
            f"Google Cloud: zone {zone} is not in region {region}; pick a zone of {region} "
            f"(such as {region}-a or {region}-b) or change the region",
            fields=["zone", "region"],
        )
    machine_type = ctx.value("machine_type") or ctx.profile.field("machine_type").default
    warnings: list[str] = []
    gpu = ctx.provider.gpu or ctx.profile.default_gpu
    family_gpu = next(
        (
            g
            for prefix, g in MACHINE_FAMILY_GPUS
            if machine_type and machine_type.startswith(prefix)
        ),
        None,
    )
    if family_gpu is not None:
        if family_gpu != gpu:
            warnings.append(
                f"Machine type {machine_type} comes with the {family_gpu}, not the {gpu} set "
                f"for this provider; the {family_gpu} was looked for."
            )
        gpu = family_gpu
    accelerator = ACCELERATORS.get(gpu)
    if accelerator is None:
        warnings.append(
            f"The {gpu} is not a Compute Engine GPU, so whether a zone offers it was not checked."
        )
    return _Settings(
        project=project,
        key_text=key_text,
        region=region,
        zone=zone,
        bucket=ctx.value("bucket"),
        machine_type=machine_type,
        gpu=gpu,
        accelerator=accelerator,
        warnings=warnings,
    )
