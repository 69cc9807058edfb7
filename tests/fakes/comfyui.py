"""ComfyUI counterparts: ``GET /system_stats`` alone, and a contract fake of the whole server.

``comfyui_server(devices)`` (a :class:`~tests.fakes.http.FakeServer`) answers only
``GET /system_stats`` as ComfyUI's server.py does. ComfyUI (comfyanonymous/ComfyUI, server.py)
builds that answer from ``comfy.model_management``: ``system`` (os, RAM in bytes, versions, argv)
and ``devices``, one entry for its torch device with ``name`` (``get_torch_device_name``:
``"cuda:0 <GPU name> : <allocator>"``), ``type`` (``cuda``, ``cpu``, ``mps`` ...), ``index``, and
``vram_total`` / ``vram_free`` / ``torch_vram_total`` / ``torch_vram_free`` in BYTES
(``torch.cuda.mem_get_info`` and the allocator's reserved bytes). A CPU-only ComfyUI reports its
RAM as the ``cpu`` device's "VRAM". Every route is also served under ``/api`` as ComfyUI does;
anything else is 404.

:class:`ComfyUIServer` (as a context manager: ``running_comfyui(**kw)``; the name
``comfyui_server`` stays the ``/system_stats``-only fake other tests use) is a contract fake of a
whole ComfyUI: an aiohttp app (ComfyUI is one) on 127.0.0.1 in a background thread, a prompt
queue and a worker thread that really runs the graph with Pillow. It follows ComfyUI as of
mid/late 2025 (async ``validate_prompt`` with ``partial_execution_targets``, ``POST /interrupt``
with ``prompt_id``, ``progress_state``, ``feature_flags``; before ``missing_node_type`` replaced
``invalid_prompt``).
The facts it follows, read in ComfyUI's own source (server.py, execution.py, main.py,
nodes.py, folder_paths.py, comfy_execution/progress.py, comfy_execution/validation.py,
comfy_extras/nodes_upscale_model.py, comfy_api/feature_flags.py):

* Routes (server.py): every route is registered twice, as ``/x`` and ``/api/x`` (``add_routes``).
  ``GET /models`` lists ``folder_names_and_paths`` keys, ``GET /models/{folder}`` is 404 for an
  unknown folder. ``GET /object_info[/{class}]`` answers ``node_info``: ``input`` (the node's
  ``INPUT_TYPES``: a COMBO is ``[[choices...], {opts}]``), ``input_order``, ``output``,
  ``output_is_list``, ``output_name``, ``name``, ``display_name``, ``description``,
  ``python_module``, ``category``, ``output_node`` (and ``output_tooltips``); an unknown class
  gives ``{}``. A request whose ``Origin`` does not match a loopback ``Host`` gets 403
  (``origin_only_middleware``).
* ``POST /upload/image`` (multipart ``image``, ``overwrite``, ``type`` = input|temp|output,
  ``subfolder``) answers ``{"name", "subfolder", "type"}``; a name clash without overwrite is
  renamed ``"name (1).png"`` unless the bytes are the same (then the old name is kept: a
  duplicate); a path outside the folder is 400.
* ``POST /prompt``: ``number`` is a counter (negated with ``front``; a given ``number`` becomes a
  float), ``prompt_id`` is the caller's or a uuid4, ``client_id`` goes into ``extra_data``;
  answered ``{"prompt_id", "number", "node_errors"}`` (200, ``node_errors`` may list outputs that
  failed while others pass) or ``{"error": {...}, "node_errors": {...}}`` (400). No ``prompt``:
  ``no_prompt``. execution.py ``validate_prompt``: a node without ``class_type`` or of an unknown
  class -> ``invalid_prompt`` "Cannot execute because node X does not exist." (details
  ``"Node ID '#id'"``, ``node_errors`` ``{}``); no OUTPUT_NODE -> ``prompt_no_outputs``; else
  each output is validated (``validate_inputs``, recursively up its links):
  ``required_input_missing``, ``bad_linked_input``, ``return_type_mismatch``,
  ``invalid_input_type``, ``value_smaller_than_min`` / ``value_bigger_than_max``,
  ``value_not_in_list`` (details ``"name: 'value' not in [...]"``, ``(list of length N)`` over 20
  choices), ``custom_validation_failed`` (a node's VALIDATE_INPUTS: LoadImage's "Invalid image
  file: x", which skips its COMBO check); a link to a missing node raises KeyError, reported as
  ``exception_during_validation`` (on the output node) or ``exception_during_inner_validation``
  (on the node holding the link). ``node_errors[id] = {"errors", "dependent_outputs",
  "class_type"}``; with no valid output the error is ``prompt_outputs_failed_validation`` whose
  ``details`` lists only the output nodes' own errors.
* Queue (execution.py ``PromptQueue``, main.py ``prompt_worker``): items are ``[number,
  prompt_id, prompt, extra_data, outputs_to_execute]`` (a heap by number; ``GET /queue`` gives
  ``queue_running`` / ``queue_pending`` of them in heap order), ``POST /queue`` ``clear`` /
  ``delete`` take pending ones out, ``POST /interrupt`` (optional ``prompt_id``: only if that one
  runs) makes the running prompt raise at its next node or progress step. Every change sends
  ``status`` ``{"status": {"exec_info": {"queue_remaining": n}}}`` to every socket.
* History (``task_done``): ``{id: {"prompt": [...5 items], "outputs": {node: ui},
  "status": {"status_str": "success"|"error", "completed": bool, "messages": [[event, data]...]},
  "meta": {node: {"node_id", "display_node", "parent_node", "real_node_id"}}}}``; ``{}`` before.
  ``completed`` is False for an error and for an interruption.
* WebSocket ``/ws?clientId=``: first ``status`` with ``sid``; (a reconnecting client whose prompt
  runs also gets ``executing`` ``{"node"}``); a first ``feature_flags`` message is answered with
  the server's. Per prompt (execution.py ``PromptExecutor``, to its client only, each with a
  ``timestamp`` in ms): ``execution_start`` ``{prompt_id}``, ``execution_cached``
  ``{nodes, prompt_id}``, then per node ``executing`` ``{node, display_node, prompt_id}``,
  ``progress`` ``{value, max, prompt_id, node}`` (main.py ``hijack_progress``: KSampler's steps,
  the upscaler's tiles; broadcast when the prompt has no client), ``executed`` ``{node,
  display_node, output, prompt_id}`` for nodes with a UI output; ``progress_state`` ``{prompt_id,
  nodes}`` to every socket (comfy_execution/progress.py); then ``execution_success``
  ``{prompt_id}`` or ``execution_error`` ``{prompt_id, node_id, node_type, executed,
  exception_message, exception_type, traceback, current_inputs, current_outputs}`` or
  ``execution_interrupted`` ``{prompt_id, node_id, node_type, executed}``; after the history is
  written a ``status`` and ``executing`` ``{"node": null, "prompt_id"}``.
* Caching (the CLASSIC cache): a node whose class, inputs and upstream are unchanged (LoadImage:
  the file's sha256, its IS_CHANGED) is not run again; it is listed in ``execution_cached``, a
  cached output node only re-sends its ``executed``, and the history lists its old files.
* ``GET /view?filename=&subfolder=&type=`` (default type output; ``"name [input]"`` annotations):
  a filename starting with ``/`` or holding ``..`` is 400, an unknown type 400, a subfolder
  outside the folder 403, a missing file 404, else the file (Content-Type by extension).
* Nodes (nodes.py, nodes_upscale_model.py): SaveImage names files
  ``<prefix>_<counter:05>_.png`` with the subfolder taken from the prefix
  (``folder_paths.get_save_image_path``: the counter is one past the highest for that prefix, a
  prefix leaving the output folder is an error) and embeds the prompt as PNG text; LoadImage
  lists the input folder's image files; EmptyLatentImage / VAEEncode work in multiples of 8.

Stand-ins, not ComfyUI: models are names (``models``), KSampler draws a deterministic image from
a sha256 of its inputs (equal inputs, equal pixels; VAEEncode'd pixels blended in by
``1 - denoise``), ImageUpscaleWithModel is a 4x Lanczos resize. ``node_delay_s`` slows each node
(for cancel tests), ``fail_node_class`` makes that class raise. ``kill()`` is a server that dies:
listener closed and every connection reset at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import hashlib
import heapq
import ipaddress
import json
import math
import mimetypes
import os
import random
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse, urlsplit

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from PIL import Image, ImageOps, ImageSequence
from PIL.PngImagePlugin import PngInfo

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


# =========================================================================== the contract fake

#: nodes.py MAX_RESOLUTION (16384 since late 2024).
MAX_RESOLUTION = 16384
#: comfy/samplers.py KSampler.SAMPLERS / SCHEDULERS (mid 2025).
SAMPLERS = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
    "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm",
    "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp",
    "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation",
    "er_sde", "seeds_2", "seeds_3", "ddim", "uni_pc", "uni_pc_bh2",
]  # fmt: skip
SCHEDULERS = [
    "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
    "linear_quadratic", "kl_optimal",
]  # fmt: skip
#: folder_paths.folder_names_and_paths keys (GET /models), before any extra folder of ``models``.
MODEL_FOLDERS = [
    "checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models",
    "clip_vision", "style_models", "embeddings", "diffusers", "vae_approx", "controlnet",
    "gligen", "upscale_models", "custom_nodes", "hypernetworks", "photomaker", "classifiers",
]  # fmt: skip
DEFAULT_MODELS: dict[str, list[str]] = {
    "checkpoints": ["sd_xl_base_1.0.safetensors"],
    "upscale_models": ["RealESRGAN_x4plus.pth"],
}
#: comfy_api/feature_flags.py SERVER_FEATURE_FLAGS (max_upload_size: --max-upload-size 100 MB).
FEATURE_FLAGS = {"supports_preview_metadata": True, "max_upload_size": 100 * 1024 * 1024}
UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
_RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


class InterruptProcessingException(Exception):
    """comfy.model_management's: raised at the next check after POST /interrupt."""


def _full_type_name(klass: type) -> str:
    module = klass.__module__
    return klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"


def _is_link(value: Any) -> bool:
    """comfy_execution/graph_utils.is_link."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int | float)
    )


def _types_match(received: Any, wanted: Any) -> bool:
    """comfy_execution/validation.validate_node_input (non-strict); ``*`` matches anything."""
    if received == wanted:
        return True
    if not isinstance(received, str) or not isinstance(wanted, str):
        return False
    if "*" in (received, wanted):
        return True
    return bool({t.strip() for t in received.split(",")} & {t.strip() for t in wanted.split(",")})


def _format_value(x: Any) -> Any:
    """execution.format_value (current_inputs of execution_error)."""
    if x is None or isinstance(x, int | float | bool | str):
        return x
    if isinstance(x, list) and x and all(isinstance(i, Image.Image) for i in x):
        return f"<IMAGE batch={len(x)} {x[0].width}x{x[0].height}>"
    return str(x)


# --------------------------------------------------------------------------- node classes


@dataclass
class _Ctx:
    """What a running node may use: the server, its prompt and the progress hook."""

    server: ComfyUIServer
    run: _Run
    node_id: str

    def progress(self, value: int, total: int) -> None:
        self.server._progress(self.run, self.node_id, value, total)


@dataclass(frozen=True)
class NodeClass:
    """One node class as ComfyUI describes it (``INPUT_TYPES``, ``RETURN_TYPES`` ...)."""

    name: str
    input_types: Callable[[ComfyUIServer], dict[str, dict[str, tuple[Any, ...]]]]
    returns: tuple[str, ...]
    run: Callable[..., Any]
    category: str
    display_name: str
    description: str = ""
    output_node: bool = False
    python_module: str = "nodes"
    output_tooltips: tuple[str, ...] | None = None
    validate: Callable[..., Any] | None = None  # VALIDATE_INPUTS(server, **inputs)
    validate_args: tuple[str, ...] = ()
    is_changed: Callable[..., Any] | None = None  # IS_CHANGED(server, **inputs)

    def info(self, server: ComfyUIServer) -> dict[str, Any]:
        """server.py ``node_info``."""
        inputs = self.input_types(server)
        info: dict[str, Any] = {
            "input": inputs,
            "input_order": {k: list(v) for k, v in inputs.items()},
            "output": list(self.returns),
            "output_is_list": [False] * len(self.returns),
            "output_name": list(self.returns),
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "python_module": self.python_module,
            "category": self.category,
            "output_node": self.output_node,
        }
        if self.output_tooltips is not None:
            info["output_tooltips"] = list(self.output_tooltips)
        return json.loads(json.dumps(info))  # tuples -> lists, as web.json_response writes them


def _opt(kind: Any, **opts: Any) -> tuple[Any, ...]:
    return (kind, opts) if opts else (kind,)


def _token(kind: str, ckpt_name: str) -> dict[str, str]:
    return {"type": kind, "ckpt_name": ckpt_name}


def _load_checkpoint(ctx: _Ctx, ckpt_name: str) -> tuple[Any, ...]:
    return (
        _token("MODEL", ckpt_name),
        _token("CLIP", ckpt_name),
        _token("VAE", ckpt_name),
    )


def _clip_text_encode(ctx: _Ctx, text: str, clip: Any) -> tuple[Any, ...]:
    if clip is None:
        raise RuntimeError("ERROR: clip input is invalid: None")
    return ({"text": text, "ckpt_name": clip["ckpt_name"]},)


def _empty_latent(ctx: _Ctx, width: int, height: int, batch_size: int = 1) -> tuple[Any, ...]:
    # latent of [batch, 4, height // 8, width // 8]: it decodes to multiples of 8
    size = (max(8, width // 8 * 8), max(8, height // 8 * 8))
    return ({"size": size, "batch": batch_size, "images": None},)


def _crop_to_8(img: Image.Image) -> Image.Image:
    """VAE.vae_encode_crop_pixels: crop to a multiple of 8, centred."""
    w, h = img.width // 8 * 8, img.height // 8 * 8
    if (w, h) == img.size:
        return img
    x, y = (img.width % 8) // 2, (img.height % 8) // 2
    return img.crop((x, y, x + w, y + h))


def _vae_encode(ctx: _Ctx, pixels: list[Image.Image], vae: Any) -> tuple[Any, ...]:
    images = [_crop_to_8(p) for p in pixels]
    return ({"size": images[0].size, "batch": len(images), "images": images},)


def _pattern(digest: bytes, size: tuple[int, int]) -> Image.Image:
    """A 16x16 RGB tile spun from a sha256 chain, smoothly scaled up: deterministic, cheap."""
    data = b""
    block = digest
    while len(data) < 16 * 16 * 3:
        block = hashlib.sha256(block).digest()
        data += block
    tile = Image.frombytes("RGB", (16, 16), data[: 16 * 16 * 3])
    return tile.resize(size, Image.Resampling.BICUBIC)


def _ksampler(
    ctx: _Ctx,
    model: Any,
    seed: int,
    steps: int,
    cfg: float,
    sampler_name: str,
    scheduler: str,
    positive: Any,
    negative: Any,
    latent_image: Any,
    denoise: float = 1.0,
) -> tuple[Any, ...]:
    for step in range(steps):  # latent_preview's callback: one progress per step
        ctx.progress(step + 1, steps)
    size, batch = latent_image["size"], latent_image["batch"]
    sources = latent_image["images"]
    out = []
    for i in range(batch):
        key = json.dumps(
            [
                model["ckpt_name"],
                seed,
                i,
                steps,
                cfg,
                sampler_name,
                scheduler,
                positive["text"],
                negative["text"],
                denoise,
                size,
            ]
        )
        img = _pattern(hashlib.sha256(key.encode()).digest(), size)
        if sources is not None and denoise < 1.0:
            img = Image.blend(sources[min(i, len(sources) - 1)].convert("RGB"), img, denoise)
        out.append(img)
    return ({"size": size, "batch": batch, "images": out},)


def _vae_decode(ctx: _Ctx, samples: Any, vae: Any) -> tuple[Any, ...]:
    if samples["images"] is not None:
        return ([img.copy() for img in samples["images"]],)
    return ([Image.new("RGB", samples["size"], (127, 127, 127)) for _ in range(samples["batch"])],)


def _save_image_path(
    filename_prefix: str, output_dir: str, image_width: int = 0, image_height: int = 0
) -> tuple[str, str, int, str, str]:
    """folder_paths.get_save_image_path."""

    def map_filename(filename: str) -> tuple[int, str]:
        prefix_len = len(os.path.basename(filename_prefix))
        prefix = filename[: prefix_len + 1]
        try:
            digits = int(filename[prefix_len + 1 :].split("_")[0])
        except ValueError:
            digits = 0
        return digits, prefix

    if "%" in filename_prefix:
        now = time.localtime()
        for var, value in (
            ("%width%", str(image_width)),
            ("%height%", str(image_height)),
            ("%year%", str(now.tm_year)),
            ("%month%", str(now.tm_mon).zfill(2)),
            ("%day%", str(now.tm_mday).zfill(2)),
            ("%hour%", str(now.tm_hour).zfill(2)),
            ("%minute%", str(now.tm_min).zfill(2)),
            ("%second%", str(now.tm_sec).zfill(2)),
        ):
            filename_prefix = filename_prefix.replace(var, value)
    subfolder = os.path.dirname(os.path.normpath(filename_prefix))
    filename = os.path.basename(os.path.normpath(filename_prefix))
    full_output_folder = os.path.join(output_dir, subfolder)
    if os.path.commonpath((output_dir, os.path.abspath(full_output_folder))) != output_dir:
        raise Exception(  # ComfyUI raises a bare Exception here
            "**** ERROR: Saving image outside the output folder is not allowed."
            "\n full_output_folder: "
            + os.path.abspath(full_output_folder)
            + "\n         output_dir: "
            + output_dir
        )
    try:
        counter = (
            max(
                d
                for d, p in map(map_filename, os.listdir(full_output_folder))
                if os.path.normcase(p[:-1]) == os.path.normcase(filename) and p[-1:] == "_"
            )
            + 1
        )
    except ValueError:
        counter = 1
    except FileNotFoundError:
        os.makedirs(full_output_folder, exist_ok=True)
        counter = 1
    return full_output_folder, filename, counter, subfolder, filename_prefix


def _save(
    ctx: _Ctx, images: list[Image.Image], filename_prefix: str, kind: str, compress_level: int
) -> dict[str, Any]:
    server, run = ctx.server, ctx.run
    folder = server.output_dir if kind == "output" else server.temp_dir
    full_folder, filename, counter, subfolder, _ = _save_image_path(
        filename_prefix, folder, images[0].width, images[0].height
    )
    results = []
    for batch_number, image in enumerate(images):
        metadata = PngInfo()
        metadata.add_text("prompt", json.dumps(run.prompt))
        extra_pnginfo = run.extra_data.get("extra_pnginfo")
        if isinstance(extra_pnginfo, dict):
            for key, value in extra_pnginfo.items():
                metadata.add_text(key, json.dumps(value))
        name = f"{filename.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
        image.save(os.path.join(full_folder, name), pnginfo=metadata, compress_level=compress_level)
        results.append({"filename": name, "subfolder": subfolder, "type": kind})
        counter += 1
    return {"ui": {"images": results}}


def _save_image(
    ctx: _Ctx, images: list[Image.Image], filename_prefix: str = "ComfyUI"
) -> dict[str, Any]:
    return _save(ctx, images, filename_prefix, "output", 4)


def _preview_image(ctx: _Ctx, images: list[Image.Image]) -> dict[str, Any]:
    suffix = "".join(random.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))
    return _save(ctx, images, "ComfyUI_temp_" + suffix, "temp", 1)


def _load_image(ctx: _Ctx, image: str) -> tuple[Any, ...]:
    path = ctx.server._annotated_path(image, "input")
    if path is None:
        raise FileNotFoundError(image)
    images, masks = [], []
    with Image.open(path) as img:
        for frame in ImageSequence.Iterator(img):
            frame = ImageOps.exif_transpose(frame)
            rgb = frame.convert("RGB")
            if images and rgb.size != images[0].size:
                continue
            images.append(rgb)
            if "A" in frame.getbands():
                masks.append(ImageOps.invert(frame.getchannel("A")))  # mask = 1 - alpha
            else:
                masks.append(Image.new("L", (64, 64), 0))
    return (images, masks)


def _load_image_valid(server: ComfyUIServer, image: Any) -> Any:
    if server._annotated_path(image, "input") is None:
        return f"Invalid image file: {image}"
    return True


def _load_image_changed(server: ComfyUIServer, image: Any) -> Any:
    path = server._annotated_path(image, "input")
    if path is None:
        return None
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _resize(img: Image.Image, width: int, height: int, method: str, crop: str) -> Image.Image:
    """comfy.utils.common_upscale on one image."""
    if crop == "center":
        old_w, old_h = img.size
        old_aspect, new_aspect = old_w / old_h, width / height
        x = y = 0
        if old_aspect > new_aspect:
            x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
        elif old_aspect < new_aspect:
            y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
        img = img.crop((x, y, old_w - x, old_h - y))
    return img.resize((width, height), _RESAMPLE[method])


def _image_scale(
    ctx: _Ctx, image: list[Image.Image], upscale_method: str, width: int, height: int, crop: str
) -> tuple[Any, ...]:
    if width == 0 and height == 0:
        return (image,)
    out = []
    for img in image:
        w, h = width, height
        if w == 0:
            w = max(1, round(img.width * h / img.height))
        elif h == 0:
            h = max(1, round(img.height * w / img.width))
        out.append(_resize(img, w, h, upscale_method, crop))
    return (out,)


def _image_scale_by(
    ctx: _Ctx, image: list[Image.Image], upscale_method: str, scale_by: float
) -> tuple[Any, ...]:
    return (
        [
            _resize(
                img,
                round(img.width * scale_by),
                round(img.height * scale_by),
                upscale_method,
                "disabled",
            )
            for img in image
        ],
    )


def _upscale_model_loader(ctx: _Ctx, model_name: str) -> tuple[Any, ...]:
    if model_name not in ctx.server.models.get("upscale_models", []):
        raise FileNotFoundError(
            f"Model in folder 'upscale_models' with filename '{model_name}' not found."
        )
    return ({"type": "UPSCALE_MODEL", "model_name": model_name, "scale": 4},)


def _upscale_with_model(ctx: _Ctx, upscale_model: Any, image: list[Image.Image]) -> tuple[Any, ...]:
    scale = upscale_model["scale"]
    # comfy.utils.get_tiled_scale_steps with tile 512, overlap 32: one progress per tile
    steps = sum(math.ceil(i.height / 480) * math.ceil(i.width / 480) for i in image)
    for step in range(steps):
        ctx.progress(step + 1, steps)
    return (
        [i.resize((i.width * scale, i.height * scale), Image.Resampling.LANCZOS) for i in image],
    )


def _node_classes() -> dict[str, NodeClass]:
    def files(folder: str) -> Callable[[ComfyUIServer], list[str]]:
        return lambda s: list(s.models.get(folder, []))

    ckpts, upscalers = files("checkpoints"), files("upscale_models")
    res = {"min": 0, "max": MAX_RESOLUTION, "step": 1}
    classes = [
        NodeClass(
            "CheckpointLoaderSimple",
            lambda s: {
                "required": {
                    "ckpt_name": _opt(
                        ckpts(s), tooltip="The name of the checkpoint (model) to load."
                    )
                }
            },
            ("MODEL", "CLIP", "VAE"),
            _load_checkpoint,
            "loaders",
            "Load Checkpoint",
            "Loads a diffusion model checkpoint, diffusion models are used to denoise latents.",
            output_tooltips=(
                "The model used for denoising latents.",
                "The CLIP model used for encoding text prompts.",
                "The VAE model used for encoding and decoding images to and from latent space.",
            ),
        ),
        NodeClass(
            "CLIPTextEncode",
            lambda s: {
                "required": {
                    "text": _opt(
                        "STRING",
                        multiline=True,
                        dynamicPrompts=True,
                        tooltip="The text to be encoded.",
                    ),
                    "clip": _opt("CLIP", tooltip="The CLIP model used for encoding the text."),
                }
            },
            ("CONDITIONING",),
            _clip_text_encode,
            "conditioning",
            "CLIP Text Encode (Prompt)",
            "Encodes a text prompt using a CLIP model into an embedding that can be used to guide the diffusion model towards generating specific images.",  # noqa: E501
        ),
        NodeClass(
            "EmptyLatentImage",
            lambda s: {
                "required": {
                    "width": _opt("INT", default=512, min=16, max=MAX_RESOLUTION, step=8),
                    "height": _opt("INT", default=512, min=16, max=MAX_RESOLUTION, step=8),
                    "batch_size": _opt("INT", default=1, min=1, max=4096),
                }
            },
            ("LATENT",),
            _empty_latent,
            "latent",
            "Empty Latent Image",
            "Create a new batch of empty latent images to be denoised via sampling.",
        ),
        NodeClass(
            "VAEEncode",
            lambda s: {"required": {"pixels": _opt("IMAGE"), "vae": _opt("VAE")}},
            ("LATENT",),
            _vae_encode,
            "latent",
            "VAE Encode",
        ),
        NodeClass(
            "VAEDecode",
            lambda s: {
                "required": {
                    "samples": _opt("LATENT", tooltip="The latent to be decoded."),
                    "vae": _opt("VAE", tooltip="The VAE model used for decoding the latent."),
                }
            },
            ("IMAGE",),
            _vae_decode,
            "latent",
            "VAE Decode",
            "Decodes latent images back into pixel space images.",
        ),
        NodeClass(
            "KSampler",
            lambda s: {
                "required": {
                    "model": _opt("MODEL"),
                    "seed": _opt(
                        "INT", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True
                    ),
                    "steps": _opt("INT", default=20, min=1, max=10000),
                    "cfg": _opt("FLOAT", default=8.0, min=0.0, max=100.0, step=0.1, round=0.01),
                    "sampler_name": _opt(list(SAMPLERS)),
                    "scheduler": _opt(list(SCHEDULERS)),
                    "positive": _opt("CONDITIONING"),
                    "negative": _opt("CONDITIONING"),
                    "latent_image": _opt("LATENT"),
                    "denoise": _opt("FLOAT", default=1.0, min=0.0, max=1.0, step=0.01),
                }
            },
            ("LATENT",),
            _ksampler,
            "sampling",
            "KSampler",
            "Uses the provided model, positive and negative conditioning to denoise the latent image.",  # noqa: E501
        ),
        NodeClass(
            "SaveImage",
            lambda s: {
                "required": {
                    "images": _opt("IMAGE", tooltip="The images to save."),
                    "filename_prefix": _opt(
                        "STRING", default="ComfyUI", tooltip="The prefix for the file to save."
                    ),
                },
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
            },
            (),
            _save_image,
            "image",
            "Save Image",
            "Saves the input images to your ComfyUI output directory.",
            output_node=True,
        ),
        NodeClass(
            "PreviewImage",
            lambda s: {
                "required": {"images": _opt("IMAGE")},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
            },
            (),
            _preview_image,
            "image",
            "Preview Image",
            "Saves the input images to your ComfyUI output directory.",
            output_node=True,
        ),
        NodeClass(
            "LoadImage",
            lambda s: {"required": {"image": _opt(s._input_images(), image_upload=True)}},
            ("IMAGE", "MASK"),
            _load_image,
            "image",
            "Load Image",
            validate=_load_image_valid,
            validate_args=("image",),
            is_changed=_load_image_changed,
        ),
        NodeClass(
            "ImageScale",
            lambda s: {
                "required": {
                    "image": _opt("IMAGE"),
                    "upscale_method": _opt(list(UPSCALE_METHODS)),
                    "width": _opt("INT", default=512, **res),
                    "height": _opt("INT", default=512, **res),
                    "crop": _opt(["disabled", "center"]),
                }
            },
            ("IMAGE",),
            _image_scale,
            "image/upscaling",
            "Upscale Image",
        ),
        NodeClass(
            "ImageScaleBy",
            lambda s: {
                "required": {
                    "image": _opt("IMAGE"),
                    "upscale_method": _opt(list(UPSCALE_METHODS)),
                    "scale_by": _opt("FLOAT", default=1.0, min=0.01, max=8.0, step=0.01),
                }
            },
            ("IMAGE",),
            _image_scale_by,
            "image/upscaling",
            "Upscale Image By",
        ),
        NodeClass(
            "UpscaleModelLoader",
            lambda s: {"required": {"model_name": _opt(upscalers(s))}},
            ("UPSCALE_MODEL",),
            _upscale_model_loader,
            "loaders",
            "Load Upscale Model",
            python_module="comfy_extras.nodes_upscale_model",
        ),
        NodeClass(
            "ImageUpscaleWithModel",
            lambda s: {
                "required": {"upscale_model": _opt("UPSCALE_MODEL"), "image": _opt("IMAGE")}
            },
            ("IMAGE",),
            _upscale_with_model,
            "image/upscaling",
            "Upscale Image (using Model)",
            python_module="comfy_extras.nodes_upscale_model",
        ),
    ]
    return {c.name: c for c in classes}


NODE_CLASSES = _node_classes()


# --------------------------------------------------------------------------- the server


@dataclass
class _Run:
    """One queue item while it runs (the PromptExecutor's state for it)."""

    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]
    interrupt: threading.Event = field(default_factory=threading.Event)
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    last_node_id: str | None = None
    success: bool = True
    history_result: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def client_id(self) -> str | None:
        return self.extra_data.get("client_id")

    def item(self) -> list[Any]:
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]

    def check_interrupt(self) -> None:
        """nodes.before_node_execution / the progress hook."""
        if self.interrupt.is_set():
            raise InterruptProcessingException


class ComfyUIServer:
    """A ComfyUI on 127.0.0.1 that validates, queues and really runs graphs (see the module doc).

    ``models``: model folder -> file names (default: SDXL base and RealESRGAN x4plus).
    ``node_delay_s``: each node takes this long (an interrupt cuts the wait short).
    ``upload_delay_s``: each upload takes this long to be answered (a slow link).
    ``device``: the ``system_stats`` device. ``fail_node_class``: nodes of this class raise
    ``RuntimeError(fail_message)``. ``queue_workers``: prompts run at once (ComfyUI: 1), each
    worker with its own cache. ``cache``: False is ComfyUI's ``--cache-none``.

    ``url`` / ``base``, ``port``; ``requests``: ``(method, path)`` of every HTTP request (the
    WebSocket upgrade included), ``authorizations`` their Authorization headers; with
    ``ssl_context`` it serves HTTPS (``url`` says https); with ``token`` every request without
    ``Authorization: Bearer <token>`` gets 401 (ComfyUI has no authentication of its own: this is
    the reverse proxy or hosted service in front of it); ``uploads``: uploaded bytes by the
    name LoadImage takes (``"sub/name.png"``; ``"name.png [temp]"`` for other types);
    ``input_dir`` / ``output_dir`` / ``temp_dir`` under ``root``, a temp folder ``stop()``
    deletes. ``wait_until_running`` /
    ``wait_until_done`` block on the queue's own condition. An interrupt with nothing running
    does nothing (ComfyUI's flag is reset when the next prompt starts).
    """

    def __init__(
        self,
        *,
        models: dict[str, list[str]] | None = None,
        node_delay_s: float = 0.0,
        upload_delay_s: float = 0.0,
        device: Device = RTX_4090,
        fail_node_class: str | None = None,
        fail_message: str = "fake failure (fail_node_class)",
        queue_workers: int = 1,
        cache: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        token: str | None = None,
    ) -> None:
        self.models = copy.deepcopy(DEFAULT_MODELS if models is None else models)
        self.token = token
        self.node_delay_s = node_delay_s
        self.upload_delay_s = upload_delay_s
        self.device = device
        self.fail_node_class = fail_node_class
        self.fail_message = fail_message
        self.queue_workers = queue_workers
        self.cache = cache
        self.classes = NODE_CLASSES
        self.requests: list[tuple[str, str]] = []
        #: The Authorization header of every request, in order (None when there was none).
        self.authorizations: list[str | None] = []
        self.ssl_context = ssl_context
        self.uploads: dict[str, bytes] = {}
        self.url = ""
        self.port = 0
        self.root = ""
        self.input_dir = self.output_dir = self.temp_dir = ""
        # PromptQueue
        self._cond = threading.Condition(threading.RLock())
        self._queue: list[tuple[float, int, _Run]] = []
        self._seq = 0
        self._number = 0
        self._task_counter = 0
        self._running: dict[int, _Run] = {}
        self._history: dict[str, dict[str, Any]] = {}
        self._stopping = False
        self._dead = False
        self._workers: list[threading.Thread] = []
        # the aiohttp side (its own thread and loop)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._messages: asyncio.Queue[tuple[Any, Any, str | None]] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._sockets_metadata: dict[str, dict[str, Any]] = {}
        self._all_ws: set[web.WebSocketResponse] = set()

    # ------------------------------------------------------------------ life cycle

    @property
    def base(self) -> str:
        return self.url

    def start(self) -> ComfyUIServer:
        self.root = os.path.realpath(tempfile.mkdtemp(prefix="comfyui-fake-"))
        self.input_dir = os.path.join(self.root, "input")
        self.output_dir = os.path.join(self.root, "output")
        self.temp_dir = os.path.join(self.root, "temp")
        for d in (self.input_dir, self.output_dir, self.temp_dir):
            os.makedirs(d)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        scheme = "https" if self.ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name="comfyui-fake-http", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10) or self._start_error is not None:
            self.stop()
            raise RuntimeError(f"the ComfyUI fake did not start: {self._start_error!r}")
        for i in range(self.queue_workers):
            t = threading.Thread(target=self._worker, name=f"comfyui-fake-worker{i}", daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> None:
        """Stop answering (closing WebSockets with 1001), drop the queue, delete the files."""
        self._halt_workers()
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError, TimeoutError):
                asyncio.run_coroutine_threadsafe(self._shutdown(abort=False), loop).result(10)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        for t in self._workers:
            t.join(10)
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)

    def kill(self) -> None:
        """Die mid-run: the listener closes and every connection is reset at once."""
        self._dead = True
        self._halt_workers()
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError, TimeoutError):
                asyncio.run_coroutine_threadsafe(self._shutdown(abort=True), loop).result(10)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    def __enter__(self) -> ComfyUIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _halt_workers(self) -> None:
        with self._cond:
            self._stopping = True
            for run in self._running.values():
                run.interrupt.set()
            self._cond.notify_all()

    def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        # (aiohttp sends files in the loop's executor: its threads are named as the fake's,
        # so a test that counts threads the app left does not count the fake's own)
        io = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="comfyui-fake-io")
        loop.set_default_executor(io)
        self._loop = loop
        try:
            loop.run_until_complete(self._setup(sock))
        except Exception as exc:  # noqa: BLE001 - reported by start()
            self._start_error = exc
            sock.close()
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            io.shutdown(wait=True)

    async def _setup(self, sock: socket.socket) -> None:
        self._messages = asyncio.Queue()
        app = self._build_app()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        assert self._runner.server is not None
        self._listener = await asyncio.get_running_loop().create_server(
            self._runner.server, sock=sock, backlog=128, ssl=self.ssl_context
        )
        self._publisher = asyncio.get_running_loop().create_task(self._publish_loop())

    async def _shutdown(self, *, abort: bool) -> None:
        if self._listener is not None:
            self._listener.close()  # no new connections
        if abort:
            assert self._runner is not None and self._runner.server is not None
            for handler in self._runner.server.connections:
                transport = handler.transport
                if transport is None:
                    continue
                sock = transport.get_extra_info("socket")
                if sock is not None:  # RST, as from a host that went away
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                transport.abort()
        else:
            await asyncio.gather(
                *(
                    ws.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutdown")
                    for ws in list(self._all_ws)
                ),
                return_exceptions=True,
            )
        if self._runner is not None:
            await self._runner.cleanup()
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher

    # ------------------------------------------------------------------ test helpers

    def wait_until_done(self, prompt_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Block until ``prompt_id`` is in the history; its entry (TimeoutError otherwise)."""
        with self._cond:
            if not self._cond.wait_for(lambda: prompt_id in self._history, timeout):
                raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s")
            return copy.deepcopy(self._history[prompt_id])

    def wait_until_running(self, prompt_id: str, timeout: float = 10.0) -> None:
        """Block until a worker has taken ``prompt_id`` off the queue."""
        with self._cond:
            if not self._cond.wait_for(
                lambda: any(r.prompt_id == prompt_id for r in self._running.values()), timeout
            ):
                raise TimeoutError(f"prompt {prompt_id} did not start in {timeout} s")

    def output_file(self, filename: str, subfolder: str = "", kind: str = "output") -> bytes:
        folder = {"output": self.output_dir, "input": self.input_dir, "temp": self.temp_dir}[kind]
        with open(os.path.join(folder, subfolder, filename), "rb") as f:
            return f.read()

    # ------------------------------------------------------------------ folders (folder_paths)

    def _dir_by_type(self, kind: str | None) -> str | None:
        return {"input": self.input_dir, "output": self.output_dir, "temp": self.temp_dir}.get(
            "output" if kind is None else kind
        )

    def _annotated_path(self, name: Any, default: str) -> str | None:
        """folder_paths.get_annotated_filepath + exists: the file, or None."""
        if not isinstance(name, str) or not name:
            return None
        base = self._dir_by_type(default)
        for tag in ("output", "input", "temp"):
            if name.endswith(f"[{tag}]"):
                name, base = name[: -len(tag) - 3], self._dir_by_type(tag)
                break
        assert base is not None
        path = os.path.abspath(os.path.join(base, name))
        if os.path.commonpath((self.root, path)) != self.root or not os.path.isfile(path):
            return None
        return path

    def _input_images(self) -> list[str]:
        """LoadImage's choices: the input folder's image files (not those in subfolders)."""
        names = [
            f
            for f in os.listdir(self.input_dir)
            if os.path.isfile(os.path.join(self.input_dir, f))
            and f.lower().endswith(IMAGE_SUFFIXES)
        ]
        return sorted(names)

    def _model_folders(self) -> list[str]:
        return MODEL_FOLDERS + [f for f in self.models if f not in MODEL_FOLDERS]

    # ------------------------------------------------------------------ messages

    def _send_sync(self, event: Any, data: Any, sid: str | None = None) -> None:
        """PromptServer.send_sync: from any thread, in order, through the publish loop."""
        loop, messages = self._loop, self._messages
        if self._dead or loop is None or messages is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(messages.put_nowait, (event, data, sid))

    def _queue_info(self) -> dict[str, Any]:
        with self._cond:
            remaining = len(self._queue) + len(self._running)
        return {"exec_info": {"queue_remaining": remaining}}

    def _queue_updated(self) -> None:
        self._send_sync("status", {"status": self._queue_info()})

    async def _publish_loop(self) -> None:
        assert self._messages is not None
        while True:
            event, data, sid = await self._messages.get()
            if sid is None:
                targets = list(self._sockets.values())
            else:
                targets = [self._sockets[sid]] if sid in self._sockets else []
            for ws in targets:
                await self._send_ws(ws, event, data)

    @staticmethod
    async def _send_ws(ws: web.WebSocketResponse, event: str, data: Any) -> None:
        with contextlib.suppress(ConnectionError, aiohttp.ClientError, RuntimeError):
            await ws.send_json({"type": event, "data": data})

    # ------------------------------------------------------------------ the HTTP app

    def _build_app(self) -> web.Application:
        fake = self

        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            fake.requests.append((request.method, request.path))
            fake.authorizations.append(request.headers.get("Authorization"))
            return await handler(request)

        @web.middleware
        async def bearer(request: web.Request, handler: Any) -> web.StreamResponse:
            if fake.token is not None and request.headers.get("Authorization") != (
                f"Bearer {fake.token}"
            ):
                return web.json_response({"error": "unauthorized"}, status=401)
            return await handler(request)

        @web.middleware
        async def origin_only(request: web.Request, handler: Any) -> web.StreamResponse:
            if _origin_mismatch(request.headers.get("Host"), request.headers.get("Origin")):
                return web.Response(status=403)
            if request.method == "OPTIONS":
                return web.Response()
            return await handler(request)

        app = web.Application(
            client_max_size=100 * 1024 * 1024, middlewares=[record, bearer, origin_only]
        )
        routes: list[tuple[str, str, Any]] = [
            ("GET", "/ws", self._ws),
            ("GET", "/system_stats", self._system_stats),
            ("GET", "/features", self._features),
            ("GET", "/embeddings", self._embeddings),
            ("GET", "/models", self._models),
            ("GET", "/models/{folder}", self._models_in),
            ("GET", "/object_info", self._object_info),
            ("GET", "/object_info/{node_class}", self._object_info_one),
            ("POST", "/upload/image", self._upload_image),
            ("GET", "/view", self._view),
            ("GET", "/prompt", self._get_prompt),
            ("POST", "/prompt", self._post_prompt),
            ("GET", "/queue", self._get_queue),
            ("POST", "/queue", self._post_queue),
            ("POST", "/interrupt", self._interrupt),
            ("GET", "/history", self._get_history),
            ("GET", "/history/{prompt_id}", self._get_history_one),
            ("POST", "/history", self._post_history),
        ]
        for prefix in ("/api", ""):  # add_routes: the /api copies first, then the plain ones
            for method, path, handler in routes:
                if method == "GET":
                    app.router.add_get(prefix + path, handler)
                else:
                    app.router.add_route(method, prefix + path, handler)
        return app

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(timeout=2.0)
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "")
        if sid:
            self._sockets.pop(sid, None)  # reusing a session: the old socket gets no more
        else:
            sid = uuid.uuid4().hex
        self._sockets[sid] = ws
        self._sockets_metadata[sid] = {"feature_flags": {}}
        self._all_ws.add(ws)
        try:
            await self._send_ws(ws, "status", {"status": self._queue_info(), "sid": sid})
            with self._cond:
                current = [r.last_node_id for r in self._running.values() if r.client_id == sid]
            if current and current[0] is not None:
                await self._send_ws(ws, "executing", {"node": current[0]})
            first = True
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                with contextlib.suppress(ValueError):
                    data = json.loads(msg.data)
                    if first and isinstance(data, dict) and data.get("type") == "feature_flags":
                        self._sockets_metadata[sid]["feature_flags"] = data.get("data", {})
                        await self._send_ws(ws, "feature_flags", dict(FEATURE_FLAGS))
                first = False
        finally:
            # ComfyUI pops the sid even when a newer socket took it over
            self._sockets.pop(sid, None)
            self._sockets_metadata.pop(sid, None)
            self._all_ws.discard(ws)
        return ws

    async def _system_stats(self, request: web.Request) -> web.Response:
        return web.json_response(system_stats([self.device]))

    async def _features(self, request: web.Request) -> web.Response:
        return web.json_response(dict(FEATURE_FLAGS))

    async def _embeddings(self, request: web.Request) -> web.Response:
        return web.json_response(
            [os.path.splitext(e)[0] for e in self.models.get("embeddings", [])]
        )

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(self._model_folders())

    async def _models_in(self, request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder not in self._model_folders():
            return web.Response(status=404)
        return web.json_response(list(self.models.get(folder, [])))

    async def _object_info(self, request: web.Request) -> web.Response:
        return web.json_response({name: c.info(self) for name, c in self.classes.items()})

    async def _object_info_one(self, request: web.Request) -> web.Response:
        name = request.match_info["node_class"]
        cls = self.classes.get(name)
        return web.json_response({name: cls.info(self)} if cls is not None else {})

    async def _upload_image(self, request: web.Request) -> web.Response:
        if self.upload_delay_s:  # (a slow link: the upload takes this long to arrive)
            await asyncio.sleep(self.upload_delay_s)
        post = await request.post()
        image = post.get("image")
        kind = post.get("type")
        if not isinstance(image, web.FileField):
            return web.Response(status=400)
        status, answer = self._store_upload(
            image.filename,
            image.file.read(),
            None if kind is None else str(kind),
            str(post.get("subfolder", "")),
            post.get("overwrite"),
        )
        if status != 200:
            return web.Response(status=status)
        return web.json_response(answer)

    def _store_upload(
        self, filename: str, data: bytes, kind: str | None, subfolder: str, overwrite: Any
    ) -> tuple[int, dict[str, Any]]:
        """server.py image_upload: the status and the answer."""
        upload_dir = self._dir_by_type("input" if kind is None else kind)
        if upload_dir is None:  # get_dir_by_type leaves type_dir unbound: a 500
            return 500, {}
        if not filename:
            return 400, {}
        folder = os.path.join(upload_dir, os.path.normpath(subfolder))
        filepath = os.path.abspath(os.path.join(folder, filename))
        if os.path.commonpath((upload_dir, filepath)) != upload_dir:
            return 400, {}
        os.makedirs(folder, exist_ok=True)
        stem, ext = os.path.splitext(filename)
        duplicate = False
        if overwrite not in ("true", "1"):
            i = 1
            while os.path.exists(filepath):
                with open(filepath, "rb") as f:  # the same bytes: a duplicate, kept as it is
                    if hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest():
                        duplicate = True
                        break
                filename = f"{stem} ({i}){ext}"
                filepath = os.path.join(folder, filename)
                i += 1
        if not duplicate:
            with open(filepath, "wb") as f:
                f.write(data)
        key = f"{subfolder}/{filename}" if subfolder else filename
        if kind not in (None, "input"):
            key += f" [{kind}]"
        self.uploads[key] = data
        return 200, {"name": filename, "subfolder": subfolder, "type": kind or "input"}

    async def _view(self, request: web.Request) -> web.StreamResponse:
        status, path = self._view_path(request.rel_url.query)
        if path is None:
            return web.Response(status=status)
        filename = os.path.basename(path)
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if content_type in {"text/html", "application/xhtml+xml", "text/javascript", "text/css"}:
            content_type = "application/octet-stream"  # forced to download, as ComfyUI does
        return web.FileResponse(
            path,
            headers={"Content-Disposition": f'filename="{filename}"', "Content-Type": content_type},
        )

    def _view_path(self, query: Any) -> tuple[int, str | None]:
        """server.py view_image: (status, file) for ``GET /view``."""
        if "filename" not in query:
            return 404, None
        filename = query["filename"]
        output_dir = None
        for tag in ("output", "input", "temp"):
            if filename.endswith(f"[{tag}]"):
                filename, output_dir = filename[: -len(tag) - 3], self._dir_by_type(tag)
                break
        if not filename:
            return 400, None
        if filename[0] == "/" or ".." in filename:
            return 400, None
        if output_dir is None:
            output_dir = self._dir_by_type(query.get("type", "output"))
        if output_dir is None:
            return 400, None
        if "subfolder" in query:
            full = os.path.join(output_dir, query["subfolder"])
            if os.path.commonpath((os.path.abspath(full), output_dir)) != output_dir:
                return 403, None
            output_dir = full
        path = os.path.join(output_dir, os.path.basename(filename))
        return (200, path) if os.path.isfile(path) else (404, None)

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self._queue_info())

    async def _post_prompt(self, request: web.Request) -> web.Response:
        try:
            json_data = await request.json()
        except ValueError:
            return web.Response(status=500, text="500 Internal Server Error")
        if not isinstance(json_data, dict):
            return web.Response(status=500, text="500 Internal Server Error")
        with self._cond:
            if "number" in json_data:
                number: float = float(json_data["number"])
            else:
                number = self._number
                if json_data.get("front"):
                    number = -number
                self._number += 1
        if "prompt" not in json_data:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        prompt = json_data["prompt"]
        if not isinstance(prompt, dict):
            return web.Response(status=500, text="500 Internal Server Error")
        prompt_id = str(json_data.get("prompt_id", uuid.uuid4()))
        ok, error, outputs, node_errors = self._validate_prompt(
            prompt, json_data.get("partial_execution_targets")
        )
        extra_data = json_data.get("extra_data", {})
        if not isinstance(extra_data, dict):
            extra_data = {}
        if "client_id" in json_data:
            extra_data["client_id"] = json_data["client_id"]
        if not ok:
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        run = _Run(number, prompt_id, prompt, extra_data, outputs)
        with self._cond:
            heapq.heappush(self._queue, (number, self._seq, run))
            self._seq += 1
            self._queue_updated()
            self._cond.notify_all()
        return web.json_response(
            {"prompt_id": prompt_id, "number": number, "node_errors": node_errors}
        )

    async def _get_queue(self, request: web.Request) -> web.Response:
        with self._cond:
            running = [r.item() for r in self._running.values()]
            pending = [r.item() for _, _, r in self._queue]
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def _post_queue(self, request: web.Request) -> web.Response:
        json_data = await request.json()
        with self._cond:
            if json_data.get("clear"):
                self._queue = []
                self._queue_updated()
            for prompt_id in json_data.get("delete", []):
                for i, (_, _, run) in enumerate(self._queue):
                    if run.prompt_id == prompt_id:
                        if len(self._queue) == 1:
                            self._queue = []
                            self._queue_updated()
                        else:
                            self._queue.pop(i)
                            heapq.heapify(self._queue)
                        self._queue_updated()
                        break
            self._cond.notify_all()
        return web.Response(status=200)

    async def _interrupt(self, request: web.Request) -> web.Response:
        try:
            json_data = await request.json()
        except ValueError:
            json_data = {}
        prompt_id = json_data.get("prompt_id") if isinstance(json_data, dict) else None
        with self._cond:
            for run in self._running.values():
                if not prompt_id or run.prompt_id == prompt_id:
                    run.interrupt.set()
        return web.Response(status=200)

    async def _get_history(self, request: web.Request) -> web.Response:
        query = request.rel_url.query
        max_items = int(query["max_items"]) if "max_items" in query else None
        offset = int(query.get("offset", -1))
        with self._cond:
            keys = list(self._history)
            if offset < 0 and max_items is not None:
                offset = len(keys) - max_items
            keys = keys[max(offset, 0) :]
            if max_items is not None:
                keys = keys[:max_items]
            out = {k: copy.deepcopy(self._history[k]) for k in keys}
        return web.json_response(out)

    async def _get_history_one(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        with self._cond:
            entry = self._history.get(prompt_id)
            out = {prompt_id: copy.deepcopy(entry)} if entry is not None else {}
        return web.json_response(out)

    async def _post_history(self, request: web.Request) -> web.Response:
        json_data = await request.json()
        with self._cond:
            if json_data.get("clear"):
                self._history.clear()
            for prompt_id in json_data.get("delete", []):
                self._history.pop(prompt_id, None)
        return web.Response(status=200)

    # ------------------------------------------------------------------ validation

    def _validate_prompt(
        self, prompt: dict[str, Any], partial: Any
    ) -> tuple[bool, dict[str, Any] | None, list[str], dict[str, Any]]:
        """execution.validate_prompt."""
        outputs = []
        for x, node in prompt.items():
            if not isinstance(node, dict) or "class_type" not in node:
                return (
                    False,
                    {
                        "type": "invalid_prompt",
                        "message": "Cannot execute because a node is missing the class_type property.",  # noqa: E501
                        "details": f"Node ID '#{x}'",
                        "extra_info": {},
                    },
                    [],
                    {},
                )
            class_type = node["class_type"]
            cls = self.classes.get(class_type) if isinstance(class_type, str) else None
            if cls is None:
                return (
                    False,
                    {
                        "type": "invalid_prompt",
                        "message": f"Cannot execute because node {class_type} does not exist.",
                        "details": f"Node ID '#{x}'",
                        "extra_info": {},
                    },
                    [],
                    {},
                )
            if cls.output_node and (partial is None or x in partial):
                outputs.append(x)
        if not outputs:
            return (
                False,
                {
                    "type": "prompt_no_outputs",
                    "message": "Prompt has no outputs",
                    "details": "",
                    "extra_info": {},
                },
                [],
                {},
            )
        good: list[str] = []
        errors: list[tuple[str, list[dict[str, Any]]]] = []
        node_errors: dict[str, Any] = {}
        validated: dict[str, tuple[bool, list[dict[str, Any]], str]] = {}
        for o in outputs:
            try:
                valid, reasons, _ = self._validate_inputs(prompt, o, validated)
            except Exception as ex:  # noqa: BLE001 - ComfyUI reports any exception here
                valid = False
                reasons = [
                    {
                        "type": "exception_during_validation",
                        "message": "Exception when validating node",
                        "details": str(ex),
                        "extra_info": {
                            "exception_type": _full_type_name(type(ex)),
                            "traceback": traceback.format_tb(ex.__traceback__),
                        },
                    }
                ]
                validated[o] = (False, reasons, o)
            if valid is True:
                good.append(o)
                continue
            errors.append((o, reasons))
            for node_id, (ok, node_reasons, _) in validated.items():
                # a node downstream of a bad one is invalid too but has no errors of its own
                if ok is not True and node_reasons:
                    if node_id not in node_errors:
                        node_errors[node_id] = {
                            "errors": node_reasons,
                            "dependent_outputs": [],
                            "class_type": prompt[node_id]["class_type"],
                        }
                    node_errors[node_id]["dependent_outputs"].append(o)
        if not good:
            details = "\n".join(
                f"{e['message']}: {e['details']}" for _, reasons in errors for e in reasons
            )
            error = {
                "type": "prompt_outputs_failed_validation",
                "message": "Prompt outputs failed validation",
                "details": details,
                "extra_info": {},
            }
            return False, error, [], node_errors
        return True, None, good, node_errors

    def _validate_inputs(
        self,
        prompt: dict[str, Any],
        unique_id: str,
        validated: dict[str, tuple[bool, list[dict[str, Any]], str]],
    ) -> tuple[bool, list[dict[str, Any]], str]:
        """execution.validate_inputs (a missing linked node raises KeyError, as there)."""
        if unique_id in validated:
            return validated[unique_id]
        inputs = prompt[unique_id]["inputs"]
        cls = self.classes[prompt[unique_id]["class_type"]]
        class_inputs = cls.input_types(self)
        errors: list[dict[str, Any]] = []
        valid = True
        for category in ("required", "optional"):
            for x, spec in class_inputs.get(category, {}).items():
                input_type = spec[0]
                extra_info: dict[str, Any] = spec[1] if len(spec) > 1 else {}
                if x not in inputs:
                    if category == "required":
                        errors.append(
                            {
                                "type": "required_input_missing",
                                "message": "Required input is missing",
                                "details": f"{x}",
                                "extra_info": {"input_name": x},
                            }
                        )
                    continue
                val = inputs[x]
                info = [input_type, extra_info]
                if isinstance(val, list):
                    if len(val) != 2:
                        errors.append(
                            {
                                "type": "bad_linked_input",
                                "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",  # noqa: E501
                                "details": f"{x}",
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": info,
                                    "received_value": val,
                                },
                            }
                        )
                        continue
                    o_id = val[0]
                    o_class_type = prompt[o_id]["class_type"]  # KeyError: a missing node
                    received_type = self.classes[o_class_type].returns[val[1]]
                    if not _types_match(received_type, input_type):
                        errors.append(
                            {
                                "type": "return_type_mismatch",
                                "message": "Return type mismatch between linked nodes",
                                "details": f"{x}, received_type({received_type}) mismatch input_type({input_type})",  # noqa: E501
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": info,
                                    "received_type": received_type,
                                    "linked_node": val,
                                },
                            }
                        )
                        continue
                    try:
                        r = self._validate_inputs(prompt, o_id, validated)
                        if r[0] is False:
                            valid = False
                            continue
                    except Exception as ex:  # noqa: BLE001 - as ComfyUI
                        valid = False
                        validated[o_id] = (
                            False,
                            [
                                {
                                    "type": "exception_during_inner_validation",
                                    "message": "Exception when validating inner node",
                                    "details": str(ex),
                                    "extra_info": {
                                        "input_name": x,
                                        "input_config": info,
                                        "exception_message": str(ex),
                                        "exception_type": _full_type_name(type(ex)),
                                        "traceback": traceback.format_tb(ex.__traceback__),
                                        "linked_node": val,
                                    },
                                }
                            ],
                            o_id,
                        )
                        continue
                else:
                    try:
                        if isinstance(val, dict) and "__value__" in val:
                            val = val["__value__"]
                            inputs[x] = val
                        if input_type == "INT":
                            val = int(val)
                        elif input_type == "FLOAT":
                            val = float(val)
                        elif input_type == "STRING":
                            val = str(val)
                        elif input_type == "BOOLEAN":
                            val = bool(val)
                        inputs[x] = val
                    except (TypeError, ValueError, OverflowError) as ex:
                        errors.append(
                            {
                                "type": "invalid_input_type",
                                "message": f"Failed to convert an input value to a {input_type} value",  # noqa: E501
                                "details": f"{x}, {val}, {ex}",
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": info,
                                    "received_value": val,
                                    "exception_message": str(ex),
                                },
                            }
                        )
                        continue
                    if x in cls.validate_args:
                        continue  # VALIDATE_INPUTS takes it: no min/max/COMBO check
                    if "min" in extra_info and val < extra_info["min"]:
                        errors.append(
                            {
                                "type": "value_smaller_than_min",
                                "message": f"Value {val} smaller than min of {extra_info['min']}",
                                "details": f"{x}",
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": info,
                                    "received_value": val,
                                },
                            }
                        )
                        continue
                    if "max" in extra_info and val > extra_info["max"]:
                        errors.append(
                            {
                                "type": "value_bigger_than_max",
                                "message": f"Value {val} bigger than max of {extra_info['max']}",
                                "details": f"{x}",
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": info,
                                    "received_value": val,
                                },
                            }
                        )
                        continue
                    if isinstance(input_type, list) and val not in input_type:
                        config: Any = info
                        if len(input_type) > 20:  # no gigantic lists of model paths
                            list_info, config = f"(list of length {len(input_type)})", None
                        else:
                            list_info = str(input_type)
                        errors.append(
                            {
                                "type": "value_not_in_list",
                                "message": "Value not in list",
                                "details": f"{x}: '{val}' not in {list_info}",
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": config,
                                    "received_value": val,
                                },
                            }
                        )
                        continue
        if cls.validate is not None:
            known = {**class_inputs.get("required", {}), **class_inputs.get("optional", {})}
            args = {
                x: (None if _is_link(inputs[x]) else inputs[x])
                for x in inputs
                if x in known and x in cls.validate_args
            }
            ret = cls.validate(self, **args)  # a TypeError if an argument is missing, as there
            if ret is not True:
                for x in args:
                    errors.append(
                        {
                            "type": "custom_validation_failed",
                            "message": "Custom validation failed for node",
                            "details": f"{x}" + ("" if ret is False else f" - {ret}"),
                            "extra_info": {"input_name": x},
                        }
                    )
        result = (
            (False, errors, unique_id) if errors or valid is not True else (True, [], unique_id)
        )
        validated[unique_id] = result
        return result

    # ------------------------------------------------------------------ the worker

    def _worker(self) -> None:
        """main.prompt_worker: one prompt at a time, with this worker's own cache."""
        cache: dict[str, dict[str, Any]] = {}
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._stopping)
                if self._stopping:
                    return
                _, _, run = heapq.heappop(self._queue)
                task_id = self._task_counter
                self._task_counter += 1
                self._running[task_id] = run
                self._queue_updated()
                self._cond.notify_all()
            try:
                self._execute(run, cache)
            except Exception as ex:  # noqa: BLE001 - a bug in the fake must not kill the thread
                run.success = False
                run.messages.append(("execution_error", {"exception_message": repr(ex)}))
            with self._cond:
                if self._stopping:
                    return
                self._running.pop(task_id, None)
                entry = {
                    "prompt": run.item(),
                    "outputs": {},
                    "status": {
                        "status_str": "success" if run.success else "error",
                        "completed": run.success,
                        "messages": [[e, d] for e, d in run.messages],
                    },
                }
                entry.update(run.history_result)
                self._history[run.prompt_id] = json.loads(json.dumps(entry))
                self._queue_updated()
                self._cond.notify_all()
            if run.client_id is not None:
                self._send_sync(
                    "executing", {"node": None, "prompt_id": run.prompt_id}, run.client_id
                )

    def _add_message(self, run: _Run, event: str, data: dict[str, Any], broadcast: bool) -> None:
        data = {**data, "timestamp": int(time.time() * 1000)}
        run.messages.append((event, data))
        if run.client_id is not None or broadcast:
            self._send_sync(event, data, run.client_id)

    def _progress_state(
        self, run: _Run, node_id: str, state: str, value: float, maximum: float
    ) -> None:
        run.progress[node_id] = {"state": state, "value": value, "max": maximum}
        nodes = {
            n: {
                "value": s["value"],
                "max": s["max"],
                "state": s["state"],
                "node_id": n,
                "prompt_id": run.prompt_id,
                "display_node_id": n,
                "parent_node_id": None,
                "real_node_id": n,
            }
            for n, s in run.progress.items()
        }
        self._send_sync("progress_state", {"prompt_id": run.prompt_id, "nodes": nodes})

    def _progress(self, run: _Run, node_id: str, value: int, total: int) -> None:
        """main.hijack_progress's hook: interruptible, then progress_state and progress."""
        run.check_interrupt()
        self._progress_state(run, node_id, "running", value, total)
        progress = {"value": value, "max": total, "prompt_id": run.prompt_id, "node": node_id}
        self._send_sync("progress", progress, run.client_id)

    def _signatures(self, prompt: dict[str, Any]) -> dict[str, str | None]:
        """CacheKeySetInputSignature: class, IS_CHANGED and inputs, upstream by signature."""
        sigs: dict[str, str | None] = {}

        def sig(node_id: str, depth: int = 0) -> str | None:
            if node_id in sigs:
                return sigs[node_id]
            sigs[node_id] = None  # a cycle or a broken link: never cached
            node = prompt.get(node_id)
            if (
                not isinstance(node, dict)
                or node.get("class_type") not in self.classes
                or depth > 500
            ):
                return None
            cls = self.classes[node["class_type"]]
            inputs = node.get("inputs", {})
            parts: list[Any] = [cls.name]
            if cls.is_changed is not None:
                args = {k: v for k, v in inputs.items() if k in cls.validate_args}
                try:
                    parts.append(cls.is_changed(self, **args))
                except (OSError, TypeError):
                    return None
            for key in sorted(inputs):
                value = inputs[key]
                if _is_link(value):
                    up = sig(value[0], depth + 1)
                    if up is None:
                        return None
                    parts.append([key, "link", up, value[1]])
                else:
                    parts.append([key, value])
            digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
            sigs[node_id] = digest.hexdigest()
            return sigs[node_id]

        for node_id in prompt:
            sig(node_id)
        return sigs

    def _execute(self, run: _Run, cache: dict[str, dict[str, Any]]) -> None:
        """execution.PromptExecutor.execute_async."""
        prompt, pid = run.prompt, run.prompt_id
        self._add_message(run, "execution_start", {"prompt_id": pid}, broadcast=False)
        sigs = self._signatures(prompt)
        if not self.cache:
            cache.clear()
        live = {s for s in sigs.values() if s is not None}
        for key in [k for k in cache if k not in live]:  # clean_unused
            del cache[key]
        cached = {n for n, s in sigs.items() if s is not None and s in cache}
        self._add_message(
            run,
            "execution_cached",
            {"nodes": [n for n in prompt if n in cached], "prompt_id": pid},
            broadcast=False,
        )
        order: list[str] = []
        seen: set[str] = set()

        def visit(node_id: str) -> None:  # an output is always staged; a cached input is not
            if node_id in seen:
                return
            seen.add(node_id)
            if node_id not in cached:
                for value in prompt[node_id]["inputs"].values():
                    if _is_link(value) and value[0] not in cached:
                        visit(value[0])
            order.append(node_id)

        for o in run.outputs:
            visit(o)
        values: dict[str, tuple[Any, ...]] = {}
        ui: dict[str, dict[str, Any]] = {}
        executed: list[str] = []
        for node_id in order:
            node = prompt[node_id]
            cls = self.classes[node["class_type"]]
            key = sigs.get(node_id)
            if node_id in cached and key is not None:
                entry = cache[key]
                if run.client_id is not None:
                    cached_ui = entry["ui"]["output"] if entry["ui"] is not None else None
                    self._send_sync(
                        "executed",
                        {
                            "node": node_id,
                            "display_node": node_id,
                            "output": cached_ui,
                            "prompt_id": pid,
                        },
                        run.client_id,
                    )
                if entry["ui"] is not None:
                    ui[node_id] = entry["ui"]
                self._progress_state(run, node_id, "finished", 1.0, 1.0)
                continue
            self._progress_state(run, node_id, "running", 0.0, 1.0)
            inputs_all: dict[str, Any] = {}
            try:
                for name, value in node["inputs"].items():
                    if _is_link(value):
                        src = value[0]
                        upstream = (
                            values[src] if src in values else cache[sigs[src] or ""]["outputs"]
                        )
                        inputs_all[name] = upstream[int(value[1])]
                    else:
                        inputs_all[name] = value
                if run.client_id is not None:
                    run.last_node_id = node_id
                    self._send_sync(
                        "executing",
                        {"node": node_id, "display_node": node_id, "prompt_id": pid},
                        run.client_id,
                    )
                run.check_interrupt()  # nodes.before_node_execution
                if self.node_delay_s:
                    run.interrupt.wait(self.node_delay_s)
                if cls.name == self.fail_node_class:
                    raise RuntimeError(self.fail_message)
                result = cls.run(_Ctx(self, run, node_id), **inputs_all)
            except InterruptProcessingException:
                run.success = False
                self._add_message(
                    run,
                    "execution_interrupted",
                    {
                        "prompt_id": pid,
                        "node_id": node_id,
                        "node_type": cls.name,
                        "executed": list(executed),
                    },
                    broadcast=True,
                )
                break
            except Exception as ex:  # noqa: BLE001 - a node's failure is an execution_error
                run.success = False
                hidden = {"prompt": prompt, "extra_pnginfo": run.extra_data.get("extra_pnginfo")}
                shown = {**inputs_all, **(hidden if cls.output_node else {})}
                self._add_message(
                    run,
                    "execution_error",
                    {
                        "prompt_id": pid,
                        "node_id": node_id,
                        "node_type": cls.name,
                        "executed": list(executed),
                        "exception_message": f"{ex}\n",
                        "exception_type": _full_type_name(type(ex)),
                        "traceback": traceback.format_tb(ex.__traceback__),
                        "current_inputs": {k: [_format_value(v)] for k, v in shown.items()},
                        "current_outputs": list(prompt),
                    },
                    broadcast=False,
                )
                break
            outputs = tuple(result.get("result", ())) if isinstance(result, dict) else tuple(result)
            entry_ui = None
            if isinstance(result, dict) and result.get("ui"):
                entry_ui = {
                    "meta": {
                        "node_id": node_id,
                        "display_node": node_id,
                        "parent_node": None,
                        "real_node_id": node_id,
                    },
                    "output": result["ui"],
                }
                ui[node_id] = entry_ui
                if run.client_id is not None:
                    self._send_sync(
                        "executed",
                        {
                            "node": node_id,
                            "display_node": node_id,
                            "output": result["ui"],
                            "prompt_id": pid,
                        },
                        run.client_id,
                    )
            values[node_id] = outputs
            if key is not None:
                cache[key] = {"outputs": outputs, "ui": entry_ui}
            self._progress_state(run, node_id, "finished", 1.0, 1.0)
            executed.append(node_id)
        else:
            self._add_message(run, "execution_success", {"prompt_id": pid}, broadcast=False)
        history_outputs: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for node_id in prompt:  # every node of the prompt whose UI output is cached
            entry = ui.get(node_id)
            key = sigs.get(node_id)
            if entry is None and self.cache and key is not None and key in cache:
                entry = cache[key]["ui"]
            if entry is not None:
                history_outputs[node_id] = entry["output"]
                meta[node_id] = entry["meta"]
        run.history_result = {"outputs": history_outputs, "meta": meta}
        run.last_node_id = None


def _origin_mismatch(host: str | None, origin: str | None) -> bool:
    """server.py origin_only_middleware: a loopback Host with another Origin is refused."""
    if not host or not origin:
        return False
    try:
        host_domain = host.lower()
        parsed = urlparse(origin)
        origin_domain: str | None = parsed.netloc.lower()
        host_parsed = urlsplit("//" + host_domain)
        hostname = host_parsed.hostname
        loopback = hostname == "localhost"
        if not loopback and hostname:
            with contextlib.suppress(ValueError):
                loopback = ipaddress.ip_address(hostname).is_loopback
        cmp_host: str | None = host_domain
        if parsed.port is None:
            cmp_host = host_parsed.hostname
        if host_parsed.port is None:
            origin_domain = parsed.hostname
    except ValueError:
        return False
    return bool(loopback and cmp_host and origin_domain and cmp_host != origin_domain)


@contextlib.contextmanager
def running_comfyui(**kw: Any) -> Iterator[ComfyUIServer]:
    """A started :class:`ComfyUIServer` (``kw``: its options), stopped and deleted after."""
    server = ComfyUIServer(**kw).start()
    try:
        yield server
    finally:
        server.stop()
