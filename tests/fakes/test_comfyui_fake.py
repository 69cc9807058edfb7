"""The ComfyUI contract fake (tests/fakes/comfyui.py) against the shapes ComfyUI's source shows.

Every test talks HTTP (httpx) and WebSocket (websockets) to a real server on 127.0.0.1, runs
the shipped templates and waits on real conditions (a message, the history) with timeouts.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import ClientConnection, connect

from tests.fakes.comfyui import (
    CPU_ONLY,
    RTX_4090,
    ComfyUIServer,
    comfyui_server,
    running_comfyui,
    system_stats,
)

WORKFLOWS = Path(__file__).resolve().parents[2] / "resources" / "workflows"
TIMEOUT = 5.0


def png(width: int, height: int, color: tuple[int, int, int] = (200, 40, 90)) -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", (width, height), color)
    for x in range(0, width, 3):  # some structure, so a resize is not a flat colour
        img.putpixel((x, x % height), (x % 256, 255 - x % 256, 17))
    img.save(buf, "PNG")
    return buf.getvalue()


def template(name: str, **values: Any) -> dict[str, Any]:
    """A shipped template with its ``"{{placeholder}}"`` values filled by hand."""
    graph = json.loads((WORKFLOWS / name).read_text())
    for node in graph.values():
        for key, value in node["inputs"].items():
            if isinstance(value, str) and value.startswith("{{") and value.endswith("}}"):
                node["inputs"][key] = values[value[2:-2]]
    return graph


@pytest.fixture
def comfy() -> Iterator[ComfyUIServer]:
    with running_comfyui() as server:
        yield server


@pytest.fixture
def http(comfy: ComfyUIServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=comfy.url, timeout=TIMEOUT) as client:
        yield client


def upload(client: httpx.Client, name: str, data: bytes, **form: str) -> dict[str, Any]:
    r = client.post("/upload/image", files={"image": (name, data, "image/png")}, data=form)
    assert r.status_code == 200, r.text
    return r.json()


def queue(client: httpx.Client, graph: dict[str, Any], **body: Any) -> str:
    r = client.post("/prompt", json={"prompt": graph, **body})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["node_errors"] == {}
    return str(answer["prompt_id"])


@contextlib.contextmanager
def ws_connect(server: ComfyUIServer, client_id: str) -> Iterator[ClientConnection]:
    """A WebSocket of ``client_id``, past ComfyUI's first ``status`` message."""
    url = f"ws://127.0.0.1:{server.port}/ws?clientId={client_id}"
    with connect(url, open_timeout=TIMEOUT) as ws:
        first = json.loads(ws.recv(timeout=TIMEOUT))
        assert first == {
            "type": "status",
            "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id},
        }
        yield ws


def messages_until(
    ws: ClientConnection, done: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """Every message up to and including the first that ``done`` accepts."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no end message; got {[m['type'] for m in seen]}")
        msg = json.loads(ws.recv(timeout=left))
        seen.append(msg)
        if done(msg):
            return seen


def finished(prompt_id: str) -> Callable[[dict[str, Any]], bool]:
    """main.py's last word for a prompt: ``executing`` with node null."""
    return lambda m: (
        m["type"] == "executing"
        and m["data"]
        == {
            "node": None,
            "prompt_id": prompt_id,
        }
    )


def history(client: httpx.Client, prompt_id: str) -> dict[str, Any]:
    r = client.get(f"/history/{prompt_id}")
    assert r.status_code == 200
    return dict(r.json())


def view(client: httpx.Client, image: dict[str, str]) -> bytes:
    r = client.get("/view", params=image)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    return r.content


# --------------------------------------------------------------------------- running templates


def test_super_res_template_upscales_the_uploaded_cg_4x(
    comfy: ComfyUIServer, http: httpx.Client
) -> None:
    up = upload(http, "cg.png", png(40, 24))
    assert up == {"name": "cg.png", "subfolder": "", "type": "input"}
    assert comfy.uploads == {"cg.png": png(40, 24)}
    graph = template("cg_super_res.json", input_image=up["name"], output_prefix="comfyvn/job1/run0")
    prompt_id = queue(http, graph, client_id="gui-1")

    entry = comfy.wait_until_done(prompt_id, TIMEOUT)
    assert entry == history(http, prompt_id)[prompt_id]
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    events = [event for event, _ in entry["status"]["messages"]]
    assert events == ["execution_start", "execution_cached", "execution_success"]
    image = {"filename": "run0_00001_.png", "subfolder": "comfyvn/job1", "type": "output"}
    assert entry["outputs"] == {"4": {"images": [image]}}
    assert entry["meta"]["4"] == {
        "node_id": "4",
        "display_node": "4",
        "parent_node": None,
        "real_node_id": "4",
    }
    number, pid, prompt, extra_data, outputs = entry["prompt"]
    assert (number, pid, prompt, outputs) == (0, prompt_id, graph, ["4"])
    assert extra_data == {"client_id": "gui-1"}

    out = Image.open(io.BytesIO(view(http, image)))
    assert out.size == (160, 96)
    assert (Path(comfy.output_dir) / "comfyvn" / "job1" / "run0_00001_.png").is_file()
    # under /api as well, and recorded in order
    assert http.get(f"/api/history/{prompt_id}").json() == {prompt_id: entry}
    assert comfy.requests[:2] == [("POST", "/upload/image"), ("POST", "/prompt")]
    assert comfy.requests[-1] == ("GET", f"/api/history/{prompt_id}")


def test_remix_is_repeatable_for_a_seed_and_changes_with_it() -> None:
    def remix(server: ComfyUIServer, seed: int) -> bytes:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
            name = upload(client, "scene.png", png(64, 48))["name"]
            graph = template(
                "cg_remix.json",
                input_image=name,
                prompt="a quiet library",
                output_prefix="comfyvn/job2/run0",
            )
            graph["6"]["inputs"]["seed"] = seed
            prompt_id = queue(client, graph)
            [image] = server.wait_until_done(prompt_id, TIMEOUT)["outputs"]["8"]["images"]
            return view(client, image)

    # two fresh servers: nothing cached, both really sample
    with running_comfyui() as one, running_comfyui() as two:
        first, again = remix(one, 42), remix(two, 42)
        other = remix(one, 43)
    assert first == again
    assert other != first
    a, b = Image.open(io.BytesIO(first)), Image.open(io.BytesIO(other))
    assert a.size == b.size == (64, 48)
    assert a.tobytes() != b.tobytes()
    assert json.loads(a.text["prompt"])["6"]["inputs"]["seed"] == 42  # SaveImage embeds it


def test_the_same_prompt_again_is_served_from_the_cache(
    comfy: ComfyUIServer, http: httpx.Client
) -> None:
    name = upload(http, "scene.png", png(32, 32))["name"]
    graph = template("cg_remix.json", input_image=name, prompt="rain", output_prefix="p/run0")
    first = comfy.wait_until_done(queue(http, graph, client_id="c"), TIMEOUT)
    with ws_connect(comfy, "c") as ws:
        prompt_id = queue(http, graph, client_id="c")
        seen = messages_until(ws, finished(prompt_id))
    kinds = [m["type"] for m in seen if m["type"] not in ("status", "progress_state")]
    assert kinds == [
        "execution_start",
        "execution_cached",
        "executed",
        "execution_success",
        "executing",
    ]
    cached = next(m for m in seen if m["type"] == "execution_cached")["data"]["nodes"]
    assert cached == list(graph)  # every node, in the prompt's order
    again = history(http, prompt_id)[prompt_id]
    image = {"filename": "run0_00001_.png", "subfolder": "p", "type": "output"}
    assert again["outputs"] == first["outputs"] == {"8": {"images": [image]}}


# --------------------------------------------------------------------------- refusals (400)


def test_a_missing_model_names_the_node_and_the_input(http: httpx.Client) -> None:
    name = upload(http, "cg.png", png(16, 16))["name"]
    graph = template("cg_remix.json", input_image=name, prompt="x", output_prefix="o/run0")
    graph["1"]["inputs"]["ckpt_name"] = "sd_xl_refiner_1.0.safetensors"
    r = http.post("/prompt", json={"prompt": graph})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == {
        "type": "prompt_outputs_failed_validation",
        "message": "Prompt outputs failed validation",
        "details": "",  # only the output node's own errors are listed there
        "extra_info": {},
    }
    assert list(body["node_errors"]) == ["1"]
    node = body["node_errors"]["1"]
    assert node["class_type"] == "CheckpointLoaderSimple"
    assert node["dependent_outputs"] == ["8"]
    [err] = node["errors"]
    assert err["type"] == "value_not_in_list"
    assert err["message"] == "Value not in list"
    assert err["details"] == (
        "ckpt_name: 'sd_xl_refiner_1.0.safetensors' not in ['sd_xl_base_1.0.safetensors']"
    )
    assert err["extra_info"]["input_name"] == "ckpt_name"
    assert err["extra_info"]["received_value"] == "sd_xl_refiner_1.0.safetensors"

    sr = template("cg_super_res.json", input_image=name, output_prefix="o/run1")
    sr["2"]["inputs"]["model_name"] = "4x-UltraSharp.pth"
    sr["1"]["inputs"]["image"] = "never-uploaded.png"
    del sr["3"]["inputs"]["image"]
    errors = http.post("/api/prompt", json={"prompt": sr}).json()["node_errors"]
    assert {k: (v["class_type"], [e["type"] for e in v["errors"]]) for k, v in errors.items()} == {
        "2": ("UpscaleModelLoader", ["value_not_in_list"]),
        "3": ("ImageUpscaleWithModel", ["required_input_missing"]),
    }  # LoadImage is no longer reached once its link is gone
    sr["3"]["inputs"]["image"] = ["1", 0]
    errors = http.post("/prompt", json={"prompt": sr}).json()["node_errors"]
    [load] = errors["1"]["errors"]  # LoadImage's VALIDATE_INPUTS, not its COMBO list
    assert load == {
        "type": "custom_validation_failed",
        "message": "Custom validation failed for node",
        "details": "image - Invalid image file: never-uploaded.png",
        "extra_info": {"input_name": "image"},
    }


def test_an_unknown_class_is_an_invalid_prompt(http: httpx.Client) -> None:
    graph = template("cg_super_res.json", input_image="cg.png", output_prefix="o")
    graph["3"]["class_type"] = "UltimateSDUpscale"
    r = http.post("/prompt", json={"prompt": graph, "client_id": "c"})
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "type": "invalid_prompt",
            "message": "Cannot execute because node UltimateSDUpscale does not exist.",
            "details": "Node ID '#3'",
            "extra_info": {},
        },
        "node_errors": {},
    }


def test_other_refusals_have_comfyuis_shapes(http: httpx.Client) -> None:
    no_output = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x"}}}
    r = http.post("/prompt", json={"prompt": no_output})
    assert (r.status_code, r.json()["error"]["type"]) == (400, "prompt_no_outputs")
    r = http.post("/prompt", json={"client_id": "c"})
    assert r.status_code == 400
    assert (r.json()["error"]["type"], r.json()["node_errors"]) == ("no_prompt", {})

    graph = template("cg_super_res.json", input_image="cg.png", output_prefix="o")
    graph["3"]["inputs"]["upscale_model"] = ["99", 0]  # a link to a node that is not there
    r = http.post("/prompt", json={"prompt": graph})
    assert r.status_code == 400
    [err] = r.json()["node_errors"]["3"]["errors"]
    assert (err["type"], err["details"]) == ("exception_during_inner_validation", "'99'")
    assert err["extra_info"]["exception_type"] == "KeyError"

    graph = template("cg_super_res.json", input_image="cg.png", output_prefix="o")
    graph["4"]["inputs"]["images"] = ["2", 0]  # an UPSCALE_MODEL into IMAGE
    [err] = http.post("/prompt", json={"prompt": graph}).json()["node_errors"]["4"]["errors"]
    assert err["type"] == "return_type_mismatch"
    assert err["details"] == "images, received_type(UPSCALE_MODEL) mismatch input_type(IMAGE)"


# --------------------------------------------------------------------------- WebSocket


def test_the_websocket_follows_its_clients_run(comfy: ComfyUIServer, http: httpx.Client) -> None:
    name = upload(http, "cg.png", png(48, 40))["name"]
    graph = template("cg_remix.json", input_image=name, prompt="dusk", output_prefix="j/run0")
    with ws_connect(comfy, "gui-7") as ws:
        prompt_id = queue(http, graph, client_id="gui-7")
        seen = messages_until(ws, finished(prompt_id))
        # history is written before the last "executing"
        entry = history(http, prompt_id)[prompt_id]
    kinds = [m["type"] for m in seen]
    start, success = kinds.index("execution_start"), kinds.index("execution_success")
    progress = [m["data"] for m in seen if m["type"] == "progress"]
    assert start < kinds.index("progress") < success < len(kinds) - 1
    assert progress == [
        {"value": i, "max": 25, "prompt_id": prompt_id, "node": "6"} for i in range(1, 26)
    ]
    for m in seen:
        if m["type"] not in ("status", "progress_state"):
            assert m["data"]["prompt_id"] == prompt_id
    executing = [m["data"] for m in seen if m["type"] == "executing"]
    order = ["1", "4", "5", "2", "3", "6", "7", "8"]
    assert executing[:-1] == [{"node": n, "display_node": n, "prompt_id": prompt_id} for n in order]
    [executed] = [m["data"] for m in seen if m["type"] == "executed"]
    assert executed == {
        "node": "8",
        "display_node": "8",
        "output": entry["outputs"]["8"],
        "prompt_id": prompt_id,
    }
    assert seen[start]["data"]["prompt_id"] == prompt_id and "timestamp" in seen[start]["data"]
    assert {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}}} in seen
    states = [m["data"] for m in seen if m["type"] == "progress_state"]
    assert states[-1]["nodes"]["8"]["state"] == "finished"
    assert entry["status"]["messages"][0] == ["execution_start", seen[start]["data"]]


def test_an_error_in_a_node_is_an_execution_error() -> None:
    with (
        running_comfyui(
            fail_node_class="ImageUpscaleWithModel", fail_message="CUDA out of memory"
        ) as comfy,
        httpx.Client(base_url=comfy.url, timeout=TIMEOUT) as http,
    ):
        name = upload(http, "cg.png", png(8, 8))["name"]
        graph = template("cg_super_res.json", input_image=name, output_prefix="o/run0")
        with ws_connect(comfy, "c") as ws:
            prompt_id = queue(http, graph, client_id="c")
            seen = messages_until(ws, finished(prompt_id))
        entry = history(http, prompt_id)[prompt_id]
    [error] = [m["data"] for m in seen if m["type"] == "execution_error"]
    assert "execution_success" not in [m["type"] for m in seen]
    assert error["prompt_id"] == prompt_id
    assert (error["node_id"], error["node_type"]) == ("3", "ImageUpscaleWithModel")
    assert error["exception_message"] == "CUDA out of memory\n"
    assert error["exception_type"] == "RuntimeError"
    assert sorted(error["executed"]) == ["1", "2"]
    assert set(error["current_inputs"]) == {"upscale_model", "image"}
    assert isinstance(error["traceback"], list) and error["current_outputs"] == list(graph)
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert entry["outputs"] == {}


# --------------------------------------------------------------------------- queue control


def test_interrupt_stops_the_run_at_the_next_node() -> None:
    order = ["1", "4", "5", "2", "3", "6", "7", "8"]  # the remix graph's nodes, as they run
    with (
        running_comfyui(node_delay_s=2.0) as comfy,
        httpx.Client(base_url=comfy.url, timeout=TIMEOUT) as http,
    ):
        name = upload(http, "cg.png", png(16, 16))["name"]
        graph = template("cg_remix.json", input_image=name, prompt="x", output_prefix="o/run0")
        with ws_connect(comfy, "c") as ws:
            prompt_id = queue(http, graph, client_id="c")
            messages_until(ws, lambda m: m["type"] == "executing")  # node 1 is running
            assert http.post("/interrupt", json={"prompt_id": prompt_id}).status_code == 200
            seen = messages_until(ws, finished(prompt_id))
        entry = history(http, prompt_id)[prompt_id]
    kinds = [m["type"] for m in seen]
    assert "execution_interrupted" in kinds and "execution_success" not in kinds
    [stop] = [m["data"] for m in seen if m["type"] == "execution_interrupted"]
    assert stop["prompt_id"] == prompt_id
    # node 1 finishes (unless the interrupt beat its check) and the next one stops
    at = order.index(stop["node_id"])
    assert at <= 1 and stop["executed"] == order[:at]
    assert stop["node_type"] == graph[stop["node_id"]]["class_type"]
    assert entry["outputs"] == {}
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert entry["status"]["messages"][-1] == ["execution_interrupted", stop]


def test_an_interrupt_for_another_prompt_changes_nothing() -> None:
    with (
        running_comfyui(node_delay_s=0.05) as comfy,
        httpx.Client(base_url=comfy.url, timeout=TIMEOUT) as http,
    ):
        name = upload(http, "cg.png", png(16, 16))["name"]
        graph = template("cg_super_res.json", input_image=name, output_prefix="o/run0")
        with ws_connect(comfy, "c") as ws:
            prompt_id = queue(http, graph, client_id="c")
            messages_until(ws, lambda m: m["type"] == "executing")
            assert http.post("/interrupt", json={"prompt_id": "not-this-one"}).status_code == 200
            seen = messages_until(ws, finished(prompt_id))
    kinds = [m["type"] for m in seen]
    assert "execution_success" in kinds and "execution_interrupted" not in kinds


def test_queue_delete_takes_a_pending_prompt_out() -> None:
    with (
        running_comfyui(node_delay_s=2.0) as comfy,
        httpx.Client(base_url=comfy.url, timeout=TIMEOUT) as http,
    ):
        name = upload(http, "cg.png", png(16, 16))["name"]
        graph = template("cg_super_res.json", input_image=name, output_prefix="o/run0")
        running = queue(http, graph)
        comfy.wait_until_running(running, TIMEOUT)
        pending = queue(http, graph, client_id="later")
        q = http.get("/queue").json()
        assert [item[1] for item in q["queue_running"]] == [running]
        [item] = q["queue_pending"]
        assert item == [1, pending, graph, {"client_id": "later"}, ["4"]]
        assert http.get(f"/history/{running}").json() == {}  # {} until done
        assert http.get("/prompt").json() == {"exec_info": {"queue_remaining": 2}}

        assert http.post("/queue", json={"delete": [pending]}).status_code == 200
        assert http.get("/queue").json()["queue_pending"] == []
        http.post("/interrupt")  # no prompt_id: whatever runs
        assert comfy.wait_until_done(running, TIMEOUT)["status"]["completed"] is False
        assert http.get("/queue").json() == {"queue_running": [], "queue_pending": []}
        assert http.get(f"/history/{pending}").json() == {}
        assert list(http.get("/history").json()) == [running]


def test_kill_makes_every_request_fail() -> None:
    with running_comfyui(node_delay_s=2.0) as comfy:
        with httpx.Client(base_url=comfy.url, timeout=TIMEOUT) as http:
            name = upload(http, "cg.png", png(16, 16))["name"]
            graph = template("cg_super_res.json", input_image=name, output_prefix="o/run0")
            with ws_connect(comfy, "c") as ws:
                prompt_id = queue(http, graph, client_id="c")
                comfy.wait_until_running(prompt_id, TIMEOUT)
                comfy.kill()
                with pytest.raises(ConnectionClosedError) as closed:
                    messages_until(ws, finished(prompt_id))
                assert closed.value.rcvd is None  # no close frame: the peer just vanished
            with pytest.raises(httpx.TransportError):
                http.get(f"/history/{prompt_id}")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{comfy.url}/system_stats", timeout=TIMEOUT)
    assert not Path(comfy.root).exists()  # stop() after kill() still deletes the files


# --------------------------------------------------------------------------- the other routes


def test_uploads_are_renamed_on_a_clash_as_comfyui_does(
    comfy: ComfyUIServer, http: httpx.Client
) -> None:
    assert upload(http, "cg.png", png(8, 8))["name"] == "cg.png"
    assert upload(http, "cg.png", png(8, 8))["name"] == "cg.png"  # same bytes: a duplicate
    assert upload(http, "cg.png", png(9, 9))["name"] == "cg (1).png"
    assert upload(http, "cg.png", png(10, 10))["name"] == "cg (2).png"
    assert upload(http, "cg.png", png(11, 11), overwrite="true")["name"] == "cg.png"
    assert upload(http, "a.png", png(8, 8), subfolder="jobs/3") == {
        "name": "a.png",
        "subfolder": "jobs/3",
        "type": "input",
    }
    assert comfy.uploads["jobs/3/a.png"] == png(8, 8)
    r = http.post(
        "/upload/image",
        files={"image": ("x.png", png(8, 8), "image/png")},
        data={"subfolder": "../../etc"},
    )
    assert r.status_code == 400
    choices = http.get("/object_info/LoadImage").json()["LoadImage"]["input"]["required"]["image"]
    assert choices == [["cg (1).png", "cg (2).png", "cg.png"], {"image_upload": True}]
    # a file in a subfolder is no choice but LoadImage takes it (its VALIDATE_INPUTS)
    graph = template("cg_super_res.json", input_image="jobs/3/a.png", output_prefix="o/run0")
    assert http.post("/prompt", json={"prompt": graph}).status_code == 200


def test_view_refuses_paths_out_of_its_folders(comfy: ComfyUIServer, http: httpx.Client) -> None:
    upload(http, "cg.png", png(8, 8))
    assert http.get("/view", params={"filename": "cg.png", "type": "input"}).content == png(8, 8)
    assert http.get("/view", params={"filename": "cg.png [input]"}).status_code == 200
    assert http.get("/view", params={"filename": "cg.png"}).status_code == 404  # type: output
    assert http.get("/view", params={"filename": "../input/cg.png"}).status_code == 400
    assert http.get("/view", params={"filename": "/etc/passwd"}).status_code == 400
    assert http.get("/view", params={"filename": "cg.png", "type": "models"}).status_code == 400
    r = http.get("/view", params={"filename": "passwd", "subfolder": "../../../etc"})
    assert r.status_code == 403
    assert http.get("/view").status_code == 404


def test_models_object_info_system_stats_and_origin(http: httpx.Client) -> None:
    folders = http.get("/models").json()
    assert "checkpoints" in folders and "upscale_models" in folders and "loras" in folders
    assert http.get("/models/checkpoints").json() == ["sd_xl_base_1.0.safetensors"]
    assert http.get("/api/models/upscale_models").json() == ["RealESRGAN_x4plus.pth"]
    assert http.get("/models/loras").json() == []
    assert http.get("/models/not_a_folder").status_code == 404

    info = http.get("/object_info").json()
    sampler = info["KSampler"]
    assert sampler["input"]["required"]["seed"][0] == "INT"
    assert "euler" in sampler["input"]["required"]["sampler_name"][0]
    assert sampler["output"] == ["LATENT"] and sampler["output_node"] is False
    assert sampler["category"] == "sampling" and sampler["name"] == "KSampler"
    assert info["SaveImage"]["output_node"] is True and info["SaveImage"]["output"] == []
    assert info["UpscaleModelLoader"]["input"]["required"]["model_name"] == [
        ["RealESRGAN_x4plus.pth"]
    ]
    assert http.get("/object_info/ImageUpscaleWithModel").json()["ImageUpscaleWithModel"][
        "python_module"
    ] == ("comfy_extras.nodes_upscale_model")
    assert http.get("/object_info/NoSuchNode").json() == {}
    assert http.get("/system_stats").json() == system_stats([RTX_4090])
    assert http.post("/system_stats").status_code == 405

    foreign = {"Origin": "http://evil.example"}
    assert http.post("/prompt", json={}, headers=foreign).status_code == 403
    assert http.get("/queue", headers={"Origin": str(http.base_url).rstrip("/")}).status_code == 200


def test_options_shape_the_server() -> None:
    models = {"checkpoints": ["a.safetensors", "b.safetensors"], "upscale_models": []}
    with (
        running_comfyui(models=models, device=CPU_ONLY) as comfy,
        httpx.Client(base_url=comfy.url, timeout=TIMEOUT) as http,
    ):
        assert http.get("/models/checkpoints").json() == ["a.safetensors", "b.safetensors"]
        assert http.get("/system_stats").json()["devices"] == [CPU_ONLY.as_json()]
        graph = template("cg_super_res.json", input_image="x.png", output_prefix="o")
        errors = http.post("/prompt", json={"prompt": graph}).json()["node_errors"]
        assert (
            errors["2"]["errors"][0]["details"] == "model_name: 'RealESRGAN_x4plus.pth' not in []"
        )
    # the old /system_stats-only fake is still what it was
    with comfyui_server([RTX_4090]) as old:
        assert httpx.get(f"{old.base}/api/system_stats").json() == system_stats([RTX_4090])


def test_two_workers_run_two_prompts_at_once() -> None:
    with (
        running_comfyui(node_delay_s=2.0, queue_workers=2) as comfy,
        httpx.Client(base_url=comfy.url, timeout=TIMEOUT) as http,
    ):
        name = upload(http, "cg.png", png(8, 8))["name"]
        graph = template("cg_super_res.json", input_image=name, output_prefix="o/run0")
        other = copy.deepcopy(graph)
        other["4"]["inputs"]["filename_prefix"] = "o/run1"
        a, b = queue(http, graph), queue(http, other)
        comfy.wait_until_running(a, TIMEOUT)
        comfy.wait_until_running(b, TIMEOUT)
        assert len(http.get("/queue").json()["queue_running"]) == 2
        http.post("/interrupt")
        assert comfy.wait_until_done(a, TIMEOUT)["status"]["completed"] is False
        assert comfy.wait_until_done(b, TIMEOUT)["status"]["completed"] is False
