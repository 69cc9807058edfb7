"""The GPU catalog: a GPU model's memory and speed, and how names and aliases are looked up."""

from __future__ import annotations

from pydantic import BaseModel, Field

from .base import STRICT

__all__ = ["GpuSpec", "gpu_key", "gpu_keys", "gpu_name_clash"]


class GpuSpec(BaseModel):
    """A GPU model: its memory and its speed relative to the reference GPU (the A10G)."""

    model_config = STRICT

    name: str = Field(min_length=1)
    vram_gb: float = Field(gt=0, description="As the vendor states it (an RTX 4090 is 24)")
    relative_throughput: float = Field(gt=0, description="Reference GPU = 1.0; approximate")
    aliases: list[str] = Field(default_factory=list)
    vendor: str = "NVIDIA"


def gpu_key(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


_GPU_PREFIXES = ("nvidia geforce ", "nvidia ", "geforce ", "tesla ")


def gpu_keys(name: str) -> tuple[str, ...]:
    """The lookup keys of a GPU name: itself, and without a vendor / brand prefix (NVML names)."""
    key = gpu_key(name)
    keys = [key]
    for prefix in _GPU_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            keys.append(key[len(prefix) :])
            break
    return tuple(keys)


def gpu_name_clash(spec: GpuSpec, owner: dict[str, str]) -> tuple[str, str] | None:
    """(field path, reason) if a name or alias of ``spec`` is another GPU's; else record them."""
    for j, label in enumerate((spec.name, *spec.aliases)):
        for k in gpu_keys(label):
            other = owner.get(k)
            if other is not None and other != spec.name:
                field = "name" if j == 0 else f"aliases[{j - 1}]"
                return field, f"{label!r} is already a name or alias of {other!r}"
    for label in (spec.name, *spec.aliases):
        for k in gpu_keys(label):
            owner[k] = spec.name
    return None
