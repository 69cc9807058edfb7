"""Local: this computer's NVIDIA GPUs (an NVML snapshot) and, when it runs, the local ComfyUI.

No NVIDIA driver is not an error: it is "no local GPU". The snapshot is then empty with a
``note`` saying why, validation is ``valid`` and health ``healthy`` — ComfyVN jobs run on remote
providers or on the CPU.

* :func:`snapshot` (blocking; used by ``comfyvn-gui gpus`` and the advisor) reads NVML through
  ``nvidia-ml-py``, imported lazily inside it (never at application start): ``nvmlInit``, the
  driver version, the device count, and per device its name, ``nvmlDeviceGetMemoryInfo``
  (total / free bytes) and ``nvmlDeviceGetUtilizationRates().gpu / 100``, then
  ``nvmlShutdown``. The NVML module can be passed in (``snapshot(nvml=module)``) so the reading
  is testable without a GPU.
* The checks run it in the check's executor under the check's deadline and add the local
  ComfyUI: ``GET {comfyui}/system_stats`` (endpoint ``comfyui``, default
  ``http://127.0.0.1:8188``), given at most :data:`COMFYUI_PROBE_S` seconds. ComfyUI not
  running is normal: ``detail["comfyui"] = "not running"``, never a failure.

VRAM in GB "as GPU vendors state it" (docs/architecture.md: an RTX 4090 is 24): NVML and
ComfyUI report bytes, and vendors' "GB" on a GPU are binary gigabytes (24 GiB on an RTX 4090),
so bytes are divided by 2**30 — not 1e9, which would make an RTX 4090 "25.8 GB". The driver
keeps back a little of every board (an RTX 4090 reports 23.99 GiB, an RTX 5090 31.84, an H100
79.65), so a total within 2 % below a whole number of GiB is that whole number (24, 32, 80);
anything else, and every free amount, is rounded to 0.1. See :func:`vram_gb`.

``python -m comfyvn_gui.providers.local`` prints the snapshot as JSON.
"""

from __future__ import annotations

import asyncio
import math
import re
import ssl
from collections.abc import Sequence
from typing import Any

from comfyvn_gui.core import wording
from comfyvn_gui.core.checks import LocalGpu, LocalSnapshot, now

from .base import CheckContext, CheckFailure, Outcome
from .lazy import LazyImport
from .registry import register

#: NVML (nvidia-ml-py), imported by the first snapshot; the snapshot reads it untyped.
_pynvml = LazyImport("pynvml")

GIB = 2**30
#: A total this close below a whole number of GiB (as a fraction of it) is that number.
NOMINAL_SLACK = 0.02
#: How long the local ComfyUI gets to answer; it is usually not running, which is fine.
COMFYUI_PROBE_S = 1.5

NO_DRIVER_NOTE = "no NVIDIA driver found: jobs run on remote providers or on CPU"
NO_PACKAGE_NOTE = (
    "nvidia-ml-py is not installed, so NVIDIA GPUs cannot be read: jobs run on remote "
    "providers or on CPU"
)


# --------------------------------------------------------------------------- units


def vram_gb(nbytes: float, *, total: bool = True) -> float:
    """Bytes as GB the way GPU vendors state them (binary GB; see the module docstring)."""
    gib = max(0.0, float(nbytes)) / GIB
    if total:
        nominal = math.ceil(gib)
        if nominal - gib <= NOMINAL_SLACK * nominal:
            return float(nominal)
    return round(gib, 1)


# --------------------------------------------------------------------------- NVML snapshot


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _nvml_reason(nvml: Any, exc: BaseException) -> str:
    """Why NVML did not start, in words (no driver is the common case)."""
    not_found = tuple(
        cls
        for cls in (
            getattr(nvml, "NVMLError_LibraryNotFound", None),
            getattr(nvml, "NVMLError_DriverNotLoaded", None),
        )
        if isinstance(cls, type)
    )
    if not_found and isinstance(exc, not_found):
        return NO_DRIVER_NOTE
    text = _text(exc).strip() or type(exc).__name__
    return (
        f"no NVIDIA driver found (NVML did not start: {text}): jobs run on remote providers "
        "or on CPU"
    )


def snapshot(nvml: Any = None) -> LocalSnapshot:
    """This computer's NVIDIA GPUs. Blocking; never raises for a missing driver or package.

    ``nvml`` is the NVML module (``pynvml`` from nvidia-ml-py, imported here when not given).
    """
    taken = now()
    if nvml is None:
        try:
            nvml_module = _pynvml.load_module()
        except ImportError:
            return LocalSnapshot(source="none", note=NO_PACKAGE_NOTE, taken_at=taken)
        nvml = nvml_module
    error: type[BaseException] = getattr(nvml, "NVMLError", Exception)
    try:
        nvml.nvmlInit()
    except error as exc:
        return LocalSnapshot(source="none", note=_nvml_reason(nvml, exc), taken_at=taken)
    except OSError as exc:  # a broken libnvidia-ml that cannot even be loaded
        return LocalSnapshot(source="none", note=_nvml_reason(nvml, exc), taken_at=taken)
    try:
        try:
            driver: str | None = _text(nvml.nvmlSystemGetDriverVersion())
        except error:
            driver = None
        gpus: list[LocalGpu] = []
        skipped: list[str] = []
        for index in range(int(nvml.nvmlDeviceGetCount())):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                name = _text(nvml.nvmlDeviceGetName(handle))
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            except error as exc:  # a GPU that fell off the bus, no permission ...
                skipped.append(f"GPU {index}: {_text(exc)}")
                continue
            try:
                utilization = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu) / 100
            except error:  # "Not Supported" on some boards and MIG instances
                utilization = 0.0
            total = vram_gb(memory.total)
            gpus.append(
                LocalGpu(
                    name=name,
                    vram_total_gb=total,
                    vram_free_gb=min(total, vram_gb(memory.free, total=False)),
                    utilization=min(1.0, max(0.0, utilization)),
                    index=index,
                )
            )
    except error as exc:
        return LocalSnapshot(
            driver_version=None,
            source="nvml",
            note=f"the NVIDIA driver did not list its GPUs ({_text(exc)}): jobs run on remote "
            "providers or on CPU",
            taken_at=taken,
        )
    finally:
        try:
            nvml.nvmlShutdown()
        except error:
            pass
    note = None
    if not gpus:
        note = "the NVIDIA driver reports no GPU: jobs run on remote providers or on CPU"
    if skipped:
        note = (note + "; " if note else "") + "could not read " + "; ".join(skipped)
    return LocalSnapshot(gpus=gpus, driver_version=driver, source="nvml", note=note, taken_at=taken)


# --------------------------------------------------------------------------- ComfyUI


_DEVICE_NAME = re.compile(r"^(?:[a-z]+:\d+\s+)?(?P<name>.*?)(?:\s+:\s+[\w.-]+)?$")


def comfyui_devices(stats: Any) -> tuple[list[dict[str, Any]], bool]:
    """The GPUs in a ComfyUI ``/system_stats`` answer, and whether it looked like one.

    ComfyUI reports one entry per torch device with ``vram_total`` / ``vram_free`` in bytes;
    its ``name`` is ``"cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync"``. A ``cpu`` device
    (ComfyUI started with ``--cpu`` or without a usable GPU) reports system RAM, so it is not a
    GPU and is left out.
    """
    if not isinstance(stats, dict) or not isinstance(stats.get("devices"), list):
        return [], False
    gpus: list[dict[str, Any]] = []
    for dev in stats["devices"]:
        if not isinstance(dev, dict) or dev.get("type") == "cpu":
            continue
        total, free = dev.get("vram_total"), dev.get("vram_free")
        if not isinstance(total, int | float) or isinstance(total, bool) or total <= 0:
            continue
        raw_name = str(dev.get("name") or dev.get("type") or "GPU")
        match = _DEVICE_NAME.match(raw_name)
        total_gb = vram_gb(total)
        free_gb = vram_gb(free, total=False) if isinstance(free, int | float) else None
        gpus.append(
            {
                "name": (match.group("name") if match else raw_name) or raw_name,
                "type": dev.get("type"),
                "index": dev.get("index"),
                "vram_total_gb": total_gb,
                "vram_free_gb": None if free_gb is None else min(free_gb, total_gb),
                "vram_total_bytes": int(total),
            }
        )
    return gpus, True


def comfyui_summary(gpus: Sequence[dict[str, Any]]) -> str:
    if not gpus:
        return "no GPU (running on CPU)"
    parts = [f"{g['name']} {g['vram_total_gb']:.1f} GB" for g in gpus]
    return f"{len(gpus)} GPU{'s' if len(gpus) != 1 else ''}: " + ", ".join(parts)


async def _local_comfyui(ctx: CheckContext) -> dict[str, Any]:
    """What the local ComfyUI says, in ``detail`` form. Never fails the check."""
    url = ctx.endpoint("comfyui")
    if url is None:
        return {"comfyui": "not configured"}
    budget = min(COMFYUI_PROBE_S, ctx.remaining() - 0.2)
    if budget <= 0:
        return {"comfyui": "not checked (no time left)"}
    try:
        async with asyncio.timeout(budget):
            async with ctx.http() as http:
                resp = await http.get(f"{url}/system_stats")
                stats = http.json(resp)
    except TimeoutError:
        return {"comfyui": "not running", "comfyui_error": f"no answer in {budget:.1f} s"}
    except ssl.SSLError as exc:  # an https:// ComfyUI whose TLS failed after the handshake
        return {"comfyui": "not answering as ComfyUI", "comfyui_error": f"TLS: {exc.reason}"}
    except CheckFailure as failure:
        if failure.code in ("unreachable", "timeout"):
            return {"comfyui": "not running"}
        return {"comfyui": "not answering as ComfyUI", "comfyui_error": failure.message}
    gpus, ok = comfyui_devices(stats)
    if not ok:
        return {
            "comfyui": "not answering as ComfyUI",
            "comfyui_error": "/system_stats has no device list",
        }
    system = stats.get("system") if isinstance(stats.get("system"), dict) else {}
    return {
        "comfyui": "running",
        "comfyui_version": system.get("comfyui_version"),
        "comfyui_devices": gpus,
    }


# --------------------------------------------------------------------------- the adapter


@register("local")
class LocalAdapter:
    """Checks of this computer: cost-free, never a credential problem."""

    async def _check(self, ctx: CheckContext) -> Outcome:
        snap = await ctx.executor.run(ctx.deadline, snapshot)
        comfy = await _local_comfyui(ctx)
        message = wording.local_gpus(snap)
        if comfy["comfyui"] == "running":
            message += f"; ComfyUI running ({comfyui_summary(comfy['comfyui_devices'])})"
        else:
            message += f"; ComfyUI {comfy['comfyui']}"
        return Outcome(message=message, detail={"snapshot": snap.model_dump(mode="json"), **comfy})

    async def validate(self, ctx: CheckContext) -> Outcome:
        return await self._check(ctx)

    async def health(self, ctx: CheckContext) -> Outcome:
        return await self._check(ctx)


def main() -> int:
    """``python -m comfyvn_gui.providers.local``: the snapshot as one JSON object."""
    print(snapshot().model_dump_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
