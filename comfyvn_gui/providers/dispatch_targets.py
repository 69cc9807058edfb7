"""Where a provider's runs go (docs/architecture.md, "Dispatch: where the ComfyUI server is"):

* ``comfyui``: a ComfyUI server the provider already has (local, LAN, SSH, custom:
  :mod:`.comfyui_target`);
* ``serverless``: a RunPod serverless endpoint running worker-comfyui (a RunPod provider with
  an ``endpoint_id``: :mod:`.runpod_serverless`);
* ``machine``: a machine rented for the job (Vast.ai, Lambda, Paperspace, RunPod pods when no
  ``endpoint_id`` is set, AWS EC2 instances, Azure and Google Cloud VMs, CoreWeave Kubernetes
  Jobs; :mod:`.machine_lifecycle` with the provider's :class:`~.machine.MachineAdapter`).

Importing this module loads no provider module: :func:`machine_adapter` imports the one needed.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Literal

from .comfyui_target import DISPATCH_KINDS
from .machine import MachineAdapter

__all__ = [
    "MACHINE_TEMPLATES",
    "TargetKind",
    "dispatch_target",
    "machine_adapter",
    "supported",
]

TargetKind = Literal["comfyui", "serverless", "machine"]

#: The machine side of a provider whose check adapter is another class: module, class.
_MACHINE_CLASSES: dict[str, tuple[str, str]] = {
    "runpod": ("comfyvn_gui.providers.runpod_pods", "RunPodPods"),
    "aws": ("comfyvn_gui.providers.aws.machines", "AwsMachines"),
    "azure": ("comfyvn_gui.providers.azure.machines", "AzureMachines"),
    "gcp": ("comfyvn_gui.providers.gcp.machines", "GcpMachines"),
    "coreweave": ("comfyvn_gui.providers.coreweave_jobs", "CoreWeaveJobs"),
}

#: The templates whose providers rent a machine (or run serverless) for a job.
MACHINE_TEMPLATES: tuple[str, ...] = (
    "runpod",
    "vast",
    "lambda",
    "paperspace",
    "aws",
    "azure",
    "gcp",
    "coreweave",
)


def dispatch_target(template_id: str, kind: str, config: Mapping[str, Any]) -> TargetKind | None:
    """How a provider runs a job, or None when this version cannot run jobs on it."""
    if kind in DISPATCH_KINDS:
        return "comfyui"
    if template_id == "runpod":
        return "serverless" if str(config.get("endpoint_id") or "").strip() else "machine"
    if template_id in MACHINE_TEMPLATES:
        return "machine"
    return None


def supported() -> str:
    """The providers this version dispatches to, in words (for a refusal)."""
    return (
        "local, LAN, SSH and custom ComfyUI servers, RunPod, Vast.ai, Lambda, Paperspace, "
        "AWS EC2, Azure, Google Cloud and CoreWeave"
    )


def machine_adapter(template_id: str) -> MachineAdapter:
    """The machine side of a machine provider (a RunPod provider without an ``endpoint_id``:
    its pods)."""
    if template_id in _MACHINE_CLASSES:
        module, name = _MACHINE_CLASSES[template_id]
        machines: MachineAdapter = getattr(importlib.import_module(module), name)()
        return machines
    from .registry import adapter_for

    adapter = adapter_for(template_id)
    if not isinstance(adapter, MachineAdapter):
        raise LookupError(f"{template_id} providers rent no machines in this version")
    return adapter
