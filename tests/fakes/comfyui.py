"""A ComfyUI server's ``GET /system_stats``, as ComfyUI's server.py answers it.

ComfyUI (comfyanonymous/ComfyUI, server.py) builds the answer from
``comfy.model_management``: ``system`` (os, RAM in bytes, versions, argv) and ``devices``, one
entry for its torch device with ``name`` (``get_torch_device_name``: ``"cuda:0 <GPU name> :
<allocator>"``), ``type`` (``cuda``, ``cpu``, ``mps`` ...), ``index``, and ``vram_total`` /
``vram_free`` / ``torch_vram_total`` / ``torch_vram_free`` in BYTES (``torch.cuda.mem_get_info``
and the allocator's reserved bytes). A CPU-only ComfyUI reports its RAM as the ``cpu`` device's
"VRAM". Every route is also served under ``/api`` as ComfyUI does; anything else is 404.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from .http import FakeServer, Reply, Request, reply_json

GIB = 2**30


@dataclass
class Device:
    name: str  # the GPU's name, e.g. "NVIDIA GeForce RTX 4090"
    vram_total: int  # bytes
    vram_free: int  # bytes
    type: str = "cuda"
    index: int | None = 0

    def as_json(self) -> dict[str, Any]:
        name = self.name
        if self.type == "cuda":  # get_torch_device_name(): "<device> <name> : <allocator>"
            name = f"cuda:{self.index} {self.name} : cudaMallocAsync"
        return {
            "name": name,
            "type": self.type,
            "index": self.index,
            "vram_total": self.vram_total,
            "vram_free": self.vram_free,
            "torch_vram_total": 2 * GIB,
            "torch_vram_free": GIB // 2,
        }


#: cuda.mem_get_info of an RTX 4090 (24 GiB board): 25,386,352,640 bytes total.
RTX_4090 = Device("NVIDIA GeForce RTX 4090", 25_386_352_640, 22_871_736_320)
RTX_3060 = Device("NVIDIA GeForce RTX 3060", 12_630_687_744, 11_811_160_064, index=1)
CPU_ONLY = Device("cpu", 33_498_554_368, 20_100_000_000, type="cpu", index=None)


def system_stats(devices: list[Device]) -> dict[str, Any]:
    return {
        "system": {
            "os": "posix",
            "ram_total": 67_282_509_824,
            "ram_free": 50_033_442_816,
            "comfyui_version": "0.3.27",
            "required_frontend_version": "1.14.5",
            "python_version": "3.12.7 (main, Oct  1 2024, 08:52:12) [GCC 11.4.0]",
            "pytorch_version": "2.6.0+cu124",
            "embedded_python": False,
            "argv": ["main.py", "--listen", "0.0.0.0"],
        },
        "devices": [d.as_json() for d in devices],
    }


def comfyui_server(
    devices: list[Device] | None = None, *, ssl_context: ssl.SSLContext | None = None
) -> FakeServer:
    """A ComfyUI with ``devices`` (default: one RTX 4090); enter it to start it."""
    stats = system_stats([RTX_4090] if devices is None else devices)
    server = FakeServer(ssl_context=ssl_context)

    def answer(req: Request) -> Reply:
        return reply_json(200, stats)

    for path in ("/system_stats", "/api/system_stats"):
        server.route("GET", path)(answer)
    return server
